//! `husk-probe loop SYSCALL N`: what one cheap syscall costs in a tight
//! loop, for the bench, which runs it with and without the seccomp filter.
//!
//! - `getppid`: allowed whatever its arguments, so the kernel's seccomp
//!   cache answers it without running the filter.
//! - `personality` (0xffffffff, which only asks): an argument rule decides
//!   it, so the filter runs on every call.

use std::time::Instant;

use crate::fact;

/// The loop is timed in batches of this many calls, a few milliseconds
/// each: on a busy machine some run without being preempted, and the
/// fastest is the figure.
const BATCH: u64 = 10_000;

pub fn main(args: &[String]) -> Result<(), String> {
    let [name, n] = args else {
        return Err("usage: loop getppid|personality N".into());
    };
    let n: u64 = n
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{n}: not a number of calls"))?;
    let (nr, arg) = match name.as_str() {
        "getppid" => (libc::SYS_getppid, 0 as libc::c_long),
        // A long, not a u64: on a 32-bit target a u64 takes a register
        // pair in the variadic syscall(2).
        "personality" => (libc::SYS_personality, 0xffff_ffff_u32 as libc::c_long),
        other => return Err(format!("{other}: not one of getppid, personality")),
    };
    // SAFETY: getppid takes no arguments; personality(0xffffffff) only
    // reads the current personality.
    let call = || unsafe { libc::syscall(nr, arg) };
    if call() < 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    let batches = (n / BATCH).max(1);
    let per_batch = n / batches;
    let mut best = f64::MAX;
    let started = Instant::now();
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            std::hint::black_box(call());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    let mean = started.elapsed().as_nanos() as f64 / (per_batch * batches) as f64;
    fact("syscall", name);
    fact("calls", per_batch * batches);
    fact("batches", batches);
    fact("ns_per_call", format!("{best:.1}"));
    fact("ns_per_call_mean", format!("{mean:.1}"));
    Ok(())
}

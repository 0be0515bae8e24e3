//! `husk-probe loop SYSCALL N`: what one cheap syscall costs in a tight
//! loop, for the bench, which runs it with and without the seccomp filter.
//!
//! - `getppid`: allowed whatever its arguments, so the kernel's seccomp
//!   cache answers it without running the filter.
//! - `personality` (0xffffffff, which only asks): an argument rule decides
//!   it, so the filter runs on every call.

use std::time::Instant;

use crate::fact;

/// Each loop is timed in this many batches; the fastest batch is the
/// figure, the least disturbed by whatever else the machine does.
const BATCHES: u64 = 5;

pub fn main(args: &[String]) -> Result<(), String> {
    let [name, n] = args else {
        return Err("usage: loop getppid|personality N".into());
    };
    let n: u64 = n
        .parse()
        .ok()
        .filter(|&n| n >= BATCHES)
        .ok_or_else(|| format!("{n}: not a number of calls (at least {BATCHES})"))?;
    let (nr, arg) = match name.as_str() {
        "getppid" => (libc::SYS_getppid, 0u64),
        "personality" => (libc::SYS_personality, 0xffff_ffff_u64),
        other => return Err(format!("{other}: not one of getppid, personality")),
    };
    // SAFETY: getppid takes no arguments; personality(0xffffffff) only
    // reads the current personality.
    let call = || unsafe { libc::syscall(nr, arg) };
    if call() < 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    let per_batch = n / BATCHES;
    let mut best = f64::MAX;
    let started = Instant::now();
    for _ in 0..BATCHES {
        let t = Instant::now();
        for _ in 0..per_batch {
            std::hint::black_box(call());
        }
        best = best.min(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    let mean = started.elapsed().as_nanos() as f64 / (per_batch * BATCHES) as f64;
    fact("syscall", name);
    fact("calls", per_batch * BATCHES);
    fact("ns_per_call", format!("{best:.1}"));
    fact("ns_per_call_mean", format!("{mean:.1}"));
    Ok(())
}

//! The kernel-feature table (runner/src/kernel.rs): where a call husk uses
//! is missing, the fallback keeps the same guarantees. The runner's test
//! knob HUSK_PRETEND_ENOSYS makes it and the shim take the fallbacks on a
//! kernel that has the calls, so that the matrix's newer kernels run them
//! too.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::process::Command;

use crate::harness::{one_error_line, TempRootfs, R};
use crate::{check, fact, facts, output, Env, PROBE};

/// Every call of the table that has a fallback.
const ALL_FALLBACKS: &str = "openat2,mount_setattr,close_range,cgroup.kill,execveat";

pub fn fallbacks_keep_the_guarantees_where_calls_are_missing(env: &Env) -> R {
    // close_range: an fd inherited without close-on-exec stays outside.
    let leak = fs::File::open("/").map_err(|e| e.to_string())?;
    // SAFETY: dup2 to an unused number, then clear close-on-exec on it.
    unsafe {
        libc::dup2(leak.as_raw_fd(), 43);
        libc::fcntl(43, libc::F_SETFD, 0);
    }
    let mut c = env.command(&["--pids", "16", "--memory", "32M"], &[PROBE, "facts"]);
    c.env("HUSK_PRETEND_ENOSYS", ALL_FALLBACKS);
    let out = output(&mut c);
    // SAFETY: our own fd.
    unsafe { libc::close(43) };
    out.expect(0)?;
    let f = facts(&out);
    check(fact(&f, "fds") == "3" && fact(&f, "pid") == "1", || {
        format!("with {ALL_FALLBACKS} missing: not PID 1 with only stdio\n{out}")
    })?;
    // openat2: the component walk refuses a symlinked mount point as the
    // one call does.
    let r = TempRootfs::new(env, "walk")?;
    let (rootfs, outside) = (&r.dir, &r.outside);
    let io = |e: std::io::Error| e.to_string();
    let run = |pretend: &str| {
        let mut c = Command::new(&env.runner);
        c.arg("--rootfs").arg(rootfs).args(["--", PROBE, "facts"]);
        c.env("HUSK_PRETEND_ENOSYS", pretend);
        output(&mut c)
    };
    run(ALL_FALLBACKS).expect(0)?;
    // The run made /dev in the rootfs; now it is a symlink out.
    fs::remove_dir(rootfs.join("dev")).map_err(io)?;
    symlink(outside, rootfs.join("dev")).map_err(io)?;
    for pretend in ["openat2", ""] {
        let out = run(pretend);
        one_error_line(&out, 125, "/dev").map_err(|e| format!("pretending {pretend:?}: {e}"))?;
        check(out.stderr.contains("ELOOP"), || {
            format!("pretending {pretend:?}: not ELOOP\n{out}")
        })?;
        r.outside_is_untouched()
            .map_err(|e| format!("pretending {pretend:?}: {e}"))?;
    }
    // A name the knob does not know is refused: a typo cannot make a
    // fallback's test pass without running it.
    one_error_line(
        &run("openat3"),
        125,
        "HUSK_PRETEND_ENOSYS: unknown call openat3",
    )
}

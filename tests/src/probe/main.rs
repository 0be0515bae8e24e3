//! husk-probe: a small static program the scenarios copy into the test
//! rootfs and run inside containers. It prints facts as `key=value` lines
//! (what a test checks, read from the kernel, not from a shell's output)
//! and carries the attacks the hardening scenarios try.
//!
//! `husk-probe facts`: who and where the process is.
//! `husk-probe syscalls`: what the seccomp filter answers to each call it decides.
//! `husk-probe loop SYSCALL N`: nanoseconds per call of a cheap syscall.
//! Every other word names one probe; see `PROBES`.

mod attack;
mod facts;
mod nodes;
mod orphans;
mod syscall_loop;
mod syscalls;

use std::process::ExitCode;

type Probe = fn(&[String]) -> Result<(), String>;

/// Each probe by name, with the arguments it takes.
const PROBES: &[(&str, &str, Probe)] = &[
    ("facts", "", facts::main),
    ("mounts", "", attack::mounts),
    ("root-identity", "[MARKER]", attack::root_identity),
    ("mknod-open", "PATH b|c MAJOR MINOR", attack::mknod_open),
    ("nodes", "PATH...", nodes::nodes),
    ("propagation", "", nodes::propagation),
    ("cgroup-escape", "CANARY", attack::cgroup_escape),
    ("pdeathsig-escape", "", attack::pdeathsig_escape),
    ("orphans", "", orphans::main),
    ("syscalls", "", syscalls::main),
    ("loop", "getppid|personality N", syscall_loop::main),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        return usage();
    };
    let Some((_, _, probe)) = PROBES.iter().find(|(n, _, _)| n == name) else {
        return usage();
    };
    match probe(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("husk-probe {name}: {e}");
            ExitCode::from(1)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: husk-probe PROBE [ARG...]; the probes:");
    for (name, args, _) in PROBES {
        eprintln!("  {name} {args}");
    }
    ExitCode::from(2)
}

/// Prints one fact.
pub fn fact(key: &str, value: impl std::fmt::Display) {
    // Flushed per line: a probe killed mid-way has said what it did.
    println!("{key}={value}");
}

/// The last OS error as its errno name, e.g. "EPERM", or "0" after success.
pub fn errno_of(ret: libc::c_long) -> String {
    if ret >= 0 {
        return "0".into();
    }
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    errno_name(e)
}

pub fn errno_name(e: i32) -> String {
    let name = match e {
        0 => "0",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        _ => return format!("errno{e}"),
    };
    name.into()
}

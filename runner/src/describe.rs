//! How the shim's operations are named in the runner's error lines: the
//! operation with its path, then the system call inside it that failed
//! (the report's sub-step, numbered as in shim/src/ops.rs). Only the
//! failing op is ever described, after the fact: nothing here is on the
//! start-up path.
//!
//! `failure` turns the shim's report into the runner's one line.

use std::ffi::CStr;

use std::ffi::CString;

use shim::plan::{ms, Op};
use shim::report::{Report, STEP_DECODE_PLAN, STEP_EXEC_SHIM, STEP_READ_PLAN, STEP_USERNS_ROOT};

use crate::error::{describe_errno, Error, NOT_EXECUTABLE, NOT_FOUND};
use crate::plan::Plan;
use crate::rootfs::Rootfs;

const PROPAGATION: u32 = ms::SHARED | ms::SLAVE | ms::PRIVATE | ms::UNBINDABLE;

/// "mount proc on /proc", "mask /proc/kcore", ...
pub fn op(op: &Op<'_>) -> String {
    fn s(c: &CStr) -> std::borrow::Cow<'_, str> {
        c.to_string_lossy()
    }
    match *op {
        Op::Unshare { .. } => "unshare the cgroup namespace".into(),
        Op::SetNs { .. } => "join a namespace".into(),
        Op::Propagation { .. } => "change the propagation of /".into(),
        Op::AttachRoot { .. } => "attach the rootfs".into(),
        Op::AttachMount { target, .. } => format!("attach a volume on /{}", s(target)),
        Op::Mount { target, flags, .. } if flags & PROPAGATION != 0 => {
            format!("change the propagation of /{}", s(target))
        }
        Op::Mount { target, flags, .. } if flags & ms::REMOUNT != 0 => {
            format!("remount /{}", s(target))
        }
        Op::Mount {
            source,
            target,
            flags,
            ..
        } if flags & ms::BIND != 0 => format!("bind {} on /{}", s(source), s(target)),
        Op::Mount { fstype, target, .. } => format!("mount {} on /{}", s(fstype), s(target)),
        Op::Mkdir { path, .. } => format!("mkdir /{}", s(path)),
        Op::Touch { path, .. } => format!("create /{}", s(path)),
        Op::Symlink { target, path } => format!("symlink /{} -> {}", s(path), s(target)),
        Op::Mask { target, .. } => format!("mask /{}", s(target)),
        Op::RemountBind { path, set, .. } if set & ms::RDONLY != 0 => {
            format!("make /{} read-only", s(path))
        }
        Op::RemountBind { path, set, .. } if set & ms::NODEV != 0 => {
            format!("make /{} nodev", s(path))
        }
        Op::RemountBind { path, clear, .. } if clear & ms::NODEV != 0 => {
            format!("let the device /{} open", s(path))
        }
        Op::RemountBind { path, .. } => format!("remount /{}", s(path)),
        Op::Mknod { path, .. } => format!("make the device /{}", s(path)),
        Op::PassFds { count, .. } => format!("pass the caller's fds 3 to {}", 2 + count),
        Op::Hostname { name } => format!("sethostname {}", s(name)),
        Op::LoopbackUp => "bring up lo".into(),
        Op::PivotRoot => "pivot_root into the rootfs".into(),
        Op::ChrootRoot => "chroot into the rootfs".into(),
        Op::Chdir { path } => format!("chdir {}", s(path)),
        Op::Setsid => "setsid".into(),
        Op::ControllingTty => "take the pseudo-terminal as controlling terminal".into(),
        Op::NoNewPrivs => "set no_new_privs".into(),
        Op::Undumpable => "make the process undumpable".into(),
        Op::Seccomp { .. } => "install the seccomp filter".into(),
        Op::Capabilities { .. } => "set the capabilities".into(),
        Op::Fail { .. } => "injected failure (HUSK_FAIL_AT_STEP)".into(),
        Op::Pretend { .. } => "pretend calls are missing".into(),
        Op::Init { .. } => "start the command under husk's init".into(),
        Op::SetIds { uid, gid, .. } => format!("become uid {uid}, gid {gid}"),
        Op::EnterRoot { .. } => "enter the container's root".into(),
        Op::AwaitStart { .. } => "wait for start".into(),
        Op::Sysctl { path, .. } => format!("set the sysctl /{}", s(path)),
        Op::Exec { argv, .. } => format!(
            "exec {}",
            argv.first().map(s).unwrap_or("<empty argv>".into())
        ),
    }
}

/// The system call number `sub` of `op` made, as shim/src/ops.rs numbers
/// them; None where the op makes only one.
pub fn syscall(op: &Op<'_>, sub: u32) -> Option<&'static str> {
    const OPEN: &str = "openat2 beneath the root";
    let calls: &[&str] = match op {
        Op::SetNs { .. } => &["fcntl", "setns"],
        Op::AttachRoot { .. } => &["fcntl", "move_mount", "mount (propagation)"],
        Op::AttachMount { .. } => &[OPEN, "move_mount", "mount (propagation)"],
        Op::AwaitStart { .. } => &["fcntl", "read the exec fifo"],
        Op::Sysctl { .. } => &[OPEN, "open", "fstatfs (is it procfs?)", "write"],
        Op::Mount { .. } => &[OPEN, "mount"],
        Op::Mkdir { .. } => &[OPEN, "mkdirat"],
        Op::Touch { .. } => &[OPEN, "openat"],
        Op::Symlink { .. } => &[OPEN, "symlinkat"],
        Op::Mask { .. } => &[
            OPEN,
            "fstat",
            "mount tmpfs",
            "open /dev/null",
            "check /dev/null is char 1:3",
            "bind /dev/null",
        ],
        Op::RemountBind { .. } => &[OPEN, "bind onto itself", OPEN, "fstatvfs", "remount"],
        Op::Mknod { .. } => &[OPEN, "mknodat", "fchownat"],
        Op::PassFds { .. } => &["dup3 above", "dup3 to 3 and up"],
        Op::LoopbackUp => &["socket", "ioctl SIOCSIFFLAGS"],
        Op::PivotRoot => &["fchdir", "pivot_root", "umount2 the old root", "chdir /"],
        Op::ChrootRoot => &["fchdir", "chroot", "chdir /"],
        Op::Capabilities { .. } => &["prctl PR_CAPBSET_DROP", "prctl PR_CAP_AMBIENT", "capset"],
        Op::Init { .. } => &[
            "rt_sigprocmask",
            "fork",
            "setpgid",
            "tcsetpgrp",
            "rt_sigprocmask",
        ],
        Op::SetIds { .. } => &["setgroups", "setgid", "setuid"],
        Op::EnterRoot { .. } => &["fchdir", "chroot", "chdir /"],
        _ => &[],
    };
    calls.get(sub as usize).copied()
}

/// What a failure is described with: the process being started.
pub struct Process<'a> {
    pub shim: &'a crate::shim::Source,
    pub argv: &'a [CString],
    pub candidates: &'a [CString],
    /// For a missing interpreter's name; None for `exec`, whose root the
    /// runner does not hold.
    pub rootfs: Option<&'a Rootfs>,
}

/// One line for a failure inside the container before exec, naming the
/// step, the system call, its path and the errno.
pub fn failure(what: &Process<'_>, plan: &Plan, report: Report) -> Error {
    let errno = report.errno as i32;
    match report.step {
        STEP_EXEC_SHIM => Error::new(format!(
            "exec shim {}: {}",
            what.shim.describe(),
            describe_errno(errno)
        )),
        STEP_READ_PLAN => Error::new(format!("shim: read plan: {}", describe_errno(errno))),
        STEP_USERNS_ROOT => Error::new(format!(
            "become uid and gid 0 of the container's user namespace: {}: {}",
            if report.sub == 0 {
                "setresgid"
            } else {
                "setresuid"
            },
            describe_errno(errno)
        )),
        STEP_DECODE_PLAN => {
            Error::new("shim: refused a malformed plan (runner and shim from different builds?)")
        }
        step if step as usize == plan.exec_step => exec_error(what, report),
        step => {
            let ops = crate::plan::decode(&plan.bytes);
            let Some(op) = ops.get(step as usize) else {
                return Error::new(format!(
                    "shim: unknown step {step}: {}",
                    describe_errno(errno)
                ));
            };
            let what = self::op(op);
            let call = syscall(op, report.sub)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            let why = if errno == libc::ELOOP {
                ": husk refuses symlinks in the paths it mounts on inside the rootfs"
            } else {
                ""
            };
            Error::new(format!("{what}{call}: {}{why}", describe_errno(errno)))
        }
    }
}

/// The exec step's failures, with Docker's statuses: 127 not found, 126
/// not executable. `report.sub` is 1 + the index of the candidate that
/// exists but answered ENOENT: its ELF interpreter or `#!` program is
/// missing in the rootfs.
fn exec_error(what: &Process<'_>, report: Report) -> Error {
    let errno = report.errno as i32;
    let cmd = what
        .argv
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    // The texts are the ones podman maps to 126 and 127, as runc's are.
    if errno == libc::EACCES {
        return Error::new(format!("exec {cmd}: permission denied (EACCES)"))
            .with_status(NOT_EXECUTABLE);
    }
    if errno != libc::ENOENT {
        return Error::new(format!("exec {cmd}: {}", describe_errno(errno)))
            .with_status(NOT_EXECUTABLE);
    }
    let found = (report.sub as usize)
        .checked_sub(1)
        .and_then(|i| what.candidates.get(i));
    if let Some(path) = found {
        let path = path.to_string_lossy();
        let missing = what
            .rootfs
            .and_then(|r| r.interpreter(&path))
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        return Error::new(format!(
            "exec {cmd}: {path} exists, but the program it needs to run{missing} is missing \
             in the container"
        ))
        .with_status(NOT_FOUND);
    }
    if cmd.contains('/') {
        Error::new(format!("exec {cmd}: no such file or directory (ENOENT)")).with_status(NOT_FOUND)
    } else {
        Error::new(format!(
            "exec {cmd}: executable file not found in the container's PATH"
        ))
        .with_status(NOT_FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_their_calls_are_named() {
        let op = Op::RemountBind {
            path: c"proc/sys",
            bind: true,
            set: ms::RDONLY | ms::NOSUID,
            clear: 0,
            optional: true,
        };
        assert_eq!(self::op(&op), "make /proc/sys read-only");
        assert_eq!(syscall(&op, 4), Some("remount"));
        assert_eq!(syscall(&op, 9), None);
        assert_eq!(syscall(&Op::Setsid, 0), None);
    }
}

//! How the shim's operations are named in the runner's error lines: the
//! operation with its path, then the system call inside it that failed
//! (the report's sub-step, numbered as in shim/src/ops.rs). Only the
//! failing op is ever described, after the fact: nothing here is on the
//! start-up path.

use std::ffi::CStr;

use shim::plan::{ms, Op};

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
        Op::RemountBind { path, .. } => format!("remount /{}", s(path)),
        Op::Hostname { name } => format!("sethostname {}", s(name)),
        Op::LoopbackUp => "bring up lo".into(),
        Op::PivotRoot => "pivot_root into the rootfs".into(),
        Op::ChrootRoot => "chroot into the rootfs".into(),
        Op::Chdir { path } => format!("chdir {}", s(path)),
        Op::Setsid => "setsid".into(),
        Op::ControllingTty => "take the pseudo-terminal as controlling terminal".into(),
        Op::NoNewPrivs => "set no_new_privs".into(),
        Op::Seccomp { .. } => "install the seccomp filter".into(),
        Op::Capabilities { .. } => "set the capabilities".into(),
        Op::Fail { .. } => "injected failure (HUSK_FAIL_AT_STEP)".into(),
        Op::Pretend { .. } => "pretend calls are missing".into(),
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
        Op::LoopbackUp => &["socket", "ioctl SIOCSIFFLAGS"],
        Op::PivotRoot => &["fchdir", "pivot_root", "umount2 the old root", "chdir /"],
        Op::ChrootRoot => &["fchdir", "chroot", "chdir /"],
        Op::Capabilities { .. } => &["prctl PR_CAPBSET_DROP", "prctl PR_CAP_AMBIENT", "capset"],
        _ => &[],
    };
    calls.get(sub as usize).copied()
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
            optional: true,
        };
        assert_eq!(self::op(&op), "make /proc/sys read-only");
        assert_eq!(syscall(&op, 4), Some("remount"));
        assert_eq!(syscall(&op, 9), None);
        assert_eq!(syscall(&Op::Setsid, 0), None);
    }
}

//! Processes known by PID and start time: a PID alone may have been given
//! to another process since it was written down.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// When `pid` started, in clock ticks since boot (/proc/PID/stat field 22),
/// or None if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    use std::io::Read;
    // One read: the line is well under a page.
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut f| f.read(&mut buf))
        .ok()?;
    let stat = std::str::from_utf8(&buf[..n]).ok()?;
    // comm may hold spaces and parentheses: the fields follow the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); field 22 is the 20th after it. A
    // zombie has ended: only its parent's wait is left of it.
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// This boot's ID (/proc/sys/kernel/random/boot_id), read once: a PID
/// and start time written down before the host restarted mean nothing
/// now, however well they match a process of this boot.
pub fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// The children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGKILL to a child of ours, then its reaping: for failures half-way,
/// so that nothing of the runner's outlives them.
pub fn kill_and_reap(pid: i32) {
    // SAFETY: plain syscalls on a child this process made.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Sends `sig` to `pid` if it is still the process that started at
/// `start`. Through a pidfd where the kernel has one (5.3), so that the
/// PID cannot be reused between the check and the signal.
pub fn kill_if_same(pid: i32, start: u64, sig: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags; the fd is then ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        if start_time(pid) != Some(start) {
            return false;
        }
        // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        return r == 0;
    }
    if start_time(pid) != Some(start) {
        return false;
    }
    // SAFETY: kill(2) takes plain integers.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Sets `pid`'s resource limits (resource, soft, hard) and its OOM score
/// adjustment: a child of ours that has not run anything yet.
pub fn set_limits(pid: i32, rlimits: &[(u32, u64, u64)], oom_score_adj: Option<i32>) -> Result<()> {
    for &(resource, soft, hard) in rlimits {
        let lim = libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: prlimit64 reads one struct we own; no old value asked.
        if unsafe { libc::prlimit64(pid, resource as _, &lim, std::ptr::null_mut()) } != 0 {
            return Err(Error::os(
                format_args!("prlimit64 {} of the container", rlimit_name(resource)),
                &std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(adj) = oom_score_adj {
        // The host's procfs, and a process of ours that waits for its
        // plan: the container has no hand in it yet.
        let path = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&path, adj.to_string())
            .map_err(|e| Error::os(format_args!("write {adj} to {path}"), &e))?;
    }
    Ok(())
}

/// The OCI names of the resource limits, by number.
pub const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

fn rlimit_name(resource: u32) -> &'static str {
    RLIMITS
        .get(resource as usize)
        .copied()
        .unwrap_or("RLIMIT_?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_its_pid_and_start() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("our own start time");
        assert!(start > 0);
        // Signal 0 checks without sending.
        assert!(kill_if_same(me, start, 0));
        assert!(!kill_if_same(me, start + 1, 0));
        assert_eq!(start_time(i32::MAX), None);
    }
}

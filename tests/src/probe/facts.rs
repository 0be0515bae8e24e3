//! `husk-probe facts`: who and where this process is, as the kernel says.

use std::fs;

use crate::fact;

pub fn main(_: &[String]) -> Result<(), String> {
    // SAFETY: these calls take no arguments and cannot fail.
    let (pid, ppid, uid, gid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getuid(),
            libc::getgid(),
        )
    };
    fact("pid", pid);
    fact("ppid", ppid);
    fact("uid", uid);
    fact("gid", gid);
    let status = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    for key in [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
    ] {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("?");
        fact(&key.to_ascii_lowercase(), value);
    }
    // The user namespace's mapping, its first line ("0 0 4294967295" in
    // the host's).
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    fact(
        "uid_map",
        map.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    );
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    fact("hostname", host.trim());
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    fact("cwd", cwd.display());
    for ns in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
        let link = fs::read_link(format!("/proc/self/ns/{ns}"))
            .map(|l| l.display().to_string())
            .unwrap_or_else(|_| "?".into());
        fact(&format!("ns.{ns}"), link);
    }
    let fds: Vec<String> = fs::read_dir("/proc/self/fd")
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // The directory listing holds one fd of its own while it is read.
    fact("fds", fds.len().saturating_sub(1));
    for line in fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
    {
        fact("cgroup", line);
    }
    Ok(())
}

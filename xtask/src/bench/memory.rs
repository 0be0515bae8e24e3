//! Peak memory (VmHWM) of the runner and of the shim, read at the moments
//! they peak, under ptrace:
//!
//! - the runner: at its exit (PTRACE_EVENT_EXIT, before its memory is
//!   released), so the figure covers its whole life, supervision included;
//! - the shim: at the entry of its execve of the user's program, the last
//!   moment its memory exists — every op of the plan has run by then;
//! - the container's PID 1 after that exec (busybox), at its exit.
//!
//! VmHWM is per address space, so each figure is that program's alone (the
//! clone child's copy of the runner, before it execs the shim, counts for
//! neither). ru_maxrss could not tell them apart: the kernel carries it
//! across execve.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// KiB, as /proc reports them.
#[derive(Default, Clone)]
pub struct Peaks {
    pub runner_hwm: u64,
    pub shim_hwm: u64,
    pub shim_rss: u64,
    pub init_hwm: u64,
    /// Where the resident pages are at those moments: mapping, KiB.
    pub runner_maps: Vec<(String, u64)>,
    pub shim_maps: Vec<(String, u64)>,
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;

pub fn peaks(runner: &Path, rootfs: &Path, flags: &[&str]) -> crate::Result<Peaks> {
    let mut cmd = Command::new(runner);
    cmd.arg("--rootfs")
        .arg(rootfs)
        .args(flags)
        .args(["--", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: one raw syscall between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("run the runner: {e}"))?;
    super::launched(child.id());
    let runner = child.id() as i32;
    let result = trace(runner);
    if result.is_err() {
        // SAFETY: our own child.
        unsafe { libc::kill(runner, libc::SIGKILL) };
        while wait_any().is_ok() {}
    }
    result
}

fn trace(runner: i32) -> crate::Result<Peaks> {
    // The runner stops with SIGTRAP after its execve, as a tracee does.
    let mut status = 0;
    // SAFETY: waitpid writes the status.
    let pid = unsafe { libc::waitpid(runner, &mut status, libc::__WALL) };
    if pid != runner || !libc::WIFSTOPPED(status) {
        return Err(format!(
            "the traced runner did not stop after exec: {}",
            super::describe_status(status)
        ));
    }
    let options = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT
        | libc::PTRACE_O_EXITKILL;
    ptrace(libc::PTRACE_SETOPTIONS, runner, options as usize)?;
    ptrace(libc::PTRACE_CONT, runner, 0)?;

    let mut peaks = Peaks::default();
    // How many execs the container's process has made: 1 is the shim.
    let mut execs = 0;
    let mut runner_status = None;
    while runner_status.is_none() {
        let (pid, status) = wait_any()?;
        // Exits of others: orphans that came to us, the subreaper.
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if pid == runner {
                runner_status = Some(status);
            }
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let shim = pid != runner;
        let mut resume = libc::PTRACE_CONT;
        let mut inject = 0;
        match event {
            libc::PTRACE_EVENT_EXEC if shim => {
                execs += 1;
                if execs == 1 {
                    // Now the shim: watch its syscalls for its execve.
                    resume = libc::PTRACE_SYSCALL;
                }
            }
            libc::PTRACE_EVENT_EXIT => {
                let hwm = status_kib(pid, "VmHWM:");
                if shim {
                    peaks.init_hwm = hwm;
                } else {
                    peaks.runner_hwm = hwm;
                    peaks.runner_maps = resident_maps(pid);
                }
            }
            0 if sig == libc::SIGTRAP | 0x80 && shim && execs == 1 => {
                if is_exec_entry(pid)? {
                    peaks.shim_hwm = status_kib(pid, "VmHWM:");
                    peaks.shim_rss = status_kib(pid, "VmRSS:");
                    peaks.shim_maps = resident_maps(pid);
                } else {
                    resume = libc::PTRACE_SYSCALL;
                }
            }
            0 if sig == libc::SIGTRAP | 0x80 => {}
            // A new tracee's first stop, and the fork events: nothing to pass on.
            0 if sig == libc::SIGSTOP && shim && execs == 0 => {}
            0 => inject = sig,
            _ => {}
        }
        ptrace(resume, pid, inject as usize)?;
    }
    let status = runner_status.unwrap_or_default();
    if status != 0 {
        return Err(format!(
            "the traced runner failed: {}",
            super::describe_status(status)
        ));
    }
    if peaks.shim_hwm == 0 {
        return Err("did not see the shim exec the container's program".into());
    }
    Ok(peaks)
}

fn is_exec_entry(pid: i32) -> crate::Result<bool> {
    // struct ptrace_syscall_info: op u8, pad, arch u32, ip, sp, then nr.
    let mut info = [0u64; 16];
    // SAFETY: the kernel writes at most the size we pass.
    let n = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid,
            std::mem::size_of_val(&info),
            info.as_mut_ptr(),
        )
    };
    if n < 0 {
        return Err(format!(
            "PTRACE_GET_SYSCALL_INFO: {}",
            std::io::Error::last_os_error()
        ));
    }
    let op = (info[0] & 0xff) as u8;
    let nr = info[3] as libc::c_long;
    Ok(op == PTRACE_SYSCALL_INFO_ENTRY && (nr == libc::SYS_execve || nr == libc::SYS_execveat))
}

fn ptrace(request: libc::c_uint, pid: i32, data: usize) -> crate::Result {
    // SAFETY: requests that take no pointers.
    if unsafe { libc::ptrace(request, pid, 0, data) } < 0 {
        let e = std::io::Error::last_os_error();
        // A tracee killed meanwhile is not an error of ours.
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(format!("ptrace {request} of {pid}: {e}"));
        }
    }
    Ok(())
}

fn wait_any() -> crate::Result<(i32, i32)> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes the status.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid > 0 {
            return Ok((pid, status));
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {e}"));
        }
    }
}

/// A "Key:   N kB" line of /proc/PID/status.
pub fn status_kib(pid: i32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The resident KiB of each mapping of `pid` (by file, or [heap], [stack],
/// anonymous), the biggest first.
fn resident_maps(pid: i32) -> Vec<(String, u64)> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut maps: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            let perms = fields.get(1).copied().unwrap_or("");
            let name = fields.get(5..).map(|n| n.join(" ")).unwrap_or_default();
            let name = match name.rsplit('/').next() {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => "anonymous".to_string(),
            };
            current = format!("{name} {perms}");
        } else if let (Some(&"Rss:"), Some(kib)) = (fields.first(), fields.get(1)) {
            let kib: u64 = kib.parse().unwrap_or(0);
            if kib > 0 {
                match maps.iter_mut().find(|(n, _)| *n == current) {
                    Some((_, k)) => *k += kib,
                    None => maps.push((current.clone(), kib)),
                }
            }
        }
    }
    maps.sort_by_key(|m| std::cmp::Reverse(m.1));
    maps
}

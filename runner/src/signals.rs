//! Supervision: wait for PID 1 while passing on the signals the runner gets.
//!
//! The signals are blocked before the clone and taken with sigwaitinfo, so
//! none is lost between setup and the wait, and no handler runs.

use std::mem::MaybeUninit;

pub const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub struct Mask {
    /// FORWARDED and SIGCHLD.
    pub blocked: libc::sigset_t,
    /// What the child restores before exec.
    pub empty: libc::sigset_t,
}

pub fn block() -> Mask {
    // SAFETY: sigset manipulation on local, initialised sets.
    unsafe {
        let mut blocked = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        let mut empty = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut blocked);
        libc::sigemptyset(&mut empty);
        for sig in FORWARDED.into_iter().chain([libc::SIGCHLD]) {
            libc::sigaddset(&mut blocked, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        Mask { blocked, empty }
    }
}

/// How PID 1 ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The runner's exit status: the code, or 128+N (runc, crun, shells).
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

pub fn supervise(pid: i32, mask: &Mask) -> Exit {
    // The signal we killed PID 1 for, standing in for the default action the
    // kernel does not take on a namespace's init.
    let mut killed_for = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Exit::Code(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                return Exit::Signal(match killed_for {
                    Some(s) if sig == libc::SIGKILL => s,
                    _ => sig,
                });
            }
            continue; // stopped or continued: keep waiting
        }
        if r < 0 {
            // Only if the child was reaped elsewhere, which nothing does.
            return Exit::Code(crate::error::RUNTIME);
        }
        // SAFETY: a zeroed siginfo_t is valid; sigwaitinfo fills it.
        let mut info = unsafe { MaybeUninit::<libc::siginfo_t>::zeroed().assume_init() };
        let sig = unsafe { libc::sigwaitinfo(&mask.blocked, &mut info) };
        if sig > 0 && sig != libc::SIGCHLD {
            forward(pid, sig, info.si_code, &mut killed_for);
        }
    }
}

/// A namespace's init gets only the signals it has a handler for: the
/// kernel drops the rest, even SIGTERM and SIGINT. So a signal PID 1
/// catches is passed on; one it ignores stays ignored; one it would die of
/// (the default action of every forwarded signal) kills it, and the runner
/// exits with 128+N as if it had.
fn forward(pid: i32, sig: i32, code: i32, killed_for: &mut Option<i32>) {
    let (caught, ignored) = dispositions(pid, sig);
    if caught {
        // ^C on a shared terminal reaches PID 1 straight from the kernel
        // when it is in our process group: do not send it twice.
        // SAFETY: getpgid takes plain integers.
        let same_group = unsafe { libc::getpgid(pid) == libc::getpgid(0) };
        if !(code == libc::SI_KERNEL && same_group) {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid, sig) };
        }
    } else if !ignored {
        *killed_for = Some(sig);
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Whether `pid` catches and whether it ignores `sig`, from /proc/PID/status.
fn dispositions(pid: i32, sig: i32) -> (bool, bool) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let has = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
    };
    (has("SigCgt:"), has("SigIgn:"))
}

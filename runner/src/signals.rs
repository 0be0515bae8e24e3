//! Supervision: wait for PID 1 while passing on the signals the runner gets
//! and, with a terminal, relaying the container's pseudo-terminal.
//!
//! The signals are blocked before the clone and read from a signalfd, so
//! none is lost between setup and the wait, and no handler runs.

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::tty::Pty;

pub const FORWARDED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

pub struct Mask {
    /// What the child restores before exec.
    pub empty: libc::sigset_t,
    /// Where the blocked signals (FORWARDED, SIGCHLD and SIGWINCH) are read.
    signals: OwnedFd,
}

/// Blocks the signals the supervisor reads, and opens the signalfd it reads
/// them from: before the clone, so that a failure leaves no container
/// behind and no signal is lost.
pub fn block() -> crate::error::Result<Mask> {
    // SAFETY: sigset manipulation on local, initialised sets.
    let (blocked, empty) = unsafe {
        let mut blocked = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        let mut empty = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut blocked);
        libc::sigemptyset(&mut empty);
        for sig in FORWARDED.into_iter().chain([libc::SIGCHLD, libc::SIGWINCH]) {
            libc::sigaddset(&mut blocked, sig);
        }
        (blocked, empty)
    };
    // SAFETY: signalfd on our own, initialised set.
    let sfd = unsafe { libc::signalfd(-1, &blocked, libc::SFD_CLOEXEC) };
    if sfd < 0 {
        return Err(crate::error::Error::os(
            "signalfd for the signals to pass on",
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd that nothing else owns; sigprocmask on our set.
    let signals = unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        OwnedFd::from_raw_fd(sfd)
    };
    Ok(Mask { empty, signals })
}

impl Mask {
    /// The signalfd, to poll.
    pub fn fd(&self) -> i32 {
        self.signals.as_raw_fd()
    }

    /// The next signal received, with its si_code; None if there is none.
    pub fn next(&self) -> Option<(i32, i32)> {
        // SAFETY: a signalfd read fills whole signalfd_siginfo records.
        let mut info = unsafe { MaybeUninit::<libc::signalfd_siginfo>::zeroed().assume_init() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads into `info`, which has `size` bytes.
        let n = unsafe {
            libc::read(
                self.fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n == size as isize).then_some((info.ssi_signo as i32, info.ssi_code))
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

pub fn supervise(pid: i32, mask: &Mask, pty: Option<&Pty>) -> Exit {
    let sfd = mask.fd();
    let master = pty.map(|p| p.master.as_raw_fd());
    let (mut stdin_open, mut master_open) = (master.is_some(), master.is_some());
    // The signal we killed PID 1 for, standing in for the default action the
    // kernel does not take on a namespace's init.
    let mut killed_for = None;
    // Whether the last byte typed ended a line, for the end of input.
    let mut mid_line = false;
    loop {
        if let Some(exit) = reap(pid, killed_for) {
            if let Some(m) = master.filter(|_| master_open) {
                drain(m);
            }
            return exit;
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = master {
            fds.push(libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
            fds.push(libc::pollfd {
                fd: if master_open { m } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: poll on our own array.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            continue; // EINTR
        }
        if fds[0].revents & libc::POLLIN != 0 {
            match mask.next() {
                Some((libc::SIGCHLD, _)) | None => {}
                Some((libc::SIGWINCH, _)) => {
                    if let Some(p) = pty {
                        p.resize();
                    }
                }
                Some((sig, code)) => forward(pid, sig, code, &mut killed_for),
            }
        }
        if let Some(m) = master {
            if fds[1].revents != 0 {
                let input = pty.map(|p| p.relay_input(0)).unwrap_or_default();
                stdin_open = input.open;
                if let Some(b) = input.last {
                    mid_line = b != b'\n';
                }
                if let (Some(sig), Some(p)) = (input.signal, pty) {
                    typed(pid, sig, p, &mut killed_for);
                }
                if !stdin_open {
                    // Not a terminal (a pipe, /dev/null) that has ended:
                    // the end reaches the program as it would from a
                    // terminal, ^D.
                    if let Some(p) = pty {
                        p.send_eof(mid_line);
                    }
                }
            }
            if fds[2].revents != 0 {
                master_open = crate::tty::relay(m, 1);
            }
        }
    }
}

/// PID 1's exit, if it has ended.
pub fn reap(pid: i32, killed_for: Option<i32>) -> Option<Exit> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r < 0 {
        // Only if the child was reaped elsewhere, which nothing does.
        return Some(Exit::Code(crate::error::RUNTIME));
    }
    if r != pid {
        return None;
    }
    if libc::WIFEXITED(status) {
        return Some(Exit::Code(libc::WEXITSTATUS(status)));
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        return Some(Exit::Signal(match killed_for {
            Some(s) if sig == libc::SIGKILL => s,
            _ => sig,
        }));
    }
    None // stopped or continued: keep waiting
}

/// What the container wrote to its terminal before it ended.
fn drain(master: i32) {
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(master, libc::F_SETFL, libc::O_NONBLOCK) };
    while crate::tty::relay(master, 1) {}
}

/// A namespace's init gets only the signals it has a handler for: the
/// kernel drops the rest, even SIGTERM and SIGINT. So a signal PID 1
/// catches is passed on; one it ignores stays ignored; one it would die of
/// (the default action of every forwarded signal) kills it, and the runner
/// exits with 128+N as if it had.
pub fn forward(pid: i32, sig: i32, code: i32, killed_for: &mut Option<i32>) {
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
/// A blocked signal counts as caught: the kernel queues it even for a
/// namespace's init (husk's own, `--init`, waits for every signal so).
fn dispositions(pid: i32, sig: i32) -> (bool, bool) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let has = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
    };
    (has("SigCgt:") || has("SigBlk:"), has("SigIgn:"))
}

/// The signals by name, for `kill -s` and the status lines.
const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// "SIGTERM", or "signal 40" for one without a name.
pub fn name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|(_, n)| *n == sig)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| format!("signal {sig}"))
}

/// "TERM", "SIGTERM", "sigterm" or "15".
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|(_, n)| *n)
}

/// What the container's terminal did with a byte the user typed: the
/// line discipline sends ^C's SIGINT (^\'s SIGQUIT) to the terminal's
/// foreground process group, and when that is PID 1's, the kernel drops
/// it unless PID 1 has a handler. What a program gets on a plain host, it
/// gets here: PID 1 is ended as if by the signal. One it catches, it has
/// had from the kernel; one it ignores stays ignored.
pub fn typed(pid: i32, sig: i32, pty: &Pty, killed_for: &mut Option<i32>) {
    // SAFETY: getpgid takes a plain integer.
    let group = unsafe { libc::getpgid(pid) };
    if group <= 0 || pty.foreground_group() != Some(group) {
        return; // a job of PID 1's got it, as on any terminal
    }
    let (caught, ignored) = dispositions(pid, sig);
    if !caught && !ignored {
        *killed_for = Some(sig);
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

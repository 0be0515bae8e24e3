//! `--init`: the shim stays as the container's PID 1 and the command runs
//! as PID 2. A namespace's init gets no signal it has no handler for, and
//! a program written for a plain host rarely has one (`sleep` ignores ^C
//! as PID 1, `yes` never dies of SIGPIPE); orphans come to PID 1 and stay
//! zombies unless it reaps them. This loop is what tini and catatonit do,
//! with no policy: every signal it can catch goes to the child, every
//! process that ends is reaped, and the child's status is its own.
//!
//! Raw system calls: rustix keeps fork and the signal mask out of its
//! stable API.

use linux_raw_sys::general::{
    __NR_clone, __NR_kill, __NR_rt_sigprocmask, __NR_rt_sigtimedwait, SIGCHLD, SIG_SETMASK,
};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use rustix::process::WaitOptions;

use crate::arch;
use crate::ops::{At, Fail};

/// The kernel's signal set: 64 signals on every architecture we build for.
const ALL: u64 = !0;
const NONE: u64 = 0;

fn check(r: isize) -> Result<isize, Errno> {
    if r < 0 {
        Err(Errno::from_raw_os_error(-r as i32))
    } else {
        Ok(r)
    }
}

fn set_mask(set: u64) -> Result<isize, Errno> {
    // SAFETY: rt_sigprocmask reads one 8-byte set; no old set is asked for.
    check(unsafe {
        arch::syscall4(
            __NR_rt_sigprocmask as usize,
            SIG_SETMASK as usize,
            &set as *const u64 as usize,
            0,
            8,
        )
    })
}

/// Forks. Returns in the child, which goes on with the plan; the parent
/// never returns.
pub fn start(tty: bool) -> Result<(), Fail> {
    // Blocked before the fork, so that nothing sent between the fork and
    // the wait is lost: a namespace's init gets the signals it blocks
    // (the kernel drops only those it would take by default), and the
    // runner counts blocked signals as caught when it passes one on.
    set_mask(ALL).at(0)?;
    // SAFETY: clone without CLONE_VM is a fork; the shim is
    // single-threaded and holds no lock. With only the exit signal set,
    // the pointer arguments are not read.
    let pid = check(unsafe { arch::syscall(__NR_clone as usize, SIGCHLD as usize, 0, 0) }).at(1)?;
    if pid == 0 {
        // A group of its own, in the foreground of the terminal: ^C from
        // the terminal reaches the program once, not also through this
        // process.
        rustix::process::setpgid(None, None).at(2)?;
        if tty {
            // SAFETY: fd 0 is the container's terminal for the shim's
            // whole life.
            let stdin = unsafe { BorrowedFd::borrow_raw(0) };
            rustix::termios::tcsetpgrp(stdin, rustix::process::getpid()).at(3)?;
        }
        set_mask(NONE).at(4)?;
        return Ok(());
    }
    // The report pipe is the runner's news of the exec: only the child may
    // hold it, so that it reads EOF when the child execs.
    // SAFETY: fd 4 is the shim's and nothing borrows it here.
    unsafe { rustix::io::close(shim::report::REPORT_FD) };
    supervise(pid as i32)
}

fn supervise(child: i32) -> ! {
    loop {
        // SAFETY: rt_sigtimedwait reads one 8-byte set; no info, no timeout.
        let sig = unsafe {
            arch::syscall4(
                __NR_rt_sigtimedwait as usize,
                &ALL as *const u64 as usize,
                0,
                0,
                8,
            )
        };
        if sig == SIGCHLD as isize {
            reap(child);
        } else if sig > 0 {
            // Gone already: its SIGCHLD is on its way.
            // SAFETY: kill takes plain integers.
            unsafe { arch::syscall(__NR_kill as usize, child as usize, sig as usize, 0) };
        }
    }
}

/// Reaps every process that has ended; exits with the child's status once
/// it is among them (the kernel then ends the rest of the namespace).
fn reap(child: i32) {
    while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
        if pid.as_raw_nonzero().get() == child {
            let code = match (status.exit_status(), status.terminating_signal()) {
                (Some(code), _) => code,
                (None, Some(sig)) => 128 + sig,
                (None, None) => continue, // stopped or continued
            };
            arch::exit_group(code)
        }
    }
}

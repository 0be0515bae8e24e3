//! husk-floor [--net] PROGRAM ARGV0 [ARG...]
//!
//! The kernel floor of `cargo xtask bench`: the least any runtime must do to
//! start a program in husk's namespaces. One clone() with the runner's flags
//! (mount, UTS, IPC, PID, cgroup, and network with `--net`), execve() of
//! PROGRAM with the given argv and an empty environment, and a wait. No
//! mounts, no pivot_root, no cgroup, no pipes: nothing can start a container
//! faster than this, so each runtime's time above it is its own overhead.
//!
//! Exits with the program's status, 128+N if signal N killed it, 125 if
//! clone failed, 127 if execve did.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, CStr};
use core::ptr;

// The libc crate leaves linking the C library to std, which this program
// does without: musl's libc.a is the self-contained one Rust ships.
#[cfg_attr(target_env = "musl", link(name = "c", kind = "static"))]
#[cfg_attr(not(target_env = "musl"), link(name = "c"))]
extern "C" {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(125) }
}

/// The unwind tables of Rust's prebuilt `core` name this routine; a debug
/// build links them in. Panics abort here, so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// # Safety
/// Called by the C runtime with the program's argv.
#[no_mangle]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut first = 1;
    let mut flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWCGROUP
        | libc::SIGCHLD;
    if first < argc && CStr::from_ptr(*argv.add(first as usize)) == c"--net" {
        flags |= libc::CLONE_NEWNET;
        first += 1;
    }
    if argc - first < 2 {
        let usage = b"usage: husk-floor [--net] PROGRAM ARGV0 [ARG...]\n";
        libc::write(2, usage.as_ptr().cast(), usage.len());
        return 125;
    }
    let program = *argv.add(first as usize);
    let child_argv = argv.add(first as usize + 1);
    let envp: [*const c_char; 1] = [ptr::null()];

    // Without CLONE_VM this is a fork into new namespaces, as the runner's.
    let pid = libc::syscall(libc::SYS_clone, flags as libc::c_long, 0, 0, 0, 0);
    if pid < 0 {
        return 125;
    }
    if pid == 0 {
        libc::execve(program, child_argv, envp.as_ptr());
        libc::_exit(127);
    }
    let mut status = 0;
    while libc::waitpid(pid as libc::pid_t, &mut status, 0) < 0 {
        if *libc::__errno_location() != libc::EINTR {
            return 125;
        }
    }
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

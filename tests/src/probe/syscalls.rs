//! `husk-probe syscalls`: the calls the seccomp filter decides on, each as
//! `name=ERRNO` (`0` when it succeeded).
//!
//! Every call is made with arguments the kernel rejects early — a bad flag,
//! a bad size, fd -1, a NULL path — so that an allowed call answers EINVAL,
//! EFAULT or EBADF, a refused one the filter's EPERM (or ENOSYS), and nothing
//! changes even in a container with every capability. The few that must
//! succeed to show something (a user namespace, a personality) run in a
//! child process that exits right after.

use std::io::Error;

use crate::{errno_name, errno_of, fact};

type Call = fn() -> libc::c_long;

/// Name, the call, and whether to make it in a child process.
const CALLS: &[(&str, Call, bool)] = &[
    ("getppid", || sys0(libc::SYS_getppid), false),
    ("fork", fork_and_reap, false),
    // clone without namespace flags, as fork and threads use it; with
    // garbage in the high half of the flags, which the kernel ignores.
    (
        "clone_sigchld",
        || clone_and_reap(libc::SIGCHLD as u64),
        true,
    ),
    (
        "clone_sigchld_high_bits",
        || clone_and_reap(0xdead_beef << 32 | libc::SIGCHLD as u64),
        true,
    ),
    // CLONE_NEWUSER with CLONE_FS is EINVAL: a refusal is the filter's.
    (
        "clone_newuser",
        || clone_and_reap((libc::CLONE_NEWUSER | libc::CLONE_FS | libc::SIGCHLD) as u64),
        true,
    ),
    // The real thing: a user namespace for the child, which then exits.
    (
        "unshare_newuser",
        || sys1(libc::SYS_unshare, libc::CLONE_NEWUSER as u64),
        true,
    ),
    // Bit 0 is not an unshare flag: EINVAL.
    (
        "unshare_bad_flags",
        || sys1(libc::SYS_unshare, libc::CLONE_NEWUSER as u64 | 1),
        false,
    ),
    // A NULL clone_args of size 0: EINVAL.
    ("clone3", || sys2(libc::SYS_clone3, 0, 0), false),
    ("setns", || sys2(libc::SYS_setns, u64::MAX, 0), false),
    // A NULL target: EFAULT.
    ("mount", || sys5(libc::SYS_mount, 0, 0, 0, 0, 0), false),
    (
        "umount2",
        || sys2(libc::SYS_umount2, nowhere(), 0x8000_0000),
        false,
    ),
    // AT_RECURSIVE without OPEN_TREE_CLONE: EINVAL.
    (
        "open_tree",
        || sys3(libc::SYS_open_tree, u64::MAX, nowhere(), 0x8000),
        false,
    ),
    // fsopen, fsmount and move_mount check CAP_SYS_ADMIN first (EPERM),
    // then their flags.
    ("fsopen", || sys2(libc::SYS_fsopen, 0, 0x8000_0000), false),
    (
        "fsconfig",
        || sys5(libc::SYS_fsconfig, u64::MAX, 0, 0, 0, 0),
        false,
    ),
    (
        "fsmount",
        || sys3(libc::SYS_fsmount, u64::MAX, 0x8000_0000, 0),
        false,
    ),
    (
        "move_mount",
        || sys5(libc::SYS_move_mount, u64::MAX, 0, u64::MAX, 0, 0x8000_0000),
        false,
    ),
    // A size of 0: EINVAL.
    (
        "mount_setattr",
        || sys5(libc::SYS_mount_setattr, u64::MAX, 0, 0, 0, 0),
        false,
    ),
    (
        "personality_read_implies_exec",
        || sys1(libc::SYS_personality, 0x40_0000),
        true,
    ),
    (
        "personality_addr_no_randomize",
        || sys1(libc::SYS_personality, 0x4_0000),
        true,
    ),
    (
        "personality_query",
        || sys1(libc::SYS_personality, 0xffff_ffff),
        false,
    ),
    // The kernel takes an unsigned int: the high half is not looked at.
    (
        "personality_query_high_bits",
        || sys1(libc::SYS_personality, 0xdead_beef_ffff_ffff),
        false,
    ),
    ("socket_unix", || socket(libc::AF_UNIX as u64), false),
    ("socket_vsock", || socket(libc::AF_VSOCK as u64), false),
    // The kernel takes an int: this is AF_VSOCK to it, and must be to the
    // filter.
    (
        "socket_vsock_high_bits",
        || socket(1 << 32 | libc::AF_VSOCK as u64),
        false,
    ),
    // Mode 100 is no memory policy: EINVAL.
    ("mbind", || sys6(libc::SYS_mbind, 0, 0, 100, 0, 0, 0), false),
    // MPOL_DEFAULT: what the process has anyway.
    (
        "set_mempolicy_default",
        || sys3(libc::SYS_set_mempolicy, 0, 0, 0),
        true,
    ),
    // A flag that is neither MPOL_MF_MOVE nor MOVE_ALL: EINVAL.
    (
        "move_pages",
        || sys6(libc::SYS_move_pages, 0, 0, 0, 0, 0, 0x80),
        false,
    ),
    // More nodes than any kernel has: EINVAL before the masks are read.
    (
        "migrate_pages",
        || sys4(SYS_MIGRATE_PAGES, 0, 1 << 30, 8, 8),
        false,
    ),
    ("process_vm_readv_self", read_own_memory, false),
    // Flags must be 0: EINVAL.
    (
        "process_vm_writev",
        || sys6(libc::SYS_process_vm_writev, 0, 0, 0, 0, 0, 1),
        false,
    ),
    // entries 0 and NULL params: EINVAL or EFAULT.
    (
        "io_uring_setup",
        || sys2(libc::SYS_io_uring_setup, 0, 0),
        false,
    ),
];

/// A path for the calls above that need one that is not NULL: one that
/// does not exist, should a kernel ever look at it.
fn nowhere() -> u64 {
    c"/husk-probe/no/such/path".as_ptr() as u64
}

pub fn main(_: &[String]) -> Result<(), String> {
    for (name, call, child) in CALLS {
        let result = if *child {
            in_child(*call)?
        } else {
            errno_of(call())
        };
        fact(name, result);
    }
    Ok(())
}

/// Runs `call` in a child process and returns its errno, or "0".
fn in_child(call: Call) -> Result<String, String> {
    // SAFETY: the probe has one thread; the child makes raw syscalls only,
    // then exits without running anything of the parent's.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match call() {
            r if r >= 0 => 0,
            _ => Error::last_os_error().raw_os_error().unwrap_or(255),
        };
        // SAFETY: exits the child.
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return Err(format!("fork: {}", Error::last_os_error()));
    }
    let status = reap(pid)?;
    if libc::WIFEXITED(status) {
        Ok(errno_name(libc::WEXITSTATUS(status)))
    } else {
        Ok(format!("signal{}", libc::WTERMSIG(status)))
    }
}

fn reap(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    // SAFETY: waits for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid {pid}: {}", Error::last_os_error()));
    }
    Ok(status)
}

/// fork(), as libc does it; the child exits at once.
fn fork_and_reap() -> libc::c_long {
    // SAFETY: as in `in_child`.
    match unsafe { libc::fork() } {
        // SAFETY: exits the child.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => reap(pid).map_or(-1, |s| if s == 0 { 0 } else { -1 }),
        _ => -1,
    }
}

/// A raw clone(flags) with no new stack: the child continues as after a
/// fork, and exits at once.
fn clone_and_reap(flags: u64) -> libc::c_long {
    match sys5(libc::SYS_clone, flags, 0, 0, 0, 0) {
        // SAFETY: exits the child.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => reap(pid as libc::pid_t).map_or(-1, |_| 0),
        e => e,
    }
}

fn socket(family: u64) -> libc::c_long {
    let fd = sys3(libc::SYS_socket, family, libc::SOCK_STREAM as u64, 0);
    if fd >= 0 {
        // SAFETY: the socket just made.
        unsafe { libc::close(fd as i32) };
    }
    fd
}

/// Eight bytes of the probe's own memory, through process_vm_readv.
fn read_own_memory() -> libc::c_long {
    let source = 0x0123_4567_89ab_cdef_u64;
    let mut copy = 0u64;
    let local = libc::iovec {
        iov_base: (&mut copy as *mut u64).cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: (&source as *const u64).cast_mut().cast(),
        iov_len: 8,
    };
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() } as u64;
    let (l, r) = (&local as *const _ as u64, &remote as *const _ as u64);
    let n = sys6(libc::SYS_process_vm_readv, me, l, 1, r, 1, 0);
    if n >= 0 && copy != source {
        return -1;
    }
    n
}

fn sys0(nr: libc::c_long) -> libc::c_long {
    sys6(nr, 0, 0, 0, 0, 0, 0)
}
fn sys1(nr: libc::c_long, a: u64) -> libc::c_long {
    sys6(nr, a, 0, 0, 0, 0, 0)
}
fn sys2(nr: libc::c_long, a: u64, b: u64) -> libc::c_long {
    sys6(nr, a, b, 0, 0, 0, 0)
}
fn sys3(nr: libc::c_long, a: u64, b: u64, c: u64) -> libc::c_long {
    sys6(nr, a, b, c, 0, 0, 0)
}
/// The libc crate names migrate_pages on every target but armv7's glibc,
/// whose kernel has it all the same (400, as linux-raw-sys says).
#[cfg(not(target_arch = "arm"))]
const SYS_MIGRATE_PAGES: libc::c_long = libc::SYS_migrate_pages;
#[cfg(target_arch = "arm")]
const SYS_MIGRATE_PAGES: libc::c_long = 400;

fn sys4(nr: libc::c_long, a: u64, b: u64, c: u64, d: u64) -> libc::c_long {
    sys6(nr, a, b, c, d, 0, 0)
}
fn sys5(nr: libc::c_long, a: u64, b: u64, c: u64, d: u64, e: u64) -> libc::c_long {
    sys6(nr, a, b, c, d, e, 0)
}

/// A raw syscall with full 64-bit arguments: what the high halves hold is
/// part of what is tested. Each goes to `syscall(2)` as a register-wide
/// `long`: a u64 through the variadic call on a 32-bit target takes a
/// register pair and shifts every argument after it (armv7's personality
/// then read garbage), and the high halves do not exist there anyway.
fn sys6(nr: libc::c_long, a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> libc::c_long {
    let [a, b, c, d, e, f] = [a, b, c, d, e, f].map(|x| x as libc::c_long);
    // SAFETY: each call above passes arguments the kernel only reads, NULL
    // or pointers to live locals, and makes no changes the probe relies on.
    unsafe { libc::syscall(nr, a, b, c, d, e, f) }
}

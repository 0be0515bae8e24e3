//! What rustix does not expose: the program entry, execve and exit_group.
//! Each architecture supplies `_start` (calling `crate::entry`) and a raw
//! three-argument syscall; the rest is shared.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "arm")]
mod arm;
#[cfg(target_arch = "riscv64")]
mod riscv64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
use aarch64 as imp;
#[cfg(target_arch = "arm")]
use arm as imp;
#[cfg(target_arch = "riscv64")]
use riscv64 as imp;
#[cfg(target_arch = "x86_64")]
use x86_64 as imp;

pub use imp::syscall3 as syscall;
pub use imp::syscall4;

use core::ffi::CStr;
use linux_raw_sys::general::{__NR_execve, __NR_exit_group};
use rustix::io::Errno;

/// `execve(2)`; returns only on failure.
pub fn execve(path: &CStr, argv: *const *const u8, envp: *const *const u8) -> Errno {
    // SAFETY: `path` is NUL-terminated; `argv` and `envp` are NULL-terminated
    // arrays of NUL-terminated strings (built by `ops::pointers`).
    let ret = unsafe {
        imp::syscall3(
            __NR_execve as usize,
            path.as_ptr() as usize,
            argv as usize,
            envp as usize,
        )
    };
    Errno::from_raw_os_error(-ret as i32)
}

pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes a plain integer and does not return.
    unsafe {
        imp::syscall3(__NR_exit_group as usize, code as usize, 0, 0);
    }
    // Unreachable; spin rather than fall off into undefined behaviour.
    #[allow(clippy::empty_loop)]
    loop {}
}

//! fd hygiene: nothing the runner inherited leaks into a container, and the
//! fds the child hands the shim stay out of the way of the numbers it
//! moves them to.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::kernel::{Call, Missing};

/// The runner keeps the fds it hands on at or above this number: the child
/// dup2s them onto 3, 4 (the plan and the report) and the passed fds from
/// 5 up, which would close anything already there.
const HELD_BASE: i32 = 32;

/// A close-on-exec copy of `fd` numbered at or above HELD_BASE.
pub fn held(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() >= HELD_BASE {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd that we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HELD_BASE) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Marks every fd from `first` up close-on-exec. This is the guard against
/// leaking an inherited fd into the container (runc's CVE-2024-21626), so
/// it fails closed: if neither close_range nor /proc/self/fd works, the
/// runner stops.
pub fn cloexec_from(first: u32, missing: &Missing) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let done = missing.try_call(Call::CloseRange, || {
        // SAFETY: close_range only changes fd flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    });
    match done {
        Some(Ok(())) => return Ok(()),
        // Kernels 5.9 and 5.10 have close_range but not its CLOEXEC flag.
        Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => missing.set(Call::CloseRange),
        Some(Err(e)) => return Err(Error::os("close_range(CLOSE_RANGE_CLOEXEC)", &e)),
        None => {}
    }
    // One fd at a time.
    let err = |e| Error::os("mark inherited fds close-on-exec: read /proc/self/fd", &e);
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(err)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds.into_iter().filter(|&fd| fd >= first as i32) {
        // SAFETY: setting FD_CLOEXEC on an fd number; the directory's own
        // fd, gone by now, fails harmlessly with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// openat2(dir, path, flags, resolve): `path` opened as `resolve`
/// (`RESOLVE_*`) allows, close-on-exec.
pub fn openat2(
    dir: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_int,
    resolve: u32,
) -> std::io::Result<OwnedFd> {
    use linux_raw_sys::general as k;
    let how = k::open_how {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: u64::from(resolve),
    };
    // SAFETY: openat2 reads `how` (of the size given) and a C string; the
    // fd it returns is then ours.
    let fd = unsafe {
        libc::syscall(
            k::__NR_openat2 as libc::c_long,
            dir,
            path.as_ptr(),
            &how as *const k::open_how,
            std::mem::size_of::<k::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

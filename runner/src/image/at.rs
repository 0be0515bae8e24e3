//! File system calls relative to a directory fd, never following a
//! symlink: what unpack, pack and remove_tree are made of. A layer's
//! paths come from a hostile archive, so every name is looked up beneath
//! the layer's own fd and nothing is reached through a link.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC).
pub(crate) fn open_at(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: a C string and flags; the fd returned is then ours.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    // SAFETY: a fresh fd that nothing else owns.
    cvt(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory by its path on the host (the store's own directories).
pub(crate) fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    open_at(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// A directory fd for `dir`/`name`, a single component.
pub(crate) fn open_dir(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The directory at the relative `components` beneath `root`, made when
/// missing (mode 0755) if `create`. ELOOP, EXDEV or ENOTDIR: a component
/// is a symlink or not a directory.
pub(crate) fn dir_beneath(
    root: BorrowedFd,
    components: &[&str],
    create: bool,
) -> io::Result<OwnedFd> {
    if components.is_empty() {
        return open_dir(root.as_raw_fd(), c".");
    }
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(root.as_raw_fd(), &components.join("/")) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                NO_OPENAT2.store(true, Ordering::Relaxed)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {}
            r => return r,
        }
    }
    // One component at a time, each opened O_NOFOLLOW: a symlink is ELOOP.
    let mut cur: Option<OwnedFd> = None;
    for c in components {
        let name = cstr(c)?;
        let at = cur.as_ref().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
        let next = match open_dir(at, &name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                // SAFETY: a C string and a mode.
                match cvt(unsafe { libc::mkdirat(at, name.as_ptr(), 0o755) }) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                    _ => open_dir(at, &name)?,
                }
            }
            r => r?,
        };
        cur = Some(next);
    }
    Ok(cur.expect("components is not empty"))
}

fn openat2_beneath(root: RawFd, path: &str) -> io::Result<OwnedFd> {
    use linux_raw_sys::general as k;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let resolve =
        k::RESOLVE_BENEATH | k::RESOLVE_NO_SYMLINKS | k::RESOLVE_NO_MAGICLINKS | k::RESOLVE_NO_XDEV;
    crate::fds::openat2(root, &cstr(path)?, flags, resolve)
}

/// fstatat(dir, name, AT_SYMLINK_NOFOLLOW); an empty name is `dir` itself.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: stat fills the struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// The names in the directory `dir` (not . and ..), sorted. By
/// getdents64, from the top: the C library's readdir on 32-bit glibc
/// ends early, as if at the end, at an entry whose inode or offset needs
/// 64 bits (ext4's directory offsets do), and says so only in errno.
pub(crate) fn read_names(dir: RawFd) -> io::Result<Vec<CString>> {
    // SAFETY: lseek on a directory fd only moves its offset.
    if unsafe { libc::lseek(dir, 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 << 10];
    let mut names = Vec::new();
    loop {
        // SAFETY: getdents64 fills at most the length given.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
        // struct linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8
        // d_type, then the NUL-terminated name.
        let mut at = 0;
        while at + 19 < n as usize {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            let rec = buf
                .get(at + 19..at + reclen)
                .ok_or(io::ErrorKind::InvalidData)?;
            let name = CStr::from_bytes_until_nul(rec).map_err(|_| io::ErrorKind::InvalidData)?;
            if name != c"." && name != c".." {
                names.push(name.to_owned());
            }
            at += reclen.max(1);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// fsetxattr on an open file or directory.
pub(crate) fn set_xattr(fd: RawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: a C string and a byte buffer of the length given.
    cvt(unsafe { libc::fsetxattr(fd, n.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

/// Every extended attribute of an open file or directory.
pub(crate) fn xattrs(fd: RawFd) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut list = vec![0u8; 4096];
    // SAFETY: flistxattr fills at most the length given.
    let n = unsafe { libc::flistxattr(fd, list.as_mut_ptr().cast(), list.len()) };
    let n = match n {
        n if n >= 0 => n as usize,
        _ => {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(Vec::new()),
                _ => Err(e),
            };
        }
    };
    let mut out = Vec::new();
    for name in list[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut value = vec![0u8; 65536];
        // SAFETY: fgetxattr fills at most the length given.
        let len =
            unsafe { libc::fgetxattr(fd, c.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        value.truncate(len as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    Ok(out)
}

/// fchownat(dir, name, AT_SYMLINK_NOFOLLOW), then, unless a symlink,
/// fchmodat: in that order, as chown clears the set-ID bits.
pub(crate) fn own_and_mode(
    dir: RawFd,
    name: &CStr,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
) -> io::Result<()> {
    // SAFETY: a C string and numbers.
    cvt(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })?;
    if let Some(mode) = mode {
        // SAFETY: as above. The name is not a symlink (the caller knows),
        // so fchmodat, which always follows, changes this entry.
        cvt(unsafe { libc::fchmodat(dir, name.as_ptr(), mode & 0o7777, 0) })?;
    }
    Ok(())
}

// time_t is i32 on armv7's glibc, i64 elsewhere.
#[allow(clippy::useless_conversion)]
fn times(mtime: u64) -> [libc::timespec; 2] {
    let t = libc::timespec {
        // Whatever width the C library's time_t has.
        tv_sec: mtime.try_into().unwrap_or(i32::MAX.into()),
        tv_nsec: 0,
    };
    [t, t]
}

/// utimensat(dir, name, mtime, AT_SYMLINK_NOFOLLOW) for access and modification.
pub(crate) fn set_mtime(dir: RawFd, name: &CStr, mtime: u64) -> io::Result<()> {
    let times = times(mtime);
    // SAFETY: a C string and two timespecs.
    cvt(unsafe {
        libc::utimensat(
            dir,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// futimens: the same for an open file or directory.
pub(crate) fn set_mtime_fd(fd: RawFd, mtime: u64) -> io::Result<()> {
    let times = times(mtime);
    // SAFETY: our own fd and two timespecs.
    cvt(unsafe { libc::futimens(fd, times.as_ptr()) }).map(drop)
}

/// renameat2(RENAME_NOREPLACE), by its number: musl's libc lacks the wrapper.
pub(crate) fn rename_noreplace(
    from_dir: RawFd,
    from: &CStr,
    to_dir: RawFd,
    to: &CStr,
) -> io::Result<()> {
    // SAFETY: two fds and two C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            from_dir,
            from.as_ptr(),
            to_dir,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    cvt(r as libc::c_int).map(drop)
}

/// Removes `name` in `dir` and everything below it, by fd: no path is
/// looked up twice and no symlink is followed. Directories the tree made
/// unreadable (overlay's work/work is 000) are opened anyway as root;
/// where that is refused they are made 0700 first.
pub(crate) fn remove_at(dir: BorrowedFd, name: &CStr) -> io::Result<()> {
    let raw = dir.as_raw_fd();
    // SAFETY: a C string.
    match cvt(unsafe { libc::unlinkat(raw, name.as_ptr(), 0) }) {
        Ok(_) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EPERM)) => return Err(e),
        Err(_) => {}
    }
    let sub = match open_dir(raw, name) {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // SAFETY: a C string; `name` is a directory (unlinkat said so).
            cvt(unsafe { libc::fchmodat(raw, name.as_ptr(), 0o700, 0) })?;
            open_dir(raw, name)?
        }
        r => r?,
    };
    for child in read_names(sub.as_raw_fd())? {
        remove_at(sub.as_fd(), &child)?;
    }
    // SAFETY: a C string.
    cvt(unsafe { libc::unlinkat(raw, name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

//! The container's root file system, opened once by the runner before
//! anything else. Every check is made on that fd, and the shim is handed a
//! detached copy of the mount tree under it (`open_tree`), never the name:
//! whoever may rename a directory on the path (a user owning the rootfs's
//! parent) cannot swap the rootfs for `/` between the check and the bind.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kernel::{Call, Missing};

pub struct Rootfs {
    fd: OwnedFd,
    /// Where the fd is, as the kernel names it (for messages, and to find
    /// the mounts below it).
    path: PathBuf,
    /// The fd is a detached mount of its own (an overlay made with
    /// fsmount), handed to the shim as it is.
    mounted: bool,
}

impl Rootfs {
    /// Opens `arg` (O_PATH, following the caller's own symlinks once) and
    /// checks what it opened.
    pub fn open(arg: &str) -> Result<Rootfs> {
        let (fd, path, dir) = open_host(arg, "--rootfs", true)?;
        debug_assert!(dir);
        let here =
            stat_fd(&fd).map_err(|e| Error::os(format_args!("--rootfs {arg}: fstat"), &e))?;
        let root = std::fs::metadata("/").map_err(|e| Error::os("stat /", &e))?;
        use std::os::unix::fs::MetadataExt;
        if (here.0, here.1) == (root.dev(), root.ino()) {
            return Err(Error::new(format!(
                "--rootfs {arg}: that is the host's own root, which cannot be a container's"
            )));
        }
        Ok(Rootfs {
            fd,
            path,
            mounted: false,
        })
    }

    /// A volume's source (`what` names the flag in messages): a directory
    /// or a file, the host's `/` included; and whether it is a directory.
    pub fn open_source(arg: &str, what: &str) -> Result<(Rootfs, bool)> {
        let (fd, path, dir) = open_host(arg, what, false)?;
        Ok((
            Rootfs {
                fd,
                path,
                mounted: false,
            },
            dir,
        ))
    }

    /// A file the runner made and still holds open (a container's own
    /// /etc files): bound by its fd, its path never looked up again.
    pub fn made(fd: OwnedFd, path: PathBuf) -> Rootfs {
        Rootfs {
            fd,
            path,
            mounted: false,
        }
    }

    /// A detached mount made by the runner (an overlay); `label` stands
    /// for its path in messages.
    pub fn mounted(fd: OwnedFd, label: PathBuf) -> Rootfs {
        Rootfs {
            fd,
            path: label,
            mounted: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn into_parts(self) -> (OwnedFd, PathBuf) {
        (self.fd, self.path)
    }

    /// A detached copy of the mount tree under the fd, for the shim to
    /// attach in the container's mount namespace, with the per-mount
    /// flags `set` (`ms::RDONLY`, `NOSUID`, `NODEV`, `NOEXEC`, which
    /// mount_setattr numbers alike) on every mount in it. Where the kernel
    /// cannot do that to a detached tree (mount_setattr, 5.12), the result
    /// lists the mounts the shim must remount itself, as paths in the
    /// tree ("" its top).
    /// Without `recursive`, the top mount alone (a non-recursive bind).
    pub fn detach(&self, set: u32, recursive: bool, missing: &Missing) -> Result<Detached> {
        if self.mounted {
            // Made with its flags (fsmount), and nothing is mounted below.
            let tree = self
                .fd
                .try_clone()
                .and_then(crate::fds::held)
                .map_err(|e| Error::os("dup the overlay's mount fd", &e))?;
            return Ok(Detached {
                tree,
                remount: Vec::new(),
                set,
            });
        }
        use linux_raw_sys::general as k;
        let rec = if recursive { k::AT_RECURSIVE } else { 0 };
        let flags = k::OPEN_TREE_CLONE | k::OPEN_TREE_CLOEXEC | rec | k::AT_EMPTY_PATH;
        let tree = missing
            .try_call(Call::OpenTree, || {
                // SAFETY: open_tree takes an fd, a C string and flags; the
                // fd it returns is then ours.
                let fd = unsafe {
                    libc::syscall(
                        k::__NR_open_tree as libc::c_long,
                        self.fd.as_raw_fd(),
                        c"".as_ptr(),
                        flags,
                    )
                };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: as above.
                crate::fds::held(unsafe { OwnedFd::from_raw_fd(fd as i32) })
            })
            .ok_or_else(|| {
                Error::new(
                    "this kernel lacks open_tree (Linux 5.2), which husk needs to hand the \
                     rootfs to the container without naming it again",
                )
            })?
            .map_err(|e| Error::os(format_args!("open_tree of {}", self.path.display()), &e))?;
        let mut remount = Vec::new();
        if set != 0 {
            match missing.try_call(Call::MountSetattr, || set_attr(&tree, set)) {
                Some(r) => r.map_err(|e| {
                    Error::os(format_args!("mount_setattr on {}", self.path.display()), &e)
                })?,
                None if recursive => remount = self.mounts_below()?,
                None => remount = vec![CString::default()],
            }
        }
        Ok(Detached { tree, remount, set })
    }

    /// The tree's top and each mount below it, as paths in the tree.
    fn mounts_below(&self) -> Result<Vec<CString>> {
        let mounts =
            crate::mountinfo::read().map_err(|e| Error::os("read /proc/self/mountinfo", &e))?;
        let dir = self.path.to_string_lossy();
        std::iter::once("")
            .chain(crate::mountinfo::below(&mounts, &dir))
            .map(|p| {
                CString::new(p).map_err(|_| Error::new(format!("mount point {p:?} holds a NUL")))
            })
            .collect()
    }

    /// What `path` (a program in the container) needs to run, read beneath
    /// the rootfs: "ELF interpreter /lib/ld-musl-x86_64.so.1" or "#!
    /// /usr/bin/python3". For the message when exec says ENOENT of a file
    /// that exists; None when it cannot tell.
    pub fn interpreter(&self, path: &str) -> Option<String> {
        use linux_raw_sys::general as k;
        use std::os::unix::fs::FileExt;
        let c = CString::new(path.trim_start_matches('/')).ok()?;
        // As the container would see it: its symlinks, never out of it.
        let resolve = k::RESOLVE_IN_ROOT | k::RESOLVE_NO_MAGICLINKS;
        let fd = crate::fds::openat2(self.fd.as_raw_fd(), &c, libc::O_RDONLY, resolve).ok()?;
        let file = std::fs::File::from(fd);
        let mut head = [0u8; 512];
        let n = file.read_at(&mut head, 0).ok()?;
        let head = &head[..n];
        if let Some(line) = head.strip_prefix(b"#!") {
            let line = line.split(|&b| b == b'\n').next()?;
            let prog = String::from_utf8_lossy(line);
            return prog.split_whitespace().next().map(|p| format!("#! {p}"));
        }
        elf_interpreter(&file, head).map(|i| format!("ELF interpreter {i}"))
    }
}

/// The PT_INTERP of a little-endian ELF file whose first bytes are `head`.
fn elf_interpreter(file: &std::fs::File, head: &[u8]) -> Option<String> {
    use std::os::unix::fs::FileExt;
    if head.get(..4)? != b"\x7fELF" || *head.get(5)? != 1 {
        return None;
    }
    let wide = *head.get(4)? == 2;
    let u = |at: usize, len: usize| -> Option<u64> {
        let b = head.get(at..at + len)?;
        Some(b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x)))
    };
    let (phoff, phentsize, phnum) = if wide {
        (u(0x20, 8)?, u(0x36, 2)?, u(0x38, 2)?)
    } else {
        (u(0x1c, 4)?, u(0x2a, 2)?, u(0x2c, 2)?)
    };
    for i in 0..phnum.min(64) {
        let mut ph = [0u8; 56];
        let len = (phentsize as usize).min(ph.len());
        file.read_exact_at(&mut ph[..len], phoff + i * phentsize)
            .ok()?;
        let w = |at: usize, n: usize| -> Option<u64> {
            let b = ph.get(at..at + n)?;
            Some(b.iter().rev().fold(0, |v, &x| v << 8 | u64::from(x)))
        };
        if w(0, 4)? != 3 {
            continue; // not PT_INTERP
        }
        let (offset, size) = if wide {
            (w(8, 8)?, w(32, 8)?)
        } else {
            (w(4, 4)?, w(16, 4)?)
        };
        let mut name = vec![0u8; size.min(4096) as usize];
        file.read_exact_at(&mut name, offset).ok()?;
        let name = name.split(|&b| b == 0).next()?;
        return Some(String::from_utf8_lossy(name).into_owned());
    }
    None
}

pub struct Detached {
    pub tree: OwnedFd,
    /// Mounts the shim must remount with `set` itself, as paths in the
    /// tree: empty where mount_setattr did it.
    pub remount: Vec<CString>,
    pub set: u32,
}

/// Opens a host path the caller names (O_PATH, following the caller's own
/// symlinks once): a directory, or with `dir_only` false a file too; and
/// where it is, as the kernel names it.
fn open_host(arg: &str, what: &str, dir_only: bool) -> Result<(OwnedFd, PathBuf, bool)> {
    let c = CString::new(arg)
        .map_err(|_| Error::new(format!("{what} {arg:?}: contains a NUL byte")))?;
    let dir_flag = if dir_only { libc::O_DIRECTORY } else { 0 };
    // SAFETY: open takes a C string and flags; the fd is then ours.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | dir_flag | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOTDIR) => Error::new(format!("{what} {arg}: not a directory")),
            _ => Error::os(format_args!("{what} {arg}"), &e),
        });
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let (_, _, mode) =
        stat_fd(&fd).map_err(|e| Error::os(format_args!("{what} {arg}: fstat"), &e))?;
    let dir = mode & libc::S_IFMT == libc::S_IFDIR;
    if !dir && mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(format!(
            "{what} {arg}: neither a directory nor a regular file"
        )));
    }
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Error::os(format_args!("{what} {arg}: find where it is"), &e))?;
    Ok((fd, path, dir))
}

/// Device, inode and mode.
fn stat_fd(fd: &OwnedFd) -> std::io::Result<(u64, u64, u32)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat fills the struct it is given.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: zeroed, then filled by a successful fstat.
    let st = unsafe { st.assume_init() };
    // The field types differ between architectures (32-bit ino_t on armv7).
    #[allow(clippy::unnecessary_cast)]
    Ok((st.st_dev as u64, st.st_ino as u64, st.st_mode as u32))
}

/// mount_setattr(AT_RECURSIVE) adding the flags `set` to every mount of
/// the tree.
fn set_attr(tree: &OwnedFd, set: u32) -> std::io::Result<()> {
    use linux_raw_sys::general as k;
    let attr = k::mount_attr {
        attr_set: u64::from(set),
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `size` bytes of `attr`, which outlives it.
    let r = unsafe {
        libc::syscall(
            k::__NR_mount_setattr as libc::c_long,
            tree.as_raw_fd(),
            c"".as_ptr(),
            k::AT_EMPTY_PATH | k::AT_RECURSIVE,
            &attr as *const k::mount_attr,
            std::mem::size_of::<k::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shim::plan::ms;

    /// mount_setattr's MOUNT_ATTR_* and mount(2)'s MS_* agree on these,
    /// so one set of flags serves the runner and the shim's fallback.
    #[test]
    fn mount_attr_and_ms_flags_agree() {
        use linux_raw_sys::general as k;
        assert_eq!(k::MOUNT_ATTR_RDONLY, ms::RDONLY);
        assert_eq!(k::MOUNT_ATTR_NOSUID, ms::NOSUID);
        assert_eq!(k::MOUNT_ATTR_NODEV, ms::NODEV);
        assert_eq!(k::MOUNT_ATTR_NOEXEC, ms::NOEXEC);
    }
}

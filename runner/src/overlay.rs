//! A container's root as an overlay: read-only lower layers (an image's,
//! or `--layer` directories) and a writable upper and work directory of
//! its own, in its entry in the state store. The runner makes the overlay
//! as a detached mount (fsopen, fsconfig, fsmount): it is never attached
//! on the host, so a runner killed at any point leaves no mount behind,
//! and the shim attaches it as it would a rootfs's tree.
//!
//! Each layer is opened once, when the container is asked for, and given
//! to overlay as `/proc/self/fd/N`: the kernel follows the fd's own link
//! to the very directory opened, so a layer renamed or swapped for a
//! symlink meanwhile changes nothing.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rootfs::Rootfs;

/// fsconfig's commands (include/uapi/linux/mount.h).
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
/// fsconfig copies at most this much of a string value (strndup_user
/// with 256 in fs/fsopen.c): the limit of one `lowerdir=` list.
const FSCONFIG_STRING_MAX: usize = 255;

pub const UPPER: &str = "upper";
pub const WORK: &str = "work";

/// The lower layers, opened; lowest first.
pub struct Layers {
    pub dirs: Vec<(OwnedFd, PathBuf)>,
    /// What the container was made from, for messages and the state: the
    /// image's name, or the layer directories.
    pub label: String,
    /// The image store's shared lock, while the layers are an image's.
    pub lock: Option<crate::image::Lock>,
}

impl Layers {
    /// Opens each directory (O_PATH, following the caller's symlinks
    /// once); `what` names the flag in messages.
    pub fn open(paths: &[PathBuf], what: &str, label: String) -> Result<Layers> {
        if paths.is_empty() {
            return Err(Error::new(format!("{what}: no layer to make a root of")));
        }
        let dirs = paths
            .iter()
            .map(|p| {
                let arg = p.to_string_lossy();
                let (source, dir) = Rootfs::open_source(&arg, what)?;
                if !dir {
                    return Err(Error::new(format!("{what} {arg}: not a directory")));
                }
                // The fd is what overlay uses; the path is for messages.
                Ok(source.into_parts())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Layers {
            dirs,
            label,
            lock: None,
        })
    }

    /// The host paths of the layers, lowest first, as the state records
    /// them.
    pub fn paths(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect()
    }

    /// Makes `dir`/upper and `dir`/work (`dir` is the container's entry)
    /// and the overlay of the layers under them; nodev unless `dev`.
    pub fn mount(&self, dir: &Path, dev: bool) -> Result<Rootfs> {
        let top = &self.dirs.last().expect("at least one layer").0;
        let upper_path = dir.join(UPPER);
        let upper = make_dir(&upper_path)?;
        same_owner_and_mode(&upper, &upper_path, top)?;
        let work = make_dir(&dir.join(WORK))?;
        let (u, w) = (fd_path(&upper), fd_path(&work));
        let attrs = if dev { 0 } else { NODEV };
        // volatile (5.10): no sync of the upper layer, at its unmount
        // above all, which on a journalling /run costs milliseconds. The
        // layer dies with the container, or is read as a plain directory
        // (commit, export), never mounted as an upper again.
        self.overlay(
            &[("upperdir", &u), ("workdir", &w), ("volatile", "")],
            attrs,
        )
    }

    /// The layers alone, read-only: what a container with these layers
    /// (its upper one the topmost) sees, for `export`.
    pub fn view(&self) -> Result<Rootfs> {
        use linux_raw_sys::general as k;
        let attrs = k::MOUNT_ATTR_RDONLY | k::MOUNT_ATTR_NOSUID | NODEV | k::MOUNT_ATTR_NOEXEC;
        self.overlay(&[], attrs)
    }

    fn overlay(&self, extra: &[(&str, &str)], attrs: u32) -> Result<Rootfs> {
        // Overlay lists the topmost lower layer first.
        let lowers: Vec<String> = self.dirs.iter().rev().map(|(f, _)| fd_path(f)).collect();
        let joined = lowers.join(":");
        let attempt = |lower: &[(&str, &str)]| -> Result<OwnedFd> {
            // "overlay" where mountinfo shows the source, as Docker's.
            // index off: a layer shared by two containers is a lower
            // layer of both, which index=on refuses. redirect_dir and
            // metacopy off, whatever the kernel's defaults: an upper
            // layer must hold whole files and directories, and only
            // whiteouts and opaque directories, for commit to read it
            // as a layer.
            let mut options: Vec<(&str, &str)> = vec![
                ("source", "overlay"),
                ("index", "off"),
                ("redirect_dir", "off"),
                ("metacopy", "off"),
            ];
            options.extend_from_slice(lower);
            options.extend_from_slice(extra);
            mount(&options, attrs)
        };
        let made = if joined.len() <= FSCONFIG_STRING_MAX {
            attempt(&[("lowerdir", &joined)])
        } else {
            // One "lowerdir+" per layer (Linux 6.8); before, the list must
            // fit in one option.
            let each: Vec<(&str, &str)> =
                lowers.iter().map(|l| ("lowerdir+", l.as_str())).collect();
            attempt(&each).map_err(|e| {
                Error::new(format!(
                    "{}: {} layers do not fit in one overlay option on this kernel ({}); \
                     a layer at a time (lowerdir+) needs Linux 6.8",
                    self.label,
                    self.dirs.len(),
                    e.message
                ))
            })
        }?;
        Ok(Rootfs::mounted(
            made,
            PathBuf::from(format!("{} (overlay)", self.label)),
        ))
    }
}

const NODEV: u32 = linux_raw_sys::general::MOUNT_ATTR_NODEV;

/// "/proc/self/fd/N": the kernel follows the fd's own link.
fn fd_path(f: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", f.as_raw_fd())
}

/// fsopen("overlay"), the options, create, fsmount: a detached mount.
fn mount(options: &[(&str, &str)], attrs: u32) -> Result<OwnedFd> {
    use linux_raw_sys::general as k;
    // SAFETY: fsopen takes a C string and flags; the fd is then ours.
    let fs = unsafe {
        libc::syscall(
            k::__NR_fsopen as libc::c_long,
            c"overlay".as_ptr(),
            k::FSOPEN_CLOEXEC,
        )
    };
    if fs < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENODEV) => Error::new(
                "this kernel has no overlay file system (CONFIG_OVERLAY_FS; try modprobe overlay)",
            ),
            Some(libc::ENOSYS) => Error::new("this kernel lacks fsopen (Linux 5.2)"),
            _ => Error::os("fsopen overlay", &e),
        });
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    let config = |cmd: u32, key: Option<&CString>, value: Option<&CString>| {
        // SAFETY: fsconfig reads the C strings given (or none) during the
        // call.
        let r = unsafe {
            libc::syscall(
                k::__NR_fsconfig as libc::c_long,
                fs.as_raw_fd(),
                cmd,
                key.map_or(std::ptr::null(), |c| c.as_ptr()),
                value.map_or(std::ptr::null(), |c| c.as_ptr()),
                0,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let failed = |what: String, e: std::io::Error| {
        let why = kernel_says(&fs);
        Error::os(format_args!("{what}{why}"), &e)
    };
    for (key, value) in options {
        let (Ok(k), Ok(v)) = (CString::new(*key), CString::new(*value)) else {
            return Err(Error::new(format!(
                "overlay option {key}={value:?} holds a NUL"
            )));
        };
        // An option without a value is a flag.
        let r = if value.is_empty() {
            config(FSCONFIG_SET_FLAG, Some(&k), None)
        } else {
            config(FSCONFIG_SET_STRING, Some(&k), Some(&v))
        };
        r.map_err(|e| failed(format!("fsconfig overlay {key}"), e))?;
    }
    config(FSCONFIG_CMD_CREATE, None, None)
        .map_err(|e| failed("make the overlay (fsconfig create)".into(), e))?;
    // SAFETY: fsmount takes an fd and flags; the fd it returns is ours.
    let m = unsafe {
        libc::syscall(
            k::__NR_fsmount as libc::c_long,
            fs.as_raw_fd(),
            k::FSMOUNT_CLOEXEC,
            attrs,
        )
    };
    if m < 0 {
        return Err(failed(
            "fsmount overlay".into(),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: as above.
    crate::fds::held(unsafe { OwnedFd::from_raw_fd(m as i32) })
        .map_err(|e| Error::os("fsmount overlay", &e))
}

/// What the file system logged about the failure (read from the fsopen
/// fd: "e overlay: ..."), as ": ..." or "".
fn kernel_says(fs: &OwnedFd) -> String {
    let mut buf = [0u8; 512];
    let mut said = Vec::new();
    loop {
        // SAFETY: read into our own buffer.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        said.push(message(&String::from_utf8_lossy(&buf[..n as usize])).to_string());
    }
    if said.is_empty() {
        String::new()
    } else {
        format!(" ({})", said.join("; "))
    }
}

/// A message of the fs context's log without its level: "e ...", "w ..."
/// or "i ...".
fn message(line: &str) -> &str {
    let text = line
        .get(2..)
        .filter(|_| line.as_bytes().get(1) == Some(&b' '));
    text.unwrap_or(line).trim()
}

/// mkdir `path` (0700) and open it.
fn make_dir(path: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::os(format_args!("mkdir {}", path.display()), &e))?;
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(format!("{}: holds a NUL", path.display())))?;
    // SAFETY: open takes a C string and flags; the fd is then ours.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::os(
            format_args!("open {}", path.display()),
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Gives the directory `dir` (at `path`, for messages) the mode and owner
/// of the directory `like`: the merged root shows the upper directory's.
fn same_owner_and_mode(dir: &OwnedFd, path: &Path, like: &OwnedFd) -> Result<()> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat fills the struct it is given.
    if unsafe { libc::fstat(like.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(Error::os(
            "fstat the top layer",
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: zeroed, then filled by a successful fstat.
    let st = unsafe { st.assume_init() };
    // SAFETY: fchown and fchmod on our own fd.
    let r = unsafe {
        if libc::fchown(dir.as_raw_fd(), st.st_uid, st.st_gid) != 0 {
            -1
        } else {
            libc::fchmod(dir.as_raw_fd(), st.st_mode & 0o7777)
        }
    };
    if r != 0 {
        return Err(Error::os(
            format_args!("chown/chmod {}", path.display()),
            &std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernels_messages_lose_their_level_only() {
        let m = super::message;
        assert_eq!(
            m("e overlay: workdir and upperdir must reside under the same mount\n"),
            "overlay: workdir and upperdir must reside under the same mount"
        );
        assert_eq!(m("w index off"), "index off");
        assert_eq!(m("weird"), "weird");
    }
}

//! A directory tree → a tar stream, walked by fd (never following a
//! symlink): `export`'s plain tar, a plain rootfs directory's one layer,
//! and `commit`'s layer from a container's overlay upper directory, whose
//! whiteouts become OCI ones again.

use std::ffi::{CStr, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::at;
use super::tar::{self, Entry, Kind};
use crate::error::{Error, Result};

/// The scenario tests write hostile PAX headers with it.
pub use super::tar::pax_records;

#[derive(Clone, Copy, PartialEq)]
pub enum Whiteouts {
    /// A plain tree: every node as it is.
    Keep,
    /// An overlay upper directory: a 0:0 character device becomes
    /// `.wh.NAME`, an opaque directory gets `.wh..wh..opq`, and overlay's
    /// own xattrs stay behind.
    ToOci,
}

/// Writes the tree at the directory fd `root` as one tar to `out`; `what`
/// names it in messages.
pub fn pack(root: BorrowedFd, out: &mut dyn Write, whiteouts: Whiteouts, what: &str) -> Result<()> {
    let mut p = Packer {
        w: tar::Writer::new(out),
        whiteouts,
        links: Vec::new(),
        what,
    };
    let st = at::stat_at(root.as_raw_fd(), c"").map_err(|e| p.os(Path::new("."), "stat", e))?;
    p.dir(root.as_raw_fd(), PathBuf::from("./"), &st)?;
    p.w.finish().map_err(|e| p.os(Path::new("."), "write", e))
}

struct Packer<'a> {
    w: tar::Writer<'a>,
    whiteouts: Whiteouts,
    /// (device, inode) → the path first written, for hard links; sorted.
    links: Vec<((u64, u64), PathBuf)>,
    what: &'a str,
}

impl Packer<'_> {
    fn os(&self, path: &Path, op: &str, e: io::Error) -> Error {
        Error::os(format!("{}: {op} {}", self.what, path.display()), &e)
    }

    /// The entry for `path`, with the owner, mode and time of `st`.
    fn entry(st: &libc::stat, kind: Kind, path: &Path) -> Entry {
        Entry {
            kind,
            path: tar_name(path),
            mode: st.st_mode & 0o7777,
            uid: u64::from(st.st_uid),
            gid: u64::from(st.st_gid),
            mtime: st.st_mtime.max(0) as u64,
            ..Entry::default()
        }
    }

    /// The xattrs that go into the tar, as PAX records.
    fn kept(&self, xattrs: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
        xattrs
            .iter()
            .filter(|(k, _)| {
                self.whiteouts == Whiteouts::Keep || !k.starts_with("trusted.overlay.")
            })
            .cloned()
            .collect()
    }

    /// `e`, which has no data.
    fn append(&mut self, e: &Entry, path: &Path) -> Result<()> {
        self.w
            .append(e, &mut io::empty())
            .map_err(|err| self.os(path, "write", err))
    }

    fn dir(&mut self, fd: i32, path: PathBuf, st: &libc::stat) -> Result<()> {
        let xattrs = at::xattrs(fd).map_err(|e| self.os(&path, "listxattr", e))?;
        let mut e = Self::entry(st, Kind::Dir, &path);
        e.xattrs = self.kept(&xattrs);
        self.append(&e, &path)?;
        let opaque = xattrs
            .iter()
            .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
        if self.whiteouts == Whiteouts::ToOci && opaque {
            self.marker(&path.join(".wh..wh..opq"), st)?;
        }
        for name in at::read_names(fd).map_err(|e| self.os(&path, "readdir", e))? {
            self.member(fd, &name, path.join(OsStr::from_bytes(name.to_bytes())))?;
        }
        Ok(())
    }

    /// An empty regular file: an OCI whiteout.
    fn marker(&mut self, path: &Path, st: &libc::stat) -> Result<()> {
        let mut e = Self::entry(st, Kind::File, path);
        e.mode = 0o644;
        self.append(&e, path)
    }

    fn member(&mut self, dir: i32, name: &CStr, path: PathBuf) -> Result<()> {
        let st = at::stat_at(dir, name).map_err(|e| self.os(&path, "stat", e))?;
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt != libc::S_IFDIR && st.st_nlink > 1 {
            match self.links.binary_search_by_key(&inode(&st), |(k, _)| *k) {
                Ok(i) => {
                    let mut e = Self::entry(&st, Kind::HardLink, &path);
                    e.link = Some(tar_name(&self.links[i].1));
                    return self.append(&e, &path);
                }
                Err(i) => self.links.insert(i, (inode(&st), path.clone())),
            }
        }
        match fmt {
            libc::S_IFDIR => {
                let fd = at::open_dir(dir, name).map_err(|e| self.os(&path, "open", e))?;
                self.dir(fd.as_raw_fd(), path, &st)
            }
            libc::S_IFREG => {
                let fd = at::open_at(dir, name, libc::O_RDONLY, 0)
                    .map_err(|e| self.os(&path, "open", e))?;
                let xattrs =
                    at::xattrs(fd.as_raw_fd()).map_err(|e| self.os(&path, "listxattr", e))?;
                let mut e = Self::entry(&st, Kind::File, &path);
                e.xattrs = self.kept(&xattrs);
                // The writer takes exactly this many bytes: a file that
                // shrinks while it is read (a running container's) fails
                // the commit rather than making a tar whose next header
                // is file data.
                e.size = st.st_size as u64;
                self.w
                    .append(&e, &mut std::fs::File::from(fd))
                    .map_err(|err| self.os(&path, "read", err))
            }
            libc::S_IFLNK => {
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                // SAFETY: readlinkat fills at most the length given.
                let n = unsafe {
                    libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    return Err(self.os(&path, "readlink", io::Error::last_os_error()));
                }
                buf.truncate(n as usize);
                let mut e = Self::entry(&st, Kind::Symlink, &path);
                // The target as it is: stored, never resolved.
                e.link = Some(buf);
                self.append(&e, &path)
            }
            libc::S_IFCHR if st.st_rdev == 0 && self.whiteouts == Whiteouts::ToOci => {
                let hidden = path.file_name().unwrap_or_default().as_bytes();
                let mut wh = b".wh.".to_vec();
                wh.extend_from_slice(hidden);
                let at = path.with_file_name(OsStr::from_bytes(&wh));
                self.marker(&at, &st)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let kind = match fmt {
                    libc::S_IFCHR => Kind::Char,
                    libc::S_IFBLK => Kind::Block,
                    _ => Kind::Fifo,
                };
                let mut e = Self::entry(&st, kind, &path);
                e.major = libc::major(st.st_rdev);
                e.minor = libc::minor(st.st_rdev);
                self.append(&e, &path)
            }
            // Sockets have no tar form: they are made by whoever listens.
            _ => Ok(()),
        }
    }
}

/// A path's name in the tar: the root is "./", the rest relative to it
/// without a leading "./", as the tar crate wrote them.
fn tar_name(path: &Path) -> Vec<u8> {
    let path = path.as_os_str().as_bytes();
    match path.strip_prefix(b"./") {
        Some(rest) if !rest.is_empty() => rest.to_vec(),
        _ => path.to_vec(),
    }
}

/// (device, inode), whose field types differ between architectures
/// (32-bit ino_t on armv7).
#[allow(clippy::unnecessary_cast)]
fn inode(st: &libc::stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

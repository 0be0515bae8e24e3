//! A directory tree → a tar stream, walked by fd (never following a
//! symlink): `export`'s plain tar, a plain rootfs directory's one layer,
//! and `commit`'s layer from a container's overlay upper directory, whose
//! whiteouts become OCI ones again.

use std::ffi::{CStr, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::at;
use crate::error::{Error, Result};

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
        b: tar::Builder::new(out),
        whiteouts,
        links: Vec::new(),
        what,
    };
    let st = at::stat_at(root.as_raw_fd(), c"").map_err(|e| p.os(Path::new("."), "stat", e))?;
    p.dir(root.as_raw_fd(), PathBuf::from("./"), &st)?;
    p.b.finish().map_err(|e| p.os(Path::new("."), "write", e))
}

struct Packer<'a> {
    b: tar::Builder<&'a mut dyn Write>,
    whiteouts: Whiteouts,
    /// (device, inode) → the path first written, for hard links; sorted.
    links: Vec<((u64, u64), PathBuf)>,
    what: &'a str,
}

impl Packer<'_> {
    fn os(&self, path: &Path, op: &str, e: io::Error) -> Error {
        Error::os(format!("{}: {op} {}", self.what, path.display()), &e)
    }

    fn header(st: &libc::stat, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// PAX records for `xattrs` ahead of the next entry.
    fn xattrs(&mut self, path: &Path, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        let keep: Vec<(String, Vec<u8>)> = xattrs
            .iter()
            .filter(|(k, _)| {
                self.whiteouts == Whiteouts::Keep || !k.starts_with("trusted.overlay.")
            })
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
            .collect();
        if keep.is_empty() {
            return Ok(());
        }
        let data = pax_records(&keep);
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path("PaxHeader")
            .map_err(|e| self.os(path, "tar header", e))?;
        h.set_cksum();
        self.b
            .append(&h, &data[..])
            .map_err(|e| self.os(path, "write", e))
    }

    fn dir(&mut self, fd: i32, path: PathBuf, st: &libc::stat) -> Result<()> {
        let xattrs = at::xattrs(fd).map_err(|e| self.os(&path, "listxattr", e))?;
        self.xattrs(&path, &xattrs)?;
        let mut h = Self::header(st, EntryType::Directory);
        self.b
            .append_data(&mut h, &path, io::empty())
            .map_err(|e| self.os(&path, "write", e))?;
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
        let mut h = Self::header(st, EntryType::Regular);
        h.set_mode(0o644);
        self.b
            .append_data(&mut h, path, io::empty())
            .map_err(|e| self.os(path, "write", e))
    }

    fn member(&mut self, dir: i32, name: &CStr, path: PathBuf) -> Result<()> {
        let st = at::stat_at(dir, name).map_err(|e| self.os(&path, "stat", e))?;
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt != libc::S_IFDIR && st.st_nlink > 1 {
            match self.links.binary_search_by_key(&inode(&st), |(k, _)| *k) {
                Ok(i) => {
                    let first = self.links[i].1.clone();
                    let mut h = Self::header(&st, EntryType::Link);
                    return self
                        .b
                        .append_link(&mut h, &path, &first)
                        .map_err(|e| self.os(&path, "write", e));
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
                self.xattrs(&path, &xattrs)?;
                let mut h = Self::header(&st, EntryType::Regular);
                h.set_size(st.st_size as u64);
                let file = std::fs::File::from(fd);
                let exact = Exact {
                    file,
                    left: st.st_size as u64,
                };
                self.b
                    .append_data(&mut h, &path, exact)
                    .map_err(|e| self.os(&path, "read", e))
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
                let mut h = Self::header(&st, EntryType::Symlink);
                let target = Path::new(OsStr::from_bytes(&buf));
                self.b
                    .append_link(&mut h, &path, target)
                    .map_err(|e| self.os(&path, "write", e))
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
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = Self::header(&st, kind);
                let major = libc::major(st.st_rdev);
                let minor = libc::minor(st.st_rdev);
                h.set_device_major(major)
                    .and_then(|()| h.set_device_minor(minor))
                    .map_err(|e| self.os(&path, "tar header", e))?;
                self.b
                    .append_data(&mut h, &path, io::empty())
                    .map_err(|e| self.os(&path, "write", e))
            }
            // Sockets have no tar form: they are made by whoever listens.
            _ => Ok(()),
        }
    }
}

/// (device, inode), whose field types differ between architectures
/// (32-bit ino_t on armv7).
#[allow(clippy::unnecessary_cast)]
fn inode(st: &libc::stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// A file's data as long as its header says: one that shrinks while it
/// is read (a running container's) fails the commit rather than making a
/// tar whose next header is file data.
struct Exact {
    file: std::fs::File,
    left: u64,
}

impl io::Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// PAX extended header records ("LEN key=value\n"), LEN counting itself.
pub fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("a".into(), b"b".to_vec())]);
        assert_eq!(r, b"6 a=b\n");
        let long = vec![b'x'; 95];
        let r = pax_records(&[("k".into(), long)]);
        assert_eq!(r.len(), 102);
        assert!(r.starts_with(b"102 k="));
    }
}

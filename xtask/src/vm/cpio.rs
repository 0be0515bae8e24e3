//! A cpio archive in the "newc" format, the one the kernel unpacks as an
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Each entry is a 110-byte ASCII header ("070701" and thirteen 8-digit hex
//! fields), the NUL-terminated name, padding to 4 bytes, the data, padding
//! to 4 bytes. A "TRAILER!!!" entry ends the archive. Directories must come
//! before what is in them.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

pub struct Writer<W: Write> {
    out: W,
    /// The last inode number given; every entry gets its own.
    ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out, ino: 0 }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, 2, (0, 0), &[])
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, 1, (0, 0), data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, 1, (major, minor), &[])
    }

    /// A file from disk, with `perm` rather than its own permissions.
    pub fn copy(&mut self, path: &str, perm: u32, from: &Path) -> io::Result<()> {
        let data = fs::read(from).map_err(|e| annotate(from, e))?;
        self.file(path, perm, &data)
    }

    /// The directory `src` and everything in it, as `path` (empty: the
    /// archive's top). Directories, regular files and symlinks keep their
    /// permissions and targets; owners become root.
    pub fn tree(&mut self, src: &Path, path: &str) -> io::Result<()> {
        if !path.is_empty() {
            let meta = fs::metadata(src).map_err(|e| annotate(src, e))?;
            self.dir(path, meta.permissions().mode() & 0o7777)?;
        }
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(|e| annotate(src, e))?
            .collect::<io::Result<_>>()
            .map_err(|e| annotate(src, e))?;
        // Sorted, so that the same tree makes the same archive.
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let from = e.path();
            let name = e.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| annotate(&from, io::ErrorKind::InvalidData.into()))?;
            let to = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            let meta = fs::symlink_metadata(&from).map_err(|e| annotate(&from, e))?;
            let perm = meta.mode() & 0o7777;
            let kind = meta.file_type();
            if kind.is_dir() {
                self.tree(&from, &to)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&from).map_err(|e| annotate(&from, e))?;
                let target = target
                    .to_str()
                    .ok_or_else(|| annotate(&from, io::ErrorKind::InvalidData.into()))?;
                self.symlink(&to, target)?;
            } else if kind.is_file() {
                self.copy(&to, perm, &from)?;
            } else {
                return Err(annotate(
                    &from,
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        "not a file, directory or symlink",
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Writes the trailer and gives back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, 1, (0, 0), 0)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "over 4 GiB"))?;
        self.ino += 1;
        self.header(path, self.ino, mode, nlink, rdev, size)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        (rmajor, rminor): (u32, u32),
        size: u32,
    ) -> io::Result<()> {
        let namesize = name.len() as u32 + 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor
        // rdevmajor rdevminor namesize check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, namesize, 0,
        ];
        let mut h = String::with_capacity(110);
        h.push_str("070701");
        for f in fields {
            h.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + namesize as usize)
    }

    /// Zeros up to the next multiple of 4, after `len` bytes.
    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

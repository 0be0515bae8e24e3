//! A layer's tar stream → a directory, the one way a layer is made (import
//! and commit both come here). The archive is hostile: every member is
//! written beneath the layer's directory fd, through parents opened
//! without following a symlink, and anything that could reach outside it
//! or forge an overlay whiteout is refused with one line naming the member.

use std::ffi::CStr;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::at::{self, cstr, cvt};
use super::digest::Hashing;
use super::tar::{self, Entry, Kind};
use crate::error::{Error, Result};

/// A layer stream is skipped by reading it: every byte is hashed.
impl<R: Read> tar::Source for Hashing<R> {}

/// Unpacks the tar stream `src` into the new directory `name` in `parent`
/// and returns the stream's sha256 (the layer's diff_id). `what` names the
/// layer in messages. `verified`: the caller checks the stream against a
/// digest, which also proves it whole; otherwise missing end blocks are a
/// truncated archive. On an error the caller removes `name`.
pub fn unpack(
    src: &mut dyn Read,
    parent: BorrowedFd,
    name: &CStr,
    what: &str,
    verified: bool,
) -> Result<String> {
    let err = |op: &str, e: io::Error| Error::os(format!("{what}: {op}"), &e);
    // SAFETY: a C string and a mode.
    cvt(unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) })
        .map_err(|e| err("mkdir", e))?;
    let root = at::open_dir(parent.as_raw_fd(), name).map_err(|e| err("open", e))?;
    let mut hashing = Hashing::new(src);
    let mut archive = tar::Reader::new(&mut hashing);
    let mut layer = Layer {
        what,
        root: root.as_fd(),
        dirs: Vec::new(),
        kill_after: kill_knob(),
    };
    let truncated = |e: io::Error| Error::new(format!("{what}: truncated or malformed tar: {e}"));
    while let Some(entry) = archive.next().map_err(truncated)? {
        layer.member(&entry, &mut archive)?;
    }
    layer.finish()?;
    if !verified && !archive.saw_end() {
        return Err(Error::new(format!(
            "{what}: truncated tar (no end-of-archive blocks)"
        )));
    }
    hashing.finish().map_err(|e| err("read", e))
}

/// Tests only: HUSK_IMPORT_KILL_AT=layer kills the import with SIGKILL
/// after a few members of a layer, as a crash half-way would.
fn kill_knob() -> Option<usize> {
    (std::env::var("HUSK_IMPORT_KILL_AT").as_deref() == Ok("layer")).then_some(3)
}

pub(crate) fn die_here() -> ! {
    // SAFETY: signalling ourselves.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

struct Layer<'a> {
    what: &'a str,
    root: BorrowedFd<'a>,
    /// Directories whose mtime is set last, after their children.
    dirs: Vec<(Vec<String>, u64)>,
    kill_after: Option<usize>,
}

impl Layer<'_> {
    fn refuse(&self, member: &str, why: &str) -> Error {
        Error::new(format!("{}: member {member:?}: {why}", self.what))
    }

    /// One member; its data, if it has any, is read from `data`.
    fn member(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<()> {
        let raw = std::str::from_utf8(&entry.path)
            .map_err(|_| self.refuse(&String::from_utf8_lossy(&entry.path), "not UTF-8"))?;
        let kind = entry.kind;
        let comps = components(raw).map_err(|why| self.refuse(raw, why))?;
        if let Some((name, _)) = entry
            .xattrs
            .iter()
            .find(|(name, _)| name.starts_with("trusted.overlay."))
        {
            let why = format!("carries the xattr {name}, overlay's own");
            return Err(self.refuse(raw, &why));
        }
        let (mode, mtime) = (entry.mode, entry.mtime);
        // Ids past 32 bits wrap, as they did when the tar crate read them.
        let (uid, gid) = (entry.uid as u32, entry.gid as u32);
        let Some((leaf, dir)) = comps.split_last() else {
            // "./": the layer's root itself.
            if kind != Kind::Dir {
                return Err(self.refuse(raw, "the layer's root is not a directory"));
            }
            let fd = self.root.as_raw_fd();
            // SAFETY: our own fd and numbers; chown first, it clears set-ID bits.
            cvt(unsafe { libc::fchown(fd, uid, gid) })
                .and_then(|_| cvt(unsafe { libc::fchmod(fd, mode & 0o7777) }))
                .map_err(|e| self.os(raw, "chown/chmod", e))?;
            self.dirs.push((Vec::new(), mtime));
            return Ok(());
        };
        let parent = at::dir_beneath(self.root, dir, true).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::EXDEV | libc::ENOTDIR) => {
                self.refuse(raw, "its path goes through a symlink or a non-directory")
            }
            _ => self.os(raw, "open its directory", e),
        })?;
        let p = parent.as_raw_fd();
        if let Some(hidden) = leaf.strip_prefix(".wh.") {
            return self.whiteout(&parent, hidden, raw);
        }
        let name = cstr(leaf).map_err(|_| self.refuse(raw, "holds a NUL"))?;
        let what = self.what;
        let os = |op: &str, e: io::Error| Error::os(format!("{what}: member {raw:?}: {op}"), &e);
        let kept_dir = self.clear(parent.as_fd(), &name, kind == Kind::Dir, raw)?;
        let mut file = None;
        match kind {
            Kind::File => {
                let fd = at::open_at(
                    p,
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o600,
                )
                .map_err(|e| os("create", e))?;
                let mut f = std::fs::File::from(fd);
                let n = io::copy(data, &mut f).map_err(|e| os("copy its data", e))?;
                if n != entry.size {
                    return Err(self.refuse(raw, "truncated tar (its data ends early)"));
                }
                file = Some(OwnedFd::from(f));
            }
            Kind::Dir => {
                if !kept_dir {
                    // SAFETY: a C string and a mode.
                    cvt(unsafe { libc::mkdirat(p, name.as_ptr(), 0o700) })
                        .map_err(|e| os("mkdir", e))?;
                }
                file = Some(at::open_dir(p, &name).map_err(|e| os("open", e))?);
                self.dirs
                    .push((comps.iter().map(|s| s.to_string()).collect(), mtime));
            }
            Kind::Symlink => {
                let target = entry
                    .link
                    .clone()
                    .ok_or_else(|| self.refuse(raw, "a symlink without a target"))?;
                let target =
                    std::ffi::CString::new(target).map_err(|_| self.refuse(raw, "holds a NUL"))?;
                // SAFETY: two C strings. The target is stored as written
                // and never followed here.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), p, name.as_ptr()) })
                    .map_err(|e| os("symlink", e))?;
            }
            Kind::HardLink => return self.hard_link(entry, p, &name, raw),
            Kind::Char | Kind::Block | Kind::Fifo => {
                let dev = self.device(entry, &comps, raw)?;
                // SAFETY: a C string, a mode and a device number.
                cvt(unsafe { libc::mknodat(p, name.as_ptr(), dev.0 | 0o600, dev.1) })
                    .map_err(|e| os("mknod", e))?;
            }
            Kind::Other(flag) => {
                return Err(self.refuse(
                    raw,
                    &format!("unsupported tar entry type {:?}", flag as char),
                ))
            }
        }
        let symlink = kind == Kind::Symlink;
        at::own_and_mode(p, &name, uid, gid, (!symlink).then_some(mode))
            .map_err(|e| os("chown/chmod", e))?;
        for (key, value) in &entry.xattrs {
            // xattrs go through an open fd: files and directories carry them.
            if let Some(fd) = &file {
                at::set_xattr(fd.as_raw_fd(), key, value)
                    .map_err(|e| os(&format!("setxattr {key}"), e))?;
            }
        }
        if kind != Kind::Dir {
            at::set_mtime(p, &name, mtime).map_err(|e| os("utimensat", e))?;
        }
        self.tick();
        Ok(())
    }

    fn os(&self, member: &str, op: &str, e: io::Error) -> Error {
        Error::os(format!("{}: member {member:?}: {op}", self.what), &e)
    }

    fn tick(&mut self) {
        if let Some(n) = self.kill_after.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                die_here();
            }
        }
    }

    /// Makes room for a new `name` in `dir`: a later member replaces an
    /// earlier one. True when `name` is a directory kept for a directory.
    fn clear(&self, dir: BorrowedFd, name: &CStr, dir_wanted: bool, raw: &str) -> Result<bool> {
        match at::stat_at(dir.as_raw_fd(), name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(self.os(raw, "stat", e)),
            Ok(st) if dir_wanted && st.st_mode & libc::S_IFMT == libc::S_IFDIR => Ok(true),
            Ok(_) => {
                at::remove_at(dir, name)
                    .map_err(|e| self.os(raw, "remove the earlier member", e))?;
                Ok(false)
            }
        }
    }

    /// `.wh.NAME` → a 0:0 character device NAME; `.wh..wh..opq` → the
    /// opaque xattr on its directory.
    fn whiteout(&mut self, dir: &OwnedFd, hidden: &str, raw: &str) -> Result<()> {
        if hidden == ".wh..opq" {
            return at::set_xattr(dir.as_raw_fd(), "trusted.overlay.opaque", b"y")
                .map_err(|e| self.os(raw, "setxattr trusted.overlay.opaque", e));
        }
        if hidden.starts_with(".wh.") {
            // aufs's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
            return Ok(());
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(self.refuse(raw, "a whiteout of nothing"));
        }
        let name = cstr(hidden).map_err(|_| self.refuse(raw, "holds a NUL"))?;
        self.clear(dir.as_fd(), &name, false, raw)?;
        // SAFETY: a C string, a mode and device 0:0.
        cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, 0) })
            .map_err(|e| self.os(raw, "mknod whiteout", e))?;
        self.tick();
        Ok(())
    }

    fn hard_link(&mut self, entry: &Entry, dir: i32, name: &CStr, raw: &str) -> Result<()> {
        let target = entry
            .link
            .as_ref()
            .ok_or_else(|| self.refuse(raw, "a hard link without a target"))?;
        let target = String::from_utf8_lossy(target);
        let comps = components(&target)
            .map_err(|why| self.refuse(raw, &format!("hard link to {target:?}: {why}")))?;
        // The layer's directory is new: what is in it now came from the
        // earlier members of this layer, so a target found there (beneath
        // it, through no symlink) is one of them.
        let missing = || {
            self.refuse(
                raw,
                &format!("hard link to {target:?}, not an earlier member of the layer"),
            )
        };
        let (leaf, tdir) = comps.split_last().ok_or_else(missing)?;
        let from = at::dir_beneath(self.root, tdir, false).map_err(|_| missing())?;
        let tname = cstr(leaf).map_err(|_| self.refuse(raw, "holds a NUL"))?;
        // SAFETY: two fds and two C strings; flags 0: a symlink target is
        // linked as itself, never followed.
        match cvt(unsafe { libc::linkat(from.as_raw_fd(), tname.as_ptr(), dir, name.as_ptr(), 0) })
        {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(missing()),
            r => r.map_err(|e| self.os(raw, "link", e))?,
        };
        self.tick();
        Ok(())
    }

    /// The file type and device number of a node member, where a layer
    /// may have one: fifos anywhere, devices only under dev/, and never a
    /// 0:0 character device (that is a whiteout, which only `.wh.` makes).
    fn device(&self, entry: &Entry, comps: &[&str], raw: &str) -> Result<(u32, libc::dev_t)> {
        let (kind, major, minor) = (entry.kind, entry.major, entry.minor);
        if kind == Kind::Fifo {
            return Ok((libc::S_IFIFO, 0));
        }
        if kind == Kind::Char && major == 0 && minor == 0 {
            return Err(self.refuse(
                raw,
                "a 0:0 character device (a whiteout is written .wh.NAME)",
            ));
        }
        if comps.len() < 2 || comps[0] != "dev" {
            return Err(self.refuse(raw, "a device node outside dev/"));
        }
        let t = if kind == Kind::Char {
            libc::S_IFCHR
        } else {
            libc::S_IFBLK
        };
        Ok((t, libc::makedev(major, minor)))
    }

    /// Directory mtimes, now that nothing more is written in them.
    fn finish(&self) -> Result<()> {
        for (comps, mtime) in &self.dirs {
            let path = comps.join("/");
            let r = match comps.split_last() {
                None => at::set_mtime_fd(self.root.as_raw_fd(), *mtime),
                Some((leaf, dir)) => {
                    let dir: Vec<&str> = dir.iter().map(String::as_str).collect();
                    at::dir_beneath(self.root, &dir, false)
                        .and_then(|d| at::set_mtime(d.as_raw_fd(), &cstr(leaf)?, *mtime))
                }
            };
            r.map_err(|e| self.os(&path, "utimensat", e))?;
        }
        Ok(())
    }
}

/// The components of a member path, as it must be: relative (a leading
/// `./` is usual), with no `..`. Empty: the layer's root.
pub fn components(path: &str) -> std::result::Result<Vec<&str>, &'static str> {
    if path.starts_with('/') {
        return Err("an absolute path");
    }
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if comps.contains(&"..") {
        return Err("a path with ..");
    }
    Ok(comps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_relative_without_dot_dot() {
        assert_eq!(components("./etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(components("etc//x/./y/").unwrap(), ["etc", "x", "y"]);
        assert!(components("./").unwrap().is_empty());
        assert_eq!(components("/etc/x").unwrap_err(), "an absolute path");
        assert_eq!(components("a/../../x").unwrap_err(), "a path with ..");
        assert_eq!(components("..").unwrap_err(), "a path with ..");
    }
}

//! The files an import reads: those of an OCI layout directory, or the
//! members of an archive, found once by their offsets in the tar and read
//! in place (nothing is extracted). Paths are an archive's own: looked
//! up beneath the layout's fd through no symlink, or among the members,
//! where a symlink or hard link member is followed to another member
//! only.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use super::at::{self, cstr};
use super::digest;
use super::tar::{self, Kind};
use super::unpack::components;
use crate::error::{Error, Result};
use crate::json::{self, Value};

/// Manifests, indexes and configs are small; anything bigger is refused.
const MAX_JSON: u64 = 4 << 20;

/// A byte range of a file, read by offset.
#[derive(Clone)]
pub struct Section {
    pub(super) file: Rc<File>,
    pub(super) pos: u64,
    pub(super) end: u64,
}

impl Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // In u64 first: on 32-bit targets the rest may not fit a usize.
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// An archive's members are skipped by moving the offset: a layer inside
/// one is read once, when it is unpacked.
impl tar::Source for Section {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        Ok(n)
    }
}

impl Section {
    pub fn head(&self) -> [u8; 4] {
        let mut b = [0u8; 4];
        let _ = self.file.read_at(&mut b, self.pos);
        b
    }
}

/// The files of a layout directory or of an archive's members.
pub enum Files {
    Dir(OwnedFd),
    Tar {
        file: Rc<File>,
        /// In archive order; a path given twice means its last member.
        members: Vec<(String, Member)>,
    },
}

pub enum Member {
    Data(u64, u64),
    /// A symlink or hard link, as an archive path.
    Link(String),
}

impl Files {
    pub fn tar(file: &Rc<File>, shown: &str) -> Result<Files> {
        let bad =
            |e: io::Error| Error::new(format!("{shown}: not a tar archive, nor a directory: {e}"));
        let mut section = Section {
            file: file.clone(),
            pos: 0,
            end: file.metadata().map_err(bad)?.len(),
        };
        let mut archive = tar::Reader::new(&mut section);
        let mut members = Vec::new();
        while let Some(entry) = archive.next().map_err(bad)? {
            let path = String::from_utf8_lossy(&entry.path);
            let Ok(comps) = components(&path) else {
                continue;
            };
            let link = entry.link.map(|l| String::from_utf8_lossy(&l).into_owned());
            let member = match (entry.kind, link) {
                (Kind::File, _) => Member::Data(archive.offset(), entry.size),
                (Kind::HardLink, Some(l)) => Member::Link(l),
                (Kind::Symlink, Some(l)) => {
                    let mut at: Vec<&str> = comps[..comps.len().saturating_sub(1)].to_vec();
                    for c in l.split('/').filter(|c| !c.is_empty() && *c != ".") {
                        if c == ".." {
                            at.pop();
                        } else {
                            at.push(c);
                        }
                    }
                    Member::Link(at.join("/"))
                }
                _ => continue,
            };
            members.push((comps.join("/"), member));
        }
        Ok(Files::Tar {
            file: file.clone(),
            members,
        })
    }

    pub fn has(&self, path: &str) -> bool {
        self.open(path).is_ok()
    }

    pub fn open(&self, path: &str) -> io::Result<Section> {
        let comps = components(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        match self {
            Files::Dir(fd) => {
                let (leaf, dir) = comps
                    .split_last()
                    .ok_or(io::Error::from_raw_os_error(libc::EISDIR))?;
                let d = at::dir_beneath(fd.as_fd(), dir, false)?;
                let f = File::from(at::open_at(d.as_raw_fd(), &cstr(leaf)?, libc::O_RDONLY, 0)?);
                let end = f.metadata()?.len();
                Ok(Section {
                    file: Rc::new(f),
                    pos: 0,
                    end,
                })
            }
            Files::Tar { file, members } => {
                let mut key = comps.join("/");
                for _ in 0..8 {
                    // A few lookups per import: a scan is enough.
                    match members
                        .iter()
                        .rev()
                        .find(|(k, _)| *k == key)
                        .map(|(_, m)| m)
                    {
                        Some(Member::Data(pos, len)) => {
                            return Ok(Section {
                                file: file.clone(),
                                pos: *pos,
                                end: pos + len,
                            })
                        }
                        Some(Member::Link(to)) => {
                            key = components(to).unwrap_or_default().join("/")
                        }
                        None => break,
                    }
                }
                Err(io::Error::from_raw_os_error(libc::ENOENT))
            }
        }
    }

    /// A small JSON file, parsed; with `digest` (hex), verified first.
    pub fn json(&self, path: &str, digest: Option<&str>, shown: &str) -> Result<Value> {
        let what = format!("{shown}: {path}");
        let s = self.open(path).map_err(|e| Error::os(&what, &e))?;
        if s.end - s.pos > MAX_JSON {
            return Err(Error::new(format!("{what}: larger than {MAX_JSON} bytes")));
        }
        let mut data = Vec::new();
        s.take(MAX_JSON)
            .read_to_end(&mut data)
            .map_err(|e| Error::os(&what, &e))?;
        if let Some(want) = digest {
            digest::check(&what, &digest::sha256(&data), want)?;
        }
        let text = String::from_utf8(data).map_err(|_| Error::new(format!("{what}: not UTF-8")))?;
        json::parse(&text).map_err(|e| Error::new(format!("{what}: {e}")))
    }
}

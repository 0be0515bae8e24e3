//! The image store: layers unpacked once, keyed by their uncompressed
//! digest and shared between images, and image records naming their
//! layers and their config's defaults.
//!
//! `DIR/layers/sha256/HEX/` a layer; `DIR/images/NAME.json` an image;
//! `DIR/tmp/` work in progress; `DIR/lock` flocked exclusively by whatever
//! changes the store (import, rmi, commit) and shared by a run opening an
//! image's layers. Everything is made in tmp/ and renamed into place when
//! whole, the image record last: a crash leaves nothing a later command
//! uses, and the next changer sweeps tmp/ and unreferenced layers.

mod archive;
pub(crate) mod at;
pub mod digest;
mod gunzip;
pub mod pack;
mod record;
mod source;
mod tar;
#[cfg(test)]
mod tests;
pub mod unpack;

pub use record::check_name;

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use pack::Whiteouts;
use source::{Blob, LayerSrc};

pub const DEFAULT_STORE: &str = "/var/lib/husk";

pub struct Store {
    dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub name: String,
    /// diff_ids (hex), lowest first.
    pub layers: Vec<String>,
    pub config: Config,
    /// Seconds since the epoch.
    pub created: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

/// The store's flock, held until dropped.
pub struct Lock {
    _file: fs::File,
}

impl Store {
    /// The store at `dir`, made (0700) when missing.
    pub fn open(dir: &Path) -> Result<Store> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for sub in ["layers/sha256", "images", "tmp"] {
            let d = dir.join(sub);
            b.create(&d)
                .map_err(|e| Error::os(format!("mkdir {}", d.display()), &e))?;
        }
        // As the kernel names it: a container's state records its layers'
        // directories so, and `remove` and `commit` compare with them.
        let dir =
            fs::canonicalize(dir).map_err(|e| Error::os(format!("find {}", dir.display()), &e))?;
        Ok(Store { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self, op: libc::c_int) -> Result<Lock> {
        let path = self.dir.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::os(format!("open {}", path.display()), &e))?;
        // SAFETY: flock on our own fd.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::os(format!("flock {}", path.display()), &e));
        }
        Ok(Lock { _file: file })
    }

    /// Held while a container's overlay is made from an image's layers:
    /// no rmi or sweep removes them meanwhile.
    pub fn shared_lock(&self) -> Result<Lock> {
        self.lock(libc::LOCK_SH)
    }

    /// The exclusive lock, and what a killed changer left in tmp/ swept
    /// away. (A layer a killed import renamed into place before its image
    /// record is whole and verified: it stays, unused, until `rmi`.)
    fn change(&self) -> Result<(Lock, OwnedFd)> {
        let lock = self.lock(libc::LOCK_EX)?;
        let tmp = self.open_dir("tmp")?;
        self.clear_tmp(&tmp)?;
        Ok((lock, tmp))
    }

    fn clear_tmp(&self, tmp: &OwnedFd) -> Result<()> {
        for name in at::read_names(tmp.as_raw_fd()).map_err(|e| self.err("read", "tmp", e))? {
            at::remove_at(tmp.as_fd(), &name).map_err(|e| self.err("remove", "tmp/…", e))?;
        }
        Ok(())
    }

    /// `f`'s result; on a failure what it left in tmp/ is removed: a
    /// refused import leaves the store as it was.
    fn or_clear<T>(&self, tmp: &OwnedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let r = f();
        if r.is_err() {
            let _ = self.clear_tmp(tmp);
        }
        r
    }

    fn err(&self, op: &str, sub: &str, e: std::io::Error) -> Error {
        Error::os(format!("{op} {}/{sub}", self.dir.display()), &e)
    }

    fn open_dir(&self, sub: &str) -> Result<OwnedFd> {
        at::open_dir_path(&self.dir.join(sub)).map_err(|e| self.err("open", sub, e))
    }

    /// Where a layer is unpacked. For overlay, `lowerdir` lists them top
    /// first: the image's layers reversed. Take `shared_lock` before
    /// opening them and hold it until the overlay is mounted.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.dir.join("layers/sha256").join(diff_id)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join("images").join(format!("{name}.json"))
    }

    pub fn image(&self, name: &str) -> Result<Image> {
        check_name(name)?;
        let path = self.record_path(name);
        let text = match fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(format!(
                    "image {name}: not in the store {}",
                    self.dir.display()
                )))
            }
            r => r.map_err(|e| Error::os(format!("read {}", path.display()), &e))?,
        };
        Image::from_json(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))
    }

    pub fn images(&self) -> Result<Vec<Image>> {
        let dir = self.dir.join("images");
        let err = |e| Error::os(format!("read {}", dir.display()), &e);
        let mut names = Vec::new();
        for e in fs::read_dir(&dir).map_err(err)? {
            let name = e.map_err(err)?.file_name().to_string_lossy().into_owned();
            if let Some(name) = name.strip_suffix(".json") {
                names.push(name.to_string());
            }
        }
        names.sort_unstable();
        names.iter().map(|n| self.image(n)).collect()
    }

    /// Imports SOURCE (see source.rs) as the image `name`, replacing an
    /// image of that name.
    pub fn import(&self, source: &Path, name: &str) -> Result<Image> {
        check_name(name)?;
        let (_lock, tmp) = self.change()?;
        self.or_clear(&tmp, || {
            let src = source::read(source)?;
            let mut made = Vec::new();
            for layer in &src.layers {
                if let Some(id) = &layer.diff_id {
                    if self.layer_dir(id).is_dir() {
                        made.push((id.clone(), None));
                        continue;
                    }
                }
                let (id, dir) = self.unpack_layer(&tmp, layer)?;
                made.push((id, Some(dir)));
            }
            self.finish(&tmp, made, name, src.config)
        })
    }

    /// Renames the layers made in tmp/ into place and writes the record.
    fn finish(
        &self,
        tmp: &OwnedFd,
        made: Vec<(String, Option<CString>)>,
        name: &str,
        config: Config,
    ) -> Result<Image> {
        let layers_fd = self.open_dir("layers/sha256")?;
        for (id, dir) in &made {
            let Some(dir) = dir else { continue };
            let to = at::cstr(id).map_err(|e| self.err("rename", id, e))?;
            // RENAME_NOREPLACE: a layer already there (the same content)
            // is kept, the new one dropped.
            if let Err(e) = at::rename_noreplace(tmp.as_raw_fd(), dir, layers_fd.as_raw_fd(), &to) {
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(self.err("rename a layer into", &format!("layers/sha256/{id}"), e));
                }
                at::remove_at(tmp.as_fd(), dir).map_err(|e| self.err("remove", "tmp/…", e))?;
            }
        }
        if std::env::var("HUSK_IMPORT_KILL_AT").as_deref() == Ok("record") {
            unpack::die_here();
        }
        let image = Image {
            name: name.to_string(),
            layers: made.into_iter().map(|(id, _)| id).collect(),
            config,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        let tmp_record = self
            .dir
            .join("tmp")
            .join(format!("record-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp_record)?;
            f.write_all((image.to_json().to_json_pretty() + "\n").as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp_record, self.record_path(name))
        };
        write()
            .map_err(|e| Error::os(format!("write {}", self.record_path(name).display()), &e))?;
        Ok(image)
    }

    /// One layer unpacked into tmp/, verified: its diff_id and its name there.
    fn unpack_layer(&self, tmp: &OwnedFd, layer: &LayerSrc) -> Result<(String, CString)> {
        let dir = CString::new(format!("layer-{}", crate::store::random_id())).expect("no NUL");
        let section = match &layer.blob {
            Blob::Section(s) => s.clone(),
            Blob::Dir(fd) => {
                let id = self.pack_and_unpack(tmp, fd, Whiteouts::Keep, &dir, &layer.what)?;
                return Ok((id, dir));
            }
        };
        let head = section.head();
        if head == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(Error::new(format!(
                "{}: zstd-compressed layers are not supported",
                layer.what
            )));
        }
        let gzip = layer.gzip.unwrap_or(head[..2] == [0x1f, 0x8b]);
        let verified = layer.digest.is_some() || layer.diff_id.is_some();
        let mut raw = digest::Hashing::new(section);
        let diff_id = if gzip {
            unpack::unpack(
                &mut gunzip::Gunzip::new(&mut raw),
                tmp.as_fd(),
                &dir,
                &layer.what,
                verified,
            )?
        } else {
            unpack::unpack(&mut raw, tmp.as_fd(), &dir, &layer.what, verified)?
        };
        let blob = raw.finish().map_err(|e| Error::os(&layer.what, &e))?;
        if let Some(want) = &layer.digest {
            digest::check(&layer.what, &blob, want)?;
        }
        if let Some(want) = &layer.diff_id {
            digest::check(
                &format!("{} (uncompressed, rootfs.diff_ids)", layer.what),
                &diff_id,
                want,
            )?;
        }
        Ok((diff_id, dir))
    }

    /// The tree at `root` as a layer tar in tmp/ (hashed as it is
    /// written), then unpacked into tmp/`dir` like any archive's layer.
    fn pack_and_unpack(
        &self,
        tmp: &OwnedFd,
        root: &OwnedFd,
        w: Whiteouts,
        dir: &CString,
        what: &str,
    ) -> Result<String> {
        let tar_name = CString::new(format!("{}.tar", dir.to_string_lossy())).expect("no NUL");
        let fd = at::open_at(
            tmp.as_raw_fd(),
            &tar_name,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .map_err(|e| self.err("create", "tmp/….tar", e))?;
        let mut out = digest::HashingWriter::new(std::io::BufWriter::new(fs::File::from(fd)));
        pack::pack(root.as_fd(), &mut out, w, what)?;
        let (buf, packed) = out.finish();
        let file = buf
            .into_inner()
            .map_err(|e| self.err("write", "tmp/….tar", e.into_error()))?;
        let mut file = std::io::BufReader::new(file);
        std::io::Seek::rewind(&mut file).map_err(|e| self.err("read", "tmp/….tar", e))?;
        let id = unpack::unpack(&mut file, tmp.as_fd(), dir, what, true)?;
        digest::check(what, &id, &packed)?;
        Ok(id)
    }

    /// Removes the image `name`, unless `in_use(name)`, then the layers
    /// that neither an image nor a container uses: `in_use` is asked about
    /// each layer's directory (`layer_dir`) too, as a container's state
    /// records them (an image imported again since a container started
    /// from it no longer names the layers it runs on).
    pub fn remove(&self, name: &str, in_use: &dyn Fn(&str) -> bool) -> Result<()> {
        let _held = self.change()?;
        self.image(name)?;
        if in_use(name) {
            return Err(Error::new(format!("image {name}: a container uses it")));
        }
        let path = self.record_path(name);
        fs::remove_file(&path).map_err(|e| Error::os(format!("remove {}", path.display()), &e))?;
        self.collect_layers(in_use)
    }

    /// Removes every layer no image record names and no container uses.
    fn collect_layers(&self, in_use: &dyn Fn(&str) -> bool) -> Result<()> {
        let used: Vec<String> = self.images()?.into_iter().flat_map(|i| i.layers).collect();
        let layers = self.open_dir("layers/sha256")?;
        for name in
            at::read_names(layers.as_raw_fd()).map_err(|e| self.err("read", "layers/sha256", e))?
        {
            let id = name.to_string_lossy();
            if !used.iter().any(|u| *u == *id)
                && !in_use(&self.layer_dir(&id).display().to_string())
            {
                at::remove_at(layers.as_fd(), &name).map_err(|e| {
                    self.err(
                        "remove",
                        &format!("layers/sha256/{}", name.to_string_lossy()),
                        e,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// `upper` (a container's overlay upper directory) becomes one new
    /// layer on top of `base`'s, with its config, saved as `name`.
    pub fn commit(&self, base: &Image, upper: &Path, name: &str) -> Result<Image> {
        check_name(name)?;
        let (_lock, tmp) = self.change()?;
        for id in &base.layers {
            if !self.layer_dir(id).is_dir() {
                return Err(Error::new(format!(
                    "image {}: layer {id} is missing from the store",
                    base.name
                )));
            }
        }
        self.or_clear(&tmp, || {
            let root = at::open_dir_path(upper)
                .map_err(|e| Error::os(format!("open {}", upper.display()), &e))?;
            let dir = CString::new(format!("layer-{}", crate::store::random_id())).expect("no NUL");
            let what = format!("commit of {}", upper.display());
            let id = self.pack_and_unpack(&tmp, &root, Whiteouts::ToOci, &dir, &what)?;
            let mut made: Vec<(String, Option<CString>)> =
                base.layers.iter().map(|l| (l.clone(), None)).collect();
            made.push((id, Some(dir)));
            self.finish(&tmp, made, name, base.config.clone())
        })
    }
}

/// The tree at `root` (walked by fd, never following symlinks) as one
/// plain tar to `out`.
pub fn export(root: &Path, out: &mut dyn Write) -> Result<()> {
    let fd =
        at::open_dir_path(root).map_err(|e| Error::os(format!("open {}", root.display()), &e))?;
    export_fd(fd.as_fd(), out, &root.display().to_string())
}

/// `export` of the tree at the directory fd `root` (an O_PATH fd too, such
/// as a detached mount's); `what` names it in messages.
pub fn export_fd(root: std::os::fd::BorrowedFd<'_>, out: &mut dyn Write, what: &str) -> Result<()> {
    let fd =
        at::open_dir(root.as_raw_fd(), c".").map_err(|e| Error::os(format!("open {what}"), &e))?;
    pack::pack(
        fd.as_fd(),
        out,
        Whiteouts::Keep,
        &format!("export of {what}"),
    )
}

/// Removes `parent`/`name` and everything below it, by fd, following no
/// symlink; a 000 directory inside (overlay's work/work) is removed too.
pub fn remove_tree(parent: &Path, name: &str) -> Result<()> {
    let what = || format!("remove {}", parent.join(name).display());
    let dir = at::open_dir_path(parent).map_err(|e| Error::os(what(), &e))?;
    let c = at::cstr(name).map_err(|e| Error::os(what(), &e))?;
    at::remove_at(dir.as_fd(), &c).map_err(|e| Error::os(what(), &e))
}

//! Debian's kernel for a guest, and the modules the tests need, kept under
//! downloads()/<arch>/kernel-<series>: a second run downloads nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::apt::{self, Apt};
use super::modules;
use crate::arch::Arch;

/// Where one kernel of the matrix comes from.
pub struct Source {
    /// What `--kernel` calls it: the upstream series its release ships.
    pub series: &'static str,
    /// The Debian releases to take it from, in order: the next is tried
    /// only when the mirror cannot give the one before's package lists.
    pub releases: &'static [&'static str],
    /// The metapackage that names the release's current kernel package,
    /// e.g. linux-image-cloud-amd64.
    pub package: &'static str,
}

pub struct Kernel {
    /// e.g. 6.1.0-56-cloud-amd64
    pub version: String,
    /// The Debian release it is from.
    pub release: String,
    pub image: PathBuf,
    pub modules: Vec<PathBuf>,
}

impl Kernel {
    /// "6.1", "5.10": the upstream series, from the version.
    pub fn series(&self) -> String {
        let mut parts = self.version.split(['.', '-', '+']);
        match (parts.next(), parts.next()) {
            (Some(major), Some(minor)) => format!("{major}.{minor}"),
            _ => self.version.clone(),
        }
    }

    /// The kernel's build configuration, kept beside it.
    pub fn config(&self) -> PathBuf {
        self.image
            .with_file_name(format!("config-{}", self.version))
    }
}

/// The kernel `source` names for `a`: from its first release whose
/// package lists the mirror gives.
pub fn get(a: &Arch, source: &Source) -> crate::Result<Kernel> {
    let dir = super::downloads()
        .join(a.name)
        .join(format!("kernel-{}", source.series));
    // Written last: its presence means everything else is there, with
    // the modules for what the tests need now.
    let stamp = dir.join("version");
    if let Ok(v) = fs::read_to_string(&stamp) {
        if let Some((version, release)) = v.trim().split_once(' ') {
            if let Some(k) = found(&dir, version, release) {
                return Ok(k);
            }
        }
    }
    let mut why = Vec::new();
    for release in source.releases {
        match fetch(a, source, release, &dir) {
            Ok(k) => {
                if !why.is_empty() {
                    println!(
                        "xtask: {} kernel {}: NOTE: {} from {release} instead, as {} could not be fetched \
                         (remove {} to try again)",
                        a.name,
                        source.series,
                        k.version,
                        source.releases[0],
                        dir.display()
                    );
                }
                fs::write(&stamp, format!("{} {}", k.version, k.release))
                    .map_err(|e| format!("write {}: {e}", stamp.display()))?;
                return Ok(k);
            }
            Err(e) => {
                println!("xtask: {} kernel from {release}: {e}", a.name);
                why.push(format!("{release}: {e}"));
            }
        }
    }
    Err(format!(
        "no {} {} kernel ({}) could be fetched: {}",
        a.name,
        source.series,
        source.package,
        why.join("; ")
    ))
}

/// The kernel kept in `dir`, if its list of modules is for what the tests
/// need now: "modules" holds modules::key() and then the names in order.
fn found(dir: &Path, version: &str, release: &str) -> Option<Kernel> {
    let list = fs::read_to_string(dir.join("modules")).ok()?;
    let mut lines = list.lines();
    if lines.next()? != modules::key() {
        return None;
    }
    Some(Kernel {
        image: dir.join(format!("vmlinuz-{version}")),
        modules: lines.map(|m| modules::path(dir, m)).collect(),
        version: version.to_string(),
        release: release.to_string(),
    })
}

/// Downloads and unpacks `source`'s kernel from `release` into `dir`: the
/// newest the mirror can give (a mirror may lack a -security pool file).
fn fetch(a: &Arch, source: &Source, release: &str, dir: &Path) -> crate::Result<Kernel> {
    let apt = Apt::new(a.debian, release);
    let meta = source.package;
    let work = dir.join("download");
    let mut why = Vec::new();
    for v in apt.versions(meta)? {
        let _ = fs::remove_dir_all(&work);
        match download(&apt, &format!("{meta}={v}"), &work) {
            Ok(got) => {
                if !why.is_empty() {
                    println!(
                        "xtask: {} kernel {}: NOTE: {meta} {v} instead of a newer one: {}",
                        a.name,
                        source.series,
                        why.join("; ")
                    );
                }
                return unpack(&got, &work, dir, release);
            }
            Err(e) => why.push(format!("{meta} {v}: {e}")),
        }
    }
    Err(why.join("; "))
}

/// A kernel's packages, downloaded.
struct Download {
    /// e.g. 6.1.0-56-cloud-amd64
    version: String,
    pkgs: Vec<String>,
    debs: Vec<PathBuf>,
}

/// Downloads the kernel package that `meta` (name=version) depends on
/// into `work`, with its parts.
fn download(apt: &Apt, meta: &str, work: &Path) -> crate::Result<Download> {
    let pkg = apt
        .depends(meta)?
        .into_iter()
        .flatten()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or_else(|| format!("{meta} depends on no linux-image package"))?;
    let version = pkg.trim_start_matches("linux-image-").to_string();
    // Up to Debian 13 the image package holds the kernel and its modules;
    // since, they are in linux-binary-<version> and linux-modules-<version>,
    // which it depends on.
    let mut pkgs = vec![pkg.clone()];
    for d in apt.depends(&pkg)?.into_iter().flatten() {
        if d.starts_with("linux-") && d.ends_with(&version) && !pkgs.contains(&d) {
            pkgs.push(d);
        }
    }
    let debs = apt.download(&pkgs, work)?;
    Ok(Download {
        version,
        pkgs,
        debs,
    })
}

/// Unpacks the packages downloaded into `work` and keeps the kernel, its
/// config and the modules in `dir`.
fn unpack(got: &Download, work: &Path, dir: &Path, release: &str) -> crate::Result<Kernel> {
    let (version, pkgs) = (got.version.as_str(), &got.pkgs);
    let unpacked = work.join("root");
    for deb in &got.debs {
        println!("xtask: unpacking {}", deb.display());
        apt::unpack(deb, &unpacked)?;
    }

    let k = Kernel {
        image: dir.join(format!("vmlinuz-{version}")),
        modules: Vec::new(),
        version: version.to_string(),
        release: release.to_string(),
    };
    // Where each file is, in the old layout and in the merged-/usr one.
    let first = |what: &str, candidates: &[PathBuf]| {
        candidates
            .iter()
            .find(|p| p.exists())
            .cloned()
            .ok_or_else(|| format!("no {what} in {}: looked for {candidates:?}", pkgs.join(" ")))
    };
    let tree = first(
        "module tree",
        &[
            unpacked.join("lib/modules").join(version),
            unpacked.join("usr/lib/modules").join(version),
        ],
    )?;
    let image = first(
        "kernel image",
        &[
            unpacked.join(format!("boot/vmlinuz-{version}")),
            unpacked.join(format!("boot/vmlinux-{version}")),
            tree.join("vmlinuz"),
        ],
    )?;
    let config = first(
        "kernel config",
        &[
            unpacked.join(format!("boot/config-{version}")),
            tree.join("config"),
        ],
    )?;
    copy(&image, &k.image)?;
    copy(&config, &k.config())?;
    let names =
        modules::resolve(&tree, dir).map_err(|e| format!("{e} (from {})", pkgs.join(" ")))?;
    let list = dir.join("modules");
    fs::write(&list, format!("{}\n{}\n", modules::key(), names.join("\n")))
        .map_err(|e| format!("write {}: {e}", list.display()))?;
    // The unpacked packages are 100 MB of modules we do not use.
    let _ = fs::remove_dir_all(work);
    found(dir, &k.version, release).ok_or_else(|| format!("{} is unreadable", list.display()))
}

/// The module `m` (a path without .ko) as a plain .ko at `to`: newer
/// Debian kernels compress their modules, and busybox's insmod takes them
/// plain.
pub(super) fn module(m: &Path, to: &Path) -> crate::Result {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", m.display()));
    let ko = with("ko");
    if ko.exists() {
        return copy(&ko, to);
    }
    for (ext, tool) in [("ko.xz", "xz"), ("ko.zst", "zstd")] {
        let packed = with(ext);
        if !packed.exists() {
            continue;
        }
        let out = Command::new(tool)
            .arg("-dc")
            .arg(&packed)
            .output()
            .map_err(|e| format!("run {tool} for {}: {e}", packed.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{tool} -dc {}: {}",
                packed.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        return fs::write(to, out.stdout).map_err(|e| format!("write {}: {e}", to.display()));
    }
    Err(format!(
        "{} (nor .ko.xz, .ko.zst) is not there",
        ko.display()
    ))
}

fn copy(from: &Path, to: &Path) -> crate::Result {
    fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

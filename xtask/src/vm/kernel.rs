//! Debian's cloud kernel for an architecture, and the modules the tests
//! need, kept under target/vm/<arch>/kernel: a second run downloads nothing.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use super::apt::{self, Apt};
use crate::arch::Arch;

/// Modules the guest loads, in order, as paths under
/// lib/modules/<version>/kernel. Everything else the tests need (cgroups
/// v1 and v2, namespaces, devtmpfs, devpts, mqueue) is built in.
const MODULES: &[&str] = &["fs/overlayfs/overlay"];

pub struct Kernel {
    /// e.g. 6.1.0-56-cloud-amd64
    pub version: String,
    pub image: PathBuf,
    pub modules: Vec<PathBuf>,
}

pub fn get(a: &Arch) -> crate::Result<Kernel> {
    let dir = super::cache().join(a.name).join("kernel");
    let found = |version: String| {
        let modules = MODULES
            .iter()
            .map(|m| dir.join(format!("{}.ko", module_name(m))))
            .collect();
        Kernel {
            image: dir.join(format!("vmlinuz-{version}")),
            version,
            modules,
        }
    };
    // Written last: its presence means everything else is there.
    let stamp = dir.join("version");
    if let Ok(v) = fs::read_to_string(&stamp) {
        return Ok(found(v.trim().to_string()));
    }

    let apt = Apt::new(a.debian);
    // A metapackage naming this release's current kernel package.
    let meta = format!("linux-image-cloud-{}", a.debian);
    let pkg = apt
        .depends(&meta)?
        .into_iter()
        .flatten()
        .find(|d| d.starts_with("linux-image-"))
        .ok_or_else(|| format!("{meta} depends on no linux-image package"))?;
    let version = pkg.trim_start_matches("linux-image-").to_string();
    let work = dir.join("download");
    let _ = fs::remove_dir_all(&work);
    let debs = apt.download(std::slice::from_ref(&pkg), &work)?;
    let unpacked = work.join("root");
    println!("xtask: unpacking {}", debs[0].display());
    apt::unpack(&debs[0], &unpacked)?;

    let copy = |from: PathBuf, to: PathBuf| {
        fs::copy(&from, &to)
            .map(drop)
            .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
    };
    let k = found(version.clone());
    copy(
        unpacked.join("boot").join(format!("vmlinuz-{version}")),
        k.image.clone(),
    )?;
    copy(
        unpacked.join("boot").join(format!("config-{version}")),
        dir.join(format!("config-{version}")),
    )?;
    let tree = unpacked.join("lib/modules").join(&version).join("kernel");
    for (m, to) in MODULES.iter().zip(&k.modules) {
        let ko = tree.join(format!("{m}.ko"));
        if ko.exists() {
            copy(ko, to.clone())?;
            continue;
        }
        // Newer Debian kernels compress their modules; busybox's insmod
        // takes them plain.
        let xz = tree.join(format!("{m}.ko.xz"));
        let out = Command::new("xz")
            .arg("-dc")
            .arg(&xz)
            .output()
            .map_err(|e| format!("run xz for {}: {e}", xz.display()))?;
        if !out.status.success() {
            return Err(format!("{} (or .ko.xz) is not in {pkg}", ko.display()));
        }
        fs::write(to, out.stdout).map_err(|e| format!("write {}: {e}", to.display()))?;
    }
    // The unpacked package is 100 MB of modules we do not use.
    let _ = fs::remove_dir_all(&work);
    fs::write(&stamp, &version).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    Ok(k)
}

/// "fs/overlayfs/overlay" -> "overlay"
fn module_name(m: &str) -> &str {
    m.rsplit('/').next().unwrap_or(m)
}

//! Debian's CNI plugins for a guest, for the `--net cni:NAME` scenario:
//! bridge and host-local from containernetworking-plugins, with what they
//! are linked against (libc6's loader, at the path the plugins name, and
//! libc.so.6), kept under downloads()/<arch>/cni. Nothing else of the C
//! library: the guest stays busybox's.

use std::fs;
use std::path::{Path, PathBuf};

use super::{apt, downloads, guest};
use crate::arch::Arch;

const PLUGINS: &[&str] = &["bridge", "host-local"];

/// The files, as (path in the guest, file here).
pub fn get(a: &Arch) -> crate::Result<Vec<(String, PathBuf)>> {
    let dir = downloads().join(a.name).join("cni");
    let root = dir.join("root");
    if !root.join("usr/lib/cni/bridge").exists() {
        let debs = guest::fetch(a, &["containernetworking-plugins", "libc6"], &dir)?;
        for d in &debs {
            apt::unpack(d, &root)?;
        }
    }
    let mut files: Vec<(String, PathBuf)> = PLUGINS
        .iter()
        .map(|p| (format!("usr/lib/cni/{p}"), root.join("usr/lib/cni").join(p)))
        .collect();
    // The loader's own default search path has lib/<triplet> and
    // usr/lib/<triplet>: libc.so.6 stays where the package put it.
    let libc = find(&root, "libc.so.6")?;
    let rel = libc.strip_prefix(&root).unwrap_or(&libc);
    files.push((rel.display().to_string(), libc.clone()));
    // The loader at the path the plugins name, whichever way the package
    // puts it there (merged /usr, a /lib64 symlink).
    let interp = interpreter(a)?;
    let name = interp.rsplit('/').next().unwrap_or(interp);
    files.push((
        interp.trim_start_matches('/').to_string(),
        find(&root, name)?,
    ));
    for (to, from) in &files {
        if !from.is_file() {
            return Err(format!(
                "{} (for the guest's {to}) is not there",
                from.display()
            ));
        }
    }
    Ok(files)
}

fn interpreter(a: &Arch) -> crate::Result<&'static str> {
    Ok(match a.debian {
        "amd64" => "/lib64/ld-linux-x86-64.so.2",
        "arm64" => "/lib/ld-linux-aarch64.so.1",
        "armhf" => "/lib/ld-linux-armhf.so.3",
        "riscv64" => "/lib/ld-linux-riscv64-lp64d.so.1",
        other => return Err(format!("no glibc loader known for {other}")),
    })
}

/// The regular file called `name` under `dir` (not a symlink: theirs are
/// absolute, into this machine's own /lib).
fn find(dir: &Path, name: &str) -> crate::Result<PathBuf> {
    fn walk(d: &Path, name: &str) -> Option<PathBuf> {
        for e in fs::read_dir(d).ok()?.flatten() {
            let t = e.file_type().ok()?;
            if t.is_dir() {
                if let Some(p) = walk(&e.path(), name) {
                    return Some(p);
                }
            } else if t.is_file() && e.file_name() == name {
                return Some(e.path());
            }
        }
        None
    }
    walk(dir, name)
        .ok_or_else(|| format!("no {name} in the packages unpacked in {}", dir.display()))
}

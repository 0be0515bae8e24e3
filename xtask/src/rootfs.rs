//! cargo xtask rootfs DIR [--arch A]: a busybox root file system.

use std::path::{Path, PathBuf};
use std::process::Command;

use argh::FromArgs;
use husk_tests::rootfs;

use crate::arch::Arch;

/// build a busybox root file system in DIR (Debian's busybox-static, every applet linked, a minimal /etc)
#[derive(FromArgs)]
#[argh(subcommand, name = "rootfs")]
pub struct Args {
    /// where to build it
    #[argh(positional)]
    dir: PathBuf,
    /// architecture: x86_64, aarch64, armv7 or riscv64 (default: this machine's)
    #[argh(option)]
    arch: Option<String>,
}

pub fn main(args: Args) -> crate::Result {
    build(&args.dir, args.arch.as_deref())
}

pub fn build(dir: &Path, arch: Option<&str>) -> crate::Result {
    let native = crate::arch::native();
    let arch = match arch {
        Some(a) => crate::arch::find(a)?,
        None => native,
    };
    let cache = crate::target().join("cache");
    let busybox = if arch.name == native.name {
        println!("xtask: looking for a static busybox (or fetching Debian's busybox-static)");
        rootfs::find_busybox(&cache)?
    } else {
        println!(
            "xtask: fetching Debian's busybox-static for {}",
            arch.debian
        );
        rootfs::fetch_deb_busybox(&cache, Some(arch.debian))?
    };
    build_from(dir, arch, &busybox)
}

/// The rootfs in `dir` from `busybox`, a static busybox for `arch`.
pub fn build_from(dir: &Path, arch: &Arch, busybox: &Path) -> crate::Result {
    let applets = if arch.name == crate::arch::native().name {
        rootfs::applets(busybox)?
    } else {
        // A foreign busybox lists its applets under qemu-user.
        let qemu = format!("qemu-{}-static", arch.qemu);
        let out = Command::new(&qemu)
            .arg(busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| format!("run {qemu}: {e} (apt-get install qemu-user-static)"))?;
        if !out.status.success() {
            return Err(format!(
                "{qemu} {} --list-full: {}",
                busybox.display(),
                out.status
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    println!(
        "xtask: building {} from {} ({} applets)",
        dir.display(),
        busybox.display(),
        applets.len()
    );
    rootfs::build(dir, busybox, &applets)
}

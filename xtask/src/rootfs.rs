//! cargo xtask rootfs DIR [--arch A]: a busybox root file system.

use std::path::{Path, PathBuf};
use std::process::Command;

use argh::FromArgs;
use husk_tests::rootfs;

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
    let (deb, qemu) = (arch.debian, arch.qemu);
    let arch = arch.name;
    let native = native.name;
    let cache = crate::target().join("cache");
    let busybox = if arch == native {
        println!("xtask: looking for a static busybox (or fetching Debian's busybox-static)");
        rootfs::find_busybox(&cache)?
    } else {
        println!("xtask: fetching Debian's busybox-static for {deb}");
        rootfs::fetch_deb_busybox(&cache, Some(deb))?
    };
    let applets = if arch == native {
        rootfs::applets(&busybox)?
    } else {
        // A foreign busybox lists its applets under qemu-user.
        let out = Command::new(format!("qemu-{qemu}-static"))
            .arg(&busybox)
            .arg("--list-full")
            .output()
            .map_err(|e| {
                format!("run qemu-{qemu}-static: {e} (apt-get install qemu-user-static)")
            })?;
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
    rootfs::build(dir, &busybox, &applets)
}

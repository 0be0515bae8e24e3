//! Everything one architecture with one kernel needs to boot: the static
//! programs, a busybox rootfs, the kernel, the initramfs, QEMU and its
//! accelerator.

use std::collections::HashMap;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::apt::{self, Apt};
use super::matrix::{self, Choice, Root};
use super::qemu::{self, Accel};
use super::{cache, cpio, downloads, init, kernel};
use crate::arch::Arch;

pub struct Guest {
    pub arch: &'static Arch,
    pub root: Root,
    pub kernel: kernel::Kernel,
    pub initrd: PathBuf,
    pub qemu: qemu::Qemu,
    pub accel: Accel,
}

/// The static programs that go into an architecture's guests.
#[derive(Clone)]
pub struct Programs {
    runner: PathBuf,
    tests: PathBuf,
    probe: PathBuf,
}

/// Each architecture's programs, built once however many guests use them.
#[derive(Default)]
pub struct Builds(HashMap<&'static str, Programs>);

impl Builds {
    fn get(&mut self, a: &'static Arch) -> crate::Result<Programs> {
        if let Some(p) = self.0.get(a.name) {
            return Ok(p.clone());
        }
        let p = Programs {
            runner: crate::dist::build(a)?.runner,
            tests: {
                println!("xtask: {}: building husk-tests", a.name);
                crate::programs::build_static(a, "husk-tests")?
            },
            probe: crate::programs::build_probe(a)?,
        };
        self.0.insert(a.name, p.clone());
        Ok(p)
    }
}

/// What a guest downloads, kept in `downloads()`.
pub struct Downloads {
    kernel: kernel::Kernel,
    busybox: PathBuf,
    /// The CNI plugins and their C library, as (path in the guest, file).
    plugins: Vec<(String, PathBuf)>,
    qemu: qemu::Qemu,
}

/// Fetches what `c`'s guest needs from Debian, or finds it kept.
pub fn download(c: &Choice) -> crate::Result<Downloads> {
    let a = c.arch;
    Ok(Downloads {
        kernel: kernel::get(a, &c.row.kernel)?,
        busybox: busybox(a)?,
        plugins: super::plugins::get(a)?,
        qemu: qemu::find(a)?,
    })
}

impl Guest {
    pub fn prepare(c: &Choice, builds: &mut Builds) -> crate::Result<Guest> {
        let a = c.arch;
        let programs = builds.get(a)?;
        let Downloads {
            kernel,
            busybox,
            plugins,
            qemu,
        } = download(c)?;
        let dir = cache().join(a.name);
        let rootfs = dir.join("rootfs");
        if !rootfs.join("bin/busybox").exists() {
            crate::rootfs::build_from(&rootfs, a, &busybox)?;
        }
        let initrd = dir.join(format!("initrd-{}.cpio", kernel.series()));
        write_initrd(&initrd, &rootfs, &programs, &kernel.modules, &plugins)?;
        let accel = qemu.accel(a, &kernel.image);
        Ok(Guest {
            arch: a,
            root: c.root,
            kernel,
            initrd,
            qemu,
            accel,
        })
    }
}

/// Debian's busybox-static for `a`, unpacked under downloads()/<arch>/busybox.
fn busybox(a: &Arch) -> crate::Result<PathBuf> {
    let dir = downloads().join(a.name).join("busybox");
    let root = dir.join("root");
    let found = || {
        ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .map(|p| root.join(p))
            .find(|p| p.exists())
    };
    if let Some(b) = found() {
        return Ok(b);
    }
    let debs = fetch(a, &["busybox-static"], &dir)?;
    apt::unpack(&debs[0], &root)?;
    found().ok_or_else(|| format!("{} holds no busybox", debs[0].display()))
}

/// Debian's packages `pkgs` for `a`, downloaded into `dir`: from the
/// release of the architecture's first kernel in the matrix (else the
/// next), so that every guest of an architecture has the same.
pub fn fetch(a: &Arch, pkgs: &[&str], dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let releases = matrix::MATRIX
        .iter()
        .find(|r| r.arch == a.name)
        .map_or(&[][..], |r| r.kernel.releases);
    let names: Vec<String> = pkgs.iter().map(|p| p.to_string()).collect();
    let mut why = Vec::new();
    for release in releases {
        match Apt::new(a.debian, release).download(&names, dir) {
            Ok(debs) => return Ok(debs),
            Err(e) => why.push(format!("{release}: {e}")),
        }
    }
    Err(format!(
        "no {} for {} could be fetched: {}",
        pkgs.join(" "),
        a.debian,
        why.join("; ")
    ))
}

/// The initramfs: the busybox rootfs as the guest's own root, with /init,
/// the modules, and under /husk the runner, husk-tests and a copy of the
/// rootfs for the containers, with husk-probe in it.
fn write_initrd(
    path: &Path,
    rootfs: &Path,
    programs: &Programs,
    modules: &[PathBuf],
    extra: &[(String, PathBuf)],
) -> crate::Result {
    let io = |e: std::io::Error| format!("write {}: {e}", path.display());
    let file = fs::File::create(path).map_err(io)?;
    let mut w = cpio::Writer::new(BufWriter::new(file));
    w.tree(rootfs, "").map_err(io)?;
    // The kernel opens /dev/console for init before anything is mounted.
    w.char_dev("dev/console", 0o600, 5, 1).map_err(io)?;
    w.file("init", 0o755, init::SCRIPT.as_bytes()).map_err(io)?;
    w.dir("newroot", 0o755).map_err(io)?;
    w.dir("lib", 0o755).map_err(io)?;
    w.dir("lib/modules", 0o755).map_err(io)?;
    // Numbered: init loads them in the order of their names.
    for (i, m) in modules.iter().enumerate() {
        let name = m.file_name().unwrap().to_string_lossy();
        w.copy(&format!("lib/modules/{i:02}-{name}"), 0o644, m)
            .map_err(io)?;
    }
    // The CNI plugins and their C library, each with its directories
    // (one the rootfs has already is only made again).
    for (to, from) in extra {
        let mut at = String::new();
        for part in to
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            at = if at.is_empty() {
                part.to_string()
            } else {
                format!("{at}/{part}")
            };
            w.dir(&at, 0o755).map_err(io)?;
        }
        w.copy(to, 0o755, from).map_err(io)?;
    }
    // Readable by all: one scenario runs the runner as nobody.
    w.dir("husk", 0o755).map_err(io)?;
    w.copy("husk/runner", 0o755, &programs.runner).map_err(io)?;
    w.copy("husk/husk-tests", 0o755, &programs.tests)
        .map_err(io)?;
    w.tree(rootfs, "husk/rootfs").map_err(io)?;
    w.copy(
        &format!("husk/rootfs{}", husk_tests::PROBE),
        0o755,
        &programs.probe,
    )
    .map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

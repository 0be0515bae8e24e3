//! Which VMs run: each architecture with the kernels it boots, the guest's
//! root and its cgroup layouts; and the choice the command line makes.

use super::kernel::Source;
use crate::arch::{self, Arch};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    V1,
    V2,
    Hybrid,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::V1, Layout::V2, Layout::Hybrid];

    pub fn name(self) -> &'static str {
        match self {
            Layout::V1 => "v1",
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
        }
    }
}

/// What the guest's / is. pivot_root(2) cannot leave the kernel's initial
/// rootfs, so an init that stays on it is a host where the runner must
/// move the root instead: boards and routers that run from an initramfs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Root {
    /// The init copies itself onto a tmpfs and switch_roots there.
    Tmpfs,
    Initramfs,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Tmpfs => "tmpfs",
            Root::Initramfs => "initramfs",
        }
    }
}

/// One architecture with one kernel, and the VMs it boots by default.
pub struct Row {
    pub arch: &'static str,
    pub kernel: Source,
    pub root: Root,
    pub layouts: &'static [Layout],
}

/// The default matrix: what CI runs. x86_64 goes through every cgroup
/// layout as a disk-booted host would; the others are boards on their
/// initramfs, with cgroup v2. 5.10 (Debian 11) is the oldest LTS kernel
/// boards still run; armv7 and riscv64 run the runners husk ships for them.
pub const MATRIX: &[Row] = &[
    Row {
        arch: "x86_64",
        kernel: Source {
            series: "6.1",
            releases: &["bookworm"],
            package: "linux-image-cloud-amd64",
        },
        root: Root::Tmpfs,
        layouts: &Layout::ALL,
    },
    Row {
        arch: "x86_64",
        kernel: Source {
            series: "5.10",
            releases: &["bullseye"],
            package: "linux-image-cloud-amd64",
        },
        root: Root::Tmpfs,
        // v2 on 5.10 is the aarch64 guest's.
        layouts: &[Layout::V1, Layout::Hybrid],
    },
    Row {
        arch: "aarch64",
        kernel: Source {
            series: "6.1",
            releases: &["bookworm"],
            package: "linux-image-cloud-arm64",
        },
        root: Root::Initramfs,
        layouts: &[Layout::V2],
    },
    Row {
        arch: "aarch64",
        kernel: Source {
            series: "5.10",
            releases: &["bullseye"],
            package: "linux-image-cloud-arm64",
        },
        root: Root::Initramfs,
        layouts: &[Layout::V2],
    },
    Row {
        arch: "armv7",
        kernel: Source {
            series: "6.1",
            releases: &["bookworm"],
            package: "linux-image-armmp",
        },
        root: Root::Initramfs,
        layouts: &[Layout::V2],
    },
    Row {
        arch: "riscv64",
        // Debian 12 has no riscv64 port. Unstable only if the mirror cannot
        // give trixie's riscv64 lists (they have failed their checksums).
        kernel: Source {
            series: "6.12",
            releases: &["trixie", "sid"],
            package: "linux-image-riscv64",
        },
        root: Root::Initramfs,
        layouts: &[Layout::V2],
    },
];

/// The VMs of one row that the command line chose.
pub struct Choice {
    pub arch: &'static Arch,
    pub row: &'static Row,
    pub root: Root,
    pub layouts: Vec<Layout>,
}

/// The rows `--arch` and `--kernel` name ("all" or none: every one), with
/// `--cgroups` and `--root` applied.
pub fn choose(
    arch_name: Option<&str>,
    kernel: Option<&str>,
    cgroups: Option<&str>,
    root: Option<&str>,
) -> crate::Result<Vec<Choice>> {
    let arch = arch_name.map(arch::find).transpose()?;
    let kernel = kernel.filter(|k| *k != "all");
    if let Some(a) = arch {
        if !MATRIX.iter().any(|r| r.arch == a.name) {
            return Err(format!("vm-test has no {} guest", a.name));
        }
    }
    if let Some(k) = kernel {
        if !MATRIX.iter().any(|r| r.kernel.series == k) {
            return Err(format!(
                "--kernel {k}: expected {} or all",
                series().join(", ")
            ));
        }
    }
    let layouts = match cgroups {
        None => None,
        Some("all") => Some(Layout::ALL.to_vec()),
        Some(l) => Some(vec![*Layout::ALL
            .iter()
            .find(|x| x.name() == l)
            .ok_or_else(|| {
                format!("--cgroups {l}: expected v1, v2, hybrid or all")
            })?]),
    };
    let root = match root {
        None => None,
        Some("tmpfs") => Some(Root::Tmpfs),
        Some("initramfs") => Some(Root::Initramfs),
        Some(r) => return Err(format!("--root {r}: expected tmpfs or initramfs")),
    };
    let mut chosen = Vec::new();
    for row in MATRIX {
        if arch.is_some_and(|a| a.name != row.arch)
            || kernel.is_some_and(|k| k != row.kernel.series)
        {
            continue;
        }
        chosen.push(Choice {
            arch: arch::find(row.arch)?,
            row,
            root: root.unwrap_or(row.root),
            layouts: layouts.clone().unwrap_or_else(|| row.layouts.to_vec()),
        });
    }
    if chosen.is_empty() {
        let a = arch.map(|a| a.name).unwrap_or("any architecture");
        let has: Vec<&str> = MATRIX
            .iter()
            .filter(|r| arch.is_none_or(|x| x.name == r.arch))
            .map(|r| r.kernel.series)
            .collect();
        return Err(format!(
            "the matrix has no {} kernel for {a}: it has {}",
            kernel.unwrap_or("?"),
            has.join(", ")
        ));
    }
    Ok(chosen)
}

/// Every kernel series of the matrix, once each.
fn series() -> Vec<&'static str> {
    let mut s: Vec<&str> = Vec::new();
    for r in MATRIX {
        if !s.contains(&r.kernel.series) {
            s.push(r.kernel.series);
        }
    }
    s
}

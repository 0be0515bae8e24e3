//! cargo xtask vm-test: the container scenarios inside real kernels under
//! QEMU, on each cgroup layout (v1, v2, hybrid) and on x86_64 and aarch64.
//!
//! For each architecture: Debian's cloud kernel (`kernel`), the static
//! runner (`cargo xtask dist`) and husk-tests, and a busybox rootfs, packed
//! with a small init (`init`) into a cpio initramfs (`cpio`). Each VM boots
//! under QEMU (`qemu`: KVM when it works, else TCG); the init mounts the
//! layout the kernel command line names, runs husk-tests, and prints one
//! line "vm-test: N passed, M failed", which decides. Everything fetched
//! or built is kept under target/vm.

mod apt;
mod cpio;
mod init;
mod kernel;
mod qemu;

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argh::FromArgs;

use crate::arch::{self, Arch};
use qemu::{Accel, End, Next};

/// run the container scenarios in VMs: Debian's cloud kernel under QEMU with cgroup v1, v2 or hybrid (default: x86_64 with each, aarch64 with v2)
#[derive(FromArgs)]
#[argh(subcommand, name = "vm-test")]
pub struct Args {
    /// x86_64 or aarch64 (default: both)
    #[argh(option)]
    arch: Option<String>,
    /// v1, v2, hybrid or all (default: all on x86_64, v2 on aarch64)
    #[argh(option)]
    cgroups: Option<String>,
    /// the guest's root: tmpfs (switched to, as a disk-booted host's) or
    /// initramfs (stayed on, as a board's) (default: tmpfs on x86_64,
    /// initramfs on aarch64)
    #[argh(option)]
    root: Option<String>,
    /// seconds each VM may take (default 600)
    #[argh(option, default = "600")]
    timeout: u64,
    /// show the whole serial console: kernel, init and tests
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// scenarios to run, each as often as named (default: all, once)
    #[argh(positional)]
    scenarios: Vec<String>,
}

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

/// The default matrix: what CI runs. x86_64 goes through every cgroup
/// layout as a disk-booted host would; aarch64 is a board on its initramfs.
fn default_layouts(a: &Arch) -> &'static [Layout] {
    match a.name {
        "x86_64" => &Layout::ALL,
        _ => &[Layout::V2],
    }
}

fn default_root(a: &Arch) -> Root {
    match a.name {
        "x86_64" => Root::Tmpfs,
        _ => Root::Initramfs,
    }
}

pub fn main(args: Args) -> crate::Result {
    run_matrix(args).map(drop)
}

fn run_matrix(args: Args) -> crate::Result<(usize, usize)> {
    let arches: Vec<&'static Arch> = match &args.arch {
        Some(a) => vec![arch::find(a)?],
        None => vec![arch::find("x86_64")?, arch::find("aarch64")?],
    };
    let mut matrix = Vec::new();
    for a in arches {
        if !matches!(a.name, "x86_64" | "aarch64") {
            return Err(format!(
                "vm-test runs x86_64 and aarch64 guests, not {}",
                a.name
            ));
        }
        let layouts: Vec<Layout> = match args.cgroups.as_deref() {
            None => default_layouts(a).to_vec(),
            Some("all") => Layout::ALL.to_vec(),
            Some(l) => vec![*Layout::ALL
                .iter()
                .find(|x| x.name() == l)
                .ok_or_else(|| format!("--cgroups {l}: expected v1, v2, hybrid or all"))?],
        };
        let root = match args.root.as_deref() {
            None => default_root(a),
            Some("tmpfs") => Root::Tmpfs,
            Some("initramfs") => Root::Initramfs,
            Some(r) => return Err(format!("--root {r}: expected tmpfs or initramfs")),
        };
        matrix.push((a, root, layouts));
    }
    for s in &args.scenarios {
        if !husk_tests::ALL.iter().any(|(n, _)| n == s) {
            return Err(format!("no scenario {s}"));
        }
    }
    run(&matrix, &args)
}

/// The default matrix, for `cargo xtask test`: how many tests passed and
/// failed over all the VMs.
pub fn run_default() -> crate::Result<(usize, usize)> {
    run_matrix(Args {
        arch: None,
        cgroups: None,
        root: None,
        timeout: 600,
        verbose: false,
        scenarios: Vec::new(),
    })
}

/// Where everything is kept.
fn cache() -> PathBuf {
    crate::target().join("vm")
}

/// What one VM gave.
struct Outcome {
    arch: &'static str,
    root: Root,
    layout: Layout,
    accel: Accel,
    wall: Duration,
    passed: usize,
    failed: usize,
    /// Why the VM failed, if it did.
    error: Option<String>,
    /// husk-tests' line naming scenarios that passed only on a second try.
    flaky: Option<String>,
}

fn run(
    matrix: &[(&'static Arch, Root, Vec<Layout>)],
    args: &Args,
) -> crate::Result<(usize, usize)> {
    // husk-tests runs each name given, as often as given.
    let expected = if args.scenarios.is_empty() {
        husk_tests::ALL.len()
    } else {
        args.scenarios.len()
    };
    let mut outcomes = Vec::new();
    for (a, root, layouts) in matrix {
        let start = Instant::now();
        let guest = Guest::prepare(a, *root)?;
        println!(
            "xtask: {} guest ready in {:.1} s: kernel {}, {}, {} root",
            a.name,
            start.elapsed().as_secs_f64(),
            guest.kernel.version,
            guest.accel.name(),
            root.name()
        );
        for &layout in layouts {
            let o = guest.boot(layout, args, expected)?;
            outcomes.push(o);
        }
    }

    println!("\n| arch | root | cgroups | accel | wall | passed | failed |");
    println!("|---|---|---|---|---:|---:|---:|");
    for o in &outcomes {
        println!(
            "| {} | {} | {} | {} | {:.1} s | {} | {} |",
            o.arch,
            o.root.name(),
            o.layout.name(),
            o.accel.name(),
            o.wall.as_secs_f64(),
            o.passed,
            o.failed
        );
    }
    let bad: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| format!("{} {}: {e}", o.arch, o.layout.name()))
        })
        .collect();
    let passed = outcomes.iter().map(|o| o.passed).sum();
    let failed = outcomes.iter().map(|o| o.failed).sum();
    for o in &outcomes {
        if let Some(f) = &o.flaky {
            println!("vm-test: {} {}: {f}", o.arch, o.layout.name());
        }
    }
    println!("vm-test: {passed} passed, {failed} failed");
    if bad.is_empty() {
        println!("vm-test: every VM passed every test");
        Ok((passed, failed))
    } else {
        Err(format!("vm-test failed:\n  {}", bad.join("\n  ")))
    }
}

/// Everything to boot one architecture's VMs.
struct Guest {
    arch: &'static Arch,
    root: Root,
    kernel: kernel::Kernel,
    initrd: PathBuf,
    qemu: qemu::Qemu,
    accel: Accel,
}

impl Guest {
    fn prepare(a: &'static Arch, root: Root) -> crate::Result<Guest> {
        let runner = crate::dist::build(a)?.runner;
        let tests = build_tests(a)?;
        let probe = crate::test::build_probe(a)?;
        let dir = cache().join(a.name);
        let rootfs = dir.join("rootfs");
        if !rootfs.join("bin/busybox").exists() {
            crate::rootfs::build(&rootfs, Some(a.name))?;
        }
        let kernel = kernel::get(a)?;
        let initrd = dir.join("initrd.cpio");
        write_initrd(&initrd, &rootfs, [&runner, &tests, &probe], &kernel.modules)?;
        let qemu = qemu::find(a)?;
        let accel = qemu.accel(a, &kernel.image);
        Ok(Guest {
            arch: a,
            root,
            kernel,
            initrd,
            qemu,
            accel,
        })
    }

    fn boot(&self, layout: Layout, args: &Args, expected: usize) -> crate::Result<Outcome> {
        let name = format!("{} {}", self.arch.name, layout.name());
        println!(
            "xtask: booting {name} ({}, timeout {} s)",
            self.accel.name(),
            args.timeout
        );
        let mut cmd = self.qemu.command(self.arch, self.accel, &self.kernel.image);
        cmd.arg("-initrd").arg(&self.initrd);
        cmd.arg("-append").arg(init::cmdline(
            qemu::console(self.arch),
            layout,
            self.root,
            &args.scenarios,
        ));
        let start = Instant::now();
        let run = qemu::Run::start(&mut cmd)?;
        // Each line with the time it came, for the log.
        let mut console: Vec<(Duration, String)> = Vec::new();
        let mut testing = false;
        let mut summary: Option<(usize, usize)> = None;
        let mut panic = false;
        let end = run.finish(Duration::from_secs(args.timeout), |line| {
            console.push((start.elapsed(), line.to_string()));
            if line.contains("Kernel panic") {
                panic = true;
            }
            if let Some(s) = line.strip_prefix(init::SAYS).and_then(parse_summary) {
                summary = Some(s);
                testing = false;
            }
            if args.verbose || testing || line.starts_with(init::SAYS) {
                println!("  [{name}] {line}");
            }
            if line == init::BEGIN {
                testing = true;
            }
            if summary.is_some() {
                // The init powers off next.
                Next::Within(Duration::from_secs(30))
            } else if panic {
                // The rest of the panic message, then QEMU exits (-no-reboot).
                Next::Within(Duration::from_secs(5))
            } else {
                Next::Continue
            }
        })?;
        let wall = start.elapsed();
        let log = cache().join(format!("{}-{}.log", self.arch.name, layout.name()));
        let text: String = console
            .iter()
            .map(|(t, l)| format!("[{:7.2}] {l}\n", t.as_secs_f64()))
            .collect();
        fs::write(&log, text).map_err(|e| format!("write {}: {e}", log.display()))?;

        let (passed, failed) = summary.unwrap_or((0, 0));
        let flaky = console
            .iter()
            .find(|(_, l)| l.starts_with("flaky "))
            .map(|(_, l)| l.clone());
        let error = if panic {
            Some("the kernel panicked".to_string())
        } else if summary.is_none() {
            Some(match &end {
                End::TimedOut => format!("no result after {} s", args.timeout),
                End::Exited(stderr) => format!("QEMU exited with no result: {}", stderr.trim()),
                End::Stopped => "stopped".into(),
            })
        } else if failed > 0 {
            let names: Vec<&str> = console
                .iter()
                .filter_map(|(_, l)| l.strip_prefix("FAILED "))
                .map(|l| l.trim_end_matches(':'))
                .collect();
            Some(format!("{failed} failed: {}", names.join(", ")))
        } else if passed != expected {
            Some(format!("{passed} of {expected} scenarios passed"))
        } else {
            None
        };
        if error.is_some() && !args.verbose && (panic || summary.is_none()) {
            // The console's end shows the hang, or the panic and its trace.
            println!("  [{name}] ... the console's last lines:");
            for (_, l) in &console[console.len().saturating_sub(40)..] {
                println!("  [{name}] {l}");
            }
        }
        println!(
            "xtask: {name}: {passed} passed, {failed} failed in {:.1} s ({}); console in {}",
            wall.as_secs_f64(),
            self.accel.name(),
            log.display()
        );
        Ok(Outcome {
            arch: self.arch.name,
            root: self.root,
            layout,
            accel: self.accel,
            wall,
            passed,
            failed,
            error,
            flaky,
        })
    }
}

/// "N passed, M failed"
fn parse_summary(s: &str) -> Option<(usize, usize)> {
    let (p, f) = s.split_once(", ")?;
    Some((
        p.strip_suffix(" passed")?.parse().ok()?,
        f.strip_suffix(" failed")?.parse().ok()?,
    ))
}

/// The static husk-tests program for `a`.
fn build_tests(a: &Arch) -> crate::Result<PathBuf> {
    println!("xtask: {}: building husk-tests", a.name);
    crate::run(crate::cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "husk-tests",
        "--bin",
        "husk-tests",
        "--target",
        a.triple,
    ]))?;
    let bin = crate::target().join(a.triple).join("release/husk-tests");
    let facts = husk_tests::elf::read(&bin)?;
    if !facts.is_static() || facts.machine != a.machine {
        return Err(format!(
            "{} is not a static {} program: {facts:?}",
            bin.display(),
            a.name
        ));
    }
    Ok(bin)
}

/// The initramfs: the busybox rootfs as the guest's own root, with /init,
/// the modules, and under /husk the runner, husk-tests and a copy of the
/// rootfs for the containers, with husk-probe in it.
fn write_initrd(
    path: &Path,
    rootfs: &Path,
    [runner, tests, probe]: [&Path; 3],
    modules: &[PathBuf],
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
    for m in modules {
        let name = m.file_name().unwrap().to_string_lossy();
        w.copy(&format!("lib/modules/{name}"), 0o644, m)
            .map_err(io)?;
    }
    // Readable by all: one scenario runs the runner as nobody.
    w.dir("husk", 0o755).map_err(io)?;
    w.copy("husk/runner", 0o755, runner).map_err(io)?;
    w.copy("husk/husk-tests", 0o755, tests).map_err(io)?;
    w.tree(rootfs, "husk/rootfs").map_err(io)?;
    w.copy(&format!("husk/rootfs{}", husk_tests::PROBE), 0o755, probe)
        .map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

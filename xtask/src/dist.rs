//! cargo xtask dist: one static runner per architecture, with its shim
//! inside, checked for being static and within its size budget, and
//! smoke-tested (natively, or under qemu-user).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use argh::FromArgs;
use husk_tests::elf;

use crate::arch::{self, Arch};

/// build static runners for x86_64, aarch64, armv7 and riscv64 into target/dist/<arch>/, print their sizes
#[derive(FromArgs)]
#[argh(subcommand, name = "dist")]
pub struct Args {
    /// an architecture (x86_64, aarch64, armv7, riscv64) or target triple; repeatable (default: all four)
    #[argh(option)]
    pub target: Vec<String>,
}

pub const SHIM_BUDGET: u64 = 16 << 10;
/// For x86_64, the runner with the shim inside. 512 KiB until bridge
/// networking (rtnetlink, nf_tables, address pools: 48 KB) was added.
pub const RUNNER_BUDGET: u64 = 576 << 10;

pub struct Built {
    pub arch: &'static Arch,
    pub runner: PathBuf,
    pub shim_bytes: u64,
    pub runner_bytes: u64,
}

pub fn main(args: Args) -> crate::Result<Vec<Built>> {
    let arches: Vec<&Arch> = if args.target.is_empty() {
        arch::ALL.iter().collect()
    } else {
        args.target
            .iter()
            .map(|t| arch::find(t))
            .collect::<Result<_, _>>()?
    };
    let built = arches
        .into_iter()
        .map(build)
        .collect::<Result<Vec<_>, _>>()?;
    println!("\n| arch | target | shim bytes | runner bytes (shim inside) |");
    println!("|---|---|---:|---:|");
    for b in &built {
        println!(
            "| {} | {} | {} | {} |",
            b.arch.name, b.arch.triple, b.shim_bytes, b.runner_bytes
        );
    }
    println!("\nbudgets: shim <= {SHIM_BUDGET} bytes on every architecture; runner <= {RUNNER_BUDGET} bytes on x86_64");
    for b in &built {
        smoke(b)?;
    }
    Ok(built)
}

pub fn build(a: &'static Arch) -> crate::Result<Built> {
    prepare(a)?;
    let work = crate::target().join("dist-build");
    let out = crate::target().join("dist").join(a.name);
    fs::create_dir_all(&out).map_err(|e| format!("mkdir {}: {e}", out.display()))?;

    println!(
        "xtask: {}: building the shim (core rebuilt for size)",
        a.name
    );
    crate::run(
        crate::cargo()
            .args([
                "rustc",
                "--quiet",
                "--release",
                "-p",
                "shim",
                "--bin",
                "husk-shim",
                "--target",
                a.triple,
            ])
            .arg("--target-dir")
            .arg(work.join("shim"))
            // core built without unwind tables, as the shim itself: the
            // prebuilt one brought 1.4 KB of .eh_frame that nothing reads.
            .args([
                "-Z",
                "build-std=core,compiler_builtins",
                "-Z",
                "build-std-features=compiler-builtins-mem",
            ])
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "RUSTFLAGS",
                format!(
                    "-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no \
                     -Zlocation-detail=none {}",
                    a.shim_flags
                ),
            )
            // The shim brings its own _start: no C runtime objects.
            .args(["--", "-C", "link-self-contained=no"]),
    )?;
    let shim = out.join("husk-shim");
    copy(
        &work.join("shim").join(a.triple).join("release/husk-shim"),
        &shim,
    )?;

    println!(
        "xtask: {}: building the runner with the shim inside (std rebuilt for size)",
        a.name
    );
    // No unwind tables: with panics that abort nothing unwinds, and they
    // were 47 KB of the x86_64 runner.
    let mut rustflags = vec![
        "-Zunstable-options",
        "-Cpanic=immediate-abort",
        "-Cforce-unwind-tables=no",
        // Panics abort without a message, so their file:line:column
        // strings were dead weight.
        "-Zlocation-detail=none",
        // Repeated instruction sequences become calls: -10 KB on x86_64,
        // nothing measurable on the start-up path (it is system calls).
        "-Cllvm-args=-enable-machine-outliner=always",
    ];
    rustflags.extend(a.static_rustflags());
    // sha256 in software in its compact form (-10 KB): x86_64 and aarch64
    // still use their SHA instructions where the CPU has them; an import
    // on a CPU without them hashes about a third slower.
    rustflags.push("--cfg=sha2_backend_soft=\"compact\"");
    if a.triple.ends_with("-musl") {
        // rust-lld and the bundled musl (1.2.4+) take packed relative
        // relocations: the static-PIE's 800 relocations in 240 bytes
        // rather than 19 KB, ASLR kept. And identical functions folded
        // into one (generic instances that compile alike): -3 KB.
        rustflags.extend(["-Clink-arg=-zpack-relative-relocs", "-Clink-arg=--icf=all"]);
    }
    crate::run(
        crate::cargo()
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "runner",
                "--target",
                a.triple,
            ])
            .arg("--target-dir")
            .arg(work.join("runner"))
            // std built from rust-src with panics that abort on the spot:
            // its backtrace printer alone is a third of a stock build.
            // optimize_for_size: std's small sorts and string formatting
            // (the runner sorts a few hundred items at most).
            .args([
                "-Z",
                "build-std=std,panic_abort",
                "-Z",
                "build-std-features=optimize_for_size",
            ])
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", rustflags.join(" "))
            // For size, std and the runner's crates too: start-up is
            // system calls (no difference measured), and an image
            // import spends ~30% more CPU in sha256 and inflate than at
            // "s", for 77 KB less.
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z")
            .env("HUSK_EMBED_SHIM", &shim),
    )?;
    let runner = out.join("runner");
    copy(
        &work.join("runner").join(a.triple).join("release/runner"),
        &runner,
    )?;

    let shim_bytes = check_static(a, &shim)?;
    let runner_bytes = check_static(a, &runner)?;
    if shim_bytes > SHIM_BUDGET {
        return Err(format!(
            "{}: the shim is {shim_bytes} bytes, over its budget of {SHIM_BUDGET}",
            a.name
        ));
    }
    if a.name == "x86_64" && runner_bytes > RUNNER_BUDGET {
        return Err(format!(
            "{}: the runner is {runner_bytes} bytes, over its budget of {RUNNER_BUDGET}",
            a.name
        ));
    }
    Ok(Built {
        arch: a,
        runner,
        shim_bytes,
        runner_bytes,
    })
}

/// The rustup target, rust-src for build-std, and the cross linker.
fn prepare(a: &Arch) -> crate::Result {
    // `rustup ... list --installed` lines start with the name.
    let has = |what: &str, name: &str| {
        let out = Command::new("rustup")
            .args([what, "list", "--installed"])
            .output();
        out.is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with(name))
        })
    };
    if !has("target", a.triple) {
        println!("xtask: rustup target add {}", a.triple);
        crate::run(Command::new("rustup").args(["target", "add", a.triple]))?;
    }
    if !has("component", "rust-src") {
        println!("xtask: rustup component add rust-src");
        crate::run(Command::new("rustup").args(["component", "add", "rust-src"]))?;
    }
    if let Some(pkg) = a.linker_package {
        let gcc = format!("{}-gcc", pkg.trim_start_matches("gcc-"));
        if Command::new(&gcc).arg("--version").output().is_err() {
            return Err(format!("{gcc} is missing: apt-get install {pkg}"));
        }
    }
    Ok(())
}

/// Copies beside `to` and renames over it: a runner that is running (a
/// benchmark, a test) keeps its old file, and `to` is never half-written.
fn copy(from: &Path, to: &Path) -> crate::Result {
    let tmp = to.with_extension("new");
    fs::copy(from, &tmp)
        .and_then(|_| fs::rename(&tmp, to))
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// Static (no PT_INTERP, no DT_NEEDED) and for the right machine; its size.
fn check_static(a: &Arch, path: &Path) -> crate::Result<u64> {
    let facts = elf::read(path)?;
    if !facts.is_static() {
        return Err(format!("{} is not static: {facts:?}", path.display()));
    }
    if facts.machine != a.machine {
        return Err(format!(
            "{} is for ELF machine {}, not {} ({})",
            path.display(),
            facts.machine,
            a.machine,
            a.name
        ));
    }
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the runner's --version, --help and a bad flag, under qemu-user
/// when it is foreign.
fn smoke(b: &Built) -> crate::Result {
    let native = arch::native().name == b.arch.name;
    let qemu = format!("qemu-{}-static", b.arch.qemu);
    if !native && Command::new(&qemu).arg("--version").output().is_err() {
        return Err(format!(
            "{qemu} is missing for the {} smoke test: apt-get install qemu-user-static",
            b.arch.name
        ));
    }
    let run = |args: &[&str]| {
        let mut c = if native {
            Command::new(&b.runner)
        } else {
            Command::new(&qemu)
        };
        if !native {
            c.arg(&b.runner);
        }
        c.args(args)
            .output()
            .map_err(|e| format!("run {}: {e}", b.runner.display()))
    };
    let version = run(&["--version"])?;
    let help = run(&["--help"])?;
    let bad = run(&["--frobnicate"])?;
    let stderr = String::from_utf8_lossy(&bad.stderr);
    let ok = version.status.success()
        && String::from_utf8_lossy(&version.stdout).starts_with("runner ")
        && help.status.success()
        && String::from_utf8_lossy(&help.stdout).contains("--rootfs")
        && bad.status.code() == Some(125)
        && stderr.lines().count() == 1
        && stderr.contains("Unrecognized argument: --frobnicate");
    if !ok {
        return Err(format!(
            "{} smoke test failed: --version {:?}, --frobnicate {:?} {stderr:?}",
            b.arch.name, version.status, bad.status
        ));
    }
    println!(
        "smoke {}: --version, --help and a bad flag answer as they should{}",
        b.arch.name,
        if native { "" } else { " (under qemu-user)" }
    );
    Ok(())
}

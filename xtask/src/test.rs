//! cargo xtask test: every test, against one release build.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use argh::FromArgs;

/// run all tests: dist for every architecture (static, size budgets, qemu-user smoke), the unit tests, the container scenarios (as root) against the x86_64 dist runner, bench --quick, then the same scenarios in VMs (vm-test)
#[derive(FromArgs)]
#[argh(subcommand, name = "test")]
pub struct Args {
    /// skip the VM tests (cargo xtask vm-test's default matrix), for a quick local run
    #[argh(switch)]
    no_vm: bool,
    /// skip `cargo xtask bench --quick` (run so that the bench cannot rot; no timing is asserted)
    #[argh(switch)]
    no_bench: bool,
    /// arguments passed on to cargo test (e.g. a test name filter)
    #[argh(positional, greedy)]
    rest: Vec<String>,
}

pub fn main(args: Args) -> crate::Result {
    // A fresh Debian machine lacks the cross linkers, qemu-user and the
    // rustup targets: installed here, as root, so that this one command is
    // all a newcomer runs.
    crate::setup::ensure()?;
    if !args.no_vm {
        println!(
            "xtask: the VM tests' downloads (kept in {})",
            crate::vm::downloads().display()
        );
        crate::vm::fetch_default()?;
    }
    // The scenarios test what ships: this machine's dist runner.
    let built = crate::dist::main(crate::dist::Args { target: Vec::new() })?;
    let native = crate::arch::native().name;
    let runner = built
        .into_iter()
        .find(|b| b.arch.name == native)
        .map(|b| b.runner)
        .ok_or("no native runner built")?;
    // The README promises that a plain `cargo build` works for development;
    // only a link shows that it does (the no_std shim fails there first).
    println!("xtask: cargo build (the development build)");
    let status = crate::cargo()
        .args(["build", "--workspace"])
        .status()
        .map_err(|e| format!("run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed: {status}"));
    }
    let rootfs = crate::target().join("husk-rootfs");
    if !rootfs.join("bin/busybox").exists() {
        crate::rootfs::build(&rootfs, None)?;
    }
    let probe = crate::programs::build_probe(crate::arch::native())?;
    println!("xtask: cargo test --release --workspace");
    let mut child = crate::cargo()
        .args(["test", "--release", "--workspace"])
        .args(&args.rest)
        .env("HUSK_RUNNER", &runner)
        .env("HUSK_ROOTFS", &rootfs)
        .env("HUSK_PROBE", &probe)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run cargo test: {e}"))?;
    // Pass the output through, adding up cargo's per-binary result lines
    // into one closing line for the whole run.
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("wait for cargo test: {e}"))?;
    println!("tests: {passed} passed, {failed} failed");
    if !status.success() {
        return Err(format!("cargo test failed: {status}"));
    }
    if !args.no_bench {
        crate::bench::quick()?;
    }
    if args.no_vm {
        println!("xtask: VM tests skipped (--no-vm)");
        return Ok(());
    }
    let (vm_passed, vm_failed) = crate::vm::run_default()?;
    println!(
        "tests: {} passed, {} failed",
        passed + vm_passed as u32,
        failed + vm_failed as u32
    );
    Ok(())
}

/// The number before `what` in "ok. 25 passed; 0 failed; ...".
fn count(result: &str, what: &str) -> u32 {
    result
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(what.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

//! cargo xtask vm-test: the container scenarios inside real kernels under
//! QEMU: Debian 12's 6.1 and Debian 11's 5.10 on x86_64 (each cgroup
//! layout) and aarch64, and the armv7 and riscv64 runners on their own
//! kernels (`matrix`).
//!
//! For each architecture and kernel (`guest`): Debian's kernel (`kernel`,
//! through apt lists of our own, `apt`), the static runner (`cargo xtask
//! dist`), husk-tests and husk-probe, and a busybox rootfs, packed with a
//! small init (`init`) into a cpio initramfs (`cpio`). Each VM boots under
//! QEMU (`qemu`: KVM when it works, else TCG), a few at a time; the init
//! mounts the layout the kernel command line names, runs husk-tests, and
//! prints one line "vm-test: N passed, M failed", which decides (`boot`).
//! What is downloaded (apt lists, kernels, busybox, CNI plugins, QEMU) is
//! kept in `downloads()`, shared by every checkout on the machine; what is
//! built from a checkout (rootfs, initramfs) and the consoles' logs, under
//! target/vm.

mod apt;
mod boot;
mod cpio;
mod guest;
mod init;
mod kernel;
mod matrix;
mod modules;
mod plugins;
mod qemu;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argh::FromArgs;

use boot::Outcome;
use guest::{Builds, Guest};
use matrix::Layout;

/// run the container scenarios in VMs: Debian's kernels under QEMU with cgroup v1, v2 or hybrid (default: x86_64 6.1 with each, 5.10 with v1 and hybrid; aarch64 6.1 and 5.10, armv7 6.1 and riscv64 6.12 with v2)
#[derive(FromArgs)]
#[argh(subcommand, name = "vm-test")]
pub struct Args {
    /// x86_64, aarch64, armv7 or riscv64 (default: all four)
    #[argh(option)]
    arch: Option<String>,
    /// the kernel series: 6.1 (Debian 12), 5.10 (Debian 11), 6.12 (Debian
    /// 13, riscv64's) or all (default: all)
    #[argh(option)]
    kernel: Option<String>,
    /// v1, v2, hybrid or all (default: the matrix's: all on x86_64 6.1, v1
    /// and hybrid on x86_64 5.10, v2 elsewhere)
    #[argh(option)]
    cgroups: Option<String>,
    /// the guest's root: tmpfs (switched to, as a disk-booted host's) or
    /// initramfs (stayed on, as a board's) (default: tmpfs on x86_64,
    /// initramfs on the others)
    #[argh(option)]
    root: Option<String>,
    /// how many VMs run at once (default 2)
    #[argh(option, short = 'j', default = "2")]
    jobs: usize,
    /// seconds each VM may take (default 900: armv7's guest, the slowest
    /// under TCG, takes about 520)
    #[argh(option, default = "900")]
    timeout: u64,
    /// show the whole serial console: kernel, init and tests
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// scenarios to run, each as often as named (default: all, once)
    #[argh(positional)]
    scenarios: Vec<String>,
}

pub fn main(args: Args) -> crate::Result {
    run(&args).map(drop)
}

/// The default matrix, for `cargo xtask test`: how many tests passed and
/// failed over all the VMs.
pub fn run_default() -> crate::Result<(usize, usize)> {
    run(&Args {
        arch: None,
        kernel: None,
        cgroups: None,
        root: None,
        jobs: 2,
        timeout: 900,
        verbose: false,
        scenarios: Vec::new(),
    })
}

/// Where what is built from this checkout, and the logs, are kept.
fn cache() -> PathBuf {
    crate::target().join("vm")
}

/// Where downloads are kept: $HUSK_VM_CACHE, else $XDG_CACHE_HOME/husk/vm,
/// else ~/.cache/husk/vm. They are the same for every checkout (Debian's
/// packages by name and version), so a worktree, a fresh clone or CI on a
/// machine that has them fetches nothing: 200-700 MB and the mirror's
/// moods, once per machine instead of once per checkout.
pub fn downloads() -> PathBuf {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HUSK_VM_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("husk/vm")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/husk/vm")))
        .unwrap_or_else(|| cache().join("downloads"))
}

/// `downloads()`, locked against another checkout's run fetching into it
/// at the same time (until the file is dropped).
fn lock_downloads() -> crate::Result<std::fs::File> {
    let dir = downloads();
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let path = dir.join("lock");
    let f = std::fs::File::create(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
    f.lock()
        .map_err(|e| format!("flock {}: {e}", path.display()))?;
    Ok(f)
}

/// Everything the default matrix downloads, fetched now: `cargo xtask
/// test` does it before the host's tests, so that a mirror that goes away
/// during them (CI's did, twice) costs nothing, and one that is not there
/// at all fails the run at once, not after the host's tests.
pub fn fetch_default() -> crate::Result {
    let _lock = lock_downloads()?;
    for c in matrix::choose(None, None, None, None)? {
        guest::download(&c).map(drop).map_err(|e| {
            format!(
                "the VM tests' downloads for {} {}: {e}",
                c.arch.name, c.row.kernel.series
            )
        })?;
    }
    Ok(())
}

fn run(args: &Args) -> crate::Result<(usize, usize)> {
    let choices = matrix::choose(
        args.arch.as_deref(),
        args.kernel.as_deref(),
        args.cgroups.as_deref(),
        args.root.as_deref(),
    )?;
    for s in &args.scenarios {
        if !husk_tests::ALL.iter().any(|(n, _)| n == s) {
            return Err(format!("no scenario {s}"));
        }
    }
    // The scenarios reach the init on the kernel's command line, which
    // armv7 and riscv64 cut at 1024 bytes (x86_64 and arm64 at 2048): a
    // cut list boots a guest that never says a word.
    let words: usize = args.scenarios.iter().map(|s| s.len() + 1).sum();
    if words > SCENARIO_BYTES {
        return Err(format!(
            "{} scenarios take {words} bytes of the kernel's command line, more than the {SCENARIO_BYTES} it leaves them: name fewer",
            args.scenarios.len()
        ));
    }
    if args.jobs == 0 {
        return Err("--jobs 0: at least one VM must run at a time".into());
    }
    let start = Instant::now();
    // Builds and downloads, one guest at a time. A guest that cannot be
    // made fails its VMs, and the others still run.
    let mut builds = Builds::default();
    let lock = lock_downloads()?;
    let mut guests: Vec<Guest> = Vec::new();
    // Each VM's outcome keyed by its place in the matrix: (row, layout).
    let mut outcomes: Vec<((usize, usize), Outcome)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    for (row, c) in choices.iter().enumerate() {
        let ready = Instant::now();
        match Guest::prepare(c, &mut builds) {
            Ok(g) => {
                println!(
                    "xtask: {} {} guest ready in {:.1} s: kernel {} ({}), {}, {} root",
                    g.arch.name,
                    g.kernel.series(),
                    ready.elapsed().as_secs_f64(),
                    g.kernel.version,
                    g.kernel.release,
                    g.accel.name(),
                    g.root.name()
                );
                jobs.extend(c.layouts.iter().enumerate().map(|(i, &layout)| Job {
                    key: (row, i),
                    guest: guests.len(),
                    layout,
                }));
                guests.push(g);
            }
            Err(e) => {
                println!(
                    "xtask: {} {}: the guest could not be made: {e}",
                    c.arch.name, c.row.kernel.series
                );
                outcomes.extend(
                    c.layouts
                        .iter()
                        .enumerate()
                        .map(|(i, &layout)| ((row, i), Outcome::unmade(c, layout, &e))),
                );
            }
        }
    }
    drop(lock);
    let prepared = start.elapsed();

    // husk-tests runs each name given, as often as given.
    let expected = if args.scenarios.is_empty() {
        husk_tests::ALL.len()
    } else {
        args.scenarios.len()
    };
    let run = boot::Run {
        timeout: Duration::from_secs(args.timeout),
        verbose: args.verbose,
        scenarios: &args.scenarios,
        expected,
    };
    let booting = Instant::now();
    let (booted, at_once) = (jobs.len(), args.jobs.min(jobs.len()).max(1));
    outcomes.extend(in_parallel(&guests, jobs, at_once, &run));
    let elapsed = booting.elapsed();
    outcomes.sort_by_key(|(key, _)| *key);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();

    report(&outcomes);
    let vm_time: Duration = outcomes.iter().map(|o| o.wall).sum();
    println!(
        "vm-test: {booted} VM{} in {:.0} s, {at_once} at a time ({:.0} s of VM time), after {:.0} s of builds and downloads",
        if booted == 1 { "" } else { "s" },
        elapsed.as_secs_f64(),
        vm_time.as_secs_f64(),
        prepared.as_secs_f64()
    );
    let bad: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.name)))
        .collect();
    let passed = outcomes.iter().map(|o| o.passed).sum();
    let failed = outcomes.iter().map(|o| o.failed).sum();
    println!("vm-test: {passed} passed, {failed} failed");
    if bad.is_empty() {
        println!("vm-test: every VM passed every test");
        Ok((passed, failed))
    } else {
        Err(format!("vm-test failed:\n  {}", bad.join("\n  ")))
    }
}

/// One VM to boot: a guest with a layout.
struct Job {
    /// Its place in the matrix: (row, layout).
    key: (usize, usize),
    guest: usize,
    layout: Layout,
}

/// Boots each of `jobs`, `at_once` at a time, the slowest first (see
/// `cost`); each outcome with its job's key.
fn in_parallel(
    guests: &[Guest],
    mut jobs: Vec<Job>,
    at_once: usize,
    run: &boot::Run,
) -> Vec<((usize, usize), Outcome)> {
    // Stable: the matrix's order among equals.
    jobs.sort_by_key(|j| std::cmp::Reverse(cost(&guests[j.guest])));
    let queue = Mutex::new(VecDeque::from(jobs));
    let done = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..at_once {
            s.spawn(|| loop {
                let Some(job) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let o = boot::boot(&guests[job.guest], job.layout, run);
                done.lock().unwrap().push((job.key, o));
            });
        }
    });
    done.into_inner().unwrap()
}

/// How slow a guest's VMs are, roughly, to start the slowest first so that
/// none is left running alone at the end: emulated foreign CPUs are slower
/// than an emulated x86_64, riscv64's most.
fn cost(g: &Guest) -> u32 {
    match g.arch.name {
        "riscv64" => 4,
        "armv7" => 3,
        "aarch64" => 2,
        _ => 1,
    }
}

/// What the kernel's command line leaves the scenario list: 1024 bytes on
/// armv7 and riscv64, less the rest of the line (about 110).
const SCENARIO_BYTES: usize = 880;

/// The table of every VM, the VMs booted twice and the flaky scenarios.
fn report(outcomes: &[Outcome]) {
    println!("\n| arch | kernel | root | cgroups | accel | wall | passed | failed |");
    println!("|---|---|---|---|---|---:|---:|---:|");
    for o in outcomes {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} s | {} | {} |",
            o.arch,
            o.kernel,
            o.root.name(),
            o.layout.name(),
            o.accel.map_or("-", |a| a.name()),
            o.wall.as_secs_f64(),
            o.passed,
            o.failed
        );
    }
    for o in outcomes {
        for note in [&o.rebooted, &o.flaky].into_iter().flatten() {
            println!("vm-test: {}: {note}", o.name);
        }
    }
}

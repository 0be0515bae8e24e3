//! cargo xtask bench: husk's start-up time against the kernel floor,
//! bubblewrap, runc and crun, measured side by side in one run; the peak
//! memory of the runner and the shim; binary sizes next to the peers';
//! density. A markdown report on stdout, JSON in target/bench/bench.json.

mod density;
mod json;
mod memory;
mod report;
mod setup;
mod startup;
mod syscalls;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argh::FromArgs;

use report::{Machine, Report, Size};
use setup::{Layout, Setup};
use startup::{Contender, Program};

/// measure start-up overhead against the kernel floor, bubblewrap, runc and crun (interleaved), peak memory, binary sizes and density; markdown on stdout, JSON in target/bench/bench.json
#[derive(FromArgs)]
#[argh(subcommand, name = "bench")]
pub struct Args {
    /// a short run (under a minute, for CI): few rounds, small density
    #[argh(switch)]
    quick: bool,
    /// rounds of the start-up comparison, each running every contender once (default 500; 20 with --quick)
    #[argh(option)]
    rounds: Option<u32>,
    /// containers in a density run; repeatable (default 100 and 500; 20 with --quick; 0 skips density)
    #[argh(option)]
    density: Vec<usize>,
    /// do not apt-get install missing peers
    #[argh(switch)]
    no_install: bool,
    /// another runner to time beside this tree's, with default flags (e.g. a build of another commit); repeatable
    #[argh(option)]
    compare: Vec<PathBuf>,
}

/// Milliseconds.
#[derive(Clone, Copy)]
pub struct Stats {
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub min: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        // Nearest rank.
        let p95 = s[((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1];
        Some(Stats {
            mean: s.iter().sum::<f64>() / n as f64,
            median,
            p95,
            min: s[0],
        })
    }
}

/// `bench --quick`, for `cargo xtask test`: CI runs it so that the command
/// cannot rot, and asserts no timings.
pub fn quick() -> crate::Result {
    main(Args {
        quick: true,
        rounds: None,
        density: Vec::new(),
        no_install: false,
        compare: Vec::new(),
    })
}

pub fn main(args: Args) -> crate::Result {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        return Err("bench starts containers: run it as root".into());
    }
    let started = Instant::now();
    let rounds = args.rounds.unwrap_or(if args.quick { 20 } else { 500 });
    let warmup = if args.quick { 2 } else { 10 };
    let sizes: Vec<usize> = match (&args.density[..], args.quick) {
        ([], true) => vec![20],
        ([], false) => vec![100, 500],
        (given, _) => given.iter().copied().filter(|&n| n > 0).collect(),
    };

    let setup = setup::prepare(!args.no_install)?;
    fs::create_dir_all(&setup.dir).map_err(|e| format!("mkdir {}: {e}", setup.dir.display()))?;
    // Orphans of any runtime come to us, so none can go unnoticed.
    // SAFETY: a plain prctl.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    // `--net bridge` makes a bridge and nftables rules: in a network
    // namespace of the bench's own (every contender's), never on the
    // host's network. Setup above may have needed the host's.
    // SAFETY: unshare of this thread's network namespace only.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    let before = Traces::take();
    let cpu_before = CpuUse::now();
    let measuring = Instant::now();

    // The contenders, each checked by one run; a peer that cannot run here
    // is reported, not fatal.
    let mut notes = Vec::new();
    let mut cannot_run = Vec::new();
    let crun = crun(&setup, &mut notes, &mut cannot_run);
    let crun_fd = match &crun {
        Crun::InMountNs(ns) => Some(ns.as_raw_fd()),
        _ => None,
    };
    let images = setup.dir.join("images");
    let imported = Command::new(&setup.runner)
        .args(["import", "--store"])
        .arg(&images)
        .arg(&setup.rootfs)
        .arg("busybox")
        .output()
        .map_err(|e| format!("{}: {e}", setup.runner.display()))?;
    if !imported.status.success() {
        return Err(format!(
            "runner import of the bench's rootfs: {}",
            String::from_utf8_lossy(&imported.stderr).trim()
        ));
    }
    let held = Held::start(&setup)?;
    let mut contenders = vec![
        Contender::floor(&setup, false),
        Contender::floor(&setup, true),
        Contender::husk(&setup, &[], &Program::True),
        Contender::husk(&setup, &["--net", "host"], &Program::True),
        // The network comes up with the container and goes with it, as
        // for a lone container: bridge, veth, addresses, nftables.
        Contender::husk(&setup, &["--net", "bridge"], &Program::True),
        Contender::husk(
            &setup,
            &["--net", "bridge", "-p", "8080:80"],
            &Program::True,
        ),
        // A network already up: another container holds it (`held`).
        Contender::husk(&setup, &["--net", HELD], &Program::True),
        Contender::husk(&setup, &["--memory", "64M"], &Program::True),
        Contender::husk(
            &setup,
            &["--net", "host", "--memory", "64M"],
            &Program::True,
        ),
        // An overlay root: the layers of an image, and the upper and work
        // directories made (and removed) in the container's entry.
        Contender::husk_on(
            &setup,
            &["--layer".into(), setup.rootfs.clone().into()],
            "--layer R",
        ),
        Contender::husk_on(
            &setup,
            &[
                "--store".into(),
                images.clone().into(),
                "--image".into(),
                "busybox".into(),
            ],
            "--image busybox",
        ),
    ];
    for runner in &args.compare {
        contenders.push(Contender::other_husk(&setup, runner));
    }
    let husks = contenders.len();
    contenders.extend(Contender::bwrap(&setup, &Program::True));
    contenders.extend(Contender::oci(&setup, "runc", &Program::True, None));
    if !matches!(crun, Crun::No) {
        contenders.extend(Contender::oci(&setup, "crun", &Program::True, crun_fd));
    }
    // The OCI lifecycle as containerd and podman drive it: create, start,
    // delete, one command each, on the same bundle.
    let oci_store = setup.dir.join("oci-store");
    contenders.push(Contender::lifecycle(
        &setup,
        "husk",
        &setup.runner,
        &["--root".into(), oci_store.into()],
        None,
    ));
    for (peer, fd) in [("runc", None), ("crun", crun_fd)] {
        if peer == "crun" && matches!(crun, Crun::No) {
            continue;
        }
        if let Some(path) = setup.peer(peer) {
            let name = if fd.is_some() {
                format!("{peer} †")
            } else {
                peer.to_string()
            };
            contenders.push(Contender::lifecycle(&setup, &name, path, &[], fd));
        }
    }
    for (peer, binary) in [("bubblewrap", "bwrap"), ("runc", "runc"), ("crun", "crun")] {
        if setup.peer(binary).is_none() {
            notes.push(format!("{peer} is not installed: not measured"));
        }
    }
    let mut runnable = Vec::new();
    for (i, c) in contenders.into_iter().enumerate() {
        match c.probe() {
            None => runnable.push(c),
            Some(why) if i < husks => return Err(format!("{} does not run: {why}", c.name)),
            Some(why) => cannot_run.push((c.name, c.shown, why)),
        }
    }
    println!(
        "xtask: bench: start-up, {rounds} rounds of {} contenders, interleaved",
        runnable.len()
    );
    let measured = startup::measure(&runnable, rounds, warmup);
    drop(held);
    let others = cpu_before.others_since();
    reap_orphans();

    println!("xtask: bench: peak memory of the runner and the shim (ptrace)");
    let peaks = [&[][..], &["--memory", "64M"][..]]
        .iter()
        .map(|flags| {
            let shown: String = flags.iter().map(|f| format!("{f} ")).collect();
            (shown, memory::peaks(&setup.runner, &setup.rootfs, flags))
        })
        .collect();

    println!("xtask: bench: seccomp, ns per syscall (husk-probe loop)");
    let seccomp = syscalls::measure(&setup, args.quick);
    reap_orphans();

    let mut density = Vec::new();
    if !sizes.is_empty() {
        let log_path = setup.dir.join("density.log");
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut runtimes = vec![Contender::husk(&setup, &[], &Program::Sleep)];
        for c in [
            Contender::bwrap(&setup, &Program::Sleep),
            Contender::oci(&setup, "runc", &Program::Sleep, None),
            Contender::oci(&setup, "crun", &Program::Sleep, crun_fd),
        ]
        .into_iter()
        .flatten()
        {
            if runnable.iter().any(|r| r.name == c.name) {
                runtimes.push(c);
            }
        }
        for &n in &sizes {
            for c in &runtimes {
                println!("xtask: bench: density, {n} × {}", c.name);
                density.push(density::run(c, n, &log));
                reap_orphans();
                // Let the kernel finish tearing down the last batch's
                // namespaces before the next starts.
                std::thread::sleep(Duration::from_millis(500));
                if c.name == "husk" {
                    println!("xtask: bench: density, {n} × {}", density::detached::NAME);
                    density.push(density::run_detached(&setup, n, &log));
                    reap_orphans();
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    if others > 0.1 {
        notes.push(format!(
            "Other processes used {:.0}% of the machine's CPU time during the start-up rounds: \
             absolute times are inflated; the interleaving spreads that over all contenders \
             alike.",
            others * 100.0
        ));
    }
    let leftovers = before.compare();
    let report = Report {
        machine: machine(&setup, others),
        quick: args.quick,
        rounds,
        startup: runnable.iter().zip(measured).collect(),
        cannot_run,
        notes,
        peaks,
        seccomp,
        sizes: sizes_of(&setup),
        density,
        leftovers,
        seconds: measuring.elapsed().as_secs_f64(),
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    for (name, text) in [("bench.md", &markdown), ("bench.json", &report.json())] {
        let path = setup.dir.join(name);
        fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    println!(
        "xtask: bench: measured in {:.0} s ({:.0} s with the builds); {} and {}",
        report.seconds,
        started.elapsed().as_secs_f64(),
        setup.dir.join("bench.md").display(),
        setup.dir.join("bench.json").display()
    );
    if !report.leftovers.is_empty() {
        return Err("the bench left things behind (see above)".into());
    }
    Ok(())
}

enum Crun {
    /// Not installed, or cannot run at all.
    No,
    AsInstalled,
    /// In this mount namespace.
    InMountNs(File),
}

/// crun as installed, checked by one run; on a hybrid host where it
/// refuses, a mount namespace without the cgroup2 mount to run it in.
fn crun(
    setup: &Setup,
    notes: &mut Vec<String>,
    cannot_run: &mut Vec<(String, String, String)>,
) -> Crun {
    let Some(plain) = Contender::oci(setup, "crun", &Program::True, None) else {
        return Crun::No;
    };
    if setup.layout != Layout::Hybrid {
        return Crun::AsInstalled;
    }
    let Some(why) = plain.probe() else {
        return Crun::AsInstalled;
    };
    cannot_run.push((plain.name.clone(), plain.shown.clone(), why));
    match setup::mount_ns_without_cgroup2() {
        Ok(ns) => {
            notes.push(
                "crun refuses hybrid cgroups, this host's layout. crun † is the same crun, run \
                 in a mount namespace without the cgroup2 mount (entered with one setns before \
                 exec), where the host looks like cgroup v1: a VM would time a different \
                 machine."
                    .into(),
            );
            Crun::InMountNs(ns)
        }
        Err(e) => {
            notes.push(format!("crun: {e}"));
            Crun::No
        }
    }
}

/// What the bench could leave behind, to compare before and after.
struct Traces {
    mounts: Vec<String>,
    cgroups: BTreeSet<PathBuf>,
    store: BTreeSet<String>,
}

impl Traces {
    fn take() -> Traces {
        Traces {
            mounts: husk_tests::host::mounts(),
            cgroups: husk_tests::host::husk_cgroups(),
            store: husk_tests::host::store_entries(Path::new(husk_tests::host::STORE)),
        }
    }

    /// What is there now that was not before. Another user's containers
    /// may come and go meanwhile: only cgroups named after our processes
    /// count, and only if they are still there a few seconds on.
    fn compare(&self) -> Vec<String> {
        let mut left = Vec::new();
        reap_orphans();
        let added: Vec<_> = husk_tests::host::mounts()
            .into_iter()
            .filter(|m| !self.mounts.contains(m))
            .collect();
        if !added.is_empty() {
            left.push(format!("mounts: {added:?}"));
        }
        let mut cgroups: Vec<PathBuf> = Vec::new();
        for _ in 0..50 {
            cgroups = husk_tests::host::husk_cgroups()
                .difference(&self.cgroups)
                .filter(|c| ours(c))
                .cloned()
                .collect();
            if cgroups.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !cgroups.is_empty() {
            left.push(format!("cgroups: {cgroups:?}"));
        }
        let store = husk_tests::host::store_entries(Path::new(husk_tests::host::STORE));
        let entries: Vec<_> = store.difference(&self.store).collect();
        if !entries.is_empty() {
            left.push(format!("husk state store entries: {entries:?}"));
        }
        for dir in ["/run/runc", "/run/crun"] {
            let ours: Vec<String> = fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("husk-bench-"))
                .collect();
            if !ours.is_empty() {
                left.push(format!("container state in {dir}: {ours:?}"));
            }
        }
        // We are a subreaper: a runtime's stray process would be our child.
        let me = std::process::id();
        let strays: Vec<String> = fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| {
                let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                format!("{p} ({})", comm.trim())
            })
            .collect();
        if !strays.is_empty() {
            left.push(format!("processes: {strays:?}"));
        }
        left
    }
}

/// CPU time: the whole machine's busy time (/proc/stat) and ours (this
/// process and every child it reaped), in seconds.
struct CpuUse {
    at: Instant,
    machine: f64,
    ours: f64,
}

impl CpuUse {
    fn now() -> CpuUse {
        let ticks: Vec<f64> = fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: all but idle and iowait.
        let busy: f64 = ticks
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, t)| t)
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let rusage = |who| {
            // SAFETY: getrusage fills the struct.
            let mut r: libc::rusage = unsafe { std::mem::zeroed() };
            unsafe { libc::getrusage(who, &mut r) };
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            secs(r.ru_utime) + secs(r.ru_stime)
        };
        CpuUse {
            at: Instant::now(),
            machine: busy / hz,
            ours: rusage(libc::RUSAGE_SELF) + rusage(libc::RUSAGE_CHILDREN),
        }
    }

    /// The share of the machine's CPU time that others used since.
    fn others_since(&self) -> f64 {
        let now = CpuUse::now();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let capacity = now.at.duration_since(self.at).as_secs_f64() * cpus;
        let others = (now.machine - self.machine) - (now.ours - self.ours);
        (others / capacity).clamp(0.0, 1.0)
    }
}

fn machine(setup: &Setup, others_cpu: f64) -> Machine {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let first_line = |cmd: &mut Command| {
        cmd.output()
            .map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default()
    };
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let mut versions = vec![(
        "husk".to_string(),
        first_line(Command::new(&setup.runner).arg("--version")),
    )];
    for (name, binary) in [("runc", "runc"), ("crun", "crun"), ("bubblewrap", "bwrap")] {
        if let Some(p) = setup.peer(binary) {
            versions.push((name.into(), first_line(Command::new(p).arg("--version"))));
        }
    }
    Machine {
        date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        cpu,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: mem_kib / (1 << 20) as f64,
        cgroups: setup.layout.describe().into(),
        others_cpu,
        versions,
    }
}

fn sizes_of(setup: &Setup) -> Vec<Size> {
    let mut files: Vec<(String, PathBuf)> = vec![
        ("husk runner, shim inside".into(), setup.runner.clone()),
        ("husk shim".into(), setup.shim.clone()),
        ("husk-floor".into(), setup.floor.clone()),
    ];
    files.extend(
        setup
            .peers
            .iter()
            .map(|(binary, path)| (binary.to_string(), path.clone())),
    );
    files
        .into_iter()
        .filter_map(|(name, path)| {
            let bytes = fs::metadata(&path).ok()?.len();
            Some(Size {
                name,
                path: shown_path(&path),
                bytes,
                is_static: husk_tests::elf::read(&path).ok().map(|f| f.is_static()),
            })
        })
        .collect()
}

/// Workspace paths relative to the workspace; others as they are.
fn shown_path(p: &Path) -> String {
    p.strip_prefix(crate::root())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// The network of the `--net held` contender, and its container's name.
const HELD: &str = "husk-bench-held";

/// The container that keeps the `--net held` network up for the whole
/// run; it and the network are removed when dropped.
struct Held<'a>(&'a Setup);

impl<'a> Held<'a> {
    fn start(setup: &'a Setup) -> Result<Held<'a>, String> {
        let runner = |args: &[&str]| {
            Command::new(&setup.runner)
                .args(args)
                .output()
                .map_err(|e| format!("{}: {e}", setup.runner.display()))
        };
        let held = Held(setup);
        // What a bench killed half-way left.
        held.remove();
        let made = runner(&["network", "create", HELD])?;
        let rootfs = setup.rootfs.to_string_lossy().into_owned();
        let run = runner(&[
            "run",
            "-d",
            "--name",
            HELD,
            "--net",
            HELD,
            "--rootfs",
            &rootfs,
            "--",
            "/bin/sleep",
            "1000000",
        ])?;
        if !made.status.success() || !run.status.success() {
            return Err(format!(
                "the held network's container: {}{}",
                String::from_utf8_lossy(&made.stderr),
                String::from_utf8_lossy(&run.stderr)
            ));
        }
        Ok(held)
    }
}

impl Held<'_> {
    fn remove(&self) {
        for args in [&["rm", "-f", HELD][..], &["network", "rm", HELD]] {
            let _ = Command::new(&self.0.runner).args(args).output();
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A container id for runc or crun, unique to each run: the leftover check
/// recognises ours by the prefix.
fn container_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("husk-bench-{}-{n}", std::process::id())
}

/// Every process the bench started: a runner's cgroup is named after its
/// pid, so the leftover check can tell ours from another user's.
static LAUNCHED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn launched(pid: u32) {
    LAUNCHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid);
}

/// The bench's own cgroups, and husk's (husk-ID, a random ID of 16 hex
/// digits for an unnamed container) that appeared while it ran.
fn ours(cgroup: &Path) -> bool {
    let name = cgroup.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with("husk-bench-")
        || name
            .strip_prefix("husk-")
            .is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reaps the processes that were orphaned to us (bubblewrap leaves one per
/// run) and have ended. Only when none of our own children is pending.
fn reap_orphans() {
    // SAFETY: waitpid with a null status.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) } > 0 {}
}

/// Waits for `pid`: its wait status and resource usage.
fn wait4(pid: i32) -> std::io::Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it and the status.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: as above.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) } == pid {
            return Ok((status, rusage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// "exit status N" or "killed by signal N".
fn describe_status(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

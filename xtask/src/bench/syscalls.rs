//! What the seccomp filter costs per syscall: `husk-probe loop` of a cheap
//! call inside a container, with husk's filter, without a filter
//! (`--seccomp unconfined`), and under runc with the same policy
//! (`runner::seccomp::oci_profile`, compiled by libseccomp) and without one.
//!
//! Two calls: `getppid`, which the filter allows whatever the arguments, so
//! the kernel's seccomp cache answers it without running the filter; and
//! `personality(0xffffffff)`, which an argument rule decides, so the filter
//! runs on every call. Each contender's filters are read from the running
//! program (PTRACE_SECCOMP_GET_FILTER) for their instruction counts.

use std::fmt::Write;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::json;
use super::setup::Setup;

const SYSCALLS: [&str; 2] = ["getppid", "personality"];

/// Makes the command for `husk-probe loop SYSCALL CALLS`.
type Loop = Box<dyn Fn(&str, u64) -> Command>;

/// One way of running the loop.
struct Contender {
    name: &'static str,
    shown: &'static str,
    command: Loop,
}

pub struct Row {
    pub name: String,
    pub shown: String,
    /// Instructions of each filter the loop ran under, or why unknown.
    pub filters: Result<Vec<u32>, String>,
    /// Nanoseconds per call, median over the rounds, per SYSCALLS entry.
    pub ns: Vec<Option<f64>>,
    pub failure: Option<String>,
}

pub struct Cost {
    pub calls: u64,
    pub rounds: u32,
    /// Instructions of husk's filter for Docker's default capabilities, as
    /// the runner compiles it.
    pub husk_insns: usize,
    pub rows: Vec<Row>,
}

pub fn measure(setup: &Setup, quick: bool) -> crate::Result<Cost> {
    let (calls, rounds) = if quick { (100_000, 3) } else { (1_000_000, 7) };
    install(&setup.probe, &setup.rootfs.join("bin/husk-probe"))?;
    let mut contenders = vec![
        husk(setup, "husk", "runner --rootfs R -- husk-probe loop …", &[]),
        husk(
            setup,
            "husk --seccomp unconfined",
            "runner --rootfs R --seccomp unconfined -- husk-probe loop …",
            &["--seccomp", "unconfined"],
        ),
    ];
    if let Some(runc) = setup.peer("runc") {
        let profile = runner::seccomp::oci_profile(runner::caps::DEFAULT);
        contenders.push(oci(setup, runc, "runc", Some(profile))?);
        contenders.push(oci(setup, runc, "runc, no seccomp", None)?);
    }
    let mut samples = vec![vec![Vec::new(); SYSCALLS.len()]; contenders.len()];
    let mut failures: Vec<Option<String>> = vec![None; contenders.len()];
    for round in 0..rounds {
        // A different order each round, so that a busy moment of the
        // machine does not fall on one contender only.
        let order: Vec<usize> = (0..contenders.len())
            .map(|i| (i + round as usize) % contenders.len())
            .collect();
        for i in order {
            for (s, syscall) in SYSCALLS.iter().enumerate() {
                match run_loop((contenders[i].command)(syscall, calls)) {
                    Ok(ns) => samples[i][s].push(ns),
                    Err(e) => failures[i] = Some(e),
                }
            }
        }
    }
    let rows = contenders
        .iter()
        .zip(samples)
        .zip(failures)
        .map(|((c, samples), failure)| Row {
            name: c.name.into(),
            shown: c.shown.into(),
            filters: filters_of(&c.command),
            ns: samples
                .iter()
                .map(|s| super::Stats::of(s).map(|s| s.median))
                .collect(),
            failure,
        })
        .collect();
    Ok(Cost {
        calls,
        rounds,
        husk_insns: runner::seccomp::filter(runner::caps::DEFAULT)?.len() / 8,
        rows,
    })
}

/// Copies the probe into the rootfs, unless it is there already.
fn install(probe: &Path, dest: &Path) -> crate::Result {
    if fs::read(probe).ok() == fs::read(dest).ok() {
        return Ok(());
    }
    let tmp = dest.with_extension("new");
    fs::copy(probe, &tmp)
        .and_then(|_| fs::rename(&tmp, dest))
        .map_err(|e| format!("install {} as {}: {e}", probe.display(), dest.display()))
}

fn husk(setup: &Setup, name: &'static str, shown: &'static str, flags: &[&str]) -> Contender {
    let (runner, rootfs) = (setup.runner.clone(), setup.rootfs.clone());
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    Contender {
        name,
        shown,
        command: Box::new(move |syscall, calls| {
            let mut c = Command::new(&runner);
            c.arg("--rootfs").arg(&rootfs).args(&flags);
            c.args(["--", "/bin/husk-probe", "loop", syscall, &calls.to_string()]);
            c
        }),
    }
}

/// `runc run` of a bundle per syscall and call count, written on demand.
fn oci(
    setup: &Setup,
    runc: &Path,
    name: &'static str,
    seccomp: Option<String>,
) -> crate::Result<Contender> {
    let shown = if seccomp.is_some() {
        "runc run --bundle B ID, linux.seccomp: husk's policy as OCI"
    } else {
        "runc run --bundle B ID"
    };
    let (runc, rootfs, dir) = (runc.to_path_buf(), setup.rootfs.clone(), setup.dir.clone());
    let tag = if seccomp.is_some() { "seccomp" } else { "none" };
    Ok(Contender {
        name,
        shown,
        command: Box::new(move |syscall, calls| {
            let bundle = dir.join(format!("bundle-loop-{syscall}-{calls}-{tag}"));
            let args = ["/bin/husk-probe", "loop", syscall, &calls.to_string()];
            // A bundle that cannot be written makes runc fail, which the
            // table reports.
            if let Err(e) = super::setup::write_bundle(&bundle, &rootfs, &args, seccomp.as_deref())
            {
                println!("xtask: bench: {e}");
            }
            let mut c = Command::new(&runc);
            c.args(["run", "--bundle"])
                .arg(&bundle)
                .arg(super::container_id());
            c
        }),
    })
}

/// Runs one loop to its end: the probe's nanoseconds per call.
fn run_loop(cmd: Command) -> Result<f64, String> {
    let child = spawn(cmd)?;
    let out = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ns = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_call="))
        .and_then(|v| v.parse().ok());
    match ns {
        Some(ns) if out.status.success() => Ok(ns),
        _ => Err(format!(
            "{}: {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn spawn(mut cmd: Command) -> Result<Child, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| format!("run {:?}: {e}", cmd.get_program()))?;
    super::launched(child.id());
    Ok(child)
}

/// The instruction count of each filter the probe runs under, read from a
/// loop long enough to catch, which is then killed.
fn filters_of(command: &dyn Fn(&str, u64) -> Command) -> Result<Vec<u32>, String> {
    const FOREVER: u64 = 1 << 40;
    let mut child = spawn(command("getppid", FOREVER))?;
    let result = find_probe(child.id(), FOREVER).and_then(|pid| {
        let filters = read_filters(pid);
        // SAFETY: the probe we found, a descendant of our child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        filters
    });
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}

/// The pid of the `husk-probe loop getppid CALLS` below `ancestor`.
fn find_probe(ancestor: u32, calls: u64) -> Result<i32, String> {
    let want = format!("/bin/husk-probe\0loop\0getppid\0{calls}\0");
    let parent = |pid: &str| -> Option<String> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| Some(l.strip_prefix("PPid:")?.trim().to_string()))
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if fs::read(entry.path().join("cmdline")).ok().as_deref() != Some(want.as_bytes()) {
                continue;
            }
            let mut p = pid.clone();
            for _ in 0..16 {
                match parent(&p) {
                    Some(pp) if pp == ancestor.to_string() => {
                        return pid.parse().map_err(|_| format!("pid {pid}"));
                    }
                    Some(pp) if pp != "0" => p = pp,
                    _ => break,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err("the probe's loop did not show up within 10 s".into())
}

/// PTRACE_SECCOMP_GET_FILTER for each filter of `pid`, newest first (it
/// needs the tracee stopped: seized and interrupted, then let go).
fn read_filters(pid: i32) -> Result<Vec<u32>, String> {
    const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
    let err = |what: &str| format!("{what} of {pid}: {}", std::io::Error::last_os_error());
    // SAFETY: requests that take no pointers, on a process we started.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) < 0 {
            return Err(err("PTRACE_SEIZE"));
        }
        if libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) < 0 {
            return Err(err("PTRACE_INTERRUPT"));
        }
    }
    let mut status = 0;
    // SAFETY: waitpid writes the status.
    if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } != pid {
        return Err(err("waitpid"));
    }
    let mut filters = Vec::new();
    loop {
        // SAFETY: a NULL buffer asks only for the filter's length.
        let n = unsafe { libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, filters.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error();
            // ENOENT: no filter at that index; EINVAL: none at all.
            if e == Some(libc::ENOENT) || (e == Some(libc::EINVAL) && filters.is_empty()) {
                break;
            }
            return Err(err("PTRACE_SECCOMP_GET_FILTER"));
        }
        filters.push(n as u32);
    }
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    Ok(filters)
}

impl Cost {
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Seccomp per syscall: `husk-probe loop SYSCALL N` inside a container, ns per call (the fastest batch of 10,000 calls in a loop of {} calls; median of {} interleaved rounds). `getppid` is allowed whatever its arguments, so the kernel's seccomp cache answers it without running the filter; `personality(0xffffffff)` is decided by an argument rule, so the filter runs on every call. Instructions: of each filter the program runs under, read with PTRACE_SECCOMP_GET_FILTER.\n",
            self.calls, self.rounds
        );
        o.push_str("| contender | command | filter instructions | getppid ns | personality ns |\n");
        o.push_str("|---|---|---:|---:|---:|\n");
        for r in &self.rows {
            let insns = match &r.filters {
                Ok(f) if f.is_empty() => "none".to_string(),
                Ok(f) => f
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" + "),
                Err(e) => format!("? ({e})"),
            };
            let ns: Vec<String> =
                r.ns.iter()
                    .map(|x| x.map_or("–".into(), |x| format!("{x:.1}")))
                    .collect();
            let failed = r.failure.as_ref().map_or(String::new(), |f| {
                format!(" (failed: {})", f.replace('|', "\\|"))
            });
            let _ = writeln!(
                o,
                "| {}{failed} | `{}` | {insns} | {} | {} |",
                r.name, r.shown, ns[0], ns[1]
            );
        }
        let _ = writeln!(
            o,
            "\nhusk's filter for Docker's default capabilities, as the runner compiles it: {} instructions.",
            self.husk_insns
        );
        // The filter's own cost where it runs: personality with the filter
        // less without it, under the same runtime.
        let personality = |name: &str| {
            let row = self.rows.iter().find(|r| r.name == name)?;
            row.ns[1]
        };
        let cost = |with: &str, without: &str| match (personality(with), personality(without)) {
            (Some(a), Some(b)) => format!("{:.1} ns", a - b),
            _ => "–".into(),
        };
        let _ = writeln!(
            o,
            "The filter's cost on a call it must run for (personality, with the filter less without): husk {}, runc {}.",
            cost("husk", "husk --seccomp unconfined"),
            cost("runc", "runc, no seccomp")
        );
        o
    }

    pub fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let filters = match &r.filters {
                    Ok(f) => format!(
                        "[{}]",
                        f.iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Err(e) => json::string(e),
                };
                let mut fields = vec![
                    ("name", json::string(&r.name)),
                    ("command", json::string(&r.shown)),
                    ("filter_instructions", filters),
                ];
                for (s, ns) in SYSCALLS.iter().zip(&r.ns) {
                    let key = if *s == "getppid" {
                        "getppid_ns"
                    } else {
                        "personality_ns"
                    };
                    fields.push((key, json::number(*ns)));
                }
                if let Some(f) = &r.failure {
                    fields.push(("failure", json::string(f)));
                }
                json::object(&fields)
            })
            .collect();
        json::object(&[
            ("calls", self.calls.to_string()),
            ("rounds", self.rounds.to_string()),
            ("husk_filter_instructions", self.husk_insns.to_string()),
            ("rows", json::array(&rows)),
        ])
    }
}

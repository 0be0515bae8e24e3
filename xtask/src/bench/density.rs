//! Density: N `sleep` containers started at once. Measured: the time until
//! every container's PID 1 is running sleep; the memory of the runtime's
//! processes that stay beside each container (PSS: shared pages divided
//! among the processes sharing them; and RSS); all the memory charged per
//! container — runtime, sleep, page tables, namespaces and other kernel
//! objects — by a memory cgroup the bench starts them in; and the time to
//! stop them all.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::startup::Contender;

pub mod detached;
pub use detached::run_detached;

pub struct Density {
    pub name: String,
    pub n: usize,
    pub outcome: Result<Figures, String>,
}

pub struct Figures {
    pub all_running_s: f64,
    /// Per container, KiB.
    pub runtime_pss: f64,
    pub runtime_rss: f64,
    pub runtime_processes: f64,
    /// Everything charged, per container, KiB; and what measured it.
    pub charged: f64,
    pub charged_by: &'static str,
    pub stop_s: f64,
}

struct Started {
    child: Child,
    /// The container's sleep, once seen.
    sleep: Option<u32>,
    exited: bool,
}

pub fn run(c: &Contender, n: usize, log: &File) -> Density {
    let outcome = start_all(c, n, log);
    Density {
        name: c.name.clone(),
        n,
        outcome,
    }
}

fn start_all(c: &Contender, n: usize, log: &File) -> Result<Figures, String> {
    let cgroup = Accounting::new();
    let available_before = mem_available_kib();
    let t0 = Instant::now();
    let mut started: Vec<Started> = Vec::with_capacity(n);
    let mut spawn_error = None;
    for _ in 0..n {
        let mut cmd = c.command();
        if let Ok(log) = log.try_clone() {
            cmd.stderr(Stdio::from(log));
        }
        if let Some(cg) = &cgroup {
            cg.start_in(&mut cmd);
        }
        match cmd.spawn() {
            Ok(child) => {
                super::launched(child.id());
                started.push(Started {
                    child,
                    sleep: None,
                    exited: false,
                });
            }
            Err(e) => {
                spawn_error = Some(format!("spawn: {e}"));
                break;
            }
        }
    }
    let deadline = Duration::from_secs(60) + Duration::from_millis(100) * n as u32;
    let ready = spawn_error.map_or_else(|| wait_until_running(&mut started, t0, deadline), Err);
    let all_running_s = t0.elapsed().as_secs_f64();

    let figures = ready.map(|()| {
        let (mut pss, mut rss, mut procs) = (0, 0, 0);
        for s in &started {
            for pid in tree(s.child.id()) {
                if Some(pid) != s.sleep {
                    let (p, r) = pss_rss_kib(pid);
                    pss += p;
                    rss += r;
                    procs += 1;
                }
            }
        }
        let (charged, charged_by) = charged(cgroup.as_ref(), available_before);
        let per = |x: u64| x as f64 / n as f64;
        Figures {
            all_running_s,
            runtime_pss: per(pss),
            runtime_rss: per(rss),
            runtime_processes: per(procs),
            charged: per(charged),
            charged_by,
            stop_s: 0.0,
        }
    });
    let stop_s = stop_all(&mut started);
    if let Some(cg) = cgroup {
        cg.remove();
    }
    figures.map(|f| Figures { stop_s, ..f })
}

/// A memory cgroup under our own, the containers started in it: its usage
/// is everything they are charged, kernel objects included. None where
/// that cannot be (cgroup v2 refuses controllers to a cgroup beside
/// processes, as ours would be): MemAvailable stands in.
pub(super) struct Accounting {
    dir: PathBuf,
    procs: CString,
    usage: &'static str,
}

impl Accounting {
    pub(super) fn new() -> Option<Accounting> {
        let own = husk_tests::host::cgroup_dir(std::process::id(), "memory")?;
        let usage = if own.join("memory.usage_in_bytes").exists() {
            "memory.usage_in_bytes"
        } else {
            "memory.current"
        };
        let dir = own.join(format!("husk-bench-density-{}", std::process::id()));
        fs::create_dir(&dir).ok()?;
        let acc = Accounting {
            procs: CString::new(
                dir.join("cgroup.procs")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .ok()?,
            dir,
            usage,
        };
        if acc.dir.join(usage).exists() {
            Some(acc)
        } else {
            acc.remove();
            None
        }
    }

    /// The child moves itself in between fork and exec.
    pub(super) fn start_in(&self, cmd: &mut std::process::Command) {
        let procs = self.procs.clone();
        // SAFETY: raw syscalls on a path made before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                let err = std::io::Error::last_os_error();
                if fd >= 0 {
                    libc::close(fd);
                }
                if ok {
                    Ok(())
                } else {
                    Err(err)
                }
            });
        }
    }

    pub(super) fn usage_kib(&self) -> u64 {
        fs::read_to_string(self.dir.join(self.usage))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(0, |b| b >> 10)
    }

    /// Once every process has left (the kernel may lag a moment).
    pub(super) fn remove(self) {
        for _ in 0..100 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls until each container's tree holds a running `sleep`.
fn wait_until_running(
    started: &mut [Started],
    t0: Instant,
    deadline: Duration,
) -> Result<(), String> {
    loop {
        let mut pending = 0;
        for s in started.iter_mut().filter(|s| s.sleep.is_none()) {
            s.sleep = tree(s.child.id()).into_iter().find(|&p| comm(p) == "sleep");
            if s.sleep.is_some() {
                continue;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                s.exited = true;
                return Err(format!(
                    "a container ended before running sleep: {status} (see target/bench/density.log)"
                ));
            }
            pending += 1;
        }
        if pending == 0 {
            return Ok(());
        }
        if t0.elapsed() > deadline {
            return Err(format!(
                "{pending} of {} containers were not running after {} s",
                started.len(),
                deadline.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills every container's sleep (its PID 1, or PID 1's child), so each
/// runtime sees its container end and cleans up as it would; then waits
/// for them all. Anything still there after 60 s is killed.
fn stop_all(started: &mut [Started]) -> f64 {
    let t0 = Instant::now();
    for s in started.iter_mut() {
        let sleep = s
            .sleep
            .or_else(|| tree(s.child.id()).into_iter().find(|&p| comm(p) == "sleep"));
        match sleep {
            // SAFETY: a plain kill of a process we started.
            Some(pid) => unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            },
            None => {
                let _ = s.child.kill();
            }
        }
    }
    let deadline = t0 + Duration::from_secs(60);
    loop {
        let mut running = 0;
        for s in started.iter_mut().filter(|s| !s.exited) {
            match s.child.try_wait() {
                Ok(Some(_)) | Err(_) => s.exited = true,
                Ok(None) => running += 1,
            }
        }
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            for s in started.iter_mut().filter(|s| !s.exited) {
                for pid in tree(s.child.id()).into_iter().rev() {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                let _ = s.child.wait();
                s.exited = true;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    t0.elapsed().as_secs_f64()
}

/// `pid` and its descendants, parents first. Every thread's children
/// count: a Go runtime forks from any of its threads.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let children = fs::read_to_string(t.path().join("children")).unwrap_or_default();
                all.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    all
}

pub(super) fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

pub(super) fn pss_rss_kib(pid: u32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Pss:"), field("Rss:"))
}

/// All the memory the containers are charged, and how it was read: the
/// memory cgroup they were started in, else the drop in MemAvailable
/// since `available_before`.
pub(super) fn charged(cgroup: Option<&Accounting>, available_before: u64) -> (u64, &'static str) {
    match cgroup {
        Some(cg) => (cg.usage_kib(), "memory cgroup"),
        None => (
            available_before.saturating_sub(mem_available_kib()),
            "MemAvailable drop",
        ),
    }
}

pub(super) fn mem_available_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

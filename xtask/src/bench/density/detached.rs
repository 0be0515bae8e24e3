//! Density of detached husk containers: N `runner run -d --rm` of `sleep`,
//! started at once. What stays beside each container is its monitor (the
//! runner, gone into a session of its own, that reaps PID 1 and writes the
//! log); found through the state store, its PSS and RSS are the runtime's
//! memory per container. The containers are stopped by killing each
//! sleep, as for the other runtimes; the monitors, orphaned to the bench
//! (a child subreaper), record the end, remove their entries and are
//! reaped here.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runner::store::Store;

use super::super::setup::Setup;
use super::{charged, comm, mem_available_kib, pss_rss_kib, Accounting, Density, Figures};

pub const NAME: &str = "husk -d";

pub fn run_detached(s: &Setup, n: usize, log: &File) -> Density {
    Density {
        name: NAME.into(),
        n,
        outcome: start_all(s, n, log),
    }
}

/// One container: its name, then its monitor and PID 1 once known.
struct Started {
    name: String,
    caller: Option<Child>,
    monitor: i32,
    pid1: i32,
}

fn start_all(s: &Setup, n: usize, log: &File) -> Result<Figures, String> {
    let store = Store::open(std::path::Path::new(runner::store::DEFAULT_ROOT))
        .map_err(|e| e.to_string())?;
    let cgroup = Accounting::new();
    let available_before = mem_available_kib();
    let t0 = Instant::now();
    let mut started = Vec::with_capacity(n);
    let mut failure = None;
    for i in 0..n {
        let name = format!("husk-bench-d-{}-{i}", std::process::id());
        let mut cmd = Command::new(&s.runner);
        cmd.args(["run", "-d", "--rm", "--name", &name, "--rootfs"])
            .arg(&s.rootfs)
            .args(["--", "/bin/sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.try_clone().map_or(Stdio::null(), Stdio::from));
        if let Some(cg) = &cgroup {
            cg.start_in(&mut cmd);
        }
        match cmd.spawn() {
            Ok(child) => started.push(Started {
                name,
                caller: Some(child),
                monitor: 0,
                pid1: 0,
            }),
            Err(e) => {
                failure = Some(format!("spawn: {e}"));
                break;
            }
        }
    }
    // `run -d` returns once its container's program runs.
    for c in &mut started {
        let status = c.caller.take().map(|mut ch| ch.wait());
        match status {
            Some(Ok(st)) if st.success() => {}
            other => {
                failure.get_or_insert(format!(
                    "run -d of {} failed: {other:?} (see target/bench/density.log)",
                    c.name
                ));
                continue;
            }
        }
        match store.find(&c.name).ok().and_then(|f| f.state.ok()) {
            Some(state) if comm(state.pid as u32) == "sleep" => {
                c.monitor = state.supervisor;
                c.pid1 = state.pid;
            }
            _ => {
                failure.get_or_insert(format!("{}: no running sleep in the store", c.name));
            }
        }
    }
    let all_running_s = t0.elapsed().as_secs_f64();
    let figures = match failure {
        Some(e) => Err(e),
        None => {
            let (mut pss, mut rss) = (0, 0);
            for c in &started {
                let (p, r) = pss_rss_kib(c.monitor as u32);
                pss += p;
                rss += r;
            }
            let (charged, charged_by) = charged(cgroup.as_ref(), available_before);
            let per = |x: u64| x as f64 / n as f64;
            Ok(Figures {
                all_running_s,
                runtime_pss: per(pss),
                runtime_rss: per(rss),
                runtime_processes: 1.0,
                charged: per(charged),
                charged_by,
                stop_s: 0.0,
            })
        }
    };
    let stop_s = stop_all(&store, &started);
    if let Some(cg) = cgroup {
        cg.remove();
    }
    figures.map(|f| Figures { stop_s, ..f })
}

/// Kills every sleep and waits for every monitor to end (each removes its
/// entry, `--rm`); what is left after 60 s is removed with `rm -f`.
fn stop_all(store: &Store, started: &[Started]) -> f64 {
    let t0 = Instant::now();
    for c in started.iter().filter(|c| c.pid1 > 0) {
        // SAFETY: kill(2) of a container's PID 1 that the store named.
        unsafe { libc::kill(c.pid1, libc::SIGKILL) };
    }
    let deadline = t0 + Duration::from_secs(60);
    let mut left: Vec<&Started> = started.iter().collect();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|c| {
            // The monitors are our children now (we are a subreaper).
            // SAFETY: waitpid without a status pointer.
            let gone = c.monitor <= 0
                || unsafe { libc::waitpid(c.monitor, std::ptr::null_mut(), libc::WNOHANG) } != 0;
            !(gone && store.find(&c.name).is_err())
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    for c in left {
        let _ = runner::lifecycle::remove(store, &c.name, true);
    }
    t0.elapsed().as_secs_f64()
}

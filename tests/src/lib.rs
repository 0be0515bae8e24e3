//! husk's container scenarios. Each drives the real runner as a user would,
//! against a busybox rootfs, and checks from inside and outside. The same
//! list runs under `cargo test` on the host (tests/host.rs) and as the
//! static `husk-tests` program inside the VMs.
//!
//! Every scenario is also checked for what it leaves behind: the host's
//! mount table, cgroup directories, and processes in other PID namespaces
//! must be as they were before it ran.

pub mod elf;
mod hardening;
pub mod host;
pub mod rootfs;
mod scenarios;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The scenarios, in the order they run. One list: it makes both the
/// `ALL` table and the host's #[test] functions.
#[macro_export]
macro_rules! for_each_scenario {
    ($m:ident) => {
        $m! {
            pid_one_with_no_parent,
            namespaces_differ_from_the_host,
            hostname_env_and_workdir,
            defaults_hostname_path_and_workdir,
            proc_sys_and_dev_mount_options,
            dev_nodes_are_the_right_devices,
            devpts_is_a_new_instance,
            only_lo_and_it_is_up,
            net_host_shares_the_host_network,
            old_root_is_unreachable,
            a_chrooted_runner_pivots_or_says_why_not,
            exit_status_is_the_programs,
            not_executable_is_126,
            not_found_is_127,
            stdin_reaches_an_interactive_shell,
            sigint_to_the_runner_ends_pid_one_with_130,
            caught_signals_are_forwarded,
            memory_hog_is_killed_with_137,
            under_the_memory_limit_runs,
            pids_limit_stops_a_fork_loop,
            cpu_quota_throttles,
            cpuset_pins_the_container,
            cgroup_parent_is_made_and_removed,
            a_killed_runners_cgroup_is_swept_by_the_next,
            bad_input_is_one_line_and_leaves_nothing,
            leftover_checks_see_a_running_container,
            setup_failure_leaves_nothing,
            non_root_is_refused,
            a_terminal_of_its_own,
            default_capabilities_no_new_privs_and_seccomp,
            capability_flags_change_the_set,
            device_nodes_a_container_makes_do_not_open,
            seccomp_refuses_with_eperm_and_programs_still_work,
            seccomp_allow_list_follows_the_capabilities,
            masked_and_read_only_paths,
            sys_fs_cgroup_is_the_containers_own_and_read_only,
            no_controlling_terminal_so_no_tiocsti,
            only_stdio_reaches_the_container,
            proc_exe_cannot_overwrite_the_runtime,
            symlinked_mount_points_are_refused,
            a_symlinked_dev_null_does_not_unmask,
            racing_symlink_exchange_never_escapes,
            a_failure_at_every_step_leaves_nothing,
        }
    };
}

macro_rules! table {
    ($($name:ident),* $(,)?) => {
        /// Every scenario with its name.
        pub const ALL: &[(&str, fn(&Env) -> Result<(), String>)] = &[$((stringify!($name), all_scenarios::$name)),*];
    };
}
for_each_scenario!(table);

/// The scenarios, whichever file they are in.
mod all_scenarios {
    pub use crate::hardening::*;
    pub use crate::scenarios::*;
}

/// Where the runner and the rootfs are.
pub struct Env {
    pub runner: PathBuf,
    pub rootfs: PathBuf,
}

/// What a run of the runner gave.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// From $HUSK_RUNNER and $HUSK_ROOTFS (set by `cargo xtask test` and the
    /// VM init), else the workspace's release build and target/husk-rootfs,
    /// building the rootfs when it is missing.
    pub fn from_env() -> Result<Env, String> {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        let runner = std::env::var_os("HUSK_RUNNER")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("release/runner"));
        if !runner.exists() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release` (or run `cargo xtask test`)",
                runner.display()
            ));
        }
        let rootfs = match std::env::var_os("HUSK_ROOTFS") {
            Some(p) => PathBuf::from(p),
            None => {
                let dir = target.join("husk-rootfs");
                static BUILD: Mutex<()> = Mutex::new(());
                let _one_builder = BUILD.lock().unwrap_or_else(|e| e.into_inner());
                if !dir.join("bin/busybox").exists() {
                    let busybox = rootfs::find_busybox(&target)?;
                    rootfs::build(&dir, &busybox, &rootfs::applets(&busybox)?)?;
                }
                dir
            }
        };
        install_probe(&rootfs, &target)?;
        host::watch_root(&rootfs);
        Ok(Env { runner, rootfs })
    }

    /// Runs husk-probe (see src/probe) in a container with `flags`.
    pub fn probe(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut cmd = vec![PROBE];
        cmd.extend_from_slice(args);
        self.run(flags, &cmd)
    }

    pub fn command(&self, flags: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(&self.runner);
        c.arg("--rootfs")
            .arg(&self.rootfs)
            .args(flags)
            .arg("--")
            .args(cmd);
        c.stdin(Stdio::null());
        c
    }

    /// Runs the runner with `flags` and the command `cmd`, and waits.
    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> Output {
        output(&mut self.command(flags, cmd))
    }

    /// `run` of /bin/sh -c `script`.
    pub fn sh(&self, flags: &[&str], script: &str) -> Output {
        self.run(flags, &["/bin/sh", "-c", script])
    }
}

/// Where husk-probe is inside the test rootfs.
pub const PROBE: &str = "/bin/husk-probe";

/// Puts the static husk-probe into the rootfs: $HUSK_PROBE (set by `cargo
/// xtask test`), else this machine's musl build of it. A rootfs that holds
/// one already (the VMs') keeps it.
fn install_probe(rootfs: &Path, target: &Path) -> Result<(), String> {
    let dest = rootfs.join(PROBE.trim_start_matches('/'));
    let triple = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let src = std::env::var_os("HUSK_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join(triple).join("release/husk-probe"));
    if !src.exists() {
        if dest.exists() {
            return Ok(());
        }
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p husk-tests --bin husk-probe \
             --target {}-unknown-linux-musl` (or run `cargo xtask test`)",
            src.display(),
            std::env::consts::ARCH
        ));
    }
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_installer = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let same = |a: &Path, b: &Path| std::fs::read(a).ok() == std::fs::read(b).ok();
    if !same(&src, &dest) {
        // Beside it and renamed into place: a concurrent reader never sees half a file.
        let tmp = dest.with_extension(format!("new-{}", std::process::id()));
        std::fs::copy(&src, &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .map_err(|e| format!("install {} as {}: {e}", src.display(), dest.display()))?;
    }
    Ok(())
}

/// The `key=value` lines of husk-probe's output, in order.
pub fn facts(out: &Output) -> Vec<(&str, &str)> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect()
}

/// The value of the first fact `key`, or "" when there is none.
pub fn fact<'a>(facts: &[(&'a str, &'a str)], key: &str) -> &'a str {
    facts
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap_or("")
}

/// How long one run of the runner may take before the tests kill it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs `cmd` with its stdout and stderr piped, to the end or until
/// RUN_LIMIT; a kill shows as status -1 with the reason on stderr.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    collect(child, RUN_LIMIT).unwrap_or_else(|e| Output {
        status: -1,
        stdout: String::new(),
        stderr: e,
    })
}

/// The child's exit status, or None if it is still running after `limit`.
fn wait_until(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>, String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(None) if start.elapsed() <= limit => std::thread::sleep(Duration::from_millis(5)),
            Ok(status) => return Ok(status),
            Err(e) => return Err(format!("wait for the runner: {e}")),
        }
    }
}

/// Waits for `child`, killing it after `limit`, and gathers what it wrote
/// to its piped stdout and stderr. The pipes are read on threads that are
/// given up on soon after the child is gone: a process that keeps them
/// open fails the scenario instead of hanging the whole run.
pub fn collect(mut child: Child, limit: Duration) -> Result<Output, String> {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            });
        } else {
            let _ = tx.send(String::new());
        }
        rx
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = wait_until(&mut child, limit)?;
    if status.is_none() {
        let _ = child.kill();
        // Not wait(): a runner stuck in the kernel would not die of it.
        if wait_until(&mut child, Duration::from_secs(5))?.is_none() {
            return Err(format!(
                "the runner was still running after {limit:?} and did not die of SIGKILL; the processes:\n{}",
                host::process_table()
            ));
        }
    }
    let grace = Duration::from_secs(5);
    let open = "<still open 5 s after the runner ended: a process outside the runner holds it>";
    let stdout = stdout.recv_timeout(grace).unwrap_or_else(|_| open.into());
    let stderr = stderr.recv_timeout(grace).unwrap_or_else(|_| open.into());
    let Some(status) = status else {
        return Err(format!(
            "the runner was still running after {limit:?}; killed\n--- stdout\n{stdout}--- stderr\n{stderr}"
        ));
    };
    let status = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

impl Output {
    /// Ok if the status is `status`; else an error showing everything.
    pub fn expect(&self, status: i32) -> Result<&Output, String> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!(
                "exit status {} (wanted {status})\n{self}",
                self.status
            ))
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// `Err` with a message unless `cond`.
pub fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Scenarios share global state (mounts, cgroups), so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs one scenario with the leftover checks around it. Ok(None) when it
/// passed, Ok(Some(reason)) when it was skipped.
pub fn run_scenario(env: &Env, name: &str) -> Result<Option<String>, String> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_, f) = ALL
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("no scenario {name}"))?;
    if !is_root() && name != "non_root_is_refused" {
        return Ok(Some(
            "needs root (containers cannot be made without it; CI runs as root)".into(),
        ));
    }
    let before = host::Snapshot::take();
    f(env)?;
    let after = host::Snapshot::take();
    before.same_as(&after).map(|()| None)
}

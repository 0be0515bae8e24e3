//! The harness the scenarios share: where the runner, the rootfs and the
//! probe are, running the runner with a bound on everything it waits for,
//! the leftover checks around each scenario, and small helpers.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use crate::{host, rootfs, ALL};

pub(crate) type R = Result<(), String>;

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

pub(crate) fn lines(out: &Output) -> Vec<&str> {
    out.stdout.lines().collect()
}

pub(crate) fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// One mount from a mountinfo text: (per-mount options, fstype, super options).
pub(crate) fn mount_at<'a>(
    mountinfo: &'a str,
    mountpoint: &str,
) -> Option<(&'a str, &'a str, &'a str)> {
    mountinfo.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        (pre.get(4) == Some(&mountpoint))
            .then(|| (pre[5], post[0], post.get(2).copied().unwrap_or("")))
    })
}

pub(crate) fn has_opts(opts: &str, want: &[&str]) -> bool {
    want.iter().all(|w| opts.split(',').any(|o| o == *w))
}

pub(crate) fn one_error_line(out: &Output, status: i32, want: &str) -> R {
    out.expect(status)?;
    let l: Vec<&str> = out.stderr.lines().collect();
    check(
        l.len() == 1
            && l[0].starts_with("runner: ")
            && l[0].contains(want)
            && out.stdout.is_empty(),
        || format!("wanted one line \"runner: ...{want}...\"\n{out}"),
    )
}

/// A running container whose script printed "ready". Dropped before it
/// is finished (a check failed half-way), the runner is killed and reaped:
/// a failing scenario leaves no container behind for the next.
pub(crate) struct Running {
    child: Option<Child>,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Running {
    pub(crate) fn start(env: &Env, flags: &[&str], script: &str) -> Result<Running, String> {
        Running::spawn(env.command(flags, &["/bin/sh", "-c", script]))
    }

    /// `cmd`, a runner whose container's script prints "ready" first.
    pub(crate) fn spawn(mut cmd: Command) -> Result<Running, String> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut r = Running {
            child: Some(child),
            lines,
        };
        match r.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == "ready" => Ok(r),
            other => {
                let mut child = r.child.take().expect("not finished");
                let _ = child.kill();
                let out = collect(child, Duration::from_secs(5))?;
                Err(format!("container did not get ready: {other:?}\n{out}"))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The container's PID 1, as the host sees it.
    pub(crate) fn pid1(&self) -> Result<u32, String> {
        host::children(self.pid())
            .first()
            .copied()
            .ok_or_else(|| "the runner has no child".into())
    }

    /// Waits until PID 1's argv[0] is `name`.
    pub(crate) fn wait_for_pid1(&self, name: &str) -> R {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let pid1 = self.pid1()?;
            let cmdline = fs::read(format!("/proc/{pid1}/cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).next() == Some(name.as_bytes()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!("PID 1 did not become {name}"))
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Waits for the runner; the rest of stdout is appended.
    pub(crate) fn finish(mut self, timeout: Duration) -> Result<Output, String> {
        let child = self.child.take().expect("finished once");
        let mut out = collect(child, timeout)?;
        out.stdout = self.lines.try_iter().map(|l| l + "\n").collect::<String>() + &out.stdout;
        Ok(out)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = collect(child, Duration::from_secs(10));
        }
    }
}

/// A small rootfs of our own, to make hostile: busybox, a few applets and
/// husk-probe, and a directory beside it that must stay empty. Removed
/// when dropped.
pub(crate) struct TempRootfs {
    pub(crate) dir: PathBuf,
    /// Where hostile symlinks point; must stay empty.
    pub(crate) outside: PathBuf,
}

impl TempRootfs {
    pub(crate) fn new(env: &Env, tag: &str) -> Result<TempRootfs, String> {
        // Beside the test rootfs, not in /tmp: a nodev /tmp (the VMs'
        // is) would make the scenarios that show a node opening where
        // husk allows it fail for a reason of the host's.
        let base = env
            .rootfs
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join(format!("husk-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("rootfs");
        let outside = base.join("outside");
        for d in ["bin", "proc", "sys", "dev", "tmp"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
        fs::copy(env.rootfs.join("bin/busybox"), dir.join("bin/busybox"))
            .map_err(|e| e.to_string())?;
        for a in ["sh", "true", "cat", "ls"] {
            symlink("/bin/busybox", dir.join("bin").join(a)).map_err(|e| e.to_string())?;
        }
        fs::copy(
            env.rootfs.join(PROBE.trim_start_matches('/')),
            dir.join(PROBE.trim_start_matches('/')),
        )
        .map_err(|e| e.to_string())?;
        host::watch_root(&dir);
        Ok(TempRootfs { dir, outside })
    }

    pub(crate) fn run(&self, env: &Env, cmd: &[&str]) -> Output {
        let mut c = Command::new(&env.runner);
        c.arg("--rootfs").arg(&self.dir).arg("--").args(cmd);
        output(&mut c)
    }

    pub(crate) fn outside_is_untouched(&self) -> R {
        let entries: Vec<_> = fs::read_dir(&self.outside)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .collect();
        check(entries.is_empty(), || {
            format!("files appeared outside the rootfs: {entries:?}")
        })?;
        let mounted = host::mounts()
            .iter()
            .any(|m| m.contains(self.outside.to_str().unwrap_or("?")));
        check(!mounted, || {
            format!("something is mounted on {}", self.outside.display())
        })
    }
}

impl Drop for TempRootfs {
    fn drop(&mut self) {
        if let Some(base) = self.dir.parent() {
            let _ = fs::remove_dir_all(base);
        }
    }
}

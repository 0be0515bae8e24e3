//! Start-up time: every contender runs /bin/true in a busybox rootfs, one
//! run of each per round in a fresh random order, many rounds, each run
//! timed from fork to reaped exit on the monotonic clock.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::setup::Setup;
use super::Stats;

/// One way of starting a container.
pub struct Contender {
    /// Short name for tables and JSON.
    pub name: String,
    /// The command as the table shows it (R: the rootfs, B: the bundle).
    pub shown: String,
    program: PathBuf,
    /// `ID` stands for a container id unique to each run.
    args: Vec<OsString>,
    /// Whether it makes a network namespace: it is held against the floor
    /// that does the same.
    pub netns: bool,
    pub floor: bool,
    /// A mount namespace to enter before exec (crun on a hybrid host).
    mount_ns: Option<RawFd>,
    /// Commands run after the first, with the same ID, all in the time
    /// (OCI create, then start, then delete).
    then: Vec<Vec<OsString>>,
}

/// What a contender's runs gave.
pub struct Measured {
    /// Milliseconds of each successful run.
    pub samples: Vec<f64>,
    /// The largest ru_maxrss of a run: the biggest process of its tree, KiB.
    pub max_rss_kib: u64,
    pub failures: u32,
    pub last_failure: Option<String>,
}

impl Measured {
    pub fn stats(&self) -> Option<Stats> {
        Stats::of(&self.samples)
    }
}

/// What a program to run inside is, for each kind of contender.
pub enum Program {
    True,
    Sleep,
}

impl Program {
    fn argv(&self) -> &'static [&'static str] {
        match self {
            Program::True => &["/bin/true"],
            Program::Sleep => &["/bin/sleep", "1000"],
        }
    }
}

impl Contender {
    fn new(name: &str, shown: &str, program: &Path, args: Vec<OsString>, netns: bool) -> Self {
        Contender {
            name: name.into(),
            shown: shown.into(),
            program: program.into(),
            args,
            netns,
            floor: false,
            mount_ns: None,
            then: Vec::new(),
        }
    }

    pub fn floor(s: &Setup, net: bool) -> Self {
        let mut args: Vec<OsString> = Vec::new();
        if net {
            args.push("--net".into());
        }
        args.push(s.rootfs.join("bin/busybox").into());
        args.push("true".into());
        let (name, shown) = if net {
            ("floor + netns", "husk-floor --net R/bin/busybox true")
        } else {
            ("floor", "husk-floor R/bin/busybox true")
        };
        let mut c = Contender::new(name, shown, &s.floor, args, net);
        c.floor = true;
        c
    }

    /// The runner with `flags`; `net host` among them means no network
    /// namespace.
    pub fn husk(s: &Setup, flags: &[&str], program: &Program) -> Self {
        let mut args: Vec<OsString> = vec!["--rootfs".into(), s.rootfs.clone().into()];
        args.extend(flags.iter().map(OsString::from));
        args.push("--".into());
        args.extend(program.argv().iter().map(OsString::from));
        let name = if flags.is_empty() {
            "husk".to_string()
        } else {
            format!("husk {}", flags.join(" "))
        };
        let shown = format!(
            "runner --rootfs R {}-- {}",
            flags.iter().map(|f| format!("{f} ")).collect::<String>(),
            program.argv().join(" ")
        );
        let netns = !flags.windows(2).any(|w| w == ["--net", "host"]);
        Contender::new(&name, &shown, &s.runner, args, netns)
    }

    /// The runner with `root` (flags naming an overlay root: `--layer R`,
    /// `--image NAME`) in place of `--rootfs R`.
    pub fn husk_on(s: &Setup, root: &[OsString], shown: &str) -> Self {
        let mut c = Contender::husk(s, &[], &Program::True);
        c.args.splice(0..2, root.iter().cloned());
        c.name = format!("husk {}", shown.trim());
        c.shown = format!("runner {shown} -- /bin/true");
        c
    }

    /// Another build of the runner, with the default flags.
    pub fn other_husk(s: &Setup, runner: &Path) -> Self {
        let mut c = Contender::husk(s, &[], &Program::True);
        c.name = format!("husk @ {}", runner.display());
        c.shown = format!("{} --rootfs R -- /bin/true", runner.display());
        c.program = runner.into();
        c
    }

    pub fn bwrap(s: &Setup, program: &Program) -> Option<Self> {
        let bwrap = s.peer("bwrap")?;
        let mut args: Vec<OsString> = vec!["--bind".into(), s.rootfs.clone().into()];
        args.extend(
            ["/", "--proc", "/proc", "--dev", "/dev", "--unshare-all"]
                .iter()
                .map(OsString::from),
        );
        args.extend(program.argv().iter().map(OsString::from));
        let shown = format!(
            "bwrap --bind R / --proc /proc --dev /dev --unshare-all {}",
            program.argv().join(" ")
        );
        Some(Contender::new("bubblewrap", &shown, bwrap, args, true))
    }

    /// `runc run` or `crun run` of the bundle; `mount_ns` marks the crun
    /// that runs in a mount namespace without the cgroup2 mount.
    pub fn oci(
        s: &Setup,
        binary: &str,
        program: &Program,
        mount_ns: Option<RawFd>,
    ) -> Option<Self> {
        let path = s.peer(binary)?;
        let bundle = match program {
            Program::True => &s.bundle_true,
            Program::Sleep => &s.bundle_sleep,
        };
        let args = vec![
            "run".into(),
            "--bundle".into(),
            bundle.clone().into(),
            "ID".into(),
        ];
        let mut name = binary.to_string();
        if mount_ns.is_some() {
            name.push_str(" †");
        }
        let shown = format!("{binary} run --bundle B ID");
        let mut c = Contender::new(&name, &shown, path, args, true);
        c.mount_ns = mount_ns;
        Some(c)
    }

    /// An OCI runtime's `create`, `start` and `delete -f` of the bundle
    /// running /bin/true, timed together (the figure crun and youki
    /// publish); `global` flags go before each command.
    pub fn lifecycle(
        s: &Setup,
        name: &str,
        program: &Path,
        global: &[OsString],
        mount_ns: Option<RawFd>,
    ) -> Self {
        let step = |words: &[&str]| -> Vec<OsString> {
            let mut v = global.to_vec();
            v.extend(words.iter().map(OsString::from));
            v
        };
        let mut args = step(&["create", "--bundle"]);
        args.push(s.bundle_true.clone().into());
        args.push("ID".into());
        let shown = format!(
            "{} create --bundle B ID; start ID; delete -f ID",
            program.file_name().unwrap_or_default().to_string_lossy()
        );
        let mut c = Contender::new(
            &format!("{name} create+start+delete"),
            &shown,
            program,
            args,
            true,
        );
        c.mount_ns = mount_ns;
        c.then = vec![step(&["start", "ID"]), step(&["delete", "-f", "ID"])];
        c
    }

    /// The commands of one run (one, or an OCI lifecycle's three), each
    /// started the same way for every contender (fork, then exec:
    /// `pre_exec` rules out posix_spawn), so that what the harness costs
    /// is the same for all and cancels in differences.
    pub fn commands(&self) -> Vec<Command> {
        let id = super::container_id();
        std::iter::once(&self.args)
            .chain(&self.then)
            .map(|args| self.command_with(args, &id))
            .collect()
    }

    /// The first command (for probes and single runs).
    pub fn command(&self) -> Command {
        self.command_with(&self.args, &super::container_id())
    }

    fn command_with(&self, args: &[OsString], id: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        for a in args {
            if a == "ID" {
                cmd.arg(id);
            } else {
                cmd.arg(a);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let ns = self.mount_ns;
        // SAFETY: one raw syscall between fork and exec.
        unsafe {
            cmd.pre_exec(move || match ns {
                Some(fd) if libc::setns(fd, libc::CLONE_NEWNS) < 0 => {
                    Err(std::io::Error::last_os_error())
                }
                _ => Ok(()),
            });
        }
        cmd
    }

    /// One run with its output kept: None if it succeeded, else why not.
    pub fn probe(&self) -> Option<String> {
        for mut cmd in self.commands() {
            // Its stderr into an unnamed file, not a pipe: an OCI
            // `create` leaves the container holding the stdio it was
            // given, and a pipe would not end before the container does.
            let err = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .open(std::env::temp_dir());
            let mut err = match err {
                Ok(f) => f,
                Err(e) => return Some(format!("a file for stderr: {e}")),
            };
            let status = match err
                .try_clone()
                .and_then(|e| cmd.stderr(e).spawn())
                .and_then(|mut c| {
                    super::launched(c.id());
                    c.wait()
                }) {
                Ok(s) => s,
                Err(e) => return Some(format!("cannot start: {e}")),
            };
            if !status.success() {
                use std::io::{Read, Seek};
                let mut stderr = String::new();
                let _ = err.rewind().and_then(|()| err.read_to_string(&mut stderr));
                let line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Some(format!("{status}: {}", line.trim()));
            }
        }
        None
    }
}

/// `rounds` rounds after `warmup` unrecorded ones; in each, every
/// contender runs once, in a new random order.
pub fn measure(contenders: &[Contender], rounds: u32, warmup: u32) -> Vec<Measured> {
    let mut measured: Vec<Measured> = contenders
        .iter()
        .map(|_| Measured {
            samples: Vec::with_capacity(rounds as usize),
            max_rss_kib: 0,
            failures: 0,
            last_failure: None,
        })
        .collect();
    let mut order: Vec<usize> = (0..contenders.len()).collect();
    let mut rng = Rng::new();
    let started = Instant::now();
    for round in 0..warmup + rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let run = time_all(&mut contenders[i].commands());
            super::reap_orphans();
            if round < warmup {
                continue;
            }
            let m = &mut measured[i];
            match run {
                Ok((ms, rss)) => {
                    m.samples.push(ms);
                    m.max_rss_kib = m.max_rss_kib.max(rss);
                }
                Err(e) => {
                    m.failures += 1;
                    m.last_failure = Some(e);
                }
            }
        }
        let done = round + 1;
        if done > warmup && (done - warmup).is_multiple_of((rounds / 5).max(1)) {
            println!(
                "xtask: bench: round {}/{rounds} ({:.0} s)",
                done - warmup,
                started.elapsed().as_secs_f64()
            );
        }
    }
    measured
}

/// `cmds` one after the other, each to succeed: the milliseconds of all,
/// and the largest ru_maxrss.
fn time_all(cmds: &mut [Command]) -> Result<(f64, u64), String> {
    let (mut ms, mut rss) = (0.0, 0);
    for cmd in cmds {
        let (m, r) = time_once(cmd)?;
        ms += m;
        rss = rss.max(r);
    }
    Ok((ms, rss))
}

/// Milliseconds from fork to reaped exit, and the run's ru_maxrss in KiB.
fn time_once(cmd: &mut Command) -> Result<(f64, u64), String> {
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    super::launched(child.id());
    let (status, rusage) = super::wait4(child.id() as i32).map_err(|e| format!("wait: {e}"))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if status != 0 {
        return Err(super::describe_status(status));
    }
    Ok((ms, rusage.ru_maxrss as u64))
}

/// xorshift64*: a fresh order each round, without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

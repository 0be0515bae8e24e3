//! From the command line to a checked container specification. Every check
//! that can be made before anything is created is made here, so that bad
//! input leaves nothing behind.

use std::cell::OnceCell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cgroup::Limits;
use crate::cli::Args;
use crate::error::{Error, Result};
use crate::hostroot::Root;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_HOSTNAME: &str = "husk";
/// The CFS period the CPU quota is expressed in (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug)]
pub struct Spec {
    /// Canonical, absolute.
    pub rootfs: PathBuf,
    pub hostname: String,
    pub env: Vec<CString>,
    pub workdir: CString,
    pub argv: Vec<CString>,
    /// Where to look for argv[0] inside the container, in order.
    pub candidates: Vec<CString>,
    pub new_net: bool,
    pub limits: Limits,
    pub cgroup_parent: Option<String>,
    pub shim: crate::shim::Source,
    pub security: Security,
    /// Tests only: make the shim fail before this step (HUSK_FAIL_AT_STEP).
    pub fail_at_step: Option<usize>,
    /// Give the container a pseudo-terminal of its own.
    pub tty: bool,
    /// pivot_root into the rootfs; else move it over / and chroot (see
    /// hostroot.rs).
    pub pivot: bool,
}

/// What the container may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    /// Capabilities kept (bounding, permitted, effective).
    pub caps: u64,
    /// No masked or read-only paths, /sys writable.
    pub privileged: bool,
    pub no_new_privs: bool,
    pub seccomp: bool,
}

/// Host facts the checks depend on, read once; a parameter so that tests
/// can supply their own. What only some flags need is read on first use,
/// off the start-up path of a container that does not use them.
pub struct Host {
    online_cpus: OnceCell<Vec<u32>>,
    pub is_root: bool,
    own_exe: OnceCell<Option<PathBuf>>,
    pub root: Root,
}

impl Host {
    pub fn read() -> Host {
        Host {
            online_cpus: OnceCell::new(),
            // SAFETY: geteuid cannot fail.
            is_root: unsafe { libc::geteuid() } == 0,
            own_exe: OnceCell::new(),
            root: crate::hostroot::detect(),
        }
    }

    /// For --cpus and --cpuset.
    fn online_cpus(&self) -> &[u32] {
        self.online_cpus.get_or_init(|| {
            let online =
                std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
            parse_cpu_list(online.trim()).unwrap_or_default()
        })
    }

    /// Where to look for husk-shim when none is built in.
    fn own_exe(&self) -> Option<&Path> {
        self.own_exe
            .get_or_init(|| std::env::current_exe().ok())
            .as_deref()
    }
}

pub fn check(args: Args, host: &Host) -> Result<Spec> {
    if args.command.is_empty() {
        return Err(Error::new(
            "no command given: put it after --, e.g. runner --rootfs DIR -- /bin/sh",
        ));
    }
    let limits = limits(&args, host)?;
    let new_net = match args.net.as_deref() {
        None | Some("none") => true,
        Some("host") => false,
        Some(other) => return Err(Error::new(format!("--net {other}: expected none or host"))),
    };
    let hostname = args.hostname.unwrap_or_else(|| DEFAULT_HOSTNAME.into());
    check_hostname(&hostname)?;
    let workdir = args.workdir.unwrap_or_else(|| "/".into());
    if args.tty && args.no_tty {
        return Err(Error::new("--tty and --no-tty contradict each other"));
    }
    if !workdir.starts_with('/') {
        return Err(Error::new(format!(
            "--workdir {workdir}: must be an absolute path inside the container"
        )));
    }
    let workdir = cstring("--workdir", &workdir)?;
    let env = environment(&args.env, &hostname)?;
    let argv = args
        .command
        .iter()
        .map(|a| cstring("command", a))
        .collect::<Result<Vec<_>>>()?;
    let path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let candidates = candidates(&args.command[0], &path)?;
    let security = Security {
        caps: crate::caps::keep(
            crate::caps::base(args.privileged, host.root == Root::Pivot),
            &args.cap_add,
            &args.cap_drop,
        )?,
        privileged: args.privileged,
        no_new_privs: !args.allow_new_privs,
        seccomp: match args.seccomp.as_deref() {
            None => !args.privileged,
            Some("default") => true,
            Some("unconfined") => false,
            Some(other) => {
                return Err(Error::new(format!(
                    "--seccomp {other}: expected default or unconfined"
                )))
            }
        },
    };
    if let Some(parent) = &args.cgroup_parent {
        check_cgroup_parent(parent)?;
    }

    // Only root can do any of this; say so before looking at the filesystem.
    if !host.is_root {
        return Err(Error::new(
            "must be run as root: rootless mode is not available yet",
        ));
    }
    if host.root == Root::NotAMountPoint {
        return Err(Error::new(
            "/ is not a mount point (is the runner chrooted?): the container's mounts could \
             reach the host; bind-mount the directory onto itself before chrooting into it",
        ));
    }
    let rootfs = rootfs(args.rootfs.as_deref())?;
    let shim = crate::shim::Source::choose(args.shim.as_deref(), || host.own_exe())?;
    let fail_at_step = std::env::var("HUSK_FAIL_AT_STEP")
        .ok()
        .and_then(|s| s.parse().ok());
    Ok(Spec {
        rootfs,
        hostname,
        env,
        workdir,
        argv,
        candidates,
        new_net,
        limits,
        cgroup_parent: args.cgroup_parent,
        shim,
        security,
        fail_at_step,
        tty: crate::tty::wanted(args.tty, args.no_tty),
        pivot: host.root == Root::Pivot,
    })
}

fn rootfs(arg: Option<&str>) -> Result<PathBuf> {
    let arg = arg.ok_or_else(|| Error::new("--rootfs DIR is required"))?;
    let path = Path::new(arg)
        .canonicalize()
        .map_err(|e| Error::os(format_args!("--rootfs {arg}"), &e))?;
    if !path.is_dir() {
        return Err(Error::new(format!("--rootfs {arg}: not a directory")));
    }
    if path == Path::new("/") {
        return Err(Error::new(
            "--rootfs /: the host's own root cannot be a container's",
        ));
    }
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(Error::new(format!("--rootfs {arg}: contains a NUL byte")));
    }
    Ok(path)
}

fn limits(args: &Args, host: &Host) -> Result<Limits> {
    let memory = args
        .memory
        .as_deref()
        .map(|v| size("--memory", v))
        .transpose()?;
    if let Some(m) = memory {
        if m < 1 << 20 {
            return Err(Error::new(format!(
                "--memory {}: below the 1M that any program needs",
                args.memory.as_deref().unwrap_or("")
            )));
        }
    }
    let memory_swap = match args.memory_swap.as_deref() {
        None => None,
        Some(v) => {
            let Some(m) = memory else {
                return Err(Error::new("--memory-swap needs --memory"));
            };
            if v == "-1" {
                Some(None)
            } else {
                let s = size("--memory-swap", v)?;
                if s < m {
                    return Err(Error::new(format!(
                        "--memory-swap {v}: smaller than --memory; it counts memory plus swap"
                    )));
                }
                Some(Some(s))
            }
        }
    };
    let cpu_quota_us = match args.cpus.as_deref() {
        None => None,
        Some(v) => {
            let ncpus = host.online_cpus().len().max(1);
            let cpus: f64 = v
                .parse()
                .ok()
                .filter(|c: &f64| c.is_finite() && *c > 0.0)
                .ok_or_else(|| {
                    Error::new(format!(
                        "--cpus {v}: expected a positive number of CPUs, e.g. 0.5"
                    ))
                })?;
            if cpus > ncpus as f64 {
                return Err(Error::new(format!(
                    "--cpus {v}: this host has {ncpus} CPUs online"
                )));
            }
            // The kernel refuses quotas under 1 ms per period.
            Some(((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000))
        }
    };
    let cpu_shares = args
        .cpu_shares
        .as_deref()
        .map(|v| number("--cpu-shares", v, 2, 262_144))
        .transpose()?;
    let cpuset = match args.cpuset.as_deref() {
        None => None,
        Some(v) => {
            let cpus = parse_cpu_list(v).ok_or_else(|| {
                Error::new(format!("--cpuset {v}: expected a CPU list such as 0-2,4"))
            })?;
            let online = host.online_cpus();
            if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
                let online = format_cpu_list(online);
                return Err(Error::new(format!(
                    "--cpuset {v}: CPU {bad} is not online (online: {online})"
                )));
            }
            Some(format_cpu_list(&cpus))
        }
    };
    let pids = args
        .pids
        .as_deref()
        .map(|v| number("--pids", v, 1, u32::MAX as u64))
        .transpose()?;
    Ok(Limits {
        memory,
        memory_swap,
        cpu_quota_us,
        cpu_shares,
        cpuset,
        pids,
    })
}

/// "64M", "1g", "512k", "4096": bytes.
pub fn size(flag: &str, v: &str) -> Result<u64> {
    let bad = || {
        Error::new(format!(
            "{flag} {v}: expected bytes or a number with a k, m or g suffix, e.g. 64M"
        ))
    };
    let s = v.strip_suffix(['b', 'B']).unwrap_or(v);
    let (digits, shift) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(bad)
}

fn number(flag: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            Error::new(format!(
                "{flag} {v}: expected a whole number from {min} to {max}"
            ))
        })
}

/// "0-2,4" -> [0, 1, 2, 4]. None if malformed.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if a > b || b - a > 4096 {
            return None;
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    out.join(",")
}

fn check_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "--hostname {name}: expected 1 to 64 letters, digits, '-' or '.'"
        )))
    }
}

fn check_cgroup_parent(parent: &str) -> Result<()> {
    let ok = parent.split('/').all(|c| c != ".." && c != ".") && !parent.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "--cgroup-parent {parent}: '.' and '..' are not allowed"
        )))
    }
}

/// The container's environment: defaults, then -e in order (later wins).
fn environment(vars: &[String], hostname: &str) -> Result<Vec<CString>> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(("TERM".into(), term));
    }
    for var in vars {
        let (key, value) = match var.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(var) {
                Ok(v) => (var.clone(), v),
                // Docker's rule: a name without a value that the runner does not have is left out.
                Err(_) => continue,
            },
        };
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(Error::new(format!("--env {var}: expected KEY=VALUE")));
        }
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    env.into_iter()
        .map(|(k, v)| cstring("--env", &format!("{k}={v}")))
        .collect()
}

/// The paths execve will try, like execvp: argv[0] itself if it has a
/// slash, else each absolute directory of the container's PATH. Resolved
/// by the shim inside the container, where the rootfs's own symlinks mean
/// what they say.
fn candidates(cmd: &str, path: &str) -> Result<Vec<CString>> {
    if cmd.is_empty() {
        return Err(Error::new("the command is an empty string"));
    }
    if cmd.contains('/') {
        return Ok(vec![cstring("command", cmd)?]);
    }
    let dirs: Vec<&str> = path.split(':').filter(|d| d.starts_with('/')).collect();
    if dirs.is_empty() {
        return Err(Error::new(format!(
            "{cmd}: the container's PATH has no absolute directory to look in"
        )));
    }
    dirs.iter()
        .map(|d| cstring("command", &format!("{}/{cmd}", d.trim_end_matches('/'))))
        .collect()
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(format!("{what} {s:?}: contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            online_cpus: vec![0, 1].into(),
            is_root: true,
            own_exe: None.into(),
            root: crate::hostroot::Root::Pivot,
        }
    }

    fn args(f: impl FnOnce(&mut Args)) -> Args {
        let mut a = Args {
            command: vec!["sh".into()],
            ..Args::default()
        };
        f(&mut a);
        a
    }

    fn err(a: Args) -> String {
        check(a, &host()).unwrap_err().message
    }

    #[test]
    fn sizes() {
        assert_eq!(size("--memory", "64M").unwrap(), 64 << 20);
        assert_eq!(size("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(size("--memory", "512kb").unwrap(), 512 << 10);
        assert_eq!(size("--memory", "4096").unwrap(), 4096);
        for bad in ["12Q", "", "M", "-1", "1.5G", "0", "99999999999999999999G"] {
            assert!(size("--memory", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,4,1").unwrap(), [0, 1, 2, 4]);
        assert_eq!(format_cpu_list(&[0, 1, 2, 4, 6, 7]), "0-2,4,6-7");
        for bad in ["", "a", "2-1", "0,", "-1"] {
            assert!(parse_cpu_list(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named_in_one_line() {
        let cases: Vec<(Args, &str)> = vec![
            (args(|a| a.memory = Some("12Q".into())), "--memory 12Q"),
            (args(|a| a.cpus = Some("-1".into())), "--cpus -1"),
            (args(|a| a.cpus = Some("3".into())), "2 CPUs online"),
            (
                args(|a| a.cpuset = Some("99".into())),
                "CPU 99 is not online (online: 0-1)",
            ),
            (args(|a| a.pids = Some("0".into())), "--pids 0"),
            (args(|a| a.workdir = Some("tmp".into())), "absolute"),
            (
                args(|a| a.memory_swap = Some("1G".into())),
                "needs --memory",
            ),
            (args(|a| a.net = Some("bridge".into())), "--net bridge"),
            (args(|a| a.hostname = Some("a b".into())), "--hostname"),
            (args(|a| a.command.clear()), "no command"),
            (args(|a| a.rootfs = None), "--rootfs DIR is required"),
        ];
        for (a, want) in cases {
            let e = err(a);
            assert!(
                e.contains(want) && !e.contains('\n'),
                "{e:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn the_hosts_root_decides_pivot_or_move() {
        let with = |root| Host { root, ..host() };
        // Any existing directory and file do.
        let args = || {
            args(|a| {
                a.rootfs = Some("/tmp".into());
                a.shim = Some("/proc/self/exe".into());
            })
        };
        let s = check(args(), &with(Root::Pivot)).unwrap();
        assert!(s.pivot);
        assert_eq!(s.security.caps, crate::caps::DEFAULT);
        // An initramfs root: moved, and no chroot(2) to climb back with.
        let s = check(args(), &with(Root::Move)).unwrap();
        assert!(!s.pivot);
        assert_eq!(s.security.caps, crate::caps::base(false, false));
        let e = check(args(), &with(Root::NotAMountPoint))
            .unwrap_err()
            .message;
        assert!(e.contains("not a mount point"), "{e}");
    }

    #[test]
    fn non_root_is_told_rootless_is_not_there_yet() {
        let h = Host {
            is_root: false,
            ..host()
        };
        let e = check(args(|_| {}), &h).unwrap_err().message;
        assert!(e.contains("rootless"), "{e}");
    }

    #[test]
    fn command_lookup_follows_path_order() {
        let c = candidates("sh", "/usr/bin:relative:/bin/").unwrap();
        assert_eq!(
            c,
            [
                CString::new("/usr/bin/sh").unwrap(),
                CString::new("/bin/sh").unwrap()
            ]
        );
        assert_eq!(
            candidates("./x", "/bin").unwrap(),
            [CString::new("./x").unwrap()]
        );
    }

    #[test]
    fn env_overrides_defaults_in_order() {
        let env = environment(&["PATH=/x".into(), "A=1".into(), "A=2".into()], "h").unwrap();
        let env: Vec<&str> = env.iter().map(|e| e.to_str().unwrap()).collect();
        assert!(env.contains(&"PATH=/x") && env.contains(&"A=2") && !env.contains(&"A=1"));
        assert!(env.contains(&"HOSTNAME=h"));
    }
}

//! The command line's front end: from the user's flags and the host's
//! facts to the library's Spec. Every check that can be made before
//! anything is created is made here or in the library's constructors, so
//! that bad input leaves nothing behind.

use std::cell::OnceCell;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use runner::cgroup::{Limits, CPU_PERIOD_US};
use runner::error::{Error, Result};
use runner::hostroot::Root;
use runner::kernel::Missing;
use runner::mounts;
use runner::namespaces::{Kind, Namespaces};
use runner::net::attach as net;
use runner::overlay::Layers;
use runner::rootfs::Rootfs;
use runner::spec::{self, cstring, RootSource, Security, Spec};
use runner::{caps, image, store};

use crate::cli::Args;

/// Host facts the front end depends on, read once; a parameter so that
/// tests can supply their own. What only some flags need is read on first
/// use, off the start-up path of a container that does not use them.
pub struct Host {
    online_cpus: OnceCell<Vec<u32>>,
    pub is_root: bool,
    own_exe: OnceCell<Option<PathBuf>>,
    pub root: Root,
    /// The caller's environment, for `-e KEY` and TERM.
    pub env: fn(&str) -> Option<String>,
    /// Whether stdin and stdout are terminals.
    pub on_terminal: bool,
    pub caps: caps::Available,
}

impl Host {
    pub fn read() -> Host {
        Host {
            online_cpus: OnceCell::new(),
            // SAFETY: geteuid cannot fail.
            is_root: unsafe { libc::geteuid() } == 0,
            own_exe: OnceCell::new(),
            root: runner::hostroot::detect(),
            env: |k| std::env::var(k).ok(),
            // SAFETY: isatty takes an fd number.
            on_terminal: unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 },
            caps: caps::Available::read(),
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

    /// A host for unit tests: root, two CPUs, every capability.
    #[cfg(test)]
    pub fn for_tests() -> Host {
        Host {
            online_cpus: vec![0, 1].into(),
            is_root: true,
            own_exe: None.into(),
            root: Root::Pivot,
            env: |k| (k == "TERM").then(|| "xterm".to_string()),
            on_terminal: false,
            caps: caps::Available {
                known: (1 << 41) - 1,
                held: (1 << 41) - 1,
            },
        }
    }

    /// Where to look for husk-shim when none is built in.
    pub fn own_exe(&self) -> Option<&Path> {
        self.own_exe
            .get_or_init(|| std::env::current_exe().ok())
            .as_deref()
    }
}

/// The spec, and the state store's root.
pub fn spec(args: Args, host: &Host) -> Result<(Spec, PathBuf)> {
    if args.command.is_empty() && args.image.is_none() {
        return Err(no_command());
    }
    let limits = limits(&args, host)?;
    let mut namespaces = Namespaces::default();
    let network = network(&args, &mut namespaces)?;
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(|| spec::DEFAULT_HOSTNAME.into());
    let hostname_c = spec::check_hostname(&hostname).map_err(|e| e.prefixed("--"))?;
    if args.tty && args.no_tty {
        return Err(Error::new("--tty and --no-tty contradict each other"));
    }
    if args.detach && args.interactive && !args.tty {
        return Err(Error::new(
            "-i with -d needs -t: attach types into a detached container's terminal; \
             without one its stdin is /dev/null",
        ));
    }
    if let Some(w) = &args.workdir {
        check_workdir(w, "--workdir")?;
    }
    if let Some(u) = &args.user {
        parse_user(u)?;
    }
    let pivot = host.root == Root::Pivot;
    let security = Security {
        caps: caps::resolve(
            args.privileged,
            caps::default_set(pivot),
            &args.cap_add,
            &args.cap_drop,
            host.caps,
        )?,
        inheritable: 0,
        ambient: 0,
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
    let id = match args.name.clone() {
        Some(name) => {
            store::check_id(&name)?;
            name
        }
        None => store::random_id(),
    };
    let missing = Missing::pretend(&std::env::var("HUSK_PRETEND_ENOSYS").unwrap_or_default())
        .map_err(Error::new)?;

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
    let (root, defaults) = root(&args)?;
    // The image's defaults, under the command line's.
    let command = command(&args.command, &defaults)?;
    let workdir = match (&args.workdir, &defaults.workdir) {
        (Some(w), _) => w.clone(),
        (None, Some(w)) => check_workdir(w, "the image's WorkingDir")?.to_string(),
        (None, None) => "/".into(),
    };
    let workdir = cstring("--workdir", &workdir)?;
    let env = environment(&defaults.env, &args.env, &hostname, host.env)?;
    let argv = command
        .iter()
        .map(|a| cstring("command", a))
        .collect::<Result<Vec<_>>>()?;
    let candidates = spec::candidates(&command[0], &spec::path_of(&env))?;
    let user = match (&args.user, &defaults.user) {
        (Some(u), _) => Some(parse_user(u)?),
        (None, Some(u)) => Some(parse_user(u).map_err(|e| e.prefixed("the image's User: "))?),
        (None, None) => None,
    };
    let mut mounts = Vec::with_capacity(args.volume.len() + args.tmpfs.len());
    for v in &args.volume {
        mounts.push(mounts::volume(v)?);
    }
    for t in &args.tmpfs {
        mounts.push(mounts::tmpfs(t)?);
    }
    mounts::sort(&mut mounts);
    let shim = runner::shim::Source::choose(args.shim.as_deref(), || host.own_exe())?;
    let fail_at_step = std::env::var("HUSK_FAIL_AT_STEP")
        .ok()
        .and_then(|s| s.parse().ok());
    let (masked, read_only_paths) = spec::docker_masks(args.privileged)?;
    let spec = Spec {
        id,
        root,
        mounts,
        devices: Vec::new(),
        id_maps: None,
        read_only: args.read_only,
        image: args.image.clone(),
        user,
        groups: Vec::new(),
        umask: 0o022,
        keep_caps: false,
        hostname: hostname_c,
        env,
        workdir,
        make_workdir: false,
        argv,
        candidates,
        namespaces,
        network,
        limits,
        cgroup_parent: args.cgroup_parent,
        shim,
        security,
        // Detached, only when asked for: nobody is there to type.
        tty: args.tty || (!args.no_tty && !args.detach && host.on_terminal),
        pivot,
        parent_death_signal: true,
        init: args.init,
        masked,
        read_only_paths,
        seccomp_filter: None,
        cgroup_name: None,
        sysctls: Vec::new(),
        root_propagation: 0,
        rlimits: Vec::new(),
        oom_score_adj: None,
        await_start: None,
        preserve_fds: Vec::new(),
        fail_at_step,
        missing,
    };
    let root = PathBuf::from(args.root.as_deref().unwrap_or(store::DEFAULT_ROOT));
    Ok((spec, root))
}

/// `--net` and the flags of a bridge network: the namespace to join or
/// share, or the network to connect a new one to.
fn network(args: &Args, namespaces: &mut Namespaces) -> Result<Option<net::Request>> {
    let net = args.net.as_deref().unwrap_or("none");
    let mut join = |path: &str| {
        namespaces
            .join(Kind::Net, path)
            .map_err(|e| Error::new(format!("--net {net}: {}", e.message)))
    };
    let network = match net {
        "none" => None,
        "host" => {
            namespaces.host(Kind::Net)?;
            None
        }
        _ if net.starts_with("ns:") => {
            join(&net[3..])?;
            None
        }
        _ if net.starts_with("container:") => {
            let root = Path::new(args.root.as_deref().unwrap_or(store::DEFAULT_ROOT));
            let id = &net[10..];
            // A name, never a path out of the store.
            store::check_id(id).map_err(|e| e.prefixed(&format!("--net {net}: ")))?;
            let st = store::read(&root.join(id))
                .ok()
                .filter(|s| s.status == store::Status::Running && s.pid > 0)
                .ok_or_else(|| Error::new(format!("--net {net}: no running container {id}")))?;
            join(&format!("/proc/{}/ns/net", st.pid))?;
            // The PID may have ended and been given to another process
            // before the open: its start time says.
            if !runner::process::kill_if_same(st.pid, st.pid_start, 0) {
                return Err(Error::new(format!("--net {net}: it ended meanwhile")));
            }
            None
        }
        "bridge" => Some(runner::net::pool::DEFAULT),
        _ if net.starts_with("cni:") => {
            let name = &net[4..];
            if name.is_empty() || args.ip.is_some() {
                return Err(Error::new(format!(
                    "--net {net}: a CNI network needs a name, and takes no --ip (its IPAM \
                     config picks the address)"
                )));
            }
            Some(name)
        }
        name => Some(name),
    };
    let Some(name) = network else {
        if !args.publish.is_empty() || args.ip.is_some() || !args.dns.is_empty() {
            return Err(Error::new(format!(
                "-p, --ip and --dns need a bridge or CNI network (--net bridge, NAME or cni:NAME), not --net {net}"
            )));
        }
        return Ok(None);
    };
    let ip = match &args.ip {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| Error::new(format!("--ip {ip}: not an IPv4 address")))?,
        ),
        None => None,
    };
    let dns = args
        .dns
        .iter()
        .map(|d| {
            d.parse()
                .map_err(|_| Error::new(format!("--dns {d}: not an IP address")))
        })
        .collect::<Result<_>>()?;
    Ok(Some(net::Request {
        network: name.to_string(),
        via: if net.starts_with("cni:") {
            net::Via::Cni
        } else {
            net::Via::Bridge { ip }
        },
        ports: args
            .publish
            .iter()
            .map(|p| net::parse_port(p))
            .collect::<Result<_>>()?,
        dns,
    }))
}

/// What an image gives a container unless the command line says
/// otherwise.
#[derive(Default)]
struct Defaults {
    env: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
}

/// The command line's command, after the image's entrypoint; the image's
/// command when none is given (Docker's rule).
fn command(given: &[String], defaults: &Defaults) -> Result<Vec<String>> {
    let rest = if given.is_empty() {
        &defaults.cmd
    } else {
        given
    };
    let command: Vec<String> = defaults.entrypoint.iter().chain(rest).cloned().collect();
    if command.is_empty() {
        return Err(no_command());
    }
    Ok(command)
}

fn no_command() -> Error {
    Error::new("no command given: put it after --, e.g. runner --rootfs DIR -- /bin/sh")
}

fn check_workdir<'a>(w: &'a str, what: &str) -> Result<&'a str> {
    if w.starts_with('/') {
        Ok(w)
    } else {
        Err(Error::new(format!(
            "{what} {w}: must be an absolute path inside the container"
        )))
    }
}

/// The root: --rootfs DIR, an overlay of --layer DIRs, or of an image's
/// layers (with the image's defaults); exactly one.
fn root(args: &Args) -> Result<(RootSource, Defaults)> {
    let given = [
        args.rootfs.is_some(),
        !args.layer.is_empty(),
        args.image.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(Error::new(
            "--rootfs, --layer and --image contradict each other: give one",
        ));
    }
    if let Some(name) = &args.image {
        return image_root(name, args.store.as_deref());
    }
    if let Some(dir) = &args.rootfs {
        return Ok((RootSource::Dir(Rootfs::open(dir)?), Defaults::default()));
    }
    if args.layer.is_empty() {
        return Err(Error::new(
            "--rootfs DIR is required (or --image NAME, or --layer DIR)",
        ));
    }
    let paths: Vec<PathBuf> = args.layer.iter().map(PathBuf::from).collect();
    let label = format!("{} layers", paths.len());
    let layers = Layers::open(&paths, "--layer", label)?;
    Ok((RootSource::Overlay(layers), Defaults::default()))
}

/// An image's layers, opened under the image store's shared lock, which
/// the layers hold until the container's entry names the image (so that
/// `rmi` sees it in use).
fn image_root(name: &str, store: Option<&str>) -> Result<(RootSource, Defaults)> {
    let dir = PathBuf::from(store.unwrap_or(image::DEFAULT_STORE));
    let images = image::Store::open(&dir)?;
    let lock = images.shared_lock()?;
    let img = images.image(name)?;
    let paths: Vec<PathBuf> = img.layers.iter().map(|d| images.layer_dir(d)).collect();
    let mut layers = Layers::open(&paths, "--image", format!("image {name}"))?;
    layers.lock = Some(lock);
    let c = img.config;
    let defaults = Defaults {
        env: c.env,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        workdir: c.workdir.filter(|w| !w.is_empty()),
        user: c.user.filter(|u| !u.is_empty()),
    };
    Ok((RootSource::Overlay(layers), defaults))
}

/// `UID[:GID]`, as numbers; the group 0 when not given.
pub fn parse_user(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::new(format!("--user {s}: expected UID or UID:GID, as numbers"));
    let (uid, gid) = s.split_once(':').unwrap_or((s, "0"));
    Ok((
        uid.parse().map_err(|_| bad())?,
        gid.parse().map_err(|_| bad())?,
    ))
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
            // CPUs in 1/100000ths (µs of quota per period): no floats.
            let quota = decimal(v, CPU_PERIOD_US)
                .filter(|&q| q > 0)
                .ok_or_else(|| {
                    Error::new(format!(
                        "--cpus {v}: expected a positive number of CPUs, e.g. 0.5"
                    ))
                })?;
            if quota > ncpus as u64 * CPU_PERIOD_US {
                return Err(Error::new(format!(
                    "--cpus {v}: this host has {ncpus} CPUs online"
                )));
            }
            // The kernel refuses quotas under 1 ms per period.
            Some(quota.max(1000))
        }
    };
    let cpu_shares = args
        .cpu_shares
        .as_deref()
        .map(|v| number("--cpu-shares", v, 2, 262_144))
        .transpose()?;
    let cpuset = args
        .cpuset
        .as_deref()
        .map(|v| cpuset(v, host).map_err(|e| e.prefixed("--cpuset ")))
        .transpose()?;
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
        cpu_period_us: None,
        extra: Vec::new(),
    })
}

/// "64M", "1g", "512k", "4096": bytes.
/// A decimal number ("1", "0.25", ".5") times `scale` (a power of ten),
/// rounded to the nearest integer.
pub fn decimal(v: &str, scale: u64) -> Option<u64> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    // Each fractional digit is worth scale/10, scale/100, ...; the first
    // beyond the scale rounds.
    let (mut part, mut unit) = (0u64, scale);
    for d in frac.bytes().map(|b| u64::from(b - b'0')) {
        unit /= 10;
        if unit == 0 {
            part += u64::from(d >= 5);
            break;
        }
        part += d * unit;
    }
    whole.checked_mul(scale)?.checked_add(part)
}

/// A CPU list of online CPUs, normalised.
pub fn cpuset(v: &str, host: &Host) -> Result<String> {
    let cpus = parse_cpu_list(v)
        .ok_or_else(|| Error::new(format!("{v}: expected a CPU list such as 0-2,4")))?;
    let online = host.online_cpus();
    if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
        let online = format_cpu_list(online);
        return Err(Error::new(format!(
            "{v}: CPU {bad} is not online (online: {online})"
        )));
    }
    Ok(format_cpu_list(&cpus))
}

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

/// The container's environment: defaults, the caller's TERM, then -e in
/// order (later wins).
fn environment(
    image: &[String],
    vars: &[String],
    hostname: &str,
    caller: fn(&str) -> Option<String>,
) -> Result<Vec<CString>> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), spec::DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    if let Some(term) = caller("TERM") {
        env.push(("TERM".into(), term));
    }
    let from_image = image
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()));
    for (key, value) in from_image.chain(env_flags(vars, caller)?) {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    env.into_iter()
        .map(|(k, v)| cstring("--env", &format!("{k}={v}")))
        .collect()
}

/// `-e` flags as (KEY, VALUE), in order: `KEY=VALUE`, or `KEY` for the
/// caller's own value.
pub fn env_flags(
    vars: &[String],
    caller: fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for var in vars {
        let (key, value) = match var.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match caller(var) {
                Some(v) => (var.clone(), v),
                // Docker's rule: a name without a value that the runner does not have is left out.
                None => continue,
            },
        };
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(Error::new(format!("--env {var}: expected KEY=VALUE")));
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host::for_tests()
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
        match spec(a, &host()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.message,
        }
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
    fn decimals_without_floats() {
        assert_eq!(decimal("1", 100_000), Some(100_000));
        assert_eq!(decimal("0.5", 100_000), Some(50_000));
        assert_eq!(decimal(".25", 100_000), Some(25_000));
        assert_eq!(decimal("1.000006", 100_000), Some(100_001));
        assert_eq!(decimal("2.", 100_000), Some(200_000));
        for bad in ["", ".", "-1", "1e3", "a", "1.2.3", "nan"] {
            assert_eq!(decimal(bad, 100_000), None, "{bad}");
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
            (
                args(|a| a.net = Some("cni:".into())),
                "--net cni:: a CNI network needs a name",
            ),
            (
                args(|a| a.net = Some("container:../x".into())),
                "--net container:../x: --name ../x: expected",
            ),
            (
                args(|a| a.publish = vec!["8080:80".into()]),
                "-p, --ip and --dns need a bridge or CNI network",
            ),
            (
                args(|a| {
                    a.net = Some("bridge".into());
                    a.publish = vec!["1:2:3".into()];
                }),
                "-p 1:2:3: the host address is not an IPv4 address",
            ),
            (
                args(|a| {
                    a.net = Some("bridge".into());
                    a.dns = vec!["x".into()];
                }),
                "--dns x: not an IP address",
            ),
            (
                args(|a| a.net = Some("ns:/nonexistent".into())),
                "--net ns:/nonexistent: open the net namespace",
            ),
            (args(|a| a.hostname = Some("a b".into())), "--hostname"),
            (args(|a| a.name = Some("a/b".into())), "--name a/b"),
            (args(|a| a.command.clear()), "no command"),
            (args(|a| a.rootfs = None), "--rootfs DIR is required"),
            (args(|a| a.rootfs = Some("/".into())), "the host's own root"),
            (
                args(|a| a.rootfs = Some("/etc/passwd".into())),
                "not a directory",
            ),
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
    fn the_hosts_root_decides_pivot_or_chroot() {
        let with = |root| Host { root, ..host() };
        // Any existing directory and file do.
        let args = || {
            args(|a| {
                a.rootfs = Some("/tmp".into());
                a.shim = Some("/proc/self/exe".into());
            })
        };
        let (s, _) = spec(args(), &with(Root::Pivot)).unwrap();
        assert!(s.pivot);
        assert_eq!(s.security.caps, caps::DEFAULT);
        // An initramfs root: chrooted, and no chroot(2) to climb back with.
        let (s, _) = spec(args(), &with(Root::Move)).unwrap();
        assert!(!s.pivot);
        assert_eq!(s.security.caps, caps::default_set(false));
        let e = spec(args(), &with(Root::NotAMountPoint)).err().unwrap();
        assert!(e.message.contains("not a mount point"), "{e}");
    }

    #[test]
    fn non_root_is_told_rootless_is_not_there_yet() {
        let h = Host {
            is_root: false,
            ..host()
        };
        let e = spec(args(|_| {}), &h).err().unwrap().message;
        assert!(e.contains("rootless"), "{e}");
    }

    #[test]
    fn env_overrides_defaults_in_order() {
        let caller = |k: &str| (k == "TERM").then(|| "xterm".to_string());
        // The image's environment first, then the flags'.
        let env = environment(
            &["A=0".into(), "B=image".into()],
            &["PATH=/x".into(), "A=1".into(), "A=2".into(), "NOPE".into()],
            "h",
            caller,
        )
        .unwrap();
        let env: Vec<&str> = env.iter().map(|e| e.to_str().unwrap()).collect();
        assert!(env.contains(&"PATH=/x") && env.contains(&"A=2") && !env.contains(&"A=1"));
        assert!(env.contains(&"B=image") && !env.contains(&"A=0"));
        assert!(env.contains(&"HOSTNAME=h") && env.contains(&"TERM=xterm"));
        assert!(!env.iter().any(|e| e.starts_with("NOPE")));
    }
}

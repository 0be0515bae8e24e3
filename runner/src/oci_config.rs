//! An OCI bundle's config.json as the library's Spec: the second front end
//! beside the command line (front.rs). What husk does not support is an
//! error naming the field, never quietly left out; what it does beyond the
//! config (every mount nodev, a cgroup namespace always, Docker's device
//! nodes) only narrows what the container can do.

use std::path::{Path, PathBuf};

use runner::cgroup::{Extra, Limits};
use runner::error::{Error, Result};
use runner::hostroot::Root;
use std::ffi::CString;

use runner::json::{self, Value};
use runner::kernel::Missing;
use runner::namespaces::{Kind, Namespaces};
use runner::rootfs::Rootfs;
use runner::spec::{self, cstring, RootSource, Security, Spec};
use runner::userns::{IdMaps, Range};
use runner::{caps, process};
use shim::plan::ms;

use crate::front::Host;

/// The config's limit: a bundle's config is a few KB.
const MAX_CONFIG: u64 = 4 << 20;

/// What the config gives beyond the spec: the annotations, recorded in
/// the state.
pub struct Config {
    pub spec: Spec,
    pub annotations: Vec<(String, String)>,
    /// `hooks` and `linux.seccomp`, checked, as JSON text ("" for none).
    pub hooks: String,
    pub seccomp_profile: String,
}

pub(crate) fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::new(format!("config.json: {field}: {why}"))
}

pub(crate) fn unsupported(field: &str) -> Error {
    bad(field, "not supported by husk")
}

/// Fields a container can do without: absent, null, or empty.
fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(_)) => false,
    }
}

/// Every key of `obj` is one of `known`, or empty.
pub(crate) fn only(obj: &Value, at: &str, known: &[&str]) -> Result<()> {
    for (k, v) in obj.as_object().unwrap_or_default() {
        if !known.contains(&k.as_str()) && !empty(Some(v)) {
            return Err(unsupported(&format!("{at}.{k}")));
        }
    }
    Ok(())
}

pub(crate) fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| bad(field, "expected a string"))
}

pub(crate) fn strings<'a>(v: Option<&'a Value>, field: &str) -> Result<Vec<&'a str>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => v
            .as_array()
            .ok_or_else(|| bad(field, "expected a list"))?
            .iter()
            .map(|s| string(s, field))
            .collect(),
    }
}

pub(crate) fn uint(v: Option<&Value>, field: &str) -> Result<Option<u64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(field, "expected a number of 0 or more")),
    }
}

pub fn read(bundle: &Path, id: &str, host: &Host) -> Result<Config> {
    let path = bundle.join("config.json");
    let text = read_bounded(&path)?;
    let v = json::parse(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let shim = runner::shim::Source::choose(None, || host.own_exe())?;
    parse(&v, bundle, id, host, shim)
}

/// Opened once: the size checked and the text read on the same fd.
fn read_bounded(path: &Path) -> Result<String> {
    use std::io::Read;
    let err = |e| Error::os(format_args!("read {}", path.display()), &e);
    let mut f = std::fs::File::open(path).map_err(err)?;
    if f.metadata().map_err(err)?.len() > MAX_CONFIG {
        return Err(Error::new(format!(
            "{}: bigger than {MAX_CONFIG} bytes",
            path.display()
        )));
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(err)?;
    Ok(text)
}

pub fn parse(
    v: &Value,
    bundle: &Path,
    id: &str,
    host: &Host,
    shim: runner::shim::Source,
) -> Result<Config> {
    // The spec's other platforms are refused; a property the spec does
    // not define is ignored, as the spec requires of a runtime.
    for k in ["solaris", "windows", "vm", "zos"] {
        if !empty(v.get(k)) {
            return Err(unsupported(k));
        }
    }
    let version = v.get("ociVersion").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("1.") {
        return Err(bad("ociVersion", format!("{version:?}: expected 1.x")));
    }
    if !host.is_root {
        return Err(Error::new(
            "must be run as root: rootless mode is not available yet",
        ));
    }
    if host.root == Root::NotAMountPoint {
        return Err(Error::new(
            "/ is not a mount point (is the runner chrooted?)",
        ));
    }
    let null = Value::Null;
    let linux = v.get("linux").unwrap_or(&null);
    only(
        linux,
        "linux",
        &[
            "namespaces",
            "resources",
            "cgroupsPath",
            "maskedPaths",
            "readonlyPaths",
            "rootfsPropagation",
            "seccomp",
            "sysctl",
            "devices",
            "uidMappings",
            "gidMappings",
        ],
    )?;
    let process = v
        .get("process")
        .ok_or_else(|| bad("process", "missing: create needs a process"))?;
    only(
        process,
        "process",
        &[
            "args",
            "env",
            "cwd",
            "terminal",
            "user",
            "capabilities",
            "noNewPrivileges",
            "rlimits",
            "oomScoreAdj",
            "consoleSize",
        ],
    )?;
    let root = v.get("root").ok_or_else(|| bad("root", "missing"))?;
    only(root, "root", &["path", "readonly"])?;
    let root_path = string(root.get("path").unwrap_or(&null), "root.path")?;
    let root_path = bundle.join(root_path);

    let namespaces = namespaces(linux.get("namespaces"))?;
    let hostname = match v.get("hostname") {
        None | Some(Value::Null) => uname_nodename(),
        Some(h) => string(h, "hostname")?.to_string(),
    };
    let hostname_c = if hostname.is_empty() {
        spec::check_hostname(spec::DEFAULT_HOSTNAME)?
    } else {
        spec::check_hostname(&hostname).map_err(|e| e.prefixed("config.json: "))?
    };
    if !empty(v.get("hostname"))
        && matches!(namespaces.mode(Kind::Uts), runner::namespaces::Mode::Host)
    {
        return Err(bad(
            "hostname",
            "would change the host's: needs a UTS namespace",
        ));
    }

    let proc = self::process(process, host)?;
    let env = proc
        .env
        .iter()
        .map(|(k, v)| cstring("process.env", &format!("{k}={v}")))
        .collect::<Result<Vec<_>>>()?;
    let [caps, inheritable, ambient] = proc.caps;
    let rlimits = rlimits(process.get("rlimits"))?;
    let oom_score_adj = match process.get("oomScoreAdj") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_i64()
                .filter(|a| (-1000..=1000).contains(a))
                .ok_or_else(|| bad("process.oomScoreAdj", "expected -1000 to 1000"))?
                as i32,
        ),
    };
    let seccomp_filter = match linux.get("seccomp") {
        None | Some(Value::Null) => None,
        Some(profile) => {
            Some(runner::seccomp::profile::compile(profile).map_err(|e| bad("linux.seccomp", e))?)
        }
    };
    let privileged = false;
    let security = Security {
        caps,
        inheritable,
        ambient,
        privileged,
        no_new_privs: proc.no_new_privs,
        seccomp: false,
    };
    // After husk's slave: shared lets the container's mounts reach its
    // own peers (never the host, its master); private cuts what the host
    // mounts from reaching it.
    let root_propagation = match linux.get("rootfsPropagation").and_then(Value::as_str) {
        None | Some("" | "slave" | "rslave") => 0,
        Some("shared" | "rshared") => ms::SHARED,
        Some("private" | "rprivate") => ms::PRIVATE,
        Some("unbindable" | "runbindable") => ms::UNBINDABLE,
        Some(other) => {
            return Err(bad(
                "linux.rootfsPropagation",
                format!("{other}: expected shared, slave, private or unbindable"),
            ))
        }
    };
    let sysctls = sysctls(linux.get("sysctl"), &namespaces)?;
    let (limits, cgroup) = resources(linux, host)?;
    let (cgroup_parent, cgroup_name) = match cgroup {
        // From each hierarchy's root, as the spec says of an absolute
        // path (and runc does of a relative one).
        Some((parent, name)) => (Some(parent), Some(name)),
        // In a PID namespace not its own, nothing ends the container's
        // processes with its first: a cgroup of its own is how `delete`
        // and `kill --all` find them all.
        None if !namespaces.is_new(Kind::Pid) => (None, Some(format!("husk-{id}"))),
        None => (None, None),
    };
    let mounts = crate::oci_mounts::mounts(v.get("mounts"))?;
    let devices = crate::oci_mounts::devices(linux.get("devices"))?;
    let id_maps = id_maps(linux, &namespaces)?;
    if id_maps.is_some() {
        // mknod is refused in a user namespace.
        if !devices.is_empty() {
            return Err(bad("linux.devices", "not supported with a user namespace"));
        }
        // The mounts husk hands the container (its rootfs, volumes) are
        // attached from outside, not copied into its user namespace, so
        // the kernel does not lock their flags: with CAP_SYS_ADMIN there
        // it could remount them writable or with devices.
        if caps & runner::caps::SYS_ADMIN != 0 {
            return Err(bad(
                "process.capabilities",
                "CAP_SYS_ADMIN with a user namespace: not supported (husk's mounts are not \
                 locked against it there)",
            ));
        }
    }
    let masked = spec::root_paths(
        "linux.maskedPaths",
        &strings(linux.get("maskedPaths"), "linux.maskedPaths")?,
    )?;
    let read_only_paths = spec::root_paths(
        "linux.readonlyPaths",
        &strings(linux.get("readonlyPaths"), "linux.readonlyPaths")?,
    )?;
    let annotations = v
        .get("annotations")
        .and_then(Value::as_object)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| Ok((k.clone(), string(v, "annotations")?.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let argv = proc
        .args
        .iter()
        .map(|a| cstring("process.args", a))
        .collect::<Result<Vec<_>>>()?;
    let candidates = spec::candidates(&proc.args[0], &spec::path_of(&env))?;
    let missing = Missing::pretend(&std::env::var("HUSK_PRETEND_ENOSYS").unwrap_or_default())
        .map_err(Error::new)?;
    let spec = Spec {
        id: id.to_string(),
        root: RootSource::Dir(Rootfs::open(&root_path.display().to_string())?),
        mounts,
        devices,
        id_maps,
        read_only: root
            .get("readonly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        image: None,
        user: Some(proc.user),
        groups: proc.groups,
        umask: proc.umask,
        keep_caps: true,
        hostname: hostname_c,
        env,
        workdir: cstring("process.cwd", &proc.cwd)?,
        make_workdir: true,
        argv,
        candidates,
        namespaces,
        network: None,
        limits,
        cgroup_parent,
        cgroup_name,
        shim,
        security,
        tty: process.get("terminal").and_then(Value::as_bool) == Some(true),
        pivot: host.root == Root::Pivot,
        // The caller's subreaper reaps PID 1, which outlives `create`.
        parent_death_signal: false,
        init: false,
        masked,
        read_only_paths,
        seccomp_filter,
        sysctls,
        root_propagation,
        rlimits,
        oom_score_adj,
        await_start: None,
        preserve_fds: Vec::new(),
        fail_at_step: None,
        missing,
    };
    let hooks = match v.get("hooks") {
        None | Some(Value::Null) => String::new(),
        Some(h) => {
            only(h, "hooks", &runner::hooks::STAGES)?;
            for stage in runner::hooks::STAGES {
                runner::hooks::of(h, stage).map_err(|e| Error::new(format!("config.json: {e}")))?;
            }
            h.to_json()
        }
    };
    let seccomp_profile = match linux.get("seccomp") {
        None | Some(Value::Null) => String::new(),
        Some(p) => p.to_json(),
    };
    Ok(Config {
        spec,
        annotations,
        hooks,
        seccomp_profile,
    })
}

/// linux.sysctl: only those of a namespace the container has of its own
/// (IPC's kernel.msg*, sem, shm* and fs.mqueue.*, the network's net.*, the
/// UTS hostname and domainname), as runc allows; a host-wide one is
/// refused by name.
fn sysctls(v: Option<&Value>, ns: &Namespaces) -> Result<Vec<(CString, CString)>> {
    let mut out = Vec::new();
    for (key, value) in v.and_then(Value::as_object).unwrap_or_default() {
        let field = format!("linux.sysctl {key}");
        let value = string(value, &field)?;
        let ipc = matches!(
            key.as_str(),
            "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced"
        ) || key.starts_with("fs.mqueue.");
        let kind = if ipc {
            Kind::Ipc
        } else if key.starts_with("net.") {
            Kind::Net
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Kind::Uts
        } else {
            return Err(bad(
                &field,
                "not a namespaced sysctl: it would change the host",
            ));
        };
        // The container's own, or one its caller made for it (a joined
        // network namespace): never the host's.
        if matches!(ns.mode(kind), runner::namespaces::Mode::Host) {
            return Err(bad(
                &field,
                "needs a namespace of the container's own for it",
            ));
        }
        let clean = key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !clean || key.contains("..") {
            return Err(bad(&field, "not a sysctl name"));
        }
        out.push((
            cstring(&field, &format!("proc/sys/{}", key.replace('.', "/")))?,
            cstring(&field, value)?,
        ));
    }
    Ok(out)
}

/// process.user: (uid, gid), the supplementary groups, the umask (022
/// unless given).
fn user(process: &Value) -> Result<((u32, u32), Vec<u32>, u32)> {
    let null_user = Value::Null;
    let u = process.get("user").unwrap_or(&null_user);
    only(
        u,
        "process.user",
        &["uid", "gid", "additionalGids", "umask"],
    )?;
    let user_id = |k: &str| -> Result<u32> {
        let v = uint(u.get(k), &format!("process.user.{k}"))?.unwrap_or(0);
        u32::try_from(v).map_err(|_| bad(&format!("process.user.{k}"), "above 2^32"))
    };
    let ids = (user_id("uid")?, user_id("gid")?);
    let umask = match uint(u.get("umask"), "process.user.umask")? {
        None => 0o022,
        Some(m) if m <= 0o777 => m as u32,
        Some(m) => return Err(bad("process.user.umask", format!("{m:#o}: above 0777"))),
    };
    let groups = match u.get("additionalGids") {
        None | Some(Value::Null) => Vec::new(),
        Some(g) => g
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(|g| {
                g.as_u64()
                    .and_then(|g| u32::try_from(g).ok())
                    .ok_or_else(|| bad("process.user.additionalGids", "expected gids"))
            })
            .collect::<Result<Vec<_>>>()?,
    };
    Ok((ids, groups, umask))
}

/// An OCI `exec --process` file: a config's `process` object alone.
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub user: (u32, u32),
    pub groups: Vec<u32>,
    pub umask: u32,
    pub caps: [u64; 3],
    pub no_new_privs: bool,
    pub terminal: bool,
}

pub fn process_file(path: &Path, host: &Host) -> Result<Process> {
    let text = read_bounded(path)?;
    let p = json::parse(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    process(&p, host)
}

/// A `process` object: a config's, or `exec --process`'s.
fn process(p: &Value, host: &Host) -> Result<Process> {
    let (user, groups, umask) = user(p)?;
    let args: Vec<String> = strings(p.get("args"), "process.args")?
        .iter()
        .map(|s| s.to_string())
        .collect();
    if args.is_empty() {
        return Err(bad("process.args", "empty: nothing to run"));
    }
    let cwd = p.get("cwd").and_then(Value::as_str).unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(bad("process.cwd", format!("{cwd}: must be absolute")));
    }
    Ok(Process {
        args,
        env: strings(p.get("env"), "process.env")?
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cwd: cwd.to_string(),
        user,
        groups,
        umask,
        caps: capabilities(p.get("capabilities"), host)?,
        no_new_privs: p.get("noNewPrivileges").and_then(Value::as_bool) == Some(true),
        terminal: p.get("terminal").and_then(Value::as_bool) == Some(true),
    })
}

fn uname_nodename() -> String {
    // SAFETY: uname fills the struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: the kernel NUL-terminates nodename.
    unsafe { std::ffi::CStr::from_ptr(u.nodename.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// A kind listed is the container's own, or joined by `path`; one not
/// listed is the host's (mount and cgroup must be listed: husk makes them
/// always). A user namespace is new or the host's.
fn namespaces(list: Option<&Value>) -> Result<Namespaces> {
    let mut ns = Namespaces::default();
    let kinds = [
        ("user", Kind::User),
        ("pid", Kind::Pid),
        ("network", Kind::Net),
        ("ipc", Kind::Ipc),
        ("uts", Kind::Uts),
        ("mount", Kind::Mount),
        ("cgroup", Kind::Cgroup),
    ];
    let entries = list.and_then(Value::as_array).unwrap_or_default();
    let mut listed = Vec::new();
    for e in entries {
        let t = string(
            e.get("type").unwrap_or(&Value::Null),
            "linux.namespaces.type",
        )?;
        let Some(&(_, kind)) = kinds.iter().find(|(n, _)| *n == t) else {
            return Err(unsupported(&format!("linux.namespaces {t}")));
        };
        let path = e
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        match (path, kind) {
            (Some(_), Kind::User) => return Err(unsupported("linux.namespaces user with a path")),
            (Some(path), _) => ns
                .join(kind, path)
                .map_err(|er| bad("linux.namespaces", er.message))?,
            (None, _) => ns.new_one(kind),
        }
        listed.push(kind);
    }
    for (name, kind) in kinds {
        if !listed.contains(&kind) && kind != Kind::Cgroup {
            ns.host(kind)
                .map_err(|e| bad(&format!("linux.namespaces ({name} missing)"), e.message))?;
        }
    }
    Ok(ns)
}

/// `linux.uidMappings` and `gidMappings`, which come with a user namespace
/// of the container's own, and it with them.
fn id_maps(linux: &Value, ns: &Namespaces) -> Result<Option<IdMaps>> {
    let ranges = |field: &str| -> Result<Vec<Range>> {
        let at = format!("linux.{field}");
        let mut out = Vec::new();
        for r in linux
            .get(field)
            .and_then(Value::as_array)
            .unwrap_or_default()
        {
            only(r, &at, &["containerID", "hostID", "size"])?;
            let n = |k: &str| -> Result<u32> {
                let n = uint(r.get(k), &at)?.ok_or_else(|| bad(&at, format!("{k} missing")))?;
                u32::try_from(n).map_err(|_| bad(&at, format!("{k}: too big")))
            };
            out.push(Range {
                container: n("containerID")?,
                host: n("hostID")?,
                size: n("size")?,
            });
        }
        Ok(out)
    };
    let maps = IdMaps {
        uid: ranges("uidMappings")?,
        gid: ranges("gidMappings")?,
    };
    let mapped = !(maps.uid.is_empty() && maps.gid.is_empty());
    match (ns.is_new(Kind::User), mapped) {
        (false, false) => Ok(None),
        (false, true) => Err(bad(
            "linux.uidMappings",
            "needs a user namespace in linux.namespaces",
        )),
        (true, false) => Err(bad(
            "linux.namespaces",
            "a user namespace needs linux.uidMappings and gidMappings",
        )),
        (true, true) => {
            maps.check()
                .map_err(|e| Error::new(format!("config.json: linux.{e}")))?;
            Ok(Some(maps))
        }
    }
}

/// The bounding set, which the effective and permitted sets must equal
/// (husk keeps one set), and the inheritable and ambient sets.
fn capabilities(v: Option<&Value>, host: &Host) -> Result<[u64; 3]> {
    let Some(v) = v.filter(|v| !empty(Some(v))) else {
        return Ok([0; 3]);
    };
    only(
        v,
        "process.capabilities",
        &[
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ],
    )?;
    let set = |k: &str| -> Result<u64> {
        let field = format!("process.capabilities.{k}");
        let names: Vec<String> = strings(v.get(k), &field)?
            .iter()
            .map(|s| s.to_string())
            .collect();
        caps::resolve(false, 0, &names, &[], host.caps).map_err(|e| bad(&field, e.message))
    };
    let bounding = set("bounding")?;
    for k in ["effective", "permitted"] {
        if set(k)? != bounding {
            return Err(bad(
                &format!("process.capabilities.{k}"),
                "differs from the bounding set; husk gives one set",
            ));
        }
    }
    let inheritable = set("inheritable")?;
    let mut ambient = set("ambient")?;
    // The kernel raises an ambient capability only if it is permitted and
    // inheritable; runc warns of the others and goes on, and so does husk
    // (runc spec's own config lists ambient ones, not inheritable ones).
    if ambient & !(bounding & inheritable) != 0 {
        eprintln!(
            "runner: warning: process.capabilities.ambient: those not also permitted and \
             inheritable are not raised (the kernel would refuse them)"
        );
        ambient &= bounding & inheritable;
    }
    Ok([bounding, inheritable, ambient])
}

fn rlimits(v: Option<&Value>) -> Result<Vec<(u32, u64, u64)>> {
    let mut out = Vec::new();
    for r in v.and_then(Value::as_array).unwrap_or_default() {
        let t = string(
            r.get("type").unwrap_or(&Value::Null),
            "process.rlimits.type",
        )?;
        let Some(resource) = process::RLIMITS.iter().position(|n| *n == t) else {
            return Err(bad("process.rlimits", format!("{t}: not a resource limit")));
        };
        let soft = uint(r.get("soft"), "process.rlimits.soft")?.unwrap_or(0);
        let hard = uint(r.get("hard"), "process.rlimits.hard")?.unwrap_or(0);
        if soft > hard {
            return Err(bad("process.rlimits", format!("{t}: soft above hard")));
        }
        out.push((resource as u32, soft, hard));
    }
    Ok(out)
}

/// linux.resources and linux.cgroupsPath: the limits, and the cgroup's
/// parent and name.
fn resources(linux: &Value, host: &Host) -> Result<(Limits, Option<(String, String)>)> {
    let null = Value::Null;
    let r = linux.get("resources").unwrap_or(&null);
    only(r, "linux.resources", &["memory", "cpu", "pids", "devices"])?;
    let mut l = Limits::default();
    let memory = r.get("memory").unwrap_or(&null);
    only(
        memory,
        "linux.resources.memory",
        &[
            "limit",
            "swap",
            "reservation",
            "swappiness",
            "disableOOMKiller",
            "kernel",
            "kernelTCP",
        ],
    )?;
    let signed = |v: Option<&Value>, f: &str| -> Result<Option<i64>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(f, "expected a number")),
        }
    };
    let mut extra = Vec::new();
    let mut add = |controller, v1, v2, value: Option<String>| {
        if let Some(value) = value {
            extra.push(Extra {
                controller,
                v1,
                v2,
                value,
            });
        }
    };
    let positive = |v: Option<i64>| v.filter(|&n| n > 0).map(|n| n.to_string());
    add(
        "memory",
        "memory.soft_limit_in_bytes",
        Some("memory.low"),
        positive(signed(
            memory.get("reservation"),
            "linux.resources.memory.reservation",
        )?),
    );
    add(
        "memory",
        "memory.swappiness",
        None,
        uint(
            memory.get("swappiness"),
            "linux.resources.memory.swappiness",
        )?
        .filter(|&s| s <= 100)
        .map(|s| s.to_string()),
    );
    if memory.get("disableOOMKiller").and_then(Value::as_bool) == Some(true) {
        add("memory", "memory.oom_control", None, Some("1".into()));
    }
    // As runc: kernel memory limits went from the kernel (5.16, and
    // deprecated since 5.4); taken, never applied, and said so.
    if !empty(memory.get("kernel")) || !empty(memory.get("kernelTCP")) {
        eprintln!(
            "runner: warning: linux.resources.memory.kernel and kernelTCP are not applied: \
             kernels no longer limit kernel memory"
        );
    }
    l.memory = signed(memory.get("limit"), "linux.resources.memory.limit")?
        .filter(|&m| m > 0)
        .map(|m| m as u64);
    l.memory_swap = match signed(memory.get("swap"), "linux.resources.memory.swap")? {
        None => None,
        Some(-1) => Some(None),
        Some(s) if s > 0 => Some(Some(s as u64)),
        Some(s) => return Err(bad("linux.resources.memory.swap", format!("{s}"))),
    };
    let cpu = r.get("cpu").unwrap_or(&null);
    only(
        cpu,
        "linux.resources.cpu",
        &[
            "shares",
            "quota",
            "period",
            "cpus",
            "mems",
            "realtimePeriod",
            "realtimeRuntime",
        ],
    )?;
    add(
        "cpu",
        "cpu.rt_period_us",
        None,
        uint(
            cpu.get("realtimePeriod"),
            "linux.resources.cpu.realtimePeriod",
        )?
        .map(|v| v.to_string()),
    );
    add(
        "cpu",
        "cpu.rt_runtime_us",
        None,
        signed(
            cpu.get("realtimeRuntime"),
            "linux.resources.cpu.realtimeRuntime",
        )?
        .map(|v| v.to_string()),
    );
    let mems = cpu
        .get("mems")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    if let Some(m) = mems {
        if crate::front::parse_cpu_list(m).is_none() {
            return Err(bad(
                "linux.resources.cpu.mems",
                format!("{m}: expected a list such as 0-1"),
            ));
        }
        add(
            "cpuset",
            "cpuset.mems",
            Some("cpuset.mems"),
            Some(m.to_string()),
        );
    }
    l.cpu_shares = uint(cpu.get("shares"), "linux.resources.cpu.shares")?;
    let quota = signed(cpu.get("quota"), "linux.resources.cpu.quota")?.filter(|&q| q > 0);
    l.cpu_quota_us = quota.map(|q| q as u64);
    l.cpu_period_us = uint(cpu.get("period"), "linux.resources.cpu.period")?.filter(|&p| p > 0);
    if let Some(cpus) = cpu
        .get("cpus")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        l.cpuset = Some(
            crate::front::cpuset(cpus, host)
                .map_err(|e| bad("linux.resources.cpu.cpus", e.message))?,
        );
    }
    l.extra = extra;
    let pids = r.get("pids").unwrap_or(&null);
    only(pids, "linux.resources.pids", &["limit"])?;
    l.pids = signed(pids.get("limit"), "linux.resources.pids.limit")?
        .filter(|&p| p > 0)
        .map(|p| p as u64);
    let parent = match linux.get("cgroupsPath").and_then(Value::as_str) {
        None | Some("") => None,
        Some(p) => Some(cgroups_path(p)?),
    };
    Ok((l, parent))
}

/// A plain path (from each hierarchy's root, as the spec says of an
/// absolute one and runc does of a relative one) as parent and name; or
/// systemd's `slice:prefix:name` mapped onto cgroupfs as
/// `slice/prefix-name.scope` (husk drives cgroupfs, not systemd).
fn cgroups_path(p: &str) -> Result<(String, String)> {
    let path = match p.split(':').collect::<Vec<_>>()[..] {
        [slice, prefix, name] => format!("{slice}/{prefix}-{name}.scope"),
        _ => p.to_string(),
    };
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == ".." || *c == ".") || parts.is_empty() {
        return Err(bad(
            "linux.cgroupsPath",
            format!("{p}: '.' and '..' are not allowed, nor an empty path"),
        ));
    }
    let (name, parent) = parts.split_last().expect("not empty");
    Ok((parent.join("/"), name.to_string()))
}

/// The bundle directory as given, made absolute.
pub fn bundle_dir(given: Option<&str>) -> Result<PathBuf> {
    let dir = PathBuf::from(given.unwrap_or("."));
    std::fs::canonicalize(&dir).map_err(|e| Error::os(format_args!("bundle {}", dir.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config around `process` and `linux` (JSON texts), its root a
    /// directory of the test's.
    fn config(process: &str, linux: &str, extra: &str) -> Result<Config> {
        let root = std::env::temp_dir().join(format!("husk-oci-config-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let text = format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"{}"}},"process":{process},"linux":{linux}{extra}}}"#,
            root.display()
        );
        let v = json::parse(&text).unwrap();
        let shim = runner::shim::Source::Embedded;
        parse(&v, Path::new("/"), "t", &Host::for_tests(), shim)
    }

    const PROCESS: &str = r#"{"args":["/bin/sh"],"cwd":"/"}"#;
    const NS: &str =
        r#"{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"uts"}]}"#;

    fn err(c: Result<Config>) -> String {
        match c {
            Ok(_) => panic!("accepted"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn what_husk_lacks_is_named_never_dropped() {
        assert!(config(PROCESS, NS, "").is_ok());
        let e = err(config(PROCESS, r#"{"intelRdt":{"closID":"x"}}"#, ""));
        assert!(e.contains("linux.intelRdt: not supported"), "{e}");
        let e = err(config(
            r#"{"args":["/bin/sh"],"apparmorProfile":"x"}"#,
            NS,
            "",
        ));
        assert!(e.contains("process.apparmorProfile: not supported"), "{e}");
        let e = err(config(PROCESS, NS, r#","vm":{"hypervisor":{}}"#));
        assert!(e.contains("vm: not supported"), "{e}");
        let e = err(config(
            PROCESS,
            NS,
            r#","hooks":{"createcontainer":[{"path":"/bin/true"}]}"#,
        ));
        assert!(e.contains("hooks.createcontainer: not supported"), "{e}");
        // Empty is as good as absent.
        assert!(config(
            PROCESS,
            r#"{"uidMappings":[],"namespaces":[{"type":"mount"},{"type":"pid"}]}"#,
            ""
        )
        .is_ok());
    }

    #[test]
    fn only_namespaced_sysctls_of_the_containers_namespaces() {
        let with = |sysctl: &str, ns: &str| {
            config(
                PROCESS,
                &format!(r#"{{"namespaces":{ns},"sysctl":{sysctl}}}"#),
                "",
            )
        };
        let own = r#"[{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"network"}]"#;
        let c = with(r#"{"kernel.shmmax":"1000","net.ipv4.ip_forward":"1"}"#, own).unwrap();
        assert_eq!(
            c.spec.sysctls[1].0.to_str().unwrap(),
            "proc/sys/net/ipv4/ip_forward"
        );
        let host_net = r#"[{"type":"pid"},{"type":"mount"},{"type":"ipc"}]"#;
        assert!(err(with(r#"{"net.ipv4.ip_forward":"1"}"#, host_net)).contains("namespace"));
        for bad in [
            "kernel.core_pattern",
            "vm.overcommit_memory",
            "net..x",
            "net.a/../../b",
        ] {
            let e = err(with(&format!(r#"{{"{bad}":"1"}}"#), own));
            assert!(e.contains("linux.sysctl"), "{bad}: {e}");
        }
    }

    #[test]
    fn cgroups_paths_plain_and_systemds() {
        assert_eq!(cgroups_path("/a/b/c").unwrap(), ("a/b".into(), "c".into()));
        assert_eq!(cgroups_path("c").unwrap(), ("".into(), "c".into()));
        assert_eq!(
            cgroups_path("system.slice:libpod:abc").unwrap(),
            ("system.slice".into(), "libpod-abc.scope".into())
        );
        for bad in ["/a/../b", "/", "./x"] {
            assert!(cgroups_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_capability_set_with_inheritable_and_ambient() {
        let caps = r#"{"args":["/bin/sh"],"capabilities":{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_CHOWN","CAP_KILL"],"permitted":["CAP_KILL","CAP_CHOWN"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL","CAP_CHOWN"]}}"#;
        let c = config(caps, NS, "").unwrap();
        let kill = 1 << 5;
        assert_eq!(c.spec.security.caps, kill | 1);
        assert_eq!(c.spec.security.inheritable, kill);
        // CAP_CHOWN is not inheritable: the kernel would refuse to raise it.
        assert_eq!(c.spec.security.ambient, kill);
        let differs =
            r#"{"args":["/bin/sh"],"capabilities":{"bounding":["CAP_KILL"],"effective":[]}}"#;
        assert!(err(config(differs, NS, "")).contains("process.capabilities.effective"));
        let unknown = r#"{"args":["/bin/sh"],"capabilities":{"bounding":["CAP_FLY"],"effective":["CAP_FLY"],"permitted":["CAP_FLY"]}}"#;
        assert!(err(config(unknown, NS, "")).contains("CAP_FLY"));
    }
}

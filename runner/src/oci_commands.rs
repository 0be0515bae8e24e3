//! The OCI runtime's commands (cli/oci.rs): the bundle's config.json as a
//! spec (oci_config.rs), and the lifecycle in the library (oci.rs).

use std::io::Write;
use std::path::PathBuf;

use runner::error::{Error, Result};
use runner::json::Value;
use runner::oci;
use runner::run::{Oci, Options};
use runner::store::{self, Store};

use crate::cli::oci::{Globals, Simple};
use crate::front::Host;
use crate::oci_config;

fn store(g: &Globals) -> Result<Store> {
    crate::commands::store(g.root.as_deref())
}

pub fn create(a: Simple, g: &Globals) -> Result<i32> {
    let preserve = preserve_fds(a.opt("preserve-fds").as_deref())?;
    // Accepted: husk decides pivot_root or chroot by the host, and makes
    // no session keyring either way.
    store::check_id(&a.id)?;
    let bundle = oci_config::bundle_dir(a.opt("bundle").as_deref())?;
    let mut config = oci_config::read(&bundle, &a.id, &Host::read())?;
    config.spec.preserve_fds = preserve
        .iter()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .collect();
    let store = store(g)?;
    let opts = Options {
        oci: Some(Oci {
            bundle,
            annotations: config.annotations,
            hooks: config.hooks,
            seccomp_profile: config.seccomp_profile,
        }),
        named: true,
        ..Options::default()
    };
    if config.spec.tty != a.opt("console-socket").is_some() {
        return Err(Error::new(
            "process.terminal and --console-socket go together: a terminal's master goes to the socket",
        ));
    }
    let pid_file = a.opt("pid-file").map(PathBuf::from);
    let socket = a.opt("console-socket").map(PathBuf::from);
    oci::create(
        config.spec,
        &store,
        &opts,
        pid_file.as_deref(),
        socket.as_deref(),
    )?;
    Ok(0)
}

/// `--preserve-fds N`: this process's fds 3 to N+2, each checked to be
/// open, to be passed on as the container's: moved up among the fds the
/// runner holds, out of the way of the shim's own 3 and 4.
fn preserve_fds(n: Option<&str>) -> Result<Vec<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    let Some(n) = n else { return Ok(Vec::new()) };
    let count: i32 = n
        .parse()
        .ok()
        .filter(|c| (0..=1024).contains(c))
        .ok_or_else(|| Error::new(format!("--preserve-fds {n}: expected 0 to 1024")))?;
    (3..3 + count)
        .map(|fd| {
            // SAFETY: F_GETFD only reads the fd's flags.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(Error::new(format!(
                    "--preserve-fds {n}: fd {fd} is not open"
                )));
            }
            // SAFETY: an open fd this process was given, and nothing else
            // in it uses fds 3 to N+2.
            runner::fds::held(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
                .map_err(|e| Error::os(format_args!("--preserve-fds: move fd {fd}"), &e))
        })
        .collect()
}

/// `exec` as runc's callers give it: `--process F.json` (or the command
/// after the ID), `--detach`, `--pid-file`.
pub fn exec(a: crate::cli::lifecycle::Exec, g: &Globals) -> Result<i32> {
    let Some((id, rest)) = a.args.split_first() else {
        return Err(Error::new("exec: no container ID given"));
    };
    let host = Host::read();
    let mut oci = runner::exec::OciProcess {
        replace_env: false,
        caps: None,
        no_new_privs: None,
        groups: Vec::new(),
        umask: 0o022,
        detach: a.detach,
        pid_file: a.pid_file.as_deref().map(PathBuf::from),
        console_socket: a.console_socket.as_deref().map(PathBuf::from),
    };
    let mut tty = a.tty;
    let mut env = crate::front::env_flags(&a.env, host.env)?;
    let mut workdir = a.cwd.or(a.workdir);
    let mut user = a
        .user
        .as_deref()
        .map(crate::front::parse_user)
        .transpose()?;
    let argv = match &a.process {
        Some(path) => {
            let p = oci_config::process_file(std::path::Path::new(path), &host)?;
            oci.replace_env = true;
            oci.caps = Some(p.caps);
            oci.no_new_privs = Some(p.no_new_privs);
            oci.groups = p.groups;
            oci.umask = p.umask;
            env = p.env;
            workdir = Some(p.cwd);
            user = Some(p.user);
            tty = p.terminal;
            p.args
        }
        None => rest.to_vec(),
    };
    if argv.is_empty() {
        return Err(Error::new("exec: no command given"));
    }
    if tty != oci.console_socket.is_some() {
        return Err(Error::new(
            "a terminal and --console-socket go together: its master goes to the socket",
        ));
    }
    let req = runner::exec::Request {
        id: id.clone(),
        argv,
        env,
        workdir,
        user,
        tty,
        // runc's callers hand the process its stdio: passed through.
        interactive: true,
        shim: runner::shim::Source::choose(None, || host.own_exe())?,
        missing: runner::kernel::Missing::default(),
        oci: Some(oci),
        program: None,
    };
    runner::exec::exec(&store(g)?, req)
}

/// `ps [--format json] ID`: the host PIDs of the container's processes.
pub fn ps(a: crate::cli::lifecycle::Ps, g: &Globals) -> Result<i32> {
    let root = a.root.or(g.root.clone());
    let store = crate::commands::store(root.as_deref())?;
    let pids = oci::pids(&store, a.id.as_deref().unwrap_or(""))?;
    match a.format.as_deref() {
        Some("json") => {
            let list: Vec<String> = pids.iter().map(i32::to_string).collect();
            println!("[{}]", list.join(","));
        }
        None | Some("table") => {
            println!("PID");
            for p in pids {
                println!("{p}");
            }
        }
        Some(other) => {
            return Err(Error::new(format!(
                "--format {other}: expected table or json"
            )))
        }
    }
    Ok(0)
}

pub fn start(a: Simple, g: &Globals) -> Result<i32> {
    oci::start(&store(g)?, &a.id, || {
        let host = Host::read();
        runner::shim::Source::choose(None, || host.own_exe())
    })?;
    Ok(0)
}

pub fn state(a: Simple, g: &Globals) -> Result<i32> {
    println!("{}", oci::state(&store(g)?, &a.id)?);
    Ok(0)
}

pub fn delete(a: Simple, g: &Globals) -> Result<i32> {
    oci::delete(&store(g)?, &a.id, a.has("force"))?;
    Ok(0)
}

pub fn kill(a: Simple, g: &Globals) -> Result<i32> {
    let sig = match a.signal.as_deref() {
        None => libc::SIGTERM,
        Some(s) => runner::signals::parse(s)
            .ok_or_else(|| Error::new(format!("{s}: not a signal (e.g. TERM, SIGKILL, 9)")))?,
    };
    oci::kill(&store(g)?, &a.id, sig, a.has("all"))?;
    Ok(0)
}

/// `spec`: runc's default config, for a bundle whose root is ./rootfs,
/// with husk's defaults (Docker's capabilities, masked and read-only
/// paths). Refuses to overwrite one.
pub fn spec(a: Simple) -> Result<i32> {
    let dir = PathBuf::from(a.opt("bundle").as_deref().unwrap_or("."));
    let path = dir.join("config.json");
    let config = if a.has("rootless") {
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        rootless(uid, gid)
    } else {
        DEFAULT_CONFIG.to_string()
    };
    // Kept compact in the binary, written indented for people.
    let text = runner::json::parse(&config)
        .map_err(Error::new)?
        .to_json_pretty();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::os(format_args!("write {}", path.display()), &e))?;
    Ok(0)
}

/// `spec --rootless`, as runc writes it: a user namespace of its own
/// with the caller's euid and egid as its 0, no network namespace (an
/// unprivileged user's would have no way out), no cgroup mount and the
/// host's /sys bound rather than a sysfs (neither can be mounted
/// there), and no mount option naming a group that is not mapped.
fn rootless(uid: u32, gid: u32) -> String {
    let maps = |id| format!(r#"[{{"containerID":0,"hostID":{id},"size":1}}]"#);
    ROOTLESS
        .iter()
        .fold(DEFAULT_CONFIG.to_string(), |c, (from, to)| {
            c.replacen(from, to, 1)
        })
        .replace("UIDMAP", &maps(uid))
        .replace("GIDMAP", &maps(gid))
}

/// What `rootless` changes in DEFAULT_CONFIG (each found there: tested).
const ROOTLESS: [(&str, &str); 4] = [
    (r#","gid=5""#, ""),
    (
        r#"{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}"#,
        r#"{"destination":"/sys","type":"none","source":"/sys","options":["rbind","nosuid","noexec","nodev","ro"]}"#,
    ),
    (r#"{"type":"network"},"#, ""),
    (
        r#"{"type":"cgroup"}]"#,
        r#"{"type":"cgroup"},{"type":"user"}],"uidMappings":UIDMAP,"gidMappings":GIDMAP"#,
    ),
];

/// `features`: what husk takes of the runtime spec, as the runtime-spec's
/// features document says it.
pub fn features() -> Result<i32> {
    println!("{}", features_doc()?.to_json_pretty());
    Ok(0)
}

pub fn features_doc() -> Result<Value> {
    let caps: Vec<String> = (0..41)
        .map(|b| format!("\"{}\"", runner::caps::name(b)))
        .collect();
    let doc = FEATURES
        .replace("CAPS", &caps.join(","))
        .replace("ARCH", runner::seccomp::SCMP_ARCH)
        .replace("VERSION", env!("CARGO_PKG_VERSION"));
    runner::json::parse(&doc).map_err(Error::new)
}

const FEATURES: &str = r#"{"ociVersionMin":"1.0.0","ociVersionMax":"1.2.0","hooks":["prestart","createRuntime","createContainer","startContainer","poststart","poststop"],"mountOptions":["ro","rw","nosuid","suid","nodev","dev","noexec","exec","bind","rbind","private","rprivate","slave","rslave","shared","rshared","unbindable","runbindable","mode","size","nr_inodes","uid","gid","strictatime","relatime","noatime"],"linux":{"namespaces":["user","pid","network","ipc","uts","mount","cgroup"],"capabilities":[CAPS],"cgroup":{"v1":true,"v2":true,"systemd":false,"systemdUser":false},"seccomp":{"enabled":true,"actions":["SCMP_ACT_ALLOW","SCMP_ACT_ERRNO","SCMP_ACT_KILL","SCMP_ACT_KILL_THREAD","SCMP_ACT_KILL_PROCESS","SCMP_ACT_TRAP","SCMP_ACT_TRACE","SCMP_ACT_LOG"],"operators":["SCMP_CMP_EQ","SCMP_CMP_NE","SCMP_CMP_LT","SCMP_CMP_LE","SCMP_CMP_GT","SCMP_CMP_GE","SCMP_CMP_MASKED_EQ"],"archs":["ARCH"]},"apparmor":{"enabled":false},"selinux":{"enabled":false}},"annotations":{"io.github.husk.version":"VERSION"}}"#;

/// With `--log`, the error also goes there: one JSON object per line
/// (containerd's shim reads the last error line; podman reads the file)
/// or one text line.
pub fn log_error(g: &Globals, message: &str) {
    let Some(path) = &g.log else { return };
    let time = runner::store::time::rfc3339(std::time::SystemTime::now());
    let line = if g.log_json {
        Value::Object(vec![
            ("level".into(), Value::string("error")),
            ("msg".into(), Value::string(message)),
            ("time".into(), Value::string(time)),
        ])
        .to_json()
    } else {
        format!("{time} error: {message}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// runc's default config with husk's defaults (Docker's capabilities,
/// masked and read-only paths); a test checks it against them. Text, not
/// a value built at run time: a tenth of the bytes in the runner.
const DEFAULT_CONFIG: &str = r#"{"ociVersion":"1.2.0","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"],"effective":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"],"permitted":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SYS_CHROOT","CAP_MKNOD","CAP_AUDIT_WRITE","CAP_SETFCAP"]},"noNewPrivileges":true},"root":{"path":"rootfs","readonly":true},"hostname":"husk","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}],"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}],"maskedPaths":["/proc/acpi","/proc/asound","/proc/interrupts","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/sched_debug","/proc/scsi","/proc/timer_list","/proc/timer_stats","/sys/devices/virtual/powercap","/sys/firmware"],"readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootless_config_maps_the_caller_and_has_no_network_or_cgroup_mount() {
        for (from, _) in ROOTLESS {
            assert!(DEFAULT_CONFIG.contains(from), "{from}");
        }
        let v = runner::json::parse(&rootless(1000, 1001)).unwrap();
        let linux = v.get("linux").unwrap();
        let types: Vec<&str> = linux
            .get("namespaces")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|n| n.get("type").and_then(Value::as_str).unwrap())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mount", "cgroup", "user"]);
        for (key, id) in [("uidMappings", 1000), ("gidMappings", 1001)] {
            let map = &linux.get(key).and_then(Value::as_array).unwrap()[0];
            assert_eq!(map.get("hostID").and_then(Value::as_u64), Some(id));
            assert_eq!(map.get("containerID").and_then(Value::as_u64), Some(0));
        }
        let text = v.to_json();
        assert!(!text.contains("gid=") && !text.contains("\"cgroup\",\"source\""));
        assert!(
            text.contains(r#""source":"/sys","options":["rbind""#),
            "{text}"
        );
    }

    #[test]
    fn the_default_config_has_husks_defaults() {
        let v = runner::json::parse(DEFAULT_CONFIG).unwrap();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        let caps = v.get("process").unwrap().get("capabilities").unwrap();
        for set in ["bounding", "effective", "permitted"] {
            let mut mask = 0;
            for c in strings(caps.get(set).unwrap()) {
                mask |= runner::caps::parse("", &c).unwrap().unwrap();
            }
            assert_eq!(mask, runner::caps::DEFAULT, "{set}");
        }
        let linux = v.get("linux").unwrap();
        assert_eq!(
            strings(linux.get("maskedPaths").unwrap()),
            runner::spec::MASKED
        );
        assert_eq!(
            strings(linux.get("readonlyPaths").unwrap()),
            runner::spec::READ_ONLY
        );
        let env = strings(v.get("process").unwrap().get("env").unwrap());
        assert_eq!(env[0], format!("PATH={}", runner::spec::DEFAULT_PATH));
    }
}

//! The OCI runtime's commands (cli/oci.rs): the bundle's config.json as a
//! spec (oci_config.rs), and the lifecycle in the library (oci.rs).

use std::io::Write;
use std::path::PathBuf;

use runner::error::{Error, Result};
use runner::json::Value;
use runner::oci;
use runner::run::{Oci, Options};
use runner::store::{self, Store};

use crate::cli::oci::{Create, Delete, Globals, Kill, SpecCmd, Start, State};
use crate::front::Host;
use crate::oci_config;

fn store(g: &Globals) -> Result<Store> {
    crate::commands::store(g.root.as_deref())
}

pub fn create(a: Create, g: &Globals) -> Result<i32> {
    if a.console_socket.is_some() {
        return Err(Error::new(
            "--console-socket: terminals are not supported by husk's create yet",
        ));
    }
    if a.preserve_fds != 0 {
        return Err(Error::new("--preserve-fds: only 0 is supported"));
    }
    // Accepted: husk decides pivot_root or chroot by the host, and makes
    // no session keyring either way.
    let _ = (a.no_pivot, a.no_new_keyring);
    store::check_id(&a.id)?;
    let bundle = oci_config::bundle_dir(a.bundle.as_deref())?;
    let config = oci_config::read(&bundle, &a.id, &Host::read())?;
    let store = store(g)?;
    let opts = Options {
        oci: Some(Oci {
            bundle,
            annotations: config.annotations,
        }),
        named: true,
        ..Options::default()
    };
    let pid_file = a.pid_file.as_deref().map(PathBuf::from);
    oci::create(config.spec, &store, &opts, pid_file.as_deref())?;
    Ok(0)
}

pub fn start(a: Start, g: &Globals) -> Result<i32> {
    oci::start(&store(g)?, &a.id)?;
    Ok(0)
}

pub fn state(a: State, g: &Globals) -> Result<i32> {
    println!("{}", oci::state(&store(g)?, &a.id)?);
    Ok(0)
}

pub fn delete(a: Delete, g: &Globals) -> Result<i32> {
    oci::delete(&store(g)?, &a.id, a.force)?;
    Ok(0)
}

pub fn kill(a: Kill, g: &Globals) -> Result<i32> {
    let sig = match a.signal.as_deref() {
        None => libc::SIGTERM,
        Some(s) => runner::signals::parse(s)
            .ok_or_else(|| Error::new(format!("{s}: not a signal (e.g. TERM, SIGKILL, 9)")))?,
    };
    oci::kill(&store(g)?, &a.id, sig, a.all)?;
    Ok(0)
}

/// `spec`: runc's default config, for a bundle whose root is ./rootfs,
/// with husk's defaults (Docker's capabilities, masked and read-only
/// paths). Refuses to overwrite one.
pub fn spec(a: SpecCmd) -> Result<i32> {
    if a.rootless {
        return Err(Error::new("--rootless: rootless mode is not available yet"));
    }
    let dir = PathBuf::from(a.bundle.as_deref().unwrap_or("."));
    let path = dir.join("config.json");
    let text = default_config().to_json_pretty();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::os(format_args!("write {}", path.display()), &e))?;
    Ok(0)
}

fn default_config() -> Value {
    fn s(x: &str) -> Value {
        Value::string(x)
    }
    let list = |xs: &[&str]| Value::Array(xs.iter().map(|x| s(x)).collect());
    let obj = |fields: Vec<(&str, Value)>| {
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    };
    let caps: Vec<String> = (0..64)
        .filter(|b| runner::caps::DEFAULT & (1 << b) != 0)
        .map(runner::caps::name)
        .collect();
    let caps = Value::Array(caps.iter().map(|c| s(c.as_str())).collect());
    let mount = |dest: &str, kind: &str, opts: &[&str]| {
        obj(vec![
            ("destination", s(dest)),
            ("type", s(kind)),
            ("source", s(kind)),
            ("options", list(opts)),
        ])
    };
    let ns = |t: &str| obj(vec![("type", s(t))]);
    let abs = |xs: &[&str]| -> Vec<String> { xs.iter().map(|x| x.to_string()).collect() };
    obj(vec![
        ("ociVersion", s("1.2.0")),
        (
            "process",
            obj(vec![
                ("terminal", Value::Bool(false)),
                (
                    "user",
                    obj(vec![("uid", Value::number(0)), ("gid", Value::number(0))]),
                ),
                ("args", list(&["sh"])),
                (
                    "env",
                    list(&[
                        &format!("PATH={}", runner::spec::DEFAULT_PATH),
                        "TERM=xterm",
                    ]),
                ),
                ("cwd", s("/")),
                (
                    "capabilities",
                    obj(vec![
                        ("bounding", caps.clone()),
                        ("effective", caps.clone()),
                        ("permitted", caps),
                    ]),
                ),
                ("noNewPrivileges", Value::Bool(true)),
            ]),
        ),
        (
            "root",
            obj(vec![("path", s("rootfs")), ("readonly", Value::Bool(true))]),
        ),
        ("hostname", s("husk")),
        (
            "mounts",
            Value::Array(vec![
                mount("/proc", "proc", &[]),
                mount(
                    "/dev",
                    "tmpfs",
                    &["nosuid", "strictatime", "mode=755", "size=65536k"],
                ),
                mount(
                    "/dev/pts",
                    "devpts",
                    &[
                        "nosuid",
                        "noexec",
                        "newinstance",
                        "ptmxmode=0666",
                        "mode=0620",
                        "gid=5",
                    ],
                ),
                mount(
                    "/dev/shm",
                    "tmpfs",
                    &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                ),
                mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
                mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
                mount(
                    "/sys/fs/cgroup",
                    "cgroup",
                    &["nosuid", "noexec", "nodev", "relatime", "ro"],
                ),
            ]),
        ),
        (
            "linux",
            obj(vec![
                (
                    "namespaces",
                    Value::Array(
                        ["pid", "network", "ipc", "uts", "mount", "cgroup"]
                            .map(ns)
                            .to_vec(),
                    ),
                ),
                (
                    "maskedPaths",
                    Value::Array(
                        abs(&runner::spec::MASKED)
                            .iter()
                            .map(|p| s(p.as_str()))
                            .collect(),
                    ),
                ),
                (
                    "readonlyPaths",
                    Value::Array(
                        abs(&runner::spec::READ_ONLY)
                            .iter()
                            .map(|p| s(p.as_str()))
                            .collect(),
                    ),
                ),
            ]),
        ),
    ])
}

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
        format!("time=\"{time}\" level=error msg=\"{message}\"")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

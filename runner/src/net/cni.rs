//! `--net cni:NAME`: the network config NAME from the CNI config
//! directory (NETCONFPATH, else /etc/cni/net.d: the first *.conflist,
//! *.conf or *.json file, by file name, whose "name" is NAME), run by the
//! standard plugins (CNI_PATH, else /opt/cni/bin and /usr/lib/cni, where
//! Debian's containernetworking-plugins puts them), as the CNI spec has a
//! runtime do: ADD through the list, each plugin given the one before's
//! result, and DEL back through it.
//!
//! The container's network namespace goes to a plugin as
//! /proc/self/fd/N, an fd the runner opened once from its PID 1 and the
//! plugin inherits: never a path a process could swap. Holding that fd,
//! the runner keeps the namespace until DEL, so DEL finds the container's
//! interface even after its last process ended. What ADD was given and
//! answered is kept in the container's entry (cni.json) before and after
//! it runs, so whoever ends the container (its runner, or the sweep after
//! a `kill -9`) runs DEL with the same config; without the namespace, as
//! the spec allows, the plugins give back what they hold outside it (an
//! address lease, port rules).

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::json::Value;

use super::nft::Port;

/// Where ADD and DEL are kept, in the container's entry.
const RECORD: &str = "cni.json";
/// A plugin that takes longer is killed (podman allows none; runc has no
/// CNI): a minute covers a DHCP lease.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A container's CNI network, DEL'd when dropped.
pub struct Attachment {
    entry: PathBuf,
    id: String,
    list: Value,
    ports: Vec<Port>,
    ns: Option<OwnedFd>,
    result: Option<Value>,
}

/// What ADD gave the container.
pub struct Added {
    pub address: Option<IpAddr>,
    /// The result's nameservers, if it named any.
    pub dns: Vec<String>,
}

/// Finds network `name`'s config list for container `id`, whose entry is
/// `entry`: nothing runs yet.
pub fn join(entry: &Path, id: &str, name: &str, ports: &[Port]) -> Result<Attachment> {
    let list = find(name).map_err(|e| e.prefixed(&format!("--net cni:{name}: ")))?;
    if !ports.is_empty() && !plugins(&list).iter().any(maps_ports) {
        return Err(Error::new(format!(
            "-p with --net cni:{name}: no plugin of it has the portMappings capability \
             (add the portmap plugin to its config)"
        )));
    }
    Ok(Attachment {
        entry: entry.to_path_buf(),
        id: id.to_string(),
        list,
        ports: ports.to_vec(),
        ns: None,
        result: None,
    })
}

impl Attachment {
    /// ADD, for the container whose PID 1 (waiting for its plan) is `pid`.
    pub fn connect(&mut self, pid: i32) -> Result<Added> {
        self.ns = Some(super::open_ns(&format!("/proc/{pid}/ns/net"))?);
        // Kept before ADD: a runner killed during it leaves what DEL needs.
        self.record()?;
        let maps = self.maps();
        let mut prev: Option<Value> = None;
        let dirs = plugin_dirs();
        for p in plugins(&self.list) {
            let conf = plugin_conf(&self.list, p, prev.as_ref(), &maps);
            let result = run(p, &dirs, "ADD", &self.id, self.ns.as_ref(), &conf).map_err(|e| {
                let name = self.list.get("name").and_then(Value::as_str).unwrap_or("");
                e.prefixed(&format!("--net cni:{name}: "))
            })?;
            prev = Some(result);
        }
        self.result = prev;
        self.record()?;
        Ok(added(self.result.as_ref()))
    }

    fn maps(&self) -> Value {
        Value::Array(self.ports.iter().map(port_mapping).collect())
    }

    fn record(&self) -> Result<()> {
        let mut fields = vec![
            ("config".to_string(), self.list.clone()),
            ("ports".to_string(), self.maps()),
        ];
        if let Some(r) = &self.result {
            fields.push(("result".into(), r.clone()));
        }
        let path = self.entry.join(RECORD);
        std::fs::write(&path, Value::Object(fields).to_json())
            .map_err(|e| Error::os(format_args!("write {}", path.display()), &e))
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.ns.is_some() {
            del(&self.entry, &self.id, self.ns.as_ref());
        }
    }
}

/// DEL for container `id` from what its entry `entry` kept, without its
/// namespace (the sweep's, after its runner was killed). Nothing kept,
/// nothing to do.
pub fn remove(entry: &Path, id: &str) {
    del(entry, id, None)
}

fn del(entry: &Path, id: &str, ns: Option<&OwnedFd>) {
    let path = entry.join(RECORD);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let Ok(kept) = crate::json::parse(&text) else {
        return;
    };
    let Some(list) = kept.get("config") else {
        return;
    };
    let maps = kept
        .get("ports")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let result = kept.get("result");
    // A plugin that cannot be run made nothing (an ADD that failed for
    // it): only the others are told.
    let dirs = plugin_dirs();
    for p in plugins(list)
        .iter()
        .rev()
        .filter(|p| program(p, &dirs).is_ok())
    {
        let conf = plugin_conf(list, p, result, &maps);
        if let Err(e) = run(p, &dirs, "DEL", id, ns, &conf) {
            let name = list.get("name").and_then(Value::as_str).unwrap_or("");
            eprintln!("runner: --net cni:{name}: {}", e.message);
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Plugin `p`'s config: its list's name and version, the result so far,
/// and the port mappings `maps` if it has the capability for them.
fn plugin_conf(list: &Value, p: &Value, prev: Option<&Value>, maps: &Value) -> String {
    let mut fields: Vec<(String, Value)> = p.as_object().unwrap_or_default().to_vec();
    let mut set = |k: &str, v: Value| {
        fields.retain(|(f, _)| f != k);
        fields.push((k.to_string(), v));
    };
    set("name", list.get("name").cloned().unwrap_or(Value::Null));
    let version = list.get("cniVersion").cloned();
    set("cniVersion", version.unwrap_or(Value::string("0.4.0")));
    if let Some(prev) = prev {
        set("prevResult", prev.clone());
    }
    if maps_ports(p) && maps.as_array().is_some_and(|m| !m.is_empty()) {
        set(
            "runtimeConfig",
            Value::Object(vec![("portMappings".into(), maps.clone())]),
        );
    }
    Value::Object(fields).to_json()
}

/// Runs plugin `p`, found in `dirs` (the plugins' search path), for
/// `command`: its result.
fn run(
    p: &Value,
    dirs: &[PathBuf],
    command: &str,
    id: &str,
    ns: Option<&OwnedFd>,
    conf: &str,
) -> Result<Value> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    let fail = |why: String| Error::new(format!("CNI plugin {kind:?} {command}: {why}"));
    let program = program(p, dirs).map_err(fail)?;
    // The plugin inherits the namespace's fd under the same number.
    let netns = match ns {
        Some(fd) => {
            // SAFETY: clears FD_CLOEXEC on our own fd; the runner has one
            // thread, and set again below.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
            format!("/proc/self/fd/{}", fd.as_raw_fd())
        }
        None => String::new(),
    };
    let env = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", &netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", ""),
        ("CNI_PATH", &join_paths(dirs)),
        (
            "PATH",
            &std::env::var("PATH").unwrap_or("/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ),
    ]
    .iter()
    .map(|(k, v)| CString::new(format!("{k}={v}")))
    .collect::<std::result::Result<Vec<_>, _>>()
    .map_err(|_| fail("a NUL in its environment".into()))?;
    let program_c = CString::new(program.as_os_str().as_encoded_bytes())
        .map_err(|_| fail("a NUL in its path".into()))?;
    let called = crate::hooks::call(program_c, env, conf, TIMEOUT);
    if let Some(fd) = ns {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let (status, out) = called.map_err(fail)?;
    let answer = crate::json::parse(&out);
    if status != 0 {
        // The spec's error: {"code": N, "msg": "...", "details": "..."}.
        let msg = answer
            .as_ref()
            .ok()
            .map(|v| {
                let s = |k| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                match (s("msg"), s("details")) {
                    (m, d) if d.is_empty() => m,
                    (m, d) => format!("{m}: {d}"),
                }
            })
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| out.trim().to_string());
        return Err(fail(format!("exited with {status}: {msg}")));
    }
    match command {
        "ADD" => answer.map_err(|e| fail(format!("its result is not JSON: {e}"))),
        _ => Ok(Value::Null),
    }
}

/// Plugin `p`'s program, from its type, in the first of `dirs` that has it.
fn program(p: &Value, dirs: &[PathBuf]) -> std::result::Result<PathBuf, String> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    // A name, never a path: the config picks a plugin, not a program.
    if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
        return Err("not a plugin name".into());
    }
    dirs.iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "not found in {} (Debian: apt-get install containernetworking-plugins)",
                join_paths(dirs)
            )
        })
}

/// The network config list named `name`; a single plugin's config (a
/// .conf) becomes a list of one.
fn find(name: &str) -> Result<Value> {
    let dir = std::env::var_os("NETCONFPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/cni/net.d"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::os(format_args!("read {}", dir.display()), &e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "conflist" || x == "conf" || x == "json")
        })
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(v) = crate::json::parse(&text) else {
            continue;
        };
        if v.get("name").and_then(Value::as_str) != Some(name) {
            continue;
        }
        if v.get("plugins").and_then(Value::as_array).is_some() {
            return Ok(v);
        }
        if v.get("type").is_none() {
            return Err(Error::new(format!(
                "{}: neither a plugin list nor a plugin's config",
                f.display()
            )));
        }
        let version = v.get("cniVersion").cloned().unwrap_or(Value::Null);
        return Ok(Value::Object(vec![
            ("cniVersion".into(), version),
            ("name".into(), Value::string(name)),
            ("plugins".into(), Value::Array(vec![v])),
        ]));
    }
    Err(Error::new(format!(
        "no network config named {name:?} in {}",
        dir.display()
    )))
}

fn plugins(list: &Value) -> &[Value] {
    list.get("plugins").and_then(Value::as_array).unwrap_or(&[])
}

fn maps_ports(p: &Value) -> bool {
    p.get("capabilities")
        .and_then(|c| c.get("portMappings"))
        .and_then(Value::as_bool)
        == Some(true)
}

fn port_mapping(p: &Port) -> Value {
    Value::Object(vec![
        ("hostPort".into(), Value::number(p.host_port)),
        ("containerPort".into(), Value::number(p.port)),
        (
            "protocol".into(),
            Value::string(match p.proto {
                super::nft::Proto::Tcp => "tcp",
                super::nft::Proto::Udp => "udp",
            }),
        ),
        (
            "hostIP".into(),
            Value::string(p.host_ip.map(|a| a.to_string()).unwrap_or_default()),
        ),
    ])
}

/// The container's address and resolvers from a result (CNI 0.3.0 and
/// later: "ips", each "address" a CIDR; "dns" with "nameservers").
fn added(result: Option<&Value>) -> Added {
    let address = result
        .and_then(|r| r.get("ips"))
        .and_then(Value::as_array)
        .and_then(|ips| {
            ips.iter().find_map(|ip| {
                let a = ip.get("address")?.as_str()?;
                a.split('/').next()?.parse().ok()
            })
        });
    let dns = result
        .and_then(|r| r.get("dns"))
        .and_then(|d| d.get("nameservers"))
        .and_then(Value::as_array)
        .map(|n| {
            n.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Added { address, dns }
}

fn plugin_dirs() -> Vec<PathBuf> {
    match std::env::var_os("CNI_PATH") {
        Some(p) => std::env::split_paths(&p).collect(),
        None => vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
    }
}

fn join_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

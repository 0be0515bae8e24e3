//! What state.json holds: the OCI state fields, then husk's own — what a
//! later command needs to find the container again (PID 1 and its start
//! time, the cgroups, the process looking after it), how it ended, and
//! the part of its spec that `exec` and `inspect` need.

use std::path::{Path, PathBuf};

use crate::json::{self, Value};
use crate::signals::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    const ALL: [Status; 4] = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Stopped,
    ];

    /// As the OCI runtime spec spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// The container as it was asked for: what `exec` must give a new
/// process (its environment, its capabilities, no_new_privs, seccomp) and
/// what `inspect` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub hostname: String,
    pub workdir: String,
    pub tty: bool,
    pub init: bool,
    pub caps: u64,
    pub no_new_privs: bool,
    pub seccomp: bool,
    pub privileged: bool,
    /// pivot_root, else chroot (see hostroot.rs).
    pub pivot: bool,
    /// The limits, as `--flag value` pairs.
    pub limits: Vec<(String, String)>,
    /// The image it was made from ("" for none).
    pub image: String,
    /// Its root's lower layers, lowest first, when its root is an overlay
    /// (the upper layer is the entry's `upper`).
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// PID 1 as the host sees it; 0 before it exists.
    pub pid: i32,
    pub bundle: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// In the order given (a map in JSON; a list here, which is all husk
    /// needs and much smaller in the binary than a sorted map).
    pub annotations: Vec<(String, String)>,
    /// PID 1's start time (/proc/PID/stat field 22): a PID the kernel gave
    /// to another process since is never mistaken for the container.
    pub pid_start: u64,
    /// The container's cgroup directories, one per hierarchy, then the
    /// parents made for them (removed after, deepest first).
    pub cgroups: Vec<PathBuf>,
    pub cgroup_parents_made: Vec<PathBuf>,
    /// The process whose flock on the entry says the container is looked
    /// after, and its start time.
    pub supervisor: i32,
    pub supervisor_start: u64,
    /// The boot the PIDs and start times above belong to.
    pub boot_id: String,
    /// `--name` was given (the ID is then the name).
    pub named: bool,
    /// Started with `-d`: the entry stays after the container ends, until
    /// `rm` (or at once with `--rm`).
    pub detached: bool,
    pub auto_remove: bool,
    /// `--keep`: a foreground container's entry stays after it ends.
    pub keep: bool,
    /// Made by OCI `create`: once created nobody supervises it (its
    /// caller reaps PID 1); it lives as long as PID 1 does, and its entry
    /// until `delete`. The sweep leaves it alone.
    pub oci: bool,
    /// An OCI config's `hooks`, as JSON text ("" for none): `start` and
    /// `delete` run theirs (hooks.rs), whatever became of the bundle.
    pub hooks: String,
    /// An OCI config's seccomp profile, as JSON text ("" for none): what
    /// `exec` gives a new process too.
    pub seccomp_profile: String,
    /// The bridge network it is on ("" for none), its address there, and
    /// its published ports as given (`-p`): what the sweep gives back.
    pub network: String,
    pub address: String,
    pub ports: Vec<String>,
    /// How PID 1 ended; None while it runs, or when nobody saw it end (its
    /// supervisor was killed).
    pub exit: Option<Exit>,
    pub spec: Recorded,
}

impl State {
    pub fn new(id: &str, bundle: &Path) -> State {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        State {
            oci_version: "1.2.0".into(),
            id: id.into(),
            status: Status::Creating,
            pid: 0,
            bundle: bundle.display().to_string(),
            created: super::time::rfc3339(std::time::SystemTime::now()),
            annotations: Vec::new(),
            pid_start: 0,
            cgroups: Vec::new(),
            cgroup_parents_made: Vec::new(),
            supervisor: me,
            supervisor_start: 0,
            boot_id: crate::process::boot_id().to_string(),
            named: false,
            detached: false,
            auto_remove: false,
            keep: false,
            oci: false,
            hooks: String::new(),
            seccomp_profile: String::new(),
            network: String::new(),
            address: String::new(),
            ports: Vec::new(),
            exit: None,
            spec: Recorded::default(),
        }
    }

    /// Whether the entry stays after the container ends, until `rm`.
    pub fn stays(&self) -> bool {
        (self.detached || self.keep) && !self.auto_remove
    }

    /// Whether the sweep must leave it: stopped already, or an OCI
    /// container past its `create`, which its caller looks after.
    pub fn left_alone(&self) -> bool {
        self.status == Status::Stopped || (self.oci && self.status != Status::Creating)
    }

    /// Whether its PIDs are of this boot: after a restart of the host
    /// (a /run that is not a tmpfs keeps the store), none of them is the
    /// container's, whatever process has them now.
    pub fn this_boot(&self) -> bool {
        self.boot_id.is_empty() || self.boot_id == crate::process::boot_id()
    }

    /// "running", "exited (0)", "killed by signal 9 (SIGKILL)", ...; what
    /// `ps` shows.
    pub fn describe(&self) -> String {
        match (self.status, self.exit) {
            (Status::Stopped, Some(Exit::Code(c))) => format!("exited ({c})"),
            (Status::Stopped, Some(Exit::Signal(s))) => {
                format!("killed by signal {s} ({})", crate::signals::name(s))
            }
            (Status::Stopped, None) => "exited (status unknown: its monitor was killed)".into(),
            (s, _) => s.name().into(),
        }
    }

    pub fn to_json(&self) -> String {
        self.to_value().to_json()
    }

    /// The OCI state's fields first, in its order (ociVersion, id,
    /// status, pid, bundle, created, annotations: oci.rs shows those
    /// seven), then husk's own.
    pub fn to_value(&self) -> Value {
        let s = |x: &str| Value::string(x);
        let b = Value::Bool;
        let strings = |xs: &[String]| Value::Array(xs.iter().map(|x| s(x)).collect());
        let paths =
            |ps: &[PathBuf]| Value::Array(ps.iter().map(|p| s(&p.display().to_string())).collect());
        let mut fields = vec![
            ("ociVersion".into(), s(&self.oci_version)),
            ("id".into(), s(&self.id)),
            ("status".into(), s(self.status.name())),
            ("pid".into(), Value::number(self.pid)),
            ("bundle".into(), s(&self.bundle)),
            ("created".into(), s(&self.created)),
            (
                "annotations".into(),
                Value::Object(
                    self.annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), s(v)))
                        .collect(),
                ),
            ),
            ("pidStart".into(), Value::number(self.pid_start)),
            ("cgroups".into(), paths(&self.cgroups)),
            ("cgroupParentsMade".into(), paths(&self.cgroup_parents_made)),
            ("supervisor".into(), Value::number(self.supervisor)),
            (
                "supervisorStart".into(),
                Value::number(self.supervisor_start),
            ),
            ("bootId".into(), s(&self.boot_id)),
            ("named".into(), b(self.named)),
            ("detached".into(), b(self.detached)),
            ("autoRemove".into(), b(self.auto_remove)),
            ("keep".into(), b(self.keep)),
            ("oci".into(), b(self.oci)),
            ("hooks".into(), s(&self.hooks)),
            ("seccompProfile".into(), s(&self.seccomp_profile)),
        ];
        if !self.network.is_empty() {
            fields.push(("network".into(), s(&self.network)));
            fields.push(("address".into(), s(&self.address)));
            fields.push(("ports".into(), strings(&self.ports)));
        }
        match self.exit {
            Some(Exit::Code(c)) => fields.push(("exitCode".into(), Value::number(c))),
            Some(Exit::Signal(sig)) => fields.push(("exitSignal".into(), Value::number(sig))),
            None => {}
        }
        let r = &self.spec;
        let spec = vec![
            ("args".into(), strings(&r.argv)),
            ("env".into(), strings(&r.env)),
            ("hostname".into(), s(&r.hostname)),
            ("cwd".into(), s(&r.workdir)),
            ("terminal".into(), b(r.tty)),
            ("init".into(), b(r.init)),
            ("capabilities".into(), s(&format!("{:#x}", r.caps))),
            ("noNewPrivileges".into(), b(r.no_new_privs)),
            ("seccomp".into(), b(r.seccomp)),
            ("privileged".into(), b(r.privileged)),
            ("pivotRoot".into(), b(r.pivot)),
            ("image".into(), s(&r.image)),
            ("layers".into(), strings(&r.layers)),
            (
                "limits".into(),
                Value::Object(r.limits.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            ),
        ];
        fields.push(("spec".into(), Value::Object(spec)));
        Value::Object(fields)
    }

    /// Reads a state file; what is missing or malformed is an error that
    /// says which field.
    pub fn from_json(text: &str) -> Result<State, String> {
        let v = json::parse(text)?;
        let string_in = |v: &Value, k: &str| {
            v.get(k)
                .ok_or_else(|| format!("no \"{k}\""))?
                .as_str()
                .map(String::from)
                .ok_or_else(|| format!("\"{k}\" is not a string"))
        };
        let string = |k: &str| string_in(&v, k);
        let strings_in = |v: &Value, k: &str| -> Result<Vec<String>, String> {
            match v.get(k) {
                None => Ok(Vec::new()),
                Some(a) => a
                    .as_array()
                    .ok_or_else(|| format!("\"{k}\" is not a list"))?
                    .iter()
                    .map(|p| p.as_str().map(String::from))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("\"{k}\" holds a non-string")),
            }
        };
        let paths = |k: &str| -> Result<Vec<PathBuf>, String> {
            Ok(strings_in(&v, k)?.into_iter().map(PathBuf::from).collect())
        };
        // An object of strings, as a list of pairs; what is not a string
        // is left out.
        let string_map = |v: &Value, k: &str| -> Vec<(String, String)> {
            v.get(k)
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let flag_in = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let flag = |k: &str| flag_in(&v, k);
        let status = string("status")?;
        let number = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let exit = match (v.get("exitCode"), v.get("exitSignal")) {
            (Some(c), _) => Some(Exit::Code(
                c.as_i64().ok_or("\"exitCode\" is not a number")? as i32,
            )),
            (None, Some(s)) => Some(Exit::Signal(
                s.as_i64().ok_or("\"exitSignal\" is not a number")? as i32,
            )),
            (None, None) => None,
        };
        let spec = match v.get("spec") {
            None => Recorded::default(),
            Some(r) => Recorded {
                argv: strings_in(r, "args")?,
                env: strings_in(r, "env")?,
                hostname: string_in(r, "hostname").unwrap_or_default(),
                workdir: string_in(r, "cwd").unwrap_or_else(|_| "/".into()),
                tty: flag_in(r, "terminal"),
                init: flag_in(r, "init"),
                caps: string_in(r, "capabilities")
                    .ok()
                    .and_then(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16).ok())
                    .ok_or("\"spec\".\"capabilities\" is not a hexadecimal mask")?,
                no_new_privs: flag_in(r, "noNewPrivileges"),
                seccomp: flag_in(r, "seccomp"),
                privileged: flag_in(r, "privileged"),
                pivot: flag_in(r, "pivotRoot"),
                limits: string_map(r, "limits"),
                image: string_in(r, "image").unwrap_or_default(),
                layers: strings_in(r, "layers")?,
            },
        };
        Ok(State {
            oci_version: string("ociVersion")?,
            id: string("id")?,
            status: Status::ALL
                .into_iter()
                .find(|s| s.name() == status)
                .ok_or_else(|| format!("unknown status {status:?}"))?,
            pid: number("pid") as i32,
            bundle: string("bundle")?,
            created: string("created")?,
            annotations: string_map(&v, "annotations"),
            pid_start: v.get("pidStart").and_then(Value::as_u64).unwrap_or(0),
            cgroups: paths("cgroups")?,
            cgroup_parents_made: paths("cgroupParentsMade")?,
            supervisor: number("supervisor") as i32,
            supervisor_start: v
                .get("supervisorStart")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            boot_id: v
                .get("bootId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            named: flag("named"),
            detached: flag("detached"),
            auto_remove: flag("autoRemove"),
            keep: flag("keep"),
            oci: flag("oci"),
            hooks: string("hooks").unwrap_or_default(),
            seccomp_profile: string("seccompProfile").unwrap_or_default(),
            network: string("network").unwrap_or_default(),
            address: string("address").unwrap_or_default(),
            ports: strings_in(&v, "ports")?,
            exit,
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_round_trip_and_bad_ones_say_why() {
        let mut st = State::new("web", Path::new("/srv/web"));
        st.pid = 42;
        st.pid_start = 123_456_789_012;
        st.cgroups = vec!["/sys/fs/cgroup/husk-web".into()];
        st.annotations.push(("a".into(), "b \"c\"".into()));
        st.status = Status::Stopped;
        st.exit = Some(Exit::Signal(15));
        st.detached = true;
        st.spec = Recorded {
            argv: vec!["sh".into(), "-c".into(), "echo \"hi\"".into()],
            env: vec!["PATH=/bin".into()],
            hostname: "web".into(),
            workdir: "/srv".into(),
            tty: true,
            init: true,
            caps: 0xa80425fb,
            no_new_privs: true,
            seccomp: true,
            privileged: false,
            pivot: true,
            limits: vec![("--memory".into(), "67108864".into())],
            image: "busybox:1".into(),
            layers: vec!["/var/lib/husk/layers/sha256/ab".into()],
        };
        st.keep = true;
        st.oci = true;
        st.hooks = r#"{"poststop":[{"path":"/bin/true"}]}"#.into();
        st.network = "husk0".into();
        st.address = "10.88.0.2".into();
        st.ports = vec!["8080:80/tcp".into()];
        assert_eq!(State::from_json(&st.to_json()).unwrap(), st);
        assert_eq!(st.describe(), "killed by signal 15 (SIGTERM)");
        st.exit = Some(Exit::Code(3));
        assert_eq!(State::from_json(&st.to_json()).unwrap(), st);
        assert_eq!(st.describe(), "exited (3)");
        let e = State::from_json(r#"{"ociVersion":"1","id":"x","status":"zombie"}"#);
        assert!(e.unwrap_err().contains("zombie"));
        assert!(State::from_json("{").is_err());
    }
}

//! What a container is, as the library takes it: typed, checked, with C
//! strings where the kernel takes them. Front ends build it: the command
//! line today (src/front.rs), an OCI config.json later. Nothing here reads
//! the caller's environment or terminal; host facts are passed in.

use std::ffi::CString;

use crate::cgroup::Limits;
use crate::error::{Error, Result};
use crate::kernel::Missing;
use crate::mounts::Mount;
use crate::namespaces::Namespaces;
use crate::overlay::Layers;
use crate::rootfs::Rootfs;

/// The container's root file system.
pub enum RootSource {
    Dir(Rootfs),
    /// An overlay of these layers (an image's, or `--layer`s), with an
    /// upper directory of the container's own.
    Overlay(Layers),
}

impl RootSource {
    /// What the state store records as the container's bundle.
    pub fn describe(&self) -> std::path::PathBuf {
        match self {
            RootSource::Dir(r) => r.path().to_path_buf(),
            RootSource::Overlay(l) => l.label.clone().into(),
        }
    }
}

/// Docker's masked paths.
pub const MASKED: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's read-only paths.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's masked and read-only paths as the plan takes them; none for a
/// privileged container.
pub fn docker_masks(privileged: bool) -> Result<(Vec<CString>, Vec<CString>)> {
    if privileged {
        return Ok((Vec::new(), Vec::new()));
    }
    Ok((
        root_paths("masked path", &MASKED)?,
        root_paths("read-only path", &READ_ONLY)?,
    ))
}

/// Absolute container paths as the plan takes them: relative to the
/// root, clean, never `..` (mounts.rs).
pub fn root_paths<S: AsRef<str>>(what: &str, paths: &[S]) -> Result<Vec<CString>> {
    paths
        .iter()
        .map(|p| {
            crate::mounts::target(p.as_ref()).map_err(|why| Error::new(format!("{what}: {why}")))
        })
        .collect()
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_HOSTNAME: &str = "husk";

pub struct Spec {
    /// The container's ID in the state store (see store.rs).
    pub id: String,
    /// Opened once, before anything else (see rootfs.rs), or the layers
    /// of an overlay made when the container's entry exists.
    pub root: RootSource,
    /// Volumes and tmpfs, in the order they are mounted (mounts.rs).
    pub mounts: Vec<Mount>,
    /// Device nodes made in the container (an OCI config's).
    pub devices: Vec<Device>,
    /// With a user namespace of its own: its ID mappings (an OCI
    /// config's).
    pub id_maps: Option<crate::userns::IdMaps>,
    /// `--read-only`: the root's mount read-only, once everything is
    /// mounted on it.
    pub read_only: bool,
    /// The image the root was made from.
    pub image: Option<String>,
    /// The uid and gid the command runs as (else 0, with the
    /// capabilities kept).
    pub user: Option<(u32, u32)>,
    /// With `user`: its supplementary groups (else none), and the umask
    /// (Docker's and runc's 022 unless an OCI config says).
    pub groups: Vec<u32>,
    pub umask: u32,
    /// With `user`: the capabilities stay whatever the uid (an OCI
    /// config's), rather than going as they do on setuid (Docker's -u).
    pub keep_caps: bool,
    pub hostname: CString,
    pub env: Vec<CString>,
    pub workdir: CString,
    /// Make the workdir if missing (runc does; Docker's -w fails).
    pub make_workdir: bool,
    pub argv: Vec<CString>,
    /// Where to look for argv[0] inside the container, in order.
    pub candidates: Vec<CString>,
    pub namespaces: Namespaces,
    /// `--net bridge` or `--net NAME`: a new network namespace connected
    /// to a bridge network (net/attach.rs).
    pub network: Option<crate::net::attach::Request>,
    pub limits: Limits,
    pub cgroup_parent: Option<String>,
    /// The cgroup's own name under the parent (else husk-ID): an OCI
    /// config's cgroupsPath, which also asks for a cgroup in every
    /// hierarchy, limits or not, as runc makes.
    pub cgroup_name: Option<String>,
    pub shim: crate::shim::Source,
    pub security: Security,
    /// Give the container a pseudo-terminal of its own.
    pub tty: bool,
    /// pivot_root into the rootfs; else chroot into it (see hostroot.rs).
    pub pivot: bool,
    /// PID 1 gets SIGKILL when the process that started it dies (the
    /// foreground run's promise).
    pub parent_death_signal: bool,
    /// `--init`: the shim stays as PID 1, the command runs as PID 2
    /// (shim/src/init.rs).
    pub init: bool,
    /// Paths hidden (behind /dev/null or an empty read-only tmpfs) and
    /// made read-only, relative to the root: Docker's (`MASKED`,
    /// `READ_ONLY`), none when privileged, or an OCI config's.
    pub masked: Vec<CString>,
    pub read_only_paths: Vec<CString>,
    /// An OCI config's seccomp profile, compiled (seccomp/profile.rs): in
    /// place of husk's own filter.
    pub seccomp_filter: Option<Vec<u8>>,
    /// Namespaced sysctls (as paths under proc/sys, and values), set once
    /// /proc is mounted: an OCI config's.
    pub sysctls: Vec<(CString, CString)>,
    /// Propagation given to the root's mounts after husk's slave (an OCI
    /// config's rootfsPropagation: shared, or private); 0 for none.
    pub root_propagation: u32,
    /// Resource limits (resource, soft, hard) and the OOM score
    /// adjustment, set on PID 1 before it runs (an OCI config's).
    pub rlimits: Vec<(u32, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    /// OCI `create`: the fd the shim waits on before its exec (the
    /// entry's exec fifo; see oci/).
    pub await_start: Option<std::os::fd::RawFd>,
    /// With `await_start`: fds of the runner's that become the program's
    /// 3 and up, in order (an OCI caller's --preserve-fds).
    pub preserve_fds: Vec<std::os::fd::RawFd>,
    /// Tests only: make the shim fail before this step (HUSK_FAIL_AT_STEP).
    pub fail_at_step: Option<usize>,
    /// Kernel calls known (or pretended, HUSK_PRETEND_ENOSYS) to be missing.
    pub missing: Missing,
}

/// A device node to make in the container.
#[derive(Debug)]
pub struct Device {
    /// In the root.
    pub path: CString,
    /// The file type (S_IFCHR, S_IFBLK, S_IFIFO) and permissions.
    pub mode: u32,
    /// As the kernel encodes it in 32 bits.
    pub dev: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What the container may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    /// Capabilities kept (bounding, permitted, effective): exactly these.
    pub caps: u64,
    /// The inheritable and ambient sets: empty but for an OCI config's.
    pub inheritable: u64,
    pub ambient: u64,
    /// No masked or read-only paths, /sys writable, devices open.
    pub privileged: bool,
    pub no_new_privs: bool,
    pub seccomp: bool,
}

impl Security {
    /// Whether the container can mount: with CAP_SYS_ADMIN, or without the
    /// filter that keeps user namespaces (and their mounts) from it. Such a
    /// container gets a cgroup of its own in every hierarchy, so that a
    /// cgroupfs it mounts shows nothing above it.
    pub fn may_mount(&self) -> bool {
        self.caps & crate::caps::SYS_ADMIN != 0 || !self.seccomp
    }
}

/// A hostname the kernel and DNS both take.
pub fn check_hostname(name: &str) -> Result<CString> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.']);
    if ok {
        cstring("hostname", name)
    } else {
        Err(Error::new(format!(
            "hostname {name}: expected 1 to 64 letters, digits, '-' or '.'"
        )))
    }
}

/// The paths execve will try, like execvp: argv[0] itself if it has a
/// slash, else each absolute directory of the container's PATH. Resolved
/// by the shim inside the container, where the rootfs's own symlinks mean
/// what they say.
pub fn candidates(cmd: &str, path: &str) -> Result<Vec<CString>> {
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

/// The PATH in `env` ("" if none).
pub fn path_of(env: &[CString]) -> String {
    env.iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default()
}

pub fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(format!("{what} {s:?}: contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lookup_follows_path_order() {
        let c = candidates("sh", "/usr/bin:relative:/bin/").unwrap();
        assert_eq!(c, [c"/usr/bin/sh".to_owned(), c"/bin/sh".to_owned()]);
        assert_eq!(candidates("./x", "/bin").unwrap(), [c"./x".to_owned()]);
        assert!(candidates("sh", "relative").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("box-1.lan").is_ok());
        for bad in ["", "a b", "-x", ".x", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn who_may_mount() {
        let sec = |caps, seccomp| Security {
            caps,
            inheritable: 0,
            ambient: 0,
            privileged: false,
            no_new_privs: true,
            seccomp,
        };
        assert!(!sec(crate::caps::DEFAULT, true).may_mount());
        assert!(sec(crate::caps::DEFAULT | crate::caps::SYS_ADMIN, true).may_mount());
        assert!(sec(crate::caps::DEFAULT, false).may_mount());
    }
}

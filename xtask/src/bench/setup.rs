//! What the bench needs before it measures: the peers from Debian, the
//! release binaries, a busybox rootfs, OCI bundles of it, and (on a hybrid
//! host) a mount namespace in which crun agrees to run.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The peers: Debian package, binary.
const PEERS: [(&str, &str); 5] = [
    ("runc", "runc"),
    ("crun", "crun"),
    ("bubblewrap", "bwrap"),
    ("tini", "tini-static"),
    ("catatonit", "catatonit"),
];

pub struct Setup {
    pub dir: PathBuf,
    pub runner: PathBuf,
    pub shim: PathBuf,
    pub floor: PathBuf,
    pub rootfs: PathBuf,
    /// husk-probe, static, for this machine: its `loop` times syscalls.
    pub probe: PathBuf,
    /// OCI bundles of the rootfs running /bin/true and /bin/sleep.
    pub bundle_true: PathBuf,
    pub bundle_sleep: PathBuf,
    /// Binary name and where it is, for each peer found.
    pub peers: Vec<(&'static str, PathBuf)>,
    pub layout: Layout,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V1,
    V2,
    Hybrid,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::V1 => "cgroup v1",
            Layout::V2 => "cgroup v2",
            Layout::Hybrid => "hybrid cgroups (v1 controllers beside a cgroup2 mount)",
        }
    }

    fn detect() -> Layout {
        let mounts = husk_tests::host::cgroup_mounts();
        let v1 = mounts.iter().any(|(_, t, _)| t == "cgroup");
        let v2 = mounts.iter().any(|(_, t, _)| t == "cgroup2");
        match (v1, v2) {
            (true, true) => Layout::Hybrid,
            (true, false) => Layout::V1,
            _ => Layout::V2,
        }
    }
}

impl Setup {
    pub fn peer(&self, binary: &str) -> Option<&Path> {
        self.peers
            .iter()
            .find(|(b, _)| *b == binary)
            .map(|(_, p)| p.as_path())
    }
}

pub fn prepare(install: bool) -> crate::Result<Setup> {
    if install {
        install_missing_peers();
    }
    let arch = crate::arch::native();
    // dist copies over target/dist/<arch>/runner, which fails (ETXTBSY)
    // while another user runs that file: try again a little later.
    let mut tries = 0;
    let built = loop {
        match crate::dist::build(arch) {
            Err(e) if e.contains("Text file busy") && tries < 20 => {
                tries += 1;
                println!("xtask: bench: {e}; trying again");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            other => break other?,
        }
    };
    let shim = built.runner.with_file_name("husk-shim");

    println!("xtask: bench: building the kernel floor (husk-floor, static)");
    crate::run(crate::cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "husk-floor",
        "--target",
        arch.triple,
    ]))?;
    let floor = crate::target().join(arch.triple).join("release/husk-floor");
    let probe = crate::programs::build_probe(arch)?;

    let dir = crate::target().join("bench");
    let rootfs = dir.join("rootfs");
    if !rootfs.join("bin/busybox").exists() {
        crate::rootfs::build(&rootfs, None)?;
    }
    let bundle_true = dir.join("bundle-true");
    let bundle_sleep = dir.join("bundle-sleep");
    write_bundle(&bundle_true, &rootfs, &["/bin/true"], None)?;
    write_bundle(&bundle_sleep, &rootfs, &["/bin/sleep", "1000"], None)?;

    let peers = PEERS
        .iter()
        .filter_map(|&(package, binary)| find_binary(package, binary).map(|p| (binary, p)))
        .collect();
    Ok(Setup {
        dir,
        runner: built.runner,
        shim,
        floor,
        rootfs,
        probe,
        bundle_true,
        bundle_sleep,
        peers,
        layout: Layout::detect(),
    })
}

/// apt-get install of the peers that are missing; a failure is reported
/// and the bench goes on without them.
fn install_missing_peers() {
    let missing: Vec<&str> = PEERS
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !crate::setup::installed(p))
        .collect();
    if missing.is_empty() {
        return;
    }
    println!(
        "xtask: bench: installing {} from Debian (apt-get)",
        missing.join(" ")
    );
    if let Err(e) = crate::setup::apt_install(&missing) {
        println!(
            "xtask: bench: could not install {} ({e}; not root, or no network?); going on without them",
            missing.join(" ")
        );
    }
}

/// The package's file named `binary`, else `binary` on the PATH.
fn find_binary(package: &str, binary: &str) -> Option<PathBuf> {
    let listed = Command::new("dpkg")
        .args(["-L", package])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let from_package = listed
        .lines()
        .map(PathBuf::from)
        .find(|p| p.file_name().is_some_and(|n| n == binary) && p.is_file());
    from_package.or_else(|| {
        let path = std::env::var("PATH").unwrap_or_default();
        let found = path
            .split(':')
            .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            .map(|d| Path::new(d).join(binary))
            .find(|p| p.is_file());
        found
    })
}

/// runc's default `runc spec` (1.1), with the rootfs, the command, and no
/// terminal: what a user of runc or crun gets unless they change it.
const OCI_CONFIG: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": [ARGS],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": ROOT, "readonly": true},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
  ],
  "linux": {
    "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
"#;

/// An OCI bundle of `rootfs` running `args`, with `seccomp` as its
/// `linux.seccomp` object if given.
pub fn write_bundle(
    bundle: &Path,
    rootfs: &Path,
    args: &[&str],
    seccomp: Option<&str>,
) -> crate::Result {
    let root = rootfs
        .canonicalize()
        .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let args: Vec<String> = args.iter().map(|a| super::json::string(a)).collect();
    let mut config = OCI_CONFIG
        .replace("ARGS", &args.join(", "))
        .replace("ROOT", &super::json::string(&root.to_string_lossy()));
    if let Some(profile) = seccomp {
        config = config.replace(
            "\"linux\": {",
            &format!("\"linux\": {{\n    \"seccomp\": {profile},"),
        );
    }
    fs::create_dir_all(bundle).map_err(|e| format!("mkdir {}: {e}", bundle.display()))?;
    let path = bundle.join("config.json");
    fs::write(&path, config).map_err(|e| format!("write {}: {e}", path.display()))
}

/// A mount namespace like ours without the cgroup2 mount: there, a hybrid
/// host looks like a v1 host, on which crun runs. Kept open as an fd for
/// `setns`, which costs the contender one syscall.
pub fn mount_ns_without_cgroup2() -> crate::Result<File> {
    let cgroup2: Vec<CString> = husk_tests::host::cgroup_mounts()
        .into_iter()
        .filter(|(_, t, _)| t == "cgroup2")
        .map(|(mp, _, _)| CString::new(mp.into_os_string().into_encoded_bytes()).unwrap())
        .collect();
    let mut cmd = Command::new("sleep");
    cmd.arg("60").stdin(Stdio::null());
    // SAFETY: only raw syscalls between fork and exec, on data made above.
    unsafe {
        cmd.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            if libc::unshare(libc::CLONE_NEWNS) < 0 {
                return fail();
            }
            let none = std::ptr::null();
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none.cast(),
            ) < 0
            {
                return fail();
            }
            for mp in &cgroup2 {
                if libc::umount2(mp.as_ptr(), libc::MNT_DETACH) < 0 {
                    return fail();
                }
            }
            Ok(())
        });
    }
    let mut helper = cmd
        .spawn()
        .map_err(|e| format!("make a mount namespace without cgroup2: {e}"))?;
    let ns = File::open(format!("/proc/{}/ns/mnt", helper.id()));
    let _ = helper.kill();
    let _ = helper.wait();
    ns.map_err(|e| format!("open the helper's mount namespace: {e}"))
}

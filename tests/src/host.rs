//! What the host looks like from outside the containers: its mount table,
//! husk's cgroup directories, the PID namespaces in use.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, PartialEq)]
pub struct Snapshot {
    mounts: Vec<String>,
    cgroups: BTreeSet<PathBuf>,
    pid_namespaces: BTreeSet<String>,
    store: BTreeSet<String>,
}

/// The state store the runner uses by default.
pub const STORE: &str = "/run/husk";

impl Snapshot {
    pub fn take() -> Snapshot {
        Snapshot {
            mounts: mounts(),
            cgroups: husk_cgroups(),
            pid_namespaces: pid_namespaces(),
            store: store_entries(Path::new(STORE)),
        }
    }

    /// Ok if nothing was added (PID namespaces may also have gone).
    pub fn same_as(&self, after: &Snapshot) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.mounts != after.mounts {
            let added: Vec<_> = after
                .mounts
                .iter()
                .filter(|m| !self.mounts.contains(m))
                .collect();
            let gone: Vec<_> = self
                .mounts
                .iter()
                .filter(|m| !after.mounts.contains(m))
                .collect();
            errs.push(format!(
                "the host's mount table changed: added {added:#?}, removed {gone:#?}"
            ));
        }
        let left: Vec<_> = after.cgroups.difference(&self.cgroups).collect();
        if !left.is_empty() {
            errs.push(format!("cgroups left behind: {left:?}"));
        }
        let ns: Vec<_> = after
            .pid_namespaces
            .difference(&self.pid_namespaces)
            .collect();
        if !ns.is_empty() {
            errs.push(format!(
                "processes left running in new PID namespaces: {ns:?}"
            ));
        }
        let entries: Vec<_> = after.store.difference(&self.store).collect();
        if !entries.is_empty() {
            errs.push(format!("state store entries left behind: {entries:?}"));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }
}

/// The containers in a state store.
pub fn store_entries(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The host's mount table, without the fields that are not about what is
/// mounted where.
pub fn mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').skip(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Mount points of every cgroup hierarchy, with their type.
pub fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mountpoint = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let opts = post.nth(1)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| {
                (
                    PathBuf::from(mountpoint),
                    fstype.to_string(),
                    opts.to_string(),
                )
            })
        })
        .collect()
}

/// The runner's names (husk-ID, see runner::cgroup::leaf_name) and the
/// tests' own parent.
fn is_husk_cgroup(name: &str) -> bool {
    name.strip_prefix("husk-").is_some_and(|id| !id.is_empty())
}

/// Every cgroup directory husk or its tests make, in every hierarchy.
pub fn husk_cgroups() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, depth: u32, found: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if is_husk_cgroup(&e.file_name().to_string_lossy()) {
                found.insert(p.clone());
            }
            if depth < 8 {
                walk(&p, depth + 1, found);
            }
        }
    }
    let mut found = BTreeSet::new();
    for (mp, _, _) in cgroup_mounts() {
        walk(&mp, 0, &mut found);
    }
    found
}

/// The root directories of the test rootfs, as (device, inode): a
/// container's root shows as "/" through /proc/PID/root once it has
/// pivoted, but is still the same directory.
static ROOTS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Counts processes rooted in `dir` as the tests' own in every snapshot.
pub fn watch_root(dir: &Path) {
    if let Ok(m) = fs::metadata(dir) {
        let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
        if !roots.contains(&(m.dev(), m.ino())) {
            roots.push((m.dev(), m.ino()));
        }
    }
}

/// The PID namespaces of processes rooted in a watched rootfs: other
/// software on the machine may make PID namespaces of its own while the
/// tests run.
fn pid_namespaces() -> BTreeSet<String> {
    let roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ours = |dir: &Path| {
        fs::metadata(dir.join("root")).is_ok_and(|m| roots.contains(&(m.dev(), m.ino())))
    };
    let mut set = BTreeSet::new();
    for dir in processes() {
        if !ours(&dir) {
            continue;
        }
        if let Ok(link) = fs::read_link(dir.join("ns/pid")) {
            set.insert(link.to_string_lossy().into_owned());
        }
    }
    set
}

/// /proc/PID of every process.
fn processes() -> impl Iterator<Item = PathBuf> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path())
}

/// Every user-space process: pid, parent, state, where it sleeps in the
/// kernel, cgroup and command line, with the kernel stack of each process
/// that is neither running nor in an ordinary sleep. For when a scenario
/// hangs and all that is left is the console.
pub fn process_table() -> String {
    let mut out =
        String::from("  PID  PPID S WCHAN                CGROUP                         COMMAND\n");
    for dir in processes() {
        let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        if cmdline.is_empty() {
            continue; // a kernel thread, or gone
        }
        let stat = fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // comm may hold spaces and parentheses: the fields follow the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let (state, ppid) = (
            fields.first().copied().unwrap_or("?"),
            fields.get(1).copied().unwrap_or("?"),
        );
        let wchan = fs::read_to_string(dir.join("wchan")).unwrap_or_default();
        let cgroup = fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let cgroup = cgroup.lines().last().unwrap_or("");
        let mut cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if let Some((cut, _)) = cmd.char_indices().nth(120) {
            cmd.truncate(cut);
        }
        let pid = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        out += &format!(
            "{pid:>5} {ppid:>5} {state} {wchan:<20} {cgroup:<30} {}\n",
            cmd.trim_end()
        );
        if state != "R" && state != "S" {
            for frame in fs::read_to_string(dir.join("stack"))
                .unwrap_or_default()
                .lines()
            {
                out += &format!("        {frame}\n");
            }
        }
    }
    out
}

/// Whether / is the kernel's initial rootfs, an initramfs never left: its
/// mount is its own parent. The runner moves the root there instead of
/// pivoting, and keeps no CAP_SYS_CHROOT to climb back out with.
pub fn root_is_initramfs() -> bool {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"));
    root.is_some_and(|l| {
        let mut f = l.split(' ');
        f.next() == f.next()
    })
}

/// The directory of `pid`'s cgroup in the hierarchy holding `controller`.
pub fn cgroup_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mounts = cgroup_mounts();
    // v1 first: a controller bound to v1 is not in v2. "" asks for v2.
    for line in cgroup.lines().filter(|_| !controller.is_empty()) {
        let mut f = line.splitn(3, ':');
        let (_, names, path) = (f.next()?, f.next()?, f.next()?);
        if !names.split(',').any(|n| n == controller) {
            continue;
        }
        let (mp, _, _) = mounts
            .iter()
            .find(|(_, t, o)| t == "cgroup" && o.split(',').any(|x| x == controller))?;
        return Some(mp.join(path.trim_start_matches('/')));
    }
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let (mp, _, _) = mounts.iter().find(|(_, t, _)| t == "cgroup2")?;
    Some(mp.join(path.trim_start_matches('/')))
}

/// The processes whose PID namespace is `ns` (as /proc/PID/ns/pid reads).
pub fn processes_in(ns: &Path) -> Vec<u32> {
    processes()
        .filter(|dir| fs::read_link(dir.join("ns/pid")).is_ok_and(|l| l == ns))
        .filter_map(|dir| dir.file_name()?.to_str()?.parse().ok())
        .collect()
}

/// The children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A pseudo-terminal pair on the host, as a user's terminal.
pub struct Terminal {
    pub master: fs::File,
    pub slave: std::os::fd::OwnedFd,
}

impl Terminal {
    pub fn open() -> Result<Terminal, String> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain libc pty calls; each fd is owned once it exists.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            if m < 0 {
                return Err("posix_openpt failed".into());
            }
            let master = fs::File::from_raw_fd(m);
            libc::grantpt(m);
            libc::unlockpt(m);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
            let s = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            if s < 0 {
                return Err("open the pty's slave failed".into());
            }
            Ok(Terminal {
                master,
                slave: std::os::fd::OwnedFd::from_raw_fd(s),
            })
        }
    }

    /// Starts `cmd` in a session of its own whose controlling terminal is
    /// the slave, on the fds 0..`stdio`.
    pub fn attach(&self, cmd: &mut std::process::Command, stdio: i32) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let slave = self.slave.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                libc::ioctl(slave, libc::TIOCSCTTY, 0);
                for fd in 0..stdio {
                    libc::dup2(slave, fd);
                }
                Ok(())
            });
        }
    }
}

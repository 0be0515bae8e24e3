//! cgroups on whatever layout the host has: v1 only, v2 only, or hybrid
//! (v1 controllers beside a v2 mount). Each controller is looked up where
//! the host mounted it; nothing assumes a path.
//!
//! The container's cgroup is made under the runner's own cgroup (or
//! `--cgroup-parent`), one directory in each hierarchy that holds a
//! controller the limits need, and removed when the container ends.

mod layout;
mod v1;
mod v2;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use layout::{read_or_empty, Hierarchy, Layout, Version};

use crate::error::{Error, Result};

/// The CFS period the CPU quota is expressed in (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// Memory plus swap: None = the default (no swap); Some(None) = unlimited.
    pub memory_swap: Option<Option<u64>>,
    /// Microseconds per period: `cpu_period_us`, else `CPU_PERIOD_US`.
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// A normalised CPU list.
    pub cpuset: Option<String>,
    pub pids: Option<u64>,
    /// Further control files an OCI config sets (memory.reservation,
    /// swappiness, cpu.mems, ...), after the typed limits.
    pub extra: Vec<Extra>,
}

/// One control file to write: its controller, its name on v1 and on v2
/// (None: v2 has none, and asking for it there is an error).
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    pub controller: &'static str,
    pub v1: &'static str,
    pub v2: Option<&'static str>,
    pub value: String,
}

impl Limits {
    /// The controllers these limits need, in a fixed order.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut c = Vec::new();
        if self.memory.is_some() {
            c.push("memory");
        }
        if self.cpu_quota_us.is_some() || self.cpu_shares.is_some() {
            c.push("cpu");
        }
        if self.cpuset.is_some() {
            c.push("cpuset");
        }
        if self.pids.is_some() {
            c.push("pids");
        }
        for e in &self.extra {
            if !c.contains(&e.controller) {
                c.push(e.controller);
            }
        }
        c
    }
}

/// One control file to write. `optional` files may be missing on some
/// kernels (swap accounting), and are then skipped.
#[derive(Debug, PartialEq)]
pub struct Setting {
    pub file: &'static str,
    pub value: String,
    pub optional: bool,
}

impl Setting {
    fn new(file: &'static str, value: impl ToString) -> Setting {
        Setting {
            file,
            value: value.to_string(),
            optional: false,
        }
    }
    fn optional(file: &'static str, value: impl ToString) -> Setting {
        Setting {
            file,
            value: value.to_string(),
            optional: true,
        }
    }
}

/// The filesystem calls cgroup code makes; a trait so that unit tests can
/// run against a temporary directory that behaves like cgroupfs.
pub trait CgroupFs {
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    fn read(&self, path: &Path) -> io::Result<String>;
    fn rmdir(&self, path: &Path) -> io::Result<()>;
}

pub struct RealFs;

impl CgroupFs for RealFs {
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // One write(2): cgroupfs takes each write as one whole value.
        use std::io::Write;
        fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(value.as_bytes())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        fs::read_to_string(path)
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }
}

/// Every container's cgroup is named after its ID: husk-ID.
pub fn leaf_name(id: &str) -> String {
    format!("husk-{id}")
}

/// What cgroup a container gets.
pub struct Request<'a> {
    pub limits: &'a Limits,
    /// `--cgroup-parent`: where the leaves go, as a path from each
    /// hierarchy's root.
    pub parent: Option<&'a str>,
    pub name: &'a str,
    /// A directory in every hierarchy the host has, limits or not: for a
    /// container that can mount (CAP_SYS_ADMIN, or no seccomp), so that
    /// its cgroup namespace is rooted at its own cgroup everywhere and a
    /// cgroupfs it mounts shows nothing above it.
    pub everywhere: bool,
    /// Whether to end what is left with cgroup.kill (5.14) where v2 has
    /// one; else each process is killed by pid.
    pub kill_file: bool,
    /// The leaf may exist already (an OCI cgroupsPath naming one, as runc
    /// takes it); else its existence is an error.
    pub may_exist: bool,
}

/// A container's cgroup: a directory in each hierarchy it uses. Dropping it
/// kills whatever is left inside and removes the directories.
pub struct Cgroup {
    fs: Box<dyn CgroupFs>,
    kill_file: bool,
    leaves: Vec<(Version, PathBuf)>,
    /// Parents that did not exist and were made for us, removed after the
    /// leaves, deepest first.
    made: Vec<PathBuf>,
    memory: Option<(Version, PathBuf)>,
}

impl Cgroup {
    /// Makes the cgroup and writes the limits; None when it needs none.
    pub fn create(layout: &Layout, req: &Request<'_>) -> Result<Option<Cgroup>> {
        Cgroup::create_with(Box::new(RealFs), layout, req)
    }

    pub fn create_with(
        fs: Box<dyn CgroupFs>,
        layout: &Layout,
        req: &Request<'_>,
    ) -> Result<Option<Cgroup>> {
        let needed = req.limits.controllers();
        if needed.is_empty() && !req.everywhere {
            return Ok(None);
        }
        // Controllers grouped by the hierarchy that holds them.
        let mut groups: Vec<(&Hierarchy, Vec<&'static str>)> = Vec::new();
        if req.everywhere {
            groups.extend(layout.hierarchies.iter().map(|h| (h, Vec::new())));
        }
        for c in needed {
            let h = layout.hierarchy_for(c).ok_or_else(|| {
                Error::new(format!(
                    "cgroup controller {c} is not available on this host ({} layout)",
                    layout.describe()
                ))
            })?;
            match groups.iter_mut().find(|(g, _)| std::ptr::eq(*g, h)) {
                Some((_, cs)) => cs.push(c),
                None => groups.push((h, vec![c])),
            }
        }
        let mut cg = Cgroup {
            fs,
            kill_file: req.kill_file,
            leaves: Vec::new(),
            made: Vec::new(),
            memory: None,
        };
        let limits = req.limits;
        for (h, controllers) in groups {
            let parent_dir = match req.parent {
                Some(p) => h.mountpoint.join(p.trim_matches('/')),
                None if h.version == Version::V2 => v2::default_parent(h, cg.fs.as_ref()),
                None => h.mountpoint.join(h.own.trim_matches('/')),
            };
            cg.make_parents(h, &parent_dir, &controllers)?;
            let leaf = parent_dir.join(req.name);
            match cg.fs.mkdir(&leaf) {
                Err(e) if req.may_exist && e.kind() == io::ErrorKind::AlreadyExists => {}
                r => {
                    r.map_err(|e| Error::os(format_args!("create cgroup {}", leaf.display()), &e))?
                }
            }
            cg.leaves.push((h.version, leaf.clone()));
            // A new v1 cpuset takes no tasks until it has CPUs and memory
            // nodes: where no --cpuset asks for its own, its parent's.
            let cpuset_here = h.controllers.iter().any(|c| c == "cpuset");
            if h.version == Version::V1 && cpuset_here && limits.cpuset.is_none() {
                v1::inherit_cpuset(&leaf, &parent_dir, cg.fs.as_ref())?;
            }
            let mut settings = match h.version {
                Version::V1 => v1::settings(limits, &controllers, &parent_dir, cg.fs.as_ref())?,
                Version::V2 => v2::settings(limits, &controllers),
            };
            for e in limits
                .extra
                .iter()
                .filter(|e| controllers.contains(&e.controller))
            {
                let file = match h.version {
                    Version::V1 => e.v1,
                    Version::V2 => e.v2.ok_or_else(|| {
                        Error::new(format!("{}: cgroup v2 has no such control", e.v1))
                    })?,
                };
                settings.push(Setting::new(file, &e.value));
            }
            for s in settings {
                let path = leaf.join(s.file);
                match cg.fs.write(&path, &s.value) {
                    Err(e) if s.optional && e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(write_error(&path, &s.value, &e)),
                    Ok(()) => {}
                }
            }
            if controllers.contains(&"memory") {
                cg.memory = Some((h.version, leaf));
            }
        }
        Ok(Some(cg))
    }

    /// A container's cgroup made earlier (by a process that is gone),
    /// from the paths the state store kept: to be removed.
    pub fn adopt(leaves: Vec<PathBuf>, made: Vec<PathBuf>, kill_file: bool) -> Cgroup {
        Cgroup {
            fs: Box::new(RealFs),
            kill_file,
            // cgroup.kill (v2) is tried on each, and the pids killed one
            // by one where it is missing.
            leaves: leaves.into_iter().map(|l| (Version::V2, l)).collect(),
            made,
            memory: None,
        }
    }

    /// The directories, for the state store: the leaves, then the parents
    /// made for them.
    pub fn paths(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        (
            self.leaves.iter().map(|(_, l)| l.clone()).collect(),
            self.made.clone(),
        )
    }

    /// Makes the missing directories down to `dir`, and on v2 enables the
    /// controllers in every level above the leaf.
    fn make_parents(&mut self, h: &Hierarchy, dir: &Path, controllers: &[&str]) -> Result<()> {
        let rel = dir.strip_prefix(&h.mountpoint).unwrap_or(Path::new(""));
        let mut level = h.mountpoint.clone();
        let mut levels = vec![level.clone()];
        for part in rel.components() {
            level.push(part);
            levels.push(level.clone());
        }
        for (i, d) in levels.iter().enumerate() {
            if i > 0 {
                match self.fs.mkdir(d) {
                    Ok(()) => {
                        self.made.push(d.clone());
                        // Whether or not a limit asks for cpuset: in its
                        // hierarchy, a parent made empty takes no tasks
                        // below it (ENOSPC).
                        let cpuset_here = h.controllers.iter().any(|c| c == "cpuset");
                        if h.version == Version::V1 && cpuset_here {
                            v1::inherit_cpuset(d, &levels[i - 1], self.fs.as_ref())?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::os(format_args!("create cgroup {}", d.display()), &e))
                    }
                }
            }
            if h.version == Version::V2 {
                v2::enable(d, controllers, self.fs.as_ref())?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup, in every hierarchy.
    pub fn join(&self, pid: u32) -> Result<()> {
        for (_, leaf) in &self.leaves {
            self.write(&leaf.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer ran in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some((version, dir)) = &self.memory else {
            return 0;
        };
        let file = match version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = self.fs.read(&dir.join(file)).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    fn write(&self, path: &Path, value: &str) -> Result<()> {
        self.fs
            .write(path, value)
            .map_err(|e| write_error(path, value, &e))
    }

    /// Kills what is left, removes the leaves, then the parents we made.
    pub fn remove(mut self) {
        self.remove_all();
    }

    fn remove_all(&mut self) {
        for (version, leaf) in std::mem::take(&mut self.leaves) {
            self.kill_all(version, &leaf);
            self.rmdir(&leaf);
        }
        while let Some(dir) = self.made.pop() {
            self.rmdir(&dir);
        }
    }

    fn kill_all(&self, version: Version, leaf: &Path) {
        // Normally empty: PID 1's death took the whole PID namespace with it.
        // This is the backstop for a failure half-way through setup.
        // cgroup.kill (5.14) ends them all at once, where there is one.
        let kill_file = self.kill_file && version == Version::V2;
        if kill_file && self.fs.write(&leaf.join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for _ in 0..100 {
            let procs = self.fs.read(&leaf.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) takes plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn rmdir(&self, dir: &Path) {
        // A cgroup whose last task has exited can stay busy for a moment
        // while the kernel finishes tearing it down.
        let mut delay = std::time::Duration::from_micros(100);
        for _ in 0..30 {
            match self.fs.rmdir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(delay),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => {
                    eprintln!(
                        "runner: remove cgroup {}: {}",
                        dir.display(),
                        crate::error::describe(&e)
                    );
                    return;
                }
                Ok(()) => return,
            }
            delay = (delay * 2).min(std::time::Duration::from_millis(50));
        }
        eprintln!(
            "runner: remove cgroup {}: still busy after 1 s",
            dir.display()
        );
    }
}

fn write_error(path: &Path, value: &str, e: &io::Error) -> Error {
    Error::os(format_args!("write {value} to {}", path.display()), e)
}

impl Cgroup {
    /// Lets go of the cgroups without removing them: an OCI container's,
    /// which `delete` removes.
    pub fn leave(self) {
        std::mem::forget(self);
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove_all();
    }
}

#[cfg(test)]
mod tests;

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

pub use layout::{Hierarchy, Layout, Version};

use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// Memory plus swap: None = the default (no swap); Some(None) = unlimited.
    pub memory_swap: Option<Option<u64>>,
    /// Microseconds per `spec::CPU_PERIOD_US`.
    pub cpu_quota_us: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// A normalised CPU list.
    pub cpuset: Option<String>,
    pub pids: Option<u64>,
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
    /// The names of the directories in `dir`.
    fn subdirs(&self, dir: &Path) -> io::Result<Vec<String>>;
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
    fn subdirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        subdirs(dir)
    }
}

pub(crate) fn subdirs(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// Every container's cgroup is named after its runner: husk-PID.
pub fn leaf_name(runner_pid: u32) -> String {
    format!("{LEAF_PREFIX}{runner_pid}")
}

const LEAF_PREFIX: &str = "husk-";

/// A cgroup named after a runner (`leaf_name`) whose process is gone: left by
/// a runner that was SIGKILLed, which cannot clean up after itself. Its
/// container died with it (PDEATHSIG), so the directory is empty; one that
/// is not makes rmdir fail with EBUSY and stays.
fn is_stale(name: &str) -> bool {
    name.strip_prefix(LEAF_PREFIX)
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// A container's cgroup: a directory in each hierarchy it uses. Dropping it
/// kills whatever is left inside and removes the directories.
pub struct Cgroup {
    fs: Box<dyn CgroupFs>,
    leaves: Vec<(Version, PathBuf)>,
    /// Parents that did not exist and were made for us, removed after the
    /// leaves, deepest first.
    made: Vec<PathBuf>,
    memory: Option<(Version, PathBuf)>,
}

impl Cgroup {
    /// Makes the cgroup and writes the limits; None when there are none.
    pub fn create(
        layout: &Layout,
        limits: &Limits,
        parent: Option<&str>,
        name: &str,
    ) -> Result<Option<Cgroup>> {
        Cgroup::create_with(Box::new(RealFs), layout, limits, parent, name)
    }

    pub fn create_with(
        fs: Box<dyn CgroupFs>,
        layout: &Layout,
        limits: &Limits,
        parent: Option<&str>,
        name: &str,
    ) -> Result<Option<Cgroup>> {
        let needed = limits.controllers();
        if needed.is_empty() {
            return Ok(None);
        }
        // Controllers grouped by the hierarchy that holds them.
        let mut groups: Vec<(&Hierarchy, Vec<&'static str>)> = Vec::new();
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
            leaves: Vec::new(),
            made: Vec::new(),
            memory: None,
        };
        for (h, controllers) in groups {
            let parent_dir = match parent {
                Some(p) => h.mountpoint.join(p.trim_matches('/')),
                None if h.version == Version::V2 => v2::default_parent(h, cg.fs.as_ref()),
                None => h.mountpoint.join(h.own.trim_matches('/')),
            };
            cg.make_parents(h, &parent_dir, &controllers)?;
            cg.sweep(&parent_dir);
            let leaf = parent_dir.join(name);
            cg.fs
                .mkdir(&leaf)
                .map_err(|e| Error::os(format_args!("create cgroup {}", leaf.display()), &e))?;
            cg.leaves.push((h.version, leaf.clone()));
            let settings = match h.version {
                Version::V1 => v1::settings(limits, &controllers, &parent_dir, cg.fs.as_ref())?,
                Version::V2 => v2::settings(limits, &controllers),
            };
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
                        if h.version == Version::V1 && controllers.contains(&"cpuset") {
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

    /// Removes what SIGKILLed runners left in `parent`: nobody else will.
    fn sweep(&self, parent: &Path) {
        for name in self.fs.subdirs(parent).unwrap_or_default() {
            if is_stale(&name) {
                let _ = self.fs.rmdir(&parent.join(name));
            }
        }
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
    fn remove(&mut self) {
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
        if version == Version::V2 && self.fs.write(&leaf.join("cgroup.kill"), "1").is_ok() {
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

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests;

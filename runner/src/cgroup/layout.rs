//! Which cgroup hierarchies the host has, where they are mounted, and where
//! this process sits in each: read from /proc/self/mountinfo and
//! /proc/self/cgroup.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A file's text, or "" if it cannot be read.
pub fn read_or_empty(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    pub version: Version,
    pub mountpoint: PathBuf,
    /// v1: the controllers bound to this mount, or the one name of a named
    /// hierarchy ("name=systemd"); v2: those the root offers.
    pub controllers: Vec<String>,
    /// This process's cgroup, relative to the mount.
    pub own: String,
}

#[derive(Debug, Default)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

/// v1 controllers the kernel knows; other super options of a cgroup mount
/// (rw, name=systemd, clone_children, ...) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

impl Layout {
    pub fn detect() -> std::io::Result<Layout> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")?;
        Ok(Layout::parse(&mountinfo, &cgroup, read_or_empty))
    }

    /// `read` gives a v2 root's cgroup.controllers (`read_or_empty` on a
    /// host: the one instance of this function in the runner).
    pub fn parse(mountinfo: &str, proc_cgroup: &str, read: impl Fn(&Path) -> String) -> Layout {
        let mut layout = Layout::default();
        for m in crate::mountinfo::parse(mountinfo) {
            let (root, mountpoint) = (m.root.as_str(), PathBuf::from(&m.mount_point));
            let (version, controllers) = match m.fstype.as_str() {
                "cgroup" => {
                    let cs: Vec<String> = m
                        .super_options
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(String::from)
                        .collect();
                    if cs.is_empty() {
                        continue;
                    }
                    (Version::V1, cs)
                }
                "cgroup2" => {
                    let cs = read(&mountpoint.join("cgroup.controllers"));
                    (
                        Version::V2,
                        cs.split_whitespace().map(String::from).collect(),
                    )
                }
                _ => continue,
            };
            // Our own path in this hierarchy, from /proc/self/cgroup:
            // "N:cpu,cpuacct:/path" for v1, "0::/path" for v2.
            let own = proc_cgroup.lines().find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, names, path) = (f.next()?, f.next()?, f.next()?);
                let matches = match version {
                    Version::V2 => names.is_empty(),
                    Version::V1 => {
                        let mut a: Vec<&str> = names
                            .split(',')
                            .filter(|n| V1_CONTROLLERS.contains(n) || n.starts_with("name="))
                            .collect();
                        let mut b: Vec<&str> = controllers.iter().map(String::as_str).collect();
                        a.sort_unstable();
                        b.sort_unstable();
                        !a.is_empty() && a == b
                    }
                };
                matches.then(|| path.to_string())
            });
            let Some(own) = own else { continue };
            // A mount of a subtree (root other than /) shows paths below it.
            let own = match root {
                "/" => own,
                r => match own.strip_prefix(r) {
                    Some(rest) => rest.to_string(),
                    None => continue, // we are not inside this mount's subtree
                },
            };
            // The same hierarchy mounted twice: the first mount serves.
            if layout
                .hierarchies
                .iter()
                .any(|h| h.version == version && h.controllers == controllers)
            {
                continue;
            }
            layout.hierarchies.push(Hierarchy {
                version,
                mountpoint,
                controllers,
                own,
            });
        }
        layout
    }

    /// Where a controller lives: a v1 hierarchy if one has it (in hybrid
    /// layouts a controller bound to v1 is unusable in v2), else v2.
    pub fn hierarchy_for(&self, controller: &str) -> Option<&Hierarchy> {
        let has = |h: &&Hierarchy| h.controllers.iter().any(|c| c == controller);
        let v1 = self
            .hierarchies
            .iter()
            .filter(|h| h.version == Version::V1)
            .find(has);
        v1.or_else(|| {
            self.hierarchies
                .iter()
                .filter(|h| h.version == Version::V2)
                .find(has)
        })
    }

    pub fn describe(&self) -> &'static str {
        let v1 = self.hierarchies.iter().any(|h| h.version == Version::V1);
        let v2 = self.hierarchies.iter().any(|h| h.version == Version::V2);
        match (v1, v2) {
            (true, true) => "hybrid",
            (true, false) => "v1",
            (false, true) => "v2",
            (false, false) => "no cgroup",
        }
    }
}

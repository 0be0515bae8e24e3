//! cgroup v2: one unified hierarchy; controllers are enabled level by level
//! through cgroup.subtree_control.

use std::path::{Path, PathBuf};

use super::CPU_PERIOD_US;
use super::{CgroupFs, Hierarchy, Limits, Setting};
use crate::error::{describe, Error, Result};

pub fn settings(limits: &Limits, controllers: &[&str]) -> Vec<Setting> {
    let mut s = Vec::new();
    if controllers.contains(&"memory") {
        if let Some(m) = limits.memory {
            s.push(Setting::new("memory.max", m));
            // v2 limits swap on its own, not memory plus swap.
            match limits.memory_swap {
                None => s.push(Setting::optional("memory.swap.max", 0)),
                Some(None) => s.push(Setting::optional("memory.swap.max", "max")),
                Some(Some(total)) => s.push(Setting::new("memory.swap.max", total - m)),
            }
        }
    }
    if controllers.contains(&"cpu") {
        if let Some(q) = limits.cpu_quota_us {
            let period = limits.cpu_period_us.unwrap_or(CPU_PERIOD_US);
            s.push(Setting::new("cpu.max", format!("{q} {period}")));
        }
        if let Some(shares) = limits.cpu_shares {
            s.push(Setting::new("cpu.weight", weight(shares)));
        }
    }
    if controllers.contains(&"cpuset") {
        if let Some(cpus) = &limits.cpuset {
            s.push(Setting::new("cpuset.cpus", cpus));
        }
    }
    if controllers.contains(&"pids") {
        if let Some(p) = limits.pids {
            s.push(Setting::new("pids.max", p));
        }
    }
    s
}

/// v1 shares (2..262144) onto v2 weights (1..10000), linearly, as runc and
/// crun map them.
pub fn weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// Where the container's cgroup goes by default. v2 lets no cgroup both
/// hold processes and give its children controllers, and the runner itself
/// sits in its own cgroup; so the container goes under the nearest ancestor
/// that holds no processes (on systemd hosts the slice above the session
/// scope), or the root, which is exempt.
pub fn default_parent(h: &Hierarchy, fs: &dyn CgroupFs) -> PathBuf {
    let mut dir = h.mountpoint.join(h.own.trim_matches('/'));
    while dir != h.mountpoint {
        let procs = fs.read(&dir.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            break;
        }
        dir.pop();
    }
    dir
}

/// Makes sure `dir`'s children can use `controllers`.
pub fn enable(dir: &Path, controllers: &[&str], fs: &dyn CgroupFs) -> Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = fs.read(&file).unwrap_or_default();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let value = missing.join(" ");
    fs.write(&file, &value).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EBUSY) => {
                "; cgroup v2 allows no processes in a cgroup whose children use controllers: \
                 give --cgroup-parent a cgroup of its own"
            }
            Some(libc::ENOENT) | Some(libc::EINVAL) => {
                "; the controller is not delegated to this cgroup"
            }
            _ => "",
        };
        Error::new(format!(
            "enable {value} in {}: {}{hint}",
            file.display(),
            describe(&e)
        ))
    })
}

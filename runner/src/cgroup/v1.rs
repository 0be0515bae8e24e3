//! cgroup v1: one hierarchy per controller (or group of controllers).

use std::path::Path;

use super::CPU_PERIOD_US;
use super::{CgroupFs, Limits, Setting};
use crate::error::{Error, Result};

/// The files for `limits`, restricted to the controllers of one hierarchy,
/// in the order they must be written.
pub fn settings(
    limits: &Limits,
    controllers: &[&str],
    parent: &Path,
    fs: &dyn CgroupFs,
) -> Result<Vec<Setting>> {
    let mut s = Vec::new();
    if controllers.contains(&"memory") {
        if let Some(m) = limits.memory {
            // memsw must never be below the memory limit: memory first.
            s.push(Setting::new("memory.limit_in_bytes", m));
            match limits.memory_swap {
                // Without swap accounting the file is missing and there is
                // no swap limit to set.
                None => s.push(Setting::optional("memory.memsw.limit_in_bytes", m)),
                Some(None) => {}
                Some(Some(total)) => s.push(Setting::new("memory.memsw.limit_in_bytes", total)),
            }
        }
    }
    if controllers.contains(&"cpu") {
        if let Some(q) = limits.cpu_quota_us {
            s.push(Setting::new(
                "cpu.cfs_period_us",
                limits.cpu_period_us.unwrap_or(CPU_PERIOD_US),
            ));
            s.push(Setting::new("cpu.cfs_quota_us", q));
        }
        if let Some(shares) = limits.cpu_shares {
            s.push(Setting::new("cpu.shares", shares));
        }
    }
    if controllers.contains(&"cpuset") {
        if let Some(cpus) = &limits.cpuset {
            // A new v1 cpuset starts with no CPUs and no memory nodes, and
            // refuses tasks until both are set.
            s.push(Setting::new("cpuset.cpus", cpus));
            s.push(Setting::new(
                "cpuset.mems",
                read_trim(fs, &parent.join("cpuset.mems"))?,
            ));
        }
    }
    if controllers.contains(&"pids") {
        if let Some(p) = limits.pids {
            s.push(Setting::new("pids.max", p));
        }
    }
    Ok(s)
}

/// Gives a cpuset directory we made the CPUs and memory nodes of its parent.
pub fn inherit_cpuset(dir: &Path, parent: &Path, fs: &dyn CgroupFs) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = read_trim(fs, &parent.join(file))?;
        let path = dir.join(file);
        fs.write(&path, &value)
            .map_err(|e| super::write_error(&path, &value, &e))?;
    }
    Ok(())
}

fn read_trim(fs: &dyn CgroupFs, path: &Path) -> Result<String> {
    fs.read(path)
        .map(|v| v.trim().to_string())
        .map_err(|e| Error::os(format_args!("read {}", path.display()), &e))
}

//! Kernel calls husk uses that some supported kernels lack. Each is found
//! out by calling it (ENOSYS), never from a version number, and has a
//! fallback or one clear line; `HUSK_PRETEND_ENOSYS` (tests only) makes
//! the runner and the shim take the fallbacks on a kernel that has them.
//!
//! | call | since | without it |
//! |---|---|---|
//! | `open_tree`, `move_mount` | 5.2 | refused: the rootfs cannot be bound race-free |
//! | `openat2` | 5.6 | the shim walks paths one component at a time |
//! | `close_range` | 5.9 (CLOEXEC 5.11) | fds marked one by one from /proc/self/fd |
//! | `mount_setattr` | 5.12 | each mount below the rootfs remounted nodev |
//! | `cgroup.kill` | 5.14 | each process of the cgroup killed by pid |
//! | `execveat(fd, "", AT_EMPTY_PATH)` | 3.19 (ENOENT on some 5.10 stables) | the shim run by its fd's /proc path |

use std::cell::Cell;

/// One of the calls in the table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    OpenTree,
    Openat2,
    CloseRange,
    MountSetattr,
    CgroupKill,
    Execveat,
}

impl Call {
    pub const ALL: [Call; 6] = [
        Call::OpenTree,
        Call::Openat2,
        Call::CloseRange,
        Call::MountSetattr,
        Call::CgroupKill,
        Call::Execveat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Call::OpenTree => "open_tree",
            Call::Openat2 => "openat2",
            Call::CloseRange => "close_range",
            Call::MountSetattr => "mount_setattr",
            Call::CgroupKill => "cgroup.kill",
            Call::Execveat => "execveat",
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// The calls known to be missing: pretended by the test knob, or found
/// out when one answered ENOSYS.
#[derive(Debug, Default, Clone)]
pub struct Missing(Cell<u32>);

impl Missing {
    /// "openat2,mount_setattr": the calls to pretend are missing. An
    /// unknown name is an error, so that a typo cannot make a test of a
    /// fallback pass without running it.
    pub fn pretend(list: &str) -> Result<Missing, String> {
        let missing = Missing::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let call = Call::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = Call::ALL.iter().map(|c| c.name()).collect();
                    format!(
                        "HUSK_PRETEND_ENOSYS: unknown call {name} (known: {})",
                        known.join(", ")
                    )
                })?;
            missing.set(call);
        }
        Ok(missing)
    }

    pub fn has(&self, call: Call) -> bool {
        self.0.get() & call.bit() != 0
    }

    pub fn set(&self, call: Call) {
        self.0.set(self.0.get() | call.bit());
    }

    /// What the shim must pretend (`shim::plan::missing`).
    pub fn for_shim(&self) -> u32 {
        if self.has(Call::Openat2) {
            shim::plan::missing::OPENAT2
        } else {
            0
        }
    }

    /// Runs `call` unless it is known to be missing; an ENOSYS answer
    /// marks it missing. None: take the fallback.
    pub fn try_call<T>(
        &self,
        call: Call,
        f: impl FnOnce() -> std::io::Result<T>,
    ) -> Option<std::io::Result<T>> {
        if self.has(call) {
            return None;
        }
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                self.set(call);
                None
            }
            r => Some(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_knob_names_calls_and_refuses_typos() {
        let m = Missing::pretend("openat2, mount_setattr").unwrap();
        assert!(m.has(Call::Openat2) && m.has(Call::MountSetattr));
        assert!(!m.has(Call::CloseRange));
        assert_eq!(m.for_shim(), shim::plan::missing::OPENAT2);
        assert!(Missing::pretend("openat3").unwrap_err().contains("openat3"));
        let none = Missing::pretend("").unwrap();
        let nosys = || Err::<(), _>(std::io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(none.try_call(Call::CloseRange, nosys).is_none());
        assert!(none.has(Call::CloseRange), "ENOSYS is remembered");
        assert!(none.try_call(Call::CgroupKill, || Ok(1)).is_some());
    }
}

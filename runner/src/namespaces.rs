//! The container's namespaces as one ordered table: for each kind, a new
//! one, one joined by path (`/proc/PID/ns/net`, a bind-mounted netns file:
//! what podman and containerd hand a runtime for the network), or the
//! host's. `spawn` takes the clone flags from it and the plan the joins;
//! the order of the table is the order they are joined in.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mount,
    Uts,
    Ipc,
    Pid,
    Net,
    Cgroup,
}

impl Kind {
    /// The order namespaces are set up in (as youki's ORDERED_NAMESPACES):
    /// the cgroup one last, once the shim sits in the container's cgroup.
    pub const ORDER: [Kind; 6] = [
        Kind::Pid,
        Kind::Net,
        Kind::Ipc,
        Kind::Uts,
        Kind::Mount,
        Kind::Cgroup,
    ];

    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Kind::Mount => libc::CLONE_NEWNS,
            Kind::Uts => libc::CLONE_NEWUTS,
            Kind::Ipc => libc::CLONE_NEWIPC,
            Kind::Pid => libc::CLONE_NEWPID,
            Kind::Net => libc::CLONE_NEWNET,
            Kind::Cgroup => libc::CLONE_NEWCGROUP,
        }
    }

    /// As /proc/PID/ns names it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mount => "mnt",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Cgroup => "cgroup",
        }
    }

    /// Joining is done by the shim with setns, which for these takes
    /// effect at once; a PID namespace joined that way would only hold the
    /// shim's children, and the mount and cgroup ones are the container's
    /// own by design.
    fn joinable(self) -> bool {
        matches!(self, Kind::Net | Kind::Ipc | Kind::Uts)
    }
}

#[derive(Debug)]
pub enum Mode {
    New,
    /// An opened namespace file to setns into.
    Join(OwnedFd),
    Host,
}

#[derive(Debug)]
pub struct Namespaces {
    table: Vec<(Kind, Mode)>,
}

impl Default for Namespaces {
    /// Every namespace new: what a container is.
    fn default() -> Namespaces {
        Namespaces {
            table: Kind::ORDER.iter().map(|&k| (k, Mode::New)).collect(),
        }
    }
}

impl Namespaces {
    pub fn mode(&self, kind: Kind) -> &Mode {
        self.table
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, m)| m)
            .unwrap_or(&Mode::New)
    }

    /// Sets `kind` to the host's.
    pub fn host(&mut self, kind: Kind) -> Result<()> {
        if matches!(kind, Kind::Mount | Kind::Pid | Kind::Cgroup) {
            return Err(Error::new(format!(
                "the {} namespace cannot be the host's: a container needs its own",
                kind.name()
            )));
        }
        self.set(kind, Mode::Host);
        Ok(())
    }

    /// Joins `kind` from the namespace file `path`, opened now and checked
    /// to be a namespace of that kind.
    pub fn join(&mut self, kind: Kind, path: &str) -> Result<()> {
        if !kind.joinable() {
            return Err(Error::new(format!(
                "joining a {} namespace is not supported",
                kind.name()
            )));
        }
        let c =
            CString::new(path).map_err(|_| Error::new(format!("{path:?}: contains a NUL byte")))?;
        // SAFETY: open takes a C string and flags; the fd is then ours.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(Error::os(
                format_args!("open the {} namespace {path}", kind.name()),
                &std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let fd = crate::fds::held(fd).map_err(|e| Error::os("move the namespace's fd", &e))?;
        // NS_GET_NSTYPE (4.11) says what the file is; anything else is not
        // a namespace and answers ENOTTY.
        const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
        // SAFETY: an ioctl without an argument on our own fd.
        let nstype = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
        if nstype != kind.clone_flag() {
            return Err(Error::new(format!(
                "{path}: not a {} namespace",
                kind.name()
            )));
        }
        self.set(kind, Mode::Join(fd));
        Ok(())
    }

    fn set(&mut self, kind: Kind, mode: Mode) {
        if let Some(entry) = self.table.iter_mut().find(|(k, _)| *k == kind) {
            entry.1 = mode;
        }
    }

    /// The clone(2) flags: every new namespace but the cgroup one, which
    /// the shim unshares once it is in the container's cgroup.
    pub fn clone_flags(&self) -> libc::c_int {
        self.table
            .iter()
            .filter(|(k, m)| matches!(m, Mode::New) && *k != Kind::Cgroup)
            .fold(0, |flags, (k, _)| flags | k.clone_flag())
    }

    /// The namespaces to join, in order.
    pub fn joins(&self) -> impl Iterator<Item = (Kind, &OwnedFd)> {
        self.table.iter().filter_map(|(k, m)| match m {
            Mode::Join(fd) => Some((*k, fd)),
            _ => None,
        })
    }

    pub fn is_new(&self, kind: Kind) -> bool {
        matches!(self.mode(kind), Mode::New)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_table() {
        let mut ns = Namespaces::default();
        let all = libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET;
        assert_eq!(ns.clone_flags(), all);
        ns.host(Kind::Net).unwrap();
        assert_eq!(ns.clone_flags(), all & !libc::CLONE_NEWNET);
        assert!(ns.host(Kind::Mount).is_err());
        // Our own net namespace joined by path: no new one, one join.
        let mut ns = Namespaces::default();
        ns.join(Kind::Net, "/proc/self/ns/net").unwrap();
        assert_eq!(ns.clone_flags() & libc::CLONE_NEWNET, 0);
        assert_eq!(ns.joins().count(), 1);
        let e = ns.join(Kind::Uts, "/proc/self/ns/net").unwrap_err();
        assert!(e.message.contains("not a uts namespace"), "{e}");
        assert!(ns.join(Kind::Pid, "/proc/self/ns/pid").is_err());
    }
}

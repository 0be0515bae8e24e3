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
    User,
    Mount,
    Uts,
    Ipc,
    Pid,
    Net,
    Cgroup,
}

impl Kind {
    /// The order namespaces are set up in (as youki's ORDERED_NAMESPACES):
    /// the user one first, which owns the others, and the cgroup one last,
    /// once the shim sits in the container's cgroup.
    pub const ORDER: [Kind; 7] = [
        Kind::User,
        Kind::Pid,
        Kind::Net,
        Kind::Ipc,
        Kind::Uts,
        Kind::Mount,
        Kind::Cgroup,
    ];

    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Kind::User => libc::CLONE_NEWUSER,
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
            Kind::User => "user",
            Kind::Mount => "mnt",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Cgroup => "cgroup",
        }
    }

    /// The cgroup namespace is the container's own by design: the shim
    /// makes it once it sits in the container's cgroup.
    fn joinable(self) -> bool {
        self != Kind::Cgroup
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
    /// Every namespace new but the user one: what a container is (a user
    /// namespace is an OCI config's to ask for).
    fn default() -> Namespaces {
        let mut ns = Namespaces {
            table: Kind::ORDER.iter().map(|&k| (k, Mode::New)).collect(),
        };
        ns.set(Kind::User, Mode::Host);
        ns
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

    /// Sets `kind` to the host's. Never the mount namespace: the
    /// container's mounts would be made in the host's. The host's PID
    /// namespace is an OCI caller's to ask for (`--pid=host`): in it the
    /// shim is not PID 1, and nothing ends the container's processes with
    /// it (`oci::kill` signals the cgroup's).
    pub fn host(&mut self, kind: Kind) -> Result<()> {
        if matches!(kind, Kind::Mount | Kind::Cgroup) {
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

    /// Makes `kind` new.
    pub fn new_one(&mut self, kind: Kind) {
        self.set(kind, Mode::New);
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

    /// The namespaces the shim joins, in order: setns takes effect at once
    /// for these. Not the PID namespace, which setns changes for the
    /// children made afterwards only: the runner enters it before the
    /// clone (`pid_join`).
    pub fn joins(&self) -> impl Iterator<Item = (Kind, &OwnedFd)> {
        self.table.iter().filter_map(|(k, m)| match m {
            Mode::Join(fd) if *k != Kind::Pid => Some((*k, fd)),
            _ => None,
        })
    }

    /// The PID namespace to start the shim in, if one is joined.
    pub fn pid_join(&self) -> Option<&OwnedFd> {
        match self.mode(Kind::Pid) {
            Mode::Join(fd) => Some(fd),
            _ => None,
        }
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
        // PID: joined by the runner before the clone, not by the shim.
        ns.join(Kind::Pid, "/proc/self/ns/pid").unwrap();
        assert_eq!(ns.joins().count(), 1);
        assert!(ns.pid_join().is_some());
        assert!(ns.join(Kind::Cgroup, "/proc/self/ns/cgroup").is_err());
    }
}

//! The plan of `exec`: a new process in a running container. The shim
//! joins the container's namespaces (the runner entered its PID namespace
//! before the clone, see spawn.rs, and moved the shim into its cgroups
//! before sending this), takes PID 1's root, and ends as the container's
//! own processes began: same capabilities, no_new_privs and seccomp
//! filter, in a session of its own.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd};

use shim::plan::{Encoder, Op};

use super::{Builder, Identity, Plan};
use crate::error::{Error, Result};
use crate::namespaces::Kind;

/// What of a running container the new process enters: its namespaces
/// (all but the PID one), opened from /proc/PID/ns of its PID 1, and PID
/// 1's root directory.
pub struct Joined {
    pub namespaces: Vec<(Kind, OwnedFd)>,
    pub root: OwnedFd,
}

/// The process to start.
pub struct Process<'a> {
    pub argv: &'a [CString],
    pub candidates: &'a [CString],
    pub env: &'a [CString],
    pub workdir: &'a CStr,
    pub tty: bool,
    /// uid, gid.
    pub user: Option<(u32, u32)>,
    pub caps: u64,
    /// The inheritable and ambient sets (an OCI process's; else 0).
    pub inheritable: u64,
    pub ambient: u64,
    /// Supplementary groups and umask with `user`; `keep_caps` as in
    /// Spec (an OCI process keeps its sets whatever its uid).
    pub groups: &'a [u32],
    pub umask: u32,
    pub keep_caps: bool,
    pub no_new_privs: bool,
    pub seccomp: bool,
    /// The container's own filter when it came from an OCI profile.
    pub filter: Option<&'a [u8]>,
    /// Kernel features to pretend are missing (the tests' knob).
    pub pretend: u32,
}

pub fn build_exec(joined: &Joined, p: &Process<'_>) -> Result<Plan> {
    let mut b = Builder::default();
    // First: the joins below put this process where the container's
    // processes can see it while it still has every capability and the
    // host's root.
    b.push(Op::Undumpable);
    if p.pretend != 0 {
        b.push(Op::Pretend { missing: p.pretend });
    }
    for (kind, fd) in &joined.namespaces {
        let fd = b.pass(fd.as_raw_fd());
        b.push(Op::SetNs {
            fd,
            nstype: kind.clone_flag() as u32,
        });
    }
    // After the mount namespace: the root is PID 1's, whether it pivoted
    // or (on an initramfs host) chrooted.
    let root = b.pass(joined.root.as_raw_fd());
    b.push(Op::EnterRoot { fd: root });
    b.push(Op::Chdir { path: p.workdir });
    b.push(Op::Setsid);
    if p.tty {
        b.push(Op::ControllingTty);
    }
    if p.no_new_privs {
        b.push(Op::NoNewPrivs);
    }
    if let Some(filter) = p.filter {
        b.push(Op::Seccomp { filter });
    } else if p.seccomp {
        // The container's: the filter follows the capabilities.
        let filter = crate::seccomp::filter(p.caps)
            .map_err(|e| Error::new(format!("compile the seccomp filter: {e}")))?;
        b.push(Op::Seccomp { filter: &filter });
    }
    b.identity(&Identity {
        caps: [p.caps, p.inheritable, p.ambient],
        user: p.user,
        groups: p.groups,
        umask: p.umask,
        keep_caps: p.keep_caps,
    });
    let mut storage: [Vec<u8>; 3] = Default::default();
    let [x, y, z] = &mut storage;
    b.push(Op::Exec {
        candidates: Encoder::strs(x, p.candidates),
        argv: Encoder::strs(y, p.argv),
        envp: Encoder::strs(z, p.env),
    });
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe;

    #[test]
    fn joins_then_enters_the_root_then_drops_privileges() {
        let null = || -> OwnedFd { std::fs::File::open("/dev/null").unwrap().into() };
        let joined = Joined {
            namespaces: vec![(Kind::Net, null()), (Kind::Mount, null())],
            root: null(),
        };
        let argv = [c"sh".to_owned()];
        let p = Process {
            argv: &argv,
            candidates: &argv,
            env: &[],
            workdir: c"/",
            tty: true,
            user: Some((1000, 1000)),
            caps: crate::caps::DEFAULT,
            no_new_privs: true,
            seccomp: true,
            filter: None,
            inheritable: 0,
            ambient: 0,
            groups: &[],
            umask: 0o022,
            keep_caps: false,
            pretend: 0,
        };
        let plan = build_exec(&joined, &p).unwrap();
        let steps: Vec<String> = super::super::decode(&plan.bytes)
            .iter()
            .map(describe::op)
            .collect();
        assert_eq!(
            steps,
            [
                "make the process undumpable",
                "join a namespace",
                "join a namespace",
                "enter the container's root",
                "chdir /",
                "setsid",
                "take the pseudo-terminal as controlling terminal",
                "set no_new_privs",
                "install the seccomp filter",
                "set the capabilities",
                "become uid 1000, gid 1000",
                "exec sh",
            ]
        );
        assert_eq!(plan.passed.len(), 3);
        assert_eq!(plan.exec_step, steps.len() - 1);
    }
}

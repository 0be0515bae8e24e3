//! The container as data: every operation the shim performs, in the one
//! order that works. The order is the whole design, so it lives here and
//! nowhere else.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;

use shim::plan::{ms, Encoder, Op};

use crate::spec::Spec;

/// The encoded plan, and how each of its steps is named in errors.
pub struct Plan {
    pub bytes: Vec<u8>,
    pub steps: Vec<String>,
    /// The index of the exec step, whose failures get their own statuses.
    pub exec_step: usize,
}

/// Device nodes bind-mounted from the host: binding works even where mknod
/// is refused (user namespaces, some LSMs).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

const DEV_LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

const NOSUID_NODEV_NOEXEC: u32 = ms::NOSUID | ms::NODEV | ms::NOEXEC;

pub fn build(spec: &Spec) -> Plan {
    let mut p = Builder::default();
    let root = spec.rootfs.as_os_str().as_bytes();
    let at = |rel: &str| -> CString {
        let mut v = root.to_vec();
        v.extend_from_slice(rel.as_bytes());
        CString::new(v).expect("rootfs and plan paths hold no NUL")
    };

    // The runner moved us into the container's cgroup before sending the
    // plan; a cgroup namespace made now is rooted there.
    p.push(Op::UnshareCgroup);
    // Nothing we mount may propagate back to the host, and pivot_root fails
    // with EINVAL while / is shared (every systemd host). Slave, as runc
    // does, still lets the host's unmounts reach us.
    p.push(Op::Mount {
        source: c"",
        target: c"/",
        fstype: c"",
        flags: ms::REC | ms::SLAVE,
        data: c"",
    });
    // pivot_root needs the new root to be a mount point.
    let rootfs = at("");
    p.push(Op::Mount {
        source: &rootfs,
        target: &rootfs,
        fstype: c"",
        flags: ms::BIND | ms::REC,
        data: c"",
    });

    p.mount_dir(&at("/proc"), c"proc", c"proc", NOSUID_NODEV_NOEXEC, c"");
    p.mount_dir(
        &at("/dev"),
        c"tmpfs",
        c"tmpfs",
        ms::NOSUID | ms::STRICTATIME,
        c"mode=755,size=65536k",
    );
    for dev in DEVICES {
        let (host, target) = (
            CString::new(format!("/dev/{dev}")).unwrap(),
            at(&format!("/dev/{dev}")),
        );
        p.push(Op::Touch { path: &target });
        p.push(Op::Mount {
            source: &host,
            target: &target,
            fstype: c"",
            flags: ms::BIND,
            data: c"",
        });
    }
    for (target, name) in DEV_LINKS {
        let (target, path) = (CString::new(target).unwrap(), at(&format!("/dev/{name}")));
        p.push(Op::Symlink {
            target: &target,
            path: &path,
        });
    }
    p.mount_dir(
        &at("/dev/pts"),
        c"devpts",
        c"devpts",
        ms::NOSUID | ms::NOEXEC,
        c"newinstance,ptmxmode=0666,mode=0620,gid=5",
    );
    p.mount_dir(
        &at("/dev/shm"),
        c"shm",
        c"tmpfs",
        NOSUID_NODEV_NOEXEC,
        c"mode=1777,size=65536k",
    );
    p.mount_dir(
        &at("/dev/mqueue"),
        c"mqueue",
        c"mqueue",
        NOSUID_NODEV_NOEXEC,
        c"",
    );
    p.mount_dir(
        &at("/sys"),
        c"sysfs",
        c"sysfs",
        NOSUID_NODEV_NOEXEC | ms::RDONLY,
        c"",
    );

    let hostname = CString::new(spec.hostname.as_str()).unwrap();
    p.push(Op::Hostname { name: &hostname });
    if spec.new_net {
        p.push(Op::LoopbackUp);
    }
    p.push(Op::PivotRoot { path: &rootfs });
    p.push(Op::Chdir {
        path: &spec.workdir,
    });

    let exec_step = p.steps.len();
    let mut storage: [Vec<u8>; 3] = Default::default();
    let [a, b, c] = &mut storage;
    p.push(Op::Exec {
        candidates: Encoder::strs(a, &spec.candidates),
        argv: Encoder::strs(b, &spec.argv),
        envp: Encoder::strs(c, &spec.env),
    });
    Plan {
        bytes: p.enc.finish(),
        steps: p.steps,
        exec_step,
    }
}

#[derive(Default)]
struct Builder {
    enc: Encoder,
    steps: Vec<String>,
}

impl Builder {
    fn push(&mut self, op: Op<'_>) {
        self.enc.push(&op);
        self.steps.push(op.to_string());
    }

    /// Mount a filesystem on a directory, creating the directory if the
    /// rootfs lacks it.
    fn mount_dir(&mut self, target: &CStr, source: &CStr, fstype: &CStr, flags: u32, data: &CStr) {
        self.push(Op::Mkdir {
            path: target,
            mode: 0o755,
        });
        self.push(Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Limits;
    use shim::plan::{Plan as Decoded, HEADER_LEN};

    fn spec(new_net: bool) -> Spec {
        Spec {
            rootfs: "/srv/box".into(),
            hostname: "box".into(),
            env: vec![CString::new("PATH=/bin").unwrap()],
            workdir: CString::new("/tmp").unwrap(),
            argv: vec![CString::new("sh").unwrap()],
            candidates: vec![CString::new("/bin/sh").unwrap()],
            new_net,
            limits: Limits::default(),
            cgroup_parent: None,
            shim: crate::shim::Source::File("/x".into()),
        }
    }

    #[test]
    fn the_order_that_matters() {
        let plan = build(&spec(true));
        let body = &plan.bytes[HEADER_LEN..];
        let ops: Vec<Op<'_>> = Decoded::new(body)
            .unwrap()
            .ops()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ops.len(), plan.steps.len());
        let pos = |want: &str| {
            plan.steps
                .iter()
                .position(|s| s == want)
                .unwrap_or_else(|| panic!("no step {want}: {:?}", plan.steps))
        };
        assert_eq!(pos("unshare cgroup namespace"), 0);
        assert_eq!(pos("change propagation of /"), 1);
        assert!(pos("bind /srv/box on /srv/box") < pos("mount proc on /srv/box/proc"));
        assert!(pos("mount tmpfs on /srv/box/dev") < pos("bind /dev/null on /srv/box/dev/null"));
        assert!(pos("mount tmpfs on /srv/box/dev") < pos("mount devpts on /srv/box/dev/pts"));
        assert!(pos("bring up lo") < pos("pivot_root into /srv/box"));
        assert!(pos("pivot_root into /srv/box") < pos("chdir /tmp"));
        assert_eq!(plan.exec_step, ops.len() - 1);
        assert_eq!(plan.steps[plan.exec_step], "exec sh");
        assert!(matches!(ops[plan.exec_step], Op::Exec { .. }));
    }

    #[test]
    fn host_network_keeps_lo_alone() {
        let plan = build(&spec(false));
        assert!(!plan.steps.iter().any(|s| s == "bring up lo"));
    }
}

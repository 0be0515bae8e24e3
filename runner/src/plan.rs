//! The container as data: every operation the shim performs, in the one
//! order that works. The order is the whole design, so it lives here and
//! nowhere else.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use shim::plan::{ms, Encoder, Op};
use shim::report::FIRST_PASSED_FD;

use crate::cgroup::{Layout, Version};
use crate::error::{Error, Result};
use crate::namespaces::Kind;
use crate::rootfs::Detached;
use crate::spec::Spec;

/// The encoded plan, and the fds it hands the shim.
pub struct Plan {
    pub bytes: Vec<u8>,
    /// The index of the exec step, whose failures get their own statuses.
    pub exec_step: usize,
    /// The runner's fds that the child passes on as FIRST_PASSED_FD,
    /// FIRST_PASSED_FD + 1, ..., in this order.
    pub passed: Vec<RawFd>,
}

/// Device nodes bind-mounted from the host: binding works even where mknod
/// is refused (user namespaces, some LSMs).
const DEVICES: [(&CStr, &CStr); 6] = [
    (c"/dev/null", c"dev/null"),
    (c"/dev/zero", c"dev/zero"),
    (c"/dev/full", c"dev/full"),
    (c"/dev/random", c"dev/random"),
    (c"/dev/urandom", c"dev/urandom"),
    (c"/dev/tty", c"dev/tty"),
];

const DEV_LINKS: [(&CStr, &CStr); 5] = [
    (c"/proc/self/fd", c"dev/fd"),
    (c"/proc/self/fd/0", c"dev/stdin"),
    (c"/proc/self/fd/1", c"dev/stdout"),
    (c"/proc/self/fd/2", c"dev/stderr"),
    (c"pts/ptmx", c"dev/ptmx"),
];

/// Docker's masked paths: hidden behind /dev/null (files) or an empty
/// read-only tmpfs (directories).
const MASKED: [&CStr; 12] = [
    c"proc/acpi",
    c"proc/asound",
    c"proc/interrupts",
    c"proc/kcore",
    c"proc/keys",
    c"proc/latency_stats",
    c"proc/sched_debug",
    c"proc/scsi",
    c"proc/timer_list",
    c"proc/timer_stats",
    c"sys/devices/virtual/powercap",
    c"sys/firmware",
];

/// Docker's read-only paths.
const READ_ONLY: [&CStr; 5] = [
    c"proc/bus",
    c"proc/fs",
    c"proc/irq",
    c"proc/sys",
    c"proc/sysrq-trigger",
];

const NOSUID_NODEV_NOEXEC: u32 = ms::NOSUID | ms::NODEV | ms::NOEXEC;

/// `console`: the pseudo-terminal given to the container, if any. `root`:
/// the rootfs's detached mount tree (see rootfs.rs).
pub fn build(
    spec: &Spec,
    layout: &Layout,
    console: Option<&CStr>,
    root: &Detached,
) -> Result<Plan> {
    let mut p = Builder {
        fail_at: spec.fail_at_step,
        ..Builder::default()
    };
    let sec = &spec.security;

    let pretend = spec.missing.for_shim();
    if pretend != 0 {
        p.push(Op::Pretend { missing: pretend });
    }
    for (kind, fd) in spec.namespaces.joins() {
        let fd = p.pass(fd.as_raw_fd());
        p.push(Op::SetNs {
            fd,
            nstype: kind.clone_flag() as u32,
        });
    }
    // The runner moved us into the container's cgroup before sending the
    // plan; a cgroup namespace made now is rooted there.
    p.push(Op::Unshare {
        flags: libc::CLONE_NEWCGROUP as u32,
    });
    // Nothing we mount may propagate back to the host, and pivot_root fails
    // with EINVAL while / is shared (every systemd host). Slave, as runc
    // does, still lets the host's unmounts reach us.
    let slave = ms::REC | ms::SLAVE;
    p.push(Op::Propagation { flags: slave });
    // From here on every path is resolved beneath the rootfs, refusing
    // symlinks: see shim::plan::Op.
    let tree = p.pass(root.tree.as_raw_fd());
    p.push(Op::AttachRoot {
        fd: tree,
        propagation: slave,
    });
    // CAP_MKNOD is in the default set, and husk has no device cgroup (a
    // container without limits has no cgroup at all): a node made in the
    // container, or shipped in the image, must not open, on the rootfs or
    // on any mount below it. The runner made the whole tree nodev where
    // the kernel can (mount_setattr); else each mount is remounted here.
    // The standard devices are binds of the host's, mounts of their own
    // that keep working. Docker gets the same from its device cgroup:
    // mknod succeeds, open fails.
    for path in &root.remount_nodev {
        p.push(Op::RemountBind {
            path,
            bind: false,
            set: ms::NODEV,
            optional: false,
        });
    }
    let nodev = if sec.privileged { 0 } else { ms::NODEV };

    p.mount_dir(c"proc", c"proc", c"proc", NOSUID_NODEV_NOEXEC, c"");
    p.mount_dir(
        c"dev",
        c"tmpfs",
        c"tmpfs",
        ms::NOSUID | ms::STRICTATIME | nodev,
        c"mode=755,size=65536k",
    );
    for (host, target) in DEVICES {
        p.bind_node(host, target);
    }
    for (target, path) in DEV_LINKS {
        p.push(Op::Symlink { target, path });
    }
    if let Some(pty) = console {
        p.bind_node(pty, c"dev/console");
    }
    let devpts = c"newinstance,ptmxmode=0666,mode=0620,gid=5";
    p.mount_dir(
        c"dev/pts",
        c"devpts",
        c"devpts",
        ms::NOSUID | ms::NOEXEC,
        devpts,
    );
    p.mount_dir(
        c"dev/shm",
        c"shm",
        c"tmpfs",
        NOSUID_NODEV_NOEXEC,
        c"mode=1777,size=65536k",
    );
    p.mount_dir(
        c"dev/mqueue",
        c"mqueue",
        c"mqueue",
        NOSUID_NODEV_NOEXEC,
        c"",
    );
    let sys_ro = if sec.privileged { 0 } else { ms::RDONLY };
    p.mount_dir(
        c"sys",
        c"sysfs",
        c"sysfs",
        NOSUID_NODEV_NOEXEC | sys_ro,
        c"",
    );
    cgroupfs(&mut p, layout);
    if !sec.privileged {
        for target in MASKED {
            // Not every kernel has every path.
            p.push(Op::Mask {
                target,
                null: c"dev/null",
                flags: ms::RDONLY | NOSUID_NODEV_NOEXEC,
                data: c"size=4k,nr_inodes=2",
                optional: true,
            });
        }
        for path in READ_ONLY {
            p.push(Op::RemountBind {
                path,
                bind: true,
                set: ms::RDONLY | NOSUID_NODEV_NOEXEC,
                optional: true,
            });
        }
    }

    p.push(Op::Hostname {
        name: &spec.hostname,
    });
    if spec.namespaces.is_new(Kind::Net) {
        p.push(Op::LoopbackUp);
    }
    p.push(if spec.pivot {
        Op::PivotRoot
    } else {
        Op::ChrootRoot
    });
    p.push(Op::Chdir {
        path: &spec.workdir,
    });
    // No controlling terminal: a container cannot push keystrokes into the
    // caller's with TIOCSTI (bubblewrap's CVE-2017-5226).
    p.push(Op::Setsid);
    if console.is_some() {
        p.push(Op::ControllingTty);
    }
    if sec.no_new_privs {
        p.push(Op::NoNewPrivs);
    }
    // Before the capabilities go: without no_new_privs, installing a filter
    // needs CAP_SYS_ADMIN. The filter allows what follows it.
    if sec.seccomp {
        let filter = crate::seccomp::filter(sec.caps)
            .map_err(|e| Error::new(format!("compile the seccomp filter: {e}")))?;
        p.push(Op::Seccomp { filter: &filter });
    }
    p.push(Op::Capabilities { keep: sec.caps });

    let mut storage: [Vec<u8>; 3] = Default::default();
    let [a, b, c] = &mut storage;
    p.push(Op::Exec {
        candidates: Encoder::strs(a, &spec.candidates),
        argv: Encoder::strs(b, &spec.argv),
        envp: Encoder::strs(c, &spec.env),
    });
    Ok(p.finish())
}

/// /sys/fs/cgroup inside: the host's hierarchies as the container's cgroup
/// namespace shows them (its own cgroup as the root), read-only
/// (runc's CVE-2023-25809). With an empty layout (a container without
/// limits has no cgroup of its own) it stays the empty directory of the
/// read-only /sys.
fn cgroupfs(p: &mut Builder, layout: &Layout) {
    let ro = NOSUID_NODEV_NOEXEC | ms::RDONLY;
    let root = c"sys/fs/cgroup";
    let v1: Vec<_> = layout
        .hierarchies
        .iter()
        .filter(|h| h.version == Version::V1)
        .collect();
    let v2 = layout.hierarchies.iter().find(|h| h.version == Version::V2);
    if v1.is_empty() {
        if v2.is_some() {
            p.push(Op::Mount {
                source: c"cgroup2",
                target: root,
                fstype: c"cgroup2",
                flags: ro,
                data: c"",
                optional: false,
            });
        }
        return;
    }
    p.push(Op::Mount {
        source: c"tmpfs",
        target: root,
        fstype: c"tmpfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: c"mode=755,size=64k",
        optional: false,
    });
    // Mount points come from mountinfo and hold no NUL; one that did would
    // be left out, never unwrapped.
    for h in &v1 {
        let controllers = h.controllers.join(",");
        let name = dir_name(&h.mountpoint, &controllers);
        let (Ok(target), Ok(controllers)) = (
            CString::new(format!("sys/fs/cgroup/{name}")),
            CString::new(controllers),
        ) else {
            continue;
        };
        p.mount_dir(&target, c"cgroup", c"cgroup", ro, &controllers);
    }
    if let Some(h) = v2 {
        let name = dir_name(&h.mountpoint, "unified");
        if let Ok(target) = CString::new(format!("sys/fs/cgroup/{name}")) {
            p.mount_dir(&target, c"cgroup2", c"cgroup2", ro, c"");
        }
    }
    p.push(Op::Mount {
        source: c"",
        target: root,
        fstype: c"",
        flags: ms::REMOUNT | ro,
        data: c"mode=755,size=64k",
        optional: false,
    });
}

/// The name a hierarchy's directory has on the host, if it is a plain one.
fn dir_name(mountpoint: &Path, fallback: &str) -> String {
    mountpoint
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .unwrap_or(fallback)
        .to_string()
}

#[derive(Default)]
struct Builder {
    enc: Encoder,
    steps: usize,
    passed: Vec<RawFd>,
    /// Tests only: put a failing step at this index.
    fail_at: Option<usize>,
}

impl Builder {
    fn push(&mut self, op: Op<'_>) {
        if self.fail_at == Some(self.steps) {
            self.fail_at = None;
            self.push(Op::Fail {
                errno: libc::EIO as u32,
            });
        }
        self.enc.push(&op);
        self.steps += 1;
    }

    /// Hands `fd` to the shim; the number it will have there.
    fn pass(&mut self, fd: RawFd) -> u32 {
        self.passed.push(fd);
        (FIRST_PASSED_FD as usize + self.passed.len() - 1) as u32
    }

    /// Mount a filesystem on a directory in the root, creating the
    /// directory if the rootfs lacks it.
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
            optional: false,
        });
    }

    /// Bind the host's device node `host` on a file made for it.
    fn bind_node(&mut self, host: &CStr, target: &CStr) {
        self.push(Op::Touch {
            path: target,
            mode: 0o644,
        });
        self.push(Op::Mount {
            source: host,
            target,
            fstype: c"",
            flags: ms::BIND,
            data: c"",
            optional: false,
        });
    }

    fn finish(self) -> Plan {
        Plan {
            bytes: self.enc.finish(),
            exec_step: self.steps - 1,
            passed: self.passed,
        }
    }
}

/// The ops of an encoded plan, for tests and for describing a failure.
pub fn decode(bytes: &[u8]) -> Vec<Op<'_>> {
    let body = bytes.get(shim::plan::HEADER_LEN..).unwrap_or_default();
    shim::plan::Plan::new(body)
        .map(|p| p.ops().filter_map(Result::ok).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Limits;
    use crate::kernel::Missing;
    use crate::namespaces::Namespaces;
    use crate::rootfs::Rootfs;
    use crate::spec::Security;

    fn spec(new_net: bool, privileged: bool) -> Spec {
        let mut namespaces = Namespaces::default();
        if !new_net {
            namespaces.host(Kind::Net).unwrap();
        }
        Spec {
            id: "box".into(),
            rootfs: Rootfs::open("/tmp").unwrap(),
            hostname: c"box".into(),
            env: vec![c"PATH=/bin".into()],
            workdir: c"/tmp".into(),
            argv: vec![c"sh".into()],
            candidates: vec![c"/bin/sh".into()],
            namespaces,
            limits: Limits::default(),
            cgroup_parent: None,
            shim: crate::shim::Source::Embedded,
            security: Security {
                caps: crate::caps::DEFAULT,
                privileged,
                no_new_privs: true,
                seccomp: !privileged,
            },
            tty: false,
            pivot: true,
            parent_death_signal: true,
            fail_at_step: None,
            missing: Missing::default(),
        }
    }

    fn hybrid() -> Layout {
        let mi = "30 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  31 1 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        Layout::parse(mi, "4:memory:/a\n0::/\n", |_| String::new())
    }

    /// A detached tree stands in: /dev/null's fd, never attached here.
    fn root(remount_nodev: &[&CStr]) -> Detached {
        Detached {
            tree: std::fs::File::open("/dev/null").unwrap().into(),
            remount_nodev: remount_nodev.iter().map(|&p| p.to_owned()).collect(),
        }
    }

    /// The plan's steps as the runner names them in errors.
    fn steps(plan: &Plan) -> Vec<String> {
        decode(&plan.bytes)
            .iter()
            .map(crate::describe::op)
            .collect()
    }

    #[test]
    fn the_order_that_matters() {
        let plan = build(&spec(true, false), &hybrid(), None, &root(&[])).unwrap();
        let ops = decode(&plan.bytes);
        let steps = steps(&plan);
        let pos = |want: &str| {
            steps
                .iter()
                .position(|s| s == want)
                .unwrap_or_else(|| panic!("no step {want}: {steps:#?}"))
        };
        assert_eq!(pos("unshare the cgroup namespace"), 0);
        assert_eq!(pos("change the propagation of /"), 1);
        assert_eq!(pos("attach the rootfs"), 2);
        assert_eq!(
            ops[2],
            Op::AttachRoot {
                fd: FIRST_PASSED_FD as u32,
                propagation: ms::REC | ms::SLAVE
            }
        );
        assert_eq!(plan.passed.len(), 1);
        assert!(pos("mount tmpfs on /dev") < pos("bind /dev/null on /dev/null"));
        assert!(pos("mount tmpfs on /dev") < pos("mount devpts on /dev/pts"));
        assert!(pos("mount sysfs on /sys") < pos("mount cgroup on /sys/fs/cgroup/memory"));
        assert!(pos("mount cgroup2 on /sys/fs/cgroup/unified") < pos("remount /sys/fs/cgroup"));
        assert!(pos("mount proc on /proc") < pos("make /proc/sys read-only"));
        assert!(pos("bring up lo") < pos("pivot_root into the rootfs"));
        assert!(pos("pivot_root into the rootfs") < pos("chdir /tmp"));
        assert!(pos("set no_new_privs") < pos("install the seccomp filter"));
        assert!(pos("install the seccomp filter") < pos("set the capabilities"));
        assert_eq!(plan.exec_step, ops.len() - 1);
        assert_eq!(steps[plan.exec_step], "exec sh");
        assert!(matches!(ops[plan.exec_step], Op::Exec { .. }));
    }

    #[test]
    fn without_mount_setattr_each_mount_is_remounted_nodev() {
        let plan = build(&spec(true, false), &hybrid(), None, &root(&[c"", c"data"])).unwrap();
        let steps = steps(&plan);
        assert_eq!(steps[3..5], ["make / nodev", "make /data nodev"]);
    }

    #[test]
    fn joined_namespaces_are_passed_and_set() {
        let mut s = spec(true, false);
        s.namespaces.join(Kind::Net, "/proc/self/ns/net").unwrap();
        let plan = build(&s, &hybrid(), None, &root(&[])).unwrap();
        let ops = decode(&plan.bytes);
        assert_eq!(
            ops[0],
            Op::SetNs {
                fd: FIRST_PASSED_FD as u32,
                nstype: libc::CLONE_NEWNET as u32
            }
        );
        assert_eq!(plan.passed.len(), 2);
        assert!(!steps(&plan).iter().any(|s| s == "bring up lo"));
    }

    #[test]
    fn privileged_and_host_network_leave_out_their_steps() {
        let plan = build(&spec(false, true), &hybrid(), None, &root(&[])).unwrap();
        let steps = steps(&plan);
        assert!(!steps.iter().any(|s| s == "bring up lo"
            || s.starts_with("make /proc")
            || s.starts_with("mask ")
            || s.ends_with(" nodev")));
        assert!(!steps.iter().any(|s| s == "install the seccomp filter"));
    }

    #[test]
    fn where_pivot_root_cannot_work_the_root_is_chrooted() {
        let plan = build(
            &Spec {
                pivot: false,
                ..spec(true, false)
            },
            &hybrid(),
            None,
            &root(&[]),
        )
        .unwrap();
        let steps = steps(&plan);
        assert!(!steps.iter().any(|s| s == "pivot_root into the rootfs"));
        let chrooted = steps
            .iter()
            .position(|s| s == "chroot into the rootfs")
            .expect("a chroot instead");
        assert_eq!(steps[chrooted + 1], "chdir /tmp");
    }

    #[test]
    fn a_terminal_becomes_the_console_and_the_controlling_tty() {
        let plan = build(
            &spec(true, false),
            &hybrid(),
            Some(c"/dev/pts/7"),
            &root(&[]),
        )
        .unwrap();
        let steps = steps(&plan);
        let pos = |want: &str| {
            steps
                .iter()
                .position(|s| s == want)
                .unwrap_or_else(|| panic!("no {want}"))
        };
        assert!(pos("mount tmpfs on /dev") < pos("bind /dev/pts/7 on /dev/console"));
        assert_eq!(
            pos("setsid") + 1,
            pos("take the pseudo-terminal as controlling terminal")
        );
    }

    #[test]
    fn a_v2_host_gets_one_read_only_cgroup2() {
        let v2 = Layout::parse(
            "30 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/\n",
            |_| String::new(),
        );
        let plan = build(&spec(true, false), &v2, None, &root(&[])).unwrap();
        let ops = decode(&plan.bytes);
        let cg: Vec<_> = ops
            .iter()
            .filter(|op| matches!(op, Op::Mount { target, .. } if target.to_bytes().starts_with(b"sys/fs/cgroup")))
            .collect();
        assert_eq!(cg.len(), 1);
        assert!(
            matches!(cg[0], Op::Mount { fstype, flags, .. } if *fstype == c"cgroup2" && flags & ms::RDONLY != 0)
        );
    }

    #[test]
    fn the_failure_knob_inserts_one_failing_step() {
        let plain = steps(&build(&spec(true, false), &hybrid(), None, &root(&[])).unwrap());
        let mut s = spec(true, false);
        s.fail_at_step = Some(3);
        let failing = steps(&build(&s, &hybrid(), None, &root(&[])).unwrap());
        assert_eq!(failing.len(), plain.len() + 1);
        assert_eq!(failing[3], "injected failure (HUSK_FAIL_AT_STEP)");
        assert_eq!(failing[4], plain[3]);
    }

    #[test]
    fn the_pretend_knob_reaches_the_shim_first() {
        let mut s = spec(true, false);
        s.missing = Missing::pretend("openat2").unwrap();
        let plan = build(&s, &hybrid(), None, &root(&[])).unwrap();
        let ops = decode(&plan.bytes);
        assert_eq!(
            ops[0],
            Op::Pretend {
                missing: shim::plan::missing::OPENAT2
            }
        );
    }
}

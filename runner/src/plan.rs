//! The container as data: every operation the shim performs, in the one
//! order that works. The order is the whole design, so it lives here and
//! nowhere else.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use shim::plan::{ms, Encoder, Op};

use crate::cgroup::{Layout, Version};
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

/// `console`: the pseudo-terminal given to the container, if any.
pub fn build(spec: &Spec, layout: &Layout, console: Option<&str>) -> Plan {
    let mut p = Builder {
        fail_at: spec.fail_at_step,
        ..Builder::default()
    };
    let sec = &spec.security;

    // The runner moved us into the container's cgroup before sending the
    // plan; a cgroup namespace made now is rooted there.
    p.push(Op::UnshareCgroup);
    // Nothing we mount may propagate back to the host, and pivot_root fails
    // with EINVAL while / is shared (every systemd host). Slave, as runc
    // does, still lets the host's unmounts reach us.
    p.push(Op::Propagation {
        flags: ms::REC | ms::SLAVE,
    });
    // From here on every path is resolved beneath the rootfs, refusing
    // symlinks: see shim::plan::Op.
    let rootfs = CString::new(spec.rootfs.as_os_str().as_bytes()).expect("checked in spec.rs");
    // CAP_MKNOD is in the default set, and husk has no device cgroup (a
    // container without limits has no cgroup at all): a node made in the
    // container, or shipped in the image, must not open. So the rootfs and
    // /dev are nodev; the standard devices are binds of the host's, mounts
    // of their own that keep working. Docker gets the same from its device
    // cgroup: mknod succeeds, open fails.
    let nodev = if sec.privileged { 0 } else { ms::NODEV };
    p.push(Op::BindRoot {
        path: &rootfs,
        flags: nodev,
    });

    p.mount_dir(c"proc", c"proc", c"proc", NOSUID_NODEV_NOEXEC, c"");
    p.mount_dir(
        c"dev",
        c"tmpfs",
        c"tmpfs",
        ms::NOSUID | ms::STRICTATIME | nodev,
        c"mode=755,size=65536k",
    );
    for dev in DEVICES {
        let (host, target) = (
            CString::new(format!("/dev/{dev}")).unwrap(),
            CString::new(format!("dev/{dev}")).unwrap(),
        );
        p.push(Op::Touch { path: &target });
        p.push(Op::Mount {
            source: &host,
            target: &target,
            fstype: c"",
            flags: ms::BIND,
            data: c"",
            optional: false,
        });
    }
    for (target, path) in DEV_LINKS {
        p.push(Op::Symlink { target, path });
    }
    let console = console.map(|c| CString::new(c).expect("a pty path holds no NUL"));
    if let Some(pty) = &console {
        p.push(Op::Touch {
            path: c"dev/console",
        });
        p.push(Op::Mount {
            source: pty,
            target: c"dev/console",
            fstype: c"",
            flags: ms::BIND,
            data: c"",
            optional: false,
        });
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
                optional: true,
            });
        }
        for path in READ_ONLY {
            p.push(Op::ReadOnly {
                path,
                optional: true,
            });
        }
    }

    let hostname = CString::new(spec.hostname.as_str()).unwrap();
    p.push(Op::Hostname { name: &hostname });
    if spec.new_net {
        p.push(Op::LoopbackUp);
    }
    p.push(if spec.pivot {
        Op::PivotRoot
    } else {
        Op::MoveRoot
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
    let filter = crate::seccomp::filter(sec.caps);
    if sec.seccomp {
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
    p.finish()
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
    for h in &v1 {
        let name = dir_name(&h.mountpoint, &h.controllers.join(","));
        let target = CString::new(format!("sys/fs/cgroup/{name}")).unwrap();
        let controllers = CString::new(h.controllers.join(",")).unwrap();
        p.mount_dir(&target, c"cgroup", c"cgroup", ro, &controllers);
    }
    if let Some(h) = v2 {
        let target = CString::new(format!(
            "sys/fs/cgroup/{}",
            dir_name(&h.mountpoint, "unified")
        ))
        .unwrap();
        p.mount_dir(&target, c"cgroup2", c"cgroup2", ro, c"");
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
    steps: Vec<String>,
    /// Tests only: put a failing step at this index.
    fail_at: Option<usize>,
}

impl Builder {
    fn push(&mut self, op: Op<'_>) {
        if self.fail_at == Some(self.steps.len()) {
            self.fail_at = None;
            self.push(Op::Fail {
                errno: libc::EIO as u32,
            });
        }
        self.enc.push(&op);
        self.steps.push(op.to_string());
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

    fn finish(self) -> Plan {
        Plan {
            bytes: self.enc.finish(),
            exec_step: self.steps.len() - 1,
            steps: self.steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Limits;
    use crate::spec::Security;
    use shim::plan::{Plan as Decoded, HEADER_LEN};

    fn spec(new_net: bool, privileged: bool) -> Spec {
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
            security: Security {
                caps: crate::caps::DEFAULT,
                privileged,
                no_new_privs: true,
                seccomp: !privileged,
            },
            fail_at_step: None,
            tty: false,
            pivot: true,
        }
    }

    fn hybrid() -> Layout {
        let mi = "30 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  31 1 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        Layout::parse(mi, "4:memory:/a\n0::/\n", |_| String::new())
    }

    #[test]
    fn the_order_that_matters() {
        let plan = build(&spec(true, false), &hybrid(), None);
        let ops: Vec<Op<'_>> = Decoded::new(&plan.bytes[HEADER_LEN..])
            .unwrap()
            .ops()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ops.len(), plan.steps.len());
        let pos = |want: &str| {
            plan.steps
                .iter()
                .position(|s| s == want)
                .unwrap_or_else(|| panic!("no step {want}: {:#?}", plan.steps))
        };
        assert_eq!(pos("unshare cgroup namespace"), 0);
        assert_eq!(pos("change propagation of /"), 1);
        assert_eq!(pos("bind the rootfs /srv/box onto itself, nodev"), 2);
        assert!(pos("mount tmpfs on /dev") < pos("bind /dev/null on /dev/null"));
        assert!(pos("mount tmpfs on /dev") < pos("mount devpts on /dev/pts"));
        assert!(pos("mount sysfs on /sys") < pos("mount cgroup on /sys/fs/cgroup/memory"));
        assert!(pos("mount cgroup2 on /sys/fs/cgroup/unified") < pos("remount /sys/fs/cgroup"));
        assert!(pos("mount proc on /proc") < pos("make /proc/sys read-only"));
        assert!(pos("bring up lo") < pos("pivot_root into the rootfs"));
        assert!(pos("pivot_root into the rootfs") < pos("chdir /tmp"));
        assert!(pos("set no_new_privs") < pos("install the seccomp filter"));
        assert!(pos("install the seccomp filter") < pos("drop capabilities"));
        assert_eq!(plan.exec_step, ops.len() - 1);
        assert_eq!(plan.steps[plan.exec_step], "exec sh");
        assert!(matches!(ops[plan.exec_step], Op::Exec { .. }));
    }

    #[test]
    fn privileged_and_host_network_leave_out_their_steps() {
        let plan = build(&spec(false, true), &hybrid(), None);
        assert!(!plan.steps.iter().any(|s| s == "bring up lo"
            || s.starts_with("make /proc")
            || s.starts_with("mask ")
            || s.ends_with(", nodev")));
        assert!(!plan.steps.iter().any(|s| s == "install the seccomp filter"));
    }

    #[test]
    fn where_pivot_root_cannot_work_the_root_is_moved() {
        let plan = build(
            &Spec {
                pivot: false,
                ..spec(true, false)
            },
            &hybrid(),
            None,
        );
        let steps = &plan.steps;
        assert!(!steps.iter().any(|s| s == "pivot_root into the rootfs"));
        let moved = steps
            .iter()
            .position(|s| s == "move the rootfs over / and chroot into it")
            .expect("a move instead");
        assert_eq!(steps[moved + 1], "chdir /tmp");
    }

    #[test]
    fn a_terminal_becomes_the_console_and_the_controlling_tty() {
        let plan = build(&spec(true, false), &hybrid(), Some("/dev/pts/7"));
        let pos = |want: &str| {
            plan.steps
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
        let plan = build(&spec(true, false), &v2, None);
        let ops: Vec<Op<'_>> = Decoded::new(&plan.bytes[HEADER_LEN..])
            .unwrap()
            .ops()
            .map(Result::unwrap)
            .collect();
        let cg: Vec<_> = ops.iter().filter(|op| matches!(op, Op::Mount { target, .. } if target.to_bytes().starts_with(b"sys/fs/cgroup"))).collect();
        assert_eq!(cg.len(), 1);
        assert!(
            matches!(cg[0], Op::Mount { fstype, flags, .. } if *fstype == c"cgroup2" && flags & ms::RDONLY != 0)
        );
    }

    #[test]
    fn the_failure_knob_inserts_one_failing_step() {
        let plain = build(&spec(true, false), &hybrid(), None);
        let mut s = spec(true, false);
        s.fail_at_step = Some(3);
        let plan = build(&s, &hybrid(), None);
        assert_eq!(plan.steps.len(), plain.steps.len() + 1);
        assert_eq!(plan.steps[3], "injected failure (HUSK_FAIL_AT_STEP)");
        assert_eq!(plan.steps[4], plain.steps[3]);
    }
}

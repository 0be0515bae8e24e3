//! The plan's order and contents, from the ops it encodes.

use super::*;
use crate::cgroup::Limits;
use crate::kernel::Missing;
use crate::namespaces::Namespaces;
use crate::rootfs::Rootfs;
use crate::spec::{RootSource, Security};

fn spec(new_net: bool, privileged: bool) -> Spec {
    let mut namespaces = Namespaces::default();
    if !new_net {
        namespaces.host(Kind::Net).unwrap();
    }
    let masks = crate::spec::docker_masks(privileged).unwrap();
    Spec {
        id: "box".into(),
        root: RootSource::Dir(Rootfs::open("/tmp").unwrap()),
        mounts: Vec::new(),
        devices: Vec::new(),
        id_maps: None,
        read_only: false,
        image: None,
        user: None,
        groups: Vec::new(),
        umask: 0o022,
        keep_caps: false,
        hostname: c"box".into(),
        env: vec![c"PATH=/bin".into()],
        workdir: c"/tmp".into(),
        make_workdir: false,
        argv: vec![c"sh".into()],
        candidates: vec![c"/bin/sh".into()],
        namespaces,
        network: None,
        limits: Limits::default(),
        cgroup_parent: None,
        shim: crate::shim::Source::Embedded,
        security: Security {
            caps: crate::caps::DEFAULT,
            inheritable: 0,
            ambient: 0,
            privileged,
            no_new_privs: true,
            seccomp: !privileged,
        },
        tty: false,
        pivot: true,
        parent_death_signal: true,
        init: false,
        masked: masks.0,
        read_only_paths: masks.1,
        seccomp_filter: None,
        cgroup_name: None,
        sysctls: Vec::new(),
        root_propagation: 0,
        rlimits: Vec::new(),
        oom_score_adj: None,
        await_start: None,
        preserve_fds: Vec::new(),
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
        remount: remount_nodev.iter().map(|&p| p.to_owned()).collect(),
        set: ms::NODEV,
    }
}

/// Where the step named `want` is.
fn position(steps: &[String], want: &str) -> usize {
    steps
        .iter()
        .position(|s| s == want)
        .unwrap_or_else(|| panic!("no step {want}: {steps:#?}"))
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
    let plan = build(&spec(true, false), &hybrid(), None, &root(&[]), &[]).unwrap();
    let ops = decode(&plan.bytes);
    let steps = steps(&plan);
    let pos = |want: &str| position(&steps, want);
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
    let plan = build(
        &spec(true, false),
        &hybrid(),
        None,
        &root(&[c"", c"data"]),
        &[],
    )
    .unwrap();
    let steps = steps(&plan);
    assert_eq!(steps[3..5], ["make / nodev", "make /data nodev"]);
}

#[test]
fn joined_namespaces_are_passed_and_set() {
    let mut s = spec(true, false);
    s.namespaces.join(Kind::Net, "/proc/self/ns/net").unwrap();
    let plan = build(&s, &hybrid(), None, &root(&[]), &[]).unwrap();
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
    let plan = build(&spec(false, true), &hybrid(), None, &root(&[]), &[]).unwrap();
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
        &[],
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
        &[],
    )
    .unwrap();
    let steps = steps(&plan);
    let pos = |want: &str| position(&steps, want);
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
    let plan = build(&spec(true, false), &v2, None, &root(&[]), &[]).unwrap();
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
    let plain = steps(&build(&spec(true, false), &hybrid(), None, &root(&[]), &[]).unwrap());
    let mut s = spec(true, false);
    s.fail_at_step = Some(3);
    let failing = steps(&build(&s, &hybrid(), None, &root(&[]), &[]).unwrap());
    assert_eq!(failing.len(), plain.len() + 1);
    assert_eq!(failing[3], "injected failure (HUSK_FAIL_AT_STEP)");
    assert_eq!(failing[4], plain[3]);
}

#[test]
fn the_pretend_knob_reaches_the_shim_first() {
    let mut s = spec(true, false);
    s.missing = Missing::pretend("openat2").unwrap();
    let plan = build(&s, &hybrid(), None, &root(&[]), &[]).unwrap();
    let ops = decode(&plan.bytes);
    assert_eq!(
        ops[0],
        Op::Pretend {
            missing: shim::plan::missing::OPENAT2
        }
    );
}

#[test]
fn init_comes_last_before_the_exec() {
    let mut s = spec(true, false);
    s.init = true;
    let plan = build(&s, &hybrid(), Some(c"/dev/pts/7"), &root(&[]), &[]).unwrap();
    let ops = decode(&plan.bytes);
    assert_eq!(ops[plan.exec_step - 1], Op::Init { tty: true });
    assert!(matches!(ops[plan.exec_step - 2], Op::Capabilities { .. }));
    let plain = decode(
        &build(&spec(true, false), &hybrid(), None, &root(&[]), &[])
            .unwrap()
            .bytes,
    )
    .iter()
    .filter(|op| matches!(op, Op::Init { .. }))
    .count();
    assert_eq!(plain, 0);
}

#[test]
fn user_mounts_come_after_husks_and_before_the_masks_and_the_read_only_root() {
    let mut s = spec(true, false);
    s.read_only = true;
    s.user = Some((1000, 100));
    let tmp = std::env::temp_dir().display().to_string();
    s.mounts = vec![
        crate::mounts::volume(&format!("{tmp}:/srv/data:ro")).unwrap(),
        crate::mounts::tmpfs("/srv:size=1m").unwrap(),
    ];
    crate::mounts::sort(&mut s.mounts);
    let volume = root(&[c"", c"sub"]);
    let plan = build(&s, &hybrid(), None, &root(&[]), &[volume]).unwrap();
    let steps = steps(&plan);
    let pos = |want: &str| position(&steps, want);
    // The tmpfs on /srv first: the volume is mounted in it.
    assert!(pos("remount /sys/fs/cgroup") < pos("mkdir /srv"));
    assert!(pos("mount tmpfs on /srv") < pos("mkdir /srv/data"));
    assert!(pos("mkdir /srv/data") < pos("attach a volume on /srv/data"));
    // Without mount_setattr, each mount of the volume is remounted.
    assert!(pos("attach a volume on /srv/data") < pos("make /srv/data nodev"));
    assert!(pos("make /srv/data nodev") < pos("make /srv/data/sub nodev"));
    assert!(pos("make /srv/data/sub nodev") < pos("mask /proc/kcore"));
    // The root goes read-only once everything is mounted on it.
    assert!(pos("make /proc/sys read-only") < pos("make / read-only"));
    assert!(pos("make / read-only") < pos("sethostname box"));
    assert!(pos("set the capabilities") < pos("become uid 1000, gid 100"));
    assert_eq!(plan.passed.len(), 2);
}

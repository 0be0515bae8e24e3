//! The container as data: every operation the shim performs, in the one
//! order that works. The order is the whole design, so it lives here and
//! nowhere else (and, for a process started in a running container, in
//! exec.rs).

pub mod exec;

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use shim::plan::{ms, Encoder, Op};
use shim::report::FIRST_PASSED_FD;

use crate::cgroup::{Layout, Version};
use crate::error::{Error, Result};
use crate::mounts::{self, Mount};
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

const NOSUID_NODEV_NOEXEC: u32 = ms::NOSUID | ms::NODEV | ms::NOEXEC;

/// `console`: the pseudo-terminal given to the container, if any. `root`:
/// the rootfs's detached mount tree (see rootfs.rs); `volumes`: each
/// volume's in `spec.mounts`, in order.
pub fn build(
    spec: &Spec,
    layout: &Layout,
    console: Option<&CStr>,
    root: &Detached,
    volumes: &[Detached],
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
    for path in &root.remount {
        p.push(Op::RemountBind {
            path,
            bind: false,
            set: root.set,
            clear: 0,
            optional: false,
        });
    }
    let nodev = if sec.privileged { 0 } else { ms::NODEV };

    p.mount_dir(c"proc", c"proc", c"proc", NOSUID_NODEV_NOEXEC, c"");
    for (path, value) in &spec.sysctls {
        p.push(Op::Sysctl { path, value });
    }
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
    // The tty group, 5, owns the slaves, as with runc and Docker; in a
    // user namespace that does not map 5 the kernel refuses it (EINVAL),
    // and the opener's group owns them.
    let tty_group = spec.id_maps.as_ref().is_none_or(|m| {
        m.gid
            .iter()
            .any(|r| r.container <= 5 && 5 - r.container < r.size)
    });
    let devpts = if tty_group {
        c"newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        c"newinstance,ptmxmode=0666,mode=0620"
    };
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
    // The kernel mounts a sysfs only for the owner of its network
    // namespace: in a user namespace of the container's own without a
    // network one made with it, husk makes none (nor the cgroup mounts
    // below it), and a bind of the host's /sys in the config stands in,
    // as `spec --rootless` writes one, as runc's.
    if spec.id_maps.is_none() || spec.namespaces.is_new(Kind::Net) {
        let sys_ro = if sec.privileged { 0 } else { ms::RDONLY };
        p.mount_dir(
            c"sys",
            c"sysfs",
            c"sysfs",
            NOSUID_NODEV_NOEXEC | sys_ro,
            c"",
        );
        cgroupfs(&mut p, layout);
    }
    // The user's mounts after husk's, so that they may cover them, and
    // before the masks, so that they cannot uncover those.
    user_mounts(&mut p, &spec.mounts, volumes);
    for d in &spec.devices {
        for dir in mounts::parents(&d.path, false) {
            p.push(Op::Mkdir {
                path: &dir,
                mode: 0o755,
            });
        }
        p.push(Op::Mknod {
            path: &d.path,
            mode: d.mode,
            dev: d.dev,
            uid: d.uid,
            gid: d.gid,
        });
        // Every mount is nodev (above): a node the config asks for opens
        // on a bind mount of its own, without it, that the container
        // cannot remount (no CAP_SYS_ADMIN) nor unlink (a mount point).
        if nodev != 0 && d.mode & libc::S_IFMT != libc::S_IFIFO {
            p.push(Op::RemountBind {
                path: &d.path,
                bind: true,
                set: 0,
                clear: ms::NODEV,
                optional: false,
            });
        }
    }
    let workdir = spec
        .make_workdir
        .then(|| mounts::target(&spec.workdir.to_string_lossy()).ok())
        .flatten();
    for dir in workdir.iter().flat_map(|w| mounts::parents(w, true)) {
        p.push(Op::Mkdir {
            path: &dir,
            mode: 0o755,
        });
    }
    for target in &spec.masked {
        // Not every kernel has every path.
        p.push(Op::Mask {
            target,
            null: c"dev/null",
            flags: ms::RDONLY | NOSUID_NODEV_NOEXEC,
            data: c"size=4k,nr_inodes=2",
            optional: true,
        });
    }
    for path in &spec.read_only_paths {
        p.push(Op::RemountBind {
            path,
            bind: true,
            set: ms::RDONLY | NOSUID_NODEV_NOEXEC,
            clear: 0,
            optional: true,
        });
    }

    if spec.read_only {
        // Last: the mount points above were made in it. Only the root's
        // own mount: what is mounted on it keeps its flags.
        p.push(Op::RemountBind {
            path: c"",
            bind: false,
            set: ms::RDONLY,
            clear: 0,
            optional: false,
        });
    }
    // Never in the host's UTS namespace; in one joined by path (an OCI
    // caller's, made for the container), as runc does.
    if !matches!(
        spec.namespaces.mode(Kind::Uts),
        crate::namespaces::Mode::Host
    ) {
        p.push(Op::Hostname {
            name: &spec.hostname,
        });
    }
    if spec.namespaces.is_new(Kind::Net) {
        p.push(Op::LoopbackUp);
    }
    p.push(if spec.pivot {
        Op::PivotRoot
    } else {
        Op::ChrootRoot
    });
    // After the pivot: pivot_root refuses a shared root.
    if spec.root_propagation != 0 {
        p.push(Op::Propagation {
            flags: ms::REC | spec.root_propagation,
        });
    }
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
    if let Some(filter) = &spec.seccomp_filter {
        p.push(Op::Seccomp { filter });
    } else if sec.seccomp {
        let filter = crate::seccomp::filter(sec.caps)
            .map_err(|e| Error::new(format!("compile the seccomp filter: {e}")))?;
        p.push(Op::Seccomp { filter: &filter });
    }
    p.identity(&Identity {
        caps: [sec.caps, sec.inheritable, sec.ambient],
        user: spec.user,
        groups: &spec.groups,
        umask: spec.umask,
        keep_caps: spec.keep_caps,
    });
    if spec.init {
        p.push(Op::Init {
            tty: console.is_some(),
        });
    }

    if let Some(fd) = spec.await_start {
        // Last before the exec: everything that can fail is reported to
        // `create`. (runc 1.1, the suite's yardstick here, does not look
        // the command up at create either.)
        let fd = p.pass(fd);
        p.push(Op::AwaitStart { fd });
        // The caller's fds 3 and up (--preserve-fds), once the shim's own
        // 3 and 4 are closed; consecutive in the passed fds.
        if let Some(from) = spec.preserve_fds.iter().map(|&fd| p.pass(fd)).min() {
            p.push(Op::PassFds {
                from,
                count: spec.preserve_fds.len() as u32,
            });
        }
    }
    let mut storage: [Vec<u8>; 3] = Default::default();
    let [a, b, c] = &mut storage;
    p.push(Op::Exec {
        candidates: Encoder::strs(a, &spec.candidates),
        argv: Encoder::strs(b, &spec.argv),
        envp: Encoder::strs(c, &spec.env),
    });
    Ok(p.finish())
}

/// Volumes and tmpfs, their mount points made first (never through a
/// symlink: every path is resolved beneath the root). A volume's tree
/// comes with its flags set where mount_setattr could; else each of its
/// mounts is remounted here.
fn user_mounts(p: &mut Builder, mounts: &[Mount], volumes: &[Detached]) {
    let mut volumes = volumes.iter();
    for m in mounts {
        let is_dir = match m {
            Mount::Volume(v) => v.dir,
            Mount::Tmpfs { .. } => true,
        };
        let target = m.target();
        let make_target = match m {
            Mount::Volume(v) => v.make_target,
            Mount::Tmpfs { .. } => true,
        };
        if make_target {
            for dir in mounts::parents(target, is_dir) {
                p.push(Op::Mkdir {
                    path: &dir,
                    mode: 0o755,
                });
            }
        }
        let then = match m {
            Mount::Tmpfs { propagation, .. } => *propagation,
            Mount::Volume(v) => v.share,
        };
        match m {
            Mount::Tmpfs {
                target,
                flags,
                data,
                ..
            } => p.push(Op::Mount {
                source: c"tmpfs",
                target,
                fstype: c"tmpfs",
                flags: *flags,
                data,
                optional: false,
            }),
            Mount::Volume(v) => {
                let Some(tree) = volumes.next() else {
                    unreachable!("plan::build is given a tree per volume");
                };
                if !v.dir && make_target {
                    p.push(Op::Touch {
                        path: target,
                        mode: 0o644,
                    });
                }
                let fd = p.pass(tree.tree.as_raw_fd());
                p.push(Op::AttachMount {
                    fd,
                    target,
                    propagation: v.propagation,
                });
                for sub in &tree.remount {
                    let mut path = target.as_bytes().to_vec();
                    if !sub.is_empty() {
                        path.push(b'/');
                        path.extend_from_slice(sub.as_bytes());
                    }
                    let Ok(path) = CString::new(path) else {
                        continue;
                    };
                    p.push(Op::RemountBind {
                        path: &path,
                        bind: false,
                        set: tree.set,
                        clear: 0,
                        optional: false,
                    });
                }
            }
        }
        if then != 0 {
            p.push(Op::Mount {
                source: c"",
                target,
                fstype: c"",
                flags: then,
                data: c"",
                optional: false,
            });
        }
    }
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

/// Who a process ends as (`Builder::identity`).
pub(crate) struct Identity<'a> {
    /// Kept (bounding = effective = permitted), inheritable, ambient.
    pub caps: [u64; 3],
    pub user: Option<(u32, u32)>,
    pub groups: &'a [u32],
    pub umask: u32,
    /// The capabilities stay whatever the uid (an OCI process's).
    pub keep_caps: bool,
}

#[derive(Default)]
pub(crate) struct Builder {
    enc: Encoder,
    steps: usize,
    passed: Vec<RawFd>,
    /// Tests only: put a failing step at this index.
    fail_at: Option<usize>,
}

impl Builder {
    pub(crate) fn push(&mut self, op: Op<'_>) {
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
    pub(crate) fn pass(&mut self, fd: RawFd) -> u32 {
        self.passed.push(fd);
        (FIRST_PASSED_FD as usize + self.passed.len() - 1) as u32
    }

    /// The capabilities and the ids, in the order that gives what is
    /// asked: Docker's `-u` drops the capabilities, then changes ids (and
    /// a uid other than 0 loses them, as on any setuid); an OCI process
    /// changes ids first, keeping its permitted set, then gets its sets
    /// whatever its uid, as runc does.
    pub(crate) fn identity(&mut self, id: &Identity<'_>) {
        let groups: Vec<u8> = id.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        let ids = id.user.map(|(uid, gid)| Op::SetIds {
            uid,
            gid,
            groups: &groups,
            umask: id.umask,
            keep_caps: id.keep_caps,
        });
        let [keep, inheritable, ambient] = id.caps;
        let caps = Op::Capabilities {
            keep,
            inheritable,
            ambient,
        };
        match ids {
            Some(ids) if id.keep_caps => {
                self.push(ids);
                self.push(caps);
            }
            Some(ids) => {
                self.push(caps);
                self.push(ids);
            }
            None => self.push(caps),
        }
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

    pub(crate) fn finish(self) -> Plan {
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
mod tests;

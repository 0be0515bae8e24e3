//! A container's start, and its end: registered in the state store, set
//! up, running; then, once its PID 1 has ended, cleaned up and its status
//! recorded. The order here is the order of a start; each piece is its
//! own module. `foreground` supervises it from the runner; a detached
//! container is supervised by its monitor (detach.rs).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::cgroup::{self, Cgroup, Layout};
use crate::error::{Error, Result};
use crate::mounts::Mount;
use crate::net::attach::Via;
use crate::net::Attached;
use crate::signals::{Exit, Mask};
use crate::spec::{RootSource, Spec};
use crate::store::{Entry, Recorded, State, Status, Store};
use crate::{describe, fds, plan, process, signals, spawn, tty};
use shim::plan::ms;

/// How the container is run, beyond what it is (the Spec).
#[derive(Default)]
pub struct Options {
    /// `-d`: its entry stays after it ends, until `rm` (or `auto_remove`).
    pub detached: bool,
    pub auto_remove: bool,
    /// `--keep`: a foreground container's entry (and its upper layer)
    /// stays after it ends too, for `commit`, `export` and `rm`.
    pub keep: bool,
    /// The ID is a name the user gave.
    pub named: bool,
    /// What the container's fds 0, 1 and 2 are (the pty's slave when it
    /// has a terminal); None: the runner's own.
    pub stdio: [Option<RawFd>; 3],
    /// OCI `create`: the container waits on its entry's exec fifo before
    /// the exec, and is recorded with its bundle (oci.rs).
    pub oci: Option<Oci>,
}

/// What OCI `create` records beyond the spec.
pub struct Oci {
    pub bundle: std::path::PathBuf,
    pub annotations: Vec<(String, String)>,
    /// The config's `hooks` and seccomp profile, as JSON text.
    pub hooks: String,
    pub seccomp_profile: String,
}

/// A container set up and running.
pub struct Started {
    pub pid: i32,
    pub entry: Entry,
    pub cgroup: Option<Cgroup>,
    pub pty: Option<tty::Pty>,
    pub mask: Mask,
    memory: Option<u64>,
    /// Given back once the cgroup is gone (net/attach.rs).
    network: Option<crate::net::Attached>,
}

/// Runs the container `spec` describes until its PID 1 ends; returns the
/// exit status the runner should end with.
pub fn foreground(spec: Spec, store_root: &Path, opts: &Options) -> Result<i32> {
    let store = Store::open(store_root)?;
    let missing = spec.missing.clone();
    let started = start(spec, &store, opts)?;
    // Containers whose runner was killed are ended now, off the start-up
    // path of this one.
    store.sweep(&missing);
    let raw = started.pty.as_ref().map(|_| tty::RawMode::enter());
    let exit = signals::supervise(started.pid, &started.mask, started.pty.as_ref());
    drop(raw);
    if let Some(notice) = started.finish(exit) {
        eprintln!("runner: {notice}");
    }
    Ok(exit.status())
}

/// What the state store keeps of a spec.
fn record(spec: &Spec) -> Recorded {
    let text = |c: &CString| c.to_string_lossy().into_owned();
    let l = &spec.limits;
    let limits = [
        ("--memory", l.memory.map(|v| v.to_string())),
        (
            "--memory-swap",
            l.memory_swap
                .map(|v| v.map_or("-1".into(), |b| b.to_string())),
        ),
        ("--cpu-quota-us", l.cpu_quota_us.map(|v| v.to_string())),
        ("--cpu-shares", l.cpu_shares.map(|v| v.to_string())),
        ("--cpuset", l.cpuset.clone()),
        ("--pids", l.pids.map(|v| v.to_string())),
    ];
    Recorded {
        argv: spec.argv.iter().map(text).collect(),
        env: spec.env.iter().map(text).collect(),
        hostname: text(&spec.hostname),
        workdir: text(&spec.workdir),
        tty: spec.tty,
        init: spec.init,
        caps: spec.security.caps,
        no_new_privs: spec.security.no_new_privs,
        seccomp: spec.security.seccomp,
        privileged: spec.security.privileged,
        pivot: spec.pivot,
        image: spec.image.clone().unwrap_or_default(),
        layers: match &spec.root {
            RootSource::Overlay(l) => l.paths(),
            RootSource::Dir(_) => Vec::new(),
        },
        limits: limits
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect(),
    }
}

/// Registers, sets up and starts the container; returns once its program
/// runs, or with the setup's error, leaving nothing behind.
pub fn start(mut spec: Spec, store: &Store, opts: &Options) -> Result<Started> {
    // Whatever we inherited must not reach the container (CVE-2024-21626).
    fds::cloexec_from(3, &spec.missing)?;
    let mut state = match &opts.oci {
        Some(oci) => {
            let mut s = State::new(&spec.id, &oci.bundle);
            s.oci = true;
            s.annotations = oci.annotations.clone();
            s.hooks = oci.hooks.clone();
            s.seccomp_profile = oci.seccomp_profile.clone();
            s
        }
        None => State::new(&spec.id, &spec.root.describe()),
    };
    state.named = opts.named;
    state.detached = opts.detached;
    state.auto_remove = opts.auto_remove;
    state.keep = opts.keep;
    state.spec = record(&spec);
    let mut entry = store.create(state)?;
    // Its address before anything else: /etc/hosts names it.
    let mut network = match &spec.network {
        Some(req) => {
            entry.state.ports = req
                .ports
                .iter()
                .map(crate::net::nft::Port::describe)
                .collect();
            Some(match req.via {
                Via::Cni => {
                    let a = crate::net::cni::join(entry.dir(), &spec.id, &req.network, &req.ports)?;
                    entry.state.network = format!("cni:{}", req.network);
                    Attached::Cni(a)
                }
                Via::Bridge { ip } => {
                    let a = crate::net::attach::join(store.root(), &spec.id, req, ip)?;
                    entry.state.network = a.network.name.clone();
                    entry.state.address = a.address.to_string();
                    Attached::Bridge(a)
                }
            })
        }
        None => None,
    };
    let fifo = match opts.oci {
        Some(_) => Some(crate::oci::make_fifo(entry.dir())?),
        None => None,
    };
    spec.await_start = fifo.as_ref().map(|f| f.as_raw_fd());
    let sec = &spec.security;
    let everywhere = sec.may_mount() || spec.cgroup_name.is_some();
    // Without limits (and unable to mount) the container gets no cgroup
    // of its own, and so no cgroupfs either: nothing to read from the host.
    let layout = if spec.limits.controllers().is_empty() && !everywhere {
        Layout::default()
    } else {
        Layout::detect()
            .map_err(|e| Error::os("read /proc/self/mountinfo and /proc/self/cgroup", &e))?
    };
    let mut pty = if spec.tty {
        Some(tty::Pty::open()?)
    } else {
        None
    };
    let nodev = if sec.privileged { 0 } else { ms::NODEV };
    // An overlay's upper and work directories are in the entry, and go
    // with it.
    let overlay;
    let rootfs = match &spec.root {
        RootSource::Dir(r) => r,
        RootSource::Overlay(layers) => {
            overlay = layers.mount(entry.dir(), sec.privileged)?;
            &overlay
        }
    };
    let root = rootfs.detach(nodev, true, &spec.missing)?;
    // The container's own /etc files, first: a volume of the user's on
    // one of them covers it.
    if opts.oci.is_none() {
        let files = crate::etc_files::binds(entry.dir(), &root.tree, &spec, network.as_ref())?;
        spec.mounts.splice(0..0, files);
    }
    let volumes = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Volume(v) => Some(v.source.detach(v.flags | nodev, v.recursive, &spec.missing)),
            Mount::Tmpfs { .. } => None,
        })
        .collect::<Result<Vec<_>>>()?;
    let console = match &pty {
        Some(p) => Some(
            CString::new(p.slave_path.as_str())
                .map_err(|_| Error::new(format!("pty path {:?} holds a NUL", p.slave_path)))?,
        ),
        None => None,
    };
    let plan = plan::build(&spec, &layout, console.as_deref(), &root, &volumes)?;
    let shim = crate::shim::Shim::open(&spec.shim, &spec.missing)?;
    let mask = signals::block()?;
    let slave: Option<OwnedFd> = pty.as_mut().and_then(|p| p.slave.take());
    let stdio = match &slave {
        Some(s) => [Some(s.as_raw_fd()); 3],
        None => opts.stdio,
    };
    let userns_sync = match &spec.id_maps {
        Some(_) => Some(spawn::pipe()?),
        None => None,
    };
    let mut container = spawn::clone_shim(&spawn::Launch {
        shim: &shim,
        clone_flags: spec.namespaces.clone_flags(),
        mask: &mask,
        stdio,
        passed: &plan.passed,
        parent_death_signal: spec.parent_death_signal,
        pid_namespace: spec.namespaces.pid_join().map(|fd| fd.as_raw_fd()),
        userns_sync: userns_sync
            .as_ref()
            .map(|(r, w)| (r.as_raw_fd(), w.as_raw_fd())),
    })?;
    // The master reads EIO once the container's side is closed, which it
    // cannot be while we hold a copy.
    drop(slave);
    // The shim waits for its plan meanwhile. The entry is written once,
    // with PID 1 and the cgroup: a runner killed from here on leaves what
    // the next husk command needs to end the container. (Killed between
    // the cgroup's mkdir and this write, it leaves an empty cgroup.)
    let cgroup = Cgroup::create(
        &layout,
        &cgroup::Request {
            limits: &spec.limits,
            parent: spec.cgroup_parent.as_deref(),
            name: &spec
                .cgroup_name
                .clone()
                .unwrap_or_else(|| cgroup::leaf_name(&spec.id)),
            everywhere,
            kill_file: !spec.missing.has(crate::kernel::Call::CgroupKill),
            may_exist: spec.cgroup_name.is_some(),
        },
    );
    let cgroup = match cgroup {
        Ok(cg) => cg,
        Err(e) => {
            container.kill_and_reap();
            return Err(e);
        }
    };
    if let Some(cg) = &cgroup {
        (entry.state.cgroups, entry.state.cgroup_parents_made) = cg.paths();
    }
    entry.state.pid = container.pid;
    entry.state.pid_start = process::start_time(container.pid).unwrap_or(0);
    entry.state.supervisor_start = process::start_time(entry.state.supervisor).unwrap_or(0);
    // `create` marks it created once the shim waits (oci.rs).
    entry.state.status = match fifo {
        Some(_) => Status::Creating,
        None => Status::Running,
    };
    if let Err(e) = entry.save() {
        container.kill_and_reap();
        return Err(e);
    }
    // In the cgroup before the shim does anything: nothing escapes accounting.
    if let Some(cg) = &cgroup {
        if let Err(e) = cg.join(container.pid as u32) {
            container.kill_and_reap();
            return Err(e);
        }
    }
    // Set by the runner on its child, which waits for its plan: nothing
    // of the container runs yet.
    if let Err(e) = process::set_limits(container.pid, &spec.rlimits, spec.oom_score_adj) {
        container.kill_and_reap();
        return Err(e);
    }
    if let (Some(maps), Some((_, go))) = (&spec.id_maps, userns_sync) {
        let written = crate::userns::write(container.pid, maps).and_then(|()| {
            std::io::Write::write_all(&mut std::fs::File::from(go), b"u")
                .map_err(|e| Error::os("tell the shim its ID maps are written", &e))
        });
        if let Err(e) = written {
            container.kill_and_reap();
            return Err(e);
        }
    }
    let connected = match &mut network {
        Some(Attached::Bridge(a)) => a.connect(container.pid),
        Some(Attached::Cni(a)) => a.connect(container.pid).and_then(|added| {
            entry.state.address = added.address.map(|a| a.to_string()).unwrap_or_default();
            crate::etc_files::update(entry.dir(), &spec, added.address, &added.dns)?;
            entry.save()
        }),
        None => Ok(()),
    };
    if let Err(e) = connected {
        container.kill_and_reap();
        return Err(e);
    }
    container.send_plan(&plan.bytes);
    if let Some(report) = container.read_report() {
        container.kill_and_reap();
        let what = describe::Process {
            shim: &spec.shim,
            argv: &spec.argv,
            candidates: &spec.candidates,
            rootfs: Some(rootfs),
        };
        return Err(describe::failure(&what, &plan, report));
    }
    // Nothing of the setup stays open while the container runs.
    drop((
        shim,
        root,
        volumes,
        spec.root,
        spec.mounts,
        spec.namespaces,
        fifo,
    ));
    Ok(Started {
        pid: container.pid,
        entry,
        cgroup,
        pty,
        mask,
        memory: spec.limits.memory,
        network,
    })
}

impl Started {
    /// Its entry and cgroup, for a caller that finishes the start its own
    /// way (OCI `create`, oci.rs).
    pub fn into_parts(self) -> (Entry, Option<Cgroup>, Option<tty::Pty>) {
        (self.entry, self.cgroup, self.pty)
    }

    /// After PID 1 has ended: its cgroup removed, its end recorded (a
    /// detached container's entry stays until `rm`, unless it was started
    /// with `--rm`), its entry released. Returns what the user should be
    /// told beyond the status: that the OOM killer ended it.
    pub fn finish(self, exit: Exit) -> Option<String> {
        let Started {
            mut entry,
            cgroup,
            memory,
            network,
            ..
        } = self;
        // 137 from husk's init too, whose child the OOM killer ended.
        let oom = exit.status() == 128 + libc::SIGKILL
            && cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
        let notice = oom.then(|| {
            let limit = memory
                .map(|m| format!(" ({} MiB)", m >> 20))
                .unwrap_or_default();
            format!("the container hit its memory limit{limit}: the kernel's OOM killer ended it")
        });
        // The cgroup goes first, then the entry that would let a later
        // command finish the job if this one were killed now.
        drop(cgroup);
        drop(network);
        if entry.state.stays() {
            entry.state.status = Status::Stopped;
            entry.state.exit = Some(exit);
            if entry.save().is_ok() {
                entry.keep();
            }
        }
        notice
    }
}

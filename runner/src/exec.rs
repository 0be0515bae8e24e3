//! `exec`: a new process inside a running container — in every one of its
//! namespaces, its cgroups, its root, with its capabilities, no_new_privs
//! and seccomp filter — supervised as `run` supervises PID 1, its exit
//! status returned as `run` returns one.
//!
//! What the container is comes from the state store, checked against the
//! kernel: PID 1's namespaces and root are opened through /proc/PID and
//! PID 1's start time is read again after, so that every fd is the
//! container's and not a process that took its PID since. The runner
//! enters the PID namespace before the clone (spawn.rs says why), moves
//! the shim into PID 1's cgroups, and the shim does the rest from a plan
//! (plan/exec.rs).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::cgroup::{read_or_empty, CgroupFs, Layout, RealFs};
use crate::error::{Error, Result};
use crate::namespaces::Kind;
use crate::plan::exec::{build_exec, Joined, Process};
use crate::store::{State, Store};
use crate::{describe, fds, lifecycle, process, signals, spawn, spec, tty};

/// What to run, and how.
pub struct Request {
    pub id: String,
    pub argv: Vec<String>,
    /// `-e`: KEY=VALUE, over the container's own environment.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// uid, gid.
    pub user: Option<(u32, u32)>,
    pub tty: bool,
    /// Pass the runner's stdin on (`-i`); else /dev/null.
    pub interactive: bool,
    pub shim: crate::shim::Source,
    pub missing: crate::kernel::Missing,
    /// OCI `exec`: the process as its caller gave it.
    pub oci: Option<OciProcess>,
    /// The program, found in the container; None: `argv[0]`, searched
    /// for on the PATH as `run` searches (an OCI hook names both).
    pub program: Option<String>,
}

/// What an OCI caller's process.json (or flags) says beyond `Request`'s
/// fields; the process's environment replaces the container's.
pub struct OciProcess {
    /// The process's environment is its own (process.json), not the
    /// container's with -e on top.
    pub replace_env: bool,
    /// Bounding (= effective = permitted), inheritable, ambient.
    pub caps: Option<[u64; 3]>,
    pub no_new_privs: Option<bool>,
    pub groups: Vec<u32>,
    pub umask: u32,
    /// Leave the process running and return once it has exec'd: its
    /// caller (a subreaper) reaps it.
    pub detach: bool,
    pub pid_file: Option<std::path::PathBuf>,
    /// With a terminal: where its master goes (the runner relays nothing).
    pub console_socket: Option<std::path::PathBuf>,
}

pub fn exec(store: &Store, req: Request) -> Result<i32> {
    let found = store.find(&req.id)?;
    let state = match &found.state {
        Ok(s) if s.oci => crate::oci::live(&found)?,
        _ => lifecycle::running(&found)?.clone(),
    };
    let Launched {
        mut child,
        mut pty,
        mask,
    } = launch(&state, &req, None)?;
    let oci = req.oci.as_ref();
    if let Some(o) = oci {
        if let (Some(path), Some(p)) = (&o.console_socket, pty.take()) {
            if let Err(e) = p.send_master(path) {
                child.kill_and_reap();
                return Err(e);
            }
        }
        if let Some(path) = &o.pid_file {
            if let Err(e) = crate::oci::write_pid_file(path, child.pid) {
                child.kill_and_reap();
                return Err(e);
            }
        }
        if o.detach {
            return Ok(0);
        }
    }
    // SAFETY: isatty takes an fd number.
    let on_terminal = unsafe { libc::isatty(0) == 1 };
    let raw = pty
        .as_ref()
        .filter(|_| on_terminal)
        .map(|_| tty::RawMode::enter());
    let exit = signals::supervise(child.pid, &mask, pty.as_ref());
    drop(raw);
    Ok(exit.status())
}

/// A process the shim has exec'd in a container, with the signals the
/// runner blocked to supervise it.
pub struct Launched {
    pub child: spawn::Container,
    pub pty: Option<tty::Pty>,
    pub mask: signals::Mask,
}

/// Starts `req`'s process in the container `state` is of; `stdin`, when
/// given, becomes its fd 0 (and `req`'s terminal and `interactive` are
/// not asked for).
pub fn launch(state: &State, req: &Request, stdin: Option<RawFd>) -> Result<Launched> {
    fds::cloexec_from(3, &req.missing)?;
    let joined = join(state)?;
    let cstrings = |what: &str, v: &[String]| {
        v.iter()
            .map(|a| spec::cstring(what, a))
            .collect::<Result<Vec<_>>>()
    };
    let mut env: Vec<String> = match &req.oci {
        Some(o) if o.replace_env => Vec::new(),
        _ => state.spec.env.clone(),
    };
    for (k, v) in &req.env {
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(key, _)| key) != k);
        env.push(format!("{k}={v}"));
    }
    let env = cstrings("--env", &env)?;
    let argv = cstrings("command", &req.argv)?;
    let candidates = match &req.program {
        Some(p) => vec![spec::cstring("path", p)?],
        None => {
            let first = req.argv.first().map(String::as_str).unwrap_or("");
            spec::candidates(first, &spec::path_of(&env))?
        }
    };
    let workdir = req.workdir.as_deref().unwrap_or(&state.spec.workdir);
    if !workdir.starts_with('/') {
        return Err(Error::new(format!(
            "--workdir {workdir}: must be an absolute path inside the container"
        )));
    }
    let workdir = spec::cstring("--workdir", workdir)?;
    let oci = req.oci.as_ref();
    let [caps, inheritable, ambient] = oci.and_then(|o| o.caps).unwrap_or([state.spec.caps, 0, 0]);
    let filter = match state.seccomp_profile.as_str() {
        "" => None,
        text => Some(
            crate::json::parse(text)
                .and_then(|v| crate::seccomp::profile::compile(&v))
                .map_err(|e| Error::new(format!("the container's seccomp profile: {e}")))?,
        ),
    };
    // In a user namespace of the container's own, the host's 0 that the
    // shim runs as is nobody: it becomes the namespace's 0 (the
    // container's default user), ids before capabilities as for an OCI
    // process, while it still may change them.
    let userns_root = req.user.is_none() && joined.namespaces.iter().any(|(k, _)| *k == Kind::User);
    let plan = build_exec(
        &joined,
        &Process {
            argv: &argv,
            candidates: &candidates,
            env: &env,
            workdir: &workdir,
            tty: req.tty,
            user: req.user.or(userns_root.then_some((0, 0))),
            caps,
            inheritable,
            ambient,
            groups: oci.map_or(&[][..], |o| &o.groups),
            umask: oci.map_or(0o022, |o| o.umask),
            keep_caps: oci.is_some() || userns_root,
            no_new_privs: oci
                .and_then(|o| o.no_new_privs)
                .unwrap_or(state.spec.no_new_privs),
            seccomp: state.spec.seccomp,
            filter: filter.as_deref(),
            pretend: req.missing.for_shim(),
        },
    )?;
    let mut pty = if req.tty {
        Some(tty::Pty::open_in(joined.root.as_raw_fd())?)
    } else {
        None
    };
    let null = if req.tty || req.interactive || stdin.is_some() {
        None
    } else {
        let f = std::fs::File::open("/dev/null").map_err(|e| Error::os("open /dev/null", &e))?;
        Some(fds::held(f.into()).map_err(|e| Error::os("open /dev/null", &e))?)
    };
    let shim = crate::shim::Shim::open(&req.shim, &req.missing)?;
    let mask = signals::block()?;
    let slave = pty.as_mut().and_then(|p| p.slave.take());
    let stdio = match (&slave, &null) {
        (Some(s), _) => [Some(s.as_raw_fd()); 3],
        (None, Some(n)) => [Some(n.as_raw_fd()), None, None],
        (None, None) => [stdin, None, None],
    };
    let pid_ns = joined_pid_namespace(state)?;
    let mut child = spawn::clone_shim(&spawn::Launch {
        shim: &shim,
        clone_flags: 0,
        mask: &mask,
        stdio,
        passed: &plan.passed,
        parent_death_signal: !oci.is_some_and(|o| o.detach),
        pid_namespace: Some(pid_ns.as_raw_fd()),
        userns_sync: None,
    })?;
    drop((slave, null, pid_ns));
    if let Err(e) = join_cgroups(state, child.pid) {
        child.kill_and_reap();
        return Err(e);
    }
    child.send_plan(&plan.bytes);
    if let Some(report) = child.read_report() {
        child.kill_and_reap();
        let what = describe::Process {
            shim: &req.shim,
            argv: &argv,
            candidates: &candidates,
            rootfs: None,
        };
        return Err(describe::failure(&what, &plan, report));
    }
    drop((shim, joined));
    Ok(Launched { child, pty, mask })
}

/// Opens `/proc/PID/<what>` of the container's PID 1.
fn open_of(state: &State, what: &str, flags: libc::c_int) -> Result<OwnedFd> {
    let path = format!("/proc/{}/{what}", state.pid);
    let c = CString::new(path.as_str()).map_err(|_| Error::new("a path with a NUL"))?;
    // SAFETY: open takes a C string and flags; the fd is then ours.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::os(
            format_args!("open {path}"),
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    fds::held(fd).map_err(|e| Error::os(format_args!("move {path}'s fd"), &e))
}

/// Still the container's PID 1, after opening what came from it.
fn still_pid_one(state: &State) -> Result<()> {
    if process::start_time(state.pid) == Some(state.pid_start) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{}: not running (it ended meanwhile)",
            state.id
        )))
    }
}

/// PID 1's namespaces, but the PID one (see spawn.rs), in the order they
/// are set up, and its root.
pub(crate) fn join(state: &State) -> Result<Joined> {
    let mut namespaces = Vec::new();
    for kind in Kind::ORDER.into_iter().filter(|k| *k != Kind::Pid) {
        let fd = open_of(state, &format!("ns/{}", kind.name()), libc::O_RDONLY)?;
        // setns into one's own user namespace is EINVAL: joined only when
        // the container has one of its own.
        if kind == Kind::User && same_file(&fd, "/proc/self/ns/user") {
            continue;
        }
        namespaces.push((kind, fd));
    }
    let root = open_of(state, "root", libc::O_PATH | libc::O_DIRECTORY)?;
    still_pid_one(state)?;
    Ok(Joined { namespaces, root })
}

fn same_file(fd: &OwnedFd, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ours = fd
        .try_clone()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match (ours, std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

pub(crate) fn joined_pid_namespace(state: &State) -> Result<OwnedFd> {
    let fd = open_of(state, "ns/pid", libc::O_RDONLY)?;
    still_pid_one(state)?;
    Ok(fd)
}

/// Moves `pid` into PID 1's cgroup in every hierarchy where it is not
/// already there: the container's own cgroups when it has limits, else
/// wherever its PID 1 is (the caller's, when it started).
pub(crate) fn join_cgroups(state: &State, pid: i32) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::os("read /proc/self/mountinfo", &e))?;
    let theirs = std::fs::read_to_string(format!("/proc/{}/cgroup", state.pid))
        .map_err(|e| Error::os(format_args!("read /proc/{}/cgroup", state.pid), &e))?;
    let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| Error::os(format_args!("read /proc/{pid}/cgroup"), &e))?;
    still_pid_one(state)?;
    let theirs = Layout::parse(&mountinfo, &theirs, read_or_empty);
    let ours = Layout::parse(&mountinfo, &ours, read_or_empty);
    for h in &theirs.hierarchies {
        let here = ours
            .hierarchies
            .iter()
            .find(|o| o.mountpoint == h.mountpoint);
        if here.is_some_and(|o| o.own == h.own) {
            continue;
        }
        let procs = h
            .mountpoint
            .join(h.own.trim_start_matches('/'))
            .join("cgroup.procs");
        RealFs
            .write(&procs, &pid.to_string())
            .map_err(|e| Error::os(format_args!("write {pid} to {}", procs.display()), &e))?;
    }
    Ok(())
}

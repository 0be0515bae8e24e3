//! The OCI runtime's lifecycle, as podman, containerd and the conformance
//! suite drive it. `create` sets the container up and leaves its PID 1
//! waiting on the entry's exec fifo just before the exec (shim op
//! AwaitStart), with no husk process left: its caller, a subreaper, reaps
//! it. `start` writes the byte that lets it exec. `state`, `kill` and
//! `delete` find it in the state store; PID 1 is known by PID and start
//! time, as everywhere in husk, so a PID reused since is never signalled.
//!
//! Nobody supervises such an entry once created: the sweep leaves it
//! (State::left_alone), it lives as long as its PID 1, and its cgroups and
//! entry go at `delete`. A `create` killed half-way leaves an entry still
//! `creating` and unlocked, which the next command sweeps as it does any
//! other.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::hooks::{self, Place};
use crate::json::Value;
use crate::process::kill_if_same;
use crate::run::{self, Options};
use crate::spec::Spec;
use crate::store::{self, State, Status, Store};

const FIFO: &str = "exec.fifo";

/// The entry's exec fifo, made and opened for reading and writing: the
/// open does not wait for a writer, and the shim's read waits for
/// `start`'s byte however long it takes.
pub fn make_fifo(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(FIFO);
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(format!("{}: holds a NUL", path.display())))?;
    // SAFETY: mkfifo and open take a C string we own.
    let fd = unsafe {
        if libc::mkfifo(c.as_ptr(), 0o600) != 0 {
            -1
        } else {
            libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC)
        }
    };
    if fd < 0 {
        return Err(Error::os(
            format_args!("make the exec fifo {}", path.display()),
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Handed to the shim: out of the way of the numbers it is moved to.
    crate::fds::held(fd).map_err(|e| Error::os("move the exec fifo's fd", &e))
}

/// `create`: returns PID 1's host PID once it waits for `start`; the
/// pid file, if asked for, is written before the entry is let go of.
pub fn create(
    spec: Spec,
    store: &Store,
    opts: &Options,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
) -> Result<i32> {
    let started = run::start(spec, store, opts)?;
    let pid = started.pid;
    let (mut entry, cgroup, pty) = started.into_parts();
    let sent = match (pty, console_socket) {
        (Some(pty), Some(path)) => pty.send_master(path),
        _ => Ok(()),
    };
    let written = sent.and_then(|()| match pid_file {
        Some(path) => write_pid_file(path, pid),
        None => Ok(()),
    });
    let saved = written.and_then(|()| {
        entry.state.status = Status::Created;
        entry.state.pid = pid;
        let doc = document(&entry.state);
        for stage in ["prestart", "createRuntime"] {
            hooks::run(
                &stage_hooks(&entry.state, stage)?,
                stage,
                &doc,
                &Place::Host,
            )?;
        }
        let stage = "createContainer";
        let place = Place::Joined(&entry.state);
        hooks::run(&stage_hooks(&entry.state, stage)?, stage, &doc, &place)?;
        entry.state.supervisor = 0;
        entry.state.supervisor_start = 0;
        entry.save()
    });
    if let Err(e) = saved {
        // Still our child: killed and reaped before its cgroup goes.
        crate::process::kill_and_reap(pid);
        drop(cgroup);
        return Err(e);
    }
    // Its cgroups stay until `delete`.
    if let Some(cg) = cgroup {
        cg.leave();
    }
    entry.keep();
    Ok(pid)
}

/// Written beside and renamed into place: a caller polling for it never
/// reads half a number.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("husk-tmp");
    let err =
        |e: std::io::Error| Error::os(format_args!("write the pid file {}", path.display()), &e);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(pid.to_string().as_bytes())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            err(e)
        })
}

/// The entry `id` under its lock, with its status as it is now.
struct Held {
    id: String,
    dir: std::path::PathBuf,
    state: State,
    _lock: fs::File,
}

fn hold(store: &Store, id: &str) -> Result<Held> {
    let missing = || Error::new(format!("container \"{id}\" does not exist"));
    let found = store.find(id).map_err(|_| missing())?;
    let lock = store::lock_dir(&found.dir, libc::LOCK_EX).map_err(|_| missing())?;
    let mut state = store::read(&found.dir)?;
    state.status = status(&state, &found.dir);
    Ok(Held {
        id: id.to_string(),
        dir: found.dir,
        state,
        _lock: lock,
    })
}

/// What a container is now: stopped once its PID 1 has ended (or the
/// host restarted), created while its fifo waits.
pub fn status(state: &State, dir: &Path) -> Status {
    match state.status {
        Status::Created | Status::Running if !alive(state) => Status::Stopped,
        Status::Created if !dir.join(FIFO).exists() => Status::Running,
        s => s,
    }
}

/// The state of an OCI container that `exec` may enter: created or
/// running.
pub fn live(found: &store::Found) -> Result<State> {
    let missing = || Error::new(format!("container \"{}\" does not exist", found.id));
    let mut state = found.state.as_ref().map_err(|_| missing())?.clone();
    state.status = status(&state, &found.dir);
    match state.status {
        Status::Created | Status::Running => Ok(state),
        s => Err(Error::new(format!(
            "cannot exec in container \"{}\": it is {}",
            found.id,
            s.name()
        ))),
    }
}

fn alive(state: &State) -> bool {
    state.pid > 0 && state.this_boot() && kill_if_same(state.pid, state.pid_start, 0)
}

/// The hooks of `stage` the state keeps (checked when the config was
/// read).
fn stage_hooks(s: &State, stage: &str) -> Result<Vec<hooks::Hook>> {
    if s.hooks.is_empty() {
        return Ok(Vec::new());
    }
    let v = crate::json::parse(&s.hooks).map_err(Error::new)?;
    hooks::of(&v, stage).map_err(Error::new)
}

/// Runs the hooks of a stage whose failure the runtime only reports
/// (poststart, poststop).
fn warn_hooks(s: &State, stage: &str) {
    let ran = stage_hooks(s, stage).and_then(|h| hooks::run(&h, stage, &document(s), &Place::Host));
    if let Err(e) = ran {
        eprintln!("runner: warning: {e}");
    }
}

/// `state`: the OCI state document.
pub fn state(store: &Store, id: &str) -> Result<String> {
    Ok(document(&hold(store, id)?.state))
}

/// The OCI state document: the first fields of the state file (which
/// are the OCI ones), PID 0 once stopped.
fn document(s: &State) -> String {
    let mut s = s.clone();
    if s.status == Status::Stopped {
        s.pid = 0;
    }
    match s.to_value() {
        Value::Object(mut fields) => {
            fields.truncate(7);
            Value::Object(fields).to_json_pretty()
        }
        _ => unreachable!("a state is an object"),
    }
}

/// `start`: lets a created container exec its program, once its
/// startContainer hooks have run (`shim` starts them); a hook that fails
/// stops the container.
pub fn start(
    store: &Store,
    id: &str,
    shim: impl FnOnce() -> Result<crate::shim::Source>,
) -> Result<()> {
    let mut h = hold(store, id)?;
    if h.state.status != Status::Created {
        return Err(Error::new(format!(
            "cannot start container \"{}\": it is {}, not created",
            h.id,
            h.state.status.name()
        )));
    }
    let path = h.dir.join(FIFO);
    let stage = "startContainer";
    let start_hooks = stage_hooks(&h.state, stage)?;
    if !start_hooks.is_empty() {
        let ran = shim().and_then(|shim| {
            let place = Place::Inside(&h.state, &shim);
            hooks::run(&start_hooks, stage, &document(&h.state), &place)
        });
        if let Err(e) = ran {
            kill_if_same(h.state.pid, h.state.pid_start, libc::SIGKILL);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    }
    // Non-blocking: with no reader (PID 1 gone) this is ENXIO, not a hang.
    let fifo = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path);
    let sent = fifo.and_then(|mut f| f.write_all(&[0]));
    let _ = fs::remove_file(&path);
    sent.map_err(|e| match e.raw_os_error() {
        Some(libc::ENXIO) => Error::new(format!("container \"{}\" is not running", h.id)),
        _ => Error::os(format_args!("write {}", path.display()), &e),
    })?;
    h.state.status = Status::Running;
    store::write_state(&h.dir, &h.state)?;
    warn_hooks(&h.state, "poststart");
    Ok(())
}

/// `kill [--all] ID SIG`.
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let h = hold(store, id)?;
    let s = &h.state;
    if s.status == Status::Stopped {
        return Err(Error::new(format!("container \"{id}\" is not running")));
    }
    if all {
        for pid in cgroup_pids(s) {
            // SAFETY: kill(2) takes plain integers; these are the
            // container's processes, in its cgroup.
            unsafe { libc::kill(pid, sig) };
        }
    }
    if kill_if_same(s.pid, s.pid_start, sig) || all {
        Ok(())
    } else {
        Err(Error::new(format!(
            "container \"{id}\" is not running: no such process"
        )))
    }
}

/// `ps`: the container's processes, as the host numbers them.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let h = hold(store, id)?;
    if h.state.status == Status::Stopped {
        return Ok(Vec::new());
    }
    let pids = cgroup_pids(&h.state);
    Ok(if pids.is_empty() {
        vec![h.state.pid]
    } else {
        pids
    })
}

/// The processes in the container's cgroup (its first hierarchy's; with
/// no cgroup of its own, none: PID 1's signal ends the PID namespace).
fn cgroup_pids(s: &State) -> Vec<i32> {
    s.cgroups
        .first()
        .and_then(|cg| fs::read_to_string(cg.join("cgroup.procs")).ok())
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `delete [--force]`: a stopped or created container (a created one is
/// killed, as runc does); a running one only with `force`.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let h = hold(store, id)?;
    let s = &h.state;
    match s.status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        other => {
            return Err(Error::new(format!(
                "cannot delete container \"{id}\" that is not stopped: it is {}",
                other.name()
            )))
        }
    }
    if s.status != Status::Stopped {
        kill_if_same(s.pid, s.pid_start, libc::SIGKILL);
        // Not our child: its end shows when its start time goes (a
        // zombie counts as ended).
        let start = Instant::now();
        while alive(s) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    store::end(&h.dir, s, true);
    store::remove_entry(&h.dir);
    let mut s = h.state.clone();
    s.status = Status::Stopped;
    warn_hooks(&s, "poststop");
    Ok(())
}

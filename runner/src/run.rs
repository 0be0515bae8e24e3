//! A container in the foreground: registered in the state store, set up,
//! supervised until PID 1 ends, cleaned up, its exit status returned.
//! The order here is the order of a start; each piece is its own module.

use std::ffi::CString;
use std::path::Path;

use shim::report::{Report, STEP_DECODE_PLAN, STEP_EXEC_SHIM, STEP_READ_PLAN};

use crate::cgroup::{self, Cgroup, Layout};
use crate::error::{describe_errno, Error, Result, NOT_EXECUTABLE, NOT_FOUND};
use crate::spec::Spec;
use crate::store::{State, Status, Store};
use crate::{describe, fds, plan, process, signals, spawn, tty};

/// Runs the container `spec` describes until its PID 1 ends; returns the
/// exit status the runner should end with.
pub fn foreground(spec: Spec, store_root: &Path) -> Result<i32> {
    // Whatever we inherited must not reach the container (CVE-2024-21626).
    fds::cloexec_from(3, &spec.missing)?;
    let store = Store::open(store_root)?;
    let mut entry = store.create(State::new(&spec.id, spec.rootfs.path()))?;
    let sec = &spec.security;
    let everywhere = sec.may_mount();
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
    let root = spec.rootfs.detach(!sec.privileged, &spec.missing)?;
    let console = match &pty {
        Some(p) => Some(
            CString::new(p.slave_path.as_str())
                .map_err(|_| Error::new(format!("pty path {:?} holds a NUL", p.slave_path)))?,
        ),
        None => None,
    };
    let plan = plan::build(&spec, &layout, console.as_deref(), &root)?;
    let shim = crate::shim::Shim::open(&spec.shim, &spec.missing)?;
    let mask = signals::block()?;
    let slave = pty.as_mut().and_then(|p| p.slave.take());
    let mut container = spawn::clone_shim(&spawn::Launch {
        shim: &shim,
        clone_flags: spec.namespaces.clone_flags(),
        mask: &mask,
        stdio: slave.as_ref(),
        passed: &plan.passed,
        parent_death_signal: spec.parent_death_signal,
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
            name: &cgroup::leaf_name(&spec.id),
            everywhere,
            kill_file: !spec.missing.has(crate::kernel::Call::CgroupKill),
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
    entry.state.status = Status::Running;
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
    container.send_plan(&plan.bytes);
    if let Some(report) = container.read_report() {
        container.kill_and_reap();
        return Err(setup_error(&spec, &plan, report));
    }
    // Nothing of the setup stays open while the container runs.
    drop((shim, root, spec.rootfs, spec.namespaces));
    // Containers whose runner was killed are ended now, off the start-up
    // path of this one.
    store.sweep(&spec.missing);

    let raw = pty.as_ref().map(|_| tty::RawMode::enter());
    let exit = signals::supervise(container.pid, &mask, pty.as_ref());
    drop(raw);
    if let Some(cg) = &cgroup {
        if exit == signals::Exit::Signal(libc::SIGKILL) && cg.oom_kills() > 0 {
            let limit = spec
                .limits
                .memory
                .map(|m| format!(" ({} MiB)", m >> 20))
                .unwrap_or_default();
            eprintln!("runner: the container hit its memory limit{limit}: the kernel's OOM killer ended it");
        }
    }
    // The cgroup goes first, then the entry that would let a later
    // command finish the job if this one were killed now.
    drop(cgroup);
    drop(entry);
    Ok(exit.status())
}

/// One line for a failure inside the container before exec, naming the
/// step, the system call, its path and the errno.
fn setup_error(spec: &Spec, plan: &plan::Plan, report: Report) -> Error {
    let errno = report.errno as i32;
    match report.step {
        STEP_EXEC_SHIM => Error::new(format!(
            "exec shim {}: {}",
            spec.shim.describe(),
            describe_errno(errno)
        )),
        STEP_READ_PLAN => Error::new(format!("shim: read plan: {}", describe_errno(errno))),
        STEP_DECODE_PLAN => {
            Error::new("shim: refused a malformed plan (runner and shim from different builds?)")
        }
        step if step as usize == plan.exec_step => exec_error(spec, report),
        step => {
            let ops = plan::decode(&plan.bytes);
            let Some(op) = ops.get(step as usize) else {
                return Error::new(format!(
                    "shim: unknown step {step}: {}",
                    describe_errno(errno)
                ));
            };
            let what = describe::op(op);
            let call = describe::syscall(op, report.sub)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            let why = if errno == libc::ELOOP {
                ": husk refuses symlinks in the paths it mounts on inside the rootfs"
            } else {
                ""
            };
            Error::new(format!("{what}{call}: {}{why}", describe_errno(errno)))
        }
    }
}

/// The exec step's failures, with Docker's statuses: 127 not found, 126
/// not executable. `report.sub` is 1 + the index of the candidate that
/// exists but answered ENOENT: its ELF interpreter or `#!` program is
/// missing in the rootfs.
fn exec_error(spec: &Spec, report: Report) -> Error {
    let errno = report.errno as i32;
    let cmd = spec.argv[0].to_string_lossy();
    if errno != libc::ENOENT {
        return Error::new(format!("exec {cmd}: {}", describe_errno(errno)))
            .with_status(NOT_EXECUTABLE);
    }
    let found = (report.sub as usize)
        .checked_sub(1)
        .and_then(|i| spec.candidates.get(i));
    if let Some(path) = found {
        let path = path.to_string_lossy();
        let missing = spec
            .rootfs
            .interpreter(&path)
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        return Error::new(format!(
            "exec {cmd}: {path} exists, but the program it needs to run{missing} is missing \
             in the container"
        ))
        .with_status(NOT_FOUND);
    }
    if cmd.contains('/') {
        Error::new(format!("exec {cmd}: {}", describe_errno(errno))).with_status(NOT_FOUND)
    } else {
        Error::new(format!("exec {cmd}: not found in the container's PATH")).with_status(NOT_FOUND)
    }
}

//! husk's runner: checks everything, builds the plan, clones the shim into
//! new namespaces, applies cgroup limits, supervises, cleans up, reports.

use cgroup::{Cgroup, Layout};
use error::{describe_errno, Error, Result, NOT_EXECUTABLE, NOT_FOUND};
use runner::{cgroup, cli, error, fds, plan, signals, spawn, spec, tty};
use shim::report::{Report, STEP_DECODE_PLAN, STEP_EXEC_SHIM, STEP_READ_PLAN};

fn main() {
    let status = match run() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("runner: {e}");
            e.status
        }
    };
    std::process::exit(status);
}

fn run() -> Result<i32> {
    let argv = std::env::args_os()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::new(format!("argument {a:?} is not UTF-8")))
        })
        .collect::<Result<Vec<_>>>()?;
    let args = match cli::parse(&argv) {
        cli::Parsed::Run(args) => args,
        cli::Parsed::Exit(text) => {
            println!("{text}");
            return Ok(0);
        }
        cli::Parsed::Error(e) => return Err(Error::new(e)),
    };
    let spec = spec::check(*args, &spec::Host::read())?;
    // Whatever we inherited must not reach the container (CVE-2024-21626).
    fds::cloexec_from(3);
    // Without limits the container gets no cgroup of its own, and so no
    // cgroupfs either: nothing to read from the host.
    let layout = if spec.limits.controllers().is_empty() {
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
    let plan = plan::build(&spec, &layout, pty.as_ref().map(|p| p.slave_path.as_str()));
    let name = cgroup::leaf_name(std::process::id());
    let cgroup = Cgroup::create(&layout, &spec.limits, spec.cgroup_parent.as_deref(), &name)?;

    let shim = runner::shim::Shim::open(&spec.shim)?;
    let mask = signals::block();
    let slave = pty.as_mut().and_then(|p| p.slave.take());
    let mut container = spawn::clone_shim(&shim, spec.new_net, &mask, slave.as_ref())?;
    // The master reads EIO once the container's side is closed, which it
    // cannot be while we hold a copy.
    drop(slave);
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
    drop(shim);

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
    Ok(exit.status())
}

/// One line for a failure inside the container before exec, naming the
/// step, its path and the errno.
fn setup_error(spec: &spec::Spec, plan: &plan::Plan, report: Report) -> Error {
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
        step if step as usize == plan.exec_step => {
            let cmd = spec.argv[0].to_string_lossy();
            match errno {
                libc::ENOENT if !cmd.contains('/') => {
                    Error::new(format!("exec {cmd}: not found in the container's PATH"))
                        .with_status(NOT_FOUND)
                }
                libc::ENOENT => Error::new(format!("exec {cmd}: {}", describe_errno(errno)))
                    .with_status(NOT_FOUND),
                _ => Error::new(format!("exec {cmd}: {}", describe_errno(errno)))
                    .with_status(NOT_EXECUTABLE),
            }
        }
        step => match plan.steps.get(step as usize) {
            Some(what) if errno == libc::ELOOP => Error::new(format!(
                "{what}: {}: husk refuses symlinks in the paths it mounts on inside the rootfs",
                describe_errno(errno)
            )),
            Some(what) => Error::new(format!("{what}: {}", describe_errno(errno))),
            None => Error::new(format!(
                "shim: unknown step {step}: {}",
                describe_errno(errno)
            )),
        },
    }
}

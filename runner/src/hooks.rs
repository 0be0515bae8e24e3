//! OCI hooks: programs the caller names in config.json, run by the runtime
//! on the host at points of the lifecycle, each with the container's state
//! on its stdin. `prestart` and `createRuntime` run when `create` has set
//! the container up (husk runs them once the shim waits, after its
//! pivot_root rather than before: the namespaces they are for exist
//! either way), `poststart` after `start`, `poststop` at `delete`. The
//! hooks that run inside the container (createContainer, startContainer)
//! are refused as unsupported.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::json::Value;

pub struct Hook {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    timeout: Option<Duration>,
}

/// The stages husk runs, in config.json's names.
pub const STAGES: [&str; 4] = ["prestart", "createRuntime", "poststart", "poststop"];

/// The hooks of `stage` in a config's `hooks` object; errors name the
/// field.
pub fn of(hooks: &Value, stage: &str) -> std::result::Result<Vec<Hook>, String> {
    let list = hooks
        .get(stage)
        .and_then(Value::as_array)
        .unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, h)| {
            let field = format!("hooks.{stage}[{i}]");
            let strings = |k: &str| -> std::result::Result<Vec<CString>, String> {
                h.get(k)
                    .and_then(Value::as_array)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .and_then(|s| CString::new(s).ok())
                            .ok_or_else(|| format!("{field}.{k}: expected strings without NULs"))
                    })
                    .collect()
            };
            let path = h
                .get("path")
                .and_then(Value::as_str)
                .filter(|p| p.starts_with('/'))
                .and_then(|p| CString::new(p).ok())
                .ok_or_else(|| format!("{field}.path: expected an absolute path"))?;
            let timeout = match h.get("timeout") {
                None | Some(Value::Null) => None,
                Some(t) => Some(Duration::from_secs(
                    t.as_u64()
                        .filter(|&t| t > 0)
                        .ok_or_else(|| format!("{field}.timeout: expected seconds, above 0"))?,
                )),
            };
            let mut args = strings("args")?;
            if args.is_empty() {
                args.push(path.clone());
            }
            Ok(Hook {
                path,
                args,
                env: strings("env")?,
                timeout,
            })
        })
        .collect()
}

/// Runs each hook in turn with `state` (the OCI state JSON) on its stdin;
/// the first that fails (a status other than 0, or its timeout) stops the
/// rest and is the error.
pub fn run(hooks: &[Hook], stage: &str, state: &str) -> Result<()> {
    for h in hooks {
        run_one(h, state).map_err(|why| {
            Error::new(format!("{stage} hook {}: {why}", h.path.to_string_lossy()))
        })?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &str) -> std::result::Result<(), String> {
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv, envp) = (ptrs(&h.args), ptrs(&h.env));
    let (r, w) = crate::spawn::pipe().map_err(|e| e.message)?;
    // SAFETY: the child only calls async-signal-safe functions (dup2,
    // sigprocmask, execve, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: as above; the runner may have blocked signals, which a
        // hook must not inherit.
        unsafe {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::dup2(r.as_raw_fd(), 0);
            libc::execve(h.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    drop(r);
    // A hook that does not read its stdin gets EPIPE here, not a failure.
    // SAFETY: write from a buffer we own to our fd; SIGPIPE is not ours
    // to take.
    unsafe {
        let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::write(w.as_raw_fd(), state.as_ptr().cast(), state.len());
        libc::signal(libc::SIGPIPE, old);
    }
    drop(w);
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if h.timeout.is_some_and(|t| start.elapsed() >= t) {
            // SAFETY: our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!(
                "still running after {} s: killed",
                start.elapsed().as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, 127) => Err("exited with 127 (could it be run?)".into()),
        (true, code) => Err(format!("exited with {code}")),
        _ => Err(format!("killed by signal {}", libc::WTERMSIG(status))),
    }
}

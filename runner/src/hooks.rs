//! OCI hooks: programs the caller names in config.json, each run with the
//! container's state on its stdin, at points of the lifecycle and in the
//! places the runtime spec gives them:
//!
//! - `prestart`, `createRuntime`: when `create` has set the container up
//!   (husk runs them once the shim waits, after its pivot_root rather than
//!   before: the namespaces they are for exist either way), on the host;
//! - `createContainer`: right after those, found on the host but run in
//!   the container's namespaces, cgroups and root, with the runtime's
//!   privileges, as runc runs it from its init before the pivot: the
//!   runner opens the program, forks into the container's PID namespace,
//!   joins the rest and execs the program by its fd;
//! - `startContainer`: at `start`, before the container's program runs,
//!   found and run inside the container and confined as its processes are
//!   (the program is the container's own: its capabilities, seccomp
//!   filter and no_new_privs, as its root), through the shim as `exec`
//!   runs a process;
//! - `poststart` after `start`, `poststop` at `delete`, on the host.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::json::Value;
use crate::namespaces::Kind;
use crate::store::State;

pub struct Hook {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    timeout: Option<Duration>,
}

/// The stages, in config.json's names.
pub const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Where a stage's hooks run.
pub enum Place<'a> {
    /// On the host, in the runtime's namespaces.
    Host,
    /// Found on the host, run in the container's namespaces
    /// (createContainer).
    Joined(&'a State),
    /// Found and run inside the container, confined as its processes are
    /// (startContainer); the shim that starts it.
    Inside(&'a State, &'a crate::shim::Source),
}

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

/// Runs each hook in turn, in `place`, with `state` (the OCI state JSON)
/// on its stdin; the first that fails (one that cannot be started, a
/// status other than 0, or its timeout) stops the rest and is the error.
pub fn run(hooks: &[Hook], stage: &str, state: &str, place: &Place<'_>) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    // What the runner's caller left open is not the hooks' (and some run
    // in the container).
    crate::fds::cloexec_from(3, &crate::kernel::Missing::default())?;
    for h in hooks {
        run_one(h, state, place).map_err(|why| {
            Error::new(format!("{stage} hook {}: {why}", h.path.to_string_lossy()))
        })?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &str, place: &Place<'_>) -> std::result::Result<(), String> {
    let (r, w) = crate::spawn::pipe().map_err(|e| e.message)?;
    let pid = match place {
        Place::Inside(container, shim) => inside(h, container, shim, r.as_raw_fd())?,
        _ => forked(h, r.as_raw_fd(), None, place)?,
    };
    drop(r);
    feed(w, state);
    wait(pid, h.timeout).and_then(exited_0)
}

/// Writes `input` to a child's stdin `w`, and closes it. A child that does
/// not read its stdin gets EPIPE here, not a failure.
fn feed(w: OwnedFd, input: &str) {
    // SAFETY: write from a buffer we own to our fd; SIGPIPE is not ours
    // to take.
    unsafe {
        let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::write(w.as_raw_fd(), input.as_ptr().cast(), input.len());
        libc::signal(libc::SIGPIPE, old);
    }
}

/// Runs the program `path` on the host with `env` alone, `input` on its
/// stdin, for at most `timeout`: its exit status (Err for a signal or the
/// timeout) and what it wrote on stdout (a CNI plugin's answer, either
/// way). stdout is a memfd, so a program that hangs with it open still
/// meets its timeout.
pub fn call(
    path: CString,
    env: Vec<CString>,
    input: &str,
    timeout: Duration,
) -> std::result::Result<(i32, String), String> {
    let h = Hook {
        args: vec![path.clone()],
        path,
        env,
        timeout: Some(timeout),
    };
    // SAFETY: memfd_create with a C string; the fd is then ours.
    let fd = unsafe { libc::memfd_create(c"husk-call".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "memfd_create: {}",
            crate::error::describe(&std::io::Error::last_os_error())
        ));
    }
    // SAFETY: fresh.
    let mut out = unsafe { std::fs::File::from_raw_fd(fd) };
    let (r, w) = crate::spawn::pipe().map_err(|e| e.message)?;
    let pid = forked(&h, r.as_raw_fd(), Some(out.as_raw_fd()), &Place::Host)?;
    drop(r);
    feed(w, input);
    let status = wait(pid, h.timeout)?;
    let mut text = String::new();
    use std::io::Seek;
    out.seek(std::io::SeekFrom::Start(0))
        .and_then(|_| out.read_to_string(&mut text))
        .map_err(|e| format!("read its output: {}", crate::error::describe(&e)))?;
    Ok((status, text))
}

/// startContainer: `exec`'s way into the container, the hook's program
/// and environment its own, and stdin the state.
fn inside(
    h: &Hook,
    container: &State,
    shim: &crate::shim::Source,
    stdin: RawFd,
) -> std::result::Result<i32, String> {
    let text = |s: &CString| s.to_string_lossy().into_owned();
    // The hook's environment alone (replace_env below), as KEY=VALUE.
    let env = h
        .env
        .iter()
        .map(|e| {
            let e = text(e);
            match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e, String::new()),
            }
        })
        .collect();
    let req = crate::exec::Request {
        id: container.id.clone(),
        argv: h.args.iter().map(text).collect(),
        env,
        workdir: Some("/".into()),
        user: None,
        tty: false,
        interactive: false,
        shim: shim.try_clone().map_err(|e| e.message)?,
        missing: crate::kernel::Missing::default(),
        oci: Some(crate::exec::OciProcess {
            replace_env: true,
            caps: None,
            no_new_privs: None,
            groups: Vec::new(),
            umask: 0o022,
            detach: true,
            pid_file: None,
            console_socket: None,
        }),
        program: Some(text(&h.path)),
    };
    let launched = crate::exec::launch(container, &req, Some(stdin)).map_err(|e| e.message)?;
    Ok(launched.child.pid)
}

/// Steps of a forked hook's child before its exec, as it reports them.
const STEP_EXEC: u8 = 0;
const STEP_GO: u8 = 1;
const STEP_USERNS_ROOT: u8 = 2;
const STEP_ROOT: u8 = 3;
/// setns into the namespace `Kind::ORDER[n - STEP_SETNS]`.
const STEP_SETNS: u8 = 4;

/// What a createContainer hook's child enters before its exec.
struct Enter {
    namespaces: Vec<(u8, OwnedFd)>,
    root: OwnedFd,
    program: OwnedFd,
    /// The pipe whose byte says that the child is in the container's
    /// cgroups: the child reads, the runner writes.
    go: OwnedFd,
    go_w: OwnedFd,
}

/// A forked child that execs the hook, on the host or (createContainer)
/// in the container's namespaces; what fails before its exec comes back
/// on a pipe as the step and errno.
fn forked(
    h: &Hook,
    stdin: RawFd,
    stdout: Option<RawFd>,
    place: &Place<'_>,
) -> std::result::Result<i32, String> {
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv, envp) = (ptrs(&h.args), ptrs(&h.env));
    let (err_r, err_w) = crate::spawn::pipe().map_err(|e| e.message)?;
    let (enter, pid_ns) = match place {
        Place::Joined(container) => {
            let joined = crate::exec::join(container).map_err(|e| e.message)?;
            let pid_ns = crate::exec::joined_pid_namespace(container).map_err(|e| e.message)?;
            let (go, go_w) = crate::spawn::pipe().map_err(|e| e.message)?;
            let namespaces = joined
                .namespaces
                .into_iter()
                .map(|(k, fd)| {
                    let n = Kind::ORDER.iter().position(|o| *o == k).unwrap_or(0);
                    (STEP_SETNS + n as u8, fd)
                })
                .collect();
            let program = std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(std::ffi::OsStr::from_bytes(h.path.as_bytes()))
                .map_err(|e| format!("open: {}", crate::error::describe(&e)))?;
            let enter = Enter {
                namespaces,
                root: joined.root,
                program: program.into(),
                go,
                go_w,
            };
            (Some(enter), Some(pid_ns))
        }
        _ => (None, None),
    };
    let (pid, error) = crate::spawn::fork_into(pid_ns.as_ref().map(AsRawFd::as_raw_fd), || {
        // SAFETY: the child only makes async-signal-safe calls on memory
        // prepared before the fork, then execs or exits.
        unsafe { libc::fork() }
    })
    .map_err(|e| e.message)?;
    if pid < 0 {
        return Err(format!("fork: {}", crate::error::describe(&error)));
    }
    if pid == 0 {
        // SAFETY: as above; `child` never returns.
        unsafe {
            child(
                h,
                &argv,
                &envp,
                [stdin, stdout.unwrap_or(1)],
                err_w.as_raw_fd(),
                enter.as_ref(),
            )
        }
    }
    drop(err_w);
    if let (Place::Joined(container), Some(e)) = (place, &enter) {
        let moved = crate::exec::join_cgroups(container, pid);
        if let Err(e) = &moved {
            crate::process::kill_and_reap(pid);
            return Err(e.message.clone());
        }
        // SAFETY: a one-byte write to our own pipe.
        unsafe { libc::write(e.go_w.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
    drop(enter);
    let mut record = [0u8; 5];
    let got = std::fs::File::from(err_r).read(&mut record).unwrap_or(0);
    if got == record.len() {
        // SAFETY: waitpid on our own child, which exits after reporting.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        let errno = std::io::Error::from_raw_os_error(i32::from_ne_bytes(
            record[1..].try_into().expect("four bytes"),
        ));
        let step = match record[0] {
            STEP_EXEC => "execve".to_string(),
            STEP_GO => "wait for the runner".to_string(),
            STEP_USERNS_ROOT => "setresuid/setresgid to the user namespace's root".to_string(),
            STEP_ROOT => "chroot into the container's root".to_string(),
            n => format!(
                "setns into the container's {} namespace",
                Kind::ORDER
                    .get(usize::from(n - STEP_SETNS))
                    .map_or("?", |k| k.name())
            ),
        };
        let hint = match (place, errno.raw_os_error()) {
            (Place::Joined(_), Some(libc::ENOENT)) if record[0] == STEP_EXEC => {
                " (it runs in the container's root: is its interpreter or loader there?)"
            }
            _ => "",
        };
        return Err(format!("{step}: {}{hint}", crate::error::describe(&errno)));
    }
    Ok(pid)
}

/// In the forked child: empties the signal mask the runner may have set,
/// enters the container (createContainer), takes the state as stdin and
/// execs; a failure is reported as its step and errno.
unsafe fn child(
    h: &Hook,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    [stdin, stdout]: [RawFd; 2],
    err: RawFd,
    enter: Option<&Enter>,
) -> ! {
    let fail = |step: u8| -> ! {
        let errno = *libc::__errno_location();
        let mut record = [step; 5];
        record[1..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(err, record.as_ptr().cast(), record.len());
        libc::_exit(127)
    };
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    libc::dup2(stdin, 0);
    libc::dup2(stdout, 1);
    let Some(e) = enter else {
        libc::execve(h.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(STEP_EXEC)
    };
    // Our copy of the write end closed: a runner that dies before its
    // byte leaves EOF here, and the child goes.
    libc::close(e.go_w.as_raw_fd());
    let mut byte = 0u8;
    if libc::read(e.go.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) != 1 {
        fail(STEP_GO)
    }
    for (step, fd) in &e.namespaces {
        if libc::setns(fd.as_raw_fd(), 0) != 0 {
            fail(*step)
        }
        // The host's 0 is nobody in the container's user namespace: the
        // hook becomes its 0, which keeps the capabilities it got there.
        if *step == STEP_SETNS && (libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0) {
            fail(STEP_USERNS_ROOT)
        }
    }
    if libc::fchdir(e.root.as_raw_fd()) != 0 || libc::chroot(c".".as_ptr()) != 0 {
        fail(STEP_ROOT)
    }
    // A script's interpreter reads it from /dev/fd/N: the program's fd
    // stays open across the exec.
    libc::fcntl(e.program.as_raw_fd(), libc::F_SETFD, 0);
    libc::syscall(
        libc::SYS_execveat,
        e.program.as_raw_fd(),
        c"".as_ptr(),
        argv.as_ptr(),
        envp.as_ptr(),
        libc::AT_EMPTY_PATH,
    );
    fail(STEP_EXEC)
}

fn exited_0(code: i32) -> std::result::Result<(), String> {
    match code {
        0 => Ok(()),
        code => Err(format!("exited with {code}")),
    }
}

/// Waits for the hook `pid` to end, killing it at its timeout: its exit
/// status.
fn wait(pid: i32, timeout: Option<Duration>) -> std::result::Result<i32, String> {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            crate::process::kill_and_reap(pid);
            return Err(format!(
                "still running after {} s: killed",
                start.elapsed().as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match libc::WIFEXITED(status) {
        true => Ok(libc::WEXITSTATUS(status)),
        false => Err(format!("killed by signal {}", libc::WTERMSIG(status))),
    }
}

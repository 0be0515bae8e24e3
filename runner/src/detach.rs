//! `run -d`: the container runs on without the command that started it.
//! The runner forks once; the child becomes the container's monitor
//! (monitor.rs) in a session of its own, with no terminal and its own
//! stdio on /dev/null, so the caller's terminal closing or its shell
//! ending reaches neither it nor the container. The parent waits on a
//! pipe for the start's outcome — the ID, or the setup's error line and
//! status, as a foreground start would give them — and returns.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use crate::error::{Error, Result};
use crate::log::{self, Stream};
use crate::monitor::{self, Output};
use crate::run::{self, Options};
use crate::spec::Spec;
use crate::store::Store;

/// Starts the container detached; returns its ID once it runs.
pub fn start(spec: Spec, store_root: &Path, opts: Options, log_cap: u64) -> Result<String> {
    let store = Store::open(store_root)?;
    let id = spec.id.clone();
    let (ready_r, ready_w) = crate::spawn::pipe()?;
    // SAFETY: the runner is single-threaded: the child may go on with
    // everything the parent could do.
    match unsafe { libc::fork() } {
        -1 => Err(Error::os(
            "fork the container's monitor",
            &std::io::Error::last_os_error(),
        )),
        0 => {
            drop(ready_r);
            let status = monitor_main(spec, &store, opts, log_cap, ready_w);
            std::process::exit(status)
        }
        _ => {
            drop(ready_w);
            let mut said = String::new();
            let _ = std::fs::File::from(ready_r).read_to_string(&mut said);
            match said.split_once('\n') {
                Some(("ok", _)) => Ok(id),
                Some((status, message)) => Err(Error::new(message.trim_end())
                    .with_status(status.parse().unwrap_or(crate::error::RUNTIME))),
                None => Err(Error::new(
                    "the container's monitor ended during the start, without a word",
                )),
            }
        }
    }
}

/// The monitor's life: set up, say how that went, supervise, clean up.
fn monitor_main(spec: Spec, store: &Store, mut opts: Options, cap: u64, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    let mut say = |text: &str| {
        let _ = ready.write_all(text.as_bytes());
    };
    let missing = spec.missing.clone();
    let tty = spec.tty;
    let (output, mut ends) = match alone().and_then(|()| output_pipes(tty)) {
        Ok(o) => o,
        Err(e) => {
            say(&format!("{}\n{e}", e.status));
            return e.status;
        }
    };
    opts.stdio = [
        ends.first().map(|f| f.as_raw_fd()),
        ends.get(1).map(|f| f.as_raw_fd()),
        ends.get(2).map(|f| f.as_raw_fd()),
    ];
    let started = match run::start(spec, store, &opts) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("{}\n{e}", e.status));
            return e.status;
        }
    };
    // Only the container holds the write ends now: its output ends when
    // it does.
    ends.clear();
    let dir = started.entry.dir().to_path_buf();
    let mut log = match log::Writer::open(&dir, cap) {
        Ok(l) => l,
        Err(e) => {
            // A container whose output nobody could keep is not started.
            let e = Error::os(format_args!("open the log in {}", dir.display()), &e);
            say(&format!("{}\n{e}", e.status));
            // SAFETY: kill(2) on our own child, which we then reap.
            unsafe { libc::kill(started.pid, libc::SIGKILL) };
            let exit = loop {
                if let Some(exit) = crate::signals::reap(started.pid, None) {
                    break exit;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            };
            started.finish(exit);
            return e.status;
        }
    };
    let listener = if tty {
        UnixListener::bind(dir.join(monitor::SOCKET))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .ok()
    } else {
        None
    };
    say("ok\n");
    drop(ready);
    store.sweep(&missing);
    let exit = monitor::run(&started, output, &mut log, listener);
    let _ = std::fs::remove_file(dir.join(monitor::SOCKET));
    if let Some(notice) = started.finish(exit) {
        log.note(&notice);
    }
    0
}

/// A session of our own, no terminal, stdio on /dev/null, and / as the
/// working directory (no mount kept busy).
fn alone() -> Result<()> {
    let err = |what: &str| Error::os(what, &std::io::Error::last_os_error());
    // SAFETY: plain calls on our own process; the fds are numbers we own.
    unsafe {
        if libc::setsid() < 0 {
            return Err(err("setsid for the container's monitor"));
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return Err(err("open /dev/null"));
        }
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::close(null);
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(err("chdir /"));
        }
    }
    Ok(())
}

/// Without a terminal: stdin on /dev/null, stdout and stderr on pipes
/// whose read ends the monitor keeps. Returns the read ends and the
/// container's ends (fds 0, 1, 2). With one, the pty does all (run.rs).
fn output_pipes(tty: bool) -> Result<(Output, Vec<OwnedFd>)> {
    if tty {
        return Ok((
            Output {
                streams: Vec::new(),
            },
            Vec::new(),
        ));
    }
    let null = std::fs::File::open("/dev/null").map_err(|e| Error::os("open /dev/null", &e))?;
    let held = |fd: OwnedFd| crate::fds::held(fd).map_err(|e| Error::os("move a pipe", &e));
    let (out_r, out_w) = crate::spawn::pipe()?;
    let (err_r, err_w) = crate::spawn::pipe()?;
    Ok((
        Output {
            streams: vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)],
        },
        vec![held(null.into())?, held(out_w)?, held(err_w)?],
    ))
}

//! The commands that act on a container after its start: `kill`, `stop`,
//! `rm` and `wait`. Each finds it in the state store and trusts nothing it
//! has not checked: PID 1 and its monitor are known by PID and start time
//! (a PID the kernel gave to another process since is never signalled),
//! and an entry is only removed under its lock, taken once its monitor has
//! let go of it.
//!
//! Signals go through the monitor where it can pass them on: a
//! namespace's init gets only the signals it has a handler for, and the
//! monitor knows what to do with the others (signals.rs: one PID 1 would
//! die of ends it, with the status it would have had). SIGKILL goes to
//! PID 1 itself, which the kernel lets through from outside.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::process::kill_if_same;
use crate::signals::{self, Exit};
use crate::store::{self, Found, State, Status, Store};

/// The state of a container that is running; else one line saying what
/// it is instead.
pub fn running(found: &Found) -> Result<&State> {
    let state = found.state.as_ref().map_err(|e| {
        Error::new(format!(
            "{}: its state cannot be read ({e}); `rm -f` removes it",
            found.id
        ))
    })?;
    if state.status != Status::Running || !found.supervised() {
        return Err(Error::new(format!(
            "{}: not running ({})",
            found.id,
            if state.status == Status::Running {
                "its monitor is gone".into()
            } else {
                state.describe()
            }
        )));
    }
    Ok(state)
}

/// `kill -s SIG`.
pub fn kill(store: &Store, id: &str, sig: i32) -> Result<()> {
    let found = store.find(id)?;
    let state = running(&found)?;
    let sent = if sig != libc::SIGKILL && signals::FORWARDED.contains(&sig) {
        kill_if_same(state.supervisor, state.supervisor_start, sig)
    } else {
        kill_if_same(state.pid, state.pid_start, sig)
    };
    if sent {
        Ok(())
    } else {
        Err(Error::new(format!("{id}: it ended meanwhile")))
    }
}

/// `stop -t SECS`: SIGTERM, then SIGKILL after `grace`; returns once its
/// monitor has recorded the end.
pub fn stop(store: &Store, id: &str, grace: Duration) -> Result<()> {
    let found = store.find(id)?;
    let state = running(&found)?.clone();
    kill_if_same(state.supervisor, state.supervisor_start, libc::SIGTERM);
    if !released(&found.dir, grace) {
        kill_if_same(state.pid, state.pid_start, libc::SIGKILL);
    }
    settled(&found.dir, id)
}

/// `rm`: the entry, its log and what is left of its cgroups; with
/// `force`, a running container is killed first.
pub fn remove(store: &Store, id: &str, force: bool) -> Result<()> {
    let found = store.find(id)?;
    if found.supervised() {
        if !force {
            return Err(Error::new(format!(
                "{id}: running; stop it first, or remove it with rm -f"
            )));
        }
        match &found.state {
            Ok(state) => {
                kill_if_same(state.pid, state.pid_start, libc::SIGKILL);
            }
            // Its state is unreadable, but its monitor holds the lock:
            // PID 1 is the monitor's one child. Ended, it is reaped and
            // recorded by the monitor, which rewrites the state.
            Err(_) => {
                if let Some(monitor) = lock_holder(&found.dir) {
                    for child in crate::process::children(monitor) {
                        // SAFETY: kill(2) takes plain integers; the
                        // child of a live monitor cannot be reaped (and
                        // its PID reused) by anyone but the monitor.
                        unsafe { libc::kill(child, libc::SIGKILL) };
                    }
                }
            }
        }
        settled(&found.dir, id)?;
    }
    // Another `rm` may hold it for a moment; then the entry is gone.
    let start = Instant::now();
    let lock = loop {
        match store::lock_dir(&found.dir, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(lock) => break lock,
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                if start.elapsed() > Duration::from_secs(10) {
                    return Err(Error::new(format!(
                        "{id}: another command holds it (still after 10 s)"
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return Err(Error::new(format!("{id}: removed meanwhile"))),
        }
    };
    // A runner killed before it could clean up: what the sweep does.
    if let Ok(state) = store::read(&found.dir) {
        if state.status != Status::Stopped {
            store::end(&found.dir, &state, true);
        }
    }
    store::remove_entry(&found.dir);
    drop(lock);
    Ok(())
}

/// `wait`: blocks until the container has ended; how it ended, or None if
/// nobody saw it end (its monitor was killed).
pub fn wait(store: &Store, id: &str) -> Result<Option<Exit>> {
    let found = store.find(id)?;
    // The monitor holds the lock until it has recorded the end.
    match store::lock_dir(&found.dir, libc::LOCK_SH) {
        Ok(lock) => drop(lock),
        // --rm: the entry went with the end, its status with it.
        Err(_) => return Err(Error::new(format!("{id}: removed as it ended (--rm)"))),
    }
    // A monitor that was killed recorded nothing: the sweep does.
    store.sweep(&crate::kernel::Missing::default());
    match store::read(&found.dir) {
        Ok(s) if s.status == Status::Stopped => Ok(s.exit),
        Ok(s) => Err(Error::new(format!("{id}: {}", s.describe()))),
        Err(_) => Err(Error::new(format!("{id}: removed when it ended"))),
    }
}

/// Whether the monitor let go of the entry within `limit`.
fn released(dir: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        match store::lock_dir(dir, libc::LOCK_SH | libc::LOCK_NB) {
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
            _ => return true,
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for the monitor to record the end of a container that was
/// killed.
fn settled(dir: &Path, id: &str) -> Result<()> {
    if released(dir, Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{id}: its monitor still holds it 10 s after PID 1 was killed"
        )))
    }
}

/// The process holding a flock on `dir`, from /proc/locks.
fn lock_holder(dir: &Path) -> Option<i32> {
    let m = fs::metadata(dir).ok()?;
    let dev = m.dev();
    let want = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        m.ino()
    );
    fs::read_to_string("/proc/locks")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END"
            (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
                .then(|| f.get(4)?.parse().ok())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_of_a_lock_is_found() {
        let dir = std::env::temp_dir().join(format!("husk-holder-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(lock_holder(&dir), None);
        let lock = store::lock_dir(&dir, libc::LOCK_EX).unwrap();
        assert_eq!(lock_holder(&dir), Some(std::process::id() as i32));
        drop(lock);
        let _ = fs::remove_dir_all(&dir);
    }
}

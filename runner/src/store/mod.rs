//! The state store: one directory per container under the store's root
//! (`--root`, default /run/husk), holding `state.json` (state.rs) and, for
//! a detached container, its log and its attach socket. Each start makes
//! few changes to the store's filesystem (mkdir, rename, one file, then
//! unlink and rmdir): /run is a tmpfs on most hosts, but not on all.
//!
//! The process that supervises a container holds an exclusive flock on its
//! directory for as long as it lives; the kernel drops it when that process
//! dies, however it dies. So any later husk command can tell a container
//! whose supervisor was killed (`kill -9`) from a live one, and ends it:
//! PID 1 (checked by its start time, so a reused PID is never taken for
//! it), then its cgroups; then the entry goes, or, for a detached
//! container, stays as stopped with its status unknown, for `ps -a` to
//! show and `rm` to remove. That is what makes "no process outlives a
//! killed runner" hold even when PID 1 cleared its parent-death signal.
//!
//! The root is made by root with mode 0700 and holds nothing a container
//! can reach, so names in it are used as they are. An entry is made under
//! a hidden name, locked, then renamed into place, so that nobody ever
//! sees an entry that is not locked by its maker. state.json is replaced
//! atomically (written beside it, then renamed): a reader sees the old
//! file or the new one, never half of one; only the first write goes
//! straight into place, under the maker's lock, and a reader that finds
//! it half written says so (`Found::state`).

mod state;
pub mod time;

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use state::{Recorded, State, Status};

use crate::error::{Error, Result};

pub const DEFAULT_ROOT: &str = "/run/husk";
const STATE: &str = "state.json";
const TMP: &str = ".state.json.tmp";

pub struct Store {
    root: PathBuf,
}

/// An entry as a command finds it.
pub struct Found {
    pub id: String,
    pub dir: PathBuf,
    /// Its state, or why it could not be read (a truncated or hand-edited
    /// file, or none yet).
    pub state: Result<State>,
}

impl Found {
    /// Whether the process that looks after it is alive and has not
    /// recorded its end: the one named in the state, checked by its start
    /// time (no lock taken, so that a reader never gets in a command's
    /// way).
    pub fn supervised(&self) -> bool {
        match &self.state {
            // Its monitor may live on for a moment after recording the end.
            Ok(s) if s.status == Status::Stopped => false,
            Ok(s) if s.supervisor_start != 0 => {
                s.this_boot() && crate::process::kill_if_same(s.supervisor, s.supervisor_start, 0)
            }
            // Unreadable, or written by a runner that did not record the
            // start time: ask the lock. Without a state file there is no
            // monitor: the entry is being made or removed.
            _ => self.dir.join(STATE).exists() && is_locked(&self.dir),
        }
    }
}

impl Store {
    /// The store at `root`, made if missing.
    pub fn open(root: &Path) -> Result<Store> {
        match fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(root)
        {
            Ok(()) => Ok(Store {
                root: root.to_path_buf(),
            }),
            Err(e) => Err(Error::os(
                format_args!("create the state store {}", root.display()),
                &e,
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new entry for `id`, locked by this process; a name in use is an
    /// error. Nothing is written yet (`Entry::save`); the entry is removed
    /// when dropped, unless kept (`Entry::keep`).
    pub fn create(&self, state: State) -> Result<Entry> {
        let dir = self.root.join(&state.id);
        // SAFETY: getpid cannot fail.
        let hidden = self
            .root
            .join(format!(".new-{}-{}", state.id, unsafe { libc::getpid() }));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&hidden)
            .map_err(|e| Error::os(format_args!("create {}", hidden.display()), &e))?;
        let placed = lock_dir(&hidden, libc::LOCK_EX).and_then(|lock| {
            rename_noreplace(&hidden, &dir)?;
            Ok(lock)
        });
        match placed {
            Ok(lock) => Ok(Entry {
                dir,
                lock: Some(lock),
                saved: false,
                state,
            }),
            Err(e) => {
                let _ = fs::remove_dir(&hidden);
                Err(match e.raw_os_error() {
                    Some(libc::EEXIST | libc::ENOTEMPTY) => Error::new(format!(
                        "a container named {} exists already (in {})",
                        state.id,
                        self.root.display()
                    )),
                    _ => Error::os(format_args!("create {}", dir.display()), &e),
                })
            }
        }
    }

    /// The IDs in the store.
    pub fn ids(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// The entry `id`, or one line saying there is none.
    pub fn find(&self, id: &str) -> Result<Found> {
        check_id(id).map_err(|_| Error::new(format!("{id}: not a container ID")))?;
        let dir = self.root.join(id);
        if !dir.is_dir() {
            return Err(Error::new(format!(
                "{id}: no such container (in {})",
                self.root.display()
            )));
        }
        Ok(Found {
            id: id.to_string(),
            state: read(&dir),
            dir,
        })
    }

    /// Every entry, in the order of their IDs.
    pub fn list(&self) -> Vec<Found> {
        let mut ids = self.ids();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let dir = self.root.join(&id);
                Found {
                    state: read(&dir),
                    id,
                    dir,
                }
            })
            .collect()
    }

    /// Ends every container whose supervisor is gone: PID 1 killed (which
    /// ends its PID namespace), its cgroups removed; its entry removed, or
    /// kept as stopped for a detached container. Returns the IDs it ended.
    /// Entries held by a live process are left alone; so are stopped
    /// ones, whose supervisor cleaned up before it ended.
    pub fn sweep(&self, missing: &crate::kernel::Missing) -> Vec<String> {
        let mut ended = Vec::new();
        self.sweep_hidden();
        for id in self.ids() {
            let dir = self.root.join(&id);
            // Without taking a lock where there is nothing to do.
            if read(&dir).is_ok_and(|s| s.left_alone()) {
                continue;
            }
            let Ok(_lock) = lock_dir(&dir, libc::LOCK_EX | libc::LOCK_NB) else {
                continue; // looked after, or gone meanwhile
            };
            match read(&dir) {
                Ok(state) if state.left_alone() => continue,
                Ok(mut state) => {
                    end(&dir, &state, !missing.has(crate::kernel::Call::CgroupKill));
                    if state.stays() {
                        state.status = Status::Stopped;
                        state.exit = None;
                        if write_state(&dir, &state).is_err() {
                            remove_entry(&dir);
                        }
                    } else {
                        remove_entry(&dir);
                    }
                }
                // No state: its maker died before it wrote any, maybe
                // holding an address.
                Err(_) if !dir.join(STATE).exists() => {
                    remove_entry(&dir);
                    crate::net::attach::tidy(&self.root);
                }
                // One nobody can read (truncated, edited by hand): nothing
                // to end that we could find; `ps` shows it, `rm` removes it.
                Err(_) => continue,
            }
            ended.push(id);
        }
        ended
    }
}

impl Store {
    /// Entries whose maker died between making and placing them (a
    /// runner killed there): empty, hidden, named `.new-ID-PID` after a
    /// maker that is gone. (Not "held by nobody": a live maker has not
    /// locked its entry yet between its mkdir and its flock.)
    fn sweep_hidden(&self) {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(".new-")) else {
                continue;
            };
            let maker = rest
                .rsplit_once('-')
                .and_then(|(_, pid)| pid.parse::<i32>().ok());
            // SAFETY: kill(2) with signal 0 only checks that the PID exists.
            let gone = maker.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0);
            if gone && lock_dir(&e.path(), libc::LOCK_EX | libc::LOCK_NB).is_ok() {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
}

/// Opens the directory `dir` and flocks it with `op`. The lock is on the
/// directory's inode: one that was removed while we waited (by a command
/// that held it) is not the entry any more, and is refused with ENOENT.
pub fn lock_dir(dir: &Path, op: libc::c_int) -> std::io::Result<fs::File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    flock(&f, op)?;
    let here = f.metadata()?;
    match fs::metadata(dir) {
        Ok(now) if now.ino() == here.ino() && now.dev() == here.dev() => Ok(f),
        _ => Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

/// Whether some process holds the entry's lock.
fn is_locked(dir: &Path) -> bool {
    matches!(
        lock_dir(dir, libc::LOCK_SH | libc::LOCK_NB),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK)
    )
}

fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: renameat2 takes two C strings and flags. (By number: the
    // musl the static runner links has no wrapper.)
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes an entry's files (state, logs, socket) and directories (an
/// overlay's upper and work: the container's, so removed by fd without
/// following a symlink), then the entry.
pub fn remove_entry(dir: &Path) {
    if let Ok(files) = fs::read_dir(dir) {
        for f in files.flatten() {
            let _ = match f.file_type() {
                Ok(t) if t.is_dir() => {
                    crate::image::remove_tree(dir, &f.file_name().to_string_lossy())
                }
                _ => fs::remove_file(f.path()).map_err(|e| Error::os("remove", &e)),
            };
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Kills a container whose supervisor is gone (its entry `dir`), removes
/// its cgroups and gives back its network address.
pub fn end(dir: &Path, state: &State, kill_file: bool) {
    if state.pid > 0 && state.pid_start != 0 && state.this_boot() {
        crate::process::kill_if_same(state.pid, state.pid_start, libc::SIGKILL);
    }
    crate::cgroup::Cgroup::adopt(
        state.cgroups.clone(),
        state.cgroup_parents_made.clone(),
        kill_file,
    )
    .remove();
    if let Some(root) = dir.parent() {
        let ports = !state.ports.is_empty();
        crate::net::attach::leave(root, &state.id, &state.network, ports);
    }
}

pub fn read(dir: &Path) -> Result<State> {
    let text = fs::read_to_string(dir.join(STATE))
        .map_err(|e| Error::os(format_args!("read {}/{STATE}", dir.display()), &e))?;
    State::from_json(&text).map_err(|e| Error::new(format!("{}/{STATE}: {e}", dir.display())))
}

/// Replaces an entry's state.json atomically: written beside it, renamed.
pub fn write_state(dir: &Path, state: &State) -> Result<()> {
    write_file(dir, state, true)
}

fn write_file(dir: &Path, state: &State, atomic: bool) -> Result<()> {
    let path = dir.join(if atomic { TMP } else { STATE });
    let err =
        |what: &str, e: std::io::Error| Error::os(format_args!("{what} {}", path.display()), &e);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| err("create", e))?;
    f.write_all(state.to_json().as_bytes())
        .map_err(|e| err("write", e))?;
    if atomic {
        fs::rename(&path, dir.join(STATE)).map_err(|e| err("rename", e))?;
    }
    Ok(())
}

/// A container's entry, locked by this process while it lives.
pub struct Entry {
    dir: PathBuf,
    lock: Option<fs::File>,
    saved: bool,
    pub state: State,
}

impl Entry {
    /// Writes state.json: the first time straight into place (the entry
    /// is locked, and a reader that sees it half written says so), then
    /// atomically.
    pub fn save(&mut self) -> Result<()> {
        write_file(&self.dir, &self.state, self.saved)?;
        self.saved = true;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lets go of the entry without removing it: a detached container's,
    /// which `rm` removes.
    pub fn keep(mut self) {
        self.lock.take();
        std::mem::forget(self);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Removed while still locked: a sweeper never sees it half gone.
        remove_entry(&self.dir);
        self.lock.take();
    }
}

fn flock(f: &fs::File, op: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock on our own fd.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A new random container ID: 16 hex digits.
pub fn random_id() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom fills the buffer it is given. A short read is not
    // possible for 8 bytes; on failure the time and PID stand in.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A name a user gives (`--name`): letters, digits, `_`, `.` and `-`, not
/// starting with a punctuation mark, at most 64 bytes (it names a
/// directory and a cgroup).
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "--name {id}: expected 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests;

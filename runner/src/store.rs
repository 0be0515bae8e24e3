//! The state store: one directory per container under the store's root
//! (`--root`, default /run/husk), holding `state.json` (the OCI state
//! fields and what husk needs to find the container again). Each start
//! makes few changes to the store's filesystem (mkdir, one file, then
//! unlink and rmdir): /run is a tmpfs on most hosts, but not on all.
//!
//! The process that supervises a container holds an exclusive flock on its
//! directory for as long as it lives; the kernel drops it when that process
//! dies, however it dies. So any later husk command can tell a container
//! whose supervisor was killed (`kill -9`) from a live one, and ends it:
//! PID 1 (checked by its start time, so a reused PID is never taken for
//! it), then its cgroups, then its entry. That is what makes "no process
//! outlives a killed runner" hold even when PID 1 cleared its
//! parent-death signal.
//!
//! The root is made by root with mode 0700 and holds nothing a container
//! can reach, so names in it are used as they are. state.json is replaced
//! atomically (written beside it, then renamed): a reader sees the old
//! file or the new one, never half of one.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::json::{self, Value};

pub const DEFAULT_ROOT: &str = "/run/husk";
const STATE: &str = "state.json";
const TMP: &str = ".state.json.tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    const ALL: [Status; 4] = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Stopped,
    ];

    /// As the OCI runtime spec spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// What state.json holds: the OCI state, then husk's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// PID 1 as the host sees it; 0 before it exists.
    pub pid: i32,
    pub bundle: String,
    /// RFC 3339, UTC.
    pub created: String,
    /// In the order given (a map in JSON; a list here, which is all husk
    /// needs and much smaller in the binary than a sorted map).
    pub annotations: Vec<(String, String)>,
    /// PID 1's start time (/proc/PID/stat field 22): a PID the kernel gave
    /// to another process since is never mistaken for the container.
    pub pid_start: u64,
    /// The container's cgroup directories, one per hierarchy, then the
    /// parents made for them (removed after, deepest first).
    pub cgroups: Vec<PathBuf>,
    pub cgroup_parents_made: Vec<PathBuf>,
    /// The process whose flock on `lock` says the container is looked
    /// after.
    pub supervisor: i32,
}

impl State {
    pub fn to_json(&self) -> String {
        let s = |x: &str| Value::string(x);
        let paths =
            |ps: &[PathBuf]| Value::Array(ps.iter().map(|p| s(&p.display().to_string())).collect());
        Value::Object(vec![
            ("ociVersion".into(), s(&self.oci_version)),
            ("id".into(), s(&self.id)),
            ("status".into(), s(self.status.name())),
            ("pid".into(), Value::number(self.pid)),
            ("bundle".into(), s(&self.bundle)),
            ("created".into(), s(&self.created)),
            (
                "annotations".into(),
                Value::Object(
                    self.annotations
                        .iter()
                        .map(|(k, v)| (k.clone(), s(v)))
                        .collect(),
                ),
            ),
            ("pidStart".into(), Value::number(self.pid_start)),
            ("cgroups".into(), paths(&self.cgroups)),
            ("cgroupParentsMade".into(), paths(&self.cgroup_parents_made)),
            ("supervisor".into(), Value::number(self.supervisor)),
        ])
        .to_json()
    }

    /// Reads a state file; what is missing or malformed is an error that
    /// says which field.
    pub fn from_json(text: &str) -> std::result::Result<State, String> {
        let v = json::parse(text)?;
        let field = |k: &str| v.get(k).ok_or_else(|| format!("no \"{k}\""));
        let string = |k: &str| {
            field(k)?
                .as_str()
                .map(String::from)
                .ok_or_else(|| format!("\"{k}\" is not a string"))
        };
        let paths = |k: &str| -> std::result::Result<Vec<PathBuf>, String> {
            match v.get(k) {
                None => Ok(Vec::new()),
                Some(a) => a
                    .as_array()
                    .ok_or_else(|| format!("\"{k}\" is not a list"))?
                    .iter()
                    .map(|p| p.as_str().map(PathBuf::from))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("\"{k}\" holds a non-string")),
            }
        };
        let status = string("status")?;
        let number = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        Ok(State {
            oci_version: string("ociVersion")?,
            id: string("id")?,
            status: Status::ALL
                .into_iter()
                .find(|s| s.name() == status)
                .ok_or_else(|| format!("unknown status {status:?}"))?,
            pid: number("pid") as i32,
            bundle: string("bundle")?,
            created: string("created")?,
            annotations: v
                .get("annotations")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            pid_start: v.get("pidStart").and_then(Value::as_u64).unwrap_or(0),
            cgroups: paths("cgroups")?,
            cgroup_parents_made: paths("cgroupParentsMade")?,
            supervisor: number("supervisor") as i32,
        })
    }

    pub fn new(id: &str, bundle: &Path) -> State {
        State {
            oci_version: "1.2.0".into(),
            id: id.into(),
            status: Status::Creating,
            pid: 0,
            bundle: bundle.display().to_string(),
            created: rfc3339(std::time::SystemTime::now()),
            annotations: Vec::new(),
            pid_start: 0,
            cgroups: Vec::new(),
            cgroup_parents_made: Vec::new(),
            // SAFETY: getpid cannot fail.
            supervisor: unsafe { libc::getpid() },
        }
    }
}

pub struct Store {
    root: PathBuf,
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
    /// when dropped.
    pub fn create(&self, state: State) -> Result<Entry> {
        let dir = self.root.join(&state.id);
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            return Err(match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::new(format!(
                    "a container named {} exists already (in {})",
                    state.id,
                    self.root.display()
                )),
                _ => Error::os(format_args!("create {}", dir.display()), &e),
            });
        }
        // The lock is the directory itself: nobody else can hold it yet,
        // as it was just made.
        let lock = match lock_dir(&dir, libc::LOCK_EX) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return Err(Error::os(format_args!("lock {}", dir.display()), &e));
            }
        };
        Ok(Entry {
            dir,
            lock: Some(lock),
            saved: false,
            state,
        })
    }

    /// The IDs in the store.
    pub fn ids(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Ends every container whose supervisor is gone: PID 1 killed (which
    /// ends its PID namespace), its cgroups removed, its entry removed.
    /// Returns the IDs it ended. Entries held by a live process are left
    /// alone; so are entries being made right now (their maker holds the
    /// lock from before anything is in them).
    pub fn sweep(&self, missing: &crate::kernel::Missing) -> Vec<String> {
        let mut ended = Vec::new();
        for id in self.ids() {
            let dir = self.root.join(&id);
            let Ok(_lock) = lock_dir(&dir, libc::LOCK_EX | libc::LOCK_NB) else {
                continue; // looked after, or gone meanwhile
            };
            // No state: its maker died before it made anything.
            if let Ok(state) = read_state(&dir) {
                end(&state, !missing.has(crate::kernel::Call::CgroupKill));
            }
            remove_entry(&dir);
            ended.push(id);
        }
        ended
    }
}

/// Opens the directory `dir` and flocks it with `op`.
fn lock_dir(dir: &Path, op: libc::c_int) -> std::io::Result<fs::File> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    flock(&f, op)?;
    Ok(f)
}

/// Removes an entry's files, then the entry.
fn remove_entry(dir: &Path) {
    for name in [STATE, TMP] {
        let _ = fs::remove_file(dir.join(name));
    }
    let _ = fs::remove_dir(dir);
}

/// Kills a container whose supervisor is gone and removes its cgroups.
fn end(state: &State, kill_file: bool) {
    if state.pid > 0 && state.pid_start != 0 {
        crate::process::kill_if_same(state.pid, state.pid_start, libc::SIGKILL);
    }
    crate::cgroup::Cgroup::adopt(
        state.cgroups.clone(),
        state.cgroup_parents_made.clone(),
        kill_file,
    )
    .remove();
}

fn read_state(dir: &Path) -> Result<State> {
    let text = fs::read_to_string(dir.join(STATE))
        .map_err(|e| Error::os(format_args!("read {}/{STATE}", dir.display()), &e))?;
    State::from_json(&text).map_err(|e| Error::new(format!("{}/{STATE}: {e}", dir.display())))
}

/// A container's entry, locked by this process while it lives.
pub struct Entry {
    dir: PathBuf,
    lock: Option<fs::File>,
    saved: bool,
    pub state: State,
}

impl Entry {
    /// Writes state.json: the first time straight into place (a reader
    /// that could see it half written is a sweeper, and the entry is
    /// locked), then atomically, written beside it and renamed.
    pub fn save(&mut self) -> Result<()> {
        let (path, err_path) = if self.saved {
            (self.dir.join(TMP), self.dir.join(TMP))
        } else {
            (self.dir.join(STATE), self.dir.join(STATE))
        };
        let err = |what: &str, e: std::io::Error| {
            Error::os(format_args!("{what} {}", err_path.display()), &e)
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| err("create", e))?;
        f.write_all(self.state.to_json().as_bytes())
            .map_err(|e| err("write", e))?;
        if self.saved {
            fs::rename(&path, self.dir.join(STATE)).map_err(|e| err("rename", e))?;
        }
        self.saved = true;
        Ok(())
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

/// "2026-11-23T21:07:47Z".
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> Store {
        let root = std::env::temp_dir().join(format!("husk-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        Store::open(&root).unwrap()
    }

    #[test]
    fn entries_are_made_once_saved_atomically_and_removed() {
        let store = temp_store("entries");
        let mut entry = store
            .create(State::new("box", Path::new("/srv/box")))
            .unwrap();
        assert!(read_state(&store.root.join("box")).is_err(), "nothing yet");
        entry.save().unwrap();
        entry.state.pid = 7;
        entry.save().unwrap();
        let e = store
            .create(State::new("box", Path::new("/srv/box")))
            .err()
            .unwrap();
        assert!(e.message.contains("a container named box exists"), "{e}");
        let read = read_state(&store.root.join("box")).unwrap();
        assert_eq!(read, entry.state);
        assert_eq!(store.ids(), ["box"]);
        // Held by a live process (this one): the sweep leaves it.
        assert!(store.sweep(&crate::kernel::Missing::default()).is_empty());
        drop(entry);
        assert!(store.ids().is_empty());
        let _ = fs::remove_dir_all(store.root());
    }

    #[test]
    fn the_sweep_ends_what_nobody_holds() {
        let store = temp_store("sweep");
        // As after kill -9 of its supervisor: the entry is there, and its
        // lock is held by nobody.
        let dir = store.root.join("gone");
        fs::create_dir(&dir).unwrap();
        let state = State::new("gone", Path::new("/x")).to_json();
        fs::write(dir.join(STATE), state).unwrap();
        // A truncated state file does not stop the sweep either.
        let dir = store.root.join("torn");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(STATE), "{\"ociVersion\": \"1.").unwrap();
        // And one whose maker died before writing anything.
        fs::create_dir(store.root.join("bare")).unwrap();
        let mut ended = store.sweep(&crate::kernel::Missing::default());
        ended.sort();
        assert_eq!(ended, ["bare", "gone", "torn"]);
        assert!(store.ids().is_empty());
        let _ = fs::remove_dir_all(store.root());
    }

    #[test]
    fn state_files_round_trip_and_bad_ones_say_why() {
        let mut st = State::new("web", Path::new("/srv/web"));
        st.pid = 42;
        st.pid_start = 123_456_789_012;
        st.cgroups = vec!["/sys/fs/cgroup/husk-web".into()];
        st.annotations.push(("a".into(), "b \"c\"".into()));
        st.status = Status::Running;
        assert_eq!(State::from_json(&st.to_json()).unwrap(), st);
        let e = State::from_json(r#"{"ociVersion":"1","id":"x","status":"zombie"}"#);
        assert!(e.unwrap_err().contains("zombie"));
        assert!(State::from_json("{").is_err());
    }

    #[test]
    fn ids_and_times() {
        assert_eq!(random_id().len(), 16);
        assert_ne!(random_id(), random_id());
        for ok in ["box", "web-1", "a.b_c", "0"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65), ".."] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_468_067);
        assert_eq!(rfc3339(t), "2026-11-23T21:07:47Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}

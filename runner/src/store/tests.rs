//! The store's entries: made once, locked, swept, kept or removed.

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
    assert!(read(&store.root.join("box")).is_err(), "nothing yet");
    assert!(is_locked(entry.dir()));
    entry.save().unwrap();
    entry.state.pid = 7;
    entry.save().unwrap();
    let e = store
        .create(State::new("box", Path::new("/srv/box")))
        .err()
        .unwrap();
    assert!(e.message.contains("a container named box exists"), "{e}");
    let read = read(&store.root.join("box")).unwrap();
    assert_eq!(read, entry.state);
    assert_eq!(store.ids(), ["box"], "no hidden entry is left");
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
    // A truncated state file does not stop the sweep.
    let dir = store.root.join("torn");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(STATE), "{\"ociVersion\": \"1.").unwrap();
    // And one whose maker died before writing anything, and one before
    // placing it.
    fs::create_dir(store.root.join("bare")).unwrap();
    fs::create_dir(store.root.join(".new-hidden-2147483646")).unwrap();
    // One being made right now, by a live process (this one) that has
    // not locked it yet, stays.
    let making = store.root.join(format!(".new-x-{}", std::process::id()));
    fs::create_dir(&making).unwrap();
    // A detached container stays, stopped, its status unknown, with
    // its log.
    let dir = store.root.join("daemon");
    fs::create_dir(&dir).unwrap();
    let mut st = State::new("daemon", Path::new("/x"));
    st.detached = true;
    st.status = Status::Running;
    fs::write(dir.join(STATE), st.to_json()).unwrap();
    fs::write(dir.join("log"), "").unwrap();
    let mut ended = store.sweep(&crate::kernel::Missing::default());
    ended.sort();
    assert_eq!(ended, ["bare", "daemon", "gone"]);
    let mut ids = store.ids();
    ids.sort();
    assert_eq!(ids, ["daemon", "torn"], "the torn one stays, for ps and rm");
    assert!(!store.root.join(".new-hidden-2147483646").exists());
    assert!(making.exists());
    fs::remove_dir(&making).unwrap();
    remove_entry(&store.root.join("torn"));
    let found = store.find("daemon").unwrap();
    let st = found.state.unwrap();
    assert_eq!((st.status, st.exit), (Status::Stopped, None));
    assert!(st.describe().contains("its monitor was killed"));
    // Stopped: the next sweep has nothing to do.
    assert!(store.sweep(&crate::kernel::Missing::default()).is_empty());
    remove_entry(&found.dir);
    assert!(store.ids().is_empty());
    let e = store.find("daemon").err().unwrap();
    assert!(e.message.starts_with("daemon: no such container"), "{e}");
    let _ = fs::remove_dir_all(store.root());
}

#[test]
fn an_entry_from_another_boot_kills_nothing() {
    let store = temp_store("boot");
    // As after a restart with a /run that is not a tmpfs: a running
    // container whose PIDs are now this test's own.
    let dir = store.root.join("before");
    fs::create_dir(&dir).unwrap();
    let me = std::process::id() as i32;
    let mut st = State::new("before", Path::new("/x"));
    st.status = Status::Running;
    st.detached = true;
    (st.pid, st.supervisor) = (me, me);
    st.pid_start = crate::process::start_time(me).unwrap();
    st.supervisor_start = st.pid_start;
    st.boot_id = "another boot".into();
    fs::write(dir.join(STATE), st.to_json()).unwrap();
    let found = store.find("before").unwrap();
    assert!(!found.supervised(), "taken for live");
    // Swept as a container whose monitor is gone; SIGKILL to the PID
    // would have ended this test.
    assert_eq!(store.sweep(&crate::kernel::Missing::default()), ["before"]);
    let st = store.find("before").unwrap().state.unwrap();
    assert_eq!((st.status, st.exit), (Status::Stopped, None));
    let _ = fs::remove_dir_all(store.root());
}

#[test]
fn a_lock_on_a_removed_entry_is_refused() {
    let store = temp_store("removed");
    let dir = store.root.join("x");
    fs::create_dir(&dir).unwrap();
    let held = lock_dir(&dir, libc::LOCK_EX).unwrap();
    remove_entry(&dir);
    drop(held);
    fs::create_dir(&dir).unwrap();
    // The name is back, but the lock taken on the old one was lost
    // with it; a new lock is on the new directory.
    assert!(lock_dir(&dir, libc::LOCK_EX).is_ok());
    let _ = fs::remove_dir_all(store.root());
}

#[test]
fn ids() {
    assert_eq!(random_id().len(), 16);
    assert_ne!(random_id(), random_id());
    for ok in ["box", "web-1", "a.b_c", "0"] {
        assert!(check_id(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65), ".."] {
        assert!(check_id(bad).is_err(), "{bad}");
    }
}

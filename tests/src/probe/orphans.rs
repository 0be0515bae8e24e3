//! `husk-probe orphans`: leaves an orphan and counts the zombies after.
//! A child makes a grandchild and exits at once; the grandchild, now an
//! orphan, ends 100 ms later and goes to the namespace's PID 1, which
//! must reap it. This process reaps only its own child and never waits
//! for anything else: run as PID 1 itself, the orphan stays a zombie.

use std::fs;
use std::time::Duration;

use crate::fact;

pub fn main(_: &[String]) -> Result<(), String> {
    // SAFETY: fork in a single-threaded program; the children only sleep
    // and exit.
    unsafe {
        match libc::fork() {
            -1 => return Err("fork failed".into()),
            0 => {
                if libc::fork() == 0 {
                    std::thread::sleep(Duration::from_millis(100));
                }
                libc::_exit(0);
            }
            child => {
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: getpid cannot fail.
    fact("pid", unsafe { libc::getpid() });
    let zombies = fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .count();
    fact("zombies", zombies);
    Ok(())
}

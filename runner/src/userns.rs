//! A container's user namespace: its ID mappings, written by the runner for
//! its child, which waits for them before it execs the shim (spawn.rs).
//!
//! The child must be root in the new namespace before that exec: the
//! kernel gives a program capabilities in its user namespace only when its
//! effective uid is that namespace's 0, and the child's uid, the host's 0,
//! is not mapped there. So it waits for the maps, then becomes uid and gid
//! 0 of the namespace (the host ids mapped to them), then execs.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// One line of uid_map or gid_map: `size` ids from `container` in the
/// namespace are `host` and up outside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdMaps {
    pub uid: Vec<Range>,
    pub gid: Vec<Range>,
}

impl IdMaps {
    /// Checks what the kernel would refuse, with the field to blame; and
    /// that the namespace has a root (the shim runs as it, see above).
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, ranges) in [("uidMappings", &self.uid), ("gidMappings", &self.gid)] {
            if ranges.is_empty() || ranges.len() > 340 {
                return Err(format!("{name}: expected 1 to 340 ranges"));
            }
            if ranges.iter().any(|r| {
                r.size == 0
                    || r.container.checked_add(r.size).is_none()
                    || r.host.checked_add(r.size).is_none()
            }) {
                return Err(format!("{name}: a range that is empty or runs past 2^32"));
            }
            if !ranges.iter().any(|r| r.container == 0) {
                return Err(format!(
                    "{name}: the container's 0 must be mapped (husk's shim runs as it)"
                ));
            }
        }
        Ok(())
    }
}

fn text(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

/// Writes the child's maps, through /proc/PID: the kernel has no other
/// way to set them. The child is ours and not reaped, so the PID is its.
/// Each file takes its whole text in one write.
pub fn write(pid: i32, maps: &IdMaps) -> Result<()> {
    let dir = format!("/proc/{pid}");
    let c = std::ffi::CString::new(dir.clone()).unwrap_or_default();
    // SAFETY: open with a C string that outlives the call; the fd is ours.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::os(
            format_args!("open {dir}"),
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(fd) };
    for (file, ranges) in [(c"uid_map", &maps.uid), (c"gid_map", &maps.gid)] {
        let name = file.to_string_lossy();
        // SAFETY: openat on our directory fd with a C string literal.
        let fd = unsafe {
            libc::openat(
                dir_fd.as_raw_fd(),
                file.as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::os(
                format_args!("open {dir}/{name}"),
                &std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: as above.
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.write_all(text(ranges).as_bytes())
            .map_err(|e| Error::os(format_args!("write {dir}/{name}"), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_need_a_root_and_sane_ranges() {
        let r = |container, host, size| Range {
            container,
            host,
            size,
        };
        let ok = IdMaps {
            uid: vec![r(0, 1000, 2000)],
            gid: vec![r(0, 1000, 3000), r(5000, 9000, 1)],
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(text(&ok.gid), "0 1000 3000\n5000 9000 1\n");
        let no_root = IdMaps {
            uid: vec![r(1, 1000, 10)],
            gid: ok.gid.clone(),
        };
        assert!(no_root
            .check()
            .unwrap_err()
            .contains("uidMappings: the container's 0"));
        let empty = IdMaps {
            uid: ok.uid.clone(),
            gid: vec![r(0, 1000, 0)],
        };
        assert!(empty.check().unwrap_err().contains("gidMappings"));
        let past = IdMaps {
            uid: vec![r(0, u32::MAX, 2)],
            gid: ok.gid.clone(),
        };
        assert!(past.check().is_err());
    }
}

//! `husk-probe nodes PATH...`: each file's type, device numbers, mode and
//! owner as stat says, and whether it opens for reading and writing.
//! `husk-probe propagation`: each mount point with its peer-group fields.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::{errno_of, fact};

pub fn nodes(paths: &[String]) -> Result<(), String> {
    for path in paths {
        let m = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                fact(&format!("node.{path}"), format!("missing ({e})"));
                continue;
            }
        };
        let t = m.file_type();
        let kind = if t.is_char_device() {
            "c"
        } else if t.is_block_device() {
            "b"
        } else if t.is_fifo() {
            "p"
        } else {
            "other"
        };
        let rdev = m.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let p = CString::new(path.as_str()).map_err(|e| e.to_string())?;
        // Non-blocking: a fifo without a writer would wait.
        // SAFETY: open and close with a C string that outlives the call.
        let opened = unsafe {
            let fd = libc::open(
                p.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            );
            let e = errno_of(fd as libc::c_long);
            if fd >= 0 {
                libc::close(fd);
            }
            e
        };
        fact(
            &format!("node.{path}"),
            format!(
                "{kind} {major}:{minor} {:o} {}:{} open={opened}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ),
        );
    }
    Ok(())
}

pub fn propagation(_: &[String]) -> Result<(), String> {
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(end) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let optional = fields.get(6..end).unwrap_or_default().join(",");
        let point = fields.get(4).copied().unwrap_or("?");
        let optional = if optional.is_empty() {
            "private"
        } else {
            &optional
        };
        fact("propagation", format!("{point} {optional}"));
    }
    Ok(())
}

//! Errors the runner reports: one line, and the exit status that goes with it.

use std::fmt;
use std::io;

/// Docker's statuses for failures of the runtime itself, which users know.
pub const RUNTIME: i32 = 125;
pub const NOT_EXECUTABLE: i32 = 126;
pub const NOT_FOUND: i32 = 127;

#[derive(Debug)]
pub struct Error {
    pub message: String,
    pub status: i32,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            status: RUNTIME,
        }
    }

    /// `what` failed with the OS error `err`: "what: EPERM (Operation not permitted)".
    pub fn os(what: impl fmt::Display, err: &io::Error) -> Error {
        Error::new(format!("{what}: {}", describe(err)))
    }

    /// The same error with `prefix` before its message.
    pub fn prefixed(mut self, prefix: &str) -> Error {
        self.message.insert_str(0, prefix);
        self
    }

    pub fn with_status(mut self, status: i32) -> Error {
        self.status = status;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// "EPERM (Operation not permitted)", or the plain text for errors that
/// did not come from the kernel.
pub fn describe(err: &io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    match name(code) {
        Some(name) => format!("{name} ({text})"),
        None => format!("errno {code} ({text})"),
    }
}

pub fn describe_errno(code: i32) -> String {
    describe(&io::Error::from_raw_os_error(code))
}

fn name(code: i32) -> Option<&'static str> {
    use libc::*;
    Some(match code {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        ENOEXEC => "ENOEXEC",
        EBADF => "EBADF",
        ECHILD => "ECHILD",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EXDEV => "EXDEV",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ETXTBSY => "ETXTBSY",
        ENOSPC => "ENOSPC",
        EROFS => "EROFS",
        EMLINK => "EMLINK",
        EPIPE => "EPIPE",
        ERANGE => "ERANGE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ENOTEMPTY => "ENOTEMPTY",
        ELOOP => "ELOOP",
        ENODATA => "ENODATA",
        EOPNOTSUPP => "EOPNOTSUPP",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_errno_and_its_text() {
        assert_eq!(
            describe_errno(libc::EPERM),
            "EPERM (Operation not permitted)"
        );
        assert_eq!(
            Error::os(
                "mount proc on /proc",
                &io::Error::from_raw_os_error(libc::ENOENT)
            )
            .message,
            "mount proc on /proc: ENOENT (No such file or directory)"
        );
    }
}

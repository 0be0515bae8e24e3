//! A terminal of the container's own: when the runner runs on a terminal,
//! the container gets a new pseudo-terminal as its controlling terminal
//! (so ^C, ^Z and job control work inside), and the runner relays bytes
//! between the two with the user's terminal in raw mode. The container
//! never holds the caller's terminal, so it cannot push keystrokes into it
//! (TIOCSTI).

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

/// Whether to give the container a terminal: `--tty` always, `--no-tty`
/// never, otherwise when stdin and stdout are terminals.
pub fn wanted(always: bool, never: bool) -> bool {
    // SAFETY: isatty takes an fd number.
    always || (!never && unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 })
}

pub struct Pty {
    pub master: OwnedFd,
    /// Taken by the runner for the child, then closed.
    pub slave: Option<OwnedFd>,
    /// The slave's path, e.g. /dev/pts/3, bound on the container's /dev/console.
    pub slave_path: String,
}

impl Pty {
    pub fn open() -> Result<Pty> {
        let err = |what: &str| Error::os(what, &std::io::Error::last_os_error());
        // SAFETY: posix_openpt returns a new fd that we then own.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if m < 0 {
            return Err(err("open a pseudo-terminal"));
        }
        // SAFETY: as above.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        let mut name = [0 as libc::c_char; 64];
        // SAFETY: plain calls on our fd; ptsname_r fills `name`.
        unsafe {
            if libc::grantpt(m) != 0
                || libc::unlockpt(m) != 0
                || libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0
            {
                return Err(err("set up the pseudo-terminal"));
            }
        }
        // SAFETY: ptsname_r wrote a NUL-terminated string.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) };
        // SAFETY: opening the slave gives a new fd that we then own.
        let s = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if s < 0 {
            return Err(err("open the pseudo-terminal's slave"));
        }
        let pty = Pty {
            master: crate::fds::held(master).map_err(|e| Error::os("move the pty", &e))?,
            // SAFETY: as above.
            slave: Some(
                crate::fds::held(unsafe { OwnedFd::from_raw_fd(s) })
                    .map_err(|e| Error::os("move the pty", &e))?,
            ),
            slave_path: path.to_string_lossy().into_owned(),
        };
        pty.resize();
        Ok(pty)
    }

    /// Gives the container's terminal the size of the user's.
    pub fn resize(&self) {
        // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads one.
        unsafe {
            let mut ws = MaybeUninit::<libc::winsize>::zeroed().assume_init();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }
}

/// The user's terminal in raw mode while it lives; restored when dropped.
pub struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        // SAFETY: tcgetattr fills a termios; cfmakeraw edits our copy.
        unsafe {
            let mut t = MaybeUninit::<libc::termios>::zeroed().assume_init();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawMode { saved: None };
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawMode { saved: Some(saved) }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restoring the settings read in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSADRAIN, t) };
        }
    }
}

/// Copies what `from` has to `to`; false at end of input or on an error
/// (a pty master reads EIO once the container side is closed).
pub fn relay(from: RawFd, to: RawFd) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: reads into and writes from our own buffer.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
    }
    let mut done = 0;
    while done < n as usize {
        // SAFETY: as above.
        let w = unsafe { libc::write(to, buf[done..].as_ptr().cast(), n as usize - done) };
        if w <= 0 {
            return false;
        }
        done += w as usize;
    }
    true
}

//! A terminal of the container's own: when the runner runs on a terminal,
//! the container gets a new pseudo-terminal as its controlling terminal
//! (so ^C, ^Z and job control work inside), and the runner relays bytes
//! between the two with the user's terminal in raw mode. The container
//! never holds the caller's terminal, so it cannot push keystrokes into it
//! (TIOCSTI).

use std::ffi::CString;
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
    /// OCI's console socket: the master goes to the caller (conmon,
    /// containerd's shim) over the unix socket at `path`, one message with
    /// the slave's path as payload and the fd as SCM_RIGHTS, and the
    /// runner keeps no copy.
    pub fn send_master(self, path: &std::path::Path) -> Result<()> {
        use std::os::unix::net::UnixStream;
        let err =
            |e: std::io::Error| Error::os(format_args!("console socket {}", path.display()), &e);
        let sock = UnixStream::connect(path).map_err(err)?;
        let payload = self.slave_path.as_bytes();
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        // SAFETY: CMSG_SPACE is arithmetic on a constant size.
        const SPACE: usize = unsafe { libc::CMSG_SPACE(4) } as usize;
        let mut control = [0u8; SPACE];
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive
        // the sendmsg call, and the control buffer holds one int's cmsg.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = SPACE as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), self.master.as_raw_fd());
            if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
                return Err(err(std::io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// A pseudo-terminal of the container's own devpts instance (under
    /// its root `root`, an fd), so that inside it the slave is the
    /// /dev/pts/N that ttyname finds: for `exec`. Each component is opened
    /// without following symlinks, and the node must be devpts's ptmx.
    pub fn open_in(root: RawFd) -> Result<Pty> {
        let err = |what: &str| Error::os(what, &std::io::Error::last_os_error());
        let mut dir: Option<OwnedFd> = None;
        for (name, flags) in [
            (c"dev", libc::O_PATH | libc::O_DIRECTORY),
            (c"pts", libc::O_PATH | libc::O_DIRECTORY),
            (c"ptmx", libc::O_RDWR | libc::O_NOCTTY),
        ] {
            let at = dir.as_ref().map_or(root, |d| d.as_raw_fd());
            // SAFETY: openat on fds we hold and a C string; the fd is ours.
            let fd = unsafe {
                libc::openat(
                    at,
                    name.as_ptr(),
                    flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(err("open the container's /dev/pts/ptmx"));
            }
            // SAFETY: a fresh fd that nothing else owns.
            dir = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let master = dir.expect("three opens");
        // SAFETY: fstat and fstatfs fill structs we own.
        let (st, sfs) = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            let mut sfs: libc::statfs = std::mem::zeroed();
            libc::fstat(master.as_raw_fd(), &mut st);
            libc::fstatfs(master.as_raw_fd(), &mut sfs);
            (st, sfs)
        };
        const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
        // f_type is an i64 here, a u32 or i32 on other architectures.
        #[allow(clippy::unnecessary_cast)]
        let f_type = sfs.f_type as i64;
        if st.st_mode & libc::S_IFMT != libc::S_IFCHR
            || libc::major(st.st_rdev) != 5
            || libc::minor(st.st_rdev) != 2
            || f_type != DEVPTS_SUPER_MAGIC
        {
            return Err(Error::new(
                "the container's /dev/pts/ptmx is not devpts's ptmx",
            ));
        }
        let mut n: libc::c_int = 0;
        let mut unlock: libc::c_int = 0;
        // SAFETY: ioctls on our fd; TIOCGPTPEER (4.13) opens the slave
        // from the master, with no path to look up in the container.
        let slave = unsafe {
            if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) != 0
                || libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) != 0
            {
                return Err(err("set up the pseudo-terminal"));
            }
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(err("open the pseudo-terminal's slave (TIOCGPTPEER)"));
        }
        // SAFETY: a fresh fd that nothing else owns.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        Ok(Pty {
            master: crate::fds::held(master).map_err(|e| Error::os("move the master's fd", &e))?,
            slave: Some(slave),
            slave_path: format!("/dev/pts/{n}"),
        })
    }

    pub fn open() -> Result<Pty> {
        let err = |what: &str| Error::os(what, &std::io::Error::last_os_error());
        // SAFETY: posix_openpt returns a new fd that we then own.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if m < 0 {
            return Err(err("open a pseudo-terminal"));
        }
        // SAFETY: as above.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        // The slave's number, unlocked (what grantpt/unlockpt/ptsname do,
        // without musl's printf behind ptsname).
        let mut n: libc::c_int = 0;
        let mut unlock: libc::c_int = 0;
        // SAFETY: ioctls on our fd that read or write one int we own.
        unsafe {
            if libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) != 0
                || libc::ioctl(m, libc::TIOCGPTN, &mut n) != 0
            {
                return Err(err("set up the pseudo-terminal"));
            }
        }
        let path = CString::new(format!("/dev/pts/{n}")).expect("no NUL in a number");
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

/// What a chunk of typed input held.
#[derive(Default)]
pub struct Input {
    /// false at the end of the input, or on an error.
    pub open: bool,
    /// A signal the container's line discipline makes of it (^C, ^\).
    pub signal: Option<i32>,
    /// Its last byte.
    pub last: Option<u8>,
}

impl Pty {
    /// The container's terminal settings: on Linux, the master answers
    /// TCGETS with its slave's.
    fn termios(&self) -> Option<libc::termios> {
        // SAFETY: tcgetattr fills a termios.
        unsafe {
            let mut t = MaybeUninit::<libc::termios>::zeroed().assume_init();
            (libc::tcgetattr(self.master.as_raw_fd(), &mut t) == 0).then_some(t)
        }
    }

    /// Copies typed input from `from` to the container's terminal, and
    /// says what the terminal will make of it.
    pub fn relay_input(&self, from: RawFd) -> Input {
        let mut buf = [0u8; 4096];
        // SAFETY: reads into our own buffer.
        let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            let again =
                n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
            return Input {
                open: again,
                ..Input::default()
            };
        }
        let typed = &buf[..n as usize];
        Input {
            open: write_all(self.master.as_raw_fd(), typed),
            signal: self.termios().and_then(|t| signal_of(&t, typed)),
            last: typed.last().copied(),
        }
    }

    /// Tells the program at the other end that input has ended, as ^D on
    /// a terminal does in canonical mode (twice after a partial line: the
    /// first ends the line). A program in raw mode reads bytes, not lines,
    /// and gets none.
    pub fn send_eof(&self, mid_line: bool) {
        let Some(t) = self.termios().filter(|t| t.c_lflag & libc::ICANON != 0) else {
            return;
        };
        let eof = t.c_cc[libc::VEOF];
        if eof != 0 {
            let both = [eof, eof];
            write_all(self.master.as_raw_fd(), &both[..1 + usize::from(mid_line)]);
        }
    }

    /// The terminal's foreground process group, as this PID namespace
    /// numbers it.
    pub fn foreground_group(&self) -> Option<i32> {
        // SAFETY: TIOCGPGRP on the master reads the slave's.
        let g = unsafe { libc::tcgetpgrp(self.master.as_raw_fd()) };
        (g > 0).then_some(g)
    }
}

/// The signal the line discipline sends for `typed` under `t`, if any.
fn signal_of(t: &libc::termios, typed: &[u8]) -> Option<i32> {
    if t.c_lflag & libc::ISIG == 0 {
        return None;
    }
    let key = |i: usize| Some(t.c_cc[i]).filter(|&c| c != 0);
    let (intr, quit) = (key(libc::VINTR), key(libc::VQUIT));
    typed.iter().rev().find_map(|&b| {
        if Some(b) == intr {
            Some(libc::SIGINT)
        } else if Some(b) == quit {
            Some(libc::SIGQUIT)
        } else {
            None
        }
    })
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
    write_all(to, &buf[..n as usize])
}

/// Writes all of `bytes` to `to`; false on an error.
pub fn write_all(to: RawFd, bytes: &[u8]) -> bool {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: writes from our own buffer.
        let w = unsafe { libc::write(to, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if w < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if w <= 0 {
            return false;
        }
        done += w as usize;
    }
    true
}

//! A detached container's monitor: the one process that stays beside it.
//! It is the runner that started the container, gone into a session of
//! its own (detach.rs), and it does what a foreground runner does —
//! reaps PID 1, passes on the signals `kill` and `stop` send it, keeps the
//! entry's lock — and what nobody is there to do: it writes the
//! container's output to its log (log.rs), and with a terminal it keeps
//! the pty's master and relays it to whoever `attach`es, through a unix
//! socket in the entry.
//!
//! Attach's messages to the monitor are framed: a kind byte, a length
//! byte, that many bytes. `i`: input to type; `w`: a window size (rows,
//! columns, two little-endian u16s). The monitor sends back the
//! terminal's output as it comes.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use crate::log::{Stream, Writer};
use crate::run::Started;
use crate::signals::{self, Exit};

pub const SOCKET: &str = "attach.sock";
pub const INPUT: u8 = b'i';
pub const WINDOW: u8 = b'w';

/// Where the container's output comes from: the pty's master, or the
/// read ends of its stdout and stderr pipes.
pub struct Output {
    pub streams: Vec<(OwnedFd, Stream)>,
}

struct Client {
    sock: UnixStream,
    /// A message read in part.
    pending: Vec<u8>,
}

/// Supervises the container until PID 1 ends; returns how it ended.
pub fn run(
    started: &Started,
    output: Output,
    log: &mut Writer,
    listener: Option<UnixListener>,
) -> Exit {
    let pid = started.pid;
    let master = started.pty.as_ref().map(|p| p.master.as_raw_fd());
    let mut streams: Vec<(RawFd, Stream, bool)> = output
        .streams
        .iter()
        .map(|(fd, s)| (fd.as_raw_fd(), *s, true))
        .collect();
    if let Some(m) = master {
        streams.push((m, Stream::Stdout, true));
    }
    let mut clients: Vec<Client> = Vec::new();
    let mut killed_for = None;
    loop {
        if let Some(exit) = signals::reap(pid, killed_for) {
            for (fd, stream, open) in &mut streams {
                if *open {
                    drain(*fd, *stream, log, &mut clients);
                }
                log.close(*stream);
            }
            return exit;
        }
        let mut fds = vec![poll_in(started.mask.fd())];
        fds.extend(
            streams
                .iter()
                .map(|(fd, _, open)| poll_in(if *open { *fd } else { -1 })),
        );
        let listening = listener.as_ref().map_or(-1, |l| l.as_raw_fd());
        fds.push(poll_in(listening));
        fds.extend(clients.iter().map(|c| poll_in(c.sock.as_raw_fd())));
        // SAFETY: poll on our own array.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            continue; // EINTR
        }
        if fds[0].revents != 0 {
            match started.mask.next() {
                Some((libc::SIGCHLD | libc::SIGWINCH, _)) | None => {}
                Some((sig, code)) => signals::forward(pid, sig, code, &mut killed_for),
            }
        }
        let at = 1 + streams.len();
        // The clients polled, before any joins or leaves them.
        let mut ready = fds[at + 1..].iter().map(|f| f.revents != 0);
        clients.retain_mut(|c| !ready.next().unwrap_or(false) || serve(c, started));
        if fds[at].revents != 0 {
            if let Some(Ok((sock, _))) = listener.as_ref().map(UnixListener::accept) {
                let _ = sock.set_nonblocking(true);
                clients.push(Client {
                    sock,
                    pending: Vec::new(),
                });
            }
        }
        for (i, (fd, stream, open)) in streams.iter_mut().enumerate() {
            if *open && fds[1 + i].revents != 0 {
                *open = copy_out(*fd, *stream, log, &mut clients);
            }
        }
    }
}

fn poll_in(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Copies what the container wrote on `fd` to the log and to the
/// attached clients; false once it has ended (EOF, or EIO from a master
/// whose slave is closed).
fn copy_out(fd: RawFd, stream: Stream, log: &mut Writer, clients: &mut Vec<Client>) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: reads into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = std::io::Error::last_os_error().kind();
        return matches!(
            e,
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
        );
    }
    if n == 0 {
        return false;
    }
    let bytes = &buf[..n as usize];
    log.write(stream, bytes);
    // A client that cannot take it now misses it; the log has it all.
    clients.retain_mut(|c| match c.sock.write(bytes) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    });
    true
}

/// What the container wrote before it ended and is still unread.
fn drain(fd: RawFd, stream: Stream, log: &mut Writer, clients: &mut Vec<Client>) {
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    while copy_out(fd, stream, log, clients) {
        let mut probe = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on our own array, without waiting.
        if unsafe { libc::poll(probe.as_mut_ptr(), 1, 0) } <= 0 {
            break;
        }
    }
}

/// Reads an attached client's messages; false when it has gone.
fn serve(c: &mut Client, started: &Started) -> bool {
    let mut buf = [0u8; 1024];
    match c.sock.read(&mut buf) {
        Ok(0) => return false,
        Ok(n) => c.pending.extend_from_slice(&buf[..n]),
        Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
    }
    let Some(pty) = &started.pty else {
        c.pending.clear();
        return true;
    };
    while c.pending.len() >= 2 && c.pending.len() >= 2 + c.pending[1] as usize {
        let frame: Vec<u8> = c.pending.drain(..2 + c.pending[1] as usize).collect();
        let body = &frame[2..];
        match frame[0] {
            INPUT => {
                crate::tty::write_all(pty.master.as_raw_fd(), body);
            }
            WINDOW if body.len() == 4 => {
                let ws = libc::winsize {
                    ws_row: u16::from_le_bytes([body[0], body[1]]),
                    ws_col: u16::from_le_bytes([body[2], body[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                // SAFETY: TIOCSWINSZ reads a winsize.
                unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
            }
            _ => {}
        }
    }
    true
}

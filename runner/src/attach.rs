//! `attach`: the terminal of a container started with `-d -t`, taken
//! from its monitor (monitor.rs) through the socket in its entry. What is
//! typed goes to the container's terminal, what it shows comes back, the
//! window size follows the user's; `^P ^Q` (Docker's keys) lets go of it
//! and leaves the container running. When the container ends, attach
//! returns its status as `run` would.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::error::{Error, Result};
use crate::monitor::{INPUT, SOCKET, WINDOW};
use crate::store::Store;
use crate::{lifecycle, signals, tty};

/// ^P then ^Q.
const DETACH: [u8; 2] = [0x10, 0x11];

pub fn attach(store: &Store, id: &str) -> Result<i32> {
    let found = store.find(id)?;
    let state = lifecycle::running(&found)?;
    if !state.spec.tty {
        return Err(Error::new(format!(
            "{id}: has no terminal to attach to (started without -t); its output is in `runner logs {id}`"
        )));
    }
    let path = found.dir.join(SOCKET);
    let mut sock = UnixStream::connect(&path)
        .map_err(|e| Error::os(format_args!("connect to {}", path.display()), &e))?;
    let mask = signals::block()?;
    let raw = tty::RawMode::enter();
    send_window(&mut sock);
    let mut held = false; // a ^P was typed last
    let detached = loop {
        let mut fds = [poll_in(mask.fd()), poll_in(0), poll_in(sock.as_raw_fd())];
        // SAFETY: poll on our own array.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) } < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            match mask.next() {
                Some((libc::SIGWINCH, _)) => send_window(&mut sock),
                Some((libc::SIGCHLD, _)) | None => {}
                // Asked to end: let go of the terminal; the container
                // runs on.
                Some(_) => break true,
            }
        }
        if fds[1].revents != 0 {
            let mut buf = [0u8; 255];
            // SAFETY: reads into our own buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break true; // our input ended: as a detach
            }
            let (typed, detach) = detach_keys(&buf[..n as usize], &mut held);
            if !typed.is_empty() && !send(&mut sock, INPUT, &typed) {
                break false;
            }
            if detach {
                break true;
            }
        }
        if fds[2].revents != 0 {
            let mut buf = [0u8; 8192];
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                }
            }
        }
    };
    drop(raw);
    if detached {
        return Ok(0);
    }
    // The container ended: its status, once recorded.
    Ok(lifecycle::wait(store, id)?.map_or(crate::error::RUNTIME, signals::Exit::status))
}

fn poll_in(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// What of `typed` goes to the container, and whether ^P ^Q was typed.
/// A ^P is held back until the next key says whether it was the start of
/// the detach keys; then it is sent.
fn detach_keys(typed: &[u8], held: &mut bool) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(typed.len() + 1);
    for &b in typed {
        if *held {
            *held = false;
            if b == DETACH[1] {
                return (out, true);
            }
            out.push(DETACH[0]);
        }
        if b == DETACH[0] {
            *held = true;
        } else {
            out.push(b);
        }
    }
    (out, false)
}

fn send(sock: &mut UnixStream, kind: u8, body: &[u8]) -> bool {
    body.chunks(255).all(|chunk| {
        let mut frame = vec![kind, chunk.len() as u8];
        frame.extend_from_slice(chunk);
        sock.write_all(&frame).is_ok()
    })
}

/// The user's window size, for the container's terminal.
fn send_window(sock: &mut UnixStream) {
    // SAFETY: TIOCGWINSZ fills a winsize.
    let ws = unsafe {
        let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed().assume_init();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) != 0 {
            return;
        }
        ws
    };
    let mut body = ws.ws_row.to_le_bytes().to_vec();
    body.extend_from_slice(&ws.ws_col.to_le_bytes());
    send(sock, WINDOW, &body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detach_keys_are_held_back_and_only_they_detach() {
        let mut held = false;
        assert_eq!(detach_keys(b"ab\x10", &mut held), (b"ab".to_vec(), false));
        assert!(held);
        // A ^P not followed by ^Q is typed after all.
        assert_eq!(detach_keys(b"x", &mut held), (b"\x10x".to_vec(), false));
        assert_eq!(detach_keys(b"q\x10\x11z", &mut held), (b"q".to_vec(), true));
        held = false;
        assert_eq!(
            detach_keys(b"\x10\x10\x11", &mut held),
            (b"\x10".to_vec(), true)
        );
    }
}

//! A detached container's log: what it writes on stdout and stderr (or its
//! terminal), one line per line, each stamped with the time it was read,
//! in its entry's directory. The format is the CRI's (what Kubernetes
//! runtimes write):
//!
//! ```text
//! 2026-11-23T21:07:47.123456789Z stdout F a line
//! 2026-11-23T21:07:47.123459002Z stderr P the first 16 KiB of a longer line
//! ```
//!
//! `F` ends a line, `P` is part of one longer than `MAX_LINE`. The file is
//! capped: past `cap` bytes it is renamed `log.1` (replacing the previous
//! one) and a new one started, so a container never holds more than twice
//! the cap of the host's disk. Stamps have a fixed width, so their text
//! order is their time order.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::time::rfc3339_nanos;

pub const LOG: &str = "log";
pub const OLD_LOG: &str = "log.1";
/// The default cap of each of the two files.
pub const DEFAULT_CAP: u64 = 8 << 20;
/// A line longer than this is written in parts.
const MAX_LINE: usize = 16 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// What the runner itself has to say (the OOM killer's end).
    Runner,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Runner => "runner",
        }
    }
}

pub struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    cap: u64,
    /// What each of stdout and stderr wrote after its last newline.
    partial: [Vec<u8>; 2],
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

impl Writer {
    pub fn open(dir: &Path, cap: u64) -> std::io::Result<Writer> {
        let file = open_log(&dir.join(LOG))?;
        Ok(Writer {
            size: file.metadata()?.len(),
            dir: dir.to_path_buf(),
            file,
            cap: cap.max(MAX_LINE as u64 * 2),
            partial: Default::default(),
        })
    }

    /// Takes what `stream` wrote; whole lines go to the log now.
    pub fn write(&mut self, stream: Stream, mut bytes: &[u8]) {
        let i = usize::from(stream == Stream::Stderr);
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[i]);
            line.extend_from_slice(&bytes[..nl]);
            self.line(stream, true, &line);
            bytes = &bytes[nl + 1..];
        }
        self.partial[i].extend_from_slice(bytes);
        while self.partial[i].len() >= MAX_LINE {
            let rest = self.partial[i].split_off(MAX_LINE);
            let part = std::mem::replace(&mut self.partial[i], rest);
            self.line(stream, false, &part);
        }
    }

    /// The stream has ended: what it left without a newline is a line.
    pub fn close(&mut self, stream: Stream) {
        let i = usize::from(stream == Stream::Stderr);
        let rest = std::mem::take(&mut self.partial[i]);
        if !rest.is_empty() {
            self.line(stream, true, &rest);
        }
    }

    /// One line from the runner itself.
    pub fn note(&mut self, text: &str) {
        self.line(Stream::Runner, true, text.as_bytes());
    }

    fn line(&mut self, stream: Stream, full: bool, text: &[u8]) {
        // A terminal ends its lines with \r\n.
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let mut out = Vec::with_capacity(text.len() + 48);
        out.extend_from_slice(rfc3339_nanos(SystemTime::now()).as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.extend_from_slice(if full { b" F " } else { b" P " });
        out.extend_from_slice(text);
        out.push(b'\n');
        if self.size + out.len() as u64 > self.cap {
            self.rotate();
        }
        // A full disk loses lines, never the container.
        if self.file.write_all(&out).is_ok() {
            self.size += out.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let (log, old) = (self.dir.join(LOG), self.dir.join(OLD_LOG));
        if fs::rename(&log, &old).is_ok() {
            if let Ok(f) = open_log(&log) {
                self.file = f;
                self.size = 0;
            }
        }
    }
}

/// One line of the log.
#[derive(Debug, PartialEq)]
pub struct Line<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub full: bool,
    pub text: &'a str,
}

impl<'a> Line<'a> {
    pub fn parse(line: &'a str) -> Option<Line<'a>> {
        let mut f = line.splitn(4, ' ');
        let (time, stream, tag) = (f.next()?, f.next()?, f.next()?);
        Some(Line {
            time,
            stream,
            full: tag != "P",
            text: f.next().unwrap_or(""),
        })
    }
}

/// Which lines `logs` shows.
pub struct Filter {
    /// Only lines stamped at or after this time.
    pub since: Option<SystemTime>,
    /// Only the last N.
    pub tail: Option<usize>,
}

/// The log's lines as they are now, oldest first, as `filter` keeps
/// them; and where the current file was read to, to follow it from.
pub fn read(dir: &Path, filter: &Filter) -> (Vec<String>, Position) {
    let mut text = fs::read_to_string(dir.join(OLD_LOG)).unwrap_or_default();
    let mut pos = Position::default();
    if let Ok(mut f) = File::open(dir.join(LOG)) {
        let mut current = String::new();
        let _ = f.read_to_string(&mut current);
        pos = Position {
            inode: f.metadata().map(|m| m.ino()).unwrap_or(0),
            offset: current.len() as u64,
        };
        text.push_str(&current);
    }
    let since = filter.since.map(rfc3339_nanos);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| match (&since, Line::parse(l)) {
            (Some(s), Some(line)) => line.time >= s.as_str(),
            _ => true,
        })
        .map(String::from)
        .collect();
    if let Some(n) = filter.tail {
        lines.drain(..lines.len().saturating_sub(n));
    }
    (lines, pos)
}

/// How far the current log file has been read.
#[derive(Default, Clone, Copy)]
pub struct Position {
    inode: u64,
    offset: u64,
}

/// The whole lines written since `pos`, following a rotation: what was
/// added to the file read before it was renamed, then the new file.
pub fn more(dir: &Path, pos: &mut Position, carry: &mut String) -> Vec<String> {
    let mut text = String::new();
    let current = fs::metadata(dir.join(LOG)).map(|m| m.ino()).unwrap_or(0);
    if current != pos.inode && pos.inode != 0 {
        // Rotated: the rest of the file we were reading is log.1 now.
        if let Ok(mut f) = File::open(dir.join(OLD_LOG)) {
            if f.metadata().is_ok_and(|m| m.ino() == pos.inode) {
                let _ = f.seek(SeekFrom::Start(pos.offset));
                let _ = f.read_to_string(&mut text);
            }
        }
        *pos = Position {
            inode: current,
            offset: 0,
        };
    }
    if let Ok(mut f) = File::open(dir.join(LOG)) {
        pos.inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(pos.offset));
        let mut new = String::new();
        let _ = f.read_to_string(&mut new);
        pos.offset += new.len() as u64;
        text.push_str(&new);
    }
    carry.push_str(&text);
    let Some(end) = carry.rfind('\n') else {
        return Vec::new();
    };
    let rest = carry.split_off(end + 1);
    let lines = carry.lines().map(String::from).collect();
    *carry = rest;
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("husk-log-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lines_are_stamped_split_and_kept_apart_by_stream() {
        let dir = temp("lines");
        let mut w = Writer::open(&dir, DEFAULT_CAP).unwrap();
        w.write(Stream::Stdout, b"one\ntw");
        w.write(Stream::Stderr, b"err\r\n");
        w.write(Stream::Stdout, b"o\n");
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 5]);
        w.close(Stream::Stdout);
        w.note("the end");
        let (lines, _) = read(
            &dir,
            &Filter {
                since: None,
                tail: None,
            },
        );
        let parsed: Vec<Line> = lines.iter().map(|l| Line::parse(l).unwrap()).collect();
        let texts: Vec<(&str, bool, usize)> = parsed
            .iter()
            .map(|l| (l.stream, l.full, l.text.len()))
            .collect();
        assert_eq!(
            texts,
            [
                ("stdout", true, 3),
                ("stderr", true, 3),
                ("stdout", true, 3),
                ("stdout", false, MAX_LINE),
                ("stdout", true, 5),
                ("runner", true, 7)
            ]
        );
        assert_eq!(parsed[2].text, "two");
        assert!(parsed.windows(2).all(|w| w[0].time <= w[1].time));
        let (tail, _) = read(
            &dir,
            &Filter {
                since: None,
                tail: Some(2),
            },
        );
        assert_eq!(Line::parse(&tail[1]).unwrap().text, "the end");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_log_is_capped_and_followed_across_a_rotation() {
        let dir = temp("rotate");
        let cap = MAX_LINE as u64 * 2;
        let mut w = Writer::open(&dir, cap).unwrap();
        let (_, mut pos) = read(
            &dir,
            &Filter {
                since: None,
                tail: None,
            },
        );
        let mut carry = String::new();
        let mut seen = Vec::new();
        let line = "y".repeat(1000);
        for i in 0..200 {
            w.write(Stream::Stdout, format!("{i} {line}\n").as_bytes());
            if i % 7 == 0 {
                seen.extend(more(&dir, &mut pos, &mut carry));
            }
        }
        seen.extend(more(&dir, &mut pos, &mut carry));
        let size = |f: &str| fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(size(LOG) <= cap && size(OLD_LOG) <= cap);
        // Followed often enough, nothing is lost to the rotation.
        let numbers: Vec<usize> = seen
            .iter()
            .map(|l| {
                Line::parse(l)
                    .unwrap()
                    .text
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..200).collect::<Vec<_>>());
        // What is kept is the newest.
        let (lines, _) = read(
            &dir,
            &Filter {
                since: None,
                tail: None,
            },
        );
        assert!(lines.last().unwrap().contains(" 199 "));
        let _ = fs::remove_dir_all(&dir);
    }
}

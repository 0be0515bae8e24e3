//! gzip layers, read with miniz_oxide's inflate and a header parser of
//! our own. flate2's reader carried a CRC-32 table and its own buffering
//! (20 KB of the static runner); the CRC adds nothing here: every layer
//! with a digest is verified by sha256, compressed and uncompressed, and
//! a plain .tar.gz is checked by the length each member's trailer gives.

use std::io::{self, Read};

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

pub struct Gunzip<'a> {
    inner: &'a mut dyn Read,
    state: Box<InflateState>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Inside a member's deflate stream (else: at a member's header).
    inside: bool,
    /// Bytes this member gave, for its trailer's ISIZE.
    out: u32,
    eof: bool,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

impl<'a> Gunzip<'a> {
    pub fn new(inner: &'a mut dyn Read) -> Gunzip<'a> {
        Gunzip {
            inner,
            state: InflateState::new_boxed(DataFormat::Raw),
            buf: vec![0; 64 << 10],
            pos: 0,
            len: 0,
            inside: false,
            out: 0,
            eof: false,
        }
    }

    /// Refills the buffer when it is used up; false at the end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = self.inner.read(&mut self.buf)?;
        }
        Ok(self.pos < self.len)
    }

    fn byte(&mut self) -> io::Result<u8> {
        if !self.fill()? {
            return Err(bad("truncated"));
        }
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    fn skip(&mut self, n: usize) -> io::Result<()> {
        (0..n).try_for_each(|_| self.byte().map(drop))
    }

    fn u32_le(&mut self) -> io::Result<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            v |= u32::from(self.byte()?) << (8 * i);
        }
        Ok(v)
    }

    /// A member's header (RFC 1952): magic, method, flags and the optional
    /// fields they announce.
    fn header(&mut self) -> io::Result<()> {
        if (self.byte()?, self.byte()?, self.byte()?) != (0x1f, 0x8b, 8) {
            return Err(bad("not a gzip (deflate) stream"));
        }
        let flags = self.byte()?;
        self.skip(6)?;
        if flags & 4 != 0 {
            let n = usize::from(self.byte()?) | usize::from(self.byte()?) << 8;
            self.skip(n)?;
        }
        for field in [8u8, 16] {
            if flags & field != 0 {
                while self.byte()? != 0 {}
            }
        }
        if flags & 2 != 0 {
            self.skip(2)?;
        }
        self.state.reset(DataFormat::Raw);
        self.out = 0;
        self.inside = true;
        Ok(())
    }
}

impl Read for Gunzip<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while !self.eof && !out.is_empty() {
            if !self.inside {
                // Another member follows, or the stream ends here.
                if !self.fill()? {
                    self.eof = true;
                    break;
                }
                self.header()?;
            }
            let more = self.fill()?;
            let r = inflate(
                &mut self.state,
                &self.buf[self.pos..self.len],
                out,
                MZFlush::None,
            );
            self.pos += r.bytes_consumed;
            self.out = self.out.wrapping_add(r.bytes_written as u32);
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    self.inside = false;
                    let _crc = self.u32_le()?;
                    if self.u32_le()? != self.out {
                        return Err(bad("a member's length is not what its trailer says"));
                    }
                }
                Ok(_) if r.bytes_written == 0 && r.bytes_consumed == 0 && !more => {
                    return Err(bad("truncated"))
                }
                Ok(_) => {}
                Err(_) if !more => return Err(bad("truncated")),
                Err(e) => return Err(bad(&format!("corrupt ({e:?})"))),
            }
            if r.bytes_written > 0 {
                return Ok(r.bytes_written);
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "hello\n" by gzip -n, twice (two members).
    const HELLO: [u8; 26] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn members_inflate_and_a_cut_stream_is_an_error() {
        let two: Vec<u8> = HELLO.iter().chain(HELLO.iter()).copied().collect();
        let mut text = String::new();
        Gunzip::new(&mut &two[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello\nhello\n");
        for cut in [5, 15, 22] {
            let mut out = Vec::new();
            let r = Gunzip::new(&mut &HELLO[..cut]).read_to_end(&mut out);
            assert!(r.is_err(), "cut at {cut} read {out:?}");
        }
        let mut out = Vec::new();
        assert!(Gunzip::new(&mut &b"plain tar"[..])
            .read_to_end(&mut out)
            .is_err());
    }
}

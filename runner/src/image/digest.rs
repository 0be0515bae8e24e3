//! sha256 digests: of whole blobs, and of streams as they are read, so
//! that a layer is verified in the same pass that unpacks it.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The hex of "sha256:HEX", checked to be 64 lowercase hex digits: it
/// becomes a file name in the store and in blobs/.
pub fn parse(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::new(format!("digest {digest:?}: only sha256 digests are read")))?;
    if is_hex(hex) {
        Ok(hex)
    } else {
        Err(Error::new(format!("digest {digest:?}: not 64 hex digits")))
    }
}

pub fn is_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A reader that hashes what passes through it.
pub struct Hashing<R> {
    pub inner: R,
    hash: Sha256,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hash: Sha256::new(),
        }
    }

    /// Reads what is left (a tar's trailing blocks, which the tar reader
    /// may stop short of) and returns the hex digest of the whole stream.
    pub fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(hex(&self.hash.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    pub inner: W,
    hash: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hash: Sha256::new(),
        }
    }

    pub fn finish(self) -> (W, String) {
        (self.inner, hex(&self.hash.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Refuses `what` unless its digest is `want` (hex), naming both.
pub fn check(what: &str, got: &str, want: &str) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{what}: digest mismatch: the archive says sha256:{want}, its content is sha256:{got}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_text_and_their_parsing() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256(b"abc"), abc);
        let mut r = Hashing::new(&b"abc"[..]);
        let mut one = [0u8; 1];
        r.read_exact(&mut one).unwrap();
        assert_eq!(r.finish().unwrap(), abc);
        assert_eq!(parse(&format!("sha256:{abc}")).unwrap(), abc);
        assert!(parse(&format!("sha512:{abc}")).is_err());
        assert!(parse("sha256:../../etc/passwd").is_err());
        assert!(parse(&format!("sha256:{}", abc.to_uppercase())).is_err());
        assert!(check("layer x", abc, &"0".repeat(64))
            .unwrap_err()
            .message
            .contains("layer x: digest mismatch"));
    }
}

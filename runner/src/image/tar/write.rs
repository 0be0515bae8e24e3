//! The tar writer, for the layers husk makes (`commit`, `export`).

use std::io::{self, Read, Write};

use super::{Entry, Kind, BLOCK, GNU, USTAR};

/// Writes members as the tar crate's Builder did: GNU headers, and before
/// a member whose path or link is too long for its field, or that has
/// xattrs, a PAX header for them.
pub struct Writer<'a> {
    out: &'a mut dyn Write,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut dyn Write) -> Writer<'a> {
        Writer { out }
    }

    /// `e` and exactly `e.size` bytes of `data`: a source that ends sooner
    /// is an error, as a header whose data is short would corrupt the
    /// rest of the archive.
    pub fn append(&mut self, e: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let mut records = Vec::new();
        if e.path.len() > 100 {
            records.push(("path".to_string(), e.path.clone()));
        }
        if let Some(link) = e.link.as_ref().filter(|l| l.len() > 100) {
            records.push(("linkpath".to_string(), link.clone()));
        }
        for (name, value) in &e.xattrs {
            records.push((format!("SCHILY.xattr.{name}"), value.clone()));
        }
        if !records.is_empty() {
            let data = pax_records(&records);
            let header = Entry {
                kind: Kind::Other(b'x'),
                path: b"PaxHeader".to_vec(),
                mode: 0o644,
                size: data.len() as u64,
                ..Entry::default()
            };
            self.write(&header, USTAR, &mut &data[..])?;
        }
        self.write(e, GNU, data)
    }

    pub(super) fn write(
        &mut self,
        e: &Entry,
        magic: &[u8; 8],
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let mut h = [0u8; 512];
        // A longer path or link is in the PAX header: its start here is
        // for readers without PAX.
        put_text(&mut h[..100], &e.path);
        put_number(&mut h[100..108], e.mode.into());
        put_number(&mut h[108..116], e.uid);
        put_number(&mut h[116..124], e.gid);
        put_number(&mut h[124..136], e.size);
        put_number(&mut h[136..148], e.mtime);
        h[156] = e.kind.flag();
        put_text(&mut h[157..257], e.link.as_deref().unwrap_or_default());
        h[257..265].copy_from_slice(magic);
        if matches!(e.kind, Kind::Char | Kind::Block | Kind::Fifo) {
            put_number(&mut h[329..337], e.major.into());
            put_number(&mut h[337..345], e.minor.into());
        }
        h[148..156].fill(b' ');
        let sum = h.iter().map(|&b| u64::from(b)).sum();
        put_number(&mut h[148..156], sum);
        self.out.write_all(&h)?;
        let n = io::copy(&mut data.take(e.size), self.out)?;
        if n < e.size {
            let why = "it shrank while it was read";
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
        }
        let pad = n.next_multiple_of(BLOCK) - n;
        self.out.write_all(&[0; BLOCK as usize][..pad as usize])
    }

    /// The two zero blocks that end an archive.
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(&[0; 2 * BLOCK as usize])
    }
}

fn put_text(field: &mut [u8], text: &[u8]) {
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text[..n]);
}

/// Octal digits and a NUL where they fit, else base-256, as the tar crate
/// wrote them.
pub(super) fn put_number(field: &mut [u8], n: u64) {
    let digits = field.len() - 1;
    if n >> (3 * digits) == 0 {
        for (i, b) in field[..digits].iter_mut().rev().enumerate() {
            *b = b'0' + (n >> (3 * i) & 7) as u8;
        }
        field[digits] = 0;
    } else {
        field.fill(0);
        for (i, b) in field.iter_mut().rev().take(8).enumerate() {
            *b = (n >> (8 * i)) as u8;
        }
        field[0] |= 0x80;
    }
}

/// PAX extended header records ("LEN key=value\n"), LEN counting itself.
pub fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

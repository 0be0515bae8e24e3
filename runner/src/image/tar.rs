//! The tar format, as much of it as images use: a reader for the layers
//! and archives of untrusted images, and a writer for the layers husk
//! makes. The reader takes what the tar crate took before it (ustar and
//! GNU headers, GNU long names and links, PAX records, base-256 numbers)
//! and is written for hostile input: no size is trusted in arithmetic, the
//! extension data it holds is bounded, and a bad checksum or an archive
//! that stops inside a member is an error, never a silent end.

use std::io::{self, Read};

mod write;
pub use write::{pax_records, Writer};

const BLOCK: u64 = 512;

/// GNU long names and links and PAX records are held in memory whole: no
/// real path or set of xattrs comes near this.
const MAX_EXTENSION: u64 = 1 << 20;

/// Magic and version: a GNU header's (what the tar crate wrote for every
/// member before, kept so that a tree packs to the same bytes), and
/// POSIX's (for PAX headers).
const GNU: &[u8; 8] = b"ustar  \0";
const USTAR: &[u8; 8] = b"ustar\x0000";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
    /// Anything else, by its type flag.
    Other(u8),
}

impl Kind {
    fn from_flag(flag: u8) -> Kind {
        match flag {
            // NUL: a pre-POSIX file; '7': contiguous, a file like any other.
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }

    pub fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
            Kind::Other(flag) => flag,
        }
    }
}

/// One member, with what its extension headers say in place of its
/// header's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub mode: u32,
    /// 0 where the header's field is not a number: husk took them so
    /// from the tar crate, and an owner is no reason to refuse a layer.
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    /// A device's numbers; 0 in a header without the fields.
    pub major: u32,
    pub minor: u32,
    /// PAX `SCHILY.xattr.NAME` records: (NAME, value).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// What a tar is read from. A stream skips a member's data by reading it;
/// a file moves its offset instead.
pub trait Source: Read {
    /// Skips `n` bytes, or fewer at the end: returns how many.
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        io::copy(&mut (&mut *self).take(n), &mut io::sink())
    }
}

/// Reads the entries in order; `Read` gives the data of the one `next`
/// returned last, which need not be read before the next `next`.
pub struct Reader<'a> {
    src: &'a mut dyn Source,
    /// Bytes taken from `src` so far.
    pos: u64,
    /// Where the next header starts.
    next: u64,
    /// What is left of the current entry's data.
    left: u64,
    zero_block: bool,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a mut dyn Source) -> Reader<'a> {
        Reader {
            src,
            pos: 0,
            next: 0,
            left: 0,
            zero_block: false,
        }
    }

    /// Right after `next`, where the entry's data starts in the archive.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// Whether the archive ended with a zero block, rather than the stream
    /// just stopping after a member.
    pub fn saw_end(&self) -> bool {
        self.zero_block
    }

    /// The next member; None at the end of the archive.
    pub fn next(&mut self) -> io::Result<Option<Entry>> {
        // GNU long name, GNU long link, PAX records: for the member after them.
        let mut ext: [Option<Vec<u8>>; 3] = Default::default();
        loop {
            let at = self.next;
            let skipped = self.src.skip(at.saturating_sub(self.pos))?;
            self.pos = self.pos.saturating_add(skipped);
            if self.pos < at {
                return Err(self.short());
            }
            let Some(h) = self.header(at)? else {
                if ext.iter().any(Option::is_some) {
                    return Err(bad(at, "extension headers and no member after them"));
                }
                return Ok(None);
            };
            let size =
                number(&h[124..136]).ok_or_else(|| bad(at, "a size field that is not a number"))?;
            let slot = match h[156] {
                b'L' => Some(0),
                b'K' => Some(1),
                b'x' => Some(2),
                b'g' => {
                    // Global PAX records: husk has no use for them, nor
                    // had the tar crate, whose callers saw them as members
                    // and took any records before them as theirs.
                    ext = Default::default();
                    self.start(at, size)?;
                    continue;
                }
                _ => None,
            };
            if let Some(i) = slot {
                if ext[i].is_some() {
                    return Err(bad(at, "two extension headers of a kind for one member"));
                }
                if size > MAX_EXTENSION {
                    let why =
                        format!("an extension header of {size} bytes (at most {MAX_EXTENSION})");
                    return Err(bad(at, &why));
                }
                self.start(at, size)?;
                let mut data = vec![0; size as usize];
                self.read_exact(&mut data).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => self.short(),
                    _ => e,
                })?;
                ext[i] = Some(data);
                continue;
            }
            let mut e =
                entry(&h, size).ok_or_else(|| bad(at, "a mode field that is not a number"))?;
            if let Some(records) = &ext[2] {
                pax(&mut e, records).ok_or_else(|| bad(at, "a malformed PAX record"))?;
            }
            // As the tar crate: a GNU long name or link wins over PAX's.
            if let Some(name) = ext[0].take() {
                e.path = without_nul(name);
            }
            if let Some(link) = ext[1].take() {
                e.link = Some(without_nul(link));
            }
            self.start(at, e.size)?;
            return Ok(Some(e));
        }
    }

    /// The header block at `at`; None at the end: a zero block, or the
    /// stream stopping where a header would start.
    fn header(&mut self, at: u64) -> io::Result<Option<[u8; 512]>> {
        let mut h = [0u8; 512];
        let mut got = 0;
        while got < h.len() {
            match self.src.read(&mut h[got..])? {
                0 => break,
                n => got += n,
            }
        }
        self.pos = self.pos.saturating_add(got as u64);
        if got == 0 {
            return Ok(None);
        }
        if got < h.len() {
            return Err(self.short());
        }
        if h.iter().all(|&b| b == 0) {
            self.zero_block = true;
            return Ok(None);
        }
        if !checksum_ok(&h) {
            return Err(bad(at, "a bad checksum"));
        }
        Ok(Some(h))
    }

    /// The data of the header at `at` starts here and takes `size` bytes,
    /// padded to a whole block.
    fn start(&mut self, at: u64, size: u64) -> io::Result<()> {
        self.left = size;
        self.next = size
            .checked_next_multiple_of(BLOCK)
            .and_then(|padded| self.pos.checked_add(padded))
            .ok_or_else(|| bad(at, "a size past any archive's end"))?;
        Ok(())
    }

    fn short(&self) -> io::Error {
        io::Error::other(format!("the archive ends early, at byte {}", self.pos))
    }
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // At most buf.len(): the cast back cannot truncate.
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.src.read(&mut buf[..want])?;
        self.pos = self.pos.saturating_add(n as u64);
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn bad(at: u64, why: &str) -> io::Error {
    io::Error::other(format!("{why} (the header at byte {at})"))
}

/// The header's own fields; None if its mode is not a number.
fn entry(h: &[u8; 512], size: u64) -> Option<Entry> {
    let posix = &h[257..265] == USTAR;
    // Older headers have no device fields: their bytes there are padding.
    let devices = posix || &h[257..265] == GNU;
    let device = |field: &[u8]| number(field).filter(|_| devices).unwrap_or(0) as u32;
    let mut path = text(&h[..100]).to_vec();
    let prefix = text(&h[345..500]);
    if posix && !prefix.is_empty() {
        path = [prefix, b"/", &path].concat();
    }
    Some(Entry {
        kind: Kind::from_flag(h[156]),
        path,
        link: (h[157] != 0).then(|| text(&h[157..257]).to_vec()),
        mode: number(&h[100..108])? as u32,
        uid: number(&h[108..116]).unwrap_or(0),
        gid: number(&h[116..124]).unwrap_or(0),
        mtime: number(&h[136..148]).unwrap_or(0),
        size,
        major: device(&h[329..337]),
        minor: device(&h[337..345]),
        xattrs: Vec::new(),
    })
}

/// PAX records ("LEN key=value\n", LEN counting the whole record, so a
/// value may hold any byte) applied to `e`; None if one is malformed. A
/// key given twice means its last value.
fn pax(e: &mut Entry, mut data: &[u8]) -> Option<()> {
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ')?;
        let len = usize::try_from(digits(&data[..space], 10)?).ok()?;
        let record = data.get(..len)?;
        data = &data[len..];
        let body = record.get(space + 1..)?.strip_suffix(b"\n")?;
        let eq = body.iter().position(|&b| b == b'=')?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        // Times may have a fraction; ids are read the same way.
        let whole = || digits(value.split(|&b| b == b'.').next()?, 10);
        match key {
            b"path" => e.path = value.to_vec(),
            b"linkpath" => e.link = Some(value.to_vec()),
            b"size" => e.size = digits(value, 10).unwrap_or(e.size),
            b"uid" => e.uid = whole().unwrap_or(e.uid),
            b"gid" => e.gid = whole().unwrap_or(e.gid),
            b"mtime" => e.mtime = whole().unwrap_or(e.mtime),
            _ => {
                let name = key.strip_prefix(b"SCHILY.xattr.");
                if let Some(Ok(name)) = name.map(|n| String::from_utf8(n.to_vec())) {
                    e.xattrs.push((name, value.to_vec()));
                }
            }
        }
    }
    Some(())
}

/// The POSIX checksum: the header's bytes summed with its checksum field
/// as spaces. Some old tars summed signed bytes; either is taken.
fn checksum_ok(h: &[u8; 512]) -> bool {
    let Some(want) = octal(&h[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || i64::try_from(want) == Ok(signed)
}

/// The bytes of a header's text field, up to its first NUL.
fn text(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or_default()
}

fn without_nul(mut name: Vec<u8>) -> Vec<u8> {
    // GNU tar ends its long names with one NUL.
    if name.last() == Some(&0) {
        name.pop();
    }
    name
}

/// A numeric field: octal text, or GNU's base-256 (big-endian binary
/// after the first byte's high bit) for what octal cannot hold.
fn number(field: &[u8]) -> Option<u64> {
    let (&first, rest) = field.split_first()?;
    if first & 0x80 == 0 {
        return octal(field);
    }
    rest.iter().try_fold(u64::from(first & 0x7f), |n, &b| {
        n.checked_mul(256)?.checked_add(u64::from(b))
    })
}

/// Octal digits, with spaces around them and a NUL after them.
fn octal(field: &[u8]) -> Option<u64> {
    digits(text(field).trim_ascii(), 8)
}

fn digits(text: &[u8], radix: u8) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        if d >= radix {
            return None;
        }
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests;

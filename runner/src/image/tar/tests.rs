//! The reader and the writer against the tar crate, both ways, and the
//! reader against broken and hostile archives.

use std::borrow::Cow;

use super::write::put_number;
use super::*;

impl Source for &[u8] {}

/// Entries and their data.
type Entries = Vec<(Entry, Vec<u8>)>;

/// Every entry of `tar` and its data, by our reader; and whether it ended
/// with a zero block.
fn read(mut tar: &[u8]) -> io::Result<(Entries, bool)> {
    let mut r = Reader::new(&mut tar);
    let mut out = Vec::new();
    while let Some(e) = r.next()? {
        let mut data = Vec::new();
        r.read_to_end(&mut data)?;
        out.push((e, data));
    }
    Ok((out, r.saw_end()))
}

fn write(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    for (e, data) in entries {
        w.append(e, &mut &data[..]).unwrap();
    }
    w.finish().unwrap();
    out
}

/// The same, as the tar crate reads them.
fn read_with_crate(tar: &[u8]) -> Entries {
    let mut archive = ::tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        let mut entry = Entry {
            kind: Kind::from_flag(h.entry_type().as_byte()),
            path: e.path_bytes().into_owned(),
            link: e.link_name_bytes().map(Cow::into_owned),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            size: e.size(),
            major: h.device_major().ok().flatten().unwrap_or(0),
            minor: h.device_minor().ok().flatten().unwrap_or(0),
            xattrs: Vec::new(),
        };
        for ext in e.pax_extensions().unwrap().into_iter().flatten() {
            let ext = ext.unwrap();
            if let Some(name) = ext.key().unwrap().strip_prefix("SCHILY.xattr.") {
                entry.xattrs.push((name.into(), ext.value_bytes().to_vec()));
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((entry, data));
    }
    out
}

fn entry(kind: Kind, path: &str) -> Entry {
    Entry {
        kind,
        path: path.into(),
        mode: 0o755,
        uid: 1000,
        gid: 100,
        mtime: 1_700_000_000,
        ..Entry::default()
    }
}

fn file(path: &str, data: &[u8]) -> (Entry, Vec<u8>) {
    let e = Entry {
        size: data.len() as u64,
        mode: 0o644,
        ..entry(Kind::File, path)
    };
    (e, data.to_vec())
}

fn link(kind: Kind, path: &str, to: &str) -> (Entry, Vec<u8>) {
    let e = Entry {
        link: Some(to.into()),
        ..entry(kind, path)
    };
    (e, Vec::new())
}

fn device(kind: Kind, path: &str, major: u32, minor: u32) -> (Entry, Vec<u8>) {
    let e = Entry {
        major,
        minor,
        ..entry(kind, path)
    };
    (e, Vec::new())
}

/// Past a ustar name (100 bytes), and past a ustar prefix (155) too.
fn long() -> String {
    format!("{}/file", "d".repeat(120))
}
fn longer() -> String {
    format!("{}/{}", "p".repeat(160), "n".repeat(90))
}

/// Everything husk writes, short and long.
fn sample() -> Entries {
    let mut xattrs = file("bin/ping", b"elf");
    xattrs.0.xattrs = vec![
        ("user.a".into(), b"1".to_vec()),
        ("security.capability".into(), vec![0, 1, 0xff, b'=', b' ']),
    ];
    let mut both = file(&longer(), b"");
    both.0.xattrs = vec![("user.b".into(), b"2".to_vec())];
    vec![
        (entry(Kind::Dir, "./"), Vec::new()),
        file("etc/hosts", b"127.0.0.1 localhost\n"),
        file(&long(), &[7; 1000]),
        file(&"x".repeat(100), b"exactly a whole name field"),
        both,
        link(Kind::Symlink, "lib", "usr/lib"),
        link(Kind::Symlink, "far", &"t/".repeat(80)),
        link(Kind::HardLink, "etc/hosts2", "etc/hosts"),
        link(Kind::HardLink, "h", &long()),
        device(Kind::Char, "dev/null", 1, 3),
        device(Kind::Block, "dev/sda", 8, 0x12345),
        device(Kind::Fifo, "run/fifo", 0, 0),
        xattrs,
    ]
}

#[test]
fn what_we_write_reads_back_with_ours_and_the_tar_crate() {
    let tar = write(&sample());
    let (ours, ended) = read(&tar).unwrap();
    assert!(ended);
    assert_eq!(ours, sample());
    assert_eq!(read_with_crate(&tar), sample());
    // A value may hold a newline: records are read by their length.
    let mut nl = file("n", b"");
    nl.0.xattrs = vec![("user.nl".into(), b"a\nb".to_vec())];
    let (ours, _) = read(&write(std::slice::from_ref(&nl))).unwrap();
    assert_eq!(ours, [nl]);
}

#[test]
fn short_paths_pack_to_the_bytes_the_tar_crate_wrote() {
    let entries: Vec<_> = sample()
        .into_iter()
        .filter(|(e, _)| e.path.len() <= 100 && e.link.as_ref().is_none_or(|l| l.len() <= 100))
        .filter(|(e, _)| e.xattrs.is_empty())
        .collect();
    let mut b = ::tar::Builder::new(Vec::new());
    for (e, data) in &entries {
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::new(e.kind.flag()));
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.size);
        if matches!(e.kind, Kind::Char | Kind::Block | Kind::Fifo) {
            h.set_device_major(e.major).unwrap();
            h.set_device_minor(e.minor).unwrap();
        }
        let path = std::str::from_utf8(&e.path).unwrap();
        match &e.link {
            Some(l) => b.append_link(&mut h, path, std::str::from_utf8(l).unwrap()),
            None => b.append_data(&mut h, path, &data[..]),
        }
        .unwrap();
    }
    assert_eq!(write(&entries), b.into_inner().unwrap());
}

#[test]
fn what_the_tar_crate_writes_reads_with_ours() {
    let mut b = ::tar::Builder::new(Vec::new());
    let mut want = Vec::new();
    let gnu = |kind: Kind, size: u64| {
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::new(kind.flag()));
        h.set_mode(0o640);
        h.set_uid(1 << 40); // base-256
        h.set_gid(7);
        h.set_mtime(1_600_000_000);
        h.set_size(size);
        h
    };
    let like = |kind, path: &str| Entry {
        mode: 0o640,
        uid: 1 << 40,
        gid: 7,
        mtime: 1_600_000_000,
        ..entry(kind, path)
    };
    // A GNU long name and a GNU long link.
    b.append_data(&mut gnu(Kind::File, 3), long(), &b"abc"[..])
        .unwrap();
    want.push((
        Entry {
            size: 3,
            ..like(Kind::File, &long())
        },
        b"abc".to_vec(),
    ));
    b.append_link(&mut gnu(Kind::Symlink, 0), longer(), long())
        .unwrap();
    let l = Entry {
        link: Some(long().into()),
        ..like(Kind::Symlink, &longer())
    };
    want.push((l, Vec::new()));
    // A ustar header with its path split into prefix and name.
    let split = format!("{}/{}", "p".repeat(150), "n".repeat(90));
    let mut h = ::tar::Header::new_ustar();
    h.set_path(&split).unwrap();
    h.set_mode(0o600);
    h.set_size(0);
    h.set_device_major(5).unwrap();
    h.set_device_minor(1).unwrap();
    h.set_entry_type(::tar::EntryType::Char);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let d = Entry {
        mode: 0o600,
        major: 5,
        minor: 1,
        ..Entry::default()
    };
    want.push((
        Entry {
            kind: Kind::Char,
            path: split.into(),
            ..d
        },
        Vec::new(),
    ));
    // PAX records: path, xattrs, ids and a time with a fraction.
    let path = longer();
    let records: [(&str, &[u8]); 5] = [
        ("path", path.as_bytes()),
        ("SCHILY.xattr.user.x", b"v"),
        ("uid", b"123456789"),
        ("mtime", b"1700000000.25"),
        ("atime", b"1"),
    ];
    b.append_pax_extensions(records).unwrap();
    b.append_data(&mut gnu(Kind::File, 0), "short", &b""[..])
        .unwrap();
    let p = Entry {
        uid: 123_456_789,
        mtime: 1_700_000_000,
        xattrs: vec![("user.x".into(), b"v".to_vec())],
        ..like(Kind::File, &longer())
    };
    want.push((p, Vec::new()));
    // A pre-POSIX header: no device fields.
    let mut h = ::tar::Header::new_old();
    h.set_path("old").unwrap();
    h.set_mode(0o644);
    h.set_size(2);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let old = Entry {
        mode: 0o644,
        size: 2,
        path: b"old".to_vec(),
        ..Entry::default()
    };
    want.push((old, b"hi".to_vec()));
    let (ours, ended) = read(&b.into_inner().unwrap()).unwrap();
    assert!(ended);
    assert_eq!(ours, want);
}

/// The header block our writer makes for `e`.
fn header(e: &Entry) -> [u8; 512] {
    let mut out = Vec::new();
    Writer::new(&mut out)
        .write(e, GNU, &mut io::repeat(0))
        .unwrap();
    out[..512].try_into().unwrap()
}

fn with_end(blocks: &[&[u8]]) -> Vec<u8> {
    let mut out = blocks.concat();
    out.extend_from_slice(&[0; 1024]);
    out
}

fn error(tar: &[u8]) -> String {
    read(tar).unwrap_err().to_string()
}

#[test]
fn a_bad_checksum_is_refused_and_a_signed_one_taken() {
    let mut h = header(&file("a", b"").0);
    h[0] = b'b';
    let e = error(&with_end(&[&h]));
    assert_eq!(e, "a bad checksum (the header at byte 0)");
    // Old tars summed signed bytes: é in a name.
    let mut h = header(&file("caf\u{e9}", b"").0);
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    put_number(&mut h[148..156], signed as u64);
    let (entries, _) = read(&with_end(&[&h])).unwrap();
    assert_eq!(entries[0].0.path, "caf\u{e9}".as_bytes());
}

#[test]
fn a_truncated_archive_is_refused_wherever_it_stops() {
    let tar = write(&sample());
    // At a member boundary the stream may just stop: the caller decides,
    // knowing no zero block came. Anywhere else is an error.
    let mut boundaries = 0;
    for cut in 0..tar.len() - 1024 {
        match read(&tar[..cut]) {
            Ok((_, ended)) => {
                assert!(!ended && cut % 512 == 0, "cut at {cut}");
                boundaries += 1;
            }
            Err(e) => {
                let e = e.to_string();
                let pax_alone = e.starts_with("extension headers and no member");
                assert!(e.contains("ends early") || pax_alone, "cut at {cut}: {e}");
            }
        }
    }
    assert!(boundaries > 5);
    let e = error(&tar[..512 * 3 + 100]);
    assert_eq!(e, "the archive ends early, at byte 1636");
}

#[test]
fn no_byte_changed_makes_the_reader_panic() {
    let tar = write(&sample());
    let header = |at: usize| {
        let block: &[u8; 512] = tar[at / 512 * 512..][..512].try_into().unwrap();
        checksum_ok(block)
    };
    for at in 0..tar.len() {
        for b in [0, 0x80, 0xff, b'7', b' '] {
            let mut t = tar.clone();
            t[at] = b;
            // A header's checksum made to fit, so that the field is read.
            let (start, off) = (at / 512 * 512, at % 512);
            if header(at) && !(148..156).contains(&off) {
                let h = &mut t[start..start + 512];
                h[148..156].fill(b' ');
                let sum = h.iter().map(|&b| u64::from(b)).sum();
                put_number(&mut h[148..156], sum);
            }
            let _ = read(&t);
        }
    }
}

#[test]
fn sizes_and_numbers_may_be_base_256() {
    let mut h = header(&file("big", b"").0);
    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
    h[148..156].fill(b' ');
    let sum = h.iter().map(|&b| u64::from(b)).sum();
    put_number(&mut h[148..156], sum);
    let mut data = [0u8; 512];
    data[..5].copy_from_slice(b"12345");
    let (entries, _) = read(&with_end(&[&h, &data])).unwrap();
    assert_eq!(entries[0].1, b"12345");
    // A size no archive has: its end would be past u64's.
    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    h[148..156].fill(b' ');
    let sum = h.iter().map(|&b| u64::from(b)).sum();
    put_number(&mut h[148..156], sum);
    let e = error(&with_end(&[&h, &data]));
    assert_eq!(e, "a size past any archive's end (the header at byte 0)");
    assert_eq!(number(b" 0644 \0\0"), Some(0o644));
    assert_eq!(number(b"0000755\0"), Some(0o755));
    assert_eq!(number(&[0x80, 0, 0, 1, 0, 0, 0, 0]), Some(1 << 32));
    assert_eq!(number(&[0xff; 12]), None, "past a u64");
    assert_eq!(number(b"\0\0\0\0\0\0\0\0"), None);
    assert_eq!(number(b"0009"), None);
    let mut f = [0u8; 12];
    put_number(&mut f, 1 << 40);
    assert_eq!(number(&f), Some(1 << 40));
}

#[test]
fn oversized_and_stray_extension_headers_are_refused() {
    let long_name = |size: u64| Entry {
        kind: Kind::Other(b'L'),
        path: b"././@LongLink".to_vec(),
        size,
        ..Entry::default()
    };
    let h = header(&long_name(2 << 20));
    let e = error(&with_end(&[&h]));
    assert_eq!(
        e,
        "an extension header of 2097152 bytes (at most 1048576) (the header at byte 0)"
    );
    // A long name and then the end: nothing for it to name.
    let mut data = [0u8; 512];
    data[..4].copy_from_slice(b"abc\0");
    let e = error(&with_end(&[&header(&long_name(4)), &data]));
    assert!(
        e.starts_with("extension headers and no member after them"),
        "{e}"
    );
    let e = error(&with_end(&[
        &header(&long_name(4)),
        &data,
        &header(&long_name(4)),
        &data,
    ]));
    assert!(e.starts_with("two extension headers of a kind"), "{e}");
    // PAX records whose length lies.
    let pax = Entry {
        kind: Kind::Other(b'x'),
        size: 9,
        ..Entry::default()
    };
    let mut data = [0u8; 512];
    data[..9].copy_from_slice(b"99 a=b\n\n\n");
    let e = error(&with_end(&[
        &header(&pax),
        &data,
        &header(&file("f", b"").0),
    ]));
    assert_eq!(e, "a malformed PAX record (the header at byte 1024)");
}

#[test]
fn pax_record_lengths_count_themselves() {
    let r = pax_records(&[("a".into(), b"b".to_vec())]);
    assert_eq!(r, b"6 a=b\n");
    let long = vec![b'x'; 95];
    let r = pax_records(&[("k".into(), long)]);
    assert_eq!(r.len(), 102);
    assert!(r.starts_with(b"102 k="));
}

//! Hostile image archives: each refused with one line naming what is
//! wrong, the store exactly as before, nothing written outside it.

use std::fs;

use tar::EntryType;

use crate::archives::{docker_archive, listing, oci_layout, Layer};
use crate::filesystems::Scratch;
use crate::harness::{one_error_line, R};
use crate::images::import;
use crate::{check, Env};

/// Each hostile archive is refused with one line naming what is wrong, and
/// the store, holding one image already, is exactly as before.
pub fn images_hostile_archives_are_refused_and_change_nothing(env: &Env) -> R {
    let s = Scratch::new(env, "images-hostile")?;
    let store = s.path("store");
    let outside = s.path("outside");
    fs::create_dir(&outside).map_err(|e| e.to_string())?;
    let mut ok = Layer::new();
    ok.dir("etc", 0o755).file("etc/ok", b"ok");
    fs::write(s.path("ok.tar"), ok.tar()).map_err(|e| e.to_string())?;
    import(env, &store, &s.path("ok.tar"), "ok").expect(0)?;
    let before = listing(&store);
    let one = |f: &mut dyn FnMut(&mut Layer)| {
        let mut l = Layer::new();
        l.dir("etc", 0o755);
        f(&mut l);
        l.tar()
    };
    let out = outside.to_string_lossy().into_owned();
    let good = one(&mut |l| {
        l.file("etc/x", b"x");
    });
    let mut cut = good.clone();
    cut.truncate(512 + 512 + 100);
    let mut no_end = good.clone();
    no_end.truncate(good.len() - 1024);
    let wrong_layer = s.path("wrong-layer");
    oci_layout(&wrong_layer, std::slice::from_ref(&good), true, Some(0));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            one(&mut |l| {
                l.file("etc/../../x", b"x");
            }),
            "a path with ..",
        ),
        (
            "absolute",
            one(&mut |l| {
                l.file("/etc/x", b"x");
            }),
            "an absolute path",
        ),
        (
            "through-symlink",
            one(&mut |l| {
                l.symlink("etc/out", &out).file("etc/out/pwned", b"x");
            }),
            "goes through a symlink",
        ),
        (
            "hardlink-out",
            one(&mut |l| {
                l.hardlink("etc/h", "../x");
            }),
            "hard link to \"../x\"",
        ),
        (
            "hardlink-host",
            one(&mut |l| {
                l.hardlink("etc/h", "etc/passwd");
            }),
            "not an earlier member",
        ),
        (
            "hardlink-through-symlink",
            one(&mut |l| {
                l.symlink("etc/s", "/etc").hardlink("etc/h", "etc/s/passwd");
            }),
            "not an earlier member",
        ),
        (
            "device",
            one(&mut |l| {
                l.node("etc/null", EntryType::Char, 1, 3);
            }),
            "a device node outside dev/",
        ),
        (
            "whiteout-forged",
            one(&mut |l| {
                l.dir("dev", 0o755).node("dev/x", EntryType::Char, 0, 0);
            }),
            "a 0:0 character device",
        ),
        (
            "overlay-xattr",
            one(&mut |l| {
                l.pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
                    .dir("etc/o", 0o755);
            }),
            "trusted.overlay.opaque",
        ),
        ("truncated", cut, "truncated"),
        (
            "no-end-blocks",
            no_end,
            "truncated tar (no end-of-archive blocks)",
        ),
        (
            "wrong-diff-id",
            docker_archive(
                std::slice::from_ref(&good),
                Some(vec!["2".repeat(64)]),
                false,
            ),
            "rootfs.diff_ids",
        ),
    ];
    for (name, data, want) in cases {
        let path = s.path(&format!("{name}.tar"));
        fs::write(&path, data).map_err(|e| e.to_string())?;
        one_error_line(&import(env, &store, &path, name), 125, want)
            .map_err(|e| format!("{name}: {e}"))?;
        check(listing(&store) == before, || {
            format!("{name}: the store changed")
        })?;
        check(
            fs::read_dir(&outside).map_err(|e| e.to_string())?.count() == 0,
            || format!("{name}: something was written outside"),
        )?;
    }
    let zstd = s.path("zstd.tar");
    fs::write(&zstd, [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]).map_err(|e| e.to_string())?;
    one_error_line(&import(env, &store, &zstd, "z"), 125, "zstd")?;
    one_error_line(
        &import(env, &store, &wrong_layer, "wl"),
        125,
        "digest mismatch",
    )?;
    check(listing(&store) == before, || {
        "the store changed after the digest cases".into()
    })?;
    // Not refused: a later member replaces a symlink of the same name, as
    // a file or a directory, in the layer, never through the link.
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .symlink("etc/out", &out)
        .file("etc/out", b"mine")
        .symlink("etc/d", &out)
        .dir("etc/d", 0o755);
    let path = s.path("replace.tar");
    fs::write(&path, l.tar()).map_err(|e| e.to_string())?;
    import(env, &store, &path, "replace").expect(0)?;
    let record =
        fs::read_to_string(store.join("images/replace.json")).map_err(|e| e.to_string())?;
    let id = record
        .split('"')
        .find(|w| w.len() == 64)
        .ok_or("no layer in the record")?;
    let dir = store.join("layers/sha256").join(id);
    check(
        fs::read(dir.join("etc/out")).ok().as_deref() == Some(&b"mine"[..]),
        || "etc/out is not the file the archive gave".into(),
    )?;
    check(
        fs::symlink_metadata(dir.join("etc/d")).is_ok_and(|m| m.is_dir()),
        || "etc/d is not a directory".into(),
    )?;
    check(
        fs::read_dir(&outside).map_err(|e| e.to_string())?.count() == 0,
        || "the replaced symlink was written through".into(),
    )
}

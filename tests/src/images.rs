//! The image store (issue 11): archives of every kind imported with the
//! real runner into a store in a scratch directory, checked on disk; an
//! import killed half-way leaving nothing that is used. Hostile archives:
//! images_hostile.rs.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use crate::archives::{
    self, docker_archive, listing, oci_layout, sha256, tar_of, tree_layer, Layer,
};
use crate::filesystems::Scratch;
use crate::harness::{one_error_line, R};
use crate::{check, Env, Output};

pub(crate) fn import(env: &Env, store: &Path, source: &Path, name: &str) -> Output {
    env.husk(&[
        "import",
        "--store",
        &store.to_string_lossy(),
        &source.to_string_lossy(),
        name,
    ])
}

pub(crate) fn store_cmd(env: &Env, store: &Path, cmd: &str, args: &[&str]) -> Output {
    let s = store.to_string_lossy();
    let mut all = vec![cmd, "--store", &s];
    all.extend_from_slice(args);
    env.husk(&all)
}

/// The second layer: whiteouts, an opaque directory, owners, set-ID
/// modes, a hard link, a symlink to an absolute path, xattrs, a device.
fn features_layer() -> Vec<u8> {
    let mut l = Layer::new();
    l.file(".wh.linuxrc", b"")
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", b"")
        .file("opq/kept", b"kept\n")
        .owned_file("suid", b"#!/bin/sh\n", 0o4755, 1000, 2000)
        .hardlink("suid-link", "suid")
        .symlink("sym", "/etc/passwd")
        // trusted.*, not user.*: the VMs' roots are tmpfs, which has
        // user xattrs only from Linux 6.6.
        .pax(&[("SCHILY.xattr.trusted.husk", b"yes")])
        .file("xfile", b"x\n")
        .node("dev/null2", EntryType::Char, 1, 3);
    l.tar()
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: C strings and a buffer of the length given.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

pub(crate) fn layers_in(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.join("layers/sha256"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn check_features(layer: &Path) -> R {
    let meta = |p: &str| fs::symlink_metadata(layer.join(p)).map_err(|e| format!("{p}: {e}"));
    let wh = meta("linuxrc")?;
    check(wh.file_type().is_char_device() && wh.rdev() == 0, || {
        format!(
            "linuxrc is not a 0:0 whiteout: mode {:o} rdev {}",
            wh.mode(),
            wh.rdev()
        )
    })?;
    check(
        xattr(&layer.join("opq"), "trusted.overlay.opaque").as_deref() == Some(b"y"),
        || "opq has no trusted.overlay.opaque=y".into(),
    )?;
    check(
        meta("opq/kept").is_ok() && meta("opq/.wh..wh..opq").is_err(),
        || "opq/kept missing or the marker written as a file".into(),
    )?;
    let s = meta("suid")?;
    check(
        s.mode() & 0o7777 == 0o4755 && s.uid() == 1000 && s.gid() == 2000,
        || format!("suid: mode {:o} owner {}:{}", s.mode(), s.uid(), s.gid()),
    )?;
    check(s.mtime() as u64 == archives::MTIME, || {
        format!("suid: mtime {}", s.mtime())
    })?;
    let h = meta("suid-link")?;
    check(h.ino() == s.ino() && s.nlink() == 2, || {
        "suid-link is not a hard link of suid".into()
    })?;
    let target = fs::read_link(layer.join("sym")).map_err(|e| e.to_string())?;
    check(target == Path::new("/etc/passwd"), || {
        format!("sym -> {target:?}")
    })?;
    check(
        xattr(&layer.join("xfile"), "trusted.husk").as_deref() == Some(b"yes"),
        || "xfile lost its trusted.husk xattr".into(),
    )?;
    let d = meta("dev/null2")?;
    check(
        d.file_type().is_char_device() && d.rdev() == libc::makedev(1, 3),
        || format!("dev/null2: rdev {:x}", d.rdev()),
    )
}

/// An OCI layout, an oci-archive (gzip layers) and a docker-archive of the
/// same two layers import as three images sharing two layer directories;
/// a plain rootfs tar shares the first; rmi removes what none uses.
pub fn images_import_from_every_kind_of_archive_and_share_layers(env: &Env) -> R {
    let s = Scratch::new(env, "images")?;
    let store = s.path("store");
    let base = tree_layer(&env.rootfs);
    let layers = vec![base.clone(), features_layer()];
    let ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    oci_layout(&s.path("layout"), &layers, false, None);
    oci_layout(&s.path("gz"), &layers, true, None);
    fs::write(s.path("oci.tar"), tar_of(&s.path("gz"))).map_err(|e| e.to_string())?;
    fs::write(s.path("docker.tar"), docker_archive(&layers, None, false))
        .map_err(|e| e.to_string())?;
    fs::write(s.path("docker25.tar"), docker_archive(&layers, None, true))
        .map_err(|e| e.to_string())?;
    fs::write(s.path("rootfs.tar"), &base).map_err(|e| e.to_string())?;
    for (src, name) in [
        ("layout", "a"),
        ("oci.tar", "b:1"),
        ("docker.tar", "c"),
        ("docker25.tar", "d"),
    ] {
        import(env, &store, &s.path(src), name).expect(0)?;
    }
    check(
        layers_in(&store) == {
            let mut i = ids.clone();
            i.sort();
            i
        },
        || format!("layers {:?}, wanted {ids:?}", layers_in(&store)),
    )?;
    check_features(&store.join("layers/sha256").join(&ids[1]))?;
    let busybox = store
        .join("layers/sha256")
        .join(&ids[0])
        .join("bin/busybox");
    check(
        fs::read(&busybox).ok() == fs::read(env.rootfs.join("bin/busybox")).ok(),
        || "bin/busybox differs from the rootfs's".into(),
    )?;
    let record = fs::read_to_string(store.join("images/b:1.json")).map_err(|e| e.to_string())?;
    for want in [
        "\"HUSK=image\"",
        "\"/bin/env\"",
        "\"echo hi\"",
        "\"/srv\"",
        "\"1000:1000\"",
        &ids[1],
    ] {
        check(record.contains(want), || {
            format!("the record lacks {want}:\n{record}")
        })?;
    }
    import(env, &store, &s.path("rootfs.tar"), "plain").expect(0)?;
    import(env, &store, &env.rootfs, "dir").expect(0)?;
    let out = store_cmd(env, &store, "images", &[]);
    out.expect(0)?;
    for name in ["a ", "b:1 ", "c ", "d ", "plain ", "dir "] {
        check(out.stdout.lines().any(|l| l.starts_with(name)), || {
            format!("images lacks {name}\n{out}")
        })?;
    }
    check(layers_in(&store).len() == 3, || {
        format!("plain shares no layer: {:?}", layers_in(&store))
    })?;
    store_cmd(env, &store, "rmi", &["a", "b:1"]).expect(0)?;
    check(layers_in(&store).len() == 3, || {
        "rmi removed a layer c uses".into()
    })?;
    store_cmd(env, &store, "rmi", &["c", "d", "dir"]).expect(0)?;
    check(layers_in(&store) == [ids[0].clone()], || {
        format!("after rmi: {:?}", layers_in(&store))
    })?;
    one_error_line(
        &store_cmd(env, &store, "rmi", &["c"]),
        125,
        "image c: not in the store",
    )?;
    one_error_line(
        &import(env, &store, &s.path("rootfs.tar"), "Bad/Name"),
        125,
        "image name",
    )?;
    store_cmd(env, &store, "rmi", &["plain"]).expect(0)?;
    check(
        layers_in(&store).is_empty()
            && fs::read_dir(store.join("tmp"))
                .map_err(|e| e.to_string())?
                .count()
                == 0,
        || "the store is not empty after the last rmi".into(),
    )
}

/// `runner import` killed (SIGKILL) half-way through a layer, then just
/// before its record: no half layer in layers/, nothing listed, and the
/// next import sweeps what was left.
pub fn images_a_killed_import_leaves_nothing_used(env: &Env) -> R {
    let s = Scratch::new(env, "images-kill")?;
    let store = s.path("store");
    let layers = vec![tree_layer(&env.rootfs)];
    oci_layout(&s.path("layout"), &layers, true, None);
    let mut small = Layer::new();
    small.dir("d", 0o755).file("d/f", b"f");
    fs::write(s.path("small.tar"), small.tar()).map_err(|e| e.to_string())?;
    import(env, &store, &s.path("small.tar"), "small").expect(0)?;
    let before = listing(&store);
    for at in ["layer", "record"] {
        let mut c = env.husk_command(&[
            "import",
            "--store",
            &store.to_string_lossy(),
            &s.path("layout").to_string_lossy(),
            "big",
        ]);
        c.env("HUSK_IMPORT_KILL_AT", at);
        let out = crate::output(&mut c);
        check(out.status == 137, || format!("{at}: not killed\n{out}"))?;
        let left = fs::read_dir(store.join("tmp"))
            .map_err(|e| e.to_string())?
            .count();
        let images = store_cmd(env, &store, "images", &[]);
        images.expect(0)?;
        check(!images.stdout.contains("big"), || {
            format!("{at}: a killed import is listed\n{images}")
        })?;
        if at == "layer" {
            check(left > 0, || {
                "the knob killed nothing half-way (tmp/ is empty)".into()
            })?;
            check(layers_in(&store).len() == 1, || {
                format!("a half layer in layers/: {:?}", layers_in(&store))
            })?;
        }
        // The next change sweeps tmp/ and layers no image names.
        store_cmd(env, &store, "rmi", &["small"]).expect(0)?;
        import(env, &store, &s.path("small.tar"), "small").expect(0)?;
        let after = listing(&store);
        let same = after
            .iter()
            .filter(|(p, _)| !p.starts_with("images"))
            .eq(before.iter().filter(|(p, _)| !p.starts_with("images")));
        check(same, || {
            format!(
                "{at}: leftovers after the next import: {:?}",
                after.keys().collect::<Vec<_>>()
            )
        })?;
    }
    import(env, &store, &s.path("layout"), "big").expect(0)?;
    check(layers_in(&store).len() == 2, || {
        "the import after the kills failed".into()
    })?;
    let mode = fs::metadata(&store)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    check(mode & 0o777 == 0o700, || {
        format!("the store is {mode:o}, not 0700")
    })?;
    Ok(())
}

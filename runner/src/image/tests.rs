//! The store on a scratch directory: a plain tree imported, an overlay
//! upper committed on top of it (whiteouts there and back), exported,
//! removed. Whiteouts and trusted xattrs need root; without it the test
//! says so and stops.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::*;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("husk-image-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn mknod_whiteout(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a C string.
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) },
        0,
        "mknod {path:?}"
    );
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: C strings and a buffer of the length given.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn an_upper_dir_commits_as_a_layer_with_oci_whiteouts_and_back() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: whiteouts are device nodes and trusted xattrs, which need root");
        return;
    }
    let top = scratch("commit");
    let (base, upper) = (top.join("base"), top.join("upper"));
    fs::create_dir_all(base.join("etc/conf.d")).unwrap();
    fs::write(base.join("etc/gone"), "x").unwrap();
    fs::write(base.join("etc/conf.d/old"), "old").unwrap();
    std::os::unix::fs::symlink("/etc/gone", base.join("link")).unwrap();
    fs::hard_link(base.join("etc/gone"), base.join("etc/gone2")).unwrap();
    let store = Store::open(&top.join("store")).unwrap();
    let img = store.import(&base, "base").unwrap();
    assert_eq!(img.layers.len(), 1);

    fs::create_dir_all(upper.join("etc/conf.d")).unwrap();
    mknod_whiteout(&upper.join("etc/gone"));
    let c = CString::new(upper.join("etc/conf.d").as_os_str().as_bytes()).unwrap();
    // SAFETY: C strings and a one-byte value.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(r, 0);
    fs::write(upper.join("etc/conf.d/new"), "new").unwrap();

    let mut tar = Vec::new();
    pack::pack(
        at::open_dir_path(&upper).unwrap().as_fd(),
        &mut tar,
        Whiteouts::ToOci,
        "t",
    )
    .unwrap();
    let names: Vec<String> = ::tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"etc/.wh.gone".to_string()), "{names:?}");
    assert!(
        names.contains(&"etc/conf.d/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("etc/gone")), "{names:?}");

    let committed = store.commit(&img, &upper, "base:2").unwrap();
    assert_eq!(committed.layers.len(), 2);
    assert_eq!(committed.layers[0], img.layers[0]);
    let layer = store.layer_dir(&committed.layers[1]);
    let wh = fs::symlink_metadata(layer.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(
        xattr(&layer.join("etc/conf.d"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(store.images().unwrap().len(), 2);

    // The base layer exports as the tree it came from: the hard link and
    // the symlink as they were.
    let mut out = Vec::new();
    export(&store.layer_dir(&img.layers[0]), &mut out).unwrap();
    let mut kinds = Vec::new();
    for e in ::tar::Archive::new(&out[..]).entries().unwrap() {
        let e = e.unwrap();
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        kinds.push((
            e.path().unwrap().display().to_string(),
            e.header().entry_type(),
            link,
        ));
    }
    assert!(
        kinds.contains(&(
            "link".into(),
            ::tar::EntryType::Symlink,
            Some("/etc/gone".into())
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|(_, t, l)| *t == ::tar::EntryType::Link
            && l.as_deref().is_some_and(|l| l.contains("etc/gone"))),
        "{kinds:?}"
    );

    assert!(store
        .remove("base", &|n| n == "base")
        .unwrap_err()
        .message
        .contains("a container uses it"));
    store.remove("base:2", &|_| false).unwrap();
    assert!(
        store.layer_dir(&img.layers[0]).is_dir(),
        "base still needs its layer"
    );
    store.remove("base", &|_| false).unwrap();
    assert!(fs::read_dir(store.dir().join("layers/sha256"))
        .unwrap()
        .next()
        .is_none());
    let e = store.image("base").unwrap_err().message;
    assert!(e.starts_with("image base: not in the store "), "{e}");

    // remove_tree takes a tree with a 000 directory in it.
    fs::create_dir_all(top.join("work/work/x")).unwrap();
    fs::set_permissions(
        top.join("work/work"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    remove_tree(&top, "work").unwrap();
    assert!(!top.join("work").exists());
    fs::remove_dir_all(&top).unwrap();
}

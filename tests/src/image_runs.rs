//! Containers run from imported images: the layers' whiteouts and opaque
//! directories seen from inside, the image's defaults, two containers on
//! one image apart, the layers unchanged, commit, export and rmi.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::archives::{docker_archive, listing, oci_layout, tree_layer, Layer};
use crate::filesystems::{RmOnDrop, Scratch};
use crate::harness::{collect, one_error_line, R};
use crate::{check, Env, Output};

/// `runner CMD --store STORE ARGS...`.
fn in_store(env: &Env, store: &Path, cmd: &str, args: &[&str]) -> Output {
    let s = store.display().to_string();
    let mut all = vec![cmd, "--store", &s];
    all.extend_from_slice(args);
    env.husk(&all)
}

/// The busybox rootfs, then a layer with a file and a directory the next
/// deletes and makes opaque (and what the image's config names: /bin/env
/// as its entrypoint, /srv as its working directory), then that layer.
fn layers_with_whiteouts(env: &Env) -> Vec<Vec<u8>> {
    let mut extra = Layer::new();
    extra
        .file("etc/gone", b"deleted by the next layer\n")
        .dir("opq", 0o755)
        .file("opq/a", b"a\n")
        .file("opq/b", b"b\n")
        .symlink("bin/env", "/bin/busybox")
        .dir("srv", 0o755);
    let mut top = Layer::new();
    top.file("etc/.wh.gone", b"")
        .dir("opq", 0o755)
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new\n");
    vec![tree_layer(&env.rootfs), extra.tar(), top.tar()]
}

pub fn images_run_with_their_layers_defaults_and_commit(env: &Env) -> R {
    let s = Scratch::new(env, "imageruns")?;
    let store = s.path("store");
    let archive = s.path("wh.tar");
    let layers = layers_with_whiteouts(env);
    fs::write(&archive, docker_archive(&layers, None, false)).map_err(|e| e.to_string())?;
    let import = |source: &Path, name: &str| {
        in_store(
            env,
            &store,
            "import",
            &[&source.display().to_string(), name],
        )
    };
    import(&archive, "wh").expect(0)?;
    // The same layers as an OCI layout, gzipped: one more image, no more
    // layers.
    let oci = s.path("oci");
    oci_layout(&oci, &layers, true, None);
    import(&oci, "wh-oci").expect(0)?;
    let layers = store.join("layers");
    let before = listing(&layers);
    let count = fs::read_dir(layers.join("sha256"))
        .map_err(|e| e.to_string())?
        .count();
    check(count == 3, || {
        format!("{count} layer directories for two images of the same 3")
    })?;

    // Inside: the deleted file is gone, the opaque directory holds only
    // the top layer's file; the config's Env, User, WorkingDir and
    // Entrypoint (env, which runs the command given) are the defaults.
    let script = "ls /opq; test -e /etc/gone; echo gone=$?; echo $HUSK; id -u; pwd";
    for image in ["wh", "wh-oci"] {
        let out = in_store(
            env,
            &store,
            "run",
            &["--image", image, "--", "sh", "-c", script],
        );
        out.expect(0)?;
        check(out.stdout == "new\ngone=1\nimage\n1000\n/srv\n", || {
            format!("inside the image {image}\n{out}")
        })?;
    }
    // Its layers are wh's too: they stay.
    in_store(env, &store, "rmi", &["wh-oci"]).expect(0)?;
    check(before == listing(&layers), || {
        "rmi of an image removed layers another image has".into()
    })?;
    // Without a command: the entrypoint and the image's Cmd.
    let out = in_store(env, &store, "run", &["--image", "wh"]);
    check(out.status == 0 && out.stdout == "hi\n", || {
        format!("the image's own command\n{out}")
    })?;

    // Two at once: each sees its own write only.
    let pid = std::process::id();
    let spawn = |n: &str, keep: bool| {
        let name = format!("husk-img-{n}-{pid}");
        let script =
            format!("echo {n} > /mine; rm /opq/new; sleep 0.5; cat /mine; ls /opq | wc -l");
        let st = store.display().to_string();
        let mut args = vec![
            "run", "--store", &st, "--image", "wh", "--name", &name, "-u", "0",
        ];
        if keep {
            args.push("--keep");
        }
        args.extend(["--", "sh", "-c", &script]);
        let mut c = env.husk_command(&args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().map_err(|e| e.to_string())
    };
    let _rm = RmOnDrop(env, format!("husk-img-a-{pid}"));
    let (a, b) = (spawn("a", true)?, spawn("b", false)?);
    for (n, child) in [("a", a), ("b", b)] {
        let out = collect(child, Duration::from_secs(60))?;
        check(out.status == 0 && out.stdout == format!("{n}\n0\n"), || {
            format!("container {n}\n{out}")
        })?;
    }
    check(before == listing(&layers), || {
        "the image's layers changed under its containers".into()
    })?;

    // In use by the kept container: rmi refuses, and changes nothing.
    let kept = format!("husk-img-a-{pid}");
    let refused = in_store(env, &store, "rmi", &["wh"]);
    one_error_line(&refused, 125, "image wh: a container uses it")?;
    check(before == listing(&layers), || {
        "a refused rmi changed the layers".into()
    })?;

    // commit: one more layer, with the kept container's writes (and its
    // deletion as a whiteout), run as an image of its own.
    in_store(env, &store, "commit", &[&kept, "wh2"]).expect(0)?;
    let images = in_store(env, &store, "images", &[]);
    check(
        images.stdout.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.first() == Some(&"wh2") && w.get(1) == Some(&"4")
        }),
        || format!("wh2 is not an image of 4 layers\n{images}"),
    )?;
    let script = "cat /mine; ls /opq | wc -l; test -e /etc/gone; echo gone=$?";
    let out = in_store(
        env,
        &store,
        "run",
        &["--image", "wh2", "--", "sh", "-c", script],
    );
    check(out.status == 0 && out.stdout == "a\n0\ngone=1\n", || {
        format!("the committed image\n{out}")
    })?;

    // export: the merged root, as the container saw it.
    let tar_path = s.path("a.tar");
    env.husk(&["export", &kept, &tar_path.display().to_string()])
        .expect(0)?;
    let names = tar_names(&tar_path)?;
    let has = |n: &str| names.iter().any(|x| x.trim_end_matches('/') == n);
    check(
        has("mine") && has("bin/busybox") && has("opq") && !has("opq/new") && !has("etc/gone"),
        || format!("the export holds {} names: {names:?}", names.len()),
    )?;

    // A --rootfs container: export writes its directory; commit, having
    // no image to go on top of, is one line.
    let plain = format!("husk-img-plain-{pid}");
    let _rm_plain = RmOnDrop(env, plain.clone());
    env.husk(&[
        "run",
        "--keep",
        "--name",
        &plain,
        "--rootfs",
        &env.rootfs.display().to_string(),
        "--",
        "true",
    ])
    .expect(0)?;
    let refused = in_store(env, &store, "commit", &[&plain, "plain"]);
    one_error_line(&refused, 125, "was not started from an image")?;
    let plain_tar = s.path("plain.tar");
    env.husk(&["export", &plain, &plain_tar.display().to_string()])
        .expect(0)?;
    let names = tar_names(&plain_tar)?;
    check(
        names.iter().any(|n| n == "bin/husk-probe") && names.iter().any(|n| n == "bin/busybox"),
        || {
            format!(
                "the export of a --rootfs container holds {} names",
                names.len()
            )
        },
    )?;
    env.husk(&["rm", &plain]).expect(0)?;

    // An image or a layer that is not there: one line, nothing made.
    let out = in_store(env, &store, "run", &["--image", "nope", "--", "true"]);
    one_error_line(&out, 125, "image nope: not in the store")?;
    let out = env.husk(&["run", "--layer", "/no/such/layer", "--", "true"]);
    one_error_line(&out, 125, "--layer /no/such/layer: ENOENT")?;

    // Once the container is gone, the images go, and their layers with
    // them.
    env.husk(&["rm", &kept]).expect(0)?;
    in_store(env, &store, "rmi", &["wh2", "wh"]).expect(0)?;
    let left: Vec<_> = fs::read_dir(layers.join("sha256"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    check(left.is_empty(), || {
        format!("layers left after rmi: {left:?}")
    })
}

/// The member names of a tar, without a leading "./".
fn tar_names(path: &Path) -> Result<Vec<String>, String> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut names = Vec::new();
    for e in tar::Archive::new(file)
        .entries()
        .map_err(|e| e.to_string())?
    {
        let e = e.map_err(|e| e.to_string())?;
        let p = e.path().map_err(|e| e.to_string())?;
        names.push(p.display().to_string().trim_start_matches("./").to_string());
    }
    Ok(names)
}

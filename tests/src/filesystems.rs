//! Volumes, tmpfs, a read-only root and overlay roots: what a container
//! writes lands where it should and nowhere else, and a hostile rootfs
//! cannot send a mount point outside itself.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{has_opts, mount_at, one_error_line, TempRootfs, R};
use crate::{check, output, Env, Output};

/// A scratch directory beside the test rootfs (not /tmp, which is nodev
/// in the VMs), removed when dropped, with whatever the test mounted in
/// it unmounted first.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Scratch {
    pub(crate) fn new(env: &Env, tag: &str) -> Result<Scratch, String> {
        let dir = env
            .rootfs
            .parent()
            .unwrap_or(Path::new("/tmp"))
            .join(format!("husk-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        // Reachable for the unprivileged users the scenarios run as.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        Ok(Scratch {
            dir,
            mounted: Vec::new(),
        })
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub(crate) fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Writes `rel` (and its parents).
    pub(crate) fn write(&self, rel: &str, text: &str) -> R {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))
    }

    /// A tmpfs on `rel`, on the host: a submount for the tests to see.
    fn mount_tmpfs(&mut self, rel: &str) -> R {
        let p = self.path(rel);
        fs::create_dir_all(&p).map_err(|e| e.to_string())?;
        let target = CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: mount reads the C strings given during the call.
        let r = unsafe {
            libc::mount(
                c"husk-test".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=64k".as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(format!(
                "mount tmpfs on {}: {}",
                p.display(),
                std::io::Error::last_os_error()
            ));
        }
        self.mounted.push(p);
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in self.mounted.iter().rev() {
            if let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) {
                // SAFETY: umount2 reads the C string during the call.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `runner rm -f NAME` when dropped: a kept container a failing check
/// left is removed all the same.
pub(crate) struct RmOnDrop<'a>(pub(crate) &'a Env, pub(crate) String);

impl Drop for RmOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.husk(&["rm", "-f", &self.1]);
    }
}

/// `key=value` lines of a script's output.
fn said(out: &Output) -> BTreeMap<&str, &str> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect()
}

/// Writes through volumes, read-only ones refusing also in a host mount
/// below them, a file bound on a file, with and without mount_setattr.
pub fn volumes_bind_host_paths_and_ro_holds_below(env: &Env) -> R {
    let mut s = Scratch::new(env, "volumes")?;
    s.write("data/old", "from the host\n")?;
    s.write("file", "a file\n")?;
    s.mount_tmpfs("data/sub")?;
    let script = "echo hi > /data/new; echo w=$?; cat /data/old; cat /etc/bound; \
                  echo x 2>/dev/null > /ro/y; echo ro=$?; \
                  echo x 2>/dev/null > /ro/sub/y; echo rosub=$?; \
                  echo x > /data/sub/z; echo sub=$?; \
                  echo x 2>/dev/null > /etc/bound; echo file=$?; \
                  cat /proc/self/mountinfo";
    for pretend in ["", "mount_setattr"] {
        let (data, ro, file) = (
            format!("{}:/data", s.s("data")),
            format!("{}:/ro:ro", s.s("data")),
            format!("{}:/etc/bound:ro", s.s("file")),
        );
        let mut c = env.command(
            &["-v", &data, "-v", &ro, "--volume", &file],
            &["sh", "-c", script],
        );
        c.env("HUSK_PRETEND_ENOSYS", pretend);
        let out = output(&mut c);
        out.expect(0)?;
        let f = said(&out);
        let want = [
            ("w", "0"),
            ("ro", "1"),
            ("rosub", "1"),
            ("sub", "0"),
            ("file", "1"),
        ];
        for (k, v) in want {
            check(f.get(k) == Some(&v), || {
                format!("pretending {pretend:?}: {k} should be {v}\n{out}")
            })?;
        }
        check(
            out.stdout.contains("from the host\n") && out.stdout.contains("a file\n"),
            || format!("the host's files are not seen\n{out}"),
        )?;
        let host_new = fs::read_to_string(s.path("data/new")).unwrap_or_default();
        check(host_new == "hi\n", || {
            format!("the host sees {host_new:?} in data/new")
        })?;
        check(
            s.path("data/sub/z").exists()
                && !s.path("data/y").exists()
                && !s.path("data/sub/y").exists(),
            || "the writes did not land as they should on the host".into(),
        )?;
        let mi = &out.stdout;
        for (mp, opts) in [
            ("/data", &["rw", "nodev"][..]),
            ("/data/sub", &["rw", "nodev"]),
            ("/ro", &["ro", "nodev"]),
            ("/ro/sub", &["ro", "nodev"]),
            ("/etc/bound", &["ro", "nodev"]),
        ] {
            let (o, _, _) = mount_at(mi, mp).ok_or_else(|| format!("no {mp} in\n{mi}"))?;
            check(has_opts(o, opts), || {
                format!("pretending {pretend:?}: {mp} is {o}, wanted {opts:?}")
            })?;
        }
        fs::remove_file(s.path("data/new")).map_err(|e| e.to_string())?;
        fs::remove_file(s.path("data/sub/z")).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// --read-only: / refuses writes, programs still run, a tmpfs and a
/// volume still take them.
pub fn read_only_root_keeps_tmpfs_and_volumes_writable(env: &Env) -> R {
    let s = Scratch::new(env, "readonly")?;
    fs::create_dir_all(s.path("v")).map_err(|e| e.to_string())?;
    let vol = format!("{}:/v", s.s("v"));
    let script = "touch /x 2>/dev/null; echo root=$?; echo a > /scratch/a; echo tmpfs=$?; \
                  echo b > /v/b; echo vol=$?; stat -c mode=%a /scratch; cat /proc/self/mountinfo";
    let out = env.run(
        &[
            "--read-only",
            "--tmpfs",
            "/scratch:size=1m,mode=1777",
            "-v",
            &vol,
        ],
        &["sh", "-c", script],
    );
    out.expect(0)?;
    let f = said(&out);
    for (k, v) in [
        ("root", "1"),
        ("tmpfs", "0"),
        ("vol", "0"),
        ("mode", "1777"),
    ] {
        check(f.get(k) == Some(&v), || format!("{k} should be {v}\n{out}"))?;
    }
    let mi = &out.stdout;
    let (o, _, _) = mount_at(mi, "/").ok_or("no /")?;
    check(has_opts(o, &["ro", "nodev"]), || format!("/ is {o}"))?;
    let (o, t, sopts) = mount_at(mi, "/scratch").ok_or("no /scratch")?;
    check(
        t == "tmpfs"
            && has_opts(o, &["rw", "nosuid", "nodev", "noexec"])
            && has_opts(sopts, &["size=1024k"]),
        || format!("/scratch is {t} {o} {sopts}"),
    )?;
    check(s.path("v/b").exists(), || {
        "the volume's write is not on the host".into()
    })?;
    // The rootfs itself stays writable to the host: only the container's
    // view of it is read-only.
    let out = env.run(&[], &["sh", "-c", "touch /tmp/husk-rw && rm /tmp/husk-rw"]);
    out.expect(0).map(drop)
}

/// Mount points behind symlinks in a hostile rootfs: refused, nothing made
/// outside (runc's CVE-2021-30465 and CVE-2024-45310 classes, for volumes
/// and tmpfs).
pub fn volume_and_tmpfs_targets_never_follow_symlinks(env: &Env) -> R {
    let r = TempRootfs::new(env, "voltarget")?;
    let s = Scratch::new(env, "volsrc")?;
    s.write("src/f", "x")?;
    symlink(&r.outside, r.dir.join("abs")).map_err(|e| e.to_string())?;
    symlink("../outside", r.dir.join("rel")).map_err(|e| e.to_string())?;
    symlink(r.outside.join("missing"), r.dir.join("dangling")).map_err(|e| e.to_string())?;
    let src = s.s("src");
    for target in ["/abs/x", "/rel/x", "/dangling", "/abs", "/dangling/deep/er"] {
        for flag in ["-v", "--tmpfs"] {
            let arg = match flag {
                "-v" => format!("{src}:{target}"),
                _ => target.to_string(),
            };
            let mut c = Command::new(&env.runner);
            c.arg("--rootfs")
                .arg(&r.dir)
                .args([flag, &arg, "--", "true"])
                .stdin(Stdio::null());
            let out = output(&mut c);
            one_error_line(&out, 125, "ELOOP").map_err(|e| format!("{flag} {arg}: {e}"))?;
            r.outside_is_untouched()
                .map_err(|e| format!("{flag} {arg}: {e}"))?;
        }
    }
    Ok(())
}

/// A listing of a tree: path, type, mode, owner, size, and the contents
/// of its files and links, to compare a layer before and after.
fn fingerprint(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
            let what = if m.file_type().is_symlink() {
                fs::read_link(&p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default()
            } else if m.is_file() {
                let b = fs::read(&p).unwrap_or_default();
                format!(
                    "{} bytes, sum {}",
                    b.len(),
                    b.iter().map(|&x| x as u64).sum::<u64>()
                )
            } else {
                String::new()
            };
            out.push(format!(
                "{} {:o} {}:{} {} {what}",
                p.strip_prefix(dir).unwrap_or(&p).display(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime()
            ));
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(out)
}

/// Two containers at once on one set of layers: each sees its own writes
/// only, the layers are unchanged after; --keep keeps the writable layer
/// until rm.
pub fn overlay_roots_share_layers_and_keep_writes_apart(env: &Env) -> R {
    let s = Scratch::new(env, "layers")?;
    s.write("top/etc/motd", "from the top layer\n")?;
    s.write("top/gone/file", "x")?;
    let (base, top) = (env.rootfs.display().to_string(), s.s("top"));
    let before = (fingerprint(&env.rootfs)?, fingerprint(&s.path("top"))?);
    let script = |n: &str| {
        format!(
            "echo {n} > /mine-{n}; echo changed-{n} >> /etc/motd; rm -r /gone; \
             sleep 0.5; ls / | grep mine- | tr '\\n' ' '; echo; cat /etc/motd; \
             ls /gone 2>/dev/null; echo gone=$?; awk '$5 == \"/\"' /proc/self/mountinfo"
        )
    };
    let spawn = |n: &str, keep: bool| {
        let name = format!("husk-layers-{n}-{}", std::process::id());
        let mut c = Command::new(&env.runner);
        c.args(["--layer", &base, "--layer", &top, "--name", &name]);
        if keep {
            c.arg("--keep");
        }
        c.args(["--", "sh", "-c", &script(n)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().map_err(|e| e.to_string())
    };
    let _rm = RmOnDrop(env, format!("husk-layers-a-{}", std::process::id()));
    let (a, b) = (spawn("a", true)?, spawn("b", false)?);
    let outs = [a, b].map(|c| crate::harness::collect(c, std::time::Duration::from_secs(60)));
    for (n, out) in ["a", "b"].iter().zip(outs) {
        let out = out?;
        out.expect(0)?;
        let want = format!("mine-{n} \nfrom the top layer\nchanged-{n}\ngone=1\n");
        check(out.stdout.starts_with(&want), || {
            format!("container {n}: wanted {want:?}\n{out}")
        })?;
        let line = out.stdout.lines().last().unwrap_or("");
        check(
            line.contains(" - overlay ") && line.contains(" rw,nodev"),
            || format!("container {n}'s root is not a nodev overlay: {line}"),
        )?;
    }
    check(
        before == (fingerprint(&env.rootfs)?, fingerprint(&s.path("top"))?),
        || "a layer changed".into(),
    )?;
    // Kept: the upper layer holds a's writes (and a whiteout) until rm.
    let a = format!("husk-layers-a-{}", std::process::id());
    let entry = Path::new(crate::host::STORE).join(&a);
    let upper = entry.join("upper");
    let kept = fs::read_to_string(upper.join("mine-a")).unwrap_or_default();
    let whiteout = fs::symlink_metadata(upper.join("gone"))
        .map(|m| m.file_type().is_char_device() && m.rdev() == 0);
    let rm = env.husk(&["rm", &a]);
    check(kept == "a\n" && matches!(whiteout, Ok(true)), || {
        format!("the kept upper layer of {a} holds {kept:?}, gone: {whiteout:?}")
    })?;
    rm.expect(0)?;
    check(!entry.exists(), || {
        format!("{} is left after rm", entry.display())
    })?;
    check(
        !Path::new(crate::host::STORE)
            .join(format!("husk-layers-b-{}", std::process::id()))
            .exists(),
        || "the entry of b (not kept) is left".into(),
    )
}

/// More layers than one overlay option holds: mounted a layer at a time
/// where the kernel can (6.8), else one line that says the limit.
pub fn many_layers_mount_or_say_the_limit(env: &Env) -> R {
    let s = Scratch::new(env, "manylayers")?;
    let mut args = vec!["--layer".to_string(), env.rootfs.display().to_string()];
    for i in 0..40 {
        s.write(&format!("l{i}/layer{i}"), &format!("{i}\n"))?;
        s.write(&format!("l{i}/which"), &format!("{i}\n"))?;
        args.push("--layer".into());
        args.push(s.s(&format!("l{i}")));
    }
    args.extend(["--", "sh", "-c", "cat /which; ls / | grep -c layer"].map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.husk(&argv);
    if out.status == 0 {
        return check(out.stdout == "39\n40\n", || {
            format!("wanted the top layer's file and 40 layers\n{out}")
        });
    }
    one_error_line(&out, 125, "41 layers do not fit in one overlay option")?;
    check(out.stderr.contains("Linux 6.8"), || format!("{out}"))
}

/// A failure before each step of a plan with an overlay root, a volume and
/// a tmpfs leaves nothing: no mount, no entry (its upper layer with it).
pub fn a_failure_at_every_step_with_layers_and_volumes_leaves_nothing(env: &Env) -> R {
    let s = Scratch::new(env, "failsteps")?;
    fs::create_dir_all(s.path("v")).map_err(|e| e.to_string())?;
    let (base, vol) = (
        env.rootfs.display().to_string(),
        format!("{}:/v:ro", s.s("v")),
    );
    crate::hardening::fail_at_each_step(|| {
        let mut c = Command::new(&env.runner);
        c.args(["--layer", &base, "-v", &vol, "--tmpfs", "/t", "--read-only"])
            .args(["--memory", "32M", "--", "true"])
            .stdin(Stdio::null());
        c
    })
}

/// A runner killed with an overlay root: the next command removes its
/// entry and the upper layer in it, or, with --keep, keeps both as a
/// stopped container that `rm` removes.
pub fn a_killed_runners_overlay_is_swept_or_kept(env: &Env) -> R {
    let base = env.rootfs.display().to_string();
    for keep in [false, true] {
        let name = format!("husk-killed-overlay-{}-{keep}", std::process::id());
        let mut args = vec!["--layer", &base, "--name", &name];
        if keep {
            args.push("--keep");
        }
        args.extend([
            "--",
            "/bin/sh",
            "-c",
            "echo x > /written; echo ready; exec sleep 100",
        ]);
        let r = crate::harness::Running::spawn(env.husk_command(&args))?;
        let entry = Path::new(crate::host::STORE).join(&name);
        check(entry.join("upper/written").exists(), || {
            format!(
                "no upper layer with the container's write in {}",
                entry.display()
            )
        })?;
        r.signal(libc::SIGKILL);
        r.finish(std::time::Duration::from_secs(20))?;
        env.husk(&["ps", "-a"]).expect(0)?;
        if !keep {
            check(!entry.exists(), || {
                format!("{} is left after the next command", entry.display())
            })?;
            continue;
        }
        let inspect = env.husk(&["inspect", &name]);
        check(
            inspect.stdout.contains("\"status\": \"stopped\"")
                && entry.join("upper/written").exists(),
            || format!("the kept container is not stopped with its upper layer\n{inspect}"),
        )?;
        env.husk(&["rm", &name]).expect(0)?;
        check(!entry.exists(), || {
            format!("{} is left after rm", entry.display())
        })?;
    }
    Ok(())
}

//! Mounts: /proc, /sys, /dev and its nodes, devpts, and the root: the
//! old one unreachable, pivoted or refused where that cannot work.

use std::ffi::CStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use crate::harness::{has_opts, lines, mount_at, one_error_line, R};
use crate::{check, host, output, Env, Output};

pub fn proc_sys_and_dev_mount_options(env: &Env) -> R {
    let out = env.run(&[], &["cat", "/proc/self/mountinfo"]);
    out.expect(0)?;
    let mi = &out.stdout;
    let want: [(&str, &str, &[&str], &[&str]); 6] = [
        ("/proc", "proc", &["rw", "nosuid", "nodev", "noexec"], &[]),
        ("/sys", "sysfs", &["ro", "nosuid", "nodev", "noexec"], &[]),
        (
            "/dev",
            "tmpfs",
            &["rw", "nosuid", "nodev"],
            &["mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            &["nosuid", "noexec"],
            &["mode=620", "ptmxmode=666", "gid=5"],
        ),
        // tmpfs shows its mode only when it is not the default 1777
        // (dev_nodes_are_the_right_devices checks it).
        (
            "/dev/shm",
            "tmpfs",
            &["nosuid", "nodev", "noexec"],
            &["size=65536k"],
        ),
        ("/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"], &[]),
    ];
    for (mp, fstype, opts, sopts) in want {
        let (o, t, s) = mount_at(mi, mp).ok_or_else(|| format!("nothing mounted on {mp}\n{mi}"))?;
        check(
            t == fstype && has_opts(o, opts) && has_opts(s, sopts),
            || format!("{mp}: {t} {o} {s}; wanted {fstype} {opts:?} {sopts:?}"),
        )?;
    }
    // nodev everywhere a container can make a node: see
    // device_nodes_a_container_makes_do_not_open.
    let (o, _, _) = mount_at(mi, "/").ok_or_else(|| format!("no / in\n{mi}"))?;
    check(has_opts(o, &["nodev"]), || format!("/ is {o}, not nodev"))
}

pub fn dev_nodes_are_the_right_devices(env: &Env) -> R {
    let script =
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
                  for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; \
                  echo x > /dev/null && head -c 5 /dev/zero | wc -c; stat -c %a /dev/shm";
    let out = env.sh(&[], script);
    out.expect(0)?;
    let want = [
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "/dev/full character special file 1:7",
        "/dev/random character special file 1:8",
        "/dev/urandom character special file 1:9",
        "/dev/tty character special file 5:0",
        "fd /proc/self/fd",
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "ptmx pts/ptmx",
        "5",
        "1777",
    ];
    check(lines(&out) == want, || format!("wanted {want:#?}\n{out}"))
}

pub fn devpts_is_a_new_instance(env: &Env) -> R {
    // Give the host a pty of its own, which a shared devpts would show.
    let terminal = host::Terminal::open()?;
    let out = env.run(&[], &["ls", "/dev/pts"]);
    drop(terminal);
    out.expect(0)?;
    check(lines(&out) == ["ptmx"], || {
        format!("/dev/pts shows more than its own ptmx\n{out}")
    })
}

pub fn old_root_is_unreachable(env: &Env) -> R {
    let out = env.run(&[], &["cat", "/proc/self/mountinfo"]);
    out.expect(0)?;
    let rootfs = env.rootfs.canonicalize().map_err(|e| e.to_string())?;
    for (i, l) in out.stdout.lines().enumerate() {
        let f: Vec<&str> = l.split(' ').collect();
        let (root, mp) = (f[3], f[4]);
        if i == 0 {
            check(mp == "/" && Path::new(root) == rootfs, || {
                format!("the first mount is not the rootfs\n{out}")
            })?;
            continue;
        }
        let inside = ["/proc", "/dev", "/sys"]
            .iter()
            .any(|p| mp == *p || mp.starts_with(&format!("{p}/")));
        // The container's own /etc files, from its state entry.
        let own_etc = ["hostname", "hosts", "resolv.conf"]
            .iter()
            .any(|n| mp == format!("/etc/{n}") && root.ends_with(&format!("/{n}")));
        check(inside || own_etc, || {
            format!("unexpected mount {mp} inside: the old root or a host mount shows\n{out}")
        })?;
    }
    Ok(())
}

/// A runner chrooted: into a directory that is a mount point it works as
/// anywhere (pivot_root); into a plain directory / cannot be made a slave,
/// so it is refused with one line. (A root with no parent mount, the
/// initramfs of a board, is the aarch64 VM's: there the root is moved.)
pub fn a_chrooted_runner_pivots_or_says_why_not(env: &Env) -> R {
    let script = "echo pid=$$; test -e /outside && echo sees-the-jail; test -x /bin/busybox && echo in-rootfs";
    let plain = in_jail(env, false, script)?;
    one_error_line(&plain, 125, "/ is not a mount point")?;
    let bound = in_jail(env, true, script)?;
    bound.expect(0)?;
    check(bound.stdout == "pid=1\nin-rootfs\n", || {
        format!("wanted PID 1 in the rootfs, not the jail\n{bound}")
    })
}

/// Runs the runner chrooted into a temporary jail holding a copy of it, the
/// rootfs, /proc and /dev, made in a mount namespace of the runner's own;
/// with `bind_self` the jail is a mount point.
fn in_jail(env: &Env, bind_self: bool, script: &str) -> Result<Output, String> {
    use std::ffi::CString;
    let jail = std::env::temp_dir().join(format!("husk-jail-{}", std::process::id()));
    let made = (|| -> std::io::Result<()> {
        for d in ["", "rootfs", "proc", "dev"] {
            fs::create_dir_all(jail.join(d))?;
        }
        fs::copy(&env.runner, jail.join("runner"))?;
        fs::write(jail.join("outside"), "the jail, not the container\n")
    })();
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let (rootfs, dir) = (c(&env.rootfs), c(&jail));
    let [j_rootfs, j_proc, j_dev] = ["rootfs", "proc", "dev"].map(|d| c(&jail.join(d)));
    let mut cmd = std::process::Command::new("/runner");
    cmd.args(["--rootfs", "/rootfs", "--", "/bin/sh", "-c", script]);
    cmd.stdin(Stdio::null());
    // SAFETY: only async-signal-safe syscalls between fork and exec, on C
    // strings made before the fork. The mounts are in the child's own mount
    // namespace and go with it.
    unsafe {
        cmd.pre_exec(move || {
            let ok = |r: libc::c_int| match r {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            let mount = |src: &CStr, dst: &CStr, fstype: Option<&CStr>, flags| {
                let fstype = fstype.map_or(std::ptr::null(), CStr::as_ptr);
                ok(libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    fstype,
                    flags,
                    std::ptr::null(),
                ))
            };
            let rbind = libc::MS_BIND | libc::MS_REC;
            ok(libc::unshare(libc::CLONE_NEWNS))?;
            mount(c"none", c"/", None, libc::MS_REC | libc::MS_PRIVATE)?;
            if bind_self {
                mount(&dir, &dir, None, libc::MS_BIND)?;
            }
            mount(&rootfs, &j_rootfs, None, rbind)?;
            mount(c"/dev", &j_dev, None, rbind)?;
            mount(c"proc", &j_proc, Some(c"proc"), 0)?;
            ok(libc::chroot(dir.as_ptr()))?;
            ok(libc::chdir(c"/".as_ptr()))
        });
    }
    let out = made.map(|()| output(&mut cmd)).map_err(|e| e.to_string());
    // Each by name, never recursively: rootfs/ was a mount point only in
    // the child's namespace, but a mistake here must not reach the rootfs.
    let _ = fs::remove_file(jail.join("runner"));
    let _ = fs::remove_file(jail.join("outside"));
    for d in ["rootfs", "proc", "dev", ""] {
        let _ = fs::remove_dir(jail.join(d));
    }
    out
}

//! Namespaces: PID 1, the host's against the container's, hostname,
//! environment and working directory, the network.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{host_ns, lines, one_error_line, R};
use crate::{check, host, Env};

pub fn pid_one_with_no_parent(env: &Env) -> R {
    let out = env.sh(&[], "echo $$; grep PPid /proc/1/status");
    out.expect(0)?;
    check(lines(&out) == ["1", "PPid:\t0"], || {
        format!("not PID 1 with PPid 0\n{out}")
    })
}

pub fn namespaces_differ_from_the_host(env: &Env) -> R {
    let names = ["mnt", "uts", "ipc", "pid", "net", "cgroup"];
    let out = env.sh(
        &[],
        "for n in mnt uts ipc pid net cgroup; do readlink /proc/1/ns/$n; done",
    );
    out.expect(0)?;
    let inside = lines(&out);
    check(inside.len() == names.len(), || {
        format!("expected {} namespaces\n{out}", names.len())
    })?;
    for (name, ns) in names.iter().zip(inside) {
        check(ns != host_ns(name) && ns.starts_with(name), || {
            format!("{name} namespace is the host's: {ns}")
        })?;
    }
    Ok(())
}

pub fn hostname_env_and_workdir(env: &Env) -> R {
    let flags = [
        "--hostname",
        "box",
        "-e",
        "FOO=bar",
        "-e",
        "HOME=/tmp",
        "-w",
        "/tmp",
    ];
    // Not last: ash execs a script's last command, which would then be PID 1.
    let script = "echo $FOO $HOME; hostname; pwd; cat /proc/1/cmdline; exit 0";
    let out = env.sh(&flags, script);
    out.expect(0)?;
    let want = format!("bar /tmp\nbox\n/tmp\n/bin/sh\0-c\0{script}\0");
    check(out.stdout == want, || format!("wanted {want:?}\n{out}"))
}

pub fn defaults_hostname_path_and_workdir(env: &Env) -> R {
    let out = env.sh(
        &[],
        "hostname; pwd; echo $PATH; echo $HOME; env | grep -c .",
    );
    out.expect(0)?;
    let l = lines(&out);
    check(
        l.get(..4)
            == Some(
                &[
                    "husk",
                    "/",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "/root",
                ][..],
            ),
        || format!("unexpected defaults\n{out}"),
    )
}

pub fn only_lo_and_it_is_up(env: &Env) -> R {
    let out = env.sh(&[], "ls /sys/class/net; cat /sys/class/net/lo/flags; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok");
    out.expect(0)?;
    let l = lines(&out);
    let up = l
        .get(1)
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & 1 == 1);
    check(
        l.first() == Some(&"lo") && up && l.get(2) == Some(&"ping-ok") && l.len() == 3,
        || format!("wanted only lo, up, answering\n{out}"),
    )
}

pub fn net_host_shares_the_host_network(env: &Env) -> R {
    let out = env.run(&["--net", "host"], &["readlink", "/proc/1/ns/net"]);
    out.expect(0)?;
    check(out.stdout.trim() == host_ns("net"), || {
        format!("--net host is not the host's namespace\n{out}")
    })
}

/// /etc/hostname, /etc/hosts and, with the host's network, /etc/resolv.conf
/// are the container's own: its hostname, and the name resolving, in
/// files bound read-only over the image's, which stay as they were. Only
/// a regular file is covered: an image's /etc/hosts that is a symlink
/// (here to /etc/passwd) is left alone, and nothing is made where the
/// image has no file.
pub fn etc_files_are_the_containers_own(env: &Env) -> R {
    use crate::filesystems::Scratch;
    let image_file = |name: &str| fs::read(env.rootfs.join("etc").join(name)).ok();
    let before = ["hosts", "hostname", "resolv.conf"].map(image_file);
    let show = "cat /etc/hostname; echo; cat /etc/hosts; echo; cat /etc/resolv.conf; echo; \
                if echo x >> /etc/hosts; then echo write=done; else echo write=refused; fi";
    let out = env.sh(&["--hostname", "box"], show);
    out.expect(0)?;
    let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbox\n";
    let image_resolv = String::from_utf8_lossy(before[2].as_deref().unwrap_or_default());
    // The test rootfs has no /etc/hostname: none is made.
    let hostname = if before[1].is_some() { "box\n" } else { "" };
    let want = format!("{hostname}\n{hosts}\n{image_resolv}\nwrite=refused\n");
    check(out.stdout == want, || format!("wanted {want:?}\n{out}"))?;
    let out = env.sh(&["--net", "host"], "cat /etc/resolv.conf");
    out.expect(0)?;
    let host_resolv = fs::read_to_string("/etc/resolv.conf");
    let want = host_resolv.as_deref().unwrap_or(&image_resolv);
    check(out.stdout == want, || {
        format!("--net host: wanted the host's resolv.conf {want:?}\n{out}")
    })?;
    // A layer over the image: /etc/hostname a file, /etc/hosts a symlink.
    let s = Scratch::new(env, "etc")?;
    s.write("top/etc/hostname", "from the layer\n")?;
    std::os::unix::fs::symlink("/etc/passwd", s.path("top/etc/hosts"))
        .map_err(|e| e.to_string())?;
    let (base, top) = (env.rootfs.display().to_string(), s.s("top"));
    let out = crate::harness::output(
        std::process::Command::new(&env.runner)
            .args(["--layer", &base, "--layer", &top, "--hostname", "box", "--"])
            .args([
                "/bin/sh",
                "-c",
                "cat /etc/hostname; readlink /etc/hosts; grep -c ' /etc/' /proc/self/mountinfo",
            ])
            .stdin(Stdio::null()),
    );
    out.expect(0)?;
    check(out.stdout == "box\n/etc/passwd\n1\n", || {
        format!("wanted /etc/hostname bound and /etc/hosts left a symlink\n{out}")
    })?;
    check(
        fs::read_link(s.path("top/etc/hosts")).ok() == Some("/etc/passwd".into()),
        || "the layer's symlink changed".to_string(),
    )?;
    let after = ["hosts", "hostname", "resolv.conf"].map(image_file);
    check(after == before, || {
        "the image's /etc files changed".to_string()
    })
}

/// --net ns:PATH joins a network namespace by its file, as podman and
/// containerd hand one to a runtime; a file of another kind is refused.
pub fn a_net_namespace_is_joined_by_path(env: &Env) -> R {
    let mut holder = std::process::Command::new(&env.runner);
    // Any long-lived process in a network namespace of its own will do:
    // the runner itself, with --net none, running sleep.
    holder
        .arg("--rootfs")
        .arg(&env.rootfs)
        .args(["--", "sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = holder.spawn().map_err(|e| e.to_string())?;
    let result = (|| {
        let start = Instant::now();
        let pid1 = loop {
            if let Some(&p) = host::children(child.id()).first() {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                if cmd.starts_with(b"sleep") {
                    break p;
                }
            }
            check(start.elapsed() < Duration::from_secs(10), || {
                "the namespace's holder did not start".into()
            })?;
            std::thread::sleep(Duration::from_millis(5));
        };
        let path = format!("/proc/{pid1}/ns/net");
        let want = fs::read_link(&path).map_err(|e| e.to_string())?;
        let out = env.probe(&["--net", &format!("ns:{path}")], &["facts"]);
        out.expect(0)?;
        check(
            crate::fact(&crate::facts(&out), "ns.net") == want.to_string_lossy(),
            || format!("--net ns:{path} did not join {}\n{out}", want.display()),
        )?;
        let uts = format!("/proc/{pid1}/ns/uts");
        one_error_line(
            &env.run(&["--net", &format!("ns:{uts}")], &["true"]),
            125,
            "not a net namespace",
        )
    })();
    // SAFETY: kill(2) on our own child; SIGTERM ends its sleep, and the
    // runner then cleans up as it should.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = crate::collect(child, Duration::from_secs(20));
    result
}

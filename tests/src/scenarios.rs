//! The scenarios. Each returns Err with what it saw when a check fails.

use std::ffi::CStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{check, collect, host, output, Env, Output};

pub(crate) type R = Result<(), String>;

pub(crate) fn lines(out: &Output) -> Vec<&str> {
    out.stdout.lines().collect()
}

fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// One mount from a mountinfo text: (per-mount options, fstype, super options).
fn mount_at<'a>(mountinfo: &'a str, mountpoint: &str) -> Option<(&'a str, &'a str, &'a str)> {
    mountinfo.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        (pre.get(4) == Some(&mountpoint))
            .then(|| (pre[5], post[0], post.get(2).copied().unwrap_or("")))
    })
}

fn has_opts(opts: &str, want: &[&str]) -> bool {
    want.iter().all(|w| opts.split(',').any(|o| o == *w))
}

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
        check(inside, || {
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

pub fn exit_status_is_the_programs(env: &Env) -> R {
    for (script, status) in [
        ("true", 0),
        ("false", 1),
        ("exit 42", 42),
        ("exit 255", 255),
    ] {
        let out = env.sh(&[], script);
        out.expect(status)?;
        check(out.stderr.is_empty(), || {
            format!("runner printed on success\n{out}")
        })?;
    }
    Ok(())
}

pub(crate) fn one_error_line(out: &Output, status: i32, want: &str) -> R {
    out.expect(status)?;
    let l: Vec<&str> = out.stderr.lines().collect();
    check(
        l.len() == 1
            && l[0].starts_with("runner: ")
            && l[0].contains(want)
            && out.stdout.is_empty(),
        || format!("wanted one line \"runner: ...{want}...\"\n{out}"),
    )
}

pub fn not_executable_is_126(env: &Env) -> R {
    one_error_line(
        &env.run(&[], &["/etc/passwd"]),
        126,
        "exec /etc/passwd: EACCES (Permission denied)",
    )?;
    one_error_line(&env.run(&[], &["/tmp"]), 126, "exec /tmp: EACCES")
}

pub fn not_found_is_127(env: &Env) -> R {
    one_error_line(
        &env.run(&[], &["no-such-command"]),
        127,
        "exec no-such-command: not found in the container's PATH",
    )?;
    one_error_line(&env.run(&[], &["/no/such"]), 127, "exec /no/such: ENOENT")?;
    one_error_line(
        &env.run(&["-e", "PATH=/usr/bin"], &["sh"]),
        127,
        "not found",
    )
}

pub fn stdin_reaches_an_interactive_shell(env: &Env) -> R {
    use std::io::Write;
    let mut cmd = env.command(&[], &["/bin/sh"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo pid=$$\nexit 3\n")
        .map_err(|e| e.to_string())?;
    let out = collect(child, Duration::from_secs(20))?;
    out.expect(3)?;
    check(out.stdout == "pid=1\n", || format!("wanted pid=1\n{out}"))
}

/// A running container whose script printed "ready".
pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    pub(crate) fn start(env: &Env, flags: &[&str], script: &str) -> Result<Running, String> {
        let mut cmd = env.command(flags, &["/bin/sh", "-c", script]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut r = Running { child, lines };
        match r.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == "ready" => Ok(r),
            other => {
                let _ = r.child.kill();
                let out = collect(r.child, Duration::from_secs(5))?;
                Err(format!("container did not get ready: {other:?}\n{out}"))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The container's PID 1, as the host sees it.
    pub(crate) fn pid1(&self) -> Result<u32, String> {
        host::children(self.pid())
            .first()
            .copied()
            .ok_or_else(|| "the runner has no child".into())
    }

    /// Waits until PID 1's argv[0] is `name`.
    pub(crate) fn wait_for_pid1(&self, name: &str) -> R {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let pid1 = self.pid1()?;
            let cmdline = fs::read(format!("/proc/{pid1}/cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).next() == Some(name.as_bytes()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!("PID 1 did not become {name}"))
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// Waits for the runner; the rest of stdout is appended.
    pub(crate) fn finish(self, timeout: Duration) -> Result<Output, String> {
        let mut out = collect(self.child, timeout)?;
        out.stdout = self.lines.try_iter().map(|l| l + "\n").collect::<String>() + &out.stdout;
        Ok(out)
    }
}

pub fn sigint_to_the_runner_ends_pid_one_with_130(env: &Env) -> R {
    // sleep has no handler, and the kernel drops such signals for a PID
    // namespace's init: the runner must end it itself.
    let r = Running::start(env, &[], "echo ready; exec sleep 60")?;
    // Until the exec, PID 1 is the shell, whose handler would take the signal.
    r.wait_for_pid1("sleep")?;
    r.signal(libc::SIGINT);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(130).map(drop)
}

pub fn caught_signals_are_forwarded(env: &Env) -> R {
    let script = "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready; \
                  while :; do sleep 0.05; done";
    let r = Running::start(env, &[], script)?;
    r.signal(libc::SIGUSR1);
    match r.lines.recv_timeout(Duration::from_secs(10)) {
        Ok(l) if l == "got-usr1" => {}
        other => return Err(format!("SIGUSR1 was not forwarded: {other:?}")),
    }
    r.signal(libc::SIGTERM);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(7)?;
    check(out.stdout.contains("got-term"), || {
        format!("SIGTERM was not forwarded\n{out}")
    })
}

pub fn memory_hog_is_killed_with_137(env: &Env) -> R {
    let out = env.run(
        &["--memory", "32M"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
    );
    out.expect(137)?;
    check(out.stderr.contains("memory limit (32 MiB)"), || {
        format!("the runner did not say the memory limit was hit\n{out}")
    })
}

pub fn under_the_memory_limit_runs(env: &Env) -> R {
    let out = env.run(
        &["--memory", "64M"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4"],
    );
    out.expect(0).map(drop)
}

pub fn pids_limit_stops_a_fork_loop(env: &Env) -> R {
    // The fork loop runs in a child shell, which dies when a fork fails;
    // its sleeps stay. Counting uses builtins only, needing no fork.
    let script = "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 10 & i=$((i+1)); done; echo looped-to-the-end' 2>/dev/null; \
                  echo inner=$?; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n";
    let out = env.sh(&["--pids", "8"], script);
    out.expect(0)?;
    let l = lines(&out);
    let n: u32 = l
        .get(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no count\n{out}"))?;
    check(l[0] != "inner=0" && (2..=8).contains(&n), || {
        format!("{n} processes under --pids 8\n{out}")
    })
}

pub fn cpu_quota_throttles(env: &Env) -> R {
    let r = Running::start(
        env,
        &["--cpus", "0.1"],
        "echo ready; timeout 3 sh -c 'while :; do :; done'; true",
    )?;
    std::thread::sleep(Duration::from_millis(1500));
    let dir = host::cgroup_dir(r.pid1()?, "cpu").ok_or("no cpu cgroup for the container")?;
    let stat =
        fs::read_to_string(dir.join("cpu.stat")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(0)?;
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    check(throttled > 0, || {
        format!("no throttling in {}/cpu.stat:\n{stat}", dir.display())
    })
}

pub fn cpuset_pins_the_container(env: &Env) -> R {
    let out = env.sh(
        &["--cpuset", "0"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    out.expect(0)?;
    check(out.stdout.trim().ends_with("\t0"), || {
        format!("not pinned to CPU 0\n{out}")
    })
}

pub fn cgroup_parent_is_made_and_removed(env: &Env) -> R {
    let name = format!("parent-test-{}", std::process::id());
    let r = Running::start(
        env,
        &[
            "--cgroup-parent",
            "/husk-test-parent/inner",
            "--pids",
            "16",
            "--name",
            &name,
        ],
        "echo ready; sleep 60",
    )?;
    let dir = host::cgroup_dir(r.pid1()?, "pids").ok_or("no pids cgroup for the container")?;
    // Named after the container: husk-NAME.
    let want = format!("husk-test-parent/inner/husk-{name}");
    r.wait_for_pid1("sleep")?;
    r.signal(libc::SIGTERM);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(143)?;
    check(dir.ends_with(&want), || {
        format!(
            "the container's cgroup is {}, not under {want}",
            dir.display()
        )
    })?;
    // The leftover check after the scenario makes sure the parents are gone.
    check(!dir.exists(), || format!("{} still exists", dir.display()))
}

pub fn bad_input_is_one_line_and_leaves_nothing(env: &Env) -> R {
    let file = env.rootfs.join("etc/passwd");
    let file = file.to_str().unwrap();
    let cases: &[(&[&str], &[&str], i32, &str)] = &[
        (
            &["--rootfs", "/no/such/dir"],
            &["sh"],
            125,
            "--rootfs /no/such/dir: ENOENT",
        ),
        (&["--rootfs", file], &["sh"], 125, "not a directory"),
        (
            &["-w", "tmp"],
            &["sh"],
            125,
            "--workdir tmp: must be an absolute path",
        ),
        (
            &["-w", "/no/such", "--memory", "32M"],
            &["sh"],
            125,
            "chdir /no/such: ENOENT",
        ),
        (
            &["--memory", "32M", "--pids", "9"],
            &["no-such-command"],
            127,
            "not found",
        ),
        (&["--memory", "12Q"], &["sh"], 125, "--memory 12Q"),
        (&["--memory", "64"], &["sh"], 125, "--memory 64"),
        (
            &["--memory-swap", "1G"],
            &["sh"],
            125,
            "--memory-swap needs --memory",
        ),
        (
            &["--memory", "64M", "--memory-swap", "32M"],
            &["sh"],
            125,
            "smaller than --memory",
        ),
        (&["--cpus", "-1"], &["sh"], 125, "--cpus -1"),
        (&["--cpus", "lots"], &["sh"], 125, "--cpus lots"),
        (&["--cpus", "4096"], &["sh"], 125, "CPUs online"),
        (
            &["--cpuset", "99"],
            &["sh"],
            125,
            "--cpuset 99: CPU 99 is not online",
        ),
        (&["--cpuset", "1-0"], &["sh"], 125, "--cpuset 1-0"),
        (&["--pids", "0"], &["sh"], 125, "--pids 0"),
        (&["--cpu-shares", "1"], &["sh"], 125, "--cpu-shares 1"),
        (&["--net", "bridge"], &["sh"], 125, "--net bridge"),
        (
            &["--hostname", "no spaces"],
            &["sh"],
            125,
            "--hostname no spaces",
        ),
        (
            &["--cgroup-parent", "../escape", "--pids", "4"],
            &["sh"],
            125,
            "--cgroup-parent ../escape",
        ),
        (
            &["--shim", "/no/such/shim"],
            &["sh"],
            125,
            "shim /no/such/shim: ENOENT",
        ),
        (
            &["--frobnicate"],
            &["sh"],
            125,
            "Unrecognized argument: --frobnicate",
        ),
        (&[], &[], 125, "no command given"),
    ];
    for (flags, cmd, status, want) in cases {
        let mut c = std::process::Command::new(&env.runner);
        if !flags.contains(&"--rootfs") {
            c.arg("--rootfs").arg(&env.rootfs);
        }
        c.args(*flags);
        if !cmd.is_empty() {
            c.arg("--").args(*cmd);
        }
        let out = output(&mut c);
        one_error_line(&out, *status, want).map_err(|e| format!("{flags:?} {cmd:?}: {e}"))?;
    }
    Ok(())
}

pub fn a_killed_runners_cgroup_is_swept_by_the_next(env: &Env) -> R {
    let r = Running::start(env, &["--pids", "16"], "echo ready; sleep 60")?;
    let dir = host::cgroup_dir(r.pid1()?, "pids").ok_or("no pids cgroup for the container")?;
    r.signal(libc::SIGKILL);
    r.finish(Duration::from_secs(20))?.expect(137)?;
    // The container dies of the runner's death (PDEATHSIG); its cgroup
    // stays, as nothing is left to remove it.
    let procs = dir.join("cgroup.procs");
    let start = Instant::now();
    while fs::read_to_string(&procs).is_ok_and(|p| !p.is_empty()) {
        check(start.elapsed() < Duration::from_secs(10), || {
            format!(
                "the container outlived its SIGKILLed runner: {}",
                procs.display()
            )
        })?;
        std::thread::sleep(Duration::from_millis(10));
    }
    check(dir.is_dir(), || {
        format!("{} went with the SIGKILLed runner?", dir.display())
    })?;
    env.sh(&["--pids", "16"], "true").expect(0)?;
    check(!dir.exists(), || {
        format!("{} is still there after the next container", dir.display())
    })
}

/// The check every scenario ends with must be able to fail: a container
/// still running shows in it (its PID namespace and its cgroup), and is
/// gone from it once the container ends.
pub fn leftover_checks_see_a_running_container(env: &Env) -> R {
    let before = host::Snapshot::take();
    let r = Running::start(env, &["--pids", "16"], "echo ready; exec sleep 60")?;
    r.wait_for_pid1("sleep")?;
    let during = before.same_as(&host::Snapshot::take());
    r.signal(libc::SIGTERM);
    r.finish(Duration::from_secs(20))?.expect(143)?;
    let seen = during.err().unwrap_or_default();
    check(
        seen.contains("new PID namespaces") && seen.contains("cgroups left behind"),
        || format!("a running container did not show in the leftover check: {seen:?}"),
    )?;
    before.same_as(&host::Snapshot::take())
}

pub fn setup_failure_leaves_nothing(env: &Env) -> R {
    // A rootfs whose /proc is a file: the shim fails half-way, after the
    // cgroup, /dev and the binds are made.
    let dir = std::env::temp_dir().join(format!("husk-bad-rootfs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("bin")).map_err(|e| e.to_string())?;
    fs::copy(env.rootfs.join("bin/busybox"), dir.join("bin/busybox")).map_err(|e| e.to_string())?;
    fs::write(dir.join("proc"), "not a directory").map_err(|e| e.to_string())?;
    let mut c = std::process::Command::new(&env.runner);
    c.arg("--rootfs").arg(&dir).args([
        "--memory",
        "32M",
        "--pids",
        "8",
        "--",
        "/bin/busybox",
        "true",
    ]);
    let out = output(&mut c);
    let _ = fs::remove_dir_all(&dir);
    one_error_line(&out, 125, "mount proc on /proc: mount: ENOTDIR")
}

pub fn non_root_is_refused(env: &Env) -> R {
    let mut c = env.command(&[], &["true"]);
    if crate::is_root() {
        c.uid(65534).gid(65534);
    }
    // A runner nobody may execute fails in output(), not here.
    let out = output(&mut c);
    one_error_line(
        &out,
        125,
        "must be run as root: rootless mode is not available yet",
    )
}

pub fn a_terminal_of_its_own(env: &Env) -> R {
    use std::io::{Read, Write};
    // The runner on a terminal, as a user's shell would start it.
    let terminal = host::Terminal::open()?;
    let mut cmd = std::process::Command::new(&env.runner);
    cmd.arg("--rootfs").arg(&env.rootfs).args(["--", "/bin/sh"]);
    terminal.attach(&mut cmd, 3);
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    // Only the child keeps the slave: the master then ends when it does.
    let host::Terminal { master, slave } = terminal;
    drop(slave);
    let mut reader = master.try_clone().map_err(|e| e.to_string())?;
    let collected = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut input = master;
    let mut say = |s: &[u8]| input.write_all(s).map_err(|e| e.to_string());
    say(b"echo pid=$$; tty\n")?;
    say(b"sleep 100\n")?;
    // ^C must reach the sleep through the container's own terminal.
    let start = Instant::now();
    let sleeping = loop {
        let pid1 = host::children(child.id()).first().copied().unwrap_or(0);
        let kids = host::children(pid1);
        if kids
            .iter()
            .any(|k| fs::read(format!("/proc/{k}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep")))
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    say(b"\x03")?;
    say(b"echo after-$((6*7))\nexit 6\n")?;
    let out = collect(child, Duration::from_secs(20))?;
    let screen = collected.join().unwrap_or_default();
    check(sleeping, || format!("sleep never ran\n{screen}"))?;
    check(out.status == 6, || {
        format!(
            "status {} (wanted 6): ^C did not interrupt sleep?\n{screen}",
            out.status
        )
    })?;
    for want in ["pid=1", "/dev/console", "after-42"] {
        check(screen.contains(want), || {
            format!("{want:?} not on the terminal\n{screen}")
        })?;
    }
    Ok(())
}

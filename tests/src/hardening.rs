//! Security scenarios: the defaults of ../shared/reference/hardening.md and
//! one test per class of bug other runtimes had.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{lines, one_error_line, Running, TempRootfs, R};
use crate::{check, host, output, Env};

const DEFAULT_CAPS: u64 = 0xa804_25fb;
const CAP_SYS_CHROOT: u64 = 1 << 18;

/// Docker's set, less SYS_CHROOT where the runner enters the rootfs by
/// chroot (an initramfs root): chroot(2) is how one climbs out of a chroot.
fn default_caps() -> u64 {
    if host::root_is_initramfs() {
        DEFAULT_CAPS & !CAP_SYS_CHROOT
    } else {
        DEFAULT_CAPS
    }
}

/// What husk-probe says of itself in a container made with `flags`.
fn status_fields(env: &Env, flags: &[&str]) -> Result<Vec<(String, String)>, String> {
    let out = env.probe(flags, &["facts"]);
    out.expect(0)?;
    Ok(crate::facts(&out)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn mask(fields: &[(String, String)], name: &str) -> u64 {
    u64::from_str_radix(field(fields, name), 16).unwrap_or(u64::MAX)
}

pub fn default_capabilities_no_new_privs_and_seccomp(env: &Env) -> R {
    let f = status_fields(env, &[])?;
    let want = default_caps();
    for name in ["capbnd", "capprm", "capeff"] {
        check(mask(&f, name) == want, || {
            format!("{name} is {}, wanted {want:016x}", field(&f, name))
        })?;
    }
    for name in ["capinh", "capamb"] {
        check(mask(&f, name) == 0, || {
            format!(
                "{name} is {} (runc CVE-2022-29162, crun CVE-2022-27650)",
                field(&f, name)
            )
        })?;
    }
    check(field(&f, "nonewprivs") == "1", || {
        format!("NoNewPrivs: {f:?}")
    })?;
    check(field(&f, "seccomp") == "2", || {
        format!("Seccomp is not in filter mode: {f:?}")
    })
}

/// CAP_MKNOD is in Docker's set, and Docker's device cgroup stops the
/// nodes it makes from opening; husk has no device cgroup, so everything a
/// container can write is nodev: a node made there (or shipped in the
/// image) cannot reach a host device, e.g. a disk. --privileged lifts it.
pub fn device_nodes_a_container_makes_do_not_open(env: &Env) -> R {
    // 1:3 is /dev/null: harmless, and present on every kernel.
    let script = "for n in /tmp/husk-node /dev/husk-node; do \
                      mknod $n c 1 3 || echo no-mknod; \
                      (echo x > $n) 2>/dev/null && echo opened $n; rm -f $n; done; \
                  echo x > /dev/null && echo null-works";
    let out = env.sh(&[], script);
    out.expect(0)?;
    check(out.stdout == "null-works\n", || {
        format!("a node made inside opened, or /dev/null did not\n{out}")
    })?;
    let out = env.sh(&["--privileged"], script);
    out.expect(0)?;
    check(
        out.stdout == "opened /tmp/husk-node\nopened /dev/husk-node\nnull-works\n",
        || format!("--privileged: made nodes should open\n{out}"),
    )
}

pub fn capability_flags_change_the_set(env: &Env) -> R {
    let f = status_fields(
        env,
        &[
            "--cap-add",
            "sys_admin",
            "--cap-drop",
            "CAP_NET_RAW",
            "--allow-new-privs",
        ],
    )?;
    let want = (default_caps() | 1 << 21) & !(1 << 13);
    check(
        mask(&f, "capbnd") == want && mask(&f, "capeff") == want,
        || format!("--cap-add/--cap-drop: {f:?}"),
    )?;
    check(field(&f, "nonewprivs") == "0", || {
        format!("--allow-new-privs: {f:?}")
    })?;
    // Everything the runner itself may have (some hosts withhold one).
    let own = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let all = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let f = status_fields(env, &["--privileged"])?;
    check(
        mask(&f, "capbnd") == all && field(&f, "seccomp") == "0",
        || format!("--privileged: {f:?}"),
    )?;
    let f = status_fields(env, &["--cap-drop", "ALL"])?;
    check(mask(&f, "capbnd") == 0 && mask(&f, "capeff") == 0, || {
        format!("--cap-drop ALL: {f:?}")
    })
}

pub fn seccomp_refuses_with_eperm_and_programs_still_work(env: &Env) -> R {
    // With every capability, only the filter can make swapoff EPERM; the
    // file does not exist, so without the filter it is ENOENT.
    let out = env.run(&["--cap-add", "ALL"], &["swapoff", "/no/such/swap"]);
    check(out.stderr.contains("Operation not permitted"), || {
        format!("swapoff was not refused by seccomp\n{out}")
    })?;
    let out = env.run(
        &["--cap-add", "ALL", "--seccomp", "unconfined"],
        &["swapoff", "/no/such/swap"],
    );
    check(out.stderr.contains("No such file"), || {
        format!("--seccomp unconfined still filters\n{out}")
    })?;
    let out = env.sh(
        &[],
        "echo hello world | tr a-z A-Z | wc -c; date +%Y >/dev/null && echo ok",
    );
    out.expect(0)?;
    check(lines(&out) == ["12", "ok"], || {
        format!("a pipeline failed\n{out}")
    })
}

/// `husk-probe syscalls` in a container made with `flags`: each call's
/// errno name, or "0".
fn syscall_answers(env: &Env, flags: &[&str]) -> Result<Vec<(String, String)>, String> {
    let out = env.probe(flags, &["syscalls"]);
    out.expect(0)
        .map_err(|e| format!("husk-probe syscalls with {flags:?}: {e}"))?;
    Ok(crate::facts(&out)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Every call in `want` answered as it says; one error naming all that
/// did not.
fn answers_are(got: &[(String, String)], flags: &[&str], want: &[(&str, &str)]) -> R {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(name, errno)| field(got, name) != *errno)
        .map(|(name, errno)| format!("{name}: {} (wanted {errno})", field(got, name)))
        .collect();
    check(wrong.is_empty(), || {
        format!(
            "in a container with {flags:?}:\n  {}\nall answers: {got:?}",
            wrong.join("\n  ")
        )
    })
}

/// Docker's allow-list with its argument rules, each refused call also
/// shown allowed: by the capability that opens it, and without the filter.
/// The probe's arguments make an allowed call fail harmlessly (EINVAL,
/// EFAULT, EBADF), so that an EPERM can only be the filter's.
pub fn seccomp_allow_list_follows_the_capabilities(env: &Env) -> R {
    // Without CONFIG_NUMA the memory-policy calls do not exist, nor the new
    // mount API before 5.2, clone3 before 5.3, mount_setattr before 5.12.
    let numa = |answer| {
        if Path::new("/proc/self/numa_maps").exists() {
            answer
        } else {
            "ENOSYS"
        }
    };
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut version = release.split(['.', '-']).map(|n| n.parse().unwrap_or(0));
    let kernel: (u32, u32) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    let since = |major, minor, answer| {
        if kernel >= (major, minor) {
            answer
        } else {
            "ENOSYS"
        }
    };
    let mount_family = [
        "setns",
        "mount",
        "umount2",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "move_mount",
        "mount_setattr",
    ];
    let mut refused: Vec<(&str, &str)> = vec![
        ("unshare_newuser", "EPERM"),
        ("unshare_bad_flags", "EPERM"),
        ("clone_newuser", "EPERM"),
        ("clone3", "ENOSYS"),
        ("personality_read_implies_exec", "EPERM"),
        ("personality_addr_no_randomize", "EPERM"),
        ("socket_vsock", "EPERM"),
        ("socket_vsock_high_bits", "EPERM"),
        ("mbind", "EPERM"),
        ("set_mempolicy_default", "EPERM"),
        ("move_pages", "EPERM"),
        ("migrate_pages", "EPERM"),
        ("process_vm_readv_self", "EPERM"),
        ("process_vm_writev", "EPERM"),
        ("io_uring_setup", "EPERM"),
    ];
    refused.extend(mount_family.iter().map(|n| (*n, "EPERM")));
    let works = [
        ("getppid", "0"),
        ("fork", "0"),
        ("clone_sigchld", "0"),
        ("clone_sigchld_high_bits", "0"),
        ("personality_query", "0"),
        ("personality_query_high_bits", "0"),
        ("socket_unix", "0"),
    ];
    let default = syscall_answers(env, &[])?;
    answers_are(&default, &[], &[&refused[..], &works].concat())?;

    // What each capability opens, and only that.
    let sys_admin = [
        ("unshare_newuser", "0"),
        ("unshare_bad_flags", "EINVAL"),
        ("clone_newuser", "EINVAL"),
        ("clone3", since(5, 3, "EINVAL")),
        ("setns", "EBADF"),
        ("mount", "EFAULT"),
        ("umount2", "EINVAL"),
        ("open_tree", since(5, 2, "EINVAL")),
        ("fsopen", since(5, 2, "EINVAL")),
        ("fsconfig", since(5, 2, "EINVAL")),
        ("fsmount", since(5, 2, "EINVAL")),
        ("move_mount", since(5, 2, "EINVAL")),
        ("mount_setattr", since(5, 12, "EINVAL")),
    ];
    let sys_ptrace = [
        ("process_vm_readv_self", "0"),
        ("process_vm_writev", "EINVAL"),
    ];
    let sys_nice = [
        ("mbind", numa("EINVAL")),
        ("set_mempolicy_default", numa("0")),
        ("move_pages", numa("EINVAL")),
        ("migrate_pages", numa("EINVAL")),
    ];
    for (cap, opened) in [
        ("SYS_ADMIN", &sys_admin[..]),
        ("SYS_PTRACE", &sys_ptrace),
        ("SYS_NICE", &sys_nice),
    ] {
        let flags = ["--cap-add", cap];
        let still: Vec<(&str, &str)> = refused
            .iter()
            .filter(|(n, _)| !opened.iter().any(|(o, _)| o == n))
            .copied()
            .collect();
        let got = syscall_answers(env, &flags)?;
        answers_are(&got, &flags, &[opened, &still, &works].concat())?;
    }

    // Without the filter, the kernel answers: only its own capability
    // checks remain (fsopen, fsmount and move_mount want CAP_SYS_ADMIN).
    let flags = ["--seccomp", "unconfined"];
    let unfiltered: Vec<(&str, &str)> = sys_admin
        .iter()
        .filter(|(n, _)| !["fsopen", "fsmount", "move_mount"].contains(n))
        .chain(&sys_ptrace)
        .chain(&sys_nice)
        .chain(&[
            ("personality_read_implies_exec", "0"),
            ("personality_addr_no_randomize", "0"),
        ])
        .copied()
        .collect();
    let got = syscall_answers(env, &flags)?;
    answers_are(&got, &flags, &[&unfiltered[..], &works].concat())?;
    // io_uring, unless the host restricts it (a sysctl from 6.6).
    let io_uring =
        !fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() != "0");
    let mut open = vec!["socket_vsock", "socket_vsock_high_bits"];
    if io_uring {
        open.push("io_uring_setup");
    }
    for name in open {
        check(field(&got, name) != "EPERM", || {
            format!("--seccomp unconfined: {name} is still EPERM: {got:?}")
        })?;
    }
    Ok(())
}

/// Docker's masked paths that exist on this kernel, with whether each is a
/// directory.
fn masked_here() -> Vec<(&'static str, bool)> {
    [
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
    ]
    .into_iter()
    .filter_map(|p| fs::symlink_metadata(p).ok().map(|m| (p, m.is_dir())))
    .collect()
}

pub fn masked_and_read_only_paths(env: &Env) -> R {
    let masked = masked_here();
    check(!masked.is_empty(), || {
        "no masked path exists on this kernel".into()
    })?;
    let mut script = String::new();
    for (p, dir) in &masked {
        if *dir {
            script += &format!("echo {p} $(ls -A {p} | wc -l) $(touch {p}/x 2>/dev/null && echo writable || echo ro); ");
        } else {
            script += &format!("echo {p} $(wc -c < {p}) $(stat -c %t:%T {p}); ");
        }
    }
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if Path::new(p).exists() {
            script += &format!("echo {p} $(grep -c ' {p} ro,' /proc/self/mountinfo); ");
        }
    }
    script += "echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo drop-caches-written; true";
    let out = env.sh(&[], &script);
    out.expect(0)?;
    for (p, dir) in &masked {
        let want = if *dir {
            format!("{p} 0 ro")
        } else {
            format!("{p} 0 1:3")
        };
        check(out.stdout.lines().any(|l| l == want), || {
            format!("{p} is not masked (wanted {want:?})\n{out}")
        })?;
    }
    for l in out
        .stdout
        .lines()
        .filter(|l| l.starts_with("/proc/") && l.split(' ').count() == 2)
    {
        check(l.ends_with(" 1"), || format!("not read-only: {l}\n{out}"))?;
    }
    check(!out.stdout.contains("drop-caches-written"), || {
        format!("/proc/sys is writable\n{out}")
    })?;
    // --privileged keeps them as they are.
    let out = env.sh(
        &["--privileged"],
        "grep -c ' /proc/sys ro,' /proc/self/mountinfo; true",
    );
    check(out.stdout.trim() == "0", || {
        format!("--privileged still masks\n{out}")
    })
}

pub fn sys_fs_cgroup_is_the_containers_own_and_read_only(env: &Env) -> R {
    let out = env.sh(
        &["--pids", "7"],
        // pids is v1's, or v2's alone, or in a hybrid v2's beside v1 ones.
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/unified/pids.max 2>/dev/null; \
         for d in /sys/fs/cgroup /sys/fs/cgroup/pids /sys/fs/cgroup/unified; do \
           test -d $d || continue; \
           mkdir $d/husk-escape 2>/dev/null && echo made $d || echo refused $d; done; \
         grep -c ' /sys/fs/cgroup[^ ]* ro,' /proc/self/mountinfo",
    );
    let l = lines(&out);
    check(l.first() == Some(&"7"), || {
        format!("/sys/fs/cgroup does not show the container's own cgroup\n{out}")
    })?;
    // Each mkdir was tried and refused: a success prints "made".
    check(
        !out.stdout.contains("made ") && out.stdout.contains("refused /sys/fs/cgroup\n"),
        || format!("a cgroup could be made from inside\n{out}"),
    )?;
    let ro: u32 = l.last().and_then(|n| n.parse().ok()).unwrap_or(0);
    // Without limits there is no cgroup of the container's own to show.
    let bare = env.sh(
        &[],
        "ls -A /sys/fs/cgroup | wc -l; mkdir /sys/fs/cgroup/x 2>/dev/null || echo refused",
    );
    check(lines(&bare) == ["0", "refused"], || {
        format!("/sys/fs/cgroup without limits\n{bare}")
    })?;
    check(ro >= 1, || {
        format!("/sys/fs/cgroup is not mounted read-only\n{out}")
    })
}

pub fn no_controlling_terminal_so_no_tiocsti(env: &Env) -> R {
    // The runner on a terminal, as an interactive user's; only its stdin.
    let terminal = host::Terminal::open()?;
    let script = "echo sid=$(cut -d' ' -f6 /proc/1/stat); (echo x > /dev/tty) 2>/dev/null && echo has-tty || echo no-tty";
    let mut cmd = env.command(&[], &["/bin/sh", "-c", script]);
    terminal.attach(&mut cmd, 1);
    let out = output(&mut cmd);
    drop(terminal);
    out.expect(0)?;
    check(lines(&out) == ["sid=1", "no-tty"], || {
        format!("the container kept the caller's terminal (bubblewrap CVE-2017-5226)\n{out}")
    })
}

pub fn only_stdio_reaches_the_container(env: &Env) -> R {
    // An fd the runner inherits without close-on-exec, as from a careless
    // parent: it must not reach the container (runc CVE-2024-21626).
    let leak = fs::File::open("/").map_err(|e| e.to_string())?;
    // SAFETY: dup2 to an unused number, then clear close-on-exec on it.
    unsafe {
        libc::dup2(leak.as_raw_fd(), 42);
        libc::fcntl(42, libc::F_SETFD, 0);
    }
    let out = env.run(&[], &["ls", "/proc/self/fd"]);
    // SAFETY: our own fd.
    unsafe { libc::close(42) };
    out.expect(0)?;
    // ls itself holds fd 3 for the directory it lists.
    check(lines(&out) == ["0", "1", "2", "3"], || {
        format!("fds other than 0, 1, 2 reached the container\n{out}")
    })?;
    for n in 3..=64 {
        let fd = format!("/proc/self/fd/{n}");
        let out = env.run(&["-w", &fd], &["/bin/pwd"]);
        check(out.status == 125 && out.stderr.contains("chdir"), || {
            format!("--workdir {fd} did not fail\n{out}")
        })?;
    }
    // The runner's own fds while it supervises: the same number in every
    // run, its signalfd and its store lock, nothing of the setup (the
    // shim's memfd, the rootfs, the pipes), plus whatever its caller left
    // open without close-on-exec, which it marks but does not own.
    let mut counts = Vec::new();
    for _ in 0..3 {
        let r = Running::start(env, &["--memory", "32M"], "echo ready; exec sleep 60")?;
        r.wait_for_pid1("sleep")?;
        let fds = |pid: u32| -> Vec<String> {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| fs::read_link(e.path()).ok())
                        .map(|l| l.display().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        // The setup's fds go once the container runs, and the sweep of the
        // store opens a few for a moment after: wait, however slow the
        // CPU, until the list holds still.
        let start = std::time::Instant::now();
        let mut list = fds(r.pid());
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = fds(r.pid());
            let settled = now == list && !now.iter().any(|l| l.contains("memfd"));
            list = now;
            if settled || start.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        counts.push(list.len());
        let rootfs = env.rootfs.display().to_string();
        check(
            !list.iter().any(|l| l.contains("memfd") || *l == rootfs)
                && list.iter().filter(|l| l.contains("signalfd")).count() == 1,
            || format!("the runner holds {list:?} while it supervises"),
        )?;
        r.signal(libc::SIGTERM);
        r.finish(Duration::from_secs(10))?;
    }
    check(counts.windows(2).all(|w| w[0] == w[1]), || {
        format!("runner fd counts: {counts:?}")
    })
}

fn checksum(path: &Path) -> Result<u64, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // FNV-1a: enough to see a change.
    Ok(bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    }))
}

pub fn proc_exe_cannot_overwrite_the_runtime(env: &Env) -> R {
    let before = checksum(&env.runner)?;
    // Every visible process's exe, opened for writing: the runner and shim
    // are not visible (another PID namespace; the shim has exec'd), and
    // what is visible is busy (ETXTBSY) (runc CVE-2019-5736).
    let script = "n=0; for p in /proc/[0-9]*; do if (echo x >> $p/exe) 2>/dev/null; then echo wrote $p; fi; n=$((n+1)); done; \
                  echo checked $n; ls -d /proc/[0-9]* | wc -l";
    let out = env.sh(&["--cap-add", "ALL"], script);
    out.expect(0)?;
    check(!out.stdout.contains("wrote"), || {
        format!("a process's exe was writable\n{out}")
    })?;
    check(checksum(&env.runner)? == before, || {
        "the runner binary changed".into()
    })?;
    // Only the container's own processes are visible: nothing to ptrace
    // outside it (bubblewrap CVE-2016-8659).
    let visible: u32 = lines(&out)
        .last()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(99);
    check(visible <= 3, || {
        format!("{visible} processes visible inside\n{out}")
    })
}

pub fn symlinked_mount_points_are_refused(env: &Env) -> R {
    // /proc, /sys and /dev as symlinks: absolute and relative, pointing
    // outside, and dangling (runc CVE-2019-19921, CVE-2023-27561,
    // CVE-2023-28642, CVE-2024-45310, CVE-2026-41579; crun CVE-2026-47766).
    for name in ["proc", "sys", "dev"] {
        for kind in ["absolute", "relative", "dangling"] {
            let r = TempRootfs::new(env, "symlink")?;
            let link = r.dir.join(name);
            fs::remove_dir(&link).map_err(|e| e.to_string())?;
            let target = match kind {
                "absolute" => r.outside.clone(),
                "relative" => PathBuf::from("../outside"),
                _ => r.outside.join("missing/dir"),
            };
            symlink(&target, &link).map_err(|e| e.to_string())?;
            let out = r.run(env, &["true"]);
            one_error_line(&out, 125, "ELOOP").map_err(|e| format!("/{name} {kind}: {e}"))?;
            check(out.stderr.contains(&format!("/{name}")), || {
                format!("/{name} {kind}: the error does not name the path\n{out}")
            })?;
            r.outside_is_untouched()
                .map_err(|e| format!("/{name} {kind}: {e}"))?;
        }
    }
    Ok(())
}

pub fn a_symlinked_dev_null_does_not_unmask(env: &Env) -> R {
    // The image's own /dev/null as a symlink to a host-looking file: /dev
    // is a fresh tmpfs and masks use the verified node (runc CVE-2025-31133).
    let r = TempRootfs::new(env, "devnull")?;
    fs::write(r.outside.join("secret"), "do not touch").map_err(|e| e.to_string())?;
    symlink(r.outside.join("secret"), r.dir.join("dev/null")).map_err(|e| e.to_string())?;
    let out = r.run(env, &["sh", "-c", "echo overwritten > /dev/null; cat /proc/timer_list 2>/dev/null | head -c 10; ls -l /dev/null"]);
    out.expect(0)?;
    let secret = fs::read_to_string(r.outside.join("secret")).map_err(|e| e.to_string())?;
    check(secret == "do not touch", || {
        "the file behind the symlink was written".into()
    })?;
    check(
        out.stdout.contains("1,   3") || out.stdout.contains("1, 3"),
        || format!("/dev/null is not the device\n{out}"),
    )
}

pub fn racing_symlink_exchange_never_escapes(env: &Env) -> R {
    // A process swapping /proc for a symlink to the host while containers
    // start (runc CVE-2021-30465): every start either succeeds inside or
    // fails, and nothing is ever mounted outside.
    let r = TempRootfs::new(env, "race")?;
    let (dir, link) = (r.dir.join("proc"), r.dir.join("proc-link"));
    symlink(&r.outside, &link).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (stop, a, b) = (stop.clone(), cstr(&dir), cstr(&link));
        std::thread::spawn(move || {
            const RENAME_EXCHANGE: libc::c_uint = 2;
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: renameat2 on two paths we own.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        RENAME_EXCHANGE,
                    )
                };
                swaps += 1;
                // Now and then the path is as it was for a moment: on one
                // slow CPU (a VM under emulation) a racer that never rests
                // would leave no start a chance to succeed, and a runner
                // that starts nothing passes the rest of this test.
                if swaps.is_multiple_of(2) {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
            swaps
        })
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..60 {
        let out = r.run(env, &["true"]);
        match out.status {
            0 => ok += 1,
            // Refused where the racer's symlink stood: the step on /proc.
            125 if out.stderr.contains("/proc") && out.stderr.contains("ELOOP") => refused += 1,
            _ => {
                stop.store(true, Ordering::Relaxed);
                return Err(format!("unexpected outcome under the race\n{out}"));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap_or(0);
    // A runner that never starts a container would pass the rest.
    check(swaps > 100 && ok > 0, || {
        format!("the race did not race: {ok} starts, {refused} refusals, {swaps} swaps")
    })?;
    r.outside_is_untouched()
        .map_err(|e| format!("after {ok} starts and {refused} refusals: {e}"))
}

fn cstr(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

pub fn a_failure_at_every_step_leaves_nothing(env: &Env) -> R {
    // With cgroup limits so that there is a cgroup to clean up.
    fail_at_each_step(|| env.command(&["--memory", "32M", "--pids", "16"], &["true"]))
}

/// Makes the shim fail before each step of the plan in turn (the runner's
/// HUSK_FAIL_AT_STEP knob) until the step index passes the end; after
/// each, the host must be as it was.
pub(crate) fn fail_at_each_step(command: impl Fn() -> std::process::Command) -> R {
    let mut step = 0;
    loop {
        let before = host::Snapshot::take();
        let mut c = command();
        c.env("HUSK_FAIL_AT_STEP", step.to_string());
        let out = output(&mut c);
        let after = host::Snapshot::take();
        before
            .same_as(&after)
            .map_err(|e| format!("failing at step {step}: {e}"))?;
        if out.status == 0 {
            check(step > 20, || format!("the plan has only {step} steps?"))?;
            return Ok(());
        }
        one_error_line(&out, 125, "injected failure").map_err(|e| format!("step {step}: {e}"))?;
        step += 1;
        check(step < 500, || "the knob never stops failing".into())?;
    }
}

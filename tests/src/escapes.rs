//! The escapes an outside review found, each tried as an attacker would,
//! with husk-probe's attacks: user namespaces reaching the host's
//! cgroups, the rootfs swapped between check and mount, device nodes on
//! mounts below the rootfs, PID 1 outliving a killed runner, and a
//! capability quietly not granted.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{one_error_line, Running, TempRootfs, R};
use crate::{check, fact, facts, host, output, Env, PROBE};

/// A host process in a cgroup of its own, beside where the containers'
/// cgroups go, in every hierarchy that can freeze (v1 freezer, v2): what
/// the attack in the review froze and killed.
struct Canary {
    child: Child,
    dirs: Vec<PathBuf>,
    name: String,
}

impl Canary {
    fn start() -> Result<Canary, String> {
        let name = format!("husk-canary-{}", std::process::id());
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .or_else(|_| Command::new("/bin/busybox").args(["sleep", "1000"]).spawn())
            .map_err(|e| format!("start the canary: {e}"))?;
        let mut canary = Canary {
            child,
            dirs: Vec::new(),
            name,
        };
        for controller in ["freezer", ""] {
            let Some(own) = host::cgroup_dir(std::process::id(), controller) else {
                continue;
            };
            let dir = own.join(&canary.name);
            // On a v2-only host both are the one hierarchy.
            if canary.dirs.contains(&dir) {
                continue;
            }
            fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            canary.dirs.push(dir.clone());
            fs::write(dir.join("cgroup.procs"), canary.child.id().to_string())
                .map_err(|e| format!("move the canary into {}: {e}", dir.display()))?;
        }
        check(!canary.dirs.is_empty(), || {
            "no freezer or cgroup2 hierarchy for the canary".into()
        })?;
        Ok(canary)
    }

    /// Alive, and in no frozen cgroup.
    fn unharmed(&mut self) -> R {
        check(matches!(self.child.try_wait(), Ok(None)), || {
            "the canary, a host process, was killed from inside a container".into()
        })?;
        for dir in &self.dirs {
            let frozen = fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() != "THAWED")
                || fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
            check(!frozen, || {
                format!(
                    "the canary's cgroup {} was frozen from inside",
                    dir.display()
                )
            })?;
        }
        Ok(())
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            let _ = fs::write(dir.join("cgroup.freeze"), "0");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for dir in &self.dirs {
            let start = Instant::now();
            while fs::remove_dir(dir).is_err() && start.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The review's first escape: a user namespace made inside, cgroupfs
/// mounted from it, host processes frozen and killed, the container's own
/// limits raised. Refused by default (seccomp); a container that may mount
/// sees only its own cgroup in every hierarchy.
pub fn user_namespaces_cannot_reach_the_hosts_cgroups(env: &Env) -> R {
    let mut canary = Canary::start()?;
    let attack = format!(
        "{PROBE} cgroup-escape {}; echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes \
         /sys/fs/cgroup/memory.max 2>/dev/null)",
        canary.name
    );
    let limit = (64u64 << 20).to_string();
    let out = env.sh(&["--memory", "64M", "--pids", "64"], &attack);
    out.expect(0)?;
    let f = facts(&out);
    check(
        fact(&f, "unshare_user") == "EPERM" && fact(&f, "mounted") == "0",
        || format!("a default container made a user namespace or mounted cgroupfs\n{out}"),
    )?;
    check(fact(&f, "limit") == limit, || {
        format!("the container's memory limit is not {limit}\n{out}")
    })?;
    canary.unharmed()?;
    // A container that may mount, by CAP_SYS_ADMIN or without seccomp,
    // mounts cgroupfs (the attack gets that far) and finds nothing above
    // its own cgroup.
    for flags in [
        &["--cap-add", "SYS_ADMIN"][..],
        &["--seccomp", "unconfined"],
    ] {
        let out = env.sh(flags, &attack);
        out.expect(0)?;
        let f = facts(&out);
        check(fact(&f, "mounted").parse::<u32>().unwrap_or(0) > 0, || {
            format!("{flags:?}: the attack could not mount at all, so it tests nothing\n{out}")
        })?;
        check(fact(&f, "canary_found") == "0", || {
            format!("{flags:?}: the host's cgroups are visible from inside\n{out}")
        })?;
        canary.unharmed().map_err(|e| format!("{flags:?}: {e}"))?;
    }
    Ok(())
}

/// The review's second escape: whoever may rename entries on the rootfs's
/// path swaps the rootfs (or a parent) for a symlink to / while containers
/// start. Every start must run inside the rootfs or be refused at
/// --rootfs; a marker only the host has is never seen.
pub fn a_rootfs_swapped_for_a_symlink_never_runs_on_the_host(env: &Env) -> R {
    let id = std::process::id();
    let base = std::env::temp_dir().join(format!("husk-race-{id}"));
    let _ = fs::remove_dir_all(&base);
    let (a, b) = (base.join("a"), base.join("a/b"));
    let rootfs = b.join(format!("husk-race-root-{id}"));
    let io = |e: std::io::Error| e.to_string();
    fs::create_dir_all(rootfs.join("tmp")).map_err(io)?;
    // The probe, at the same path inside the rootfs and on the host, so
    // that a container started on the host's / would run and tell.
    let probe = format!("/tmp/husk-race-probe-{id}");
    let marker = PathBuf::from(format!("/tmp/husk-race-marker-{id}"));
    let host_probe = PathBuf::from(&probe);
    fs::copy(env.rootfs.join(PROBE.trim_start_matches('/')), &host_probe).map_err(io)?;
    fs::copy(&host_probe, rootfs.join(probe.trim_start_matches('/'))).map_err(io)?;
    fs::write(&marker, "only the host has this").map_err(io)?;
    host::watch_root(&rootfs);
    let identity = {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(&rootfs).map_err(io)?;
        format!("{}:{}", m.dev(), m.ino())
    };
    // Each of the rootfs, its parent and its grandparent, exchanged with a
    // symlink to / (renameat2 RENAME_EXCHANGE) over and over.
    let pairs: Vec<(CString, CString)> = [&rootfs, &b, &a]
        .iter()
        .map(|p| {
            let link = p.with_extension("swap");
            let _ = symlink("/", &link);
            (cstr(p), cstr(&link))
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (x, y) in &pairs {
                    // Twice: the path is back as it was at the end of a round.
                    for _ in 0..2 {
                        // SAFETY: renameat2 on two paths we own.
                        unsafe {
                            libc::syscall(
                                libc::SYS_renameat2,
                                libc::AT_FDCWD,
                                x.as_ptr(),
                                libc::AT_FDCWD,
                                y.as_ptr(),
                                2 as libc::c_uint, // RENAME_EXCHANGE
                            )
                        };
                        swaps += 1;
                    }
                }
                // A moment with the path as it was: on one slow CPU (a VM
                // under emulation) a racer that never rests leaves no start
                // a chance, and the test needs some to run inside.
                std::thread::sleep(Duration::from_micros(200));
            }
            swaps
        })
    };
    let (mut inside, mut refused) = (0, 0);
    let mut result = Ok(());
    for _ in 0..starts() {
        let mut c = Command::new(&env.runner);
        c.arg("--rootfs").arg(&rootfs).args([
            "--",
            &probe,
            "root-identity",
            marker.to_str().unwrap_or(""),
        ]);
        let out = output(&mut c);
        let f = facts(&out);
        match out.status {
            0 if fact(&f, "root") == identity && fact(&f, "marker") == "false" => inside += 1,
            125 if out.stderr.starts_with("runner: --rootfs ") && out.stdout.is_empty() => {
                refused += 1
            }
            _ => {
                result = Err(format!(
                    "a start under the race ran outside the rootfs ({identity}) or failed late\n{out}"
                ));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap_or(0);
    // Put every swapped path back before removing anything, and never
    // remove through a symlink.
    for p in [&a, &b, &rootfs] {
        let link = p.with_extension("swap");
        if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            // SAFETY: renameat2 on two paths we own.
            unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    cstr(p).as_ptr(),
                    libc::AT_FDCWD,
                    cstr(&link).as_ptr(),
                    2 as libc::c_uint,
                )
            };
        }
    }
    for p in [&rootfs, &b, &a] {
        let _ = fs::remove_file(p.with_extension("swap"));
    }
    let _ = fs::remove_file(&host_probe);
    let _ = fs::remove_file(&marker);
    let _ = fs::remove_dir_all(&base);
    result?;
    check(inside > 0 && refused > 0 && swaps > 500, || {
        format!("the race did not race: {inside} inside, {refused} refused, {swaps} swaps")
    })
}

/// How many starts the rootfs race makes: 500 on a real CPU; 100 in the
/// VMs, where each start is ten times slower under emulation (HUSK_EMULATED,
/// set by their init) and 500 would take most of a VM's time.
fn starts() -> usize {
    if std::env::var_os("HUSK_EMULATED").is_some() {
        100
    } else {
        500
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default()
}

/// A loop device backed by a file that says `marker`, detached when dropped.
struct Loop {
    dev: fs::File,
    major: u32,
    minor: u32,
    _backing: fs::File,
}

impl Loop {
    fn new(backing: &Path, marker: &str) -> Result<Loop, String> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
        const LOOP_SET_FD: libc::c_ulong = 0x4C00;
        let mut content = marker.as_bytes().to_vec();
        content.resize(4096, b'\n');
        fs::write(backing, content).map_err(|e| e.to_string())?;
        let ctl =
            fs::File::open("/dev/loop-control").map_err(|e| format!("/dev/loop-control: {e}"))?;
        // SAFETY: an ioctl without an argument.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(format!(
                "LOOP_CTL_GET_FREE: {}",
                std::io::Error::last_os_error()
            ));
        }
        let path = format!("/dev/loop{n}");
        let dev = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{path}: {e}"))?;
        let file = fs::File::open(backing).map_err(|e| e.to_string())?;
        // SAFETY: LOOP_SET_FD takes the backing fd as its argument.
        if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, file.as_raw_fd()) } != 0 {
            return Err(format!("LOOP_SET_FD: {}", std::io::Error::last_os_error()));
        }
        let rdev = fs::metadata(&path).map_err(|e| e.to_string())?.rdev();
        Ok(Loop {
            dev,
            major: libc::major(rdev),
            minor: libc::minor(rdev),
            _backing: file,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
        // SAFETY: an ioctl without an argument on our own fd.
        unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD as _) };
    }
}

/// The review's third escape: a host directory bind-mounted below the
/// rootfs kept device access, so a node made there read a host disk. Every
/// mount in the container is nodev but husk's own device binds and devpts;
/// also where the kernel lacks mount_setattr (the knob pretends it).
pub fn device_nodes_below_the_rootfs_do_not_open(env: &Env) -> R {
    let r = TempRootfs::new(env, "below")?;
    let (rootfs, shared) = (&r.dir, r.outside.join("shared"));
    let io = |e: std::io::Error| e.to_string();
    fs::create_dir_all(rootfs.join("data")).map_err(io)?;
    fs::create_dir_all(&shared).map_err(io)?;
    let (src, dst) = (cstr(&shared), cstr(&rootfs.join("data")));
    // SAFETY: mount with C strings that outlive the call.
    if unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(format!(
            "bind {} below the rootfs: {}",
            shared.display(),
            std::io::Error::last_os_error()
        ));
    }
    let result = (|| {
        let lo = Loop::new(&r.outside.join("disk"), "husk-loop-marker");
        if let Err(e) = &lo {
            println!("(no loop device here: {e}; the character node 1:3 stands in)");
        }
        let mut nodes = vec![("c", 1, 3)];
        if let Ok(lo) = &lo {
            nodes.push(("b", lo.major, lo.minor));
        }
        let run = |flags: &[&str], pretend: &str, args: &[&str]| {
            let mut c = Command::new(&env.runner);
            c.arg("--rootfs")
                .arg(rootfs)
                .args(flags)
                .arg("--")
                .arg(PROBE)
                .args(args);
            c.env("HUSK_PRETEND_ENOSYS", pretend);
            output(&mut c)
        };
        for pretend in ["", "mount_setattr"] {
            for &(kind, major, minor) in &nodes {
                let (major, minor) = (major.to_string(), minor.to_string());
                let args = ["mknod-open", "/data/node", kind, &major, &minor];
                let out = run(&[], pretend, &args);
                out.expect(0)?;
                let f = facts(&out);
                check(
                    fact(&f, "mknod") == "0" && fact(&f, "open") == "EACCES",
                    || {
                        format!("pretending {pretend:?} missing: a {kind} node on the mount below the rootfs opened (or could not be made)\n{out}")
                    },
                )?;
                // Without nodev it opens and reads the device: the test can fail.
                let out = run(&["--privileged"], pretend, &args);
                let f = facts(&out);
                check(fact(&f, "open") == "0", || {
                    format!("--privileged: the {kind} node should open\n{out}")
                })?;
                if kind == "b" {
                    check(fact(&f, "read") == "husk-loop-marker", || {
                        format!("--privileged: the loop device read back wrong\n{out}")
                    })?;
                }
            }
            let out = run(&[], pretend, &["mounts"]);
            out.expect(0)?;
            let devices = [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/console",
                "/dev/pts",
            ];
            for (_, m) in facts(&out).iter().filter(|(k, _)| *k == "mount") {
                let f: Vec<&str> = m.split(' ').collect();
                let [point, fstype, opts, root] = f[..] else {
                    return Err(format!("a mount line that is not four fields: {m}"));
                };
                // husk's own: the device binds, devpts, and the masks (binds
                // of the verified /dev/null over masked files).
                if devices.contains(&point) || (fstype == "devtmpfs" && root == "/null") {
                    continue;
                }
                check(opts.split(',').any(|o| o == "nodev"), || {
                    format!("pretending {pretend:?} missing: {point} is not nodev\n{out}")
                })?;
            }
        }
        Ok(())
    })();
    // SAFETY: umount2 with a C string that outlives the call.
    unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    result
}

/// The review's fourth: PID 1 clears its parent-death signal and double
/// forks; after kill -9 of the runner it lives on. The next husk command
/// ends it through the state store, with its cgroup and its entry.
pub fn a_killed_runners_container_is_ended_by_the_next_command(env: &Env) -> R {
    let name = format!("orphan-{}", std::process::id());
    let script = format!("exec {PROBE} pdeathsig-escape");
    let r = Running::start(env, &["--pids", "16", "--name", &name], &script)?;
    r.wait_for_pid1(PROBE)?;
    let pid1 = r.pid1()?;
    let ns = fs::read_link(format!("/proc/{pid1}/ns/pid")).map_err(|e| e.to_string())?;
    let cgroup = host::cgroup_dir(pid1, "pids").ok_or("no pids cgroup for the container")?;
    r.signal(libc::SIGKILL);
    r.finish(Duration::from_secs(20))?.expect(137)?;
    std::thread::sleep(Duration::from_millis(200));
    check(Path::new(&format!("/proc/{pid1}")).exists(), || {
        "PID 1 died with the runner: the probe did not clear its parent-death signal, so this tests nothing".into()
    })?;
    check(Path::new(host::STORE).join(&name).is_dir(), || {
        format!("the killed runner's entry {name} is not in the store")
    })?;
    env.sh(&[], "true").expect(0)?;
    let start = Instant::now();
    loop {
        let left = host::processes_in(&ns);
        if left.is_empty() {
            break;
        }
        check(start.elapsed() < Duration::from_secs(10), || {
            format!("processes of the killed runner's container still run after the next command: {left:?}")
        })?;
        std::thread::sleep(Duration::from_millis(10));
    }
    check(!Path::new(host::STORE).join(&name).exists(), || {
        format!("the entry {name} is still in the store")
    })?;
    check(!cgroup.exists(), || {
        format!("{} is still there", cgroup.display())
    })
}

/// A capability asked for that the runner cannot give is an error naming
/// it, never quietly left out.
pub fn a_capability_that_cannot_be_granted_is_an_error(env: &Env) -> R {
    const CAP_SYS_TIME: libc::c_ulong = 25;
    let run = |flags: &[&str]| {
        let mut c = env.command(flags, &[PROBE, "facts"]);
        // SAFETY: prctl is async-signal-safe; it drops the capability from
        // the runner's bounding set only.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_TIME) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        output(&mut c)
    };
    one_error_line(
        &run(&["--cap-add", "SYS_TIME"]),
        125,
        "CAP_SYS_TIME: the runner itself does not have it",
    )?;
    // ALL and --privileged mean what the runner has.
    for flags in [&["--cap-add", "ALL"][..], &["--privileged"]] {
        let out = run(flags);
        out.expect(0)?;
        let bnd = u64::from_str_radix(fact(&facts(&out), "capbnd"), 16).unwrap_or(0);
        check(bnd & 1 << CAP_SYS_TIME == 0 && bnd & 1 << 21 != 0, || {
            format!("{flags:?}: CapBnd {bnd:x}\n{out}")
        })?;
    }
    Ok(())
}

//! The attacks the hardening scenarios try from inside a container. Each
//! prints what it managed as `key=value` facts; the scenario decides.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{errno_of, fact};

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn mount(src: &str, dst: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> String {
    let (src, dst, fstype, data) = (c(src), c(dst), c(fstype), c(data));
    // SAFETY: mount with C strings that outlive the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    errno_of(r as libc::c_long)
}

/// `cgroup-escape CANARY`: the user-namespace attack on the host's cgroups.
/// Mount every cgroup hierarchy it can — directly, or from a user
/// namespace of its own where seccomp lets it make one — then look for a
/// cgroup named CANARY (a host process the test put there) and try to
/// freeze and kill it, and to raise the limits at the root of what it sees
/// (its own, if it sees only its own).
pub fn cgroup_escape(args: &[String]) -> Result<(), String> {
    let canary = args.first().ok_or("usage: cgroup-escape CANARY")?;
    // SAFETY: unshare with flags only.
    let direct = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    fact("unshare_mount", errno_of(direct as libc::c_long));
    let base = "/tmp/husk-cg";
    let _ = fs::create_dir_all(base);
    let mut mounted = try_mounts(base);
    if mounted.is_empty() {
        // The way of the review: a user namespace whose root is ours.
        // SAFETY: unshare with flags only.
        let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
        fact("unshare_user", errno_of(r as libc::c_long));
        if r != 0 {
            fact("mounted", 0);
            return Ok(());
        }
        let _ = fs::write("/proc/self/setgroups", "deny");
        for map in ["uid_map", "gid_map"] {
            let r = fs::write(format!("/proc/self/{map}"), "0 0 1");
            fact(
                map,
                r.map(|()| "0".to_string())
                    .unwrap_or_else(|e| e.to_string()),
            );
        }
        // SAFETY: unshare with flags only.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP) };
        fact("unshare_mount_cgroup", errno_of(r as libc::c_long));
        mount("", "/", "", libc::MS_REC | libc::MS_PRIVATE, "");
        let _ = fs::create_dir_all(base);
        mounted = try_mounts(base);
    }
    fact("mounted", mounted.len());
    let mut found = Vec::new();
    for root in &mounted {
        find(root, canary, 0, &mut found);
        // The root of what it sees: its own cgroup if the namespace is
        // rooted there. Raising limits here is Docker's behaviour with
        // CAP_SYS_ADMIN too; the scenario looks at the host side.
        let procs = fs::read_to_string(root.join("cgroup.procs")).unwrap_or_default();
        fact("visible_processes", procs.lines().count());
    }
    fact("canary_found", found.len());
    for dir in &found {
        for (file, value) in [
            ("cgroup.freeze", "1"),
            ("freezer.state", "FROZEN"),
            ("cgroup.kill", "1"),
        ] {
            let p = dir.join(file);
            if p.exists() {
                let r = fs::write(&p, value);
                fact(
                    &format!("write.{file}"),
                    if r.is_ok() { "ok" } else { "refused" },
                );
            }
        }
    }
    Ok(())
}

/// Mounts cgroup2 and each v1 controller the kernel has under `base`; the
/// mount points that worked.
fn try_mounts(base: &str) -> Vec<PathBuf> {
    let mut done = Vec::new();
    let controllers = fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let mut kinds: Vec<(String, String, String)> =
        vec![("unified".into(), "cgroup2".into(), String::new())];
    for line in controllers.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(name), Some(hier)) = (f.next(), f.next()) else {
            continue;
        };
        // Bound to a v1 hierarchy (non-zero hierarchy id).
        if hier != "0" {
            kinds.push((name.into(), "cgroup".into(), name.into()));
        }
    }
    kinds.push((
        "systemd".into(),
        "cgroup".into(),
        "none,name=systemd".into(),
    ));
    for (dir, fstype, data) in kinds {
        let at = format!("{base}/{dir}");
        let _ = fs::create_dir_all(&at);
        let r = mount(fstype.as_str(), &at, &fstype, 0, &data);
        fact(&format!("mount.{dir}"), &r);
        if r == "0" {
            done.push(PathBuf::from(at));
        }
    }
    done
}

fn find(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name().to_string_lossy().starts_with(name) {
            found.push(e.path());
        }
        if depth < 12 {
            find(&e.path(), name, depth + 1, found);
        }
    }
}

/// `pdeathsig-escape`: PID 1 clears its parent-death signal and double
/// forks, as a daemon would, then waits: after `kill -9` of the runner it
/// lives on unless husk ends it.
pub fn pdeathsig_escape(_: &[String]) -> Result<(), String> {
    // SAFETY: prctl, fork, setsid and pause take plain arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, 0);
        match libc::fork() {
            0 => {
                if libc::fork() == 0 {
                    libc::setsid();
                    libc::prctl(libc::PR_SET_PDEATHSIG, 0);
                    loop {
                        libc::pause();
                    }
                }
                libc::_exit(0);
            }
            pid if pid > 0 => {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            _ => return Err("fork failed".into()),
        }
        println!("ready");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            libc::pause();
        }
    }
}

/// `root-identity [MARKER]`: the device and inode of this process's root,
/// and whether MARKER (a file only the host has) is visible.
pub fn root_identity(args: &[String]) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata("/").map_err(|e| e.to_string())?;
    fact("root", format!("{}:{}", m.dev(), m.ino()));
    if let Some(marker) = args.first() {
        fact("marker", Path::new(marker).exists());
    }
    Ok(())
}

/// `mknod-open PATH b|c MAJOR MINOR`: makes a device node and opens it.
pub fn mknod_open(args: &[String]) -> Result<(), String> {
    let [path, kind, major, minor] = args else {
        return Err("usage: mknod-open PATH b|c MAJOR MINOR".into());
    };
    let mode = match kind.as_str() {
        "b" => libc::S_IFBLK,
        "c" => libc::S_IFCHR,
        _ => return Err(format!("{kind}: b or c")),
    };
    let n = |s: &str| s.parse::<u32>().map_err(|e| format!("{s}: {e}"));
    let dev = libc::makedev(n(major)?, n(minor)?);
    let p = c(path);
    // SAFETY: mknod and open with a C string that outlives the calls.
    unsafe {
        let r = libc::mknod(p.as_ptr(), mode | 0o600, dev);
        fact("mknod", errno_of(r as libc::c_long));
        let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        fact("open", errno_of(fd as libc::c_long));
        if fd >= 0 {
            let mut buf = [0u8; 16];
            let got = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            let text: String = buf[..got.max(0) as usize]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
                .map(|&b| b as char)
                .collect();
            fact("read", text);
            libc::close(fd);
        }
        libc::unlink(p.as_ptr());
    }
    Ok(())
}

/// `mounts`: each mount's point, type, per-mount options and root, as the
/// container sees them.
pub fn mounts(_: &[String]) -> Result<(), String> {
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    for m in runner::mountinfo::parse(&text) {
        fact(
            "mount",
            format!("{} {} {} {}", m.mount_point, m.fstype, m.options, m.root),
        );
    }
    Ok(())
}

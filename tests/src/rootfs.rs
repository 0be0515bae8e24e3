//! A busybox root file system: every applet linked, a minimal /etc, and the
//! empty mount points the runner mounts on.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `dir` from a static `busybox` for the same architecture whose
/// applet list is `applets` (paths such as "bin/sh", as `busybox
/// --list-full` prints them). Built beside `dir` and renamed into place,
/// so a half-built tree is never taken for a finished one.
pub fn build(dir: &Path, busybox: &Path, applets: &[String]) -> Result<(), String> {
    let tmp = dir.with_extension("partial");
    let _ = fs::remove_dir_all(&tmp);
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
        "run",
    ] {
        let p = tmp.join(d);
        fs::create_dir_all(&p).map_err(|e| io("mkdir", &p, e))?;
    }
    fs::set_permissions(tmp.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("chmod", dir, e))?;
    let bin = tmp.join("bin/busybox");
    fs::copy(busybox, &bin).map_err(|e| io("copy", busybox, e))?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))
        .map_err(|e| io("chmod", &bin, e))?;
    for applet in applets {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = tmp.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|e| io("mkdir", parent, e))?;
        }
        symlink("/bin/busybox", &link).map_err(|e| io("symlink", &link, e))?;
    }
    let etc = [
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"),
        ("hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n"),
        (
            "resolv.conf",
            "# husk: containers have no network unless run with --net host\n",
        ),
    ];
    for (name, text) in etc {
        let p = tmp.join("etc").join(name);
        fs::write(&p, text).map_err(|e| io("write", &p, e))?;
    }
    let _ = fs::remove_dir_all(dir);
    fs::rename(&tmp, dir).map_err(|e| io("rename", &tmp, e))
}

/// The applets of a busybox this machine can run.
pub fn applets(busybox: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("run {} --list-full: {e}", busybox.display()))?;
    if !out.status.success() {
        return Err(format!("{} --list-full: {}", busybox.display(), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect())
}

/// A static busybox for this machine: $HUSK_BUSYBOX, the system's if it is
/// static (Debian's busybox-static), else Debian's busybox-static package
/// fetched with apt-get download into `cache` (nothing is installed).
pub fn find_busybox(cache: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("HUSK_BUSYBOX") {
        return Ok(PathBuf::from(p));
    }
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if crate::elf::read(Path::new(p)).is_ok_and(|f| f.is_static()) {
            return Ok(PathBuf::from(p));
        }
    }
    fetch_deb_busybox(cache, None)
}

/// Debian's busybox-static for `arch` (a Debian architecture name; None:
/// this machine's), unpacked into `cache`.
pub fn fetch_deb_busybox(cache: &Path, arch: Option<&str>) -> Result<PathBuf, String> {
    let dir = cache.join(format!("busybox-static-{}", arch.unwrap_or("native")));
    let bin = dir.join("root/bin/busybox");
    if bin.exists() {
        return Ok(bin);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    // Package lists of our own, updated here: a fresh machine may have none
    // yet, and the host's dpkg setup is never touched.
    let native = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map_err(|e| format!("run dpkg --print-architecture: {e} (a Debian machine is needed)"))?;
    let mut apt = Command::new("apt-get");
    if let Some(arch) = arch.or(Some(native.as_str())) {
        let lists = cache.join(format!("apt-lists-{arch}"));
        fs::create_dir_all(lists.join("partial"))
            .map_err(|e| format!("mkdir {}: {e}", lists.display()))?;
        let opts = [
            format!("APT::Architecture={arch}"),
            format!("APT::Architectures={arch}"),
            format!("Dir::State::Lists={}", lists.display()),
        ];
        let mut update = Command::new("apt-get");
        for o in &opts {
            update.arg("-o").arg(o);
        }
        run(update.args(["-qq", "update"]))?;
        for o in &opts {
            apt.arg("-o").arg(o);
        }
    }
    run(apt
        .args(["-qq", "download", "busybox-static"])
        .current_dir(&dir))?;
    let deb = fs::read_dir(&dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| {
            format!(
                "apt-get download busybox-static left no .deb in {}",
                dir.display()
            )
        })?;
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.join("root")))?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} holds no bin/busybox", deb.display()))
    }
}

/// Runs `cmd`; on failure, the error names it and carries its stderr.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("run {cmd:?}: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

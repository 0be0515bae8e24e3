//! Debian packages for one architecture from one Debian release, through
//! apt-get download, with sources and package lists of our own under
//! downloads()/apt/<release>-<arch>: the host's apt setup (its sources, its
//! architectures, its lists) is never changed, and nothing is installed.
//!
//! The sources are the release, its -updates and its -security, main only,
//! Packages indexes only, on the mirrors the host's own sources name (else
//! deb.debian.org), signed by Debian's archive keyring.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Debian's archive keys, every release's (package debian-archive-keyring).
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Set once apt-get update has waited for an unreachable mirror in vain.
static GAVE_UP: AtomicBool = AtomicBool::new(false);

pub struct Apt {
    /// A Debian architecture name (amd64, arm64, armhf, riscv64).
    arch: &'static str,
    /// A Debian release's code name (bullseye, bookworm, trixie, sid).
    release: String,
    dir: PathBuf,
}

impl Apt {
    pub fn new(arch: &'static str, release: &str) -> Apt {
        Apt {
            arch,
            release: release.to_string(),
            dir: super::downloads()
                .join("apt")
                .join(format!("{release}-{arch}")),
        }
    }

    /// For what runs on this machine (QEMU): its own release.
    pub fn host() -> crate::Result<Apt> {
        Ok(Apt::new(crate::arch::native().debian, &host_release()?))
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        for o in [
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            format!("Dir::State::Lists={}", self.dir.join("lists").display()),
            format!("Dir::Cache={}", self.dir.join("cache").display()),
            format!("Dir::Etc::SourceList={}", self.sources().display()),
            format!(
                "Dir::Etc::SourceParts={}",
                self.dir.join("sources.d").display()
            ),
            // What the host has installed is no candidate for a download.
            "Dir::State::status=/dev/null".into(),
            // Downloads go to our directory, which _apt may not reach.
            "APT::Sandbox::User=root".into(),
        ] {
            c.arg("-o").arg(o);
        }
        c
    }

    fn sources(&self) -> PathBuf {
        self.dir.join("sources.list")
    }

    /// The release's main Packages list, which everything here needs.
    fn has_main_list(&self) -> bool {
        let want = format!("_dists_{}_main_binary-{}_Packages", self.release, self.arch);
        fs::read_dir(self.dir.join("lists"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(&want))
    }

    /// Fetches the package lists, unless we have them.
    fn lists(&self) -> crate::Result {
        if self.has_main_list() {
            return Ok(());
        }
        self.update()
    }

    /// apt-get update. A list of -updates or -security that the mirror
    /// cannot give (it fails its checksum) is named and gone without: the
    /// release's own list is enough. Without that one, this fails.
    pub fn update(&self) -> crate::Result {
        for d in [
            self.dir.join("lists/partial"),
            self.dir.join("cache"),
            self.dir.join("sources.d"),
        ] {
            fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        let sources = sources_list(&self.release)?;
        fs::write(self.sources(), &sources)
            .map_err(|e| format!("write {}: {e}", self.sources().display()))?;
        println!(
            "xtask: apt-get update ({} {} lists, kept in {})",
            self.release,
            self.arch,
            self.dir.display()
        );
        // A mirror that cannot be reached (DNS, a dropped connection) is only
        // a warning to apt-get, which then exits 0 with no list at all: that
        // is retried, and said as what it is, never as "no such package".
        let mut out = self.update_once()?;
        for wait in [5, 20, 60] {
            if out.status.success() && self.has_main_list() {
                return Ok(());
            }
            // Waited for in vain once already: no other list waits again.
            if !unreachable(&out.stderr) || GAVE_UP.load(Ordering::Relaxed) {
                break;
            }
            println!(
                "xtask: apt-get update ({} {}): the mirror was not reached; again in {wait} s",
                self.release, self.arch
            );
            std::thread::sleep(std::time::Duration::from_secs(wait));
            out = self.update_once()?;
        }
        if out.status.success() && self.has_main_list() {
            GAVE_UP.store(false, Ordering::Relaxed);
            return Ok(());
        }
        if unreachable(&out.stderr) {
            GAVE_UP.store(true, Ordering::Relaxed);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("E: Failed to fetch") || l.starts_with("W: Failed to fetch"))
            .map(|l| l[2..].trim_start_matches(" Failed to fetch ").trim())
            .collect();
        if self.has_main_list() {
            for f in &failed {
                println!(
                    "xtask: apt-get update ({} {}): going on without a list the mirror cannot give: {f}",
                    self.release, self.arch
                );
            }
            return Ok(());
        }
        Err(format!(
            "apt-get update of {} {} lists failed ({}): {}",
            self.release,
            self.arch,
            if out.status.success() {
                "it exited 0 but left no main list".to_string()
            } else {
                out.status.to_string()
            },
            if !failed.is_empty() {
                failed.join("; ")
            } else if stderr.contains("E: ") || stderr.contains("W: ") {
                let errors: Vec<&str> = stderr
                    .lines()
                    .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
                    .collect();
                errors.join("; ")
            } else {
                stderr.trim().to_string()
            }
        ))
    }

    fn update_once(&self) -> crate::Result<std::process::Output> {
        self.command("apt-get")
            .args(["-q", "update"])
            .output()
            .map_err(|e| format!("run apt-get update: {e}"))
    }

    /// The versions of `pkg` the lists have, newest first.
    pub fn versions(&self, pkg: &str) -> crate::Result<Vec<String>> {
        self.lists()?;
        let out = self
            .command("apt-cache")
            .args(["madison", pkg])
            .output()
            .map_err(|e| format!("run apt-cache: {e}"))?;
        // "pkg | version | uri suite/component arch Packages"
        let mut versions: Vec<String> = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(v) = line.split('|').nth(1).map(str::trim) {
                if !versions.iter().any(|x| x == v) {
                    versions.push(v.to_string());
                }
            }
        }
        if versions.is_empty() {
            return Err(format!(
                "no {pkg} in the {} {} lists",
                self.release, self.arch
            ));
        }
        Ok(versions)
    }

    /// `pkg`'s Depends, as groups of alternatives (`pkg` may be
    /// `name=version`).
    pub fn depends(&self, pkg: &str) -> crate::Result<Vec<Vec<String>>> {
        self.lists()?;
        let out = self
            .command("apt-cache")
            .args([
                "depends",
                "--no-recommends",
                "--no-suggests",
                "--no-conflicts",
                "--no-breaks",
                "--no-replaces",
                "--no-enhances",
                pkg,
            ])
            .output()
            .map_err(|e| format!("run apt-cache: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-cache depends {pkg} ({} {}): {}",
                self.release,
                self.arch,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // "  Depends: a", " |Depends: b" (an alternative to the next line),
        // and, under a virtual package, its providers indented further.
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut continues = false;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((head, name)) = line.split_once("Depends: ") else {
                continue;
            };
            let name = name
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .to_string();
            match groups.last_mut() {
                Some(g) if continues => g.push(name),
                _ => groups.push(vec![name]),
            }
            continues = head.trim_start().starts_with('|');
        }
        Ok(groups)
    }

    /// Downloads those of `pkgs` that `dir` does not have yet; their .deb
    /// files, in order.
    pub fn download(&self, pkgs: &[String], dir: &Path) -> crate::Result<Vec<PathBuf>> {
        fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let missing: Vec<&String> = pkgs.iter().filter(|p| deb(dir, p).is_none()).collect();
        if !missing.is_empty() {
            self.lists()?;
            let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
            println!(
                "xtask: apt-get download {} ({} {})",
                names.join(" "),
                self.release,
                self.arch
            );
            let download = || {
                quiet(
                    self.command("apt-get")
                        .args(["-qq", "download"])
                        .args(&names)
                        .current_dir(dir),
                )
            };
            if download().is_err() {
                // Stale lists name versions the mirror no longer has.
                self.update()?;
                download()?;
            }
        }
        pkgs.iter()
            .map(|p| {
                deb(dir, p).ok_or_else(|| {
                    format!("apt-get download {p} left no .deb in {}", dir.display())
                })
            })
            .collect()
    }
}

/// Whether apt-get's stderr says a mirror could not be reached at all.
fn unreachable(stderr: &[u8]) -> bool {
    let s = String::from_utf8_lossy(stderr);
    [
        "Temporary failure resolving",
        "Could not resolve",
        "Could not connect",
        "Connection failed",
        "Connection timed out",
        "Network is unreachable",
        "Unable to connect",
    ]
    .iter()
    .any(|m| s.contains(m))
}

/// This machine's Debian release, from /etc/os-release.
fn host_release() -> crate::Result<String> {
    let text = fs::read_to_string("/etc/os-release")
        .map_err(|e| format!("read /etc/os-release: {e} (a Debian machine is needed)"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "/etc/os-release names no VERSION_CODENAME".into())
}

/// Our sources for `release`: on the mirrors the host's own sources use
/// for Debian (`apt-get indextargets` reads them; nothing is fetched).
fn sources_list(release: &str) -> crate::Result<String> {
    if !Path::new(KEYRING).exists() {
        return Err(format!(
            "{KEYRING} is missing: apt-get install debian-archive-keyring"
        ));
    }
    let host = host_release()?;
    let out = Command::new("apt-get")
        .args(["indextargets", "--format", "$(REPO_URI) $(RELEASE)"])
        .output()
        .map_err(|e| format!("run apt-get indextargets: {e}"))?;
    let targets = String::from_utf8_lossy(&out.stdout);
    let mirror = |suite: &str, default: &str| {
        targets
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(_, r)| *r == suite)
            .map(|(uri, _)| uri.trim_end_matches('/').to_string())
            .unwrap_or_else(|| default.to_string())
    };
    let debian = mirror(&host, "http://deb.debian.org/debian");
    let security = mirror(
        &format!("{host}-security"),
        "http://deb.debian.org/debian-security",
    );
    let line = |uri: &str, suite: &str| {
        format!("deb [signed-by={KEYRING} target=Packages] {uri} {suite} main\n")
    };
    let mut s = line(&debian, release);
    // Unstable has no updates and no security suite.
    if !matches!(release, "sid" | "unstable") {
        s.push_str(&line(&debian, &format!("{release}-updates")));
        s.push_str(&line(&security, &format!("{release}-security")));
    }
    Ok(s)
}

/// `pkg`'s .deb in `dir`: pkg_version_arch.deb.
fn deb(dir: &Path, pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

/// Unpacks a .deb's files into `dir`.
pub fn unpack(deb: &Path, dir: &Path) -> crate::Result {
    quiet(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))
}

/// Runs `cmd`; on failure, the error names it and carries its stderr.
fn quiet(cmd: &mut Command) -> crate::Result {
    husk_tests::rootfs::run(cmd)
}

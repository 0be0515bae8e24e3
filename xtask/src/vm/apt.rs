//! Debian packages for one architecture through apt-get download, with
//! package lists of our own under target/vm/apt/<arch>: the host's dpkg
//! setup (its architectures, its lists) is never changed, and nothing is
//! installed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Apt {
    /// A Debian architecture name (amd64, arm64).
    arch: &'static str,
    dir: PathBuf,
}

impl Apt {
    pub fn new(arch: &'static str) -> Apt {
        Apt {
            arch,
            dir: super::cache().join("apt").join(arch),
        }
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        for o in [
            format!("APT::Architecture={}", self.arch),
            format!("APT::Architectures={}", self.arch),
            format!("Dir::State::Lists={}", self.dir.join("lists").display()),
            format!("Dir::Cache={}", self.dir.join("cache").display()),
            // Downloads go to our directory, which _apt may not reach.
            "APT::Sandbox::User=root".into(),
        ] {
            c.arg("-o").arg(o);
        }
        c
    }

    /// Fetches the package lists, unless we have them.
    fn lists(&self) -> crate::Result {
        let lists = self.dir.join("lists");
        let have = fs::read_dir(&lists)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("_Packages"));
        if have {
            return Ok(());
        }
        self.update()
    }

    fn update(&self) -> crate::Result {
        for d in [self.dir.join("lists/partial"), self.dir.join("cache")] {
            fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        println!(
            "xtask: apt-get update ({} lists, kept in {})",
            self.arch,
            self.dir.display()
        );
        quiet(self.command("apt-get").args(["-qq", "update"]))
    }

    /// `pkg`'s Depends, as groups of alternatives.
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
                "apt-cache depends {pkg} ({}): {}",
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
                "xtask: apt-get download {} ({})",
                names.join(" "),
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

/// Whether the host has `pkg` installed.
pub fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Runs `cmd`; on failure, the error names it and carries its stderr.
fn quiet(cmd: &mut Command) -> crate::Result {
    husk_tests::rootfs::run(cmd)
}

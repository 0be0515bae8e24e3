//! QEMU: finding it, probing KVM, and booting a guest while reading its
//! serial console line by line, with a deadline.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::apt::{self, Apt};
use crate::arch::Arch;

pub struct Qemu {
    program: PathBuf,
    /// For a QEMU unpacked under downloads(): its libraries and firmware.
    library_path: Option<OsString>,
    modules: Option<PathBuf>,
    firmware: Vec<PathBuf>,
}

/// qemu-system-<arch> from PATH; else Debian's, unpacked under
/// downloads()/qemu with the libraries the host lacks. (Installing it can
/// conflict with what a machine has: on ours, a backported qemu-utils
/// Breaks Debian 12's qemu-system-common.)
pub fn find(a: &Arch) -> crate::Result<Qemu> {
    let name = format!("qemu-system-{}", a.qemu);
    if Command::new(&name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(Qemu {
            program: PathBuf::from(name),
            library_path: None,
            modules: None,
            firmware: Vec::new(),
        });
    }
    let pkg = match a.name {
        "x86_64" => "qemu-system-x86",
        "aarch64" | "armv7" => "qemu-system-arm",
        "riscv64" => "qemu-system-misc",
        other => return Err(format!("no QEMU package known for {other}")),
    };
    // One tree for every emulator, which share their libraries.
    let dir = super::downloads().join("qemu");
    let root = dir.join("root");
    let q = Qemu {
        program: root.join("usr/bin").join(&name),
        library_path: Some(
            std::env::join_paths([
                root.join("usr/lib").join(multiarch()),
                root.join("lib").join(multiarch()),
            ])
            .map_err(|e| e.to_string())?,
        ),
        modules: Some(root.join("usr/lib").join(multiarch()).join("qemu")),
        firmware: vec![root.join("usr/share/qemu"), root.join("usr/share/seabios")],
    };
    let stamp = dir.join(format!("{pkg}.complete"));
    if stamp.exists() {
        return Ok(q);
    }
    println!(
        "xtask: {name} is not installed: unpacking Debian's {pkg} into {}",
        root.display()
    );
    let apt = Apt::host()?;
    // The emulator and the libraries it needs that the host lacks, found
    // level by level; then its TCG module and firmware (x86's BIOS and
    // option ROMs; riscv64's OpenSBI), whose packages' own dependencies
    // are for what we do not use (audio, display, spice).
    let mut wanted: Vec<String> = vec![pkg.into()];
    let mut done = 0;
    while done < wanted.len() {
        let todo = wanted[done..].to_vec();
        done = wanted.len();
        fetch(&apt, &todo, &dir, &root)?;
        for p in &todo {
            for group in apt.depends(p)? {
                let d = &group[0];
                if d.starts_with("lib")
                    && !wanted.contains(d)
                    && !group.iter().any(|d| crate::setup::installed(d))
                {
                    wanted.push(d.clone());
                }
            }
        }
    }
    let mut data = vec!["qemu-system-common".to_string(), "qemu-system-data".into()];
    if a.name == "x86_64" {
        data.push("seabios".into());
    }
    fetch(&apt, &data, &dir, &root)?;
    // Anything still missing would only show as a failure to start.
    let out = Command::new("ldd")
        .arg(&q.program)
        .env("LD_LIBRARY_PATH", q.library_path.as_ref().unwrap())
        .output()
        .map_err(|e| format!("run ldd: {e}"))?;
    let missing: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("not found"))
        .map(|l| l.trim().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!("{} still lacks {missing:?}", q.program.display()));
    }
    fs::write(&stamp, "").map_err(|e| format!("write {}: {e}", stamp.display()))?;
    Ok(q)
}

fn fetch(apt: &Apt, pkgs: &[String], dir: &Path, root: &Path) -> crate::Result {
    for deb in apt.download(pkgs, &dir.join("debs"))? {
        apt::unpack(&deb, root)?;
    }
    Ok(())
}

fn multiarch() -> &'static str {
    match crate::arch::native().name {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "armv7" => "arm-linux-gnueabihf",
        _ => "riscv64-linux-gnu",
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

/// The serial console's device name in the guest: the virt machine's
/// PL011 on Arm, a 16550 elsewhere.
pub fn console(a: &Arch) -> &'static str {
    match a.name {
        "aarch64" | "armv7" => "ttyAMA0",
        _ => "ttyS0",
    }
}

/// The machine QEMU emulates for `a` (x86_64's default PC otherwise).
fn machine(a: &Arch) -> &'static [&'static str] {
    match a.name {
        "aarch64" => &["-M", "virt"],
        // Debian's armmp kernel is not LPAE: no RAM or devices above 4 GiB.
        "armv7" => &["-M", "virt,highmem=off"],
        // OpenSBI (QEMU's own build, found through -L) starts the kernel.
        "riscv64" => &["-M", "virt", "-bios", "default"],
        _ => &[],
    }
}

/// How TCG runs `a`'s vCPUs. x86_64's: one host thread taking turns. With
/// a thread each (MTTCG), x86_64 guests hung for good where the kernel
/// patched a static key (a cpuset or CPU quota made or removed:
/// cpusets_enabled, cfs_bandwidth_used) while the other vCPU ran that
/// code: both spun at the patched site (soft lockups in
/// get_page_from_freelist, 2 runs in 3 of 16 privileged starts on 5.10;
/// none in 3 runs of up to 30 on one thread). x86 patches live code with
/// int3 and IPIs; arm64 swaps one instruction, which its architecture
/// makes safe, and riscv64 patches under stop_machine. And on one thread
/// the armv7 guest never got past bringing up its second CPU (twice).
fn tcg(a: &Arch) -> &'static str {
    match a.name {
        "x86_64" => "tcg,thread=single",
        _ => "tcg",
    }
}

/// The CPU TCG emulates for `a` (QEMU's default for the machine otherwise).
fn tcg_cpu(a: &Arch) -> &'static [&'static str] {
    match a.name {
        // Rather than max: max's pointer authentication is slow to emulate.
        "aarch64" => &["-cpu", "cortex-a57"],
        "armv7" => &["-cpu", "cortex-a15"],
        _ => &[],
    }
}

impl Qemu {
    pub fn command(&self, a: &Arch, accel: Accel, kernel: &Path) -> Command {
        let mut c = Command::new(&self.program);
        if let Some(p) = &self.library_path {
            c.env("LD_LIBRARY_PATH", p);
        }
        if let Some(m) = &self.modules {
            // Debian builds TCG itself as a module.
            c.env("QEMU_MODULE_DIR", m);
        }
        for f in &self.firmware {
            c.arg("-L").arg(f);
        }
        c.args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
        c.args(["-serial", "stdio", "-m", "1024", "-smp", "2"]);
        c.args(machine(a));
        match accel {
            // KVM runs only this machine's architecture, on its own CPU.
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => c.args(["-accel", tcg(a)]).args(tcg_cpu(a)),
        };
        c.arg("-kernel").arg(kernel);
        c.stdin(Stdio::null());
        c
    }

    /// KVM if it boots a kernel far enough to print its banner within a
    /// few seconds (on some machines a KVM guest hangs at boot, or QEMU
    /// cannot set up the vCPU), else TCG.
    pub fn accel(&self, a: &Arch, kernel: &Path) -> Accel {
        let usable = a.name == crate::arch::native().name
            && fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_ok();
        if !usable {
            return Accel::Tcg;
        }
        let mut c = self.command(a, Accel::Kvm, kernel);
        c.arg("-append")
            .arg(format!("console={} panic=-1", console(a)));
        let Ok(run) = Run::start(&mut c) else {
            return Accel::Tcg;
        };
        let mut banner = false;
        let wait = Duration::from_secs(8);
        let end = run.finish(wait, wait, |line| {
            banner = line.contains("Linux version");
            if banner {
                Next::Stop
            } else {
                Next::Continue
            }
        });
        if banner {
            return Accel::Kvm;
        }
        let why = match end {
            Ok(End::Exited(stderr)) => format!(
                "QEMU failed: {}",
                stderr
                    .lines()
                    .find(|l| !l.contains("warning"))
                    .unwrap_or("")
                    .trim()
            ),
            _ => "the guest printed nothing in 8 s".into(),
        };
        println!("xtask: /dev/kvm is there, but KVM does not work here ({why}): using TCG");
        Accel::Tcg
    }
}

/// What to do after a console line.
pub enum Next {
    Continue,
    /// Wait at most this long more.
    Within(Duration),
    /// Kill QEMU now.
    Stop,
}

#[derive(Debug)]
pub enum End {
    /// QEMU exited, with its stderr.
    Exited(String),
    TimedOut,
    /// No line for the silence given.
    Silent,
    Stopped,
}

/// A running QEMU whose serial console arrives as lines.
pub struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Run {
    pub fn start(cmd: &mut Command) -> crate::Result<Run> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run {cmd:?}: {e}"))?;
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                if tx.send(clean(&buf)).is_err() {
                    break;
                }
                buf.clear();
            }
        });
        Ok(Run { child, lines })
    }

    /// Hands each console line to `each` until QEMU exits, `each` says
    /// stop, `timeout` passes or no line comes for `silence`; QEMU is
    /// killed unless it exited.
    pub fn finish(
        mut self,
        timeout: Duration,
        silence: Duration,
        mut each: impl FnMut(&str) -> Next,
    ) -> crate::Result<End> {
        let mut deadline = Instant::now() + timeout;
        let end = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(silence)) {
                Ok(line) => match each(&line) {
                    Next::Continue => {}
                    Next::Within(d) => deadline = deadline.min(Instant::now() + d),
                    Next::Stop => break End::Stopped,
                },
                Err(mpsc::RecvTimeoutError::Timeout) if silence < left => break End::Silent,
                Err(mpsc::RecvTimeoutError::Timeout) => break End::TimedOut,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let mut stderr = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = e.read_to_string(&mut stderr);
                    }
                    let status = self
                        .child
                        .wait()
                        .map_err(|e| format!("wait for QEMU: {e}"))?;
                    if !status.success() {
                        stderr.push_str(&format!("(QEMU: {status})"));
                    }
                    return Ok(End::Exited(stderr));
                }
            }
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(end)
    }
}

/// A console line as text: no line ending, no terminal escape sequences
/// (SeaBIOS clears the screen), no other control characters.
fn clean(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ params letter, or ESC and one character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

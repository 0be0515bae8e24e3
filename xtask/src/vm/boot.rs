//! One VM: boot a guest with a cgroup layout, follow its serial console,
//! keep it in target/vm/<arch>-<kernel>-<layout>.log, and read the init's
//! "vm-test: N passed, M failed".

use std::fs;
use std::time::{Duration, Instant};

use super::guest::Guest;
use super::matrix::{Choice, Layout, Root};
use super::qemu::{self, Accel, End, Next};
use super::{cache, init};

/// What one VM gave.
pub struct Outcome {
    /// "x86_64 5.10 v1"
    pub name: String,
    pub arch: &'static str,
    /// The kernel's release, e.g. 5.10.0-46-cloud-amd64.
    pub kernel: String,
    pub root: Root,
    pub layout: Layout,
    pub accel: Option<Accel>,
    pub wall: Duration,
    pub passed: usize,
    pub failed: usize,
    /// Why the VM failed, if it did.
    pub error: Option<String>,
    /// husk-tests' line naming scenarios that passed only on a second try.
    pub flaky: Option<String>,
}

impl Outcome {
    /// A VM of `c` that could not boot: its guest could not be made.
    pub fn unmade(c: &Choice, layout: Layout, error: &str) -> Outcome {
        Outcome {
            name: name(c.arch.name, c.row.kernel.series, layout),
            arch: c.arch.name,
            kernel: format!("{} (not fetched)", c.row.kernel.series),
            root: c.root,
            layout,
            accel: None,
            wall: Duration::ZERO,
            passed: 0,
            failed: 0,
            error: Some(error.to_string()),
            flaky: None,
        }
    }
}

/// What every VM is asked to do.
pub struct Run<'a> {
    pub timeout: Duration,
    pub verbose: bool,
    pub scenarios: &'a [String],
    /// How many scenarios must pass.
    pub expected: usize,
}

/// "x86_64 5.10 v1": how the output and the table name a VM.
pub fn name(arch: &str, series: &str, layout: Layout) -> String {
    format!("{arch} {series} {}", layout.name())
}

pub fn boot(guest: &Guest, layout: Layout, run: &Run) -> Outcome {
    let series = guest.kernel.series();
    let name = name(guest.arch.name, &series, layout);
    let log = cache().join(format!(
        "{}-{series}-{}.log",
        guest.arch.name,
        layout.name()
    ));
    let mut o = Outcome {
        name: name.clone(),
        arch: guest.arch.name,
        kernel: guest.kernel.version.clone(),
        root: guest.root,
        layout,
        accel: Some(guest.accel),
        wall: Duration::ZERO,
        passed: 0,
        failed: 0,
        error: None,
        flaky: None,
    };
    println!(
        "xtask: booting {name} ({}, kernel {}, timeout {} s)",
        guest.accel.name(),
        guest.kernel.version,
        run.timeout.as_secs()
    );
    let mut cmd = guest
        .qemu
        .command(guest.arch, guest.accel, &guest.kernel.image);
    cmd.arg("-initrd").arg(&guest.initrd);
    cmd.arg("-append").arg(init::cmdline(
        qemu::console(guest.arch),
        layout,
        guest.root,
        run.scenarios,
    ));
    let start = Instant::now();
    let qemu = match qemu::Run::start(&mut cmd) {
        Ok(q) => q,
        Err(e) => {
            o.error = Some(e);
            return o;
        }
    };
    // Each line with the time it came, for the log.
    let mut console: Vec<(Duration, String)> = Vec::new();
    let mut testing = false;
    let mut summary: Option<(usize, usize)> = None;
    let mut panic = false;
    let end = qemu.finish(run.timeout, |line| {
        console.push((start.elapsed(), line.to_string()));
        if line.contains("Kernel panic") {
            panic = true;
        }
        if let Some(s) = line.strip_prefix(init::SAYS).and_then(parse_summary) {
            summary = Some(s);
            testing = false;
        }
        if run.verbose || testing || line.starts_with(init::SAYS) {
            println!("  [{name}] {line}");
        }
        if line == init::BEGIN {
            testing = true;
        }
        if summary.is_some() {
            // The init powers off next.
            Next::Within(Duration::from_secs(30))
        } else if panic {
            // The rest of the panic message, then QEMU exits (-no-reboot).
            Next::Within(Duration::from_secs(5))
        } else {
            Next::Continue
        }
    });
    o.wall = start.elapsed();
    let text: String = console
        .iter()
        .map(|(t, l)| format!("[{:7.2}] {l}\n", t.as_secs_f64()))
        .collect();
    if let Err(e) = fs::write(&log, text) {
        println!("xtask: {name}: write {}: {e}", log.display());
    }

    (o.passed, o.failed) = summary.unwrap_or((0, 0));
    o.flaky = console
        .iter()
        .find(|(_, l)| l.starts_with("flaky "))
        .map(|(_, l)| l.clone());
    o.error = if panic {
        Some("the kernel panicked".to_string())
    } else if summary.is_none() {
        Some(match &end {
            Ok(End::TimedOut) => format!("no result after {} s", run.timeout.as_secs()),
            Ok(End::Exited(stderr)) => format!("QEMU exited with no result: {}", stderr.trim()),
            Ok(End::Stopped) => "stopped".into(),
            Err(e) => e.clone(),
        })
    } else if o.failed > 0 {
        let names: Vec<&str> = console
            .iter()
            .filter_map(|(_, l)| l.strip_prefix("FAILED "))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        Some(format!("{} failed: {}", o.failed, names.join(", ")))
    } else if o.passed != run.expected {
        Some(format!("{} of {} scenarios passed", o.passed, run.expected))
    } else {
        None
    };
    if o.error.is_some() && !run.verbose && (panic || summary.is_none()) {
        // The console's end shows the hang, or the panic and its trace.
        println!("  [{name}] ... the console's last lines:");
        for (_, l) in &console[console.len().saturating_sub(40)..] {
            println!("  [{name}] {l}");
        }
    }
    println!(
        "xtask: {name}: {} passed, {} failed in {:.1} s ({}); console in {}",
        o.passed,
        o.failed,
        o.wall.as_secs_f64(),
        guest.accel.name(),
        log.display()
    );
    o
}

/// "N passed, M failed"
fn parse_summary(s: &str) -> Option<(usize, usize)> {
    let (p, f) = s.split_once(", ")?;
    Some((
        p.strip_suffix(" passed")?.parse().ok()?,
        f.strip_suffix(" failed")?.parse().ok()?,
    ))
}

//! The results as markdown (stdout, and target/bench/bench.md for the
//! README) and as JSON (target/bench/bench.json).

use std::fmt::Write;

use super::density::Density;
use super::json;
use super::memory::Peaks;
use super::startup::{Contender, Measured};
use super::syscalls::Cost;
use super::Stats;

pub struct Machine {
    pub date: String,
    pub os: String,
    pub kernel: String,
    pub cpu: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub cgroups: String,
    /// The share of the CPU time that other processes used during the
    /// start-up rounds.
    pub others_cpu: f64,
    /// Each contender's `--version`, first line.
    pub versions: Vec<(String, String)>,
}

pub struct Size {
    pub name: String,
    pub path: String,
    pub bytes: u64,
    pub is_static: Option<bool>,
}

pub struct Report<'a> {
    pub machine: Machine,
    pub quick: bool,
    pub rounds: u32,
    pub startup: Vec<(&'a Contender, Measured)>,
    /// Name, command, why not.
    pub cannot_run: Vec<(String, String, String)>,
    pub notes: Vec<String>,
    /// The runner's flags, and what they gave.
    pub peaks: Vec<(String, Result<Peaks, String>)>,
    /// What the seccomp filter costs per syscall.
    pub seccomp: Result<Cost, String>,
    pub sizes: Vec<Size>,
    pub density: Vec<Density>,
    pub leftovers: Vec<String>,
    pub seconds: f64,
}

/// A figure the goals are about: what, measured, goal, met.
type Figure = (String, String, String, Option<bool>);

impl Report<'_> {
    fn floor(&self, netns: bool) -> Option<Stats> {
        self.startup
            .iter()
            .find(|(c, _)| c.floor && c.netns == netns)
            .and_then(|(_, m)| m.stats())
    }

    /// Median above the floor with the same namespaces, in ms.
    fn overhead(&self, c: &Contender, m: &Measured) -> Option<f64> {
        Some(m.stats()?.median - self.floor(c.netns)?.median)
    }

    fn overhead_of(&self, name: &str) -> Option<f64> {
        let (c, m) = self.startup.iter().find(|(c, _)| c.name == name)?;
        self.overhead(c, m)
    }

    fn figures(&self) -> Vec<Figure> {
        let mut rows = Vec::new();
        let ms = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.3} ms"));
        for (name, what) in [
            ("husk", "husk above the floor (median, new netns)"),
            (
                "husk --net host",
                "husk --net host above the floor (median)",
            ),
        ] {
            let o = self.overhead_of(name);
            rows.push((what.into(), ms(o), "≤ 0.3 ms".into(), o.map(|o| o <= 0.3)));
        }
        let husk = self.overhead_of("husk");
        for (c, m) in &self.startup {
            if c.floor || c.name.starts_with("husk") {
                continue;
            }
            let goal = match c.name.as_str() {
                "bubblewrap" => Some(5.0),
                "runc" => Some(50.0),
                _ => None,
            };
            let peer = self.overhead(c, m);
            let (text, met) = match (husk, peer) {
                (Some(h), Some(p)) if h > 0.0 && p > 0.0 => (
                    format!("{:.3} ({:.1}× smaller)", h / p, p / h),
                    goal.map(|g| p / h >= g),
                ),
                _ => ("–".into(), None),
            };
            rows.push((
                format!("husk's overhead ÷ {}'s", c.name),
                text,
                goal.map_or("–".into(), |g| {
                    format!("≤ {:.3} (≥ {g}× smaller)", 1.0 / g)
                }),
                met,
            ));
        }
        if let Some((_, Ok(p))) = self.peaks.first() {
            rows.push((
                "runner peak RSS (VmHWM, whole run)".into(),
                format!("{} KiB", p.runner_hwm),
                "< 1024 KiB".into(),
                Some(p.runner_hwm < 1024),
            ));
            rows.push((
                "shim peak RSS (VmHWM, at its exec of the program)".into(),
                format!("{} KiB", p.shim_hwm),
                "< 16 KiB".into(),
                Some(p.shim_hwm < 16),
            ));
        }
        if let Some(s) = self.sizes.iter().find(|s| s.name == "husk shim") {
            rows.push((
                "shim file size".into(),
                format!("{} bytes", s.bytes),
                "≤ 16384 bytes".into(),
                Some(s.bytes <= 16384),
            ));
        }
        rows
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(
            o,
            "{} — {}, kernel {}, {} × {}, {:.0} GiB, {}; other processes' share of the CPU during the start-up rounds: {:.0}%{}\n",
            m.date,
            m.os,
            m.kernel,
            m.cpus,
            m.cpu,
            m.memory_gib,
            m.cgroups,
            m.others_cpu * 100.0,
            if self.quick { " — **--quick**" } else { "" }
        );

        let _ = writeln!(
            o,
            "Start-up of `/bin/true` in a busybox rootfs, {} interleaved rounds (ms; R is the rootfs, B an OCI bundle of it):\n",
            self.rounds
        );
        o.push_str(
            "| contender | command | netns | mean | median | p95 | above floor | largest process KiB |\n",
        );
        o.push_str("|---|---|:-:|---:|---:|---:|---:|---:|\n");
        for (c, meas) in &self.startup {
            let Some(s) = meas.stats() else {
                let _ = writeln!(
                    o,
                    "| {} | `{}` | | failed: {} | | | | |",
                    c.name,
                    c.shown,
                    meas.last_failure.as_deref().unwrap_or("?")
                );
                continue;
            };
            let above = if c.floor {
                "–".to_string()
            } else {
                self.overhead(c, meas)
                    .map_or("–".into(), |x| format!("{x:.3}"))
            };
            let failed = if meas.failures > 0 {
                format!(" ({} failed)", meas.failures)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "| {}{failed} | `{}` | {} | {:.3} | {:.3} | {:.3} | {above} | {} |",
                c.name,
                c.shown,
                if c.netns { "yes" } else { "no" },
                s.mean,
                s.median,
                s.p95,
                meas.max_rss_kib
            );
        }
        for (name, shown, why) in &self.cannot_run {
            let _ = writeln!(
                o,
                "| {name} | `{shown}` | | cannot run here: {} | | | | |",
                why.replace('|', "\\|")
            );
        }
        o.push_str(
            "\n\"above floor\": median minus the median of the floor with the same network \
             namespace choice. \"largest process\": the largest peak RSS (ru_maxrss) among a run's \
             processes; busybox `true` itself is about 1.3 MiB, so for the floor and husk it is busybox's.\n",
        );

        o.push_str(
            "\nThe figures that matter:\n\n| figure | measured | goal | |\n|---|---:|---:|:-:|\n",
        );
        for (what, value, goal, met) in self.figures() {
            let mark = match met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "",
            };
            let _ = writeln!(o, "| {what} | {value} | {goal} | {mark} |");
        }

        o.push_str(
            "\nPeak memory, VmHWM in KiB, read under ptrace when each peaks:\n\n| process |",
        );
        for (flags, _) in &self.peaks {
            let _ = write!(o, " `runner {flags}-- /bin/true` |");
        }
        o.push_str("\n|---|");
        o.push_str(&"---:|".repeat(self.peaks.len()));
        o.push('\n');
        type Get = fn(&Peaks) -> u64;
        let rows: [(&str, Get); 3] = [
            ("runner, its whole run", |p| p.runner_hwm),
            ("shim, at its exec of the program", |p| p.shim_hwm),
            ("container's PID 1 after the exec (busybox true)", |p| {
                p.init_hwm
            }),
        ];
        for (what, get) in rows {
            let _ = write!(o, "| {what} |");
            for (_, p) in &self.peaks {
                match p {
                    Ok(p) => {
                        let _ = write!(o, " {} |", get(p));
                    }
                    Err(e) => {
                        let _ = write!(o, " failed: {e} |");
                    }
                }
            }
            o.push('\n');
        }

        if let Some((_, Ok(p))) = self.peaks.first() {
            let list = |maps: &[(String, u64)]| {
                maps.iter()
                    .map(|(m, k)| format!("{m} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                o,
                "\nResident KiB by mapping — runner at exit: {}; shim at its exec: {}.",
                list(&p.runner_maps),
                list(&p.shim_maps)
            );
        }

        match &self.seccomp {
            Ok(cost) => {
                o.push('\n');
                o.push_str(&cost.markdown());
            }
            Err(e) => {
                let _ = writeln!(o, "\nSeccomp per syscall: not measured: {e}");
            }
        }
        o.push_str("\nBinary sizes:\n\n| binary | bytes | static |\n|---|---:|:-:|\n");
        for s in &self.sizes {
            let st = match s.is_static {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            };
            let _ = writeln!(o, "| {} (`{}`) | {} | {st} |", s.name, s.path, s.bytes);
        }

        if !self.density.is_empty() {
            let charged_by = self
                .density
                .iter()
                .find_map(|d| d.outcome.as_ref().ok().map(|f| f.charged_by))
                .unwrap_or("memory cgroup");
            let _ = writeln!(
                o,
                "\nDensity: N `sleep` containers started at once. Per container: the runtime's \
                 processes that stay beside it, their PSS and RSS in KiB, and all memory charged \
                 in KiB ({charged_by}: runtime, sleep, page tables, namespaces and other kernel \
                 objects):\n"
            );
            o.push_str("| runtime | N | all running s | runtime processes | runtime PSS | runtime RSS | charged | stop all s |\n");
            o.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
            for d in &self.density {
                match &d.outcome {
                    Ok(f) => {
                        let _ = writeln!(
                            o,
                            "| {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} |",
                            d.name,
                            d.n,
                            f.all_running_s,
                            f.runtime_processes,
                            f.runtime_pss,
                            f.runtime_rss,
                            f.charged,
                            f.stop_s
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(o, "| {} | {} | failed: {e} | | | | | |", d.name, d.n);
                    }
                }
            }
        }

        o.push('\n');
        for note in &self.notes {
            let _ = writeln!(o, "- {note}");
        }
        if self.leftovers.is_empty() {
            o.push_str("- Left behind: nothing (mounts, cgroups, runc/crun state, processes).\n");
        } else {
            for l in &self.leftovers {
                let _ = writeln!(o, "- **Left behind**: {l}");
            }
        }
        let versions: Vec<String> = m
            .versions
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        let _ = writeln!(o, "- Versions: {}.", versions.join("; "));
        o
    }

    pub fn json(&self) -> String {
        let m = &self.machine;
        let s = json::string;
        let n = |x: f64| json::number(Some(x));
        let machine = json::object(&[
            ("date", s(&m.date)),
            ("os", s(&m.os)),
            ("kernel", s(&m.kernel)),
            ("cpu", s(&m.cpu)),
            ("cpus", m.cpus.to_string()),
            ("memory_gib", n(m.memory_gib)),
            ("cgroups", s(&m.cgroups)),
            ("others_cpu_share", n(m.others_cpu)),
            (
                "versions",
                json::object(
                    &m.versions
                        .iter()
                        .map(|(k, v)| (k.as_str(), s(v)))
                        .collect::<Vec<_>>(),
                ),
            ),
        ]);
        let mut startup: Vec<String> = self
            .startup
            .iter()
            .map(|(c, meas)| {
                let st = meas.stats();
                let f = |g: fn(&Stats) -> f64| json::number(st.as_ref().map(g));
                json::object(&[
                    ("name", s(&c.name)),
                    ("command", s(&c.shown)),
                    ("netns", c.netns.to_string()),
                    ("floor", c.floor.to_string()),
                    ("runs", meas.samples.len().to_string()),
                    ("failures", meas.failures.to_string()),
                    ("mean_ms", f(|s| s.mean)),
                    ("median_ms", f(|s| s.median)),
                    ("p95_ms", f(|s| s.p95)),
                    ("min_ms", f(|s| s.min)),
                    (
                        "above_floor_ms",
                        json::number(if c.floor {
                            None
                        } else {
                            self.overhead(c, meas)
                        }),
                    ),
                    ("peak_rss_kib", meas.max_rss_kib.to_string()),
                ])
            })
            .collect();
        startup.extend(self.cannot_run.iter().map(|(name, shown, why)| {
            json::object(&[
                ("name", s(name)),
                ("command", s(shown)),
                ("cannot_run_here", s(why)),
            ])
        }));
        let figures: Vec<String> = self
            .figures()
            .iter()
            .map(|(what, value, goal, met)| {
                json::object(&[
                    ("figure", s(what)),
                    ("measured", s(value)),
                    ("goal", s(goal)),
                    ("met", met.map_or("null".into(), |m| m.to_string())),
                ])
            })
            .collect();
        let peaks: Vec<String> = self
            .peaks
            .iter()
            .map(|(flags, p)| match p {
                Ok(p) => json::object(&[
                    ("runner_flags", s(flags)),
                    ("runner_vmhwm_kib", p.runner_hwm.to_string()),
                    ("shim_vmhwm_kib", p.shim_hwm.to_string()),
                    ("shim_vmrss_kib", p.shim_rss.to_string()),
                    ("init_vmhwm_kib", p.init_hwm.to_string()),
                ]),
                Err(e) => json::object(&[("runner_flags", s(flags)), ("error", s(e))]),
            })
            .collect();
        let sizes: Vec<String> = self
            .sizes
            .iter()
            .map(|z| {
                json::object(&[
                    ("name", s(&z.name)),
                    ("path", s(&z.path)),
                    ("bytes", z.bytes.to_string()),
                    (
                        "static",
                        z.is_static.map_or("null".into(), |b| b.to_string()),
                    ),
                ])
            })
            .collect();
        let density: Vec<String> = self
            .density
            .iter()
            .map(|d| match &d.outcome {
                Ok(f) => json::object(&[
                    ("runtime", s(&d.name)),
                    ("containers", d.n.to_string()),
                    ("all_running_s", n(f.all_running_s)),
                    ("runtime_processes_per_container", n(f.runtime_processes)),
                    ("runtime_pss_kib_per_container", n(f.runtime_pss)),
                    ("runtime_rss_kib_per_container", n(f.runtime_rss)),
                    ("charged_kib_per_container", n(f.charged)),
                    ("charged_by", s(f.charged_by)),
                    ("stop_all_s", n(f.stop_s)),
                ]),
                Err(e) => json::object(&[
                    ("runtime", s(&d.name)),
                    ("containers", d.n.to_string()),
                    ("error", s(e)),
                ]),
            })
            .collect();
        let strings = |v: &[String]| json::array(&v.iter().map(|x| s(x)).collect::<Vec<_>>());
        json::top(&[
            ("machine", machine),
            ("quick", self.quick.to_string()),
            ("rounds", self.rounds.to_string()),
            ("startup", json::array(&startup)),
            ("figures", json::array(&figures)),
            ("peak_memory", json::array(&peaks)),
            (
                "seccomp_per_syscall",
                match &self.seccomp {
                    Ok(cost) => cost.json(),
                    Err(e) => json::object(&[("error", s(e))]),
                },
            ),
            ("sizes", json::array(&sizes)),
            ("density", json::array(&density)),
            ("notes", strings(&self.notes)),
            ("left_behind", strings(&self.leftovers)),
            ("seconds", n(self.seconds)),
        ])
    }
}

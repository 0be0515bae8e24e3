//! Helpers for the scenarios of detached containers: the runner's other
//! commands, and a guard that removes a container however its scenario
//! ends, so that a failing check leaves nothing for the next.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runner::json::{self, Value};

use crate::{check, output, Env, Output};

impl Env {
    /// The runner with `args`, its stdin on /dev/null.
    pub fn husk_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runner);
        c.args(args).stdin(Stdio::null());
        c
    }

    /// Runs the runner with `args` and waits.
    pub fn husk(&self, args: &[&str]) -> Output {
        output(&mut self.husk_command(args))
    }

    /// `run -d` of `cmd` with `flags`: the container, once it runs.
    pub fn detach(&self, flags: &[&str], cmd: &[&str]) -> Result<Detached<'_>, String> {
        let rootfs = self.rootfs.to_string_lossy().into_owned();
        let mut args = vec!["run", "-d", "--rootfs", &rootfs];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(cmd);
        let out = self.husk(&args);
        out.expect(0)?;
        let id = out.stdout.trim().to_string();
        check(!id.is_empty() && !id.contains('\n'), || {
            format!("run -d did not print one ID\n{out}")
        })?;
        Ok(Detached { env: self, id })
    }
}

/// A detached container, removed (`rm -f`) when dropped.
pub struct Detached<'a> {
    env: &'a Env,
    pub id: String,
}

impl<'a> Detached<'a> {
    /// The container `id`, started some other way.
    pub fn named(env: &'a Env, id: &str) -> Detached<'a> {
        Detached {
            env,
            id: id.to_string(),
        }
    }

    /// `inspect` of it, as JSON.
    pub fn inspect(&self) -> Result<Value, String> {
        let out = self.env.husk(&["inspect", &self.id]);
        out.expect(0)?;
        let v = json::parse(&out.stdout).map_err(|e| format!("inspect: {e}\n{out}"))?;
        v.as_array()
            .and_then(|a| a.first().cloned())
            .ok_or_else(|| format!("inspect printed no object\n{out}"))
    }

    /// A number of its state.
    pub fn number(&self, key: &str) -> Result<i64, String> {
        let v = self.inspect()?;
        v.get(key)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("no number {key} in {}", v.to_json()))
    }

    /// Its PID 1, as the host sees it.
    pub fn pid1(&self) -> Result<i32, String> {
        self.number("pid").map(|p| p as i32)
    }

    /// Its status as `ps -a --format json` shows it ("" if not listed).
    pub fn status(&self) -> String {
        ps(self.env, true)
            .into_iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(&self.id))
            .and_then(|r| r.get("status").and_then(Value::as_str).map(String::from))
            .unwrap_or_default()
    }
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = self.env.husk(&["rm", "-f", &self.id]);
    }
}

/// `ps --format json` (with `-a` when `all`): one object per container.
pub fn ps(env: &Env, all: bool) -> Vec<Value> {
    let mut args = vec!["ps", "--format", "json"];
    if all {
        args.push("-a");
    }
    let out = env.husk(&args);
    json::parse(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(<[Value]>::to_vec))
        .unwrap_or_default()
}

/// Polls `cond` every 10 ms for up to `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

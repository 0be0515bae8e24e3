//! The commands other than a container's start, as the command line
//! gives them: each opens the state store, ends what a killed runner left
//! (the sweep: every husk command does it), calls the library, and says
//! what happened, one line per failure.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use runner::error::{Error, Result, RUNTIME};
use runner::json::Value;
use runner::kernel::Missing;
use runner::store::{self, Found, Status, Store};
use runner::{lifecycle, log};

use crate::cli::{lifecycle as cli, Args};
use crate::front;

/// The store, swept.
pub(crate) fn store(root: Option<&str>) -> Result<Store> {
    let store = Store::open(&PathBuf::from(root.unwrap_or(store::DEFAULT_ROOT)))?;
    store.sweep(&Missing::default());
    Ok(store)
}

pub fn run(args: Args) -> Result<i32> {
    let opts = runner::run::Options {
        detached: args.detach,
        auto_remove: args.rm,
        keep: args.keep,
        named: args.name.is_some(),
        stdio: [None; 3],
        oci: None,
    };
    let detach = args.detach;
    let (spec, root) = front::spec(args, &front::Host::read())?;
    if detach {
        let id = runner::detach::start(spec, &root, opts, log::DEFAULT_CAP)?;
        println!("{id}");
        Ok(0)
    } else {
        runner::run::foreground(spec, &root, &opts)
    }
}

/// Runs `f` on each ID; each failure is one line, and the status is 125
/// if any failed.
pub(crate) fn each(ids: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    if ids.is_empty() {
        return Err(Error::new("no container given"));
    }
    let mut status = 0;
    for id in ids {
        if let Err(e) = f(id) {
            eprintln!("runner: {e}");
            status = e.status;
        }
    }
    Ok(status)
}

pub fn ps(a: cli::Ps) -> Result<i32> {
    let json = match a.format.as_deref() {
        None | Some("table") => false,
        Some("json") => true,
        Some(other) => {
            return Err(Error::new(format!(
                "--format {other}: expected table or json"
            )))
        }
    };
    let store = store(a.root.as_deref())?;
    let rows: Vec<Row> = store
        .list()
        .iter()
        .map(Row::of)
        .filter(|r| a.all || r.running)
        .collect();
    let mut out = std::io::stdout().lock();
    let text = if json {
        Value::Array(rows.iter().map(Row::json).collect()).to_json() + "\n"
    } else {
        table(&rows)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(0)
}

/// One container as `ps` shows it.
struct Row {
    id: String,
    name: String,
    command: String,
    status: String,
    running: bool,
    pid: Option<i32>,
    created: String,
    rootfs: String,
}

impl Row {
    fn of(f: &Found) -> Row {
        let state = match &f.state {
            Ok(s) => s,
            // A truncated or hand-edited file: what is known is its ID.
            Err(e) => {
                return Row {
                    id: f.id.clone(),
                    name: String::new(),
                    command: String::new(),
                    status: format!("unknown: {e}"),
                    running: f.supervised(),
                    pid: None,
                    created: String::new(),
                    rootfs: String::new(),
                }
            }
        };
        // An OCI container is looked after by its caller: alive or not
        // is its PID 1's to say.
        let status = match state.oci {
            true => runner::oci::status(state, &f.dir),
            false => state.status,
        };
        let running = match state.oci {
            true => status == Status::Running || status == Status::Created,
            false => state.status == Status::Running && f.supervised(),
        };
        Row {
            id: f.id.clone(),
            name: if state.named {
                f.id.clone()
            } else {
                String::new()
            },
            command: state.spec.argv.join(" "),
            status: if state.status == Status::Running && !running && !state.oci {
                "running, its monitor gone".into()
            } else if state.oci {
                status.name().into()
            } else {
                state.describe()
            },
            running,
            pid: running.then_some(state.pid),
            created: state.created.clone(),
            rootfs: state.bundle.clone(),
        }
    }

    fn json(&self) -> Value {
        let s = |x: &str| Value::string(x);
        Value::Object(vec![
            ("id".into(), s(&self.id)),
            ("name".into(), s(&self.name)),
            ("command".into(), s(&self.command)),
            ("status".into(), s(&self.status)),
            ("running".into(), Value::Bool(self.running)),
            ("pid".into(), self.pid.map_or(Value::Null, Value::number)),
            ("created".into(), s(&self.created)),
            ("rootfs".into(), s(&self.rootfs)),
        ])
    }
}

fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 7]> = std::iter::once(
        [
            "ID", "NAME", "COMMAND", "STATUS", "PID", "CREATED", "ROOTFS",
        ]
        .map(String::from),
    )
    .chain(rows.iter().map(|r| {
        let mut command = r.command.clone();
        if let Some((cut, _)) = command.char_indices().nth(30) {
            command.truncate(cut);
            command.push('…');
        }
        [
            r.id.clone(),
            r.name.clone(),
            command,
            r.status.clone(),
            r.pid.map_or("-".into(), |p| p.to_string()),
            r.created.clone(),
            r.rootfs.clone(),
        ]
    }))
    .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..7).map(width).collect();
    let mut out = String::new();
    for c in &cells {
        let line: Vec<String> = c
            .iter()
            .zip(&widths)
            .map(|(text, w)| format!("{text:<w$}"))
            .collect();
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    out
}

pub fn logs(a: cli::Logs) -> Result<i32> {
    let store = store(a.root.as_deref())?;
    let found = store.find(&a.id)?;
    if found.state.as_ref().is_ok_and(|s| !s.detached) {
        return Err(Error::new(format!(
            "{}: has no log: it runs in the foreground, where its output goes",
            a.id
        )));
    }
    let since = match &a.since {
        None => None,
        Some(s) => Some(
            store::time::parse_since(s, SystemTime::now()).ok_or_else(|| {
                Error::new(format!(
                    "--since {s}: expected a time such as 2026-11-23T21:07:47Z, or 10s, 5m, 2h"
                ))
            })?,
        ),
    };
    let filter = log::Filter {
        since,
        tail: a.tail,
    };
    let (lines, mut pos) = log::read(&found.dir, &filter);
    if !show(&lines, a.timestamps) || !a.follow {
        return Ok(0);
    }
    let mut carry = String::new();
    loop {
        let ended = !found.supervised();
        let lines = log::more(&found.dir, &mut pos, &mut carry);
        if !show(&lines, a.timestamps) || ended || !found.dir.is_dir() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes log lines where the container wrote them; false once stdout
/// is gone (a closed pipe).
fn show(lines: &[String], stamps: bool) -> bool {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for l in lines {
        let Some(line) = log::Line::parse(l) else {
            continue;
        };
        let text = match (stamps, line.full) {
            (true, true) => format!("{} {}\n", line.time, line.text),
            (true, false) => format!("{} {}", line.time, line.text),
            (false, true) => format!("{}\n", line.text),
            (false, false) => line.text.to_string(),
        };
        let to: &mut dyn Write = if line.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if to.write_all(text.as_bytes()).is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

pub fn attach(a: cli::Attach) -> Result<i32> {
    runner::attach::attach(&store(a.root.as_deref())?, &a.id)
}

pub fn exec(a: cli::Exec) -> Result<i32> {
    let Some((id, argv)) = a.args.split_first() else {
        return Err(Error::new("no container given: runner exec ID -- COMMAND"));
    };
    if argv.is_empty() {
        return Err(Error::new(
            "no command given: put it after --, e.g. runner exec ID -- /bin/sh",
        ));
    }
    let user = a.user.as_deref().map(front::parse_user).transpose()?;
    let host = front::Host::read();
    let req = runner::exec::Request {
        id: id.clone(),
        argv: argv.to_vec(),
        env: front::env_flags(&a.env, host.env)?,
        workdir: a.workdir,
        user,
        tty: a.tty,
        interactive: a.interactive,
        shim: runner::shim::Source::choose(a.shim.as_deref(), || host.own_exe())?,
        missing: Missing::pretend(&std::env::var("HUSK_PRETEND_ENOSYS").unwrap_or_default())
            .map_err(Error::new)?,
        oci: None,
        program: None,
    };
    if !host.is_root {
        return Err(Error::new(
            "must be run as root: rootless mode is not available yet",
        ));
    }
    runner::exec::exec(&store(a.root.as_deref())?, req)
}

pub fn stop(a: cli::Stop) -> Result<i32> {
    let store = store(a.root.as_deref())?;
    let grace = Duration::from_secs(a.time.unwrap_or(10));
    each(&a.ids, |id| {
        lifecycle::stop(&store, id, grace)?;
        println!("{id}");
        Ok(())
    })
}

pub fn kill(a: cli::Kill) -> Result<i32> {
    let sig = match a.signal.as_deref() {
        None => libc::SIGKILL,
        Some(s) => runner::signals::parse(s)
            .ok_or_else(|| Error::new(format!("--signal {s}: no such signal")))?,
    };
    let store = store(a.root.as_deref())?;
    each(&a.ids, |id| {
        lifecycle::kill(&store, id, sig)?;
        println!("{id}");
        Ok(())
    })
}

pub fn rm(a: cli::Rm) -> Result<i32> {
    let store = store(a.root.as_deref())?;
    each(&a.ids, |id| {
        lifecycle::remove(&store, id, a.force)?;
        println!("{id}");
        Ok(())
    })
}

pub fn inspect(a: cli::Inspect) -> Result<i32> {
    let store = store(a.root.as_deref())?;
    let mut all = Vec::new();
    let status = each(&a.ids, |id| {
        let found = store.find(id)?;
        let state = found.state.map_err(|e| e.prefixed(&format!("{id}: ")))?;
        all.push(state.to_value());
        Ok(())
    })?;
    if !all.is_empty() {
        println!("{}", Value::Array(all).to_json_pretty());
    }
    Ok(status)
}

pub fn wait(a: cli::Wait) -> Result<i32> {
    let store = store(a.root.as_deref())?;
    each(&a.ids, |id| match lifecycle::wait(&store, id)? {
        Some(exit) => {
            println!("{}", exit.status());
            Ok(())
        }
        None => Err(Error::new(format!(
            "{id}: its status is unknown: its monitor was killed"
        ))
        .with_status(RUNTIME)),
    })
}

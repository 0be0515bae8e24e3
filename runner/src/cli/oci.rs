//! The OCI runtime's command line, as podman, containerd and the
//! conformance suite call runc: `create`, `start`, `state`, `kill ID
//! [SIG]`, `delete`, `spec`, and the global flags they put before (or
//! after) the command.

/// The global flags of runc's command line.
#[derive(Debug, Default)]
pub struct Globals {
    /// The state store (runc's --root).
    pub root: Option<String>,
    /// Errors are also appended here, as text or JSON lines.
    pub log: Option<String>,
    pub log_json: bool,
    /// A global flag only runc's callers give (all but --root): the
    /// caller speaks runc's language.
    pub given: bool,
}

/// Takes runc's global flags out of `argv` (everywhere before `--`):
/// `--root DIR`, `--log FILE`, `--log-format text|json`, and
/// `--systemd-cgroup`, `--debug`, `--rootless BOOL`, which husk accepts
/// (cgroupfs is driven directly; rootless is refused where it matters).
pub fn take_globals(argv: &mut Vec<String>, oci_word: bool) -> Result<Globals, String> {
    let mut g = Globals::default();
    let mut i = 1;
    let mut before_word = true;
    while i < argv.len() {
        let a = argv[i].clone();
        if a == "--" {
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        // After the command word only for OCI commands: husk's own keep
        // their --root.
        let here = before_word || oci_word;
        let takes_value = matches!(
            flag.as_str(),
            "--root" | "--log" | "--log-format" | "--rootless" | "--criu"
        );
        let switch = matches!(flag.as_str(), "--systemd-cgroup" | "--debug");
        if !(here && (takes_value || switch))
            || (flag == "--rootless" && inline.is_none() && !before_word)
        {
            if !a.starts_with('-') {
                before_word = false;
            }
            i += 1;
            continue;
        }
        argv.remove(i);
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None if i < argv.len() => argv.remove(i),
                None => return Err(format!("{flag} needs a value")),
            }
        } else {
            String::new()
        };
        // --root alone is husk's own flag too: it says nothing of who
        // calls.
        g.given |= flag != "--root";
        match flag.as_str() {
            "--root" => g.root = Some(value),
            "--log" => g.log = Some(value),
            "--log-format" => match value.as_str() {
                "json" => g.log_json = true,
                "text" => g.log_json = false,
                other => return Err(format!("--log-format {other}: expected text or json")),
            },
            "--rootless" => match value.as_str() {
                "false" | "auto" => {}
                other => {
                    return Err(format!(
                        "--rootless {other}: rootless mode is not available yet"
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(g)
}

/// The commands only runc's callers use: `create`, `start`, `state`,
/// `delete`, `kill ID [SIG]`, `spec`. Parsed by hand from a table: argh's
/// code for each would cost more than the commands.
#[derive(Debug, Default)]
pub struct Simple {
    /// The container's ID ("" for `spec`).
    pub id: String,
    /// kill's signal.
    pub signal: Option<String>,
    /// The switches given (as their long names).
    pub switches: Vec<&'static str>,
    /// The options given, with their values.
    pub options: Vec<(&'static str, String)>,
}

impl Simple {
    pub fn has(&self, switch: &str) -> bool {
        self.switches.contains(&switch)
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rfind(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A command's switches, options (short forms after a '|'), how many
/// positionals it takes, and its usage.
struct Form {
    switches: &'static [&'static str],
    options: &'static [&'static str],
    positionals: (usize, usize),
    usage: &'static str,
}

fn form(word: &str) -> Form {
    let f = |switches, options, positionals, usage| Form {
        switches,
        options,
        positionals,
        usage,
    };
    match word {
        "create" => f(
            &["--no-pivot", "--no-new-keyring"],
            &["--bundle|-b", "--pid-file", "--console-socket", "--preserve-fds"],
            (1, 1),
            "create [--bundle DIR] [--pid-file F] [--console-socket S] ID: set a container up from an OCI bundle; it runs its process at start",
        ),
        "spec" => f(
            &["--rootless"],
            &["--bundle|-b"],
            (0, 0),
            "spec [--bundle DIR]: write a default config.json for a bundle whose root is ./rootfs",
        ),
        "delete" => f(&["--force|-f"], &[], (1, 1), "delete [-f|--force] ID: delete a stopped or created container (force: a running one too)"),
        "kill" => f(&["--all|-a"], &[], (1, 2), "kill [-a|--all] ID [SIGNAL]: send a signal (default TERM) to PID 1 (all: every process)"),
        "start" => f(&[], &[], (1, 1), "start ID: run the process of a created container"),
        _ => f(&[], &[], (1, 1), "state ID: print a container's OCI state as JSON"),
    }
}

/// One of these commands, from its arguments (`--flag=value` already
/// split by `parse`); else what to print: its usage (`--help`, to exit 0
/// with) or one line saying what is wrong.
pub fn simple(word: &str, rest: &[&str]) -> Result<Simple, super::Parsed> {
    let form = form(word);
    let usage = || format!("usage: runner {}", form.usage);
    let long = |table: &'static [&'static str], a: &str| {
        table
            .iter()
            .find(|t| t.split('|').any(|n| n == a))
            .map(|t| t.split('|').next().unwrap_or(t))
    };
    let mut out = Simple::default();
    let mut positional = Vec::new();
    let mut args = rest.iter();
    while let Some(&a) = args.next() {
        if a == "--help" || a == "-h" {
            return Err(super::Parsed::Exit(usage()));
        } else if let Some(s) = long(form.switches, a) {
            out.switches.push(s);
        } else if let Some(o) = long(form.options, a) {
            let v = args
                .next()
                .ok_or_else(|| super::Parsed::Error(format!("{a} needs a value; {}", usage())))?;
            out.options.push((o, v.to_string()));
        } else if a.starts_with('-') && a.len() > 1 && a.parse::<i32>().is_err() {
            return Err(super::Parsed::Error(format!(
                "{word}: unknown flag {a}; {}",
                usage()
            )));
        } else if a != "--" {
            positional.push(a.to_string());
        }
    }
    let (min, max) = form.positionals;
    if positional.len() < min || positional.len() > max {
        return Err(super::Parsed::Error(usage()));
    }
    let mut positional = positional.into_iter();
    out.id = positional.next().unwrap_or_default();
    out.signal = positional.next();
    Ok(out)
}

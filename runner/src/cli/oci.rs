//! The OCI runtime's command line, as podman, containerd and the
//! conformance suite call runc: `create`, `start`, `state`, `kill ID
//! [SIG]`, `delete`, `spec`, and the global flags they put before (or
//! after) the command.

use super::flags::{flag, Flag, Form, Given, Kind::*, Stop};

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
/// `delete`, `kill ID [SIG]`, `spec`.
#[derive(Default)]
pub struct Simple {
    /// The container's ID ("" for `spec`).
    pub id: String,
    /// kill's signal.
    pub signal: Option<String>,
    given: Given,
}

impl Simple {
    pub fn has(&self, switch: &str) -> bool {
        self.given.has(switch)
    }

    pub fn opt(&self, name: &str) -> Option<String> {
        self.given.one(name)
    }
}

const BUNDLE: Flag = flag(
    "bundle",
    Some('b'),
    One,
    "the bundle's directory (default: .)",
);

const fn form(
    word: &'static str,
    about: &'static str,
    flags: &'static [Flag],
    positionals: &'static str,
    count: (usize, usize),
) -> Form {
    Form {
        word,
        about,
        flags,
        positionals,
        count,
        greedy: false,
    }
}

const FORMS: [Form; 6] = [
    form(
        "create",
        "Set a container up from an OCI bundle; it runs its process at start.",
        &[
            BUNDLE,
            flag("pid-file", None, One, "write the container's PID here"),
            flag(
                "console-socket",
                None,
                One,
                "a unix socket to send the pseudo-terminal's master to",
            ),
            flag(
                "preserve-fds",
                None,
                One,
                "only 0: passing more fds is not supported",
            ),
            flag(
                "no-pivot",
                None,
                Switch,
                "accepted; husk pivots where it can",
            ),
            flag("no-new-keyring", None, Switch, "accepted"),
        ],
        "ID",
        (1, 1),
    ),
    form(
        "spec",
        "Write a default config.json for a bundle whose root is ./rootfs.",
        &[
            BUNDLE,
            flag(
                "rootless",
                None,
                Switch,
                "for a rootless container: a user namespace mapping the caller to 0, no network namespace",
            ),
        ],
        "",
        (0, 0),
    ),
    form(
        "delete",
        "Delete a stopped or created container (--force: a running one too).",
        &[flag("force", Some('f'), Switch, "kill it first if it runs")],
        "ID",
        (1, 1),
    ),
    form(
        "kill",
        "Send a signal (default TERM) to the container's process.",
        &[flag(
            "all",
            Some('a'),
            Switch,
            "to every process in its cgroup",
        )],
        "ID [SIGNAL]",
        (1, 2),
    ),
    form(
        "start",
        "Run the process of a created container.",
        &[],
        "ID",
        (1, 1),
    ),
    form(
        "state",
        "Print a container's OCI state as JSON.",
        &[],
        "ID",
        (1, 1),
    ),
];

/// One of these commands, from its arguments (`--flag=value` already
/// split by `parse`).
pub fn simple(word: &str, prog: &str, rest: &[&str]) -> Result<Simple, Stop> {
    let form = FORMS.iter().find(|f| f.word == word).unwrap_or(&FORMS[5]);
    let mut given = super::flags::parse(form, prog, rest)?;
    Ok(Simple {
        id: given.next(),
        signal: given.positionals.pop(),
        given,
    })
}

//! The OCI runtime's command line, as podman, containerd and the
//! conformance suite call runc: `create`, `start`, `state`, `kill ID
//! [SIG]`, `delete`, `spec`, and the global flags they put before (or
//! after) the command.

use argh::FromArgs;

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

/// Create a container from an OCI bundle, waiting for `start` before it runs its process.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "create")]
pub struct Create {
    /// the bundle's directory (default: the current one)
    #[argh(option, short = 'b')]
    pub bundle: Option<String>,
    /// write the container's PID here
    #[argh(option)]
    pub pid_file: Option<String>,
    /// a unix socket to send the pseudo-terminal's master to
    #[argh(option)]
    pub console_socket: Option<String>,
    /// chroot rather than pivot_root (accepted: husk decides by the host)
    #[argh(switch)]
    pub no_pivot: bool,
    /// no new session keyring (husk makes none)
    #[argh(switch)]
    pub no_new_keyring: bool,
    /// pass this many fds beyond stdio (only 0 is supported)
    #[argh(option, default = "0")]
    pub preserve_fds: u32,
    /// the container's ID
    #[argh(positional)]
    pub id: String,
}

/// `start ID`, `state ID`, `delete [-f] ID`, `kill [-a] ID [SIG]`: one
/// ID, a switch, and kill's signal. Parsed by hand (oci_simple): argh's
/// code for each would cost more than the commands.
#[derive(Debug)]
pub struct Simple {
    pub id: String,
    /// delete's --force, kill's --all.
    pub flag: bool,
    /// kill's signal.
    pub signal: Option<String>,
}

/// One of the simple commands, from its arguments; else what to print:
/// its usage (`--help`, to exit 0 with) or one line saying what is wrong.
pub fn simple(word: &str, rest: &[&str]) -> Result<Simple, super::Parsed> {
    let (switch, usage) = match word {
        "delete" => (["-f", "--force"], "delete [-f|--force] ID: delete a stopped or created container (force: a running one too)"),
        "kill" => (["-a", "--all"], "kill [-a|--all] ID [SIGNAL]: send a signal (default TERM) to PID 1 (all: every process)"),
        "start" => (["", ""], "start ID: run the process of a created container"),
        _ => (["", ""], "state ID: print a container's OCI state as JSON"),
    };
    let mut out = Simple {
        id: String::new(),
        flag: false,
        signal: None,
    };
    let mut positional = Vec::new();
    for a in rest {
        match *a {
            "--help" | "-h" => return Err(super::Parsed::Exit(format!("Usage: runner {usage}"))),
            "--" => {}
            f if !f.is_empty() && switch.contains(&f) => out.flag = true,
            f if f.starts_with('-') && f.len() > 1 && f.parse::<i32>().is_err() => {
                return Err(super::Parsed::Error(format!(
                    "{word}: unknown flag {f}; usage: runner {usage}"
                )))
            }
            p => positional.push(p.to_string()),
        }
    }
    let most = if word == "kill" { 2 } else { 1 };
    if positional.is_empty() || positional.len() > most {
        return Err(super::Parsed::Error(format!("usage: runner {usage}")));
    }
    out.id = positional.remove(0);
    out.signal = positional.pop();
    Ok(out)
}

/// Write a default config.json for a bundle whose root is ./rootfs.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "spec")]
pub struct SpecCmd {
    /// the bundle's directory (default: the current one)
    #[argh(option, short = 'b')]
    pub bundle: Option<String>,
    /// a config for rootless containers (not available yet)
    #[argh(switch)]
    pub rootless: bool,
}

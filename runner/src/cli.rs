//! The command line, as the user types it. Nothing here is validated beyond
//! its syntax: front.rs turns it into the library's container spec.

use argh::FromArgs;

/// Run a command in a new container: its own mount, UTS, IPC, PID, network
/// and cgroup namespaces, inside ROOTFS, with optional cgroup limits.
///
/// Example: runner --rootfs ./busybox --memory 64M -- /bin/sh
#[derive(FromArgs, Debug, Default)]
pub struct Args {
    /// directory holding the container's root file system
    #[argh(option)]
    pub rootfs: Option<String>,

    /// hostname inside the container (default: husk)
    #[argh(option)]
    pub hostname: Option<String>,

    /// the container's name, its ID in the state store (default: a random ID)
    #[argh(option)]
    pub name: Option<String>,

    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,

    /// set an environment variable: KEY=VALUE, or KEY to pass the runner's own value (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,

    /// working directory inside the container, absolute (default: /)
    #[argh(option, short = 'w')]
    pub workdir: Option<String>,

    /// memory limit, in bytes or with a k, m or g suffix
    #[argh(option)]
    pub memory: Option<String>,

    /// memory plus swap limit (needs --memory; -1: unlimited swap; default: no swap)
    #[argh(option)]
    pub memory_swap: Option<String>,

    /// CPU quota, in CPUs (e.g. 0.5)
    #[argh(option)]
    pub cpus: Option<String>,

    /// relative CPU weight, 2 to 262144 (cgroup v1 shares; converted to a v2 weight)
    #[argh(option)]
    pub cpu_shares: Option<String>,

    /// CPUs the container may run on, e.g. 0-2,4
    #[argh(option)]
    pub cpuset: Option<String>,

    /// maximum number of processes
    #[argh(option)]
    pub pids: Option<String>,

    /// network: none (a new namespace with only lo, up; the default), host, or ns:PATH to join a network namespace file (e.g. /proc/PID/ns/net, /run/netns/NAME)
    #[argh(option)]
    pub net: Option<String>,

    /// cgroup under which the container's is made, as a path from the hierarchy's root (default: the runner's own; on v2 its nearest ancestor without processes)
    #[argh(option)]
    pub cgroup_parent: Option<String>,

    /// give the container a terminal of its own (default: when stdin and stdout are terminals)
    #[argh(switch, short = 't')]
    pub tty: bool,

    /// never give the container a terminal, even on one
    #[argh(switch)]
    pub no_tty: bool,

    /// add a capability to the default set (e.g. NET_ADMIN, or ALL; repeatable)
    #[argh(option)]
    pub cap_add: Vec<String>,

    /// drop a capability from the set (e.g. NET_RAW, or ALL; repeatable)
    #[argh(option)]
    pub cap_drop: Vec<String>,

    /// keep every capability, no seccomp filter, no masked or read-only paths, /sys writable
    #[argh(switch)]
    pub privileged: bool,

    /// do not set no_new_privs (setuid programs then work inside)
    #[argh(switch)]
    pub allow_new_privs: bool,

    /// seccomp: default (refuse syscalls a container has no business making) or unconfined
    #[argh(option)]
    pub seccomp: Option<String>,

    /// the shim to run inside the container (default: husk-shim beside this program)
    #[argh(option)]
    pub shim: Option<String>,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,

    /// the command to run, after --
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

pub enum Parsed {
    Run(Box<Args>),
    /// --help or --version: print this and exit 0.
    Exit(String),
    /// A syntax error: print this one line and exit 125.
    Error(String),
}

/// The flags that take no value (argh's switches), for `--flag=value`.
const SWITCHES: &[&str] = &[
    "--tty",
    "--no-tty",
    "--privileged",
    "--allow-new-privs",
    "--version",
    "--help",
];

pub fn parse(argv: &[String]) -> Parsed {
    let name = argv.first().map(String::as_str).unwrap_or("runner");
    // husk has one command today: a word where a flag is expected is a
    // command the user expects husk to have.
    if let Some(word) = argv.get(1).filter(|w| !w.starts_with('-') && !w.is_empty()) {
        return Parsed::Error(format!(
            "{word}: no such command; husk runs one container in the foreground: \
             runner --rootfs DIR [options] -- COMMAND (see --help)"
        ));
    }
    // --flag=value as --flag value, up to the command.
    let mut rest: Vec<&str> = Vec::with_capacity(argv.len());
    let mut args = argv.iter().skip(1).map(String::as_str);
    for a in args.by_ref() {
        if a == "--" {
            rest.push(a);
            break;
        }
        match a.split_once('=') {
            Some((flag, _)) if flag.starts_with("--") && SWITCHES.contains(&flag) => {
                return Parsed::Error(format!("{flag} takes no value (see --help)"));
            }
            Some((flag, value)) if flag.starts_with("--") => {
                rest.push(flag);
                rest.push(value);
            }
            _ => rest.push(a),
        }
    }
    rest.extend(args);
    match Args::from_args(&[name], &rest) {
        Ok(args) if args.version => {
            Parsed::Exit(format!("runner {} (husk)", env!("CARGO_PKG_VERSION")))
        }
        Ok(args) => Parsed::Run(Box::new(args)),
        Err(early) if early.status.is_ok() => Parsed::Exit(early.output.trim_end().to_string()),
        Err(early) => {
            let first = early
                .output
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_end()
                .to_string();
            Parsed::Error(format!("{first} (see --help)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_command_after_double_dash_keeps_its_flags() {
        let Parsed::Run(a) = parse(&args(
            "runner --rootfs r -e A=1 -e B -- /bin/sh -c true --memory",
        )) else {
            panic!()
        };
        assert_eq!(a.rootfs.as_deref(), Some("r"));
        assert_eq!(a.env, ["A=1", "B"]);
        assert_eq!(a.command, ["/bin/sh", "-c", "true", "--memory"]);
    }

    #[test]
    fn flags_take_their_value_after_an_equals_sign() {
        let Parsed::Run(a) = parse(&args(
            "runner --rootfs=r --memory=64M --env=A=1 --tty -- sh --memory=1",
        )) else {
            panic!()
        };
        assert_eq!(a.rootfs.as_deref(), Some("r"));
        assert_eq!(a.memory.as_deref(), Some("64M"));
        assert_eq!(a.env, ["A=1"]);
        assert!(a.tty);
        assert_eq!(a.command, ["sh", "--memory=1"]);
        let Parsed::Error(e) = parse(&args("runner --tty=yes -- sh")) else {
            panic!()
        };
        assert!(e.contains("--tty takes no value"), "{e}");
    }

    #[test]
    fn a_command_word_is_named() {
        for word in ["run", "ps", "exec"] {
            let Parsed::Error(e) = parse(&args(&format!("runner {word} --rootfs r -- sh"))) else {
                panic!()
            };
            assert!(e.starts_with(&format!("{word}: no such command")), "{e}");
        }
    }

    #[test]
    fn unknown_flags_are_one_line() {
        let Parsed::Error(e) = parse(&args("runner --frobnicate -- sh")) else {
            panic!()
        };
        assert!(e.contains("--frobnicate") && !e.contains('\n'), "{e}");
    }
}

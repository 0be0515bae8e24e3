//! The command line, as the user types it. Nothing here is validated beyond
//! its syntax: front.rs turns it into the library's container spec, and
//! commands.rs does what the other commands ask.
//!
//! `runner [run] [flags] -- COMMAND` runs a container (the word `run` may
//! be left out: that is the foreground run husk always had); `ps`,
//! `logs`, `attach`, `exec`, `stop`, `kill`, `rm`, `inspect` and `wait`
//! act on containers in the state store (lifecycle.rs).

pub mod images;
pub mod lifecycle;
pub mod oci;

use argh::FromArgs;

/// Run a command in a new container: its own mount, UTS, IPC, PID, network
/// and cgroup namespaces, inside ROOTFS, with optional cgroup limits.
///
/// Example: runner --rootfs ./busybox --memory 64M -- /bin/sh
///
/// Other commands: runner ps|logs|attach|exec|stop|kill|rm|inspect|wait|import|images|rmi|commit|export --help
#[derive(FromArgs, Debug, Default)]
pub struct Args {
    /// run in the background: print the container's ID once it runs; its output goes to its log (runner logs ID)
    #[argh(switch, short = 'd')]
    pub detach: bool,

    /// with -d: remove the container's entry and log when it ends
    #[argh(switch)]
    pub rm: bool,

    /// run husk's own init as PID 1 and the command as PID 2: signals reach the command as on a plain host, orphans are reaped
    #[argh(switch)]
    pub init: bool,

    /// keep stdin open: always so in the foreground; with -d -t, attach types into the container's terminal
    #[argh(switch, short = 'i')]
    pub interactive: bool,

    /// directory holding the container's root file system
    #[argh(option)]
    pub rootfs: Option<String>,

    /// run an image of the image store (runner import): an overlay of its layers with a writable layer of the container's own; its environment, command, working directory and user are the defaults
    #[argh(option)]
    pub image: Option<String>,

    /// instead of --rootfs: a read-only layer of an overlay root, lowest first (repeatable); the container writes to a layer of its own
    #[argh(option)]
    pub layer: Vec<String>,

    /// the image store's directory (default: /var/lib/husk)
    #[argh(option)]
    pub store: Option<String>,

    /// bind-mount a host path: HOST:CONTAINER[:OPTIONS], OPTIONS a comma list of ro, rw, nosuid, nodev, noexec, rprivate (the default), rslave, private, slave (repeatable)
    #[argh(option, short = 'v')]
    pub volume: Vec<String>,

    /// mount a tmpfs: PATH[:OPTIONS], OPTIONS a comma list of size=, mode=, nr_inodes=, uid=, gid=, ro, exec, suid (default nosuid, nodev, noexec; repeatable)
    #[argh(option)]
    pub tmpfs: Vec<String>,

    /// make the root file system read-only (volumes and tmpfs stay as they are)
    #[argh(switch)]
    pub read_only: bool,

    /// keep the container's entry (and its writable layer) after it ends, for commit, export and rm; -d keeps it unless --rm
    #[argh(switch)]
    pub keep: bool,

    /// UID[:GID] to run the command as, numbers (default: the image's user, else 0)
    #[argh(option, short = 'u')]
    pub user: Option<String>,

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

/// What the command line asks for.
pub enum Command {
    Run(Box<Args>),
    Ps(lifecycle::Ps),
    Logs(lifecycle::Logs),
    Attach(lifecycle::Attach),
    Exec(Box<lifecycle::Exec>),
    Stop(lifecycle::Stop),
    Kill(lifecycle::Kill),
    Rm(lifecycle::Rm),
    Inspect(lifecycle::Inspect),
    Wait(lifecycle::Wait),
    Import(images::Import),
    Images(images::Images),
    Rmi(images::Rmi),
    Commit(images::Commit),
    Export(images::Export),
    Create(oci::Simple),
    Start(oci::Simple),
    State(oci::Simple),
    Delete(oci::Simple),
    OciKill(oci::Simple),
    Spec(oci::Simple),
    Features,
}

pub enum Parsed {
    Run(Command),
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
    "--detach",
    "--rm",
    "--init",
    "--interactive",
    "--all",
    "--follow",
    "--force",
    "--timestamps",
    "--read-only",
    "--keep",
    "--no-pivot",
    "--no-new-keyring",
    "--rootless",
];

const COMMANDS: &str =
    "run, ps, logs, attach, exec, stop, kill, rm, inspect, wait, import, images, \
     rmi, commit, export, and the OCI runtime's create, start, state, kill ID SIG, delete, \
     spec, features";

/// The commands only the OCI runtime's callers use, after which runc's
/// global flags may come too.
pub const OCI_WORDS: [&str; 6] = ["create", "start", "state", "delete", "spec", "features"];

/// `kill` the OCI way (`kill [--all] ID [SIG]`), or husk's own (`kill
/// [-s SIG] ID...`): runc's caller gives global flags or --all, or an ID
/// and a signal.
fn oci_kill(rest: &[&str], oci_caller: bool) -> bool {
    let positional: Vec<&&str> = rest.iter().filter(|a| !a.starts_with('-')).collect();
    oci_caller
        || rest.iter().any(|a| matches!(*a, "--all" | "-a"))
        || (!rest.iter().any(|a| matches!(*a, "-s" | "--signal"))
            && positional.len() == 2
            && runner::signals::parse(positional[1]).is_some())
}

/// `oci_caller`: runc's global flags were given (cli::oci::take_globals).
pub fn parse(argv: &[String], oci_caller: bool) -> Parsed {
    let name = argv.first().map(String::as_str).unwrap_or("runner");
    let word = argv
        .get(1)
        .map(String::as_str)
        .filter(|w| !w.starts_with('-') && !w.is_empty());
    let skip = if word.is_some() { 2 } else { 1 };
    // --flag=value as --flag value, up to the command.
    let mut rest: Vec<&str> = Vec::with_capacity(argv.len());
    let mut args = argv.iter().skip(skip).map(String::as_str);
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
    let full = format!("{name} {}", word.unwrap_or(""));
    let cmd = [full.trim_end()];
    let parsed = match word {
        None | Some("run") => Args::from_args(&cmd, &rest).map(|a| Command::Run(Box::new(a))),
        Some("ps") => FromArgs::from_args(&cmd, &rest).map(Command::Ps),
        Some("logs") => FromArgs::from_args(&cmd, &rest).map(Command::Logs),
        Some("attach") => FromArgs::from_args(&cmd, &rest).map(Command::Attach),
        Some("exec") => FromArgs::from_args(&cmd, &rest).map(|e| Command::Exec(Box::new(e))),
        Some("stop") => FromArgs::from_args(&cmd, &rest).map(Command::Stop),
        Some(w @ ("create" | "start" | "state" | "delete" | "spec")) | Some(w @ "kill")
            if w != "kill" || oci_kill(&rest, oci_caller) =>
        {
            return match (oci::simple(w, &rest), w) {
                (Err(p), _) => p,
                (Ok(c), "create") => Parsed::Run(Command::Create(c)),
                (Ok(c), "start") => Parsed::Run(Command::Start(c)),
                (Ok(c), "state") => Parsed::Run(Command::State(c)),
                (Ok(c), "delete") => Parsed::Run(Command::Delete(c)),
                (Ok(c), "spec") => Parsed::Run(Command::Spec(c)),
                (Ok(c), _) => Parsed::Run(Command::OciKill(c)),
            };
        }
        Some("kill") => FromArgs::from_args(&cmd, &rest).map(Command::Kill),
        Some("features") => Ok(Command::Features),
        Some("rm") => FromArgs::from_args(&cmd, &rest).map(Command::Rm),
        Some("inspect") => FromArgs::from_args(&cmd, &rest).map(Command::Inspect),
        Some("wait") => FromArgs::from_args(&cmd, &rest).map(Command::Wait),
        Some("import") => FromArgs::from_args(&cmd, &rest).map(Command::Import),
        Some("images") => FromArgs::from_args(&cmd, &rest).map(Command::Images),
        Some("rmi") => FromArgs::from_args(&cmd, &rest).map(Command::Rmi),
        Some("commit") => FromArgs::from_args(&cmd, &rest).map(Command::Commit),
        Some("export") => FromArgs::from_args(&cmd, &rest).map(Command::Export),
        Some(other) => {
            return Parsed::Error(format!(
                "{other}: no such command; the commands are {COMMANDS} (see --help)"
            ))
        }
    };
    match parsed {
        Ok(Command::Run(args)) if args.version => {
            Parsed::Exit(format!("runner {} (husk)", env!("CARGO_PKG_VERSION")))
        }
        Ok(command) => Parsed::Run(command),
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

    fn parse_plain(argv: &[String]) -> Parsed {
        parse(argv, false)
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Box<Args> {
        match parse_plain(&args(s)) {
            Parsed::Run(Command::Run(a)) => a,
            _ => panic!("not a run: {s}"),
        }
    }

    #[test]
    fn the_command_after_double_dash_keeps_its_flags() {
        let a = run("runner --rootfs r -e A=1 -e B -- /bin/sh -c true --memory");
        assert_eq!(a.rootfs.as_deref(), Some("r"));
        assert_eq!(a.env, ["A=1", "B"]);
        assert_eq!(a.command, ["/bin/sh", "-c", "true", "--memory"]);
    }

    #[test]
    fn flags_take_their_value_after_an_equals_sign() {
        let a = run("runner --rootfs=r --memory=64M --env=A=1 --tty -- sh --memory=1");
        assert_eq!(a.rootfs.as_deref(), Some("r"));
        assert_eq!(a.memory.as_deref(), Some("64M"));
        assert_eq!(a.env, ["A=1"]);
        assert!(a.tty);
        assert_eq!(a.command, ["sh", "--memory=1"]);
        let Parsed::Error(e) = parse_plain(&args("runner --tty=yes -- sh")) else {
            panic!()
        };
        assert!(e.contains("--tty takes no value"), "{e}");
    }

    #[test]
    fn run_may_be_said_or_not_and_other_words_are_commands() {
        let a = run("runner run -d --rm --init --name web --rootfs r -- sh");
        assert!(a.detach && a.rm && a.init && a.name.as_deref() == Some("web"));
        assert!(!run("runner --rootfs r -- sh").detach);
        let Parsed::Run(Command::Exec(e)) =
            parse_plain(&args("runner exec -t -e A=1 -u 7 web -- sh -c x"))
        else {
            panic!()
        };
        assert!(e.tty && e.env == ["A=1"] && e.user.as_deref() == Some("7"));
        // argh keeps a -- after the first positional: commands.rs drops it.
        assert_eq!(e.args, ["web", "--", "sh", "-c", "x"]);
        let Parsed::Run(Command::Stop(s)) = parse_plain(&args("runner stop -t 3 a b")) else {
            panic!()
        };
        assert_eq!(
            (s.time, s.ids),
            (Some(3), vec!["a".to_string(), "b".into()])
        );
        let Parsed::Run(Command::Ps(p)) = parse_plain(&args("runner ps -a --format=json")) else {
            panic!()
        };
        assert!(p.all && p.format.as_deref() == Some("json"));
        let Parsed::Error(e) = parse_plain(&args("runner frob --rootfs r -- sh")) else {
            panic!()
        };
        assert!(
            e.starts_with("frob: no such command; the commands are run, ps"),
            "{e}"
        );
    }

    #[test]
    fn image_commands_take_a_store() {
        let Parsed::Run(Command::Import(i)) =
            parse_plain(&args("runner import --store=/s ./b.tar web:1"))
        else {
            panic!()
        };
        assert_eq!(
            (i.store.as_deref(), &*i.source, &*i.name),
            (Some("/s"), "./b.tar", "web:1")
        );
        let Parsed::Run(Command::Rmi(r)) = parse_plain(&args("runner rmi a b")) else {
            panic!()
        };
        assert!(r.store.is_none() && r.names == ["a", "b"]);
        assert!(matches!(
            parse_plain(&args("runner images")),
            Parsed::Run(Command::Images(_))
        ));
    }

    #[test]
    fn unknown_flags_are_one_line() {
        let Parsed::Error(e) = parse_plain(&args("runner --frobnicate -- sh")) else {
            panic!()
        };
        assert!(e.contains("--frobnicate") && !e.contains('\n'), "{e}");
    }
}

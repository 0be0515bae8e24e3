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
pub mod network;
pub mod oci;

pub mod flags;

use flags::{flag, Form, Given, Kind::*};

/// `runner [run]`: run a command in a new container.
#[derive(Debug, Default)]
pub struct Args {
    pub detach: bool,
    pub rm: bool,
    pub init: bool,
    pub interactive: bool,
    pub rootfs: Option<String>,
    pub image: Option<String>,
    pub layer: Vec<String>,
    pub store: Option<String>,
    pub volume: Vec<String>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub keep: bool,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub root: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpuset: Option<String>,
    pub pids: Option<String>,
    pub net: Option<String>,
    pub publish: Vec<String>,
    pub ip: Option<String>,
    pub dns: Vec<String>,
    pub cgroup_parent: Option<String>,
    pub tty: bool,
    pub no_tty: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub allow_new_privs: bool,
    pub seccomp: Option<String>,
    pub shim: Option<String>,
    pub version: bool,
    /// The command to run, after --.
    pub command: Vec<String>,
}

pub const ROOT_HELP: &str = "the state store's directory (default: /run/husk)";
pub const STORE_HELP: &str = "the image store's directory (default: /var/lib/husk)";
const ENV_HELP: &str =
    "set an environment variable: KEY=VALUE, or KEY to pass the runner's own value (repeatable)";

const RUN: Form = Form {
    word: "",
    about: "Run a command in a new container: its own mount, UTS, IPC, PID, network and cgroup \
            namespaces, inside ROOTFS, with optional cgroup limits.\n\n\
            Example: runner --rootfs ./busybox --memory 64M -- /bin/sh\n\n\
            Other commands: runner ps|logs|attach|exec|stop|kill|rm|inspect|wait|import|images|rmi|commit|export|network --help",
    flags: &[
        flag("detach", Some('d'), Switch, "run in the background: print the container's ID once it runs; its output goes to its log (runner logs ID)"),
        flag("rm", None, Switch, "with -d: remove the container's entry and log when it ends"),
        flag("init", None, Switch, "run husk's own init as PID 1 and the command as PID 2: signals reach the command as on a plain host, orphans are reaped"),
        flag("interactive", Some('i'), Switch, "keep stdin open: always so in the foreground; with -d -t, attach types into the container's terminal"),
        flag("rootfs", None, One, "directory holding the container's root file system"),
        flag("image", None, One, "run an image of the image store (runner import): an overlay of its layers with a writable layer of the container's own; its environment, command, working directory and user are the defaults"),
        flag("layer", None, Many, "instead of --rootfs: a read-only layer of an overlay root, lowest first (repeatable); the container writes to a layer of its own"),
        flag("store", None, One, STORE_HELP),
        flag("volume", Some('v'), Many, "bind-mount a host path: HOST:CONTAINER[:OPTIONS], OPTIONS a comma list of ro, rw, nosuid, nodev, noexec, rprivate (the default), rslave, private, slave (repeatable)"),
        flag("tmpfs", None, Many, "mount a tmpfs: PATH[:OPTIONS], OPTIONS a comma list of size=, mode=, nr_inodes=, uid=, gid=, ro, exec, suid (default nosuid, nodev, noexec; repeatable)"),
        flag("read-only", None, Switch, "make the root file system read-only (volumes and tmpfs stay as they are)"),
        flag("keep", None, Switch, "keep the container's entry (and its writable layer) after it ends, for commit, export and rm; -d keeps it unless --rm"),
        flag("user", Some('u'), One, "UID[:GID] to run the command as, numbers (default: the image's user, else 0)"),
        flag("hostname", None, One, "hostname inside the container (default: husk)"),
        flag("name", None, One, "the container's name, its ID in the state store (default: a random ID)"),
        flag("root", None, One, ROOT_HELP),
        flag("env", Some('e'), Many, ENV_HELP),
        flag("workdir", Some('w'), One, "working directory inside the container, absolute (default: /)"),
        flag("memory", None, One, "memory limit, in bytes or with a k, m or g suffix"),
        flag("memory-swap", None, One, "memory plus swap limit (needs --memory; -1: unlimited swap; default: no swap)"),
        flag("cpus", None, One, "CPU quota, in CPUs (e.g. 0.5)"),
        flag("cpu-shares", None, One, "relative CPU weight, 2 to 262144 (cgroup v1 shares; converted to a v2 weight)"),
        flag("cpuset", None, One, "CPUs the container may run on, e.g. 0-2,4"),
        flag("pids", None, One, "maximum number of processes"),
        flag("net", None, One, "network: none (a new namespace with only lo, up; the default), bridge (husk0, 10.88.0.0/16, made on first use), NAME (a network made with runner network create), cni:NAME (a CNI config in $NETCONFPATH or /etc/cni/net.d, run by its plugins), host, container:ID to share a running container's, or ns:PATH to join a network namespace file (e.g. /proc/PID/ns/net, /run/netns/NAME)"),
        flag("publish", Some('p'), Many, "on a bridge network: publish a port, [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], reachable from other hosts and from this one's own addresses, localhost included (repeatable)"),
        flag("ip", None, One, "on a bridge network: the container's IPv4 address (default: the lowest free)"),
        flag("dns", None, Many, "on a bridge network: a resolver for the container's /etc/resolv.conf, in place of the host's (repeatable)"),
        flag("cgroup-parent", None, One, "cgroup under which the container's is made, as a path from the hierarchy's root (default: the runner's own; on v2 its nearest ancestor without processes)"),
        flag("tty", Some('t'), Switch, "give the container a terminal of its own (default: when stdin and stdout are terminals)"),
        flag("no-tty", None, Switch, "never give the container a terminal, even on one"),
        flag("cap-add", None, Many, "add a capability to the default set (e.g. NET_ADMIN, or ALL; repeatable)"),
        flag("cap-drop", None, Many, "drop a capability from the set (e.g. NET_RAW, or ALL; repeatable)"),
        flag("privileged", None, Switch, "keep every capability, no seccomp filter, no masked or read-only paths, /sys writable"),
        flag("allow-new-privs", None, Switch, "do not set no_new_privs (setuid programs then work inside)"),
        flag("seccomp", None, One, "seccomp: default (refuse syscalls a container has no business making) or unconfined"),
        flag("shim", None, One, "the shim to run inside the container (default: husk-shim beside this program)"),
        flag("version", None, Switch, "print the version and exit"),
    ],
    positionals: "[-- COMMAND [ARG...]]",
    count: (0, usize::MAX),
    greedy: true,
};

impl Args {
    fn from(g: Given) -> Args {
        Args {
            detach: g.has("detach"),
            rm: g.has("rm"),
            init: g.has("init"),
            interactive: g.has("interactive"),
            rootfs: g.one("rootfs"),
            image: g.one("image"),
            layer: g.many("layer"),
            store: g.one("store"),
            volume: g.many("volume"),
            tmpfs: g.many("tmpfs"),
            read_only: g.has("read-only"),
            keep: g.has("keep"),
            user: g.one("user"),
            hostname: g.one("hostname"),
            name: g.one("name"),
            root: g.one("root"),
            env: g.many("env"),
            workdir: g.one("workdir"),
            memory: g.one("memory"),
            memory_swap: g.one("memory-swap"),
            cpus: g.one("cpus"),
            cpu_shares: g.one("cpu-shares"),
            cpuset: g.one("cpuset"),
            pids: g.one("pids"),
            net: g.one("net"),
            publish: g.many("publish"),
            ip: g.one("ip"),
            dns: g.many("dns"),
            cgroup_parent: g.one("cgroup-parent"),
            tty: g.has("tty"),
            no_tty: g.has("no-tty"),
            cap_add: g.many("cap-add"),
            cap_drop: g.many("cap-drop"),
            privileged: g.has("privileged"),
            allow_new_privs: g.has("allow-new-privs"),
            seccomp: g.one("seccomp"),
            shim: g.one("shim"),
            version: g.has("version"),
            command: g.positionals,
        }
    }
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
    Network(network::Network),
    Create(oci::Simple),
    Start(oci::Simple),
    State(oci::Simple),
    Delete(oci::Simple),
    OciKill(oci::Simple),
    Spec(oci::Simple),
    Features,
}

impl From<flags::Stop> for Parsed {
    fn from(stop: flags::Stop) -> Parsed {
        match stop {
            flags::Stop::Help(h) => Parsed::Exit(h),
            flags::Stop::Error(e) => Parsed::Error(e),
        }
    }
}

pub enum Parsed {
    Run(Command),
    /// --help or --version: print this and exit 0.
    Exit(String),
    /// A syntax error: print this one line and exit 125.
    Error(String),
}

/// The flags that take no value, for `--flag=value`.
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
     rmi, commit, export, network, and the OCI runtime's create, start, state, kill ID SIG, delete, \
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
    use images as im;
    use lifecycle as lc;
    fn with<T>(
        form: &Form,
        name: &str,
        rest: &[&str],
        from: fn(Given) -> Result<T, String>,
        wrap: fn(T) -> Command,
    ) -> Parsed {
        match flags::parse(form, name, rest) {
            Ok(g) => from(g).map_or_else(Parsed::Error, |t| Parsed::Run(wrap(t))),
            Err(stop) => stop.into(),
        }
    }
    let r = &rest;
    let parsed = match word {
        None | Some("run") => with(
            &RUN,
            name,
            r,
            |g| Ok(Args::from(g)),
            |a| Command::Run(Box::new(a)),
        ),
        Some("ps") => with(&lc::PS, name, r, lc::Ps::from, Command::Ps),
        Some("logs") => with(&lc::LOGS, name, r, lc::Logs::from, Command::Logs),
        Some("attach") => with(&lc::ATTACH, name, r, lc::Attach::from, Command::Attach),
        Some("exec") => with(&lc::EXEC, name, r, lc::Exec::from, |e| {
            Command::Exec(Box::new(e))
        }),
        Some("stop") => with(&lc::STOP, name, r, lc::Ids::from, Command::Stop),
        Some(w @ ("create" | "start" | "state" | "delete" | "spec")) | Some(w @ "kill")
            if w != "kill" || oci_kill(&rest, oci_caller) =>
        {
            return match (oci::simple(w, name, &rest), w) {
                (Err(stop), _) => stop.into(),
                (Ok(c), "create") => Parsed::Run(Command::Create(c)),
                (Ok(c), "start") => Parsed::Run(Command::Start(c)),
                (Ok(c), "state") => Parsed::Run(Command::State(c)),
                (Ok(c), "delete") => Parsed::Run(Command::Delete(c)),
                (Ok(c), "spec") => Parsed::Run(Command::Spec(c)),
                (Ok(c), _) => Parsed::Run(Command::OciKill(c)),
            };
        }
        Some("kill") => with(&lc::KILL, name, r, lc::Ids::from, Command::Kill),
        Some("features") => Parsed::Run(Command::Features),
        Some("rm") => with(&lc::RM, name, r, lc::Ids::from, Command::Rm),
        Some("inspect") => with(&lc::INSPECT, name, r, lc::Ids::from, Command::Inspect),
        Some("wait") => with(&lc::WAIT, name, r, lc::Ids::from, Command::Wait),
        Some("import") => with(&im::IMPORT, name, r, im::Import::from, Command::Import),
        Some("images") => with(&im::IMAGES, name, r, im::Images::from, Command::Images),
        Some("rmi") => with(&im::RMI, name, r, im::Rmi::from, Command::Rmi),
        Some("commit") => with(&im::COMMIT, name, r, im::Commit::from, Command::Commit),
        Some("export") => with(&im::EXPORT, name, r, im::Export::from, Command::Export),
        Some("network") => with(
            &network::NETWORK,
            name,
            r,
            network::Network::from,
            Command::Network,
        ),
        Some(other) => {
            return Parsed::Error(format!(
                "{other}: no such command; the commands are {COMMANDS} (see --help)"
            ))
        }
    };
    match parsed {
        Parsed::Run(Command::Run(args)) if args.version => {
            Parsed::Exit(format!("runner {} (husk)", env!("CARGO_PKG_VERSION")))
        }
        other => other,
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
        // The -- between the ID and the command goes; one after stays.
        assert_eq!(e.args, ["web", "sh", "-c", "x"]);
        let Parsed::Run(Command::Exec(e)) = parse_plain(&args("runner exec web sh -- x")) else {
            panic!()
        };
        assert_eq!(e.args, ["web", "sh", "--", "x"]);
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

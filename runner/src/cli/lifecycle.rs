//! The commands that act on containers after their start, as the user
//! types them.

use argh::FromArgs;

/// List containers: ID, name, command, status, PID, created, rootfs.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "ps")]
pub struct Ps {
    /// show stopped containers too (default: those running)
    #[argh(switch, short = 'a')]
    pub all: bool,
    /// table (default) or json
    #[argh(option)]
    pub format: Option<String>,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// OCI: a container, whose processes to list (host PIDs)
    #[argh(positional)]
    pub id: Option<String>,
}

/// Print a detached container's log.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "logs")]
pub struct Logs {
    /// keep printing what it writes, until it ends
    #[argh(switch, short = 'f')]
    pub follow: bool,
    /// only the last N lines
    #[argh(option)]
    pub tail: Option<usize>,
    /// only lines since a time (RFC 3339, e.g. 2026-11-23T21:07:47Z) or a duration ago (10s, 5m, 2h)
    #[argh(option)]
    pub since: Option<String>,
    /// prefix each line with its time stamp
    #[argh(switch)]
    pub timestamps: bool,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the container
    #[argh(positional)]
    pub id: String,
}

/// Take the terminal of a container started with -d -t; ^P ^Q lets go of it.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "attach")]
pub struct Attach {
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the container
    #[argh(positional)]
    pub id: String,
}

/// Run a command inside a running container: runner exec [options] ID -- COMMAND [ARG...]
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "exec")]
pub struct Exec {
    /// give the command a terminal of its own
    #[argh(switch, short = 't')]
    pub tty: bool,
    /// pass stdin on (default: /dev/null)
    #[argh(switch, short = 'i')]
    pub interactive: bool,
    /// set an environment variable: KEY=VALUE, or KEY to pass the runner's own value (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// working directory inside the container, absolute (default: the container's)
    #[argh(option, short = 'w')]
    pub workdir: Option<String>,
    /// UID[:GID] to run as (numbers; default 0, the container's user)
    #[argh(option, short = 'u')]
    pub user: Option<String>,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the shim to run (default: the one built into the runner)
    #[argh(option)]
    pub shim: Option<String>,
    /// OCI: the process to run, as a process.json
    #[argh(option)]
    pub process: Option<String>,
    /// OCI: return once the process runs, leaving it to the caller
    #[argh(switch, short = 'd')]
    pub detach: bool,
    /// OCI: write the process's PID here
    #[argh(option)]
    pub pid_file: Option<String>,
    /// OCI: a unix socket to send the pseudo-terminal's master to
    #[argh(option)]
    pub console_socket: Option<String>,
    /// OCI: the working directory (as --workdir)
    #[argh(option)]
    pub cwd: Option<String>,
    /// the container, then the command after --
    #[argh(positional, greedy)]
    pub args: Vec<String>,
}

/// Stop containers: the stop signal (SIGTERM), then SIGKILL after the grace time.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "stop")]
pub struct Stop {
    /// seconds to wait before SIGKILL (default 10)
    #[argh(option, short = 't')]
    pub time: Option<u64>,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the containers
    #[argh(positional)]
    pub ids: Vec<String>,
}

/// Send a signal to containers (default SIGKILL).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "kill")]
pub struct Kill {
    /// the signal, by name (TERM, SIGTERM) or number
    #[argh(option, short = 's')]
    pub signal: Option<String>,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the containers
    #[argh(positional)]
    pub ids: Vec<String>,
}

/// Remove stopped containers: their state, cgroups and logs.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rm")]
pub struct Rm {
    /// kill a running container first
    #[argh(switch, short = 'f')]
    pub force: bool,
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the containers
    #[argh(positional)]
    pub ids: Vec<String>,
}

/// Print containers' state and spec as JSON.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "inspect")]
pub struct Inspect {
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the containers
    #[argh(positional)]
    pub ids: Vec<String>,
}

/// Wait for containers to end; print each one's exit status.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "wait")]
pub struct Wait {
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the containers
    #[argh(positional)]
    pub ids: Vec<String>,
}

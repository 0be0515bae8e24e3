//! The commands that act on containers after their start, as the user
//! types them.

use super::flags::{flag, Flag, Form, Given, Kind::*};
use super::{ENV_HELP, ROOT_HELP};

const ROOT: Flag = flag("root", None, One, ROOT_HELP);

/// `ps [-a] [--format table|json] [ID]`.
#[derive(Debug)]
pub struct Ps {
    pub all: bool,
    pub format: Option<String>,
    pub root: Option<String>,
    /// OCI: a container, whose processes to list.
    pub id: Option<String>,
}

pub const PS: Form = Form {
    word: "ps",
    about: "List containers: ID, name, command, status, PID, created, rootfs. With an ID (OCI): \
            the host PIDs of that container's processes.",
    flags: &[
        flag(
            "all",
            Some('a'),
            Switch,
            "show stopped containers too (default: those running)",
        ),
        flag("format", None, One, "table (default) or json"),
        ROOT,
    ],
    positionals: "[ID]",
    count: (0, 1),
    greedy: false,
};

impl Ps {
    pub fn from(mut g: Given) -> Result<Ps, String> {
        Ok(Ps {
            all: g.has("all"),
            format: g.one("format"),
            root: g.one("root"),
            id: g.positionals.pop(),
        })
    }
}

#[derive(Debug)]
pub struct Logs {
    pub follow: bool,
    pub tail: Option<usize>,
    pub since: Option<String>,
    pub timestamps: bool,
    pub root: Option<String>,
    pub id: String,
}

pub const LOGS: Form = Form {
    word: "logs",
    about: "Print a detached container's log.",
    flags: &[
        flag("follow", Some('f'), Switch, "keep printing what it writes, until it ends"),
        flag("tail", None, One, "only the last N lines"),
        flag("since", None, One, "only lines since a time (RFC 3339, e.g. 2026-11-23T21:07:47Z) or a duration ago (10s, 5m, 2h)"),
        flag("timestamps", None, Switch, "prefix each line with its time stamp"),
        ROOT,
    ],
    positionals: "ID",
    count: (1, 1),
    greedy: false,
};

impl Logs {
    pub fn from(mut g: Given) -> Result<Logs, String> {
        Ok(Logs {
            follow: g.has("follow"),
            tail: g.number("tail")?,
            since: g.one("since"),
            timestamps: g.has("timestamps"),
            root: g.one("root"),
            id: g.next(),
        })
    }
}

#[derive(Debug)]
pub struct Attach {
    pub root: Option<String>,
    pub id: String,
}

pub const ATTACH: Form = Form {
    word: "attach",
    about: "Take the terminal of a container started with -d -t; ^P ^Q lets go of it.",
    flags: &[ROOT],
    positionals: "ID",
    count: (1, 1),
    greedy: false,
};

impl Attach {
    pub fn from(mut g: Given) -> Result<Attach, String> {
        Ok(Attach {
            root: g.one("root"),
            id: g.next(),
        })
    }
}

#[derive(Debug)]
pub struct Exec {
    pub tty: bool,
    pub interactive: bool,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub root: Option<String>,
    pub shim: Option<String>,
    pub process: Option<String>,
    pub detach: bool,
    pub pid_file: Option<String>,
    pub console_socket: Option<String>,
    pub cwd: Option<String>,
    /// The container, then the command (a -- between them kept).
    pub args: Vec<String>,
}

pub const EXEC: Form = Form {
    word: "exec",
    about: "Run a command inside a running container.",
    flags: &[
        flag(
            "tty",
            Some('t'),
            Switch,
            "give the command a terminal of its own",
        ),
        flag(
            "interactive",
            Some('i'),
            Switch,
            "pass stdin on (default: /dev/null)",
        ),
        flag("env", Some('e'), Many, ENV_HELP),
        flag(
            "workdir",
            Some('w'),
            One,
            "working directory inside the container, absolute (default: the container's)",
        ),
        flag(
            "user",
            Some('u'),
            One,
            "UID[:GID] to run as (numbers; default 0, the container's user)",
        ),
        ROOT,
        flag(
            "shim",
            None,
            One,
            "the shim to run (default: the one built into the runner)",
        ),
        flag(
            "process",
            None,
            One,
            "OCI: the process to run, as a process.json",
        ),
        flag(
            "detach",
            Some('d'),
            Switch,
            "OCI: return once the process runs, leaving it to the caller",
        ),
        flag("pid-file", None, One, "OCI: write the process's PID here"),
        flag(
            "console-socket",
            None,
            One,
            "OCI: a unix socket to send the pseudo-terminal's master to",
        ),
        flag(
            "cwd",
            None,
            One,
            "OCI: the working directory (as --workdir)",
        ),
    ],
    positionals: "ID [-- COMMAND [ARG...]]",
    count: (0, usize::MAX),
    greedy: true,
};

impl Exec {
    pub fn from(g: Given) -> Result<Exec, String> {
        Ok(Exec {
            tty: g.has("tty"),
            interactive: g.has("interactive"),
            env: g.many("env"),
            workdir: g.one("workdir"),
            user: g.one("user"),
            root: g.one("root"),
            shim: g.one("shim"),
            process: g.one("process"),
            detach: g.has("detach"),
            pid_file: g.one("pid-file"),
            console_socket: g.one("console-socket"),
            cwd: g.one("cwd"),
            args: g.positionals,
        })
    }
}

/// The commands that take a --root and containers: stop, kill, rm,
/// inspect, wait.
#[derive(Debug)]
pub struct Ids {
    /// stop's -t, kill's -s, rm's -f (as "1").
    pub time: Option<u64>,
    pub signal: Option<String>,
    pub force: bool,
    pub root: Option<String>,
    pub ids: Vec<String>,
}

pub type Stop = Ids;
pub type Kill = Ids;
pub type Rm = Ids;
pub type Inspect = Ids;
pub type Wait = Ids;

const IDS: &str = "ID...";

pub const STOP: Form = Form {
    word: "stop",
    about: "Stop containers: the stop signal (SIGTERM), then SIGKILL after the grace time.",
    flags: &[
        flag(
            "time",
            Some('t'),
            One,
            "seconds to wait before SIGKILL (default 10)",
        ),
        ROOT,
    ],
    positionals: IDS,
    count: (0, usize::MAX),
    greedy: false,
};

pub const KILL: Form = Form {
    word: "kill",
    about: "Send a signal to containers (default SIGKILL).",
    flags: &[
        flag(
            "signal",
            Some('s'),
            One,
            "the signal, by name (TERM, SIGTERM) or number",
        ),
        ROOT,
    ],
    positionals: IDS,
    count: (0, usize::MAX),
    greedy: false,
};

pub const RM: Form = Form {
    word: "rm",
    about: "Remove stopped containers: their state, cgroups and logs.",
    flags: &[
        flag("force", Some('f'), Switch, "kill a running container first"),
        ROOT,
    ],
    positionals: IDS,
    count: (0, usize::MAX),
    greedy: false,
};

pub const INSPECT: Form = Form {
    word: "inspect",
    about: "Print containers' state and spec as JSON.",
    flags: &[ROOT],
    positionals: IDS,
    count: (0, usize::MAX),
    greedy: false,
};

pub const WAIT: Form = Form {
    word: "wait",
    about: "Wait for containers to end; print each one's exit status.",
    flags: &[ROOT],
    positionals: IDS,
    count: (0, usize::MAX),
    greedy: false,
};

impl Ids {
    pub fn from(g: Given) -> Result<Ids, String> {
        Ok(Ids {
            time: g.number("time")?,
            signal: g.one("signal"),
            force: g.has("force"),
            root: g.one("root"),
            ids: g.positionals,
        })
    }
}

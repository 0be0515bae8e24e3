//! A command line read from a table: each command's flags, positionals and
//! help as data, parsed by one loop. (argh's derive generated this code per
//! command: 28 KB of the x86_64 runner, for what this does in a few.)

use std::str::FromStr;

pub enum Kind {
    /// Takes no value.
    Switch,
    /// Takes one; the last given counts.
    One,
    /// Takes one; repeatable.
    Many,
}

pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub help: &'static str,
}

/// `--long` (`short`): `help`.
pub const fn flag(long: &'static str, short: Option<char>, kind: Kind, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        kind,
        help,
    }
}

/// A command as the user types it.
pub struct Form {
    /// After the program's name ("" for a plain `runner`).
    pub word: &'static str,
    pub about: &'static str,
    pub flags: &'static [Flag],
    /// As the usage line shows them, e.g. "ID [COMMAND...]".
    pub positionals: &'static str,
    /// How many positionals it takes at least, and at most.
    pub count: (usize, usize),
    /// From its first positional on, every argument is one (the command
    /// to run, with its own flags).
    pub greedy: bool,
}

/// What was given.
#[derive(Default)]
pub struct Given {
    switches: Vec<&'static str>,
    values: Vec<(&'static str, String)>,
    pub positionals: Vec<String>,
}

impl Given {
    pub fn has(&self, long: &str) -> bool {
        self.switches.contains(&long)
    }

    pub fn one(&self, long: &str) -> Option<String> {
        self.values
            .iter()
            .rfind(|(l, _)| *l == long)
            .map(|(_, v)| v.clone())
    }

    pub fn many(&self, long: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(l, _)| *l == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn number<T: FromStr>(&self, long: &str) -> Result<Option<T>, String> {
        self.one(long)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{long} {v}: expected a number"))
            })
            .transpose()
    }

    /// The next positional, in order ("" once none is left: the count was
    /// checked).
    pub fn next(&mut self) -> String {
        if self.positionals.is_empty() {
            String::new()
        } else {
            self.positionals.remove(0)
        }
    }
}

/// Why parsing stopped: the help to print (exit 0), or one line of error.
pub enum Stop {
    Help(String),
    Error(String),
}

/// The arguments after the command word (`--flag=value` already split).
pub fn parse(form: &Form, prog: &str, args: &[&str]) -> Result<Given, Stop> {
    let mut given = Given::default();
    let mut args = args.iter();
    while let Some(&a) = args.next() {
        if a == "--" || (form.greedy && !given.positionals.is_empty()) {
            if a != "--" {
                given.positionals.push(a.to_string());
            }
            given
                .positionals
                .extend(args.by_ref().map(|s| s.to_string()));
            break;
        }
        if a == "--help" || a == "-h" {
            return Err(Stop::Help(help(form, prog)));
        }
        // A negative number is a value (a signal, for kill), not a flag.
        if !a.starts_with('-') || a == "-" || a.parse::<i64>().is_ok() {
            given.positionals.push(a.to_string());
            continue;
        }
        let f = form.flags.iter().find(|f| {
            a.strip_prefix("--") == Some(f.long)
                || (f.short.is_some()
                    && a.strip_prefix('-').and_then(|s| s.parse().ok()) == f.short)
        });
        let Some(f) = f else {
            return Err(Stop::Error(format!(
                "Unrecognized argument: {a} (see --help)"
            )));
        };
        match f.kind {
            Kind::Switch => given.switches.push(f.long),
            Kind::One | Kind::Many => {
                let Some(v) = args.next() else {
                    return Err(Stop::Error(format!(
                        "--{} needs a value (see --help)",
                        f.long
                    )));
                };
                given.values.push((f.long, v.to_string()));
            }
        }
    }
    let (min, max) = form.count;
    let n = given.positionals.len();
    if n < min || (n > max && !form.greedy) {
        let usage = usage(form, prog);
        return Err(Stop::Error(format!(
            "expected {}: {usage}",
            if n < min {
                "more arguments"
            } else {
                "fewer arguments"
            }
        )));
    }
    Ok(given)
}

fn usage(form: &Form, prog: &str) -> String {
    let word = if form.word.is_empty() {
        String::new()
    } else {
        format!(" {}", form.word)
    };
    format!("{prog}{word} [OPTIONS] {}", form.positionals)
        .trim_end()
        .to_string()
}

/// `--help`: the usage line, what the command does, and each flag.
pub fn help(form: &Form, prog: &str) -> String {
    let mut out = format!(
        "Usage: {}\n\n{}\n\nOptions:\n",
        usage(form, prog),
        form.about
    );
    for f in form.flags {
        let name = match f.short {
            Some(s) => format!("-{s}, --{}", f.long),
            None => format!("--{}", f.long),
        };
        let value = if matches!(f.kind, Kind::Switch) {
            ""
        } else {
            " X"
        };
        out.push_str(&format!("  {:<22}{}\n", name + value, f.help));
    }
    out.push_str("  -h, --help            this help");
    out
}

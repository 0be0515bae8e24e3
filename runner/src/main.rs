//! husk's runner: the command-line front end of the library (lib.rs). It
//! parses the flags (cli/), reads the host facts they need and builds the
//! container's spec (front.rs), and runs it, in the foreground or
//! detached; the other commands act on containers in the state store
//! (commands.rs).

mod cli;
mod commands;
mod front;
mod image_commands;
mod network_commands;
mod oci_commands;
mod oci_config;
mod oci_mounts;

use cli::Command;
use runner::error::{Error, Result};

fn main() {
    let mut globals = cli::oci::Globals::default();
    let status = match run(&mut globals) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("runner: {e}");
            oci_commands::log_error(&globals, &e.message);
            e.status
        }
    };
    std::process::exit(status);
}

fn run(globals: &mut cli::oci::Globals) -> Result<i32> {
    let mut argv = std::env::args_os()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::new(format!("argument {} is not UTF-8", a.to_string_lossy())))
        })
        .collect::<Result<Vec<_>>>()?;
    // runc's global flags, before the command; after it too for the
    // commands only runc's callers use.
    *globals = cli::oci::take_globals(&mut argv, false).map_err(Error::new)?;
    if argv
        .get(1)
        .is_some_and(|w| cli::OCI_WORDS.contains(&w.as_str()))
    {
        let after = cli::oci::take_globals(&mut argv, true).map_err(Error::new)?;
        globals.given |= after.given;
        globals.root = after.root.or(globals.root.take());
        globals.log = after.log.or(globals.log.take());
        globals.log_json |= after.log_json;
    }
    let command = match cli::parse(&argv, globals.given) {
        cli::Parsed::Run(command) => command,
        cli::Parsed::Exit(text) => {
            println!("{text}");
            return Ok(0);
        }
        cli::Parsed::Error(e) => return Err(Error::new(e)),
    };
    let mut command = command;
    // `runner --root DIR ps`: husk's commands take the global --root as
    // their own.
    if let (Some(root), Some(slot)) = (&globals.root, root_of(&mut command)) {
        slot.get_or_insert_with(|| root.clone());
    }
    match command {
        Command::Run(args) => commands::run(*args),
        Command::Ps(a) if a.id.is_some() => oci_commands::ps(a, globals),
        Command::Ps(a) => commands::ps(a),
        Command::Logs(a) => commands::logs(a),
        Command::Attach(a) => commands::attach(a),
        Command::Exec(a) if globals.given || a.process.is_some() || a.detach => {
            oci_commands::exec(*a, globals)
        }
        Command::Exec(a) => commands::exec(*a),
        Command::Stop(a) => commands::stop(a),
        Command::Kill(a) => commands::kill(a),
        Command::Rm(a) => commands::rm(a),
        Command::Inspect(a) => commands::inspect(a),
        Command::Wait(a) => commands::wait(a),
        Command::Import(a) => image_commands::import(a),
        Command::Images(a) => image_commands::images(a),
        Command::Rmi(a) => image_commands::rmi(a),
        Command::Commit(a) => image_commands::commit(a),
        Command::Export(a) => image_commands::export(a),
        Command::Network(a) => network_commands::network(a),
        Command::Create(a) => oci_commands::create(a, globals),
        Command::Start(a) => oci_commands::start(a, globals),
        Command::State(a) => oci_commands::state(a, globals),
        Command::Delete(a) => oci_commands::delete(a, globals),
        Command::OciKill(a) => oci_commands::kill(a, globals),
        Command::Spec(a) => oci_commands::spec(a),
        Command::Features => oci_commands::features(),
    }
}

/// A husk command's own --root.
fn root_of(c: &mut Command) -> Option<&mut Option<String>> {
    Some(match c {
        Command::Run(a) => &mut a.root,
        Command::Ps(a) => &mut a.root,
        Command::Logs(a) => &mut a.root,
        Command::Attach(a) => &mut a.root,
        Command::Exec(a) => &mut a.root,
        Command::Stop(a) => &mut a.root,
        Command::Kill(a) => &mut a.root,
        Command::Rm(a) => &mut a.root,
        Command::Inspect(a) => &mut a.root,
        Command::Wait(a) => &mut a.root,
        Command::Rmi(a) => &mut a.root,
        Command::Commit(a) => &mut a.root,
        Command::Export(a) => &mut a.root,
        Command::Network(a) => &mut a.root,
        _ => return None,
    })
}

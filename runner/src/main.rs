//! husk's runner: the command-line front end of the library (lib.rs). It
//! parses the flags (cli/), reads the host facts they need and builds the
//! container's spec (front.rs), and runs it, in the foreground or
//! detached; the other commands act on containers in the state store
//! (commands.rs).

mod cli;
mod commands;
mod front;
mod image_commands;

use cli::Command;
use runner::error::{Error, Result};

fn main() {
    let status = match run() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("runner: {e}");
            e.status
        }
    };
    std::process::exit(status);
}

fn run() -> Result<i32> {
    let argv = std::env::args_os()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::new(format!("argument {a:?} is not UTF-8")))
        })
        .collect::<Result<Vec<_>>>()?;
    let command = match cli::parse(&argv) {
        cli::Parsed::Run(command) => command,
        cli::Parsed::Exit(text) => {
            println!("{text}");
            return Ok(0);
        }
        cli::Parsed::Error(e) => return Err(Error::new(e)),
    };
    match command {
        Command::Run(args) => commands::run(*args),
        Command::Ps(a) => commands::ps(a),
        Command::Logs(a) => commands::logs(a),
        Command::Attach(a) => commands::attach(a),
        Command::Exec(a) => commands::exec(a),
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
    }
}

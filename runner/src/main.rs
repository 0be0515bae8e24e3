//! husk's runner: the command-line front end of the library (lib.rs). It
//! parses the flags (cli.rs), reads the host facts they need and builds
//! the container's spec (front.rs), and runs it in the foreground.

mod cli;
mod front;

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
    let args = match cli::parse(&argv) {
        cli::Parsed::Run(args) => args,
        cli::Parsed::Exit(text) => {
            println!("{text}");
            return Ok(0);
        }
        cli::Parsed::Error(e) => return Err(Error::new(e)),
    };
    let (spec, store_root) = front::spec(*args, &front::Host::read())?;
    runner::run::foreground(spec, &store_root)
}

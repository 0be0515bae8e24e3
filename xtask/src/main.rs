//! cargo xtask <task>: see `cargo xtask --help`.

mod arch;
mod bench;
mod dist;
mod programs;
mod rootfs;
mod run;
mod setup;
mod test;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use argh::FromArgs;

/// husk's tasks.
#[derive(FromArgs)]
struct Xtask {
    #[argh(subcommand)]
    task: Task,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Task {
    Test(test::Args),
    Dist(dist::Args),
    Rootfs(rootfs::Args),
    Run(run::Args),
    Bench(bench::Args),
    VmTest(vm::Args),
}

fn main() {
    let xtask: Xtask = argh::from_env();
    let result = match xtask.task {
        Task::Test(a) => test::main(a),
        Task::Dist(a) => dist::main(a).map(drop),
        Task::Rootfs(a) => rootfs::main(a),
        Task::Run(a) => run::main(a),
        Task::Bench(a) => bench::main(a),
        Task::VmTest(a) => vm::main(a),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace's top directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, failing with its status.
pub fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// The release shim, and the runner with that shim inside, for this
/// machine: the build the tests and the demo share.
pub fn build_release() -> Result<PathBuf> {
    println!("xtask: building the release shim, then the runner with it inside");
    run(cargo().args(["build", "--release", "-p", "shim"]))?;
    let shim = target().join("release/husk-shim");
    run(cargo()
        .args(["build", "--release", "-p", "runner"])
        .env("HUSK_EMBED_SHIM", &shim))?;
    Ok(target().join("release/runner"))
}

//! cargo xtask run: the one command for a newcomer.

use std::os::unix::process::CommandExt;
use std::process::Command;

use argh::FromArgs;

/// build the runner, make busybox/ in the workspace if it is missing, and run a shell in a container (or: -- runner args)
#[derive(FromArgs)]
#[argh(subcommand, name = "run")]
pub struct Args {
    /// the runner's arguments (default: --rootfs ./busybox -- /bin/sh)
    #[argh(positional, greedy)]
    rest: Vec<String>,
}

pub fn main(args: Args) -> crate::Result {
    let runner = crate::build_release()?;
    // In the workspace's top directory, wherever cargo was run from.
    let rootfs = crate::root().join("busybox");
    if !rootfs.join("bin/busybox").exists() {
        crate::rootfs::build(&rootfs, None)?;
    }
    let rest = if args.rest.is_empty() {
        vec![
            "--rootfs".into(),
            rootfs.display().to_string(),
            "--".into(),
            "/bin/sh".into(),
        ]
    } else {
        args.rest
    };
    println!("xtask: {} {}", runner.display(), rest.join(" "));
    // Replace this process, so that the terminal, signals and the exit
    // status are the runner's own.
    let err = Command::new(&runner).args(&rest).exec();
    Err(format!("exec {}: {err}", runner.display()))
}

//! cargo xtask test: every test, against one release build.

use argh::FromArgs;

/// run all tests: unit tests and the container scenarios (as root) against the release runner
#[derive(FromArgs)]
#[argh(subcommand, name = "test")]
pub struct Args {
    /// arguments passed on to cargo test (e.g. a test name filter)
    #[argh(positional, greedy)]
    rest: Vec<String>,
}

pub fn main(args: Args) -> crate::Result {
    let runner = crate::build_release()?;
    let rootfs = crate::target().join("husk-rootfs");
    if !rootfs.join("bin/busybox").exists() {
        crate::rootfs::build(&rootfs, None)?;
    }
    println!("xtask: cargo test --release --workspace");
    crate::run(
        crate::cargo()
            .args(["test", "--release", "--workspace"])
            .args(&args.rest)
            .env("HUSK_RUNNER", &runner)
            .env("HUSK_ROOTFS", &rootfs),
    )
}

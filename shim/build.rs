// The shim is a freestanding program: no C runtime, no libc, no dynamic
// loader. These arguments apply to its binary only; the library half (the
// plan format) is linked into the runner as usual.
fn main() {
    let gnu_driver = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let args: &[&str] = if gnu_driver {
        // The host target links through cc.
        &[
            "-nostartfiles",
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,--gc-sections",
            "-Wl,--build-id=none",
            "-Wl,-z,norelro",
            "-Wl,-z,noexecstack",
            // Always: symbols are of no use in a 5 KiB program.
            "-Wl,--strip-all",
        ]
    } else {
        // The musl targets link with rust-lld directly (see .cargo/config.toml).
        &[
            "-nostdlib",
            "-static",
            "--no-pie",
            "--gc-sections",
            "--build-id=none",
            "-z",
            "norelro",
            "-z",
            "noexecstack",
            "--strip-all",
        ]
    };
    for arg in args {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}

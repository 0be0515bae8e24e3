//! What a fresh Debian machine lacks for `cargo xtask test`, installed when
//! missing (as root): the README promises that its test command works on
//! one by itself.

use std::process::{Command, Stdio};

/// Debian packages the tests need, with what each is for.
const PACKAGES: &[(&str, &str)] = &[
    ("busybox-static", "the test rootfs"),
    ("qemu-user-static", "the foreign runners' smoke tests"),
    ("gcc-arm-linux-gnueabihf", "links the static armv7 runner"),
    ("gcc-riscv64-linux-gnu", "links the static riscv64 runner"),
    (
        "golang-go",
        "builds the OCI conformance suite (tests/conformance)",
    ),
    ("make", "drives the conformance suite's build"),
    (
        "containerd",
        "drives husk as its runc in tests/tests/oci.rs",
    ),
    ("podman", "drives husk as its runtime in tests/tests/oci.rs"),
    ("runc", "the OCI tests run the same bundle through it"),
    (
        "iproute2",
        "the netlink tests read links, addresses and routes back with ip",
    ),
    (
        "iputils-ping",
        "the netlink tests ping across a veth, in namespaces of their own",
    ),
    (
        "nftables",
        "the nf_tables unit tests read husk's rules back with nft (the runner itself talks netlink)",
    ),
    (
        "containernetworking-plugins",
        "the --net cni:NAME scenario runs its bridge and host-local plugins",
    ),
];

/// The rustup targets of the four architectures, and rust-src (dist
/// rebuilds std for size).
const TARGETS: &[&str] = &[
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "armv7-unknown-linux-gnueabihf",
    "riscv64gc-unknown-linux-gnu",
];

pub fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// apt-get install of `packages`, after an update of the lists.
pub fn apt_install(packages: &[&str]) -> crate::Result {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("run apt-get: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or(format!("apt-get {} failed: {s}", args.join(" ")))
            })
    };
    apt(&["update", "-qq"])?;
    apt(&[&["install", "-y", "-qq"][..], packages].concat())
}

/// Installs what is missing; without root, says what is missing instead
/// (dist then names the package it stops at).
pub fn ensure() -> crate::Result {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !missing.is_empty() {
        if root {
            println!("xtask: installing {} (apt-get)", missing.join(" "));
            apt_install(&missing)?;
        } else {
            println!(
                "xtask: missing {} (not root, so not installed)",
                missing.join(" ")
            );
        }
    }
    let have = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let targets: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !have.lines().any(|l| l.trim() == *t))
        .collect();
    if !targets.is_empty() {
        println!("xtask: rustup target add {}", targets.join(" "));
        crate::run(
            Command::new("rustup")
                .args(["target", "add"])
                .args(&targets),
        )?;
    }
    let components = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        println!("xtask: rustup component add rust-src");
        crate::run(Command::new("rustup").args(["component", "add", "rust-src"]))?;
    }
    Ok(())
}

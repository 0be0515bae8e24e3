//! The architectures husk ships for, and what each is called by Rust,
//! Debian and QEMU.

pub struct Arch {
    /// Our name, also the directory under target/dist.
    pub name: &'static str,
    pub triple: &'static str,
    pub debian: &'static str,
    pub qemu: &'static str,
    /// ELF e_machine.
    pub machine: u16,
    /// The Debian package that links this target, when rust-lld cannot.
    pub linker_package: Option<&'static str>,
    /// Code generation flags for the shim alone.
    pub shim_flags: &'static str,
}

pub const ALL: [Arch; 4] = [
    Arch {
        name: "x86_64",
        triple: "x86_64-unknown-linux-musl",
        debian: "amd64",
        qemu: "x86_64",
        machine: 62,
        linker_package: None,
        shim_flags: "",
    },
    Arch {
        name: "aarch64",
        triple: "aarch64-unknown-linux-musl",
        debian: "arm64",
        qemu: "aarch64",
        machine: 183,
        linker_package: None,
        shim_flags: "",
    },
    // rustup's musl std for these two is not reachable from our machines:
    // static glibc, linked by Debian's cross gcc.
    Arch {
        name: "armv7",
        triple: "armv7-unknown-linux-gnueabihf",
        debian: "armhf",
        qemu: "arm",
        machine: 40,
        linker_package: Some("gcc-arm-linux-gnueabihf"),
        // Thumb-2, as every ARMv7-A core runs it: a third smaller than
        // ARM code (16196 bytes to 10820), NEON still not assumed.
        shim_flags: "-Ctarget-feature=+thumb-mode",
    },
    Arch {
        name: "riscv64",
        triple: "riscv64gc-unknown-linux-gnu",
        debian: "riscv64",
        qemu: "riscv64",
        machine: 243,
        linker_package: Some("gcc-riscv64-linux-gnu"),
        shim_flags: "",
    },
];

impl Arch {
    /// The flags that make a static program for this target. Rust links
    /// glibc targets dynamically unless asked; musl ones are static.
    pub fn static_rustflags(&self) -> &'static [&'static str] {
        if self.triple.ends_with("-gnu") || self.triple.ends_with("-gnueabihf") {
            &["-C", "target-feature=+crt-static"]
        } else {
            &[]
        }
    }

    /// Sets `cmd` (a cargo build for this target) to build static programs,
    /// through the rustflags variable of this target alone: build scripts
    /// and other targets keep their own flags.
    pub fn build_static(&self, cmd: &mut std::process::Command) {
        let flags = self.static_rustflags();
        if !flags.is_empty() {
            let var = format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                self.triple.to_uppercase().replace('-', "_")
            );
            cmd.env(var, flags.join(" "));
        }
    }
}

/// By our name or by triple.
pub fn find(name: &str) -> Result<&'static Arch, String> {
    ALL.iter()
        .find(|a| a.name == name || a.triple == name)
        .ok_or_else(|| {
            format!("unknown architecture {name}: expected x86_64, aarch64, armv7 or riscv64")
        })
}

pub fn native() -> &'static Arch {
    find(std::env::consts::ARCH).expect("xtask runs on one of the architectures husk ships for")
}

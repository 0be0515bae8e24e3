//! The modules a guest loads: those the tests need, each after the modules
//! it depends on (its .modinfo `depends=`), since the guest has busybox's
//! insmod, which resolves nothing, and no modprobe for the kernel to ask.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What the tests need that Debian's kernels build as modules, by module
/// name. Everything else (cgroups v1 and v2, namespaces, devtmpfs, devpts,
/// mqueue, the serial console, the initramfs) is built into each kernel of
/// the matrix; so may some of these be, on some kernel, and then they are
/// not needed.
const NEEDED: &[&str] = &[
    // --layer and --image.
    "overlay",
    // Bridge networking: a veth pair per container, a bridge per network.
    "veth",
    "bridge",
    // The nf_tables expressions and chain types husk's rules use
    // (runner/src/net/nft.rs): nat chains, masq, nat (DNAT), fib.
    // payload, meta, cmp, bitwise and immediate are nf_tables' own.
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_fib_ipv4",
];

/// Loaded first where the kernel has them as modules: libcrc32c (which
/// nf_conntrack needs) asks the crypto API for crc32c by name at its
/// start, a soft dependency that only modprobe would have loaded.
const SOFT: &[&str] = &["crc32c_generic"];

/// What decides the list: a cached kernel made with another is made again.
pub fn key() -> String {
    format!("needs {} soft {}", NEEDED.join(","), SOFT.join(","))
}

/// The modules to load, in order, unpacked as plain .ko files into `dir`
/// from the module tree `tree` (lib/modules/<version>); their names.
pub fn resolve(tree: &Path, dir: &Path) -> crate::Result<Vec<String>> {
    let mut r = Resolver {
        index: HashMap::new(),
        builtin: fs::read_to_string(tree.join("modules.builtin")).unwrap_or_default(),
        dir,
        order: Vec::new(),
    };
    r.walk(&tree.join("kernel"))?;
    for m in SOFT {
        if r.index.contains_key(*m) {
            r.load(m, &mut Vec::new())?;
        }
    }
    for m in NEEDED {
        r.load(m, &mut Vec::new())?;
    }
    Ok(r.order)
}

/// The path of module `name`, unpacked into `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.ko"))
}

struct Resolver<'a> {
    /// Module name -> its file's path without .ko[.xz|.zst].
    index: HashMap<String, PathBuf>,
    /// modules.builtin: "kernel/fs/overlayfs/overlay.ko" lines.
    builtin: String,
    dir: &'a Path,
    order: Vec<String>,
}

impl Resolver<'_> {
    fn walk(&mut self, d: &Path) -> crate::Result {
        let entries = fs::read_dir(d).map_err(|e| format!("read {}: {e}", d.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.walk(&p)?;
                continue;
            }
            let file = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = [".ko", ".ko.xz", ".ko.zst"]
                .iter()
                .find_map(|ext| file.strip_suffix(ext))
            {
                self.index
                    .insert(stem.replace('-', "_"), p.with_file_name(stem));
            }
        }
        Ok(())
    }

    /// Loads `name` after what it depends on; `chain` is the way here,
    /// against a cycle.
    fn load(&mut self, name: &str, chain: &mut Vec<String>) -> crate::Result {
        if self.order.iter().any(|m| m == name) {
            return Ok(());
        }
        if chain.iter().any(|m| m == name) {
            return Err(format!(
                "modules depend in a circle: {}",
                chain.join(" -> ")
            ));
        }
        let Some(stem) = self.index.get(name).cloned() else {
            let built_in = self.builtin.lines().any(|l| {
                l.rsplit('/')
                    .next()
                    .and_then(|f| f.strip_suffix(".ko"))
                    .is_some_and(|f| f.replace('-', "_") == name)
            });
            if built_in {
                return Ok(());
            }
            return Err(format!("no module {name}, nor is it built in"));
        };
        let to = path(self.dir, name);
        super::kernel::module(&stem, &to)?;
        let bytes = fs::read(&to).map_err(|e| format!("read {}: {e}", to.display()))?;
        chain.push(name.to_string());
        for dep in depends(&bytes) {
            self.load(&dep, chain)?;
        }
        chain.pop();
        self.order.push(name.to_string());
        Ok(())
    }
}

/// The names in a module's `depends=` .modinfo string.
fn depends(ko: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = ko.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &ko[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.replace('-', "_"))
        .collect()
}

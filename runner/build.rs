// With HUSK_EMBED_SHIM=<path to a built husk-shim>, the shim is compiled
// into the runner, which then runs it from a sealed memfd: one file to
// deploy, and nothing on disk a container could overwrite. xtask sets it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(husk_embedded_shim)");
    println!("cargo:rerun-if-env-changed=HUSK_EMBED_SHIM");
    if let Some(path) = std::env::var_os("HUSK_EMBED_SHIM") {
        let path = std::path::Path::new(&path)
            .canonicalize()
            .expect("HUSK_EMBED_SHIM must name an existing file, by an absolute path");
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-cfg=husk_embedded_shim");
        println!("cargo:rustc-env=HUSK_SHIM_PATH={}", path.display());
    }
}

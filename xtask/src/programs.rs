//! The test programs of the husk-tests package, built static for an
//! architecture: husk-tests (the scenarios, for the VMs) and husk-probe
//! (run inside containers).

/// The static husk-probe for `a`, which the scenarios run inside containers.
pub fn build_probe(a: &crate::arch::Arch) -> crate::Result<std::path::PathBuf> {
    build_static(a, "husk-probe")
}

/// A static program of the husk-tests package for `a`, checked for being
/// static and for `a`'s machine: glibc targets are linked statically as
/// dist links their runners.
pub fn build_static(a: &crate::arch::Arch, bin: &str) -> crate::Result<std::path::PathBuf> {
    let mut cargo = crate::cargo();
    cargo.args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "husk-tests",
        "--bin",
        bin,
        "--target",
        a.triple,
    ]);
    a.build_static(&mut cargo);
    crate::run(&mut cargo)?;
    let bin = crate::target().join(a.triple).join("release").join(bin);
    let facts = husk_tests::elf::read(&bin)?;
    if !facts.is_static() || facts.machine != a.machine {
        return Err(format!(
            "{} is not a static {} program: {facts:?}",
            bin.display(),
            a.name
        ));
    }
    Ok(bin)
}

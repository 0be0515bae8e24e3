//! The seccomp filter: Docker's default profile — an allow-list with
//! argument rules that follows the container's capability set — compiled
//! by the runner into classic BPF for the architecture it was built for.
//!
//! - `table.rs`: Docker's rules, with syscall numbers from linux-raw-sys.
//! - `policy.rs`: what the rules decide for one capability set.
//! - `bpf.rs`: the decisions laid out as a search tree by syscall number.
//! - `oci.rs`: the same decisions as an OCI runtime-spec profile (for the
//!   bench, to give runc the equivalent filter).
//!
//! A deny-list let through whatever it did not name: `unshare` and `clone`
//! with `CLONE_NEWUSER`, `setns`, the mount family. A process in a default
//! container made a user namespace, mounted cgroupfs in it and froze host
//! processes. With an allow-list, what is not named fails with EPERM.

mod bpf;
mod oci;
mod policy;
pub mod profile;
mod table;
#[cfg(test)]
mod tests;

pub use oci::profile as oci_profile;

/// The filter for a container keeping the capabilities `caps`, as the
/// bytes of a `struct sock_filter` array (native endian, 8 bytes an
/// instruction), ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
/// Only the capabilities the table names change the filter, and the unit
/// tests compile it for every combination of them: an error here is a bug
/// in the compiler, reported as such rather than a panic.
pub fn filter(caps: u64) -> Result<Vec<u8>, String> {
    let mut decisions = policy::resolve(caps);
    let enosys = policy::Decision::Ret(policy::RET_ENOSYS);
    decisions.extend(policy::newer().map(|nr| (nr, enosys.clone())));
    // In number order: on armv7 the table also names arm's private calls,
    // far above the newer ones.
    decisions.sort_by_key(|(nr, _)| *nr);
    let program = bpf::compile(&decisions, RET_EPERM)?;
    Ok(bpf::encode(&program))
}

/// The audit architecture of this build's syscalls: `seccomp_data.arch`.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_AARCH64;
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_ARM;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_RISCV64;

/// The name libseccomp (and so the OCI runtime-spec) gives it.
#[cfg(target_arch = "x86_64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_AARCH64";
#[cfg(target_arch = "arm")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_ARM";
#[cfg(target_arch = "riscv64")]
pub const SCMP_ARCH: &str = "SCMP_ARCH_RISCV64";

// The filter reads the low word of each 64-bit argument at offset
// 16 + 8·i of `struct seccomp_data`: that is where it is on a
// little-endian machine, which all four targets are.
const _: () = assert!(cfg!(target_endian = "little"));

// What a filter returns, as <linux/seccomp.h> numbers it.
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
/// Docker's default action: errno EPERM.
const RET_EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

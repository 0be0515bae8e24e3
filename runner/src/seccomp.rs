//! The default seccomp filter, as classic BPF for the architecture the
//! runner was built for. Syscall numbers come from linux-raw-sys.

use linux_raw_sys::general as nr;

/// Syscalls a container has no business making; they fail with EPERM.
/// Docker's default profile refuses these too (or gates them on
/// capabilities a container does not have by default).
fn denied() -> Vec<u32> {
    let mut list = vec![
        nr::__NR_acct,
        nr::__NR_add_key,
        nr::__NR_bpf,
        nr::__NR_clock_adjtime,
        nr::__NR_clock_settime,
        nr::__NR_settimeofday,
        nr::__NR_adjtimex,
        nr::__NR_delete_module,
        nr::__NR_finit_module,
        nr::__NR_init_module,
        nr::__NR_kexec_file_load,
        nr::__NR_kexec_load,
        nr::__NR_keyctl,
        nr::__NR_request_key,
        nr::__NR_lookup_dcookie,
        nr::__NR_name_to_handle_at,
        nr::__NR_open_by_handle_at,
        nr::__NR_nfsservctl,
        nr::__NR_perf_event_open,
        nr::__NR_quotactl,
        nr::__NR_quotactl_fd,
        nr::__NR_reboot,
        nr::__NR_swapon,
        nr::__NR_swapoff,
        nr::__NR_userfaultfd,
        nr::__NR_vhangup,
        nr::__NR_kcmp,
        nr::__NR_syslog,
        nr::__NR_io_uring_setup,
        nr::__NR_io_uring_enter,
        nr::__NR_io_uring_register,
    ];
    list.extend_from_slice(ARCH_DENIED);
    list
}

/// The same for syscalls only some architectures have.
#[cfg(target_arch = "x86_64")]
const ARCH_DENIED: &[u32] = &[
    nr::__NR_iopl,
    nr::__NR_ioperm,
    nr::__NR_uselib,
    nr::__NR_ustat,
    nr::__NR_sysfs,
    nr::__NR__sysctl,
];
#[cfg(target_arch = "arm")]
const ARCH_DENIED: &[u32] = &[
    nr::__NR_uselib,
    nr::__NR_ustat,
    nr::__NR_sysfs,
    nr::__NR__sysctl,
    nr::__NR_clock_settime64,
    nr::__NR_clock_adjtime64,
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "arm")))]
const ARCH_DENIED: &[u32] = &[];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_AARCH64;
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_ARM;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = linux_raw_sys::ptrace::AUDIT_ARCH_RISCV64;

// Classic BPF, as <linux/filter.h> and <linux/seccomp.h> number it.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
/// offsetof(struct seccomp_data, nr) and (.., arch).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// x32 syscalls arrive under the x86_64 audit arch with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&code.to_ne_bytes());
    out.extend_from_slice(&[jt, jf]);
    out.extend_from_slice(&k.to_ne_bytes());
}

/// The filter, as the bytes of a `struct sock_filter` array.
pub fn default_filter() -> Vec<u8> {
    let denied = denied();
    let mut f = Vec::with_capacity((denied.len() + 8) * 8);
    let deny = RET_ERRNO | libc::EPERM as u32;
    // Another architecture's syscall numbers mean other syscalls: kill.
    insn(LD_W_ABS, 0, 0, OFF_ARCH, &mut f);
    insn(JEQ_K, 1, 0, AUDIT_ARCH, &mut f);
    insn(RET_K, 0, 0, RET_KILL_PROCESS, &mut f);
    insn(LD_W_ABS, 0, 0, OFF_NR, &mut f);
    #[cfg(target_arch = "x86_64")]
    {
        insn(JGE_K, 0, 1, X32_SYSCALL_BIT, &mut f);
        insn(RET_K, 0, 0, deny, &mut f);
    }
    // Each match jumps over the remaining checks and the ALLOW to the deny.
    for (i, n) in denied.iter().enumerate() {
        let remaining = (denied.len() - 1 - i) as u8;
        insn(JEQ_K, remaining + 1, 0, *n, &mut f);
    }
    insn(RET_K, 0, 0, RET_ALLOW, &mut f);
    insn(RET_K, 0, 0, deny, &mut f);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for what the filter uses.
    fn run(filter: &[u8], arch: u32, nr: u32) -> u32 {
        let insns: Vec<(u16, u8, u8, u32)> = filter
            .chunks(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = insns[pc];
            pc += 1;
            match code {
                LD_W_ABS => acc = if k == OFF_ARCH { arch } else { nr },
                JEQ_K => pc += if acc == k { jt } else { jf } as usize,
                JGE_K => pc += if acc >= k { jt } else { jf } as usize,
                RET_K => return k,
                _ => panic!("unexpected instruction {code:#x}"),
            }
        }
    }

    #[test]
    fn denies_the_list_allows_the_rest_kills_other_arches() {
        let f = default_filter();
        assert_eq!(f.len() % 8, 0);
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for n in denied() {
            assert_eq!(run(&f, AUDIT_ARCH, n), eperm, "syscall {n}");
        }
        for n in [
            nr::__NR_read,
            nr::__NR_write,
            nr::__NR_execve,
            nr::__NR_clone,
            nr::__NR_openat,
        ] {
            assert_eq!(run(&f, AUDIT_ARCH, n), RET_ALLOW, "syscall {n}");
        }
        assert_eq!(run(&f, 0x1234, nr::__NR_read), RET_KILL_PROCESS);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(run(&f, AUDIT_ARCH, X32_SYSCALL_BIT | nr::__NR_read), eperm);
    }
}

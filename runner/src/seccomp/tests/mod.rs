//! The compiled filter, run through a classic BPF interpreter: against a
//! plain reading of the rules (`policy.rs`), against the calls the issue
//! was about (`cases.rs`), and the compiler on its own (`compiler.rs`).

mod cases;
mod compiler;
mod policy;
mod profile;

use super::bpf::{Insn, AND_K, JA, JEQ_K, JGE_K, JGT_K, LD_W_ABS, RET_K};
use super::AUDIT_ARCH;
use crate::caps;

pub const SYS_ADMIN: u64 = 1 << 21;
pub const SYS_PTRACE: u64 = 1 << 19;
pub const SYS_NICE: u64 = 1 << 23;

/// The capability sets every check runs for.
pub const CAP_SETS: [(&str, u64); 6] = [
    ("none", 0),
    ("Docker's default", caps::DEFAULT),
    ("default + SYS_ADMIN", caps::DEFAULT | SYS_ADMIN),
    ("default + SYS_PTRACE", caps::DEFAULT | SYS_PTRACE),
    ("default + SYS_NICE", caps::DEFAULT | SYS_NICE),
    ("all", u64::MAX),
];

/// `struct seccomp_data`: nr, arch, instruction pointer, six arguments.
fn seccomp_data(arch: u32, nr: u32, args: &[u64; 6]) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&nr.to_ne_bytes());
    d[4..8].copy_from_slice(&arch.to_ne_bytes());
    d[8..16].copy_from_slice(&0x7fff_1234_5678_9abc_u64.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    d
}

/// A filter decoded from its bytes, to run as the kernel runs classic BPF:
/// every instruction the compiler emits. Anything the kernel would refuse
/// (a jump out of the program, a load outside `seccomp_data`, an unknown
/// opcode) fails the test.
pub struct Bpf(Vec<Insn>);

impl Bpf {
    pub fn new(filter: &[u8]) -> Bpf {
        assert_eq!(filter.len() % 8, 0, "not whole instructions");
        Bpf(filter
            .chunks(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The action, and how many instructions ran.
    pub fn run(&self, arch: u32, nr: u32, args: &[u64; 6]) -> (u32, usize) {
        let data = seccomp_data(arch, nr, args);
        let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let i = *self.0.get(pc).unwrap_or_else(|| {
                panic!("nr {nr}: jumped to {pc}, past the end ({})", self.0.len())
            });
            pc += 1;
            steps += 1;
            match i.code {
                LD_W_ABS => {
                    let k = i.k as usize;
                    assert!(k.is_multiple_of(4) && k + 4 <= data.len(), "load at {k}");
                    acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                AND_K => acc &= i.k,
                JA => pc += i.k as usize,
                JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
                JGE_K => pc += if acc >= i.k { i.jt } else { i.jf } as usize,
                JGT_K => pc += if acc > i.k { i.jt } else { i.jf } as usize,
                RET_K => return (i.k, steps),
                code => panic!("unexpected opcode {code:#x} at {}", pc - 1),
            }
        }
    }

    /// The action for a syscall of this architecture.
    pub fn verdict(&self, nr: u32, args: &[u64; 6]) -> u32 {
        self.run(AUDIT_ARCH, nr, args).0
    }
}

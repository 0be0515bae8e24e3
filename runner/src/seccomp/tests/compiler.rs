//! The compiler on its own: jumps of every length, synthetic policies large
//! enough to need trampolines, the kernel's size limit, the tree's depth,
//! and the OCI profile.

use linux_raw_sys::general as nr;

use super::policy::highest_known;
use super::{Bpf, CAP_SETS, SYS_ADMIN};
use crate::caps;
use crate::seccomp::bpf::{self, Insn, JA, JEQ_K, LD_W_ABS, OFF_NR, RET_K};
use crate::seccomp::policy::{self, ArgTest, Cmp, Decision};
use crate::seccomp::{filter, oci_profile, AUDIT_ARCH, RET_ALLOW, RET_EPERM, RET_ERRNO};

fn ret(k: u32) -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k,
    }
}

#[test]
fn a_branch_reaches_every_distance() {
    let distances = [0, 1, 2, 200, 253, 254, 255, 256, 257, 300, 1000];
    for t in distances {
        for f in distances {
            // [LD nr] [branch] then RETs: 1 where the true branch lands, 2
            // where the false one does, 0xdead elsewhere.
            let mut prog = vec![Insn {
                code: LD_W_ABS,
                jt: 0,
                jf: 0,
                k: OFF_NR,
            }];
            let mut rev = Vec::new();
            bpf::branch(&mut rev, JEQ_K, 7, t, f).unwrap();
            prog.extend(rev.iter().rev());
            prog.extend((0..=t.max(f)).map(|i| match i {
                i if i == t => ret(1),
                i if i == f => ret(2),
                _ => ret(0xdead),
            }));
            let code = Bpf::new(&bpf::encode(&prog));
            let want_false = if t == f { 1 } else { 2 };
            assert_eq!(code.verdict(7, &[0; 6]), 1, "t {t} f {f}, true");
            assert_eq!(code.verdict(8, &[0; 6]), want_false, "t {t} f {f}, false");
        }
    }
}

/// What a synthetic decision list means, read plainly.
fn expected(decisions: &[(u32, Decision)], nr: u32, args: &[u64; 6]) -> u32 {
    match decisions.iter().find(|(n, _)| *n == nr).map(|(_, d)| d) {
        None => RET_EPERM,
        Some(Decision::Ret(r)) => *r,
        Some(Decision::Args(tests)) if tests.iter().any(|t| t.passes(args)) => RET_ALLOW,
        Some(Decision::Args(_)) => RET_EPERM,
        Some(Decision::Entries { .. }) => unreachable!("only OCI profiles have entries"),
    }
}

#[test]
fn far_jumps_go_through_trampolines_and_every_decision_holds() {
    let eq = |arg, v| ArgTest {
        arg,
        cmp: Cmp::Eq(v),
    };
    let mut decisions = vec![
        // 300 values: the first test's jump to the final RET ALLOW skips
        // about 600 instructions.
        (3, Decision::Args((0..300).map(|v| eq(0, v * 3)).collect())),
        // Every kind of test, on other arguments.
        (
            4,
            Decision::Args(vec![
                ArgTest {
                    arg: 1,
                    cmp: Cmp::MaskedEq {
                        mask: 0xf0,
                        value: 0x30,
                    },
                },
                ArgTest {
                    arg: 5,
                    cmp: Cmp::Ne(0),
                },
                eq(2, 9),
                eq(2, 10),
            ]),
        ),
    ];
    // 700 intervals of distinct outcomes: the upper levels of the tree jump
    // over hundreds of instructions; and a second large leaf among them.
    for n in 10..710 {
        let d = match n {
            350 => Decision::Args((0..200).map(|v| eq(2, 1000 + v)).collect()),
            n if n % 3 == 0 => Decision::Ret(RET_ALLOW),
            n => Decision::Ret(RET_ERRNO | (n % 50)),
        };
        decisions.push((n, d));
    }
    let prog = bpf::compile(&decisions, RET_EPERM).unwrap();
    let trampolines = prog.iter().filter(|i| i.code == JA).count();
    let far = prog
        .iter()
        .filter(|i| i.code == JEQ_K && i.jt.max(i.jf) > 200)
        .count();
    assert!(trampolines >= 10, "{trampolines} trampolines");
    assert!(far > 0, "no conditional jump over more than 200");
    let code = Bpf::new(&bpf::encode(&prog));
    let mut values: Vec<u64> = (0..1300).collect();
    values.extend([
        0x30,
        0x3f,
        0x130,
        0x40,
        u32::MAX as u64,
        0xffff_ffff_0000_0003,
    ]);
    let few = [0, 1, 0x30, u32::MAX as u64];
    for nr in 0..800 {
        // Every value where an argument rule decides, a few elsewhere.
        let values = if [3, 4, 350].contains(&nr) {
            &values[..]
        } else {
            &few[..]
        };
        for &v in values {
            let high = 0xdead_beef << 32;
            for args in [[v; 6], [v | high; 6], [0, v, v, 0, 0, v]] {
                let want = expected(&decisions, nr, &args);
                assert_eq!(code.verdict(nr, &args), want, "nr {nr}, args {args:x?}");
            }
        }
    }
}

#[test]
fn past_the_kernels_limit_is_an_error() {
    let decisions: Vec<(u32, Decision)> = (0..2100)
        .map(|n| (n, Decision::Ret(RET_ERRNO | (n % 2))))
        .collect();
    let e = bpf::compile(&decisions, RET_EPERM).unwrap_err();
    assert!(e.contains("at most 4096"), "{e}");
    let unsorted = [(5, Decision::Ret(RET_ALLOW)), (4, Decision::Ret(RET_ALLOW))];
    assert!(bpf::compile(&unsorted, RET_EPERM)
        .unwrap_err()
        .contains("out of order"));
}

/// Only the capabilities the table names change the filter: compiling it
/// for every combination of them covers every capability set there is.
#[test]
fn every_capability_set_compiles_within_the_kernels_limit() {
    let matter = policy::caps_that_matter();
    let bits: Vec<u32> = (0..64).filter(|b| matter & (1 << b) != 0).collect();
    assert!((10..=16).contains(&bits.len()), "{bits:?}");
    let mut longest = 0;
    for combo in 0..1u64 << bits.len() {
        let caps = bits
            .iter()
            .enumerate()
            .filter(|(i, _)| combo & (1 << i) != 0)
            .fold(0, |c, (_, b)| c | 1u64 << b);
        let prog = bpf::compile(&policy::resolve(caps), RET_EPERM)
            .unwrap_or_else(|e| panic!("caps {caps:#x}: {e}"));
        longest = longest.max(prog.len());
    }
    let default = filter(caps::DEFAULT).unwrap().len() / 8;
    println!(
        "seccomp on {}: the default filter has {default} instructions, the longest {longest}",
        std::env::consts::ARCH
    );
    assert!(longest < bpf::MAX_INSNS);
}

/// A search, not a list: any syscall without argument rules is decided
/// within a few comparisons of the tree's depth.
#[test]
fn the_layout_is_a_tree() {
    for (name, caps) in CAP_SETS {
        let f = Bpf::new(&filter(caps).unwrap());
        let len = f.len();
        let depth = usize::BITS - len.leading_zeros();
        let mut deepest = 0;
        for n in 0..=highest_known() + 64 {
            if [nr::__NR_socket, nr::__NR_personality, nr::__NR_clone].contains(&n) {
                continue;
            }
            deepest = deepest.max(f.run(AUDIT_ARCH, n, &[0; 6]).1);
        }
        // Header (4), one comparison a level, a trampoline at the widest
        // levels, the RET.
        let bound = 4 + 2 * depth as usize + 1;
        assert!(
            deepest <= bound,
            "caps {name}: {deepest} steps, {len} instructions"
        );
    }
}

#[test]
fn the_oci_profile_says_what_the_filter_does() {
    let count = |s: &str, what: &str| s.matches(what).count();
    let p = oci_profile(caps::DEFAULT);
    assert_eq!(count(&p, "{"), count(&p, "}"), "{p}");
    assert_eq!(count(&p, "["), count(&p, "]"), "{p}");
    assert!(p.contains("\"defaultAction\": \"SCMP_ACT_ERRNO\""), "{p}");
    assert!(p.contains("\"defaultErrnoRet\": 1"), "{p}");
    assert!(p.contains(&format!(
        "\"architectures\": [\"{}\"]",
        crate::seccomp::SCMP_ARCH
    )));
    let names = policy::named();
    for (nr, d) in policy::resolve(caps::DEFAULT) {
        let name = names.iter().find(|s| s.nr == nr).unwrap().name;
        let quoted = format!("\"{name}\"");
        match d {
            Decision::Ret(RET_EPERM) => assert_eq!(count(&p, &quoted), 0, "{quoted}"),
            Decision::Ret(_) => assert_eq!(count(&p, &quoted), 1, "{quoted}"),
            Decision::Args(t) => assert_eq!(count(&p, &quoted), t.len(), "{quoted}"),
            Decision::Entries { .. } => unreachable!("only OCI profiles have entries"),
        }
    }
    for name in ["read", "getppid", "ptrace"] {
        assert!(p.contains(&format!("\"{name}\"")), "{name}");
    }
    for name in [
        "unshare",
        "setns",
        "mount",
        "io_uring_setup",
        "process_vm_readv",
    ] {
        assert!(!p.contains(&format!("\"{name}\"")), "{name}");
    }
    assert_eq!(count(&p, "\"names\": [\"personality\"]"), 5);
    assert!(p.contains("{\"index\": 0, \"value\": 40, \"op\": \"SCMP_CMP_NE\"}"));
    assert!(p.contains(
        "{\"index\": 0, \"value\": 2114060288, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}"
    ));
    assert!(
        p.contains("{\"names\": [\"clone3\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38}")
    );
    let admin = oci_profile(caps::DEFAULT | SYS_ADMIN);
    assert!(admin.contains("\"unshare\"") && !admin.contains("errnoRet\": 38"));
    assert!(!admin.contains("MASKED_EQ"));
}

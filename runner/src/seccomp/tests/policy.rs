//! The filter for each capability set against the rules read plainly.

use std::collections::BTreeMap;

use linux_raw_sys::general as nr;

use super::{Bpf, CAP_SETS};
use crate::caps;
use crate::seccomp::policy::{named, Action, Cmp, Rule, Sys};
use crate::seccomp::table::RULES;
use crate::seccomp::{filter, AUDIT_ARCH, RET_ALLOW, RET_EPERM, RET_ERRNO, RET_KILL_PROCESS};

/// The rules that name each syscall number, in the table's order.
fn rules_by_number() -> BTreeMap<u32, Vec<&'static Rule>> {
    let mut by_nr: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for rule in RULES {
        for &nr in rule.names.nrs {
            by_nr.entry(nr).or_default().push(rule);
        }
    }
    by_nr
}

/// The rules read plainly, one syscall at a time: what the filter must do
/// for a call to `nr`, named by `rules` (none: the default). Two
/// unconditional rules that disagree about a syscall are a table bug.
fn decide(caps: u64, rules: Option<&Vec<&Rule>>, nr: u32, args: &[u64; 6]) -> u32 {
    // Newer than any syscall the table names, below 1024: ENOSYS.
    let regular_top = RULES
        .iter()
        .flat_map(|r| r.names.nrs.iter().copied())
        .filter(|&n| n < 1024)
        .max()
        .unwrap();
    if rules.is_none() && nr > regular_top && nr < 1024 {
        return RET_ERRNO | libc::ENOSYS as u32;
    }
    let (mut ret, mut passed) = (None, false);
    for rule in rules.into_iter().flatten().filter(|r| r.when.holds(caps)) {
        let this = match rule.action {
            Action::Allow => RET_ALLOW,
            Action::Errno(e) => RET_ERRNO | e,
            Action::AllowIf(t) => {
                passed |= t.passes(args);
                continue;
            }
        };
        assert!(
            ret.is_none_or(|r| r == this),
            "syscall {nr}: rules disagree"
        );
        ret = Some(this);
    }
    ret.unwrap_or(if passed { RET_ALLOW } else { RET_EPERM })
}

/// Arguments that sit on each rule's boundaries: every value a rule names,
/// its neighbours, each bit of a mask, with the high 32 bits clear, set to
/// garbage, or all ones (the kernel ignores them; so must the filter).
fn boundary_args() -> Vec<[u64; 6]> {
    let mut lows = vec![0u32, 1, 0x8000_0000, u32::MAX];
    for rule in RULES {
        if let Action::AllowIf(t) = rule.action {
            match t.cmp {
                Cmp::Eq(v) | Cmp::Ne(v) => lows.extend([v, v.wrapping_sub(1), v.wrapping_add(1)]),
                Cmp::MaskedEq { mask, value } => {
                    lows.extend([value, mask, value | mask, !mask]);
                    lows.extend((0..32).map(|b| 1u32 << b).filter(|b| mask & b != 0));
                    lows.extend([value | 0x11, nr::CLONE_VM | nr::CLONE_THREAD]);
                }
            }
        }
    }
    lows.sort_unstable();
    lows.dedup();
    let highs = [0u64, 0xdead_beef, 0xffff_ffff];
    lows.iter()
        .flat_map(|&low| highs.map(|h| [h << 32 | low as u64; 6]))
        .collect()
}

pub fn highest_known() -> u32 {
    RULES
        .iter()
        .flat_map(|r| r.names.nrs.iter().copied())
        .max()
        .unwrap()
}

#[test]
fn every_syscall_number_decided_as_the_rules_say() {
    let boundaries = boundary_args();
    let by_nr = rules_by_number();
    let plain = [[0u64; 6], [0xdead_beef_0000_0001; 6], [u64::MAX; 6]];
    let with_args: Vec<u32> = RULES
        .iter()
        .filter(|r| matches!(r.action, Action::AllowIf(_)))
        .flat_map(|r| r.names.nrs.iter().copied())
        .collect();
    let top = highest_known() + 64;
    // x86_64's x32 syscalls: the same numbers with bit 30 set.
    let x32: Vec<u32> = if cfg!(target_arch = "x86_64") {
        (0x4000_0000..=0x4000_0000 + top).collect()
    } else {
        Vec::new()
    };
    let odd = [0x3fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX];
    for (name, caps) in CAP_SETS {
        let f = Bpf::new(&filter(caps).unwrap());
        for nr in (0..=top).chain(x32.iter().copied()).chain(odd) {
            let rules = by_nr.get(&nr);
            let cases: &[[u64; 6]] = if with_args.contains(&nr) {
                &boundaries
            } else {
                &plain
            };
            for args in cases {
                let (want, got) = (decide(caps, rules, nr, args), f.verdict(nr, args));
                assert_eq!(got, want, "caps {name}: syscall {nr} with {args:x?}");
            }
        }
        for nr in x32.iter().copied().chain(odd) {
            assert_eq!(f.verdict(nr, &[0; 6]), RET_EPERM, "caps {name}: {nr:#x}");
        }
    }
}

#[test]
fn another_architecture_is_killed() {
    use linux_raw_sys::ptrace::{
        AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_RISCV64, AUDIT_ARCH_X86_64,
    };
    let f = Bpf::new(&filter(caps::DEFAULT).unwrap());
    for arch in [
        AUDIT_ARCH_X86_64,
        AUDIT_ARCH_I386,
        AUDIT_ARCH_AARCH64,
        AUDIT_ARCH_ARM,
        AUDIT_ARCH_RISCV64,
        0,
    ] {
        if arch == AUDIT_ARCH {
            continue;
        }
        for nr in [0, nr::__NR_getppid, nr::__NR_clone, nr::__NR_unshare] {
            assert_eq!(
                f.run(arch, nr, &[0; 6]).0,
                RET_KILL_PROCESS,
                "{arch:#x} {nr}"
            );
        }
    }
}

#[test]
fn every_name_has_one_number() {
    for rule in RULES {
        let names = rule.names.constants.split_ascii_whitespace().count();
        assert_eq!(names, rule.names.nrs.len(), "{:?}", rule.names);
    }
    let mut all: Vec<Sys> = RULES.iter().flat_map(|r| r.names.iter()).collect();
    all.sort_by_key(|s| (s.nr, s.name));
    all.dedup();
    // Two names for one number: only arm's sync_file_range2, which Docker
    // lists under both.
    let aliases: Vec<(&str, &str)> = all
        .windows(2)
        .filter(|w| w[0].nr == w[1].nr)
        .map(|w| (w[0].name, w[1].name))
        .collect();
    let known: &[(&str, &str)] = if cfg!(target_arch = "arm") {
        &[("arm_sync_file_range", "sync_file_range2")]
    } else {
        &[]
    };
    assert_eq!(aliases, known);
    for s in &all {
        assert!(!s.name.starts_with("__") && !s.name.is_empty(), "{s:?}");
    }
    let names: std::collections::BTreeSet<_> = all.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), all.len(), "a name with two numbers");
    let named = named();
    assert_eq!(named.len(), all.len() - aliases.len());
    assert!(named.iter().all(|s| all.contains(s)));
    for name in ["getppid", "unshare", "clone3", "personality", "socket"] {
        assert!(names.contains(name), "{name}");
    }
    #[cfg(target_arch = "arm")]
    assert!(names.contains("set_tls") && names.contains("cacheflush"));
    #[cfg(target_arch = "x86_64")]
    assert!(names.contains("arch_prctl") && names.contains("iopl"));
}

/// Two rules that give one syscall different unconditional actions must
/// never apply together, for any capability set: their conditions exclude
/// each other (clone3: allowed with CAP_SYS_ADMIN, ENOSYS without).
#[test]
fn no_syscall_gets_two_actions() {
    use crate::seccomp::policy::When;
    let exclusive = |a: When, b: When| matches!((a, b), (When::Cap(x), When::NotCap(y)) | (When::NotCap(x), When::Cap(y)) if x == y);
    let unconditional = |r: &Rule| !matches!(r.action, Action::AllowIf(_));
    for (i, a) in RULES.iter().enumerate().filter(|(_, r)| unconditional(r)) {
        for b in RULES[i + 1..].iter().filter(|r| unconditional(r)) {
            if a.action == b.action || !a.names.nrs.iter().any(|n| b.names.nrs.contains(n)) {
                continue;
            }
            assert!(
                exclusive(a.when, b.when),
                "{:?} and {:?} can both apply to one syscall",
                a.names,
                b.names
            );
        }
    }
}

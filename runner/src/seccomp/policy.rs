//! The rules' vocabulary, and what they decide for one capability set.

use super::{table, RET_ALLOW, RET_EPERM, RET_ERRNO};

/// A syscall: its name, as Docker's profile and the kernel spell it, and its
/// number on the architecture being built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sys {
    pub name: &'static str,
    pub nr: u32,
}

/// The syscalls a rule names: the linux-raw-sys constants' names,
/// space-separated, and their values, in the same order; `syscalls!` in
/// table.rs writes both from the same tokens. One string and one array
/// rather than a pointer per name: in the static runner each pointer in a
/// table is also a relocation to apply at start-up.
#[derive(Clone, Copy, Debug)]
pub struct Syscalls {
    pub constants: &'static str,
    pub nrs: &'static [u32],
}

impl Syscalls {
    pub const NONE: Syscalls = Syscalls {
        constants: "",
        nrs: &[],
    };

    /// Each with its name: `__NR_read` is "read", `__ARM_NR_set_tls`
    /// "set_tls".
    pub fn iter(self) -> impl Iterator<Item = Sys> {
        self.constants
            .split_ascii_whitespace()
            .zip(self.nrs)
            .map(|(c, &nr)| Sys {
                name: c
                    .strip_prefix("__ARM_NR_")
                    .or_else(|| c.strip_prefix("__NR_"))
                    .unwrap_or(c),
                nr,
            })
    }
}

/// When a rule applies: as Docker's `includes`/`excludes` of one
/// capability, which it checks against the container's bounding set (here
/// the same as its permitted and effective sets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only with this capability (its bit number).
    Cap(u32),
    /// Only without it.
    NotCap(u32),
}

impl When {
    pub fn holds(self, caps: u64) -> bool {
        let has = |bit: u32| caps & (1u64 << bit) != 0;
        match self {
            When::Always => true,
            When::Cap(bit) => has(bit),
            When::NotCap(bit) => !has(bit),
        }
    }
}

/// A comparison of the low 32 bits of one argument. Only the low half: the
/// arguments Docker's rules look at are C `int`s (or, for clone, flags the
/// kernel reads with `lower_32_bits`), so the kernel ignores the high half
/// of the register, which the caller controls. Comparing all 64 bits, as
/// libseccomp does, lets `socket((1 << 32) | AF_VSOCK, ...)` through a
/// "not equal to AF_VSOCK" rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq(u32),
    Ne(u32),
    /// `arg & mask == value`.
    MaskedEq {
        mask: u32,
        value: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgTest {
    /// 0 to 5.
    pub arg: u8,
    pub cmp: Cmp,
}

impl ArgTest {
    /// Whether a call with these arguments passes (only the low 32 bits of
    /// the argument count).
    #[cfg(test)]
    pub fn passes(&self, args: &[u64; 6]) -> bool {
        let a = args[self.arg as usize] as u32;
        match self.cmp {
            Cmp::Eq(v) => a == v,
            Cmp::Ne(v) => a != v,
            Cmp::MaskedEq { mask, value } => a & mask == value,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Fail with this errno.
    Errno(u32),
    /// Allow when the arguments pass the test; several such rules for one
    /// syscall allow it when any passes (Docker lists personality's values
    /// as one rule each). A call that passes none gets the default, EPERM.
    AllowIf(ArgTest),
}

/// One entry of Docker's profile.
pub struct Rule {
    pub names: Syscalls,
    pub action: Action,
    pub when: When,
}

/// What the filter does with one syscall number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Return this seccomp action whatever the arguments.
    Ret(u32),
    /// Allow if any test passes, else EPERM.
    Args(Vec<ArgTest>),
    /// An OCI profile's entries for the syscall, in order: the first
    /// whose tests all pass decides; if none does, `otherwise`.
    Entries { entries: Vec<Entry>, otherwise: u32 },
}

/// One entry of an OCI profile with argument conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tests: Vec<Test64>,
    pub ret: u32,
}

/// An OCI (libseccomp) comparison of a whole 64-bit argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test64 {
    pub arg: u8,
    pub op: Op64,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op64 {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `arg & mask == value`.
    MaskedEq(u64),
}

impl Test64 {
    #[cfg(test)]
    pub fn passes(&self, args: &[u64; 6]) -> bool {
        let a = args[self.arg as usize];
        let v = self.value;
        match self.op {
            Op64::Eq => a == v,
            Op64::Ne => a != v,
            Op64::Lt => a < v,
            Op64::Le => a <= v,
            Op64::Gt => a > v,
            Op64::Ge => a >= v,
            Op64::MaskedEq(mask) => a & mask == v,
        }
    }
}

/// Every syscall number a rule that applies to `caps` names, with what
/// those rules decide for it, sorted. An unconditional rule (allow, errno)
/// wins over argument rules, as in libseccomp: with CAP_SYS_ADMIN, `clone`
/// is allowed whatever its flags. (No syscall gets two different
/// unconditional actions under any capability set: a test checks the
/// rules' conditions.) Numbers not listed get the default, EPERM.
pub fn resolve(caps: u64) -> Vec<(u32, Decision)> {
    // Number and rule index in one key: sorted, each number's rules stay
    // in the table's order, and so do its argument tests.
    let mut keys: Vec<u64> = table::RULES
        .iter()
        .enumerate()
        .filter(|(_, r)| r.when.holds(caps))
        .flat_map(|(i, r)| {
            r.names
                .nrs
                .iter()
                .map(move |&nr| u64::from(nr) << 32 | i as u64)
        })
        .collect();
    keys.sort_unstable();
    let mut out: Vec<(u32, Decision)> = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let nr = (keys[i] >> 32) as u32;
        let same = keys[i..].iter().take_while(|k| (*k >> 32) as u32 == nr);
        let (mut ret, mut tests) = (None, Vec::new());
        for key in same.clone() {
            match table::RULES[*key as u32 as usize].action {
                Action::Allow => ret = Some(RET_ALLOW),
                Action::Errno(e) => ret = ret.or(Some(RET_ERRNO | e)),
                Action::AllowIf(t) => tests.push(t),
            }
        }
        i += same.count();
        let decision = match ret {
            Some(ret) => Decision::Ret(ret),
            None if tests.is_empty() => Decision::Ret(RET_EPERM),
            None => Decision::Args(tests),
        };
        out.push((nr, decision));
    }
    out
}

/// The numbers above the highest any rule names, up to
/// where the kernels' tables end: syscalls newer than this profile. They
/// get ENOSYS, as runc answers them, so that a libc falls back to the
/// older call it knows (EPERM would be taken as a refusal, with no
/// fallback).
pub fn newer() -> std::ops::RangeInclusive<u32> {
    let highest = table::RULES
        .iter()
        .flat_map(|r| r.names.nrs.iter().copied())
        .filter(|&nr| nr < NEWEST)
        .max()
        .unwrap_or(0);
    highest + 1..=NEWEST
}

/// Where the tables end for `newer`: above every number a kernel uses
/// today (about 470), below arm's private calls (0xf0000) and x86_64's x32
/// bit (0x40000000).
pub const NEWEST: u32 = 1023;
pub const RET_ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// Every syscall the table names, by number; of two names for one number
/// (arm's sync_file_range2), the first in alphabetical order.
pub fn named() -> Vec<Sys> {
    let mut all: Vec<Sys> = table::RULES.iter().flat_map(|r| r.names.iter()).collect();
    all.sort_unstable_by_key(|s| (s.nr, s.name));
    all.dedup_by_key(|s| s.nr);
    all
}

/// The capabilities the table looks at: only they change the filter.
#[cfg(test)]
pub fn caps_that_matter() -> u64 {
    table::RULES
        .iter()
        .map(|r| match r.when {
            When::Always => 0,
            When::Cap(bit) | When::NotCap(bit) => 1u64 << bit,
        })
        .fold(0, |a, b| a | b)
}

//! The compiler: decisions by syscall number to classic BPF, laid out as a
//! search by number.
//!
//! A linear allow-list of 300 comparisons costs about 110 µs per container
//! start, mostly the kernel running the filter once per syscall number to
//! build its cache of always-allowed calls; each of those runs walks the
//! list. Here the numbers are split into intervals that share one outcome,
//! and a balanced tree of JGE comparisons finds a number's interval in
//! log2(intervals) steps; a leaf returns, or runs one syscall's argument
//! tests.
//!
//! Classic BPF's conditional jumps have 8-bit offsets. A branch that must
//! skip more than 255 instructions goes through a JA (32-bit offset), decided
//! from the exact size of the code it skips: the program is written from its
//! end backwards, so that whatever a jump skips is already there when the
//! jump is written. (It also takes one buffer, and no allocation per node:
//! the runner compiles the filter at every container start.)

use super::policy::{ArgTest, Cmp, Decision, Entry, Op64, Test64};
use super::{AUDIT_ARCH, RET_ALLOW, RET_EPERM, RET_KILL_PROCESS};

/// One `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes, as <linux/filter.h> composes them.
pub const LD_W_ABS: u16 = 0x20;
pub const AND_K: u16 = 0x54;
pub const JA: u16 = 0x05;
pub const JEQ_K: u16 = 0x15;
pub const JGE_K: u16 = 0x35;
pub const JGT_K: u16 = 0x25;
pub const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`: nr, arch, then the low word of each
/// 64-bit argument (little-endian).
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub const fn off_arg_low(i: u8) -> u32 {
    16 + 8 * i as u32
}

/// The kernel refuses longer filters (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;
/// The farthest a conditional jump reaches.
const MAX_SHORT: usize = u8::MAX as usize;

const fn insn(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The whole filter for `decisions` (sorted by number, as
/// `policy::resolve` gives them); numbers not named get `default`.
pub fn compile(decisions: &[(u32, Decision)], default: u32) -> Result<Vec<Insn>, String> {
    let default = Decision::Ret(default);
    let intervals = intervals(decisions, &default)?;
    // Written backwards: the last instruction first.
    let mut rev = Vec::with_capacity(2 * intervals.len() + 16);
    // The last interval runs from past the highest named syscall to
    // u32::MAX with the default (Docker's: EPERM): x86_64's x32 numbers
    // (bit 30 set) are there.
    tree(&intervals, &mut rev)?;
    rev.extend([
        insn(LD_W_ABS, OFF_NR),
        // Another architecture's numbers mean other syscalls: kill, as a
        // filter for this one cannot judge them (on x86_64 this is also
        // what i386's int 0x80 gets).
        insn(RET_K, RET_KILL_PROCESS),
        Insn {
            jt: 1,
            ..insn(JEQ_K, AUDIT_ARCH)
        },
        insn(LD_W_ABS, OFF_ARCH),
    ]);
    if rev.len() > MAX_INSNS {
        return Err(format!(
            "the seccomp filter has {} instructions; the kernel takes at most {MAX_INSNS}",
            rev.len()
        ));
    }
    rev.reverse();
    Ok(rev)
}

/// The instructions as the bytes of a `struct sock_filter` array.
pub fn encode(program: &[Insn]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.extend_from_slice(&[i.jt, i.jf]);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}

/// Numbers from `start` up to the next interval's start share `decision`.
struct Interval<'a> {
    start: u32,
    decision: &'a Decision,
}

/// Every number from 0 up, as intervals of one outcome each: neighbours with
/// equal decisions merge, gaps between named syscalls get the default.
fn intervals<'a>(
    decisions: &'a [(u32, Decision)],
    default: &'a Decision,
) -> Result<Vec<Interval<'a>>, String> {
    fn extend<'a>(out: &mut Vec<Interval<'a>>, start: u32, decision: &'a Decision) {
        if out.last().is_none_or(|l| l.decision != decision) {
            out.push(Interval { start, decision });
        }
    }
    let mut out = Vec::new();
    let mut next = Some(0u32);
    for (nr, decision) in decisions {
        match next {
            Some(n) if *nr >= n => {
                if *nr > n {
                    extend(&mut out, n, default);
                }
            }
            _ => return Err(format!("syscall {nr} is out of order or repeated")),
        }
        extend(&mut out, *nr, decision);
        next = nr.checked_add(1);
    }
    if let Some(n) = next {
        extend(&mut out, n, default);
    }
    Ok(out)
}

/// A balanced binary search over the intervals, appended to `rev` (a
/// program written backwards): at each node, numbers from the start of the
/// right half on go right; one interval is a leaf. Laid out as [JGE]
/// [left] [right].
fn tree(iv: &[Interval<'_>], rev: &mut Vec<Insn>) -> Result<(), String> {
    if let [one] = iv {
        return match one.decision {
            Decision::Ret(action) => {
                rev.push(insn(RET_K, *action));
                Ok(())
            }
            Decision::Args(tests) => arg_tests(tests, rev),
            Decision::Entries { entries, otherwise } => entry_tests(entries, *otherwise, rev),
        };
    }
    let mid = iv.len() / 2;
    tree(&iv[mid..], rev)?;
    let before = rev.len();
    tree(&iv[..mid], rev)?;
    let left = rev.len() - before;
    branch(rev, JGE_K, iv[mid].start, left, 0)
}

/// Allow if any test passes, else EPERM: the tests in order, each jumping to
/// the final RET ALLOW when it passes, falling through when not.
fn arg_tests(tests: &[ArgTest], rev: &mut Vec<Insn>) -> Result<(), String> {
    let start = rev.len();
    rev.extend([insn(RET_K, RET_ALLOW), insn(RET_K, RET_EPERM)]);
    for (i, test) in tests.iter().enumerate().rev() {
        // From after this test's jump to the RET ALLOW at the end.
        let to_allow = rev.len() - start - 1;
        if test.arg > 5 {
            return Err(format!("argument {} of a test: there are 6", test.arg));
        }
        match test.cmp {
            Cmp::Eq(v) => branch(rev, JEQ_K, v, to_allow, 0)?,
            Cmp::Ne(v) => branch(rev, JEQ_K, v, 0, to_allow)?,
            Cmp::MaskedEq { mask, value } => {
                branch(rev, JEQ_K, value, to_allow, 0)?;
                rev.push(insn(AND_K, mask));
            }
        }
        // The accumulator still holds this argument unless the previous
        // test loaded another one, or masked it.
        let load = match i.checked_sub(1).map(|p| tests[p]) {
            Some(prev) => prev.arg != test.arg || matches!(prev.cmp, Cmp::MaskedEq { .. }),
            None => true,
        };
        if load {
            rev.push(insn(LD_W_ABS, off_arg_low(test.arg)));
        }
    }
    Ok(())
}

/// An OCI profile's entries for one syscall, laid out as [entry 1's
/// tests][RET its action][entry 2's tests][RET ...]...[RET otherwise]: a
/// test that fails jumps to the next entry.
fn entry_tests(entries: &[Entry], otherwise: u32, rev: &mut Vec<Insn>) -> Result<(), String> {
    rev.push(insn(RET_K, otherwise));
    let mut next = rev.len() - 1;
    for e in entries.iter().rev() {
        rev.push(insn(RET_K, e.ret));
        for t in e.tests.iter().rev() {
            test64(t, next, rev)?;
        }
        next = rev.len() - 1;
    }
    Ok(())
}

/// Where a jump of a 64-bit comparison goes: on to its next instruction,
/// to what follows the comparison (it holds), or to `fail`.
#[derive(Clone, Copy)]
enum To {
    On,
    Pass,
    Fail,
}

/// One comparison of a whole 64-bit argument, as libseccomp makes it: the
/// high word decides unless equal, then the low word. Falls through when
/// it holds, jumps to rev index `fail` when not.
fn test64(t: &Test64, fail: usize, rev: &mut Vec<Insn>) -> Result<(), String> {
    if t.arg > 5 {
        return Err(format!("argument {}: there are 6", t.arg));
    }
    let (hi, lo) = ((t.value >> 32) as u32, t.value as u32);
    enum Step {
        Load(u32),
        And(u32),
        Jump(u16, u32, To, To),
    }
    use Step::{And, Jump, Load};
    use To::{Fail, On, Pass};
    let (load_hi, load_lo) = (Load(off_arg_low(t.arg) + 4), Load(off_arg_low(t.arg)));
    let steps = match t.op {
        Op64::Eq => vec![
            load_hi,
            Jump(JEQ_K, hi, On, Fail),
            load_lo,
            Jump(JEQ_K, lo, Pass, Fail),
        ],
        Op64::Ne => vec![
            load_hi,
            Jump(JEQ_K, hi, On, Pass),
            load_lo,
            Jump(JEQ_K, lo, Fail, Pass),
        ],
        Op64::MaskedEq(mask) => vec![
            load_hi,
            And((mask >> 32) as u32),
            Jump(JEQ_K, hi, On, Fail),
            load_lo,
            And(mask as u32),
            Jump(JEQ_K, lo, Pass, Fail),
        ],
        Op64::Gt | Op64::Ge => vec![
            load_hi,
            Jump(JGT_K, hi, Pass, On),
            Jump(JEQ_K, hi, On, Fail),
            load_lo,
            match t.op {
                Op64::Gt => Jump(JGT_K, lo, Pass, Fail),
                _ => Jump(JGE_K, lo, Pass, Fail),
            },
        ],
        Op64::Lt | Op64::Le => vec![
            load_hi,
            Jump(JGT_K, hi, Fail, On),
            Jump(JEQ_K, hi, On, Pass),
            load_lo,
            match t.op {
                Op64::Lt => Jump(JGE_K, lo, Fail, Pass),
                _ => Jump(JGT_K, lo, Fail, Pass),
            },
        ],
    };
    // What follows the comparison, as a rev index.
    let after = rev.len() - 1;
    for step in steps.iter().rev() {
        match *step {
            Load(off) => rev.push(insn(LD_W_ABS, off)),
            And(mask) => rev.push(insn(AND_K, mask)),
            Jump(code, k, t, f) => {
                let skip = |to: To| match to {
                    To::On => 0,
                    To::Pass => rev.len() - after - 1,
                    To::Fail => rev.len() - fail - 1,
                };
                let (t, f) = (skip(t), skip(f));
                branch(rev, code, k, t, f)?;
            }
        }
    }
    Ok(())
}

/// A conditional jump that skips `t` instructions after it when the
/// comparison holds and `f` when it does not, appended to `rev` (backwards).
/// An 8-bit offset reaches 255: a farther branch jumps to a JA right after
/// it, which reaches anywhere.
pub(super) fn branch(
    rev: &mut Vec<Insn>,
    code: u16,
    k: u32,
    t: usize,
    f: usize,
) -> Result<(), String> {
    let short = |n: usize| n <= MAX_SHORT;
    let jump = |jt: usize, jf: usize| -> Result<Insn, String> {
        Ok(Insn {
            code,
            jt: offset(jt)?,
            jf: offset(jf)?,
            k,
        })
    };
    let ja = |n: usize| -> Result<Insn, String> {
        u32::try_from(n)
            .map(|k| insn(JA, k))
            .map_err(|_| format!("a jump of {n} instructions"))
    };
    // Each form as it will read, last instruction first.
    if short(t) && short(f) {
        rev.push(jump(t, f)?);
    } else if short(f + 1) {
        // [J 0 f+1] [JA t]: true lands on the JA, false skips it.
        rev.extend([ja(t)?, jump(0, f + 1)?]);
    } else if short(t + 1) {
        // [J t+1 0] [JA f]
        rev.extend([ja(f)?, jump(t + 1, 0)?]);
    } else {
        // [J 0 1] [JA t+1] [JA f]
        rev.extend([ja(f)?, ja(t + 1)?, jump(0, 1)?]);
    }
    Ok(())
}

/// A conditional jump's offset, refused rather than wrapped.
fn offset(n: usize) -> Result<u8, String> {
    u8::try_from(n).map_err(|_| {
        format!("a conditional jump over {n} instructions does not fit classic BPF's 8-bit offset")
    })
}

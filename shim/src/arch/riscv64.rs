use core::arch::{asm, global_asm};

global_asm!(
    ".globl _start",
    "_start:",
    "mv fp, zero",
    "mv ra, zero",
    "andi sp, sp, -16",
    "call {entry}",
    "unimp",
    entry = sym crate::entry,
);

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall3(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!(
        "ecall",
        in("a7") nr,
        inlateout("a0") a0 as isize => ret,
        in("a1") a1, in("a2") a2,
        options(nostack),
    );
    ret
}

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!(
        "ecall",
        in("a7") nr,
        inlateout("a0") a0 as isize => ret,
        in("a1") a1, in("a2") a2, in("a3") a3,
        options(nostack),
    );
    ret
}

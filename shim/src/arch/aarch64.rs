use core::arch::{asm, global_asm};

// sp is 16-byte aligned at entry; clear the frame pointer and link register
// so backtraces end here.
global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, xzr",
    "mov x30, xzr",
    "bl {entry}",
    "brk #0",
    entry = sym crate::entry,
);

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall3(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!(
        "svc 0",
        in("x8") nr,
        inlateout("x0") a0 as isize => ret,
        in("x1") a1, in("x2") a2,
        options(nostack),
    );
    ret
}

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!(
        "svc 0",
        in("x8") nr,
        inlateout("x0") a0 as isize => ret,
        in("x1") a1, in("x2") a2, in("x3") a3,
        options(nostack),
    );
    ret
}

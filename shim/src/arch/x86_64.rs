use core::arch::{asm, global_asm};

// The kernel starts us with rsp pointing at argc, 16-byte aligned; `call`
// pushes the return address as the ABI expects.
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym crate::entry,
);

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall3(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    let ret;
    asm!(
        "syscall",
        inlateout("rax") nr as isize => ret,
        in("rdi") a0, in("rsi") a1, in("rdx") a2,
        lateout("rcx") _, lateout("r11") _,
        options(nostack),
    );
    ret
}

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    asm!(
        "syscall",
        inlateout("rax") nr as isize => ret,
        in("rdi") a0, in("rsi") a1, in("rdx") a2, in("r10") a3,
        lateout("rcx") _, lateout("r11") _,
        options(nostack),
    );
    ret
}

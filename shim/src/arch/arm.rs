use core::arch::{asm, global_asm};

// The EABI wants an 8-byte aligned stack at calls (and Thumb cannot
// `bic` sp itself). A Thumb build marks `_start` a Thumb function: the
// entry address then gets its low bit, and the kernel starts it in Thumb
// state.
macro_rules! start {
    ($($thumb:literal)?) => {
        global_asm!(
            ".globl _start",
            $($thumb,)?
            "_start:",
            "mov fp, #0",
            "mov lr, #0",
            "mov r0, sp",
            "bic r0, r0, #7",
            "mov sp, r0",
            "bl {entry}",
            "udf #0",
            entry = sym crate::entry,
        );
    };
}
#[cfg(target_feature = "thumb-mode")]
start!(".thumb_func");
#[cfg(not(target_feature = "thumb-mode"))]
start!();

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall3(nr: usize, a0: usize, a1: usize, a2: usize) -> isize {
    let ret;
    // r7 carries the syscall number, but LLVM may reserve it as the frame
    // pointer, so it cannot be an operand: swap it in and out by hand.
    asm!(
        "mov {tmp}, r7",
        "mov r7, {nr}",
        "svc 0",
        "mov r7, {tmp}",
        nr = in(reg) nr,
        tmp = out(reg) _,
        inlateout("r0") a0 as isize => ret,
        in("r1") a1, in("r2") a2,
        options(nostack),
    );
    ret
}

/// # Safety
/// The caller upholds the syscall's own contract.
pub unsafe fn syscall4(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret;
    // r7 as in `syscall3`.
    asm!(
        "mov {tmp}, r7",
        "mov r7, {nr}",
        "svc 0",
        "mov r7, {tmp}",
        nr = in(reg) nr,
        tmp = out(reg) _,
        inlateout("r0") a0 as isize => ret,
        in("r1") a1, in("r2") a2, in("r3") a3,
        options(nostack),
    );
    ret
}

/// The ARM EHABI unwind tables that LLVM emits even with panic=abort name
/// these personality routines. The shim never unwinds, so they are never
/// called.
#[no_mangle]
extern "C" fn __aeabi_unwind_cpp_pr0() -> ! {
    super::exit_group(125)
}

#[no_mangle]
extern "C" fn __aeabi_unwind_cpp_pr1() -> ! {
    super::exit_group(125)
}

#[no_mangle]
extern "C" fn __aeabi_unwind_cpp_pr2() -> ! {
    super::exit_group(125)
}

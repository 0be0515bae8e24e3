//! Docker's default seccomp profile (moby, profiles/seccomp/default.json)
//! as data, with each syscall's number on the architecture being built for.
//! Its names that none of husk's four architectures has are left out:
//! fadvise64_64, ipc, socketcall, waitpid (i386 and others), stime, umount.
//!
//! Deliberate differences from Docker:
//! - `io_uring_setup`, `io_uring_enter`, `io_uring_register` are refused, as
//!   husk always did and as containerd and newer Docker do: io_uring has been
//!   a steady source of kernel bugs, and its operations bypass seccomp.
//! - `process_vm_readv`/`process_vm_writev` need CAP_SYS_PTRACE. Docker
//!   also allows them to everyone on kernels from 4.8 (`minKernel`); reading
//!   and writing another process's memory is what that capability is about.
//!   `ptrace` stays allowed, as Docker does from 4.8, the kernel from which
//!   seccomp runs again after a tracer changes a syscall (husk's
//!   SECCOMP_RET_KILL_PROCESS needs 4.14 anyway).
//! - `move_pages` and `migrate_pages` join the CAP_SYS_NICE group with
//!   `mbind` and `set_mempolicy`: Docker allows neither, and they move
//!   memory between NUMA nodes just as those do.

use linux_raw_sys::general as nr;
use linux_raw_sys::general::{
    CAP_BPF, CAP_DAC_READ_SEARCH, CAP_PERFMON, CAP_SYSLOG, CAP_SYS_ADMIN, CAP_SYS_BOOT,
    CAP_SYS_CHROOT, CAP_SYS_MODULE, CAP_SYS_NICE, CAP_SYS_PACCT, CAP_SYS_PTRACE, CAP_SYS_RAWIO,
    CAP_SYS_TIME, CAP_SYS_TTY_CONFIG,
};

use super::policy::{Action, ArgTest, Cmp, Rule, Syscalls, When};

/// `syscalls![__NR_read __NR_write]`: the constants' names and values.
macro_rules! syscalls {
    ($($c:ident)*) => {
        Syscalls {
            constants: concat!($(stringify!($c), " "),*),
            nrs: &[$(nr::$c),*],
        }
    };
}

/// A group of syscalls only some architectures have: empty on the others.
macro_rules! only_on {
    ($group:ident, [$($arch:literal),+], $($c:ident)*) => {
        #[cfg(any($(target_arch = $arch),+))]
        const $group: Syscalls = syscalls![$($c)*];
        #[cfg(not(any($(target_arch = $arch),+)))]
        const $group: Syscalls = Syscalls::NONE;
    };
}

/// Docker's big allow list, less io_uring_* and process_vm_{readv,writev}
/// (see above): the names all four architectures have.
const ALLOW: Syscalls = syscalls![
    __NR_accept __NR_accept4 __NR_adjtimex __NR_bind __NR_brk __NR_capget __NR_capset
    __NR_chdir __NR_clock_adjtime __NR_clock_getres __NR_clock_gettime __NR_clock_nanosleep
    __NR_close __NR_close_range __NR_connect __NR_copy_file_range __NR_dup __NR_dup3
    __NR_epoll_create1 __NR_epoll_ctl __NR_epoll_pwait __NR_epoll_pwait2 __NR_eventfd2
    __NR_execve __NR_execveat __NR_exit __NR_exit_group __NR_faccessat __NR_faccessat2
    __NR_fallocate __NR_fanotify_mark __NR_fchdir __NR_fchmod __NR_fchmodat __NR_fchown
    __NR_fchownat __NR_fcntl __NR_fdatasync __NR_fgetxattr __NR_flistxattr __NR_flock
    __NR_fremovexattr __NR_fsetxattr __NR_fstat __NR_fstatfs __NR_fsync __NR_ftruncate
    __NR_futex __NR_futex_waitv __NR_futex_wake __NR_futex_wait __NR_futex_requeue
    __NR_cachestat __NR_fchmodat2 __NR_map_shadow_stack __NR_mseal __NR_getcpu __NR_getcwd __NR_getdents64 __NR_getegid
    __NR_geteuid __NR_getgid __NR_getgroups __NR_getitimer __NR_getpeername __NR_getpgid
    __NR_getpid __NR_getppid __NR_getpriority __NR_getrandom __NR_getresgid __NR_getresuid
    __NR_get_robust_list __NR_getrusage __NR_getsid __NR_getsockname __NR_getsockopt
    __NR_gettid __NR_gettimeofday __NR_getuid __NR_getxattr __NR_inotify_add_watch
    __NR_inotify_init1 __NR_inotify_rm_watch __NR_io_cancel __NR_ioctl __NR_io_destroy
    __NR_io_getevents __NR_io_pgetevents __NR_ioprio_get __NR_ioprio_set __NR_io_setup
    __NR_io_submit __NR_kill __NR_landlock_add_rule __NR_landlock_create_ruleset
    __NR_landlock_restrict_self __NR_lgetxattr __NR_linkat __NR_listen __NR_listxattr
    __NR_llistxattr __NR_lremovexattr __NR_lseek __NR_lsetxattr __NR_madvise __NR_membarrier
    __NR_memfd_create __NR_mincore __NR_mkdirat __NR_mknodat __NR_mlock __NR_mlock2
    __NR_mlockall __NR_mprotect __NR_mq_getsetattr __NR_mq_notify __NR_mq_open
    __NR_mq_timedreceive __NR_mq_timedsend __NR_mq_unlink __NR_mremap __NR_msgctl
    __NR_msgget __NR_msgrcv __NR_msgsnd __NR_msync __NR_munlock __NR_munlockall __NR_munmap
    __NR_name_to_handle_at __NR_nanosleep __NR_openat __NR_openat2 __NR_pidfd_open
    __NR_pidfd_send_signal __NR_pipe2 __NR_pkey_alloc __NR_pkey_free __NR_pkey_mprotect
    __NR_ppoll __NR_prctl __NR_pread64 __NR_preadv __NR_preadv2 __NR_prlimit64
    __NR_process_mrelease __NR_pselect6 __NR_pwrite64 __NR_pwritev __NR_pwritev2 __NR_read
    __NR_readahead __NR_readlinkat __NR_readv __NR_recvfrom __NR_recvmmsg __NR_recvmsg
    __NR_remap_file_pages __NR_removexattr __NR_renameat2 __NR_restart_syscall __NR_rseq
    __NR_rt_sigaction __NR_rt_sigpending __NR_rt_sigprocmask __NR_rt_sigqueueinfo
    __NR_rt_sigreturn __NR_rt_sigsuspend __NR_rt_sigtimedwait __NR_rt_tgsigqueueinfo
    __NR_sched_getaffinity __NR_sched_getattr __NR_sched_getparam __NR_sched_get_priority_max
    __NR_sched_get_priority_min __NR_sched_getscheduler __NR_sched_rr_get_interval
    __NR_sched_setaffinity __NR_sched_setattr __NR_sched_setparam __NR_sched_setscheduler
    __NR_sched_yield __NR_seccomp __NR_semctl __NR_semget __NR_semop __NR_semtimedop
    __NR_sendfile __NR_sendmmsg __NR_sendmsg __NR_sendto __NR_setfsgid __NR_setfsuid
    __NR_setgid __NR_setgroups __NR_setitimer __NR_setpgid __NR_setpriority __NR_setregid
    __NR_setresgid __NR_setresuid __NR_setreuid __NR_setrlimit __NR_set_robust_list
    __NR_setsid __NR_setsockopt __NR_set_tid_address __NR_setuid __NR_setxattr __NR_shmat
    __NR_shmctl __NR_shmdt __NR_shmget __NR_shutdown __NR_sigaltstack __NR_signalfd4
    __NR_socketpair __NR_splice __NR_statfs __NR_statx __NR_symlinkat __NR_sync __NR_syncfs
    __NR_sysinfo __NR_tee __NR_tgkill __NR_timer_create __NR_timer_delete
    __NR_timer_getoverrun __NR_timer_gettime __NR_timer_settime __NR_timerfd_create
    __NR_timerfd_gettime __NR_timerfd_settime __NR_times __NR_tkill __NR_truncate __NR_umask
    __NR_uname __NR_unlinkat __NR_utimensat __NR_vmsplice __NR_wait4 __NR_waitid __NR_write
    __NR_writev
];

// The rest of the big list, by the architectures that have each name.
// The old path-based calls that the generic syscall table (aarch64,
// riscv64) left out:
only_on!(ALLOW_LEGACY, ["x86_64", "arm"],
    __NR_access __NR_chmod __NR_chown __NR_creat __NR_dup2 __NR_epoll_create __NR_epoll_wait
    __NR_eventfd __NR_fork __NR_futimesat __NR_getdents __NR_getpgrp __NR_inotify_init
    __NR_lchown __NR_link __NR_lstat __NR_mkdir __NR_mknod __NR_open __NR_pause __NR_pipe
    __NR_poll __NR_readlink __NR_rename __NR_rmdir __NR_signalfd __NR_stat __NR_symlink
    __NR_unlink __NR_utimes __NR_vfork);
only_on!(ALLOW_64BIT, ["x86_64", "aarch64", "riscv64"],
    __NR_fadvise64 __NR_getrlimit __NR_memfd_secret __NR_mmap __NR_newfstatat
    __NR_sync_file_range);
only_on!(ALLOW_RENAMEAT, ["x86_64", "aarch64", "arm"], __NR_renameat);
only_on!(ALLOW_X86_64, ["x86_64"],
    __NR_alarm __NR_epoll_ctl_old __NR_epoll_wait_old __NR_get_thread_area __NR_select
    __NR_set_thread_area __NR_time __NR_utime
    // Docker's per-architecture entries for amd64.
    __NR_arch_prctl __NR_modify_ldt);
// 32-bit arm: the 16-bit-uid era's *32 calls, the 64-bit-file and time64
// variants, and Docker's entry for arm's own calls.
only_on!(ALLOW_ARM, ["arm"],
    __NR__llseek __NR__newselect __NR_chown32 __NR_clock_adjtime64 __NR_clock_getres_time64
    __NR_clock_gettime64 __NR_clock_nanosleep_time64 __NR_fchown32 __NR_fcntl64 __NR_fstat64
    __NR_fstatat64 __NR_fstatfs64 __NR_ftruncate64 __NR_futex_time64 __NR_getegid32
    __NR_geteuid32 __NR_getgid32 __NR_getgroups32 __NR_getresgid32 __NR_getresuid32
    __NR_getuid32 __NR_io_pgetevents_time64 __NR_lchown32 __NR_lstat64 __NR_mmap2
    __NR_mq_timedreceive_time64 __NR_mq_timedsend_time64 __NR_ppoll_time64
    __NR_pselect6_time64 __NR_recv __NR_recvmmsg_time64 __NR_rt_sigtimedwait_time64
    __NR_sched_rr_get_interval_time64 __NR_semtimedop_time64 __NR_send __NR_sendfile64
    __NR_setfsgid32 __NR_setfsuid32 __NR_setgid32 __NR_setgroups32 __NR_setregid32
    __NR_setresgid32 __NR_setresuid32 __NR_setreuid32 __NR_setuid32 __NR_sigprocmask
    __NR_sigreturn __NR_stat64 __NR_statfs64 __NR_timer_gettime64 __NR_timer_settime64
    __NR_timerfd_gettime64 __NR_timerfd_settime64 __NR_truncate64 __NR_ugetrlimit
    __NR_utimensat_time64
    __NR_arm_fadvise64_64 __NR_arm_sync_file_range __NR_sync_file_range2
    __ARM_NR_breakpoint __ARM_NR_cacheflush __ARM_NR_set_tls);
only_on!(ALLOW_RISCV64, ["riscv64"], __NR_riscv_flush_icache);

// Capability groups: names only some architectures have.
only_on!(RAWIO, ["x86_64"], __NR_iopl __NR_ioperm);
only_on!(TIME64, ["arm"], __NR_clock_settime64);

/// The namespace flags of clone: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET. Docker's 2114060288.
pub const CLONE_NAMESPACES: u32 = nr::CLONE_NEWNS
    | nr::CLONE_NEWCGROUP
    | nr::CLONE_NEWUTS
    | nr::CLONE_NEWIPC
    | nr::CLONE_NEWUSER
    | nr::CLONE_NEWPID
    | nr::CLONE_NEWNET;
const _: () = assert!(CLONE_NAMESPACES == 0x7E02_0000);

/// The personalities a container may set: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and 0xffffffff, which only asks for the current
/// one. Not READ_IMPLIES_EXEC (every mapping executable), not
/// ADDR_NO_RANDOMIZE (no ASLR for the process and what it execs).
pub const PERSONALITIES: [u32; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

const fn allow_if(arg: u8, cmp: Cmp) -> Action {
    Action::AllowIf(ArgTest { arg, cmp })
}

const fn rule(names: Syscalls, action: Action, when: When) -> Rule {
    Rule {
        names,
        action,
        when,
    }
}

const fn allow(names: Syscalls) -> Rule {
    rule(names, Action::Allow, When::Always)
}

const fn allow_with(cap: u32, names: Syscalls) -> Rule {
    rule(names, Action::Allow, When::Cap(cap))
}

/// Docker's entries in its order.
pub const RULES: &[Rule] = &[
    allow(ALLOW),
    allow(ALLOW_LEGACY),
    allow(ALLOW_64BIT),
    allow(ALLOW_RENAMEAT),
    allow(ALLOW_X86_64),
    allow(ALLOW_ARM),
    allow(ALLOW_RISCV64),
    allow(syscalls![__NR_ptrace]),
    // AF_VSOCK reaches the hypervisor's host side, outside any network
    // namespace.
    rule(
        syscalls![__NR_socket],
        allow_if(0, Cmp::Ne(libc::AF_VSOCK as u32)),
        When::Always,
    ),
    rule(
        syscalls![__NR_personality],
        allow_if(0, Cmp::Eq(PERSONALITIES[0])),
        When::Always,
    ),
    rule(
        syscalls![__NR_personality],
        allow_if(0, Cmp::Eq(PERSONALITIES[1])),
        When::Always,
    ),
    rule(
        syscalls![__NR_personality],
        allow_if(0, Cmp::Eq(PERSONALITIES[2])),
        When::Always,
    ),
    rule(
        syscalls![__NR_personality],
        allow_if(0, Cmp::Eq(PERSONALITIES[3])),
        When::Always,
    ),
    rule(
        syscalls![__NR_personality],
        allow_if(0, Cmp::Eq(PERSONALITIES[4])),
        When::Always,
    ),
    allow_with(CAP_DAC_READ_SEARCH, syscalls![__NR_open_by_handle_at]),
    allow_with(
        CAP_SYS_ADMIN,
        syscalls![
            __NR_bpf __NR_clone __NR_clone3 __NR_fanotify_init __NR_fsconfig __NR_fsmount
            __NR_fsopen __NR_fspick __NR_lookup_dcookie __NR_mount __NR_mount_setattr
            __NR_move_mount __NR_open_tree __NR_perf_event_open __NR_quotactl __NR_quotactl_fd
            __NR_setdomainname __NR_sethostname __NR_setns __NR_syslog __NR_umount2
            __NR_unshare
        ],
    ),
    // Without CAP_SYS_ADMIN, clone without namespace flags: fork, threads,
    // vfork-likes. Its first argument is the flags on all four
    // architectures (s390 is the odd one out).
    rule(
        syscalls![__NR_clone],
        allow_if(
            0,
            Cmp::MaskedEq {
                mask: CLONE_NAMESPACES,
                value: 0,
            },
        ),
        When::NotCap(CAP_SYS_ADMIN),
    ),
    // clone3 passes its flags in memory, which a filter cannot read: ENOSYS
    // makes glibc and musl fall back to clone, whose flags it can.
    rule(
        syscalls![__NR_clone3],
        Action::Errno(libc::ENOSYS as u32),
        When::NotCap(CAP_SYS_ADMIN),
    ),
    allow_with(CAP_SYS_BOOT, syscalls![__NR_reboot]),
    allow_with(CAP_SYS_CHROOT, syscalls![__NR_chroot]),
    allow_with(
        CAP_SYS_MODULE,
        syscalls![__NR_delete_module __NR_init_module __NR_finit_module],
    ),
    allow_with(CAP_SYS_PACCT, syscalls![__NR_acct]),
    allow_with(
        CAP_SYS_PTRACE,
        syscalls![
            __NR_kcmp __NR_pidfd_getfd __NR_process_madvise __NR_process_vm_readv
            __NR_process_vm_writev __NR_ptrace
        ],
    ),
    allow_with(CAP_SYS_RAWIO, RAWIO),
    allow_with(
        CAP_SYS_TIME,
        syscalls![__NR_settimeofday __NR_clock_settime],
    ),
    allow_with(CAP_SYS_TIME, TIME64),
    allow_with(CAP_SYS_TTY_CONFIG, syscalls![__NR_vhangup]),
    allow_with(
        CAP_SYS_NICE,
        syscalls![
            __NR_get_mempolicy __NR_mbind __NR_set_mempolicy __NR_set_mempolicy_home_node
            __NR_move_pages __NR_migrate_pages
        ],
    ),
    allow_with(CAP_SYSLOG, syscalls![__NR_syslog]),
    allow_with(CAP_BPF, syscalls![__NR_bpf]),
    allow_with(CAP_PERFMON, syscalls![__NR_perf_event_open]),
];

//! What the issue was about, spelled out call by call rather than read
//! from the table.

use linux_raw_sys::general as nr;

use super::{Bpf, SYS_ADMIN, SYS_NICE, SYS_PTRACE};
use crate::caps;
use crate::seccomp::table::{CLONE_NAMESPACES, PERSONALITIES};
use crate::seccomp::{filter, RET_ALLOW, RET_EPERM, RET_ERRNO};

const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

/// Each call at the boundaries of its rule, with Docker's default
/// capabilities and with CAP_SYS_ADMIN added; what SYS_PTRACE and SYS_NICE
/// open.
#[test]
fn dockers_rules_hold_at_their_boundaries() {
    let default = Bpf::new(&filter(caps::DEFAULT).unwrap());
    let admin = Bpf::new(&filter(caps::DEFAULT | SYS_ADMIN).unwrap());
    let a = |x: u64| [x, 0, 0, 0, 0, 0];
    let (unix, vsock) = (libc::AF_UNIX as u64, libc::AF_VSOCK as u64);
    let sigchld = libc::SIGCHLD as u64;
    let newuser = nr::CLONE_NEWUSER as u64;
    let cases: &[(&str, u32, [u64; 6], u32, u32)] = &[
        // name, nr, args, default caps, with SYS_ADMIN
        ("fork", nr::__NR_clone, a(sigchld), RET_ALLOW, RET_ALLOW),
        ("thread", nr::__NR_clone, a(0x3d0f00), RET_ALLOW, RET_ALLOW),
        (
            "clone high",
            nr::__NR_clone,
            a(0xffff_ffff << 32 | sigchld),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "clone NEWUSER",
            nr::__NR_clone,
            a(newuser | sigchld),
            RET_EPERM,
            RET_ALLOW,
        ),
        (
            "clone NEWNS",
            nr::__NR_clone,
            a(nr::CLONE_NEWNS as u64),
            RET_EPERM,
            RET_ALLOW,
        ),
        (
            "clone NEWUSER high",
            nr::__NR_clone,
            a(1 << 32 | newuser),
            RET_EPERM,
            RET_ALLOW,
        ),
        ("clone3", nr::__NR_clone3, a(0), ENOSYS, RET_ALLOW),
        (
            "unshare",
            nr::__NR_unshare,
            a(newuser),
            RET_EPERM,
            RET_ALLOW,
        ),
        ("setns", nr::__NR_setns, a(0), RET_EPERM, RET_ALLOW),
        ("mount", nr::__NR_mount, a(0), RET_EPERM, RET_ALLOW),
        ("umount2", nr::__NR_umount2, a(0), RET_EPERM, RET_ALLOW),
        ("fsopen", nr::__NR_fsopen, a(0), RET_EPERM, RET_ALLOW),
        (
            "personality query",
            nr::__NR_personality,
            a(0xffff_ffff),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "personality LINUX32",
            nr::__NR_personality,
            a(8),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "personality high",
            nr::__NR_personality,
            a(7 << 32 | 8),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "READ_IMPLIES_EXEC",
            nr::__NR_personality,
            a(0x40_0000),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "ADDR_NO_RANDOMIZE",
            nr::__NR_personality,
            a(0x4_0000),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "personality 9",
            nr::__NR_personality,
            a(9),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "socket unix",
            nr::__NR_socket,
            a(unix),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "socket vsock",
            nr::__NR_socket,
            a(vsock),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "socket vsock high",
            nr::__NR_socket,
            a(1 << 32 | vsock),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "socket unix high",
            nr::__NR_socket,
            a(vsock << 32 | unix),
            RET_ALLOW,
            RET_ALLOW,
        ),
        (
            "io_uring_setup",
            nr::__NR_io_uring_setup,
            a(0),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "process_vm_readv",
            nr::__NR_process_vm_readv,
            a(0),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "move_pages",
            nr::__NR_move_pages,
            a(0),
            RET_EPERM,
            RET_EPERM,
        ),
        (
            "migrate_pages",
            nr::__NR_migrate_pages,
            a(0),
            RET_EPERM,
            RET_EPERM,
        ),
        ("mbind", nr::__NR_mbind, a(0), RET_EPERM, RET_EPERM),
        ("ptrace", nr::__NR_ptrace, a(0), RET_ALLOW, RET_ALLOW),
        ("getppid", nr::__NR_getppid, a(0), RET_ALLOW, RET_ALLOW),
    ];
    for (what, nr, args, want_default, want_admin) in cases {
        assert_eq!(
            default.verdict(*nr, args),
            *want_default,
            "{what}, default caps"
        );
        assert_eq!(admin.verdict(*nr, args), *want_admin, "{what}, +SYS_ADMIN");
    }
    for (cap, nrs) in [
        (
            SYS_PTRACE,
            &[nr::__NR_process_vm_readv, nr::__NR_process_vm_writev][..],
        ),
        (
            SYS_NICE,
            &[
                nr::__NR_mbind,
                nr::__NR_set_mempolicy,
                nr::__NR_move_pages,
                nr::__NR_migrate_pages,
            ],
        ),
    ] {
        let f = Bpf::new(&filter(caps::DEFAULT | cap).unwrap());
        for nr in nrs {
            assert_eq!(
                f.verdict(*nr, &[0; 6]),
                RET_ALLOW,
                "syscall {nr} with cap {cap:#x}"
            );
        }
    }
    assert_eq!(CLONE_NAMESPACES, 2_114_060_288);
    assert_eq!(PERSONALITIES, [0, 8, 131_072, 131_080, 4_294_967_295]);
}

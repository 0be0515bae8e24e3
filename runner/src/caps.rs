//! Capability names and the default set.

use crate::error::{Error, Result};

/// By number: CAP_CHOWN is 0, ... CAP_CHECKPOINT_RESTORE is 40.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default set: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
/// NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
/// SYS_CHROOT, KILL, AUDIT_WRITE.
pub const DEFAULT: u64 = 0xa804_25fb;

pub const SYS_ADMIN: u64 = 1 << 21;
const SYS_CHROOT: u64 = 1 << 18;

/// "SYS_ADMIN" or "cap_sys_admin" as a mask; None for "ALL".
pub fn parse(flag: &str, name: &str) -> Result<Option<u64>> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(None);
    }
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| Some(1 << i))
        .ok_or_else(|| {
            Error::new(format!(
                "{flag} {name}: not a capability (e.g. NET_ADMIN, CAP_SYS_PTRACE, ALL)"
            ))
        })
}

/// "CAP_SYS_ADMIN" for bit 21.
pub fn name(bit: u32) -> String {
    match NAMES.get(bit as usize) {
        Some(n) => format!("CAP_{n}"),
        None => format!("capability {bit}"),
    }
}

/// The set before the flags where pivot_root works, Docker's default; where
/// the rootfs is entered by chroot instead, less SYS_CHROOT: the host's
/// tree then stays below the container's root, and chroot(2) is how a
/// process gets out of one (`--cap-add SYS_CHROOT` allows it again,
/// knowingly).
pub fn default_set(pivot_works: bool) -> u64 {
    if pivot_works {
        DEFAULT
    } else {
        DEFAULT & !SYS_CHROOT
    }
}

/// The capabilities this runner can give a container: those the kernel
/// knows, and of those, the ones in the runner's own bounding set (a
/// process cannot hand on what it does not have).
#[derive(Debug, Clone, Copy)]
pub struct Available {
    pub known: u64,
    pub held: u64,
}

impl Available {
    pub fn read() -> Available {
        let (mut known, mut held) = (0, 0);
        for cap in 0..64 {
            // SAFETY: PR_CAPBSET_READ takes a plain integer; EINVAL past
            // the last capability this kernel knows.
            match unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong) } {
                r if r < 0 => break,
                r => {
                    known |= 1 << cap;
                    if r == 1 {
                        held |= 1 << cap;
                    }
                }
            }
        }
        Available { known, held }
    }
}

/// The set a container keeps: `base` (everything available when
/// `base_all`, as --privileged), plus --cap-add, minus --cap-drop. ALL
/// means every capability available; a capability named (in the base or
/// an --cap-add) that cannot be granted is an error naming it, never a
/// quiet narrowing of the set.
pub fn resolve(
    base_all: bool,
    base: u64,
    add: &[String],
    drop: &[String],
    avail: Available,
) -> Result<u64> {
    let mut all = base_all;
    let mut named = if base_all { 0 } else { base };
    for a in add {
        match parse("--cap-add", a)? {
            Some(bit) => named |= bit,
            None => all = true,
        }
    }
    let mut dropped = 0;
    for d in drop {
        dropped |= parse("--cap-drop", d)?.unwrap_or(u64::MAX);
    }
    let named = named & !dropped;
    if let Some(bit) = first_bit(named & !avail.known) {
        return Err(Error::new(format!(
            "{}: this kernel does not know it, so a container cannot have it",
            name(bit)
        )));
    }
    if let Some(bit) = first_bit(named & !avail.held) {
        return Err(Error::new(format!(
            "{}: the runner itself does not have it (its bounding set), so it cannot give it \
             to a container",
            name(bit)
        )));
    }
    let every = if all { avail.held & avail.known } else { 0 };
    Ok((every | named) & !dropped)
}

fn first_bit(set: u64) -> Option<u32> {
    (set != 0).then(|| set.trailing_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_41: Available = Available {
        known: (1 << 41) - 1,
        held: (1 << 41) - 1,
    };

    #[test]
    fn the_default_is_dockers() {
        let names = [
            "CHOWN",
            "DAC_OVERRIDE",
            "FSETID",
            "FOWNER",
            "MKNOD",
            "NET_RAW",
            "SETGID",
            "SETUID",
            "SETFCAP",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "SYS_CHROOT",
            "KILL",
            "AUDIT_WRITE",
        ];
        let mask = names
            .iter()
            .fold(0, |m, n| m | parse("x", n).unwrap().unwrap());
        assert_eq!(mask, DEFAULT);
        assert_eq!(parse("x", "cap_sys_admin").unwrap(), Some(SYS_ADMIN));
        assert_eq!(name(21), "CAP_SYS_ADMIN");
    }

    #[test]
    fn add_and_drop() {
        let r = |all, base, add: &[&str], drop: &[&str], avail| {
            let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            resolve(all, base, &s(add), &s(drop), avail)
        };
        let k = r(false, DEFAULT, &["cap_sys_admin"], &["NET_RAW"], ALL_41).unwrap();
        assert_eq!(k, (DEFAULT | SYS_ADMIN) & !(1 << 13));
        assert_eq!(r(false, DEFAULT, &[], &["ALL"], ALL_41).unwrap(), 0);
        assert_eq!(r(true, 0, &[], &[], ALL_41).unwrap(), ALL_41.held);
        // Entered by chroot: no SYS_CHROOT unless asked for.
        let chrooted = default_set(false);
        assert_eq!(chrooted, DEFAULT & !SYS_CHROOT);
        assert_eq!(
            r(false, chrooted, &["SYS_CHROOT"], &[], ALL_41).unwrap(),
            DEFAULT
        );
        assert!(r(false, DEFAULT, &["SYS_WIZARD"], &[], ALL_41)
            .unwrap_err()
            .message
            .contains("--cap-add SYS_WIZARD"));
    }

    #[test]
    fn what_cannot_be_granted_is_named_not_dropped() {
        // A runner without SYS_RESOURCE (24), on a kernel that stops at 40.
        let avail = Available {
            known: (1 << 41) - 1,
            held: ((1 << 41) - 1) & !(1 << 24),
        };
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let e = resolve(false, DEFAULT, &s(&["SYS_RESOURCE"]), &[], avail).unwrap_err();
        assert!(
            e.message.starts_with("CAP_SYS_RESOURCE: the runner itself"),
            "{e}"
        );
        // ALL and --privileged mean all the runner has.
        assert_eq!(resolve(true, 0, &[], &[], avail).unwrap(), avail.held);
        assert_eq!(
            resolve(false, DEFAULT, &s(&["ALL"]), &[], avail).unwrap(),
            avail.held
        );
        // A capability newer than the kernel.
        let old = Available {
            known: (1 << 38) - 1,
            held: (1 << 38) - 1,
        };
        let e = resolve(false, DEFAULT, &s(&["BPF"]), &[], old).unwrap_err();
        assert!(
            e.message.contains("CAP_BPF: this kernel does not know it"),
            "{e}"
        );
        // Dropped again, it is not asked for.
        assert!(resolve(false, DEFAULT, &s(&["BPF"]), &s(&["BPF"]), old).is_ok());
        // This machine's own answer is consistent.
        let here = Available::read();
        assert_eq!(here.held & !here.known, 0);
    }
}

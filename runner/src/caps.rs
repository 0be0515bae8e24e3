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

/// Every capability, including ones newer than this table.
pub const ALL: u64 = u64::MAX;

/// "SYS_ADMIN", "cap_sys_admin" or "ALL" as a mask.
pub fn parse(flag: &str, name: &str) -> Result<u64> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(ALL);
    }
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| 1 << i)
        .ok_or_else(|| {
            Error::new(format!(
                "{flag} {name}: not a capability (e.g. NET_ADMIN, CAP_SYS_PTRACE, ALL)"
            ))
        })
}

const SYS_CHROOT: u64 = 1 << 18;

/// The set before the flags: all when privileged, else the default, less
/// SYS_CHROOT where the rootfs is entered by chroot instead of pivot_root.
/// The host's tree then stays below the container's root, and chroot(2)
/// is how a process gets out of one (`--cap-add SYS_CHROOT` allows it
/// again, knowingly).
pub fn base(privileged: bool, pivot_works: bool) -> u64 {
    match (privileged, pivot_works) {
        (true, _) => ALL,
        (false, true) => DEFAULT,
        (false, false) => DEFAULT & !SYS_CHROOT,
    }
}

/// The set a container keeps: `base`, plus --cap-add, minus --cap-drop.
pub fn keep(base: u64, add: &[String], drop: &[String]) -> Result<u64> {
    let mut set = base;
    for a in add {
        set |= parse("--cap-add", a)?;
    }
    for d in drop {
        set &= !parse("--cap-drop", d)?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mask = names.iter().fold(0, |m, n| m | parse("x", n).unwrap());
        assert_eq!(mask, DEFAULT);
    }

    #[test]
    fn add_and_drop() {
        let k = keep(DEFAULT, &["cap_sys_admin".into()], &["NET_RAW".into()]).unwrap();
        assert_eq!(k, (DEFAULT | 1 << 21) & !(1 << 13));
        assert_eq!(keep(DEFAULT, &[], &["ALL".into()]).unwrap(), 0);
        assert_eq!(keep(base(true, true), &[], &[]).unwrap(), ALL);
        // Entered by chroot: no SYS_CHROOT unless asked for.
        let chrooted = base(false, false);
        assert_eq!(chrooted, DEFAULT & !parse("x", "SYS_CHROOT").unwrap());
        assert_eq!(
            keep(chrooted, &["SYS_CHROOT".into()], &[]).unwrap(),
            DEFAULT
        );
        assert!(keep(DEFAULT, &["SYS_WIZARD".into()], &[])
            .unwrap_err()
            .message
            .contains("--cap-add SYS_WIZARD"));
    }
}

//! How the shim can enter the rootfs from the host's root.
//!
//! pivot_root(2) fails with EINVAL when the root is the kernel's initial
//! rootfs, which has no parent mount: boards and routers that run from an
//! initramfs. There the shim moves the rootfs over / and chroots instead,
//! as runc's --no-pivot does and switch_root(8) does at boot.
//!
//! Neither works when the runner is chrooted into a directory that is not a
//! mount point: / cannot even be made a slave (EINVAL), and without that
//! the container's mounts would propagate to the host. bubblewrap fails
//! there too; the runner says how to fix it.

use std::mem::MaybeUninit;

use linux_raw_sys::general as k;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Pivot,
    Move,
    NotAMountPoint,
}

pub fn detect() -> Root {
    if !root_is_mount_point() {
        return Root::NotAMountPoint;
    }
    // The initial rootfs is a ramfs or a tmpfs; only then is mountinfo
    // worth reading.
    // SAFETY: statfs fills the struct it is given.
    let f_type = unsafe {
        let mut buf = MaybeUninit::<libc::statfs>::zeroed();
        if libc::statfs(c"/".as_ptr(), buf.as_mut_ptr()) != 0 {
            return Root::Pivot;
        }
        buf.assume_init().f_type as u32
    };
    if f_type != k::RAMFS_MAGIC && f_type != k::TMPFS_MAGIC {
        return Root::Pivot;
    }
    let mounts = crate::mountinfo::read().unwrap_or_default();
    if root_has_no_parent(&mounts) {
        Root::Move
    } else {
        Root::Pivot
    }
}

/// False when statx says / is not the root of a mount (kernels 5.8+; older
/// ones do not say, and are taken to be fine).
fn root_is_mount_point() -> bool {
    let mut stx = MaybeUninit::<k::statx>::zeroed();
    // SAFETY: statx fills the struct it is given; the path is a C string.
    let r = unsafe {
        libc::syscall(
            k::__NR_statx as libc::c_long,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            0,
            stx.as_mut_ptr(),
        )
    };
    if r != 0 {
        return true;
    }
    // SAFETY: zeroed, then filled by a successful statx.
    let stx = unsafe { stx.assume_init() };
    let bit = u64::from(k::STATX_ATTR_MOUNT_ROOT);
    stx.stx_attributes_mask & bit == 0 || stx.stx_attributes & bit != 0
}

/// Whether the mount on / (the topmost, if several are stacked) is its own
/// parent, as only a namespace's first mount is.
pub fn root_has_no_parent(mounts: &[crate::mountinfo::Mount]) -> bool {
    mounts
        .iter()
        .rfind(|m| m.mount_point == "/")
        .is_some_and(|m| m.id == m.parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_initramfs_root_is_its_own_parent() {
        // As an initramfs-booted kernel shows it.
        let initramfs = "1 1 0:2 / / rw - rootfs rootfs rw\n\
                         16 1 0:4 / /proc rw,nosuid - proc proc rw\n";
        let parse = crate::mountinfo::parse;
        assert!(root_has_no_parent(&parse(initramfs)));
        // After switch_root, or on any disk-booted host.
        let switched = "1 1 0:2 / / rw - rootfs rootfs rw\n\
                        24 1 0:21 / / rw - tmpfs tmpfs rw\n";
        assert!(!root_has_no_parent(&parse(switched)));
        let disk = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";
        assert!(!root_has_no_parent(&parse(disk)));
        assert!(!root_has_no_parent(&[]));
    }
}

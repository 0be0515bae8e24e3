//! The guest's /init: a busybox sh script that mounts what a host has,
//! mounts the cgroup layout the kernel command line names, runs husk-tests,
//! prints one line "vm-test: N passed, M failed", and powers off.

use super::matrix::{Layout, Root};

/// The kernel command line for `layout` on the serial console `console`;
/// `tests` are scenario names (empty: all).
pub fn cmdline(console: &str, layout: Layout, root: Root, tests: &[String]) -> String {
    // loglevel=5: the boot log's notices and information stay off the
    // console, warnings and worse show, with the stack dumps that come
    // with them at the default level (quiet hid those: a soft lockup
    // printed its one line and never where it was);
    // panic=-1 with QEMU's -no-reboot: a panic ends the VM at once;
    // mitigations=off: they only slow an emulated CPU down.
    // husk_root has no dot, so the kernel hands it to the init in its
    // environment, before /proc is there to read the command line from.
    let mut c = format!(
        "console={console} loglevel=5 panic=-1 mitigations=off husk.cgroups={} husk_root={}",
        layout.name(),
        root.name()
    );
    if !tests.is_empty() {
        c.push_str(&format!(" husk.tests={}", tests.join(",")));
    }
    c
}

/// Prefix of every line the init itself prints.
pub const SAYS: &str = "vm-test: ";
/// The init's line just before the tests start.
pub const BEGIN: &str = "vm-test: begin";

pub const SCRIPT: &str = r#"#!/bin/sh
# The init of husk's test VMs, written by xtask/src/vm/init.rs.
# The kernel command line says what to do:
#   husk.cgroups=v1|v2|hybrid   the cgroup layout to mount
#   husk.tests=a,b              the scenarios to run (default: all)
#   husk_root=tmpfs|initramfs   switch to a tmpfs first, or stay on the
#                               initramfs as a board that runs from one
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "vm-test: $*"; }

if [ "$1" != stage2 ] && [ "$husk_root" != initramfs ]; then
    # The initramfs is the kernel's initial rootfs, which pivot_root(2)
    # cannot leave (it has no parent mount: EINVAL). A disk-booted host's
    # root is not: copy the initramfs onto a tmpfs and make that the root.
    mount -t tmpfs -o mode=755 tmpfs /newroot
    for f in /*; do
        [ "$f" = /newroot ] || cp -a "$f" /newroot/
    done
    exec switch_root /newroot /init stage2
fi

# What a host has mounted.
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
# From here on errors and worse reach the console, each a line: a soft
# lockup, an RCU stall, the OOM killer's verdict. Their stack dumps and
# the OOM killer's whole report (the memory tests) are printed at the
# default level and would break into the tests' output (5 shows them, for
# a hunt).
echo 4 > /proc/sys/kernel/printk
hostname vm
ip link set lo up
for m in /lib/modules/*.ko; do
    insmod "$m" || say "insmod $m failed"
done

param() { sed -n "s/.*husk\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# v1 hierarchies under /sys/fs/cgroup, one per argument: a controller, or
# controllers mounted together ("cpu,cpuacct").
v1() {
    for group in "$@"; do
        mkdir -p "/sys/fs/cgroup/$group"
        mount -t cgroup -o "nosuid,nodev,noexec,$group" cgroup "/sys/fs/cgroup/$group" ||
            say "cannot mount the v1 hierarchy $group"
    done
}
# systemd's named v1 hierarchy, which has no controllers.
named() {
    mkdir -p /sys/fs/cgroup/systemd
    mount -t cgroup -o nosuid,nodev,noexec,none,name=systemd cgroup /sys/fs/cgroup/systemd
}

layout=$(param cgroups)
case $layout in
v2)
    # A v2-only distribution; this shell stays in the root cgroup.
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
    ;;
v1)
    # A v1-only host as systemd set them up: cpu with cpuacct and net_cls
    # with net_prio mounted together, a link by each name; and this shell
    # in a cgroup of its own, as a service's would be.
    mount -t tmpfs -o nosuid,nodev,noexec,mode=755 tmpfs /sys/fs/cgroup
    v1 cpuset cpu,cpuacct blkio memory devices freezer net_cls,net_prio perf_event hugetlb pids rdma
    named
    for pair in cpu:cpu,cpuacct cpuacct:cpu,cpuacct net_cls:net_cls,net_prio net_prio:net_cls,net_prio; do
        ln -s "${pair#*:}" "/sys/fs/cgroup/${pair%%:*}"
    done
    for h in /sys/fs/cgroup/*; do
        [ -L "$h" ] && continue
        mkdir "$h/vm-init"
        if [ -f "$h/cpuset.cpus" ]; then
            cat "$h/cpuset.cpus" > "$h/vm-init/cpuset.cpus"
            cat "$h/cpuset.mems" > "$h/vm-init/cpuset.mems"
        fi
        echo $$ > "$h/vm-init/cgroup.procs"
    done
    ;;
hybrid)
    # As on this project's development machines: each v1 controller on
    # its own, cgroup2 on /sys/fs/cgroup/unified. Unlike them, pids is
    # left to cgroup2, so that one container uses both kinds.
    mount -t tmpfs -o nosuid,nodev,noexec,mode=755 tmpfs /sys/fs/cgroup
    v1 cpu cpuacct cpuset memory devices freezer blkio
    named
    mkdir /sys/fs/cgroup/unified
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified
    ;;
*)
    say "unknown cgroup layout '$layout'"
    ;;
esac

# A line of its own: the firmware's last words (SeaBIOS's "Booting from
# ROM..") have no line ending.
echo
say "kernel $(uname -r) on $(uname -m), $(nproc) CPUs; cgroups $layout:"
awk '$3 ~ /^cgroup/ { print "vm-test:   " $2 " " $3 " " $4 }' /proc/mounts
say "this shell's cgroups: $(tr '\n' ' ' < /proc/self/cgroup)"
say "/ is a $(awk '$2 == "/" { t = $3 } END { print t }' /proc/mounts)"
grep -q overlay /proc/filesystems && say "overlay is available"

say begin
cd /
HUSK_RUNNER=/husk/runner HUSK_ROOTFS=/husk/rootfs HUSK_EMULATED=1 /husk/husk-tests $(param tests | tr , ' ') 2>&1 |
    tee /tmp/husk-tests.log
summary=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, [0-9]* skipped$/\1 passed, \2 failed/p' \
    /tmp/husk-tests.log | tail -n 1)
say "${summary:-husk-tests ended without its summary line}"
poweroff -f
"#;

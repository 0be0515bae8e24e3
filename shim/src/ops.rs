//! One function per kind of operation. Each does exactly what the op says,
//! and tells which of its system calls failed (`Fail::sub`; the runner
//! names them, see runner/src/describe.rs).

use core::ffi::CStr;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{self, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::{Errno, FdFlags};
use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
use rustix::mount::{self, MountFlags, MoveMountFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};
use shim::plan::{missing, ms, Op, Strs};

use crate::arch;

/// What the ops share: the root that paths in the root are resolved beneath.
#[derive(Default)]
pub struct State {
    root: Option<OwnedFd>,
}

impl State {
    fn root(&self) -> Result<BorrowedFd<'_>, Errno> {
        // A plan that uses the root before attaching it is malformed.
        self.root.as_ref().map(|r| r.as_fd()).ok_or(Errno::BADF)
    }
}

/// Which system call of an op failed, and how.
pub struct Fail {
    pub sub: u32,
    pub errno: Errno,
}

pub trait At<T> {
    /// Marks a failure as the op's system call number `sub`.
    fn at(self, sub: u32) -> Result<T, Fail>;
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, sub: u32) -> Result<T, Fail> {
        self.map_err(|errno| Fail { sub, errno })
    }
}

/// Takes over an fd the runner passed for this op, close-on-exec from now
/// on: it must not reach the user's program, whatever happens next.
fn adopt(fd: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: the runner hands each passed fd to exactly one op, and
    // nothing else in the shim uses it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
    Ok(fd)
}

/// Set once AwaitStart closed the report: a failure after it is told by
/// the exit status alone (main.rs).
pub static REPORT_CLOSED: AtomicBool = AtomicBool::new(false);

pub fn run(state: &mut State, op: &Op<'_>) -> Result<(), Fail> {
    match *op {
        // SAFETY: the shim is single-threaded; no fd table is shared.
        Op::Unshare { flags } => unsafe {
            rustix::thread::unshare_unsafe(UnshareFlags::from_bits_retain(flags)).at(0)
        },
        Op::SetNs { fd, nstype } => {
            let ns = adopt(fd).at(0)?;
            use rustix::fd::AsRawFd;
            // SAFETY: setns takes an fd we own and a plain integer.
            let r = unsafe {
                arch::syscall(
                    linux_raw_sys::general::__NR_setns as usize,
                    ns.as_raw_fd() as usize,
                    nstype as usize,
                    0,
                )
            };
            if r < 0 {
                return Err(Errno::from_raw_os_error(-r as i32)).at(1);
            }
            Ok(())
        }
        Op::Propagation { flags } => {
            mount::mount(c"", c"/", c"", MountFlags::from_bits_retain(flags), None).at(0)
        }
        Op::AttachRoot { fd, propagation } => {
            let tree = adopt(fd).at(0)?;
            // Stacked on /, where pivot_root (or chroot) takes it from.
            attach(&tree, CWD, c"/", MoveMountFlags::empty(), propagation)?;
            state.root = Some(tree);
            Ok(())
        }
        Op::AttachMount {
            fd,
            target,
            propagation,
        } => {
            let tree = adopt(fd).at(0)?;
            let at = open_in(state.root().at(0)?, target).at(0)?;
            let to = MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
            attach(&tree, at.as_fd(), c"", to, propagation)
        }
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            optional,
        } => optional_target(optional, || {
            let target = open_in(state.root().at(0)?, target).at(0)?;
            let data = if data.is_empty() { None } else { Some(data) };
            mount::mount(
                source,
                FdPath::new(&target).as_cstr(),
                fstype,
                MountFlags::from_bits_retain(flags),
                data,
            )
            .at(1)
        }),
        Op::Mkdir { path, mode } => {
            let (dir, name) = open_parent_in(state.root().at(0)?, path).at(0)?;
            match fs::mkdirat(&dir, name.as_cstr(), Mode::from_bits_retain(mode)) {
                Err(Errno::EXIST) => Ok(()),
                r => r.at(1),
            }
        }
        Op::Touch { path, mode } => {
            let (dir, name) = open_parent_in(state.root().at(0)?, path).at(0)?;
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            fs::openat(&dir, name.as_cstr(), flags, Mode::from_bits_retain(mode))
                .map(drop)
                .at(1)
        }
        Op::Mknod {
            path,
            mode,
            dev,
            uid,
            gid,
        } => {
            use linux_raw_sys::general::{__NR_mknodat, __NR_umask};
            use rustix::fd::AsRawFd;
            use rustix::process::{Gid, Uid};
            let (dir, name) = open_parent_in(state.root().at(0)?, path).at(0)?;
            let name = name.as_cstr();
            // SAFETY: plain integers and a C string that outlives the
            // calls. The mode exactly as given: no umask, and no chmod
            // after (it would follow a symlink swapped in meanwhile).
            let made = unsafe {
                let umask = arch::syscall(__NR_umask as usize, 0, 0, 0);
                let dir = dir.as_raw_fd() as usize;
                let made = arch::syscall4(
                    __NR_mknodat as usize,
                    dir,
                    name.as_ptr() as usize,
                    mode as usize,
                    dev as usize,
                );
                arch::syscall(__NR_umask as usize, umask as usize, 0, 0);
                made
            };
            if made < 0 {
                return Err(Errno::from_raw_os_error(-made as i32)).at(1);
            }
            let ids = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
            fs::chownat(&dir, name, ids.0, ids.1, fs::AtFlags::SYMLINK_NOFOLLOW).at(2)
        }
        Op::PassFds { from, count } => {
            use linux_raw_sys::general::{__NR_dup3, O_CLOEXEC};
            // dup3 to numbers of our choosing: first above both ranges (a
            // source may sit where another goes), then down to 3 and up,
            // without close-on-exec. Nothing of the shim's is open above
            // the passed fds, the last of which these are, nor at 3 and 4
            // (its plan and report, closed by now).
            let dup3 = |from: u32, to: u32, flags: u32| {
                // SAFETY: plain integers; dup3 replaces `to`, which is ours.
                let r = unsafe {
                    arch::syscall(
                        __NR_dup3 as usize,
                        from as usize,
                        to as usize,
                        flags as usize,
                    )
                };
                if r < 0 {
                    Err(Errno::from_raw_os_error(-r as i32))
                } else {
                    Ok(())
                }
            };
            let above = from.max(3) + count;
            for i in 0..count {
                dup3(from + i, above + i, O_CLOEXEC).at(0)?;
                // SAFETY: the runner passed it for this op alone.
                unsafe { rustix::io::close((from + i) as i32) };
            }
            for i in 0..count {
                dup3(above + i, 3 + i, 0).at(1)?;
                // SAFETY: the copy made above, ours alone.
                unsafe { rustix::io::close((above + i) as i32) };
            }
            Ok(())
        }
        Op::Sysctl { path, value } => {
            let (dir, name) = open_parent_in(state.root().at(0)?, path).at(0)?;
            let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = fs::openat(&dir, name.as_cstr(), flags, Mode::empty()).at(1)?;
            const PROC_SUPER_MAGIC: i64 = 0x9fa0;
            if fs::fstatfs(&fd).at(2)?.f_type as i64 != PROC_SUPER_MAGIC {
                return Err(Errno::XDEV).at(2);
            }
            rustix::io::write(&fd, value.to_bytes()).map(drop).at(3)
        }
        Op::Symlink { target, path } => {
            let (dir, name) = open_parent_in(state.root().at(0)?, path).at(0)?;
            fs::symlinkat(target, &dir, name.as_cstr()).at(1)
        }
        Op::Mask {
            target,
            null,
            flags,
            data,
            optional,
        } => optional_target(optional, || {
            let root = state.root().at(0)?;
            let target = open_in(root, target).at(0)?;
            let at = FdPath::new(&target);
            let st = fs::fstat(&target).at(1)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let data = if data.is_empty() { None } else { Some(data) };
                let flags = MountFlags::from_bits_retain(flags);
                return mount::mount(c"tmpfs", at.as_cstr(), c"tmpfs", flags, data).at(2);
            }
            let null = open_in(root, null).at(3)?;
            let st = fs::fstat(&null).at(4)?;
            let is_null = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                && fs::major(st.st_rdev) == 1
                && fs::minor(st.st_rdev) == 3;
            if !is_null {
                return Err(Errno::NODEV).at(4);
            }
            let bind = MountFlags::from_bits_retain(ms::BIND);
            mount::mount(FdPath::new(&null).as_cstr(), at.as_cstr(), c"", bind, None).at(5)
        }),
        Op::RemountBind {
            path,
            bind,
            set,
            clear,
            optional,
        } => optional_target(optional, || {
            let root = state.root().at(0)?;
            let mut at = open_in(root, path).at(0)?;
            if bind {
                let p = FdPath::new(&at);
                let flags = MountFlags::from_bits_retain(ms::BIND | ms::REC);
                mount::mount(p.as_cstr(), p.as_cstr(), c"", flags, None).at(1)?;
                // Reopened: the old fd still names the mount underneath.
                at = open_in(root, path).at(2)?;
            }
            // A bind remount sets the per-mount flags to exactly what it is
            // given (atime apart), and refuses to clear the locked ones:
            // keep the ones the mount has.
            let kept = fs::fstatvfs(&at).at(3)?.f_flag.bits() as u32
                & (ms::RDONLY | ms::NOSUID | ms::NODEV | ms::NOEXEC)
                & !clear;
            let flags = MountFlags::from_bits_retain(ms::BIND | ms::REMOUNT | kept | set);
            mount::mount(c"", FdPath::new(&at).as_cstr(), c"", flags, None).at(4)
        }),
        Op::Hostname { name } => rustix::system::sethostname(name.to_bytes()).at(0),
        Op::LoopbackUp => loopback_up(),
        Op::PivotRoot => {
            // pivot_root(".", ".") stacks the old root on top of the new one,
            // so no directory for it is needed in the rootfs; detaching it
            // then leaves nothing of the host tree reachable.
            rustix::process::fchdir(state.root().at(0)?).at(0)?;
            rustix::process::pivot_root(c".", c".").at(1)?;
            mount::unmount(c".", UnmountFlags::DETACH).at(2)?;
            // No fd into the old tree may survive into the container.
            state.root = None;
            rustix::process::chdir(c"/").at(3)
        }
        // What runc's --no-pivot and switch_root do. The host tree stays
        // below the root, reachable only by escaping the chroot, which
        // takes chroot(2): the runner drops CAP_SYS_CHROOT.
        Op::ChrootRoot => chroot_into(state),
        Op::EnterRoot { fd } => {
            state.root = Some(adopt(fd).at(0)?);
            chroot_into(state)
        }
        Op::Chdir { path } => rustix::process::chdir(path).at(0),
        Op::Setsid => rustix::process::setsid().map(drop).at(0),
        // SAFETY: fd 0 is open for the shim's whole life.
        Op::ControllingTty => {
            rustix::process::ioctl_tiocsctty(unsafe { BorrowedFd::borrow_raw(0) }).at(0)
        }
        Op::NoNewPrivs => rustix::thread::set_no_new_privs(true).at(0),
        Op::Undumpable => {
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
                .at(0)
        }
        Op::Seccomp { filter } => seccomp(filter).at(0),
        Op::Capabilities {
            keep,
            inheritable,
            ambient,
        } => capabilities(keep, inheritable, ambient),
        Op::Fail { errno } => Err(Errno::from_raw_os_error(errno as i32)).at(0),
        Op::Init { tty } => crate::init::start(tty),
        Op::SetIds {
            uid,
            gid,
            groups,
            umask,
            keep_caps,
        } => {
            use rustix::process::{Gid, Uid};
            if keep_caps {
                rustix::thread::set_keep_capabilities(true).at(3)?;
            }
            let n = groups.len() / 4;
            let gids: &[Gid] = if n == 0 {
                &[]
            } else {
                let buf = alloc(groups.len()).at(0)?;
                buf.copy_from_slice(groups);
                // SAFETY: Gid is a transparent u32, and `buf` is
                // page-aligned and holds `n` of them (the targets are
                // little-endian).
                unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<Gid>(), n) }
            };
            rustix::thread::set_thread_groups(gids).at(0)?;
            rustix::thread::set_thread_gid(Gid::from_raw(gid)).at(1)?;
            rustix::thread::set_thread_uid(Uid::from_raw(uid)).at(2)?;
            rustix::process::umask(Mode::from_raw_mode(umask));
            if keep_caps {
                // The permitted set stayed; the kernel cleared the
                // effective one on setuid.
                let mut sets = rustix::thread::capabilities(None).at(4)?;
                sets.effective = sets.permitted;
                rustix::thread::set_capabilities(None, sets).at(4)?;
            }
            Ok(())
        }
        Op::Pretend { missing } => {
            if missing & missing::OPENAT2 != 0 {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            Ok(())
        }
        Op::AwaitStart { fd } => {
            let fifo = adopt(fd).at(0)?;
            // SAFETY: fd 4 is the shim's and nothing borrows it here; a
            // failure after this has nobody to tell but the exit status.
            unsafe { rustix::io::close(shim::report::REPORT_FD) };
            REPORT_CLOSED.store(true, Ordering::Relaxed);
            let mut byte = [0u8; 1];
            loop {
                match rustix::io::read(&fifo, &mut byte) {
                    Ok(1) => return Ok(()),
                    Err(Errno::INTR) => {}
                    Ok(_) => return Err(Errno::PIPE).at(1),
                    Err(e) => return Err(e).at(1),
                }
            }
        }
        Op::Exec {
            candidates,
            argv,
            envp,
        } => exec(candidates, argv, envp),
    }
}

/// chroot into the root (its fd kept in `state`), which is then closed:
/// no fd to a directory outside the new root may reach the program.
/// Moves the detached `tree` onto `to`/`path`, then sets its propagation:
/// a tree cloned from the host's mounts shares their peer groups, and
/// without this what is mounted in it would appear on the host.
fn attach(
    tree: &OwnedFd,
    to: BorrowedFd<'_>,
    path: &CStr,
    flags: MoveMountFlags,
    propagation: u32,
) -> Result<(), Fail> {
    let flags = flags | MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
    mount::move_mount(tree, c"", to, path, flags).at(1)?;
    let propagation = MountFlags::from_bits_retain(propagation);
    mount::mount(c"", FdPath::new(tree).as_cstr(), c"", propagation, None).at(2)
}

fn chroot_into(state: &mut State) -> Result<(), Fail> {
    rustix::process::fchdir(state.root().at(0)?).at(0)?;
    state.root = None;
    rustix::process::chroot(c".").at(1)?;
    rustix::process::chdir(c"/").at(2)
}

/// An optional target that does not exist is skipped; nothing else is.
fn optional_target(optional: bool, f: impl FnOnce() -> Result<(), Fail>) -> Result<(), Fail> {
    match f() {
        Err(Fail {
            sub: 0,
            errno: Errno::NOENT,
        }) if optional => Ok(()),
        r => r,
    }
}

const PATH_MAX: usize = linux_raw_sys::general::PATH_MAX as usize;

/// Set once openat2 turns out to be missing (kernels before 5.6), or when
/// the plan says to pretend it is (`Op::Pretend`).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `path` beneath `root` as an O_PATH fd, refusing every symlink
/// (ELOOP) and any `..` that would leave the root (EXDEV), so the result is
/// always inside the root, whatever the rootfs holds or a racing process
/// does: one openat2 where the kernel has it, else one component at a time.
fn open_in(root: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd, Errno> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let path = if path.is_empty() { c"." } else { path };
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match fs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        ) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            r => return r,
        }
    }
    walk_in(root, path)
}

fn walk_in(root: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd, Errno> {
    let mut cur = fs::openat(
        root,
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for part in components(path) {
        let name = Name::new(part?)?;
        let next = fs::openat(
            &cur,
            name.as_cstr(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if FileType::from_raw_mode(fs::fstat(&next)?.st_mode) == FileType::Symlink {
            return Err(Errno::LOOP);
        }
        cur = next;
    }
    Ok(cur)
}

/// The directory holding `path`'s last component (opened as `open_in`
/// does), and that component.
fn open_parent_in(root: BorrowedFd<'_>, path: &CStr) -> Result<(OwnedFd, Name), Errno> {
    let bytes = path.to_bytes();
    let (parent, last) = match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b""[..], bytes),
    };
    let mut buf = [0u8; PATH_MAX];
    buf.get_mut(..parent.len() + 1).ok_or(Errno::NAMETOOLONG)?[..parent.len()]
        .copy_from_slice(parent);
    let parent = CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::INVAL)?;
    let name = Name::new(last)?;
    Ok((open_in(root, parent)?, name))
}

fn components(path: &CStr) -> impl Iterator<Item = Result<&[u8], Errno>> {
    path.to_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| if c == b".." { Err(Errno::XDEV) } else { Ok(c) })
}

/// One path component, NUL-terminated.
struct Name([u8; 256]);

impl Name {
    fn new(part: &[u8]) -> Result<Name, Errno> {
        if part.is_empty() || part == b"." || part == b".." {
            return Err(Errno::INVAL);
        }
        let mut buf = [0u8; 256];
        buf.get_mut(..part.len())
            .ok_or(Errno::NAMETOOLONG)?
            .copy_from_slice(part);
        if part.len() == 256 {
            return Err(Errno::NAMETOOLONG);
        }
        Ok(Name(buf))
    }
    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

/// "/proc/self/fd/N": mounting on (or from) this path acts on exactly the
/// file the fd names, with no second lookup for a racer to redirect.
struct FdPath([u8; 32]);

impl FdPath {
    fn new(fd: impl AsFd) -> FdPath {
        use rustix::fd::AsRawFd;
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let mut n = fd.as_fd().as_raw_fd() as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath(buf)
    }
    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

/// Anonymous memory: the shim's only allocator.
pub fn alloc(len: usize) -> Result<&'static mut [u8], Errno> {
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: a fresh private mapping, never unmapped, aliased by nothing.
    unsafe {
        let p = mmap_anonymous(
            null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )?;
        Ok(core::slice::from_raw_parts_mut(p.cast(), len))
    }
}

fn loopback_up() -> Result<(), Fail> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    /// `struct ifreq` cut to what SIOCSIFFLAGS reads; 40 bytes covers its
    /// size on both 32- and 64-bit kernels.
    #[repr(C)]
    struct IfreqFlags {
        name: [u8; 16],
        flags: i16,
        _pad: [u8; 22],
    }
    let sock = socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .at(0)?;
    let mut req = IfreqFlags {
        name: [0; 16],
        flags: linux_raw_sys::net::net_device_flags::IFF_UP as i16,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: SIOCSIFFLAGS reads a `struct ifreq`, which `IfreqFlags` lays
    // out (name, then the flags at the start of the union).
    unsafe {
        let ioctl =
            rustix::ioctl::Setter::<{ linux_raw_sys::ioctl::SIOCSIFFLAGS as _ }, _>::new(req);
        rustix::ioctl::ioctl(&sock, ioctl).at(1)
    }
}

fn seccomp(filter: &[u8]) -> Result<(), Errno> {
    /// `struct sock_fprog`.
    #[repr(C)]
    struct Prog {
        len: u16,
        filter: *const u8,
    }
    // Each `struct sock_filter` is 8 bytes; the kernel takes at most 4096.
    if filter.is_empty() || !filter.len().is_multiple_of(8) || filter.len() / 8 > 4096 {
        return Err(Errno::INVAL);
    }
    let prog = Prog {
        len: (filter.len() / 8) as u16,
        filter: filter.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: usize = 1;
    // SAFETY: `prog` points at `len` filter instructions that outlive the
    // call; the kernel copies them.
    let r = unsafe {
        arch::syscall(
            linux_raw_sys::general::__NR_seccomp as usize,
            SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const Prog as usize,
        )
    };
    if r < 0 {
        Err(Errno::from_raw_os_error(-r as i32))
    } else {
        Ok(())
    }
}

/// Exactly `keep`: the runner only asks for capabilities this kernel knows
/// and the runner itself holds, so a failure here is an error, never a
/// quiet narrowing of the set.
fn capabilities(keep: u64, inheritable: u64, ambient: u64) -> Result<(), Fail> {
    // The bounding set first (it needs CAP_SETPCAP, which the capset below
    // may drop), up to the last capability this kernel knows (EINVAL).
    for cap in 0..64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1 << cap,
        )) {
            Err(Errno::INVAL) => break,
            r => r.at(0)?,
        }
    }
    rustix::thread::clear_ambient_capability_set().at(1)?;
    let keep = CapabilitySet::from_bits_retain(keep);
    let sets = CapabilitySets {
        effective: keep,
        permitted: keep,
        inheritable: CapabilitySet::from_bits_retain(inheritable),
    };
    rustix::thread::set_capabilities(None, sets).at(2)?;
    for cap in (0..64).filter(|c| ambient & (1 << c) != 0) {
        // SAFETY: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)
        // takes plain integers.
        let r = unsafe {
            crate::arch::syscall4(
                linux_raw_sys::general::__NR_prctl as usize,
                linux_raw_sys::prctl::PR_CAP_AMBIENT as usize,
                linux_raw_sys::prctl::PR_CAP_AMBIENT_RAISE as usize,
                cap,
                0,
            )
        };
        if r < 0 {
            return Err(Errno::from_raw_os_error(-r as i32)).at(3);
        }
    }
    Ok(())
}

/// execve each candidate in turn, as execvp does with PATH: a missing file
/// moves on to the next; EACCES is remembered in case nothing else is
/// found. A file that exists but answers ENOENT (its ELF interpreter or
/// `#!` program is missing) is remembered too, as `sub` = 1 + its index,
/// so that the runner can say so instead of "not found".
fn exec(candidates: Strs<'_>, argv: Strs<'_>, envp: Strs<'_>) -> Result<(), Fail> {
    let argv_ptrs = pointers(argv).at(0)?;
    let envp_ptrs = pointers(envp).at(0)?;
    let mut err = Fail {
        sub: 0,
        errno: Errno::NOENT,
    };
    for (i, path) in candidates.iter().enumerate() {
        match arch::execve(path, argv_ptrs, envp_ptrs) {
            Errno::NOENT => {
                let exists = fs::access(path, fs::Access::EXISTS).is_ok();
                if exists && err.sub == 0 && err.errno == Errno::NOENT {
                    err.sub = i as u32 + 1;
                }
            }
            Errno::NOTDIR => {}
            Errno::ACCESS => {
                err = Fail {
                    sub: 0,
                    errno: Errno::ACCESS,
                }
            }
            e => return Err(e).at(0),
        }
    }
    Err(err)
}

/// A NULL-terminated array of pointers to the list's strings.
fn pointers(list: Strs<'_>) -> Result<*const *const u8, Errno> {
    let size = (list.len() + 1) * core::mem::size_of::<*const u8>();
    let mem = alloc(size)?;
    let ptrs = mem.as_mut_ptr().cast::<*const u8>();
    for (i, s) in list.iter().enumerate() {
        // SAFETY: `mem` has room for len + 1 pointers and is page-aligned.
        unsafe { ptrs.add(i).write(s.as_ptr().cast()) };
    }
    // The terminating NULL is already there: fresh mappings are zeroed.
    Ok(ptrs)
}

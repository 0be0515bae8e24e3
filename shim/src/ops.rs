//! One function per kind of operation. Each does exactly what the op says.

use core::ffi::CStr;
use core::ptr::null_mut;
use rustix::fs::{self, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::mm::{mmap_anonymous, MapFlags, ProtFlags};
use rustix::mount::{self, MountFlags, UnmountFlags};
use rustix::thread::UnshareFlags;
use shim::plan::{Op, Strs};

use crate::arch;

pub fn run(op: &Op<'_>) -> Result<(), Errno> {
    match *op {
        // SAFETY: the shim is single-threaded; no fd table is shared.
        Op::UnshareCgroup => unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWCGROUP) },
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            let data = if data.is_empty() { None } else { Some(data) };
            mount::mount(
                source,
                target,
                fstype,
                MountFlags::from_bits_retain(flags),
                data,
            )
        }
        Op::Mkdir { path, mode } => match fs::mkdir(path, Mode::from_bits_retain(mode)) {
            Err(Errno::EXIST) => Ok(()),
            r => r,
        },
        Op::Touch { path } => {
            let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            fs::openat(CWD, path, flags, Mode::from_bits_retain(0o644)).map(drop)
        }
        Op::Symlink { target, path } => fs::symlink(target, path),
        Op::Hostname { name } => rustix::system::sethostname(name.to_bytes()),
        Op::LoopbackUp => loopback_up(),
        Op::PivotRoot { path } => pivot_root(path),
        Op::Chdir { path } => rustix::process::chdir(path),
        Op::Exec {
            candidates,
            argv,
            envp,
        } => exec(candidates, argv, envp),
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

fn pivot_root(path: &CStr) -> Result<(), Errno> {
    // pivot_root(".", ".") stacks the old root on top of the new one, so no
    // directory for it is needed in the rootfs; detaching it then leaves
    // nothing of the host tree reachable.
    rustix::process::chdir(path)?;
    rustix::process::pivot_root(c".", c".")?;
    mount::unmount(c".", UnmountFlags::DETACH)?;
    rustix::process::chdir(c"/")
}

fn loopback_up() -> Result<(), Errno> {
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
    )?;
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
        rustix::ioctl::ioctl(&sock, ioctl)
    }
}

/// execve each candidate in turn, as execvp does with PATH: a missing file
/// moves on to the next; EACCES is remembered in case nothing else is found.
fn exec(candidates: Strs<'_>, argv: Strs<'_>, envp: Strs<'_>) -> Result<(), Errno> {
    let argv_ptrs = pointers(argv)?;
    let envp_ptrs = pointers(envp)?;
    let mut err = Errno::NOENT;
    for path in candidates.iter() {
        match arch::execve(path, argv_ptrs, envp_ptrs) {
            Errno::NOENT | Errno::NOTDIR => {}
            Errno::ACCESS => err = Errno::ACCESS,
            e => return Err(e),
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

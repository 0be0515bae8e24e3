//! The plan: what the shim does inside the new namespaces, as data.
//!
//! The runner decides everything and encodes a list of operations into one
//! flat buffer; the shim decodes it without allocating and performs the
//! operations in order. This file is the only definition of the format, used
//! by both sides.
//!
//! Wire format (all integers little-endian):
//!
//! ```text
//! header: b"HUSK" | version: u8 | 3 reserved bytes | body length: u32
//! body:   op*
//! op:     kind: u8 | fields, as listed in `Op` (u32 numbers, strings, lists)
//! string: length including the NUL: u32 | bytes | NUL
//! list:   count: u32 | string*
//! ```
//!
//! The decoder trusts nothing: every length is bounds-checked, every string
//! must end in its own NUL and hold no other, unknown kinds are refused, and
//! trailing bytes are an error.

use core::ffi::CStr;
use core::fmt;

pub const MAGIC: [u8; 4] = *b"HUSK";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 12;
/// Bigger than any argv + envp the kernel accepts (ARG_MAX is a quarter of
/// the stack limit, 2 MiB by default) and small enough to map without worry.
pub const MAX_BODY_LEN: usize = 8 << 20;

/// Why a buffer is not a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    BadMagic,
    BadVersion,
    TooLong,
    Truncated,
    UnknownOp(u8),
    BadString,
    TrailingBytes,
    BadBool,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::BadMagic => f.write_str("bad magic"),
            Malformed::BadVersion => f.write_str("unsupported version"),
            Malformed::TooLong => f.write_str("body too long"),
            Malformed::Truncated => f.write_str("truncated"),
            Malformed::UnknownOp(k) => write!(f, "unknown op kind {k}"),
            Malformed::BadString => f.write_str("string without its NUL or with an inner NUL"),
            Malformed::TrailingBytes => f.write_str("trailing bytes"),
            Malformed::BadBool => f.write_str("a flag that is neither 0 nor 1"),
        }
    }
}

/// Reads the header; returns the body length that follows it.
pub fn parse_header(header: &[u8]) -> Result<usize, Malformed> {
    let mut c = Cursor(header);
    if c.take(4)? != MAGIC {
        return Err(Malformed::BadMagic);
    }
    if c.take(4)?[0] != VERSION {
        return Err(Malformed::BadVersion);
    }
    let len = c.u32()? as usize;
    if len > MAX_BODY_LEN {
        return Err(Malformed::TooLong);
    }
    Ok(len)
}

/// A list of strings inside the plan (argv, envp, exec candidates).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Strs<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> Strs<'a> {
    pub fn len(&self) -> usize {
        self.count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn iter(&self) -> StrsIter<'a> {
        StrsIter {
            left: self.count,
            cursor: Cursor(self.bytes),
        }
    }
    pub fn first(&self) -> Option<&'a CStr> {
        self.iter().next()
    }
}

impl fmt::Debug for Strs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

pub struct StrsIter<'a> {
    left: u32,
    cursor: Cursor<'a>,
}

impl<'a> Iterator for StrsIter<'a> {
    type Item = &'a CStr;
    fn next(&mut self) -> Option<&'a CStr> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated when the plan was decoded.
        self.cursor.cstr().ok()
    }
}

/// `mount(2)` flags, as the kernel numbers them (the same on every
/// architecture we build for).
pub mod ms {
    pub const RDONLY: u32 = 1;
    pub const NOSUID: u32 = 2;
    pub const NODEV: u32 = 4;
    pub const NOEXEC: u32 = 8;
    pub const REMOUNT: u32 = 32;
    pub const BIND: u32 = 4096;
    pub const REC: u32 = 16384;
    pub const PRIVATE: u32 = 1 << 18;
    pub const SLAVE: u32 = 1 << 19;
    pub const STRICTATIME: u32 = 1 << 24;
}

/// One operation of the plan.
///
/// Paths named "in the root" are relative to the root file system and are
/// resolved by the shim beneath the root it opened (`BindRoot`), one
/// component at a time, refusing every symlink (ELOOP) and `..`: a hostile
/// rootfs cannot send a mount, a file or a directory outside itself, and a
/// path swapped for a symlink mid-way only makes the start fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `unshare(CLONE_NEWCGROUP)`: done after the runner has moved us into
    /// the container's cgroup, so that the namespace is rooted there.
    UnshareCgroup,
    /// Change the propagation of every mount (`/`, recursively).
    Propagation { flags: u32 },
    /// Bind the host directory `path` onto itself (pivot_root needs a mount
    /// point) and open it: the root every later path is resolved beneath.
    /// Non-zero `flags` (MS_*) are then added to the per-mount flags the
    /// bind came with.
    BindRoot { path: &'a CStr, flags: u32 },
    /// `mount(source, target, fstype, flags, data)`, target in the root.
    /// Empty strings are passed as they are. `optional`: a missing target
    /// is skipped.
    Mount {
        source: &'a CStr,
        target: &'a CStr,
        fstype: &'a CStr,
        flags: u32,
        data: &'a CStr,
        optional: bool,
    },
    /// `mkdir(path, mode)` in the root; an existing directory is fine.
    Mkdir { path: &'a CStr, mode: u32 },
    /// Create an empty regular file in the root, to mount a node over.
    Touch { path: &'a CStr },
    /// `symlink(target, path)`, path in the root.
    Symlink { target: &'a CStr, path: &'a CStr },
    /// Hide `target`: a directory behind an empty read-only tmpfs, a file
    /// behind the root's `dev/null`, after checking that it is the
    /// character device 1:3 (runc's CVE-2025-31133).
    Mask { target: &'a CStr, optional: bool },
    /// Bind `path` onto itself and remount it read-only (and nosuid, nodev,
    /// noexec).
    ReadOnly { path: &'a CStr, optional: bool },
    /// `sethostname(name)`.
    Hostname { name: &'a CStr },
    /// Bring `lo` up in the new network namespace.
    LoopbackUp,
    /// Make the root the root: pivot_root(".", ".") from inside it, then
    /// detach the old root so nothing of the host tree stays reachable.
    PivotRoot,
    /// Instead of `PivotRoot` where it cannot work (the host's root is the
    /// kernel's initial rootfs, or the runner is chrooted): move the rootfs
    /// over / and chroot into it.
    MoveRoot,
    /// `chdir(path)`, after the pivot.
    Chdir { path: &'a CStr },
    /// `setsid()`: no controlling terminal, so no TIOCSTI into the caller's.
    Setsid,
    /// Make stdin (the runner's pseudo-terminal for the container) the
    /// controlling terminal, after `Setsid`.
    ControllingTty,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs,
    /// Install a classic BPF seccomp filter (`struct sock_filter` array).
    Seccomp { filter: &'a [u8] },
    /// Keep only the capabilities in `keep`: bounding set, then ambient
    /// cleared, then effective = permitted = `keep`, inheritable empty.
    Capabilities { keep: u64 },
    /// Fail with `errno`: the runner's failure-injection knob for tests.
    Fail { errno: u32 },
    /// `execve` each candidate path in turn (the command looked up in the
    /// container's PATH) with `argv` and `envp`.
    Exec {
        candidates: Strs<'a>,
        argv: Strs<'a>,
        envp: Strs<'a>,
    },
}

mod kind {
    pub const UNSHARE_CGROUP: u8 = 1;
    pub const PROPAGATION: u8 = 2;
    pub const BIND_ROOT: u8 = 3;
    pub const MOUNT: u8 = 4;
    pub const MKDIR: u8 = 5;
    pub const TOUCH: u8 = 6;
    pub const SYMLINK: u8 = 7;
    pub const MASK: u8 = 8;
    pub const READ_ONLY: u8 = 9;
    pub const HOSTNAME: u8 = 10;
    pub const LOOPBACK_UP: u8 = 11;
    pub const PIVOT_ROOT: u8 = 12;
    pub const CHDIR: u8 = 13;
    pub const SETSID: u8 = 14;
    pub const NO_NEW_PRIVS: u8 = 15;
    pub const SECCOMP: u8 = 16;
    pub const CAPABILITIES: u8 = 17;
    pub const FAIL: u8 = 18;
    pub const EXEC: u8 = 19;
    pub const CONTROLLING_TTY: u8 = 20;
    pub const MOVE_ROOT: u8 = 21;
}

impl<'a> Op<'a> {
    fn decode(c: &mut Cursor<'a>) -> Result<Op<'a>, Malformed> {
        use kind::*;
        Ok(match c.u8()? {
            UNSHARE_CGROUP => Op::UnshareCgroup,
            PROPAGATION => Op::Propagation { flags: c.u32()? },
            BIND_ROOT => Op::BindRoot {
                path: c.cstr()?,
                flags: c.u32()?,
            },
            MOUNT => Op::Mount {
                source: c.cstr()?,
                target: c.cstr()?,
                fstype: c.cstr()?,
                flags: c.u32()?,
                data: c.cstr()?,
                optional: c.bool()?,
            },
            MKDIR => Op::Mkdir {
                path: c.cstr()?,
                mode: c.u32()?,
            },
            TOUCH => Op::Touch { path: c.cstr()? },
            SYMLINK => Op::Symlink {
                target: c.cstr()?,
                path: c.cstr()?,
            },
            MASK => Op::Mask {
                target: c.cstr()?,
                optional: c.bool()?,
            },
            READ_ONLY => Op::ReadOnly {
                path: c.cstr()?,
                optional: c.bool()?,
            },
            HOSTNAME => Op::Hostname { name: c.cstr()? },
            LOOPBACK_UP => Op::LoopbackUp,
            PIVOT_ROOT => Op::PivotRoot,
            MOVE_ROOT => Op::MoveRoot,
            CHDIR => Op::Chdir { path: c.cstr()? },
            SETSID => Op::Setsid,
            CONTROLLING_TTY => Op::ControllingTty,
            NO_NEW_PRIVS => Op::NoNewPrivs,
            SECCOMP => Op::Seccomp { filter: c.bytes()? },
            CAPABILITIES => Op::Capabilities { keep: c.u64()? },
            FAIL => Op::Fail { errno: c.u32()? },
            EXEC => Op::Exec {
                candidates: c.strs()?,
                argv: c.strs()?,
                envp: c.strs()?,
            },
            kind => return Err(Malformed::UnknownOp(kind)),
        })
    }
}

/// How an operation is named in the runner's error messages. Paths in the
/// root are shown as the container will see them.
impl fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn s(c: &CStr) -> &str {
            c.to_str().unwrap_or("<non-utf8>")
        }
        match self {
            Op::UnshareCgroup => f.write_str("unshare cgroup namespace"),
            Op::Propagation { .. } => f.write_str("change propagation of /"),
            Op::BindRoot { path, flags } => {
                write!(f, "bind the rootfs {} onto itself", s(path))?;
                if flags & ms::NODEV != 0 {
                    f.write_str(", nodev")?;
                }
                Ok(())
            }
            Op::Mount { target, flags, .. } if flags & ms::REMOUNT != 0 => {
                write!(f, "remount /{}", s(target))
            }
            Op::Mount {
                source,
                target,
                flags,
                ..
            } if flags & ms::BIND != 0 => {
                write!(f, "bind {} on /{}", s(source), s(target))
            }
            Op::Mount { fstype, target, .. } => write!(f, "mount {} on /{}", s(fstype), s(target)),
            Op::Mkdir { path, .. } => write!(f, "mkdir /{}", s(path)),
            Op::Touch { path } => write!(f, "create /{}", s(path)),
            Op::Symlink { target, path } => write!(f, "symlink /{} -> {}", s(path), s(target)),
            Op::Mask { target, .. } => write!(f, "mask /{}", s(target)),
            Op::ReadOnly { path, .. } => write!(f, "make /{} read-only", s(path)),
            Op::Hostname { name } => write!(f, "sethostname {}", s(name)),
            Op::LoopbackUp => f.write_str("bring up lo"),
            Op::PivotRoot => f.write_str("pivot_root into the rootfs"),
            Op::MoveRoot => f.write_str("move the rootfs over / and chroot into it"),
            Op::Chdir { path } => write!(f, "chdir {}", s(path)),
            Op::Setsid => f.write_str("setsid"),
            Op::ControllingTty => f.write_str("take the pseudo-terminal as controlling terminal"),
            Op::NoNewPrivs => f.write_str("set no_new_privs"),
            Op::Seccomp { .. } => f.write_str("install the seccomp filter"),
            Op::Capabilities { .. } => f.write_str("drop capabilities"),
            Op::Fail { .. } => f.write_str("injected failure (HUSK_FAIL_AT_STEP)"),
            Op::Exec { argv, .. } => {
                write!(f, "exec {}", argv.first().map(s).unwrap_or("<empty argv>"))
            }
        }
    }
}

/// A decoded, validated plan body.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    body: &'a [u8],
}

impl<'a> Plan<'a> {
    /// Validates the whole body up front, so that a malformed plan is refused
    /// before the shim has changed anything.
    pub fn new(body: &'a [u8]) -> Result<Plan<'a>, Malformed> {
        let plan = Plan { body };
        for op in plan.ops() {
            op?;
        }
        Ok(plan)
    }

    pub fn ops(&self) -> Ops<'a> {
        Ops {
            cursor: Cursor(self.body),
            failed: false,
        }
    }
}

pub struct Ops<'a> {
    cursor: Cursor<'a>,
    failed: bool,
}

impl<'a> Iterator for Ops<'a> {
    type Item = Result<Op<'a>, Malformed>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.0.is_empty() {
            return None;
        }
        let op = Op::decode(&mut self.cursor);
        self.failed = op.is_err();
        Some(op)
    }
}

#[derive(Clone, Copy)]
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(Malformed::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }
    fn bool(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed::BadBool),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn cstr(&mut self) -> Result<&'a CStr, Malformed> {
        let len = self.u32()? as usize;
        CStr::from_bytes_with_nul(self.take(len)?).map_err(|_| Malformed::BadString)
    }
    fn strs(&mut self) -> Result<Strs<'a>, Malformed> {
        let count = self.u32()?;
        let start = self.0;
        for _ in 0..count {
            self.cstr()?;
        }
        let used = start.len() - self.0.len();
        Ok(Strs {
            count,
            bytes: &start[..used],
        })
    }
}

#[cfg(any(test, feature = "encode"))]
pub use encode::Encoder;

#[cfg(any(test, feature = "encode"))]
mod encode {
    use super::*;
    extern crate alloc;
    use alloc::vec::Vec;

    /// Builds a plan: header and body in one buffer, ready to write.
    pub struct Encoder {
        buf: Vec<u8>,
    }

    impl Default for Encoder {
        fn default() -> Self {
            let mut buf = Vec::with_capacity(1024);
            buf.extend_from_slice(&MAGIC);
            buf.extend_from_slice(&[VERSION, 0, 0, 0]);
            buf.extend_from_slice(&0u32.to_le_bytes());
            Encoder { buf }
        }
    }

    impl Encoder {
        pub fn push(&mut self, op: &Op<'_>) {
            use kind::*;
            match *op {
                Op::UnshareCgroup => self.u8(UNSHARE_CGROUP),
                Op::Propagation { flags } => {
                    self.u8(PROPAGATION);
                    self.u32(flags);
                }
                Op::BindRoot { path, flags } => {
                    self.u8(BIND_ROOT);
                    self.cstr(path);
                    self.u32(flags);
                }
                Op::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                    optional,
                } => {
                    self.u8(MOUNT);
                    self.cstr(source);
                    self.cstr(target);
                    self.cstr(fstype);
                    self.u32(flags);
                    self.cstr(data);
                    self.u8(optional as u8);
                }
                Op::Mkdir { path, mode } => {
                    self.u8(MKDIR);
                    self.cstr(path);
                    self.u32(mode);
                }
                Op::Touch { path } => {
                    self.u8(TOUCH);
                    self.cstr(path);
                }
                Op::Symlink { target, path } => {
                    self.u8(SYMLINK);
                    self.cstr(target);
                    self.cstr(path);
                }
                Op::Mask { target, optional } => {
                    self.u8(MASK);
                    self.cstr(target);
                    self.u8(optional as u8);
                }
                Op::ReadOnly { path, optional } => {
                    self.u8(READ_ONLY);
                    self.cstr(path);
                    self.u8(optional as u8);
                }
                Op::Hostname { name } => {
                    self.u8(HOSTNAME);
                    self.cstr(name);
                }
                Op::LoopbackUp => self.u8(LOOPBACK_UP),
                Op::PivotRoot => self.u8(PIVOT_ROOT),
                Op::MoveRoot => self.u8(MOVE_ROOT),
                Op::Chdir { path } => {
                    self.u8(CHDIR);
                    self.cstr(path);
                }
                Op::Setsid => self.u8(SETSID),
                Op::ControllingTty => self.u8(CONTROLLING_TTY),
                Op::NoNewPrivs => self.u8(NO_NEW_PRIVS),
                Op::Seccomp { filter } => {
                    self.u8(SECCOMP);
                    self.u32(filter.len() as u32);
                    self.buf.extend_from_slice(filter);
                }
                Op::Capabilities { keep } => {
                    self.u8(CAPABILITIES);
                    self.buf.extend_from_slice(&keep.to_le_bytes());
                }
                Op::Fail { errno } => {
                    self.u8(FAIL);
                    self.u32(errno);
                }
                Op::Exec {
                    candidates,
                    argv,
                    envp,
                } => {
                    self.u8(EXEC);
                    for list in [candidates, argv, envp] {
                        self.u32(list.count);
                        self.buf.extend_from_slice(list.bytes);
                    }
                }
            }
        }

        /// Encodes a list of strings for `Op::Exec`; the bytes live in
        /// `storage` so that the op can borrow them.
        pub fn strs<'s, I, S>(storage: &'s mut Vec<u8>, items: I) -> Strs<'s>
        where
            I: IntoIterator<Item = S>,
            S: AsRef<CStr>,
        {
            storage.clear();
            let mut count = 0;
            for item in items {
                let bytes = item.as_ref().to_bytes_with_nul();
                storage.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                storage.extend_from_slice(bytes);
                count += 1;
            }
            Strs {
                count,
                bytes: storage,
            }
        }

        /// The finished buffer: header with the body length, then the body.
        pub fn finish(mut self) -> Vec<u8> {
            let len = (self.buf.len() - HEADER_LEN) as u32;
            self.buf[8..12].copy_from_slice(&len.to_le_bytes());
            self.buf
        }

        fn u8(&mut self, v: u8) {
            self.buf.push(v);
        }
        fn u32(&mut self, v: u32) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        fn cstr(&mut self, s: &CStr) {
            let bytes = s.to_bytes_with_nul();
            self.u32(bytes.len() as u32);
            self.buf.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn sample(storage: &mut [Vec<u8>; 3]) -> std::vec::Vec<Op<'_>> {
        let [a, b, c] = storage;
        vec![
            Op::UnshareCgroup,
            Op::Propagation {
                flags: ms::REC | ms::SLAVE,
            },
            Op::BindRoot {
                path: c"/r",
                flags: 4,
            },
            Op::Mount {
                source: c"proc",
                target: c"proc",
                fstype: c"proc",
                flags: 14,
                data: c"",
                optional: false,
            },
            Op::Mkdir {
                path: c"dev/pts",
                mode: 0o755,
            },
            Op::Touch { path: c"dev/null" },
            Op::Symlink {
                target: c"/proc/self/fd",
                path: c"dev/fd",
            },
            Op::Mask {
                target: c"proc/kcore",
                optional: true,
            },
            Op::ReadOnly {
                path: c"proc/sys",
                optional: true,
            },
            Op::Hostname { name: c"box" },
            Op::LoopbackUp,
            Op::PivotRoot,
            Op::MoveRoot,
            Op::Chdir { path: c"/tmp" },
            Op::Setsid,
            Op::ControllingTty,
            Op::NoNewPrivs,
            Op::Seccomp {
                filter: &[1, 2, 3, 4, 5, 6, 7, 8],
            },
            Op::Capabilities { keep: 0xa80425fb },
            Op::Fail { errno: 5 },
            Op::Exec {
                candidates: Encoder::strs(a, [c"/bin/sh", c"/usr/bin/sh"]),
                argv: Encoder::strs(b, [c"sh", c"-c", c"echo hi"]),
                envp: Encoder::strs(c, [c"PATH=/bin"]),
            },
        ]
    }

    fn encode(ops: &[Op<'_>]) -> Vec<u8> {
        let mut e = Encoder::default();
        for op in ops {
            e.push(op);
        }
        e.finish()
    }

    #[test]
    fn round_trip() {
        let mut storage = Default::default();
        let ops = sample(&mut storage);
        let buf = encode(&ops);
        let len = parse_header(&buf[..HEADER_LEN]).unwrap();
        assert_eq!(len, buf.len() - HEADER_LEN);
        let plan = Plan::new(&buf[HEADER_LEN..]).unwrap();
        let decoded: Vec<Op<'_>> = plan.ops().map(Result::unwrap).collect();
        assert_eq!(decoded, ops);
        let Op::Exec { argv, .. } = decoded[decoded.len() - 1] else {
            panic!()
        };
        let args: Vec<&CStr> = argv.iter().collect();
        assert_eq!(args, [c"sh", c"-c", c"echo hi"]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let mut storage = Default::default();
        let ops = sample(&mut storage);
        let buf = encode(&ops);
        let body = &buf[HEADER_LEN..];
        for cut in 1..body.len() {
            // A cut that falls between two ops decodes as a shorter plan;
            // every other cut must be an error, never a panic.
            if let Ok(plan) = Plan::new(&body[..cut]) {
                assert!(
                    plan.ops().count() < ops.len(),
                    "cut at {cut} decoded everything"
                );
            }
        }
        for cut in 0..HEADER_LEN {
            assert_eq!(parse_header(&buf[..cut]), Err(Malformed::Truncated));
        }
    }

    #[test]
    fn hostile_buffers_are_refused() {
        // A string length pointing past the end.
        let mut body = vec![kind::HOSTNAME];
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(b"box\0");
        assert_eq!(Plan::new(&body).err(), Some(Malformed::Truncated));
        // A string without its NUL, and one with an inner NUL.
        for s in [&b"box"[..], b"b\0x\0"] {
            let mut body = vec![kind::HOSTNAME];
            body.extend_from_slice(&(s.len() as u32).to_le_bytes());
            body.extend_from_slice(s);
            assert_eq!(Plan::new(&body).err(), Some(Malformed::BadString));
        }
        // A list that claims more strings than it holds.
        let mut body = vec![kind::EXEC];
        body.extend_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(Plan::new(&body).err(), Some(Malformed::Truncated));
        // A flag that is not 0 or 1.
        assert_eq!(
            Plan::new(&[kind::READ_ONLY, 1, 0, 0, 0, 0, 2]).err(),
            Some(Malformed::BadBool)
        );
        // Unknown kinds, bad magic, bad version, oversized bodies.
        assert_eq!(Plan::new(&[0xEE]).err(), Some(Malformed::UnknownOp(0xEE)));
        let mut header = encode(&[]);
        assert_eq!(parse_header(&header), Ok(0));
        header[4] = 9;
        assert_eq!(parse_header(&header), Err(Malformed::BadVersion));
        header[4] = VERSION;
        header[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_header(&header), Err(Malformed::TooLong));
        header[0] = b'X';
        assert_eq!(parse_header(&header), Err(Malformed::BadMagic));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small xorshift fuzz: decoding arbitrary bytes returns, whatever it returns.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut body = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for i in 0..(x % 64) {
                body.push((x >> (i % 56)) as u8 % 22);
            }
            if let Ok(plan) = Plan::new(&body) {
                for op in plan.ops() {
                    let _ = std::format!("{}", op.unwrap());
                }
            }
        }
    }
}

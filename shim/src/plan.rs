//! The plan: what the shim does inside the new namespaces, as data.
//!
//! The runner decides everything and encodes a list of operations into one
//! flat buffer; the shim decodes it without allocating and performs the
//! operations in order. The `ops!` table below is the only definition of
//! the operations: it makes the enum, the kind numbers, the decoder and the
//! encoder. How an operation is named in errors is the runner's business.
//!
//! Wire format (all integers little-endian):
//!
//! ```text
//! header: b"HUSK" | version: u8 | 3 reserved bytes | body length: u32
//! body:   op*
//! op:     kind: u8 | its fields in table order
//! u32/u64/bool: 4/8/1 bytes (a bool is 0 or 1)
//! string: length including the NUL: u32 | bytes | NUL
//! bytes:  length: u32 | bytes
//! list:   count: u32 | string*
//! ```
//!
//! The decoder trusts nothing: every length is bounds-checked, every string
//! must end in its own NUL and hold no other, unknown kinds are refused, and
//! trailing bytes are an error.

use core::ffi::CStr;
use core::fmt;

pub const MAGIC: [u8; 4] = *b"HUSK";
pub const VERSION: u8 = 7;
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
    let len = u32::decode(&mut c)? as usize;
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
        <&CStr>::decode(&mut self.cursor).ok()
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
    pub const UNBINDABLE: u32 = 1 << 17;
    pub const PRIVATE: u32 = 1 << 18;
    pub const SLAVE: u32 = 1 << 19;
    pub const SHARED: u32 = 1 << 20;
    pub const STRICTATIME: u32 = 1 << 24;
}

/// Kernel features the shim can be told to treat as missing (ENOSYS), so
/// that the tests run its fallbacks on kernels that have them
/// (`Op::Pretend`).
pub mod missing {
    /// openat2 (5.6): paths are then walked one component at a time.
    pub const OPENAT2: u32 = 1;
}

/// The table of operations: `kind => Name { field: type, ... }`, in the one
/// place the wire format is defined. Fields are encoded in table order.
macro_rules! ops {
    ($lt:lifetime; $(
        $(#[$doc:meta])*
        $kind:literal => $name:ident $({ $($field:ident : $ty:ty),* $(,)? })?
    ),* $(,)?) => {
        /// One operation of the plan.
        ///
        /// Paths named "in the root" are relative to the root file system
        /// and are resolved by the shim beneath the root (`AttachRoot`),
        /// refusing every symlink (ELOOP) and `..`: a hostile rootfs cannot
        /// send a mount, a file or a directory outside itself, and a path
        /// swapped for a symlink mid-way only makes the start fail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Op<$lt> {
            $( $(#[$doc])* $name $({ $($field: $ty),* })? ),*
        }

        impl<$lt> Op<$lt> {
            /// How many kinds there are (kinds are 1..=COUNT).
            pub const COUNT: u8 = [$($kind),*].len() as u8;

            pub fn kind(&self) -> u8 {
                match self {
                    $( Op::$name $({ $($field: _),* })? => $kind ),*
                }
            }

            fn decode(c: &mut Cursor<$lt>) -> Result<Op<$lt>, Malformed> {
                Ok(match u8::decode(c)? {
                    $( $kind => Op::$name $({ $($field: <$ty as Wire<$lt>>::decode(c)?),* })?, )*
                    kind => return Err(Malformed::UnknownOp(kind)),
                })
            }

            #[cfg(any(test, feature = "encode"))]
            fn encode(&self, out: &mut encode::Buf) {
                match self {
                    $( Op::$name $({ $($field),* })? => {
                        out.push($kind);
                        $($( Wire::encode($field, out); )*)?
                    } )*
                }
            }

            /// One of each kind, with made-up fields: the tests' sample.
            #[cfg(test)]
            pub fn examples() -> std::vec::Vec<Op<'static>> {
                std::vec![$( Op::$name $({ $($field: Wire::example()),* })? ),*]
            }
        }
    };
}

ops! { 'a;
    /// `unshare(flags)`. The cgroup namespace is unshared once the runner
    /// has moved the shim into the container's cgroup, so that it is
    /// rooted there.
    1 => Unshare { flags: u32 },
    /// `setns(fd, nstype)` on an fd the runner handed over (a namespace
    /// to join), then close it.
    2 => SetNs { fd: u32, nstype: u32 },
    /// `mount("", "/", "", flags)`: the propagation of every mount.
    3 => Propagation { flags: u32 },
    /// Attach the detached mount tree the runner made of the rootfs
    /// (`open_tree(OPEN_TREE_CLONE)` of the fd it opened, never a name) on
    /// top of `/`, give it `propagation` recursively, and keep it as the
    /// root every later path is resolved beneath.
    4 => AttachRoot { fd: u32, propagation: u32 },
    /// `mount(source, target, fstype, flags, data)`, target in the root.
    /// Empty strings are passed as they are. `optional`: a missing target
    /// is skipped.
    5 => Mount {
        source: &'a CStr,
        target: &'a CStr,
        fstype: &'a CStr,
        flags: u32,
        data: &'a CStr,
        optional: bool,
    },
    /// `mkdir(path, mode)` in the root; an existing directory is fine.
    6 => Mkdir { path: &'a CStr, mode: u32 },
    /// Create an empty regular file in the root, to mount a node over.
    7 => Touch { path: &'a CStr, mode: u32 },
    /// `symlink(target, path)`, path in the root.
    8 => Symlink { target: &'a CStr, path: &'a CStr },
    /// Hide `target`: a directory behind a tmpfs mounted with `flags` and
    /// `data`, a file behind the bind of `null` (in the root) after
    /// checking that it is the character device 1:3 (runc's
    /// CVE-2025-31133).
    9 => Mask {
        target: &'a CStr,
        null: &'a CStr,
        flags: u32,
        data: &'a CStr,
        optional: bool,
    },
    /// Remount the mount at `path` (in the root) adding the per-mount
    /// flags `set` to the ones it has but `clear` (a bind remount would
    /// otherwise clear them all, and some are locked); with `bind`, first
    /// bind `path` recursively onto itself, so that only it changes.
    10 => RemountBind { path: &'a CStr, bind: bool, set: u32, clear: u32, optional: bool },
    /// `sethostname(name)`.
    11 => Hostname { name: &'a CStr },
    /// Bring `lo` up in the new network namespace.
    12 => LoopbackUp,
    /// Make the root the root: pivot_root(".", ".") from inside it, then
    /// detach the old root so nothing of the host tree stays reachable.
    13 => PivotRoot,
    /// Instead of `PivotRoot` where it cannot work (the host's root is the
    /// kernel's initial rootfs): chroot into the root attached over /.
    14 => ChrootRoot,
    /// `chdir(path)`, after the pivot.
    15 => Chdir { path: &'a CStr },
    /// `setsid()`: no controlling terminal, so no TIOCSTI into the caller's.
    16 => Setsid,
    /// Make stdin (the runner's pseudo-terminal for the container) the
    /// controlling terminal, after `Setsid`.
    17 => ControllingTty,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    18 => NoNewPrivs,
    /// Install a classic BPF seccomp filter (`struct sock_filter` array).
    19 => Seccomp { filter: &'a [u8] },
    /// Keep exactly the capabilities in `keep`: bounding set, then ambient
    /// cleared, then effective = permitted = `keep` with `inheritable`,
    /// then `ambient` raised (an OCI config's; 0 for husk's own).
    20 => Capabilities { keep: u64, inheritable: u64, ambient: u64 },
    /// Fail with `errno`: the runner's failure-injection knob for tests.
    21 => Fail { errno: u32 },
    /// Treat the kernel features in `missing` (`missing::*`) as absent:
    /// the tests' way to run the fallbacks on a kernel that has them.
    22 => Pretend { missing: u32 },
    /// Stay as PID 1 (`--init`): fork; the child goes on with the plan
    /// (the exec) in a process group of its own, made the terminal's
    /// foreground group with `tty`; this process forwards every signal it
    /// can catch to the child, reaps every process that ends, and exits
    /// with the child's status (128+N for signal N). It never execs, so
    /// it keeps the parent-death signal the runner set.
    23 => Init { tty: bool },
    /// `setgroups(groups)` (u32s, little-endian), `setgid(gid)`,
    /// `setuid(uid)`, `umask(umask)`. After `Capabilities`, a uid other
    /// than 0 loses the permitted and effective sets, as the kernel does
    /// on setuid (Docker's `-u`). With `keep_caps` it comes before them
    /// (an OCI process's sets are its own, whatever its uid, as runc
    /// does): the permitted set stays, and the effective one is raised to
    /// it again for `Capabilities` to work with.
    24 => SetIds { uid: u32, gid: u32, groups: &'a [u8], umask: u32, keep_caps: bool },
    /// `fchdir` to the directory fd the runner handed over (a running
    /// container's root, for `exec`), then `chroot(".")`.
    25 => EnterRoot { fd: u32 },
    /// `prctl(PR_SET_DUMPABLE, 0)` until the exec resets it: a process
    /// joining a running container is there before its root and
    /// capabilities are the container's, and must not be ptraced or have
    /// its /proc entries read by the container meanwhile (runc's
    /// CVE-2016-9962).
    26 => Undumpable,
    /// Attach a detached mount tree the runner made (a volume's
    /// `open_tree` clone, flags already set) on `target` in the root, then
    /// give it `propagation` recursively: the source is never named in
    /// the container's mount namespace, the target never through a
    /// symlink.
    27 => AttachMount { fd: u32, target: &'a CStr, propagation: u32 },
    /// Close the report (the runner's `create` learns that the setup
    /// succeeded and exits), then wait for one byte on `fd` (the entry's
    /// exec fifo, written by `start`), and close it: an OCI container
    /// waits here between `create` and `start`. An exec that fails after
    /// it has nobody to tell: the shim exits 127 (not found) or 126, as a
    /// shell would, for the caller to see.
    28 => AwaitStart { fd: u32 },
    /// Write `value` to `path` (proc/sys/...) in the root, opened beneath
    /// it without following symlinks and checked to be on a procfs (the
    /// one just mounted in the container's namespaces): a namespaced
    /// sysctl of an OCI config.
    29 => Sysctl { path: &'a CStr, value: &'a CStr },
    /// `mknod(path, mode, dev)` in the root (`mode` holds the file type,
    /// `dev` the kernel's 32-bit encoding; no umask applies), then its
    /// owner set to `uid`:`gid`: a device node of an OCI config's
    /// `linux.devices`.
    30 => Mknod { path: &'a CStr, mode: u32, dev: u32, uid: u32, gid: u32 },
    /// The `count` fds the runner passed from `from` on become the
    /// program's fds 3 and up, left open across the exec (an OCI caller's
    /// `--preserve-fds`). After `AwaitStart`, when the shim's own 3 and 4
    /// are closed.
    31 => PassFds { from: u32, count: u32 },
    /// `execve` each candidate path in turn (the command looked up in the
    /// container's PATH) with `argv` and `envp`.
    32 => Exec { candidates: Strs<'a>, argv: Strs<'a>, envp: Strs<'a> },
}

/// A field type of the wire format.
pub trait Wire<'a>: Sized {
    fn decode(c: &mut Cursor<'a>) -> Result<Self, Malformed>;
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf);
    #[cfg(test)]
    fn example() -> Self;
}

impl Wire<'_> for u8 {
    fn decode(c: &mut Cursor<'_>) -> Result<u8, Malformed> {
        Ok(c.take(1)?[0])
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        out.push(*self);
    }
    #[cfg(test)]
    fn example() -> u8 {
        7
    }
}

impl Wire<'_> for bool {
    fn decode(c: &mut Cursor<'_>) -> Result<bool, Malformed> {
        match u8::decode(c)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed::BadBool),
        }
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        out.push(*self as u8);
    }
    #[cfg(test)]
    fn example() -> bool {
        true
    }
}

impl Wire<'_> for u32 {
    fn decode(c: &mut Cursor<'_>) -> Result<u32, Malformed> {
        let b = c.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[cfg(test)]
    fn example() -> u32 {
        0x0102_0304
    }
}

impl Wire<'_> for u64 {
    fn decode(c: &mut Cursor<'_>) -> Result<u64, Malformed> {
        let b = c.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[cfg(test)]
    fn example() -> u64 {
        0xa804_25fb
    }
}

impl<'a> Wire<'a> for &'a [u8] {
    fn decode(c: &mut Cursor<'a>) -> Result<&'a [u8], Malformed> {
        let len = u32::decode(c)? as usize;
        c.take(len)
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        (self.len() as u32).encode(out);
        out.extend_from_slice(self);
    }
    #[cfg(test)]
    fn example() -> &'a [u8] {
        &[1, 2, 3, 4, 5, 6, 7, 8]
    }
}

impl<'a> Wire<'a> for &'a CStr {
    fn decode(c: &mut Cursor<'a>) -> Result<&'a CStr, Malformed> {
        CStr::from_bytes_with_nul(<&[u8]>::decode(c)?).map_err(|_| Malformed::BadString)
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        self.to_bytes_with_nul().encode(out);
    }
    #[cfg(test)]
    fn example() -> &'a CStr {
        c"proc/sys"
    }
}

impl<'a> Wire<'a> for Strs<'a> {
    fn decode(c: &mut Cursor<'a>) -> Result<Strs<'a>, Malformed> {
        let count = u32::decode(c)?;
        let start = c.0;
        for _ in 0..count {
            <&CStr>::decode(c)?;
        }
        let used = start.len() - c.0.len();
        Ok(Strs {
            count,
            bytes: &start[..used],
        })
    }
    #[cfg(any(test, feature = "encode"))]
    fn encode(&self, out: &mut encode::Buf) {
        self.count.encode(out);
        out.extend_from_slice(self.bytes);
    }
    #[cfg(test)]
    fn example() -> Strs<'a> {
        // Two strings, "sh" and "-c", as `Encoder::strs` lays them out.
        Strs {
            count: 2,
            bytes: b"\x03\0\0\0sh\0\x03\0\0\0-c\0",
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

/// What is left of the buffer being decoded.
#[derive(Clone, Copy)]
pub struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(Malformed::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

#[cfg(any(test, feature = "encode"))]
pub use encode::Encoder;

#[cfg(any(test, feature = "encode"))]
mod encode {
    use super::*;
    extern crate alloc;
    pub type Buf = alloc::vec::Vec<u8>;

    /// Builds a plan: header and body in one buffer, ready to write.
    pub struct Encoder {
        buf: Buf,
    }

    impl Default for Encoder {
        fn default() -> Self {
            let mut buf = Buf::with_capacity(2048);
            buf.extend_from_slice(&MAGIC);
            buf.extend_from_slice(&[VERSION, 0, 0, 0]);
            buf.extend_from_slice(&0u32.to_le_bytes());
            Encoder { buf }
        }
    }

    impl Encoder {
        pub fn push(&mut self, op: &Op<'_>) {
            op.encode(&mut self.buf);
        }

        /// Encodes a list of strings for `Op::Exec`; the bytes live in
        /// `storage` so that the op can borrow them.
        pub fn strs<'s, I, S>(storage: &'s mut Buf, items: I) -> Strs<'s>
        where
            I: IntoIterator<Item = S>,
            S: AsRef<CStr>,
        {
            storage.clear();
            let mut count = 0;
            for item in items {
                item.as_ref().encode(storage);
                count += 1;
            }
            Strs {
                count,
                bytes: storage,
            }
        }

        /// The finished buffer: header with the body length, then the body.
        pub fn finish(mut self) -> Buf {
            let len = (self.buf.len() - HEADER_LEN) as u32;
            self.buf[8..12].copy_from_slice(&len.to_le_bytes());
            self.buf
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn encode(ops: &[Op<'_>]) -> Vec<u8> {
        let mut e = Encoder::default();
        for op in ops {
            e.push(op);
        }
        e.finish()
    }

    #[test]
    fn every_kind_round_trips() {
        let ops = Op::examples();
        assert_eq!(ops.len(), Op::COUNT as usize);
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(op.kind() as usize, i + 1, "kinds are 1..=COUNT in order");
        }
        let buf = encode(&ops);
        let len = parse_header(&buf[..HEADER_LEN]).unwrap();
        assert_eq!(len, buf.len() - HEADER_LEN);
        let plan = Plan::new(&buf[HEADER_LEN..]).unwrap();
        let decoded: Vec<Op<'_>> = plan.ops().map(Result::unwrap).collect();
        assert_eq!(decoded, ops);
        let Some(Op::Exec { argv, .. }) = decoded.last() else {
            panic!("the last example is not Exec")
        };
        let args: Vec<&CStr> = argv.iter().collect();
        assert_eq!(args, [c"sh", c"-c"]);
        let mut storage = Vec::new();
        assert_eq!(Encoder::strs(&mut storage, [c"sh", c"-c"]), Strs::example());
    }

    #[test]
    fn every_truncation_is_refused() {
        let ops = Op::examples();
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
        let hostname = Op::Hostname { name: c"" }.kind();
        // A string length pointing past the end.
        let mut body = vec![hostname];
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(b"box\0");
        assert_eq!(Plan::new(&body).err(), Some(Malformed::Truncated));
        // A string without its NUL, and one with an inner NUL.
        for s in [&b"box"[..], b"b\0x\0"] {
            let mut body = vec![hostname];
            body.extend_from_slice(&(s.len() as u32).to_le_bytes());
            body.extend_from_slice(s);
            assert_eq!(Plan::new(&body).err(), Some(Malformed::BadString));
        }
        // A list that claims more strings than it holds.
        let exec = Op::examples().last().unwrap().kind();
        let mut body = vec![exec];
        body.extend_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(Plan::new(&body).err(), Some(Malformed::Truncated));
        // A flag that is not 0 or 1: RemountBind's `bind`, after an empty path.
        let remount = Op::RemountBind {
            path: c"",
            bind: false,
            set: 0,
            clear: 0,
            optional: false,
        }
        .kind();
        assert_eq!(
            Plan::new(&[remount, 1, 0, 0, 0, 0, 2]).err(),
            Some(Malformed::BadBool)
        );
        // Unknown kinds, bad magic, bad version, oversized bodies.
        assert_eq!(Plan::new(&[0xEE]).err(), Some(Malformed::UnknownOp(0xEE)));
        assert_eq!(Plan::new(&[0]).err(), Some(Malformed::UnknownOp(0)));
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
        // A small xorshift fuzz: decoding arbitrary bytes returns, whatever
        // it returns; kinds are biased towards real ones.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut body = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for i in 0..(x % 64) {
                body.push((x >> (i % 56)) as u8 % (Op::COUNT + 2));
            }
            if let Ok(plan) = Plan::new(&body) {
                for op in plan.ops() {
                    let _ = std::format!("{:?}", op.unwrap());
                }
            }
        }
    }
}

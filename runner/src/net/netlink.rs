//! A minimal rtnetlink client: the few requests bridge networking makes
//! (links, addresses, a default route), each one message on a
//! NETLINK_ROUTE socket answered by the kernel's ack. husk's own rather
//! than netlink-packet-route, which would not fit the x86_64 runner's size
//! budget: it builds requests and reads acks, and parses nothing else.
//!
//! A socket acts in the network namespace it was opened in, so a caller
//! acting inside a container's namespace opens one after setns.

use std::fmt::Display;
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use libc::c_int;

use crate::error::{Error, Result};

/// From linux/veth.h, which libc does not carry.
const VETH_INFO_PEER: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
/// Netlink pads every message and attribute to this.
const ALIGN: usize = 4;
/// Make the object, and fail if it is there already.
const CREATE: c_int = libc::NLM_F_CREATE | libc::NLM_F_EXCL;

/// A NETLINK_ROUTE socket and the sequence number of its last request.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let fd = socket(libc::NETLINK_ROUTE, "NETLINK_ROUTE")?;
        Ok(Netlink { fd, seq: 0 })
    }

    pub fn add_bridge(&mut self, name: &str) -> Result<()> {
        let what = || format!("add bridge {name}");
        valid_name(name).map_err(|e| fail(what(), &e))?;
        let mut req = Request::new(libc::RTM_NEWLINK, CREATE, &ifinfomsg(0, 0, 0));
        req.string(libc::IFLA_IFNAME, name)
            .nest(libc::IFLA_LINKINFO, &[], |r| {
                r.string(libc::IFLA_INFO_KIND, "bridge");
            });
        self.call(req).map_err(|e| fail(what(), &e))
    }

    /// A veth pair `name`–`peer`, with `peer` made directly in the network
    /// namespace `peer_netns`: it is never on the host, not even for a moment.
    pub fn add_veth(&mut self, name: &str, peer: &str, peer_netns: Option<RawFd>) -> Result<()> {
        let what = || format!("add veth {name} with peer {peer}");
        for n in [name, peer] {
            valid_name(n).map_err(|e| fail(what(), &e))?;
        }
        let mut req = Request::new(libc::RTM_NEWLINK, CREATE, &ifinfomsg(0, 0, 0));
        req.string(libc::IFLA_IFNAME, name)
            .nest(libc::IFLA_LINKINFO, &[], |r| {
                r.string(libc::IFLA_INFO_KIND, "veth")
                    .nest(libc::IFLA_INFO_DATA, &[], |r| {
                        // The peer is described as a link of its own.
                        r.nest(VETH_INFO_PEER, &ifinfomsg(0, 0, 0), |r| {
                            r.string(libc::IFLA_IFNAME, peer);
                            if let Some(fd) = peer_netns {
                                r.attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes());
                            }
                        });
                    });
            });
        self.call(req).map_err(|e| fail(what(), &e))
    }

    /// The index of link `name`, asked of this socket's namespace (which
    /// if_nametoindex, asking the calling thread's, might not be).
    pub fn index(&self, name: &str) -> Result<u32> {
        let what = || format!("index of {name}");
        valid_name(name).map_err(|e| fail(what(), &e))?;
        let mut ifr = ifreq();
        for (to, from) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *to = from as libc::c_char;
        }
        self.ioctl(libc::SIOCGIFINDEX, &mut ifr)
            .map_err(|e| fail(what(), &e))?;
        // SAFETY: SIOCGIFINDEX succeeded, so it wrote this member.
        Ok(unsafe { ifr.ifr_ifru.ifru_ifindex } as u32)
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let up = libc::IFF_UP as u32;
        let req = Request::new(libc::RTM_SETLINK, 0, &ifinfomsg(index, up, up));
        self.call(req)
            .map_err(|e| fail(format_args!("set {} up", self.name(index)), &e))
    }

    /// Makes link `index` a port of the bridge `master`.
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut req = Request::new(libc::RTM_SETLINK, 0, &ifinfomsg(index, 0, 0));
        req.attr(libc::IFLA_MASTER, &master.to_ne_bytes());
        self.call(req).map_err(|e| {
            let what = format!("set {} master {}", self.name(index), self.name(master));
            fail(what, &e)
        })
    }

    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let (family, octets) = match addr {
            IpAddr::V4(a) => (libc::AF_INET, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6, a.octets().to_vec()),
        };
        // struct ifaddrmsg.
        let header = [
            &[family as u8, prefix, 0, libc::RT_SCOPE_UNIVERSE][..],
            &index.to_ne_bytes(),
        ]
        .concat();
        let mut req = Request::new(libc::RTM_NEWADDR, CREATE, &header);
        // The same address as both: no point-to-point peer.
        req.attr(libc::IFA_LOCAL, &octets)
            .attr(libc::IFA_ADDRESS, &octets);
        self.call(req).map_err(|e| {
            let what = format!("add address {addr}/{prefix} to {}", self.name(index));
            fail(what, &e)
        })
    }

    /// A default route in the main table via `gateway`, which a link's
    /// address (on a link that is up) must make reachable.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        // struct rtmsg: the family, no destination or source (0/0), tos 0,
        // then table, protocol, scope and type; no flags.
        let route = [
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            libc::RT_SCOPE_UNIVERSE,
            libc::RTN_UNICAST,
        ];
        let header = [&[libc::AF_INET as u8, 0, 0, 0][..], &route, &[0; 4]].concat();
        let mut req = Request::new(libc::RTM_NEWROUTE, CREATE, &header);
        req.attr(libc::RTA_GATEWAY, &gateway.octets());
        self.call(req)
            .map_err(|e| fail(format_args!("add default route via {gateway}"), &e))
    }

    /// Deletes link `index`; for a veth, both ends go.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let req = Request::new(libc::RTM_DELLINK, 0, &ifinfomsg(index, 0, 0));
        self.call(req)
            .map_err(|e| fail(format_args!("delete link {}", self.name(index)), &e))
    }

    /// Sends `req` and waits for the kernel's ack: the errno it carries.
    fn call(&mut self, req: Request) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let msg = req.finish(self.seq);
        // SAFETY: send reads msg.len() bytes of msg.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        // An ack holds its request (and maybe an extended ack message);
        // requests here are a few hundred bytes.
        let mut buf = [0u8; 4096];
        loop {
            let Some(n) = recv(self.fd.as_raw_fd(), &mut buf, 0)? else {
                continue;
            };
            match ack(&buf[..n], self.seq) {
                Some(0) => return Ok(()),
                Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
    }

    /// Link `index`'s name, for an error message; its number if it has none.
    fn name(&self, index: u32) -> String {
        let mut ifr = ifreq();
        ifr.ifr_ifru.ifru_ifindex = index as c_int;
        if self.ioctl(libc::SIOCGIFNAME, &mut ifr).is_err() {
            return format!("link {index}");
        }
        let name: Vec<u8> = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&name).into_owned()
    }

    /// A device ioctl on this socket, which the kernel answers from the
    /// socket's network namespace.
    fn ioctl(&self, request: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
        // SAFETY: SIOCGIFINDEX and SIOCGIFNAME read and write one ifreq.
        // (The request is a c_ulong for glibc, a c_int for musl.)
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as _, ifr as *mut libc::ifreq) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A netlink socket of `protocol` (`name` in errors), bound, in the
/// calling thread's network namespace.
pub(super) fn socket(protocol: c_int, name: &str) -> Result<OwnedFd> {
    let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers; the fd it returns is ours.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, flags, protocol) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(fail(format_args!("socket(AF_NETLINK, {name})"), &e));
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Port 0: the kernel picks this socket's port id.
    let addr = kernel_address();
    // SAFETY: bind reads a sockaddr_nl of the size given.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if bound < 0 {
        return Err(fail("bind(AF_NETLINK)", &io::Error::last_os_error()));
    }
    Ok(fd)
}

/// One read of socket `fd` into `buf`: the length of what the kernel sent,
/// or None for what another process sent. Only the kernel (port 0) is
/// believed: in a container's namespace, its processes could write to a
/// socket of ours.
pub(super) fn recv(fd: RawFd, buf: &mut [u8], flags: c_int) -> io::Result<Option<usize>> {
    loop {
        let mut from = kernel_address();
        let mut from_len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: recvfrom writes at most buf.len() bytes to buf and at
        // most from_len bytes to from.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
                (&mut from as *mut libc::sockaddr_nl).cast(),
                &mut from_len,
            )
        };
        if n >= 0 {
            return Ok((from.nl_pid == 0).then_some(n as usize));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// One request: a netlink header, its family's fixed header, then
/// attributes, each padded to ALIGN.
pub(super) struct Request(Vec<u8>);

impl Request {
    /// A request of type `kind` that asks for an ack, with `flags` besides.
    pub(super) fn new(kind: u16, flags: c_int, header: &[u8]) -> Request {
        let flags = (flags | libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut req = Request(Vec::with_capacity(128));
        // struct nlmsghdr: the length and sequence number are set by
        // `finish`; port 0 is the kernel.
        req.0.extend_from_slice(&[0; 4]);
        req.0.extend_from_slice(&kind.to_ne_bytes());
        req.0.extend_from_slice(&flags.to_ne_bytes());
        req.0.extend_from_slice(&[0; 8]);
        req.put(header);
        req
    }

    fn put(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(ALIGN), 0);
    }

    /// An attribute; `data` is at most a name, an address or a family
    /// header, so its length fits the u16.
    pub(super) fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Request {
        self.0
            .extend_from_slice(&((NLA_HDRLEN + data.len()) as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.put(data);
        self
    }

    /// A NUL-terminated string attribute.
    pub(super) fn string(&mut self, kind: u16, s: &str) -> &mut Request {
        self.attr(kind, &[s.as_bytes(), &[0]].concat())
    }

    /// A nested attribute: `header`, then the attributes `body` appends.
    pub(super) fn nest(
        &mut self,
        kind: u16,
        header: &[u8],
        body: impl FnOnce(&mut Request),
    ) -> &mut Request {
        let start = self.0.len();
        self.attr(kind, header);
        body(self);
        // Its length spans what it holds, padding included.
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The message, with its length and sequence number.
    pub(super) fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.0
    }
}

/// The errno in the ack of request `seq` among the messages of `reply`
/// (0: done), or None if it is not there.
pub(super) fn ack(mut reply: &[u8], seq: u32) -> Option<i32> {
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    while reply.len() >= NLMSG_HDRLEN {
        let len = u32_at(reply, 0) as usize;
        if len < NLMSG_HDRLEN || len > reply.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        // struct nlmsgerr begins with the negated errno.
        if kind == libc::NLMSG_ERROR as u16 && u32_at(reply, 8) == seq && len >= NLMSG_HDRLEN + 4 {
            return Some((u32_at(reply, NLMSG_HDRLEN) as i32).wrapping_neg());
        }
        reply = &reply[len.next_multiple_of(ALIGN).min(reply.len())..];
    }
    None
}

/// struct ifinfomsg for link `index` (0: a new one): `flags` set under
/// the mask `change`.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0; 16];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// EINVAL for what is no link name: empty, too long for IFNAMSIZ, or with
/// a NUL the kernel would cut the name at.
pub(super) fn valid_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// The kernel's netlink address (port 0), also the unbound one.
fn kernel_address() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is integers only; all zeroes is valid.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr
}

fn ifreq() -> libc::ifreq {
    // SAFETY: ifreq is integers, arrays and pointers; all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

fn fail(what: impl Display, err: &io::Error) -> Error {
    Error::os(format_args!("netlink: {what}"), err)
}

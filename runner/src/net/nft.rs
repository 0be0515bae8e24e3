//! A minimal nf_tables client: the few chains bridge networking needs
//! (masquerading out of a network, isolating networks from each other,
//! published ports), all in the table `ip husk`, made and removed through
//! NETLINK_NETFILTER as the nft tool does, but without it or libnftnl.
//!
//! Each call is one nf_tables batch, which the kernel applies whole or not
//! at all. The kernel handles a batch within the send, so by the time
//! send returns every ack it will send is queued on the socket.

use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use libc::c_int;

use super::netlink::{ack, recv, socket, valid_name, Request};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One published port: traffic to HOSTIP:HOSTPORT (any local address when
/// host_ip is None) goes to the container's address:port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

const TABLE: &str = "husk";

// From linux/netfilter/nf_tables.h, whose attributes libc does not carry.
// The table is attribute 1 of tables, chains and rules alike.
const NFTA_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
// Attribute 1 of payload, meta, immediate and fib: the register written;
// of bitwise and cmp: the register read.
const NFTA_REG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_META_KEY: u16 = 2;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;

const NESTED: u16 = libc::NLA_F_NESTED as u16;
/// The 16-byte registers every kernel has (the nft tool uses them too).
const REG1: u32 = libc::NFT_REG_1 as u32;
const REG2: u32 = libc::NFT_REG_2 as u32;
const EQ: u32 = libc::NFT_CMP_EQ as u32;
const NEQ: u32 = libc::NFT_CMP_NEQ as u32;
/// The chains here are made, and must not be there yet.
const EXCL: c_int = libc::NLM_F_CREATE | libc::NLM_F_EXCL;

/// A network's rules: made when its bridge is made, removed with it.
/// `tag` is a short name (<= 20 bytes, [a-z0-9-]) husk picks, used in
/// chain names.
pub fn add_network(tag: &str, bridge: &str, subnet: Ipv4Addr, prefix: u8) -> Result<()> {
    check_tag(tag)?;
    if let Err(e) = valid_name(bridge) {
        return Err(Error::os(format_args!("nftables: bridge {bridge:?}"), &e));
    }
    if prefix > 32 {
        let e = io::Error::from_raw_os_error(libc::EINVAL);
        return Err(Error::os(format_args!("nftables: prefix /{prefix}"), &e));
    }
    let mask = ((!0u64 << (32 - prefix)) as u32).to_be_bytes();
    let net = (u32::from(subnet) & u32::from_be_bytes(mask)).to_be_bytes();
    let mut name = [0; libc::IFNAMSIZ];
    name[..bridge.len()].copy_from_slice(bridge.as_bytes());

    let mut b = Batch::new();
    b.add(libc::NFT_MSG_NEWTABLE, libc::NLM_F_CREATE, "");
    let post = b.chain(tag, "-post", "nat", libc::NF_INET_POST_ROUTING, 100);
    b.rule(&post, |r| {
        // Out of the network, but not to it: the containers' own traffic.
        ip(r, 12, mask, EQ, net);
        ip(r, 16, mask, NEQ, net);
        expr(r, "masq", &[], &[]);
    });
    b.rule(&post, |r| {
        // Published ports reached on the host's 127.0.0.1 are answered
        // to an address the container can reach.
        ifname(r, libc::NFT_META_OIFNAME, EQ, &name);
        ip(r, 12, [255, 0, 0, 0], EQ, [127, 0, 0, 0]);
        expr(r, "masq", &[], &[]);
    });
    let fwd = b.chain(tag, "-fwd", "filter", libc::NF_INET_FORWARD, 0);
    b.rule(&fwd, |r| {
        // All of husk's bridges are husk<N>: "husk*" compares the prefix.
        ifname(r, libc::NFT_META_IIFNAME, EQ, &name);
        ifname(r, libc::NFT_META_OIFNAME, EQ, b"husk");
        ifname(r, libc::NFT_META_OIFNAME, NEQ, &name);
        verdict(r, libc::NF_DROP);
    });
    b.send(0)
}

/// Removes the network's chains (missing ones are fine); when `last` is
/// true the whole table `ip husk` goes too.
pub fn remove_network(tag: &str, last: bool) -> Result<()> {
    remove(tag, &["-post", "-fwd"], last)
}

/// A container's published ports, to its address `addr`.
pub fn add_ports(tag: &str, addr: Ipv4Addr, ports: &[Port]) -> Result<()> {
    check_tag(tag)?;
    let mut b = Batch::new();
    b.add(libc::NFT_MSG_NEWTABLE, libc::NLM_F_CREATE, "");
    // From elsewhere, then from the host itself.
    let pre = b.chain(tag, "-pre", "nat", libc::NF_INET_PRE_ROUTING, -100);
    let out = b.chain(tag, "-out", "nat", libc::NF_INET_LOCAL_OUT, -100);
    for chain in [&pre, &out] {
        for p in ports {
            b.rule(chain, |r| port(r, addr, p));
        }
    }
    b.send(0)
}

/// Removes them; missing chains are fine.
pub fn remove_ports(tag: &str) -> Result<()> {
    remove(tag, &["-pre", "-out"], false)
}

/// Deletes chains `tag` + `suffixes` (made together, so all there or
/// none: ENOENT is fine), or with `last` the whole table, which takes
/// every chain in it. One batch: each batch that deletes costs an RCU
/// grace period (milliseconds) when its socket is closed, and a failed
/// one another, so neither is spent twice.
fn remove(tag: &str, suffixes: &[&str], last: bool) -> Result<()> {
    check_tag(tag)?;
    let mut b = Batch::new();
    if last {
        b.add(libc::NFT_MSG_DELTABLE, 0, "");
    } else {
        for suffix in suffixes {
            // The kernel deletes a chain's rules with it (5.10 too).
            b.add(libc::NFT_MSG_DELCHAIN, 0, &[tag, suffix].concat());
        }
    }
    b.send(libc::ENOENT)
}

/// `[ip daddr HOSTIP | fib daddr type local] tcp|udp dport HOSTPORT dnat
/// to ADDR:PORT`.
fn port(r: &mut Request, addr: Ipv4Addr, p: &Port) {
    match p.host_ip {
        Some(host) => ip(r, 16, [255; 4], EQ, host.octets()),
        None => {
            let flags = NFTA_FIB_F_DADDR;
            let be32 = [
                (NFTA_REG, REG1),
                (NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE),
                (NFTA_FIB_FLAGS, flags),
            ];
            expr(r, "fib", &be32, &[]);
            // The address type is a u32 in the kernel's byte order.
            cmp(r, EQ, &u32::from(libc::RTN_LOCAL).to_ne_bytes());
        }
    }
    let proto = match p.proto {
        Proto::Tcp => libc::IPPROTO_TCP,
        Proto::Udp => libc::IPPROTO_UDP,
    };
    meta(r, libc::NFT_META_L4PROTO);
    cmp(r, EQ, &[proto as u8]);
    // The destination port, in TCP's and UDP's headers alike.
    payload(r, libc::NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
    cmp(r, EQ, &p.host_port.to_be_bytes());
    let data = |r: &mut Request, reg, value: &[u8]| {
        expr(
            r,
            "immediate",
            &[(NFTA_REG, reg)],
            &[(NFTA_IMMEDIATE_DATA, value)],
        );
    };
    data(r, REG1, &addr.octets());
    data(r, REG2, &p.port.to_be_bytes());
    let be32 = [
        (NFTA_NAT_TYPE, libc::NFT_NAT_DNAT as u32),
        (NFTA_NAT_FAMILY, libc::NFPROTO_IPV4 as u32),
        (NFTA_NAT_REG_ADDR_MIN, REG1),
        (NFTA_NAT_REG_PROTO_MIN, REG2),
    ];
    expr(r, "nat", &be32, &[]);
}

/// `ip saddr|daddr & mask OP value`: the address `offset` bytes into the
/// IPv4 header. A whole address (mask all ones) is compared as is.
fn ip(r: &mut Request, offset: u32, mask: [u8; 4], op: u32, value: [u8; 4]) {
    payload(r, libc::NFT_PAYLOAD_NETWORK_HEADER, offset, 4);
    if mask != [255; 4] {
        let be32 = [
            (NFTA_REG, REG1),
            (NFTA_BITWISE_DREG, REG1),
            (NFTA_BITWISE_LEN, 4),
        ];
        let data = [(NFTA_BITWISE_MASK, &mask[..]), (NFTA_BITWISE_XOR, &[0; 4])];
        expr(r, "bitwise", &be32, &data);
    }
    cmp(r, op, &value);
}

/// `iifname|oifname OP name`: all IFNAMSIZ bytes of a name, or a prefix.
pub(super) fn ifname(r: &mut Request, key: c_int, op: u32, name: &[u8]) {
    meta(r, key);
    cmp(r, op, name);
}

fn payload(r: &mut Request, base: c_int, offset: u32, len: u32) {
    let be32 = [
        (NFTA_REG, REG1),
        (NFTA_PAYLOAD_BASE, base as u32),
        (NFTA_PAYLOAD_OFFSET, offset),
        (NFTA_PAYLOAD_LEN, len),
    ];
    expr(r, "payload", &be32, &[]);
}

fn meta(r: &mut Request, key: c_int) {
    expr(
        r,
        "meta",
        &[(NFTA_REG, REG1), (NFTA_META_KEY, key as u32)],
        &[],
    );
}

/// Compares register 1 with `value`, over `value`'s length.
fn cmp(r: &mut Request, op: u32, value: &[u8]) {
    expr(
        r,
        "cmp",
        &[(NFTA_REG, REG1), (NFTA_CMP_OP, op)],
        &[(NFTA_CMP_DATA, value)],
    );
}

/// Ends the rule with `verdict` (NF_DROP, NF_ACCEPT).
pub(super) fn verdict(r: &mut Request, verdict: c_int) {
    let code = (verdict as u32).to_be_bytes();
    element(r, "immediate", |r| {
        r.attr(NFTA_REG, &(libc::NFT_REG_VERDICT as u32).to_be_bytes())
            .nest(NFTA_IMMEDIATE_DATA | NESTED, &[], |r| {
                r.nest(NFTA_DATA_VERDICT | NESTED, &[], |r| {
                    r.attr(NFTA_VERDICT_CODE, &code);
                });
            });
    });
}

/// Expression `name`: its big-endian u32 attributes, then its data
/// attributes, each a value nested in the attribute.
fn expr(r: &mut Request, name: &str, be32: &[(u16, u32)], data: &[(u16, &[u8])]) {
    element(r, name, |r| {
        for (kind, value) in be32 {
            r.attr(*kind, &value.to_be_bytes());
        }
        for (kind, value) in data {
            r.nest(kind | NESTED, &[], |r| {
                r.attr(NFTA_DATA_VALUE, value);
            });
        }
    });
}

fn element(r: &mut Request, name: &str, body: impl FnOnce(&mut Request)) {
    r.nest(NFTA_LIST_ELEM | NESTED, &[], |r| {
        r.string(NFTA_EXPR_NAME, name)
            .nest(NFTA_EXPR_DATA | NESTED, &[], body);
    });
}

/// One nf_tables batch: its messages, and for each what it does to which
/// chain, to name the one that failed.
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    what: Vec<(c_int, String)>,
}

impl Batch {
    /// A batch, begun.
    pub(super) fn new() -> Batch {
        let mut b = Batch {
            bytes: Vec::with_capacity(1024),
            what: Vec::new(),
        };
        b.control(libc::NFNL_MSG_BATCH_BEGIN);
        b
    }

    /// Batch begin or end, for nf_tables: no family, res_id (big-endian)
    /// NFNL_SUBSYS_NFTABLES.
    fn control(&mut self, kind: c_int) {
        self.what.push((kind, String::new()));
        let header = [
            0,
            libc::NFNETLINK_V0 as u8,
            0,
            libc::NFNL_SUBSYS_NFTABLES as u8,
        ];
        self.push(Request::new(kind as u16, 0, &header));
    }

    /// Message `kind` about the table, or about its chain `chain` when not
    /// empty; `push` adds it once its other attributes are in.
    fn message(&mut self, kind: c_int, flags: c_int, chain: &str) -> Request {
        self.what.push((kind, chain.to_owned()));
        let kind16 = ((libc::NFNL_SUBSYS_NFTABLES << 8) | kind) as u16;
        let header = [libc::NFPROTO_IPV4 as u8, libc::NFNETLINK_V0 as u8, 0, 0];
        let mut r = Request::new(kind16, flags, &header);
        r.string(NFTA_TABLE, TABLE);
        if !chain.is_empty() {
            let name = match kind {
                libc::NFT_MSG_NEWCHAIN | libc::NFT_MSG_DELCHAIN => NFTA_CHAIN_NAME,
                _ => NFTA_RULE_CHAIN,
            };
            r.string(name, chain);
        }
        r
    }

    /// A message with no other attributes.
    fn add(&mut self, kind: c_int, flags: c_int, chain: &str) {
        let r = self.message(kind, flags, chain);
        self.push(r);
    }

    /// The last message begun, numbered by its place in the batch.
    fn push(&mut self, r: Request) {
        let seq = self.what.len() as u32 - 1;
        self.bytes.extend_from_slice(&r.finish(seq));
    }

    /// The base chain `tag` + `suffix` of `kind` ("nat", "filter") on
    /// `hook` at `priority`, accepting what its rules do not drop. Returns
    /// its name.
    fn chain(&mut self, tag: &str, suffix: &str, kind: &str, hook: c_int, priority: i32) -> String {
        let name = [tag, suffix].concat();
        let mut r = self.message(libc::NFT_MSG_NEWCHAIN, EXCL, &name);
        r.nest(NFTA_CHAIN_HOOK | NESTED, &[], |r| {
            r.attr(NFTA_HOOK_HOOKNUM, &(hook as u32).to_be_bytes())
                .attr(NFTA_HOOK_PRIORITY, &priority.to_be_bytes());
        })
        .attr(NFTA_CHAIN_POLICY, &(libc::NF_ACCEPT as u32).to_be_bytes())
        .string(NFTA_CHAIN_TYPE, kind);
        self.push(r);
        name
    }

    /// A rule at the end of `chain`, of the expressions `body` appends.
    pub(super) fn rule(&mut self, chain: &str, body: impl FnOnce(&mut Request)) {
        let mut r = self.message(
            libc::NFT_MSG_NEWRULE,
            libc::NLM_F_CREATE | libc::NLM_F_APPEND,
            chain,
        );
        r.nest(NFTA_RULE_EXPRESSIONS | NESTED, &[], body);
        self.push(r);
    }

    /// Ends the batch, sends it on a socket of its own and reads the acks:
    /// Ok if every message was applied or failed with `ignore` (0: none),
    /// else the error of the first that failed.
    fn send(mut self, ignore: c_int) -> Result<()> {
        self.control(libc::NFNL_MSG_BATCH_END);
        let fd = socket(libc::NETLINK_NETFILTER, "NETLINK_NETFILTER")?;
        let (at, err) = match self.exchange(fd.as_raw_fd()) {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        if err.raw_os_error() == Some(ignore) {
            return Ok(());
        }
        let (kind, chain) = &self.what[at];
        let verb = match *kind {
            libc::NFT_MSG_NEWTABLE => "add table",
            libc::NFT_MSG_DELTABLE => "delete table",
            libc::NFT_MSG_NEWCHAIN => "add chain",
            libc::NFT_MSG_DELCHAIN => "delete chain",
            libc::NFT_MSG_NEWRULE => "add rule to chain",
            libc::NFT_MSG_DELRULE => "flush chain",
            _ => "batch on table",
        };
        let space = if chain.is_empty() { "" } else { " " };
        Err(Error::os(
            format_args!("nftables: {verb} ip {TABLE}{space}{chain}"),
            &err,
        ))
    }

    /// Sends the batch, then reads the acks: Err(the message that failed
    /// first, its error); errors of the batch as a whole are the first
    /// message's.
    fn exchange(&self, fd: c_int) -> Result<(), (usize, io::Error)> {
        let count = self.what.len();
        let batch = |e| (0, e);
        // A batch is one datagram, and all its acks wait on the socket at
        // once: room for both, past the defaults (about 200 KiB) when
        // many ports are published. Forcing needs CAP_NET_ADMIN, which
        // nf_tables needs too; without it the defaults stay.
        for (opt, size) in [
            (libc::SO_SNDBUFFORCE, self.bytes.len()),
            (libc::SO_RCVBUFFORCE, count * 1024),
        ] {
            let size = size.max(1 << 16) as c_int;
            // SAFETY: setsockopt reads one c_int.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const c_int).cast(),
                    size_of::<c_int>() as libc::socklen_t,
                )
            };
        }
        // SAFETY: send reads bytes.len() bytes of bytes.
        let sent = unsafe { libc::send(fd, self.bytes.as_ptr().cast(), self.bytes.len(), 0) };
        if sent < 0 {
            return Err(batch(io::Error::last_os_error()));
        }
        // Each ack, by message; the first of one message wins: when the
        // commit fails, its error comes before the acks of the messages.
        let mut acks: Vec<Option<i32>> = vec![None; count];
        // An ack holds its request, if it failed: a rule is at most a few
        // hundred bytes.
        let mut buf = [0u8; 4096];
        loop {
            let reply = match recv(fd, &mut buf, libc::MSG_DONTWAIT) {
                Ok(Some(n)) if n >= 16 => &buf[..n],
                Ok(_) => continue,
                // All the kernel had to say was queued during send.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) => return Err(batch(e)),
            };
            let seq = u32::from_ne_bytes([reply[8], reply[9], reply[10], reply[11]]);
            if let Some(slot @ None) = acks.get_mut(seq as usize) {
                *slot = ack(reply, seq);
            }
        }
        for (at, a) in acks.into_iter().enumerate() {
            match a {
                Some(0) => {}
                Some(errno) => return Err((at, io::Error::from_raw_os_error(errno))),
                // Older kernels ack neither batch begin nor end.
                None if at == 0 || at == count - 1 => {}
                // A message the kernel did not answer: not applied.
                None => return Err((at, io::Error::from_raw_os_error(libc::EPROTO))),
            }
        }
        Ok(())
    }
}

/// EINVAL for a tag that is no short name of [a-z0-9-].
fn check_tag(tag: &str) -> Result<()> {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
    if tag.is_empty() || tag.len() > 20 || !tag.bytes().all(ok) {
        let e = io::Error::from_raw_os_error(libc::EINVAL);
        return Err(Error::os(format_args!("nftables: chain tag {tag:?}"), &e));
    }
    Ok(())
}

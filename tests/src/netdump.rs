//! This thread's network namespace as the kernel reports it over netlink:
//! links, addresses, IPv4 routes and the nf_tables ruleset, one line each,
//! for the network scenarios' leftover check. Netlink, not `ip` and `nft`:
//! the VMs' guests have only busybox.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// The namespace's network, as text that two snapshots compare by.
pub fn snapshot() -> Result<String, String> {
    let mut out = String::new();
    let route = Socket::open(libc::NETLINK_ROUTE)?;
    for m in route.dump(libc::RTM_GETLINK, &[0; 16])? {
        let (head, attrs) = split(&m, 16);
        let index = u32_at(head, 4);
        let flags = u32_at(head, 8) & libc::IFF_UP as u32;
        let kind = attrs
            .iter()
            .find(|a| a.0 == libc::IFLA_LINKINFO)
            .and_then(|a| parse(a.1).into_iter().find(|i| i.0 == libc::IFLA_INFO_KIND))
            .map(|i| text(i.1))
            .unwrap_or_default();
        out += &format!(
            "link {index} {} kind={kind} master={} up={}\n",
            attr_text(&attrs, libc::IFLA_IFNAME),
            attrs
                .iter()
                .find(|a| a.0 == libc::IFLA_MASTER)
                .map_or(0, |a| u32_at(a.1, 0)),
            flags != 0
        );
    }
    for m in route.dump(libc::RTM_GETADDR, &[0; 8])? {
        let (head, attrs) = split(&m, 8);
        // Flags left out: an IPv6 address's duplicate detection ends
        // meanwhile.
        out += &format!(
            "addr {} {}/{} {}\n",
            u32_at(head, 4),
            address(
                head[0],
                attrs.iter().find(|a| a.0 == libc::IFA_ADDRESS).map(|a| a.1)
            ),
            head[1],
            address(
                head[0],
                attrs.iter().find(|a| a.0 == libc::IFA_LOCAL).map(|a| a.1)
            ),
        );
    }
    let mut rtmsg = [0u8; 12];
    rtmsg[0] = libc::AF_INET as u8;
    for m in route.dump(libc::RTM_GETROUTE, &rtmsg)? {
        let (head, attrs) = split(&m, 12);
        let find = |k: u16| attrs.iter().find(|a| a.0 == k).map(|a| a.1);
        out += &format!(
            "route table={} type={} {}/{} via {} dev {} src {}\n",
            find(libc::RTA_TABLE).map_or(head[4] as u32, |t| u32_at(t, 0)),
            head[7],
            address(libc::AF_INET as u8, find(libc::RTA_DST)),
            head[1],
            address(libc::AF_INET as u8, find(libc::RTA_GATEWAY)),
            find(libc::RTA_OIF).map_or(0, |i| u32_at(i, 0)),
            address(libc::AF_INET as u8, find(libc::RTA_PREFSRC)),
        );
    }
    out += &nf_tables()?;
    Ok(out)
}

/// Tables, chains and rules (their expressions, raw), of every family.
fn nf_tables() -> Result<String, String> {
    let nft = match Socket::open(libc::NETLINK_NETFILTER) {
        Ok(s) => s,
        // A kernel without nfnetlink has no ruleset to leave behind.
        Err(e) if e.contains("Protocol not supported") => return Ok("nf_tables: none\n".into()),
        Err(e) => return Err(e),
    };
    let mut out = String::new();
    // NFT_MSG_GETTABLE, GETCHAIN, GETRULE; nfgenmsg: family 0 (all).
    for (msg, what) in [(1u16, "table"), (4, "chain"), (7, "rule")] {
        let messages = match nft.dump((NFNL_SUBSYS_NFTABLES << 8) | msg, &[0; 4]) {
            Ok(m) => m,
            Err(e) if e.contains("Operation not supported") => {
                return Ok("nf_tables: none\n".into())
            }
            Err(e) => return Err(e),
        };
        for m in messages {
            let (head, attrs) = split(&m, 4);
            // NFTA_*_TABLE is 1 for each; a chain's name is 3, a rule's
            // chain 2 and its expressions 4 (handles left out: they count).
            let line = match what {
                "table" => attr_text(&attrs, 1),
                "chain" => format!("{} {}", attr_text(&attrs, 1), attr_text(&attrs, 3)),
                _ => format!(
                    "{} {} {}",
                    attr_text(&attrs, 1),
                    attr_text(&attrs, 2),
                    attrs
                        .iter()
                        .find(|a| a.0 == 4)
                        .map(|a| a.1.iter().map(|b| format!("{b:02x}")).collect::<String>())
                        .unwrap_or_default()
                ),
            };
            out += &format!("nft {what} family={} {line}\n", head[0]);
        }
    }
    Ok(out)
}

struct Socket(OwnedFd);

impl Socket {
    fn open(protocol: i32) -> Result<Socket, String> {
        // SAFETY: socket(2) with constant arguments; the fd is then ours.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(format!(
                "socket(AF_NETLINK, {protocol}): {}",
                io::Error::last_os_error()
            ));
        }
        // SAFETY: fresh.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The payloads of a dump request's answers.
    fn dump(&self, kind: u16, header: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let len = NLMSG_HDR + header.len();
        let mut req = Vec::with_capacity(len);
        req.extend_from_slice(&(len as u32).to_ne_bytes());
        req.extend_from_slice(&kind.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
        req.extend_from_slice(&flags.to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(header);
        // SAFETY: send of our buffer on our socket (to the kernel: no
        // address needed on an unbound netlink socket).
        let n = unsafe { libc::send(self.0.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if n < 0 {
            return Err(format!("netlink send: {}", io::Error::last_os_error()));
        }
        let mut found = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // SAFETY: recv into our buffer, within its length.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(format!("netlink recv: {}", io::Error::last_os_error()));
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR {
                let len = u32_at(rest, 0) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < NLMSG_HDR || len > rest.len() {
                    return Err(format!(
                        "netlink: a message of {len} bytes in {}",
                        rest.len()
                    ));
                }
                match kind {
                    NLMSG_DONE => return Ok(found),
                    NLMSG_ERROR => {
                        let errno = -(u32_at(rest, NLMSG_HDR) as i32);
                        return Err(format!(
                            "netlink dump {kind:#x}: {}",
                            io::Error::from_raw_os_error(errno)
                        ));
                    }
                    _ => found.push(rest[NLMSG_HDR..len].to_vec()),
                }
                rest = &rest[align(len).min(rest.len())..];
            }
        }
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

/// A message's fixed header of `head` bytes, and its attributes.
fn split(m: &[u8], head: usize) -> (&[u8], Vec<(u16, &[u8])>) {
    (&m[..head.min(m.len())], parse(&m[head.min(m.len())..]))
}

/// Attributes as (type without its flags, payload).
fn parse(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut attrs = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        attrs.push((kind, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    attrs
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(b)).into_owned()
}

fn attr_text(attrs: &[(u16, &[u8])], kind: u16) -> String {
    attrs
        .iter()
        .find(|a| a.0 == kind)
        .map(|a| text(a.1))
        .unwrap_or_default()
}

fn address(family: u8, b: Option<&[u8]>) -> String {
    match b {
        Some(b) if family == libc::AF_INET as u8 && b.len() == 4 => {
            std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
        }
        Some(b) if b.len() == 16 => {
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).to_string()
        }
        _ => "-".into(),
    }
}

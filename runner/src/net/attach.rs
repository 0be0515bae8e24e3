//! A container on a bridge network: an address leased from the network's
//! pool (pool.rs), a veth pair with one end on the bridge and the other,
//! `eth0`, made directly in the container's network namespace, its
//! address and default route, and its published ports (nft.rs).
//!
//! A network comes up with its first container (the bridge with the
//! gateway's address, its nftables chains, IPv4 forwarding) and goes with
//! its last, so that a host on which no container runs has exactly the
//! links, addresses, routes and ruleset it had before. Everything happens
//! under the pools' lock: a network never goes while a container joins it.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::netlink::Netlink;
use super::nft::{self, Port};
use super::pool::{self, Network, Pools};
use crate::error::{Error, Result};

/// What the command line asks for: `--net NAME` or `cni:NAME`, `--ip`,
/// `-p`, `--dns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The network's name (without `cni:`).
    pub network: String,
    pub via: Via,
    pub ports: Vec<Port>,
    /// `--dns`: the container's resolvers, in place of the host's.
    pub dns: Vec<std::net::IpAddr>,
}

/// How a container joins its network.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// One of husk's bridge networks, at `--ip` if given.
    Bridge { ip: Option<Ipv4Addr> },
    /// A CNI network config's plugins (net/cni.rs), whose IPAM picks the
    /// address.
    Cni,
}

/// A container's lease on a network, given back when dropped.
pub struct Attachment {
    root: PathBuf,
    id: String,
    pub network: Network,
    pub address: Ipv4Addr,
    ports: Vec<Port>,
}

/// Leases an address (`ip`, else the lowest free) to container `id`
/// (whose entry is in the store at `root` already) on the bridge network
/// `req` names, bringing the network up if it is its first container.
pub fn join(root: &Path, id: &str, req: &Request, ip: Option<Ipv4Addr>) -> Result<Attachment> {
    let pools = Pools::lock(root)?;
    let mut net = pools.get(&req.network)?;
    let address = net.take(id, ip, |holder| gone(root, holder))?;
    if net.leases.len() == 1 {
        bring_up(&net)?;
    }
    if let Err(e) = pools.save(&net) {
        net.release(id);
        settle(&pools, &mut net, root);
        return Err(e);
    }
    Ok(Attachment {
        root: root.to_path_buf(),
        id: id.into(),
        network: net,
        address,
        ports: req.ports.clone(),
    })
}

impl Attachment {
    /// Connects the container whose PID 1 (waiting for its plan) is
    /// `pid` to the bridge.
    pub fn connect(&self, pid: i32) -> Result<()> {
        let path = format!("/proc/{pid}/ns/net");
        let ns = super::open_ns(&path)?;
        let net = &self.network;
        let veth = veth_name(&self.id);
        let mut nl = Netlink::open()?;
        nl.add_veth(&veth, "eth0", Some(ns.as_raw_fd()))?;
        let (port, bridge) = (nl.index(&veth)?, nl.index(&net.bridge)?);
        nl.set_master(port, bridge)?;
        nl.set_up(port)?;
        // A netlink socket acts in the namespace it was opened in: one
        // opened in the container's, the runner (one thread) joining it
        // for that moment. A thread would do without coming back, but
        // costs the binary 15 KB of std's threads.
        let mut inside = in_namespace(&ns, &path, Netlink::open)??;
        let eth0 = inside.index("eth0")?;
        inside.add_address(eth0, IpAddr::V4(self.address), net.prefix)?;
        inside.set_up(eth0)?;
        inside.add_default_route(net.gateway)?;
        if !self.ports.is_empty() {
            nft::add_ports(&veth, self.address, &self.ports)?;
        }
        Ok(())
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        leave(
            &self.root,
            &self.id,
            &self.network.name,
            !self.ports.is_empty(),
        );
    }
}

/// Runs `f` in the network namespace `ns` (opened from `path`), and comes
/// back to the runner's own.
fn in_namespace<T>(ns: &OwnedFd, path: &str, f: impl FnOnce() -> T) -> Result<T> {
    let own = super::open_ns("/proc/self/ns/net")?;
    // SAFETY: setns with our own fd; the runner has one thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::os(format_args!("setns {path}"), &e));
    }
    let t = f();
    // SAFETY: as above. Left in the container's namespace, the runner
    // would take down the wrong links: that is not survivable.
    if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!(
            "runner: {}",
            Error::os("setns back to the runner's network namespace", &e)
        );
        std::process::abort();
    }
    Ok(t)
}

/// Gives back container `id`'s lease on `network` ("" for none) and what
/// was made for it; the network goes if it was the last. For a container
/// that has ended, or never started.
pub fn leave(root: &Path, id: &str, network: &str, ports: bool) {
    if network.is_empty() {
        return;
    }
    if network.starts_with("cni:") {
        return super::cni::remove(&root.join(id), id);
    }
    // The host's end: deleting it deletes the pair now, rather than when
    // the kernel gets round to the dead namespace's cleanup.
    if let Ok(mut nl) = Netlink::open() {
        if let Ok(i) = nl.index(&veth_name(id)) {
            let _ = nl.delete_link(i);
        }
    }
    if ports {
        let _ = nft::remove_ports(&veth_name(id));
    }
    let Ok(pools) = Pools::lock(root) else { return };
    if let Ok(mut net) = pools.get(network) {
        net.release(id);
        settle(&pools, &mut net, root);
    }
}

/// Gives back the leases of containers that are gone from the store
/// (their runner was killed before it could), on every network; a
/// network left without any goes. For the sweep.
pub fn tidy(root: &Path) {
    if !pool::exists(root) {
        return;
    }
    let Ok(pools) = Pools::lock(root) else { return };
    for mut net in pools.all() {
        settle(&pools, &mut net, root);
    }
}

/// Drops the leases of gone containers; takes down `net` if none is
/// left, and then forgets the default network (made again on first use).
fn settle(pools: &Pools, net: &mut Network, root: &Path) {
    net.leases.retain(|(_, holder)| !gone(root, holder));
    if net.leases.is_empty() {
        let in_use = pools
            .all()
            .iter()
            .any(|n| n.name != net.name && !n.leases.is_empty());
        take_down(net, !in_use);
        if net.name == pool::DEFAULT {
            let _ = pools.remove(&net.name);
            return;
        }
    }
    let _ = pools.save(net);
}

fn gone(root: &Path, holder: &str) -> bool {
    !root.join(holder).is_dir()
}

/// The network's bridge with the gateway's address, up; its rules; IPv4
/// forwarding on. Half done, it is taken down again.
fn bring_up(net: &Network) -> Result<()> {
    let made = (|| {
        let mut nl = Netlink::open()?;
        // One a husk killed while taking it down left goes first.
        if let Ok(i) = nl.index(&net.bridge) {
            nl.delete_link(i)?;
        }
        nl.add_bridge(&net.bridge)?;
        let bridge = nl.index(&net.bridge)?;
        nl.add_address(bridge, IpAddr::V4(net.gateway), net.prefix)?;
        nl.set_up(bridge)?;
        // Published ports reach the host's own 127.0.0.1 (nft.rs's output
        // chain) only if the bridge may route loopback addresses.
        sysctl(&format!("conf/{}/route_localnet", net.bridge), false)?;
        sysctl("ip_forward", true)?;
        let tag = tag(net);
        let add = || nft::add_network(&tag, &net.bridge, net.subnet, net.prefix);
        // Chains a husk killed while taking them down left go first; not
        // asked every time, as a failed batch costs an RCU grace period.
        add().or_else(|_| {
            nft::remove_network(&tag, false)?;
            add()
        })
    })();
    if made.is_err() {
        take_down(net, false);
    }
    made
}

fn take_down(net: &Network, last: bool) {
    let _ = nft::remove_network(&tag(net), last);
    if let Ok(mut nl) = Netlink::open() {
        if let Ok(i) = nl.index(&net.bridge) {
            let _ = nl.delete_link(i);
        }
    }
}

/// Sets /proc/sys/net/ipv4/`name` to 1 (the host's, seen from the
/// runner); `say`: tell the user when it was not.
fn sysctl(name: &str, say: bool) -> Result<()> {
    let path = format!("/proc/sys/net/ipv4/{name}");
    if std::fs::read(&path).is_ok_and(|v| v.starts_with(b"1")) {
        return Ok(());
    }
    std::fs::write(&path, b"1").map_err(|e| Error::os(format_args!("write 1 to {path}"), &e))?;
    if say {
        eprintln!("runner: set net.ipv4.{name} to 1 for bridge networking (it stays so)");
    }
    Ok(())
}

/// The network's nftables chains are named after its bridge.
fn tag(net: &Network) -> String {
    format!("n-{}", net.bridge)
}

/// The host end of container `id`'s veth pair (and its nftables chains'
/// name): "veth" and a hash of the ID, within IFNAMSIZ.
pub fn veth_name(id: &str) -> String {
    // FNV-1a: a name, not a secret; a clash is EEXIST, not a mix-up.
    let h = id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("veth{h:08x}")
}

impl Port {
    /// As `-p` takes it.
    pub fn describe(&self) -> String {
        let ip = self.host_ip.map(|i| format!("{i}:")).unwrap_or_default();
        let proto = match self.proto {
            nft::Proto::Tcp => "tcp",
            nft::Proto::Udp => "udp",
        };
        format!("{ip}{}:{}/{proto}", self.host_port, self.port)
    }
}

/// `-p [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]`.
pub fn parse_port(s: &str) -> Result<Port> {
    let bad = |why: &str| Error::new(format!("-p {s}: {why}"));
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, "tcp")) => (r, nft::Proto::Tcp),
        Some((r, "udp")) => (r, nft::Proto::Udp),
        Some(_) => return Err(bad("the protocol is tcp or udp")),
        None => (s, nft::Proto::Tcp),
    };
    let number = |p: &str| p.parse::<u16>().ok().filter(|&n| n != 0);
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_port, port) = match parts[..] {
        [h, c] => (None, h, c),
        [ip, h, c] => {
            let ip = ip
                .parse()
                .map_err(|_| bad("the host address is not an IPv4 address"))?;
            (Some(ip), h, c)
        }
        _ => return Err(bad("expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]")),
    };
    match (number(host_port), number(port)) {
        (Some(host_port), Some(port)) => Ok(Port {
            host_ip,
            host_port,
            port,
            proto,
        }),
        _ => Err(bad("a port is a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_parse_as_docker_writes_them() {
        let p = parse_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((p.host_port, p.port, p.proto), (8080, 80, nft::Proto::Udp));
        assert_eq!(p.describe(), "127.0.0.1:8080:80/udp");
        let p = parse_port("8080:80").unwrap();
        assert_eq!((p.host_ip, p.proto), (None, nft::Proto::Tcp));
        for bad in ["80", "0:80", "8080:80/sctp", "x:1:2", "1:2:3:4", "70000:80"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        assert_eq!(veth_name("web").len(), 12);
        assert_ne!(veth_name("web"), veth_name("weg"));
    }
}

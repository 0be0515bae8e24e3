//! Named networks and their address pools: a file per network in the
//! state store's `.networks` directory, read and written only under that
//! directory's flock, so two containers started at the same moment never
//! get the same address. A file holds the network's definition and its
//! leases, one per line:
//!
//! ```text
//! subnet 10.88.0.0/16
//! gateway 10.88.0.1
//! bridge husk0
//! lease 10.88.0.2 web
//! ```
//!
//! A lease names the container that holds it; one whose container has no
//! entry in the store any more (its runner was killed before it could give
//! the address back) is free again.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The network `--net bridge` uses, made on first use.
pub const DEFAULT: &str = "husk0";
const DEFAULT_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);
/// Networks made without --subnet get 10.89.N.0/24, the first N free.
const NAMED_BASE: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 0);
const DIR: &str = ".networks";

#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub name: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// husk<N>: every bridge of husk's shares the prefix its forward rule
    /// isolates networks by (nft.rs).
    pub bridge: String,
    /// (address, container ID).
    pub leases: Vec<(Ipv4Addr, String)>,
}

/// The `.networks` directory, locked by this process while it lives.
pub struct Pools {
    dir: PathBuf,
    _lock: fs::File,
}

impl Drop for Pools {
    /// No network defined and none in use: the directory goes too (rmdir
    /// refuses one that is not empty), so a store whose containers have
    /// all ended is as it was before the first.
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Whether any network is defined or in use in the store at `root`.
pub fn exists(root: &Path) -> bool {
    root.join(DIR).is_dir()
}

impl Pools {
    /// Locks the pools of the store at `root` (waiting for another
    /// command that holds them), making the directory if missing.
    pub fn lock(root: &Path) -> Result<Pools> {
        let dir = root.join(DIR);
        let mut tries = 0;
        loop {
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::os(format_args!("create {}", dir.display()), &e))
                }
                _ => {}
            }
            // ENOENT: the holder we waited for removed the directory (it
            // left it empty, see Drop): make it again.
            match crate::store::lock_dir(&dir, libc::LOCK_EX) {
                Ok(lock) => return Ok(Pools { dir, _lock: lock }),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && tries < 100 => tries += 1,
                Err(e) => return Err(Error::os(format_args!("lock {}", dir.display()), &e)),
            }
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The network `name`; the default one is defined on first use.
    pub fn get(&self, name: &str) -> Result<Network> {
        match fs::read_to_string(self.dir.join(name)) {
            Ok(text) => parse(name, &text)
                .map_err(|e| Error::new(format!("{}/{name}: {e}", self.dir.display()))),
            Err(_) if name == DEFAULT => Ok(Network {
                name: name.into(),
                subnet: DEFAULT_SUBNET.0,
                prefix: DEFAULT_SUBNET.1,
                gateway: host(DEFAULT_SUBNET.0, 1),
                bridge: DEFAULT.into(),
                leases: Vec::new(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::new(format!(
                "no network {name}: make it with `runner network create {name}`"
            ))),
            Err(e) => Err(Error::os(format_args!("read network {name}"), &e)),
        }
    }

    pub fn all(&self) -> Vec<Network> {
        self.names()
            .iter()
            .filter_map(|n| self.get(n).ok())
            .collect()
    }

    /// Writes `net` atomically: beside its file, then renamed.
    pub fn save(&self, net: &Network) -> Result<()> {
        let tmp = self.dir.join(format!(".{}.tmp", net.name));
        let path = self.dir.join(&net.name);
        fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .and_then(|mut f| f.write_all(net.to_text().as_bytes()))
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| Error::os(format_args!("write {}", path.display()), &e))
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        fs::remove_file(&path).map_err(|e| Error::os(format_args!("remove {}", path.display()), &e))
    }

    /// A definition for a new network `name`: `subnet` (CIDR) or the
    /// first 10.89.N.0/24 no other network overlaps, `gateway` or the
    /// subnet's first address, and the first bridge name husk<N> free.
    pub fn define(
        &self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
    ) -> Result<Network> {
        check_name(name)?;
        if name == DEFAULT || self.names().iter().any(|n| n == name) {
            return Err(Error::new(format!("network {name} exists already")));
        }
        let others: Vec<Network> = [self.get(DEFAULT)]
            .into_iter()
            .flatten()
            .chain(self.all().into_iter().filter(|n| n.name != DEFAULT))
            .collect();
        let (subnet, prefix) = match subnet {
            Some(s) => parse_cidr(s).map_err(|e| Error::new(format!("--subnet {s}: {e}")))?,
            None => (0..=255u32)
                .map(|n| (Ipv4Addr::from(u32::from(NAMED_BASE) | n << 8), 24))
                .find(|&(s, p)| {
                    !others
                        .iter()
                        .any(|o| overlaps((s, p), (o.subnet, o.prefix)))
                })
                .ok_or_else(|| Error::new("no free 10.89.N.0/24 left: give --subnet"))?,
        };
        if prefix > 30 {
            return Err(Error::new(format!(
                "--subnet {subnet}/{prefix}: too small for a gateway and a container"
            )));
        }
        if let Some(o) = others
            .iter()
            .find(|o| overlaps((subnet, prefix), (o.subnet, o.prefix)))
        {
            return Err(Error::new(format!(
                "--subnet {subnet}/{prefix} overlaps network {} ({}/{})",
                o.name, o.subnet, o.prefix
            )));
        }
        let gateway = match gateway {
            Some(g) => {
                let ip = g
                    .parse()
                    .map_err(|_| Error::new(format!("--gateway {g}: not an IPv4 address")))?;
                host_of(subnet, prefix, ip)
                    .map_err(|e| Error::new(format!("--gateway {g}: {e}")))?
            }
            None => host(subnet, 1),
        };
        let bridge = (1..)
            .map(|n| format!("husk{n}"))
            .find(|b| !others.iter().any(|o| &o.bridge == b))
            .expect("an unused number");
        Ok(Network {
            name: name.into(),
            subnet,
            prefix,
            gateway,
            bridge,
            leases: Vec::new(),
        })
    }
}

impl Network {
    /// Leases an address to container `id`: `wanted`, or the lowest free.
    /// Leases of containers `gone` says are gone are given back first.
    pub fn take(
        &mut self,
        id: &str,
        wanted: Option<Ipv4Addr>,
        gone: impl Fn(&str) -> bool,
    ) -> Result<Ipv4Addr> {
        self.leases.retain(|(_, holder)| !gone(holder));
        let free = |ip: &Ipv4Addr| *ip != self.gateway && !self.leases.iter().any(|(l, _)| l == ip);
        let ip = match wanted {
            Some(ip) => {
                host_of(self.subnet, self.prefix, ip)
                    .map_err(|e| Error::new(format!("--ip {ip}: {e}")))?;
                if !free(&ip) {
                    return Err(Error::new(format!(
                        "--ip {ip}: in use on network {}",
                        self.name
                    )));
                }
                ip
            }
            None => {
                let hosts = (1u32 << (32 - self.prefix)) - 2;
                (1..=hosts)
                    .map(|n| host(self.subnet, n))
                    .find(free)
                    .ok_or_else(|| {
                        Error::new(format!("network {}: no address is free", self.name))
                    })?
            }
        };
        self.leases.push((ip, id.into()));
        Ok(ip)
    }

    /// Gives back container `id`'s lease; whether it had one.
    pub fn release(&mut self, id: &str) -> bool {
        let before = self.leases.len();
        self.leases.retain(|(_, holder)| holder != id);
        self.leases.len() != before
    }

    fn to_text(&self) -> String {
        let mut t = format!(
            "subnet {}/{}\ngateway {}\nbridge {}\n",
            self.subnet, self.prefix, self.gateway, self.bridge
        );
        for (ip, id) in &self.leases {
            t += &format!("lease {ip} {id}\n");
        }
        t
    }
}

fn parse(name: &str, text: &str) -> std::result::Result<Network, String> {
    let mut net = Network {
        name: name.into(),
        subnet: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
        gateway: Ipv4Addr::UNSPECIFIED,
        bridge: String::new(),
        leases: Vec::new(),
    };
    for line in text.lines() {
        let bad = || format!("bad line {line:?}");
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("subnet"), Some(s), None) => (net.subnet, net.prefix) = parse_cidr(s)?,
            (Some("gateway"), Some(g), None) => net.gateway = g.parse().map_err(|_| bad())?,
            (Some("bridge"), Some(b), None) => net.bridge = b.into(),
            (Some("lease"), Some(ip), Some(id)) => {
                net.leases.push((ip.parse().map_err(|_| bad())?, id.into()))
            }
            _ => return Err(bad()),
        }
    }
    if net.bridge.is_empty() || net.prefix == 0 {
        return Err("no subnet or bridge".into());
    }
    Ok(net)
}

/// `A.B.C.D/N`, with no host bits set.
pub fn parse_cidr(s: &str) -> std::result::Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = s.split_once('/').ok_or("expected A.B.C.D/N")?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| "not an IPv4 address")?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or("the prefix length is not 1 to 32")?;
    if u32::from(ip) & !mask(prefix) != 0 {
        return Err(format!(
            "host bits set: the subnet is {}/{prefix}",
            Ipv4Addr::from(u32::from(ip) & mask(prefix))
        ));
    }
    Ok((ip, prefix))
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The subnet's `n`th address.
fn host(subnet: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet) + n)
}

/// `ip` if it is a host address of the subnet (not its network or
/// broadcast address).
fn host_of(subnet: Ipv4Addr, prefix: u8, ip: Ipv4Addr) -> std::result::Result<Ipv4Addr, String> {
    let (s, i, m) = (u32::from(subnet), u32::from(ip), mask(prefix));
    if i & m != s {
        return Err(format!("not in the subnet {subnet}/{prefix}"));
    }
    if i == s || i == s | !m {
        return Err("the subnet's network or broadcast address".into());
    }
    Ok(ip)
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// Network names: as container names, at most 32 bytes.
fn check_name(name: &str) -> Result<()> {
    crate::store::check_id(name).map_err(|_| {
        Error::new(format!(
            "network name {name:?}: expected 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit"
        ))
    })?;
    if name.len() > 32 || matches!(name, "none" | "host" | "bridge") {
        return Err(Error::new(format!(
            "network name {name:?}: too long, or one of none, host and bridge"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        parse("n", "subnet 10.1.0.0/29\ngateway 10.1.0.1\nbridge husk1\n").unwrap()
    }

    #[test]
    fn leases_take_the_lowest_free_address_and_come_back() {
        let mut n = net();
        let none_gone = |_: &str| false;
        let got: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| n.take(id, None, none_gone).unwrap().to_string())
            .collect();
        // .1 is the gateway, .7 the broadcast address.
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        let e = n.take("f", None, none_gone).unwrap_err();
        assert!(e.message.contains("no address is free"), "{}", e.message);
        assert!(n.release("b"));
        assert!(!n.release("b"));
        assert_eq!(
            n.take("f", None, none_gone).unwrap().to_string(),
            "10.1.0.3"
        );
        // A gone holder's lease is free again.
        assert_eq!(
            n.take("g", None, |id| id == "c").unwrap().to_string(),
            "10.1.0.4"
        );
        let round = parse("n", &n.to_text()).unwrap();
        assert_eq!(round, n);
    }

    #[test]
    fn a_wanted_address_must_be_a_free_host_of_the_subnet() {
        let mut n = net();
        let none_gone = |_: &str| false;
        for (ip, why) in [
            ("10.1.0.0", "network or broadcast"),
            ("10.1.0.7", "network or broadcast"),
            ("10.1.0.9", "not in the subnet"),
            ("10.1.0.1", "in use"),
        ] {
            let e = n
                .take("x", Some(ip.parse().unwrap()), none_gone)
                .unwrap_err();
            assert!(e.message.contains(why), "{ip}: {}", e.message);
        }
        n.take("x", Some("10.1.0.5".parse().unwrap()), none_gone)
            .unwrap();
        let e = n
            .take("y", Some("10.1.0.5".parse().unwrap()), none_gone)
            .unwrap_err();
        assert!(e.message.contains("in use"), "{}", e.message);
    }

    #[test]
    fn subnets_parse_strictly_and_overlaps_are_seen() {
        assert_eq!(
            parse_cidr("10.89.3.0/24"),
            Ok(("10.89.3.0".parse().unwrap(), 24))
        );
        for bad in [
            "10.89.3.1/24",
            "10.89.3.0",
            "10.89.3.0/33",
            "10.89.3.0/0",
            "x/8",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        let p = |s: &str| parse_cidr(s).unwrap();
        assert!(overlaps(p("10.88.0.0/16"), p("10.88.5.0/24")));
        assert!(!overlaps(p("10.88.0.0/16"), p("10.89.0.0/24")));
        assert!(parse("n", "subnet 10.1.0.0/29\nbridge b\nrm -rf /\n").is_err());
    }
}

//! Bridge networking: a bridge on the host, a veth pair per container with
//! one end in the container's network namespace, addresses and a default
//! route, all made through husk's own rtnetlink client.

pub mod attach;
pub mod cni;
pub mod netlink;
pub mod nft;
pub mod pool;

#[cfg(test)]
mod nft_tests;
#[cfg(test)]
mod tests;

/// A network namespace's file (`/proc/PID/ns/net`), opened once: what
/// the runner then acts on, whatever the path names later.
fn open_ns(path: &str) -> crate::error::Result<std::os::fd::OwnedFd> {
    std::fs::File::open(path)
        .map(Into::into)
        .map_err(|e| crate::error::Error::os(format_args!("open {path}"), &e))
}

/// A container's network, given back when dropped: a lease on a bridge
/// network of husk's own, or a CNI network's plugins.
pub enum Attached {
    Bridge(attach::Attachment),
    Cni(cni::Attachment),
}

//! Bridge networking: a bridge on the host, a veth pair per container with
//! one end in the container's network namespace, addresses and a default
//! route, all made through husk's own rtnetlink client.

pub mod netlink;

#[cfg(test)]
mod tests;

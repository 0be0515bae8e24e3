//! The request encoding without privileges, and netlink.rs against the
//! running kernel as root, in network namespaces of the tests' own: the
//! host's network is never touched. What the kernel made is read back with
//! `ip` (iproute2) and `ping` (iputils-ping), run from a thread in the
//! namespace to read: a child starts in its parent thread's namespaces.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use super::netlink::{ack, Netlink, Request};

#[test]
fn attributes_are_padded_and_nests_span_what_they_hold() {
    let mut req = Request::new(libc::RTM_NEWLINK, libc::NLM_F_CREATE, &[1, 2, 3, 4]);
    req.attr(3, b"abcde").nest(18, &[], |r| {
        r.nest(2, &[9; 8], |r| {
            r.string(1, "br");
        });
    });
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE) as u16;
    let want = [
        &56u32.to_ne_bytes()[..],
        &libc::RTM_NEWLINK.to_ne_bytes(),
        &flags.to_ne_bytes(),
        &7u32.to_ne_bytes(), // the sequence number
        &0u32.to_ne_bytes(), // the kernel's port
        &[1, 2, 3, 4],
        // 4 + 5 bytes, padded to 12.
        &9u16.to_ne_bytes(),
        &3u16.to_ne_bytes(),
        b"abcde\0\0\0",
        // The outer nest: its header and the inner one.
        &24u16.to_ne_bytes(),
        &18u16.to_ne_bytes(),
        // The inner nest: its header, its own header, "br\0" padded to 8.
        &20u16.to_ne_bytes(),
        &2u16.to_ne_bytes(),
        &[9; 8],
        &7u16.to_ne_bytes(),
        &1u16.to_ne_bytes(),
        b"br\0\0",
    ]
    .concat();
    assert_eq!(req.finish(7), want);
}

#[test]
fn the_ack_is_found_by_its_sequence_number() {
    let message = |kind: u16, seq: u32, errno: i32| {
        [
            &20u32.to_ne_bytes()[..],
            &kind.to_ne_bytes(),
            &0u16.to_ne_bytes(),
            &seq.to_ne_bytes(),
            &0u32.to_ne_bytes(),
            &(-errno).to_ne_bytes(),
        ]
        .concat()
    };
    let error = libc::NLMSG_ERROR as u16;
    let reply = [
        message(error, 4, libc::EPERM),
        message(error, 5, libc::EEXIST),
    ]
    .concat();
    assert_eq!(ack(&reply, 5), Some(libc::EEXIST));
    assert_eq!(ack(&reply, 4), Some(libc::EPERM));
    assert_eq!(ack(&message(error, 6, 0), 6), Some(0));
    assert_eq!(ack(&message(libc::NLMSG_DONE as u16, 6, 0), 6), None);
    // A length beyond what came is not read.
    assert_eq!(ack(&reply[..30], 5), None);
    assert_eq!(ack(&[], 5), None);
}

#[test]
fn makes_a_bridge_and_sets_it_up() {
    if !root("makes_a_bridge_and_sets_it_up") {
        return;
    }
    let host = new_netns();
    in_netns(&host, || {
        let mut nl = Netlink::open().unwrap();
        nl.add_bridge("husk0").unwrap();
        let bridge = nl.index("husk0").unwrap();
        nl.set_up(bridge).unwrap();
        let link = ip("-o -d link show dev husk0").unwrap();
        assert!(link.contains(" bridge "), "{link}");
        assert!(flags(&link).contains(&"UP"), "{link}");
        nl.add_address(bridge, "fd00:88::1".parse().unwrap(), 64)
            .unwrap();
        let addr = ip("-o -6 addr show dev husk0").unwrap();
        assert!(addr.contains("inet6 fd00:88::1/64"), "{addr}");
    });
}

#[test]
fn connects_a_namespace_to_the_bridge() {
    if !root("connects_a_namespace_to_the_bridge") {
        return;
    }
    let (host, container) = (new_netns(), new_netns());
    in_netns(&host, || {
        bridge_with_a_port(&container);

        let link = ip("-o link show dev veth0").unwrap();
        assert!(link.contains(" master husk0 "), "{link}");
        assert!(flags(&link).contains(&"UP"), "{link}");
        let addr = ip("-o -4 addr show dev husk0").unwrap();
        assert!(addr.contains("inet 10.88.0.1/24"), "{addr}");
        assert!(ip("link show dev eth0").is_err(), "the peer is on the host");
    });
    in_netns(&container, || {
        let mut nl = Netlink::open().unwrap();
        let eth0 = nl.index("eth0").unwrap();
        nl.add_address(eth0, v4(10, 88, 0, 2), 24).unwrap();
        nl.set_up(eth0).unwrap();
        nl.add_default_route(Ipv4Addr::new(10, 88, 0, 1)).unwrap();

        let addr = ip("-o -4 addr show dev eth0").unwrap();
        assert!(addr.contains("inet 10.88.0.2/24"), "{addr}");
        let route = ip("-d route show default table main").unwrap();
        assert!(
            route.contains("unicast default via 10.88.0.1 dev eth0 proto boot scope global"),
            "{route}"
        );
        // Until one answer, for at most 5 s: the links' carrier comes up
        // (and their queues start) in the kernel's linkwatch work, up to a
        // second after they are set up, and a packet sent before is lost.
        let ping = Command::new("ping")
            .args(["-c1", "-i0.2", "-w5", "10.88.0.1"])
            .output()
            .unwrap_or_else(|e| panic!("run ping (package iputils-ping): {e}"));
        assert!(
            ping.status.success(),
            "ping the bridge from the container: {}{}",
            String::from_utf8_lossy(&ping.stdout),
            String::from_utf8_lossy(&ping.stderr)
        );
    });
}

#[test]
fn deleting_one_end_of_a_veth_deletes_both() {
    if !root("deleting_one_end_of_a_veth_deletes_both") {
        return;
    }
    let (host, container) = (new_netns(), new_netns());
    in_netns(&host, || {
        let mut nl = Netlink::open().unwrap();
        nl.add_veth("veth0", "eth0", Some(container.as_raw_fd()))
            .unwrap();
        in_netns(&container, || assert!(ip("link show dev eth0").is_ok()));
        nl.delete_link(nl.index("veth0").unwrap()).unwrap();
        assert!(ip("link show dev veth0").is_err(), "veth0 is still there");
    });
    in_netns(&container, || {
        assert!(ip("link show dev eth0").is_err(), "its peer is still there");
    });
}

#[test]
fn a_socket_acts_in_the_namespace_it_was_opened_in() {
    if !root("a_socket_acts_in_the_namespace_it_was_opened_in") {
        return;
    }
    let (host, container) = (new_netns(), new_netns());
    let mut inside = in_netns(&container, || Netlink::open().unwrap());
    in_netns(&host, || {
        let mut nl = Netlink::open().unwrap();
        nl.add_veth("veth0", "eth0", Some(container.as_raw_fd()))
            .unwrap();
        // Used from a thread in the host's namespace, the container's
        // socket still sees and changes the container's links only.
        let eth0 = inside.index("eth0").unwrap();
        inside.set_up(eth0).unwrap();
        let veth0 = inside.index("veth0").unwrap_err();
        assert_eq!(
            veth0.message,
            "netlink: index of veth0: ENODEV (No such device)"
        );
        let link = ip("-o link show dev veth0").unwrap();
        assert!(!flags(&link).contains(&"UP"), "{link}");
    });
    in_netns(&container, || {
        let link = ip("-o link show dev eth0").unwrap();
        assert!(flags(&link).contains(&"UP"), "{link}");
    });
}

#[test]
fn errors_name_the_operation_the_link_and_the_errno() {
    if !root("errors_name_the_operation_the_link_and_the_errno") {
        return;
    }
    let host = new_netns();
    in_netns(&host, || {
        let mut nl = Netlink::open().unwrap();
        nl.add_bridge("husk0").unwrap();
        let again = nl.add_bridge("husk0").unwrap_err();
        assert_eq!(
            again.message,
            "netlink: add bridge husk0: EEXIST (File exists)"
        );
        let missing = nl.add_address(9999, v4(10, 88, 0, 1), 24).unwrap_err();
        assert_eq!(
            missing.message,
            "netlink: add address 10.88.0.1/24 to link 9999: ENODEV (No such device)"
        );
        let bridge = nl.index("husk0").unwrap();
        let bad = nl.add_address(bridge, v4(10, 88, 0, 1), 33).unwrap_err();
        assert_eq!(
            bad.message,
            "netlink: add address 10.88.0.1/33 to husk0: EINVAL (Invalid argument)"
        );
        let long = nl.add_bridge("a-name-too-long-for-a-link").unwrap_err();
        assert!(
            long.message.ends_with(": EINVAL (Invalid argument)"),
            "{long}"
        );
    });
}

/// Whether the kernel tests can run: making network namespaces and links
/// needs root. Without it, say why the test did nothing.
fn root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("{test}: skipped: needs root to make network namespaces and links");
    false
}

/// A new network namespace with `lo` up, held by an fd. Made on a thread
/// of its own, since unshare(CLONE_NEWNET) moves only the calling thread.
pub(super) fn new_netns() -> OwnedFd {
    join(std::thread::spawn(|| {
        // SAFETY: unshare takes no pointers; it moves this thread only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!("unshare(CLONE_NEWNET): {}", io::Error::last_os_error());
        }
        let ns = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let mut nl = Netlink::open().unwrap();
        nl.set_up(nl.index("lo").unwrap()).unwrap();
        OwnedFd::from(ns)
    }))
}

/// In this thread's namespace: bridge `husk0` at 10.88.0.1/24, up, with
/// port `veth0` up, whose peer is `eth0` in `container`.
pub(super) fn bridge_with_a_port(container: &OwnedFd) {
    let mut nl = Netlink::open().unwrap();
    nl.add_bridge("husk0").unwrap();
    let bridge = nl.index("husk0").unwrap();
    nl.add_address(bridge, v4(10, 88, 0, 1), 24).unwrap();
    nl.set_up(bridge).unwrap();
    nl.add_veth("veth0", "eth0", Some(container.as_raw_fd()))
        .unwrap();
    let veth = nl.index("veth0").unwrap();
    nl.set_master(veth, bridge).unwrap();
    nl.set_up(veth).unwrap();
}

/// `f`, run on a thread in the network namespace `ns`.
pub(super) fn in_netns<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let thread = s.spawn(|| {
            // SAFETY: setns on an fd we hold; it moves this thread only.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                panic!("setns(CLONE_NEWNET): {}", io::Error::last_os_error());
            }
            f()
        });
        thread
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn join<T>(thread: std::thread::JoinHandle<T>) -> T {
    thread
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// `ip ARGS`'s output in this thread's network namespace, or its error.
fn ip(args: &str) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args.split(' '))
        .output()
        .unwrap_or_else(|e| panic!("run ip (package iproute2): {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The flags of `ip -o link`'s line: "<BROADCAST,MULTICAST,UP>".
fn flags(link: &str) -> Vec<&str> {
    let start = link.find('<').map_or(0, |i| i + 1);
    let end = link.find('>').unwrap_or(start);
    link[start..end].split(',').collect()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

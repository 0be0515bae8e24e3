//! nft.rs: one rule's encoding without privileges, then the chains it
//! makes as root, in network namespaces of the tests' own (the host's
//! rules are never touched), read back with the nft tool (package
//! nftables) run from a thread in the namespace: a child starts in its
//! parent thread's namespaces. A published port is also tried end to end.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use super::netlink::Netlink;
use super::nft::{
    add_network, add_ports, ifname, remove_network, remove_ports, verdict, Batch, Port, Proto,
};
use super::tests::{bridge_with_a_port, in_netns, new_netns};

#[test]
fn a_rule_is_encoded_as_nf_tables_reads_it() {
    let mut b = Batch::new();
    b.rule("n-fwd", |r| {
        ifname(r, libc::NFT_META_OIFNAME, libc::NFT_CMP_EQ as u32, b"husk");
        verdict(r, libc::NF_DROP);
    });
    let nested = |kind: u16| kind | libc::NLA_F_NESTED as u16;
    // A header: its length (padding left out) and type.
    let h = |len: u16, kind: u16| [len.to_ne_bytes(), kind.to_ne_bytes()].concat();
    let be32 = |kind: u16, value: u32| [h(8, kind), value.to_be_bytes().to_vec()].concat();
    let ack = libc::NLM_F_REQUEST | libc::NLM_F_ACK;
    let rule_flags = (ack | libc::NLM_F_CREATE | libc::NLM_F_APPEND) as u16;
    let want = [
        // Batch begin: for nf_tables (subsystem 10, big-endian), seq 0.
        &20u32.to_ne_bytes()[..],
        &(libc::NFNL_MSG_BATCH_BEGIN as u16).to_ne_bytes(),
        &(ack as u16).to_ne_bytes(),
        &0u32.to_ne_bytes(),
        &0u32.to_ne_bytes(),
        &[0, 0, 0, 10],
        // The rule, seq 1: family ip, table and chain.
        &176u32.to_ne_bytes(),
        &0x0a06u16.to_ne_bytes(), // NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWRULE
        &rule_flags.to_ne_bytes(),
        &1u32.to_ne_bytes(),
        &0u32.to_ne_bytes(),
        &[libc::NFPROTO_IPV4 as u8, 0, 0, 0],
        &h(9, 1),
        b"husk\0\0\0\0",
        &h(10, 2),
        b"n-fwd\0\0\0",
        // Its expressions, each a list element with a name and data.
        &h(132, nested(4)),
        // meta load oifname => reg 1
        &h(36, nested(1)),
        &h(9, 1),
        b"meta\0\0\0\0",
        &h(20, nested(2)),
        &be32(1, 1),
        &be32(2, libc::NFT_META_OIFNAME as u32),
        // cmp eq reg 1 "husk": over 4 bytes, the prefix "husk*".
        &h(44, nested(1)),
        &h(8, 1),
        b"cmp\0",
        &h(32, nested(2)),
        &be32(1, 1),
        &be32(2, 0),
        &h(12, nested(3)),
        &h(8, 1),
        b"husk",
        // immediate reg 0 (the verdict) drop.
        &h(48, nested(1)),
        &h(14, 1),
        b"immediate\0\0\0",
        &h(28, nested(2)),
        &be32(1, 0),
        &h(16, nested(2)),
        &h(12, nested(2)),
        &be32(1, 0),
    ]
    .concat();
    assert_eq!(b.bytes, want);
}

#[test]
fn makes_a_network_and_its_ports_and_removes_them() {
    root();
    in_netns(&new_netns(), || {
        add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 16).unwrap();
        assert_eq!(
            nft("list table ip husk").unwrap(),
            [
                "table ip husk {",
                "chain n-husk0-post {",
                "type nat hook postrouting priority srcnat; policy accept;",
                "ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 masquerade",
                "oifname \"husk0\" ip saddr 127.0.0.0/8 masquerade",
                "}",
                "chain n-husk0-fwd {",
                "type filter hook forward priority filter; policy accept;",
                "iifname \"husk0\" oifname \"husk*\" oifname != \"husk0\" drop",
                "}",
                "}",
            ]
        );

        add_ports("veth1234", Ipv4Addr::new(10, 88, 0, 2), &ports()).unwrap();
        let rules = [
            "fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80",
            "ip daddr 127.0.0.1 udp dport 53 dnat to 10.88.0.2:5353",
        ];
        // nft names priority -100 "dstnat" on prerouting only.
        let hooks = [
            ("pre", "prerouting priority dstnat"),
            ("out", "output priority -100"),
        ];
        for (chain, hook) in hooks {
            let head = format!("type nat hook {hook}; policy accept;");
            let want = [
                "table ip husk {",
                &format!("chain veth1234-{chain} {{"),
                &head,
                rules[0],
                rules[1],
                "}",
                "}",
            ];
            assert_eq!(
                nft(&format!("list chain ip husk veth1234-{chain}")).unwrap(),
                want
            );
        }

        remove_ports("veth1234").unwrap();
        let gone = nft("list chain ip husk veth1234-pre").unwrap_err();
        assert!(gone.contains("No such file or directory"), "{gone}");
        let table = nft("list table ip husk").unwrap();
        assert_eq!(table.len(), 11, "the network's chains stay: {table:?}");

        remove_network("n-husk0", true).unwrap();
        assert_eq!(nft("list ruleset").unwrap(), Vec::<String>::new());
    });
}

#[test]
fn removing_what_is_not_there_is_fine() {
    root();
    in_netns(&new_netns(), || {
        // No table.
        remove_ports("veth1234").unwrap();
        remove_network("n-husk0", false).unwrap();
        remove_network("n-husk0", true).unwrap();
        // A table without those chains.
        add_network("n-husk1", "husk1", Ipv4Addr::new(10, 89, 0, 0), 16).unwrap();
        remove_ports("veth1234").unwrap();
        remove_network("n-husk0", false).unwrap();
        assert_eq!(nft("list table ip husk").unwrap().len(), 11);
        // Twice.
        remove_network("n-husk1", true).unwrap();
        remove_network("n-husk1", true).unwrap();
        assert_eq!(nft("list ruleset").unwrap(), Vec::<String>::new());
    });
}

#[test]
fn removing_one_network_leaves_the_others() {
    root();
    in_netns(&new_netns(), || {
        add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 16).unwrap();
        add_network("n-husk1", "husk1", Ipv4Addr::new(10, 89, 0, 0), 24).unwrap();
        remove_network("n-husk0", false).unwrap();
        let table = nft("list table ip husk").unwrap();
        assert!(!table.iter().any(|l| l.contains("husk0")), "{table:?}");
        let kept = "ip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 masquerade";
        assert!(table.iter().any(|l| l == kept), "{table:?}");
        assert_eq!(table.len(), 11, "{table:?}");
        // Made again, as when husk starts a network it had taken down.
        add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 16).unwrap();
        assert_eq!(nft("list table ip husk").unwrap().len(), 20);
    });
}

#[test]
fn a_second_add_fails_whole_and_keeps_the_first() {
    root();
    in_netns(&new_netns(), || {
        add_ports("veth1234", Ipv4Addr::new(10, 88, 0, 2), &ports()).unwrap();
        let before = nft("list table ip husk").unwrap();
        let other = [Port {
            host_ip: None,
            host_port: 9999,
            port: 99,
            proto: Proto::Tcp,
        }];
        let again = add_ports("veth1234", Ipv4Addr::new(10, 88, 0, 3), &other).unwrap_err();
        assert_eq!(
            again.message,
            "nftables: add chain ip husk veth1234-pre: EEXIST (File exists)"
        );
        // Nothing of the failed batch was applied, not even in part.
        assert_eq!(nft("list table ip husk").unwrap(), before);

        add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 16).unwrap();
        let again = add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 16).unwrap_err();
        assert_eq!(
            again.message,
            "nftables: add chain ip husk n-husk0-post: EEXIST (File exists)"
        );
    });
}

#[test]
fn many_ports_fit_in_one_batch() {
    root();
    in_netns(&new_netns(), || {
        // Past the socket's default buffers (about 200 KiB each way):
        // without making room the send fails with EMSGSIZE, and the
        // acks overflow with ENOBUFS.
        let ports: Vec<Port> = (1..=1500)
            .map(|p| Port {
                host_ip: None,
                host_port: p,
                port: p,
                proto: Proto::Udp,
            })
            .collect();
        add_ports("veth1234", Ipv4Addr::new(10, 88, 0, 2), &ports).unwrap();
        let out = nft("list chain ip husk veth1234-out").unwrap();
        assert_eq!(out.len(), 5 + 1500);
        assert_eq!(
            out[out.len() - 3],
            "fib daddr type local udp dport 1500 dnat to 10.88.0.2:1500",
            "in order"
        );
        remove_ports("veth1234").unwrap();
    });
}

#[test]
fn without_cap_net_admin_the_batch_is_refused() {
    root();
    in_netns(&new_netns(), || {
        // SAFETY: the raw syscall (unlike libc's setresuid) changes only
        // this thread's ids, and with them its capabilities; the thread
        // ends with the closure.
        let r = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(r, 0, "setresuid: {}", io::Error::last_os_error());
        let net = Ipv4Addr::new(10, 88, 0, 0);
        let refused = add_network("n-husk0", "husk0", net, 16).unwrap_err();
        assert_eq!(
            refused.message,
            "nftables: batch on table ip husk: EPERM (Operation not permitted)"
        );
        let refused = remove_network("n-husk0", true).unwrap_err();
        assert_eq!(
            refused.message,
            "nftables: batch on table ip husk: EPERM (Operation not permitted)"
        );
    });
}

#[test]
fn bad_names_are_refused_before_the_kernel_sees_them() {
    // Checked before any socket is opened: no privileges needed.
    let net = Ipv4Addr::new(10, 88, 0, 0);
    let bad_tag = add_network("N 1", "husk0", net, 16).unwrap_err();
    assert_eq!(
        bad_tag.message,
        "nftables: chain tag \"N 1\": EINVAL (Invalid argument)"
    );
    let long = "a".repeat(21);
    assert!(remove_ports(&long).is_err());
    let bad_bridge = add_network("n-1", "a-name-too-long-for-a-link", net, 16).unwrap_err();
    assert!(
        bad_bridge.message.ends_with(": EINVAL (Invalid argument)"),
        "{bad_bridge}"
    );
    let bad_prefix = add_network("n-1", "husk0", net, 33).unwrap_err();
    assert_eq!(
        bad_prefix.message,
        "nftables: prefix /33: EINVAL (Invalid argument)"
    );
}

/// A container on a bridge, reached through its published port from the
/// host, at the bridge's address and at 127.0.0.1 (the output chain; the
/// container sees the bridge's address, masqueraded, in both cases).
#[test]
fn a_published_port_reaches_the_container() {
    root();
    let (host, container) = (new_netns(), new_netns());
    in_netns(&host, || {
        bridge_with_a_port(&container);
        // This thread's namespace's, which /proc/sys/net shows it.
        std::fs::write("/proc/sys/net/ipv4/conf/husk0/route_localnet", b"1").unwrap();
    });
    let listener = in_netns(&container, || {
        let mut nl = Netlink::open().unwrap();
        let eth0 = nl.index("eth0").unwrap();
        nl.add_address(eth0, IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2)), 24)
            .unwrap();
        nl.set_up(eth0).unwrap();
        nl.add_default_route(Ipv4Addr::new(10, 88, 0, 1)).unwrap();
        TcpListener::bind("0.0.0.0:80").unwrap()
    });
    // Answers each connection with the address it came from. Left
    // running: the test's end ends it.
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let peer = conn.peer_addr().map(|a| a.ip().to_string());
            let _ = conn.write_all(peer.unwrap_or_default().as_bytes());
        }
    });
    in_netns(&host, || {
        add_network("n-husk0", "husk0", Ipv4Addr::new(10, 88, 0, 0), 24).unwrap();
        let ports = [
            Port {
                host_ip: None,
                host_port: 8080,
                port: 80,
                proto: Proto::Tcp,
            },
            Port {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 9090,
                port: 80,
                proto: Proto::Tcp,
            },
        ];
        add_ports("veth0", Ipv4Addr::new(10, 88, 0, 2), &ports).unwrap();
        for to in ["10.88.0.1:8080", "127.0.0.1:8080", "127.0.0.1:9090"] {
            // Up to 10 s: the links' carrier comes up a moment after they
            // are set up, and TCP sends its SYN again after 1 s.
            let to: SocketAddr = to.parse().unwrap();
            let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
            let mut seen = String::new();
            conn.read_to_string(&mut seen).unwrap();
            assert_eq!(
                seen, "10.88.0.1",
                "the container's peer, connecting to {to}"
            );
        }
        // Published on 127.0.0.1 only: nothing listens at the bridge's.
        let other = "10.88.0.1:9090".parse().unwrap();
        let refused = TcpStream::connect_timeout(&other, Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    });
}

fn ports() -> [Port; 2] {
    [
        Port {
            host_ip: None,
            host_port: 8080,
            port: 80,
            proto: Proto::Tcp,
        },
        Port {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 53,
            port: 5353,
            proto: Proto::Udp,
        },
    ]
}

/// The kernel tests make network namespaces and nf_tables chains, which
/// needs root; CI runs them as root, so without it they fail rather than
/// pass having checked nothing.
fn root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("needs root, to make network namespaces and nf_tables chains");
    }
}

/// `nft ARGS`'s output lines in this thread's network namespace, trimmed
/// and without empty ones, or its error.
fn nft(args: &str) -> Result<Vec<String>, String> {
    let out = Command::new("nft")
        .args(args.split(' '))
        .output()
        .unwrap_or_else(|e| panic!("run nft (package nftables): {e}"));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

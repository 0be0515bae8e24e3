//! Bridge networking, never on the real host's network: each scenario
//! moves its thread into a network namespace of its own that stands for
//! the host (every runner it starts is a child of that thread, so runs
//! there), with a second namespace as "the outside world" behind a veth
//! pair of the test's own, 192.168.77.1 (the host) – 192.168.77.2 (the
//! outside), where a small server answers with the address it sees.
//! Before and after, the host's links, addresses, routes, nftables
//! ruleset and address pools are compared: they must be exactly as before.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use runner::net::netlink::Netlink;

use crate::detached::Detached;
use crate::harness::one_error_line;
use crate::{check, output, Env, Output, R};

const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The outside server's port.
const SERVER: u16 = 8000;

/// The scenario's thread in a network namespace of its own, with the
/// outside world beside it; the thread's own namespace comes back when
/// dropped.
pub(crate) struct Lab {
    own: OwnedFd,
    outside: OwnedFd,
    before: String,
}

fn ns_fd(path: &str) -> OwnedFd {
    let c = std::ffi::CString::new(path).unwrap();
    // SAFETY: open of a C string; the fd is then ours.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    // SAFETY: fresh.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn setns(fd: &OwnedFd) {
    // SAFETY: setns of this thread with our own fd.
    let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A new network namespace, made by a thread of its own.
fn new_ns() -> OwnedFd {
    std::thread::spawn(|| {
        // SAFETY: unshare of this thread's network namespace only.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
        ns_fd("/proc/thread-self/ns/net")
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread in the namespace `ns`.
fn inside<T: Send>(ns: &OwnedFd, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns);
            f()
        })
        .join()
        .unwrap()
    })
}

fn up_lo(nl: &mut Netlink) -> Result<(), String> {
    let lo = nl.index("lo").map_err(|e| e.message)?;
    nl.set_up(lo).map_err(|e| e.message)
}

impl Lab {
    pub(crate) fn enter() -> Result<Lab, String> {
        let own = ns_fd("/proc/thread-self/ns/net");
        let host = new_ns();
        let outside = new_ns();
        setns(&host);
        let mut nl = Netlink::open().map_err(|e| e.message)?;
        let made = (|| {
            up_lo(&mut nl)?;
            nl.add_veth("out0", "out1", Some(outside.as_raw_fd()))
                .map_err(|e| e.message)?;
            let i = nl.index("out0").map_err(|e| e.message)?;
            // Its IPv6 link-local address would come when the kernel's
            // link watch sees the carrier, which on a slow guest is after
            // the snapshot. (This thread's namespace's sysctl.)
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/out0/disable_ipv6", "1");
            nl.add_address(i, IpAddr::V4(HOST), 24)
                .map_err(|e| e.message)?;
            nl.set_up(i).map_err(|e| e.message)?;
            inside(&outside, || -> Result<(), String> {
                let mut nl = Netlink::open().map_err(|e| e.message)?;
                up_lo(&mut nl)?;
                let i = nl.index("out1").map_err(|e| e.message)?;
                nl.add_address(i, IpAddr::V4(OUTSIDE), 24)
                    .map_err(|e| e.message)?;
                nl.set_up(i).map_err(|e| e.message)
            })
        })();
        let mut lab = Lab {
            own,
            outside,
            before: String::new(),
        };
        made?;
        lab.before = crate::netdump::snapshot()?;
        check(
            lab.before.contains(" out0 kind=veth ") && lab.before.contains(" 192.168.77.1/24 "),
            || format!("the dump lacks out0 and its address:\n{}", lab.before),
        )?;
        Ok(lab)
    }

    /// The host as it was before, and no address leased in the store.
    pub(crate) fn unchanged(&self) -> R {
        let now = crate::netdump::snapshot()?;
        check(now == self.before, || {
            format!("the host changed:\nbefore:\n{}\nafter:\n{now}", self.before)
        })?;
        let pools = std::path::Path::new(runner::store::DEFAULT_ROOT).join(".networks");
        let leases: Vec<String> = std::fs::read_dir(&pools)
            .map(|d| {
                d.flatten()
                    .flat_map(|f| {
                        let t = std::fs::read_to_string(f.path()).unwrap_or_default();
                        t.lines()
                            .filter(|l| l.starts_with("lease "))
                            .map(String::from)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        check(leases.is_empty(), || {
            format!("addresses still leased: {leases:?}")
        })
    }

    /// A server in the outside world that answers each connection with
    /// the address it came from, `n` times.
    fn serve(&self, n: usize) -> std::thread::JoinHandle<()> {
        // Bound before the scenario goes on, so a client never races it.
        let listener = inside(&self.outside, || {
            TcpListener::bind(SocketAddr::new(IpAddr::V4(OUTSIDE), SERVER)).unwrap()
        });
        std::thread::spawn(move || {
            for conn in listener.incoming().take(n).flatten() {
                let mut conn = conn;
                let peer = conn
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0; 512];
                let _ = conn.read(&mut buf);
                let _ = write!(conn, "HTTP/1.0 200 OK\r\n\r\npeer={peer}\n");
            }
        })
    }

    /// GET `path` of `addr` from the outside world, or why not.
    fn get_from_outside(&self, addr: SocketAddr, path: &str) -> Result<String, String> {
        inside(&self.outside, || get(addr, path))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        setns(&self.own);
    }
}

/// A plain HTTP/1.0 GET: the body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(reply))
}

/// The container's address, as `inspect` records it.
pub(crate) fn address(c: &Detached) -> Result<Ipv4Addr, String> {
    let v = c.inspect()?;
    v.get("address")
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{}: no address in inspect", c.id))
}

/// A web server in a detached container: busybox httpd serving /etc, so
/// GET /hosts names the container. Returned once it answers the host: on
/// an emulated guest it may not listen yet when `run -d` returns, and a
/// peer's wget then got "Connection reset by peer" (aarch64 under TCG).
pub(crate) fn web<'a>(env: &'a Env, flags: &[&str]) -> Result<Detached<'a>, String> {
    let c = env.detach(
        flags,
        &["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/etc"],
    )?;
    let at = SocketAddr::new(IpAddr::V4(address(&c)?), 80);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match get(at, "/hosts") {
            Ok(_) => return Ok(c),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(format!("{}: its httpd never answered on {at}: {e}", c.id))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

pub fn bridge_containers_talk_and_reach_out_through_nat(env: &Env) -> R {
    let lab = Lab::enter()?;
    let server = lab.serve(1);
    {
        let a = web(env, &["--net", "bridge", "--hostname", "alpha"])?;
        let ip = address(&a)?;
        // eth0 with its address and a default route via the gateway; its
        // own name resolves to it; the peer's page; the outside server
        // sees the host's address: masqueraded.
        let script = format!(
            "ip -o -4 addr show eth0 | awk '{{print $4}}'; ip route | grep default; \
             grep beta /etc/hosts; timeout 5 wget -q -O - http://{ip}/hosts | grep alpha; \
             timeout 5 wget -q -O - http://{OUTSIDE}:{SERVER}/"
        );
        let out = env.sh(&["--net", "bridge", "--hostname", "beta"], &script);
        out.expect(0)?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        check(lines.len() == 5, || format!("expected five lines\n{out}"))?;
        let own: Ipv4Addr = lines[0]
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("no eth0 address\n{out}"))?;
        check(lines[0].ends_with("/16") && own != ip, || {
            format!("eth0 is not a second address in 10.88.0.0/16 (the first: {ip})\n{out}")
        })?;
        check(
            lines[1].starts_with("default via 10.88.0.1 dev eth0"),
            || format!("no default route via the gateway\n{out}"),
        )?;
        check(lines[2] == format!("{own}\tbeta"), || {
            format!("/etc/hosts does not name beta {own}\n{out}")
        })?;
        check(lines[3] == format!("{ip}\talpha"), || {
            format!("the peer's page is not alpha's\n{out}")
        })?;
        check(lines[4] == format!("peer={HOST}"), || {
            format!("the outside saw another address than the host's {HOST}\n{out}")
        })?;
        // Another container sharing alpha's network namespace sees its eth0.
        let shared = format!("container:{}", a.id);
        let out = env.sh(&["--net", &shared], "ip -o -4 addr show eth0");
        out.expect(0)?;
        check(out.stdout.contains(&format!(" {ip}/16 ")), || {
            format!("--net {shared} does not see alpha's address {ip}\n{out}")
        })?;
    }
    let _ = server.join();
    lab.unchanged()
}

pub fn published_ports_reach_the_container_from_outside_and_localhost(env: &Env) -> R {
    let lab = Lab::enter()?;
    {
        let a = web(
            env,
            &["--net", "bridge", "--hostname", "pub", "-p", "8080:80"],
        )?;
        let b = web(
            env,
            &[
                "--net",
                "bridge",
                "--hostname",
                "lo",
                "-p",
                "127.0.0.1:9090:80/tcp",
            ],
        )?;
        // The leftover check's dump sees what a published port makes.
        let during = crate::netdump::snapshot()?;
        let made = [
            "kind=bridge",
            "nft table family=2 husk",
            "n-husk0-post",
            "-pre ",
        ];
        check(made.iter().all(|m| during.contains(m)), || {
            format!("the dump lacks one of {made:?}:\n{during}")
        })?;
        let from_outside = lab.get_from_outside(SocketAddr::new(HOST.into(), 8080), "/hosts")?;
        check(from_outside.contains("\tpub\n"), || {
            format!("from the outside, port 8080 gave {from_outside:?}")
        })?;
        for port in [8080, 9090] {
            let local = get(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port), "/hosts")?;
            let want = if port == 8080 { "\tpub\n" } else { "\tlo\n" };
            check(local.contains(want), || {
                format!("from the host's localhost, port {port} gave {local:?}")
            })?;
        }
        // Published on 127.0.0.1 only: not reachable from outside.
        let refused = lab.get_from_outside(SocketAddr::new(HOST.into(), 9090), "/hosts");
        check(refused.is_err(), || {
            format!("port 9090, published on 127.0.0.1 only, answered the outside: {refused:?}")
        })?;
        let ports = b.inspect()?;
        let p = ports.get("ports").map(|p| p.to_json()).unwrap_or_default();
        check(p == r#"["127.0.0.1:9090:80/tcp"]"#, || {
            format!("inspect shows the ports as {p}")
        })?;
        drop((a, b));
    }
    lab.unchanged()
}

pub fn networks_are_isolated_and_addresses_come_back(env: &Env) -> R {
    let lab = Lab::enter()?;
    let made = env.husk(&["network", "create", "--subnet", "10.89.5.0/24", "lab5"]);
    made.expect(0)?;
    let result = (|| -> R {
        let a = web(
            env,
            &["--net", "lab5", "--hostname", "five", "--ip", "10.89.5.9"],
        )?;
        check(address(&a)? == Ipv4Addr::new(10, 89, 5, 9), || {
            "--ip was not taken".into()
        })?;
        let ls = env.husk(&["network", "ls"]);
        ls.expect(0)?;
        check(
            ls.stdout.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w == ["lab5", "10.89.5.0/24", "10.89.5.1", "husk1", "1"]
            }),
            || format!("network ls does not show lab5 with one container\n{ls}"),
        )?;
        let same = env.sh(
            &["--net", "lab5"],
            "timeout 3 wget -q -O - http://10.89.5.9/hosts; exit $?",
        );
        check(
            same.status == 0 && same.stdout.contains("10.89.5.9\tfive\n"),
            || format!("a container on the same network could not reach it\n{same}"),
        )?;
        let other = env.sh(
            &["--net", "bridge"],
            "timeout 3 wget -q -O - http://10.89.5.9/hosts; exit $?",
        );
        // Dropped, not refused: wget waits until timeout ends it (143).
        check(other.status == 143, || {
            format!("a container on another network reached it, or was not dropped\n{other}")
        })?;
        let taken = env.sh(&["--net", "lab5", "--ip", "10.89.5.9"], "true");
        one_error_line(&taken, 125, "--ip 10.89.5.9: in use on network lab5")?;
        let rm = env.husk(&["network", "rm", "lab5"]);
        one_error_line(&rm, 125, &format!("network rm lab5: in use by {}", a.id))?;
        drop(a);
        // Its address is free again.
        let again = env.sh(&["--net", "lab5"], "ip -o -4 addr show eth0");
        again.expect(0)?;
        check(again.stdout.contains("10.89.5.2/24"), || {
            format!("the lowest address did not come back\n{again}")
        })?;
        Ok(())
    })();
    let rm = env.husk(&["network", "rm", "lab5"]);
    result?;
    rm.expect(0)?;
    let ls = env.husk(&["network", "ls"]);
    check(!ls.stdout.contains("lab5"), || {
        format!("lab5 is still listed\n{ls}")
    })?;
    lab.unchanged()
}

pub fn fifty_containers_at_once_get_fifty_addresses(env: &Env) -> R {
    let lab = Lab::enter()?;
    let rootfs = env.rootfs.to_string_lossy().into_owned();
    // Fifty runners started together, each leaving its container running.
    let children: Vec<_> = (0..50)
        .map(|_| {
            let mut c = env.husk_command(&[
                "run",
                "-d",
                "--rootfs",
                &rootfs,
                "--net",
                "bridge",
                "--",
                "/bin/sleep",
                "60",
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut held = Vec::new();
    let mut failed = Vec::new();
    for child in children {
        let out: Output = crate::harness::collect(child, Duration::from_secs(60))?;
        match out.status {
            0 => held.push(Detached::named(env, out.stdout.trim())),
            _ => failed.push(out),
        }
    }
    check(failed.is_empty(), || {
        format!("{} runs failed: {:?}", failed.len(), failed.first())
    })?;
    let addrs: std::collections::BTreeSet<Ipv4Addr> =
        held.iter().map(address).collect::<Result<_, _>>()?;
    check(addrs.len() == 50, || {
        format!("{} distinct addresses for 50 containers", addrs.len())
    })?;
    drop(held);
    lab.unchanged()
}

pub fn network_failures_and_kills_leave_nothing(env: &Env) -> R {
    let lab = Lab::enter()?;
    for (flags, want) in [
        (
            &["--net", "bridge", "-p", "80"][..],
            "-p 80: expected [HOSTIP:]HOSTPORT:PORT",
        ),
        (&["--net", "nosuch"][..], "no network nosuch"),
        (
            &["-p", "8080:80"][..],
            "-p, --ip and --dns need a bridge or CNI network",
        ),
        (
            &["--net", "bridge", "--ip", "10.99.0.2"][..],
            "--ip 10.99.0.2: not in the subnet",
        ),
        (
            &["--net", "container:nosuch"][..],
            "no running container nosuch",
        ),
    ] {
        let out = env.sh(flags, "true");
        one_error_line(&out, 125, want)?;
        lab.unchanged()?;
    }
    // A failure at each of the shim's first steps, after the network is
    // connected: nothing stays.
    for step in 0..4 {
        let mut c = env.command(&["--net", "bridge", "-p", "8080:80"], &["/bin/true"]);
        c.env("HUSK_FAIL_AT_STEP", step.to_string());
        let out = output(&mut c);
        check(out.status != 0, || {
            format!("step {step} did not fail\n{out}")
        })?;
        lab.unchanged()?;
    }
    // A runner killed with -9: the next command ends its container and
    // gives back everything.
    let mut c = env.command(
        &["--net", "bridge", "-p", "8080:80"],
        &["/bin/sh", "-c", "echo ready; sleep 60"],
    );
    let running = crate::harness::Running::spawn({
        c.stdin(std::process::Stdio::null());
        c
    })?;
    running.signal(libc::SIGKILL);
    let _ = running.finish(Duration::from_secs(10));
    env.husk(&["ps"]).expect(0)?;
    lab.unchanged()
}

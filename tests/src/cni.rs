//! `--net cni:NAME` with the standard plugins (Debian's
//! containernetworking-plugins: bridge and host-local), in the network
//! scenarios' lab: a config directory of the scenario's own (NETCONFPATH),
//! host-local's leases in it too, so that what the plugins hold can be
//! counted before and after.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use runner::net::netlink::Netlink;

use crate::detached::Detached;
use crate::harness::{one_error_line, Running};
use crate::network::{address, get, Lab};
use crate::{check, output, Env, Output, R};

/// The bridge the plugin makes, and never deletes (the CNI bridge
/// plugin's way: other containers' configs may name it).
const BRIDGE: &str = "cnihusk0";

struct Configs {
    dir: PathBuf,
}

impl Configs {
    fn new() -> Result<Configs, String> {
        let dir = std::env::temp_dir().join(format!("husk-cni-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let io = |e: std::io::Error| format!("write {}: {e}", dir.display());
        std::fs::create_dir_all(dir.join("ipam")).map_err(io)?;
        let ipam = dir.join("ipam").display().to_string();
        let list = format!(
            r#"{{"cniVersion": "1.0.0", "name": "huskcni", "plugins": [
                {{"type": "bridge", "bridge": "{BRIDGE}", "isGateway": true,
                  "ipam": {{"type": "host-local", "dataDir": "{ipam}",
                            "ranges": [[{{"subnet": "10.97.0.0/24"}}]],
                            "routes": [{{"dst": "0.0.0.0/0"}}]}}}}]}}"#
        );
        std::fs::write(dir.join("10-huskcni.conflist"), list).map_err(io)?;
        // A second plugin the machine does not have: ADD fails half-way.
        let broken = format!(
            r#"{{"cniVersion": "1.0.0", "name": "halfway", "plugins": [
                {{"type": "bridge", "bridge": "{BRIDGE}", "isGateway": true,
                  "ipam": {{"type": "host-local", "dataDir": "{ipam}",
                            "ranges": [[{{"subnet": "10.97.0.0/24"}}]]}}}},
                {{"type": "husk-no-such-plugin"}}]}}"#
        );
        std::fs::write(dir.join("20-halfway.conflist"), broken).map_err(io)?;
        Ok(Configs { dir })
    }

    /// The runner with `args`, reading configs from here.
    fn runner(&self, env: &Env, args: &[&str]) -> Command {
        let mut c = env.husk_command(args);
        c.env("NETCONFPATH", &self.dir);
        c
    }

    fn run(&self, env: &Env, flags: &[&str], script: &str) -> Output {
        let rootfs = env.rootfs.to_string_lossy().into_owned();
        let mut args = vec!["--rootfs", &rootfs];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
        output(&mut self.runner(env, &args))
    }

    /// The addresses host-local holds, on either network.
    fn leases(&self) -> Vec<String> {
        let mut held = Vec::new();
        for net in ["huskcni", "halfway"] {
            let dir = self.dir.join("ipam").join(net);
            for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.parse::<Ipv4Addr>().is_ok() {
                    held.push(name);
                }
            }
        }
        held
    }
}

impl Drop for Configs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn in_subnet(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [10, 97, 0]
}

pub fn cni_networks_run_the_standard_plugins_and_give_everything_back(env: &Env) -> R {
    let plugins = Path::new("/usr/lib/cni/bridge");
    check(plugins.exists(), || {
        format!(
            "{} is missing: apt-get install containernetworking-plugins (cargo xtask setup does)",
            plugins.display()
        )
    })?;
    let lab = Lab::enter()?;
    let cfg = Configs::new()?;
    {
        let rootfs = env.rootfs.to_string_lossy().into_owned();
        let started = output(&mut cfg.runner(
            env,
            &[
                "run",
                "-d",
                "--rootfs",
                &rootfs,
                "--net",
                "cni:huskcni",
                "--hostname",
                "cnia",
                "--",
                "/bin/busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/etc",
            ],
        ));
        started.expect(0)?;
        let a = Detached::named(env, started.stdout.trim());
        let ip = address(&a)?;
        let inspect = a.inspect()?;
        let net = inspect
            .get("network")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        check(in_subnet(ip) && net == "cni:huskcni", || {
            format!("inspect shows network {net:?}, address {ip}: not huskcni's 10.97.0.0/24")
        })?;
        // From the host, through the bridge the plugin made.
        let page = get(SocketAddr::new(ip.into(), 80), "/hosts")?;
        check(page.contains(&format!("{ip}\tcnia\n")), || {
            format!("/etc/hosts does not name cnia on its address {ip}: {page:?}")
        })?;
        // Another container on the network reaches the first.
        let out = cfg.run(
            env,
            &["--net", "cni:huskcni", "--hostname", "cnib"],
            &format!(
                "ip -o -4 addr show eth0 | awk '{{print $4}}'; ip route | grep default; \
                 grep cnib /etc/hosts; timeout 5 wget -q -O - http://{ip}/hosts | grep cnia"
            ),
        );
        out.expect(0)?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        let own: Option<Ipv4Addr> = lines
            .first()
            .and_then(|l| l.split('/').next())
            .and_then(|a| a.parse().ok());
        check(
            lines.len() == 4
                && own.is_some_and(|o| in_subnet(o) && o != ip)
                && lines[1].starts_with("default via 10.97.0.1 dev eth0")
                && own.is_some_and(|o| lines[2] == format!("{o}\tcnib"))
                && lines[3] == format!("{ip}\tcnia"),
            || format!("the second container's network is not as ADD made it\n{out}"),
        )?;
        check(cfg.leases().len() == 1, || {
            format!(
                "host-local holds {:?}: only the first container's should be left",
                cfg.leases()
            )
        })?;
        drop(a);
    }
    check(cfg.leases().is_empty(), || {
        format!("host-local still holds {:?} after rm", cfg.leases())
    })?;
    // A plugin that cannot be found, after one that ran: one line, and
    // DEL gives back what the first made.
    let out = cfg.run(env, &["--net", "cni:halfway"], "true");
    one_error_line(
        &out,
        125,
        "--net cni:halfway: CNI plugin \"husk-no-such-plugin\" ADD: not found",
    )?;
    let out = cfg.run(env, &["--net", "cni:nosuch"], "true");
    one_error_line(
        &out,
        125,
        "--net cni:nosuch: no network config named \"nosuch\"",
    )?;
    let out = cfg.run(env, &["--net", "cni:huskcni", "-p", "8080:80"], "true");
    one_error_line(&out, 125, "no plugin of it has the portMappings capability")?;
    check(cfg.leases().is_empty(), || {
        format!("host-local holds {:?} after the failures", cfg.leases())
    })?;
    // A runner killed with -9: the next command runs DEL from what the
    // container's entry kept.
    let rootfs = env.rootfs.to_string_lossy().into_owned();
    let running = Running::spawn(cfg.runner(
        env,
        &[
            "--rootfs",
            &rootfs,
            "--net",
            "cni:huskcni",
            "--",
            "/bin/sh",
            "-c",
            "echo ready; sleep 60",
        ],
    ))?;
    check(cfg.leases().len() == 1, || {
        format!(
            "host-local holds {:?} while one container runs",
            cfg.leases()
        )
    })?;
    running.signal(libc::SIGKILL);
    let _ = running.finish(Duration::from_secs(10));
    env.husk(&["ps"]).expect(0)?;
    check(cfg.leases().is_empty(), || {
        format!("host-local holds {:?} after the sweep", cfg.leases())
    })?;
    // The bridge is the plugin's to keep; everything else must be gone.
    let mut nl = Netlink::open().map_err(|e| e.message)?;
    let bridge = nl.index(BRIDGE).map_err(|e| e.message)?;
    nl.delete_link(bridge).map_err(|e| e.message)?;
    // Without its namespace, DEL left the pair to the kernel's cleanup of
    // the dead namespace, which comes a moment later.
    crate::detached::eventually(Duration::from_secs(5), || lab.unchanged().is_ok());
    lab.unchanged()
}

//! `runner network create|ls|rm`: the definitions of bridge networks in
//! the state store (net/pool.rs). A network's bridge and rules are made
//! with its first container, not here: a network nobody uses changes
//! nothing on the host.

use runner::error::{Error, Result};
use runner::net::pool::{self, Pools};

use crate::cli::network::Network;

pub fn network(a: Network) -> Result<i32> {
    // Containers whose runner was killed give their addresses back first.
    let store = crate::commands::store(a.root.as_deref())?;
    let pools = Pools::lock(store.root())?;
    let gone = |holder: &str| !store.root().join(holder).is_dir();
    let arity = |n: usize| {
        if (n == usize::MAX && a.names.is_empty()) || (n != usize::MAX && a.names.len() != n) {
            return Err(Error::new(format!(
                "network {}: expected {} (see runner network --help)",
                a.action,
                ["no NAME", "one NAME", "NAME..."][n.min(2)]
            )));
        }
        Ok(())
    };
    if a.action != "create" && (a.subnet.is_some() || a.gateway.is_some()) {
        return Err(Error::new("--subnet and --gateway are for network create"));
    }
    match a.action.as_str() {
        "create" => {
            arity(1)?;
            let net = pools.define(&a.names[0], a.subnet.as_deref(), a.gateway.as_deref())?;
            pools.save(&net)?;
            println!("{}", net.name);
        }
        "ls" => {
            arity(0)?;
            let mut all = pools.all();
            if !all.iter().any(|n| n.name == pool::DEFAULT) {
                all.insert(0, pools.get(pool::DEFAULT)?);
            }
            println!(
                "{:<16} {:<18} {:<15} {:<8} CONTAINERS",
                "NAME", "SUBNET", "GATEWAY", "BRIDGE"
            );
            for n in all {
                let on = n.leases.iter().filter(|(_, h)| !gone(h)).count();
                let subnet = format!("{}/{}", n.subnet, n.prefix);
                println!(
                    "{:<16} {subnet:<18} {:<15} {:<8} {on}",
                    n.name,
                    n.gateway.to_string(),
                    n.bridge
                );
            }
        }
        "rm" => {
            arity(usize::MAX)?;
            for name in &a.names {
                if name == pool::DEFAULT {
                    return Err(Error::new(format!(
                        "network rm {name}: the default network is made with its first container and goes with its last"
                    )));
                }
                let n = pools.get(name)?;
                let on: Vec<&str> = n
                    .leases
                    .iter()
                    .map(|(_, h)| h.as_str())
                    .filter(|h| !gone(h))
                    .collect();
                if !on.is_empty() {
                    return Err(Error::new(format!(
                        "network rm {name}: in use by {} (stop them first)",
                        on.join(", ")
                    )));
                }
                pools.remove(name)?;
                println!("{name}");
            }
        }
        other => {
            return Err(Error::new(format!(
                "network {other}: expected create, ls or rm"
            )))
        }
    }
    Ok(0)
}

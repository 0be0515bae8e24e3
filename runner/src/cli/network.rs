//! `runner network`: the bridge networks containers join with --net NAME.

use super::flags::{flag, Form, Given, Kind::*};
use super::ROOT_HELP;

#[derive(Debug)]
pub struct Network {
    pub root: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    /// create, ls or rm.
    pub action: String,
    pub names: Vec<String>,
}

pub const NETWORK: Form = Form {
    word: "network",
    about: "Manage bridge networks: `create [--subnet CIDR] [--gateway IP] NAME` (default: the \
            first free 10.89.N.0/24 and its first address), `ls`, `rm NAME...` (refused while a \
            container is on it). Each network's bridge (husk<N>) and rules are made with its \
            first container and removed with its last; husk0, 10.88.0.0/16, is --net bridge's.",
    flags: &[
        flag("subnet", None, One, "the network's IPv4 subnet, A.B.C.D/N"),
        flag("gateway", None, One, "the bridge's address in it"),
        flag("root", None, One, ROOT_HELP),
    ],
    positionals: "create|ls|rm [NAME...]",
    count: (1, usize::MAX),
    greedy: false,
};

impl Network {
    pub fn from(mut g: Given) -> Result<Network, String> {
        Ok(Network {
            root: g.one("root"),
            subnet: g.one("subnet"),
            gateway: g.one("gateway"),
            action: g.next(),
            names: g.positionals,
        })
    }
}

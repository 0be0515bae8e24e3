//! husk's runtime as a library: the checks, the plan, the clone, cgroups,
//! supervision. The `runner` binary (main.rs) is its command-line front end.

pub mod caps;
pub mod cgroup;
pub mod cli;
pub mod error;
pub mod fds;
pub mod hostroot;
pub mod plan;
pub mod seccomp;
pub mod shim;
pub mod signals;
pub mod spawn;
pub mod spec;
pub mod tty;

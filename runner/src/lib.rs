//! husk's runtime as a library: the checks, the plan, the clone, cgroups,
//! the state store, supervision in the foreground or by a detached
//! container's monitor, and what acts on a container once it runs (exec,
//! attach, logs, kill, stop, rm, wait). The `runner` binary (main.rs, with its
//! command line in cli.rs and front.rs) is one front end; an OCI
//! config.json reader will be another.

pub mod attach;
pub mod caps;
pub mod cgroup;
pub mod describe;
pub mod detach;
pub mod error;
pub mod etc_files;
pub mod exec;
pub mod fds;
pub mod hooks;
pub mod hostroot;
pub mod image;
pub mod json;
pub mod kernel;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod mountinfo;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod oci;
pub mod overlay;
pub mod plan;
pub mod process;
pub mod rootfs;
pub mod run;
pub mod seccomp;
pub mod shim;
pub mod signals;
pub mod spawn;
pub mod spec;
pub mod store;
pub mod tty;
pub mod userns;

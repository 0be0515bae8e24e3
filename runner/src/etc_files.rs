//! The container's /etc/hostname, /etc/hosts and, where it has a way out
//! (the host's network namespace, or one joined), /etc/resolv.conf: files
//! of its own in its state entry, bound read-only over the image's, as
//! Docker gives a container its own. So `hostname` and /etc/hostname
//! agree, the hostname resolves inside, and a shared or read-only root is
//! never written. Read-only: writable, they would let the container fill
//! the host's state directory at will.
//!
//! Bound only over a regular file the image has, found beneath the root
//! through no symlink: husk makes no file in a root it was given, and an
//! image's /etc/hosts that is a symlink (to anywhere) is left as it is.
//! The shim refuses symlinks again as it attaches, so a root changed
//! meanwhile fails closed. An OCI caller's config lists these files as
//! its own mounts: only husk's own containers get them.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use shim::plan::ms;

use crate::error::{Error, Result};
use crate::image::at;
use crate::mounts::{Mount, Volume};
use crate::namespaces::Kind;
use crate::net::Attached;
use crate::rootfs::Rootfs;
use crate::spec::Spec;

/// The binds for `spec`'s container whose root is `root`; their files
/// are written in `entry`, the container's state directory.
pub fn binds(
    entry: &Path,
    root: impl AsFd,
    spec: &Spec,
    network: Option<&Attached>,
) -> Result<Vec<Mount>> {
    let Ok(etc) = at::dir_beneath(root.as_fd(), &["etc"], false) else {
        return Ok(Vec::new());
    };
    let hostname = spec.hostname.to_string_lossy();
    // A CNI network's address is known only after ADD: `update`.
    let own = match network {
        Some(Attached::Bridge(a)) => Some(a.address.to_string()),
        _ => None,
    };
    let mut files = vec![
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            hosts(&hostname, own.as_deref().unwrap_or("127.0.1.1")),
        ),
    ];
    let dns = spec.network.as_ref().map_or(&[][..], |r| &r.dns[..]);
    let resolv = if !dns.is_empty() {
        Some(dns.iter().map(|d| format!("nameserver {d}\n")).collect())
    } else if network.is_some() {
        bridged_resolvers()
    } else if !spec.namespaces.is_new(Kind::Net) {
        // The host's resolvers, as they are now; none, none here either.
        std::fs::read_to_string("/etc/resolv.conf").ok()
    } else {
        None
    };
    if let Some(text) = resolv {
        files.push(("resolv.conf", text));
    }
    let mut out = Vec::new();
    for (name, text) in files {
        let c = CString::new(name).expect("no NUL in a constant");
        let regular = at::stat_at(etc.as_raw_fd(), &c)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
        if !regular {
            continue;
        }
        let path = entry.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()).map(|()| f))
            .map_err(|e| Error::os(format_args!("write {}", path.display()), &e))?;
        out.push(Mount::Volume(Volume {
            source: Rootfs::made(file.into(), path),
            dir: false,
            target: CString::new(format!("etc/{name}")).expect("no NUL in a constant"),
            flags: ms::RDONLY | ms::NOSUID | ms::NODEV | ms::NOEXEC,
            propagation: ms::REC | ms::PRIVATE,
            share: 0,
            recursive: false,
            make_target: false,
        }));
    }
    Ok(out)
}

/// After a CNI network's ADD: the hostname on the address it gave, and
/// its resolvers unless --dns named some. The files bound already are
/// rewritten in place (the binds are of their inodes), those the image
/// lacked are not made.
pub fn update(
    entry: &Path,
    spec: &Spec,
    address: Option<std::net::IpAddr>,
    dns: &[String],
) -> Result<()> {
    let hostname = spec.hostname.to_string_lossy();
    let mut files = Vec::new();
    if let Some(a) = address {
        files.push(("hosts", hosts(&hostname, &a.to_string())));
    }
    let asked = spec.network.as_ref().is_some_and(|r| !r.dns.is_empty());
    if !dns.is_empty() && !asked {
        let text = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        files.push(("resolv.conf", text));
    }
    for (name, text) in files {
        let path = entry.join(name);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(|e| Error::os(format_args!("write {}", path.display()), &e))?,
        }
    }
    Ok(())
}

/// Loopback's names, and the container's hostname on its own address, or
/// on 127.0.1.1 without one (as Debian names a host without an address of
/// its own for it).
fn hosts(hostname: &str, address: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{hostname}\n"
    )
}

/// The host's resolvers as a container on a bridge reaches them: a
/// resolver on the host's loopback (systemd-resolved's 127.0.0.53, a
/// dnsmasq) is not the container's, so systemd-resolved's list of the
/// upstream ones stands in when there is one, and loopback lines go.
fn bridged_resolvers() -> Option<String> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    let local = |l: &str| {
        l.strip_prefix("nameserver")
            .is_some_and(|a| a.trim().starts_with("127.") || a.trim() == "::1")
    };
    let text = match text.lines().any(local) {
        true => std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or(text),
        false => text,
    };
    Some(
        text.lines()
            .filter(|l| !local(l))
            .map(|l| format!("{l}\n"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_names_loopback_and_the_hostname() {
        let h = super::hosts("box", "127.0.1.1");
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"), "{h}");
        assert!(h.ends_with("127.0.1.1\tbox\n"), "{h}");
    }
}

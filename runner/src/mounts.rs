//! The mounts a user adds to a container: volumes (`-v HOST:CTR[:OPTS]`)
//! and tmpfs (`--tmpfs PATH[:OPTS]`). A volume's source is opened once,
//! here, and handed to the shim as a detached copy of its mount tree
//! (rootfs.rs), as the rootfs is; every target is a path in the root that
//! the shim resolves beneath it, refusing symlinks.

use std::ffi::CString;

use shim::plan::ms;

use crate::error::{Error, Result};
use crate::rootfs::Rootfs;

pub enum Mount {
    Volume(Volume),
    Tmpfs {
        target: CString,
        flags: u32,
        data: CString,
        /// Given once mounted (an OCI mount's propagation option); 0 for
        /// none.
        propagation: u32,
    },
}

pub struct Volume {
    pub source: Rootfs,
    /// The source is a directory (else a file, bound on a file).
    pub dir: bool,
    pub target: CString,
    /// `ms::RDONLY`, `NOSUID`, `NODEV`, `NOEXEC`: set on every mount of
    /// the volume's tree.
    pub flags: u32,
    /// `ms::PRIVATE`, `ms::SLAVE` or `ms::UNBINDABLE`, with `ms::REC`
    /// unless asked otherwise: given as the tree is attached.
    pub propagation: u32,
    /// `ms::SHARED` (with `ms::REC`, or not), given after that, or 0. The
    /// tree is a clone of the host's mounts, in their peer groups: made
    /// slave first, as runc's bind of a mount under its slave root is, it
    /// gets a peer group of its own that the host's mounts propagate into
    /// and nothing propagates out of.
    pub share: u32,
    /// The whole tree below the source (rbind), or its top mount alone.
    pub recursive: bool,
    /// Make the target (and its parents) where the root lacks it; else
    /// the target is known to be there (etc_files.rs).
    pub make_target: bool,
}

impl Mount {
    pub fn target(&self) -> &CString {
        match self {
            Mount::Volume(v) => &v.target,
            Mount::Tmpfs { target, .. } => target,
        }
    }
}

/// `HOST:CTR[:OPTS]`, OPTS a comma list of ro, rw, nosuid, suid, nodev,
/// noexec, exec, and one of private, rprivate (the default, as Docker's),
/// slave, rslave. The shared propagations are refused: they would let the
/// container's mounts reach the host.
pub fn volume(arg: &str) -> Result<Mount> {
    let bad = |why: &str| Error::new(format!("--volume {arg}: {why}"));
    let mut parts = arg.splitn(3, ':');
    let (Some(host), Some(ctr)) = (parts.next(), parts.next()) else {
        return Err(bad("expected HOST:CONTAINER[:OPTIONS]"));
    };
    if host.is_empty() || !host.starts_with(['/', '.']) {
        return Err(bad(
            "the host path must be absolute or start with ./ (named volumes are not supported)",
        ));
    }
    let target = target(ctr).map_err(|e| bad(&e))?;
    let mut flags = 0;
    let mut propagation = ms::REC | ms::PRIVATE;
    for opt in parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|o| !o.is_empty())
    {
        match opt {
            "rw" => flags &= !ms::RDONLY,
            "ro" => flags |= ms::RDONLY,
            "nosuid" => flags |= ms::NOSUID,
            "suid" => flags &= !ms::NOSUID,
            "nodev" => flags |= ms::NODEV,
            "noexec" => flags |= ms::NOEXEC,
            "exec" => flags &= !ms::NOEXEC,
            "private" => propagation = ms::PRIVATE,
            "rprivate" => propagation = ms::REC | ms::PRIVATE,
            "slave" => propagation = ms::SLAVE,
            "rslave" => propagation = ms::REC | ms::SLAVE,
            "shared" | "rshared" => {
                return Err(bad(&format!(
                    "{opt}: refused, the container's mounts would appear on the host"
                )))
            }
            other => {
                return Err(bad(&format!(
                    "unknown option {other} (ro, rw, nosuid, suid, nodev, noexec, exec, \
                     private, rprivate, slave, rslave)"
                )))
            }
        }
    }
    let (source, dir) = Rootfs::open_source(host, "--volume")?;
    Ok(Mount::Volume(Volume {
        source,
        dir,
        target,
        flags,
        propagation,
        share: 0,
        recursive: true,
        make_target: true,
    }))
}

/// `PATH[:OPTS]`, OPTS a comma list of ro, rw, exec, noexec, suid,
/// nosuid, and size=, mode=, nr_inodes=, uid=, gid= for tmpfs itself.
/// nosuid, nodev and noexec by default, as Docker's.
pub fn tmpfs(arg: &str) -> Result<Mount> {
    let (path, opts) = arg.split_once(':').unwrap_or((arg, ""));
    tmpfs_at(path, opts.split(',')).map_err(|why| Error::new(format!("--tmpfs {arg}: {why}")))
}

/// A tmpfs at `path` with `--tmpfs`'s options (an OCI config's come
/// apart already: its path may hold a ':').
pub fn tmpfs_at<'a>(
    path: &str,
    opts: impl Iterator<Item = &'a str>,
) -> std::result::Result<Mount, String> {
    let target = target(path)?;
    let mut flags = ms::NOSUID | ms::NODEV | ms::NOEXEC;
    let mut data = Vec::new();
    for opt in opts.filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            None => match opt {
                "ro" => flags |= ms::RDONLY,
                "rw" => flags &= !ms::RDONLY,
                "exec" => flags &= !ms::NOEXEC,
                "noexec" => flags |= ms::NOEXEC,
                "suid" => flags &= !ms::NOSUID,
                "nosuid" => flags |= ms::NOSUID,
                "nodev" => {}
                other => return Err(format!("unknown option {other}")),
            },
            Some((key @ ("size" | "mode" | "nr_inodes" | "uid" | "gid"), value))
                if !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'%') =>
            {
                data.push(format!("{key}={value}"));
            }
            Some(_) => {
                return Err(format!(
                    "bad option {opt} (size=, mode=, nr_inodes=, uid=, gid=)"
                ))
            }
        }
    }
    Ok(Mount::Tmpfs {
        target,
        flags,
        data: CString::new(data.join(",")).map_err(|_| "contains a NUL byte".to_string())?,
        propagation: 0,
    })
}

/// An absolute path in the container, as a path in the root: no `..`, not
/// the root itself, clean.
pub fn target(path: &str) -> std::result::Result<CString, String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?}: the container path must be absolute"));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("{path}: .. is not allowed in a container path"));
    }
    if parts.is_empty() {
        return Err("cannot mount over the container's root".into());
    }
    CString::new(parts.join("/")).map_err(|_| format!("{path:?}: contains a NUL byte"))
}

/// The directories to make, outermost first, so that `target` exists:
/// "a", "a/b" for "a/b/c" (and "a/b/c" itself too when `with_last`).
pub fn parents(target: &CString, with_last: bool) -> Vec<CString> {
    let bytes = target.as_bytes();
    let mut out: Vec<CString> = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .filter_map(|(i, _)| CString::new(&bytes[..i]).ok())
        .collect();
    if with_last {
        out.push(target.clone());
    }
    out
}

/// The order the mounts are made in: parents before what is mounted in
/// them (fewer components first), the command line's order otherwise.
pub fn sort(mounts: &mut [Mount]) {
    // An insertion sort: a handful of mounts, and std's stable sort is
    // 5 KB of the runner.
    let depth = |m: &Mount| m.target().as_bytes().iter().filter(|&&b| b == b'/').count();
    for i in 1..mounts.len() {
        let mut j = i;
        while j > 0 && depth(&mounts[j - 1]) > depth(&mounts[j]) {
            mounts.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_clean_paths_in_the_root() {
        assert_eq!(target("/data//x/./y/").unwrap(), c"data/x/y".to_owned());
        assert!(target("data").is_err());
        assert!(target("/a/../b").is_err());
        assert!(target("/").is_err());
        assert_eq!(
            parents(&c"a/b/c".to_owned(), false),
            [c"a".to_owned(), c"a/b".to_owned()]
        );
        assert_eq!(parents(&c"a".to_owned(), true), [c"a".to_owned()]);
    }

    #[test]
    fn tmpfs_options() {
        let Mount::Tmpfs {
            target,
            flags,
            data,
            ..
        } = tmpfs("/run/x:size=64k,mode=1777,exec").unwrap()
        else {
            panic!()
        };
        assert_eq!(target, c"run/x".to_owned());
        assert_eq!(flags, ms::NOSUID | ms::NODEV);
        assert_eq!(data, c"size=64k,mode=1777".to_owned());
        for bad in [
            "/x:size=1,foo",
            "/x:size=a,b=1",
            "/x:bogus",
            "x",
            "/x:size=1;rm",
        ] {
            assert!(tmpfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volume_options_and_refusals() {
        let Mount::Volume(v) = volume("/tmp:/data:ro,noexec,rslave").unwrap() else {
            panic!()
        };
        assert_eq!(v.flags, ms::RDONLY | ms::NOEXEC);
        assert_eq!(v.propagation, ms::REC | ms::SLAVE);
        assert!(v.dir);
        for (bad, why) in [
            ("/tmp", "expected HOST:CONTAINER"),
            ("name:/data", "named volumes"),
            ("/tmp:/data:rshared", "refused"),
            ("/tmp:/data:bogus", "unknown option"),
            ("/tmp:data", "absolute"),
            ("/nonexistent-husk:/data", "No such file"),
        ] {
            let e = volume(bad).err().expect(bad).message;
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

//! config.json's `mounts` and `linux.devices`, as the library's mounts and
//! device nodes. Mounts are made in the order listed, as the spec says.

use runner::error::Result;
use runner::json::Value;
use runner::mounts::{self, Mount, Volume};
use runner::rootfs::Rootfs;
use runner::spec::Device;
use shim::plan::ms;

use crate::oci_config::{bad, only, string, strings, uint};

/// The mounts husk makes itself, as callers list them: skipped.
const OWN: [(&str, &str); 8] = [
    ("/proc", "proc"),
    ("/dev", "tmpfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
    ("/dev/mqueue", "mqueue"),
    ("/sys", "sysfs"),
    ("/sys/fs/cgroup", "cgroup"),
    ("/sys/fs/cgroup", "cgroup2"),
];

/// The devices husk binds from the host itself (plan/mod.rs): a config
/// that lists them gets those.
const OWN_DEVICES: [&str; 8] = [
    "dev/null",
    "dev/zero",
    "dev/full",
    "dev/random",
    "dev/urandom",
    "dev/tty",
    "dev/console",
    "dev/ptmx",
];

/// A propagation option: what the mount gets as it is made, and what it
/// gets after (see mounts::Volume::share).
fn propagation(opt: &str) -> Option<(u32, u32)> {
    let rec = if opt.starts_with('r') { ms::REC } else { 0 };
    Some(match opt.trim_start_matches('r') {
        "private" => (rec | ms::PRIVATE, 0),
        "slave" => (rec | ms::SLAVE, 0),
        "unbindable" => (rec | ms::UNBINDABLE, 0),
        "shared" => (rec | ms::SLAVE, rec | ms::SHARED),
        _ => return None,
    })
}

/// The config's mounts. The standard ones (proc, /dev, devpts, shm,
/// mqueue, sysfs, cgroup at their usual places) are husk's own and made
/// as husk makes them; binds become volumes, tmpfs elsewhere a tmpfs.
pub fn mounts(v: Option<&Value>) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for m in v.and_then(Value::as_array).unwrap_or_default() {
        only(m, "mounts[]", &["destination", "type", "source", "options"])?;
        let dest = string(
            m.get("destination").unwrap_or(&Value::Null),
            "mounts.destination",
        )?;
        let kind = m.get("type").and_then(Value::as_str).unwrap_or("");
        let options = strings(m.get("options"), "mounts.options")?;
        let bind = kind == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
        if !bind && OWN.contains(&(dest.trim_end_matches('/'), kind)) {
            continue;
        }
        let field = format!("mounts {dest}");
        let mut prop = None;
        let mut rest = Vec::new();
        for o in options {
            match propagation(o) {
                Some(p) => prop = Some(p),
                None => rest.push(o),
            }
        }
        if bind {
            let source = string(m.get("source").unwrap_or(&Value::Null), &field)?;
            let target = mounts::target(dest).map_err(|e| bad(&field, e))?;
            let mut flags = 0;
            // A "bind" type without either option binds the tree, as runc.
            let mut recursive = !rest.contains(&"bind");
            for o in rest {
                match o {
                    "bind" => {}
                    "rbind" => recursive = true,
                    "ro" => flags |= ms::RDONLY,
                    "rw" => flags &= !ms::RDONLY,
                    "nosuid" => flags |= ms::NOSUID,
                    "suid" => flags &= !ms::NOSUID,
                    "nodev" => flags |= ms::NODEV,
                    "noexec" => flags |= ms::NOEXEC,
                    "exec" => flags &= !ms::NOEXEC,
                    // A bind keeps the source's atime behaviour and takes
                    // no file-system data (the kernel ignores runc's).
                    "dev" | "strictatime" | "relatime" | "norelatime" | "noatime" | "atime"
                    | "nodiratime" | "diratime" => {}
                    o if o.contains('=') => {}
                    other => return Err(bad(&field, format!("option {other}: not supported"))),
                }
            }
            let (source, dir) =
                Rootfs::open_source(source, "mounts").map_err(|e| e.prefixed("config.json: "))?;
            let (propagation, share) = prop.unwrap_or((ms::REC | ms::PRIVATE, 0));
            out.push(Mount::Volume(Volume {
                source,
                dir,
                target,
                flags,
                propagation,
                share,
                recursive,
                make_target: true,
            }));
        } else if kind == "tmpfs" {
            // exec and suid unless the config says otherwise (husk's
            // --tmpfs defaults are Docker's); atime options change nothing
            // a container can do.
            let opts = ["exec", "suid"]
                .into_iter()
                .chain(rest)
                .filter(|o| !matches!(*o, "strictatime" | "relatime" | "noatime" | "nodev"));
            let mut tmpfs = mounts::tmpfs_at(dest, opts).map_err(|e| bad(&field, e))?;
            if let (Mount::Tmpfs { propagation, .. }, Some((first, then))) = (&mut tmpfs, prop) {
                // A mount of the container's own: in no peer group of the
                // host's, whatever it is given.
                *propagation = if then != 0 { then } else { first };
            }
            out.push(tmpfs);
        } else {
            return Err(bad(
                &field,
                format!("type {kind:?}: not supported by husk here"),
            ));
        }
    }
    Ok(out)
}

/// `linux.devices`: nodes made in the container (see plan/mod.rs for how
/// they open when every mount is nodev).
pub fn devices(v: Option<&Value>) -> Result<Vec<Device>> {
    let mut out = Vec::new();
    for d in v.and_then(Value::as_array).unwrap_or_default() {
        const FIELDS: [&str; 7] = ["path", "type", "major", "minor", "fileMode", "uid", "gid"];
        only(d, "linux.devices[]", &FIELDS)?;
        let path = string(d.get("path").unwrap_or(&Value::Null), "linux.devices.path")?;
        let field = format!("linux.devices {path}");
        let target = mounts::target(path).map_err(|e| bad(&field, e))?;
        if OWN_DEVICES.contains(&target.to_str().unwrap_or("")) {
            continue;
        }
        let kind = match d.get("type").and_then(Value::as_str) {
            Some("c" | "u") => libc::S_IFCHR,
            Some("b") => libc::S_IFBLK,
            Some("p") => libc::S_IFIFO,
            _ => return Err(bad(&field, "type: expected c, u, b or p")),
        };
        let number = |k: &str| -> Result<u32> {
            let n = uint(d.get(k), &format!("{field}: {k}"))?;
            match n {
                None if kind == libc::S_IFIFO => Ok(0),
                None => Err(bad(&field, format!("{k}: missing"))),
                Some(n) => u32::try_from(n).map_err(|_| bad(&field, format!("{k}: too big"))),
            }
        };
        let (major, minor) = (number("major")?, number("minor")?);
        // The kernel's 32-bit encoding (new_encode_dev), which mknodat
        // takes on every architecture.
        if major > 0xfff || minor > 0xf_ffff {
            return Err(bad(&field, "major above 4095 or minor above 1048575"));
        }
        let mode = uint(d.get("fileMode"), &field)?.unwrap_or(0o666);
        if mode > 0o7777 {
            return Err(bad(&field, "fileMode: permission bits only (up to 07777)"));
        }
        let id = |k: &str| -> Result<u32> {
            let n = uint(d.get(k), &field)?.unwrap_or(0);
            u32::try_from(n).map_err(|_| bad(&field, format!("{k}: too big")))
        };
        out.push(Device {
            path: target,
            mode: kind | mode as u32,
            dev: (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12),
            uid: id("uid")?,
            gid: id("gid")?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner::json;

    fn one_mount(options: &str) -> std::result::Result<Mount, String> {
        let v = json::parse(&format!(
            r#"[{{"destination":"/mnt/x","source":"/tmp","options":[{options}]}}]"#
        ))
        .unwrap();
        let mut m = mounts(Some(&v)).map_err(|e| e.message)?;
        Ok(m.remove(0))
    }

    #[test]
    fn binds_are_recursive_or_not_with_their_propagation() {
        let volume = |o: &str| match one_mount(o).unwrap() {
            Mount::Volume(v) => (v.recursive, v.propagation, v.share, v.flags),
            Mount::Tmpfs { .. } => panic!("not a bind"),
        };
        let private = ms::REC | ms::PRIVATE;
        assert_eq!(volume(r#""bind""#), (false, private, 0, 0));
        assert_eq!(volume(r#""rbind","ro""#), (true, private, 0, ms::RDONLY));
        // Shared: slave of the host's peers first, then a group of its own.
        assert_eq!(
            volume(r#""bind","shared""#),
            (false, ms::SLAVE, ms::SHARED, 0)
        );
        assert_eq!(
            volume(r#""rbind","rshared""#),
            (true, ms::REC | ms::SLAVE, ms::REC | ms::SHARED, 0)
        );
        assert_eq!(
            volume(r#""rbind","runbindable","strictatime","mode=755""#),
            (true, ms::REC | ms::UNBINDABLE, 0, 0)
        );
        let e = one_mount(r#""bind","frob""#).err().unwrap();
        assert!(
            e.contains("mounts /mnt/x: option frob: not supported"),
            "{e}"
        );
    }

    #[test]
    fn a_tmpfs_destination_may_hold_a_colon() {
        let v = json::parse(
            r#"[{"destination":"/run/a:b","type":"tmpfs","options":["ro","size=1m"]}]"#,
        )
        .unwrap();
        let m = mounts(Some(&v)).unwrap();
        let Some(Mount::Tmpfs {
            target,
            flags,
            data,
            ..
        }) = m.first()
        else {
            panic!("not a tmpfs")
        };
        assert_eq!(target.to_str(), Ok("run/a:b"));
        assert_eq!(data.to_str(), Ok("size=1m"));
        assert_eq!(flags & (ms::RDONLY | ms::NOEXEC), ms::RDONLY);
    }

    /// What `features` says husk takes, husk takes.
    #[test]
    fn every_mount_option_in_features_is_taken() {
        let features = crate::oci_commands::features_doc().unwrap();
        let options = features.get("mountOptions").unwrap().as_array().unwrap();
        for o in options {
            let o = o.as_str().unwrap();
            let taken = if ["mode", "size", "nr_inodes", "uid", "gid"].contains(&o) {
                let v = json::parse(&format!(
                    r#"[{{"destination":"/t","type":"tmpfs","options":["{o}=1"]}}]"#
                ))
                .unwrap();
                mounts(Some(&v)).map(drop)
            } else {
                one_mount(&format!(r#""bind","{o}""#))
                    .map(drop)
                    .map_err(runner::error::Error::new)
            };
            assert!(taken.is_ok(), "{o}: {:?}", taken.err().map(|e| e.message));
        }
    }

    #[test]
    fn devices_are_encoded_as_the_kernel_does() {
        let v = json::parse(
            r#"[{"path":"/dev/a","type":"c","major":1,"minor":3},
                {"path":"/dev/b","type":"b","major":259,"minor":300000,"fileMode":384,"uid":5,"gid":6},
                {"path":"/dev/null","type":"c","major":1,"minor":3},
                {"path":"/dev/p","type":"p"}]"#,
        )
        .unwrap();
        let d = devices(Some(&v)).unwrap();
        // husk's own /dev/null is left as it is.
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].mode, d[0].dev), (libc::S_IFCHR | 0o666, 0x103));
        assert_eq!(d[1].dev, libc::makedev(259, 300000) as u32);
        assert_eq!(
            (d[1].mode, d[1].uid, d[1].gid),
            (libc::S_IFBLK | 0o600, 5, 6)
        );
        assert_eq!((d[2].mode, d[2].dev), (libc::S_IFIFO | 0o666, 0));
        for (bad, why) in [
            (
                r#"{"path":"/dev/x","type":"c","major":1}"#,
                "minor: missing",
            ),
            (
                r#"{"path":"/dev/x","type":"c","major":4096,"minor":0}"#,
                "major above",
            ),
            (r#"{"path":"/dev/x","type":"s"}"#, "expected c, u, b or p"),
            (r#"{"path":"dev/x","type":"p"}"#, "must be absolute"),
            (r#"{"path":"/dev/../x","type":"p"}"#, ".. is not allowed"),
        ] {
            let v = json::parse(&format!("[{bad}]")).unwrap();
            let e = devices(Some(&v)).err().unwrap().message;
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

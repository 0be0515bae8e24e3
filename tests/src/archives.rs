//! Image archives the image scenarios import, made here with the tar
//! crate: layers (good and hostile, written header by header so that
//! nothing cleans up a bad path), an OCI image layout, an oci-archive, a
//! docker-archive; and a listing of a store to compare before and after.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

pub(crate) fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A layer tar, member by member, paths written as given.
pub(crate) struct Layer {
    b: tar::Builder<Vec<u8>>,
}

pub(crate) const MTIME: u64 = 1_234_567_890;

impl Layer {
    pub(crate) fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h
    }

    fn add(&mut self, mut h: Header, data: &[u8]) -> &mut Layer {
        h.set_cksum();
        self.b.append(&h, data).expect("append to a Vec");
        self
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Layer {
        self.add(Self::header(path, EntryType::Directory, mode, 0), &[])
    }

    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Layer {
        self.owned_file(path, data, 0o644, 0, 0)
    }

    pub(crate) fn owned_file(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Layer {
        let mut h = Self::header(path, EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.add(h, data)
    }

    fn linked(&mut self, path: &str, kind: EntryType, target: &str) -> &mut Layer {
        let mut h = Self::header(path, kind, 0o777, 0);
        let l = &mut h.as_old_mut().linkname;
        l[..target.len()].copy_from_slice(target.as_bytes());
        self.add(h, &[])
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Layer {
        self.linked(path, EntryType::Symlink, target)
    }

    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> &mut Layer {
        self.linked(path, EntryType::Link, target)
    }

    pub(crate) fn node(
        &mut self,
        path: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Layer {
        let mut h = Self::header(path, kind, 0o666, 0);
        h.set_device_major(major)
            .and_then(|()| h.set_device_minor(minor))
            .expect("device numbers");
        self.add(h, &[])
    }

    /// PAX records for the next member.
    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Layer {
        let recs: Vec<(String, Vec<u8>)> = records
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
        let data = runner::image::pack::pax_records(&recs);
        self.add(
            Self::header("PaxHeader", EntryType::XHeader, 0o644, data.len() as u64),
            &data,
        )
    }

    pub(crate) fn tar(self) -> Vec<u8> {
        self.b.into_inner().expect("finish a Vec")
    }
}

/// The tree at `root` as an uncompressed layer (symlinks kept as such).
pub(crate) fn tree_layer(root: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", root).expect("tar the rootfs");
    b.into_inner().expect("finish a Vec")
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip to a Vec");
    e.finish().expect("gzip to a Vec")
}

/// An image config with defaults and the layers' diff_ids.
pub(crate) fn config(diff_ids: &[String]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"sha256:{d}\"")).collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin:/sbin","HUSK=image"],"Cmd":["/bin/sh","-c","echo hi"],"Entrypoint":["/bin/env"],"WorkingDir":"/srv","User":"1000:1000"}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// An OCI image layout at `dir`: the layers as blobs (gzipped if
/// `gzipped`), a manifest, and an index pointing at a nested index with
/// this machine's manifest among others. `lie` replaces a layer's
/// digest in the manifest (the blob is stored under the lie).
pub(crate) fn oci_layout(dir: &Path, layers: &[Vec<u8>], gzipped: bool, lie: Option<usize>) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |data: &[u8], name: Option<String>| -> String {
        let hex = name.unwrap_or_else(|| sha256(data));
        fs::write(blobs.join(&hex), data).expect("write blob");
        hex
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let cfg = config(&diff_ids);
    let cfg_hex = put(&cfg, None);
    let media = if gzipped {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    };
    let descs: Vec<String> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let blob = if gzipped { gzip(l) } else { l.clone() };
            let name = (lie == Some(i)).then(|| "0".repeat(64));
            let hex = put(&blob, name);
            format!(
                r#"{{"mediaType":"{media}","digest":"sha256:{hex}","size":{}}}"#,
                blob.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{cfg_hex}","size":{}}},"layers":[{}]}}"#,
        cfg.len(),
        descs.join(",")
    );
    let m_hex = put(manifest.as_bytes(), None);
    // The runner picks its own architecture's manifest (the runner under
    // test may be a foreign one, run by qemu-user): every architecture
    // husk builds for names this one; the other platform's is never read,
    // its blob is absent.
    let desc = |digest: &str, size: usize, arch: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let mut list = vec![desc(&"1".repeat(64), 1, "s390x")];
    for arch in ["amd64", "arm64", "arm", "riscv64"] {
        list.push(desc(&m_hex, manifest.len(), arch));
    }
    let nested = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        list.join(",")
    );
    let n_hex = put(nested.as_bytes(), None);
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:{n_hex}","size":{}}}]}}"#,
        nested.len()
    );
    fs::write(dir.join("index.json"), index).expect("write index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

/// A tar of the files under `dir` (an oci-archive of a layout).
pub(crate) fn tar_of(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).expect("tar a layout");
    b.into_inner().expect("finish a Vec")
}

/// A docker-archive: manifest.json, `<id>/layer.tar`, `<config
/// digest>.json` (`docker save`'s legacy form), or with `modern` as
/// docker 25 writes it: gzipped blobs under blobs/sha256/, the second
/// layer named through a `<id>/layer.tar` symlink to its blob. `diff_ids`
/// stand in for the layers' own when given.
pub(crate) fn docker_archive(
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<String>>,
    modern: bool,
) -> Vec<u8> {
    let ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha256(l)).collect());
    let cfg = config(&ids);
    let cfg_name = if modern {
        format!("blobs/sha256/{}", sha256(&cfg))
    } else {
        format!("{}.json", sha256(&cfg))
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut put = |path: &str, data: &[u8], link: Option<&str>| {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        match link {
            Some(target) => {
                h.set_entry_type(EntryType::Symlink);
                b.append_link(&mut h, path, target)
                    .expect("append to a Vec");
            }
            None => b.append_data(&mut h, path, data).expect("append to a Vec"),
        }
    };
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let p = if !modern {
            put(&format!("{id}/layer.tar"), l, None);
            format!("{id}/layer.tar")
        } else {
            let gz = gzip(l);
            let blob = format!("blobs/sha256/{}", sha256(&gz));
            put(&blob, &gz, None);
            if i == 1 {
                put(&format!("{id}/layer.tar"), &[], Some(&format!("../{blob}")));
                format!("{id}/layer.tar")
            } else {
                blob
            }
        };
        paths.push(format!("\"{p}\""));
    }
    put(&cfg_name, &cfg, None);
    let manifest = format!(
        r#"[{{"Config":"{cfg_name}","RepoTags":["test:latest"],"Layers":[{}]}}]"#,
        paths.join(",")
    );
    put("manifest.json", manifest.as_bytes(), None);
    b.into_inner().expect("finish a Vec")
}

/// Every node below `root`: type, mode, owner, size, device, link
/// target, content digest. What "the store is unchanged" compares
/// (directory mtimes aside: work in tmp/ touches them).
pub(crate) fn listing(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        let mut line = format!(
            "{:o} {}:{} {} {}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.rdev(),
            m.len()
        );
        if m.is_dir() {
            line = format!("{:o} {}:{} dir", m.mode(), m.uid(), m.gid());
            for e in fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        } else if m.file_type().is_symlink() {
            line += &format!(" -> {:?}", fs::read_link(&p).unwrap_or_default());
        } else if m.is_file() {
            line += &format!(" {}", sha256(&fs::read(&p).unwrap_or_default()));
        }
        out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf(), line);
    }
    out
}

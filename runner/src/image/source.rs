//! What an import's SOURCE is, and its layers and config as blobs to
//! read: an OCI image layout directory, an oci-archive or docker-archive
//! tar (read in place: members are found by their offsets, nothing is
//! extracted), a plain rootfs directory or a plain rootfs tar.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use super::archive::Files;
pub use super::archive::Section;
use super::at;
use super::digest;
use super::Config;
use crate::error::{Error, Result};
use crate::json::Value;

pub struct Source {
    pub layers: Vec<LayerSrc>,
    pub config: Config,
}

pub struct LayerSrc {
    pub what: String,
    pub blob: Blob,
    /// The blob's own sha256 (hex), where the source names it.
    pub digest: Option<String>,
    /// The uncompressed stream's sha256 (the config's rootfs.diff_ids).
    pub diff_id: Option<String>,
    /// Some: as the media type says; None: look at the first bytes.
    pub gzip: Option<bool>,
}

pub enum Blob {
    Section(Section),
    /// A plain rootfs directory, packed into a layer by the store.
    Dir(OwnedFd),
}

pub fn read(path: &Path) -> Result<Source> {
    let shown = path.display().to_string();
    // The user's own path, symlinks and all, opened once; what is inside
    // is the archive's and is read without following any.
    let fd = OwnedFd::from(File::open(path).map_err(|e| Error::os(format!("open {shown}"), &e))?);
    let st =
        at::stat_at(fd.as_raw_fd(), c"").map_err(|e| Error::os(format!("stat {shown}"), &e))?;
    let files = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let files = Files::Dir(fd);
        if !(files.has("oci-layout") && files.has("index.json")) {
            let Files::Dir(fd) = files else {
                unreachable!()
            };
            return Ok(plain(Blob::Dir(fd), &shown));
        }
        files
    } else {
        let file = Rc::new(File::from(fd));
        let all = Section {
            file: file.clone(),
            pos: 0,
            end: st.st_size as u64,
        };
        if all.head()[..2] == [0x1f, 0x8b] {
            return Ok(plain(Blob::Section(all), &shown));
        }
        let files = Files::tar(&file, &shown)?;
        if !(files.has("oci-layout") || files.has("manifest.json")) {
            return Ok(plain(Blob::Section(all), &shown));
        }
        files
    };
    if files.has("oci-layout") {
        oci(&files, &shown)
    } else {
        docker(&files, &shown)
    }
}

fn plain(blob: Blob, shown: &str) -> Source {
    let layer = LayerSrc {
        what: format!("{shown}: layer"),
        blob,
        digest: None,
        diff_id: None,
        gzip: None,
    };
    Source {
        layers: vec![layer],
        config: Config::default(),
    }
}

/// The strings of a JSON array (what is not a string left out), or none.
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The defaults an image config gives, and its rootfs.diff_ids (hex).
fn config(v: &Value, what: &str) -> Result<(Config, Vec<String>)> {
    let c = v.get("config");
    let text = |k: &str| {
        c.and_then(|c| c.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let config = Config {
        env: strings(c.and_then(|c| c.get("Env"))),
        cmd: strings(c.and_then(|c| c.get("Cmd"))),
        entrypoint: strings(c.and_then(|c| c.get("Entrypoint"))),
        workdir: text("WorkingDir"),
        user: text("User"),
    };
    let ids = strings(v.get("rootfs").and_then(|r| r.get("diff_ids")));
    let ids = ids
        .iter()
        .map(|d| {
            digest::parse(d)
                .map(String::from)
                .map_err(|e| e.prefixed(&format!("{what}: rootfs.diff_ids: ")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((config, ids))
}

fn blob_path(d: &Value, what: &str) -> Result<(String, String)> {
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new(format!("{what}: a descriptor without a digest")))?;
    let hex = digest::parse(digest).map_err(|e| e.prefixed(&format!("{what}: ")))?;
    Ok((format!("blobs/sha256/{hex}"), hex.to_string()))
}

/// The architecture as OCI platforms name it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn oci(files: &Files, shown: &str) -> Result<Source> {
    let mut doc = files.json("index.json", None, shown)?;
    // An index names manifests (or further indexes): the one there is, or
    // the one for this machine's architecture.
    for _ in 0..4 {
        let Some(list) = doc.get("manifests").and_then(Value::as_array) else {
            break;
        };
        let arch = |m: &&Value| {
            m.get("platform")
                .and_then(|p| p.get("architecture"))
                .and_then(Value::as_str)
                == Some(host_arch())
        };
        let pick = match list {
            [one] => one,
            _ => list.iter().find(arch).ok_or_else(|| {
                Error::new(format!(
                    "{shown}: the index holds {} manifests, none for {}",
                    list.len(),
                    host_arch()
                ))
            })?,
        };
        let (path, hex) = blob_path(pick, shown)?;
        doc = files.json(&path, Some(&hex), shown)?;
    }
    let config_desc = doc
        .get("config")
        .ok_or_else(|| Error::new(format!("{shown}: a manifest without a config")))?;
    let (path, hex) = blob_path(config_desc, shown)?;
    let (config, diff_ids) = config(&files.json(&path, Some(&hex), shown)?, shown)?;
    let descs = doc
        .get("layers")
        .and_then(Value::as_array)
        .unwrap_or_default();
    if diff_ids.len() != descs.len() {
        return Err(Error::new(format!(
            "{shown}: the manifest has {} layers, the config {} diff_ids",
            descs.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (d, diff_id) in descs.iter().zip(diff_ids) {
        let (path, hex) = blob_path(d, shown)?;
        let what = format!("{shown}: layer sha256:{hex}");
        let media = d.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let gzip = if media.contains("zstd") {
            return Err(Error::new(format!(
                "{what}: zstd-compressed layers are not supported ({media})"
            )));
        } else if media.ends_with("tar+gzip") || media.ends_with("tar.gzip") {
            true
        } else if media.ends_with(".tar") || media.ends_with("tar") {
            false
        } else {
            return Err(Error::new(format!(
                "{what}: media type {media:?} is not a tar layer husk reads"
            )));
        };
        let s = files.open(&path).map_err(|e| Error::os(&what, &e))?;
        layers.push(LayerSrc {
            what,
            blob: Blob::Section(s),
            digest: Some(hex),
            diff_id: Some(diff_id),
            gzip: Some(gzip),
        });
    }
    Ok(Source { layers, config })
}

fn docker(files: &Files, shown: &str) -> Result<Source> {
    let doc = files.json("manifest.json", None, shown)?;
    let list = doc.as_array().unwrap_or_default();
    let [m] = list else {
        return Err(Error::new(format!(
            "{shown}: manifest.json holds {} images; one is imported",
            list.len()
        )));
    };
    let field = |k: &str| {
        m.get(k)
            .ok_or_else(|| Error::new(format!("{shown}: manifest.json without {k}")))
    };
    let config_path = field("Config")?.as_str().unwrap_or("");
    // The config's file name is its digest: "HEX.json" or blobs/sha256/HEX.
    let stem = config_path
        .rsplit('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".json");
    let config_digest = digest::is_hex(stem).then_some(stem);
    let (config, diff_ids) = config(&files.json(config_path, config_digest, shown)?, shown)?;
    let paths = strings(Some(field("Layers")?));
    if diff_ids.len() != paths.len() {
        return Err(Error::new(format!(
            "{shown}: manifest.json has {} layers, the config {} diff_ids",
            paths.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (path, diff_id) in paths.iter().zip(diff_ids) {
        let what = format!("{shown}: layer {path}");
        let digest = path
            .strip_prefix("blobs/sha256/")
            .filter(|h| digest::is_hex(h))
            .map(String::from);
        let s = files.open(path).map_err(|e| Error::os(&what, &e))?;
        layers.push(LayerSrc {
            what,
            blob: Blob::Section(s),
            digest,
            diff_id: Some(diff_id),
            gzip: None,
        });
    }
    Ok(Source { layers, config })
}

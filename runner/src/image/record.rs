//! An image's record in the store (images/NAME.json) and the names
//! images may have.

use super::{digest, Config, Image};
use crate::error::{Error, Result};
use crate::json::{self, Value};

/// `[a-z0-9][a-z0-9._-]*` with an optional `:TAG` (`[A-Za-z0-9_.-]`, up to 128).
pub fn check_name(name: &str) -> Result<()> {
    let (repo, tag) = match name.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (name, None),
    };
    let repo_ok = repo.len() <= 128
        && repo
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && repo
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    if repo_ok && tag_ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "image name {name:?}: expected [a-z0-9][a-z0-9._-]* with an optional :TAG"
        )))
    }
}

impl Image {
    pub(super) fn to_json(&self) -> Value {
        let strs = |v: &[String]| Value::Array(v.iter().map(Value::string).collect());
        let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, Value::string);
        let c = &self.config;
        Value::Object(vec![
            ("name".into(), Value::string(&self.name)),
            ("layers".into(), strs(&self.layers)),
            (
                "config".into(),
                Value::Object(vec![
                    ("env".into(), strs(&c.env)),
                    ("cmd".into(), strs(&c.cmd)),
                    ("entrypoint".into(), strs(&c.entrypoint)),
                    ("workdir".into(), opt(&c.workdir)),
                    ("user".into(), opt(&c.user)),
                ]),
            ),
            ("created".into(), Value::number(self.created)),
        ])
    }

    pub(super) fn from_json(text: &str) -> std::result::Result<Image, String> {
        let v = json::parse(text)?;
        let strs = super::source::strings;
        let c = v.get("config");
        let opt = |k: &str| {
            c.and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let image = Image {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .ok_or("no name")?
                .to_string(),
            layers: strs(v.get("layers")),
            config: Config {
                env: strs(c.and_then(|c| c.get("env"))),
                cmd: strs(c.and_then(|c| c.get("cmd"))),
                entrypoint: strs(c.and_then(|c| c.get("entrypoint"))),
                workdir: opt("workdir"),
                user: opt("user"),
            },
            created: v.get("created").and_then(Value::as_u64).unwrap_or(0),
        };
        if let Some(bad) = image.layers.iter().find(|l| !digest::is_hex(l)) {
            return Err(format!("layer {bad:?} is not a sha256 digest"));
        }
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["busybox", "a", "my-app.v2_x", "busybox:1.36", "x:Latest_1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Busybox", "-x", ".x", "a/b", "../x", "x:", "x:a:b", "x:a/b", "x y",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_image_record_reads_back_as_written() {
        let image = Image {
            name: "web:1".into(),
            layers: vec!["a".repeat(64), "b".repeat(64)],
            config: Config {
                env: vec!["PATH=/bin".into()],
                cmd: vec!["sh".into(), "-c".into(), "echo \"hi\"".into()],
                entrypoint: vec![],
                workdir: Some("/srv".into()),
                user: None,
            },
            created: 1_700_000_000,
        };
        let text = image.to_json().to_json_pretty();
        assert_eq!(Image::from_json(&text).unwrap(), image);
        let bad = text.replace(&"a".repeat(64), "../../x");
        assert!(Image::from_json(&bad).unwrap_err().contains("not a sha256"));
    }
}

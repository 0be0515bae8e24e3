//! The image store's commands, as the user types them.

use super::flags::{flag, Flag, Form, Given, Kind::*};
use super::{ROOT_HELP, STORE_HELP};

const STORE: Flag = flag("store", None, One, STORE_HELP);
const ROOT: Flag = flag("root", None, One, ROOT_HELP);

#[derive(Debug)]
pub struct Import {
    pub store: Option<String>,
    pub source: String,
    pub name: String,
}

#[derive(Debug)]
pub struct Images {
    pub store: Option<String>,
}

#[derive(Debug)]
pub struct Rmi {
    pub store: Option<String>,
    pub root: Option<String>,
    pub names: Vec<String>,
}

#[derive(Debug)]
pub struct Commit {
    pub root: Option<String>,
    pub store: Option<String>,
    pub id: String,
    pub name: String,
}

#[derive(Debug)]
pub struct Export {
    pub root: Option<String>,
    pub id: String,
    pub file: String,
}

pub const IMPORT: Form = Form {
    word: "import",
    about: "Import an image: an OCI layout directory, an oci-archive or docker-archive tar, or a \
            plain rootfs directory or tar. NAME: [a-z0-9][a-z0-9._-]* with an optional :TAG",
    flags: &[STORE],
    positionals: "SOURCE NAME",
    count: (2, 2),
    greedy: false,
};

pub const IMAGES: Form = Form {
    word: "images",
    about: "List the images in the store: name, layers, created.",
    flags: &[STORE],
    positionals: "",
    count: (0, 0),
    greedy: false,
};

pub const RMI: Form = Form {
    word: "rmi",
    about: "Remove images, and the layers no other image uses (--root: the state store whose \
            containers' images stay).",
    flags: &[STORE, ROOT],
    positionals: "NAME...",
    count: (0, usize::MAX),
    greedy: false,
};

pub const COMMIT: Form = Form {
    word: "commit",
    about: "Save a container's writable layer as a new image: its image's layers and one more on \
            top. The container was started with --image, and kept with --keep or -d.",
    flags: &[ROOT, STORE],
    positionals: "ID NAME",
    count: (2, 2),
    greedy: false,
};

pub const EXPORT: Form = Form {
    word: "export",
    about: "Write a container's root file system, as it sees it, as one tar (- for stdout).",
    flags: &[ROOT],
    positionals: "ID FILE",
    count: (2, 2),
    greedy: false,
};

impl Import {
    pub fn from(mut g: Given) -> Result<Import, String> {
        Ok(Import {
            store: g.one("store"),
            source: g.next(),
            name: g.next(),
        })
    }
}

impl Images {
    pub fn from(g: Given) -> Result<Images, String> {
        Ok(Images {
            store: g.one("store"),
        })
    }
}

impl Rmi {
    pub fn from(g: Given) -> Result<Rmi, String> {
        Ok(Rmi {
            store: g.one("store"),
            root: g.one("root"),
            names: g.positionals,
        })
    }
}

impl Commit {
    pub fn from(mut g: Given) -> Result<Commit, String> {
        Ok(Commit {
            root: g.one("root"),
            store: g.one("store"),
            id: g.next(),
            name: g.next(),
        })
    }
}

impl Export {
    pub fn from(mut g: Given) -> Result<Export, String> {
        Ok(Export {
            root: g.one("root"),
            id: g.next(),
            file: g.next(),
        })
    }
}

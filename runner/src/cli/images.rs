//! The image store's commands, as the user types them.

use argh::FromArgs;

/// Import an image: an OCI layout directory, an oci-archive or docker-archive tar, or a plain rootfs directory or tar
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct Import {
    /// the image store's directory (default: /var/lib/husk)
    #[argh(option)]
    pub store: Option<String>,
    /// what to import
    #[argh(positional)]
    pub source: String,
    /// the image's name: [a-z0-9][a-z0-9._-]* with an optional :TAG
    #[argh(positional)]
    pub name: String,
}

/// List the images in the store: name, layers, created.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "images")]
pub struct Images {
    /// the image store's directory (default: /var/lib/husk)
    #[argh(option)]
    pub store: Option<String>,
}

/// Remove images, and the layers no other image uses.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rmi")]
pub struct Rmi {
    /// the image store's directory (default: /var/lib/husk)
    #[argh(option)]
    pub store: Option<String>,
    /// the state store whose containers' images stay (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the images
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Save a container's writable layer as a new image: its image's layers and one more on top.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "commit")]
pub struct Commit {
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the image store's directory (default: /var/lib/husk)
    #[argh(option)]
    pub store: Option<String>,
    /// the container (started with --image; kept with --keep, or -d)
    #[argh(positional)]
    pub id: String,
    /// the new image's name
    #[argh(positional)]
    pub name: String,
}

/// Write a container's root file system, as it sees it, as one tar (- for stdout).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export")]
pub struct Export {
    /// the state store's directory (default: /run/husk)
    #[argh(option)]
    pub root: Option<String>,
    /// the container
    #[argh(positional)]
    pub id: String,
    /// the tar file to write (- for stdout)
    #[argh(positional)]
    pub file: String,
}

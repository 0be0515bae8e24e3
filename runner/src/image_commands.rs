//! `commit` and `export`: a container's file system out of the state
//! store, as a new image or as one tar.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use runner::error::{Error, Result};
use runner::image;
use runner::overlay::{Layers, UPPER};
use runner::store::{self, Found, State};

use crate::cli::images as cli;

/// A container's entry and state, from the store at `root`.
fn container(root: Option<&str>, id: &str) -> Result<(Found, State)> {
    let found = crate::commands::store(root)?.find(id)?;
    let state = match &found.state {
        Ok(s) => s.clone(),
        Err(e) => return Err(Error::new(format!("{id}: {}", e.message))),
    };
    Ok((found, state))
}

/// The container's upper layer becomes one more layer on top of its
/// image's, with the image's configuration.
pub fn commit(a: cli::Commit) -> Result<i32> {
    let (found, state) = container(a.root.as_deref(), &a.id)?;
    let name = &state.spec.image;
    if name.is_empty() {
        return Err(Error::new(format!(
            "{}: was not started from an image (--image NAME): commit needs the image its \
             writes go on top of",
            a.id
        )));
    }
    let upper = found.dir.join(UPPER);
    if !upper.is_dir() {
        return Err(Error::new(format!(
            "{}: has no writable layer at {}",
            a.id,
            upper.display()
        )));
    }
    let images = image::Store::open(Path::new(
        a.store.as_deref().unwrap_or(image::DEFAULT_STORE),
    ))?;
    let base = images.image(name)?;
    let base_dirs: Vec<String> = base
        .layers
        .iter()
        .map(|l| images.layer_dir(l).display().to_string())
        .collect();
    if base_dirs != state.spec.layers {
        return Err(Error::new(format!(
            "{}: image {name} is not the one it was started from any more (imported again \
             since): its layers differ",
            a.id
        )));
    }
    let made = images.commit(&base, &upper, &a.name)?;
    println!("{}", made.name);
    Ok(0)
}

/// The container's root as it sees it (its upper layer over its lower
/// ones, or its rootfs directory), written as one tar.
pub fn export(a: cli::Export) -> Result<i32> {
    let (found, state) = container(a.root.as_deref(), &a.id)?;
    let mut out: Box<dyn std::io::Write> = if a.file == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&a.file)
                .map_err(|e| Error::os(format_args!("create {}", a.file), &e))?,
        )
    };
    let written = if state.spec.layers.is_empty() {
        image::export(Path::new(&state.bundle), &mut out)
    } else {
        // A read-only overlay of its own, never attached anywhere: the
        // upper layer as the topmost lower one.
        let mut paths: Vec<PathBuf> = state.spec.layers.iter().map(PathBuf::from).collect();
        paths.push(found.dir.join(UPPER));
        let layers = Layers::open(&paths, "export", format!("container {}", a.id))?;
        let (fd, _) = layers.view()?.into_parts();
        image::export_fd(fd.as_fd(), &mut out, &format!("container {}", a.id))
    };
    if let Err(e) = written.and_then(|()| {
        out.flush()
            .map_err(|e| Error::os(format_args!("write {}", a.file), &e))
    }) {
        if a.file != "-" {
            let _ = std::fs::remove_file(&a.file);
        }
        return Err(e);
    }
    Ok(0)
}

fn image_store(dir: Option<&str>) -> Result<runner::image::Store> {
    runner::image::Store::open(std::path::Path::new(
        dir.unwrap_or(runner::image::DEFAULT_STORE),
    ))
}

pub fn import(a: cli::Import) -> Result<i32> {
    let image =
        image_store(a.store.as_deref())?.import(std::path::Path::new(&a.source), &a.name)?;
    println!("{} ({} layers)", image.name, image.layers.len());
    Ok(0)
}

pub fn images(a: cli::Images) -> Result<i32> {
    let images = image_store(a.store.as_deref())?.images()?;
    let mut text = format!("{:<32} {:>6}  CREATED\n", "NAME", "LAYERS");
    for i in images {
        let created = SystemTime::UNIX_EPOCH + Duration::from_secs(i.created);
        let created = store::time::rfc3339(created);
        text += &format!("{:<32} {:>6}  {created}\n", i.name, i.layers.len());
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

pub fn rmi(a: cli::Rmi) -> Result<i32> {
    if a.names.is_empty() {
        return Err(Error::new("no image given"));
    }
    let images = image_store(a.store.as_deref())?;
    let containers = crate::commands::store(a.root.as_deref())?;
    // What the containers in the state store were made from, running or
    // kept: an image by name, and the layer directories they run on.
    let used: Vec<String> = containers
        .list()
        .into_iter()
        .filter_map(|f| f.state.ok())
        .flat_map(|s| std::iter::once(s.spec.image).chain(s.spec.layers))
        .filter(|u| !u.is_empty())
        .collect();
    crate::commands::each(&a.names, |name| {
        images.remove(name, &|x| used.iter().any(|u| u == x))?;
        println!("{name}");
        Ok(())
    })
}

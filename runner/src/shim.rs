//! Where the shim comes from: a file (`--shim`, or husk-shim beside the
//! runner), or the copy compiled into the runner, run from a sealed memfd.
//!
//! The memfd is the fix for the class of runc's CVE-2019-5736: a container
//! that reaches the shim's executable through /proc/PID/exe finds a sealed,
//! anonymous copy it cannot write, not a file on the host.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use crate::error::{Error, Result};

#[cfg(husk_embedded_shim)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!(env!("HUSK_SHIM_PATH")));
#[cfg(not(husk_embedded_shim))]
const EMBEDDED: Option<&[u8]> = None;

/// What the spec chose: a file (opened once, when chosen), or the embedded
/// copy.
#[derive(Debug)]
pub enum Source {
    File { fd: OwnedFd, path: PathBuf },
    Embedded,
}

impl Source {
    /// Another handle on the same shim (its fd duplicated).
    pub fn try_clone(&self) -> Result<Source> {
        Ok(match self {
            Source::File { fd, path } => Source::File {
                fd: fd
                    .try_clone()
                    .map_err(|e| Error::os(format_args!("dup the fd of {}", path.display()), &e))?,
                path: path.clone(),
            },
            Source::Embedded => Source::Embedded,
        })
    }

    /// `--shim PATH`, else the embedded copy, else husk-shim beside the runner.
    /// `own_exe` is asked only when nothing is built in and no --shim given.
    pub fn choose<'a>(
        arg: Option<&str>,
        own_exe: impl FnOnce() -> Option<&'a std::path::Path>,
    ) -> Result<Source> {
        let path = match (arg, EMBEDDED) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(_)) => return Ok(Source::Embedded),
            (None, None) => own_exe()
                .ok_or_else(|| {
                    Error::new(
                        "cannot find the runner's own path to find husk-shim beside it; use --shim",
                    )
                })?
                .with_file_name("husk-shim"),
        };
        let err = |e: std::io::Error| Error::os(format_args!("shim {}", path.display()), &e);
        // Opened once and run from this fd: the file checked is the file run.
        let file = std::fs::File::open(&path).map_err(err)?;
        if !file.metadata().map_err(err)?.is_file() {
            return Err(Error::new(format!("shim {}: not a file", path.display())));
        }
        let fd = crate::fds::held(OwnedFd::from(file)).map_err(err)?;
        Ok(Source::File { fd, path })
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File { path, .. } => path.display().to_string(),
            Source::Embedded => "(embedded, from a sealed memfd)".into(),
        }
    }
}

/// The shim, ready for the child to exec: an fd, of the file given or of a
/// sealed memfd holding the embedded copy, and the fd's /proc path.
pub struct Shim {
    fd: OwnedFd,
    proc_path: CString,
    execveat: bool,
}

impl Shim {
    /// `missing`: whether execveat is pretended missing (the test knob).
    pub fn open(source: &Source, missing: &crate::kernel::Missing) -> Result<Shim> {
        let fd = match (source, EMBEDDED) {
            (Source::File { fd, .. }, _) => fd
                .try_clone()
                .map_err(|e| Error::os("dup the shim's fd", &e))
                .and_then(|fd| {
                    crate::fds::held(fd).map_err(|e| Error::os("move the shim's fd", &e))
                })?,
            (Source::Embedded, Some(bytes)) => sealed_memfd(bytes)?,
            (Source::Embedded, None) => {
                return Err(Error::new("this runner was built without an embedded shim"))
            }
        };
        // Made now: the child must not allocate between fork and exec.
        let proc_path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Error::new("an fd path with a NUL"))?;
        Ok(Shim {
            fd,
            proc_path,
            execveat: !missing.has(crate::kernel::Call::Execveat),
        })
    }

    /// Execs the shim; returns only on failure, with errno set.
    ///
    /// # Safety
    /// `argv` and `envp` are NULL-terminated arrays of C strings.
    pub unsafe fn exec(&self, argv: *const *const libc::c_char, envp: *const *const libc::c_char) {
        if self.execveat {
            // The fd is close-on-exec, which execveat allows for an ELF
            // program (only a script would need it open).
            libc::syscall(
                libc::SYS_execveat,
                self.fd.as_raw_fd(),
                c"".as_ptr(),
                argv,
                envp,
                libc::AT_EMPTY_PATH,
            );
            // Some 5.10 stable kernels (Debian's 5.10.223) answer ENOENT
            // to every execveat with an empty path: the fd's /proc path
            // then, which names the same sealed file.
            if *libc::__errno_location() != libc::ENOENT {
                return;
            }
        }
        libc::execve(self.proc_path.as_ptr(), argv, envp);
    }
}

fn sealed_memfd(bytes: &[u8]) -> Result<OwnedFd> {
    let err = |what: &str| {
        Error::os(
            format_args!("{what} for the embedded shim"),
            &std::io::Error::last_os_error(),
        )
    };
    // SAFETY: memfd_create takes a C string and flags; the fd is then ours.
    let fd = unsafe {
        libc::memfd_create(
            c"husk-shim".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(err("memfd_create"));
    }
    // SAFETY: a fresh fd owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|e| Error::os("write the embedded shim to its memfd", &e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(err("seal the memfd"));
    }
    crate::fds::held(OwnedFd::from(file)).map_err(|e| Error::os("move the shim's memfd", &e))
}

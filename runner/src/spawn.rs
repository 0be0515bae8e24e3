//! Starting the container: clone the shim into new namespaces, hand it the
//! plan, and learn whether it reached exec.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use shim::report::{
    Report, FIRST_PASSED_FD, PLAN_FD, RECORD_LEN, REPORT_FD, STEP_EXEC_SHIM, STEP_USERNS_ROOT,
};

use crate::error::{Error, Result};
use crate::shim::Shim;
use crate::signals::Mask;

/// The container's PID 1 as the host sees it, and our ends of its pipes.
pub struct Container {
    pub pid: i32,
    plan: Option<std::fs::File>,
    report: Option<std::fs::File>,
}

/// How to start the shim.
pub struct Launch<'a> {
    pub shim: &'a Shim,
    /// The namespaces to make (`Namespaces::clone_flags`).
    pub clone_flags: libc::c_int,
    pub mask: &'a Mask,
    /// What becomes the child's fds 0, 1 and 2 (a pseudo-terminal's
    /// slave, pipes to a monitor, /dev/null); None: the runner's own.
    pub stdio: [Option<RawFd>; 3],
    /// fds the plan names, handed on as FIRST_PASSED_FD and up.
    pub passed: &'a [i32],
    /// SIGKILL the child when the runner dies.
    pub parent_death_signal: bool,
    /// A PID namespace to start the shim in (a running container's, for
    /// `exec`; an OCI config's joined by path): entered by the
    /// runner, not by the shim, and left again after the clone. setns(CLONE_NEWPID) moves only the
    /// children made afterwards, so whoever enters it must then fork and
    /// stay between its parent and the child; done here, that fork is the
    /// clone that starts the shim anyway, and the process exec'd is the
    /// runner's own child, whose status it reads and to which it passes
    /// signals, as for `run`. The shim joins every other namespace from
    /// the plan.
    pub pid_namespace: Option<RawFd>,
    /// With a new user namespace: the pipe (read, write) whose one byte
    /// says that its ID maps are written; the child then becomes its root
    /// before it execs the shim (userns.rs).
    pub userns_sync: Option<(RawFd, RawFd)>,
}

/// Clones the shim into new namespaces; it waits for the plan.
pub fn clone_shim(launch: &Launch<'_>) -> Result<Container> {
    let (plan_r, plan_w) = pipe()?;
    let (report_r, report_w) = pipe()?;

    let argv = [c"husk-shim".as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];

    let (pid, clone_error) = fork_into(launch.pid_namespace, || {
        // SAFETY: a raw clone without CLONE_VM is a fork: the child runs on
        // a copy of this (single-threaded) process and only makes raw
        // syscalls before execve, all with data prepared above.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (launch.clone_flags | libc::SIGCHLD) as libc::c_long,
                0,
                0,
                0,
                0,
            ) as i32
        }
    })?;
    if pid < 0 {
        return Err(Error::os(
            "clone the shim into new namespaces",
            &clone_error,
        ));
    }
    if pid == 0 {
        // SAFETY: see above; `child` never returns.
        unsafe {
            child(
                launch,
                [plan_r.as_raw_fd(), report_w.as_raw_fd()],
                &argv,
                &envp,
            )
        }
    }
    drop((plan_r, report_w));
    Ok(Container {
        pid,
        plan: Some(plan_w.into()),
        report: Some(report_r.into()),
    })
}

/// Calls `fork` (a fork or a clone: its result and errno are returned)
/// with the children it makes in the PID namespace `ns`, if given; the
/// parent then goes back to its own, so that what it starts later (an OCI
/// config's hooks) runs in the runtime's.
pub(crate) fn fork_into(
    ns: Option<RawFd>,
    fork: impl FnOnce() -> i32,
) -> Result<(i32, std::io::Error)> {
    let Some(ns) = ns else {
        let pid = fork();
        return Ok((pid, std::io::Error::last_os_error()));
    };
    let own = std::fs::File::open("/proc/self/ns/pid")
        .map_err(|e| Error::os("open /proc/self/ns/pid", &e))?;
    enter_pid_namespace(ns, "the container's")?;
    let pid = fork();
    let error = std::io::Error::last_os_error();
    if pid != 0 {
        if let Err(e) = enter_pid_namespace(own.as_raw_fd(), "the runner's own") {
            if pid > 0 {
                crate::process::kill_and_reap(pid);
            }
            return Err(e);
        }
    }
    Ok((pid, error))
}

/// setns(CLONE_NEWPID): only the children this process makes from now on
/// are in `ns`.
fn enter_pid_namespace(ns: RawFd, which: &str) -> Result<()> {
    // SAFETY: setns on an fd the caller owns, and a plain flag.
    if unsafe { libc::setns(ns, libc::CLONE_NEWPID) } != 0 {
        return Err(Error::os(
            format_args!("setns into {which} PID namespace"),
            &std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A close-on-exec pipe whose fds are above 4: the child moves its ends to
/// fds 3 and 4 (and dup2 onto its own number would keep close-on-exec set).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let err = || Error::os("create pipe", &std::io::Error::last_os_error());
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(err());
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let high = |fd| crate::fds::held(fd).map_err(|e| Error::os("create pipe", &e));
    Ok((high(r)?, high(w)?))
}

/// In the new namespaces, before the shim: restore what the runner changed
/// for itself, put the fds where the shim expects them, exec.
unsafe fn child(
    launch: &Launch<'_>,
    [plan, report]: [i32; 2],
    argv: &[*const libc::c_char; 2],
    envp: &[*const libc::c_char; 1],
) -> ! {
    if let Some((r, w)) = launch.userns_sync {
        // Our copy of the write end closed: a runner that dies (or fails)
        // before the maps are written leaves EOF here, and the child goes,
        // with nobody to tell.
        libc::close(w);
        let mut byte = 0u8;
        if libc::read(r, (&mut byte as *mut u8).cast(), 1) != 1 {
            libc::_exit(crate::error::RUNTIME);
        }
        let sub = if libc::setresgid(0, 0, 0) != 0 {
            0
        } else if libc::setresuid(0, 0, 0) != 0 {
            1
        } else {
            u32::MAX
        };
        if sub != u32::MAX {
            report_and_exit(report, STEP_USERNS_ROOT, sub);
        }
    }
    libc::sigprocmask(libc::SIG_SETMASK, &launch.mask.empty, std::ptr::null_mut());
    // Rust's runtime ignores SIGPIPE, and ignored signals survive execve.
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    if launch.parent_death_signal {
        // If the runner dies, so does the container: no orphan outlives its
        // supervisor and its cgroup. (PID 1 may clear it again; the state
        // store's sweep is the guarantee, see store.rs.) A runner that died
        // before this prctl leaves the shim reading EOF where the plan
        // would come: it exits without doing anything.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    for (fd, from) in launch.stdio.iter().enumerate() {
        if let Some(from) = *from {
            libc::dup2(from, fd as i32);
        }
    }
    // Every source fd is at or above fds::HELD_BASE, so none of these
    // dup2s closes another's source; dup2 leaves the copies open on exec.
    let mut ok = libc::dup2(plan, PLAN_FD) == PLAN_FD && libc::dup2(report, REPORT_FD) == REPORT_FD;
    for (i, &fd) in launch.passed.iter().enumerate() {
        let to = FIRST_PASSED_FD + i as i32;
        ok = ok && libc::dup2(fd, to) == to;
    }
    if ok {
        launch.shim.exec(argv.as_ptr(), envp.as_ptr());
    }
    report_and_exit(report, STEP_EXEC_SHIM, 0)
}

/// In the child, before the shim: reports errno as the failure of `step`
/// on the report pipe, as the shim reports its own, and exits.
unsafe fn report_and_exit(report: i32, step: u32, sub: u32) -> ! {
    let errno = *libc::__errno_location() as u32;
    let record = Report { step, sub, errno }.to_bytes();
    libc::write(report, record.as_ptr().cast(), record.len());
    libc::_exit(crate::error::RUNTIME)
}

impl Container {
    /// Sends the plan; the shim's read of it is its go. A shim that died
    /// meanwhile shows up in the report and in its exit status, so write
    /// errors (EPIPE) are left to those.
    pub fn send_plan(&mut self, plan: &[u8]) {
        if let Some(mut w) = self.plan.take() {
            let _ = w.write_all(plan);
        }
    }

    /// None: the shim exec'd the user's program (or died; its status says).
    /// The pipe is closed afterwards: the runner keeps no fd it no longer needs.
    pub fn read_report(&mut self) -> Option<Report> {
        let mut report = self.report.take()?;
        let mut buf = [0u8; RECORD_LEN];
        let mut got = 0;
        while got < RECORD_LEN {
            match report.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        (got == RECORD_LEN).then(|| Report::from_bytes(buf))
    }

    /// For failures during setup: make sure the child is gone and reaped.
    pub fn kill_and_reap(&mut self) {
        self.plan.take();
        crate::process::kill_and_reap(self.pid);
    }
}

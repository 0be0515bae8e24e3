//! husk's shim: the only runtime code that runs inside a container.
//!
//! It reads the plan the runner wrote on fd 3, performs its operations in
//! order, and execs the user's program. On a failure it writes one record
//! (which op, the errno) on fd 4 and exits; fd 4 is close-on-exec, so EOF
//! there tells the runner that the exec succeeded. It has no policy: every
//! decision was made by the runner.
#![no_std]
#![no_main]

mod arch;
mod init;
mod mem;
mod ops;

use core::panic::PanicInfo;
use rustix::fd::BorrowedFd;
use rustix::io::{self, Errno, FdFlags};
use shim::plan::{self, Plan, HEADER_LEN};
use shim::report::{self, Report, PLAN_FD, REPORT_FD};

/// The exit status after a reported failure; the runner reads the report
/// and decides the status it exits with.
const FAILED: i32 = 125;

/// The shim never allocates (its memory is `ops::alloc`'s mappings), but a
/// workspace build unifies the plan library's runner-side `encode` feature,
/// which links `alloc`, into this binary too. Every allocation fails.
struct NoAlloc;

// SAFETY: returning null is always a valid answer from `alloc`.
unsafe impl core::alloc::GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[global_allocator]
static ALLOCATOR: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    arch::exit_group(FAILED)
}

/// The prebuilt libcore is compiled for unwinding, and an unoptimised link
/// (plain `cargo build`) keeps its reference to the personality routine
/// that release builds drop. With panic=abort nothing ever calls it.
#[cfg(debug_assertions)]
#[no_mangle]
extern "C" fn rust_eh_personality() {
    arch::exit_group(FAILED)
}

/// Called by the architecture's `_start` with nothing set up but a stack.
extern "C" fn entry() -> ! {
    // SAFETY: the runner hands us fds 3 and 4 and nothing else uses them;
    // they live until exec or exit.
    let (plan_fd, report_fd) = unsafe {
        (
            BorrowedFd::borrow_raw(PLAN_FD),
            BorrowedFd::borrow_raw(REPORT_FD),
        )
    };
    let failure = match run(plan_fd, report_fd) {
        Ok(()) => arch::exit_group(0),
        Err(report) => report,
    };
    // Nothing more to do if the runner is gone: it would be the only reader.
    let _ = io::write(report_fd, &failure.to_bytes());
    // After AwaitStart only the exec can fail, and only the status tells:
    // a shell's 127 and 126, which callers map as runc's.
    let status = match failure.errno as i32 {
        _ if !ops::REPORT_CLOSED.load(core::sync::atomic::Ordering::Relaxed) => FAILED,
        e if e == Errno::NOENT.raw_os_error() => 127,
        e if e == Errno::ACCESS.raw_os_error() || e == Errno::NOEXEC.raw_os_error() => 126,
        _ => FAILED,
    };
    arch::exit_group(status)
}

fn run(plan_fd: BorrowedFd<'_>, report_fd: BorrowedFd<'_>) -> Result<(), Report> {
    let read_err = |e: Errno| Report {
        step: report::STEP_READ_PLAN,
        sub: 0,
        errno: e.raw_os_error() as u32,
    };
    // The report must not reach the user's program: its closing is the
    // runner's signal that exec succeeded.
    io::fcntl_setfd(report_fd, FdFlags::CLOEXEC).map_err(read_err)?;

    // The read of the header is also the runner's "go": it writes the plan
    // only once this process sits in the container's cgroup.
    let mut header = [0u8; HEADER_LEN];
    read_exact(plan_fd, &mut header).map_err(read_err)?;
    let malformed = |_| Report {
        step: report::STEP_DECODE_PLAN,
        sub: 0,
        errno: Errno::INVAL.raw_os_error() as u32,
    };
    let len = plan::parse_header(&header).map_err(malformed)?;
    let body = ops::alloc(len).map_err(read_err)?;
    read_exact(plan_fd, body).map_err(read_err)?;
    // SAFETY: fd 3 is ours (see `entry`) and nothing borrows it after this.
    unsafe { rustix::io::close(PLAN_FD) };

    let plan = Plan::new(body).map_err(malformed)?;
    let mut state = ops::State::default();
    for (step, op) in plan.ops().enumerate() {
        // `Plan::new` validated every op.
        let op = op.map_err(malformed)?;
        ops::run(&mut state, &op).map_err(|f| Report {
            step: step as u32,
            sub: f.sub,
            errno: f.errno.raw_os_error() as u32,
        })?;
    }
    Ok(())
}

fn read_exact(fd: BorrowedFd<'_>, mut buf: &mut [u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match io::read(fd, &mut *buf) {
            // The runner closed the plan without sending it all: it is gone.
            Ok(0) => return Err(Errno::PIPE),
            Ok(n) => buf = &mut buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

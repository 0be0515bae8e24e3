//! The shim's report: one fixed-size record on a close-on-exec pipe.
//!
//! The shim writes a record when an operation fails and exits; when the
//! user's program is exec'd the pipe closes with nothing written, so EOF
//! means success.

/// Where in the setup the failure happened: an index into the plan's ops
/// (or one of the steps before the plan), and which system call inside
/// that op failed (ops make up to five; the runner names each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub step: u32,
    pub sub: u32,
    pub errno: u32,
}

pub const RECORD_LEN: usize = 12;

/// The runner's child could not exec the shim.
pub const STEP_EXEC_SHIM: u32 = u32::MAX;
/// The shim could not read the plan.
pub const STEP_READ_PLAN: u32 = u32::MAX - 1;
/// The plan was malformed; `errno` is EINVAL.
pub const STEP_DECODE_PLAN: u32 = u32::MAX - 2;
/// The runner's child could not become the root of the container's user
/// namespace (`sub` 0: setresgid, 1: setresuid).
pub const STEP_USERNS_ROOT: u32 = u32::MAX - 3;

/// The fds the runner hands the shim: the plan to read, the report to write.
pub const PLAN_FD: i32 = 3;
pub const REPORT_FD: i32 = 4;
/// Further fds the plan's ops name (the rootfs's mount tree, namespaces to
/// join) are handed over from this number up, in order.
pub const FIRST_PASSED_FD: i32 = 5;

impl Report {
    pub fn to_bytes(self) -> [u8; RECORD_LEN] {
        let mut b = [0; RECORD_LEN];
        b[..4].copy_from_slice(&self.step.to_le_bytes());
        b[4..8].copy_from_slice(&self.sub.to_le_bytes());
        b[8..].copy_from_slice(&self.errno.to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; RECORD_LEN]) -> Report {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Report {
            step: word(0),
            sub: word(4),
            errno: word(8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = Report {
            step: 7,
            sub: 2,
            errno: 13,
        };
        assert_eq!(Report::from_bytes(r.to_bytes()), r);
    }
}

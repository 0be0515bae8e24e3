//! The policy as an OCI runtime-spec `linux.seccomp` object, so that the
//! bench can give runc the filter husk installs. One difference is
//! libseccomp's, not ours: it compares all 64 bits of an argument, where
//! husk's filter compares the low 32 the kernel reads.

use super::policy::{named, resolve, Cmp, Decision};
use super::{RET_ALLOW, RET_EPERM, RET_ERRNO, RET_KILL_PROCESS, SCMP_ARCH};
use crate::json::quote as string;

/// The profile for a container keeping `caps`: the decisions
/// `filter(caps)` compiles, as names with actions, argument rules and errno
/// values; everything else gets the default, errno EPERM.
pub fn profile(caps: u64) -> String {
    let decisions = resolve(caps);
    let names = named();
    let name = |nr: u32| match names.binary_search_by_key(&nr, |s| s.nr) {
        Ok(i) => names[i].name,
        Err(_) => "?",
    };
    // One entry for each outcome, in the order of the first syscall given it.
    let mut outcomes: Vec<(u32, Vec<&str>)> = Vec::new();
    let mut with_args = Vec::new();
    for (nr, decision) in &decisions {
        match decision {
            // Only OCI profiles have entries; husk's own policy never.
            Decision::Ret(RET_EPERM) | Decision::Entries { .. } => {}
            Decision::Ret(ret) => match outcomes.iter_mut().find(|(r, _)| r == ret) {
                Some((_, names)) => names.push(name(*nr)),
                None => outcomes.push((*ret, vec![name(*nr)])),
            },
            // Several entries for one syscall allow it when any matches;
            // the conditions within one entry must all hold.
            Decision::Args(tests) => {
                for t in tests {
                    let (value, value_two, op) = match t.cmp {
                        Cmp::Eq(v) => (v, None, "SCMP_CMP_EQ"),
                        Cmp::Ne(v) => (v, None, "SCMP_CMP_NE"),
                        Cmp::MaskedEq { mask, value } => (mask, Some(value), "SCMP_CMP_MASKED_EQ"),
                    };
                    let two = value_two.map_or(String::new(), |v| format!(", \"valueTwo\": {v}"));
                    with_args.push(format!(
                        "{{\"names\": [{}], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{{\"index\": {}, \"value\": {value}{two}, \"op\": \"{op}\"}}]}}",
                        string(name(*nr)),
                        t.arg
                    ));
                }
            }
        }
    }
    let mut entries: Vec<String> = outcomes
        .iter()
        .map(|(ret, names)| {
            let names: Vec<String> = names.iter().map(|n| string(n)).collect();
            format!("{{\"names\": [{}], {}}}", names.join(", "), action(*ret))
        })
        .collect();
    entries.extend(with_args);
    format!(
        "{{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"defaultErrnoRet\": {},\n  \"architectures\": [{}],\n  \"syscalls\": [\n    {}\n  ]\n}}",
        libc::EPERM,
        string(SCMP_ARCH),
        entries.join(",\n    ")
    )
}

/// `"action": ...` and, for an errno, `"errnoRet": ...`.
fn action(ret: u32) -> String {
    match ret {
        RET_ALLOW => "\"action\": \"SCMP_ACT_ALLOW\"".into(),
        RET_KILL_PROCESS => "\"action\": \"SCMP_ACT_KILL_PROCESS\"".into(),
        r if r & 0xffff_0000 == RET_ERRNO => {
            format!(
                "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": {}",
                r & 0xffff
            )
        }
        r => format!("\"action\": \"unknown {r:#x}\""),
    }
}

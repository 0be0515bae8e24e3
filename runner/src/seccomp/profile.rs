//! An OCI runtime-spec `linux.seccomp` profile (what podman, containerd and
//! the conformance suite send) compiled by the same compiler as husk's own
//! filter. Comparisons are libseccomp's: whole 64-bit arguments.
//!
//! Syscall names are looked up in the table of Docker's profile (table.rs),
//! which names every syscall these architectures have up to its kernel; a
//! name it does not know is skipped, as libseccomp skips a name that the
//! architecture lacks. Only this build's architecture is judged: another
//! architecture's calls are killed whatever `architectures` lists.

use super::bpf;
use super::policy::{named, Decision, Entry, Op64, Test64};
use super::{RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS};
use crate::json::Value;

const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;

/// The filter's bytes for `profile`; errors name the field.
pub fn compile(profile: &Value) -> Result<Vec<u8>, String> {
    for (k, v) in profile.as_object().unwrap_or_default() {
        let known = [
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "syscalls",
            "flags",
        ];
        if !known.contains(&k.as_str()) && *v != Value::Null {
            return Err(format!("{k}: not supported by husk"));
        }
    }
    if profile
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
    {
        return Err("flags: not supported by husk".into());
    }
    let errno_of = |v: Option<&Value>| v.and_then(Value::as_u64).map(|e| e as u32);
    let default = action(
        profile
            .get("defaultAction")
            .and_then(Value::as_str)
            .unwrap_or(""),
        errno_of(profile.get("defaultErrnoRet")),
    )
    .map_err(|e| format!("defaultAction: {e}"))?;
    let names = named();
    let mut decisions: Vec<(u32, Decision)> = Vec::new();
    let syscalls = profile
        .get("syscalls")
        .and_then(Value::as_array)
        .unwrap_or_default();
    for (i, s) in syscalls.iter().enumerate() {
        let field = |f: &str| format!("syscalls[{i}].{f}");
        let ret = action(
            s.get("action").and_then(Value::as_str).unwrap_or(""),
            errno_of(s.get("errnoRet")),
        )
        .map_err(|e| format!("{}: {e}", field("action")))?;
        let tests = s
            .get("args")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|a| test(a).map_err(|e| format!("{}: {e}", field("args"))))
            .collect::<Result<Vec<_>, _>>()?;
        for name in s.get("names").and_then(Value::as_array).unwrap_or_default() {
            let name = name.as_str().ok_or_else(|| field("names"))?;
            let Some(nr) = names.iter().find(|n| n.name == name).map(|n| n.nr) else {
                continue;
            };
            add(&mut decisions, nr, &tests, ret, default);
        }
    }
    decisions.sort_by_key(|(nr, _)| *nr);
    let program = bpf::compile(&decisions, default)?;
    Ok(bpf::encode(&program))
}

/// Adds an entry for `nr`: an unconditional one decides alone (the first
/// given wins, as libseccomp refuses a second); conditional ones are
/// tried in order, before falling to the default.
fn add(decisions: &mut Vec<(u32, Decision)>, nr: u32, tests: &[Test64], ret: u32, default: u32) {
    let entry = Entry {
        tests: tests.to_vec(),
        ret,
    };
    match decisions.iter_mut().find(|(n, _)| *n == nr) {
        None if tests.is_empty() => decisions.push((nr, Decision::Ret(ret))),
        None => decisions.push((
            nr,
            Decision::Entries {
                entries: vec![entry],
                otherwise: default,
            },
        )),
        Some((_, Decision::Entries { entries, otherwise })) => {
            if tests.is_empty() {
                *otherwise = ret;
            } else {
                entries.push(entry);
            }
        }
        Some(_) => {}
    }
}

fn action(name: &str, errno: Option<u32>) -> Result<u32, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => RET_ALLOW,
        "SCMP_ACT_ERRNO" => RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => RET_TRAP,
        "SCMP_ACT_TRACE" => RET_TRACE | (errno.unwrap_or(0) & 0xffff),
        "SCMP_ACT_LOG" => RET_LOG,
        other => return Err(format!("{other:?}: not an action husk supports")),
    })
}

fn test(a: &Value) -> Result<Test64, String> {
    let num = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0);
    let index = num("index");
    if index > 5 {
        return Err(format!("index {index}: there are 6 arguments"));
    }
    let (value, two) = (num("value"), num("valueTwo"));
    let op = a.get("op").and_then(Value::as_str).unwrap_or("");
    let (op, value) = match op {
        "SCMP_CMP_EQ" => (Op64::Eq, value),
        "SCMP_CMP_NE" => (Op64::Ne, value),
        "SCMP_CMP_LT" => (Op64::Lt, value),
        "SCMP_CMP_LE" => (Op64::Le, value),
        "SCMP_CMP_GT" => (Op64::Gt, value),
        "SCMP_CMP_GE" => (Op64::Ge, value),
        // libseccomp: `value` is the mask, `valueTwo` the datum.
        "SCMP_CMP_MASKED_EQ" => (Op64::MaskedEq(value), two),
        other => return Err(format!("op {other:?}: not a comparison")),
    };
    Ok(Test64 {
        arg: index as u8,
        op,
        value,
    })
}

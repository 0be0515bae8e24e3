//! OCI profiles: every comparison at its boundaries, in both words of the
//! argument, against a plain reading of the profile.

use linux_raw_sys::general as nr;

use super::Bpf;
use crate::json;
use crate::seccomp::policy::{Op64, Test64};
use crate::seccomp::profile::compile;
use crate::seccomp::{RET_ALLOW, RET_ERRNO};

const OPS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];

fn op(name: &str, value_two: u64) -> Op64 {
    match name {
        "SCMP_CMP_EQ" => Op64::Eq,
        "SCMP_CMP_NE" => Op64::Ne,
        "SCMP_CMP_LT" => Op64::Lt,
        "SCMP_CMP_LE" => Op64::Le,
        "SCMP_CMP_GT" => Op64::Gt,
        "SCMP_CMP_GE" => Op64::Ge,
        _ => Op64::MaskedEq(value_two),
    }
}

/// Values around `v` in each word.
fn around(v: u64) -> Vec<u64> {
    let mut out = vec![0, u64::MAX, v];
    for d in [1u64, 1 << 32] {
        out.push(v.wrapping_add(d));
        out.push(v.wrapping_sub(d));
    }
    out
}

#[test]
fn every_comparison_holds_in_both_words() {
    for name in OPS {
        for value in [0u64, 7, 0x1_0000_0005, u64::MAX - 1] {
            let two = 0x0000_00ff_0000_00f0;
            // libseccomp: for MASKED_EQ, value is the mask, valueTwo the datum.
            let (mask, datum) = (value | 0xff, two & (value | 0xff));
            let (v_json, two_json) = if name == "SCMP_CMP_MASKED_EQ" {
                (mask, datum)
            } else {
                (value, 0)
            };
            let text = format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                    {{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
                      "args":[{{"index":1,"value":{v_json},"valueTwo":{two_json},"op":"{name}"}}]}},
                    {{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":6,
                      "args":[{{"index":2,"value":3,"op":"SCMP_CMP_EQ"}},{{"index":3,"value":4,"op":"SCMP_CMP_EQ"}}]}},
                    {{"names":["not_a_syscall","getppid"],"action":"SCMP_ACT_ERRNO"}}]}}"#
            );
            let bpf = Bpf::new(&compile(&json::parse(&text).unwrap()).unwrap());
            let first = Test64 {
                arg: 1,
                op: op(name, mask),
                value: if name == "SCMP_CMP_MASKED_EQ" {
                    datum
                } else {
                    value
                },
            };
            for a in around(value).into_iter().chain(around(datum)) {
                for (a2, a3) in [(3, 4), (3, 5), (3 | 1 << 32, 4)] {
                    let args = [0, a, a2, a3, 0, 0];
                    let want = if first.passes(&args) {
                        RET_ERRNO | 5
                    } else if a2 == 3 && a3 == 4 {
                        RET_ERRNO | 6
                    } else {
                        RET_ALLOW
                    };
                    let got = bpf.verdict(nr::__NR_getpid, &args);
                    assert_eq!(
                        got, want,
                        "{name} value {value:#x}: arg {a:#x} ({a2:#x}, {a3})"
                    );
                }
            }
            assert_eq!(bpf.verdict(nr::__NR_getppid, &[0; 6]), RET_ERRNO | 1);
            assert_eq!(bpf.verdict(nr::__NR_gettid, &[0; 6]), RET_ALLOW);
        }
    }
}

#[test]
fn bad_profiles_name_the_field() {
    for (text, field) in [
        (r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, "defaultAction"),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"X"}]}"#,
            "syscalls[0].action",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"}"#,
            "listenerPath",
        ),
    ] {
        let e = compile(&json::parse(text).unwrap()).unwrap_err();
        assert!(e.starts_with(field), "{e}");
    }
}

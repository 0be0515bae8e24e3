//! What goes wrong around detached containers gets one clear answer and
//! leaks nothing: two `rm` at once, the monitor killed with SIGKILL, a
//! state file truncated by hand.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::detached::{eventually, ps};
use crate::harness::{one_error_line, R};
use crate::{check, host, output, Env, Output, PROBE};

/// Two `rm` of one stopped container at once: one removes it, the other
/// says it is gone; a few times over, as the race may fall either way.
pub fn two_rm_at_once_one_removes_the_other_says_so(env: &Env) -> R {
    for round in 0..5 {
        let d = env.detach(&[], &["true"])?;
        env.husk(&["wait", &d.id]).expect(0)?;
        let spawn = || {
            let mut c = env.husk_command(&["rm", &d.id]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().map_err(|e| e.to_string())
        };
        let (a, b) = (spawn()?, spawn()?);
        let a = crate::collect(a, Duration::from_secs(30))?;
        let b = crate::collect(b, Duration::from_secs(30))?;
        let (won, lost): (Vec<&Output>, Vec<&Output>) =
            [&a, &b].into_iter().partition(|o| o.status == 0);
        check(won.len() == 1 && lost.len() == 1, || {
            format!("round {round}: not one winner\n{a}\n{b}")
        })?;
        let l = lost[0];
        check(
            l.status == 125
                && l.stderr.lines().count() == 1
                && (l.stderr.contains("no such container")
                    || l.stderr.contains("removed meanwhile")),
            || format!("round {round}: the loser said\n{l}"),
        )?;
        check(won[0].stdout.trim() == d.id, || {
            format!("the winner said\n{}", won[0])
        })?;
    }
    Ok(())
}

/// `kill -9` of a container's monitor: the container ends (at once by
/// its parent-death signal; here PID 1 clears it, so at the next husk
/// command), its cgroup goes, `ps -a` says its status is unknown, `wait`
/// says so in one line, and `rm` removes it.
pub fn a_killed_monitor_leaves_nothing(env: &Env) -> R {
    let d = env.detach(&["--pids", "16"], &[PROBE, "pdeathsig-escape"])?;
    let pid1 = d.pid1()?;
    let monitor = d.number("supervisor")? as i32;
    check(
        eventually(Duration::from_secs(10), || {
            fs::read_to_string(format!("/proc/{pid1}/cmdline")).is_ok_and(|c| c.starts_with(PROBE))
        }),
        || "PID 1 never became the probe".into(),
    )?;
    let ns = fs::read_link(format!("/proc/{pid1}/ns/pid")).map_err(|e| e.to_string())?;
    let cgroup = host::cgroup_dir(pid1 as u32, "pids").ok_or("no pids cgroup")?;
    // SAFETY: kill(2) takes plain integers.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    check(
        eventually(Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{monitor}/comm")).exists()
                || fs::read_to_string(format!("/proc/{monitor}/stat"))
                    .is_ok_and(|s| s.contains(") Z"))
        }),
        || "the monitor did not die".into(),
    )?;
    check(Path::new(&format!("/proc/{pid1}")).exists(), || {
        "PID 1 died with its monitor: the probe did not clear its parent-death signal, so this tests less".into()
    })?;
    // The next husk command ends it.
    let status = d.status();
    check(
        status == "exited (status unknown: its monitor was killed)",
        || format!("ps -a says {status:?}"),
    )?;
    check(
        eventually(Duration::from_secs(10), || {
            host::processes_in(&ns).is_empty()
        }),
        || {
            format!(
                "processes of the container still run: {:?}",
                host::processes_in(&ns)
            )
        },
    )?;
    check(!cgroup.exists(), || format!("{} is left", cgroup.display()))?;
    one_error_line(
        &env.husk(&["wait", &d.id]),
        125,
        "its status is unknown: its monitor was killed",
    )?;
    env.husk(&["rm", &d.id]).expect(0).map(drop)
}

/// A state file truncated by hand: `ps` lists the container as unknown,
/// `inspect` and `kill` say why in one line, `rm` refuses while its
/// monitor lives, `rm -f` ends and removes it.
pub fn a_truncated_state_file_is_a_clear_answer(env: &Env) -> R {
    let d = env.detach(&["--memory", "32M"], &["sleep", "1000"])?;
    let pid1 = d.pid1()?;
    let cgroup = host::cgroup_dir(pid1 as u32, "memory").ok_or("no memory cgroup")?;
    let state = Path::new(host::STORE).join(&d.id).join("state.json");
    let text = fs::read_to_string(&state).map_err(|e| e.to_string())?;
    fs::write(&state, &text[..text.len() / 2]).map_err(|e| e.to_string())?;
    let out = env.husk(&["ps", "-a"]);
    out.expect(0)?;
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&d.id))
        .unwrap_or("");
    check(
        row.contains("unknown:") && row.contains("state.json"),
        || format!("ps -a\n{out}"),
    )?;
    check(
        ps(env, true).iter().any(|r| r.to_json().contains(&d.id)),
        || "ps --format json lost it".into(),
    )?;
    one_error_line(&env.husk(&["inspect", &d.id]), 125, "state.json")?;
    one_error_line(&env.husk(&["kill", &d.id]), 125, "its state cannot be read")?;
    one_error_line(&env.husk(&["rm", &d.id]), 125, "running; stop it first")?;
    let mut c = env.husk_command(&["rm", "-f", &d.id]);
    output(&mut c).expect(0)?;
    check(!Path::new(&format!("/proc/{pid1}")).exists(), || {
        format!("PID 1 ({pid1}) still runs")
    })?;
    check(!cgroup.exists(), || format!("{} is left", cgroup.display()))?;
    // A stopped container's, too.
    let stopped = env.detach(&[], &["true"])?;
    env.husk(&["wait", &stopped.id]).expect(0)?;
    let state = Path::new(host::STORE).join(&stopped.id).join("state.json");
    fs::write(&state, "{\"ociVersion\": \"1.").map_err(|e| e.to_string())?;
    let row = env.husk(&["ps", "-a"]);
    check(
        row.stdout.contains(&stopped.id) && row.stdout.contains("unknown:"),
        || format!("ps -a\n{row}"),
    )?;
    env.husk(&["rm", &stopped.id]).expect(0).map(drop)
}

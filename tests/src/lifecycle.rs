//! Detached containers and their lifecycle: `run -d`, `ps`, `logs`,
//! `exec`, `stop`, `rm`, `attach`, and a container that outlives the
//! shell and the terminal that started it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use runner::json::Value;

use crate::detached::{eventually, ps};
use crate::harness::{one_error_line, R};
use crate::{check, collect, fact, facts, host, Env, PROBE};

/// 50 containers started with -d are all in `ps`, running, each with its
/// own PID 1; one `rm -f` of them all leaves nothing.
pub fn fifty_detached_containers_are_all_in_ps(env: &Env) -> R {
    let tag = std::process::id();
    let names: Vec<String> = (0..50).map(|i| format!("fifty-{tag}-{i}")).collect();
    let mut started = Vec::new();
    for name in &names {
        started.push(env.detach(&["--name", name], &["sleep", "1000"])?);
    }
    let rows = ps(env, false);
    let listed: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r.get("status").and_then(Value::as_str) == Some("running"))
        .filter_map(|r| r.get("id").and_then(Value::as_str))
        .collect();
    for name in &names {
        check(listed.contains(name.as_str()), || {
            format!("{name} is not running in ps: {rows:?}")
        })?;
    }
    let mut pids = BTreeSet::new();
    for d in &started {
        let pid = d.pid1()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        check(comm.trim() == "sleep", || {
            format!("{}'s PID 1 ({pid}) is {comm:?}, not sleep", d.id)
        })?;
        pids.insert(pid);
    }
    check(pids.len() == 50, || format!("{} distinct PIDs", pids.len()))?;
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    let out = env.husk(&args);
    out.expect(0)?;
    check(out.stdout.lines().count() == 50, || {
        format!("rm -f did not name all 50\n{out}")
    })?;
    let left: Vec<String> = ps(env, true)
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(String::from))
        .filter(|id| names.contains(id))
        .collect();
    check(left.is_empty(), || format!("still in ps -a: {left:?}"))
}

/// `logs -f` prints a counter's lines as they come, in order, with the
/// stderr line on stderr, and ends when the container does; `--tail`
/// and `--since` choose lines.
pub fn logs_follow_a_counter(env: &Env) -> R {
    let script = "i=0; while [ $i -lt 30 ]; do echo count=$i; i=$((i+1)); sleep 0.05; done; \
                  echo done >&2";
    let d = env.detach(&[], &["sh", "-c", script])?;
    let mut follow = env.husk_command(&["logs", "-f", &d.id]);
    follow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = follow.spawn().map_err(|e| e.to_string())?;
    // The first line arrives while the counter still counts.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).map_err(|e| e.to_string())?;
    let running_then = d.status() == "running";
    let mut rest = String::new();
    stdout
        .read_to_string(&mut rest)
        .map_err(|e| e.to_string())?;
    let out = collect(child, Duration::from_secs(30))?;
    out.expect(0)?;
    let lines: Vec<String> = std::iter::once(first.trim_end().to_string())
        .chain(rest.lines().map(String::from))
        .collect();
    let want: Vec<String> = (0..30).map(|i| format!("count={i}")).collect();
    check(lines == want, || format!("logs -f printed {lines:?}"))?;
    check(running_then, || {
        "the counter had ended before logs -f printed its first line: nothing was followed".into()
    })?;
    check(out.stderr == "done\n", || {
        format!("stderr: {:?}", out.stderr)
    })?;
    let tail = env.husk(&["logs", "--tail", "2", &d.id]);
    tail.expect(0)?;
    check(
        tail.stdout == "count=29\n" && tail.stderr == "done\n",
        || format!("--tail 2\n{tail}"),
    )?;
    let later = env.husk(&["logs", "--since", "2099-01-01T00:00:00Z", &d.id]);
    check(later.stdout.is_empty() && later.status == 0, || {
        format!("--since the future\n{later}")
    })?;
    one_error_line(
        &env.husk(&["logs", "--since", "yesterday", &d.id]),
        125,
        "--since yesterday",
    )?;
    env.husk(&["wait", &d.id]).expect(0).map(drop)
}

/// The host's view of a process: its namespaces, root, cgroups and
/// capabilities.
fn seen_from_host(pid: i32) -> Result<Vec<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = Vec::new();
    for ns in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
        let link = fs::read_link(format!("/proc/{pid}/ns/{ns}")).map_err(|e| e.to_string())?;
        seen.push(format!("{ns} {}", link.display()));
    }
    let root = fs::metadata(format!("/proc/{pid}/root")).map_err(|e| e.to_string())?;
    seen.push(format!("root {}:{}", root.dev(), root.ino()));
    seen.push(fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    for key in [
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp:",
    ] {
        seen.extend(
            status
                .lines()
                .filter(|l| l.starts_with(key))
                .map(String::from),
        );
    }
    Ok(seen)
}

/// `exec` runs in every namespace, the cgroups, the root and with the
/// capabilities, no_new_privs and seccomp of the container (read from
/// the host), sees its hostname and mounts, and returns the status.
pub fn exec_joins_everything_and_returns_the_status(env: &Env) -> R {
    let d = env.detach(
        &["--memory", "64M", "--hostname", "boxy"],
        &["sleep", "1000"],
    )?;
    let pid1 = d.pid1()?;
    // A process exec started, seen from the host while it sleeps.
    let mut c = env.husk_command(&["exec", &d.id, "--", "sleep", "30"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    let mut exec_pid = 0;
    let found = eventually(Duration::from_secs(10), || {
        exec_pid = host::children(child.id()).first().copied().unwrap_or(0) as i32;
        exec_pid > 0
            && fs::read_to_string(format!("/proc/{exec_pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    });
    let (theirs, ours) = (seen_from_host(pid1), seen_from_host(exec_pid));
    let _ = child.kill();
    let _ = child.wait();
    check(found, || "exec's sleep never ran".into())?;
    let (theirs, ours) = (theirs?, ours?);
    check(theirs == ours, || {
        format!("PID 1 and the exec'd process differ:\nPID 1: {theirs:#?}\nexec: {ours:#?}")
    })?;
    let probe = env.husk(&["exec", &d.id, "--", PROBE, "facts"]);
    probe.expect(0)?;
    let f = facts(&probe);
    check(
        fact(&f, "hostname") == "boxy" && fact(&f, "ppid") == "0" && fact(&f, "pid") != "1",
        || format!("exec's facts\n{probe}"),
    )?;
    // Read from inside: a cgroup mount's root shows relative to the
    // reader's cgroup namespace, which the host's is not.
    let script = "cat /proc/self/mountinfo; echo ---; cat /proc/1/mountinfo";
    let mounts = env.husk(&["exec", &d.id, "--", "sh", "-c", script]);
    mounts.expect(0)?;
    let (own, pid1s) = mounts.stdout.split_once("---\n").unwrap_or_default();
    check(
        own == pid1s && own.contains(" / rw") && own.contains(" /proc "),
        || format!("exec sees other mounts than PID 1:\n{mounts}"),
    )?;
    env.husk(&["exec", &d.id, "--", "sh", "-c", "exit 42"])
        .expect(42)?;
    let user = env.husk(&[
        "exec", "-u", "1000:100", "-e", "A=b", "-w", "/tmp", &d.id, "--", PROBE, "facts",
    ]);
    user.expect(0)?;
    let as_user = facts(&user);
    // The bounding set stays the container's (Docker's, less SYS_CHROOT
    // on an initramfs host), which root's exec above showed.
    check(
        fact(&as_user, "uid") == "1000"
            && fact(&as_user, "gid") == "100"
            && fact(&as_user, "capeff") == "0000000000000000"
            && fact(&as_user, "capbnd") == fact(&f, "capbnd")
            && fact(&as_user, "cwd") == "/tmp",
        || format!("exec -u 1000:100 -w /tmp\n{user}"),
    )?;
    let env_out = env.husk(&[
        "exec",
        "-e",
        "A=b",
        &d.id,
        "--",
        "sh",
        "-c",
        "echo $A $HOSTNAME",
    ]);
    check(env_out.stdout == "b boxy\n", || {
        format!("exec -e\n{env_out}")
    })?;
    one_error_line(
        &env.husk(&["exec", &d.id, "--", "no-such-command"]),
        127,
        "exec no-such-command: executable file not found in the container's PATH",
    )?;
    one_error_line(
        &env.husk(&["exec", "no-such-container", "--", "true"]),
        125,
        "no-such-container: no such container",
    )?;
    env.husk(&["stop", "-t", "0", &d.id]).expect(0)?;
    one_error_line(
        &env.husk(&["exec", &d.id, "--", "true"]),
        125,
        &format!("{}: not running", d.id),
    )
}

/// `stop` of a PID 1 that ignores SIGTERM takes the grace time, then ends
/// it with SIGKILL; `wait` and `ps` say so.
pub fn stop_waits_the_grace_time_then_kills(env: &Env) -> R {
    let script = "trap '' TERM; while :; do sleep 1; done";
    let d = env.detach(&[], &["sh", "-c", script])?;
    let pid1 = d.pid1()?;
    check(
        eventually(Duration::from_secs(10), || {
            let status = fs::read_to_string(format!("/proc/{pid1}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & 1 << (libc::SIGTERM - 1) != 0)
        }),
        || "the shell never ignored SIGTERM".into(),
    )?;
    let start = Instant::now();
    let out = env.husk(&["stop", "-t", "2", &d.id]);
    let took = start.elapsed();
    out.expect(0)?;
    check(took >= Duration::from_secs(2), || {
        format!("stop returned after {took:?}, before the 2 s grace time")
    })?;
    let wait = env.husk(&["wait", &d.id]);
    check(wait.stdout == "137\n", || format!("wait\n{wait}"))?;
    let status = d.status();
    check(status == "killed by signal 9 (SIGKILL)", || {
        format!("ps says {status:?}")
    })
}

/// `rm -f` of a running container with a cgroup leaves nothing (the
/// leftover check after the scenario sees mounts, cgroups, PID
/// namespaces and the store); `rm` without -f refuses, and a second `rm`
/// finds nothing.
pub fn rm_force_leaves_nothing(env: &Env) -> R {
    let d = env.detach(&["--memory", "32M", "--pids", "16"], &["sleep", "1000"])?;
    let pid1 = d.pid1()?;
    let cgroup = host::cgroup_dir(pid1 as u32, "pids").ok_or("no pids cgroup")?;
    one_error_line(
        &env.husk(&["rm", &d.id]),
        125,
        &format!("{}: running; stop it first", d.id),
    )?;
    check(d.status() == "running", || {
        "rm without -f stopped it".into()
    })?;
    env.husk(&["rm", "-f", &d.id]).expect(0)?;
    check(!cgroup.exists(), || format!("{} is left", cgroup.display()))?;
    check(
        !std::path::Path::new(&format!("/proc/{pid1}")).exists(),
        || format!("PID 1 ({pid1}) still runs"),
    )?;
    one_error_line(
        &env.husk(&["rm", &d.id]),
        125,
        &format!("{}: no such container", d.id),
    )
}

/// A detached container started from a shell on a terminal runs on after
/// the shell has exited and the terminal has closed.
pub fn a_detached_container_survives_its_shell_and_terminal(env: &Env) -> R {
    let name = format!("survivor-{}", std::process::id());
    let terminal = host::Terminal::open()?;
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c").arg(format!(
        "{} run -d --name {name} --rootfs {} -- sleep 1000",
        env.runner.display(),
        env.rootfs.display()
    ));
    terminal.attach(&mut sh, 3);
    let child = sh.spawn().map_err(|e| e.to_string())?;
    let host::Terminal { master, slave } = terminal;
    drop(slave);
    let out = collect(child, Duration::from_secs(30))?;
    // The terminal closes: its session gets SIGHUP.
    drop(master);
    let guard = crate::detached::Detached::named(env, &name);
    check(out.status == 0, || format!("the shell's run -d\n{out}"))?;
    std::thread::sleep(Duration::from_millis(300));
    check(guard.status() == "running", || {
        format!(
            "after its shell and terminal went, it is {:?}",
            guard.status()
        )
    })?;
    let pid1 = guard.pid1()?;
    let comm = fs::read_to_string(format!("/proc/{pid1}/comm")).unwrap_or_default();
    check(comm.trim() == "sleep", || format!("PID 1 is {comm:?}"))
}

/// `attach` takes a `-d -t` container's terminal: what is typed runs,
/// ^P ^Q lets go and leaves it running, and a second attach gets its exit
/// status.
pub fn attach_takes_the_terminal_and_lets_go(env: &Env) -> R {
    let d = env.detach(&["-t"], &["sh"])?;
    // Each step: keys to type, then what to wait for on the screen before
    // the next (^P ^Q only once the shell has answered: typed earlier,
    // the terminal may not be raw yet, and its flow control eats ^Q).
    let session = |steps: &[(&[u8], &str)]| -> Result<(i32, String), String> {
        let terminal = host::Terminal::open()?;
        let mut cmd = env.husk_command(&["attach", &d.id]);
        terminal.attach(&mut cmd, 3);
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let host::Terminal { master, slave } = terminal;
        drop(slave);
        let mut reader = master.try_clone().map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut input = master;
        let mut screen = String::new();
        for (keys, want) in steps {
            input.write_all(keys).map_err(|e| e.to_string())?;
            let start = Instant::now();
            while !screen.contains(want) && start.elapsed() < Duration::from_secs(20) {
                if let Ok(b) = rx.recv_timeout(Duration::from_millis(50)) {
                    screen.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
        let out = collect(child, Duration::from_secs(20))?;
        while let Ok(b) = rx.try_recv() {
            screen.push_str(&String::from_utf8_lossy(&b));
        }
        Ok((out.status, screen))
    };
    let (status, screen) = session(&[(b"echo hi-$((6*7))\n", "hi-42"), (b"\x10\x11", "")])?;
    check(status == 0 && screen.contains("hi-42"), || {
        format!("first attach: status {status}\n{screen}")
    })?;
    check(d.status() == "running", || {
        format!("^P ^Q ended it: {}", d.status())
    })?;
    let (status, screen) = session(&[(b"exit 5\n", "")])?;
    check(status == 5, || {
        format!("second attach: status {status}\n{screen}")
    })?;
    let logs = env.husk(&["logs", &d.id]);
    check(logs.stdout.contains("hi-42"), || format!("the log\n{logs}"))
}

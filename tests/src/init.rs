//! PID 1 as a program written for a plain host expects: `--init` (the
//! shim stays as PID 1) reaps orphans and lets SIGPIPE end `yes`; on a
//! terminal ^C ends a PID 1 that has no handler, with or without it; and
//! `-t` with stdin not a terminal gets to the end of its input.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::detached::eventually;
use crate::harness::R;
use crate::{check, collect, fact, facts, host, output, Env, PROBE};

/// With --init, an orphan is reaped by husk's init; without, the same
/// program as PID 1 leaves it a zombie (so this check can fail).
pub fn init_reaps_orphans(env: &Env) -> R {
    let with = env.run(&["--init"], &[PROBE, "orphans"]);
    with.expect(0)?;
    let f = facts(&with);
    check(fact(&f, "pid") == "2" && fact(&f, "zombies") == "0", || {
        format!("under --init\n{with}")
    })?;
    let without = env.run(&[], &[PROBE, "orphans"]);
    without.expect(0)?;
    let f = facts(&without);
    check(fact(&f, "pid") == "1" && fact(&f, "zombies") != "0", || {
        format!("as PID 1 the orphan should have stayed a zombie\n{without}")
    })?;
    // Its status is the command's, and a signal's end is 128+N.
    env.run(&["--init"], &["sh", "-c", "exit 7"]).expect(7)?;
    env.run(&["--init"], &["sh", "-c", "kill -USR1 $$; sleep 5"])
        .expect(128 + libc::SIGUSR1)
        .map(drop)
}

/// The OOM killer's end is still said under --init, where it kills PID 2.
pub fn init_still_says_the_oom_killer_ended_it(env: &Env) -> R {
    let out = env.run(
        &["--init", "--memory", "32M"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
    );
    out.expect(137)?;
    check(out.stderr.contains("memory limit (32 MiB)"), || {
        format!("the runner did not say the memory limit was hit\n{out}")
    })
}

/// `runner -- yes | head -1` on the host's shell: with --init, `yes`
/// dies of SIGPIPE as on a plain host (nothing on stderr, the pipeline's
/// status head's); without, PID 1 never dies of it and says "Broken
/// pipe", as the README says.
pub fn yes_into_head_ends_as_on_a_host_with_init(env: &Env) -> R {
    let pipeline = |flags: &str| {
        let script = format!(
            "{} --rootfs {} {flags} -- yes | head -1",
            env.runner.display(),
            env.rootfs.display()
        );
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).stdin(Stdio::null());
        output(&mut c)
    };
    let with = pipeline("--init");
    check(
        with.status == 0 && with.stdout == "y\n" && with.stderr.is_empty(),
        || format!("with --init\n{with}"),
    )?;
    let without = pipeline("");
    check(
        without.stdout == "y\n" && without.stderr.contains("Broken pipe"),
        || format!("without --init\n{without}"),
    )
}

/// ^C typed on the runner's terminal ends a PID 1 without a SIGINT
/// handler (sleep), with 130, as on a plain host; under --init too.
pub fn ctrl_c_on_a_terminal_ends_pid_one_without_a_handler(env: &Env) -> R {
    for flags in [&[][..], &["--init"][..]] {
        let terminal = host::Terminal::open()?;
        let mut cmd = Command::new(&env.runner);
        cmd.arg("--rootfs")
            .arg(&env.rootfs)
            .args(flags)
            .args(["--", "sleep", "100"]);
        terminal.attach(&mut cmd, 3);
        let child = cmd.spawn().map_err(|e| e.to_string())?;
        let host::Terminal { mut master, slave } = terminal;
        drop(slave);
        let runner = child.id();
        // The sleep, PID 1 or PID 2, is running.
        let sleeping = eventually(Duration::from_secs(10), || {
            let mut tree = host::children(runner);
            if let Some(&p) = tree.first() {
                tree.extend(host::children(p));
            }
            tree.iter().any(|p| {
                fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
            })
        });
        master.write_all(b"\x03").map_err(|e| e.to_string())?;
        // Drain the terminal so that nothing blocks on it.
        let mut reader = master.try_clone().map_err(|e| e.to_string())?;
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let out = collect(child, Duration::from_secs(20))?;
        check(sleeping, || format!("{flags:?}: sleep never ran"))?;
        check(out.status == 130, || {
            format!(
                "{flags:?}: ^C gave status {} (wanted 130)\n{out}",
                out.status
            )
        })?;
    }
    Ok(())
}

/// `-t` when stdin is a pipe or /dev/null: the end of the input reaches
/// the program (as ^D would), instead of a hang.
pub fn a_tty_with_stdin_not_a_terminal_gets_its_end(env: &Env) -> R {
    let mut c = env.command(&["-t"], &["cat"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi\n")
        .map_err(|e| e.to_string())?;
    let out = collect(child, Duration::from_secs(20))?;
    out.expect(0)?;
    check(out.stdout.contains("hi"), || format!("cat's output\n{out}"))?;
    // /dev/null: the end at once.
    env.run(&["-t"], &["cat"]).expect(0).map(drop)
}

//! The container's own terminal.

use std::fs;
use std::time::{Duration, Instant};

use crate::harness::R;
use crate::{check, collect, host, Env};

pub fn a_terminal_of_its_own(env: &Env) -> R {
    use std::io::{Read, Write};
    // The runner on a terminal, as a user's shell would start it.
    let terminal = host::Terminal::open()?;
    let mut cmd = std::process::Command::new(&env.runner);
    cmd.arg("--rootfs").arg(&env.rootfs).args(["--", "/bin/sh"]);
    terminal.attach(&mut cmd, 3);
    let child = cmd.spawn().map_err(|e| e.to_string())?;
    // Only the child keeps the slave: the master then ends when it does.
    let host::Terminal { master, slave } = terminal;
    drop(slave);
    let mut reader = master.try_clone().map_err(|e| e.to_string())?;
    let collected = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut input = master;
    let mut say = |s: &[u8]| input.write_all(s).map_err(|e| e.to_string());
    say(b"echo pid=$$; tty\n")?;
    say(b"sleep 100\n")?;
    // ^C must reach the sleep through the container's own terminal.
    let start = Instant::now();
    let sleeping = loop {
        let pid1 = host::children(child.id()).first().copied().unwrap_or(0);
        let kids = host::children(pid1);
        if kids
            .iter()
            .any(|k| fs::read(format!("/proc/{k}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep")))
        {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    say(b"\x03")?;
    say(b"echo after-$((6*7))\nexit 6\n")?;
    let out = collect(child, Duration::from_secs(20))?;
    let screen = collected.join().unwrap_or_default();
    check(sleeping, || format!("sleep never ran\n{screen}"))?;
    check(out.status == 6, || {
        format!(
            "status {} (wanted 6): ^C did not interrupt sleep?\n{screen}",
            out.status
        )
    })?;
    for want in ["pid=1", "/dev/console", "after-42"] {
        check(screen.contains(want), || {
            format!("{want:?} not on the terminal\n{screen}")
        })?;
    }
    Ok(())
}

/// `exec -t` opens the pseudo-terminal in the container's own devpts
/// (so that `tty` inside names it), walking dev/pts/ptmx beneath the
/// container's root. A container that put a symlink there, or a ptmx node
/// on a file system of its own, gets one line and nothing is opened:
/// the walk follows no symlink and takes only devpts's ptmx.
pub fn exec_tty_opens_only_the_containers_own_ptmx(env: &Env) -> R {
    let d = env.detach(&["--privileged"], &["sleep", "600"])?;
    let exec_tty = |what: &str| {
        let out = env.husk(&["exec", "-t", &d.id, "--", "tty"]);
        check(
            out.status == 125 && out.stderr.lines().count() == 1 && out.stderr.contains("ptmx"),
            || format!("exec -t with {what}: not refused in one line\n{out}"),
        )
    };
    let good = env.husk(&["exec", "-t", &d.id, "--", "tty"]);
    check(
        good.status == 0 && good.stdout.trim().starts_with("/dev/pts/"),
        || format!("exec -t: tty does not name the container's pty\n{good}"),
    )?;
    let hostile = [
        (
            "a symlink to the host's /dev/ptmx",
            "umount /dev/pts && ln -s /proc/1/root/dev/ptmx /dev/pts/ptmx",
        ),
        (
            "a ptmx node on a tmpfs",
            "rm /dev/pts/ptmx && mount -t tmpfs none /dev/pts && mknod /dev/pts/ptmx c 5 2",
        ),
        (
            "/dev/pts a symlink",
            "umount /dev/pts; rm -rf /dev/pts && ln -s / /dev/pts",
        ),
    ];
    for (what, script) in hostile {
        let out = env.husk(&["exec", &d.id, "--", "sh", "-c", script]);
        out.expect(0)?;
        exec_tty(what)?;
    }
    Ok(())
}

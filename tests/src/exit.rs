//! Exit statuses and signals, and failures: bad input and setup errors
//! are one line and leave nothing behind.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{one_error_line, Running, R};
use crate::{check, collect, output, Env};

pub fn exit_status_is_the_programs(env: &Env) -> R {
    for (script, status) in [
        ("true", 0),
        ("false", 1),
        ("exit 42", 42),
        ("exit 255", 255),
    ] {
        let out = env.sh(&[], script);
        out.expect(status)?;
        check(out.stderr.is_empty(), || {
            format!("runner printed on success\n{out}")
        })?;
    }
    Ok(())
}

pub fn not_executable_is_126(env: &Env) -> R {
    one_error_line(
        &env.run(&[], &["/etc/passwd"]),
        126,
        "exec /etc/passwd: permission denied (EACCES)",
    )?;
    one_error_line(
        &env.run(&[], &["/tmp"]),
        126,
        "exec /tmp: permission denied",
    )
}

pub fn not_found_is_127(env: &Env) -> R {
    one_error_line(
        &env.run(&[], &["no-such-command"]),
        127,
        "exec no-such-command: executable file not found in the container's PATH",
    )?;
    one_error_line(
        &env.run(&[], &["/no/such"]),
        127,
        "exec /no/such: no such file or directory",
    )?;
    one_error_line(
        &env.run(&["-e", "PATH=/usr/bin"], &["sh"]),
        127,
        "not found",
    )
}

pub fn stdin_reaches_an_interactive_shell(env: &Env) -> R {
    use std::io::Write;
    let mut cmd = env.command(&[], &["/bin/sh"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo pid=$$\nexit 3\n")
        .map_err(|e| e.to_string())?;
    let out = collect(child, Duration::from_secs(20))?;
    out.expect(3)?;
    check(out.stdout == "pid=1\n", || format!("wanted pid=1\n{out}"))
}

pub fn sigint_to_the_runner_ends_pid_one_with_130(env: &Env) -> R {
    // sleep has no handler, and the kernel drops such signals for a PID
    // namespace's init: the runner must end it itself.
    let r = Running::start(env, &[], "echo ready; exec sleep 60")?;
    // Until the exec, PID 1 is the shell, whose handler would take the signal.
    r.wait_for_pid1("sleep")?;
    r.signal(libc::SIGINT);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(130).map(drop)
}

pub fn caught_signals_are_forwarded(env: &Env) -> R {
    let script = "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 7' TERM; echo ready; \
                  while :; do sleep 0.05; done";
    let r = Running::start(env, &[], script)?;
    r.signal(libc::SIGUSR1);
    match r.lines.recv_timeout(Duration::from_secs(10)) {
        Ok(l) if l == "got-usr1" => {}
        other => return Err(format!("SIGUSR1 was not forwarded: {other:?}")),
    }
    r.signal(libc::SIGTERM);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(7)?;
    check(out.stdout.contains("got-term"), || {
        format!("SIGTERM was not forwarded\n{out}")
    })
}

pub fn bad_input_is_one_line_and_leaves_nothing(env: &Env) -> R {
    let file = env.rootfs.join("etc/passwd");
    let file = file.to_str().unwrap();
    let cases: &[(&[&str], &[&str], i32, &str)] = &[
        (
            &["--rootfs", "/no/such/dir"],
            &["sh"],
            125,
            "--rootfs /no/such/dir: ENOENT",
        ),
        (&["--rootfs", file], &["sh"], 125, "not a directory"),
        (
            &["-w", "tmp"],
            &["sh"],
            125,
            "--workdir tmp: must be an absolute path",
        ),
        (
            &["-w", "/no/such", "--memory", "32M"],
            &["sh"],
            125,
            "chdir /no/such: ENOENT",
        ),
        (
            &["--memory", "32M", "--pids", "9"],
            &["no-such-command"],
            127,
            "not found",
        ),
        (&["--memory", "12Q"], &["sh"], 125, "--memory 12Q"),
        (&["--memory", "64"], &["sh"], 125, "--memory 64"),
        (
            &["--memory-swap", "1G"],
            &["sh"],
            125,
            "--memory-swap needs --memory",
        ),
        (
            &["--memory", "64M", "--memory-swap", "32M"],
            &["sh"],
            125,
            "smaller than --memory",
        ),
        (&["--cpus", "-1"], &["sh"], 125, "--cpus -1"),
        (&["--cpus", "lots"], &["sh"], 125, "--cpus lots"),
        (&["--cpus", "4096"], &["sh"], 125, "CPUs online"),
        (
            &["--cpuset", "99"],
            &["sh"],
            125,
            "--cpuset 99: CPU 99 is not online",
        ),
        (&["--cpuset", "1-0"], &["sh"], 125, "--cpuset 1-0"),
        (&["--pids", "0"], &["sh"], 125, "--pids 0"),
        (&["--cpu-shares", "1"], &["sh"], 125, "--cpu-shares 1"),
        (
            &["--net", "cni:x", "--ip", "10.88.0.9"],
            &["sh"],
            125,
            "--net cni:x: a CNI network needs a name, and takes no --ip",
        ),
        (
            &["--hostname", "no spaces"],
            &["sh"],
            125,
            "--hostname no spaces",
        ),
        (
            &["--cgroup-parent", "../escape", "--pids", "4"],
            &["sh"],
            125,
            "--cgroup-parent ../escape",
        ),
        (
            &["--shim", "/no/such/shim"],
            &["sh"],
            125,
            "shim /no/such/shim: ENOENT",
        ),
        (
            &["--frobnicate"],
            &["sh"],
            125,
            "Unrecognized argument: --frobnicate",
        ),
        (&[], &[], 125, "no command given"),
        (
            &["-v", "/no/such:/data"],
            &["sh"],
            125,
            "--volume /no/such: ENOENT",
        ),
        (
            &["-v", "/tmp:/data:rshared"],
            &["sh"],
            125,
            "rshared: refused, the container's mounts would appear on the host",
        ),
        (&["-v", "/tmp"], &["sh"], 125, "expected HOST:CONTAINER"),
        (
            &["--tmpfs", "/t:bogus"],
            &["sh"],
            125,
            "--tmpfs /t:bogus: unknown option bogus",
        ),
        (
            &["--layer", "/tmp"],
            &["sh"],
            125,
            "--rootfs, --layer and --image contradict each other",
        ),
    ];
    for (flags, cmd, status, want) in cases {
        let mut c = std::process::Command::new(&env.runner);
        if !flags.contains(&"--rootfs") {
            c.arg("--rootfs").arg(&env.rootfs);
        }
        c.args(*flags);
        if !cmd.is_empty() {
            c.arg("--").args(*cmd);
        }
        let out = output(&mut c);
        one_error_line(&out, *status, want).map_err(|e| format!("{flags:?} {cmd:?}: {e}"))?;
    }
    Ok(())
}

pub fn setup_failure_leaves_nothing(env: &Env) -> R {
    // A rootfs whose /proc is a file: the shim fails half-way, after the
    // cgroup, /dev and the binds are made.
    let dir = std::env::temp_dir().join(format!("husk-bad-rootfs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("bin")).map_err(|e| e.to_string())?;
    fs::copy(env.rootfs.join("bin/busybox"), dir.join("bin/busybox")).map_err(|e| e.to_string())?;
    fs::write(dir.join("proc"), "not a directory").map_err(|e| e.to_string())?;
    let mut c = std::process::Command::new(&env.runner);
    c.arg("--rootfs").arg(&dir).args([
        "--memory",
        "32M",
        "--pids",
        "8",
        "--",
        "/bin/busybox",
        "true",
    ]);
    let out = output(&mut c);
    let _ = fs::remove_dir_all(&dir);
    one_error_line(&out, 125, "mount proc on /proc: mount: ENOTDIR")
}

pub fn non_root_is_refused(env: &Env) -> R {
    let mut c = env.command(&[], &["true"]);
    if crate::is_root() {
        c.uid(65534).gid(65534);
    }
    // A runner nobody may execute fails in output(), not here.
    let out = output(&mut c);
    one_error_line(
        &out,
        125,
        "must be run as root: rootless mode is not available yet",
    )
}

/// A name is one container's at a time: a second run with it is one line,
/// and once the first ends the name is free again.
pub fn a_name_is_taken_once(env: &Env) -> R {
    let name = format!("once-{}", std::process::id());
    let r = Running::start(env, &["--name", &name], "echo ready; exec sleep 60")?;
    r.wait_for_pid1("sleep")?;
    let second = env.run(&["--name", &name], &["true"]);
    r.signal(libc::SIGTERM);
    r.finish(Duration::from_secs(20))?.expect(143)?;
    one_error_line(
        &second,
        125,
        &format!("a container named {name} exists already"),
    )?;
    env.run(&["--name", &name], &["true"]).expect(0).map(drop)
}

/// A program whose interpreter is missing: the `#!` line's, or the ELF
/// loader its PT_INTERP names. exec says ENOENT for both; the runner says
/// what is missing instead of "not found".
pub fn a_missing_interpreter_is_named(env: &Env) -> R {
    let id = std::process::id();
    let (script, elf) = (
        format!("tmp/husk-script-{id}"),
        format!("tmp/husk-elf-{id}"),
    );
    let write = |rel: &str, bytes: &[u8]| -> R {
        use std::os::unix::fs::PermissionsExt;
        let p = env.rootfs.join(rel);
        fs::write(&p, bytes).map_err(|e| e.to_string())?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
    };
    write(&script, b"#!/no/such/interpreter -x\necho hi\n")?;
    write(&elf, &elf_needing("/lib/husk-missing-loader.so.1"))?;
    let result = (|| {
        one_error_line(
            &env.run(&[], &[&format!("/{script}")]),
            127,
            &format!("/{script} exists, but the program it needs to run (#! /no/such/interpreter) is missing"),
        )?;
        one_error_line(
            &env.run(&[], &[&format!("/{elf}")]),
            127,
            "(ELF interpreter /lib/husk-missing-loader.so.1) is missing",
        )
    })();
    let _ = fs::remove_file(env.rootfs.join(&script));
    let _ = fs::remove_file(env.rootfs.join(&elf));
    result
}

/// The smallest ELF executable for this machine that the kernel reads as
/// far as its PT_INTERP, `interp`: a header and one program header.
fn elf_needing(interp: &str) -> Vec<u8> {
    let (machine, wide, flags): (u16, bool, u32) = if cfg!(target_arch = "x86_64") {
        (62, true, 0)
    } else if cfg!(target_arch = "aarch64") {
        (183, true, 0)
    } else if cfg!(target_arch = "riscv64") {
        (243, true, 0x5) // RVC, double-float ABI
    } else {
        (40, false, 0x0500_0400) // EABI5, hard float
    };
    let mut path = interp.as_bytes().to_vec();
    path.push(0);
    let mut f = Vec::new();
    let (ehsize, phsize) = if wide { (64u64, 56u64) } else { (52, 32) };
    let word = |f: &mut Vec<u8>, v: u64| {
        if wide {
            f.extend_from_slice(&v.to_le_bytes())
        } else {
            f.extend_from_slice(&(v as u32).to_le_bytes())
        }
    };
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', if wide { 2 } else { 1 }, 1, 1]);
    f.resize(16, 0);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    word(&mut f, 0x10000); // entry
    word(&mut f, ehsize); // phoff
    word(&mut f, 0); // shoff
    f.extend_from_slice(&flags.to_le_bytes());
    for v in [ehsize as u16, phsize as u16, 1, 0, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let at = ehsize + phsize;
    let len = path.len() as u64;
    f.extend_from_slice(&3u32.to_le_bytes()); // PT_INTERP
    if wide {
        f.extend_from_slice(&4u32.to_le_bytes()); // p_flags
        for v in [at, 0, 0, len, len, 1] {
            word(&mut f, v);
        }
    } else {
        for v in [at, 0, 0, len, len] {
            word(&mut f, v);
        }
        f.extend_from_slice(&4u32.to_le_bytes()); // p_flags
        word(&mut f, 1);
    }
    f.extend_from_slice(&path);
    f
}

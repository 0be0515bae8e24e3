//! husk as an OCI runtime, driven by its real callers on this machine:
//! the OCI conformance suite (opencontainers/runtime-tools, built here from
//! the pinned source in tests/conformance/), containerd's ctr, podman, and
//! runc beside it on the same bundle. Host only (the VMs have none of
//! these programs); as root, as CI runs, and never skipped there.
//!
//! Each test checks what it leaves: the host's mounts, PID namespaces and
//! cgroup directories as before, and husk's state store empty.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use husk_tests::{collect, host, is_root, Env, Output};

/// One at a time: containerd, podman and the suite each start many
/// containers, and the leftover checks compare the whole host.
static ONE: Mutex<()> = Mutex::new(());

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The runner and rootfs, or None when not root (then nothing can run).
fn env() -> Option<Env> {
    if !is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return None;
    }
    Some(Env::from_env().unwrap_or_else(|e| panic!("{e}")))
}

/// A scratch directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = target().join(format!("tmp/oci-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e} (cargo xtask test installs it)"));
    collect(child, limit).unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status, 0, "{cmd:?}\n{out}");
    out.stdout
}

/// Whether a `state` document's status is "stopped". (Not a search for
/// the word: a container may be called "stopped", and its id matched
/// while it still ran, so that `delete` then found it running.)
fn says_stopped(state: &str) -> bool {
    runner::json::parse(state)
        .ok()
        .and_then(|v| {
            v.get("status")
                .and_then(|s| s.as_str())
                .map(|s| s == "stopped")
        })
        .unwrap_or(false)
}

/// `cmd` run by sh on a terminal of script(1)'s, its stdin a pipe kept
/// open (at EOF script would end before the command does); its output.
fn on_terminal(cmd: &str) -> String {
    let child = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let out = collect(child, Duration::from_secs(120)).unwrap();
    assert_eq!(out.status, 0, "{cmd}\n{out}");
    out.stdout
}

/// Every directory of every cgroup hierarchy: what a runtime leaves there
/// shows here whatever it is named.
fn cgroup_dirs() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(e.path());
                walk(&e.path(), out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(Path::new("/sys/fs/cgroup"), &mut out);
    out
}

/// The host before a test, to compare with after.
struct Before {
    snapshot: host::Snapshot,
    cgroups: BTreeSet<PathBuf>,
}

impl Before {
    fn take() -> Before {
        Before {
            snapshot: host::Snapshot::take(),
            cgroups: cgroup_dirs(),
        }
    }

    /// Nothing added to the host, and `store` (husk's state store for the
    /// test) without an entry.
    fn check(&self, store: &Path, allowed: &[&str]) {
        self.snapshot
            .same_as(&host::Snapshot::take())
            .unwrap_or_else(|e| panic!("left behind: {e}"));
        let added: Vec<_> = cgroup_dirs()
            .difference(&self.cgroups)
            .filter(|p| !allowed.iter().any(|a| p.to_string_lossy().contains(a)))
            .cloned()
            .collect();
        assert!(added.is_empty(), "cgroups left behind: {added:?}");
        let entries: Vec<_> = fs::read_dir(store)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(entries.is_empty(), "state store entries left: {entries:?}");
    }
}

/// A TAP test program's result: its exit status, its ok and not-ok
/// counts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    rc: i32,
    ok: u32,
    not_ok: u32,
}

fn tap(out: &Output) -> Tap {
    let count = |p: &str| out.stdout.lines().filter(|l| l.starts_with(p)).count() as u32;
    Tap {
        rc: out.status,
        ok: count("ok "),
        not_ok: count("not ok "),
    }
}

/// runc 1.1.5 on our hosts (tests/conformance/runc-*.txt): name, its
/// result.
fn runcs_scores() -> Vec<(String, Tap)> {
    let text = include_str!("../conformance/runc-1.1.5-on-our-hosts.txt");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let num = |i: usize| f.get(i)?.split_once('=')?.1.parse::<i64>().ok();
            let (rc, asserts, not_ok) = (num(1)?, num(2)?, num(3)?);
            Some((
                f[0].to_string(),
                Tap {
                    rc: rc as i32,
                    ok: (asserts - not_ok) as u32,
                    not_ok: not_ok as u32,
                },
            ))
        })
        .collect()
}

/// What husk does not do yet, each a test the suite fails for it: run and
/// reported, not held against it.
const GAPS: &[(&str, &str)] = &[
    (
        "linux_ns_itype",
        "a container in the host's mount namespace: husk makes a container's mounts in one of its own only",
    ),
    (
        "mounts",
        "mount IDs in the config's order (every mount is made in order, but the binds are cloned by the runner, with open_tree, before the shim mounts the rest, and Linux 6.8+ lists mounts by ID: 8 \"found in order\" assertions)",
    ),
];

/// The suite built from the pinned source, once (20 s), under target/.
fn suite() -> PathBuf {
    let dir = target().join("runtime-tools-260e151");
    let tools = dir.join("runtime-tools");
    if tools.join("validation/default/default.t").exists() && tools.join("runtimetest").exists() {
        return tools;
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let tarball =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/runtime-tools-260e151.tar.gz");
    ok(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir));
    let out = run(
        Command::new("make")
            .args(["runtimetest", "validation-executables"])
            .current_dir(&tools)
            .env("GOFLAGS", "-mod=vendor")
            .env("GOCACHE", dir.join("gocache"))
            .env("GOPATH", dir.join("gopath")),
        Duration::from_secs(600),
    );
    assert_eq!(
        out.status, 0,
        "build the conformance suite (needs golang-go)\n{out}"
    );
    tools
}

/// A runtime for the suite: the runner with a state store of the test's.
fn wrapper(dir: &Path, runner: &Path, store: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("runtime");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec {} --root {} \"$@\"\n",
            runner.display(),
            store.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_conformance_suite_passes_what_runc_passes_here() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let tools = suite();
    let scratch = Scratch::new("conformance");
    let store = scratch.0.join("store");
    let runtime = wrapper(&scratch.0, &env.runner, &store);
    let before = Before::take();
    let mut tests: Vec<PathBuf> = fs::read_dir(tools.join("validation"))
        .unwrap()
        .flatten()
        .map(|e| {
            e.path()
                .join(format!("{}.t", e.file_name().to_string_lossy()))
        })
        .filter(|p| p.exists())
        .collect();
    tests.sort();
    assert!(
        tests.len() > 50,
        "the suite has {} test programs",
        tests.len()
    );
    let runc = runcs_scores();
    let mut report =
        String::from("| test | husk: ok / not ok (status) | runc 1.1.5 here |\n|---|---|---|\n");
    let mut worse = Vec::new();
    let (mut ok_sum, mut runc_sum) = (0, 0);
    for t in &tests {
        let name = t.file_stem().unwrap().to_string_lossy().to_string();
        let out = run(
            Command::new(t).current_dir(&tools).env("RUNTIME", &runtime),
            Duration::from_secs(180),
        );
        let husk = tap(&out);
        let theirs = runc
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .unwrap_or(Tap {
                rc: 1,
                ok: 0,
                not_ok: 0,
            });
        ok_sum += husk.ok;
        runc_sum += theirs.ok;
        let gap = GAPS.iter().find(|(n, _)| *n == name);
        report.push_str(&format!(
            "| {name} | {} / {} ({}) | {} / {} ({}){} |\n",
            husk.ok,
            husk.not_ok,
            husk.rc,
            theirs.ok,
            theirs.not_ok,
            theirs.rc,
            gap.map(|(_, why)| format!(": husk lacks {why}"))
                .unwrap_or_default()
        ));
        // Worse than runc: fewer passing assertions, or more failing ones.
        // (Where runc's own run ends in error, it does not pass here.)
        let is_worse =
            theirs.rc == 0 && (husk.rc != 0 || husk.ok < theirs.ok || husk.not_ok > theirs.not_ok);
        if is_worse && gap.is_none() {
            worse.push(format!(
                "{name}: husk {husk:?}, runc {theirs:?}\n{}",
                out.stdout
            ));
        }
    }
    report.push_str(&format!(
        "\nassertions passed: husk {ok_sum}, runc {runc_sum}\n"
    ));
    println!("{report}");
    let _ = fs::write(target().join("oci-conformance.md"), &report);
    assert!(
        worse.is_empty(),
        "worse than runc here:\n{}",
        worse.join("\n")
    );
    before.check(&store, &[]);
}

/// containerd of the test's own (root, state, socket under the scratch
/// directory), stopped when dropped.
struct Containerd {
    child: std::process::Child,
    sock: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let sock = dir.join("c.sock");
        let config = dir.join("config.toml");
        fs::write(&config, "version = 2\n").unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--address")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (cargo xtask test installs it)");
        let start = Instant::now();
        while !sock.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "containerd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Containerd { child, sock }
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).args(["-n", "husk-test"]);
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `f` for up to 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn containerd_runs_husk_where_it_runs_runc() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("containerd");
    let store = scratch.0.join("husk-root");
    let before = Before::take();
    {
        let ctd = Containerd::start(&scratch.0);
        let archive = scratch.0.join("image.tar");
        fs::write(&archive, husk_tests::image_archive(&env.rootfs)).unwrap();
        ok(ctd.ctr().args(["image", "import"]).arg(&archive));
        let image = "docker.io/library/test:latest";
        let husk = |c: &mut Command| {
            c.arg("--runc-binary")
                .arg(&env.runner)
                .arg("--runc-root")
                .arg(&store);
        };
        let mut c = ctd.ctr();
        c.args(["run", "--rm"]);
        husk(&mut c);
        let out = ok(c.args([image, "c1", "sh", "-c", "echo hi from husk; echo $$"]));
        assert_eq!(out, "hi from husk\n1\n", "the command is PID 1");
        // Detached, then an exec, ps, a kill and a delete, as a CRI
        // runtime drives it.
        let mut c = ctd.ctr();
        c.args(["run", "-d"]);
        husk(&mut c);
        ok(c.args([image, "c2", "sleep", "600"]));
        let out = ok(ctd.ctr().args([
            "task",
            "exec",
            "--exec-id",
            "e1",
            "c2",
            "sh",
            "-c",
            "echo exec ok; id -u",
        ]));
        assert_eq!(out, "exec ok\n1000\n", "the image's user");
        let ps = ok(ctd.ctr().args(["task", "ps", "c2"]));
        assert_eq!(ps.lines().count(), 2, "one process under its header: {ps}");
        ok(ctd.ctr().args(["task", "kill", "-s", "KILL", "c2"]));
        eventually("c2 stopped", || {
            ok(ctd.ctr().args(["task", "ls"])).contains("STOPPED")
        });
        ok(ctd.ctr().args(["task", "delete", "c2"]));
        ok(ctd.ctr().args(["container", "rm", "c2"]));
        ok(ctd.ctr().args(["image", "rm", image]));
    }
    // containerd's runtime keeps a store per namespace under its root.
    before.check(&store.join("husk-test"), &[]);
}

#[test]
fn podman_runs_husk_as_its_runtime() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("podman");
    let store = scratch.0.join("husk-root");
    // podman refuses a run root longer than 50 characters.
    let runroot = Scratch(PathBuf::from(format!(
        "/tmp/husk-podman-{}",
        std::process::id()
    )));
    let runtime = wrapper(&scratch.0, &env.runner, &store);
    let before = Before::take();
    let podman = || {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(scratch.0.join("storage"))
            .arg("--runroot")
            .arg(&runroot.0)
            .arg("--runtime")
            .arg(&runtime)
            .args(["--cgroup-manager=cgroupfs", "--events-backend=file"]);
        c
    };
    // No network of podman's making, ever (--network none), and limits
    // these hosts let a runtime set (no CAP_SYS_RESOURCE here: podman's
    // default rlimits are refused, by runc as by husk).
    let run_args = [
        "run",
        "--network=none",
        "--ulimit=nofile=1024:1024",
        "--ulimit=nproc=1024:1024",
    ];
    let tar = husk_tests::rootfs_tar(&env.rootfs);
    let mut import = podman();
    import.args(["import", "-", "localhost/husk-test"]);
    let mut child = import
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman (cargo xtask test installs it)");
    {
        use std::io::Write;
        // A podman that stops reading says why below.
        let _ = child.stdin.take().unwrap().write_all(&tar);
    }
    let out = collect(child, Duration::from_secs(120)).unwrap();
    assert_eq!(out.status, 0, "podman import\n{out}");

    let out = ok(podman().args(run_args).args([
        "--rm",
        "localhost/husk-test",
        "sh",
        "-c",
        "echo hi from husk; echo $$",
    ]));
    assert_eq!(out, "hi from husk\n1\n", "the command is PID 1");
    let out = ok(podman().args(run_args).args([
        "--rm",
        "--memory=64m",
        "localhost/husk-test",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ]));
    assert_eq!(out.trim(), "67108864", "the memory limit from inside");
    // -it: conmon passes the console socket; script(1) is the terminal.
    let cmd = format!(
        "{:?} {} -it --rm localhost/husk-test sh -c 'tty; echo it ok'",
        podman(),
        run_args.join(" ")
    )
    .replace('"', "");
    let out = on_terminal(&cmd);
    assert!(
        out.contains("/dev/console") && out.contains("it ok"),
        "{out}"
    );

    ok(podman()
        .args(run_args)
        .args(["-d", "--name", "p1", "localhost/husk-test", "sleep", "600"]));
    assert_eq!(
        ok(podman().args(["exec", "p1", "cat", "/proc/1/comm"])),
        "sleep\n"
    );
    let cmd = format!("{:?} exec -it p1 sh -c 'tty; echo exec it ok'", podman()).replace('"', "");
    let out = on_terminal(&cmd);
    assert!(
        out.contains("/dev/pts/") && out.contains("exec it ok"),
        "{out}"
    );
    ok(podman().args(["stop", "-t", "1", "p1"]));
    ok(podman().args(["rm", "p1"]));
    ok(podman().args(["rmi", "-a", "-f"]));
    // podman's own parent cgroup for conmon stays, as it does with runc.
    before.check(&store, &["libpod_parent"]);
}

/// The same bundle through runc and husk: the same OCI state fields at
/// each step, the same outcomes, the same classes of error.
#[test]
fn husk_and_runc_agree_on_one_bundle() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("runc");
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    ok(Command::new(&env.runner)
        .arg("spec")
        .arg("--bundle")
        .arg(&bundle));
    // runner spec's config, with the test rootfs and a command that ends.
    use runner::json::{parse, Value};
    let mut config = parse(&fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap();
    let Value::Object(fields) = &mut config else {
        panic!("config.json is not an object")
    };
    for (k, v) in fields.iter_mut() {
        match k.as_str() {
            "root" => {
                *v = parse(&format!(
                    r#"{{"path":"{}","readonly":true}}"#,
                    env.rootfs.display()
                ))
                .unwrap()
            }
            "process" => {
                if let Value::Object(p) = v {
                    for (pk, pv) in p.iter_mut() {
                        if pk == "args" {
                            *pv = parse(r#"["sh","-c","sleep 0.3; exit 3"]"#).unwrap();
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let config = config.to_json();
    fs::write(bundle.join("config.json"), config).unwrap();
    let before = Before::take();
    let mut seen = Vec::new();
    for (name, bin) in [
        ("husk", env.runner.clone()),
        ("runc", PathBuf::from("runc")),
    ] {
        let root = scratch.0.join(format!("{name}-root"));
        let rt = |args: &[&str]| {
            let mut c = Command::new(&bin);
            c.arg("--root").arg(&root).args(args);
            run(&mut c, Duration::from_secs(30))
        };
        let state = |id: &str| -> (String, i64, Vec<String>) {
            let out = rt(&["state", id]);
            assert_eq!(out.status, 0, "{name} state\n{out}");
            let v = runner::json::parse(&out.stdout).unwrap();
            let keys = ["ociVersion", "id", "status", "pid", "bundle"]
                .iter()
                .filter(|k| v.get(k).is_some())
                .map(|k| k.to_string())
                .collect();
            (
                v.get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("")
                    .to_string(),
                v.get("pid").and_then(|p| p.as_i64()).unwrap_or(-1),
                keys,
            )
        };
        let id = format!("{name}-diff");
        let mut steps = Vec::new();
        let out = rt(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
        assert_eq!(out.status, 0, "{name} create\n{out}");
        let (status, pid, keys) = state(&id);
        assert_eq!(keys.len(), 5, "{name}: {keys:?}");
        steps.push(format!("created: {status}, pid {}", pid > 0));
        steps.push(format!("start: {}", rt(&["start", &id]).status == 0));
        steps.push(format!(
            "start again: fails {}",
            rt(&["start", &id]).status != 0
        ));
        eventually(&format!("{name}: stopped"), || state(&id).0 == "stopped");
        let out = rt(&["kill", &id, "KILL"]);
        steps.push(format!("kill a stopped one: fails {}", out.status != 0));
        steps.push(format!("delete: {}", rt(&["delete", &id]).status == 0));
        let out = rt(&["state", &id]);
        steps.push(format!(
            "state of a deleted one: fails {}, says \"does not exist\" {}",
            out.status != 0,
            out.stderr.contains("does not exist")
        ));
        let out = rt(&["delete", &id]);
        steps.push(format!(
            "delete again: fails {}, says \"does not exist\" {}",
            out.status != 0,
            out.stderr.contains("does not exist")
        ));
        seen.push((name, steps));
    }
    assert_eq!(seen[0].1, seen[1].1, "husk and runc differ");
    before.check(&scratch.0.join("husk-root"), &[]);
}

/// `create` killed with SIGKILL half-way (here while its prestart hook
/// runs, the container set up and waiting): the next husk command ends
/// the container and removes its cgroups and its entry, as for a killed
/// `run`. And one that failed (its hook exited 1) left nothing at all.
#[test]
fn a_killed_or_failed_create_leaves_nothing() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("killed-create");
    let store = scratch.0.join("store");
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    let config = |hook: &str| {
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"{}"}},"process":{{"args":["/bin/sleep","600"],"cwd":"/"}},
            "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}},{{"type":"ipc"}},{{"type":"uts"}},{{"type":"network"}}],
            "cgroupsPath":"/husk-oci-test/killed","resources":{{"pids":{{"limit":50}}}}}},
            "hooks":{{"prestart":[{{"path":"/bin/sh","args":["sh","-c","{hook}"]}}]}}}}"#,
            env.rootfs.display()
        )
    };
    let runtime = |args: &[&str]| {
        let mut c = Command::new(&env.runner);
        c.arg("--root").arg(&store).args(args);
        c
    };
    let before = Before::take();

    fs::write(bundle.join("config.json"), config("exit 1")).unwrap();
    let out = run(
        runtime(&["create", "--bundle", bundle.to_str().unwrap(), "failed"])
            .arg("--pid-file")
            .arg(scratch.0.join("pid")),
        Duration::from_secs(30),
    );
    assert!(
        out.status != 0 && out.stderr.contains("prestart hook"),
        "{out}"
    );
    before.check(&store, &[]);

    // The hook tells when the container waits, then sleeps.
    let ready = scratch.0.join("ready");
    fs::write(
        bundle.join("config.json"),
        config(&format!("touch {}; exec sleep 3597", ready.display())),
    )
    .unwrap();
    let mut create = runtime(&["create", "--bundle", bundle.to_str().unwrap(), "killed"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the prestart hook runs", || ready.exists());
    let entry: String = fs::read_to_string(store.join("killed/state.json")).unwrap();
    let pid1 = runner::json::parse(&entry)
        .unwrap()
        .get("pid")
        .and_then(|p| p.as_i64())
        .unwrap();
    assert!(pid1 > 0 && Path::new(&format!("/proc/{pid1}")).exists());
    create.kill().unwrap();
    create.wait().unwrap();
    // The hook outlives it (as with runc): the caller's program, not ours.
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline == b"sleep\x003597\x00" {
            let pid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
            // SAFETY: kill(2) on the hook's own sleep, found by its command line.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // Any husk command sweeps what nobody looks after.
    let out = run(&mut runtime(&["ps", "-a"]), Duration::from_secs(30));
    assert_eq!(out.status, 0, "{out}");
    eventually("PID 1 ended", || {
        fs::read_to_string(format!("/proc/{pid1}/stat")).map_or(true, |s| s.contains(") Z"))
    });
    before.check(&store, &[]);
}

/// The runner with `--root store` and `args`.
fn husk(runner: &Path, store: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(runner);
    c.arg("--root").arg(store).args(args);
    c
}

/// `create` of the bundle's config.json, the container's stdout a file
/// in the bundle: that file.
fn create_logged(runner: &Path, store: &Path, bundle: &Path, id: &str) -> PathBuf {
    let out_path = bundle.join("stdout");
    let mut create = husk(
        runner,
        store,
        &["create", "--bundle", bundle.to_str().unwrap(), id],
    );
    create
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped());
    let out = collect(create.spawn().unwrap(), Duration::from_secs(30)).unwrap();
    assert_eq!(out.status, 0, "create {id}\n{out}");
    out_path
}

/// One container through create, start and delete, its stdout a file:
/// what it printed.
fn oci_run(runner: &Path, store: &Path, bundle: &Path, id: &str, config: &str) -> String {
    fs::create_dir_all(bundle).unwrap();
    fs::write(bundle.join("config.json"), config).unwrap();
    let rt = |args: &[&str]| husk(runner, store, args);
    let out_path = create_logged(runner, store, bundle, id);
    ok(&mut rt(&["start", id]));
    eventually(&format!("{id} stopped"), || {
        says_stopped(&ok(&mut rt(&["state", id])))
    });
    ok(&mut rt(&["delete", id]));
    fs::read_to_string(out_path).unwrap()
}

/// The value of each `key=value` line of `out` whose key is `key`.
fn facts<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// What config.json asks of the container's files and namespaces, as
/// husk-probe sees it inside: the device nodes it lists open (and one the
/// container makes itself does not: every mount stays nodev), binds are
/// recursive or not and get their propagation (a mount made in a shared
/// one stays off the host), the host's PID namespace, and namespaces
/// joined by path, the PID and mount ones included.
#[test]
fn devices_binds_and_namespaces_as_the_config_asks() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("config");
    let store = scratch.0.join("store");
    let src = scratch.0.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let before = Before::take();
    // A mount below the binds' source: only a recursive bind shows it.
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "husk-oci-sub"])
        .arg(src.join("sub")));
    fs::write(src.join("sub/inner"), "x").unwrap();
    let src_real = fs::canonicalize(&src).unwrap();
    let host_mounts_below_src = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(src_real.to_str().unwrap()))
            .count()
    };
    let ns = |kind: &str| "\"type\":\"".to_string() + kind + "\"";
    let probe = "/bin/husk-probe";
    let cmd = format!(
        "mount -t tmpfs husk-in-shared /tmp/shared/sub; \
         {probe} nodes /dev/husk-null /dev/sub/fifo /tmp/flat/sub/inner /tmp/deep/sub/inner; \
         {probe} mknod-open /dev/mine c 1 3; {probe} propagation; {probe} facts"
    );
    let bind = |dest: &str, opts: &str| {
        format!(
            r#"{{"destination":"{dest}","source":"{}","options":[{opts}]}}"#,
            src.display()
        )
    };
    let config = format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
        "process":{{"args":["/bin/sh","-c","{cmd}"],"cwd":"/","env":["PATH=/bin"],
          "capabilities":{{"bounding":["CAP_MKNOD","CAP_SYS_ADMIN"],"effective":["CAP_MKNOD","CAP_SYS_ADMIN"],"permitted":["CAP_MKNOD","CAP_SYS_ADMIN"]}}}},
        "mounts":[{{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}},{},{},{},{}],
        "linux":{{"namespaces":[{{{}}},{{{}}},{{{}}},{{{}}}],
          "cgroupsPath":"/husk-oci-test/config",
          "devices":[{{"path":"/dev/husk-null","type":"c","major":1,"minor":3,"fileMode":400,"gid":8}},
            {{"path":"/dev/sub/fifo","type":"p","fileMode":438,"uid":7,"gid":8}}]}}}}"#,
        env.rootfs.display(),
        bind("/tmp/flat", r#""bind""#),
        bind("/tmp/deep", r#""rbind","rslave""#),
        bind("/tmp/shared", r#""bind","shared""#),
        bind("/tmp/unbind", r#""rbind","runbindable""#),
        ns("mount"),
        ns("ipc"),
        ns("uts"),
        ns("network"),
    );
    let out = oci_run(&env.runner, &store, &scratch.0.join("a"), "config", &config);
    assert_eq!(
        facts(&out, "node./dev/husk-null"),
        ["c 1:3 620 0:8 open=0"],
        "{out}"
    );
    assert_eq!(facts(&out, "node./dev/sub/fifo"), ["p 0:0 666 7:8 open=0"]);
    assert!(facts(&out, "node./tmp/flat/sub/inner")[0].starts_with("missing"));
    assert!(facts(&out, "node./tmp/deep/sub/inner")[0].starts_with("other "));
    // A node of the container's own making does not open.
    assert_eq!(facts(&out, "mknod"), ["0"], "{out}");
    assert_eq!(facts(&out, "open"), ["EACCES"], "{out}");
    let propagation = facts(&out, "propagation");
    let of = |point: &str| {
        propagation
            .iter()
            .filter_map(|p| p.strip_prefix(point)?.strip_prefix(' '))
            .next_back()
            .unwrap_or("none")
    };
    assert_eq!(of("/tmp/flat"), "private", "{out}");
    assert!(of("/tmp/shared").contains("shared:"), "{out}");
    assert_eq!(of("/tmp/unbind"), "unbindable", "{out}");
    // Mounted inside the shared bind: there, and not on the host.
    assert_ne!(of("/tmp/shared/sub"), "none", "{out}");
    assert_eq!(host_mounts_below_src(), 1);
    let host_pid_ns = fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(
        facts(&out, "ns.pid"),
        [host_pid_ns.to_str().unwrap()],
        "{out}"
    );

    // Every namespace joined by path from a process of the test's own.
    let mut unshare = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
        ])
        .args(["sleep", "600"])
        .spawn()
        .unwrap();
    let at = |kind: &str| format!("/proc/{}/ns/{kind}", unshare.id());
    eventually("unshare made its namespaces", || {
        fs::read_link(at("pid_for_children")).ok() != Some(host_pid_ns.clone())
    });
    let join = |kind: &str, file: &str| format!(r#""type":"{kind}","path":"{}""#, at(file));
    let config = format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
        "process":{{"args":["{probe}","facts"],"cwd":"/"}},
        "linux":{{"namespaces":[{{{}}},{{{}}},{{{}}},{{{}}},{{{}}}]}}}}"#,
        env.rootfs.display(),
        join("pid", "pid_for_children"),
        join("mount", "mnt"),
        join("uts", "uts"),
        join("ipc", "ipc"),
        join("network", "net"),
    );
    let out = oci_run(&env.runner, &store, &scratch.0.join("b"), "joined", &config);
    for (kind, file) in [
        ("pid", "pid_for_children"),
        ("mnt", "mnt"),
        ("uts", "uts"),
        ("ipc", "ipc"),
        ("net", "net"),
    ] {
        let theirs = fs::read_link(at(file)).unwrap();
        assert_eq!(
            facts(&out, &format!("ns.{kind}")),
            [theirs.to_str().unwrap()],
            "{out}"
        );
    }
    // Not PID 1 there: the namespace's init is unshare's sleep.
    assert_ne!(facts(&out, "pid"), ["1"], "{out}");
    unshare.kill().unwrap();
    unshare.wait().unwrap();

    // In the host's PID namespace, without a cgroupsPath: delete --force
    // ends every process of the container, not only its first.
    let config = format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
        "process":{{"args":["/bin/sh","-c","/bin/sleep 3599 & exec /bin/sleep 3598"],"cwd":"/"}},
        "linux":{{"namespaces":[{{{}}}]}}}}"#,
        env.rootfs.display(),
        ns("mount"),
    );
    let bundle = scratch.0.join("d");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(bundle.join("config.json"), config).unwrap();
    let rt = |args: &[&str]| husk(&env.runner, &store, args);
    ok(&mut rt(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "hostpid",
    ]));
    ok(&mut rt(&["start", "hostpid"]));
    let sleeps = || -> usize {
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
                cmdline.starts_with(b"/bin/sleep\x00359")
            })
            .count()
    };
    eventually("both sleeps run", || sleeps() == 2);
    ok(&mut rt(&["delete", "--force", "hostpid"]));
    eventually("both sleeps ended", || sleeps() == 0);

    // A hostile image: a device path through its symlink to the host's
    // directory is refused, and nothing is made there.
    let evil = scratch.0.join("evil-root");
    let outside = scratch.0.join("outside");
    fs::create_dir_all(&evil).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, evil.join("dev2")).unwrap();
    let config = format!(
        r#"{{"ociVersion":"1.2.0","root":{{"path":"{}"}},"process":{{"args":["/x"],"cwd":"/"}},
        "linux":{{"namespaces":[{{{}}},{{{}}}],
          "devices":[{{"path":"/dev2/node","type":"c","major":1,"minor":3}}]}}}}"#,
        evil.display(),
        ns("mount"),
        ns("pid"),
    );
    let bundle = scratch.0.join("c");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(bundle.join("config.json"), config).unwrap();
    let out = run(
        &mut rt(&["create", "--bundle", bundle.to_str().unwrap(), "evil"]),
        Duration::from_secs(30),
    );
    assert!(
        out.status != 0 && out.stderr.contains("make the device /dev2/node"),
        "{out}"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    ok(Command::new("umount").arg(src.join("sub")));
    before.check(&store, &[]);
}

/// A user namespace of the container's own: its root is the host's
/// 100000, inside it as uid 0 with the capabilities the config gives, and
/// those do not reach a host directory owned by the host's root (a write
/// there is refused even with CAP_DAC_OVERRIDE); `exec` joins it as its
/// root too. What husk does not support with it is refused in one line.
#[test]
fn a_user_namespace_maps_the_container_root_to_an_unprivileged_host_id() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("userns");
    let store = scratch.0.join("store");
    let owned = scratch.0.join("owned");
    fs::create_dir_all(&owned).unwrap();
    let before = Before::take();
    let rt = |args: &[&str]| husk(&env.runner, &store, args);
    let probe = "/bin/husk-probe";
    let config = |caps: &str, linux_extra: &str, mapped: bool| {
        let maps = if mapped {
            r#","uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
              "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]"#
        } else {
            ""
        };
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
            "process":{{"args":["/bin/sh","-c","{probe} facts; if touch /tmp/w/x; then echo write=done; else echo write=refused; fi; exec sleep 600"],"cwd":"/",
              "capabilities":{{"bounding":[{caps}],"effective":[{caps}],"permitted":[{caps}]}}}},
            "mounts":[{{"destination":"/tmp","type":"tmpfs","source":"tmpfs"}},
              {{"destination":"/tmp/w","source":"{}","options":["rbind"]}}],
            "linux":{{"namespaces":[{linux_extra}{{"type":"mount"}},{{"type":"pid"}},{{"type":"ipc"}},{{"type":"uts"}},{{"type":"network"}}]{maps}}}}}"#,
            env.rootfs.display(),
            owned.display(),
        )
    };
    let user = r#"{"type":"user"},"#;
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(
        bundle.join("config.json"),
        config(r#""CAP_KILL","CAP_DAC_OVERRIDE""#, user, true),
    )
    .unwrap();
    let out_path = create_logged(&env.runner, &store, &bundle, "userns");
    ok(&mut rt(&["start", "userns"]));
    eventually("the container tried its write", || {
        fs::read_to_string(&out_path).is_ok_and(|o| o.contains("write="))
    });
    let out = fs::read_to_string(&out_path).unwrap();
    assert_eq!(facts(&out, "uid"), ["0"], "{out}");
    assert_eq!(facts(&out, "uid_map"), ["0 100000 65536"], "{out}");
    assert_eq!(facts(&out, "write"), ["refused"], "{out}");
    assert!(!owned.join("x").exists());
    let host_user_ns = fs::read_link("/proc/self/ns/user").unwrap();
    let theirs = facts(&out, "ns.user")[0].to_string();
    assert_ne!(theirs, host_user_ns.to_str().unwrap());
    // As the host sees PID 1: the mapped id.
    let state = ok(&mut rt(&["state", "userns"]));
    let pid = runner::json::parse(&state)
        .unwrap()
        .get("pid")
        .and_then(|p| p.as_i64())
        .unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    // exec joins the namespace as its root, with the container's set.
    let exec = ok(&mut rt(&["exec", "userns", probe, "facts"]));
    assert_eq!(facts(&exec, "uid"), ["0"], "{exec}");
    assert_eq!(facts(&exec, "ns.user"), [theirs.as_str()], "{exec}");
    assert_eq!(facts(&exec, "capeff"), ["0000000000000022"], "{exec}");
    ok(&mut rt(&["delete", "--force", "userns"]));

    for (caps, extra, mapped, why) in [
        (
            r#""CAP_SYS_ADMIN""#,
            user,
            true,
            "CAP_SYS_ADMIN with a user namespace: not supported",
        ),
        (r#""CAP_KILL""#, "", true, "needs a user namespace"),
        (r#""CAP_KILL""#, user, false, "needs linux.uidMappings"),
        (
            r#""CAP_KILL""#,
            r#"{"type":"user","path":"/proc/self/ns/user"},"#,
            true,
            "user with a path: not supported",
        ),
    ] {
        fs::write(bundle.join("config.json"), config(caps, extra, mapped)).unwrap();
        let out = run(
            &mut rt(&["create", "--bundle", bundle.to_str().unwrap(), "refused"]),
            Duration::from_secs(30),
        );
        assert!(
            out.status != 0 && out.stderr.contains(why) && out.stderr.lines().count() == 1,
            "{why}: {out}"
        );
    }
    // Ranges that overlap inside the namespace: the kernel refuses the
    // map once the child is cloned and in its cgroup; the runner says so
    // in one line and ends it, leaving nothing.
    let overlapping = config(r#""CAP_KILL""#, user, true).replace(
        r#"[{"containerID":0,"hostID":100000,"size":65536}],
              "gidMappings""#,
        r#"[{"containerID":0,"hostID":100000,"size":10},{"containerID":5,"hostID":200000,"size":10}],
              "gidMappings""#,
    );
    assert!(
        overlapping.contains("200000"),
        "the test's config did not change"
    );
    fs::write(bundle.join("config.json"), overlapping).unwrap();
    let out = run(
        &mut rt(&["create", "--bundle", bundle.to_str().unwrap(), "overlap"]),
        Duration::from_secs(30),
    );
    assert!(
        out.status != 0
            && out.stderr.contains("uid_map: EINVAL")
            && out.stderr.lines().count() == 1,
        "{out}"
    );
    before.check(&store, &[]);
}

/// `create --preserve-fds 2`, as podman passes a socket-activated
/// service's sockets: the caller's fds 3 and 4 are the container
/// process's 3 and 4, and nothing else of the runner's or the shim's is
/// open there. An fd that is not open is one line.
#[test]
fn preserved_fds_are_the_containers_3_and_4() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("preserve");
    let store = scratch.0.join("store");
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    let before = Before::take();
    fs::write(
        bundle.join("config.json"),
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
            "process":{{"args":["/bin/sh","-c","echo three >&3; echo four >&4; exec /bin/husk-probe facts"],"cwd":"/"}},
            "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"pid"}},{{"type":"ipc"}},{{"type":"uts"}},{{"type":"network"}}]}}}}"#,
            env.rootfs.display()
        ),
    )
    .unwrap();
    let three = fs::File::create(scratch.0.join("three")).unwrap();
    let four = fs::File::create(scratch.0.join("four")).unwrap();
    let out_path = scratch.0.join("stdout");
    let mut create = husk(
        &env.runner,
        &store,
        &[
            "create",
            "--preserve-fds",
            "2",
            "--bundle",
            bundle.to_str().unwrap(),
            "kept",
        ],
    );
    let fds = [three.as_raw_fd(), four.as_raw_fd()];
    // SAFETY: dup2 and fcntl are async-signal-safe, on fds the parent
    // holds open. (dup2 onto itself leaves close-on-exec set: cleared.)
    unsafe {
        create.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                let to = 3 + i as i32;
                if libc::dup2(*fd, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    create
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(Stdio::piped());
    let out = collect(create.spawn().unwrap(), Duration::from_secs(30)).unwrap();
    assert_eq!(out.status, 0, "{out}");
    ok(&mut husk(&env.runner, &store, &["start", "kept"]));
    eventually("it ran", || {
        fs::read_to_string(&out_path).is_ok_and(|o| o.contains("fds="))
    });
    let out = fs::read_to_string(&out_path).unwrap();
    assert_eq!(
        fs::read_to_string(scratch.0.join("three")).unwrap(),
        "three\n"
    );
    assert_eq!(
        fs::read_to_string(scratch.0.join("four")).unwrap(),
        "four\n"
    );
    assert_eq!(facts(&out, "fds"), ["5"], "{out}");
    eventually("stopped", || {
        says_stopped(&ok(&mut husk(&env.runner, &store, &["state", "kept"])))
    });
    ok(&mut husk(&env.runner, &store, &["delete", "kept"]));

    // Without the caller's fds, fd 3 is not open in the runner: refused
    // before anything is made.
    let out = run(
        &mut husk(
            &env.runner,
            &store,
            &[
                "create",
                "--preserve-fds",
                "3",
                "--bundle",
                bundle.to_str().unwrap(),
                "not-open",
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(
        out.status != 0 && out.stderr.contains("--preserve-fds 3: fd 3 is not open"),
        "{out}"
    );
    before.check(&store, &[]);
}

/// The hooks that run in the container's namespaces. `createContainer`
/// is a host script (its path is not in the container): it runs in the
/// container's namespaces, cgroups and root with the runtime's
/// capabilities, as the container's root in its user namespace.
/// `startContainer` is the container's own program: it runs there as the
/// container's processes do, with their capabilities and no_new_privs.
/// Both get the state on stdin. A hook that fails, or cannot be found
/// where its stage looks, is one line; a failed createContainer leaves
/// nothing, a failed startContainer stops the container before its
/// program runs.
#[test]
fn container_hooks_run_in_the_containers_namespaces() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("hooks");
    let store = scratch.0.join("store");
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    let before = Before::take();
    let rt = |args: &[&str]| husk(&env.runner, &store, args);
    // Each hook prints the probe's facts and the state's status, its keys
    // prefixed with the stage.
    let report = |stage: &str| {
        format!(
            "/bin/husk-probe facts | /bin/sed s/^/{stage}./; echo {stage}.env=$HOOK; \
             /bin/grep -o '\"status\": \"[a-z]*\"' | /bin/sed 's/.*: \"\\(.*\\)\"/{stage}.status=\\1/'"
        )
    };
    let script = scratch.0.join("create-hook");
    fs::write(&script, format!("#!/bin/sh\n{}\n", report("create"))).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = |create: &str, start: &str, userns: bool| {
        let (ns, maps) = if userns {
            (
                r#"{"type":"user"},"#,
                r#","uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]"#,
            )
        } else {
            ("", "")
        };
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"{}","readonly":true}},
            "process":{{"args":["/bin/husk-probe","facts"],"cwd":"/","noNewPrivileges":true,
              "capabilities":{{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL","CAP_CHOWN"],"permitted":["CAP_KILL","CAP_CHOWN"]}}}},
            "hooks":{{"createContainer":[{create}],"startContainer":[{start}]}},
            "linux":{{"namespaces":[{ns}{{"type":"mount"}},{{"type":"pid"}},{{"type":"ipc"}},{{"type":"uts"}},{{"type":"network"}},{{"type":"cgroup"}}]{maps}}}}}"#,
            env.rootfs.display()
        )
    };
    let create_hook = format!(
        r#"{{"path":"{}","env":["HOOK=create-env"]}}"#,
        script.display()
    );
    let start_hook = format!(
        r#"{{"path":"/bin/sh","args":["sh","-c","{}"],"env":["PATH=/bin","HOOK=start-env"]}}"#,
        report("start").replace('\\', "\\\\").replace('"', "\\\"")
    );
    let host_caps = fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| Some(l.strip_prefix("CapEff:")?.trim().to_string()))
        .unwrap();
    let cap_last: u32 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for userns in [false, true] {
        let id = if userns { "hooked-userns" } else { "hooked" };
        fs::write(
            bundle.join("config.json"),
            config(&create_hook, &start_hook, userns),
        )
        .unwrap();
        let out_path = create_logged(&env.runner, &store, &bundle, id);
        let started = ok(&mut rt(&["start", id]));
        eventually(&format!("{id} stopped"), || {
            says_stopped(&ok(&mut rt(&["state", id])))
        });
        ok(&mut rt(&["delete", id]));
        let out = fs::read_to_string(out_path).unwrap() + &started;
        let all = format!("{id}:\n{out}");
        for ns in ["mnt", "uts", "ipc", "pid", "net", "cgroup", "user"] {
            let theirs = facts(&out, &format!("ns.{ns}"));
            assert_eq!(theirs.len(), 1, "{all}");
            for stage in ["create", "start"] {
                assert_eq!(facts(&out, &format!("{stage}.ns.{ns}")), theirs, "{all}");
            }
        }
        let cgroups = facts(&out, "cgroup");
        assert!(!cgroups.is_empty(), "{all}");
        for stage in ["create", "start"] {
            assert_eq!(facts(&out, &format!("{stage}.cgroup")), cgroups, "{all}");
            assert_eq!(
                facts(&out, &format!("{stage}.status")),
                ["created"],
                "{all}"
            );
            assert_eq!(facts(&out, &format!("{stage}.uid")), ["0"], "{all}");
            assert_eq!(facts(&out, &format!("{stage}.cwd")), ["/"], "{all}");
            // The hook's own environment.
            let env = format!("{stage}-env");
            assert_eq!(
                facts(&out, &format!("{stage}.env")),
                [env.as_str()],
                "{all}"
            );
            assert_eq!(
                facts(&out, &format!("{stage}.uid_map")),
                facts(&out, "uid_map"),
                "{all}"
            );
        }
        // In a user namespace of its own, every capability there.
        let caps = if userns {
            format!("{:016x}", (1u64 << (cap_last + 1)) - 1)
        } else {
            host_caps.clone()
        };
        assert_eq!(facts(&out, "create.capeff"), [caps.as_str()], "{all}");
        assert_eq!(facts(&out, "create.nonewprivs"), ["0"], "{all}");
        assert_eq!(facts(&out, "start.capbnd"), ["0000000000000021"], "{all}");
        assert_eq!(facts(&out, "start.capeff"), facts(&out, "capeff"), "{all}");
        assert_eq!(facts(&out, "start.nonewprivs"), ["1"], "{all}");
    }

    // A createContainer hook that fails, one whose loader the container
    // lacks (the host's dynamically linked /bin/true: it runs in the
    // container's root), and one that is not on the host (it is in the
    // container): create is one line and leaves nothing.
    let failing = scratch.0.join("failing-hook");
    fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&failing, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (hook, why) in [
        (
            format!(r#"{{"path":"{}"}}"#, failing.display()),
            format!("createContainer hook {}: exited with 3", failing.display()),
        ),
        (
            r#"{"path":"/bin/true"}"#.to_string(),
            "createContainer hook /bin/true: execve: ENOENT".to_string(),
        ),
        (
            r#"{"path":"/bin/husk-probe"}"#.to_string(),
            "createContainer hook /bin/husk-probe: open: ".to_string(),
        ),
    ] {
        if hook.contains("husk-probe") {
            assert!(!Path::new("/bin/husk-probe").exists());
        }
        fs::write(
            bundle.join("config.json"),
            config(&hook, &start_hook, false),
        )
        .unwrap();
        let out = run(
            &mut rt(&["create", "--bundle", bundle.to_str().unwrap(), "failed"]),
            Duration::from_secs(30),
        );
        assert!(
            out.status != 0 && out.stderr.contains(&why) && out.stderr.lines().count() == 1,
            "{why}: {out}"
        );
    }
    // A startContainer hook that fails, and one that is on the host but
    // not in the container: start is one line, and the container stops
    // without running its program.
    for (hook, why) in [
        (
            r#"{"path":"/bin/false"}"#.to_string(),
            "startContainer hook /bin/false: exited with 1".to_string(),
        ),
        (
            format!(r#"{{"path":"{}"}}"#, script.display()),
            format!("startContainer hook {}: ", script.display()),
        ),
    ] {
        fs::write(
            bundle.join("config.json"),
            config(&create_hook, &hook, false),
        )
        .unwrap();
        let out_path = create_logged(&env.runner, &store, &bundle, "stopped");
        let out = run(&mut rt(&["start", "stopped"]), Duration::from_secs(30));
        assert!(
            out.status != 0 && out.stderr.contains(&why) && out.stderr.lines().count() == 1,
            "{why}: {out}"
        );
        eventually("it stopped", || {
            says_stopped(&ok(&mut rt(&["state", "stopped"])))
        });
        ok(&mut rt(&["delete", "stopped"]));
        let printed = fs::read_to_string(out_path).unwrap();
        assert!(facts(&printed, "pid").is_empty(), "{printed}");
        assert_eq!(facts(&printed, "create.status"), ["created"], "{printed}");
    }
    before.check(&store, &[]);
}

/// `spec --rootless` writes what runc's does (a user namespace mapping
/// the caller to 0, no network namespace, the host's /sys bound), and
/// husk runs it: the container's 0 is the caller, in a user namespace of
/// its own, in the host's network namespace, with the host's /sys, and no
/// sysfs of its own (the kernel would refuse one).
#[test]
fn the_rootless_spec_runs_in_a_user_namespace() {
    let Some(env) = env() else { return };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("rootless");
    let store = scratch.0.join("store");
    let bundle = scratch.0.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    let before = Before::take();
    ok(&mut husk(
        &env.runner,
        &store,
        &["spec", "--rootless", "--bundle", bundle.to_str().unwrap()],
    ));
    let written = fs::read_to_string(bundle.join("config.json")).unwrap();
    let config = written
        .replace(
            r#""path": "rootfs""#,
            &format!(r#""path": "{}""#, env.rootfs.display()),
        )
        .replace(
            r#""sh""#,
            r#""/bin/sh", "-c", "/bin/husk-probe facts; echo sysfs=$(/bin/grep -c ' - sysfs ' /proc/self/mountinfo); echo cpu=$(/bin/ls /sys/devices/system/cpu | /bin/grep -c '^cpu[0-9]')""#,
        );
    assert_ne!(config, written);
    let out = oci_run(&env.runner, &store, &bundle, "rootless", &config);
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(facts(&out, "uid"), ["0"], "{out}");
    assert_eq!(facts(&out, "uid_map"), [format!("0 {uid} 1")], "{out}");
    let host_ns = |ns: &str| {
        fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .display()
            .to_string()
    };
    assert_ne!(facts(&out, "ns.user"), [host_ns("user")], "{out}");
    assert_eq!(facts(&out, "ns.net"), [host_ns("net")], "{out}");
    // /sys is the host's, bound (a sysfs listing the host's CPUs). That
    // the container ran at all shows husk made no sysfs of its own: the
    // kernel refuses one outside the user namespace's network namespace.
    let cpus = fs::read_dir("/sys/devices/system/cpu")
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("cpu")
                .is_some_and(|d| d.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    assert_eq!(facts(&out, "cpu"), [cpus.to_string()], "{out}");
    assert_ne!(facts(&out, "sysfs"), ["0"], "{out}");
    before.check(&store, &[]);
}

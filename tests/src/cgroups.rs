//! cgroups: limits that hold, parents made and removed, nothing left
//! behind by a killed runner, and leftover checks that can fail.

use std::fs;
use std::time::{Duration, Instant};

use crate::harness::{lines, Running, R};
use crate::{check, host, Env};

pub fn memory_hog_is_killed_with_137(env: &Env) -> R {
    let out = env.run(
        &["--memory", "32M"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
    );
    out.expect(137)?;
    check(out.stderr.contains("memory limit (32 MiB)"), || {
        format!("the runner did not say the memory limit was hit\n{out}")
    })
}

pub fn under_the_memory_limit_runs(env: &Env) -> R {
    let out = env.run(
        &["--memory", "64M"],
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4"],
    );
    out.expect(0).map(drop)
}

pub fn pids_limit_stops_a_fork_loop(env: &Env) -> R {
    // The fork loop runs in a child shell, which dies when a fork fails;
    // its sleeps stay. Counting uses builtins only, needing no fork.
    let script = "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 10 & i=$((i+1)); done; echo looped-to-the-end' 2>/dev/null; \
                  echo inner=$?; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n";
    let out = env.sh(&["--pids", "8"], script);
    out.expect(0)?;
    let l = lines(&out);
    let n: u32 = l
        .get(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no count\n{out}"))?;
    check(l[0] != "inner=0" && (2..=8).contains(&n), || {
        format!("{n} processes under --pids 8\n{out}")
    })
}

pub fn cpu_quota_throttles(env: &Env) -> R {
    let r = Running::start(
        env,
        &["--cpus", "0.1"],
        "echo ready; timeout 3 sh -c 'while :; do :; done'; true",
    )?;
    std::thread::sleep(Duration::from_millis(1500));
    let dir = host::cgroup_dir(r.pid1()?, "cpu").ok_or("no cpu cgroup for the container")?;
    let stat =
        fs::read_to_string(dir.join("cpu.stat")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(0)?;
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    check(throttled > 0, || {
        format!("no throttling in {}/cpu.stat:\n{stat}", dir.display())
    })
}

pub fn cpuset_pins_the_container(env: &Env) -> R {
    let out = env.sh(
        &["--cpuset", "0"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    out.expect(0)?;
    check(out.stdout.trim().ends_with("\t0"), || {
        format!("not pinned to CPU 0\n{out}")
    })
}

pub fn cgroup_parent_is_made_and_removed(env: &Env) -> R {
    let name = format!("parent-test-{}", std::process::id());
    let r = Running::start(
        env,
        &[
            "--cgroup-parent",
            "/husk-test-parent/inner",
            "--pids",
            "16",
            "--name",
            &name,
        ],
        "echo ready; sleep 60",
    )?;
    let dir = host::cgroup_dir(r.pid1()?, "pids").ok_or("no pids cgroup for the container")?;
    // Named after the container: husk-NAME.
    let want = format!("husk-test-parent/inner/husk-{name}");
    r.wait_for_pid1("sleep")?;
    r.signal(libc::SIGTERM);
    let out = r.finish(Duration::from_secs(20))?;
    out.expect(143)?;
    check(dir.ends_with(&want), || {
        format!(
            "the container's cgroup is {}, not under {want}",
            dir.display()
        )
    })?;
    // The leftover check after the scenario makes sure the parents are gone.
    check(!dir.exists(), || format!("{} still exists", dir.display()))
}

pub fn a_killed_runners_cgroup_is_swept_by_the_next(env: &Env) -> R {
    let r = Running::start(env, &["--pids", "16"], "echo ready; sleep 60")?;
    let dir = host::cgroup_dir(r.pid1()?, "pids").ok_or("no pids cgroup for the container")?;
    r.signal(libc::SIGKILL);
    r.finish(Duration::from_secs(20))?.expect(137)?;
    // The container dies of the runner's death (PDEATHSIG); its cgroup
    // stays, as nothing is left to remove it.
    let procs = dir.join("cgroup.procs");
    let start = Instant::now();
    while fs::read_to_string(&procs).is_ok_and(|p| !p.is_empty()) {
        check(start.elapsed() < Duration::from_secs(10), || {
            format!(
                "the container outlived its SIGKILLed runner: {}",
                procs.display()
            )
        })?;
        std::thread::sleep(Duration::from_millis(10));
    }
    check(dir.is_dir(), || {
        format!("{} went with the SIGKILLed runner?", dir.display())
    })?;
    env.sh(&["--pids", "16"], "true").expect(0)?;
    check(!dir.exists(), || {
        format!("{} is still there after the next container", dir.display())
    })
}

/// The check every scenario ends with must be able to fail: a container
/// still running shows in it (its PID namespace and its cgroup), and is
/// gone from it once the container ends.
pub fn leftover_checks_see_a_running_container(env: &Env) -> R {
    let before = host::Snapshot::take();
    let r = Running::start(env, &["--pids", "16"], "echo ready; exec sleep 60")?;
    r.wait_for_pid1("sleep")?;
    let during = before.same_as(&host::Snapshot::take());
    r.signal(libc::SIGTERM);
    r.finish(Duration::from_secs(20))?.expect(143)?;
    let seen = during.err().unwrap_or_default();
    check(
        seen.contains("new PID namespaces") && seen.contains("cgroups left behind"),
        || format!("a running container did not show in the leftover check: {seen:?}"),
    )?;
    before.same_as(&host::Snapshot::take())
}

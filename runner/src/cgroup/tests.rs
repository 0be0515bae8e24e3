//! The files written for each layout, against a temporary directory that
//! behaves like cgroupfs where it matters here.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// cgroupfs in a temp dir: writes create the file (the kernel would have
/// made it), rmdir takes the directory's files with it.
struct TempFs;

impl CgroupFs for TempFs {
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        if !path.parent().is_some_and(Path::is_dir) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        fs::write(path, value)
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        fs::read_to_string(path)
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            fs::remove_file(entry.path())?;
        }
        fs::remove_dir(path)
    }
}

fn temp_root() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "husk-cgroup-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn mountinfo_line(id: u32, root: &str, mountpoint: &Path, fstype: &str, opts: &str) -> String {
    format!(
        "{id} 1 0:{id} {root} {} rw,relatime shared:{id} - {fstype} {fstype} {opts}\n",
        mountpoint.display()
    )
}

/// This development machine's layout: v1 controllers, cpu and cpuacct apart,
/// a named systemd hierarchy, and cgroup2 on unified with only hugetlb.
fn hybrid(root: &Path) -> Layout {
    let mut mi = String::new();
    let mut pc = String::new();
    for (i, c) in ["cpu", "cpuacct", "cpuset", "memory", "pids"]
        .iter()
        .enumerate()
    {
        let dir = root.join(c);
        fs::create_dir_all(&dir).unwrap();
        mi += &mountinfo_line(i as u32 + 30, "/", &dir, "cgroup", &format!("rw,{c}"));
        pc += &format!(
            "{}:{c}:{}\n",
            i + 1,
            if *c == "memory" {
                "/process_api/abc"
            } else {
                "/"
            }
        );
    }
    fs::create_dir_all(root.join("memory/process_api/abc")).unwrap();
    fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::create_dir_all(root.join("systemd")).unwrap();
    mi += &mountinfo_line(
        40,
        "/",
        &root.join("systemd"),
        "cgroup",
        "rw,xattr,name=systemd",
    );
    pc += "9:name=systemd:/\n";
    let unified = root.join("unified");
    fs::create_dir_all(&unified).unwrap();
    fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
    mi += &mountinfo_line(41, "/", &unified, "cgroup2", "rw");
    pc += "0::/\n";
    Layout::parse(&mi, &pc, |p| fs::read_to_string(p).unwrap_or_default())
}

fn v2(root: &Path, own: &str) -> Layout {
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    fs::create_dir_all(root.join(own.trim_start_matches('/'))).unwrap();
    let mi = mountinfo_line(30, "/", root, "cgroup2", "rw,nsdelegate");
    Layout::parse(&mi, &format!("0::{own}\n"), |p| {
        fs::read_to_string(p).unwrap_or_default()
    })
}

fn all_limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: None,
        cpu_quota_us: Some(50_000),
        cpu_shares: Some(512),
        cpuset: Some("0".into()),
        pids: Some(64),
        cpu_period_us: None,
        extra: Vec::new(),
    }
}

fn make(
    layout: &Layout,
    limits: &Limits,
    parent: Option<&str>,
    name: &str,
    everywhere: bool,
) -> Result<Option<Cgroup>> {
    let req = Request {
        limits,
        parent,
        name,
        everywhere,
        kill_file: true,
        may_exist: false,
    };
    Cgroup::create_with(Box::new(TempFs), layout, &req)
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn detects_each_layout() {
    let root = temp_root();
    let h = hybrid(&root);
    assert_eq!(h.describe(), "hybrid");
    assert_eq!(h.hierarchy_for("memory").unwrap().own, "/process_api/abc");
    assert_eq!(h.hierarchy_for("memory").unwrap().version, Version::V1);
    assert_eq!(h.hierarchy_for("hugetlb").unwrap().version, Version::V2);
    assert!(h.hierarchy_for("io").is_none());
    // The named systemd hierarchy is there, but holds no controller.
    let named: Vec<_> = h
        .hierarchies
        .iter()
        .filter(|x| x.mountpoint.ends_with("systemd"))
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].controllers, ["name=systemd"]);
    assert!(h.hierarchy_for("systemd").is_none());

    let root2 = temp_root();
    let l = v2(&root2, "/user.slice");
    assert_eq!(l.describe(), "v2");
    assert_eq!(l.hierarchy_for("memory").unwrap().own, "/user.slice");

    // A v1 mount of a subtree (as inside another container): paths are
    // relative to the mount's root; co-mounted controllers are one hierarchy.
    let mi = "30 1 0:30 /docker/x /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    let l = Layout::parse(mi, "3:cpuacct,cpu:/docker/x/inner\n", |_| String::new());
    assert_eq!(l.describe(), "v1");
    let cpu = l.hierarchy_for("cpuacct").unwrap();
    assert_eq!(
        (cpu.own.as_str(), cpu.mountpoint.as_path()),
        ("/inner", Path::new("/sys/fs/cgroup/cpu,cpuacct"))
    );
    fs::remove_dir_all(root).unwrap();
    fs::remove_dir_all(root2).unwrap();
}

#[test]
fn hybrid_writes_v1_files_and_cleans_up() {
    let root = temp_root();
    let layout = hybrid(&root);
    let cg = make(&layout, &all_limits(), None, "husk-1", false)
        .unwrap()
        .unwrap();
    let mem = root.join("memory/process_api/abc/husk-1");
    assert_eq!(
        read(mem.join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(mem.join("memory.memsw.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    let cpu = root.join("cpu/husk-1");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(cpu.join("cpu.shares")), "512");
    let cpuset = root.join("cpuset/husk-1");
    assert_eq!(read(cpuset.join("cpuset.cpus")), "0");
    assert_eq!(read(cpuset.join("cpuset.mems")), "0");
    assert_eq!(read(root.join("pids/husk-1/pids.max")), "64");
    assert!(
        !root.join("cpuacct/husk-1").exists(),
        "no limit needs cpuacct"
    );
    assert!(
        !root.join("unified/husk-1").exists(),
        "no limit lives in v2 here"
    );

    cg.join(4242).unwrap();
    assert_eq!(read(mem.join("cgroup.procs")), "4242");
    fs::write(
        mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    )
    .unwrap();
    assert_eq!(cg.oom_kills(), 3);
    drop(cg);
    for c in ["memory/process_api/abc", "cpu", "cpuset", "pids"] {
        assert!(!root.join(c).join("husk-1").exists(), "{c} left behind");
    }
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_enables_controllers_at_every_level() {
    let root = temp_root();
    let layout = v2(&root, "/");
    let limits = Limits {
        memory_swap: Some(Some(96 << 20)),
        ..all_limits()
    };
    let cg = make(&layout, &limits, Some("/ci/jobs"), "husk-2", false)
        .unwrap()
        .unwrap();
    for level in ["", "ci", "ci/jobs"] {
        assert_eq!(
            read(root.join(level).join("cgroup.subtree_control")),
            "+memory +cpu +cpuset +pids",
            "{level}"
        );
    }
    let leaf = root.join("ci/jobs/husk-2");
    assert_eq!(read(leaf.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(
        read(leaf.join("memory.swap.max")),
        (32u64 << 20).to_string()
    );
    assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(leaf.join("cpu.weight")), v2::weight(512).to_string());
    assert_eq!(read(leaf.join("cpuset.cpus")), "0");
    assert_eq!(read(leaf.join("pids.max")), "64");
    fs::write(
        leaf.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert_eq!(cg.oom_kills(), 1);
    drop(cg);
    assert!(
        !root.join("ci").exists(),
        "the parents made for the container are removed too"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_goes_above_a_cgroup_that_holds_processes() {
    let root = temp_root();
    let layout = v2(&root, "/user.slice/session-1.scope");
    fs::write(
        root.join("user.slice/session-1.scope/cgroup.procs"),
        "77\n4242\n",
    )
    .unwrap();
    let limits = Limits {
        pids: Some(5),
        ..Limits::default()
    };
    let cg = make(&layout, &limits, None, "husk-6", false)
        .unwrap()
        .unwrap();
    assert_eq!(read(root.join("user.slice/husk-6/pids.max")), "5");
    assert_eq!(
        read(root.join("user.slice/cgroup.subtree_control")),
        "+pids"
    );
    drop(cg);
    assert!(!root.join("user.slice/husk-6").exists());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v1_only_with_cpu_and_cpuacct_together() {
    let root = temp_root();
    let mut mi = String::new();
    for (i, c) in ["cpu,cpuacct", "memory"].iter().enumerate() {
        fs::create_dir_all(root.join(c).join("job")).unwrap();
        mi += &mountinfo_line(
            i as u32 + 30,
            "/",
            &root.join(c),
            "cgroup",
            &format!("rw,{c}"),
        );
    }
    let layout = Layout::parse(&mi, "2:cpu,cpuacct:/job\n1:memory:/job\n", |_| {
        String::new()
    });
    assert_eq!(layout.describe(), "v1");
    let limits = Limits {
        memory: Some(8 << 20),
        memory_swap: Some(None),
        cpu_quota_us: Some(150_000),
        ..Limits::default()
    };
    let cg = make(&layout, &limits, None, "husk-7", false)
        .unwrap()
        .unwrap();
    let cpu = root.join("cpu,cpuacct/job/husk-7");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "150000");
    let mem = root.join("memory/job/husk-7");
    assert_eq!(
        read(mem.join("memory.limit_in_bytes")),
        (8u64 << 20).to_string()
    );
    assert!(
        !mem.join("memory.memsw.limit_in_bytes").exists(),
        "--memory-swap -1 leaves swap unlimited"
    );
    drop(cg);
    assert!(!cpu.exists() && !mem.exists());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_weight_matches_runc() {
    assert_eq!(v2::weight(2), 1);
    assert_eq!(v2::weight(1024), 39);
    assert_eq!(v2::weight(262_144), 10_000);
}

#[test]
fn no_limits_no_cgroup() {
    let root = temp_root();
    let layout = hybrid(&root);
    assert!(make(&layout, &Limits::default(), None, "husk-3", false)
        .unwrap()
        .is_none());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_failure_half_way_removes_what_was_made() {
    let root = temp_root();
    let layout = hybrid(&root);
    // cpuset.mems of the parent is unreadable: cpuset setup fails after the
    // memory and cpu cgroups were made.
    fs::remove_file(root.join("cpuset/cpuset.mems")).unwrap();
    let err = make(&layout, &all_limits(), None, "husk-4", false)
        .err()
        .unwrap();
    assert!(
        err.message.contains("cpuset.mems") && err.message.contains("ENOENT"),
        "{}",
        err.message
    );
    for c in ["memory/process_api/abc", "cpu", "cpuset", "pids"] {
        assert!(!root.join(c).join("husk-4").exists(), "{c} left behind");
    }
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_controller_is_named() {
    let root = temp_root();
    let layout = v2(&root, "/");
    fs::write(root.join("cgroup.controllers"), "memory\n").unwrap();
    let layout2 = Layout::parse(
        &mountinfo_line(30, "/", &root, "cgroup2", "rw"),
        "0::/\n",
        |p| fs::read_to_string(p).unwrap_or_default(),
    );
    drop(layout);
    let err = make(&layout2, &all_limits(), None, "husk-5", false)
        .err()
        .unwrap();
    assert!(
        err.message.contains("controller cpu is not available"),
        "{}",
        err.message
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_container_that_may_mount_gets_a_cgroup_in_every_hierarchy() {
    let root = temp_root();
    let layout = hybrid(&root);
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    let cg = make(&layout, &limits, None, "husk-e", true)
        .unwrap()
        .unwrap();
    let (leaves, _) = cg.paths();
    assert_eq!(leaves.len(), layout.hierarchies.len());
    for dir in ["cpu", "cpuacct", "cpuset", "pids", "systemd", "unified"] {
        assert!(root.join(dir).join("husk-e").is_dir(), "{dir}");
    }
    // The memory limit still goes where memory is, under our own cgroup.
    assert_eq!(
        read(root.join("memory/process_api/abc/husk-e/memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    drop(cg);
    assert!(!root.join("systemd/husk-e").exists());
    // Without limits too.
    let cg = make(&layout, &Limits::default(), None, "husk-f", true)
        .unwrap()
        .expect("a cgroup");
    assert_eq!(cg.paths().0.len(), layout.hierarchies.len());
    drop(cg);
    // Adopted from the paths a store kept (on the real filesystem's terms:
    // empty directories, so v2 without limits), it is removed the same way.
    let root2 = temp_root();
    let layout = v2(&root2, "/");
    let cg = make(&layout, &Limits::default(), None, "husk-g", true)
        .unwrap()
        .unwrap();
    let (leaves, made) = cg.paths();
    std::mem::forget(cg);
    assert!(leaves.iter().all(|l| l.is_dir()));
    Cgroup::adopt(leaves.clone(), made, true).remove();
    assert!(leaves.iter().all(|l| !l.exists()));
    fs::remove_dir_all(root).unwrap();
    fs::remove_dir_all(root2).unwrap();
}

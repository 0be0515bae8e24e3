//! /proc/PID/mountinfo, parsed once, for everything that reads it: the
//! cgroup layout, the host-root check, the nodev walk and the tests.
//!
//! A line: `id parent major:minor root mount-point options [optional...] -
//! fstype source super-options`; paths escape space, tab, newline and
//! backslash as `\ooo`.

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    /// The directory of the filesystem that is mounted, unescaped.
    pub root: String,
    /// Where it is mounted, unescaped.
    pub mount_point: String,
    /// The per-mount options: rw/ro, nosuid, nodev, ...
    pub options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

impl Mount {
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.split(',').any(|o| o == opt)
    }

    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.split(',').any(|o| o == opt)
    }
}

/// Every well-formed line of `text`, in order; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// This process's mount table.
pub fn read() -> std::io::Result<Vec<Mount>> {
    std::fs::read_to_string("/proc/self/mountinfo").map(|t| parse(&t))
}

fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ');
    let id = pre.next()?.parse().ok()?;
    let parent = pre.next()?.parse().ok()?;
    let _dev = pre.next()?;
    let root = unescape(pre.next()?);
    let mount_point = unescape(pre.next()?);
    let options = pre.next()?.to_string();
    let mut post = post.split(' ');
    let fstype = post.next()?.to_string();
    let source = unescape(post.next()?);
    let super_options = post.next().unwrap_or("").to_string();
    Some(Mount {
        id,
        parent,
        root,
        mount_point,
        options,
        fstype,
        source,
        super_options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points strictly below `dir` (an absolute path as mountinfo
/// shows it), each as a path relative to `dir`, in mount order.
pub fn below<'a>(mounts: &'a [Mount], dir: &str) -> impl Iterator<Item = &'a str> {
    let prefix = if dir.ends_with('/') {
        dir.to_string()
    } else {
        format!("{dir}/")
    };
    mounts.iter().filter_map(move |m| {
        m.mount_point
            .strip_prefix(&prefix)
            .filter(|rest| !rest.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let text = "36 25 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
                    40 25 8:1 /srv/a\\040b /mnt/with\\040space ro,nodev - ext4 /dev/sda1 rw\n\
                    garbage\n\
                    41 25 0:5 / /x rw - tmpfs tmpfs\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].id, m[0].parent), (36, 25));
        assert_eq!(m[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(m[0].fstype, "cgroup");
        assert!(m[0].has_super_option("cpuacct") && m[0].has_option("nosuid"));
        assert_eq!(m[1].root, "/srv/a b");
        assert_eq!(m[1].mount_point, "/mnt/with space");
        assert!(m[1].has_option("ro") && m[1].has_option("nodev"));
        assert_eq!(m[2].super_options, "");
        assert_eq!(unescape("a\\134b\\012"), "a\\b\n");
        assert_eq!(unescape("trailing\\01"), "trailing\\01");
    }

    #[test]
    fn mounts_below_a_directory() {
        let text = "1 0 0:1 / / rw - ext4 a rw\n\
                    2 1 0:2 / /srv/box rw - ext4 a rw\n\
                    3 2 0:3 / /srv/box/data rw - ext4 a rw\n\
                    4 2 0:4 / /srv/boxer rw - ext4 a rw\n\
                    5 3 0:5 / /srv/box/data/deep rw - ext4 a rw\n";
        let m = parse(text);
        let got: Vec<&str> = below(&m, "/srv/box").collect();
        assert_eq!(got, ["data", "data/deep"]);
        assert_eq!(below(&m, "/").count(), 4);
    }
}

//! Parsing /proc/self/cgroup and /proc/self/mountinfo, and matching each
//! hierarchy the process belongs to with the place it is mounted.

use std::path::{Path, PathBuf};

use crate::CgroupError;

/// One line of /proc/<pid>/cgroup: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    pub id: u32,
    /// Controllers of the hierarchy (`["cpu","cpuacct"]`, `["name=systemd"]`); empty for v2.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// The cgroup-relevant fields of one mountinfo line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// Root of the mount within the cgroup filesystem (field 4).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// "cgroup" or "cgroup2".
    pub fstype: String,
    /// Super options, e.g. "rw,cpu,cpuacct" or "rw,nsdelegate".
    pub super_options: String,
}

impl CgroupMount {
    fn has_option(&self, opt: &str) -> bool {
        self.super_options.split(',').any(|o| o == opt)
    }
}

/// Parses /proc/<pid>/cgroup text.
pub(crate) fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>, CgroupError> {
    let bad = |line: &str| CgroupError::ProcLine {
        source_name: "/proc/self/cgroup",
        line: line.to_string(),
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(line));
        };
        let id = id.parse().map_err(|_| bad(line))?;
        if !path.starts_with('/') {
            return Err(bad(line));
        }
        let controllers = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        out.push(ProcCgroup {
            id,
            controllers,
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// Undoes the octal escapes (`\040` for a space...) of mountinfo fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/<pid>/mountinfo text, keeping only cgroup and cgroup2 mounts.
pub(crate) fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, CgroupError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || CgroupError::ProcLine {
            source_name: "/proc/self/mountinfo",
            line: line.to_string(),
        };
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-").ok_or_else(bad)?;
        if sep < 6 || fields.len() < sep + 4 {
            return Err(bad());
        }
        let fstype = fields[sep + 1];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        out.push(CgroupMount {
            root: PathBuf::from(unescape(fields[3])),
            mount_point: PathBuf::from(unescape(fields[4])),
            fstype: fstype.to_string(),
            super_options: fields[sep + 3].to_string(),
        });
    }
    Ok(out)
}

/// A hierarchy the process is in, together with where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub own: ProcCgroup,
    pub mount: CgroupMount,
}

impl Placement {
    pub fn is_v2(&self) -> bool {
        self.mount.fstype == "cgroup2"
    }
}

/// Picks the mount that serves `pc`: cgroup2 for the `0::` line, else the
/// cgroup mount whose options carry every controller of the line. Among
/// several (bind) mounts, one whose root contains our own cgroup wins.
fn find_mount<'a>(pc: &ProcCgroup, mounts: &'a [CgroupMount]) -> Option<&'a CgroupMount> {
    let candidates: Vec<&CgroupMount> = mounts
        .iter()
        .filter(|m| {
            if pc.controllers.is_empty() {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup" && pc.controllers.iter().all(|c| m.has_option(c))
            }
        })
        .collect();
    candidates
        .iter()
        .find(|m| pc.path.starts_with(&m.root))
        .or_else(|| candidates.first())
        .copied()
}

/// Joins each hierarchy of /proc/self/cgroup with its mount; unmounted ones are skipped.
pub(crate) fn placements(
    proc_cgroup: &str,
    mountinfo: &str,
) -> Result<Vec<Placement>, CgroupError> {
    let own = parse_proc_cgroup(proc_cgroup)?;
    let mounts = parse_mountinfo(mountinfo)?;
    Ok(own
        .into_iter()
        .filter_map(|pc| {
            find_mount(&pc, &mounts).map(|m| Placement {
                own: pc.clone(),
                mount: m.clone(),
            })
        })
        .collect())
}

/// Host directory of cgroup `path` (as named in /proc/*/cgroup) in a mount rooted at `root`.
pub(crate) fn host_dir(mount: &CgroupMount, path: &Path) -> PathBuf {
    let rel = path.strip_prefix(&mount.root).unwrap_or(path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rel)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n\
5:devices:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    pub const HYBRID_MOUNTINFO: &str = "\
23 1 259:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    pub const V2_CGROUP: &str = "0::/user.slice/user-0.slice/session-1.scope\n";
    pub const V2_MOUNTINFO: &str = "\
22 1 259:0 / / rw - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn parses_hybrid_proc_cgroup() {
        let pcs = parse_proc_cgroup(HYBRID_CGROUP).unwrap();
        assert_eq!(pcs.len(), 10);
        assert_eq!(pcs[0].controllers, vec!["name=systemd"]);
        assert_eq!(pcs[5].path, Path::new("/process_api/abc"));
        assert!(pcs[9].controllers.is_empty());
        assert_eq!(pcs[9].id, 0);
    }

    #[test]
    fn proc_cgroup_with_colons_in_path_and_comounted() {
        let pcs = parse_proc_cgroup("2:cpu,cpuacct:/a:b\n").unwrap();
        assert_eq!(pcs[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(pcs[0].path, Path::new("/a:b"));
        assert!(parse_proc_cgroup("garbage\n").is_err());
        assert!(parse_proc_cgroup("x:cpu:/\n").is_err());
    }

    #[test]
    fn mountinfo_keeps_cgroup_mounts_and_unescapes() {
        let ms = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(ms.len(), 10);
        assert_eq!(ms[0].mount_point, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(ms[9].fstype, "cgroup2");
        let esc = "1 2 0:1 / /tmp/a\\040b rw - cgroup2 none rw\n";
        assert_eq!(
            parse_mountinfo(esc).unwrap()[0].mount_point,
            Path::new("/tmp/a b")
        );
        // optional fields before the separator are skipped
        let v2 = parse_mountinfo(V2_MOUNTINFO).unwrap();
        assert_eq!(v2[0].super_options, "rw,nsdelegate,memory_recursiveprot");
        assert!(parse_mountinfo("1 2 3\n").is_err());
    }

    #[test]
    fn placements_match_controllers_to_mounts() {
        let ps = placements(HYBRID_CGROUP, HYBRID_MOUNTINFO).unwrap();
        assert_eq!(ps.len(), 10);
        let mem = ps.iter().find(|p| p.own.controllers == ["memory"]).unwrap();
        assert_eq!(mem.mount.mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(
            host_dir(&mem.mount, &mem.own.path),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        let sd = ps
            .iter()
            .find(|p| p.own.controllers == ["name=systemd"])
            .unwrap();
        assert_eq!(sd.mount.mount_point, Path::new("/sys/fs/cgroup/systemd"));
        assert!(ps.iter().find(|p| p.own.id == 0).unwrap().is_v2());
    }

    #[test]
    fn comounted_and_unmounted_hierarchies() {
        let cg = "3:net_cls,net_prio:/\n2:cpu,cpuacct:/x\n1:hugetlb:/\n";
        let mi = "5 1 0:9 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
        let ps = placements(cg, mi).unwrap();
        assert_eq!(ps.len(), 1, "only the mounted hierarchy is kept");
        assert_eq!(ps[0].own.controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn host_dir_strips_the_mount_root() {
        // a container that only sees its own sub-tree: root /docker/x mounted at /sys/fs/cgroup/memory
        let m = CgroupMount {
            root: "/docker/x".into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            fstype: "cgroup".into(),
            super_options: "rw,memory".into(),
        };
        assert_eq!(
            host_dir(&m, Path::new("/docker/x/sub")),
            Path::new("/sys/fs/cgroup/memory/sub")
        );
        assert_eq!(
            host_dir(&m, Path::new("/docker/x")),
            Path::new("/sys/fs/cgroup/memory")
        );
    }
}

//! Small helpers for reading and writing cgroup files, with errors that name the file.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::CgroupError;

/// Writes `value` to an existing cgroup file (never creates it), truncating like runc.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let wrap = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(wrap)?;
    file.write_all(value.as_bytes()).map_err(wrap)
}

/// Writes `value` to `dir/file`.
pub(crate) fn write_in(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    write(&dir.join(file), value)
}

/// Reads a whole cgroup file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// Reads a cgroup file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

/// Parses a single unsigned number; "max" maps to `u64::MAX` as runc does.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupError> {
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: s.to_string(),
    })
}

/// Reads a single-number file; a missing file reads as 0.
pub(crate) fn read_u64_or_zero(path: &Path) -> Result<u64, CgroupError> {
    match read_opt(path)? {
        Some(s) => parse_u64(path, &s),
        None => Ok(0),
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, cgroup.events...).
pub(crate) fn parse_flat_keyed(
    path: &Path,
    s: &str,
) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
    let mut map = std::collections::BTreeMap::new();
    for line in s.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some(k), Some(v), None) => {
                map.insert(k.to_string(), parse_u64(path, v)?);
            }
            _ => {
                return Err(CgroupError::Parse {
                    path: path.to_path_buf(),
                    content: line.to_string(),
                })
            }
        }
    }
    Ok(map)
}

/// Reads a flat-keyed file; a missing file reads as an empty map.
pub(crate) fn read_flat_keyed(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, u64>, CgroupError> {
    match read_opt(path)? {
        Some(s) => parse_flat_keyed(path, &s),
        None => Ok(Default::default()),
    }
}

/// Parses a cgroup.procs file into pids.
pub(crate) fn parse_pids(path: &Path, s: &str) -> Result<Vec<i32>, CgroupError> {
    s.split_whitespace()
        .map(|p| {
            p.parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: p.to_string(),
            })
        })
        .collect()
}

/// Lists the sub-directories of `dir` (child cgroups); a missing dir has none.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list", dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| CgroupError::io("stat", entry.path(), e))?
            .is_dir();
        if is_dir {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_u64_accepts_max_and_numbers() {
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, " 42\n").unwrap(), 42);
        assert!(parse_u64(p, "4x").is_err());
    }

    #[test]
    fn flat_keyed_parses_and_rejects_garbage() {
        let p = Path::new("/x");
        let m = parse_flat_keyed(p, "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(m["populated"], 1);
        assert_eq!(m["frozen"], 0);
        assert!(parse_flat_keyed(p, "a b c\n").is_err());
    }

    #[test]
    fn write_never_creates_files() {
        let dir = std::env::temp_dir().join(format!("runz-test-{}-fsutil", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = write_in(&dir, "nope", "1").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        std::fs::write(dir.join("f"), "long old content").unwrap();
        write_in(&dir, "f", "7").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "7");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

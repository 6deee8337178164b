//! An image's `User` (`name`, `uid`, `name:group`, `uid:gid`, ...) as numeric ids, looked up
//! in the zone root's /etc/passwd and /etc/group the way docker does: a user without a group
//! gets its passwd entry's group (0 when a numeric uid has no entry).
//!
//! The root is a zone's, so untrusted: /etc/passwd and /etc/group are read with their
//! symlinks resolved inside the root (never the host's files), only when regular files, and
//! at most [`MAX_DB`] bytes each.

use std::path::Path;

/// The most of /etc/passwd or /etc/group read.
pub const MAX_DB: u64 = 4 << 20;

fn read_plain(root: &Path, name: &str) -> Option<String> {
    let data = super::rootdir::read_in_root(root, &format!("etc/{name}"), MAX_DB).ok()?;
    String::from_utf8(data).ok()
}

/// (name, id, primary gid) of each line of a passwd file, or (name, id, id) of a group file.
fn entries(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let id = f.get(2)?.parse().ok()?;
        let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
        Some((f[0], id, gid))
    })
}

/// `(uid, gid)` for `user` in the root filesystem at `root`.
pub fn resolve(root: &Path, user: &str) -> Result<(u32, u32), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_plain(root, "passwd").unwrap_or_default();
    let (uid, primary) = match u.parse::<u32>() {
        Ok(uid) => (
            uid,
            entries(&passwd)
                .find(|e| e.1 == uid)
                .map(|e| e.2)
                .unwrap_or(0),
        ),
        Err(_) => entries(&passwd)
            .find(|e| e.0 == u)
            .map(|e| (e.1, e.2))
            .ok_or_else(|| {
                format!("user '{u}' (the image's User '{user}') is not in the zone's /etc/passwd")
            })?,
    };
    let gid = match g {
        None => primary,
        Some(g) => {
            match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    let group = read_plain(root, "group").unwrap_or_default();
                    let found = entries(&group).find(|e| e.0 == g).map(|e| e.1);
                    found.ok_or_else(|| {
                    format!("group '{g}' (the image's User '{user}') is not in the zone's /etc/group")
                })?
                }
            }
        }
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn users_resolve_like_docker() {
        let root = std::env::temp_dir().join(format!("runz-test-user-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n",
        )
        .unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve(&root, "www"), Ok((33, 34)));
        assert_eq!(resolve(&root, "33"), Ok((33, 34)));
        assert_eq!(resolve(&root, "1000"), Ok((1000, 0)));
        assert_eq!(resolve(&root, "www:staff"), Ok((33, 50)));
        assert_eq!(resolve(&root, "1000:7"), Ok((1000, 7)));
        let e = resolve(&root, "nobody").unwrap_err();
        assert!(e.contains("'nobody'") && e.contains("/etc/passwd"), "{e}");
        assert!(resolve(&root, "www:nogroup")
            .unwrap_err()
            .contains("/etc/group"));
        // A passwd that is a symlink to a host file is read inside the root: here itself.
        let host = root.with_extension("host");
        fs::write(&host, "hostonly:x:4242:4242::/:/bin/sh\n").unwrap();
        fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(&host, root.join("etc/passwd")).unwrap();
        assert!(resolve(&root, "hostonly").is_err());
        assert_eq!(resolve(&root, "0"), Ok((0, 0)));
        // A FIFO is not waited on; /dev/zero does not grow the reader.
        fs::remove_file(root.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &root.join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(resolve(&root, "root").is_err());
        fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../dev/zero", root.join("etc/passwd")).unwrap();
        assert!(resolve(&root, "root").is_err());
        let _ = fs::remove_file(&host);
        fs::remove_dir_all(&root).unwrap();
    }
}

//! The zone's `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostid`, written
//! into its root before init runs, from the `hostname` (default: the zone name), the addresses
//! of its `anet`/`net` resources, `resolvers` and `hostid` (what gethostid(3) reads: four
//! bytes in the machine's order).
//!
//! The zone's root is the zone's to shape, so every path is resolved with openat2
//! RESOLVE_IN_ROOT: a symlink planted at `/etc` or `/etc/hosts` resolves inside the zone's root,
//! never to the host's files. Each file is replaced atomically (a temporary name, then
//! renameat).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use zones::model::Zone;

#[derive(Debug, thiserror::Error)]
#[error("zone '{zone}': write {file} in the zone's root: {msg}")]
pub struct HostFilesError {
    zone: String,
    file: String,
    msg: String,
}

/// The host name the zone gets (UTS and files).
pub fn hostname(zone: &Zone) -> String {
    zone.hostname
        .clone()
        .unwrap_or_else(|| zone.zonename.clone())
}

/// The first address of the zone's links (for `/etc/hosts`).
fn first_address(zone: &Zone) -> Option<String> {
    zone.anet
        .iter()
        .filter_map(|a| a.allowed_address.as_deref())
        .chain(
            zone.net
                .iter()
                .filter_map(|n| n.allowed_address.as_deref().or(n.address.as_deref())),
        )
        .next()
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
}

/// The three files' contents: (name, text); resolv.conf only when resolvers are set.
pub fn contents(zone: &Zone) -> Vec<(&'static str, String)> {
    let host = hostname(zone);
    let short = host.split('.').next().unwrap_or(&host).to_string();
    let names = if short == host {
        host.clone()
    } else {
        format!("{host} {short}")
    };
    let own = first_address(zone).unwrap_or_else(|| "127.0.1.1".into());
    let mut out = vec![
        ("hostname", format!("{host}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\t{names}\n"
            ),
        ),
    ];
    if !zone.resolvers.is_empty() {
        let mut r = String::new();
        for ip in &zone.resolvers {
            r.push_str(&format!("nameserver {ip}\n"));
        }
        out.push(("resolv.conf", r));
    }
    out
}

/// `/etc/hostid` when the zone has a `hostid`: gethostid(3)'s four bytes, native order.
pub fn hostid_file(zone: &Zone) -> Option<[u8; 4]> {
    zone.hostid.map(|h| h.0.to_ne_bytes())
}

fn write_one(etc: &OwnedFd, name: &str, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = format!(".{name}.zones-tmp");
    let _ = nix::unistd::unlinkat(
        Some(etc.as_raw_fd()),
        tmp.as_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let fd = super::rootfile::open_in_root(
        etc,
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o644,
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(text)?;
    f.sync_all()?;
    nix::fcntl::renameat(
        Some(etc.as_raw_fd()),
        tmp.as_str(),
        Some(etc.as_raw_fd()),
        name,
    )
    .map_err(std::io::Error::from)
}

/// Write the files into the zone's root `root` (its `/etc` is made when missing).
pub fn write(zone: &Zone, root: &Path) -> Result<(), HostFilesError> {
    let err = |file: &str, e: std::io::Error| HostFilesError {
        zone: zone.zonename.clone(),
        file: file.to_string(),
        msg: e.to_string(),
    };
    let rootfd = std::fs::File::open(root)
        .map(OwnedFd::from)
        .map_err(|e| err(&root.display().to_string(), e))?;
    let etc = match super::rootfile::open_in_root(
        &rootfd,
        "etc",
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            nix::sys::stat::mkdirat(
                Some(rootfd.as_raw_fd()),
                "etc",
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )
            .map_err(|e| err("/etc", e.into()))?;
            super::rootfile::open_in_root(&rootfd, "etc", libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| err("/etc", e))?
        }
        Err(e) => return Err(err("/etc", e)),
    };
    for (name, text) in contents(zone) {
        write_one(&etc, name, text.as_bytes()).map_err(|e| err(&format!("/etc/{name}"), e))?;
    }
    if let Some(id) = hostid_file(zone) {
        write_one(&etc, "hostid", &id).map_err(|e| err("/etc/hostid", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zones::model::Anet;

    #[test]
    fn files_follow_the_zone() {
        let mut z = Zone::new("web");
        let c = contents(&z);
        assert_eq!(c[0], ("hostname", "web\n".to_string()));
        assert!(c[1].1.contains("127.0.1.1\tweb\n"), "{}", c[1].1);
        assert_eq!(c.len(), 2);
        z.hostname = Some("www.example.com".into());
        z.resolvers = vec!["10.0.0.53".into(), "fd00::53".into()];
        z.anet = vec![Anet {
            allowed_address: Some("10.0.0.5/24".into()),
            ..Default::default()
        }];
        let c = contents(&z);
        assert_eq!(c[0].1, "www.example.com\n");
        assert!(c[1].1.contains("10.0.0.5\twww.example.com www\n"));
        assert_eq!(
            c[2],
            (
                "resolv.conf",
                "nameserver 10.0.0.53\nnameserver fd00::53\n".to_string()
            )
        );
    }

    #[test]
    fn symlinks_in_the_zone_stay_in_the_zone() {
        let dir = std::env::temp_dir().join(format!("runz-test-hostfiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // /etc/hosts points at an absolute path: it resolves inside the root, not the host.
        std::os::unix::fs::symlink(outside.join("victim"), root.join("etc/hosts")).unwrap();
        std::fs::write(outside.join("victim"), "keep").unwrap();
        write(&Zone::new("web"), &root).unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.join("victim")).unwrap(),
            "keep"
        );
        assert!(std::fs::read_to_string(root.join("etc/hosts"))
            .unwrap()
            .contains("\tweb\n"));
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "web\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

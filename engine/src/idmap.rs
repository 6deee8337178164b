//! Id-mapped mounts (`mounts[].uidMappings/gidMappings`, options `idmap`/`ridmap`).
//!
//! The runtime (outside every container namespace, as host root) makes one user namespace per
//! id-mapped mount with that mount's mappings — a short-lived child unshares it, the parent
//! writes the maps and keeps `/proc/<child>/ns/user` open — and hands the descriptors to init.
//! Init clones the source with open_tree(2), marks the clone with mount_setattr(2)
//! `MOUNT_ATTR_IDMAP` and that user namespace, and moves it onto the destination with
//! move_mount(2): files owned by host id H appear as container id C where the mapping says
//! C → H.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use zones_mountapi as mountapi;

use super::namespaces;

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("id-mapped mount {dest}: {what}: {errno}")]
    Sys {
        dest: String,
        what: &'static str,
        errno: Errno,
    },
    #[error("id-mapped mount {dest}: {msg}")]
    Bad { dest: String, msg: String },
}

/// Whether a mount asks to be id-mapped, and with which mappings: its own, or (option `idmap`
/// or `ridmap` without mappings) the container's user-namespace mappings.
pub fn wanted(spec: &Spec, m: &Mount) -> Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)> {
    let opts = m.options().as_deref().unwrap_or(&[]);
    let flagged = opts.iter().any(|o| o == "idmap" || o == "ridmap");
    let own = (m.uid_mappings().clone(), m.gid_mappings().clone());
    match own {
        (Some(u), Some(g)) => Some((u, g)),
        (Some(u), None) => Some((u.clone(), u)),
        (None, Some(g)) => Some((g.clone(), g)),
        (None, None) if flagged => {
            let l = spec.linux().as_ref()?;
            Some((l.uid_mappings().clone()?, l.gid_mappings().clone()?))
        }
        (None, None) => None,
    }
}

/// Whether the clone covers submounts too (`ridmap`, or an `rbind`).
pub fn recursive(m: &Mount) -> bool {
    m.options()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|o| o == "ridmap" || o == "rbind")
}

/// For every mount of the spec, the user namespace its id-mapping uses (None: not id-mapped).
pub fn prepare(spec: &Spec) -> Result<Vec<Option<OwnedFd>>, IdmapError> {
    spec.mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|m| match wanted(spec, m) {
            Some((u, g)) => userns_with(&m.destination().display().to_string(), &u, &g).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// A user namespace with these mappings, kept alive by the returned descriptor
/// (see `mountapi::userns_with`).
pub fn userns_with(
    dest: &str,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<OwnedFd, IdmapError> {
    mountapi::userns_with(|pid| namespaces::write_id_maps(Pid::from_raw(pid), uid, gid)).map_err(
        |e| {
            let bad = |msg: String| IdmapError::Bad {
                dest: dest.to_string(),
                msg,
            };
            match e {
                mountapi::UsernsError::Sys(what, errno) => IdmapError::Sys {
                    dest: dest.to_string(),
                    what,
                    errno,
                },
                mountapi::UsernsError::Unshare => {
                    bad("could not create a user namespace for the mapping".into())
                }
                mountapi::UsernsError::Maps(e) => bad(e.to_string()),
                mountapi::UsernsError::Open(e) => {
                    bad(format!("open the mapping's user namespace: {e}"))
                }
            }
        },
    )
}

/// Clone `src` (recursively if asked), id-map the clone with `userns`, and move it onto
/// `target` (an O_PATH descriptor of the destination; `dest` is for messages).
pub fn mount(
    dest: &Path,
    src: &Path,
    target: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<(), IdmapError> {
    let d = dest.display().to_string();
    let sys = |what: &'static str| {
        let d = d.clone();
        move |errno: Errno| IdmapError::Sys {
            dest: d,
            what,
            errno,
        }
    };
    let tree = clone_mapped(dest, src, userns, recursive)?;
    mountapi::move_to_fd(tree.as_fd(), target).map_err(sys("move_mount"))
}

/// A detached clone of `src` (recursive if asked) id-mapped through `userns`, not yet mounted
/// anywhere. Marking a clone needs privilege over the source's filesystem, so a container with
/// its own user namespace gets it made by the runtime on the host side (see
/// `mounts::host_trees`).
pub fn clone_mapped(
    dest: &Path,
    src: &Path,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<OwnedFd, IdmapError> {
    let d = dest.display().to_string();
    let sys = |what: &'static str| {
        let d = d.clone();
        move |errno: Errno| IdmapError::Sys {
            dest: d,
            what,
            errno,
        }
    };
    let csrc = path_c(src, &d)?;
    let tree = mountapi::clone_tree(&csrc, recursive).map_err(sys("open_tree"))?;
    mountapi::set_attr(
        tree.as_fd(),
        mountapi::MOUNT_ATTR_IDMAP,
        0,
        Some(userns),
        recursive,
    )
    .map_err(sys("mount_setattr(MOUNT_ATTR_IDMAP)"))?;
    Ok(tree)
}

fn path_c(p: &Path, dest: &str) -> Result<std::ffi::CString, IdmapError> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| IdmapError::Bad {
        dest: dest.to_string(),
        msg: format!("{} contains a NUL byte", p.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn mappings_come_from_the_mount_or_the_container() {
        let s = spec(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},
                "linux":{"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                         "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]},
                "mounts":[
                  {"destination":"/a","type":"bind","source":"/x","options":["bind","idmap"]},
                  {"destination":"/b","type":"bind","source":"/x","options":["rbind"],
                   "uidMappings":[{"containerID":0,"hostID":1000,"size":1}]},
                  {"destination":"/c","type":"bind","source":"/x","options":["bind"]}]}"#,
        );
        let m = s.mounts().clone().unwrap();
        let (u, _) = wanted(&s, &m[0]).unwrap();
        assert_eq!(u[0].host_id(), 100000);
        let (u, g) = wanted(&s, &m[1]).unwrap();
        assert_eq!((u[0].host_id(), g[0].host_id()), (1000, 1000));
        assert!(recursive(&m[1]) && !recursive(&m[0]));
        assert!(wanted(&s, &m[2]).is_none());
    }
}

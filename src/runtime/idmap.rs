//! Id-mapped mounts (`mounts[].uidMappings/gidMappings`, options `idmap`/`ridmap`).
//!
//! The runtime (outside every container namespace, as host root) makes one user namespace per
//! id-mapped mount with that mount's mappings — a short-lived child unshares it, the parent
//! writes the maps and keeps `/proc/<child>/ns/user` open — and hands the descriptors to init.
//! Init clones the source with open_tree(2), marks the clone with mount_setattr(2)
//! `MOUNT_ATTR_IDMAP` and that user namespace, and moves it onto the destination with
//! move_mount(2): files owned by host id H appear as container id C where the mapping says
//! C → H.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

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

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
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

/// A user namespace with these mappings, kept alive by the returned descriptor.
pub fn userns_with(
    dest: &str,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<OwnedFd, IdmapError> {
    let sys = |what: &'static str| {
        move |errno: Errno| IdmapError::Sys {
            dest: dest.to_string(),
            what,
            errno,
        }
    };
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
    let (hold_r, hold_w) = nix::unistd::pipe().map_err(sys("pipe"))?;
    // SAFETY: the runtime's create path is single-threaded; the child only makes raw system
    // calls and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(hold_w);
            // SAFETY: plain syscalls on fds this process owns; _exit ends it without unwinding.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                let b = [u8::from(ok)];
                libc::write(ready_w.as_raw_fd(), b.as_ptr().cast(), 1);
                let mut x = [0u8; 1];
                libc::read(hold_r.as_raw_fd(), x.as_mut_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(hold_r);
            let mut b = [0u8; 1];
            let unshared = fs::File::from(ready_r)
                .read(&mut b)
                .map(|n| n == 1 && b[0] == 1);
            let result = match unshared {
                Ok(true) => namespaces::write_id_maps(child, uid, gid)
                    .map_err(|e| IdmapError::Bad {
                        dest: dest.to_string(),
                        msg: e.to_string(),
                    })
                    .and_then(|()| {
                        fs::File::open(format!("/proc/{}/ns/user", child.as_raw()))
                            .map(OwnedFd::from)
                            .map_err(|e| IdmapError::Bad {
                                dest: dest.to_string(),
                                msg: format!("open the mapping's user namespace: {e}"),
                            })
                    }),
                _ => Err(IdmapError::Bad {
                    dest: dest.to_string(),
                    msg: "could not create a user namespace for the mapping".into(),
                }),
            };
            let _ = fs::File::from(hold_w).write_all(b"x");
            let _ = waitpid(child, None);
            result
        }
    }
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
    let csrc = path_c(src, &d)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, csrc.as_ptr(), flags) };
    let tree = Errno::result(fd).map_err(sys("open_tree"))?;
    // SAFETY: the kernel just returned this descriptor; we own it.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut at = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        at |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: an empty NUL-terminated path, a live `struct mount_attr` with its exact size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map_err(sys("mount_setattr(MOUNT_ATTR_IDMAP)"))?;
    // SAFETY: both paths empty, with the flags that make the descriptors the source and target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map_err(sys("move_mount")).map(drop)
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

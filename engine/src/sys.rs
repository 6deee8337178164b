//! Small safe wrappers around the raw syscalls that nix does not cover: clone3, pidfd_open,
//! and reading a process's start time (to tell a live init from a reused pid).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// clone3's flag to start the child in the cgroup given by `clone_args.cgroup` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), version 2 (with cgroup).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The result of a fork: which side we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Fork with extra clone flags (namespaces, `CLONE_PARENT`, `CLONE_INTO_CGROUP` with `cgroup_fd`).
///
/// Tries clone3 first; when the kernel refuses clone3 (ENOSYS) or `CLONE_INTO_CGROUP`
/// (EINVAL/EBUSY/EOPNOTSUPP) it falls back to clone(2) without the cgroup, and the caller joins
/// the cgroup by writing cgroup.procs. Returns whether the cgroup was entered at clone time.
///
/// The caller must be single-threaded: the child continues with a copy of the parent's memory.
pub fn fork_with_flags(flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<(Forked, bool)> {
    if let Some(fd) = cgroup_fd {
        match clone3(flags | CLONE_INTO_CGROUP, Some(fd)) {
            Ok(f) => return Ok((f, true)),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(
                        libc::ENOSYS | libc::EINVAL | libc::EBUSY | libc::EOPNOTSUPP | libc::E2BIG
                    )
                ) => {}
            Err(e) => return Err(e),
        }
    }
    match clone3(flags, None) {
        Ok(f) => Ok((f, false)),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok((clone_legacy(flags)?, false)),
        Err(e) => Err(e),
    }
}

fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<Forked> {
    // With CLONE_PARENT the kernel takes the exit signal from the caller and refuses any other.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let args = CloneArgs {
        flags,
        exit_signal,
        cgroup: cgroup_fd.map(|fd| fd as u64).unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: clone3 with no stack and no CLONE_VM behaves like fork: the child gets a copy of
    // the address space and returns here with 0. `args` lives across the call and its size is
    // passed exactly. The caller is single-threaded, so no lock can be held by another thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

fn clone_legacy(flags: u64) -> io::Result<Forked> {
    // SAFETY: raw clone(2) with a null stack is fork(2) with extra flags; same argument as clone3.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD as u64) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// pidfd_open(2): a file descriptor that becomes readable when `pid` exits.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signal a process through its pidfd (immune to pid reuse).
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd we own, null siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What /proc/<pid>/stat says about a process: its state letter and start time (clock ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Read /proc/<pid>/stat; `None` when the process does not exist.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&text)
}

fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parses_names_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let st = parse_proc_stat(line).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.start_time, 98765);
    }

    #[test]
    fn proc_stat_of_self_exists() {
        let st = proc_stat(std::process::id() as i32).expect("own stat");
        assert!(st.start_time > 0);
        assert!(proc_stat(i32::MAX).is_none());
    }
}

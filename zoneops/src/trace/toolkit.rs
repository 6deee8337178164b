//! The toolkit: ready bpftrace programs in the spirit of the DTrace Toolkit, each in its own
//! `.bt` file beside this module, and how zonetrace turns their output into rows.
//!
//! Conventions of the programs (the driver relies on them):
//! - they use tracepoints only (kprobes are not available on every kernel this runs on);
//! - they carry no zone predicate: the driver adds one to every probe for `-z`;
//! - an event program prints one line per event with `printf`: the cgroup id, then the
//!   fields of [`Output::Events`], tab-separated;
//! - an aggregation program keys its maps by `cgroup, pid, ..., comm` (comm last, so a comma in
//!   it cannot shift the other keys) and clears its scratch maps in `END`.

use serde_json::Value;

/// How a field's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Str,
}

/// A field of an event line, after the cgroup id.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

const fn int(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Int,
    }
}

const fn text(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Str,
    }
}

/// What a program prints.
#[derive(Debug, Clone, Copy)]
pub enum Output {
    /// One line per event: these fields after the cgroup id (the first two are pid and comm).
    Events(&'static [Field]),
    /// Maps printed when the trace ends, turned into rows by the driver.
    Aggregate(Aggregate),
}

/// The aggregation programs, each with its own map layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `@syscount[cgroup, pid, nr, comm] = count()`.
    Syscount,
    /// `@syslat[cgroup, pid, nr, comm] = hist(ns)`, `@syslat_total[...] = sum(ns)`.
    Syslat,
    /// `@fileio_read|write[cgroup, pid, fd, comm] = sum(bytes)`, `@fileio_fid[pid, fd]` (an
    /// open's id), `@fileio_name[id]` (its path).
    Fileio,
}

/// A toolkit script.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub name: &'static str,
    pub about: &'static str,
    pub program: &'static str,
    /// Every tracepoint the program attaches to, `category:name` (checked before starting).
    pub tracepoints: &'static [&'static str],
    /// Whether the program casts to kernel types (needs the kernel's BTF).
    pub needs_btf: bool,
    /// BPFTRACE_STRLEN: the longest string read (paths); the BPF stack bounds it.
    pub strlen: u32,
    pub output: Output,
}

impl Script {
    /// The column names of the text table (after ZONE), in order.
    pub fn columns(&self) -> Vec<&'static str> {
        match self.output {
            Output::Events(fields) => fields.iter().map(|f| f.name).collect(),
            Output::Aggregate(a) => a.columns().to_vec(),
        }
    }
}

impl Aggregate {
    /// The fields of a row, in order (after zonename).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Aggregate::Syscount => &["pid", "comm", "syscall", "count"],
            Aggregate::Syslat => &["pid", "comm", "syscall", "count", "total_ns", "hist"],
            Aggregate::Fileio => &["pid", "comm", "fd", "read_bytes", "write_bytes", "path"],
        }
    }
}

const PID: Field = int("pid");
const COMM: Field = text("comm");

const SYSCALLS_OPEN: &[&str] = &[
    "syscalls:sys_enter_open",
    "syscalls:sys_enter_openat",
    "syscalls:sys_exit_open",
    "syscalls:sys_exit_openat",
];

/// Every toolkit script, in the order `zonetrace -l` lists them.
pub const SCRIPTS: &[Script] = &[
    Script {
        name: "execsnoop",
        about: "every exec: the program and its first two arguments",
        program: include_str!("execsnoop.bt"),
        tracepoints: &["syscalls:sys_enter_execve", "syscalls:sys_enter_execveat"],
        needs_btf: false,
        strlen: 64,
        output: Output::Events(&[PID, COMM, text("path"), text("arg1"), text("arg2")]),
    },
    Script {
        name: "opensnoop",
        about: "every open: descriptor or errno, and the path",
        program: include_str!("opensnoop.bt"),
        tracepoints: SYSCALLS_OPEN,
        needs_btf: false,
        strlen: 128,
        output: Output::Events(&[PID, COMM, int("fd"), int("errno"), text("path")]),
    },
    Script {
        name: "syscount",
        about: "system calls counted by zone, process and system call",
        program: include_str!("syscount.bt"),
        tracepoints: &["raw_syscalls:sys_enter"],
        needs_btf: false,
        strlen: 64,
        output: Output::Aggregate(Aggregate::Syscount),
    },
    Script {
        name: "syslat",
        about: "system call latency histograms by zone, process and system call",
        program: include_str!("syslat.bt"),
        tracepoints: &["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"],
        needs_btf: false,
        strlen: 64,
        output: Output::Aggregate(Aggregate::Syslat),
    },
    Script {
        name: "tcpconnect",
        about: "active TCP opens: local and remote address and port",
        program: include_str!("tcpconnect.bt"),
        tracepoints: &["sock:inet_sock_set_state"],
        needs_btf: false,
        strlen: 64,
        output: Output::Events(&[
            PID,
            COMM,
            text("saddr"),
            int("sport"),
            text("daddr"),
            int("dport"),
        ]),
    },
    Script {
        name: "tcpaccept",
        about: "accepted TCP connections: descriptor, peer address and port, local port",
        program: include_str!("tcpaccept.bt"),
        tracepoints: &["syscalls:sys_exit_accept", "syscalls:sys_exit_accept4"],
        needs_btf: true,
        strlen: 64,
        output: Output::Events(&[
            PID,
            COMM,
            int("fd"),
            text("raddr"),
            int("rport"),
            int("lport"),
        ]),
    },
    Script {
        name: "oomkill",
        about: "OOM kills: the task that ran the OOM killer and its victim",
        program: include_str!("oomkill.bt"),
        tracepoints: &["oom:mark_victim"],
        needs_btf: false,
        strlen: 64,
        output: Output::Events(&[
            PID,
            COMM,
            int("victim_pid"),
            text("victim_comm"),
            int("total_vm_pages"),
            int("anon_rss_pages"),
        ]),
    },
    Script {
        name: "signals",
        about: "signals sent: signal, target and result",
        program: include_str!("signals.bt"),
        tracepoints: &["signal:signal_generate"],
        needs_btf: false,
        strlen: 64,
        output: Output::Events(&[
            PID,
            COMM,
            int("signal"),
            int("target_pid"),
            text("target_comm"),
            int("result"),
        ]),
    },
    Script {
        name: "fileio",
        about: "bytes read and written by zone, process and file",
        program: include_str!("fileio.bt"),
        tracepoints: &[
            "syscalls:sys_enter_open",
            "syscalls:sys_enter_openat",
            "syscalls:sys_exit_open",
            "syscalls:sys_exit_openat",
            "syscalls:sys_enter_dup2",
            "syscalls:sys_exit_dup2",
            "syscalls:sys_enter_dup3",
            "syscalls:sys_exit_dup3",
            "syscalls:sys_enter_read",
            "syscalls:sys_exit_read",
            "syscalls:sys_enter_write",
            "syscalls:sys_exit_write",
            "syscalls:sys_enter_pread64",
            "syscalls:sys_exit_pread64",
            "syscalls:sys_enter_pwrite64",
            "syscalls:sys_exit_pwrite64",
            "syscalls:sys_enter_readv",
            "syscalls:sys_exit_readv",
            "syscalls:sys_enter_writev",
            "syscalls:sys_exit_writev",
            "syscalls:sys_enter_preadv",
            "syscalls:sys_exit_preadv",
            "syscalls:sys_enter_pwritev",
            "syscalls:sys_exit_pwritev",
        ],
        needs_btf: false,
        strlen: 128,
        output: Output::Aggregate(Aggregate::Fileio),
    },
];

/// The toolkit script called `name`.
pub fn find(name: &str) -> Option<&'static Script> {
    SCRIPTS.iter().find(|s| s.name == name)
}

/// An event line's fields (after the cgroup id) as JSON values, `None` when the line does not
/// have the script's shape.
pub fn event_values(fields: &[Field], parts: &[&str]) -> Option<Vec<Value>> {
    if parts.len() != fields.len() {
        return None;
    }
    fields
        .iter()
        .zip(parts)
        .map(|(f, p)| match f.kind {
            Kind::Int => p.trim().parse::<i64>().ok().map(Value::from),
            Kind::Str => Some(Value::from(*p)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_found_and_has_pid_and_comm_first() {
        for s in SCRIPTS {
            assert_eq!(find(s.name).unwrap().name, s.name);
            let cols = s.columns();
            assert_eq!(&cols[..2], &["pid", "comm"], "{}", s.name);
            assert!(!s.tracepoints.is_empty());
            assert!(!s.program.contains("kprobe"), "{} uses a kprobe", s.name);
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn event_values_follow_the_fields() {
        let f = &[PID, COMM, text("path")];
        let v = event_values(f, &["12", "cat", "/etc/passwd"]).unwrap();
        assert_eq!(v, vec![Value::from(12), "cat".into(), "/etc/passwd".into()]);
        assert!(event_values(f, &["x", "cat", "/"]).is_none());
        assert!(event_values(f, &["1", "cat"]).is_none());
    }
}

//! Scheduling attributes of the process: process.scheduler (sched_setattr), process.ioPriority
//! (ioprio_set), linux.personality (personality), process.execCPUAffinity
//! (sched_setaffinity) and linux.memoryPolicy (set_mempolicy).

use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler,
};

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("scheduler {policy}: {reason}")]
    Scheduler { policy: String, reason: String },
    #[error("ioPriority {class} {priority}: {reason}")]
    IoPriority {
        class: String,
        priority: i64,
        reason: String,
    },
    #[error("personality {0}: {1}")]
    Personality(String, String),
    #[error("execCPUAffinity {list:?}: {reason}")]
    Affinity { list: String, reason: String },
    #[error("memoryPolicy {mode} {nodes:?}: {reason}")]
    MemoryPolicy {
        mode: String,
        nodes: String,
        reason: String,
    },
}

/// The largest NUMA node number a memoryPolicy may name (the kernel's MAX_NUMNODES is at most
/// 1024).
const MAX_NUMA_NODES: usize = 1024;

/// Parses a node list ("0-3,7") into a bitmask of u64 words; None if malformed or too large.
fn parse_nodes(list: &str) -> Option<Vec<u64>> {
    let mut mask = vec![0u64; MAX_NUMA_NODES / 64];
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.parse::<usize>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= MAX_NUMA_NODES {
            return None;
        }
        for n in lo..=hi {
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    Some(mask)
}

/// Apply linux.memoryPolicy to the calling process with set_mempolicy(2); it is inherited by
/// the container's program across execve. Kernel refusals (a node that does not exist or has
/// no memory, a mode that takes no nodes given some) are errors naming the policy.
pub fn set_memory_policy(p: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<(), SchedError> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let nodes = p.nodes().clone().unwrap_or_default();
    let err = |reason: String| SchedError::MemoryPolicy {
        mode: p.mode().to_string(),
        nodes: nodes.clone(),
        reason,
    };
    let mode: libc::c_int = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let flags = p.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        }
    });
    let mask = parse_nodes(&nodes).ok_or_else(|| {
        err(format!(
            "nodes must be a list of node numbers and ranges below {MAX_NUMA_NODES}"
        ))
    })?;
    let empty = mask.iter().all(|w| *w == 0);
    let (ptr, maxnode) = if empty {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), MAX_NUMA_NODES as libc::c_ulong + 1)
    };
    // SAFETY: set_mempolicy reads `maxnode - 1` bits from `ptr`, which holds MAX_NUMA_NODES
    // bits (or is null with maxnode 0).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode | flags, ptr, maxnode) };
    if r < 0 {
        let e = nix::errno::Errno::last();
        return Err(err(format!("set_mempolicy: {}", e.desc())));
    }
    Ok(())
}

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default, Debug, PartialEq, Eq)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy_number(p: LinuxSchedulerPolicy) -> Result<u32, String> {
    Ok(match p {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => return Err("SCHED_ISO is not in Linux".into()),
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    })
}

/// The runtime spec's names of two scheduler flags that oci-spec parses under other names
/// (`SCHED_FLAG_RESET_ON_FORK` as `SCHED_RESET_ON_FORK`, `SCHED_FLAG_DL_OVERRUN` as
/// `SCHED_FLAG_D_L_OVERRUN`): rewritten in a process object's `scheduler.flags` so a config
/// in the spec's words parses. Whether anything was rewritten.
pub fn spec_flag_names(process: &mut serde_json::Value) -> bool {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return false;
    };
    let mut changed = false;
    for f in flags.iter_mut() {
        let ours = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = serde_json::Value::from(ours);
        changed = true;
    }
    changed
}

fn flag_bits(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

fn sched_attr(s: &Scheduler) -> Result<SchedAttr, String> {
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(*s.policy())?,
        flags: s
            .flags()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .fold(0, |acc, f| acc | flag_bits(*f)),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    })
}

/// Apply process.scheduler to the calling process.
pub fn set_scheduler(s: &Scheduler) -> Result<(), SchedError> {
    let err = |reason: String| SchedError::Scheduler {
        policy: format!("{:?}", s.policy()),
        reason,
    };
    let attr = sched_attr(s).map_err(err)?;
    // SAFETY: sched_setattr(0 = self, attr, 0) reads `attr.size` bytes from a live struct.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        return Err(err(std::io::Error::last_os_error().to_string()));
    }
    Ok(())
}

/// The ioprio value of ioprio_set(2): class in the top bits, data below.
fn ioprio_value(p: &LinuxIOPriority) -> Result<i32, String> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err("priority must be from 0 to 7".into());
    }
    Ok((class << 13) | p.priority() as i32)
}

/// Apply process.ioPriority to the calling process.
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<(), SchedError> {
    let err = |reason: String| SchedError::IoPriority {
        class: format!("{:?}", p.class()),
        priority: p.priority(),
        reason,
    };
    let value = ioprio_value(p).map_err(err)?;
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    if r != 0 {
        return Err(err(std::io::Error::last_os_error().to_string()));
    }
    Ok(())
}

/// Apply linux.personality to the calling process (LINUX or LINUX32 domains).
pub fn set_personality(p: &LinuxPersonality) -> Result<(), SchedError> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(SchedError::Personality(
            format!("{:?}", p.flags()),
            "personality flags are not supported".into(),
        ));
    }
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes one integer.
    let r = unsafe { libc::personality(persona) };
    if r < 0 {
        return Err(SchedError::Personality(
            format!("{:?}", p.domain()),
            std::io::Error::last_os_error().to_string(),
        ));
    }
    Ok(())
}

/// Parse a CPU list like "0-3,7" into CPU numbers.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} goes backwards"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    if cpus.is_empty() {
        return Err("no CPU listed".into());
    }
    Ok(cpus)
}

fn set_affinity(pid: i32, list: &str) -> Result<(), SchedError> {
    let err = |reason: String| SchedError::Affinity {
        list: list.to_string(),
        reason,
    };
    let cpus = parse_cpu_list(list).map_err(err)?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c).map_err(|e| err(e.to_string()))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set)
        .map_err(|e| err(e.to_string()))
}

/// The affinity an exec'd process (`pid`) starts with, before it joins the container's cgroup.
pub fn set_initial_affinity(pid: i32, a: &ExecCPUAffinity) -> Result<(), SchedError> {
    match a.initial() {
        Some(list) if !list.is_empty() => set_affinity(pid, list),
        _ => Ok(()),
    }
}

/// The affinity the calling exec'd process runs with, once inside the container's cgroup.
pub fn set_final_affinity(a: &ExecCPUAffinity) -> Result<(), SchedError> {
    match a.cpu_affinity_final() {
        Some(list) if !list.is_empty() => set_affinity(0, list),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_cpuset_files() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn scheduler_attributes_map_to_the_kernel_struct() {
        let s: Scheduler = serde_json::from_str(
            r#"{"policy":"SCHED_BATCH","nice":5,"flags":["SCHED_RESET_ON_FORK"]}"#,
        )
        .unwrap();
        let a = sched_attr(&s).unwrap();
        assert_eq!(a.policy, 3);
        assert_eq!(a.nice, 5);
        assert_eq!(a.flags, 1);
        assert_eq!(a.size, 56);
    }

    #[test]
    fn the_spec_names_of_scheduler_flags_parse() {
        let mut p = serde_json::json!({"scheduler": {"policy": "SCHED_OTHER",
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_RECLAIM"]}});
        assert!(spec_flag_names(&mut p));
        let s: Scheduler = serde_json::from_value(p["scheduler"].take()).unwrap();
        assert_eq!(sched_attr(&s).unwrap().flags, 0x01 | 0x04 | 0x02);
        assert!(!spec_flag_names(&mut serde_json::json!({"args": ["x"]})));
    }

    #[test]
    fn memory_policy_nodes_parse_as_ranges() {
        let m = parse_nodes("0-2,5, 64").unwrap();
        assert_eq!(m[0], 0b100111);
        assert_eq!(m[1], 1);
        assert_eq!(parse_nodes("").unwrap().iter().sum::<u64>(), 0);
        assert!(parse_nodes("3-1").is_none());
        assert!(parse_nodes("x").is_none());
        assert!(parse_nodes("1024").is_none());
    }

    #[test]
    fn io_priority_packs_class_and_level() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":0}"#).unwrap();
        assert_eq!(ioprio_value(&p).unwrap(), 3 << 13);
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":9}"#).unwrap();
        assert!(ioprio_value(&p).is_err());
    }
}

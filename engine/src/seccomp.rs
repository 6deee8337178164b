//! OCI seccomp profile → BPF programs (seccompiler), and installing them.
//!
//! # How one OCI profile becomes several stacked filters
//!
//! libseccomp builds one BPF program in which every rule carries its own action. seccompiler
//! builds programs with exactly one *match* action and one *mismatch* action each, so a profile
//! is split into several filters and the kernel combines them: for every syscall it runs all
//! installed filters and keeps the result with the highest precedence
//! (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE > LOG > ALLOW); between two
//! results of the same kind (two ERRNOs with different errnos) the most recently installed
//! filter wins.
//!
//! With `D` the default action and `R(c)` the rules that match a call `c` (syscall number and
//! every argument condition of the rule), we install:
//!
//! * one *action filter* per distinct rule action `A` other than ALLOW:
//!   `A` if some rule with action `A` matches, else ALLOW;
//! * one *default filter* (omitted when `D` is ALLOW):
//!   ALLOW if *any* rule (whatever its action) matches, else `D`;
//! * one *ABI guard* (hand-written, 9 instructions): KILL_PROCESS for any call of an ABI the
//!   profile does not filter (i386 without `SCMP_ARCH_X86`, x32 without `SCMP_ARCH_X32`),
//!   ALLOW otherwise; syscall -1 passes, as in libseccomp.
//!
//! The default filter starts with runc's ENOSYS stub: a call whose number is above every
//! syscall the profile names (for its ABI) gets ENOSYS, whatever the default action.
//!
//! The combined result is therefore `D` when `R(c)` is empty (the default filter says `D`, every
//! action filter says ALLOW), and the highest-precedence action in `R(c)` otherwise (the default
//! filter says ALLOW). So a syscall named with ALLOW under a default ERRNO is allowed, and a
//! syscall with several rules on different arguments gets, per call, the action of the rule
//! that matches. When rules with *different* actions match the very same call, libseccomp's
//! answer depends on how it happens to build its decision tree; here it is well defined: the
//! highest-precedence action wins, and between two ERRNO (or two TRACE) rules with different
//! values the one whose action appears first in the profile wins (its filter is installed later).
//!
//! Like runc, a rule whose action equals the default action is dropped (libseccomp refuses such
//! rules), and a rule that has several conditions on the same argument index is split into one
//! rule per condition, OR'ed (runc's historical behaviour, kept for compatibility).
//!
//! ## Installing stacked filters
//!
//! Every filter already installed also filters the `seccomp(2)` calls that install the next
//! ones. [`compile`] orders the filters so that each filter that could deny
//! `seccomp(SECCOMP_SET_MODE_FILTER, flags, …)` is installed last (the argument check uses the
//! profile's flags; conditions on the pointer argument count as "may match"). A profile where
//! two filters could deny that call cannot be installed as stacked filters and is refused.
//! This reordering can only change the ERRNO/TRACE tie rule above, and only for rules on
//! `seccomp` itself.
//!
//! ## Architectures
//!
//! The host is x86_64 and seccompiler embeds an arch check in each program. `SCMP_ARCH_X86_64`
//! and `SCMP_ARCH_NATIVE` are the filtered ABI. With `SCMP_ARCH_X86` in the profile, i386
//! (`int 0x80`, 32-bit programs) calls are filtered by the same rules with i386 numbers: each
//! filter is two seccompiler programs (x86_64 and i386 numbers) behind one dispatch on the arch
//! ([`join_arch_programs`]); without it they kill the process. x32 calls reach the filter as
//! x86_64 calls whose number has bit 30 set; with `SCMP_ARCH_X32` in the profile, the same
//! rules with the x32 numbers of their syscalls ([`syscall_number_x32`]: the x86_64 number with
//! bit 30, or the x32-only 512-547 entry for the calls x32 has its own version of, as in
//! libseccomp) make one more filter per filter above ([`Plan::x32_bpf`]: three ABIs do not fit
//! one 4096-instruction program), which decides x32 calls only, while the x86_64 filters let
//! x32 calls pass ([`x32_prefix`]); so x32 programs are filtered by the profile's rules. Without it, x32 calls kill
//! the process (the ABI guard), which also closes the hole seccompiler alone would leave (x32
//! numbers match no rule). The ENOSYS stub leaves x32 calls to the rules. Other architectures in the
//! list (ARM, MIPS, …) can never occur on an x86_64 kernel and are ignored, which is exactly
//! what libseccomp does with them. Unknown architecture names are rejected by oci-spec when the
//! profile is parsed.
//!
//! ## Syscall names
//!
//! Names are resolved with the complete x86_64 table at the bottom of this file (kernel 6.18).
//! As in runc, names unknown on x86_64 (`socketcall`, `ipc`, or newer than the table) are
//! skipped, not errors.
//!
//! ## Actions and values
//!
//! `SCMP_ACT_KILL` is KILL_THREAD. ERRNO returns `errnoRet` (EPERM when absent, the default
//! action uses `defaultErrnoRet`); TRACE passes `errnoRet` (EPERM when absent) to the tracer.
//! As the runtime spec requires, `errnoRet` on any other action is an error; values above 65535
//! do not fit the seccomp return data and are refused (the kernel itself clamps errnos above
//! 4095). `SCMP_ACT_NOTIFY` gives SECCOMP_RET_USER_NOTIF from a filter of its own, installed
//! with SECCOMP_FILTER_FLAG_NEW_LISTENER ([`install_with_flags`] returns the listener fd, which
//! the runtime hands to the profile's seccomp agent: see `agent`); as in runc, it cannot be the
//! default action nor apply to `write` (init still writes to its parent after installing).
//! `SCMP_CMP_MASKED_EQ` follows libseccomp: `(arg & value) == valueTwo`; when `valueTwo` has
//! bits outside the mask the condition can never hold and its rule is dropped. All comparisons
//! are on the full 64-bit argument, as libseccomp does on 64-bit ABIs.
//!
//! ## Flags
//!
//! TSYNC, LOG and SPEC_ALLOW are passed to `seccomp(2)` for every filter ([`filter_flags`],
//! [`install_with_flags`]). WAIT_KILLABLE_RECV is passed with the notify filter only (the
//! kernel rejects it without a listener, and libseccomp ignores it when no rule uses NOTIFY);
//! TSYNC is not passed with it (the kernel refuses TSYNC with NEW_LISTENER; the process that
//! installs is single-threaded).

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use seccompiler::{
    sock_filter, BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp,
    SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// Why a seccomp profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Invalid(String),
    /// runc's words.
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite,
    /// runc's words.
    #[error("SCMP_ACT_NOTIFY cannot be used as default action")]
    NotifyDefault,
    #[error("seccomp: errnoRet {value} of {place} does not fit the 16-bit seccomp return data (max 65535)")]
    ErrnoRetRange { place: String, value: u32 },
    #[error("seccomp: {place} sets errnoRet {value}, but action {action} takes no errno")]
    ErrnoRetUnexpected {
        place: String,
        action: LinuxSeccompAction,
        value: u32,
    },
    #[error("seccomp: argument index {index} in {place} is out of range (0-5)")]
    ArgIndex { place: String, index: usize },
    #[error("seccomp: the profile denies seccomp(2) itself in {filters}; these stacked filters cannot all be installed")]
    Unorderable { filters: String },
    #[error("seccomp: generating BPF for the {filter} filter: {source}")]
    Bpf {
        filter: String,
        #[source]
        source: BackendError,
    },
    #[error("seccomp: filter {index} has {len} instructions; a filter has 1 to 4096")]
    FilterLength { index: usize, len: usize },
    #[error("seccomp: installing filter {index} of {count} failed: {errno}{hint}")]
    Install {
        index: usize,
        count: usize,
        errno: Errno,
        hint: &'static str,
    },
    #[error(
        "seccomp: installing filter {index} with TSYNC: thread {tid} could not be synchronized"
    )]
    ThreadSync { index: usize, tid: i64 },
}

/// Largest classic BPF program the kernel accepts (`BPF_MAXINSNS`).
const BPF_MAXINSNS: usize = 4096;

/// `AUDIT_ARCH_X86_64`: `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_I386`: `EM_386 | __AUDIT_ARCH_LE`.
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// `__X32_SYSCALL_BIT`: x32 calls reach the filter as x86_64 calls with this bit in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const SECCOMP_DATA_NR_OFFSET: u32 = 0;
const SECCOMP_DATA_ARCH_OFFSET: u32 = 4;

/// Compile an OCI profile into the filters to install, in install order.
///
/// The order matters (see the module documentation); install them with
/// [`install_with_flags`] and the profile's [`filter_flags`], or [`install`].
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    let policy = Policy::from_profile(profile)?;
    let plans = order_for_install(policy.plans(), filter_flags(profile))?;
    let mut filters = Vec::with_capacity(plans.len() + 1);
    filters.push(abi_guard(policy.i386.is_some(), policy.x32.is_some()));
    for plan in &plans {
        filters.extend(plan.x32_bpf()?);
        let mut program = plan.to_bpf()?;
        if plan.on_match == Action::Allow {
            // The default filter: calls newer than the profile get ENOSYS before its default.
            let last32 = policy.i386.as_ref().map(|a| a.last);
            program.splice(0..0, enosys_prefix(policy.last, last32));
            if program.len() > BPF_MAXINSNS {
                return Err(SeccompError::Bpf {
                    filter: plan.to_string(),
                    source: BackendError::FilterTooLarge(program.len()),
                });
            }
        }
        filters.push(program);
    }
    Ok(filters)
}

/// Install compiled filters on the calling thread (no_new_privs or CAP_SYS_ADMIN needed).
///
/// Uses no seccomp(2) flags; see [`install_with_flags`] to honour the profile's flags. A notify
/// listener is closed at once (notified calls then fail with ENOSYS).
pub fn install(filters: &[BpfProgram]) -> Result<(), SeccompError> {
    install_with_flags(filters, FilterFlags::default()).map(drop)
}

/// Install compiled filters in the given order with `seccomp(SECCOMP_SET_MODE_FILTER, flags)`.
///
/// Needs no_new_privs already set, or CAP_SYS_ADMIN. Allocates nothing unless it fails, so it
/// is usable right before `execve` in a freshly forked child. The notify filter (a profile with
/// SCMP_ACT_NOTIFY rules has one) is installed with SECCOMP_FILTER_FLAG_NEW_LISTENER and its
/// listener fd (close-on-exec) returned: whoever holds it answers the notified calls; once
/// every copy is closed they fail with ENOSYS.
pub fn install_with_flags(
    filters: &[BpfProgram],
    flags: FilterFlags,
) -> Result<Option<OwnedFd>, SeccompError> {
    let count = filters.len();
    let mut listener = None;
    for (index, filter) in filters.iter().enumerate() {
        let notify = is_notify_filter(filter);
        let bits = if notify {
            (flags.bits() & !libc::SECCOMP_FILTER_FLAG_TSYNC)
                | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        } else {
            flags.bits() & !WAIT_KILLABLE_RECV
        };
        let rc = install_one(filter, FilterFlags(bits), index + 1, count)?;
        if notify {
            let fd = i32::try_from(rc).map_err(|_| SeccompError::FilterLength {
                index: index + 1,
                len: filter.len(),
            })?;
            // SAFETY: with NEW_LISTENER, seccomp(2) returned a new fd that nothing else owns.
            listener = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Ok(listener)
}

/// Whether a compiled filter returns SECCOMP_RET_USER_NOTIF (the notify rules' filter).
fn is_notify_filter(filter: &[sock_filter]) -> bool {
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    filter.iter().any(|i| {
        i.code == ret && i.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_USER_NOTIF
    })
}

/// The seccomp(2) flags a profile asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterFlags(libc::c_ulong);

impl FilterFlags {
    /// The raw `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub const fn bits(self) -> libc::c_ulong {
        self.0
    }
}

/// The seccomp(2) flags for a profile's `flags` list (WAIT_KILLABLE_RECV is kept for the notify
/// filter only: see [`install_with_flags`]).
pub fn filter_flags(profile: &LinuxSeccomp) -> FilterFlags {
    let bits = profile
        .flags()
        .iter()
        .flatten()
        .fold(0, |bits, flag| bits | flag_bits(*flag));
    FilterFlags(bits)
}

fn flag_bits(flag: LinuxSeccompFilterFlag) -> libc::c_ulong {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => WAIT_KILLABLE_RECV,
    }
}

/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (Linux 5.19).
const WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;

/// Whether the profile has a SCMP_ACT_NOTIFY rule: its filter then gets a listener, for the
/// seccomp agent at `listenerPath`.
pub fn uses_notify(profile: &LinuxSeccomp) -> bool {
    profile
        .syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Actions accepted in profiles, for the `features` command.
pub fn supported_actions() -> Vec<&'static str> {
    vec![
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP",
    ]
}

/// Argument operators accepted in profiles, for the `features` command.
pub fn supported_operators() -> Vec<&'static str> {
    vec![
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_LE",
        "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
    ]
}

/// Host architectures accepted in profiles, for the `features` command. x86_64, i386 and x32
/// calls are filtered rule by rule (see the module documentation).
pub fn supported_archs() -> Vec<&'static str> {
    vec!["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
}

/// Every x86_64 syscall name this runtime resolves (kernel 6.18's table), in byte order.
pub fn known_syscalls() -> impl Iterator<Item = &'static str> {
    X86_64_SYSCALLS.iter().map(|(name, _)| *name)
}

/// Filter flags the profile format knows, for the `features` command.
pub fn known_flags() -> Vec<&'static str> {
    vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
}

/// Filter flags that take effect when installing, for the `features` command
/// (WAIT_KILLABLE_RECV on the notify filter).
pub fn supported_flags() -> Vec<&'static str> {
    vec![
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
}

/// A resolved action, with its return data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Trace(u16),
    /// SECCOMP_RET_USER_NOTIF (see [`NOTIFY_STANDIN`]).
    Notify,
    Log,
    Allow,
}

/// seccompiler has no USER_NOTIF action: the notify filter is generated with TRACE(0xfffe) as
/// its match action, which [`Plan::to_bpf`] then turns into SECCOMP_RET_USER_NOTIF. The notify
/// filter's other returns are ALLOW and the arch check's KILL_PROCESS, so nothing else is hit.
const NOTIFY_STANDIN: u16 = 0xfffe;

impl Action {
    /// Whether the syscall is executed under this action (so seccomp(2) still works).
    fn runs_syscall(self) -> bool {
        matches!(self, Action::Log | Action::Allow)
    }
}

impl From<Action> for SeccompAction {
    fn from(action: Action) -> Self {
        match action {
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno(errno) => SeccompAction::Errno(u32::from(errno)),
            Action::Trace(value) => SeccompAction::Trace(u32::from(value)),
            Action::Notify => SeccompAction::Trace(u32::from(NOTIFY_STANDIN)),
            Action::Log => SeccompAction::Log,
            Action::Allow => SeccompAction::Allow,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => f.write_str("SCMP_ACT_KILL_PROCESS"),
            Action::KillThread => f.write_str("SCMP_ACT_KILL_THREAD"),
            Action::Trap => f.write_str("SCMP_ACT_TRAP"),
            Action::Errno(errno) => write!(f, "SCMP_ACT_ERRNO({errno})"),
            Action::Trace(value) => write!(f, "SCMP_ACT_TRACE({value})"),
            Action::Notify => f.write_str("SCMP_ACT_NOTIFY"),
            Action::Log => f.write_str("SCMP_ACT_LOG"),
            Action::Allow => f.write_str("SCMP_ACT_ALLOW"),
        }
    }
}

/// Resolve an OCI action and its errnoRet.
fn resolve_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    place: &dyn Fn() -> String,
) -> Result<Action, SeccompError> {
    let data = || {
        let value = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoRetRange {
            place: place(),
            value,
        })
    };
    let resolved = match action {
        LinuxSeccompAction::ScmpActErrno => return Ok(Action::Errno(data()?)),
        LinuxSeccompAction::ScmpActTrace => return Ok(Action::Trace(data()?)),
        LinuxSeccompAction::ScmpActNotify => Action::Notify,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
        LinuxSeccompAction::ScmpActTrap => Action::Trap,
        LinuxSeccompAction::ScmpActLog => Action::Log,
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
    };
    match errno_ret {
        Some(value) => Err(SeccompError::ErrnoRetUnexpected {
            place: place(),
            action,
            value,
        }),
        None => Ok(resolved),
    }
}

/// One argument comparison; `value` is `valueTwo` for MASKED_EQ (the mask is in the operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq(u64),
}

impl Cond {
    /// Parse one OCI argument; `None` when the comparison can never hold.
    fn from_arg(
        arg: &LinuxSeccompArg,
        place: &dyn Fn() -> String,
    ) -> Result<Option<Self>, SeccompError> {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|index| *index <= 5)
            .ok_or_else(|| SeccompError::ArgIndex {
                place: place(),
                index: arg.index(),
            })?;
        let (op, value) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => (Op::Ne, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (Op::Lt, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (Op::Le, arg.value()),
            LinuxSeccompOperator::ScmpCmpEq => (Op::Eq, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (Op::Ge, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (Op::Gt, arg.value()),
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                let mask = arg.value();
                let wanted = arg.value_two().unwrap_or(0);
                if wanted & !mask != 0 {
                    return Ok(None);
                }
                (Op::MaskedEq(mask), wanted)
            }
        };
        Ok(Some(Cond { index, op, value }))
    }

    /// Whether the comparison holds for an argument value.
    fn holds(self, arg: u64) -> bool {
        match self.op {
            Op::Ne => arg != self.value,
            Op::Lt => arg < self.value,
            Op::Le => arg <= self.value,
            Op::Eq => arg == self.value,
            Op::Ge => arg >= self.value,
            Op::Gt => arg > self.value,
            Op::MaskedEq(mask) => arg & mask == self.value,
        }
    }

    /// Truth for a call whose first `known.len()` arguments are known.
    fn truth(self, known: &[u64]) -> Truth {
        match known.get(usize::from(self.index)) {
            Some(arg) if self.holds(*arg) => Truth::Yes,
            Some(_) => Truth::No,
            None => Truth::Maybe,
        }
    }

    fn to_seccompiler(self) -> Result<SeccompCondition, BackendError> {
        let op = match self.op {
            Op::Ne => SeccompCmpOp::Ne,
            Op::Lt => SeccompCmpOp::Lt,
            Op::Le => SeccompCmpOp::Le,
            Op::Eq => SeccompCmpOp::Eq,
            Op::Ge => SeccompCmpOp::Ge,
            Op::Gt => SeccompCmpOp::Gt,
            Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
        };
        SeccompCondition::new(self.index, SeccompCmpArgLen::Qword, op, self.value)
    }
}

/// Three-valued result of matching a call whose arguments are partly known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truth {
    No,
    Maybe,
    Yes,
}

/// The condition sets (OR'ed; each one AND'ed) of one OCI syscall entry.
fn condition_sets(
    args: &[LinuxSeccompArg],
    place: &dyn Fn() -> String,
) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let conds = args
        .iter()
        .map(|arg| Cond::from_arg(arg, place))
        .collect::<Result<Vec<_>, _>>()?;
    let shares_index = args
        .iter()
        .enumerate()
        .any(|(i, arg)| args[..i].iter().any(|other| other.index() == arg.index()));
    if shares_index {
        // runc: one rule per condition when an argument index repeats.
        return Ok(conds.into_iter().flatten().map(|cond| vec![cond]).collect());
    }
    Ok(conds
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .into_iter()
        .collect())
}

/// Which calls of one syscall match: every call, or any of several AND'ed condition sets.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Match {
    Always,
    AnyOf(Vec<Vec<Cond>>),
}

impl Match {
    fn truth(&self, known: &[u64]) -> Truth {
        let Match::AnyOf(sets) = self else {
            return Truth::Yes;
        };
        let set_truth = |set: &Vec<Cond>| {
            set.iter()
                .fold(Truth::Yes, |acc, cond| match (acc, cond.truth(known)) {
                    (Truth::No, _) | (_, Truth::No) => Truth::No,
                    (Truth::Yes, Truth::Yes) => Truth::Yes,
                    _ => Truth::Maybe,
                })
        };
        sets.iter()
            .fold(Truth::No, |acc, set| match (acc, set_truth(set)) {
                (Truth::Yes, _) | (_, Truth::Yes) => Truth::Yes,
                (Truth::No, Truth::No) => Truth::No,
                _ => Truth::Maybe,
            })
    }
}

/// Add one condition set (empty: unconditional) for syscall `nr`.
fn add_rule(rules: &mut BTreeMap<i64, Match>, nr: i64, conds: &[Cond]) {
    if conds.is_empty() {
        rules.insert(nr, Match::Always);
        return;
    }
    match rules.entry(nr).or_insert_with(|| Match::AnyOf(Vec::new())) {
        Match::Always => {}
        Match::AnyOf(sets) => {
            if !sets.iter().any(|set| set.as_slice() == conds) {
                sets.push(conds.to_vec());
            }
        }
    }
}

/// One resolved rule: `action` for syscall `nr` when all `conds` hold.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    action: Action,
    nr: i64,
    conds: Vec<Cond>,
}

/// A profile with actions resolved, names resolved and unusable rules dropped.
#[derive(Debug)]
struct Policy {
    default: Action,
    entries: Vec<Entry>,
    /// The highest x86_64 number the profile names (any rule, any action).
    last: i64,
    /// i386 rules, when the profile's `architectures` has `SCMP_ARCH_X86`.
    i386: Option<Arch32>,
    /// x32 rules (x32 numbers), when the profile's `architectures` has `SCMP_ARCH_X32`.
    x32: Option<Vec<Entry>>,
}

/// The same rules resolved with i386 numbers.
#[derive(Debug)]
struct Arch32 {
    entries: Vec<Entry>,
    last: i64,
}

impl Policy {
    fn from_profile(profile: &LinuxSeccomp) -> Result<Self, SeccompError> {
        let default = resolve_action(
            profile.default_action(),
            profile.default_errno_ret(),
            &|| "defaultAction".to_string(),
        )?;
        if default == Action::Notify {
            return Err(SeccompError::NotifyDefault);
        }
        let wants_i386 = profile
            .architectures()
            .iter()
            .flatten()
            .any(|a| *a == oci_spec::runtime::Arch::ScmpArchX86);
        let wants_x32 = profile
            .architectures()
            .iter()
            .flatten()
            .any(|a| *a == oci_spec::runtime::Arch::ScmpArchX32);
        let mut entries = Vec::new();
        let mut entries32 = Vec::new();
        let mut entries_x32 = Vec::new();
        let (mut last, mut last32) = (-1, -1);
        for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
            let place = || format!("syscalls[{i}] ({})", syscall.names().join(", "));
            for name in syscall.names() {
                last = last.max(syscall_number(name).unwrap_or(-1));
                last32 = last32.max(syscall_number_i386(name).unwrap_or(-1));
            }
            match resolve_action(syscall.action(), syscall.errno_ret(), &place)? {
                Action::Notify if syscall.names().iter().any(|n| n == "write") => {
                    return Err(SeccompError::NotifyWrite)
                }
                action => {
                    entries.extend(Self::entries_of(
                        syscall,
                        action,
                        default,
                        &place,
                        syscall_number,
                    )?);
                    if wants_x32 {
                        entries_x32.extend(Self::entries_of(
                            syscall,
                            action,
                            default,
                            &place,
                            syscall_number_x32,
                        )?);
                    }
                    if wants_i386 {
                        entries32.extend(Self::entries_of(
                            syscall,
                            action,
                            default,
                            &place,
                            syscall_number_i386,
                        )?);
                    }
                }
            }
        }
        Ok(Policy {
            default,
            entries,
            last,
            i386: wants_i386.then_some(Arch32 {
                entries: entries32,
                last: last32,
            }),
            x32: wants_x32.then_some(entries_x32),
        })
    }

    /// The entries of one OCI syscall rule (none when its action is the default one).
    fn entries_of(
        syscall: &LinuxSyscall,
        action: Action,
        default: Action,
        place: &dyn Fn() -> String,
        number: fn(&str) -> Option<i64>,
    ) -> Result<Vec<Entry>, SeccompError> {
        let sets = condition_sets(syscall.args().as_deref().unwrap_or_default(), place)?;
        if action == default {
            return Ok(Vec::new());
        }
        let numbers = syscall.names().iter().filter_map(|name| number(name));
        Ok(numbers
            .flat_map(|nr| {
                sets.iter().map(move |conds| Entry {
                    action,
                    nr,
                    conds: conds.clone(),
                })
            })
            .collect())
    }

    fn rules_where(&self, keep: impl Fn(&Entry) -> bool) -> BTreeMap<i64, Match> {
        rules_of(&self.entries, keep)
    }

    /// The i386 rules for the same selection, when i386 is filtered.
    fn rules32_where(&self, keep: impl Fn(&Entry) -> bool) -> Option<BTreeMap<i64, Match>> {
        self.i386.as_ref().map(|a| rules_of(&a.entries, keep))
    }

    /// The x32 rules for the same selection, when x32 is filtered.
    fn rules_x32_where(&self, keep: impl Fn(&Entry) -> bool) -> Option<BTreeMap<i64, Match>> {
        self.x32.as_ref().map(|entries| rules_of(entries, keep))
    }

    /// The filters, before install ordering: action filters, the action that appears first in
    /// the profile last (so it wins same-kind ties), then the default filter.
    fn plans(&self) -> Vec<Plan> {
        let mut actions: Vec<Action> = Vec::new();
        for entry in &self.entries {
            if entry.action != Action::Allow && !actions.contains(&entry.action) {
                actions.push(entry.action);
            }
        }
        let mut plans: Vec<Plan> = actions
            .iter()
            .rev()
            .map(|&action| Plan {
                on_match: action,
                on_mismatch: Action::Allow,
                rules: self.rules_where(|entry| entry.action == action),
                rules32: self.rules32_where(|entry| entry.action == action),
                rules_x32: self.rules_x32_where(|entry| entry.action == action),
            })
            .collect();
        if self.default != Action::Allow {
            plans.push(Plan {
                on_match: Action::Allow,
                on_mismatch: self.default,
                rules: self.rules_where(|_| true),
                rules32: self.rules32_where(|_| true),
                rules_x32: self.rules_x32_where(|_| true),
            });
        }
        plans
    }
}

/// One filter to generate: `on_match` for calls matching `rules`, `on_mismatch` otherwise.
#[derive(Debug)]
struct Plan {
    on_match: Action,
    on_mismatch: Action,
    rules: BTreeMap<i64, Match>,
    /// The same selection with i386 numbers, when the profile filters i386.
    rules32: Option<BTreeMap<i64, Match>>,
    /// The same selection with x32 numbers, when the profile filters x32: a filter of its own
    /// ([`Plan::x32_bpf`]), as three ABIs' rules do not fit one program.
    rules_x32: Option<BTreeMap<i64, Match>>,
}

fn rules_of(entries: &[Entry], keep: impl Fn(&Entry) -> bool) -> BTreeMap<i64, Match> {
    let mut rules = BTreeMap::new();
    for entry in entries.iter().filter(|entry| keep(entry)) {
        add_rule(&mut rules, entry.nr, &entry.conds);
    }
    rules
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.on_match == Action::Allow {
            write!(f, "default {}", self.on_mismatch)
        } else {
            write!(f, "{} rules", self.on_match)
        }
    }
}

impl Plan {
    /// Whether this filter may stop `seccomp(SECCOMP_SET_MODE_FILTER, flags, …)`.
    fn may_block_install(&self, flags: FilterFlags) -> bool {
        let known = [u64::from(libc::SECCOMP_SET_MODE_FILTER), flags.bits()];
        let truth = self
            .rules
            .get(&libc::SYS_seccomp)
            .map_or(Truth::No, |rule| rule.truth(&known));
        (truth != Truth::No && !self.on_match.runs_syscall())
            || (truth != Truth::Yes && !self.on_mismatch.runs_syscall())
    }

    /// The filter for x86_64 and (when filtered) i386 calls; x32 calls pass it (ALLOW) when
    /// the profile filters x32, for [`Plan::x32_bpf`] to decide.
    fn to_bpf(&self) -> Result<BpfProgram, SeccompError> {
        let mut program = self.native_and_i386_bpf()?;
        if self.rules_x32.is_some() {
            program.splice(0..0, x32_prefix(false));
        }
        self.checked_len(program)
    }

    /// The filter for x32 calls (every other call is ALLOWed by it), when the profile filters
    /// x32; `None` when it would allow everything (no x32 rule of this action).
    fn x32_bpf(&self) -> Result<Option<BpfProgram>, SeccompError> {
        let Some(rules) = &self.rules_x32 else {
            return Ok(None);
        };
        if rules.is_empty() && self.on_mismatch == Action::Allow {
            return Ok(None);
        }
        let mut program = self.program(rules)?;
        program.splice(0..0, x32_prefix(true));
        self.checked_len(program).map(Some)
    }

    fn checked_len(&self, program: BpfProgram) -> Result<BpfProgram, SeccompError> {
        if program.len() > BPF_MAXINSNS {
            return Err(SeccompError::Bpf {
                filter: self.to_string(),
                source: BackendError::FilterTooLarge(program.len()),
            });
        }
        Ok(program)
    }

    fn native_and_i386_bpf(&self) -> Result<BpfProgram, SeccompError> {
        let native = self.program(&self.rules)?;
        let Some(rules32) = &self.rules32 else {
            return Ok(native);
        };
        let compat = self.program(rules32)?;
        let joined = join_arch_programs(&native, &compat);
        if joined.len() > BPF_MAXINSNS {
            return Err(SeccompError::Bpf {
                filter: self.to_string(),
                source: BackendError::FilterTooLarge(joined.len()),
            });
        }
        Ok(joined)
    }

    /// seccompiler's program for `rules` (numbers of one ABI), with its x86_64 arch check.
    fn program(&self, plan_rules: &BTreeMap<i64, Match>) -> Result<BpfProgram, SeccompError> {
        let wrap = |source| SeccompError::Bpf {
            filter: self.to_string(),
            source,
        };
        let mut rules = BTreeMap::new();
        for (nr, matching) in plan_rules {
            let list = match matching {
                Match::Always => Vec::new(),
                Match::AnyOf(sets) => sets
                    .iter()
                    .map(|set| {
                        let conds = set.iter().map(|cond| cond.to_seccompiler());
                        SeccompRule::new(conds.collect::<Result<_, _>>()?)
                    })
                    .collect::<Result<_, _>>()
                    .map_err(wrap)?,
            };
            rules.insert(*nr, list);
        }
        let filter = SeccompFilter::new(
            rules,
            self.on_mismatch.into(),
            self.on_match.into(),
            TargetArch::x86_64,
        )
        .map_err(wrap)?;
        let mut program = BpfProgram::try_from(filter).map_err(wrap)?;
        if self.on_match == Action::Notify {
            let standin = libc::SECCOMP_RET_TRACE | u32::from(NOTIFY_STANDIN);
            let ret = (libc::BPF_RET | libc::BPF_K) as u16;
            for insn in program
                .iter_mut()
                .filter(|i| i.code == ret && i.k == standin)
            {
                insn.k = libc::SECCOMP_RET_USER_NOTIF;
            }
        }
        Ok(program)
    }
}

/// Put the (at most one) filter that may deny the installing seccomp(2) call last.
fn order_for_install(plans: Vec<Plan>, flags: FilterFlags) -> Result<Vec<Plan>, SeccompError> {
    let (blocking, mut ordered): (Vec<Plan>, Vec<Plan>) = plans
        .into_iter()
        .partition(|plan| plan.may_block_install(flags));
    if blocking.len() > 1 {
        let names: Vec<String> = blocking.iter().map(Plan::to_string).collect();
        return Err(SeccompError::Unorderable {
            filters: names.join(" and "),
        });
    }
    ordered.extend(blocking);
    Ok(ordered)
}

/// One classic-BPF instruction; a statement has both jump offsets 0.
fn insn(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The head of a filter that decides only x32 calls (`x32_only`) or every call but x32 ones:
/// the other calls are ALLOWed (left to the other filters), the rest go on to the program.
///
/// ```text
/// 0: ld arch; 1: jeq X86_64 ? 2 : (x32_only ? 4 : 5); 2: ld nr;
/// 3: jge X32_BIT ? (x32_only ? 5 : 4) : (x32_only ? 4 : 5); 4: ret ALLOW; 5: <program>
/// ```
fn x32_prefix(x32_only: bool) -> Vec<sock_filter> {
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let (is_x32, not_x32) = if x32_only { (1, 0) } else { (0, 1) };
    vec![
        insn(load, SECCOMP_DATA_ARCH_OFFSET, 0, 0),
        insn(jeq, AUDIT_ARCH_X86_64, 0, if x32_only { 2 } else { 3 }),
        insn(load, SECCOMP_DATA_NR_OFFSET, 0, 0),
        insn(jge, X32_SYSCALL_BIT, is_x32, not_x32),
        insn(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ]
}

/// The length of seccompiler's arch check at the start of each program: load the arch, compare,
/// kill on a mismatch.
const SECCOMPILER_ARCH_CHECK: usize = 3;

/// One program for two ABIs from two seccompiler programs (both made with seccompiler's x86_64
/// arch check, `native` with x86_64 numbers and `compat` with i386 numbers): their bodies after
/// the arch check, behind a dispatch on the arch. Bodies only jump forward inside themselves
/// and end in returns, so they can be laid one after the other.
///
/// ```text
/// ld arch; jeq X86_64 ? +1 : +0; ja over native; <native body>
/// jeq I386 ? +1 : +0; ret KILL_PROCESS; <compat body>
/// ```
fn join_arch_programs(native: &[sock_filter], compat: &[sock_filter]) -> BpfProgram {
    let body64 = &native[SECCOMPILER_ARCH_CHECK.min(native.len())..];
    let body32 = &compat[SECCOMPILER_ARCH_CHECK.min(compat.len())..];
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut out = Vec::with_capacity(body64.len() + body32.len() + 5);
    out.push(insn(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        SECCOMP_DATA_ARCH_OFFSET,
        0,
        0,
    ));
    out.push(insn(jeq, AUDIT_ARCH_X86_64, 1, 0));
    out.push(insn(
        libc::BPF_JMP | libc::BPF_JA,
        body64.len() as u32,
        0,
        0,
    ));
    out.extend_from_slice(body64);
    out.push(insn(jeq, AUDIT_ARCH_I386, 1, 0));
    out.push(insn(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_KILL_PROCESS,
        0,
        0,
    ));
    out.extend_from_slice(body32);
    out
}

/// runc's ENOSYS stub, as the head of the default filter: a call newer than every syscall the
/// profile names (per ABI) gets ENOSYS instead of the default action, so a program probing for
/// a new syscall falls back to an old one (as on an older kernel) rather than failing on EPERM
/// or being killed. Other calls go on to the filter proper, which starts by loading the arch
/// again. x32 calls (bit 30) and -1 are left to the filter and the ABI guard.
fn enosys_prefix(last: i64, last32: Option<i64>) -> Vec<sock_filter> {
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jgt = libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let enosys = libc::SECCOMP_RET_ERRNO | (libc::ENOSYS as u32 & libc::SECCOMP_RET_DATA);
    // Nothing known named for an ABI: no call of it counts as new.
    let bound = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let (last, last32) = (bound(last), last32.map_or(u32::MAX, bound));
    vec![
        insn(load, SECCOMP_DATA_ARCH_OFFSET, 0, 0),
        // 1: x86_64? else to 5
        insn(jeq, AUDIT_ARCH_X86_64, 0, 3),
        insn(load, SECCOMP_DATA_NR_OFFSET, 0, 0),
        insn(jge, X32_SYSCALL_BIT, 5, 0),
        // 4: newer than the profile → 8, else on to the filter (9)
        insn(jgt, last, 3, 4),
        // 5: i386? else on to the filter
        insn(jeq, AUDIT_ARCH_I386, 0, 3),
        insn(load, SECCOMP_DATA_NR_OFFSET, 0, 0),
        insn(jgt, last32, 0, 1),
        // 8
        insn(libc::BPF_RET | libc::BPF_K, enosys, 0, 0),
    ]
}

/// Kill the process on any call of an ABI the profile does not filter (i386 without
/// `allow_i386`, x32 without `allow_x32`; the other filters decide the rest); syscall -1 falls
/// through like in libseccomp.
fn abi_guard(allow_i386: bool, allow_x32: bool) -> BpfProgram {
    let stmt = |code: u32, k: u32| insn(code, k, 0, 0);
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // i386 when filtered: allowed here (jeq I386 → ALLOW); otherwise compared with a value no
    // arch has, which never matches.
    let i386 = if allow_i386 { AUDIT_ARCH_I386 } else { 0 };
    // x32 when filtered: a number with the x32 bit goes straight to ALLOW.
    let x32_to = if allow_x32 { 2 } else { 0 };
    vec![
        stmt(load, SECCOMP_DATA_ARCH_OFFSET),
        insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH_X86_64,
            2,
            0,
        ),
        insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, i386, 5, 0),
        stmt(ret, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(load, SECCOMP_DATA_NR_OFFSET),
        insn(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            x32_to,
            2,
        ),
        insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, u32::MAX, 1, 0),
        stmt(ret, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Install one filter; `number` counts from 1 for messages.
fn install_one(
    filter: &BpfProgram,
    flags: FilterFlags,
    number: usize,
    count: usize,
) -> Result<libc::c_long, SeccompError> {
    let len = u16::try_from(filter.len())
        .ok()
        .filter(|len| *len > 0 && usize::from(*len) <= BPF_MAXINSNS)
        .ok_or(SeccompError::FilterLength {
            index: number,
            len: filter.len(),
        })?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` points to `len` initialized instructions; seccompiler's `sock_filter` is
    // `repr(C)` with the kernel's layout (u16, u8, u8, u32). The kernel only reads the program
    // (copying it) during the call, while `filter` and `prog` are alive.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags.bits(),
            &prog as *const libc::sock_fprog,
        )
    };
    let listener = flags.bits() & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0;
    match rc {
        0 => Ok(0),
        fd if fd > 0 && listener => Ok(fd),
        tid if tid > 0 => Err(SeccompError::ThreadSync { index: number, tid }),
        _ => {
            let errno = Errno::last();
            Err(SeccompError::Install {
                index: number,
                count,
                errno,
                hint: install_hint(errno),
            })
        }
    }
}

fn install_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES => {
            " (set no_new_privs first, or keep CAP_SYS_ADMIN until seccomp is installed)"
        }
        Errno::EINVAL => " (a flag or the program was refused by the kernel)",
        Errno::ENOMEM => " (the filters together exceed the kernel's 32768-instruction limit)",
        Errno::EPERM | Errno::ENOSYS => " (a filter installed earlier denies seccomp(2))",
        _ => "",
    }
}

/// The x86_64 number of a syscall name, `None` when x86_64 has no such syscall.
/// The i386 number of `name` (`int 0x80` / compat calls of a 32-bit program).
fn syscall_number_i386(name: &str) -> Option<i64> {
    match I386_SYSCALLS.binary_search_by(|(known, _)| (*known).cmp(name)) {
        Ok(i) => Some(I386_SYSCALLS[i].1),
        Err(_) => syscall_number(name).filter(|&nr| nr >= UNIFIED_SYSCALL_BASE),
    }
}

/// The x32 number of `name` (bit 30 set): the x32-only entry (512-547) for the calls x32 has
/// its own version of, else the x86_64 number. The x86_64 numbers of those calls are not
/// x32 calls (the kernel answers ENOSYS), so they are not given.
fn syscall_number_x32(name: &str) -> Option<i64> {
    let bit = i64::from(X32_SYSCALL_BIT);
    match X32_OWN_SYSCALLS.iter().position(|known| *known == name) {
        Some(i) => Some(bit | (512 + i as i64)),
        None => syscall_number(name).map(|nr| bit | nr),
    }
}

/// The calls x32 numbers 512.. in order (arch/x86/entry/syscalls/syscall_64.tbl, "x32" ABI).
const X32_OWN_SYSCALLS: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// Syscalls from this number on have the same number on every architecture.
const UNIFIED_SYSCALL_BASE: i64 = 424;

fn syscall_number(name: &str) -> Option<i64> {
    X86_64_SYSCALLS
        .binary_search_by(|(known, _)| (*known).cmp(name))
        .ok()
        .map(|i| X86_64_SYSCALLS[i].1)
}

/// x86_64 syscall numbers by name, sorted by name (byte order) for binary search: the common
/// and 64-bit entries of syscall_64.tbl up to Linux 6.18 (the x32-only entries 512-547 are not
/// x86_64 syscalls).
const X86_64_SYSCALLS: &[(&str, i64)] = &[
    ("_sysctl", 156),
    ("accept", 43),
    ("accept4", 288),
    ("access", 21),
    ("acct", 163),
    ("add_key", 248),
    ("adjtimex", 159),
    ("afs_syscall", 183),
    ("alarm", 37),
    ("arch_prctl", 158),
    ("bind", 49),
    ("bpf", 321),
    ("brk", 12),
    ("cachestat", 451),
    ("capget", 125),
    ("capset", 126),
    ("chdir", 80),
    ("chmod", 90),
    ("chown", 92),
    ("chroot", 161),
    ("clock_adjtime", 305),
    ("clock_getres", 229),
    ("clock_gettime", 228),
    ("clock_nanosleep", 230),
    ("clock_settime", 227),
    ("clone", 56),
    ("clone3", 435),
    ("close", 3),
    ("close_range", 436),
    ("connect", 42),
    ("copy_file_range", 326),
    ("creat", 85),
    ("create_module", 174),
    ("delete_module", 176),
    ("dup", 32),
    ("dup2", 33),
    ("dup3", 292),
    ("epoll_create", 213),
    ("epoll_create1", 291),
    ("epoll_ctl", 233),
    ("epoll_ctl_old", 214),
    ("epoll_pwait", 281),
    ("epoll_pwait2", 441),
    ("epoll_wait", 232),
    ("epoll_wait_old", 215),
    ("eventfd", 284),
    ("eventfd2", 290),
    ("execve", 59),
    ("execveat", 322),
    ("exit", 60),
    ("exit_group", 231),
    ("faccessat", 269),
    ("faccessat2", 439),
    ("fadvise64", 221),
    ("fallocate", 285),
    ("fanotify_init", 300),
    ("fanotify_mark", 301),
    ("fchdir", 81),
    ("fchmod", 91),
    ("fchmodat", 268),
    ("fchmodat2", 452),
    ("fchown", 93),
    ("fchownat", 260),
    ("fcntl", 72),
    ("fdatasync", 75),
    ("fgetxattr", 193),
    ("file_getattr", 468),
    ("file_setattr", 469),
    ("finit_module", 313),
    ("flistxattr", 196),
    ("flock", 73),
    ("fork", 57),
    ("fremovexattr", 199),
    ("fsconfig", 431),
    ("fsetxattr", 190),
    ("fsmount", 432),
    ("fsopen", 430),
    ("fspick", 433),
    ("fstat", 5),
    ("fstatfs", 138),
    ("fsync", 74),
    ("ftruncate", 77),
    ("futex", 202),
    ("futex_requeue", 456),
    ("futex_wait", 455),
    ("futex_waitv", 449),
    ("futex_wake", 454),
    ("futimesat", 261),
    ("get_kernel_syms", 177),
    ("get_mempolicy", 239),
    ("get_robust_list", 274),
    ("get_thread_area", 211),
    ("getcpu", 309),
    ("getcwd", 79),
    ("getdents", 78),
    ("getdents64", 217),
    ("getegid", 108),
    ("geteuid", 107),
    ("getgid", 104),
    ("getgroups", 115),
    ("getitimer", 36),
    ("getpeername", 52),
    ("getpgid", 121),
    ("getpgrp", 111),
    ("getpid", 39),
    ("getpmsg", 181),
    ("getppid", 110),
    ("getpriority", 140),
    ("getrandom", 318),
    ("getresgid", 120),
    ("getresuid", 118),
    ("getrlimit", 97),
    ("getrusage", 98),
    ("getsid", 124),
    ("getsockname", 51),
    ("getsockopt", 55),
    ("gettid", 186),
    ("gettimeofday", 96),
    ("getuid", 102),
    ("getxattr", 191),
    ("getxattrat", 464),
    ("init_module", 175),
    ("inotify_add_watch", 254),
    ("inotify_init", 253),
    ("inotify_init1", 294),
    ("inotify_rm_watch", 255),
    ("io_cancel", 210),
    ("io_destroy", 207),
    ("io_getevents", 208),
    ("io_pgetevents", 333),
    ("io_setup", 206),
    ("io_submit", 209),
    ("io_uring_enter", 426),
    ("io_uring_register", 427),
    ("io_uring_setup", 425),
    ("ioctl", 16),
    ("ioperm", 173),
    ("iopl", 172),
    ("ioprio_get", 252),
    ("ioprio_set", 251),
    ("kcmp", 312),
    ("kexec_file_load", 320),
    ("kexec_load", 246),
    ("keyctl", 250),
    ("kill", 62),
    ("landlock_add_rule", 445),
    ("landlock_create_ruleset", 444),
    ("landlock_restrict_self", 446),
    ("lchown", 94),
    ("lgetxattr", 192),
    ("link", 86),
    ("linkat", 265),
    ("listen", 50),
    ("listmount", 458),
    ("listxattr", 194),
    ("listxattrat", 465),
    ("llistxattr", 195),
    ("lookup_dcookie", 212),
    ("lremovexattr", 198),
    ("lseek", 8),
    ("lsetxattr", 189),
    ("lsm_get_self_attr", 459),
    ("lsm_list_modules", 461),
    ("lsm_set_self_attr", 460),
    ("lstat", 6),
    ("madvise", 28),
    ("map_shadow_stack", 453),
    ("mbind", 237),
    ("membarrier", 324),
    ("memfd_create", 319),
    ("memfd_secret", 447),
    ("migrate_pages", 256),
    ("mincore", 27),
    ("mkdir", 83),
    ("mkdirat", 258),
    ("mknod", 133),
    ("mknodat", 259),
    ("mlock", 149),
    ("mlock2", 325),
    ("mlockall", 151),
    ("mmap", 9),
    ("modify_ldt", 154),
    ("mount", 165),
    ("mount_setattr", 442),
    ("move_mount", 429),
    ("move_pages", 279),
    ("mprotect", 10),
    ("mq_getsetattr", 245),
    ("mq_notify", 244),
    ("mq_open", 240),
    ("mq_timedreceive", 243),
    ("mq_timedsend", 242),
    ("mq_unlink", 241),
    ("mremap", 25),
    ("mseal", 462),
    ("msgctl", 71),
    ("msgget", 68),
    ("msgrcv", 70),
    ("msgsnd", 69),
    ("msync", 26),
    ("munlock", 150),
    ("munlockall", 152),
    ("munmap", 11),
    ("name_to_handle_at", 303),
    ("nanosleep", 35),
    ("newfstatat", 262),
    ("nfsservctl", 180),
    ("open", 2),
    ("open_by_handle_at", 304),
    ("open_tree", 428),
    ("open_tree_attr", 467),
    ("openat", 257),
    ("openat2", 437),
    ("pause", 34),
    ("perf_event_open", 298),
    ("personality", 135),
    ("pidfd_getfd", 438),
    ("pidfd_open", 434),
    ("pidfd_send_signal", 424),
    ("pipe", 22),
    ("pipe2", 293),
    ("pivot_root", 155),
    ("pkey_alloc", 330),
    ("pkey_free", 331),
    ("pkey_mprotect", 329),
    ("poll", 7),
    ("ppoll", 271),
    ("prctl", 157),
    ("pread64", 17),
    ("preadv", 295),
    ("preadv2", 327),
    ("prlimit64", 302),
    ("process_madvise", 440),
    ("process_mrelease", 448),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("pselect6", 270),
    ("ptrace", 101),
    ("putpmsg", 182),
    ("pwrite64", 18),
    ("pwritev", 296),
    ("pwritev2", 328),
    ("query_module", 178),
    ("quotactl", 179),
    ("quotactl_fd", 443),
    ("read", 0),
    ("readahead", 187),
    ("readlink", 89),
    ("readlinkat", 267),
    ("readv", 19),
    ("reboot", 169),
    ("recvfrom", 45),
    ("recvmmsg", 299),
    ("recvmsg", 47),
    ("remap_file_pages", 216),
    ("removexattr", 197),
    ("removexattrat", 466),
    ("rename", 82),
    ("renameat", 264),
    ("renameat2", 316),
    ("request_key", 249),
    ("restart_syscall", 219),
    ("rmdir", 84),
    ("rseq", 334),
    ("rt_sigaction", 13),
    ("rt_sigpending", 127),
    ("rt_sigprocmask", 14),
    ("rt_sigqueueinfo", 129),
    ("rt_sigreturn", 15),
    ("rt_sigsuspend", 130),
    ("rt_sigtimedwait", 128),
    ("rt_tgsigqueueinfo", 297),
    ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147),
    ("sched_getaffinity", 204),
    ("sched_getattr", 315),
    ("sched_getparam", 143),
    ("sched_getscheduler", 145),
    ("sched_rr_get_interval", 148),
    ("sched_setaffinity", 203),
    ("sched_setattr", 314),
    ("sched_setparam", 142),
    ("sched_setscheduler", 144),
    ("sched_yield", 24),
    ("seccomp", 317),
    ("security", 185),
    ("select", 23),
    ("semctl", 66),
    ("semget", 64),
    ("semop", 65),
    ("semtimedop", 220),
    ("sendfile", 40),
    ("sendmmsg", 307),
    ("sendmsg", 46),
    ("sendto", 44),
    ("set_mempolicy", 238),
    ("set_mempolicy_home_node", 450),
    ("set_robust_list", 273),
    ("set_thread_area", 205),
    ("set_tid_address", 218),
    ("setdomainname", 171),
    ("setfsgid", 123),
    ("setfsuid", 122),
    ("setgid", 106),
    ("setgroups", 116),
    ("sethostname", 170),
    ("setitimer", 38),
    ("setns", 308),
    ("setpgid", 109),
    ("setpriority", 141),
    ("setregid", 114),
    ("setresgid", 119),
    ("setresuid", 117),
    ("setreuid", 113),
    ("setrlimit", 160),
    ("setsid", 112),
    ("setsockopt", 54),
    ("settimeofday", 164),
    ("setuid", 105),
    ("setxattr", 188),
    ("setxattrat", 463),
    ("shmat", 30),
    ("shmctl", 31),
    ("shmdt", 67),
    ("shmget", 29),
    ("shutdown", 48),
    ("sigaltstack", 131),
    ("signalfd", 282),
    ("signalfd4", 289),
    ("socket", 41),
    ("socketpair", 53),
    ("splice", 275),
    ("stat", 4),
    ("statfs", 137),
    ("statmount", 457),
    ("statx", 332),
    ("swapoff", 168),
    ("swapon", 167),
    ("symlink", 88),
    ("symlinkat", 266),
    ("sync", 162),
    ("sync_file_range", 277),
    ("syncfs", 306),
    ("sysfs", 139),
    ("sysinfo", 99),
    ("syslog", 103),
    ("tee", 276),
    ("tgkill", 234),
    ("time", 201),
    ("timer_create", 222),
    ("timer_delete", 226),
    ("timer_getoverrun", 225),
    ("timer_gettime", 224),
    ("timer_settime", 223),
    ("timerfd_create", 283),
    ("timerfd_gettime", 287),
    ("timerfd_settime", 286),
    ("times", 100),
    ("tkill", 200),
    ("truncate", 76),
    ("tuxcall", 184),
    ("umask", 95),
    ("umount2", 166),
    ("uname", 63),
    ("unlink", 87),
    ("unlinkat", 263),
    ("unshare", 272),
    ("uprobe", 336),
    ("uretprobe", 335),
    ("uselib", 134),
    ("userfaultfd", 323),
    ("ustat", 136),
    ("utime", 132),
    ("utimensat", 280),
    ("utimes", 235),
    ("vfork", 58),
    ("vhangup", 153),
    ("vmsplice", 278),
    ("vserver", 236),
    ("wait4", 61),
    ("waitid", 247),
    ("write", 1),
    ("writev", 20),
];

/// i386 syscall numbers by name, sorted by name (byte order), below 424: from the kernel's
/// syscall_32.tbl (linux-libc-dev's asm/unistd_32.h). From 424 on every architecture shares one
/// numbering, so newer calls are found in [`X86_64_SYSCALLS`] (see [`syscall_number_i386`]).
const I386_SYSCALLS: &[(&str, i64)] = &[
    ("_llseek", 140),
    ("_newselect", 142),
    ("_sysctl", 149),
    ("accept4", 364),
    ("access", 33),
    ("acct", 51),
    ("add_key", 286),
    ("adjtimex", 124),
    ("afs_syscall", 137),
    ("alarm", 27),
    ("arch_prctl", 384),
    ("bdflush", 134),
    ("bind", 361),
    ("bpf", 357),
    ("break", 17),
    ("brk", 45),
    ("capget", 184),
    ("capset", 185),
    ("chdir", 12),
    ("chmod", 15),
    ("chown", 182),
    ("chown32", 212),
    ("chroot", 61),
    ("clock_adjtime", 343),
    ("clock_adjtime64", 405),
    ("clock_getres", 266),
    ("clock_getres_time64", 406),
    ("clock_gettime", 265),
    ("clock_gettime64", 403),
    ("clock_nanosleep", 267),
    ("clock_nanosleep_time64", 407),
    ("clock_settime", 264),
    ("clock_settime64", 404),
    ("clone", 120),
    ("close", 6),
    ("connect", 362),
    ("copy_file_range", 377),
    ("creat", 8),
    ("create_module", 127),
    ("delete_module", 129),
    ("dup", 41),
    ("dup2", 63),
    ("dup3", 330),
    ("epoll_create", 254),
    ("epoll_create1", 329),
    ("epoll_ctl", 255),
    ("epoll_pwait", 319),
    ("epoll_wait", 256),
    ("eventfd", 323),
    ("eventfd2", 328),
    ("execve", 11),
    ("execveat", 358),
    ("exit", 1),
    ("exit_group", 252),
    ("faccessat", 307),
    ("fadvise64", 250),
    ("fadvise64_64", 272),
    ("fallocate", 324),
    ("fanotify_init", 338),
    ("fanotify_mark", 339),
    ("fchdir", 133),
    ("fchmod", 94),
    ("fchmodat", 306),
    ("fchown", 95),
    ("fchown32", 207),
    ("fchownat", 298),
    ("fcntl", 55),
    ("fcntl64", 221),
    ("fdatasync", 148),
    ("fgetxattr", 231),
    ("finit_module", 350),
    ("flistxattr", 234),
    ("flock", 143),
    ("fork", 2),
    ("fremovexattr", 237),
    ("fsetxattr", 228),
    ("fstat", 108),
    ("fstat64", 197),
    ("fstatat64", 300),
    ("fstatfs", 100),
    ("fstatfs64", 269),
    ("fsync", 118),
    ("ftime", 35),
    ("ftruncate", 93),
    ("ftruncate64", 194),
    ("futex", 240),
    ("futex_time64", 422),
    ("futimesat", 299),
    ("get_kernel_syms", 130),
    ("get_mempolicy", 275),
    ("get_robust_list", 312),
    ("get_thread_area", 244),
    ("getcpu", 318),
    ("getcwd", 183),
    ("getdents", 141),
    ("getdents64", 220),
    ("getegid", 50),
    ("getegid32", 202),
    ("geteuid", 49),
    ("geteuid32", 201),
    ("getgid", 47),
    ("getgid32", 200),
    ("getgroups", 80),
    ("getgroups32", 205),
    ("getitimer", 105),
    ("getpeername", 368),
    ("getpgid", 132),
    ("getpgrp", 65),
    ("getpid", 20),
    ("getpmsg", 188),
    ("getppid", 64),
    ("getpriority", 96),
    ("getrandom", 355),
    ("getresgid", 171),
    ("getresgid32", 211),
    ("getresuid", 165),
    ("getresuid32", 209),
    ("getrlimit", 76),
    ("getrusage", 77),
    ("getsid", 147),
    ("getsockname", 367),
    ("getsockopt", 365),
    ("gettid", 224),
    ("gettimeofday", 78),
    ("getuid", 24),
    ("getuid32", 199),
    ("getxattr", 229),
    ("gtty", 32),
    ("idle", 112),
    ("init_module", 128),
    ("inotify_add_watch", 292),
    ("inotify_init", 291),
    ("inotify_init1", 332),
    ("inotify_rm_watch", 293),
    ("io_cancel", 249),
    ("io_destroy", 246),
    ("io_getevents", 247),
    ("io_pgetevents", 385),
    ("io_pgetevents_time64", 416),
    ("io_setup", 245),
    ("io_submit", 248),
    ("ioctl", 54),
    ("ioperm", 101),
    ("iopl", 110),
    ("ioprio_get", 290),
    ("ioprio_set", 289),
    ("ipc", 117),
    ("kcmp", 349),
    ("kexec_load", 283),
    ("keyctl", 288),
    ("kill", 37),
    ("lchown", 16),
    ("lchown32", 198),
    ("lgetxattr", 230),
    ("link", 9),
    ("linkat", 303),
    ("listen", 363),
    ("listxattr", 232),
    ("llistxattr", 233),
    ("lock", 53),
    ("lookup_dcookie", 253),
    ("lremovexattr", 236),
    ("lseek", 19),
    ("lsetxattr", 227),
    ("lstat", 107),
    ("lstat64", 196),
    ("madvise", 219),
    ("mbind", 274),
    ("membarrier", 375),
    ("memfd_create", 356),
    ("migrate_pages", 294),
    ("mincore", 218),
    ("mkdir", 39),
    ("mkdirat", 296),
    ("mknod", 14),
    ("mknodat", 297),
    ("mlock", 150),
    ("mlock2", 376),
    ("mlockall", 152),
    ("mmap", 90),
    ("mmap2", 192),
    ("modify_ldt", 123),
    ("mount", 21),
    ("move_pages", 317),
    ("mprotect", 125),
    ("mpx", 56),
    ("mq_getsetattr", 282),
    ("mq_notify", 281),
    ("mq_open", 277),
    ("mq_timedreceive", 280),
    ("mq_timedreceive_time64", 419),
    ("mq_timedsend", 279),
    ("mq_timedsend_time64", 418),
    ("mq_unlink", 278),
    ("mremap", 163),
    ("msgctl", 402),
    ("msgget", 399),
    ("msgrcv", 401),
    ("msgsnd", 400),
    ("msync", 144),
    ("munlock", 151),
    ("munlockall", 153),
    ("munmap", 91),
    ("name_to_handle_at", 341),
    ("nanosleep", 162),
    ("nfsservctl", 169),
    ("nice", 34),
    ("oldfstat", 28),
    ("oldlstat", 84),
    ("oldolduname", 59),
    ("oldstat", 18),
    ("olduname", 109),
    ("open", 5),
    ("open_by_handle_at", 342),
    ("openat", 295),
    ("pause", 29),
    ("perf_event_open", 336),
    ("personality", 136),
    ("pipe", 42),
    ("pipe2", 331),
    ("pivot_root", 217),
    ("pkey_alloc", 381),
    ("pkey_free", 382),
    ("pkey_mprotect", 380),
    ("poll", 168),
    ("ppoll", 309),
    ("ppoll_time64", 414),
    ("prctl", 172),
    ("pread64", 180),
    ("preadv", 333),
    ("preadv2", 378),
    ("prlimit64", 340),
    ("process_vm_readv", 347),
    ("process_vm_writev", 348),
    ("prof", 44),
    ("profil", 98),
    ("pselect6", 308),
    ("pselect6_time64", 413),
    ("ptrace", 26),
    ("putpmsg", 189),
    ("pwrite64", 181),
    ("pwritev", 334),
    ("pwritev2", 379),
    ("query_module", 167),
    ("quotactl", 131),
    ("read", 3),
    ("readahead", 225),
    ("readdir", 89),
    ("readlink", 85),
    ("readlinkat", 305),
    ("readv", 145),
    ("reboot", 88),
    ("recvfrom", 371),
    ("recvmmsg", 337),
    ("recvmmsg_time64", 417),
    ("recvmsg", 372),
    ("remap_file_pages", 257),
    ("removexattr", 235),
    ("rename", 38),
    ("renameat", 302),
    ("renameat2", 353),
    ("request_key", 287),
    ("restart_syscall", 0),
    ("rmdir", 40),
    ("rseq", 386),
    ("rt_sigaction", 174),
    ("rt_sigpending", 176),
    ("rt_sigprocmask", 175),
    ("rt_sigqueueinfo", 178),
    ("rt_sigreturn", 173),
    ("rt_sigsuspend", 179),
    ("rt_sigtimedwait", 177),
    ("rt_sigtimedwait_time64", 421),
    ("rt_tgsigqueueinfo", 335),
    ("sched_get_priority_max", 159),
    ("sched_get_priority_min", 160),
    ("sched_getaffinity", 242),
    ("sched_getattr", 352),
    ("sched_getparam", 155),
    ("sched_getscheduler", 157),
    ("sched_rr_get_interval", 161),
    ("sched_rr_get_interval_time64", 423),
    ("sched_setaffinity", 241),
    ("sched_setattr", 351),
    ("sched_setparam", 154),
    ("sched_setscheduler", 156),
    ("sched_yield", 158),
    ("seccomp", 354),
    ("select", 82),
    ("semctl", 394),
    ("semget", 393),
    ("semtimedop_time64", 420),
    ("sendfile", 187),
    ("sendfile64", 239),
    ("sendmmsg", 345),
    ("sendmsg", 370),
    ("sendto", 369),
    ("set_mempolicy", 276),
    ("set_robust_list", 311),
    ("set_thread_area", 243),
    ("set_tid_address", 258),
    ("setdomainname", 121),
    ("setfsgid", 139),
    ("setfsgid32", 216),
    ("setfsuid", 138),
    ("setfsuid32", 215),
    ("setgid", 46),
    ("setgid32", 214),
    ("setgroups", 81),
    ("setgroups32", 206),
    ("sethostname", 74),
    ("setitimer", 104),
    ("setns", 346),
    ("setpgid", 57),
    ("setpriority", 97),
    ("setregid", 71),
    ("setregid32", 204),
    ("setresgid", 170),
    ("setresgid32", 210),
    ("setresuid", 164),
    ("setresuid32", 208),
    ("setreuid", 70),
    ("setreuid32", 203),
    ("setrlimit", 75),
    ("setsid", 66),
    ("setsockopt", 366),
    ("settimeofday", 79),
    ("setuid", 23),
    ("setuid32", 213),
    ("setxattr", 226),
    ("sgetmask", 68),
    ("shmat", 397),
    ("shmctl", 396),
    ("shmdt", 398),
    ("shmget", 395),
    ("shutdown", 373),
    ("sigaction", 67),
    ("sigaltstack", 186),
    ("signal", 48),
    ("signalfd", 321),
    ("signalfd4", 327),
    ("sigpending", 73),
    ("sigprocmask", 126),
    ("sigreturn", 119),
    ("sigsuspend", 72),
    ("socket", 359),
    ("socketcall", 102),
    ("socketpair", 360),
    ("splice", 313),
    ("ssetmask", 69),
    ("stat", 106),
    ("stat64", 195),
    ("statfs", 99),
    ("statfs64", 268),
    ("statx", 383),
    ("stime", 25),
    ("stty", 31),
    ("swapoff", 115),
    ("swapon", 87),
    ("symlink", 83),
    ("symlinkat", 304),
    ("sync", 36),
    ("sync_file_range", 314),
    ("syncfs", 344),
    ("sysfs", 135),
    ("sysinfo", 116),
    ("syslog", 103),
    ("tee", 315),
    ("tgkill", 270),
    ("time", 13),
    ("timer_create", 259),
    ("timer_delete", 263),
    ("timer_getoverrun", 262),
    ("timer_gettime", 261),
    ("timer_gettime64", 408),
    ("timer_settime", 260),
    ("timer_settime64", 409),
    ("timerfd_create", 322),
    ("timerfd_gettime", 326),
    ("timerfd_gettime64", 410),
    ("timerfd_settime", 325),
    ("timerfd_settime64", 411),
    ("times", 43),
    ("tkill", 238),
    ("truncate", 92),
    ("truncate64", 193),
    ("ugetrlimit", 191),
    ("ulimit", 58),
    ("umask", 60),
    ("umount", 22),
    ("umount2", 52),
    ("uname", 122),
    ("unlink", 10),
    ("unlinkat", 301),
    ("unshare", 310),
    ("uselib", 86),
    ("userfaultfd", 374),
    ("ustat", 62),
    ("utime", 30),
    ("utimensat", 320),
    ("utimensat_time64", 412),
    ("utimes", 271),
    ("vfork", 190),
    ("vhangup", 111),
    ("vm86", 166),
    ("vm86old", 113),
    ("vmsplice", 316),
    ("vserver", 273),
    ("wait4", 114),
    ("waitid", 284),
    ("waitpid", 7),
    ("write", 4),
    ("writev", 146),
];

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    use serde_json::json;

    /// A path whose parent never exists: unfiltered mkdir/truncate on it fail with ENOENT.
    const MISSING: &std::ffi::CStr = c"/runz-test-seccomp-no-such-dir/x";
    /// Child exit codes for setup failures, distinct from errno values used in the tests.
    const SETUP_FAILED: i32 = 200;
    const INSTALL_FAILED: i32 = 201;

    fn profile(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).expect("test profile parses")
    }

    fn policy(value: serde_json::Value) -> Result<Policy, SeccompError> {
        Policy::from_profile(&profile(value))
    }

    /// errno of a raw syscall result, 0 when it succeeded.
    fn errno_of(rc: libc::c_long) -> i32 {
        if rc == -1 {
            Errno::last() as i32
        } else {
            0
        }
    }

    /// errno of an argument-less syscall, 0 when it succeeded.
    fn no_arg_errno(nr: libc::c_long) -> i32 {
        // SAFETY: the callers pass syscalls that take no arguments.
        errno_of(unsafe { libc::syscall(nr) })
    }

    fn mkdir_errno(mode: u32) -> i32 {
        // SAFETY: mkdir on a valid C string; the parent directory does not exist.
        errno_of(unsafe { libc::syscall(libc::SYS_mkdir, MISSING.as_ptr(), mode) })
    }

    fn truncate_errno(length: u64) -> i32 {
        // SAFETY: truncate on a valid C string; the path does not exist.
        errno_of(unsafe { libc::syscall(libc::SYS_truncate, MISSING.as_ptr(), length) })
    }

    /// Fork; the child installs `filters` (after no_new_privs if `nnp`) and exits with the
    /// result of `probe`. The child only makes raw syscalls and leaves with `_exit`.
    fn run_filtered(
        filters: &[BpfProgram],
        flags: FilterFlags,
        nnp: bool,
        probe: impl Fn() -> i32,
    ) -> WaitStatus {
        // SAFETY: the child touches no locks or allocator on the success path: raw prctl,
        // seccomp and the probe's raw syscalls, then `_exit`.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: prctl with integer arguments; no core dump for SIGSYS kills.
                let code = unsafe {
                    if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
                        || (nnp && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
                    {
                        SETUP_FAILED
                    } else if install_with_flags(filters, flags).is_err() {
                        INSTALL_FAILED
                    } else {
                        probe()
                    }
                };
                // SAFETY: leave the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    /// Compile `value` and run `probe` under it with its flags and no_new_privs.
    fn run_profile(value: serde_json::Value, probe: impl Fn() -> i32) -> WaitStatus {
        let profile = profile(value);
        let filters = compile(&profile).expect("profile compiles");
        run_filtered(&filters, filter_flags(&profile), true, probe)
    }

    fn exit_code(status: WaitStatus) -> i32 {
        match status {
            WaitStatus::Exited(_, code) => code,
            other => panic!("child did not exit normally: {other:?}"),
        }
    }

    fn assert_sigsys(status: WaitStatus) {
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "expected death by SIGSYS, got {status:?}"
        );
    }

    // ---- the syscall table -------------------------------------------------------------

    #[test]
    fn syscall_table_is_sorted_unique_and_agrees_with_libc() {
        assert!(X86_64_SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        let mut numbers: Vec<i64> = X86_64_SYSCALLS.iter().map(|(_, nr)| *nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), X86_64_SYSCALLS.len());
        for (name, nr) in [
            ("read", libc::SYS_read),
            ("mkdir", libc::SYS_mkdir),
            ("personality", libc::SYS_personality),
            ("seccomp", libc::SYS_seccomp),
            ("clone3", libc::SYS_clone3),
            ("exit_group", libc::SYS_exit_group),
            ("mseal", libc::SYS_mseal),
        ] {
            assert_eq!(syscall_number(name), Some(nr), "{name}");
        }
        assert_eq!(syscall_number("file_setattr"), Some(469));
        assert_eq!(syscall_number("socketcall"), None);
        assert_eq!(syscall_number(""), None);
    }

    // ---- parsing and validation ----------------------------------------------------------

    #[test]
    fn actions_resolve_like_runc() {
        let none = || "test".to_string();
        let cases = [
            (LinuxSeccompAction::ScmpActKill, None, Action::KillThread),
            (
                LinuxSeccompAction::ScmpActKillThread,
                None,
                Action::KillThread,
            ),
            (
                LinuxSeccompAction::ScmpActKillProcess,
                None,
                Action::KillProcess,
            ),
            (LinuxSeccompAction::ScmpActTrap, None, Action::Trap),
            (LinuxSeccompAction::ScmpActErrno, None, Action::Errno(1)),
            (
                LinuxSeccompAction::ScmpActErrno,
                Some(38),
                Action::Errno(38),
            ),
            (LinuxSeccompAction::ScmpActErrno, Some(0), Action::Errno(0)),
            (LinuxSeccompAction::ScmpActTrace, None, Action::Trace(1)),
            (LinuxSeccompAction::ScmpActTrace, Some(7), Action::Trace(7)),
            (LinuxSeccompAction::ScmpActLog, None, Action::Log),
            (LinuxSeccompAction::ScmpActAllow, None, Action::Allow),
        ];
        for (action, errno_ret, expected) in cases {
            let got = resolve_action(action, errno_ret, &none).expect("resolves");
            assert_eq!(got, expected, "{action} {errno_ret:?}");
        }
        let notify = resolve_action(LinuxSeccompAction::ScmpActNotify, None, &none);
        assert_eq!(notify.expect("notify resolves"), Action::Notify);
    }

    #[test]
    fn errno_ret_is_validated() {
        let err = policy(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: errnoRet 70000 of syscalls[0] (mkdir) does not fit the 16-bit seccomp \
             return data (max 65535)"
        );
        let err = policy(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: syscalls[0] (getpid, read) sets errnoRet 1, but action SCMP_ACT_ALLOW \
             takes no errno"
        );
        let err =
            policy(json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: defaultAction sets errnoRet 1, but action SCMP_ACT_KILL takes no errno"
        );
        let ok = policy(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}));
        assert_eq!(ok.expect("valid").default, Action::Errno(38));
    }

    #[test]
    fn notify_is_refused_as_default_and_for_write_in_runcs_words() {
        let err = policy(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall"
        );
        let err = policy(json!({"defaultAction": "SCMP_ACT_NOTIFY"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SCMP_ACT_NOTIFY cannot be used as default action"
        );
    }

    /// The notify rules make one filter whose match returns USER_NOTIF (no TRACE stand-in is
    /// left), installed with a listener: the kernel gives its fd.
    #[test]
    fn notify_rules_make_one_listener_filter() {
        let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(uses_notify(&p));
        let filters = compile(&p).expect("compiles");
        let notify: Vec<_> = filters.iter().filter(|f| is_notify_filter(f)).collect();
        assert_eq!(notify.len(), 1);
        let standin = libc::SECCOMP_RET_TRACE | u32::from(NOTIFY_STANDIN);
        assert!(filters.iter().flatten().all(|i| i.k != standin));
        // With the profile's TSYNC and WAIT_KILLABLE_RECV too: TSYNC is left out for the
        // listener filter (the kernel refuses it with NEW_LISTENER), WAIT_KILLABLE_RECV only
        // goes with it (the kernel refuses it without).
        let flagged = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}));
        // In a forked child (TSYNC would reach every thread of the test process); the child
        // drops the listener, so its notified mkdir fails with ENOSYS.
        let status = run_filtered(
            &compile(&flagged).expect("compiles"),
            filter_flags(&flagged),
            true,
            || mkdir_errno(0o755),
        );
        assert_eq!(exit_code(status), libc::ENOSYS);
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own: the filters stay with it.
        std::thread::spawn(move || {
            nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
            let listener = install_with_flags(&filters, FilterFlags::default());
            tx.send(listener.map(|l| l.is_some())).unwrap();
        });
        assert!(rx.recv().unwrap().expect("installs"));
    }

    #[test]
    fn arg_index_above_five_is_refused() {
        let err = policy(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: argument index 6 in syscalls[0] (mkdir) is out of range (0-5)"
        );
    }

    #[test]
    fn unknown_syscalls_are_skipped() {
        let policy = policy(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socketcall", "mkdir", "no_such_call"], "action": "SCMP_ACT_ALLOW"}]}))
        .expect("unknown names are not errors");
        assert_eq!(
            policy.entries,
            vec![Entry {
                action: Action::Allow,
                nr: libc::SYS_mkdir,
                conds: vec![]
            }]
        );
    }

    #[test]
    fn rules_with_the_default_action_are_dropped() {
        let policy = policy(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}))
        .expect("valid");
        assert_eq!(policy.entries.len(), 1);
        assert_eq!(policy.entries[0].action, Action::Errno(38));
    }

    #[test]
    fn operators_parse_and_evaluate_like_libseccomp() {
        let cond = |op: &str, value: u64, value_two: Option<u64>| {
            let arg: LinuxSeccompArg = serde_json::from_value(
                json!({"index": 1, "value": value, "valueTwo": value_two, "op": op}),
            )
            .expect("arg parses");
            Cond::from_arg(&arg, &|| "test".to_string()).expect("valid")
        };
        let holds = |c: Option<Cond>, arg: u64| c.expect("satisfiable").holds(arg);
        assert!(holds(cond("SCMP_CMP_NE", 5, None), 4) && !holds(cond("SCMP_CMP_NE", 5, None), 5));
        assert!(holds(cond("SCMP_CMP_LT", 5, None), 4) && !holds(cond("SCMP_CMP_LT", 5, None), 5));
        assert!(holds(cond("SCMP_CMP_LE", 5, None), 5) && !holds(cond("SCMP_CMP_LE", 5, None), 6));
        assert!(holds(cond("SCMP_CMP_EQ", 5, None), 5) && !holds(cond("SCMP_CMP_EQ", 5, None), 4));
        assert!(holds(cond("SCMP_CMP_GE", 5, None), 5) && !holds(cond("SCMP_CMP_GE", 5, None), 4));
        assert!(holds(cond("SCMP_CMP_GT", 5, None), 6) && !holds(cond("SCMP_CMP_GT", 5, None), 5));
        let masked = cond("SCMP_CMP_MASKED_EQ", 0xff00, Some(0x1200));
        assert_eq!(masked.map(|c| c.op), Some(Op::MaskedEq(0xff00)));
        assert!(holds(masked, 0x12ab) && !holds(masked, 0x13ab));
        // valueTwo outside the mask: (arg & 0xff) can never be 0x100.
        assert_eq!(cond("SCMP_CMP_MASKED_EQ", 0xff, Some(0x100)), None);
    }

    #[test]
    fn conditions_on_one_index_are_split_like_runc() {
        let args = |list: serde_json::Value| -> Vec<LinuxSeccompArg> {
            serde_json::from_value(list).expect("args parse")
        };
        let place = || "test".to_string();
        let and = condition_sets(
            &args(json!([{"index": 0, "value": 1, "op": "SCMP_CMP_GE"},
                         {"index": 1, "value": 9, "op": "SCMP_CMP_LE"}])),
            &place,
        )
        .expect("valid");
        assert_eq!(and.len(), 1);
        assert_eq!(and[0].len(), 2);
        let or = condition_sets(
            &args(json!([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                         {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                         {"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}])),
            &place,
        )
        .expect("valid");
        assert_eq!(
            or.len(),
            2,
            "the impossible masked condition is dropped: {or:?}"
        );
        let never = condition_sets(
            &args(json!([{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}])),
            &place,
        )
        .expect("valid");
        assert!(never.is_empty());
        assert_eq!(
            condition_sets(&[], &place).expect("valid"),
            vec![Vec::new()]
        );
    }

    #[test]
    fn flags_map_to_seccomp_bits() {
        let profile = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
            "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
        // WAIT_KILLABLE_RECV is kept; install_with_flags passes it with the notify filter only.
        assert_eq!(filter_flags(&profile).bits(), 0b111 | WAIT_KILLABLE_RECV);
    }

    #[test]
    fn features_lists_parse_as_oci_names() {
        use std::str::FromStr;
        for action in supported_actions() {
            let parsed = LinuxSeccompAction::from_str(action).expect("known action");
            resolve_action(parsed, None, &String::new).expect("ok");
        }
        for op in supported_operators() {
            LinuxSeccompOperator::from_str(op).expect("known operator");
        }
        for arch in supported_archs() {
            oci_spec::runtime::Arch::from_str(arch).expect("known arch");
        }
        for flag in known_flags() {
            LinuxSeccompFilterFlag::from_str(flag).expect("known flag");
        }
        assert!(supported_flags()
            .iter()
            .all(|flag| known_flags().contains(flag)));
        assert_eq!(supported_operators().len(), 7);
    }

    #[test]
    fn architectures_are_accepted() {
        let filters = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                              "SCMP_ARCH_AARCH64"]})))
        .expect("compiles");
        assert_eq!(filters, vec![abi_guard(true, true)]);
        let parsed: Result<LinuxSeccomp, _> = serde_json::from_value(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
        );
        assert!(
            parsed.is_err(),
            "unknown architecture names are refused at parse time"
        );
    }

    // ---- filter construction -----------------------------------------------------------

    #[test]
    fn allow_list_profile_is_guard_plus_default_filter() {
        let filters = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}),
        ))
        .expect("compiles");
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0], abi_guard(false, false));
        // The default filter starts with the ENOSYS stub, above exit_group (231).
        assert_eq!(filters[1][..9], enosys_prefix(231, None)[..]);
    }

    #[test]
    fn one_filter_per_distinct_action() {
        let policy = policy(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["rmdir"], "action": "SCMP_ACT_KILL"},
            {"names": ["chdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}))
        .expect("valid");
        let plans = policy.plans();
        let names: Vec<String> = plans.iter().map(Plan::to_string).collect();
        assert_eq!(
            names,
            [
                "SCMP_ACT_KILL_THREAD rules",
                "SCMP_ACT_ERRNO(38) rules",
                "default SCMP_ACT_ERRNO(1)"
            ]
        );
        assert_eq!(plans[1].rules.len(), 2);
        assert_eq!(
            plans[2].rules.len(),
            4,
            "the default filter knows every named syscall"
        );
    }

    #[test]
    fn unconditional_rule_absorbs_conditional_ones() {
        let mut rules = BTreeMap::new();
        let cond = Cond {
            index: 0,
            op: Op::Eq,
            value: 1,
        };
        add_rule(&mut rules, 1, &[cond]);
        add_rule(&mut rules, 1, &[cond]);
        assert_eq!(rules[&1], Match::AnyOf(vec![vec![cond]]));
        add_rule(&mut rules, 1, &[]);
        add_rule(&mut rules, 1, &[cond]);
        assert_eq!(rules[&1], Match::Always);
    }

    #[test]
    fn filter_denying_seccomp_is_installed_last() {
        let policy = policy(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
        .expect("valid");
        let plans = policy.plans();
        assert_eq!(plans[0].on_match, Action::Errno(13), "profile order first");
        let ordered = order_for_install(plans, FilterFlags::default()).expect("orderable");
        let order: Vec<Action> = ordered.iter().map(|plan| plan.on_match).collect();
        assert_eq!(order, [Action::Errno(1), Action::Errno(13)]);
    }

    #[test]
    fn seccomp_install_check_uses_known_arguments() {
        let plans = |value: serde_json::Value| policy(value).expect("valid").plans();
        // seccomp allowed only for SECCOMP_SET_MODE_STRICT (0): the default filter blocks us.
        let strict_only = plans(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(strict_only[0].may_block_install(FilterFlags::default()));
        // Allowed for SECCOMP_SET_MODE_FILTER with no flags: not blocking, unless we pass flags.
        let filter_mode = plans(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(!filter_mode[0].may_block_install(FilterFlags::default()));
        assert!(filter_mode[0].may_block_install(FilterFlags(libc::SECCOMP_FILTER_FLAG_LOG)));
        // A condition on the pointer argument is unknown: "may match".
        let pointer = plans(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]}]}));
        assert!(pointer[0].may_block_install(FilterFlags::default()));
        // LOG lets the call run.
        let logged = plans(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_LOG"}]}));
        assert!(!logged[0].may_block_install(FilterFlags::default()));
    }

    #[test]
    fn two_filters_denying_seccomp_are_refused() {
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["seccomp"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]}]}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: the profile denies seccomp(2) itself in SCMP_ACT_TRAP rules and \
             SCMP_ACT_ERRNO(1) rules; these stacked filters cannot all be installed"
        );
    }

    // ---- in the kernel (forked children) -----------------------------------------------

    #[test]
    fn kernel_baseline_without_filter() {
        assert_eq!(
            exit_code(run_filtered(&[], FilterFlags::default(), true, || {
                mkdir_errno(0o755)
            })),
            libc::ENOENT
        );
    }

    #[test]
    fn kernel_default_allow_with_mkdir_errno() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]});
        assert_eq!(
            exit_code(run_profile(rules.clone(), || mkdir_errno(0o755))),
            libc::EPERM
        );
        assert_eq!(
            exit_code(run_profile(rules, || truncate_errno(0))),
            libc::ENOENT
        );
    }

    #[test]
    fn kernel_calls_newer_than_the_profile_get_enosys() {
        // Default KILL, and yet a number above every named one gets ENOSYS (runc's stub); an
        // unnamed older call still meets the default.
        let rules = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EACCES,
            "syscalls": [
            {"names": ["exit_group", "exit", "getpid", "getppid"], "action": "SCMP_ACT_ALLOW"}]});
        let probe = || match (no_arg_errno(1000), no_arg_errno(libc::SYS_getuid)) {
            (libc::ENOSYS, libc::EACCES) => 0,
            (libc::ENOSYS, _) => 2,
            _ => 1,
        };
        assert_eq!(exit_code(run_profile(rules, probe)), 0);
    }

    #[test]
    fn kernel_default_errno_with_allow_list() {
        // getpid allowed, getuid ERRNO(ENOSYS), anything else the default EACCES.
        let rules = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EACCES,
            "syscalls": [
            {"names": ["exit_group", "exit", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}]});
        let probe = || {
            // SAFETY: argument-less raw syscall.
            let pid = unsafe { libc::syscall(libc::SYS_getpid) };
            let uid_errno = no_arg_errno(libc::SYS_getuid);
            let ppid_errno = no_arg_errno(libc::SYS_getppid);
            match (pid > 0, uid_errno, ppid_errno) {
                (true, libc::ENOSYS, libc::EACCES) => 0,
                (false, _, _) => 1,
                (_, libc::ENOSYS, _) => 3,
                _ => 2,
            }
        };
        assert_eq!(exit_code(run_profile(rules, probe)), 0);
    }

    #[test]
    fn kernel_allow_list_of_every_syscall_fits_and_works() {
        let mut names: Vec<&str> = X86_64_SYSCALLS.iter().map(|(name, _)| *name).collect();
        names.retain(|name| *name != "mkdir");
        let rules = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]});
        let filters = compile(&profile(rules.clone())).expect("compiles");
        assert!(filters.iter().all(|filter| filter.len() < BPF_MAXINSNS));
        assert_eq!(
            exit_code(run_profile(rules.clone(), || mkdir_errno(0o755))),
            libc::EPERM
        );
        assert_eq!(
            exit_code(run_profile(rules, || truncate_errno(0))),
            libc::ENOENT
        );
    }

    #[test]
    fn kernel_argument_condition() {
        // personality(0xffffffff) only queries; everything else is EPERM.
        let rules = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffff_u64, "op": "SCMP_CMP_EQ"}]}]});
        let probe = || {
            // SAFETY: personality query, then a change the filter must refuse.
            let (query, change) = unsafe {
                (
                    libc::syscall(libc::SYS_personality, 0xffff_ffff_u64),
                    libc::syscall(libc::SYS_personality, 0_u64),
                )
            };
            match (query >= 0, errno_of(change)) {
                (true, libc::EPERM) => 0,
                (false, _) => 1,
                _ => 2,
            }
        };
        assert_eq!(exit_code(run_profile(rules, probe)), 0);
    }

    #[test]
    fn kernel_operators_compare_all_64_bits() {
        const HIGH: u64 = 0x1_0000_0005;
        /// (op, value, valueTwo, [(probe, matches)]) on truncate's 64-bit length argument.
        type Case = (&'static str, u64, Option<u64>, [(u64, bool); 4]);
        let cases: [Case; 7] = [
            (
                "SCMP_CMP_EQ",
                HIGH,
                None,
                [(HIGH, true), (5, false), (HIGH + 1, false), (0, false)],
            ),
            (
                "SCMP_CMP_NE",
                HIGH,
                None,
                [(HIGH, false), (5, true), (HIGH + 1, true), (0, true)],
            ),
            (
                "SCMP_CMP_LT",
                HIGH,
                None,
                [
                    (HIGH, false),
                    (5, true),
                    (HIGH + 1, false),
                    (1 << 40, false),
                ],
            ),
            (
                "SCMP_CMP_LE",
                HIGH,
                None,
                [(HIGH, true), (6, true), (HIGH + 1, false), (1 << 33, false)],
            ),
            (
                "SCMP_CMP_GT",
                HIGH,
                None,
                [(HIGH, false), (6, false), (HIGH + 1, true), (1 << 33, true)],
            ),
            (
                "SCMP_CMP_GE",
                HIGH,
                None,
                [(HIGH, true), (6, false), (HIGH + 1, true), (4, false)],
            ),
            (
                "SCMP_CMP_MASKED_EQ",
                0xf_0000_00f0,
                Some(0x1_0000_0020),
                [
                    (0x1_0000_0020, true),
                    (0x1_ffff_ff2f, true),
                    (0x20, false),
                    (0x1_0000_0030, false),
                ],
            ),
        ];
        for (op, value, value_two, probes) in cases {
            let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["truncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                 "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]});
            for (length, matches) in probes {
                let expected = if matches { libc::EACCES } else { libc::ENOENT };
                let got = exit_code(run_profile(rules.clone(), move || truncate_errno(length)));
                assert_eq!(
                    got, expected,
                    "{op} {value:#x} {value_two:?} on {length:#x}"
                );
            }
        }
    }

    #[test]
    fn kernel_masked_eq_on_mode() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 1, "value": 0o700, "valueTwo": 0o500, "op": "SCMP_CMP_MASKED_EQ"}]}]});
        assert_eq!(
            exit_code(run_profile(rules.clone(), || mkdir_errno(0o555))),
            libc::EACCES
        );
        assert_eq!(
            exit_code(run_profile(rules, || mkdir_errno(0o755))),
            libc::ENOENT
        );
    }

    #[test]
    fn kernel_same_syscall_in_several_rules() {
        let rules = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::EROFS,
            "syscalls": [
            {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["truncate"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["truncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
             "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["truncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS,
             "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": ["truncate"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS,
             "args": [{"index": 1, "value": 4, "op": "SCMP_CMP_EQ"}]}]});
        for (length, expected) in [
            (1, libc::ENOENT),
            (2, libc::EACCES),
            (3, libc::ENOSYS),
            (4, libc::EROFS),
            (5, libc::EROFS),
        ] {
            let got = exit_code(run_profile(rules.clone(), move || truncate_errno(length)));
            assert_eq!(got, expected, "truncate length {length}");
        }
    }

    #[test]
    fn kernel_kill_actions_send_sigsys() {
        for action in [
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
        ] {
            let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": action}]});
            // SAFETY: argument-less raw syscall.
            let status = run_profile(rules, || unsafe { libc::syscall(libc::SYS_getppid) } as i32);
            assert_sigsys(status);
        }
    }

    #[test]
    fn kernel_default_kill_spares_allowed_syscalls() {
        let rules = json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
            {"names": ["exit_group", "truncate"], "action": "SCMP_ACT_ALLOW"}]});
        assert_eq!(
            exit_code(run_profile(rules.clone(), || truncate_errno(0))),
            libc::ENOENT
        );
        assert_sigsys(run_profile(rules, || mkdir_errno(0o755)));
    }

    #[test]
    fn kernel_x32_calls_are_killed_unless_the_profile_lists_x32() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]});
        let x32_getpid = i64::from(X32_SYSCALL_BIT) | libc::SYS_getpid;
        // SAFETY: a raw syscall with an x32 number and no arguments.
        assert_sigsys(run_profile(
            rules.clone(),
            move || unsafe { libc::syscall(x32_getpid) } as i32,
        ));
        // SAFETY: syscall -1 only fails with ENOSYS.
        let minus_one = run_profile(rules, || errno_of(unsafe { libc::syscall(-1) }));
        assert_eq!(exit_code(minus_one), libc::ENOSYS);
    }

    /// With SCMP_ARCH_X32 listed, x32 calls follow the rules: an errno rule on getpid answers
    /// for the x32 getpid too, and an unnamed x32 call passes to the kernel (which has no x32
    /// ABI on this host, or gives the pid: never SIGSYS).
    #[test]
    fn kernel_x32_calls_follow_the_rules_when_the_profile_lists_x32() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77}]});
        let x32 = |nr: i64| i64::from(X32_SYSCALL_BIT) | nr;
        // SAFETY: a raw x32 getpid, no arguments.
        let denied = run_profile(rules.clone(), move || {
            errno_of(unsafe { libc::syscall(x32(libc::SYS_getpid)) })
        });
        assert_eq!(exit_code(denied), 77);
        // SAFETY: a raw x32 getppid, no arguments.
        let passed = run_profile(rules, move || {
            let rc = unsafe { libc::syscall(x32(libc::SYS_getppid)) };
            if rc > 0 {
                0
            } else {
                errno_of(rc)
            }
        });
        assert!(matches!(exit_code(passed), 0 | libc::ENOSYS));
        assert_eq!(syscall_number_x32("ioctl"), Some(x32(514)));
        assert_eq!(syscall_number_x32("pwritev2"), Some(x32(547)));
        assert_eq!(syscall_number_x32("getpid"), Some(x32(libc::SYS_getpid)));
    }

    #[test]
    fn kernel_install_order_keeps_seccomp_callable() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES}]});
        let probe = || {
            // SAFETY: seccomp with a null program only fails (here: denied by the filter).
            let rc =
                unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, 0) };
            match (errno_of(rc), mkdir_errno(0o755)) {
                (libc::EACCES, libc::EPERM) => 0,
                (libc::EACCES, _) => 2,
                _ => 1,
            }
        };
        assert_eq!(exit_code(run_profile(rules, probe)), 0);
    }

    #[test]
    fn kernel_install_with_cap_sys_admin_without_no_new_privs() {
        assert_eq!(nix::unistd::geteuid().as_raw(), 0, "this test runs as root");
        let filters = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
        ))
        .expect("compiles");
        let status = run_filtered(&filters, FilterFlags::default(), false, || {
            mkdir_errno(0o755)
        });
        assert_eq!(exit_code(status), libc::EPERM);
    }

    #[test]
    fn kernel_flags_are_applied() {
        let rules = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]});
        assert_eq!(
            exit_code(run_profile(rules, || mkdir_errno(0o755))),
            libc::EPERM
        );
    }

    #[test]
    fn install_errors_name_the_filter() {
        let err = install(&[Vec::new()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: filter 1 has 0 instructions; a filter has 1 to 4096"
        );
    }
}

//! cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program, generated
//! like runc's devicefilter (default deny, last matching rule wins) and
//! attached with BPF_F_ALLOW_MULTI; programs attached earlier by us are then
//! detached, so a re-apply replaces the rules instead of adding to them.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::CgroupError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// bpf_cgroup_dev_ctx: access_type = (access << 16) | type, then major, minor.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (struct bpf_insn; dst in the low nibble on little endian).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn invalid(resource: &'static str, value: String, reason: &str) -> CgroupError {
    CgroupError::InvalidValue {
        resource,
        value,
        reason: reason.into(),
    }
}

fn access_bits(access: &str) -> Result<i32, CgroupError> {
    access.chars().try_fold(0, |acc, c| match c {
        'm' => Ok(acc | ACC_MKNOD),
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        _ => Err(invalid(
            "devices.access",
            format!("{access:?}"),
            "may only contain r, w and m",
        )),
    })
}

fn dev_number(v: Option<i64>) -> Result<Option<i32>, CgroupError> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| invalid("devices.major/minor", n.to_string(), "too large")),
    }
}

/// The instructions of one rule; each jump skips the rest of the block.
fn rule_block(rule: &LinuxDeviceCgroup) -> Result<Vec<Insn>, CgroupError> {
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => None,
        Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DEV_CHAR),
        Some(t) => {
            return Err(invalid(
                "devices.type",
                t.as_str().into(),
                "only a, b, c and u can be used in device rules",
            ))
        }
    };
    let access = access_bits(
        rule.access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm"),
    )?;
    // (opcode, dst, src, imm) of each test; the offsets are filled in below.
    let mut tests: Vec<Vec<(u8, u8, u8, i32)>> = Vec::new();
    if let Some(t) = typ {
        tests.push(vec![(JNE_K, 2, 0, t)]);
    }
    let all = ACC_MKNOD | ACC_READ | ACC_WRITE;
    if access != all {
        // allow: every requested bit must be allowed; deny: any requested bit denied.
        let last = if rule.allow() {
            (JNE_X, 1, 3, 0)
        } else {
            (JEQ_K, 1, 0, 0)
        };
        tests.push(vec![(MOV32_X, 1, 3, 0), (AND32_K, 1, 0, access), last]);
    }
    if let Some(m) = dev_number(rule.major())? {
        tests.push(vec![(JNE_K, 4, 0, m)]);
    }
    if let Some(m) = dev_number(rule.minor())? {
        tests.push(vec![(JNE_K, 5, 0, m)]);
    }
    let flat: Vec<(u8, u8, u8, i32)> = tests.into_iter().flatten().collect();
    let len = flat.len() + 2;
    let mut out = Vec::with_capacity(len);
    for (i, (code, dst, src, imm)) in flat.into_iter().enumerate() {
        let is_jump = matches!(code, JNE_K | JNE_X | JEQ_K);
        let off = if is_jump { (len - i - 1) as i16 } else { 0 };
        out.push(insn(code, dst, src, off, imm));
    }
    out.push(insn(MOV32_K, 0, 0, 0, i32::from(rule.allow())));
    out.push(insn(EXIT, 0, 0, 0, 0));
    Ok(out)
}

/// The whole program: load the context, rules last-to-first, default deny.
///
/// A rule that matches every device and access (`a *:* rwm`, the usual leading deny-all)
/// ends the program: the rules before it can never decide, and the kernel's verifier refuses
/// a program with unreachable instructions (EINVAL), which the default after it would be.
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, CgroupError> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let block = rule_block(rule)?;
        // Only "mov r0, allow; exit": the rule matches everything.
        let matches_all = block.len() == 2;
        p.extend(block);
        if matches_all {
            return Ok(p);
        }
    }
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// A zeroed bpf_attr; each command fills its leading fields.
#[repr(C, align(8))]
struct Attr([u32; 32]);

impl Attr {
    fn new() -> Self {
        Attr([0; 32])
    }
    fn set_u64(&mut self, index: usize, v: u64) {
        self.0[index] = v as u32;
        self.0[index + 1] = (v >> 32) as u32;
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a valid, zero-padded bpf_attr of the size we pass; the
    // pointers stored in it outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf syscall returned a new file descriptor that we now own.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

fn load(insns: &[Insn]) -> std::io::Result<OwnedFd> {
    let license = c"Apache";
    let mut a = Attr::new();
    a.0[0] = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.0[1] = insns.len() as u32;
    a.set_u64(2, insns.as_ptr() as u64);
    a.set_u64(4, license.as_ptr() as u64);
    bpf(BPF_PROG_LOAD, &mut a).map(fd_from)
}

fn query(cgroup: &OwnedFd) -> std::io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut a = Attr::new();
    a.0[0] = cgroup.as_raw_fd() as u32;
    a.0[1] = BPF_CGROUP_DEVICE;
    a.set_u64(4, ids.as_mut_ptr() as u64);
    a.0[6] = ids.len() as u32;
    bpf(BPF_PROG_QUERY, &mut a)?;
    let n = (a.0[6] as usize).min(ids.len());
    Ok(ids[..n].to_vec())
}

fn attach_cmd(
    cmd: libc::c_long,
    cgroup: &OwnedFd,
    prog: &OwnedFd,
    flags: u32,
) -> std::io::Result<()> {
    let mut a = Attr::new();
    a.0[0] = cgroup.as_raw_fd() as u32;
    a.0[1] = prog.as_raw_fd() as u32;
    a.0[2] = BPF_CGROUP_DEVICE;
    a.0[3] = flags;
    bpf(cmd, &mut a).map(drop)
}

fn prog_by_id(id: u32) -> std::io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.0[0] = id;
    bpf(BPF_PROG_GET_FD_BY_ID, &mut a).map(fd_from)
}

/// Replaces the device filter of the v2 cgroup `dir` with exactly `rules`.
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let insns = program(rules)?;
    let io = |op, e| CgroupError::io(op, dir, e);
    let prog = load(&insns).map_err(|e| io("load the device eBPF program for", e))?;
    let cgroup: OwnedFd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| io("open", e))?
        .into();
    let old = query(&cgroup).map_err(|e| io("query the device eBPF programs of", e))?;
    attach_cmd(BPF_PROG_ATTACH, &cgroup, &prog, BPF_F_ALLOW_MULTI)
        .map_err(|e| io("attach the device eBPF program to", e))?;
    for id in old {
        let detached = prog_by_id(id).and_then(|p| attach_cmd(BPF_PROG_DETACH, &cgroup, &p, 0));
        detached.map_err(|e| io("detach an old device eBPF program from", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(allow: bool, typ: LinuxDeviceType, major: i64, access: &str) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .access(access)
            .build()
            .unwrap()
    }

    #[test]
    fn program_is_prologue_rules_reversed_and_default_deny() {
        let p = program(&[
            rule(true, LinuxDeviceType::C, 1, "rwm"),
            rule(false, LinuxDeviceType::B, 8, "w"),
        ])
        .unwrap();
        // 6 prologue + deny block (type, 3 access, major, mov, exit = 7)
        // + allow block (type, major, mov, exit = 4) + 2 default
        assert_eq!(p.len(), 6 + 7 + 4 + 2);
        // the last rule comes first
        assert_eq!(p[6], insn(JNE_K, 2, 0, 6, DEV_BLOCK));
        assert_eq!(p[9], insn(JEQ_K, 1, 0, 3, 0));
        assert_eq!(p[11], insn(MOV32_K, 0, 0, 0, 0));
        assert_eq!(p[13], insn(JNE_K, 2, 0, 3, DEV_CHAR));
        assert_eq!(p[14], insn(JNE_K, 4, 0, 2, 1));
        assert_eq!(p[15], insn(MOV32_K, 0, 0, 0, 1));
        assert_eq!(p[17], insn(MOV32_K, 0, 0, 0, 0));
        assert_eq!(p[18].code, EXIT);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn a_match_all_rule_ends_the_program_without_unreachable_code() {
        let mut deny_all = rule(false, LinuxDeviceType::A, -1, "rwm");
        deny_all.set_major(None);
        let p = program(&[
            deny_all,
            rule(true, LinuxDeviceType::C, 1, "rwm"),
            rule(true, LinuxDeviceType::C, 5, "rw"),
        ])
        .unwrap();
        // 6 prologue + allow c 5 rw (type, 3 access, major, mov, exit = 7)
        // + allow c 1 (type, major, mov, exit = 4) + deny all (mov, exit): no default after it.
        assert_eq!(p.len(), 6 + 7 + 4 + 2);
        assert_eq!(p[p.len() - 2], insn(MOV32_K, 0, 0, 0, 0));
        assert_eq!(p[p.len() - 1].code, EXIT);
        // Every jump lands inside the program.
        for (i, x) in p.iter().enumerate() {
            if matches!(x.code, JNE_K | JNE_X | JEQ_K) {
                assert!(
                    i + 1 + (x.off as usize) < p.len(),
                    "jump at {i} leaves the program"
                );
            }
        }
        // A deny-all that comes last makes every earlier rule dead: they are left out.
        let mut deny_all = rule(false, LinuxDeviceType::A, -1, "rwm");
        deny_all.set_major(None);
        let p = program(&[rule(true, LinuxDeviceType::C, 1, "rwm"), deny_all]).unwrap();
        assert_eq!(p.len(), 6 + 2);
    }

    #[test]
    fn bad_rules_are_refused() {
        let e = program(&[rule(true, LinuxDeviceType::P, 1, "r")]).unwrap_err();
        assert!(e.to_string().contains("devices.type"), "{e}");
        let e = program(&[rule(true, LinuxDeviceType::C, 1, "rx")]).unwrap_err();
        assert!(e.to_string().contains("\"rx\""), "{e}");
        let e = program(&[rule(true, LinuxDeviceType::C, 1 << 40, "r")]).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }
}

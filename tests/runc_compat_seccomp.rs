//! Seccomp as runc applies it (issue 24, "Seccomp"): 32-bit (i386) programs run under a
//! Docker-style profile whose `architectures` lists SCMP_ARCH_X86, their calls filtered by the
//! profile's rules (not killed wholesale), and calls newer than every syscall the profile names
//! get ENOSYS (runc's stub) rather than the default errno. Each test runs runz and runc 1.1.5 on
//! the same bundle and compares the exit code and output.

mod common;
mod runc_side;

use common::{require_root, Bundle};
use runc_side::run_both;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

/// A static i386 ELF (`as --32; ld -m elf_i386 -N -s`) of:
///
/// ```text
/// _start: movl $4, %eax; movl $1, %ebx; movl $msg, %ecx; movl $3, %edx; int $0x80   # write
///         movl $39, %eax; movl $path, %ebx; movl $0755, %ecx; int $0x80            # mkdir
///         negl %eax; movl %eax, %ebx; movl $1, %eax; int $0x80                      # exit(errno)
/// msg: .ascii "ok\n"
/// path: .asciz "/x"
/// ```
const I386_PROGRAM: &[&str] = &[
    "7f454c4601010100000000000000000002000300010000005480040834000000a0000000000000003400200001002800",
    "030002000100000054000000548004085480040838000000380000000700000001000000b804000000bb01000000b986",
    "800408ba03000000cd80b827000000bb89800408b9ed010000cd80f7d889c3b801000000cd806f6b0a2f7800002e7368",
    "737472746162002e74657874000000000000000000000000000000000000000000000000000000000000000000000000",
    "00000000000000000b000000010000000700000054800408540000003800000000000000000000000100000000000000",
    "010000000300000000000000000000008c0000001100000000000000000000000100000000000000",
];

/// A static x86_64 ELF (`as --64; ld -N -s`) calling syscall 1000 (no such call) and exiting
/// with the errno it got: `movl $1000, %eax; syscall; negl %eax; movl %eax, %edi;
/// movl $60, %eax; syscall`.
const ENOSYS_PROGRAM: &[&str] = &[
    "7f454c4602010100000000000000000002003e000100000078004000000000004000000000000000a000000000000000",
    "000000004000380001004000030002000100000007000000780000000000000078004000000000007800400000000000",
    "120000000000000012000000000000000100000000000000b8e80300000f05f7d889c7b83c0000000f05002e73687374",
    "72746162002e746578740000000000000000000000000000000000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000000000000000000000000000000000000b000000010000000700000000000000",
    "780040000000000078000000000000001200000000000000000000000000000001000000000000000000000000000000",
    "0100000003000000000000000000000000000000000000008a0000000000000011000000000000000000000000000000",
    "01000000000000000000000000000000",
];

/// A static x86_64 ELF (`as --64; ld -N -s`) making one x32 call (the x32 bit 0x40000000 on
/// the x86_64 number NR, patched in at [`X32_NR_AT`]) and exiting with the errno it got:
/// `movl $(0x40000000+NR), %eax; leaq path(%rip), %rdi; movl $0755, %esi; syscall;
/// negl %eax; movl %eax, %edi; movl $60, %eax; syscall; path: .asciz "/x"`.
const X32_PROGRAM: &[&str] = &[
    "7f454c4602010100000000000000000002003e000100000078004000000000004000000000000000b000000000000000",
    "000000004000380001004000030002000100000007000000780000000000000078004000000000007800400000000000",
    "210000000000000021000000000000000100000000000000b827000040488d3d12000000beed0100000f05f7d889c7b8",
    "3c0000000f052f7800002e7368737472746162002e746578740000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "0b0000000100000007000000000000007800400000000000780000000000000021000000000000000000000000000000",
    "010000000000000000000000000000000100000003000000000000000000000000000000000000009900000000000000",
    "1100000000000000000000000000000001000000000000000000000000000000",
];

/// The offset of NR's low byte in [`X32_PROGRAM`] (`b8 NR 00 00 40`).
const X32_NR_AT: usize = 0x79;

fn x32_program(nr: u8) -> Vec<u8> {
    let mut p = unhex(X32_PROGRAM);
    assert_eq!(&p[X32_NR_AT - 1..X32_NR_AT + 4], &[0xb8, 39, 0, 0, 0x40]);
    p[X32_NR_AT] = nr;
    p
}

fn unhex(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.concat();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Docker's shape: default ERRNO (EPERM), the three x86 ABIs, and an allow list; here every
/// known syscall but mkdir/mkdirat, so a denied call can be seen from inside.
fn docker_style_profile() -> serde_json::Value {
    let allowed: Vec<&str> = zones_linux::runtime::seccomp::known_syscalls()
        .filter(|n| *n != "mkdir" && *n != "mkdirat")
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    })
}

fn bundle_with(name: &str, program: &[u8]) -> Bundle {
    let mut b = Bundle::new(name);
    let path = b.dir.join("rootfs/probe");
    std::fs::write(&path, program).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.set("/linux/seccomp", docker_style_profile());
    b.args(&["/probe"]);
    b
}

/// A 32-bit program runs under the profile: its write (allowed) prints, its mkdir (not in the
/// allow list) gets the default EPERM, and it exits with that errno (1), as under runc. runz
/// used to kill every i386 call (SIGSYS).
#[test]
fn a_32_bit_program_is_filtered_by_the_profiles_rules() {
    if !require_root() {
        return;
    }
    let b = bundle_with("seccomp-i386", &unhex(I386_PROGRAM));
    let (runz, runc) = run_both(&b);
    assert_eq!(
        (runz.code, runz.stdout.as_str()),
        (Some(1), "ok\n"),
        "runz: {}",
        runz.stderr
    );
    if let Some(runc) = runc {
        assert_eq!(
            (runc.code, runc.stdout.as_str()),
            (Some(1), "ok\n"),
            "runc: {}",
            runc.stderr
        );
    }
    // The denied mkdir made nothing.
    assert!(!b.dir.join("rootfs/x").exists());
}

/// A syscall number above every syscall the profile names gets ENOSYS (38), not the default
/// EPERM: runc's stub, which lets programs fall back from calls the profile predates.
#[test]
fn calls_newer_than_the_profile_get_enosys() {
    if !require_root() {
        return;
    }
    let b = bundle_with("seccomp-enosys", &unhex(ENOSYS_PROGRAM));
    let (runz, runc) = run_both(&b);
    assert_eq!(runz.code, Some(libc::ENOSYS), "runz: {}", runz.stderr);
    if let Some(runc) = runc {
        assert_eq!(runc.code, runz.code, "runc: {}", runc.stderr);
    }
}

/// x32 calls (x86_64 numbers with the x32 bit) are filtered by the profile's rules too, as
/// libseccomp builds runc's filter when `architectures` lists SCMP_ARCH_X32: an allowed one
/// (getpid, 39) passes the filter and reaches the kernel, which answers ENOSYS here (this
/// kernel has no CONFIG_X86_X32_ABI; with it, the call would succeed), and a denied one
/// (mkdir, 83) gets the profile's EPERM. Neither is killed (SIGSYS) wholesale.
#[test]
fn x32_calls_are_filtered_by_the_profiles_rules() {
    if !require_root() {
        return;
    }
    for (nr, name, errno) in [(39, "getpid", libc::ENOSYS), (83, "mkdir", libc::EPERM)] {
        let b = bundle_with(&format!("seccomp-x32-{nr}"), &x32_program(nr));
        let (runz, runc) = run_both(&b);
        assert_eq!(runz.code, Some(errno), "runz, x32 {name}: {}", runz.stderr);
        if let Some(runc) = runc {
            assert_eq!(runc.code, runz.code, "runc, x32 {name}: {}", runc.stderr);
        }
        assert!(!b.dir.join("rootfs/x").exists());
    }
}

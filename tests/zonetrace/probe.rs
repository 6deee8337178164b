//! zonetrace-probe: the tracing system calls tests/zonetrace.rs tries from inside a zone, where
//! busybox cannot make them. Built static (std only: `rustc -C target-feature=+crt-static`) so
//! it runs in the busybox zone. Each command makes one call and prints `ok` or the errno's
//! number and name; `alloc N` touches N MiB (the OOM killer may end it first).

extern "C" {
    fn syscall(n: i64, ...) -> i64;
}

const SYS_BPF: i64 = 321;
const SYS_PERF_EVENT_OPEN: i64 = 298;

fn report(r: i64) {
    if r < 0 {
        let e = std::io::Error::last_os_error();
        println!("{} {e}", e.raw_os_error().unwrap_or(0));
    } else {
        println!("ok");
    }
}

/// A perf_event_attr (version 0 size, 64 bytes) of `kind` and `config`.
fn perf_attr(kind: u32, config: u64) -> [u8; 64] {
    let mut a = [0u8; 64];
    a[0..4].copy_from_slice(&kind.to_ne_bytes());
    a[4..8].copy_from_slice(&64u32.to_ne_bytes());
    a[8..16].copy_from_slice(&config.to_ne_bytes());
    a
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    // SAFETY (all blocks below): raw system calls on buffers that outlive the call; the kernel
    // validates everything else.
    match arg(0).as_str() {
        "bpf" => {
            // BPF_MAP_CREATE of a valid one-entry array: only a policy can refuse it.
            let mut attr = [0u8; 72];
            attr[0..4].copy_from_slice(&2u32.to_ne_bytes()); // BPF_MAP_TYPE_ARRAY
            attr[4..8].copy_from_slice(&4u32.to_ne_bytes()); // key_size
            attr[8..12].copy_from_slice(&4u32.to_ne_bytes()); // value_size
            attr[12..16].copy_from_slice(&1u32.to_ne_bytes()); // max_entries
            report(unsafe { syscall(SYS_BPF, 0i64, attr.as_ptr(), 72i64) });
        }
        "perf_tracepoint" => {
            // PERF_TYPE_TRACEPOINT on this task (pid 0, any cpu): the tracepoint's id is given.
            let id: u64 = arg(1).parse().expect("tracepoint id");
            let attr = perf_attr(2, id);
            report(unsafe { syscall(SYS_PERF_EVENT_OPEN, attr.as_ptr(), 0i64, -1i64, -1i64, 0i64) });
        }
        "perf_self" => {
            // PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK on this task: self-monitoring.
            let attr = perf_attr(1, 0);
            report(unsafe { syscall(SYS_PERF_EVENT_OPEN, attr.as_ptr(), 0i64, -1i64, -1i64, 0i64) });
        }
        "alloc" => {
            let mib: usize = arg(1).parse().expect("MiB");
            let mut blocks = Vec::new();
            for i in 0..mib {
                let mut b = vec![0u8; 1 << 20];
                for p in (0..b.len()).step_by(4096) {
                    b[p] = 1;
                }
                blocks.push(b);
                if i % 16 == 0 {
                    println!("{i}");
                }
            }
            println!("ok {}", blocks.len());
        }
        other => {
            eprintln!("zonetrace-probe: unknown command {other:?}");
            std::process::exit(2);
        }
    }
}

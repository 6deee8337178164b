"""The cost of tracing (issue 22): system-call-heavy workloads timed bare, under an empty
bpftrace probe on every system call (the floor: what the kernel's tracepoint and a BPF
program cost before any work), and under `zonetrace syscount`. The runs alternate (bare,
floor, syscount, bare, ...) so that the load of a shared machine falls on all alike; the
figure is the median of each.

Workloads: `dd bs=1` from /dev/zero to /dev/null (two trivial system calls per byte: the worst
case, ~0.3 µs each), and `find /usr` (a tree walk: getdents64, newfstatat, openat; the shape
of real system-call-heavy work). syscount without -z counts every system call of the machine
(no event is dropped before the map update). Usage, as root:

    python3 bench/zonetrace.py --zonetrace target/.../zonetrace [--runs 7]

It prints a Markdown table and writes it to bench/results/zonetrace.md (with --out DIR).
"""

import argparse
import os
import select
import signal
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


WORKLOADS = {
    "dd bs=1 (300000 bytes)": ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=300000"],
    "find /usr": ["find", "/usr", "-xdev"],
}


def workload(argv):
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t


def attached(argv, marker, stream):
    """Start `argv` in its own session and wait (60 s at most) for `marker` on its `stream`
    ("stdout" or "stderr")."""
    p = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    f = getattr(p, stream)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = f.readline()
        if not line:
            raise RuntimeError(f"{argv[0]} ended before attaching (exit {p.wait()})")
        if marker in line:
            return p
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    raise RuntimeError(f"{argv[0]} did not attach within 60 s")


def under(tracer, marker, stream, argv):
    """One workload run while `tracer` is attached: (seconds, lines the tracer printed)."""
    p = attached(tracer, marker, stream)
    try:
        took = workload(argv)
    finally:
        # ^C to the session: bpftrace ends and prints its maps, zonetrace its rows.
        os.killpg(p.pid, signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    return took, len(out.splitlines())


def fmt(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zonetrace", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    floor = ["bpftrace", "-e", "tracepoint:raw_syscalls:sys_enter { }"]
    lines = [
        "# zonetrace overhead\n",
        f"{a.runs} runs of each, alternating; seconds, median (min–max).\n",
        "| workload | bare | empty probe | `zonetrace syscount` | slowdown (floor) |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="runz-test-zonetrace-bench-") as altroot:
        tracer = [a.zonetrace, "-R", altroot, "syscount", "-j", "-d", "120"]
        for name, argv in WORKLOADS.items():
            workload(argv)  # warm the page cache
            bare, empty, counted = [], [], []
            for _ in range(a.runs):
                bare.append(workload(argv))
                empty.append(under(floor, "Attaching", "stdout", argv)[0])
                counted.append(under(tracer, "attached", "stderr", argv)[0])
            b = statistics.median(bare)
            slow = (statistics.median(counted) / b - 1) * 100
            slow_floor = (statistics.median(empty) / b - 1) * 100
            lines.append(
                f"| {name} | {fmt(bare)} | {fmt(empty)} | {fmt(counted)} "
                f"| {slow:+.0f} % ({slow_floor:+.0f} %) |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "zonetrace.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

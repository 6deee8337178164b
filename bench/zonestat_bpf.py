"""The cost of zonestat's eBPF resources (issue 22): workloads timed bare, under `zonestat -r
syscalls` (a probe on every system call) and under `zonestat -r runq` (probes on every wakeup,
context switch and exit). The runs alternate (bare, syscalls, runq, bare, ...) so that the load
of a shared machine falls on all alike; the figure is the median of each.

Workloads: `dd bs=1` from /dev/zero to /dev/null (two trivial system calls per byte, no
context switch: the worst case for `-r syscalls`), and `dd bs=1` through a pipe to another
`dd bs=1` (each byte wakes the other side: the worst case for `-r runq`). Usage, as root:

    python3 bench/zonestat_bpf.py --zonestat target/.../zonestat [--runs 7]

It prints a Markdown table and writes it to bench/results/zonestat_bpf.md (with --out DIR).
bench/zonetrace.py (whose helpers this uses) measures the floor of a system-call probe.
"""

import argparse
import os
import signal
import statistics
import tempfile

from zonetrace import attached, fmt, workload

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOADS = {
    "dd bs=1 (300000 bytes)": ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=300000"],
    "dd bs=1 piped to dd bs=1 (100000 bytes)": [
        "sh",
        "-c",
        "dd if=/dev/zero bs=1 count=100000 2>/dev/null | dd of=/dev/null bs=1 2>/dev/null",
    ],
}


def under(tracer, argv):
    """One workload run while `tracer` (zonestat) is attached: seconds."""
    # zonestat prints "Collecting data for first interval..." once its probes are attached.
    p = attached(tracer, "Collecting", "stdout")
    try:
        took = workload(argv)
    finally:
        # ^C to zonestat alone: it stops and reaps its bpftrace (its own process group).
        os.kill(p.pid, signal.SIGINT)
    p.communicate(timeout=120)
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zonestat", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    lines = [
        "# zonestat -r syscalls / -r runq overhead\n",
        f"{a.runs} runs of each, alternating; seconds, median (min–max).\n",
        "| workload | bare | `-r syscalls` | `-r runq` | slowdown syscalls / runq |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="runz-test-zonestat-bench-") as altroot:

        def zonestat(res):
            return [a.zonestat, "-R", altroot, "-r", res, "1", "600"]

        for name, argv in WORKLOADS.items():
            workload(argv)  # warm up
            bare, sc, rq = [], [], []
            for _ in range(a.runs):
                bare.append(workload(argv))
                sc.append(under(zonestat("syscalls"), argv))
                rq.append(under(zonestat("runq"), argv))
            b = statistics.median(bare)
            s = (statistics.median(sc) / b - 1) * 100
            r = (statistics.median(rq) / b - 1) * 100
            lines.append(
                f"| {name} | {fmt(bare)} | {fmt(sc)} | {fmt(rq)} | {s:+.0f} % / {r:+.0f} % |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "zonestat_bpf.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

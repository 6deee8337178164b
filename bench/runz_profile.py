"""Where `runz run` spends its time: bench/results/profile.md.

Three views, so the next optimisation is chosen from data:
1. Phases: `RUNZ_TRACE_TIMES=1` makes every runz process print CLOCK_MONOTONIC marks
   (engine/src/trace.rs); the medians over N runs of the time between consecutive marks.
2. Syscalls: `strace -f -c` (counts and system time) and, from `strace -f -T`, the slowest
   single syscalls (wall time, which includes waiting for a lock or for another process).
3. CPU: `perf stat` (task clock, context switches, page faults) for runz and runc, and the top
   symbols of `perf record` over the same runs, when perf works on this host.
"""

import os
import re
import shutil
import statistics
import subprocess
import time


def _run(cmd, env=None):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env)


def phases(runz, bundle, runs):
    """Median/min/max ms between consecutive trace marks (plus spawn and exit)."""
    env = dict(os.environ, RUNZ_TRACE_TIMES="1")
    per = {}
    order = []
    for i in range(runs):
        t0 = time.monotonic() * 1000
        r = _run([runz, "--root", "/run/runz-bench", "run", "--bundle", bundle, f"ph-{i}"], env)
        t1 = time.monotonic() * 1000
        if r.returncode != 0:
            return None, r.stderr.decode()[-300:]
        marks = [("spawn (fork+exec of runz by the caller)", t0)]
        for line in r.stderr.decode().splitlines():
            m = re.match(r"runz-trace ([0-9.]+) (\d+) (.*)", line)
            if m:
                marks.append((m.group(3), float(m.group(1))))
        marks.append(("caller sees runz exit", t1))
        marks.sort(key=lambda m: m[1])
        for (_, a), (name, b) in zip(marks, marks[1:]):
            if name not in per:
                per[name] = []
                order.append(name)
            per[name].append(b - a)
    total = [sum(v) for v in zip(*[per[n] for n in order if len(per[n]) == runs])]
    rows = [(n, statistics.median(per[n]), min(per[n]), max(per[n])) for n in order]
    return (rows, statistics.median(total) if total else None), None


def strace_summary(runz, bundle):
    if not shutil.which("strace"):
        return "strace is not installed", ""
    r = _run(["strace", "-f", "-c", "-o", "/dev/stderr", runz, "--root", "/run/runz-bench",
              "run", "--bundle", bundle, "prof-c"])
    summary = r.stderr.decode().strip()
    log = "/tmp/runz-bench-strace.txt"
    _run(["strace", "-f", "-T", "-o", log, runz, "--root", "/run/runz-bench",
          "run", "--bundle", bundle, "prof-t"])
    slow = []
    try:
        with open(log) as f:
            for line in f:
                m = re.search(r"<([0-9.]+)>\s*$", line)
                if m and float(m.group(1)) >= 0.0005:
                    slow.append((float(m.group(1)) * 1000, line.strip()[:150]))
        os.unlink(log)
    except OSError:
        pass
    slow.sort(reverse=True)
    return summary, "\n".join(f"{ms:7.2f} ms  {l}" for ms, l in slow[:15])


def perf_views(rts, bundle, runs):
    """perf stat per runtime; perf record symbols for runz. Empty when perf does not work."""
    if not shutil.which("perf"):
        return None, None
    stats = {}
    for name, rt in rts.items():
        script = "; ".join(
            f"{' '.join(rt)} run --bundle {bundle} pf-{name}-{i} >/dev/null" for i in range(runs))
        r = _run(["perf", "stat", "-x", ",", "-e",
                  "task-clock,context-switches,cpu-migrations,page-faults", "--", "sh", "-c", script])
        if r.returncode != 0:
            continue
        vals = {}
        for line in r.stderr.decode().splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].replace(".", "").isdigit():
                vals[f[2]] = float(f[0]) / runs
        stats[name] = vals
    rt = rts["runz"]
    script = "; ".join(f"{' '.join(rt)} run --bundle {bundle} pr-{i} >/dev/null" for i in range(runs))
    data = "/tmp/runz-bench-perf.data"
    rec = _run(["perf", "record", "-q", "-F", "20000", "-g", "-o", data, "--", "sh", "-c", script])
    top = None
    if rec.returncode == 0:
        rep = _run(["perf", "report", "-i", data, "--stdio", "--no-children", "--comm", "runz",
                    "--sort", "dso,sym", "--percent-limit", "0.8", "-g", "none"])
        top = "\n".join(l for l in rep.stdout.decode().splitlines()
                        if l.strip() and not l.startswith("#"))[:6000]
        dso = _run(["perf", "report", "-i", data, "--stdio", "--no-children", "--comm", "runz",
                    "--sort", "dso", "-g", "none"])
        top = "By object:\n" + "\n".join(
            l for l in dso.stdout.decode().splitlines() if l.strip() and not l.startswith("#")
        )[:1500] + "\n\nBy symbol:\n" + top
    for f in (data, data + ".old"):
        if os.path.exists(f):
            os.unlink(f)
    return stats, top


def resident(runz, bundle_sleep):
    """KiB resident in a `runz run` process while its container runs, per mapping (the
    binary, each library, heap, stack, other anonymous memory), largest first."""
    cid = "rss-map"
    root = ["--root", "/run/runz-bench"]
    p = subprocess.Popen([runz] + root + ["run", "--bundle", bundle_sleep, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    out = {}
    try:
        for _ in range(100):
            st = subprocess.run([runz] + root + ["state", cid], capture_output=True, text=True)
            if '"running"' in st.stdout:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        path = None
        with open(f"/proc/{p.pid}/smaps") as f:
            for line in f:
                first = line.split()[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    path = os.path.basename(parts[5]) if len(parts) > 5 else "anonymous"
                elif first == "Rss:":
                    out[path] = out.get(path, 0) + int(line.split()[1])
    except OSError:
        pass
    finally:
        subprocess.run([runz] + root + ["kill", cid, "KILL"], capture_output=True)
        p.wait(timeout=30)
        subprocess.run([runz] + root + ["delete", "-f", cid], capture_output=True)
    return sorted(((k, v) for k, v in out.items() if v), key=lambda kv: -kv[1])


def write(path, runz, rts, bundle, runs, bundle_sleep=None):
    """Write profile.md; returns the phase rows and the resident-memory rows (for the
    results' notes on missed targets)."""
    res = resident(runz, bundle_sleep) if bundle_sleep else []
    ph, err = phases(runz, bundle, runs)
    summary, slow = strace_summary(runz, bundle)
    pstat, ptop = perf_views(rts, bundle, runs)
    out = ["# Where `runz run /bin/true` spends its time", "",
           "Written by bench/run.sh (bench/runz_profile.py) in the same run as latest.md.", ""]
    out += ["## Phases (RUNZ_TRACE_TIMES=1)", "",
            f"Median over {runs} runs of the wall time from the previous mark to this one "
            "(marks from every process — CLI, intermediate child, init — on one clock).", ""]
    if ph:
        rows, total = ph
        out += ["| phase ends at | median ms | min | max |", "|---|---|---|---|"]
        out += [f"| {n} | {m:.3f} | {a:.3f} | {b:.3f} |" for n, m, a, b in rows]
        if total:
            out += ["", f"Median total: {total:.2f} ms."]
    else:
        out.append(f"tracing failed: {err}")
    out += ["", "## Syscalls (strace -f -c; system time only, strace slows everything)", "",
            "```", summary, "```", "",
            "Slowest single syscalls of one traced run (strace -f -T, wall time):", "",
            "```", slow or "(none ≥ 0.5 ms)", "```", ""]
    if res:
        out += ["## What a `runz run` process holds resident while its container runs", "",
                "From /proc/PID/smaps of the waiting runz (KiB per mapping; code is mapped in "
                "64 KiB fault-around blocks, so it is the code touched, rounded up).", "",
                "| mapping | KiB |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in res]
        out += [f"| total | {sum(v for _, v in res)} |", ""]
    if pstat:
        out += ["## perf stat, per run", "",
                "| runtime | task-clock ms | context switches | cpu migrations | page faults |",
                "|---|---|---|---|---|"]
        for name, v in pstat.items():
            out.append(f"| {name} | {v.get('task-clock', 0):.2f} | {v.get('context-switches', 0):.1f} | "
                       f"{v.get('cpu-migrations', 0):.1f} | {v.get('page-faults', 0):.0f} |")
        out.append("")
    if ptop:
        out += ["## perf record: where runz's CPU time goes (symbols ≥ 0.8 %)", "", "```", ptop, "```", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))
    return (ph[0] if ph else None), res

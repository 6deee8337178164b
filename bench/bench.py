#!/usr/bin/env python3
"""Side-by-side benchmarks of runz against runc (and crun where it runs), and of zones.

Every figure is a median over N runs with min and max, the peers measured alternately
(A B A B ...) in the same run, so a noisy machine slows both alike; the table reports the
ratio to the peer. Writes bench/results/latest.md and bench/results/latest.svg.

Usage: bench.py --runz PATH --zoneadm PATH --zonecfg PATH --zlogin PATH --out DIR [--runs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import runz_profile
import targets
import distro_bench
import zones_bench

BASE = "/var/tmp/runz-bench"


def sh(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, **kw)


def timed(cmd):
    # stderr to a file, not a pipe: after `create` the container's init holds the runtime's
    # stdio until `start`, so a pipe would never reach EOF.
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd}: {err.read().decode().strip()}")
    return dt


def stats(samples):
    ms = [s * 1000 for s in samples]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "n": len(ms)}


def make_bundle(path, runz, args, cgroup):
    os.makedirs(path, exist_ok=True)
    sh([os.path.join(os.path.dirname(__file__), "..", "scripts", "mk-rootfs.sh"),
        os.path.join(path, "rootfs")])
    sh([runz, "spec", "--bundle", path])
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    # The oldest version every peer accepts (crun 1.8 refuses 1.3.0 as unknown).
    c["ociVersion"] = "1.0.2"
    c["linux"]["cgroupsPath"] = cgroup
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(c, f)


def runtimes(runz):
    rts = {"runz": [runz, "--root", "/run/runz-bench"]}
    if shutil.which("runc"):
        rts["runc"] = ["runc", "--root", "/run/runc-bench"]
    crun_note = None
    if shutil.which("crun"):
        rts["crun"] = ["crun", "--root", "/run/crun-bench"]
    return rts, crun_note


def alternate(rts, make_cmds, runs, per_run=None):
    """Run each runtime's command list alternately; returns name -> list of seconds."""
    out = {n: [] for n in rts}
    failed = {}
    for i in range(runs):
        for name, rt in rts.items():
            if name in failed:
                continue
            try:
                total = 0.0
                for cmd in make_cmds(name, rt, i):
                    total += timed(cmd)
                out[name].append(total)
            except RuntimeError as e:
                failed[name] = str(e).splitlines()[-1][:200]
            finally:
                if per_run:
                    per_run(name, rt, i)
    return out, failed


def bench_run(rts, bundle, runs):
    def cmds(name, rt, i):
        return [rt + ["run", "--bundle", bundle, f"b-{name}-{i}"]]
    return alternate(rts, cmds, runs)


def bench_steps(rts, bundle, runs):
    res = {}
    failed = {}
    for step in ("create", "start", "delete"):
        res[step] = {n: [] for n in rts}
    for i in range(runs):
        for name, rt in rts.items():
            if name in failed:
                continue
            cid = f"s-{name}-{i}"
            try:
                res["create"][name].append(timed(rt + ["create", "--bundle", bundle, cid]))
                res["start"][name].append(timed(rt + ["start", cid]))
                res["delete"][name].append(timed(rt + ["delete", "-f", cid]))
            except RuntimeError as e:
                failed[name] = str(e).splitlines()[-1][:200]
                subprocess.run(rt + ["delete", "-f", cid], capture_output=True)
    return res, failed


def bench_exec(rts, bundle_sleep, runs):
    res = {n: [] for n in rts}
    failed = {}
    live = {}
    for name, rt in rts.items():
        cid = f"e-{name}"
        try:
            timed(rt + ["run", "-d", "--bundle", bundle_sleep, cid])
            live[name] = cid
        except RuntimeError as e:
            failed[name] = str(e).splitlines()[-1][:200]
    for i in range(runs):
        for name, cid in live.items():
            res[name].append(timed(rts[name] + ["exec", cid, "/bin/true"]))
    for name, cid in live.items():
        subprocess.run(rts[name] + ["delete", "-f", cid], capture_output=True)
    return res, failed


def peak_rss(rts, bundle, runs):
    """Peak RSS (KiB) of the runtime process during `run`, from /usr/bin/time -v; N runs each,
    alternating."""
    out = {n: [] for n in rts}
    for i in range(runs):
        for name, rt in rts.items():
            r = subprocess.run(["/usr/bin/time", "-v"] + rt +
                               ["run", "--bundle", bundle, f"rss-{name}-{i}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
            for line in r.stderr.decode().splitlines():
                if r.returncode == 0 and "Maximum resident set size" in line:
                    out[name].append(int(line.split(":")[1]))
    return {n: v for n, v in out.items() if v}


def stripped_size(path):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "bin")
        shutil.copy(path, p)
        sh(["strip", p])
        return os.path.getsize(p)


def fmt(s):
    return f"{s['median']:.2f} ms ({s['min']:.2f}–{s['max']:.2f})"


def ratio_row(label, res, failed):
    cells = [label]
    base = res.get("runz")
    for name in ("runz", "runc", "crun"):
        if name in failed:
            cells.append(f"fails: {failed[name]}")
        elif res.get(name):
            s = stats(res[name])
            if name != "runz" and base:
                r = statistics.median(base) / statistics.median(res[name])
                cells.append(f"{fmt(s)}; runz = {r:.2f}x")
            else:
                cells.append(fmt(s))
        else:
            cells.append("n/a")
    return "| " + " | ".join(cells) + " |"


def svg(rows, path):
    """A small grouped bar chart of median ms per benchmark and runtime."""
    colors = {"runz": "#2b7bb9", "runc": "#d95f02", "crun": "#1b9e77"}
    width, bar, gap = 720, 22, 40
    height = 60 + len(rows) * (3 * bar + gap)
    vmax = max([v for _, vals in rows for v in vals.values()] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           '<text x="10" y="20" font-size="14">Median time (ms), lower is better</text>']
    y = 40
    for label, vals in rows:
        out.append(f'<text x="10" y="{y + bar}">{label}</text>')
        for i, (name, v) in enumerate(vals.items()):
            w = int(420 * v / vmax)
            yy = y + i * bar
            out.append(f'<rect x="200" y="{yy}" width="{w}" height="{bar - 4}" fill="{colors[name]}"/>')
            out.append(f'<text x="{205 + w}" y="{yy + bar - 8}">{name} {v:.2f}</text>')
        y += 3 * bar + gap
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def load_guest(d):
    """The guest run's raw results (bench/run.sh --guest), or None."""
    if not d or not os.path.exists(os.path.join(d, "latest.json")):
        return None
    with open(os.path.join(d, "latest.json")) as f:
        g = json.load(f)
    g["mtime"] = time.strftime("%Y-%m-%d %H:%M UTC",
                               time.gmtime(os.path.getmtime(os.path.join(d, "latest.json"))))
    return g


def runtime_rows(r):
    """The runtime table's rows (run, create/start/delete, exec, peak RSS) of a run's raw
    results, as written to latest.json."""
    lines = ["| benchmark | runz | runc | crun |", "|---|---|---|---|",
             ratio_row("run /bin/true", r["run"], r["run_failed"])]
    for step in ("create", "start", "delete"):
        lines.append(ratio_row(f"{step} (-f)" if step == "delete" else step, r["steps"][step],
                               r["steps_failed"]))
    lines.append(ratio_row("exec /bin/true", r["exec"], r["exec_failed"]))
    rss = r["rss"]
    lines.append("| peak RSS of `run` (time -v) | " + " | ".join(
        f"{statistics.median(rss[n]) / 1024:.1f} MiB ({min(rss[n]) / 1024:.1f}–{max(rss[n]) / 1024:.1f})"
        if n in rss else "n/a" for n in ("runz", "runc", "crun")) + " |")
    return lines


def guest_section(g):
    """The runtime table of the cgroup-v2 guest, where crun runs too."""
    return [f"## Runtimes in {g['where']}", "",
            f"Kernel {g['kernel']}, {g['runs']} runs per figure, peers alternated (run of "
            f"{g['mtime']}; details in [guest/latest.md](guest/latest.md)). Under TCG every "
            "instruction is emulated, so absolute times are tens of times the host's: compare "
            "ratios.", ""] + runtime_rows(g) + [""]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runz", required=True)
    p.add_argument("--zoneadm", required=True)
    p.add_argument("--zonecfg", required=True)
    p.add_argument("--zlogin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--zones", type=int, default=100)
    p.add_argument("--where", default="this host (hybrid cgroup v1)",
                   help="where the runtimes ran, for the results' heading")
    p.add_argument("--no-targets", dest="targets", action="store_false",
                   help="no targets section (the guest's run: the host's results judge it)")
    p.add_argument("--guest-results",
                   help="a directory with the cgroup-v2 guest's latest.json (bench/run.sh "
                        "--guest): its crun comparison is quoted and checked against the targets")
    a = p.parse_args()
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(a.out, exist_ok=True)
    rts, _ = runtimes(a.runz)
    true_bundle = os.path.join(BASE, "true")
    sleep_bundle = os.path.join(BASE, "sleep")
    make_bundle(true_bundle, a.runz, ["/bin/true"], "runz-bench/true")
    make_bundle(sleep_bundle, a.runz, ["/bin/sleep", "1000"], "runz-bench/sleep")

    run_res, run_failed = bench_run(rts, true_bundle, a.runs)
    steps, steps_failed = bench_steps(rts, true_bundle, a.runs)
    exec_res, exec_failed = bench_exec(rts, sleep_bundle, a.runs)
    rss = peak_rss({k: v for k, v in rts.items() if k not in run_failed}, true_bundle, a.runs)
    sizes = {"runz": stripped_size(a.runz)}
    for n in ("runc", "crun"):
        if shutil.which(n):
            sizes[n] = stripped_size(shutil.which(n))
    zones = zones_bench.run(a, BASE, a.runs, a.zones)
    zones.update(distro_bench.run(a, BASE, min(a.runs, 10)))
    phase_rows, resident = runz_profile.write(
        os.path.join(a.out, "profile.md"), a.runz,
        {k: v for k, v in rts.items() if k not in run_failed}, true_bundle, a.runs, sleep_bundle)
    shutil.rmtree(BASE, ignore_errors=True)
    # The runtimes remove their containers' cgroups, not the bundles' common parent.
    zones_bench.remove_cgroups("runz-bench")

    # The raw samples, for the host's results to quote the guest's (crun) comparison.
    raw = {"where": a.where, "runs": a.runs, "kernel": os.uname().release,
           "run": run_res, "run_failed": run_failed, "steps": steps,
           "steps_failed": steps_failed, "exec": exec_res, "exec_failed": exec_failed,
           "rss": rss, "sizes": sizes, "zones": zones}
    lines = ["# Benchmark results", "",
             f"Machine: {os.cpu_count()} CPUs, kernel {os.uname().release}; "
             f"{a.runs} runs per figure, peers alternated; median (min–max).", "",
             f"## Runtimes on {a.where}", ""] + runtime_rows(raw)
    lines.append("| stripped binary | " + " | ".join(
        f"{sizes[n] / 2**20:.2f} MiB" if n in sizes else "n/a" for n in ("runz", "runc", "crun")) + " |")
    crun_note = ("crun 1.8 refuses this host's hybrid cgroups (the unified mount has a controller); "
                 "the cgroup-v2 guest below compares with crun."
                 if "crun" in run_failed else "")
    lines += ["", crun_note, ""]
    guest = load_guest(a.guest_results)
    if guest:
        lines += guest_section(guest)
    lines += zones_bench.table(zones, fmt)
    lines += distro_bench.table(zones, fmt)
    storage = None
    if os.path.exists(os.path.join(a.out, "storage.json")):
        with open(os.path.join(a.out, "storage.json")) as f:
            storage = json.load(f)
    if a.targets:
        lines += [""] + targets.section(run_res, steps, rss, sizes, zones, phase_rows, guest,
                                        storage, resident)
    else:
        lines += ["", "The targets are judged in the host's results (../latest.md), which quote "
                  "this run.", ""]
    lines += ["", "Where `runz run` spends its time: [profile.md](profile.md) "
              "(phases, syscalls, perf).", ""]
    md = os.path.join(a.out, "latest.md")
    with open(md, "w") as f:
        f.write("\n".join(lines))
    tmp = os.path.join(a.out, "latest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(raw, f, indent=1)
    os.rename(tmp, os.path.join(a.out, "latest.json"))
    rows = []
    for label, res, failed in (("run /bin/true", run_res, run_failed),
                               ("create", steps["create"], steps_failed),
                               ("start", steps["start"], steps_failed),
                               ("delete -f", steps["delete"], steps_failed),
                               ("exec /bin/true", exec_res, exec_failed)):
        rows.append((label, {n: statistics.median(v) * 1000 for n, v in res.items()
                             if v and n not in failed}))
    svg(rows, os.path.join(a.out, "latest.svg"))
    print(open(md).read())


if __name__ == "__main__":
    sys.exit(main())

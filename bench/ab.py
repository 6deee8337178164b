#!/usr/bin/env python3
"""bench/ab.py OLD NEW [--runs N]: two runz binaries and runc, alternated on the same bundles:
`run /bin/true` and `exec /bin/true` medians and ratios to runc. For "does this change make
runz slower": both binaries see the same load at the same moments, so a busy machine shifts
all three alike. Needs root and runc; cleans up its bundles, state and cgroups."""
import argparse
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import zones_bench  # noqa: E402

BASE = "/var/tmp/runz-bench-ab"
ROOTS = {"old": "/run/runz-bench-old", "new": "/run/runz-bench-new", "runc": "/run/runc-bench-ab"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--runs", type=int, default=60)
    a = p.parse_args()
    rts = {"old": [a.old, "--root", ROOTS["old"]], "new": [a.new, "--root", ROOTS["new"]],
           "runc": ["runc", "--root", ROOTS["runc"]]}
    shutil.rmtree(BASE, ignore_errors=True)
    true_bundle = os.path.join(BASE, "true")
    sleep_bundle = os.path.join(BASE, "sleep")
    try:
        bench.make_bundle(true_bundle, a.new, ["/bin/true"], "runz-bench-ab/true")
        bench.make_bundle(sleep_bundle, a.new, ["/bin/sleep", "1000"], "runz-bench-ab/sleep")
        run, run_failed = bench.bench_run(rts, true_bundle, a.runs)
        exe, exec_failed = bench.bench_exec(rts, sleep_bundle, a.runs)
    finally:
        shutil.rmtree(BASE, ignore_errors=True)
        for root in ROOTS.values():
            shutil.rmtree(root, ignore_errors=True)
        zones_bench.remove_cgroups("runz-bench-ab")
    for failed in (run_failed, exec_failed):
        if failed:
            sys.exit(f"ab: failed: {failed}")
    for what, res in (("run /bin/true", run), ("exec /bin/true", exe)):
        m = {n: statistics.median(v) for n, v in res.items()}
        print(f"{what}: old {m['old'] * 1000:.2f} ms ({m['old'] / m['runc']:.2f}x runc), "
              f"new {m['new'] * 1000:.2f} ms ({m['new'] / m['runc']:.2f}x runc), "
              f"runc {m['runc'] * 1000:.2f} ms; {a.runs} runs each, alternated")


if __name__ == "__main__":
    main()

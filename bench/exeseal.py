#!/usr/bin/env python3
"""bench/exeseal.py RUNZ BUNDLE: the cost of runz's CVE-2019-5736 seal (runtime::exeseal).

The same binary is run twice over: as it is (it re-executes itself from a read-only clone)
and from a read-only bind mount of its directory (already sealed: no re-exec). Prints CPU
time (user + sys of the children: stable on a loaded machine) and wall time per run for
`runz run` of BUNDLE and for the seal alone (`runz create` of a missing bundle, which fails
right after sealing). Needs root. Everything it makes is named runz-test-exeseal-*.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time


def measure(binary, n, argv):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for i in range(n):
        subprocess.run([binary] + argv(i), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=False)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / n * 1e6
    return cpu, (t1 - t0) / n * 1e6


def main():
    runz, bundle = sys.argv[1], os.path.abspath(sys.argv[2])
    base = tempfile.mkdtemp(prefix="runz-test-exeseal-", dir="/var/tmp")
    plain, ro = os.path.join(base, "plain"), os.path.join(base, "ro")
    os.makedirs(plain)
    os.makedirs(ro)
    shutil.copy2(runz, os.path.join(plain, "runz"))
    state = "/run/runz-test-exeseal"
    try:
        subprocess.run(["mount", "--bind", plain, ro], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", ro], check=True)
        cases = {
            "seal alone (create of a missing bundle)": (200, lambda i: [
                "--root", state, "create", "-b", "/nonexistent", "runz-test-exeseal"]),
            "runz run (busybox true)": (50, lambda i: [
                "--root", state, "run", "-b", bundle, f"runz-test-exeseal-{i}"]),
        }
        for name, (n, argv) in cases.items():
            for _ in range(3):
                for label, d in (("sealing", plain), ("already sealed", ro)):
                    cpu, wall = measure(os.path.join(d, "runz"), n, argv)
                    print(f"{name}: {label}: cpu {cpu:.0f} us, wall {wall:.0f} us ({n} runs)")
    finally:
        subprocess.run(["umount", ro], check=False)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()

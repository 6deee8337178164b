"""Distribution zone benchmark: the Debian 12 image of scripts/mk-debian-image.sh booted as a
zone with systemd as init, from `zoneadm boot` until `systemctl is-system-running --wait`
prints `running` (through zlogin), then `zoneadm shutdown` (systemd's own power-off).

Median over N runs with min and max, beside the busybox zone's boot figure (zones_bench).
Run alone: `python3 bench/distro_bench.py --zoneadm ... --zonecfg ... --zlogin ... [--runs N]`.
"""

import argparse
import os
import shutil
import subprocess
import time

import zones_bench

HERE = os.path.dirname(os.path.abspath(__file__))
# Inside the zone: wait (at most 10 s) for systemd's private socket, then for the boot to
# finish (at most 120 s); prints the system state.
WAIT = ("for i in $(seq 100); do [ -S /run/systemd/private ] && break; sleep 0.1; done; "
        "exec timeout 120 systemctl is-system-running --wait")


def run(a, base, runs):
    alt = os.path.join(base, "distro")
    shutil.rmtree(alt, ignore_errors=True)
    os.makedirs(alt)
    img = os.path.join(base, "debian-image")
    shutil.rmtree(img, ignore_errors=True)
    subprocess.run([os.path.join(HERE, "..", "scripts", "mk-debian-image.sh"), img], check=True,
                   capture_output=True)
    h = zones_bench.Host(a, alt)
    boot, down = [], []
    try:
        h.zonecfg("deb", "create; set zonepath=/zones/deb")
        h.zoneadm("deb", "install", "-d", img)
        for _ in range(runs):
            t = time.perf_counter()
            h.zoneadm("deb", "boot")
            state = h.run(a.zlogin, "-R", alt, "deb", WAIT).strip()
            boot.append(time.perf_counter() - t)
            if state != "running":
                raise RuntimeError(f"Debian zone: system state {state!r}")
            t = time.perf_counter()
            h.zoneadm("deb", "shutdown")
            down.append(time.perf_counter() - t)
    finally:
        subprocess.run([a.zoneadm, "-R", alt, "-z", "deb", "halt"], capture_output=True, env=h.env)
        subprocess.run([a.zoneadm, "-R", alt, "-z", "deb", "uninstall", "-F"], capture_output=True,
                       env=h.env)
        shutil.rmtree(alt, ignore_errors=True)
        shutil.rmtree(img, ignore_errors=True)
        zones_bench.remove_cgroups("runz-bench-zones")
    return {"debian_boot": zones_bench._stats(boot), "debian_shutdown": zones_bench._stats(down)}


def table(d, fmt):
    """Markdown rows for the distribution zone results (appended to the zones table)."""
    return ["| Debian 12 zone (systemd): `zoneadm boot` until `systemctl is-system-running` = "
            f"running | {fmt(d['debian_boot'])} | ≤ 1.5 s |",
            f"| ... `zoneadm shutdown` (systemd's power-off) | {fmt(d['debian_shutdown'])} | |"]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoneadm", required=True)
    p.add_argument("--zonecfg", required=True)
    p.add_argument("--zlogin", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--base", default="/var/tmp/runz-bench-distro")
    args = p.parse_args()
    res = run(args, args.base, args.runs)
    shutil.rmtree(args.base, ignore_errors=True)
    f = lambda s: f"{s['median']:.0f} ms ({s['min']:.0f}–{s['max']:.0f})"  # noqa: E731
    print("\n".join(table(res, f)))

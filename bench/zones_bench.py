"""Zone benchmarks on overlay storage: boot until `zlogin Z true` succeeds (without and with an
anet), halt, the supervisor's memory, and many zones booted one after another.

Every figure is a median over N runs with min and max; the zone without network and the zone
with an anet are measured alternately.
"""

import json
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _stats(samples):
    ms = [s * 1000 for s in samples]
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "n": len(ms)}


def _kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def meminfo_used_kib():
    m = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            m[k] = int(v.split()[0])
    return m["MemTotal"] - m["MemAvailable"]


class Host:
    """A private zone host under ALTROOT (zones, images, datalinks, cgroups beneath a parent)."""

    def __init__(self, a, alt):
        self.a = a
        self.alt = alt
        self.env = dict(os.environ, ZONES_CGROUP_PARENT="runz-bench-zones")

    def run(self, *args):
        r = subprocess.run(list(args), env=self.env, capture_output=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, args))}: {r.stderr.decode().strip()}")
        return r.stdout.decode()

    def zonecfg(self, zone, cmds):
        return self.run(self.a.zonecfg, "-R", self.alt, "-z", zone, cmds)

    def zoneadm(self, zone, *args):
        try:
            return self.run(self.a.zoneadm, "-R", self.alt, "-z", zone, *args)
        except RuntimeError as e:
            log = os.path.join(self.alt, "run/zones", zone, "zoneadmd.log")
            tail = open(log).read()[-1500:] if os.path.exists(log) else "(no zoneadmd.log)"
            raise RuntimeError(f"{e}\nzoneadmd.log of {zone}:\n{tail}") from None

    def supervisor_pid(self, zone):
        with open(os.path.join(self.alt, "run/zones", zone, "zone.json")) as f:
            return json.load(f)["supervisor_pid"]


def _boot_login(h, zone):
    t = time.perf_counter()
    h.zoneadm(zone, "boot")
    h.run(h.a.zlogin, "-R", h.alt, zone, "true")
    return time.perf_counter() - t


def _halt(h, zone):
    t = time.perf_counter()
    h.zoneadm(zone, "halt")
    return time.perf_counter() - t


def run(a, base, runs, many):
    alt = os.path.join(base, "zones")
    shutil.rmtree(alt, ignore_errors=True)
    os.makedirs(alt)
    img = os.path.join(base, "zone-image")
    subprocess.run([os.path.join(HERE, "..", "scripts", "mk-rootfs.sh"), img], check=True,
                   capture_output=True)
    with open(os.path.join(img, "etc/inittab"), "w") as f:
        f.write("::sysinit:/bin/hostname -F /etc/hostname\n::askfirst:-/bin/sh\n")
    h = Host(a, alt)
    dladm = os.path.join(os.path.dirname(a.zoneadm), "dladm")
    imgadm = os.path.join(os.path.dirname(a.zoneadm), "imgadm")
    stub = "rzbench0"
    res = {}
    try:
        h.run(imgadm, "-R", alt, "import", "--rootfs", img, "--name", "bench")
        h.run(dladm, "-R", alt, "create-etherstub", stub)
        h.zonecfg("b", "create; set zonepath=/zones/b; set storage=overlay")
        h.zonecfg("n", "create; set zonepath=/zones/n; set storage=overlay; add anet; "
                  f"set linkname=net0; set lower-link={stub}; set allowed-address=10.77.0.5/24; end")
        for z in ("b", "n"):
            h.zoneadm(z, "install", "-i", "bench")
        boot = {"b": [], "n": []}
        halt = {"b": [], "n": []}
        rss, pss = [], []
        for _ in range(runs):
            for z in ("b", "n"):
                boot[z].append(_boot_login(h, z))
                if z == "b":
                    # zoneadmd sheds its setup memory once idle for 50 ms: sample the idle state.
                    time.sleep(0.2)
                    pid = h.supervisor_pid(z)
                    rss.append(_kib(f"/proc/{pid}/smaps_rollup", "Rss:"))
                    pss.append(_kib(f"/proc/{pid}/smaps_rollup", "Pss:"))
                halt[z].append(_halt(h, z))
        res.update({"boot": _stats(boot["b"]), "boot_anet": _stats(boot["n"]),
                    "halt": _stats(halt["b"]), "halt_anet": _stats(halt["n"]),
                    "sup_rss_kib": [x for x in rss if x is not None],
                    "sup_pss_kib": [x for x in pss if x is not None]})
        for i in range(many):
            h.zonecfg(f"m{i}", f"create; set zonepath=/zones/m{i}; set storage=overlay")
            h.zoneadm(f"m{i}", "install", "-i", "bench")
        time.sleep(0.5)
        mem_before = meminfo_used_kib()
        t = time.perf_counter()
        for i in range(many):
            h.zoneadm(f"m{i}", "boot")
        up = time.perf_counter() - t
        time.sleep(0.2)
        mem_after = meminfo_used_kib()
        sup = [h.supervisor_pid(f"m{i}") for i in range(many)]
        sup_pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") or 0 for p in sup)
        t = time.perf_counter()
        for i in range(many):
            h.zoneadm(f"m{i}", "halt")
        down = time.perf_counter() - t
        res.update({"many": many, "many_up_s": up, "many_down_s": down,
                    "many_mem_mib": (mem_after - mem_before) / 1024,
                    "many_sup_pss_mib": sup_pss / 1024})
    finally:
        for z in ["b", "n"] + [f"m{i}" for i in range(many)]:
            subprocess.run([a.zoneadm, "-R", alt, "-z", z, "halt"], capture_output=True, env=h.env)
            subprocess.run([a.zoneadm, "-R", alt, "-z", z, "uninstall", "-F"], capture_output=True,
                           env=h.env)
        subprocess.run([dladm, "-R", alt, "delete-etherstub", stub], capture_output=True, env=h.env)
        shutil.rmtree(alt, ignore_errors=True)
        shutil.rmtree(img, ignore_errors=True)
        remove_cgroups("runz-bench-zones")
    return res


def remove_cgroups(name):
    """Remove the (empty) cgroup directories called `name` in every hierarchy."""
    for root, dirs, _ in os.walk("/sys/fs/cgroup", topdown=False):
        for d in dirs:
            if d == name:
                try:
                    os.rmdir(os.path.join(root, d))
                except OSError:
                    pass


def table(z, fmt):
    """Markdown lines for the zone results."""
    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    rss, pss = med(z.get("sup_rss_kib")), med(z.get("sup_pss_kib"))
    lines = ["## Zones (overlay storage)", "",
             "| benchmark | result | target |", "|---|---|---|",
             f"| `zoneadm boot` until `zlogin Z true` succeeds, no network | {fmt(z['boot'])} | ≤ 50 ms |",
             f"| ... with one anet (veth on an etherstub) | {fmt(z['boot_anet'])} | ≤ 100 ms |",
             f"| `zoneadm halt`, no network | {fmt(z['halt'])} | |",
             f"| `zoneadm halt`, one anet | {fmt(z['halt_anet'])} | |"]
    if rss is not None:
        lines.append(f"| zoneadmd memory (smaps_rollup) | Rss {rss / 1024:.2f} MiB "
                     f"({min(z['sup_rss_kib']) / 1024:.2f}–{max(z['sup_rss_kib']) / 1024:.2f}), "
                     f"Pss {pss / 1024:.2f} MiB | Rss ≤ 1 MiB |")
    lines += [f"| {z['many']} zones booted one after another | {z['many_up_s']:.2f} s, "
              f"{z['many_mem_mib']:.0f} MiB host memory (their zoneadmds: Pss "
              f"{z['many_sup_pss_mib']:.1f} MiB) | ≤ 10 s |",
              f"| ... and halted | {z['many_down_s']:.2f} s | |"]
    return lines

#!/usr/bin/env python3
"""Zone storage: `zoneadm install -i IMAGE` time and extra disk use per zone, for a 2 MiB and a
500 MiB image, on overlay and dir (each on its own loop-mounted ext4), btrfs (loop-mounted)
and zfs (a zfs-fuse pool on a sparse file). Writes bench/results/storage.md.

OpenZFS (the kernel module) runs only in the qemu guest of `integration/vm/run.sh --openzfs`
(this host cannot load modules): there, `--backends zfs --raw FILE` measures the zfs backend
on an OpenZFS pool and writes the raw figures; on the host, `--openzfs FILE` adds them to the
report beside zfs-fuse, btrfs and overlay. `bench/run.sh --storage-openzfs` does both.

Each backend's filesystem is made fresh and mounted at ALTROOT/zones, so its used space
(statvfs) is what the zones cost; the image store (and so overlay's shared lower dir) stays
outside it. The first install on btrfs and zfs also copies the image into the backend (a
read-only subvolume, a dataset with @final): that one-time cost is shown apart; the figures
are the median of the installs after it.

Usage: storage.py --zoneadm PATH --zonecfg PATH --imgadm PATH --out DIR [--zones N]
                  [--backends overlay,btrfs,zfs,dir] [--base DIR] [--raw FILE] [--openzfs FILE]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

BASE = "/var/tmp/runz-bench-storage"
MIB = 1 << 20
BACKENDS = ("overlay", "btrfs", "zfs", "dir")
# Install time and extra disk per zone, big image / small image: OpenZFS's target (issue 19);
# the host's backends keep the 2x of the first storage work.
OPENZFS_TARGET = 1.2
HOST_TARGET = 2.0


def sh(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: {r.stderr.decode().strip()}")
    return r.stdout.decode()


def used_bytes(path, pool=None):
    """Space in use on the filesystem at `path`; for a zfs pool its `used` (all datasets:
    statvfs of the pool's mountpoint sees only the root dataset)."""
    os.sync()
    if pool:
        # OpenZFS accounts space at the transaction group's sync (zfs-fuse has no `zpool sync`
        # and accounts at once).
        sh(["zpool", "sync", pool], check=False)
        return int(sh(["zfs", "get", "-H", "-p", "-o", "value", "used", pool]).strip())
    s = os.statvfs(path)
    return (s.f_blocks - s.f_bfree) * s.f_frsize


class LoopFs:
    """A sparse file on a loop device with a fresh filesystem, mounted at `mnt`."""

    def __init__(self, name, fstype, size, mnt):
        self.file = os.path.join(BASE, f"{name}.img")
        self.mnt = mnt
        with open(self.file, "wb") as f:
            f.truncate(size)
        self.dev = sh(["losetup", "-f", "--show", self.file]).strip()
        mkfs = ["mkfs.btrfs", "-q", "-f"] if fstype == "btrfs" else ["mkfs.ext4", "-q", "-F"]
        sh(mkfs + [self.dev])
        os.makedirs(mnt, exist_ok=True)
        sh(["mount", self.dev, mnt])

    def close(self):
        sh(["umount", self.mnt], check=False)
        sh(["losetup", "-d", self.dev], check=False)
        os.unlink(self.file)


class ZfsPool:
    """A zfs pool on a sparse file: OpenZFS's when its module is loaded, else zfs-fuse's (the
    daemon started here if none runs)."""

    def __init__(self, name, size, mnt):
        self.daemon = None
        if subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
            self.daemon = subprocess.Popen(["zfs-fuse", "--no-daemon", "--no-kstat-mount"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                if subprocess.run(["zpool", "list"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
        self.name = name
        self.file = os.path.join(BASE, f"{name}.img")
        with open(self.file, "wb") as f:
            f.truncate(size)
        self.mnt = mnt
        sh(["zpool", "create", "-f", "-m", mnt, name, self.file])

    def close(self):
        for _ in range(50):
            if subprocess.run(["zpool", "destroy", "-f", self.name],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        os.unlink(self.file)
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=20)


def make_image(path, extra_mib):
    """The busybox rootfs plus `extra_mib` MiB of random data in 10 MiB files."""
    sh([os.path.join(os.path.dirname(__file__), "..", "scripts", "mk-rootfs.sh"), path])
    data = os.path.join(path, "data")
    os.makedirs(data, exist_ok=True)
    for i in range(extra_mib // 10):
        with open(os.path.join(data, f"blob{i}"), "wb") as f:
            f.write(os.urandom(10 * MIB))


def bench_backend(a, backend, image_dir, image_mib, zones):
    alt = os.path.join(BASE, f"alt-{backend}-{image_mib}")
    shutil.rmtree(alt, ignore_errors=True)
    os.makedirs(alt)
    R = ["-R", alt]
    mnt = os.path.join(alt, "zones")
    if backend in ("overlay", "dir"):
        fs = LoopFs(f"{backend}-{image_mib}", "ext4", 8 << 30, mnt)
        storage = backend
    elif backend == "btrfs":
        fs = LoopFs(f"btrfs-{image_mib}", "btrfs", 8 << 30, mnt)
        storage = "btrfs"
    else:
        fs = ZfsPool(f"runzbench{image_mib}", 8 << 30, mnt)
        storage = f"zfs:{fs.name}/zones"
        sh(["zfs", "create", f"{fs.name}/zones"])
    try:
        sh([a.imgadm, *R, "import", "--rootfs", "--name", "img", image_dir])
        pool = fs.name if backend == "zfs" else None
        base = used_bytes(mnt, pool)
        times, extra = [], []
        first = None
        for i in range(zones + 1):
            z = f"z{i}"
            sh([a.zonecfg, *R, "-z", z, f"create; set zonepath=/zones/{z}; set storage={storage}"])
            before = used_bytes(mnt, pool)
            t = time.perf_counter()
            sh([a.zoneadm, *R, "-z", z, "install", "-i", "img"])
            dt = time.perf_counter() - t
            grew = used_bytes(mnt, pool) - before
            if i == 0 and backend in ("btrfs", "zfs"):
                first = (dt, grew)
                continue
            times.append(dt)
            extra.append(grew)
        total = used_bytes(mnt, pool) - base
        for i in range(zones + 1):
            sh([a.zoneadm, *R, "-z", f"z{i}", "uninstall", "-F"], check=False)
        sh([a.imgadm, *R, "delete", "img"], check=False)
    finally:
        fs.close()
        shutil.rmtree(alt, ignore_errors=True)
    return {"ms": statistics.median(times) * 1000, "min": min(times) * 1000,
            "max": max(times) * 1000, "extra": statistics.median(extra),
            "total": total, "first": first}


def fmt_bytes(n):
    if abs(n) >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def zfs_version():
    """`zfs version`'s module line (OpenZFS), else None (zfs-fuse has no such command)."""
    r = subprocess.run(["zfs", "version"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    lines = r.stdout.split()
    kmod = [x for x in lines if x.startswith("zfs-kmod-")]
    return (kmod or lines or [None])[0]


def measure(a, backends):
    """{(backend, image MiB): figures} for `backends`, on fresh images of 2 and big MiB."""
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(BASE)
    images = {}
    res = {}
    try:
        for mib, extra in ((2, 0), (a.big_mib, a.big_mib)):
            d = os.path.join(BASE, f"image-{mib}")
            make_image(d, extra)
            images[mib] = d
        for backend in backends:
            for mib, d in images.items():
                res[(backend, mib)] = bench_backend(a, backend, d, mib, a.zones)
                print(backend, mib, res[(backend, mib)], file=sys.stderr)
    finally:
        shutil.rmtree(BASE, ignore_errors=True)
    return res


def rows(label, res, backend, big_mib):
    out = []
    for mib in (2, big_mib):
        r = res[(backend, mib)]
        first = (f"{r['first'][0] * 1000:.0f} ms, {fmt_bytes(r['first'][1])}"
                 if r["first"] else "-")
        out.append(f"| {label} | {mib} MiB | {r['ms']:.1f} ms ({r['min']:.1f}–{r['max']:.1f}) "
                   f"| {fmt_bytes(r['extra'])} | {first} |")
    return out


def verdict(res, backend, big_mib, target):
    small, big = res[(backend, 2)], res[(backend, big_mib)]
    t = big["ms"] / small["ms"]
    d = big["extra"] / small["extra"] if small["extra"] else float("inf")
    return {"time_ratio": t, "disk_ratio": d, "target": target,
            "met": t <= target and d <= target}


def main():
    global BASE
    p = argparse.ArgumentParser()
    p.add_argument("--zoneadm", required=True)
    p.add_argument("--zonecfg", required=True)
    p.add_argument("--imgadm", required=True)
    p.add_argument("--out", help="where storage.md and storage.json go")
    p.add_argument("--zones", type=int, default=5)
    p.add_argument("--big-mib", type=int, default=500, help="size of the big image")
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help="comma-separated, of " + ",".join(BACKENDS))
    p.add_argument("--base", default=BASE, help="scratch directory (removed afterwards)")
    p.add_argument("--raw", help="write the raw figures as JSON here (no report)")
    p.add_argument("--openzfs", help="raw figures of the OpenZFS guest (--raw there) to add")
    a = p.parse_args()
    BASE = a.base
    backends = [b for b in a.backends.split(",") if b]
    if any(b not in BACKENDS for b in backends):
        p.error(f"--backends: one of {','.join(BACKENDS)}")
    if not a.raw and not a.out:
        p.error("--out or --raw")
    res = measure(a, backends)
    if a.raw:
        raw = {"big_mib": a.big_mib, "zones": a.zones, "cpus": os.cpu_count(),
               "build": os.path.basename(os.path.dirname(os.path.abspath(a.zoneadm))),
               "kernel": os.uname().release, "zfs": zfs_version(),
               "results": [{"backend": b, "mib": m, **r} for (b, m), r in res.items()]}
        with open(a.raw, "w") as f:
            json.dump(raw, f, indent=1)
        print(json.dumps(raw, indent=1))
        return 0
    oz = None
    if a.openzfs:
        with open(a.openzfs) as f:
            oz = json.load(f)
        if oz["big_mib"] != a.big_mib:
            p.error(f"--openzfs: its big image is {oz['big_mib']} MiB, not {a.big_mib}")
        ozres = {(r["backend"], r["mib"]): r for r in oz["results"]}
    lines = ["# Zone storage: install time and disk use", "",
             f"Machine: {os.cpu_count()} CPUs, kernel {os.uname().release}; the zone tools' "
             f"{os.path.basename(os.path.dirname(os.path.abspath(a.zoneadm)))} build. "
             f"`zoneadm install -i IMAGE` of {a.zones} zones from one image per backend and image "
             "size; median (min–max) time, median extra disk use per zone (the "
             "backend's own filesystem: statvfs of a loop ext4 for overlay and dir and of a loop "
             "btrfs; `zfs get used` of a zfs-fuse pool). "
             "btrfs and zfs copy the image into the backend on the first install (shown apart); "
             "the other installs are snapshots or clones of that copy.", "",
             "| backend | image | install | extra disk per zone | first install (image into the backend) |",
             "|---|---|---|---|---|"]
    label = {"zfs": "zfs (zfs-fuse)"}
    for backend in backends:
        lines += rows(label.get(backend, backend), res, backend, a.big_mib)
    lines.append("")
    verdicts = {}
    for backend in ("overlay", "btrfs", "zfs"):
        if backend not in backends:
            continue
        v = verdicts[backend] = verdict(res, backend, a.big_mib, HOST_TARGET)
        lines.append(f"- {label.get(backend, backend)}: {a.big_mib} MiB / 2 MiB install time = "
                     f"{v['time_ratio']:.2f}x, extra disk per zone = {v['disk_ratio']:.2f}x "
                     f"(target: both within 2x: {'met' if v['met'] else 'missed'})")
    if "dir" in backends:
        small, big = res[("dir", 2)]["ms"], res[("dir", a.big_mib)]["ms"]
        lines.append(f"- dir (a full copy, for contrast): {a.big_mib} MiB / 2 MiB install time = "
                     f"{big / small:.2f}x")
    lines.append("")
    if oz:
        v = verdicts["openzfs"] = verdict(ozres, "zfs", a.big_mib, OPENZFS_TARGET)
        lines += ["## OpenZFS (the kernel module, in the qemu guest)", "",
                  f"{oz['zfs']} on kernel {oz['kernel']}, {oz['cpus']} CPUs, the zone tools' "
                  f"{oz.get('build', '?')} build: the cgroup-v2 guest "
                  "of `integration/vm/run.sh --openzfs` (qemu TCG, so times are several times "
                  "the host's: the ratios are what counts), the same measurement of "
                  f"{oz['zones']} zones on an OpenZFS pool (a sparse file on the guest's tmpfs; "
                  "`zfs get used` of the pool).", "",
                  "| backend | image | install | extra disk per zone | first install (image into the backend) |",
                  "|---|---|---|---|---|"]
        lines += rows("zfs (OpenZFS)", ozres, "zfs", a.big_mib)
        lines += ["",
                  f"- zfs (OpenZFS): {a.big_mib} MiB / 2 MiB install time = "
                  f"{v['time_ratio']:.2f}x, extra disk per zone = {v['disk_ratio']:.2f}x "
                  f"(target: both <= {OPENZFS_TARGET}x: {'met' if v['met'] else 'missed'})", ""]
    lines += ["Reproduce: `bench/run.sh --storage` (this host's backends; the OpenZFS section "
              "is kept from its last run) or `bench/run.sh --storage-openzfs` (the OpenZFS guest "
              "first, then this host).", ""]
    os.makedirs(a.out, exist_ok=True)
    out = os.path.join(a.out, "storage.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    # The verdicts, for the targets table of latest.md.
    with open(os.path.join(a.out, "storage.json"), "w") as f:
        json.dump({"big_mib": a.big_mib, "verdicts": verdicts}, f, indent=1)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

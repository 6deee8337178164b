#!/usr/bin/env python3
"""Zone storage: `zoneadm install -i IMAGE` time and extra disk use per zone, for a 2 MiB and a
500 MiB image, on overlay and dir (each on its own loop-mounted ext4), btrfs (loop-mounted)
and zfs (a zfs-fuse pool on a sparse file). Writes bench/results/storage.md.

Each backend's filesystem is made fresh and mounted at ALTROOT/zones, so its used space
(statvfs) is what the zones cost; the image store (and so overlay's shared lower dir) stays
outside it. The first install on btrfs and zfs also copies the image into the backend (a
read-only subvolume, a dataset with @final): that one-time cost is shown apart; the figures
are the median of the installs after it.

Usage: storage.py --zoneadm PATH --zonecfg PATH --imgadm PATH --out DIR [--zones N]
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
    """A zfs-fuse pool on a sparse file (the daemon started here if none runs)."""

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--zoneadm", required=True)
    p.add_argument("--zonecfg", required=True)
    p.add_argument("--imgadm", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--zones", type=int, default=5)
    p.add_argument("--big-mib", type=int, default=500, help="size of the big image")
    a = p.parse_args()
    shutil.rmtree(BASE, ignore_errors=True)
    os.makedirs(BASE)
    images = {}
    for mib, extra in ((2, 0), (a.big_mib, a.big_mib)):
        d = os.path.join(BASE, f"image-{mib}")
        make_image(d, extra)
        images[mib] = d
    res = {}
    try:
        for backend in ("overlay", "btrfs", "zfs", "dir"):
            for mib, d in images.items():
                res[(backend, mib)] = bench_backend(a, backend, d, mib, a.zones)
                print(backend, mib, res[(backend, mib)], file=sys.stderr)
    finally:
        shutil.rmtree(BASE, ignore_errors=True)
    lines = ["# Zone storage: install time and disk use", "",
             f"Machine: {os.cpu_count()} CPUs, kernel {os.uname().release}. "
             f"`zoneadm install -i IMAGE` of {a.zones} zones from one image per backend and image "
             "size; median (min–max) time, median extra disk use per zone (the "
             "backend's own filesystem: statvfs of a loop ext4 for overlay and dir and of a loop "
             "btrfs; `zfs get used` of a zfs-fuse pool). "
             "btrfs and zfs copy the image into the backend on the first install (shown apart); "
             "the other installs are snapshots or clones of that copy.", "",
             "| backend | image | install | extra disk per zone | first install (image into the backend) |",
             "|---|---|---|---|---|"]
    for backend in ("overlay", "btrfs", "zfs", "dir"):
        for mib in images:
            r = res[(backend, mib)]
            first = (f"{r['first'][0] * 1000:.0f} ms, {fmt_bytes(r['first'][1])}"
                     if r["first"] else "-")
            lines.append(f"| {backend} | {mib} MiB | {r['ms']:.1f} ms ({r['min']:.1f}–{r['max']:.1f}) "
                         f"| {fmt_bytes(r['extra'])} | {first} |")
    lines.append("")
    verdicts = {}
    for backend in ("overlay", "btrfs", "zfs"):
        small, big = res[(backend, 2)], res[(backend, a.big_mib)]
        t = big["ms"] / small["ms"]
        d = big["extra"] / small["extra"] if small["extra"] else float("inf")
        verdicts[backend] = {"time_ratio": t, "disk_ratio": d, "met": t <= 2 and d <= 2}
        lines.append(f"- {backend}: {a.big_mib} MiB / 2 MiB install time = {t:.2f}x, extra disk "
                     f"per zone = {d:.2f}x (target: both within 2x: "
                     f"{'met' if verdicts[backend]['met'] else 'missed'})")
    small, big = res[("dir", 2)]["ms"], res[("dir", a.big_mib)]["ms"]
    lines.append(f"- dir (a full copy, for contrast): {a.big_mib} MiB / 2 MiB install time = "
                 f"{big / small:.2f}x")
    lines.append("")
    os.makedirs(a.out, exist_ok=True)
    out = os.path.join(a.out, "storage.md")
    with open(out, "w") as f:
        f.write("\n".join(lines))
    # The verdicts, for the targets table of latest.md.
    with open(os.path.join(a.out, "storage.json"), "w") as f:
        json.dump({"big_mib": a.big_mib, "verdicts": verdicts}, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

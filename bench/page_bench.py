#!/usr/bin/env python3
"""Benchmark: the rack page at a large site, with one browser on it.

Starts a fresh flashrackd on a temporary store (insecure loopback, mirror off, the page
on a loopback port), fills it with --units units on agents of 50 ports by running
bench/loadgen once in burst mode (every unit restored and unplugged, so every port has
a run to show), then:
- GET /rack.json --runs + 1 times: the rack as the page's snapshot has it; the first GET
  reads the rack whole (the ports and the runs, and every tile), the later ones read only
  what changed since (controller/page_rack.h): wall time and the controller's CPU of the
  first, and medians of the others;
- the controller's CPU per second for --seconds with no page client, then with one
  client reading /events (the page refreshes every 500 ms while a client is connected):
  the difference is what an open page costs the controller's loop;
- the loop probe's longest turn (ms of the loop's own CPU between two ticks), logged at
  the controller's exit, and the late ticks it warned of after the site was filled (the
  page's part: the readings above), each with the loop's CPU since the tick before.
bench/page_bench (C) times the tiles alone. Use a Release build.

With --perf FILE the controller is recorded (perf record -g) during the first GET alone.

Usage: bench/page_bench.py BIN_DIR [--units 10000] [--runs 5] [--seconds 10] [--buffer-kb KB]
       [--perf FILE]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale_bench  # noqa: E402
from cli_bench import controller_cpu, fill_site  # noqa: E402


def get_rack(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/rack.json")
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        sys.exit("page_bench: /rack.json: HTTP %d" % r.status)
    return json.loads(body)


def read_events(port, stop, counts):
    """one page client: reads /events until stop is set, counting events by name"""
    s = socket.create_connection(("127.0.0.1", port), timeout=1)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    buf = b""
    while not stop.is_set():
        try:
            data = s.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(b"event: "):
                name = line[7:].strip().decode()
                counts[name] = counts.get(name, 0) + 1
    s.close()


def cpu_rate(pid, seconds):
    c0, t0 = controller_cpu(pid), time.monotonic()
    time.sleep(seconds)
    return (controller_cpu(pid) - c0) / (time.monotonic() - t0)


def start_perf(pid, out):
    """perf record -g of pid into out, once it has begun"""
    rec = subprocess.Popen(["perf", "record", "-g", "-F", "1999", "-p", str(pid), "-o", out],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    time.sleep(1)
    return rec


def page_stalls(tmp, offset):
    """the loop's CPU (ms) of each late tick the loop probe warned of after offset in its log"""
    with open(os.path.join(tmp, "flashrackd.log"), errors="replace") as f:
        f.seek(offset)
        text = f.read()
    return [int(ms) for ms in re.findall(r"loop stalled: .* \((\d+) ms of the loop's CPU", text)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--units", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--perf", help="record the controller during the first GET into this perf.data file")
    ap.add_argument("--buffer-kb", type=int, default=None,
                    help="[page] client_buffer_kb (default: the controller's)")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)
    tmp = tempfile.mkdtemp(prefix="fr-pagebench-")
    page_port = scale_bench.free_port()
    sets = ["page.listen=127.0.0.1:%d" % page_port]
    if args.buffer_kb:
        sets.append("page.client_buffer_kb=%d" % args.buffer_kb)
    p, aep, cep = scale_bench.start_controller(bindir, tmp, None, sets)
    try:
        d = fill_site(bindir, aep, cep, args.units, "page_bench")
        filled = os.path.getsize(os.path.join(tmp, "flashrackd.log"))
        print("load average before: %.2f %.2f %.2f; %d units" % (os.getloadavg() + (d["units"],)))
        walls, cpus, tiles = [], [], 0
        for i in range(args.runs + 1):
            rec = start_perf(p.pid, args.perf) if args.perf and i == 0 else None
            c0, t0 = controller_cpu(p.pid), time.monotonic()
            doc = get_rack(page_port)
            walls.append(time.monotonic() - t0)
            cpus.append(controller_cpu(p.pid) - c0)
            if rec:
                rec.send_signal(signal.SIGINT)
                rec.wait(60)
            tiles = sum(len(h["tiles"]) for h in doc["hubs"])
        size = len(json.dumps(doc, separators=(",", ":")))
        print("GET /rack.json: %d tiles, %d bytes; the first (the rack read whole) %.0f ms wall, %.0f ms of "
              "the controller's CPU; the next %d (what changed) median %.0f ms wall, %.0f ms of CPU" % (
                  tiles, size, walls[0] * 1000, cpus[0] * 1000, args.runs,
                  statistics.median(walls[1:]) * 1000, statistics.median(cpus[1:]) * 1000))
        idle = cpu_rate(p.pid, args.seconds)
        stop, counts = threading.Event(), {}
        t = threading.Thread(target=read_events, args=(page_port, stop, counts))
        t.start()
        watched = cpu_rate(p.pid, args.seconds)
        stop.set()
        t.join(5)
        print("controller CPU: %.1f %% of a core with no page client, %.1f %% with one page client "
              "(%s)" % (idle * 100, watched * 100, ", ".join("%d %s" % (n, e) for e, n in sorted(counts.items()))))
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        scale_bench.stop_controller(p)
    lc = scale_bench.loop_cpu(tmp)
    if lc:
        print("loop turns over 50 ms of CPU: %d, the longest %d ms (the fill included)" % lc)
    late = page_stalls(tmp, filled)
    print("after the fill: %d ticks more than 50 ms late%s" % (
        len(late), ", with at most %d ms of the loop's CPU since the tick before" % max(late) if late else ""))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: one controller under N agents x 50 ports (bench/loadgen.c).

For each site size, starts a fresh flashrackd on a temporary store (free loopback
ports, mirror off) and runs loadgen twice against it:
  burst   every unit present, one job for all agents: submit -> JobAssign, result ->
          ack, job done, messages/s, the controller's CPU and peak RSS, loop stalls;
  steady  a standing job, units plugged in at --rate per second across the site for
          --duration s: attach -> JobAssign; and the sustained rate over that window:
          what loadgen's agents sent per second against what the controller says it read
          (its agents document, loop.agent_messages), with ack latency and loop stalls.
          --rate takes a list (1000,2000,4000): one run per rate and size, stepping the
          offered load up to find the most the controller keeps up with.
  capacity every unit running in one job with restores that outlast the run, each attempt
          sending its own JobProgress every --progress-ms (a list: one run per step, by
          default 1000,500,250,200,125 ms: 10k to 80k msgs/s at 10,000 units); over a
          --duration s window: the rate offered, sent and read (the controller's own count),
          the backlog at the window's end against one round's messages (kept up: read
          within 5 % of sent, less than a round behind, no send refused), re-Hellos and
          relinks, peak RSS, and both processes' CPU by thread over the window.
Prints a table per mode, and the load average next to it (other work on the machine
moves every figure). Every socket speaks CURVE, keys authorized as a site's are
(--insecure: the loopback insecure mode instead, to see what CURVE costs). Stalls are
counted twice: ticks of the controller's 20 ms probe that came > 50 ms late (a loaded
machine makes them), and those after > 50 ms of the loop's own CPU (it does not). Use
a Release build. Under each table: the turns over 50 ms of the loop's CPU by what took
most of each (the controller logs each such turn with its drains, passes, flushes and
records' batches), and the controller's CPU by thread (its loop, ZeroMQ's threads, the
rest: libuv's thread pool, where records are signed), read from /proc before it stops.

Usage: bench/scale_bench.py BIN_DIR [--units 500,2500,5000,10000] [--ports 50]
       [--restore-ms 2000] [--rate 1000[,2000...]] [--duration 10] [--timeout 300] [--insecure]
       [--modes burst,steady,capacity] [--progress-ms 1000,500,250,200,125]
       [--json FILE] [--keep-logs DIR (made if missing)]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_keys(bindir, tmp, nagents):
    """CURVE as a site has it: the controller's keypair, and loadgen's agents and client
    authorized in the keys directory before the controller starts."""
    keys = os.path.join(tmp, "keys")
    os.makedirs(keys, mode=0o700)
    for argv in ([os.path.join(bindir, "flashrack"), "keys", "gen",
                  os.path.join(keys, "controller.key")],
                 [os.path.join(bindir, "loadgen"), "--keys", keys, "--make-keys",
                  "--agents", str(nagents)]):
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit("scale_bench: %s: %s" % (" ".join(argv), r.stderr.strip()))
    return keys


def start_controller(bindir, tmp, keys, extra=()):
    """flashrackd on a fresh store; extra: more KEY=VALUE settings (later ones win)"""
    agents_ep = "tcp://127.0.0.1:%d" % free_port()
    clients_ep = "tcp://127.0.0.1:%d" % free_port()
    argv = [os.path.join(bindir, "flashrackd"),
            "--set", "controller.agents_endpoint=" + agents_ep,
            "--set", "controller.clients_endpoint=" + clients_ep,
            "--set", "controller.store=" + os.path.join(tmp, "flashrack.db"),
            "--set", "controller.log_level=warn",
            "--set", "mirror.listen=off", "--set", "page.listen=off"]
    # --insecure: the explicit loopback-only mode, to measure what CURVE costs
    argv += ["--set", "security.keys_dir=" + keys] if keys else \
            ["--set", "security.insecure=loopback"]
    argv += [a for kv in extra for a in ("--set", kv)]
    log = open(os.path.join(tmp, "flashrackd.log"), "ab")
    p = subprocess.Popen(argv, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    time.sleep(0.3)
    if p.poll() is not None:
        sys.exit("scale_bench: flashrackd did not start; see %s/flashrackd.log" % tmp)
    return p, agents_ep, clients_ep


def run_loadgen(bindir, p, agents_ep, clients_ep, args, units, mode, keys, rate):
    nagents = max(1, units // args.ports)
    restore_ms = args.restore_ms
    extra = []
    if mode == "capacity":  # rate: the progress interval; restores outlast the window
        restore_ms = max(restore_ms, 4000 * (args.duration + 10))
        extra = ["--progress-single", "--progress-ms", str(int(rate))]
    argv = [os.path.join(bindir, "loadgen"), "--agents-endpoint", agents_ep,
            "--clients-endpoint", clients_ep, "--agents", str(nagents),
            "--ports", str(args.ports), "--mode", mode, "--restore-ms", str(restore_ms),
            "--rate", str(rate if mode != "capacity" else 1000), "--duration", str(args.duration),
            "--timeout", str(args.timeout), "--pid", str(p.pid), "--json",
            "--seed", str(args.seed)] + extra + (["--keys", keys] if keys else [])
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=args.timeout + 60)
    if out.stderr.strip():
        sys.stderr.write(out.stderr)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    r = json.loads(line)
    r["exit"] = out.returncode
    r["rate"] = rate
    r["load1"] = os.getloadavg()[0]
    return r


def stop_controller(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def loop_cpu(tmp):
    """The controller's loop probe, logged when it stops: (ticks after more than 50 ms of
    the loop's own CPU, the most CPU between two ticks in ms)."""
    try:
        text = open(os.path.join(tmp, "flashrackd.log")).read()
    except OSError:
        return None
    m = re.findall(r"after more than \d+ ms of the loop's CPU \(the most (\d+) ms\)", text)
    n = re.findall(r"; (\d+) after more than", text)
    return (int(n[-1]), int(m[-1])) if m and n else None


def long_turns(tmp):
    """The controller's turns over 50 ms of the loop's CPU, each as (its ms, {work: (runs,
    items, ms)}) from its log line "a turn of N ms of the loop's CPU: W R (I ITEMS, M ms),
    ..., the rest M ms" (the rest: timers, as (0, 0, M))."""
    try:
        text = open(os.path.join(tmp, "flashrackd.log")).read()
    except OSError:
        return []
    turns = []
    for ms, line in re.findall(r"a turn of (\d+) ms of the loop's CPU: ([^\n]*)", text):
        parts = re.findall(r"([a-z' ]+?) (\d+) \((\d+) [a-z]+, (\d+) ms\)", line)
        work = {w.strip(", "): (int(r), int(i), int(m)) for w, r, i, m in parts}
        rest = re.search(r"the rest (\d+) ms", line)
        if rest:
            work["the rest (timers)"] = (0, 0, int(rest.group(1)))
        turns.append((int(ms), work))
    return turns


def print_long_turns(r):
    """One line: the long turns grouped by the work that took most of each."""
    turns = r.get("long_turns") or []
    if not turns:
        return
    by = {}
    for ms, work in turns:
        top = max(work, key=lambda w: work[w][2]) if work else "nothing watched"
        n, most, items = by.get(top, (0, 0, 0))
        by[top] = (n + 1, max(most, ms), max(items, work[top][1] if work else 0))
    print("  %s units: %d turns over 50 ms of CPU, by their largest part: %s" % (
        r["units"], len(turns), "; ".join(
            "%s %d (the longest %d ms, up to %d items)" % (w, n, most, items)
            for w, (n, most, items) in sorted(by.items(), key=lambda kv: -kv[1][0]))))


def print_turns(r):
    """One line: each kind of periodic turn's runs and their CPU, the longest and the p99
    (the agents document's loop.turns, as the controller counted them)."""
    turns = (r.get("loop") or {}).get("turns") or {}
    if turns:
        print("  %s units%s: CPU per run, max / p99: %s" % (
            r["units"], " at %g/s" % r["rate"] if r.get("mode") == "steady" else "", "; ".join(
            "%s %d (%.1f / %.1f ms)" % (w, t["runs"], t["max_ms"], t["p99_ms"])
            for w, t in turns.items())))


def thread_cpu(pid):
    """The controller's CPU so far by thread, in seconds: its loop (the main thread), then
    the others by name (ZeroMQ's "ZMQbg/..."; libuv's thread pool, which signs the
    records, keeps the process's name)."""
    tick, by = os.sysconf("SC_CLK_TCK"), {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # from the state on: utime, stime are 11, 12
        name = "loop" if int(tid) == pid else comm
        by[name] = by.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return by


def print_thread_cpu(r):
    by = r.get("thread_cpu") or {}
    if by:
        print("  %s units: controller CPU by thread: %s" % (r["units"], ", ".join(
            "%s %.1f s" % (name, s) for name, s in sorted(by.items(), key=lambda kv: -kv[1]))))


def one_size(bindir, args, units, mode, rate):
    tmp = tempfile.mkdtemp(prefix="fr-scale-")
    keys = None if args.insecure else make_keys(bindir, tmp, max(1, units // args.ports))
    p, aep, cep = start_controller(bindir, tmp, keys)
    try:
        r = run_loadgen(bindir, p, aep, cep, args, units, mode, keys, rate)
        r["thread_cpu"] = thread_cpu(p.pid)
    finally:
        stop_controller(p)
    r["curve"] = keys is not None
    r["loop_cpu"] = loop_cpu(tmp)
    r["long_turns"] = long_turns(tmp)
    if args.keep_logs:
        os.makedirs(args.keep_logs, exist_ok=True)
        shutil.copy(os.path.join(tmp, "flashrackd.log"), os.path.join(
            args.keep_logs, "flashrackd-%s-%d-%g.log" % (mode, units, rate)))
    shutil.rmtree(tmp, ignore_errors=True)
    return r


def fmt(v, unit="", nd=1):
    if v is None or (isinstance(v, (int, float)) and v < 0):
        return "none"
    return ("%.*f%s" % (nd, v, unit)) if isinstance(v, float) else "%s%s" % (v, unit)


def loop_of(r):
    """Late ticks (the most late), then the turns with more than 50 ms of the loop's CPU
    (the most CPU): the first moves with the machine's load, the second does not."""
    lp = r.get("loop") or {}
    cpu = r.get("loop_cpu")
    if cpu:
        turns = "%s (max %s ms)" % cpu
    elif lp.get("stalls") == 0:
        # the probe's closing line is a warning only when a tick was late or a turn long; at
        # the benchmark's log level its absence says neither happened
        turns = "0 (none over 50 ms)"
    else:
        turns = "? (max ? ms)"
    return "%s (max %s ms) / %s" % (lp.get("stalls", "?"), lp.get("max_lag_ms", "?"), turns)


def done(r):
    """Every unit restored and every result acknowledged."""
    return r["restored"] == r["units"] and r["results_acked"] == r["results_sent"]


def print_burst(rows):
    print("| units | submit → last JobAssign | submit → JobAssign p50 / p99 | JobResult → ack "
          "p50 / p99 | job done | msgs/s | controller CPU | peak RSS | stalls > 50 ms late / of CPU | "
          "re-Hellos / replays / JobAssigns again | started twice | loadgen CPU | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s%s | %.1f |" % (
            r["units"], fmt(r["submit_last_assign_s"], " s", 2),
            fmt(r["submit_assign_p50_ms"], " ms", 0), fmt(r["submit_assign_p99_ms"], " ms", 0),
            fmt(r["result_ack_p50_ms"], " ms", 1), fmt(r["result_ack_p99_ms"], " ms", 1),
            fmt(r["job_done_s"], " s", 1) if done(r) else
            "not done in %g s (%d/%d acked)" % (r["job_done_s"], r["results_acked"], r["units"]),
            fmt(r["msgs_per_s"], "", 0), fmt(r["controller_cpu_s"], " s", 1),
            fmt(r["controller_peak_rss_mb"], " MB", 0), loop_of(r), r["rehellos"], r["replays"], r.get("assigns_again", "?"),
            r["started_twice"], fmt(r["loadgen_cpu_s"], " s", 1),
            " (bottleneck)" if r.get("loadgen_bottleneck") else "", r["load1"]))
    for r in rows:
        print_long_turns(r)
        print_turns(r)
        print_thread_cpu(r)


def print_steady(rows, args):
    print("\nsteady: units plugged at RATE/s for %g s into a standing job; over that window, "
          "msgs/s sent by loadgen's agents / read by the controller (its own count) / both "
          "directions at loadgen" % args.duration)
    print("| units (ports) | rate | plugged | attach → JobAssign p50 / p99 | JobResult → ack p99 | "
          "window msgs/s sent / read / both | controller CPU | peak RSS | "
          "stalls > 50 ms late / of CPU | re-Hellos / replays / JobAssigns again | loadgen CPU | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %g | %s | %s / %s | %s | %s / %s / %s | %s | %s | %s | %s / %s / %s | %s%s | %.1f |" % (
            r["units"], r["rate"], r["plugged"], fmt(r["attach_assign_p50_ms"], " ms", 1),
            fmt(r["attach_assign_p99_ms"], " ms", 1), fmt(r["result_ack_p99_ms"], " ms", 1),
            fmt(r.get("window_sent_per_s"), "", 0), fmt(r.get("window_controller_read_per_s"), "", 0),
            fmt((r.get("window_sent_per_s") or 0) + (r.get("window_received_per_s") or 0)
                if "window_sent_per_s" in r else None, "", 0),
            fmt(r["controller_cpu_s"], " s", 1),
            fmt(r["controller_peak_rss_mb"], " MB", 0), loop_of(r), r["rehellos"], r["replays"], r.get("assigns_again", "?"),
            fmt(r["loadgen_cpu_s"], " s", 1), " (bottleneck)" if r.get("loadgen_bottleneck") else "",
            r["load1"]))
    for r in rows:
        print_long_turns(r)
        print_turns(r)
        print_thread_cpu(r)


def cores(by):
    """{thread: cores} as 'loop 0.97, ZMQbg/IO/0 0.41', the busiest first."""
    return ", ".join("%s %.2f" % (n, c) for n, c in sorted((by or {}).items(), key=lambda kv: -kv[1])
                     if c >= 0.005) or "?"


def print_capacity(rows, args):
    print("\ncapacity: every unit running (restores outlast the window), each attempt sending its "
          "own JobProgress every PROGRESS ms, agents heartbeating; over a %g s window: msgs/s "
          "offered (nominal) / sent by loadgen's agents / read by the controller (its own count); "
          "backlog: sent before the window's last question and not yet read when the controller "
          "answered it, against one round's messages" % args.duration)
    print("| units | progress ms | offered / sent / read msgs/s | backlog start / end (one round) | "
          "kept up | re-Hellos / relinks / send fails | peak RSS | controller cores by thread | "
          "loadgen cores by thread (bottleneck) | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "window_s" not in r:
            print("| %s | %g | no window (exit %s) | | | %s / %s / %s | %s | | | %.1f |" % (
                r.get("units", "?"), r["rate"], r["exit"], r.get("rehellos", "?"),
                r.get("relinks", "?"), r.get("send_fail", "?"),
                fmt(r.get("controller_peak_rss_mb"), " MB", 0), r["load1"]))
            continue
        print("| %s | %g | %s / %s / %s | %s / %s (%s) | %s | %s / %s / %s | %s | %s | %s%s | %.1f |" % (
            r["units"], r["rate"], fmt(r["offered_per_s"], "", 0), fmt(r["window_sent_per_s"], "", 0),
            fmt(r["window_controller_read_per_s"], "", 0), r["backlog_start"], r["backlog_end"],
            fmt(r["round_msgs"], "", 0), "yes" if r["kept_up"] else "**no**",
            r["rehellos"], r["relinks"], r["window_send_fail"],
            fmt(r["controller_peak_rss_mb"], " MB", 0), cores(r.get("window_controller_cpu")),
            cores(r.get("window_loadgen_cpu")),
            " (**bottleneck**)" if r.get("window_loadgen_bottleneck") else "", r["load1"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--units", default="500,2500,5000,10000")
    ap.add_argument("--ports", type=int, default=50)
    ap.add_argument("--restore-ms", type=int, default=2000)
    ap.add_argument("--rate", default="1000", help="steady: units plugged per second; a list steps it")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="burst,steady",
                    help="burst, steady, capacity (comma-separated)")
    ap.add_argument("--progress-ms", default="1000,500,250,200,125",
                    help="capacity: each attempt's progress interval, one run per step")
    ap.add_argument("--insecure", action="store_true",
                    help="no CURVE: the controller in its loopback insecure mode")
    ap.add_argument("--json", help="also write every row to this file")
    ap.add_argument("--keep-logs", help="copy each run's flashrackd.log into this directory")
    args = ap.parse_args()
    args.bindir = os.path.abspath(args.bindir)
    sizes = [int(u) for u in args.units.split(",")]
    modes = args.modes.split(",")
    print("load average before: %.2f %.2f %.2f; %s" % (os.getloadavg() + (
        "no CURVE (loopback insecure mode)" if args.insecure else "CURVE",)))
    results = {m: [] for m in modes}
    rates = [float(x) for x in args.rate.split(",")]
    for m in modes:
        for u in sizes:
            steps = rates if m == "steady" else \
                [float(x) for x in args.progress_ms.split(",")] if m == "capacity" else rates[:1]
            for rate in steps:
                r = one_size(args.bindir, args, u, m, rate)
                results[m].append(r)
                sys.stderr.write("%s %d: %s\n" % (m, u, json.dumps(r)))
    if "burst" in results:
        print_burst(results["burst"])
    if "steady" in results:
        print_steady(results["steady"], args)
    if "capacity" in results:
        print_capacity(results["capacity"], args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()

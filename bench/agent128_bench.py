#!/usr/bin/env python3
"""Benchmark: one real flashrack-agent with 128 simulated ports restoring at once.

A real simulator (8 root buses of 16 ports, a phone on each, oversubscription off so
that every restore runs to the end), a real controller and one real agent with 128 slots
and no bus limit; every engine is a real process: flashrack-sim-restore, behind a small
wrapper that stamps each line it prints with the wall clock (the engine's own CPU, and the
wrapper's, are not the agent's). One job restores all 128 units. Prints:

- the agent's own CPU while all 128 restore at once: utime + stime of the agent process
  (/proc/PID/stat, children excluded) over a window, as % of one core (goal < 5 %);
- progress latency: from the line an engine printed to the first `watch` frame that shows
  it as the run's status (watch polls every 50 ms, so the figure is that resolution high);
- memory per unit: the agent's RSS with 128 restoring less its RSS before the job, / 128.

--time-scale speeds the simulator's clock (the engines print that much faster than a real
restore would: the agent's CPU is an upper bound). Use a Release build.

Usage: bench/agent128_bench.py BIN_DIR [--time-scale 10] [--window 20] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Site  # noqa: E402 (the simulator, controller and agent as the tests run them)

PORTS, HUBS = 128, 8

# Each engine line, with the wall-clock ms it was printed at, into $STAMP_DIR/<pid>,
# after a first line naming the unit (the engine's -i/--ecid).
WRAPPER = r'''#!/usr/bin/env python3
import os, subprocess, sys, time
engine = os.environ["STAMPED_ENGINE"]
args = sys.argv[1:]
ecid = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-i", "--ecid")), "0")
log = open(os.path.join(os.environ["STAMP_DIR"], str(os.getpid())), "w")
log.write("ecid 0x%016X\n" % int(ecid, 0))
child = subprocess.Popen([engine] + sys.argv[1:], stdout=subprocess.PIPE)
for line in child.stdout:
    sys.stdout.buffer.write(line)
    sys.stdout.flush()
    log.write("%d %s" % (time.time() * 1000, line.decode(errors="replace")))
    log.flush()
sys.exit(child.wait())
'''


def rack(time_scale):
    text = ("[sim]\nseed = 128\ntime_scale = %s\ndialect = master\noversubscribe_at = 1000\n"
            "filesystem_mb = 1500\n\n[host A]\nlabel_prefix = A-\nfill = yes\n"
            "product_types = iPhone12,1\n" % time_scale)
    for h in range(HUBS):
        text += ("\n[hub A.%d]\nhost = A\nbus = %d\ndepth = 1\nports = %d\npower_switch = yes\n"
                 % (h + 1, h + 1, PORTS // HUBS))
    return text


class BenchSite(Site):
    def agent_ini(self, aid):  # the agent logs at info, as a site runs it
        path = super().agent_ini(aid)
        with open(path) as f:
            text = f.read().replace("log_level = debug", "log_level = info")
        with open(path, "w") as f:
            f.write(text)
        return path


def proc_stat(pid):
    """(CPU s of the process itself, RSS bytes)"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
            int(fields[21]) * os.sysconf("SC_PAGE_SIZE"))


class Watcher:
    """`flashrack watch JOB -o json --interval 50`, each frame stamped when it arrived:
    shown[ecid] = [(ms, status)], each time a frame showed the run with a status other
    than the frame before."""

    def __init__(self, site, job):
        self.shown, self.states = {}, {}
        self.proc = subprocess.Popen([os.path.join(site.bin, "flashrack"), "-C", site.clients_ep,
                                      "--timeout", "20", "-o", "json", "watch", str(job),
                                      "--interval", "50"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=site.env,
                                     stdin=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            now = time.time() * 1000
            for r in json.loads(line)["runs"]:
                seen = self.shown.setdefault(r["ecid"], [])
                if not seen or seen[-1][1] != r["status"]:
                    seen.append((now, r["status"]))
                self.states[r["ecid"]] = r["state"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(5)


def latencies(stamp_dir, watcher):
    """engine line -> the first frame after it that shows its text, for the lines a frame
    showed. A frame must show the text after the line and before the run prints that text
    again: an engine prints some statuses more than once, and a line overwritten by the
    next within one 250 ms round is never shown (the round carries the latest), so matching
    it to the frame of a later repeat would time the repeat, not the line."""
    out = []
    for name in os.listdir(stamp_dir):
        with open(os.path.join(stamp_dir, name)) as f:
            ecid = f.readline().split()[-1]
            lines = []
            for line in f:
                at, _, text = line.rstrip("\n").partition(" ")
                lines.append((int(at), text.strip()))
        shown = watcher.shown.get(ecid, [])
        for i, (at, text) in enumerate(lines):
            again = next((t for t, x in lines[i + 1:] if x == text), float("inf"))
            hit = next((ms for ms, x in shown if x == text and at <= ms < again), None)
            if hit is not None:
                out.append((hit - at, text, at))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--time-scale", type=float, default=10)
    ap.add_argument("--window", type=float, default=20, help="seconds of 128 at once to measure")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    bindir = os.path.abspath(args.bindir)
    site = BenchSite(bindir, rack(args.time_scale), agents=("A",), slots=PORTS, bus_limit=0,
                     cli_timeout=10, watchdog_s=120)
    stamp_dir = os.path.join(site.dir, "stamps")
    os.makedirs(stamp_dir)
    wrapper = os.path.join(site.dir, "stamped-engine")
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    os.chmod(wrapper, 0o755)
    site.engine = wrapper
    site.env.update(STAMPED_ENGINE=os.path.join(bindir, "flashrack-sim-restore"), STAMP_DIR=stamp_dir)
    watcher = None
    try:
        site.start()
        agent = site.procs["agent-A"].pid
        site.wait_for(lambda: sum(u["present"] for u in site.cli_json("units")["units"]) == PORTS,
                      60, "128 units present")
        time.sleep(2)
        _, rss0 = proc_stat(agent)
        job = site.submit("--agent", "A")
        watcher = Watcher(site, job)
        site.wait_for(lambda: sum(s in ("restoring", "verifying") for s in watcher.states.values()) == PORTS,
                      300, "128 restoring at once", step=0.5)
        cpu0, _ = proc_stat(agent)
        t0, wall0 = time.monotonic(), time.time()
        time.sleep(args.window)
        cpu1, rss1 = proc_stat(agent)
        dt = time.monotonic() - t0
        at_once = sum(s in ("restoring", "verifying") for s in watcher.states.values())
        site.wait_job_finished(job, 900)
        time.sleep(1)
        timed = sorted(latencies(stamp_dir, watcher))
        lat = [ms for ms, _, _ in timed]
        first = min(at for _, _, at in timed) if timed else 0
        # the lines printed while all 128 restore, apart from the start: 128 engines and
        # their Python wrappers starting together keep both cores busy for seconds
        steady = sorted(ms for ms, _, at in timed if at >= wall0 * 1000)
        doc = site.cli_json("status", str(job))
        fig = {
            "time_scale": args.time_scale, "window_s": dt, "restoring_at_end_of_window": at_once,
            "agent_cpu_pct_of_core": (cpu1 - cpu0) / dt * 100,
            "agent_rss_before_mb": rss0 / 1e6, "agent_rss_128_mb": rss1 / 1e6,
            "rss_per_unit_kb": (rss1 - rss0) / PORTS / 1e3,
            "progress_lines_matched": len(lat),
            "progress_latency_p50_ms": statistics.median(lat) if lat else None,
            "progress_latency_p99_ms": lat[int(len(lat) * 0.99)] if lat else None,
            "progress_latency_max_ms": lat[-1] if lat else None,
            "progress_latency_all_128_p50_ms": statistics.median(steady) if steady else None,
            "progress_latency_all_128_p99_ms": steady[int(len(steady) * 0.99)] if steady else None,
            "progress_lines_all_128": len(steady),
            "slowest": [{"ms": ms, "line": text, "at_s": (at - first) / 1000}
                        for ms, text, at in timed[-5:]],
            "done": doc["jobs"][0]["totals"]["done"], "load_average": os.getloadavg(),
        }
    except BaseException:
        site.dump_logs()
        raise
    finally:
        if watcher:
            watcher.stop()
        site.stop()
    print("one agent, %d ports restoring at once (time_scale %g), %d of %d restored; load average %.2f %.2f %.2f"
          % ((PORTS, args.time_scale, fig["done"], PORTS) + tuple(fig["load_average"])))
    print("| figure | value |")
    print("|---|---|")
    print("| agent CPU over %.0f s with %d restoring | %.2f %% of one core |"
          % (dt, at_once, fig["agent_cpu_pct_of_core"]))
    print("| progress latency (engine line -> watch frame), p50 / p99 / max | %s / %s / %s ms (%d lines) |"
          % (fig["progress_latency_p50_ms"], fig["progress_latency_p99_ms"],
             fig["progress_latency_max_ms"], len(lat)))
    print("| agent RSS before / with 128 restoring | %.1f / %.1f MB |" % (fig["agent_rss_before_mb"],
                                                                         fig["agent_rss_128_mb"]))
    print("| memory per unit | %.1f kB |" % fig["rss_per_unit_kb"])
    print("| the same, lines printed once all 128 restore, p50 / p99 | %s / %s ms (%d lines) |"
          % (fig["progress_latency_all_128_p50_ms"], fig["progress_latency_all_128_p99_ms"],
             fig["progress_lines_all_128"]))
    print("slowest lines: " + "; ".join("%.0f ms %r %.1f s after the first line"
                                        % (x["ms"], x["line"], x["at_s"]) for x in fig["slowest"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1)


if __name__ == "__main__":
    main()

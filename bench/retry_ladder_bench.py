#!/usr/bin/env python3
"""Benchmark: what the different-port ladder and bus admission buy on a large site.

A 480-unit site (4 agents x 120 ports; 12 hubs of 10 ports per host on 6 root buses),
5 % bad cables, 1 % dead phones, realistic phase times, fixed seed. The same site runs
twice through real processes: flashrack's practice (move to another port, quarantine,
escalate; at most 10 units per bus in the data phase) and the naive practice (retry in
place up to 3 times, no admission limit). Prints makespan (simulated time), units
restored, good units wrongly written off, false hardware flags, bad ports found, and the
lower bound from bus bandwidth and phase times.

Usage: bench/retry_ladder_bench.py BIN_DIR [--scale N] [--seed S]
(BIN_DIR from a release build: deploy/demo.sh leaves one in build/bin.)
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import Site  # noqa: E402

AGENTS = ["A", "B", "C", "D"]
BUSES, HUBS_PER_BUS, PORTS_PER_HUB = 6, 2, 10
PHASES = dict(detect_s=5, prepare_s=60, verify_s=120, flash_s=180, baseband_s=60, finish_s=30)
FS_MB, BUS_MBPS = 6000, 35


def make_rack(seed, scale):
    rnd = random.Random(seed)
    lines = ["[sim]", "seed = %d" % seed, "time_scale = %d" % scale,
             "bus_bandwidth_mbps = %d" % BUS_MBPS, "filesystem_mb = %d" % FS_MB,
             "reattach_s = 30", "move_s = 60", "operator_misplug = 0.05"]
    lines += ["%s = %d" % kv for kv in PHASES.items()]
    labels = []
    for a in AGENTS:
        lines += ["", "[host %s]" % a, "label_prefix = %s-" % a,
                  "product_types = iPhone12,1 iPhone13,2 iPhone14,7 iPhone11,2 iPhone15,4"]
        for bus in range(1, BUSES + 1):
            for h in range(HUBS_PER_BUS):
                lines += ["", "[hub %s.%d.%d]" % (a, bus, h), "host = %s" % a, "bus = %d" % bus,
                          "depth = 1", "ports = %d" % PORTS_PER_HUB, "power_switch = yes"]
        labels += ["%s-%02d" % (a, i) for i in range(1, BUSES * HUBS_PER_BUS * PORTS_PER_HUB + 1)]
    bad = rnd.sample(labels, len(labels) * 5 // 100)
    dead = rnd.sample([p for p in labels if p not in bad], len(labels) // 100)
    for p in bad:
        lines += ["", "[port %s]" % p, "link_fail = 0.9"]
    for i, p in enumerate(dead):
        lines += ["", "[unit 0x%016X]" % (0xDEAD0000 + i), "at = %s" % p,
                  "product_type = iPhone12,1", "health = dead"]
    return "\n".join(lines) + "\n", set(bad), {"0x%016X" % (0xDEAD0000 + i) for i in range(len(dead))}


def lower_bound():
    per_bus_units = HUBS_PER_BUS * PORTS_PER_HUB
    data = per_bus_units * FS_MB / BUS_MBPS
    before = PHASES["detect_s"] + PHASES["prepare_s"]
    after = PHASES["verify_s"] + PHASES["flash_s"] + PHASES["baseband_s"] + PHASES["finish_s"]
    return before + data + after


def run_mode(bindir, rack, naive, scale):
    site = Site(bindir, rack, agents=AGENTS, hb_ms=500, operator=not naive, watchdog_s=120,
                bus_limit=0 if naive else 10, cli_timeout=20,
                slots=BUSES * HUBS_PER_BUS * PORTS_PER_HUB,
                controller_sets=["policy.naive=%s" % ("yes" if naive else "no")])
    try:
        site.start()
        total = len(AGENTS) * BUSES * HUBS_PER_BUS * PORTS_PER_HUB
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= total,
                      120, "all units present", step=0.5)
        t0 = site.sim_request({"op": "stats"})["sim_time"]
        wall0 = time.monotonic()
        job = site.submit(*sum((["--agent", a] for a in AGENTS), []), "--max-attempts",
                          "3" if naive else "6")
        site.wait_for(lambda: site.job(job)["jobs"][0]["state"] != "running", 3600,
                      "job finished", step=0.25)  # 25 s of simulated time at scale 100
        t1 = site.sim_request({"op": "stats"})["sim_time"]
        doc = site.job(job)
        ports = site.cli_json("ports")["ports"]
        stats = site.sim_request({"op": "stats"})
        return dict(makespan=t1 - t0, wall=time.monotonic() - wall0, runs=doc["runs"],
                    quarantined={p["label"] for p in ports if p["state"] == "quarantined"},
                    struck={p["label"] for p in ports if p["strikes"] > 0},
                    stats=stats)
    finally:
        site.stop()


def summarize(name, r, bad_ports, dead, bound):
    runs = r["runs"]
    done = sum(1 for x in runs if x["state"] == "done")
    good_lost = [x for x in runs if x["ecid"] not in dead and x["state"] != "done"]
    false_flags = [x for x in runs if x["ecid"] not in dead and x["state"] == "hardware_suspect"]
    dead_flagged = sum(1 for x in runs if x["ecid"] in dead and x["state"] == "hardware_suspect")
    found = r["quarantined"] & bad_ports
    struck = r["struck"] & bad_ports
    print("%-10s makespan %7.0f s sim (%5.1f s real)  bound ratio %.2f  restored %d/%d  "
          "good units written off %d  false hardware flags %d  dead units flagged %d/%d  "
          "bad ports quarantined %d/%d (false %d)  bad ports with a strike %d/%d (good ports "
          "with one %d)  lost links %d"
          % (name, r["makespan"], r["wall"], r["makespan"] / bound, done, len(runs),
             len(good_lost), len(false_flags), dead_flagged, len(dead), len(found),
             len(bad_ports), len(r["quarantined"] - bad_ports), len(struck), len(bad_ports),
             len(r["struck"] - bad_ports), r["stats"]["link_lost"]))
    return r["makespan"], len(good_lost)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bindir")
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--seed", type=int, default=4013)
    args = ap.parse_args()
    rack, bad_ports, dead = make_rack(args.seed, args.scale)
    bound = lower_bound()
    print("site: %d agents x %d ports, %d buses each, %d bad cables, %d dead units, seed %d"
          % (len(AGENTS), BUSES * HUBS_PER_BUS * PORTS_PER_HUB, BUSES, len(bad_ports), len(dead),
             args.seed))
    print("lower bound: %.0f s sim (a bus of %d units: data %.0f s + phases before %d s and after %d s)"
          % (bound, HUBS_PER_BUS * PORTS_PER_HUB, HUBS_PER_BUS * PORTS_PER_HUB * FS_MB / BUS_MBPS,
             PHASES["detect_s"] + PHASES["prepare_s"],
             PHASES["verify_s"] + PHASES["flash_s"] + PHASES["baseband_s"] + PHASES["finish_s"]))
    fl = summarize("flashrack", run_mode(args.bindir, rack, False, args.scale), bad_ports, dead, bound)
    nv = summarize("naive", run_mode(args.bindir, rack, True, args.scale), bad_ports, dead, bound)
    print("naive / flashrack: makespan %.2fx, good units written off %d vs %d"
          % (nv[0] / fl[0], nv[1], fl[1]))


if __name__ == "__main__":
    main()

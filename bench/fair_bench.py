#!/usr/bin/env python3
"""Benchmark: three practices on the same sites, with technicians who take time.

(a) naive: every unit at once, retry in place, 3 attempts, nobody touches a unit;
(b) careful: per host at most 10 restores at once, 6 attempts, after 2 failures on a
    port the technician moves the unit to a free port on another hub;
(c) flashrack: the real controller, four agents and the simulator on loopback
    (bus_limit 10, 6 attempts, the ladder), its move instructions carried out by the
    simulator's technicians.
(a) and (b) are played by bench/practice_model on the simulator's own model (the same
rack file, fate and world code); (c) runs the real processes at time scale 100.
naive_real (not run unless asked for) plays (a) with the real processes instead
(the controller's policy.naive, bus_limit 0, 3 attempts): a check of the model.

Sites (480 units: 4 hosts x 6 root buses x a hub of 10 and a hub of 10 behind it):
  base            5 % bad cables, 1 % dead phones, 4 technicians (one per host)
  no_bad_cables   base without bad cables
  mixed_phones    base with 5 % bad phones of mixed kinds (dead, intermittent, disk,
                  prepare, verify, flash)
  threshold6      base, the simulator's oversubscription threshold at 6 (bus_limit 10)
  threshold16     base, threshold 16 (bus_limit 10)
  one_technician  base with one technician for the 480 units
Model (docs/SIMULATOR.md): 35 MB/s per root bus, 25 MB/s per phone, 2 % more lost
links on the deeper hub, threshold 10 counted in the data phase, 0.04 per unit over;
a move takes 20 s walking, 10 s unplugging and plugging, 15 s more into DFU.

Per run it appends one JSON line per practice to --out; --summary prints the tables
(median and range over seeds) from that file.

Usage: bench/fair_bench.py BIN_DIR [--sites a,b] [--seeds 101,102] [--practices naive,careful,flashrack]
       bench/fair_bench.py --summary FILE
(BIN_DIR from a release build that has practice_model: deploy/demo.sh leaves one in build/bin.)
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))

AGENTS = ["A", "B", "C", "D"]
BUSES, PORTS_PER_HUB = 6, 10
PHASES = dict(detect_s=5, prepare_s=60, verify_s=120, flash_s=180, baseband_s=60, finish_s=30)
MODEL = dict(bus_bandwidth_mbps=35, unit_max_mbps=25, filesystem_mb=6000, depth_fail=0.02,
             oversubscribe_at=10, oversubscribe_fail=0.04, reattach_s=30, move_s=60,
             operator_misplug=0, walk_s=20, plug_s=10, buttons_s=15)
SITES = {
    "base": {},
    "no_bad_cables": dict(bad_cables=0),
    "mixed_phones": dict(bad_phones=0.05, kinds=["dead", "intermittent", "disk", "prepare",
                                                 "verify", "flash"]),
    "threshold6": dict(oversubscribe_at=6),
    "threshold16": dict(oversubscribe_at=16),
    "one_technician": dict(technicians=1),
}
SEEDS = [101, 102, 103, 104, 105]  # none of them used to tune anything
PRACTICES = ["naive", "careful", "flashrack"]
ALL_PRACTICES = PRACTICES + ["naive_real"]


def site_params(name):
    p = dict(MODEL, technicians=4, bad_cables=0.05, bad_phones=0.01, kinds=["dead"])
    p.update(SITES[name])
    return p


def make_rack(name, seed, scale):
    """Rack text and the truth: the phones that are not good (ECID -> kind)."""
    p = site_params(name)
    rnd = random.Random(seed)
    lines = ["[sim]", "seed = %d" % seed, "time_scale = %d" % scale]
    lines += ["%s = %s" % (k, p[k]) for k in sorted(MODEL) if k in p]
    lines += ["technicians = %d" % p["technicians"]]
    lines += ["%s = %d" % kv for kv in PHASES.items()]
    labels = []
    for a in AGENTS:
        lines += ["", "[host %s]" % a, "label_prefix = %s-" % a,
                  "product_types = iPhone12,1 iPhone13,2 iPhone14,7 iPhone11,2 iPhone15,4"]
        for bus in range(1, BUSES + 1):
            for h, depth in enumerate((1, 2)):  # the second hub hangs behind the first
                lines += ["", "[hub %s.%d.%d]" % (a, bus, h), "host = %s" % a, "bus = %d" % bus,
                          "depth = %d" % depth, "ports = %d" % PORTS_PER_HUB, "power_switch = yes"]
        labels += ["%s-%02d" % (a, i) for i in range(1, BUSES * 2 * PORTS_PER_HUB + 1)]
    bad = rnd.sample(labels, int(round(len(labels) * p["bad_cables"])))
    nbad = int(round(len(labels) * p["bad_phones"]))
    placed = rnd.sample(labels, nbad)
    truth = {}
    for port in bad:
        lines += ["", "[port %s]" % port, "link_fail = 0.9"]
    for i, port in enumerate(placed):
        ecid = "0x%016X" % (0xBAD00000 + i)
        kind = p["kinds"][i % len(p["kinds"])]
        truth[ecid] = kind
        lines += ["", "[unit %s]" % ecid, "at = %s" % port, "product_type = iPhone12,1",
                  "health = %s" % kind]
    return "\n".join(lines) + "\n", truth, p


def lower_bound(p):
    """A bus of 20 units, every failure ignored: the data at the bus's rate (or the phones'
    ceilings, if lower), plus the phases before the first transfer and after the last."""
    units = 2 * PORTS_PER_HUB
    rate = min(p["bus_bandwidth_mbps"], units * p["unit_max_mbps"])
    before = PHASES["detect_s"] + PHASES["prepare_s"]
    after = PHASES["verify_s"] + PHASES["flash_s"] + PHASES["baseband_s"] + PHASES["finish_s"]
    return before + units * p["filesystem_mb"] / rate + after


def run_model(bindir, rack_path, practice):
    out = subprocess.run([os.path.join(bindir, "practice_model"), rack_path, practice],
                         capture_output=True, text=True, check=True, timeout=3600)
    doc = json.loads(out.stdout)
    return dict(makespan=doc["makespan"], units=[(u["ecid"], u["state"]) for u in doc["units"]],
                stats=doc["stats"])


def run_real(bindir, rack_text, naive):
    """flashrack, or with naive the naive practice, through the real processes."""
    from harness import Site  # noqa: E402
    site = Site(bindir, rack_text, agents=AGENTS, hb_ms=500, operator=not naive, watchdog_s=120,
                bus_limit=0 if naive else 10, cli_timeout=20, slots=BUSES * 2 * PORTS_PER_HUB,
                controller_sets=["policy.naive=%s" % ("yes" if naive else "no")])
    try:
        site.start()
        total = len(AGENTS) * BUSES * 2 * PORTS_PER_HUB
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= total,
                      120, "all units present", step=0.5)
        t0 = site.sim_request({"op": "stats"})["sim_time"]
        job = site.submit(*sum((["--agent", a] for a in AGENTS), []), "--max-attempts",
                          "3" if naive else "6")
        site.wait_for(lambda: site.job(job)["jobs"][0]["state"] != "running", 3600,
                      "job finished", step=0.25)
        stats = site.sim_request({"op": "stats"})
        runs = site.job(job)["runs"]
        return dict(makespan=stats["sim_time"] - t0,
                    units=[(r["ecid"], "done" if r["state"] == "done" else r["state"]) for r in runs],
                    stats=stats)
    finally:
        site.stop()


def figures(r, truth, p, bound):
    """The headline figures of one run."""
    good = [s for e, s in r["units"] if e not in truth]
    good_done = sum(1 for s in good if s == "done")
    hours = r["makespan"] / 3600.0
    st = r["stats"]
    return dict(makespan=round(r["makespan"]), ratio=r["makespan"] / bound,
                restored=sum(1 for _, s in r["units"] if s == "done"), units=len(r["units"]),
                good_per_tech_hour=good_done / (p["technicians"] * hours),
                good_written_off_per_1000=1000.0 * (len(good) - good_done) / len(good),
                touches_per_100=100.0 * st["touches"] / len(r["units"]),
                tech_busy_s=st["tech_busy_s"], tech_wait_s=st["tech_wait_s"],
                bad_restored=sum(1 for e, s in r["units"] if e in truth and s == "done"),
                link_lost=st["link_lost"], started=st["started"])


def bench(args):
    with tempfile.TemporaryDirectory(prefix="fair-bench-") as tmp, open(args.out, "a") as out:
        for site in args.sites:
            for seed in args.seeds:
                text, truth, p = make_rack(site, seed, args.scale)
                path = os.path.join(tmp, "%s-%d.ini" % (site, seed))
                with open(path, "w") as f:
                    f.write(text)
                bound = lower_bound(p)
                for practice in args.practices:
                    wall = time.monotonic()
                    real = practice in ("flashrack", "naive_real")
                    r = (run_real(args.bindir, text, practice == "naive_real") if real
                         else run_model(args.bindir, path, practice))
                    row = dict(site=site, seed=seed, practice=practice, bound=round(bound),
                               wall_s=round(time.monotonic() - wall, 1), **figures(r, truth, p, bound))
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print("%-14s %4d %-9s makespan %5d s (%.2f x bound)  good/tech-h %6.1f  "
                          "good written off /1000 %5.1f  touches /100 %5.1f  tech busy %5.0f s  "
                          "restored %d/%d  (%.0f s wall)"
                          % (site, seed, practice, row["makespan"], row["ratio"],
                             row["good_per_tech_hour"], row["good_written_off_per_1000"],
                             row["touches_per_100"], row["tech_busy_s"], row["restored"],
                             row["units"], row["wall_s"]), flush=True)


def spread(values, fmt):
    med = statistics.median(values)
    if min(values) == max(values):
        return fmt % med
    return (fmt + " (" + fmt + "–" + fmt + ")") % (med, min(values), max(values))


def summary(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    keyed = {}
    for r in rows:
        keyed.setdefault((r["site"], r["practice"]), []).append(r)
    print("| site | practice | seeds | good phones / technician-hour | good written off / 1,000 "
          "| touches / 100 units | makespan / bound | technician busy |")
    print("|---|---|---|---|---|---|---|---|")
    for site in SITES:
        for practice in ALL_PRACTICES:
            rs = keyed.get((site, practice))
            if not rs:
                continue
            seeds = sorted({r["seed"] for r in rs})
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                site, practice, ",".join(str(s) for s in seeds),
                spread([r["good_per_tech_hour"] for r in rs], "%.1f"),
                spread([r["good_written_off_per_1000"] for r in rs], "%.1f"),
                spread([r["touches_per_100"] for r in rs], "%.1f"),
                spread([r["ratio"] for r in rs], "%.2f"),
                spread([r["tech_busy_s"] for r in rs], "%.0f s")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir", nargs="?")
    ap.add_argument("--sites", default=",".join(SITES))
    ap.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    ap.add_argument("--practices", default=",".join(PRACTICES))
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--out", default="fair_bench.jsonl")
    ap.add_argument("--summary", metavar="FILE")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if not args.bindir:
        ap.error("BIN_DIR is required (or --summary FILE)")
    args.sites = args.sites.split(",")
    for s in args.sites:
        if s not in SITES:
            ap.error("unknown site '%s' (expected one of %s)" % (s, ", ".join(SITES)))
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.practices = args.practices.split(",")
    for p in args.practices:
        if p not in ALL_PRACTICES:
            ap.error("unknown practice '%s' (expected one of %s)" % (p, ", ".join(ALL_PRACTICES)))
    bench(args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: chaos on a 200-unit simulated site.

Starts flashrack-sim (200 units on 4 hosts of 50 ports), flashrackd with CURVE and
four agents (tests/integration/harness.py), submits one job per agent, then kills
-9 the controller or an agent at 20 seeded random moments, restarting each after a
short pause. When every job has finished it prints what the units went through (the
simulator's count of engine runs per unit) against what the controller recorded:
units restored twice, results lost and jobs lost must all be 0.

Usage: bench/chaos_bench.py BIN_DIR [--agents 4] [--ports 50] [--kills 20] [--seed 1]
       [--time-scale 8] [--json FILE]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from chaos import Chaos, format_counts  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--ports", type=int, default=50)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-scale", type=float, default=8)
    ap.add_argument("--json", help="also write the counts to this file")
    args = ap.parse_args()
    chaos = Chaos(os.path.abspath(args.bindir), agents=args.agents, ports=args.ports,
                  kills=args.kills, seed=args.seed, time_scale=args.time_scale,
                  log=lambda m: print(m, flush=True))
    c = chaos.run()
    print("kills (seconds after the jobs began, victim): " +
          ", ".join("%.1f %s" % k for k in chaos.killed))
    print(format_counts(c))
    for key in ("wrong_examples", "lost_examples", "twice_examples"):
        if c[key]:
            print("%s: %s" % (key, c[key]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(c, f, indent=1)
    bad = c["restored_twice"] or c["run_at_once_twice"] or c["results_lost"] or \
        c["jobs_lost"] or c["wrong_state"] or c["not_terminal"] or c["kills"] < args.kills
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: an agent cut off from the controller for 60 s.

One simulated host of 6 units, flashrackd with CURVE and one agent whose link goes
through a relay on 127.0.0.1 (tests/integration/netcut.py). Once every unit is
restoring, the relay holds every byte for --cut seconds (no process is stopped),
then lets traffic flow again. Prints what happened: restores that ended during
the cut by the simulator's count, whether the controller saw the agent offline,
how soon it was back, and afterwards engine runs, attempts, successes and
duplicates (units restored twice, units with more than one attempt), which must
be 0.

Usage: bench/partition_bench.py BIN_DIR [--cut 60] [--units 6] [--time-scale 20]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from partition import format_counts, partition  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--cut", type=float, default=60)
    ap.add_argument("--units", type=int, default=6)
    ap.add_argument("--time-scale", type=float, default=20)
    args = ap.parse_args()
    c = partition(os.path.abspath(args.bindir), args.cut, units=args.units,
                  time_scale=args.time_scale, log=lambda m: print(m, flush=True))
    print(format_counts(c))
    bad = c["restored_twice"] or c["units_with_more_than_one_attempt"] or \
        c["job_state"] != "done" or c["done"] != args.units
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

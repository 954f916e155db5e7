#!/usr/bin/env python3
"""Benchmark: how many times the publisher serves one IPSW to a whole site.

Real processes on loopback: a publisher (a threaded HTTP server counting GETs)
holding one IPSW, a controller with its site mirror, N agents with M simulated
units each, all of one model. One job by URL for every unit. Measured twice:
with the mirror (agents ask the controller first) and without it (each agent
goes to the publisher). Prints the publisher's downloads and bytes, the time
from submit until every agent holds the verified file (prefetch), and the bytes
the mirror served.

With --publisher-mbps R the publisher sends at most R MB/s in all, every download
sharing it (the site's WAN link), so the one-download benefit shows in time as well as
in bytes.

Usage: bench/mirror_bench.py BIN_DIR [--agents N] [--units M] [--mb SIZE] [--publisher-mbps R]
(BIN_DIR from a release build: deploy/demo.sh leaves one in build/bin.)
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import Origin, Site, sha256_of, simple_rack  # noqa: E402


def run(bindir, agents, units, mb, mirror, publisher_mbps=0):
    site = Site(bindir, simple_rack(agents, units, seed=9, time_scale=200), agents=agents,
                slots=units)
    pub_dir = os.path.join(site.dir, "publisher")
    os.makedirs(pub_dir)
    ipsw = os.path.join(pub_dir, "bench_Restore.ipsw")
    with open(ipsw, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(mb):
            f.write(chunk)
    sha = sha256_of(ipsw)
    pub = Origin(pub_dir, rate=int(publisher_mbps * 1e6), shared=True)
    if not mirror:
        site.controller_sets = ["mirror.listen=off"]
    try:
        site.start()
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == len(agents) * units, 60, "units")
        t0 = time.monotonic()
        job = site.cli_json("submit", *sum((["--agent", a] for a in agents), []), "--firmware",
                            pub.url(ipsw), "--sha256", sha)["job_id"]
        cached = [os.path.join(site.dir, "agent-" + a, "ipsw", sha + ".ipsw") for a in agents]
        site.wait_for(lambda: all(os.path.exists(p) for p in cached), 600, "every agent cached it",
                      step=0.05)
        ready_s = time.monotonic() - t0
        doc = site.wait_job_finished(job, 600)
        done = sum(1 for r in doc["runs"] if r["state"] == "done")
        doc = site.cli_json("firmware", "list")["mirror"] if mirror else {}
        return dict(gets=len(pub.gets), bytes=pub.bytes, ready_s=ready_s, done=done,
                    served=doc.get("served_bytes", 0), streamed=doc.get("streamed_answers", 0))
    finally:
        site.stop()
        pub.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bindir")
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--units", type=int, default=12)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--publisher-mbps", type=float, default=0,
                    help="the publisher's rate in MB/s, shared by its downloads (0: as fast as "
                         "loopback)")
    a = ap.parse_args()
    agents = [chr(ord("A") + i) for i in range(a.agents)]
    n = a.agents * a.units
    print("site: %d agents x %d units of iPhone12,1 (%d units), one %d MB IPSW by URL, "
          "publisher %s" % (a.agents, a.units, n, a.mb, "%g MB/s shared" % a.publisher_mbps
                            if a.publisher_mbps else "unlimited"))
    print("%-16s %10s %14s %18s %16s %9s %10s" % ("practice", "downloads", "publisher MB",
                                                   "all agents ready", "mirror served MB",
                                                   "streamed", "restored"))
    for mirror in (True, False):
        r = run(a.bindir, agents, a.units, a.mb, mirror, a.publisher_mbps)
        print("%-16s %10d %14.0f %17.1fs %16.0f %9d %7d/%d" % (
            "with mirror" if mirror else "without mirror", r["gets"], r["bytes"] / 1e6, r["ready_s"],
            r["served"] / 1e6, r["streamed"], r["done"], n))


if __name__ == "__main__":
    main()

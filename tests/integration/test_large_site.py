"""A large site through one real controller: 2,000 units on 40 agents of 50 ports,
played by the load generator (bench/loadgen.c) over the real protocol, with 5 % of
restores losing their link (4013) and retried in place. Checks counts, never times:
every unit restored exactly once, no attempt started twice on a unit, every result
acknowledged, and the controller's own account of the job agrees."""
import json
import os
import subprocess

from harness import Site, check, main

AGENTS, PORTS = 40, 50


def every_unit_restored_once_and_every_result_acked(bindir):
    # loadgen speaks no CURVE (yet): the controller's explicit loopback-only insecure mode
    site = Site(bindir, "", agents=(), curve=False)
    try:
        site._spawn("flashrackd", [
            os.path.join(bindir, "flashrackd"),
            "--set", "controller.store=" + site.store,
            "--set", "controller.agents_endpoint=" + site.agents_ep,
            "--set", "controller.clients_endpoint=" + site.clients_ep,
            "--set", "controller.log_level=warn",
            "--set", "mirror.listen=off", "--set", "page.listen=off"] +
            [a for kv in site.controller_sets for a in ("--set", kv)])
        site.wait_for(lambda: site.cli_ok("agents"), 10, "controller answering")
        r = subprocess.run([os.path.join(bindir, "loadgen"),
                            "--agents-endpoint", site.agents_ep,
                            "--clients-endpoint", site.clients_ep,
                            "--agents", str(AGENTS), "--ports", str(PORTS),
                            "--restore-ms", "300", "--link-fail", "0.05", "--seed", "7",
                            "--timeout", "150", "--json"],
                           capture_output=True, text=True, timeout=200, stdin=subprocess.DEVNULL)
        check(r.stdout.strip(), "loadgen printed nothing (exit %d): %s" % (r.returncode, r.stderr))
        d = json.loads(r.stdout.strip().splitlines()[-1])
        units = AGENTS * PORTS
        check(d["restored"] == units, "restored %d of %d units" % (d["restored"], units))
        check(d["restored_twice"] == 0, "%d units restored twice" % d["restored_twice"])
        check(d["started_twice"] == 0, "%d attempts started on a busy unit" % d["started_twice"])
        check(d["failed_results"] > 0, "the run had no 4013 to retry: the test lost its edge")
        check(d["results_sent"] == units + d["failed_results"],
              "results %d, expected %d" % (d["results_sent"], units + d["failed_results"]))
        check(d["results_acked"] == d["results_sent"],
              "%d of %d results acknowledged" % (d["results_acked"], d["results_sent"]))
        check(d["refused_assigns"] == 0, "%d assigns for units not there" % d["refused_assigns"])
        check(r.returncode == 0, "loadgen exit %d" % r.returncode)
        job = d["job"]
        check(job is not None, "no status document of job %d" % d["job_id"])
        totals = job["totals"]
        check(job["state"] == "done", "job state %s" % job["state"])
        check(totals["units"] == units and totals["done"] == units,
              "controller's totals: %s" % totals)
    except Exception:
        site.dump_logs()
        raise
    finally:
        site.stop()


if __name__ == "__main__":
    main(every_unit_restored_once_and_every_result_acked)

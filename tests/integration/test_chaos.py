"""The simulator's count of engine runs per unit, which outlives every agent and
controller around it: what the chaos tests count "restored twice" on."""
from harness import check, main, running_site, simple_rack


def the_simulator_counts_engine_runs_per_unit(bindir):
    with running_site(bindir, simple_rack(ports=2, time_scale=400)) as site:
        check(site.sim_request({"op": "runs"}) == {"op": "runs", "units": {}},
              "no engine run before the first restore")
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "2 units")
        job = site.submit("--agent", "A")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]), "both done: %s" % doc["runs"])
        runs = site.sim_request({"op": "runs"})["units"]
        ecids = sorted(r["ecid"] for r in doc["runs"])
        check(sorted(runs) == ecids, "a count per restored unit: %s vs %s" % (runs, ecids))
        for e in ecids:
            check(runs[e] == {"started": 1, "restored": 1, "failed": 0, "gone": 0, "running": 0,
                              "max_running": 1}, "%s: %s" % (e, runs[e]))


if __name__ == "__main__":
    main(the_simulator_counts_engine_runs_per_unit)

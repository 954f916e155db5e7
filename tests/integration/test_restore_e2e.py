"""A unit is restored end to end through real processes: simulator, controller,
agent, engine child, CLI; and the record of it is complete."""
from harness import RACK_SMALL, check, main, running_site


def present_units(site, n):
    site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= n,
                  20, "%d units present" % n)
    return [u for u in site.cli_json("units")["units"] if u["present"]]


def one_unit_restored(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        units = present_units(site, 4)
        target = units[0]["ecid"]
        job = site.submit("--ecid", target, "--name", "one")
        doc = site.wait_job_finished(job, 60)
        check(doc["jobs"][0]["state"] == "done", "job state %s" % doc["jobs"][0]["state"])
        runs = doc["runs"]
        check(len(runs) == 1 and runs[0]["ecid"] == target, "one run for %s: %s" % (target, runs))
        check(runs[0]["state"] == "done", "run state %s" % runs[0]["state"])

        rep = site.cli_json("report", str(job))
        unit = rep["units"][0]
        check(unit["ecid"] == target and unit["product_type"], "identity in report: %s" % unit)
        check(unit["started"] and unit["ended"], "start and end times in report")
        check(len(unit["attempts"]) == 1, "one attempt: %s" % unit["attempts"])
        att = unit["attempts"][0]
        check(att["outcome"] == "success" and att["agent"] == "A" and att["port"],
              "attempt record: %s" % att)

        # The other units were not touched, and the engine ran exactly once: the simulator
        # counts every restore an engine started (and every one that completed).
        others = [u for u in site.cli_json("units")["units"] if u["ecid"] != target]
        check(all(u["mode"] != "normal" for u in others), "untouched units: %s" % others)
        stats = site.sim_request({"op": "stats"})
        check(stats["started"] == 1 and stats["restored"] == 1,
              "one engine run, one restore: %s" % stats)
        check(site.log("sim").count("restore started for %s" % target) == 1,
              "the one engine run was for %s" % target)


def submit_is_idempotent(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        units = present_units(site, 4)
        a = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", units[1]["ecid"],
                          "--key", "same-key-1")
        b = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", units[1]["ecid"],
                          "--key", "same-key-1")
        check(a["job_id"] == b["job_id"], "same key, same job: %s %s" % (a, b))
        check(a["created"] is True and b["created"] is False, "created flags: %s %s" % (a, b))
        check(len(site.cli_json("status")["jobs"]) == 1, "one job stored")
        site.wait_job_finished(a["job_id"], 60)


if __name__ == "__main__":
    main(one_unit_restored, submit_is_idempotent)

"""Firmware by URL: the agent fetches the IPSW into its verified cache once for
all its units, and a wrong hash fails the run as a firmware error without
blaming the port."""
import os

from harness import Origin, check, main, running_site, sha256_of, simple_rack

RACK = simple_rack(ports=3, seed=3)


def one_download_for_all_units(bindir):
    with running_site(bindir, RACK) as site:
        origin = Origin(site.dir)
        try:
            ipsw = site.ipsw()
            sha = sha256_of(ipsw)
            url = origin.url(ipsw)
            site.wait_for(lambda: len(site.cli_json("units")["units"]) == 3, 20, "3 units")
            job = site.cli_json("submit", "--agent", "A", "--firmware", url, "--sha256", sha)["job_id"]
            doc = site.wait_job_finished(job, 60)
            check(all(r["state"] == "done" for r in doc["runs"]), "all restored: %s" % doc["runs"])
            check(len(origin.gets) == 1, "one download for three units: %s" % origin.gets)
            cached = os.path.join(site.dir, "agent-A", "ipsw", sha + ".ipsw")
            check(os.path.exists(cached), "verified file in the cache under its hash")
            check("fetching_firmware" in site.log("agent-A"), "the runs waited for the firmware")

            bad = site.cli_json("submit", "--ecid", doc["runs"][0]["ecid"], "--firmware",
                                url + "?v=2", "--sha256", "0" * 64)["job_id"]
            doc = site.wait_job_finished(bad, 60)
            run = doc["runs"][0]
            check(run["state"] == "failed" and run["error_class"] == "firmware",
                  "a hash mismatch is a firmware failure: %s" % run)
            check("hash mismatch" in run["error"], "says why: %s" % run["error"])
            check(not site.cli_json("moves")["moves"], "no move for a firmware error")
            check(all(p["strikes"] == 0 for p in site.cli_json("ports")["ports"]), "no strikes")
        finally:
            origin.close()


if __name__ == "__main__":
    main(one_download_for_all_units)

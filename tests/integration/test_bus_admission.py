"""Bus-aware admission: an oversubscribed root bus loses links; with at most N
units per bus in the data phase, it does not. Same rack, same seed, both ways."""
from harness import check, main, running_site

RACK_ONE_BUS = """
[sim]
seed = 21
time_scale = 400
filesystem_mb = 1500
oversubscribe_at = 4
oversubscribe_fail = 0.15

[host A]
product_types = iPhone12,1 iPhone13,2

[hub A.1]
host = A
bus = 1
ports = 12
"""


def lost_links(site, bus_limit):
    site.wait_for(lambda: len(site.cli_json("units")["units"]) == 12, 20, "12 units")
    job = site.submit("--agent", "A", "--max-attempts", "1")
    site.wait_job_finished(job, 120)
    stats = site.sim_request({"op": "stats"})
    return stats["link_lost"], stats["started"]


def admission_keeps_the_bus_healthy(bindir):
    with running_site(bindir, RACK_ONE_BUS, bus_limit=4) as site:
        with_limit, started = lost_links(site, 4)
        check(started == 12, "12 restores started: %d" % started)
        log = site.log("agent-A")
        check("-> queued_for_bus" in log, "units waited for their bus")
    with running_site(bindir, RACK_ONE_BUS, bus_limit=0) as site:
        without, _ = lost_links(site, 0)
    print("lost links with admission: %d, without: %d" % (with_limit, without))
    check(with_limit == 0, "no lost links with at most 4 on the bus: %d" % with_limit)
    check(without >= 3, "an oversubscribed bus loses links: %d" % without)


if __name__ == "__main__":
    main(admission_keeps_the_bus_healthy)

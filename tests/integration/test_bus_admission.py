"""Bus-aware admission: an oversubscribed root bus loses links; with at most N
units per bus in the data phase, it does not. Same rack, same seed, every way.

The simulator's threshold (more than 6 units in the data phase on a bus) is set
apart from the agent's bus_limit, so the test tells a limit that holds the bus
under the threshold (4: no lost links, and 4 at once, not fewer) from one that
lets it over (8: links lost) and from none (12 at once)."""
from harness import check, main, running_site

THRESHOLD = 6

RACK_ONE_BUS = """
[sim]
seed = 21
time_scale = 400
filesystem_mb = 1500
oversubscribe_at = %d
oversubscribe_fail = 0.5

[host A]
product_types = iPhone12,1 iPhone13,2

[hub A.1]
host = A
bus = 1
ports = 12
""" % THRESHOLD


def lost_links(site, bus_limit):
    """Runs one attempt on each of the 12 units; returns the simulator's lost links.
    Checks the agent kept to bus_limit and used it: the most units in the data phase
    on the bus at once is the limit. Without one, at least 10 (the engines start one
    after another, and on a loaded machine the first can be done before the last
    starts)."""
    site.wait_for(lambda: len(site.cli_json("units")["units"]) == 12, 20, "12 units")
    job = site.submit("--agent", "A", "--max-attempts", "1")
    site.wait_job_finished(job, 120)
    stats = site.sim_request({"op": "stats"})
    check(stats["started"] == 12, "12 restores started: %d" % stats["started"])
    peak = stats["peak_data_on_bus"]
    if bus_limit:
        check(peak == bus_limit, "bus_limit %d: at most %d in the data phase at once, and that "
              "many: %d" % (bus_limit, bus_limit, peak))
        check("-> queued_for_bus" in site.log("agent-A"), "units waited for their bus")
    else:
        check(peak >= 10, "no bus_limit: the bus took the units at once: %d" % peak)
    return stats["link_lost"]


def admission_keeps_the_bus_healthy(bindir):
    lost = {}
    for limit in (4, 8, 0):
        with running_site(bindir, RACK_ONE_BUS, bus_limit=limit) as site:
            lost[limit] = lost_links(site, limit)
    print("lost links by bus_limit (threshold %d): %s" % (THRESHOLD, lost))
    check(lost[4] == 0, "no lost links with at most 4 on the bus: %d" % lost[4])
    # the 7th and 8th in the data phase each risk 0.5 and 1.0: at least one drops
    check(lost[8] >= 1, "a limit above the threshold loses links: %d" % lost[8])
    # each unit entering the data phase as the 8th or later drops: at least 3 of 10
    check(lost[0] >= 3, "an oversubscribed bus loses links: %d" % lost[0])


if __name__ == "__main__":
    main(admission_keeps_the_bus_healthy)

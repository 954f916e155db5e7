"""Bus-aware admission: an oversubscribed root bus loses links; with at most N
units per bus in the data phase, it does not. Same rack, same seed, every way.

The simulator's threshold (more than 6 units in the data phase on a bus) is set
apart from the agent's bus_limit, so the test tells a limit that holds the bus
under the threshold (4: no lost links, and 4 restoring at once, not fewer) from one that
lets it over (8: links lost) and from none (12 at once)."""
import re

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


def most_restoring(log):
    """The most units the agent held in restoring at once (admitted to their bus, the
    filesystem not yet sent), from the order of its own state changes: what admission
    decided, however the machine's load spread the engines' starts."""
    now = most = 0
    for frm, to in re.findall(r"unit 0x[0-9A-F]+: (\w+) -> (\w+)", log):
        now += (to == "restoring") - (frm == "restoring")
        most = max(most, now)
    return most


def lost_links(site, bus_limit):
    """Runs one attempt on each of the 12 units; returns the simulator's lost links.
    Checks the agent kept to bus_limit and used it. The bound is the simulator's own
    count (the most units in the data phase on the bus at once). That the limit was
    used is the agent's: it held bus_limit units restoring at once, and no more. The
    simulator's peak is not asked to equal the limit, since on a loaded machine the
    first engine can be through its data phase before the last admitted one reaches
    its own. Without a limit, the agent holds at least 10 at once (the restores start
    as their preflights pass, one after another)."""
    site.wait_for(lambda: len(site.cli_json("units")["units"]) == 12, 20, "12 units")
    job = site.submit("--agent", "A", "--max-attempts", "1")
    site.wait_job_finished(job, 120)
    stats = site.sim_request({"op": "stats"})
    check(stats["started"] == 12, "12 restores started: %d" % stats["started"])
    peak = stats["peak_data_on_bus"]
    held = most_restoring(site.log("agent-A"))
    if bus_limit:
        check(1 <= peak <= bus_limit, "bus_limit %d: at most %d in the data phase at once: %d"
              % (bus_limit, bus_limit, peak))
        check(held == bus_limit, "bus_limit %d: the agent held %d restoring at once, and no "
              "more: %d" % (bus_limit, bus_limit, held))
        check("-> queued_for_bus" in site.log("agent-A"), "units waited for their bus")
    else:
        check(held >= 10, "no bus_limit: the agent took the units at once: %d" % held)
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

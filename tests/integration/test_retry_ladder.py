"""The different-port ladder on the simulator (fixed seeds): a bad cable is told
from a bad phone; units move, resume anywhere, and only a unit that fails on three
ports is called faulty."""
import re
import time

from harness import check, main, running_site

# Two hubs on two buses; A-01 has a bad cable. The test is the technician.
RACK_BAD_CABLE = """
[sim]
seed = 5
time_scale = 200
reattach_s = 100
move_s = 100

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 2
power_switch = yes

[hub A.2]
host = A
bus = 2
ports = 2

[port A-01]
link_fail = 1.0

[unit 0x0000000000AA0001]
at = A-01
product_type = iPhone12,1

[unit 0x0000000000AA0002]
at = A-02
product_type = iPhone13,2
"""

U1, U2 = "0x0000000000AA0001", "0x0000000000AA0002"


def run_of(site, job):
    return site.job(job)["runs"][0]


def open_move(site, ecid):
    for m in site.cli_json("moves")["moves"]:
        if m["ecid"] == ecid:
            return m
    return None


def port_state(site, label):
    return [p for p in site.cli_json("ports")["ports"] if p["label"] == label][0]


def bad_cable_is_quarantined_and_good_units_finish_elsewhere(bindir):
    with running_site(bindir, RACK_BAD_CABLE) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units")
        job = site.submit("--ecid", U1)
        site.wait_for(lambda: run_of(site, job)["state"] == "needs_move", 30, "U1 needs a move")
        site.wait_for(lambda: open_move(site, U1) is not None, 10, "a move instruction for U1")
        move = open_move(site, U1)
        check(move["from_label"] == "A-01" and move["to_label"] not in ("A-01", ""),
              "instruction leaves the bad port: %s" % move)
        check(move["to_label"] in ("A-03", "A-04"), "prefers the other hub: %s" % move)

        # Plugged back into the port it left: it must not be restarted there.
        site.move_unit(U1, "A-01")
        site.wait_for(lambda: (open_move(site, U1) or {}).get("repeats", 0) >= 1, 10,
                      "the instruction repeats")
        time.sleep(1.5)
        run = run_of(site, job)
        check(run["state"] == "needs_move" and run["attempt"] == 1,
              "not restarted on the avoided port: %s" % run)

        site.move_unit(U1, move["to_label"])
        doc = site.wait_job_finished(job, 60)
        check(doc["runs"][0]["state"] == "done", "U1 restored elsewhere: %s" % doc["runs"][0])
        att = site.cli_json("report", str(job))["units"][0]["attempts"]
        check([a["label"] for a in att] == ["A-01", move["to_label"]], "attempts: %s" % att)
        check(port_state(site, "A-01")["state"] != "quarantined", "one unit is not enough")

        # A second unit loses the link on A-01: two units, one port -> quarantine.
        site.move_unit(U2, "A-01")
        site.wait_for(lambda: any(u["ecid"] == U2 and u["label"] == "A-01" and u["present"]
                                  for u in site.cli_json("units")["units"]), 10, "U2 on A-01")
        job2 = site.submit("--ecid", U2)
        site.wait_for(lambda: port_state(site, "A-01")["state"] == "quarantined", 30,
                      "A-01 quarantined")
        check(port_state(site, "A-01")["strikes"] >= 2, "strikes counted")
        hist = port_state(site, "A-01")["history"]
        check(hist and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", h["at"]) for h in hist),
              "strike times are ISO-8601 UTC strings: %s" % hist)
        site.wait_for(lambda: open_move(site, U2) is not None, 10, "a move for U2")
        site.move_unit(U2, open_move(site, U2)["to_label"])
        doc = site.wait_job_finished(job2, 60)
        check(doc["runs"][0]["state"] == "done", "U2 restored elsewhere, not flagged: %s"
              % doc["runs"][0])

        r = site.cli("ports", "clear", "A-01")
        check(r.returncode == 0, "ports clear: %s" % r.stderr)
        check(port_state(site, "A-01")["state"] == "free", "A-01 back in service")


# A dead phone, a good phone on a bad cable, two agents; the simulated technician
# follows the instructions.
RACK_TWO_HOSTS = """
[sim]
seed = 9
time_scale = 200
reattach_s = 100
move_s = 100
operator_misplug = 0

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 2

[host B]
fill = no

[hub B.1]
host = B
bus = 1
ports = 3

[port A-01]
link_fail = 1.0

[unit 0x0000000000BB0001]
at = A-01
product_type = iPhone14,7

[unit 0x0000000000DEAD01]
at = A-02
product_type = iPhone12,1
health = dead
"""


def dead_unit_is_suspect_after_three_ports_and_moves_cross_agents(bindir):
    with running_site(bindir, RACK_TWO_HOSTS, agents=("A", "B"), operator=True) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units")
        job = site.submit("--agent", "A", "--max-attempts", "6")
        doc = site.wait_job_finished(job, 90)
        runs = {r["ecid"]: r for r in doc["runs"]}
        good, dead = runs["0x0000000000BB0001"], runs["0x0000000000DEAD01"]
        check(good["state"] == "done", "the good unit is restored: %s" % good)
        check(dead["state"] == "hardware_suspect", "the dead unit is suspect: %s" % dead)
        rep = {u["ecid"]: u for u in site.cli_json("report", str(job))["units"]}
        g = rep["0x0000000000BB0001"]["attempts"]
        check(g[0]["agent"] == "A" and g[-1]["agent"] == "B" and g[-1]["outcome"] == "success",
              "moved to the other agent and resumed there: %s" % g)
        d = rep["0x0000000000DEAD01"]["attempts"]
        check(len(d) == 3, "exactly three attempts, never more: %s" % d)
        check(len({(a["agent"], a["port"]) for a in d}) == 3, "on three different ports: %s" % d)
        check(all(a["error_class"] == "link_lost" for a in d), "all lost the link")
        check("DFU" in site.log("sim") or "DFU" in site.log("flashrackd"),
              "the last move started from DFU")


if __name__ == "__main__":
    main(bad_cable_is_quarantined_and_good_units_finish_elsewhere,
         dead_unit_is_suspect_after_three_ports_and_moves_cross_agents)

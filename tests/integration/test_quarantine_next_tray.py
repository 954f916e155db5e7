"""The demo's quarantine, on a small rack: a cable that drops every restore. Its unit loses
the link and the technician moves it elsewhere; the next tray's phone is plugged into the
port it left (the rack file's arrive_at), is taken by the running selector job, and loses
the link there too: two units on one port, so the controller quarantines it with both
strikes. Every unit still ends restored on another port."""
from harness import check, main, running_site

RACK = """
[sim]
seed = 3
time_scale = 200
reattach_s = 20
move_s = 60

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

[unit 0x0000000000BB0001]
at = A-01
product_type = iPhone12,1

[unit 0x0000000000BB0002]
at = A-03
product_type = iPhone13,2

; the next tray: plugged into A-01 once its phone has been moved off it
[unit 0x0000000000BB0009]
arrive_at = A-01
product_type = iPhone12,1
"""

FIRST, OTHER, NEXT = "0x0000000000BB0001", "0x0000000000BB0002", "0x0000000000BB0009"


def a_second_unit_on_a_bad_cable_quarantines_its_port(bindir):
    with running_site(bindir, RACK, operator=True) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units on the rack")
        job = site.cli_json("submit", "--firmware", site.ipsw(), "--agent", "A")["job_id"]
        doc = site.wait_job_finished(job, 120)
        runs = {r["ecid"]: r for r in doc["runs"]}
        check(set(runs) == {FIRST, OTHER, NEXT}, "the next tray's unit joined the job: %s" % sorted(runs))
        check(all(r["state"] == "done" for r in runs.values()),
              "every unit restored: %s" % {e: r["state"] for e, r in runs.items()})
        for ecid in (FIRST, NEXT):
            check(runs[ecid]["label"] != "A-01", "%s finished elsewhere: %s" % (ecid, runs[ecid]))

        quarantined = site.cli_json("ports", "--quarantined")["ports"]
        check([p["label"] for p in quarantined] == ["A-01"], "A-01 alone is quarantined: %s" % quarantined)
        port = quarantined[0]
        check(port["state"] == "quarantined" and port["strikes"] == 2, "two strikes: %s" % port)
        check({h["ecid"] for h in port["history"]} == {FIRST, NEXT} and
              all(h["class"] == "link_lost" for h in port["history"]),
              "struck by the two units that lost the link there: %s" % port["history"])
        check("2 units lost the link here" in port["reason"], "reason: %s" % port["reason"])
        r = site.cli("ports", "--quarantined")
        check(r.returncode == 0 and "A-01" in r.stdout and "quarantined" in r.stdout, r.stdout)


if __name__ == "__main__":
    main(a_second_unit_on_a_bad_cable_quarantines_its_port)

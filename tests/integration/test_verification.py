"""Verification after the restore, and the IMEI where it is known: a restored unit boots into normal mode on its port and
shows on the simulator's usbmuxd; the agent reads its ProductVersion and BuildVersion
through lockdownd (unpaired) and sends them with the result; the controller compares them
with what the engine installed. The record and the report say "matches", "does not
match" (a unit that reports another build: a failed verification, which fails the
attempt: the unit is restored once more, then its run fails) or "not verified" with the reason (a unit that stays in recovery mode holds its port only verify_wait_s).
lockdownd gives the IMEI only in a session: the unit paired with this host has it in its
record and in `flashrack unit` (read before its erase, after which the unit no longer
trusts the host); an unpaired one says "not known"."""
from harness import Site, check, main, started

RACK = """
[sim]
seed = 11
time_scale = 400
; the technician puts a unit back in DFU in 40 simulated seconds (0.1 s)
move_s = 40

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 4

; paired with this host and plugged in in normal mode: its IMEI is read in a session
; before the restore (the erase leaves it no longer trusting this host's pair record,
; so the IMEI kept is the one read before)
[unit 0x00000000000A0001]
at = A-01
product_type = iPhone12,1
mode = normal
paired = yes

; its restore finishes but it says another build afterwards
[unit 0x00000000000A0002]
at = A-02
product_type = iPhone12,1
reports_build = 22C999

; its restore finishes but it never leaves recovery mode
[unit 0x00000000000A0003]
at = A-03
product_type = iPhone12,1
after_restore = recovery
"""

GOOD, OTHER, STAYS = "0x00000000000A0001", "0x00000000000A0002", "0x00000000000A0003"
WAIT_S = 3


def records(site, job):
    import json
    r = site.cli("record", str(job), "-o", "json")
    check(r.returncode == 0, "record: %s" % r.stderr)
    return {rec["device"]["ecid"]: rec for rec in
            (json.loads(line)["record"] for line in r.stdout.split("\n") if line)}


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def run_of(site, job, ecid):
    return next(r for r in site.job(job)["runs"] if r["ecid"] == ecid)


def report_unit(site, job, ecid):
    return next(u for u in site.cli_json("report", str(job))["units"] if u["ecid"] == ecid)


def restored_units_are_read_back_and_compared(bindir):
    site = Site(bindir, RACK, usbmuxd=True, discovery="sim+usbmuxd", verify_wait_s=WAIT_S)
    with started(site):
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) == 3,
                      30, "three units present")
        job = site.submit("--ecid", ",".join((GOOD, OTHER, STAYS)))
        # the unit that says another build failed its restore: it is restored once more,
        # which needs it in recovery; unpaired on iOS 18 it cannot be sent there, so the
        # operator is asked for the buttons, and puts it in DFU on the same port
        site.wait_for(lambda: run_of(site, job, OTHER)["state"] == "needs_operator", 60,
                      "the unit that says another build waiting for the operator")
        tries = report_unit(site, job, OTHER)["attempts"]
        check([(a["outcome"], a["error_class"]) for a in tries] ==
              [("failed", "verification"), ("failed", "needs_dfu")],
              "a failed verification, then the way back to recovery refused: %s" % tries)
        site.move_unit(OTHER, "A-02", dfu=True)
        site.wait_job_finished(job, 90)
        tries = report_unit(site, job, OTHER)["attempts"]
        check(len(tries) == 3 and tries[2]["error_class"] == "verification" and
              run_of(site, job, OTHER)["state"] == "failed",
              "restored again from DFU, still another build: the run failed: %s" % tries)
        check(run_of(site, job, GOOD)["state"] == "done" and run_of(site, job, STAYS)["state"] == "done",
              "the unit that matches and the one not read back are done")
        recs = records(site, job)
        check(set(recs) == {GOOD, OTHER, STAYS}, "a record per unit: %s" % sorted(recs))
        good = recs[GOOD]["verification"]
        check(good["status"] == "matches" and good["result"] ==
              "ProductVersion 18.2 BuildVersion 22C152 read from the unit after the restore: matches",
              "the unit that runs what was installed: %s" % good)
        check("lockdownd" in good["method"], "method: %s" % good)
        check(recs[GOOD]["result"] == "sanitized", "result: %s" % recs[GOOD]["result"])
        imei = recs[GOOD]["device"]["imei"]
        check(len(imei) == 15 and imei.isdigit() and luhn_ok(imei), "the paired unit's IMEI: %r" % imei)
        check(recs[OTHER]["device"]["imei"] == "not known", "an unpaired unit's: %r"
              % recs[OTHER]["device"]["imei"])
        r = site.cli("unit", GOOD)
        check(r.returncode == 0 and ("IMEI %s" % imei) in r.stdout, "unit GOOD: %s" % r.stdout)
        check(site.cli_json("unit", GOOD)["unit"]["imei"] == imei, "unit -o json")
        r = site.cli("unit", OTHER)
        check("IMEI not known" in r.stdout, "unit OTHER: %s" % r.stdout)
        other = recs[OTHER]["verification"]
        check(other["status"] == "does not match" and "BuildVersion 22C999" in other["result"] and
              "does not match the installed iOS 18.2 (22C152)" in other["result"],
              "the unit that says another build: %s" % other)
        check(recs[OTHER]["result"].startswith("verification failed"), "a failed verification: %s"
              % recs[OTHER]["result"])
        stays = recs[STAYS]["verification"]
        check(stays["status"] == "not verified" and stays["result"] ==
              "not verified: the unit did not come back in normal mode within %d s" % WAIT_S,
              "the unit that stays in recovery: %s" % stays)
        # the report says it per attempt, for people and for spreadsheets
        r = site.cli("report", str(job))
        check("verification: ProductVersion 18.2 BuildVersion 22C999 read from the unit after the "
              "restore: does not match" in r.stdout, "report text: %s" % r.stdout)
        r = site.cli("report", str(job), "-o", "csv")
        check("not verified: the unit did not come back in normal mode within %d s" % WAIT_S in r.stdout,
              "report csv: %s" % r.stdout)


def a_backend_without_lockdownd_says_why(bindir):
    site = Site(bindir, RACK, verify_wait_s=WAIT_S)  # discovery = sim: no usbmuxd
    with started(site):
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) == 3,
                      30, "three units present")
        job = site.submit("--ecid", GOOD)
        site.wait_job_finished(job, 60)
        v = records(site, job)[GOOD]["verification"]
        check(v["status"] == "not verified" and v["method"] == "none" and
              "discovery = sim reads no lockdownd" in v["result"], "plain sim backend: %s" % v)


if __name__ == "__main__":
    main(restored_units_are_read_back_and_compared, a_backend_without_lockdownd_says_why)

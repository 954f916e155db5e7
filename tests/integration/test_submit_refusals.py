"""Submit refuses what cannot work and says what it matched; a hardware_suspect unit
is held across jobs until an operator releases it, and `flashrack unit` shows its
history across jobs."""
import os

import zmq

import wire
from harness import check, curve_client, main, running_site, write_ipsw

# A dead phone (loses the link on every port), a good one, empty ports for moves; the
# simulated technician follows the move instructions.
RACK = """
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

[unit 0x0000000000DEAD01]
at = A-02
product_type = iPhone12,1
health = dead

[unit 0x0000000000BB0001]
at = B-01
product_type = iPhone14,7
"""
DEAD, GOOD = "0x0000000000DEAD01", "0x0000000000BB0001"


def refused(site, code, text, *args):
    r = site.cli("submit", "--firmware", site.ipsw(), *args)
    check(r.returncode == code and text in r.stderr,
          "submit %s: expected exit %d and %r, got %d %r" % (" ".join(args), code, text, r.returncode, r.stderr))


def nothing_that_cannot_work(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units")
        refused(site, 4, "no agent 'NOPE'", "--agent", "NOPE")
        refused(site, 4, "no port 'Z-99'", "--port", "Z-99")
        refused(site, 4, "0 units matched", "--port", "A-01")
        refused(site, 4, "unit 0x0000000000000001 is not connected", "--ecid", "0x1")
        check(site.cli_json("status")["jobs"] == [], "nothing refused was stored")

        waiting = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", "0x1", "--wait")
        check(waiting["created"] and waiting["matched"] == 1 and waiting["agents"] == {"": 1}
              and waiting["unconnected"] == ["0x0000000000000001"], "--wait: %s" % waiting)
        refused(site, 1, "unit 0x0000000000000001 is in job %d" % waiting["job_id"], "--ecid", "0x1", "--wait")
        queued = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", "0x1", "--wait", "--queue")
        check(queued["created"] and queued["job_id"] != waiting["job_id"], "--queue: %s" % queued)
        # a long --ecid list arrives whole: 1,000 ECIDs of 7 characters (a 4 KiB copy of the
        # list once kept the first 512 and dropped the rest unsaid), waited for
        many = ["0x%05X" % (0x10000 + i) for i in range(1000)]
        big = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", ",".join(many), "--wait")
        check(big["created"] and big["matched"] == 1000, "1,000 ECIDs: matched %s" % big.get("matched"))
        totals = site.cli_json("status", str(big["job_id"]))["jobs"][0]["totals"]
        check(totals["units"] == 1000 and totals["waiting"] == 1000, "1,000 ECIDs: totals %s" % totals)
        refused(site, 2, "more than 4096 ECIDs", "--ecid", ",".join("0x%05X" % (0x20000 + i) for i in range(4097)))
        for j in (waiting, queued, big):
            check(site.cli("cancel", str(j["job_id"])).returncode == 0, "cancel")

        a = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", GOOD, "--key", "k-1")
        b = site.cli_json("submit", "--firmware", site.ipsw(), "--ecid", GOOD, "--key", "k-1")
        check(a["job_id"] == b["job_id"] and b["created"] is False, "same key, same request: %s %s" % (a, b))
        refused(site, 1, "key 'k-1' was used for job %d with a different request (ecids differs)" % a["job_id"],
                "--ecid", DEAD, "--key", "k-1")
        refused(site, 1, "(erase/update differs)", "--ecid", GOOD, "--key", "k-1", "--update")
        site.wait_job_finished(a["job_id"], 60)


def suspect_unit_is_held_across_jobs(bindir):
    with running_site(bindir, RACK, agents=("A", "B"), operator=True) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units")
        first = site.submit("--ecid", DEAD, "--max-attempts", "6")
        doc = site.wait_job_finished(first, 90)
        check(doc["runs"][0]["state"] == "hardware_suspect", "suspect: %s" % doc["runs"])
        unit = site.cli_json("unit", DEAD)
        check(unit["unit"]["held"] is True and unit["unit"]["held_by_job"] == first, "held: %s" % unit["unit"])
        tried = len(unit["history"][0]["attempts"])

        refused(site, 1, "unit %s is held" % DEAD, "--ecid", DEAD)
        site.wait_for(lambda: site.cli_json("unit", DEAD)["unit"]["present"], 30, "the dead unit back")
        r = site.cli("submit", "--firmware", site.ipsw(), "--agent", "A", "--agent", "B", "--wait")
        check(r.returncode == 0 and "skipped: %s held" % DEAD in r.stdout,
              "submit says what it matched: %r %r" % (r.stdout, r.stderr))
        second = int(r.stdout.split()[1])
        check(DEAD not in [x["ecid"] for x in site.job(second)["runs"]], "not in job 2")
        check(site.cli("cancel", str(second)).returncode == 0, "cancel job 2")
        unit = site.cli_json("unit", DEAD)
        check(len(unit["history"]) == 1 and len(unit["history"][0]["attempts"]) == tried,
              "not restored again: %s" % unit["history"])

        r = site.cli("units", "release", DEAD)
        check(r.returncode == 0 and "released" in r.stdout, "release: %r %r" % (r.stdout, r.stderr))
        check(site.cli_json("unit", DEAD)["unit"]["held"] is False, "no longer held")
        r = site.cli("units", "release", DEAD)
        check(r.returncode == 4 and "is not held" in r.stderr, "release twice: %d %r" % (r.returncode, r.stderr))
        third = site.submit("--ecid", DEAD, "--max-attempts", "1")
        site.wait_job_finished(third, 60)
        hist = site.cli_json("unit", DEAD)["history"]
        check([h["job_id"] for h in hist] == [first, third] and hist[1]["attempts"],
              "history across jobs: %s" % hist)
        r = site.cli("unit", DEAD)
        check(r.returncode in (0, 1) and "Job %d" % first in r.stdout, "unit, as a table: %r" % r.stdout)
        check(site.cli("unit", "0x77").returncode == 4, "an unknown unit is not found")


def raw_submit(site, firmware):
    """The controller's answer to a submit sent without the CLI (its own checks)."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    curve_client(s, site.env["FLASHRACK_KEY"], site.env["FLASHRACK_CONTROLLER_KEY"])
    try:
        s.connect(site.clients_ep)
        s.send(wire.submit("raw", 1, "raw-1", firmware, int(GOOD, 16)))
        return s.recv()
    finally:
        s.close()
        ctx.term()


def firmware_that_cannot_work(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "two units")
        missing = os.path.join(site.dir, "nonexistent.ipsw")
        junk = os.path.join(site.dir, "junk.ipsw")
        with open(junk, "wb") as f:
            f.write(os.urandom(4096))
        bare = write_ipsw(os.path.join(site.dir, "bare.ipsw"), manifest=False)
        for path, why in ((missing, "No such file"), (junk, "as an IPSW (zip)"),
                          (bare, "has no BuildManifest.plist")):
            r = site.cli("submit", "--firmware", path, "--ecid", GOOD)
            check(r.returncode == 2 and path in r.stderr and why in r.stderr,
                  "submit --firmware %s: expected exit 2 naming it and %r, got %d %r"
                  % (path, why, r.returncode, r.stderr))
        # a relative path is sent as the absolute path it names here
        cwd = os.getcwd()
        os.chdir(site.dir)
        try:
            job = site.cli_json("submit", "--firmware", os.path.basename(site.ipsw()), "--ecid", GOOD)
        finally:
            os.chdir(cwd)
        check(site.job(job["job_id"])["jobs"][0]["firmware"] == site.ipsw(), "absolute path stored")
        check(site.cli("cancel", str(job["job_id"])).returncode == 0, "cancel")
        # the controller refuses a reference it cannot resolve, whoever sends it
        for ref in ("relative/x.ipsw", "ftp://host/x.ipsw"):
            reply = wire.fields(wire.fields(raw_submit(site, ref))[wire.REPLY][0])
            error = reply.get(2, [b""])[0].decode()
            check(reply.get(1) and "'firmware' must be an http(s) URL" in error and ref in error,
                  "controller on %r: %r" % (ref, reply))
        check(len(site.cli_json("status")["jobs"]) == 1, "nothing refused was stored")


if __name__ == "__main__":
    main(nothing_that_cannot_work, suspect_unit_is_held_across_jobs, firmware_that_cannot_work)

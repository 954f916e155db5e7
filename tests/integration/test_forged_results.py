"""Results that cannot be forged: a peer that was never given an attempt (here one
that says Hello under its own agent id, written with zmq and the .proto only) guesses
job, attempt and epoch numbers (small counters) and sends successes and refusals for
another agent's attempts. None is applied: each is recorded and counted, and the real
agent's restores finish once each."""
import time

import wire
from harness import check, main, running_site, welcomed_peer

RACK = """
[sim]
seed = 5
time_scale = 60
dialect = master

[host A]
label_prefix = A-
fill = yes
product_types = iPhone12,1

[hub A.1]
host = A
bus = 1
depth = 1
ports = 3
"""


def guessed_results_are_counted_not_applied(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 3, 20, "3 units")
        ecids = [int(u["ecid"], 16) for u in site.cli_json("units")["units"]]
        job = site.submit("--agent", "A", "--name", "forge-me")
        site.wait_for(lambda: sum(r["state"] in ("restoring", "verifying", "queued_for_bus")
                                  for r in site.job(job).get("runs", [])) >= 3, 30, "restores")
        session = 4242
        # a key the site authorized for agent X: X is who it is, not whose results it sends
        with welcomed_peer(site, "X", session) as s:
            seq, sent = 0, 0
            for attempt in range(1, 5):
                for epoch in range(1, 5):
                    for ecid in ecids:
                        ref = wire.attempt_ref(job, attempt, epoch, ecid)
                        seq += 1
                        s.send(wire.job_result("X", session, seq, ref))
                        seq += 1
                        s.send(wire.job_refusal("X", session, seq, ref))
                        sent += 2
            time.sleep(1.0)

            def counted():
                rows = {a["id"]: a for a in site.cli_json("agents")["agents"]}
                return rows.get("X", {}).get("mismatched", 0) >= sent
            site.wait_for(counted, 20, "the %d forged messages counted" % sent)
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        for u in site.cli_json("report", str(job))["units"]:
            check(len(u["attempts"]) == 1 and u["attempts"][0]["outcome"] == "success"
                  and u["attempts"][0]["agent"] == "A",
                  "%s: one attempt, by A, restored: %s" % (u["ecid"], u["attempts"]))
        check(site.procs["flashrackd"].poll() is None, "controller alive")


if __name__ == "__main__":
    main(guessed_results_are_counted_not_applied)

"""Progress in batches at the controller: the real agent's ProgressBatch messages move its
runs' progress; a batch from another agent (written with zmq and the .proto only) whose
items name attempts that are not its own is counted item by item as mismatches and changes
nothing, as a single JobProgress (still taken) is; a batch over the bound of 128 items, with
a malformed item, or with none is refused whole and counted as a dropped message. The
controller stays up and every unit is restored once."""

import wire
from harness import check, main, running_site, simple_rack, welcomed_peer


def agent_row(site, aid):
    return {a["id"]: a for a in site.cli_json("agents")["agents"]}.get(aid, {})


def forged_items_are_counted_one_by_one(site, s, session, job, ecids):
    """Items naming guessed attempts (A's among them) on A's units, in batches of 8, and
    one single JobProgress: each counted (distinct attempts, as the controller keeps the
    latest per attempt). Returns how many."""
    items = [wire.job_progress(wire.attempt_ref(job, attempt, 1, ecids[attempt % 3]),
                               fraction=0.9, status="forged")
             for attempt in range(1, 25)]
    for i in range(0, len(items), 8):
        s.send(wire.progress_batch("X", session, items[i:i + 8]))
    site.wait_for(lambda: agent_row(site, "X").get("mismatched", 0) >= len(items), 20,
                  "the %d forged items counted as mismatches" % len(items))
    s.send(wire.job_progress_alone("X", session, wire.job_progress(
        wire.attempt_ref(job, 99, 1, ecids[0]), status="forged")))
    forged = len(items) + 1
    site.wait_for(lambda: agent_row(site, "X").get("mismatched", 0) >= forged, 20,
                  "the single forged JobProgress counted")
    check(agent_row(site, "X").get("mismatched") == forged,
          "each forged item counted once: %s" % agent_row(site, "X"))
    check(all(r["status"] != "forged" for r in site.job(job)["runs"]),
          "no forged item applied: %s" % [(r["ecid"], r["status"]) for r in site.job(job)["runs"]])
    return forged


def bad_batches_are_refused_whole(site, s, session, job, ecids, forged):
    """Over the bound, a malformed item, an item without its reference, no items."""
    ref = wire.attempt_ref(job, 1, 1, ecids[0])
    dropped0 = agent_row(site, "X").get("dropped_msgs", 0)
    s.send(wire.progress_batch("X", session, [wire.job_progress(ref)] * 129))
    s.send(wire.progress_batch("X", session, [wire.job_progress(ref),
                                              wire.job_progress(ref, fraction=1.5)]))
    s.send(wire.progress_batch("X", session, [wire.job_progress(ref), wire.job_progress(None)]))
    s.send(wire.progress_batch("X", session, []))
    site.wait_for(lambda: agent_row(site, "X").get("dropped_msgs", 0) >= dropped0 + 4, 20,
                  "the 4 bad batches counted as dropped")
    # One more forged item, after them on the same link: once it is counted, the flush
    # that would have counted anything of the refused batches has come (a fixed pause
    # was only likely to cover it)
    s.send(wire.job_progress_alone("X", session, wire.job_progress(
        wire.attempt_ref(job, 98, 1, ecids[0]), status="forged")))
    site.wait_for(lambda: agent_row(site, "X").get("mismatched", 0) >= forged + 1, 20,
                  "the forged item sent after the bad batches counted")
    check(agent_row(site, "X").get("mismatched") == forged + 1,
          "nothing of a refused batch was matched or applied: %s" % agent_row(site, "X"))
    check("field 'items[1]'" in site.log("flashrackd"), "the refusal names the malformed item")


def batches_apply_per_item_and_bad_ones_are_refused(bindir):
    with running_site(bindir, simple_rack(ports=3, seed=7, time_scale=60)) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 3, 20, "3 units")
        ecids = [int(u["ecid"], 16) for u in site.cli_json("units")["units"]]
        job = site.submit("--agent", "A", "--name", "batched")
        site.wait_for(lambda: any(r["state"] in ("restoring", "verifying") and
                                  (r["fraction"] > 0 or r["step"] > 0 or r["status"])
                                  for r in site.job(job).get("runs", [])), 60,
                      "a run showing its engine's progress (the agent's batches applied)")
        session = 5151
        with welcomed_peer(site, "X", session) as s:
            forged = forged_items_are_counted_one_by_one(site, s, session, job, ecids)
            bad_batches_are_refused_whole(site, s, session, job, ecids, forged)
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        for u in site.cli_json("report", str(job))["units"]:
            check(len(u["attempts"]) == 1 and u["attempts"][0]["outcome"] == "success",
                  "%s: one attempt, restored: %s" % (u["ecid"], u["attempts"]))
        check(site.procs["flashrackd"].poll() is None, "controller alive")


if __name__ == "__main__":
    main(batches_apply_per_item_and_bad_ones_are_refused)

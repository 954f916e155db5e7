"""A partition: one agent cut off from the controller (tests/integration/netcut.py)
while its restores run, then the link mended. Shared by
tests/integration/test_chaos_partition.py (a short cut, in CI) and
bench/partition_bench.py (the 60 s cut, printed)."""
import time

from chaos import chaos_rack, quiet
from harness import Site, tended
from netcut import NetCut

UNTIL_LIMIT_S = 120


def partition(bindir, cut_s, units=6, time_scale=100, log=None, until_restored=False):
    """The counts of one cut of cut_s seconds; with until_restored the cut also lasts until
    the simulator has counted every unit restored (bounded): a test asks what the agent
    did while cut off, not how much of it fitted into cut_s on a loaded machine."""
    say = log or (lambda msg: None)
    site = Site(bindir, chaos_rack(["A"], units, seed=5, time_scale=time_scale), agents=("A",),
                hb_ms=200, liveness=3, slots=units, bus_limit=units)
    cut = NetCut(int(site.agents_ep.rsplit(":", 1)[1]))
    site.agent_controller["A"] = cut.endpoint
    c = dict(units=units, cut_s=cut_s)
    try:
        with tended(site):
            site.start()
            site.wait_for(lambda: len(site.cli_json("units")["units"]) == units, 30,
                          "%d units" % units)
            job = site.submit("--agent", "A", "--name", "partition")

            def active():
                runs = site.job(job).get("runs", [])
                return sum(1 for r in runs if r["state"] in ("restoring", "verifying"))
            site.wait_for(lambda: active() == units, 60, "every unit restoring")
            c.update(_during_the_cut(site, cut, cut_s, units if until_restored else 0, say))
            site.wait_job_finished(job, 120)
            c.update(_afterwards(site, job))
    finally:
        cut.close()
    c["connections_through_the_cut"] = cut.connections
    return c


def _agent_state(site):
    doc = quiet(lambda: site.cli_json("agents"), {"agents": []})
    return [a["state"] for a in doc["agents"] if a["id"] == "A"][:1] or ["unknown"]


def _restored(site):
    return sum(u["restored"] for u in site.sim_request({"op": "runs"})["units"].values())


def _during_the_cut(site, cut, cut_s, until, say):
    """A cut of cut_s seconds, and longer until `until` restores ended in it (at most
    UNTIL_LIMIT_S more)."""
    restored_before = _restored(site)
    began = time.monotonic()
    cut.cut()
    say("link of agent A cut for %g s%s" % (cut_s, ", and until %d restores ended" % until if until else ""))
    offline_seen = False

    def over():
        elapsed = time.monotonic() - began
        return elapsed >= cut_s and (elapsed >= cut_s + UNTIL_LIMIT_S or
                                     _restored(site) - restored_before >= until)
    while not over():
        offline_seen = offline_seen or _agent_state(site) == ["offline"]
        time.sleep(0.5)
    restored_during = _restored(site) - restored_before
    say("mended after %.1f s: %d restores ended during the cut; the controller %s the agent "
        "offline" % (time.monotonic() - began, restored_during,
                     "saw" if offline_seen else "never saw"))
    cut.mend()
    mended = time.monotonic()
    lasted = mended - began
    site.wait_for(lambda: _agent_state(site) == ["online"], 60, "agent online again")
    return dict(restored_before_cut=restored_before, restored_during_cut=restored_during,
                offline_seen=offline_seen, cut_lasted_s=round(lasted, 1),
                online_again_s=round(time.monotonic() - mended, 1))


def _afterwards(site, job):
    doc = site.job(job)
    rep = site.cli_json("report", str(job))
    runs = site.sim_request({"op": "runs"})["units"]
    attempts = {u["ecid"]: u["attempts"] for u in rep["units"]}
    return dict(
        job_state=doc["jobs"][0]["state"],
        done=sum(1 for r in doc["runs"] if r["state"] == "done"),
        engine_runs=sum(u["started"] for u in runs.values()),
        restored_twice=sum(1 for u in runs.values() if u["restored"] > 1),
        attempts=sum(len(a) for a in attempts.values()),
        successes=sum(1 for a in attempts.values() for x in a if x["outcome"] == "success"),
        interrupted=sum(1 for a in attempts.values() for x in a if x["outcome"] == "interrupted"),
        units_with_more_than_one_attempt=sum(1 for a in attempts.values() if len(a) > 1))


LINES = [
    ("units", "units on the agent"),
    ("cut_lasted_s", "seconds the agent's link was cut"),
    ("restored_before_cut", "restores ended before the cut"),
    ("restored_during_cut", "restores ended during the cut (simulator)"),
    ("offline_seen", "the controller saw the agent offline during the cut"),
    ("online_again_s", "seconds from the mend until the agent was online again"),
    ("job_state", "job state afterwards"),
    ("done", "units done"),
    ("engine_runs", "engine runs (simulator)"),
    ("restored_twice", "units restored twice"),
    ("attempts", "attempts (controller)"),
    ("successes", "successful attempts"),
    ("interrupted", "interrupted attempts"),
    ("units_with_more_than_one_attempt", "units with more than one attempt"),
    ("connections_through_the_cut", "TCP connections the relay carried"),
]


def format_counts(c):
    return "\n".join("%-60s %s" % (label, c[key]) for key, label in LINES)

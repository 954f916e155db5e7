"""Chaos: kill -9 the controller and agents at 3 seeded random moments while two jobs
run on a simulated site with CURVE, restarting each after a short pause
(tests/integration/chaos.py; bench/chaos_bench.py does 20 kills on 200 units).
Counts only: every unit ends done, as the simulator's own count of engine runs
agrees; no unit is restored twice or has two engines at once; no job and no result
is lost. And what that rests on: the simulator's count of engine runs per unit
(which outlives every agent and controller), a restore that ends while its agent is
down counted once, an engine left running by a killed agent taken over, not run again."""
import signal

from chaos import Chaos, format_counts
from harness import check, main, running_site, simple_rack


def the_simulator_counts_engine_runs_per_unit(bindir):
    with running_site(bindir, simple_rack(ports=2, time_scale=400)) as site:
        check(site.sim_request({"op": "runs"}) == {"op": "runs", "units": {}},
              "no engine run before the first restore")
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 2, 20, "2 units")
        job = site.submit("--agent", "A")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]), "both done: %s" % doc["runs"])
        runs = site.sim_request({"op": "runs"})["units"]
        ecids = sorted(r["ecid"] for r in doc["runs"])
        check(sorted(runs) == ecids, "a count per restored unit: %s vs %s" % (runs, ecids))
        for e in ecids:
            check(runs[e] == {"started": 1, "restored": 1, "failed": 0, "gone": 0, "running": 0,
                              "max_running": 1}, "%s: %s" % (e, runs[e]))


# Restores of about 7 s (time_scale 120): the agent is stopped or killed as soon as all
# four restore, seconds before the first can end; twice as fast as at time_scale 60.
RACK_SLOW = simple_rack(ports=4, time_scale=120)


def engine_runs(site):
    return site.sim_request({"op": "runs"})["units"]


def restoring(site, job, n):
    runs = site.job(job).get("runs", [])
    return sum(1 for r in runs if r["state"] in ("restoring", "verifying")) >= n


def a_restore_that_ends_while_its_agent_is_down_counts_once(bindir):
    # The agent stops (SIGSTOP) with its engines running; they finish the units while it
    # reads nothing; then it is killed and started again. The restores' ends were never
    # seen by an agent process: the engine keeper recorded them, and the next process
    # reports them instead of letting the units be restored again.
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 4, 20, "4 units")
        job = site.submit("--agent", "A")
        site.wait_for(lambda: restoring(site, job, 4), 60, "four restoring")
        site.kill("agent-A", signal.SIGSTOP)
        site.wait_for(lambda: sum(u["restored"] for u in engine_runs(site).values()) == 4, 90,
                      "the simulator finished the four restores")
        site.kill("agent-A")
        site.start_agent("A")
        doc = site.wait_job_finished(job, 90)
        check(all(r["state"] == "done" for r in doc["runs"]), "all done: %s" % doc["runs"])
        for e, u in engine_runs(site).items():
            check(u["started"] == 1 and u["restored"] == 1, "%s restored once: %s" % (e, u))
        rep = site.cli_json("report", str(job))
        for u in rep["units"]:
            check([a["outcome"] for a in u["attempts"]] == ["success"],
                  "%s: one attempt, a success: %s" % (u["ecid"], u["attempts"]))
        check("started by an earlier run of this agent, ended" in site.log("agent-A"),
              "the agent said where the results came from")


def an_engine_that_outlives_its_agent_is_taken_over_not_run_again(bindir):
    # Killed mid-restore, the agent leaves its engines running under their keeper; the
    # next process takes them over (their attempts listed in its Hello) and reports each
    # when it ends: one engine run per unit, never two at once, nothing interrupted.
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 4, 20, "4 units")
        job = site.submit("--agent", "A")
        site.wait_for(lambda: restoring(site, job, 4), 60, "four restoring")
        site.kill("agent-A")
        site.start_agent("A")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]), "all done: %s" % doc["runs"])
        runs = engine_runs(site)
        for e, u in runs.items():
            check(u == {"started": 1, "restored": 1, "failed": 0, "gone": 0, "running": 0,
                        "max_running": 1}, "%s: one engine run, it restored the unit: %s" % (e, u))
        for u in site.cli_json("report", str(job))["units"]:
            check([a["outcome"] for a in u["attempts"]] == ["success"],
                  "%s: one attempt, a success: %s" % (u["ecid"], u["attempts"]))
        check("taken over until it ends" in site.log("agent-A"), "the agent said so")


def three_kills_lose_nothing_and_restore_nothing_twice(bindir):
    # slow restores (about 25 s each): the kills come while the jobs run
    chaos = Chaos(bindir, agents=2, ports=15, kills=3, seed=9, time_scale=25,
                  gap_s=(1.5, 3.0))
    c = chaos.run()
    print(format_counts(c), flush=True)
    check(c["kills"] == 3, "3 kills while the jobs ran: %s" % chaos.killed)
    check(c["jobs_lost"] == 0 and c["jobs_done"] == 2, "both jobs done: %s" % c)
    check(c["units_in_jobs"] == 30 and c["done"] == 30, "every unit done: %s" % c)
    check(c["wrong_state"] == 0, "states as the simulator saw them: %s" % c["wrong_examples"])
    check(c["restored_twice"] == 0, "restored twice: %s" % c["twice_examples"])
    check(c["run_at_once_twice"] == 0, "two engines at once on a unit")
    check(c["results_lost"] == 0, "results lost: %s" % c["lost_examples"])
    check(c["engine_restored"] == 30, "one restoring engine run per unit: %d"
          % c["engine_restored"])


if __name__ == "__main__":
    main(the_simulator_counts_engine_runs_per_unit,
         a_restore_that_ends_while_its_agent_is_down_counts_once,
         an_engine_that_outlives_its_agent_is_taken_over_not_run_again,
         three_kills_lose_nothing_and_restore_nothing_twice)

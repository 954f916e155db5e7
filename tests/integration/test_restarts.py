"""Restarts mid-job: the controller killed and restarted loses no job and
restores no unit twice; an agent killed mid-restore comes back, takes over the
engines that outlived it and its units finish, each restored once; a silent agent
is noticed by its heartbeats; an agent stopped mid-restore exits cleanly and its next
process delivers what it kept."""
import re
import signal
import time

from harness import check, main, running_site

# Restores of about 12 s (6 GB each over one shared bus, time_scale 120): long enough that
# every kill below lands mid-restore with seconds to spare, short enough that the five
# sites here take about half as long as they did at time_scale 60.
RACK_SLOW = """
[sim]
seed = 11
time_scale = 120
dialect = master

[host A]
label_prefix = A-
fill = yes
product_types = iPhone12,1 iPhone11,2

[hub A.1]
host = A
bus = 1
depth = 1
ports = 6
power_switch = yes
"""


def restoring(site, job, at_least):
    runs = site.job(job).get("runs", [])
    return sum(1 for r in runs if r["state"] in ("restoring", "verifying")) >= at_least


def controller_restart_mid_job(bindir):
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 6, 20, "6 units")
        job = site.submit("--agent", "A", "--name", "restart-me")
        site.wait_for(lambda: restoring(site, job, 3), 30, "restores under way")
        before = site.job(job)["jobs"][0]
        site.kill("flashrackd")
        time.sleep(1.0)
        site.start_controller()
        doc = site.wait_job_finished(job, 120)
        # the new controller lists the job from its store, as it was submitted
        listed = [j for j in site.cli_json("status")["jobs"] if j["id"] == job]
        check(len(listed) == 1 and listed[0]["name"] == "restart-me" and
              listed[0]["created"] == before["created"],
              "the job survived the restart: %s, before: %s" % (listed, before))
        # and no restore ran twice: the engine started once per unit, restart or not
        stats = site.sim_request({"op": "stats"})
        check(stats["started"] == 6 and stats["restored"] == 6,
              "six engine runs across the restart: %s" % stats)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        check(len(doc["runs"]) == 6, "six runs: %d" % len(doc["runs"]))
        rep = site.cli_json("report", str(job))
        for u in rep["units"]:
            ok = [a for a in u["attempts"] if a["outcome"] == "success"]
            check(len(ok) == 1, "%s restored once: %s" % (u["ecid"], u["attempts"]))
            # the controller's restart is invisible to the restores themselves
            check(len(u["attempts"]) == 1, "%s has one attempt: %s" % (u["ecid"], u["attempts"]))


def agent_restart_mid_restore(bindir):
    """The engines outlive the killed agent (flashrack-engine-keeper holds them) and the
    next agent process takes them over: each unit's one restore ends once, is counted
    once, and nothing is interrupted or run again."""
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 6, 20, "6 units")
        job = site.submit("--agent", "A", "--name", "agent-restart")
        site.wait_for(lambda: restoring(site, job, 2), 30, "restores under way")
        site.kill("agent-A")
        running = [e for e, u in site.sim_request({"op": "runs"})["units"].items()
                   if u["running"] > 0]
        check(len(running) >= 2, "engines still running with their agent dead: %s" % running)
        time.sleep(0.5)
        site.start_agent("A")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done after the agent restart: %s"
              % [(r["ecid"], r["state"]) for r in doc["runs"]])
        check(len(doc["runs"]) == 6, "six runs: %d" % len(doc["runs"]))
        runs = site.sim_request({"op": "runs"})["units"]
        check(sorted(runs) == sorted(r["ecid"] for r in doc["runs"]),
              "an engine ran on each of the six units: %s" % sorted(runs))
        for ecid, u in runs.items():
            check(u["started"] == 1 and u["restored"] == 1 and u["gone"] == 0 and
                  u["failed"] == 0, "%s: one engine run, restored, none cut off: %s" % (ecid, u))
        rep = site.cli_json("report", str(job))
        for u in rep["units"]:
            outcomes = [a["outcome"] for a in u["attempts"]]
            check(outcomes == ["success"], "%s: one attempt, a success, nothing interrupted: %s"
                  % (u["ecid"], outcomes))
        log = site.log("agent-A")
        check("taken over until it ends" in log, "the new agent took over running engines")
        for ecid in running:
            check(re.search(r"unit %s: attempt \d+, started by an earlier run of this agent, "
                            r"ended: restored" % ecid, log) is not None,
                  "%s: its engine's end heard by the new agent" % ecid)


def results_survive_an_agent_killed_before_delivering_them(bindir):
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 6, 20, "6 units")
        job = site.submit("--agent", "A", "--name", "undelivered")
        site.wait_for(lambda: restoring(site, job, 6), 30, "all six restoring")
        # The controller hears nothing while the restores finish; then the agent dies
        # with every result still unacknowledged.
        site.kill("flashrackd", signal.SIGSTOP)
        site.wait_for(lambda: site.log("agent-A").count("-> done") >= 6, 60,
                      "the agent finished the six restores")
        site.kill("agent-A")
        site.kill("flashrackd", signal.SIGCONT)
        site.start_agent("A")
        doc = site.wait_job_finished(job, 60)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        rep = site.cli_json("report", str(job))
        for u in rep["units"]:
            outcomes = [a["outcome"] for a in u["attempts"]]
            check(outcomes == ["success"], "%s: its one restore counted, not repeated: %s"
                  % (u["ecid"], outcomes))
        check("kept from before a restart" in site.log("agent-A"), "the agent said so")


def agent_stopped_mid_restore_exits_cleanly(bindir):
    """SIGTERM while engines run: the agent ends them, and their results, reported after
    its link closed, go to its journal only (they used to be queued in an outbox already
    freed, and leaked). It exits 0 with no leak report (the suite's builds run under
    LeakSanitizer), and its next process delivers each kept result once. A restore ended
    by the agent's own stop is interrupted, not cancelled (it used to say "cancelled by the
    controller", and the job left those units cancelled): the controller runs it again,
    and every unit ends restored."""
    with running_site(bindir, RACK_SLOW) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 6, 20, "6 units")
        job = site.submit("--agent", "A", "--name", "agent-stop")
        site.wait_for(lambda: restoring(site, job, 2), 30, "restores under way")
        site.kill("agent-A", signal.SIGTERM)
        rc = site.procs["agent-A"].returncode
        log = site.log("agent-A")
        check("LeakSanitizer" not in log, "no leak at the agent's exit:\n%s"
              % log[log.find("LeakSanitizer"):][:2000])
        check(rc == 0, "the agent exited 0 on SIGTERM: %s" % rc)
        check("stopping on signal" in log, "the agent said it was stopping")
        site.start_agent("A")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit restored after the stop: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        rep = site.cli_json("report", str(job))
        stopped = 0
        for u in rep["units"]:
            outcomes = [a["outcome"] for a in u["attempts"]]
            check(outcomes in (["success"], ["interrupted", "success"]),
                  "%s: restored once, after at most the stop's interruption: %s" % (u["ecid"], outcomes))
            stopped += outcomes[0] == "interrupted"
        check(stopped >= 2, "the restores under way at the stop were interrupted: %d" % stopped)
        kept = site.log("agent-A").count("kept from before a restart, goes out again")
        check(kept >= 2, "the next process delivered the kept results: %d" % kept)
        check(len(doc["runs"]) == 6, "six runs: %d" % len(doc["runs"]))


def heartbeat_loss_detected(bindir):
    with running_site(bindir, RACK_SLOW, hb_ms=200, liveness=3) as site:
        def state():
            return [a["state"] for a in site.cli_json("agents")["agents"] if a["id"] == "A"]
        check(state() == ["online"], "agent online at start: %s" % state())
        site.kill("agent-A", signal.SIGSTOP)
        site.wait_for(lambda: state() == ["offline"], 10, "agent marked offline")
        # The controller's own account of the silence, not the test's clock (which a
        # loaded machine stretches and shrinks): it waited out liveness x heartbeat.
        silent = [int(m) for m in re.findall(r"agent 'A' offline: no message for (\d+) ms",
                                              site.log("flashrackd"))]
        check(silent and silent[0] >= 200 * 3,
              "not declared dead before liveness ran out: %s ms" % silent)
        site.kill("agent-A", signal.SIGCONT)
        site.wait_for(lambda: state() == ["online"], 10, "agent online again")
        check(re.search(r"offline", site.log("flashrackd")) is not None,
              "controller logged the loss")


if __name__ == "__main__":
    main(controller_restart_mid_job, agent_restart_mid_restore,
         results_survive_an_agent_killed_before_delivering_them,
         agent_stopped_mid_restore_exits_cleanly, heartbeat_loss_detected)

"""Chaos on a simulated site: kill -9 the controller and agents at seeded random
moments while jobs run, restart each after a short pause, then count.

The simulator outlives every kill and counts engine runs per unit itself
({"op":"runs"}, sim/PROTOCOL.md), so "restored twice" is measured on the units,
not on the controller's records. Shared by tests/integration/test_chaos.py (a few
kills, in CI) and bench/chaos_bench.py (20 kills on 200 units, printed).
"""
import random
import subprocess
import time

from harness import Failure, Site, tended

JOB_STATES_FINISHED = ("done", "cancelled")
RUN_STATES_TERMINAL = ("done", "failed", "cancelled")


def chaos_rack(hosts, ports, seed, time_scale, per_hub=10, filesystem_mb=600):
    """Per host, hubs of per_hub ports on their own root buses, every port filled.
    A small filesystem keeps a restore to about ten simulated minutes."""
    lines = ["[sim]", "seed = %d" % seed, "time_scale = %g" % time_scale,
             "filesystem_mb = %d" % filesystem_mb]
    for h in hosts:
        lines += ["", "[host %s]" % h, "label_prefix = %s-" % h, "fill = yes",
                  "product_types = iPhone12,1 iPhone13,2"]
        left, hub = ports, 1
        while left > 0:
            n = min(per_hub, left)
            lines += ["", "[hub %s.%d]" % (h, hub), "host = %s" % h, "bus = %d" % hub,
                      "depth = 1", "ports = %d" % n, "power_switch = yes"]
            left -= n
            hub += 1
    return "\n".join(lines) + "\n"


def quiet(fn, default=None):
    """fn(), or default while the controller is down or restarting."""
    try:
        return fn()
    except (Failure, ValueError, KeyError, subprocess.TimeoutExpired):
        return default


class Chaos:
    def __init__(self, bindir, agents=4, ports=50, kills=20, seed=1, time_scale=60,
                 gap_s=(1.0, 4.0), pause_s=(0.3, 1.5), finish_s=300, log=None):
        self.agent_ids = ["H%d" % i for i in range(agents)]
        self.units = agents * ports
        self.kills = kills
        self.rng = random.Random(seed)
        self.gap_s, self.pause_s, self.finish_s = gap_s, pause_s, finish_s
        self.say = log or (lambda msg: None)
        rack = chaos_rack(self.agent_ids, ports, seed, time_scale)
        self.site = Site(bindir, rack, agents=self.agent_ids, hb_ms=200, liveness=5,
                         slots=ports, bus_limit=10, operator=True, cli_timeout=3)
        self.jobs = []
        self.killed = []  # (seconds since the jobs began, victim)

    # -- the run ------------------------------------------------------------
    def run(self):
        with tended(self.site) as site:
            site.start()
            site.wait_for(lambda: len(quiet(lambda: site.cli_json("units")["units"], [])) ==
                          self.units, 60, "%d units present" % self.units)
            self.jobs = [site.submit("--agent", a, "--name", "chaos-" + a)
                         for a in self.agent_ids]
            self.began = time.monotonic()
            self._kill_at_random()
            self._wait_finished()
            return self.count()

    def _kill_at_random(self):
        victims = ["flashrackd"] + ["agent-" + a for a in self.agent_ids]
        while len(self.killed) < self.kills:
            time.sleep(self.rng.uniform(*self.gap_s))
            victim = self.rng.choice(victims)
            pause = self.rng.uniform(*self.pause_s)
            if self._all_finished():
                self.say("every job finished after %d kills" % len(self.killed))
                return
            self.site.kill(victim)
            self.killed.append((time.monotonic() - self.began, victim))
            self.say("kill -9 %s (%d of %d), back in %.1f s"
                     % (victim, len(self.killed), self.kills, pause))
            time.sleep(pause)
            self._restart(victim)

    def _restart(self, victim):
        if victim == "flashrackd":
            self.site.start_controller()
        else:
            self.site.start_agent(victim[len("agent-"):])

    def _all_finished(self):
        """One question to the controller (it may be down: then not finished)."""
        jobs = quiet(lambda: self.site.cli_json("status")["jobs"], [])
        state = {j["id"]: j["state"] for j in jobs}
        return all(state.get(j) in JOB_STATES_FINISHED for j in self.jobs)

    def _wait_finished(self):
        self.site.wait_for(self._all_finished, self.finish_s, "every job finished", step=0.5)

    # -- the counts ---------------------------------------------------------
    def count(self):
        """What the units went through (the simulator) against what the controller says."""
        site = self.site
        runs = site.sim_request({"op": "runs"})["units"]
        status = {j: quiet(lambda j=j: site.job(j)) for j in self.jobs}
        reports = {j: quiet(lambda j=j: site.cli_json("report", str(j))) for j in self.jobs}
        c = dict(units=self.units, kills=len(self.killed),
                 controller_kills=sum(1 for _, v in self.killed if v == "flashrackd"),
                 agent_kills=sum(1 for _, v in self.killed if v != "flashrackd"),
                 jobs=len(self.jobs), jobs_lost=sum(1 for j in self.jobs if status[j] is None),
                 jobs_done=sum(1 for j in self.jobs if status[j] and
                               status[j]["jobs"][0]["state"] == "done"),
                 engine_runs=sum(u["started"] for u in runs.values()),
                 engine_restored=sum(u["restored"] for u in runs.values()),
                 engine_failed=sum(u["failed"] for u in runs.values()),
                 engine_gone=sum(u["gone"] for u in runs.values()),
                 restored_twice=sum(1 for u in runs.values() if u["restored"] > 1),
                 run_at_once_twice=sum(1 for u in runs.values() if u["max_running"] > 1),
                 still_running=sum(u["running"] for u in runs.values()))
        controller = {}  # ecid -> (run state, attempts)
        for j in self.jobs:
            if not status[j] or not reports[j]:
                continue
            attempts = {u["ecid"]: u["attempts"] for u in reports[j]["units"]}
            for r in status[j]["runs"]:
                controller[r["ecid"]] = (r["state"], attempts.get(r["ecid"], []))
        c["units_in_jobs"] = len(controller)
        c["done"] = sum(1 for s, _ in controller.values() if s == "done")
        c["failed"] = sum(1 for s, _ in controller.values() if s == "failed")
        c["not_terminal"] = sum(1 for s, _ in controller.values()
                                if s not in RUN_STATES_TERMINAL)
        c["attempts"] = sum(len(a) for _, a in controller.values())
        c["interrupted_attempts"] = sum(1 for _, a in controller.values() for x in a
                                        if x["outcome"] == "interrupted")
        # A unit is in a correct terminal state when the controller says done exactly
        # when the unit was restored (once), and failed only when it was never restored.
        wrong, lost = [], []
        for ecid, (state, attempts) in controller.items():
            restored = runs.get(ecid, {}).get("restored", 0)
            successes = sum(1 for x in attempts if x["outcome"] == "success")
            if (state == "done") != (restored >= 1) or state not in RUN_STATES_TERMINAL:
                wrong.append((ecid, state, restored))
            if successes != restored:
                lost.append((ecid, successes, restored))
        c["wrong_state"] = len(wrong)
        c["results_lost"] = len(lost)
        c["wrong_examples"] = wrong[:5]
        c["lost_examples"] = lost[:5]
        c["twice_examples"] = [e for e, u in runs.items() if u["restored"] > 1][:5]
        return c


COUNT_LINES = [
    ("units", "units on the site"),
    ("kills", "kill -9 survived (controller %(controller_kills)d, agents %(agent_kills)d)"),
    ("jobs", "jobs submitted"),
    ("jobs_lost", "jobs lost"),
    ("jobs_done", "jobs done"),
    ("units_in_jobs", "units in the jobs (controller)"),
    ("done", "units done"),
    ("failed", "units failed"),
    ("not_terminal", "units not in a terminal state"),
    ("wrong_state", "units whose state disagrees with the simulator"),
    ("engine_runs", "engine runs (simulator)"),
    ("engine_restored", "engine runs that restored a unit"),
    ("engine_failed", "engine runs that failed"),
    ("engine_gone", "engine runs cut off (engine killed or link gone)"),
    ("restored_twice", "units restored twice"),
    ("run_at_once_twice", "units with two engines at once"),
    ("still_running", "engine runs still running at the end"),
    ("attempts", "attempts (controller)"),
    ("interrupted_attempts", "attempts interrupted"),
    ("results_lost", "units whose successes differ from the simulator's (results lost)"),
]


def format_counts(c):
    return "\n".join("%-70s %d" % (label % c, c[key]) for key, label in COUNT_LINES)

"""The engine is part of the agent's configuration: probed at start, refused at start
(exit 2, naming [engine] path) when it cannot serve, given what it needs from the
agent's own config, and never run for a model it does not know."""
import os
import subprocess
import tempfile

from harness import Site, check, main, simple_rack, started

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "engine",
                        "probe")


def restore_one(site):
    site.wait_for(lambda: any(u["present"] for u in site.cli_json("units")["units"]), 20,
                  "a unit present")
    target = [u for u in site.cli_json("units")["units"] if u["present"]][0]["ecid"]
    job = site.submit("--ecid", target, "--name", "one")
    doc = site.wait_job_finished(job, 60)
    return doc, site.cli_json("report", str(job))["units"][0]


def sim_socket_comes_from_the_agents_config(bindir):
    """A new user runs the agent as config/agent.ini describes: sim_socket in the
    config, nothing in the environment. The simulator's engine still finds the
    simulator (it used to fail every restore as 'unknown')."""
    site = Site(bindir, simple_rack(ports=1))
    site.env.pop("FLASHRACK_SIM_SOCKET")
    with started(site):
        doc, unit = restore_one(site)
        runs = doc["runs"]
        check(runs[0]["state"] == "done", "restored without $FLASHRACK_SIM_SOCKET: %s / %s"
              % (runs, unit["attempts"]))


def agent(bindir, engine, env=None):
    d = tempfile.mkdtemp(prefix="fr-engine-")
    ini = os.path.join(d, "agent.ini")
    with open(ini, "w") as f:
        f.write("[agent]\nid = A\nwork_dir = %s\n[seams]\ntopology = sim\ndiscovery = sim\n"
                "power = sim\nsim_socket = %s/none.sock\n[engine]\npath = %s\n" % (d, d, engine))
    return subprocess.run([os.path.join(bindir, "flashrack-agent"), "-c", ini],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env=env)


def engines_that_cannot_serve_stop_the_agent(bindir):
    for engine, reason in (("/nonexistent/idevicerestore", "cannot run it"),
                           ("idevicerestore-not-installed", "cannot run it"),
                           (os.path.join(FIXTURES, "no-plain-progress"), "has no -P"),
                           (os.path.join(FIXTURES, "not-an-engine"), "printed no version")):
        r = agent(bindir, engine)
        check(r.returncode == 2, "%s: agent exit %d (want 2): %s" % (engine, r.returncode, r.stderr))
        check("[engine] path '%s'" % engine in r.stderr and reason in r.stderr,
              "%s: the error names the setting and the reason: %r" % (engine, r.stderr))


def model_newer_than_the_engine_is_stack_too_old(bindir):
    """Debian's idevicerestore 1.0.0 (libirecovery 1.0.0) stops at iPhone12,8: an
    iPhone13,2 fails as stack_too_old in preflight, and the engine never runs."""
    site = Site(bindir, simple_rack(ports=1, product_types="iPhone13,2"),
                engine="/usr/bin/idevicerestore")
    with started(site):
        doc, unit = restore_one(site)
        check(doc["runs"][0]["state"] == "failed", "run failed: %s" % doc["runs"])
        att = unit["attempts"][0]
        check(att["error_class"] == "stack_too_old", "class: %s" % att)
        text = att["error_text"]
        check("iPhone13,2" in text and "iPhone12,8" in text and "idevicerestore 1.0.0" in text,
              "says what is too old: %s" % att)
        logs = os.path.join(site.dir, "agent-A", "logs")
        check(not os.path.isdir(logs) or not os.listdir(logs),
              "no engine ran (attempt logs: %s)" % (os.listdir(logs) if os.path.isdir(logs) else []))
        check(len(unit["attempts"]) == 1, "never retried: %s" % unit["attempts"])


if __name__ == "__main__":
    main(sim_socket_comes_from_the_agents_config, engines_that_cannot_serve_stop_the_agent,
         model_newer_than_the_engine_is_stack_too_old)

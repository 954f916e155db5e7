"""Bad input gets a clear error and loses nothing: malformed configs and rack
files stop a process before it touches state; hostile messages are dropped and
counted; unknown CLI arguments print usage."""
import os
import subprocess
import tempfile

import zmq

from harness import RACK_SMALL, Site, check, curve_client, main, running_site


def run_bin(bindir, *argv, env=None):
    return subprocess.run([os.path.join(bindir, argv[0])] + list(argv[1:]), capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL, env=env)


def malformed_configs_exit_before_state(bindir):
    d = tempfile.mkdtemp(prefix="fr-bad-")
    ini = os.path.join(d, "controller.ini")
    store = os.path.join(d, "never.db")
    with open(ini, "w") as f:
        f.write("[controller]\nstore = %s\nheartbeat_ms = often\n" % store)
    r = run_bin(bindir, "flashrackd", "-c", ini)
    check(r.returncode == 2, "flashrackd exit %d" % r.returncode)
    check("controller.ini:3" in r.stderr and "heartbeat_ms" in r.stderr,
          "error names file, line and key: %r" % r.stderr)
    check(not os.path.exists(store), "no store created")
    for key, value, named in (("firmware.sources", "ftp://mirror.example/list.json", "[firmware] sources"),
                              ("mirror.listen", "everywhere", "[mirror] listen")):
        r = run_bin(bindir, "flashrackd", "--set", "controller.store=" + store, "--set",
                    "%s=%s" % (key, value))
        check(r.returncode == 2 and named in r.stderr and value in r.stderr,
              "%s: exit %d, %r" % (key, r.returncode, r.stderr))
        check(not os.path.exists(store), "no store created (%s)" % key)

    aini = os.path.join(d, "agent.ini")
    with open(aini, "w") as f:
        f.write("[agent]\nid = A\n[engine]\nwatchdog = 5\n")
    r = run_bin(bindir, "flashrack-agent", "-c", aini)
    check(r.returncode == 2, "agent exit %d" % r.returncode)
    check("agent.ini:4" in r.stderr and "watchdog" in r.stderr, "agent error: %r" % r.stderr)
    with open(aini, "w") as f:
        f.write("[agent]\nid = A\n[seams]\ntopology = usbb\n")
    r = run_bin(bindir, "flashrack-agent", "-c", aini)
    check(r.returncode == 2 and "agent.ini:4: [seams] topology: expected sim or usb, got 'usbb'"
          in r.stderr, "agent enum error names file and line: %r" % r.stderr)
    with open(ini, "w") as f:
        f.write("[controller]\nstore = %s\nheartbeat_ms = 100\nheartbeat_ms = 200\n" % store)
    r = run_bin(bindir, "flashrackd", "-c", ini)
    check(r.returncode == 2 and "controller.ini:4: [controller] heartbeat_ms given twice (first at "
          "line 3)" in r.stderr, "a repeated key is an error: %r" % r.stderr)
    check(not os.path.exists(store), "no store created (repeated key)")

    rack = os.path.join(d, "rack.ini")
    with open(rack, "w") as f:
        f.write("[sim]\nseed = 1\ntime_scale = -3\n")
    r = run_bin(bindir, "flashrack-sim", rack, "--socket", os.path.join(d, "s.sock"))
    check(r.returncode == 2, "sim exit %d" % r.returncode)
    check("rack.ini:3" in r.stderr and "time_scale" in r.stderr, "sim error: %r" % r.stderr)
    check(not os.path.exists(os.path.join(d, "s.sock")), "sim did not listen")


def cli_usage_errors(bindir):
    r = run_bin(bindir, "flashrack", "--frobnicate")
    check(r.returncode == 2 and "usage" in (r.stderr + r.stdout).lower(), "global usage: %r" % r.stderr)
    r = run_bin(bindir, "flashrack", "submit", "--ecid", "not-an-ecid", "--firmware", "x.ipsw")
    check(r.returncode == 2 and "not-an-ecid" in r.stderr, "bad ECID named: %r" % r.stderr)
    r = run_bin(bindir, "flashrack", "status", "--help")
    check(r.returncode == 0 and "status" in r.stdout, "verb help")
    r = run_bin(bindir, "flashrack", "-C", "tcp://127.0.0.1:9", "--timeout", "1", "agents")
    check(r.returncode == 3, "unreachable controller exit %d" % r.returncode)


def hostile_messages_dropped(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
        job = site.submit("--ecid", site.cli_json("units")["units"][0]["ecid"])
        ctx = zmq.Context()
        # an authorized agent key, so that the bytes reach the decoder
        key = site.agent_key("fuzz")
        for ident in (b"A", b"intruder"):
            s = ctx.socket(zmq.DEALER)
            curve_client(s, key, site.env["FLASHRACK_CONTROLLER_KEY"])
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.IDENTITY, ident + b"-x")
            s.connect(site.agents_ep)
            dropped = site.cli_json("agents")["dropped_unknown"]
            s.send(b"\xff\xff\xff\xff\x0f garbage")
            s.send_multipart([b"a", b"b", b"c", b"d", b"e"])
            s.send(b"\x08\x63")  # proto_version 99, no body
            # the three read and dropped before the socket closes (a fixed pause could end
            # it before its handshake on a loaded machine, and nothing would be tried)
            site.wait_for(lambda: site.cli_json("agents")["dropped_unknown"] >= dropped + 3, 30,
                          "the 3 bad messages from %r dropped and counted" % ident)
            s.send(os.urandom(2 * 1024 * 1024))  # over the size cap
            s.close()
        requests = site.log("flashrackd").count("dropped a request")
        c = ctx.socket(zmq.DEALER)
        curve_client(c, site.env["FLASHRACK_KEY"], site.env["FLASHRACK_CONTROLLER_KEY"])
        c.setsockopt(zmq.LINGER, 0)
        c.connect(site.clients_ep)
        c.send(b"not a request")
        site.wait_for(lambda: site.log("flashrackd").count("dropped a request") > requests, 30,
                      "the bad request dropped")
        c.close()
        ctx.term()
        # still alive, still answering, the job still there and finishing
        check(site.procs["flashrackd"].poll() is None, "controller alive")
        doc = site.wait_job_finished(job, 60)
        check(doc["jobs"][0]["state"] == "done", "job unaffected")
        check("drop" in site.log("flashrackd").lower(), "drops logged")


if __name__ == "__main__":
    main(malformed_configs_exit_before_state, cli_usage_errors, hostile_messages_dropped)

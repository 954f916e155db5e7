"""Hostile peers against a site with CURVE on, written with Debian's python3-zmq and
hand-encoded messages (wire.py), not flashrack's code: a peer with no key, one with a
key nobody authorized, an authorized agent key claiming another agent's id, and the
routing-id hijack: a Hello with another agent's key under the agent's bare id, then
under the very routing id the real agent is connected with (read from its log: the
worst case). None is welcomed. Each but the last is counted, in the controller's status
and in /metrics (the keyless one by the ROUTER's socket monitor: libzmq ends a
NULL-against-CURVE handshake before the ZAP handler hears of it); the last is ignored by
libzmq itself (no handover), so the hijacker hears nothing and the real agent's link is
never cut. Its restores go on throughout, each unit restored once by one engine run.
Then the real agent's key is revoked while it is online: it is dropped without a
restart."""
import re
import socket
import time

import zmq

import promparse
import wire
from harness import check, main, running_site, simple_rack
from test_metrics import scrape

RACK = simple_rack(ports=3, seed=5, time_scale=60)


def security(site):
    return site.cli_json("agents")["security"]


def welcomed(msg):
    """True when an Envelope carries a Welcome (the fields before it are varints and
    the agent id, so a scan of the top-level fields is enough)."""
    i = 0
    while i < len(msg):
        tag, i = wire_varint(msg, i)
        kind = tag & 7
        if tag >> 3 == 11:
            return True
        if kind == 0:
            _, i = wire_varint(msg, i)
        elif kind == 1:
            i += 8
        elif kind == 2:
            n, i = wire_varint(msg, i)
            i += n
        else:
            return False
    return False


def wire_varint(b, i):
    n = shift = 0
    while i < len(b):
        n |= (b[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            break
    return n, i


def hijacker(ctx, site, ident, claimed, key, server):
    """A DEALER under routing id `ident` with CURVE keypair `key` that has said Hello as
    `claimed` (nothing is sent when no link comes up: the handshake was refused)."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.IDENTITY, ident)
    if key:
        s.curve_secretkey, s.curve_publickey = key  # (secret, public)
        s.curve_serverkey = server
    s.connect(site.agents_ep)
    try:
        s.send(wire.hello(claimed, 777), zmq.NOBLOCK)
    except zmq.Again:
        pass  # no link at all (the handshake is refused before any pipe exists)
    return s


def heard(s, seconds):
    """The messages s receives within `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if s.poll(100):
            got.append(s.recv())
    return got


def refused(ctx, site, ident, claimed, counter, key=None, server=None):
    """Says Hello as `claimed` under routing id `ident` and keeps the connection open
    until the controller's security count `counter` rises (closing sooner, on a loaded
    machine, could end the connection before its handshake or Hello was read); True
    when no Welcome came meanwhile."""
    n = security(site)[counter]
    s = hijacker(ctx, site, ident, claimed, key, server)
    site.wait_for(lambda: security(site)[counter] > n, 30, "%s counted" % counter)
    got = heard(s, 0.5)
    s.close()
    return not any(welcomed(m) for m in got)


def hijack_of_the_agents_own_routing_id(ctx, site, xkey, server):
    """The worst case: agent X's key under the very routing id A's process is connected
    with. The controller's ROUTER has no handover: the second connection under a routing
    id in use is ignored, so the hijacker hears nothing and the real agent's link goes on
    as it was, never cut and never made to say Hello again."""
    log = site.log("agent-A")
    routes = re.findall(r"as routing id '(A/[0-9a-f]{16})'", log)
    check(len(routes) == 1, "the agent's one routing id, from its log: %s" % routes)
    running = sum(u["running"] for u in site.sim_request({"op": "runs"})["units"].values())
    check(running >= 1, "restores under way at the hijack: %d" % running)
    welcomes, hellos = log.count("welcomed by controller"), log.count("saying hello again")
    s = hijacker(ctx, site, routes[0].encode(), "A", xkey, server)
    got = heard(s, 2.0)
    check(got == [], "the hijacker of A's routing id hears nothing: %d messages" % len(got))
    s.close()
    check(site.procs["flashrackd"].poll() is None, "controller alive after the hijack")
    # a heartbeat period or two for anything the hijack did to reach the agent
    site.wait_for(lambda: [a["state"] for a in site.cli_json("agents")["agents"]
                           if a["id"] == "A"] == ["online"], 10, "A online")
    time.sleep(3 * site.hb_ms / 1000.0)
    log = site.log("agent-A")
    check(log.count("welcomed by controller") == welcomes and
          log.count("saying hello again") == hellos and
          re.findall(r"as routing id '(A/[0-9a-f]{16})'", log) == routes,
          "the real agent's link untouched: same connection, no new Hello")
    check([a["state"] for a in site.cli_json("agents")["agents"] if a["id"] == "A"] == ["online"],
          "A still online")


def hostile_tries_refused_and_counted(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 3, 20, "3 units")
        xkey = site.read_keypair(site.agent_key("X"))  # authorized, for agent X only
        server = site.controller_public()
        job = site.submit("--agent", "A", "--name", "under-attack")
        site.wait_for(lambda: sum(u["running"] for u in site.sim_request({"op": "runs"})["units"].values())
                      >= 1, 30, "restores under way (an engine running)")
        ctx = zmq.Context()
        # First, while the restores surely run (the tries below take a while on a loaded
        # machine, and the restores end in some 15 s whatever the machine does)
        hijack_of_the_agents_own_routing_id(ctx, site, xkey, server)
        # A keyless DEALER (it tries again every 100 ms: each try is counted) often
        # hangs up on the mismatch before the controller has read its greeting: that
        # is counted as a failed handshake, not as one with no key.
        n = security(site)
        s = hijacker(ctx, site, b"A", "A", None, None)
        site.wait_for(lambda: sum(security(site)[k] - n[k] for k in
                                  ("handshakes_no_key", "handshakes_failed")) > 0, 30,
                      "the keyless DEALER's handshake counted")
        check(not any(welcomed(m) for m in heard(s, 0.5)), "no key: no Welcome")
        s.close()
        # A raw ZMTP 3.0 greeting with the NULL mechanism, kept open: no key, always.
        n = security(site)["handshakes_no_key"]
        host, port = site.agents_ep[len("tcp://"):].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") +
                        b"\0" + b"\0" * 31)
            site.wait_for(lambda: security(site)["handshakes_no_key"] > n, 30,
                          "the NULL greeting counted as no key")
        stranger = zmq.curve_keypair()
        check(refused(ctx, site, b"A", "A", "handshakes_refused", (stranger[1], stranger[0]), server),
              "unknown key: no Welcome")
        check(refused(ctx, site, b"X", "A", "agent_messages_refused", xkey, server),
              "X claiming A: no Welcome")
        check(refused(ctx, site, b"A", "A", "agent_messages_refused", xkey, server),
              "X under A's bare id: no Welcome")
        ctx.term()
        sec = security(site)
        metrics = scrape(site)
        for result, field in (("no_key", "handshakes_no_key"), ("refused", "handshakes_refused"),
                              ("ok", "handshakes_ok")):
            got = promparse.value(metrics, "flashrack_handshakes_total", result=result)
            check(got is not None and got >= sec[field] >= 1,
                  "/metrics counts %s handshakes: %s (status %s)" % (result, got, sec[field]))
        check(promparse.value(metrics, "flashrack_messages_refused_total", socket="agents") >=
              sec["agent_messages_refused"] >= 2, "/metrics counts the refused agent messages")

        check(site.procs["flashrackd"].poll() is None, "controller alive")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        for u in site.cli_json("report", str(job))["units"]:
            check(len(u["attempts"]) == 1 and u["attempts"][0]["agent"] == "A" and
                  u["attempts"][0]["outcome"] == "success",
                  "%s: restored once, by A, never interrupted: %s" % (u["ecid"], u["attempts"]))
        for ecid, u in site.sim_request({"op": "runs"})["units"].items():
            check(u["started"] == 1 and u["restored"] == 1 and u["gone"] == 0,
                  "%s: one engine run, restored, none cut off: %s" % (ecid, u))
        check("claiming to be agent 'A'" in site.log("flashrackd"), "the log names the claim")

        # revoked while online: dropped at once, no restart, and refused from then on
        def state():
            return [a["state"] for a in site.cli_json("agents")["agents"] if a["id"] == "A"]
        check(state() == ["online"], "A online before the revocation")
        n = security(site)["agent_messages_refused"]
        site.keys("revoke", "--agent", "A")
        site.wait_for(lambda: state() == ["offline"], 10, "A offline after its key was revoked")
        site.wait_for(lambda: security(site)["agent_messages_refused"] > n, 10,
                      "A's later messages refused")
        time.sleep(1.0)
        check(state() == ["offline"], "and it stays offline")
        check("its key was revoked" in site.log("flashrackd"), "the log says why")
        check(site.procs["agent-A"].poll() is None, "the agent process was not restarted")


if __name__ == "__main__":
    main(hostile_tries_refused_and_counted)

"""Hostile peers against a site with CURVE on, written with Debian's python3-zmq and
hand-encoded messages (wire.py), not flashrack's code: a peer with no key, one with a
key nobody authorized, an authorized agent key claiming another agent's id, and the
routing-id hijack (a Hello under the real agent's routing id with another key). None is
welcomed; each is counted (the keyless one excepted: libzmq ends a NULL-against-CURVE
handshake before the ZAP handler hears of it) while the real agent's restores go on,
each unit restored once.
Then the real agent's key is revoked while it is online: it is dropped without a
restart."""
import time

import zmq

import wire
from harness import check, main, running_site, simple_rack

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


def try_hello(ctx, site, ident, claimed, key=None, server=None):
    """Says Hello as `claimed` under routing id `ident` and listens for 1.5 s; True
    when a Welcome comes. (A hijacker of a routing id may hear what the controller
    sends to that id until the real agent reconnects: ROUTER_HANDOVER hands the route
    to the latest connection. It is never welcomed and nothing it sends is taken.)"""
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
    got_welcome = False
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if s.poll(100):
            got_welcome |= welcomed(s.recv())
    s.close()
    return got_welcome


def hostile_tries_refused_and_counted(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 3, 20, "3 units")
        xkey = site.read_keypair(site.agent_key("X"))  # authorized, for agent X only
        server = site.controller_public()
        job = site.submit("--agent", "A", "--name", "under-attack")
        site.wait_for(lambda: sum(r["state"] in ("restoring", "verifying", "queued_for_bus")
                                  for r in site.job(job).get("runs", [])) >= 1, 30, "restores")
        ctx = zmq.Context()
        before = security(site)

        check(not try_hello(ctx, site, b"A", "A"), "no key: no Welcome")
        stranger = zmq.curve_keypair()
        check(not try_hello(ctx, site, b"A", "A", (stranger[1], stranger[0]), server),
              "unknown key: no Welcome")
        site.wait_for(lambda: security(site)["handshakes_refused"] > before["handshakes_refused"],
                      10, "the unknown key's handshake counted")

        n = security(site)["agent_messages_refused"]
        check(not try_hello(ctx, site, b"X", "A", xkey, server), "X claiming A: no Welcome")
        site.wait_for(lambda: security(site)["agent_messages_refused"] > n, 10, "claim counted")
        n = security(site)["agent_messages_refused"]
        check(not try_hello(ctx, site, b"A", "A", xkey, server), "hijack of A's routing id: no Welcome")
        site.wait_for(lambda: security(site)["agent_messages_refused"] > n, 10, "hijack counted")
        ctx.term()

        check(site.procs["flashrackd"].poll() is None, "controller alive")
        doc = site.wait_job_finished(job, 120)
        check(all(r["state"] == "done" for r in doc["runs"]),
              "every unit done: %s" % [(r["ecid"], r["state"]) for r in doc["runs"]])
        for u in site.cli_json("report", str(job))["units"]:
            check(len(u["attempts"]) == 1 and u["attempts"][0]["agent"] == "A" and
                  u["attempts"][0]["outcome"] == "success",
                  "%s: restored once, by A, never interrupted: %s" % (u["ecid"], u["attempts"]))
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

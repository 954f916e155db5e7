"""Reliable messages are acknowledged when the loop turn that applied them commits, not
at the controller's next periodic heartbeat: an agent re-sends what is unacknowledged
after one heartbeat period, so an ack that waited for the tick made every accept and
port event of a busy site come back as a replay. The controller here heartbeats every
30 s; a peer written with zmq and the .proto only says Hello and reports a unit
plugged in, and must see its port event acknowledged long before that tick."""
import zmq

import wire
from harness import Site, check, main


def a_port_event_is_acked_in_its_own_turn(bindir):
    site = Site(bindir, "", agents=(), curve=False, hb_ms=30000)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    try:
        site.start_controller()
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, b"P")
        s.connect(site.agents_ep)
        session = 77
        s.send(wire.hello("P", session))
        check(s.poll(5000), "no Welcome")
        check(11 in wire.fields(s.recv()), "the reply to Hello is a Welcome")
        s.send(wire.port_attach("P", session, 1, 0x7001, "1-1"))
        acked = 0
        while acked < 1 and s.poll(10000):  # a third of the heartbeat period, at most
            acked = wire.fields(s.recv()).get(5, [0])[-1]
        check(acked == 1, "port event seq 1 not acknowledged within 10 s (ack %d)" % acked)
        units = site.cli_json("units")["units"]
        check([int(u["ecid"], 16) for u in units] == [0x7001], "the unit is stored: %s" % units)
    except Exception:
        site.dump_logs()
        raise
    finally:
        s.close()
        ctx.term()
        site.stop()


if __name__ == "__main__":
    main(a_port_event_is_acked_in_its_own_turn)

"""A JobAssign the agent has not accepted goes again only where it may have been lost,
not on every heartbeat tick. Before, the tick sent every attempt still "assigned" again,
once a tick: a 20,000-unit burst whose accepts waited unread in the controller's queue
got its 20,000 JobAssigns again every second. A peer written with zmq and the .proto only
(heartbeat 100 ms) says Hello, reports a unit, and gets a job for it; it answers the
controller's heartbeats but not the JobAssign. Counted in heartbeat ticks, never times:
- over 40 ticks the JobAssign came again (a dropped one is not lost for good), a few
  times (1, 2, 4, 8, 16 ticks apart), not once a tick;
- after a new Hello (a new link) it comes again within the next ticks, however new;
- once the accept is acknowledged, no copy follows."""
import zmq

import wire
from harness import Site, check, main

HEARTBEAT, ASSIGN = 12, 14
ECID = 0x7001


class Peer:
    """The agent's side: a DEALER that answers each heartbeat with one of its own."""

    def __init__(self, site, ctx, session):
        self.site, self.session = site, session
        self.s = ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.setsockopt(zmq.IDENTITY, b"P")
        self.s.connect(site.agents_ep)

    def send(self, data):
        self.s.send(data)

    def hello(self, session):
        self.session = session
        self.s.send(wire.hello("P", session))
        while True:
            check(self.s.poll(10000), "a Welcome for session %d" % session)
            if 11 in wire.fields(self.s.recv()):
                return

    def ticks(self, n):
        """Reads until n heartbeats came, answering each: [(heartbeats before it, ref,
        ack)] of the JobAssigns and heartbeats among them (ref None for a heartbeat)."""
        seen, beats = [], 0
        while beats < n:
            check(self.s.poll(10000), "the controller's heartbeat (%d of %d)" % (beats, n))
            env = wire.fields(self.s.recv())
            ack = env.get(5, [0])[-1]
            if HEARTBEAT in env:
                beats += 1
                seen.append((beats, None, ack))
                self.s.send(wire.envelope("P", self.session, 0, HEARTBEAT, b""))
            elif ASSIGN in env:
                seen.append((beats, wire.fields(env[ASSIGN][0])[1][0], ack))
        return seen


def assigns(seen):
    return [ref for _, ref, _ in seen if ref is not None]


def an_unaccepted_assign_goes_again_a_few_times(bindir):
    # liveness 100 ticks: the CLI's submit, which the peer does not answer during, is shorter
    site = Site(bindir, "", agents=(), curve=False, hb_ms=100, liveness=100)
    ctx = zmq.Context()
    peer = None
    try:
        site.start_controller()
        peer = Peer(site, ctx, 77)
        peer.hello(77)
        peer.send(wire.port_attach("P", 77, 1, ECID, "1-1"))
        site.submit("--ecid", "0x%x" % ECID)
        first = None
        for _ in range(200):  # the pass's JobAssign, within 200 ticks
            got = assigns(peer.ticks(1))
            if got:
                first = got[0]
                break
        check(first is not None, "the job's JobAssign reached the peer")

        copies = assigns(peer.ticks(40))
        check(all(ref == first for ref in copies), "only that attempt's JobAssign: %s" % copies)
        # 1, 2, 4, 8, 16 ticks apart: 5 in 40 ticks; once a tick would be 40
        check(2 <= len(copies) <= 8,
              "the unaccepted JobAssign went again a few times in 40 ticks, not once a tick: %d"
              % len(copies))

        peer.hello(78)  # a new link: what went to the old one may be lost
        check(first in assigns(peer.ticks(3)), "the JobAssign went again after the new Hello")

        peer.send(wire.envelope("P", 78, 1, wire.JOB_ACCEPT, wire.field_bytes(1, first) +
                                wire.field_varint(2, 1)))
        seen = peer.ticks(40)
        acked = [i for i, (_, _, ack) in enumerate(seen) if ack >= 1]
        check(acked, "the accept was acknowledged")
        after = assigns(seen[acked[0]:])
        check(not after, "no JobAssign after its accept was acknowledged: %d" % len(after))
    except Exception:
        site.dump_logs()
        raise
    finally:
        if peer:
            peer.s.close()
        ctx.term()
        site.stop()


if __name__ == "__main__":
    main(an_unaccepted_assign_goes_again_a_few_times)

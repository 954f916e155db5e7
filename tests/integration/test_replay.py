"""A reliable message the controller has not acknowledged yet is re-sent only where it
may have been lost, and each later copy waits twice as long as the one before. Before,
an agent re-sent every unacknowledged message once a heartbeat: a controller 40 s behind
on reading got some 40 copies of each, and had to read, decrypt and drop all of them
before it could catch up. A fake controller (a ROUTER on 127.0.0.1) welcomes a real agent
with a 100 ms heartbeat, keeps the link alive with heartbeats, and acknowledges nothing
for 4 s: the agent's port events come back a few times each, not about 40 times; once
acknowledged, they stop."""
import time

from harness import check, main, Site, simple_rack
from wire import envelope, fields
from fake_controller import next_hello, router_for, welcome

EPOCH = 7


def copies_until(router, until, ack):
    """Reliable messages read until `until` (monotonic), heartbeating every 100 ms with
    `ack`: {seq: copies}."""
    copies, ident, next_hb = {}, None, 0
    while time.monotonic() < until:
        if router.poll(20):
            ident, data = router.recv_multipart()
            env = fields(data)
            seq = env.get(4, [0])[0]
            if seq:
                copies[seq] = copies.get(seq, 0) + 1
        if ident is not None and time.monotonic() >= next_hb:
            router.send_multipart([ident, envelope("", EPOCH, 0, 12, b"", ack=ack)])
            next_hb = time.monotonic() + 0.1
    return copies


def unacknowledged_messages_back_off(bindir):
    site = Site(bindir, simple_rack(hosts=("U",), ports=3), agents=(), curve=False)
    with router_for(site) as router:
        site.start_sim()
        site.start_agent("U")
        ident, env, hello = next_hello(router, 20)
        while len(hello.get(4, [])) != 3:
            ident, env, hello = next_hello(router)
        # liveness 100: the agent does not give up on us within the test
        router.send_multipart([ident, welcome(env[3][0], hello.get(7, [0])[0], EPOCH, hb_ms=100)])
        copies = copies_until(router, time.monotonic() + 4.0, 0)
        check(copies, "the agent sent reliable messages (its port events)")
        # 100 ms between the first two copies, then 200, 400, 800, 1600: 6 in 4 s at
        # most; one copy a heartbeat would be about 40
        check(all(2 <= n <= 8 for n in copies.values()),
              "each unacknowledged message went again, a few times, not once a heartbeat: %s"
              % copies)
        top = max(copies)
        copies_until(router, time.monotonic() + 0.5, top)  # the ack reaches the agent
        after = copies_until(router, time.monotonic() + 2.0, top)
        check(not any(s <= top for s in after), "acknowledged messages stop: %s" % after)


if __name__ == "__main__":
    main(unacknowledged_messages_back_off)

"""A reliable message the controller has not acknowledged yet is re-sent only where it
may have been lost, and each later copy waits twice as long as the one before. Before,
an agent re-sent every unacknowledged message once a heartbeat: a controller 40 s behind
on reading got some 40 copies of each, and had to read, decrypt and drop all of them
before it could catch up. A fake controller (a ROUTER on 127.0.0.1) welcomes a real agent
with a 100 ms heartbeat, keeps the link alive with heartbeats, and acknowledges nothing
for 4 s: the agent's port events come back a few times each, not about 40 times; once
acknowledged, they stop."""
import math
import time

from harness import check, main, Site, simple_rack
from wire import envelope, fields
from fake_controller import next_hello, router_for, welcome

EPOCH = 7


def copies_until(router, until, ack, enough=None):
    """Reliable messages read until `until` (monotonic), heartbeating every 100 ms with
    `ack`: {seq: copies}. With `enough` (a limit, monotonic), reading goes on past `until`
    while a message has come only once, up to that limit."""
    copies, ident, next_hb = {}, None, 0
    while time.monotonic() < until or (enough and time.monotonic() < enough and
                                       (not copies or min(copies.values()) < 2)):
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
        began = time.monotonic()
        # 4 s, or longer until each message came twice: a loaded machine may hold the
        # agent's second copy back, never send a copy early
        copies = copies_until(router, began + 4.0, 0, enough=began + 60)
        window = time.monotonic() - began
        check(copies, "the agent sent reliable messages (its port events)")
        # 100 ms between the first two copies, then 200, 400, 800, 1600: 6 in 4 s at
        # most, each window's doubling one more; one copy a heartbeat would be 40 in 4 s
        most = 3 + int(math.log2(window / 0.1))
        check(all(2 <= n <= most for n in copies.values()),
              "each unacknowledged message went again, a few times, not once a heartbeat: %s "
              "in %.1f s (at most %d each)" % (copies, window, most))
        top = max(copies)
        copies_until(router, time.monotonic() + 0.5, top)  # the ack reaches the agent
        after = copies_until(router, time.monotonic() + 2.0, top)
        check(not any(s <= top for s in after), "acknowledged messages stop: %s" % after)


if __name__ == "__main__":
    main(unacknowledged_messages_back_off)

"""A fake controller's side of the handshake, for tests that put a ROUTER of their own
where flashrackd would be: the agent's next message or Hello, and a Welcome."""
import contextlib
import time

import zmq

from harness import free_port
from wire import field_bytes, field_varint, fields

HELLO, WELCOME, HEARTBEAT = 10, 11, 12


@contextlib.contextmanager
def router_for(site):
    """A ROUTER on 127.0.0.1 where the site's agents look for their controller; on the
    way out the site is stopped (its logs dumped if the test failed) and the ROUTER
    closed."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("tcp://127.0.0.1:%d" % free_port())
    site.agents_ep = router.getsockopt_string(zmq.LAST_ENDPOINT)
    try:
        yield router
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()
        router.close()
        ctx.term()


def next_message(router, limit_s=10):
    """(routing id, envelope fields) of the agent's next message."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if router.poll(100):
            ident, data = router.recv_multipart()
            return ident, fields(data)
    raise AssertionError("the agent sent nothing within %ss" % limit_s)


def next_hello(router, limit_s=10):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ident, env = next_message(router, deadline - time.monotonic())
        if HELLO in env:
            return ident, env, fields(env[HELLO][0])
    raise AssertionError("no Hello within %ss" % limit_s)


def welcome(session, generation, epoch=7, hb_ms=200, liveness=100):
    """A Welcome answering the Hello of agent session `session` at port generation
    `generation`."""
    body = (field_varint(1, epoch) + field_varint(2, hb_ms) + field_varint(3, liveness) +
            field_varint(6, session) + field_varint(7, generation))
    return field_varint(1, 1) + field_varint(3, epoch) + field_bytes(WELCOME, body)

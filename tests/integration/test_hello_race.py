"""Ports the agent learns between sending a Hello and getting its Welcome reach the
controller: a Welcome that answers a Hello of an older port list (Welcome's
hello_generation) makes the agent say Hello again with its ports. A fake controller
(a ROUTER on 127.0.0.1) takes the Hello the agent sends before the simulator is up
(no ports), starts the simulator, and once a Hello with the ports has come answers
that first Hello, as a busy controller would, so the Welcome is stale every time."""

from fake_controller import HEARTBEAT, HELLO, next_hello, next_message, router_for, welcome
from harness import check, main, Site, simple_rack
from wire import fields


def welcome_for_an_older_port_list(bindir):
    site = Site(bindir, simple_rack(hosts=("U",), ports=3), agents=(), curve=False)
    with router_for(site) as router:
        site.start_agent("U")  # the simulator is not up: no ports yet
        ident, env, first = next_hello(router)
        check(first.get(4, []) == [] and first.get(7, [0]) == [0],
              "the first Hello: no ports, generation 0: %s" % first)
        site.start_sim()
        # its next Hello has the ports; this controller is busy and answers the first one
        # only now, at once (the agent says Hello once a second until welcomed)
        _, _, later = next_hello(router, 20)
        while len(later.get(4, [])) != 3:
            _, _, later = next_hello(router)
        gen = later.get(7, [0])[0]
        check(gen >= 1, "the Hello with the ports has a new generation: %s" % later)
        router.send_multipart([ident, welcome(env[3][0], 0)])
        # taking that Welcome would leave the controller with no ports: the agent's link is
        # up (heartbeats) with the controller none the wiser. It must say Hello again first.
        _, msg = next_message(router)
        check(HEARTBEAT not in msg, "the agent took a Welcome for its portless Hello")
        check(HELLO in msg and len(fields(msg[HELLO][0]).get(4, [])) == 3,
              "a Hello with the ports after the stale Welcome: %s" % msg)
        check("the ports changed since the hello this welcome answers (generation 0, now %d)" % gen
              in site.log("agent-U"), "the agent says why")
        # the Welcome for that one is current: taken, the link is up
        router.send_multipart([ident, welcome(env[3][0], gen)])
        msg = {}
        while HEARTBEAT not in msg:  # the port events it kept come first
            _, msg = next_message(router)
            check(HELLO not in msg, "a Hello after a current Welcome")
        log = site.log("agent-U")
        check(log.count("the ports changed since the hello") == 1, "one stale Welcome: %s" % log)


if __name__ == "__main__":
    main(welcome_for_an_older_port_list)

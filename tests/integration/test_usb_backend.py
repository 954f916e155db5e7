"""The agent's usb backend on this machine, which has no USB subsystem: with
[seams] host_root naming a sysfs tree written in the kernel's layout it reads
that tree (libusb and libirecovery start for real and see no devices), and the
controller lists the rack ports it found; with a host root that has no USB it
says so, stays online and lists no ports."""
import os
import tempfile

from harness import Site, check, main, simple_rack

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sysfs")


def usb_agent_ini(site, aid, host_root, rack_map=""):
    path = site.agent_ini(aid)
    with open(path) as f:
        text = f.read()
    text = text.replace("topology = sim\ndiscovery = sim\npower = sim\n",
                        "topology = usb\ndiscovery = usb\npower = usb\nhost_root = %s\n"
                        "rack_map = %s\n" % (host_root, rack_map))
    with open(path, "w") as f:
        f.write(text)
    return path


def start_usb_agent(site, aid, host_root, rack_map=""):
    site._spawn("agent-" + aid, [os.path.join(site.bin, "flashrack-agent"), "-c",
                                 usb_agent_ini(site, aid, host_root, rack_map)])


def agent_ports(site, aid):
    return {p["path"]: p for p in site.cli_json("ports").get("ports", []) if p["agent"] == aid}


def ports_from_a_recorded_tree(bindir):
    site = Site(bindir, simple_rack(hosts=("A",), ports=1), agents=())
    try:
        site.start_sim()
        site.start_controller()
        rack_map = os.path.join(site.dir, "rack-map.ini")
        with open(rack_map, "w") as f:
            f.write("[ports]\nA-07 = 1-1.4.3 2-1.4.3\nA-01 = 2-1.1\n"
                    "[hubs]\nfront = 1-1 2-1\nfront-chain = 1-1.4 2-1.4\n")
        start_usb_agent(site, "U", os.path.abspath(os.path.join(FIXTURES, "usb3pair")), rack_map)
        site.wait_for(lambda: len(agent_ports(site, "U")) == 8, 20, "the usb agent's 8 ports")
        ports = agent_ports(site, "U")
        # the 7-port USB 3 hub (two chips, chained on port 4) and the free root port; each
        # named by its USB 2 half, never the internal chain port or a USB 3 half
        check(sorted(ports) == ["1-1.1", "1-1.2", "1-1.3", "1-1.4.1", "1-1.4.2", "1-1.4.3",
                                "1-1.4.4", "1-2"], "ports: %s" % sorted(ports))
        p = ports["1-1.4.3"]
        check(p["hub"] == "front-chain" and p["bus"] == 1 and p["depth"] == 3 and p["label"] == "A-07",
              "port 1-1.4.3: %s" % p)
        # labelled through its USB 3 half; a port the map does not name keeps its path
        check(ports["1-1.1"]["label"] == "A-01" and ports["1-1.1"]["hub"] == "front",
              "port 1-1.1: %s" % ports["1-1.1"])
        check(ports["1-1.2"]["label"] == "1-1.2", "port 1-1.2: %s" % ports["1-1.2"])
        check(ports["1-2"]["depth"] == 1, "root port depth: %s" % ports["1-2"])
        # there is no hub to ask for its descriptor here: switching is unknown, so no port
        # claims it can be power-cycled
        check(all(not q["power_switch"] for q in ports.values()), "power_switch: %s" % ports)
        log = site.log("agent-U")
        check("8 ports on this host" in log, "agent log: %s" % log[-2000:])
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()


def no_usb_is_a_clear_state(bindir):
    site = Site(bindir, simple_rack(hosts=("A",), ports=1), agents=())
    try:
        site.start_sim()
        site.start_controller()
        empty = tempfile.mkdtemp(prefix="fr-nousb-")
        start_usb_agent(site, "U", empty)
        site.wait_for(lambda: site.online_agents() >= 1, 20, "the usb agent online")
        site.wait_for(lambda: "no USB subsystem" in site.log("agent-U"), 10, "the agent saying so")
        log = site.log("agent-U")
        check("no USB subsystem: cannot open '%s/sys/bus/usb/devices'" % empty in log,
              "agent log: %s" % log[-2000:])
        check(agent_ports(site, "U") == {}, "no ports")
        check(site.procs["agent-U"].poll() is None, "the agent keeps running")
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()


if __name__ == "__main__":
    main(ports_from_a_recorded_tree, no_usb_is_a_clear_state)

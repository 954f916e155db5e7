"""A DFU unit the agent's user may not open (no udev rule: its device node is not
read-write for the agent) reaches the controller as needing an operator, with the
reason naming the rule and the group: `flashrack units` and `flashrack ports` show
it, in JSON too, and no attempt is assigned to it. The agent runs with the usb
seams on a recorded sysfs tree whose device nodes are recorded with it."""
import contextlib
import os
import shutil
import stat
import tempfile

from harness import Site, check, main, simple_rack, tended
from test_usb_backend import FIXTURES, start_usb_agent

ECID = "0x001A2B3C4D5E6F71"  # the DFU unit on port 1-1.4.2.3 of the nested tree (bus 1, device 6)


def tree_with_node(mode):
    root = os.path.join(tempfile.mkdtemp(prefix="fr-denied-"), "host")
    shutil.copytree(os.path.join(FIXTURES, "nested"), root)
    node = os.path.join(root, "dev", "bus", "usb", "001", "006")
    os.makedirs(os.path.dirname(node))
    open(node, "w").close()
    os.chmod(node, mode)
    return root


@contextlib.contextmanager
def usb_agent_on(bindir, node_mode):
    """A controller and a usb agent 'U' on the nested tree, whose DFU unit's device node has
    node_mode."""
    root = tree_with_node(node_mode)
    try:
        with tended(Site(bindir, simple_rack(hosts=("A",), ports=1), agents=())) as site:
            site.start_sim()
            site.start_controller()
            start_usb_agent(site, "U", root)
            yield site
    finally:
        shutil.rmtree(os.path.dirname(root), ignore_errors=True)


def unit(site, ecid):
    return next((u for u in site.cli_json("units")["units"] if u["ecid"] == ecid), None)


def denied_unit_needs_an_operator(bindir):
    # readable by all, writable by none: libusb's read-write open is refused
    with usb_agent_on(bindir, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH) as site:
        site.wait_for(lambda: unit(site, ECID) is not None, 20, "the DFU unit at the controller")
        u = unit(site, ECID)
        check(u["state"] == "needs_operator" and u["mode"] == "dfu" and u["port"] == "1-1.4.2.3"
              and u["agent"] == "U", "unit: %s" % u)
        check("deploy/udev/60-flashrack.rules" in u["reason"] and "group flashrack" in u["reason"]
              and "permission denied" in u["reason"], "reason: %s" % u["reason"])
        port = next(p for p in site.cli_json("ports")["ports"] if p["path"] == "1-1.4.2.3")
        check(port["state"] == "needs_operator" and port["reason"] == u["reason"]
              and port["ecid"] == ECID, "port: %s" % port)
        table = site.cli("units").stdout
        line = next(l for l in table.splitlines() if l.startswith(ECID))
        check("needs_operator" in line and "60-flashrack.rules" in line, "units table: %s" % table)
        check("needs_operator" in site.cli("ports").stdout, "ports table")
        check("needs an operator" in site.log("agent-U"), "the agent says so")


def openable_unit_has_no_reason(bindir):
    """The same tree with the rule applied (the node read-write for its group): nothing is
    reported by the agent's own check (libirecovery reports such units on a real host)."""
    with usb_agent_on(bindir, 0o666) as site:
        site.wait_for(lambda: "10 ports on this host" in site.log("agent-U"), 20, "the agent's ports")
        check(unit(site, ECID) is None, "no unit reported by the permission check")
        check("needs an operator" not in site.log("agent-U"), "nothing said")


if __name__ == "__main__":
    main(denied_unit_needs_an_operator, openable_unit_has_no_reason)

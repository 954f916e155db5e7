"""flashrack-agent doctor against prepared host roots (a sysfs tree in the kernel's
layout, the udev rule present or missing, group flashrack, device nodes), the
simulator's usbmuxd socket and HTTP servers on 127.0.0.1, and on this machine as
it is. Every network check points at loopback."""
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading

from harness import Site, check, main

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "sysfs")
RULE = os.path.join(HERE, "..", "..", "deploy", "udev", "60-flashrack.rules")

RACK = """
[sim]
seed = 4
time_scale = 200

[host A]
label_prefix = A-
fill = yes
mode = normal
product_types = iPhone12,1

[hub A.1]
host = A
bus = 1
depth = 1
ports = 2
"""


class Answering:
    """An HTTP server on 127.0.0.1 that answers anything with 200."""

    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.send_response(200)
                self.end_headers()
            do_GET = do_HEAD

            def log_message(self, *a):
                pass
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/" % self.srv.server_address[1]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def host_root(rule=True, group=True, node_mode=0o660):
    """The nested tree (a DFU unit on 1-1.4.2.3, bus 1 device 6) with /etc and /dev."""
    root = tempfile.mkdtemp(prefix="fr-doctor-")
    shutil.copytree(os.path.join(FIXTURES, "nested", "sys"), os.path.join(root, "sys"), symlinks=True)
    os.makedirs(os.path.join(root, "etc", "udev", "rules.d"))
    if rule:
        shutil.copy(RULE, os.path.join(root, "etc", "udev", "rules.d"))
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")
        if group:  # the group of the files this test creates
            f.write("flashrack:x:%d:agent\n" % os.getgid())
    node = os.path.join(root, "dev", "bus", "usb", "001", "006")
    os.makedirs(os.path.dirname(node))
    open(node, "w").close()
    os.chmod(node, node_mode)
    return root


def doctor(bindir, root, *extra, muxd="/nonexistent/usbmuxd", json_out=True, signing=None,
           engine=None):
    env = dict(os.environ, USBMUXD_SOCKET_ADDRESS="UNIX:" + muxd)
    argv = [os.path.join(bindir, "flashrack-agent"), "doctor",
            "--signing-url", signing or "http://127.0.0.1:9/",
            "--set", "seams.host_root=" + root,
            "--set", "engine.path=" + (engine or os.path.join(bindir, "flashrack-sim-restore")),
            "--set", "agent.work_dir=" + os.path.join(root, "work"),
            "--set", "agent.cache_gb=1"] + list(extra)
    if json_out:
        argv += ["-o", "json"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    if not json_out:
        return r.returncode, r.stdout
    doc = json.loads(r.stdout)
    return r.returncode, {c["name"]: c for c in doc["checks"]}, doc


def prepared_host(bindir):
    site = Site(bindir, RACK, agents=(), usbmuxd=True)
    web = Answering()
    try:
        site.start_sim()
        site.wait_for(lambda: os.path.exists(site.muxd_sock), 10, "the simulator's usbmuxd")
        root = host_root()
        rc, c, doc = doctor(bindir, root, "--set", "agent.bus_limit=4", "--set",
                            "agent.mirror=" + web.url, muxd=site.muxd_sock, signing=web.url)
        check(c["usb"]["status"] == "ok" and "4 hubs, 10 rack ports" in c["usb"]["found"], c["usb"])
        check(c["depth"]["status"] == "warn" and "7 rack ports at hub depth 3 or more (e.g. 1-1.4.1)"
              in c["depth"]["found"] and c["depth"]["fix"], c["depth"])
        check(c["buses"]["status"] == "warn" and "bus 1: 10 ports" in c["buses"]["found"], c["buses"])
        check(c["udev"]["status"] == "ok" and "/etc/udev/rules.d/60-flashrack.rules" in c["udev"]["found"],
              c["udev"])
        check(c["group"]["status"] == "ok", c["group"])
        check(c["nodes"]["status"] == "ok" and "1 DFU/recovery units present" in c["nodes"]["found"],
              c["nodes"])
        check(c["usbmuxd"]["status"] == "ok" and "answers: 2 devices" in c["usbmuxd"]["found"],
              c["usbmuxd"])
        check(c["engine"]["status"] == "ok" and "flashrack-sim-restore" in c["engine"]["found"], c["engine"])
        check(c["mirror"]["status"] == "ok" and c["signing"]["status"] == "ok", (c["mirror"], c["signing"]))
        # warnings pass; a disk too full for one IPSW would be the only failure here
        failed = [n for n, x in c.items() if x["status"] == "fail"]
        check(failed in ([], ["disk"]), "failed: %s" % failed)
        check(rc == (1 if failed else 0) and doc["ok"] == (not failed), "exit %d, ok %s" % (rc, doc["ok"]))
        rc, text = doctor(bindir, root, muxd=site.muxd_sock, signing=web.url, json_out=False)
        check("warn  depth" in text and "fix: plug hubs into root ports" in text, text)
    except BaseException:
        site.dump_logs()
        raise
    finally:
        web.close()
        site.stop()


def missing_rule_group_and_node_access(bindir):
    rc, c, _ = doctor(bindir, host_root(rule=False, group=False))
    check(rc == 1, "exit %d" % rc)
    check(c["udev"]["status"] == "fail" and "install -m 644 deploy/udev/60-flashrack.rules" in c["udev"]["fix"],
          c["udev"])
    check(c["group"]["status"] == "fail" and "groupadd --system flashrack" in c["group"]["fix"], c["group"])
    check(c["usbmuxd"]["status"] == "warn" and "no usbmuxd at '/nonexistent/usbmuxd'" in c["usbmuxd"]["found"],
          c["usbmuxd"])
    check(c["signing"]["status"] == "fail" and "cannot reach 'http://127.0.0.1:9/'" in c["signing"]["found"],
          c["signing"])
    rc, c, _ = doctor(bindir, host_root(node_mode=0o600))
    check(c["nodes"]["status"] == "fail" and "1 of 1 DFU/recovery units are not read-write for group "
          "flashrack, e.g. /dev/bus/usb/001/006 (port 1-1.4.2.3, 05ac:1227)" in c["nodes"]["found"],
          c["nodes"])
    rc, c, _ = doctor(bindir, host_root(), engine="/nonexistent/idevicerestore")
    check(c["engine"]["status"] == "fail" and "/nonexistent/idevicerestore" in c["engine"]["found"],
          c["engine"])


def this_machine_as_it_is(bindir):
    rc, c, _ = doctor(bindir, "")
    if os.path.isdir("/sys/bus/usb/devices"):
        check("no USB subsystem" not in c["usb"]["found"], c["usb"])
    else:
        check(c["usb"]["status"] == "fail" and "no USB subsystem: cannot open '/sys/bus/usb/devices'"
              in c["usb"]["found"], c["usb"])
        check(rc == 1, "no USB is a failure: exit %d" % rc)


if __name__ == "__main__":
    main(prepared_host, missing_rule_group_and_node_access, this_machine_as_it_is)

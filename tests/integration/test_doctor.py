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
           engine=None, address=None):
    env = dict(os.environ, USBMUXD_SOCKET_ADDRESS=address or "UNIX:" + muxd)
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


# one model Debian's libirecovery 1.0.0 knows, one it does not (the iPhone 13, iPhone14,5)
MODELS_RACK = """
[sim]
seed = 6
time_scale = 200

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 2

[unit 0x000356E221749A2B]
at = A-01
product_type = iPhone12,1
mode = normal

[unit 0x0000A1B2C3D4E5F6]
at = A-02
product_type = iPhone14,5
mode = normal
"""
KNOWN_ONLY_RACK = MODELS_RACK.split("[unit 0x0000A1B2C3D4E5F6]")[0]
DEBIAN_ENGINE = "/usr/bin/idevicerestore"  # 1.0.0, with libirecovery 1.0.0 (deploy/install-deps.sh)


def with_dfu_serial(root, serial):
    """The fake root's DFU unit (1-1.4.2.3) with another USB serial string."""
    with open(os.path.join(root, "sys", "bus", "usb", "devices", "1-1.4.2.3", "serial"), "w") as f:
        f.write(serial + "\n")
    return root


def models_against_the_engine(bindir):
    """The units present (DFU by CPID/BDID from sysfs, normal mode by lockdownd's ProductType
    over the simulator's usbmuxd) against the models Debian's idevicerestore 1.0.0 knows."""
    site = Site(bindir, MODELS_RACK, agents=(), usbmuxd=True)
    try:
        site.start_sim()
        rc, c, _ = doctor(bindir, host_root(), muxd=site.muxd_sock, engine=DEBIAN_ENGINE)
        m = c["models"]
        check(m["status"] == "fail" and rc == 1, m)
        check("1 of 3 units present are models 'idevicerestore 1.0.0' does not know (its "
              "libirecovery stops at iPhone12,8): iPhone14,5 (UDID 00008110-0000A1B2C3D4E5F6)"
              in m["found"], m["found"])
        check("iPhone12,1" not in m["found"] and "1-1.4.2.3" not in m["found"], "known units not named")
        check("docs/UPSTREAM-STACK.md" in m["fix"] and "[engine] path" in m["fix"], m["fix"])
        # the simulator's engine loads no libirecovery: no limit to compare with
        rc, c, _ = doctor(bindir, host_root(), muxd=site.muxd_sock)
        check(c["models"]["status"] == "ok" and "3 units present; 'flashrack-sim-restore" in
              c["models"]["found"] and "has no known model limit" in c["models"]["found"], c["models"])
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()
    site = Site(bindir, KNOWN_ONLY_RACK, agents=(), usbmuxd=True)
    try:
        site.start_sim()
        rc, c, _ = doctor(bindir, host_root(), muxd=site.muxd_sock, engine=DEBIAN_ENGINE)
        check(c["models"]["status"] == "ok" and "2 units present, all models 'idevicerestore "
              "1.0.0' knows" in c["models"]["found"], c["models"])
    finally:
        site.stop()
    # a DFU unit is known by its chip and board only: CPID 0x8110 BDID 0x0A is an iPhone 13
    root = with_dfu_serial(host_root(), "CPID:8110 CPRV:11 CPFM:03 SCEP:01 BDID:0A "
                           "ECID:001A2B3C4D5E6F71 IBFL:3C SRTG:[iBoot-7429.0.0.0.1]")
    rc, c, _ = doctor(bindir, root, engine=DEBIAN_ENGINE)
    check(c["models"]["status"] == "fail" and "1 of 1 units present" in c["models"]["found"] and
          "ECID 0x001A2B3C4D5E6F71 on 1-1.4.2.3 (CPID 0x8110, BDID 0x0A)" in c["models"]["found"],
          c["models"])


def usbmuxd_over_tcp(bindir):
    """USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT is asked over TCP; an address libusbmuxd could
    not read is a failed check naming it."""
    site = Site(bindir, KNOWN_ONLY_RACK, agents=(), usbmuxd="tcp")
    try:
        site.start_sim()
        rc, c, _ = doctor(bindir, host_root(), address=site.muxd_tcp)
        check(c["usbmuxd"]["status"] == "ok" and "'%s' answers: 1 devices" % site.muxd_tcp
              in c["usbmuxd"]["found"], c["usbmuxd"])
        check(c["models"]["status"] == "ok" and "2 units present" in c["models"]["found"], c["models"])
    finally:
        site.stop()
    rc, c, _ = doctor(bindir, host_root(), address="localhost")
    check(c["usbmuxd"]["status"] == "fail" and "USBMUXD_SOCKET_ADDRESS 'localhost': no :PORT"
          in c["usbmuxd"]["found"] and "HOST:PORT" in c["usbmuxd"]["fix"], c["usbmuxd"])


def this_machine_as_it_is(bindir):
    rc, c, _ = doctor(bindir, "")
    if os.path.isdir("/sys/bus/usb/devices"):
        check("no USB subsystem" not in c["usb"]["found"], c["usb"])
    else:
        check(c["usb"]["status"] == "fail" and "no USB subsystem: cannot open '/sys/bus/usb/devices'"
              in c["usb"]["found"], c["usb"])
        check(rc == 1, "no USB is a failure: exit %d" % rc)


if __name__ == "__main__":
    main(prepared_host, missing_rule_group_and_node_access, models_against_the_engine,
         usbmuxd_over_tcp, this_machine_as_it_is)

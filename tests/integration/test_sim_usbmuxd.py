"""The simulator's usbmuxd speaks the real protocol: Debian's stock libimobiledevice
tools (idevice_id, ideviceinfo, ideviceenterrecovery), pointed at it with
USBMUXD_SOCKET_ADDRESS, answer about simulated units; hostile clients get a clear
answer or are cut off, and the simulator goes on serving."""
import json
import os
import plistlib
import socket
import struct
import subprocess

from harness import Site, check, free_port, main, tended

RACK = """
[sim]
seed = 5
time_scale = 50

[host A]
fill = no

[hub A.1]
host = A
bus = 1
ports = 4

; iOS 17.5, not paired with this host: lockdown refuses EnterRecovery
[unit 0x000356E221749A2B]
at = A-01
product_type = iPhone12,1
mode = normal

; an iPhone X (A11): a 40-hex UDID
[unit 0x00001234ABCD0001]
at = A-02
product_type = iPhone10,3
mode = normal
ios = 16.7

; iOS 14.4: EnterRecovery works without pairing
[unit 0x000A1B2C3D4E5F60]
at = A-03
product_type = iPhone13,2
mode = normal
ios = 14.4

; recovery mode is libirecovery's: never on usbmuxd
[unit 0x0000000000C0FFEE]
at = A-04
product_type = iPhone12,8
mode = recovery
"""

UNPAIRED = "00008030-000356E221749A2B"
OLD_IOS = "00008101-000A1B2C3D4E5F60"


def tool(site, *argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=20, env=site.env,
                          stdin=subprocess.DEVNULL)


def listed(site):
    r = tool(site, "idevice_id", "-l")
    check(r.returncode == 0, "idevice_id -l: exit %d: %s" % (r.returncode, r.stderr))
    return sorted(r.stdout.split())


class SimFeed:
    """The simulator's own feed, as the agent's sim seams read it."""

    def __init__(self, site, host):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(site.sim_sock)
        self.s.sendall((json.dumps({"op": "hello", "host": host}) + "\n").encode())
        self.f = self.s.makefile()

    def wait(self, pred, what, limit=200):
        for _ in range(limit):
            m = json.loads(self.f.readline())
            if pred(m):
                return m
        raise AssertionError("feed never said " + what)

    def close(self):
        self.s.close()


def stock_tools_read_simulated_units(bindir):
    site = Site(bindir, RACK, usbmuxd=True)
    with tended(site):
        site.start_sim()
        ids = listed(site)
        check(len(ids) == 3, "three units in normal mode, the recovery one not: %s" % ids)
        check(UNPAIRED in ids and OLD_IOS in ids, "A12+ UDIDs are CPID-ECID: %s" % ids)
        old = [u for u in ids if len(u) == 40]
        check(len(old) == 1 and all(c in "0123456789abcdef" for c in old[0]),
              "the iPhone X has a 40-hex UDID: %s" % ids)
        for udid, model in ((UNPAIRED, "iPhone12,1"), (old[0], "iPhone10,3"), (OLD_IOS, "iPhone13,2")):
            r = tool(site, "ideviceinfo", "-u", udid, "-s", "-k", "ProductType")
            check(r.returncode == 0 and r.stdout.strip() == model,
                  "ideviceinfo %s: %r %r" % (udid, r.stdout, r.stderr))
        r = tool(site, "ideviceinfo", "-u", OLD_IOS, "-s", "-k", "UniqueChipID")
        check(r.stdout.strip() == str(0x000A1B2C3D4E5F60), "ECID in decimal: %r" % r.stdout)
        r = tool(site, "ideviceinfo", "-u", UNPAIRED, "-s")
        for line in ("ProductVersion: 17.5", "BuildVersion: 21F90", "HardwareModel: N104AP",
                     "UniqueDeviceID: " + UNPAIRED):
            check(line in r.stdout, "ideviceinfo -s shows %r: %s" % (line, r.stdout))

        feed = SimFeed(site, "A")
        feed.wait(lambda m: m["op"] == "topology", "topology")
        # an unpaired unit on iOS 17.5 refuses (the 1.3.0 tool prints both lines and exits 0)
        r = tool(site, "ideviceenterrecovery", UNPAIRED)
        check("Failed to enter recovery mode." in r.stdout, "refused: %r" % r.stdout)
        check(UNPAIRED in listed(site), "still in normal mode")
        # iOS 14.4: it leaves usbmuxd and comes back in recovery mode on the same port
        r = tool(site, "ideviceenterrecovery", OLD_IOS)
        check("Failed" not in r.stdout and "successfully switching" in r.stdout, "%r" % r.stdout)
        feed.wait(lambda m: m["op"] == "detach" and m["ecid"] == "0x000A1B2C3D4E5F60", "detach")
        m = feed.wait(lambda m: m["op"] == "attach" and m["ecid"] == "0x000A1B2C3D4E5F60", "attach")
        check(m["mode"] == "recovery" and m["path"] == "1-1.3", "back in recovery on 1-1.3: %s" % m)
        feed.close()
        check(OLD_IOS not in listed(site), "a recovery-mode unit is not on usbmuxd")
        check(site.procs["sim"].poll() is None, "simulator alive")


def stock_tools_over_tcp(bindir):
    """USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT (libusbmuxd 2.0.2 reads HOST:PORT): the same
    usbmuxd on a loopback TCP port, beside the Unix socket; addresses the simulator cannot
    or must not serve are refused at start, naming the address."""
    site = Site(bindir, RACK, usbmuxd="tcp")
    with tended(site):
        site.start_sim()
        check(site.env["USBMUXD_SOCKET_ADDRESS"] == site.muxd_tcp, site.env["USBMUXD_SOCKET_ADDRESS"])
        ids = listed(site)
        check(len(ids) == 3 and UNPAIRED in ids and OLD_IOS in ids, "listed over TCP: %s" % ids)
        r = tool(site, "ideviceinfo", "-u", UNPAIRED, "-s", "-k", "ProductType")
        check(r.returncode == 0 and r.stdout.strip() == "iPhone12,1", "ideviceinfo over TCP: %r %r"
              % (r.stdout, r.stderr))
        env = dict(site.env, USBMUXD_SOCKET_ADDRESS="UNIX:" + site.muxd_sock)
        r = subprocess.run(["idevice_id", "-l"], capture_output=True, text=True, timeout=20, env=env,
                           stdin=subprocess.DEVNULL)
        check(sorted(r.stdout.split()) == ids, "the Unix socket serves the same: %r" % r.stdout)
    sim = [os.path.join(bindir, "flashrack-sim"), site.rack, "--socket", site.sim_sock]
    for addr, want in (("0.0.0.0:%d" % free_port(), "expected a loopback address"),
                       ("127.0.0.1", "no :PORT"), ("127.0.0.1:99999", "not a number from 1 to 65535"),
                       ("UNIX:/tmp/x", "expected HOST:PORT")):
        r = subprocess.run(sim + ["--usbmuxd-tcp", addr], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 1 and "'%s'" % addr in r.stderr and want in r.stderr,
              "refused %s: %d %r" % (addr, r.returncode, r.stderr))


def mux_message(obj, tag=1, version=1, message=8):
    body = plistlib.dumps(obj, fmt=plistlib.FMT_XML)
    return struct.pack("<IIII", 16 + len(body), version, message, tag) + body


def read_message(s):
    head = b""
    while len(head) < 16:
        chunk = s.recv(16 - len(head))
        if not chunk:
            return None
        head += chunk
    length, _, _, tag = struct.unpack("<IIII", head)
    body = b""
    while len(body) < length - 16:
        body += s.recv(length - 16 - len(body))
    return plistlib.loads(body)


def client(site):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(site.muxd_sock)
    return s


def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def hostile_clients_do_not_hurt_the_simulator(bindir):
    site = Site(bindir, RACK, usbmuxd=True)
    with tended(site):
        site.start_sim()
        # answers with the real Result numbers
        for req, number in (({"MessageType": "Frobnicate"}, 1),
                            ({"MessageType": "Connect", "DeviceID": 999, "PortNumber": 0x7ef2}, 2),
                            ({"MessageType": "Connect", "DeviceID": 1, "PortNumber": socket.htons(22)}, 3),
                            ({"MessageType": "ReadPairRecord", "PairRecordID": UNPAIRED}, 2),
                            ({"NoType": 1}, 1)):
            s = client(site)
            s.sendall(mux_message(req))
            m = read_message(s)
            check(m == {"MessageType": "Result", "Number": number}, "%s -> %s" % (req, m))
            s.close()
        s = client(site)
        s.sendall(mux_message({"MessageType": "ListDevices"}, version=0, message=3))
        check(read_message(s)["Number"] == 6, "another protocol version: BadVersion")
        s.close()
        # cut off: garbage, an absurd length, a truncated plist, a plist that is not a dict
        body = plistlib.dumps({"MessageType": "Listen"})[:-20]
        for junk in (b"\x00garbage, not a usbmuxd header at all\xff",
                     struct.pack("<IIII", 0xFFFFFFF0, 1, 8, 1) + b"x" * 64,
                     struct.pack("<IIII", 16 + len(body), 1, 8, 1) + body,
                     mux_message(["not", "a", "dict"])):
            s = client(site)
            s.sendall(junk)
            check(closed(s), "cut off after %r" % junk[:24])
            s.close()
        # inside a lockdown tunnel: a frame of 2 GiB, then garbage
        s = client(site)
        s.sendall(mux_message({"MessageType": "ListDevices"}))
        dev = read_message(s)["DeviceList"][0]["DeviceID"]
        s.close()
        for junk in (struct.pack(">I", 0x7FFFFFFF) + b"x" * 16, struct.pack(">I", 6) + b"\x01junk!"):
            s = client(site)
            s.sendall(mux_message({"MessageType": "Connect", "DeviceID": dev,
                                   "PortNumber": socket.htons(62078)}))
            check(read_message(s)["Number"] == 0, "tunnel open")
            s.sendall(junk)
            check(closed(s), "tunnel cut off after %r" % junk[:8])
            s.close()
        check(site.procs["sim"].poll() is None, "simulator alive")
        check(len(listed(site)) == 3, "still serving")
        log = site.log("sim")
        check("client sent message length 4294967280" in log and "not an XML plist dictionary" in log
              and "lockdown frame of 2147483647 bytes" in log, "each cut-off is logged with its reason")


if __name__ == "__main__":
    main(stock_tools_read_simulated_units, stock_tools_over_tcp,
         hostile_clients_do_not_hurt_the_simulator)

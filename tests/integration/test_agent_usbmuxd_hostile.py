"""A hostile usbmuxd: the agent's libimobiledevice source is pointed at a fake
usbmuxd that answers with garbage, truncated plists, absurd lengths, and a lockdownd
that leaves out keys. Each is a clear line in the agent's log; the agent goes on."""
import os
import plistlib
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import check, main

GOOD_UDID = "00008030-00000000000000AA"
NO_KEYS_UDID = "00008030-00000000000000BB"
GARBAGE_UDID = "00008030-00000000000000CC"
UDIDS = (GOOD_UDID, NO_KEYS_UDID, GARBAGE_UDID)


def message(obj, tag=0):
    body = plistlib.dumps(obj, fmt=plistlib.FMT_XML)
    return struct.pack("<IIII", 16 + len(body), 1, 8, tag) + body


def attached(dev_id, udid):
    return message({"MessageType": "Attached", "DeviceID": dev_id,
                    "Properties": {"ConnectionType": "USB", "DeviceID": dev_id,
                                   "LocationID": 0x10003, "ProductID": 0x12a8,
                                   "SerialNumber": udid}})


def read_exact(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_request(c):
    length, _, _, tag = struct.unpack("<IIII", read_exact(c, 16))
    return plistlib.loads(read_exact(c, length - 16)), tag


def lockdown(c, udid):
    """A lockdownd that answers QueryType, then GetValue without any Value (or garbage)."""
    while True:
        n = struct.unpack(">I", read_exact(c, 4))[0]
        req = plistlib.loads(read_exact(c, n))
        if udid == GARBAGE_UDID:
            c.sendall(struct.pack(">I", 0x7FFFFFF0) + b"not a plist")
            return
        if req.get("Request") == "QueryType":
            ans = {"Request": "QueryType", "Type": "com.apple.mobile.lockdown"}
        elif req.get("Request") == "GetValue" and udid == GOOD_UDID and req.get("Key") == "ProductType":
            ans = {"Request": "GetValue", "Key": "ProductType", "Value": "iPhone12,1"}
        else:
            ans = {"Request": req.get("Request", "")}  # no Value, no Error
        body = plistlib.dumps(ans, fmt=plistlib.FMT_XML)
        c.sendall(struct.pack(">I", len(body)) + body)


class FakeMuxd:
    def __init__(self, path):
        self.path = path
        self.probes = 0
        self.listens = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(16)
        self.stop = False
        self.units_read = threading.Event()  # the agent has said what it made of each unit
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.client, args=(c,), daemon=True).start()

    def client(self, c):
        try:
            req, tag = read_request(c)
            kind = req.get("MessageType")
            if kind == "ListDevices":  # libimobiledevice looking a unit up
                c.sendall(message({"DeviceList": [plistlib.loads(attached(i + 1, u)[16:])
                                                  for i, u in enumerate(UDIDS)]}, tag))
            elif kind == "Listen":
                self.listens += 1
                self.listen(c, tag, self.listens)
            elif kind == "Connect":
                c.sendall(message({"MessageType": "Result", "Number": 0}, tag))
                lockdown(c, UDIDS[req["DeviceID"] - 1])
            else:
                c.sendall(message({"MessageType": "Result", "Number": 1}, tag))
        except (EOFError, OSError, KeyError, IndexError, ValueError):
            pass
        finally:
            c.close()

    def listen(self, c, tag, k):
        """The first Listen gets units and then an absurd length; the next ones garbage,
        a truncated plist and a refusal; after that a plain good answer."""
        if k == 2:
            c.sendall(b"\x13garbage, not a usbmuxd header\xff" * 2)
        elif k == 3:
            c.sendall(message({"MessageType": "Result", "Number": 0}, tag)[:-30])
        elif k == 4:
            c.sendall(message({"MessageType": "Result", "Number": 3}, tag))
        else:
            c.sendall(message({"MessageType": "Result", "Number": 0}, tag))
            if k == 1:
                c.sendall(message({"MessageType": "Attached", "DeviceID": 9}))  # no Properties
                for i, udid in enumerate(UDIDS):
                    c.sendall(attached(i + 1, udid))
                # the units stay attached until the agent has read each (on a busy machine that
                # takes longer than any fixed pause; a unit gone by then is not reported)
                self.units_read.wait(50)
                c.sendall(struct.pack("<IIII", 0x7FFFFFF0, 1, 8, 0) + b"x" * 32)
            else:
                time.sleep(30)
        time.sleep(0.5)

    def close(self):
        self.stop = True
        self.srv.close()


def hostile_usbmuxd_and_lockdownd(bindir):
    d = tempfile.mkdtemp(prefix="fr-muxd-")
    fake = FakeMuxd(os.path.join(d, "usbmuxd.sock"))
    ini = os.path.join(d, "agent.ini")
    with open(ini, "w") as f:
        f.write("[agent]\nid = A\ncontroller = tcp://127.0.0.1:1\nwork_dir = %s\nlog_level = debug\n"
                "[seams]\ntopology = sim\ndiscovery = sim+usbmuxd\npower = sim\nsim_socket = %s/none\n"
                "[engine]\npath = %s\n" % (d, d, os.path.join(bindir, "flashrack-sim-restore")))
    log_path = os.path.join(d, "agent.log")
    env = dict(os.environ, USBMUXD_SOCKET_ADDRESS="UNIX:" + fake.path)
    with open(log_path, "wb") as log:
        p = subprocess.Popen([os.path.join(bindir, "flashrack-agent"), "-c", ini], stdout=log,
                             stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    try:
        def text():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        deadline = time.monotonic() + 120
        addr = "usbmuxd at 'UNIX:%s' " % fake.path
        want = ["usbmuxd sent an Attached without DeviceID or Properties.SerialNumber; ignored",
                "unit '%s': lockdown answered without UniqueChipID (a number); not reported" % GOOD_UDID,
                "unit '%s': lockdown answered without UniqueChipID" % NO_KEYS_UDID,
                "unit '%s': " % GARBAGE_UDID,
                addr + "sent: message length 2147483632 (expected 16 to 1048576 bytes); retrying in 1 s",
                addr + "sent: message length",
                addr + "closed the connection: after 264 bytes of an unfinished message",
                addr + "refused: answered Listen with Result 3; retrying in 8 s"]
        while time.monotonic() < deadline and (not all(w in text() for w in want) or fake.listens < 5):
            check(p.poll() is None, "agent alive: %s" % text()[-3000:])
            if all(w in text() for w in want[:4]):
                fake.units_read.set()
            time.sleep(0.2)
        t = text()
        for w in want:
            check(w in t, "log says %r:\n%s" % (w, t[-5000:]))
        check(fake.listens >= 5, "listened again after each (%d)" % fake.listens)
        check(t.count("listening to usbmuxd at") >= 2, "a good answer after the bad ones is taken")
        check(p.poll() is None, "agent alive")
        p.terminate()
        check(p.wait(timeout=20) == 0, "clean exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        fake.close()


if __name__ == "__main__":
    main(hostile_usbmuxd_and_lockdownd)

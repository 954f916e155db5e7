"""Integration harness: starts real flashrack processes on loopback.

A Site is one simulated rack (flashrack-sim), one controller (flashrackd) with a
real SQLite file, and agents (flashrack-agent), each in a temporary directory,
on free TCP ports of 127.0.0.1. Every wait is bounded; every process is killed
at the end, whatever happened.
"""
import atexit
import contextlib
import fcntl
import json
import os
import plistlib
import signal
import random
import socket
import subprocess
import sys
import tempfile
import time
import zipfile


_ports_given = set()
_port_locks = []  # this process's claims on its ports (fd, path), held until it exits
_swept = False
PORT_LOCKS = (os.environ.get("FLASHRACK_TEST_PORT_LOCKS")
              or os.path.join(tempfile.gettempdir(), "flashrack-test-ports"))


def write_ipsw(path, manifest=True, models=("iPhone12,1",)):
    """A zip shaped like an IPSW (BuildManifest.plist unless manifest is False)."""
    doc = {"ProductVersion": "18.2", "ProductBuildVersion": "22C152",
           "SupportedProductTypes": list(models),
           "BuildIdentities": [{"ApChipID": "0x8020", "ApBoardID": "0x04",
                                "Info": {"DeviceClass": "d10ap", "RestoreBehavior": "Erase",
                                         "Variant": "Customer Erase Install (IPSW)"}}]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        if manifest:
            z.writestr("BuildManifest.plist", plistlib.dumps(doc))
        z.writestr("filler.dmg", os.urandom(4096))
    return path


def _lock(path, create):
    """An fd of path with an exclusive lock on it, or None when another process holds it
    (OSError when path cannot be opened). The lock counts only while path is still the file
    locked: a process done with its port may have removed the file between this open and
    this lock."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, now = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _unlock(fd, path):
    """Removes path while its lock is held, then drops the lock."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)


@atexit.register
def _release_ports():
    while _port_locks:
        _unlock(*_port_locks.pop())


def _sweep_ports():
    """Removes the lock files no process holds: those of test processes killed before their
    exit handlers ran. Once per process, so that the directory stays as small as the claims
    of the tests running now."""
    global _swept
    _swept = True
    with contextlib.suppress(OSError):
        for name in os.listdir(PORT_LOCKS):
            path = os.path.join(PORT_LOCKS, name)
            with contextlib.suppress(OSError):
                fd = _lock(path, create=False) if name.endswith(".lock") else None
                if fd is not None:
                    _unlock(fd, path)


def claim_port(port):
    """True when no other test process on this machine has claimed port: a lock on a file
    per port, which the kernel drops when the process ends (and the file is removed at its
    exit, _release_ports). Between the check that a port is free and the bind of the server
    that takes it, another test running beside this one (ctest -j, or another checkout's
    suite) could pick the same port."""
    path = os.path.join(PORT_LOCKS, "%d.lock" % port)
    try:
        os.makedirs(PORT_LOCKS, exist_ok=True)
        if not _swept:
            _sweep_ports()
        fd = _lock(path, create=True)
    except OSError:  # a directory another user made: the bind check alone, as before
        return True
    if fd is None:
        return False
    _port_locks.append((fd, path))
    return True


def free_port():
    """A loopback port for a server of the site. Taken below Linux's ephemeral range
    (32768-60999): a port the kernel handed out as free there can be the source port of
    someone's outgoing connection by the time the server binds it ("Address already in
    use"). Never the same port twice in one test process, nor one another test process
    claimed (claim_port)."""
    for _ in range(1000):
        port = random.randrange(20000, 32000)
        if port in _ports_given or not claim_port(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise Failure("no free loopback port in 20000-31999")


class Failure(Exception):
    pass


# How long a process of the site may take to come up (its socket, its first answer, the
# agents online) before the test calls it hung. Generous: the suite runs its Debug+ASan
# builds two at a time on a loaded 2-core machine, and a start that is merely slow must
# not fail; a failing start fails at this bound just the same.
START_LIMIT_S = 60


def check(cond, what):
    if not cond:
        raise Failure(what)


class Site:
    def __init__(self, bindir, rack_text, agents=("A",), hb_ms=200, liveness=3,
                 watchdog_s=20, operator=False, controller_sets=(), bus_limit=10,
                 cli_timeout=10, slots=48, engine=None, usbmuxd=False, discovery="sim",
                 curve=True, verify_wait_s=None):
        self.bin = bindir
        self.dir = tempfile.mkdtemp(prefix="fr-it-")
        self.rack = os.path.join(self.dir, "rack.ini")
        with open(self.rack, "w") as f:
            f.write(rack_text)
        self.sim_sock = os.path.join(self.dir, "sim.sock")
        # the simulator's usbmuxd, for libimobiledevice clients (USBMUXD_SOCKET_ADDRESS)
        self.muxd_sock = os.path.join(self.dir, "usbmuxd.sock") if usbmuxd else None
        # usbmuxd="tcp": the same usbmuxd on a loopback TCP port too, and clients pointed there
        self.muxd_tcp = "127.0.0.1:%d" % free_port() if usbmuxd == "tcp" else None
        self.agents_ep = "tcp://127.0.0.1:%d" % free_port()
        self.clients_ep = "tcp://127.0.0.1:%d" % free_port()
        self.store = os.path.join(self.dir, "flashrack.db")
        self.mirror_port = free_port()
        self.mirror = "http://127.0.0.1:%d" % self.mirror_port
        self.page_port = free_port()
        self.page = "http://127.0.0.1:%d" % self.page_port  # the rack page
        self.hb_ms = hb_ms
        self.liveness = liveness
        self.watchdog_s = watchdog_s
        self.agent_ids = list(agents)
        self.agent_controller = {}  # agent id -> the endpoint it dials (default agents_ep)
        self.operator = operator
        self.bus_limit = bus_limit
        self.cli_timeout = cli_timeout
        self.slots = slots
        self.controller_sets = list(controller_sets)
        self.engine = engine or os.path.join(bindir, "flashrack-sim-restore")
        self.discovery = discovery
        self.verify_wait_s = verify_wait_s  # None: the agent's default
        self.procs = {}
        self.keys_dir = os.path.join(self.dir, "keys")
        self.curve = curve
        self.cwd = None  # the processes' working directory (None: the test's)
        self.env = dict(os.environ, FLASHRACK_SIM_SOCKET=self.sim_sock,
                        FLASHRACK_CONTROLLER=self.clients_ep, FLASHRACK_KEYS_DIR=self.keys_dir)
        if self.muxd_sock:
            self.env["USBMUXD_SOCKET_ADDRESS"] = self.muxd_tcp or "UNIX:" + self.muxd_sock
        for k in ("FLASHRACK_KEY", "FLASHRACK_CONTROLLER_KEY"):
            self.env.pop(k, None)
        if curve:
            self.env.update(FLASHRACK_KEY=os.path.join(self.dir, "operator.key"),
                            FLASHRACK_CONTROLLER_KEY=os.path.join(self.keys_dir, "controller.key.pub"))
            self.make_keys()
        else:
            self.controller_sets.append("security.insecure=loopback")

    # -- CURVE keys (made and authorized with `flashrack keys`, as a site does) --
    def keys(self, *args):
        r = subprocess.run([os.path.join(self.bin, "flashrack"), "keys"] + list(args),
                           capture_output=True, text=True, env=self.env, timeout=20,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 0, "flashrack keys %s: %s" % (" ".join(args), r.stderr))
        p = self.procs.get("flashrackd")
        if args[0] in ("authorize", "revoke") and p and p.poll() is None:
            self.wait_keys_loaded()
        return r.stdout

    def wait_keys_loaded(self):
        """Until the running controller has reloaded the keys directory as it is now."""
        listed = json.loads(self.keys("list", "-o", "json"))["keys"]
        want = (sum(1 for k in listed if k["kind"] == "agent"),
                sum(1 for k in listed if k["kind"] == "operator"))

        def loaded():
            sec = self.cli_json("agents")["security"]
            return sec["mode"] != "curve" or (sec["agent_keys"], sec["operator_keys"]) == want
        self.wait_for(loaded, START_LIMIT_S, "the controller reloading its keys")

    def make_keys(self):
        os.makedirs(self.keys_dir, exist_ok=True)
        self.keys("gen", os.path.join(self.keys_dir, "controller.key"))
        self.add_operator("operator", "operator", self.env["FLASHRACK_KEY"])

    def add_operator(self, name, role, path):
        """A keypair at path, authorized as operator `name` with that role."""
        self.keys("gen", path)
        self.keys("authorize", "--operator", name, "--role", role, path + ".pub")
        return path

    def read_keypair(self, path):
        """(secret, public) of a keypair file, as pyzmq's curve options take them."""
        k = read_key(path)
        return k["secret"], k["public"]

    def controller_public(self):
        return read_key(self.env["FLASHRACK_CONTROLLER_KEY"])["public"]

    def agent_key(self, aid, authorize=True):
        """The agent's keypair file (made, and authorized for aid, at first use)."""
        path = os.path.join(self.dir, "agent-%s.key" % aid)
        if not os.path.exists(path):
            self.keys("gen", path)
            if authorize:
                self.keys("authorize", "--agent", aid, path + ".pub")
        return path

    # -- processes ---------------------------------------------------------
    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             stdin=subprocess.DEVNULL, cwd=self.cwd)
        self.procs[name] = p
        return p

    def start_sim(self):
        argv = [os.path.join(self.bin, "flashrack-sim"), self.rack, "--socket", self.sim_sock]
        if self.operator:
            argv += ["--operator", self.clients_ep]
        if self.muxd_sock:
            argv += ["--usbmuxd", self.muxd_sock]
        if self.muxd_tcp:
            argv += ["--usbmuxd-tcp", self.muxd_tcp]
        self._spawn("sim", argv)
        self.wait_for(lambda: os.path.exists(self.sim_sock) and
                      (not self.muxd_sock or os.path.exists(self.muxd_sock)), START_LIMIT_S,
                      "simulator socket")
        if self.muxd_tcp:  # logged once the port listens
            self.wait_for(lambda: "usbmuxd on TCP" in self.log("sim"), START_LIMIT_S, "usbmuxd on TCP")

    def start_controller(self):
        self._spawn("flashrackd", [
            os.path.join(self.bin, "flashrackd"),
            "--set", "controller.store=" + self.store,
            "--set", "controller.agents_endpoint=" + self.agents_ep,
            "--set", "controller.clients_endpoint=" + self.clients_ep,
            "--set", "controller.heartbeat_ms=%d" % self.hb_ms,
            "--set", "controller.liveness=%d" % self.liveness,
            "--set", "controller.log_level=debug",
            "--set", "mirror.listen=127.0.0.1:%d" % self.mirror_port,
            "--set", "mirror.dir=" + os.path.join(self.dir, "mirror"),
            "--set", "page.listen=127.0.0.1:%d" % self.page_port,
            "--set", "security.keys_dir=" + self.keys_dir] +
            [a for kv in self.controller_sets for a in ("--set", kv)])
        self.wait_for(lambda: self.cli_ok("agents"), START_LIMIT_S, "controller answering")

    def agent_ini(self, aid):
        work = os.path.join(self.dir, "agent-" + aid)
        os.makedirs(work, exist_ok=True)
        path = os.path.join(work, "agent.ini")
        keys = "key = %s\ncontroller_key = %s\n" % (
            self.agent_key(aid), self.env["FLASHRACK_CONTROLLER_KEY"]) if self.curve else ""
        with open(path, "w") as f:
            f.write("[agent]\nid = %s\ncontroller = %s\nslots = %d\nbus_limit = %d\n"
                    "work_dir = %s\nlog_level = debug\n%s\n"
                    "[seams]\ntopology = sim\n"
                    "discovery = %s\npower = sim\nsim_socket = %s\n\n[engine]\npath = %s\n"
                    "watchdog_s = %d\n%s"
                    % (aid, self.agent_controller.get(aid, self.agents_ep), self.slots,
                       self.bus_limit, work, keys, self.discovery, self.sim_sock, self.engine,
                       self.watchdog_s,
                       "" if self.verify_wait_s is None else "verify_wait_s = %d\n" % self.verify_wait_s))
        return path

    def start_agent(self, aid):
        self._spawn("agent-" + aid, [os.path.join(self.bin, "flashrack-agent"),
                                     "-c", self.agent_ini(aid)])

    def start(self):
        self.start_sim()
        self.start_controller()
        for a in self.agent_ids:
            self.start_agent(a)
        self.wait_for(lambda: self.online_agents() >= len(self.agent_ids), START_LIMIT_S,
                      "agents online")
        return self

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs[name]
        p.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            p.wait(timeout=20)

    def stop(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def dump_logs(self):
        for name in self.procs:
            sys.stderr.write("----- %s.log (last 60 lines) -----\n" % name)
            sys.stderr.write("\n".join(self.log(name).splitlines()[-60:]) + "\n")

    # -- the simulator's socket (acting as the technician) -----------------------
    def sim_request(self, obj):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.sim_sock)
            s.sendall((json.dumps(obj) + "\n").encode())
            return json.loads(s.makefile().readline())

    def move_unit(self, ecid, label, dfu=False):
        r = self.sim_request({"op": "move", "ecid": ecid, "to": label, "dfu": dfu})
        check(r.get("ok"), "simulator moved %s to %s: %s" % (ecid, label, r))

    # -- CLI -----------------------------------------------------------------
    def cli(self, *args, timeout=None):
        timeout = timeout or self.cli_timeout
        argv = [os.path.join(self.bin, "flashrack"), "-C", self.clients_ep,
                "--timeout", str(timeout)] + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env,
                           timeout=timeout + 20, stdin=subprocess.DEVNULL)
        return r

    def cli_json(self, *args):
        r = self.cli(*(list(args) + ["-o", "json"]))
        if r.returncode not in (0, 1):
            raise Failure("flashrack %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        return json.loads(r.stdout)

    def cli_ok(self, *args):
        try:
            return self.cli(*args, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def online_agents(self):
        try:
            doc = self.cli_json("agents")
        except (Failure, ValueError, subprocess.TimeoutExpired):
            return 0
        return sum(1 for a in doc.get("agents", []) if a.get("state") == "online")

    def submit(self, *args):
        doc = self.cli_json("submit", "--firmware", self.ipsw(), *args)
        return doc["job_id"]

    def ipsw(self):
        """A stand-in IPSW (the CLI refuses a file that is not one): a zip with a
        BuildManifest.plist and 4 KiB of random filler, so each site's hash differs."""
        path = os.path.join(self.dir, "test_Restore.ipsw")
        if not os.path.exists(path):
            write_ipsw(path)
        return path

    def job(self, job_id):
        return self.cli_json("status", str(job_id))

    def wait_job_finished(self, job_id, limit_s):
        def finished():
            doc = self.job(job_id)
            return doc["jobs"][0]["state"] in ("done", "cancelled")
        self.wait_for(finished, limit_s, "job %d finished" % job_id)
        return self.job(job_id)

    # -- waiting -------------------------------------------------------------
    def wait_for(self, pred, limit_s, what, step=0.1):
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None and p.returncode not in (0, -9, -15) and \
                        not getattr(p, "expected_exit", False):
                    raise Failure("%s exited with %s while waiting for %s"
                                  % (name, p.returncode, what))
            if pred():
                return
            time.sleep(step)
        raise Failure("timed out after %ss waiting for %s" % (limit_s, what))


class Origin:
    """The firmware publisher: a real HTTP server on 127.0.0.1 serving a directory,
    counting GETs and body bytes; the first `fail_first` GETs are answered 500; with
    `rate` (bytes per second) it sends slowly, like a distant server: each download at
    that rate, or with `shared` all downloads together (one WAN link). With `hold_end`
    the last piece of every file waits for release(): until then no download is whole,
    however slowly the machine runs."""

    def __init__(self, directory, fail_first=0, rate=0, shared=False, hold_end=False):
        import http.server
        import threading
        origin = self
        self.gets = []
        self.bytes = 0
        self.fail_first = fail_first
        self.released = threading.Event()
        if not hold_end:
            self.released.set()
        lock = threading.Lock()
        link = {"free_at": 0.0}  # shared: when the link has sent everything queued so far

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                with lock:
                    origin.gets.append(self.path)
                    fail = len(origin.gets) <= origin.fail_first
                if fail:
                    self.send_error(500, "publisher trouble")
                    return
                super().do_GET()

            def copyfile(self, source, outputfile):
                step = min(1 << 20, rate // 10) if rate else 1 << 20
                size = os.fstat(source.fileno()).st_size
                while True:
                    buf = source.read(step)
                    if not buf:
                        break
                    if source.tell() == size:
                        check(origin.released.wait(120), "the test released the files' ends")
                    outputfile.write(buf)
                    with lock:
                        origin.bytes += len(buf)
                    if rate and shared:
                        with lock:
                            start = max(time.monotonic(), link["free_at"])
                            link["free_at"] = start + len(buf) / rate
                        time.sleep(max(0.0, link["free_at"] - time.monotonic()))
                    elif rate:
                        time.sleep(len(buf) / rate)

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **kw: Handler(*a, directory=directory, **kw))
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]

    def url(self, path):
        return "%s/%s" % (self.base, os.path.basename(path))

    def release(self):
        """The held ends of the files go out (see hold_end)."""
        self.released.set()

    def close(self):
        self.released.set()
        self.srv.shutdown()
        self.srv.server_close()


def read_key(path):
    """A flashrack key file's fields ('public', 'secret', 'role'), values as bytes."""
    fields = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                name, value = line.split("=", 1)
                fields[name.strip()] = value.strip().encode()
    return fields


def curve_client(sock, key_path, server_pub_path):
    """Makes a pyzmq socket a CURVE client with the keypair in key_path."""
    mine, server = read_key(key_path), read_key(server_pub_path)
    sock.curve_secretkey = mine["secret"]
    sock.curve_publickey = mine["public"]
    sock.curve_serverkey = server["public"]
    return sock


@contextlib.contextmanager
def welcomed_peer(site, aid, session):
    """A DEALER that speaks only what tests/integration/wire.py writes (zmq and the .proto,
    no flashrack code), with a key the site authorized for agent aid, under routing id
    aid, welcomed after its Hello; closed at the end."""
    import zmq
    import wire
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    try:
        curve_client(s, site.agent_key(aid), site.env["FLASHRACK_CONTROLLER_KEY"])
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IDENTITY, aid.encode())
        s.connect(site.agents_ep)
        s.send(wire.hello(aid, session))
        check(s.poll(5000), "%s is welcomed (its key is valid for %s)" % (aid, aid))
        s.recv()
        yield s
    finally:
        s.close()
        ctx.term()


def sha256_of(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@contextlib.contextmanager
def tended(site):
    """A Site whose processes the caller starts one by one; on any failure its logs
    are printed; always stopped."""
    try:
        yield site
    except BaseException:
        site.dump_logs()
        raise
    finally:
        site.stop()


@contextlib.contextmanager
def started(site):
    """Starts a Site prepared by the caller (see tended())."""
    with tended(site):
        yield site.start()


def running_site(bindir, rack_text, **kw):
    """A started Site (see started())."""
    return started(Site(bindir, rack_text, **kw))


def main(*tests):
    """Runs each test(bindir) and prints one line each plus a closing count;
    the exit code is for ctest. Usage: test_x.py BIN_DIR"""
    bindir = sys.argv[1]
    passed = failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t(bindir)
            passed += 1
            print("PASS %s (%.1f s)" % (t.__name__, time.monotonic() - start), flush=True)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def simple_rack(hosts=("A",), ports=3, seed=1, time_scale=400, product_types="iPhone12,1"):
    """A rack file: per host, one hub of `ports` ports on root bus 1, every port filled."""
    lines = ["[sim]", "seed = %d" % seed, "time_scale = %d" % time_scale]
    for h in hosts:
        lines += ["", "[host %s]" % h, "product_types = %s" % product_types,
                  "", "[hub %s.1]" % h, "host = %s" % h, "bus = 1", "ports = %d" % ports]
    return "\n".join(lines) + "\n"


RACK_SMALL = """
[sim]
seed = 7
time_scale = 200
dialect = master

[host A]
label_prefix = A-
fill = yes
product_types = iPhone12,1 iPhone13,2

[hub A.1]
host = A
bus = 1
depth = 1
ports = 4
power_switch = yes
"""

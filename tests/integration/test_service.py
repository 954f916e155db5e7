"""flashrack as a service: the daemons speak systemd's notify protocol (READY=1 after
the store and sockets, STATUS= lines, WATCHDOG=1 with $WATCHDOG_USEC, SIGHUP reloads the
catalog), put relative paths in the directories systemd names ($STATE_DIRECTORY,
$CACHE_DIRECTORY), and every program prints the one version."""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import RACK_SMALL, Site, check, main, started

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


class NotifySocket:
    """The service manager's end of $NOTIFY_SOCKET: a datagram socket this test owns,
    drained by a thread as systemd drains it (a full queue would drop notifications)."""

    def __init__(self, directory, name, drain=True):
        import threading
        self.path = os.path.join(directory, name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.closed = False
        if drain:
            threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while not self.closed:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def wait(self, pred, limit_s, what, after=0):
        """Until a message (from index `after` on) satisfies pred (bounded); returns it."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for m in self.messages[after:]:
                if pred(m):
                    return m
            time.sleep(0.05)
        raise AssertionError("no %s on the notify socket within %ss; got %r"
                             % (what, limit_s, self.messages[-8:]))

    def fields(self, m):
        return dict(line.split("=", 1) for line in m.split("\n") if "=" in line)

    def close(self):
        self.closed = True
        time.sleep(0.2)
        self.sock.close()


def versions_agree(bindir):
    seen = {}
    for prog in ("flashrackd", "flashrack-agent", "flashrack", "flashrack-sim"):
        r = subprocess.run([os.path.join(bindir, prog), "--version"], capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
        check(r.returncode == 0, "%s --version: exit %d %r" % (prog, r.returncode, r.stderr))
        name, _, version = r.stdout.strip().partition(" ")
        check(name == prog and version, "%s --version said %r" % (prog, r.stdout))
        seen[prog] = version
    check(len(set(seen.values())) == 1, "one version: %s" % seen)


class SystemdSite(Site):
    """A Site whose daemons run as systemd starts them: relative paths, and the state
    and cache directories in the environment."""

    def __init__(self, bindir):
        super().__init__(bindir, RACK_SMALL, controller_sets=(
            "controller.store=flashrack.db", "mirror.dir=mirror"))
        self.state = os.path.join(self.dir, "state")
        self.cache = os.path.join(self.dir, "cache")
        self.cwd = os.path.join(self.dir, "cwd")
        for d in (self.state, self.cache, self.cwd):
            os.makedirs(d)
        self.env.update(STATE_DIRECTORY=self.state, CACHE_DIRECTORY=self.cache)

    def agent_ini(self, aid):
        path = super().agent_ini(aid)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("work_dir = %s\n" % os.path.dirname(path), "work_dir = agent-%s\n" % aid))
        return path


def relative_paths_land_in_the_systemd_directories(bindir):
    with started(SystemdSite(bindir)) as site:
        job = site.submit("--agent", "A", "--name", "dirs")
        site.wait_job_finished(job, 60)
        check(os.path.exists(os.path.join(site.state, "flashrack.db")), "store in STATE_DIRECTORY")
        check(os.path.exists(os.path.join(site.state, "agent-A", "outbox.db")),
              "agent journal in STATE_DIRECTORY/agent-A")
        check(os.path.isdir(os.path.join(site.state, "agent-A", "logs")), "engine logs in the state dir")
        check(os.path.isdir(os.path.join(site.cache, "ipsw")), "IPSW cache in CACHE_DIRECTORY/ipsw")
        check(os.path.isdir(os.path.join(site.cache, "mirror")), "mirror in CACHE_DIRECTORY/mirror")
        check(os.listdir(site.cwd) == [], "nothing in the working directory: %s" % os.listdir(site.cwd))


class NotifiedController:
    """Starts site with $NOTIFY_SOCKET and $WATCHDOG_USEC given to the controller only."""

    def __init__(self, site, ns, watchdog_usec="200000"):
        self.site, self.ns, self.watchdog_usec = site, ns, watchdog_usec

    def start(self):
        site, env = self.site, self.site.env
        site.start_sim()
        site.env = dict(env, NOTIFY_SOCKET=self.ns.path, WATCHDOG_USEC=self.watchdog_usec)
        try:
            site.start_controller()
        finally:
            site.env = env
        for a in site.agent_ids:
            site.start_agent(a)
        site.wait_for(lambda: site.online_agents() >= len(site.agent_ids), 20, "agents online")
        return site

    def dump_logs(self):
        self.site.dump_logs()

    def stop(self):
        self.site.stop()


def controller_notifies_ready_status_watchdog_and_reloads(bindir):
    site = Site(bindir, RACK_SMALL)
    catalog = os.path.join(site.dir, "catalog")
    os.makedirs(catalog)
    site.controller_sets = ["firmware.catalog_dir=" + catalog]
    ns = NotifySocket(site.dir, "notify.sock")
    try:
        with started(NotifiedController(site, ns)):
            ready = ns.wait(lambda m: "READY=1" in m, 10, "READY=1")
            check("STATUS=" in ready, "READY=1 comes with a status: %r" % ready)
            check(os.path.exists(site.store), "the store exists before READY=1")
            ns.wait(lambda m: m == "WATCHDOG=1", 5, "WATCHDOG=1")
            status = ns.wait(lambda m: "1 agent online, 4 ports" in m, 15, "a status with the agent")
            check(ns.fields(status)["STATUS"].endswith("restoring"), "status: %r" % status)

            # A catalog file dropped in, then SIGHUP: the controller reads it and says so.
            check(site.cli_json("firmware", "list")["catalog"]["files"] == 0, "empty catalog first")
            shutil.copy(os.path.join(FIXTURES, "firmware", "ipswme-iPhone11,2.json"), catalog)
            n = len(ns.messages)
            site.kill("flashrackd", signal.SIGHUP)
            ns.wait(lambda m: m == "RELOADING=1", 10, "RELOADING=1", after=n)
            ns.wait(lambda m: "READY=1" in m, 10, "READY=1 after the reload", after=n)
            doc = site.cli_json("firmware", "list")["catalog"]
            check(doc["files"] == 1 and doc["firmwares"], "the reloaded catalog: %s" % doc)
            check("SIGHUP: reloaded catalog" in site.log("flashrackd"), "the log says what was reloaded")
            check(site.procs["flashrackd"].poll() is None, "still running after SIGHUP")

            # A catalog that cannot be read keeps what was loaded.
            shutil.rmtree(catalog)
            site.kill("flashrackd", signal.SIGHUP)
            site.wait_for(lambda: "cannot reload catalog" in site.log("flashrackd"), 10, "reload refused")
            check(site.cli_json("firmware", "list")["catalog"]["files"] == 1, "the catalog is kept")
            site.kill("flashrackd", signal.SIGTERM)
            ns.wait(lambda m: m == "STOPPING=1", 10, "STOPPING=1")
    finally:
        ns.close()


def a_notify_socket_nobody_reads_never_stalls_the_loop(bindir):
    # A service manager that does not read (its queue is full after a few pings at 10 ms)
    # must cost the daemon nothing but the lost notifications.
    site = Site(bindir, RACK_SMALL)
    ns = NotifySocket(site.dir, "deaf.sock", drain=False)
    try:
        with started(NotifiedController(site, ns, watchdog_usec="20000")):
            for _ in range(3):
                r = site.cli("agents", "-o", "json")
                check(r.returncode == 0 and '"agents"' in r.stdout, "the controller answers: %r" % r.stderr)
    finally:
        ns.close()


def agent_notifies_ready_and_status(bindir):
    site = Site(bindir, RACK_SMALL)
    ns = NotifySocket(site.dir, "agent-notify.sock")
    try:
        with started(site):
            site.env.update(NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="200000")
            site.start_agent("B")
            ready = ns.wait(lambda m: "READY=1" in m, 10, "the agent's READY=1")
            check("ports" in ready, "status with READY=1: %r" % ready)
            ns.wait(lambda m: m == "WATCHDOG=1", 5, "the agent's WATCHDOG=1")
            ns.wait(lambda m: "controller connected" in m, 15, "the agent's status once welcomed")
            # SIGHUP re-reads the log settings and says so, as systemd's reload expects
            site.kill("agent-B", signal.SIGHUP)
            site.wait_for(lambda: "SIGHUP: reloaded logging: log_level debug, log_format auto"
                          in site.log("agent-B"), 10, "SIGHUP logged")
            ns.wait(lambda m: "RELOADING=1" in m, 5, "the agent's RELOADING=1")
            check(site.procs["agent-B"].poll() is None, "the agent still runs")
    finally:
        ns.close()


def bad_watchdog_setting_is_refused(bindir):
    site = Site(bindir, RACK_SMALL)
    r = subprocess.run([os.path.join(bindir, "flashrackd"), "--set", "controller.store=" + site.store],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, WATCHDOG_USEC="soon"))
    check(r.returncode != 0 and "WATCHDOG_USEC" in r.stderr and "soon" in r.stderr,
          "refused, naming the variable: %d %r" % (r.returncode, r.stderr))
    check(not os.path.exists(site.store), "no store created")


if __name__ == "__main__":
    main(versions_agree, relative_paths_land_in_the_systemd_directories,
         controller_notifies_ready_status_watchdog_and_reloads,
         a_notify_socket_nobody_reads_never_stalls_the_loop, agent_notifies_ready_and_status,
         bad_watchdog_setting_is_refused)

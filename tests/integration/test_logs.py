"""Logs that fit journald and log shippers: under systemd each line goes to journald's
native socket with JOB, ECID, AGENT and PORT fields (and to the stream with "<N>"
priorities when that socket cannot be written); `log_format = json` gives one JSON
object per line with the same fields.

journald's socket has a fixed path (/run/systemd/journal/socket), so this test runs in
a private mount namespace with its own /run/systemd: it never writes to the host's
journal, and a host that runs journald sees the same test as one that does not."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

from harness import RACK_SMALL, Failure, Site, check, main, tended

JOURNAL_DIR = "/run/systemd/journal"


def enter_private_run():
    """Re-runs this test in a new mount namespace whose /run/systemd is an empty tmpfs."""
    if os.environ.get("FR_TEST_LOGS_NS") == "1":
        return
    os.makedirs("/run/systemd", exist_ok=True)
    script = ('mount -t tmpfs flashrack-test /run/systemd && mkdir -p %s && exec "$@"' % JOURNAL_DIR)
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", sys.executable] + sys.argv,
               dict(os.environ, FR_TEST_LOGS_NS="1"))


def parse_entry(data):
    """journald's native datagram: KEY=VALUE lines, or KEY\\n<le64 size><bytes>\\n for
    values with newlines."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode()
            i = nl + 1
        else:
            size = int.from_bytes(data[nl + 1:nl + 9], "little")
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode()
            i = nl + 9 + size + 1
    return fields


class Journal:
    """The journal's end of /run/systemd/journal/socket, drained by a thread."""

    def __init__(self):
        self.path = os.path.join(JOURNAL_DIR, "socket")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.entries, self.closed = [], False
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while not self.closed:
            try:
                self.entries.append(parse_entry(self.sock.recv(1 << 16)))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.closed = True
        self.sock.close()
        os.unlink(self.path)


class FormatSite(Site):
    """A Site whose agents log in the given log_format."""

    def __init__(self, bindir, rack, agent_format=None, **kw):
        super().__init__(bindir, rack, **kw)
        self.agent_format = agent_format

    def agent_ini(self, aid):
        path = super().agent_ini(aid)
        if self.agent_format:
            text = open(path).read().replace("log_level = debug\n", "log_level = debug\nlog_format = %s\n"
                                             % self.agent_format)
            with open(path, "w") as f:
                f.write(text)
        return path


class StreamSite(FormatSite):
    """A Site whose daemons' stderr is one file that $JOURNAL_STREAM names, as systemd
    connects a unit's stderr to journald's stream."""

    def __init__(self, bindir, rack, **kw):
        super().__init__(bindir, rack, **kw)
        self.stream_path = os.path.join(self.dir, "stream")
        self.stream = open(self.stream_path, "ab")
        st = os.fstat(self.stream.fileno())
        self.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)

    def _spawn(self, name, argv):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.stream, env=self.env,
                             stdin=subprocess.DEVNULL, cwd=self.cwd)
        self.procs[name] = p
        return p

    def dump_logs(self):
        sys.stdout.write(open(self.stream_path, errors="replace").read()[-6000:])


def restore_one(site):
    """Restores the first unit; returns (job id, its ECID)."""
    units = site.cli_json("units")["units"]
    ecid = units[0]["ecid"]
    job = site.submit("--ecid", ecid)
    site.wait_job_finished(job, 60)
    return job, ecid


def about(entries, ident, component, job, ecid):
    return [e for e in entries if e.get("SYSLOG_IDENTIFIER") == ident and e.get("COMPONENT") == component
            and e.get("JOB") == str(job) and e.get("ECID", "").lower() == ecid.lower()]


def journal_gets_fields_per_unit(bindir):
    journal = Journal()
    site = StreamSite(bindir, RACK_SMALL)
    try:
        with tended(site):
            site.start()
            site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
            job, ecid = restore_one(site)
            site.wait_for(lambda: about(journal.entries, "flashrack-agent", "unit", job, ecid), 10,
                          "the agent's lines about the unit")
            # The journal's thread reads the datagrams in its own time: the controller's
            # line is waited for as the agent's is, not looked for once.
            try:
                site.wait_for(lambda: about(journal.entries, "flashrackd", "runs", job, ecid), 10,
                              "the controller's result line with JOB and ECID")
            except Failure as e:
                raise Failure("%s: %r" % (e, journal.entries[-5:]))
            ctl = about(journal.entries, "flashrackd", "runs", job, ecid)
            e = ctl[-1]
            check(e["AGENT"] == "A" and e.get("PORT") and e["PRIORITY"] == "6"
                  and e["MESSAGE"].startswith("runs: unit "), "fields: %r" % e)
            ag = about(journal.entries, "flashrack-agent", "unit", job, ecid)[-1]
            check(ag["AGENT"] == "A" and ag.get("PORT") == e["PORT"], "the agent names the same port: %r" % ag)
            check(all(x.get("PRIORITY") in ("3", "4", "6", "7") for x in journal.entries), "priorities")
            site.stream.flush()
            check(ecid.lower() not in open(site.stream_path).read().lower(),
                  "lines journald took natively are not also on the stream")
    finally:
        journal.close()


def stream_gets_priorities_when_journald_is_away(bindir):
    """No socket (journald restarting): lines go to the stream, "<N>component: ..." with no
    timestamp; a stderr that is not the stream keeps the plain format."""
    d = tempfile.mkdtemp(prefix="fr-journal-")
    path = os.path.join(d, "stderr")
    store = os.path.join(d, "missing", "flashrack.db")  # cannot be created: an error is logged
    for journal in (True, False):
        with open(path, "w") as f:
            st = os.fstat(f.fileno())
            # another inode: stderr is no longer the stream systemd connected
            stream = "%d:%d" % (st.st_dev, st.st_ino if journal else st.st_ino + 1)
            r = subprocess.run([os.path.join(bindir, "flashrackd"), "--set", "controller.store=" + store,
                                "--set", "security.insecure=loopback"],
                               stdout=subprocess.DEVNULL, stderr=f, stdin=subprocess.DEVNULL, timeout=20,
                               env=dict(os.environ, JOURNAL_STREAM=stream))
        import re
        lines = open(path).read().splitlines()
        check(r.returncode == 1 and lines, "flashrackd failed on the store: %d %r" % (r.returncode, lines))
        if journal:
            check(all(re.match(r"<[3-7]>[a-z]+: ", l) for l in lines), "journal lines: %r" % lines)
            check(any(l.startswith("<3>flashrackd: ") and store in l for l in lines), "the error at <3>: %r" % lines)
        else:
            check(all(re.match(r"\d{4}-\d\d-\d\dT[0-9:.]+Z flashrackd ", l) for l in lines), "plain: %r" % lines)


def json_lines_carry_the_same_fields(bindir):
    site = FormatSite(bindir, RACK_SMALL, agent_format="json",
                      controller_sets=["controller.log_format=json"])
    with tended(site):
        site.start()
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
        job, ecid = restore_one(site)
        for name, comp in (("flashrackd", "runs"), ("agent-A", "unit")):
            lines = site.log(name).splitlines()
            objs = []
            for n, l in enumerate(lines, 1):
                try:
                    objs.append(json.loads(l))
                except ValueError:
                    raise AssertionError("%s line %d is not JSON: %r" % (name, n, l))
            check(all({"time", "prog", "level", "component", "message"} <= set(o) for o in objs),
                  "%s: every line has the base keys" % name)
            mine = [o for o in objs if o["component"] == comp and o.get("job") == job
                    and o.get("ecid", "").lower() == ecid.lower()]
            check(mine and mine[-1]["agent"] == "A" and mine[-1].get("port")
                  and mine[-1]["time"].endswith("Z"), "%s: a line about the unit: %r" % (name, objs[-3:]))


def sighup_rereads_the_log_settings(bindir):
    """An admin turns on JSON lines with SIGHUP (systemctl reload); a bad edit is refused
    naming the file and line, and the agent keeps what it had."""
    import signal
    site = FormatSite(bindir, RACK_SMALL)
    with tended(site):
        site.start()
        ini = site.agent_ini("A")
        text = open(ini).read()
        with open(ini, "w") as f:
            f.write(text.replace("log_level = debug\n", "log_level = info\nlog_format = json\n"))
        site.kill("agent-A", signal.SIGHUP)
        site.wait_for(lambda: "SIGHUP: reloaded logging: log_level info, log_format json" in site.log("agent-A"),
                      10, "the reload said")
        lines = site.log("agent-A").splitlines()
        first = next(i for i, l in enumerate(lines) if "log_format json" in l)
        check(all(json.loads(l)["prog"] == "flashrack-agent" for l in lines[first:]),
              "the reload's line and those after it are JSON: %r" % lines[first:first + 3])
        with open(ini, "w") as f:
            f.write(text.replace("log_level = debug\n", "log_level = loud\n"))
        site.kill("agent-A", signal.SIGHUP)
        site.wait_for(lambda: "cannot reload logging" in site.log("agent-A"), 10, "the refusal")
        bad = [json.loads(l) for l in site.log("agent-A").splitlines()
               if l.startswith("{") and "cannot reload logging" in l][-1]
        check(ini in bad["message"] and "log_level" in bad["message"] and bad["level"] == "warn",
              "names the file, line and key: %r" % bad)
        check(site.procs["agent-A"].poll() is None, "the agent still runs")
        lines = site.log("agent-A").splitlines()
        check(all(json.loads(l) for l in lines[first:]), "still JSON after the refusal: %r" % lines[-3:])


def unknown_log_format_is_refused(bindir):
    r = subprocess.run([os.path.join(bindir, "flashrackd"), "--set", "controller.log_format=xml",
                        "--set", "security.insecure=loopback"],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    check(r.returncode != 0 and "log_format" in r.stderr and "auto, text or json" in r.stderr and "xml" in r.stderr,
          "refused, naming the key and what was expected: %d %r" % (r.returncode, r.stderr))


if __name__ == "__main__":
    enter_private_run()
    main(journal_gets_fields_per_unit, stream_gets_priorities_when_journald_is_away,
         json_lines_carry_the_same_fields, sighup_rereads_the_log_settings, unknown_log_format_is_refused)

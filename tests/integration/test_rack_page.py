"""The live rack page over HTTP: the event stream (a snapshot with the rack's labels, tile
events as a job runs, heartbeat comments), the operator token (refused without it, taken
as a query argument or a bearer header), the bound on clients, and the start refusals
(a non-loopback address without a token, a token file that cannot be read)."""
import http.client
import json
import os
import subprocess
import time

from harness import Site, check, free_port, main, running_site, simple_rack, started

RACK = simple_rack(hosts=("A",), ports=3, time_scale=200)
LABELS = ["A-01", "A-02", "A-03"]
TOKEN = "page-token-0123456789abcdef"


class EventStream:
    """Reads text/event-stream from the page server, bounded in time per read."""

    def __init__(self, site, path="/events", headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", site.page_port, timeout=10)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()

    def next(self, limit_s=15):
        """(event, data or comment) of the next block; comments come as (":", text)."""
        deadline = time.monotonic() + limit_s
        event, data = None, []
        while time.monotonic() < deadline:
            line = self.resp.readline()
            check(line, "the stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if event or data:
                    return event, "\n".join(data)
                continue
            if line.startswith(":"):
                return ":", line[1:].strip()
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        raise AssertionError("no event within %d s" % limit_s)

    def close(self):
        self.resp.close()  # the response holds the socket too
        self.conn.close()


def get(site, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", site.page_port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read()
    finally:
        conn.close()


def labels_of(doc):
    return [t["label"] for h in doc["hubs"] for t in h["tiles"]]


def stream_follows_a_job(bindir):
    with running_site(bindir, RACK, controller_sets=("page.heartbeat_s=1",)) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 3, 20, "three units")
        status, ctype, body = get(site, "/")
        check(status == 200 and ctype.startswith("text/html") and b"EventSource" in body, "the page")
        status, _, body = get(site, "/rack.json")
        check(status == 200 and labels_of(json.loads(body)) == LABELS, "rack.json: %r" % body[:300])
        check(get(site, "/nothing")[0] == 404, "404 elsewhere")

        es = EventStream(site)
        check(es.resp.status == 200 and es.resp.getheader("Content-Type").startswith("text/event-stream"),
              "event stream answered: %d %s" % (es.resp.status, es.resp.getheader("Content-Type")))
        event, data = es.next()
        check(event == "snapshot", "first a snapshot, got %r" % event)
        snap = json.loads(data)
        check(labels_of(snap) == LABELS and snap["hubs"][0]["agent"] == "A", "the rack's labels: %s" % snap)
        check(all(t["state"] == "present" for h in snap["hubs"] for t in h["tiles"]), "units, no job yet")

        job = site.submit("--agent", "A")
        states = {label: ["present"] for label in LABELS}
        comments = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(s[-1] == "done" for s in states.values()):
            event, data = es.next()
            if event == ":":
                comments += 1
            elif event == "tile":
                t = json.loads(data)
                if states[t["label"]][-1] != t["state"]:
                    states[t["label"]].append(t["state"])
        check(all(s[-1] == "done" for s in states.values()), "every tile ends done: %s" % states)
        check(all(len(s) >= 3 for s in states.values()), "and went through working states: %s" % states)
        # quiet now: only heartbeats (page.heartbeat_s = 1)
        while comments < 2:
            event, _ = es.next(5)
            comments += event == ":"
        es.close()
        site.wait_job_finished(job, 30)
        readings_read_what_changed(site.log("flashrackd"))


def readings_read_what_changed(log):
    """The page reads the rack whole only at its first reading: the submit's reading reads
    the job's runs and no port, and every other reading reads the runs and ports written
    since the one before; a quiet one reads none and builds no tile."""
    lines = [l for l in log.splitlines() if "read the rack" in l]
    whole = [l for l in lines if "read the rack whole" in l]
    check(len(lines) > len(whole) + 2, "readings: %s" % lines[-10:])
    check(len(whole) == 1 and lines[0] in whole, "read whole only at the first reading: %s" % whole)
    check(": %d port rows changed, 0 runs read, %d tiles built" % (len(LABELS), len(LABELS)) in whole[0],
          "the first reading read every port once and built every tile once: %s" % whole)
    check(any(": 0 port rows changed, 3 runs read" in l for l in lines[1:]),
          "the submit's reading read its 3 runs and no port: %s" % lines)
    check(any(": 0 port rows changed, 0 runs read, 0 tiles built, 0 sent" in l for l in lines[-3:]),
          "a quiet reading reads nothing: %s" % lines[-3:])
    check(any(", 0 runs read" not in l and "whole" not in l for l in lines), "changes read alone: %s" % lines)


def token_is_checked_on_every_request(bindir):
    site = Site(bindir, RACK)
    path = os.path.join(site.dir, "page.token")
    with open(path, "w") as f:
        f.write(TOKEN + "\n")
    site.controller_sets += ["page.token_file=" + path, "page.max_clients=1", "page.heartbeat_s=1"]
    with started(site):
        for p in ("/", "/events", "/rack.json", "/?token=wrong", "/?token=" + TOKEN[:-1]):
            status, _, body = get(site, p)
            check(status == 401 and b"operator token" in body, "%s without the token: %d %r" % (p, status, body))
        check(get(site, "/", {"Authorization": "Bearer nope"})[0] == 401, "a wrong bearer token")
        check(get(site, "/?token=" + TOKEN)[0] == 200, "the token as a query argument")
        check(get(site, "/rack.json", {"Authorization": "Bearer " + TOKEN})[0] == 200, "as a bearer token")
        first = EventStream(site, "/events?token=" + TOKEN)
        check(first.next()[0] == "snapshot", "a stream with the token")
        status, _, body = get(site, "/events?token=" + TOKEN)  # answered at once: not a stream
        check(status == 503 and b"max_clients" in body, "beyond max_clients: %d %r" % (status, body))
        first.close()
        # once the first is gone its place is free again (noticed at the next heartbeat)
        def slot_free():
            es = EventStream(site, "/events?token=" + TOKEN)
            ok = es.resp.status == 200
            es.close()
            return ok
        site.wait_for(slot_free, 10, "the slot freed")


def refused_at_start(bindir):
    site = Site(bindir, RACK)
    base = [os.path.join(bindir, "flashrackd"), "--set", "controller.store=" + site.store,
            "--set", "security.keys_dir=" + site.keys_dir,
            "--set", "controller.agents_endpoint=" + site.agents_ep,
            "--set", "controller.clients_endpoint=" + site.clients_ep, "--set", "mirror.listen=off"]
    # checked with the configuration, before anything is bound
    r = subprocess.run(base + ["--set", "page.listen=0.0.0.0:%d" % free_port()], capture_output=True,
                       text=True, timeout=20, stdin=subprocess.DEVNULL)
    check(r.returncode == 2 and "[page] token_file" in r.stderr and "not a loopback" in r.stderr,
          "non-loopback without a token: %d %r" % (r.returncode, r.stderr))
    missing = os.path.join(site.dir, "no-such.token")
    r = subprocess.run(base + ["--set", "page.listen=127.0.0.1:%d" % free_port(), "--set",
                               "page.token_file=" + missing], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    check(r.returncode == 1 and missing in r.stderr and "[page] token_file" in r.stderr,
          "an unreadable token file: %d %r" % (r.returncode, r.stderr))
    short = os.path.join(site.dir, "short.token")
    with open(short, "w") as f:
        f.write("abc\n")
    r = subprocess.run(base + ["--set", "page.listen=127.0.0.1:%d" % free_port(), "--set",
                               "page.token_file=" + short], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    check(r.returncode == 1 and "at least 16 characters" in r.stderr, "a short token: %r" % r.stderr)
    r = subprocess.run(base + ["--set", "page.listen=everywhere"], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    check(r.returncode == 2 and "[page] listen" in r.stderr and "everywhere" in r.stderr,
          "a malformed address: %r" % r.stderr)


if __name__ == "__main__":
    main(stream_follows_a_job, token_is_checked_on_every_request, refused_at_start)

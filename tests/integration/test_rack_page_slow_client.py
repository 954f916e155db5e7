"""The rack page lets a client that reads nothing go: its bounded buffer ([page]
client_buffer_kb) fills while a job runs and the controller drops it for real (the
server ends its stream: the socket reaches end of file once drained), while a client
that reads keeps receiving tile events after the drop, and is not dropped."""
import socket
import threading
import time

from harness import check, main, running_site, simple_rack
from test_rack_page import EventStream

RACK = simple_rack(hosts=("A",), ports=24, time_scale=400)
DROPPED = "dropped a client of the rack page"


class Reader(threading.Thread):
    """A client that reads every event, noting when each tile event came."""

    def __init__(self, site):
        super().__init__(daemon=True)
        self.es = EventStream(site)
        self.tiles = []          # monotonic time of each tile event
        self.ended = None        # why the stream ended, if it did
        self.stop = False

    def run(self):
        try:
            while not self.stop:
                event, _ = self.es.next(30)
                if event == "tile":
                    self.tiles.append(time.monotonic())
        except Exception as e:  # the stream ended, or went quiet
            self.ended = str(e)


def silent_client(site):
    """A client that asks for the stream and never reads. A small receive buffer and
    segment size, so the kernel holds little of what the controller sends (the server's
    send buffer is sized from the segment size: loopback's 64 KiB segments would give it
    more than a megabyte) and the rest waits in the controller's bounded queue."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.connect(("127.0.0.1", site.page_port))
    s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    return s


def drained_to_eof(s, limit_s):
    """Reads what the kernel holds; True when the server has closed the stream."""
    s.settimeout(1)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
        if not chunk:
            return True
    return False


def a_client_that_reads_nothing_is_dropped_and_another_keeps_receiving(bindir):
    sets = ("page.client_buffer_kb=16", "page.heartbeat_s=1")
    with running_site(bindir, RACK, controller_sets=sets) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 24, 20, "24 units")
        reader = Reader(site)
        reader.start()
        slow = silent_client(site)
        dropped_at = None
        for _ in range(3):  # each job's tile events: until the silent client's queue is full
            job = site.submit("--agent", "A")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and dropped_at is None:
                if DROPPED in site.log("flashrackd"):
                    dropped_at = time.monotonic()
                elif site.job(job)["jobs"][0]["state"] == "done":
                    break
                time.sleep(0.2)
            if dropped_at is not None:
                break
            site.wait_job_finished(job, 60)
        check(dropped_at is not None, "the silent client was dropped")
        check(site.log("flashrackd").count(DROPPED) == 1, "only the silent client was dropped")
        check(drained_to_eof(slow, 20), "the server ended the silent client's stream")
        slow.close()
        # the reading client goes on: tile events after the drop, its stream still open
        site.wait_for(lambda: any(t > dropped_at for t in reader.tiles) or site.job(job)["jobs"][0]["state"] == "done",
                      60, "tile events after the drop, or the job's end")
        if not any(t > dropped_at for t in reader.tiles):  # the drop came with the job's last events
            job = site.submit("--agent", "A")
            site.wait_for(lambda: any(t > dropped_at for t in reader.tiles), 60, "tile events after the drop")
        check(reader.ended is None, "the reading client's stream is still open: %s" % reader.ended)
        check(site.log("flashrackd").count(DROPPED) == 1, "the reading client was never dropped")
        reader.stop = True
        reader.es.close()


if __name__ == "__main__":
    main(a_client_that_reads_nothing_is_dropped_and_another_keeps_receiving)

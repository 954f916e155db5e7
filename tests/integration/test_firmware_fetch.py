"""Firmware by URL: the agent fetches the IPSW into its verified cache once for
all its units, and a wrong hash fails the run as a firmware error without
blaming the port."""
import hashlib
import http.server
import os
import threading

from harness import check, main, running_site

RACK = """
[sim]
seed = 3
time_scale = 400

[host A]
product_types = iPhone12,1

[hub A.1]
host = A
bus = 1
ports = 3
"""


class Counting(http.server.SimpleHTTPRequestHandler):
    gets = []

    def do_GET(self):
        Counting.gets.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def serve(directory):
    handler = lambda *a, **kw: Counting(*a, directory=directory, **kw)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def one_download_for_all_units(bindir):
    with running_site(bindir, RACK) as site:
        srv = serve(site.dir)
        try:
            ipsw = site.ipsw()
            with open(ipsw, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            url = "http://127.0.0.1:%d/%s" % (srv.server_address[1], os.path.basename(ipsw))
            site.wait_for(lambda: len(site.cli_json("units")["units"]) == 3, 20, "3 units")
            Counting.gets.clear()
            job = site.cli_json("submit", "--agent", "A", "--firmware", url, "--sha256", sha)["job_id"]
            doc = site.wait_job_finished(job, 60)
            check(all(r["state"] == "done" for r in doc["runs"]), "all restored: %s" % doc["runs"])
            check(len(Counting.gets) == 1, "one download for three units: %s" % Counting.gets)
            cached = os.path.join(site.dir, "agent-A", "ipsw", sha + ".ipsw")
            check(os.path.exists(cached), "verified file in the cache under its hash")
            check("fetching_firmware" in site.log("agent-A"), "the runs waited for the firmware")

            bad = site.cli_json("submit", "--ecid", doc["runs"][0]["ecid"], "--firmware",
                                url + "?v=2", "--sha256", "0" * 64)["job_id"]
            doc = site.wait_job_finished(bad, 60)
            run = doc["runs"][0]
            check(run["state"] == "failed" and run["error_class"] == "firmware",
                  "a hash mismatch is a firmware failure: %s" % run)
            check("hash mismatch" in run["error"], "says why: %s" % run["error"])
            check(not site.cli_json("moves")["moves"], "no move for a firmware error")
            check(all(p["strikes"] == 0 for p in site.cli_json("ports")["ports"]), "no strikes")
        finally:
            srv.shutdown()


if __name__ == "__main__":
    main(one_download_for_all_units)

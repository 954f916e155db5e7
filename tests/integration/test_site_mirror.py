"""The site mirror: the controller fetches a job's IPSW once for the whole site and
serves it to every agent over HTTP with Range; agents start fetching when the
job is submitted (prefetch); when the mirror cannot get a file, agents go to the
publisher themselves."""
import json
import os
import signal
import urllib.error
import urllib.request

from harness import Origin, check, main, running_site, sha256_of, simple_rack

RACK = simple_rack(hosts=("A", "B"), ports=3, seed=5)


def http_get(url, headers=None):
    """(status, headers, body) of one GET; HTTP errors are answers too."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def big_ipsw(site):
    path = os.path.join(site.dir, "site_Restore.ipsw")
    with open(path, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 17))
    return path


def cached(site, agent, sha):
    return os.path.exists(os.path.join(site.dir, "agent-" + agent, "ipsw", sha + ".ipsw"))


def one_upstream_download_per_site(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        origin = Origin(site.dir)
        try:
            ipsw = big_ipsw(site)
            sha = sha256_of(ipsw)
            site.wait_for(lambda: len(site.cli_json("units")["units"]) == 6, 20, "6 units")
            job = site.cli_json("submit", "--agent", "A", "--agent", "B", "--firmware",
                                origin.url(ipsw), "--sha256", sha)["job_id"]
            doc = site.wait_job_finished(job, 90)
            check(all(r["state"] == "done" for r in doc["runs"]), "all 6 restored: %s" % doc["runs"])
            check(len(origin.gets) == 1, "the publisher saw one download: %s" % origin.gets)
            check(cached(site, "A", sha) and cached(site, "B", sha), "both agents hold the file")

            status, _, body = http_get(site.mirror + "/ipsw/")
            index = json.loads(body)
            check(status == 200 and index["upstream_downloads"] == 1, "mirror index: %s" % index)
            check([f["state"] for f in index["files"] if f["sha"] == sha] == ["ready"],
                  "the mirror holds it ready: %s" % index["files"])

            with open(ipsw, "rb") as f:
                data = f.read()
            status, hdr, body = http_get(site.mirror + "/ipsw/" + sha, {"Range": "bytes=10-19"})
            check(status == 206 and body == data[10:20], "a range: %s %r" % (status, body))
            check(hdr.get("Content-Range") == "bytes 10-19/%d" % len(data), "Content-Range: %s" % hdr)
            status, _, body = http_get(site.mirror + "/ipsw/" + sha + ".ipsw", {"Range": "bytes=-5"})
            check(status == 206 and body == data[-5:], "the last 5 bytes: %s" % status)
            status, _, body = http_get(site.mirror + "/ipsw/" + sha, {"Range": "bytes=%d-" % (len(data) - 3)})
            check(status == 206 and body == data[-3:], "from an offset to the end: %s" % status)
            status, _, _ = http_get(site.mirror + "/ipsw/" + sha, {"Range": "bytes=%d-" % len(data)})
            check(status == 416, "past the end is 416: %s" % status)
            status, _, body = http_get(site.mirror + "/ipsw/" + sha)
            check(status == 200 and body == data, "the whole file: %s" % status)
            status, _, _ = http_get(site.mirror + "/ipsw/" + "ab" * 32)
            check(status == 404, "a hash no job names is 404: %s" % status)
            status, _, _ = http_get(site.mirror + "/ipsw/../../etc/passwd")
            check(status == 404, "not a hash is 404: %s" % status)
            check(len(origin.gets) == 1, "still one upstream download: %s" % origin.gets)

            # After a restart the mirror trusts its files only after one check: a file
            # damaged meanwhile is fetched again, never served.
            site.kill("flashrackd", signal.SIGTERM)
            kept = os.path.join(site.dir, "mirror", sha + ".ipsw")
            with open(kept, "r+b") as f:  # a byte changed, whatever it was (random data)
                f.seek(1000)
                was = f.read(1)[0]
                f.seek(1000)
                f.write(bytes([was ^ 0xFF]))
            site.start_controller()
            status, hdr, _ = http_get(site.mirror + "/ipsw/" + sha)
            check(status == 503 and hdr.get("Retry-After"), "checked before served: %s" % status)

            def served_again():
                st, _, body = http_get(site.mirror + "/ipsw/" + sha)
                return st == 200 and body == data
            site.wait_for(served_again, 30, "the mirror serves the file again")
            check(len(origin.gets) == 2, "the damaged copy was fetched again: %s" % origin.gets)
            check("does not match its hash" in site.log("flashrackd"), "and the log says why")
        finally:
            origin.close()


def prefetch_on_submit(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        origin = Origin(site.dir)
        try:
            ipsw = big_ipsw(site)
            sha = sha256_of(ipsw)
            # A unit that is not on any port yet: nothing can start, but the file comes.
            job = site.cli_json("submit", "--ecid", "0x1234567", "--firmware", origin.url(ipsw),
                                "--sha256", sha, "--wait")["job_id"]
            site.wait_for(lambda: cached(site, "A", sha) and cached(site, "B", sha), 30,
                          "both agents prefetched the IPSW")
            check(len(origin.gets) == 1, "one upstream download for the site: %s" % origin.gets)
            check(os.path.exists(os.path.join(site.dir, "mirror", sha + ".ipsw")), "mirror has it")
            doc = site.job(job)
            check(doc["jobs"][0]["state"] not in ("done",), "the job still waits for its unit")
            site.cli_json("cancel", str(job))
        finally:
            origin.close()


def agents_read_while_the_mirror_fetches(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        # about 3 s for the file, and its last piece held until the agents were answered:
        # whenever they ask, the mirror has only part of it
        origin = Origin(site.dir, rate=1024 * 1024, hold_end=True)
        try:
            ipsw = big_ipsw(site)
            sha = sha256_of(ipsw)
            site.cli_json("submit", "--ecid", "0x1234567", "--firmware", origin.url(ipsw),
                          "--sha256", sha, "--wait")
            # Both agents are served from the partial file as it grows, not told to wait.
            site.wait_for(lambda: site.cli_json("firmware", "list")["mirror"]["streamed_answers"] >= 2,
                          30, "the agents streamed from the mirror while it fetched")
            check(not (cached(site, "A", sha) or cached(site, "B", sha)),
                  "and they were served before the mirror had the whole file")
            origin.release()
            site.wait_for(lambda: cached(site, "A", sha) and cached(site, "B", sha), 30,
                          "both agents hold the verified file")
            mirror = site.cli_json("firmware", "list")["mirror"]
            check(mirror["busy_answers"] == 0, "nobody was told to wait: %s" % mirror)
            check(len(origin.gets) == 1, "one download from the publisher: %s" % origin.gets)
        finally:
            origin.close()


def agents_go_upstream_when_the_mirror_cannot(bindir):
    with running_site(bindir, RACK, agents=("A", "B")) as site:
        origin = Origin(site.dir, fail_first=1)  # the mirror's fetch gets a 500
        try:
            ipsw = big_ipsw(site)
            sha = sha256_of(ipsw)
            site.wait_for(lambda: len(site.cli_json("units")["units"]) == 6, 20, "6 units")
            job = site.cli_json("submit", "--agent", "A", "--agent", "B", "--firmware",
                                origin.url(ipsw), "--sha256", sha)["job_id"]
            doc = site.wait_job_finished(job, 90)
            check(all(r["state"] == "done" for r in doc["runs"]), "all 6 restored: %s" % doc["runs"])
            check(len(origin.gets) == 3, "mirror failed once, then each agent went upstream: %s"
                  % origin.gets)
            check("the mirror cannot serve it" in site.log("agent-A"), "agent A fell back")
            check("cannot fetch" in site.log("flashrackd"), "the controller says why")
        finally:
            origin.close()


if __name__ == "__main__":
    main(one_upstream_download_per_site, prefetch_on_submit, agents_read_while_the_mirror_fetches,
         agents_go_upstream_when_the_mirror_cannot)

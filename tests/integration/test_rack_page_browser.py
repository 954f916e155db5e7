"""The live rack page in a real headless Chromium (Debian's chromium), driven over the
DevTools protocol on loopback (python3-websocket): the page renders a tile per port with
the rack's labels, the tiles change state as a simulated job runs (the page is loaded
once: the changes come over its event stream), and a screenshot is kept in the build
directory (artifacts/rack-page.png). The page is opened with the operator token in its
URL, so the script passing it on to the event stream is tested too."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

from harness import Failure, Site, check, free_port, main, simple_rack, started

RACK = simple_rack(hosts=("A", "B"), ports=3, time_scale=60)
LABELS = ["A-01", "A-02", "A-03", "B-01", "B-02", "B-03"]
TOKEN = "browser-token-0123456789"


class Browser:
    """Headless Chromium with its DevTools endpoint on a loopback port; no other network
    (every host name but 127.0.0.1 fails to resolve)."""

    def __init__(self, workdir):
        exe = shutil.which("chromium")
        check(exe, "no chromium: deploy/install-deps.sh installs Debian's chromium package")
        self.profile = tempfile.mkdtemp(dir=workdir, prefix="chromium-")
        self.port = free_port()
        argv = [exe, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1100,700", "--user-data-dir=" + self.profile,
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
                "about:blank"]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        self.log = open(os.path.join(workdir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.ws = None
        self.next_id = 0
        try:
            self.ws = websocket.create_connection(self.page_target(), timeout=15, suppress_origin=True)
        except Exception:
            self.close()
            raise

    # Bounded, not timed: a cold Chromium on a loaded 2-core machine (the suite at -j2) has
    # taken over 30 s to open its DevTools endpoint; the test's own limit is 240 s.
    START_S = 120

    def page_target(self):
        deadline = time.monotonic() + self.START_S
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "chromium exited with %s" % self.proc.returncode)
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port, timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            time.sleep(0.2)
        raise Failure("chromium's DevTools endpoint did not come up within %d s" % self.START_S)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                check("error" not in msg, "%s: %s" % (method, msg.get("error")))
                return msg["result"]
        raise Failure("%s: no answer within 30 s" % method)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        check("exceptionDetails" not in r, "%s: %s" % (expr, r.get("exceptionDetails")))
        return r["result"].get("value")

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self):
        if self.ws:
            self.ws.close()
        self.proc.kill()
        self.proc.wait()
        self.log.close()


TILES = ("JSON.stringify([...document.querySelectorAll('li.tile')].map(li => "
         "[li.dataset.label, li.dataset.state, li.innerText]))")


def tiles(browser):
    return json.loads(browser.eval(TILES))


def tiles_follow_a_job(bindir):
    site = Site(bindir, RACK, agents=("A", "B"))
    token = os.path.join(site.dir, "page.token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    site.controller_sets += ["page.token_file=" + token]
    artifacts = os.path.join(os.path.dirname(os.path.abspath(bindir)), "artifacts")
    with started(site):
        site.wait_for(lambda: len(site.cli_json("units")["units"]) == 6, 20, "six units")
        browser = Browser(site.dir)
        try:
            browser.call("Page.enable")
            browser.call("Page.navigate", url="%s/?token=%s" % (site.page, TOKEN))
            site.wait_for(lambda: [t[0] for t in tiles(browser)] == LABELS, 20, "a tile per port, by label")
            first = tiles(browser)
            check(all(t[1] == "present" for t in first), "units plugged in, no job: %s" % first)
            check(all(t[0] in t[2] and "present" in t[2] for t in first),
                  "each tile says its label and state in text: %s" % first)
            check(browser.eval("document.getElementById('status').dataset.live") == "yes", "live")
            hubs = browser.eval("[...document.querySelectorAll('h2')].map(h => h.textContent)")
            check(len(hubs) == 2 and "A" in hubs[0] and "B" in hubs[1], "a row per hub: %s" % hubs)

            job = site.submit("--agent", "A", "--agent", "B")
            seen = {label: {"present"} for label in LABELS}
            shot = False
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                now = tiles(browser)
                for label, state, _ in now:
                    seen[label].add(state)
                if not shot and any(s not in ("present", "done") for _, s, _ in now):
                    browser.screenshot(os.path.join(artifacts, "rack-page-running.png"))
                    shot = True
                if all(s == "done" for _, s, _ in now):
                    break
                time.sleep(0.2)
            final = tiles(browser)
            check(all(t[1] == "done" and "done" in t[2] for t in final), "every tile done: %s" % final)
            check(all(len(s) >= 3 for s in seen.values()), "tiles went through working states: %s" % seen)
            png = browser.screenshot(os.path.join(artifacts, "rack-page.png"))
            check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000, "a screenshot (%d bytes)" % len(png))
            print("screenshots in %s" % artifacts)
        finally:
            browser.close()
        site.wait_job_finished(job, 30)


if __name__ == "__main__":
    main(tiles_follow_a_job)

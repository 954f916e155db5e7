"""`flashrack watch` reads every run once and then, each frame, only the runs that
changed (proto/PROTOCOL.md "watch"): after restores, a unit whose storage fails, and a
cancel of the run still waiting, its last frame is the store's account of the job (what
`status JOB` says), its first frame read every run, and frames in which nothing changed
read none."""
import json
import os
import subprocess
import threading

from harness import RACK_SMALL, check, main, running_site

# Three good phones and one whose storage fails (Status: Disk Failure).
RACK = RACK_SMALL + """
[unit 0x00000000000D15C2]
at = A-04
product_type = iPhone12,1
health = disk
"""
ABSENT = "0x00000000000AB5E7"  # named by the job, never plugged in: waits until cancelled


class Frames:
    """The frames of a running `watch -o json`, read as it prints them (a thread)."""

    def __init__(self, proc):
        self.proc, self.frames = proc, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                self.frames.append(json.loads(line))

    def all(self):
        """Every frame, once watch has ended (its stdout read by the thread alone to its
        end: communicate() would take the last frames from it)."""
        self.proc.wait(timeout=60)
        self.reader.join(20)
        check(not self.reader.is_alive(), "watch's output read to its end")
        err = self.proc.stderr.read()
        check(self.proc.returncode in (0, 1), "watch exit %d: %s" % (self.proc.returncode, err))
        return self.frames


def by_ecid(runs):
    return {r["ecid"]: r for r in runs}


def the_last_frame_is_the_store_and_later_frames_read_only_changes(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= 4,
                      20, "4 units present")
        units = [u["ecid"] for u in site.cli_json("units")["units"]]
        argv = [a for e in units + [ABSENT] for a in ("--ecid", e)]
        job = site.submit("--wait", "--max-attempts", "1", *argv)
        watch = subprocess.Popen([os.path.join(bindir, "flashrack"), "-C", site.clients_ep, "--timeout",
                                  "20", "-o", "json", "watch", str(job), "--interval", "100"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=site.env, stdin=subprocess.DEVNULL)
        try:
            seen = Frames(watch)

            def four_ended():
                runs = site.cli_json("status", str(job))["runs"]
                return sum(r["state"] in ("done", "failed", "hardware_suspect") for r in runs) == 4
            site.wait_for(four_ended, 90, "4 runs ended")
            # nothing changes now until the cancel: a frame reads that, whenever it comes
            after = len(seen.frames)
            site.wait_for(lambda: any(f["changes"] == 0 for f in seen.frames[after:]), 30,
                          "a frame of watch after the four ended that read nothing")
            check(site.cli("cancel", str(job)).returncode == 0, "cancel")
            frames = seen.all()
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
        store = site.cli_json("status", str(job))
        check(len(frames) >= 3, "watch showed %d frames" % len(frames))
        last = frames[-1]
        check(by_ecid(last["runs"]) == by_ecid(store["runs"]),
              "the last frame is not the store:\n%s\n%s" % (last["runs"], store["runs"]))
        check(last["jobs"][0]["state"] == store["jobs"][0]["state"] != "running",
              "jobs: %s / %s" % (last["jobs"], store["jobs"]))
        states = sorted(r["state"] for r in last["runs"])
        check(states.count("done") == 3 and "cancelled" in states, "runs: %s" % states)
        check(frames[0]["changes"] == 5, "the first frame read %d runs, not all 5" % frames[0]["changes"])
        check(any(f["changes"] == 0 for f in frames[1:]),
              "no frame read nothing: %s" % [f["changes"] for f in frames])
        check(all(len(f["runs"]) == 5 for f in frames), "a frame without every run")


if __name__ == "__main__":
    main(the_last_frame_is_the_store_and_later_frames_read_only_changes)

"""flashrack as a service: the daemons put relative paths in the directories systemd
names ($STATE_DIRECTORY, $CACHE_DIRECTORY), and every program prints the one version."""
import os
import subprocess

from harness import RACK_SMALL, Site, check, main, started


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

    def _spawn(self, name, argv):
        here = os.getcwd()
        os.chdir(self.cwd)
        try:
            return super()._spawn(name, argv)
        finally:
            os.chdir(here)


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


if __name__ == "__main__":
    main(versions_agree, relative_paths_land_in_the_systemd_directories)

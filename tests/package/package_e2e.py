"""The three Debian packages, end to end: a Release build of its own (FHS defaults,
/usr prefix) is packaged by CPack; the packages carry library dependencies and
conffiles; dpkg installs them into a scratch root (maintainer scripts run, as on a
host, with DPKG_ROOT set), which creates the flashrack user and the directories;
systemd-analyze verifies the installed units; then the installed programs run from
their installed paths with the installed configuration files (only endpoints, seams
and the engine are overridden: the agent drives the simulator, as on a test bench),
with the directories systemd would give them and CURVE keys made by the installed CLI,
and one unit is restored through the installed CLI; purging removes the configuration.
Usage: package_e2e.py SOURCE_DIR WORK_DIR"""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import RACK_SMALL, START_LIMIT_S, Site, check, main, started  # noqa: E402
from test_units import add_systemd_library  # noqa: E402

SRC, WORK = (os.path.abspath(a) for a in sys.argv[1:3])
sys.argv[1:3] = [WORK]  # main() reads its one argument
BUILD = os.path.join(WORK, "build")
DEBS = os.path.join(WORK, "debs")
ROOT = os.path.join(WORK, "root")
PACKAGES = ("flashrack-controller", "flashrack-agent", "flashrack-cli")


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, **kw)
    check(r.returncode == 0, "%s: exit %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-2000:],
                                                     r.stderr[-2000:]))
    return r


def dpkg(*args):
    env = dict(os.environ, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return run(["dpkg", "--root=" + ROOT, "--force-script-chrootless", "--force-depends",
                "--log=/dev/null"] + list(args), env=env)


def debs():
    return sorted(glob.glob(os.path.join(DEBS, "*.deb")))


def packages_are_built(_):
    # -Werror: the optimizer finds warnings (truncation, uninitialized) a Debug build does not
    run(["cmake", "-S", SRC, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INSTALL_PREFIX=/usr", "-DFR_WERROR=ON",
         "-DFR_FHS_DEFAULTS=ON", "-DFR_TESTS=OFF"])
    run(["cmake", "--build", BUILD, "-j2"])
    shutil.rmtree(DEBS, ignore_errors=True)
    run(["cpack", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", DEBS])
    names = [os.path.basename(d).split("_")[0] for d in debs()]
    check(sorted(names) == sorted(PACKAGES), "the three packages: %s" % names)
    for d in debs():
        depends = run(["dpkg-deb", "-f", d, "Depends"]).stdout
        check("libc6" in depends and "libzmq5" in depends, "%s: library dependencies: %r" % (d, depends))
        ctrl = run(["dpkg-deb", "-I", d]).stdout
        if "flashrack-cli" not in d:
            check("conffiles" in ctrl and "postinst" in ctrl and "postrm" in ctrl, "%s: %s" % (d, ctrl))
            conf = run(["sh", "-c", "dpkg-deb --ctrl-tarfile '%s' | tar xO ./conffiles" % d]).stdout
            check(conf.strip().startswith("/etc/flashrack/") and conf.strip().endswith(".ini"),
                  "%s: conffiles %r" % (d, conf))


def packages_install_into_a_scratch_root(_):
    shutil.rmtree(ROOT, ignore_errors=True)
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"):
        os.makedirs(os.path.join(ROOT, d))
    open(os.path.join(ROOT, "var/lib/dpkg/status"), "w").close()
    dpkg("-i", *debs())
    status = run(["dpkg-query", "--admindir=" + os.path.join(ROOT, "var/lib/dpkg"), "-W",
                  "-f", "${Package} ${Status}\n"]).stdout
    for p in PACKAGES:
        check("%s install ok installed" % p in status, "%s installed: %s" % (p, status))
    for path in ("usr/sbin/flashrackd", "usr/sbin/flashrack-agent", "usr/bin/flashrack",
                 "usr/bin/flashrack-sim", "usr/libexec/flashrack/flashrack-sim-restore",
                 "etc/flashrack/controller.ini", "etc/flashrack/agent.ini"):
        check(os.path.exists(os.path.join(ROOT, path)), "installed: /%s" % path)
    passwd = open(os.path.join(ROOT, "etc/passwd")).read()
    check(any(l.startswith("flashrack:") for l in passwd.splitlines()), "postinst made the user: %r" % passwd)
    for d in ("var/lib/flashrack", "var/cache/flashrack"):
        check(os.path.isdir(os.path.join(ROOT, d)), "postinst made /%s" % d)
    add_systemd_library(ROOT)
    units = ["lib/systemd/system/flashrackd.service", "lib/systemd/system/flashrack-agent.service"]
    r = subprocess.run(["systemd-analyze", "verify", "--root=" + ROOT, "--man=no"] + units,
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and not (r.stdout + r.stderr).strip(), "verify: %s%s" % (r.stdout, r.stderr))


class InstalledSite(Site):
    """A Site of the installed programs and configuration files in ROOT."""

    def __init__(self):
        super().__init__(os.path.join(ROOT, "usr", "bin"), RACK_SMALL)
        self.cwd = os.path.join(self.dir, "cwd")
        os.makedirs(self.cwd)
        state = os.path.join(ROOT, "var/lib/flashrack")
        self.env.update(STATE_DIRECTORY=state, CACHE_DIRECTORY=os.path.join(ROOT, "var/cache/flashrack"))
        # The keys the installed CLI made go where the installed controller.ini looks
        # (keys_dir = keys, in the state directory).
        keys = os.path.join(state, "keys")
        shutil.rmtree(keys, ignore_errors=True)
        shutil.move(self.keys_dir, keys)
        self.keys_dir = keys
        self.env.update(FLASHRACK_KEYS_DIR=keys, FLASHRACK_CONTROLLER_KEY=os.path.join(keys, "controller.key.pub"))

    def start_sim(self):
        self._spawn("sim", [os.path.join(ROOT, "usr/bin/flashrack-sim"), self.rack, "--socket", self.sim_sock])
        self.wait_for(lambda: os.path.exists(self.sim_sock), START_LIMIT_S, "simulator socket")

    def start_controller(self):
        self._spawn("flashrackd", [
            os.path.join(ROOT, "usr/sbin/flashrackd"), "-c", os.path.join(ROOT, "etc/flashrack/controller.ini"),
            "--set", "controller.agents_endpoint=" + self.agents_ep,
            "--set", "controller.clients_endpoint=" + self.clients_ep,
            "--set", "mirror.listen=127.0.0.1:%d" % self.mirror_port, "--set", "page.listen=off"])
        self.wait_for(lambda: self.cli_ok("agents"), START_LIMIT_S, "controller answering")

    def start_agent(self, aid):
        self._spawn("agent-" + aid, [
            os.path.join(ROOT, "usr/sbin/flashrack-agent"), "-c", os.path.join(ROOT, "etc/flashrack/agent.ini"),
            "--set", "agent.id=" + aid, "--set", "agent.controller=" + self.agents_ep,
            "--set", "agent.key=" + self.agent_key(aid),
            "--set", "agent.controller_key=" + self.env["FLASHRACK_CONTROLLER_KEY"],
            "--set", "seams.topology=sim", "--set", "seams.discovery=sim", "--set", "seams.power=sim",
            "--set", "seams.sim_socket=" + self.sim_sock,
            "--set", "engine.path=" + os.path.join(ROOT, "usr/libexec/flashrack/flashrack-sim-restore")])


def installed_programs_restore_a_unit(_):
    site = InstalledSite()
    with started(site):
        units = [u for u in site.cli_json("units")["units"] if u["present"]]
        check(units, "units seen through the installed CLI")
        job = site.submit("--ecid", units[0]["ecid"], "--name", "installed")
        doc = site.wait_job_finished(job, 90)
        check(doc["runs"][0]["state"] == "done", "restored: %s" % doc["runs"])
        att = site.cli_json("report", str(job))["units"][0]["attempts"][0]
        check(att["outcome"] == "success" and att["agent"] == "A", "the record: %s" % att)
    state = os.path.join(ROOT, "var/lib/flashrack")
    check(os.path.exists(os.path.join(state, "flashrack.db")), "the store in /var/lib/flashrack")
    check(os.path.exists(os.path.join(state, "agent-work", "outbox.db")), "the agent's journal there")
    check(os.path.isdir(os.path.join(ROOT, "var/cache/flashrack/ipsw")), "the IPSW cache in /var/cache")
    check(os.listdir(site.cwd) == [], "nothing in the working directory: %s" % os.listdir(site.cwd))
    versions = {run([os.path.join(ROOT, p), "--version"]).stdout.split()[1]
                for p in ("usr/sbin/flashrackd", "usr/sbin/flashrack-agent", "usr/bin/flashrack")}
    check(len(versions) == 1, "one version: %s" % versions)


def purge_removes_configuration(_):
    dpkg("--purge", *PACKAGES)
    for path in ("usr/sbin/flashrackd", "etc/flashrack/controller.ini", "etc/flashrack/agent.ini",
                 "var/lib/flashrack/flashrack.db"):
        check(not os.path.exists(os.path.join(ROOT, path)), "purged: /%s" % path)


if __name__ == "__main__":
    main(packages_are_built, packages_install_into_a_scratch_root, installed_programs_restore_a_unit,
         purge_removes_configuration)

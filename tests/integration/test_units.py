"""The installed systemd units, sysusers.d and tmpfiles.d files are valid: the build
is installed into a scratch root (cmake --install, DESTDIR) next to a copy of the
host's unit library, and systemd's own tools check them there: `systemd-analyze
verify` (which also wants the programs at their ExecStart paths) without a word of
warning, systemd-sysusers creates the flashrack user and group, systemd-tmpfiles the
directories."""
import os
import shutil
import subprocess
import tempfile

from harness import check, main


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, **kw)


def install_into_scratch_root(bindir):
    """Returns (root, prefix): the build installed under root, prefix as configured."""
    build = os.path.dirname(os.path.abspath(bindir))
    root = tempfile.mkdtemp(prefix="fr-units-")
    r = run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=root))
    check(r.returncode == 0, "cmake --install: %s" % r.stderr)
    add_systemd_library(root)
    return root


def add_systemd_library(root):
    """Makes root verifiable by systemd-analyze --root."""
    # systemd-analyze --root resolves everything inside the root: the units the
    # flashrack units depend on, and /bin/kill of ExecReload=.
    os.makedirs(os.path.join(root, "usr", "lib", "systemd"), exist_ok=True)
    os.makedirs(os.path.join(root, "usr", "bin"), exist_ok=True)
    if not os.path.exists(os.path.join(root, "usr", "lib", "systemd", "system", "sysinit.target")):
        shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr", "lib", "systemd", "system"),
                        symlinks=True, dirs_exist_ok=True)
    shutil.copy("/usr/bin/kill", os.path.join(root, "usr", "bin", "kill"))
    for link in ("bin", "lib", "sbin"):
        if not os.path.lexists(os.path.join(root, link)):
            os.symlink("usr/" + link, os.path.join(root, link))


def find(root, name):
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    raise AssertionError("%s not installed under %s" % (name, root))


def units_verify_without_warnings(bindir):
    root = install_into_scratch_root(bindir)
    try:
        units = [find(root, u) for u in ("flashrackd.service", "flashrack-agent.service")]
        for u in units:
            check("/lib/systemd/system/" in u, "unit in a systemd unit directory: %s" % u)
        r = run(["systemd-analyze", "verify", "--root=" + root, "--man=no"] +
                [os.path.relpath(u, root) for u in units])
        check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
              "systemd-analyze verify: exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))
        for u in units:
            text = open(u).read()
            check("Type=notify" in text and "WatchdogSec=" in text and "User=flashrack" in text,
                  "%s: notify, watchdog, user" % u)
        # the engines' keepers outlive a crashed agent, for its next process to take over
        agent_unit = open(units[1]).read()
        check("\nKillMode=process\n" in agent_unit, "the agent's unit leaves the engines' keepers alone")
        # A unit verify would reject must make the test fail: a program not installed.
        prog = find(root, "flashrackd")
        os.rename(prog, prog + ".gone")
        r = run(["systemd-analyze", "verify", "--root=" + root, "--man=no", os.path.relpath(units[0], root)])
        check(r.returncode != 0 and "flashrackd" in r.stderr, "verify sees a missing ExecStart")
    finally:
        shutil.rmtree(root)


def sysusers_and_tmpfiles_create_user_and_directories(bindir):
    root = install_into_scratch_root(bindir)
    try:
        os.makedirs(os.path.join(root, "etc"), exist_ok=True)
        sysusers = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                          if "/sysusers.d" in d and f.startswith("flashrack"))
        tmpfiles = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                          if "/tmpfiles.d" in d and f.startswith("flashrack"))
        check(len(sysusers) == 2 and len(tmpfiles) == 2, "one of each per daemon: %s %s" % (sysusers, tmpfiles))
        r = run(["systemd-sysusers", "--root=" + root] + sysusers)
        check(r.returncode == 0, "systemd-sysusers: %s" % r.stderr)
        passwd = open(os.path.join(root, "etc", "passwd")).read()
        group = open(os.path.join(root, "etc", "group")).read()
        check(any(l.startswith("flashrack:") and l.endswith(":/var/lib/flashrack:/usr/sbin/nologin")
                  for l in passwd.splitlines()), "the system user: %r" % passwd)
        check(any(l.startswith("flashrack:") for l in group.splitlines()), "the group: %r" % group)
        uid = int([l for l in passwd.splitlines() if l.startswith("flashrack:")][0].split(":")[2])
        check(uid < 1000, "a system uid: %d" % uid)
        r = run(["systemd-tmpfiles", "--root=" + root, "--create"] + tmpfiles)
        check(r.returncode == 0 and "Duplicate" not in r.stderr, "systemd-tmpfiles: %s" % r.stderr)
        for d in ("var/lib/flashrack", "var/cache/flashrack", "run/flashrack"):
            st = os.stat(os.path.join(root, d))
            check(st.st_uid == uid and oct(st.st_mode & 0o777) == "0o750", "%s: owner and mode" % d)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main(units_verify_without_warnings, sysusers_and_tmpfiles_create_user_and_directories)

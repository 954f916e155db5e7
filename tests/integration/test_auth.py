"""Authenticated peers: the controller starts only with keys (or in an explicit
insecure mode that binds loopback only), agents' key settings are checked at start,
a viewer's key reads but cannot change anything, and a key nobody authorized gets
no answer at all."""
import os
import signal
import subprocess
import tempfile

from harness import RACK_SMALL, Site, check, free_port, main, running_site


def run_bin(bindir, *argv, env=None, timeout=20):
    return subprocess.run([os.path.join(bindir, argv[0])] + list(argv[1:]), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def controller_needs_keys(bindir):
    d = tempfile.mkdtemp(prefix="fr-auth-")
    store = os.path.join(d, "never.db")
    base = ["flashrackd", "--set", "controller.store=" + store,
            "--set", "security.keys_dir=" + os.path.join(d, "keys")]
    r = run_bin(bindir, *base)
    check(r.returncode == 1, "no keys: exit %d" % r.returncode)
    check("no keys" in r.stderr and "controller.key" in r.stderr and "insecure = loopback" in r.stderr,
          "says what is missing and how to make it: %r" % r.stderr)
    check(not os.path.exists(store), "no store created")

    for key, value in (("controller.agents_endpoint", "tcp://0.0.0.0:%d" % free_port()),
                       ("controller.clients_endpoint", "tcp://10.1.2.3:7711"),
                       ("mirror.listen", "*:7712")):
        r = run_bin(bindir, *(base + ["--set", "security.insecure=loopback", "--set",
                                      "%s=%s" % (key, value)]))
        check(r.returncode == 2 and "insecure = loopback" in r.stderr and value in r.stderr,
              "insecure mode refuses %s=%s: exit %d, %r" % (key, value, r.returncode, r.stderr))
        check(not os.path.exists(store), "no store created (%s)" % key)
    r = run_bin(bindir, *(base + ["--set", "security.insecure=maybe"]))
    check(r.returncode == 2 and "[security] insecure" in r.stderr, "bad value named: %r" % r.stderr)

    # a broken allowlist file stops the start, naming the file and line
    os.makedirs(os.path.join(d, "keys", "operators"))
    r = run_bin(bindir, "flashrack", "keys", "gen", os.path.join(d, "keys", "controller.key"))
    check(r.returncode == 0, "keys gen: %r" % r.stderr)
    with open(os.path.join(d, "keys", "operators", "eve.pub"), "w") as f:
        f.write("# eve\npublic = not-a-key\n")
    r = run_bin(bindir, *base)
    check(r.returncode == 1 and "eve.pub:2" in r.stderr and "Z85" in r.stderr,
          "bad allowlist file named: %r" % r.stderr)
    check(not os.path.exists(store), "no store created (bad allowlist)")


def insecure_mode_says_so(bindir):
    with running_site(bindir, RACK_SMALL, curve=False) as site:
        check("INSECURE MODE" in site.log("flashrackd"), "the log says so")
        check(site.cli_json("agents")["security"]["mode"] == "insecure-loopback", "and the status")
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
        site.kill("flashrackd", signal.SIGTERM)
        site.start_controller()
        check(site.log("flashrackd").count("INSECURE MODE") == 2, "at every start")


def agent_key_settings_checked(bindir):
    site = Site(bindir, RACK_SMALL)
    ini = site.agent_ini("A")
    with open(ini) as f:
        text = f.read()
    cases = (("controller_key = ", "controller_key = " + os.path.join(site.dir, "nope.pub") + "\n#",
              "[agent] controller_key: cannot open"),
             ("key = ", "key = " + site.env["FLASHRACK_CONTROLLER_KEY"] + "\n#",
              "[agent] key: %s: expected a keypair" % site.env["FLASHRACK_CONTROLLER_KEY"]),
             ("controller_key = ", "#", "[agent] controller_key: expected a file"))
    for old, new, want in cases:
        with open(ini, "w") as f:
            f.write(text.replace(old, new, 1))
        r = run_bin(bindir, "flashrack-agent", "-c", ini, timeout=30)
        check(r.returncode != 0 and want in r.stderr, "agent: want %r, got exit %d, %r"
              % (want, r.returncode, r.stderr))


def roles_and_unknown_keys(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
        ecid = site.cli_json("units")["units"][0]["ecid"]
        viewer = dict(site.env, FLASHRACK_KEY=site.add_operator(
            "vic", "viewer", os.path.join(site.dir, "viewer.key")))
        env, site.env = site.env, viewer
        try:
            check(site.cli("agents").returncode == 0, "a viewer reads")
            for args in (("submit", "--firmware", site.ipsw(), "--ecid", ecid), ("cancel", "1"),
                         ("ports", "clear", "A-01"), ("firmware", "refresh")):
                r = site.cli(*args)
                check(r.returncode == 1 and "not permitted" in r.stderr and "role viewer" in r.stderr,
                      "viewer %s: exit %d, %r" % (args[0], r.returncode, r.stderr))
        finally:
            site.env = env
        sec = site.cli_json("agents")["security"]
        check(sec["requests_refused"] == 4, "four refusals counted: %s" % sec)
        check(site.cli_json("status")["jobs"] == [], "and nothing was submitted")

        # a key nobody authorized: the handshake is refused, the CLI hears nothing
        stranger = os.path.join(site.dir, "stranger.key")
        site.keys("gen", stranger)
        env, site.env = site.env, dict(site.env, FLASHRACK_KEY=stranger)
        try:
            r = site.cli("agents", timeout=1)
            check(r.returncode == 3, "unknown key: exit %d" % r.returncode)
        finally:
            site.env = env
        sec = site.cli_json("agents")["security"]
        check(sec["handshakes_refused"] >= 1, "the handshake refusal is counted: %s" % sec)
        check("refused" in site.log("flashrackd"), "refusals logged (one line a second at most)")


if __name__ == "__main__":
    main(controller_needs_keys, insecure_mode_says_so, agent_key_settings_checked,
         roles_and_unknown_keys)

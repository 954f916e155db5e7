"""A value too long for the buffer it goes into is refused at once with the option and
the limit, and nothing is written or asked: a path cut to fit names another file (`keys
list -d` listed a cut directory's keys, `keys authorize -d` wrote there, `record --out`
named cut files), and an error that quotes a long value cut its own reason off."""
import os
import subprocess
import tempfile

from harness import check, free_port, main


def run_cli(bindir, *argv, env=None):
    return subprocess.run([os.path.join(bindir, "flashrack")] + list(argv), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)


def padded(d, total, leaf):
    """d/././.../leaf: the file leaf in d by a path of total bytes (total - 1 when the
    parity asks), any length under PATH_MAX without deep directories."""
    pad = total - len(d) - 1 - len(leaf)
    check(pad >= 0, "pad %d" % pad)
    return d + "/" + "./" * (pad // 2) + leaf


def listing(d):
    return sorted(os.listdir(d))


def keys_gen_file_too_long_for_its_pub(bindir):
    d = tempfile.mkdtemp(prefix="fr-long-")
    # FILE fits (4093 bytes) but FILE.pub (4097) does not: refused before any write, and
    # the message keeps its reason (it was cut after 1 KiB of the path, the reason lost)
    path = padded(d, 4093, "agent.key")
    if len(path) == 4092:
        path = padded(d, 4093, "agents.key")
    check(len(path) == 4093, "path is %d bytes" % len(path))
    r = run_cli(bindir, "keys", "gen", path)
    check(r.returncode == 2, "exit %d: %r" % (r.returncode, r.stderr))
    check("FILE:" in r.stderr and "longer than 4095 bytes" in r.stderr,
          "names the argument and the limit: %r" % r.stderr[:300])
    check(listing(d) == [], "nothing written: %r" % listing(d))
    # a FILE with room for its .pub is written whole, both halves
    ok = os.path.join(d, "short.key")
    r = run_cli(bindir, "keys", "gen", ok)
    check(r.returncode == 0 and listing(d) == ["short.key", "short.key.pub"],
          "a normal FILE works: %r %r" % (r.stderr, listing(d)))


def keys_dir_too_long_is_refused(bindir):
    d = tempfile.mkdtemp(prefix="fr-long-")
    os.makedirs(os.path.join(d, "keys", "agents"))
    key = os.path.join(d, "a.key")
    check(run_cli(bindir, "keys", "gen", key).returncode == 0, "keys gen")
    long_dir = padded(d, 4030, "keys")
    for verb in (["list"], ["authorize", "--agent", "a1", key + ".pub"], ["revoke", "--agent", "a1"]):
        r = run_cli(bindir, "keys", *verb, "-d", long_dir)
        check(r.returncode == 2, "%s: exit %d: %r" % (verb[0], r.returncode, r.stderr))
        check("-d (or $FLASHRACK_KEYS_DIR): expected a directory path of at most 4017 bytes" in r.stderr,
              "%s: names -d and the limit: %r" % (verb[0], r.stderr))
    check(listing(os.path.join(d, "keys", "agents")) == [], "nothing authorized")
    env = dict(os.environ, FLASHRACK_KEYS_DIR=long_dir)
    r = run_cli(bindir, "keys", "list", env=env)
    check(r.returncode == 2 and "$FLASHRACK_KEYS_DIR" in r.stderr, "from the environment too: %r" % r.stderr)


def record_out_too_long_is_refused_before_asking(bindir):
    d = tempfile.mkdtemp(prefix="fr-long-")
    out = padded(d, 4000, "recs")
    # no controller listens there: the refusal comes before any request
    r = run_cli(bindir, "-C", "tcp://127.0.0.1:%d" % free_port(), "record", "1", "--out", out)
    check(r.returncode == 2, "exit %d: %r" % (r.returncode, r.stderr))
    check("--out: expected a directory path of at most 3967 bytes" in r.stderr,
          "names --out and the limit: %r" % r.stderr)
    check(listing(d) == [], "no directory made: %r" % listing(d))


def client_key_paths_are_read_whole(bindir):
    d = tempfile.mkdtemp(prefix="fr-long-")
    key = os.path.join(d, "op.key")
    check(run_cli(bindir, "keys", "gen", key).returncode == 0, "keys gen")
    # 3000 bytes each: they were cut at 2047 and the CLI looked for a key that is not there
    env = dict(os.environ, FLASHRACK_KEY=padded(d, 3000, "op.key"),
               FLASHRACK_CONTROLLER_KEY=padded(d, 3000, "op.key.pub"))
    endpoint = "tcp://127.0.0.1:%d" % free_port()
    r = run_cli(bindir, "-C", endpoint, "agents", env=env)
    check("no key at" not in r.stderr and "no controller public key" not in r.stderr,
          "both keys found: %r" % r.stderr[:300])
    check(r.returncode == 3 and "did not answer" in r.stderr,
          "it got as far as asking (nobody listens): exit %d, %r" % (r.returncode, r.stderr[:300]))
    # longer than any path: refused, naming the variable and the limit
    env["FLASHRACK_KEY"] = "/" + "x" * 4100
    r = run_cli(bindir, "-C", endpoint, "agents", env=env)
    check(r.returncode == 2 and "$FLASHRACK_KEY (or $HOME/.config/flashrack/key): expected a path "
          "of at most 4095 bytes" in r.stderr, "too long: exit %d, %r" % (r.returncode, r.stderr[:300]))


if __name__ == "__main__":
    main(keys_gen_file_too_long_for_its_pub, keys_dir_too_long_is_refused,
         record_out_too_long_is_refused_before_asking, client_key_paths_are_read_whole)

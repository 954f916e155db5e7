"""The harness's port claims (harness.claim_port) leave no lock files behind: a test
process removes the files of the ports it claimed when it exits, while it still holds
their locks, and the first claim of a process removes the files no process holds (those
of a test killed before it could). A file another process holds is never removed.
Each child here is a real test process (it imports the harness) on a lock directory of
its own."""
import fcntl
import os
import select
import subprocess
import sys
import tempfile

from harness import check, main

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = """
import sys
sys.path.insert(0, %r)
import harness
print(" ".join(str(harness.free_port()) for _ in range(3)), flush=True)
sys.stdin.readline()
""" % HERE


def claimer(locks):
    """A child test process that has claimed three ports (their numbers) and waits for a
    line on its stdin before it exits."""
    env = dict(os.environ, FLASHRACK_TEST_PORT_LOCKS=locks)
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env)
    ready, _, _ = select.select([p.stdout], [], [], 60)
    line = p.stdout.readline() if ready else ""
    if not line:
        p.kill()
        p.wait(timeout=20)
    check(line, "the child claimed no ports")
    return p, [int(x) for x in line.split()]


def files(locks):
    return sorted(os.listdir(locks))


def names(ports):
    return sorted("%d.lock" % p for p in ports)


def held_by_another(path):
    """Whether another process holds path's lock."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def test_claims_are_removed_at_exit(bindir):
    with tempfile.TemporaryDirectory() as locks:
        p, ports = claimer(locks)
        check(files(locks) == names(ports), "while it runs, a file per claimed port: %s" % files(locks))
        check(all(held_by_another(os.path.join(locks, n)) for n in names(ports)),
              "every claimed port's file is locked by the child")
        p.communicate("\n", timeout=60)
        check(p.returncode == 0, "the child exited cleanly (%s)" % p.returncode)
        check(files(locks) == [], "no file left after it exits: %s" % files(locks))


def test_files_of_killed_tests_are_swept_and_held_ones_kept(bindir):
    with tempfile.TemporaryDirectory() as locks:
        killed, dead_ports = claimer(locks)
        killed.kill()
        killed.wait(timeout=20)
        check(files(locks) == names(dead_ports), "a killed child leaves its files: %s" % files(locks))
        alive, live_ports = claimer(locks)
        check(files(locks) == names(live_ports),
              "the next test process removed the files nobody holds: %s" % files(locks))
        other, other_ports = claimer(locks)
        check(files(locks) == names(live_ports + other_ports),
              "a third keeps the files the second still holds: %s" % files(locks))
        for p in (alive, other):
            p.communicate("\n", timeout=60)
        check(files(locks) == [], "no file left after both exit: %s" % files(locks))


if __name__ == "__main__":
    main(test_claims_are_removed_at_exit, test_files_of_killed_tests_are_swept_and_held_ones_kept)

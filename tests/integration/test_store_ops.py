"""The store under operators' hands: a second flashrackd on a live store is refused at
once (exit 2) and changes nothing; a flashrackd that cannot bind starts no epoch; and
`flashrackd --backup FILE` copies a live store (WAL included) into one that opens with
every job."""
import os
import sqlite3
import subprocess

from harness import RACK_SMALL, check, free_port, main, running_site


def epoch_of(store):
    db = sqlite3.connect("file:%s?mode=ro" % store, uri=True)
    try:
        return db.execute("SELECT value FROM meta WHERE key = 'controller_epoch'").fetchone()[0]
    finally:
        db.close()


def flashrackd(site, *sets, extra=()):
    argv = [os.path.join(site.bin, "flashrackd")] + list(extra)
    for kv in ("security.keys_dir=" + site.keys_dir,) + sets:
        argv += ["--set", kv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def second_controller_and_backup(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        site.wait_for(lambda: len(site.cli_json("units")["units"]) >= 4, 20, "units")
        job = site.submit("--agent", "A")
        before = epoch_of(site.store)
        r = flashrackd(site, "controller.store=" + site.store,
                       "controller.agents_endpoint=tcp://127.0.0.1:%d" % free_port(),
                       "controller.clients_endpoint=tcp://127.0.0.1:%d" % free_port(),
                       "mirror.listen=off")
        check(r.returncode == 2, "second flashrackd exit %d: %s" % (r.returncode, r.stderr))
        check(site.store in r.stderr and "in use" in r.stderr, "it says why: %r" % r.stderr)
        check(epoch_of(site.store) == before, "the live store's epoch is untouched")
        check(site.cli_ok("agents"), "the first one still answers")

        # a controller that cannot bind (the live one's endpoint) starts no epoch
        other = os.path.join(site.dir, "other.db")
        r = flashrackd(site, "controller.store=" + other,
                       "controller.agents_endpoint=" + site.agents_ep, "mirror.listen=off")
        check(r.returncode != 0 and "cannot listen" in r.stderr, "bind failure: %r" % r.stderr)
        check(epoch_of(other) == 0, "no epoch started by a controller that never served")

        backup = os.path.join(site.dir, "backup.db")
        r = flashrackd(site, "controller.store=" + site.store, extra=("--backup", backup))
        check(r.returncode == 0, "backup exit %d: %s" % (r.returncode, r.stderr))
        db = sqlite3.connect("file:%s?mode=ro" % backup, uri=True)
        ids = [row[0] for row in db.execute("SELECT id FROM jobs")]
        db.close()
        check(ids == [job], "the backup has the job: %s" % ids)
        r = flashrackd(site, "controller.store=" + site.store,
                       extra=("--backup", "/nonexistent-dir/b.db"))
        check(r.returncode == 1 and "/nonexistent-dir/b.db" in r.stderr, "bad target: %r" % r.stderr)


if __name__ == "__main__":
    main(second_controller_and_backup)

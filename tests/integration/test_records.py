"""The signed sanitization record of each unit run: written once after the run ends (a
restore, a cancel), with the fields an auditor needs; pending, and said so, until it is;
written at the next start when the controller was killed in between; exported as JSON
Lines, CSV and a one-page PDF; checked offline by `flashrack record verify` (and by
openssl itself), which fails on a changed byte or another key; immutable in the store."""
import csv
import io
import json
import re
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

from harness import RACK_SMALL, check, main, running_site


def present(site, n):
    site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= n,
                  20, "%d units present" % n)
    return [u for u in site.cli_json("units")["units"] if u["present"]]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kw)


def verify(site, path, *extra):
    return run([os.path.join(site.bin, "flashrack"), "record", "verify", path] + list(extra), env=site.env)


def records_of(site, what):
    """Every record of what, once none is pending (written after the run's commit)."""
    for _ in range(100):
        r = site.cli("record", what, "-o", "json")
        if "pending" not in r.stderr:
            break
        check(re.search(r"pending \(the runs? ended; (its record is|their records are) being signed\)|"
                        r"are pending: \d+ runs? ended", r.stderr), "says what is pending: %s" % r.stderr)
        time.sleep(0.1)
    check(r.returncode == 0, "record %s: exit %d: %s" % (what, r.returncode, r.stderr))
    lines = [l for l in r.stdout.split("\n") if l]
    return lines, [json.loads(l)["record"] for l in lines]


def check_fields(rec, ecid, model):
    dev = rec["device"]
    check(dev["manufacturer"] == "Apple" and dev["model"] == model and dev["ecid"] == ecid,
          "device: %s" % dev)
    check(dev["marketing_name"] == {"iPhone12,1": "iPhone 11", "iPhone13,2": "iPhone 12"}[model],
          "marketing name: %s" % dev)
    check(dev["chip_id"].startswith("0x") and dev["board_id"].startswith("0x"), "hex ids: %s" % dev)
    check(rec["media_type"] == "flash memory", "media type")
    check(rec["sanitization"]["method"] == "Purge \u2014 cryptographic erase by erase-restore",
          "method: %s" % rec["sanitization"])
    check(rec["operator"] == "operator", "operator is the submitting key's name: %r" % rec["operator"])
    check(rec["site"] == "Depot 7" and rec["destination"] == "resale", "site, destination")
    check(rec["station"] == "A" and rec["port"].startswith("A-"), "station and port: %s %s"
          % (rec["station"], rec["port"]))
    check(rec["result"] == "sanitized" and rec["state"] == "done", "result: %s" % rec["result"])
    check(rec["started"] and rec["ended"] and rec["duration_s"] >= 0, "times")
    check(len(rec["attempts"]) >= 1 and rec["attempts"][-1]["outcome"] == "success",
          "attempts: %s" % rec["attempts"])
    tools = rec["tools"]
    check(tools["flashrack"].startswith("flashrackd ") and tools["agent"].startswith("flashrack-agent "),
          "tools: %s" % tools)
    check(tools["engine"] and tools["libimobiledevice"], "engine and libimobiledevice versions: %s" % tools)
    check(rec["verification"]["result"].startswith("not verified"), "says plainly it is not verified")


def openssl_agrees(site, line, tmp):
    """openssl, which knows nothing of flashrack, checks the signature over the record's
    canonical JSON (sorted keys, no whitespace) with the exported public key."""
    whole = json.loads(line)
    canon = json.dumps(whole["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    check(json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == line,
          "the stored line is canonical JSON")
    msg, sig = os.path.join(tmp, "msg"), os.path.join(tmp, "sig")
    with open(msg, "wb") as f:
        f.write(canon.encode())
    import base64
    with open(sig, "wb") as f:
        f.write(base64.b64decode(whole["signature"]["value"]))
    pub = os.path.join(tmp, "exported.pub")
    r = site.cli("record", "pubkey")
    check(r.returncode == 0 and "BEGIN PUBLIC KEY" in r.stdout, "record pubkey: %s" % r.stderr)
    with open(pub, "w") as f:
        f.write(r.stdout)
    r = run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg,
             "-sigfile", sig])
    check(r.returncode == 0 and "Verified Successfully" in r.stdout, "openssl: %s %s" % (r.stdout, r.stderr))
    return pub


def restored_units_have_signed_records(bindir):
    sets = ("records.site=Depot 7", "records.destination=resale")
    tmp = tempfile.mkdtemp(prefix="fr-rec-")
    try:
        with running_site(bindir, RACK_SMALL, controller_sets=sets) as site:
            units = present(site, 4)[:2]
            job = site.submit("--ecid", ",".join(u["ecid"] for u in units))
            site.wait_job_finished(job, 60)
            lines, recs = records_of(site, str(job))
            check(len(recs) == 2, "one record per unit: %d" % len(recs))
            for u in units:
                rec = [r for r in recs if r["device"]["ecid"] == u["ecid"]][0]
                check_fields(rec, u["ecid"], u["product_type"])
            # by unit, across jobs
            _, by_unit = records_of(site, units[0]["ecid"])
            check(len(by_unit) == 1 and by_unit[0]["device"]["ecid"] == units[0]["ecid"], "record ECID")

            # exported files verify offline; a changed byte or another key does not
            out = os.path.join(tmp, "out")
            r = site.cli("record", str(job), "-o", "json", "--out", out)
            check(r.returncode == 0, "record --out: %s" % r.stderr)
            files = sorted(os.listdir(out))
            check(files == sorted("%d-%s.json" % (job, u["ecid"]) for u in units), "files: %s" % files)
            one = os.path.join(out, files[0])
            r = verify(site, one)
            check(r.returncode == 0 and "valid" in r.stdout, "verify: %d %s %s" % (r.returncode, r.stdout, r.stderr))
            text = open(one, encoding="utf-8").read()
            tampered = os.path.join(tmp, "tampered.json")
            with open(tampered, "w", encoding="utf-8") as f:
                f.write(text.replace('"manufacturer":"Apple"', '"manufacturer":"Apqle"'))
            r = verify(site, tampered)
            check(r.returncode == 1 and "NOT VALID" in r.stdout and "altered" in r.stdout,
                  "tampered: %d %s" % (r.returncode, r.stdout))
            other = os.path.join(tmp, "other.pem")
            run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", other])
            r = verify(site, one, "--pubkey", other)
            check(r.returncode == 1 and "signed by key" in r.stdout, "another key: %s" % r.stdout)
            r = verify(site, os.path.join(tmp, "missing.json"))
            check(r.returncode == 2 and "missing.json" in r.stderr, "unreadable: %s" % r.stderr)

            openssl_agrees(site, lines[0], tmp)

            # CSV (RFC 4180) and PDF
            r = subprocess.run([os.path.join(site.bin, "flashrack"), "-C", site.clients_ep, "record",
                                str(job), "-o", "csv"], capture_output=True, env=site.env, timeout=30,
                               stdin=subprocess.DEVNULL)
            check(r.returncode == 0 and r.stdout.count(b"\r\n") == 3, "csv, CRLF: %s" % r.stderr)
            rows = list(csv.DictReader(io.StringIO(r.stdout.decode(), newline="")))
            check(len(rows) == 2 and {x["ecid"] for x in rows} == {u["ecid"] for u in units},
                  "csv rows: %s" % rows)
            check(all(x["result"] == "sanitized" and x["method"].startswith("Purge") for x in rows),
                  "csv values")
            pdfs = os.path.join(tmp, "pdf")
            r = site.cli("record", str(job), "-o", "pdf", "--out", pdfs)
            check(r.returncode == 0, "pdf: %s" % r.stderr)
            for name in os.listdir(pdfs):
                info = run(["pdfinfo", os.path.join(pdfs, name)])
                check(info.returncode == 0 and re.search(r"^Pages:\s+1$", info.stdout, re.M),
                      "%s is a 1-page PDF: %s" % (name, info.stdout))
            check(len(os.listdir(pdfs)) == 2, "one PDF per unit")
            r = site.cli("record", str(job), "-o", "pdf")
            check(r.returncode == 2 and "--out" in r.stderr, "pdf needs --out")
            r = site.cli("record", "999")
            check(r.returncode == 4, "no records for job 999: exit %d" % r.returncode)
            r = site.cli("agents", "-o", "pdf")
            check(r.returncode == 2, "-o pdf is refused where it is not offered")
        # immutable: the store refuses to change or drop a record
        db = sqlite3.connect(site.store)
        for sql in ("UPDATE records SET line = 'x'", "DELETE FROM records"):
            try:
                db.execute(sql)
                db.commit()
                raise AssertionError("the store allowed: " + sql)
            except sqlite3.DatabaseError as e:
                check("immutable" in str(e), "%s: %s" % (sql, e))
        check(db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2, "records intact")
        db.close()
    finally:
        shutil.rmtree(tmp)


def cancelled_run_has_its_record(bindir):
    with running_site(bindir, RACK_SMALL) as site:
        job = site.submit("--ecid", "0x1", "--wait")
        r = site.cli("record", str(job))
        check(r.returncode == 4, "no record while the run is open: %d" % r.returncode)
        check(site.cli("cancel", str(job)).returncode == 0, "cancel")
        _, recs = records_of(site, str(job))
        check(len(recs) == 1, "one record: %s" % recs)
        rec = recs[0]
        check(rec["state"] == "cancelled" and rec["result"] == "not sanitized" and rec["attempts"] == [],
              "cancelled record: %s" % rec)
        # the key was made at first start, private
        key = os.path.join(site.keys_dir, "record.key")
        check(os.stat(key).st_mode & 0o777 == 0o600, "record.key is 0600")


def large_cancel(site, n):
    """A finished job of 2 units, then a cancel of n runs: (its job, the cancelled job)."""
    units = present(site, 2)[:2]
    done = site.submit("--ecid", ",".join(u["ecid"] for u in units))
    site.wait_job_finished(done, 60)
    waiting = site.submit("--ecid", ",".join("0x%x" % (0xA0000 + i) for i in range(n)), "--wait")
    check(site.cli("cancel", str(waiting)).returncode == 0, "cancel")
    return done, waiting


def counts(site):
    """(ended runs, records stored), read from the store file."""
    db = sqlite3.connect(site.store)
    ended = db.execute("SELECT COUNT(*) FROM unit_runs WHERE state IN"
                       " ('done','failed','cancelled','hardware_suspect')").fetchone()[0]
    written = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    db.close()
    return ended, written


def one_verifying_record_each(site, tmp, jobs):
    """Every run in the store has exactly one record, and each job's records verify."""
    db = sqlite3.connect(site.store)
    rows = db.execute("SELECT r.job, r.ecid, COUNT(d.ecid) FROM unit_runs r LEFT JOIN records d"
                      " ON d.job = r.job AND d.ecid = r.ecid GROUP BY r.job, r.ecid").fetchall()
    db.close()
    check(len(rows) == sum(c for _, c in jobs) and all(c == 1 for _, _, c in rows),
          "exactly one record per ended run: %s" % [r for r in rows if r[2] != 1][:5])
    recs = []
    for job, count in jobs:
        lines, recs = records_of(site, str(job))
        check(len(lines) == count, "job %d: %d records" % (job, len(lines)))
        path = os.path.join(tmp, "%d.jsonl" % job)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        r = verify(site, path)
        check(r.returncode == 0 and r.stdout.count(": valid: ") == count,
              "job %d: every record verifies: %s" % (job, r.stdout[-400:]))
    return recs


def killed_between_the_end_and_its_record(bindir):
    """SIGKILL while records are being written after a large cancel's commit: the next start
    writes every missing one before it serves, each ended run has exactly one record, and
    each verifies."""
    n = 500
    tmp = tempfile.mkdtemp(prefix="fr-rec-")
    try:
        with running_site(bindir, RACK_SMALL) as site:
            done, waiting = large_cancel(site, n)
            site.kill("flashrackd")  # SIGKILL: whatever was still due is lost with the process
            ended, written = counts(site)
            check(ended == n + 2, "every run ended and committed before the kill: %d" % ended)
            # the cancel's commit came before its reply; its 500 records a batch a turn after
            check(written < ended, "the kill left records to write (%d of %d written)" % (written, ended))
            site.start_controller()
            check("sanitization records still missing" in site.log("flashrackd"), "the start said so")
            recs = one_verifying_record_each(site, tmp, ((done, 2), (waiting, n)))
            check(all(r["state"] == "cancelled" for r in recs), "the cancelled runs' records")
    finally:
        shutil.rmtree(tmp)


def stopped_while_signing(bindir):
    """SIGTERM right after a large cancel's commit, with its records being signed on the
    thread pool a batch at a time: the stop takes the batch back (or cancels it) and writes
    the rest before it exits, cleanly; after a restart every ended run still has exactly one
    record, and each verifies. (That a batch is on the pool at the stop is made certain in
    test_records' unit test; here the real process and signal.)"""
    n = 500
    tmp = tempfile.mkdtemp(prefix="fr-rec-")
    try:
        with running_site(bindir, RACK_SMALL) as site:
            done, waiting = large_cancel(site, n)
            site.kill("flashrackd", signal.SIGTERM)
            check(site.procs["flashrackd"].returncode == 0, "a clean stop: %s" % site.procs["flashrackd"].returncode)
            ended, written = counts(site)
            check(ended == n + 2 and written == ended, "the stop wrote every record: %d of %d" % (written, ended))
            site.start_controller()
            one_verifying_record_each(site, tmp, ((done, 2), (waiting, n)))
            check("sanitization records still missing" not in site.log("flashrackd"), "none left to write")
    finally:
        shutil.rmtree(tmp)


def keys_gen_makes_the_record_key(bindir):
    tmp = tempfile.mkdtemp(prefix="fr-rec-")
    try:
        flashrack = os.path.join(bindir, "flashrack")
        key = os.path.join(tmp, "record.key")
        r = run([flashrack, "keys", "gen", "--record", key])
        check(r.returncode == 0 and os.stat(key).st_mode & 0o777 == 0o600, "keys gen --record: %s" % r.stderr)
        r = run([flashrack, "keys", "gen", "--record", key])
        check(r.returncode == 1 and "not replaced" in r.stderr, "no silent replacement: %s" % r.stderr)
        r = run([flashrack, "record", "pubkey", "--keys-dir", tmp])
        check(r.returncode == 0 and r.stdout == open(key + ".pub").read(), "record pubkey: %s" % r.stderr)
        r = run(["openssl", "pkey", "-in", key, "-noout", "-text"])
        check(r.returncode == 0 and "ED25519" in r.stdout, "an Ed25519 PEM key openssl reads")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main(restored_units_have_signed_records, cancelled_run_has_its_record,
         killed_between_the_end_and_its_record, stopped_while_signing, keys_gen_makes_the_record_key)

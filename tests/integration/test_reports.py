"""Reports and lists for people and spreadsheets: the report shows per attempt the
firmware installed (iOS version, build, SHA-256 from the catalog) and its duration, and
names the same log file the agent wrote (job, unit, try); report, units, ports and status
speak RFC 4180 CSV; units and ports take --state, --model, --quarantined; the offline
firmware verbs follow the JSON convention (booleans, hex chip and board ids)."""
import csv
import io
import json
import os
import plistlib
import shutil
import subprocess
import tempfile
import zipfile

from harness import RACK_SMALL, check, main, running_site

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "firmware")
RACK_CATALOG = RACK_SMALL.replace("product_types = iPhone12,1 iPhone13,2", "product_types = iPhone11,2")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, **kw)


def csv_of(site, *args):
    """The CLI's CSV as rows, checking RFC 4180's CRLF line ends on the raw bytes."""
    r = run([os.path.join(site.bin, "flashrack"), "-C", site.clients_ep] + list(args) + ["-o", "csv"],
            env=site.env)
    check(r.returncode in (0, 1), "%s -o csv: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    text = r.stdout.decode()
    check(text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "%s: CRLF rows" % " ".join(args))
    return list(csv.DictReader(io.StringIO(text, newline="")))


def catalog_site(bindir, tmp):
    """A site whose catalog names the fixture's builds for iPhone11,2 (18.2, 22C152 the
    latest), their URLs moved to a loopback port nothing listens on: the attempt gets its
    build at claim time, and no download ever leaves the host."""
    cat = os.path.join(tmp, "catalog")
    os.makedirs(cat)
    with open(os.path.join(FIXTURES, "ipswme-iPhone11,2.json")) as f:
        doc = json.load(f)
    for fw in doc["firmwares"]:
        fw["url"] = "http://127.0.0.1:9/%s.ipsw" % fw["buildid"]
    with open(os.path.join(cat, "iPhone11,2.json"), "w") as f:
        json.dump(doc, f)
    return running_site(bindir, RACK_CATALOG, controller_sets=("firmware.catalog_dir=" + cat,))


def report_shows_installed_firmware_durations_and_log_names(bindir):
    tmp = tempfile.mkdtemp(prefix="fr-rep-")
    try:
        with running_site(bindir, RACK_SMALL) as site:
            site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= 4,
                          20, "units present")
            units = site.cli_json("units")["units"]
            job = site.submit("--ecid", ",".join(u["ecid"] for u in units[:2]))
            site.wait_job_finished(job, 60)
            rep = site.cli_json("report", str(job))
            for u in rep["units"]:
                a = u["attempts"][-1]
                check(a["duration_s"] >= 0 and "duration_s" in a and a["firmware"] == site.ipsw() and
                      a["version"] and a["build"], "attempt firmware and duration: %s" % a)
                want = "job%d-%s-try%d.log" % (job, u["ecid"], a["n"])
                check(os.path.basename(a["log_path"]) == want and os.path.exists(a["log_path"]),
                      "the log is named as the report names the attempt: %s, want %s" % (a["log_path"], want))
            text = site.cli("report", str(job)).stdout
            check("installed: iOS %s (%s)" % (a["version"], a["build"]) in text and " s\n" in text,
                  "report text: %s" % text)

            rows = csv_of(site, "report", str(job))
            check(len(rows) == 2 and all(r["outcome"] == "success" and r["log"].endswith("-try1.log")
                                         for r in rows), "report csv: %s" % rows)
            check(set(rows[0]) >= {"ios_version", "ios_build", "ipsw_sha256", "duration_s"}, "columns")
            jobs = csv_of(site, "status")
            check(len(jobs) == 1 and jobs[0]["id"] == str(job) and jobs[0]["totals.done"] == "2",
                  "status csv: %s" % jobs)
            runs = csv_of(site, "status", str(job))
            check(len(runs) == 2 and all(r["state"] == "done" for r in runs), "status JOB csv: %s" % runs)
            ucsv = csv_of(site, "units")
            check(len(ucsv) == 4 and {r["ecid"] for r in ucsv} == {u["ecid"] for u in units}, "units csv")
            pcsv = csv_of(site, "ports")
            check(len(pcsv) == 4 and all(r["label"].startswith("A-") for r in pcsv), "ports csv: %s" % pcsv)

            # filters
            model = units[0]["product_type"]
            only = site.cli_json("units", "--model", model)["units"]
            check(only and all(u["product_type"] == model for u in only) and
                  len(only) == sum(1 for u in units if u["product_type"] == model), "units --model")
            done = site.cli_json("units", "--state", "done")["units"]
            check(len(done) == 2, "units --state done: %s" % done)
            check(len(csv_of(site, "units", "--state", "done")) == 2, "filters apply to CSV too")
            check(site.cli_json("ports", "--quarantined")["ports"] == [], "no port quarantined")
            check(len(site.cli_json("ports", "--state", "free")["ports"]) +
                  len(site.cli_json("ports", "--state", "busy")["ports"]) == 4, "ports --state")
            r = site.cli("ports", "--model", model)
            check(r.returncode == 2 and "--model" in r.stderr, "--model does not apply to ports")
            r = site.cli("agents", "-o", "csv")
            check(r.returncode == 2 and "csv" in r.stderr, "agents has no CSV form")
    finally:
        shutil.rmtree(tmp)


def catalog_job_reports_ios_version_build_and_hash(bindir):
    tmp = tempfile.mkdtemp(prefix="fr-rep-")
    try:
        with catalog_site(bindir, tmp) as site:
            fw = site.cli_json("firmware", "show", "iPhone11,2", "latest")["resolved"]
            site.wait_for(lambda: any(u["present"] for u in site.cli_json("units")["units"]), 20, "units")
            unit = [u for u in site.cli_json("units")["units"] if u["present"]][0]
            job = site.cli_json("submit", "--firmware", "latest", "--ecid", unit["ecid"])["job_id"]
            site.wait_for(lambda: site.cli_json("report", str(job))["units"][0]["attempts"], 30, "an attempt")
            a = site.cli_json("report", str(job))["units"][0]["attempts"][0]
            check(a["version"] == fw["version"] == "18.2" and a["build"] == fw["build"] == "22C152" and
                  a["sha256"] == fw["sha256"], "the attempt's firmware is the catalog's build: %s" % a)
            site.cli("cancel", str(job))
    finally:
        shutil.rmtree(tmp)


def file_job_reports_what_the_engine_read_from_the_ipsw(bindir):
    """A job given an IPSW file (no catalog): the iOS version and build come from the
    engine, which read the file's BuildManifest, into the report and the signed record."""
    with running_site(bindir, RACK_CATALOG) as site:
        ipsw = os.path.join(site.dir, "iPhone11,2_18.2_22C152_Restore.ipsw")
        with zipfile.ZipFile(ipsw, "w") as z:
            z.write(os.path.join(FIXTURES, "BuildManifest-18.2-22C152.plist"), "BuildManifest.plist")
        site.wait_for(lambda: any(u["present"] for u in site.cli_json("units")["units"]), 20, "units")
        unit = [u for u in site.cli_json("units")["units"] if u["present"]][0]
        job = site.cli_json("submit", "--firmware", ipsw, "--ecid", unit["ecid"])["job_id"]
        site.wait_job_finished(job, 60)
        a = site.cli_json("report", str(job))["units"][0]["attempts"][-1]
        check(a["outcome"] == "success" and a["version"] == "18.2" and a["build"] == "22C152",
              "the engine's word on the firmware: %s" % a)
        r = site.cli("record", str(job), "-o", "json")
        rec = json.loads(r.stdout.split("\n")[0])["record"]
        check(rec["firmware"]["version"] == "18.2" and rec["firmware"]["build"] == "22C152",
              "the record's firmware: %s" % rec["firmware"])


def offline_firmware_verbs_follow_the_json_convention(bindir):
    tmp = tempfile.mkdtemp(prefix="fr-fw-")
    try:
        flashrack = os.path.join(bindir, "flashrack")
        r = run([flashrack, "firmware", "resolve", "iPhone11,2", "latest", "--catalog",
                 os.path.join(FIXTURES, "ipswme-iPhone11,2.json"), "-o", "json"])
        check(r.returncode == 0, "resolve: %s" % r.stderr)
        doc = json.loads(r.stdout)
        check(doc["signed"] is True, "signed is a boolean: %r" % doc["signed"])
        ipsw = os.path.join(tmp, "x.ipsw")
        with zipfile.ZipFile(ipsw, "w") as z:
            z.write(os.path.join(FIXTURES, "BuildManifest-18.2-22C152.plist"), "BuildManifest.plist")
        r = run([flashrack, "firmware", "inspect", ipsw, "-o", "json"])
        check(r.returncode == 0, "inspect: %s" % r.stderr)
        ids = json.loads(r.stdout)["identities"]
        with open(os.path.join(FIXTURES, "BuildManifest-18.2-22C152.plist"), "rb") as f:
            first = plistlib.load(f)["BuildIdentities"][0]
        want_chip = "0x%04X" % int(first["ApChipID"], 16)
        check(ids and ids[0]["chip_id"] == want_chip and ids[0]["board_id"].startswith("0x"),
              "hex ids: %s, want chip %s" % (ids[0], want_chip))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main(report_shows_installed_firmware_durations_and_log_names,
         catalog_job_reports_ios_version_build_and_hash,
         file_job_reports_what_the_engine_read_from_the_ipsw,
         offline_firmware_verbs_follow_the_json_convention)

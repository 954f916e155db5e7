"""The controller's firmware catalog: fetched from its sources (a local web server
playing ipsw.me) into the catalog directory, listed and resolved by the CLI,
and used by jobs that name firmware by selector: each unit gets the build its
model needs, fetched through the site mirror; a model the catalog has nothing
for fails as wrong_firmware without blaming a port; a bad refresh keeps the
good catalog."""
import json
import os
import re

from harness import Origin, Site, check, main, sha256_of, simple_rack, started

RACK = simple_rack(ports=4, seed=11, product_types="iPhone12,1 iPhone13,2")

MODEL = "iPhone12,1"


def publish(site):
    """The publisher's directory: an IPSW and an ipsw.me device document for it."""
    pub = os.path.join(site.dir, "publisher")
    os.makedirs(pub, exist_ok=True)
    ipsw = os.path.join(pub, "iPhone12,1_18.2_22C152_Restore.ipsw")
    with open(ipsw, "wb") as f:
        f.write(os.urandom(1024 * 1024))
    return pub, ipsw


def device_doc(origin, ipsw):
    return {"identifier": MODEL, "firmwares": [
        {"identifier": MODEL, "version": "18.2", "buildid": "22C152", "signed": True,
         "url": origin.url(ipsw), "sha256sum": sha256_of(ipsw), "filesize": os.path.getsize(ipsw)},
        {"identifier": MODEL, "version": "18.1", "buildid": "22B83", "signed": False,
         "url": origin.base + "/old.ipsw", "sha1sum": "1" * 40, "filesize": 10},
    ]}


def catalog_drives_jobs(bindir):
    site = Site(bindir, RACK)
    pub, ipsw = publish(site)
    origin = Origin(pub)
    source = origin.base + "/ipswme-iPhone12,1.json"
    with open(os.path.join(pub, "ipswme-iPhone12,1.json"), "w") as f:
        json.dump(device_doc(origin, ipsw), f)
    site.controller_sets = ["firmware.catalog_dir=" + os.path.join(site.dir, "catalog"),
                            "firmware.sources=" + source]
    try:
        with started(site):
            # Started with no catalog file: the controller fetched its source by itself.
            site.wait_for(lambda: len(site.cli_json("firmware", "list")["catalog"]["firmwares"]) == 2,
                          20, "the catalog fetched from its source")
            doc = site.cli_json("firmware", "list", "--model", MODEL)
            check(doc["catalog"]["files"] == 1, "one catalog file: %s" % doc["catalog"])
            check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["catalog"]["loaded"]),
                  "loaded is an ISO-8601 UTC string: %r" % doc["catalog"]["loaded"])

            shown = site.cli_json("firmware", "show", MODEL)["resolved"]
            check(shown["build"] == "22C152" and shown["url"] == origin.url(ipsw), "latest: %s" % shown)
            older = site.cli_json("firmware", "show", MODEL, "22B83")["resolved"]
            check(older["version"] == "18.1" and older["signed"] is False, "by build: %s" % older)
            r = site.cli("firmware", "show", "iPhone13,2")
            check(r.returncode == 4 and "no signed build for iPhone13,2" in r.stderr, "no build: %r" % r.stderr)

            r = site.cli("submit", "--agent", "A", "--firmware", "99.9")
            check(r.returncode == 4 and "no firmware in the catalog matches '99.9'" in r.stderr,
                  "an unknown version is refused at submit: %r" % r.stderr)

            site.wait_for(lambda: len(site.cli_json("units")["units"]) == 4, 20, "4 units")
            job = site.cli_json("submit", "--agent", "A", "--firmware", "latest")["job_id"]
            doc = site.wait_job_finished(job, 90)
            runs = {r["ecid"]: r for r in doc["runs"]}
            models = {u["ecid"]: u["product_type"] for u in site.cli_json("units")["units"]}
            for ecid, run in runs.items():
                if models[ecid] == MODEL:
                    check(run["state"] == "done", "an %s restored: %s" % (MODEL, run))
                else:
                    check(run["state"] == "failed" and run["error_class"] == "wrong_firmware" and
                          "no signed build for iPhone13,2" in run["error"],
                          "the model the catalog lacks fails as wrong_firmware: %s" % run)
                    check(run["attempt"] == 1, "and is never retried: %s" % run)
            ipsw_gets = [g for g in origin.gets if g.endswith(".ipsw")]
            check(len(ipsw_gets) == 1, "the IPSW came once: %s" % origin.gets)
            mirror = site.cli_json("firmware", "list")["mirror"]
            check([f["state"] for f in mirror["files"]] == ["ready"] and mirror["served_bytes"] > 0,
                  "through the mirror: %s" % mirror)
            check(not site.cli_json("moves")["moves"], "no moves")
            check(all(p["strikes"] == 0 for p in site.cli_json("ports")["ports"]), "no strikes")

            # A broken source: refresh says so and the catalog stays as it was.
            with open(os.path.join(pub, "ipswme-iPhone12,1.json"), "w") as f:
                f.write("<html>captive portal</html>")
            r = site.cli("firmware", "refresh")
            check(r.returncode == 1 and "could not be fetched" in r.stderr, "refresh fails: %r" % r.stderr)
            doc = site.cli_json("firmware", "list")
            check(len(doc["catalog"]["firmwares"]) == 2, "the good catalog is kept: %s" % doc["catalog"])
            with open(os.path.join(pub, "ipswme-iPhone12,1.json"), "w") as f:
                json.dump(device_doc(origin, ipsw), f)
            r = site.cli("firmware", "refresh")
            check(r.returncode == 0 and "2 firmwares" in r.stdout, "refresh works again: %r" % r.stdout)
    finally:
        origin.close()


def offline_site_reads_its_catalog_dir(bindir):
    site = Site(bindir, RACK)
    pub, ipsw = publish(site)
    origin = Origin(pub)
    catalog = os.path.join(site.dir, "catalog")
    os.makedirs(catalog)
    with open(os.path.join(catalog, "iPhone12,1.json"), "w") as f:
        json.dump(device_doc(origin, ipsw), f)
    with open(os.path.join(catalog, "broken.json"), "w") as f:
        f.write("{not json")
    site.controller_sets = ["firmware.catalog_dir=" + catalog]
    try:
        with started(site):
            doc = site.cli_json("firmware", "list")["catalog"]
            check(len(doc["firmwares"]) == 2 and doc["files"] == 1, "the good file is read: %s" % doc)
            check(len(doc["errors"]) == 1 and "broken.json" in doc["errors"][0], "the bad one named: %s" % doc)
            r = site.cli("firmware", "refresh")
            check(r.returncode == 1 and "no [firmware] sources" in r.stderr, "nothing to refresh: %r" % r.stderr)
            r = site.cli("firmware", "list")
            check(r.returncode == 0 and "22C152" in r.stdout and "mirror http://" in r.stdout,
                  "the table: %s" % r.stdout)
    finally:
        origin.close()


if __name__ == "__main__":
    main(catalog_drives_jobs, offline_site_reads_its_catalog_dir)

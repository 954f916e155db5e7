"""The operator's CLI says what happened: options are not lost, a job that does
not exist is named and has its own exit code, a job with failed units exits 1,
and a usage mistake names the CLI's option, not a wire field."""
import os
import subprocess

from harness import check, main, running_site

# Two good phones and one whose storage fails (Status: Disk Failure): its job fails.
RACK = """
[sim]
seed = 11
time_scale = 400
dialect = master

[host A]
label_prefix = A-
product_types = iPhone12,1

[hub A.1]
host = A
bus = 1
depth = 1
ports = 3
power_switch = yes

[unit 0x00000000000D15C1]
at = A-03
product_type = iPhone12,1
health = disk
"""
BAD = "0x00000000000D15C1"


def run_cli(bindir, *argv):
    return subprocess.run([os.path.join(bindir, "flashrack")] + list(argv), capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def url_without_hash_is_a_usage_error(bindir):
    r = run_cli(bindir, "-C", "tcp://127.0.0.1:9", "--timeout", "1", "submit", "--ecid", "0x1",
                "--firmware", "https://updates.example/iPhone_18.2_Restore.ipsw")
    check(r.returncode == 2, "exit %d (usage is 2): %r" % (r.returncode, r.stderr))
    check("--sha256" in r.stderr and "firmware_sha256" not in r.stderr,
          "names the CLI option: %r" % r.stderr)


def job_outcomes_in_exit_codes(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= 3,
                      20, "3 units present")
        units = [u["ecid"] for u in site.cli_json("units")["units"] if u["ecid"] != BAD]
        good = site.submit("--ecid", units[0], "--name", "good-batch")
        doc = site.wait_job_finished(good, 60)
        check(doc["jobs"][0]["name"] == "good-batch", "--name kept: %s" % doc["jobs"][0])
        check(site.cli("status", str(good)).returncode == 0, "status of a good job exits 0")
        check(site.cli("report", str(good)).returncode == 0, "report of a good job exits 0")

        bad = site.submit("--ecid", BAD, "--max-attempts", "1")
        doc = site.wait_job_finished(bad, 60)
        check(doc["runs"][0]["state"] in ("failed", "hardware_suspect"), "run: %s" % doc["runs"])
        for verb in ("status", "report"):
            r = site.cli(verb, str(bad))
            check(r.returncode == 1, "%s of a failed job exits 1, got %d" % (verb, r.returncode))
            r = site.cli(verb, str(bad), "-o", "json")
            check(r.returncode == 1, "%s -o json of a failed job exits 1" % verb)

        for verb in ("watch", "status", "report"):
            r = site.cli(verb, "999")
            check(r.returncode == 4, "%s 999 exits 4 (not found), got %d" % (verb, r.returncode))
            check("no job 999" in r.stderr, "%s 999 says so: %r" % (verb, r.stderr))


if __name__ == "__main__":
    main(url_without_hash_is_a_usage_error, job_outcomes_in_exit_codes)

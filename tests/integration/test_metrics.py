"""Prometheus /metrics on the controller's HTTP server: scraped over loopback after
real restores (two good units, one whose storage fails) and parsed strictly."""
import urllib.request

import promparse
from harness import check, main, running_site
from test_operator_cli import BAD, RACK


def scrape(site):
    with urllib.request.urlopen(site.mirror + "/metrics", timeout=5) as r:
        check(r.status == 200, "status %d" % r.status)
        ctype = r.headers.get("Content-Type", "")
        check(ctype.startswith("text/plain") and "version=0.0.4" in ctype, "content type %r" % ctype)
        return promparse.parse(r.read().decode("utf-8"))


def parser_is_strict(bindir):
    good = "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"q\\\"\"} 1\n"
    check(promparse.value(promparse.parse(good), "x_total", a='q"') == 1, "parses a good text")
    for bad in ("x 1\n",                                          # no TYPE
                "# TYPE x gauge\nx{a=\"1\"} one\n",               # not a number
                "# TYPE x gauge\nx 1\nx 2\n",                     # a series twice
                "# TYPE x gauge\nx{a=1} 1\n",                     # unquoted label
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                "h_sum 1\nh_count 1\n"):                          # not cumulative
        try:
            promparse.parse(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad)


def metrics_after_restores(bindir):
    with running_site(bindir, RACK) as site:
        site.wait_for(lambda: sum(1 for u in site.cli_json("units")["units"] if u["present"]) >= 3,
                      20, "3 units present")
        before = scrape(site)
        check(promparse.value(before, "flashrack_agents_up") == 1, "one agent up")
        check(promparse.value(before, "flashrack_agent_up", agent="A") == 1, "agent A up")
        check(promparse.value(before, "flashrack_restore_duration_seconds_count") == 0, "no restores yet")

        ecids = [u["ecid"] for u in site.cli_json("units")["units"]]
        job = site.submit("--ecid", ",".join(ecids), "--max-attempts", "1")
        doc = site.wait_job_finished(job, 90)
        states = sorted(r["state"] for r in doc["runs"])
        check(states.count("done") == 2, "two restored: %s" % states)

        m = scrape(site)
        restores = m["flashrack_restores_total"]["samples"]
        ok = sum(v for _, l, v in restores if l["result"] == "success")
        check(ok == 2 and all(l["model"] == "iPhone12,1" for _, l, _ in restores if l["result"] == "success"),
              "two successful restores of iPhone12,1: %s" % restores)
        failed = [(l, v) for _, l, v in restores if l["result"] != "success"]
        check(failed and all(l["class"] for l, _ in failed), "the failure has its class: %s" % failed)
        check(promparse.value(m, "flashrack_attempts_total") == sum(v for _, _, v in restores),
              "every attempt ended")
        check(promparse.value(m, "flashrack_unit_runs", state="done") == 2, "runs by state")
        check(promparse.value(m, "flashrack_queue_depth") == 0, "nothing waits")
        check(promparse.value(m, "flashrack_restore_duration_seconds_count") == 2, "two durations")
        check(promparse.value(m, "flashrack_restore_duration_seconds_sum") > 0, "durations add up")
        check(len(m["flashrack_port_strikes"]["samples"]) == 3, "one strike gauge per port")
        check(promparse.value(m, "flashrack_ports_quarantined") == 0, "no quarantine")
        check(m["flashrack_mirror_served_bytes_total"]["type"] == "counter", "mirror bytes")
        check(BAD.lower() not in str(m).lower(), "no per-unit series (cardinality)")


if __name__ == "__main__":
    main(parser_is_strict, metrics_after_restores)

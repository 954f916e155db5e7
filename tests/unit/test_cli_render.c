/* test_cli_render — documents rendered for people; odd documents never crash; rows read
 * from their text render as the parsed rows do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_fixture.h"
#include "csv.h"
#include "render.h"
#include "render_csv.h"

/* noinline: inlined into a caller, GCC 12 (-O2) takes the returned buffer for the
 * address of the local the stream wrote it through, and warns of a dangling pointer */
__attribute__((noinline)) static char *render_to_string(void (*fn)(const json_t *, FILE *), const json_t *doc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(doc, f);
    fclose(f);
    return buf;
}

static void bars(void **state)
{
    char b[64];
    render_bar(0, 10, b, sizeof b);
    assert_string_equal(b, "[..........]   0%");
    render_bar(45, 10, b, sizeof b);
    assert_string_equal(b, "[#####.....]  45%"); /* 4.5 cells round up */
    render_bar(100, 10, b, sizeof b);
    assert_string_equal(b, "[##########] 100%");
    render_bar(250, 10, b, sizeof b);
    assert_string_equal(b, "[##########] 100%");
    render_bar(NAN, 4, b, sizeof b);
    assert_string_equal(b, "[....]   0%");
    render_bar(-3, 4, b, sizeof b);
    assert_string_equal(b, "[....]   0%");
}

static void run_percent(void **state)
{
    json_t *r = json_pack("{s:s, s:i, s:f}", "state", "restoring", "step", 2, "fraction", 0.5);
    assert_true(fabs(render_run_percent(r) - 31.25) < 0.01);
    json_object_set_new(r, "state", json_string("done"));
    assert_true(render_run_percent(r) == 100.0);
    json_object_set_new(r, "state", json_string("restoring"));
    json_object_set_new(r, "step", json_integer(99));
    assert_true(render_run_percent(r) <= 100.0);
    json_decref(r);
}

static void job_view_shows_every_port(void **state)
{
    json_t *doc = load("watch.json");
    char *out = render_to_string(render_job, doc);
    assert_non_null(strstr(out, "A-20"));
    assert_non_null(strstr(out, "0x000D3ADBEEF00001"));
    assert_non_null(strstr(out, "ERROR: Unable to send filesystem payload chunk"));
    assert_non_null(strstr(out, "B-03"));
    assert_non_null(strstr(out, "[####################] 100%"));
    assert_non_null(strstr(out, "demo"));
    free(out);
    char line[256];
    render_run_line(json_array_get(json_object_get(doc, "runs"), 0), line, sizeof line);
    assert_non_null(strstr(line, "A-20 0x000D3ADBEEF00001 iPhone12,1 failed try 1"));
    assert_non_null(strstr(line, ": ERROR: Unable to send"));
    json_decref(doc);
}

static void report_is_a_record_per_unit(void **state)
{
    json_t *doc = load("report.json");
    char *out = render_to_string(render_report, doc);
    assert_non_null(strstr(out, "Restore report"));
    assert_non_null(strstr(out, "serial F2L9JMURUM6M"));
    assert_non_null(strstr(out, "attempt 1  A:2-1.8 (A-20)"));
    assert_non_null(strstr(out, "[link_lost] ERROR: Unable to send filesystem payload chunk"));
    assert_non_null(strstr(out, "log: /var/log/x.log"));
    assert_non_null(strstr(out, "installed: iOS 18.2 (22C152)  sha256 c2ab81582fa89ce12d68309458e6d3d5"));
    assert_non_null(strstr(out, "d4c242  299 s\n"));
    assert_non_null(strstr(out, "1 units"));
    free(out);
    json_decref(doc);
}

/* RFC 4180: quoted only when needed, quotes doubled, CRLF. */
static void csv_fields_are_quoted_as_rfc_4180_says(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    csv_field(f, "plain", 1);
    csv_field(f, "a,b", 0);
    csv_field(f, "say \"hi\"", 0);
    csv_field(f, "two\nlines", 0);
    csv_field(f, "", 0);
    csv_end(f);
    fclose(f);
    assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    free(buf);
}

static void report_csv_is_a_row_per_attempt(void **state)
{
    json_t *doc = load("report.json");
    /* a second unit with no attempt yet: one row, its attempt fields empty */
    json_array_append_new(json_object_get(doc, "units"),
                          json_pack("{s:s, s:s, s:s, s:[]}", "ecid", "0x2", "product_type", "iPhone13,2",
                                    "state", "waiting_unit", "attempts"));
    char *out = render_to_string(render_csv_report, doc);
    char *second = strstr(out, "\r\n") + 2, *third = strstr(second, "\r\n") + 2;
    static const char head[] = "job_id,ecid,product_type,serial,unit_state,unit_started,unit_ended,attempt,";
    static const char row1[] = "3,0x000D3ADBEEF00001,\"iPhone12,1\",F2L9JMURUM6M,failed,"; /* a comma: quoted */
    static const char row2[] = "3,0x2,\"iPhone13,2\",,waiting_unit,,,,,,,,,,,,,,,,,,,,\r\n";
    assert_memory_equal(out, head, strlen(head));
    assert_memory_equal(second, row1, strlen(row1));
    assert_non_null(strstr(second, ",299,failed,link_lost,ERROR: Unable to send filesystem payload chunk,1,"
                                   "https://h/iPhone_18.2_22C152_Restore.ipsw,18.2,22C152,c2ab8158"));
    assert_string_equal(third, row2);
    free(out);
    json_decref(doc);
}

/* A job whose runs are still being made says how many of its units are yet to come, in
 * status and in the report; a job with none to come says nothing of it. */
static void a_job_still_expanding_says_so(void **state)
{
    json_t *doc = json_pack("{s:[{s:i, s:s, s:s, s:{s:i, s:i, s:i}}, {s:i, s:s, s:s, s:{s:i, s:i}}]}", "jobs",
                            "id", 5, "name", "big", "state", "running", "totals", "units", 1000,
                            "waiting", 1000, "expanding", 488, "id", 4, "name", "small", "state", "done",
                            "totals", "units", 3, "expanding", 0);
    char *out = render_to_string(render_jobs, doc);
    assert_non_null(strstr(out, " 1000 "));
    assert_non_null(strstr(out, "\njob 5: 488 of its units are still being added (counted as waiting)\n"));
    assert_null(strstr(out, "job 4:"));
    free(out);
    json_t *report = json_pack("{s:O, s:[]}", "job", json_array_get(json_object_get(doc, "jobs"), 0), "units");
    out = render_to_string(render_report, report);
    assert_non_null(strstr(out, "job 5: 488 of its units are still being added"));
    free(out);
    json_decref(report);
    json_decref(doc);
}

/* A submit over 60 agents names every one of them, and the skipped units the reply lists,
 * with the count of those it does not; nothing is cut at a buffer's end. */
static void submit_summary_names_every_agent(void **state)
{
    json_t *agents = json_object(), *doc;
    char name[64];
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "depot-bench-%02d.example", i);
        json_object_set_new(agents, name, json_integer(50));
    }
    json_object_set_new(agents, "", json_integer(3));
    doc = json_pack("{s:i, s:o, s:[{s:s, s:s}, {s:s, s:s, s:i}], s:i}", "matched", 3003, "agents", agents,
                    "skipped", "ecid", "0x1", "why", "held", "ecid", "0x2", "why", "in_job", "job_id", 7,
                    "skipped_total", 5);
    char *out = render_to_string(render_submit_summary, doc);
    assert_true(strncmp(out, "3003 units on depot-bench-00.example, depot-bench-01.example, ", 62) == 0);
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "depot-bench-%02d.example", i);
        assert_non_null(strstr(out, name));
    }
    assert_non_null(strstr(out, "depot-bench-59.example; 5 skipped: 0x1 held, 0x2 in job 7, and 3 more"));
    free(out);
    json_decref(doc);
}

static void odd_documents_render_without_crashing(void **state)
{
    void (*fns[])(const json_t *, FILE *) = { render_agents, render_units, render_ports,
                                              render_jobs, render_job, render_report,
                                              render_csv_units, render_csv_ports, render_csv_jobs,
                                              render_csv_runs, render_csv_report,
                                              render_submit_summary };
    json_t *docs[] = {
        json_object(),
        json_pack("{s:s}", "runs", "not a list"),
        json_pack("{s:[i, s, n], s:[{s:i, s:[i]}]}", "agents", 1, "x", "jobs", "id", 3, "totals", 4),
        json_pack("{s:[{s:i, s:b}], s:[{s:n}]}", "runs", "ecid", 5, "state", 1, "units", "attempts"),
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            char *out = render_to_string(fns[f], docs[d]);
            assert_non_null(out);
            free(out);
        }
        json_decref(docs[d]);
    }
}

typedef void rows_fn(const json_t *, const struct rview_src *, FILE *);

/* What fn prints of doc's list key given as each row's compact text (caller frees). */
__attribute__((noinline)) static char *render_rows_to_string(rows_fn *fn, const json_t *doc, const char *key)
{
    const json_t *list = json_object_get(doc, key);
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    char **texts = calloc(n + 1, sizeof *texts);
    struct jspan *spans = calloc(n + 1, sizeof *spans);
    for (size_t i = 0; i < n; i++) {
        texts[i] = json_dumps(json_array_get(list, i), JSON_COMPACT | JSON_ENCODE_ANY);
        spans[i] = (struct jspan){ texts[i], strlen(texts[i]) };
    }
    json_t *head = json_copy((json_t *)doc);
    json_object_del(head, key);
    struct rview_src rows = rview_src_texts(spans, n);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(head, &rows, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(spans);
    json_decref(head);
    return buf;
}

/* Rows read straight from their text print byte for byte as the parsed rows do: strings
 * with escapes, reals where integers are expected, booleans, nulls, nested values, rows
 * that are not objects, missing fields. */
static void rows_read_from_text_render_as_parsed(void **state)
{
    struct {
        void (*doc)(const json_t *, FILE *);
        rows_fn *rows;
        const char *key;
    } fns[] = {
        { render_units, render_units_rows, "units" },          { render_ports, render_ports_rows, "ports" },
        { render_job, render_job_rows, "runs" },               { render_report, render_report_rows, "units" },
        { render_csv_units, render_csv_units_rows, "units" },  { render_csv_ports, render_csv_ports_rows, "ports" },
        { render_csv_runs, render_csv_runs_rows, "runs" },     { render_csv_report, render_csv_report_rows, "units" },
    };
    json_t *odd = json_pack(
        "{s:[{s:s, s:s, s:s, s:f, s:b, s:n, s:s, s:{s:i}}, {s:s, s:i, s:s}, i, s], "
        "s:[{s:s, s:f, s:f, s:s, s:b, s:s}, {}], s:[{s:s, s:f, s:i, s:s, s:s, s:f}], s:{s:i}, s:[]}",
        "units", "ecid", "0x\"1\"", "label", "caf\u00e9\n", "state", "", "bus", 2.75, "present", 1, "reason",
        "mode", "tab\there", "attempts", "n", 1, "ecid", "0x2", "step", 3, "reason", "", 7, "x",
        "ports", "agent", "A\\B", "bus", 1e2, "strikes", -2.5, "reason", "it's \"bad\"", "power_switch", 1,
        "path", "\u263a", "runs", "state", "restoring", "fraction", 0.333, "step", 2, "error", "",
        "status", "going \u00e0 la", "attempt", 1.9, "job", "id", 3, "moves");
    json_t *docs[] = { load("watch.json"), load("report.json"), odd, json_object() };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            char *want = render_to_string(fns[f].doc, docs[d]);
            char *got = render_rows_to_string(fns[f].rows, docs[d], fns[f].key);
            assert_string_equal(got, want);
            free(want);
            free(got);
        }
        json_decref(docs[d]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bars),
        cmocka_unit_test(run_percent),
        cmocka_unit_test(job_view_shows_every_port),
        cmocka_unit_test(report_is_a_record_per_unit),
        cmocka_unit_test(csv_fields_are_quoted_as_rfc_4180_says),
        cmocka_unit_test(report_csv_is_a_row_per_attempt),
        cmocka_unit_test(submit_summary_names_every_agent),
        cmocka_unit_test(a_job_still_expanding_says_so),
        cmocka_unit_test(odd_documents_render_without_crashing),
        cmocka_unit_test(rows_read_from_text_render_as_parsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

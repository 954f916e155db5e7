/* test_cli_listing — a paged document put together from its pages' text: its rows in
 * rack order (keys read from the text, escapes included), printed as jansson prints the
 * merged document, counted, filtered and rendered from their text; and watch frames
 * kept as the runs' text, printed and rendered as from the parsed document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "render.h"
#include "rows.h"
#include "snapshot.h"

static json_t *run(const char *agent, const char *label, const char *ecid, const char *state)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:s, s:f}", "job_id", 1, "ecid", ecid, "agent", agent, "label",
                     label, "state", state, "fraction", 0.1);
}

/* the pages a controller would send: 5 runs in ECID order, 2 a page */
static json_t *pages[3];

static void make_pages(void)
{
    json_t *runs[] = { run("B", "B-01", "0x01", "done"), run("A", "A-\"2\"", "0x02", "failed"),
                       run("A", "A-01", "0x03", "done"), run("B", "A-01", "0x04", "hardware_suspect"),
                       run("A", "A-01", "0x05", "restoring") };
    pages[0] = json_pack("{s:[{s:i}], s:[o, o], s:s, s:[]}", "jobs", "id", 1, "runs", runs[0], runs[1], "next",
                         "[2]", "moves");
    pages[1] = json_pack("{s:[o, o], s:s}", "runs", runs[2], runs[3], "next", "[4]");
    pages[2] = json_pack("{s:[o], s:s}", "runs", runs[4], "next", "");
}

static void fill(struct listing *l)
{
    make_pages();
    listing_init(l, "runs");
    char err[256];
    for (int i = 0; i < 3; i++) {
        char *text = json_dumps(pages[i], JSON_COMPACT);
        char *next = listing_cursor(l, text);
        assert_string_equal(next, json_string_value(json_object_get(pages[i], "next")));
        free(next);
        assert_int_equal(listing_add(l, text, err, sizeof err), 0);
    }
}

/* what the CLI printed before: every page's rows in one list, sorted, without "next" */
static json_t *merged(void)
{
    json_t *doc = json_deep_copy(pages[0]), *runs = json_object_get(doc, "runs");
    json_array_extend(runs, json_object_get(pages[1], "runs"));
    json_array_extend(runs, json_object_get(pages[2], "runs"));
    json_object_del(doc, "next");
    rows_sort(runs, rows_by_port);
    return doc;
}

static void release_pages(void)
{
    for (int i = 0; i < 3; i++)
        json_decref(pages[i]);
}

/* What print(arg, f) prints (caller frees). noinline: see test_cli_render.c. */
__attribute__((noinline)) static char *printed(void (*print)(void *arg, FILE *f), void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    print(arg, f);
    fclose(f);
    return text;
}

static void print_listing(void *l, FILE *f)
{
    listing_print_json(l, f);
}

static void print_frame(void *snap, FILE *f)
{
    snapshot_print_json(snap, f);
}

static char *printed_json(struct listing *l)
{
    return printed(print_listing, l);
}

static void prints_the_merged_document_in_rack_order(void **state)
{
    (void)state;
    struct listing l;
    fill(&l);
    assert_int_equal(listing_sort(&l, rows_by_port), 0);
    char *got = printed_json(&l);
    json_t *want_doc = merged();
    char *want = json_dumps(want_doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t n = strlen(want);
    assert_int_equal(strlen(got), n + 1); /* and puts' newline */
    assert_memory_equal(got, want, n);
    /* the label with quotes (an escape in the text) sorts as its string: A-"2" before A-01 */
    const char *first = json_string_value(json_object_get(json_array_get(json_object_get(want_doc, "runs"), 0), "label"));
    assert_string_equal(first, "A-\"2\"");
    static const char *const failures[] = { "failed", "hardware_suspect", NULL };
    assert_int_equal(listing_count(&l, "state", failures), 2);
    free(want);
    free(got);
    json_decref(want_doc);
    listing_release(&l);
    release_pages();
}

static int not_done(struct rview *row, const void *arg);

/* The pages printed as they come (a list shown in the order served), filtered page by
 * page: -o json as jansson prints the merged document, and a table in parts as the whole
 * table; with the first page's member after the list ("moves") in its place. */
static void pages_print_as_they_come(void **state)
{
    (void)state;
    make_pages();
    json_t *doc = json_deep_copy(pages[0]), *all = json_object_get(doc, "runs");
    json_array_extend(all, json_object_get(pages[1], "runs"));
    json_array_extend(all, json_object_get(pages[2], "runs"));
    json_object_del(doc, "next");
    for (int filter = 0; filter < 2; filter++) {
        struct listing l;
        listing_init(&l, "runs");
        char err[256], *json = NULL, *table = NULL;
        size_t jn = 0, tn = 0;
        FILE *jf = open_memstream(&json, &jn), *tf = open_memstream(&table, &tn);
        json_t *head = NULL;
        for (int i = 0; i < 3; i++) {
            size_t from = l.nrows;
            assert_int_equal(listing_add(&l, json_dumps(pages[i], JSON_COMPACT), err, sizeof err), 0);
            if (filter)
                listing_filter_from(&l, from, not_done, NULL);
            if (i == 0) {
                listing_json_begin(&l, jf);
                head = listing_head(&l);
                render_ports_parts.head(head, tf);
            }
            listing_json_rows(&l, from, jf);
            struct rview_src rows = rview_src_texts(l.rows + from, l.nrows - from);
            render_ports_parts.rows(head, &rows, tf);
        }
        listing_json_end(&l, jf);
        fclose(jf);
        fclose(tf);
        json_t *want_doc = json_deep_copy(doc);
        json_t *rows = json_object_get(want_doc, "runs");
        for (size_t i = json_array_size(rows); filter && i-- > 0;)
            if (!strcmp(json_string_value(json_object_get(json_array_get(rows, i), "state")), "done"))
                json_array_remove(rows, i);
        char *want = json_dumps(want_doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER), *want_table = NULL;
        assert_int_equal(strlen(json), strlen(want) + 1);
        assert_memory_equal(json, want, strlen(want));
        size_t wn = 0;
        FILE *wf = open_memstream(&want_table, &wn);
        json_t *as_ports = json_pack("{s:O}", "ports", rows);
        render_ports(as_ports, wf);
        fclose(wf);
        json_decref(as_ports);
        assert_string_equal(table, want_table);
        assert_int_equal(l.nrows, filter ? 3 : 5);
        free(json);
        free(table);
        free(want);
        free(want_table);
        json_decref(want_doc);
        json_decref(head);
        listing_release(&l);
    }
    json_decref(doc);
    release_pages();
}

static int not_done(struct rview *row, const void *arg)
{
    (void)arg;
    return strcmp(rview_str(row, "state"), "done") != 0;
}

static int not_done_json(const json_t *row)
{
    return strcmp(json_string_value(json_object_get(row, "state")), "done") != 0;
}

/* What render_job_rows prints of the listing (caller frees). */
__attribute__((noinline)) static char *rendered_rows(const json_t *head, const struct listing *l)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    struct rview_src rows = listing_rows(l);
    render_job_rows(head, &rows, f);
    fclose(f);
    return text;
}

__attribute__((noinline)) static char *rendered_doc(const json_t *doc)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    render_job(doc, f);
    fclose(f);
    return text;
}

/* filtered and rendered from the rows' text, as the parsed merged document renders */
static void text_rows_filter_and_render(void **state)
{
    (void)state;
    struct listing l;
    fill(&l);
    assert_int_equal(listing_sort(&l, rows_by_port), 0);
    listing_filter(&l, not_done, NULL);
    assert_int_equal(l.nrows, 3);
    json_t *head = listing_head(&l), *want = merged();
    assert_non_null(head);
    assert_null(json_object_get(head, "runs")); /* the rows are not parsed */
    assert_null(json_object_get(head, "next"));
    assert_true(json_equal(json_object_get(head, "jobs"), json_object_get(want, "jobs")));
    json_t *runs = json_object_get(want, "runs");
    for (size_t i = json_array_size(runs); i-- > 0;)
        if (!not_done_json(json_array_get(runs, i)))
            json_array_remove(runs, i);
    char *got = rendered_rows(head, &l), *expect = rendered_doc(want);
    assert_string_equal(got, expect);
    assert_non_null(strstr(got, "A-\"2\""));
    free(got);
    free(expect);
    json_decref(head);
    json_decref(want);
    listing_release(&l);
    release_pages();
}

/* a site with no units: one empty page sorts (nothing) and prints an empty list */
static void an_empty_listing_sorts_and_prints(void **state)
{
    (void)state;
    struct listing l;
    listing_init(&l, "units");
    char err[256];
    assert_int_equal(listing_add(&l, strdup("{\"units\":[],\"next\":\"\"}"), err, sizeof err), 0);
    assert_int_equal(listing_sort(&l, rows_by_port), 0);
    char *got = printed_json(&l);
    assert_string_equal(got, "{\n  \"units\": []\n}\n");
    free(got);
    json_t *none = json_array();
    rows_sort(none, rows_by_port);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    listing_release(&l);
}

static void a_page_without_its_list_is_refused(void **state)
{
    (void)state;
    struct listing l;
    listing_init(&l, "units");
    char err[256];
    assert_int_equal(listing_add(&l, strdup("{\"runs\":[],\"next\":\"\"}"), err, sizeof err), -1);
    assert_non_null(strstr(err, "units"));
    assert_int_equal(listing_add(&l, strdup("{\"units\":[{\"a\":1},"), err, sizeof err), -1);
    char *next = listing_cursor(&l, "{\"units\":[],\"next\":7}");
    assert_null(next);
    /* a page whose cursor was read is still refused without its list, and one with it
     * after a page without is read from its own text */
    char *text = strdup("{\"runs\":[{\"a\":1}],\"next\":\"\"}");
    next = listing_cursor(&l, text);
    assert_string_equal(next, "");
    free(next);
    assert_int_equal(listing_add(&l, text, err, sizeof err), -1);
    text = strdup("{\"units\":[{\"a\":1},{\"a\":2}],\"next\":\"\"}");
    next = listing_cursor(&l, text);
    free(next);
    assert_int_equal(listing_add(&l, text, err, sizeof err), 0);
    assert_int_equal(l.nrows, 2);
    listing_release(&l);
}

/* What a watch reply of runs (borrowed) would be, as text; jobs: the ids watched. */
static char *watch_reply(json_t *runs, int seq, int more, json_t *jobs)
{
    json_t *reply = json_pack("{s:o, s:O, s:i, s:b, s:[{s:i}]}", "jobs", jobs, "runs", runs, "seq", seq, "more",
                              more, "moves", "id", 7);
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    return text;
}

/* The frame as jansson would dump the merged document: runs (borrowed) by port. */
static char *frame_as_jansson(json_t *runs, size_t changes)
{
    json_t *sorted = json_deep_copy(runs);
    rows_sort(sorted, rows_by_port);
    json_t *doc = json_pack("{s:[{s:i}], s:o, s:[{s:i}], s:I}", "jobs", "id", 1, "runs", sorted, "moves", "id", 7,
                            "changes", (json_int_t)changes);
    char *text = json_dumps(doc, JSON_COMPACT), *line = NULL;
    assert_true(asprintf(&line, "%s\n", text) > 0);
    free(text);
    json_decref(doc);
    return line;
}

/* The first frame (three replies, read ahead by their seq and more) and a later one
 * (a run changed in place, one of a job no longer watched left out) print as jansson
 * dumps the same frame, and its table as render_job prints the parsed document. */
static void a_watch_frame_prints_as_jansson_dumps_it(void **state)
{
    (void)state;
    make_pages();
    struct snapshot *snap = snapshot_new();
    char err[256];
    json_t *all = json_array();
    for (int i = 0; i < 3; i++) {
        char *text = watch_reply(json_object_get(pages[i], "runs"), i + 1, i < 2, json_pack("[{s:i}]", "id", 1));
        uint64_t seq = 0;
        int more = -1;
        char *next = NULL;
        assert_int_equal(snapshot_reply_cursor(text, &seq, &more, &next), 0);
        assert_int_equal(seq, i + 1);
        assert_int_equal(more, i < 2);
        assert_string_equal(next, ""); /* a reply of changes has none */
        free(next);
        assert_int_equal(snapshot_apply(snap, text, err, sizeof err), 0);
        json_array_extend(all, json_object_get(pages[i], "runs"));
    }
    assert_int_equal(snapshot_seq(snap), 3);
    char *got = printed(print_frame, snap), *want = frame_as_jansson(all, 5);
    assert_string_equal(got, want);
    free(got);
    free(want);
    struct rview_src changed = snapshot_changed(snap);
    assert_int_equal(changed.n, 5);
    snapshot_frame_end(snap);

    /* later: 0x03 is now failed, and a run of job 2 (not watched) comes */
    json_t *later = json_pack("[o, {s:i, s:s, s:s, s:s, s:s}]", run("A", "A-01", "0x03", "failed"), "job_id", 2,
                              "ecid", "0x09", "agent", "A", "label", "A-00", "state", "done");
    assert_int_equal(snapshot_apply(snap, watch_reply(later, 9, 0, json_pack("[{s:i}]", "id", 1)), err, sizeof err), 0);
    json_array_set(all, 2, json_array_get(later, 0));
    got = printed(print_frame, snap);
    want = frame_as_jansson(all, 2);
    assert_string_equal(got, want);
    free(got);
    free(want);
    changed = snapshot_changed(snap);
    assert_int_equal(changed.n, 2);
    struct rview v;
    rview_init(&v);
    rview_src_row(&changed, 0, &v); /* by port: job 2's A-00 first */
    assert_string_equal(rview_str(&v, "ecid"), "0x09");
    rview_release(&v);

    /* its table is the parsed document's */
    json_t *doc = json_pack("{s:[{s:i}], s:O, s:[]}", "jobs", "id", 1, "runs", all, "moves");
    rows_sort(json_object_get(doc, "runs"), rows_by_port);
    char *table = NULL, *from_text = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *f = open_memstream(&table, &n1);
    render_job(doc, f);
    fclose(f);
    struct rview_src view = snapshot_view(snap);
    json_t *head = json_pack("{s:[{s:i}], s:[]}", "jobs", "id", 1, "moves");
    f = open_memstream(&from_text, &n2);
    render_job_rows(head, &view, f);
    fclose(f);
    assert_string_equal(from_text, table);
    free(table);
    free(from_text);
    json_decref(head);
    json_decref(doc);
    json_decref(later);
    json_decref(all);
    snapshot_free(snap);
    release_pages();
}

/* A reply that is not a watch document is refused, naming what it lacks. */
static void a_bad_watch_reply_is_refused(void **state)
{
    (void)state;
    struct snapshot *snap = snapshot_new();
    char err[256];
    uint64_t seq;
    int more;
    char *next = NULL;
    assert_int_equal(snapshot_reply_cursor("{\"seq\":\"x\",\"more\":false}", &seq, &more, &next), -1);
    assert_int_equal(snapshot_reply_cursor("{\"seq\":1,\"more\":true,\"next\":[1]}", &seq, &more, &next), -1);
    assert_int_equal(snapshot_reply_cursor("{\"seq\":1,\"more\":true,\"next\":\"[1,2]\"}", &seq, &more, &next), 0);
    assert_string_equal(next, "[1,2]");
    free(next);
    assert_int_equal(snapshot_apply(snap, strdup("{\"jobs\":[],\"seq\":1,\"more\":false,\"moves\":[]}"),
                                    err, sizeof err), -1);
    assert_non_null(strstr(err, "not a watch document"));
    assert_int_equal(snapshot_apply(snap, strdup("{\"jobs\":[],\"runs\":[1],\"seq\":1,\"more\":false,"
                                                 "\"moves\":[]}"), err, sizeof err), -1);
    assert_non_null(strstr(err, "not an object"));
    assert_int_equal(snapshot_seq(snap), 0);
    snapshot_frame_end(snap);
    snapshot_free(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prints_the_merged_document_in_rack_order),
        cmocka_unit_test(pages_print_as_they_come),
        cmocka_unit_test(text_rows_filter_and_render),
        cmocka_unit_test(an_empty_listing_sorts_and_prints),
        cmocka_unit_test(a_page_without_its_list_is_refused),
        cmocka_unit_test(a_watch_frame_prints_as_jansson_dumps_it),
        cmocka_unit_test(a_bad_watch_reply_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

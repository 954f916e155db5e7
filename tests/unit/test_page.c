/* test_page — the rack page's pure parts: the event-stream framing and its bound
 * (a slow client's queue never grows past it), the tiles built from the store's
 * documents, and the token comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"
#include "page_tiles.h"
#include "sse.h"

static char *drain(struct sse_queue *q)
{
    char *out = calloc(1, sse_queue_pending(q) + 1);
    sse_queue_take(q, out, sse_queue_pending(q));
    return out;
}

static void framing(void **state)
{
    struct sse_queue q;
    sse_queue_init(&q, 1024);
    assert_int_equal(sse_event(&q, "tile", "{\"id\":\"A:1-1\"}"), 0);
    assert_int_equal(sse_comment(&q, "keepalive"), 0);
    assert_int_equal(sse_event(&q, "x", "two\nlines"), 0);
    char *text = drain(&q);
    assert_string_equal(text, "event: tile\ndata: {\"id\":\"A:1-1\"}\n\n: keepalive\n\n"
                              "event: x\ndata: two\ndata: lines\n\n");
    free(text);
    assert_int_equal(sse_queue_pending(&q), 0);
    assert_int_equal(sse_event(&q, "bad\nname", "x"), -1);
    sse_queue_free(&q);
}

/* A reader that never reads: pushes are refused once the bound is reached, and what was
 * queued stays whole (no half event). */
static void bounded(void **state)
{
    struct sse_queue q;
    sse_queue_init(&q, 100);
    char data[41];
    memset(data, 'x', 40);
    data[40] = '\0';
    assert_int_equal(sse_event(&q, "e", data), 0); /* 9 + 6 + 40 + 2 = 57 bytes */
    assert_int_equal(sse_event(&q, "e", data), -1);
    assert_int_equal(sse_queue_pending(&q), 57);
    char some[30];
    assert_int_equal(sse_queue_take(&q, some, sizeof some), 30);
    assert_int_equal(sse_event(&q, "e", data), 0);  /* 27 unread + 57: fits again */
    assert_int_equal(sse_queue_pending(&q), 84);
    assert_int_equal(sse_event(&q, "e", "y"), -1);  /* 84 + 18 > 100 */
    assert_true(q.cap <= 4096);
    sse_queue_free(&q);
}

/* A snapshot larger than the bound goes into an empty queue (a new client, or one that
 * read everything: a rack of 10,000 ports is more than the default bound); behind it,
 * nothing more fits until it is read. */
static void a_large_event_fits_an_empty_queue(void **state)
{
    struct sse_queue q;
    sse_queue_init(&q, 100);
    char data[301];
    memset(data, 'x', 300);
    data[300] = '\0';
    assert_int_equal(sse_event(&q, "snapshot", data), 0);
    assert_int_equal(sse_queue_pending(&q), 16 + 6 + 300 + 2);
    assert_int_equal(sse_event(&q, "e", "y"), -1); /* the client is behind now */
    char all[400];
    assert_int_equal(sse_queue_take(&q, all, sizeof all), 324);
    assert_int_equal(sse_event(&q, "e", "y"), 0);
    sse_queue_free(&q);
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    if (!doc)
        fail_msg("%s: %s", text, e.text);
    return doc;
}

static const json_t *tile_at(const json_t *doc, size_t hub, size_t i)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(doc, "hubs"), hub), "tiles"), i);
}

static const char *field(const json_t *t, const char *k)
{
    return json_string_value(json_object_get(t, k));
}

static void tiles(void **state)
{
    json_t *ports = load("{\"ports\": ["
        "{\"agent\":\"A\",\"path\":\"1-1\",\"label\":\"A-01\",\"hub\":\"A.1\",\"state\":\"busy\",\"ecid\":\"0x1\",\"strikes\":0,\"reason\":\"\"},"
        "{\"agent\":\"A\",\"path\":\"1-2\",\"label\":\"A-02\",\"hub\":\"A.1\",\"state\":\"quarantined\",\"ecid\":\"\",\"strikes\":2,\"reason\":\"2 units lost the link\"},"
        "{\"agent\":\"A\",\"path\":\"1-3\",\"label\":\"A-03\",\"hub\":\"A.1\",\"state\":\"free\",\"ecid\":\"\",\"strikes\":0,\"reason\":\"\"},"
        "{\"agent\":\"B\",\"path\":\"2-1\",\"label\":\"B-01\",\"hub\":\"B.1\",\"state\":\"free\",\"ecid\":\"0x3\",\"strikes\":0,\"reason\":\"\"}]}");
    json_t *watch = load("{\"runs\": ["
        "{\"agent\":\"A\",\"port\":\"1-1\",\"ecid\":\"0x9\",\"state\":\"done\",\"product_type\":\"iPhone9,9\",\"attempt\":1,\"fraction\":1.0,\"error\":\"\",\"error_class\":\"\"},"
        "{\"agent\":\"A\",\"port\":\"1-1\",\"ecid\":\"0x1\",\"state\":\"restoring\",\"product_type\":\"iPhone12,1\",\"attempt\":2,\"fraction\":0.42,\"error\":\"\",\"error_class\":\"\"},"
        "{\"agent\":\"A\",\"port\":\"1-3\",\"ecid\":\"0x2\",\"state\":\"needs_move\",\"product_type\":\"iPhone14,7\",\"attempt\":1,\"fraction\":0.1,\"error\":\"lost the link\",\"error_class\":\"usb_link_lost\"}],"
        "\"moves\": [{\"ecid\":\"0x2\",\"from_agent\":\"A\",\"from_port\":\"1-3\",\"from_label\":\"A-03\","
        "\"to_agent\":\"B\",\"to_port\":\"2-1\",\"to_label\":\"B-01\",\"buttons\":\"hold Side\"}]}");
    json_t *doc = page_tiles(ports, watch);
    assert_int_equal(json_array_size(json_object_get(doc, "hubs")), 2);
    const json_t *t = tile_at(doc, 0, 0);
    /* the run of the unit plugged in there, not an older one on the same port */
    assert_string_equal(field(t, "id"), "A:1-1");
    assert_string_equal(field(t, "state"), "restoring");
    assert_string_equal(field(t, "tone"), "busy");
    assert_string_equal(field(t, "model"), "iPhone12,1");
    assert_int_equal(json_integer_value(json_object_get(t, "progress")), 42);
    assert_int_equal(json_integer_value(json_object_get(t, "try")), 2);
    t = tile_at(doc, 0, 1);
    assert_string_equal(field(t, "state"), "quarantined");
    assert_string_equal(field(t, "tone"), "bad");
    assert_string_equal(field(t, "error"), "2 units lost the link");
    assert_int_equal(json_integer_value(json_object_get(t, "progress")), -1);
    t = tile_at(doc, 0, 2);
    assert_string_equal(field(t, "state"), "needs_move");
    assert_string_equal(field(t, "error"), "usb_link_lost: lost the link");
    assert_string_equal(field(t, "move"), "move 0x2 to B-01; start in DFU: hold Side");
    t = tile_at(doc, 1, 0);
    assert_string_equal(field(t, "state"), "present");
    assert_string_equal(field(t, "move"), "0x2 comes here from A-03");
    json_decref(doc);
    json_decref(ports);
    json_decref(watch);
}

static void tones(void **state)
{
    assert_string_equal(page_tone("done"), "ok");
    assert_string_equal(page_tone("hardware_suspect"), "bad");
    assert_string_equal(page_tone("waiting_unit"), "wait");
    assert_string_equal(page_tone("fetching_firmware"), "busy");
    assert_string_equal(page_tone("empty"), "idle");
}

static void tokens(void **state)
{
    assert_true(page_token_equal("s3cret-token-0123", "s3cret-token-0123"));
    assert_false(page_token_equal("s3cret-token-0124", "s3cret-token-0123"));
    assert_false(page_token_equal("s3cret-token-012", "s3cret-token-0123"));
    assert_false(page_token_equal("s3cret-token-01234", "s3cret-token-0123"));
    assert_false(page_token_equal("", "s3cret-token-0123"));
}

static void config(void **state)
{
    char err[256];
    assert_int_equal(page_check_cfg("127.0.0.1:7714", "", err, sizeof err), 0);
    assert_int_equal(page_check_cfg("[::1]:7714", "", err, sizeof err), 0);
    assert_int_equal(page_check_cfg("off", "", err, sizeof err), 0);
    assert_true(page_check_cfg("0.0.0.0:7714", "", err, sizeof err) < 0);
    assert_non_null(strstr(err, "token_file"));
    assert_int_equal(page_check_cfg("0.0.0.0:7714", "/etc/flashrack/page.token", err, sizeof err), 0);
    assert_true(page_check_cfg("somewhere", "", err, sizeof err) < 0);
    assert_non_null(strstr(err, "[page] listen"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing), cmocka_unit_test(bounded), cmocka_unit_test(a_large_event_fits_an_empty_queue),
        cmocka_unit_test(tiles),
        cmocka_unit_test(tones),   cmocka_unit_test(tokens),  cmocka_unit_test(config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_wire — Envelope codec: round trips, and hostile input rejected with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_wire.h"

static Fr__AttemptRef make_ref(void)
{
    Fr__AttemptRef r = FR__ATTEMPT_REF__INIT;
    r.job_id = 7;
    r.attempt_id = 31;
    r.epoch = 1002;
    r.ecid = 0x001A2B3C4D5E6F70ull;
    return r;
}

static uint8_t *pack(Fr__Envelope *env, size_t *len)
{
    uint8_t *buf = NULL;
    assert_int_equal(fr_wire_pack(env, &buf, len), 0);
    return buf;
}

static void assign_round_trip(void **state)
{
    Fr__AttemptRef ref = make_ref();
    Fr__JobAssign a = FR__JOB_ASSIGN__INIT;
    char *avoid[] = { "1-1.3", "2-1.7" };
    a.ref = &ref;
    a.port_path = "1-1.4";
    a.firmware = "/srv/ipsw/iPhone12,1_18.2_22C152_Restore.ipsw";
    a.erase = 1;
    a.avoid_ports = avoid;
    a.n_avoid_ports = 2;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "A";
    env.session = 9;
    env.seq = 3;
    env.body_case = FR__ENVELOPE__BODY_JOB_ASSIGN;
    env.job_assign = &a;

    size_t len;
    uint8_t *buf = pack(&env, &len);
    Fr__Envelope *out = NULL;
    char err[128] = "";
    assert_int_equal(fr_wire_unpack(buf, len, &out, err, sizeof err), 0);
    assert_int_equal(out->proto_version, FR_PROTO_VERSION);
    assert_int_equal(out->body_case, FR__ENVELOPE__BODY_JOB_ASSIGN);
    assert_true(out->job_assign->ref->epoch == 1002);
    assert_string_equal(out->job_assign->avoid_ports[1], "2-1.7");
    assert_string_equal(fr_wire_body_name(out->body_case), "job_assign");
    fr_wire_free(&out);
    assert_null(out);
    fr_wire_free(&out); /* safe twice */
    free(buf);
}

static int unpack_err(Fr__Envelope *env, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = pack(env, &len);
    Fr__Envelope *out = NULL;
    int rc = fr_wire_unpack(buf, len, &out, err, errlen);
    free(buf);
    if (rc == 0)
        fr_wire_free(&out);
    assert_null(out);
    return rc;
}

static void rejects_missing_ref_and_firmware(void **state)
{
    Fr__JobAssign a = FR__JOB_ASSIGN__INIT;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_ASSIGN;
    env.job_assign = &a;
    char err[128] = "";
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "ref"));

    Fr__AttemptRef ref = make_ref();
    a.ref = &ref;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "firmware"));
}

static void rejects_wrong_version(void **state)
{
    Fr__Heartbeat hb = FR__HEARTBEAT__INIT;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    size_t len = fr__envelope__get_packed_size(&env);
    env.proto_version = 99;
    len = fr__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len);
    fr__envelope__pack(&env, buf);
    Fr__Envelope *out = NULL;
    char err[128] = "";
    assert_int_equal(fr_wire_unpack(buf, len, &out, err, sizeof err), FR_EVERSION);
    assert_non_null(strstr(err, "version 99"));
    free(buf);
}

static void rejects_no_body_and_garbage(void **state)
{
    Fr__Envelope env = FR__ENVELOPE__INIT;
    char err[128] = "";
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "no body"));

    const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80 };
    Fr__Envelope *out = NULL;
    assert_int_equal(fr_wire_unpack(junk, sizeof junk, &out, err, sizeof err), FR_EPROTO);
    assert_null(out);
}

static void rejects_oversized(void **state)
{
    size_t big = FR_WIRE_MAX_MSG + 1;
    uint8_t *buf = calloc(1, big);
    Fr__Envelope *out = NULL;
    char err[128] = "";
    assert_int_equal(fr_wire_unpack(buf, big, &out, err, sizeof err), FR_ETOOBIG);
    free(buf);

    /* A long string inside a message that fits the cap is refused by validation. */
    char *longstr = malloc(FR_WIRE_MAX_STR + 2);
    memset(longstr, 'a', FR_WIRE_MAX_STR + 1);
    longstr[FR_WIRE_MAX_STR + 1] = '\0';
    Fr__Hello h = FR__HELLO__INIT;
    h.hostname = longstr;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "hostname"));
    free(longstr);
}

static void rejects_bad_fields(void **state)
{
    char err[128] = "";
    Fr__AttemptRef ref = make_ref();
    Fr__JobProgress p = FR__JOB_PROGRESS__INIT;
    p.ref = &ref;
    p.step = 9;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_PROGRESS;
    env.job_progress = &p;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "step"));

    Fr__UnitInfo u = FR__UNIT_INFO__INIT; /* ecid 0 */
    Fr__PortEvent pe = FR__PORT_EVENT__INIT;
    pe.unit = &u;
    env.body_case = FR__ENVELOPE__BODY_PORT_EVENT;
    env.port_event = &pe;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "ecid"));

    Fr__JobResult r = FR__JOB_RESULT__INIT; /* outcome unspecified */
    r.ref = &ref;
    env.body_case = FR__ENVELOPE__BODY_JOB_RESULT;
    env.job_result = &r;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "outcome"));
    r.outcome = FR__OUTCOME__OUTCOME_SUCCESS;
    assert_int_equal(unpack_err(&env, err, sizeof err), 0);
}

/* A ProgressBatch of 1..FR_WIRE_MAX_BATCH well-formed items decodes; one over the
 * bound, an empty one, or one with a malformed item (named by its index) is refused. */
static void progress_batch_bounded_and_checked_item_by_item(void **state)
{
    enum { N = FR_WIRE_MAX_BATCH + 1 };
    Fr__AttemptRef refs[N];
    Fr__JobProgress items[N], *ptrs[N];
    for (size_t i = 0; i < N; i++) {
        refs[i] = make_ref();
        refs[i].attempt_id = 100 + i;
        fr__job_progress__init(&items[i]);
        items[i].ref = &refs[i];
        items[i].state = "restoring";
        items[i].step = 2;
        items[i].fraction = 0.5f;
        ptrs[i] = &items[i];
    }
    Fr__ProgressBatch b = FR__PROGRESS_BATCH__INIT;
    b.items = ptrs;
    b.n_items = FR_WIRE_MAX_BATCH;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "A";
    env.body_case = FR__ENVELOPE__BODY_PROGRESS_BATCH;
    env.progress_batch = &b;
    size_t len;
    uint8_t *buf = pack(&env, &len);
    Fr__Envelope *out = NULL;
    char err[160] = "";
    assert_int_equal(fr_wire_unpack(buf, len, &out, err, sizeof err), 0);
    free(buf);
    assert_int_equal(out->progress_batch->n_items, FR_WIRE_MAX_BATCH);
    assert_true(out->progress_batch->items[FR_WIRE_MAX_BATCH - 1]->ref->attempt_id ==
                100 + FR_WIRE_MAX_BATCH - 1);
    assert_string_equal(fr_wire_body_name(out->body_case), "progress_batch");
    fr_wire_free(&out);

    b.n_items = N; /* over the bound */
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "items"));
    b.n_items = 0;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    b.n_items = 3;
    items[2].fraction = 1.5f; /* the third item is malformed: the whole batch is refused */
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "items[2]"));
    assert_non_null(strstr(err, "fraction"));
    items[2].fraction = 0.5f;
    items[1].ref = NULL;
    assert_int_equal(unpack_err(&env, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "items[1]"));
}

/* Every single-byte corruption and every truncation of a valid message is
 * either accepted as a valid envelope or refused; none crashes (ASan watches). */
static void mutations_never_crash(void **state)
{
    Fr__AttemptRef ref = make_ref();
    Fr__JobResult r = FR__JOB_RESULT__INIT;
    r.ref = &ref;
    r.outcome = FR__OUTCOME__OUTCOME_FAILED;
    r.error_class = "link_lost";
    r.error_text = "ERROR: Unable to send filesystem payload chunk";
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "A";
    env.body_case = FR__ENVELOPE__BODY_JOB_RESULT;
    env.job_result = &r;
    size_t len;
    uint8_t *orig = pack(&env, &len);
    uint8_t *buf = malloc(len);
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < len; i++) {
        for (int v = 0; v < 256; v += 17) {
            memcpy(buf, orig, len);
            buf[i] = (uint8_t)v;
            Fr__Envelope *out = NULL;
            char err[128];
            if (fr_wire_unpack(buf, len, &out, err, sizeof err) == 0) {
                accepted++;
                fr_wire_free(&out);
            } else {
                refused++;
            }
        }
        Fr__Envelope *out = NULL;
        char err[128];
        if (fr_wire_unpack(orig, i, &out, err, sizeof err) == 0)
            fr_wire_free(&out);
    }
    assert_true(refused > 0);
    assert_true(accepted > 0);
    free(buf);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(assign_round_trip),      cmocka_unit_test(rejects_missing_ref_and_firmware),
        cmocka_unit_test(rejects_wrong_version),  cmocka_unit_test(rejects_no_body_and_garbage),
        cmocka_unit_test(rejects_oversized),      cmocka_unit_test(rejects_bad_fields),
        cmocka_unit_test(mutations_never_crash),
        cmocka_unit_test(progress_batch_bounded_and_checked_item_by_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_tss — the signing check against a real HTTP server on 127.0.0.1 that
 * answers the way Apple's does (and the ways it fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fr_tss.h"

struct mock {
    struct MHD_Daemon *d;
    const char *mode;      /* signed, 94, 500, garbage, slow */
    char body[8192];       /* the last request body */
    int requests;
    char url[128];
};

struct upload {
    char buf[8192];
    size_t len;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con)
{
    struct mock *m = cls;
    if (!*con) {
        *con = calloc(1, sizeof(struct upload));
        return MHD_YES;
    }
    struct upload *u = *con;
    if (*size) {
        size_t n = *size < sizeof u->buf - 1 - u->len ? *size : sizeof u->buf - 1 - u->len;
        memcpy(u->buf + u->len, data, n);
        u->len += n;
        *size = 0;
        return MHD_YES;
    }
    memcpy(m->body, u->buf, u->len + 1);
    free(u);
    *con = NULL;
    m->requests++;
    const char *text = "STATUS=0&MESSAGE=SUCCESS&REQUEST_STRING=<plist>...</plist>";
    unsigned code = MHD_HTTP_OK;
    if (!strcmp(m->mode, "94"))
        text = "STATUS=94&MESSAGE=This device isn't eligible for the requested build.";
    else if (!strcmp(m->mode, "500"))
        text = "oops", code = MHD_HTTP_INTERNAL_SERVER_ERROR;
    else if (!strcmp(m->mode, "garbage"))
        text = "<html>captive portal</html>";
    else if (!strcmp(m->mode, "slow"))
        sleep(2);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static int setup(void **state)
{
    struct mock *m = calloc(1, sizeof *m);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m->mode = "signed";
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                            NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    assert_non_null(m->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(m->url, sizeof m->url, "http://127.0.0.1:%u/TSS/controller?action=2", info->port);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct mock *m = *state;
    MHD_stop_daemon(m->d);
    free(m);
    return 0;
}

/* The request's timeout: 500 ms for the server that answers after 2 s ("slow"), which
 * must time out; 10 s for the others, which must not, however loaded the machine (at
 * 500 ms each, a slow turn of the mock's thread could make an answer "unreachable"). */
static enum fr_tss_verdict ask(struct mock *m, const char *mode, char *detail, size_t len)
{
    m->mode = mode;
    long timeout_ms = strcmp(mode, "slow") ? 10000 : 500;
    struct fr_tss_request req = { m->url, 0x001A2B3C4D5E6F70ull, 0x8020, 0x0e, "22C152", timeout_ms };
    enum fr_tss_verdict v = FR_TSS_UNEXPECTED;
    assert_int_equal(fr_tss_check(&req, &v, detail, len), 0);
    return v;
}

static void signed_build(void **state)
{
    struct mock *m = *state;
    char detail[256];
    assert_int_equal(ask(m, "signed", detail, sizeof detail), FR_TSS_SIGNED);
    assert_non_null(strstr(detail, "STATUS=0"));
    /* the request is a plist naming the unit */
    assert_non_null(strstr(m->body, "<key>ApECID</key>"));
    assert_non_null(strstr(m->body, "7365887390543728")); /* 0x001A2B3C4D5E6F70 in decimal */
    assert_non_null(strstr(m->body, "<key>ApChipID</key>"));
}

static void status_94_is_not_signed(void **state)
{
    char detail[256];
    assert_int_equal(ask(*state, "94", detail, sizeof detail), FR_TSS_NOT_SIGNED);
    assert_non_null(strstr(detail, "isn't eligible"));
    assert_string_equal(fr_tss_verdict_name(FR_TSS_NOT_SIGNED), "not_signed");
}

static void server_errors_are_unreachable_not_unsigned(void **state)
{
    char detail[256];
    assert_int_equal(ask(*state, "500", detail, sizeof detail), FR_TSS_UNREACHABLE);
    assert_non_null(strstr(detail, "HTTP 500"));
    assert_int_equal(ask(*state, "slow", detail, sizeof detail), FR_TSS_UNREACHABLE);
    assert_non_null(strstr(detail, "signing server"));
    assert_int_equal(ask(*state, "garbage", detail, sizeof detail), FR_TSS_UNEXPECTED);
    struct fr_tss_request req = { "http://127.0.0.1:9/nothing", 1, 2, 3, "x", 500 };
    enum fr_tss_verdict v;
    assert_int_equal(fr_tss_check(&req, &v, detail, sizeof detail), 0);
    assert_int_equal(v, FR_TSS_UNREACHABLE);
}

static void classify_answers(void **state)
{
    char d[128];
    assert_int_equal(fr_tss_classify("STATUS=0&MESSAGE=SUCCESS", d, sizeof d), FR_TSS_SIGNED);
    assert_int_equal(fr_tss_classify("MESSAGE=x&STATUS=94", d, sizeof d), FR_TSS_NOT_SIGNED);
    assert_int_equal(fr_tss_classify("STATUS=128&MESSAGE=Invalid", d, sizeof d), FR_TSS_UNEXPECTED);
    assert_int_equal(fr_tss_classify("XSTATUS=0", d, sizeof d), FR_TSS_UNEXPECTED);
    assert_int_equal(fr_tss_classify(NULL, d, sizeof d), FR_TSS_UNEXPECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(signed_build, setup, teardown),
        cmocka_unit_test_setup_teardown(status_94_is_not_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(server_errors_are_unreachable_not_unsigned, setup, teardown),
        cmocka_unit_test(classify_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

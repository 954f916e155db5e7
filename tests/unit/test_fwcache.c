/* test_fwcache — the IPSW cache against a real HTTP server on 127.0.0.1 that
 * misbehaves on purpose: cut bodies, ignored Range, wrong bytes, 404/500. The
 * cache recovers where it can and never hands out a bad file. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_sha.h"
#include "fr_fwcache.h"

#define BLOB (2 * 1024 * 1024)

static uint8_t blobs[3][BLOB];
static char keys[3][65];
static int requests[8]; /* per mode */
static int started;

enum mode { GOOD, CUT, NORANGE, WRONG, NOTFOUND, FAIL };
static const char *mode_names[] = { "good", "cut", "norange", "wrong", "404", "500" };

struct reader {
    int blob, mode;
    uint64_t start;
    int cut;
};

static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct reader *r = cls;
    uint64_t at = r->start + pos;
    if (r->cut && at >= BLOB / 3)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the connection drops mid-file */
    if (at >= BLOB)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BLOB - at < max ? (size_t)(BLOB - at) : max;
    memcpy(buf, blobs[r->blob] + at, n);
    if (r->mode == WRONG && at <= BLOB / 2 && at + n > BLOB / 2)
        buf[BLOB / 2 - at] ^= 0x5a;
    return (ssize_t)n;
}

/* The same server plays a site mirror at /ipsw/<key>. */
enum mirror_mode { M_BUSY_TWICE, M_LACKS, M_CUT_THEN_GONE };
static int mirror_mode, mirror_requests;

static int blob_of_key(const char *key)
{
    for (int b = 0; b < 3; b++)
        if (strncmp(key, keys[b], 64) == 0)
            return b;
    return -1;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *retry_after)
{
    static char msg[] = "no";
    struct MHD_Response *r = MHD_create_response_from_buffer(2, msg, MHD_RESPMEM_PERSISTENT);
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result as_mirror(struct MHD_Connection *c, const char *url)
{
    int n = __atomic_add_fetch(&mirror_requests, 1, __ATOMIC_SEQ_CST);
    int blob = blob_of_key(url + 6);
    if (blob < 0 || mirror_mode == M_LACKS || (mirror_mode == M_CUT_THEN_GONE && n > 1))
        return answer(c, 404, NULL);
    if (mirror_mode == M_BUSY_TWICE && n <= 2)
        return answer(c, 503, "1");
    struct reader *rd = calloc(1, sizeof *rd);
    rd->blob = blob;
    rd->cut = mirror_mode == M_CUT_THEN_GONE;
    struct MHD_Response *r = MHD_create_response_from_callback(BLOB, 32 * 1024, on_read, rd, free);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* URLs: /<blob>/<mode>.ipsw */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con)
{
    if (strncmp(url, "/ipsw/", 6) == 0)
        return as_mirror(c, url);
    int blob = url[1] - '0', mode = 0;
    for (int m = 0; m < 6; m++)
        if (strstr(url, mode_names[m]))
            mode = m;
    int n = __atomic_add_fetch(&requests[mode], 1, __ATOMIC_SEQ_CST);
    if (mode == NOTFOUND || mode == FAIL) {
        static char msg[] = "no";
        struct MHD_Response *r = MHD_create_response_from_buffer(2, msg, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(c, mode == NOTFOUND ? 404 : 500, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct reader *rd = calloc(1, sizeof *rd);
    rd->blob = blob;
    rd->mode = mode;
    rd->cut = (mode == CUT || mode == NORANGE) && n == 1;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    unsigned long long from = 0;
    if (range && mode != NORANGE && sscanf(range, "bytes=%llu-", &from) == 1 && from < BLOB)
        rd->start = from;
    struct MHD_Response *r = MHD_create_response_from_callback(BLOB - rd->start, 32 * 1024, on_read,
                                                               rd, free);
    unsigned code = 200;
    if (rd->start) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%d/%d", (unsigned long long)rd->start, BLOB - 1, BLOB);
        MHD_add_response_header(r, "Content-Range", cr);
        code = 206;
    }
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

struct fixture {
    struct MHD_Daemon *d;
    int port;
    char dir[64];
};

static int setup(void **state)
{
    if (!started) {
        for (int b = 0; b < 3; b++) {
            uint32_t x = 0x12345u + (uint32_t)b;
            for (size_t i = 0; i < BLOB; i++)
                blobs[b][i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
            struct fr_sha256 s;
            fr_sha256_init(&s);
            fr_sha256_update(&s, blobs[b], BLOB);
            fr_sha256_hex(&s, keys[b]);
        }
        started = 1;
    }
    memset(requests, 0, sizeof requests);
    mirror_requests = 0;
    struct fixture *f = calloc(1, sizeof *f);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                            NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    assert_non_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(f->dir, sizeof f->dir, "/tmp/fr-test-cache-%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    MHD_stop_daemon(f->d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

struct result {
    int calls, status;
    char path[512], err[512];
};

static void on_got(void *arg, int status, const char *path, const char *err)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    snprintf(r->path, sizeof r->path, "%s", path ? path : "");
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void url_of(const struct fixture *f, int blob, int mode, char *buf, size_t len)
{
    snprintf(buf, len, "http://127.0.0.1:%d/%d/%s.ipsw", f->port, blob, mode_names[mode]);
}

/* Runs the loop until every result has been called back, bounded in time (30 s), not
 * in turns: the downloads and their hashing jobs run on threads, which a loaded machine
 * can hold back far longer than a count of short sleeps allows. */
static void run(uv_loop_t *loop, struct result *r, int n)
{
    for (uint64_t limit = uv_hrtime() + 30 * 1000000000ull; uv_hrtime() < limit;) {
        int done = 1;
        for (int k = 0; k < n; k++)
            done &= r[k].calls > 0;
        if (done)
            return;
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    fail_msg("timed out waiting for the cache");
}

static struct fwcache *open_cache(uv_loop_t *loop, struct fixture *f, uint64_t cap)
{
    struct fwcache *c = NULL;
    char err[256];
    if (fwcache_open(loop, f->dir, cap, &c, err, sizeof err))
        fail_msg("%s", err);
    /* small hashing jobs: they run while bytes still arrive, across cuts and restarts */
    fwcache_set_hash_step(c, 64 * 1024);
    return c;
}

static void close_cache(uv_loop_t *loop, struct fwcache **c)
{
    fwcache_close(*c);
    uv_run(loop, UV_RUN_DEFAULT);
    fwcache_destroy(c);
}

static int same_as_blob(const char *path, int blob)
{
    FILE *fp = fopen(path, "rb");
    static uint8_t buf[BLOB + 1];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    return n == BLOB && memcmp(buf, blobs[blob], BLOB) == 0;
}

/* Changes one byte of a file on disk, as a failing disk would. */
static void damage(const char *path, long at)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, at, SEEK_SET);
    fputc('X', fp);
    fclose(fp);
}

static int exists(const char *dir, const char *key, const char *ext)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.%s", dir, key, ext);
    return access(p, F_OK) == 0;
}

static void sixty_four_gets_one_download(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128];
    url_of(f, 0, GOOD, url, sizeof url);
    struct result r[64] = { 0 };
    for (int i = 0; i < 64; i++)
        assert_int_equal(fwcache_get(c, keys[0], url, on_got, &r[i]), 0);
    run(&loop, r, 64);
    for (int i = 0; i < 64; i++)
        assert_int_equal(r[i].status, 0);
    assert_int_equal(requests[GOOD], 1);
    assert_true(fwcache_stats(c)->downloads == 1);
    assert_true(same_as_blob(r[0].path, 0));
    /* a later get is served from disk at once */
    struct result again = { 0 };
    assert_int_equal(fwcache_get(c, keys[0], url, on_got, &again), 0);
    assert_int_equal(again.calls, 1);
    assert_int_equal(requests[GOOD], 1);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void a_dropped_connection_resumes_with_range(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128];
    url_of(f, 1, CUT, url, sizeof url);
    struct result r = { 0 };
    assert_int_equal(fwcache_get(c, keys[1], url, on_got, &r), 0);
    run(&loop, &r, 1);
    assert_int_equal(r.status, 0);
    assert_true(requests[CUT] >= 2);
    assert_true(fwcache_stats(c)->bytes < 2 * BLOB); /* resumed, not fetched twice */
    assert_true(same_as_blob(r.path, 1));
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void a_server_ignoring_range_starts_over(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128];
    url_of(f, 2, NORANGE, url, sizeof url);
    struct result r = { 0 };
    assert_int_equal(fwcache_get(c, keys[2], url, on_got, &r), 0);
    run(&loop, &r, 1);
    assert_int_equal(r.status, 0);
    assert_true(same_as_blob(r.path, 2));
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void wrong_bytes_and_http_errors_leave_nothing(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128];
    struct result r[3] = { 0 };
    url_of(f, 0, WRONG, url, sizeof url);
    assert_int_equal(fwcache_get(c, keys[0], url, on_got, &r[0]), 0);
    url_of(f, 1, NOTFOUND, url, sizeof url);
    assert_int_equal(fwcache_get(c, keys[1], url, on_got, &r[1]), 0);
    url_of(f, 2, FAIL, url, sizeof url);
    assert_int_equal(fwcache_get(c, keys[2], url, on_got, &r[2]), 0);
    run(&loop, r, 3);
    assert_int_equal(r[0].status, FR_EIO);
    assert_non_null(strstr(r[0].err, "hash mismatch"));
    assert_non_null(strstr(r[1].err, "HTTP 404"));
    assert_non_null(strstr(r[2].err, "HTTP 500"));
    for (int b = 0; b < 3; b++) {
        assert_false(exists(f->dir, keys[b], "ipsw"));
        assert_false(exists(f->dir, keys[b], "part"));
    }
    /* bad keys are refused at once */
    assert_int_equal(fwcache_get(c, "abc", url, on_got, &r[0]), FR_EINVAL);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void lru_never_evicts_a_pinned_file(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 5ull * 1024 * 1024); /* room for two */
    char url[128];
    struct result r[3] = { 0 };
    for (int b = 0; b < 3; b++) {
        url_of(f, b, GOOD, url, sizeof url);
        assert_int_equal(fwcache_get(c, keys[b], url, on_got, &r[b]), 0);
        run(&loop, &r[b], 1);
        assert_int_equal(r[b].status, 0);
        if (b == 0)
            fwcache_pin(c, keys[0]); /* an accepted attempt uses it */
    }
    assert_true(exists(f->dir, keys[0], "ipsw"));  /* oldest, but pinned */
    assert_false(exists(f->dir, keys[1], "ipsw")); /* evicted */
    assert_true(exists(f->dir, keys[2], "ipsw"));
    assert_true(fwcache_stats(c)->evicted == 1);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void restart_reverifies_lazily(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128], path[256];
    url_of(f, 0, GOOD, url, sizeof url);
    struct result r = { 0 };
    fwcache_get(c, keys[0], url, on_got, &r);
    run(&loop, &r, 1);
    assert_int_equal(r.status, 0);
    close_cache(&loop, &c);
    /* corrupt it on disk while nothing runs */
    snprintf(path, sizeof path, "%s/%s.ipsw", f->dir, keys[0]);
    damage(path, 1000);
    c = open_cache(&loop, f, 1ull << 30);
    struct result r2 = { 0 };
    assert_int_equal(fwcache_get(c, keys[0], url, on_got, &r2), 0);
    assert_int_equal(r2.calls, 0); /* not trusted before a check */
    run(&loop, &r2, 1);
    assert_int_equal(r2.status, 0);
    assert_true(fwcache_stats(c)->verify_failures == 1);
    assert_int_equal(requests[GOOD], 2); /* fetched again */
    assert_true(same_as_blob(r2.path, 0));
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void set_mirror(struct fwcache *c, const struct fixture *f, int mode)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", f->port);
    mirror_mode = mode;
    fwcache_set_mirror(c, base);
}

/* One get through the mirror; returns its result. */
static struct result get_via_mirror(struct fixture *f, uv_loop_t *loop, struct fwcache *c, int blob)
{
    char url[128];
    url_of(f, blob, GOOD, url, sizeof url);
    struct result r = { 0 };
    assert_int_equal(fwcache_get(c, keys[blob], url, on_got, &r), 0);
    run(loop, &r, 1);
    assert_int_equal(r.status, 0);
    assert_true(same_as_blob(r.path, blob));
    return r;
}

static void a_busy_mirror_is_waited_for_not_bypassed(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    set_mirror(c, f, M_BUSY_TWICE);
    get_via_mirror(f, &loop, c, 0);
    assert_int_equal(mirror_requests, 3);
    assert_int_equal(requests[GOOD], 0); /* the publisher saw nothing */
    assert_true(fwcache_stats(c)->mirror_waits == 2);
    assert_true(fwcache_stats(c)->mirror_bytes == BLOB && fwcache_stats(c)->upstream_bytes == 0);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void a_mirror_lacking_the_file_falls_back_upstream(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    set_mirror(c, f, M_LACKS);
    get_via_mirror(f, &loop, c, 1);
    assert_int_equal(mirror_requests, 1);
    assert_int_equal(requests[GOOD], 1);
    assert_true(fwcache_stats(c)->fallbacks == 1);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void a_mirror_that_drops_out_is_resumed_upstream(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    set_mirror(c, f, M_CUT_THEN_GONE);
    get_via_mirror(f, &loop, c, 2);
    assert_int_equal(requests[GOOD], 1);
    const struct fwcache_stats *st = fwcache_stats(c);
    assert_true(st->mirror_bytes > 0 && st->upstream_bytes > 0);
    assert_true(st->mirror_bytes + st->upstream_bytes == BLOB); /* Range: no byte twice */
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void an_unreachable_mirror_falls_back_upstream(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    fwcache_set_mirror(c, "http://127.0.0.1:1"); /* nothing listens there */
    get_via_mirror(f, &loop, c, 0);
    assert_int_equal(requests[GOOD], 1);
    assert_true(fwcache_stats(c)->fallbacks == 1);
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

static void a_suspect_file_is_rechecked_and_refetched_only_if_damaged(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fwcache *c = open_cache(&loop, f, 1ull << 30);
    char url[128], path[256];
    url_of(f, 0, GOOD, url, sizeof url);
    assert_int_equal(fwcache_lookup(c, keys[0], path, sizeof path), FWCACHE_ABSENT);
    assert_int_equal(fwcache_get(c, keys[0], NULL, on_got, NULL), FR_ENOTFOUND);
    struct result r[3] = { 0 };
    fwcache_get(c, keys[0], url, on_got, &r[0]);
    assert_int_equal(fwcache_lookup(c, keys[0], path, sizeof path), FWCACHE_BUSY);
    run(&loop, &r[0], 1);
    assert_int_equal(fwcache_lookup(c, keys[0], path, sizeof path), FWCACHE_READY);
    /* intact: checked again, not downloaded again */
    fwcache_suspect(c, keys[0]);
    assert_int_equal(fwcache_lookup(c, keys[0], path, sizeof path), FWCACHE_UNCHECKED);
    fwcache_get(c, keys[0], url, on_got, &r[1]);
    run(&loop, &r[1], 1);
    assert_int_equal(r[1].status, 0);
    assert_int_equal(requests[GOOD], 1);
    /* damaged on disk: the check fails, the file is fetched anew */
    damage(path, 4096);
    fwcache_suspect(c, keys[0]);
    fwcache_get(c, keys[0], url, on_got, &r[2]);
    run(&loop, &r[2], 1);
    assert_int_equal(r[2].status, 0);
    assert_int_equal(requests[GOOD], 2);
    assert_true(same_as_blob(r[2].path, 0));
    close_cache(&loop, &c);
    uv_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sixty_four_gets_one_download, setup, teardown),
        cmocka_unit_test_setup_teardown(a_dropped_connection_resumes_with_range, setup, teardown),
        cmocka_unit_test_setup_teardown(a_server_ignoring_range_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_bytes_and_http_errors_leave_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(lru_never_evicts_a_pinned_file, setup, teardown),
        cmocka_unit_test_setup_teardown(restart_reverifies_lazily, setup, teardown),
        cmocka_unit_test_setup_teardown(a_busy_mirror_is_waited_for_not_bypassed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_mirror_lacking_the_file_falls_back_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(a_mirror_that_drops_out_is_resumed_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(an_unreachable_mirror_falls_back_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(a_suspect_file_is_rechecked_and_refetched_only_if_damaged,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

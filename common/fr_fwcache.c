/* fr_fwcache — verified IPSW cache, downloads on the loop; see fr_fwcache.h. */
#include "fr_fwcache.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_sha.h"
#include "fr_types.h"

#define MAX_RETRIES 4
#define MIRROR_WAIT_DEFAULT_MS (2 * 3600 * 1000ULL)

/* The hash a key names (SHA-256 for 64 hex digits, SHA-1 for 40), being computed. */
struct hasher {
    int sha256;
    struct fr_sha256 s256;
    struct fr_sha1 s1;
};

static void hasher_init(struct hasher *h, const char *key)
{
    h->sha256 = strlen(key) == 64;
    h->s256.ctx = h->s1.ctx = NULL;
    if (h->sha256)
        fr_sha256_init(&h->s256);
    else
        fr_sha1_init(&h->s1);
}

/* Frees a hasher that was not (or not yet) finished; safe after hasher_matches. */
static void hasher_release(struct hasher *h)
{
    fr_sha256_release(&h->s256);
    fr_sha1_release(&h->s1);
}

/* Adds bytes [from, to) of fd (off the loop: a thread-pool job). 0 or an errno. */
static int hasher_add_file(struct hasher *h, int fd, uint64_t from, uint64_t to)
{
    static __thread char buf[1 << 20];
    for (uint64_t at = from; at < to;) {
        size_t want = to - at < sizeof buf ? (size_t)(to - at) : sizeof buf;
        ssize_t n = pread(fd, buf, want, (off_t)at);
        if (n <= 0)
            return n < 0 ? errno : EIO;
        if (h->sha256)
            fr_sha256_update(&h->s256, buf, (size_t)n);
        else
            fr_sha1_update(&h->s1, buf, (size_t)n);
        at += (uint64_t)n;
    }
    return 0;
}

/* Whether what was hashed is key. */
static int hasher_matches(struct hasher *h, const char *key, char got[65])
{
    if (h->sha256)
        fr_sha256_hex(&h->s256, got);
    else
        fr_sha1_hex(&h->s1, got);
    return strcasecmp(got, key) == 0;
}

struct waiter {
    fwcache_cb cb;
    void *arg;
    struct waiter *next;
};

enum entry_state { ENTRY_PRESENT, ENTRY_FETCHING, ENTRY_VERIFYING };

struct entry {
    struct fwcache *c;
    char key[65];
    enum entry_state state;
    int verified, pins;
    uint64_t size, last_use;
    struct waiter *waiters;
    struct flight *flight;
    uv_work_t work;           /* lazy verification on the thread pool */
    int work_ok;
    char *fallback_url;       /* where to fetch it again if the check fails */
    struct entry *next;
};

struct flight {
    struct entry *e;
    CURL *easy;
    int fd;                   /* DIR/<key>.part */
    char url[2048];           /* what the current transfer asks */
    char upstream[2048];      /* the publisher's URL, when url is the mirror */
    int from_mirror;
    uint64_t wait_started;    /* uv_now of the mirror's first 503 */
    uv_timer_t wait;          /* waiting out a 503 */
    int waiting;
    struct hasher hash;
    uint64_t have;            /* bytes written */
    uint64_t hashed;          /* bytes hashed (a thread-pool job follows the writes) */
    uv_work_t hash_work;
    uint64_t work_from, work_to;
    int hashing, reset_pending, finishing, dead, hash_errno;
    uint64_t done_at;         /* uv_hrtime of the last byte */
    uint64_t total;           /* expected size (0 = unknown) */
    uint64_t told;            /* bytes written at the last progress callback */
    int retries;
    int first_chunk;          /* the current transfer has not delivered a byte yet */
    char errbuf[CURL_ERROR_SIZE];
};

struct sockctx {
    uv_poll_t poll;
    struct fwcache *c;
    curl_socket_t fd;
};

struct fwcache {
    uv_loop_t *loop;
    char dir[512];
    uint64_t cap;
    CURLM *multi;
    uv_timer_t timer;
    struct entry *entries;
    struct fwcache_stats st;
    char mirror[512];
    uint64_t mirror_wait_ms;
    uint64_t hash_step;
    void (*progress)(void *arg, const char *key);
    void *progress_arg;
    int closing;
};

#define PROGRESS_STEP (1u << 20) /* progress callbacks at most once per MB */

static void path_of(const struct fwcache *c, const char *key, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.%s", c->dir, key, ext);
}

static struct entry *find(struct fwcache *c, const char *key)
{
    for (struct entry *e = c->entries; e; e = e->next)
        if (strcasecmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void unlink_entry(struct fwcache *c, struct entry *e)
{
    for (struct entry **pp = &c->entries; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e->fallback_url);
    free(e);
}

/* Calls every waiter once; the entry stays (success) or goes (failure). */
static void tell_progress(struct fwcache *c, const char *key)
{
    if (c->progress)
        c->progress(c->progress_arg, key);
}

static void notify(struct fwcache *c, struct entry *e, int status, const char *err)
{
    char key[65];
    snprintf(key, sizeof key, "%s", e->key);
    char path[700];
    path_of(c, e->key, "ipsw", path, sizeof path);
    struct waiter *w = e->waiters;
    e->waiters = NULL;
    if (status < 0)
        unlink_entry(c, e);
    while (w) {
        struct waiter *next = w->next;
        w->cb(w->arg, status, status == 0 ? path : NULL, err);
        free(w);
        w = next;
    }
    tell_progress(c, key); /* ready or gone: readers of the partial file must know */
}

static uint64_t now_ms(const struct fwcache *c)
{
    return uv_now(c->loop);
}

/* LRU eviction under the cap; pinned and busy files stay. */
static void evict(struct fwcache *c)
{
    for (;;) {
        uint64_t total = 0;
        struct entry *victim = NULL;
        for (struct entry *e = c->entries; e; e = e->next) {
            total += e->size;
            if (e->state == ENTRY_PRESENT && e->pins == 0 && !e->waiters &&
                (!victim || e->last_use < victim->last_use))
                victim = e;
        }
        if (total <= c->cap || !victim)
            return;
        char path[700];
        path_of(c, victim->key, "ipsw", path, sizeof path);
        unlink(path);
        fr_info("fwcache", "evicted '%s' (%llu bytes) to stay under the cap", victim->key,
                (unsigned long long)victim->size);
        c->st.evicted++;
        unlink_entry(c, victim);
    }
}

/* ---- curl multi on the uv loop ------------------------------------------------- */

static void start_transfer(struct fwcache *c, struct flight *f);
static void transfer_done(struct fwcache *c, struct flight *f);

static void on_flight_closed(uv_handle_t *h)
{
    free(h->data);
}

/* A hashing job may still read the file: the last one to finish frees. */
static void flight_free(struct flight *f)
{
    if (f->hashing) {
        f->dead = 1;
        return;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    hasher_release(&f->hash);
    uv_close((uv_handle_t *)&f->wait, on_flight_closed);
}

static void flight_fail(struct fwcache *c, struct flight *f, int status, const char *why)
{
    struct entry *e = f->e;
    char part[700];
    path_of(c, e->key, "part", part, sizeof part);
    flight_free(f);
    unlink(part); /* nothing half-written stays behind */
    e->flight = NULL;
    fr_warn("fwcache", "cannot fetch '%s': %s", e->key, why);
    notify(c, e, status, why);
}

static void flight_done_ok(struct fwcache *c, struct flight *f)
{
    struct entry *e = f->e;
    char got[65], part[700], final[700];
    int matches = hasher_matches(&f->hash, e->key, got);
    int synced = f->hash_errno == 0 && fsync(f->fd) == 0;
    path_of(c, e->key, "part", part, sizeof part);
    path_of(c, e->key, "ipsw", final, sizeof final);
    if (!synced) {
        char why[800];
        snprintf(why, sizeof why, "cannot write '%s': %s", part,
                 strerror(f->hash_errno ? f->hash_errno : errno));
        flight_fail(c, f, FR_EIO, why);
        return;
    }
    if (!matches) {
        char why[256];
        snprintf(why, sizeof why, "hash mismatch: expected %s, got %s (%llu bytes)", e->key, got,
                 (unsigned long long)f->have);
        c->st.verify_failures++;
        flight_fail(c, f, FR_EIO, why);
        return;
    }
    if (rename(part, final) < 0) {
        char why[800];
        snprintf(why, sizeof why, "cannot rename '%s': %s", part, strerror(errno));
        flight_fail(c, f, FR_EIO, why);
        return;
    }
    c->st.last_finish_us = (uv_hrtime() - f->done_at) / 1000;
    e->size = f->have;
    e->state = ENTRY_PRESENT;
    e->verified = 1;
    e->last_use = now_ms(c);
    e->flight = NULL;
    flight_free(f);
    c->st.fetched++;
    notify(c, e, 0, NULL);
    evict(c);
}

static int transient(CURLcode rc)
{
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR;
}

/* The mirror cannot help: go to the publisher, keeping the bytes we have (Range). */
static void fall_back(struct fwcache *c, struct flight *f, const char *why)
{
    fr_warn("fwcache", "'%s': the mirror cannot serve it (%s); fetching from '%s'", f->e->key, why,
            f->upstream);
    snprintf(f->url, sizeof f->url, "%s", f->upstream);
    f->from_mirror = 0;
    f->retries = 0;
    c->st.fallbacks++;
    start_transfer(c, f);
}

static void on_wait_over(uv_timer_t *t)
{
    struct flight *f = t->data;
    f->waiting = 0;
    start_transfer(f->e->c, f);
}

/* 503 from the mirror: it is fetching the file itself; ask again after Retry-After
 * (bounded), which keeps the WAN at one download per file per site. */
static void mirror_wait(struct fwcache *c, struct flight *f, long long retry_after_s)
{
    uint64_t now = now_ms(c);
    if (!f->wait_started)
        f->wait_started = now;
    if (now - f->wait_started >= c->mirror_wait_ms) {
        fall_back(c, f, "kept answering 503");
        return;
    }
    uint64_t ms = retry_after_s > 0 ? (uint64_t)retry_after_s * 1000 : 1000;
    ms = ms < 200 ? 200 : ms > 10000 ? 10000 : ms;
    c->st.mirror_waits++;
    f->waiting = 1;
    uv_timer_start(&f->wait, on_wait_over, ms, 0);
}

static void transfer_failed(struct fwcache *c, struct flight *f, CURLcode rc, long http,
                            long long retry_after)
{
    char why[CURL_ERROR_SIZE + 64];
    if (rc == CURLE_HTTP_RETURNED_ERROR)
        snprintf(why, sizeof why, "HTTP %ld from the server", http);
    else
        snprintf(why, sizeof why, "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc));
    if (c->closing) {
        flight_fail(c, f, FR_ECANCELED, "cache closing");
    } else if (f->from_mirror && rc == CURLE_HTTP_RETURNED_ERROR && http == 503) {
        mirror_wait(c, f, retry_after);
    } else if (transient(rc) && f->retries < MAX_RETRIES) {
        f->retries++;
        fr_info("fwcache", "'%s': %s after %llu bytes; resuming (try %d)", f->e->key, why,
                (unsigned long long)f->have, f->retries + 1);
        start_transfer(c, f);
    } else if (f->from_mirror) {
        fall_back(c, f, why);
    } else {
        flight_fail(c, f, FR_EIO, why);
    }
}

static void check_done(struct fwcache *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct flight *f = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        CURLcode rc = m->data.result;
        long http = 0;
        curl_off_t retry_after = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &http);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RETRY_AFTER, &retry_after);
        curl_multi_remove_handle(c->multi, m->easy_handle);
        curl_easy_cleanup(m->easy_handle);
        f->easy = NULL;
        if (rc == CURLE_OK)
            transfer_done(c, f);
        else
            transfer_failed(c, f, rc, http, (long long)retry_after);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sockctx *s = h->data;
    int flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) | (events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
    check_done(s->c);
}

static void on_timeout(uv_timer_t *t)
{
    struct fwcache *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_timer(CURLM *multi, long ms, void *arg)
{
    struct fwcache *c = arg;
    if (ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct fwcache *c = arg;
    struct sockctx *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        s->c = c;
        s->fd = fd;
        uv_poll_init_socket(c->loop, &s->poll, fd);
        s->poll.data = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* ---- hashing right behind the writes -------------------------------------------
 * The loop thread only writes what arrives; one job at a time on libuv's thread pool
 * hashes the range written since the last job, reading it back from the page cache
 * (a memory copy, not a disk pass), and starts its writeback so the fsync at the end
 * has little left to do. So the loop stays free for the agent's other work, the
 * second core hashes, and "last byte -> verified" is the tail of one job. */

#define HASH_STEP_DEFAULT (8u << 20)

static void hash_range(uv_work_t *w)
{
    struct flight *f = w->data;
    f->hash_errno = hasher_add_file(&f->hash, f->fd, f->work_from, f->work_to);
    if (f->hash_errno)
        return;
    sync_file_range(f->fd, (off_t)f->work_from, (off_t)(f->work_to - f->work_from),
                    SYNC_FILE_RANGE_WRITE);
}

static void restart_hash(struct flight *f)
{
    hasher_release(&f->hash);
    hasher_init(&f->hash, f->e->key);
    f->hashed = 0;
    f->hash_errno = 0;
}

static void hash_done(uv_work_t *w, int status);

/* Queues the next range when enough has been written (or everything, at the end);
 * at the end with everything hashed, the file is checked and kept. */
static void hash_more(struct fwcache *c, struct flight *f)
{
    if (f->hashing)
        return;
    uint64_t pending = f->have - f->hashed;
    if (f->finishing && (pending == 0 || f->hash_errno)) {
        flight_done_ok(c, f);
        return;
    }
    if (pending == 0 || (!f->finishing && pending < c->hash_step))
        return;
    f->hashing = 1;
    f->work_from = f->hashed;
    f->work_to = f->have;
    f->hash_work.data = f;
    uv_queue_work(c->loop, &f->hash_work, hash_range, hash_done);
}

static void hash_done(uv_work_t *w, int status)
{
    struct flight *f = w->data;
    f->hashing = 0;
    if (f->dead) {
        flight_free(f);
        return;
    }
    if (f->reset_pending) { /* the server started over while this job ran */
        f->reset_pending = 0;
        restart_hash(f);
    } else {
        f->hashed = f->work_to;
    }
    hash_more(f->e->c, f);
}

/* The last byte is in: finish once the hashing has caught up. */
static void transfer_done(struct fwcache *c, struct flight *f)
{
    f->done_at = uv_hrtime();
    f->finishing = 1;
    hash_more(c, f);
}

static int write_all(int fd, const char *p, size_t len, uint64_t at)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return 0;
}

/* Bytes arrive and are written; a server that ignored our Range (200 instead of
 * 206) sends the whole file again, so we start over. */
static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct flight *f = arg;
    size_t len = size * n;
    long http = 0;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &http);
    if (f->first_chunk && f->have > 0 && http == 200) {
        if (ftruncate(f->fd, 0) < 0)
            return 0;
        f->have = 0;
        if (f->hashing)
            f->reset_pending = 1;
        else
            restart_hash(f);
    }
    if (f->first_chunk) { /* what the whole file will be, if the server said */
        curl_off_t cl = -1;
        curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        f->total = cl >= 0 ? f->have + (uint64_t)cl : 0;
    }
    f->first_chunk = 0;
    if (write_all(f->fd, p, len, f->have) < 0)
        return 0; /* disk full or similar: curl reports a write error */
    f->have += len;
    struct fwcache *c = f->e->c;
    c->st.bytes += len;
    if (f->from_mirror)
        c->st.mirror_bytes += len;
    else
        c->st.upstream_bytes += len;
    hash_more(c, f);
    if (f->have - f->told >= PROGRESS_STEP) {
        f->told = f->have;
        tell_progress(c, f->e->key);
    }
    return len;
}

static void start_transfer(struct fwcache *c, struct flight *f)
{
    f->first_chunk = 1;
    CURL *h = curl_easy_init();
    f->easy = h;
    f->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, f->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, f);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);  /* a stalled transfer ends ... */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);  /* ... after 30 s and is resumed */
    if (f->have > 0) {
        char range[64];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)f->have);
        curl_easy_setopt(h, CURLOPT_RANGE, range);
    }
    c->st.downloads++;
    curl_multi_add_handle(c->multi, h);
}

static int start_flight(struct fwcache *c, struct entry *e, const char *url)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f)
        return FR_ENOMEM;
    char part[700];
    path_of(c, e->key, "part", part, sizeof part);
    f->fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int err = errno;
        free(f);
        fr_warn("fwcache", "cannot create '%s': %s", part, strerror(err));
        return FR_EIO;
    }
    f->e = e;
    uv_timer_init(c->loop, &f->wait);
    f->wait.data = f;
    snprintf(f->upstream, sizeof f->upstream, "%s", url);
    char via[700];
    snprintf(via, sizeof via, "%s/ipsw/%s", c->mirror, e->key);
    f->from_mirror = c->mirror[0] && strcasecmp(url, via) != 0; /* not already the mirror */
    if (f->from_mirror)
        snprintf(f->url, sizeof f->url, "%s", via);
    else
        snprintf(f->url, sizeof f->url, "%s", url);
    hasher_init(&f->hash, e->key);
    e->flight = f;
    e->state = ENTRY_FETCHING;
    fr_info("fwcache", "fetching '%s' from '%s'", e->key, f->url);
    start_transfer(c, f);
    return 0;
}

/* ---- lazy verification of files found at open --------------------------------- */

static void verify_work(uv_work_t *w)
{
    struct entry *e = w->data;
    char path[700];
    path_of(e->c, e->key, "ipsw", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    struct hasher h;
    char got[65];
    hasher_init(&h, e->key);
    e->work_ok = fd >= 0 && fstat(fd, &st) == 0 &&
                 hasher_add_file(&h, fd, 0, (uint64_t)st.st_size) == 0 && hasher_matches(&h, e->key, got);
    hasher_release(&h);
    if (fd >= 0)
        close(fd);
}

static void verify_done(uv_work_t *w, int status)
{
    struct entry *e = w->data;
    struct fwcache *c = e->c;
    char *url = e->fallback_url;
    e->fallback_url = NULL;
    if (e->work_ok) {
        free(url);
        e->verified = 1;
        e->state = ENTRY_PRESENT;
        e->last_use = now_ms(c);
        notify(c, e, 0, NULL);
        return;
    }
    char path[700];
    path_of(c, e->key, "ipsw", path, sizeof path);
    fr_warn("fwcache", "'%s' does not match its hash any more: purged, fetching again", path);
    unlink(path);
    c->st.verify_failures++;
    c->st.purged++;
    e->size = 0;
    int rc = c->closing ? FR_ECANCELED : url ? start_flight(c, e, url) : FR_ENOTFOUND;
    free(url);
    if (rc < 0)
        notify(c, e, rc == FR_ENOTFOUND ? FR_ENOTFOUND : FR_EIO,
               "cached file did not match its hash and could not be fetched again");
}

/* ---- API ------------------------------------------------------------------------ */

static void scan(struct fwcache *c)
{
    DIR *d = opendir(c->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char key[80];
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".part") == 0) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", c->dir, de->d_name);
            unlink(p); /* a transfer cut by a restart: start it over */
            continue;
        }
        if (n < 6 || strcmp(de->d_name + n - 5, ".ipsw") != 0 || n - 5 >= sizeof key)
            continue;
        snprintf(key, sizeof key, "%.*s", (int)(n - 5), de->d_name);
        if (!fr_is_hash_hex(key))
            continue;
        struct stat st;
        char p[700];
        path_of(c, key, "ipsw", p, sizeof p);
        if (stat(p, &st) < 0)
            continue;
        struct entry *e = calloc(1, sizeof *e);
        e->c = c;
        snprintf(e->key, sizeof e->key, "%.64s", key);
        e->size = (uint64_t)st.st_size;
        e->last_use = (uint64_t)st.st_mtime; /* older than anything used since the start */
        e->next = c->entries;
        c->entries = e;
    }
    if (d)
        closedir(d);
}

int fwcache_open(uv_loop_t *loop, const char *dir, uint64_t cap_bytes, struct fwcache **out,
                 char *err, size_t errlen)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return fr_seterr(FR_EIO, err, errlen, "cannot create cache directory '%s': %s", dir,
                         strerror(errno));
    if (access(dir, W_OK) < 0)
        return fr_seterr(FR_EIO, err, errlen, "cache directory '%s' is not writable: %s", dir,
                         strerror(errno));
    struct fwcache *c = calloc(1, sizeof *c);
    if (!c)
        return FR_ENOMEM;
    c->loop = loop;
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    c->cap = cap_bytes;
    c->mirror_wait_ms = MIRROR_WAIT_DEFAULT_MS;
    c->hash_step = HASH_STEP_DEFAULT;
    c->multi = curl_multi_init();
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    scan(c);
    *out = c;
    return 0;
}

int fwcache_get(struct fwcache *c, const char *key, const char *url, fwcache_cb cb, void *arg)
{
    if (!fr_is_hash_hex(key) || c->closing)
        return FR_EINVAL;
    if (url && !*url)
        url = NULL;
    struct entry *e = find(c, key);
    if (!url && !e)
        return FR_ENOTFOUND;
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return FR_ENOMEM;
    w->cb = cb;
    w->arg = arg;
    if (e && e->state == ENTRY_PRESENT && e->verified) {
        e->last_use = now_ms(c);
        char path[700];
        path_of(c, e->key, "ipsw", path, sizeof path);
        free(w);
        cb(arg, 0, path, NULL); /* already here and verified */
        return 0;
    }
    int fresh = !e;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            free(w);
            return FR_ENOMEM;
        }
        e->c = c;
        snprintf(e->key, sizeof e->key, "%s", key);
        for (char *p = e->key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        e->next = c->entries;
        c->entries = e;
    }
    w->next = e->waiters;
    e->waiters = w;
    if (fresh) {
        int rc = start_flight(c, e, url);
        if (rc < 0) {
            e->waiters = NULL;
            free(w);
            unlink_entry(c, e);
            return rc;
        }
    } else if (e->state == ENTRY_PRESENT) { /* found at open: check it once, off the loop */
        e->fallback_url = url ? strdup(url) : NULL;
        e->state = ENTRY_VERIFYING;
        e->work.data = e;
        uv_queue_work(c->loop, &e->work, verify_work, verify_done);
    }
    return 0;
}

enum fwcache_state fwcache_lookup(struct fwcache *c, const char *key, char *path, size_t len)
{
    struct entry *e = find(c, key);
    if (!e)
        return FWCACHE_ABSENT;
    if (e->state != ENTRY_PRESENT)
        return FWCACHE_BUSY;
    if (!e->verified)
        return FWCACHE_UNCHECKED;
    path_of(c, e->key, "ipsw", path, len);
    return FWCACHE_READY;
}

void fwcache_foreach(struct fwcache *c,
                     void (*cb)(void *arg, const char *key, uint64_t size, enum fwcache_state st),
                     void *arg)
{
    char path[700];
    for (struct entry *e = c->entries; e; e = e->next)
        cb(arg, e->key, e->flight ? e->flight->have : e->size, fwcache_lookup(c, e->key, path, sizeof path));
}

void fwcache_set_mirror(struct fwcache *c, const char *base_url)
{
    size_t n = strlen(base_url ? base_url : "");
    while (n > 0 && base_url[n - 1] == '/')
        n--; /* "http://host:7712/" and "http://host:7712" are one mirror */
    snprintf(c->mirror, sizeof c->mirror, "%.*s", (int)n, n ? base_url : "");
}

int fwcache_partial(struct fwcache *c, const char *key, char *path, size_t len, uint64_t *have,
                    uint64_t *total)
{
    struct entry *e = find(c, key);
    if (!e || e->state != ENTRY_FETCHING || !e->flight)
        return FR_ENOTFOUND;
    path_of(c, e->key, "part", path, len);
    *have = e->flight->have;
    *total = e->flight->total;
    return 0;
}

void fwcache_set_progress(struct fwcache *c, void (*cb)(void *arg, const char *key), void *arg)
{
    c->progress = cb;
    c->progress_arg = arg;
}

void fwcache_set_hash_step(struct fwcache *c, uint64_t bytes)
{
    c->hash_step = bytes ? bytes : HASH_STEP_DEFAULT;
}

void fwcache_set_mirror_wait(struct fwcache *c, uint64_t ms)
{
    c->mirror_wait_ms = ms;
}

void fwcache_pin(struct fwcache *c, const char *key)
{
    struct entry *e = find(c, key);
    if (e)
        e->pins++;
}

void fwcache_unpin(struct fwcache *c, const char *key)
{
    struct entry *e = find(c, key);
    if (e && e->pins > 0)
        e->pins--;
    evict(c);
}

void fwcache_purge(struct fwcache *c, const char *key)
{
    struct entry *e = find(c, key);
    if (!e || e->state != ENTRY_PRESENT || e->waiters)
        return;
    char path[700];
    path_of(c, e->key, "ipsw", path, sizeof path);
    unlink(path);
    c->st.purged++;
    unlink_entry(c, e);
}

void fwcache_suspect(struct fwcache *c, const char *key)
{
    struct entry *e = find(c, key);
    if (e && e->state == ENTRY_PRESENT && e->verified) {
        e->verified = 0;
        fr_info("fwcache", "'%s' will be checked again before its next use", e->key);
    }
}

const struct fwcache_stats *fwcache_stats(const struct fwcache *c)
{
    return &c->st;
}

void fwcache_close(struct fwcache *c)
{
    c->closing = 1;
    for (struct entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        struct flight *f = e->state == ENTRY_FETCHING ? e->flight : NULL;
        if (f && (f->easy || f->waiting)) {
            if (f->easy) {
                curl_multi_remove_handle(c->multi, f->easy);
                curl_easy_cleanup(f->easy);
                f->easy = NULL;
            }
            uv_timer_stop(&f->wait);
            flight_fail(c, f, FR_ECANCELED, "cache closing");
        }
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, NULL);
}

void fwcache_destroy(struct fwcache **pc)
{
    struct fwcache *c = *pc;
    if (!c)
        return;
    while (c->entries) {
        struct entry *e = c->entries;
        c->entries = e->next;
        free(e->fallback_url);
        free(e);
    }
    curl_multi_cleanup(c->multi);
    free(c);
    *pc = NULL;
}

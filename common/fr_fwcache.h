/* fr_fwcache — the verified IPSW cache (the agents' caches and the controller's site mirror).
 *
 * Files are kept by hash (SHA-256, or SHA-1 where that is all a catalog gives) as
 * DIR/<hash>.ipsw. A get for a file not there downloads it with libcurl's multi
 * interface driven by the caller's libuv loop (no thread per download), hashing
 * while streaming into DIR/<hash>.part, resuming with HTTP Range after a drop
 * (bounded retries), then fsync and rename: a file under its final name has been
 * verified. Any number of gets for one hash share one download (single flight).
 * Over the size cap, the least recently used files that no attempt has pinned
 * are evicted. After a restart, files are trusted only after one hash check
 * (done on libuv's thread pool, on first use). While a file downloads, the loop thread
 * only writes; a thread-pool job right behind it hashes what was written (from the page
 * cache) and starts its writeback, so the final fsync is short.
 *
 * With a mirror set (the site controller's), a download first asks
 * MIRROR/ipsw/<hash>: 503 means the mirror is fetching it itself, so we wait
 * (Retry-After) instead of adding a WAN download; any other failure of the mirror
 * (404, refused, 502) falls back to the upstream URL, resuming where it stopped.
 *
 * Loop thread only. Callbacks run on the loop; a get that returns an error does
 * not call back. */
#ifndef FR_FWCACHE_H
#define FR_FWCACHE_H

#include <stdint.h>
#include <uv.h>

struct fwcache;

/* status 0: path is the verified file; else a negative fr_err code and a reason. */
typedef void (*fwcache_cb)(void *arg, int status, const char *path, const char *err);

struct fwcache_stats {
    uint64_t downloads;      /* transfers started (resumes included) */
    uint64_t fetched;        /* files that arrived verified */
    uint64_t bytes;          /* bytes received */
    uint64_t evicted, purged, verify_failures;
    uint64_t last_finish_us; /* last byte -> verified and ready (hash, fsync, rename) */
    uint64_t mirror_bytes, upstream_bytes; /* where the received bytes came from */
    uint64_t mirror_waits, fallbacks;      /* 503s waited out; mirror given up for upstream */
};

enum fwcache_state {
    FWCACHE_ABSENT,     /* not here */
    FWCACHE_READY,      /* here and verified */
    FWCACHE_BUSY,       /* being fetched or checked */
    FWCACHE_UNCHECKED,  /* found at open, not checked yet */
};

int fwcache_open(uv_loop_t *loop, const char *dir, uint64_t cap_bytes, struct fwcache **out,
                 char *err, size_t errlen);
/* key: 64 (SHA-256) or 40 (SHA-1) hex digits. url may be NULL for a file found at
 * open (checked, never fetched: a mismatch then fails with FR_ENOTFOUND). */
int fwcache_get(struct fwcache *c, const char *key, const char *url, fwcache_cb cb, void *arg);
/* Where key stands; READY fills path. */
enum fwcache_state fwcache_lookup(struct fwcache *c, const char *key, char *path, size_t len);
/* Calls cb for every file the cache holds or is fetching. */
void fwcache_foreach(struct fwcache *c,
                     void (*cb)(void *arg, const char *key, uint64_t size, enum fwcache_state st),
                     void *arg);
/* Base URL of a site mirror ("" = none); applies to downloads started later. */
void fwcache_set_mirror(struct fwcache *c, const char *base_url);
/* A file being fetched: its partial file, the bytes written so far, and the expected
 * size (0 = the server did not say). Written bytes are not verified yet: a reader
 * must check the hash itself (an agent's cache does). FR_ENOTFOUND when not fetching. */
int fwcache_partial(struct fwcache *c, const char *key, char *path, size_t len, uint64_t *have,
                    uint64_t *total);
/* cb(arg, key) runs as a fetch progresses (about once per MB written) and when it
 * ends, ready or failed (the mirror wakes the agents it streams to). */
void fwcache_set_progress(struct fwcache *c, void (*cb)(void *arg, const char *key), void *arg);
/* How much is written before a hashing job starts (default 8 MB; 0 = default). */
void fwcache_set_hash_step(struct fwcache *c, uint64_t bytes);
/* Waiting on a mirror's 503s gives up after this long (default 2 h). */
void fwcache_set_mirror_wait(struct fwcache *c, uint64_t ms);
void fwcache_pin(struct fwcache *c, const char *key);
void fwcache_unpin(struct fwcache *c, const char *key);
/* Forgets and deletes a file. */
void fwcache_purge(struct fwcache *c, const char *key);
/* A restore failed in a way a damaged file could explain (firmware class): the
 * next get checks the hash again and fetches the file anew if it fails; a file
 * that still matches is what its publisher signed, so it is not downloaded again. */
void fwcache_suspect(struct fwcache *c, const char *key);
const struct fwcache_stats *fwcache_stats(const struct fwcache *c);
/* Cancels transfers (their gets fail with FR_ECANCELED) and closes the handles;
 * free with fwcache_destroy after the loop has run the closes. */
void fwcache_close(struct fwcache *c);
void fwcache_destroy(struct fwcache **c);

#endif

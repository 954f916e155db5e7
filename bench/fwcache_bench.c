/* fwcache_bench — the IPSW cache's download path measured against curl.
 *
 * Serves a large file (default 2048 MB, a sparse file: the bytes are zeros) from a
 * libmicrohttpd server on 127.0.0.1, then in the same run: `curl -s -o FILE URL`,
 * the same followed by `sha256sum FILE` (what a script does to get a verified file,
 * like for like with the cache), the cache fetching it (hash while streaming, fsync,
 * rename), and 64 concurrent requests for one file. Prints the times, the ratios,
 * the time from the last byte to "verified and ready", and the upstream downloads.
 *
 * Usage: fwcache_bench [SIZE_MB] [WORK_DIR]     (needs about 2 x SIZE_MB of disk) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fr_sha.h"
#include "fr_time.h"
#include "fr_fwcache.h"

static const char *g_file;
static uint64_t g_size;
static int g_requests;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con)
{
    __atomic_add_fetch(&g_requests, 1, __ATOMIC_SEQ_CST);
    int fd = open(g_file, O_RDONLY);
    struct MHD_Response *r = MHD_create_response_from_fd64(g_size, fd);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static double secs(void)
{
    return (double)fr_time_mono_ms() / 1000.0;
}

struct got {
    int calls, status;
    double at;
};

static void on_got(void *arg, int status, const char *path, const char *err)
{
    struct got *g = arg;
    g->calls++;
    g->status = status;
    g->at = secs();
    if (status)
        fprintf(stderr, "fwcache_bench: %s\n", err);
}

/* Runs argv (stdout to /dev/null) and waits; says so when it fails. */
static void run_cmd(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "fwcache_bench: %s failed\n", argv[0]);
}

static double run_curl(const char *url, const char *out)
{
    double t0 = secs();
    run_cmd((char *const[]){ "curl", "-s", "-o", (char *)out, (char *)url, NULL });
    return secs() - t0;
}

/* curl -o, then sha256sum of the file: a verified download the way a script gets one. */
static double run_curl_sha(const char *url, const char *out)
{
    double t0 = secs();
    run_curl(url, out);
    run_cmd((char *const[]){ "sha256sum", (char *)out, NULL });
    return secs() - t0;
}

/* Fetches once; returns seconds to ready and sets *last_byte_to_ready. */
static double run_cache(uv_loop_t *loop, const char *dir, const char *key, const char *url,
                        int getters, double *last_byte_to_ready, uint64_t *downloads)
{
    struct fwcache *c = NULL;
    char err[256];
    if (fwcache_open(loop, dir, 1ull << 40, &c, err, sizeof err)) {
        fprintf(stderr, "fwcache_bench: %s\n", err);
        exit(1);
    }
    struct got *g = calloc((size_t)getters, sizeof *g);
    double t0 = secs();
    for (int i = 0; i < getters; i++)
        fwcache_get(c, key, url, on_got, &g[i]);
    while (g[getters - 1].calls == 0) {
        uv_run(loop, UV_RUN_ONCE);
    }
    *last_byte_to_ready = (double)fwcache_stats(c)->last_finish_us / 1e6;
    *downloads = fwcache_stats(c)->downloads;
    double took = g[0].at - t0;
    fwcache_close(c);
    uv_run(loop, UV_RUN_DEFAULT);
    fwcache_destroy(&c);
    free(g);
    return took;
}

#define ROUNDS 3

static double median3(double *v)
{
    double a = v[0], b = v[1], c = v[2];
    return a > b ? (b > c ? b : a > c ? c : a) : (a > c ? a : b > c ? c : b);
}

int main(int argc, char **argv)
{
    uint64_t mb = argc > 1 ? strtoull(argv[1], NULL, 10) : 2048;
    const char *work = argc > 2 ? argv[2] : "/tmp/fr-fwcache-bench";
    char file[512], out[512], cachedir[512], cmd[600], url[128];
    mkdir(work, 0755);
    snprintf(file, sizeof file, "%s/upstream.ipsw", work);
    snprintf(out, sizeof out, "%s/curl.out", work);
    snprintf(cachedir, sizeof cachedir, "%s/cache", work);
    g_size = mb * 1024 * 1024;
    g_file = file;
    int fd = open(file, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)g_size) < 0) {
        perror("fwcache_bench: cannot create the upstream file");
        return 1;
    }
    close(fd);
    /* the key: SHA-256 of SIZE zero bytes */
    static char zeros[1 << 20];
    struct fr_sha256 s;
    fr_sha256_init(&s);
    double h0 = secs();
    for (uint64_t i = 0; i < mb; i++)
        fr_sha256_update(&s, zeros, sizeof zeros);
    char key[65];
    fr_sha256_hex(&s, key);
    double hash_rate = (double)mb / (secs() - h0);

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                            0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                                            &sa, MHD_OPTION_END);
    if (!d)
        return 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x.ipsw",
             MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);

    /* Three rounds, each phase starting with nothing dirty in the page cache (sync),
     * the order rotating; the medians are reported. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    snprintf(cmd, sizeof cmd, "rm -rf %s", cachedir);
    double tc[ROUNDS], ts[ROUNDS], tf[ROUNDS], gaps[ROUNDS];
    uint64_t downloads;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < 3; k++) {
            sync();
            if ((k + r) % 3 == 0) {
                tc[r] = run_curl(url, out);
                unlink(out);
            } else if ((k + r) % 3 == 1) {
                ts[r] = run_curl_sha(url, out);
                unlink(out);
            } else {
                tf[r] = run_cache(&loop, cachedir, key, url, 1, &gaps[r], &downloads);
                if (system(cmd) != 0)
                    return 1;
            }
        }
        fprintf(stderr, "round %d: curl %.2f s, curl + sha256sum %.2f s, fwcache %.2f s\n", r + 1,
                tc[r], ts[r], tf[r]);
    }
    double t_curl = median3(tc), t_sha = median3(ts), t_cache = median3(tf), ready_gap = median3(gaps);
    int before = g_requests;
    double gap64;
    uint64_t dl64;
    double t64 = run_cache(&loop, cachedir, key, url, 64, &gap64, &dl64);
    int upstream64 = g_requests - before;

    printf("file: %llu MB on 127.0.0.1 (sparse; SHA-256 of it computes at %.0f MB/s here)\n",
           (unsigned long long)mb, hash_rate);
    printf("medians of %d rounds, each phase after a sync:\n", ROUNDS);
    printf("curl -o:         %6.2f s  %7.1f MB/s\n", t_curl, (double)mb / t_curl);
    printf("curl + sha256sum: %5.2f s  %7.1f MB/s\n", t_sha, (double)mb / t_sha);
    printf("fwcache:         %6.2f s  %7.1f MB/s  (hashed behind the writes, fsync, rename)\n",
           t_cache, (double)mb / t_cache);
    printf("ratio curl / fwcache: %.2f; (curl + sha256sum) / fwcache: %.2f\n", t_curl / t_cache,
           t_sha / t_cache);
    printf("last byte -> verified and ready: %.1f ms (the hashing job catches up; fsync, rename)\n",
           ready_gap * 1000.0);
    printf("64 concurrent requests for one file: %d upstream download(s), %.2f s\n", upstream64, t64);
    (void)downloads;
    (void)dl64;
    (void)gap64;
    MHD_stop_daemon(d);
    uv_loop_close(&loop);
    if (system(cmd) != 0)
        return 1;
    unlink(file);
    return 0;
}

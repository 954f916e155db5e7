/* flashrackd — the site controller: configuration, sockets, loop, shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fr_config.h"
#include "fr_dirs.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"
#include "fr_wire.h"

static const struct fr_cfg_field fields[] = {
    FR_CFG_FIELD_STR("controller", "agents_endpoint", struct ctl_cfg, agents_endpoint),
    FR_CFG_FIELD_STR("controller", "clients_endpoint", struct ctl_cfg, clients_endpoint),
    FR_CFG_FIELD_STR("controller", "store", struct ctl_cfg, store),
    FR_CFG_FIELD_INT("controller", "heartbeat_ms", struct ctl_cfg, heartbeat_ms, 50, 60000),
    FR_CFG_FIELD_INT("controller", "liveness", struct ctl_cfg, liveness, 2, 100),
    FR_CFG_FIELD_ENUM("controller", "log_level", struct ctl_cfg, log_level, "debug|info|warn|error"),
    FR_CFG_FIELD_ENUM("controller", "log_format", struct ctl_cfg, log_format, "auto|text|json"),
    FR_CFG_FIELD_INT("jobs", "max_attempts", struct ctl_cfg, max_attempts, 1, 100),
    FR_CFG_FIELD_BOOL("policy", "naive", struct ctl_cfg, naive),
    FR_CFG_FIELD_INT("policy", "quarantine_units", struct ctl_cfg, quarantine_units, 1, 100),
    FR_CFG_FIELD_INT("policy", "strike_window_s", struct ctl_cfg, strike_window_s, 1, 30 * 86400),
    FR_CFG_FIELD_STR("mirror", "listen", struct ctl_cfg, mirror_listen),
    FR_CFG_FIELD_STR("mirror", "url", struct ctl_cfg, mirror_url),
    FR_CFG_FIELD_STR("mirror", "dir", struct ctl_cfg, mirror_dir),
    FR_CFG_FIELD_INT("mirror", "cache_gb", struct ctl_cfg, mirror_cache_gb, 1, 1 << 20),
    FR_CFG_FIELD_STR("firmware", "catalog_dir", struct ctl_cfg, fw_catalog_dir),
    FR_CFG_FIELD_STR("firmware", "sources", struct ctl_cfg, fw_sources),
    FR_CFG_FIELD_INT("firmware", "max_age_s", struct ctl_cfg, fw_max_age_s, 60, 90 * 86400),
    FR_CFG_FIELD_STR("security", "keys_dir", struct ctl_cfg, keys_dir),
    FR_CFG_FIELD_STR("security", "insecure", struct ctl_cfg, insecure),
    FR_CFG_FIELD_STR("records", "key", struct ctl_cfg, record_key),
    FR_CFG_FIELD_STR("records", "site", struct ctl_cfg, site),
    FR_CFG_FIELD_STR("records", "destination", struct ctl_cfg, destination),
    FR_CFG_FIELD_STR("page", "listen", struct ctl_cfg, page_listen),
    FR_CFG_FIELD_STR("page", "token_file", struct ctl_cfg, page_token_file),
    FR_CFG_FIELD_INT("page", "max_clients", struct ctl_cfg, page_max_clients, 1, 1024),
    FR_CFG_FIELD_INT("page", "heartbeat_s", struct ctl_cfg, page_heartbeat_s, 1, 300),
    FR_CFG_FIELD_INT("page", "client_buffer_kb", struct ctl_cfg, page_buffer_kb, 16, 65536),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static int check_sources(const char *sources, char *err, size_t errlen)
{
    int n = 0;
    for (const char *p = sources; *p;) {
        size_t len = strcspn(p, " \t");
        if (len && !fr_is_url(p))
            return fr_seterr(FR_ECONFIG, err, errlen, "[firmware] sources: expected http(s) URLs "
                             "separated by spaces, got '%.*s'", (int)len, p);
        n += len > 0;
        p += len + strspn(p + len, " \t");
    }
    if (n > 32)
        return fr_seterr(FR_ECONFIG, err, errlen, "[firmware] sources: at most 32 URLs, got %d", n);
    return 0;
}

/* Insecure mode has no CURVE: it is for a site on one host, so every endpoint is loopback. */
static int check_security(const struct ctl_cfg *cfg, char *err, size_t errlen)
{
    if (strcmp(cfg->insecure, "no") && strcmp(cfg->insecure, "loopback"))
        return fr_seterr(FR_ECONFIG, err, errlen, "[security] insecure: expected no or loopback, "
                         "got '%s'", cfg->insecure);
    if (strcmp(cfg->insecure, "loopback"))
        return 0;
    const char *eps[] = { cfg->agents_endpoint, cfg->clients_endpoint, cfg->mirror_listen };
    const char *keys[] = { "[controller] agents_endpoint", "[controller] clients_endpoint",
                           "[mirror] listen" };
    for (int i = 0; i < 3; i++)
        if (!(i == 2 && !strcmp(eps[i], "off")) && !fr_is_loopback_endpoint(eps[i]))
            return fr_seterr(FR_ECONFIG, err, errlen, "[security] insecure = loopback binds only "
                             "loopback addresses (127.0.0.1, ::1, localhost), but %s is '%s'; use "
                             "CURVE keys ([security] keys_dir) on a network", keys[i], eps[i]);
    return 0;
}

static int check_cfg(const void *target, char *err, size_t errlen)
{
    const struct ctl_cfg *cfg = target;
    if (check_security(cfg, err, errlen) < 0 || check_sources(cfg->fw_sources, err, errlen) < 0 ||
        mirror_check_listen(cfg->mirror_listen, err, errlen) < 0 ||
        page_check_cfg(cfg->page_listen, cfg->page_token_file, err, errlen) < 0)
        return FR_ECONFIG;
    return 0;
}

/* Takes "--backup FILE" out of argv (the shared command line does not know it). */
static int take_backup_arg(int *argc, char **argv, const char **dest)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--backup") != 0)
            continue;
        if (i + 1 >= *argc || !*argv[i + 1]) {
            fprintf(stderr, "flashrackd: --backup needs a FILE to write\n");
            return 2;
        }
        *dest = argv[i + 1];
        memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 1) * sizeof *argv); /* with the NULL */
        *argc -= 2;
        return 0;
    }
    return 0;
}

static int backup(const struct ctl_cfg *cfg, const char *dest)
{
    char err[2400];
    if (store_backup(cfg->store, dest, err, sizeof err) < 0) {
        fprintf(stderr, "flashrackd: %s\n", err);
        return 1;
    }
    printf("store '%s' backed up to '%s'\n", cfg->store, dest);
    return 0;
}

static void defaults(struct ctl_cfg *cfg)
{
    snprintf(cfg->agents_endpoint, sizeof cfg->agents_endpoint, "tcp://127.0.0.1:7710");
    snprintf(cfg->clients_endpoint, sizeof cfg->clients_endpoint, "tcp://127.0.0.1:7711");
    snprintf(cfg->store, sizeof cfg->store, "flashrack.db");
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    snprintf(cfg->log_format, sizeof cfg->log_format, "auto");
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->max_attempts = 3;
    cfg->quarantine_units = 2;
    cfg->strike_window_s = 3600;
    snprintf(cfg->mirror_listen, sizeof cfg->mirror_listen, "127.0.0.1:7712");
    snprintf(cfg->mirror_dir, sizeof cfg->mirror_dir, "mirror");
    cfg->mirror_cache_gb = 64;
    snprintf(cfg->fw_catalog_dir, sizeof cfg->fw_catalog_dir, "catalog");
    cfg->fw_max_age_s = 86400;
    snprintf(cfg->keys_dir, sizeof cfg->keys_dir, "keys");
    snprintf(cfg->insecure, sizeof cfg->insecure, "no");
    snprintf(cfg->page_listen, sizeof cfg->page_listen, "127.0.0.1:7714");
    cfg->page_max_clients = 32;
    cfg->page_heartbeat_s = 15;
    cfg->page_buffer_kb = 1024;
}

/* err == NULL: the start (usage and errors printed); else a reload (errors in err). */
static int configure(int argc, char **argv, struct ctl_cfg *cfg, char *err, size_t errlen)
{
    struct fr_cfg_cli cli = {
        "flashrackd",
        "usage: flashrackd [-c controller.ini] [--set section.key=value]... [--help] [--version]\n"
        "The flashrack site controller. Runs on embedded defaults; see config/controller.ini.\n"
        "  -c, --config FILE   read settings from FILE\n"
        "  --set S.K=V         override one setting (after the file)\n"
        "  --backup FILE       copy the store (running or not) to FILE and exit\n",
        fields, NFIELDS, cfg, check_cfg,
    };
    return err ? fr_cfg_reread(argc, argv, &cli, err, errlen) : fr_cfg_cli(argc, argv, &cli);
}

/* Relative paths land in systemd's (or the FHS) state and cache directories (fr_dirs.h). */
static int resolve_dirs(struct ctl_cfg *cfg)
{
    char err[512];
    if (fr_dir_resolve(FR_DIR_STATE, cfg->store, sizeof cfg->store, "[controller] store", err,
                       sizeof err) < 0 ||
        fr_dir_resolve(FR_DIR_STATE, cfg->fw_catalog_dir, sizeof cfg->fw_catalog_dir,
                       "[firmware] catalog_dir", err, sizeof err) < 0 ||
        fr_dir_resolve(FR_DIR_CACHE, cfg->mirror_dir, sizeof cfg->mirror_dir, "[mirror] dir", err,
                       sizeof err) < 0 ||
        fr_dir_resolve(FR_DIR_STATE, cfg->keys_dir, sizeof cfg->keys_dir, "[security] keys_dir",
                       err, sizeof err) < 0 ||
        (*cfg->record_key && fr_dir_resolve(FR_DIR_STATE, cfg->record_key, sizeof cfg->record_key,
                                            "[records] key", err, sizeof err) < 0) ||
        (cfg->page_token_file[0] &&
         fr_dir_resolve(FR_DIR_STATE, cfg->page_token_file, sizeof cfg->page_token_file,
                        "[page] token_file", err, sizeof err) < 0)) {
        fprintf(stderr, "flashrackd: %s\n", err);
        return 2;
    }
    return 0;
}

/* A ROUTER for the agents (agents 1) or the clients. No ROUTER_HANDOVER: with it, a
 * connection under a routing id already in use took it over and libzmq ended the older
 * connection's pipe while that connection still sent, which could abort the process
 * (stream_engine_base.cpp: !_io_error); and whoever knew an agent's routing id could take
 * its messages. An agent's routing id is new for every connection it makes ("ID/RANDOM",
 * agent/link.c), so it never needs an older one back, and its messages go where its last
 * accepted Hello came from (agents.c). A duplicate routing id is ignored by libzmq. */
static void *open_router(struct controller *c, const char *endpoint, int agents)
{
    const char *domain = agents ? ZAP_DOMAIN_AGENTS : ZAP_DOMAIN_CLIENTS;
    void *s = zmq_socket(c->zctx, ZMQ_ROUTER);
    int one = 1;
    if (!s)
        return NULL;
    fr_zsock_set_defaults(s, FR_WIRE_MAX_MSG);
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (c->zap && zap_curve_server(c->zap, s, domain) < 0) {
        fr_error("flashrackd", "cannot use CURVE on '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    if (c->zap && zap_watch(c->zap, c->zctx, s, domain) < 0)
        fr_warn("flashrackd", "cannot watch the handshakes on '%s': keyless peers are not counted",
                endpoint);
    if (zmq_bind(s, endpoint) < 0) {
        fr_error("flashrackd", "cannot listen on '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    fr_info("flashrackd", "listening on '%s' for %s (%s)", endpoint, domain,
            c->zap ? "CURVE" : "insecure: no keys");
    return s;
}

static void on_quiet_close(uv_handle_t *h)
{
}

/* systemd's STATUS= line: "2 agents online, 48 ports, 12 restoring". */
static void on_service_status(void *arg, char *buf, size_t len)
{
    struct controller *c = arg;
    int agents = 0, ports = 0, live = 0;
    for (struct agent_state *a = c->agents; a; a = a->next)
        if (a->online) {
            agents++;
            int n = store_live_count(c->store, a->id);
            ports += store_port_count(c->store, a->id);
            live += n > 0 ? n : 0;
        }
    snprintf(buf, len, "%d agent%s online, %d ports, %d restoring", agents, agents == 1 ? "" : "s",
             ports, live);
}

static int on_reload_keys(void *arg, char *said, size_t len)
{
    struct controller *c = arg;
    return zap_reload(c->zap, said, len);
}

/* SIGHUP: the log settings, read again from the same file and overrides. */
static int on_reload_logging(void *arg, char *said, size_t len)
{
    struct controller *c = arg;
    struct ctl_cfg *fresh = malloc(sizeof *fresh);
    if (!fresh)
        return -1;
    defaults(fresh);
    int rc = configure(c->argc, c->argv, fresh, said, len);
    if (rc == 0)
        rc = fr_log_configure(fresh->log_level, fresh->log_format, said, len);
    free(fresh);
    return rc < 0 ? -1 : 0;
}

static int on_reload_catalog(void *arg, char *said, size_t len)
{
    return firmware_reload(arg, said, len);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct controller *c = h->data;
    fr_info("flashrackd", "stopping on signal %d", signum);
    c->stopping = 1;
    fr_zsock_close(&c->agents_zs, NULL);
    fr_zsock_close(&c->clients_zs, NULL);
    zap_stop(c->zap);
    uv_close((uv_handle_t *)&c->heartbeat, on_quiet_close);
    uv_close((uv_handle_t *)&c->tick_more, on_quiet_close);
    uv_close((uv_handle_t *)&c->sched, on_quiet_close);
    agents_flush_progress(c);
    uv_close((uv_handle_t *)&c->progress_flush, on_quiet_close);
    records_close(&c->records, c->store);
    checkpoint_close(&c->ckpt); /* one in flight keeps the loop running until it has ended */
    mirror_close(c);
    page_close(c);
    firmware_close(c);
    loop_probe_close(&c->probe);
    fr_service_close(&c->svc);
    uv_close((uv_handle_t *)&c->sigint, on_quiet_close);
    uv_close((uv_handle_t *)&c->sigterm, on_quiet_close);
}

/* Keys first: a controller that cannot authenticate its peers does not start. */
static int load_keys(struct controller *c, char *err, size_t errlen)
{
    if (!strcmp(c->cfg.insecure, "loopback")) {
        fr_warn("flashrackd", "INSECURE MODE ([security] insecure = loopback): no CURVE, any "
                "process on this host may act as an agent or an operator; loopback only");
        return 0;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/controller.key", c->cfg.keys_dir);
    if (access(path, F_OK) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "no keys: [security] keys_dir = '%s' has no "
                         "controller.key; make it with 'flashrack keys gen %s', or set [security] "
                         "insecure = loopback for a site on one host", c->cfg.keys_dir, path);
    return zap_new(c->cfg.keys_dir, &c->zap, err, errlen);
}

/* The record-signing key, made at first start; every run that ends from now on gets
 * its signed record after the transaction that ends it commits, and any ended run a
 * stop left without one (killed between the two) gets it now. */
static int open_records(struct controller *c, char *err, size_t errlen)
{
    char path[1100];
    if (*c->cfg.record_key)
        snprintf(path, sizeof path, "%s", c->cfg.record_key);
    else
        snprintf(path, sizeof path, "%s/record.key", c->cfg.keys_dir);
    if (!*c->cfg.record_key && mkdir(c->cfg.keys_dir, 0700) < 0 && errno != EEXIST)
        return fr_seterr(FR_EIO, err, errlen, "cannot make [security] keys_dir '%s': %s",
                         c->cfg.keys_dir, strerror(errno));
    int rc = records_open(&c->records, path, c->cfg.site, c->cfg.destination, err, errlen);
    if (rc == 0) {
        records_attach(&c->records, c->store);
        fr_info("flashrackd", "sanitization records signed with '%s' (key id %s)", path,
                c->records.key_id);
        rc = records_catch_up(&c->records, c->store, fr_time_wall_ms());
    }
    if (rc > 0)
        fr_info("flashrackd", "wrote %d sanitization records still missing (runs that ended before "
                "the last stop)", rc);
    if (rc < 0)
        fr_seterr(rc, err, errlen, "cannot write the missing sanitization records: %s",
                  store_errmsg(c->store));
    if (rc >= 0)
        records_start(&c->records, c->loop, c->store);
    return rc < 0 ? rc : 0;
}

/* Started last: nothing in start() fails after it, so a checkpoint is in flight only while
 * the loop runs (finish() closes the store once uv_run has returned). */
static void start_checkpoints(struct controller *c)
{
    char err[1200];
    if (checkpoint_start(&c->ckpt, c->loop, c->store, NULL, err, sizeof err) < 0)
        fr_warn("flashrackd", "%s; SQLite checkpoints the WAL itself, on the loop", err);
}

static int start(struct controller *c)
{
    char err[1024];
    int rc = fr_service_init(&c->svc, c->loop, "flashrackd", err, sizeof err);
    if (rc == 0)
        rc = load_keys(c, err, sizeof err);
    if (rc == 0)
        rc = store_open(c->cfg.store, &c->store, err, sizeof err);
    if (rc == 0)
        rc = open_records(c, err, sizeof err);
    if (rc < 0) {
        fr_error("flashrackd", "%s", err);
        return rc == FR_EBUSY ? 2 : 1;
    }
    c->zctx = zmq_ctx_new();
    /* The ZAP handler binds before the ROUTERs: without it CURVE accepts any client key. */
    if (c->zap && zap_start(c->zap, c->zctx, c->loop, agents_on_keys_changed, c, err, sizeof err) < 0) {
        fr_error("flashrackd", "%s", err);
        return 1;
    }
    c->agents_sock = open_router(c, c->cfg.agents_endpoint, 1);
    c->clients_sock = c->agents_sock ? open_router(c, c->cfg.clients_endpoint, 0) : NULL;
    if (!c->clients_sock)
        return 1;
    if (firmware_start(c, err, sizeof err) < 0 || mirror_start(c, err, sizeof err) < 0 ||
        page_start(c, err, sizeof err) < 0) {
        fr_error("flashrackd", "%s", err);
        return 1;
    }
    /* Only a controller that can serve starts an epoch: one that failed to bind must not
     * have made the agents of the running one say Hello again. */
    if (store_bump_epoch(c->store) < 0) {
        fr_error("flashrackd", "cannot start a controller epoch in store '%s': %s", c->cfg.store,
                 store_errmsg(c->store));
        return 1;
    }
    fr_info("flashrackd", "store '%s', controller epoch %llu", c->cfg.store,
            (unsigned long long)store_epoch(c->store));
    fr_zsock_start(&c->agents_zs, c->loop, c->agents_sock, agents_on_msg, c);
    c->agents_zs.on_drained = agents_on_drained;
    sched_expand_all(c);
    fr_zsock_start(&c->clients_zs, c->loop, c->clients_sock, clients_on_msg, c);
    uv_timer_init(c->loop, &c->heartbeat);
    uv_timer_init(c->loop, &c->tick_more);
    uv_timer_init(c->loop, &c->sched);
    uv_timer_init(c->loop, &c->progress_flush);
    c->heartbeat.data = c->tick_more.data = c->sched.data = c->progress_flush.data = c;
    c->progress = calloc(PROGRESS_MAX, sizeof *c->progress);
    c->progress_slot = calloc(PROGRESS_SLOTS, sizeof *c->progress_slot);
    if (!c->progress || !c->progress_slot)
        return 1;
    uv_timer_start(&c->progress_flush, agents_on_progress_flush, PROGRESS_FLUSH_MS, PROGRESS_FLUSH_MS);
    uv_timer_start(&c->heartbeat, agents_on_heartbeat, (uint64_t)c->cfg.heartbeat_ms,
                   (uint64_t)c->cfg.heartbeat_ms);
    uv_signal_init(c->loop, &c->sigint);
    uv_signal_init(c->loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    loop_probe_start(&c->probe, c->loop);
    loop_probe_watch(&c->probe, "agents' drains", "messages", &c->agents_zs.drains,
                     &c->agents_zs.received, &c->agents_zs.drain_cpu_ns);
    loop_probe_watch(&c->probe, "clients' drains", "requests", &c->clients_zs.drains,
                     &c->clients_zs.received, &c->clients_zs.drain_cpu_ns);
    loop_probe_watch_count(&c->probe, "scheduling passes", "claims", &c->pass_work);
    loop_probe_watch_count(&c->probe, "progress flushes", "reports", &c->flush_work);
    loop_probe_watch_count(&c->probe, "heartbeat slices", "agents", &c->tick_work);
    loop_probe_watch_count(&c->probe, "records' batches", "records", &c->records.work);
    loop_probe_watch_count(&c->probe, "records' stores", "records", &c->records.store_work);
    start_checkpoints(c);
    sched_kick(c);
    fr_service_on_status(&c->svc, on_service_status, c);
    fr_service_on_reload(&c->svc, "logging", on_reload_logging, c);
    fr_service_on_reload(&c->svc, "catalog", on_reload_catalog, c);
    if (c->zap)
        fr_service_on_reload(&c->svc, "keys", on_reload_keys, c);
    fr_service_ready(&c->svc);
    return 0;
}

static void finish(struct controller *c)
{
    if (c->agents_sock)
        zmq_close(c->agents_sock);
    if (c->clients_sock)
        zmq_close(c->clients_sock);
    zap_destroy(&c->zap);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    turn_free(c);
    sched_free(c);
    checkpoint_close(&c->ckpt);
    store_close(&c->store);
    records_release(&c->records);
    agents_free(c);
    mirror_destroy(c);
    page_destroy(c);
    firmware_destroy(c);
}

int main(int argc, char **argv)
{
    fr_wire_keep_buffers();
    struct controller c = { 0 };
    defaults(&c.cfg);
    const char *backup_to = NULL;
    int rc = take_backup_arg(&argc, argv, &backup_to);
    if (rc == 0)
        rc = configure(argc, argv, &c.cfg, NULL, 0);
    c.argc = argc;
    c.argv = argv;
    if (rc)
        return rc < 0 ? 0 : rc;
    if (backup_to)
        return backup(&c.cfg, backup_to);
    if ((rc = resolve_dirs(&c.cfg)))
        return rc;
    char said[160];
    fr_log_init("flashrackd", FR_LOG_INFO, NULL);
    fr_log_configure(c.cfg.log_level, c.cfg.log_format, said, sizeof said); /* checked by configure */
    policy_cfg_default(&c.policy);
    c.policy.naive = c.cfg.naive;
    c.policy.quarantine_units = (int)c.cfg.quarantine_units;
    c.policy.strike_window_ms = c.cfg.strike_window_s * 1000;
    signal(SIGPIPE, SIG_IGN);
    c.loop = uv_default_loop();
    rc = start(&c);
    if (rc == 0)
        uv_run(c.loop, UV_RUN_DEFAULT);
    finish(&c);
    uv_loop_close(c.loop);
    return rc;
}

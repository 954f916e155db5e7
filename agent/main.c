/* flashrack-agent — one per USB host: configuration, seams, controller link,
 * loop, shutdown (every engine's process group is killed on the way out). */
#include <curl/curl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "fr_config.h"
#include "fr_dirs.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_types.h"
#include "fr_time.h"
#include "fr_fwcache.h"
#include "doctor.h"
#include "fr_tss.h"
#include "engine_keep.h"
#include "journal.h"
#include "rack_learn.h"
#include "unit_run.h"

static const struct fr_cfg_field fields[] = {
    FR_CFG_FIELD_STR("agent", "id", struct agent_cfg, id),
    FR_CFG_FIELD_STR("agent", "controller", struct agent_cfg, controller),
    FR_CFG_FIELD_INT("agent", "slots", struct agent_cfg, slots, 1, 1024),
    FR_CFG_FIELD_INT("agent", "bus_limit", struct agent_cfg, bus_limit, 0, 1024),
    FR_CFG_FIELD_INT("agent", "cache_gb", struct agent_cfg, cache_gb, 1, 100000),
    FR_CFG_FIELD_STR("agent", "mirror", struct agent_cfg, mirror),
    FR_CFG_FIELD_STR("agent", "work_dir", struct agent_cfg, work_dir),
    FR_CFG_FIELD_STR("agent", "cache_dir", struct agent_cfg, cache_dir),
    FR_CFG_FIELD_ENUM("agent", "log_level", struct agent_cfg, log_level, "debug|info|warn|error"),
    FR_CFG_FIELD_ENUM("agent", "log_format", struct agent_cfg, log_format, "auto|text|json"),
    FR_CFG_FIELD_ENUM("seams", "topology", struct agent_cfg, topology, "sim|usb"),
    FR_CFG_FIELD_ENUM("seams", "discovery", struct agent_cfg, discovery, "sim|usb|sim+usbmuxd"),
    FR_CFG_FIELD_ENUM("seams", "power", struct agent_cfg, power, "sim|usb|none"),
    FR_CFG_FIELD_STR("seams", "sim_socket", struct agent_cfg, sim_socket),
    FR_CFG_FIELD_STR("seams", "host_root", struct agent_cfg, host_root),
    FR_CFG_FIELD_STR("seams", "rack_map", struct agent_cfg, rack_map),
    FR_CFG_FIELD_STR("engine", "path", struct agent_cfg, engine_path),
    FR_CFG_FIELD_INT("engine", "watchdog_s", struct agent_cfg, watchdog_s, 1, 86400),
    FR_CFG_FIELD_INT("engine", "verify_wait_s", struct agent_cfg, verify_wait_s, 0, 3600),
    FR_CFG_FIELD_STR("engine", "extra_args", struct agent_cfg, engine_extra),
    FR_CFG_FIELD_STR("agent", "key", struct agent_cfg, key),
    FR_CFG_FIELD_STR("agent", "controller_key", struct agent_cfg, controller_key),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static int check_cfg(const void *target, char *err, size_t errlen)
{
    const struct agent_cfg *c = target;
    if (!c->id[0])
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] id: expected a name for this agent");
    if (!strcmp(c->discovery, "sim+usbmuxd") && strcmp(c->topology, "sim"))
        return fr_seterr(FR_ECONFIG, err, errlen, "[seams] discovery: sim+usbmuxd needs topology = "
                                                  "sim (the simulator's feed gives the ports)");
    if (strcmp(c->mirror, "auto") && strcmp(c->mirror, "off") && !fr_is_url(c->mirror))
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] mirror: expected auto, off or an "
                                                  "http(s) URL, got '%s'", c->mirror);
    if (!c->key[0] != !c->controller_key[0])
        return fr_seterr(FR_ECONFIG, err, errlen, "[agent] %s: expected a file, since [agent] %s "
                         "is set (both, for CURVE, or neither, for a controller in insecure mode)",
                         c->key[0] ? "controller_key" : "key", c->key[0] ? "key" : "controller_key");
    if (!strcmp(c->topology, "sim") && !c->sim_socket[0])
        return fr_seterr(FR_ECONFIG, err, errlen, "[seams] sim_socket: the simulator's socket is "
                                                  "needed when topology = sim");
    return 0;
}

/* err == NULL: the start (usage and errors printed); else a reload (errors in err). */
static int configure(int argc, char **argv, struct agent_cfg *cfg, char *err, size_t errlen)
{
    struct fr_cfg_cli cli = {
        "flashrack-agent",
        "usage: flashrack-agent [-c agent.ini] [--set section.key=value]... [--help] [--version]\n"
        "       flashrack-agent rack learn [--prefix P] [-c agent.ini] [--set ...]\n"
        "       flashrack-agent doctor [-o text|json] [--signing-url URL] [-c agent.ini] [--set ...]\n"
        "The flashrack agent for one USB host. See config/agent.ini for every setting.\n",
        fields, NFIELDS, cfg, check_cfg,
    };
    return err ? fr_cfg_reread(argc, argv, &cli, err, errlen) : fr_cfg_cli(argc, argv, &cli);
}

static void defaults(struct agent_cfg *c)
{
    snprintf(c->id, sizeof c->id, "agent-1");
    snprintf(c->controller, sizeof c->controller, "tcp://127.0.0.1:7710");
    c->slots = 24;
    c->bus_limit = 10;
    c->cache_gb = 200;
    snprintf(c->mirror, sizeof c->mirror, "auto");
    snprintf(c->work_dir, sizeof c->work_dir, "agent-work");
    snprintf(c->log_level, sizeof c->log_level, "info");
    snprintf(c->log_format, sizeof c->log_format, "auto");
    snprintf(c->topology, sizeof c->topology, "usb");
    snprintf(c->discovery, sizeof c->discovery, "usb");
    snprintf(c->power, sizeof c->power, "usb");
    snprintf(c->engine_path, sizeof c->engine_path, "idevicerestore");
    c->watchdog_s = 300;
    c->verify_wait_s = 180;
}

/* Relative paths land in systemd's (or the FHS) state and cache directories (fr_dirs.h). */
static int resolve_dirs(struct agent_cfg *c)
{
    char err[1200], base[512];
    int rc = fr_dir_resolve(FR_DIR_STATE, c->work_dir, sizeof c->work_dir, "[agent] work_dir", err,
                            sizeof err);
    if (rc == 0 && !c->cache_dir[0]) {
        /* The cache directory's ipsw/ when there is one, else WORK_DIR/ipsw. */
        const char *parent = fr_dir_base(FR_DIR_CACHE, base, sizeof base) ? base : c->work_dir;
        if ((size_t)snprintf(c->cache_dir, sizeof c->cache_dir, "%s/ipsw", parent) >= sizeof c->cache_dir)
            rc = fr_seterr(FR_ECONFIG, err, sizeof err, "[agent] cache_dir: '%s/ipsw' is too long", parent);
    }
    if (rc == 0)
        rc = fr_dir_resolve(FR_DIR_CACHE, c->cache_dir, sizeof c->cache_dir, "[agent] cache_dir", err,
                            sizeof err);
    if (rc < 0) {
        fprintf(stderr, "flashrack-agent: %s\n", err);
        return 2;
    }
    return 0;
}

/* SIGHUP: the log settings, read again from the same file and overrides. */
static int on_reload_logging(void *arg, char *said, size_t len)
{
    struct agent *a = arg;
    struct agent_cfg *fresh = malloc(sizeof *fresh);
    if (!fresh)
        return -1;
    memset(fresh, 0, sizeof *fresh);
    defaults(fresh);
    int rc = configure(a->argc, a->argv, fresh, said, len);
    if (rc == 0)
        rc = fr_log_configure(fresh->log_level, fresh->log_format, said, len);
    free(fresh);
    return rc < 0 ? -1 : 0;
}

static void on_quiet_close(uv_handle_t *h)
{
}

/* systemd's STATUS= line: "24 ports, 3 restoring, controller connected". */
static void on_service_status(void *arg, char *buf, size_t len)
{
    struct agent *a = arg;
    snprintf(buf, len, "%zu ports, %d restoring, controller %s", a->nports, unit_run_count(a),
             a->welcomed ? "connected" : "not connected");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    if (a->stopping)
        return;
    a->stopping = 1;
    fr_info("agent", "stopping on signal %d: ending %d restores (reported interrupted: the "
            "controller runs them again)", signum, unit_run_count(a));
    unit_run_kill_all(a);
    fwcache_close(a->cache);
    link_close(a);
    a->seams->close(a->seams, NULL);
    fr_service_close(&a->svc);
    uv_close((uv_handle_t *)&a->sigint, on_quiet_close);
    uv_close((uv_handle_t *)&a->sigterm, on_quiet_close);
}

/* An engine that cannot run, or lacks -P, is this agent's configuration error: refused
 * at start, not found out by every restore. */
static int probe_engine(struct agent *a, char *err, size_t errlen)
{
    int rc = engine_probe(a->cfg.engine_path, &a->engine, err, errlen);
    if (rc < 0)
        return rc;
    const struct engine_info *e = &a->engine;
    if (e->models_known)
        fr_info("agent", "engine '%s': %s %s, -P, %zu iPhone models up to %s (libirecovery '%s')",
                e->path, e->name, e->version, e->nmodels, e->newest, e->irecovery);
    else
        fr_info("agent", "engine '%s': %s %s, -P, no model table (it loads no libirecovery)",
                e->path, e->name, e->version);
    /* the simulator's engine finds the simulator through this (sim/PROTOCOL.md) */
    if (a->cfg.sim_socket[0]) {
        snprintf(a->engine_sim_env, sizeof a->engine_sim_env, "FLASHRACK_SIM_SOCKET=%s",
                 a->cfg.sim_socket);
        a->engine_env[0] = a->engine_sim_env;
    }
    return 0;
}

/* The configured seams into a->seams; 0, or an exit code (logged). */
static int make_seams(struct agent *a)
{
    char err[1024];
    int rc = strcmp(a->cfg.topology, "sim") == 0
                 ? seams_sim_new(a->cfg.sim_socket, a->cfg.id,
                                 strcmp(a->cfg.discovery, "sim+usbmuxd") == 0, &a->seams)
                 : seams_usb_new(a->cfg.host_root, a->cfg.rack_map, &a->seams, err, sizeof err);
    if (rc < 0) {
        fr_error("agent", "%s", err);
        return rc == FR_ECONFIG ? 2 : 1;
    }
    return 0;
}

/* Takes "--name VALUE" pairs for the names listed out of argv[from..] (values into
 * vals, in the order of names); the rest are moved to argv[1..]. Returns the new argc. */
static int take_options(int argc, char **argv, int from, const char *const *names, const char **vals,
                        size_t n)
{
    int out = 1;
    for (int i = from; i < argc; i++) {
        size_t k = 0;
        while (k < n && !(strcmp(argv[i], names[k]) == 0 && i + 1 < argc))
            k++;
        if (k < n)
            vals[k] = argv[++i];
        else
            argv[out++] = argv[i];
    }
    return out;
}

/* `flashrack-agent rack learn [--prefix P] [-c agent.ini] ...`. Returns the exit code. */
static int rack_learn(int argc, char **argv)
{
    struct agent a = { 0 };
    const char *names[] = { "--prefix" }, *prefix[] = { "P-" };
    int n = take_options(argc, argv, 3, names, prefix, 1);
    defaults(&a.cfg);
    int rc = configure(n, argv, &a.cfg, NULL, 0);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!a.cfg.rack_map[0]) {
        fprintf(stderr, "flashrack-agent: rack learn: [seams] rack_map: expected the file to write\n");
        return 2;
    }
    char said[160];
    fr_log_init("flashrack-agent", FR_LOG_INFO, NULL);
    fr_log_configure(a.cfg.log_level, a.cfg.log_format, said, sizeof said);
    signal(SIGPIPE, SIG_IGN);
    char keep[sizeof a.cfg.rack_map];
    snprintf(keep, sizeof keep, "%s", a.cfg.rack_map);
    a.cfg.rack_map[0] = '\0'; /* learning writes the map: the seams label by path */
    a.loop = uv_default_loop();
    rc = make_seams(&a);
    if (rc == 0)
        rc = rack_learn_run(a.loop, a.seams, keep, prefix[0]);
    seams_destroy(&a.seams);
    uv_loop_close(a.loop);
    return rc;
}

/* `flashrack-agent doctor [-o json] [--signing-url URL] [-c agent.ini] ...`: 0 when no
 * check failed, 1 otherwise, 2 for a usage or configuration error. usbmuxd is looked
 * for where libusbmuxd looks: $USBMUXD_SOCKET_ADDRESS (UNIX:PATH or HOST:PORT), else
 * /var/run/usbmuxd. */
static int doctor(int argc, char **argv)
{
    struct agent_cfg cfg;
    const char *names[] = { "-o", "--signing-url" }, *vals[] = { "text", FR_TSS_APPLE_URL };
    int n = take_options(argc, argv, 2, names, vals, 2);
    if (strcmp(vals[0], "text") && strcmp(vals[0], "json")) {
        fprintf(stderr, "flashrack-agent doctor: -o: expected text or json, got '%s'\n", vals[0]);
        return 2;
    }
    defaults(&cfg);
    int rc = configure(n, argv, &cfg, NULL, 0);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = resolve_dirs(&cfg)))
        return rc;
    char mux[PATH_MAX];
    snprintf(mux, sizeof mux, "%s/var/run/usbmuxd", cfg.host_root);
    struct doctor_opts o = { cfg.host_root, getenv("USBMUXD_SOCKET_ADDRESS"), mux, cfg.engine_path,
                             cfg.bus_limit, cfg.cache_dir, cfg.cache_gb, cfg.mirror, vals[1], 3000 };
    struct doctor_report r;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    doctor_run(&o, &r);
    curl_global_cleanup();
    (strcmp(vals[0], "json") == 0 ? doctor_print_json : doctor_print_text)(&r, stdout);
    return doctor_exit_code(&r);
}

static int start(struct agent *a)
{
    char err[1024];
    if (fr_service_init(&a->svc, a->loop, "flashrack-agent", err, sizeof err) < 0) {
        fr_error("agent", "%s", err);
        return 1;
    }
    if (probe_engine(a, err, sizeof err) < 0) {
        fr_error("agent", "%s", err);
        return 2;
    }
    if (engine_keep_find(a->keeper, sizeof a->keeper) < 0)
        fr_warn("agent", "no flashrack-engine-keeper beside this program: a restore running when "
                "this agent stops is not counted when it ends");
    mkdir(a->cfg.work_dir, 0755);
    int rc = make_seams(a);
    if (rc)
        return rc;
    if (fwcache_open(a->loop, a->cfg.cache_dir, (uint64_t)a->cfg.cache_gb << 30, &a->cache, err,
                     sizeof err) < 0) {
        fr_error("agent", "%s", err);
        return 1;
    }
    if (fr_is_url(a->cfg.mirror)) /* else: auto follows the controller's Welcome */
        fwcache_set_mirror(a->cache, a->cfg.mirror);
    if (journal_open(a, err, sizeof err) < 0) {
        fr_error("agent", "%s", err);
        return 1;
    }
    struct seam_events ev = { ports_on_topology, ports_on_attach, ports_on_detach, ports_on_mode, a };
    if (a->seams->start(a->seams, a->loop, &ev, err, sizeof err) < 0 ||
        link_start(a, err, sizeof err) < 0) {
        fr_error("agent", "%s", err);
        return 1;
    }
    unit_run_recover(a); /* their results go out before the first Hello lists the outbox */
    uv_signal_init(a->loop, &a->sigint);
    uv_signal_init(a->loop, &a->sigterm);
    a->sigint.data = a->sigterm.data = a;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    fr_service_on_status(&a->svc, on_service_status, a);
    fr_service_on_reload(&a->svc, "logging", on_reload_logging, a);
    fr_service_ready(&a->svc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "rack") == 0 && strcmp(argv[2], "learn") == 0)
        return rack_learn(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "doctor") == 0)
        return doctor(argc, argv);
    struct agent a = { 0 };
    defaults(&a.cfg);
    int rc = configure(argc, argv, &a.cfg, NULL, 0);
    if (rc)
        return rc < 0 ? 0 : rc;
    if ((rc = resolve_dirs(&a.cfg)))
        return rc;
    a.argc = argc;
    a.argv = argv;
    char said[160];
    fr_log_init("flashrack-agent", FR_LOG_INFO, NULL);
    fr_log_configure(a.cfg.log_level, a.cfg.log_format, said, sizeof said); /* checked by configure */
    signal(SIGPIPE, SIG_IGN);
    a.session = (fr_time_wall_ms() << 16) ^ (uint64_t)getpid();
    a.loop = uv_default_loop();
    rc = start(&a);
    if (rc == 0)
        uv_run(a.loop, UV_RUN_DEFAULT);
    unit_run_free_all(&a);
    if (a.dealer)
        zmq_close(a.dealer);
    if (a.zctx)
        zmq_ctx_term(a.zctx);
    seams_destroy(&a.seams);
    fwcache_destroy(&a.cache);
    journal_close(&a);
    engine_info_release(&a.engine);
    free(a.ports);
    uv_loop_close(a.loop);
    return rc;
}

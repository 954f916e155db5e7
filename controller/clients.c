/* clients — operator requests (submit, query, cancel) on the clients ROUTER.
 * Every reply is a ClientReply carrying a JSON document (proto/PROTOCOL.md),
 * sent only after the store has committed what the request changed. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_catalog.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_time.h"
#include "fr_types.h"
#include "fr_wire.h"

/* The most rows a page of a document holds (a page of large rows ends sooner, once its
 * text passes STORE_PAGE_BYTES, so that it fits a message). */
#define PAGE_MAX 1000

/* A reply whose document is already JSON text (taken: freed here; NULL sends {}). */
static void reply_text(struct controller *c, const void *id, size_t idlen, uint64_t seq, int status,
                       const char *error, char *text)
{
    Fr__ClientReply r = FR__CLIENT_REPLY__INIT;
    r.status = status;
    r.error = (char *)(error ? error : "");
    r.json = text ? text : "{}";
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "controller";
    env.session = store_epoch(c->store);
    env.ack = seq;
    env.body_case = FR__ENVELOPE__BODY_REPLY;
    env.reply = &r;
    int rc = fr_wire_send(&c->clients_zs, id, idlen, &env);
    if (rc < 0)
        fr_warn("clients", "cannot reply: %s", fr_strerror(rc));
    free(text);
}

static void reply_to(struct controller *c, const void *id, size_t idlen, uint64_t seq, int status,
                     const char *error, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    reply_text(c, id, idlen, seq, status, error, text);
}

static void reply(struct controller *c, zmq_msg_t *id, uint64_t seq, int status, const char *error,
                  json_t *doc)
{
    reply_to(c, zmq_msg_data(id), zmq_msg_size(id), seq, status, error, doc);
}

/* A refresh answers when the catalog sources have been fetched. */
struct pending_reply {
    struct controller *c;
    uint64_t seq;
    size_t idlen;
    unsigned char id[256];
};

static void on_refreshed(void *arg, int status, json_t *report)
{
    struct pending_reply *p = arg;
    if (!p->c->stopping)
        reply_to(p->c, p->id, p->idlen, p->seq, status,
                 status < 0 ? "some catalog sources could not be fetched" : NULL, json_incref(report));
    free(p);
}

static void on_refresh(struct controller *c, zmq_msg_t *id, uint64_t seq)
{
    struct pending_reply *p = calloc(1, sizeof *p);
    if (!p || zmq_msg_size(id) > sizeof p->id) {
        free(p);
        reply(c, id, seq, FR_ENOMEM, "cannot refresh now", NULL);
        return;
    }
    if (!*c->cfg.fw_sources) {
        free(p);
        reply(c, id, seq, FR_EINVAL, "no [firmware] sources configured: this site's catalog is the "
              "files in its catalog_dir", NULL);
        return;
    }
    *p = (struct pending_reply){ c, seq, zmq_msg_size(id), { 0 } };
    memcpy(p->id, zmq_msg_data(id), p->idlen);
    firmware_refresh(c, on_refreshed, p);
}

static int validate_submit(const Fr__SubmitRequest *s, char *err, size_t errlen)
{
    if (!*s->idempotency_key)
        return fr_seterr(FR_EINVAL, err, errlen, "submit: 'idempotency_key' must be set");
    if (!*s->firmware)
        return fr_seterr(FR_EINVAL, err, errlen, "submit: 'firmware' must name an IPSW file or URL, "
                         "or a catalog selector (latest, a version, a build)");
    if (fr_is_url(s->firmware) && !fr_is_hash_hex(s->firmware_sha256))
        return fr_seterr(FR_EINVAL, err, errlen, "submit: a downloaded IPSW needs its SHA-256 "
                         "(or SHA-1): 'firmware_sha256' has %zu characters",
                         strlen(s->firmware_sha256));
    if (!fr_is_hex(s->firmware_sha256))
        return fr_seterr(FR_EINVAL, err, errlen, "submit: 'firmware_sha256' must be hex digits");
    /* A relative path would mean something else on each agent's host. */
    if (!fr_is_url(s->firmware) && !fr_catalog_is_selector(s->firmware) && s->firmware[0] != '/')
        return fr_seterr(FR_EINVAL, err, errlen, "submit: 'firmware' must be an http(s) URL, a "
                         "catalog selector (latest, a version, a build) or an absolute path to an "
                         "IPSW on the agents' hosts, got '%s'", s->firmware);
    if (s->n_ecids + s->n_agents + s->n_ports == 0)
        return fr_seterr(FR_EINVAL, err, errlen, "submit: name units (ECIDs), agents or ports");
    for (size_t i = 0; i < s->n_ecids; i++)
        if (s->ecids[i] == 0)
            return fr_seterr(FR_EINVAL, err, errlen, "submit: ECID #%zu is zero", i + 1);
    for (size_t i = 0; i < s->n_agents; i++)
        if (!*s->agents[i])
            return fr_seterr(FR_EINVAL, err, errlen, "submit: agent #%zu is empty", i + 1);
    return 0;
}

/* Refuses what cannot work now (proto/PROTOCOL.md "submit"): a named unit that is held or
 * in another live job (unless queued), a named unit not connected, or nothing to restore,
 * unless the job waits for units (--wait, --standing). */
static int submit_refusal(const Fr__SubmitRequest *s, const json_t *plan, char *err, size_t errlen)
{
    size_t i;
    const json_t *u;
    int waits = s->wait || s->standing;
    json_array_foreach(json_object_get(plan, "skipped"), i, u) {
        const char *why = json_string_value(json_object_get(u, "why"));
        long long job = (long long)json_integer_value(json_object_get(u, "job_id"));
        const char *e = json_string_value(json_object_get(u, "ecid"));
        if (s->n_ecids && !strcmp(why, "held"))
            return fr_seterr(FR_ESTATE, err, errlen, "submit: unit %s is held: it was found "
                             "hardware_suspect in job %lld ('flashrack units release %s' after a "
                             "technician checked it)", e, job, e);
        if (s->n_ecids && !s->queue)
            return fr_seterr(FR_EBUSY, err, errlen, "submit: unit %s is in job %lld, which is still "
                             "running (--queue restores it after that job)", e, job);
    }
    const json_t *unconnected = json_array_get(json_object_get(plan, "unconnected"), 0);
    if (!waits && unconnected)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: unit %s is not connected to any agent "
                         "(--wait waits for it)", json_string_value(unconnected));
    if (!waits && json_integer_value(json_object_get(plan, "matched")) == 0)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "submit: 0 units matched (%lld skipped: held or in "
                         "another job); --wait or --standing waits for units",
                         (long long)json_integer_value(json_object_get(plan, "skipped_total")));
    return 0;
}

/* The operator a sanitization record names: the key's name in the allowlist. */
static const char *operator_of(struct controller *c, const zmq_msg_t *request)
{
    if (!c->zap)
        return "unauthenticated (insecure mode)";
    const struct zap_peer *p = zap_peer_of(c->zap, request);
    return p ? p->name : "";
}

static void on_submit(struct controller *c, zmq_msg_t *id, uint64_t seq, const Fr__SubmitRequest *s,
                      const char *operator)
{
    char err[512] = "";
    if (validate_submit(s, err, sizeof err) < 0) {
        reply(c, id, seq, FR_EINVAL, err, NULL);
        return;
    }
    if (fr_catalog_is_selector(s->firmware) && !firmware_known(c, s->firmware)) {
        snprintf(err, sizeof err, "submit: no firmware in the catalog matches '%s' (see 'flashrack "
                 "firmware list'; 'flashrack firmware refresh' fetches the sources)", s->firmware);
        reply(c, id, seq, FR_ENOTFOUND, err, NULL);
        return;
    }
    struct job_spec spec = {
        .key = s->idempotency_key, .name = *s->name ? s->name : "job", .firmware = s->firmware,
        .sha256 = s->firmware_sha256, .ecids = s->ecids, .necids = s->n_ecids,
        .agents = s->agents, .nagents = s->n_agents, .ports = s->ports, .nports = s->n_ports,
        .count = s->count,
        .max_attempts = s->max_attempts ? s->max_attempts : (uint32_t)c->cfg.max_attempts,
        .erase = !s->update, .standing = s->standing, .same_port = s->same_port_retry,
        .operator = operator,
    };
    uint64_t job = 0;
    int created = 0;
    json_t *plan = NULL;
    int rc = store_job_by_key(c->store, spec.key, &job);
    if (rc == 0) /* a new request: is there anything it can do? */
        rc = store_job_plan(c->store, &spec, &plan, err, sizeof err);
    if (rc == 0)
        rc = submit_refusal(s, plan, err, sizeof err);
    if (rc >= 0)
        rc = store_job_submit(c->store, &spec, fr_time_wall_ms(), &job, &created, err, sizeof err);
    if (rc < 0) {
        json_decref(plan);
        reply(c, id, seq, rc, *err ? err : "cannot read the store", NULL);
        return;
    }
    if (created)
        fr_info("clients", "job %llu submitted ('%s', %zu units, %zu agents, %zu ports, firmware '%s')",
                (unsigned long long)job, spec.name, s->n_ecids, s->n_agents, s->n_ports, s->firmware);
    if (created && fr_is_url(s->firmware)) { /* validated: it carries its hash */
        /* Prefetch: the mirror and the agents start before the first unit needs it. */
        mirror_want(c, s->firmware_sha256, s->firmware);
        agents_prefetch(c, s->firmware, s->firmware_sha256, s->agents, s->n_agents);
    }
    json_t *doc = json_pack("{s:I, s:b}", "job_id", (json_int_t)job, "created", created);
    if (plan) { /* what it matched, counted: a list of 10,000 units would be most of the turn */
        json_object_update(doc, plan);
        json_decref(plan);
    }
    reply(c, id, seq, 0, NULL, doc);
    sched_expand_all(c);
    sched_kick(c);
}

/* The agents as the store has them, with what this process knows of each (online,
 * counters), the loop's stalls and the security document (zap_doc). */
static json_t *agents_doc(struct controller *c)
{
    json_t *doc = store_doc_agents(c->store);
    if (!doc)
        return NULL;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "agents"), i, row) {
        struct agent_state *a = agents_find(c, json_string_value(json_object_get(row, "id")));
        json_object_set_new(row, "state", json_string(a && a->online ? "online" : "offline"));
        json_object_set_new(row, "dropped_msgs", json_integer(a ? (json_int_t)a->dropped : 0));
        json_object_set_new(row, "mismatched", json_integer(a ? (json_int_t)a->mismatched : 0));
        json_object_set_new(row, "refused", json_integer(a ? (json_int_t)a->refused : 0));
    }
    json_object_set_new(doc, "dropped_unknown", json_integer((json_int_t)c->dropped_unknown));
    json_object_set_new(doc, "loop", json_pack("{s:I, s:I, s:i, s:I, s:o}", "stalls", (json_int_t)c->probe.stalls,
                                               "max_lag_ms", (json_int_t)c->probe.max_lag_ms,
                                               "stall_ms", LOOP_STALL_MS,
                                               /* every message read on the agents socket */
                                               "agent_messages", (json_int_t)c->agents_zs.received,
                                               /* each kind of periodic turn: its longest runs */
                                               "turns", loop_probe_turns(&c->probe)));
    json_object_set_new(doc, "security", zap_doc(c->zap));
    return doc;
}

/* The button sequence for each move whose unit should start from DFU. */
static void moves_buttons(json_t *moves)
{
    size_t i;
    json_t *m;
    json_array_foreach(moves, i, m) {
        const char *pt = json_string_value(json_object_get(m, "product_type"));
        int dfu = json_is_true(json_object_get(m, "dfu"));
        json_object_set_new(m, "buttons", json_string(dfu && pt ? policy_dfu_buttons(pt) : ""));
    }
}

static json_t *with_buttons(json_t *doc)
{
    moves_buttons(json_object_get(doc, "moves"));
    return doc;
}

/* The signed records of a job, or of a unit across jobs, and "pending": how many of its
 * ended runs have their record still to be written (records.h: after the run's commit).
 * FR_EAGAIN when none is written yet but some are pending, FR_ENOTFOUND when there are
 * none at all (replied here: NULL). */
static json_t *records_doc(struct controller *c, zmq_msg_t *id, uint64_t seq, const Fr__QueryRequest *q)
{
    json_t *doc = store_doc_records(c->store, q->job_id, q->ecid);
    int64_t pending = doc ? store_records_pending(c->store, q->job_id, q->ecid) : -1;
    char err[300], e[FR_ECID_STRLEN], what[80];
    if (!doc || pending < 0) {
        json_decref(doc);
        snprintf(err, sizeof err, "cannot read the store: %s", store_errmsg(c->store));
        reply(c, id, seq, FR_ESTORE, err, NULL);
        return NULL;
    }
    json_object_set_new(doc, "pending", json_integer(pending));
    if (json_array_size(json_object_get(doc, "records")) > 0)
        return doc;
    json_decref(doc);
    fr_ecid_format(q->ecid, e, sizeof e);
    if (q->job_id)
        snprintf(what, sizeof what, "job %llu%s%s", (unsigned long long)q->job_id, q->ecid ? " unit " : "",
                 q->ecid ? e : "");
    else
        snprintf(what, sizeof what, "unit %s", e);
    if (pending > 0) {
        snprintf(err, sizeof err, "the sanitization records of %s are pending: %lld run%s ended and "
                 "%s being signed; ask again in a moment", what, (long long)pending,
                 pending == 1 ? "" : "s", pending == 1 ? "its record is" : "their records are");
        reply(c, id, seq, FR_EAGAIN, err, NULL);
    } else {
        snprintf(err, sizeof err, "no sanitization records for %s%s", what, q->job_id ? " (a record is "
                 "written when a unit's run ends)" : "");
        reply(c, id, seq, FR_ENOTFOUND, err, NULL);
    }
    return NULL;
}

/* A page's cursor is "" or what the controller sent as "next": a JSON array (the store
 * binds its values; one that is not its document's key gives an empty last page). */
static int cursor_ok(const char *cursor)
{
    json_t *key = *cursor ? json_loads(cursor, 0, NULL) : NULL;
    int ok = !*cursor || json_is_array(key);
    json_decref(key);
    return ok;
}

/* status, watch and report, whose jobs' totals count the matches a selector job has no
 * run of yet while the scheduler is still looking at the whole site (store_docs_expanding). */
static char *jobs_text(struct controller *c, const Fr__QueryRequest *q, const struct store_page *pg)
{
    char *text;
    store_docs_expanding(c->store, c->expand_all);
    if (q->kind == FR__QUERY_REQUEST__KIND__REPORT)
        text = store_text_report(c->store, q->job_id, q->ecid, pg);
    else if (q->kind == FR__QUERY_REQUEST__KIND__STATUS)
        text = store_text_status(c->store, q->job_id, 0, pg, NULL);
    else if (!q->limit)
        text = store_text_status(c->store, q->job_id, 1, NULL, moves_buttons);
    else if (*pg->cursor)
        text = store_text_watch_snapshot(c->store, q->job_id, (int64_t)q->since, pg, moves_buttons);
    else
        text = store_text_watch(c->store, q->job_id, (int64_t)q->since, pg->limit, moves_buttons);
    store_docs_expanding(c->store, 0);
    return text;
}

static void on_query(struct controller *c, zmq_msg_t *id, uint64_t seq, const Fr__QueryRequest *q)
{
    json_t *doc = NULL;
    char *text = NULL; /* the documents of many rows are written as text by the store */
    /* a page's rows fit in a message: larger pages are cut to this */
    struct store_page pg = { q->cursor ? q->cursor : "", q->limit < PAGE_MAX ? (int)q->limit : PAGE_MAX };
    if (!cursor_ok(pg.cursor)) {
        reply(c, id, seq, FR_EINVAL, "query: 'cursor' must be the 'next' of the page before (a JSON "
              "array), or \"\" for the first page", NULL);
        return;
    }
    switch (q->kind) {
    case FR__QUERY_REQUEST__KIND__STATUS:
    case FR__QUERY_REQUEST__KIND__WATCH:
    case FR__QUERY_REQUEST__KIND__REPORT: text = jobs_text(c, q, &pg); break;
    case FR__QUERY_REQUEST__KIND__UNITS: text = store_text_units(c->store, &pg); break;
    case FR__QUERY_REQUEST__KIND__PORTS: text = store_text_ports(c->store, &pg); break;
    case FR__QUERY_REQUEST__KIND__AGENTS: doc = agents_doc(c); break;
    case FR__QUERY_REQUEST__KIND__MOVES: doc = with_buttons(store_doc_moves(c->store)); break;
    case FR__QUERY_REQUEST__KIND__UNIT: {
        doc = store_doc_unit(c->store, q->ecid);
        if (!doc) {
            char err[96], e[FR_ECID_STRLEN];
            fr_ecid_format(q->ecid, e, sizeof e);
            snprintf(err, sizeof err, "no unit %s: never seen, never in a job", e);
            reply(c, id, seq, FR_ENOTFOUND, err, NULL);
            return;
        }
        break;
    }
    case FR__QUERY_REQUEST__KIND__RECORDS:
        if (!(doc = records_doc(c, id, seq, q)))
            return;
        break;
    case FR__QUERY_REQUEST__KIND__REFRESH: on_refresh(c, id, seq); return;
    case FR__QUERY_REQUEST__KIND__FIRMWARE: {
        char err[512];
        doc = firmware_doc(c, q->model, q->selector, err, sizeof err);
        if (!doc) {
            reply(c, id, seq, FR_ENOTFOUND, err, NULL);
            return;
        }
        break;
    }
    default: break;
    }
    if (text) {
        reply_text(c, zmq_msg_data(id), zmq_msg_size(id), seq, 0, NULL, text);
        return;
    }
    if (!doc && store_read_failed(c->store)) {
        char err[300];
        snprintf(err, sizeof err, "cannot read the store: %s", store_errmsg(c->store));
        reply(c, id, seq, FR_ESTORE, err, NULL);
        return;
    }
    if (!doc) {
        char err[96];
        snprintf(err, sizeof err, "no job %llu", (unsigned long long)q->job_id);
        reply(c, id, seq, FR_ENOTFOUND, err, NULL);
        return;
    }
    reply(c, id, seq, 0, NULL, doc);
}

static void on_cancel_attempt(void *arg, const Fr__AttemptRef *ref, const char *agent)
{
    struct controller *c = arg;
    struct agent_state *a = agents_find(c, agent);
    if (!a || !a->online)
        return; /* it learns at its next Hello (Welcome.cancel) */
    Fr__AttemptRef r = *ref;
    Fr__JobCancel jc = FR__JOB_CANCEL__INIT;
    jc.ref = &r;
    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.body_case = FR__ENVELOPE__BODY_JOB_CANCEL;
    env.job_cancel = &jc;
    agents_send(c, a, &env);
}

static void on_cancel(struct controller *c, zmq_msg_t *id, uint64_t seq, const Fr__CancelRequest *r)
{
    int n = 0;
    int rc = store_job_cancel(c->store, r->job_id, r->ecid, fr_time_wall_ms(), &n, on_cancel_attempt, c);
    if (rc < 0) {
        char err[96];
        snprintf(err, sizeof err, rc == FR_ENOTFOUND ? "no job %llu" : "cannot cancel job %llu",
                 (unsigned long long)r->job_id);
        reply(c, id, seq, rc, err, NULL);
        return;
    }
    fr_info("clients", "job %llu: %d unit runs cancelled", (unsigned long long)r->job_id, n);
    reply(c, id, seq, 0, NULL, json_pack("{s:I, s:i}", "job_id", (json_int_t)r->job_id,
                                         "cancelled_runs", n));
    sched_expand_all(c); /* its units are free for another selector job */
    sched_kick(c);
}

static void on_port_clear(struct controller *c, zmq_msg_t *id, uint64_t seq, const Fr__PortClearRequest *r)
{
    char err[256];
    int rc = store_port_clear(c->store, r->port, fr_time_wall_ms(), err, sizeof err);
    if (rc < 0) {
        reply(c, id, seq, rc, err, NULL);
        return;
    }
    fr_info("clients", "port '%s' cleared by an operator", r->port);
    reply(c, id, seq, 0, NULL, json_pack("{s:s, s:b}", "port", r->port, "cleared", 1));
    sched_expand_all(c);
    sched_kick(c);
}

/* The role a request needs: changing anything (or fetching the catalog sources)
 * takes an operator; reading takes a viewer. */
static enum zap_role needed_role(const Fr__Envelope *env)
{
    if (env->body_case == FR__ENVELOPE__BODY_QUERY &&
        env->query->kind != FR__QUERY_REQUEST__KIND__REFRESH)
        return ZAP_VIEWER;
    return ZAP_OPERATOR;
}

static const char *request_name(const Fr__Envelope *env)
{
    switch (env->body_case) {
    case FR__ENVELOPE__BODY_SUBMIT: return "submit";
    case FR__ENVELOPE__BODY_CANCEL: return "cancel";
    case FR__ENVELOPE__BODY_PORT_CLEAR: return "ports clear";
    case FR__ENVELOPE__BODY_UNIT_RELEASE: return "units release";
    case FR__ENVELOPE__BODY_QUERY:
        return env->query->kind == FR__QUERY_REQUEST__KIND__REFRESH ? "firmware refresh" : "a query";
    default: return fr_wire_body_name(env->body_case);
    }
}

/* Refuses (replies, counts, logs) a request its key does not allow; 1 when allowed. */
static int permitted(struct controller *c, zmq_msg_t *parts, const Fr__Envelope *env)
{
    if (!c->zap)
        return 1; /* insecure mode: everyone on this host is an operator */
    const struct zap_peer *p = zap_peer_of(c->zap, &parts[1]);
    enum zap_role need = needed_role(env);
    char err[256];
    if (p && p->role >= need)
        return 1;
    if (!p)
        snprintf(err, sizeof err, "not permitted: this client's key is no longer authorized");
    else
        snprintf(err, sizeof err, "not permitted: %s needs role operator; '%s' has role %s",
                 request_name(env), p->name, zap_role_name(p->role));
    zap_refuse(c->zap, &c->zap->refused_requests, "clients", "refused %s: %s", request_name(env), err);
    reply(c, &parts[0], env->seq, FR_EPERM, err, NULL);
    return 0;
}

static void on_unit_release(struct controller *c, zmq_msg_t *id, uint64_t seq,
                            const Fr__UnitReleaseRequest *r)
{
    char err[256], e[FR_ECID_STRLEN];
    int rc = store_unit_release(c->store, r->ecid, fr_time_wall_ms(), err, sizeof err);
    if (rc < 0) {
        reply(c, id, seq, rc, err, NULL);
        return;
    }
    fr_ecid_format(r->ecid, e, sizeof e);
    fr_info("clients", "unit %s released by an operator", e);
    reply(c, id, seq, 0, NULL, json_pack("{s:s, s:b}", "ecid", e, "released", 1));
    sched_expand_unit(c, r->ecid); /* a selector job may take it now */
    sched_kick(c);
}

void clients_on_msg(fr_zsock *zs, zmq_msg_t *parts, size_t nparts, void *arg)
{
    struct controller *c = arg;
    if (nparts != 2) {
        fr_warn("clients", "dropped a request: expected one frame");
        return;
    }
    Fr__Envelope *env = NULL;
    char err[256];
    if (fr_wire_unpack(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &env, err, sizeof err) < 0) {
        fr_warn("clients", "dropped a request: %s", err);
        return;
    }
    if (!permitted(c, parts, env)) {
        fr_wire_free(&env);
        return;
    }
    switch (env->body_case) {
    case FR__ENVELOPE__BODY_SUBMIT: on_submit(c, &parts[0], env->seq, env->submit, operator_of(c, &parts[1])); break;
    case FR__ENVELOPE__BODY_QUERY: on_query(c, &parts[0], env->seq, env->query); break;
    case FR__ENVELOPE__BODY_CANCEL: on_cancel(c, &parts[0], env->seq, env->cancel); break;
    case FR__ENVELOPE__BODY_PORT_CLEAR: on_port_clear(c, &parts[0], env->seq, env->port_clear); break;
    case FR__ENVELOPE__BODY_UNIT_RELEASE: on_unit_release(c, &parts[0], env->seq, env->unit_release); break;
    default:
        reply(c, &parts[0], env->seq, FR_EPROTO, "expected submit, query or cancel", NULL);
    }
    fr_wire_free(&env);
}

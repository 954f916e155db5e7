/* fr_wire — Envelope codec: size cap, decode, version check, field validation. */
#include "fr_wire.h"
#include "fr_err.h"
#include "fr_types.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                             \
    do {                                                             \
        if (!(cond))                                                 \
            return fr_seterr(FR_EPROTO, err, errlen, __VA_ARGS__);   \
    } while (0)

static int str_ok(const char *s)
{
    return s && strnlen(s, FR_WIRE_MAX_STR + 1) <= FR_WIRE_MAX_STR;
}

static int check_str(const char *s, const char *field, char *err, size_t errlen)
{
    CHECK(str_ok(s), "field '%s': string longer than %d bytes", field, FR_WIRE_MAX_STR);
    return 0;
}

static int check_list(size_t n, const char *field, char *err, size_t errlen)
{
    CHECK(n <= FR_WIRE_MAX_LIST, "field '%s': %zu entries, at most %d allowed", field, n,
          FR_WIRE_MAX_LIST);
    return 0;
}

static int check_strs(char **v, size_t n, const char *field, char *err, size_t errlen)
{
    int rc = check_list(n, field, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_str(v[i], field, err, errlen);
    return rc;
}

static int check_mode(int mode, char *err, size_t errlen)
{
    CHECK(mode >= FR__UNIT_MODE__MODE_UNKNOWN && mode <= FR__UNIT_MODE__MODE_NORMAL,
          "field 'mode': unknown unit mode %d", mode);
    return 0;
}

static int check_port(const Fr__PortInfo *p, char *err, size_t errlen)
{
    CHECK(p, "field 'ports': empty entry");
    CHECK(str_ok(p->path) && p->path[0], "field 'ports.path': expected a port path");
    if (check_str(p->label, "ports.label", err, errlen) || check_str(p->hub, "ports.hub", err, errlen))
        return FR_EPROTO;
    return 0;
}

static int check_unit(const Fr__UnitInfo *u, char *err, size_t errlen)
{
    CHECK(u, "field 'unit': missing");
    CHECK(u->ecid != 0, "field 'unit.ecid': expected a non-zero ECID");
    if (check_str(u->product_type, "unit.product_type", err, errlen) ||
        check_str(u->serial, "unit.serial", err, errlen) ||
        check_str(u->port_path, "unit.port_path", err, errlen) ||
        check_str(u->reason, "unit.reason", err, errlen))
        return FR_EPROTO;
    return check_mode(u->mode, err, errlen);
}

static int check_ref(const Fr__AttemptRef *r, char *err, size_t errlen)
{
    CHECK(r, "field 'ref': missing attempt reference");
    CHECK(r->job_id && r->attempt_id && r->epoch, "field 'ref': job, attempt and epoch must be set");
    return 0;
}

static int check_hello(const Fr__Hello *h, char *err, size_t errlen)
{
    int rc = check_str(h->agent_version, "agent_version", err, errlen);
    rc = rc ? rc : check_str(h->hostname, "hostname", err, errlen);
    rc = rc ? rc : check_str(h->engine, "engine", err, errlen);
    rc = rc ? rc : check_str(h->libimobiledevice, "libimobiledevice", err, errlen);
    rc = rc ? rc : check_list(h->n_ports, "ports", err, errlen);
    rc = rc ? rc : check_list(h->n_units, "units", err, errlen);
    rc = rc ? rc : check_list(h->n_attempts, "attempts", err, errlen);
    for (size_t i = 0; !rc && i < h->n_ports; i++)
        rc = check_port(h->ports[i], err, errlen);
    for (size_t i = 0; !rc && i < h->n_units; i++)
        rc = check_unit(h->units[i], err, errlen);
    for (size_t i = 0; !rc && i < h->n_attempts; i++)
        rc = check_ref(h->attempts[i], err, errlen);
    return rc;
}

static int check_welcome(const Fr__Welcome *w, char *err, size_t errlen)
{
    CHECK(w->heartbeat_ms >= 10 && w->heartbeat_ms <= 600000,
          "field 'heartbeat_ms': expected 10..600000, got %u", w->heartbeat_ms);
    CHECK(w->liveness >= 1 && w->liveness <= 100, "field 'liveness': expected 1..100, got %u",
          w->liveness);
    int rc = check_str(w->mirror_url, "mirror_url", err, errlen);
    rc = rc ? rc : check_list(w->n_cancel, "cancel", err, errlen);
    for (size_t i = 0; !rc && i < w->n_cancel; i++)
        rc = check_ref(w->cancel[i], err, errlen);
    return rc;
}

static int check_prefetch(const Fr__FirmwarePrefetch *p, char *err, size_t errlen)
{
    CHECK(str_ok(p->url) && fr_is_url(p->url), "field 'url': expected an http(s) URL");
    CHECK(fr_is_hash_hex(p->sha256), "field 'sha256': expected 64 or 40 hex digits");
    return 0;
}

static int check_assign(const Fr__JobAssign *a, char *err, size_t errlen)
{
    if (check_ref(a->ref, err, errlen))
        return FR_EPROTO;
    CHECK(a->ref->ecid != 0, "field 'ref.ecid': expected a non-zero ECID");
    CHECK(str_ok(a->firmware) && a->firmware[0], "field 'firmware': expected an IPSW path or URL");
    int rc = check_str(a->port_path, "port_path", err, errlen);
    rc = rc ? rc : check_str(a->firmware_sha256, "firmware_sha256", err, errlen);
    return rc ? rc : check_strs(a->avoid_ports, a->n_avoid_ports, "avoid_ports", err, errlen);
}

static int check_result(const Fr__JobResult *r, char *err, size_t errlen)
{
    if (check_ref(r->ref, err, errlen))
        return FR_EPROTO;
    CHECK(r->outcome >= FR__OUTCOME__OUTCOME_SUCCESS && r->outcome <= FR__OUTCOME__OUTCOME_REFUSED,
          "field 'outcome': unknown outcome %d", r->outcome);
    int rc = check_str(r->error_class, "error_class", err, errlen);
    rc = rc ? rc : check_str(r->error_text, "error_text", err, errlen);
    rc = rc ? rc : check_str(r->log_path, "log_path", err, errlen);
    rc = rc ? rc : check_str(r->firmware_version, "firmware_version", err, errlen);
    rc = rc ? rc : check_str(r->firmware_build, "firmware_build", err, errlen);
    return rc ? rc : check_str(r->port_path, "port_path", err, errlen);
}

static int check_progress(const Fr__JobProgress *p, char *err, size_t errlen)
{
    if (check_ref(p->ref, err, errlen))
        return FR_EPROTO;
    CHECK(p->step <= 7, "field 'step': expected 0..7, got %u", p->step);
    CHECK(p->fraction >= 0.0f && p->fraction <= 1.0f, "field 'fraction': expected 0..1");
    int rc = check_str(p->state, "state", err, errlen);
    return rc ? rc : check_str(p->status, "status", err, errlen);
}

/* A batch is refused whole when it is over the bound or any item is malformed: the
 * message is then no agent's (ours never sends one), so nothing of it is applied. */
static int check_batch(const Fr__ProgressBatch *b, char *err, size_t errlen)
{
    CHECK(b->n_items >= 1 && b->n_items <= FR_WIRE_MAX_BATCH,
          "field 'items': %zu entries, expected 1..%d", b->n_items, FR_WIRE_MAX_BATCH);
    for (size_t i = 0; i < b->n_items; i++) {
        char why[200];
        CHECK(b->items[i], "field 'items[%zu]': empty entry", i);
        if (check_progress(b->items[i], why, sizeof why))
            return fr_seterr(FR_EPROTO, err, errlen, "field 'items[%zu]': %s", i, why);
    }
    return 0;
}

static int check_submit(const Fr__SubmitRequest *s, char *err, size_t errlen)
{
    int rc = check_str(s->idempotency_key, "idempotency_key", err, errlen);
    rc = rc ? rc : check_str(s->name, "name", err, errlen);
    rc = rc ? rc : check_str(s->firmware, "firmware", err, errlen);
    rc = rc ? rc : check_str(s->firmware_sha256, "firmware_sha256", err, errlen);
    rc = rc ? rc : check_list(s->n_ecids, "ecids", err, errlen);
    rc = rc ? rc : check_strs(s->agents, s->n_agents, "agents", err, errlen);
    return rc ? rc : check_strs(s->ports, s->n_ports, "ports", err, errlen);
}

int fr_wire_validate(const Fr__Envelope *env, char *err, size_t errlen)
{
    if (env->proto_version != FR_PROTO_VERSION)
        return fr_seterr(FR_EVERSION, err, errlen, "protocol version %u, expected %d",
                         env->proto_version, FR_PROTO_VERSION);
    if (check_str(env->agent_id, "agent_id", err, errlen))
        return FR_EPROTO;
    switch (env->body_case) {
    case FR__ENVELOPE__BODY_HELLO:
        return check_hello(env->hello, err, errlen);
    case FR__ENVELOPE__BODY_WELCOME:
        return check_welcome(env->welcome, err, errlen);
    case FR__ENVELOPE__BODY_HEARTBEAT:
        return 0;
    case FR__ENVELOPE__BODY_PORT_EVENT:
        CHECK(env->port_event->kind <= FR__PORT_EVENT__KIND__MODE, "field 'kind': unknown %d",
              env->port_event->kind);
        return check_unit(env->port_event->unit, err, errlen);
    case FR__ENVELOPE__BODY_JOB_ASSIGN:
        return check_assign(env->job_assign, err, errlen);
    case FR__ENVELOPE__BODY_JOB_ACCEPT:
        if (check_ref(env->job_accept->ref, err, errlen))
            return FR_EPROTO;
        return check_str(env->job_accept->reason, "reason", err, errlen);
    case FR__ENVELOPE__BODY_JOB_PROGRESS:
        return check_progress(env->job_progress, err, errlen);
    case FR__ENVELOPE__BODY_PROGRESS_BATCH:
        return check_batch(env->progress_batch, err, errlen);
    case FR__ENVELOPE__BODY_JOB_RESULT:
        return check_result(env->job_result, err, errlen);
    case FR__ENVELOPE__BODY_JOB_CANCEL:
        return check_ref(env->job_cancel->ref, err, errlen);
    case FR__ENVELOPE__BODY_PORT_COMMAND:
        CHECK(env->port_command->action <= FR__PORT_COMMAND__ACTION__RELEASE,
              "field 'action': unknown %d", env->port_command->action);
        CHECK(str_ok(env->port_command->port_path) && env->port_command->port_path[0],
              "field 'port_path': expected a port path");
        return 0;
    case FR__ENVELOPE__BODY_PREFETCH:
        return check_prefetch(env->prefetch, err, errlen);
    case FR__ENVELOPE__BODY_SUBMIT:
        return check_submit(env->submit, err, errlen);
    case FR__ENVELOPE__BODY_QUERY:
        CHECK(env->query->kind <= FR__QUERY_REQUEST__KIND__RECORDS, "field 'kind': unknown %d",
              env->query->kind);
        CHECK(env->query->kind != FR__QUERY_REQUEST__KIND__UNIT || env->query->ecid != 0,
              "field 'ecid': expected the unit's ECID");
        if (check_str(env->query->model, "model", err, errlen))
            return FR_EPROTO;
        return check_str(env->query->selector, "selector", err, errlen);
    case FR__ENVELOPE__BODY_CANCEL:
        CHECK(env->cancel->job_id != 0, "field 'job_id': expected a job id");
        return 0;
    case FR__ENVELOPE__BODY_PORT_CLEAR:
        CHECK(str_ok(env->port_clear->port) && env->port_clear->port[0],
              "field 'port': expected a port (agent:path or label)");
        return 0;
    case FR__ENVELOPE__BODY_UNIT_RELEASE:
        CHECK(env->unit_release->ecid != 0, "field 'ecid': expected the unit's ECID");
        return 0;
    case FR__ENVELOPE__BODY_REPLY:
        if (check_str(env->reply->error, "error", err, errlen))
            return FR_EPROTO;
        CHECK(env->reply->json != NULL, "field 'json': missing");
        return 0;
    default:
        return fr_seterr(FR_EPROTO, err, errlen, "no body or unknown body %d", env->body_case);
    }
}

int fr_wire_pack(Fr__Envelope *env, uint8_t **out, size_t *len)
{
    env->proto_version = FR_PROTO_VERSION;
    size_t n = fr__envelope__get_packed_size(env);
    if (n > FR_WIRE_MAX_MSG)
        return FR_ETOOBIG;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return FR_ENOMEM;
    fr__envelope__pack(env, buf);
    *out = buf;
    *len = n;
    return 0;
}

/* A page of a document is written, packed and sent (or received, unpacked and kept) in
 * blocks of about a message each: mapped and unmapped every time, their page faults, brk
 * and munmap were a quarter of the controller's CPU for a 10,000-unit report. */
void fr_wire_keep_buffers(void)
{
    mallopt(M_MMAP_THRESHOLD, 4 * FR_WIRE_MAX_MSG);
    mallopt(M_TRIM_THRESHOLD, 16 * FR_WIRE_MAX_MSG);
}

int fr_wire_unpack(const void *data, size_t len, Fr__Envelope **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > FR_WIRE_MAX_MSG)
        return fr_seterr(FR_ETOOBIG, err, errlen, "message of %zu bytes, at most %d allowed", len,
                         FR_WIRE_MAX_MSG);
    Fr__Envelope *env = fr__envelope__unpack(NULL, len, data);
    if (!env)
        return fr_seterr(FR_EPROTO, err, errlen, "cannot decode %zu bytes as an envelope", len);
    int rc = fr_wire_validate(env, err, errlen);
    if (rc < 0) {
        fr__envelope__free_unpacked(env, NULL);
        return rc;
    }
    *out = env;
    return 0;
}

void fr_wire_free(Fr__Envelope **env)
{
    if (env && *env) {
        fr__envelope__free_unpacked(*env, NULL);
        *env = NULL;
    }
}

int fr_wire_send(fr_zsock *zs, const void *id, size_t idlen, Fr__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = fr_wire_pack(env, &buf, &len);
    if (rc < 0)
        return rc;
    rc = fr_zsock_send(zs, id, idlen, buf, len);
    free(buf);
    return rc;
}

const char *fr_wire_body_name(int body_case)
{
    switch (body_case) {
    case FR__ENVELOPE__BODY_HELLO: return "hello";
    case FR__ENVELOPE__BODY_WELCOME: return "welcome";
    case FR__ENVELOPE__BODY_HEARTBEAT: return "heartbeat";
    case FR__ENVELOPE__BODY_PORT_EVENT: return "port_event";
    case FR__ENVELOPE__BODY_JOB_ASSIGN: return "job_assign";
    case FR__ENVELOPE__BODY_JOB_ACCEPT: return "job_accept";
    case FR__ENVELOPE__BODY_JOB_PROGRESS: return "job_progress";
    case FR__ENVELOPE__BODY_PROGRESS_BATCH: return "progress_batch";
    case FR__ENVELOPE__BODY_JOB_RESULT: return "job_result";
    case FR__ENVELOPE__BODY_JOB_CANCEL: return "job_cancel";
    case FR__ENVELOPE__BODY_PORT_COMMAND: return "port_command";
    case FR__ENVELOPE__BODY_PREFETCH: return "prefetch";
    case FR__ENVELOPE__BODY_SUBMIT: return "submit";
    case FR__ENVELOPE__BODY_QUERY: return "query";
    case FR__ENVELOPE__BODY_CANCEL: return "cancel";
    case FR__ENVELOPE__BODY_REPLY: return "reply";
    case FR__ENVELOPE__BODY_PORT_CLEAR: return "port_clear";
    case FR__ENVELOPE__BODY_UNIT_RELEASE: return "unit_release";
    default: return "unknown";
    }
}

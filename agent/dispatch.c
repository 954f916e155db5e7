/* dispatch — what the controller's messages mean to this agent; see dispatch.h. */
#include "dispatch.h"

#include <string.h>

#include "fr_err.h"
#include "fr_fwcache.h"
#include "fr_log.h"
#include "fr_wire.h"
#include "unit_run.h"

/* The transport (link.c) has taken the Welcome's session and heartbeat; here, the
 * site mirror it names and the attempts the controller no longer wants. */
static void on_welcome(struct agent *a, const Fr__Welcome *w)
{
    if (!strcmp(a->cfg.mirror, "auto"))
        fwcache_set_mirror(a->cache, w->mirror_url);
    for (size_t i = 0; i < w->n_cancel; i++)
        unit_run_on_cancel(a, w->cancel[i]);
}

static void on_prefetched(void *arg, int status, const char *path, const char *err)
{
    if (status == 0)
        fr_info("dispatch", "prefetched '%s'", path);
    else if (status != FR_ECANCELED)
        fr_warn("dispatch", "prefetch failed: %s", err ? err : fr_strerror(status));
}

/* A job will need this IPSW: the cache starts now; the runs find it there (or join
 * the download). */
static void prefetch(struct agent *a, const Fr__FirmwarePrefetch *p)
{
    char path[700];
    if (fwcache_lookup(a->cache, p->sha256, path, sizeof path) == FWCACHE_READY)
        return;
    fr_info("dispatch", "prefetching '%s'", p->url);
    if (fwcache_get(a->cache, p->sha256, p->url, on_prefetched, NULL) < 0)
        fr_warn("dispatch", "cannot prefetch '%s'", p->url);
}

void dispatch_message(struct agent *a, const Fr__Envelope *env)
{
    switch (env->body_case) {
    case FR__ENVELOPE__BODY_WELCOME: on_welcome(a, env->welcome); break;
    case FR__ENVELOPE__BODY_HEARTBEAT: break;
    case FR__ENVELOPE__BODY_JOB_ASSIGN:
        if (a->welcomed)
            unit_run_on_assign(a, env->job_assign);
        break;
    case FR__ENVELOPE__BODY_JOB_CANCEL: unit_run_on_cancel(a, env->job_cancel->ref); break;
    case FR__ENVELOPE__BODY_PREFETCH: prefetch(a, env->prefetch); break;
    case FR__ENVELOPE__BODY_PORT_COMMAND: {
        char err[256];
        const Fr__PortCommand *pc = env->port_command;
        if (pc->action == FR__PORT_COMMAND__ACTION__POWER_CYCLE &&
            a->seams->power_cycle(a->seams, pc->port_path, err, sizeof err) < 0)
            fr_warn("dispatch", "cannot power-cycle '%s': %s", pc->port_path, err);
        break;
    }
    default:
        a->dropped++;
        fr_warn("dispatch", "dropped unexpected %s from the controller", fr_wire_body_name(env->body_case));
    }
}

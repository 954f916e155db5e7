/* policy — remediation decisions; see policy.h. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

void policy_cfg_default(struct policy_cfg *cfg)
{
    cfg->quarantine_units = 2;
    cfg->strike_window_ms = 60 * 60 * 1000;
    cfg->dfu_after_ports = 2;
    cfg->suspect_after_ports = 3;
    cfg->max_attempts = 6;
    cfg->same_port_retry = 0;
    cfg->naive = 0;
}

const char *policy_action_name(enum policy_action a)
{
    static const char *names[] = { "done", "requeue", "retry_in_place", "move",
                                   "operator", "suspect", "fail" };
    return (a >= POLICY_DONE && a <= POLICY_FAIL) ? names[a] : "invalid";
}

int policy_history_has_port(const struct policy_history *h, const char *port)
{
    for (size_t i = 0; i < h->nfailed_ports; i++)
        if (strcmp(h->failed_ports[i], port) == 0)
            return 1;
    return 0;
}

size_t policy_history_add_port(struct policy_history *h, const char *port)
{
    if (port && *port && !policy_history_has_port(h, port) && h->nfailed_ports < POLICY_MAX_PORTS) {
        snprintf(h->failed_ports[h->nfailed_ports], POLICY_PORT_LEN, "%s", port);
        h->nfailed_ports++;
    }
    return h->nfailed_ports;
}

static void decide(struct policy_decision *d, enum policy_action a, enum fr_state next,
                   const char *fmt, const char *arg1, long arg2)
{
    d->action = a;
    d->next = next;
    snprintf(d->why, sizeof d->why, fmt, arg1, arg2);
}

/* The usual practice the product is measured against: retry where it is. */
static void naive_after(const struct policy_cfg *cfg, const struct policy_history *h,
                        enum fr_class cls, struct policy_decision *d)
{
    if (h->attempts + 1 >= cfg->max_attempts)
        decide(d, POLICY_FAIL, FR_STATE_FAILED, "%s after %ld attempts in place",
               fr_class_name(cls), (long)h->attempts + 1);
    else
        decide(d, POLICY_RETRY_IN_PLACE, FR_STATE_WAITING_UNIT, "%s: retry in place (attempt %ld)",
               fr_class_name(cls), (long)h->attempts + 2);
}

/* Lost link or hardware: strike the port, count distinct ports, escalate. */
static void moving_after(const struct policy_cfg *cfg, const struct policy_history *h,
                         enum fr_class cls, const char *port, struct policy_decision *d)
{
    struct policy_history next = *h;
    size_t nports = policy_history_add_port(&next, port);
    d->strike_port = cls == FR_CLASS_LINK_LOST;
    d->power_cycle = cls == FR_CLASS_LINK_LOST;
    int hardware_before = h->class_count[FR_CLASS_HARDWARE];
    if ((int)nports >= cfg->suspect_after_ports ||
        (cls == FR_CLASS_HARDWARE && hardware_before >= 1 && nports >= 2)) {
        decide(d, POLICY_SUSPECT, FR_STATE_HARDWARE_SUSPECT, "%s on %ld different ports",
               fr_class_name(cls), (long)nports);
        return;
    }
    if (h->attempts + 1 >= cfg->max_attempts) {
        decide(d, POLICY_FAIL, FR_STATE_FAILED, "%s and no attempts left (%ld)",
               fr_class_name(cls), (long)h->attempts + 1);
        return;
    }
    d->from_dfu = (int)nports >= cfg->dfu_after_ports || cls == FR_CLASS_HARDWARE;
    decide(d, POLICY_MOVE, FR_STATE_NEEDS_MOVE,
           d->from_dfu ? "%s: move to another port and start from DFU (%ld ports failed)"
                       : "%s: move to another port (%ld port failed)",
           fr_class_name(cls), (long)nports);
}

static void bounded_retry(const struct policy_cfg *cfg, const struct policy_history *h,
                          enum fr_class cls, int allowed, struct policy_decision *d)
{
    if (h->class_count[cls] < allowed && h->attempts + 1 < cfg->max_attempts)
        decide(d, POLICY_RETRY_IN_PLACE, FR_STATE_WAITING_UNIT, "%s: retry in place (%ld)",
               fr_class_name(cls), (long)h->class_count[cls] + 1);
    else
        decide(d, POLICY_FAIL, FR_STATE_FAILED, "%s: giving up after %ld", fr_class_name(cls),
               (long)h->class_count[cls] + 1);
}

void policy_after_attempt(const struct policy_cfg *cfg, const struct policy_history *h,
                          enum fr_class cls, const char *port, struct policy_decision *d)
{
    memset(d, 0, sizeof *d);
    if (cls == FR_CLASS_NONE) {
        decide(d, POLICY_DONE, FR_STATE_DONE, "restored%s", "", 0);
        return;
    }
    if (cls == FR_CLASS_INTERRUPTED || cls == FR_CLASS_BATTERY) {
        decide(d, POLICY_REQUEUE, FR_STATE_WAITING_UNIT, "%s: not the unit's fault, run again",
               fr_class_name(cls), 0);
        return;
    }
    if (cfg->naive) {
        naive_after(cfg, h, cls, d);
        return;
    }
    switch (cls) {
    case FR_CLASS_LINK_LOST:
    case FR_CLASS_HARDWARE:
        moving_after(cfg, h, cls, port, d);
        return;
    case FR_CLASS_NO_DEVICE:
        if (h->class_count[cls] >= 1)
            decide(d, POLICY_OPERATOR, FR_STATE_NEEDS_OPERATOR,
                   "%s twice: check the cable and the udev rule, then plug the unit in again "
                   "(or put it in recovery with its buttons)",
                   fr_class_name(cls), 0);
        else
            bounded_retry(cfg, h, cls, 1, d);
        return;
    case FR_CLASS_NEEDS_DFU:
        decide(d, POLICY_OPERATOR, FR_STATE_NEEDS_OPERATOR,
               "%s: put the unit in DFU or recovery with its buttons", fr_class_name(cls), 0);
        return;
    case FR_CLASS_NETWORK:
        bounded_retry(cfg, h, cls, 3, d);
        return;
    case FR_CLASS_FIRMWARE:
        bounded_retry(cfg, h, cls, 2, d);
        return;
    case FR_CLASS_UNKNOWN:
    case FR_CLASS_VERIFICATION: /* the restore did not take: once more, then failed */
        bounded_retry(cfg, h, cls, 1, d);
        return;
    default: /* not_signed, wrong_firmware, stack_too_old: configuration, never retried */
        decide(d, POLICY_FAIL, FR_STATE_FAILED, "%s: not retried (fix the job or the agent)",
               fr_class_name(cls), 0);
        return;
    }
}

int policy_port_quarantined(const struct policy_cfg *cfg, const struct policy_strike *strikes,
                            size_t n, int64_t now_ms)
{
    uint64_t seen[64];
    size_t nseen = 0;
    for (size_t i = 0; i < n; i++) {
        if (now_ms - strikes[i].at_ms > cfg->strike_window_ms)
            continue;
        int dup = 0;
        for (size_t j = 0; j < nseen && !dup; j++)
            dup = seen[j] == strikes[i].ecid;
        if (!dup && nseen < 64)
            seen[nseen++] = strikes[i].ecid;
    }
    return (int)nseen >= cfg->quarantine_units;
}

static int avoided(const char *id, const char *const *avoid, size_t navoid)
{
    for (size_t i = 0; i < navoid; i++)
        if (avoid[i] && strcmp(avoid[i], id) == 0)
            return 1;
    return 0;
}

/* Higher is better: another hub, another bus, then a lightly loaded bus (a moved unit
 * restarts its whole transfer: on a busy bus it would finish last and make the job's
 * tail), shallow tier, few strikes. The load term stays below the bus term. */
static long separation(const struct policy_port *p, const struct policy_port *from)
{
    long s = 0;
    if (from) {
        int same_agent = strcmp(p->agent, from->agent) == 0;
        if (!same_agent || strcmp(p->hub, from->hub) != 0)
            s += 1000;
        if (!same_agent || p->bus != from->bus)
            s += 100;
    }
    return s;
}

static long score(const struct policy_port *p, const struct policy_port *from)
{
    long s = separation(p, from);
    s -= 3 * (long)(p->load > 30 ? 30 : p->load < 0 ? 0 : p->load);
    s += 10 * (5 - (long)(p->depth > 5 ? 5 : p->depth));
    s -= p->strikes > 9 ? 9 : p->strikes;
    return s;
}

int policy_pick_target(const struct policy_port *ports, size_t n, const struct policy_port *from,
                       const char *const *avoid, size_t navoid)
{
    int best = -1, min_load = -1;
    long best_score = 0, best_sep = -1;
    /* The ports this unit could ever use, best separated first (another hub and bus),
     * and among those the least loaded bus. A move goes to that class, to a bus within
     * the slack of that load; else it waits for a port there to free up (a moved unit
     * sends its whole filesystem again: piled onto one bus, moved units make the job's
     * tail). */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            const struct policy_port *p = &ports[i];
            if (!(p->eligible || p->usable) || avoided(p->id, avoid, navoid) ||
                (from && strcmp(p->id, from->id) == 0))
                continue;
            long sep = separation(p, from);
            if (pass == 0 && sep > best_sep)
                best_sep = sep;
            else if (pass == 1 && sep == best_sep && (min_load < 0 || p->load < min_load))
                min_load = p->load;
        }
    for (size_t i = 0; i < n; i++) {
        if (!ports[i].usable || avoided(ports[i].id, avoid, navoid))
            continue;
        if (from && strcmp(ports[i].id, from->id) == 0)
            continue;
        if (separation(&ports[i], from) != best_sep || ports[i].load > min_load + POLICY_MOVE_LOAD_SLACK)
            continue;
        long s = score(&ports[i], from);
        if (best < 0 || s > best_score) {
            best = (int)i;
            best_score = s;
        }
    }
    return best;
}

/* The button sequences per model family, every step: a sequence stopped early is a
 * force restart, not the mode (from the steps published for iTunes error 4013). */
static const struct {
    const char *recovery, *dfu;
} button_families[] = {
    { /* iPhone 8 and later, SE 2nd gen and later (iPhone10,x and up) */
      "press and release Volume Up, press and release Volume Down, then hold Side until the "
      "recovery screen shows",
      "press and release Volume Up, press and release Volume Down, hold Side until the screen "
      "goes black; keep holding Side and also hold Volume Down for 5 s; release Side and keep "
      "holding Volume Down until the host detects DFU" },
    { /* iPhone 7 / 7 Plus (iPhone9,x) */
      "hold Volume Down and Side together until the recovery screen shows",
      "hold Volume Down and Side together for 10 s; release Side and keep holding Volume Down "
      "until the host detects DFU" },
    { /* iPhone 6s and earlier: a Home button */
      "hold Home and Side/Top together until the recovery screen shows",
      "hold Home and Side/Top together for 8 s; release Side/Top and keep holding Home until the "
      "host detects DFU" },
};

static size_t button_family(const char *product_type)
{
    int major = 0;
    if (!product_type || sscanf(product_type, "iPhone%d,", &major) != 1)
        major = 0;
    return major >= 10 ? 0 : major == 9 ? 1 : 2;
}

const char *policy_dfu_buttons(const char *product_type)
{
    return button_families[button_family(product_type)].dfu;
}

const char *policy_recovery_buttons(const char *product_type)
{
    return button_families[button_family(product_type)].recovery;
}

/* turn — group commit per loop turn, messages held until the commit; see turn.h. */
#include "turn.h"

#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fr_err.h"
#include "fr_log.h"
#include "fr_wire.h"

struct turn_msg {
    struct turn_msg *next;
    size_t idlen, len;
    char id[FR_ZSOCK_ROUTE_MAX];
    uint8_t *data;
};

int turn_begin(struct controller *c)
{
    struct turn *t = &c->turn;
    if (t->open)
        return 0;
    int rc = store_begin(c->store);
    if (rc < 0)
        return rc;
    t->open = 1;
    t->held = NULL;
    t->tail = &t->held;
    t->nseqs = 0;
    return 0;
}

void turn_touch(struct controller *c, struct agent_state *a)
{
    struct turn *t = &c->turn;
    if (!t->open)
        return;
    for (size_t i = 0; i < t->nseqs; i++)
        if (t->seqs[i].agent == a)
            return;
    if (t->nseqs == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct turn_seq *p = realloc(t->seqs, cap * sizeof *p);
        if (!p)
            return;
        t->seqs = p;
        t->cap = cap;
    }
    t->seqs[t->nseqs++] = (struct turn_seq){ a, a->applied_seq };
}

int turn_send(struct controller *c, const char *id, Fr__Envelope *env)
{
    struct turn *t = &c->turn;
    if (!t->open)
        return fr_wire_send(&c->agents_zs, id, strlen(id), env);
    struct turn_msg *m = calloc(1, sizeof *m);
    if (!m)
        return FR_ENOMEM;
    int rc = fr_wire_pack(env, &m->data, &m->len);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->idlen = strlen(id) < sizeof m->id ? strlen(id) : sizeof m->id - 1;
    memcpy(m->id, id, m->idlen);
    *t->tail = m;
    t->tail = &m->next;
    return 0;
}

/* Sends (or drops) and frees the held messages, in the order they were made. */
static void release_held(struct controller *c, int send)
{
    struct turn *t = &c->turn;
    while (t->held) {
        struct turn_msg *m = t->held;
        t->held = m->next;
        if (send && fr_zsock_send(&c->agents_zs, m->id, m->idlen, m->data, m->len) < 0)
            fr_debug("turn", "cannot send to '%.*s'", (int)m->idlen, m->id);
        free(m->data);
        free(m);
    }
    t->tail = &t->held;
}

int turn_end(struct controller *c)
{
    struct turn *t = &c->turn;
    if (!t->open)
        return 0;
    t->open = 0;
    if (store_commit(c->store) == 0) {
        t->commits++;
        release_held(c, 1);
        /* every reliable message applied in the turn is acknowledged now, one ack per
         * agent: an agent re-sends what is unacknowledged after a heartbeat, and the
         * periodic heartbeat alone acked accepts and port events too late for that */
        for (size_t i = 0; i < t->nseqs; i++)
            if (t->seqs[i].agent->applied_seq != t->seqs[i].applied_seq)
                agents_ack(c, t->seqs[i].agent);
        return 0;
    }
    fr_error("turn", "cannot commit this turn's messages: %s (none acknowledged; the agents "
             "send them again)", store_errmsg(c->store));
    store_rollback(c->store);
    t->failed++;
    release_held(c, 0);
    for (size_t i = 0; i < t->nseqs; i++)
        t->seqs[i].agent->applied_seq = t->seqs[i].applied_seq;
    return FR_ESTORE;
}

void turn_free(struct controller *c)
{
    release_held(c, 0);
    free(c->turn.seqs);
    c->turn.seqs = NULL;
    c->turn.nseqs = c->turn.cap = 0;
}

/* udid_join — USB presence and usbmuxd identity joined by UDID; see udid_join.h. */
#include "udid_join.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void udid_join_init(struct udid_join *j, void (*attach)(void *, const struct unit_desc *),
                    void (*detach)(void *, const char *, uint64_t), void *arg)
{
    memset(j, 0, sizeof *j);
    j->attach = attach;
    j->detach = detach;
    j->arg = arg;
}

void udid_join_release(struct udid_join *j)
{
    free(j->entries);
    j->entries = NULL;
    j->n = j->cap = 0;
}

static struct join_entry *find(struct udid_join *j, const char *udid)
{
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->entries[i].udid, udid) == 0)
            return &j->entries[i];
    return NULL;
}

static struct join_entry *find_or_add(struct udid_join *j, const char *udid)
{
    struct join_entry *e = find(j, udid);
    if (e || strlen(udid) >= JOIN_UDID_MAX || !udid[0])
        return e;
    if (j->n == JOIN_MAX)
        return NULL;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        struct join_entry *ne = realloc(j->entries, cap * sizeof *ne);
        if (!ne)
            return NULL;
        j->entries = ne;
        j->cap = cap;
    }
    e = &j->entries[j->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->udid, sizeof e->udid, "%s", udid);
    return e;
}

static void leave(struct udid_join *j, struct join_entry *e)
{
    if (e->attached) {
        e->attached = 0;
        j->detach(j->arg, e->path, e->identity.ecid);
    }
}

/* Reports the unit once both halves are there; forgets entries with neither. */
static void settle(struct udid_join *j, struct join_entry *e)
{
    if (e->has_path && e->has_identity && !e->attached) {
        struct unit_desc u = e->identity;
        snprintf(u.path, sizeof u.path, "%s", e->path);
        e->attached = 1;
        j->attach(j->arg, &u);
    } else if (!e->has_path && !e->has_identity) {
        *e = j->entries[--j->n];
    }
}

int udid_join_presence(struct udid_join *j, const char *udid, const char *path)
{
    struct join_entry *e = find_or_add(j, udid);
    if (!e)
        return -1;
    if (e->has_path && strcmp(e->path, path) != 0)
        leave(j, e); /* replugged elsewhere: gone from the old port first */
    e->has_path = 1;
    snprintf(e->path, sizeof e->path, "%s", path);
    settle(j, e);
    return 0;
}

void udid_join_presence_gone(struct udid_join *j, const char *udid)
{
    struct join_entry *e = find(j, udid);
    if (!e)
        return;
    leave(j, e);
    e->has_path = 0;
    settle(j, e);
}

int udid_join_identity(struct udid_join *j, const char *udid, const struct unit_desc *id)
{
    struct join_entry *e = find_or_add(j, udid);
    if (!e)
        return -1;
    if (e->has_identity && e->identity.ecid != id->ecid)
        leave(j, e);
    e->has_identity = 1;
    e->identity = *id;
    settle(j, e);
    return 0;
}

void udid_join_identity_gone(struct udid_join *j, const char *udid)
{
    struct join_entry *e = find(j, udid);
    if (!e)
        return;
    leave(j, e);
    e->has_identity = 0;
    settle(j, e);
}

const char *udid_join_udid_of(const struct udid_join *j, uint64_t ecid)
{
    for (size_t i = 0; i < j->n; i++)
        if (j->entries[i].attached && j->entries[i].identity.ecid == ecid)
            return j->entries[i].udid;
    return NULL;
}

/* irecv_source — libirecovery's device events, handed from its thread to the loop. */
#include <libirecovery.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"
#include "fr_types.h"
#include "irecv_serial.h"
#include "irecv_source.h"
#include "usb_topology.h"

#define QUEUE_MAX 1024 /* events waiting for the loop; more are counted and dropped */

struct irecv_event {
    int added;
    int mode;
    char serial[IRECV_SERIAL_MAX + 1];
    struct irecv_event *next;
};

/* A unit seen attached, so that its detach names the same path. */
struct irecv_seen {
    char serial[IRECV_SERIAL_MAX + 1];
    struct unit_desc unit;
    struct irecv_seen *next;
};

struct irecv_source {
    struct discovery_source base;
    char host_root[PATH_MAX];
    struct seam_events ev;
    uv_async_t wake;
    int started;
    irecv_device_event_context_t sub;
    void (*on_closed)(struct discovery_source *s);

    pthread_mutex_t lock; /* guards queue, tail, queued, dropped (libirecovery's thread writes) */
    struct irecv_event *queue, **tail;
    size_t queued;
    unsigned long dropped;

    struct irecv_seen *seen; /* loop thread only */
};

void irecv_source_deliver(struct discovery_source *base, int added, uint16_t pid, const char *serial)
{
    struct irecv_source *s = (struct irecv_source *)base;
    struct irecv_event *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->added = added;
    q->mode = irecv_mode_of_pid(pid);
    snprintf(q->serial, sizeof q->serial, "%s", serial ? serial : "");
    pthread_mutex_lock(&s->lock);
    if (s->queued >= QUEUE_MAX) {
        s->dropped++;
        free(q);
        q = NULL;
    } else {
        *s->tail = q;
        s->tail = &q->next;
        s->queued++;
    }
    pthread_mutex_unlock(&s->lock);
    if (q)
        uv_async_send(&s->wake);
}

/* libirecovery's thread. */
static void on_irecv_event(const irecv_device_event_t *e, void *user)
{
    irecv_source_deliver(user, e->type == IRECV_DEVICE_ADD, (uint16_t)e->mode,
                         e->device_info ? e->device_info->serial_string : NULL);
}

static struct irecv_seen **seen_find(struct irecv_source *s, const char *serial)
{
    struct irecv_seen **pp = &s->seen;
    while (*pp && strcmp((*pp)->serial, serial) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void unit_added(struct irecv_source *s, const struct irecv_event *q)
{
    struct irecv_serial id;
    char err[160];
    if (irecv_serial_parse(q->serial, &id, err, sizeof err) < 0) {
        fr_warn("irecv", "a %s-mode unit with an unreadable serial string '%.80s': %s",
                fr_mode_name(q->mode), q->serial, err);
        return;
    }
    struct unit_desc u = { .ecid = id.ecid, .mode = q->mode, .cpid = id.cpid, .bdid = id.bdid };
    snprintf(u.serial, sizeof u.serial, "%s", id.srnm);
    snprintf(u.imei, sizeof u.imei, "%s", id.imei); /* iBoot says it on some units */
    if (usb_topology_find_serial(s->host_root, APPLE_VID, q->serial, u.path, sizeof u.path) < 0) {
        char e[FR_ECID_STRLEN];
        fr_ecid_format(id.ecid, e, sizeof e);
        fr_warn("irecv", "unit %s (%s mode) is on no USB port this host lists; ignored", e,
                fr_mode_name(q->mode));
        return;
    }
    struct irecv_seen **pp = seen_find(s, q->serial);
    if (!*pp && (*pp = calloc(1, sizeof **pp)) == NULL)
        return;
    snprintf((*pp)->serial, sizeof (*pp)->serial, "%s", q->serial);
    (*pp)->unit = u;
    s->ev.attach(s->ev.arg, &u);
}

static void unit_removed(struct irecv_source *s, const struct irecv_event *q)
{
    struct irecv_seen **pp = seen_find(s, q->serial), *gone = *pp;
    if (!gone)
        return;
    *pp = gone->next;
    s->ev.detach(s->ev.arg, gone->unit.path, gone->unit.ecid);
    free(gone);
}

static void on_wake(uv_async_t *h)
{
    struct irecv_source *s = h->data;
    pthread_mutex_lock(&s->lock);
    struct irecv_event *q = s->queue;
    unsigned long dropped = s->dropped;
    s->queue = NULL;
    s->tail = &s->queue;
    s->queued = 0;
    s->dropped = 0;
    pthread_mutex_unlock(&s->lock);
    if (dropped)
        fr_warn("irecv", "%lu device events dropped (more than %d waiting)", dropped, QUEUE_MAX);
    while (q) {
        struct irecv_event *next = q->next;
        (q->added ? unit_added : unit_removed)(s, q);
        free(q);
        q = next;
    }
}

static int src_start(struct discovery_source *base, uv_loop_t *loop, const struct seam_events *ev,
                     char *err, size_t errlen)
{
    struct irecv_source *s = (struct irecv_source *)base;
    s->ev = *ev;
    uv_async_init(loop, &s->wake, on_wake);
    s->wake.data = s;
    s->started = 1;
    irecv_error_t rc = irecv_device_event_subscribe(&s->sub, on_irecv_event, s);
    if (rc != IRECV_E_SUCCESS) {
        s->sub = NULL;
        return fr_seterr(FR_EUNAVAIL, err, errlen, "libirecovery: cannot subscribe to device "
                         "events: %s", irecv_strerror(rc));
    }
    return 0;
}

static void on_wake_closed(uv_handle_t *h)
{
    struct irecv_source *s = h->data;
    if (s->on_closed)
        s->on_closed(&s->base);
}

static void src_close(struct discovery_source *base, void (*cb)(struct discovery_source *s))
{
    struct irecv_source *s = (struct irecv_source *)base;
    s->on_closed = cb;
    if (s->sub)
        irecv_device_event_unsubscribe(s->sub); /* joins libirecovery's thread: no callback after */
    s->sub = NULL;
    if (!s->started) {
        if (cb)
            cb(base);
        return;
    }
    uv_close((uv_handle_t *)&s->wake, on_wake_closed);
}

static void src_destroy(struct discovery_source *base)
{
    struct irecv_source *s = (struct irecv_source *)base;
    while (s->queue) {
        struct irecv_event *q = s->queue;
        s->queue = q->next;
        free(q);
    }
    while (s->seen) {
        struct irecv_seen *n = s->seen;
        s->seen = n->next;
        free(n);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int irecv_source_new(const char *host_root, struct discovery_source **out, char *err, size_t errlen)
{
    struct irecv_source *s = calloc(1, sizeof *s);
    if (!s)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    s->base.name = "irecv";
    s->base.start = src_start;
    s->base.close = src_close;
    s->base.destroy = src_destroy;
    snprintf(s->host_root, sizeof s->host_root, "%s", host_root ? host_root : "");
    pthread_mutex_init(&s->lock, NULL);
    s->tail = &s->queue;
    *out = &s->base;
    return 0;
}

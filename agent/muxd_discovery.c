/* muxd_discovery — normal-mode units for seams_usb; see muxd_discovery.h. */
#include "muxd_discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_err.h"
#include "fr_log.h"
#include "muxd_source.h"
#include "udid_join.h"

struct muxd_discovery {
    struct discovery_source base;
    struct seam_events ev;
    muxd_port_resolver resolve;
    void *resolve_arg;
    struct muxd_source *muxd;
    struct udid_join join;
    void (*on_closed)(struct discovery_source *s);
};

static void on_identity(void *arg, const char *udid, const struct unit_desc *u)
{
    struct muxd_discovery *d = arg;
    char path[32];
    if (d->resolve(d->resolve_arg, udid, path, sizeof path) < 0) {
        fr_warn("muxd", "unit '%s' is on usbmuxd but no USB device has that serial; not placed "
                "on a port", udid);
        return;
    }
    struct unit_desc id = *u;
    snprintf(id.udid, sizeof id.udid, "%s", udid);
    if (udid_join_presence(&d->join, udid, path) < 0 || udid_join_identity(&d->join, udid, &id) < 0)
        fr_error("muxd", "unit '%s': too many units to join", udid);
}

static void on_gone(void *arg, const char *udid)
{
    struct muxd_discovery *d = arg;
    udid_join_identity_gone(&d->join, udid);
    udid_join_presence_gone(&d->join, udid);
}

static void on_join_attach(void *arg, const struct unit_desc *u)
{
    struct muxd_discovery *d = arg;
    d->ev.attach(d->ev.arg, u);
}

static void on_join_detach(void *arg, const char *path, uint64_t ecid)
{
    struct muxd_discovery *d = arg;
    d->ev.detach(d->ev.arg, path, ecid);
}

static int md_start(struct discovery_source *src, uv_loop_t *loop, const struct seam_events *ev,
                    char *err, size_t errlen)
{
    struct muxd_discovery *d = (struct muxd_discovery *)src;
    d->ev = *ev;
    struct muxd_source_events mev = { on_identity, on_gone, d };
    return muxd_source_start(&d->muxd, loop, &mev, err, errlen);
}

static void on_muxd_closed(void *arg)
{
    struct muxd_discovery *d = arg;
    d->muxd = NULL;
    if (d->on_closed)
        d->on_closed(&d->base);
}

static void md_close(struct discovery_source *src, void (*cb)(struct discovery_source *s))
{
    struct muxd_discovery *d = (struct muxd_discovery *)src;
    d->on_closed = cb;
    if (d->muxd)
        muxd_source_close(d->muxd, on_muxd_closed, d);
    else if (cb)
        cb(src);
}

static void md_destroy(struct discovery_source *src)
{
    struct muxd_discovery *d = (struct muxd_discovery *)src;
    udid_join_release(&d->join);
    free(d);
}

int muxd_discovery_new(muxd_port_resolver resolve, void *arg, struct discovery_source **out,
                       char *err, size_t errlen)
{
    struct muxd_discovery *d = calloc(1, sizeof *d);
    if (!d)
        return fr_seterr(FR_ENOMEM, err, errlen, "out of memory");
    d->base.name = "usbmuxd";
    d->base.start = md_start;
    d->base.close = md_close;
    d->base.destroy = md_destroy;
    d->resolve = resolve;
    d->resolve_arg = arg;
    udid_join_init(&d->join, on_join_attach, on_join_detach, d);
    *out = &d->base;
    return 0;
}

int muxd_discovery_enter_recovery(struct discovery_source *src, uint64_t ecid,
                                  void (*cb)(void *arg, int rc, const char *why), void *arg)
{
    struct muxd_discovery *d = (struct muxd_discovery *)src;
    const char *udid = udid_join_udid_of(&d->join, ecid);
    return d->muxd && udid ? muxd_source_enter_recovery(d->muxd, udid, cb, arg) : FR_ENOTFOUND;
}

/* usb_power — the power-cycle decision (pure) and the thin part that switches. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fr_err.h"
#include "usb_dev.h"
#include "usb_power.h"

/* Why hub h cannot switch one port, or NULL when it can. */
static const char *hub_refusal(const struct usb_hub *h)
{
    switch (h->switching) {
    case USB_SWITCH_PER_PORT:
        return NULL;
    case USB_SWITCH_GANGED:
        return "switches all its ports together (ganged: wHubCharacteristics bits 1:0 = 00)";
    case USB_SWITCH_NONE:
        return "cannot switch port power (wHubCharacteristics bits 1:0 = 1x)";
    default:
        return "did not give its hub descriptor, so its power switching is unknown";
    }
}

static void add_step(const struct usb_topology *t, int port, struct usb_power_plan *plan)
{
    const struct usb_port *p = &t->ports[port];
    const struct usb_hub *h = &t->hubs[p->hub];
    struct usb_power_step *s = &plan->steps[plan->n++];
    s->method = p->has_disable ? USB_POWER_SYSFS : USB_POWER_HUB_REQUEST;
    snprintf(s->hub, sizeof s->hub, "%s", h->name);
    s->bus = h->bus;
    s->devnum = h->devnum;
    s->port = p->num;
    snprintf(s->path, sizeof s->path, "%s", p->path);
}

static int check_half(const struct usb_topology *t, int port, const char *path, char *err,
                      size_t errlen)
{
    const struct usb_port *p = &t->ports[port];
    const struct usb_hub *h = &t->hubs[p->hub];
    if (p->internal)
        return fr_seterr(FR_EINVAL, err, errlen, "port '%s' is the internal daisy-chain port of hub "
                         "'%s': switching it would cut every port behind it", p->path, h->name);
    if (p->child_hub >= 0)
        return fr_seterr(FR_EINVAL, err, errlen, "port '%s' has hub '%s' on it: switching it would "
                         "cut every port behind it", p->path, t->hubs[p->child_hub].name);
    const char *why = hub_refusal(h);
    if (why)
        return fr_seterr(FR_EINVAL, err, errlen, "port '%s': hub '%s' %s", path,
                         h->name, why);
    return 0;
}

int usb_power_plan(const struct usb_topology *t, const char *path, struct usb_power_plan *plan,
                   char *err, size_t errlen)
{
    memset(plan, 0, sizeof *plan);
    int port = usb_topology_port(t, path);
    if (port < 0)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "no port '%s' on this host", path);
    int halves[2] = { port, t->ports[port].peer }, n = halves[1] >= 0 ? 2 : 1;
    for (int i = 0; i < n; i++) { /* the named half's refusal first */
        int rc = check_half(t, halves[i], path, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (n == 2 && !t->hubs[t->ports[halves[0]].hub].superspeed) { /* switch the USB 3 half first */
        halves[0] = halves[1];
        halves[1] = port;
    }
    for (int i = 0; i < n; i++)
        add_step(t, halves[i], plan);
    return 0;
}

static int sysfs_switch(const struct usb_power_step *s, int on, const char *host_root, char *err,
                        size_t errlen)
{
    char path[PATH_MAX];
    const char *root = host_root && *host_root ? host_root : "";
    if (strncmp(s->hub, "usb", 3) == 0)
        snprintf(path, sizeof path, "%s/sys/bus/usb/devices/%u-0:1.0/%s-port%d/disable", root,
                 s->bus, s->hub, s->port);
    else
        snprintf(path, sizeof path, "%s/sys/bus/usb/devices/%s:1.0/%s-port%d/disable", root,
                 s->hub, s->hub, s->port);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(on ? "0" : "1", f) >= 0;
    int e = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        return fr_seterr(FR_EIO, err, errlen, "cannot write '%s': %s", path, strerror(e));
    return 0;
}

int usb_power_apply(const struct usb_power_plan *plan, int on, const char *host_root,
                    struct usb_dev *dev, char *err, size_t errlen)
{
    for (int i = 0; i < plan->n; i++) {
        const struct usb_power_step *s = &plan->steps[on ? plan->n - 1 - i : i];
        int rc = s->method == USB_POWER_SYSFS
                     ? sysfs_switch(s, on, host_root, err, errlen)
                     : usb_dev_port_power(dev, s->bus, s->devnum, s->port, on, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

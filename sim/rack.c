/* rack — rack file parser and the rack model; see rack.h. */
#include "rack.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_config.h"
#include "fr_err.h"
#include "fr_models.h"
#include "fr_sha.h"
#include "fr_text.h"
#include "fr_types.h"

/* A [port] or [unit] section, resolved once every hub is known. */
struct pending {
    char section[64];
    char name[32];
    int line;
    char at[24];
    int at_line;
    char arrive_at[24];   /* the next tray's port label ("" = none) */
    int arrive_line;
    double link_fail;
    int has_link_fail;
    struct rack_unit unit;
    int has_product;
};

struct parse_ctx {
    const char *path;
    struct rack *r;
    char *err;
    size_t errlen;
    int failed;
    char cursec[64];
    int cur_host, cur_hub;
    struct pending *pend;
    size_t npend;
    struct pending *cur_pend;
};

/* Room for one more element; running out of memory while loading a rack file is fatal. */
static void *grow(void *arr, size_t elem, size_t n)
{
    void *p = realloc(arr, elem * (n + 1));
    if (!p) {
        fputs("flashrack-sim: out of memory\n", stderr);
        exit(1);
    }
    return p;
}
#define GROW(arr, n) ((arr) = grow((arr), sizeof *(arr), (n)))

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    while (*s)
        h = splitmix(h ^ (unsigned char)*s++);
    return h;
}

int rack_find_host(const struct rack *r, const char *name)
{
    for (size_t i = 0; i < r->nhosts; i++)
        if (strcmp(r->hosts[i].name, name) == 0)
            return (int)i;
    return -1;
}

int rack_find_port_label(const struct rack *r, const char *label)
{
    for (size_t i = 0; i < r->nports; i++)
        if (strcmp(r->ports[i].label, label) == 0)
            return (int)i;
    return -1;
}

int rack_find_port_path(const struct rack *r, int host, const char *path)
{
    for (size_t i = 0; i < r->nports; i++)
        if (r->ports[i].host == host && strcmp(r->ports[i].path, path) == 0)
            return (int)i;
    return -1;
}

int rack_find_unit(const struct rack *r, uint64_t ecid)
{
    for (size_t i = 0; i < r->nunits; i++)
        if (r->units[i].ecid == ecid)
            return (int)i;
    return -1;
}

#define RACK_DEFAULT_IOS "17.5"

/* ProductVersion → BuildVersion, for the versions a rack file may name. */
static const struct { const char *ios, *build; } ios_builds[] = {
    { "13.7", "17H35" }, { "14.4", "18D52" }, { "14.5", "18E199" }, { "15.8", "19H370" },
    { "16.7", "20H19" }, { "17.5", "21F90" }, { "18.2", "22C152" },
};

const char *rack_ios_build(const char *ios)
{
    for (size_t i = 0; i < sizeof ios_builds / sizeof ios_builds[0]; i++)
        if (strcmp(ios_builds[i].ios, ios) == 0)
            return ios_builds[i].build;
    return NULL;
}

const char *rack_unit_build(const struct rack_unit *u)
{
    const char *b = u->build[0] ? u->build : rack_ios_build(u->ios);
    return b ? b : "";
}

int rack_luhn_digit(const char *digits)
{
    int sum = 0;
    size_t n = strlen(digits);
    for (size_t i = 0; i < n; i++) { /* from the right: the last digit is doubled */
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 0)
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return (10 - sum % 10) % 10;
}

int rack_unit_imei(const struct rack_unit *u, char *buf, size_t len)
{
    if (strncmp(u->product_type, "iPhone", 6) != 0 || len < 16)
        return -1;
    char ecid[FR_ECID_STRLEN], hex[41], body[15];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    struct fr_sha1 c;
    fr_sha1_init(&c);
    fr_sha1_update(&c, "imei", 4);
    fr_sha1_update(&c, ecid, strlen(ecid));
    fr_sha1_hex(&c, hex);
    body[0] = '3'; /* a reporting body of the 35 range, as Apple's TACs are */
    body[1] = '5';
    for (int i = 2; i < 14; i++)
        body[i] = (char)('0' + (hex[i] % 10));
    body[14] = '\0';
    snprintf(buf, len, "%s%d", body, rack_luhn_digit(body));
    return 0;
}

void rack_unit_udid(const struct rack_unit *u, char *buf, size_t len)
{
    if (u->cpid >= 0x8020) {
        snprintf(buf, len, "%08X-%016llX", u->cpid, (unsigned long long)u->ecid);
        return;
    }
    char ecid[FR_ECID_STRLEN], hex[41];
    fr_ecid_format(u->ecid, ecid, sizeof ecid);
    struct fr_sha1 c;
    fr_sha1_init(&c);
    fr_sha1_update(&c, ecid, strlen(ecid));
    fr_sha1_hex(&c, hex);
    snprintf(buf, len, "%s", hex);
}

int rack_unit_ios_at_least(const struct rack_unit *u, int major, int minor)
{
    int ma = 0, mi = 0;
    sscanf(u->ios, "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

int rack_unit_trusts_host(const struct rack_unit *u)
{
    return u->paired && !u->erased;
}

int rack_unit_allows_recovery(const struct rack_unit *u)
{
    return rack_unit_trusts_host(u) || !rack_unit_ios_at_least(u, 14, 5);
}

static int add_host(struct rack *r, const char *name)
{
    GROW(r->hosts, r->nhosts);
    struct rack_host *h = &r->hosts[r->nhosts];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name); /* callers checked its length */
    h->label_prefix[0] = '\0'; /* "NAME-" unless the file sets one: see default_prefixes() */
    snprintf(h->product_types, sizeof h->product_types, "iPhone12,1");
    h->fill = 1;
    h->mode = 2; /* recovery */
    snprintf(h->ios, sizeof h->ios, "%s", RACK_DEFAULT_IOS);
    return (int)r->nhosts++;
}

static int fail(struct parse_ctx *c, int line, const char *key, const char *value, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

static int fail(struct parse_ctx *c, int line, const char *key, const char *value, const char *fmt,
                ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (key)
        fr_seterr(FR_ECONFIG, c->err, c->errlen, "%s:%d: [%s] %s: %s, got '%s'", c->path, line,
                  c->cursec, key, why, value ? value : "");
    else
        fr_seterr(FR_ECONFIG, c->err, c->errlen, "%s:%d: [%s]: %s", c->path, line, c->cursec, why);
    c->failed = 1;
    return 0;
}

static int num(struct parse_ctx *c, int line, const char *key, const char *v, double lo, double hi,
               double *out)
{
    if (fr_cfg_parse_double(v, lo, hi, out) < 0) {
        fail(c, line, key, v, "expected a number from %g to %g", lo, hi);
        return -1;
    }
    return 0;
}

static int integer(struct parse_ctx *c, int line, const char *key, const char *v, long long lo,
                   long long hi, int *out)
{
    long long x;
    if (fr_cfg_parse_int(v, lo, hi, &x) < 0) {
        fail(c, line, key, v, "expected an integer from %lld to %lld", lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int boolean(struct parse_ctx *c, int line, const char *key, const char *v, int *out)
{
    if (fr_cfg_parse_bool(v, out) < 0) {
        fail(c, line, key, v, "expected yes or no");
        return -1;
    }
    return 0;
}

static int mode_value(struct parse_ctx *c, int line, const char *key, const char *v, int *out)
{
    int m = fr_mode_parse(v);
    if (m < 1 || m > 4) { /* restore: a unit left in restore mode (restored answers on usbmuxd) */
        fail(c, line, key, v, "expected dfu, recovery, restore or normal");
        return -1;
    }
    *out = m;
    return 0;
}

static int text(struct parse_ctx *c, int line, const char *key, const char *v, char *dst, size_t n)
{
    if (strlen(v) >= n || !*v) {
        fail(c, line, key, v, "expected 1 to %zu characters", n - 1);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int ios_value(struct parse_ctx *c, int line, const char *key, const char *v, char *dst, size_t n)
{
    if (!rack_ios_build(v)) {
        fail(c, line, key, v, "expected an iOS version the simulator knows (13.7, 14.4, 14.5, "
             "15.8, 16.7, 17.5 or 18.2)");
        return -1;
    }
    snprintf(dst, n, "%s", v);
    return 0;
}

static void on_sim_key(struct parse_ctx *c, int line, const char *k, const char *v)
{
    struct rack_sim *s = &c->r->sim;
    double d;
    struct { const char *key; double *dst; double lo, hi; } nums[] = {
        { "time_scale", &s->time_scale, 0.01, 100000 },
        { "bus_bandwidth_mbps", &s->bus_mbps, 0.1, 100000 },
        { "filesystem_mb", &s->filesystem_mb, 1, 1000000 },
        { "oversubscribe_at", &s->oversubscribe_at, 1, 1000 },
        { "oversubscribe_fail", &s->oversubscribe_fail, 0, 1 },
        { "detect_s", &s->t_detect, 0, 36000 },   { "prepare_s", &s->t_prepare, 0, 36000 },
        { "verify_s", &s->t_verify, 0, 36000 },   { "flash_s", &s->t_flash, 0, 36000 },
        { "baseband_s", &s->t_baseband, 0, 36000 }, { "finish_s", &s->t_finish, 0, 36000 },
        { "reattach_s", &s->reattach_s, 0, 36000 }, { "move_s", &s->move_s, 0, 36000 },
        { "operator_misplug", &s->misplug, 0, 1 },
        { "hub_bandwidth_mbps", &s->hub_mbps, 0, 100000 },
        { "unit_max_mbps", &s->unit_mbps, 0, 100000 },
        { "depth_fail", &s->depth_fail, 0, 1 },
        { "intermittent_fail", &s->intermittent_fail, 0, 1 },
        { "walk_s", &s->walk_s, 0, 36000 }, { "plug_s", &s->plug_s, 0, 36000 },
        { "buttons_s", &s->buttons_s, 0, 36000 },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (strcmp(k, nums[i].key) == 0) {
            if (num(c, line, k, v, nums[i].lo, nums[i].hi, &d) == 0)
                *nums[i].dst = d;
            return;
        }
    if (strcmp(k, "seed") == 0) {
        long long x;
        if (fr_cfg_parse_int(v, 0, INT64_MAX, &x) < 0)
            fail(c, line, k, v, "expected a non-negative integer");
        else
            s->seed = (uint64_t)x;
    } else if (strcmp(k, "technicians") == 0) {
        integer(c, line, k, v, 0, 1000, &s->technicians);
    } else if (strcmp(k, "oversubscribe_counts") == 0) {
        if (strcmp(v, "data") == 0 || strcmp(v, "all") == 0)
            s->oversubscribe_all = strcmp(v, "all") == 0;
        else
            fail(c, line, k, v, "expected data (units sending the filesystem) or all (every "
                                "restore on the bus)");
    } else if (strcmp(k, "socket") == 0) {
        text(c, line, k, v, s->socket, sizeof s->socket);
    } else if (strcmp(k, "usbmuxd_socket") == 0) {
        if (*v) /* empty: no usbmuxd */
            text(c, line, k, v, s->usbmuxd_socket, sizeof s->usbmuxd_socket);
    } else if (strcmp(k, "dialect") == 0) {
        if (strcmp(v, "master") == 0)
            s->dialect = DIALECT_MASTER;
        else if (strcmp(v, "1.0.0") == 0)
            s->dialect = DIALECT_1_0_0;
        else
            fail(c, line, k, v, "expected master or 1.0.0");
    } else {
        fail(c, line, k, v, "unknown key");
    }
}

static void on_host_key(struct parse_ctx *c, int line, const char *k, const char *v)
{
    struct rack_host *h = &c->r->hosts[c->cur_host];
    if (strcmp(k, "label_prefix") == 0)
        text(c, line, k, v, h->label_prefix, sizeof h->label_prefix);
    else if (strcmp(k, "fill") == 0)
        boolean(c, line, k, v, &h->fill);
    else if (strcmp(k, "product_types") == 0)
        text(c, line, k, v, h->product_types, sizeof h->product_types);
    else if (strcmp(k, "mode") == 0)
        mode_value(c, line, k, v, &h->mode);
    else if (strcmp(k, "ios") == 0)
        ios_value(c, line, k, v, h->ios, sizeof h->ios);
    else if (strcmp(k, "paired") == 0)
        boolean(c, line, k, v, &h->paired);
    else
        fail(c, line, k, v, "unknown key (expected label_prefix, fill, product_types, mode, ios "
                            "or paired)");
}

static void on_hub_key(struct parse_ctx *c, int line, const char *k, const char *v)
{
    struct rack_hub *h = &c->r->hubs[c->cur_hub];
    if (strcmp(k, "host") == 0) {
        if (!*v || strlen(v) >= sizeof c->r->hosts[0].name) {
            fail(c, line, k, v, "expected a host name of 1 to %zu characters",
                 sizeof c->r->hosts[0].name - 1);
            return;
        }
        int i = rack_find_host(c->r, v);
        h->host = i >= 0 ? i : add_host(c->r, v);
        if (i < 0)
            c->r->hosts[h->host].line = line;
    } else if (strcmp(k, "bus") == 0) {
        integer(c, line, k, v, 1, 127, &h->bus);
    } else if (strcmp(k, "depth") == 0) {
        integer(c, line, k, v, 1, 7, &h->depth);
    } else if (strcmp(k, "ports") == 0) {
        integer(c, line, k, v, 1, 64, &h->nports);
    } else if (strcmp(k, "power_switch") == 0) {
        boolean(c, line, k, v, &h->power_switch);
    } else {
        fail(c, line, k, v, "unknown key (expected host, bus, depth, ports or power_switch)");
    }
}

static void on_pending_key(struct parse_ctx *c, int line, const char *k, const char *v)
{
    struct pending *p = c->cur_pend;
    int is_unit = strncmp(p->section, "unit ", 5) == 0;
    if (!is_unit && strcmp(k, "link_fail") == 0) {
        if (num(c, line, k, v, 0, 1, &p->link_fail) == 0)
            p->has_link_fail = 1;
    } else if (is_unit && strcmp(k, "at") == 0) {
        text(c, line, k, v, p->at, sizeof p->at);
        p->at_line = line;
    } else if (is_unit && strcmp(k, "product_type") == 0) {
        if (!fr_model_find(v))
            fail(c, line, k, v, "expected a known ProductType such as iPhone12,1");
        else
            p->has_product = text(c, line, k, v, p->unit.product_type,
                                  sizeof p->unit.product_type) == 0;
    } else if (is_unit && strcmp(k, "mode") == 0) {
        mode_value(c, line, k, v, &p->unit.mode);
    } else if (is_unit && strcmp(k, "ios") == 0) {
        ios_value(c, line, k, v, p->unit.ios, sizeof p->unit.ios);
    } else if (is_unit && strcmp(k, "paired") == 0) {
        boolean(c, line, k, v, &p->unit.paired);
    } else if (is_unit && strcmp(k, "battery") == 0) {
        integer(c, line, k, v, 0, 100, &p->unit.battery);
    } else if (is_unit && strcmp(k, "serial") == 0) {
        text(c, line, k, v, p->unit.serial, sizeof p->unit.serial);
    } else if (is_unit && strcmp(k, "arrive_at") == 0) {
        text(c, line, k, v, p->arrive_at, sizeof p->arrive_at);
        p->arrive_line = line;
    } else if (is_unit && strcmp(k, "after_restore") == 0) {
        if (mode_value(c, line, k, v, &p->unit.after_restore) == 0 && p->unit.after_restore == 1)
            fail(c, line, k, v, "expected recovery, restore or normal (a restore never ends in DFU)");
    } else if (is_unit && strcmp(k, "reports_build") == 0) {
        text(c, line, k, v, p->unit.reports_build, sizeof p->unit.reports_build);
    } else if (is_unit && strcmp(k, "health") == 0) {
        static const char *names[] = { "good", "dead", "disk", "intermittent", "prepare",
                                       "verify", "flash" };
        size_t i = 0;
        while (i < sizeof names / sizeof names[0] && strcmp(v, names[i]) != 0)
            i++;
        if (i < sizeof names / sizeof names[0])
            p->unit.health = (enum unit_health)i;
        else
            fail(c, line, k, v, "expected good, dead, disk, intermittent, prepare, verify or flash");
    } else {
        fail(c, line, k, v, is_unit ? "unknown key (expected at, product_type, mode, ios, paired, "
                                      "battery, serial, health, arrive_at, after_restore or reports_build)"
                                    : "unknown key (expected link_fail)");
    }
}

/* Starts a new section object when the section name changes. */
static int enter_section(struct parse_ctx *c, int line, const char *sec)
{
    snprintf(c->cursec, sizeof c->cursec, "%s", sec);
    const char *sp = strchr(sec, ' ');
    const char *name = sp ? sp + 1 : "";
    size_t kind = sp ? (size_t)(sp - sec) : strlen(sec);
    c->cur_host = c->cur_hub = -1;
    c->cur_pend = NULL;
    if (kind == 3 && strncmp(sec, "sim", 3) == 0 && !sp)
        return 0;
    if (!*name)
        return fail(c, line, NULL, NULL, "unknown section: expected [sim], [host NAME], [hub NAME], [port LABEL] "
                                         "or [unit ECID]"), -1;
    if (strlen(name) >= sizeof c->r->hosts[0].name)
        return fail(c, line, NULL, NULL, "the name '%s' is longer than %zu characters", name,
                    sizeof c->r->hosts[0].name - 1), -1;
    if (kind == 4 && strncmp(sec, "host", 4) == 0) {
        int i = rack_find_host(c->r, name);
        c->cur_host = i >= 0 ? i : add_host(c->r, name);
        c->r->hosts[c->cur_host].line = line;
        return 0;
    }
    if (kind == 3 && strncmp(sec, "hub", 3) == 0) {
        GROW(c->r->hubs, c->r->nhubs);
        struct rack_hub *h = &c->r->hubs[c->r->nhubs];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", name);
        h->host = -1;
        h->bus = 1;
        h->depth = 1;
        h->nports = 4;
        h->line = line;
        c->cur_hub = (int)c->r->nhubs++;
        return 0;
    }
    int is_unit = kind == 4 && strncmp(sec, "unit", 4) == 0;
    if (is_unit || (kind == 4 && strncmp(sec, "port", 4) == 0)) {
        GROW(c->pend, c->npend);
        struct pending *p = &c->pend[c->npend++];
        memset(p, 0, sizeof *p);
        snprintf(p->section, sizeof p->section, "%s", sec);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->line = line;
        p->unit.battery = 100;
        p->unit.mode = 2;
        snprintf(p->unit.ios, sizeof p->unit.ios, "%s", RACK_DEFAULT_IOS);
        if (is_unit && fr_ecid_parse(name, &p->unit.ecid) < 0)
            return fail(c, line, NULL, NULL, "'%s' is not an ECID (expected 0x followed by hex)",
                        name), -1;
        for (size_t i = 0; is_unit && i + 1 < c->npend; i++) /* 0x1A and 0x001A are one unit */
            if (strncmp(c->pend[i].section, "unit ", 5) == 0 && c->pend[i].unit.ecid == p->unit.ecid)
                return fail(c, line, NULL, NULL, "unit %s is already described at line %d (as "
                            "[%s])", name, c->pend[i].line, c->pend[i].section), -1;
        c->cur_pend = p;
        return 0;
    }
    return fail(c, line, NULL, NULL,
                "unknown section (expected sim, host, hub, port or unit)"), -1;
}

static int on_entry(void *user, const char *sec, const char *k, const char *v, int line)
{
    struct parse_ctx *c = user;
    if (strcmp(sec, c->cursec) != 0 && enter_section(c, line, sec) < 0)
        return 0;
    if (c->cur_host >= 0)
        on_host_key(c, line, k, v);
    else if (c->cur_hub >= 0)
        on_hub_key(c, line, k, v);
    else if (c->cur_pend)
        on_pending_key(c, line, k, v);
    else if (strcmp(sec, "sim") == 0)
        on_sim_key(c, line, k, v);
    return !c->failed;
}

static void sim_defaults(struct rack_sim *s)
{
    memset(s, 0, sizeof *s);
    s->seed = 1;
    s->time_scale = 60;
    snprintf(s->socket, sizeof s->socket, "/tmp/flashrack-sim.sock");
    s->bus_mbps = 35;
    s->filesystem_mb = 6000;
    s->oversubscribe_at = 10;
    s->oversubscribe_fail = 0.04;
    s->t_detect = 5;
    s->t_prepare = 60;
    s->t_verify = 120;
    s->t_flash = 180;
    s->t_baseband = 60;
    s->t_finish = 30;
    s->reattach_s = 20;
    s->move_s = 30;
    s->intermittent_fail = 0.5;
    s->walk_s = 20;
    s->plug_s = 10;
    s->buttons_s = 15;
}

static void make_ports(struct rack *r)
{
    for (size_t h = 0; h < r->nhubs; h++) {
        struct rack_hub *hub = &r->hubs[h];
        struct rack_host *host = &r->hosts[hub->host];
        hub->index_on_bus = 1; /* its number among this host's hubs on that bus */
        for (size_t k = 0; k < h; k++)
            hub->index_on_bus += r->hubs[k].host == hub->host && r->hubs[k].bus == hub->bus;
        for (int n = 1; n <= hub->nports; n++) {
            GROW(r->ports, r->nports);
            struct rack_port *p = &r->ports[r->nports++];
            memset(p, 0, sizeof *p);
            snprintf(p->path, sizeof p->path, "%d-%d.%d", hub->bus, hub->index_on_bus, n);
            snprintf(p->label, sizeof p->label, "%s%02d", host->label_prefix, ++host->next_label);
            p->host = hub->host;
            p->hub = (int)h;
            p->bus = hub->bus;
            p->depth = hub->depth + 1;
            p->power_switch = hub->power_switch;
            p->unit = -1;
        }
    }
}

static void set_identity(struct rack_unit *u, uint64_t seed)
{
    const struct fr_model *m = fr_model_find(u->product_type);
    snprintf(u->board, sizeof u->board, "%s", m->board);
    u->cpid = m->cpid;
    u->bdid = m->bdid;
    if (!u->serial[0]) {
        static const char al[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
        uint64_t h = splitmix(seed ^ u->ecid);
        memcpy(u->serial, "F2L", 3);
        for (int i = 3; i < 12; i++, h /= 34)
            u->serial[i] = al[h % 34];
        u->serial[12] = '\0';
    }
}

/* The n-th (cyclically) of a whitespace-separated list (ProductTypes contain commas). */
static void list_item(const char *list, int n, char *out, size_t len)
{
    int count = 0;
    for (const char *p = list; *p;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p)
            count++;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    out[0] = '\0';
    if (count == 0)
        return;
    n %= count;
    const char *p = list;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        size_t k = 0;
        while (p[k] && !isspace((unsigned char)p[k]))
            k++;
        if (n-- == 0) {
            snprintf(out, len, "%.*s", (int)k, p);
            return;
        }
        p += k;
    }
}

static int fill_units(struct parse_ctx *c)
{
    struct rack *r = c->r;
    for (size_t i = 0; i < r->nports; i++) {
        struct rack_port *p = &r->ports[i];
        struct rack_host *h = &r->hosts[p->host];
        if (!h->fill)
            continue;
        GROW(r->units, r->nunits);
        struct rack_unit *u = &r->units[r->nunits];
        memset(u, 0, sizeof *u);
        u->ecid = (hash_str(r->sim.seed, p->label) & 0x000FFFFFFFFFFFFFull) | 0x0001000000000000ull;
        list_item(h->product_types, (int)i, u->product_type, sizeof u->product_type);
        if (!fr_model_find(u->product_type))
        {
            snprintf(c->cursec, sizeof c->cursec, "host %s", h->name);
            return fail(c, h->line, "product_types", u->product_type,
                        "expected known ProductTypes such as iPhone12,1"), -1;
        }
        u->mode = h->mode;
        snprintf(u->ios, sizeof u->ios, "%s", h->ios);
        u->paired = h->paired;
        u->battery = 100;
        u->port = (int)i;
        u->arrive_at = -1;
        set_identity(u, r->sim.seed);
        p->unit = (int)r->nunits++;
    }
    return 0;
}

static int resolve_pending(struct parse_ctx *c)
{
    struct rack *r = c->r;
    for (size_t i = 0; i < c->npend && !c->failed; i++) {
        struct pending *p = &c->pend[i];
        snprintf(c->cursec, sizeof c->cursec, "%s", p->section);
        if (strncmp(p->section, "port ", 5) == 0) {
            int port = rack_find_port_label(r, p->name);
            if (port < 0)
                return fail(c, p->line, NULL, NULL, "no port labelled '%s' on any hub", p->name), -1;
            if (p->has_link_fail)
                r->ports[port].link_fail = p->link_fail;
            continue;
        }
        int port = p->at[0] ? rack_find_port_label(r, p->at) : -1;
        if (p->at[0] && port < 0)
            return fail(c, p->at_line, "at", p->at, "expected the label of a port"), -1;
        int arrive = p->arrive_at[0] ? rack_find_port_label(r, p->arrive_at) : -1;
        if (p->arrive_at[0] && (arrive < 0 || p->at[0]))
            return fail(c, p->arrive_line, "arrive_at", p->arrive_at, arrive < 0 ? "expected the label "
                        "of a port" : "expected no 'at' too (the next tray is not on the rack yet)"), -1;
        for (size_t k = 0; port >= 0 && k < i; k++)
            if (strncmp(c->pend[k].section, "unit ", 5) == 0 && strcmp(c->pend[k].at, p->at) == 0)
                return fail(c, p->at_line, "at", p->at, "expected a free port: [%s] is there "
                            "already (line %d)", c->pend[k].section, c->pend[k].at_line), -1;
        int idx = rack_find_unit(r, p->unit.ecid);
        if (idx < 0 && port >= 0)
            idx = r->ports[port].unit; /* replaces the generated unit there */
        if (idx < 0) {
            GROW(r->units, r->nunits);
            idx = (int)r->nunits++;
            memset(&r->units[idx], 0, sizeof r->units[idx]);
            r->units[idx].port = -1;
        }
        struct rack_unit *u = &r->units[idx];
        if (u->port >= 0)
            r->ports[u->port].unit = -1;
        char pt[24];
        snprintf(pt, sizeof pt, "%s", p->has_product ? p->unit.product_type
                                  : (u->product_type[0] ? u->product_type : "iPhone12,1"));
        *u = p->unit;
        snprintf(u->product_type, sizeof u->product_type, "%s", pt);
        u->port = port;
        u->arrive_at = arrive;
        if (port >= 0) {
            if (r->ports[port].unit >= 0)
                r->ports[r->ports[port].unit].unit = -1;
            r->ports[port].unit = idx;
        }
        set_identity(u, r->sim.seed);
    }
    return c->failed ? -1 : 0;
}

/* A host without label_prefix labels its ports "NAME-01"...: refused when "NAME-" does not
 * fit, rather than two long names cut to one prefix and their labels taken twice. */
static int default_prefixes(struct parse_ctx *c)
{
    for (size_t i = 0; i < c->r->nhosts; i++) {
        struct rack_host *h = &c->r->hosts[i];
        if (h->label_prefix[0] || fr_fmt(h->label_prefix, sizeof h->label_prefix, "%s-", h->name) == 0)
            continue;
        snprintf(c->cursec, sizeof c->cursec, "host %s", h->name);
        return fail(c, h->line, NULL, NULL, "a host name over %zu characters needs a label_prefix "
                    "(its ports' labels are the prefix and a number)",
                    sizeof h->label_prefix - 2), -1;
    }
    return 0;
}

static int validate(struct parse_ctx *c)
{
    struct rack *r = c->r;
    if (default_prefixes(c) < 0)
        return -1;
    for (size_t i = 0; i < r->nhubs; i++)
        if (r->hubs[i].host < 0) {
            snprintf(c->cursec, sizeof c->cursec, "hub %s", r->hubs[i].name);
            return fail(c, r->hubs[i].line, NULL, NULL, "hub has no 'host = NAME'"), -1;
        }
    if (r->nhubs == 0) {
        c->failed = 1;
        return fr_seterr(FR_ECONFIG, c->err, c->errlen,
                         "%s: no ports: add a [hub NAME] section with host, bus and ports", c->path);
    }
    return 0;
}

int rack_load(const char *path, struct rack *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    sim_defaults(&r->sim);
    struct parse_ctx c = { path, r, err, errlen, 0, "", -1, -1, NULL, 0, NULL };
    if (fr_cfg_ini_parse(path, on_entry, &c, err, errlen) < 0)
        c.failed = 1;
    if (!c.failed && validate(&c) == 0) {
        make_ports(r);
        if (fill_units(&c) == 0)
            resolve_pending(&c);
    }
    free(c.pend);
    if (c.failed) {
        rack_free(r);
        return FR_ECONFIG;
    }
    return 0;
}

void rack_free(struct rack *r)
{
    free(r->hosts);
    free(r->hubs);
    free(r->ports);
    free(r->units);
    r->hosts = NULL;
    r->hubs = NULL;
    r->ports = NULL;
    r->units = NULL;
    r->nhosts = r->nhubs = r->nports = r->nunits = 0;
}

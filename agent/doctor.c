/* doctor — the host checks behind `flashrack-agent doctor`. */
#include <curl/curl.h>
#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <plist/plist.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#define UPGRADE_FIX "install idevicerestore and libirecovery built from the upstream sources " \
                    "(docs/UPSTREAM-STACK.md) and point [engine] path at it"
#define UNITS_LISTED 4 /* the units a check names; the rest are counted */

#include "doctor.h"
#include "engine_probe.h"
#include "fr_err.h"
#include "fr_muxd_addr.h"
#include "muxd_source.h"
#include "irecv_serial.h"
#include "usb_topology.h"

#define UDEV_RULE "60-flashrack.rules"
#define IPSW_GB 10 /* a full IPSW is 6-10 GB */

const char *doctor_status_name(enum doctor_status s)
{
    return s == DOCTOR_OK ? "ok" : s == DOCTOR_WARN ? "warn" : "fail";
}

static void add(struct doctor_report *r, const char *name, enum doctor_status st, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add(struct doctor_report *r, const char *name, enum doctor_status st, const char *fix,
                const char *fmt, ...)
{
    if (r->n == DOCTOR_MAX_CHECKS)
        return;
    struct doctor_check *c = &r->checks[r->n++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->status = st;
    snprintf(c->fix, sizeof c->fix, "%s", st == DOCTOR_OK ? "" : fix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->found, sizeof c->found, fmt, ap);
    va_end(ap);
}

static void under(const struct doctor_opts *o, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", o->host_root ? o->host_root : "", path);
}

/* ---- USB tree: presence, hub depth, ports per bus -------------------------------- */

static void check_tree(const struct doctor_opts *o, struct doctor_report *r)
{
    struct usb_topology *t = NULL;
    char err[512];
    if (usb_topology_read(o->host_root, NULL, NULL, &t, err, sizeof err) < 0) {
        add(r, "usb", DOCTOR_FAIL, "run the agent on a host with USB (a container needs /sys and "
            "/dev/bus/usb from the host)", "%s", err);
        return;
    }
    size_t rack = 0, deep = 0;
    const char *deep_example = "";
    uint32_t maxbus = 0;
    for (size_t i = 0; i < t->nports; i++)
        if (usb_topology_is_rack_port(t, (int)i)) {
            rack++;
            if (t->ports[i].depth >= 3 && !deep++)
                deep_example = t->ports[i].path;
            if (t->hubs[t->ports[i].hub].bus > maxbus)
                maxbus = t->hubs[t->ports[i].hub].bus;
        }
    add(r, "usb", rack ? DOCTOR_OK : DOCTOR_WARN, "plug the rack's hubs into this host",
        "%zu hubs, %zu rack ports", t->nhubs, rack);
    if (deep)
        add(r, "depth", DOCTOR_WARN, "plug hubs into root ports: at most one hub between the host "
            "and a phone", "%zu rack ports at hub depth 3 or more (e.g. %s): restores fail more "
            "behind a hub behind a hub", deep, deep_example);
    else
        add(r, "depth", DOCTOR_OK, "", "no rack port deeper than depth 2");
    char over[256] = "";
    for (uint32_t bus = 1; bus <= maxbus && o->bus_limit > 0; bus++) {
        long long n = 0;
        for (size_t i = 0; i < t->nports; i++)
            n += usb_topology_is_rack_port(t, (int)i) && t->hubs[t->ports[i].hub].bus == bus;
        if (n > o->bus_limit)
            snprintf(over + strlen(over), sizeof over - strlen(over), "%sbus %u: %lld ports",
                     over[0] ? ", " : "", bus, n);
    }
    if (over[0])
        add(r, "buses", DOCTOR_WARN, "spread the hubs over more host controllers so restores do not "
            "wait for their bus", "%s, more than bus_limit = %lld restores at once", over,
            o->bus_limit);
    else
        add(r, "buses", DOCTOR_OK, "", "no bus has more rack ports than bus_limit = %lld",
            o->bus_limit);
    usb_topology_destroy(&t);
}

/* ---- udev rule, group, device nodes ---------------------------------------------- */

/* The gid of group name in HOST_ROOT/etc/group, or -1. */
static long group_gid(const struct doctor_opts *o, const char *name)
{
    char path[PATH_MAX], line[1024];
    under(o, "/etc/group", path, sizeof path);
    FILE *f = fopen(path, "r");
    long gid = -1;
    size_t n = strlen(name);
    while (f && gid < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            const char *p = strchr(line + n + 1, ':');
            gid = p ? strtol(p + 1, NULL, 10) : -1;
        }
    if (f)
        fclose(f);
    return gid;
}

static int rule_installed(const struct doctor_opts *o, char *where, size_t len)
{
    const char *dirs[] = { "/etc/udev/rules.d/", "/lib/udev/rules.d/", "/usr/lib/udev/rules.d/" };
    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s%s" UDEV_RULE, o->host_root ? o->host_root : "", dirs[i]);
        if (access(path, R_OK) == 0) {
            snprintf(where, len, "%s" UDEV_RULE, dirs[i]);
            return 1;
        }
    }
    return 0;
}

/* DFU/recovery units present whose device node the group cannot read and write: counted,
 * the first named. */
static size_t nodes_not_in_group(const struct doctor_opts *o, long gid, size_t *units, char *example,
                                 size_t len)
{
    struct usb_device_entry *devs;
    size_t n, bad = 0;
    *units = 0;
    if (usb_topology_devices(o->host_root, APPLE_VID, &devs, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char node[64], full[PATH_MAX];
        if (!irecv_pid_is_irecv(devs[i].pid))
            continue;
        snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", devs[i].bus, devs[i].devnum);
        under(o, node, full, sizeof full);
        struct stat st;
        (*units)++;
        if (stat(full, &st) != 0 || (long)st.st_gid != gid || (st.st_mode & 0060) != 0060)
            if (!bad++)
                snprintf(example, len, "%s (port %s, 05ac:%04x)", node, devs[i].path, devs[i].pid);
    }
    free(devs);
    return bad;
}

static void check_udev(const struct doctor_opts *o, struct doctor_report *r)
{
    char where[128];
    const char *install = "install -m 644 deploy/udev/" UDEV_RULE " /etc/udev/rules.d/ && udevadm "
                          "control --reload && udevadm trigger";
    if (!rule_installed(o, where, sizeof where))
        add(r, "udev", DOCTOR_FAIL, install, "no " UDEV_RULE " in /etc/udev/rules.d or "
            "/lib/udev/rules.d: DFU and recovery units are root's only, the agent cannot open them");
    else
        add(r, "udev", DOCTOR_OK, "", "%s installed", where);
    long gid = group_gid(o, "flashrack");
    if (gid < 0) {
        add(r, "group", DOCTOR_FAIL, "groupadd --system flashrack && usermod -aG flashrack "
            "<the agent's user>", "no group 'flashrack' in /etc/group");
        return;
    }
    add(r, "group", DOCTOR_OK, "", "group 'flashrack' is gid %ld", gid);
    size_t units, bad;
    char example[160] = "";
    bad = nodes_not_in_group(o, gid, &units, example, sizeof example);
    if (bad)
        add(r, "nodes", DOCTOR_FAIL, install, "%zu of %zu DFU/recovery units are not read-write for "
            "group flashrack, e.g. %s: the rule did not apply to them", bad, units, example);
    else
        add(r, "nodes", DOCTOR_OK, "", "%zu DFU/recovery units present, all read-write for "
            "group flashrack", units);
}

/* ---- usbmuxd --------------------------------------------------------------------- */

static int mux_request(int fd, long timeout_ms, plist_t *answer)
{
    plist_t req = plist_new_dict();
    plist_dict_set_item(req, "MessageType", plist_new_string("ListDevices"));
    plist_dict_set_item(req, "ClientVersionString", plist_new_string("flashrack-agent doctor"));
    plist_dict_set_item(req, "ProgName", plist_new_string("flashrack-agent"));
    plist_dict_set_item(req, "kLibUSBMuxVersion", plist_new_uint(3));
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(req, &xml, &len);
    plist_free(req);
    uint32_t hdr[4] = { 16 + len, 1, 8, 1 }; /* little-endian on every host flashrack runs on */
    int ok = write(fd, hdr, 16) == 16 && write(fd, xml, len) == (ssize_t)len;
    free(xml);
    struct pollfd p = { fd, POLLIN, 0 };
    uint32_t rh[4];
    if (!ok || poll(&p, 1, (int)timeout_ms) != 1 || read(fd, rh, 16) != 16 || rh[0] < 16 ||
        rh[0] > (1u << 20))
        return -1;
    size_t body = rh[0] - 16, got = 0;
    char *buf = malloc(body + 1);
    while (buf && got < body && poll(&p, 1, (int)timeout_ms) == 1) {
        ssize_t n = read(fd, buf + got, body - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (buf && got == body)
        plist_from_xml(buf, (uint32_t)body, answer);
    free(buf);
    return *answer ? 0 : -1;
}

static void mux_version(char *buf, size_t len)
{
    FILE *p = popen("usbmuxd --version 2>/dev/null", "r");
    buf[0] = '\0';
    if (p) {
        if (!fgets(buf, (int)len, p))
            buf[0] = '\0';
        pclose(p);
    }
    buf[strcspn(buf, "\n")] = '\0';
    if (!buf[0])
        snprintf(buf, len, "version not readable (no usbmuxd binary on PATH)");
}

/* A connected socket to usbmuxd at a, or -1 with errno set. */
static int mux_connect(const struct fr_muxd_addr *a)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof(struct sockaddr_un);
    char err[256];
    if (a->tcp && fr_muxd_addr_resolve(a, &ss, &len, err, sizeof err) < 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    if (!a->tcp) {
        struct sockaddr_un *sa = (struct sockaddr_un *)&ss;
        sa->sun_family = AF_UNIX;
        snprintf(sa->sun_path, sizeof sa->sun_path, "%s", a->path);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        fd = -1;
    }
    return fd;
}

/* Asks usbmuxd for its devices; *devices is its DeviceList (caller frees) when it answers. */
static void check_usbmuxd(const struct doctor_opts *o, struct doctor_report *r, plist_t *devices)
{
    const char *fix = "apt-get install usbmuxd (it is started by udev when a phone is plugged in)";
    struct fr_muxd_addr a;
    char err[512];
    *devices = NULL;
    if (fr_muxd_addr_parse(o->usbmuxd_address, o->usbmuxd_default, &a, err, sizeof err) < 0)
        return add(r, "usbmuxd", DOCTOR_FAIL, "set it to UNIX:/path or HOST:PORT, or unset it for "
                   "/var/run/usbmuxd", "%s", err);
    const char *where = a.tcp ? a.text : a.path;
    int fd = mux_connect(&a);
    if (fd < 0)
        return add(r, "usbmuxd", DOCTOR_WARN, fix, "no usbmuxd at '%s' (%s): units in normal and "
                   "restore mode are not seen", where, strerror(errno));
    plist_t answer = NULL;
    int rc = mux_request(fd, o->timeout_ms, &answer);
    close(fd);
    plist_t list = answer ? plist_dict_get_item(answer, "DeviceList") : NULL;
    char version[128];
    mux_version(version, sizeof version);
    if (rc < 0 || !list || plist_get_node_type(list) != PLIST_ARRAY) {
        add(r, "usbmuxd", DOCTOR_FAIL, "restart usbmuxd (systemctl restart usbmuxd)", "'%s' does "
            "not answer ListDevices like usbmuxd; %s", where, version);
    } else {
        add(r, "usbmuxd", DOCTOR_OK, "", "'%s' answers: %u devices; %s", where,
            plist_array_get_size(list), version);
        *devices = plist_copy(list);
    }
    plist_free(answer);
}

/* ---- engine ---------------------------------------------------------------------- */

/* The engine; info stays filled for the models check (models_known 0 when it cannot run). */
static void check_engine(const struct doctor_opts *o, struct doctor_report *r,
                         struct engine_info *info)
{
    char err[512];
    if (engine_probe(o->engine_path, info, err, sizeof err) < 0) {
        add(r, "engine", DOCTOR_FAIL, "set [engine] path to idevicerestore with -P (a current "
            "upstream build, see docs/REAL-HOST.md)", "%s", err);
        engine_info_release(info);
        info->name[0] = '\0';
    } else if (info->models_known) {
        add(r, "engine", DOCTOR_OK, "", "'%s %s' with -P; it knows %zu iPhone models, the newest "
            "%s (its libirecovery '%s')", info->name, info->version, info->nmodels, info->newest,
            info->irecovery);
    } else {
        add(r, "engine", DOCTOR_OK, "", "'%s %s' with -P; loads no libirecovery, so no model "
            "limit is known", info->name, info->version);
    }
}

/* ---- the models present against the engine's ------------------------------------ */

struct model_tally {
    size_t units, unknown;
    char named[300];             /* the first unknown units, for the message */
};

static void tally(struct model_tally *t, int known, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tally(struct model_tally *t, int known, const char *fmt, ...)
{
    t->units++;
    if (known || ++t->unknown > UNITS_LISTED)
        return;
    size_t n = strlen(t->named);
    if (n && n + 2 < sizeof t->named)
        snprintf(t->named + n, sizeof t->named - n, "; "), n += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->named + n, sizeof t->named - n, fmt, ap);
    va_end(ap);
}

/* DFU, WTF and recovery units, by the CPID and BDID of their USB serial string. */
static void tally_irecv_units(const struct doctor_opts *o, const struct engine_info *e,
                              struct model_tally *t)
{
    struct usb_device_entry *devs;
    size_t n;
    if (usb_topology_devices(o->host_root, APPLE_VID, &devs, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct irecv_serial sn;
        char err[160];
        const char *pt;
        if (!irecv_pid_is_irecv(devs[i].pid) ||
            irecv_serial_parse(devs[i].serial, &sn, err, sizeof err) < 0)
            continue; /* a serial the agent cannot read is the udev/usb checks' business */
        tally(t, engine_supports_chip(e, sn.cpid, sn.bdid, &pt), "ECID 0x%016llX on %s "
              "(CPID 0x%04X, BDID 0x%02X)", (unsigned long long)sn.ecid, devs[i].path, sn.cpid,
              sn.bdid);
    }
    free(devs);
}

/* Normal and restore-mode units on usbmuxd, by the ProductType lockdownd (or restored) gives. */
static void tally_muxd_units(plist_t devices, const struct engine_info *e, struct model_tally *t,
                             size_t *unread)
{
    for (uint32_t i = 0; devices && i < plist_array_get_size(devices); i++) {
        plist_t props = plist_dict_get_item(plist_array_get_item(devices, i), "Properties");
        plist_t sn = props ? plist_dict_get_item(props, "SerialNumber") : NULL;
        const char *udid = sn && plist_get_node_type(sn) == PLIST_STRING
                               ? plist_get_string_ptr(sn, NULL) : NULL;
        struct unit_desc u;
        char err[300];
        if (!udid || (muxd_read_identity(udid, &u, err, sizeof err) < 0 && !u.product_type[0])) {
            (*unread)++;
            continue;
        }
        tally(t, engine_supports_model(e, u.product_type), "%s (UDID %s)", u.product_type, udid);
    }
}

static void check_models(const struct doctor_opts *o, struct doctor_report *r,
                         const struct engine_info *e, plist_t devices)
{
    if (!e->name[0])
        return; /* the engine check failed: nothing to compare with */
    struct model_tally t = { 0 };
    size_t unread = 0;
    tally_irecv_units(o, e, &t);
    tally_muxd_units(devices, e, &t, &unread);
    char also[96] = "";
    if (unread)
        snprintf(also, sizeof also, "; %zu on usbmuxd whose model could not be read", unread);
    if (!e->models_known)
        add(r, "models", DOCTOR_OK, "", "%zu units present; '%s %s' has no known model limit%s",
            t.units, e->name, e->version, also);
    else if (t.unknown)
        add(r, "models", DOCTOR_FAIL, UPGRADE_FIX, "%zu of %zu units present are models '%s %s' "
            "does not know (its libirecovery stops at %s): %s%s%s", t.unknown, t.units, e->name,
            e->version, e->newest[0] ? e->newest : "no iPhone", t.named,
            t.unknown > UNITS_LISTED ? "; ..." : "", also);
    else
        add(r, "models", DOCTOR_OK, "", "%zu units present, all models '%s %s' knows%s", t.units,
            e->name, e->version, also);
}

/* ---- disk and network ------------------------------------------------------------ */

static void check_disk(const struct doctor_opts *o, struct doctor_report *r)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", o->cache_dir);
    struct statvfs vs;
    while (statvfs(dir, &vs) != 0) { /* the cache may not exist yet: ask its parent */
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            snprintf(dir, sizeof dir, "%s", slash == dir ? "/" : ".");
            if (statvfs(dir, &vs) != 0)
                return add(r, "disk", DOCTOR_FAIL, "set [agent] cache_dir to a writable place",
                           "cannot stat '%s': %s", o->cache_dir, strerror(errno));
            break;
        }
        *slash = '\0';
    }
    double free_gb = (double)vs.f_bavail * (double)vs.f_frsize / (1 << 30);
    if (free_gb < IPSW_GB)
        add(r, "disk", DOCTOR_FAIL, "free space there, or point [agent] cache_dir elsewhere",
            "%.1f GB free for the IPSW cache '%s': less than one IPSW (%d GB)", free_gb,
            o->cache_dir, IPSW_GB);
    else if (free_gb < (double)o->cache_gb)
        add(r, "disk", DOCTOR_WARN, "lower [agent] cache_gb or free space", "%.1f GB free for the "
            "IPSW cache '%s', cache_gb = %lld", free_gb, o->cache_dir, o->cache_gb);
    else
        add(r, "disk", DOCTOR_OK, "", "%.1f GB free for the IPSW cache '%s'", free_gb, o->cache_dir);
}

static void check_url(const struct doctor_opts *o, struct doctor_report *r, const char *name,
                      const char *url, const char *fix)
{
    CURL *c = curl_easy_init();
    if (!c)
        return add(r, name, DOCTOR_FAIL, fix, "cannot start libcurl");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) /* any HTTP answer means it is reachable */
        add(r, name, DOCTOR_FAIL, fix, "cannot reach '%s' within %ld ms: %s", url, o->timeout_ms,
            curl_easy_strerror(rc));
    else
        add(r, name, DOCTOR_OK, "", "'%s' answers (HTTP %ld)", url, status);
}

void doctor_run(const struct doctor_opts *o, struct doctor_report *r)
{
    r->n = 0;
    check_tree(o, r);
    check_udev(o, r);
    plist_t devices;
    struct engine_info engine;
    check_usbmuxd(o, r, &devices);
    check_engine(o, r, &engine);
    check_models(o, r, &engine, devices);
    engine_info_release(&engine);
    plist_free(devices);
    check_disk(o, r);
    if (o->mirror && (strncmp(o->mirror, "http://", 7) == 0 || strncmp(o->mirror, "https://", 8) == 0))
        check_url(o, r, "mirror", o->mirror, "check [agent] mirror and the controller's [mirror] "
                  "listen address");
    check_url(o, r, "signing", o->signing_url, "allow outbound HTTPS to the signing server: "
              "restores need it during the restore too");
}

/* ---- output ---------------------------------------------------------------------- */

void doctor_print_text(const struct doctor_report *r, FILE *out)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct doctor_check *c = &r->checks[i];
        fprintf(out, "%-4s  %-8s %s\n", doctor_status_name(c->status), c->name, c->found);
        if (c->fix[0])
            fprintf(out, "      %-8s fix: %s\n", "", c->fix);
    }
}

void doctor_print_json(const struct doctor_report *r, FILE *out)
{
    json_t *checks = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct doctor_check *c = &r->checks[i];
        json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s}", "name", c->name, "status",
                                                doctor_status_name(c->status), "found", c->found,
                                                "fix", c->fix));
    }
    json_t *doc = json_pack("{s:o, s:b}", "checks", checks, "ok", !doctor_exit_code(r));
    json_dumpf(doc, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(doc);
}

int doctor_exit_code(const struct doctor_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->checks[i].status == DOCTOR_FAIL)
            return 1;
    return 0;
}

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

#include "doctor.h"
#include "engine_probe.h"
#include "fr_err.h"
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

static void check_usbmuxd(const struct doctor_opts *o, struct doctor_report *r)
{
    const char *fix = "apt-get install usbmuxd (it is started by udev when a phone is plugged in)";
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", o->usbmuxd_socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        add(r, "usbmuxd", DOCTOR_WARN, fix, "no usbmuxd at '%s' (%s): units in normal and restore "
            "mode are not seen", o->usbmuxd_socket, strerror(e));
        return;
    }
    plist_t answer = NULL;
    int rc = mux_request(fd, o->timeout_ms, &answer);
    close(fd);
    plist_t list = answer ? plist_dict_get_item(answer, "DeviceList") : NULL;
    char version[128];
    mux_version(version, sizeof version);
    if (rc < 0 || !list || plist_get_node_type(list) != PLIST_ARRAY)
        add(r, "usbmuxd", DOCTOR_FAIL, "restart usbmuxd (systemctl restart usbmuxd)", "'%s' does "
            "not answer ListDevices like usbmuxd; %s", o->usbmuxd_socket, version);
    else
        add(r, "usbmuxd", DOCTOR_OK, "", "'%s' answers: %u devices; %s", o->usbmuxd_socket,
            plist_array_get_size(list), version);
    plist_free(answer);
}

/* ---- engine ---------------------------------------------------------------------- */

static void check_engine(const struct doctor_opts *o, struct doctor_report *r)
{
    struct engine_info info;
    char err[512];
    if (engine_probe(o->engine_path, &info, err, sizeof err) < 0)
        add(r, "engine", DOCTOR_FAIL, "set [engine] path to idevicerestore with -P (a current "
            "upstream build, see docs/REAL-HOST.md)", "%s", err);
    else if (info.models_known)
        add(r, "engine", DOCTOR_OK, "", "'%s %s' with -P; it knows %zu iPhone models, the newest "
            "%s (its libirecovery '%s')", info.name, info.version, info.nmodels, info.newest,
            info.irecovery);
    else
        add(r, "engine", DOCTOR_OK, "", "'%s %s' with -P; loads no libirecovery, so no model "
            "limit is known", info.name, info.version);
    engine_info_release(&info);
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
    check_usbmuxd(o, r);
    check_engine(o, r);
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

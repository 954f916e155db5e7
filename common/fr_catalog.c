/* fr_catalog — firmware catalogs and selector resolution; see fr_catalog.h. */
#include "fr_catalog.h"
#include "fr_err.h"
#include "fr_types.h"

#include <errno.h>
#include <jansson.h>
#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CATALOG_MAX (64 * 1024 * 1024)

int fr_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        a += *a == '.';
        b += *b == '.';
        if ((*a && *a != '.' && (*a < '0' || *a > '9')) || (*b && *b != '.' && (*b < '0' || *b > '9')))
            break; /* not numeric any more: equal as far as it goes */
    }
    return 0;
}

/* Adds or merges (same model and build: fill what the other source lacked). */
static int add(struct fr_catalog *c, const struct fr_fw *fw)
{
    for (size_t i = 0; i < c->n; i++) {
        struct fr_fw *e = &c->fw[i];
        if (strcmp(e->product_type, fw->product_type) || strcmp(e->build, fw->build))
            continue;
        if (!e->sha256[0])
            memcpy(e->sha256, fw->sha256, sizeof e->sha256);
        if (!e->sha1[0])
            memcpy(e->sha1, fw->sha1, sizeof e->sha1);
        if (!e->size)
            e->size = fw->size;
        if (!e->signed_known && fw->signed_known) {
            e->signed_known = 1;
            e->is_signed = fw->is_signed;
        }
        return 0;
    }
    struct fr_fw *p = realloc(c->fw, (c->n + 1) * sizeof *p);
    if (!p)
        return FR_ENOMEM;
    c->fw = p;
    c->fw[c->n++] = *fw;
    return 0;
}

static void jcopy(json_t *o, const char *key, char *dst, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));
    snprintf(dst, n, "%s", v ? v : "");
}

static int load_ipswme(struct fr_catalog *c, const char *name, const char *data, size_t len,
                       char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(data, len, 0, &je);
    if (!doc)
        return fr_seterr(FR_EINVAL, err, errlen, "%s:%d: not JSON: %s", name, je.line, je.text);
    json_t *list = json_object_get(doc, "firmwares");
    const char *model = json_string_value(json_object_get(doc, "identifier"));
    int rc = json_is_array(list) ? 0
           : fr_seterr(FR_EINVAL, err, errlen, "%s: expected an ipsw.me device document with "
                                               "'firmwares'", name);
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f) {
        if (rc)
            break;
        struct fr_fw fw = { 0 };
        jcopy(f, "identifier", fw.product_type, sizeof fw.product_type);
        if (!fw.product_type[0] && model)
            snprintf(fw.product_type, sizeof fw.product_type, "%s", model);
        jcopy(f, "version", fw.version, sizeof fw.version);
        jcopy(f, "buildid", fw.build, sizeof fw.build);
        jcopy(f, "url", fw.url, sizeof fw.url);
        jcopy(f, "sha1sum", fw.sha1, sizeof fw.sha1);
        jcopy(f, "sha256sum", fw.sha256, sizeof fw.sha256);
        fw.size = (uint64_t)json_integer_value(json_object_get(f, "filesize"));
        json_t *sg = json_object_get(f, "signed");
        fw.signed_known = json_is_boolean(sg);
        fw.is_signed = json_is_true(sg);
        if (!fw.product_type[0] || !fw.build[0] || !fw.url[0])
            rc = fr_seterr(FR_EINVAL, err, errlen, "%s: firmwares[%zu]: expected identifier, "
                                                   "buildid and url", name, i);
        else
            rc = add(c, &fw);
    }
    json_decref(doc);
    return rc;
}

static void pcopy(plist_t dict, const char *key, char *dst, size_t n)
{
    plist_t node = plist_dict_get_item(dict, key);
    char *v = NULL;
    if (node && plist_get_node_type(node) == PLIST_STRING)
        plist_get_string_val(node, &v);
    snprintf(dst, n, "%s", v ? v : "");
    free(v);
}

/* Every Restore dict under .../MobileDeviceSoftwareVersions/<ProductType>/<build>/. */
static int walk_models(struct fr_catalog *c, plist_t models)
{
    plist_dict_iter it = NULL;
    plist_dict_new_iter(models, &it);
    char *model = NULL;
    plist_t builds = NULL;
    int rc = 0;
    for (plist_dict_next_item(models, it, &model, &builds); rc == 0 && model;
         plist_dict_next_item(models, it, &model, &builds)) {
        plist_dict_iter bit = NULL;
        char *build = NULL;
        plist_t entry = NULL;
        if (plist_get_node_type(builds) == PLIST_DICT)
            plist_dict_new_iter(builds, &bit);
        for (plist_dict_next_item(builds, bit, &build, &entry); bit && rc == 0 && build;
             plist_dict_next_item(builds, bit, &build, &entry)) {
            plist_t restore = plist_dict_get_item(entry, "Restore");
            if (restore && plist_get_node_type(restore) == PLIST_DICT) {
                struct fr_fw fw = { 0 };
                snprintf(fw.product_type, sizeof fw.product_type, "%s", model);
                pcopy(restore, "BuildVersion", fw.build, sizeof fw.build);
                pcopy(restore, "ProductVersion", fw.version, sizeof fw.version);
                pcopy(restore, "FirmwareURL", fw.url, sizeof fw.url);
                pcopy(restore, "FirmwareSHA1", fw.sha1, sizeof fw.sha1);
                if (fw.build[0] && fw.url[0])
                    rc = add(c, &fw);
            }
            free(build);
            build = NULL;
        }
        free(bit);
        free(model);
        model = NULL;
    }
    free(it);
    return rc;
}

static int load_apple(struct fr_catalog *c, const char *name, const char *data, size_t len,
                      char *err, size_t errlen)
{
    plist_t doc = NULL;
    plist_from_memory(data, (uint32_t)len, &doc);
    plist_t byver = doc ? plist_dict_get_item(doc, "MobileDeviceSoftwareVersionsByVersion") : NULL;
    if (!byver || plist_get_node_type(byver) != PLIST_DICT) {
        if (doc)
            plist_free(doc);
        return fr_seterr(FR_EINVAL, err, errlen, "%s: expected an ipsw.me JSON document or Apple's "
                                                 "version plist (MobileDeviceSoftwareVersionsByVersion)", name);
    }
    plist_dict_iter it = NULL;
    plist_dict_new_iter(byver, &it);
    char *key = NULL;
    plist_t v = NULL;
    int rc = 0;
    for (plist_dict_next_item(byver, it, &key, &v); rc == 0 && key; plist_dict_next_item(byver, it, &key, &v)) {
        plist_t models = plist_dict_get_item(v, "MobileDeviceSoftwareVersions");
        if (models && plist_get_node_type(models) == PLIST_DICT)
            rc = walk_models(c, models);
        free(key);
        key = NULL;
    }
    free(it);
    plist_free(doc);
    return rc;
}

int fr_catalog_load_data(struct fr_catalog *c, const char *name, const char *data, size_t len,
                         char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    if (i < len && data[i] == '{')
        return load_ipswme(c, name, data, len, err, errlen);
    return load_apple(c, name, data, len, err, errlen);
}

int fr_catalog_load(struct fr_catalog *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fr_seterr(FR_EIO, err, errlen, "cannot open catalog '%s': %s", path, strerror(errno));
    char *buf = malloc(CATALOG_MAX);
    size_t n = buf ? fread(buf, 1, CATALOG_MAX, fp) : 0;
    fclose(fp);
    if (!buf)
        return FR_ENOMEM;
    int rc = fr_catalog_load_data(c, path, buf, n, err, errlen);
    free(buf);
    return rc;
}

int fr_catalog_resolve(const struct fr_catalog *c, const char *product_type, const char *selector,
                       struct fr_fw *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->product_type, sizeof out->product_type, "%s", product_type);
    if (fr_is_url(selector) || access(selector, R_OK) == 0) {
        snprintf(out->url, sizeof out->url, "%s", selector);
        for (size_t i = 0; i < c->n; i++) /* what the catalog knows about that URL */
            if (!strcmp(c->fw[i].url, selector))
                *out = c->fw[i];
        return 0;
    }
    int latest = !strcmp(selector, "latest");
    const struct fr_fw *best = NULL;
    /* "latest": the newest known to be signed; failing that, the newest whose signing
     * the catalog does not say (Apple's list only carries builds it serves) */
    for (int pass = 0; pass < (latest ? 2 : 1) && !best; pass++)
        for (size_t i = 0; i < c->n; i++) {
            const struct fr_fw *f = &c->fw[i];
            int wanted = latest ? (pass == 0 ? f->signed_known && f->is_signed : !f->signed_known)
                                : !strcmp(f->version, selector) || !strcmp(f->build, selector);
            if (wanted && !strcmp(f->product_type, product_type) &&
                (!best || fr_version_cmp(f->version, best->version) > 0))
                best = f;
        }
    if (!best && latest)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "no signed build for %s in the catalog",
                         product_type);
    if (!best)
        return fr_seterr(FR_ENOTFOUND, err, errlen, "no build '%s' for %s in the catalog", selector,
                         product_type);
    *out = *best;
    return 0;
}

int fr_catalog_is_selector(const char *s)
{
    if (!strcmp(s, "latest"))
        return 1;
    size_t i = 0, digits = 0, dots = 0;
    for (; s[i] && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'); i++)
        s[i] == '.' ? dots++ : digits++;
    if (!s[i]) /* a version: digits with at least one dot, not at either end */
        return dots > 0 && digits > 0 && s[0] != '.' && s[i - 1] != '.' && !strstr(s, "..");
    /* a build: 1-2 digits, one capital, 1-4 digits, an optional lower-case letter */
    if (dots || digits < 1 || digits > 2 || s[i] < 'A' || s[i] > 'Z')
        return 0;
    size_t j = i + 1, n = 0;
    while (s[j] >= '0' && s[j] <= '9')
        j++, n++;
    if (s[j] >= 'a' && s[j] <= 'z')
        j++;
    return n >= 1 && n <= 4 && s[j] == '\0';
}

int fr_catalog_fresh(const char *path, int64_t max_age_s)
{
    struct stat st;
    return stat(path, &st) == 0 && (int64_t)(time(NULL) - st.st_mtime) < max_age_s;
}

void fr_catalog_release(struct fr_catalog *c)
{
    free(c->fw);
    c->fw = NULL;
    c->n = 0;
}

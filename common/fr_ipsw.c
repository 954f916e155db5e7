/* fr_ipsw — BuildManifest reading and identity choice; see fr_ipsw.h. */
#include "fr_ipsw.h"
#include "fr_err.h"

#include <plist/plist.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

#define MANIFEST_MAX (16 * 1024 * 1024)

static int read_manifest(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        fr_seterr(FR_EIO, err, errlen, "cannot open '%s' as an IPSW (zip): %s", path,
                  zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return FR_EIO;
    }
    zip_stat_t st;
    zip_file_t *f = NULL;
    int rc = 0;
    if (zip_stat(z, "BuildManifest.plist", 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE))
        rc = fr_seterr(FR_EINVAL, err, errlen, "'%s' has no BuildManifest.plist", path);
    else if (st.size > MANIFEST_MAX)
        rc = fr_seterr(FR_EINVAL, err, errlen, "'%s': BuildManifest.plist is too large", path);
    else if (!(f = zip_fopen(z, "BuildManifest.plist", 0)))
        rc = fr_seterr(FR_EIO, err, errlen, "'%s': cannot read BuildManifest.plist", path);
    if (rc == 0) {
        *data = malloc(st.size + 1);
        zip_int64_t n = *data ? zip_fread(f, *data, st.size) : -1;
        if (n != (zip_int64_t)st.size) {
            free(*data);
            *data = NULL;
            rc = fr_seterr(FR_EIO, err, errlen, "'%s': BuildManifest.plist is truncated", path);
        } else {
            *len = (size_t)st.size;
        }
    }
    if (f)
        zip_fclose(f);
    zip_close(z);
    return rc;
}

/* The string's bytes up to a NUL, cut to fit. plist_get_string_val() asserts (aborts the
 * process) on a string holding a NUL, which a binary plist can carry. */
static void copy_string(plist_t node, char *dst, size_t n)
{
    uint64_t len = 0;
    const char *v = node && plist_get_node_type(node) == PLIST_STRING
                  ? plist_get_string_ptr(node, &len) : NULL;
    size_t k = 0;
    while (v && k < len && k + 1 < n && v[k])
        k++;
    if (n)
        memcpy(dst, v ? v : "", k), dst[k] = '\0';
}

static uint32_t hex_of(plist_t node)
{
    char buf[32];
    copy_string(node, buf, sizeof buf);
    return (uint32_t)strtoul(buf, NULL, 16);
}

static void read_identity(plist_t id, struct fr_ipsw_identity *out)
{
    if (!id || plist_get_node_type(id) != PLIST_DICT)
        return; /* not an identity: it stays empty and matches nothing */
    plist_t info = plist_dict_get_item(id, "Info");
    if (info && plist_get_node_type(info) != PLIST_DICT)
        info = NULL;
    copy_string(plist_dict_get_item(info, "DeviceClass"), out->device_class, sizeof out->device_class);
    copy_string(plist_dict_get_item(info, "Variant"), out->variant, sizeof out->variant);
    copy_string(plist_dict_get_item(info, "RestoreBehavior"), out->behavior, sizeof out->behavior);
    out->chip_id = hex_of(plist_dict_get_item(id, "ApChipID"));
    out->board_id = hex_of(plist_dict_get_item(id, "ApBoardID"));
}

static int parse_manifest(plist_t m, const char *path, struct fr_ipsw *out, char *err, size_t errlen)
{
    if (!m || plist_get_node_type(m) != PLIST_DICT)
        return fr_seterr(FR_EINVAL, err, errlen, "'%s': BuildManifest.plist is not a dictionary", path);
    copy_string(plist_dict_get_item(m, "ProductVersion"), out->version, sizeof out->version);
    copy_string(plist_dict_get_item(m, "ProductBuildVersion"), out->build, sizeof out->build);
    plist_t types = plist_dict_get_item(m, "SupportedProductTypes");
    plist_t ids = plist_dict_get_item(m, "BuildIdentities");
    if (!types || plist_get_node_type(types) != PLIST_ARRAY || !ids ||
        plist_get_node_type(ids) != PLIST_ARRAY)
        return fr_seterr(FR_EINVAL, err, errlen, "'%s': BuildManifest.plist lacks "
                                                 "SupportedProductTypes or BuildIdentities", path);
    for (uint32_t i = 0; i < plist_array_get_size(types) && out->nproduct_types < FR_IPSW_MAX_TYPES; i++)
        copy_string(plist_array_get_item(types, i), out->product_types[out->nproduct_types++],
                    sizeof out->product_types[0]);
    for (uint32_t i = 0; i < plist_array_get_size(ids) && out->nidentities < FR_IPSW_MAX_IDENTITIES; i++)
        read_identity(plist_array_get_item(ids, i), &out->identities[out->nidentities++]);
    return 0;
}

int fr_ipsw_inspect(const char *path, struct fr_ipsw *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *data = NULL;
    size_t len = 0;
    int rc = read_manifest(path, &data, &len, err, errlen);
    if (rc < 0)
        return rc;
    rc = fr_ipsw_parse_manifest(data, len, path, out, err, errlen);
    free(data);
    return rc;
}

int fr_ipsw_parse_manifest(const char *data, size_t len, const char *path, struct fr_ipsw *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > UINT32_MAX)
        return fr_seterr(FR_EINVAL, err, errlen, "'%s': BuildManifest.plist is too large", path);
    plist_t m = NULL;
    plist_from_memory(data, (uint32_t)len, &m);
    int rc = parse_manifest(m, path, out, err, errlen);
    if (m)
        plist_free(m);
    return rc;
}

int fr_ipsw_supports(const struct fr_ipsw *ipsw, const char *product_type)
{
    for (size_t i = 0; i < ipsw->nproduct_types; i++)
        if (strcmp(ipsw->product_types[i], product_type) == 0)
            return 1;
    return 0;
}

const struct fr_ipsw_identity *fr_ipsw_identity_for(const struct fr_ipsw *ipsw,
                                                    const char *device_class, int erase,
                                                    char *err, size_t errlen)
{
    const char *variant = erase ? "Customer Erase Install (IPSW)" : "Customer Upgrade Install (IPSW)";
    const char *behavior = erase ? "Erase" : "Update";
    const struct fr_ipsw_identity *by_behavior = NULL;
    for (size_t i = 0; i < ipsw->nidentities; i++) {
        const struct fr_ipsw_identity *id = &ipsw->identities[i];
        if (strcasecmp(id->device_class, device_class) != 0 || strstr(id->variant, "Research"))
            continue;
        if (strcmp(id->variant, variant) == 0)
            return id;
        if (!by_behavior && strcmp(id->behavior, behavior) == 0)
            by_behavior = id;
    }
    if (!by_behavior)
        fr_seterr(FR_ENOTFOUND, err, errlen, "Unable to find a matching build identity: build %s has "
                  "no %s identity for '%s'", ipsw->build, behavior, device_class);
    return by_behavior;
}

/* fr_catalog — which IPSW a job means: firmware lists from ipsw.me's v4 JSON and
 * Apple's version plist (fetched, or files of an offline site), merged, and a
 * job's firmware selector resolved for a model: "latest" (newest signed),
 * a version ("18.2"), a build ("22C152"), or an explicit URL or local file.
 *
 * The catalog owns its entries; fr_catalog_release frees them. */
#ifndef FR_CATALOG_H
#define FR_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct fr_fw {
    char product_type[24], version[24], build[24];
    char url[1024];
    char sha1[41], sha256[65];
    uint64_t size;
    int signed_known, is_signed;
};

struct fr_catalog {
    struct fr_fw *fw;
    size_t n;
};

/* Adds the firmwares of one file: ipsw.me JSON ('{' first) or Apple's plist. */
int fr_catalog_load(struct fr_catalog *c, const char *path, char *err, size_t errlen);
/* The same from memory (what a download gives); name is used in errors. */
int fr_catalog_load_data(struct fr_catalog *c, const char *name, const char *data, size_t len,
                         char *err, size_t errlen);

/* Resolves selector for product_type. URLs and existing local files resolve to
 * themselves (out is filled with what is known). Returns 0 or FR_ENOTFOUND with
 * a reason ("no signed build for iPhone12,1 in the catalog"). */
int fr_catalog_resolve(const struct fr_catalog *c, const char *product_type, const char *selector,
                       struct fr_fw *out, char *err, size_t errlen);

/* Whether s names firmware through a catalog: "latest", a version ("18.2",
 * "17.7.2") or a build ("22C152", "21H216", "20G81a") -- not a file or URL. */
int fr_catalog_is_selector(const char *s);

/* Dotted version order: -1, 0, 1 ("17.7.2" < "18.2" < "18.10"). */
int fr_version_cmp(const char *a, const char *b);

/* Whether a cached catalog file is younger than max_age_s. */
int fr_catalog_fresh(const char *path, int64_t max_age_s);

void fr_catalog_release(struct fr_catalog *c);

#endif

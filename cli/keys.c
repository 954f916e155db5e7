/* keys — the `flashrack keys` verbs: keypairs and the controller's allowlist files. */
#include "keys.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_keys.h"
#include "fr_sign.h"
#include "fr_text.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

struct keys_args {
    const char *dir, *agent, *operator_name, *role, *file;
    int force, json, record;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "flashrack keys: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage:\n%s", KEYS_USAGE);
    return EXIT_USAGE;
}

static int parse(int argc, char **argv, struct keys_args *k)
{
    static const struct option opts[] = {
        { "keys-dir", required_argument, NULL, 'd' }, { "agent", required_argument, NULL, 'a' },
        { "operator", required_argument, NULL, 'p' }, { "role", required_argument, NULL, 'r' },
        { "force", no_argument, NULL, 'f' },          { "output", required_argument, NULL, 'o' },
        { "record", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
    };
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': k->dir = optarg; break;
        case 'a': k->agent = optarg; break;
        case 'p': k->operator_name = optarg; break;
        case 'r': k->role = optarg; break;
        case 'f': k->force = 1; break;
        case 'R': k->record = 1; break;
        case 'o':
            if (strcmp(optarg, "json") && strcmp(optarg, "table"))
                return usage_error("-o: expected 'table' or 'json', got '%s'", optarg);
            k->json = strcmp(optarg, "json") == 0;
            break;
        case 'h': printf("usage:\n%s", KEYS_USAGE); exit(EXIT_OK);
        default: return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    return 0;
}

/* ---- gen ----------------------------------------------------------------------------- */

/* The controller's record-signing key (Ed25519, records.h), instead of its first start. */
static int keys_gen_record(const struct keys_args *k, const char *pub)
{
    char err[1024];
    if (!k->force && access(pub, F_OK) == 0) {
        fprintf(stderr, "flashrack keys gen: '%s' exists: not replaced (--force replaces it)\n", pub);
        return EXIT_FAILED;
    }
    if (fr_sign_key_generate(k->file, pub, k->force, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack keys gen: %s\n", err);
        return EXIT_FAILED;
    }
    printf("%s (record-signing key, 0600) and %s (its public key) written\n", k->file, pub);
    return EXIT_OK;
}

static int keys_gen(const struct keys_args *k)
{
    char pub[4096], err[1024];
    if (fr_fmt(pub, sizeof pub, "%s.pub", k->file) < 0) /* cut, it would name another file */
        return usage_error("FILE: '%s' and its '.pub' are longer than 4095 bytes", k->file);
    if (k->record)
        return keys_gen_record(k, pub);
    if (!k->force && (access(k->file, F_OK) == 0 || access(pub, F_OK) == 0)) {
        fprintf(stderr, "flashrack keys gen: '%s' or '%s' exists: not replaced (--force replaces "
                        "it; the peers that trust the old key will refuse the new one)\n",
                k->file, pub);
        return EXIT_FAILED;
    }
    struct fr_key key;
    if (fr_key_generate(&key) < 0) {
        fprintf(stderr, "flashrack keys gen: this libzmq has no CURVE\n");
        return EXIT_FAILED;
    }
    int rc = fr_key_write(k->file, &key, 1, "flashrack CURVE keypair: keep this file private",
                          0600, err, sizeof err);
    if (rc == 0)
        rc = fr_key_write(pub, &key, 0, "flashrack CURVE public key", 0644, err, sizeof err);
    memset(&key, 0, sizeof key);
    if (rc < 0) {
        fprintf(stderr, "flashrack keys gen: %s\n", err);
        return EXIT_FAILED;
    }
    printf("%s (keypair, 0600) and %s (public key) written\n", k->file, pub);
    return EXIT_OK;
}

/* ---- the allowlist ------------------------------------------------------------------ */

/* Which entry a (kind, name) pair is: "agents"/"operators", and its path. */
static int entry_path(const struct keys_args *k, const char **kind, const char **name, char *path,
                      size_t len)
{
    if (!k->agent == !k->operator_name)
        return usage_error("expected one of --agent ID or --operator NAME%s", "");
    *kind = k->agent ? "agents" : "operators";
    *name = k->agent ? k->agent : k->operator_name;
    if (!fr_key_name_ok(*name))
        return usage_error("'%s': expected 1-63 letters, digits, '.', '_' or '-' (not starting "
                           "with '.')", *name);
    if (fr_fmt(path, len, "%s/%s/%s.pub", k->dir, *kind, *name) < 0)
        return usage_error("-d: '%s' is too long for a key's path (at most 4095 bytes in all)", k->dir);
    return 0;
}

struct dup_search {
    const char *key, *skip_path;
    char found[4096];
};

static int on_dup_entry(void *arg, const char *kind, const char *name, const char *path)
{
    struct dup_search *d = arg;
    struct fr_key k;
    if (strcmp(path, d->skip_path) == 0 || fr_key_read(path, &k, NULL, 0) < 0 ||
        strcmp(k.public_key, d->key) != 0)
        return 0;
    snprintf(d->found, sizeof d->found, "%s", path);
    return 1;
}

static int keys_authorize(struct keys_args *k)
{
    const char *kind, *name;
    char path[4096], err[1024], text[256];
    int rc = entry_path(k, &kind, &name, path, sizeof path);
    if (rc)
        return rc;
    if (k->agent && k->role)
        return usage_error("--role is for operators; an agent key is bound to its id%s", "");
    if (k->operator_name && (!k->role || (strcmp(k->role, "operator") && strcmp(k->role, "viewer"))))
        return usage_error("--role: expected operator or viewer, got '%s'", k->role ? k->role : "");
    struct fr_key key;
    if (fr_key_read(k->file, &key, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack keys authorize: %s\n", err);
        return EXIT_FAILED;
    }
    struct dup_search d = { key.public_key, path, "" };
    if (fr_keys_each(k->dir, on_dup_entry, &d)) {
        fprintf(stderr, "flashrack keys authorize: this key is already authorized in '%s': one key, "
                        "one peer (revoke that one first)\n", d.found);
        return EXIT_FAILED;
    }
    struct fr_key entry = { { 0 }, { 0 }, { 0 } };
    memcpy(entry.public_key, key.public_key, sizeof entry.public_key);
    snprintf(entry.role, sizeof entry.role, "%s", k->role ? k->role : "");
    snprintf(text, sizeof text, "flashrack: %s '%s' may connect with this key",
             k->agent ? "agent" : "operator", name);
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", k->dir, kind);
    mkdir(k->dir, 0755);
    mkdir(sub, 0755);
    if (fr_key_write(path, &entry, 0, text, 0644, err, sizeof err) < 0) {
        fprintf(stderr, "flashrack keys authorize: %s\n", err);
        return EXIT_FAILED;
    }
    printf("%s '%s' authorized%s%s (%s)\n", k->agent ? "agent" : "operator", name,
           k->role ? " as " : "", k->role ? k->role : "", path);
    return EXIT_OK;
}

static int keys_revoke(struct keys_args *k)
{
    const char *kind, *name;
    char path[4096];
    int rc = entry_path(k, &kind, &name, path, sizeof path);
    if (rc)
        return rc;
    if (unlink(path) < 0) {
        fprintf(stderr, "flashrack keys revoke: cannot remove '%s': %s\n", path,
                errno == ENOENT ? "no such key is authorized" : strerror(errno));
        return EXIT_FAILED;
    }
    printf("%s '%s' revoked: the controller refuses it from its next message on\n",
           k->agent ? "agent" : "operator", name);
    return EXIT_OK;
}

static int on_list_entry(void *arg, const char *kind, const char *name, const char *path)
{
    json_t *doc = arg;
    struct fr_key k;
    char err[1024];
    if (fr_key_read(path, &k, err, sizeof err) < 0) {
        json_array_append_new(json_object_get(doc, "errors"), json_string(err));
        return 0;
    }
    json_array_append_new(json_object_get(doc, "keys"),
                          json_pack("{s:s, s:s, s:s, s:s}", "kind", kind[0] == 'a' ? "agent" : "operator",
                                    "name", name, "role", kind[0] == 'a' ? "agent" : k.role,
                                    "key", k.public_key));
    return 0;
}

static int keys_list(const struct keys_args *k)
{
    json_t *doc = json_pack("{s:s, s:[], s:[]}", "keys_dir", k->dir, "keys", "errors");
    fr_keys_each(k->dir, on_list_entry, doc);
    size_t i;
    json_t *row;
    if (k->json) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text ? text : "{}");
        free(text);
    } else {
        printf("%-9s %-20s %-9s %s\n", "KIND", "NAME", "ROLE", "PUBLIC KEY");
        json_array_foreach(json_object_get(doc, "keys"), i, row)
            printf("%-9s %-20s %-9s %s\n", json_string_value(json_object_get(row, "kind")),
                   json_string_value(json_object_get(row, "name")),
                   json_string_value(json_object_get(row, "role")),
                   json_string_value(json_object_get(row, "key")));
        json_array_foreach(json_object_get(doc, "errors"), i, row)
            fprintf(stderr, "flashrack keys list: %s\n", json_string_value(row));
    }
    int failed = json_array_size(json_object_get(doc, "errors")) > 0;
    json_decref(doc);
    return failed ? EXIT_FAILED : EXIT_OK;
}

int keys_run(int argc, char **argv, int json)
{
    struct keys_args k = { .json = json };
    const char *env = getenv("FLASHRACK_KEYS_DIR");
    k.dir = env && *env ? env : "keys";
    int rc = parse(argc, argv, &k);
    if (rc)
        return rc;
    if (strlen(k.dir) > FR_KEYS_DIR_MAX) /* its entries' paths would be cut: other files */
        return fprintf(stderr, "flashrack keys: -d (or $FLASHRACK_KEYS_DIR): expected a directory "
                               "path of at most %d bytes, got %zu\n", FR_KEYS_DIR_MAX, strlen(k.dir)),
               EXIT_USAGE;
    const char *sub = optind < argc ? argv[optind++] : "";
    k.file = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    int needs_file = !strcmp(sub, "gen") || !strcmp(sub, "authorize");
    if (needs_file != (k.file != NULL))
        return usage_error(needs_file ? "%s: expected a key FILE" : "%s: expected no FILE", sub);
    if (!strcmp(sub, "gen"))
        return keys_gen(&k);
    if (!strcmp(sub, "authorize"))
        return keys_authorize(&k);
    if (!strcmp(sub, "revoke"))
        return keys_revoke(&k);
    if (!strcmp(sub, "list"))
        return keys_list(&k);
    return usage_error("expected gen, authorize, revoke or list, got '%s'", sub);
}

/* fr_keys — CURVE key files (read, generate, atomic write) and client sockets. */
#include "fr_keys.h"
#include "fr_err.h"
#include "fr_text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int fr_key_is_z85(const char *s)
{
    uint8_t raw[32];
    return s && strlen(s) == FR_KEY_Z85_LEN && zmq_z85_decode(raw, s) != NULL;
}

int fr_key_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < 64 && name[0] != '.' &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int fr_key_generate(struct fr_key *k)
{
    memset(k, 0, sizeof *k);
    return zmq_curve_keypair(k->public_key, k->secret_key) == 0 ? 0 : FR_ESYS;
}

/* One "name = value" line of a key file into k. A Z85 key may contain '#' and ';'
 * (even as its first character), so comments are whole lines only and the project's
 * INI reader, which also cuts comments after whitespace, is not used here. */
static int key_line(const char *path, int lineno, char *text, struct fr_key *k, char *err,
                    size_t errlen)
{
    text[strcspn(text, "\r\n")] = '\0';
    char *s = text + strspn(text, " \t");
    if (!*s || *s == '#' || *s == ';')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s:%d: expected 'name = value' or a comment",
                         path, lineno);
    char *end = eq;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    char *value = eq + 1 + strspn(eq + 1, " \t");
    for (char *t = value + strlen(value); t > value && (t[-1] == ' ' || t[-1] == '\t');)
        *--t = '\0';
    int pub = strcmp(s, "public") == 0, sec = strcmp(s, "secret") == 0;
    if ((pub || sec) && !fr_key_is_z85(value))
        return fr_seterr(FR_ECONFIG, err, errlen, "%s:%d: %s: expected %d Z85 characters (a CURVE "
                         "key), got '%.48s'", path, lineno, s, FR_KEY_Z85_LEN, value);
    if (pub)
        memcpy(k->public_key, value, FR_KEY_Z85_LEN + 1);
    else if (sec)
        memcpy(k->secret_key, value, FR_KEY_Z85_LEN + 1);
    else if (strcmp(s, "role") == 0 && strlen(value) < sizeof k->role)
        memcpy(k->role, value, strlen(value) + 1);
    else
        return fr_seterr(FR_ECONFIG, err, errlen, "%s:%d: expected public, secret or role, got '%s'",
                         path, lineno, s);
    return 0;
}

int fr_key_read(const char *path, struct fr_key *k, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fr_seterr(FR_EIO, err, errlen, "cannot open '%s': %s", path, strerror(errno));
    char text[512];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(text, sizeof text, fp))
        rc = key_line(path, ++lineno, text, k, err, errlen);
    fclose(fp);
    if (rc < 0)
        return FR_ECONFIG;
    if (!*k->public_key)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: expected a 'public = ...' line", path);
    char derived[FR_KEY_Z85_LEN + 1];
    if (*k->secret_key && (zmq_curve_public(derived, k->secret_key) < 0 ||
                           strcmp(derived, k->public_key) != 0))
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: the secret key does not belong to the "
                         "public key", path);
    return 0;
}

int fr_key_read_pair(const char *path, struct fr_key *k, char *err, size_t errlen)
{
    int rc = fr_key_read(path, k, err, errlen);
    if (rc == 0 && !*k->secret_key)
        return fr_seterr(FR_ECONFIG, err, errlen, "%s: expected a keypair ('secret = ...'), "
                         "this is a public key", path);
    return rc;
}

int fr_key_write(const char *path, const struct fr_key *k, int with_secret, const char *comment,
                 mode_t mode, char *err, size_t errlen)
{
    char text[512];
    int n = snprintf(text, sizeof text, "%s%s%spublic = %s\n%s%s%s%s%s%s",
                     comment ? "# " : "", comment ? comment : "", comment ? "\n" : "", k->public_key,
                     with_secret ? "secret = " : "", with_secret ? k->secret_key : "",
                     with_secret ? "\n" : "", *k->role ? "role = " : "", k->role,
                     *k->role ? "\n" : "");
    if (n < 0 || (size_t)n >= sizeof text)
        return fr_seterr(FR_EIO, err, errlen, "'%s': the key text is too long", path);
    return fr_file_write_atomic(path, text, (size_t)n, mode, err, errlen);
}

static int fsync_dir_of(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fr_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                         size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp)
        return fr_seterr(FR_EIO, err, errlen, "'%s': path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fr_seterr(FR_EIO, err, errlen, "cannot write '%s': %s", path, strerror(errno));
    int ok = fchmod(fd, mode) == 0 && write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        fsync_dir_of(path); /* the rename is durable; failing here loses nothing already read */
        return 0;
    }
    saved = ok ? errno : saved;
    unlink(tmp);
    return fr_seterr(FR_EIO, err, errlen, "cannot write '%s': %s", path, strerror(saved));
}

int fr_keys_each(const char *dir, fr_key_entry_cb cb, void *arg)
{
    static const char *const kinds[2] = { "agents", "operators" };
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        char sub[4096];
        if (fr_fmt(sub, sizeof sub, "%s/%s", dir, kinds[i]) < 0)
            return FR_ETOOBIG; /* a cut DIR would be another directory's allowlist */
        DIR *d = opendir(sub);
        struct dirent *e;
        while (d && rc == 0 && (e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len <= 4 || strcmp(e->d_name + len - 4, ".pub") != 0)
                continue;
            char name[256], path[4096];
            snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
            if (fr_fmt(path, sizeof path, "%s/%s", sub, e->d_name) < 0)
                continue; /* over PATH_MAX: no open() reaches it, and a cut path is another file */
            rc = cb(arg, kinds[i], name, path);
        }
        if (d)
            closedir(d);
    }
    return rc;
}

/* $ENV, else ~/.config/flashrack/NAME; "" when neither applies. FR_ETOOBIG when the path
 * does not fit: cut, it would be another file's. */
static int client_path(const char *env, const char *name, char *out, size_t outlen)
{
    const char *v = getenv(env), *home = getenv("HOME");
    *out = '\0';
    if (v && *v)
        return fr_fmt(out, outlen, "%s", v);
    if (home && *home)
        return fr_fmt(out, outlen, "%s/.config/flashrack/%s", home, name);
    return 0;
}

int fr_key_find_client(struct fr_key *mine, struct fr_key *controller, char *err, size_t errlen)
{
    char kpath[4096], cpath[4096];
    if (client_path("FLASHRACK_KEY", "key", kpath, sizeof kpath) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "$FLASHRACK_KEY (or $HOME/.config/flashrack/key): "
                         "expected a path of at most %zu bytes", sizeof kpath - 1);
    if (client_path("FLASHRACK_CONTROLLER_KEY", "controller.pub", cpath, sizeof cpath) < 0)
        return fr_seterr(FR_ECONFIG, err, errlen, "$FLASHRACK_CONTROLLER_KEY (or $HOME/.config/flashrack/"
                         "controller.pub): expected a path of at most %zu bytes", sizeof cpath - 1);
    int have_k = *kpath && access(kpath, F_OK) == 0, have_c = *cpath && access(cpath, F_OK) == 0;
    const char *ek = getenv("FLASHRACK_KEY"), *ec = getenv("FLASHRACK_CONTROLLER_KEY");
    if (!have_k && !have_c && !(ek && *ek) && !(ec && *ec))
        return FR_ENOTFOUND;
    if (!have_k)
        return fr_seterr(FR_ECONFIG, err, errlen, "no key at '%s' ($FLASHRACK_KEY): make one with "
                         "'flashrack keys gen FILE' and have it authorized", kpath);
    if (!have_c)
        return fr_seterr(FR_ECONFIG, err, errlen, "no controller public key at '%s' "
                         "($FLASHRACK_CONTROLLER_KEY): copy the controller's .pub file there", cpath);
    if (fr_key_read_pair(kpath, mine, err, errlen) < 0 ||
        fr_key_read(cpath, controller, err, errlen) < 0)
        return FR_ECONFIG;
    return 0;
}

int fr_key_curve_client(void *sock, const struct fr_key *mine, const char *server_public)
{
    int rc = 0;
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, FR_KEY_Z85_LEN);
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, mine->public_key, FR_KEY_Z85_LEN);
    rc |= zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, mine->secret_key, FR_KEY_Z85_LEN);
    return rc < 0 ? FR_ESYS : 0;
}

int fr_key_setup_client(void *sock, char *err, size_t errlen)
{
    struct fr_key mine, controller;
    int rc = fr_key_find_client(&mine, &controller, err, errlen);
    if (rc == FR_ENOTFOUND)
        return 0;
    if (rc == 0 && fr_key_curve_client(sock, &mine, controller.public_key) < 0)
        rc = fr_seterr(FR_ECONFIG, err, errlen, "cannot use CURVE: %s", zmq_strerror(zmq_errno()));
    memset(&mine, 0, sizeof mine);
    return rc;
}

/* fr_keys — CURVE key files, written atomically, and their use on client sockets.
 *
 * A key file is a few "name = value" lines (whole-line comments start with ; or #):
 *   public = <40 Z85 characters>      always
 *   secret = <40 Z85 characters>      a keypair file (mode 0600)
 *   role = operator|viewer            an operator's entry in the controller's allowlist
 * `flashrack keys gen FILE` writes the keypair FILE (0600) and FILE.pub (public only,
 * 0644). Errors name the file and line: "op.key:2: public: expected 40 Z85 characters".
 *
 * Every write goes to a temporary file in the same directory, is fsynced and
 * renamed over the target, and the directory is fsynced: a reader sees the old
 * file or the new one, never part of one; a failed write leaves no file behind.
 *
 * Clients (the CLI, the simulator's operator) find their keypair in $FLASHRACK_KEY,
 * else ~/.config/flashrack/key, and the controller's public key in
 * $FLASHRACK_CONTROLLER_KEY, else ~/.config/flashrack/controller.pub. */
#ifndef FR_KEYS_H
#define FR_KEYS_H

#include <stddef.h>
#include <sys/types.h>

#define FR_KEY_Z85_LEN 40

struct fr_key {
    char public_key[FR_KEY_Z85_LEN + 1];
    char secret_key[FR_KEY_Z85_LEN + 1]; /* "" in a public file */
    char role[16];                       /* "" unless the file says */
};

/* 1 when s is exactly 40 Z85 characters that decode to 32 bytes. */
int fr_key_is_z85(const char *s);

/* 1 when name can be an agent id or an operator name in the allowlist (and a file
 * name): 1-63 of A-Z a-z 0-9 . _ -, not starting with '.'. */
int fr_key_name_ok(const char *name);

/* A fresh keypair (zmq_curve_keypair). Returns 0 or FR_ESYS (no CURVE in libzmq). */
int fr_key_generate(struct fr_key *k);

/* Reads a key file; a secret, when present, must belong to the public key.
 * Returns 0, or FR_ECONFIG / FR_EIO with "FILE:LINE: ..." or "cannot open 'FILE': ..." in err. */
int fr_key_read(const char *path, struct fr_key *k, char *err, size_t errlen);

/* Reads a keypair file: like fr_key_read, and a secret is required. */
int fr_key_read_pair(const char *path, struct fr_key *k, char *err, size_t errlen);

/* Writes k to path atomically with mode; with_secret 0 leaves the secret out.
 * comment (may be NULL) becomes a first "# ..." line. Returns 0 or FR_EIO. */
int fr_key_write(const char *path, const struct fr_key *k, int with_secret, const char *comment,
                 mode_t mode, char *err, size_t errlen);

/* temp + fsync + rename + fsync of the directory. Returns 0 or FR_EIO (nothing left behind). */
int fr_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                         size_t errlen);

/* The controller's allowlist directory (zap.h): calls cb for every NAME.pub file in
 * DIR/agents and DIR/operators, kind being "agents" or "operators", name the file name
 * without ".pub". Other files (temporary files of an atomic write) are skipped; a
 * missing directory is empty. Stops at the first non-zero cb and returns it, else 0;
 * FR_ETOOBIG when DIR is longer than FR_KEYS_DIR_MAX. */
/* The longest keys directory: "DIR/operators/NAME.pub" (NAME up to 63) fits in PATH_MAX. */
#define FR_KEYS_DIR_MAX (4095 - 11 - 63 - 4)
typedef int (*fr_key_entry_cb)(void *arg, const char *kind, const char *name, const char *path);
int fr_keys_each(const char *dir, fr_key_entry_cb cb, void *arg);

/* The client's keypair and the controller's public key, from the environment or
 * ~/.config/flashrack/. Returns 0 (both found), FR_ENOTFOUND (neither is there: a plain
 * connection, for a controller in insecure mode), or FR_ECONFIG with the reason. */
int fr_key_find_client(struct fr_key *mine, struct fr_key *controller, char *err, size_t errlen);

/* Makes sock a CURVE client of the server with that public key. Returns 0 or FR_ESYS. */
int fr_key_curve_client(void *sock, const struct fr_key *mine, const char *server_public);

/* Sets up a client socket from fr_key_find_client(): CURVE when keys were found, plain
 * when none are there. Returns 0 or FR_ECONFIG (reason in err). */
int fr_key_setup_client(void *sock, char *err, size_t errlen);

#endif

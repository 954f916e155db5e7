/* zap — who may talk to the controller: its CURVE keypair, the allowlists, the ZAP
 * handler that applies them at every handshake, and the check of every message.
 *
 * The allowlists live in the keys directory ([security] keys_dir), like SSH's
 * authorized_keys:
 *   KEYS_DIR/controller.key           the controller's keypair (0600)
 *   KEYS_DIR/agents/<agent-id>.pub    an agent's public key, bound to that agent id
 *   KEYS_DIR/operators/<name>.pub     an operator's public key and "role = operator|viewer"
 * `flashrack keys authorize|revoke` edits them with atomic writes; the controller
 * reloads them when the two directories change (uv_fs_event) and on SIGHUP (a reload
 * hook of the service, fr_service.h).
 *
 * The ZAP handler is a REP socket on inproc://zeromq.zap.01 in the controller's
 * context, bound before any ROUTER binds (libzmq 4.3.4 accepts any client key under
 * CURVE when no handler is bound), and driven by the loop like the other sockets.
 * A handshake on the agents ROUTER (ZAP domain "agents") is accepted for an agent
 * key, one on the clients ROUTER ("clients") for an operator key; the reply carries
 * the peer's name as the User-Id and its key and role as metadata ("Key", "Role"),
 * so each message can be checked against the allowlist as it is *now*: a revoked
 * peer's open connection is refused from the next message on.
 *
 * A socket monitor on each ROUTER counts the handshakes that fail before ZAP: a peer
 * with no key at all, or one that speaks no ZMTP.
 *
 * Loop thread only. The struct is owned by the controller (zap_new/zap_destroy). */
#ifndef ZAP_H
#define ZAP_H

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "fr_keys.h"
#include "fr_zsock.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN_AGENTS "agents"
#define ZAP_DOMAIN_CLIENTS "clients"

enum zap_role { ZAP_NONE = 0, ZAP_AGENT, ZAP_VIEWER, ZAP_OPERATOR };

struct zap_peer {
    char name[64];                /* agent id or operator name */
    char key[FR_KEY_Z85_LEN + 1]; /* public key, Z85 */
    enum zap_role role;
};

typedef void (*zap_reload_cb)(void *arg);

struct zap {
    char dir[512];
    struct fr_key server;         /* the controller's keypair */
    struct zap_peer *peers;
    size_t npeers;
    void *sock;                   /* the REP socket (owned) */
    fr_zsock zs;
    uv_loop_t *loop;
    uv_fs_event_t watch[2];       /* agents/, operators/ */
    uv_timer_t settle;            /* one reload for a burst of changes */
    zap_reload_cb on_reload;
    void *arg;
    uint64_t handshakes_ok, handshakes_refused;
    /* from the ROUTERs' socket monitors (zap_watch): handshakes that never reached the
     * handler — a peer without CURVE (no key) and any other broken handshake */
    uint64_t handshakes_no_key, handshakes_failed;
    struct zap_monitor {
        void *sock;               /* PAIR on the ROUTER's monitor endpoint (owned) */
        fr_zsock zs;
        struct zap *z;
        char name[16];            /* the socket's ZAP domain: "agents" or "clients" */
    } mon[2];
    int nmon;
    uint64_t refused_agent_msgs;  /* agents' messages: wrong or revoked identity */
    uint64_t refused_requests;    /* clients' requests: role, or a revoked key */
    uint64_t warned_at, suppressed; /* rate limit of refusal warnings */
    int open_handles;
};

/* Loads the controller's keypair and both allowlists from dir; every file must be
 * valid. Returns 0 or FR_ECONFIG (the file and line in err). */
int zap_new(const char *dir, struct zap **out, char *err, size_t errlen);

/* Binds the handler in zctx and joins the loop (before any ROUTER binds); watches the
 * key directories; on_reload runs after every reload. Returns 0 or FR_ESYS. */
int zap_start(struct zap *z, void *zctx, uv_loop_t *loop, zap_reload_cb on_reload, void *arg,
              char *err, size_t errlen);

/* Makes a ROUTER a CURVE server in the given ZAP domain. Returns 0 or FR_ESYS. */
int zap_curve_server(struct zap *z, void *sock, const char *domain);

/* Watches a ROUTER's handshakes through a libzmq socket monitor, for the ones that
 * fail before the ZAP handler hears of them (libzmq ends a NULL-against-CURVE
 * handshake itself). At most two sockets. Returns 0 or FR_ESYS. */
int zap_watch(struct zap *z, void *zctx, void *router, const char *name);

/* The "security" document of status and /metrics (z NULL: insecure mode). */
json_t *zap_doc(const struct zap *z);

/* Re-reads the allowlists. A file that does not parse is left out (its peer is
 * refused) and logged. What was loaded goes to said (logged when said is NULL).
 * Returns 0 (fr_service_reload_fn). */
int zap_reload(struct zap *z, char *said, size_t len);

/* The allowlist entry a received message was authenticated as, if it still stands
 * (same name, same key); NULL otherwise. */
const struct zap_peer *zap_peer_of(const struct zap *z, const zmq_msg_t *msg);

/* An agent's current entry by id, or NULL. */
const struct zap_peer *zap_agent(const struct zap *z, const char *id);

const char *zap_role_name(enum zap_role role);

/* Counts a refused message in *count and logs it as a warning, at most one line a
 * second (the next one says how many were not logged). */
void zap_refuse(struct zap *z, uint64_t *count, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Leaves the loop (handles closed asynchronously) and closes the socket. */
void zap_stop(struct zap *z);
void zap_destroy(struct zap **pz);

#endif

/* keys — `flashrack keys gen|authorize|revoke|list`: CURVE keypairs and the
 * controller's allowlist directory (KEYS_DIR/agents/ID.pub, KEYS_DIR/operators/NAME.pub).
 * Local files only: it runs on the controller's host (authorize, revoke, list) or
 * anywhere (gen), and never talks to the controller, which reloads the directory
 * by itself. */
#ifndef CLI_KEYS_H
#define CLI_KEYS_H

/* argv[0] is "keys". json: -o json was given. Returns the CLI's exit code. */
int keys_run(int argc, char **argv, int json);

#define KEYS_USAGE                                                                             \
    "  keys gen FILE [--force] [--record]\n"                                                   \
    "  Writes a new CURVE keypair to FILE (mode 0600) and its public key to FILE.pub; with\n" \
    "  --record the controller's Ed25519 record-signing key (KEYS_DIR/record.key, PEM; the\n" \
    "  controller makes one at its first start when there is none).\n"                       \
    "  keys authorize (--agent ID | --operator NAME --role operator|viewer) FILE.pub [-d DIR]\n" \
    "  Lets that key in as agent ID (only that id) or as an operator with that role\n"        \
    "  (viewer: read only; operator: also submit, cancel, ports clear, firmware refresh).\n"  \
    "  keys revoke (--agent ID | --operator NAME) [-d DIR]\n"                                 \
    "  Takes the key out; the controller refuses the peer from its next message on.\n"       \
    "  keys list [-d DIR]\n"                                                                  \
    "  The authorized keys. DIR is the controller's [security] keys_dir: -d, else\n"          \
    "  $FLASHRACK_KEYS_DIR, else ./keys. The controller reloads it on every change.\n"

#endif

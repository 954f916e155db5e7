/* flashrack-sim-restore — a stand-in for idevicerestore driven by flashrack-sim.
 *
 * Takes idevicerestore's options (-i ECID -e -y -P -C DIR IPSW) and answers
 * --version and --help as idevicerestore does (the agent probes its engine at
 * start), asks the simulator at $FLASHRACK_SIM_SOCKET (the agent sets it from
 * its [seams] sim_socket) to restore that unit, prints every line
 * the simulator streams back on the stream it names, and exits with the code it
 * is given. Before that it reads the IPSW's BuildManifest and prints the firmware's
 * version and build as idevicerestore does (a file that is no IPSW prints nothing:
 * the simulator's tests restore any file). The simulator decides timing and fate; this program only relays, so
 * the agent's process handling and parser see exactly what a real engine gives. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fr_ipsw.h"
#include "fr_types.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: flashrack-sim-restore [OPTIONS] PATH\n"
                 "Restore IPSW firmware at PATH to a simulated iOS device (flashrack-sim).\n\n"
                 "  -i, --ecid ECID   target the unit with this ECID\n"
                 "  -e, --erase       perform a full restore, erasing all data\n"
                 "  -y, --no-input    non-interactive mode\n"
                 "  -P, --plain-progress  print progress as 'progress: <step> <fraction>'\n"
                 "  -C, --cache-path DIR  cache directory (accepted, unused)\n"
                 "  -h, --help        this help\n"
                 "  -v, --version     print version information\n\n"
                 "The simulator is found through $FLASHRACK_SIM_SOCKET (flashrack-agent sets it\n"
                 "from its [seams] sim_socket).\n");
}

/* idevicerestore's lines after it has read the manifest (the agent's parser takes them);
 * the version and build go to the simulator too (the unit runs them afterwards). */
static void say_manifest(const char *ipsw, char *version, char *build, size_t n)
{
    struct fr_ipsw *info = calloc(1, sizeof *info); /* large: not on the stack */
    char err[256];
    if (info && fr_ipsw_inspect(ipsw, info, err, sizeof err) == 0) {
        printf("Extracting BuildManifest from IPSW\nProduct Version: %s\nProduct Build: %s\n",
               info->version, info->build);
        fflush(stdout);
        snprintf(version, n, "%s", info->version);
        snprintf(build, n, "%s", info->build);
    }
    free(info);
}

static int connect_sim(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (fd < 0 || strlen(path) >= sizeof sa.sun_path) {
        if (fd >= 0)
            close(fd);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Handles one line from the simulator; returns an exit code >= 0 at the end. */
static int relay_line(const char *line)
{
    json_t *msg = json_loads(line, 0, NULL);
    const char *op = json_string_value(json_object_get(msg, "op"));
    int code = -1;
    if (op && strcmp(op, "out") == 0) {
        const char *stream = json_string_value(json_object_get(msg, "stream"));
        const char *text = json_string_value(json_object_get(msg, "text"));
        FILE *f = stream && strcmp(stream, "stderr") == 0 ? stderr : stdout;
        fprintf(f, "%s\n", text ? text : "");
        fflush(f);
    } else if (op && strcmp(op, "exit") == 0) {
        code = (int)json_integer_value(json_object_get(msg, "code"));
    } else if (op && strcmp(op, "error") == 0) {
        fprintf(stderr, "ERROR: simulator: %s\n",
                json_string_value(json_object_get(msg, "error")));
        code = 1;
    }
    json_decref(msg);
    return code;
}

static int relay(int fd)
{
    static char buf[70000];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "ERROR: simulator closed the connection\n");
            return 1;
        }
        len += (size_t)n;
        buf[len] = '\0';
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            int code = relay_line(start);
            if (code >= 0)
                return code;
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
        if (len >= sizeof buf - 1)
            len = 0; /* an over-long line is dropped */
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ecid", required_argument, NULL, 'i' }, { "erase", no_argument, NULL, 'e' },
        { "no-input", no_argument, NULL, 'y' },   { "plain-progress", no_argument, NULL, 'P' },
        { "cache-path", required_argument, NULL, 'C' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'v' }, { NULL, 0, NULL, 0 },
    };
    const char *ecid_s = NULL;
    int erase = 0, c;
    while ((c = getopt_long(argc, argv, "i:eyPC:hv", opts, NULL)) != -1) {
        switch (c) {
        case 'i': ecid_s = optarg; break;
        case 'e': erase = 1; break;
        case 'y': case 'P': case 'C': break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("flashrack-sim-restore %s\n", FR_VERSION); return 0;
        default: usage(stderr); return 1;
        }
    }
    uint64_t ecid = 0;
    if (optind != argc - 1 || !ecid_s || fr_ecid_parse(ecid_s, &ecid) < 0) {
        usage(stderr);
        return 1;
    }
    const char *ipsw = argv[optind];
    if (access(ipsw, R_OK) != 0) {
        fprintf(stderr, "ERROR: Firmware file %s does not exist.\n", ipsw);
        return 1;
    }
    char version[64] = "", build[64] = "";
    say_manifest(ipsw, version, build, sizeof version);
    const char *sock = getenv("FLASHRACK_SIM_SOCKET");
    int fd = sock ? connect_sim(sock) : -1;
    if (!sock) {
        fprintf(stderr, "ERROR: flashrack-sim-restore: FLASHRACK_SIM_SOCKET is not set "
                        "(flashrack-agent sets it from its [seams] sim_socket)\n");
        return 2;
    }
    if (fd < 0) {
        fprintf(stderr, "ERROR: flashrack-sim-restore: cannot reach the simulator at '%s': %s\n",
                sock, strerror(errno));
        return 2;
    }
    char ecs[FR_ECID_STRLEN];
    fr_ecid_format(ecid, ecs, sizeof ecs);
    json_t *req = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}", "op", "restore", "ecid", ecs, "ipsw",
                            ipsw, "erase", erase, "version", version, "build", build);
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
    ssize_t w = write(fd, line, n + 1);
    free(line);
    int code = w == (ssize_t)(n + 1) ? relay(fd) : 1;
    close(fd);
    return code;
}

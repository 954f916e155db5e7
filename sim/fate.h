/* fate — what happens to a simulated restore, as pure functions of the seed.
 *
 * The outcome of the k-th restore of a unit on a port depends only on (seed,
 * ECID, port path, k), never on timing or scheduling order, so the same seed
 * gives the same run. Bus sharing and oversubscription are plain arithmetic. */
#ifndef SIM_FATE_H
#define SIM_FATE_H

#include <stdint.h>

#include "rack.h"

enum fate_outcome { FATE_OK = 0, FATE_LINK_LOST, FATE_DISK };

struct fate {
    enum fate_outcome outcome;
    double fail_at;   /* LINK_LOST: fraction of the upload-filesystem phase where the link drops */
};

/* A uniform number in [0, 1) from (seed, ecid, path, k, salt). */
double fate_u01(uint64_t seed, uint64_t ecid, const char *path, int k, int salt);

/* Decides a restore's fate from the port's link_fail and the unit's health. */
void fate_decide(uint64_t seed, uint64_t ecid, const char *path, int k, double link_fail,
                 enum unit_health health, struct fate *out);

/* Extra link-loss probability when n units share a bus in the data phase. */
double fate_oversubscribed(const struct rack_sim *s, int n);

/* Whether a restore that starts its data phase with n units on the bus loses the
 * link to oversubscription (decided once, at the start of the phase). */
int fate_oversub_drop(const struct rack_sim *s, uint64_t ecid, const char *path, int k, int n);

/* MB/s each of n units gets from a bus of bus_mbps. */
double fate_share(double bus_mbps, int n);

#endif

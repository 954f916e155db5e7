/* fate — what happens to a simulated restore, as pure functions of the seed.
 *
 * The outcome of the k-th restore of a unit on a port depends only on (seed,
 * ECID, port path, k), never on timing or scheduling order, so the same seed
 * gives the same run. Bus sharing and oversubscription are plain arithmetic. */
#ifndef SIM_FATE_H
#define SIM_FATE_H

#include <stdint.h>

#include "rack.h"

/* Where and how a restore fails. LINK_LOST drops the link in the data phase; DISK
 * fails as verify begins; PREPARE, VERIFY and FLASH fail part-way through that phase. */
enum fate_outcome { FATE_OK = 0, FATE_LINK_LOST, FATE_DISK, FATE_PREPARE, FATE_VERIFY, FATE_FLASH };

struct fate {
    enum fate_outcome outcome;
    double fail_at;   /* fraction of the failing phase where it fails */
};

/* A uniform number in [0, 1) from (seed, ecid, path, k, salt). */
double fate_u01(uint64_t seed, uint64_t ecid, const char *path, int k, int salt);

/* Decides a restore's fate from the port's link_fail and the unit's health. */
void fate_decide(uint64_t seed, uint64_t ecid, const char *path, int k, double link_fail,
                 enum unit_health health, struct fate *out);

/* A restore's fate on a port from everything the rack file says: the port's link_fail
 * plus depth_fail per hub tier below the first, and the unit's health (an intermittent
 * unit loses the link with probability intermittent_fail on every port). */
void fate_decide_at(const struct rack_sim *s, uint64_t ecid, const struct rack_port *port, int k,
                    enum unit_health health, struct fate *out);

/* Extra link-loss probability when n units share a bus in the data phase. */
double fate_oversubscribed(const struct rack_sim *s, int n);

/* Whether a restore that starts its data phase with n units on the bus loses the
 * link to oversubscription (decided once, at the start of the phase). */
int fate_oversub_drop(const struct rack_sim *s, uint64_t ecid, const char *path, int k, int n);

/* MB/s each of n units gets from a bus of bus_mbps. */
double fate_share(double bus_mbps, int n);

/* Max-min fair shares on one root bus of bus_mbps: n[h] units in the data phase behind
 * hub h (nh hubs), no hub's uplink over hub_mbps, no unit over unit_mbps (0: no such
 * limit). Writes each unit's MB/s behind hub h to rate[h]. With neither limit every unit
 * gets fate_share(bus_mbps, total). */
void fate_bus_rates(double bus_mbps, double hub_mbps, double unit_mbps, const int *n, int nh,
                    double *rate);

#endif

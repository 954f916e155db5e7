/* fate — deterministic outcomes and bandwidth arithmetic; see fate.h. */
#include "fate.h"

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

double fate_u01(uint64_t seed, uint64_t ecid, const char *path, int k, int salt)
{
    uint64_t h = mix(seed ^ mix(ecid));
    for (const char *p = path; p && *p; p++)
        h = mix(h ^ (unsigned char)*p);
    h = mix(h ^ (uint64_t)(unsigned)k);
    h = mix(h ^ ((uint64_t)(unsigned)salt << 32));
    return (double)(h >> 11) / 9007199254740992.0; /* 2^53 */
}

void fate_decide(uint64_t seed, uint64_t ecid, const char *path, int k, double link_fail,
                 enum unit_health health, struct fate *out)
{
    out->outcome = FATE_OK;
    out->fail_at = 0.05 + 0.9 * fate_u01(seed, ecid, path, k, 1);
    if (health == HEALTH_DEAD)
        out->outcome = FATE_LINK_LOST;
    else if (health == HEALTH_DISK)
        out->outcome = FATE_DISK;
    else if (health == HEALTH_PREPARE)
        out->outcome = FATE_PREPARE;
    else if (health == HEALTH_VERIFY)
        out->outcome = FATE_VERIFY;
    else if (health == HEALTH_FLASH)
        out->outcome = FATE_FLASH;
    else if (fate_u01(seed, ecid, path, k, 0) < link_fail)
        out->outcome = FATE_LINK_LOST;
}

void fate_decide_at(const struct rack_sim *s, uint64_t ecid, const struct rack_port *port, int k,
                    enum unit_health health, struct fate *out)
{
    int tiers_below = port->depth - 2; /* a port of a tier-1 hub has depth 2 */
    double p = port->link_fail + (tiers_below > 0 ? tiers_below * s->depth_fail : 0);
    fate_decide(s->seed, ecid, port->path, k, p > 1 ? 1 : p, health, out);
    if (health == HEALTH_INTERMITTENT && out->outcome == FATE_OK &&
        fate_u01(s->seed, ecid, port->path, k, 4) < s->intermittent_fail)
        out->outcome = FATE_LINK_LOST;
}

double fate_oversubscribed(const struct rack_sim *s, int n)
{
    double over = (double)n - s->oversubscribe_at;
    double p = over > 0 ? over * s->oversubscribe_fail : 0;
    return p > 1 ? 1 : p;
}

int fate_oversub_drop(const struct rack_sim *s, uint64_t ecid, const char *path, int k, int n)
{
    return fate_u01(s->seed, ecid, path, k, 2) < fate_oversubscribed(s, n);
}

double fate_share(double bus_mbps, int n)
{
    return n > 0 ? bus_mbps / n : bus_mbps;
}

/* The tightest per-unit cap behind hub h. */
static double unit_cap(double hub_mbps, double unit_mbps, int n)
{
    double cap = hub_mbps > 0 ? hub_mbps / n : 1e300;
    return unit_mbps > 0 && unit_mbps < cap ? unit_mbps : cap;
}

void fate_bus_rates(double bus_mbps, double hub_mbps, double unit_mbps, const int *n, int nh,
                    double *rate)
{
    /* Water-filling: hubs whose units are capped below the fair share take their cap,
     * the others split what is left evenly. nh is small (the hubs on one bus). */
    int done[128] = { 0 };
    double left = bus_mbps;
    int units = 0;
    for (int h = 0; h < nh && h < 128; h++)
        units += n[h];
    for (int h = 0; h < nh; h++)
        rate[h] = 0;
    for (int round = 0; round < nh && units > 0; round++) {
        double fair = left / units;
        int best = -1;
        for (int h = 0; h < nh && h < 128; h++)
            if (!done[h] && n[h] > 0 && unit_cap(hub_mbps, unit_mbps, n[h]) < fair &&
                (best < 0 || unit_cap(hub_mbps, unit_mbps, n[h]) <
                                 unit_cap(hub_mbps, unit_mbps, n[best])))
                best = h;
        if (best < 0)
            break;
        rate[best] = unit_cap(hub_mbps, unit_mbps, n[best]);
        left -= rate[best] * n[best];
        units -= n[best];
        done[best] = 1;
    }
    for (int h = 0; h < nh && h < 128; h++)
        if (!done[h] && n[h] > 0)
            rate[h] = fate_share(left, units);
}

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
    else if (fate_u01(seed, ecid, path, k, 0) < link_fail)
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

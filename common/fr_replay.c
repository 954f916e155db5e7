/* fr_replay — when an unacknowledged reliable message goes out again; see fr_replay.h. */
#include "fr_replay.h"

int fr_replay_due(const struct fr_replay *r, uint64_t now, uint64_t period_ms, int ack_moved)
{
    if (r->sends == 0)
        return 1;
    if (ack_moved)
        return 0;
    uint64_t wait = period_ms;
    for (unsigned i = 1; i < r->sends && wait < period_ms * FR_REPLAY_MAX_WAIT; i++)
        wait *= 2;
    if (wait > period_ms * FR_REPLAY_MAX_WAIT)
        wait = period_ms * FR_REPLAY_MAX_WAIT;
    return now - r->sent_at >= wait;
}

void fr_replay_sent(struct fr_replay *r, uint64_t now)
{
    r->sent_at = now;
    r->sends++;
}

void fr_replay_relink(struct fr_replay *r)
{
    r->sends = 0;
}

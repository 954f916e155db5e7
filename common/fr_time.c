/* fr_time — clocks and ISO-8601 formatting. */
#include "fr_time.h"

#include <stdio.h>
#include <time.h>

uint64_t fr_time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fr_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fr_time_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Days since 1970-01-01 as a civil date (the proleptic Gregorian calendar's, as
 * gmtime gives it): written out by hand, because strftime per timestamp was a tenth of
 * the controller's cost of writing a page of 1,000 runs. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400) + (*m <= 2);
}

static char *digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

#define ISO_MAX_MS 253402300800000ull /* 10000-01-01: four-digit years below it */

void fr_time_iso8601(uint64_t ms, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = '\0';
    if (ms == 0)
        return;
    time_t secs = (time_t)(ms / 1000u);
    if (ms < ISO_MAX_MS && len >= 25) {
        int y;
        unsigned mo, d, sod = (unsigned)(secs % 86400);
        civil_from_days(secs / 86400, &y, &mo, &d);
        char *p = digits(buf, (unsigned)y, 4);
        *p++ = '-';
        p = digits(p, mo, 2);
        *p++ = '-';
        p = digits(p, d, 2);
        *p++ = 'T';
        p = digits(p, sod / 3600, 2);
        *p++ = ':';
        p = digits(p, sod / 60 % 60, 2);
        *p++ = ':';
        p = digits(p, sod % 60, 2);
        *p++ = '.';
        p = digits(p, (unsigned)(ms % 1000u), 3);
        *p++ = 'Z';
        *p = '\0';
        return;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned)(ms % 1000u));
}

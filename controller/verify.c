/* verify — a restore's verdict from what the unit said after it; see verify.h. */
#include "verify.h"

#include <stdio.h>
#include <string.h>

static int given(const char *s)
{
    return s && *s;
}

const char *verify_status_name(enum verify_status s)
{
    switch (s) {
    case VERIFY_MATCH: return "matches";
    case VERIFY_MISMATCH: return "does not match";
    case VERIFY_NOT: return "not verified";
    default: return "";
    }
}

enum verify_status verify_judge(const struct verify_input *in, char *text, size_t len)
{
    text[0] = '\0';
    if (!in->restored)
        return VERIFY_NONE;
    if (!given(in->read_version) || !given(in->read_build)) {
        snprintf(text, len, "not verified: %s", given(in->unverified) ? in->unverified
                 : "the agent read nothing back from the unit after the restore (it does not say why)");
        return VERIFY_NOT;
    }
    char said[96];
    snprintf(said, sizeof said, "ProductVersion %s BuildVersion %s read from the unit after the restore",
             in->read_version, in->read_build);
    if (!given(in->installed_version) || !given(in->installed_build)) {
        snprintf(text, len, "not verified: %s, but the engine did not say which version it installed",
                 said);
        return VERIFY_NOT;
    }
    if (strcmp(in->read_version, in->installed_version) == 0 &&
        strcmp(in->read_build, in->installed_build) == 0) {
        snprintf(text, len, "%s: matches", said);
        return VERIFY_MATCH;
    }
    snprintf(text, len, "%s: does not match the installed iOS %s (%s)", said, in->installed_version,
             in->installed_build);
    return VERIFY_MISMATCH;
}

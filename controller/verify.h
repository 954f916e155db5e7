/* verify — the verdict on a finished restore from the unit's own word: the
 * ProductVersion and BuildVersion its lockdownd said once it was back in normal mode
 * (JobResult unit_version/unit_build, read by the agent) against the version and build
 * the engine installed (firmware_version/firmware_build, from the IPSW's BuildManifest).
 * Pure: no store, no I/O. runs.c stores the verdict with the attempt; the record, the
 * report and the unit's page say it as written here. */
#ifndef VERIFY_H
#define VERIFY_H

#include <stddef.h>

enum verify_status {
    VERIFY_NONE = 0,  /* no finished restore to verify (a failed or cancelled attempt) */
    VERIFY_MATCH,     /* the unit runs what was installed */
    VERIFY_MISMATCH,  /* it says another version or build: a failed verification */
    VERIFY_NOT,       /* not verified (why in the text) */
};

struct verify_input {
    int restored;                      /* the attempt ended in success */
    const char *installed_version, *installed_build; /* what the engine said ("" = not said) */
    const char *read_version, *read_build;           /* what the unit said ("" = not read) */
    const char *unverified;            /* the agent's reason it read nothing ("" = none given) */
};

/* The verdict, and its sentence in text ("" for VERIFY_NONE), e.g. "ProductVersion 18.2
 * BuildVersion 22C152 read from the unit after the restore: matches". */
enum verify_status verify_judge(const struct verify_input *in, char *text, size_t len);
/* "matches", "does not match", "not verified", "" — the status as the documents spell it. */
const char *verify_status_name(enum verify_status s);

#endif

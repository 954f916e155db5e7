/* cli_fixture — the CLI's test documents (tests/fixtures/cli/NAME, found through
 * $FR_FIXTURES), read with jansson; a document that cannot be read fails the test.
 * Include after cmocka.h. */
#ifndef CLI_FIXTURE_H
#define CLI_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static inline json_t *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/cli/%s", getenv("FR_FIXTURES"), name);
    json_error_t e;
    json_t *doc = json_load_file(path, 0, &e);
    if (!doc)
        fail_msg("%s: %s", path, e.text);
    return doc;
}

#endif

/* firmware — the controller's firmware catalog.
 *
 * The site's catalog is a directory of files in the formats fr_catalog reads
 * (ipsw.me v4 device JSON, Apple's version plist): an offline site drops files
 * there by hand; a connected one lists [firmware] sources, which are fetched into
 * the directory when missing or older than max_age_s (and on `flashrack firmware
 * refresh`). Downloads run on libuv's thread pool; the loop only swaps the parsed
 * result in, so a slow catalog server never stalls the controller.
 *
 * Jobs may name firmware by selector ("latest", "18.2", "22C152"); the scheduler
 * resolves it for each unit's model when it starts an attempt. */
#ifndef FIRMWARE_H
#define FIRMWARE_H

#include <jansson.h>

#include "fr_catalog.h"

struct controller;

int firmware_start(struct controller *c, char *err, size_t errlen);
/* Resolves selector for a model against the loaded catalog. */
int firmware_resolve(struct controller *c, const char *model, const char *selector,
                     struct fr_fw *out, char *err, size_t errlen);
/* Whether any model has a build the selector names (submit checks this). */
int firmware_known(struct controller *c, const char *selector);
/* The `flashrack firmware` document: catalog entries (of model, if not ""), and with
 * a selector what it resolves to; NULL and err when it does not resolve. */
json_t *firmware_doc(struct controller *c, const char *model, const char *selector, char *err,
                     size_t errlen);
/* Fetches every source now; done(arg, status, report) runs on the loop when finished. */
void firmware_refresh(struct controller *c, void (*done)(void *arg, int status, json_t *report),
                      void *arg);
/* Reads the catalog directory again (SIGHUP); writes what it found into said. An
 * unreadable directory is FR_ENOTFOUND and keeps the catalog loaded before. */
int firmware_reload(struct controller *c, char *said, size_t len);
void firmware_close(struct controller *c);
void firmware_destroy(struct controller *c);

#endif

/*
 * config: the daemon's JSON config file. Every key has a default; flags
 * override it. The file is one JSON object with one object per stage
 * ("store", "ingest", "aggregator", "ws", "feeds"...); each stage reads
 * its own section with the rv_cfg_* getters, so a stage adds keys without
 * touching this module. Not thread-safe: load and read at start.
 */
#ifndef RV_CONFIG_H
#define RV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rv/err.h"

struct rv_config {
    char data_dir[1024];     /* "data": default "./rv-data" */
    char http[256];          /* "http": default "127.0.0.1:8080" */
    char ingest[256];        /* "ingest": default "tcp://127.0.0.1:7701" */
    char partners[1024];     /* "partners": default "" (none: NULL mechanism, loopback only) */
    char server_key[1024];   /* "server_key": default "" */
    char feeds[1024];        /* "feeds": default "" */
    char web_root[1024];     /* "web_root": default: RV_WEB_ROOT compiled in */
    char role[32];           /* "role": default "all" */
    char log_level[16];      /* "log_level": default "info" */
    bool demo;               /* "demo": default false */
    cJSON *root;             /* the whole file (owned); NULL when no file */
};

/* Fills defaults. */
void rv_config_init(struct rv_config *c);
/* Loads FILE over the defaults. Unknown top-level keys are an error (typos
 * should not pass silently). Errors: RV_ENOTFOUND, RV_EINVAL (with the key
 * and reason in ERR), RV_ENOMEM. */
int rv_config_load(struct rv_config *c, const char *file, struct rv_errbuf *err);
/* Frees root. */
void rv_config_release(struct rv_config *c);
/* The object of a stage's section, or NULL if absent (defaults apply). */
const cJSON *rv_config_section(const struct rv_config *c, const char *name);

/* Getters for a section (OBJ may be NULL: then *out = DEF). Each checks
 * type and range and names the key in ERR:
 *   "aggregator.window_s: must be an integer 1..86400". */
int rv_cfg_int(const cJSON *obj, const char *section, const char *key, int64_t def, int64_t min,
               int64_t max, int64_t *out, struct rv_errbuf *err);
int rv_cfg_double(const cJSON *obj, const char *section, const char *key, double def, double min,
                  double max, double *out, struct rv_errbuf *err);
int rv_cfg_bool(const cJSON *obj, const char *section, const char *key, bool def, bool *out,
                struct rv_errbuf *err);
int rv_cfg_string(const cJSON *obj, const char *section, const char *key, const char *def,
                  char *out, size_t cap, struct rv_errbuf *err);

/* The key of ALLOWED (N of them; N == 0: up to a NULL) closest to KEY
 * when KEY looks like a typo of it (edit distance at most 2, and under half
 * KEY's length), else NULL: for "did you mean" in an unknown-key error. */
const char *rv_cfg_closest(const char *key, const char *const *allowed, size_t n);

/* Refuses a key of OBJ (may be NULL) that is not in ALLOWED (NULL-ended):
 * "store.map_size: unknown key (known: map_size_mib, ...)". */
int rv_cfg_check_keys(const cJSON *obj, const char *section, const char *const *allowed,
                      struct rv_errbuf *err);

#endif

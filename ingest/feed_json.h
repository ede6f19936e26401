/*
 * feed_json: what the JSON feed parsers (OONI, IODA) share: the record
 * being turned into events and how it is rejected, payload parsing with
 * clear json/utf-8 errors, and small string helpers. Private to ingest/.
 */
#ifndef RV_INGEST_FEED_JSON_H
#define RV_INGEST_FEED_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "rv/feed.h"

/* One record being turned into events: where to report it. */
struct rv_feed_rec {
    const struct rv_feed_sink *sink;
    size_t record; /* 1-based, for sink->reject */
    char path[48]; /* "results[3]", "data[0][2]" or "" */
};

enum { RV_REC_SKIPPED = 0, RV_REC_EMITTED, RV_REC_REJECTED };

/* Reports the record as bad with "<path>.<field>: reason" (or
 * "<path>: reason" / "<path>[i]..." when FMT starts with ':' or '['). */
void rv_feed_rec_reject(const struct rv_feed_rec *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Validates EV and hands it to the sink (which takes it), or rejects and
 * releases it. *stop gets the sink's non-zero answer. Returns
 * RV_REC_EMITTED or RV_REC_REJECTED. */
int rv_feed_rec_emit(const struct rv_feed_rec *r, struct rv_event *ev, int *stop);

/* Parses BUF as one JSON value, with "json: ..." / "utf-8: ..." errors
 * (empty payload, NUL byte, syntax error with offset and line, text after
 * the value; ERR's code RV_ENOMEM, "json: out of memory ...", when the tree
 * could not be allocated, told apart with rv_json_alloc_failed()). Caller
 * owns the result. */
cJSON *rv_feed_json_parse(const char *buf, size_t len, struct rv_errbuf *err);

/* Sets ERR to "json: out of memory for the tree of a LEN-byte payload"
 * (RV_ENOMEM) and notes, for this thread, that a payload's JSON tree did
 * not fit: returns RV_ENOMEM. */
int rv_feed_json_oom(struct rv_errbuf *err, size_t len);
/* Whether rv_feed_json_oom() was called on this thread since the last
 * call (the note is cleared): the feed workers tell a payload too big for
 * memory from other shortages with it. */
bool rv_feed_json_take_oom(void);

/* The common start of a JSON feed parser: checks SINK (callbacks, source
 * 1..RV_SOURCE_MAX bytes), the size cap MAX, parses BUF and requires an
 * object. On success *root is the caller's; else an error code with ERR
 * set and *root NULL. */
int rv_feed_json_begin(const char *buf, size_t len, const struct rv_feed_sink *sink, size_t max,
                       cJSON **root, struct rv_errbuf *err);

/* malloc'd copy of S; NULL on ENOMEM. */
char *rv_feed_dup(const char *s);
/* Length of S cut to at most MAX bytes on a UTF-8 boundary. */
size_t rv_feed_utf8_cut(const char *s, size_t max);
/* OBJ as compact JSON text, malloc'd (for ev->attrs); NULL on ENOMEM. */
char *rv_feed_attrs_text(const cJSON *obj);
/* True when S is 1..MAX bytes of [A-Za-z0-9._-] (safe inside an event id). */
bool rv_feed_id_safe(const char *s, size_t max);

#endif

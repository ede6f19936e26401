/*
 * batch: splits a payload into events. A payload is NDJSON (one object a
 * line, blank lines ignored) or one JSON array of objects. Each item gets
 * a line number: the line in NDJSON, the 1-based index in an array.
 * A bad item is reported and skipped; good items in the same payload are
 * kept. Reentrant; any thread.
 */
#ifndef RV_BATCH_H
#define RV_BATCH_H

#include <stddef.h>

#include "rv/event.h"

/* Called for each item. On success EV is valid and the callback takes it
 * (it must release or keep it); on rejection EV is NULL and ERR says
 * why. Return 0 to go on, non-zero to stop. */
typedef int (*rv_batch_cb)(void *arg, size_t line, struct rv_event *ev,
                           const struct rv_errbuf *err);

struct rv_batch_stats {
    size_t items;          /* items seen (good + rejected) */
    size_t rejected;       /* items rejected */
    unsigned dropped_fields; /* unknown fields dropped over all items */
};

/* Parses BUF (LEN bytes) as events of SOURCE. MAX_ITEMS caps the number
 * of items (0 = no cap); items past it are rejected with
 * "batch: more than N events". Returns RV_OK, or the callback's non-zero
 * value if it stopped early, or RV_ENOMEM. STATS may be NULL. */
int rv_batch_parse(const char *buf, size_t len, const char *source, size_t max_items,
                   rv_batch_cb cb, void *arg, struct rv_batch_stats *stats);

#endif

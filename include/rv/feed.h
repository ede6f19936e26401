/*
 * feed: parsers for the external feed formats. One file per format under
 * ingest/ (feed_ooni.c, feed_ioda.c, feed_gdelt.c, feed_acled.c,
 * feed_ndjson.c), each with its mapping table to the taxonomy.
 *
 * A parser reads a whole payload (a file or an HTTP body) and calls
 * sink->emit() for each good event (validated with rv_event_validate, its
 * source set to sink->source, a stable id derived from the feed's own id)
 * and sink->reject() with a line/record number and a specific message for
 * each bad record; it never stops at a bad record. A payload that is not
 * of the format at all returns RV_EINVAL with ERR set. Reentrant; any
 * thread.
 */
#ifndef RV_FEED_H
#define RV_FEED_H

#include <stddef.h>

#include "rv/err.h"
#include "rv/event.h"

/* Events rv_feed_parse_sorted holds at most by default (each in the
 * store's encoding, ~100-250 bytes with its key: ~25-50 MB). */
#define RV_FEED_SORT_MAX_DEFAULT 200000

/* The fields after ARG are optional: NULL / 0 is their default. */
struct rv_feed_sink {
    const char *source; /* the feed's configured name: becomes ev->source */
    /* Takes EV (must release it). Return non-zero to stop parsing. */
    int (*emit)(void *arg, struct rv_event *ev);
    /* RECORD: 1-based line or record number; MSG: "field: reason". */
    void (*reject)(void *arg, size_t record, const char *msg);
    void *arg;
    /* rv_feed_parse_sorted, which emits nothing while it collects: asked at
     * every event it collects; non-zero stops parsing (as a non-zero emit
     * does) and releases the events held. NULL: never. */
    int (*stop)(void *arg);
    /* rv_feed_parse_sorted: events held and sorted at most (0:
     * RV_FEED_SORT_MAX_DEFAULT). */
    size_t sort_max;
    /* rv_feed_parse_sorted: called before a run of N events is emitted
     * while the parse goes on (the payload has more than sort_max events,
     * or memory ran short), so the payload is in time order only within
     * each run. NULL: not told. */
    void (*sort_run)(void *arg, size_t n);
};

/* Formats: "ndjson", "ooni", "ioda", "gdelt", "acled". */
typedef int (*rv_feed_parse_fn)(const char *buf, size_t len, const struct rv_feed_sink *sink,
                                struct rv_errbuf *err);

/* Parser for FORMAT, or NULL if unknown. It emits in payload order. */
rv_feed_parse_fn rv_feed_parser(const char *format);

/* The parser feeds and `rvctl backtest` run for FORMAT, or NULL if unknown:
 * one that emits a payload's events in event-time order (ingest/
 * feed_sorted.c), so that a payload listing one entity's series after
 * another (IODA signals) or newest first (ACLED exports) does not put all
 * but its first events behind the aggregator's watermark. For "ooni",
 * "ioda", "gdelt" and "acled" that is the format's parser behind
 * rv_feed_parse_sorted(); for "ndjson" rv_feed_parse_ndjson itself:
 * streamed in the payload's own order, which must be time order (within
 * the aggregator's allowed lateness), as partners publish it. */
rv_feed_parse_fn rv_feed_parser_sorted(const char *format);

/* Runs PARSE on BUF, keeps its good events in memory and, once it has
 * returned, hands them to SINK stable-sorted by time_ms (equal times keep
 * payload order); rejections reach SINK at once, in payload order. Holds
 * at most sink->sort_max events (RV_FEED_SORT_MAX_DEFAULT when 0), each
 * in the store's encoding (~100-250 bytes with its key): a payload with more goes out in runs,
 * each run of sort_max events sorted and emitted (after
 * sink->sort_run(N)) when it is full, so it is in time order within each
 * run only. When the held events cannot grow (ENOMEM) the run is the
 * events held so far. Returns what PARSE returned (with its ERR: a partial
 * payload stays partial), after every event was offered; a stop asked by
 * sink->emit releases the events not yet emitted, and one asked by
 * sink->stop while collecting the events held. Errors: PARSE's; RV_ENOMEM
 * when not even the first block of events can be held (ERR set, nothing
 * emitted). */
int rv_feed_parse_sorted(rv_feed_parse_fn parse, const char *buf, size_t len,
                         const struct rv_feed_sink *sink, struct rv_errbuf *err);

int rv_feed_parse_ndjson(const char *buf, size_t len, const struct rv_feed_sink *sink,
                         struct rv_errbuf *err);
/* OONI API JSON: /measurements pages, /aggregation results, /measurement_meta. */
int rv_feed_parse_ooni(const char *buf, size_t len, const struct rv_feed_sink *sink,
                       struct rv_errbuf *err);
/* IODA v2 JSON: /signals/raw, /outages/alerts, /outages/events. */
int rv_feed_parse_ioda(const char *buf, size_t len, const struct rv_feed_sink *sink,
                       struct rv_errbuf *err);
/* GDELT 2.0 events export: the tab-separated 61 columns, or its .zip. */
int rv_feed_parse_gdelt(const char *buf, size_t len, const struct rv_feed_sink *sink,
                        struct rv_errbuf *err);
/* ACLED export CSV (header row) or API JSON envelope. */
int rv_feed_parse_acled(const char *buf, size_t len, const struct rv_feed_sink *sink,
                        struct rv_errbuf *err);

#endif

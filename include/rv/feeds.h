/*
 * feeds: the feed workers. They fetch external feeds (HTTP(S) through
 * libcurl, a local file or a directory of files), parse each payload with
 * its format's parser (rv/feed.h) and write the events through the writer
 * with a cursor per feed, so a restart resumes without double counting.
 *
 * `--feeds FILE` is a JSON list of
 *   {"name":"ooni-ir", "format":"ooni", "url":"https://...",
 *    "interval_s":900, "options":{...}}
 *   name        1..64 of A-Z a-z 0-9 . _ -, unique; becomes every event's
 *               source and the cursor name "feed:<name>"
 *   format      ndjson | ooni | ioda | gdelt | acled
 *   url         http:// or https://, file:///abs/path, or a path to a file
 *               or a directory (a relative path is taken from the process's
 *               working directory)
 *   interval_s  seconds between polls, 1..604800 (default 900)
 *   options     connect_timeout_s (10), timeout_s (300), stall_s (60: abort
 *               below 1 byte/s for that long), max_bytes (268435456),
 *               max_redirects (5), backoff_min_s (30), backoff_max_s (3600),
 *               sort_max_events (RV_FEED_SORT_MAX_DEFAULT, 200000; 0..100000000,
 *               0: no sort); all integers (max_redirects and
 *               sort_max_events may be 0, the others >= 1)
 *
 * Per payload: the whole payload is parsed; the events go to the writer in
 * event-time order (a stable sort of the payload's events,
 * rv_feed_parser_sorted; ndjson in its own order, which must be time
 * order), in requests of at most RV_FEEDS_CHUNK events and the LAST
 * request carries the cursor, so the cursor is durable in the same
 * transaction as the events it covers. The sort holds at most
 * sort_max_events events: a payload with more is written in time-ordered
 * runs of that many (each sorted, one after the other; events then behind
 * the aggregator's watermark are stored and counted late), logged
 * (rv_log_warn "unsorted feed=... runs=...") and counted
 * (rv_feed_sort_overflows_total, stats sort_overflows). The stop flag is
 * read at every event the sort collects too. Dedup by (source, id) makes
 * re-reading safe after a crash between two requests of one payload.
 * Cursor (JSON text):
 *   file       {"v":1,"path":P,"size":S,"mtime_ns":T,"sha256":H}: an
 *              unchanged file (same size and mtime, or same hash) is skipped
 *   directory  {"v":1,"path":P,"file":F,"size":S,"mtime_ns":T[,"skipped":true]}:
 *              regular files (dotfiles skipped) are processed in byte order
 *              of their names, one payload each; a restart resumes after F
 *              (F itself again only if its size or mtime changed)
 *   http       {"v":1,"url_sha256":U,"etag":E,"last_modified":L,"sha256":H}:
 *              U is the hex SHA-256 of the configured url (the url itself,
 *              whose query may hold a key, is not stored; an older cursor
 *              with "url" is still recognised); the validators are sent
 *              back as If-None-Match / If-Modified-Since (304: nothing to
 *              do); a 200 with the same body hash is skipped too
 * A payload that is not of the format at all is logged and counted
 * (outcome="invalid") and its cursor still written, so it is not re-read
 * until it changes. A file of a directory that cannot be read as it is
 * (larger than max_bytes, gone or unreadable after it was listed) is
 * skipped: logged once (rv_log_warn "skipped ... reason=..."), counted
 * (outcome="skipped", stats skipped / last_skipped) and its cursor written
 * with "skipped":true, so the later files go on; transient errors (EINTR,
 * EAGAIN, out of memory or descriptors) leave the cursor and are retried,
 * except that a payload (of any feed) whose JSON tree did not fit in
 * memory RV_FEEDS_NOMEM_TRIES times in a row is skipped: logged and
 * counted as skipped, reason "json: out of memory for the tree of a
 * N-byte payload (3 tries)", its cursor written so that it is read again
 * only once it changes (no events were written: the tree comes first);
 * it would otherwise fill the memory at every try and, in a directory,
 * hold back every later file. Other shortages are retried for ever.
 * A single-file feed larger than max_bytes is skipped the same way but
 * without a cursor: logged and counted at every poll, polled at interval_s.
 * Fetch failures (I/O, HTTP status >= 400, timeouts, an HTTP body past
 * max_bytes) are logged once each (rv_log_warn, key=value, no payload, URL
 * without user:password@ and without its query, in logs and messages
 * alike) and retried with exponential backoff and jitter from
 * backoff_min_s doubling up to backoff_max_s, capped by interval_s
 * (rv_feeds_backoff_ms; never under 1 s).
 * Bad records are logged (the first RV_FEEDS_LOG_REJECTS of a payload,
 * then one summary line) and counted; the good records are kept.
 *
 * Metrics (M may be NULL):
 *   rv_feed_records_total{feed,outcome="accepted|duplicate|rejected"}
 *   rv_feed_fetches_total{feed,outcome="ok|unchanged|not_modified|invalid|error|skipped"}
 *   rv_feed_sort_overflows_total{feed}: payloads past sort_max_events
 *
 * Threads: one worker thread polls every feed when due. rv_feeds_load,
 * _start, _stop, _cfg_free from one controlling thread; _stats and
 * _poll_now from any thread.
 */
#ifndef RV_FEEDS_H
#define RV_FEEDS_H

#include <stddef.h>
#include <stdint.h>

#include "rv/err.h"

struct rv_store;
struct rv_writer;
struct rv_metrics;
struct rv_feeds;

#define RV_FEEDS_CHUNK 5000       /* events per write request */
#define RV_FEEDS_LOG_REJECTS 10   /* rejected records logged per payload */
#define RV_FEEDS_NOMEM_TRIES 3    /* a payload whose JSON tree runs out of memory this many
                                     times in a row is skipped */
#define RV_FEEDS_NAME_MAX 64

/* One configured feed. Owned strings; free the array with
 * rv_feeds_cfg_free. */
struct rv_feed_cfg {
    char *name;
    char *format;
    char *url;
    unsigned interval_s;
    unsigned connect_timeout_s;
    unsigned timeout_s;
    unsigned stall_s;
    uint64_t max_bytes;
    unsigned max_redirects;
    unsigned backoff_min_s;
    unsigned backoff_max_s;
    uint64_t sort_max_events; /* events a payload sort holds; 0: no sort */
};

/* Fills C with the defaults (name/format/url NULL). */
void rv_feed_cfg_default(struct rv_feed_cfg *c);

/* Parses the feeds file FILE into *out (N entries; *out NULL when the
 * list is empty). Messages name the entry and key:
 *   "feeds[2].format: 'xml' is not one of ndjson, ooni, ioda, gdelt, acled"
 * Errors: RV_EINVAL (bad content), RV_ENOTFOUND / RV_EIO (cannot read),
 * RV_ENOMEM. Nothing is returned on error. */
int rv_feeds_load(const char *file, struct rv_feed_cfg **out, size_t *n, struct rv_errbuf *err);

/* Same, from JSON text (TEXT, LEN bytes). */
int rv_feeds_parse(const char *text, size_t len, struct rv_feed_cfg **out, size_t *n,
                   struct rv_errbuf *err);

/* Frees an array from rv_feeds_load. Accepts NULL. */
void rv_feeds_cfg_free(struct rv_feed_cfg *feeds, size_t n);

/* Reads each feed's cursor from ST and starts the worker thread, which
 * polls every feed at once and then when its interval is due. FEEDS is
 * copied; ST, W and M are borrowed and must outlive rv_feeds_stop.
 * Errors: RV_EINVAL (bad config), RV_ENOMEM, RV_EIO (thread, curl). */
int rv_feeds_start(struct rv_store *st, struct rv_writer *w, const struct rv_feed_cfg *feeds,
                   size_t n, struct rv_metrics *m, struct rv_feeds **out, struct rv_errbuf *err);

/* Stops the worker promptly (between chunks; an HTTP transfer is aborted;
 * a request already queued to the writer is waited for), joins it, frees.
 * Accepts NULL; sets *f to NULL. */
void rv_feeds_stop(struct rv_feeds **f);

/* Makes every feed due now (e.g. on SIGHUP) and wakes the worker. */
void rv_feeds_poll_now(struct rv_feeds *f);

/* Counters of one feed since start. */
struct rv_feed_stats {
    uint64_t polls;        /* poll attempts finished (any outcome) */
    uint64_t payloads;     /* payloads parsed and written */
    uint64_t unchanged;    /* skipped: same file / same body hash */
    uint64_t not_modified; /* HTTP 304 */
    uint64_t invalid;      /* payloads not of the format */
    uint64_t errors;       /* failed fetches */
    uint64_t skipped;      /* payloads skipped (too big, unreadable) */
    uint64_t sort_overflows; /* payloads written in runs (past sort_max_events) */
    uint64_t accepted, duplicates, rejected; /* records */
    unsigned consecutive_failures;
    char last_error[RV_ERRBUF_SIZE]; /* "" when the last poll succeeded */
    char last_skipped[RV_ERRBUF_SIZE]; /* reason of the last skip, "" if none */
};

/* Copies the counters of feed NAME. Errors: RV_ENOTFOUND. */
int rv_feeds_stats(struct rv_feeds *f, const char *name, struct rv_feed_stats *out);

/* Delay in ms before retrying a feed of config C after its FAILS-th
 * failure in a row (FAILS >= 1): D = backoff_min_s doubling per failure,
 * at most backoff_max_s and interval_s, then jittered uniformly within
 * [max(D/2, 1 s), D]; 1 s when D <= 1 s. SEED is rand_r's state. Any
 * thread (exposed for tests). */
uint64_t rv_feeds_backoff_ms(const struct rv_feed_cfg *c, unsigned fails, unsigned *seed);

#endif

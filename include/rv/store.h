/*
 * store: the LMDB environment. All mdb_* calls live here.
 *
 * Databases (keys big-endian, so LMDB order is time/seq order):
 *   events   source NUL id            -> u64 seq          (dedup)
 *   log      u64 seq                  -> log record (rv_event_encode + ingest time)
 *   series   country[2] viol res bin  -> struct rv_bin in a fixed binary form
 *   alerts   u64 alert seq            -> alert JSON text
 *   cursors  name                     -> caller bytes
 *   meta     name                     -> schema, epoch, rollup checkpoint,
 *                                        source ids, token hashes
 *
 * Rollups are accumulated in memory by the writer and checkpointed into
 * `series` (with the seq they cover, in the same txn) every
 * opts.rollup_flush_ms or when opts.rollup_flush_bins bins are dirty; on
 * open, bins are rebuilt from `log` past the checkpoint. So a crash loses
 * nothing and readers see rollups at most one flush interval old.
 * The dedup keys of new events are kept in memory the same way; when
 * opts.dedup_flush_keys have gathered they are frozen, sorted on a thread of
 * their own and written to `events` in key order in slices with the next
 * commits (meta "dedup_seq" is the seq they cover); the durable commit of
 * an event writes its `log` record (appended), cursors and at most a slice
 * of consecutive keys: random partner ids would otherwise dirty one
 * `events` leaf page per event.
 *
 * Threads: the write calls (rv_store_put_batch, _flush, _retention,
 * _meta_put) must come from one thread at a time (the writer);
 * rv_store_read_* / rv_store_get_* may run on any thread concurrently and
 * end their read txn before returning. Other processes may read the same
 * dir (rvctl query) and write meta (rvctl token); LMDB's lock serialises
 * writers across processes.
 */
#ifndef RV_STORE_H
#define RV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rv/err.h"
#include "rv/event.h"

#define RV_STORE_SCHEMA 2 /* 2: dedup keys checkpointed (meta dedup_seq); 1 is upgraded */
#define RV_STORE_MAX_SOURCES_PER_BIN 16 /* distinct sources counted exactly up to this */

enum rv_res { RV_RES_1M = 0, RV_RES_1H = 1, RV_RES_1D = 2, RV_RES_COUNT };

struct rv_store;

struct rv_store_opts {
    size_t map_size;            /* initial map size; grows by doubling on MDB_MAP_FULL (default 256 MiB) */
    size_t map_size_max;        /* growth stops here: RV_EFULL (default 1 TiB) */
    unsigned rollup_flush_ms;   /* checkpoint interval (default 1000) */
    size_t rollup_flush_bins;   /* checkpoint when this many bins are dirty (default 65536) */
    size_t dedup_flush_keys;    /* freeze the dedup keys for writing to `events` when this many
                                   are in memory (default 524288, ~30 MiB; up to twice that while
                                   a frozen set drains); all are written at close and retention */
    unsigned dedup_filter_max_mib; /* memory of the Bloom filter of the keys in `events` at
                                   most (default 1024: ~700M keys at its 0.4% false
                                   positives; past it, it keeps its size and errs more often) */
    bool read_only;             /* open for reading only (rvctl query) */
    bool meta_only;             /* admin tools beside a running daemon (rvctl token): no rollup
                                   rebuild or checkpoint; only rv_store_meta_put writes */
    bool no_sync;               /* tests/bench only: MDB_NOSYNC. Never in production */
    unsigned filter_rebuild_hold_ms; /* tests only: a rebuild of the dedup filter holds its
                                   snapshot this long before it is swapped in, so that the
                                   keys written meanwhile must reach it through the writer */
};

/* Fills the defaults. */
void rv_store_opts_default(struct rv_store_opts *o);

/* Opens or creates DIR (created mode 0700 if missing). OPTS may be NULL.
 * On success *out is yours; free with rv_store_close(). Rebuilds rollups
 * past the checkpoint. Errors: RV_EIO, RV_ECORRUPT, RV_EVERSION (another
 * schema version: refused, nothing changed), RV_ENOTFOUND (read_only and
 * no store there), RV_ENOMEM. */
int rv_store_open(const char *dir, const struct rv_store_opts *opts, struct rv_store **out,
                  struct rv_errbuf *err);

/* Checkpoints rollups (unless read-only), closes, sets *st to NULL.
 * Accepts NULL and *st == NULL. */
void rv_store_close(struct rv_store **st);

/* ------------------------------------------------------------ writes */

struct rv_cursor_rec {
    const char *name; /* <= 200 bytes */
    const void *val;
    size_t len;
};

struct rv_alert_rec {
    uint64_t seq;     /* assigned by the aggregator; must exceed every stored alert seq */
    const char *json; /* the alert state change, JSON text */
    size_t len;
};

enum rv_outcome { RV_OUT_ACCEPTED = 0, RV_OUT_DUPLICATE = 1 };

struct rv_put_result {
    uint64_t seq;    /* log seq of the event (the stored one for a duplicate) */
    uint8_t outcome; /* enum rv_outcome */
};

/* Commits, in one durable transaction: the N events (deduplicated by
 * (source, id), including within EVS; each new one appended to `log` with
 * the next seq and added to the rollups), the NC cursors and the NA
 * alerts. RES (N entries) gets each event's outcome. Borrows everything.
 * On error nothing is written and the in-memory rollups are unchanged.
 * Errors: RV_EFULL (disk full or map at map_size_max: nothing written,
 * retry later works), RV_EINVAL (bad alert seq, cursor name), RV_EIO. */
int rv_store_put_batch(struct rv_store *st, const struct rv_event *evs, size_t n,
                       const struct rv_cursor_rec *cur, size_t nc, const struct rv_alert_rec *al,
                       size_t na, struct rv_put_result *res, struct rv_errbuf *err);

/* Checkpoints rollups now (and the dedup keys if enough have gathered).
 * Errors: RV_EFULL, RV_EIO, RV_ENOMEM. */
int rv_store_flush(struct rv_store *st, struct rv_errbuf *err);

/* True when a checkpoint is due (interval passed, or enough dirty bins or
 * dedup keys in memory). */
bool rv_store_checkpoint_due(struct rv_store *st);

/* MANUAL true: rv_store_put_batch no longer checkpoints by itself; the
 * caller calls rv_store_flush() when rv_store_checkpoint_due() says so, at
 * a moment of its choosing (the writer: after it has acknowledged the
 * batch, so a checkpoint never delays an ack). Writer thread only. */
void rv_store_manual_checkpoints(struct rv_store *st, bool manual);

/* ON true: a commit (rv_store_put_batch, rv_store_flush) syncs its data
 * pages but not the meta page that makes it current (LMDB's
 * MDB_NOMETASYNC), so it is atomic and survives a crash of the process,
 * but is durable against a crash of the machine only after the next
 * rv_store_sync() returns. Lets a writer commit the next transaction while
 * another thread syncs the last one. OFF: every commit durable on return
 * (the default). Writer thread only, between transactions. */
void rv_store_defer_meta_sync(struct rv_store *st, bool on);

/* Makes every transaction committed before the call durable (fdatasync of
 * the data file; nothing to do for a no_sync store). Any thread, also while
 * the writer thread commits. Errors: RV_EIO (then durability is unknown). */
int rv_store_sync(struct rv_store *st, struct rv_errbuf *err);

/* Deletes log records ingested before NOW_MS - HORIZON_MS (after a
 * checkpoint so rollups keep them). Dedup keys stay so a re-sent old event
 * is still a duplicate. *deleted (may be NULL) gets the count. */
int rv_store_retention(struct rv_store *st, int64_t horizon_ms, int64_t now_ms, size_t *deleted,
                       struct rv_errbuf *err);

/* Writes a meta key (names starting with "tok:" are for tokens; the store
 * reserves "schema", "epoch", "rollup_seq", "dedup_seq", "seq_floor",
 * "src:*"). Errors: RV_EINVAL,
 * RV_EIO. VAL NULL deletes the key. */
int rv_store_meta_put(struct rv_store *st, const char *name, const void *val, size_t len,
                      struct rv_errbuf *err);

/* ------------------------------------------------------------- reads */

/* One rollup bin. */
struct rv_bin {
    char country[3];
    uint8_t violation;
    uint8_t res;          /* enum rv_res */
    int64_t start_ms;     /* bin start */
    uint64_t events;      /* events in the bin */
    uint64_t count;       /* sum of event count (probes with a value excluded) */
    double weight;        /* sum of count * confidence * severity / 3 (same events) */
    uint16_t n_sources;   /* distinct sources, saturating at RV_STORE_MAX_SOURCES_PER_BIN */
    uint16_t sources[RV_STORE_MAX_SOURCES_PER_BIN]; /* source ids seen */
    uint64_t probe_n;     /* probe events with a value (a probe without one is counted) */
    double probe_min, probe_max, probe_sum;
};

/* Return non-zero from a callback to stop early. */
typedef int (*rv_bin_cb)(void *arg, const struct rv_bin *b);
typedef int (*rv_log_cb)(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev);
typedef int (*rv_alert_cb)(void *arg, uint64_t seq, const char *json, size_t len);

/* Bins of (COUNTRY, VIOLATION, RES) with FROM_MS <= start < TO_MS, in time
 * order. Errors: RV_EINVAL, RV_EIO. */
int rv_store_read_series(struct rv_store *st, const char *country, int violation, int res,
                         int64_t from_ms, int64_t to_ms, rv_bin_cb cb, void *arg,
                         struct rv_errbuf *err);

/* For every (country, violation) with data at RES, its latest bin. */
int rv_store_read_overview(struct rv_store *st, int res, rv_bin_cb cb, void *arg,
                           struct rv_errbuf *err);

/* Log records with seq >= FROM_SEQ in seq order, at most MAX (0 = all).
 * EV is valid only during the callback. */
int rv_store_read_log(struct rv_store *st, uint64_t from_seq, size_t max, rv_log_cb cb, void *arg,
                      struct rv_errbuf *err);

/* Same as rv_store_read_log, without copying: EV points into the
 * store's map (see struct rv_event_view in rv/event.h) and is valid only
 * during the callback; nothing is allocated per record. For hot readers
 * (the aggregator's replay). */
typedef int (*rv_log_view_cb)(void *arg, uint64_t seq, int64_t ingest_ms,
                              const struct rv_event_view *ev);
int rv_store_read_log_view(struct rv_store *st, uint64_t from_seq, size_t max, rv_log_view_cb cb,
                           void *arg, struct rv_errbuf *err);

struct rv_event_filter {
    const char *country;   /* NULL = any */
    int violation;         /* -1 = any */
    const char *source;    /* NULL = any */
    int64_t from_ms, to_ms; /* event time range [from, to); 0,0 = any */
    uint64_t after_seq;    /* only seq > after_seq */
    size_t limit;          /* 0 = no limit */
};
/* Log records matching F, in seq order (a scan of the log). */
int rv_store_read_events(struct rv_store *st, const struct rv_event_filter *f, rv_log_cb cb,
                         void *arg, struct rv_errbuf *err);

/* Alerts with seq > SINCE in seq order. */
int rv_store_read_alerts(struct rv_store *st, uint64_t since, rv_alert_cb cb, void *arg,
                         struct rv_errbuf *err);

/* Copies cursor NAME into BUF (CAP); *len gets its full length.
 * Errors: RV_ENOTFOUND, RV_ETOOBIG (buf too small; *len set). */
int rv_store_get_cursor(struct rv_store *st, const char *name, void *buf, size_t cap, size_t *len);
/* Same for a meta key. */
int rv_store_get_meta(struct rv_store *st, const char *name, void *buf, size_t cap, size_t *len);
/* Calls CB for each meta key starting with PREFIX. */
typedef int (*rv_meta_cb)(void *arg, const char *name, const void *val, size_t len);
int rv_store_read_meta_prefix(struct rv_store *st, const char *prefix, rv_meta_cb cb, void *arg);

/* Name of source id ID into BUF; RV_ENOTFOUND if unknown. */
int rv_store_source_name(struct rv_store *st, uint16_t id, char *buf, size_t cap);

/* Last committed log seq (0 when empty), last alert seq, store epoch
 * (random, written once at creation). */
uint64_t rv_store_last_seq(struct rv_store *st);
uint64_t rv_store_last_alert_seq(struct rv_store *st);
uint64_t rv_store_epoch(struct rv_store *st);

/* Counters for /metrics. Any thread. */
struct rv_store_stats {
    uint64_t commits;          /* write txns committed */
    uint64_t events_accepted;
    uint64_t events_duplicate;
    uint64_t commit_ns_total;  /* sum of commit durations */
    uint64_t commit_ns_last;
    uint64_t map_resizes;
    uint64_t errors_full;
    uint64_t rollup_flushes;
    uint64_t dedup_keys_memory; /* dedup keys not yet (all) in `events`: active + frozen */
    uint64_t dedup_filter_skips; /* new keys the filter of `events` ruled out (no lookup) */
    uint64_t dedup_filter_false; /* keys it let through that `events` did not have */
    size_t map_size;
};
void rv_store_get_stats(struct rv_store *st, struct rv_store_stats *out);

/* Bin start of T at RES. */
int64_t rv_bin_start(int64_t t_ms, int res);
const char *rv_res_name(int res); /* "1m" "1h" "1d" */
int rv_res_from_name(const char *s); /* -1 if unknown */

#endif

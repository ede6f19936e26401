/*
 * agg: the aggregator. It turns the store's commit log into early-warning
 * alerts by (country, violation[, admin1]) and rollup cells for the
 * dashboard.
 *
 * Two layers:
 *   - the engine (rv_agg_engine_*): a deterministic core. It is driven only
 *     by the events pushed into it, in log order, and their event time; it
 *     never reads a clock. The same log pushed twice gives the same alerts,
 *     byte for byte. Not thread-safe: one thread owns an engine.
 *   - the stage (rv_agg_start / rv_agg_stop): a thread that follows the
 *     log over RV_EP_COMMITS (see rv/links.h), feeds the engine, writes the
 *     alerts with its cursor through the writer (one durable txn) and then
 *     publishes them, with coalesced cells, on RV_EP_UPDATES.
 *   rv_backtest_main (`rvctl backtest`) replays files through the engine.
 *
 * Windows and watermark. Events are binned by event time into bins of
 * bin_s. The engine clock is the largest event time seen; the watermark is
 * that clock minus allowed_lateness_s. A bin closes (is evaluated, learnt
 * into the baseline) once its end is at or before the watermark; an event
 * for a closed bin is late. When its source has a larger lateness
 * (source_lateness_s: day-stamped feeds) and the event is inside it, it is
 * applied to its closed bin (stats.late_applied): counted into what that
 * bin learnt, scored, and the alert re-evaluated, raise-only (lowering
 * waits for closed bins), in log order, so live and replay agree. Other
 * late events are too late: counted (stats.late) and logged, not used.
 * Counted bursts may open or escalate an alert before their bin closes
 * (a partial count that is already surprising only grows); lowering a
 * level waits for closed bins.
 *
 * Config: the "aggregator" section of the config file. Keys, defaults and
 * ranges (see docs/aggregator.md for what they do):
 *   bin_s                 3600   bin width, s; must divide 86400 (300..86400)
 *   allowed_lateness_s    600    watermark lag behind the newest event time (0..604800)
 *   source_lateness_s     {"ooni":172800,"acled":604800,"gdelt":3600}
 *                                per-source lateness by source name prefix, seconds
 *                                (0..604800, at most 16; replaces the default table):
 *                                an event behind the watermark but inside its
 *                                source's lateness is applied to its closed bin
 *   baseline_weeks        4      same-hour-of-week history kept, weeks (1..12)
 *   baseline_min_weeks    2      weeks needed before the seasonal median is used;
 *                                before that an EWMA of the same slot of the day
 *                                (1..12, <= baseline_weeks)
 *   ewma_alpha            0.3    EWMA weight of the newest day (0.001..1)
 *   warmup_bins           168    bins a series must be observed before it can alert (0..10000)
 *   lambda_min            0.5    floor of the expected count of a bin (0.01..1000)
 *   spread_k              1.0    the expected count is baseline + spread_k * robust spread (0..10)
 *   cusum_k               2.0    shift the Poisson CUSUM looks for: expected count x cusum_k
 *                                (1.1..10)
 *   cusum_h               10.0   CUSUM log-likelihood ratio that scores threshold_warning
 *                                (0.1..1000)
 *   probe_drop_min        0.25   relative drop (or rise) of a probe bin that counts (0.01..1)
 *   probe_scale           5.0    probe score = probe_scale * sum of relative drops over
 *                                consecutive bins (relative drop x duration) (0.1..100)
 *   probe_stale_bins      6      bins without probe data that end an outage run (1..10000)
 *   corroboration_bins    3      bins in which distinct sources are counted (1..64)
 *   corroboration_bonus   0.1    score x (1 + bonus x (agreeing sources - 1)) (0..10)
 *   threshold_watch       3.0    score of watch (0.1..1000)
 *   threshold_warning     5.0    score of warning (> watch)
 *   threshold_critical    7.0    score of critical (> warning)
 *   hysteresis            0.25   a level holds while score >= (1 - hysteresis) x threshold (0..0.9)
 *   cooldown_bins         2      closed bins below the hold line before lowering (1..1000)
 *   admin1                true   also keep (country, violation, admin1) series
 *   max_series            100000 series kept; events of new series past it are ignored
 *   cell_interval_ms      250    stage: at most one cell update per cell per interval (10..60000)
 *   poll_ms               200    stage: look at the log at least this often (10..10000)
 *   cursor_interval_ms    1000   stage: write the cursor at least this often when it moved
 * Corroboration caps the level at the number of agreeing sources, counted
 * as distinct ev->source (partner or feed; the signals a payload's
 * attrs.datasource names are one witness with their feed) (1 source:
 * watch, 2: warning, 3+: critical), except a probe drop of a whole country
 * (internet_shutdown probes, admin1 empty), which needs no second source.
 */
#ifndef RV_AGG_H
#define RV_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rv/err.h"
#include "rv/event.h"

struct rv_store;
struct rv_writer;
struct rv_metrics;

/* ---------------------------------------------------------------- params */

#define RV_AGG_SRC_LATENESS_MAX 16

/* A per-source lateness: sources whose name starts with PREFIX. */
struct rv_agg_src_lateness {
    char prefix[RV_SOURCE_MAX + 1];
    int64_t s;
};

struct rv_agg_params {
    int64_t bin_s;
    int64_t lateness_s;
    /* longest matching prefix wins; sources matching none: lateness_s */
    struct rv_agg_src_lateness src_lateness[RV_AGG_SRC_LATENESS_MAX];
    int nsrc_lateness;
    int64_t weeks;
    int64_t min_weeks;
    double ewma_alpha;
    int64_t warmup_bins;
    double lambda_min;
    double spread_k;
    double cusum_k;
    double cusum_h;
    double probe_drop_min;
    double probe_scale;
    int64_t probe_stale_bins;
    int64_t corroboration_bins;
    double corroboration_bonus;
    double threshold[4]; /* [1] watch, [2] warning, [3] critical; [0] unused */
    double hysteresis;
    int64_t cooldown_bins;
    bool admin1;
    int64_t max_series;
    int64_t cell_interval_ms;
    int64_t poll_ms;
    int64_t cursor_interval_ms;
};

/* Fills P from CFG (the "aggregator" object; NULL: all defaults). Unknown
 * keys are rejected ("aggregator.foo: unknown key"), as are values out of
 * range ("aggregator.bin_s: must be an integer 300..86400").
 * Errors: RV_EINVAL (P holds defaults for the keys not yet read). */
int rv_agg_params_from_json(const cJSON *cfg, struct rv_agg_params *p, struct rv_errbuf *err);

/* Levels and alert states, as named in the JSON. */
enum rv_agg_level { RV_LVL_NONE = 0, RV_LVL_WATCH, RV_LVL_WARNING, RV_LVL_CRITICAL };
enum rv_agg_state { RV_AST_OPENED = 0, RV_AST_ESCALATED, RV_AST_DEESCALATED, RV_AST_RESOLVED };
const char *rv_agg_level_name(int level);  /* "none" "watch" "warning" "critical"; NULL */
int rv_agg_level_from_name(const char *s); /* -1 if unknown */
const char *rv_agg_state_name(int state);

/* ---------------------------------------------------------------- engine */

/* One alert state change, valid during the callback only. json is the
 * record stored in `alerts` and published (no "type" key). */
struct rv_agg_alert {
    uint64_t seq;
    int state;            /* enum rv_agg_state */
    int level;            /* level after the change; for resolved, the level it had */
    int prev_level;       /* level before the change (0 when opened) */
    const char *country;
    int violation;
    const char *admin1;   /* NULL: national */
    double score;
    int64_t opened_ms;
    int64_t updated_ms;   /* engine clock (newest event time) at the change */
    const char *json;
    size_t len;
};

/* One dashboard cell (national country x violation), valid during the
 * callback only. */
struct rv_agg_cell {
    const char *country;
    int violation;
    const char *json;
    size_t len;
};

struct rv_agg_sink {
    void (*alert)(void *arg, const struct rv_agg_alert *a); /* may be NULL */
    void *arg;
};

struct rv_agg_engine_stats {
    uint64_t events;     /* pushed */
    uint64_t late;       /* too late: their bin was closed (and past their source's lateness) */
    uint64_t late_applied; /* late for the watermark, inside their source's lateness:
                            * applied to their closed bin */
    uint64_t ignored;    /* past max_series */
    uint64_t series;     /* series kept */
    uint64_t bins_closed; /* bin closings (all series) */
    uint64_t alerts;     /* state changes emitted */
    uint64_t last_alert_seq;
    int64_t clock_ms;    /* newest event time (INT64_MIN before the first) */
    int64_t first_ms;    /* oldest event time seen (INT64_MAX before the first) */
    uint64_t countries;  /* distinct countries seen */
};

struct rv_agg_engine;

/* New engine with parameters P (copied). Alert seqs start after
 * LAST_ALERT_SEQ. SINK (copied; may be NULL) receives each state change
 * on the calling thread of rv_agg_engine_push. Errors: RV_EINVAL (bad P),
 * RV_ENOMEM. */
int rv_agg_engine_new(const struct rv_agg_params *p, uint64_t last_alert_seq,
                      const struct rv_agg_sink *sink, struct rv_agg_engine **out);
void rv_agg_engine_free(struct rv_agg_engine **e);

/* Feeds one log record (SEQ is its log seq, used to order evidence).
 * Borrows EV. Errors: RV_ENOMEM (the event is lost to the engine). */
int rv_agg_engine_push(struct rv_agg_engine *e, uint64_t seq, const struct rv_event *ev);

/* Calls CB for every cell changed since the last call, in series order,
 * and marks them clean. Errors: RV_ENOMEM. */
int rv_agg_engine_cells(struct rv_agg_engine *e,
                        void (*cb)(void *arg, const struct rv_agg_cell *c), void *arg);

/* Next alert seq will be SEQ + 1 (used after a rebuild). */
void rv_agg_engine_set_alert_seq(struct rv_agg_engine *e, uint64_t seq);
void rv_agg_engine_get_stats(const struct rv_agg_engine *e, struct rv_agg_engine_stats *out);

/* Replays the whole log of ST (seq order) through a fresh engine with P,
 * alert seqs from 1, calling SINK. What `rvctl backtest` and the stage's
 * rebuild do; tests compare it with the live stage. STATS may be NULL.
 * Errors: RV_ENOMEM, RV_EIO. */
int rv_agg_replay(struct rv_store *st, const struct rv_agg_params *p, const struct rv_agg_sink *sink,
                  struct rv_agg_engine_stats *stats, struct rv_errbuf *err);

/* ----------------------------------------------------------------- stage */

struct rv_agg;

/* Starts the aggregator thread. ZCTX: the shared zmq context; it binds
 * RV_EP_UPDATES (PUB) and connects RV_EP_COMMITS (SUB) before returning.
 * ST and W are borrowed and must outlive rv_agg_stop (stop the aggregator
 * before the writer). CFG: the "aggregator" section (NULL: defaults).
 * M may be NULL. On start the thread rebuilds the engine from the log up
 * to the "aggregator" cursor (alerts already stored are not re-emitted),
 * then follows new commits. Errors: RV_EINVAL (config; ERR says which
 * key), RV_EIO (zmq bind, thread), RV_ENOMEM. */
int rv_agg_start(void *zctx, struct rv_store *st, struct rv_writer *w, const cJSON *cfg,
                 struct rv_metrics *m, struct rv_agg **out, struct rv_errbuf *err);

/* Processes what is committed, writes its alerts and cursor, publishes,
 * stops the thread, frees. Accepts NULL and *a == NULL; sets *a to NULL. */
void rv_agg_stop(struct rv_agg **a);

/* Log seq the stage has processed and made durable (its cursor). Any
 * thread. */
uint64_t rv_agg_cursor(struct rv_agg *a);

/* -------------------------------------------------------------- backtest */

/* `rvctl backtest ...` with ARGV[0] == "backtest". Prints to stdout;
 * errors to stderr. Returns 0 when it ran, 2 on bad usage or input. */
int rv_backtest_main(int argc, char **argv);

#endif

/*
 * feed_sorted: one payload's events handed on in event-time order.
 *
 * The aggregator reads the log by event time with a watermark (an event
 * more than the allowed lateness behind the newest one is late). A feed
 * payload is not in that order: an IODA /signals/raw response lists each
 * entity's whole series one entity after the other, ACLED exports are
 * usually newest first. Written as parsed, every entity after the first
 * (every ACLED row after the newest) is late, live and in a backtest. So
 * the payload formats are parsed into memory and their events emitted
 * stable-sorted by time. NDJSON, our own event model, is streamed and
 * possibly huge: it stays in its own order, which partners publish in time
 * order.
 *
 * The sort is bounded: a held event costs ~575 bytes (the 424-byte struct
 * rv_event, its strings, the array's slack), ~120 bytes per byte of an
 * IODA payload, so a whole payload of max_bytes (256 MiB) would need GBs.
 * At most sink->sort_max events are held (RV_FEED_SORT_MAX_DEFAULT,
 * ~115 MB); past that the held run is sorted and emitted and the next
 * run collected, so a bigger payload goes out in time-ordered runs of
 * sort_max (an event that then falls behind the aggregator's watermark is
 * stored and counted late, as unsorted). The array grows by doubling up to
 * the bound; when it cannot grow (ENOMEM) the events held so far make the
 * run instead, so the sort never fails a payload for lack of memory but for
 * its first block (RV_FEED_SORT_FIRST events).
 *
 * The feed workers (ingest/feeds.c) and `rvctl backtest`
 * (aggregator/backtest.c) both take their parser from
 * rv_feed_parser_sorted(), so live ingest and a backtest of the same
 * payload write the same log.
 *
 * Reentrant: no state outside the call; any thread.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rv/err.h"
#include "rv/event.h"
#include "rv/feed.h"

#define RV_FEED_SORT_FIRST 1024 /* events of the first block */

struct sorted_ctx {
    const struct rv_feed_sink *sink; /* the caller's */
    struct rv_event *evs;            /* owned, in payload order */
    struct sorted_key *keys;         /* owned, CAP slots: the sort of a run */
    size_t n, cap, max;
    int rc;                          /* RV_ENOMEM: not even the first block */
    bool stopped;                    /* the sink asked to stop: emit nothing more */
};

/* Sort key: time, then payload position (qsort is not stable). */
struct sorted_key {
    int64_t time_ms;
    size_t i;
};

static int cmp_key(const void *a, const void *b)
{
    const struct sorted_key *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void release_held(struct sorted_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        rv_event_release(&c->evs[i]);
    c->n = 0;
}

/* Emits the held run stable-sorted by time and empties it; a stop asked by
 * sink->emit releases the rest and sets c->stopped. */
static void emit_run(struct sorted_ctx *c)
{
    size_t k = 0;

    for (size_t i = 0; i < c->n; i++) {
        c->keys[i].time_ms = c->evs[i].time_ms;
        c->keys[i].i = i;
    }
    if (c->n > 1)
        qsort(c->keys, c->n, sizeof(*c->keys), cmp_key);
    while (k < c->n && !c->stopped)
        if (c->sink->emit(c->sink->arg, &c->evs[c->keys[k++].i]) != 0)
            c->stopped = true;
    /* what was not emitted (or was, and left initialised) */
    for (; k < c->n; k++)
        rv_event_release(&c->evs[c->keys[k].i]);
    c->n = 0;
}

/* Grows both arrays towards c->max. False when it cannot (ENOMEM). */
static bool grow(struct sorted_ctx *c)
{
    size_t nc = c->cap ? c->cap * 2 : RV_FEED_SORT_FIRST;
    struct rv_event *ne;
    struct sorted_key *nk;

    if (nc > c->max)
        nc = c->max;
    ne = realloc(c->evs, nc * sizeof(*ne));
    if (!ne)
        return false;
    c->evs = ne;
    nk = realloc(c->keys, nc * sizeof(*nk));
    if (!nk)
        return false; /* evs is bigger than needed: harmless */
    c->keys = nk;
    c->cap = nc;
    return true;
}

static int collect(void *arg, struct rv_event *ev)
{
    struct sorted_ctx *c = arg;

    if (c->sink->stop && c->sink->stop(c->sink->arg) != 0) {
        c->stopped = true;
        release_held(c);
        rv_event_release(ev);
        return 1;
    }
    if (c->n == c->cap && (c->cap == c->max || !grow(c))) {
        if (c->n == 0) {
            c->rc = RV_ENOMEM; /* not even the first block */
            rv_event_release(ev);
            return 1;
        }
        /* the bound (or memory) reached: this run goes out now */
        if (c->sink->sort_run)
            c->sink->sort_run(c->sink->arg, c->n);
        emit_run(c);
        if (c->stopped) {
            rv_event_release(ev);
            return 1;
        }
    }
    c->evs[c->n++] = *ev; /* moves the owned strings */
    rv_event_init(ev);
    return 0;
}

static void pass_reject(void *arg, size_t record, const char *msg)
{
    struct sorted_ctx *c = arg;

    if (c->sink->reject)
        c->sink->reject(c->sink->arg, record, msg);
}

int rv_feed_parse_sorted(rv_feed_parse_fn parse, const char *buf, size_t len,
                         const struct rv_feed_sink *sink, struct rv_errbuf *err)
{
    struct sorted_ctx c = {sink, NULL, NULL, 0, 0, 0, RV_OK, false};
    struct rv_feed_sink mine;
    int rc;

    rv_err_clear(err);
    if (!parse || !sink || !sink->emit || !sink->source)
        return rv_err_set(err, RV_EINVAL, "sink: missing");
    c.max = sink->sort_max ? sink->sort_max : RV_FEED_SORT_MAX_DEFAULT;
    memset(&mine, 0, sizeof(mine));
    mine.source = sink->source;
    mine.emit = collect;
    mine.reject = pass_reject;
    mine.arg = &c;
    rc = parse(buf, len, &mine, err);
    if (c.rc == RV_ENOMEM) {
        release_held(&c);
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory for the payload sort");
    } else if (c.stopped) {
        release_held(&c); /* the sink knows why */
    } else {
        /* the parser's result stands (a partial payload stays partial) */
        emit_run(&c);
    }
    free(c.keys);
    free(c.evs);
    return rc;
}
static int parse_ooni_sorted(const char *buf, size_t len, const struct rv_feed_sink *sink,
                             struct rv_errbuf *err)
{
    return rv_feed_parse_sorted(rv_feed_parse_ooni, buf, len, sink, err);
}

static int parse_ioda_sorted(const char *buf, size_t len, const struct rv_feed_sink *sink,
                             struct rv_errbuf *err)
{
    return rv_feed_parse_sorted(rv_feed_parse_ioda, buf, len, sink, err);
}

static int parse_gdelt_sorted(const char *buf, size_t len, const struct rv_feed_sink *sink,
                              struct rv_errbuf *err)
{
    return rv_feed_parse_sorted(rv_feed_parse_gdelt, buf, len, sink, err);
}

static int parse_acled_sorted(const char *buf, size_t len, const struct rv_feed_sink *sink,
                              struct rv_errbuf *err)
{
    return rv_feed_parse_sorted(rv_feed_parse_acled, buf, len, sink, err);
}

rv_feed_parse_fn rv_feed_parser_sorted(const char *format)
{
    rv_feed_parse_fn p = rv_feed_parser(format);

    if (p == rv_feed_parse_ooni)
        return parse_ooni_sorted;
    if (p == rv_feed_parse_ioda)
        return parse_ioda_sorted;
    if (p == rv_feed_parse_gdelt)
        return parse_gdelt_sorted;
    if (p == rv_feed_parse_acled)
        return parse_acled_sorted;
    return p; /* ndjson (streamed in its own order) or NULL */
}

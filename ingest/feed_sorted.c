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
 * stable-sorted by time; the payload is already whole in memory (a file or
 * an HTTP body, capped by the feed's max_bytes), and the events of one
 * payload are the most a sort holds. NDJSON, our own event model, is
 * streamed and possibly huge: it stays in its own order, which partners
 * publish in time order.
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

struct sorted_ctx {
    const struct rv_feed_sink *sink; /* the caller's */
    struct rv_event *evs;            /* owned, in payload order */
    size_t n, cap;
    bool oom;
};

/* Sort key: time, then payload position (qsort is not stable). */
struct sorted_key {
    int64_t time_ms;
    size_t i;
};

static int collect(void *arg, struct rv_event *ev)
{
    struct sorted_ctx *c = arg;

    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        struct rv_event *ne = realloc(c->evs, nc * sizeof(*ne));
        if (!ne) {
            c->oom = true;
            rv_event_release(ev);
            return 1;
        }
        c->evs = ne;
        c->cap = nc;
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

static int cmp_key(const void *a, const void *b)
{
    const struct sorted_key *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int rv_feed_parse_sorted(rv_feed_parse_fn parse, const char *buf, size_t len,
                         const struct rv_feed_sink *sink, struct rv_errbuf *err)
{
    struct sorted_ctx c = {sink, NULL, 0, 0, false};
    struct rv_feed_sink mine;
    struct sorted_key *keys = NULL;
    size_t k = 0;
    int rc;

    rv_err_clear(err);
    if (!parse || !sink || !sink->emit || !sink->source)
        return rv_err_set(err, RV_EINVAL, "sink: missing");
    mine.source = sink->source;
    mine.emit = collect;
    mine.reject = pass_reject;
    mine.arg = &c;
    rc = parse(buf, len, &mine, err);
    if (c.oom) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory sorting %zu events", c.n);
        goto out;
    }
    if (c.n > 0 && !(keys = malloc(c.n * sizeof(*keys)))) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory sorting %zu events", c.n);
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        keys[i].time_ms = c.evs[i].time_ms;
        keys[i].i = i;
    }
    if (c.n > 1)
        qsort(keys, c.n, sizeof(*keys), cmp_key);
    /* the parser's result stands (a partial payload stays partial); a
     * stop asked by the sink ends the emission */
    for (; k < c.n; k++)
        if (sink->emit(sink->arg, &c.evs[keys[k].i]) != 0) {
            k++;
            break;
        }
out:
    /* what was not emitted (or was, and left initialised) */
    for (size_t i = k; i < c.n; i++)
        rv_event_release(&c.evs[keys ? keys[i].i : i]);
    free(keys);
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

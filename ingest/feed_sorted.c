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
 * The sort is bounded: an event is held in the store's encoding (every
 * field; ~100 bytes for a probe, ~200 with a title and a URL, more with
 * attrs) plus a 24-byte key, and decoded again when it goes out, so a
 * whole payload of max_bytes (256 MiB) of IODA values could still need GBs.
 * At most sink->sort_max events are held (RV_FEED_SORT_MAX_DEFAULT,
 * ~25-50 MB with the doubling's slack); past that the held run is sorted and emitted and the next
 * run collected, so a bigger payload goes out in time-ordered runs of
 * sort_max (an event that then falls behind the aggregator's watermark is
 * stored and counted late, as unsorted). The keys and the bytes grow by
 * doubling up to the bound; when they cannot grow (ENOMEM) the events held
 * so far make the run instead, so the sort never fails a payload for lack
 * of memory but for its first block (RV_FEED_SORT_FIRST keys, HELD_FIRST
 * bytes) or the strings of an event it decodes.
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
#define HELD_FIRST (256u * 1024u) /* bytes of the first block of encoded events */

struct sorted_ctx {
    const struct rv_feed_sink *sink; /* the caller's */
    unsigned char *held;             /* owned: the events held, encoded, in payload order */
    size_t used, hcap;               /* bytes of held used, allocated */
    struct sorted_key *keys;         /* owned, CAP slots: one an event held */
    size_t n, cap, max;
    int rc;                          /* RV_ENOMEM: not even the first block */
    bool stopped;                    /* the sink asked to stop: emit nothing more */
};

/* Sort key: time, then payload position (qsort is not stable); where the
 * event's encoded form is in held. */
struct sorted_key {
    int64_t time_ms;
    size_t off;
    size_t len;
};

static int cmp_key(const void *a, const void *b)
{
    const struct sorted_key *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void release_held(struct sorted_ctx *c)
{
    c->n = 0;
    c->used = 0;
}

/* Emits the held run stable-sorted by time and empties it; a stop asked by
 * sink->emit sets c->stopped. Each event is decoded from its held form
 * (the store's encoding, which keeps every field) just before it goes. */
static void emit_run(struct sorted_ctx *c)
{
    if (c->n > 1)
        qsort(c->keys, c->n, sizeof(*c->keys), cmp_key);
    for (size_t k = 0; k < c->n && !c->stopped; k++) {
        struct rv_event ev;
        if (rv_event_decode(c->held + c->keys[k].off, c->keys[k].len, &ev) != RV_OK) {
            /* only memory for its strings can fail here: what is not
             * emitted is as if the payload stopped */
            c->rc = RV_ENOMEM;
            c->stopped = true;
            break;
        }
        if (c->sink->emit(c->sink->arg, &ev) != 0)
            c->stopped = true;
    }
    release_held(c);
}

/* Makes room for one more key and NEED more bytes, growing towards c->max
 * keys. False when it cannot (the bound, or ENOMEM). */
static bool room(struct sorted_ctx *c, size_t need)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : RV_FEED_SORT_FIRST;
        struct sorted_key *nk;
        if (c->cap == c->max)
            return false;
        if (nc > c->max)
            nc = c->max;
        nk = realloc(c->keys, nc * sizeof(*nk));
        if (!nk)
            return false;
        c->keys = nk;
        c->cap = nc;
    }
    if (need > c->hcap - c->used) {
        size_t nb = c->hcap ? c->hcap : HELD_FIRST;
        unsigned char *nh;
        while (nb - c->used < need)
            nb *= 2;
        nh = realloc(c->held, nb);
        if (!nh)
            return false;
        c->held = nh;
        c->hcap = nb;
    }
    return true;
}

static int collect(void *arg, struct rv_event *ev)
{
    struct sorted_ctx *c = arg;
    size_t need = rv_event_encoded_size(ev);
    int len;

    if (c->sink->stop && c->sink->stop(c->sink->arg) != 0) {
        c->stopped = true;
        release_held(c);
        rv_event_release(ev);
        return 1;
    }
    if (!room(c, need)) {
        if (c->n == 0) {
            c->rc = RV_ENOMEM; /* not even the first block */
            rv_event_release(ev);
            return 1;
        }
        /* the bound (or memory) reached: this run goes out now */
        if (c->sink->sort_run)
            c->sink->sort_run(c->sink->arg, c->n);
        emit_run(c);
        if (c->stopped || !room(c, need)) {
            if (!c->stopped)
                c->rc = RV_ENOMEM;
            rv_event_release(ev);
            return 1;
        }
    }
    len = rv_event_encode(ev, c->held + c->used, c->hcap - c->used);
    if (len < 0) {
        /* a validated event always encodes (its strings are within the
         * limits); should one not, it goes out now, out of order, rather
         * than be lost */
        if (c->sink->emit(c->sink->arg, ev) != 0) {
            c->stopped = true;
            return 1;
        }
        return 0;
    }
    c->keys[c->n].time_ms = ev->time_ms;
    c->keys[c->n].off = c->used;
    c->keys[c->n].len = (size_t)len;
    c->n++;
    c->used += (size_t)len;
    rv_event_release(ev);
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
    struct sorted_ctx c = {sink, NULL, 0, 0, NULL, 0, 0, 0, RV_OK, false};
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
    if (c.rc == RV_ENOMEM && rc == RV_OK)
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory for the payload sort");
    free(c.keys);
    free(c.held);
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

/*
 * agg_dataset.h: what the aggregator stage and backtest tests share: the
 * CHECK macros, writer commit hooks that publish committed seq ranges like
 * rightsviewd does, and a deterministic synthetic dataset builder.
 */
#ifndef RV_TEST_AGG_DATASET_H
#define RV_TEST_AGG_DATASET_H

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/writer.h"

#include "check.h"

#define CHECK_RC(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != RV_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, rv_strerror(rc_));        \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

/* -------------------------------------------------- writer commit hooks */

struct commits {
    void *zctx;
    void *pub; /* writer thread */
};

__attribute__((unused)) static void hk_start(void *arg)
{
    struct commits *c = arg;
    int zero = 0;

    c->pub = zmq_socket(c->zctx, ZMQ_PUB);
    zmq_setsockopt(c->pub, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(c->pub, RV_EP_COMMITS) != 0)
        abort();
}

__attribute__((unused)) static void hk_commit(void *arg, uint64_t first, uint64_t last, uint64_t last_alert)
{
    struct commits *c = arg;
    unsigned char f[24];

    rv_put_be64(f, first);
    rv_put_be64(f + 8, last);
    rv_put_be64(f + 16, last_alert);
    zmq_send(c->pub, f, sizeof f, ZMQ_DONTWAIT);
}

__attribute__((unused)) static void hk_stop(void *arg)
{
    struct commits *c = arg;

    zmq_close(c->pub);
}

/* ------------------------------------------------------------ dataset */

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

__attribute__((unused)) static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

__attribute__((unused)) static int poisson(double lam)
{
    double l = exp(-lam), p = 1;
    int k = 0;

    do {
        k++;
        p *= urand();
    } while (p > l);
    return k - 1;
}

struct ds {
    struct rv_event *ev;
    size_t n, cap;
};

__attribute__((unused)) static void add(struct ds *d, const char *source, const char *country, int violation, int kind,
                int64_t t, bool has_value, double value)
{
    static unsigned long id;
    struct rv_event *e;

    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4096;
        d->ev = realloc(d->ev, d->cap * sizeof *d->ev);
        if (d->ev == NULL)
            abort();
    }
    e = &d->ev[d->n++];
    rv_event_init(e);
    snprintf(e->source, sizeof e->source, "%s", source);
    snprintf(e->id, sizeof e->id, "%s-%lu", source, ++id);
    memcpy(e->country, country, 3);
    e->violation = (uint8_t)violation;
    e->kind = (uint8_t)kind;
    e->time_ms = t;
    e->has_value = has_value;
    e->value = value;
}

/* Releases the events of D and D's array. */
__attribute__((unused)) static void ds_free(struct ds *d)
{
    for (size_t i = 0; i < d->n; i++)
        rv_event_release(&d->ev[i]);
    free(d->ev);
    memset(d, 0, sizeof *d);
}

/* --------------------------------------------------------------- helpers */

__attribute__((unused)) static int submit(struct rv_writer *w, const struct rv_event *evs, size_t n)
{
    struct rv_put_result *res = calloc(n ? n : 1, sizeof *res);
    size_t off = 0;
    int rc = RV_OK;

    while (off < n && rc == RV_OK) {
        struct rv_write_req req;
        size_t k = n - off < 500 ? n - off : 500;
        memset(&req, 0, sizeof req);
        req.evs = evs + off;
        req.n = k;
        req.res = res;
        rc = rv_writer_submit_wait(w, &req, 10000);
        off += k;
    }
    free(res);
    return rc;
}

struct buf {
    char *p;
    size_t len;
    size_t n;
};

__attribute__((unused)) static void buf_add(struct buf *b, const char *s, size_t len)
{
    b->p = realloc(b->p, b->len + len + 2);
    if (b->p == NULL)
        abort();
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len++] = '\n';
    b->p[b->len] = '\0';
    b->n++;
}

__attribute__((unused)) static int on_stored(void *arg, uint64_t seq, const char *json, size_t len)
{
    (void)seq;
    buf_add(arg, json, len);
    return 0;
}


#endif

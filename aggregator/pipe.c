/*
 * pipe: reading and aggregating on two threads (see engine_int.h).
 *
 * Replaying a log is two chains of work: walking LMDB and decoding each
 * record, then the engine. They overlap when the reading runs on a thread
 * of its own and hands the engine whole chunks of events, in the order it
 * read them, so the engine sees exactly the sequence a single thread would
 * give it (the same alerts, byte for byte).
 *
 * A chunk holds up to CHUNK_EVENTS views and the bytes of their strings,
 * copied (the producer's views point into a read transaction that ends
 * before the engine gets to them). NSLOTS chunks circulate: the producer
 * fills the free ones in turn, the consumer (the caller's thread) pushes
 * the full ones in the same turn. A chunk's strings never move once an
 * event points at them: an event that does not fit in the chunk's byte
 * buffer starts the next chunk; an empty chunk grows its buffer.
 *
 * Without a second thread (pthread_create fails) the producer runs on the
 * caller's thread and each event goes straight into the engine.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rv/log.h"

#include "engine_int.h"

#define CHUNK_EVENTS 1024
#define CHUNK_BYTES (256 * 1024) /* initial; grown for one very large event */
#define NSLOTS 4

struct chunk {
    size_t n;
    uint64_t seq[CHUNK_EVENTS];
    struct rv_event_view v[CHUNK_EVENTS];
    char *bytes;
    size_t blen, bcap;
    bool full;
};

struct rv_agg_pipe {
    struct rv_agg_engine *eng; /* direct mode: no thread */
    int direct_rc;
    pthread_mutex_t mu;
    pthread_cond_t to_consumer, to_producer;
    struct chunk slot[NSLOTS];
    size_t fill;      /* producer: the slot being filled (producer only) */
    bool filling;     /* producer holds slot[fill] */
    bool done;        /* producer finished (mu) */
    bool stop;        /* consumer failed: producer should stop (mu) */
    rv_agg_produce_fn produce;
    void *arg;
    int prod_rc;
    struct rv_errbuf prod_err;
};

/* Hands slot[fill] to the consumer and waits for the next one to be free.
 * Returns 1 when the consumer has stopped. */
static int pass_chunk(struct rv_agg_pipe *pp)
{
    int stop;

    pthread_mutex_lock(&pp->mu);
    pp->slot[pp->fill].full = true;
    pthread_cond_signal(&pp->to_consumer);
    pp->fill = (pp->fill + 1) % NSLOTS;
    while (pp->slot[pp->fill].full && !pp->stop)
        pthread_cond_wait(&pp->to_producer, &pp->mu);
    stop = pp->stop;
    pthread_mutex_unlock(&pp->mu);
    pp->slot[pp->fill].n = 0;
    pp->slot[pp->fill].blen = 0;
    return stop;
}

int rv_agg_pipe_put(struct rv_agg_pipe *pp, uint64_t seq, const struct rv_event_view *ev)
{
    struct chunk *c;
    size_t need = rv_event_view_bytes(ev);

    if (pp->eng != NULL) {
        pp->direct_rc = rv_agg_engine_push_view(pp->eng, seq, ev);
        return pp->direct_rc != RV_OK;
    }
    c = &pp->slot[pp->fill];
    if (c->n == CHUNK_EVENTS || (c->n > 0 && c->blen + need > c->bcap)) {
        if (pass_chunk(pp))
            return 1;
        c = &pp->slot[pp->fill];
    }
    if (c->blen + need > c->bcap) {
        /* an empty chunk: nothing points into its buffer yet */
        char *nb = realloc(c->bytes, need);
        if (nb == NULL) {
            pp->prod_rc = rv_err_set(&pp->prod_err, RV_ENOMEM, "aggregator: out of memory");
            return 1;
        }
        c->bytes = nb;
        c->bcap = need;
    }
    c->blen += rv_event_view_copy(&c->v[c->n], ev, c->bytes + c->blen);
    c->seq[c->n++] = seq;
    return 0;
}

static void *producer_main(void *arg)
{
    struct rv_agg_pipe *pp = arg;
    int rc;

    pthread_setname_np(pthread_self(), "rv-agg-reader");
    rc = pp->produce(pp, pp->arg, &pp->prod_err);
    pthread_mutex_lock(&pp->mu);
    if (pp->prod_rc == RV_OK)
        pp->prod_rc = rc;
    /* the last chunk, even partial or empty, ends the stream */
    pp->slot[pp->fill].full = true;
    pp->done = true;
    pthread_cond_signal(&pp->to_consumer);
    pthread_mutex_unlock(&pp->mu);
    return NULL;
}

int rv_agg_pipe_run(struct rv_agg_engine *e, rv_agg_produce_fn produce, void *arg,
                    struct rv_errbuf *err)
{
    struct rv_agg_pipe *pp = calloc(1, sizeof *pp);
    pthread_t thr;
    size_t take = 0;
    int rc = RV_OK;
    bool ok = true;

    if (pp == NULL)
        return rv_err_set(err, RV_ENOMEM, "aggregator: out of memory");
    pp->produce = produce;
    pp->arg = arg;
    for (size_t i = 0; i < NSLOTS; i++) {
        pp->slot[i].bcap = CHUNK_BYTES;
        if ((pp->slot[i].bytes = malloc(CHUNK_BYTES)) == NULL)
            ok = false;
    }
    if (!ok || pthread_mutex_init(&pp->mu, NULL) != 0) {
        for (size_t i = 0; i < NSLOTS; i++)
            free(pp->slot[i].bytes);
        free(pp);
        return rv_err_set(err, RV_ENOMEM, "aggregator: out of memory");
    }
    pthread_cond_init(&pp->to_consumer, NULL);
    pthread_cond_init(&pp->to_producer, NULL);
    if (pthread_create(&thr, NULL, producer_main, pp) != 0) {
        /* one thread: every event straight into the engine */
        rv_log_warn("agg", "no reader thread: replaying on one thread");
        pp->eng = e;
        rc = produce(pp, arg, err);
        if (rc == RV_OK && pp->direct_rc != RV_OK)
            rc = rv_err_set(err, pp->direct_rc, "aggregator: %s", rv_strerror(pp->direct_rc));
        goto out;
    }
    for (;;) {
        struct chunk *c = &pp->slot[take];
        bool last;

        pthread_mutex_lock(&pp->mu);
        while (!c->full)
            pthread_cond_wait(&pp->to_consumer, &pp->mu);
        /* the producer marks its final chunk full only once done is set */
        last = pp->done && take == pp->fill;
        pthread_mutex_unlock(&pp->mu);
        for (size_t i = 0; i < c->n && rc == RV_OK; i++)
            rc = rv_agg_engine_push_view(e, c->seq[i], &c->v[i]);
        if (rc != RV_OK)
            rv_err_set(err, rc, "aggregator: %s", rv_strerror(rc));
        pthread_mutex_lock(&pp->mu);
        c->full = false;
        if (rc != RV_OK)
            pp->stop = true;
        pthread_cond_signal(&pp->to_producer);
        pthread_mutex_unlock(&pp->mu);
        if (last || rc != RV_OK)
            break;
        take = (take + 1) % NSLOTS;
    }
    pthread_join(thr, NULL);
    if (rc == RV_OK && pp->prod_rc != RV_OK) {
        rc = pp->prod_rc;
        *err = pp->prod_err;
        if (err->msg[0] == '\0')
            rv_err_set(err, rc, "aggregator: %s", rv_strerror(rc));
    }
out:
    pthread_cond_destroy(&pp->to_consumer);
    pthread_cond_destroy(&pp->to_producer);
    pthread_mutex_destroy(&pp->mu);
    for (size_t i = 0; i < NSLOTS; i++)
        free(pp->slot[i].bytes);
    free(pp);
    return rc;
}

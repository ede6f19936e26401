/*
 * stage: the aggregator thread of rightsviewd (see rv/agg.h).
 *
 * It follows the commit log: a SUB on RV_EP_COMMITS wakes it after each
 * commit, and it also looks every poll_ms so that a notification lost to
 * the PUB/SUB slow joiner never loses work (the log, not the message, is
 * the truth). Records are read in seq order from its cursor and pushed
 * into the engine; the alerts they produce are committed through the
 * writer together with the cursor (the last log seq processed), in one
 * durable transaction, and only then published on RV_EP_UPDATES. Cells are
 * published at most once per cell_interval_ms per cell (latest state
 * wins).
 *
 * Restart: the engine is rebuilt by replaying the log from its start up to
 * the cursor with the alerts muted (they are in `alerts` already), so the
 * engine is in the state it had and the alert sequence continues as if
 * there had been no restart.
 * NEEDSWORK: a checkpoint of the engine state next to the cursor would
 * spare the replay of the whole log at start on very large stores.
 *
 * Threads: rv_agg_start/rv_agg_stop from the daemon's main thread; the
 * engine, both sockets and the pending lists belong to the stage thread
 * (the sockets are created and bound in rv_agg_start before the thread
 * starts, which is the memory barrier zmq asks for when a socket changes
 * threads). Shared: `stop` and `cursor` (atomics).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "rv/agg.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/metrics.h"
#include "rv/store.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#include "engine_int.h"

#define CURSOR_NAME "aggregator"
#define CHUNK 4096 /* log records per read txn */

struct pend {
    uint64_t seq;
    char *json;
    size_t len;
};

struct rv_agg {
    struct rv_store *st;
    struct rv_writer *w;
    struct rv_agg_params p;
    struct rv_agg_engine *eng;
    void *sub, *pub;          /* stage thread */
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    _Atomic uint64_t cursor;  /* durable cursor */
    /* stage thread only */
    uint64_t processed;       /* last log seq pushed into the engine */
    uint64_t mute_upto;       /* alerts up to this seq are already stored */
    struct pend *pend;        /* alerts not yet durable */
    size_t npend, cappend;
    bool oom;
    uint64_t last_cursor_ns, last_cell_ns;
    struct rv_agg_engine_stats last_stats;
    rv_metric *m_events, *m_alerts, *m_late, *m_late_applied, *m_cursor, *m_series, *m_errors;
};

static void on_alert(void *arg, const struct rv_agg_alert *al)
{
    struct rv_agg *a = arg;
    struct pend *np;

    if (al->seq <= a->mute_upto)
        return;
    if (a->npend == a->cappend) {
        size_t nc = a->cappend ? a->cappend * 2 : 16;
        np = realloc(a->pend, nc * sizeof *np);
        if (np == NULL) {
            a->oom = true;
            return;
        }
        a->pend = np;
        a->cappend = nc;
    }
    np = &a->pend[a->npend];
    np->json = malloc(al->len + 1);
    if (np->json == NULL) {
        a->oom = true;
        return;
    }
    memcpy(np->json, al->json, al->len + 1);
    np->len = al->len;
    np->seq = al->seq;
    a->npend++;
}

struct readctx {
    struct rv_agg *a;
    size_t n;
    int rc;
};

static int on_log(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *ev)
{
    struct readctx *c = arg;

    (void)ingest_ms;
    c->rc = rv_agg_engine_push_view(c->a->eng, seq, ev);
    if (c->rc != RV_OK)
        return 1;
    c->a->processed = seq;
    c->n++;
    return 0;
}

/* Pushes up to CHUNK records after a->processed. *n gets how many. */
static int read_chunk(struct rv_agg *a, size_t *n)
{
    struct readctx c = {a, 0, RV_OK};
    struct rv_errbuf err = {0};
    int rc = rv_store_read_log_view(a->st, a->processed + 1, CHUNK, on_log, &c, &err);

    *n = c.n;
    if (rc != RV_OK) {
        rv_log_error("agg", "read log failed seq=%llu reason=\"%s\"",
                     (unsigned long long)(a->processed + 1), err.msg);
        return rc;
    }
    return c.rc;
}

static void update_metrics(struct rv_agg *a)
{
    struct rv_agg_engine_stats s;

    rv_agg_engine_get_stats(a->eng, &s);
    rv_metric_add(a->m_events, s.events - a->last_stats.events);
    rv_metric_add(a->m_late, s.late - a->last_stats.late);
    rv_metric_add(a->m_late_applied, s.late_applied - a->last_stats.late_applied);
    rv_metric_set(a->m_series, (int64_t)s.series);
    a->last_stats = s;
}

/* Commits the pending alerts with the cursor, then publishes them. On
 * failure everything stays pending (retried later). */
static int commit(struct rv_agg *a)
{
    struct rv_write_req req;
    struct rv_cursor_rec cur;
    struct rv_alert_rec *al = NULL;
    unsigned char cv[8];
    int rc;

    if (a->npend > 0) {
        al = calloc(a->npend, sizeof *al);
        if (al == NULL)
            return RV_ENOMEM;
        for (size_t i = 0; i < a->npend; i++) {
            al[i].seq = a->pend[i].seq;
            al[i].json = a->pend[i].json;
            al[i].len = a->pend[i].len;
        }
    }
    rv_put_be64(cv, a->processed);
    cur.name = CURSOR_NAME;
    cur.val = cv;
    cur.len = 8;
    memset(&req, 0, sizeof req);
    req.cur = &cur;
    req.nc = 1;
    req.al = al;
    req.na = a->npend;
    rc = rv_writer_submit_wait(a->w, &req, 0);
    free(al);
    if (rc != RV_OK) {
        rv_metric_add(a->m_errors, 1);
        rv_log_error("agg", "commit failed alerts=%zu cursor=%llu reason=\"%s\"", a->npend,
                     (unsigned long long)a->processed, req.err.msg[0] ? req.err.msg : rv_strerror(rc));
        return rc;
    }
    atomic_store(&a->cursor, a->processed);
    rv_metric_set(a->m_cursor, (int64_t)a->processed);
    a->last_cursor_ns = rv_mono_ns();
    for (size_t i = 0; i < a->npend; i++) {
        /* PUB never blocks: it drops for a subscriber past its HWM, which
         * then resumes from the store by alert seq */
        zmq_send(a->pub, "alert", 5, ZMQ_SNDMORE);
        zmq_send(a->pub, a->pend[i].json, a->pend[i].len, 0);
        free(a->pend[i].json);
    }
    rv_metric_add(a->m_alerts, a->npend);
    a->npend = 0;
    return RV_OK;
}

static void on_cell(void *arg, const struct rv_agg_cell *c)
{
    struct rv_agg *a = arg;

    zmq_send(a->pub, "cell", 4, ZMQ_SNDMORE);
    zmq_send(a->pub, c->json, c->len, 0);
}

/* a replay of the log (rebuild, rv_agg_replay) */
struct replayctx {
    struct rv_store *st;
    struct rv_agg_pipe *pp;
    uint64_t next, upto; /* upto 0: to the end */
    size_t n;
    const atomic_bool *stop;
    bool stopped;
};
static int produce_log(struct rv_agg_pipe *pp, void *arg, struct rv_errbuf *err);

/* Rebuilds the engine from the log up to the stored cursor. */
static int rebuild(struct rv_agg *a)
{
    unsigned char cv[8];
    size_t len = 0;
    uint64_t upto = 0, last_alert = rv_store_last_alert_seq(a->st);
    struct rv_agg_engine_stats s;
    int rc;

    rc = rv_store_get_cursor(a->st, CURSOR_NAME, cv, sizeof cv, &len);
    if (rc == RV_OK && len == 8)
        upto = rv_get_be64(cv);
    else if (rc != RV_ENOTFOUND)
        rv_log_warn("agg", "cursor unreadable rc=%s len=%zu: starting from the log start",
                    rv_strerror(rc), len);
    a->mute_upto = last_alert;
    a->processed = 0;
    if (upto > 0) {
        /* reading and the engine on two threads, as rv_agg_replay */
        struct replayctx c = {.st = a->st, .next = 1, .upto = upto, .stop = &a->stop};
        struct rv_errbuf err = {0};
        /* the late events of the log were logged when they came in */
        rv_agg_engine_set_log_late(a->eng, false);
        rc = rv_agg_pipe_run(a->eng, produce_log, &c, &err);
        rv_agg_engine_set_log_late(a->eng, true);
        if (rc != RV_OK) {
            rv_log_error("agg", "rebuild failed at seq=%llu reason=\"%s\"",
                         (unsigned long long)c.next, err.msg);
            a->processed = c.next - 1;
            return rc;
        }
    }
    /* the log may end before the cursor (retention) */
    a->processed = upto;
    rv_agg_engine_get_stats(a->eng, &s);
    if (s.last_alert_seq != last_alert)
        rv_log_warn("agg",
                    "rebuild alert seq %llu differs from stored %llu (config or retention "
                    "changed): continuing after the stored one",
                    (unsigned long long)s.last_alert_seq, (unsigned long long)last_alert);
    if (s.last_alert_seq < last_alert)
        rv_agg_engine_set_alert_seq(a->eng, last_alert);
    for (size_t i = 0; i < a->npend; i++)
        free(a->pend[i].json);
    a->npend = 0;
    a->mute_upto = 0;
    atomic_store(&a->cursor, upto);
    a->last_stats = s;
    rv_log_info("agg", "rebuilt cursor=%llu events=%llu series=%llu last_alert=%llu late=%llu",
                (unsigned long long)upto, (unsigned long long)s.events,
                (unsigned long long)s.series, (unsigned long long)last_alert,
                (unsigned long long)s.late);
    return RV_OK;
}

/* Reads everything committed, committing alerts as they come. */
static void drain_log(struct rv_agg *a)
{
    size_t n;

    for (;;) {
        if (a->npend > 0 && commit(a) != RV_OK)
            return; /* retried on the next round */
        if (read_chunk(a, &n) != RV_OK)
            return;
        if (a->oom) {
            rv_log_error("agg", "out of memory: alerts may be missing");
            a->oom = false;
        }
        update_metrics(a);
        if (n < CHUNK)
            break;
    }
    if (a->npend > 0)
        commit(a);
}

static void *stage_main(void *arg)
{
    struct rv_agg *a = arg;
    uint64_t poll_ns = (uint64_t)a->p.poll_ms * 1000000u;
    uint64_t cell_ns = (uint64_t)a->p.cell_interval_ms * 1000000u;
    uint64_t cursor_ns = (uint64_t)a->p.cursor_interval_ms * 1000000u;

    pthread_setname_np(pthread_self(), "rv-aggregator"); /* shown by top -H, perf */
    if (rebuild(a) != RV_OK)
        rv_log_error("agg", "rebuild failed: following from the log start");
    a->last_cursor_ns = a->last_cell_ns = rv_mono_ns();
    while (!atomic_load(&a->stop)) {
        zmq_pollitem_t it = {a->sub, 0, ZMQ_POLLIN, 0};
        uint64_t now = rv_mono_ns();
        long wait_ms = (long)(poll_ns / 1000000u);
        char buf[64];

        if (now - a->last_cell_ns < cell_ns) {
            long left = (long)((cell_ns - (now - a->last_cell_ns)) / 1000000u) + 1;
            if (left < wait_ms)
                wait_ms = left;
        }
        if (a->processed > atomic_load(&a->cursor)) {
            /* the cursor is due: do not sleep past its deadline */
            uint64_t since = now - a->last_cursor_ns;
            long left = since >= cursor_ns ? 0 : (long)((cursor_ns - since) / 1000000u) + 1;
            if (left < wait_ms)
                wait_ms = left;
        }
        if (zmq_poll(&it, 1, wait_ms) < 0 && zmq_errno() == ETERM)
            break;
        /* the notification only says "look": drain them all */
        while (zmq_recv(a->sub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
            ;
        drain_log(a);
        now = rv_mono_ns();
        if (a->processed > atomic_load(&a->cursor) && now - a->last_cursor_ns >= cursor_ns)
            commit(a);
        if (now - a->last_cell_ns >= cell_ns) {
            rv_agg_engine_cells(a->eng, on_cell, a);
            a->last_cell_ns = now;
        }
    }
    /* stop: what is committed gets processed and written */
    drain_log(a);
    if (a->processed > atomic_load(&a->cursor) || a->npend > 0)
        commit(a);
    rv_agg_engine_cells(a->eng, on_cell, a);
    return NULL;
}

int rv_agg_start(void *zctx, struct rv_store *st, struct rv_writer *w, const cJSON *cfg,
                 struct rv_metrics *m, struct rv_agg **out, struct rv_errbuf *err)
{
    struct rv_agg *a;
    struct rv_agg_sink sink;
    int rc, zero = 0;

    *out = NULL;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return rv_err_set(err, RV_ENOMEM, "aggregator: out of memory");
    a->st = st;
    a->w = w;
    atomic_init(&a->stop, false);
    atomic_init(&a->cursor, 0);
    if ((rc = rv_agg_params_from_json(cfg, &a->p, err)) != RV_OK)
        goto fail;
    sink.alert = on_alert;
    sink.arg = a;
    if ((rc = rv_agg_engine_new(&a->p, 0, &sink, &a->eng)) != RV_OK) {
        rv_err_set(err, rc, "aggregator: engine: %s", rv_strerror(rc));
        goto fail;
    }
    a->m_events = rv_metrics_counter(m, "rv_agg_events_total", "", "log records aggregated");
    a->m_alerts = rv_metrics_counter(m, "rv_agg_alerts_total", "", "alert state changes written");
    a->m_late = rv_metrics_counter(m, "rv_agg_late_events_total", "",
                                   "events past the allowed lateness, not aggregated");
    a->m_late_applied = rv_metrics_counter(m, "rv_agg_late_applied_total", "",
                                           "events behind the watermark, inside their source's "
                                           "lateness: applied to their closed bin");
    a->m_errors = rv_metrics_counter(m, "rv_agg_commit_errors_total", "",
                                     "failed commits of alerts and cursor (retried)");
    a->m_cursor = rv_metrics_gauge(m, "rv_agg_cursor", "", "last log seq aggregated durably");
    a->m_series = rv_metrics_gauge(m, "rv_agg_series", "", "series kept by the aggregator");
    a->pub = zmq_socket(zctx, ZMQ_PUB);
    a->sub = zmq_socket(zctx, ZMQ_SUB);
    if (a->pub == NULL || a->sub == NULL) {
        rc = rv_err_set(err, RV_EIO, "aggregator: zmq socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    zmq_setsockopt(a->pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(a->sub, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(a->pub, RV_EP_UPDATES) != 0) {
        rc = rv_err_set(err, RV_EIO, "aggregator: bind '%s': %s", RV_EP_UPDATES,
                        zmq_strerror(zmq_errno()));
        goto fail;
    }
    zmq_setsockopt(a->sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(a->sub, RV_EP_COMMITS) != 0) {
        rc = rv_err_set(err, RV_EIO, "aggregator: connect '%s': %s", RV_EP_COMMITS,
                        zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&a->thr, NULL, stage_main, a) != 0) {
        rc = rv_err_set(err, RV_EIO, "aggregator: thread: cannot start");
        goto fail;
    }
    a->thr_started = true;
    *out = a;
    return RV_OK;
fail:
    if (a->pub)
        zmq_close(a->pub);
    if (a->sub)
        zmq_close(a->sub);
    rv_agg_engine_free(&a->eng);
    free(a);
    return rc;
}

void rv_agg_stop(struct rv_agg **ap)
{
    struct rv_agg *a;

    if (ap == NULL || *ap == NULL)
        return;
    a = *ap;
    atomic_store(&a->stop, true);
    if (a->thr_started)
        pthread_join(a->thr, NULL);
    /* unbind first: zmq_close is asynchronous and would keep the inproc
     * name taken for a while, so that a new stage could not bind it */
    zmq_unbind(a->pub, RV_EP_UPDATES);
    zmq_close(a->pub);
    zmq_close(a->sub);
    for (size_t i = 0; i < a->npend; i++)
        free(a->pend[i].json);
    free(a->pend);
    rv_agg_engine_free(&a->eng);
    free(a);
    *ap = NULL;
}

uint64_t rv_agg_cursor(struct rv_agg *a)
{
    return atomic_load(&a->cursor);
}

/* ---------------------------------------------------------------- replay */


static int on_replay(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *ev)
{
    struct replayctx *c = arg;

    (void)ingest_ms;
    if (c->upto && seq > c->upto) {
        c->stopped = true;
        return 1;
    }
    c->next = seq + 1;
    c->n++;
    if (rv_agg_pipe_put(c->pp, seq, ev)) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

/* The reading side of a replay (rv_agg_pipe_run's producer): the log
 * from c->next, in chunks that keep each read txn short. */
static int produce_log(struct rv_agg_pipe *pp, void *arg, struct rv_errbuf *err)
{
    struct replayctx *c = arg;
    int rc;

    c->pp = pp;
    do {
        c->n = 0;
        rc = rv_store_read_log_view(c->st, c->next, CHUNK, on_replay, c, err);
    } while (rc == RV_OK && c->n == CHUNK && !c->stopped && !(c->stop && atomic_load(c->stop)));
    return rc;
}

int rv_agg_replay(struct rv_store *st, const struct rv_agg_params *p, const struct rv_agg_sink *sink,
                  struct rv_agg_engine_stats *stats, struct rv_errbuf *err)
{
    struct replayctx c = {.st = st, .next = 1};
    struct rv_agg_engine *e;
    int rc;

    if ((rc = rv_agg_engine_new(p, 0, sink, &e)) != RV_OK)
        return rv_err_set(err, rc, "aggregator: engine: %s", rv_strerror(rc));
    rc = rv_agg_pipe_run(e, produce_log, &c, err);
    if (stats)
        rv_agg_engine_get_stats(e, stats);
    rv_agg_engine_free(&e);
    return rc;
}

/*
 * writer: the one LMDB writer thread, with group commit. Requests queue
 * under a mutex; the thread takes all of them (up to max_events), commits
 * once, and completes each. While one commit syncs, the next group forms,
 * so batching grows with load and costs nothing when idle.
 *
 * Two threads: the writer commits (LMDB's MDB_NOMETASYNC: data pages
 * synced, the meta page written but not synced) and hands each committed
 * group to the ack thread, which syncs once for every group waiting
 * (rv_store_sync) and only then runs on_commit and the requests' done().
 * So the writer builds and commits the next transaction during the sync
 * that makes the last one durable: one device flush a commit off the
 * writer's path, and no ack before its transaction is durable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rv/log.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

/* A committed (or failed) group waiting for the ack thread. */
struct pending {
    struct rv_write_req *group;
    int rc;
    struct rv_errbuf err;
    uint64_t first_seq, last_seq, last_alert_seq; /* for on_commit, when rc is RV_OK */
};

#define ACK_RING 16 /* groups committed and not yet acknowledged, at most */

struct rv_writer {
    struct rv_store *st;            /* borrowed */
    struct rv_writer_opts opts;
    struct rv_writer_hooks hooks;
    pthread_t thread;
    pthread_t ack_thread;
    pthread_mutex_t ack_lock;       /* guards ring, ack_head, ack_n, ack_stop */
    pthread_cond_t ack_wake;        /* the ack thread waits for groups */
    pthread_cond_t ack_room;        /* the writer waits for a free ring slot */
    struct pending ring[ACK_RING];
    size_t ack_head, ack_n;
    bool ack_stop;                  /* the writer has handed over its last group */
    pthread_mutex_t lock;           /* guards the fields below */
    pthread_cond_t wake;            /* writer waits for work */
    pthread_cond_t room;            /* submitters wait for room */
    struct rv_write_req *head, *tail;
    size_t queued;                  /* events queued */
    bool stopping;
    bool no_retry;                  /* shutting down: a failed commit is not retried */
    /* writer thread only */
    struct rv_event *evs;
    struct rv_put_result *res;
    struct rv_cursor_rec *cur;
    struct rv_alert_rec *al;
    size_t cap_ev, cap_res, cap_cur, cap_al;
};

void rv_writer_opts_default(struct rv_writer_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_events = 50000;
    o->queue_events = 200000;
    o->max_delay_us = 0;
    o->retry_ms = 1000;
    o->flush_ms = 1000;
}

static size_t req_size(const struct rv_write_req *r)
{
    return r->n + r->nc + r->na;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return RV_OK;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return RV_ENOMEM;
    *p = np;
    *cap = nc;
    return RV_OK;
}

static void abs_deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Commits the group GROUP (a list) in one transaction. Copies of the
 * events are not needed: the requests stay valid until done(). */
static int commit_group(struct rv_writer *w, struct rv_write_req *group, struct rv_errbuf *err)
{
    size_t ne = 0, nc = 0, na = 0, oe = 0;
    int rc;

    for (struct rv_write_req *r = group; r; r = r->next_) {
        ne += r->n;
        nc += r->nc;
        na += r->na;
    }
    if (grow((void **)&w->evs, &w->cap_ev, ne, sizeof(*w->evs)) ||
        grow((void **)&w->res, &w->cap_res, ne, sizeof(*w->res)) ||
        grow((void **)&w->cur, &w->cap_cur, nc, sizeof(*w->cur)) ||
        grow((void **)&w->al, &w->cap_al, na, sizeof(*w->al)))
        return rv_err_set(err, RV_ENOMEM, "writer: out of memory");
    nc = na = 0;
    for (struct rv_write_req *r = group; r; r = r->next_) {
        /* shallow copies: rv_store_put_batch only reads them */
        if (r->n)
            memcpy(w->evs + oe, r->evs, r->n * sizeof(*r->evs));
        oe += r->n;
        for (size_t i = 0; i < r->nc; i++)
            w->cur[nc++] = r->cur[i];
        for (size_t i = 0; i < r->na; i++)
            w->al[na++] = r->al[i];
    }
    rc = rv_store_put_batch(w->st, w->evs, ne, w->cur, nc, w->al, na, w->res, err);
    if (rc == RV_OK) {
        oe = 0;
        for (struct rv_write_req *r = group; r; r = r->next_) {
            if (r->n && r->res)
                memcpy(r->res, w->res + oe, r->n * sizeof(*r->res));
            oe += r->n;
        }
    }
    return rc;
}

/* The hooks and done() of a group whose transaction is durable (SYNC_RC
 * RV_OK) or whose sync failed (SYNC_RC, SERR). On the ack thread, or on the
 * writer thread holding ack_lock with the ring empty. */
static void complete(struct rv_writer *w, const struct pending *p, int sync_rc,
                     const struct rv_errbuf *serr)
{
    int rc = p->rc ? p->rc : sync_rc;

    if (p->rc == RV_OK && w->hooks.on_commit)
        w->hooks.on_commit(w->hooks.arg, p->first_seq, p->last_seq, p->last_alert_seq);
    for (struct rv_write_req *r = p->group, *n; r; r = n) {
        n = r->next_;
        r->rc = rc;
        if (rc)
            r->err = p->rc ? p->err : *serr;
        r->done(r, r->arg);
    }
}

/* Writer thread: queues a group for the ack thread (waits while the ring
 * is full, i.e. while the syncs are ACK_RING commits behind). */
static void hand_over(struct rv_writer *w, struct rv_write_req *group, int rc,
                      const struct rv_errbuf *err, uint64_t first_seq, uint64_t last_seq,
                      bool durable)
{
    struct pending pd, *p = &pd;

    pthread_mutex_lock(&w->ack_lock);
    while (!durable && w->ack_n == ACK_RING)
        pthread_cond_wait(&w->ack_room, &w->ack_lock);
    if (!durable)
        p = &w->ring[(w->ack_head + w->ack_n) % ACK_RING];
    p->group = group;
    p->rc = rc;
    if (rc)
        p->err = *err;
    p->first_seq = first_seq;
    p->last_seq = last_seq;
    p->last_alert_seq = rv_store_last_alert_seq(w->st);
    if (durable) {
        /* the ring is empty (the caller saw it so, and only this thread
         * fills it): every earlier group is acknowledged, so this one is
         * completed here, in order, the hooks serialised by ack_lock */
        complete(w, p, RV_OK, NULL);
    } else {
        w->ack_n++;
        pthread_cond_signal(&w->ack_wake);
    }
    pthread_mutex_unlock(&w->ack_lock);
}

/* Nothing waiting for the ack thread (writer thread). */
static bool acks_idle(struct rv_writer *w)
{
    pthread_mutex_lock(&w->ack_lock);
    bool idle = w->ack_n == 0;
    pthread_mutex_unlock(&w->ack_lock);
    return idle;
}

/* The ack thread: one sync for every group waiting (each was committed
 * before it was queued, so the sync covers it), then the hooks and done()
 * in commit order. A failed sync fails the groups it was for: their
 * requests are not acknowledged (RV_EIO), so partners resend, and find
 * the events as duplicates if they did reach the disk. */
static void *ack_main(void *arg)
{
    struct rv_writer *w = arg;

    pthread_setname_np(pthread_self(), "rv-ack"); /* shown by top -H, perf */
    pthread_mutex_lock(&w->ack_lock);
    for (;;) {
        while (w->ack_n == 0 && !w->ack_stop)
            pthread_cond_wait(&w->ack_wake, &w->ack_lock);
        if (w->ack_n == 0)
            break;
        size_t k = w->ack_n, h = w->ack_head;
        pthread_mutex_unlock(&w->ack_lock);

        struct rv_errbuf serr;
        rv_err_clear(&serr);
        int src = rv_store_sync(w->st, &serr);
        if (src)
            rv_log_error("writer", "sync failed, %zu group(s) not acknowledged reason=\"%s\"", k,
                         serr.msg);
        for (size_t j = 0; j < k; j++)
            complete(w, &w->ring[(h + j) % ACK_RING], src, &serr);
        pthread_mutex_lock(&w->ack_lock);
        w->ack_head = (h + k) % ACK_RING;
        w->ack_n -= k;
        pthread_cond_signal(&w->ack_room);
    }
    pthread_mutex_unlock(&w->ack_lock);
    if (w->hooks.on_stop)
        w->hooks.on_stop(w->hooks.arg);
    return NULL;
}

static void *writer_main(void *arg)
{
    struct rv_writer *w = arg;
    uint64_t last_seq = rv_store_last_seq(w->st);
    uint64_t next_retention = rv_mono_ns(); /* first check at start */
    uint64_t next_ckpt = 0;                 /* no checkpoint attempt before this */

    pthread_setname_np(pthread_self(), "rv-writer"); /* shown by top -H, perf */
    rv_store_manual_checkpoints(w->st, true);

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct rv_write_req *group = NULL, **gt = &group;
        size_t taken = 0;
        struct rv_errbuf err;
        int rc;

        while (!w->head && !w->stopping) {
            struct timespec ts;
            abs_deadline(&ts, w->opts.flush_ms ? w->opts.flush_ms : 1000);
            if (pthread_cond_timedwait(&w->wake, &w->lock, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&w->lock);
                if (rv_store_flush(w->st, &err))
                    rv_log_warn("writer", "checkpoint failed reason=\"%s\"", err.msg);
                else if (rv_store_sync(w->st, &err)) /* idle: make the checkpoint durable now */
                    rv_log_warn("writer", "sync failed reason=\"%s\"", err.msg);
                if (w->opts.retention_ms > 0 && rv_mono_ns() >= next_retention) {
                    size_t deleted = 0;
                    next_retention = rv_mono_ns() + 3600ULL * 1000000000ULL;
                    if (rv_store_retention(w->st, w->opts.retention_ms, rv_now_ms(), &deleted,
                                           &err))
                        rv_log_warn("writer", "retention failed reason=\"%s\"", err.msg);
                    else if (deleted)
                        rv_log_info("writer", "retention deleted=%zu horizon_days=%lld", deleted,
                                    (long long)(w->opts.retention_ms / 86400000));
                }
                pthread_mutex_lock(&w->lock);
            }
        }
        if (!w->head && w->stopping)
            break;
        if (w->opts.max_delay_us && w->queued < w->opts.max_events && !w->stopping) {
            pthread_mutex_unlock(&w->lock);
            struct timespec d = {0, (long)w->opts.max_delay_us * 1000L};
            nanosleep(&d, NULL);
            pthread_mutex_lock(&w->lock);
        }
        /* take whole requests up to max_events (always at least one) */
        while (w->head && (taken == 0 || taken + w->head->n <= w->opts.max_events)) {
            struct rv_write_req *r = w->head;
            w->head = r->next_;
            if (!w->head)
                w->tail = NULL;
            r->next_ = NULL;
            *gt = r;
            gt = &r->next_;
            taken += r->n;
            w->queued -= req_size(r);
        }
        /* Light load (nothing else queued, nothing waiting for a sync): a
         * commit durable on return (meta page synced too) and the acks sent
         * from here, which saves the hand-over's latency. Otherwise the
         * meta sync is deferred to the ack thread, and the next group is
         * committed meanwhile. */
        bool more = w->head != NULL;
        pthread_cond_broadcast(&w->room);
        pthread_mutex_unlock(&w->lock);
        bool direct = !more && acks_idle(w);
        rv_store_defer_meta_sync(w->st, !direct);

        rv_err_clear(&err);
        for (;;) {
            rc = commit_group(w, group, &err);
            if (rc != RV_EFULL)
                break;
            /* Disk full: nothing was written. Keep the group and retry, so
             * no accepted batch is lost; submitters block meanwhile. */
            rv_log_error("writer", "commit failed, retrying reason=\"%s\" retry_ms=%u", err.msg,
                         w->opts.retry_ms);
            struct timespec d = {w->opts.retry_ms / 1000, (long)(w->opts.retry_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
            pthread_mutex_lock(&w->lock);
            bool stop = w->stopping || w->no_retry;
            pthread_mutex_unlock(&w->lock);
            if (stop)
                break;
        }
        {
            uint64_t now_seq = rv_store_last_seq(w->st);
            hand_over(w, group, rc, &err, last_seq + 1, now_seq, direct);
            last_seq = now_seq;
        }
        /* checkpoints after the hand-over, never before it; after a failure
         * (a full disk) not before retry_ms, rather than after every group */
        if (rv_mono_ns() >= next_ckpt && rv_store_checkpoint_due(w->st) &&
            rv_store_flush(w->st, &err)) {
            rv_log_warn("writer", "checkpoint failed, retrying reason=\"%s\" retry_ms=%u", err.msg,
                        w->opts.retry_ms);
            next_ckpt = rv_mono_ns() + (uint64_t)w->opts.retry_ms * 1000000u;
        }
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    {
        struct rv_errbuf err;
        if (rv_store_flush(w->st, &err))
            rv_log_warn("writer", "final checkpoint failed reason=\"%s\"", err.msg);
    }
    rv_store_manual_checkpoints(w->st, false);
    /* the last groups are acknowledged after one more sync, which also
     * makes the final checkpoint durable */
    pthread_mutex_lock(&w->ack_lock);
    w->ack_stop = true;
    pthread_cond_signal(&w->ack_wake);
    pthread_mutex_unlock(&w->ack_lock);
    pthread_join(w->ack_thread, NULL);
    rv_store_defer_meta_sync(w->st, false);
    {
        struct rv_errbuf err;
        if (rv_store_sync(w->st, &err))
            rv_log_warn("writer", "final sync failed reason=\"%s\"", err.msg);
    }
    return NULL;
}

static void destroy(struct rv_writer *w)
{
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->room);
    pthread_mutex_destroy(&w->ack_lock);
    pthread_cond_destroy(&w->ack_wake);
    pthread_cond_destroy(&w->ack_room);
    free(w->evs);
    free(w->res);
    free(w->cur);
    free(w->al);
    free(w);
}

int rv_writer_new(struct rv_store *st, const struct rv_writer_opts *opts,
                  const struct rv_writer_hooks *hooks, struct rv_writer **out)
{
    struct rv_writer *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;

    if (!w)
        return RV_ENOMEM;
    w->st = st;
    if (opts)
        w->opts = *opts;
    else
        rv_writer_opts_default(&w->opts);
    if (!w->opts.max_events)
        w->opts.max_events = 50000;
    if (!w->opts.queue_events)
        w->opts.queue_events = 200000;
    if (!w->opts.retry_ms)
        w->opts.retry_ms = 1000;
    if (hooks)
        w->hooks = *hooks;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_cond_init(&w->room, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->ack_lock, NULL);
    pthread_cond_init(&w->ack_wake, NULL);
    pthread_cond_init(&w->ack_room, NULL);
    /* here, before either thread exists: on_commit may come from both */
    if (w->hooks.on_start)
        w->hooks.on_start(w->hooks.arg);
    if (pthread_create(&w->ack_thread, NULL, ack_main, w) != 0) {
        destroy(w);
        return RV_EIO;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_lock(&w->ack_lock);
        w->ack_stop = true;
        pthread_cond_signal(&w->ack_wake);
        pthread_mutex_unlock(&w->ack_lock);
        pthread_join(w->ack_thread, NULL);
        destroy(w);
        return RV_EIO;
    }
    *out = w;
    return RV_OK;
}

/* Caller holds the lock. */
static void enqueue(struct rv_writer *w, struct rv_write_req *req)
{
    req->next_ = NULL;
    if (w->tail)
        w->tail->next_ = req;
    else
        w->head = req;
    w->tail = req;
    w->queued += req_size(req);
    pthread_cond_signal(&w->wake);
}

int rv_writer_submit(struct rv_writer *w, struct rv_write_req *req)
{
    int rc = RV_OK;

    pthread_mutex_lock(&w->lock);
    if (w->stopping)
        rc = RV_EINVAL;
    else if (w->queued && w->queued + req_size(req) > w->opts.queue_events)
        rc = RV_EAGAIN;
    else
        enqueue(w, req);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void wait_done(struct rv_write_req *req, void *arg)
{
    struct waiter *wt = arg;
    (void)req;
    pthread_mutex_lock(&wt->lock);
    wt->done = true;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->lock);
}

int rv_writer_submit_wait(struct rv_writer *w, struct rv_write_req *req, unsigned timeout_ms)
{
    struct waiter wt = {.done = false};
    pthread_condattr_t ca;
    struct timespec dl;
    int rc = RV_OK;

    pthread_mutex_init(&wt.lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wt.cond, &ca);
    pthread_condattr_destroy(&ca);
    abs_deadline(&dl, timeout_ms);
    req->done = wait_done;
    req->arg = &wt;

    pthread_mutex_lock(&w->lock);
    while (!w->stopping && w->queued && w->queued + req_size(req) > w->opts.queue_events) {
        if (timeout_ms) {
            if (pthread_cond_timedwait(&w->room, &w->lock, &dl) == ETIMEDOUT) {
                rc = RV_ETIMEDOUT;
                break;
            }
        } else {
            pthread_cond_wait(&w->room, &w->lock);
        }
    }
    if (rc == RV_OK && w->stopping)
        rc = RV_EINVAL;
    if (rc == RV_OK)
        enqueue(w, req);
    pthread_mutex_unlock(&w->lock);
    if (rc != RV_OK)
        goto out;

    pthread_mutex_lock(&wt.lock);
    while (!wt.done) {
        if (timeout_ms) {
            if (pthread_cond_timedwait(&wt.cond, &wt.lock, &dl) == ETIMEDOUT && !wt.done) {
                /* still queued: we must wait anyway, WT lives on our stack */
                pthread_cond_wait(&wt.cond, &wt.lock);
            }
        } else {
            pthread_cond_wait(&wt.cond, &wt.lock);
        }
    }
    pthread_mutex_unlock(&wt.lock);
    rc = req->rc;
out:
    pthread_cond_destroy(&wt.cond);
    pthread_mutex_destroy(&wt.lock);
    return rc;
}

void rv_writer_stop_retrying(struct rv_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->no_retry = true;
    pthread_mutex_unlock(&w->lock);
}

size_t rv_writer_queued(struct rv_writer *w)
{
    size_t n;
    pthread_mutex_lock(&w->lock);
    n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void rv_writer_free(struct rv_writer **wp)
{
    struct rv_writer *w = wp ? *wp : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL); /* it stops the ack thread after its last group */
    destroy(w);
    *wp = NULL;
}

/*
 * writer: the one LMDB writer thread, with group commit.
 *
 * Any thread submits write requests (events + cursors + alerts); the
 * writer thread takes every request waiting (up to opts.max_events),
 * commits them in one rv_store_put_batch() -- one fsync for all -- then
 * hands the group to its ack thread, which syncs once more (the meta page,
 * for every group committed meanwhile) and calls each request's done();
 * at light load (nothing queued, nothing waiting for a sync) the commit
 * syncs its meta page itself and the writer thread calls done() at once.
 * A request is durable when done() runs with rc == RV_OK. Nothing here
 * calls zmq: callers wake their own threads from done() (eventfd, condvar).
 *
 * Threads: rv_writer_submit*() from any thread. done() and the hooks are
 * called one at a time, in commit order, on the ack thread or the writer
 * thread, under one lock (a full memory barrier between any two calls, so
 * a zmq socket made in on_start may be used by on_commit, as libzmq allows
 * for a socket that changes threads). They must not block.
 */
#ifndef RV_WRITER_H
#define RV_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "rv/store.h"

struct rv_writer;
struct rv_write_req;

typedef void (*rv_write_done_fn)(struct rv_write_req *req, void *arg);

/* Owned by the submitter; it must stay valid until done() is called.
 * The writer reads evs/cur/al and fills res, rc, err. */
struct rv_write_req {
    const struct rv_event *evs; /* events, may be NULL if n == 0 */
    size_t n;
    const struct rv_cursor_rec *cur;
    size_t nc;
    const struct rv_alert_rec *al;
    size_t na;
    struct rv_put_result *res; /* n entries, filled before done() */
    int rc;                    /* RV_OK when committed */
    struct rv_errbuf err;      /* detail when rc != RV_OK */
    rv_write_done_fn done;     /* called once, on the ack or writer thread (see above) */
    void *arg;
    struct rv_write_req *next_; /* writer-internal */
};

struct rv_writer_hooks {
    /* on_start: in rv_writer_new, on its caller's thread, before the
     * writer's threads start (e.g. to create a zmq socket for on_commit).
     * on_commit: after each commit with the committed log seq range (first
     * > last when only cursors/alerts were written), as done() above.
     * on_stop: after the last on_commit, on the ack thread. Any may be
     * NULL. */
    void (*on_start)(void *arg);
    void (*on_commit)(void *arg, uint64_t first_seq, uint64_t last_seq, uint64_t last_alert_seq);
    void (*on_stop)(void *arg);
    void *arg;
};

struct rv_writer_opts {
    size_t max_events;      /* events per transaction (default 50000) */
    size_t queue_events;    /* events queued before submit says RV_EAGAIN (default 200000) */
    unsigned max_delay_us;  /* wait this long for more after the first request (default 0:
                               batches form while the previous commit syncs) */
    unsigned retry_ms;      /* wait before retrying after RV_EFULL (default 1000) */
    unsigned flush_ms;      /* rollup checkpoint tick when idle (default 1000) */
    int64_t retention_ms;   /* delete raw log records ingested longer ago than this, checked
                               hourly on the writer thread (default 0: keep everything) */
};

void rv_writer_opts_default(struct rv_writer_opts *o);

/* Starts the writer thread on ST (borrowed; close it after
 * rv_writer_free). OPTS and HOOKS may be NULL.
 * Errors: RV_ENOMEM, RV_EIO (thread). */
int rv_writer_new(struct rv_store *st, const struct rv_writer_opts *opts,
                  const struct rv_writer_hooks *hooks, struct rv_writer **out);

/* Queues REQ. RV_EAGAIN when the queue holds queue_events already (REQ
 * not queued; a request larger than the whole queue is still taken when
 * the queue is empty). RV_EINVAL after stop began. */
int rv_writer_submit(struct rv_writer *w, struct rv_write_req *req);

/* Queues REQ (waiting for room) and waits for it to commit. Returns
 * req->rc, or RV_ETIMEDOUT when no room came within TIMEOUT_MS (0 = no
 * limit; REQ not queued then). Once queued it waits for the commit, which
 * always completes (a full disk is retried until space returns or the
 * writer stops). REQ's done/arg are overwritten. */
int rv_writer_submit_wait(struct rv_writer *w, struct rv_write_req *req, unsigned timeout_ms);

/* For shutdown: from now on a commit that fails with a full disk is not
 * retried; its requests complete with RV_EFULL (not acked, so partners
 * resend after a restart). Requests still commit normally otherwise.
 * Any thread. */
void rv_writer_stop_retrying(struct rv_writer *w);

/* Number of events waiting. Any thread. */
size_t rv_writer_queued(struct rv_writer *w);

/* Commits everything queued, stops the thread, frees. Accepts NULL;
 * sets *w to NULL. Every queued request gets done() before return. */
void rv_writer_free(struct rv_writer **w);

#endif

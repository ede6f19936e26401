/*
 * backtest: `rvctl backtest`, the offline replay of a dataset through the
 * same engine as the live stage, scored against labelled episodes.
 *
 * Each --events file is one feed: it is parsed with its feed parser (the
 * source name is the file's base name up to the first '.', as a feed's
 * configured name would be; its format the --format before it, or the
 * only one, or ndjson) and written in batches into a temporary store
 * (mkdtemp, no_sync, removed at the end), so deduplication and the log
 * record format are the live ones. Files are mmap'd. An ndjson file is
 * streamed in its own order, nothing but the current batch in memory; a
 * file of a feed format is one payload, whose events are held (at most
 * --sort-max-events, as a feed's sort_max_events) and written in
 * event-time order (rv_feed_parser_sorted), as the feed workers write a
 * payload. The logs of the files are then merged by
 * event time (ties: file order, then log order) -- the order in which live
 * feeds would have delivered them -- and pushed through the engine with
 * seqs counting from 1. For a single file that is exactly the order of the
 * file, as live ingest of it gives.
 *
 * Scoring (issue 5): an alert "at the level" is the span during which a
 * national alert (admin1 null) of a (country, violation) is at or above
 * --level. An episode is detected when such a span starts between 1 hour
 * before its start and its end; lead = span start - episode start. A span
 * is a true alert when it overlaps [start - 1 h, end + 6 h] of an episode
 * of the same country and violation, else a false alarm. False alarms per
 * country-month divide by the countries seen in the events and the months
 * the events span.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "rv/agg.h"
#include "rv/config.h"
#include "rv/country.h"
#include "rv/feed.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include "engine_int.h"

#define HOUR_MS 3600000LL
#define LOAD_BATCH 10000
#define MERGE_BUDGET 262144 /* events buffered over all files while merging */
#define SORT_MAX_LIMIT 100000000 /* --sort-max-events, as a feed's sort_max_events */

static const char usage[] =
    "usage: rvctl backtest --events FILE... [--format ndjson|gdelt|acled|ooni|ioda]...\n"
    "                      --episodes FILE [--level watch|warning|critical] [--json]\n"
    "                      [--config FILE] [--alerts FILE] [--timings]\n"
    "                      [--sort-max-events N]\n"
    "Replays the events offline through the aggregator (a temporary store, no\n"
    "network) and compares its alerts at or above --level (default warning) with\n"
    "the labelled episodes (CSV: country_iso2,start_utc,end_utc,violation,kind,\n"
    "description,source). Each events file is one feed, named after the file\n"
    "(up to its first '.'). --format: the format of the files (default ndjson);\n"
    "given once, it names every file; given several times, each names the\n"
    "--events files after it up to the next one, files before the first are\n"
    "ndjson, and each must be followed by a file\n"
    "(--format ioda --events a.json --format acled --events b.csv). A file of a\n"
    "feed format is sorted by event time as the feed workers do, holding at most\n"
    "--sort-max-events events (default 200000, ~25-50 MB; 0: no sort): a file with\n"
    "more goes in sorted runs of that many, one after the other, and events then\n"
    "behind the watermark are late. An ndjson file is read in its order, which\n"
    "must be time order (within the allowed lateness).\n"
    "--config: take the \"aggregator\" section of this config file. --alerts: also\n"
    "write every alert state change there, one JSON a line.\n"
    "The temporary store goes in $TMPDIR (default /tmp).\n"
    "--timings: print the time of the load and of the replay on stderr.\n"
    "Prints: episodes N detected D recall R alerts A precision P lead_median_s L\n"
    "false_alarms_per_country_month F, then one line per missed episode.\n"
    "Exit: 0 when it ran, 2 on bad usage or input.\n";

struct episode {
    char country[3];
    int violation;
    int64_t start, end;
    char *desc;
    bool detected;
    int64_t lead_ms;
};

struct span {
    char country[3];
    int violation;
    int64_t start, end; /* end INT64_MAX: still open */
};

struct bt {
    int level;
    struct span *spans;
    size_t nspans, capspans;
    FILE *alerts_out;
    bool tty;
    uint64_t nalerts;
};

/* ------------------------------------------------------------- episodes */

/* Splits one CSV line (RFC 4180 quoting) into at most CAP fields, in
 * place. Returns the number of fields or -1 on a bad quote. */
static int csv_split(char *line, char **f, int cap)
{
    int n = 0;
    char *r = line, *w;

    while (n < cap) {
        f[n++] = w = r;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == '\0')
                    return -1;
                if (*r == '"') {
                    if (r[1] == '"') {
                        *w++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                *w++ = *r++;
            }
            if (*r != ',' && *r != '\0')
                return -1;
        } else {
            while (*r != ',' && *r != '\0')
                *w++ = *r++;
        }
        if (*r == '\0') {
            *w = '\0';
            return n;
        }
        *w = '\0';
        r++;
    }
    return n + 1; /* too many fields */
}

static int parse_when(const char *s, int64_t *ms)
{
    int y, mo, d;
    char tail;

    if (rv_time_parse_rfc3339(s, ms) == RV_OK)
        return RV_OK;
    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) == 3)
        return rv_time_from_civil(y, mo, d, 0, 0, 0, ms);
    return RV_EINVAL;
}

static int load_episodes(const char *path, struct episode **out, size_t *nout,
                         struct rv_errbuf *err)
{
    static const char header[] = "country_iso2,start_utc,end_utc,violation,kind,description,source";
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, n = 0, ncap = 0, lineno = 0;
    ssize_t len;
    struct episode *eps = NULL;
    int rc = RV_OK;

    if (f == NULL)
        return rv_err_set(err, RV_EINVAL, "episodes: cannot open '%s': %s", path, strerror(errno));
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *fl[8];
        int nf;

        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (lineno == 1) {
            const char *h = line;
            if ((unsigned char)h[0] == 0xEF && (unsigned char)h[1] == 0xBB &&
                (unsigned char)h[2] == 0xBF)
                h += 3; /* a BOM from a spreadsheet */
            if (strcmp(h, header) != 0) {
                rc = rv_err_set(err, RV_EINVAL, "episodes: line 1: header must be '%s'", header);
                goto fail;
            }
            continue;
        }
        if (len == 0)
            continue;
        nf = csv_split(line, fl, 7);
        if (nf != 7) {
            rc = rv_err_set(err, RV_EINVAL, "episodes: line %zu: %s", lineno,
                            nf < 0 ? "bad quoting" : "expected 7 fields");
            goto fail;
        }
        if (n == ncap) {
            size_t nc = ncap ? ncap * 2 : 32;
            struct episode *ne = realloc(eps, nc * sizeof *ne);
            if (ne == NULL) {
                rc = rv_err_set(err, RV_ENOMEM, "episodes: out of memory");
                goto fail;
            }
            eps = ne;
            ncap = nc;
        }
        struct episode *e = &eps[n];
        memset(e, 0, sizeof *e);
        if (!rv_country_valid(fl[0])) {
            rc = rv_err_set(err, RV_EINVAL,
                            "episodes: line %zu: country_iso2: '%.8s' is not an ISO 3166-1 "
                            "alpha-2 code",
                            lineno, fl[0]);
            goto fail;
        }
        memcpy(e->country, fl[0], 3);
        if (parse_when(fl[1], &e->start) != RV_OK) {
            rc = rv_err_set(err, RV_EINVAL, "episodes: line %zu: start_utc: '%.40s' is not a time",
                            lineno, fl[1]);
            goto fail;
        }
        if (parse_when(fl[2], &e->end) != RV_OK) {
            rc = rv_err_set(err, RV_EINVAL, "episodes: line %zu: end_utc: '%.40s' is not a time",
                            lineno, fl[2]);
            goto fail;
        }
        if (e->end < e->start) {
            rc = rv_err_set(err, RV_EINVAL, "episodes: line %zu: end_utc: before start_utc",
                            lineno);
            goto fail;
        }
        e->violation = rv_violation_from_name(fl[3]);
        if (e->violation < 0) {
            rc = rv_err_set(err, RV_EINVAL,
                            "episodes: line %zu: violation: '%.40s' is not a taxonomy code", lineno,
                            fl[3]);
            goto fail;
        }
        e->desc = strdup(fl[5]);
        if (e->desc == NULL) {
            rc = rv_err_set(err, RV_ENOMEM, "episodes: out of memory");
            goto fail;
        }
        n++;
    }
    if (lineno == 0) {
        rc = rv_err_set(err, RV_EINVAL, "episodes: line 1: header must be '%s'", header);
        goto fail;
    }
    free(line);
    fclose(f);
    *out = eps;
    *nout = n;
    return RV_OK;
fail:
    for (size_t i = 0; i < n; i++)
        free(eps[i].desc);
    free(eps);
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------- loading */

/* The load runs on two threads: the feed parser on the calling one fills a
 * batch while a writer thread stores the previous one (double buffering:
 * the parser waits when the writer has not finished). Only the writer
 * thread calls rv_store_put_batch while loading. */
struct loadctx {
    struct rv_store *st;
    struct rv_event *batch, *spare; /* spare: the batch the writer had last */
    size_t n;
    struct rv_put_result *res;
    uint64_t emitted, rejected;
    int rc;
    struct rv_errbuf err;
    bool tty;
    const char *file;
    size_t sort_max;   /* events a sort holds (sink.sort_max) */
    size_t sort_runs;  /* of the file being loaded: runs out before its end */
    size_t err_file;   /* the file that ERR is about */
    /* hand-over to the writer thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    bool threaded;     /* else put inline */
    struct rv_event *full; /* handed over, not yet stored (mu) */
    size_t nfull;
    size_t cur_file, full_file; /* the file of the batch being filled / handed over */
    uint64_t *file_last;   /* per file: the last seq stored for it, 0 if none yet (mu) */
    bool stop;         /* (mu) */
    int wrc;           /* the writer's first error (mu) */
    size_t wfile;      /* the file of that error's batch (mu) */
    struct rv_errbuf werr;
};

static int put_events(struct rv_store *st, struct rv_event *evs, size_t n,
                      struct rv_put_result *res, struct rv_errbuf *err)
{
    int rc = rv_store_put_batch(st, evs, n, NULL, 0, NULL, 0, res, err);

    for (size_t i = 0; i < n; i++)
        rv_event_release(&evs[i]);
    return rc;
}

static void *load_writer(void *arg)
{
    struct loadctx *c = arg;

    pthread_setname_np(pthread_self(), "rv-bt-writer");
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->full == NULL && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->full == NULL)
            break; /* stop, nothing left */
        struct rv_event *evs = c->full;
        size_t n = c->nfull;
        bool skip = c->wrc != RV_OK;
        pthread_mutex_unlock(&c->mu);
        struct rv_errbuf err = {0};
        int rc = RV_OK;
        if (skip)
            for (size_t i = 0; i < n; i++)
                rv_event_release(&evs[i]);
        else
            rc = put_events(c->st, evs, n, c->res, &err);
        pthread_mutex_lock(&c->mu);
        if (rc == RV_OK)
            c->file_last[c->full_file] = rv_store_last_seq(c->st);
        if (rc != RV_OK && c->wrc == RV_OK) {
            c->wrc = rc;
            c->wfile = c->full_file;
            c->werr = err;
        }
        c->full = NULL;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Sets c->err from the writer's error RC (c->werr, of file c->wfile). */
static void store_error(struct loadctx *c, int rc)
{
    rv_err_set(&c->err, rc, "temporary store: %s",
               c->werr.msg[0] ? c->werr.msg : rv_strerror(rc));
    c->err_file = c->wfile;
}

/* Waits until the writer has stored everything handed over; returns its
 * first error (c->err set). */
static int load_drain(struct loadctx *c)
{
    int rc;

    if (!c->threaded)
        return RV_OK;
    pthread_mutex_lock(&c->mu);
    while (c->full != NULL)
        pthread_cond_wait(&c->cv, &c->mu);
    rc = c->wrc;
    if (rc != RV_OK)
        store_error(c, rc);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int flush_batch(struct loadctx *c)
{
    int rc = RV_OK;

    if (c->n > 0 && !c->threaded) {
        rc = put_events(c->st, c->batch, c->n, c->res, &c->werr);
        if (rc == RV_OK) {
            c->file_last[c->cur_file] = rv_store_last_seq(c->st);
        } else {
            c->wfile = c->cur_file;
            store_error(c, rc);
        }
        c->n = 0;
    } else if (c->n > 0) {
        /* the writer is done with the previous batch once full is NULL */
        pthread_mutex_lock(&c->mu);
        while (c->full != NULL)
            pthread_cond_wait(&c->cv, &c->mu);
        rc = c->wrc;
        if (rc != RV_OK) {
            store_error(c, rc);
            for (size_t i = 0; i < c->n; i++)
                rv_event_release(&c->batch[i]);
        } else {
            struct rv_event *t = c->spare;
            c->full = c->batch;
            c->nfull = c->n;
            c->full_file = c->cur_file;
            c->spare = c->batch;
            c->batch = t;
            pthread_cond_broadcast(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
        c->n = 0;
    }
    if (c->tty)
        fprintf(stderr, "\rloading %.60s: %llu events", c->file, (unsigned long long)c->emitted);
    return rc;
}

/* Starts the writer thread (or, when none can start, the load stores
 * inline). */
static void load_start(struct loadctx *c)
{
    c->threaded = false;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        return;
    pthread_cond_init(&c->cv, NULL);
    c->threaded = pthread_create(&c->thr, NULL, load_writer, c) == 0;
    if (!c->threaded) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
    }
}

static void load_stop(struct loadctx *c)
{
    if (!c->threaded)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thr, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    c->threaded = false;
}

static int on_emit(void *arg, struct rv_event *ev)
{
    struct loadctx *c = arg;

    c->batch[c->n] = *ev; /* takes its strings */
    rv_event_init(ev);
    c->n++;
    c->emitted++;
    if (c->n == LOAD_BATCH && (c->rc = flush_batch(c)) != RV_OK)
        return 1;
    return 0;
}

static void on_sort_run(void *arg, size_t n)
{
    struct loadctx *c = arg;

    (void)n;
    c->sort_runs++;
}

static void on_reject(void *arg, size_t record, const char *msg)
{
    struct loadctx *c = arg;

    c->rejected++;
    if (c->rejected <= 5)
        fprintf(stderr, "%s: record %zu: %s\n", c->file, record, msg);
}

static void source_from_path(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    size_t n;

    b = b ? b + 1 : path;
    n = strcspn(b, ".");
    if (n == 0) {
        b = "backtest";
        n = strlen(b);
    }
    if (n > RV_SOURCE_MAX)
        n = RV_SOURCE_MAX;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

static int load_file(struct loadctx *c, const char *path, rv_feed_parse_fn parse)
{
    char source[RV_SOURCE_MAX + 1];
    struct rv_feed_sink sink;
    struct stat sb;
    void *map = NULL;
    int fd, rc;

    source_from_path(path, source, sizeof source);
    c->err_file = c->cur_file;
    c->sort_runs = 0;
    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = rv_err_set(&c->err, RV_EINVAL, "cannot open: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return rv_err_set(&c->err, RV_EINVAL, "cannot map: %s", strerror(errno));
        }
        madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
    }
    close(fd);
    sink.source = source;
    sink.emit = on_emit;
    sink.reject = on_reject;
    sink.arg = c;
    sink.stop = NULL;
    sink.sort_max = c->sort_max;
    sink.sort_run = on_sort_run;
    c->file = path;
    c->rc = RV_OK;
    rc = parse(map ? map : "", (size_t)sb.st_size, &sink, &c->err);
    if (rc == RV_OK)
        rc = c->rc;
    if (rc == RV_OK)
        rc = flush_batch(c);
    else
        for (size_t i = 0; i < c->n; i++)
            rv_event_release(&c->batch[i]);
    c->n = 0;
    if (map)
        munmap(map, (size_t)sb.st_size);
    if (rc != RV_OK && c->err.msg[0] == '\0')
        rv_err_set(&c->err, rc, "%s", rv_strerror(rc));
    return rc;
}

/* --------------------------------------------------------------- merge */

/* A file's log range, read a chunk at a time: views whose strings are
 * copied into BYTES (the read txn ends with the fill). */
struct reader {
    uint64_t next, last; /* seq range still to read */
    struct rv_event_view *buf;
    uint64_t *seqs;
    size_t n, pos, cap;
    char *bytes;
    size_t blen, bcap;
    bool oom;
    int file;
};

static int on_fill(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *ev)
{
    struct reader *r = arg;
    size_t need = rv_event_view_bytes(ev);

    (void)ingest_ms;
    if (seq > r->last)
        return 1;
    if (r->blen + need > r->bcap) {
        if (r->n > 0)
            return 1; /* this one starts the next fill */
        char *nb = realloc(r->bytes, need); /* nothing points into it yet */
        if (nb == NULL) {
            r->oom = true;
            return 1;
        }
        r->bytes = nb;
        r->bcap = need;
    }
    r->blen += rv_event_view_copy(&r->buf[r->n], ev, r->bytes + r->blen);
    r->seqs[r->n] = seq;
    r->n++;
    r->next = seq + 1;
    return r->n == r->cap;
}

static int reader_fill(struct rv_store *st, struct reader *r, struct rv_errbuf *err)
{
    int rc;

    r->n = r->pos = r->blen = 0;
    if (r->next > r->last)
        return RV_OK;
    rc = rv_store_read_log_view(st, r->next, r->cap, on_fill, r, err);
    if (rc == RV_OK && r->oom)
        return rv_err_set(err, RV_ENOMEM, "out of memory");
    if (rc == RV_OK && r->n == 0)
        r->next = r->last + 1; /* nothing left in range */
    return rc;
}

/* Heap of readers ordered by (time of head, file, seq). */
static bool before(const struct reader *a, const struct reader *b)
{
    const struct rv_event_view *x = &a->buf[a->pos], *y = &b->buf[b->pos];

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms;
    if (a->file != b->file)
        return a->file < b->file;
    return a->seqs[a->pos] < b->seqs[b->pos];
}

static void sift_down(struct reader **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(h[l], h[m]))
            m = l;
        if (r < n && before(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        struct reader *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

struct mergectx {
    struct rv_store *st;
    struct reader *readers, **heap;
    size_t nfiles;
    uint64_t total;
    bool tty;
    uint64_t seq; /* events handed to the engine */
};

struct streamctx {
    struct rv_agg_pipe *pp;
    struct mergectx *mc;
    uint64_t next, last;
    size_t n;
    bool stopped;
};

static void progress(struct mergectx *mc)
{
    if (mc->tty && mc->seq % 100000 == 0)
        fprintf(stderr, "\rreplaying: %llu / %llu events", (unsigned long long)mc->seq,
                (unsigned long long)mc->total);
}

static int on_stream(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *ev)
{
    struct streamctx *c = arg;

    (void)ingest_ms;
    if (seq > c->last) {
        c->stopped = true;
        return 1;
    }
    c->next = seq + 1;
    c->n++;
    ++c->mc->seq;
    progress(c->mc);
    if (rv_agg_pipe_put(c->pp, c->mc->seq, ev)) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

/* The producer of the replay (on the pipe's thread). One file: its log
 * as it is, read in place. Several: the heap merge of their logs. */
static int produce_merge(struct rv_agg_pipe *pp, void *arg, struct rv_errbuf *err)
{
    struct mergectx *mc = arg;
    size_t per = MERGE_BUDGET / mc->nfiles, nheap = 0;
    int rc;

    if (mc->nfiles == 1) {
        struct streamctx c = {pp, mc, mc->readers[0].next, mc->readers[0].last, 0, false};
        do {
            c.n = 0;
            rc = rv_store_read_log_view(mc->st, c.next, 4096, on_stream, &c, err);
        } while (rc == RV_OK && c.n == 4096 && !c.stopped);
        return rc;
    }
    if (per < 4)
        per = 4; /* a year of 15-minute GDELT files is 35k readers */
    if (per > 4096)
        per = 4096;
    for (size_t i = 0; i < mc->nfiles; i++) {
        struct reader *r = &mc->readers[i];
        r->cap = per;
        r->buf = calloc(per, sizeof *r->buf);
        r->seqs = calloc(per, sizeof *r->seqs);
        r->bcap = per * 256; /* grown for one large event if need be */
        r->bytes = malloc(r->bcap);
        if (r->buf == NULL || r->seqs == NULL || r->bytes == NULL)
            return rv_err_set(err, RV_ENOMEM, "out of memory");
        if ((rc = reader_fill(mc->st, r, err)) != RV_OK)
            return rc;
        if (r->n > 0)
            mc->heap[nheap++] = r;
    }
    for (size_t i = nheap / 2; i-- > 0;)
        sift_down(mc->heap, nheap, i);
    while (nheap > 0) {
        struct reader *r = mc->heap[0];

        ++mc->seq;
        progress(mc);
        if (rv_agg_pipe_put(pp, mc->seq, &r->buf[r->pos]))
            return RV_OK; /* the engine stopped: its error is reported */
        if (++r->pos == r->n) {
            if ((rc = reader_fill(mc->st, r, err)) != RV_OK)
                return rc;
            if (r->n == 0)
                mc->heap[0] = mc->heap[--nheap];
        }
        sift_down(mc->heap, nheap, 0);
    }
    return RV_OK;
}

/* ------------------------------------------------------------- scoring */

static void on_bt_alert(void *arg, const struct rv_agg_alert *a)
{
    struct bt *b = arg;

    b->nalerts++;
    if (b->alerts_out) {
        fwrite(a->json, 1, a->len, b->alerts_out);
        fputc('\n', b->alerts_out);
    }
    if (a->admin1 != NULL)
        return;
    bool was = a->state != RV_AST_OPENED && a->prev_level >= b->level;
    bool is = a->state != RV_AST_RESOLVED && a->level >= b->level;
    if (!was && is) {
        if (b->nspans == b->capspans) {
            size_t nc = b->capspans ? b->capspans * 2 : 64;
            struct span *ns = realloc(b->spans, nc * sizeof *ns);
            if (ns == NULL)
                return; /* scored without it; reported as fewer alerts */
            b->spans = ns;
            b->capspans = nc;
        }
        struct span *s = &b->spans[b->nspans++];
        memcpy(s->country, a->country, 3);
        s->violation = a->violation;
        s->start = a->updated_ms;
        s->end = INT64_MAX;
    } else if (was && !is) {
        for (size_t i = b->nspans; i-- > 0;) {
            struct span *s = &b->spans[i];
            if (s->end == INT64_MAX && s->violation == a->violation &&
                strcmp(s->country, a->country) == 0) {
                s->end = a->updated_ms;
                break;
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int rv_backtest_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"events", required_argument, NULL, 'e'}, {"format", required_argument, NULL, 'f'},
        {"episodes", required_argument, NULL, 'p'}, {"level", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},          {"config", required_argument, NULL, 'c'},
        {"alerts", required_argument, NULL, 'a'},  {"help", no_argument, NULL, 'h'},
        {"timings", no_argument, NULL, 't'},       {"sort-max-events", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    const char **files = NULL, **formats = NULL;
    rv_feed_parse_fn *parsers = NULL;
    size_t nfiles = 0, nformats = 0;
    const char *format = NULL, *first_format = NULL, *episodes_path = NULL, *config_path = NULL,
               *alerts_path = NULL;
    size_t sort_max = RV_FEED_SORT_MAX_DEFAULT;
    bool format_used = true;
    bool json = false, timings = false;
    uint64_t t_load = 0, t_replay = 0;
    struct bt b;
    struct rv_errbuf err = {0};
    struct rv_agg_params p;
    struct rv_config conf;
    struct episode *eps = NULL;
    size_t neps = 0;
    char dir[PATH_MAX];
    bool have_dir = false;
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct reader *readers = NULL, **heap = NULL;
    struct loadctx lc;
    struct rv_agg_engine *eng = NULL;
    int rc, c, ret = 2;

    memset(&b, 0, sizeof b);
    memset(&lc, 0, sizeof lc);
    rv_config_init(&conf);
    b.level = RV_LVL_WARNING;
    files = calloc((size_t)argc + 1, sizeof *files);
    formats = calloc((size_t)argc + 1, sizeof *formats);
    parsers = calloc((size_t)argc + 1, sizeof *parsers);
    if (files == NULL || formats == NULL || parsers == NULL) {
        free(files);
        free(formats);
        free(parsers);
        return 2;
    }
    optind = 0; /* glibc: a full re-initialisation, the function may run twice */
    opterr = 0;
    /* "+": no permutation, so that --events can take the words after it */
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            /* a file takes the --format before it (none yet: ndjson, or the
             * only --format, see below) */
            formats[nfiles] = format;
            files[nfiles++] = optarg;
            /* --events A B C: the following non-option words are files too */
            while (optind < argc && argv[optind][0] != '-') {
                formats[nfiles] = format;
                files[nfiles++] = argv[optind++];
            }
            format_used = true;
            break;
        case 'f':
            if (rv_feed_parser(optarg) == NULL) {
                fprintf(stderr,
                        "backtest: --format: '%s' is not ndjson, gdelt, acled, ooni or ioda\n",
                        optarg);
                goto done;
            }
            if (nformats > 0 && !format_used) {
                /* of several, each names the files after it up to the next:
                 * one with none would be silently ignored */
                fprintf(stderr, "backtest: --format: '%s' is followed by no --events\n%s",
                        format, usage);
                goto done;
            }
            format = optarg;
            if (first_format == NULL)
                first_format = optarg;
            nformats++;
            format_used = false;
            break;
        case 's': {
            char *end = NULL;
            unsigned long long v;
            errno = 0;
            v = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                v > SORT_MAX_LIMIT) {
                fprintf(stderr, "backtest: --sort-max-events: '%s' is not an integer 0..%d\n",
                        optarg, SORT_MAX_LIMIT);
                goto done;
            }
            sort_max = (size_t)v;
            break;
        }
        case 'p': episodes_path = optarg; break;
        case 'l':
            b.level = rv_agg_level_from_name(optarg);
            if (b.level < RV_LVL_WATCH) {
                fprintf(stderr, "backtest: --level: '%s' is not watch, warning or critical\n",
                        optarg);
                goto done;
            }
            break;
        case 'j': json = true; break;
        case 'c': config_path = optarg; break;
        case 'a': alerts_path = optarg; break;
        case 't': timings = true; break;
        case 'h':
            fputs(usage, stdout);
            ret = 0;
            goto done;
        default:
            fprintf(stderr, "backtest: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], usage);
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "backtest: unexpected argument '%s'\n%s", argv[optind], usage);
        goto done;
    }
    if (nfiles == 0 || episodes_path == NULL) {
        fprintf(stderr, "backtest: --events and --episodes are required\n%s", usage);
        goto done;
    }
    if (nformats > 1 && !format_used) {
        /* one --format names every file; of several, each names the files
         * after it, and a last one with none would be silently ignored */
        fprintf(stderr, "backtest: --format: '%s' is followed by no --events\n%s", format, usage);
        goto done;
    }
    for (size_t i = 0; i < nfiles; i++) {
        /* a single --format names every file wherever it stands; of
         * several, files before the first are ndjson (the default) */
        if (nformats == 1)
            formats[i] = first_format;
        else if (formats[i] == NULL)
            formats[i] = "ndjson";
        /* a payload's events in event-time order, as the feed workers
         * write them (ndjson: in file order; --sort-max-events 0: every
         * format in file order, as a feed's sort_max_events 0) */
        parsers[i] = sort_max ? rv_feed_parser_sorted(formats[i]) : rv_feed_parser(formats[i]);
    }
    if (config_path != NULL && rv_config_load(&conf, config_path, &err) != RV_OK) {
        fprintf(stderr, "backtest: config: %s\n", err.msg);
        goto done;
    }
    if (rv_agg_params_from_json(rv_config_section(&conf, "aggregator"), &p, &err) != RV_OK) {
        fprintf(stderr, "backtest: config: %s\n", err.msg);
        goto done;
    }
    if (load_episodes(episodes_path, &eps, &neps, &err) != RV_OK) {
        fprintf(stderr, "backtest: %s\n", err.msg);
        goto done;
    }
    if (alerts_path != NULL && (b.alerts_out = fopen(alerts_path, "w")) == NULL) {
        fprintf(stderr, "backtest: --alerts: cannot open '%s': %s\n", alerts_path,
                strerror(errno));
        goto done;
    }
    b.tty = isatty(STDERR_FILENO);

    /* load every file into a temporary store */
    t_load = rv_mono_ns();
    {
        /* TMPDIR when set: a year of GDELT makes a temporary store of a few
         * GiB, which a tmpfs /tmp would hold in memory */
        const char *t = getenv("TMPDIR");
        int n;
        if (t == NULL || *t == '\0')
            t = "/tmp";
        n = snprintf(dir, sizeof dir, "%s/rv-backtest-XXXXXX", t);
        if (n < 0 || (size_t)n >= sizeof dir) {
            fprintf(stderr, "backtest: temporary store: TMPDIR is too long\n");
            goto done;
        }
        if (mkdtemp(dir) == NULL) {
            fprintf(stderr, "backtest: temporary store in '%s': %s\n", t, strerror(errno));
            goto done;
        }
    }
    have_dir = true;
    rv_store_opts_default(&so);
    so.no_sync = true;
    so.rollup_flush_ms = 60000;
    if ((rc = rv_store_open(dir, &so, &st, &err)) != RV_OK) {
        fprintf(stderr, "backtest: temporary store: %s\n", err.msg[0] ? err.msg : rv_strerror(rc));
        goto done;
    }
    readers = calloc(nfiles, sizeof *readers);
    heap = calloc(nfiles, sizeof *heap);
    lc.batch = calloc(LOAD_BATCH, sizeof *lc.batch);
    lc.spare = calloc(LOAD_BATCH, sizeof *lc.spare);
    lc.res = calloc(LOAD_BATCH, sizeof *lc.res);
    lc.file_last = calloc(nfiles, sizeof *lc.file_last);
    if (readers == NULL || heap == NULL || lc.batch == NULL || lc.spare == NULL ||
        lc.res == NULL || lc.file_last == NULL) {
        fprintf(stderr, "backtest: out of memory\n");
        goto done;
    }
    lc.st = st;
    lc.tty = b.tty;
    lc.sort_max = sort_max;
    load_start(&lc);
    for (size_t i = 0; i < nfiles; i++) {
        lc.cur_file = i;
        if (load_file(&lc, files[i], parsers[i]) != RV_OK) {
            /* a store error of an earlier batch names its own file */
            load_drain(&lc);
            fprintf(stderr, "backtest: %s (%s): %s\n", files[lc.err_file], formats[lc.err_file],
                    lc.err.msg);
            goto done;
        }
        if (lc.sort_runs > 0)
            fprintf(stderr,
                    "backtest: %s (%s): sorted in %zu runs of at most %zu events "
                    "(--sort-max-events), one after the other; events behind the watermark "
                    "are late\n",
                    files[i], formats[i], lc.sort_runs + 1, sort_max);
    }
    if (load_drain(&lc) != RV_OK) {
        fprintf(stderr, "backtest: %s (%s): %s\n", files[lc.err_file], formats[lc.err_file],
                lc.err.msg);
        goto done;
    }
    load_stop(&lc);
    {
        /* each file's seq range: from after the previous file's to its
         * last stored event (none stored: an empty range) */
        uint64_t prev = 0;
        for (size_t i = 0; i < nfiles; i++) {
            if (lc.file_last[i] < prev)
                lc.file_last[i] = prev;
            readers[i].next = prev + 1;
            readers[i].last = lc.file_last[i];
            readers[i].file = (int)i;
            prev = lc.file_last[i];
        }
    }
    if (b.tty)
        fprintf(stderr, "\rloaded %zu files: %llu events%40s\n", nfiles,
                (unsigned long long)lc.emitted, "");
    if (lc.rejected > 0)
        fprintf(stderr, "backtest: rejected %llu records (first ones above)\n",
                (unsigned long long)lc.rejected);

    /* merge the files by event time through the engine: the merge on a
     * thread of its own, the engine on this one (rv_agg_pipe_run) */
    {
        struct rv_agg_sink sink = {on_bt_alert, &b};
        struct mergectx mc = {st, readers, heap, nfiles, rv_store_last_seq(st), b.tty, 0};

        t_load = rv_mono_ns() - t_load;
        if ((rc = rv_agg_engine_new(&p, 0, &sink, &eng)) != RV_OK) {
            fprintf(stderr, "backtest: engine: %s\n", rv_strerror(rc));
            goto done;
        }
        t_replay = rv_mono_ns();
        if ((rc = rv_agg_pipe_run(eng, produce_merge, &mc, &err)) != RV_OK) {
            fprintf(stderr, "backtest: %s\n", err.msg[0] ? err.msg : rv_strerror(rc));
            goto done;
        }
        t_replay = rv_mono_ns() - t_replay;
        if (b.tty)
            fprintf(stderr, "\rreplayed: %llu events%20s\n", (unsigned long long)mc.seq, "");
        if (timings)
            fprintf(stderr,
                    "backtest: timings: events %llu load_s %.3f replay_s %.3f "
                    "replay_events_per_s %.0f\n",
                    (unsigned long long)mc.seq, (double)t_load / 1e9, (double)t_replay / 1e9,
                    t_replay ? (double)mc.seq / ((double)t_replay / 1e9) : 0.0);
    }

    /* score */
    {
        struct rv_agg_engine_stats s;
        int64_t *leads = calloc(neps + 1, sizeof *leads);
        size_t detected = 0, trues = 0;
        double recall, precision, lead_median = 0, fa_rate, months;
        bool have_prec, have_lead;

        if (leads == NULL) {
            fprintf(stderr, "backtest: out of memory\n");
            goto done;
        }
        rv_agg_engine_get_stats(eng, &s);
        for (size_t i = 0; i < neps; i++) {
            struct episode *e = &eps[i];
            for (size_t k = 0; k < b.nspans; k++) {
                struct span *sp = &b.spans[k];
                if (sp->violation != e->violation || strcmp(sp->country, e->country) != 0)
                    continue;
                if (sp->start >= e->start - HOUR_MS && sp->start <= e->end) {
                    if (!e->detected || sp->start - e->start < e->lead_ms)
                        e->lead_ms = sp->start - e->start;
                    e->detected = true;
                }
            }
            if (e->detected)
                leads[detected++] = e->lead_ms;
        }
        for (size_t k = 0; k < b.nspans; k++) {
            struct span *sp = &b.spans[k];
            for (size_t i = 0; i < neps; i++) {
                struct episode *e = &eps[i];
                if (sp->violation == e->violation && strcmp(sp->country, e->country) == 0 &&
                    sp->start <= e->end + 6 * HOUR_MS && sp->end >= e->start - HOUR_MS) {
                    trues++;
                    break;
                }
            }
        }
        qsort(leads, detected, sizeof *leads, cmp_i64);
        have_lead = detected > 0;
        if (have_lead)
            lead_median = detected % 2 ? (double)leads[detected / 2]
                                       : 0.5 * ((double)leads[detected / 2 - 1] +
                                                (double)leads[detected / 2]);
        free(leads);
        lead_median /= 1000.0;
        recall = neps ? (double)detected / (double)neps : 0;
        have_prec = b.nspans > 0;
        precision = have_prec ? (double)trues / (double)b.nspans : 0;
        months = s.events && s.clock_ms > s.first_ms ? (double)(s.clock_ms - s.first_ms) : 0;
        if (months < 86400000.0)
            months = 86400000.0; /* at least a day */
        months /= 30.436875 * 86400000.0;
        fa_rate = s.countries ? (double)(b.nspans - trues) / ((double)s.countries * months) : 0;
        if (json) {
            cJSON *o = cJSON_CreateObject(), *m;
            char t1[32], t2[32];
            char *txt;
            cJSON_AddNumberToObject(o, "episodes", (double)neps);
            cJSON_AddNumberToObject(o, "detected", (double)detected);
            cJSON_AddNumberToObject(o, "recall", recall);
            cJSON_AddNumberToObject(o, "alerts", (double)b.nspans);
            if (have_prec)
                cJSON_AddNumberToObject(o, "precision", precision);
            else
                cJSON_AddNullToObject(o, "precision");
            if (have_lead)
                cJSON_AddNumberToObject(o, "lead_median_s", lead_median);
            else
                cJSON_AddNullToObject(o, "lead_median_s");
            cJSON_AddNumberToObject(o, "false_alarms_per_country_month", fa_rate);
            m = cJSON_AddArrayToObject(o, "missed");
            for (size_t i = 0; i < neps; i++) {
                if (eps[i].detected)
                    continue;
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "country_iso2", eps[i].country);
                cJSON_AddStringToObject(x, "start_utc", rv_time_format(eps[i].start, t1, sizeof t1));
                cJSON_AddStringToObject(x, "end_utc", rv_time_format(eps[i].end, t2, sizeof t2));
                cJSON_AddStringToObject(x, "violation", rv_violation_name(eps[i].violation));
                cJSON_AddStringToObject(x, "description", eps[i].desc);
                cJSON_AddItemToArray(m, x);
            }
            txt = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (txt == NULL) {
                fprintf(stderr, "backtest: out of memory\n");
                goto done;
            }
            printf("%s\n", txt);
            free(txt);
        } else {
            char pbuf[32], lbuf[32], t1[32], t2[32];
            if (have_prec)
                snprintf(pbuf, sizeof pbuf, "%.3f", precision);
            else
                snprintf(pbuf, sizeof pbuf, "na");
            if (have_lead)
                snprintf(lbuf, sizeof lbuf, "%.0f", lead_median);
            else
                snprintf(lbuf, sizeof lbuf, "na");
            printf("episodes %zu detected %zu recall %.3f alerts %zu precision %s lead_median_s %s "
                   "false_alarms_per_country_month %.3f\n",
                   neps, detected, recall, b.nspans, pbuf, lbuf, fa_rate);
            for (size_t i = 0; i < neps; i++)
                if (!eps[i].detected)
                    printf("missed %s %s %s %s %s\n", eps[i].country,
                           rv_violation_name(eps[i].violation),
                           rv_time_format(eps[i].start, t1, sizeof t1),
                           rv_time_format(eps[i].end, t2, sizeof t2), eps[i].desc);
        }
        if (s.late > 0)
            fprintf(stderr, "backtest: %llu events later than the allowed lateness were not "
                            "aggregated\n",
                    (unsigned long long)s.late);
    }
    ret = 0;
done:
    if (fflush(stdout) != 0)
        ret = 2;
    rv_agg_engine_free(&eng);
    if (readers) {
        for (size_t i = 0; i < nfiles; i++) {
            free(readers[i].buf);
            free(readers[i].seqs);
            free(readers[i].bytes);
        }
    }
    free(readers);
    free(heap);
    load_stop(&lc);
    free(lc.batch);
    free(lc.spare);
    free(lc.res);
    free(lc.file_last);
    rv_store_close(&st);
    if (have_dir)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (b.alerts_out)
        fclose(b.alerts_out);
    for (size_t i = 0; i < neps; i++)
        free(eps[i].desc);
    free(eps);
    free(b.spans);
    free(files);
    free(formats);
    free(parsers);
    rv_config_release(&conf);
    return ret;
}

/*
 * demo: the `--demo` replay of the shipped samples (see rv/demo.h for the
 * timeline). The samples are parsed once at start with the real feed
 * parsers; the thread then writes the history burst and loops over the
 * live emission until stopped.
 *
 * Threads: struct rv_demo is shared between the controlling thread and the
 * replay thread only through `stop` (atomic) and `mu`/`cv` (the wait);
 * everything else belongs to the replay thread after start.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rv/demo.h"
#include "rv/err.h"
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/log.h"
#include "rv/metrics.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#define DEMO_MOD "demo"
#define DEMO_FILE_MAX (64u * 1024 * 1024) /* bytes of one sample file */
#define DEMO_CHUNK 5000                   /* events per write request */
#define DEMO_MAX_COUNTRIES 32             /* IODA countries replayed live */
#define DEMO_SUBMIT_SLICE_MS 500

/* Sample folder -> format and source. */
static const struct demo_dir {
    const char *dir, *format, *source;
} demo_dirs[] = {
    {"partner", "ndjson", "demo-partner"}, {"acled", "acled", "demo-acled"},
    {"gdelt", "gdelt", "demo-gdelt"},      {"ooni", "ooni", "demo-ooni"},
    {"ioda", "ioda", "demo-ioda"},
};
#define DEMO_IODA_DIR 4

struct sample {
    struct rv_event ev; /* original id; time_ms = original time */
    int64_t off_ms;     /* distance to now in the history burst */
    int src;            /* index in demo_dirs */
};

struct country {
    char cc[3];
    double base;              /* median value in the sample */
    const struct rv_event *tpl; /* newest sample probe of the country */
};

struct rv_demo {
    struct rv_writer *w;
    double speed;
    struct sample *s;         /* all samples, sorted by time */
    size_t n, cap;
    size_t *live;             /* indexes of the non-IODA samples, oldest first */
    size_t nlive;
    struct country cc[DEMO_MAX_COUNTRIES];
    size_t ncc;
    int64_t run;              /* start time, s: id suffix */
    rv_metric *m_acc, *m_dup;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    size_t rejected;          /* sample records the parsers rejected (load only) */
};

/* ================================================================= load */

struct load_ctx {
    struct rv_demo *d;
    int src;
    int rc;
};

static int load_emit(void *arg, struct rv_event *ev)
{
    struct load_ctx *c = arg;
    struct rv_demo *d = c->d;

    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 1024;
        struct sample *ns = realloc(d->s, nc * sizeof(*ns));
        if (!ns) {
            c->rc = RV_ENOMEM;
            rv_event_release(ev);
            return 1;
        }
        d->s = ns;
        d->cap = nc;
    }
    d->s[d->n].ev = *ev; /* moves the owned strings */
    rv_event_init(ev);
    d->s[d->n].off_ms = 0;
    d->s[d->n].src = c->src;
    d->n++;
    return 0;
}

static void load_reject(void *arg, size_t record, const char *msg)
{
    struct load_ctx *c = arg;

    (void)record;
    (void)msg;
    c->d->rejected++;
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    char *b;
    size_t n;

    *buf = NULL;
    *len = 0;
    if (!fp)
        return RV_EIO;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > DEMO_FILE_MAX) {
        fclose(fp);
        return RV_ETOOBIG;
    }
    b = malloc((size_t)sb.st_size + 1);
    if (!b) {
        fclose(fp);
        return RV_ENOMEM;
    }
    n = fread(b, 1, (size_t)sb.st_size, fp);
    fclose(fp);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return RV_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Parses every file of DIR/SUB with its format. A missing folder is
 * skipped. */
static int load_dir(struct rv_demo *d, const char *dir, int src)
{
    const struct demo_dir *dd = &demo_dirs[src];
    rv_feed_parse_fn parse = rv_feed_parser(dd->format);
    char path[4096];
    char *names[256];
    size_t nn = 0;
    struct dirent *de;
    DIR *dp;
    int rc = RV_OK;

    snprintf(path, sizeof(path), "%s/%s", dir, dd->dir);
    dp = opendir(path);
    if (!dp)
        return RV_OK;
    while ((de = readdir(dp)) != NULL && nn < sizeof(names) / sizeof(names[0])) {
        if (de->d_name[0] == '.')
            continue;
        names[nn] = strdup(de->d_name);
        if (!names[nn]) {
            rc = RV_ENOMEM;
            break;
        }
        nn++;
    }
    closedir(dp);
    if (nn)
        qsort(names, nn, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < nn && rc == RV_OK; i++) {
        struct load_ctx c = {d, src, RV_OK};
        struct rv_feed_sink sink = {dd->source, load_emit, load_reject, &c, NULL, 0, NULL};
        struct rv_errbuf err;
        char *buf;
        size_t len, before = d->n;

        snprintf(path, sizeof(path), "%s/%s/%s", dir, dd->dir, names[i]);
        if (read_file(path, &buf, &len) != RV_OK) {
            rv_log_warn(DEMO_MOD, "skipped file=\"%s\" reason=\"cannot read\"", path);
            continue;
        }
        if (parse(buf, len, &sink, &err) != RV_OK && c.rc == RV_OK)
            rv_log_warn(DEMO_MOD, "skipped file=\"%s\" reason=\"%s\"", path, err.msg);
        free(buf);
        rc = c.rc;
        rv_log_debug(DEMO_MOD, "loaded file=\"%s\" events=%zu", path, d->n - before);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    return rc;
}

static int cmp_sample_time(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;

    if (x->ev.time_ms != y->ev.time_ms)
        return x->ev.time_ms < y->ev.time_ms ? -1 : 1;
    if (x->src != y->src)
        return x->src - y->src;
    return strcmp(x->ev.id, y->ev.id);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Offsets per source (see rv/demo.h), the live list and the IODA
 * countries with their median value. */
static int lay_out(struct rv_demo *d)
{
    const int64_t hist = (int64_t)RV_DEMO_HISTORY_S * 1000, hour = 3600 * 1000;

    qsort(d->s, d->n, sizeof(*d->s), cmp_sample_time);
    for (int src = 0; src < (int)(sizeof(demo_dirs) / sizeof(demo_dirs[0])); src++) {
        int64_t tmin = INT64_MAX, tmax = INT64_MIN, span;
        size_t cnt = 0, rank = 0;

        for (size_t i = 0; i < d->n; i++)
            if (d->s[i].src == src) {
                if (d->s[i].ev.time_ms < tmin)
                    tmin = d->s[i].ev.time_ms;
                if (d->s[i].ev.time_ms > tmax)
                    tmax = d->s[i].ev.time_ms;
                cnt++;
            }
        if (!cnt)
            continue;
        span = tmax - tmin;
        for (size_t i = 0; i < d->n; i++) {
            struct sample *s = &d->s[i];
            if (s->src != src)
                continue;
            if (span < hour)
                s->off_ms = cnt > 1 ? (int64_t)((double)hour * (double)(cnt - 1 - rank) /
                                                (double)(cnt - 1))
                                    : 0;
            else if (span > hist)
                s->off_ms = (int64_t)((double)(tmax - s->ev.time_ms) * (double)hist / (double)span);
            else
                s->off_ms = tmax - s->ev.time_ms;
            rank++;
        }
    }
    d->live = malloc((d->n ? d->n : 1) * sizeof(*d->live));
    if (!d->live)
        return RV_ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        if (d->s[i].src != DEMO_IODA_DIR)
            d->live[d->nlive++] = i;
    /* IODA probes with a value: countries and medians */
    for (size_t i = 0; i < d->n; i++) {
        const struct rv_event *ev = &d->s[i].ev;
        size_t k;
        if (d->s[i].src != DEMO_IODA_DIR || ev->kind != RV_KIND_PROBE || !ev->has_value ||
            ev->violation != RV_V_INTERNET_SHUTDOWN)
            continue;
        for (k = 0; k < d->ncc; k++)
            if (strcmp(d->cc[k].cc, ev->country) == 0)
                break;
        if (k == d->ncc) {
            if (d->ncc == DEMO_MAX_COUNTRIES)
                continue;
            memcpy(d->cc[k].cc, ev->country, 3);
            d->ncc++;
        }
        d->cc[k].tpl = ev; /* samples are in time order: the newest wins */
    }
    for (size_t k = 0; k < d->ncc; k++) {
        double *v = malloc(d->n * sizeof(*v));
        size_t m = 0;
        if (!v)
            return RV_ENOMEM;
        for (size_t i = 0; i < d->n; i++) {
            const struct rv_event *ev = &d->s[i].ev;
            if (d->s[i].src == DEMO_IODA_DIR && ev->has_value &&
                strcmp(ev->country, d->cc[k].cc) == 0)
                v[m++] = ev->value;
        }
        qsort(v, m, sizeof(*v), cmp_double);
        d->cc[k].base = m ? v[m / 2] : 1.0;
        free(v);
    }
    return RV_OK;
}

/* ================================================================ write */

static bool stopping(struct rv_demo *d)
{
    return atomic_load(&d->stop);
}

/* Sets ev->id to "<orig>#cycle<N>-<run>", cutting ORIG if needed. */
static void set_id(struct rv_event *ev, const char *orig, uint64_t cycle, int64_t run)
{
    char suf[48];
    int sl = snprintf(suf, sizeof(suf), "#cycle%" PRIu64 "-%" PRId64, cycle, run);
    int keep = RV_ID_MAX - sl;

    snprintf(ev->id, sizeof(ev->id), "%.*s%s", keep, orig, suf);
}

/* Writes N events (released here) in requests of DEMO_CHUNK. */
static int write_events(struct rv_demo *d, struct rv_event *evs, size_t n)
{
    struct rv_put_result *res = calloc(n ? n : 1, sizeof(*res));
    int rc = RV_OK;

    if (!res) {
        rc = RV_ENOMEM;
        goto out;
    }
    for (size_t off = 0; off < n && rc == RV_OK; off += DEMO_CHUNK) {
        struct rv_write_req req;
        size_t k = n - off < DEMO_CHUNK ? n - off : DEMO_CHUNK;

        memset(&req, 0, sizeof(req));
        req.evs = evs + off;
        req.n = k;
        req.res = res + off;
        do {
            if (stopping(d)) {
                rc = RV_EAGAIN;
                goto out;
            }
            rc = rv_writer_submit_wait(d->w, &req, DEMO_SUBMIT_SLICE_MS);
        } while (rc == RV_ETIMEDOUT);
        if (rc != RV_OK) {
            rv_log_warn(DEMO_MOD, "write failed code=%s reason=\"%s\"", rv_strerror(rc),
                        req.err.msg);
            goto out;
        }
        for (size_t i = 0; i < k; i++)
            rv_metric_add(res[off + i].outcome == RV_OUT_DUPLICATE ? d->m_dup : d->m_acc, 1);
    }
out:
    for (size_t i = 0; i < n; i++)
        rv_event_release(&evs[i]);
    free(res);
    return rc;
}

static int cmp_event_time(const void *a, const void *b)
{
    const struct rv_event *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The history in event-time order: the aggregator follows the log in seq
 * order and drops what falls behind its watermark (newest time seen minus
 * its lateness), so an out-of-order burst would be lost to it. */
static int history_burst(struct rv_demo *d, int64_t now)
{
    struct rv_event *evs = calloc(d->n ? d->n : 1, sizeof(*evs));
    size_t n = 0;

    if (!evs)
        return RV_ENOMEM;
    for (size_t i = 0; i < d->n; i++) {
        if (rv_event_copy(&evs[n], &d->s[i].ev) != RV_OK)
            continue;
        set_id(&evs[n], d->s[i].ev.id, 0, d->run);
        evs[n].time_ms = now - d->s[i].off_ms;
        n++;
    }
    qsort(evs, n, sizeof(*evs), cmp_event_time);
    rv_log_info(DEMO_MOD, "history events=%zu countries_probed=%zu", n, d->ncc);
    {
        int rc = write_events(d, evs, n);
        free(evs);
        return rc;
    }
}

/* Is live country K down at virtual second V? Slot s (of
 * RV_DEMO_DROP_EVERY_S) >= 1 starts a drop of country (s-1) mod ncc that
 * lasts RV_DEMO_DROP_LEN_S. */
static bool country_down(const struct rv_demo *d, size_t k, double v)
{
    int64_t s = (int64_t)(v / RV_DEMO_DROP_EVERY_S);
    int64_t len = (RV_DEMO_DROP_LEN_S + RV_DEMO_DROP_EVERY_S - 1) / RV_DEMO_DROP_EVERY_S;

    for (int64_t j = 0; j < len; j++) {
        int64_t st = s - j;
        if (st >= 1 && (size_t)((st - 1) % (int64_t)d->ncc) == k &&
            v < (double)(st * RV_DEMO_DROP_EVERY_S + RV_DEMO_DROP_LEN_S))
            return true;
    }
    return false;
}

static void wait_ms(struct rv_demo *d, unsigned ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->mu);
    if (!atomic_load(&d->stop))
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    pthread_mutex_unlock(&d->mu);
}

static void *demo_main(void *arg)
{
    struct rv_demo *d = arg;
    uint64_t t0 = rv_mono_ns();
    double due = 0.0, probe_period_s = RV_DEMO_PROBE_S / d->speed, next_probe = 0.0;
    size_t pos = 0, maxb;
    uint64_t cycle = 1, probe_seq = 0;
    struct rv_event *evs;
    bool was_down[DEMO_MAX_COUNTRIES] = {false};

    maxb = (size_t)ceil(RV_DEMO_RATE * d->speed * RV_DEMO_TICK_MS / 1000.0) + 1 + d->ncc;
    if (maxb > DEMO_CHUNK)
        maxb = DEMO_CHUNK;
    evs = calloc(maxb, sizeof(*evs));
    if (!evs)
        return NULL;
    if (history_burst(d, rv_now_ms()) != RV_OK) {
        free(evs);
        return NULL;
    }
    t0 = rv_mono_ns();
    while (!stopping(d)) {
        double el = (double)(rv_mono_ns() - t0) / 1e9; /* wall s since live start */
        int64_t now = rv_now_ms();
        size_t n = 0;

        due += RV_DEMO_RATE * d->speed * RV_DEMO_TICK_MS / 1000.0;
        while (due >= 1.0 && d->nlive && n + d->ncc < maxb) {
            const struct sample *s = &d->s[d->live[pos]];
            if (rv_event_copy(&evs[n], &s->ev) == RV_OK) {
                set_id(&evs[n], s->ev.id, cycle, d->run);
                evs[n].time_ms = now;
                n++;
            }
            due -= 1.0;
            if (++pos == d->nlive) {
                pos = 0;
                cycle++;
            }
        }
        if (due > 1.0)
            due = 1.0; /* a slow writer does not build up a debt */
        if (d->ncc && el >= next_probe) {
            double v = el * d->speed;
            char idb[64];
            probe_seq++;
            for (size_t k = 0; k < d->ncc && n < maxb; k++) {
                bool down = country_down(d, k, v);
                double wave = 1.0 + 0.03 * sin(2.0 * M_PI * (double)(now % 86400000) / 8.64e7 +
                                                (double)k);
                if (rv_event_copy(&evs[n], d->cc[k].tpl) != RV_OK)
                    continue;
                snprintf(idb, sizeof(idb), "ioda-bgp-country-%s-live%" PRIu64, d->cc[k].cc,
                         probe_seq);
                set_id(&evs[n], idb, cycle, d->run);
                evs[n].time_ms = now;
                evs[n].value = round(d->cc[k].base * wave * (down ? 0.10 : 1.0));
                n++;
                if (down != was_down[k])
                    rv_log_info(DEMO_MOD, "%s country=%s", down ? "drop" : "recovery",
                                d->cc[k].cc);
                was_down[k] = down;
            }
            next_probe += probe_period_s;
            if (next_probe < el)
                next_probe = el + probe_period_s;
        }
        if (n && write_events(d, evs, n) != RV_OK && stopping(d))
            break;
        wait_ms(d, RV_DEMO_TICK_MS);
    }
    free(evs);
    return NULL;
}

/* ============================================================ lifecycle */

static void demo_free(struct rv_demo *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        rv_event_release(&d->s[i].ev);
    free(d->s);
    free(d->live);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int rv_demo_start(struct rv_writer *w, const char *samples_dir, double speed,
                  struct rv_metrics *m, struct rv_demo **out, struct rv_errbuf *err)
{
    struct rv_demo *d;
    pthread_condattr_t ca;
    int rc = RV_OK;

    *out = NULL;
    rv_err_clear(err);
    if (!w || !samples_dir)
        return rv_err_set(err, RV_EINVAL, "demo: missing writer or samples dir");
    if (!(speed > 0.0) || speed > 1e6)
        return rv_err_set(err, RV_EINVAL, "demo.speed: must be a number > 0 and <= 1000000");
    d = calloc(1, sizeof(*d));
    if (!d)
        return rv_err_set(err, RV_ENOMEM, "demo: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&d->stop, false);
    d->w = w;
    d->speed = speed;
    d->run = rv_now_ms() / 1000;
    for (int i = 0; i < (int)(sizeof(demo_dirs) / sizeof(demo_dirs[0])) && rc == RV_OK; i++)
        rc = load_dir(d, samples_dir, i);
    if (rc != RV_OK) {
        rc = rv_err_set(err, rc, "demo: cannot load the samples: %s", rv_strerror(rc));
        goto fail;
    }
    if (d->n == 0) {
        rc = rv_err_set(err, RV_ENOTFOUND, "demo: no sample events under '%s'", samples_dir);
        goto fail;
    }
    rc = lay_out(d);
    if (rc != RV_OK) {
        rc = rv_err_set(err, rc, "demo: out of memory");
        goto fail;
    }
    d->m_acc = rv_metrics_counter(m, "rv_demo_events_total", "outcome=\"accepted\"",
                                  "Demo replay events written");
    d->m_dup = rv_metrics_counter(m, "rv_demo_events_total", "outcome=\"duplicate\"",
                                  "Demo replay events written");
    rv_log_info(DEMO_MOD, "loaded samples=%zu rejected=%zu live=%zu countries=%zu speed=%g",
                d->n, d->rejected, d->nlive, d->ncc, speed);
    if (pthread_create(&d->th, NULL, demo_main, d) != 0) {
        rc = rv_err_set(err, RV_EIO, "demo: cannot start the replay thread");
        goto fail;
    }
    d->started = true;
    *out = d;
    return RV_OK;
fail:
    demo_free(d);
    return rc;
}

void rv_demo_stop(struct rv_demo **dp)
{
    struct rv_demo *d;

    if (!dp || !*dp)
        return;
    d = *dp;
    *dp = NULL;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->stop, true);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        pthread_join(d->th, NULL);
    demo_free(d);
}

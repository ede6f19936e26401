/*
 * bench_aggregator: events/s through the live aggregator stage (real
 * store, writer thread, inproc ZeroMQ), and the replay rate of the engine
 * over a store's log (what `rvctl backtest` runs after loading) against a
 * raw LMDB cursor scan of the same log in the same run.
 *
 * usage: bench_aggregator [EVENTS] [DAYS]   (defaults 300000 events, 28 days)
 * Synthetic data: 150 countries x 4 violations x 3 sources, time-ordered.
 */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <zmq.h>

#include "rv/agg.h"
#include "rv/country.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

struct commits {
    void *zctx;
    void *pub;
};

static void hk_start(void *arg)
{
    struct commits *c = arg;
    int zero = 0;

    c->pub = zmq_socket(c->zctx, ZMQ_PUB);
    zmq_setsockopt(c->pub, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(c->pub, RV_EP_COMMITS) != 0)
        abort();
}

static void hk_commit(void *arg, uint64_t first, uint64_t last, uint64_t last_alert)
{
    struct commits *c = arg;
    unsigned char f[24];

    rv_put_be64(f, first);
    rv_put_be64(f + 8, last);
    rv_put_be64(f + 16, last_alert);
    zmq_send(c->pub, f, sizeof f, ZMQ_DONTWAIT);
}

static void hk_stop(void *arg)
{
    zmq_close(((struct commits *)arg)->pub);
}

static uint64_t rs = 0x9E3779B97F4A7C15ULL;

static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static uint64_t n_alerts, n_levels[4];
static volatile unsigned char sink_byte;

static int noop_log(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    (void)ingest_ms;
    *(uint64_t *)arg = seq;
    sink_byte ^= (unsigned char)ev->country[0];
    return 0;
}

static int noop_view(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *ev)
{
    (void)ingest_ms;
    *(uint64_t *)arg = seq;
    sink_byte ^= (unsigned char)ev->country[0];
    return 0;
}

static void count_alert(void *arg, const struct rv_agg_alert *a)
{
    (void)arg;
    n_alerts++;
    if (a->state == RV_AST_OPENED || a->state == RV_AST_ESCALATED)
        n_levels[a->level]++;
}

static int to_ndjson(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    cJSON *o = rv_event_to_json(ev, false);
    char *t;

    (void)seq;
    (void)ingest_ms;
    cJSON_DeleteItemFromObjectCaseSensitive(o, "source");
    t = cJSON_PrintUnformatted(o);
    fprintf(arg, "%s\n", t);
    free(t);
    cJSON_Delete(o);
    return 0;
}

/* The whole log through the store with a no-op callback: decoded in place
 * (VIEW) or with copies. */
static int read_all(struct rv_store *st, bool view)
{
    struct rv_errbuf err;
    uint64_t lastseq = 0;

    for (uint64_t from = 1;; from = lastseq + 1) {
        uint64_t before = lastseq;
        int rc = view ? rv_store_read_log_view(st, from, 4096, noop_view, &lastseq, &err)
                      : rv_store_read_log(st, from, 4096, noop_log, &lastseq, &err);
        if (rc != RV_OK)
            return -1;
        if (lastseq == before)
            return 0;
    }
}

/* One pass of a cursor over `log` in ENV, every record touched. */
static int raw_pass(MDB_env *env, uint64_t *n, uint64_t *bytes)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    *n = *bytes = 0;
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
        return rc;
    if ((rc = mdb_dbi_open(txn, "log", 0, &dbi)) == 0 && (rc = mdb_cursor_open(txn, dbi, &c)) == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            (*n)++;
            /* touch the record so that its pages are really read */
            *bytes += v.mv_size;
            if (v.mv_size)
                sink_byte ^= ((const unsigned char *)v.mv_data)[v.mv_size - 1];
        }
        mdb_cursor_close(c);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    mdb_txn_abort(txn);
    return rc;
}

/* Raw scan: every log record read through an LMDB cursor, bytes summed;
 * *SECS the time of a pass on a warm map. The environment is opened here
 * (LMDB wants one open environment per file in a process, and the store's
 * is closed meanwhile) and scanned once untimed first: the replay reads
 * through the store's map, already mapped and faulted in, and the
 * ceiling must not pay the first touch of every page that it does not
 * (on this VM a page fault costs microseconds). */
static int raw_scan(const char *dir, uint64_t *n, uint64_t *bytes, double *secs_out)
{
    MDB_env *env;
    uint64_t t0;
    int rc;

    if ((rc = mdb_env_create(&env)) != 0)
        return rc;
    mdb_env_set_maxdbs(env, 16);
    if ((rc = mdb_env_open(env, dir, MDB_RDONLY, 0600)) == 0 &&
        (rc = raw_pass(env, n, bytes)) == 0) {
        t0 = rv_mono_ns();
        rc = raw_pass(env, n, bytes);
        *secs_out = secs(rv_mono_ns() - t0);
    }
    mdb_env_close(env);
    return rc;
}

int main(int argc, char **argv)
{
    long nev = argc > 1 ? strtol(argv[1], NULL, 10) : 300000;
    long days = argc > 2 ? strtol(argv[2], NULL, 10) : 28;
    char dir[] = "/tmp/rv-bench-agg-XXXXXX";
    static const char *sources[] = {"partnerA", "gdelt", "acled"};
    static const int viols[] = {RV_V_KILLING, RV_V_ARBITRARY_DETENTION, RV_V_ATTACK_ON_CIVILIANS,
                                RV_V_EXPRESSION_RESTRICTION};
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_writer *w = NULL;
    struct rv_agg *agg = NULL;
    struct rv_errbuf err = {0};
    struct commits hc;
    struct rv_writer_hooks hooks = {hk_start, hk_commit, hk_stop, &hc};
    struct rv_event *evs;
    struct rv_put_result *res;
    int64_t t0;
    uint64_t t_start, t_end;
    void *zctx;

    if (nev < 1000 || days < 1) {
        fprintf(stderr, "usage: bench_aggregator [EVENTS>=1000] [DAYS>=1]\n");
        return 2;
    }
    rv_log_set_level(RV_LOG_ERROR);
    rv_time_from_civil(2024, 1, 1, 0, 0, 0, &t0);
    if (mkdtemp(dir) == NULL)
        return 1;
    evs = calloc(1000, sizeof *evs);
    res = calloc(1000, sizeof *res);
    zctx = zmq_ctx_new();
    hc.zctx = zctx;
    rv_store_opts_default(&so);
    so.no_sync = true;
    /* the cursor written every 10 ms, so that "durable" below measures the
     * aggregator, not the cursor interval */
    cJSON *cfg = cJSON_Parse("{\"cursor_interval_ms\":10}");
    if (rv_store_open(dir, &so, &st, &err) != RV_OK || rv_writer_new(st, NULL, &hooks, &w) != RV_OK ||
        rv_agg_start(zctx, st, w, cfg, NULL, &agg, &err) != RV_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }

    /* live: submit in batches of 1000 while the stage follows */
    double span = (double)days * 86400000.0;
    t_start = rv_mono_ns();
    for (long i = 0; i < nev; i += 1000) {
        struct rv_write_req req;
        size_t k = (size_t)(nev - i < 1000 ? nev - i : 1000);
        for (size_t j = 0; j < k; j++) {
            struct rv_event *e = &evs[j];
            long idx = i + (long)j;
            rv_event_init(e);
            snprintf(e->source, sizeof e->source, "%s", sources[idx % 3]);
            snprintf(e->id, sizeof e->id, "b%ld", idx);
            memcpy(e->country, rv_country_code_at((int)(urand() * 150) * RV_COUNTRY_COUNT / 150),
                   3);
            e->violation = (uint8_t)viols[(int)(urand() * 4)];
            e->kind = idx % 3 == 1 ? RV_KIND_NEWS : RV_KIND_INCIDENT;
            e->time_ms = t0 + (int64_t)(span * (double)idx / (double)nev);
        }
        memset(&req, 0, sizeof req);
        req.evs = evs;
        req.n = k;
        req.res = res;
        if (rv_writer_submit_wait(w, &req, 0) != RV_OK) {
            fprintf(stderr, "submit failed: %s\n", req.err.msg);
            return 1;
        }
    }
    uint64_t t_written = rv_mono_ns();
    uint64_t last = rv_store_last_seq(st);
    for (int i = 0; i < 60000 && rv_agg_cursor(agg) < last; i++)
        usleep(1000);
    t_end = rv_mono_ns();
    printf("live: %ld events written in %.2f s; aggregated durably after %.2f s: %.0f events/s "
           "end to end (ingest + aggregate), lag at end of writing %.3f s, alerts %llu\n",
           nev, secs(t_written - t_start), secs(t_end - t_start),
           (double)nev / secs(t_end - t_start), secs(t_end - t_written),
           (unsigned long long)rv_store_last_alert_seq(st));
    rv_agg_stop(&agg);
    rv_writer_free(&w);
    rv_store_close(&st);
    zmq_ctx_term(zctx);

    /* The reads of the same log, each REPS times, interleaved (the
     * machine is shared: a rep sees about the same load for all four);
     * the best time of each is kept. */
    enum { REPS = 5 };
    struct rv_agg_params p;
    struct rv_agg_sink sink = {count_alert, NULL};
    struct rv_agg_engine_stats stats;
    uint64_t n = 0, bytes = 0;
    double raw_s = 1e9, dec_s = 1e9, view_s = 1e9, rep_s = 1e9, ratio_lo = 1e9, ratio_hi = 0;
    rv_agg_params_from_json(NULL, &p, &err);
    for (int rep = 0; rep < REPS; rep++) {
        double t_raw, t_rep;
        /* raw LMDB cursor scan of the log */
        if (raw_scan(dir, &n, &bytes, &t_raw) != 0) {
            fprintf(stderr, "raw scan failed\n");
            return 1;
        }
        if (rv_store_open(dir, &so, &st, &err) != RV_OK)
            return 1;
        /* one untimed pass first: the store's map was just opened, and the
         * timed passes below must not pay its first touch (the raw scan
         * does not either) */
        if (read_all(st, true) != 0)
            return 1;
        /* decode only: the store's log read with a callback that does nothing */
        t_start = rv_mono_ns();
        if (read_all(st, false) != 0)
            return 1;
        double t = secs(rv_mono_ns() - t_start);
        dec_s = t < dec_s ? t : dec_s;
        /* the same without copies (rv_store_read_log_view: what the replay
         * reads with) */
        t_start = rv_mono_ns();
        if (read_all(st, true) != 0)
            return 1;
        t = secs(rv_mono_ns() - t_start);
        view_s = t < view_s ? t : view_s;
        /* the replay through the engine (decode + aggregate), as backtest */
        n_alerts = 0;
        memset(n_levels, 0, sizeof n_levels);
        t_start = rv_mono_ns();
        if (rv_agg_replay(st, &p, &sink, &stats, &err) != RV_OK) {
            fprintf(stderr, "replay: %s\n", err.msg);
            return 1;
        }
        t_rep = secs(rv_mono_ns() - t_start);
        raw_s = t_raw < raw_s ? t_raw : raw_s;
        rep_s = t_rep < rep_s ? t_rep : rep_s;
        ratio_lo = t_raw / t_rep < ratio_lo ? t_raw / t_rep : ratio_lo;
        ratio_hi = t_raw / t_rep > ratio_hi ? t_raw / t_rep : ratio_hi;
        if (rep < REPS - 1)
            rv_store_close(&st);
    }
    /* the same log as one NDJSON file, for rvctl backtest end to end */
    char nd[128], ep[128];
    snprintf(nd, sizeof nd, "%s/bench.ndjson", dir);
    snprintf(ep, sizeof ep, "%s/episodes.csv", dir);
    FILE *f = fopen(nd, "w");
    if (f == NULL || rv_store_read_log(st, 1, 0, to_ndjson, f, &err) != RV_OK)
        return 1;
    fclose(f);
    f = fopen(ep, "w");
    fprintf(f, "country_iso2,start_utc,end_utc,violation,kind,description,source\n");
    fclose(f);
    rv_store_close(&st);
    char *bargv[] = {"backtest", "--events", nd, "--episodes", ep, "--timings", NULL};
    FILE *saved = stdout;
    t_start = rv_mono_ns();
    stdout = fopen("/dev/null", "w");
    int brc = rv_backtest_main(6, bargv);
    fclose(stdout);
    stdout = saved;
    double bt_s = secs(rv_mono_ns() - t_start);
    printf("reads below: best of %d, interleaved\n", REPS);
    printf("raw LMDB scan: %llu records (%llu bytes) in %.3f s: %.0f records/s\n",
           (unsigned long long)n, (unsigned long long)bytes, raw_s, (double)n / raw_s);
    printf("store read_log (decode, no-op callback): %.3f s: %.0f records/s = %.0f%% of the raw "
           "scan\n",
           dec_s, (double)n / dec_s, 100.0 * raw_s / dec_s);
    printf("store read_log_view (decode in place, no-op callback): %.3f s: %.0f records/s = %.0f%% "
           "of the raw scan\n",
           view_s, (double)n / view_s, 100.0 * raw_s / view_s);
    printf("engine replay (read_log_view + aggregate): %llu events, %llu series, %llu alert changes "
           "(raised to watch %llu, warning %llu, critical %llu) in %.3f s: %.0f events/s = %.0f%% "
           "of the raw scan\n",
           (unsigned long long)stats.events, (unsigned long long)stats.series,
           (unsigned long long)n_alerts, (unsigned long long)n_levels[1],
           (unsigned long long)n_levels[2], (unsigned long long)n_levels[3], rep_s,
           (double)stats.events / rep_s, 100.0 * raw_s / rep_s);
    printf("replay / raw scan in each rep: %.0f%% .. %.0f%%\n", 100.0 * ratio_lo, 100.0 * ratio_hi);
    printf("rvctl backtest end to end (parse NDJSON, load a temporary store, replay): rc %d, "
           "%.2f s: %.0f events/s\n",
           brc, bt_s, (double)stats.events / bt_s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(evs);
    free(res);
    cJSON_Delete(cfg);
    return 0;
}

/*
 * test_store: the LMDB store against a simple reference: dedup, log
 * order, rollups at 1m/1h/1d recomputed from the events, map growth,
 * schema version refusal, retention, alerts, cursors, the group-commit
 * writer with many submitting threads.
 */
#include <lmdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "store_util.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#define T0 1735689600000LL /* 2025-01-01 */

/* ---- reference rollup: a flat list, recomputed from the log */
struct ref_bin {
    struct rv_bin b;
    char srcs[RV_STORE_MAX_SOURCES_PER_BIN][RV_SOURCE_MAX + 1];
};
struct ref {
    struct ref_bin *v;
    size_t n, cap;
};

static struct ref_bin *ref_find(struct ref *r, const char *c, int v, int res, int64_t s)
{
    for (size_t i = 0; i < r->n; i++) {
        struct rv_bin *b = &r->v[i].b;
        if (b->violation == v && b->res == res && b->start_ms == s && strcmp(b->country, c) == 0)
            return &r->v[i];
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
    }
    memset(&r->v[r->n], 0, sizeof(r->v[0]));
    memcpy(r->v[r->n].b.country, c, 3);
    r->v[r->n].b.violation = (uint8_t)v;
    r->v[r->n].b.res = (uint8_t)res;
    r->v[r->n].b.start_ms = s;
    return &r->v[r->n++];
}

static void ref_add(struct ref *r, const struct rv_event *ev)
{
    for (int res = 0; res < RV_RES_COUNT; res++) {
        struct ref_bin *rb = ref_find(r, ev->country, ev->violation, res, rv_bin_start(ev->time_ms, res));
        struct rv_bin *b = &rb->b;
        int i;
        b->events++;
        if (ev->kind == RV_KIND_PROBE && ev->has_value) {
            if (!b->probe_n || ev->value < b->probe_min)
                b->probe_min = ev->value;
            if (!b->probe_n || ev->value > b->probe_max)
                b->probe_max = ev->value;
            b->probe_sum += ev->value;
            b->probe_n++;
        } else {
            b->count += ev->count;
            b->weight += ev->count * ev->confidence * ev->severity / 3.0;
        }
        for (i = 0; i < b->n_sources; i++)
            if (strcmp(rb->srcs[i], ev->source) == 0)
                break;
        if (i == b->n_sources && b->n_sources < RV_STORE_MAX_SOURCES_PER_BIN)
            snprintf(rb->srcs[b->n_sources++], RV_SOURCE_MAX + 1, "%s", ev->source);
    }
}

static int ref_log_cb(void *arg, uint64_t seq, int64_t ing, const struct rv_event *ev)
{
    (void)seq;
    (void)ing;
    ref_add(arg, ev);
    return 0;
}

struct cmp {
    struct ref_bin *want;
    int found;
};
static int cmp_cb(void *arg, const struct rv_bin *b)
{
    struct cmp *c = arg;
    struct rv_bin *w = &c->want->b;
    if (b->start_ms != w->start_ms)
        return 0;
    c->found++;
    CHECK(b->events == w->events);
    CHECK(b->count == w->count);
    CHECK(fabs(b->weight - w->weight) < 1e-6);
    CHECK(b->n_sources == w->n_sources);
    CHECK(b->probe_n == w->probe_n);
    if (w->probe_n) {
        CHECK(b->probe_min == w->probe_min && b->probe_max == w->probe_max);
        CHECK(fabs(b->probe_sum - w->probe_sum) < 1e-6);
    }
    return 0;
}

/* Every reference bin (recounted from the log) equals the stored one, and
 * the number of stored bins equals the reference's. Returns bins checked. */
static size_t check_rollups(struct rv_store *st)
{
    struct ref r = {0};
    struct rv_errbuf err;

    CHECK_OK(rv_store_flush(st, &err), &err); /* readers see checkpointed rollups */
    CHECK_OK(rv_store_read_log(st, 1, 0, ref_log_cb, &r, &err), &err);
    for (size_t i = 0; i < r.n; i++) {
        struct cmp c = {&r.v[i], 0};
        struct rv_bin *w = &r.v[i].b;
        CHECK_OK(rv_store_read_series(st, w->country, w->violation, w->res, w->start_ms,
                                      w->start_ms + 1, cmp_cb, &c, &err), &err);
        if (c.found != 1) {
            if (check_failures < 20)
                fprintf(stderr, "bin %s/%d/%d/%lld found %d times\n", w->country, w->violation, w->res,
                    (long long)w->start_ms, c.found);
            check_failures++;
        }
    }
    free(r.v);
    return r.n;
}

static int count_cb(void *arg, const struct rv_bin *b)
{
    (void)b;
    (*(size_t *)arg)++;
    return 0;
}

static void test_rollups_dedup(void)
{
    char dir[256];
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    const size_t N = 20000, B = 700, MOD = 15000;
    struct rv_event *evs = calloc(B, sizeof(*evs));
    struct rv_put_result *res = calloc(B, sizeof(*res));
    size_t accepted = 0, dups = 0;
    uint64_t expect_seq = 0;

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    o.no_sync = true;
    o.rollup_flush_bins = 3000; /* several checkpoints during the run */
    o.dedup_flush_keys = 4000;  /* and of the dedup keys: some in memory, some in `events` */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    for (size_t k = 0; k < N; k += B) {
        size_t n = k + B > N ? N - k : B;
        for (size_t i = 0; i < n; i++)
            make_event(&evs[i], k + i, MOD, T0);
        CHECK_OK(rv_store_put_batch(st, evs, n, NULL, 0, NULL, 0, res, &err), &err);
        for (size_t i = 0; i < n; i++) {
            if (k + i < MOD) {
                CHECK(res[i].outcome == RV_OUT_ACCEPTED && res[i].seq == ++expect_seq);
                accepted++;
            } else {
                /* the same id was accepted earlier with seq id+1 */
                CHECK(res[i].outcome == RV_OUT_DUPLICATE);
                CHECK(res[i].seq == (k + i) % MOD + 1);
                dups++;
            }
        }
    }
    CHECK(accepted == MOD && dups == N - MOD);
    CHECK(rv_store_last_seq(st) == MOD);
    /* a duplicate inside one batch */
    make_event(&evs[0], 999999, 1000000, T0);
    make_event(&evs[1], 999999, 1000000, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 2, NULL, 0, NULL, 0, res, &err), &err);
    CHECK(res[0].outcome == RV_OUT_ACCEPTED && res[1].outcome == RV_OUT_DUPLICATE);
    CHECK(res[1].seq == res[0].seq);
    CHECK_OK(rv_store_flush(st, &err), &err);
    CHECK(check_rollups(st) > 1000);

    /* overview: one latest bin per (country, violation) present */
    {
        size_t n = 0;
        CHECK_OK(rv_store_read_overview(st, RV_RES_1H, count_cb, &n, &err), &err);
        CHECK(n > 50 && n <= 8 * RV_VIOLATION_COUNT);
    }
    rv_store_close(&st);
    CHECK(st == NULL);

    /* reopen: same state; the dedup survives */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    CHECK(rv_store_last_seq(st) == MOD + 1);
    make_event(&evs[0], 5, MOD, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 1, NULL, 0, NULL, 0, res, &err), &err);
    CHECK(res[0].outcome == RV_OUT_DUPLICATE && res[0].seq == 6);
    check_rollups(st);
    rv_store_close(&st);

    /* a store written before the dedup checkpoint existed (no "dedup_seq"
     * in meta, every key in `events`): still deduplicates, and new keys
     * past it survive a crash */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_val k = {9, "dedup_seq"}, ks = {6, "schema"}, v;
        unsigned char v1[8] = {0, 0, 0, 0, 0, 0, 0, 1};
        CHECK(mdb_env_create(&env) == 0);
        mdb_env_set_maxdbs(env, 8);
        CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
        CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
        CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
        CHECK(mdb_del(txn, dbi, &k, NULL) == 0);
        v.mv_size = 8;
        v.mv_data = v1;
        CHECK(mdb_put(txn, dbi, &ks, &v, 0) == 0); /* schema 1: before dedup_seq */
        CHECK(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
    }
    make_event(&evs[0], 7, MOD, T0);
    make_event(&evs[1], 888888, 1000000, T0);
    {
        /* the first daemon on it accepts a new event and dies before any
         * checkpoint (no close): the key must still be known after */
        pid_t pid = fork();
        if (pid == 0) {
            int bad = rv_store_open(dir, &o, &st, &err) != RV_OK ||
                      rv_store_put_batch(st, evs, 2, NULL, 0, NULL, 0, res, &err) != RV_OK ||
                      res[0].outcome != RV_OUT_DUPLICATE || res[0].seq != 8 ||
                      res[1].outcome != RV_OUT_ACCEPTED || res[1].seq != MOD + 2;
            _exit(bad);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    CHECK_OK(rv_store_put_batch(st, evs, 2, NULL, 0, NULL, 0, res, &err), &err);
    CHECK(res[0].outcome == RV_OUT_DUPLICATE && res[0].seq == 8);
    CHECK(res[1].outcome == RV_OUT_DUPLICATE && res[1].seq == MOD + 2);
    rv_store_close(&st);

    /* read-only open sees the same */
    o.read_only = true;
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    CHECK(rv_store_last_seq(st) == MOD + 2);
    check_rollups(st);
    CHECK(rv_store_put_batch(st, evs, 1, NULL, 0, NULL, 0, res, &err) == RV_EPERM);
    rv_store_close(&st);
    free(evs);
    free(res);
    rm_rf(dir);
}

static void test_map_growth_and_version(void)
{
    char dir[256], path[300];
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_store_stats s;
    struct rv_event evs[500];
    struct rv_put_result res[500];

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    o.no_sync = true;
    o.map_size = 256 * 1024; /* tiny: must grow several times */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 500; i++) {
            make_event(&evs[i], (uint64_t)(k * 500 + i), 1u << 30, T0);
            evs[i].title = strdup("a title long enough to fill pages quickly ........................");
        }
        CHECK_OK(rv_store_put_batch(st, evs, 500, NULL, 0, NULL, 0, res, &err), &err);
        for (int i = 0; i < 500; i++)
            rv_event_release(&evs[i]);
    }
    rv_store_get_stats(st, &s);
    CHECK(s.map_resizes >= 2);
    CHECK(rv_store_last_seq(st) == 10000);
    /* the batches that hit MAP_FULL were retried whole: each key once, with
     * the seq of the retry that committed */
    for (int i = 0; i < 500; i++)
        make_event(&evs[i], (uint64_t)(19 * 500 + i), 1u << 30, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 500, NULL, 0, NULL, 0, res, &err), &err);
    for (int i = 0; i < 500; i++)
        CHECK(res[i].outcome == RV_OUT_DUPLICATE && res[i].seq == (uint64_t)(9500 + i + 1));
    CHECK(check_rollups(st) > 0);
    rv_store_close(&st);

    /* a ceiling that cannot hold the next batch: RV_EFULL, nothing written */
    o.map_size_max = o.map_size = 64 * 1024 * 1024 / 16;
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    {
        uint64_t before = rv_store_last_seq(st);
        int rc = RV_OK, retry_rc = RV_OK;
        for (int k = 0; k < 200 && rc == RV_OK; k++) {
            for (int i = 0; i < 500; i++) {
                make_event(&evs[i], (uint64_t)(100000 + k * 500 + i), 1u << 30, T0);
                evs[i].title = strdup("a title long enough to fill pages quickly ........................");
            }
            rc = rv_store_put_batch(st, evs, 500, NULL, 0, NULL, 0, res, &err);
            /* the failed batch left no dedup key behind: a retry is not
             * taken for a batch of duplicates (that would lose it) */
            if (rc == RV_EFULL)
                retry_rc = rv_store_put_batch(st, evs, 500, NULL, 0, NULL, 0, res, &err);
            for (int i = 0; i < 500; i++)
                rv_event_release(&evs[i]);
            if (rc == RV_OK)
                before += 500;
        }
        CHECK(rc == RV_EFULL);
        CHECK(strstr(err.msg, "map full at its maximum size") != NULL);
        CHECK(rv_store_last_seq(st) == before);
        CHECK(retry_rc == RV_EFULL);
    }
    rv_store_close(&st);
    /* after the "disk" grows again, writing resumes and nothing is corrupt */
    rv_store_opts_default(&o);
    o.no_sync = true;
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    make_event(&evs[0], 77777777, 1u << 30, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 1, NULL, 0, NULL, 0, res, &err), &err);
    check_rollups(st);
    rv_store_close(&st);

    /* another schema version is refused with a clear message, and the
     * data dir is left untouched. The test edits meta with raw LMDB. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        unsigned char v2[8] = {0, 0, 0, 0, 0, 0, 0, 3};
        MDB_val k = {6, "schema"}, v = {8, v2};
        char want[512];
        CHECK(mdb_env_create(&env) == 0);
        mdb_env_set_maxdbs(env, 8);
        CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
        CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
        CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
        CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
        CHECK(rv_store_open(dir, &o, &st, &err) == RV_EVERSION);
        snprintf(want, sizeof(want),
                 "store: '%s' has schema version 3, this build reads version 2", dir);
        CHECK_STR(err.msg, want);
        (void)path;
    }
    rm_rf(dir);
}

static void test_second_writer_refused(void)
{
    char dir[256], want[512];
    struct rv_store *a, *b;
    struct rv_store_opts o;
    struct rv_errbuf err;

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    o.no_sync = true;
    CHECK_OK(rv_store_open(dir, &o, &a, &err), &err);
    CHECK(rv_store_open(dir, &o, &b, &err) == RV_EPERM);
    snprintf(want, sizeof(want), "store: '%s' is in use by another process (pid %ld)", dir,
             (long)getpid());
    CHECK_STR(err.msg, want);
    /* readers and admin tools may open beside the writer */
    o.read_only = true;
    CHECK_OK(rv_store_open(dir, &o, &b, &err), &err);
    rv_store_close(&b);
    o.read_only = false;
    o.meta_only = true;
    CHECK_OK(rv_store_open(dir, &o, &b, &err), &err);
    rv_store_close(&b);
    o.meta_only = false;
    rv_store_close(&a);
    /* released on close */
    CHECK_OK(rv_store_open(dir, &o, &a, &err), &err);
    rv_store_close(&a);
    rm_rf(dir);
}

static void test_read_only_missing(void)
{
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    rv_store_opts_default(&o);
    o.read_only = true;
    CHECK(rv_store_open("/nonexistent/rv", &o, &st, &err) == RV_ENOTFOUND);
    CHECK_STR(err.msg, "store: no store at '/nonexistent/rv'");
}

static int alert_cb(void *arg, uint64_t seq, const char *json, size_t len)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%llu:%.*s;", (unsigned long long)seq, (int)len, json);
    return 0;
}

struct evlist {
    size_t n;
    uint64_t last;
};
static int evcount_cb(void *arg, uint64_t seq, int64_t ing, const struct rv_event *ev)
{
    struct evlist *l = arg;
    (void)ing;
    (void)ev;
    CHECK(seq > l->last);
    l->last = seq;
    l->n++;
    return 0;
}

static void test_alerts_cursors_retention(void)
{
    char dir[256], out[512] = "";
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_event evs[10];
    struct rv_put_result res[10];
    struct rv_alert_rec al[2] = {{1, "{\"a\":1}", 7}, {2, "{\"a\":2}", 7}};
    struct rv_cursor_rec cur = {"feed:ooni", "offset-42", 9};
    char buf[64];
    size_t len;
    size_t deleted;

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    o.no_sync = true;
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    for (int i = 0; i < 10; i++)
        make_event(&evs[i], (uint64_t)i, 1000, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 10, &cur, 1, al, 2, res, &err), &err);
    CHECK(rv_store_last_alert_seq(st) == 2);
    CHECK_OK(rv_store_read_alerts(st, 0, alert_cb, out, &err), &err);
    CHECK_STR(out, "1:{\"a\":1};2:{\"a\":2};");
    out[0] = '\0';
    CHECK_OK(rv_store_read_alerts(st, 1, alert_cb, out, &err), &err);
    CHECK_STR(out, "2:{\"a\":2};");
    /* an alert seq that does not increase is refused and nothing is written */
    CHECK(rv_store_put_batch(st, evs, 0, NULL, 0, al, 1, res, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "alert: seq 1 not above the last stored 2");
    CHECK(rv_store_get_cursor(st, "feed:ooni", buf, sizeof(buf), &len) == RV_OK && len == 9 &&
          memcmp(buf, "offset-42", 9) == 0);
    CHECK(rv_store_get_cursor(st, "nope", buf, sizeof(buf), &len) == RV_ENOTFOUND);
    /* filter on events */
    {
        struct rv_event_filter f = {.country = evs[3].country, .violation = -1};
        struct evlist l = {0};
        size_t want = 0;
        for (int i = 0; i < 10; i++)
            want += strcmp(evs[i].country, evs[3].country) == 0;
        CHECK_OK(rv_store_read_events(st, &f, evcount_cb, &l, &err), &err);
        CHECK(l.n == want);
        f.limit = 1;
        memset(&l, 0, sizeof(l));
        CHECK_OK(rv_store_read_events(st, &f, evcount_cb, &l, &err), &err);
        CHECK(l.n == 1);
    }
    /* meta: reserved keys refused, tokens stored */
    CHECK(rv_store_meta_put(st, "schema", "x", 1, &err) == RV_EINVAL);
    CHECK_OK(rv_store_meta_put(st, "tok:abc", "{}", 2, &err), &err);
    CHECK(rv_store_get_meta(st, "tok:abc", buf, sizeof(buf), &len) == RV_OK && len == 2);
    /* retention: everything was ingested "now"; a horizon in the future of
     * those events' ingest time deletes them, rollups stay, dedup stays */
    {
        struct evlist l = {0};
        size_t bins_before = 0, bins_after = 0;
        CHECK_OK(rv_store_flush(st, &err), &err);
        CHECK_OK(rv_store_read_overview(st, RV_RES_1D, count_cb, &bins_before, &err), &err);
        CHECK_OK(rv_store_retention(st, 1000, rv_now_ms() + 5000, &deleted, &err), &err);
        CHECK(deleted == 10);
        CHECK_OK(rv_store_read_log(st, 1, 0, evcount_cb, &l, &err), &err);
        CHECK(l.n == 0);
        CHECK_OK(rv_store_read_overview(st, RV_RES_1D, count_cb, &bins_after, &err), &err);
        CHECK(bins_before == bins_after && bins_after > 0);
        CHECK_OK(rv_store_put_batch(st, evs, 1, NULL, 0, NULL, 0, res, &err), &err);
        CHECK(res[0].outcome == RV_OUT_DUPLICATE);
    }
    rv_store_close(&st);
    /* after reopen the seq continues past the deleted ones */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    CHECK(rv_store_last_seq(st) == 10);
    make_event(&evs[0], 500, 1000, T0);
    CHECK_OK(rv_store_put_batch(st, evs, 1, NULL, 0, NULL, 0, res, &err), &err);
    CHECK(res[0].seq == 11);
    rv_store_close(&st);
    rm_rf(dir);
}

/* ---- the writer: many threads, one fsync per group */
struct wctx {
    struct rv_writer *w;
    int tid;
    int fails;
};

static void *submitter(void *arg)
{
    struct wctx *c = arg;
    struct rv_event evs[50];
    struct rv_put_result res[50];
    for (int b = 0; b < 40; b++) {
        struct rv_write_req req = {0};
        for (int i = 0; i < 50; i++)
            make_event(&evs[i], (uint64_t)(c->tid * 100000 + b * 50 + i), 1u << 30, T0);
        req.evs = evs;
        req.n = 50;
        req.res = res;
        if (rv_writer_submit_wait(c->w, &req, 0) != RV_OK)
            c->fails++;
        for (int i = 0; i < 50; i++)
            if (res[i].outcome != RV_OUT_ACCEPTED || res[i].seq == 0)
                c->fails++;
    }
    return NULL;
}

static uint64_t commits_seen;
static void on_commit(void *arg, uint64_t first, uint64_t last, uint64_t la)
{
    (void)arg;
    (void)la;
    if (last >= first)
        commits_seen++;
}

static void test_writer(void)
{
    char dir[256];
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_writer *w;
    struct rv_writer_hooks hooks = {.on_commit = on_commit};
    struct rv_store_stats s;
    pthread_t th[4];
    struct wctx ctx[4];

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err); /* durable: group commit matters */
    CHECK_OK(rv_writer_new(st, NULL, &hooks, &w), NULL);
    for (int i = 0; i < 4; i++) {
        ctx[i] = (struct wctx){w, i, 0};
        pthread_create(&th[i], NULL, submitter, &ctx[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(ctx[i].fails == 0);
    }
    rv_writer_free(&w);
    CHECK(w == NULL);
    rv_store_get_stats(st, &s);
    CHECK(rv_store_last_seq(st) == 4 * 40 * 50);
    CHECK(s.events_accepted == 8000);
    CHECK(commits_seen >= 1 && commits_seen <= s.commits); /* checkpoints commit too */
    printf("writer: 160 requests from 4 threads in %llu commits\n", (unsigned long long)s.commits);
    check_rollups(st);
    rv_store_close(&st);
    rm_rf(dir);
}

/* ---- the writer's acks: hooks and done() never at the same time, never on
 * the submitter's thread, in commit order, whether the commit was
 * acknowledged at once (light load, on the writer thread) or after the ack
 * thread's sync (a queue behind it) */
#define ORD_REQS 300
#define ORD_EVS 10
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t main_thr;
    atomic_int inside;   /* in a hook or done() now */
    bool started, stopped;
    int wrong_thread, overlaps, gaps, out_of_order;
    uint64_t last_seq;   /* newest seq on_commit told of */
    uint64_t last_done;  /* newest seq a done() saw */
    size_t ndone;
} ord = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void ord_enter(void)
{
    if (atomic_fetch_add(&ord.inside, 1) != 0)
        ord.overlaps++;
    if (pthread_equal(pthread_self(), ord.main_thr))
        ord.wrong_thread++;
}

static void ord_leave(void)
{
    atomic_fetch_sub(&ord.inside, 1);
}

static void ord_start(void *arg)
{
    (void)arg;
    /* rv_writer_new's caller, before the writer's threads exist */
    if (!pthread_equal(pthread_self(), ord.main_thr) || ord.inside)
        ord.wrong_thread++;
    ord.started = true;
}

static void ord_commit(void *arg, uint64_t first, uint64_t last, uint64_t la)
{
    (void)arg;
    (void)la;
    ord_enter();
    if (!ord.started)
        ord.out_of_order++;
    if (last >= first) {
        if (first != ord.last_seq + 1)
            ord.gaps++;
        ord.last_seq = last;
    }
    ord_leave();
}

static void ord_stop(void *arg)
{
    (void)arg;
    ord_enter();
    ord.stopped = true;
    ord_leave();
}

static void ord_done(struct rv_write_req *req, void *arg)
{
    (void)arg;
    ord_enter();
    pthread_mutex_lock(&ord.mu);
    /* completed in commit order, after on_commit told of its events */
    if (req->rc != RV_OK || req->res[0].seq <= ord.last_done || req->res[ORD_EVS - 1].seq > ord.last_seq)
        ord.out_of_order++;
    ord.last_done = req->res[ORD_EVS - 1].seq;
    ord.ndone++;
    pthread_cond_signal(&ord.cv);
    pthread_mutex_unlock(&ord.mu);
    ord_leave();
}

static void test_writer_ack_order(void)
{
    char dir[256];
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_writer *w;
    struct rv_writer_hooks hooks = {ord_start, ord_commit, ord_stop, NULL};
    static struct rv_event evs[ORD_REQS][ORD_EVS];
    static struct rv_put_result res[ORD_REQS][ORD_EVS];
    static struct rv_write_req reqs[ORD_REQS];
    struct rv_store_stats s;
    uint64_t k = 0;

    ord.main_thr = pthread_self();
    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err); /* durable: the syncs are real */
    CHECK_OK(rv_writer_new(st, NULL, &hooks, &w), NULL);
    /* the first two thirds queued at once (the writer commits while more
     * wait: deferred syncs), the rest one at a time with a pause (each
     * acknowledged at once after its commit) */
    for (int r = 0; r < ORD_REQS; r++) {
        for (int i = 0; i < ORD_EVS; i++)
            make_event(&evs[r][i], k++, 1u << 30, T0);
        reqs[r] = (struct rv_write_req){.evs = evs[r], .n = ORD_EVS, .res = res[r], .done = ord_done};
        if (r >= ORD_REQS * 2 / 3) {
            pthread_mutex_lock(&ord.mu);
            while (ord.ndone < (size_t)r)
                pthread_cond_wait(&ord.cv, &ord.mu);
            pthread_mutex_unlock(&ord.mu);
            struct timespec d = {0, 2000000};
            nanosleep(&d, NULL);
        }
        CHECK(rv_writer_submit(w, &reqs[r]) == RV_OK);
    }
    pthread_mutex_lock(&ord.mu);
    while (ord.ndone < ORD_REQS)
        pthread_cond_wait(&ord.cv, &ord.mu);
    pthread_mutex_unlock(&ord.mu);
    rv_writer_free(&w);
    CHECK(ord.started && ord.stopped);
    CHECK(ord.wrong_thread == 0);
    CHECK(ord.overlaps == 0);
    CHECK(ord.gaps == 0);
    CHECK(ord.out_of_order == 0);
    CHECK(ord.last_seq == ORD_REQS * ORD_EVS);
    rv_store_get_stats(st, &s);
    CHECK(s.events_accepted == ORD_REQS * ORD_EVS);
    printf("writer ack order: %d requests in %llu commits\n", ORD_REQS,
           (unsigned long long)s.commits);
    rv_store_close(&st);
    /* everything acknowledged is there after a reopen */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    CHECK(rv_store_last_seq(st) == ORD_REQS * ORD_EVS);
    rv_store_close(&st);
    for (int r = 0; r < ORD_REQS; r++)
        for (int i = 0; i < ORD_EVS; i++)
            rv_event_release(&evs[r][i]);
    rm_rf(dir);
}

/* Disk full, for real: the file size limit makes LMDB's writes fail with
 * EFBIG like a full disk does. In a child process so the limit stays there. */
static int disk_full_child(const char *dir)
{
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_event evs[200];
    struct rv_put_result res[200];
    struct rlimit rl;
    struct stat sb;
    uint64_t k = 0, acked = 0;
    int rc = RV_OK, fails = 0;
    char path[300];

    signal(SIGXFSZ, SIG_IGN);
    rv_store_opts_default(&o);
    if (rv_store_open(dir, &o, &st, &err))
        return 10;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    stat(path, &sb);
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = (rlim_t)sb.st_size + 2 * 1024 * 1024;
    setrlimit(RLIMIT_FSIZE, &rl);
    for (int round = 0; round < 400 && rc == RV_OK; round++) {
        for (int i = 0; i < 200; i++) {
            make_event(&evs[i], k++, 1u << 30, T0);
            evs[i].title = strdup("a title long enough to fill pages quickly ..........................");
        }
        rc = rv_store_put_batch(st, evs, 200, NULL, 0, NULL, 0, res, &err);
        for (int i = 0; i < 200; i++)
            rv_event_release(&evs[i]);
        if (rc == RV_OK)
            acked += 200;
    }
    if (rc != RV_EFULL ||
        (strcmp(err.msg, "store: commit: write failed (Input/output error); nothing was written") != 0 &&
         !strstr(err.msg, "store: commit: disk full")))
        fails |= 1;
    fprintf(stderr, "disk full after %llu events: %s\n", (unsigned long long)acked, err.msg);
    if (rv_store_last_seq(st) != acked)
        fails |= 2;
    /* space returns: the same batch now commits */
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_FSIZE, &rl);
    for (int i = 0; i < 200; i++)
        make_event(&evs[i], k + (uint64_t)i, 1u << 30, T0);
    if (rv_store_put_batch(st, evs, 200, NULL, 0, NULL, 0, res, &err) != RV_OK)
        fails |= 4;
    if (rv_store_last_seq(st) != acked + 200)
        fails |= 8;
    rv_store_close(&st);
    return fails;
}

static void test_disk_full(void)
{
    char dir[256];
    int status;
    pid_t pid;
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;

    make_tmpdir(dir, sizeof(dir));
    pid = fork();
    if (pid == 0)
        _exit(disk_full_child(dir));
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "disk full child status %d\n", status);
    /* nothing is corrupt: reopen, rollups equal a recount */
    rv_store_opts_default(&o);
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    check_rollups(st);
    rv_store_close(&st);
    rm_rf(dir);
}


/* The filter of the keys in `events` (store/bloom.h) must never hide a key:
 * old ids re-sent while the filter is rebuilt on its thread (it starts
 * small and grows several times here), after the rebuilds, and after a
 * reopen (built again from `events`) are all duplicates; and it must be in
 * use: most new keys skip the lookup. */
static void test_dedup_filter(void)
{
    char dir[256];
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_store_stats ss;
    const size_t N = 150000, B = 500, R = 100; /* > 2 pieces of the filter's scan (64k keys) */
    struct rv_event *evs = calloc(B + R, sizeof(*evs));
    struct rv_put_result *res = calloc(B + R, sizeof(*res));
    uint64_t rng = 42;
    size_t dups = 0;

    make_tmpdir(dir, sizeof(dir));
    rv_store_opts_default(&o);
    o.no_sync = true;
    o.dedup_flush_keys = 1000; /* keys reach `events` early and often */
    o.filter_rebuild_hold_ms = 30; /* commits land while a rebuild's snapshot is held */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    for (size_t k = 0; k < N; k += B) {
        for (size_t i = 0; i < B; i++)
            make_event(&evs[i], k + i, N, T0);
        /* R ids accepted before, anywhere in 0..k */
        size_t r = k ? R : 0;
        for (size_t i = 0; i < r; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            make_event(&evs[B + i], (rng >> 33) % k, N, T0);
        }
        CHECK_OK(rv_store_put_batch(st, evs, B + r, NULL, 0, NULL, 0, res, &err), &err);
        for (size_t i = 0; i < B; i++)
            CHECK(res[i].outcome == RV_OUT_ACCEPTED && res[i].seq == k + i + 1);
        for (size_t i = B; i < B + r; i++) {
            CHECK(res[i].outcome == RV_OUT_DUPLICATE);
            dups += res[i].outcome == RV_OUT_DUPLICATE;
        }
    }
    CHECK(dups == (N / B - 1) * R);
    rv_store_get_stats(st, &ss);
    /* most of the N new keys were ruled out without a lookup; the rest are
     * the keys checked while they were still in memory, or false positives */
    CHECK(ss.dedup_filter_skips > N / 2);
    /* (the held rebuilds let the old filter fill past its size: ~5% false
     * positives here, 0.13% without the hold) */
    CHECK(ss.dedup_filter_false < ss.dedup_filter_skips / 5);
    CHECK(rv_store_last_seq(st) == N);
    rv_store_close(&st);

    /* reopened: the filter is built from `events`; every old id is still a
     * duplicate with its seq, and new ones are accepted */
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err);
    for (size_t k = 0; k < N; k += B) {
        for (size_t i = 0; i < B; i++)
            make_event(&evs[i], k + i, N, T0);
        CHECK_OK(rv_store_put_batch(st, evs, B, NULL, 0, NULL, 0, res, &err), &err);
        for (size_t i = 0; i < B; i++)
            CHECK(res[i].outcome == RV_OUT_DUPLICATE && res[i].seq == k + i + 1);
    }
    for (size_t i = 0; i < B; i++)
        make_event(&evs[i], N + i, 2 * N, T0);
    CHECK_OK(rv_store_put_batch(st, evs, B, NULL, 0, NULL, 0, res, &err), &err);
    for (size_t i = 0; i < B; i++)
        CHECK(res[i].outcome == RV_OUT_ACCEPTED && res[i].seq == N + i + 1);
    /* the filter built at open is in use: the new keys skipped the lookup */
    rv_store_get_stats(st, &ss);
    CHECK(ss.dedup_filter_skips > B * 9 / 10);
    rv_store_close(&st);

    rm_rf(dir);
    free(evs);
    free(res);
}

int main(void)
{
    test_disk_full();
    test_rollups_dedup();
    test_dedup_filter();
    test_map_growth_and_version();
    test_read_only_missing();
    test_second_writer_refused();
    test_alerts_cursors_retention();
    test_writer();
    test_writer_ack_order();
    CHECK_DONE();
}

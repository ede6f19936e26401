/*
 * bench/store: the store's writer API (dedup + log + rollups + cursor)
 * against raw durable mdb_put of the same events, at batch sizes 1, 100,
 * 1000 and 10000, in one run, on fresh data dirs under $TMPDIR.
 * Events: ~300 bytes, random ids, spread over 3000 series (country x
 * violation), times over one day. Prints events/s and the ratio.
 *
 *   bench_store [--quick]
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/store_util.h"
#include "rv/country.h"
#include "rv/timeutil.h"

#define T0 1735689600000LL

static void fill(struct rv_event *ev, uint64_t k)
{
    uint64_t h = (k + 1) * 0x9E3779B97F4A7C15ULL;
    static char title[] = "Reported incident affecting civilians in the region, details pending "
                          "verification by two independent sources; count is provisional.....";
    rv_event_init(ev);
    snprintf(ev->source, sizeof(ev->source), "partner-%llu", (unsigned long long)(h >> 60));
    snprintf(ev->id, sizeof(ev->id), "%016llx-%llu", (unsigned long long)h, (unsigned long long)k);
    /* 3000 series: 215 countries x 14 violations */
    memcpy(ev->country, rv_country_code_at((int)((h >> 8) % 215)), 3);
    ev->violation = (uint8_t)((h >> 20) % 14);
    ev->time_ms = T0 + (int64_t)((h >> 28) % 86400) * 1000;
    ev->count = 1 + (uint32_t)((h >> 40) % 5);
    ev->severity = 3;
    ev->confidence = 0.8;
    ev->kind = RV_KIND_INCIDENT;
    snprintf(ev->admin1, sizeof(ev->admin1), "Region %llu", (unsigned long long)((h >> 44) % 50));
    ev->title = title;
    ev->url = "https://example.org/reports/2025/incident";
}

static double run_writer(const char *dir, struct rv_event *evs, size_t n, size_t bs)
{
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_put_result *res = malloc(bs * sizeof(*res));
    uint64_t t0;
    char cval[16];
    rv_store_opts_default(&o);
    o.map_size = 1UL << 32;
    if (rv_store_open(dir, &o, &st, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(2);
    }
    t0 = rv_mono_ns();
    for (size_t i = 0; i < n; i += bs) {
        size_t m = i + bs > n ? n - i : bs;
        struct rv_cursor_rec cur = {"bench", cval, 8};
        memcpy(cval, &i, 8);
        if (rv_store_put_batch(st, evs + i, m, &cur, 1, NULL, 0, res, &err)) {
            fprintf(stderr, "put: %s\n", err.msg);
            exit(2);
        }
    }
    rv_store_flush(st, &err); /* the rollup checkpoint is part of the cost */
    double secs = (double)(rv_mono_ns() - t0) / 1e9;
    rv_store_close(&st);
    free(res);
    return (double)n / secs;
}

static double run_raw(const char *dir, struct rv_event *evs, size_t n, size_t bs)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char buf[4096];
    uint64_t t0;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, 1UL << 32);
    mdb_env_set_maxdbs(env, 2);
    if (mdb_env_open(env, dir, 0, 0600)) {
        fprintf(stderr, "raw open failed\n");
        exit(2);
    }
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "events", MDB_CREATE, &dbi);
    mdb_txn_commit(txn);
    t0 = rv_mono_ns();
    for (size_t i = 0; i < n; i += bs) {
        size_t m = i + bs > n ? n - i : bs;
        mdb_txn_begin(env, NULL, 0, &txn);
        for (size_t j = i; j < i + m; j++) {
            char key[256];
            size_t sl = strlen(evs[j].source), il = strlen(evs[j].id);
            int len = rv_event_encode(&evs[j], buf, sizeof(buf));
            MDB_val k = {sl + 1 + il, key}, v = {(size_t)len, buf};
            memcpy(key, evs[j].source, sl + 1);
            memcpy(key + sl + 1, evs[j].id, il);
            if (mdb_put(txn, dbi, &k, &v, 0)) {
                fprintf(stderr, "raw put failed\n");
                exit(2);
            }
        }
        if (mdb_txn_commit(txn)) {
            fprintf(stderr, "raw commit failed\n");
            exit(2);
        }
    }
    double secs = (double)(rv_mono_ns() - t0) / 1e9;
    mdb_env_close(env);
    return (double)n / secs;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1, 100, 1000, 10000};
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t counts[] = {quick ? 200 : 1000, quick ? 20000 : 100000, quick ? 50000 : 300000,
                       quick ? 100000 : 600000};
    size_t maxn = counts[3];
    struct rv_event *evs = calloc(maxn, sizeof(*evs));
    char dir[256];
    unsigned char tmp[4096];

    for (size_t i = 0; i < maxn; i++)
        fill(&evs[i], i);
    printf("event size %d bytes encoded, durable commits (fsync), fresh store per run\n",
           rv_event_encode(&evs[0], tmp, sizeof(tmp)));
    printf("%8s %10s %14s %14s %8s\n", "batch", "events", "writer ev/s", "raw lmdb ev/s", "ratio");
    for (int s = 0; s < 4; s++) {
        double w, r;
        make_tmpdir(dir, sizeof(dir));
        r = run_raw(dir, evs, counts[s], sizes[s]);
        rm_rf(dir);
        make_tmpdir(dir, sizeof(dir));
        w = run_writer(dir, evs, counts[s], sizes[s]);
        rm_rf(dir);
        printf("%8zu %10zu %14.0f %14.0f %8.2f\n", sizes[s], counts[s], w, r, w / r);
        fflush(stdout);
    }
    free(evs);
    return 0;
}

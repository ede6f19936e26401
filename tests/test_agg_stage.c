/*
 * test_agg_stage: the live aggregator stage on a real store (mkdtemp), a
 * real writer thread and real inproc ZeroMQ: it follows the commits, stores
 * alerts with its cursor, publishes them; its stored alert sequence equals
 * a replay of the same log byte for byte, also across a restart.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ftw.h>
#include <zmq.h>

#include "rv/agg.h"
#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#include "agg_dataset.h"

static uint64_t g_ooni; /* day-stamped events added by build */

static int file_of(const char *source)
{
    return strcmp(source, "partnerA") == 0 ? 0 : strcmp(source, "gdelt") == 0 ? 1 : 2;
}

static int cmp_ev(const void *a, const void *b)
{
    const struct rv_event *x = a, *y = b;
    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return file_of(x->source) - file_of(y->source);
}

/* Three weeks and a bit of two news sources on UA and an IODA-like probe
 * on IR, with a corroborated burst and a shutdown. Sorted by (time, feed),
 * the order a backtest of the per-feed files merges them in. */
static void build(struct ds *d, int64_t t0, int64_t t1, int64_t burst, int64_t drop)
{
    size_t from = d->n;

    for (int64_t h = t0; h < t1; h += HOUR_MS) {
        int na = poisson(2), nb = poisson(2);
        if (h == burst)
            na += 20, nb += 20;
        for (int i = 0; i < na; i++)
            add(d, "partnerA", "UA", RV_V_ATTACK_ON_CIVILIANS, RV_KIND_INCIDENT,
                h + (int64_t)(urand() * (HOUR_MS - 1)), false, 0);
        for (int i = 0; i < nb; i++)
            add(d, "gdelt", "UA", RV_V_ATTACK_ON_CIVILIANS, RV_KIND_NEWS,
                h + (int64_t)(urand() * (HOUR_MS - 1)), false, 0);
        for (int64_t t = h; t < h + HOUR_MS; t += 600000) {
            double v = 1000 * (0.95 + 0.1 * urand());
            if (t >= drop && t < drop + 5 * HOUR_MS)
                v *= 0.1;
            add(d, "ioda", "IR", RV_V_INTERNET_SHUTDOWN, RV_KIND_PROBE, t, true, v);
        }
    }
    qsort(d->ev + from, d->n - from, sizeof *d->ev, cmp_ev);
    /* A day-stamped feed, as live delivers it: the OONI aggregation of
     * day D, stamped D 00:00, fetched at D 14:00 (after that time's
     * events, far behind the watermark). Inside ooni's default
     * source_lateness_s, so applied, not dropped (review F7). */
    {
        size_t n = d->n - from, k = 0;
        struct rv_event *tmp = malloc(n * sizeof *tmp);
        int64_t day = t0 - t0 % DAY_MS;
        if (tmp == NULL)
            abort();
        memcpy(tmp, d->ev + from, n * sizeof *tmp);
        d->n = from;
        for (size_t i = 0; i <= n; i++) {
            while (day + 14 * HOUR_MS < t1 && (i == n || tmp[i].time_ms >= day + 14 * HOUR_MS)) {
                if (day + 14 * HOUR_MS >= t0) {
                    add(d, "ooni", "IR", RV_V_CENSORSHIP, RV_KIND_PROBE, day, true,
                        0.05 + 0.01 * (double)(k % 3));
                    g_ooni++;
                    k++;
                }
                day += DAY_MS;
            }
            if (i < n) {
                if (d->n == d->cap) {
                    d->cap *= 2;
                    d->ev = realloc(d->ev, d->cap * sizeof *d->ev);
                    if (d->ev == NULL)
                        abort();
                }
                d->ev[d->n++] = tmp[i];
            }
        }
        free(tmp);
    }
}

static void on_replayed(void *arg, const struct rv_agg_alert *a)
{
    buf_add(arg, a->json, a->len);
}

static bool wait_cursor(struct rv_agg *a, uint64_t seq)
{
    for (int i = 0; i < 3000; i++) {
        if (rv_agg_cursor(a) >= seq)
            return true;
        usleep(10000);
    }
    return false;
}

/* Receives published messages until N alerts came or 5 s passed. */
static void recv_updates(void *sub, struct buf *alerts, size_t *cells, size_t n)
{
    char topic[16], *body = malloc(1 << 16);

    for (int i = 0; i < 500 && (alerts->n < n || *cells == 0); i++) {
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) <= 0)
            continue;
        while (1) {
            int tl = zmq_recv(sub, topic, sizeof topic - 1, ZMQ_DONTWAIT);
            if (tl < 0)
                break;
            int bl = zmq_recv(sub, body, (1 << 16) - 1, 0);
            if (bl < 0)
                break;
            topic[tl] = '\0';
            if (strcmp(topic, "alert") == 0)
                buf_add(alerts, body, (size_t)bl);
            else if (strcmp(topic, "cell") == 0)
                (*cells)++;
        }
    }
    free(body);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    char dir[] = "/tmp/rv-test-agg-XXXXXX";
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_writer *w = NULL;
    struct rv_agg *agg = NULL;
    struct rv_errbuf err = {0};
    struct commits hc;
    struct rv_writer_hooks hooks = {hk_start, hk_commit, hk_stop, &hc};
    struct ds d = {0};
    struct buf stored = {0}, replayed = {0}, published = {0};
    struct rv_agg_params p;
    struct rv_agg_engine_stats rst;
    struct rv_agg_sink sink = {on_replayed, &replayed};
    size_t cells = 0, half;
    int64_t t0;
    void *zctx, *sub;
    int zero = 0;

    rv_log_set_level(RV_LOG_ERROR);
    if (rv_time_from_civil(2024, 1, 1, 0, 0, 0, &t0) != RV_OK || mkdtemp(dir) == NULL)
        return 1;
    zctx = zmq_ctx_new();
    hc.zctx = zctx;
    rv_store_opts_default(&so);
    so.no_sync = true;
    CHECK_RC(rv_store_open(dir, &so, &st, &err));
    CHECK_RC(rv_writer_new(st, NULL, &hooks, &w));

    /* bad config is refused before anything starts */
    {
        cJSON *bad = cJSON_Parse("{\"cooldown_bins\":0}");
        CHECK(rv_agg_start(zctx, st, w, bad, NULL, &agg, &err) == RV_EINVAL);
        CHECK(strcmp(err.msg, "aggregator.cooldown_bins: must be an integer 1..1000") == 0);
        CHECK(agg == NULL);
        cJSON_Delete(bad);
    }

    CHECK_RC(rv_agg_start(zctx, st, w, NULL, NULL, &agg, &err));
    sub = zmq_socket(zctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    CHECK(zmq_connect(sub, RV_EP_UPDATES) == 0);
    usleep(50000); /* let the subscription reach the PUB */

    /* part 1: three weeks, the burst and the shutdown */
    int64_t burst = t0 + 21 * DAY_MS + 10 * HOUR_MS, drop = t0 + 21 * DAY_MS + 14 * HOUR_MS;
    build(&d, t0, t0 + 21 * DAY_MS + 17 * HOUR_MS, burst, drop);
    half = d.n;
    CHECK_RC(submit(w, d.ev, d.n));
    CHECK(wait_cursor(agg, rv_store_last_seq(st)));
    CHECK(rv_store_last_seq(st) == half);
    CHECK(rv_store_last_alert_seq(st) >= 2);
    CHECK_RC(rv_store_read_alerts(st, 0, on_stored, &stored, &err));
    recv_updates(sub, &published, &cells, stored.n);
    CHECK(published.n == stored.n && published.len == stored.len &&
          memcmp(published.p, stored.p, stored.len) == 0);
    CHECK(strstr(stored.p, "\"state\":\"opened\",\"country\":\"UA\"") != NULL);
    CHECK(strstr(stored.p, "\"country\":\"IR\",\"violation\":\"internet_shutdown\",\"admin1\":null,"
                           "\"level\":\"critical\"") != NULL);
    CHECK(cells > 0);
    printf("live: %zu events, %zu alerts stored and published, %zu cell updates\n", half, stored.n,
           cells);

    /* part 2: restart, then the recovery: the stage rebuilds its engine
     * from the log and goes on as if it had never stopped */
    rv_agg_stop(&agg);
    CHECK(agg == NULL);
    CHECK_RC(rv_agg_start(zctx, st, w, NULL, NULL, &agg, &err));
    if (agg == NULL)
        return 1;
    build(&d, t0 + 21 * DAY_MS + 17 * HOUR_MS, t0 + 23 * DAY_MS, -1, drop);
    CHECK_RC(submit(w, d.ev + half, d.n - half));
    CHECK(wait_cursor(agg, rv_store_last_seq(st)));
    rv_agg_stop(&agg);
    free(stored.p);
    memset(&stored, 0, sizeof stored);
    CHECK_RC(rv_store_read_alerts(st, 0, on_stored, &stored, &err));
    CHECK(strstr(stored.p, "\"state\":\"resolved\",\"country\":\"IR\"") != NULL);

    /* the replay of the same log gives the same bytes */
    CHECK_RC(rv_agg_params_from_json(NULL, &p, &err));
    CHECK_RC(rv_agg_replay(st, &p, &sink, &rst, &err));
    /* the day-stamped events were applied (live gave the same bytes) */
    CHECK(g_ooni == 23);
    CHECK(rst.late_applied == g_ooni);
    CHECK(rst.late == 0);
    CHECK(replayed.n > 0 && replayed.n == stored.n);
    CHECK(replayed.len == stored.len && memcmp(replayed.p, stored.p, stored.len) == 0);
    printf("after restart: %zu alerts stored, replay identical: %s\n", stored.n,
           replayed.len == stored.len && memcmp(replayed.p, stored.p, stored.len) == 0 ? "yes"
                                                                                         : "no");
    {
        unsigned char cv[8];
        size_t len = 0;
        CHECK_RC(rv_store_get_cursor(st, "aggregator", cv, sizeof cv, &len));
        CHECK(len == 8 && rv_get_be64(cv) == d.n);
    }

    zmq_close(sub);
    rv_writer_free(&w);
    rv_store_close(&st);

    /* part 3: no commit notifications at all (a writer without hooks, as
     * if every PUB message were lost): the stage still follows the log by
     * polling it */
    {
        char dir2[160];
        snprintf(dir2, sizeof dir2, "%s/nohooks", dir);
        CHECK_RC(rv_store_open(dir2, &so, &st, &err));
        CHECK_RC(rv_writer_new(st, NULL, NULL, &w));
        CHECK_RC(rv_agg_start(zctx, st, w, NULL, NULL, &agg, &err));
        if (agg == NULL)
            return 1;
        CHECK_RC(submit(w, d.ev, 1000));
        uint64_t t = rv_mono_ns();
        CHECK(wait_cursor(agg, 1000));
        printf("without notifications: caught up by polling in %.0f ms\n",
               (double)(rv_mono_ns() - t) / 1e6);
        rv_agg_stop(&agg);
        rv_writer_free(&w);
        rv_store_close(&st);
    }
    zmq_ctx_term(zctx);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ds_free(&d);
    free(stored.p);
    free(replayed.p);
    free(published.p);
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

/*
 * test_agg_pipe: the replay on two threads (aggregator/pipe.c: a reader
 * thread hands chunks of events to the engine on the caller's thread)
 * gives exactly what one thread gives: the same alerts and cells, byte for
 * byte, over chunk boundaries of both kinds (1024 events, and a chunk's
 * string buffer full of large events); the strings are copied (the
 * producer's buffers are clobbered after each hand-over); an error of the
 * reader ends the run with its message after the events it read.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rv/agg.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include "../aggregator/engine_int.h"
#include "agg_dataset.h"
#include "store_util.h"

static char *big_attrs;   /* ~12 KiB of JSON */
static char *big_title;

/* Four weeks of three sources on a few countries (one with admin1), an
 * IODA-like probe with two datasources, a corroborated burst and a drop;
 * every 40th event carries ~12 KiB of attrs and a long title, so that a
 * chunk's string buffer fills before its 1024 events. */
static void build_ds(struct ds *d, int64_t t0)
{
    static const char *cc[] = {"UA", "SY", "MM", "SD", "BY"};
    int64_t burst = t0 + 22 * DAY_MS + 9 * HOUR_MS, drop = t0 + 25 * DAY_MS + 3 * HOUR_MS;

    for (int64_t h = t0; h < t0 + 28 * DAY_MS; h += HOUR_MS) {
        for (size_t c = 0; c < sizeof cc / sizeof cc[0]; c++) {
            int na = poisson(1.5 + (double)c), nb = poisson(1.0);
            if (h == burst && c == 0)
                na += 25, nb += 25;
            for (int i = 0; i < na; i++)
                add(d, "partnerA", cc[c], RV_V_ATTACK_ON_CIVILIANS, RV_KIND_INCIDENT,
                    h + (int64_t)(urand() * (HOUR_MS - 1)), false, 0);
            for (int i = 0; i < nb; i++) {
                add(d, "gdelt", cc[c], (int)(c % 3) + 1, RV_KIND_NEWS,
                    h + (int64_t)(urand() * (HOUR_MS - 1)), false, 0);
                if (c == 1)
                    snprintf(d->ev[d->n - 1].admin1, sizeof d->ev[d->n - 1].admin1, "%s",
                             urand() < 0.5 ? "Aleppo" : "Idlib");
            }
        }
        for (int64_t t = h; t < h + HOUR_MS; t += 900000) {
            for (int k = 0; k < 2; k++) {
                double v = 1000 * (0.95 + 0.1 * urand());
                if (t >= drop && t < drop + 6 * HOUR_MS)
                    v *= 0.05;
                add(d, "ioda", "IR", RV_V_INTERNET_SHUTDOWN, RV_KIND_PROBE, t, true, v);
                d->ev[d->n - 1].attrs = strdup(k ? "{\"datasource\":\"bgp\"}"
                                                 : "{\"datasource\":\"ping-slash24\"}");
            }
        }
    }
    for (size_t i = 0; i < d->n; i += 40) {
        if (d->ev[i].attrs == NULL)
            d->ev[i].attrs = strdup(big_attrs);
        d->ev[i].title = strdup(big_title);
        d->ev[i].url = strdup("https://example.org/a/long/enough/url");
    }
}

static void on_alert(void *arg, const struct rv_agg_alert *a)
{
    buf_add(arg, a->json, a->len);
}

static void on_cell(void *arg, const struct rv_agg_cell *c)
{
    buf_add(arg, c->json, c->len);
}

/* A producer handing over the events of a dataset through views into a
 * scratch buffer that it clobbers right after each hand-over. */
struct arrprod {
    const struct ds *d;
    size_t stop_after; /* 0: all; else fail after that many */
    size_t put;
};

static int produce_array(struct rv_agg_pipe *pp, void *arg, struct rv_errbuf *err)
{
    struct arrprod *a = arg;
    static char scratch[64 * 1024];

    for (size_t i = 0; i < a->d->n; i++) {
        const struct rv_event *ev = &a->d->ev[i];
        struct rv_event_view v;
        char *p = scratch;

        if (a->stop_after && a->put == a->stop_after)
            return rv_err_set(err, RV_ECORRUPT, "store: log record %zu is corrupt", i + 1);
        rv_event_view_of(ev, &v);
        /* the strings in a buffer of the producer's */
#define MOVE(f)                                                                                    \
    if (v.f != NULL) {                                                                             \
        memcpy(p, v.f, v.f##_len);                                                                 \
        v.f = p;                                                                                   \
        p += v.f##_len;                                                                            \
    }
        MOVE(source) MOVE(id) MOVE(admin1) MOVE(title) MOVE(url) MOVE(attrs)
#undef MOVE
        if (rv_agg_pipe_put(pp, i + 1, &v))
            return RV_OK;
        memset(scratch, 'X', (size_t)(p - scratch));
        a->put++;
    }
    return RV_OK;
}

int main(void)
{
    char dir[256];
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_errbuf err = {0};
    struct rv_agg_params p;
    struct ds d = {0};
    struct buf ref_al = {0}, ref_cells = {0}, rep_al = {0}, pipe_al = {0}, pipe_cells = {0};
    struct rv_agg_engine *e = NULL;
    struct rv_agg_engine_stats ref_st, rep_st, pipe_st;
    int64_t t0;

    rv_log_set_level(RV_LOG_ERROR);
    if (rv_time_from_civil(2024, 3, 4, 0, 0, 0, &t0) != RV_OK || make_tmpdir(dir, sizeof dir) == NULL)
        return 1;
    big_attrs = malloc(13000);
    big_title = malloc(1001);
    if (big_attrs == NULL || big_title == NULL)
        return 1;
    {
        size_t n = (size_t)snprintf(big_attrs, 13000, "{\"note\":\"");
        for (; n < 12000; n++)
            big_attrs[n] = (char)('a' + n % 26);
        snprintf(big_attrs + n, 13000 - n, "\"}");
        memset(big_title, 'T', 1000);
        big_title[1000] = '\0';
    }
    build_ds(&d, t0);
    CHECK(d.n > 20000);
    CHECK_RC(rv_agg_params_from_json(NULL, &p, &err));

    /* the reference: one thread, every event pushed as it is */
    CHECK_RC(rv_agg_engine_new(&p, 0, &(struct rv_agg_sink){on_alert, &ref_al}, &e));
    for (size_t i = 0; i < d.n && e; i++)
        CHECK_RC(rv_agg_engine_push(e, i + 1, &d.ev[i]));
    CHECK_RC(rv_agg_engine_cells(e, on_cell, &ref_cells));
    rv_agg_engine_get_stats(e, &ref_st);
    rv_agg_engine_free(&e);
    CHECK(ref_st.events == d.n);
    /* the data means something: a burst warning, a probe drop, cells */
    CHECK(strstr(ref_al.p ? ref_al.p : "", "\"country\":\"UA\"") != NULL);
    CHECK(strstr(ref_al.p ? ref_al.p : "", "\"country\":\"IR\",\"violation\":\"internet_shutdown\"") !=
          NULL);
    CHECK(ref_cells.n > 5);
    printf("reference: %zu events, %zu alerts, %zu cells\n", d.n, ref_al.n, ref_cells.n);

    /* the pipe over the dataset, the producer's strings clobbered */
    {
        struct arrprod a = {&d, 0, 0};
        CHECK_RC(rv_agg_engine_new(&p, 0, &(struct rv_agg_sink){on_alert, &pipe_al}, &e));
        CHECK_RC(rv_agg_pipe_run(e, produce_array, &a, &err));
        CHECK_RC(rv_agg_engine_cells(e, on_cell, &pipe_cells));
        rv_agg_engine_get_stats(e, &pipe_st);
        rv_agg_engine_free(&e);
        CHECK(a.put == d.n);
        CHECK(memcmp(&pipe_st, &ref_st, sizeof ref_st) == 0);
        CHECK(pipe_al.n == ref_al.n && pipe_al.len == ref_al.len &&
              memcmp(pipe_al.p, ref_al.p, ref_al.len) == 0);
        CHECK(pipe_cells.n == ref_cells.n && pipe_cells.len == ref_cells.len &&
              memcmp(pipe_cells.p, ref_cells.p, ref_cells.len) == 0);
    }

    /* rv_agg_replay of the same events from a store: its reader thread
     * reads the log in place */
    {
        struct rv_put_result *res = calloc(d.n, sizeof *res);
        rv_store_opts_default(&so);
        so.no_sync = true;
        CHECK_RC(rv_store_open(dir, &so, &st, &err));
        for (size_t off = 0; off < d.n && st && res; off += 5000) {
            size_t k = d.n - off < 5000 ? d.n - off : 5000;
            CHECK_RC(rv_store_put_batch(st, d.ev + off, k, NULL, 0, NULL, 0, res, &err));
        }
        free(res);
        CHECK(rv_store_last_seq(st) == d.n);
        CHECK_RC(rv_agg_replay(st, &p, &(struct rv_agg_sink){on_alert, &rep_al}, &rep_st, &err));
        CHECK(memcmp(&rep_st, &ref_st, sizeof ref_st) == 0);
        CHECK(rep_al.n == ref_al.n && rep_al.len == ref_al.len &&
              memcmp(rep_al.p, ref_al.p, ref_al.len) == 0);
        printf("replay from the store: %zu alerts, identical: %s\n", rep_al.n,
               rep_al.len == ref_al.len && memcmp(rep_al.p, ref_al.p, ref_al.len) == 0 ? "yes"
                                                                                      : "no");
        rv_store_close(&st);
    }

    /* a reader error: the events before it reach the engine, then the
     * run ends with the reader's error and message */
    {
        struct arrprod a = {&d, 5000, 0};
        struct rv_errbuf e2 = {0};
        struct rv_agg_engine_stats s;
        CHECK_RC(rv_agg_engine_new(&p, 0, NULL, &e));
        CHECK(rv_agg_pipe_run(e, produce_array, &a, &e2) == RV_ECORRUPT);
        CHECK(strcmp(e2.msg, "store: log record 5001 is corrupt") == 0);
        rv_agg_engine_get_stats(e, &s);
        CHECK(s.events == 5000);
        rv_agg_engine_free(&e);
    }

    ds_free(&d);
    free(ref_al.p);
    free(ref_cells.p);
    free(rep_al.p);
    free(pipe_al.p);
    free(pipe_cells.p);
    free(big_attrs);
    free(big_title);
    rm_rf(dir);
    CHECK_DONE();
}

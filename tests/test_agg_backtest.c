/*
 * test_agg_backtest: `rvctl backtest` (rv_backtest_main) against the live
 * stage. The same dataset is ingested live (real store, writer thread and
 * inproc ZeroMQ) and given to the backtest as one NDJSON file per feed:
 * both give the same alert sequence byte for byte, two backtests give
 * identical bytes, episodes are scored as issue 5 says, bad input exits 2
 * with a clear message. Payloads of the feed formats (the shipped IODA
 * sample, its series one country after another; an ACLED export newest
 * first) are aggregated whole, in event-time order, and a feed worker
 * writing them live gives the backtest's alerts byte for byte.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ftw.h>
#include <zmq.h>

#include "rv/agg.h"
#include "rv/event.h"
#include "rv/feeds.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#include "agg_dataset.h"

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


static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}


/* Writes the events of SOURCE, in dataset order, as NDJSON. */
static void write_feed(const struct ds *d, const char *source, const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        abort();
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->ev[i].source, source) != 0)
            continue;
        cJSON *o = rv_event_to_json(&d->ev[i], false);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "source");
        char *t = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", t);
        free(t);
        cJSON_Delete(o);
    }
    fclose(f);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *p = NULL;
    size_t cap = 0, n = 0;

    *len = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            p = realloc(p, cap);
        }
        size_t r = fread(p + n, 1, 4096, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    p[n] = '\0';
    *len = n;
    return p;
}

/* Runs rv_backtest_main with stdout and stderr captured into files. */
static int run_backtest(const char *out, const char *errf, int argc, char **argv)
{
    int so = dup(1), se = dup(2), rc;
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    fflush(stdout);
    fflush(stderr);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = rv_backtest_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    return rc;
}

/* Runs the backtest ARGV (NULL-terminated) and expects exit 2 with
 * exactly MSG on stderr. */
static void expect_error(const char *out, const char *errf, char **argv, const char *msg)
{
    int argc = 0;
    size_t len;
    char *e;

    while (argv[argc] != NULL)
        argc++;
    CHECK(run_backtest(out, errf, argc, argv) == 2);
    e = slurp(errf, &len);
    CHECK_STR(e, msg);
    free(e);
}

/* ------------------------------------------- payloads of the feed formats */

/* Ingests PATH live through a feed worker (name NAME, format FORMAT: the
 * source the backtest names after the file) with the live aggregator
 * stage, and returns the alerts it stored, one JSON a line. */
static char *live_feed_alerts(const char *dir, const char *name, const char *format,
                              const char *path, size_t *len)
{
    char store_dir[160];
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_writer *w = NULL;
    struct rv_agg *agg = NULL;
    struct rv_feeds *f = NULL;
    struct rv_feed_cfg fc;
    struct rv_feed_stats fs = {0};
    struct rv_errbuf err = {0};
    struct commits hc;
    struct rv_writer_hooks hooks = {hk_start, hk_commit, hk_stop, &hc};
    struct buf stored = {0};
    void *zctx = zmq_ctx_new();

    snprintf(store_dir, sizeof store_dir, "%s/live-%s", dir, name);
    hc.zctx = zctx;
    rv_store_opts_default(&so);
    so.no_sync = true;
    CHECK_RC(rv_store_open(store_dir, &so, &st, &err));
    CHECK_RC(rv_writer_new(st, NULL, &hooks, &w));
    CHECK_RC(rv_agg_start(zctx, st, w, NULL, NULL, &agg, &err));
    rv_feed_cfg_default(&fc);
    fc.name = (char *)name;
    fc.format = (char *)format;
    fc.url = (char *)path;
    fc.interval_s = 3600;
    CHECK_RC(rv_feeds_start(st, w, &fc, 1, NULL, &f, &err));
    for (int i = 0; i < 3000 && f != NULL; i++) {
        if (rv_feeds_stats(f, name, &fs) == RV_OK && fs.polls >= 1)
            break;
        usleep(10000);
    }
    CHECK(fs.payloads == 1 && fs.errors == 0 && fs.rejected == 0);
    rv_feeds_stop(&f);
    CHECK(agg != NULL && wait_cursor(agg, rv_store_last_seq(st)));
    rv_agg_stop(&agg);
    CHECK_RC(rv_store_read_alerts(st, 0, on_stored, &stored, &err));
    rv_writer_free(&w);
    rv_store_close(&st);
    zmq_ctx_term(zctx);
    *len = stored.len;
    return stored.p;
}

/* The shipped IODA sample (demo/ioda/signals_raw_demo.json: six countries'
 * BGP series for eight days, one country after another; SD drops to 10 %
 * from 2024-06-08T21:40Z to 23:40Z, 15 minutes before the file ends)
 * against demo/episodes.csv. Before payloads were sorted every country
 * after the first was late: no alert at all. */
static void test_demo_ioda(const char *dir)
{
    const char *ioda = RV_SOURCE_DIR "/demo/ioda/signals_raw_demo.json";
    const char *eps = RV_SOURCE_DIR "/demo/episodes.csv";
    char out[160], errf[160], al[160];
    struct rv_agg_params p;
    struct rv_errbuf err = {0};
    int64_t start, first_bin, bound_ms;
    size_t lo, le, la, ll;
    char *o, *e, *a, *live;

    snprintf(out, sizeof out, "%s/ioda-out.txt", dir);
    snprintf(errf, sizeof errf, "%s/ioda-err.txt", dir);
    snprintf(al, sizeof al, "%s/ioda-alerts.jsonl", dir);
    CHECK_RC(rv_agg_params_from_json(NULL, &p, &err));
    CHECK_RC(rv_time_parse_rfc3339("2024-06-08T21:40:00Z", &start));
    /* The lead's bound: the drop starts inside a bin; the first bin wholly
     * in the drop starts at the next bin boundary, and is scored when the
     * watermark (clock - allowed lateness) passes its end. Its relative
     * drop of 0.9 x probe_scale 5 plus the partial bin's 0.3 x 5 gives 6:
     * warning (5), so the alert comes at that closing, not later. */
    first_bin = (start / (p.bin_s * 1000) + 1) * p.bin_s * 1000;
    bound_ms = first_bin - start + p.bin_s * 1000 + p.lateness_s * 1000;
    CHECK(bound_ms == 5400000);
    {
        char *argv[] = {"backtest", "--events", (char *)ioda, "--format", "ioda", "--episodes",
                        (char *)eps, "--level", "warning", "--json", "--alerts", al, NULL};
        CHECK(run_backtest(out, errf, 12, argv) == 0);
    }
    o = slurp(out, &lo);
    e = slurp(errf, &le);
    printf("backtest demo ioda --level warning: %s", o ? o : "(none)\n");
    /* every event aggregated: no "later than the allowed lateness" line */
    CHECK_STR(e, "");
    {
        cJSON *j = cJSON_Parse(o);
        CHECK(j != NULL);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "episodes")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "detected")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "recall")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "alerts")) == 1);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "precision")) == 1);
        double lead = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "lead_median_s"));
        CHECK(lead > 0 && lead <= (double)bound_ms / 1000);
        CHECK(lead == 5400);
        cJSON_Delete(j);
    }
    free(o);
    free(e);
    /* the one alert: SD, national, warning when 22:00-23:00 closed */
    a = slurp(al, &la);
    {
        const char *w = "{\"seq\":1,\"state\":\"opened\",\"country\":\"SD\","
                        "\"violation\":\"internet_shutdown\",\"admin1\":null,"
                        "\"level\":\"warning\",\"score\":6.03,"
                        "\"opened_at\":\"2024-06-08T23:10:00Z\",";
        CHECK(a != NULL && strncmp(a, w, strlen(w)) == 0);
    }
    CHECK(a != NULL && strchr(a, '\n') == a + la - 1); /* and no other */

    /* critical: not in this file. The drop's last bin (23:00-24:00, which
     * would add 0.6 x 5) closes only with an event at or after 00:10 the
     * next day, and the file ends at 23:55 */
    {
        char *argv[] = {"backtest", "--events", (char *)ioda, "--format", "ioda", "--episodes",
                        (char *)eps, "--level", "critical", NULL};
        CHECK(run_backtest(out, errf, 9, argv) == 0);
    }
    o = slurp(out, &lo);
    CHECK_STR(o, "episodes 1 detected 0 recall 0.000 alerts 0 precision na lead_median_s na "
                 "false_alarms_per_country_month 0.000\n"
                 "missed SD internet_shutdown 2024-06-08T21:40:00Z 2024-06-08T23:40:00Z "
                 "hand-made BGP drop to 10 % of baseline (demo/make_ioda_signals.py), not a "
                 "real event\n");
    free(o);

    /* a feed worker reading the same file live: the same alerts, byte for
     * byte (the same sort of the payload) */
    live = live_feed_alerts(dir, "signals_raw_demo", "ioda", ioda, &ll);
    CHECK(a != NULL && live != NULL && ll == la && memcmp(a, live, la) == 0);
    free(live);
    free(a);
}

/* An ACLED export newest first, as the export tool writes it: 40 days of
 * one fictional SD killing a day and a burst of 30 on 2024-04-05. Before
 * payloads were sorted the engine clock started at the newest day and the
 * 32 rows more than a week older (ACLED's source lateness) were late; now
 * every row is aggregated and the burst opens a watch (one source alone
 * cannot go higher) on its day. */
static void test_acled_newest_first(const char *dir)
{
    static const char header[] =
        "event_id_cnty,event_date,year,time_precision,disorder_type,event_type,sub_event_type,"
        "actor1,assoc_actor_1,inter1,actor2,assoc_actor_2,inter2,interaction,civilian_targeting,"
        "iso,region,country,admin1,admin2,admin3,location,latitude,longitude,geo_precision,"
        "source,source_scale,notes,fatalities,tags,timestamp,population_best\n";
    static const char *months[] = {"March", "April"};
    char path[160], eps[160], out[160], errf[160], al[160], want[96];
    size_t lo, le, la, ll, n = 0;
    char *o, *e, *a, *live;
    FILE *f;

    snprintf(path, sizeof path, "%s/acled_newest_first.csv", dir);
    snprintf(eps, sizeof eps, "%s/acled_episodes.csv", dir);
    snprintf(out, sizeof out, "%s/acled-out.txt", dir);
    snprintf(errf, sizeof errf, "%s/acled-err.txt", dir);
    snprintf(al, sizeof al, "%s/acled-alerts.jsonl", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(header, f);
    for (int day = 39; day >= 0; day--) { /* 2024-03-01 + day, newest first */
        int mday = day < 31 ? day + 1 : day - 30, k = day == 35 ? 30 : 1;
        for (int i = 0; i < k; i++)
            fprintf(f,
                    "SUD9%05zu,%02d %s 2024,2024,1,Political violence,Violence against "
                    "civilians,Attack,Fictional Actor A,,1,Civilians (Fictional),,7,17,Civilian "
                    "targeting,729,Northern Africa,Sudan,Khartoum,Khartoum District,,Omdurman,"
                    "15.6400,32.4800,1,Fictional Source,National,\"Fictional example.\",1,,"
                    "1704067200,1000\n",
                    ++n, mday, months[day >= 31]);
    }
    fclose(f);
    CHECK(n == 69);
    f = fopen(eps, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fprintf(f, "country_iso2,start_utc,end_utc,violation,kind,description,source\n"
               "SD,2024-04-05,2024-04-06,killing,incident,fictional burst,test\n");
    fclose(f);
    {
        char *argv[] = {"backtest", "--events", path, "--format", "acled", "--episodes", eps,
                        "--level", "watch", "--alerts", al, "--timings", NULL};
        CHECK(run_backtest(out, errf, 12, argv) == 0);
    }
    o = slurp(out, &lo);
    e = slurp(errf, &le);
    printf("backtest acled newest first: %s", o ? o : "(none)\n");
    CHECK_STR(o, "episodes 1 detected 1 recall 1.000 alerts 1 precision 1.000 lead_median_s 0 "
                 "false_alarms_per_country_month 0.000\n");
    /* all 69 rows replayed and none late: the timings line and nothing else */
    snprintf(want, sizeof want, "backtest: timings: events %zu load_s ", n);
    CHECK(e != NULL && strncmp(e, want, strlen(want)) == 0);
    CHECK(e != NULL && strchr(e, '\n') == e + le - 1);
    free(o);
    free(e);
    a = slurp(al, &la);
    CHECK(a != NULL && strstr(a, "{\"seq\":1,\"state\":\"opened\",\"country\":\"SD\","
                                 "\"violation\":\"killing\",\"admin1\":null,"
                                 "\"level\":\"watch\"") == a);
    live = live_feed_alerts(dir, "acled_newest_first", "acled", path, &ll);
    CHECK(a != NULL && live != NULL && ll == la && memcmp(a, live, la) == 0);
    free(live);
    free(a);
}

/* --format given several times: each names the --events files after it.
 * The IODA sample and the newest-first ACLED export of the test above in
 * one backtest, each with its format: both episodes found, with the leads
 * each gives alone (0 and 5400 s: median 2700). */
static void test_formats_per_file(const char *dir)
{
    const char *ioda = RV_SOURCE_DIR "/demo/ioda/signals_raw_demo.json";
    char acled[160], nd[160], eps[160], out[160], errf[160];
    size_t lo, le;
    char *o, *e;
    FILE *f;

    snprintf(acled, sizeof acled, "%s/acled_newest_first.csv", dir);
    snprintf(nd, sizeof nd, "%s/partnerA.ndjson", dir);
    snprintf(eps, sizeof eps, "%s/both_episodes.csv", dir);
    snprintf(out, sizeof out, "%s/both-out.txt", dir);
    snprintf(errf, sizeof errf, "%s/both-err.txt", dir);
    f = fopen(eps, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fprintf(f, "country_iso2,start_utc,end_utc,violation,kind,description,source\n"
               "SD,2024-06-08T21:40:00Z,2024-06-08T23:40:00Z,internet_shutdown,probe,drop,demo\n"
               "SD,2024-04-05,2024-04-06,killing,incident,fictional burst,test\n");
    fclose(f);
    {
        char *argv[] = {"backtest", "--format", "acled", "--events", acled, "--format", "ioda",
                        "--events", (char *)ioda, "--episodes", eps, "--level", "watch", NULL};
        CHECK(run_backtest(out, errf, 13, argv) == 0);
    }
    o = slurp(out, &lo);
    e = slurp(errf, &le);
    CHECK_STR(o, "episodes 2 detected 2 recall 1.000 alerts 2 precision 1.000 lead_median_s 2700 "
                 "false_alarms_per_country_month 0.000\n");
    CHECK_STR(e, "");
    free(o);
    free(e);
    /* a last --format that names no file is an error, not ignored */
    {
        char *argv[] = {"backtest", "--format", "acled", "--events", acled, "--format", "ioda",
                        "--episodes", eps, NULL};
        const char *want = "backtest: --format: 'ioda' is followed by no --events\nusage: ";
        CHECK(run_backtest(out, errf, 9, argv) == 2);
        e = slurp(errf, &le);
        CHECK(e != NULL && strncmp(e, want, strlen(want)) == 0);
        free(e);
    }
    /* so is one followed at once by another: 'ioda' named no file */
    {
        char *argv[] = {"backtest", "--format", "ioda", "--format", "acled", "--events", acled,
                        "--episodes", eps, NULL};
        const char *want = "backtest: --format: 'ioda' is followed by no --events\nusage: ";
        CHECK(run_backtest(out, errf, 9, argv) == 2);
        e = slurp(errf, &le);
        CHECK(e != NULL && strncmp(e, want, strlen(want)) == 0);
        free(e);
    }
    /* files before the first of several --format are ndjson, the default
     * (they took the first --format's before) */
    {
        char *argv[] = {"backtest", "--events", nd, "--format", "ioda", "--events", (char *)ioda,
                        "--format", "acled", "--events", acled, "--episodes", eps, "--level",
                        "watch", NULL};
        CHECK(run_backtest(out, errf, 15, argv) == 0);
        o = slurp(out, &lo);
        e = slurp(errf, &le);
        CHECK(o != NULL && strncmp(o, "episodes 2 detected 2 recall 1.000 alerts ", 42) == 0);
        CHECK_STR(e, "");
        free(o);
        free(e);
    }
    /* a load error names the file and its format */
    {
        char *argv[] = {"backtest", "--format", "ioda", "--events", nd, "--format", "acled",
                        "--events", acled, "--episodes", eps, NULL};
        char want[400];
        snprintf(want, sizeof want,
                 "backtest: %s (ioda): json: unexpected text after the value at offset 159\n",
                 nd);
        expect_error(out, errf, argv, want);
    }
}

/* --sort-max-events: the newest-first ACLED export of the test above
 * (69 rows, 40 days, newest first) sorted in 7 runs of 10: the first run
 * holds the 4 newest days, so the 32 rows more than a week (ACLED's
 * source lateness) older than the newest are late, as with 0, which sorts
 * nothing (before payloads were sorted). Both said on stderr. */
static void test_sort_max_events(const char *dir)
{
    char acled[160], eps[160], out[160], errf[160], want[600];
    size_t le;
    char *e;

    snprintf(acled, sizeof acled, "%s/acled_newest_first.csv", dir);
    snprintf(eps, sizeof eps, "%s/acled_episodes.csv", dir);
    snprintf(out, sizeof out, "%s/sortmax-out.txt", dir);
    snprintf(errf, sizeof errf, "%s/sortmax-err.txt", dir);
    {
        char *argv[] = {"backtest", "--events", acled, "--format", "acled", "--episodes", eps,
                        "--level", "watch", "--sort-max-events", "10", NULL};
        CHECK(run_backtest(out, errf, 11, argv) == 0);
        e = slurp(errf, &le);
        snprintf(want, sizeof want,
                 "backtest: %s (acled): sorted in 7 runs of at most 10 events "
                 "(--sort-max-events), one after the other; events behind the watermark are "
                 "late\n"
                 "backtest: 32 events later than the allowed lateness were not aggregated\n",
                 acled);
        CHECK_STR(e, want);
        free(e);
        /* the burst's day is in the first run, but the clock is the
         * newest day by then: not detected, as without the sort */
        e = slurp(out, &le);
        CHECK(e != NULL && strncmp(e, "episodes 1 detected 0 ", 22) == 0);
        free(e);
    }
    {
        char *argv[] = {"backtest", "--events", acled, "--format", "acled", "--episodes", eps,
                        "--level", "watch", "--sort-max-events", "0", NULL};
        CHECK(run_backtest(out, errf, 11, argv) == 0);
        e = slurp(errf, &le);
        CHECK_STR(e, "backtest: 32 events later than the allowed lateness were not aggregated\n");
        free(e);
    }
    {
        char *argv[] = {"backtest", "--events", acled, "--format", "acled", "--episodes", eps,
                        "--sort-max-events", "-1", NULL};
        expect_error(out, errf, argv,
                     "backtest: --sort-max-events: '-1' is not an integer 0..100000000\n");
    }
}

int main(void)
{
    char dir[] = "/tmp/rv-test-bt-XXXXXX", store_dir[128], fa[128], fg[128], fi[128], eps[128],
         al1[128], al2[128], out[128], errf[128], bad[128];
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_writer *w = NULL;
    struct rv_agg *agg = NULL;
    struct rv_errbuf err = {0};
    struct commits hc;
    struct rv_writer_hooks hooks = {hk_start, hk_commit, hk_stop, &hc};
    struct ds d = {0};
    struct buf stored = {0};
    int64_t t0;
    void *zctx;
    char t1[32], t2[32], t3[32], t4[32];
    size_t len1, len2, lo;
    char *b1, *b2, *o;
    int rc;

    rv_log_set_level(RV_LOG_ERROR);
    if (rv_time_from_civil(2024, 1, 1, 0, 0, 0, &t0) != RV_OK || mkdtemp(dir) == NULL)
        return 1;
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    snprintf(fa, sizeof fa, "%s/partnerA.ndjson", dir);
    snprintf(fg, sizeof fg, "%s/gdelt.ndjson", dir);
    snprintf(fi, sizeof fi, "%s/ioda.ndjson", dir);
    snprintf(eps, sizeof eps, "%s/episodes.csv", dir);
    snprintf(al1, sizeof al1, "%s/alerts1.jsonl", dir);
    snprintf(al2, sizeof al2, "%s/alerts2.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(bad, sizeof bad, "%s/bad.csv", dir);

    int64_t burst = t0 + 21 * DAY_MS + 10 * HOUR_MS, drop = t0 + 21 * DAY_MS + 14 * HOUR_MS;
    build(&d, t0, t0 + 23 * DAY_MS, burst, drop);

    /* live */
    zctx = zmq_ctx_new();
    hc.zctx = zctx;
    rv_store_opts_default(&so);
    so.no_sync = true;
    CHECK_RC(rv_store_open(store_dir, &so, &st, &err));
    CHECK_RC(rv_writer_new(st, NULL, &hooks, &w));
    CHECK_RC(rv_agg_start(zctx, st, w, NULL, NULL, &agg, &err));
    if (agg == NULL)
        return 1;
    CHECK_RC(submit(w, d.ev, d.n));
    CHECK(wait_cursor(agg, rv_store_last_seq(st)));
    rv_agg_stop(&agg);
    CHECK_RC(rv_store_read_alerts(st, 0, on_stored, &stored, &err));
    rv_writer_free(&w);
    rv_store_close(&st);
    zmq_ctx_term(zctx);
    CHECK(stored.n >= 4);

    /* the same data as three feed files, and labelled episodes */
    write_feed(&d, "partnerA", fa);
    write_feed(&d, "gdelt", fg);
    write_feed(&d, "ioda", fi);
    {
        FILE *f = fopen(eps, "w");
        fprintf(f, "country_iso2,start_utc,end_utc,violation,kind,description,source\n");
        fprintf(f, "UA,%s,%s,attack_on_civilians,incident,\"shelling, market\",test\n",
                rv_time_format(burst, t1, sizeof t1), rv_time_format(burst + 2 * HOUR_MS, t2, sizeof t2));
        fprintf(f, "IR,%s,%s,internet_shutdown,probe,national shutdown,test\n",
                rv_time_format(drop, t3, sizeof t3), rv_time_format(drop + 5 * HOUR_MS, t4, sizeof t4));
        fprintf(f, "KE,2024-01-10,2024-01-11,killing,incident,not in the data,test\n");
        fclose(f);
    }

    /* backtest, JSON, every alert written: the live sequence, byte for byte */
    {
        char *argv[] = {"backtest", "--events", fa, fg, fi, "--format", "ndjson", "--episodes",
                        eps, "--alerts", al1, "--json", "--timings", NULL};
        char want[64], *te;
        size_t tl;
        rc = run_backtest(out, errf, 13, argv);
        CHECK(rc == 0);
        /* --timings: one line on stderr, the events the merge replayed */
        te = slurp(errf, &tl);
        snprintf(want, sizeof want, "backtest: timings: events %zu load_s ", d.n);
        CHECK(te != NULL && strncmp(te, want, strlen(want)) == 0 &&
              strstr(te, " replay_events_per_s ") != NULL && te[tl - 1] == '\n');
        free(te);
    }
    b1 = slurp(al1, &len1);
    if (getenv("AGG_TEST_VERBOSE") && b1)
        fputs(b1, stderr);
    CHECK(b1 != NULL && len1 == stored.len && memcmp(b1, stored.p, len1) == 0);
    o = slurp(out, &lo);
    printf("backtest --json: %s", o ? o : "(none)\n");
    {
        cJSON *j = cJSON_Parse(o);
        CHECK(j != NULL);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "episodes")) == 3);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "detected")) == 2);
        CHECK(fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "recall")) - 2.0 / 3) < 1e-9);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "alerts")) >= 2);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "precision")) > 0);
        double lead = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "lead_median_s"));
        CHECK(lead > -3600 && lead < 3 * 3600);
        const cJSON *m = cJSON_GetObjectItem(j, "missed");
        CHECK(cJSON_GetArraySize(m) == 1);
        CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0),
                                                               "country_iso2")),
                     "KE") == 0);
        cJSON_Delete(j);
    }
    free(o);

    /* a second replay: identical bytes; the text form. With an empty file
     * and a file stored twice (all duplicates the second time) among them:
     * both add nothing, the ranges of the files after them stay right */
    {
        char empty[160];
        FILE *f;
        snprintf(empty, sizeof empty, "%s/empty.ndjson", dir);
        f = fopen(empty, "w");
        CHECK(f != NULL);
        if (f)
            fclose(f);
        char *argv[] = {"backtest", "--events", fa, empty, fg, fa, fi, "--episodes", eps,
                        "--alerts", al2, NULL};
        rc = run_backtest(out, errf, 11, argv);
        CHECK(rc == 0);
    }
    b2 = slurp(al2, &len2);
    CHECK(b1 != NULL && b2 != NULL && len1 == len2 && memcmp(b1, b2, len1) == 0);
    o = slurp(out, &lo);
    printf("backtest: %s", o ? o : "(none)\n");
    CHECK(o != NULL && strncmp(o, "episodes 3 detected 2 recall 0.667 alerts ", 42) == 0);
    CHECK(o != NULL && strstr(o, "\nmissed KE killing 2024-01-10T00:00:00Z 2024-01-11T00:00:00Z "
                                 "not in the data\n") != NULL);
    free(o);

    /* bad input: exit 2 and a clear message */
    {
        FILE *f = fopen(bad, "w");
        fprintf(f, "country,start,end\nSY,2024-01-01,2024-01-02\n");
        fclose(f);
        char *argv[] = {"backtest", "--events", fa, "--episodes", bad, NULL};
        expect_error(out, errf, argv,
                     "backtest: episodes: line 1: header must be "
                     "'country_iso2,start_utc,end_utc,violation,kind,"
                     "description,source'\n");
        f = fopen(bad, "w");
        fprintf(f, "country_iso2,start_utc,end_utc,violation,kind,description,source\n"
                   "XX,2024-01-01,2024-01-02,killing,incident,x,y\n");
        fclose(f);
        expect_error(out, errf, argv,
                     "backtest: episodes: line 2: country_iso2: 'XX' is not an "
                     "ISO 3166-1 alpha-2 code\n");
    }
    {
        char *argv[] = {"backtest", "--events", fa, "--format", "csv", "--episodes", eps, NULL};
        expect_error(out, errf, argv,
                     "backtest: --format: 'csv' is not ndjson, gdelt, acled, "
                     "ooni or ioda\n");
    }
    {
        char *argv[] = {"backtest", "--events", "/nonexistent/x.ndjson", "--episodes", eps, NULL};
        expect_error(out, errf, argv,
                     "backtest: /nonexistent/x.ndjson (ndjson): cannot open: "
                     "No such file or directory\n");
    }
    {
        /* the temporary store goes in $TMPDIR, and is removed */
        char tmp[160];
        const char *saved = getenv("TMPDIR");
        char *keep = saved ? strdup(saved) : NULL;
        char *argv[] = {"backtest", "--events", fa, "--episodes", eps, NULL};
        snprintf(tmp, sizeof tmp, "%s/tmp", dir);
        setenv("TMPDIR", "/nonexistent", 1);
        expect_error(out, errf, argv,
                     "backtest: temporary store in '/nonexistent': No such file "
                     "or directory\n");
        CHECK(mkdir(tmp, 0700) == 0);
        setenv("TMPDIR", tmp, 1);
        rc = run_backtest(out, errf, 5, argv);
        CHECK(rc == 0);
        CHECK(rmdir(tmp) == 0); /* empty again: the store was removed */
        if (keep)
            setenv("TMPDIR", keep, 1);
        else
            unsetenv("TMPDIR");
        free(keep);
    }
    {
        char *argv[] = {"backtest", "--help", NULL};
        rc = run_backtest(out, errf, 2, argv);
        CHECK(rc == 0);
        o = slurp(out, &lo);
        CHECK(o != NULL && strncmp(o, "usage: rvctl backtest --events FILE...", 38) == 0);
        free(o);
    }

    test_demo_ioda(dir);
    test_acled_newest_first(dir);
    test_formats_per_file(dir);
    test_sort_max_events(dir);

    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    ds_free(&d);
    free(stored.p);
    free(b1);
    free(b2);
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

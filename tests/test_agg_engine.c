/*
 * test_agg_engine: the aggregator's deterministic core on synthetic
 * series built here (known cases of issue 5): a quiet seasonal series, a
 * whole-country probe drop, a single noisy source, a corroborated burst,
 * recovery with hysteresis, late events, determinism, config errors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv/agg.h"
#include "rv/country.h"
#include "rv/event.h"
#include "rv/log.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include "check.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state;
static uint64_t g_seq; /* log seq and event id of the next push */

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double urand(void)
{
    return (double)(rng() >> 11) / 9007199254740992.0;
}

static int poisson(double lam)
{
    double l = exp(-lam), p = 1;
    int k = 0;

    do {
        k++;
        p *= urand();
    } while (p > l);
    return k - 1;
}

/* Collected alerts. */
struct rec {
    char *bytes; /* every alert JSON, one a line */
    size_t len;
    int n;
    int max_level;
    int opened, escalated, deescalated, resolved;
    int first_level_at[4]; /* index of the alert that first reached the level, -1 */
    int64_t first_ms_at[4];
    int last_state, last_level;
};

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 4; i++) {
        r->first_level_at[i] = -1;
        r->first_ms_at[i] = -1;
    }
    r->last_state = -1;
}

static void on_alert(void *arg, const struct rv_agg_alert *a)
{
    struct rec *r = arg;
    char *nb = realloc(r->bytes, r->len + a->len + 2);

    if (nb == NULL)
        abort();
    memcpy(nb + r->len, a->json, a->len);
    nb[r->len + a->len] = '\n';
    r->len += a->len + 1;
    nb[r->len] = '\0';
    r->bytes = nb;
    if (getenv("AGG_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", a->json);
    if (a->state != RV_AST_RESOLVED) {
        if (a->level > r->max_level)
            r->max_level = a->level;
        for (int l = 1; l <= a->level; l++) {
            if (r->first_level_at[l] < 0) {
                r->first_level_at[l] = r->n;
                r->first_ms_at[l] = a->updated_ms;
            }
        }
    }
    switch (a->state) {
    case RV_AST_OPENED: r->opened++; break;
    case RV_AST_ESCALATED: r->escalated++; break;
    case RV_AST_DEESCALATED: r->deescalated++; break;
    default: r->resolved++; break;
    }
    r->last_state = a->state;
    r->last_level = a->level;
    r->n++;
}

static struct rv_agg_engine *engine(const char *cfg_json, struct rec *r)
{
    struct rv_agg_params p;
    struct rv_errbuf err = {0};
    struct rv_agg_sink sink = {on_alert, r};
    struct rv_agg_engine *e = NULL;
    cJSON *cfg = cfg_json ? cJSON_Parse(cfg_json) : NULL;

    rec_init(r);
    g_seq = 0;
    if (rv_agg_params_from_json(cfg, &p, &err) != RV_OK) {
        fprintf(stderr, "params: %s\n", err.msg);
        abort();
    }
    cJSON_Delete(cfg);
    if (rv_agg_engine_new(&p, 0, &sink, &e) != RV_OK)
        abort();
    return e;
}


static const char *g_attrs; /* attrs of the next pushes, or NULL */

static void push(struct rv_agg_engine *e, const char *source, const char *country, int violation,
                 int kind, int64_t t, bool has_value, double value, const char *admin1)
{
    struct rv_event ev;

    rv_event_init(&ev);
    snprintf(ev.source, sizeof ev.source, "%s", source);
    snprintf(ev.id, sizeof ev.id, "ev%llu", (unsigned long long)++g_seq);
    memcpy(ev.country, country, 3);
    ev.violation = (uint8_t)violation;
    ev.kind = (uint8_t)kind;
    ev.time_ms = t;
    ev.has_value = has_value;
    ev.value = value;
    if (admin1)
        snprintf(ev.admin1, sizeof ev.admin1, "%s", admin1);
    ev.attrs = (char *)g_attrs; /* borrowed: not released */
    if (rv_agg_engine_push(e, g_seq, &ev) != RV_OK)
        abort();
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* N news events of SOURCE spread over the hour starting at H, in time order. */
static void hour_of_news(struct rv_agg_engine *e, const char *source, const char *country,
                         int violation, int64_t h, int n)
{
    int64_t *ts = malloc((size_t)(n > 0 ? n : 1) * sizeof *ts);

    for (int i = 0; i < n; i++)
        ts[i] = h + (int64_t)(urand() * (HOUR_MS - 1));
    qsort(ts, (size_t)n, sizeof *ts, cmp_i64);
    for (int i = 0; i < n; i++)
        push(e, source, country, violation, RV_KIND_NEWS, ts[i], false, 0, NULL);
    free(ts);
}

/* Two sources interleaved within the hour. */
static void hour_of_two(struct rv_agg_engine *e, const char *country, int violation, int64_t h,
                        int na, int nb)
{
    int n = na + nb;
    int64_t *ts = malloc((size_t)(n > 0 ? n : 1) * sizeof *ts);

    for (int i = 0; i < n; i++)
        ts[i] = h + (int64_t)(urand() * (HOUR_MS - 1));
    qsort(ts, (size_t)n, sizeof *ts, cmp_i64);
    /* alternate sources by parity of the position, deterministic */
    for (int i = 0, a = 0, b = 0; i < n; i++) {
        bool use_a = (a < na) && (b >= nb || (i % 2 == 0));
        push(e, use_a ? "partnerA" : "gdelt", country, violation, RV_KIND_NEWS, ts[i], false, 0,
             NULL);
        if (use_a)
            a++;
        else
            b++;
    }
    free(ts);
}

/* Daily cycle: quiet at night, busy by day. */
static double seasonal_rate(int64_t h, double night, double day)
{
    int hod = (int)((h / HOUR_MS) % 24);
    return hod >= 8 && hod < 20 ? day : night;
}

static int64_t T0; /* a Monday 00:00 UTC */

/* --------------------------------------------------------------- cases */

static void test_quiet_seasonal(void)
{
    struct rec r;
    struct rv_agg_engine *e = engine(NULL, &r);

    rng_state = 88172645463325252ULL;
    for (int64_t h = T0; h < T0 + 35 * DAY_MS; h += HOUR_MS) {
        double lam = seasonal_rate(h, 1.0, 6.0);
        hour_of_two(e, "SY", RV_V_KILLING, h, poisson(lam), poisson(lam));
    }
    CHECK(r.max_level < RV_LVL_WARNING);
    struct rv_agg_engine_stats st;
    rv_agg_engine_get_stats(e, &st);
    CHECK(st.late == 0);
    CHECK(st.series == 1);
    /* the same quiet series with an injected corroborated burst does warn
     * (so the check above is not vacuous) */
    struct rec r2;
    struct rv_agg_engine *e2 = engine(NULL, &r2);
    rng_state = 88172645463325252ULL;
    for (int64_t h = T0; h < T0 + 35 * DAY_MS; h += HOUR_MS) {
        double lam = seasonal_rate(h, 1.0, 6.0);
        int na = poisson(lam), nb = poisson(lam);
        if (h == T0 + 30 * DAY_MS + 3 * HOUR_MS)
            na += 25, nb += 25;
        hour_of_two(e2, "SY", RV_V_KILLING, h, na, nb);
    }
    CHECK(r2.max_level >= RV_LVL_WARNING);
    printf("quiet seasonal: alerts %d max_level %s; with burst: max_level %s\n", r.n,
           rv_agg_level_name(r.max_level), rv_agg_level_name(r2.max_level));
    rv_agg_engine_free(&e);
    rv_agg_engine_free(&e2);
    free(r.bytes);
    free(r2.bytes);
}

/* IODA-like signal every 5 minutes for 3 weeks, then a 90% drop. */
static void test_country_probe_drop(void)
{
    struct rec r;
    struct rv_agg_engine *e = engine(NULL, &r);
    int64_t drop = T0 + 21 * DAY_MS + 14 * HOUR_MS;
    int64_t end = drop + 6 * HOUR_MS;

    rng_state = 0x9E3779B97F4A7C15ULL;
    for (int64_t t = T0; t < end; t += 300000) {
        double v = seasonal_rate(t, 800, 1000) * (0.95 + 0.1 * urand());
        if (t >= drop)
            v *= 0.1;
        push(e, "ioda", "IR", RV_V_INTERNET_SHUTDOWN, RV_KIND_PROBE, t, true, v, NULL);
        if (t == drop - 300000)
            CHECK(r.n == 0);
    }
    CHECK(r.max_level == RV_LVL_CRITICAL);
    /* within two bins: the second bin after the drop closes at drop + 2 h
     * and is evaluated once the watermark (lateness 10 min) passes it */
    CHECK(r.first_ms_at[RV_LVL_CRITICAL] > drop);
    CHECK(r.first_ms_at[RV_LVL_CRITICAL] <= drop + 2 * HOUR_MS + 600000);
    CHECK(r.first_level_at[RV_LVL_WATCH] == 0);
    CHECK(r.bytes != NULL && strstr(r.bytes, "\"state\":\"opened\",\"country\":\"IR\","
                                             "\"violation\":\"internet_shutdown\","
                                             "\"admin1\":null") != NULL);
    CHECK(r.bytes != NULL && strstr(r.bytes, "\"sources\":[\"ioda\"]") != NULL);
    printf("probe drop: critical after %.0f s\n",
           (double)(r.first_ms_at[RV_LVL_CRITICAL] - drop) / 1000.0);
    rv_agg_engine_free(&e);
    free(r.bytes);
}

/* A regional outage seen by one IODA datasource stays at watch (one
 * witness, not a whole country). Seen by three datasources of the same
 * feed it still stays at watch: attrs.datasource is payload, so the
 * signals of one feed (or partner) are scored apart but are one witness
 * (review F6). Seen by two feeds it reaches warning. NDROP: datasources
 * whose signal drops; FEEDS: 1, every signal from "ioda"; 2, the second
 * signal from the feed "atlas" (no datasource). */
static void regional_drop(int ndrop, int feeds, struct rec *r)
{
    static const char *ds[] = {"{\"datasource\":\"bgp\"}", "{\"datasource\":\"ping-slash24\"}",
                               "{\"datasource\":\"merit-nt\"}"};
    static const double lvl[] = {80, 300, 50};
    struct rv_agg_engine *e = engine("{\"admin1\":true}", r);
    int64_t drop = T0 + 21 * DAY_MS + 14 * HOUR_MS;

    rng_state = 0x1234567812345678ULL;
    for (int64_t t = T0; t < drop + 6 * HOUR_MS; t += 300000) {
        for (int k = 0; k < 3; k++) {
            double v = lvl[k] * (0.95 + 0.1 * urand());
            const char *src = "ioda";
            if (t >= drop && k < ndrop)
                v *= 0.2;
            g_attrs = ds[k];
            if (feeds == 2 && k == 1) {
                src = "atlas";
                g_attrs = NULL;
            }
            push(e, src, "TR", RV_V_INTERNET_SHUTDOWN, RV_KIND_PROBE, t, true, v, "Hatay");
        }
    }
    g_attrs = NULL;
    rv_agg_engine_free(&e);
}

static void test_regional_probe_drop(void)
{
    struct rec one, same, two;

    regional_drop(1, 1, &one);
    regional_drop(3, 1, &same);
    regional_drop(2, 2, &two);
    /* the national series gets the same probes: count only regional alerts */
    CHECK(one.bytes != NULL && strstr(one.bytes, "\"admin1\":\"Hatay\",\"level\":\"watch\"") != NULL);
    CHECK(strstr(one.bytes, "\"admin1\":\"Hatay\",\"level\":\"warning\"") == NULL);
    CHECK(strstr(one.bytes, "\"admin1\":\"Hatay\",\"level\":\"critical\"") == NULL);
    /* one feed naming three datasources: still one witness */
    CHECK(same.bytes != NULL &&
          strstr(same.bytes, "\"admin1\":\"Hatay\",\"level\":\"watch\"") != NULL);
    CHECK(strstr(same.bytes, "\"admin1\":\"Hatay\",\"level\":\"warning\"") == NULL);
    CHECK(strstr(same.bytes, "\"admin1\":\"Hatay\",\"level\":\"critical\"") == NULL);
    CHECK(strstr(same.bytes, "\"sources\":[\"ioda/bgp\",\"ioda/merit-nt\",\"ioda/ping-slash24\"]") !=
          NULL);
    CHECK(two.bytes != NULL && strstr(two.bytes, "\"admin1\":\"Hatay\",\"level\":\"warning\"") != NULL);
    CHECK(strstr(two.bytes, "\"sources\":[\"atlas\",\"ioda/bgp\"]") != NULL);
    printf("regional probe drop: one datasource or three of one feed max watch, two feeds "
           "reach warning\n");
    free(one.bytes);
    free(same.bytes);
    free(two.bytes);
}

/* One news source, noisy, with bursts now and then: at most watch. */
static void test_single_noisy_source(void)
{
    struct rec r;
    struct rv_agg_engine *e = engine(NULL, &r);

    rng_state = 0xDEADBEEFCAFEF00DULL;
    for (int64_t h = T0; h < T0 + 28 * DAY_MS; h += HOUR_MS) {
        int n = poisson(seasonal_rate(h, 2, 5));
        if (urand() < 0.03)
            n += 20 + (int)(urand() * 40);
        hour_of_news(e, "rumours", "MM", RV_V_ATTACK_ON_CIVILIANS, h, n);
    }
    CHECK(r.max_level == RV_LVL_WATCH); /* noticed, never above watch */
    CHECK(r.bytes == NULL || strstr(r.bytes, "\"level\":\"warning\"") == NULL);
    printf("single noisy source: %d changes, max %s\n", r.n, rv_agg_level_name(r.max_level));
    rv_agg_engine_free(&e);
    free(r.bytes);
}

/* Background from two sources, a burst that both report, then an edge that
 * is neither burst nor normal, then normal. Returns the record. */
static void burst_then_edge(const char *cfg, struct rec *r, int64_t *burst_at)
{
    struct rv_agg_engine *e = engine(cfg, r);
    int64_t burst = T0 + 21 * DAY_MS + 10 * HOUR_MS;

    rng_state = 0x0123456789ABCDEFULL;
    for (int64_t h = T0; h < burst + 36 * HOUR_MS; h += HOUR_MS) {
        int na = poisson(2), nb = poisson(2);
        if (h == burst)
            na += 20, nb += 20;
        else if (h > burst && h <= burst + 8 * HOUR_MS) {
            /* noisy edge: bins just above the warning line, then quiet ones */
            bool high = (h - burst) / HOUR_MS % 2 == 0;
            na = high ? 10 : 1;
            nb = high ? 10 : 1;
        }
        hour_of_two(e, "UA", RV_V_ATTACK_ON_CIVILIANS, h, na, nb);
    }
    *burst_at = burst;
    rv_agg_engine_free(&e);
}

static void test_corroborated_burst_and_resolve(void)
{
    struct rec r, flap;
    int64_t burst;

    burst_then_edge(NULL, &r, &burst);
    CHECK(r.max_level == RV_LVL_WARNING);
    CHECK(r.first_level_at[RV_LVL_WARNING] >= 0);
    /* early: opened while the burst's own bin is still open */
    CHECK(r.first_ms_at[RV_LVL_WARNING] >= burst);
    CHECK(r.first_ms_at[RV_LVL_WARNING] < burst + HOUR_MS);
    CHECK(r.bytes != NULL && strstr(r.bytes, "\"sources\":[\"gdelt\",\"partnerA\"]") != NULL);
    CHECK(r.opened == 1);      /* no flapping: opened once */
    CHECK(r.resolved == 1);    /* and resolved once recovered */
    CHECK(r.last_state == RV_AST_RESOLVED);
    CHECK(r.n <= 4);
    printf("corroborated burst: warning after %.0f s; %d changes\n",
           (double)(r.first_ms_at[RV_LVL_WARNING] - burst) / 1000.0, r.n);
    /* without hysteresis the same edge flaps: the hysteresis is what holds */
    burst_then_edge("{\"hysteresis\":0,\"cooldown_bins\":1}", &flap, &burst);
    printf("same without hysteresis: %d changes, %d opened\n", flap.n, flap.opened);
    CHECK(flap.n > r.n);
    free(r.bytes);
    free(flap.bytes);
}

/* Two engines over the same pushes give the same bytes. */
static void test_determinism(void)
{
    struct rec a, b;
    int64_t burst;

    burst_then_edge(NULL, &a, &burst);
    burst_then_edge(NULL, &b, &burst);
    CHECK(a.len > 0 && a.len == b.len && memcmp(a.bytes, b.bytes, a.len) == 0);
    free(a.bytes);
    free(b.bytes);
}

/* A burst whose events arrive late: inside the allowed lateness they count
 * as if on time; beyond it they are dropped and counted, unless their
 * source has a larger lateness (source_lateness_s; CFG NULL: the default,
 * gdelt 3600 s). */
static void late_case(int delay_min, const char *cfg, struct rec *r, struct rv_agg_engine_stats *st)
{
    struct rv_agg_engine *e = engine(cfg, r);
    int64_t burst = T0 + 21 * DAY_MS + 10 * HOUR_MS;

    rng_state = 0x5555AAAA5555AAAAULL;
    for (int64_t h = T0; h < burst + 12 * HOUR_MS; h += HOUR_MS) {
        if (h != burst) {
            hour_of_two(e, "KE", RV_V_KILLING, h, poisson(2), poisson(2));
            continue;
        }
        /* the burst: 20 + 20 events in the last 20 minutes of the hour,
         * delivered DELAY_MIN minutes after their time (after events of the
         * next bin) */
        hour_of_two(e, "KE", RV_V_KILLING, h, 1, 1);
        int64_t next = h + HOUR_MS;
        for (int i = 0; i < 40; i++) {
            int64_t t = h + 40 * 60000 + i * 30000;
            if (delay_min == 0)
                push(e, i % 2 ? "gdelt" : "partnerA", "KE", RV_V_KILLING, RV_KIND_NEWS, t, false,
                     0, NULL);
        }
        if (delay_min > 0) {
            /* the next bin's first event moves the clock past the burst */
            push(e, "gdelt", "KE", RV_V_KILLING, RV_KIND_NEWS, next + (int64_t)delay_min * 60000,
                 false, 0, NULL);
            for (int i = 0; i < 40; i++) {
                int64_t t = h + 40 * 60000 + i * 30000;
                push(e, i % 2 ? "gdelt" : "partnerA", "KE", RV_V_KILLING, RV_KIND_NEWS, t, false,
                     0, NULL);
            }
        }
    }
    rv_agg_engine_get_stats(e, st);
    rv_agg_engine_free(&e);
}

static void test_late_events(void)
{
    static const char *const none = "{\"source_lateness_s\":{}}";
    struct rec on_time, inside, beyond, gdelt;
    struct rv_agg_engine_stats s0, s1, s2, s3;

    late_case(0, none, &on_time, &s0);
    late_case(5, none, &inside, &s1);  /* 5 min after the bin end: lateness is 10 min */
    late_case(15, none, &beyond, &s2); /* 15 min: the bin has closed */
    /* the same 15 min with the default source_lateness_s: gdelt's 20 are
     * inside its 3600 s and applied to the closed bin, partnerA's are late */
    late_case(15, NULL, &gdelt, &s3);
    CHECK(s0.late == 0);
    CHECK(s1.late == 0);
    CHECK(s2.late == 40);
    CHECK(s2.late_applied == 0);
    CHECK(s3.late == 20);
    CHECK(s3.late_applied == 20);
    CHECK(on_time.max_level == RV_LVL_WARNING);
    CHECK(inside.max_level == RV_LVL_WARNING);
    CHECK(beyond.max_level < RV_LVL_WARNING);
    CHECK(gdelt.max_level == RV_LVL_WARNING);
    printf("late: on time %s, inside lateness %s, beyond %s (late %llu), gdelt inside its own "
           "lateness %s (applied %llu)\n",
           rv_agg_level_name(on_time.max_level), rv_agg_level_name(inside.max_level),
           rv_agg_level_name(beyond.max_level), (unsigned long long)s2.late,
           rv_agg_level_name(gdelt.max_level), (unsigned long long)s3.late_applied);
    free(on_time.bytes);
    free(inside.bytes);
    free(beyond.bytes);
    free(gdelt.bytes);
}

/* A fresh source (partner news every 5 min) and a day-stamped one (an
 * OONI aggregation of day D stamped D 00:00, fetched at D 14:00): with the
 * default source_lateness_s (ooni: 2 days) every OONI value is applied to
 * its day's bin, and the jump of the anomaly share on the last days opens
 * an alert sourced "ooni"; without it (the behaviour before review F7)
 * every one is dropped as late. Two runs give the same bytes. */
static void day_stamped_case(const char *cfg, struct rec *r, struct rv_agg_engine_stats *st)
{
    struct rv_agg_engine *e = engine(cfg, r);
    const int days = 28;

    rng_state = 0x0123456789ABCDEFULL;
    for (int d = 0; d < days; d++) {
        int64_t day = T0 + d * DAY_MS;
        for (int64_t t = day; t < day + DAY_MS; t += 300000) {
            push(e, "partnerA", "IR", RV_V_CENSORSHIP, RV_KIND_NEWS, t, false, 0, NULL);
            if (t == day + 14 * HOUR_MS) {
                double v = 0.05 + 0.02 * urand();
                if (d >= days - 2)
                    v = 0.9;
                g_attrs = "{\"time_grain\":\"day\"}";
                push(e, "ooni-ir", "IR", RV_V_CENSORSHIP, RV_KIND_PROBE, day, true, v, NULL);
                g_attrs = NULL;
            }
        }
    }
    rv_agg_engine_get_stats(e, st);
    rv_agg_engine_free(&e);
}

static void test_day_stamped_source(void)
{
    static const char *const cfg = "{\"warmup_bins\":7}";
    static const char *const none = "{\"warmup_bins\":7,\"source_lateness_s\":{}}";
    struct rec a, b, c;
    struct rv_agg_engine_stats sa, sb, sc;

    day_stamped_case(cfg, &a, &sa);
    day_stamped_case(cfg, &b, &sb);
    day_stamped_case(none, &c, &sc);
    CHECK(sa.late == 0);
    CHECK(sa.late_applied == 28);
    CHECK(sc.late == 28);
    CHECK(sc.late_applied == 0);
    CHECK(a.bytes != NULL && strstr(a.bytes, "\"country\":\"IR\",\"violation\":\"censorship\"") != NULL);
    CHECK(a.bytes != NULL && strstr(a.bytes, "\"sources\":[\"ooni-ir\"]") != NULL);
    CHECK(a.max_level == RV_LVL_WATCH); /* one witness */
    /* the partner's series alone may open a watch while it warms up:
     * none of it comes from the OONI values */
    CHECK(c.bytes == NULL || strstr(c.bytes, "ooni-ir") == NULL);
    CHECK(a.len == b.len && a.bytes != NULL && b.bytes != NULL && memcmp(a.bytes, b.bytes, a.len) == 0);
    printf("day-stamped source: applied %llu (late %llu), %d changes, max %s; without "
           "source_lateness_s: late %llu, %d changes\n",
           (unsigned long long)sa.late_applied, (unsigned long long)sa.late, a.n,
           rv_agg_level_name(a.max_level), (unsigned long long)sc.late, c.n);
    free(a.bytes);
    free(b.bytes);
    free(c.bytes);
}

/* admin1 events feed both the national and the regional series. */
static void test_admin1(void)
{
    struct rec r;
    struct rv_agg_engine *e = engine(NULL, &r);
    struct rv_agg_engine_stats st;

    push(e, "acled", "SY", RV_V_KILLING, RV_KIND_INCIDENT, T0, false, 0, "Idlib");
    push(e, "acled", "SY", RV_V_KILLING, RV_KIND_INCIDENT, T0 + 1000, false, 0, "Aleppo");
    push(e, "acled", "SY", RV_V_KILLING, RV_KIND_INCIDENT, T0 + 2000, false, 0, NULL);
    rv_agg_engine_get_stats(e, &st);
    CHECK(st.series == 3);
    CHECK(st.countries == 1);
    rv_agg_engine_free(&e);
    free(r.bytes);
}

static void test_params(void)
{
    struct rv_agg_params p;
    struct rv_errbuf err = {0};
    cJSON *c;

    CHECK(rv_agg_params_from_json(NULL, &p, &err) == RV_OK);
    CHECK(p.bin_s == 3600 && p.lateness_s == 600 && p.threshold[2] == 5.0);
    c = cJSON_Parse("{\"bin_s\":7}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.bin_s: must be an integer 300..86400") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"bin_s\":7000}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.bin_s: must divide 86400 (one day)") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"windw\":1}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.windw: unknown key (the keys: docs/aggregator.md)") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"bin_sec\":60}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.bin_sec: unknown key (did you mean 'bin_s'?)") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"threshold_warning\":3.0}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.threshold_warning: must be above threshold_watch") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"bin_s\":900,\"admin1\":false}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_OK);
    CHECK(p.bin_s == 900 && !p.admin1);
    cJSON_Delete(c);
    CHECK(rv_agg_params_from_json(NULL, &p, &err) == RV_OK);
    CHECK(p.nsrc_lateness == 3 && strcmp(p.src_lateness[0].prefix, "ooni") == 0 &&
          p.src_lateness[0].s == 172800);
    c = cJSON_Parse("{\"source_lateness_s\":{\"ooni\":-1}}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.source_lateness_s.ooni: must be an integer 0..604800") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"source_lateness_s\":[1]}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "aggregator.source_lateness_s: must be an object") == 0);
    cJSON_Delete(c);
    c = cJSON_Parse("{\"source_lateness_s\":{\"partner-\":86400}}");
    CHECK(rv_agg_params_from_json(c, &p, &err) == RV_OK);
    CHECK(p.nsrc_lateness == 1 && strcmp(p.src_lateness[0].prefix, "partner-") == 0 &&
          p.src_lateness[0].s == 86400);
    cJSON_Delete(c);
    CHECK(rv_agg_level_from_name("warning") == RV_LVL_WARNING);
    CHECK(rv_agg_level_from_name("bad") == -1);
}

/* ----------------------------------------------------- many series */

#define MS_SERIES 600 /* more than two blocks of the engine's season arenas */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

struct ms_ev {
    int64_t t;
    int s, j;
};

static int cmp_ms_ev(const void *a, const void *b)
{
    const struct ms_ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->s > y->s) - (x->s < y->s);
}

static void ms_push(struct rv_agg_engine *e, int s, int64_t h, int j, int64_t t)
{
    struct rv_event ev;

    rv_event_init(&ev);
    snprintf(ev.source, sizeof ev.source, "%s", (mix64((uint64_t)s * 1000003 + (uint64_t)j) & 1)
                                                    ? "gdelt" : "partnerA");
    /* named by what it is, not by when it was pushed */
    snprintf(ev.id, sizeof ev.id, "s%d-%lld-%d", s, (long long)(h / HOUR_MS), j);
    memcpy(ev.country, rv_country_code_at(s / 12), 3);
    ev.violation = (uint8_t)(s % 12);
    ev.kind = RV_KIND_NEWS;
    ev.time_ms = t;
    if (rv_agg_engine_push(e, ++g_seq, &ev) != RV_OK)
        abort();
}

/* MS_SERIES news series over 16 days, each its own rate, daily cycle and
 * (every fifth) a burst; REVERSED: the series are first seen in the
 * opposite order (the first event of every series at the same instant),
 * so that each gets another place in the engine's tables. */
static void many_series(bool reversed, struct rec *r, struct rv_agg_engine_stats *st)
{
    struct rv_agg_engine *e = engine("{\"baseline_min_weeks\":1,\"warmup_bins\":0,"
                                     "\"threshold_watch\":1.5,\"threshold_warning\":3,"
                                     "\"threshold_critical\":6}",
                                     r);
    struct ms_ev *evs = malloc(MS_SERIES * 64 * sizeof *evs);

    if (evs == NULL)
        abort();
    for (int i = 0; i < MS_SERIES; i++) {
        int s = reversed ? MS_SERIES - 1 - i : i;
        ms_push(e, s, T0, -1, T0 + 1000);
    }
    for (int64_t h = T0 + HOUR_MS; h < T0 + 16 * DAY_MS; h += HOUR_MS) {
        size_t n = 0;
        for (int s = 0; s < MS_SERIES; s++) {
            uint64_t x = mix64((uint64_t)h ^ ((uint64_t)s << 48));
            double lam = seasonal_rate(h, 0.2, 0.5) * (1 + s % 7) * 0.5;
            int k = (int)((double)(x & 0xFFFF) / 65536.0 * 2 * lam + 0.5);
            if (s % 5 == 0 && h == T0 + 15 * DAY_MS + (s % 24) * HOUR_MS)
                k += 12;
            for (int j = 0; j < k && n < MS_SERIES * 64; j++)
                evs[n++] = (struct ms_ev){h + (int64_t)(mix64(x + (uint64_t)j) % HOUR_MS), s, j};
        }
        qsort(evs, n, sizeof *evs, cmp_ms_ev);
        for (size_t i = 0; i < n; i++)
            ms_push(e, evs[i].s, h, evs[i].j, evs[i].t);
    }
    rv_agg_engine_get_stats(e, st);
    rv_agg_engine_free(&e);
    free(evs);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The alert lines of R without their seq numbers, sorted; *N lines. */
static char **ms_lines(struct rec *r, int *n)
{
    char **v = calloc((size_t)r->n + 1, sizeof *v);
    char *p = r->bytes;
    int k = 0;

    for (char *nl; p != NULL && (nl = strchr(p, '\n')) != NULL && k < r->n; p = nl + 1) {
        char *q, *line = strndup(p, (size_t)(nl - p));
        if (line == NULL)
            abort();
        if ((q = strstr(line, "\"seq\":")) != NULL) {
            char *d = q + 6;
            while (*d >= '0' && *d <= '9')
                d++;
            memmove(q + 6, d, strlen(d) + 1);
        }
        v[k++] = line;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_str);
    *n = k;
    return v;
}

/* A series' alerts do not depend on where it sits among the others: the
 * same data with the series met in the opposite order gives the same
 * alerts (but for their order and seq numbers). */
static void test_many_series(void)
{
    struct rec a, b;
    struct rv_agg_engine_stats sa, sb;
    char **la, **lb;
    int na, nb, same = 1;

    many_series(false, &a, &sa);
    many_series(true, &b, &sb);
    CHECK(sa.series == MS_SERIES && sb.series == MS_SERIES);
    CHECK(a.n >= 50 && a.max_level >= RV_LVL_WARNING);
    la = ms_lines(&a, &na);
    lb = ms_lines(&b, &nb);
    CHECK(na == a.n && nb == b.n);
    if (na != nb)
        same = 0;
    for (int i = 0; same && i < na; i++)
        if (strcmp(la[i], lb[i]) != 0) {
            fprintf(stderr, "many series: first difference:\n  %s\n  %s\n", la[i], lb[i]);
            same = 0;
        }
    CHECK(same);
    printf("many series: %d series, %d / %d alerts in either order (max level %s)%s\n",
           MS_SERIES, na, nb, rv_agg_level_name(a.max_level), same ? ", the same" : "");
    for (int i = 0; i < na; i++)
        free(la[i]);
    for (int i = 0; i < nb; i++)
        free(lb[i]);
    free(la);
    free(lb);
    free(a.bytes);
    free(b.bytes);
}

int main(void)
{
    rv_log_set_level(RV_LOG_ERROR);
    if (rv_time_from_civil(2024, 1, 1, 0, 0, 0, &T0) != RV_OK) /* a Monday */
        return 1;
    test_params();
    test_quiet_seasonal();
    test_country_probe_drop();
    test_single_noisy_source();
    test_regional_probe_drop();
    test_corroborated_burst_and_resolve();
    test_determinism();
    test_late_events();
    test_day_stamped_source();
    test_admin1();
    test_many_series();
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

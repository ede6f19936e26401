/*
 * engine: the deterministic core of the aggregator (see rv/agg.h).
 *
 * State is a list of units, one per (country, violation) and, when the
 * event has one, (country, violation, admin1), kept in creation order so
 * that every pass over them, and so every alert, comes out in the same
 * order on every replay. Each unit has:
 *   - a counted series (incidents, news, probes without a value): weighted
 *     event count per bin, a seasonal baseline (median / MAD of the same
 *     slot of the week over baseline_weeks weeks, EWMA fallback), a
 *     Poisson upper-tail score and a CUSUM;
 *   - one probe series per source (probes with a value): mean value per
 *     bin against the same kind of baseline; internet_shutdown probes score
 *     the drop below it, others (OONI anomaly share) the rise above it,
 *     summed over consecutive bins (relative drop x duration, as IODA);
 *   - the alert state: level, hysteresis counter, evidence.
 * Nothing reads a clock: the engine clock is the newest event time.
 */
#include <limits.h>
#include <math.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rv/agg.h"
#include "engine_int.h"
#include "rv/config.h"
#include "rv/log.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#define WEEK_S 604800
#define MAX_WEEKS 12
#define SEEN_MAX 16  /* distinct sources remembered per unit */
#define TOP_MAX 5    /* evidence kept per unit */
#define REF_MAX (RV_SOURCE_MAX + 1 + RV_ID_MAX + 1)
#define SIG_MAX (RV_SOURCE_MAX + 40) /* signal name: "source/datasource" */
#define SRCC_MAX 64  /* signal names remembered in front of the source map */
#define NAT_SLOTS (26 * 26 * RV_VIOLATION_COUNT)

/* ---------------------------------------------------------------- params */

static const char *const param_keys[] = {
    "bin_s", "allowed_lateness_s", "baseline_weeks", "baseline_min_weeks", "ewma_alpha",
    "warmup_bins", "lambda_min", "spread_k", "cusum_k", "cusum_h", "probe_drop_min",
    "probe_scale", "probe_stale_bins", "corroboration_bins", "corroboration_bonus",
    "threshold_watch", "threshold_warning", "threshold_critical", "hysteresis",
    "cooldown_bins", "admin1", "max_series", "cell_interval_ms", "poll_ms",
    "cursor_interval_ms", "source_lateness_s"};

/* Default per-source lateness: feeds whose events are stamped at the day
 * (OONI aggregations at 00:00, ACLED event dates, published a week or so
 * later) or some minutes old (GDELT's DATEADDED, up to ~15 min). */
static const struct rv_agg_src_lateness src_lateness_default[] = {
    {"ooni", 172800}, {"acled", 604800}, {"gdelt", 3600}};

static void params_default(struct rv_agg_params *p)
{
    memset(p, 0, sizeof *p);
    p->bin_s = 3600;
    p->lateness_s = 600;
    p->weeks = 4;
    p->min_weeks = 2;
    p->ewma_alpha = 0.3;
    p->warmup_bins = 168;
    p->lambda_min = 0.5;
    p->spread_k = 1.0;
    p->cusum_k = 2.0;
    p->cusum_h = 10.0;
    p->probe_drop_min = 0.25;
    p->probe_scale = 5.0;
    p->probe_stale_bins = 6;
    p->corroboration_bins = 3;
    p->corroboration_bonus = 0.1;
    p->threshold[1] = 3.0;
    p->threshold[2] = 5.0;
    p->threshold[3] = 7.0;
    p->hysteresis = 0.25;
    p->cooldown_bins = 2;
    p->admin1 = true;
    p->max_series = 100000;
    p->cell_interval_ms = 250;
    p->poll_ms = 200;
    p->cursor_interval_ms = 1000;
    p->nsrc_lateness = (int)(sizeof src_lateness_default / sizeof src_lateness_default[0]);
    for (int i = 0; i < p->nsrc_lateness; i++)
        p->src_lateness[i] = src_lateness_default[i];
}

/* "source_lateness_s": {"prefix": seconds, ...}; replaces the defaults. */
static int src_lateness_from_json(const cJSON *cfg, struct rv_agg_params *p, struct rv_errbuf *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(cfg, "source_lateness_s"), *it;
    int n = 0;

    if (o == NULL)
        return RV_OK;
    if (!cJSON_IsObject(o))
        return rv_err_set(err, RV_EINVAL, "aggregator.source_lateness_s: must be an object");
    cJSON_ArrayForEach(it, o)
    {
        size_t kl = it->string ? strlen(it->string) : 0;
        if (kl == 0 || kl > RV_SOURCE_MAX)
            return rv_err_set(err, RV_EINVAL,
                              "aggregator.source_lateness_s: source prefix must be 1..64 bytes");
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < 0 || it->valuedouble > WEEK_S)
            return rv_err_set(err, RV_EINVAL,
                              "aggregator.source_lateness_s.%.64s: must be an integer 0..604800",
                              it->string);
        if (n == RV_AGG_SRC_LATENESS_MAX)
            return rv_err_set(err, RV_EINVAL,
                              "aggregator.source_lateness_s: at most 16 sources");
        memcpy(p->src_lateness[n].prefix, it->string, kl + 1);
        p->src_lateness[n].s = (int64_t)it->valuedouble;
        n++;
    }
    p->nsrc_lateness = n;
    return RV_OK;
}

int rv_agg_params_from_json(const cJSON *cfg, struct rv_agg_params *p, struct rv_errbuf *err)
{
    const char *S = "aggregator";
    const cJSON *it;
    int rc;

    params_default(p);
    if (cfg != NULL && !cJSON_IsObject(cfg))
        return rv_err_set(err, RV_EINVAL, "aggregator: must be an object");
    cJSON_ArrayForEach(it, cfg)
    {
        size_t i, nk = sizeof param_keys / sizeof param_keys[0];

        for (i = 0; i < nk; i++)
            if (it->string != NULL && strcmp(it->string, param_keys[i]) == 0)
                break;
        if (i == nk) {
            const char *near = rv_cfg_closest(it->string, param_keys, nk);
            if (near)
                return rv_err_set(err, RV_EINVAL,
                                  "aggregator.%.64s: unknown key (did you mean '%s'?)",
                                  it->string ? it->string : "", near);
            return rv_err_set(err, RV_EINVAL,
                              "aggregator.%.64s: unknown key (the keys: docs/aggregator.md)",
                              it->string ? it->string : "");
        }
    }
#define GI(key, field, def, lo, hi)                                                                \
    do {                                                                                           \
        if ((rc = rv_cfg_int(cfg, S, key, def, lo, hi, &p->field, err)) != RV_OK)                  \
            return rc;                                                                             \
    } while (0)
#define GD(key, field, def, lo, hi)                                                                \
    do {                                                                                           \
        if ((rc = rv_cfg_double(cfg, S, key, def, lo, hi, &p->field, err)) != RV_OK)               \
            return rc;                                                                             \
    } while (0)
    GI("bin_s", bin_s, 3600, 300, 86400);
    if (86400 % p->bin_s != 0)
        return rv_err_set(err, RV_EINVAL, "aggregator.bin_s: must divide 86400 (one day)");
    GI("allowed_lateness_s", lateness_s, 600, 0, WEEK_S);
    GI("baseline_weeks", weeks, 4, 1, MAX_WEEKS);
    GI("baseline_min_weeks", min_weeks, 2, 1, MAX_WEEKS);
    if (p->min_weeks > p->weeks)
        return rv_err_set(err, RV_EINVAL,
                          "aggregator.baseline_min_weeks: must be at most baseline_weeks");
    GD("ewma_alpha", ewma_alpha, 0.3, 0.001, 1);
    GI("warmup_bins", warmup_bins, 168, 0, 10000);
    GD("lambda_min", lambda_min, 0.5, 0.01, 1000);
    GD("spread_k", spread_k, 1.0, 0, 10);
    GD("cusum_k", cusum_k, 2.0, 1.1, 10);
    GD("cusum_h", cusum_h, 10.0, 0.1, 1000);
    GD("probe_drop_min", probe_drop_min, 0.25, 0.01, 1);
    GD("probe_scale", probe_scale, 5.0, 0.1, 100);
    GI("probe_stale_bins", probe_stale_bins, 6, 1, 10000);
    GI("corroboration_bins", corroboration_bins, 3, 1, 64);
    GD("corroboration_bonus", corroboration_bonus, 0.1, 0, 10);
    GD("threshold_watch", threshold[1], 3.0, 0.1, 1000);
    GD("threshold_warning", threshold[2], 5.0, 0.1, 1000);
    GD("threshold_critical", threshold[3], 7.0, 0.1, 1000);
    if (!(p->threshold[2] > p->threshold[1]))
        return rv_err_set(err, RV_EINVAL,
                          "aggregator.threshold_warning: must be above threshold_watch");
    if (!(p->threshold[3] > p->threshold[2]))
        return rv_err_set(err, RV_EINVAL,
                          "aggregator.threshold_critical: must be above threshold_warning");
    GD("hysteresis", hysteresis, 0.25, 0, 0.9);
    GI("cooldown_bins", cooldown_bins, 2, 1, 1000);
    if ((rc = rv_cfg_bool(cfg, S, "admin1", true, &p->admin1, err)) != RV_OK)
        return rc;
    GI("max_series", max_series, 100000, 1, 100000000);
    GI("cell_interval_ms", cell_interval_ms, 250, 10, 60000);
    GI("poll_ms", poll_ms, 200, 10, 10000);
    GI("cursor_interval_ms", cursor_interval_ms, 1000, 10, 600000);
    if ((rc = src_lateness_from_json(cfg, p, err)) != RV_OK)
        return rc;
#undef GI
#undef GD
    return RV_OK;
}

static const char *const level_names[] = {"none", "watch", "warning", "critical"};
static const char *const state_names[] = {"opened", "escalated", "deescalated", "resolved"};

const char *rv_agg_level_name(int level)
{
    return level >= 0 && level <= 3 ? level_names[level] : NULL;
}

int rv_agg_level_from_name(const char *s)
{
    for (int i = 0; i <= 3; i++)
        if (s != NULL && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *rv_agg_state_name(int state)
{
    return state >= 0 && state <= 3 ? state_names[state] : NULL;
}

/* ------------------------------------------------------------ utilities */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* floor_div(T, D) remembered for the last interval [lo, lo + D) asked:
 * event times come in order, most in the bin of the one before. */
struct fdcache {
    bool ok;
    int64_t q, lo;
};

static inline int64_t floor_div_c(struct fdcache *c, int64_t t, int64_t d)
{
    if (c->ok && (uint64_t)t - (uint64_t)c->lo < (uint64_t)d)
        return c->q;
    c->q = floor_div(t, d);
    c->lo = c->q * d;
    c->ok = true;
    return c->q;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* String -> index map, open addressing; keys owned by the map. A slot is
 * half a cache line with the key's hash, its value, its length and the key
 * itself when it fits (series keys "CC" + violation + admin1 mostly do,
 * source names and countries always): a lookup that hits touches one line,
 * where separate arrays of keys, hashes and values and a strdup'd key
 * touched four (the lookup of every live event's series showed as strcmp
 * on a cache miss). Longer keys are on the heap, their pointer in `inl`. */
#define SM_INL 18
struct sm_slot {
    uint64_t hash;
    uint32_t val;
    uint16_t len1;       /* key length + 1; 0: empty slot */
    char inl[SM_INL];    /* the key (not NUL-terminated), or a char * to it */
};

_Static_assert(sizeof(struct sm_slot) == 32, "a slot is half a cache line");

struct strmap {
    struct sm_slot *slots;
    size_t cap, n; /* cap a power of two */
};

static const char *sm_key(const struct sm_slot *s)
{
    const char *k;
    if (s->len1 - 1 <= SM_INL)
        return s->inl;
    memcpy(&k, s->inl, sizeof k);
    return k;
}

static int strmap_grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    struct sm_slot *ns = calloc(ncap, sizeof *ns);

    if (ns == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].len1 == 0)
            continue;
        size_t j = m->slots[i].hash & (ncap - 1);
        while (ns[j].len1 != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return RV_OK;
}

/* Finds KEY; returns true with *val set, else false. */
static bool strmap_get(const struct strmap *m, const char *key, size_t *val)
{
    if (m->cap == 0)
        return false;
    size_t len = strlen(key);
    uint64_t h = fnv1a(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].len1 != 0) {
        const struct sm_slot *sl = &m->slots[j];
        if (sl->hash == h && sl->len1 == len + 1 && memcmp(sm_key(sl), key, len) == 0) {
            *val = sl->val;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* Adds KEY (absent; at most 65534 bytes) -> VAL (below 2^32). */
static int strmap_put(struct strmap *m, const char *key, size_t val)
{
    size_t len = strlen(key);
    struct sm_slot *sl;

    if (len >= UINT16_MAX || val > UINT32_MAX)
        return RV_EINVAL;
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != RV_OK)
        return RV_ENOMEM;
    uint64_t h = fnv1a(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].len1 != 0)
        j = (j + 1) & (m->cap - 1);
    sl = &m->slots[j];
    if (len > SM_INL) {
        char *k = malloc(len);
        if (k == NULL)
            return RV_ENOMEM;
        memcpy(k, key, len);
        memcpy(sl->inl, &k, sizeof k);
    } else {
        memcpy(sl->inl, key, len);
    }
    sl->hash = h;
    sl->val = (uint32_t)val;
    sl->len1 = (uint16_t)(len + 1);
    m->n++;
    return RV_OK;
}

static void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].len1 - 1 > SM_INL)
            free((void *)sm_key(&m->slots[i]));
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* -log10 of P(X >= x) for X ~ Poisson(lam), x real (the regularised lower
 * incomplete gamma P(x, lam), its continuous extension). 0 when x <= lam. */
#define LG_CACHE 64 /* lgamma(x + 1) kept for integer x below this */

struct lgcache {
    double v[LG_CACHE];
    bool ok[LG_CACHE];
};

/* lgamma(x + 1): the same value lgamma_r gives, remembered for small
 * integer x (counts of unit weight are integers). */
static double lgamma1(struct lgcache *c, double x)
{
    int sg;

    if (x >= 0 && x < LG_CACHE && x == (double)(int)x) {
        int i = (int)x;
        if (!c->ok[i]) {
            c->v[i] = lgamma_r(x + 1.0, &sg);
            c->ok[i] = true;
        }
        return c->v[i];
    }
    return lgamma_r(x + 1.0, &sg);
}

static double poisson_surprise(struct lgcache *c, double x, double lam)
{
    double sum = 1.0, term = 1.0, lg;

    if (!(x > lam) || lam <= 0)
        return 0.0;
    /* P(a, l) = exp(-l + a ln l - lgamma(a + 1)) * sum_n l^n / ((a+1)..(a+n)) */
    for (int n = 1; n < 1000; n++) {
        term *= lam / (x + n);
        sum += term;
        if (term < sum * 1e-12)
            break;
    }
    lg = lgamma1(c, x);
    double lnp = -lam + x * log(lam) - lg + log(sum);
    if (lnp > 0)
        lnp = 0;
    return -lnp / log(10.0);
}

/* Whether poisson_surprise(X, LAM) is surely below T (LAM > 0, X > LAM),
 * without its series: it is at most (lam - x ln lam + lgamma(x + 1)) /
 * ln 10 (the series' sum is at least 1), and ln lam >= 1 - 1 / lam,
 * lgamma(x + 1) <= lgamma(ceil(x) + 1) for x >= 1 and <= 0 below; a
 * margin far above the rounding of either computation. False when
 * unsure. */
static bool poisson_below(struct lgcache *c, double x, double lam, double t)
{
    double lg, lnlo, ub, mag;
    int sg;

    if (x < 1) {
        lg = 0;
    } else if (x < LG_CACHE - 1) {
        int k = (int)x; /* ceil(x), without a call */
        if ((double)k != x)
            k++;
        if (!c->ok[k]) {
            c->v[k] = lgamma_r(k + 1.0, &sg);
            c->ok[k] = true;
        }
        lg = c->v[k];
    } else {
        lg = lgamma_r(ceil(x) + 1.0, &sg);
    }
    lnlo = 1.0 - 1.0 / lam;
    ub = (lam - x * lnlo + lg) / 2.302585092994046;
    mag = 1.0 + lam + x * (fabs(lnlo) + lam) + fabs(lg);
    return ub + 1e-9 * mag < t;
}

/* ------------------------------------------------------------- baseline */

/* Seasonal ring (same slot of the week over the past weeks) and, for the
 * first weeks, an EWMA per slot of the day (it knows the daily cycle after
 * a few days, where a plain EWMA would see every morning as a burst). */
struct sday {       /* per slot of the day */
    double mean;    /* EWMA */
    double var;     /* EWM variance */
    uint32_t n;     /* bins learnt (saturating) */
};

/* A season's records are strided: those of the counted series of all
 * units lie in two engine arenas, slot-major in blocks of ARENA_UNITS
 * units (the records of one slot of the week, for the units of a block,
 * side by side), so that closing a bin in every unit reads memory in
 * order, and a new block, not a copy of everything, makes room for new
 * series; a probe series owns its records. */
struct season {
    /* per slot of the week, at slot + k * sstep: float ring[weeks], then
     * uint8_t fill (values held, <= weeks) and uint8_t pos (next write) */
    unsigned char *slot;
    size_t sstep;
    unsigned char *day; /* per slot of the day: a struct sday at day + k * dstep */
    size_t dstep;
    bool owned;         /* slot and day are its own allocations */
    uint64_t nbins;     /* bins learnt */
    double level;       /* EWMA of every bin, one-week memory */
};

/* Bytes of one slot record for WEEKS weeks. */
static size_t srec_size(size_t weeks)
{
    return (weeks * sizeof(float) + 2 + 3) / 4 * 4;
}

static float *s_ring(const struct season *s, size_t slot)
{
    return (float *)(void *)(s->slot + slot * s->sstep);
}

/* [0] fill, [1] pos of SLOT; WEEKS: baseline_weeks */
static uint8_t *s_fp(const struct season *s, size_t slot, size_t weeks)
{
    return s->slot + slot * s->sstep + weeks * sizeof(float);
}

static struct sday *s_day(const struct season *s, size_t dslot)
{
    return (struct sday *)(void *)(s->day + dslot * s->dstep);
}

/* Weight, in weeks (or days) of slot history, of the series' overall level
 * when the slot baseline of a counted series is shrunk towards it: a slot
 * seen a few times at low counts is a poor estimate on its own. */
#define SHRINK_WEIGHT 2.0

/* A season with its own records (a probe series). */
static int season_init(struct season *s, size_t slots, size_t dslots, size_t weeks)
{
    memset(s, 0, sizeof *s);
    s->sstep = srec_size(weeks);
    s->dstep = sizeof(struct sday);
    s->slot = calloc(slots, s->sstep);
    s->day = calloc(dslots, s->dstep);
    if (s->slot == NULL || s->day == NULL) {
        free(s->slot);
        free(s->day);
        return RV_ENOMEM;
    }
    s->owned = true;
    return RV_OK;
}

static void season_release(struct season *s)
{
    if (!s->owned)
        return;
    free(s->slot);
    free(s->day);
}

static void sort_small(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

#define CSWAP(a, b)                                                                                \
    do {                                                                                           \
        if (v[a] > v[b]) {                                                                         \
            double t_ = v[a];                                                                      \
            v[a] = v[b];                                                                           \
            v[b] = t_;                                                                             \
        }                                                                                          \
    } while (0)

static double median_small(double *v, size_t n)
{
    if (n == 4) { /* the default baseline_weeks: a sorting network, the same order */
        CSWAP(0, 1);
        CSWAP(2, 3);
        CSWAP(0, 2);
        CSWAP(1, 3);
        CSWAP(1, 2);
        return 0.5 * (v[1] + v[2]);
    }
    sort_small(v, n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median of the N (>= 1) values of R, and *MAD their median absolute
 * deviation from it: the values median_small gives on the sorted values
 * and on their deviations, without the second sort for the usual sizes.
 * With v sorted and med between v[n/2 - 1] and v[n/2] (rounding is
 * monotonic), the deviations below the median decrease and those above
 * increase, so their middle is found by comparing two of them. */
#define DMIN(a, b) ((a) < (b) ? (a) : (b))
#define DMAX(a, b) ((a) > (b) ? (a) : (b))

static double median_mad(const float *r, size_t n, double *mad)
{
    double v[MAX_WEEKS], d[MAX_WEEKS], med;

    for (size_t i = 0; i < n; i++)
        v[i] = r[i];
    switch (n) {
    case 1:
        *mad = 0; /* fabs(v - v) */
        return v[0];
    case 2:
        med = 0.5 * (v[0] + v[1]);
        *mad = 0.5 * (fabs(v[0] - med) + fabs(v[1] - med));
        return med;
    case 3: {
        /* min and max without branches: the data decides them */
        double lo = DMIN(v[0], v[1]), hi = DMAX(v[0], v[1]);
        med = DMAX(lo, DMIN(hi, v[2]));
        lo = DMIN(lo, v[2]);
        hi = DMAX(hi, v[2]);
        /* sorted deviations: 0, then the smaller of the two others */
        double d0 = med - lo, d2 = hi - med;
        *mad = DMIN(d0, d2);
        return med;
    }
    case 4: {
        /* the sorting network of median_small */
        double a = DMIN(v[0], v[1]), b = DMAX(v[0], v[1]);
        double c = DMIN(v[2], v[3]), dd = DMAX(v[2], v[3]);
        double s0 = DMIN(a, c), s3 = DMAX(b, dd), t1 = DMAX(a, c), t2 = DMIN(b, dd);
        double s1 = DMIN(t1, t2), s2 = DMAX(t1, t2);
        med = 0.5 * (s1 + s2);
        double d1 = med - s1, d0 = med - s0, d2 = s2 - med, d3 = s3 - med;
        *mad = 0.5 * (DMAX(d1, d2) + DMIN(d0, d3));
        return med;
    }
    default:
        med = median_small(v, n);
        for (size_t i = 0; i < n; i++)
            d[i] = fabs(v[i] - med);
        *mad = median_small(d, n);
        return med;
    }
}

/* The parameters the baseline reads, with the quotients it needs
 * computed once (the same values the expressions give each time). */
struct seasonk {
    const struct rv_agg_params *p;
    double lvl_rate; /* (double)bin_s / WEEK_S */
    double neff;     /* (2 - ewma_alpha) / ewma_alpha */
    double keep;     /* 1 - ewma_alpha */
};

static void seasonk_init(struct seasonk *k, const struct rv_agg_params *p)
{
    k->p = p;
    k->lvl_rate = (double)p->bin_s / WEEK_S;
    k->neff = (2 - p->ewma_alpha) / p->ewma_alpha;
    k->keep = 1 - p->ewma_alpha;
}

/* Baseline of SLOT (DSLOT its slot of the day): *base and *spread (a
 * robust standard deviation). Returns false when there is nothing to
 * compare with yet. */
static bool season_get(const struct season *s, const struct seasonk *k, size_t slot,
                       size_t dslot, bool shrink, double *base, double *spread)
{
    const struct rv_agg_params *p = k->p;
    double m = 0;
    const struct sday *dy = s_day(s, dslot);
    size_t n = s_fp(s, slot, (size_t)p->weeks)[0];
    double dsd = sqrt(dy->var > 0 ? dy->var : 0);

    if ((int64_t)n >= p->min_weeks) {
        double mad;
        *base = median_mad(s_ring(s, slot), n, &mad);
        *spread = 1.4826 * mad;
        /* a median of few weeks can look tighter than the series is */
        if (dy->n >= 2 && dsd > *spread)
            *spread = dsd;
    } else {
        if (dy->n == 0)
            return false;
        double neff = k->neff;
        *base = dy->mean;
        *spread = dsd;
        n = dy->n < neff ? dy->n : (size_t)neff;
    }
    if (shrink && s->nbins >= 24) {
        m = SHRINK_WEIGHT;
        *base = ((double)n * *base + m * s->level) / ((double)n + m);
    }
    /* the baseline is itself an estimate from N values: widen the spread
     * by its standard error (Poisson-like: variance ~ mean) */
    {
        double mb = *base > p->lambda_min ? *base : p->lambda_min;
        double se2 = mb / ((double)n + m > 0 ? (double)n + m : 1);
        *spread = sqrt(*spread * *spread + se2);
    }
    return true;
}

/* Learns X into the ring of SLOT and XE (X winsorised by the caller) into
 * the EWMA of DSLOT when EWMA. */
static inline void season_learn(struct season *s, const struct seasonk *k, size_t slot,
                               size_t dslot, double x, double xe, bool ewma)
{
    const struct rv_agg_params *p = k->p;
    float *r = s_ring(s, slot);
    uint8_t *fp = s_fp(s, slot, (size_t)p->weeks);
    struct sday *dy = s_day(s, dslot);

    r[fp[1]] = (float)x;
    fp[1] = (uint8_t)(fp[1] + 1 < p->weeks ? fp[1] + 1 : 0); /* pos < weeks */
    if (fp[0] < p->weeks)
        fp[0]++;
    if (!ewma) {
        s->nbins++;
        return;
    }
    if (s->nbins == 0)
        s->level = xe;
    else
        s->level += (xe - s->level) * k->lvl_rate;
    s->nbins++;
    if (dy->n == 0) {
        dy->mean = xe;
        dy->var = 0;
    } else {
        double diff = xe - dy->mean, incr = p->ewma_alpha * diff;
        dy->mean += incr;
        dy->var = k->keep * (dy->var + diff * incr);
    }
    if (dy->n < UINT32_MAX)
        dy->n++;
}

/* ----------------------------------------------------------------- units */

struct cbin {     /* an open bin of the counted series */
    int64_t idx;  /* bin index; INT64_MIN: unused */
    double x;     /* weighted count */
    uint32_t n;   /* events (counted and probes) */
};

struct pbin {     /* an open bin of a probe series */
    int64_t idx;
    double sum;
    uint32_t n;
};

struct probe {
    uint16_t src;      /* engine source id */
    struct season s;
    struct pbin *open; /* nopen */
    double run;        /* sum of relative drops over the current run of bins */
    double score;
    int64_t last_data; /* last closed bin with data */
};

struct seen {
    uint16_t src;
    int64_t last_bin; /* newest bin the source had a counted event in */
};

struct evid {
    double w;
    uint64_t seq;
    char ref[REF_MAX]; /* "source/id" */
};

#define OPEN_IN 3 /* open bins held in the unit (nopen is 2 by default) */
#define PEND_MAX 4 /* Poisson scores a quiet unit may owe */
#define ARENA_UNITS 256 /* units a block of the season arenas holds (a power of 2) */

/* Laid out in the order of use, on 64-byte lines: a closing reads the
 * first three lines, an event those and the fourth; evidence and what
 * alerts read come last. */
struct unit {
    /* every closing */
    bool counted;        /* has had a counted event */
    bool zero_past;      /* created after the engine warmed up: zeros before */
    bool bl_ok;
    bool ps_ok;          /* Poisson score of (ps_x, ps_lam) is ps_v */
    uint8_t violation;
    char country[3];
    int level;
    int down;            /* consecutive closed bins below the hold line */
    int ntop;
    int nseen;
    uint32_t nprobes;
    uint32_t npend;      /* Poisson scores of pend not yet in cscore and score */
    double cusum;
    double cscore;       /* counted score of the newest evaluation (see npend) */
    double score;
    struct cbin *open;   /* nopen: open_in, or allocated when more */
    struct season s;     /* counted series (records in the arenas when counted) */
    int64_t bl_bin;      /* baseline cache: bin (INT64_MIN: none) */
    double bl_base, bl_spread;
    double ps_x, ps_lam, ps_v;
    struct pend {
        double x, lam;
    } pend[PEND_MAX];
    /* every event */
    int64_t cell_bin;    /* newest bin with data */
    double cell_x;
    uint32_t cell_n;
    bool cell_dirty;
    struct cbin open_in[OPEN_IN];
    struct seen seen[SEEN_MAX];
    /* the rest */
    struct probe *probes;
    char *admin1;        /* NULL: national */
    int64_t created;     /* bin index at creation */
    int64_t cfrom;       /* counted series: first bin it learnt (e->closed when made counted) */
    size_t idx;          /* in e->units */
    int64_t opened_ms;   /* alert */
    struct evid top[TOP_MAX];
};

struct rv_agg_engine {
    struct rv_agg_params p;
    struct rv_agg_sink sink;
    int64_t bin_ms;
    size_t slots;        /* bins per week */
    size_t dslots;       /* bins per day */
    size_t nopen;        /* open bins per series */
    struct unit **units; /* creation order */
    size_t nunits, capunits;
    struct unit **nat_units; /* the national ones (no admin1), creation order: the cells */
    size_t nnat, capnat;
    struct strmap unit_map;   /* "CC/v/admin1" -> index */
    struct strmap source_map; /* name -> id */
    char **sources;           /* id -> name */
    uint16_t *witness;        /* id -> id of its feed (ev->source): the witness */
    int64_t *late_ms;         /* id -> lateness of its feed, ms (source_lateness_s) */
    size_t nsources, capsources;
    struct strmap country_map;
    bool started;
    bool quiet_late;     /* no warning per late event (a rebuild) */
    uint64_t late_base;  /* st.late when the warnings resumed: they count from there */
    int64_t clock_ms;    /* newest event time */
    int64_t first_ms;
    int64_t closed;      /* bins with index < closed are closed */
    int64_t start_bin;   /* closed at the first event */
    uint64_t alert_seq;
    struct rv_agg_engine_stats st;
    bool full_logged;
    /* caches: they change no result, only how fast it comes */
    struct lgcache lgc;
    double log_ck;       /* log(p.cusum_k) */
    double hold_div;     /* 1 - p.hysteresis */
    struct seasonk sk;
    /* records of the counted series, slot-major in blocks of ARENA_UNITS
     * units: slot k of unit i at ablk[i / ARENA_UNITS].slot + (k *
     * ARENA_UNITS + i % ARENA_UNITS) * srec, day slot k at .day + (k *
     * ARENA_UNITS + i % ARENA_UNITS) * sizeof(struct sday). A new block
     * for every ARENA_UNITS units: nothing is moved when series appear. */
    struct arena_blk {
        unsigned char *slot, *day;
    } *ablk;
    size_t nblk, capblk, srec;
    uint32_t *nat;       /* national units by country letters and violation: index + 1 */
    struct srccache {
        size_t len;
        uint16_t id;
        char name[SIG_MAX];
    } srcc[SRCC_MAX];   /* len 0: empty */
    struct binpos {
        int64_t bin;
        size_t slot, dslot, o;
    } bp[2];
    struct fdcache fd_ev, fd_wm; /* bin of the event time, of the watermark */
    size_t pf_step;      /* records prefetched for one unit in pf_step */
};

static void unit_free(struct unit *u)
{
    if (u == NULL)
        return;
    if (u->counted)
        season_release(&u->s);
    if (u->open != u->open_in)
        free(u->open);
    for (size_t i = 0; i < u->nprobes; i++) {
        season_release(&u->probes[i].s);
        free(u->probes[i].open);
    }
    free(u->probes);
    free(u->admin1);
    free(u);
}

static inline const struct binpos *binpos(struct rv_agg_engine *e, int64_t bin);

int rv_agg_engine_new(const struct rv_agg_params *p, uint64_t last_alert_seq,
                      const struct rv_agg_sink *sink, struct rv_agg_engine **out)
{
    struct rv_agg_engine *e;

    if (p == NULL || out == NULL || p->bin_s <= 0 || 86400 % p->bin_s != 0 || p->weeks < 1 ||
        p->weeks > MAX_WEEKS || p->min_weeks < 1)
        return RV_EINVAL;
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return RV_ENOMEM;
    e->p = *p;
    if (sink != NULL)
        e->sink = *sink;
    e->bin_ms = p->bin_s * 1000;
    e->slots = (size_t)(WEEK_S / p->bin_s);
    e->dslots = (size_t)(86400 / p->bin_s);
    e->nopen = (size_t)(p->lateness_s / p->bin_s) + 2;
    e->alert_seq = last_alert_seq;
    e->clock_ms = INT64_MIN;
    e->first_ms = INT64_MAX;
    e->log_ck = log(p->cusum_k);
    e->srec = srec_size((size_t)p->weeks);
    e->hold_div = 1.0 - p->hysteresis;
    /* two records of either arena (at most 2 x 32 and 2 x 24 bytes)
     * still put one in every 64-byte line: prefetched for every other
     * unit */
    e->pf_step = 2 * e->srec <= 64 ? 2 : 1;
    seasonk_init(&e->sk, &e->p);
    e->bp[0].bin = 1; /* matches no bin of its parity: filled below */
    e->bp[1].bin = 0;
    binpos(e, 0);
    binpos(e, 1);
    *out = e;
    return RV_OK;
}

void rv_agg_engine_free(struct rv_agg_engine **ep)
{
    struct rv_agg_engine *e;

    if (ep == NULL || *ep == NULL)
        return;
    e = *ep;
    for (size_t i = 0; i < e->nunits; i++)
        unit_free(e->units[i]);
    free(e->units);
    free(e->nat_units);
    for (size_t i = 0; i < e->nsources; i++)
        free(e->sources[i]);
    free(e->sources);
    free(e->witness);
    free(e->late_ms);
    strmap_free(&e->unit_map);
    strmap_free(&e->source_map);
    strmap_free(&e->country_map);
    free(e->nat);
    for (size_t b = 0; b < e->nblk; b++) {
        free(e->ablk[b].slot);
        free(e->ablk[b].day);
    }
    free(e->ablk);
    free(e);
    *ep = NULL;
}

void rv_agg_engine_set_alert_seq(struct rv_agg_engine *e, uint64_t seq)
{
    e->alert_seq = seq;
}

void rv_agg_engine_get_stats(const struct rv_agg_engine *e, struct rv_agg_engine_stats *out)
{
    *out = e->st;
    out->series = e->nunits;
    out->last_alert_seq = e->alert_seq;
    out->clock_ms = e->clock_ms;
    out->first_ms = e->first_ms;
    out->countries = e->country_map.n;
}

/* Slot of a signal name in e->srcc (direct-mapped). */
static inline size_t src_hash(const char *nm, size_t len)
{
    return len == 0 ? 0
                    : (len * 31 + (unsigned char)nm[0] * 7 + (unsigned char)nm[len - 1]) % SRCC_MAX;
}

/* Whether the LEN bytes at A and B are equal, for the short names of
 * sources: two overlapping word loads instead of a byte loop. */
static inline bool short_eq(const char *a, const char *b, size_t len)
{
    uint64_t x, y, z, w;
    uint32_t x4, y4, z4, w4;

    if (len >= 8 && len <= 16) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&z, a + len - 8, 8);
        memcpy(&w, b + len - 8, 8);
        return x == y && z == w;
    }
    if (len >= 4 && len < 8) {
        memcpy(&x4, a, 4);
        memcpy(&y4, b, 4);
        memcpy(&z4, a + len - 4, 4);
        memcpy(&w4, b + len - 4, 4);
        return x4 == y4 && z4 == w4;
    }
    return memcmp(a, b, len) == 0;
}

/* The id of signal NM of LEN bytes when e->srcc remembers it. */
static inline bool source_cached(const struct rv_agg_engine *e, const char *nm, size_t len,
                                 uint16_t *id)
{
    const struct srccache *c = &e->srcc[src_hash(nm, len)];

    if (c->len == len && len > 0 && short_eq(c->name, nm, len)) {
        *id = c->id;
        return true;
    }
    return false;
}

/* Lateness of the feed NAME (its first FEED_LEN bytes), ms: the longest
 * matching prefix of source_lateness_s, else allowed_lateness_s; never
 * below allowed_lateness_s. */
static int64_t feed_late_ms(const struct rv_agg_params *p, const char *name, size_t feed_len)
{
    size_t best = 0;
    int64_t s = p->lateness_s;

    for (int i = 0; i < p->nsrc_lateness; i++) {
        size_t pl = strlen(p->src_lateness[i].prefix);
        if (pl <= feed_len && pl > best && memcmp(name, p->src_lateness[i].prefix, pl) == 0) {
            best = pl;
            s = p->src_lateness[i].s;
        }
    }
    if (s < p->lateness_s)
        s = p->lateness_s;
    return s * 1000;
}

/* Id of signal NAME (LEN < SIG_MAX bytes, not NUL-terminated), created
 * if new. Its first FEED_LEN bytes (<= LEN) are the feed, ev->source: the
 * witness of the signal (e->witness), whatever the payload's attrs name. */
static int source_id(struct rv_agg_engine *e, const char *nm, size_t len, size_t feed_len,
                     uint16_t *id)
{
    uint16_t wid;

    char name[SIG_MAX];
    size_t v;

    struct srccache *c = &e->srcc[src_hash(nm, len)];
    if (source_cached(e, nm, len, id))
        return RV_OK;
    if (len >= SIG_MAX)
        len = SIG_MAX - 1;
    memcpy(name, nm, len);
    name[len] = '\0';
    if (strmap_get(&e->source_map, name, &v)) {
        *id = (uint16_t)v;
        goto cache;
    }
    /* the feed first: a signal's witness has a smaller id */
    if (feed_len < len) {
        int rc = source_id(e, nm, feed_len, feed_len, &wid);
        if (rc != RV_OK)
            return rc;
    } else {
        wid = (uint16_t)e->nsources;
    }
    if (e->nsources >= 65535)
        return RV_ETOOBIG;
    if (e->nsources == e->capsources) {
        size_t nc = e->capsources ? e->capsources * 2 : 16;
        char **ns = realloc(e->sources, nc * sizeof *ns);
        if (ns == NULL)
            return RV_ENOMEM;
        e->sources = ns;
        uint16_t *nw = realloc(e->witness, nc * sizeof *nw);
        if (nw == NULL)
            return RV_ENOMEM;
        e->witness = nw;
        int64_t *nl = realloc(e->late_ms, nc * sizeof *nl);
        if (nl == NULL)
            return RV_ENOMEM;
        e->late_ms = nl;
        e->capsources = nc;
    }
    e->witness[e->nsources] = wid;
    e->late_ms[e->nsources] = feed_late_ms(&e->p, name, feed_len);
    e->sources[e->nsources] = strdup(name);
    if (e->sources[e->nsources] == NULL)
        return RV_ENOMEM;
    if (strmap_put(&e->source_map, name, e->nsources) != RV_OK) {
        free(e->sources[e->nsources]);
        return RV_ENOMEM;
    }
    *id = (uint16_t)e->nsources++;
cache:
    c->len = len;
    c->id = *id;
    memcpy(c->name, name, len);
    return RV_OK;
}

/* Adds the arena block of the next ARENA_UNITS units (zero: never used).
 * The records already there stay where they are. */
static int arena_grow(struct rv_agg_engine *e)
{
    struct arena_blk b;

    if (e->nblk == e->capblk) {
        size_t nc = e->capblk ? e->capblk * 2 : 16;
        struct arena_blk *nb = realloc(e->ablk, nc * sizeof *nb);
        if (nb == NULL)
            return RV_ENOMEM;
        e->ablk = nb;
        e->capblk = nc;
    }
    b.slot = calloc(e->slots * ARENA_UNITS, e->srec);
    b.day = calloc(e->dslots * ARENA_UNITS, sizeof(struct sday));
    if (b.slot == NULL || b.day == NULL) {
        free(b.slot);
        free(b.day);
        return RV_ENOMEM;
    }
    e->ablk[e->nblk++] = b;
    return RV_OK;
}

/* Where slot SLOT's record of unit I is, and day slot DSLOT's. */
static inline unsigned char *arena_rec(const struct rv_agg_engine *e, size_t i, size_t slot)
{
    return e->ablk[i / ARENA_UNITS].slot + (slot * ARENA_UNITS + i % ARENA_UNITS) * e->srec;
}

static inline unsigned char *arena_drec(const struct rv_agg_engine *e, size_t i, size_t dslot)
{
    return e->ablk[i / ARENA_UNITS].day +
           (dslot * ARENA_UNITS + i % ARENA_UNITS) * sizeof(struct sday);
}

/* Slot of (COUNTRY, VIOLATION) in e->nat, or -1 (not two capitals). */
static long nat_slot(const char *country, int violation)
{
    if (country[0] < 'A' || country[0] > 'Z' || country[1] < 'A' || country[1] > 'Z' ||
        violation < 0 || violation >= RV_VIOLATION_COUNT)
        return -1;
    return ((long)(country[0] - 'A') * 26 + (country[1] - 'A')) * RV_VIOLATION_COUNT + violation;
}

/* The unit of (COUNTRY, VIOLATION, ADMIN1 of AL bytes; NULL: national),
 * created if new. NULL when full or out of memory. */
/* Room in *LIST (N used of *CAP) for one more unit. RV_OK or RV_ENOMEM. */
static int unit_list_room(struct unit ***list, size_t n, size_t *cap)
{
    if (n < *cap)
        return RV_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    struct unit **nl = realloc(*list, nc * sizeof *nl);
    if (nl == NULL)
        return RV_ENOMEM;
    *list = nl;
    *cap = nc;
    return RV_OK;
}

static struct unit *unit_get(struct rv_agg_engine *e, const char *country, int violation,
                             const char *admin1, size_t al, int64_t bin)
{
    char key[8 + RV_ADMIN1_MAX + 1];
    size_t v;
    struct unit *u;
    long ns = admin1 == NULL ? nat_slot(country, violation) : -1;

    if (ns >= 0 && e->nat != NULL && e->nat[ns] != 0)
        return e->units[e->nat[ns] - 1];
    if (al > RV_ADMIN1_MAX)
        al = RV_ADMIN1_MAX;
    /* "CC" violation-byte admin1: built by hand, this runs for every event */
    memcpy(key, country, 2);
    key[2] = (char)('A' + violation);
    memcpy(key + 3, admin1 ? admin1 : "", al);
    key[3 + al] = '\0';
    if (strmap_get(&e->unit_map, key, &v))
        return e->units[v];
    if ((int64_t)e->nunits >= e->p.max_series) {
        if (!e->full_logged)
            rv_log_warn("agg", "series full max_series=%lld", (long long)e->p.max_series);
        e->full_logged = true;
        return NULL;
    }
    if (unit_list_room(&e->units, e->nunits, &e->capunits) != RV_OK ||
        (admin1 == NULL && unit_list_room(&e->nat_units, e->nnat, &e->capnat) != RV_OK))
        return NULL;
    if (ns >= 0 && e->nat == NULL && (e->nat = calloc(NAT_SLOTS, sizeof *e->nat)) == NULL)
        return NULL;
    if (e->nunits == e->nblk * ARENA_UNITS && arena_grow(e) != RV_OK)
        return NULL;
    /* on its own cache lines */
    u = aligned_alloc(64, (sizeof *u + 63) / 64 * 64);
    if (u == NULL)
        return NULL;
    memset(u, 0, sizeof *u);
    memcpy(u->country, country, 3);
    u->violation = (uint8_t)violation;
    u->created = bin;
    u->idx = e->nunits;
    u->zero_past = e->closed - e->start_bin >= e->p.warmup_bins;
    u->cell_bin = INT64_MIN;
    u->bl_bin = INT64_MIN;
    u->open = e->nopen <= OPEN_IN ? u->open_in : malloc(e->nopen * sizeof *u->open);
    if (u->open == NULL)
        goto fail;
    for (size_t i = 0; i < e->nopen; i++) {
        u->open[i].idx = INT64_MIN;
        u->open[i].x = 0;
        u->open[i].n = 0;
    }
    if (admin1 != NULL && (u->admin1 = strndup(admin1, al)) == NULL)
        goto fail;
    if (!strmap_get(&e->country_map, country, &v) &&
        strmap_put(&e->country_map, country, 0) != RV_OK)
        goto fail;
    if (strmap_put(&e->unit_map, key, e->nunits) != RV_OK)
        goto fail;
    if (ns >= 0)
        e->nat[ns] = (uint32_t)e->nunits + 1;
    e->units[e->nunits++] = u;
    if (admin1 == NULL)
        e->nat_units[e->nnat++] = u;
    return u;
fail:
    if (u->open != u->open_in)
        free(u->open);
    free(u->admin1);
    free(u);
    return NULL;
}

/* unit_get of a national unit, its usual case inline. */
static inline struct unit *unit_national(struct rv_agg_engine *e, const char *country,
                                         int violation, int64_t bin)
{
    long ns = nat_slot(country, violation);

    if (ns >= 0 && e->nat != NULL && e->nat[ns] != 0)
        return e->units[e->nat[ns] - 1];
    return unit_get(e, country, violation, NULL, 0, bin);
}

static int unit_make_counted(struct rv_agg_engine *e, struct unit *u)
{
    if (u->counted)
        return RV_OK;
    /* its records in the arenas (zero: never used) */
    memset(&u->s, 0, sizeof u->s);
    u->s.sstep = ARENA_UNITS * e->srec;
    u->s.slot = arena_rec(e, u->idx, 0);
    u->s.dstep = ARENA_UNITS * sizeof(struct sday);
    u->s.day = arena_drec(e, u->idx, 0);
    u->counted = true;
    u->cfrom = e->closed;
    if (u->zero_past) {
        /* The series had no events since the engine started: its past is
         * known to be zeros, for as many whole weeks as the engine ran. */
        int64_t past = e->closed - e->start_bin;
        int64_t w = past / (int64_t)e->slots;
        if (w > e->p.weeks)
            w = e->p.weeks;
        for (size_t k = 0; k < e->slots; k++) {
            s_fp(&u->s, k, (size_t)e->p.weeks)[0] = (uint8_t)w;
            s_fp(&u->s, k, (size_t)e->p.weeks)[1] = (uint8_t)(w % e->p.weeks);
        }
        for (size_t k = 0; k < e->dslots; k++)
            s_day(&u->s, k)->n = (uint32_t)(past / (int64_t)e->dslots > 0 ? past / (int64_t)e->dslots : 1);
        u->s.nbins = (uint64_t)past;
    }
    return RV_OK;
}

static struct probe *unit_probe(struct rv_agg_engine *e, struct unit *u, uint16_t src)
{
    struct probe *np, *pr;

    for (size_t i = 0; i < u->nprobes; i++)
        if (u->probes[i].src == src)
            return &u->probes[i];
    np = realloc(u->probes, (u->nprobes + 1) * sizeof *np);
    if (np == NULL)
        return NULL;
    u->probes = np;
    pr = &np[u->nprobes];
    memset(pr, 0, sizeof *pr);
    pr->src = src;
    pr->last_data = INT64_MIN;
    if (season_init(&pr->s, e->slots, e->dslots, (size_t)e->p.weeks) != RV_OK)
        return NULL;
    pr->open = malloc(e->nopen * sizeof *pr->open);
    if (pr->open == NULL) {
        season_release(&pr->s);
        return NULL;
    }
    for (size_t i = 0; i < e->nopen; i++) {
        pr->open[i].idx = INT64_MIN;
        pr->open[i].sum = 0;
        pr->open[i].n = 0;
    }
    u->nprobes++;
    return pr;
}

static size_t mod_of(int64_t bin, size_t n)
{
    int64_t s = bin % (int64_t)n;
    return (size_t)(s < 0 ? s + (int64_t)n : s);
}

/* Positions of BIN (slot of the week, of the day, open bin), remembered
 * for the last two bins: a closing asks for them once per unit. */
static inline const struct binpos *binpos(struct rv_agg_engine *e, int64_t bin)
{
    struct binpos *bp = &e->bp[bin & 1];

    if (bp->bin != bin) {
        bp->slot = mod_of(bin, e->slots);
        bp->dslot = mod_of(bin, e->dslots);
        bp->o = mod_of(bin, e->nopen);
        bp->bin = bin;
    }
    return bp;
}

static size_t slot_of(struct rv_agg_engine *e, int64_t bin)
{
    return binpos(e, bin)->slot;
}

static size_t dslot_of(struct rv_agg_engine *e, int64_t bin)
{
    return binpos(e, bin)->dslot;
}

static size_t open_of(struct rv_agg_engine *e, int64_t bin)
{
    return binpos(e, bin)->o;
}

/* Baseline of the counted series of U for BIN. False while warming up. */
static inline bool counted_baseline(struct rv_agg_engine *e, struct unit *u, int64_t bin,
                                    double *base, double *spread)
{
    if (!u->counted)
        return false;
    if (!u->zero_past && (int64_t)u->s.nbins < e->p.warmup_bins)
        return false;
    /* cached per bin: every event of an open bin asks for it again */
    if (u->bl_bin != bin) {
        const struct binpos *bp = binpos(e, bin);
        u->bl_ok = season_get(&u->s, &e->sk, bp->slot, bp->dslot, true, &u->bl_base,
                              &u->bl_spread);
        u->bl_bin = bin;
    }
    *base = u->bl_base;
    *spread = u->bl_spread;
    return u->bl_ok;
}

/* The Poisson mean a count is scored against. */
static inline double counted_lam(const struct rv_agg_engine *e, double base, double spread)
{
    double lam = base + e->p.spread_k * spread;

    return lam < e->p.lambda_min ? e->p.lambda_min : lam;
}

/* Poisson score of count X against LAM, remembered for the last pair. */
static inline double ps_of(struct rv_agg_engine *e, struct unit *u, double x, double lam)
{
    if (!(x > lam))
        return 0.0; /* as poisson_surprise */
    /* the closing of a bin asks again what its last event asked */
    if (u->ps_ok && u->ps_x == x && u->ps_lam == lam)
        return u->ps_v;
    u->ps_v = poisson_surprise(&e->lgc, x, lam);
    u->ps_x = x;
    u->ps_lam = lam;
    u->ps_ok = true;
    return u->ps_v;
}

static inline double counted_score(struct rv_agg_engine *e, struct unit *u, double x,
                                   double base, double spread)
{
    return ps_of(e, u, x, counted_lam(e, base, spread));
}

/* A quiet unit (level 0, no probe, counted score below watch, score equal
 * to it) may owe the Poisson scores of its last closing and early looks
 * while each is surely below watch: they can raise nothing, and the next
 * closing replaces them. cscore holds the rest; the scores are folded in,
 * in their order, as evaluate() would have, before anything reads them. */
static void cscore_settle(struct rv_agg_engine *e, struct unit *u)
{
    double c = u->cscore;

    for (uint32_t i = 0; i < u->npend; i++) {
        double ps = ps_of(e, u, u->pend[i].x, u->pend[i].lam);
        if (ps > c)
            c = ps;
    }
    u->cscore = c;
    u->score = c;
    u->npend = 0;
}

/* The early look of an event at count X of an open bin against the
 * baseline (BASE, SPREAD): what add_event and apply_late do with it. */
static int early_look(struct rv_agg_engine *e, struct unit *u, int64_t bin, double x, double base,
                      double spread);

/* Keeps the TOP_MAX heaviest events (ties: older seq first). */
static void evidence_add(struct unit *u, double w, uint64_t seq, const struct rv_event_view *ev)
{
    int i;

    if (u->ntop == TOP_MAX) {
        struct evid *last = &u->top[TOP_MAX - 1];
        if (w < last->w || (w == last->w && seq > last->seq))
            return;
        u->ntop--;
    }
    i = u->ntop;
    while (i > 0 && (u->top[i - 1].w < w || (u->top[i - 1].w == w && u->top[i - 1].seq > seq))) {
        u->top[i] = u->top[i - 1];
        i--;
    }
    u->top[i].w = w;
    u->top[i].seq = seq;
    /* "source/id", as snprintf "%s/%s" would (strings hold no NUL) */
    {
        char *r = u->top[i].ref;
        size_t sl = ev->source_len < REF_MAX - 1 ? ev->source_len : REF_MAX - 1;
        size_t il = ev->id_len < REF_MAX - 2 - sl ? ev->id_len : REF_MAX - 2 - sl;
        memcpy(r, ev->source, sl);
        if (sl < REF_MAX - 1) {
            r[sl] = '/';
            memcpy(r + sl + 1, ev->id, il);
            r[sl + 1 + il] = '\0';
        } else {
            r[sl] = '\0';
        }
    }
    u->ntop++;
}

/* --------------------------------------------------------------- alerts */

static double round2(double x)
{
    if (x > 1e6)
        x = 1e6;
    return round(x * 100.0) / 100.0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Witnesses agreeing at BIN: the distinct feeds (ev->source) among the
 * counted sources in the corroboration window (when the counted score is
 * elevated) and the elevated probe signals. The signals of one feed
 * ("ioda/bgp", "ioda/ping-slash24": named by the payload's attrs) are
 * scored apart but are one witness: a partner cannot corroborate itself.
 * Fills NAMES with the agreeing signal names (sorted, distinct) when
 * given. */
static int agreeing(const struct rv_agg_engine *e, const struct unit *u, int64_t bin,
                    const char **names, size_t *nnames)
{
    uint16_t wit[SEEN_MAX + 8];
    size_t nw = 0, k = 0;
    bool over = false; /* more distinct witnesses than wit holds */
    double tw = e->p.threshold[1];

#define AGREE(src_)                                                                                    do {                                                                                                   uint16_t s_ = (src_), w_ = e->witness[s_];                                                         bool dup_ = false;                                                                                 if (names) {                                                                                           for (size_t j_ = 0; j_ < k; j_++)                                                                      if (strcmp(names[j_], e->sources[s_]) == 0)                                                            dup_ = true;                                                                               if (!dup_)                                                                                             names[k++] = e->sources[s_];                                                               }                                                                                                  dup_ = false;                                                                                      for (size_t j_ = 0; j_ < nw; j_++)                                                                     if (wit[j_] == w_)                                                                                     dup_ = true;                                                                               if (!dup_) {                                                                                           if (nw < sizeof wit / sizeof wit[0])                                                                   wit[nw++] = w_;                                                                                else                                                                                                   over = true;                                                                               }                                                                                              } while (0)

    if (u->cscore >= tw) {
        for (int i = 0; i < u->nseen; i++)
            if (u->seen[i].last_bin > bin - e->p.corroboration_bins)
                AGREE(u->seen[i].src);
    }
    for (size_t i = 0; i < u->nprobes; i++)
        if (u->probes[i].score >= tw)
            AGREE(u->probes[i].src);
#undef AGREE
    if (names) {
        qsort(names, k, sizeof *names, cmp_str);
        *nnames = k;
    }
    /* past SEEN_MAX + 8 witnesses the count is only used capped at 3 */
    return over ? (int)nw + 1 : (int)nw;
}

static int emit_alert(struct rv_agg_engine *e, struct unit *u, int newlevel, int64_t bin)
{
    char t1[32], t2[32];
    const char **names;
    size_t nnames = 0;
    struct rv_agg_alert a;
    cJSON *o, *arr;
    char *txt;
    int state;

    if (u->level == 0)
        state = RV_AST_OPENED;
    else if (newlevel == 0)
        state = RV_AST_RESOLVED;
    else if (newlevel > u->level)
        state = RV_AST_ESCALATED;
    else
        state = RV_AST_DEESCALATED;
    if (state == RV_AST_OPENED)
        u->opened_ms = e->clock_ms;
    memset(&a, 0, sizeof a);
    a.seq = e->alert_seq + 1;
    a.state = state;
    a.level = newlevel ? newlevel : u->level;
    a.prev_level = u->level;
    a.country = u->country;
    a.violation = u->violation;
    a.admin1 = u->admin1;
    a.score = round2(u->score);
    a.opened_ms = u->opened_ms;
    a.updated_ms = e->clock_ms;
    names = malloc((SEEN_MAX + u->nprobes) * sizeof *names);
    if (names == NULL)
        return RV_ENOMEM;
    agreeing(e, u, bin, names, &nnames);
    o = cJSON_CreateObject();
    if (o == NULL) {
        free(names);
        return RV_ENOMEM;
    }
    cJSON_AddNumberToObject(o, "seq", (double)a.seq);
    cJSON_AddStringToObject(o, "state", state_names[state]);
    cJSON_AddStringToObject(o, "country", u->country);
    cJSON_AddStringToObject(o, "violation", rv_violation_name(u->violation));
    if (u->admin1)
        cJSON_AddStringToObject(o, "admin1", u->admin1);
    else
        cJSON_AddNullToObject(o, "admin1");
    cJSON_AddStringToObject(o, "level", level_names[a.level]);
    cJSON_AddNumberToObject(o, "score", a.score);
    cJSON_AddStringToObject(o, "opened_at", rv_time_format(a.opened_ms, t1, sizeof t1));
    cJSON_AddStringToObject(o, "updated_at", rv_time_format(a.updated_ms, t2, sizeof t2));
    arr = cJSON_AddArrayToObject(o, "evidence");
    for (int i = 0; arr && i < u->ntop; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(u->top[i].ref));
    arr = cJSON_AddArrayToObject(o, "sources");
    for (size_t i = 0; arr && i < nnames; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
    free(names);
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt == NULL)
        return RV_ENOMEM;
    a.json = txt;
    a.len = strlen(txt);
    e->alert_seq++;
    e->st.alerts++;
    if (e->sink.alert)
        e->sink.alert(e->sink.arg, &a);
    free(txt);
    u->level = newlevel;
    u->down = 0;
    if (newlevel == 0)
        u->ntop = 0;
    return RV_OK;
}

static int level_of(const struct rv_agg_engine *e, double score)
{
    for (int l = 3; l >= 1; l--)
        if (score >= e->p.threshold[l])
            return l;
    return 0;
}

/* evaluate() past its quiet case. */
static int evaluate_full(struct rv_agg_engine *e, struct unit *u, int64_t bin, bool closing)
{
    double best, score;
    bool country_probe = false;
    int n, cap, target, hold;

    if (u->npend > 0)
        cscore_settle(e, u);
    best = u->cscore;

    for (size_t i = 0; i < u->nprobes; i++) {
        if (u->probes[i].score > best)
            best = u->probes[i].score;
        if (u->admin1 == NULL && u->violation == RV_V_INTERNET_SHUTDOWN &&
            u->probes[i].score >= e->p.threshold[1])
            country_probe = true;
    }
    n = agreeing(e, u, bin, NULL, NULL);
    score = best * (1.0 + e->p.corroboration_bonus * (n > 1 ? n - 1 : 0));
    cap = country_probe ? 3 : (n < 1 ? 1 : (n > 3 ? 3 : n));
    target = level_of(e, score);
    if (target > cap)
        target = cap;
    hold = level_of(e, score / e->hold_div);
    if (hold > cap)
        hold = cap;
    u->score = score;
    if (target > u->level)
        return emit_alert(e, u, target, bin);
    if (!closing)
        return RV_OK;
    if (hold >= u->level) {
        u->down = 0;
        return RV_OK;
    }
    if (++u->down >= e->p.cooldown_bins)
        return emit_alert(e, u, hold, bin);
    return RV_OK;
}

/* Re-evaluates U at BIN. CLOSING: BIN was just closed (levels may go
 * down); else an event just arrived (levels may only go up). */
static inline int evaluate(struct rv_agg_engine *e, struct unit *u, int64_t bin, bool closing)
{
    if (u->level == 0 && u->nprobes == 0 && u->cscore < e->p.threshold[1]) {
        /* the usual quiet unit, in short: no source agrees below watch
         * (n = 0), so the score is the counted score (x 1.0), below
         * every threshold: nothing to raise, nothing to lower */
        u->score = u->cscore;
        if (closing)
            u->down = 0;
        return RV_OK;
    }
    return evaluate_full(e, u, bin, closing);
}

/* Scores and learns the mean V of a bin (slot of the week SLOT, of the
 * day DSLOT) in probe PR of U. */
static void probe_close(struct rv_agg_engine *e, struct unit *u, struct probe *pr, size_t slot,
                        size_t dslot, double v)
{
    double base, spread, d = 0;
    bool ok = (int64_t)pr->s.nbins >= e->p.warmup_bins &&
              season_get(&pr->s, &e->sk, slot, dslot, false, &base, &spread);
    if (ok) {
        if (u->violation == RV_V_INTERNET_SHUTDOWN) {
            d = base > 0 ? (base - v) / base : 0;
        } else {
            double floor = base > 0.1 ? base : 0.1;
            d = (v - base - e->p.spread_k * spread) / floor;
        }
        if (d > 1)
            d = 1;
        if (d >= e->p.probe_drop_min)
            pr->run += d;
        else
            pr->run = 0;
        pr->score = e->p.probe_scale * pr->run;
    }
    /* an outage is not learnt into the EWMA (the seasonal median
     * shrugs it off) */
    season_learn(&pr->s, &e->sk, slot, dslot, v, v, !(ok && d >= e->p.probe_drop_min));
}

/* Closes BIN in U: scores it, learns it, re-evaluates the alert. */
static int close_unit_bin(struct rv_agg_engine *e, struct unit *u, int64_t bin)
{
    const struct binpos *bp = binpos(e, bin);
    size_t slot = bp->slot, dslot = bp->dslot;
    double base, spread;

    if (u->counted) {
        struct cbin *cb = &u->open[bp->o];
        double x = cb->idx == bin ? cb->x : 0;

        if (x == 0 && u->cusum == 0) {
            /* The common quiet bin, in short: with no count the CUSUM
             * step below is negative, so a CUSUM at 0 stays at 0; the
             * Poisson score of 0 is 0; what is learnt is x itself (the
             * winsorising cap is positive). The same state as the long
             * way, without the baseline. */
            u->cscore = 0;
            u->npend = 0;
            season_learn(&u->s, &e->sk, slot, dslot, x, x, true);
        } else if (counted_baseline(e, u, bin, &base, &spread)) {
            double floor = base > e->p.lambda_min ? base : e->p.lambda_min;
            double sd = spread > sqrt(floor) ? spread : sqrt(floor);
            /* Poisson CUSUM for a shift from lam0 to cusum_k x lam0: the
             * log-likelihood ratio of the bin, divided by the dispersion
             * (quasi-Poisson) so that a noisy series needs more. Clipped
             * at half of cusum_h: one spike is the Poisson test's
             * business; CUSUM is for a sustained shift. */
            double lam0 = floor, phi = spread * spread / lam0;
            double inc = (x * e->log_ck - lam0 * (e->p.cusum_k - 1)) / (phi > 1 ? phi : 1);
            u->cusum += inc > e->p.cusum_h / 2 ? e->p.cusum_h / 2 : inc;
            if (u->cusum < 0)
                u->cusum = 0;
            double cs = u->cusum / e->p.cusum_h * e->p.threshold[2];
            double lam = counted_lam(e, base, spread), tw = e->p.threshold[1];
            u->npend = 0;
            if (x > lam && u->level == 0 && u->nprobes == 0 && cs < tw &&
                poisson_below(&e->lgc, x, lam, tw)) {
                /* owed (cscore_settle): the quiet evaluation below
                 * takes the unit as it is, below watch */
                u->cscore = cs;
                u->pend[0].x = x;
                u->pend[0].lam = lam;
                u->npend = 1;
            } else {
                double ps = ps_of(e, u, x, lam);
                u->cscore = ps > cs ? ps : cs;
            }
            /* winsorise what the EWMA learns so that a burst does not
             * become the new normal at once */
            double cap = base + 3 * sd;
            season_learn(&u->s, &e->sk, slot, dslot, x, x > cap ? cap : x, true);
        } else {
            u->cscore = 0;
            u->npend = 0;
            season_learn(&u->s, &e->sk, slot, dslot, x, x, true);
        }
        u->bl_bin = INT64_MIN;
        if (cb->idx == bin) {
            cb->idx = INT64_MIN;
            cb->x = 0;
            cb->n = 0;
        }
    }
    for (size_t i = 0; i < u->nprobes; i++) {
        struct probe *pr = &u->probes[i];
        struct pbin *pb = &pr->open[bp->o];

        if (pb->idx != bin || pb->n == 0) {
            if (pr->last_data != INT64_MIN && bin - pr->last_data > e->p.probe_stale_bins) {
                pr->run = 0;
                pr->score = 0;
            }
            continue;
        }
        probe_close(e, u, pr, slot, dslot, pb->sum / pb->n);
        pr->last_data = bin;
        pb->idx = INT64_MIN;
        pb->sum = 0;
        pb->n = 0;
    }
    e->st.bins_closed++;
    int rc = evaluate(e, u, bin, true);
    if (u->level == 0)
        u->ntop = 0; /* evidence is what happened since the alert opened */
    return rc;
}

/* Advances the watermark to cover NOW_MS: closes every bin whose end is at
 * or before it, in every unit. */
static int advance(struct rv_agg_engine *e, int64_t now_ms)
{
    int64_t target = floor_div_c(&e->fd_wm, now_ms - e->p.lateness_s * 1000, e->bin_ms);
    int rc;

    while (e->closed < target) {
        const struct binpos *bp = binpos(e, e->closed);
        size_t n = e->nunits;
        /* The records of this bin and of the next two (the events to
         * come are for the next one, and for the one after once its time
         * has come, before the next closing) of unit i sit at index i of
         * their slot: last read a week (a day) ago, asked for a few units
         * on, a few at a time rather than all at once. */
        size_t rs[3], rd[3];
        for (int k = 0; k < 3; k++) {
            rs[k] = mod_of(e->closed + k, e->slots);
            rd[k] = mod_of(e->closed + k, e->dslots);
        }
        for (size_t i = 0; i < n; i++) {
            /* what the closings a few units on will read, asked for now:
             * 600 series do not stay in the cache from one bin to the
             * next */
            if (i + 8 < n)
                __builtin_prefetch(e->units[i + 8]);
            if (i % e->pf_step == 0 && i + 8 < n) {
                for (int k = 0; k < 3; k++) {
                    __builtin_prefetch(arena_rec(e, i + 8, rs[k]));
                    __builtin_prefetch(arena_drec(e, i + 8, rd[k]));
                }
            }
            if (i + 4 < n)
                __builtin_prefetch(e->units[i + 4]->open + bp->o);
            if ((rc = close_unit_bin(e, e->units[i], e->closed)) != RV_OK)
                return rc;
        }
        e->closed++;
    }
    return RV_OK;
}

/* Remembers SRC, counted at BIN, for corroboration. */
static void seen_add(struct unit *u, uint16_t src, int64_t bin)
{
    int i;

    for (i = 0; i < u->nseen; i++)
        if (u->seen[i].src == src)
            break;
    if (i == u->nseen) {
        if (u->nseen < SEEN_MAX) {
            u->nseen++;
        } else {
            /* replace the stalest source */
            int old = 0;
            for (int j = 1; j < SEEN_MAX; j++)
                if (u->seen[j].last_bin < u->seen[old].last_bin)
                    old = j;
            i = old;
        }
        u->seen[i].src = src;
        u->seen[i].last_bin = bin;
    } else if (u->seen[i].last_bin < bin) {
        u->seen[i].last_bin = bin;
    }
}

/* An event for BIN, already closed, inside its source's lateness (the
 * watermark passed it, the source's lateness did not): applied to BIN as
 * far as what is kept allows, the same way live and in replay since it
 * depends only on the log order.
 *   - a probe value closes BIN for its probe signal when the signal had no
 *     data in BIN or after (a day-stamped feed: one value a day): scored
 *     and learnt as a closing would; else it is too late (returns 1);
 *   - a counted event is added to what BIN learnt (the newest record of
 *     its slot of the week, when the series learnt BIN), and BIN's count
 *     is scored against the slot's baseline without BIN (the CUSUM and
 *     the per-day EWMA are not revisited);
 * and the alert is re-evaluated raise-only at BIN, as an early look is:
 * lowering waits for closed bins. Returns 0, 1 (not applied) or an
 * error. */
static int apply_late(struct rv_agg_engine *e, struct unit *u, uint64_t seq,
                      const struct rv_event_view *ev, uint16_t src, int64_t bin)
{
    size_t slot = mod_of(bin, e->slots), dslot = mod_of(bin, e->dslots);
    size_t weeks = (size_t)e->p.weeks;
    double base, spread, w;

    if (u->npend > 0)
        cscore_settle(e, u);
    if (ev->kind == RV_KIND_PROBE && ev->has_value) {
        struct probe *pr = unit_probe(e, u, src);
        if (pr == NULL)
            return RV_ENOMEM;
        if (pr->last_data >= bin)
            return 1;
        w = 0;
        if (season_get(&pr->s, &e->sk, slot, dslot, false, &base, &spread) && base != 0)
            w = fabs(base - ev->value) / fabs(base);
        probe_close(e, u, pr, slot, dslot, ev->value);
        pr->last_data = bin;
        evidence_add(u, w, seq, ev);
        return evaluate(e, u, bin, false);
    }
    if (unit_make_counted(e, u) != RV_OK)
        return RV_ENOMEM;
    w = ev->confidence * (ev->severity / 3.0) *
        (ev->count > 1 ? 1.0 + log10((double)ev->count) : 1.0);
    seen_add(u, src, bin);
    evidence_add(u, w, seq, ev);
    double x = w;
    bool ok;
    uint8_t *fp = s_fp(&u->s, slot, weeks);
    if (bin >= u->cfrom && fp[0] > 0) {
        /* BIN is the newest record of its slot (bin >= closed - slots):
         * the baseline without it, then the record with the event */
        float *r = s_ring(&u->s, slot), t;
        size_t last = (fp[1] + weeks - 1) % weeks, end = (size_t)fp[0] - 1;
        t = r[last];
        r[last] = r[end];
        r[end] = t;
        fp[0]--;
        u->bl_bin = INT64_MIN;
        ok = counted_baseline(e, u, bin, &base, &spread);
        fp[0]++;
        t = r[last];
        r[last] = r[end];
        r[end] = t;
        x = (double)r[last] + w;
        r[last] = (float)x;
    } else {
        u->bl_bin = INT64_MIN;
        ok = counted_baseline(e, u, bin, &base, &spread);
    }
    u->bl_bin = INT64_MIN;
    if (ok)
        return early_look(e, u, bin, x, base, spread);
    return 0;
}

static int early_look(struct rv_agg_engine *e, struct unit *u, int64_t bin, double x, double base,
                      double spread)
{
    double lam = counted_lam(e, base, spread), tw = e->p.threshold[1];

    if (!(x > lam))
        return RV_OK; /* a score of 0: nothing to raise */
    if (u->level == 0 && u->nprobes == 0 && u->cscore < tw &&
        (u->npend > 0 || u->score == u->cscore) && u->npend < PEND_MAX &&
        poisson_below(&e->lgc, x, lam, tw)) {
        /* below watch: evaluate() would only set the score */
        u->pend[u->npend].x = x;
        u->pend[u->npend].lam = lam;
        u->npend++;
        return RV_OK;
    }
    if (u->npend > 0)
        cscore_settle(e, u);
    double ps = ps_of(e, u, x, lam);
    if (ps > u->cscore) {
        double keep = u->cscore;
        u->cscore = ps;
        int rc = evaluate(e, u, bin, false);
        u->cscore = keep > ps ? keep : ps;
        return rc;
    }
    return RV_OK;
}

static int add_event(struct rv_agg_engine *e, struct unit *u, uint64_t seq,
                     const struct rv_event_view *ev, uint16_t src, int64_t bin)
{
    size_t o = open_of(e, bin);

    if (u->cell_bin < bin) {
        u->cell_bin = bin;
        u->cell_n = 0;
        u->cell_x = 0;
    }
    if (ev->kind == RV_KIND_PROBE && ev->has_value) {
        struct probe *pr = unit_probe(e, u, src);
        if (pr == NULL)
            return RV_ENOMEM;
        struct pbin *pb = &pr->open[o];
        if (pb->idx != bin) {
            pb->idx = bin;
            pb->sum = 0;
            pb->n = 0;
        }
        pb->sum += ev->value;
        pb->n++;
        if (u->cell_bin == bin)
            u->cell_n++;
        u->cell_dirty = true;
        /* probe evidence: how far below (or above) its baseline */
        double base, spread, w = 0;
        if (season_get(&pr->s, &e->sk, slot_of(e, bin), dslot_of(e, bin), false, &base, &spread) &&
            base != 0)
            w = fabs(base - ev->value) / fabs(base);
        evidence_add(u, w, seq, ev);
        return RV_OK;
    }
    if (unit_make_counted(e, u) != RV_OK)
        return RV_ENOMEM;
    /* log10(1) is 0: skipped for the usual count of one */
    double w = ev->confidence * (ev->severity / 3.0) *
               (ev->count > 1 ? 1.0 + log10((double)ev->count) : 1.0);
    struct cbin *cb = &u->open[o];
    if (cb->idx != bin) {
        cb->idx = bin;
        cb->x = 0;
        cb->n = 0;
    }
    cb->x += w;
    cb->n++;
    if (u->cell_bin == bin) {
        u->cell_n++;
        u->cell_x += w;
    }
    u->cell_dirty = true;
    seen_add(u, src, bin);
    evidence_add(u, w, seq, ev);
    /* an early look at the open bin: a partial count that is already
     * surprising can only grow */
    double base, spread;
    if (counted_baseline(e, u, bin, &base, &spread))
        return early_look(e, u, bin, cb->x, base, spread);
    return RV_OK;
}

/* The signal source of a probe: its feed, and the datasource when the
 * feed says which (IODA: attrs {"datasource":"bgp"}), since the signals of
 * one feed (BGP, active probing, telescope) have their own units and are
 * scored apart: "ioda/bgp". They are not independent witnesses (the attrs
 * are payload): agreeing() counts their feed once. Written to BUF (SIG_MAX bytes, NUL
 * terminated); returns its length. */
static size_t signal_name(const struct rv_event_view *ev, char *buf)
{
    static const char key[] = "\"datasource\":\"";
    const size_t kl = sizeof key - 1;
    size_t sl = ev->source_len < RV_SOURCE_MAX ? ev->source_len : RV_SOURCE_MAX;
    const char *a = ev->attrs, *p = NULL, *q, *end;

    memcpy(buf, ev->source, sl);
    buf[sl] = '\0';
    if (a == NULL)
        return sl;
    /* attrs is a C string to the engine: it ends at a NUL, if any */
    end = memchr(a, '\0', ev->attrs_len);
    if (end == NULL)
        end = a + ev->attrs_len;
    for (const char *c = a; (size_t)(end - c) >= kl; c++) {
        c = memchr(c, key[0], (size_t)(end - c) - kl + 1);
        if (c == NULL)
            break;
        if (memcmp(c, key, kl) == 0) {
            p = c + kl;
            break;
        }
    }
    if (p == NULL)
        return sl;
    q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL || q == p || q - p > 32)
        return sl;
    buf[sl] = '/';
    memcpy(buf + sl + 1, p, (size_t)(q - p));
    buf[sl + 1 + (size_t)(q - p)] = '\0';
    return sl + 1 + (size_t)(q - p);
}

void rv_agg_engine_set_log_late(struct rv_agg_engine *e, bool on)
{
    e->quiet_late = !on;
    if (on)
        e->late_base = e->st.late; /* the next late one is warned about */
}

int rv_agg_engine_push_view(struct rv_agg_engine *e, uint64_t seq, const struct rv_event_view *ev)
{
    char sig[SIG_MAX];
    int64_t bin = floor_div_c(&e->fd_ev, ev->time_ms, e->bin_ms);
    uint16_t src;
    size_t sigl;
    struct unit *u;
    int rc;

    e->st.events++;
    if (!e->started) {
        e->started = true;
        e->closed = floor_div(ev->time_ms - e->p.lateness_s * 1000, e->bin_ms);
        e->start_bin = e->closed;
    }
    if (ev->time_ms > e->clock_ms || e->clock_ms == INT64_MIN) {
        e->clock_ms = ev->time_ms;
        if ((rc = advance(e, ev->time_ms)) != RV_OK)
            return rc;
    }
    if (ev->time_ms < e->first_ms)
        e->first_ms = ev->time_ms;
    if (ev->kind == RV_KIND_PROBE && ev->has_value) {
        sigl = signal_name(ev, sig);
        rc = source_id(e, sig, sigl,
                       ev->source_len < RV_SOURCE_MAX ? ev->source_len : RV_SOURCE_MAX, &src);
    } else {
        size_t sl = ev->source_len < RV_SOURCE_MAX ? ev->source_len : RV_SOURCE_MAX;
        rc = source_cached(e, ev->source, sl, &src) ? RV_OK : source_id(e, ev->source, sl, sl, &src);
    }
    if (rc != RV_OK)
        return rc;
    if (bin < e->closed) {
        rc = 1;
        /* inside its source's lateness, and BIN still the newest closed
         * bin of its slot of the week */
        if (ev->time_ms >= e->clock_ms - e->late_ms[e->witness[src]] &&
            bin >= e->closed - (int64_t)e->slots) {
            u = unit_national(e, ev->country, ev->violation, bin);
            if (u == NULL) {
                e->st.ignored++;
                return e->full_logged ? RV_OK : RV_ENOMEM;
            }
            if ((rc = apply_late(e, u, seq, ev, src, bin)) < 0)
                return rc;
            if (rc == 0 && e->p.admin1 && ev->admin1_len > 0) {
                u = unit_get(e, ev->country, ev->violation, ev->admin1, ev->admin1_len, bin);
                if (u == NULL) {
                    e->st.ignored++;
                    return e->full_logged ? RV_OK : RV_ENOMEM;
                }
                int rc2 = apply_late(e, u, seq, ev, src, bin);
                if (rc2 < 0)
                    return rc2;
            }
            if (rc == 0) {
                e->st.late_applied++;
                return RV_OK;
            }
        }
        e->st.late++;
        uint64_t k = e->st.late - e->late_base; /* >= 1 */
        if (!e->quiet_late && (k & (k - 1)) == 0) /* 1, 2, 4, 8 ...: bounded noise */
            rv_log_warn("agg",
                        "late event dropped source=%.*s id=%.*s time_ms=%lld watermark_bin_ms=%lld "
                        "late_total=%llu",
                        (int)ev->source_len, ev->source, (int)ev->id_len, ev->id,
                        (long long)ev->time_ms, (long long)(e->closed * e->bin_ms),
                        (unsigned long long)e->st.late);
        return RV_OK;
    }
    u = unit_national(e, ev->country, ev->violation, bin);
    if (u == NULL) {
        e->st.ignored++;
        return e->full_logged ? RV_OK : RV_ENOMEM;
    }
    if ((rc = add_event(e, u, seq, ev, src, bin)) != RV_OK)
        return rc;
    if (e->p.admin1 && ev->admin1_len > 0) {
        u = unit_get(e, ev->country, ev->violation, ev->admin1, ev->admin1_len, bin);
        if (u == NULL) {
            e->st.ignored++;
            return e->full_logged ? RV_OK : RV_ENOMEM;
        }
        if ((rc = add_event(e, u, seq, ev, src, bin)) != RV_OK)
            return rc;
    }
    return RV_OK;
}

int rv_agg_engine_push(struct rv_agg_engine *e, uint64_t seq, const struct rv_event *ev)
{
    struct rv_event_view v;

    rv_event_view_of(ev, &v);
    return rv_agg_engine_push_view(e, seq, &v);
}

/* A JSON number as Debian's cJSON 1.7.15 prints it (null for NaN and
 * infinities, else %1.15g, or %1.17g when that does not read back: -0.0 is
 * "-0"), so that a cell written here is byte for byte what
 * cJSON_PrintUnformatted gave. */
static int cell_num(char *b, size_t cap, double d)
{
    int n;

    if (isnan(d) || isinf(d))
        return snprintf(b, cap, "null");
    n = snprintf(b, cap, "%1.15g", d);
    double t = strtod(b, NULL);
    if (!(fabs(t - d) <= (fabs(t) > fabs(d) ? fabs(t) : fabs(d)) * DBL_EPSILON))
        n = snprintf(b, cap, "%1.17g", d);
    return n;
}

int rv_agg_engine_cells(struct rv_agg_engine *e,
                        void (*cb)(void *arg, const struct rv_agg_cell *c), void *arg)
{
    char t[32], res[32];

    if (e->bin_ms % 86400000 == 0)
        snprintf(res, sizeof res, "%lldd", (long long)(e->bin_ms / 86400000));
    else if (e->bin_ms % 3600000 == 0)
        snprintf(res, sizeof res, "%lldh", (long long)(e->bin_ms / 3600000));
    else if (e->bin_ms % 60000 == 0)
        snprintf(res, sizeof res, "%lldm", (long long)(e->bin_ms / 60000));
    else
        snprintf(res, sizeof res, "%llds", (long long)(e->bin_ms / 1000));
    /* the national units only (a walk of every unit, 100000 with admin1,
     * four times a second was ~5% of the daemon's CPU under load) */
    for (size_t i = 0; i < e->nnat; i++) {
        struct unit *u = e->nat_units[i];
        struct rv_agg_cell c;
        double base = 0, spread = 0;
        int nsrc = 0;
        char txt[512];

        if (!u->cell_dirty || u->admin1 != NULL || u->cell_bin == INT64_MIN)
            continue;
        u->cell_dirty = false;
        if (u->npend > 0)
            cscore_settle(e, u);
        if (!counted_baseline(e, u, u->cell_bin, &base, &spread))
            base = 0;
        for (int k = 0; k < u->nseen; k++)
            if (u->seen[k].last_bin == u->cell_bin)
                nsrc++;
        for (size_t k = 0; k < u->nprobes; k++)
            if (u->probes[k].open[open_of(e, u->cell_bin)].idx == u->cell_bin)
                nsrc++;
        /* written by hand, not through a cJSON tree: 3000 cells four times
         * a second was ~5% of the daemon's CPU under load (the same bytes) */
        {
            char nb[5][40];
            cell_num(nb[0], sizeof nb[0], u->cell_n);
            cell_num(nb[1], sizeof nb[1], round2(u->cell_x));
            cell_num(nb[2], sizeof nb[2], nsrc);
            cell_num(nb[3], sizeof nb[3], round2(base));
            cell_num(nb[4], sizeof nb[4], round2(u->score));
            int n = snprintf(txt, sizeof txt,
                             "{\"country\":\"%s\",\"violation\":\"%s\",\"res\":\"%s\","
                             "\"bin\":\"%s\",\"count\":%s,\"weight\":%s,\"sources\":%s,"
                             "\"baseline\":%s,\"score\":%s,\"level\":\"%s\"}",
                             u->country, rv_violation_name(u->violation), res,
                             rv_time_format(u->cell_bin * e->bin_ms, t, sizeof t), nb[0], nb[1],
                             nb[2], nb[3], nb[4], level_names[u->level]);
            if (n < 0 || (size_t)n >= sizeof txt)
                return RV_ENOMEM;
            c.len = (size_t)n;
        }
        c.country = u->country;
        c.violation = u->violation;
        c.json = txt;
        cb(arg, &c);
    }
    return RV_OK;
}

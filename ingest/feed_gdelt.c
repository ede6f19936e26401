/*
 * feed_gdelt: the GDELT 2.0 events export (data.gdeltproject.org/gdeltv2/
 * YYYYMMDDHHMMSS.export.CSV.zip): 61 tab-separated columns, no header,
 * one event a line. The payload is either the CSV itself or the 15-minute
 * zip (detected by its "PK\3\4" signature and unpacked in memory with
 * libzip).
 *
 * Only a few CAMEO codes describe human-rights violations; the table
 * below maps them to the taxonomy. Everything else (cooperation, verbal
 * conflict, protests themselves ...) is skipped without a reject: an
 * export is mostly such rows. A skipped row is only checked for its
 * column count; a mapped row is checked field by field and rejected with
 * a "COLUMN: reason" message when a field it needs is bad.
 *
 * GDELT is machine-coded news, so every event is kind "news", count 1,
 * and its confidence grows with the number of independent sources.
 *
 * When sink->emit answers non-zero the parse stops: a positive answer
 * returns RV_OK, a negative one is returned as is ("emit: ..." in ERR), so
 * that a caller does not move its cursor past events it did not take.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <zip.h>

#include "rv/country.h"
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

/* Columns of the GDELT 2.0 event table, 0-based (GDELT-Event_Codebook-V2.0). */
enum {
    GD_GLOBALEVENTID = 0,
    GD_SQLDATE = 1,
    GD_ACTOR1NAME = 6,
    GD_ACTOR2NAME = 16,
    GD_EVENTCODE = 26,
    GD_EVENTBASECODE = 27,
    GD_EVENTROOTCODE = 28,
    GD_QUADCLASS = 29,
    GD_GOLDSTEIN = 30,
    GD_NUMMENTIONS = 31,
    GD_NUMSOURCES = 32,
    GD_NUMARTICLES = 33,
    GD_AVGTONE = 34,
    GD_ACTOR1GEO_TYPE = 35,  /* the Actor1Geo block: type, fullname, country, adm1, */
    GD_ACTION_GEO_TYPE = 51, /* adm2, lat, long, featureid; ActionGeo the same */
    GD_DATEADDED = 59,
    GD_SOURCEURL = 60,
    GD_COLUMNS = 61
};

/* Offsets inside a Geo block (Actor1Geo_*, Actor2Geo_*, ActionGeo_*). */
enum { GEO_TYPE = 0, GEO_FULLNAME = 1, GEO_COUNTRY = 2, GEO_ADM1 = 3, GEO_LAT = 5, GEO_LONG = 6 };

/* Largest unzipped export we accept. A real 15-minute export is 1-10 MB;
 * the cap stops a zip bomb. */
#define GDELT_MAX_UNZIPPED (256u * 1024u * 1024u)

/* SQLDATE older than this before DATEADDED: GDELT dated the event from a
 * retrospective mention ("in 2007 ..."); the news is about now. */
#define GDELT_MAX_AGE_MS (30LL * 86400 * 1000)

#define SKIP (-1)

/*
 * CAMEO (Conflict and Mediation Event Observations, codebook 1.1b3) code
 * -> taxonomy. A row is looked up by EventCode, then EventBaseCode, then
 * EventRootCode; the first hit wins, so a SKIP entry on a specific code
 * overrides its root. Codes absent from the table are skipped.
 *
 * Judgement calls, since GDELT does not say who the victims are:
 * - root 14 (protest) is skipped entirely: protesting, including 145
 *   "protest violently, riot", is the protesters' act, not a violation;
 *   its repression is coded 175 or 1723/1724 and mapped below;
 * - 173 "arrest, detain, or charge" includes ordinary criminal arrests:
 *   mapped to arbitrary_detention, with the source-based confidence to
 *   weigh it;
 * - 18x (unconventional violence) and 19x (conventional military force)
 *   are attack_on_civilians, except the codes that name the act (abduct,
 *   sexual assault, torture, kill, assassinate); whether the target was a
 *   civilian is not knowable from the row;
 * - 20x (unconventional mass violence) is killing, except 201 mass
 *   expulsion (displacement).
 */
struct cameo_map {
    const char *code;  /* CAMEO code, leading zeros kept */
    int violation;     /* enum rv_violation, or SKIP */
    const char *label; /* CAMEO name, lower case: goes into the title */
};

static const struct cameo_map cameo_table[] = {
    /* 14 PROTEST: not a violation in itself (see above). */
    {"14", SKIP, "engage in political dissent"},
    /* 17 COERCE */
    {"170", SKIP, "coerce, not specified below"},
    {"171", SKIP, "seize or damage property, not specified below"},
    {"1711", SKIP, "confiscate property"},
    {"1712", RV_V_ATTACK_ON_CIVILIANS, "destroy property"},
    {"172", SKIP, "impose administrative sanctions, not specified below"},
    {"1721", RV_V_EXPRESSION_RESTRICTION, "impose restrictions on political freedoms"},
    {"1722", RV_V_EXPRESSION_RESTRICTION, "ban political parties or politicians"},
    {"1723", RV_V_ASSEMBLY_REPRESSION, "impose curfew"},
    {"1724", RV_V_ASSEMBLY_REPRESSION, "impose state of emergency or martial law"},
    {"173", RV_V_ARBITRARY_DETENTION, "arrest, detain, or charge with legal action"},
    {"174", RV_V_DISPLACEMENT, "expel or deport individuals"},
    {"175", RV_V_ASSEMBLY_REPRESSION, "use tactics of violent repression"},
    {"17", SKIP, "coerce"},
    /* 18 ASSAULT */
    {"180", RV_V_ATTACK_ON_CIVILIANS, "use unconventional violence, not specified below"},
    {"181", RV_V_ENFORCED_DISAPPEARANCE, "abduct, hijack, or take hostage"},
    {"182", RV_V_ATTACK_ON_CIVILIANS, "physically assault, not specified below"},
    {"1821", RV_V_SEXUAL_VIOLENCE, "sexually assault"},
    {"1822", RV_V_TORTURE, "torture"},
    {"1823", RV_V_KILLING, "kill by physical assault"},
    {"183", RV_V_ATTACK_ON_CIVILIANS, "conduct suicide, car, or other non-military bombing"},
    {"1831", RV_V_ATTACK_ON_CIVILIANS, "carry out suicide bombing"},
    {"1832", RV_V_ATTACK_ON_CIVILIANS, "carry out vehicular bombing"},
    {"1833", RV_V_ATTACK_ON_CIVILIANS, "carry out roadside bombing"},
    {"1834", RV_V_ATTACK_ON_CIVILIANS, "carry out location bombing"},
    {"184", RV_V_ATTACK_ON_CIVILIANS, "use as human shield"},
    {"185", RV_V_ATTACK_ON_CIVILIANS, "attempt to assassinate"},
    {"186", RV_V_KILLING, "assassinate"},
    {"18", RV_V_ATTACK_ON_CIVILIANS, "assault"},
    /* 19 FIGHT */
    {"190", RV_V_ATTACK_ON_CIVILIANS, "use conventional military force, not specified below"},
    {"191", RV_V_ATTACK_ON_CIVILIANS, "impose blockade, restrict movement"},
    {"192", SKIP, "occupy territory"},
    {"193", RV_V_ATTACK_ON_CIVILIANS, "fight with small arms and light weapons"},
    {"194", RV_V_ATTACK_ON_CIVILIANS, "fight with artillery and tanks"},
    {"195", RV_V_ATTACK_ON_CIVILIANS, "employ aerial weapons"},
    {"196", SKIP, "violate ceasefire"},
    {"19", RV_V_ATTACK_ON_CIVILIANS, "fight"},
    /* 20 USE UNCONVENTIONAL MASS VIOLENCE */
    {"200", RV_V_KILLING, "use unconventional mass violence, not specified below"},
    {"201", RV_V_DISPLACEMENT, "engage in mass expulsion"},
    {"202", RV_V_KILLING, "engage in mass killings"},
    {"203", RV_V_KILLING, "engage in ethnic cleansing"},
    {"204", RV_V_KILLING, "use weapons of mass destruction, not specified below"},
    {"2041", RV_V_KILLING, "use chemical, biological, or radiological weapons"},
    {"2042", RV_V_KILLING, "detonate nuclear weapons"},
    {"20", RV_V_KILLING, "use unconventional mass violence"},
};

/* A field of the current line: not NUL-terminated. */
struct field {
    const char *p;
    size_t n;
};

static bool field_eq(struct field f, const char *s)
{
    size_t n = strlen(s);

    return f.n == n && memcmp(f.p, s, n) == 0;
}

static const struct cameo_map *cameo_find(struct field f)
{
    size_t i;

    if (f.n == 0)
        return NULL;
    for (i = 0; i < sizeof cameo_table / sizeof cameo_table[0]; i++)
        if (field_eq(f, cameo_table[i].code))
            return &cameo_table[i];
    return NULL;
}

/* EventCode, then EventBaseCode, then EventRootCode. */
static const struct cameo_map *cameo_lookup(const struct field *col)
{
    const struct cameo_map *m = cameo_find(col[GD_EVENTCODE]);

    if (!m)
        m = cameo_find(col[GD_EVENTBASECODE]);
    if (!m)
        m = cameo_find(col[GD_EVENTROOTCODE]);
    return m;
}

/* Copies F into BUF (CAP > 0) NUL-terminated, truncated if needed. */
static const char *field_str(struct field f, char *buf, size_t cap)
{
    size_t n = f.n < cap - 1 ? f.n : cap - 1;

    memcpy(buf, f.p, n);
    buf[n] = '\0';
    return buf;
}

static bool parse_digits(struct field f, size_t min, size_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (f.n < min || f.n > max)
        return false;
    for (i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(f.p[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_double(struct field f, double *out)
{
    char buf[64];
    char *end;
    double v;

    if (f.n == 0 || f.n >= sizeof buf)
        return false;
    field_str(f, buf, sizeof buf);
    if (isspace((unsigned char)buf[0]))
        return false;
    errno = 0;
    v = strtod(buf, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Two digits at P as an int. */
static int two(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* "YYYYMMDD" at 00:00Z, or "YYYYMMDDHHMMSS". */
static int parse_gdelt_time(struct field f, bool with_clock, int64_t *ms)
{
    uint64_t unused;
    int y, h = 0, mi = 0, s = 0;

    if (!parse_digits(f, with_clock ? 14 : 8, with_clock ? 14 : 8, &unused))
        return RV_EINVAL;
    y = two(f.p) * 100 + two(f.p + 2);
    if (with_clock) {
        h = two(f.p + 8);
        mi = two(f.p + 10);
        s = two(f.p + 12);
    }
    return rv_time_from_civil(y, two(f.p + 4), two(f.p + 6), h, mi, s, ms);
}

/* Cuts S (length N, NUL at N) back to a whole UTF-8 character. */
static void utf8_cut(char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = '\0';
}

/*
 * Severity 1..5 from the Goldstein scale (-10 most destabilising, +10
 * most cooperative): 1 + ceil(-G / 2.5), clamped. -10 -> 5, -9 -> 5,
 * -7 -> 4, -5 -> 3, -2 -> 2, 0 and above -> 1. All mapped CAMEO codes
 * are QuadClass 4 (material conflict) with G between -10 and -5.
 */
static uint8_t severity_from_goldstein(double g)
{
    double s = 1.0 + ceil(-g / 2.5);

    if (s < 1.0)
        return 1;
    if (s > 5.0)
        return 5;
    return (uint8_t)s;
}

/*
 * Confidence from the coverage in GDELT's first 15 minutes: a single
 * article is machine-coded hearsay (0.3); each further independent source
 * adds 0.15 and each further article 0.05, capped at 1. One source and 10
 * articles -> 0.75; 3 sources and 18 articles -> 1.
 */
static double confidence_from_coverage(uint64_t sources, uint64_t articles)
{
    double c = 0.3;

    if (sources > 1)
        c += 0.15 * (double)(sources - 1 > 100 ? 100 : sources - 1);
    if (articles > sources)
        c += 0.05 * (double)(articles - sources > 100 ? 100 : articles - sources);
    return c > 1.0 ? 1.0 : c;
}

/*
 * The admin1 name from a Geo FullName: "Texas, United States" for a state
 * (type 2 US state, 5 world state); "Edinburg, Texas, United States" for a
 * city (type 3 US city, 4 world city) when it has three parts. Country
 * level (type 1) and anything else: "".
 */
static void admin1_from_fullname(struct field type, struct field name, char *out, size_t cap)
{
    const char *c1, *c2 = NULL, *start, *end;
    size_t n;

    out[0] = '\0';
    c1 = memchr(name.p, ',', name.n);
    if (!c1)
        return;
    if (field_eq(type, "2") || field_eq(type, "5")) {
        start = name.p;
        end = c1;
    } else if (field_eq(type, "3") || field_eq(type, "4")) {
        c2 = memchr(c1 + 1, ',', name.n - (size_t)(c1 + 1 - name.p));
        if (!c2 || memchr(c2 + 1, ',', name.n - (size_t)(c2 + 1 - name.p)))
            return;
        start = c1 + 1;
        end = c2;
    } else {
        return;
    }
    while (start < end && *start == ' ')
        start++;
    while (end > start && end[-1] == ' ')
        end--;
    n = (size_t)(end - start);
    if (n >= cap) {
        memcpy(out, start, cap - 1);
        utf8_cut(out, cap - 1);
        return;
    }
    memcpy(out, start, n);
    out[n] = '\0';
}

static char *title_new(const struct field *col, const struct cameo_map *m)
{
    char buf[RV_TITLE_MAX];
    struct field a1 = col[GD_ACTOR1NAME], a2 = col[GD_ACTOR2NAME];
    int n;

    n = snprintf(buf, sizeof buf, "%.*s%s%s%s%.*s", (int)(a1.n < 512 ? a1.n : 512), a1.p,
                 a1.n ? " - " : "", m->label, a2.n ? " - " : "", (int)(a2.n < 400 ? a2.n : 400),
                 a2.p);
    if (n < 0)
        return NULL;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    utf8_cut(buf, (size_t)n);
    return strdup(buf);
}

static bool is_http_url(struct field f)
{
    return (f.n > 7 && memcmp(f.p, "http://", 7) == 0) ||
           (f.n > 8 && memcmp(f.p, "https://", 8) == 0);
}

/* A CAMEO code column as text: itself when it is 1-4 digits, else the
 * code the row matched (attrs must stay valid UTF-8). */
static const char *cameo_text(struct field f, const struct cameo_map *m, char *buf)
{
    uint64_t unused;

    if (!parse_digits(f, 1, 4, &unused))
        return m->code;
    return field_str(f, buf, 8);
}

/* The row's numbers as attrs (compact JSON, malloc'd), or NULL on ENOMEM. */
static char *attrs_new(const struct field *col, const struct cameo_map *m, uint64_t quad,
                       double goldstein, uint64_t mentions, uint64_t sources, uint64_t articles,
                       double tone, struct field adm1)
{
    char code[16], buf[32];
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    size_t i;

    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject(o, "cameo", cameo_text(col[GD_EVENTCODE], m, code)) ||
        !cJSON_AddStringToObject(o, "cameo_root", cameo_text(col[GD_EVENTROOTCODE], m, code)) ||
        !cJSON_AddNumberToObject(o, "quad_class", (double)quad) ||
        !cJSON_AddNumberToObject(o, "goldstein", goldstein) ||
        !cJSON_AddNumberToObject(o, "num_mentions", (double)mentions) ||
        !cJSON_AddNumberToObject(o, "num_sources", (double)sources) ||
        !cJSON_AddNumberToObject(o, "num_articles", (double)articles) ||
        !cJSON_AddNumberToObject(o, "avg_tone", round(tone * 1000.0) / 1000.0) ||
        !cJSON_AddStringToObject(o, "sqldate", field_str(col[GD_SQLDATE], buf, sizeof buf)) ||
        !cJSON_AddStringToObject(o, "dateadded", field_str(col[GD_DATEADDED], buf, sizeof buf)))
        goto done;
    /* FIPS ADM1 codes are letters and digits; anything else is not one
     * (and attrs must stay valid UTF-8) */
    for (i = 0; i < adm1.n && isalnum((unsigned char)adm1.p[i]); i++)
        ;
    if (adm1.n > 0 && i == adm1.n &&
        !cJSON_AddStringToObject(o, "adm1", field_str(adm1, buf, sizeof buf)))
        goto done;
    text = cJSON_PrintUnformatted(o);
done:
    cJSON_Delete(o);
    return text;
}

/* A row with a mapped CAMEO code -> EV (initialised by the caller).
 * Errors: RV_EINVAL with ERR = the reject message, RV_ENOMEM. */
static int row_to_event(const struct field *col, const struct cameo_map *m, struct rv_event *ev,
                        struct rv_errbuf *err)
{
    char tmp[64];
    const struct field *geo = col + GD_ACTION_GEO_TYPE;
    const char *iso;
    uint64_t id, quad, mentions, sources, articles;
    int64_t sql_ms, added_ms;
    double goldstein, tone, lat, lon;

    if (!parse_digits(col[GD_GLOBALEVENTID], 1, 20, &id))
        return rv_err_set(err, RV_EINVAL, "GLOBALEVENTID: '%s' is not a number",
                          field_str(col[GD_GLOBALEVENTID], tmp, 24));
    if (parse_gdelt_time(col[GD_SQLDATE], false, &sql_ms) != RV_OK)
        return rv_err_set(err, RV_EINVAL, "SQLDATE: '%s' is not a date YYYYMMDD",
                          field_str(col[GD_SQLDATE], tmp, 24));
    if (parse_gdelt_time(col[GD_DATEADDED], true, &added_ms) != RV_OK)
        return rv_err_set(err, RV_EINVAL, "DATEADDED: '%s' is not a time YYYYMMDDHHMMSS",
                          field_str(col[GD_DATEADDED], tmp, 24));
    if (!parse_digits(col[GD_QUADCLASS], 1, 1, &quad) || quad < 1 || quad > 4)
        return rv_err_set(err, RV_EINVAL, "QuadClass: '%s' is not 1-4",
                          field_str(col[GD_QUADCLASS], tmp, 24));
    if (!parse_double(col[GD_GOLDSTEIN], &goldstein) || goldstein < -10.0 || goldstein > 10.0)
        return rv_err_set(err, RV_EINVAL, "GoldsteinScale: '%s' is not a number in -10..10",
                          field_str(col[GD_GOLDSTEIN], tmp, 24));
    if (!parse_digits(col[GD_NUMMENTIONS], 1, 9, &mentions))
        return rv_err_set(err, RV_EINVAL, "NumMentions: '%s' is not a count",
                          field_str(col[GD_NUMMENTIONS], tmp, 24));
    if (!parse_digits(col[GD_NUMSOURCES], 1, 9, &sources))
        return rv_err_set(err, RV_EINVAL, "NumSources: '%s' is not a count",
                          field_str(col[GD_NUMSOURCES], tmp, 24));
    if (!parse_digits(col[GD_NUMARTICLES], 1, 9, &articles))
        return rv_err_set(err, RV_EINVAL, "NumArticles: '%s' is not a count",
                          field_str(col[GD_NUMARTICLES], tmp, 24));
    if (!parse_double(col[GD_AVGTONE], &tone))
        return rv_err_set(err, RV_EINVAL, "AvgTone: '%s' is not a number",
                          field_str(col[GD_AVGTONE], tmp, 24));

    /* Where it happened: ActionGeo; when GDELT found no place for the
     * action, the place of Actor1. Coordinates come from the same block
     * as the country so that they agree. */
    if (geo[GEO_COUNTRY].n == 0)
        geo = col + GD_ACTOR1GEO_TYPE;
    if (geo[GEO_COUNTRY].n == 0)
        return rv_err_set(err, RV_EINVAL, "country: no ActionGeo country");
    field_str(geo[GEO_COUNTRY], tmp, 8);
    iso = rv_country_from_fips(tmp);
    if (!iso)
        return rv_err_set(err, RV_EINVAL, "country: FIPS 10-4 '%s' has no ISO 3166-1 country", tmp);
    memcpy(ev->country, iso, 2);
    ev->country[2] = '\0';
    if (geo[GEO_LAT].n > 0 || geo[GEO_LONG].n > 0) {
        if (!parse_double(geo[GEO_LAT], &lat))
            return rv_err_set(err, RV_EINVAL, "lat: '%s' is not a number",
                              field_str(geo[GEO_LAT], tmp, 24));
        if (!parse_double(geo[GEO_LONG], &lon))
            return rv_err_set(err, RV_EINVAL, "lon: '%s' is not a number",
                              field_str(geo[GEO_LONG], tmp, 24));
        ev->has_geo = true;
        ev->lat = lat;
        ev->lon = lon;
    }
    admin1_from_fullname(geo[GEO_TYPE], geo[GEO_FULLNAME], ev->admin1, sizeof ev->admin1);

    if ((size_t)snprintf(ev->id, sizeof ev->id, "gdelt-%llu", (unsigned long long)id) >=
        sizeof ev->id)
        return rv_err_set(err, RV_EINVAL, "GLOBALEVENTID: too long");
    ev->kind = RV_KIND_NEWS;
    ev->violation = (uint8_t)m->violation;
    ev->count = 1;
    ev->severity = severity_from_goldstein(goldstein);
    ev->confidence = confidence_from_coverage(sources ? sources : 1, articles);
    /* Event time is SQLDATE (the day the event happened, per GDELT),
     * unless that is more than 30 days before GDELT saw it, or after it:
     * then the article is about something old, or the date is wrong, and
     * DATEADDED is the better guess for when it mattered. */
    if (added_ms - sql_ms > GDELT_MAX_AGE_MS || sql_ms > added_ms)
        ev->time_ms = added_ms;
    else
        ev->time_ms = sql_ms;

    ev->title = title_new(col, m);
    if (!ev->title)
        return rv_err_set(err, RV_ENOMEM, "title: out of memory");
    if (is_http_url(col[GD_SOURCEURL]) && col[GD_SOURCEURL].n <= RV_URL_MAX) {
        ev->url = strndup(col[GD_SOURCEURL].p, col[GD_SOURCEURL].n);
        if (!ev->url)
            return rv_err_set(err, RV_ENOMEM, "url: out of memory");
    }
    ev->attrs =
        attrs_new(col, m, quad, goldstein, mentions, sources, articles, tone, geo[GEO_ADM1]);
    if (!ev->attrs)
        return rv_err_set(err, RV_ENOMEM, "attrs: out of memory");
    return RV_OK;
}

/* Splits LINE (no line end) on tabs into COL[GD_COLUMNS]; returns the
 * number of columns found (may exceed GD_COLUMNS; extra ones not stored). */
static size_t split_tabs(const char *p, size_t n, struct field *col)
{
    size_t k = 0;
    const char *end = p + n;

    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *stop = tab ? tab : end;

        if (k < GD_COLUMNS) {
            col[k].p = p;
            col[k].n = (size_t)(stop - p);
        }
        k++;
        if (!tab)
            return k;
        p = tab + 1;
    }
}

/* True when LINE looks like an event row at all: a numeric
 * GLOBALEVENTID then a tab, or 61 columns. Tells a GDELT export from
 * another payload by its first line; later lines are checked one by one. */
static bool looks_like_gdelt(const char *p, size_t n)
{
    struct field col[GD_COLUMNS];
    size_t i = 0;

    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    if (i > 0 && i < n && p[i] == '\t')
        return true;
    return split_tabs(p, n, col) == GD_COLUMNS;
}

static int parse_text(const char *buf, size_t len, const struct rv_feed_sink *sink,
                      struct rv_errbuf *err)
{
    struct field col[GD_COLUMNS];
    struct rv_errbuf rerr;
    struct rv_event ev;
    size_t off = 0, line = 0;
    bool first = true;
    int rc;

    while (off < len) {
        const char *p = buf + off;
        const char *nl = memchr(p, '\n', len - off);
        size_t n = nl ? (size_t)(nl - p) : len - off;
        const struct cameo_map *m;
        size_t k;

        off += n + (nl ? 1 : 0);
        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            continue; /* blank line, e.g. a trailing CRLF */
        if (first) {
            if (!looks_like_gdelt(p, n))
                return rv_err_set(err, RV_EINVAL,
                                  "gdelt: line %zu is not an event row (61 tab-separated "
                                  "columns, GLOBALEVENTID first)",
                                  line);
            first = false;
        }
        k = split_tabs(p, n, col);
        if (k != GD_COLUMNS) {
            rv_err_set(&rerr, RV_EINVAL, "columns: expected %d, got %zu", GD_COLUMNS, k);
            sink->reject(sink->arg, line, rerr.msg);
            continue;
        }
        m = cameo_lookup(col);
        if (!m || m->violation == SKIP)
            continue;
        rv_event_init(&ev);
        rv_err_clear(&rerr);
        rc = row_to_event(col, m, &ev, &rerr);
        if (rc == RV_ENOMEM) {
            rv_event_release(&ev);
            return rv_err_set(err, RV_ENOMEM, "gdelt: out of memory at line %zu", line);
        }
        if (rc == RV_OK) {
            memcpy(ev.source, sink->source, strlen(sink->source) + 1);
            rc = rv_event_validate(&ev, &rerr);
        }
        if (rc != RV_OK) {
            sink->reject(sink->arg, line, rerr.msg);
            rv_event_release(&ev);
            continue;
        }
        rc = sink->emit(sink->arg, &ev);
        if (rc < 0)
            return rv_err_set(err, rc, "emit: the sink stopped the parse at line %zu", line);
        if (rc > 0)
            break; /* the sink has enough: not an error */
    }
    return RV_OK;
}

/* The one CSV entry of a GDELT zip, unpacked into *OUT (malloc'd, yours). */
static int unzip_export(const char *buf, size_t len, char **out, size_t *out_len,
                        struct rv_errbuf *err)
{
    zip_error_t ze;
    zip_source_t *src;
    zip_t *za = NULL;
    zip_file_t *zf = NULL;
    zip_stat_t st;
    zip_int64_t entries, i, pick = -1, got;
    char *data = NULL;
    size_t size = 0;
    int rc = RV_EINVAL;

    zip_error_init(&ze);
    src = zip_source_buffer_create(buf, len, 0, &ze);
    if (!src) {
        rc = rv_err_set(err, RV_ENOMEM, "zip: %s", zip_error_strerror(&ze));
        goto fail;
    }
    za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        zip_source_free(src);
        rc = rv_err_set(err, RV_EINVAL, "zip: %s", zip_error_strerror(&ze));
        goto fail;
    }
    entries = zip_get_num_entries(za, 0);
    for (i = 0; i < entries && pick < 0; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        size_t nl = name ? strlen(name) : 0;

        if (nl > 4 && strcasecmp(name + nl - 4, ".csv") == 0)
            pick = i;
    }
    if (pick < 0 && entries == 1)
        pick = 0;
    if (pick < 0) {
        rc = rv_err_set(err, RV_EINVAL, "zip: no .CSV entry among %lld",
                        (long long)(entries < 0 ? 0 : entries));
        goto fail;
    }
    zip_stat_init(&st);
    if (zip_stat_index(za, (zip_uint64_t)pick, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        rc = rv_err_set(err, RV_EINVAL, "zip: %s", zip_strerror(za));
        goto fail;
    }
    if (st.size > GDELT_MAX_UNZIPPED) {
        rc = rv_err_set(err, RV_ETOOBIG, "zip: entry of %llu bytes is past the %u byte cap",
                        (unsigned long long)st.size, GDELT_MAX_UNZIPPED);
        goto fail;
    }
    data = malloc((size_t)st.size + 1);
    if (!data) {
        rc = rv_err_set(err, RV_ENOMEM, "zip: out of memory");
        goto fail;
    }
    zf = zip_fopen_index(za, (zip_uint64_t)pick, 0);
    if (!zf) {
        rc = rv_err_set(err, RV_EINVAL, "zip: %s", zip_strerror(za));
        goto fail;
    }
    /* Read to EOF (one byte of slack) so that libzip checks the CRC and a
     * lying size shows. */
    while ((got = zip_fread(zf, data + size, (zip_uint64_t)(st.size + 1 - size))) > 0) {
        size += (size_t)got;
        if (size > st.size)
            break;
    }
    if (got < 0 || size != st.size) {
        rc = rv_err_set(err, RV_EINVAL, "zip: %s",
                        got < 0 ? zip_file_strerror(zf) : "entry size does not match its data");
        goto fail;
    }
    zip_fclose(zf);
    zip_discard(za);
    *out = data;
    *out_len = size;
    return RV_OK;
fail:
    if (zf)
        zip_fclose(zf);
    if (za)
        zip_discard(za);
    free(data);
    return rc;
}

int rv_feed_parse_gdelt(const char *buf, size_t len, const struct rv_feed_sink *sink,
                        struct rv_errbuf *err)
{
    char *text = NULL;
    size_t text_len = 0;
    int rc;

    rv_err_clear(err);
    if (!sink || !sink->emit || !sink->reject || !sink->source || !sink->source[0] ||
        strlen(sink->source) > RV_SOURCE_MAX)
        return rv_err_set(err, RV_EINVAL, "source: missing or longer than %d bytes", RV_SOURCE_MAX);
    if (!buf && len > 0)
        return rv_err_set(err, RV_EINVAL, "gdelt: no payload");
    if (len >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0) {
        rc = unzip_export(buf, len, &text, &text_len, err);
        if (rc != RV_OK)
            return rc;
        rc = parse_text(text, text_len, sink, err);
        free(text);
        return rc;
    }
    return parse_text(buf, len, sink, err);
}

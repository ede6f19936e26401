/*
 * feed_acled: ACLED (Armed Conflict Location & Event Data) rows, from the
 * Data Export Tool CSV or the API's JSON envelope
 * (`{"status":200,"success":true,...,"data":[{...}]}`, every value a
 * string).
 *
 * CSV is RFC 4180 (quoted fields may hold commas, doubled quotes and line
 * breaks; LF or CRLF; an optional UTF-8 BOM). Columns are found by header
 * name, so the 31-column export and the 32-column one with
 * population_best both work. A record's number is the line it starts on
 * (the header is line 1); in JSON it is the 1-based index in data[].
 *
 * event_type / sub_event_type map to the taxonomy through the table
 * below; rows that describe no violation (peaceful protests, battles
 * between armed groups, agreements ...) are skipped without a reject.
 *
 * When sink->emit answers non-zero the parse stops: a positive answer
 * returns RV_OK, a negative one is returned as is ("emit: ..." in ERR).
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

#include "rv/country.h"
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include "feed_json.h"

/* The columns we read, by ACLED's header names. */
enum {
    AC_EVENT_ID,
    AC_EVENT_DATE,
    AC_TIME_PRECISION,
    AC_DISORDER_TYPE,
    AC_EVENT_TYPE,
    AC_SUB_EVENT_TYPE,
    AC_ACTOR1,
    AC_ACTOR2,
    AC_CIVILIAN_TARGETING,
    AC_ISO,
    AC_COUNTRY,
    AC_ADMIN1,
    AC_LOCATION,
    AC_LATITUDE,
    AC_LONGITUDE,
    AC_SOURCE,
    AC_NOTES,
    AC_FATALITIES,
    AC_TIMESTAMP,
    AC_NCOLS
};

static const char *const ac_names[AC_NCOLS] = {
    "event_id_cnty",  "event_date", "time_precision", "disorder_type",      "event_type",
    "sub_event_type", "actor1",     "actor2",         "civilian_targeting", "iso",
    "country",        "admin1",     "location",       "latitude",           "longitude",
    "source",         "notes",      "fatalities",     "timestamp",
};

/* A CSV export without these is not an ACLED export. */
static const int ac_required[] = {AC_EVENT_ID, AC_EVENT_DATE, AC_EVENT_TYPE, AC_SUB_EVENT_TYPE,
                                  AC_ISO,      AC_COUNTRY,    AC_FATALITIES};

/* One row: each column NUL-terminated, "" when absent. */
struct acled_row {
    const char *v[AC_NCOLS];
};

#define SKIP (-1)
#define SAME (-2)
#define ROW_SKIPPED 1

/* Conditions on a table entry. */
#define NEED_CIVILIAN 1u     /* civilian_targeting is set */
#define NEED_DISPLACEMENT 2u /* notes start with "Displacement" */

/* Attr strings are cut to this many bytes (notes can run long). */
#define ATTR_STR_MAX 1000

/*
 * event_type / sub_event_type (ACLED codebook 2023) -> taxonomy. The
 * first entry whose types and conditions match wins; sub NULL matches any
 * sub-event type; SKIP = not a violation. IF_FATAL is the violation when
 * fatalities > 0 (SAME: unchanged). SEVERITY is a floor, raised by
 * fatalities (see severity_of).
 *
 * Judgement calls:
 * - Battles and Explosions/Remote violence are fights between armed
 *   parties; only when ACLED flags civilian_targeting are they an attack
 *   on civilians (deaths stay in count, the violation stays the attack);
 * - Riots are the rioters' violence: skipped unless civilian_targeting
 *   (mob violence against civilians);
 * - Arrests include lawful ones; ACLED codes only politically relevant
 *   arrests, so they are arbitrary_detention;
 * - Strategic developments/Other is a catch-all; only displacement notes
 *   ("Displacement: ...") are used.
 */
struct acled_map {
    const char *type;
    const char *sub;  /* NULL: any */
    unsigned need;    /* NEED_* */
    int violation;    /* enum rv_violation or SKIP */
    int if_fatal;     /* enum rv_violation or SAME */
    uint8_t severity; /* floor, 1..5 */
};

static const struct acled_map acled_table[] = {
    {"Violence against civilians", "Attack", 0, RV_V_ATTACK_ON_CIVILIANS, RV_V_KILLING, 3},
    {"Violence against civilians", "Abduction/forced disappearance", 0, RV_V_ENFORCED_DISAPPEARANCE,
     SAME, 4},
    {"Violence against civilians", "Sexual violence", 0, RV_V_SEXUAL_VIOLENCE, SAME, 4},
    {"Violence against civilians", NULL, 0, RV_V_ATTACK_ON_CIVILIANS, RV_V_KILLING, 3},
    {"Protests", "Excessive force against protesters", 0, RV_V_ASSEMBLY_REPRESSION, SAME, 3},
    {"Protests", "Protest with intervention", 0, RV_V_ASSEMBLY_REPRESSION, SAME, 2},
    {"Protests", "Peaceful protest", 0, SKIP, SAME, 1},
    {"Protests", NULL, 0, SKIP, SAME, 1},
    {"Riots", NULL, NEED_CIVILIAN, RV_V_ATTACK_ON_CIVILIANS, SAME, 3},
    {"Riots", NULL, 0, SKIP, SAME, 1},
    {"Strategic developments", "Arrests", 0, RV_V_ARBITRARY_DETENTION, SAME, 2},
    {"Strategic developments", "Other", NEED_DISPLACEMENT, RV_V_DISPLACEMENT, SAME, 3},
    {"Strategic developments", "Looting/property destruction", NEED_CIVILIAN,
     RV_V_ATTACK_ON_CIVILIANS, SAME, 2},
    {"Strategic developments", NULL, 0, SKIP, SAME, 1},
    {"Explosions/Remote violence", NULL, NEED_CIVILIAN, RV_V_ATTACK_ON_CIVILIANS, SAME, 3},
    {"Explosions/Remote violence", NULL, 0, SKIP, SAME, 1},
    {"Battles", NULL, NEED_CIVILIAN, RV_V_ATTACK_ON_CIVILIANS, SAME, 3},
    {"Battles", NULL, 0, SKIP, SAME, 1},
};

static const struct acled_map *acled_lookup(const struct acled_row *r)
{
    bool civilian = r->v[AC_CIVILIAN_TARGETING][0] != '\0';
    bool displacement = strncasecmp(r->v[AC_NOTES], "Displacement", 12) == 0;
    size_t i;

    for (i = 0; i < sizeof acled_table / sizeof acled_table[0]; i++) {
        const struct acled_map *m = &acled_table[i];

        if (strcasecmp(m->type, r->v[AC_EVENT_TYPE]) != 0)
            continue;
        if (m->sub && strcasecmp(m->sub, r->v[AC_SUB_EVENT_TYPE]) != 0)
            continue;
        if ((m->need & NEED_CIVILIAN) && !civilian)
            continue;
        if ((m->need & NEED_DISPLACEMENT) && !displacement)
            continue;
        return m;
    }
    return NULL;
}

/*
 * Severity: the table's floor for the kind of act, raised by deaths:
 * 1-2 killed -> 3, 3-9 -> 4, 10 or more -> 5.
 */
static uint8_t severity_of(const struct acled_map *m, uint64_t fatalities)
{
    uint8_t s = m->severity;

    if (fatalities >= 10 && s < 5)
        s = 5;
    else if (fatalities >= 3 && s < 4)
        s = 4;
    else if (fatalities >= 1 && s < 3)
        s = 3;
    return s;
}

/* --------------------------------------------------------- field parsing */

static bool parse_uint(const char *s, size_t maxdigits, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= maxdigits)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (!s[0] || isspace((unsigned char)s[0]))
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static const char *const months[12] = {"january",   "february", "march",    "april",
                                       "may",       "june",     "july",     "august",
                                       "september", "october",  "november", "december"};

/* "16 February 2024" (day 1-2 digits, month in English, full or its
 * first three letters), or "2024-01-01"; at 00:00Z. */
static int parse_acled_date(const char *s, int64_t *ms)
{
    int y = 0, mo = 0, d = 0, i;
    const char *p = s, *sp;
    size_t n;

    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        for (i = 0; i < 10; i++)
            if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
                return RV_EINVAL;
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        mo = (s[5] - '0') * 10 + (s[6] - '0');
        d = (s[8] - '0') * 10 + (s[9] - '0');
        return rv_time_from_civil(y, mo, d, 0, 0, 0, ms);
    }
    for (i = 0; i < 2 && isdigit((unsigned char)*p); i++, p++)
        d = d * 10 + (*p - '0');
    if (i == 0 || *p != ' ')
        return RV_EINVAL;
    p++;
    sp = strchr(p, ' ');
    if (!sp)
        return RV_EINVAL;
    n = (size_t)(sp - p);
    for (i = 0; i < 12; i++)
        if ((n == strlen(months[i]) || n == 3) && strncasecmp(p, months[i], n) == 0)
            mo = i + 1;
    if (mo == 0)
        return RV_EINVAL;
    p = sp + 1;
    for (i = 0; i < 4 && isdigit((unsigned char)p[i]); i++)
        y = y * 10 + (p[i] - '0');
    if (i != 4 || p[4] != '\0')
        return RV_EINVAL;
    return rv_time_from_civil(y, mo, d, 0, 0, 0, ms);
}

/* Copies S into OUT (CAP bytes), cut back to a whole UTF-8 character. */
static void copy_cut(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Adds S, cut to ATTR_STR_MAX bytes, unless it is empty. */
static bool add_str(cJSON *o, const char *key, const char *s)
{
    char buf[ATTR_STR_MAX + 1];

    if (!s[0])
        return true;
    copy_cut(buf, sizeof buf, s);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

static char *attrs_new(const struct acled_row *r, uint64_t fatalities, uint64_t precision)
{
    cJSON *o = cJSON_CreateObject();
    uint64_t ts;
    char *text = NULL;

    if (!o)
        return NULL;
    if (!add_str(o, "acled_event_type", r->v[AC_EVENT_TYPE]) ||
        !add_str(o, "acled_sub_event_type", r->v[AC_SUB_EVENT_TYPE]) ||
        !add_str(o, "disorder_type", r->v[AC_DISORDER_TYPE]) ||
        !add_str(o, "actor1", r->v[AC_ACTOR1]) || !add_str(o, "actor2", r->v[AC_ACTOR2]) ||
        !cJSON_AddBoolToObject(o, "civilian_targeting", r->v[AC_CIVILIAN_TARGETING][0] != 0) ||
        !cJSON_AddNumberToObject(o, "fatalities", (double)fatalities) ||
        (precision && !cJSON_AddNumberToObject(o, "time_precision", (double)precision)) ||
        (parse_uint(r->v[AC_TIMESTAMP], 15, &ts) &&
         !cJSON_AddNumberToObject(o, "acled_timestamp", (double)ts)) ||
        !add_str(o, "acled_source", r->v[AC_SOURCE]) || !add_str(o, "notes", r->v[AC_NOTES]))
        goto done;
    text = cJSON_PrintUnformatted(o);
done:
    cJSON_Delete(o);
    return text;
}

/* "<sub_event_type> in <location>" (admin1 when no location). */
static char *title_new(const struct acled_row *r)
{
    char what[501], where[501], buf[RV_TITLE_MAX];

    copy_cut(what, sizeof what, r->v[AC_SUB_EVENT_TYPE]);
    copy_cut(where, sizeof where, r->v[AC_LOCATION][0] ? r->v[AC_LOCATION] : r->v[AC_ADMIN1]);
    if (where[0])
        snprintf(buf, sizeof buf, "%s in %s", what, where);
    else
        snprintf(buf, sizeof buf, "%s", what);
    return strdup(buf);
}

/* ------------------------------------------------------- row -> event */

/* Fills EV (initialised by the caller) from R. Returns RV_OK,
 * ROW_SKIPPED (not a violation), RV_EINVAL with ERR = the reject message,
 * or RV_ENOMEM. */
static int row_to_event(const struct acled_row *r, struct rv_event *ev, struct rv_errbuf *err)
{
    const struct acled_map *m = acled_lookup(r);
    const char *iso = NULL;
    uint64_t fatalities = 0, precision = 0, num;
    int64_t ms;
    double lat, lon;
    int c;

    if (!m || m->violation == SKIP)
        return ROW_SKIPPED;
    for (c = 0; c < AC_NCOLS; c++)
        if (!rv_utf8_valid(r->v[c], strlen(r->v[c]), NULL))
            return rv_err_set(err, RV_EINVAL, "%s: invalid UTF-8", ac_names[c]);
    if (!r->v[AC_EVENT_ID][0])
        return rv_err_set(err, RV_EINVAL, "event_id_cnty: missing");
    if ((size_t)snprintf(ev->id, sizeof ev->id, "acled-%s", r->v[AC_EVENT_ID]) >= sizeof ev->id)
        return rv_err_set(err, RV_EINVAL, "event_id_cnty: longer than %d bytes", RV_ID_MAX - 6);
    if (parse_acled_date(r->v[AC_EVENT_DATE], &ms) != RV_OK)
        return rv_err_set(err, RV_EINVAL,
                          "event_date: '%.40s' is not a date (DD Month YYYY or YYYY-MM-DD)",
                          r->v[AC_EVENT_DATE]);
    if (r->v[AC_FATALITIES][0] &&
        (!parse_uint(r->v[AC_FATALITIES], 9, &fatalities) || fatalities > RV_COUNT_MAX))
        return rv_err_set(err, RV_EINVAL, "fatalities: '%.40s' is not an integer 0..%u",
                          r->v[AC_FATALITIES], RV_COUNT_MAX);
    if (r->v[AC_TIME_PRECISION][0] &&
        (!parse_uint(r->v[AC_TIME_PRECISION], 1, &precision) || precision < 1 || precision > 3))
        return rv_err_set(err, RV_EINVAL, "time_precision: '%.40s' is not 1, 2 or 3",
                          r->v[AC_TIME_PRECISION]);

    /* The numeric ISO code is authoritative; the English name covers
     * rows without one (ACLED gives 0 for Kosovo and the like). */
    if (parse_uint(r->v[AC_ISO], 4, &num))
        iso = rv_country_from_numeric((int)num);
    if (!iso && r->v[AC_COUNTRY][0])
        iso = rv_country_from_name(r->v[AC_COUNTRY]);
    if (!iso) {
        if (r->v[AC_ISO][0])
            return rv_err_set(err, RV_EINVAL,
                              "iso: '%.16s' is not an ISO 3166-1 numeric code and country "
                              "'%.64s' is unknown",
                              r->v[AC_ISO], r->v[AC_COUNTRY]);
        return rv_err_set(err, RV_EINVAL, "country: '%.64s' is unknown and iso is empty",
                          r->v[AC_COUNTRY]);
    }
    memcpy(ev->country, iso, 2);
    ev->country[2] = '\0';

    if (r->v[AC_LATITUDE][0] || r->v[AC_LONGITUDE][0]) {
        if (!parse_double(r->v[AC_LATITUDE], &lat))
            return rv_err_set(err, RV_EINVAL, "latitude: '%.40s' is not a number",
                              r->v[AC_LATITUDE]);
        if (!parse_double(r->v[AC_LONGITUDE], &lon))
            return rv_err_set(err, RV_EINVAL, "longitude: '%.40s' is not a number",
                              r->v[AC_LONGITUDE]);
        ev->has_geo = true;
        ev->lat = lat;
        ev->lon = lon;
    }
    copy_cut(ev->admin1, sizeof ev->admin1, r->v[AC_ADMIN1]);

    ev->kind = RV_KIND_INCIDENT;
    ev->violation = (uint8_t)(fatalities > 0 && m->if_fatal != SAME ? m->if_fatal : m->violation);
    ev->time_ms = ms;
    ev->count = fatalities > 0 ? (uint32_t)fatalities : 1;
    ev->severity = severity_of(m, fatalities);
    /* ACLED is curated: full confidence in the event, less in its day
     * when ACLED only knows the week (0.8) or the month (0.6). */
    ev->confidence = precision == 3 ? 0.6 : precision == 2 ? 0.8 : 1.0;
    ev->title = title_new(r);
    if (!ev->title)
        return rv_err_set(err, RV_ENOMEM, "title: out of memory");
    ev->attrs = attrs_new(r, fatalities, precision);
    if (!ev->attrs)
        return rv_err_set(err, RV_ENOMEM, "attrs: out of memory");
    return RV_OK;
}

/* Builds, validates and emits the event of R. Returns RV_OK, 1 when the
 * sink asked to stop (positive answer), RV_ENOMEM or the sink's negative
 * answer (ERR set). */
static int emit_row(const struct acled_row *r, size_t record, const struct rv_feed_sink *sink,
                    struct rv_errbuf *err)
{
    struct rv_errbuf rerr;
    struct rv_event ev;
    int rc;

    rv_event_init(&ev);
    rv_err_clear(&rerr);
    rc = row_to_event(r, &ev, &rerr);
    if (rc == ROW_SKIPPED) {
        rv_event_release(&ev);
        return RV_OK;
    }
    if (rc == RV_ENOMEM) {
        rv_event_release(&ev);
        return rv_err_set(err, RV_ENOMEM, "acled: out of memory at record %zu", record);
    }
    if (rc == RV_OK) {
        memcpy(ev.source, sink->source, strlen(sink->source) + 1);
        rc = rv_event_validate(&ev, &rerr);
    }
    if (rc != RV_OK) {
        sink->reject(sink->arg, record, rerr.msg);
        rv_event_release(&ev);
        return RV_OK;
    }
    rc = sink->emit(sink->arg, &ev);
    if (rc < 0)
        return rv_err_set(err, rc, "emit: the sink stopped the parse at record %zu", record);
    return rc > 0 ? 1 : RV_OK;
}

/* ------------------------------------------------------------ CSV */

/* Reader state. Fields of the current record are decoded into BUF,
 * NUL-separated; OFF[i] is where field i starts. */
struct csv {
    const char *p;   /* payload */
    size_t len, pos; /* payload length, read position */
    size_t line;     /* line of the read position, 1-based */
    char *buf;       /* decoded fields */
    size_t buf_len, buf_cap;
    size_t *off; /* field starts in BUF */
    size_t n, off_cap;
};

static int csv_put(struct csv *c, char ch)
{
    if (c->buf_len == c->buf_cap) {
        size_t cap = c->buf_cap ? c->buf_cap * 2 : 4096;
        char *b = realloc(c->buf, cap);

        if (!b)
            return RV_ENOMEM;
        c->buf = b;
        c->buf_cap = cap;
    }
    c->buf[c->buf_len++] = ch;
    return RV_OK;
}

static int csv_field_start(struct csv *c)
{
    if (c->n == c->off_cap) {
        size_t cap = c->off_cap ? c->off_cap * 2 : 64;
        size_t *o = realloc(c->off, cap * sizeof *o);

        if (!o)
            return RV_ENOMEM;
        c->off = o;
        c->off_cap = cap;
    }
    c->off[c->n++] = c->buf_len;
    return RV_OK;
}

/* Skips to just past the next line end (recovery after a bad record). */
static void csv_skip_line(struct csv *c)
{
    const char *nl = memchr(c->p + c->pos, '\n', c->len - c->pos);

    c->pos = nl ? (size_t)(nl - c->p) + 1 : c->len;
    c->line++;
}

/*
 * Reads one record. Returns 1 with the fields in C, 0 at the end of the
 * payload, RV_EINVAL for a malformed record (ERR set, the reader moved
 * past it) or RV_ENOMEM. *START gets the record's first line.
 */
static int csv_record(struct csv *c, size_t *start, struct rv_errbuf *err)
{
    if (c->pos >= c->len)
        return 0;
    c->buf_len = 0;
    c->n = 0;
    *start = c->line;
    for (;;) {
        if (csv_field_start(c) != RV_OK)
            return RV_ENOMEM;
        if (c->pos < c->len && c->p[c->pos] == '"') {
            c->pos++;
            for (;;) {
                char ch;

                if (c->pos >= c->len)
                    return rv_err_set(err, RV_EINVAL,
                                      "csv: quoted field in column %zu not closed at end of "
                                      "input",
                                      c->n);
                ch = c->p[c->pos++];
                if (ch == '"') {
                    if (c->pos < c->len && c->p[c->pos] == '"')
                        c->pos++;
                    else
                        break;
                } else if (ch == '\n') {
                    c->line++;
                }
                if (csv_put(c, ch) != RV_OK)
                    return RV_ENOMEM;
            }
            if (c->pos < c->len && c->p[c->pos] == '\r' && c->pos + 1 < c->len &&
                c->p[c->pos + 1] == '\n')
                c->pos++;
            if (c->pos < c->len && c->p[c->pos] != ',' && c->p[c->pos] != '\n') {
                size_t col = c->n;

                csv_skip_line(c);
                return rv_err_set(err, RV_EINVAL, "csv: text after the closing quote in column %zu",
                                  col);
            }
        } else {
            while (c->pos < c->len && c->p[c->pos] != ',' && c->p[c->pos] != '\n') {
                if (csv_put(c, c->p[c->pos]) != RV_OK)
                    return RV_ENOMEM;
                c->pos++;
            }
            /* CR of a CRLF line end */
            if (c->buf_len > c->off[c->n - 1] && c->buf[c->buf_len - 1] == '\r' &&
                (c->pos == c->len || c->p[c->pos] == '\n'))
                c->buf_len--;
        }
        if (csv_put(c, '\0') != RV_OK)
            return RV_ENOMEM;
        if (c->pos >= c->len)
            return 1;
        if (c->p[c->pos++] == '\n') {
            c->line++;
            return 1;
        }
        /* a comma: next field */
    }
}

static const char *csv_col(const struct csv *c, size_t i)
{
    return c->buf + c->off[i];
}

static int parse_csv(const char *buf, size_t len, const struct rv_feed_sink *sink,
                     struct rv_errbuf *err)
{
    struct csv c = {buf, len, 0, 1, NULL, 0, 0, NULL, 0, 0};
    struct rv_errbuf rerr;
    struct acled_row row;
    size_t col_of[AC_NCOLS], ncols, start = 0, i;
    int rc, k;

    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c.pos = 3;
    /* header: the first record */
    do {
        rv_err_clear(&rerr);
        rc = csv_record(&c, &start, &rerr);
    } while (rc == 1 && c.n == 1 && csv_col(&c, 0)[0] == '\0');
    if (rc == 0) {
        rc = RV_OK; /* empty payload */
        goto done;
    }
    if (rc < 0) {
        if (rc == RV_ENOMEM)
            goto nomem;
        rc = rv_err_set(err, RV_EINVAL, "header: %s", rerr.msg);
        goto done;
    }
    ncols = c.n;
    for (k = 0; k < AC_NCOLS; k++) {
        col_of[k] = SIZE_MAX;
        for (i = 0; i < ncols; i++) {
            if (strcasecmp(csv_col(&c, i), ac_names[k]) == 0) {
                col_of[k] = i;
                break;
            }
        }
    }
    for (i = 0; i < sizeof ac_required / sizeof ac_required[0]; i++) {
        if (col_of[ac_required[i]] == SIZE_MAX) {
            rc = rv_err_set(err, RV_EINVAL, "header: no column '%s' (not an ACLED export)",
                            ac_names[ac_required[i]]);
            goto done;
        }
    }

    for (;;) {
        rv_err_clear(&rerr);
        rc = csv_record(&c, &start, &rerr);
        if (rc == 0)
            break;
        if (rc == RV_ENOMEM)
            goto nomem;
        if (rc < 0) {
            sink->reject(sink->arg, start, rerr.msg);
            continue;
        }
        if (c.n == 1 && csv_col(&c, 0)[0] == '\0')
            continue; /* blank line */
        if (c.n != ncols) {
            rv_err_set(&rerr, RV_EINVAL, "columns: expected %zu, got %zu", ncols, c.n);
            sink->reject(sink->arg, start, rerr.msg);
            continue;
        }
        for (k = 0; k < AC_NCOLS; k++)
            row.v[k] = col_of[k] == SIZE_MAX ? "" : csv_col(&c, col_of[k]);
        rc = emit_row(&row, start, sink, err);
        if (rc == 1)
            break;
        if (rc != RV_OK)
            goto done;
    }
    rc = RV_OK;
    goto done;
nomem:
    rc = rv_err_set(err, RV_ENOMEM, "acled: out of memory at line %zu", start);
done:
    free(c.buf);
    free(c.off);
    return rc;
}

/* ------------------------------------------------------------ JSON */

/* Message of an API error envelope. */
static const char *api_message(const cJSON *root)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");

    if (cJSON_IsString(e))
        return e->valuestring;
    if (cJSON_IsObject(e)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

        if (cJSON_IsString(m))
            return m->valuestring;
    }
    if (cJSON_IsArray(msgs) && cJSON_IsString(cJSON_GetArrayItem(msgs, 0)))
        return cJSON_GetArrayItem(msgs, 0)->valuestring;
    return "no message";
}

static int parse_json(const char *buf, size_t len, const struct rv_feed_sink *sink,
                      struct rv_errbuf *err)
{
    char nums[AC_NCOLS][32];
    struct acled_row row;
    const char *end = NULL;
    const cJSON *data, *status, *success, *rec;
    cJSON *root;
    size_t record = 0;
    int rc = RV_OK, k;

    (void)rv_json_alloc_failed();
    root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (!root && rv_json_alloc_failed())
        return rv_feed_json_oom(err, len);
    if (!root) {
        size_t off = end && end >= buf && (size_t)(end - buf) <= len ? (size_t)(end - buf) : len;

        return rv_err_set(err, RV_EINVAL, "json: syntax error at offset %zu", off);
    }
    if (cJSON_IsArray(root)) {
        data = root; /* a bare list of rows */
    } else {
        status = cJSON_GetObjectItemCaseSensitive(root, "status");
        success = cJSON_GetObjectItemCaseSensitive(root, "success");
        if (cJSON_IsFalse(success) || (cJSON_IsNumber(status) && status->valueint != 200)) {
            rc = rv_err_set(err, RV_EINVAL, "acled: API error status %d: %.120s",
                            cJSON_IsNumber(status) ? status->valueint : 0, api_message(root));
            goto done;
        }
        data = cJSON_GetObjectItemCaseSensitive(root, "data");
        if (!cJSON_IsArray(data)) {
            rc = rv_err_set(err, RV_EINVAL, "data: missing or not an array");
            goto done;
        }
    }
    cJSON_ArrayForEach(rec, data)
    {
        record++;
        if (!cJSON_IsObject(rec)) {
            sink->reject(sink->arg, record, "data: record is not an object");
            continue;
        }
        for (k = 0; k < AC_NCOLS; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, ac_names[k]);

            row.v[k] = "";
            if (cJSON_IsString(v)) {
                row.v[k] = v->valuestring;
            } else if (cJSON_IsNumber(v)) {
                /* the API sends strings; tolerate numbers */
                if (fabs(v->valuedouble) < 1e15 && floor(v->valuedouble) == v->valuedouble)
                    snprintf(nums[k], sizeof nums[k], "%.0f", v->valuedouble);
                else
                    snprintf(nums[k], sizeof nums[k], "%.17g", v->valuedouble);
                row.v[k] = nums[k];
            }
        }
        rc = emit_row(&row, record, sink, err);
        if (rc == 1) {
            rc = RV_OK;
            break;
        }
        if (rc != RV_OK)
            goto done;
    }
done:
    cJSON_Delete(root);
    return rc;
}

int rv_feed_parse_acled(const char *buf, size_t len, const struct rv_feed_sink *sink,
                        struct rv_errbuf *err)
{
    size_t i = 0;

    rv_err_clear(err);
    if (!sink || !sink->emit || !sink->reject || !sink->source || !sink->source[0] ||
        strlen(sink->source) > RV_SOURCE_MAX)
        return rv_err_set(err, RV_EINVAL, "source: missing or longer than %d bytes", RV_SOURCE_MAX);
    if (!buf && len > 0)
        return rv_err_set(err, RV_EINVAL, "acled: no payload");
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return parse_json(buf + i, len - i, sink, err);
    return parse_csv(buf, len, sink, err);
}

/*
 * event: validation of the event model from JSON, JSON output, and the
 * compact binary form kept in the store's log. Every rejection names the
 * field first ("severity: must be an integer 1..5") so partners can fix
 * their data from the message alone.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rv/country.h"
#include "rv/event.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#define TIME_MIN_MS 0LL                /* 1970-01-01 */
#define TIME_MAX_MS 4102444800000LL    /* 2100-01-01 */

static const char *kind_names[RV_KIND_COUNT] = {"probe", "incident", "news"};


const char *rv_kind_name(int k)
{
    return (k >= 0 && k < RV_KIND_COUNT) ? kind_names[k] : NULL;
}

int rv_kind_from_name(const char *name)
{
    for (int i = 0; name && i < RV_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return i;
    return -1;
}

bool rv_utf8_valid(const char *str, size_t len, size_t *bad_off)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            /* ASCII runs (most of our text) eight bytes at a time */
            uint64_t w;
            i++;
            while (i + 8 <= len) {
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        i += n + 1;
    }
    return true;
bad:
    if (bad_off)
        *bad_off = i;
    return false;
}

void rv_event_init(struct rv_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->severity = 3;
    ev->count = 1;
    ev->confidence = 1.0;
    ev->kind = RV_KIND_INCIDENT;
}

void rv_event_release(struct rv_event *ev)
{
    if (!ev)
        return;
    free(ev->title);
    free(ev->url);
    free(ev->attrs);
    rv_event_init(ev);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int rv_event_copy(struct rv_event *dst, const struct rv_event *src)
{
    *dst = *src;
    dst->title = dup_or_null(src->title);
    dst->url = dup_or_null(src->url);
    dst->attrs = dup_or_null(src->attrs);
    if ((src->title && !dst->title) || (src->url && !dst->url) || (src->attrs && !dst->attrs)) {
        rv_event_release(dst);
        return RV_ENOMEM;
    }
    return RV_OK;
}

/* ------------------------------------------------------------ checks */

static int json_depth(const cJSON *j)
{
    int max = 0;
    for (const cJSON *c = j->child; c; c = c->next) {
        int d = json_depth(c);
        if (d > max)
            max = d;
    }
    return (cJSON_IsObject(j) || cJSON_IsArray(j)) ? max + 1 : max;
}

/* First non-finite number under J; its key in *where. */
static bool json_all_finite(const cJSON *j, const char **where)
{
    if (cJSON_IsNumber(j) && !isfinite(j->valuedouble)) {
        *where = j->string;
        return false;
    }
    for (const cJSON *c = j->child; c; c = c->next)
        if (!json_all_finite(c, where))
            return false;
    return true;
}

/* Duplicate key directly in object J (O(n^2), n <= a few dozen). */
static const char *json_dup_key(const cJSON *j)
{
    for (const cJSON *a = j->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return a->string;
    return NULL;
}

static bool str_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static int check_str(const char *field, const char *s, size_t max, bool allow_empty,
                     struct rv_errbuf *err)
{
    size_t n = strlen(s);
    if (!allow_empty && n == 0)
        return rv_err_set(err, RV_EINVAL, "%s: empty", field);
    if (n > max)
        return rv_err_set(err, RV_ETOOBIG, "%s: longer than %zu bytes", field, max);
    if (!rv_utf8_valid(s, n, NULL))
        return rv_err_set(err, RV_EINVAL, "%s: invalid UTF-8", field);
    return RV_OK;
}

int rv_event_validate(const struct rv_event *ev, struct rv_errbuf *err)
{
    int rc;

    if ((rc = check_str("source", ev->source, RV_SOURCE_MAX, false, err)))
        return rc;
    if ((rc = check_str("id", ev->id, RV_ID_MAX, false, err)))
        return rc;
    if (str_has_ctl(ev->id))
        return rv_err_set(err, RV_EINVAL, "id: contains control characters");
    if (ev->kind >= RV_KIND_COUNT)
        return rv_err_set(err, RV_EINVAL, "kind: must be one of probe, incident, news");
    if (!rv_country_valid(ev->country))
        return rv_err_set(err, RV_EINVAL, "country: '%.8s' is not an ISO 3166-1 alpha-2 code",
                          ev->country);
    if (ev->violation >= RV_VIOLATION_COUNT)
        return rv_err_set(err, RV_EINVAL, "violation: not a taxonomy code");
    if (ev->time_ms < TIME_MIN_MS || ev->time_ms >= TIME_MAX_MS)
        return rv_err_set(err, RV_EINVAL, "time: out of range 1970..2099");
    /* Event time is when it happened: a future one is a mistake or an
     * attack, and would move the aggregator's watermark past every honest
     * event. Clocks may be a few minutes off. */
    if (ev->time_ms > rv_now_ms() + RV_FUTURE_MAX_MS)
        return rv_err_set(err, RV_EINVAL, "time: more than %d minutes in the future",
                          (int)(RV_FUTURE_MAX_MS / 60000));
    if (ev->count < 1 || ev->count > RV_COUNT_MAX)
        return rv_err_set(err, RV_EINVAL, "count: must be an integer 1..%u", RV_COUNT_MAX);
    if (ev->severity < 1 || ev->severity > 5)
        return rv_err_set(err, RV_EINVAL, "severity: must be an integer 1..5");
    if (!(ev->confidence >= 0.0 && ev->confidence <= 1.0))
        return rv_err_set(err, RV_EINVAL, "confidence: must be a number 0..1");
    if (ev->has_value && !isfinite(ev->value))
        return rv_err_set(err, RV_EINVAL, "value: must be a finite number");
    if (ev->has_geo && !(ev->lat >= -90.0 && ev->lat <= 90.0))
        return rv_err_set(err, RV_EINVAL, "lat: must be a number -90..90");
    if (ev->has_geo && !(ev->lon >= -180.0 && ev->lon <= 180.0))
        return rv_err_set(err, RV_EINVAL, "lon: must be a number -180..180");
    if ((rc = check_str("admin1", ev->admin1, RV_ADMIN1_MAX, true, err)))
        return rc;
    if (ev->title && (rc = check_str("title", ev->title, RV_TITLE_MAX, true, err)))
        return rc;
    if (ev->url) {
        if ((rc = check_str("url", ev->url, RV_URL_MAX, false, err)))
            return rc;
        if (strncmp(ev->url, "http://", 7) != 0 && strncmp(ev->url, "https://", 8) != 0)
            return rv_err_set(err, RV_EINVAL, "url: must start with http:// or https://");
    }
    if (ev->attrs && strlen(ev->attrs) > RV_ATTRS_MAX_BYTES)
        return rv_err_set(err, RV_ETOOBIG, "attrs: longer than %d bytes", RV_ATTRS_MAX_BYTES);
    return RV_OK;
}

/* ------------------------------------------------------- JSON input */

static int get_string(const cJSON *j, const char *field, char *dst, size_t cap,
                      struct rv_errbuf *err)
{
    size_t n;
    if (!cJSON_IsString(j))
        return rv_err_set(err, RV_EINVAL, "%s: must be a string", field);
    n = strlen(j->valuestring);
    if (n >= cap)
        return rv_err_set(err, RV_ETOOBIG, "%s: longer than %zu bytes", field, cap - 1);
    memcpy(dst, j->valuestring, n + 1);
    return RV_OK;
}

static int get_heap_string(const cJSON *j, const char *field, size_t max, char **dst,
                           struct rv_errbuf *err)
{
    if (cJSON_IsNull(j))
        return RV_OK;
    if (!cJSON_IsString(j))
        return rv_err_set(err, RV_EINVAL, "%s: must be a string", field);
    if (strlen(j->valuestring) > max)
        return rv_err_set(err, RV_ETOOBIG, "%s: longer than %zu bytes", field, max);
    *dst = strdup(j->valuestring);
    return *dst ? RV_OK : rv_err_set(err, RV_ENOMEM, "%s: out of memory", field);
}

static int get_int(const cJSON *j, const char *field, double lo, double hi, double *out,
                   struct rv_errbuf *err)
{
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < lo ||
        j->valuedouble > hi || floor(j->valuedouble) != j->valuedouble)
        return rv_err_set(err, RV_EINVAL, "%s: must be an integer %.0f..%.0f", field, lo, hi);
    *out = j->valuedouble;
    return RV_OK;
}

static int parse_time(const cJSON *j, int64_t *out, struct rv_errbuf *err)
{
    if (!j)
        return rv_err_set(err, RV_EINVAL, "time: missing");
    if (cJSON_IsString(j)) {
        if (rv_time_parse_rfc3339(j->valuestring, out) != RV_OK)
            return rv_err_set(err, RV_EINVAL, "time: '%.40s' is not an RFC 3339 time",
                              j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        if (!isfinite(j->valuedouble) || floor(j->valuedouble) != j->valuedouble ||
            fabs(j->valuedouble) > 9e15)
            return rv_err_set(err, RV_EINVAL, "time: epoch milliseconds must be an integer");
        *out = (int64_t)j->valuedouble;
    } else {
        return rv_err_set(err, RV_EINVAL, "time: must be an RFC 3339 string or epoch milliseconds");
    }
    if (*out < TIME_MIN_MS || *out >= TIME_MAX_MS)
        return rv_err_set(err, RV_EINVAL, "time: out of range 1970..2099");
    return RV_OK;
}

enum field {
    F_ID, F_KIND, F_COUNTRY, F_VIOLATION, F_TIME, F_COUNT, F_SEVERITY, F_CONFIDENCE, F_VALUE,
    F_ADMIN1, F_LAT, F_LON, F_TITLE, F_URL, F_ATTRS, F_NFIELDS
};

static const char *const field_names[F_NFIELDS] = {
    "id",     "kind", "country", "violation", "time", "count", "severity", "confidence",
    "value",  "admin1", "lat",   "lon",       "title", "url",  "attrs"};

static int field_index(const char *k)
{
    for (int i = 0; i < F_NFIELDS; i++)
        if (k[0] == field_names[i][0] && strcmp(k, field_names[i]) == 0)
            return i;
    return -1;
}

int rv_event_from_json(const cJSON *obj, const char *source, struct rv_event *ev,
                       struct rv_parse_info *info, struct rv_errbuf *err)
{
    const cJSON *j, *f[F_NFIELDS] = {0};
    const char *where = NULL, *dup;
    double d;
    int rc, depth;
    unsigned unknown = 0;

    rv_event_init(ev);
    if (!cJSON_IsObject(obj))
        return rv_err_set(err, RV_EINVAL, "event: must be a JSON object");
    if ((depth = json_depth(obj)) > RV_JSON_MAX_DEPTH)
        return rv_err_set(err, RV_EINVAL, "json: nesting deeper than %d", RV_JSON_MAX_DEPTH);
    /* One pass over the keys: known ones into their slot (a second one is a
     * duplicate), unknown ones counted and dropped. */
    for (j = obj->child; j; j = j->next) {
        int fi = j->string ? field_index(j->string) : -1;
        if (fi < 0) {
            unknown++;
            continue;
        }
        if (f[fi])
            return rv_err_set(err, RV_EINVAL, "%.40s: duplicate key", j->string);
        f[fi] = j;
    }
    if (unknown > 1) { /* duplicates among unknown keys too: the payload is ambiguous */
        for (const cJSON *a = obj->child; a; a = a->next) {
            if (!a->string || field_index(a->string) >= 0)
                continue;
            for (const cJSON *b = a->next; b; b = b->next)
                if (b->string && strcmp(a->string, b->string) == 0)
                    return rv_err_set(err, RV_EINVAL, "%.40s: duplicate key", a->string);
        }
    }
    if (!json_all_finite(obj, &where))
        return rv_err_set(err, RV_EINVAL, "%.40s: number is not finite", where ? where : "json");
    if (!source || !*source || strlen(source) > RV_SOURCE_MAX)
        return rv_err_set(err, RV_EINVAL, "source: must be 1..%d bytes", RV_SOURCE_MAX);
    memcpy(ev->source, source, strlen(source) + 1);
    if (info)
        info->dropped_fields += unknown;

    /* id */
    j = f[F_ID];
    if (!j)
        return rv_err_set(err, RV_EINVAL, "id: missing");
    if ((rc = get_string(j, "id", ev->id, sizeof(ev->id), err)))
        goto fail;
    /* kind */
    j = f[F_KIND];
    if (!j) {
        rc = rv_err_set(err, RV_EINVAL, "kind: missing");
        goto fail;
    }
    if (!cJSON_IsString(j) || rv_kind_from_name(j->valuestring) < 0) {
        rc = rv_err_set(err, RV_EINVAL, "kind: '%.20s' is not one of probe, incident, news",
                        cJSON_IsString(j) ? j->valuestring : "(not a string)");
        goto fail;
    }
    ev->kind = (uint8_t)rv_kind_from_name(j->valuestring);
    /* country */
    j = f[F_COUNTRY];
    if (!j) {
        rc = rv_err_set(err, RV_EINVAL, "country: missing");
        goto fail;
    }
    if (!cJSON_IsString(j)) {
        rc = rv_err_set(err, RV_EINVAL, "country: must be a string");
        goto fail;
    }
    if (!rv_country_valid(j->valuestring)) {
        rc = rv_err_set(err, RV_EINVAL, "country: '%.8s' is not an ISO 3166-1 alpha-2 code",
                        j->valuestring);
        goto fail;
    }
    memcpy(ev->country, j->valuestring, 3);
    /* violation */
    j = f[F_VIOLATION];
    if (!j) {
        rc = rv_err_set(err, RV_EINVAL, "violation: missing");
        goto fail;
    }
    if (!cJSON_IsString(j) || rv_violation_from_name(j->valuestring) < 0) {
        rc = rv_err_set(err, RV_EINVAL, "violation: '%.40s' is not a taxonomy code",
                        cJSON_IsString(j) ? j->valuestring : "(not a string)");
        goto fail;
    }
    ev->violation = (uint8_t)rv_violation_from_name(j->valuestring);
    /* time */
    if ((rc = parse_time(f[F_TIME], &ev->time_ms, err)))
        goto fail;
    /* numbers */
    if ((j = f[F_COUNT])) {
        if ((rc = get_int(j, "count", 1, RV_COUNT_MAX, &d, err)))
            goto fail;
        ev->count = (uint32_t)d;
    }
    if ((j = f[F_SEVERITY])) {
        if ((rc = get_int(j, "severity", 1, 5, &d, err)))
            goto fail;
        ev->severity = (uint8_t)d;
    }
    if ((j = f[F_CONFIDENCE])) {
        if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0.0 && j->valuedouble <= 1.0)) {
            rc = rv_err_set(err, RV_EINVAL, "confidence: must be a number 0..1");
            goto fail;
        }
        ev->confidence = j->valuedouble;
    }
    if ((j = f[F_VALUE]) && !cJSON_IsNull(j)) {
        if (!cJSON_IsNumber(j)) {
            rc = rv_err_set(err, RV_EINVAL, "value: must be a number");
            goto fail;
        }
        ev->has_value = true;
        ev->value = j->valuedouble;
    }
    {
        const cJSON *la = f[F_LAT];
        const cJSON *lo = f[F_LON];
        if (la && cJSON_IsNull(la))
            la = NULL;
        if (lo && cJSON_IsNull(lo))
            lo = NULL;
        if ((la == NULL) != (lo == NULL)) {
            rc = rv_err_set(err, RV_EINVAL, "%s: given without %s", la ? "lat" : "lon",
                            la ? "lon" : "lat");
            goto fail;
        }
        if (la) {
            if (!cJSON_IsNumber(la) || !(la->valuedouble >= -90 && la->valuedouble <= 90)) {
                rc = rv_err_set(err, RV_EINVAL, "lat: must be a number -90..90");
                goto fail;
            }
            if (!cJSON_IsNumber(lo) || !(lo->valuedouble >= -180 && lo->valuedouble <= 180)) {
                rc = rv_err_set(err, RV_EINVAL, "lon: must be a number -180..180");
                goto fail;
            }
            ev->has_geo = true;
            ev->lat = la->valuedouble;
            ev->lon = lo->valuedouble;
        }
    }
    if ((j = f[F_ADMIN1]) && !cJSON_IsNull(j)) {
        if ((rc = get_string(j, "admin1", ev->admin1, sizeof(ev->admin1), err)))
            goto fail;
    }
    if ((j = f[F_TITLE]) &&
        (rc = get_heap_string(j, "title", RV_TITLE_MAX, &ev->title, err)))
        goto fail;
    if (ev->title && !ev->title[0]) {
        /* an empty title is no title (the stored form does not tell them apart) */
        free(ev->title);
        ev->title = NULL;
    }
    if ((j = f[F_URL]) &&
        (rc = get_heap_string(j, "url", RV_URL_MAX, &ev->url, err)))
        goto fail;
    if ((j = f[F_ATTRS]) && !cJSON_IsNull(j)) {
        int nkeys = cJSON_GetArraySize(j);
        if (!cJSON_IsObject(j)) {
            rc = rv_err_set(err, RV_EINVAL, "attrs: must be an object");
            goto fail;
        }
        if (nkeys > RV_ATTRS_MAX_KEYS) {
            rc = rv_err_set(err, RV_ETOOBIG, "attrs: more than %d keys", RV_ATTRS_MAX_KEYS);
            goto fail;
        }
        if ((dup = json_dup_key(j))) {
            rc = rv_err_set(err, RV_EINVAL, "attrs.%.40s: duplicate key", dup);
            goto fail;
        }
        if (nkeys > 0) {
            ev->attrs = cJSON_PrintUnformatted(j);
            if (!ev->attrs) {
                rc = rv_err_set(err, RV_ENOMEM, "attrs: out of memory");
                goto fail;
            }
        }
    }
    if ((rc = rv_event_validate(ev, err)))
        goto fail;
    return RV_OK;
fail:
    rv_event_release(ev);
    return rc;
}

/* ------------------------------------------------- parse arena */

/* cJSON allocates every node, key and string of a parsed event with
 * malloc and frees them one by one at cJSON_Delete: ~30 pairs an event,
 * half of the gateway's time. With rv_event_parse_arena_init() cJSON's
 * hooks hand out the nodes of rv_event_parse from a per-thread bump arena
 * instead (reset at the next parse: the tree never outlives the call);
 * everything else -- other threads, other cJSON users, a tree too big
 * for the arena -- goes to malloc. The free hook tells them apart by
 * address. */
#define ARENA_BYTES (64 * 1024)

struct parse_arena {
    unsigned char *base;
    size_t used;
    bool on;
};

static _Thread_local struct parse_arena tl_arena;
static _Thread_local bool tl_alloc_failed; /* a cJSON allocation of this thread failed */
static pthread_key_t arena_key;
static bool arena_ready;

static void *arena_malloc(size_t n)
{
    struct parse_arena *a = &tl_arena;

    if (a->on) {
        size_t need = (n + 15) & ~(size_t)15;
        if (need >= n && need <= ARENA_BYTES - a->used) {
            void *p = a->base + a->used;
            a->used += need;
            return p;
        }
    }
    void *p = malloc(n);
    if (p == NULL)
        tl_alloc_failed = true;
    return p;
}

bool rv_json_alloc_failed(void)
{
    bool f = tl_alloc_failed;

    tl_alloc_failed = false;
    return f;
}

static void arena_free(void *p)
{
    const struct parse_arena *a = &tl_arena;

    if (a->base != NULL && (unsigned char *)p >= a->base && (unsigned char *)p < a->base + ARENA_BYTES)
        return; /* freed with the arena */
    free(p);
}

static void arena_destroy(void *p)
{
    free(p);
}

int rv_event_parse_arena_init(void)
{
    cJSON_Hooks h = {arena_malloc, arena_free};

    if (arena_ready)
        return RV_OK;
    if (pthread_key_create(&arena_key, arena_destroy) != 0)
        return RV_ENOMEM;
    cJSON_InitHooks(&h);
    arena_ready = true;
    return RV_OK;
}

/* cJSON_ParseWithLengthOpts with the nodes in this thread's arena when
 * there is one. */
static cJSON *parse_json(const char *text, size_t len, const char **end)
{
    struct parse_arena *a = &tl_arena;
    cJSON *obj;

    if (arena_ready && a->base == NULL && (a->base = malloc(ARENA_BYTES)) != NULL &&
        pthread_setspecific(arena_key, a->base) != 0) {
        free(a->base);
        a->base = NULL;
    }
    if (a->base == NULL)
        return cJSON_ParseWithLengthOpts(text, len, end, false);
    a->used = 0;
    a->on = true;
    obj = cJSON_ParseWithLengthOpts(text, len, end, false);
    a->on = false;
    return obj;
}

int rv_event_parse(const char *text, size_t len, const char *source, struct rv_event *ev,
                   struct rv_parse_info *info, struct rv_errbuf *err)
{
    size_t bad;
    cJSON *obj;
    const char *end = NULL;
    int rc;

    rv_event_init(ev);
    if (len > RV_EVENT_MAX_BYTES)
        return rv_err_set(err, RV_ETOOBIG, "event: larger than %d bytes", RV_EVENT_MAX_BYTES);
    if (!rv_utf8_valid(text, len, &bad))
        return rv_err_set(err, RV_EINVAL, "utf-8: invalid byte sequence at offset %zu", bad);
    if (memchr(text, '\0', len))
        return rv_err_set(err, RV_EINVAL, "json: NUL byte in text");
    /* cJSON decodes \u0000 and then cuts the string there: "case-7\u0000-a"
     * would become "case-7" and collide with another event. Refuse it. */
    for (size_t i = 0; i + 1 < len; i++) {
        const char *bs = memchr(text + i, '\\', len - 1 - i);
        if (!bs)
            break;
        i = (size_t)(bs - text);
        if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
            return rv_err_set(err, RV_EINVAL, "json: \\u0000 in a string at offset %zu", i);
        i++; /* skip the escaped character (so "\\\\u0000" is a backslash and text) */
    }
    obj = parse_json(text, len, &end);
    if (!obj) {
        size_t off = end ? (size_t)(end - text) : 0;
        if (!end || off > len)
            off = len;
        return rv_err_set(err, RV_EINVAL, "json: syntax error at offset %zu", off);
    }
    /* trailing garbage after the object */
    for (const char *p = end; p && p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(obj);
            return rv_err_set(err, RV_EINVAL, "json: unexpected text after the object at offset %zu",
                              (size_t)(p - text));
        }
    }
    rc = rv_event_from_json(obj, source, ev, info, err);
    cJSON_Delete(obj);
    return rc;
}

/* ------------------------------------------------------ JSON output */

cJSON *rv_event_to_json(const struct rv_event *ev, bool with_attrs)
{
    char tbuf[32];
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", ev->id);
    cJSON_AddStringToObject(o, "source", ev->source);
    cJSON_AddStringToObject(o, "kind", rv_kind_name(ev->kind));
    cJSON_AddStringToObject(o, "country", ev->country);
    cJSON_AddStringToObject(o, "violation", rv_violation_name(ev->violation));
    cJSON_AddStringToObject(o, "time", rv_time_format(ev->time_ms, tbuf, sizeof(tbuf)));
    cJSON_AddNumberToObject(o, "count", ev->count);
    cJSON_AddNumberToObject(o, "severity", ev->severity);
    cJSON_AddNumberToObject(o, "confidence", ev->confidence);
    if (ev->has_value)
        cJSON_AddNumberToObject(o, "value", ev->value);
    if (ev->admin1[0])
        cJSON_AddStringToObject(o, "admin1", ev->admin1);
    if (ev->has_geo) {
        cJSON_AddNumberToObject(o, "lat", ev->lat);
        cJSON_AddNumberToObject(o, "lon", ev->lon);
    }
    if (ev->title)
        cJSON_AddStringToObject(o, "title", ev->title);
    if (ev->url)
        cJSON_AddStringToObject(o, "url", ev->url);
    if (with_attrs && ev->attrs) {
        cJSON *a = cJSON_Parse(ev->attrs);
        if (a)
            cJSON_AddItemToObject(o, "attrs", a);
    }
    return o;
}

/* ----------------------------------------------------- binary form */

#define ENC_VERSION 1
#define ENC_FIXED (1 + 1 + 1 + 1 + 2 + 1 + 1 + 8 + 4 + 8 + 8 + 8 + 8)

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t rv_event_encoded_size(const struct rv_event *ev)
{
    return ENC_FIXED + 2 + strlen(ev->source) + 2 + strlen(ev->id) + 2 + strlen(ev->admin1) +
           2 + slen(ev->title) + 2 + slen(ev->url) + 4 + slen(ev->attrs);
}

static unsigned char *put(unsigned char *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

static unsigned char *put_str16(unsigned char *p, const char *s)
{
    uint16_t n = (uint16_t)slen(s);
    p = put(p, &n, 2);
    return n ? put(p, s, n) : p;
}

int rv_event_encode(const struct rv_event *ev, void *buf, size_t cap)
{
    size_t need = rv_event_encoded_size(ev);
    unsigned char *p = buf;
    uint8_t flags = (uint8_t)((ev->has_value ? 1 : 0) | (ev->has_geo ? 2 : 0)), pad = 0;
    uint8_t ver = ENC_VERSION;
    uint32_t alen = (uint32_t)slen(ev->attrs);

    if (need > cap || slen(ev->title) > 65535 || slen(ev->url) > 65535)
        return RV_ETOOBIG;
    p = put(p, &ver, 1);
    p = put(p, &ev->kind, 1);
    p = put(p, &ev->violation, 1);
    p = put(p, &ev->severity, 1);
    p = put(p, ev->country, 2);
    p = put(p, &flags, 1);
    p = put(p, &pad, 1);
    p = put(p, &ev->time_ms, 8);
    p = put(p, &ev->count, 4);
    p = put(p, &ev->confidence, 8);
    p = put(p, &ev->value, 8);
    p = put(p, &ev->lat, 8);
    p = put(p, &ev->lon, 8);
    p = put_str16(p, ev->source);
    p = put_str16(p, ev->id);
    p = put_str16(p, ev->admin1);
    p = put_str16(p, ev->title);
    p = put_str16(p, ev->url);
    p = put(p, &alen, 4);
    if (alen)
        p = put(p, ev->attrs, alen);
    return (int)(p - (unsigned char *)buf);
}

struct rd {
    const unsigned char *p, *end;
};

static bool get(struct rd *r, void *v, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    memcpy(v, r->p, n);
    r->p += n;
    return true;
}

/* Reads a u16-length string into DST (cap) or, with HEAP, a new string. */
static bool get_str16(struct rd *r, char *dst, size_t cap, char **heap)
{
    uint16_t n;
    if (!get(r, &n, 2) || (size_t)(r->end - r->p) < n)
        return false;
    if (heap) {
        if (n == 0) {
            *heap = NULL;
            return true;
        }
        *heap = malloc((size_t)n + 1);
        if (!*heap)
            return false;
        memcpy(*heap, r->p, n);
        (*heap)[n] = '\0';
    } else {
        if (n >= cap)
            return false;
        memcpy(dst, r->p, n);
        dst[n] = '\0';
    }
    r->p += n;
    return true;
}

int rv_event_decode(const void *buf, size_t len, struct rv_event *ev)
{
    struct rd r = {buf, (const unsigned char *)buf + len};
    uint8_t ver, flags, pad;
    uint32_t alen;

    rv_event_init(ev);
    if (!get(&r, &ver, 1) || ver != ENC_VERSION)
        return RV_ECORRUPT;
    if (!get(&r, &ev->kind, 1) || !get(&r, &ev->violation, 1) || !get(&r, &ev->severity, 1) ||
        !get(&r, ev->country, 2) || !get(&r, &flags, 1) || !get(&r, &pad, 1) ||
        !get(&r, &ev->time_ms, 8) || !get(&r, &ev->count, 4) || !get(&r, &ev->confidence, 8) ||
        !get(&r, &ev->value, 8) || !get(&r, &ev->lat, 8) || !get(&r, &ev->lon, 8))
        goto corrupt;
    ev->country[2] = '\0';
    ev->has_value = flags & 1;
    ev->has_geo = (flags & 2) != 0;
    if (!get_str16(&r, ev->source, sizeof(ev->source), NULL) ||
        !get_str16(&r, ev->id, sizeof(ev->id), NULL) ||
        !get_str16(&r, ev->admin1, sizeof(ev->admin1), NULL) ||
        !get_str16(&r, NULL, 0, &ev->title) || !get_str16(&r, NULL, 0, &ev->url))
        goto corrupt;
    if (!get(&r, &alen, 4) || (size_t)(r.end - r.p) != alen)
        goto corrupt;
    if (alen) {
        ev->attrs = malloc((size_t)alen + 1);
        if (!ev->attrs)
            goto corrupt;
        memcpy(ev->attrs, r.p, alen);
        ev->attrs[alen] = '\0';
    }
    if (ev->kind >= RV_KIND_COUNT || ev->violation >= RV_VIOLATION_COUNT)
        goto corrupt;
    return RV_OK;
corrupt:
    rv_event_release(ev);
    return RV_ECORRUPT;
}

/* Points *S at the u16-length string at *P (before END), *N its length;
 * NULL when empty and NULL_EMPTY. False if it does not fit or N >= CAP
 * (CAP 0: no cap). Advances *P. */
static inline bool view_str16(const unsigned char **p, const unsigned char *end, size_t cap,
                              bool null_empty, const char **s, size_t *n)
{
    uint16_t l;

    if (end - *p < 2)
        return false;
    memcpy(&l, *p, 2);
    *p += 2;
    if ((size_t)(end - *p) < l || (cap && l >= cap))
        return false;
    *s = l == 0 && null_empty ? NULL : (const char *)*p;
    *n = l;
    *p += l;
    return true;
}

void rv_event_view_of(const struct rv_event *ev, struct rv_event_view *v)
{
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)ev->kind;
    v->violation = (uint8_t)ev->violation;
    v->severity = (uint8_t)ev->severity;
    memcpy(v->country, ev->country, 3);
    v->has_value = ev->has_value;
    v->has_geo = ev->has_geo;
    v->time_ms = ev->time_ms;
    v->count = ev->count;
    v->confidence = ev->confidence;
    v->value = ev->value;
    v->lat = ev->lat;
    v->lon = ev->lon;
    v->source = ev->source;
    v->source_len = strlen(ev->source);
    v->id = ev->id;
    v->id_len = strlen(ev->id);
    v->admin1 = ev->admin1;
    v->admin1_len = strlen(ev->admin1);
    v->title = ev->title;
    v->title_len = ev->title ? strlen(ev->title) : 0;
    v->url = ev->url;
    v->url_len = ev->url ? strlen(ev->url) : 0;
    v->attrs = ev->attrs;
    v->attrs_len = ev->attrs ? strlen(ev->attrs) : 0;
}

size_t rv_event_view_bytes(const struct rv_event_view *src)
{
    return src->source_len + src->id_len + src->admin1_len + src->title_len + src->url_len +
           src->attrs_len + 6;
}

/* LEN bytes of S at *P, then a NUL; returns the copy. */
static const char *view_str(char **p, const char *s, size_t len)
{
    char *d = *p;

    if (len > 0)
        memcpy(d, s, len);
    d[len] = '\0';
    *p = d + len + 1;
    return d;
}

size_t rv_event_view_copy(struct rv_event_view *dst, const struct rv_event_view *src, char *buf)
{
    char *p = buf;

    *dst = *src;
    dst->source = view_str(&p, src->source, src->source_len);
    dst->id = view_str(&p, src->id, src->id_len);
    dst->admin1 = view_str(&p, src->admin1, src->admin1_len);
    dst->title = src->title ? view_str(&p, src->title, src->title_len) : NULL;
    dst->url = src->url ? view_str(&p, src->url, src->url_len) : NULL;
    dst->attrs = src->attrs ? view_str(&p, src->attrs, src->attrs_len) : NULL;
    return (size_t)(p - buf);
}

int rv_event_decode_view(const void *buf, size_t len, struct rv_event_view *v)
{
    const unsigned char *fx = buf, *p, *end = fx + len;
    uint8_t flags;
    uint32_t alen;

    if (len < ENC_FIXED || fx[0] != ENC_VERSION)
        return RV_ECORRUPT;
    p = fx + ENC_FIXED;
    /* the layout of rv_event_encode */
    v->kind = fx[1];
    v->violation = fx[2];
    v->severity = fx[3];
    v->country[0] = (char)fx[4];
    v->country[1] = (char)fx[5];
    v->country[2] = '\0';
    flags = fx[6];
    v->has_value = flags & 1;
    v->has_geo = (flags & 2) != 0;
    memcpy(&v->time_ms, fx + 8, 8);
    memcpy(&v->count, fx + 16, 4);
    memcpy(&v->confidence, fx + 20, 8);
    memcpy(&v->value, fx + 28, 8);
    memcpy(&v->lat, fx + 36, 8);
    memcpy(&v->lon, fx + 44, 8);
    if (!view_str16(&p, end, RV_SOURCE_MAX + 1, false, &v->source, &v->source_len) ||
        !view_str16(&p, end, RV_ID_MAX + 1, false, &v->id, &v->id_len) ||
        !view_str16(&p, end, RV_ADMIN1_MAX + 1, false, &v->admin1, &v->admin1_len) ||
        !view_str16(&p, end, 0, true, &v->title, &v->title_len) ||
        !view_str16(&p, end, 0, true, &v->url, &v->url_len))
        return RV_ECORRUPT;
    if (end - p < 4)
        return RV_ECORRUPT;
    memcpy(&alen, p, 4);
    p += 4;
    if ((size_t)(end - p) != alen)
        return RV_ECORRUPT;
    v->attrs = alen ? (const char *)p : NULL;
    v->attrs_len = alen;
    if (v->kind >= RV_KIND_COUNT || v->violation >= RV_VIOLATION_COUNT)
        return RV_ECORRUPT;
    return RV_OK;
}

/*
 * feed_ioda: IODA v2 API JSON (api.ioda.inetintel.cc.gatech.edu/v2) as
 * `internet_shutdown` events.
 *
 * Every endpoint answers with one envelope:
 *   {"type":..,"metadata":..,"requestParameters":..,"error":null|"msg",
 *    "perf":..,"data":..,"copyright":..}
 * A non-null error gives RV_EINVAL "error: <msg>". The shape of `data`
 * says which endpoint it came from (no real capture exists yet: the shapes
 * are the documented ones of ../shared/data/feeds/SOURCES.md):
 *
 *   /signals/raw/..   data = [[series, ...], ...]; a series is
 *                     {entityType, entityCode, datasource, from, until, step,
 *                      values:[number|null, ...]}
 *   /outages/alerts   data = [{entity:{type,code,name,attrs}, datasource, time,
 *                              level, condition, value, historyValue}, ...]
 *   /outages/events   data = [{location:"country/TO", location_name, start,
 *                              duration, datasource, score, ...}, ...]
 *
 * Mapping (tables ioda_levels and ioda_scores below):
 * - signals: each non-null value i of a series is one probe with that
 *   value (the datasource's own unit: visible prefixes for bgp, responsive
 *   /24 blocks for ping-slash24, unique sources for merit-nt) at
 *   (from + i*step) s; null means "no data" and is skipped. Severity stays
 *   the default 3: a raw signal is a measurement, not a judgement; the
 *   aggregator looks for drops below the baseline. The datasource is in
 *   attrs. NEEDSWORK: the series key (country, violation) does not hold the
 *   datasource, so a feed should ask for one datasource.
 * - alerts: one probe whose value is value / historyValue (the signal as a
 *   share of its history; 1 when historyValue is 0: no baseline, no drop),
 *   severity from the level (critical 5, warning 3, normal 1 = recovery).
 * - events: one incident, count 1, severity from the score by order of
 *   magnitude (ioda_scores). NEEDSWORK: thresholds picked without real
 *   captures; calibrate. An event still open is re-sent with a longer
 *   duration under the same id and dedup keeps the first.
 *
 * Country: IODA codes countries with ISO 3166-1 alpha-2 (`country/TR`).
 * Regions use IODA's numeric ids (`region/1906`), ASNs span countries, and
 * neither the series nor the events carry the country of those, so
 * non-country entities are rejected with a message saying so.
 *
 * Ids: "ioda-<datasource>-country-<CC>-<time s>" (signals),
 * "ioda-alert-country-<CC>-<datasource>-<time s>",
 * "ioda-event-<CC>-<datasource>-<start s>".
 *
 * Record numbers given to sink->reject: events and alerts, the 1-based
 * position in data[]; signals, the 1-based position of the series counted
 * across the inner lists. Messages name the JSON path with jq's 0-based
 * indexes ("data[1].location: ...", "data[0][2].values[7]: ...").
 *
 * Reentrant: no state outside the call; any thread.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rv/country.h"
#include "rv/err.h"
#include "rv/event.h"
#include "rv/feed.h"

#include "feed_json.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#define IODA_MAX_PAYLOAD (256u * 1024u * 1024u) /* bytes of one response */
#define IODA_MAX_DATASOURCE 32                  /* bytes of a datasource name */
#define IODA_MAX_TIME_S 253402300799LL          /* 9999-12-31T23:59:59Z */

/* Alert level -> severity. */
static const struct ioda_level {
    const char *name;
    uint8_t severity;
} ioda_levels[] = {
    {"critical", 5}, /* signal far below its history */
    {"warning", 3},  /* below its history */
    {"normal", 1},   /* back to normal: recovery */
};

/* Outage event score -> severity: the first row whose bound the score is
 * below. Scores grow with depth x duration x size of the entity. */
static const struct ioda_score {
    double below;
    uint8_t severity;
} ioda_scores[] = {
    {1e2, 1}, {1e3, 2}, {1e4, 3}, {1e5, 4}, {INFINITY, 5},
};

/* A required string member. */
static bool get_str(const struct rv_feed_rec *r, const cJSON *obj, const char *name, const char **out)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (s == NULL) {
        rv_feed_rec_reject(r, "%s: missing", name);
        return false;
    }
    if (!cJSON_IsString(s)) {
        rv_feed_rec_reject(r, "%s: not a string", name);
        return false;
    }
    *out = s->valuestring;
    return true;
}

/* An optional string member: NULL when absent, null or not a string. */
static const char *opt_str(const cJSON *obj, const char *name)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* A required integer in [MIN, MAX] (JSON number without fraction). */
static bool get_int(const struct rv_feed_rec *r, const cJSON *obj, const char *name, int64_t min,
                    int64_t max, int64_t *out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
    double d;

    if (n == NULL) {
        rv_feed_rec_reject(r, "%s: missing", name);
        return false;
    }
    if (!cJSON_IsNumber(n)) {
        rv_feed_rec_reject(r, "%s: not a number", name);
        return false;
    }
    d = n->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) {
        rv_feed_rec_reject(r, "%s: %g is not an integer in %lld..%lld", name, d, (long long)min,
                   (long long)max);
        return false;
    }
    *out = (int64_t)d;
    return true;
}

/* A required finite number >= 0. */
static bool get_nonneg(const struct rv_feed_rec *r, const cJSON *obj, const char *name, double *out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (n == NULL) {
        rv_feed_rec_reject(r, "%s: missing", name);
        return false;
    }
    if (!cJSON_IsNumber(n)) {
        rv_feed_rec_reject(r, "%s: not a number", name);
        return false;
    }
    if (!isfinite(n->valuedouble) || n->valuedouble < 0) {
        rv_feed_rec_reject(r, "%s: %g is negative", name, n->valuedouble);
        return false;
    }
    *out = n->valuedouble;
    return true;
}

/* datasource: required, id-safe. */
static bool get_datasource(const struct rv_feed_rec *r, const cJSON *obj, const char **out)
{
    if (!get_str(r, obj, "datasource", out))
        return false;
    if (!rv_feed_id_safe(*out, IODA_MAX_DATASOURCE)) {
        rv_feed_rec_reject(r, "datasource: '%.40s' is not 1-%d characters of [A-Za-z0-9._-]", *out,
                   IODA_MAX_DATASOURCE);
        return false;
    }
    return true;
}

/* Entity TYPE/CODE -> EV->country, or a reject naming SUBJECT's field. */
static bool entity_country(const struct rv_feed_rec *r, const char *field, const char *type,
                           const char *code, struct rv_event *ev)
{
    if (strcmp(type, "country") != 0) {
        rv_feed_rec_reject(r, "%s: '%.24s/%.40s' is not a country", field, type, code);
        return false;
    }
    if (!rv_country_valid(code)) {
        rv_feed_rec_reject(r, "%s: '%.8s' is not an ISO 3166-1 alpha-2 code", field, code);
        return false;
    }
    memcpy(ev->country, code, 3); /* 2 letters + NUL */
    return true;
}

/* One /signals/raw series -> a probe per non-null value. Returns REC_*
 * (RV_REC_EMITTED when at least one value went out) or RV_ENOMEM. */
static int ioda_series(const struct rv_feed_rec *r, const cJSON *s, int *stop)
{
    const char *etype, *ecode, *ds;
    const cJSON *values, *v;
    int64_t from, step, i = 0;
    char attrs[128];
    int out = RV_REC_SKIPPED;

    if (!get_str(r, s, "entityType", &etype) || !get_str(r, s, "entityCode", &ecode) ||
        !get_datasource(r, s, &ds) || !get_int(r, s, "from", 0, IODA_MAX_TIME_S, &from) ||
        !get_int(r, s, "step", 1, 366LL * 86400, &step))
        return RV_REC_REJECTED;
    if (strcmp(etype, "country") != 0) {
        rv_feed_rec_reject(r,
                   "entityType: '%.24s' is not 'country' (no ISO country for entityCode '%.40s')",
                   etype, ecode);
        return RV_REC_REJECTED;
    }
    if (!rv_country_valid(ecode)) {
        rv_feed_rec_reject(r, "entityCode: '%.8s' is not an ISO 3166-1 alpha-2 code", ecode);
        return RV_REC_REJECTED;
    }
    values = cJSON_GetObjectItemCaseSensitive(s, "values");
    if (values == NULL) {
        rv_feed_rec_reject(r, "values: missing");
        return RV_REC_REJECTED;
    }
    if (!cJSON_IsArray(values)) {
        rv_feed_rec_reject(r, "values: not an array");
        return RV_REC_REJECTED;
    }
    snprintf(attrs, sizeof attrs,
             "{\"datasource\":\"%s\",\"entity_type\":\"country\",\"step\":%lld}", ds,
             (long long)step);

    cJSON_ArrayForEach(v, values)
    {
        struct rv_event ev;
        int64_t t = from + i * step;
        int rc;

        if (cJSON_IsNull(v)) {
            i++;
            continue; /* no data for that step */
        }
        if (!cJSON_IsNumber(v)) {
            rv_feed_rec_reject(r, "values[%lld]: not a number or null", (long long)i);
            out = out == RV_REC_EMITTED ? out : RV_REC_REJECTED;
            i++;
            continue;
        }
        if (!isfinite(v->valuedouble) || v->valuedouble < 0) {
            rv_feed_rec_reject(r, "values[%lld]: %g is negative", (long long)i, v->valuedouble);
            out = out == RV_REC_EMITTED ? out : RV_REC_REJECTED;
            i++;
            continue;
        }
        if (t > IODA_MAX_TIME_S) {
            rv_feed_rec_reject(r, "values[%lld]: time %lld is past year 9999", (long long)i, (long long)t);
            return out == RV_REC_EMITTED ? out : RV_REC_REJECTED;
        }
        rv_event_init(&ev);
        snprintf(ev.source, sizeof ev.source, "%s", r->sink->source);
        snprintf(ev.id, sizeof ev.id, "ioda-%s-country-%s-%lld", ds, ecode, (long long)t);
        memcpy(ev.country, ecode, 3);
        ev.kind = RV_KIND_PROBE;
        ev.violation = RV_V_INTERNET_SHUTDOWN;
        ev.has_value = true;
        ev.value = v->valuedouble;
        ev.time_ms = t * 1000;
        ev.attrs = rv_feed_dup(attrs);
        if (ev.attrs == NULL)
            return RV_ENOMEM;
        rc = rv_feed_rec_emit(r, &ev, stop);
        if (rc == RV_REC_EMITTED)
            out = RV_REC_EMITTED;
        if (*stop != 0)
            break;
        i++;
    }
    return out;
}

/* One /outages/alerts record -> one probe. */
static int ioda_alert(const struct rv_feed_rec *r, const cJSON *a, int *stop)
{
    struct rv_event ev;
    cJSON *attrs = NULL;
    const cJSON *entity;
    const char *etype, *ecode, *ename, *ds, *level, *cond;
    const struct ioda_level *lv = NULL;
    double value, history;
    int64_t t;
    size_t k;

    rv_event_init(&ev);
    entity = cJSON_GetObjectItemCaseSensitive(a, "entity");
    if (entity == NULL) {
        rv_feed_rec_reject(r, "entity: missing");
        return RV_REC_REJECTED;
    }
    if (!cJSON_IsObject(entity)) {
        rv_feed_rec_reject(r, "entity: not an object");
        return RV_REC_REJECTED;
    }
    if (!get_str(r, entity, "type", &etype) || !get_str(r, entity, "code", &ecode))
        return RV_REC_REJECTED;
    if (!entity_country(r, "entity", etype, ecode, &ev))
        return RV_REC_REJECTED;
    ename = opt_str(entity, "name");
    if (!get_datasource(r, a, &ds) || !get_int(r, a, "time", 0, IODA_MAX_TIME_S, &t) ||
        !get_str(r, a, "level", &level))
        return RV_REC_REJECTED;
    for (k = 0; k < sizeof ioda_levels / sizeof ioda_levels[0]; k++)
        if (strcmp(level, ioda_levels[k].name) == 0)
            lv = &ioda_levels[k];
    if (lv == NULL) {
        rv_feed_rec_reject(r, "level: '%.24s' is not normal, warning or critical", level);
        return RV_REC_REJECTED;
    }
    if (!get_nonneg(r, a, "value", &value) || !get_nonneg(r, a, "historyValue", &history))
        return RV_REC_REJECTED;
    cond = opt_str(a, "condition");

    attrs = cJSON_CreateObject();
    if (attrs == NULL || cJSON_AddStringToObject(attrs, "datasource", ds) == NULL ||
        cJSON_AddStringToObject(attrs, "level", level) == NULL ||
        (cond != NULL && strlen(cond) <= 256 &&
         cJSON_AddStringToObject(attrs, "condition", cond) == NULL) ||
        cJSON_AddNumberToObject(attrs, "value", value) == NULL ||
        cJSON_AddNumberToObject(attrs, "history_value", history) == NULL ||
        cJSON_AddStringToObject(attrs, "entity_type", etype) == NULL)
        goto fail;

    snprintf(ev.source, sizeof ev.source, "%s", r->sink->source);
    snprintf(ev.id, sizeof ev.id, "ioda-alert-%s-%s-%s-%lld", etype, ecode, ds, (long long)t);
    ev.kind = RV_KIND_PROBE;
    ev.violation = RV_V_INTERNET_SHUTDOWN;
    ev.severity = lv->severity;
    ev.has_value = true;
    ev.value = history > 0 ? value / history : 1.0;
    ev.time_ms = t * 1000;
    {
        char title[RV_TITLE_MAX];
        const char *who = ename != NULL && ename[0] != '\0' ? ename : ecode;
        size_t n = rv_feed_utf8_cut(who, 200);
        snprintf(title, sizeof title, "IODA %s alert: %.*s (%s)", level, (int)n, who, ds);
        ev.title = rv_feed_dup(title);
    }
    ev.attrs = rv_feed_attrs_text(attrs);
    if (ev.title == NULL || ev.attrs == NULL)
        goto fail;
    cJSON_Delete(attrs);
    return rv_feed_rec_emit(r, &ev, stop);
fail:
    cJSON_Delete(attrs);
    rv_event_release(&ev);
    return RV_ENOMEM;
}

/* One /outages/events record -> one incident. */
static int ioda_outage(const struct rv_feed_rec *r, const cJSON *e, int *stop)
{
    struct rv_event ev;
    cJSON *attrs = NULL;
    const char *loc, *slash, *name, *ds, *method;
    char type[24];
    double score;
    int64_t start, duration;
    size_t k;
    const cJSON *j;

    rv_event_init(&ev);
    if (!get_str(r, e, "location", &loc))
        return RV_REC_REJECTED;
    slash = strchr(loc, '/');
    if (slash == NULL || (size_t)(slash - loc) >= sizeof type) {
        rv_feed_rec_reject(r, "location: '%.48s' is not type/code", loc);
        return RV_REC_REJECTED;
    }
    memcpy(type, loc, (size_t)(slash - loc));
    type[slash - loc] = '\0';
    if (strcmp(type, "country") != 0) {
        rv_feed_rec_reject(r, "location: '%.48s' is not a country", loc);
        return RV_REC_REJECTED;
    }
    if (!rv_country_valid(slash + 1)) {
        rv_feed_rec_reject(r, "location: '%.8s' is not an ISO 3166-1 alpha-2 code", slash + 1);
        return RV_REC_REJECTED;
    }
    memcpy(ev.country, slash + 1, 3);
    if (!get_int(r, e, "start", 0, IODA_MAX_TIME_S, &start) ||
        !get_int(r, e, "duration", 0, IODA_MAX_TIME_S, &duration) || !get_datasource(r, e, &ds) ||
        !get_nonneg(r, e, "score", &score))
        return RV_REC_REJECTED;
    name = opt_str(e, "location_name");
    method = opt_str(e, "method");

    attrs = cJSON_CreateObject();
    if (attrs == NULL || cJSON_AddNumberToObject(attrs, "duration_s", (double)duration) == NULL ||
        cJSON_AddNumberToObject(attrs, "score", score) == NULL ||
        cJSON_AddStringToObject(attrs, "datasource", ds) == NULL ||
        (method != NULL && strlen(method) <= 64 &&
         cJSON_AddStringToObject(attrs, "method", method) == NULL))
        goto fail;
    j = cJSON_GetObjectItemCaseSensitive(e, "overlaps_window");
    if (cJSON_IsBool(j) && cJSON_AddBoolToObject(attrs, "overlaps_window", cJSON_IsTrue(j)) == NULL)
        goto fail;

    snprintf(ev.source, sizeof ev.source, "%s", r->sink->source);
    snprintf(ev.id, sizeof ev.id, "ioda-event-%s-%s-%lld", ev.country, ds, (long long)start);
    ev.kind = RV_KIND_INCIDENT;
    ev.violation = RV_V_INTERNET_SHUTDOWN;
    ev.count = 1;
    for (k = 0; k < sizeof ioda_scores / sizeof ioda_scores[0]; k++) {
        if (score < ioda_scores[k].below) {
            ev.severity = ioda_scores[k].severity;
            break;
        }
    }
    ev.time_ms = start * 1000;
    {
        char title[RV_TITLE_MAX];
        const char *who = name != NULL && name[0] != '\0' ? name : ev.country;
        size_t n = rv_feed_utf8_cut(who, 200);
        snprintf(title, sizeof title, "IODA outage: %.*s (%s, %lld s)", (int)n, who, ds,
                 (long long)duration);
        ev.title = rv_feed_dup(title);
    }
    ev.attrs = rv_feed_attrs_text(attrs);
    if (ev.title == NULL || ev.attrs == NULL)
        goto fail;
    cJSON_Delete(attrs);
    return rv_feed_rec_emit(r, &ev, stop);
fail:
    cJSON_Delete(attrs);
    rv_event_release(&ev);
    return RV_ENOMEM;
}

enum ioda_shape { SHAPE_EMPTY, SHAPE_SIGNALS, SHAPE_ALERTS, SHAPE_EVENTS, SHAPE_UNKNOWN };

/* Which endpoint DATA came from, by its first element. */
static enum ioda_shape data_shape(const cJSON *data)
{
    const cJSON *first = data->child;

    if (first == NULL)
        return SHAPE_EMPTY;
    if (cJSON_IsArray(first))
        return SHAPE_SIGNALS;
    if (cJSON_IsObject(first) && cJSON_HasObjectItem(first, "entity"))
        return SHAPE_ALERTS;
    if (cJSON_IsObject(first) && cJSON_HasObjectItem(first, "location"))
        return SHAPE_EVENTS;
    return SHAPE_UNKNOWN;
}

static int run_signals(const cJSON *data, const struct rv_feed_sink *sink, struct rv_errbuf *err)
{
    const cJSON *list, *s;
    size_t i = 0, record = 0;
    int stop = 0;

    cJSON_ArrayForEach(list, data)
    {
        size_t j = 0;
        struct rv_feed_rec r;

        r.sink = sink;
        if (!cJSON_IsArray(list)) {
            r.record = ++record;
            snprintf(r.path, sizeof r.path, "data[%zu]", i);
            rv_feed_rec_reject(&r, ": not a list of series");
            i++;
            continue;
        }
        cJSON_ArrayForEach(s, list)
        {
            int rc;

            r.record = ++record;
            snprintf(r.path, sizeof r.path, "data[%zu][%zu]", i, j);
            if (!cJSON_IsObject(s)) {
                rv_feed_rec_reject(&r, ": not a series object");
                rc = RV_REC_REJECTED;
            } else {
                rc = ioda_series(&r, s, &stop);
            }
            if (rc < 0)
                return rv_err_set(err, rc, "%s: out of memory", r.path);
            if (stop != 0)
                goto done;
            j++;
        }
        i++;
    }
done:
    return stop < 0 ? rv_err_set(err, stop, "emit: the sink stopped the parse") : RV_OK;
}

static int run_records(const cJSON *data, const struct rv_feed_sink *sink,
                       int (*fn)(const struct rv_feed_rec *, const cJSON *, int *), struct rv_errbuf *err)
{
    const cJSON *it;
    size_t i = 0;
    int stop = 0;

    cJSON_ArrayForEach(it, data)
    {
        struct rv_feed_rec r;
        int rc;

        r.sink = sink;
        r.record = i + 1;
        snprintf(r.path, sizeof r.path, "data[%zu]", i);
        if (!cJSON_IsObject(it)) {
            rv_feed_rec_reject(&r, ": not an object");
            rc = RV_REC_REJECTED;
        } else {
            rc = fn(&r, it, &stop);
        }
        if (rc < 0)
            return rv_err_set(err, rc, "%s: out of memory", r.path);
        if (stop != 0)
            break;
        i++;
    }
    return stop < 0 ? rv_err_set(err, stop, "emit: the sink stopped the parse") : RV_OK;
}

int rv_feed_parse_ioda(const char *buf, size_t len, const struct rv_feed_sink *sink,
                       struct rv_errbuf *err)
{
    cJSON *root = NULL;
    const cJSON *error, *data;
    int rc;

    if ((rc = rv_feed_json_begin(buf, len, sink, IODA_MAX_PAYLOAD, &root, err)) != RV_OK)
        return rc;
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (error == NULL || data == NULL) {
        rc = rv_err_set(err, RV_EINVAL, "format: not an IODA v2 envelope (no %s)",
                        error == NULL ? "error" : "data");
        goto done;
    }
    if (cJSON_IsString(error)) {
        rc = rv_err_set(err, RV_EINVAL, "error: %.200s", error->valuestring);
        goto done;
    }
    if (!cJSON_IsNull(error)) {
        rc = rv_err_set(err, RV_EINVAL, "error: not null or a string");
        goto done;
    }
    if (cJSON_IsNull(data)) {
        rc = RV_OK; /* nothing in the window */
        goto done;
    }
    if (!cJSON_IsArray(data)) {
        rc = rv_err_set(err, RV_EINVAL, "data: not an array");
        goto done;
    }
    switch (data_shape(data)) {
    case SHAPE_EMPTY:
        rc = RV_OK;
        break;
    case SHAPE_SIGNALS:
        rc = run_signals(data, sink, err);
        break;
    case SHAPE_ALERTS:
        rc = run_records(data, sink, ioda_alert, err);
        break;
    case SHAPE_EVENTS:
        rc = run_records(data, sink, ioda_outage, err);
        break;
    default:
        rc = rv_err_set(err, RV_EINVAL,
                        "data: not /signals/raw series, /outages/alerts or /outages/events");
        break;
    }
done:
    cJSON_Delete(root);
    return rc;
}

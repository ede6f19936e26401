/*
 * feed_ooni: the OONI API (api.ooni.io) JSON responses as events.
 *
 * Three shapes are recognised by their top-level keys (see
 * ../shared/data/feeds/SOURCES.md for the real payloads):
 *
 *   /api/v1/measurements      {"metadata":{...},"results":[ measurement ... ]}
 *   /api/v1/aggregation       {"v":0,"dimension_count":N,"result":[ bucket ... ]}
 *   /api/v1/measurement_meta  { measurement }  (one object, scores as a JSON string)
 *
 * Mapping to the taxonomy (the table ooni_outcomes below): every measurement
 * that did not fail becomes one `censorship` probe for its probe_cc, with
 * value 1 when OONI flagged it (anomaly or confirmed) and value 0 when it
 * looked fine. Emitting the clean ones too gives the aggregator a baseline:
 * the mean value of a (country, censorship) bin is the share of anomalous
 * measurements, not just their number. Failed measurements (`failure` true:
 * the probe could not measure) are evidence of nothing and are skipped
 * silently: neither emitted nor rejected.
 *
 * Aggregation buckets (per day and probe_cc) become one probe per (cc, day)
 * whose value is the same share, (anomaly_count + confirmed_count) /
 * (measurement_count - failure_count), so both shapes feed the same series
 * on the same scale. OONI's four counts are mutually exclusive (SOURCES.md),
 * hence the sum. Buckets without probe_cc (no axis_y=probe_cc) have no
 * country and are rejected. `internet_shutdown` is not derived here: a
 * collapse of the measurement count needs a baseline of past days, which is
 * the aggregator's job; measurement_count is kept in attrs for it.
 *
 * /measurement_meta differs from a /measurements result in form only:
 * measurement_start_time without fraction, probe_asn an integer, scores a
 * JSON string (parsed a second time here). Its raw_measurement string is
 * not read: it can run to megabytes and everything mapped is in the
 * top-level fields.
 *
 * Ids: "ooni-<measurement_uid>" and "ooni-agg-<cc>-<YYYY-MM-DD>". The
 * aggregation response does not name the test (test_name is only in the
 * query), so one feed should query one test_name.
 * A bucket whose UTC day has not ended yet is skipped (not emitted, not
 * rejected): its counts are partial and would be kept under the day's id
 * for good, since dedup keeps the first. The next poll after midnight UTC
 * that still covers the day emits it complete, so a feed URL should reach
 * back at least one day (since = yesterday or earlier).
 *
 * Record numbers given to sink->reject are 1-based positions in results[]
 * (or result[]); messages name the JSON path with jq's 0-based index:
 * record 4 is "results[3].probe_cc: ...". A measurement_meta object is
 * record 1 and its messages have no prefix.
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

#define OONI_MAX_PAYLOAD (256u * 1024u * 1024u) /* bytes of one response */
#define OONI_MAX_SCORES 16                      /* numeric score keys copied to attrs */
#define OONI_TITLE_INPUT 200                    /* bytes of input quoted in a title */
#define OONI_EXPLORER "https://explorer.ooni.org/m/"

/* What a measurement's flags mean, most specific first. */
enum ooni_outcome { OONI_CONFIRMED = 0, OONI_ANOMALY, OONI_OK };

static const struct ooni_outcome_map {
    const char *name;  /* for titles */
    int violation;     /* enum rv_violation */
    uint8_t severity;  /* 1..5 */
    double confidence; /* how sure OONI is of this outcome */
    double value;      /* probe value: 1 = interference seen */
} ooni_outcomes[] = {
    /* block page fingerprint matched: blocking is certain */
    [OONI_CONFIRMED] = {"confirmed blocking", RV_V_CENSORSHIP, 4, 0.9, 1.0},
    /* heuristics disagree with the control: possible blocking, false
     * positives are common (OONI's own wording: "anomaly") */
    [OONI_ANOMALY] = {"anomaly", RV_V_CENSORSHIP, 2, 0.5, 1.0},
    /* reachable as from the control: the baseline */
    [OONI_OK] = {"ok", RV_V_CENSORSHIP, 1, 0.9, 0.0},
};

/* One record being turned into an event: where to report it. */
/* Outcome of one record. */
/* Checks probe_cc and copies it into EV. Rejects and returns false when bad.
 * MISSING_WHY explains a missing key (aggregation) or is NULL. */
static bool get_country(const struct rv_feed_rec *r, const cJSON *obj, const char *missing_why,
                        struct rv_event *ev)
{
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(obj, "probe_cc");

    if (cc == NULL) {
        if (missing_why != NULL)
            rv_feed_rec_reject(r, "probe_cc: missing (%s)", missing_why);
        else
            rv_feed_rec_reject(r, "probe_cc: missing");
        return false;
    }
    if (!cJSON_IsString(cc)) {
        rv_feed_rec_reject(r, "probe_cc: not a string");
        return false;
    }
    if (strcmp(cc->valuestring, "ZZ") == 0) {
        rv_feed_rec_reject(r, "probe_cc: 'ZZ' is OONI's unknown country");
        return false;
    }
    if (!rv_country_valid(cc->valuestring)) {
        rv_feed_rec_reject(r, "probe_cc: '%.8s' is not an ISO 3166-1 alpha-2 code", cc->valuestring);
        return false;
    }
    memcpy(ev->country, cc->valuestring, 3); /* 2 letters + NUL */
    return true;
}

/* A required boolean. */
static bool get_bool(const struct rv_feed_rec *r, const cJSON *obj, const char *name, bool *out)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (b == NULL) {
        rv_feed_rec_reject(r, "%s: missing", name);
        return false;
    }
    if (!cJSON_IsBool(b)) {
        rv_feed_rec_reject(r, "%s: not a boolean", name);
        return false;
    }
    *out = cJSON_IsTrue(b);
    return true;
}

/* An optional string: *out is NULL when absent (or JSON null when
 * NULL_OK). Rejects other types. */
static bool get_opt_str(const struct rv_feed_rec *r, const cJSON *obj, const char *name, bool null_ok,
                        const char **out)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, name);

    *out = NULL;
    if (s == NULL || (null_ok && cJSON_IsNull(s)))
        return true;
    if (!cJSON_IsString(s)) {
        rv_feed_rec_reject(r, "%s: not a string", name);
        return false;
    }
    *out = s->valuestring;
    return true;
}

/* A required non-negative integer count (JSON number without fraction). */
static bool get_count(const struct rv_feed_rec *r, const cJSON *obj, const char *name, bool required,
                      uint64_t *out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
    double d;

    *out = 0;
    if (n == NULL) {
        if (required)
            rv_feed_rec_reject(r, "%s: missing", name);
        return !required;
    }
    if (!cJSON_IsNumber(n)) {
        rv_feed_rec_reject(r, "%s: not a number", name);
        return false;
    }
    d = n->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > 9007199254740992.0) {
        rv_feed_rec_reject(r, "%s: %g is not a non-negative integer", name, d);
        return false;
    }
    *out = (uint64_t)d;
    return true;
}

/* probe_asn as "AS<n>": /measurements gives "AS12479", /measurement_meta
 * the integer 51604. *out is "" when absent. */
static bool get_asn(const struct rv_feed_rec *r, const cJSON *obj, char *out, size_t cap)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "probe_asn");

    out[0] = '\0';
    if (a == NULL || cJSON_IsNull(a))
        return true;
    if (cJSON_IsNumber(a)) {
        double d = a->valuedouble;
        if (!isfinite(d) || d < 0 || d > 4294967295.0 || d != floor(d)) {
            rv_feed_rec_reject(r, "probe_asn: %g is not an AS number", d);
            return false;
        }
        snprintf(out, cap, "AS%lu", (unsigned long)d);
        return true;
    }
    if (cJSON_IsString(a)) {
        const char *s = a->valuestring;
        size_t i, n = strlen(s);
        bool ok = n > 2 && n <= 12 && strncmp(s, "AS", 2) == 0;
        for (i = 2; ok && i < n; i++)
            ok = s[i] >= '0' && s[i] <= '9';
        if (!ok) {
            rv_feed_rec_reject(r, "probe_asn: '%.16s' is not an AS number", s);
            return false;
        }
        snprintf(out, cap, "%s", s);
        return true;
    }
    rv_feed_rec_reject(r, "probe_asn: not a string or number");
    return false;
}

/* Copies the useful part of scores into ATTRS: the numeric blocking_*
 * scores, the string members of scores.analysis, the fingerprint names.
 * SCORES is an object (/measurements) or a JSON string holding one
 * (/measurement_meta). Absent or null: nothing. */
static int copy_scores(const struct rv_feed_rec *r, const cJSON *obj, cJSON *attrs, bool *bad)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "scores");
    cJSON *parsed = NULL;
    cJSON *out = NULL;
    const cJSON *it;
    int n = 0;
    int rc = RV_ENOMEM;

    *bad = false;
    if (s == NULL || cJSON_IsNull(s))
        return RV_OK;
    if (cJSON_IsString(s)) {
        parsed = cJSON_ParseWithOpts(s->valuestring, NULL, true);
        if (parsed == NULL || !cJSON_IsObject(parsed)) {
            rv_feed_rec_reject(r, "scores: not a JSON object in a string");
            *bad = true;
            rc = RV_OK;
            goto fail;
        }
        s = parsed;
    } else if (!cJSON_IsObject(s)) {
        rv_feed_rec_reject(r, "scores: not an object");
        *bad = true;
        rc = RV_OK;
        goto fail;
    }
    out = cJSON_AddObjectToObject(attrs, "scores");
    if (out == NULL)
        goto fail;
    cJSON_ArrayForEach(it, s)
    {
        if (n >= OONI_MAX_SCORES)
            break;
        if (cJSON_IsNumber(it) && it->string != NULL && isfinite(it->valuedouble)) {
            if (cJSON_AddNumberToObject(out, it->string, it->valuedouble) == NULL)
                goto fail;
            n++;
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(s, "analysis");
    if (cJSON_IsObject(it)) {
        const cJSON *a;
        cJSON *ao = cJSON_AddObjectToObject(attrs, "analysis");
        int k = 0;
        if (ao == NULL)
            goto fail;
        cJSON_ArrayForEach(a, it)
        {
            if (k >= OONI_MAX_SCORES)
                break;
            if (cJSON_IsString(a) && a->string != NULL) {
                if (cJSON_AddStringToObject(ao, a->string, a->valuestring) == NULL)
                    goto fail;
                k++;
            }
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(s, "fingerprints");
    if (cJSON_IsArray(it)) {
        const cJSON *f;
        cJSON *fa = cJSON_AddArrayToObject(attrs, "fingerprints");
        int k = 0;
        if (fa == NULL)
            goto fail;
        cJSON_ArrayForEach(f, it)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
            cJSON *str;
            if (k >= OONI_MAX_SCORES)
                break;
            if (!cJSON_IsString(name))
                continue;
            str = cJSON_CreateString(name->valuestring);
            if (str == NULL)
                goto fail;
            cJSON_AddItemToArray(fa, str);
            k++;
        }
    }
    rc = RV_OK;
fail:
    cJSON_Delete(parsed);
    return rc;
}

/* One measurement (a /measurements result or a /measurement_meta object)
 * -> one probe, or skipped when it failed. Returns REC_* or RV_ENOMEM. */
static int ooni_measurement(const struct rv_feed_rec *r, const cJSON *m, int *stop)
{
    struct rv_event ev;
    cJSON *attrs = NULL;
    const cJSON *uid;
    const char *test_name, *input, *report_id, *start;
    const struct ooni_outcome_map *map;
    char asn[16];
    bool anomaly, confirmed, failure, bad_scores;
    int64_t ms;
    int rc = RV_ENOMEM;

    rv_event_init(&ev);
    if (!get_bool(r, m, "failure", &failure))
        return RV_REC_REJECTED;
    if (failure)
        return RV_REC_SKIPPED; /* the measurement itself failed: no evidence */
    if (!get_bool(r, m, "anomaly", &anomaly) || !get_bool(r, m, "confirmed", &confirmed))
        return RV_REC_REJECTED;

    uid = cJSON_GetObjectItemCaseSensitive(m, "measurement_uid");
    if (uid == NULL) {
        rv_feed_rec_reject(r, "measurement_uid: missing");
        return RV_REC_REJECTED;
    }
    if (!cJSON_IsString(uid)) {
        rv_feed_rec_reject(r, "measurement_uid: not a string");
        return RV_REC_REJECTED;
    }
    if (!rv_feed_id_safe(uid->valuestring, RV_ID_MAX - 5)) {
        rv_feed_rec_reject(r, "measurement_uid: '%.64s' is not 1-%d characters of [A-Za-z0-9._-]",
                   uid->valuestring, RV_ID_MAX - 5);
        return RV_REC_REJECTED;
    }
    if (!get_country(r, m, NULL, &ev))
        return RV_REC_REJECTED;

    if (!get_opt_str(r, m, "measurement_start_time", false, &start))
        return RV_REC_REJECTED;
    if (start == NULL) {
        rv_feed_rec_reject(r, "measurement_start_time: missing");
        return RV_REC_REJECTED;
    }
    if (rv_time_parse_rfc3339(start, &ms) != RV_OK) {
        rv_feed_rec_reject(r, "measurement_start_time: '%.40s' is not an RFC 3339 time", start);
        return RV_REC_REJECTED;
    }
    if (!get_opt_str(r, m, "test_name", false, &test_name) ||
        !get_opt_str(r, m, "input", true, &input) ||
        !get_opt_str(r, m, "report_id", true, &report_id) || !get_asn(r, m, asn, sizeof asn))
        return RV_REC_REJECTED;

    attrs = cJSON_CreateObject();
    if (attrs == NULL)
        goto fail;
    if (test_name != NULL && cJSON_AddStringToObject(attrs, "test_name", test_name) == NULL)
        goto fail;
    /* an over-long input would only bloat attrs; its measurement stays */
    if (input != NULL && input[0] != '\0' && strlen(input) <= RV_URL_MAX &&
        cJSON_AddStringToObject(attrs, "input", input) == NULL)
        goto fail;
    if (asn[0] != '\0' && cJSON_AddStringToObject(attrs, "probe_asn", asn) == NULL)
        goto fail;
    if (report_id != NULL && strlen(report_id) <= RV_ID_MAX &&
        cJSON_AddStringToObject(attrs, "report_id", report_id) == NULL)
        goto fail;
    if (cJSON_AddBoolToObject(attrs, "anomaly", anomaly) == NULL ||
        cJSON_AddBoolToObject(attrs, "confirmed", confirmed) == NULL)
        goto fail;
    if (copy_scores(r, m, attrs, &bad_scores) != RV_OK)
        goto fail;
    if (bad_scores) {
        cJSON_Delete(attrs);
        return RV_REC_REJECTED;
    }

    map = &ooni_outcomes[confirmed ? OONI_CONFIRMED : anomaly ? OONI_ANOMALY : OONI_OK];
    snprintf(ev.id, sizeof ev.id, "ooni-%s", uid->valuestring);
    snprintf(ev.source, sizeof ev.source, "%s", r->sink->source);
    ev.kind = RV_KIND_PROBE;
    ev.violation = (uint8_t)map->violation;
    ev.severity = map->severity;
    ev.confidence = map->confidence;
    ev.has_value = true;
    ev.value = map->value;
    ev.time_ms = ms;
    {
        char title[RV_TITLE_MAX];
        const char *what = input != NULL && input[0] != '\0' ? input : "";
        size_t n = rv_feed_utf8_cut(what, OONI_TITLE_INPUT);
        snprintf(title, sizeof title, "OONI %s: %s%s%.*s", test_name != NULL ? test_name : "test",
                 map->name, n > 0 ? " for " : "", (int)n, what);
        ev.title = rv_feed_dup(title);
    }
    {
        char url[sizeof OONI_EXPLORER + RV_ID_MAX];
        snprintf(url, sizeof url, "%s%s", OONI_EXPLORER, uid->valuestring);
        ev.url = rv_feed_dup(url);
    }
    ev.attrs = rv_feed_attrs_text(attrs);
    if (ev.title == NULL || ev.url == NULL || ev.attrs == NULL)
        goto fail;
    cJSON_Delete(attrs);
    return rv_feed_rec_emit(r, &ev, stop);
fail:
    cJSON_Delete(attrs);
    rv_event_release(&ev);
    return rc;
}

/* "YYYY-MM-DD" -> ms at 00:00Z. */
static bool parse_day(const char *s, int64_t *ms)
{
    int v[3] = {0, 0, 0};
    const int width[3] = {4, 2, 2};
    int f, i, p = 0;

    for (f = 0; f < 3; f++) {
        for (i = 0; i < width[f]; i++, p++) {
            if (s[p] < '0' || s[p] > '9')
                return false;
            v[f] = v[f] * 10 + (s[p] - '0');
        }
        if (f < 2 && s[p++] != '-')
            return false;
    }
    if (s[p] != '\0')
        return false;
    return rv_time_from_civil(v[0], v[1], v[2], 0, 0, 0, ms) == RV_OK;
}

/* One /aggregation bucket -> one probe per (probe_cc, day). Returns REC_*
 * or RV_ENOMEM. */
static int ooni_bucket(const struct rv_feed_rec *r, const cJSON *b, int *stop)
{
    struct rv_event ev;
    cJSON *attrs = NULL;
    const char *day;
    uint64_t anomaly, confirmed, failure, ok, total, flagged, base;
    bool has_ok;
    const struct ooni_outcome_map *map;
    int64_t ms;
    int rc = RV_ENOMEM;

    rv_event_init(&ev);
    if (!cJSON_IsObject(b)) {
        rv_feed_rec_reject(r, "bucket: not an object");
        return RV_REC_REJECTED;
    }
    if (!get_country(r, b, "aggregation without axis_y=probe_cc", &ev))
        return RV_REC_REJECTED;
    if (!get_opt_str(r, b, "measurement_start_day", false, &day))
        return RV_REC_REJECTED;
    if (day == NULL) {
        rv_feed_rec_reject(r, "measurement_start_day: missing (aggregation without "
                      "axis_x=measurement_start_day)");
        return RV_REC_REJECTED;
    }
    if (!parse_day(day, &ms)) {
        rv_feed_rec_reject(r, "measurement_start_day: '%.24s' is not a YYYY-MM-DD date", day);
        return RV_REC_REJECTED;
    }
    if (ms + 86400000LL > rv_now_ms())
        return RV_REC_SKIPPED; /* the day is still open: partial counts (see the top) */
    if (!get_count(r, b, "anomaly_count", true, &anomaly) ||
        !get_count(r, b, "confirmed_count", true, &confirmed) ||
        !get_count(r, b, "failure_count", false, &failure) ||
        !get_count(r, b, "measurement_count", true, &total) ||
        !get_count(r, b, "ok_count", false, &ok))
        return RV_REC_REJECTED;
    has_ok = cJSON_GetObjectItemCaseSensitive(b, "ok_count") != NULL;
    flagged = anomaly + confirmed;
    if (flagged + failure > total) {
        rv_feed_rec_reject(r,
                   "measurement_count: %llu is less than anomaly_count + confirmed_count + "
                   "failure_count (%llu)",
                   (unsigned long long)total, (unsigned long long)(flagged + failure));
        return RV_REC_REJECTED;
    }
    base = total - failure;
    if (base == 0)
        return RV_REC_SKIPPED; /* every measurement failed: no evidence */

    attrs = cJSON_CreateObject();
    if (attrs == NULL)
        goto fail;
    if (cJSON_AddNumberToObject(attrs, "anomaly_count", (double)anomaly) == NULL ||
        cJSON_AddNumberToObject(attrs, "confirmed_count", (double)confirmed) == NULL ||
        cJSON_AddNumberToObject(attrs, "failure_count", (double)failure) == NULL ||
        (has_ok && cJSON_AddNumberToObject(attrs, "ok_count", (double)ok) == NULL) ||
        cJSON_AddNumberToObject(attrs, "measurement_count", (double)total) == NULL ||
        cJSON_AddStringToObject(attrs, "time_grain", "day") == NULL)
        goto fail;

    map = &ooni_outcomes[confirmed > 0 ? OONI_CONFIRMED : anomaly > 0 ? OONI_ANOMALY : OONI_OK];
    snprintf(ev.id, sizeof ev.id, "ooni-agg-%s-%s", ev.country, day);
    snprintf(ev.source, sizeof ev.source, "%s", r->sink->source);
    ev.kind = RV_KIND_PROBE;
    ev.violation = (uint8_t)map->violation;
    ev.severity = map->severity;
    ev.confidence = map->confidence;
    ev.has_value = true;
    ev.value = (double)flagged / (double)base;
    ev.count = flagged == 0 ? 1 : flagged > RV_COUNT_MAX ? RV_COUNT_MAX : (uint32_t)flagged;
    ev.time_ms = ms;
    {
        char title[RV_TITLE_MAX];
        snprintf(title, sizeof title, "OONI: %llu of %llu measurements flagged in %s on %s",
                 (unsigned long long)flagged, (unsigned long long)base, ev.country, day);
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
    return rc;
}

/* Runs FN over every element of ARR (named NAME in paths). */
static int each_record(const cJSON *arr, const char *name, const struct rv_feed_sink *sink,
                       int (*fn)(const struct rv_feed_rec *, const cJSON *, int *), struct rv_errbuf *err)
{
    const cJSON *it;
    size_t i = 0;
    int stop = 0;

    cJSON_ArrayForEach(it, arr)
    {
        struct rv_feed_rec r;
        int rc;

        r.sink = sink;
        r.record = i + 1;
        snprintf(r.path, sizeof r.path, "%s[%zu]", name, i);
        if (!cJSON_IsObject(it)) {
            rv_feed_rec_reject(&r, "%s", "record: not an object");
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

static int meta_record(const struct rv_feed_sink *sink, const cJSON *root, struct rv_errbuf *err)
{
    struct rv_feed_rec r;
    int stop = 0;
    int rc;

    r.sink = sink;
    r.record = 1;
    r.path[0] = '\0';
    rc = ooni_measurement(&r, root, &stop);
    if (rc < 0)
        return rv_err_set(err, rc, "measurement: out of memory");
    return stop < 0 ? rv_err_set(err, stop, "emit: the sink stopped the parse") : RV_OK;
}

int rv_feed_parse_ooni(const char *buf, size_t len, const struct rv_feed_sink *sink,
                       struct rv_errbuf *err)
{
    cJSON *root = NULL;
    const cJSON *arr;
    int rc;

    if ((rc = rv_feed_json_begin(buf, len, sink, OONI_MAX_PAYLOAD, &root, err)) != RV_OK)
        return rc;
    if ((arr = cJSON_GetObjectItemCaseSensitive(root, "results")) != NULL) {
        if (!cJSON_IsArray(arr)) {
            rc = rv_err_set(err, RV_EINVAL, "results: not an array");
            goto done;
        }
        rc = each_record(arr, "results", sink, ooni_measurement, err);
    } else if ((arr = cJSON_GetObjectItemCaseSensitive(root, "result")) != NULL &&
               (cJSON_HasObjectItem(root, "dimension_count") || cJSON_HasObjectItem(root, "v"))) {
        if (!cJSON_IsArray(arr)) {
            rc = rv_err_set(err, RV_EINVAL, "result: not an array");
            goto done;
        }
        rc = each_record(arr, "result", sink, ooni_bucket, err);
    } else if (cJSON_HasObjectItem(root, "measurement_uid")) {
        rc = meta_record(sink, root, err);
    } else {
        rc = rv_err_set(err, RV_EINVAL,
                        "format: not an OONI /measurements, /aggregation or /measurement_meta "
                        "response");
    }
done:
    cJSON_Delete(root);
    return rc;
}

/*
 * test_feed_ooni: the OONI parser on the real API responses in
 * tests/data/ooni/ (see tests/data/PROVENANCE.md) and on hostile variants
 * of them: records with wrong types, a truncated page, garbage, a bucket
 * whose counts do not add up. Expected numbers come from reading the files
 * by hand (or a plain text scan of them here), not from the parser; epoch
 * values were computed with Python's calendar.timegm.
 */
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed_sink.h"

#include <cjson/cJSON.h>

#include "check.h"

static int parse(const char *buf, size_t len, struct collect *c, struct rv_errbuf *err)
{
    return collect_parse(rv_feed_parse_ooni, "ooni-test", buf, len, c, err);
}

static int parse_str(const char *s, struct collect *c, struct rv_errbuf *err)
{
    return parse(s, strlen(s), c, err);
}

static char *read_data(const char *name, size_t *len)
{
    return read_data_file("ooni", name, len);
}

static size_t count_text(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-12;
}

/* --------------------------------------------------- /measurements page */

static void test_measurements(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("measurements_web_connectivity.json", &len);
    const struct rv_event *ev;
    size_t ones = 0, es = 0;

    CHECK(buf != NULL);
    if (!buf)
        return;
    /* the page, read as text: 50 results, 1 anomaly, nothing confirmed or failed */
    CHECK(count_text(buf, "\"measurement_uid\":") == 50);
    CHECK(count_text(buf, "\"anomaly\": true") == 1);
    CHECK(count_text(buf, "\"confirmed\": true") == 0);
    CHECK(count_text(buf, "\"failure\": true") == 0);
    CHECK(count_text(buf, "\"probe_cc\": \"ES\"") == 38);

    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 50); /* every measurement that did not fail: the baseline too */
    CHECK(c.nrej == 0);
    for (size_t i = 0; i < c.n; i++) {
        CHECK(c.evs[i].kind == RV_KIND_PROBE);
        CHECK(c.evs[i].violation == RV_V_CENSORSHIP);
        CHECK(c.evs[i].has_value);
        CHECK(strcmp(c.evs[i].source, "ooni-test") == 0);
        CHECK(c.evs[i].count == 1);
        if (c.evs[i].value == 1.0)
            ones++;
        else
            CHECK(c.evs[i].value == 0.0 && c.evs[i].severity == 1 &&
                  near(c.evs[i].confidence, 0.9));
        if (strcmp(c.evs[i].country, "ES") == 0)
            es++;
    }
    CHECK(ones == 1);
    CHECK(es == 38);

    /* the one anomaly: PL, AS16276, DNS, 2026-07-11T17:43:07.000000Z */
    ev = find(&c, "ooni-20260711174307.426698_PL_webconnectivity_201864a3015449fd");
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR(ev->country, "PL");
        CHECK(ev->time_ms == 1783791787000LL);
        CHECK(ev->value == 1.0);
        CHECK(ev->severity == 2);
        CHECK(near(ev->confidence, 0.5));
        CHECK_STR(ev->url, "https://explorer.ooni.org/m/"
                           "20260711174307.426698_PL_webconnectivity_201864a3015449fd");
        CHECK_STR(ev->title, "OONI web_connectivity: anomaly for https://www.favbet.com/");
        CHECK_STR(ev->attrs,
                  "{\"test_name\":\"web_connectivity\",\"input\":\"https://www.favbet.com/\","
                  "\"probe_asn\":\"AS16276\",\"report_id\":"
                  "\"20260711T174235Z_webconnectivity_PL_16276_n4_9IIbTGyO2GXoszgU\","
                  "\"anomaly\":true,\"confirmed\":false,\"scores\":{\"blocking_general\":1,"
                  "\"blocking_global\":0,\"blocking_country\":0,\"blocking_isp\":0,"
                  "\"blocking_local\":0},\"analysis\":{\"blocking_type\":\"dns\"}}");
    }
    /* the first result carries fingerprints: their names are kept */
    ev = find(&c, "ooni-20260711174303.899212_ES_webconnectivity_cb7ef25a464d14d4");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ev->time_ms == 1783791847000LL); /* 17:44:07 */
        CHECK(ev->value == 0.0);
        CHECK(strstr(ev->attrs,
                     "\"fingerprints\":[\"cp.fp_x_correct_403\","
                     "\"cp.fp_satellite_fp_403\",\"cp.f_gen_have_permission\"]") != NULL);
    }
    collect_free(&c);
    free(buf);
}

/* The real page with three records broken in place: one failed, two with
 * bad fields. The other 47 must still come out. */
static void test_measurements_hostile(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("measurements_web_connectivity.json", &len);
    cJSON *root, *results;
    char *text;

    CHECK(buf != NULL);
    if (!buf)
        return;
    root = cJSON_Parse(buf);
    results = cJSON_GetObjectItem(root, "results");
    CHECK(cJSON_GetArraySize(results) == 50);
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 0), "failure", cJSON_CreateTrue());
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 3), "probe_cc", cJSON_CreateString("XX"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 7), "anomaly", cJSON_CreateString("yes"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 9), "measurement_start_time",
                              cJSON_CreateString("2026-07-11 nope"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 11), "probe_cc",
                              cJSON_CreateString("ZZ"));
    cJSON_ReplaceItemInObject(cJSON_GetArrayItem(results, 12), "probe_asn", cJSON_CreateNumber(7));
    text = cJSON_PrintUnformatted(root);

    CHECK(parse_str(text, &c, &err) == RV_OK);
    CHECK(c.n == 45); /* 50 - 1 skipped (failure) - 4 rejected */
    CHECK(c.nrej == 4);
    if (c.nrej == 4) {
        CHECK(c.rej[0].record == 4);
        CHECK_STR(c.rej[0].msg, "results[3].probe_cc: 'XX' is not an ISO 3166-1 alpha-2 code");
        CHECK(c.rej[1].record == 8);
        CHECK_STR(c.rej[1].msg, "results[7].anomaly: not a boolean");
        CHECK(c.rej[2].record == 10);
        CHECK_STR(c.rej[2].msg,
                  "results[9].measurement_start_time: '2026-07-11 nope' is not an RFC 3339 time");
        CHECK(c.rej[3].record == 12);
        CHECK_STR(c.rej[3].msg, "results[11].probe_cc: 'ZZ' is OONI's unknown country");
    }
    /* an integer probe_asn (the measurement_meta form) is accepted */
    CHECK(c.n > 0 && strstr(c.evs[c.n - 1].attrs, "\"probe_asn\":") != NULL);
    for (size_t i = 0; i < c.n; i++) {
        const char *uid =
            cJSON_GetObjectItem(cJSON_GetArrayItem(results, 12), "measurement_uid")->valuestring;
        if (strcmp(c.evs[i].id + 5, uid) == 0)
            CHECK(strstr(c.evs[i].attrs, "\"probe_asn\":\"AS7\"") != NULL);
    }
    free(text);
    cJSON_Delete(root);
    collect_free(&c);

    /* a confirmed block: severity 4, confidence 0.9, value 1 */
    CHECK(parse_str("{\"metadata\":{},\"results\":[{\"anomaly\":true,\"confirmed\":true,"
                    "\"failure\":false,\"input\":\"https://x.example/\",\"probe_cc\":\"IR\","
                    "\"probe_asn\":\"AS197207\",\"test_name\":\"web_connectivity\","
                    "\"measurement_start_time\":\"2024-01-02T03:04:05.678901Z\","
                    "\"measurement_uid\":\"20240102030405.678901_IR_webconnectivity_ab\","
                    "\"scores\":null}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 1 && c.nrej == 0);
    if (c.n == 1) {
        CHECK(c.evs[0].severity == 4 && near(c.evs[0].confidence, 0.9) && c.evs[0].value == 1.0);
        CHECK(c.evs[0].time_ms == 1704164645678LL); /* microseconds truncated to ms */
        CHECK_STR(c.evs[0].title,
                  "OONI web_connectivity: confirmed blocking for https://x.example/");
    }
    collect_free(&c);

    /* a result that is not an object, and one without its uid */
    CHECK(parse_str("{\"metadata\":{},\"results\":[7,{\"anomaly\":false,\"confirmed\":false,"
                    "\"failure\":false,\"probe_cc\":\"DE\","
                    "\"measurement_start_time\":\"2024-01-02T03:04:05Z\"}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 2);
    if (c.nrej == 2) {
        CHECK(c.rej[0].record == 1);
        CHECK_STR(c.rej[0].msg, "results[0].record: not an object");
        CHECK(c.rej[1].record == 2);
        CHECK_STR(c.rej[1].msg, "results[1].measurement_uid: missing");
    }
    collect_free(&c);
    free(buf);
}

/* A page cut in the middle, as a dropped connection leaves it. */
static void test_truncated(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("measurements_web_connectivity.json", &len);
    char want[128];
    size_t cut, quote, line = 1;

    CHECK(buf != NULL);
    if (!buf)
        return;
    /* the cut falls inside the string "web_connectivity"; cJSON points at
     * the first byte of the string it could not finish, after its quote */
    cut = len / 2;
    CHECK(cut == 20442 && memcmp(buf + cut - 5, "\"web_", 5) == 0);
    quote = cut - 4;
    for (size_t i = 0; i < quote; i++)
        line += buf[i] == '\n';
    CHECK(parse(buf, cut, &c, &err) == RV_EINVAL);
    CHECK(err.code == RV_EINVAL);
    snprintf(want, sizeof want, "json: syntax error at offset %zu (line %zu)", quote, line);
    CHECK_STR(err.msg, want);
    CHECK_STR(err.msg, "json: syntax error at offset 20438 (line 599)");
    CHECK(c.n == 0 && c.nrej == 0);
    collect_free(&c);

    CHECK(parse_str("", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "json: empty payload");
    CHECK(parse_str("{\"results\":[]} x", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "json: unexpected text after the value at offset 15");
    CHECK(parse_str("[1,2]", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "json: not an object");
    CHECK(parse_str("{\"status\":200,\"body\":\"{}\"}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg,
              "format: not an OONI /measurements, /aggregation or /measurement_meta response");
    CHECK(parse_str("{\"metadata\":{},\"results\":{}}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "results: not an array");
    CHECK(parse("{\"results\":[\xff]}", 15, &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "utf-8: invalid byte sequence at offset 12");
    CHECK(parse("{\"results\":[]}\0", 15, &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "json: NUL byte in text");
    /* the cap is checked before the buffer is read */
    CHECK(parse("{}", (size_t)256 * 1024 * 1024 + 1, &c, &err) == RV_ETOOBIG);
    CHECK_STR(err.msg, "payload: 268435457 bytes is over the 268435456-byte cap");
    CHECK(c.n == 0 && c.nrej == 0);
    collect_free(&c);
    free(buf);
}

/* ----------------------------------------------------------- aggregation */

static void test_aggregation_cc(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("aggregation_web_connectivity_by_day_and_probe_cc.json", &len);
    const struct rv_event *ev;

    CHECK(buf != NULL);
    if (!buf)
        return;
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 3 && c.nrej == 0);

    /* RU, 2025-03-01: anomaly 29, confirmed 0, failure 0, ok 8, total 37 */
    ev = find(&c, "ooni-agg-RU-2025-03-01");
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR(ev->country, "RU");
        CHECK(ev->kind == RV_KIND_PROBE && ev->violation == RV_V_CENSORSHIP);
        CHECK(ev->time_ms == 1740787200000LL);
        CHECK(ev->has_value && near(ev->value, 29.0 / 37.0));
        CHECK(ev->count == 29);
        CHECK(ev->severity == 2 && near(ev->confidence, 0.5));
        CHECK_STR(ev->title, "OONI: 29 of 37 measurements flagged in RU on 2025-03-01");
        CHECK_STR(ev->attrs, "{\"anomaly_count\":29,\"confirmed_count\":0,\"failure_count\":0,"
                             "\"ok_count\":8,\"measurement_count\":37,\"time_grain\":\"day\"}");
        CHECK(ev->url == NULL);
    }
    /* IR: 1 confirmed of 1 */
    ev = find(&c, "ooni-agg-IR-2025-03-01");
    CHECK(ev != NULL);
    if (ev)
        CHECK(ev->value == 1.0 && ev->count == 1 && ev->severity == 4 && near(ev->confidence, 0.9));
    /* CN: 1 anomaly of 1 */
    ev = find(&c, "ooni-agg-CN-2025-03-01");
    CHECK(ev != NULL);
    if (ev)
        CHECK(ev->value == 1.0 && ev->count == 1 && ev->severity == 2);
    collect_free(&c);
    free(buf);
}

static void test_aggregation_no_cc(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("aggregation_web_connectivity_by_day.json", &len);

    CHECK(buf != NULL);
    if (!buf)
        return;
    /* a well-formed response, but no bucket names a country */
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 0);
    CHECK(c.nrej == 3);
    for (size_t i = 0; i < c.nrej && i < 3; i++) {
        char want[128];

        snprintf(want, sizeof want,
                 "result[%zu].probe_cc: missing (aggregation without axis_y=probe_cc)", i);
        CHECK(c.rej[i].record == i + 1);
        CHECK_STR(c.rej[i].msg, want);
    }
    collect_free(&c);
    free(buf);
}

static void test_aggregation_hostile(void)
{
    struct collect c = {0};
    struct rv_errbuf err;

    CHECK(parse_str("{\"v\":0,\"dimension_count\":2,\"result\":["
                    /* 1: counts beyond the total */
                    "{\"anomaly_count\":5,\"confirmed_count\":3,\"failure_count\":1,"
                    "\"ok_count\":0,\"measurement_count\":7,\"measurement_start_day\":"
                    "\"2025-03-01\",\"probe_cc\":\"SY\"},"
                    /* 2: every measurement failed: skipped */
                    "{\"anomaly_count\":0,\"confirmed_count\":0,\"failure_count\":4,"
                    "\"ok_count\":0,\"measurement_count\":4,\"measurement_start_day\":"
                    "\"2025-03-01\",\"probe_cc\":\"SY\"},"
                    /* 3: failures leave the denominator: 2 of (10 - 2) */
                    "{\"anomaly_count\":1,\"confirmed_count\":1,\"failure_count\":2,"
                    "\"ok_count\":6,\"measurement_count\":10,\"measurement_start_day\":"
                    "\"2025-03-02\",\"probe_cc\":\"SY\"},"
                    /* 4: a count as a string */
                    "{\"anomaly_count\":\"1\",\"confirmed_count\":0,\"measurement_count\":1,"
                    "\"measurement_start_day\":\"2025-03-01\",\"probe_cc\":\"TR\"},"
                    /* 5: a fractional count */
                    "{\"anomaly_count\":1.5,\"confirmed_count\":0,\"measurement_count\":2,"
                    "\"measurement_start_day\":\"2025-03-01\",\"probe_cc\":\"TR\"},"
                    /* 6: a date that does not exist */
                    "{\"anomaly_count\":1,\"confirmed_count\":0,\"measurement_count\":2,"
                    "\"measurement_start_day\":\"2025-02-30\",\"probe_cc\":\"TR\"},"
                    /* 7: no day at all (axis_x was something else) */
                    "{\"anomaly_count\":1,\"confirmed_count\":0,\"measurement_count\":2,"
                    "\"probe_cc\":\"TR\"},"
                    /* 8: all fine, nothing flagged: value 0 baseline */
                    "{\"anomaly_count\":0,\"confirmed_count\":0,\"failure_count\":0,"
                    "\"ok_count\":3,\"measurement_count\":3,\"measurement_start_day\":"
                    "\"2025-03-02\",\"probe_cc\":\"TR\"}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 2);
    CHECK(c.nrej == 5);
    if (c.nrej == 5) {
        CHECK(c.rej[0].record == 1);
        CHECK_STR(c.rej[0].msg, "result[0].measurement_count: 7 is less than anomaly_count + "
                                "confirmed_count + failure_count (9)");
        CHECK(c.rej[1].record == 4);
        CHECK_STR(c.rej[1].msg, "result[3].anomaly_count: not a number");
        CHECK(c.rej[2].record == 5);
        CHECK_STR(c.rej[2].msg, "result[4].anomaly_count: 1.5 is not a non-negative integer");
        CHECK(c.rej[3].record == 6);
        CHECK_STR(c.rej[3].msg,
                  "result[5].measurement_start_day: '2025-02-30' is not a YYYY-MM-DD date");
        CHECK(c.rej[4].record == 7);
        CHECK_STR(c.rej[4].msg, "result[6].measurement_start_day: missing (aggregation without "
                                "axis_x=measurement_start_day)");
    }
    if (c.n == 2) {
        CHECK_STR(c.evs[0].id, "ooni-agg-SY-2025-03-02");
        CHECK(near(c.evs[0].value, 0.25) && c.evs[0].count == 2 && c.evs[0].severity == 4);
        CHECK_STR(c.evs[1].id, "ooni-agg-TR-2025-03-02");
        CHECK(c.evs[1].value == 0.0 && c.evs[1].count == 1 && c.evs[1].severity == 1);
    }
    collect_free(&c);

    CHECK(parse_str("{\"v\":0,\"dimension_count\":1,\"result\":7}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "result: not an array");
    collect_free(&c);
}

/* A day still open gives partial counts that dedup would keep for good:
 * skipped until the day has ended; yesterday's bucket is emitted. */
static void test_aggregation_open_day(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    char today[16], yesterday[16], text[1024];
    time_t now = time(NULL), yd = now - 86400;
    struct tm tm;

    strftime(today, sizeof(today), "%Y-%m-%d", gmtime_r(&now, &tm));
    strftime(yesterday, sizeof(yesterday), "%Y-%m-%d", gmtime_r(&yd, &tm));
    snprintf(text, sizeof(text),
             "{\"v\":0,\"dimension_count\":2,\"result\":["
             "{\"anomaly_count\":1,\"confirmed_count\":0,\"failure_count\":0,"
             "\"ok_count\":1,\"measurement_count\":2,\"measurement_start_day\":\"%s\","
             "\"probe_cc\":\"IR\"},"
             "{\"anomaly_count\":3,\"confirmed_count\":0,\"failure_count\":0,"
             "\"ok_count\":1,\"measurement_count\":4,\"measurement_start_day\":\"%s\","
             "\"probe_cc\":\"IR\"}]}",
             today, yesterday);
    CHECK(parse_str(text, &c, &err) == RV_OK);
    CHECK(c.nrej == 0);
    CHECK(c.n == 1);
    if (c.n == 1) {
        char want[64];
        snprintf(want, sizeof(want), "ooni-agg-IR-%s", yesterday);
        CHECK_STR(c.evs[0].id, want);
        CHECK(near(c.evs[0].value, 0.75));
    }
    collect_free(&c);
}

/* ----------------------------------------------------- measurement_meta */

static void test_meta(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("measurement_meta_web_connectivity_RU.json", &len);
    cJSON *root;
    char *text;

    CHECK(buf != NULL);
    if (!buf)
        return;
    /* RU: all flags false, integer probe_asn, scores as a string, no fraction */
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 1 && c.nrej == 0);
    if (c.n == 1) {
        const struct rv_event *ev = &c.evs[0];

        CHECK_STR(ev->id, "ooni-20201029043459.005820_RU_webconnectivity_604f1cb2579d144d");
        CHECK_STR(ev->country, "RU");
        CHECK(ev->time_ms == 1603947571000LL);
        CHECK(ev->value == 0.0 && ev->severity == 1);
        CHECK_STR(ev->attrs, "{\"test_name\":\"web_connectivity\",\"input\":"
                             "\"http://www.pokerroom.com/\",\"probe_asn\":\"AS51604\","
                             "\"report_id\":\"20201029T041242Z_webconnectivity_RU_51604_n1_"
                             "I0rABGogC4OLATJx\",\"anomaly\":false,\"confirmed\":false,"
                             "\"scores\":{\"blocking_general\":0,\"blocking_global\":0,"
                             "\"blocking_country\":0,\"blocking_isp\":0,\"blocking_local\":0}}");
    }
    collect_free(&c);

    /* the same with scores no longer JSON inside its string */
    root = cJSON_Parse(buf);
    cJSON_ReplaceItemInObject(root, "scores", cJSON_CreateString("{\"blocking_general\":"));
    text = cJSON_PrintUnformatted(root);
    CHECK(parse_str(text, &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 1);
    if (c.nrej == 1) {
        CHECK(c.rej[0].record == 1);
        CHECK_STR(c.rej[0].msg, "scores: not a JSON object in a string");
    }
    collect_free(&c);
    free(text);
    /* and failed: skipped, neither emitted nor rejected */
    cJSON_ReplaceItemInObject(root, "failure", cJSON_CreateTrue());
    text = cJSON_PrintUnformatted(root);
    CHECK(parse_str(text, &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 0);
    collect_free(&c);
    free(text);
    cJSON_Delete(root);
    free(buf);

    /* IR Signal test: anomaly, the analysis string kept, no input */
    buf = read_data("measurement_meta_signal_IR.json", &len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 1 && c.nrej == 0);
    if (c.n == 1) {
        const struct rv_event *ev = &c.evs[0];

        CHECK_STR(ev->id, "ooni-20210415084230.511612_IR_signal_ed269d082953bf2e");
        CHECK_STR(ev->country, "IR");
        CHECK(ev->time_ms == 1618476147000LL);
        CHECK(ev->value == 1.0 && ev->severity == 2 && near(ev->confidence, 0.5));
        CHECK_STR(ev->title, "OONI signal: anomaly");
        CHECK(strstr(ev->attrs, "\"probe_asn\":\"AS43754\"") != NULL);
        CHECK(strstr(ev->attrs, "\"analysis\":{\"signal_backend_failure\":"
                                "\"dns_nxdomain_error\"}") != NULL);
        CHECK(strstr(ev->attrs, "\"input\"") == NULL);
    }
    collect_free(&c);
    free(buf);
}

/* The sink can stop the parse: a positive answer ends it quietly, a
 * negative one is returned. */
static void test_stop(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf = read_data("measurements_web_connectivity.json", &len);

    CHECK(buf != NULL);
    if (!buf)
        return;
    c.stop_after = 3;
    c.stop_rc = 1;
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 3);
    collect_free(&c);
    c.stop_after = 2;
    c.stop_rc = RV_EAGAIN;
    CHECK(parse(buf, len, &c, &err) == RV_EAGAIN);
    CHECK_STR(err.msg, "emit: the sink stopped the parse");
    CHECK(c.n == 2);
    collect_free(&c);
    free(buf);
}

int main(void)
{
    test_measurements();
    test_measurements_hostile();
    test_truncated();
    test_aggregation_cc();
    test_aggregation_no_cc();
    test_aggregation_hostile();
    test_aggregation_open_day();
    test_meta();
    test_stop();
    {
        /* the payload sort hands on the same events, whole or in runs of 2 */
        static const char *const files[] = {
            "measurements_web_connectivity.json",
            "aggregation_web_connectivity_by_day_and_probe_cc.json"};
        for (size_t i = 0; i < 2; i++) {
            size_t l = 0;
            char *b = read_data_file("ooni", files[i], &l);
            CHECK(b != NULL && sorted_same("ooni", b, l, 0) && sorted_same("ooni", b, l, 2));
            free(b);
        }
    }
    if (check_failures) {
        fprintf(stderr, "test_feed_ooni: %d failure(s)\n", check_failures);
        return 1;
    }
    printf("test_feed_ooni: ok\n");
    return 0;
}

/*
 * test_feed_ioda: the IODA v2 parser. IODA has no public verbatim capture
 * (see tests/data/PROVENANCE.md), so tests/data/ioda/ holds small files
 * written by hand in the documented shape: raw signals with nulls, alerts
 * at the three levels, outage events with country, region and ASN
 * locations, an error envelope. Expected values are worked out by hand
 * from those files (time of value i = from + i*step).
 */
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_sink.h"

#include "check.h"

/* ------------------------------------------------------------ the sink */

static int parse(const char *buf, size_t len, struct collect *c, struct rv_errbuf *err)
{
    return collect_parse(rv_feed_parse_ioda, "ioda-test", buf, len, c, err);
}

static int parse_str(const char *s, struct collect *c, struct rv_errbuf *err)
{
    return parse(s, strlen(s), c, err);
}

static char *read_data(const char *name, size_t *len)
{
    return read_data_file("ioda", name, len);
}

/* Parses the file NAME into C; returns the parser's code. */
static int parse_file(const char *name, struct collect *c, struct rv_errbuf *err)
{
    size_t len = 0;
    char *buf = read_data(name, &len);
    int rc;

    CHECK(buf != NULL);
    if (!buf)
        return -100;
    rc = parse(buf, len, c, err);
    free(buf);
    return rc;
}

static void check_reject(const struct collect *c, size_t i, size_t record, const char *msg)
{
    CHECK(i < c->nrej);
    if (i >= c->nrej)
        return;
    if (c->rej[i].record != record)
        fprintf(stderr, "reject %zu: record %zu, want %zu\n", i, c->rej[i].record, record);
    CHECK(c->rej[i].record == record);
    CHECK_STR(c->rej[i].msg, msg);
}

/* ------------------------------------------------------------- signals */

static void check_signal(const struct collect *c, const char *id, long long t_ms, double value,
                         const char *attrs)
{
    const struct rv_event *ev = find(c, id);

    CHECK(ev != NULL);
    if (!ev) {
        fprintf(stderr, "missing %s\n", id);
        return;
    }
    CHECK_STR(ev->source, "ioda-test");
    CHECK_STR(ev->country, "TR");
    CHECK(ev->kind == RV_KIND_PROBE);
    CHECK(ev->violation == RV_V_INTERNET_SHUTDOWN);
    CHECK(ev->time_ms == t_ms);
    CHECK(ev->has_value && ev->value == value);
    CHECK(ev->severity == 3 && ev->count == 1 && ev->confidence == 1.0);
    CHECK(ev->title == NULL && ev->url == NULL);
    CHECK_STR(ev->attrs, attrs);
}

static void test_signals(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const char *bgp = "{\"datasource\":\"bgp\",\"entity_type\":\"country\",\"step\":300}";
    const char *ping = "{\"datasource\":\"ping-slash24\",\"entity_type\":\"country\",\"step\":600}";

    /* bgp: from 1706745600 (2024-02-01T00:00:00Z), step 300,
     *      values [62200, null, 62220, 0, null] -> i = 0, 2, 3
     * ping-slash24: step 600, values [1500.5, 1498, null] -> i = 0, 1 */
    CHECK(parse_file("signals_raw_country_TR.json", &c, &err) == RV_OK);
    CHECK(c.n == 5);
    CHECK(c.nrej == 0);
    check_signal(&c, "ioda-bgp-country-TR-1706745600", 1706745600000LL, 62200, bgp);
    check_signal(&c, "ioda-bgp-country-TR-1706746200", 1706746200000LL, 62220, bgp);
    check_signal(&c, "ioda-bgp-country-TR-1706746500", 1706746500000LL, 0, bgp);
    check_signal(&c, "ioda-ping-slash24-country-TR-1706745600", 1706745600000LL, 1500.5, ping);
    check_signal(&c, "ioda-ping-slash24-country-TR-1706746200", 1706746200000LL, 1498, ping);
    /* the nulls (i = 1 and 4 of bgp, i = 2 of ping) made nothing */
    CHECK(find(&c, "ioda-bgp-country-TR-1706745900") == NULL);
    CHECK(find(&c, "ioda-bgp-country-TR-1706746800") == NULL);
    CHECK(find(&c, "ioda-ping-slash24-country-TR-1706746800") == NULL);
    collect_free(&c);

    /* a region series: IODA's numeric region id names no ISO country */
    CHECK(parse_file("signals_raw_region_1906.json", &c, &err) == RV_OK);
    CHECK(c.n == 0);
    CHECK(c.nrej == 1);
    check_reject(&c, 0, 1,
                 "data[0][0].entityType: 'region' is not 'country' (no ISO country for "
                 "entityCode '1906')");
    collect_free(&c);

    /* hostile series: records count across the inner lists */
    CHECK(parse_str("{\"type\":\"signals\",\"error\":null,\"data\":[[{\"entityType\":\"country\","
                    "\"entityCode\":\"IR\",\"datasource\":\"merit-nt\",\"from\":1700000000,"
                    "\"step\":60,\"values\":[5,\"6\",-7,null,8]}],"
                    "[{\"entityType\":\"country\",\"entityCode\":\"XX\",\"datasource\":\"bgp\","
                    "\"from\":1700000000,\"step\":60,\"values\":[1]},"
                    "{\"entityType\":\"country\",\"entityCode\":\"IR\",\"datasource\":\"bgp\","
                    "\"from\":1700000000.5,\"step\":60,\"values\":[1]},"
                    "{\"entityType\":\"country\",\"entityCode\":\"IR\",\"datasource\":\"bg p\","
                    "\"from\":1700000000,\"step\":60,\"values\":[1]},"
                    "{\"entityType\":\"country\",\"entityCode\":\"IR\",\"datasource\":\"bgp\","
                    "\"from\":1700000000,\"step\":0,\"values\":[1]},"
                    "{\"entityType\":\"country\",\"entityCode\":\"IR\",\"datasource\":\"bgp\","
                    "\"from\":1700000000,\"step\":60},"
                    "3],{\"not\":\"a list\"}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 2);
    if (c.n == 2) {
        CHECK_STR(c.evs[0].id, "ioda-merit-nt-country-IR-1700000000");
        CHECK(c.evs[0].value == 5.0);
        CHECK_STR(c.evs[1].id, "ioda-merit-nt-country-IR-1700000240"); /* i = 4 */
        CHECK(c.evs[1].time_ms == 1700000240000LL && c.evs[1].value == 8.0);
    }
    CHECK(c.nrej == 9);
    check_reject(&c, 0, 1, "data[0][0].values[1]: not a number or null");
    check_reject(&c, 1, 1, "data[0][0].values[2]: -7 is negative");
    check_reject(&c, 2, 2, "data[1][0].entityCode: 'XX' is not an ISO 3166-1 alpha-2 code");
    check_reject(&c, 3, 3, "data[1][1].from: 1.7e+09 is not an integer in 0..253402300799");
    check_reject(&c, 4, 4,
                 "data[1][2].datasource: 'bg p' is not 1-32 characters of [A-Za-z0-9._-]");
    check_reject(&c, 5, 5, "data[1][3].step: 0 is not an integer in 1..31622400");
    check_reject(&c, 6, 6, "data[1][4].values: missing");
    check_reject(&c, 7, 7, "data[1][5]: not a series object");
    check_reject(&c, 8, 8, "data[2]: not a list of series");
    collect_free(&c);
}

/* -------------------------------------------------------------- alerts */

static void test_alerts(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const struct rv_event *ev;

    CHECK(parse_file("outages_alerts.json", &c, &err) == RV_OK);
    CHECK(c.n == 4);
    CHECK(c.nrej == 2);
    check_reject(&c, 0, 4, "data[3].entity: 'region/1906' is not a country");
    check_reject(&c, 1, 6, "data[5].level: 'severe' is not normal, warning or critical");

    /* critical: 600 of a history of 1500 */
    ev = find(&c, "ioda-alert-country-TR-ping-slash24-1706749200");
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR(ev->country, "TR");
        CHECK(ev->kind == RV_KIND_PROBE && ev->violation == RV_V_INTERNET_SHUTDOWN);
        CHECK(ev->time_ms == 1706749200000LL);
        CHECK(ev->has_value && fabs(ev->value - 0.4) < 1e-12);
        CHECK(ev->severity == 5);
        CHECK_STR(ev->title, "IODA critical alert: Turkey (ping-slash24)");
        CHECK_STR(ev->attrs, "{\"datasource\":\"ping-slash24\",\"level\":\"critical\","
                             "\"condition\":\"< 0.8\",\"value\":600,\"history_value\":1500,"
                             "\"entity_type\":\"country\"}");
    }
    /* warning: 61000 / 62200 */
    ev = find(&c, "ioda-alert-country-TR-bgp-1706749500");
    CHECK(ev != NULL);
    if (ev)
        CHECK(ev->severity == 3 && fabs(ev->value - 61000.0 / 62200.0) < 1e-12 &&
              ev->time_ms == 1706749500000LL);
    /* normal: the recovery, 1490 / 1500 */
    ev = find(&c, "ioda-alert-country-TR-ping-slash24-1706756400");
    CHECK(ev != NULL);
    if (ev)
        CHECK(ev->severity == 1 && fabs(ev->value - 1490.0 / 1500.0) < 1e-12);
    /* no history: ratio 1 */
    ev = find(&c, "ioda-alert-country-TO-merit-nt-1706760000");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ev->severity == 5 && ev->value == 1.0);
        CHECK_STR(ev->country, "TO");
    }
    collect_free(&c);

    CHECK(parse_str("{\"error\":null,\"data\":[{\"entity\":\"TR\"},"
                    "{\"entity\":{\"type\":\"asn\",\"code\":\"41678\"}},"
                    "{\"entity\":{\"type\":\"country\",\"code\":\"TR\"},\"datasource\":\"bgp\","
                    "\"time\":1706749200,\"level\":\"warning\",\"value\":-1,\"historyValue\":3},"
                    "{\"entity\":{\"type\":\"country\",\"code\":\"TR\"},\"datasource\":\"bgp\","
                    "\"time\":1706749200,\"level\":\"warning\",\"value\":1},"
                    "{\"entity\":{\"type\":\"country\",\"code\":\"TR\"},\"datasource\":\"bgp\","
                    "\"level\":\"warning\",\"value\":1,\"historyValue\":2}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 0);
    CHECK(c.nrej == 5);
    check_reject(&c, 0, 1, "data[0].entity: not an object");
    check_reject(&c, 1, 2, "data[1].entity: 'asn/41678' is not a country");
    check_reject(&c, 2, 3, "data[2].value: -1 is negative");
    check_reject(&c, 3, 4, "data[3].historyValue: missing");
    check_reject(&c, 4, 5, "data[4].time: missing");
    collect_free(&c);
}

/* -------------------------------------------------------------- events */

static void test_events(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const struct rv_event *ev;

    CHECK(parse_file("outages_events.json", &c, &err) == RV_OK);
    CHECK(c.n == 2);
    CHECK(c.nrej == 4);
    check_reject(&c, 0, 2, "data[1].location: 'region/1906' is not a country");
    check_reject(&c, 1, 3, "data[2].location: 'asn/41678' is not a country");
    check_reject(&c, 2, 5, "data[4].location: 'XX' is not an ISO 3166-1 alpha-2 code");
    check_reject(&c, 3, 6, "data[5].start: not a number");

    /* Tonga, 2022-01-15T10:00:00Z, five days, score 250000.5 -> severity 5 */
    ev = find(&c, "ioda-event-TO-bgp-1642240800");
    CHECK(ev != NULL);
    if (ev) {
        CHECK_STR(ev->country, "TO");
        CHECK(ev->kind == RV_KIND_INCIDENT && ev->violation == RV_V_INTERNET_SHUTDOWN);
        CHECK(ev->time_ms == 1642240800000LL);
        CHECK(ev->count == 1 && !ev->has_value);
        CHECK(ev->severity == 5);
        CHECK_STR(ev->title, "IODA outage: Tonga (bgp, 432000 s)");
        CHECK_STR(ev->attrs, "{\"duration_s\":432000,\"score\":250000.5,\"datasource\":\"bgp\","
                             "\"method\":\"median\",\"overlaps_window\":false}");
    }
    /* Turkey, score 999.9: just under 1000 -> severity 2 */
    ev = find(&c, "ioda-event-TR-ping-slash24-1642305000");
    CHECK(ev != NULL);
    if (ev)
        CHECK(ev->severity == 2 && ev->time_ms == 1642305000000LL &&
              strstr(ev->attrs, "\"overlaps_window\":true") != NULL);
    collect_free(&c);

    /* the score thresholds at their edges */
    {
        static const struct {
            const char *score;
            int severity;
        } edge[] = {{"0", 1},     {"99.99", 1},   {"100", 2},    {"9999", 3},
                    {"10000", 4}, {"99999.9", 4}, {"100000", 5}, {"1e12", 5}};
        for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
            char text[512];

            snprintf(text, sizeof text,
                     "{\"error\":null,\"data\":[{\"location\":\"country/SD\",\"start\":"
                     "1700000000,\"duration\":60,\"datasource\":\"gtr\",\"score\":%s}]}",
                     edge[i].score);
            CHECK(parse_str(text, &c, &err) == RV_OK);
            CHECK(c.n == 1 && c.evs[0].severity == edge[i].severity);
            collect_free(&c);
        }
    }
    CHECK(parse_str("{\"error\":null,\"data\":[{\"location\":\"TO\",\"start\":1,\"duration\":1,"
                    "\"datasource\":\"bgp\",\"score\":1},{\"location\":7}]}",
                    &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 2);
    check_reject(&c, 0, 1, "data[0].location: 'TO' is not type/code");
    check_reject(&c, 1, 2, "data[1].location: not a string");
    collect_free(&c);
}

/* ------------------------------------------------------------ envelope */

static void test_envelope(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    size_t len = 0;
    char *buf;

    CHECK(parse_file("error_envelope.json", &c, &err) == RV_EINVAL);
    CHECK(err.code == RV_EINVAL);
    CHECK_STR(err.msg, "error: Invalid entity type 'planet'");
    CHECK(c.n == 0 && c.nrej == 0);

    CHECK(parse_str("{\"type\":\"alerts\",\"error\":null,\"data\":[]}", &c, &err) == RV_OK);
    CHECK(parse_str("{\"type\":\"alerts\",\"error\":null,\"data\":null}", &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 0);
    CHECK(parse_str("{\"error\":{\"code\":500},\"data\":null}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "error: not null or a string");
    CHECK(parse_str("{\"type\":\"signals\",\"data\":[]}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "format: not an IODA v2 envelope (no error)");
    CHECK(parse_str("{\"error\":null}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "format: not an IODA v2 envelope (no data)");
    CHECK(parse_str("{\"error\":null,\"data\":{}}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "data: not an array");
    CHECK(parse_str("{\"error\":null,\"data\":[{\"what\":1}]}", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "data: not /signals/raw series, /outages/alerts or /outages/events");
    CHECK(parse_str("[]", &c, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "json: not an object");
    CHECK(parse("{}", (size_t)256 * 1024 * 1024 + 1, &c, &err) == RV_ETOOBIG);
    CHECK_STR(err.msg, "payload: 268435457 bytes is over the 268435456-byte cap");
    CHECK(c.n == 0 && c.nrej == 0);

    /* the signals file cut inside "values": [62200, null, 62220, 0, null] */
    buf = read_data("signals_raw_country_TR.json", &len);
    CHECK(buf != NULL);
    if (buf) {
        const char *p = strstr(buf, "62220");
        size_t cut = p ? (size_t)(p - buf) + 3 : 0; /* "622" */
        size_t line = 1;

        for (size_t i = 0; i < cut; i++)
            line += buf[i] == '\n';
        CHECK(p != NULL && line == 29);
        CHECK(parse(buf, cut, &c, &err) == RV_EINVAL);
        CHECK(c.n == 0 && c.nrej == 0);
        {
            char want[96];
            /* cJSON reads "622" to the end of the input and then reports
             * the last byte (it clips its position to length - 1) */
            snprintf(want, sizeof want, "json: syntax error at offset %zu (line 29)", cut - 1);
            CHECK_STR(err.msg, want);
        }
        free(buf);
    }

    /* the sink can stop the parse */
    c.stop_after = 2;
    c.stop_rc = 1;
    CHECK(parse_file("signals_raw_country_TR.json", &c, &err) == RV_OK);
    CHECK(c.n == 2);
    collect_free(&c);
    c.stop_after = 1;
    c.stop_rc = RV_EAGAIN;
    CHECK(parse_file("outages_alerts.json", &c, &err) == RV_EAGAIN);
    CHECK_STR(err.msg, "emit: the sink stopped the parse");
    CHECK(c.n == 1 && c.nrej == 0);
    collect_free(&c);
}

int main(void)
{
    test_signals();
    test_alerts();
    test_events();
    test_envelope();
    {
        /* the payload sort hands on the same events, whole or in runs of 2 */
        size_t l = 0;
        char *b = read_data_file("ioda", "signals_raw_country_TR.json", &l);
        CHECK(b != NULL && sorted_same("ioda", b, l, 0) && sorted_same("ioda", b, l, 2));
        free(b);
    }
    if (check_failures) {
        fprintf(stderr, "test_feed_ioda: %d failure(s)\n", check_failures);
        return 1;
    }
    printf("test_feed_ioda: ok\n");
    return 0;
}

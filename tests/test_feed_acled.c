/*
 * test_feed_acled: the ACLED parser on the 36-row fictional export
 * (tests/data/acled_export_format_fictional.csv, real 32-column header),
 * its 31-column and CRLF variants, a copy cut inside a quoted field,
 * hand-made CSV with RFC 4180 quoting and bad rows, the API JSON envelope
 * (string values, YYYY-MM-DD dates) and garbage.
 */
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "feed_sink.h"

#include "check.h"

#define SAMPLE "acled_export_format_fictional.csv"

static int parse(const char *buf, size_t len, struct collect *c, struct rv_errbuf *err)
{
    return collect_parse(rv_feed_parse_acled, "acled-test", buf, len, c, err);
}

/* Reject I has RECORD and MSG; prints both when not. */
static void check_reject(const struct collect *c, size_t i, size_t record, const char *msg)
{
    CHECK(i < c->nrej);
    if (i >= c->nrej)
        return;
    CHECK(c->rej[i].record == record);
    CHECK(strcmp(c->rej[i].msg, msg) == 0);
    if (c->rej[i].record != record || strcmp(c->rej[i].msg, msg) != 0)
        fprintf(stderr, "  got %zu \"%s\"\n  want %zu \"%s\"\n", c->rej[i].record, c->rej[i].msg,
                record, msg);
}

/* The string attribute KEY of EV's attrs, or NULL; caller frees. */
static char *attr_str(const struct rv_event *ev, const char *key)
{
    cJSON *o = ev->attrs ? cJSON_Parse(ev->attrs) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char *s = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;

    cJSON_Delete(o);
    return s;
}

static double attr_num(const struct rv_event *ev, const char *key)
{
    cJSON *o = ev->attrs ? cJSON_Parse(ev->attrs) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;

    cJSON_Delete(o);
    return d;
}

static int64_t day_ms(int y, int mo, int d)
{
    int64_t ms = -1;

    CHECK(rv_time_from_civil(y, mo, d, 0, 0, 0, &ms) == RV_OK);
    return ms;
}

/* Occurrences of NEEDLE in HAY. */
static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---------------------------------------------------------------- tests */

static void test_sample(const char *buf, size_t len, struct collect *out)
{
    size_t per_v[RV_VIOLATION_COUNT] = {0}, count_v[RV_VIOLATION_COUNT] = {0};
    struct rv_errbuf err;
    const struct rv_event *ev;
    char *s;

    /* The rows by type, counted with Python's csv module on the file:
     * 12 Attack (9 with deaths), 3 Abduction, 9 Excessive force, 3 Protest
     * with intervention, 6 Arrests, 3 Shelling with civilian targeting, 3
     * Armed clash without. Cross-checked here on the unquoted columns. */
    CHECK(count_of(buf, ",Violence against civilians,Attack,") == 9);
    CHECK(count_of(buf, ",Protests,Excessive force against protesters,") == 9);
    CHECK(count_of(buf, ",Protests,Protest with intervention,") == 3);
    CHECK(count_of(buf, ",Strategic developments,Arrests,") == 6);
    CHECK(count_of(buf, ",Violence against civilians,Abduction/forced disappearance,") == 3);
    CHECK(count_of(buf, ",Explosions/Remote violence,") == 3);
    CHECK(count_of(buf, ",Battles,Armed clash,") == 3);

    CHECK(parse(buf, len, out, &err) == RV_OK);
    /* 36 rows, 3 battles without civilian targeting skipped */
    CHECK(out->n == 33);
    CHECK(out->nrej == 0);
    for (size_t i = 0; i < out->nrej; i++)
        fprintf(stderr, "  reject %zu: %s\n", out->rej[i].record, out->rej[i].msg);
    for (size_t i = 0; i < out->n; i++) {
        ev = &out->evs[i];
        CHECK(ev->violation < RV_VIOLATION_COUNT);
        if (ev->violation >= RV_VIOLATION_COUNT)
            continue;
        per_v[ev->violation]++;
        count_v[ev->violation] += ev->count;
        CHECK(ev->kind == RV_KIND_INCIDENT);
        CHECK(strcmp(ev->source, "acled-test") == 0);
        CHECK(strncmp(ev->id, "acled-", 6) == 0);
        CHECK(ev->has_geo);
        CHECK(ev->url == NULL);
    }
    /* every Attack in the file has deaths: killing */
    CHECK(per_v[RV_V_KILLING] == 9);
    CHECK(per_v[RV_V_ASSEMBLY_REPRESSION] == 12);
    CHECK(per_v[RV_V_ARBITRARY_DETENTION] == 6);
    CHECK(per_v[RV_V_ATTACK_ON_CIVILIANS] == 3);
    CHECK(per_v[RV_V_ENFORCED_DISAPPEARANCE] == 3);
    /* counts are max(fatalities, 1), summed per violation in Python */
    CHECK(count_v[RV_V_KILLING] == 27);
    CHECK(count_v[RV_V_ASSEMBLY_REPRESSION] == 34);
    CHECK(count_v[RV_V_ATTACK_ON_CIVILIANS] == 16);
    CHECK(count_v[RV_V_ARBITRARY_DETENTION] == 6);
    CHECK(count_v[RV_V_ENFORCED_DISAPPEARANCE] == 3);
    CHECK(find(out, "acled-ETH900008") == NULL); /* armed clash */

    /* notes with a comma inside quotes; week precision */
    ev = find(out, "acled-SUD900001");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "SD") == 0); /* iso 729 */
        CHECK(ev->violation == RV_V_KILLING);
        CHECK(ev->count == 4);
        CHECK(ev->severity == 4); /* 3-9 deaths */
        CHECK(ev->time_ms == day_ms(2024, 3, 11));
        CHECK(fabs(ev->confidence - 0.8) < 1e-9);
        CHECK(strcmp(ev->admin1, "Khartoum") == 0);
        CHECK(ev->lat == 15.64 && ev->lon == 32.48);
        CHECK(ev->title && strcmp(ev->title, "Attack in Omdurman") == 0);
        s = attr_str(ev, "notes");
        CHECK(s && strcmp(s, "On 11 March 2024, Fictional example: armed men attacked civilians "
                             "in a market.") == 0);
        free(s);
        s = attr_str(ev, "acled_event_type");
        CHECK(s && strcmp(s, "Violence against civilians") == 0);
        free(s);
        s = attr_str(ev, "actor2");
        CHECK(s && strcmp(s, "Civilians (Fictional)") == 0);
        free(s);
        CHECK(attr_num(ev, "fatalities") == 4);
        CHECK(attr_num(ev, "time_precision") == 2);
        CHECK(attr_num(ev, "acled_timestamp") == 1704067200);
    }
    /* arrest, no deaths */
    ev = find(out, "acled-MYA900004");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "MM") == 0);
        CHECK(ev->violation == RV_V_ARBITRARY_DETENTION);
        CHECK(ev->count == 1 && ev->severity == 2 && ev->confidence == 1.0);
        CHECK(ev->time_ms == day_ms(2024, 9, 27));
    }
    /* 7 killed at a protest; iso 50 (two digits) is Bangladesh */
    ev = find(out, "acled-BAN900031");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "BD") == 0);
        CHECK(ev->violation == RV_V_ASSEMBLY_REPRESSION);
        CHECK(ev->count == 7 && ev->severity == 4);
        CHECK(ev->title && strcmp(ev->title, "Excessive force against protesters in Dhaka - "
                                             "Mirpur") == 0);
    }
    /* abduction with no deaths; negative latitude; iso 180 */
    ev = find(out, "acled-DEM900023");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "CD") == 0);
        CHECK(ev->violation == RV_V_ENFORCED_DISAPPEARANCE);
        CHECK(ev->count == 1 && ev->severity == 4);
        CHECK(ev->lat == -1.68);
    }
    /* shelling of civilians: the attack, deaths in count */
    ev = find(out, "acled-SUD900026");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(ev->violation == RV_V_ATTACK_ON_CIVILIANS);
        CHECK(ev->count == 6 && ev->severity == 4);
    }
}

/* The 31-column export (no population_best) and CRLF line ends give the
 * same events. */
static void test_variants(const char *buf, size_t len, const struct collect *plain)
{
    char *v31 = malloc(len * 2 + 1);
    struct collect c = {0};
    struct rv_errbuf err;
    size_t n = 0;
    const char *p = buf;

    CHECK(v31 != NULL);
    if (!v31)
        return;
    /* drop the last column of every line (population_best is unquoted) */
    while (*p) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        const char *comma = end;

        while (comma > p && *comma != ',')
            comma--;
        memcpy(v31 + n, p, (size_t)(comma - p));
        n += (size_t)(comma - p);
        v31[n++] = '\n';
        if (!nl)
            break;
        p = nl + 1;
    }
    v31[n] = '\0';
    CHECK(strncmp(v31 + n - 12, ",1707091200\n", 12) == 0);
    CHECK(parse(v31, n, &c, &err) == RV_OK);
    CHECK(c.n == plain->n && c.nrej == 0);
    for (size_t i = 0; i < c.n && i < plain->n; i++) {
        CHECK(strcmp(c.evs[i].id, plain->evs[i].id) == 0);
        CHECK(c.evs[i].count == plain->evs[i].count);
        CHECK(strcmp(c.evs[i].attrs, plain->evs[i].attrs) == 0);
    }
    collect_free(&c);

    n = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n')
            v31[n++] = '\r';
        v31[n++] = buf[i];
    }
    CHECK(parse(v31, n, &c, &err) == RV_OK);
    CHECK(c.n == plain->n && c.nrej == 0);
    for (size_t i = 0; i < c.n && i < plain->n; i++) {
        CHECK(strcmp(c.evs[i].id, plain->evs[i].id) == 0);
        CHECK(strcmp(c.evs[i].attrs, plain->evs[i].attrs) == 0);
    }
    collect_free(&c);
    free(v31);
}

/* A copy cut inside the quoted notes of line 20 (row BAN900019): the
 * events of lines 2-19 are kept, line 20 is rejected. */
static void test_truncated(const char *buf, const struct collect *plain)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const char *p = buf;
    size_t keep = 0;

    for (int line = 1; line < 20 && p; line++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    CHECK(p && strncmp(p, "BAN900019,", 10) == 0);
    if (!p)
        return;
    p = strstr(p, "\"On 8 January");
    CHECK(p != NULL);
    if (!p)
        return;
    p += 6;
    CHECK(parse(buf, (size_t)(p - buf), &c, &err) == RV_OK);
    for (size_t i = 0; i < plain->n; i++)
        if (strcmp(plain->evs[i].id, "acled-BAN900019") == 0)
            keep = i;
    CHECK(keep == 17); /* ETH900008 was skipped */
    CHECK(c.n == keep);
    CHECK(c.nrej == 1);
    check_reject(&c, 0, 20, "csv: quoted field in column 28 not closed at end of input");
    collect_free(&c);

    /* cut after the 5th comma of that line: too few columns */
    p = strstr(buf, "\nBAN900019,") + 1;
    for (int commas = 0; commas < 5; p++)
        if (*p == ',')
            commas++;
    CHECK(parse(buf, (size_t)(p - buf), &c, &err) == RV_OK);
    CHECK(c.n == keep && c.nrej == 1);
    check_reject(&c, 0, 20, "columns: expected 32, got 6");
    collect_free(&c);
}

/* Hand-made rows: other column order, RFC 4180 quoting across lines,
 * and one bad row per message. */
static void test_handmade(void)
{
    static const char csv[] =
        "notes,event_id_cnty,event_date,event_type,sub_event_type,civilian_targeting,iso,"
        "country,fatalities,admin1,location,latitude,longitude\r\n"
        /* line 2: quotes, commas and a line break inside notes */
        "\"He said \"\"stop\"\", then\nleft, quickly\",TST1,2024-02-29,Violence against "
        "civilians,Attack,Civilian targeting,760,Syria,0,Idlib,\"Idlib, city\",35.93,36.63\n"
        /* line 4: bad date */
        "x,TST2,31 Febuary 2024,Protests,Excessive force against protesters,,364,Iran,0,,,,\n"
        /* line 5: unknown iso and country */
        "x,TST3,1 May 2024,Protests,Excessive force against protesters,,999,Atlantis,0,,,,\n"
        /* line 6: no iso: the name decides */
        "x,TST4,1 May 2024,Strategic developments,Arrests,,,Syria,0,,,,\n"
        /* line 7: fatalities not a number */
        "x,TST5,1 May 2024,Violence against civilians,Attack,,760,Syria,two,,,,\n"
        /* line 8: too few columns */
        "x,TST6,1 May 2024\n"
        /* line 9: text after a closing quote */
        "\"x\"y,TST7,1 May 2024,Protests,Excessive force against protesters,,760,Syria,0,,,,\n"
        /* line 10: displacement note */
        "\"Displacement: 300 families fled, Fictional\",TST8,01 May 2024,Strategic "
        "developments,Other,,760,Syria,0,,,,\n"
        /* line 11: other Strategic developments: skipped */
        "Fictional agreement,TST9,1 May 2024,Strategic developments,Agreement,,760,Syria,0,,,,\n"
        /* line 12: peaceful protest: skipped */
        "x,TST10,1 May 2024,Protests,Peaceful protest,,760,Syria,0,,,,\n"
        /* line 13: bad latitude */
        "x,TST11,1 May 2024,Protests,Protest with intervention,,760,Syria,0,,,3x,36\n"
        /* line 14: February 31st */
        "x,TST12,2024-02-31,Protests,Protest with intervention,,760,Syria,0,,,,\n";
    struct collect c = {0};
    struct rv_errbuf err;
    const struct rv_event *ev;
    char *s;

    CHECK(parse(csv, sizeof csv - 1, &c, &err) == RV_OK);
    CHECK(c.n == 3);
    ev = find(&c, "acled-TST1");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "SY") == 0);
        CHECK(ev->violation == RV_V_ATTACK_ON_CIVILIANS); /* no deaths */
        CHECK(ev->time_ms == day_ms(2024, 2, 29));
        CHECK(ev->title && strcmp(ev->title, "Attack in Idlib, city") == 0);
        s = attr_str(ev, "notes");
        CHECK(s && strcmp(s, "He said \"stop\", then\nleft, quickly") == 0);
        free(s);
    }
    ev = find(&c, "acled-TST4");
    CHECK(ev != NULL && strcmp(ev->country, "SY") == 0 && !ev->has_geo &&
          strcmp(ev->title, "Arrests") == 0);
    ev = find(&c, "acled-TST8");
    CHECK(ev != NULL && ev->violation == RV_V_DISPLACEMENT && ev->time_ms == day_ms(2024, 5, 1));
    CHECK(c.nrej == 7);
    check_reject(&c, 0, 4,
                 "event_date: '31 Febuary 2024' is not a date (DD Month YYYY or YYYY-MM-DD)");
    check_reject(&c, 1, 5,
                 "iso: '999' is not an ISO 3166-1 numeric code and country 'Atlantis' is "
                 "unknown");
    check_reject(&c, 2, 7, "fatalities: 'two' is not an integer 0..100000000");
    check_reject(&c, 3, 8, "columns: expected 13, got 3");
    check_reject(&c, 4, 9, "csv: text after the closing quote in column 1");
    check_reject(&c, 5, 13, "latitude: '3x' is not a number");
    check_reject(&c, 6, 14, "event_date: '2024-02-31' is not a date (DD Month YYYY or YYYY-MM-DD)");
    collect_free(&c);
}

/* The API envelope: every value a string, dates YYYY-MM-DD, escaped
 * slashes. */
static void test_json(void)
{
    static const char json[] =
        "{\"status\":200,\"success\":true,\"last_update\":1704833944,\"count\":5,"
        "\"messages\":[],\"data\":["
        "{\"event_id_cnty\":\"UKR148710\",\"event_date\":\"2024-01-01\",\"year\":\"2024\","
        "\"time_precision\":\"1\",\"disorder_type\":\"Political violence\","
        "\"event_type\":\"Explosions\\/Remote violence\","
        "\"sub_event_type\":\"Shelling\\/artillery\\/missile attack\","
        "\"actor1\":\"Fictional Actor A\",\"assoc_actor_1\":\"\",\"inter1\":\"8\","
        "\"actor2\":\"Civilians (Fictional)\",\"civilian_targeting\":\"Civilian targeting\","
        "\"iso\":\"804\",\"region\":\"Europe\",\"country\":\"Ukraine\",\"admin1\":\"Kharkiv\","
        "\"admin2\":\"Lozivskyi\",\"location\":\"Lozova\",\"latitude\":\"48.8926\","
        "\"longitude\":\"36.3172\",\"source\":\"Fictional Source\",\"notes\":\"Fictional.\","
        "\"fatalities\":\"2\",\"tags\":\"\",\"timestamp\":\"1704833944\"},"
        "{\"event_id_cnty\":\"UKR2\",\"event_date\":\"2024-13-01\","
        "\"event_type\":\"Violence against civilians\",\"sub_event_type\":\"Attack\","
        "\"iso\":\"804\",\"country\":\"Ukraine\",\"fatalities\":\"0\"},"
        "{\"event_id_cnty\":\"XXX3\",\"event_date\":\"2024-01-02\","
        "\"event_type\":\"Violence against civilians\",\"sub_event_type\":\"Sexual violence\","
        "\"iso\":\"999\",\"country\":\"Atlantis\",\"fatalities\":\"0\"},"
        "\"not an object\","
        "{\"event_id_cnty\":\"UKR5\",\"event_date\":\"16 February 2024\","
        "\"event_type\":\"Violence against civilians\",\"sub_event_type\":\"Sexual violence\","
        "\"iso\":804,\"country\":\"Ukraine\",\"fatalities\":\"0\",\"time_precision\":\"3\"},"
        "{\"event_id_cnty\":\"UKR6\",\"event_date\":\"2024-01-03\","
        "\"event_type\":\"Protests\",\"sub_event_type\":\"Peaceful protest\","
        "\"iso\":\"804\",\"country\":\"Ukraine\",\"fatalities\":\"0\"}"
        "],\"filename\":\"2024-01-09\"}";
    struct collect c = {0};
    struct rv_errbuf err;
    const struct rv_event *ev;
    char *s;

    CHECK(parse(json, sizeof json - 1, &c, &err) == RV_OK);
    CHECK(c.n == 2);
    ev = find(&c, "acled-UKR148710");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "UA") == 0);
        CHECK(ev->violation == RV_V_ATTACK_ON_CIVILIANS);
        CHECK(ev->count == 2 && ev->severity == 3 && ev->confidence == 1.0);
        CHECK(ev->time_ms == day_ms(2024, 1, 1));
        CHECK(strcmp(ev->admin1, "Kharkiv") == 0);
        CHECK(ev->has_geo && ev->lat == 48.8926 && ev->lon == 36.3172);
        CHECK(ev->title && strcmp(ev->title, "Shelling/artillery/missile attack in Lozova") == 0);
        s = attr_str(ev, "acled_sub_event_type");
        CHECK(s && strcmp(s, "Shelling/artillery/missile attack") == 0);
        free(s);
        CHECK(attr_num(ev, "acled_timestamp") == 1704833944);
    }
    ev = find(&c, "acled-UKR5");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "UA") == 0); /* a number, tolerated */
        CHECK(ev->violation == RV_V_SEXUAL_VIOLENCE);
        CHECK(ev->time_ms == day_ms(2024, 2, 16));
        CHECK(fabs(ev->confidence - 0.6) < 1e-9); /* month precision */
        CHECK(ev->title && strcmp(ev->title, "Sexual violence") == 0);
    }
    CHECK(c.nrej == 3);
    check_reject(&c, 0, 2, "event_date: '2024-13-01' is not a date (DD Month YYYY or YYYY-MM-DD)");
    check_reject(&c, 1, 3,
                 "iso: '999' is not an ISO 3166-1 numeric code and country 'Atlantis' is "
                 "unknown");
    check_reject(&c, 2, 4, "data: record is not an object");
    collect_free(&c);
}

static void test_garbage(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const char *text = "hello, world\nfoo, bar\n";
    const char *denied = "{\"status\":403,\"success\":false,\"error\":{\"status\":403,"
                         "\"message\":\"Access denied\"}}";
    const char *nodata = "{\"status\":200,\"success\":true,\"count\":0}";
    const char *empty = "{\"status\":200,\"success\":true,\"count\":0,\"data\":[]}";
    const char *cut = "{\"status\":200,\"data\":[{\"event_id_cnty\":\"UK";

    CHECK(parse(text, strlen(text), &c, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "header: no column 'event_id_cnty' (not an ACLED export)") == 0);
    CHECK(parse(denied, strlen(denied), &c, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "acled: API error status 403: Access denied") == 0);
    CHECK(parse(nodata, strlen(nodata), &c, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "data: missing or not an array") == 0);
    CHECK(parse(cut, strlen(cut), &c, &err) == RV_EINVAL);
    CHECK(strncmp(err.msg, "json: syntax error at offset ", 29) == 0);
    CHECK(parse("\"unterminated,header\n", 21, &c, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "header: csv: quoted field in column 1 not closed at end of input") == 0);
    CHECK(c.n == 0 && c.nrej == 0);
    CHECK(parse(empty, strlen(empty), &c, &err) == RV_OK);
    CHECK(parse("", 0, &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 0);
    collect_free(&c);
}

/* emit answering non-zero stops the parser; a negative answer is
 * returned. The 5th event of the sample is on line 6 (IRA900005). */
static void test_stop(const char *buf, size_t len)
{
    struct collect c = {0};
    struct rv_errbuf err;

    c.stop_after = 5;
    c.stop_rc = 1;
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 5);
    collect_free(&c);
    c.stop_after = 5;
    c.stop_rc = RV_EIO;
    CHECK(parse(buf, len, &c, &err) == RV_EIO);
    CHECK(c.n == 5 && strcmp(c.evs[4].id, "acled-IRA900005") == 0);
    CHECK(strcmp(err.msg, "emit: the sink stopped the parse at record 6") == 0);
    collect_free(&c);
}

int main(void)
{
    const char *dir = getenv("RV_TEST_DATA");
    char path[4096];
    struct collect plain = {0};
    size_t len = 0;
    char *buf;

    if (!dir) {
        fprintf(stderr, "RV_TEST_DATA is not set\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, SAMPLE);
    buf = read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    test_sample(buf, len, &plain);
    test_variants(buf, len, &plain);
    test_truncated(buf, &plain);
    test_handmade();
    test_json();
    test_garbage();
    test_stop(buf, len);
    /* the payload sort hands on the same events, whole or in runs of 3 */
    CHECK(sorted_same("acled", buf, len, 0));
    CHECK(sorted_same("acled", buf, len, 3));
    printf("acled sample: events=%zu rejects=%zu\n", plain.n, plain.nrej);
    collect_free(&plain);
    free(buf);
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

/*
 * test_feed_gdelt: the GDELT 2.0 events parser on the real 15-minute
 * export sample (tests/data/20170101073000.export.sample.CSV), its zip
 * built here with libzip, CRLF, a copy cut mid-line, hostile rows and
 * garbage. Expected numbers are recomputed here from the raw file with a
 * plain tab split, not taken from the parser.
 */
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "feed_sink.h"

#include "check.h"

#define SAMPLE "20170101073000.export.sample.CSV"

/* ------------------------------------------------------------ the sink */

static int parse(const char *buf, size_t len, struct collect *c, struct rv_errbuf *err)
{
    return collect_parse(rv_feed_parse_gdelt, "gdelt-test", buf, len, c, err);
}

/* -------------------------------------- independent view of the sample */

#define MAXROWS 400

struct row {
    size_t line;    /* 1-based */
    char id[24];    /* GLOBALEVENTID */
    char code[8];   /* EventCode */
    char base[8];   /* EventBaseCode */
    char root[8];   /* EventRootCode */
    char action[8]; /* ActionGeo_CountryCode */
    char actor1[8]; /* Actor1Geo_CountryCode */
};

/* Column I (0-based) of a tab-separated LINE into OUT. */
static void column(const char *line, int i, char *out, size_t cap)
{
    const char *p = line, *e;
    size_t n;

    for (; i > 0 && p; i--) {
        p = strchr(p, '\t');
        if (p)
            p++;
    }
    out[0] = '\0';
    if (!p)
        return;
    e = strpbrk(p, "\t\n");
    n = e ? (size_t)(e - p) : strlen(p);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static size_t load_rows(const char *buf, struct row *rows)
{
    size_t n = 0, line = 0;
    const char *p = buf;

    while (*p && n < MAXROWS) {
        const char *nl = strchr(p, '\n');

        line++;
        rows[n].line = line;
        column(p, 0, rows[n].id, sizeof rows[n].id);
        column(p, 26, rows[n].code, sizeof rows[n].code);
        column(p, 27, rows[n].base, sizeof rows[n].base);
        column(p, 28, rows[n].root, sizeof rows[n].root);
        column(p, 53, rows[n].action, sizeof rows[n].action);
        column(p, 37, rows[n].actor1, sizeof rows[n].actor1);
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* The mapping the parser documents, restated from the CAMEO codebook:
 * -1 = not a violation. */
static int expected_violation(const struct row *r)
{
    const char *c = r->code, *b = r->base;

    if (!strcmp(c, "1823") || !strcmp(b, "186") || !strcmp(r->root, "20"))
        return strcmp(b, "201") ? RV_V_KILLING : RV_V_DISPLACEMENT;
    if (!strcmp(c, "1821"))
        return RV_V_SEXUAL_VIOLENCE;
    if (!strcmp(c, "1822"))
        return RV_V_TORTURE;
    if (!strcmp(b, "181"))
        return RV_V_ENFORCED_DISAPPEARANCE;
    if (!strcmp(r->root, "18"))
        return RV_V_ATTACK_ON_CIVILIANS;
    if (!strcmp(r->root, "19"))
        return strcmp(b, "192") && strcmp(b, "196") ? RV_V_ATTACK_ON_CIVILIANS : -1;
    if (!strcmp(b, "173"))
        return RV_V_ARBITRARY_DETENTION;
    if (!strcmp(b, "174") || !strcmp(b, "201"))
        return RV_V_DISPLACEMENT;
    if (!strcmp(b, "175") || !strcmp(c, "1723") || !strcmp(c, "1724"))
        return RV_V_ASSEMBLY_REPRESSION;
    if (!strcmp(c, "1721") || !strcmp(c, "1722"))
        return RV_V_EXPRESSION_RESTRICTION;
    if (!strcmp(c, "1712"))
        return RV_V_ATTACK_ON_CIVILIANS;
    return -1;
}

static int64_t ms_of(int y, int mo, int d, int h, int mi, int s)
{
    int64_t ms = -1;

    CHECK(rv_time_from_civil(y, mo, d, h, mi, s, &ms) == RV_OK);
    return ms;
}

/* ---------------------------------------------------------------- tests */

static void test_sample(const char *buf, size_t len, struct collect *out)
{
    static struct row rows[MAXROWS];
    struct rv_errbuf err;
    size_t nrows = load_rows(buf, rows), relevant = 0, mapped = 0, nogeo = 0;
    size_t per_v[RV_VIOLATION_COUNT] = {0}, got_v[RV_VIOLATION_COUNT] = {0};
    const struct rv_event *ev;
    int rc;

    CHECK(nrows == 274);
    for (size_t i = 0; i < nrows; i++) {
        const char *root = rows[i].root;
        int v = expected_violation(&rows[i]);

        if (!strcmp(root, "14") || !strcmp(root, "17") || !strcmp(root, "18") ||
            !strcmp(root, "19") || !strcmp(root, "20"))
            relevant++;
        if (v < 0)
            continue;
        mapped++;
        if (!rows[i].action[0] && !rows[i].actor1[0]) {
            nogeo++;
            continue;
        }
        per_v[v]++;
    }
    /* the sample was cut to keep every root 14-20 row of the 720 */
    CHECK(relevant == 121);

    rc = parse(buf, len, out, &err);
    CHECK(rc == RV_OK);
    printf("gdelt sample: rows=%zu relevant=%zu mapped=%zu emitted=%zu rejected=%zu\n", nrows,
           relevant, mapped, out->n, out->nrej);
    /* every mapped row is an event, except those GDELT could not place */
    CHECK(out->n == mapped - nogeo);
    CHECK(out->nrej == nogeo);
    CHECK(nogeo > 0);
    for (size_t i = 0; i < out->nrej; i++)
        CHECK(strcmp(out->rej[i].msg, "country: no ActionGeo country") == 0);
    /* emitted + rejected + skipped == the rows with a root 14-20: the
     * skipped ones are 10 protests (14x), 3 administrative sanctions (172)
     * and 1 occupation (192); all other rows have roots 01-13, 16 */
    CHECK(relevant - mapped == 14);
    CHECK(out->n + out->nrej + 14 == relevant);
    for (size_t i = 0; i < out->n; i++) {
        CHECK(out->evs[i].violation < RV_VIOLATION_COUNT);
        if (out->evs[i].violation < RV_VIOLATION_COUNT)
            got_v[out->evs[i].violation]++;
        CHECK(strcmp(out->evs[i].source, "gdelt-test") == 0);
        CHECK(out->evs[i].kind == RV_KIND_NEWS);
        CHECK(out->evs[i].count == 1);
        CHECK(strncmp(out->evs[i].id, "gdelt-", 6) == 0);
    }
    for (int v = 0; v < RV_VIOLATION_COUNT; v++)
        CHECK(got_v[v] == per_v[v]);
    for (int v = 0; v < RV_VIOLATION_COUNT; v++)
        printf(" %s=%zu", rv_violation_name(v), got_v[v]);
    printf("\n");
    CHECK(got_v[RV_V_ARBITRARY_DETENTION] == 32);
    CHECK(got_v[RV_V_KILLING] == 7);

    /* the rejected rows are the ones with no Geo at all, by line */
    for (size_t i = 0, k = 0; i < nrows; i++) {
        if (expected_violation(&rows[i]) < 0 || rows[i].action[0] || rows[i].actor1[0])
            continue;
        CHECK(k < out->nrej && out->rej[k].record == rows[i].line);
        k++;
    }

    /* Burundi is FIPS BY, ISO BI; dated the day it was seen */
    ev = find(out, "gdelt-613300852");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "BI") == 0);
        CHECK(ev->violation == RV_V_ATTACK_ON_CIVILIANS);
        CHECK(ev->time_ms == ms_of(2017, 1, 1, 0, 0, 0));
        CHECK(ev->has_geo && ev->lat == -3.3797 && ev->lon == 29.3639);
        CHECK(ev->severity == 5); /* Goldstein -10 */
        CHECK(fabs(ev->confidence - 0.3) < 1e-9);
        CHECK(strcmp(ev->admin1, "Bujumbura City") == 0);
        CHECK(ev->title &&
              strcmp(ev->title, "use conventional military force, not specified below - "
                                "BURUNDI") == 0);
        CHECK(ev->url && strncmp(ev->url, "http://www.monitor.co.ug/News/World/", 36) == 0);
        CHECK(ev->attrs && strstr(ev->attrs, "\"cameo\":\"190\"") &&
              strstr(ev->attrs, "\"goldstein\":-10") && strstr(ev->attrs, "\"num_mentions\":1"));
    }
    /* China is FIPS CH; SQLDATE 2016-01-02 is a year before DATEADDED:
     * the event time is DATEADDED */
    ev = find(out, "gdelt-613300832");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "CN") == 0);
        CHECK(ev->time_ms == ms_of(2017, 1, 1, 7, 30, 0));
        CHECK(strcmp(ev->admin1, "") == 0); /* country-level Geo */
        CHECK(ev->title && strcmp(ev->title, "CONSERVATIONIST - fight with small arms and light "
                                             "weapons - AFRICA") == 0);
    }
    /* arrest, Turkey (FIPS TU), 3 sources and 18 articles: confidence 1 */
    ev = find(out, "gdelt-613301020");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "TR") == 0);
        CHECK(ev->violation == RV_V_ARBITRARY_DETENTION);
        CHECK(ev->severity == 3); /* Goldstein -5 */
        CHECK(ev->confidence == 1.0);
        CHECK(strcmp(ev->admin1, "Istanbul") == 0);
        CHECK(ev->title &&
              strcmp(ev->title, "POLICE - arrest, detain, or charge with legal action - "
                                "TERRORIST") == 0);
    }
    /* one source, three articles: 0.3 + 2 * 0.05; India is FIPS IN too */
    ev = find(out, "gdelt-613300843");
    CHECK(ev != NULL);
    if (ev) {
        CHECK(strcmp(ev->country, "IN") == 0);
        CHECK(fabs(ev->confidence - 0.4) < 1e-9);
        CHECK(ev->time_ms == ms_of(2016, 12, 31, 0, 0, 0));
        CHECK(strcmp(ev->admin1, "Maharashtra") == 0);
        CHECK(ev->title &&
              strcmp(ev->title, "JUDGE - arrest, detain, or charge with legal action") == 0);
    }
    /* kill by physical assault */
    ev = find(out, "gdelt-613300925");
    CHECK(ev != NULL && ev->violation == RV_V_KILLING && strcmp(ev->country, "US") == 0);
    /* 172 administrative sanctions, 141 demonstrate: not violations */
    CHECK(find(out, "gdelt-613300945") == NULL);
}

/* The same file zipped with libzip gives the same events. */
static void test_zip(const char *buf, size_t len, const struct collect *plain)
{
    char dir[] = "/tmp/rv-gdelt-XXXXXX", path[64];
    struct collect c = {0};
    struct rv_errbuf err;
    zip_source_t *src;
    zip_t *za;
    char *zbuf;
    size_t zlen = 0;
    int zerr = 0, rc;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/" SAMPLE ".zip", dir);
    za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    CHECK(za != NULL);
    if (!za)
        return;
    src = zip_source_buffer(za, buf, len, 0);
    CHECK(src != NULL);
    CHECK(zip_file_add(za, SAMPLE, src, 0) == 0);
    CHECK(zip_close(za) == 0);
    zbuf = read_file(path, &zlen);
    CHECK(zbuf != NULL && zlen > 4 && zlen < len);
    if (zbuf) {
        rc = parse(zbuf, zlen, &c, &err);
        CHECK(rc == RV_OK);
        CHECK(c.n == plain->n);
        CHECK(c.nrej == plain->nrej);
        for (size_t i = 0; i < c.n && i < plain->n; i++) {
            CHECK(strcmp(c.evs[i].id, plain->evs[i].id) == 0);
            CHECK(c.evs[i].time_ms == plain->evs[i].time_ms);
            CHECK(c.evs[i].violation == plain->evs[i].violation);
            CHECK(strcmp(c.evs[i].country, plain->evs[i].country) == 0);
        }
        collect_free(&c);

        /* a zip cut short: its central directory is gone */
        rc = parse(zbuf, zlen / 2, &c, &err);
        CHECK(rc == RV_EINVAL);
        CHECK(strcmp(err.msg, "zip: Not a zip archive") == 0);
        if (strcmp(err.msg, "zip: Not a zip archive") != 0)
            fprintf(stderr, "half zip: %s\n", err.msg);
        CHECK(c.n == 0 && c.nrej == 0);
        collect_free(&c);
        free(zbuf);
    }
    unlink(path);
    rmdir(dir);
}

/* CRLF line ends give the same events. */
static void test_crlf(const char *buf, size_t len, const struct collect *plain)
{
    char *crlf = malloc(len * 2 + 1);
    struct collect c = {0};
    struct rv_errbuf err;
    size_t n = 0;

    CHECK(crlf != NULL);
    if (!crlf)
        return;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = buf[i];
    }
    CHECK(parse(crlf, n, &c, &err) == RV_OK);
    CHECK(c.n == plain->n && c.nrej == plain->nrej);
    for (size_t i = 0; i < c.n && i < plain->n; i++) {
        CHECK(strcmp(c.evs[i].id, plain->evs[i].id) == 0);
        /* the URL is the last column: no '\r' left on it */
        CHECK(c.evs[i].url && plain->evs[i].url && strcmp(c.evs[i].url, plain->evs[i].url) == 0);
    }
    collect_free(&c);
    free(crlf);
}

/* A copy cut in the middle of line 189 (GLOBALEVENTID 613301020), after
 * its 12th tab: lines 1-188 are kept, line 189 is rejected. */
static void test_truncated(const char *buf, const struct collect *plain)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const char *p = buf;
    size_t keep = 0, before = 0;

    for (int line = 1; line < 189 && p; line++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    CHECK(p && strncmp(p, "613301020\t", 10) == 0);
    if (!p)
        return;
    for (int tabs = 0; tabs < 12; p++)
        if (*p == '\t')
            tabs++;
    p += 2; /* two bytes into column 13 */
    CHECK(parse(buf, (size_t)(p - buf), &c, &err) == RV_OK);
    /* the rows without Geo before line 189, then the cut line */
    for (size_t i = 0; i < plain->nrej; i++)
        if (plain->rej[i].record < 189)
            before++;
    CHECK(c.nrej == before + 1);
    for (size_t i = 0; i < plain->n; i++)
        if (strcmp(plain->evs[i].id, "gdelt-613301020") == 0)
            keep = i; /* events before it */
    CHECK(keep > 0 && c.n == keep);
    for (size_t i = 0; i < c.n && i < keep; i++)
        CHECK(strcmp(c.evs[i].id, plain->evs[i].id) == 0);
    CHECK(c.nrej >= 1);
    if (c.nrej >= 1) {
        CHECK(c.rej[c.nrej - 1].record == 189);
        CHECK(strcmp(c.rej[c.nrej - 1].msg, "columns: expected 61, got 13") == 0);
    }
    collect_free(&c);
}

/* The row of GLOBALEVENTID 613301020 with column COL replaced by VALUE. */
static char *variant(const char *buf, int col, const char *value)
{
    const char *p = strstr(buf, "\n613301020\t"), *s, *e;
    char *out;
    size_t n;

    if (!p)
        return NULL;
    p++;
    s = p;
    for (int i = 0; i < col; i++)
        s = strchr(s, '\t') + 1;
    e = strpbrk(s, "\t\n");
    n = (size_t)(s - p) + strlen(value) + strlen(e);
    out = malloc(n + 1);
    if (!out)
        return NULL;
    snprintf(out, n + 1, "%.*s%s%.*s", (int)(s - p), p, value, (int)(strchr(e, '\n') - e + 1), e);
    return out;
}

static void expect_one(const char *text, size_t nev, const char *msg)
{
    struct collect c = {0};
    struct rv_errbuf err;

    CHECK(text != NULL);
    if (!text)
        return;
    CHECK(parse(text, strlen(text), &c, &err) == RV_OK);
    if (c.n != nev || c.nrej != (msg ? 1u : 0u))
        fprintf(stderr, "  err \"%s\" events %zu rejects %zu\n", err.msg, c.n, c.nrej);
    CHECK(c.n == nev);
    CHECK(c.nrej == (msg ? 1u : 0u));
    if (msg && c.nrej == 1) {
        CHECK(c.rej[0].record == 1);
        CHECK(strcmp(c.rej[0].msg, msg) == 0);
        if (strcmp(c.rej[0].msg, msg) != 0)
            fprintf(stderr, "  got \"%s\"\n  want \"%s\"\n", c.rej[0].msg, msg);
    }
    collect_free(&c);
}

static void test_hostile(const char *buf)
{
    char *v;
    struct collect c = {0};
    struct rv_errbuf err;

    v = variant(buf, 1, "2017013x");
    expect_one(v, 0, "SQLDATE: '2017013x' is not a date YYYYMMDD");
    free(v);
    v = variant(buf, 1, "20170231");
    expect_one(v, 0, "SQLDATE: '20170231' is not a date YYYYMMDD");
    free(v);
    v = variant(buf, 59, "2017010107300");
    expect_one(v, 0, "DATEADDED: '2017010107300' is not a time YYYYMMDDHHMMSS");
    free(v);
    v = variant(buf, 53, "QQ");
    expect_one(v, 0, "country: FIPS 10-4 'QQ' has no ISO 3166-1 country");
    free(v);
    v = variant(buf, 30, "-11.0");
    expect_one(v, 0, "GoldsteinScale: '-11.0' is not a number in -10..10");
    free(v);
    v = variant(buf, 32, "x");
    expect_one(v, 0, "NumSources: 'x' is not a count");
    free(v);
    v = variant(buf, 56, "95.5");
    expect_one(v, 0, "lat: must be a number -90..90");
    free(v);
    v = variant(buf, 56, "4l.0186");
    expect_one(v, 0, "lat: '4l.0186' is not a number");
    free(v);
    v = variant(buf, 12, "COP\tEXTRA");
    expect_one(v, 0, "columns: expected 61, got 62");
    free(v);
    /* an unknown EventCode still maps through EventBaseCode 173 */
    v = variant(buf, 26, "1739");
    expect_one(v, 1, NULL);
    free(v);
    /* a SOURCEURL that is not a URL gives no url */
    v = variant(buf, 60, "Sharq TV, Jalalabad/BBC Monitoring/(c) BBC");
    if (v) {
        CHECK(parse(v, strlen(v), &c, &err) == RV_OK);
        CHECK(c.n == 1 && c.evs[0].url == NULL);
        collect_free(&c);
        free(v);
    }
}

/* A row whose three CAMEO codes are all unmapped: skipped, no reject. */
static void test_unmapped(const char *buf)
{
    const char *p = strstr(buf, "\n613301020\t");
    char *row;
    size_t n;
    int tabs = 0;

    CHECK(p != NULL);
    if (!p)
        return;
    p++;
    n = (size_t)(strchr(p, '\n') - p) + 1;
    row = strndup(p, n);
    CHECK(row != NULL);
    if (!row)
        return;
    for (char *q = row; *q; q++) {
        if (*q != '\t')
            continue;
        tabs++;
        if (tabs == 26)
            memcpy(q + 1, "042", 3); /* EventCode 173 -> 042 */
        else if (tabs == 27)
            memcpy(q + 1, "042", 3); /* EventBaseCode 173 -> 042 */
        else if (tabs == 28)
            memcpy(q + 1, "04", 2); /* EventRootCode 17 -> 04 */
    }
    expect_one(row, 0, NULL);
    free(row);
}

static void test_garbage(void)
{
    struct collect c = {0};
    struct rv_errbuf err;
    const char *json = "{\"status\":200,\"data\":[]}\n";
    const char *text = "hello\tworld\n";

    CHECK(parse(json, strlen(json), &c, &err) == RV_EINVAL);
    CHECK(strcmp(err.msg, "gdelt: line 1 is not an event row (61 tab-separated columns, "
                          "GLOBALEVENTID first)") == 0);
    CHECK(parse(text, strlen(text), &c, &err) == RV_EINVAL);
    CHECK(strncmp(err.msg, "gdelt: line 1 is not an event row", 33) == 0);
    CHECK(parse("PK\x03\x04garbage", 11, &c, &err) == RV_EINVAL);
    CHECK(strncmp(err.msg, "zip: ", 5) == 0);
    CHECK(c.n == 0 && c.nrej == 0);
    /* empty payload: nothing to do */
    CHECK(parse("", 0, &c, &err) == RV_OK);
    CHECK(c.n == 0 && c.nrej == 0);
    collect_free(&c);
}

/* emit answering non-zero stops the parser. */
static void test_stop(const char *buf, size_t len)
{
    struct collect c = {0};
    struct rv_errbuf err;

    c.stop_after = 3;
    c.stop_rc = 1; /* enough: not an error */
    CHECK(parse(buf, len, &c, &err) == RV_OK);
    CHECK(c.n == 3);
    collect_free(&c);
    /* a failing sink: its code comes back; the third event is line 9 */
    c.stop_after = 3;
    c.stop_rc = RV_EIO;
    CHECK(parse(buf, len, &c, &err) == RV_EIO);
    CHECK(c.n == 3);
    CHECK(strcmp(err.msg, "emit: the sink stopped the parse at line 9") == 0);
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
    test_zip(buf, len, &plain);
    test_crlf(buf, len, &plain);
    test_truncated(buf, &plain);
    test_hostile(buf);
    test_unmapped(buf);
    test_garbage();
    test_stop(buf, len);
    /* the payload sort hands on the same events, whole or in runs of 7 */
    CHECK(sorted_same("gdelt", buf, len, 0));
    CHECK(sorted_same("gdelt", buf, len, 7));
    collect_free(&plain);
    free(buf);
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}

/*
 * test_event: the event parser against hostile input. Every rejection is
 * checked by its exact message; good events in the same batch are kept.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv/batch.h"
#include "rv/event.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#define GOOD                                                                                       \
    "{\"id\":\"acled-SYR123456\",\"kind\":\"incident\",\"country\":\"SY\","                        \
    "\"violation\":\"killing\",\"time\":\"2024-03-01T10:15:00Z\",\"count\":3,\"severity\":4,"      \
    "\"confidence\":0.8,\"admin1\":\"Idlib\",\"lat\":35.93,\"lon\":36.63,\"title\":\"t\","         \
    "\"url\":\"https://example.org/a\",\"attrs\":{\"acled_event_type\":\"Violence against "      \
    "civilians\"}}"

/* Parses TEXT and expects rejection with exactly MSG. */
static void expect_reject(const char *text, const char *msg)
{
    struct rv_event ev;
    struct rv_errbuf err;
    int rc;

    rv_err_clear(&err);
    rc = rv_event_parse(text, strlen(text), "partner", &ev, NULL, &err);
    if (rc == RV_OK) {
        fprintf(stderr, "accepted but expected '%s': %s\n", msg, text);
        check_failures++;
        rv_event_release(&ev);
        return;
    }
    CHECK_STR(err.msg, msg);
    CHECK(ev.title == NULL && ev.attrs == NULL);
}

/* GOOD with KEY's value replaced by VAL (VAL NULL: key removed). */
static char *with(const char *key, const char *val)
{
    cJSON *o = cJSON_Parse(GOOD);
    char *s;
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (val)
        cJSON_AddItemToObject(o, key, cJSON_Parse(val));
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void expect_field(const char *key, const char *val, const char *msg)
{
    char *t = with(key, val);
    expect_reject(t, msg);
    free(t);
}

static void test_good(void)
{
    struct rv_event ev, back;
    struct rv_errbuf err;
    struct rv_parse_info info = {0};
    unsigned char buf[4096];
    char *a, *b;
    int n;

    CHECK_OK(rv_event_parse(GOOD, strlen(GOOD), "acme", &ev, &info, &err), &err);
    CHECK_STR(ev.id, "acled-SYR123456");
    CHECK_STR(ev.source, "acme");
    CHECK_STR(ev.country, "SY");
    CHECK(ev.violation == RV_V_KILLING);
    CHECK(ev.kind == RV_KIND_INCIDENT);
    CHECK(ev.time_ms == 1709288100000LL);
    CHECK(ev.count == 3 && ev.severity == 4 && ev.confidence == 0.8);
    CHECK(ev.has_geo && ev.lat == 35.93 && ev.lon == 36.63);
    CHECK_STR(ev.admin1, "Idlib");
    CHECK_STR(ev.attrs, "{\"acled_event_type\":\"Violence against civilians\"}");
    CHECK(info.dropped_fields == 0);

    /* binary round trip gives the same JSON */
    n = rv_event_encode(&ev, buf, sizeof(buf));
    CHECK(n > 0 && (size_t)n == rv_event_encoded_size(&ev));
    CHECK(rv_event_encode(&ev, buf, 10) == RV_ETOOBIG);
    CHECK_OK(rv_event_decode(buf, (size_t)n, &back), NULL);
    {
        cJSON *ja = rv_event_to_json(&ev, true), *jb = rv_event_to_json(&back, true);
        a = cJSON_PrintUnformatted(ja);
        b = cJSON_PrintUnformatted(jb);
        CHECK_STR(a, b);
        CHECK(strstr(a, "\"time\":\"2024-03-01T10:15:00Z\"") != NULL);
        CHECK(strstr(a, "\"source\":\"acme\"") != NULL);
        cJSON_Delete(ja);
        cJSON_Delete(jb);
        free(a);
        free(b);
    }
    /* without attrs for viewers */
    {
        cJSON *j = rv_event_to_json(&ev, false);
        CHECK(cJSON_GetObjectItem(j, "attrs") == NULL);
        cJSON_Delete(j);
    }
    rv_event_release(&back);
    /* truncated binary is corrupt, not a crash */
    for (int cut = 0; cut < n; cut += 7)
        CHECK(rv_event_decode(buf, (size_t)cut, &back) == RV_ECORRUPT);
    rv_event_release(&ev);

    /* unknown fields dropped and counted; "source" in the payload is ignored */
    {
        const char *t = "{\"id\":\"x\",\"kind\":\"news\",\"country\":\"FR\",\"violation\":"
                        "\"censorship\",\"time\":1709288100000,\"source\":\"forged\","
                        "\"secret_name\":\"Jane\"}";
        memset(&info, 0, sizeof(info));
        CHECK_OK(rv_event_parse(t, strlen(t), "acme", &ev, &info, &err), &err);
        CHECK(info.dropped_fields == 2);
        CHECK_STR(ev.source, "acme");
        CHECK(ev.time_ms == 1709288100000LL);
        CHECK(ev.count == 1 && ev.severity == 3 && ev.confidence == 1.0);
        rv_event_release(&ev);
    }
    /* probe with value; time with offset and fraction */
    {
        const char *t = "{\"id\":\"p1\",\"kind\":\"probe\",\"country\":\"IR\",\"violation\":"
                        "\"internet_shutdown\",\"time\":\"2024-03-01T12:15:00.5+02:00\","
                        "\"value\":0.25}";
        CHECK_OK(rv_event_parse(t, strlen(t), "ioda", &ev, NULL, &err), &err);
        CHECK(ev.has_value && ev.value == 0.25);
        CHECK(ev.time_ms == 1709288100500LL);
        rv_event_release(&ev);
    }
}

static void test_hostile(void)
{
    char big[RV_EVENT_MAX_BYTES + 100];

    /* malformed JSON */
    expect_reject("{\"id\":\"BAD-1\",\"kind\":\"incident", "json: syntax error at offset 22");
    expect_reject("", "json: syntax error at offset 0");
    expect_reject("{\"id\":\"a\"} trailing", "json: unexpected text after the object at offset 11");
    expect_reject("[1,2]", "event: must be a JSON object");
    expect_reject("\"str\"", "event: must be a JSON object");
    /* empty object */
    expect_reject("{}", "id: missing");
    /* wrong types */
    expect_field("id", "5", "id: must be a string");
    expect_field("id", "\"\"", "id: empty");
    expect_field("kind", "\"rumour\"", "kind: 'rumour' is not one of probe, incident, news");
    expect_field("kind", "1", "kind: '(not a string)' is not one of probe, incident, news");
    expect_field("country", NULL, "country: missing");
    expect_field("country", "\"XX\"", "country: 'XX' is not an ISO 3166-1 alpha-2 code");
    expect_field("country", "\"sy\"", "country: 'sy' is not an ISO 3166-1 alpha-2 code");
    expect_field("country", "\"SYR\"", "country: 'SYR' is not an ISO 3166-1 alpha-2 code");
    expect_field("country", "76", "country: must be a string");
    expect_field("violation", "\"genocide-ish\"", "violation: 'genocide-ish' is not a taxonomy code");
    expect_field("violation", NULL, "violation: missing");
    expect_field("time", NULL, "time: missing");
    expect_field("time", "\"yesterday\"", "time: 'yesterday' is not an RFC 3339 time");
    expect_field("time", "\"2024-02-30T00:00:00Z\"", "time: '2024-02-30T00:00:00Z' is not an RFC 3339 time");
    expect_field("time", "\"2024-03-01T10:15:00\"", "time: '2024-03-01T10:15:00' is not an RFC 3339 time");
    expect_field("time", "true", "time: must be an RFC 3339 string or epoch milliseconds");
    expect_field("time", "1.5", "time: epoch milliseconds must be an integer");
    expect_field("time", "\"2150-01-01T00:00:00Z\"", "time: out of range 1970..2099");
    {
        char t[64], tb[32];
        rv_time_format(rv_now_ms() + 3600 * 1000, tb, sizeof(tb));
        snprintf(t, sizeof(t), "\"%s\"", tb);
        expect_field("time", t, "time: more than 5 minutes in the future");
        rv_time_format(rv_now_ms() + 60 * 1000, tb, sizeof(tb)); /* a skewed clock is fine */
        snprintf(t, sizeof(t), "\"%s\"", tb);
        char *ok = with("time", t);
        struct rv_event ev;
        struct rv_errbuf err;
        CHECK_OK(rv_event_parse(ok, strlen(ok), "p", &ev, NULL, &err), &err);
        rv_event_release(&ev);
        free(ok);
    }
    /* out of range numbers */
    expect_field("severity", "6", "severity: must be an integer 1..5");
    expect_field("severity", "0", "severity: must be an integer 1..5");
    expect_field("severity", "2.5", "severity: must be an integer 1..5");
    expect_field("severity", "\"4\"", "severity: must be an integer 1..5");
    expect_field("count", "0", "count: must be an integer 1..100000000");
    expect_field("count", "-3", "count: must be an integer 1..100000000");
    expect_field("confidence", "1.5", "confidence: must be a number 0..1");
    expect_field("lat", "95", "lat: must be a number -90..90");
    expect_field("lon", NULL, "lat: given without lon");
    expect_field("url", "\"javascript:alert(1)\"", "url: must start with http:// or https://");
    expect_field("attrs", "[1]", "attrs: must be an object");
    expect_field("value", "\"high\"", "value: must be a number");
    /* NaN / Infinity: not JSON, and overflowing numbers are not finite */
    expect_reject("{\"id\":\"a\",\"count\":1e999}", "count: number is not finite");
    expect_reject("{\"id\":\"a\",\"count\":NaN}", "json: syntax error at offset 18");
    expect_reject("{\"id\":\"a\",\"value\":Infinity}", "json: syntax error at offset 18");
    /* duplicate keys */
    expect_reject("{\"id\":\"a\",\"id\":\"b\"}", "id: duplicate key");
    expect_reject("{\"id\":\"a\",\"kind\":\"news\",\"country\":\"FR\",\"violation\":\"censorship\","
                  "\"time\":0,\"attrs\":{\"k\":1,\"k\":2}}",
                  "attrs.k: duplicate key");
    /* deep nesting */
    {
        char deep[256];
        int n = snprintf(deep, sizeof(deep), "{\"id\":\"a\",\"attrs\":");
        for (int i = 0; i < 10; i++)
            n += snprintf(deep + n, sizeof(deep) - (size_t)n, "{\"x\":");
        n += snprintf(deep + n, sizeof(deep) - (size_t)n, "1");
        for (int i = 0; i < 11; i++)
            n += snprintf(deep + n, sizeof(deep) - (size_t)n, "}");
        expect_reject(deep, "json: nesting deeper than 8");
    }
    /* broken UTF-8: overlong, lone continuation, surrogate, truncated */
    expect_reject("{\"id\":\"\xc0\xaf\"}", "utf-8: invalid byte sequence at offset 7");
    expect_reject("{\"id\":\"\x80\"}", "utf-8: invalid byte sequence at offset 7");
    expect_reject("{\"id\":\"\xed\xa0\x80\"}", "utf-8: invalid byte sequence at offset 7");
    expect_reject("{\"id\":\"\xe2\x82", "utf-8: invalid byte sequence at offset 7");
    /* after ASCII runs longer than eight bytes (read eight at a time), and
     * valid multi-byte text between them */
    expect_reject("{\"id\":\"abcdefghijklmnopq\xff\"}", "utf-8: invalid byte sequence at offset 24");
    expect_reject("{\"id\":\"abcdefgh\xc3\xa9" "abcdefghijk\xe2\x82\"}",
                  "utf-8: invalid byte sequence at offset 28");
    expect_reject("{\"id\":\"x\",\"title\":\"0123456789abcdef0123456789\xc0",
                  "utf-8: invalid byte sequence at offset 45");
    /* \u0000 would cut the string inside cJSON: refused, not truncated */
    expect_reject("{\"id\":\"case-7\\u0000-a\"}", "json: \\u0000 in a string at offset 13");
    {
        /* an escaped backslash followed by text is not a NUL */
        const char *t = "{\"id\":\"a\\\\u0000\",\"kind\":\"news\",\"country\":\"FR\",\"violation\":"
                        "\"censorship\",\"time\":0}";
        struct rv_event ev;
        struct rv_errbuf err;
        CHECK_OK(rv_event_parse(t, strlen(t), "p", &ev, NULL, &err), &err);
        CHECK_STR(ev.id, "a\\u0000");
        rv_event_release(&ev);
    }
    {
        /* an empty title is no title: the stored form cannot tell "" from
         * absent, so the event round-trips (found by fuzz_event) */
        const char *t = "{\"id\":\"e\",\"kind\":\"news\",\"country\":\"FR\",\"violation\":"
                        "\"censorship\",\"time\":0,\"title\":\"\"}";
        struct rv_event ev, back;
        struct rv_errbuf err;
        unsigned char buf[1024];
        int n;
        CHECK_OK(rv_event_parse(t, strlen(t), "p", &ev, NULL, &err), &err);
        CHECK(ev.title == NULL);
        n = rv_event_encode(&ev, buf, sizeof(buf));
        CHECK(n > 0 && rv_event_decode(buf, (size_t)n, &back) == RV_OK);
        CHECK(back.title == NULL);
        rv_event_release(&back);
        rv_event_release(&ev);
    }
    /* escaped lone surrogate is refused by the JSON parser */
    expect_reject("{\"id\":\"\\ud800\"}", "json: syntax error at offset 7");
    /* oversized event */
    memset(big, ' ', sizeof(big));
    memcpy(big, GOOD, strlen(GOOD));
    big[sizeof(big) - 1] = '\0';
    expect_reject(big, "event: larger than 65536 bytes");
    /* strings past their caps */
    {
        char title[RV_TITLE_MAX + 10], val[RV_TITLE_MAX + 20];
        memset(title, 'a', sizeof(title) - 1);
        title[sizeof(title) - 1] = '\0';
        snprintf(val, sizeof(val), "\"%s\"", title);
        expect_field("title", val, "title: longer than 1024 bytes");
    }
    {
        char attrs[2048];
        int n = snprintf(attrs, sizeof(attrs), "{");
        for (int i = 0; i < 33; i++)
            n += snprintf(attrs + n, sizeof(attrs) - (size_t)n, "%s\"k%d\":1", i ? "," : "", i);
        snprintf(attrs + n, sizeof(attrs) - (size_t)n, "}");
        expect_field("attrs", attrs, "attrs: more than 32 keys");
    }
}

struct collect {
    size_t good, bad;
    size_t lines[16];
    char msgs[16][RV_ERRBUF_SIZE];
};

static int collect_cb(void *arg, size_t line, struct rv_event *ev, const struct rv_errbuf *err)
{
    struct collect *c = arg;
    if (ev) {
        c->good++;
        rv_event_release(ev);
    } else if (c->bad < 16) {
        c->lines[c->bad] = line;
        snprintf(c->msgs[c->bad], sizeof(c->msgs[0]), "%s", err->msg);
        c->bad++;
    }
    return 0;
}

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    const char *dir = getenv("RV_TEST_DATA");
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/data", name);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_batches(void)
{
    struct collect c;
    struct rv_batch_stats st;
    size_t len;
    char *buf;

    /* the shipped partner sample: 30 good lines */
    buf = slurp("partner_events.ndjson", &len);
    memset(&c, 0, sizeof(c));
    CHECK_OK(rv_batch_parse(buf, len, "partner", 0, collect_cb, &c, &st), NULL);
    CHECK(c.good == 30 && c.bad == 0 && st.items == 30);
    free(buf);

    /* the bad sample: three specific errors */
    buf = slurp("partner_events_bad.ndjson", &len);
    memset(&c, 0, sizeof(c));
    CHECK_OK(rv_batch_parse(buf, len, "partner", 0, collect_cb, &c, &st), NULL);
    CHECK(c.good == 0 && c.bad == 3);
    CHECK(c.lines[0] == 1 && strncmp(c.msgs[0], "json: syntax error at offset", 28) == 0);
    CHECK(c.lines[1] == 2);
    CHECK_STR(c.msgs[1], "country: 'XX' is not an ISO 3166-1 alpha-2 code");
    CHECK(c.lines[2] == 3);
    CHECK_STR(c.msgs[2], "time: missing");
    free(buf);

    /* a half-bad NDJSON batch keeps its good half; blank lines and CRLF */
    {
        const char *t = GOOD "\r\n\n{\"id\":\"b\"}\r\n" GOOD "\n";
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 0, collect_cb, &c, &st), NULL);
        CHECK(c.good == 2 && c.bad == 1 && c.lines[0] == 3);
        CHECK_STR(c.msgs[0], "kind: missing");
    }
    /* a JSON array: index as line */
    {
        const char *t = "[" GOOD ",{\"id\":\"b\",\"kind\":\"news\"}," GOOD "]";
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 0, collect_cb, &c, &st), NULL);
        CHECK(c.good == 2 && c.bad == 1 && c.lines[0] == 2);
        CHECK_STR(c.msgs[0], "country: missing");
    }
    /* item cap */
    {
        const char *t = GOOD "\n" GOOD "\n" GOOD "\n";
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 2, collect_cb, &c, &st), NULL);
        CHECK(c.good == 2 && c.bad == 1 && c.lines[0] == 3);
        CHECK_STR(c.msgs[0], "batch: more than 2 events");
    }
    /* a truncated array keeps its complete elements */
    {
        const char *t = "[" GOOD ",";
        char want[64];
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 0, collect_cb, &c, &st), NULL);
        snprintf(want, sizeof(want), "json: array not closed at offset %zu", strlen(t));
        CHECK(c.good == 1 && c.bad == 1 && c.lines[0] == 2);
        CHECK_STR(c.msgs[0], want);
    }
    {
        const char *t = "[" GOOD ", {\"id\":\"cut";
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 0, collect_cb, &c, &st), NULL);
        CHECK(c.good == 1 && c.bad == 1 && c.lines[0] == 2);
        CHECK(strncmp(c.msgs[0], "json: array not closed", 22) == 0);
    }
    /* strings with brackets, commas and escaped quotes do not split elements;
     * text after the array is reported; an empty array is fine */
    {
        const char *t = "[{\"id\":\"a,]}[\\\"\",\"kind\":\"news\",\"country\":\"FR\",\"violation\":"
                        "\"censorship\",\"time\":0}, " GOOD "] x";
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(t, strlen(t), "p", 0, collect_cb, &c, &st), NULL);
        CHECK(c.good == 2 && c.bad == 1 && c.lines[0] == 3);
        CHECK(strncmp(c.msgs[0], "json: unexpected text after the array", 37) == 0);
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(" [ ] ", 5, "p", 0, collect_cb, &c, &st), NULL);
        CHECK(c.good == 0 && c.bad == 0);
    }
    /* a huge array of junk is rejected element by element past the cap,
     * without building it in memory */
    {
        size_t n = 2000000, blen = 2 * n + 1;
        char *big = malloc(blen + 1);
        big[0] = '[';
        for (size_t k = 0; k < n; k++) {
            big[1 + 2 * k] = '0';
            big[2 + 2 * k] = k + 1 < n ? ',' : ']';
        }
        big[blen] = '\0';
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_batch_parse(big, blen, "p", 1000, collect_cb, &c, &st), NULL);
        CHECK(st.items == n && st.rejected == n && c.good == 0);
        CHECK_STR(c.msgs[0], "event: must be a JSON object");
        free(big);
    }
}

static void test_time(void)
{
    int64_t ms;
    char buf[32];

    CHECK(rv_time_parse_rfc3339("1970-01-01T00:00:00Z", &ms) == RV_OK && ms == 0);
    CHECK(rv_time_parse_rfc3339("2024-02-29T23:59:59.999Z", &ms) == RV_OK &&
          ms == 1709251199999LL);
    CHECK_STR(rv_time_format(1709251199999LL, buf, sizeof(buf)), "2024-02-29T23:59:59.999Z");
    CHECK_STR(rv_time_format(1709288100000LL, buf, sizeof(buf)), "2024-03-01T10:15:00Z");
    CHECK(rv_time_parse_rfc3339("2023-02-29T00:00:00Z", &ms) == RV_EINVAL);
    CHECK(rv_time_parse_rfc3339("2024-01-01T00:00:00+25:00", &ms) == RV_EINVAL);
    CHECK(rv_time_parse_rfc3339("2024-01-01T00:00:00.Z", &ms) == RV_EINVAL);
    CHECK(rv_time_parse_rfc3339("2024-01-01 00:00:00Z", &ms) == RV_OK);
    CHECK(rv_violation_from_name("internet_shutdown") == 0);
    CHECK(rv_violation_from_name("displacement") == 13);
    CHECK_STR(rv_violation_name(RV_V_ATTACK_ON_DEFENDERS), "attack_on_defenders");
    CHECK(rv_violation_name(14) == NULL);
}

/* An event of nearly RV_EVENT_MAX_BYTES whose JSON tree does not fit in
 * the 64 KiB parse arena: attrs holding an array of 25,000 zeros (about
 * 1.6 MB of cJSON nodes); rejected for its attrs, after the parse. */
static char *big_event(void)
{
    static const char head[] = "{\"id\":\"big\",\"kind\":\"news\",\"country\":\"SY\","
                               "\"violation\":\"killing\",\"time\":\"2024-03-01T10:15:00Z\","
                               "\"attrs\":{\"z\":[0";
    size_t n = sizeof head - 1, cap = 60000;
    char *s = malloc(cap);

    memcpy(s, head, n);
    for (int i = 1; i < 25000; i++) {
        s[n++] = ',';
        s[n++] = '0';
    }
    memcpy(s + n, "]}}", 4);
    return s;
}

/* The encoded form of TEXT parsed (malloc'd), or NULL with *MSG set to
 * the rejection. */
static unsigned char *parsed(const char *text, size_t *len, char *msg, size_t cap)
{
    struct rv_event ev;
    struct rv_errbuf err;
    unsigned char *buf = NULL;

    msg[0] = '\0';
    if (rv_event_parse(text, strlen(text), "partner", &ev, NULL, &err) != RV_OK) {
        snprintf(msg, cap, "%s", err.msg);
        return NULL;
    }
    *len = rv_event_encoded_size(&ev);
    buf = malloc(*len);
    if (buf && rv_event_encode(&ev, buf, *len) != (int)*len) {
        free(buf);
        buf = NULL;
    }
    rv_event_release(&ev);
    return buf;
}

int main(void)
{
    char *big = big_event(), m1[256], m2[256];
    size_t l1 = 0, l2 = 0;
    unsigned char *g1, *g2;

    CHECK(strlen(big) > 50000 && strlen(big) < RV_EVENT_MAX_BYTES);
    g1 = parsed(GOOD, &l1, m1, sizeof m1);
    CHECK(g1 != NULL);
    CHECK(parsed(big, &l2, m1, sizeof m1) == NULL);
    CHECK_STR(m1, "attrs: longer than 16384 bytes");
    test_good();
    test_hostile();
    test_batches();
    test_time();
    /* again with the parse arena: the same results, byte for byte, for a
     * tree in the arena and for one that overflows it into malloc (ASan
     * checks the frees) */
    CHECK(rv_event_parse_arena_init() == RV_OK);
    CHECK(rv_event_parse_arena_init() == RV_OK); /* twice is harmless */
    test_good();
    test_hostile();
    test_batches();
    g2 = parsed(GOOD, &l2, m2, sizeof m2);
    CHECK(g1 && g2 && l1 == l2 && memcmp(g1, g2, l1) == 0);
    for (int i = 0; i < 1000; i++) { /* the arena is reused, not grown */
        free(g2);
        g2 = parsed(i % 2 ? GOOD : big, &l2, m2, sizeof m2);
        if (i % 2)
            CHECK(g2 != NULL && l2 == l1 && memcmp(g1, g2, l1) == 0);
        else
            CHECK(g2 == NULL && strcmp(m2, m1) == 0);
    }
    free(g1);
    free(g2);
    free(big);
    CHECK_DONE();
}

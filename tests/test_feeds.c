/* test_feeds: the feed workers (ingest/feeds.c), the NDJSON feed parser
 * and dispatcher (ingest/feed_ndjson.c), the payload sort
 * (ingest/feed_sorted.c) and the demo replay (ingest/demo.c), against a real LMDB store and writer in a mkdtemp dir
 * and a real HTTP server on 127.0.0.1 (tests/feeds_http_server.py). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store_util.h"

#include "rv/demo.h"
#include "rv/feed.h"
#include "rv/feeds.h"
#include "rv/log.h"
#include "rv/metrics.h"
#include "rv/store.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

static const char *data_dir(void)
{
    const char *d = getenv("RV_TEST_DATA");
    return d ? d : RV_SOURCE_DIR "/tests/data";
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    size_t n;
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        perror(from);
        exit(2);
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

/* ------------------------------------------------------------ counting */

struct count_ctx {
    size_t n;
};

static int count_cb(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    struct count_ctx *c = arg;
    (void)seq;
    (void)ingest_ms;
    (void)ev;
    c->n++;
    return 0;
}

static size_t count_source(struct rv_store *st, const char *source)
{
    struct rv_event_filter f;
    struct count_ctx c = {0};
    struct rv_errbuf err;

    memset(&f, 0, sizeof(f));
    f.violation = -1;
    f.source = source;
    CHECK_OK(rv_store_read_events(st, &f, count_cb, &c, &err), &err);
    return c.n;
}

/* Waits (bounded) until feed NAME finished MIN polls. */
static int wait_polls(struct rv_feeds *f, const char *name, uint64_t min, unsigned timeout_ms,
                      struct rv_feed_stats *out)
{
    uint64_t t0 = rv_mono_ns();
    for (;;) {
        if (rv_feeds_stats(f, name, out) == RV_OK && out->polls >= min)
            return 0;
        if (rv_mono_ns() - t0 > (uint64_t)timeout_ms * 1000000u) {
            fprintf(stderr, "timeout waiting for feed %s (polls %llu < %llu)\n", name,
                    (unsigned long long)out->polls, (unsigned long long)min);
            return -1;
        }
        sleep_ms(20);
    }
}

static struct rv_feed_cfg cfg(const char *name, const char *format, const char *url)
{
    struct rv_feed_cfg c;
    rv_feed_cfg_default(&c);
    c.name = (char *)name;
    c.format = (char *)format;
    c.url = (char *)url;
    c.interval_s = 3600;
    return c;
}

/* ------------------------------------------------- captured log lines */

/* Sends stderr (where rv_log writes) to PATH at level LVL until
 * log_release. Call only while no other thread runs (the log level is
 * set before threads start). */
struct log_capture {
    int saved;
};

static void log_capture(struct log_capture *lc, const char *path, enum rv_log_level lvl)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0) {
        perror(path);
        exit(2);
    }
    fflush(stderr);
    lc->saved = dup(2);
    dup2(fd, 2);
    close(fd);
    rv_log_set_level(lvl);
}

static void log_release(struct log_capture *lc)
{
    fflush(stderr);
    dup2(lc->saved, 2);
    close(lc->saved);
    rv_log_set_level(RV_LOG_ERROR);
}

/* Whole file as a string (caller frees); "" when unreadable. */
static char *read_text(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *b = calloc(1, 1 << 20);
    size_t n = 0;

    if (!b)
        exit(2);
    if (fp) {
        n = fread(b, 1, (1 << 20) - 1, fp);
        fclose(fp);
    }
    b[n] = '\0';
    return b;
}

static size_t count_occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ------------------------------------------------------- feeds file */

static void expect_parse_error(const char *text, int code, const char *msg)
{
    struct rv_feed_cfg *fc = (struct rv_feed_cfg *)1;
    size_t n = 99;
    struct rv_errbuf err;
    int rc = rv_feeds_parse(text, strlen(text), &fc, &n, &err);

    CHECK(rc == code);
    CHECK_STR(err.msg, msg);
    CHECK(fc == NULL && n == 0);
}

static void test_feeds_file(const char *tmp)
{
    struct rv_feed_cfg *fc = NULL;
    size_t n = 0;
    struct rv_errbuf err;
    char path[512];

    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\"},"
                       "{\"name\":\"b\",\"format\":\"ooni\",\"url\":\"https://api.ooni.io/x\"},"
                       "{\"name\":\"c\",\"format\":\"xml\",\"url\":\"/y\"}]",
                       RV_EINVAL, "feeds[2].format: 'xml' is not one of ndjson, ooni, ioda, gdelt, acled");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\"}]", RV_EINVAL,
                       "feeds[0].url: missing");
    expect_parse_error("[{\"format\":\"ndjson\",\"url\":\"/x\"}]", RV_EINVAL,
                       "feeds[0].name: missing");
    expect_parse_error("[{\"name\":\"a b\",\"format\":\"ndjson\",\"url\":\"/x\"}]", RV_EINVAL,
                       "feeds[0].name: 'a b' is not 1..64 of A-Z a-z 0-9 . _ -");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"ftp://h/x\"}]", RV_EINVAL,
                       "feeds[0].url: 'ftp://h/x' is not http(s)://, file:///path or a path");
    /* credentials and the query never reach a message */
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\","
                       "\"url\":\"ftp://user:pw@h:21/x?token=s3cret\"}]",
                       RV_EINVAL,
                       "feeds[0].url: 'ftp://h:21/x?...' is not http(s)://, file:///path or a path");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\",\"interval_s\":0}]",
                       RV_EINVAL, "feeds[0].interval_s: must be an integer 1..604800");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\",\"interval_s\":\"9\"}]",
                       RV_EINVAL, "feeds[0].interval_s: must be an integer 1..604800");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\",\"every\":9}]",
                       RV_EINVAL, "feeds[0].every: unknown key");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\","
                       "\"options\":{\"proxy\":\"x\"}}]",
                       RV_EINVAL, "feeds[0].options.proxy: unknown option");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\","
                       "\"options\":{\"timeout_s\":0}}]",
                       RV_EINVAL, "feeds[0].options.timeout_s: must be an integer 1..86400");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\","
                       "\"options\":{\"max_bytes\":-1}}]",
                       RV_EINVAL, "feeds[0].options.max_bytes: must be an integer 1..1099511627776");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\","
                       "\"options\":{\"sort_max_events\":-1}}]",
                       RV_EINVAL, "feeds[0].options.sort_max_events: must be an integer 0..100000000");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\","
                       "\"options\":{\"backoff_min_s\":5,\"backoff_max_s\":2}}]",
                       RV_EINVAL, "feeds[0].options.backoff_max_s: less than backoff_min_s");
    expect_parse_error("[{\"name\":\"a\",\"format\":\"ndjson\",\"url\":\"/x\"},"
                       "{\"name\":\"a\",\"format\":\"ooni\",\"url\":\"/y\"}]",
                       RV_EINVAL, "feeds[1].name: 'a' is already the name of feeds[0]");
    expect_parse_error("[1]", RV_EINVAL, "feeds[0]: not an object");
    expect_parse_error("{\"feeds\":[]}", RV_EINVAL, "feeds: not a JSON list");
    expect_parse_error("[\n{\"name\":\"a\",\n,]", RV_EINVAL, "feeds: not valid JSON (line 3)");

    snprintf(path, sizeof(path), "%s/nonexistent.json", tmp);
    CHECK(rv_feeds_load(path, &fc, &n, &err) == RV_ENOTFOUND);
    {
        char want[600];
        snprintf(want, sizeof(want), "feeds: cannot read '%s': no such file", path);
        CHECK_STR(err.msg, want);
    }

    snprintf(path, sizeof(path), "%s/feeds.json", tmp);
    write_file(path, "[{\"name\":\"ooni-ir\",\"format\":\"ooni\",\"url\":\"https://api.ooni.io/a?b=c\"},\n"
                     " {\"name\":\"local\",\"format\":\"acled\",\"url\":\"file:///srv/acled\","
                     "\"interval_s\":60,\"options\":{\"timeout_s\":5,\"max_bytes\":1000,"
                     "\"backoff_min_s\":1,\"backoff_max_s\":2,\"sort_max_events\":0}}]\n");
    CHECK_OK(rv_feeds_load(path, &fc, &n, &err), &err);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(fc[0].name, "ooni-ir");
        CHECK(fc[0].interval_s == 900 && fc[0].timeout_s == 300 && fc[0].connect_timeout_s == 10);
        CHECK(fc[0].max_bytes == 256ull * 1024 * 1024 && fc[0].backoff_min_s == 30 &&
              fc[0].backoff_max_s == 3600 && fc[0].max_redirects == 5 &&
              fc[0].sort_max_events == 200000);
        CHECK_STR(fc[1].format, "acled");
        CHECK_STR(fc[1].url, "file:///srv/acled");
        CHECK(fc[1].interval_s == 60 && fc[1].timeout_s == 5 && fc[1].max_bytes == 1000 &&
              fc[1].backoff_min_s == 1 && fc[1].backoff_max_s == 2 &&
              fc[1].sort_max_events == 0);
    }
    rv_feeds_cfg_free(fc, n);
    /* an empty list is fine */
    CHECK_OK(rv_feeds_parse("[]", 2, &fc, &n, &err), &err);
    CHECK(n == 0 && fc == NULL);
}

/* ------------------------------------------------------ ndjson parser */

struct collect {
    size_t good, bad;
    size_t rec[8];
    char msg[8][RV_ERRBUF_SIZE];
    char source[RV_SOURCE_MAX + 1];
};

static int col_emit(void *arg, struct rv_event *ev)
{
    struct collect *c = arg;
    c->good++;
    snprintf(c->source, sizeof(c->source), "%s", ev->source);
    rv_event_release(ev);
    return 0;
}

static void col_reject(void *arg, size_t record, const char *msg)
{
    struct collect *c = arg;
    if (c->bad < 8) {
        c->rec[c->bad] = record;
        snprintf(c->msg[c->bad], sizeof(c->msg[0]), "%s", msg);
    }
    c->bad++;
}

static void test_ndjson_parser(void)
{
    struct collect c;
    struct rv_feed_sink sink = {"feed-x", col_emit, col_reject, &c, NULL, 0, NULL};
    struct rv_errbuf err;
    const char *arr = "[{\"id\":\"a1\",\"kind\":\"news\",\"country\":\"SY\",\"violation\":\"killing\","
                      "\"time\":\"2025-01-01T00:00:00Z\"},{\"id\":\"a2\"}]";
    const char *nd = "{\"id\":\"n1\",\"kind\":\"news\",\"country\":\"SY\",\"violation\":\"killing\","
                     "\"time\":1735689600000,\"source\":\"spoof\"}\n\n"
                     "{\"id\":\"n2\",\"kind\":\"news\",\"country\":\"XX\",\"violation\":\"killing\","
                     "\"time\":1735689600000}\n";

    CHECK(rv_feed_parser("ndjson") == rv_feed_parse_ndjson);
    CHECK(rv_feed_parser("ooni") == rv_feed_parse_ooni);
    CHECK(rv_feed_parser("ioda") == rv_feed_parse_ioda);
    CHECK(rv_feed_parser("gdelt") == rv_feed_parse_gdelt);
    CHECK(rv_feed_parser("acled") == rv_feed_parse_acled);
    CHECK(rv_feed_parser("xml") == NULL);
    CHECK(rv_feed_parser(NULL) == NULL);

    memset(&c, 0, sizeof(c));
    CHECK_OK(rv_feed_parse_ndjson(arr, strlen(arr), &sink, &err), &err);
    CHECK(c.good == 1 && c.bad == 1 && c.rec[0] == 2);
    CHECK_STR(c.source, "feed-x");

    memset(&c, 0, sizeof(c));
    CHECK_OK(rv_feed_parse_ndjson(nd, strlen(nd), &sink, &err), &err);
    CHECK(c.good == 1 && c.bad == 1 && c.rec[0] == 3);
    CHECK_STR(c.source, "feed-x"); /* never from the payload */
    CHECK_STR(c.msg[0], "country: 'XX' is not an ISO 3166-1 alpha-2 code");

    memset(&c, 0, sizeof(c));
    CHECK(rv_feed_parse_ndjson("id,kind\n1,2\n", 12, &sink, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "ndjson: not NDJSON or a JSON array of events");
    CHECK(c.good == 0 && c.bad == 0);

    /* the shipped bad partner file: three specific rejections */
    {
        char path[1024], *buf;
        FILE *fp;
        long len;
        snprintf(path, sizeof(path), "%s/partner_events_bad.ndjson", data_dir());
        fp = fopen(path, "rb");
        CHECK(fp != NULL);
        if (!fp)
            return;
        fseek(fp, 0, SEEK_END);
        len = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)len + 1);
        CHECK(buf && fread(buf, 1, (size_t)len, fp) == (size_t)len);
        fclose(fp);
        memset(&c, 0, sizeof(c));
        CHECK_OK(rv_feed_parse_ndjson(buf, (size_t)len, &sink, &err), &err);
        CHECK(c.good == 0 && c.bad == 3);
        CHECK(c.rec[0] == 1 && c.rec[1] == 2 && c.rec[2] == 3);
        CHECK_STR(c.msg[1], "country: 'XX' is not an ISO 3166-1 alpha-2 code");
        CHECK_STR(c.msg[2], "time: missing");
        free(buf);
    }
}

/* ----------------------------------------------------------- stores */

struct env {
    char dir[256];
    struct rv_store *st;
    struct rv_writer *w;
};

static void env_open(struct env *e, const char *tmp, const char *name)
{
    struct rv_store_opts o;
    struct rv_errbuf err;

    snprintf(e->dir, sizeof(e->dir), "%s/%s", tmp, name);
    rv_store_opts_default(&o);
    o.no_sync = true;
    o.map_size = 64u << 20;
    CHECK_OK(rv_store_open(e->dir, &o, &e->st, &err), &err);
    CHECK_OK(rv_writer_new(e->st, NULL, NULL, &e->w), NULL);
}

static void env_close(struct env *e)
{
    rv_writer_free(&e->w);
    rv_store_close(&e->st);
}

static size_t cursor_of(struct rv_store *st, const char *name, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (rv_store_get_cursor(st, name, buf, cap - 1, &len) != RV_OK)
        return 0;
    buf[len] = '\0';
    return len;
}

/* Events the ACLED sample gives, with the parser alone. */
static size_t acled_expected(const char *path)
{
    struct collect c;
    struct rv_feed_sink sink = {"x", col_emit, col_reject, &c, NULL, 0, NULL};
    struct rv_errbuf err;
    char *buf;
    FILE *fp = fopen(path, "rb");
    long len;

    memset(&c, 0, sizeof(c));
    if (!fp)
        return 0;
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, fp) == (size_t)len)
        rv_feed_parse_acled(buf, (size_t)len, &sink, &err);
    fclose(fp);
    free(buf);
    return c.good;
}

/* ------------------------------------------------------- payload sort */

/* Records each emitted event's time and id, in emission order; asks to
 * stop after STOP_AFTER events when that is not 0. */
struct order {
    size_t n, stop_after, rejected;
    size_t runs, run_n;       /* sort_run calls, the last one's N */
    size_t polls, stop_poll;  /* sink->stop calls; answer 1 at STOP_POLL (0: never) */
    int64_t t[64];
    char id[64][RV_ID_MAX + 1];
};

static int order_stop(void *arg)
{
    struct order *o = arg;
    o->polls++;
    return o->stop_poll && o->polls >= o->stop_poll;
}

static void order_run(void *arg, size_t n)
{
    struct order *o = arg;
    o->runs++;
    o->run_n = n;
}

static int order_emit(void *arg, struct rv_event *ev)
{
    struct order *o = arg;
    if (o->n < 64) {
        o->t[o->n] = ev->time_ms;
        snprintf(o->id[o->n], sizeof(o->id[0]), "%s", ev->id);
    }
    o->n++;
    rv_event_release(ev);
    return o->stop_after && o->n == o->stop_after;
}

static void order_reject(void *arg, size_t record, const char *msg)
{
    struct order *o = arg;
    (void)record;
    (void)msg;
    o->rejected++;
}

static void test_sorted_parser(void)
{
    /* newest first, two rows of the same day (kept in payload order), a
     * bad row between them (passed on at once) */
    static const char csv[] =
        "event_id_cnty,event_date,iso,country,event_type,sub_event_type,fatalities\n"
        "SUD1,05 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD2,03 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD3,not a date,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD4,03 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD5,01 April 2024,729,Sudan,Violence against civilians,Attack,1\n";
    static const char *want[] = {"acled-SUD5", "acled-SUD2", "acled-SUD4", "acled-SUD1"};
    struct order o;
    struct rv_feed_sink sink = {"x", order_emit, order_reject, &o, NULL, 0, NULL};
    struct rv_errbuf err;
    rv_feed_parse_fn p = rv_feed_parser_sorted("acled");

    CHECK(rv_feed_parser_sorted("ndjson") == rv_feed_parse_ndjson); /* in its own order */
    CHECK(rv_feed_parser_sorted("xml") == NULL && rv_feed_parser_sorted(NULL) == NULL);
    CHECK(p != NULL && p != rv_feed_parse_acled);
    CHECK(rv_feed_parser_sorted("ooni") != NULL && rv_feed_parser_sorted("ioda") != NULL &&
          rv_feed_parser_sorted("gdelt") != NULL);
    if (!p)
        return;
    memset(&o, 0, sizeof(o));
    CHECK_OK(p(csv, sizeof(csv) - 1, &sink, &err), &err);
    CHECK(o.n == 4 && o.rejected == 1);
    for (size_t i = 0; i < 4 && i < o.n; i++)
        CHECK_STR(o.id[i], want[i]);
    /* the sink stops it after two: two emitted, the rest released */
    memset(&o, 0, sizeof(o));
    o.stop_after = 2;
    CHECK_OK(p(csv, sizeof(csv) - 1, &sink, &err), &err);
    CHECK(o.n == 2);
    CHECK_STR(o.id[1], "acled-SUD2");
    /* not of the format: the parser's answer, nothing emitted */
    memset(&o, 0, sizeof(o));
    CHECK(p("garbage", 7, &sink, &err) == RV_EINVAL && o.n == 0);

    /* at most 2 held: the payload goes out in runs of 2, each sorted, and
     * the caller is told of the run that left before the parse ended */
    {
        static const char *runs2[] = {"acled-SUD2", "acled-SUD1", "acled-SUD5", "acled-SUD4"};
        struct rv_feed_sink b = {"x", order_emit, order_reject, &o, NULL, 2, order_run};
        memset(&o, 0, sizeof(o));
        CHECK_OK(p(csv, sizeof(csv) - 1, &b, &err), &err);
        CHECK(o.n == 4 && o.rejected == 1 && o.runs == 1 && o.run_n == 2);
        for (size_t i = 0; i < 4 && i < o.n; i++)
            CHECK_STR(o.id[i], runs2[i]);
        /* the default bound (sort_max 0) holds the whole payload: one run,
         * not told */
        b.sort_max = 0;
        memset(&o, 0, sizeof(o));
        CHECK_OK(p(csv, sizeof(csv) - 1, &b, &err), &err);
        CHECK(o.n == 4 && o.runs == 0);
        for (size_t i = 0; i < 4 && i < o.n; i++)
            CHECK_STR(o.id[i], want[i]);
        /* a stop after a run went out: nothing more emitted */
        b.sort_max = 2;
        memset(&o, 0, sizeof(o));
        o.stop_after = 1;
        CHECK_OK(p(csv, sizeof(csv) - 1, &b, &err), &err);
        CHECK(o.n == 1 && o.runs == 1);
        CHECK_STR(o.id[0], "acled-SUD2");
    }
    /* sink->stop is asked at every event collected: a stop ends the parse
     * at once and nothing is emitted (the held events are released) */
    {
        struct rv_feed_sink st = {"x", order_emit, order_reject, &o, order_stop, 0, NULL};
        memset(&o, 0, sizeof(o));
        CHECK_OK(p(csv, sizeof(csv) - 1, &st, &err), &err);
        CHECK(o.n == 4 && o.polls == 4);
        memset(&o, 0, sizeof(o));
        o.stop_poll = 2;
        CHECK_OK(p(csv, sizeof(csv) - 1, &st, &err), &err);
        CHECK(o.n == 0 && o.polls == 2 && o.rejected == 0); /* ended before SUD3 */
    }
}

/* ------------------------------------------- the sort's bound, live */

struct log_ids {
    const char *source;
    size_t n;
    char id[8][RV_ID_MAX + 1];
};

static int log_ids_cb(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    struct log_ids *l = arg;
    (void)seq;
    (void)ingest_ms;
    if (strcmp(ev->source, l->source) != 0)
        return 0;
    if (l->n < 8)
        snprintf(l->id[l->n], sizeof(l->id[0]), "%s", ev->id);
    l->n++;
    return 0;
}

/* The ids of SOURCE's events in log order, compared with WANT (N). */
static void check_log_order(struct rv_store *st, const char *source, const char **want, size_t n)
{
    struct log_ids l;
    struct rv_errbuf err;

    memset(&l, 0, sizeof(l));
    l.source = source;
    CHECK_OK(rv_store_read_log(st, 1, 0, log_ids_cb, &l, &err), &err);
    CHECK(l.n == n);
    for (size_t i = 0; i < n && i < l.n; i++)
        CHECK_STR(l.id[i], want[i]);
}

/* One ACLED export newest first read by three feeds: sort_max_events 2
 * (written in two sorted runs, logged and counted), the default (one
 * sort) and 0 (no sort: payload order). */
static void test_sort_bound(const char *tmp)
{
    static const char csv[] =
        "event_id_cnty,event_date,iso,country,event_type,sub_event_type,fatalities\n"
        "SUD1,05 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD2,03 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD4,04 April 2024,729,Sudan,Violence against civilians,Attack,1\n"
        "SUD5,01 April 2024,729,Sudan,Violence against civilians,Attack,1\n";
    static const char *runs2[] = {"acled-SUD2", "acled-SUD1", "acled-SUD5", "acled-SUD4"};
    static const char *sorted[] = {"acled-SUD5", "acled-SUD2", "acled-SUD4", "acled-SUD1"};
    static const char *asis[] = {"acled-SUD1", "acled-SUD2", "acled-SUD4", "acled-SUD5"};
    struct env e;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s[3];
    struct rv_errbuf err;
    struct rv_metrics *m = NULL;
    struct rv_feed_cfg fc[3];
    struct log_capture lc;
    char path[512], logp[512], want[1024];
    char *log;
    rv_metric *ov, *ovd;

    snprintf(path, sizeof(path), "%s/newest_first.csv", tmp);
    snprintf(logp, sizeof(logp), "%s/sort.log", tmp);
    write_file(path, csv);
    fc[0] = cfg("sort2", "acled", path);
    fc[0].sort_max_events = 2;
    fc[1] = cfg("sortdef", "acled", path);
    fc[2] = cfg("sort0", "acled", path);
    fc[2].sort_max_events = 0;
    CHECK(fc[1].sort_max_events == RV_FEED_SORT_MAX_DEFAULT && RV_FEED_SORT_MAX_DEFAULT == 200000);
    CHECK_OK(rv_metrics_new(&m), NULL);
    ov = rv_metrics_counter(m, "rv_feed_sort_overflows_total", "feed=\"sort2\"", "");
    ovd = rv_metrics_counter(m, "rv_feed_sort_overflows_total", "feed=\"sortdef\"", "");
    log_capture(&lc, logp, RV_LOG_WARN);
    env_open(&e, tmp, "store-sort");
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 3, m, &f, &err), &err);
    CHECK(wait_polls(f, "sort2", 1, 10000, &s[0]) == 0);
    CHECK(wait_polls(f, "sortdef", 1, 10000, &s[1]) == 0);
    CHECK(wait_polls(f, "sort0", 1, 10000, &s[2]) == 0);
    rv_feeds_stop(&f);
    log_release(&lc);

    for (int i = 0; i < 3; i++)
        CHECK(s[i].payloads == 1 && s[i].accepted == 4 && s[i].errors == 0 && s[i].skipped == 0);
    CHECK(s[0].sort_overflows == 1 && s[1].sort_overflows == 0 && s[2].sort_overflows == 0);
    CHECK(rv_metric_get(ov) == 1 && rv_metric_get(ovd) == 0);
    check_log_order(e.st, "sort2", runs2, 4);
    check_log_order(e.st, "sortdef", sorted, 4);
    check_log_order(e.st, "sort0", asis, 4);
    log = read_text(logp);
    snprintf(want, sizeof(want),
             " warn feeds unsorted feed=sort2 payload=\"%s\" sort_max_events=2 runs=2 "
             "reason=\"more events than the sort holds: written in time-ordered runs, events "
             "behind the watermark are late\"\n",
             path);
    CHECK(strstr(log, want) != NULL);
    CHECK(count_occurrences(log, "unsorted feed=") == 1);
    if (!strstr(log, want))
        fprintf(stderr, "log:\n%s\n", log);
    free(log);
    env_close(&e);
    rv_metrics_free(&m);
}

/* -------------------------------------------------------- file feeds */

static void test_file_feeds(const char *tmp)
{
    struct env e;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s;
    struct rv_errbuf err;
    struct rv_store_stats ss0, ss1;
    struct rv_metrics *m = NULL;
    char nd[512], ac[512], tr[512], src[1024], url[600], cur[4096];
    size_t n_acled;
    struct rv_feed_cfg fc[3];

    snprintf(nd, sizeof(nd), "%s/partner.ndjson", tmp);
    snprintf(ac, sizeof(ac), "%s/acled.csv", tmp);
    snprintf(tr, sizeof(tr), "%s/truncated.ndjson", tmp);
    snprintf(src, sizeof(src), "%s/partner_events.ndjson", data_dir());
    copy_file(src, nd);
    snprintf(src, sizeof(src), "%s/acled_export_format_fictional.csv", data_dir());
    copy_file(src, ac);
    n_acled = acled_expected(ac);
    CHECK(n_acled > 20);
    snprintf(src, sizeof(src), "%s/feeds/truncated.ndjson", data_dir());
    copy_file(src, tr);
    snprintf(url, sizeof(url), "file://%s", nd);

    fc[0] = cfg("p1", "ndjson", url);
    fc[1] = cfg("a1", "acled", ac);
    fc[2] = cfg("t1", "ndjson", tr);
    CHECK_OK(rv_metrics_new(&m), NULL);
    env_open(&e, tmp, "store-files");
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 3, m, &f, &err), &err);
    CHECK(wait_polls(f, "p1", 1, 10000, &s) == 0);
    CHECK(s.accepted == 30 && s.duplicates == 0 && s.rejected == 0 && s.payloads == 1);
    CHECK(wait_polls(f, "a1", 1, 10000, &s) == 0);
    CHECK(s.accepted == n_acled && s.payloads == 1 && s.errors == 0);
    CHECK(wait_polls(f, "t1", 1, 10000, &s) == 0);
    /* truncated file: the 5 good lines are kept, lines 4 and 7 rejected */
    CHECK(s.accepted == 5 && s.rejected == 2 && s.errors == 0);
    CHECK(rv_metric_get(rv_metrics_counter(m, "rv_feed_records_total",
                                           "feed=\"t1\",outcome=\"rejected\"", "")) == 2);
    CHECK(rv_metric_get(rv_metrics_counter(m, "rv_feed_records_total",
                                           "feed=\"p1\",outcome=\"accepted\"", "")) == 30);
    rv_feeds_stop(&f);
    CHECK(f == NULL);
    CHECK(count_source(e.st, "p1") == 30);
    CHECK(count_source(e.st, "a1") == n_acled);
    CHECK(count_source(e.st, "t1") == 5);
    CHECK(cursor_of(e.st, "feed:p1", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"sha256\":\"") != NULL && strstr(cur, nd) != NULL);
    CHECK(cursor_of(e.st, "feed:a1", cur, sizeof(cur)) > 0);

    /* restart: unchanged files are skipped, nothing written */
    rv_store_get_stats(e.st, &ss0);
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 3, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "p1", 1, 10000, &s) == 0);
    CHECK(s.unchanged == 1 && s.payloads == 0 && s.accepted == 0);
    CHECK(wait_polls(f, "a1", 1, 10000, &s) == 0);
    CHECK(s.unchanged == 1 && s.payloads == 0);
    CHECK(wait_polls(f, "t1", 1, 10000, &s) == 0);
    CHECK(s.unchanged == 1);
    rv_store_get_stats(e.st, &ss1);
    CHECK(ss1.commits == ss0.commits);
    CHECK(ss1.events_accepted == ss0.events_accepted &&
          ss1.events_duplicate == ss0.events_duplicate);

    /* touched, same content: recognised by its hash (cursor only) */
    {
        struct timeval tv[2];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec += 5;
        tv[1] = tv[0];
        CHECK(utimes(nd, tv) == 0);
    }
    rv_feeds_poll_now(f);
    CHECK(wait_polls(f, "p1", 2, 10000, &s) == 0);
    CHECK(s.unchanged == 2 && s.payloads == 0);
    /* appended: only the new line is new, the rest are duplicates */
    {
        FILE *fp = fopen(nd, "a");
        fputs("{\"id\":\"appended-1\",\"kind\":\"news\",\"country\":\"SY\","
              "\"violation\":\"killing\",\"time\":\"2025-05-01T00:00:00Z\"}\n",
              fp);
        fclose(fp);
    }
    rv_feeds_poll_now(f);
    CHECK(wait_polls(f, "p1", 3, 10000, &s) == 0);
    CHECK(s.payloads == 1 && s.accepted == 1 && s.duplicates == 30);
    rv_feeds_stop(&f);
    CHECK(count_source(e.st, "p1") == 31);
    env_close(&e);
    rv_metrics_free(&m);
}

/* --------------------------------------------------------- dir feed */

static void test_dir_feed(const char *tmp)
{
    struct env e;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s;
    struct rv_errbuf err;
    struct rv_feed_cfg fc;
    char dir[512], p[600], cur[4096];
    static const char ev[] = "{\"id\":\"%s\",\"kind\":\"incident\",\"country\":\"MM\","
                             "\"violation\":\"arbitrary_detention\",\"time\":\"2025-03-0%dT00:00:00Z\"}\n";
    char line[512];

    snprintf(dir, sizeof(dir), "%s/dropbox", tmp);
    CHECK(mkdir(dir, 0700) == 0);
    for (int i = 1; i <= 2; i++) {
        char body[1200];
        char id1[32], id2[32];
        snprintf(id1, sizeof(id1), "d%d-a", i);
        snprintf(id2, sizeof(id2), "d%d-b", i);
        snprintf(line, sizeof(line), ev, id1, i);
        snprintf(body, sizeof(body), "%s", line);
        snprintf(line, sizeof(line), ev, id2, i);
        snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s", line);
        snprintf(p, sizeof(p), "%s/00%d.ndjson", dir, i);
        write_file(p, body);
    }
    snprintf(p, sizeof(p), "%s/.hidden.ndjson", dir);
    write_file(p, "garbage\n");

    fc = cfg("d1", "ndjson", dir);
    env_open(&e, tmp, "store-dir");
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "d1", 1, 10000, &s) == 0);
    CHECK(s.payloads == 2 && s.accepted == 4 && s.rejected == 0 && s.invalid == 0);
    rv_feeds_stop(&f);
    CHECK(cursor_of(e.st, "feed:d1", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"002.ndjson\"") != NULL);

    /* a later file is picked up; one sorting before the cursor is not */
    snprintf(line, sizeof(line), ev, "d3-a", 3);
    snprintf(p, sizeof(p), "%s/003.ndjson", dir);
    write_file(p, line);
    snprintf(line, sizeof(line), ev, "d0-a", 4);
    snprintf(p, sizeof(p), "%s/000.ndjson", dir);
    write_file(p, line);
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "d1", 1, 10000, &s) == 0);
    CHECK(s.payloads == 1 && s.accepted == 1 && s.duplicates == 0);
    rv_feeds_stop(&f);
    CHECK(count_source(e.st, "d1") == 5);
    CHECK(cursor_of(e.st, "feed:d1", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"003.ndjson\"") != NULL);

    /* a missing path is a failure with a clear message, retried */
    {
        struct rv_feed_cfg bad = cfg("gone", "ndjson", "/nonexistent/rv-feed");
        bad.backoff_min_s = 1;
        bad.backoff_max_s = 1;
        CHECK_OK(rv_feeds_start(e.st, e.w, &bad, 1, NULL, &f, &err), &err);
        CHECK(wait_polls(f, "gone", 1, 10000, &s) == 0);
        CHECK(s.errors == 1 && s.consecutive_failures == 1);
        CHECK_STR(s.last_error, "file: cannot stat '/nonexistent/rv-feed': No such file or directory");
        CHECK(wait_polls(f, "gone", 2, 5000, &s) == 0); /* retried within the backoff */
        rv_feeds_stop(&f);
    }
    env_close(&e);
}

/* --------------------------------------------- a payload of 3 chunks */

static void test_big_payload(const char *tmp)
{
    struct env e;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s;
    struct rv_errbuf err;
    struct rv_store_stats s0, s1;
    struct rv_feed_cfg fc;
    char p[512];
    FILE *fp;

    snprintf(p, sizeof(p), "%s/big.ndjson", tmp);
    fp = fopen(p, "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    for (int i = 0; i < 2 * RV_FEEDS_CHUNK + 1; i++)
        fprintf(fp,
                "{\"id\":\"big-%d\",\"kind\":\"news\",\"country\":\"SD\","
                "\"violation\":\"displacement\",\"time\":%lld}\n",
                i, 1735689600000LL + i * 1000LL);
    fclose(fp);
    fc = cfg("b1", "ndjson", p);
    env_open(&e, tmp, "store-big");
    rv_store_get_stats(e.st, &s0);
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "b1", 1, 20000, &s) == 0);
    CHECK(s.accepted == 2 * RV_FEEDS_CHUNK + 1 && s.payloads == 1);
    rv_feeds_stop(&f);
    rv_store_get_stats(e.st, &s1);
    /* 5000 + 5000 + (1 + the cursor): three transactions */
    CHECK(s1.commits - s0.commits == 3);
    CHECK(count_source(e.st, "b1") == 2 * RV_FEEDS_CHUNK + 1);
    env_close(&e);
}

/* ------------------------------------------- files that cannot be read */

static void write_events(const char *path, const char *prefix, int n)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(2);
    }
    for (int i = 0; i < n; i++)
        fprintf(fp,
                "{\"id\":\"%s-%03d\",\"kind\":\"incident\",\"country\":\"MM\","
                "\"violation\":\"arbitrary_detention\",\"time\":\"2025-03-01T00:00:00Z\"}\n",
                prefix, i);
    fclose(fp);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* A directory file past max_bytes is skipped (cursor, log line, metric)
 * and the later files go on; a single file past max_bytes is logged and
 * counted at every poll, at its interval, not retried like a failure. */
static void test_skip_too_big(const char *tmp)
{
    struct env e;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s, s2;
    struct rv_errbuf err;
    struct rv_metrics *m = NULL;
    struct rv_feed_cfg fc;
    struct log_capture lc;
    char dir[512], a[600], b[600], c[600], d[600], logp[600], cur[4096], want[1024];
    char *log;
    rv_metric *skipped;

    snprintf(dir, sizeof(dir), "%s/skipdir", tmp);
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(a, sizeof(a), "%s/a.ndjson", dir);
    snprintf(b, sizeof(b), "%s/b.ndjson", dir);
    snprintf(c, sizeof(c), "%s/c.ndjson", dir);
    snprintf(d, sizeof(d), "%s/d.ndjson", dir);
    snprintf(logp, sizeof(logp), "%s/skip.log", tmp);
    write_events(a, "sa", 2);
    write_events(b, "sb", 200); /* about 25 KB */
    write_events(c, "sc", 3);
    CHECK(file_size(a) < 2000 && file_size(b) > 2000 && file_size(c) < 2000);

    fc = cfg("skipdir", "ndjson", dir);
    fc.max_bytes = 2000;
    fc.backoff_min_s = 1;
    fc.backoff_max_s = 1;
    CHECK_OK(rv_metrics_new(&m), NULL);
    skipped = rv_metrics_counter(m, "rv_feed_fetches_total", "feed=\"skipdir\",outcome=\"skipped\"",
                                 "");
    log_capture(&lc, logp, RV_LOG_WARN);
    env_open(&e, tmp, "store-skip");
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, m, &f, &err), &err);
    CHECK(wait_polls(f, "skipdir", 1, 10000, &s) == 0);
    rv_feeds_poll_now(f); /* the skipped file is not tried (nor logged) again */
    CHECK(wait_polls(f, "skipdir", 2, 10000, &s2) == 0);
    rv_feeds_stop(&f);
    log_release(&lc);

    CHECK(s.payloads == 2 && s.accepted == 5 && s.skipped == 1);
    CHECK(s.errors == 0 && s.consecutive_failures == 0);
    CHECK_STR(s.last_error, "");
    snprintf(want, sizeof(want), "file: '%s' is %lld bytes, more than max_bytes 2000", b,
             file_size(b));
    CHECK_STR(s.last_skipped, want);
    CHECK(s2.skipped == 1 && s2.payloads == 2 && s2.unchanged == 1 && s2.errors == 0);
    CHECK(rv_metric_get(skipped) == 1);
    CHECK(count_source(e.st, "skipdir") == 5);
    CHECK(cursor_of(e.st, "feed:skipdir", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"c.ndjson\"") != NULL && strstr(cur, "skipped") == NULL);
    log = read_text(logp);
    snprintf(want, sizeof(want),
             " warn feeds skipped feed=skipdir payload=\"b.ndjson\" reason=\"file: '%s' is %lld "
             "bytes, more than max_bytes 2000\"\n",
             b, file_size(b));
    CHECK(strstr(log, want) != NULL);
    CHECK(count_occurrences(log, "skipped feed=") == 1);
    CHECK(strstr(log, "fetch failed") == NULL);
    if (!strstr(log, want))
        fprintf(stderr, "log:\n%s\n", log);
    free(log);

    /* the last file too big: the cursor stays on it, marked skipped; cut
     * down, it is read again */
    write_events(d, "sd", 100);
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, m, &f, &err), &err);
    CHECK(wait_polls(f, "skipdir", 1, 10000, &s) == 0);
    rv_feeds_stop(&f);
    CHECK(s.skipped == 1 && s.payloads == 0 && s.errors == 0);
    CHECK(cursor_of(e.st, "feed:skipdir", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"d.ndjson\"") != NULL && strstr(cur, "\"skipped\":true") != NULL);
    write_events(d, "sd", 4);
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, m, &f, &err), &err);
    CHECK(wait_polls(f, "skipdir", 1, 10000, &s) == 0);
    rv_feeds_stop(&f);
    CHECK(s.skipped == 0 && s.payloads == 1 && s.accepted == 4);
    CHECK(cursor_of(e.st, "feed:skipdir", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"d.ndjson\"") != NULL && strstr(cur, "skipped") == NULL);
    CHECK(count_source(e.st, "skipdir") == 9);
    CHECK(rv_metric_get(skipped) == 2);

    /* one file that grew past max_bytes: skipped at every poll, and the
     * next poll is at the interval, not after a failure's backoff */
    fc = cfg("skipfile", "ndjson", b);
    fc.max_bytes = 2000;
    fc.backoff_min_s = 1;
    fc.backoff_max_s = 1;
    CHECK_OK(rv_feeds_start(e.st, e.w, &fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "skipfile", 1, 10000, &s) == 0);
    sleep_ms(1500);
    CHECK(rv_feeds_stats(f, "skipfile", &s2) == RV_OK);
    CHECK(s2.polls == 1);
    rv_feeds_poll_now(f);
    CHECK(wait_polls(f, "skipfile", 2, 10000, &s2) == 0);
    rv_feeds_stop(&f);
    CHECK(s.skipped == 1 && s.errors == 0 && s.consecutive_failures == 0 && s.payloads == 0);
    CHECK_STR(s.last_error, "");
    snprintf(want, sizeof(want), "file: '%s' is %lld bytes, more than max_bytes 2000", b,
             file_size(b));
    CHECK_STR(s.last_skipped, want);
    CHECK(s2.skipped == 2 && s2.errors == 0);
    CHECK(cursor_of(e.st, "feed:skipfile", cur, sizeof(cur)) == 0);
    env_close(&e);
    rv_metrics_free(&m);
}

/* ------------------------------------------- out of memory in a parse */

/* the sanitizers reserve terabytes of address space: no RLIMIT_AS there */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RV_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                       \
    __has_feature(memory_sanitizer)
#define RV_TEST_SANITIZED 1
#endif
#endif
#ifdef RV_TEST_SANITIZED
#define RV_TEST_RLIMIT_AS 0
#else
#define RV_TEST_RLIMIT_AS 1
#endif

#if RV_TEST_RLIMIT_AS
#include <sys/resource.h>

#define IODA_HEAD                                                                                  \
    "{\"type\":\"signals\",\"metadata\":{},\"requestParameters\":{},\"error\":null,"             \
    "\"perf\":null,\"data\":[[{\"entityType\":\"country\",\"entityCode\":\"TR\","                \
    "\"datasource\":\"bgp\",\"from\":1706745600,\"until\":1706746500,\"step\":300,"              \
    "\"nativeStep\":300,\"values\":["
#define IODA_TAIL "]}]],\"copyright\":\"made by test_feeds\"}\n"

/* Runs feed NAME (FORMAT at URL, polled every second, retried after 1 s)
 * until it has polled POLLS times; its stats in *S. */
static void nomem_run(struct env *e, const char *name, const char *format, const char *url,
                      uint64_t polls, struct rv_feed_stats *s)
{
    struct rv_feeds *f = NULL;
    struct rv_errbuf err;
    struct rv_feed_cfg fc = cfg(name, format, url);

    fc.interval_s = 1;
    fc.backoff_min_s = 1;
    fc.backoff_max_s = 1;
    CHECK_OK(rv_feeds_start(e->st, e->w, &fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, name, polls, 30000, s) == 0);
    rv_feeds_stop(&f);
}

/* The child of test_nomem_skip: its address space capped, a directory
 * whose first file's JSON tree cannot fit. Exit status: check failures. */
static void nomem_child(const char *tmp)
{
    struct env e;
    struct rv_feed_stats s;
    struct rlimit rl;
    char dir[512], a[600], b[600], cur[4096];
    unsigned long vm_pages = 0;
    FILE *fp;

    snprintf(dir, sizeof(dir), "%s/nomemdir", tmp);
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(a, sizeof(a), "%s/a.json", dir);
    snprintf(b, sizeof(b), "%s/b.json", dir);
    /* a: 12M numbers (24 MB of text, ~1 GB as a cJSON tree) */
    fp = fopen(a, "w");
    CHECK(fp != NULL);
    if (fp == NULL)
        _exit(1);
    fputs(IODA_HEAD, fp);
    for (int i = 0; i < 12 * 1000 * 1000; i++)
        fputs(i ? ",1" : "1", fp);
    fputs(IODA_TAIL, fp);
    CHECK(fclose(fp) == 0);
    fp = fopen(b, "w");
    CHECK(fp != NULL);
    if (fp == NULL)
        _exit(1);
    fputs(IODA_HEAD "62200,62210,62190" IODA_TAIL, fp);
    CHECK(fclose(fp) == 0);

    CHECK(rv_event_parse_arena_init() == RV_OK); /* the cJSON hooks, as the daemon has */
    env_open(&e, tmp, "store-nomem");
    fp = fopen("/proc/self/statm", "r");
    CHECK(fp != NULL && fscanf(fp, "%lu", &vm_pages) == 1);
    if (fp)
        fclose(fp);
    rl.rlim_cur = rl.rlim_max = (rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE) + (384u << 20);
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0);

    nomem_run(&e, "nomem", "ioda", dir, RV_FEEDS_NOMEM_TRIES, &s);
    /* tried RV_FEEDS_NOMEM_TRIES times, then stepped over; b read */
    CHECK(s.skipped == 1 && s.payloads == 1 && s.accepted == 3);
    CHECK(s.errors == RV_FEEDS_NOMEM_TRIES - 1);
    CHECK(strstr(s.last_skipped, "json: out of memory for the tree of a ") != NULL);
    CHECK(strstr(s.last_skipped, "(3 tries)") != NULL);
    if (s.skipped != 1)
        fprintf(stderr, "nomem: skipped %llu payloads %llu invalid %llu last_error '%s'\n",
                (unsigned long long)s.skipped, (unsigned long long)s.payloads,
                (unsigned long long)s.invalid, s.last_error);
    CHECK(count_source(e.st, "nomem") == 3);
    CHECK(cursor_of(e.st, "feed:nomem", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"file\":\"b.json\"") != NULL && strstr(cur, "skipped") == NULL);

    /* the same file as a feed of its own: tried, skipped with its cursor,
     * then left alone (not parsed again) while it does not change */
    nomem_run(&e, "nomemfile", "ioda", a, RV_FEEDS_NOMEM_TRIES + 1, &s);
    CHECK(s.skipped == 1 && s.errors == RV_FEEDS_NOMEM_TRIES - 1 && s.unchanged >= 1);
    CHECK(strstr(s.last_skipped, "json: out of memory for the tree of a ") != NULL);
    CHECK(cursor_of(e.st, "feed:nomemfile", cur, sizeof(cur)) > 0);
    CHECK(count_source(e.st, "nomemfile") == 0);

    /* ACLED's JSON export goes through its own parse: the same */
    snprintf(b, sizeof(b), "%s/acled.json", tmp);
    fp = fopen(b, "w");
    CHECK(fp != NULL);
    if (fp == NULL)
        _exit(1);
    fputs("[", fp);
    for (int i = 0; i < 12 * 1000 * 1000; i++)
        fputs(i ? ",1" : "1", fp);
    fputs("]\n", fp);
    CHECK(fclose(fp) == 0);
    nomem_run(&e, "nomemacled", "acled", b, RV_FEEDS_NOMEM_TRIES, &s);
    CHECK(s.skipped == 1 && s.errors == RV_FEEDS_NOMEM_TRIES - 1 && s.invalid == 0);
    CHECK(strstr(s.last_skipped, "json: out of memory for the tree of a ") != NULL);
    env_close(&e);
    _exit(check_failures ? 1 : 0);
}
#endif

/* A directory file whose JSON tree does not fit in memory is told apart
 * from a malformed one (not "syntax error": out of memory), tried again,
 * then stepped over, so the later files are read. In a child process,
 * under RLIMIT_AS. */
static void test_nomem_skip(const char *tmp)
{
#if RV_TEST_RLIMIT_AS
    pid_t pid;
    int st = 0;
    uint64_t t0 = rv_mono_ns();

    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        nomem_child(tmp);
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (rv_mono_ns() - t0 > 60ull * 1000000000u) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "nomem: the child did not finish in 60 s\n");
            break;
        }
        sleep_ms(50);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#else
    (void)tmp;
    printf("test_nomem_skip: not in a sanitizer build (RLIMIT_AS); make test runs it\n");
#endif
}

/* ------------------------------------------------------------ backoff */

/* Every draw within [max(D/2, 1 s), D], and both ends of that range
 * reached within a tenth of it. */
static void check_backoff(const struct rv_feed_cfg *c, unsigned fails, uint64_t lo, uint64_t hi)
{
    unsigned seed = 12345u + fails;
    uint64_t mn = UINT64_MAX, mx = 0;

    for (int i = 0; i < 20000; i++) {
        uint64_t v = rv_feeds_backoff_ms(c, fails, &seed);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    if (!(mn >= lo && mx <= hi && mn <= lo + (hi - lo) / 10 && mx >= hi - (hi - lo) / 10)) {
        fprintf(stderr, "backoff min %u max %u fails %u: got %llu..%llu, want in %llu..%llu\n",
                c->backoff_min_s, c->backoff_max_s, fails, (unsigned long long)mn,
                (unsigned long long)mx, (unsigned long long)lo, (unsigned long long)hi);
        check_failures++;
    }
}

static void test_backoff(void)
{
    struct rv_feed_cfg c = cfg("x", "ndjson", "/x");

    c.backoff_min_s = 1;
    c.backoff_max_s = 1;
    for (unsigned k = 1; k <= 4; k++)
        check_backoff(&c, k, 1000, 1000); /* never under 1 s */
    c.backoff_max_s = 8;
    check_backoff(&c, 1, 1000, 1000);
    check_backoff(&c, 2, 1000, 2000);
    check_backoff(&c, 3, 2000, 4000);
    check_backoff(&c, 4, 4000, 8000);
    check_backoff(&c, 40, 4000, 8000);
    c.backoff_min_s = 30;
    c.backoff_max_s = 3600;
    check_backoff(&c, 1, 15000, 30000);
    check_backoff(&c, 8, 1800000, 3600000);
    c.interval_s = 3; /* the interval caps it */
    check_backoff(&c, 1, 1500, 3000);
    c.interval_s = 1;
    check_backoff(&c, 5, 1000, 1000);
    c.backoff_min_s = 0; /* not from a feeds file, still not a hot loop */
    check_backoff(&c, 1, 1000, 1000);
}

/* -------------------------------------------------------- HTTP feeds */

struct server {
    pid_t pid;
    int to_child; /* its stdin: closing it stops the server */
    int port;
};

static int server_start(struct server *sv)
{
    int in[2], out[2];
    char buf[128];
    size_t n = 0;
    const char *script = RV_SOURCE_DIR "/tests/feeds_http_server.py";

    memset(sv, 0, sizeof(*sv));
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    sv->pid = fork();
    if (sv->pid < 0)
        return -1;
    if (sv->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl("/usr/bin/python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    sv->to_child = in[1];
    /* "PORT n\n", bounded by an alarm-free poll loop */
    {
        uint64_t t0 = rv_mono_ns();
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
            ssize_t r = read(out[0], buf + n, sizeof(buf) - 1 - n);
            if (r > 0)
                n += (size_t)r;
            else if (r == 0)
                break;
            if (rv_mono_ns() - t0 > 10000000000ull)
                break;
            if (r < 0)
                sleep_ms(10);
            buf[n] = '\0';
        }
    }
    buf[n] = '\0';
    close(out[0]);
    if (sscanf(buf, "PORT %d", &sv->port) != 1)
        return -1;
    return 0;
}

static void server_stop(struct server *sv)
{
    int st;
    if (sv->pid <= 0)
        return;
    close(sv->to_child);
    kill(sv->pid, SIGTERM);
    waitpid(sv->pid, &st, 0);
    sv->pid = 0;
}

static void test_http_feeds(const char *tmp)
{
    struct env e;
    struct server sv;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s;
    struct rv_errbuf err;
    struct rv_feed_cfg fc[5];
    char u[5][128], cur[4096];

    if (server_start(&sv) != 0) {
        fprintf(stderr, "cannot start tests/feeds_http_server.py\n");
        check_failures++;
        server_stop(&sv);
        return;
    }
    snprintf(u[0], sizeof(u[0]), "http://127.0.0.1:%d/events.ndjson", sv.port);
    snprintf(u[1], sizeof(u[1]), "http://127.0.0.1:%d/fail", sv.port);
    snprintf(u[2], sizeof(u[2]), "http://127.0.0.1:%d/stall?key=secret", sv.port);
    snprintf(u[3], sizeof(u[3]), "http://127.0.0.1:%d/big", sv.port);
    snprintf(u[4], sizeof(u[4]), "http://127.0.0.1:%d/redirect", sv.port);
    fc[0] = cfg("h-ok", "ndjson", u[0]);
    fc[1] = cfg("h-500", "ndjson", u[1]);
    fc[1].backoff_min_s = 1;
    fc[1].backoff_max_s = 1;
    fc[2] = cfg("h-stall", "ndjson", u[2]);
    fc[2].timeout_s = 2;
    fc[2].stall_s = 1;
    fc[3] = cfg("h-big", "ndjson", u[3]);
    fc[3].max_bytes = 1000;
    fc[4] = cfg("h-redir", "ndjson", u[4]);
    env_open(&e, tmp, "store-http");
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 5, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "h-ok", 1, 10000, &s) == 0);
    CHECK(s.payloads == 1 && s.accepted == 5 && s.errors == 0);
    CHECK_STR(s.last_error, "");
    CHECK(wait_polls(f, "h-500", 1, 10000, &s) == 0);
    CHECK(s.errors == 1);
    CHECK_STR(s.last_error, "http: status 500");
    CHECK(wait_polls(f, "h-stall", 1, 15000, &s) == 0);
    CHECK(s.errors == 1 && strncmp(s.last_error, "http: Operation", 15) == 0);
    if (strncmp(s.last_error, "http: Operation", 15) != 0)
        fprintf(stderr, "stall: %s\n", s.last_error);
    CHECK(wait_polls(f, "h-big", 1, 10000, &s) == 0);
    CHECK(s.errors == 1);
    CHECK_STR(s.last_error, "http: body larger than max_bytes 1000");
    CHECK(wait_polls(f, "h-redir", 1, 10000, &s) == 0);
    CHECK(s.payloads == 1 && s.accepted == 5 && s.errors == 0);
    /* the 500 is retried after its backoff (1 s) */
    CHECK(wait_polls(f, "h-500", 2, 10000, &s) == 0);
    CHECK(s.errors == 2 && s.consecutive_failures == 2);
    CHECK(cursor_of(e.st, "feed:h-ok", cur, sizeof(cur)) > 0);
    CHECK(strstr(cur, "\"etag\":\"\\\"v1\\\"\"") != NULL);
    CHECK(strstr(cur, "\"last_modified\":\"Wed, 01 Jan 2025 10:00:00 GMT\"") != NULL);
    rv_feeds_stop(&f);
    CHECK(count_source(e.st, "h-ok") == 5);
    CHECK(count_source(e.st, "h-redir") == 5);

    /* restart: the conditional request gets a 304 */
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "h-ok", 1, 10000, &s) == 0);
    CHECK(s.not_modified == 1 && s.payloads == 0 && s.errors == 0);
    rv_feeds_stop(&f);

    /* stop aborts a transfer in flight promptly */
    {
        struct rv_feed_cfg slow = cfg("h-slow", "ndjson", u[2]);
        uint64_t t0;
        slow.timeout_s = 60;
        slow.stall_s = 60;
        CHECK_OK(rv_feeds_start(e.st, e.w, &slow, 1, NULL, &f, &err), &err);
        sleep_ms(500);
        t0 = rv_mono_ns();
        rv_feeds_stop(&f);
        CHECK(rv_mono_ns() - t0 < 3000000000ull);
    }
    env_close(&e);
    server_stop(&sv);
}

/* Credentials in a feed URL: neither the log nor the cursor shows them
 * (nor the query); the cursor still recognises the feed. */
static void test_http_credentials(const char *tmp)
{
    struct env e;
    struct server sv;
    struct rv_feeds *f = NULL;
    struct rv_feed_stats s, s500, s304, sold;
    struct rv_errbuf err;
    struct rv_feed_cfg fc[2];
    struct log_capture lc;
    char u[2][160], logp[600], cur[4096], cur2[4096], legacy[4096], want[512];
    char *log, *h;

    if (server_start(&sv) != 0) {
        fprintf(stderr, "cannot start tests/feeds_http_server.py\n");
        check_failures++;
        server_stop(&sv);
        return;
    }
    snprintf(u[0], sizeof(u[0]), "http://alice:pw-x7@127.0.0.1:%d/events.ndjson?token=s3cret",
             sv.port);
    snprintf(u[1], sizeof(u[1]), "http://alice:pw-x7@127.0.0.1:%d/fail#s3cret", sv.port);
    fc[0] = cfg("hc-ok", "ndjson", u[0]);
    fc[1] = cfg("hc-500", "ndjson", u[1]);
    snprintf(logp, sizeof(logp), "%s/cred.log", tmp);
    log_capture(&lc, logp, RV_LOG_INFO);
    env_open(&e, tmp, "store-cred");
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 2, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "hc-ok", 1, 10000, &s) == 0);
    CHECK(wait_polls(f, "hc-500", 1, 10000, &s500) == 0);
    rv_feeds_stop(&f);
    /* restart: the cursor is recognised (conditional request, 304) */
    CHECK_OK(rv_feeds_start(e.st, e.w, fc, 1, NULL, &f, &err), &err);
    CHECK(wait_polls(f, "hc-ok", 1, 10000, &s304) == 0);
    rv_feeds_stop(&f);
    CHECK(cursor_of(e.st, "feed:hc-ok", cur, sizeof(cur)) > 0);
    /* a cursor of before (the url itself) is recognised and rewritten */
    {
        char old[4096], *sha = strstr(cur, "\"sha256\":\"");
        struct rv_cursor_rec rec = {"feed:hc-ok", old, 0};
        struct rv_write_req req;

        CHECK(sha != NULL);
        snprintf(old, sizeof(old),
                 "{\"v\":1,\"url\":\"%s\",\"etag\":\"\\\"v1\\\"\","
                 "\"last_modified\":\"Wed, 01 Jan 2025 10:00:00 GMT\",%.75s}",
                 u[0], sha ? sha : "");
        rec.len = strlen(old);
        memset(&req, 0, sizeof(req));
        req.cur = &rec;
        req.nc = 1;
        CHECK_OK(rv_writer_submit_wait(e.w, &req, 10000), &req.err);
        CHECK(cursor_of(e.st, "feed:hc-ok", legacy, sizeof(legacy)) > 0);
        CHECK_OK(rv_feeds_start(e.st, e.w, fc, 1, NULL, &f, &err), &err);
        CHECK(wait_polls(f, "hc-ok", 1, 10000, &sold) == 0);
        rv_feeds_stop(&f);
        CHECK(cursor_of(e.st, "feed:hc-ok", cur2, sizeof(cur2)) > 0);
    }
    env_close(&e);
    log_release(&lc);
    server_stop(&sv);

    CHECK(s.payloads == 1 && s.accepted == 5 && s.errors == 0);
    CHECK(s500.errors == 1);
    CHECK_STR(s500.last_error, "http: status 500");
    CHECK(s304.not_modified == 1 && s304.payloads == 0 && s304.errors == 0);
    CHECK(strstr(legacy, "s3cret") != NULL); /* the old cursor was written as meant */
    CHECK(sold.not_modified == 1 && sold.payloads == 0 && sold.errors == 0);
    CHECK_STR(cur2, cur);
    log = read_text(logp);
    snprintf(want, sizeof(want),
             " info feeds payload feed=hc-ok payload=\"http://127.0.0.1:%d/events.ndjson?...\" "
             "bytes=",
             sv.port);
    CHECK(strstr(log, want) != NULL);
    snprintf(want, sizeof(want),
             " warn feeds fetch failed feed=hc-500 url=\"http://127.0.0.1:%d/fail?...\" "
             "error=\"http: status 500\" code=",
             sv.port);
    CHECK(strstr(log, want) != NULL);
    CHECK(strstr(log, "alice") == NULL && strstr(log, "pw-x7") == NULL &&
          strstr(log, "s3cret") == NULL);
    if (!strstr(log, want))
        fprintf(stderr, "log:\n%s\n", log);
    free(log);
    /* the cursor keeps a hash of the url, not the url */
    CHECK(strstr(cur, "alice") == NULL && strstr(cur, "pw-x7") == NULL &&
          strstr(cur, "s3cret") == NULL && strstr(cur, "127.0.0.1") == NULL);
    h = strstr(cur, "\"url_sha256\":\"");
    CHECK(h != NULL && strlen(h) > 14 + 64 && h[14 + 64] == '"' &&
          strspn(h + 14, "0123456789abcdef") == 64);
}

/* -------------------------------------------------------------- demo */

struct demo_ctx {
    int64_t now;
    size_t total, hist, live, near_now, future, probes_live, low_probes;
    double max_live_ir;
    size_t sources_seen[5];
};

static int demo_cb(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    static const char *srcs[5] = {"demo-partner", "demo-acled", "demo-gdelt", "demo-ooni",
                                  "demo-ioda"};
    struct demo_ctx *c = arg;
    (void)seq;
    (void)ingest_ms;
    c->total++;
    for (int i = 0; i < 5; i++)
        if (strcmp(ev->source, srcs[i]) == 0)
            c->sources_seen[i]++;
    if (strstr(ev->id, "#cycle0-"))
        c->hist++;
    else
        c->live++;
    if (ev->time_ms > c->now + 1000)
        c->future++;
    if (!strstr(ev->id, "#cycle0-") && ev->time_ms > c->now - 10000)
        c->near_now++;
    if (strstr(ev->id, "-live") && ev->has_value) {
        c->probes_live++;
        if (ev->value < 0.2 * 420) /* below the lowest baseline of the sample */
            c->low_probes++;
    }
    return 0;
}

static void test_demo(const char *tmp)
{
    struct env e;
    struct rv_demo *d = NULL;
    struct rv_errbuf err;
    struct rv_store_stats ss;
    struct demo_ctx c;
    struct rv_event_filter fl;
    uint64_t t0;

    env_open(&e, tmp, "store-demo");
    CHECK(rv_demo_start(e.w, "/nonexistent/demo", 1.0, NULL, &d, &err) == RV_ENOTFOUND);
    CHECK_STR(err.msg, "demo: no sample events under '/nonexistent/demo'");
    CHECK(rv_demo_start(e.w, RV_SOURCE_DIR "/demo", 0.0, NULL, &d, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "demo.speed: must be a number > 0 and <= 1000000");
    /* speed 300: a drop starts after 1 s of live replay (after the
     * burst); wait for its first low probe, bounded */
    CHECK_OK(rv_demo_start(e.w, RV_SOURCE_DIR "/demo", 300.0, NULL, &d, &err), &err);
    t0 = rv_mono_ns();
    {
        struct demo_ctx w;
        memset(&w, 0, sizeof(w));
        memset(&fl, 0, sizeof(fl));
        fl.violation = -1;
        fl.source = "demo-ioda";
        while (rv_mono_ns() - t0 < 15000000000ull) {
            sleep_ms(250);
            w.now = rv_now_ms();
            w.low_probes = 0;
            CHECK_OK(rv_store_read_events(e.st, &fl, demo_cb, &w, &err), &err);
            if (w.low_probes > 0 && rv_mono_ns() - t0 > 2000000000ull)
                break;
        }
    }
    t0 = rv_mono_ns();
    rv_demo_stop(&d);
    CHECK(d == NULL);
    CHECK(rv_mono_ns() - t0 < 3000000000ull);
    memset(&c, 0, sizeof(c));
    c.now = rv_now_ms();
    memset(&fl, 0, sizeof(fl));
    fl.violation = -1;
    CHECK_OK(rv_store_read_events(e.st, &fl, demo_cb, &c, &err), &err);
    rv_store_get_stats(e.st, &ss);
    /* every id distinct: nothing was a duplicate */
    CHECK(ss.events_duplicate == 0);
    CHECK(c.hist > 3000);         /* two days of IODA signal and the other samples */
    CHECK(c.live > 100);          /* 1200 events/s at speed 300 */
    CHECK(c.near_now == c.live);  /* live events are stamped now */
    CHECK(c.future == 0);
    for (int i = 0; i < 5; i++)
        CHECK(c.sources_seen[i] > 0);
    CHECK(c.probes_live >= 6);
    CHECK(c.low_probes >= 1);     /* the recurring drop happened */
    printf("demo: %zu history, %zu live events, %zu live probes (%zu dropped)\n", c.hist, c.live,
           c.probes_live, c.low_probes);
    env_close(&e);
}

int main(void)
{
    char tmp[256];
    uint64_t t0 = rv_mono_ns();

    signal(SIGPIPE, SIG_IGN);
    rv_log_set_level(RV_LOG_ERROR);
    make_tmpdir(tmp, sizeof(tmp));
    test_feeds_file(tmp);
    test_ndjson_parser();
    test_sorted_parser();
    test_file_feeds(tmp);
    test_dir_feed(tmp);
    test_big_payload(tmp);
    test_skip_too_big(tmp);
    test_nomem_skip(tmp);
    test_sort_bound(tmp);
    test_backoff();
    test_http_feeds(tmp);
    test_http_credentials(tmp);
    test_demo(tmp);
    rm_rf(tmp);
    printf("test_feeds: %.1f s\n", (double)(rv_mono_ns() - t0) / 1e9);
    CHECK_DONE();
}

/*
 * test_decode_view: rv_event_decode_view and rv_store_read_log_view give
 * the fields rv_event_decode and rv_store_read_log give, without copies;
 * the same corrupt records are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv/event.h"
#include "rv/store.h"
#include "store_util.h"

/* The view's string (P, N) equals the C string S (NULL or "" for an
 * absent title, url, attrs). */
static int same_str(const char *p, size_t n, const char *s)
{
    if (s == NULL)
        return p == NULL && n == 0;
    return p != NULL && n == strlen(s) && memcmp(p, s, n) == 0;
}

static int same_fixed(const char *p, size_t n, const char *s)
{
    return p != NULL && n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Every field of V equals EV's (EV from rv_event_decode). */
static void check_same(const struct rv_event_view *v, const struct rv_event *ev)
{
    CHECK(v->kind == ev->kind);
    CHECK(v->violation == ev->violation);
    CHECK(v->severity == ev->severity);
    CHECK(memcmp(v->country, ev->country, 3) == 0);
    CHECK(v->time_ms == ev->time_ms);
    CHECK(v->count == ev->count);
    CHECK(memcmp(&v->confidence, &ev->confidence, sizeof v->confidence) == 0);
    CHECK(v->has_value == ev->has_value);
    CHECK(memcmp(&v->value, &ev->value, sizeof v->value) == 0);
    CHECK(v->has_geo == ev->has_geo);
    CHECK(memcmp(&v->lat, &ev->lat, sizeof v->lat) == 0);
    CHECK(memcmp(&v->lon, &ev->lon, sizeof v->lon) == 0);
    CHECK(same_fixed(v->source, v->source_len, ev->source));
    CHECK(same_fixed(v->id, v->id_len, ev->id));
    CHECK(same_fixed(v->admin1, v->admin1_len, ev->admin1));
    CHECK(same_str(v->title, v->title_len, ev->title));
    CHECK(same_str(v->url, v->url_len, ev->url));
    CHECK(same_str(v->attrs, v->attrs_len, ev->attrs));
}

/* Encodes EV, decodes it both ways, compares; then every truncation and
 * a wrong version are refused by both. */
static void round_trip(const struct rv_event *ev)
{
    size_t cap = rv_event_encoded_size(ev);
    unsigned char *buf = malloc(cap), *cut;
    struct rv_event d;
    struct rv_event_view v;
    int n = rv_event_encode(ev, buf, cap);

    CHECK(n > 0 && (size_t)n == cap);
    CHECK(rv_event_decode(buf, (size_t)n, &d) == RV_OK);
    CHECK(rv_event_decode_view(buf, (size_t)n, &v) == RV_OK);
    check_same(&v, &d);
    check_same(&v, ev);
    /* the strings point into the buffer: nothing was copied */
    CHECK(v.source > (const char *)buf && v.source < (const char *)buf + n);
    if (v.attrs != NULL)
        CHECK(v.attrs + v.attrs_len == (const char *)buf + n);
    rv_event_release(&d);
    for (size_t len = 0; len < (size_t)n; len++) {
        /* a copy of exactly LEN bytes, so that a read past it is caught
         * by the sanitizers */
        cut = malloc(len ? len : 1);
        memcpy(cut, buf, len);
        CHECK(rv_event_decode(cut, len, &d) == RV_ECORRUPT);
        CHECK(rv_event_decode_view(cut, len, &v) == RV_ECORRUPT);
        free(cut);
    }
    buf[0] ^= 0x40;
    CHECK(rv_event_decode(buf, (size_t)n, &d) == RV_ECORRUPT);
    CHECK(rv_event_decode_view(buf, (size_t)n, &v) == RV_ECORRUPT);
    buf[0] ^= 0x40;
    /* a kind past the enum */
    buf[1] = RV_KIND_COUNT;
    CHECK(rv_event_decode(buf, (size_t)n, &d) == RV_ECORRUPT);
    CHECK(rv_event_decode_view(buf, (size_t)n, &v) == RV_ECORRUPT);
    free(buf);
}

static void test_round_trips(void)
{
    struct rv_event ev;

    /* the plainest event: no admin1, title, url, attrs */
    rv_event_init(&ev);
    snprintf(ev.source, sizeof ev.source, "gdelt");
    snprintf(ev.id, sizeof ev.id, "1");
    memcpy(ev.country, "SY", 3);
    ev.time_ms = 1700000000123LL;
    round_trip(&ev);

    /* every field set, strings at their caps */
    memset(ev.source, 's', RV_SOURCE_MAX);
    ev.source[RV_SOURCE_MAX] = '\0';
    memset(ev.id, 'i', RV_ID_MAX);
    ev.id[RV_ID_MAX] = '\0';
    memset(ev.admin1, 'a', RV_ADMIN1_MAX);
    ev.admin1[RV_ADMIN1_MAX] = '\0';
    ev.kind = RV_KIND_PROBE;
    ev.violation = RV_VIOLATION_COUNT - 1;
    ev.severity = 5;
    ev.count = RV_COUNT_MAX;
    ev.confidence = 0.125;
    ev.has_value = true;
    ev.value = -3.5;
    ev.has_geo = true;
    ev.lat = -33.9;
    ev.lon = 151.2;
    ev.title = strdup("Région: coupure d'internet");
    ev.url = strdup("https://example.org/a?b=c");
    ev.attrs = strdup("{\"datasource\":\"bgp\",\"n\":[1,2]}");
    round_trip(&ev);
    rv_event_release(&ev);

    /* the shapes of the store tests' events */
    for (uint64_t k = 0; k < 64; k++) {
        make_event(&ev, k, 1000, 1700000000000LL);
        if (k % 3 == 0)
            snprintf(ev.admin1, sizeof ev.admin1, "Region %llu", (unsigned long long)k);
        if (k % 5 == 0)
            ev.title = strdup("t");
        round_trip(&ev);
        rv_event_release(&ev);
    }
}

/* A string longer than its cap is refused by both, as is a length past
 * the end. Built by hand: rv_event_encode cannot write them. */
static void test_bad_lengths(void)
{
    struct rv_event ev;
    struct rv_event_view v;
    unsigned char buf[512];
    size_t fixed = 52; /* the fixed part of the encoding */
    uint16_t l;
    uint32_t zero = 0;
    int n;

    rv_event_init(&ev);
    snprintf(ev.source, sizeof ev.source, "x");
    snprintf(ev.id, sizeof ev.id, "1");
    memcpy(ev.country, "SY", 3);
    n = rv_event_encode(&ev, buf, sizeof buf);
    CHECK(n > 0);
    /* source of RV_SOURCE_MAX + 1 bytes */
    {
        unsigned char big[512];
        size_t off = fixed;
        memcpy(big, buf, fixed);
        l = RV_SOURCE_MAX + 1;
        memcpy(big + off, &l, 2);
        off += 2;
        memset(big + off, 's', l);
        off += l;
        for (int i = 0; i < 4; i++) { /* id "1", then empty admin1, title, url */
            l = i == 0 ? 1 : 0;
            memcpy(big + off, &l, 2);
            off += 2;
            if (i == 0)
                big[off++] = '1';
        }
        memcpy(big + off, &zero, 4);
        off += 4;
        CHECK(rv_event_decode(big, off, &ev) == RV_ECORRUPT);
        CHECK(rv_event_decode_view(big, off, &v) == RV_ECORRUPT);
        /* the same with a source at the cap is fine */
        memmove(big + fixed + 2 + RV_SOURCE_MAX, big + fixed + 2 + RV_SOURCE_MAX + 1,
                off - (fixed + 2 + RV_SOURCE_MAX + 1));
        l = RV_SOURCE_MAX;
        memcpy(big + fixed, &l, 2);
        CHECK(rv_event_decode(big, off - 1, &ev) == RV_OK);
        CHECK(rv_event_decode_view(big, off - 1, &v) == RV_OK);
        check_same(&v, &ev);
        rv_event_release(&ev);
    }
    /* attrs length larger than what is left */
    {
        uint32_t al = 5;
        memcpy(buf + n - 4, &al, 4);
        CHECK(rv_event_decode(buf, (size_t)n, &ev) == RV_ECORRUPT);
        CHECK(rv_event_decode_view(buf, (size_t)n, &v) == RV_ECORRUPT);
    }
}

struct logrec {
    uint64_t seq;
    int64_t ing;
    struct rv_event ev;
};

struct collect {
    struct logrec *r;
    size_t n, cap;
};

static int on_log(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    struct collect *c = arg;

    if (c->n == c->cap)
        return 1;
    c->r[c->n].seq = seq;
    c->r[c->n].ing = ingest_ms;
    CHECK(rv_event_copy(&c->r[c->n].ev, ev) == RV_OK);
    c->n++;
    return 0;
}

struct vcheck {
    struct collect *ref;
    size_t n, stop_after;
};

static int on_view(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event_view *v)
{
    struct vcheck *c = arg;

    CHECK(c->n < c->ref->n);
    if (c->n >= c->ref->n)
        return 1;
    CHECK(seq == c->ref->r[c->n].seq);
    CHECK(ingest_ms == c->ref->r[c->n].ing);
    check_same(v, &c->ref->r[c->n].ev);
    c->n++;
    return c->stop_after && c->n == c->stop_after;
}

/* rv_store_read_log_view over a real store: the records of
 * rv_store_read_log, in order, with FROM_SEQ, MAX and an early stop. */
static void test_store_view(void)
{
    char dir[256];
    struct rv_store *st = NULL;
    struct rv_errbuf err = {0};
    struct rv_event evs[100];
    struct rv_put_result res[100];
    struct collect ref = {calloc(200, sizeof(struct logrec)), 0, 200};
    struct vcheck vc = {&ref, 0, 0};

    make_tmpdir(dir, sizeof dir);
    CHECK_OK(rv_store_open(dir, NULL, &st, &err), &err);
    if (st == NULL)
        return;
    for (uint64_t k = 0; k < 100; k++) {
        make_event(&evs[k], k, 1000, 1700000000000LL);
        if (k % 4 == 0)
            snprintf(evs[k].admin1, sizeof evs[k].admin1, "R%llu", (unsigned long long)k);
        if (k % 7 == 0)
            evs[k].attrs = strdup("{\"datasource\":\"ucsd-nt\"}");
        if (k % 9 == 0) {
            evs[k].title = strdup("title");
            evs[k].url = strdup("https://example.org/");
        }
    }
    CHECK_OK(rv_store_put_batch(st, evs, 100, NULL, 0, NULL, 0, res, &err), &err);
    CHECK_OK(rv_store_read_log(st, 1, 0, on_log, &ref, &err), &err);
    CHECK(ref.n == 100);
    CHECK_OK(rv_store_read_log_view(st, 1, 0, on_view, &vc, &err), &err);
    CHECK(vc.n == ref.n);

    /* from the middle, at most 10 */
    {
        struct collect part = {ref.r + 40, 60, 60};
        struct vcheck pc = {&part, 0, 0};
        CHECK_OK(rv_store_read_log_view(st, ref.r[40].seq, 10, on_view, &pc, &err), &err);
        CHECK(pc.n == 10);
        /* a callback that stops after 3 */
        pc.n = 0;
        pc.stop_after = 3;
        CHECK_OK(rv_store_read_log_view(st, ref.r[40].seq, 0, on_view, &pc, &err), &err);
        CHECK(pc.n == 3);
    }
    /* past the end: no call */
    vc.n = 0;
    CHECK_OK(rv_store_read_log_view(st, ref.r[99].seq + 1, 0, on_view, &vc, &err), &err);
    CHECK(vc.n == 0);

    for (size_t i = 0; i < ref.n; i++)
        rv_event_release(&ref.r[i].ev);
    for (int k = 0; k < 100; k++)
        rv_event_release(&evs[k]);
    free(ref.r);
    rv_store_close(&st);
    rm_rf(dir);
}

int main(void)
{
    test_round_trips();
    test_bad_lengths();
    test_store_view();
    CHECK_DONE();
}

/*
 * feed_sink.h: what the feed parser tests share: a sink that collects the
 * emitted events and the rejections, lookups, and reading sample files.
 */
#ifndef RV_TEST_FEED_SINK_H
#define RV_TEST_FEED_SINK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv/feed.h"

struct reject {
    size_t record; /* the parser's line or record number */
    char msg[RV_ERRBUF_SIZE];
};

struct collect {
    struct rv_event *evs;
    size_t n, cap;
    struct reject *rej;
    size_t nrej, caprej;
    size_t stop_after; /* emit returns stop_rc after this many events; 0 never */
    int stop_rc;
};

static inline int on_emit(void *arg, struct rv_event *ev)
{
    struct collect *c = arg;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct rv_event *p = realloc(c->evs, cap * sizeof *p);

        if (!p) {
            rv_event_release(ev);
            return 1;
        }
        c->evs = p;
        c->cap = cap;
    }
    c->evs[c->n++] = *ev; /* takes the owned strings */
    return c->stop_after && c->n >= c->stop_after ? c->stop_rc : 0;
}

static inline void on_reject(void *arg, size_t record, const char *msg)
{
    struct collect *c = arg;

    if (c->nrej == c->caprej) {
        size_t cap = c->caprej ? c->caprej * 2 : 16;
        struct reject *p = realloc(c->rej, cap * sizeof *p);

        if (!p)
            return;
        c->rej = p;
        c->caprej = cap;
    }
    c->rej[c->nrej].record = record;
    snprintf(c->rej[c->nrej].msg, sizeof c->rej[c->nrej].msg, "%s", msg);
    c->nrej++;
}

static inline void collect_free(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        rv_event_release(&c->evs[i]);
    free(c->evs);
    free(c->rej);
    memset(c, 0, sizeof *c);
}

/* Runs PARSE over BUF into C with the sink's source SOURCE. */
static inline int collect_parse(rv_feed_parse_fn parse, const char *source, const char *buf,
                                size_t len, struct collect *c, struct rv_errbuf *err)
{
    struct rv_feed_sink sink = {source, on_emit, on_reject, c, NULL, 0, NULL};

    rv_err_clear(err);
    return parse(buf, len, &sink, err);
}

static inline const struct rv_event *find(const struct collect *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->evs[i].id, id) == 0)
            return &c->evs[i];
    return NULL;
}

/* The sorted parser of FORMAT (rv_feed_parser_sorted) gives the events of
 * the plain one, every field the same (compared in the store's encoding),
 * in time order; SORT_MAX as sink->sort_max (0: the default). */
static inline bool sorted_same(const char *format, const char *buf, size_t len, size_t sort_max)
{
    struct collect a = {0}, b = {0};
    struct rv_feed_sink sink = {"src", on_emit, on_reject, &b, NULL, sort_max, NULL};
    struct rv_errbuf ea, eb;
    unsigned char x[70000], y[70000];
    bool ok = true;
    int ra, rb;

    ra = collect_parse(rv_feed_parser(format), "src", buf, len, &a, &ea);
    rv_err_clear(&eb);
    rb = rv_feed_parser_sorted(format)(buf, len, &sink, &eb);
    if (ra != rb || a.n != b.n || a.n == 0 || a.nrej != b.nrej) {
        fprintf(stderr, "sorted_same %s: rc %d / %d, events %zu / %zu, rejected %zu / %zu\n",
                format, ra, rb, a.n, b.n, a.nrej, b.nrej);
        ok = false;
    }
    for (size_t i = 0; ok && i < b.n; i++) {
        const struct rv_event *o = find(&a, b.evs[i].id);
        int lx = o ? rv_event_encode(o, x, sizeof x) : -1;
        int ly = rv_event_encode(&b.evs[i], y, sizeof y);
        if (lx < 0 || lx != ly || memcmp(x, y, (size_t)lx) != 0 ||
            (sort_max == 0 && i > 0 && b.evs[i].time_ms < b.evs[i - 1].time_ms)) {
            fprintf(stderr, "sorted_same %s: event %zu (%s) differs or is out of order\n", format,
                    i, b.evs[i].id);
            ok = false;
        }
    }
    collect_free(&a);
    collect_free(&b);
    return ok;
}

/* The whole file PATH, NUL-terminated; NULL (after a message) if unreadable. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* SUBDIR/NAME under $RV_TEST_DATA (SUBDIR may be ""). */
static inline char *read_data_file(const char *subdir, const char *name, size_t *len)
{
    const char *dir = getenv("RV_TEST_DATA");
    char path[1024];

    snprintf(path, sizeof path, "%s/%s%s%s", dir ? dir : "tests/data", subdir,
             subdir[0] ? "/" : "", name);
    return read_file(path, len);
}

#endif

/*
 * batch: splits a partner payload (NDJSON or a JSON array) into events,
 * reporting each bad item with its line and keeping the good ones.
 */
#include <stdlib.h>
#include <string.h>

#include "rv/batch.h"

static int one_item(const char *text, size_t len, const char *source, size_t line,
                    rv_batch_cb cb, void *arg, struct rv_batch_stats *st)
{
    struct rv_event ev;
    struct rv_errbuf err;
    struct rv_parse_info info = {0};
    int rc;

    rv_err_clear(&err);
    st->items++;
    rc = rv_event_parse(text, len, source, &ev, &info, &err);
    st->dropped_fields += info.dropped_fields;
    if (rc != RV_OK) {
        st->rejected++;
        return cb(arg, line, NULL, &err);
    }
    return cb(arg, line, &ev, NULL);
}

static int reject(size_t line, rv_batch_cb cb, void *arg, struct rv_batch_stats *st,
                  struct rv_errbuf *err)
{
    st->items++;
    st->rejected++;
    return cb(arg, line, NULL, err);
}

/* A JSON array: parse it whole, then validate each element. */
static int parse_array(const char *buf, size_t len, const char *source, size_t max_items,
                       rv_batch_cb cb, void *arg, struct rv_batch_stats *st)
{
    const char *end = NULL;
    cJSON *arr = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    struct rv_errbuf err;
    size_t line = 0;
    int rc = RV_OK;

    if (!arr) {
        size_t off = end && end >= buf && (size_t)(end - buf) <= len ? (size_t)(end - buf) : len;
        rv_err_set(&err, RV_EINVAL, "json: syntax error at offset %zu", off);
        return reject(1, cb, arg, st, &err);
    }
    for (cJSON *it = arr->child; it; it = it->next) {
        struct rv_event ev;
        struct rv_parse_info info = {0};
        line++;
        rv_err_clear(&err);
        if (max_items && line > max_items) {
            rv_err_set(&err, RV_ETOOBIG, "batch: more than %zu events", max_items);
            if ((rc = reject(line, cb, arg, st, &err)))
                break;
            continue;
        }
        st->items++;
        if (rv_event_from_json(it, source, &ev, &info, &err) != RV_OK) {
            st->rejected++;
            rc = cb(arg, line, NULL, &err);
        } else {
            rc = cb(arg, line, &ev, NULL);
        }
        st->dropped_fields += info.dropped_fields;
        if (rc)
            break;
    }
    cJSON_Delete(arr);
    return rc;
}

int rv_batch_parse(const char *buf, size_t len, const char *source, size_t max_items,
                   rv_batch_cb cb, void *arg, struct rv_batch_stats *stats)
{
    struct rv_batch_stats local = {0};
    struct rv_batch_stats *st = stats ? stats : &local;
    size_t off = 0, line = 0, good = 0;
    int rc = RV_OK;

    memset(st, 0, sizeof(*st));
    /* skip a UTF-8 BOM and leading blanks to see the first byte */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        off = 3;
    {
        size_t p = off;
        while (p < len && (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\r' || buf[p] == '\n'))
            p++;
        if (p < len && buf[p] == '[') {
            size_t bad;
            struct rv_errbuf err;
            if (!rv_utf8_valid(buf + p, len - p, &bad)) {
                rv_err_set(&err, RV_EINVAL, "utf-8: invalid byte sequence at offset %zu", bad + p);
                return reject(1, cb, arg, st, &err);
            }
            return parse_array(buf + p, len - p, source, max_items, cb, arg, st);
        }
    }
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - off;
        const char *s = buf + off;

        line++;
        off = nl ? end + 1 : len;
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        if (n == 0)
            continue;
        if (max_items && good >= max_items) {
            struct rv_errbuf err;
            rv_err_set(&err, RV_ETOOBIG, "batch: more than %zu events", max_items);
            if ((rc = reject(line, cb, arg, st, &err)))
                return rc;
            continue;
        }
        good++;
        if ((rc = one_item(s, n, source, line, cb, arg, st)))
            return rc;
    }
    return RV_OK;
}

/*
 * batch: splits a partner payload (NDJSON or a JSON array) into events,
 * reporting each bad item with its line and keeping the good ones.
 */
#include <stdbool.h>
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

/* A JSON array, element by element: each element is found by a scan that
 * knows strings and nesting, then parsed on its own, so a huge array never
 * becomes one huge cJSON tree, every element gets the per-event limits, and
 * a truncated array keeps its complete elements. BUF starts at '['. */
static int parse_array(const char *buf, size_t len, const char *source, size_t max_items,
                       rv_batch_cb cb, void *arg, struct rv_batch_stats *st)
{
    struct rv_errbuf err;
    size_t i = 1, line = 0;
    int rc;

    for (;;) {
        size_t start, end;
        int depth = 0;
        bool in_str = false;

        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
            i++;
        if (i < len && buf[i] == ']' && line == 0) { /* [] */
            i++;
            goto tail;
        }
        start = i;
        for (; i < len; i++) {
            char c = buf[i];
            if (in_str) {
                if (c == '\\')
                    i++;
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (depth == 0)
                    break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
        }
        end = i > len ? len : i;
        line++;
        if (i >= len) {
            /* the array never closed: a complete last element is still kept */
            if (end > start) {
                rv_err_clear(&err);
                if (max_items && line > max_items) {
                    rv_err_set(&err, RV_ETOOBIG, "batch: more than %zu events", max_items);
                    return reject(line, cb, arg, st, &err);
                }
                if (depth == 0 && !in_str)
                    return one_item(buf + start, end - start, source, line, cb, arg, st);
            }
            rv_err_set(&err, RV_EINVAL, "json: array not closed at offset %zu", len);
            return reject(line, cb, arg, st, &err);
        }
        if (max_items && line > max_items) {
            rv_err_set(&err, RV_ETOOBIG, "batch: more than %zu events", max_items);
            rc = reject(line, cb, arg, st, &err);
        } else {
            rc = one_item(buf + start, end - start, source, line, cb, arg, st);
        }
        if (rc)
            return rc;
        if (buf[i] == ']') {
            i++;
            break;
        }
        i++; /* past ',' */
    }
tail:
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len) {
        rv_err_set(&err, RV_EINVAL, "json: unexpected text after the array at offset %zu", i);
        return reject(line + 1, cb, arg, st, &err);
    }
    return RV_OK;
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
        if (p < len && buf[p] == '[')
            return parse_array(buf + p, len - p, source, max_items, cb, arg, st);
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

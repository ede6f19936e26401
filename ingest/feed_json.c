/* feed_json: helpers shared by the JSON feed parsers (see feed_json.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_json.h"

char *rv_feed_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

size_t rv_feed_utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

char *rv_feed_attrs_text(const cJSON *obj)
{
    char *printed = cJSON_PrintUnformatted(obj);
    char *out;

    if (printed == NULL)
        return NULL;
    out = rv_feed_dup(printed);
    cJSON_free(printed);
    return out;
}

bool rv_feed_id_safe(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* Reports the record as bad with "<path>.<field>: reason" (or
 * "<path>: reason" / "<path>[i]..." when FMT starts with ':' or '['). */
void rv_feed_rec_reject(const struct rv_feed_rec *r, const char *fmt, ...)
{
    char msg[RV_ERRBUF_SIZE];
    size_t n = 0;
    va_list ap;

    if (r->path[0] != '\0') {
        n = strlen(r->path);
        memcpy(msg, r->path, n); /* path is shorter than msg */
        if (fmt[0] != '[' && fmt[0] != ':')
            msg[n++] = '.';
    }
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - n, fmt, ap);
    va_end(ap);
    r->sink->reject(r->sink->arg, r->record, msg);
}

int rv_feed_rec_emit(const struct rv_feed_rec *r, struct rv_event *ev, int *stop)
{
    struct rv_errbuf verr;
    int rc;

    rv_err_clear(&verr);
    if (rv_event_validate(ev, &verr) != RV_OK) {
        rv_feed_rec_reject(r, "%s", verr.msg);
        rv_event_release(ev);
        return RV_REC_REJECTED;
    }
    rc = r->sink->emit(r->sink->arg, ev);
    if (rc != 0)
        *stop = rc;
    return RV_REC_EMITTED;
}

static _Thread_local bool tl_tree_oom;

int rv_feed_json_oom(struct rv_errbuf *err, size_t len)
{
    tl_tree_oom = true;
    return rv_err_set(err, RV_ENOMEM, "json: out of memory for the tree of a %zu-byte payload",
                      len);
}

bool rv_feed_json_take_oom(void)
{
    bool f = tl_tree_oom;

    tl_tree_oom = false;
    return f;
}

cJSON *rv_feed_json_parse(const char *buf, size_t len, struct rv_errbuf *err)
{
    const char *end = NULL;
    size_t bad = 0;
    cJSON *root;

    if (len == 0) {
        rv_err_set(err, RV_EINVAL, "json: empty payload");
        return NULL;
    }
    if (!rv_utf8_valid(buf, len, &bad)) {
        rv_err_set(err, RV_EINVAL, "utf-8: invalid byte sequence at offset %zu", bad);
        return NULL;
    }
    if (memchr(buf, '\0', len) != NULL) {
        rv_err_set(err, RV_EINVAL, "json: NUL byte in text");
        return NULL;
    }
    (void)rv_json_alloc_failed();
    root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    if (root == NULL && rv_json_alloc_failed()) {
        /* not the payload's fault: the caller may try again later */
        rv_feed_json_oom(err, len);
        return NULL;
    }
    if (root == NULL) {
        size_t off = end != NULL && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        size_t line = 1, i;
        for (i = 0; i < off; i++)
            line += buf[i] == '\n';
        rv_err_set(err, RV_EINVAL, "json: syntax error at offset %zu (line %zu)", off, line);
        return NULL;
    }
    if (end != NULL) {
        const char *p = end;
        while (p < buf + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p < buf + len) {
            size_t off = (size_t)(p - buf);
            cJSON_Delete(root);
            rv_err_set(err, RV_EINVAL, "json: unexpected text after the value at offset %zu", off);
            return NULL;
        }
    }
    return root;
}

int rv_feed_json_begin(const char *buf, size_t len, const struct rv_feed_sink *sink, size_t max,
                       cJSON **root, struct rv_errbuf *err)
{
    *root = NULL;
    if (sink == NULL || sink->emit == NULL || sink->reject == NULL || sink->source == NULL)
        return rv_err_set(err, RV_EINVAL, "sink: missing callbacks or source");
    if (sink->source[0] == '\0' || strlen(sink->source) > RV_SOURCE_MAX)
        return rv_err_set(err, RV_EINVAL, "source: must be 1-%d bytes", RV_SOURCE_MAX);
    if (len > max)
        return rv_err_set(err, RV_ETOOBIG, "payload: %zu bytes is over the %zu-byte cap", len, max);
    if (buf == NULL && len > 0)
        return rv_err_set(err, RV_EINVAL, "payload: NULL buffer");
    *root = rv_feed_json_parse(buf, len, err);
    if (*root == NULL)
        return err->code == RV_ENOMEM ? RV_ENOMEM : RV_EINVAL;
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return rv_err_set(err, RV_EINVAL, "json: not an object");
    }
    return RV_OK;
}

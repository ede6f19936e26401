/*
 * feed_ndjson: a feed in our own event model (DESIGN.md "Event model"),
 * as NDJSON or one JSON array of objects, and the dispatcher from a
 * format name to its parser.
 *
 * The payload is split and validated by rv_batch_parse (rv/batch.h), so a
 * feed and a partner batch follow exactly the same rules; its callback is
 * mapped onto the sink: a good item goes to sink->emit, a bad one to
 * sink->reject with its line (NDJSON) or 1-based index (array). No
 * mapping table: the payload already speaks the taxonomy.
 *
 * Reentrant: no state outside the call; any thread.
 */
#include <stddef.h>
#include <string.h>

#include "rv/batch.h"
#include "rv/err.h"
#include "rv/event.h"
#include "rv/feed.h"

/* Format name -> parser. */
static const struct feed_format {
    const char *name;
    rv_feed_parse_fn fn;
} feed_formats[] = {
    {"ndjson", rv_feed_parse_ndjson}, {"ooni", rv_feed_parse_ooni},
    {"ioda", rv_feed_parse_ioda},     {"gdelt", rv_feed_parse_gdelt},
    {"acled", rv_feed_parse_acled},
};

rv_feed_parse_fn rv_feed_parser(const char *format)
{
    if (!format)
        return NULL;
    for (size_t i = 0; i < sizeof(feed_formats) / sizeof(feed_formats[0]); i++)
        if (strcmp(feed_formats[i].name, format) == 0)
            return feed_formats[i].fn;
    return NULL;
}

struct ndjson_ctx {
    const struct rv_feed_sink *sink;
    int stopped; /* emit asked to stop */
};

static int ndjson_item(void *arg, size_t line, struct rv_event *ev, const struct rv_errbuf *e)
{
    struct ndjson_ctx *c = arg;
    int rc;

    if (!ev) {
        if (c->sink->reject)
            c->sink->reject(c->sink->arg, line, e ? e->msg : "event: rejected");
        return 0;
    }
    rc = c->sink->emit(c->sink->arg, ev);
    if (rc != 0)
        c->stopped = 1;
    return rc;
}

int rv_feed_parse_ndjson(const char *buf, size_t len, const struct rv_feed_sink *sink,
                         struct rv_errbuf *err)
{
    struct ndjson_ctx c = {sink, 0};
    struct rv_batch_stats stats;
    size_t p = 0;
    int rc;

    rv_err_clear(err);
    if (!sink || !sink->emit || !sink->source)
        return rv_err_set(err, RV_EINVAL, "sink: missing");
    if (!buf)
        len = 0;
    /* A payload whose first byte cannot start an event list is not ours:
     * say so once instead of one rejection per line. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        p = 3;
    while (p < len && (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\r' || buf[p] == '\n'))
        p++;
    if (p < len && buf[p] != '{' && buf[p] != '[')
        return rv_err_set(err, RV_EINVAL, "ndjson: not NDJSON or a JSON array of events");
    rc = rv_batch_parse(buf ? buf : "", len, sink->source, 0, ndjson_item, &c, &stats);
    if (rc == RV_ENOMEM)
        return rv_err_set(err, RV_ENOMEM, "ndjson: out of memory");
    /* a stop asked by emit is not an error of the payload */
    return RV_OK;
}

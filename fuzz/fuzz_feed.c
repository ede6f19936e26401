/*
 * fuzz_feed: libFuzzer target for one feed parser, chosen at build time
 * with -DFUZZ_FORMAT="gdelt" (ndjson, ooni, ioda, gdelt, acled), plain and
 * through the payload sort (rv_feed_parser_sorted). Every emitted event
 * must validate; every rejection must carry a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "rv/feed.h"

#ifndef FUZZ_FORMAT
#error "build with -DFUZZ_FORMAT=\"name\""
#endif

static int emit(void *arg, struct rv_event *ev)
{
    struct rv_errbuf err;
    (void)arg;
    if (rv_event_validate(ev, &err) != RV_OK)
        abort();
    rv_event_release(ev);
    return 0;
}

static void reject(void *arg, size_t record, const char *msg)
{
    (void)arg;
    (void)record;
    if (!msg || !msg[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rv_feed_parse_fn parse, sorted;
    struct rv_feed_sink sink = {"fuzz", emit, reject, NULL, NULL, 0, NULL};
    struct rv_errbuf err;
    if (!parse && !(parse = rv_feed_parser(FUZZ_FORMAT)))
        abort();
    if (!sorted && !(sorted = rv_feed_parser_sorted(FUZZ_FORMAT)))
        abort();
    parse((const char *)data, size, &sink, &err);
    /* and as the feed workers run it: through the payload sort, in runs
     * of 3 so that the run path is taken too */
    sink.sort_max = 3;
    sorted((const char *)data, size, &sink, &err);
    return 0;
}

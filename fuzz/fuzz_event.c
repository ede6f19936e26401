/*
 * fuzz_event: libFuzzer target for the partner path: a payload split by
 * rv_batch_parse into events (NDJSON or a JSON array), each validated, and
 * every accepted event through the binary form and back to JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rv/batch.h"

static int cb(void *arg, size_t line, struct rv_event *ev, const struct rv_errbuf *err)
{
    (void)arg;
    (void)line;
    if (!ev) {
        if (!err || !err->msg[0])
            abort(); /* every rejection must say why */
        return 0;
    }
    {
        unsigned char buf[RV_EVENT_MAX_BYTES * 2];
        struct rv_event back;
        int n = rv_event_encode(ev, buf, sizeof(buf));
        if (n < 0 || rv_event_decode(buf, (size_t)n, &back) != RV_OK)
            abort(); /* a valid event must round-trip */
        cJSON *a = rv_event_to_json(ev, true), *b = rv_event_to_json(&back, true);
        char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b);
        if (!sa || !sb || strcmp(sa, sb) != 0)
            abort();
        free(sa);
        free(sb);
        cJSON_Delete(a);
        cJSON_Delete(b);
        rv_event_release(&back);
    }
    rv_event_release(ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rv_batch_parse((const char *)data, size, "fuzz", 1000, cb, NULL, NULL);
    return 0;
}

/*
 * event: the event model of DESIGN.md, its validation from JSON, its
 * JSON output and the compact binary form the store keeps.
 *
 * An event owns its strings (title, url, attrs); release it with
 * rv_event_release(). Everything here is reentrant; any thread.
 */
#ifndef RV_EVENT_H
#define RV_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rv/err.h"

enum rv_kind { RV_KIND_PROBE = 0, RV_KIND_INCIDENT = 1, RV_KIND_NEWS = 2, RV_KIND_COUNT };

/* Caps, in bytes unless said otherwise. Strings are UTF-8. */
#define RV_SOURCE_MAX 64      /* source name, without NUL */
#define RV_ID_MAX 128         /* event id, without NUL */
#define RV_ADMIN1_MAX 128     /* admin1, without NUL */
#define RV_TITLE_MAX 1024     /* title */
#define RV_URL_MAX 2048       /* url */
#define RV_ATTRS_MAX_KEYS 32  /* keys in attrs */
#define RV_ATTRS_MAX_BYTES 16384 /* attrs as compact JSON */
#define RV_EVENT_MAX_BYTES 65536 /* one event's JSON text */
#define RV_JSON_MAX_DEPTH 8   /* nesting of an event object, attrs included */
#define RV_COUNT_MAX 100000000u
#define RV_FUTURE_MAX_MS (5 * 60 * 1000) /* event time at most this far ahead of our clock */

/* One observation. Fixed fields inline; the variable ones on the heap. */
struct rv_event {
    char source[RV_SOURCE_MAX + 1]; /* authenticated partner or feed name; never from payload */
    char id[RV_ID_MAX + 1];         /* unique per source */
    uint8_t kind;                   /* enum rv_kind */
    uint8_t violation;              /* enum rv_violation */
    uint8_t severity;               /* 1..5; default 3 */
    char country[3];                /* ISO 3166-1 alpha-2 + NUL */
    int64_t time_ms;                /* event time, ms since epoch UTC */
    uint32_t count;                 /* >= 1; default 1 */
    double confidence;              /* 0..1; default 1 */
    bool has_value;                 /* probes: value is set */
    double value;                   /* probe signal (ratio, /24 blocks ...) */
    bool has_geo;                   /* lat/lon are set */
    double lat, lon;                /* WGS84 degrees */
    char admin1[RV_ADMIN1_MAX + 1]; /* "" = national */
    char *title;                    /* owned, may be NULL */
    char *url;                      /* owned, may be NULL */
    char *attrs;                    /* owned compact JSON object text, may be NULL */
};

/* What parsing saw besides the event itself. */
struct rv_parse_info {
    unsigned dropped_fields; /* unknown top-level keys dropped */
};

/* Zeroes EV and sets the defaults (severity 3, count 1, confidence 1). */
void rv_event_init(struct rv_event *ev);
/* Frees EV's owned strings and re-inits it. Accepts NULL. */
void rv_event_release(struct rv_event *ev);
/* Deep copy SRC into DST (DST is overwritten, not released).
 * Errors: RV_ENOMEM (DST left initialised). */
int rv_event_copy(struct rv_event *dst, const struct rv_event *src);

/* Builds EV from the JSON object OBJ (the payload of DESIGN.md "Event
 * model"), for SOURCE (copied into ev->source; must be 1..RV_SOURCE_MAX
 * bytes). Validates every field; unknown top-level keys are dropped and
 * counted in INFO (may be NULL). Duplicate keys, depth past
 * RV_JSON_MAX_DEPTH, non-finite numbers and over-long strings are
 * rejected. On error EV is released and ERR names the field:
 *   "country: 'XX' is not an ISO 3166-1 alpha-2 code", "time: missing" ...
 * Errors: RV_EINVAL, RV_ETOOBIG, RV_ENOMEM. */
int rv_event_from_json(const cJSON *obj, const char *source, struct rv_event *ev,
                       struct rv_parse_info *info, struct rv_errbuf *err);

/* Parses one event from text (LEN bytes, need not be NUL-terminated):
 * size cap, UTF-8 check, JSON parse, then rv_event_from_json().
 * Errors as above, with "json: ..." and "utf-8: ..." messages. */
int rv_event_parse(const char *text, size_t len, const char *source, struct rv_event *ev,
                   struct rv_parse_info *info, struct rv_errbuf *err);

/* Makes rv_event_parse() allocate its JSON tree from a per-thread arena
 * (about twice as fast on small events): installs cJSON hooks that send
 * every other allocation to malloc. Call once from main() before any
 * thread uses cJSON; optional (without it rv_event_parse uses malloc).
 * Each thread that parses keeps 64 KiB until it exits. Errors: RV_ENOMEM. */
int rv_event_parse_arena_init(void);

/* Whether a cJSON allocation of the calling thread failed since its last
 * call (the flag is cleared). cJSON returns NULL alike for bad JSON and
 * for memory it could not get; this tells the two apart. Needs the hooks
 * of rv_event_parse_arena_init(): without them it is always false. */
bool rv_json_alloc_failed(void);

/* Checks an event built by code (feed parsers): same rules as
 * rv_event_from_json for the fields already set. Errors: RV_EINVAL. */
int rv_event_validate(const struct rv_event *ev, struct rv_errbuf *err);

/* JSON object of EV in the event model (plus "source"); attrs included
 * only when WITH_ATTRS (attrs are for analysts and above). Caller owns
 * the result (cJSON_Delete). NULL on ENOMEM. */
cJSON *rv_event_to_json(const struct rv_event *ev, bool with_attrs);

/* Binary form for the store. rv_event_encoded_size() is exact.
 * rv_event_encode() writes into BUF (CAP bytes) and returns the length
 * or RV_ETOOBIG. rv_event_decode() fills EV (owned strings allocated);
 * Errors: RV_ECORRUPT (EV released), RV_ENOMEM. */
size_t rv_event_encoded_size(const struct rv_event *ev);
int rv_event_encode(const struct rv_event *ev, void *buf, size_t cap);
int rv_event_decode(const void *buf, size_t len, struct rv_event *ev);

/* A log record decoded without copying: the fixed fields by value, the
 * strings as pointers into the encoded buffer with their lengths (not
 * NUL-terminated). Borrowed: valid only as long as that buffer is (for a
 * store reader, during the callback). Absent title, url, attrs: NULL, 0.
 * source, id and admin1 are never NULL (admin1_len 0: national). */
struct rv_event_view {
    uint8_t kind;
    uint8_t violation;
    uint8_t severity;
    char country[3]; /* NUL-terminated copy */
    bool has_value;
    bool has_geo;
    int64_t time_ms;
    uint32_t count;
    double confidence;
    double value;
    double lat, lon;
    const char *source;
    size_t source_len;
    const char *id;
    size_t id_len;
    const char *admin1;
    size_t admin1_len;
    const char *title;
    size_t title_len;
    const char *url;
    size_t url_len;
    const char *attrs;
    size_t attrs_len;
};

/* Same checks as rv_event_decode(), nothing allocated: fills V with
 * pointers into BUF (LEN bytes), which must outlive the use of V.
 * Errors: RV_ECORRUPT (V unspecified). */
int rv_event_decode_view(const void *buf, size_t len, struct rv_event_view *v);

/* A view of EV (its strings borrowed: V is valid while EV is unchanged),
 * for code that takes views (the aggregator). */
void rv_event_view_of(const struct rv_event *ev, struct rv_event_view *v);

/* Bytes rv_event_view_copy() needs for SRC's strings (each with a NUL). */
size_t rv_event_view_bytes(const struct rv_event_view *src);
/* DST = SRC with its strings copied into BUF (rv_event_view_bytes(SRC)
 * bytes), so that DST outlives what SRC pointed into; returns the bytes
 * used. A NULL title, url or attrs stays NULL. */
size_t rv_event_view_copy(struct rv_event_view *dst, const struct rv_event_view *src, char *buf);

/* Name of kind K ("probe"), or NULL. rv_kind_from_name: -1 if unknown. */
const char *rv_kind_name(int k);
int rv_kind_from_name(const char *name);

/* UTF-8 validity (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Returns true if valid; else *bad_off (may be NULL) gets the offset of
 * the first bad byte. */
bool rv_utf8_valid(const char *s, size_t len, size_t *bad_off);

#endif

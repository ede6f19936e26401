/* store_util.h: helpers shared by the store tests: temp dirs, random
 * events and a reference rollup computed the simple way. */
#ifndef RV_TEST_STORE_UTIL_H
#define RV_TEST_STORE_UTIL_H

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rv/event.h"
#include "rv/store.h"
#include "rv/taxonomy.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(char *buf, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, cap, "%s/rvtest.XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return buf;
}

static const char *ref_countries[] = {"SY", "IR", "MM", "SD", "UA", "ET", "VE", "BY"};
static const char *ref_sources[] = {"acme", "gdelt", "ooni", "partner-b", "ioda"};

/* Event number K with a deterministic pseudo-random shape. Ids repeat
 * every ID_MOD so that dedup is exercised. */
__attribute__((unused)) static void make_event(struct rv_event *ev, uint64_t k, uint64_t id_mod, int64_t t0)
{
    uint64_t h = (k % id_mod) * 0x9E3779B97F4A7C15ULL;
    rv_event_init(ev);
    snprintf(ev->source, sizeof(ev->source), "%s", ref_sources[(h >> 7) % 5]);
    snprintf(ev->id, sizeof(ev->id), "ev-%llu", (unsigned long long)(k % id_mod));
    memcpy(ev->country, ref_countries[(h >> 13) % 8], 3);
    ev->violation = (uint8_t)((h >> 19) % RV_VIOLATION_COUNT);
    ev->time_ms = t0 + (int64_t)((h >> 23) % (3 * 86400)) * 1000;
    ev->count = (uint32_t)(1 + (h >> 41) % 7);
    ev->severity = (uint8_t)(1 + (h >> 47) % 5);
    ev->confidence = (double)((h >> 51) % 11) / 10.0;
    if ((h >> 3) % 4 == 0) {
        ev->kind = RV_KIND_PROBE;
        ev->has_value = true;
        ev->value = (double)((h >> 29) % 1000) / 10.0;
    } else {
        ev->kind = (h >> 3) % 4 == 1 ? RV_KIND_NEWS : RV_KIND_INCIDENT;
    }
}

#endif

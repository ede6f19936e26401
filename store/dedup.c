/*
 * dedup: see dedup.h.
 */
#include "dedup.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rv/err.h"

static uint64_t key_hash64(const unsigned char *k, size_t len)
{
    /* eight bytes a step, multiply and fold (keys are ~20-60 bytes) */
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ len, w;
    for (; len >= 8; k += 8, len -= 8) {
        memcpy(&w, k, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, k, len);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h;
}

static uint32_t key_hash(const unsigned char *k, size_t len)
{
    return rv_dedup_fold(key_hash64(k, len));
}

uint64_t rv_dedup_hash64(const void *key, size_t len)
{
    return key_hash64(key, len);
}

uint32_t rv_dedup_hash(const void *key, size_t len)
{
    return key_hash(key, len);
}

static size_t rec_len(const unsigned char *r)
{
    uint16_t l;
    memcpy(&l, r, 2);
    return l;
}

const unsigned char *rv_dedup_rec(const struct rv_dedup *d, uint32_t off, size_t *len,
                                  uint64_t *seq)
{
    const unsigned char *r = d->arena + off;
    *len = rec_len(r);
    memcpy(seq, r + 2, 8);
    return r + RV_DEDUP_REC_HDR;
}

int rv_dedup_find(const struct rv_dedup *d, const void *key, size_t len, uint32_t h,
                  uint64_t *seq)
{
    if (!d->n)
        return 0;
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        const struct rv_dedup_slot *s = &d->tab[i];
        if (!s->off1)
            return 0;
        if (s->hash == h) {
            const unsigned char *r = d->arena + s->off1 - 1;
            if (rec_len(r) == len && memcmp(r + RV_DEDUP_REC_HDR, key, len) == 0) {
                memcpy(seq, r + 2, 8);
                return 1;
            }
        }
    }
}

static void slot_put(struct rv_dedup_slot *tab, size_t mask, uint32_t off1, uint32_t h)
{
    size_t i = h & mask;
    while (tab[i].off1)
        i = (i + 1) & mask;
    tab[i].off1 = off1;
    tab[i].hash = h;
}

/* Puts every record of the arena into T (SIZE slots, zeroed). */
static void fill(struct rv_dedup *d, struct rv_dedup_slot *t, size_t size)
{
    size_t n = 0;
    for (size_t off = 0; off < d->len;) {
        const unsigned char *r = d->arena + off;
        size_t l = rec_len(r);
        slot_put(t, size - 1, (uint32_t)off + 1, key_hash(r + RV_DEDUP_REC_HDR, l));
        off += RV_DEDUP_REC_HDR + l;
        n++;
    }
    d->n = n;
}

int rv_dedup_reserve(struct rv_dedup *d, size_t keys)
{
    size_t size = 16384;
    struct rv_dedup_slot *t;

    while ((keys + 1) * 2 > size)
        size *= 2;
    if (d->mask + 1 >= size && d->tab)
        return RV_OK;
    if ((t = calloc(size, sizeof(*t))) == NULL)
        return RV_ENOMEM;
    fill(d, t, size);
    free(d->tab);
    d->tab = t;
    d->mask = size - 1;
    return RV_OK;
}

int rv_dedup_add(struct rv_dedup *d, const void *key, size_t len, uint32_t h, uint64_t seq)
{
    size_t need = RV_DEDUP_REC_HDR + len;
    uint16_t l16 = (uint16_t)len;

    if (len > UINT16_MAX || d->len + need > UINT32_MAX - 1)
        return RV_ENOMEM; /* keys are < 400 bytes; 4 GiB of them is not a set */
    if (d->len + need > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1 << 20;
        while (cap < d->len + need)
            cap *= 2;
        unsigned char *a = realloc(d->arena, cap);
        if (!a)
            return RV_ENOMEM;
        d->arena = a;
        d->cap = cap;
    }
    if ((d->n + 1) * 2 > (d->mask ? d->mask + 1 : 0)) {
        /* grow first, with the arena as it is: the new key is not in it yet */
        size_t size = d->mask ? (d->mask + 1) * 2 : 16384;
        struct rv_dedup_slot *t = calloc(size, sizeof(*t));
        if (!t)
            return RV_ENOMEM;
        fill(d, t, size);
        free(d->tab);
        d->tab = t;
        d->mask = size - 1;
    }
    unsigned char *r = d->arena + d->len;
    memcpy(r, &l16, 2);
    memcpy(r + 2, &seq, 8);
    memcpy(r + RV_DEDUP_REC_HDR, key, len);
    slot_put(d->tab, d->mask, (uint32_t)d->len + 1, h);
    d->len += need;
    d->n++;
    return RV_OK;
}

/* Removes the slot of the record at arena offset OFF1 - 1 (hash H) from
 * the table, shifting back the entries after it that probed past it, so
 * that every other key is still found from its home slot. */
static void slot_del(struct rv_dedup *d, uint32_t off1, uint32_t h)
{
    size_t mask = d->mask, i = h & mask, j;

    while (d->tab[i].off1 != off1) {
        if (!d->tab[i].off1)
            return; /* not there (cannot happen: every record is in the table) */
        i = (i + 1) & mask;
    }
    for (j = i;;) {
        j = (j + 1) & mask;
        if (!d->tab[j].off1)
            break;
        size_t k = d->tab[j].hash & mask; /* the home slot of the entry at j */
        /* it may fill the hole at i unless its home lies cyclically in (i, j] */
        bool home_between = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!home_between) {
            d->tab[i] = d->tab[j];
            i = j;
        }
    }
    d->tab[i].off1 = 0;
    d->tab[i].hash = 0;
}

void rv_dedup_truncate(struct rv_dedup *d, size_t mark)
{
    if (mark >= d->len)
        return;
    /* the keys added since MARK, one by one (an aborted commit adds a few
     * hundred; refilling the table would rehash every key of the set) */
    if (d->tab) {
        for (size_t off = mark; off < d->len;) {
            const unsigned char *r = d->arena + off;
            size_t l = rec_len(r);
            slot_del(d, (uint32_t)off + 1, key_hash(r + RV_DEDUP_REC_HDR, l));
            off += RV_DEDUP_REC_HDR + l;
            d->n--;
        }
    }
    d->len = mark;
}

void rv_dedup_clear(struct rv_dedup *d)
{
    d->len = 0;
    d->n = 0;
    if (d->tab)
        memset(d->tab, 0, (d->mask + 1) * sizeof(*d->tab));
}

void rv_dedup_free(struct rv_dedup *d)
{
    free(d->arena);
    free(d->tab);
    memset(d, 0, sizeof(*d));
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
    const unsigned char *arena = arg;
    const unsigned char *ra = arena + *(const uint32_t *)a, *rb = arena + *(const uint32_t *)b;
    size_t la = rec_len(ra), lb = rec_len(rb);
    int c = memcmp(ra + RV_DEDUP_REC_HDR, rb + RV_DEDUP_REC_HDR, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

void rv_dedup_sorted(const struct rv_dedup *d, uint32_t *offs)
{
    size_t i = 0;
    for (size_t off = 0; off < d->len && i < d->n; i++) {
        offs[i] = (uint32_t)off;
        off += RV_DEDUP_REC_HDR + rec_len(d->arena + off);
    }
    qsort_r(offs, i, sizeof(*offs), rec_cmp, d->arena);
}

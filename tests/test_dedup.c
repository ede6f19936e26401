/*
 * test_dedup: the store's in-memory dedup set (store/dedup.h), above all
 * rv_dedup_truncate, which takes back the keys of an aborted commit one by
 * one out of an open-addressing table: every key kept must still be found
 * with its seq, none of the dropped ones, also when their probe runs wrap
 * around the end of the table and interleave with the kept keys'.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../store/dedup.h"
#include "check.h"

static size_t key_of(uint64_t k, char *buf)
{
    /* "source NUL id", as the store builds them */
    int n = snprintf(buf, 64, "p%u", (unsigned)(k % 3));
    n += 1 + snprintf(buf + n + 1, 64, "ev-%llx", (unsigned long long)(k * 0x9E3779B97F4A7C15ULL));
    return (size_t)n;
}

static int add(struct rv_dedup *d, uint64_t k)
{
    char kb[80];
    size_t l = key_of(k, kb);
    return rv_dedup_add(d, kb, l, rv_dedup_hash(kb, l), k + 1000);
}

static int find(const struct rv_dedup *d, uint64_t k, uint64_t *seq)
{
    char kb[80];
    size_t l = key_of(k, kb);
    return rv_dedup_find(d, kb, l, rv_dedup_hash(kb, l), seq);
}

/* Every key below KEPT found with its seq; KEPT..UPTO absent; the table
 * holds exactly the keys. */
static int check_set(const struct rv_dedup *d, uint64_t kept, uint64_t upto)
{
    int bad = 0;
    uint64_t s;
    for (uint64_t k = 0; k < kept; k++)
        if (!find(d, k, &s) || s != k + 1000)
            bad++;
    for (uint64_t k = kept; k < upto; k++)
        if (find(d, k, &s))
            bad++;
    if (d->n != kept)
        bad++;
    /* no slot left behind: as many occupied as there are keys */
    size_t used = 0;
    for (size_t i = 0; i <= d->mask; i++)
        used += d->tab[i].off1 != 0;
    if (used != d->n)
        bad++;
    return bad;
}

int main(void)
{
    struct rv_dedup d = {0};
    uint64_t next = 0;

    /* a table kept nearly half full (16384 slots, up to ~8000 keys), so
     * probe runs are long and some wrap around its end */
    CHECK(rv_dedup_reserve(&d, 4000) == RV_OK);
    size_t slots = d.mask + 1;
    for (; next < 6000; next++)
        CHECK(add(&d, next) == RV_OK);
    for (int round = 0; round < 200; round++) {
        size_t mark = d.len;
        uint64_t base = next, extra = 1 + (uint64_t)(round * 37 % 1500);
        for (uint64_t i = 0; i < extra; i++)
            CHECK(add(&d, next++) == RV_OK);
        if (round % 3 == 2 && d.n < 6500)
            continue; /* kept: this "commit" succeeded (at most ~8000 keys: no rehash) */
        rv_dedup_truncate(&d, mark);
        next = base; /* the same keys come again in the retried commit */
        CHECK(check_set(&d, next, next + extra) == 0);
    }
    CHECK(d.mask + 1 == slots); /* no rehash happened: truncate did the work */
    CHECK(check_set(&d, next, next + 2000) == 0);
    /* everything since an empty set */
    rv_dedup_truncate(&d, 0);
    CHECK(d.n == 0 && d.len == 0);
    CHECK(check_set(&d, 0, next) == 0);
    for (size_t i = 0; i <= d.mask; i++)
        CHECK(d.tab[i].off1 == 0);
    printf("dedup: %llu keys, %zu slots, truncations checked\n", (unsigned long long)next, slots);
    rv_dedup_free(&d);
    CHECK_DONE();
}

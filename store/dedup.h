/*
 * dedup: the store's in-memory set of (source, id) -> seq for the events
 * committed since the last dedup checkpoint (internal to store/).
 *
 * Why: the `events` database is keyed by (source, id), which partners choose
 * freely (random ids): writing it in every event commit dirties one leaf page
 * per event, scattered over the whole tree, and those pages dominated the
 * bytes each durable commit wrote (a 200-byte event cost a 4 KiB page). The
 * log is the durable record of every accepted event, so the dedup keys can be
 * kept here and written to `events` in key order at a checkpoint (each leaf
 * page once), with the seq they cover stored in `meta` ("dedup_seq") in the
 * same transaction. After a crash the keys past the checkpoint are read back
 * from `log`, as the rollups are.
 *
 * Layout: keys live in one growing arena, each record
 *   u16 key length | u64 seq | key bytes (source NUL id)
 * and an open-addressing table of (arena offset + 1, hash) pairs, at most
 * half full. Records are only appended, so "undo everything added since a
 * mark" (an aborted transaction) is a truncation and a table rebuild.
 *
 * Threads: the writer thread only. Errors: RV_ENOMEM.
 */
#ifndef RV_STORE_DEDUP_H
#define RV_STORE_DEDUP_H

#include <stddef.h>
#include <stdint.h>

struct rv_dedup_slot {
    uint32_t off1; /* arena offset + 1; 0 = empty */
    uint32_t hash;
};

struct rv_dedup {
    unsigned char *arena;
    size_t len, cap;            /* arena bytes used / allocated */
    struct rv_dedup_slot *tab;
    size_t mask;                /* table size - 1 (a power of two), or 0 before the first add */
    size_t n;                   /* keys in the set */
};

#define RV_DEDUP_REC_HDR 10 /* u16 length + u64 seq */

/* The hash of KEY (LEN bytes) that _find and _add take, computed once:
 * rv_dedup_fold(rv_dedup_hash64(KEY, LEN)). The 64 bits also feed the
 * filter of `events` (bloom.h), so a key is hashed once for both. */
uint32_t rv_dedup_hash(const void *key, size_t len);
uint64_t rv_dedup_hash64(const void *key, size_t len);
static inline uint32_t rv_dedup_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

/* Finds KEY (LEN bytes, hash H): 1 and *seq set when present, else 0. */
int rv_dedup_find(const struct rv_dedup *d, const void *key, size_t len, uint32_t h,
                  uint64_t *seq);

/* Starts loading the table slot where a lookup of hash H begins, so that a
 * loop over many keys can overlap their cache misses (a hint: no effect on
 * the result). Macros, not inline functions: GCC 12 at -O2 finds a
 * function whose only statement is a prefetch free of side effects and
 * drops the calls to it (seen in the assembly of store.c). */
#define rv_dedup_prefetch(d, h)                                                                    \
    do {                                                                                           \
        if ((d)->n)                                                                                \
            __builtin_prefetch(&(d)->tab[(h) & (d)->mask]);                                        \
    } while (0)

/* Starts loading the record at arena offset OFF (from rv_dedup_sorted). */
#define rv_dedup_prefetch_rec(d, off) __builtin_prefetch((d)->arena + (off))

/* Adds KEY -> SEQ (hash H; the caller checked it is absent). RV_OK or
 * RV_ENOMEM (then nothing changed). */
int rv_dedup_add(struct rv_dedup *d, const void *key, size_t len, uint32_t h, uint64_t seq);

/* Sizes the table for KEYS keys now, so that adding them never rehashes.
 * RV_OK or RV_ENOMEM (then nothing changed). */
int rv_dedup_reserve(struct rv_dedup *d, size_t keys);

/* Drops every key added after the arena had MARK bytes (d->len then).
 * Allocates nothing, cannot fail. */
void rv_dedup_truncate(struct rv_dedup *d, size_t mark);

/* Empties the set (keeps the memory for reuse). */
void rv_dedup_clear(struct rv_dedup *d);

/* Frees everything. */
void rv_dedup_free(struct rv_dedup *d);

/* Record access for the checkpoint: fills OFFS (d->n entries, caller
 * allocated) with the arena offsets of the records sorted in LMDB's default
 * key order (memcmp, then the shorter first). */
void rv_dedup_sorted(const struct rv_dedup *d, uint32_t *offs);

/* The key, its length and seq of the record at arena offset OFF. */
const unsigned char *rv_dedup_rec(const struct rv_dedup *d, uint32_t off, size_t *len,
                                  uint64_t *seq);

#endif

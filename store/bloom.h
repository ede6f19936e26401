/*
 * bloom: a blocked Bloom filter of the dedup keys written to `events`
 * (internal to store/).
 *
 * Why: every new event is looked up in `events` (dedup against the keys of
 * earlier checkpoints). Partners choose their ids freely, so nearly every
 * lookup misses, and each miss is a descent of a B-tree of millions of keys
 * with a cache miss a level: it was a third of the writer thread's CPU. A
 * filter that says "surely not there" for ~99% of new keys spares the
 * descent; its "maybe" sends the key to `events` as before, so a false
 * positive costs one lookup and there are no false negatives, which is
 * what makes it safe: a key written to `events` is always added first.
 *
 * Layout: 512-bit blocks (one cache line); a key's 64-bit hash picks one
 * block and BLOOM_K bits inside it, so a query costs one cache miss. Sized
 * at 12 bits a key for the capacity it was made for (0.4% false
 * positives there, measured; 6% at twice that, so it is rebuilt first).
 *
 * Threads: one filter is read and written by the writer thread; while the
 * store rebuilds a bigger one on a thread of its own (see store.c), that one
 * is written by both with rv_bloom_add_atomic and read by nobody until the
 * builder is joined.
 */
#ifndef RV_STORE_BLOOM_H
#define RV_STORE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rv_bloom {
    uint64_t *w;    /* nblocks * 8 words, 64-byte aligned; NULL: no filter (every key "maybe") */
    size_t nblocks; /* blocks of 64 bytes */
    size_t cap;     /* keys it was sized for */
    size_t n;       /* keys added (an upper bound: re-adds count twice) */
};

/* Makes an empty filter for CAP keys (at least 1024). RV_OK or RV_ENOMEM
 * (then B is left as it was). */
int rv_bloom_init(struct rv_bloom *b, size_t cap);

/* The capacity of a filter of at most BYTES (rv_bloom_init of it takes no
 * more). */
size_t rv_bloom_cap_for_bytes(size_t bytes);

/* Frees the bits; B then answers "maybe" to everything. */
void rv_bloom_free(struct rv_bloom *b);

/* The 64-bit hash of KEY (LEN bytes) that _add and _maybe take:
 * rv_bloom_mix(rv_dedup_hash64(KEY, LEN)). */
uint64_t rv_bloom_hash(const void *key, size_t len);
uint64_t rv_bloom_mix(uint64_t dedup_hash64);

/* Adds hash H (writer thread only, no other thread touching B). */
void rv_bloom_add(struct rv_bloom *b, uint64_t h);

/* Adds hash H with atomic ORs, for a filter another thread fills too. */
void rv_bloom_add_atomic(struct rv_bloom *b, uint64_t h);

/* Prefetches the block of hash H (for a run of adds). */
void rv_bloom_prefetch(const struct rv_bloom *b, uint64_t h);

/* False when no key of hash H was added: then the key is surely absent. */
bool rv_bloom_maybe(const struct rv_bloom *b, uint64_t h);

#endif

/*
 * bloom: see bloom.h.
 */
#include "bloom.h"
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "rv/err.h"

#define BLOOM_BITS_PER_KEY 12
#define BLOOM_K 6 /* bits a key, 9 bits of the mixed hash each */

#define KEYS_PER_BLOCK (512 / BLOOM_BITS_PER_KEY)

size_t rv_bloom_cap_for_bytes(size_t bytes)
{
    return bytes / 64 * KEYS_PER_BLOCK;
}

int rv_bloom_init(struct rv_bloom *b, size_t cap)
{
    size_t nb;
    uint64_t *w;

    if (cap < 1024)
        cap = 1024;
    /* any count of blocks: block_of() maps the hash with a multiply-shift */
    nb = (cap + KEYS_PER_BLOCK - 1) / KEYS_PER_BLOCK;
    if (nb > UINT32_MAX || nb > SIZE_MAX / 64)
        return RV_ENOMEM;
    w = aligned_alloc(64, nb * 64);
    if (!w)
        return RV_ENOMEM;
    memset(w, 0, nb * 64);
    free(b->w);
    b->w = w;
    b->nblocks = nb;
    b->cap = nb * KEYS_PER_BLOCK;
    b->n = 0;
    return RV_OK;
}

void rv_bloom_free(struct rv_bloom *b)
{
    free(b->w);
    memset(b, 0, sizeof(*b));
}

uint64_t rv_bloom_hash(const void *key, size_t len)
{
    return rv_bloom_mix(rv_dedup_hash64(key, len));
}

uint64_t rv_bloom_mix(uint64_t h)
{
    /* splitmix64's finaliser over the dedup hash: every output bit depends
     * on every input bit, and the block and bits are not those the dedup
     * table indexes by */
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* The block of H, from its high 32 bits (multiply-shift); the BLOOM_K bit
 * positions (0..511) in it come from pos_bits(H). */
static uint64_t *block_of(const struct rv_bloom *b, uint64_t h)
{
    return b->w + (size_t)(((h >> 32) * (uint64_t)b->nblocks) >> 32) * 8;
}

/* 54 bits for the positions: an odd multiple of H (a bijection), whose top
 * bits depend on all of H, including the bits that chose the block */
static uint64_t pos_bits(uint64_t h)
{
    return (h * 0x9E3779B97F4A7C15ULL) >> 10;
}

void rv_bloom_add(struct rv_bloom *b, uint64_t h)
{
    uint64_t *blk, g = pos_bits(h);

    if (!b->w)
        return;
    blk = block_of(b, h);
    for (int i = 0; i < BLOOM_K; i++, g >>= 9)
        blk[(g >> 6) & 7] |= 1ULL << (g & 63);
    b->n++;
}

void rv_bloom_add_atomic(struct rv_bloom *b, uint64_t h)
{
    uint64_t *blk, g = pos_bits(h);

    if (!b->w)
        return;
    blk = block_of(b, h);
    for (int i = 0; i < BLOOM_K; i++, g >>= 9)
        __atomic_fetch_or(&blk[(g >> 6) & 7], 1ULL << (g & 63), __ATOMIC_RELAXED);
    __atomic_fetch_add(&b->n, 1, __ATOMIC_RELAXED);
}

void rv_bloom_prefetch(const struct rv_bloom *b, uint64_t h)
{
    if (b->w)
        __builtin_prefetch(block_of(b, h), 1);
}

bool rv_bloom_maybe(const struct rv_bloom *b, uint64_t h)
{
    const uint64_t *blk;
    uint64_t g = pos_bits(h);

    if (!b->w)
        return true;
    blk = block_of(b, h);
    for (int i = 0; i < BLOOM_K; i++, g >>= 9)
        if (!(blk[(g >> 6) & 7] & (1ULL << (g & 63))))
            return false;
    return true;
}

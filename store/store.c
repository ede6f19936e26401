/*
 * store: the LMDB environment and the only code that calls mdb_*.
 *
 * Why rollups live in memory between checkpoints: a durable LMDB commit
 * syncs every page it dirtied, and rollup bins of thousands of series are
 * scattered over the `series` tree. Updating them in every commit would
 * dirty as many pages as the events themselves. Instead the writer keeps
 * the bins touched since the last checkpoint in a hash table, writes them
 * once a checkpoint together with the log seq they cover, and rebuilds
 * them from `log` after a crash. Correctness: the in-memory bins are
 * exactly "checkpointed value + deltas of log records past rollup_seq".
 * The dedup keys follow the same rule with dedup_seq (store/dedup.h).
 * A Bloom filter of the keys in `events` (store/bloom.h) spares the B-tree
 * descent of nearly every new key's dedup lookup.
 */
#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#include "bloom.h"
#include "dedup.h"

#define MB (1024UL * 1024UL)
#define SERIES_KEY_LEN 12
#define BIN_VAL_MAX (26 + 2 * RV_STORE_MAX_SOURCES_PER_BIN + 32)
#define LOG_HDR 8 /* ingest_ms before the encoded event */
#define BIN_CACHE_MAX 262144 /* clean bins kept in memory after a checkpoint (~40 MiB) */
#define DD_SLICE_MIN 4096      /* frozen dedup keys written with an event commit, at least */
#define DD_SLICE_IDLE 8192     /* ... by a checkpoint of its own (idle, or time-due) */
#define PF_AHEAD 8             /* keys a loop prefetches ahead of the one it works on */

/* do_batch finds the hour's and the day's bin from the minute's (mbin.up) */
_Static_assert(RV_RES_1M == 0 && RV_RES_1H == 1 && RV_RES_1D == 2 && RV_RES_COUNT == 3,
               "resolutions from the finest");

/* One in-memory bin (writer thread only). */
struct mbin {
    unsigned char key[SERIES_KEY_LEN];
    struct rv_bin b;
    bool dirty;
    struct mbin *next; /* hash chain */
    struct mbin *up;   /* the bin of the next coarser resolution that holds this one, once
                          looked up (bins are freed all together, never one by one) */
};

struct src_ent {
    char name[RV_SOURCE_MAX + 1];
    uint16_t id;
    struct src_ent *next;
};

struct rv_store {
    MDB_env *env;
    int lock_fd; /* DIR/rightsview.lock, held (flock) by the one writing process */
    MDB_dbi db_events, db_log, db_series, db_alerts, db_cursors, db_meta;
    struct rv_store_opts opts;
    char dir[1024];
    pthread_rwlock_t resize; /* readers hold rd over a txn; writer takes wr to resize */
    size_t map_size;         /* current map size (writer) */

    _Atomic uint64_t last_seq;       /* last committed log seq */
    _Atomic uint64_t last_alert_seq; /* last committed alert seq */
    uint64_t epoch;

    /* writer-thread state */
    struct mbin **bins; /* hash table of bins touched since the checkpoint */
    size_t nbuckets, nbins, ndirty;
    uint64_t rollup_seq;      /* log seq covered by the checkpoint in `series` */
    struct rv_dedup dd;       /* (source, id) -> seq of the events after ddf_seq (or dedup_seq) */
    struct rv_dedup ddf;      /* frozen: the keys being written to `events` in slices */
    uint32_t *ddf_keys;       /* their arena offsets in key order */
    size_t ddf_next;          /* ddf_keys[0 .. ddf_next) are in `events` (committed) */
    uint64_t ddf_seq;         /* ddf holds the keys of the events in (dedup_seq, ddf_seq] */
    pthread_t sort_thr;       /* sorts ddf_keys off the writer thread (~0.4 s for 512k keys) */
    bool sort_running;        /* sort_thr to be joined; ddf_keys not ready before */
    uint64_t dedup_seq;       /* log seq covered by the keys in `events` */
    struct rv_bloom bloom;    /* every key in `events` (and perhaps a few more); no bits: off */
    struct rv_bloom bloom_next; /* a bigger one being filled by bloom_thr and the writer */
    pthread_t bloom_thr;      /* scans `events` into bloom_next */
    bool bloom_running;       /* bloom_thr to be joined */
    int bloom_rc;             /* bloom_thr's result (read after the join) */
    size_t bloom_retry_n;     /* after a failed rebuild: no new one before bloom.n passes this */
    bool manual_ckpt;         /* put_batch leaves checkpoints to the caller */
    uint64_t last_flush_ns;
    struct src_ent *srcs;     /* source name -> id cache */
    uint16_t next_src;        /* next source id to assign */
    uint8_t *enc;             /* encode buffer */
    size_t enc_cap;

    /* stats (any thread) */
    _Atomic uint64_t st_commits, st_accepted, st_dup, st_commit_ns, st_commit_last, st_resizes,
        st_full, st_flushes, st_dd_mem, st_bloom_skips, st_bloom_fp;
};

/* --------------------------------------------------------- helpers */

static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int map_err(int mrc, struct rv_errbuf *err, const char *what);

/* A failed commit writes no meta page, so nothing of it is visible and the
 * file is not corrupt: say what happened and let the writer retry. LMDB
 * reports a short write (disk full, file size limit) as EIO. */
static int commit_err(struct rv_store *st, int mrc, struct rv_errbuf *err)
{
    struct statvfs vs;
    if (mrc != EIO && mrc != ENOSPC && mrc != EFBIG && mrc != EDQUOT)
        return map_err(mrc, err, "commit");
    if (statvfs(st->dir, &vs) == 0 && (uint64_t)vs.f_bavail * vs.f_frsize < (64u << 20))
        return rv_err_set(err, RV_EFULL,
                          "store: commit: disk full (%llu KiB free); nothing was written",
                          (unsigned long long)vs.f_bavail * vs.f_frsize / 1024);
    return rv_err_set(err, RV_EFULL, "store: commit: write failed (%s); nothing was written",
                      mdb_strerror(mrc));
}

static int map_err(int mrc, struct rv_errbuf *err, const char *what)
{
    if (mrc == MDB_MAP_FULL)
        return rv_err_set(err, RV_EFULL, "store: %s: map full at its maximum size", what);
    if (mrc == ENOSPC || mrc == EFBIG || mrc == EDQUOT)
        return rv_err_set(err, RV_EFULL, "store: %s: disk full (%s)", what, mdb_strerror(mrc));
    if (mrc == MDB_CORRUPTED || mrc == MDB_PAGE_NOTFOUND || mrc == MDB_INVALID)
        return rv_err_set(err, RV_ECORRUPT, "store: %s: %s", what, mdb_strerror(mrc));
    return rv_err_set(err, RV_EIO, "store: %s: %s", what, mdb_strerror(mrc));
}

int64_t rv_bin_start(int64_t t, int res)
{
    int64_t w = res == RV_RES_1M ? 60000 : res == RV_RES_1H ? 3600000 : 86400000;
    int64_t q = t / w;
    if (t < 0 && q * w != t)
        q--;
    return q * w;
}

const char *rv_res_name(int res)
{
    static const char *n[] = {"1m", "1h", "1d"};
    return (res >= 0 && res < RV_RES_COUNT) ? n[res] : NULL;
}

int rv_res_from_name(const char *s)
{
    for (int i = 0; s && i < RV_RES_COUNT; i++)
        if (strcmp(s, rv_res_name(i)) == 0)
            return i;
    return -1;
}

static void series_key(unsigned char *k, const char *country, int v, int res, int64_t start)
{
    k[0] = (unsigned char)country[0];
    k[1] = (unsigned char)country[1];
    k[2] = (unsigned char)v;
    k[3] = (unsigned char)res;
    be64(k + 4, (uint64_t)start);
}

static void bin_from_key(struct rv_bin *b, const unsigned char *k)
{
    b->country[0] = (char)k[0];
    b->country[1] = (char)k[1];
    b->country[2] = '\0';
    b->violation = k[2];
    b->res = k[3];
    b->start_ms = (int64_t)get_be64(k + 4);
}

/* Bin value: variable length so that a typical bin (one or two sources,
 * no probe values) costs 28 bytes instead of the worst case:
 *   events u64, count u64, weight f64, n_sources u16,
 *   n_sources x u16 source ids,
 *   if probe_n: probe_n u64, min f64, max f64, sum f64. */
#define BIN_FIXED 26
#define BIN_PROBE 32

static size_t bin_encode(const struct rv_bin *b, unsigned char *v)
{
    size_t off = BIN_FIXED;
    memcpy(v, &b->events, 8);
    memcpy(v + 8, &b->count, 8);
    memcpy(v + 16, &b->weight, 8);
    memcpy(v + 24, &b->n_sources, 2);
    memcpy(v + off, b->sources, 2u * b->n_sources);
    off += 2u * b->n_sources;
    if (b->probe_n) {
        memcpy(v + off, &b->probe_n, 8);
        memcpy(v + off + 8, &b->probe_min, 8);
        memcpy(v + off + 16, &b->probe_max, 8);
        memcpy(v + off + 24, &b->probe_sum, 8);
        off += BIN_PROBE;
    }
    return off;
}

static int bin_decode(struct rv_bin *b, const unsigned char *k, const MDB_val *v)
{
    const unsigned char *p = v->mv_data;
    size_t off = BIN_FIXED;
    if (v->mv_size < BIN_FIXED)
        return RV_ECORRUPT;
    memset(b, 0, sizeof(*b));
    bin_from_key(b, k);
    memcpy(&b->events, p, 8);
    memcpy(&b->count, p + 8, 8);
    memcpy(&b->weight, p + 16, 8);
    memcpy(&b->n_sources, p + 24, 2);
    if (b->n_sources > RV_STORE_MAX_SOURCES_PER_BIN || v->mv_size < off + 2u * b->n_sources)
        return RV_ECORRUPT;
    memcpy(b->sources, p + off, 2u * b->n_sources);
    off += 2u * b->n_sources;
    if (v->mv_size == off + BIN_PROBE) {
        memcpy(&b->probe_n, p + off, 8);
        memcpy(&b->probe_min, p + off + 8, 8);
        memcpy(&b->probe_max, p + off + 16, 8);
        memcpy(&b->probe_sum, p + off + 24, 8);
    } else if (v->mv_size != off) {
        return RV_ECORRUPT;
    }
    return RV_OK;
}

/* Read txn with the resize lock held; handles another process growing the map. */
static int rd_begin(struct rv_store *st, MDB_txn **txn, struct rv_errbuf *err)
{
    int mrc;
    pthread_rwlock_rdlock(&st->resize);
    mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    if (mrc == MDB_MAP_RESIZED) {
        pthread_rwlock_unlock(&st->resize);
        pthread_rwlock_wrlock(&st->resize);
        mdb_env_set_mapsize(st->env, 0);
        pthread_rwlock_unlock(&st->resize);
        pthread_rwlock_rdlock(&st->resize);
        mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    }
    if (mrc) {
        pthread_rwlock_unlock(&st->resize);
        return map_err(mrc, err, "read txn");
    }
    return RV_OK;
}

static void rd_end(struct rv_store *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->resize);
}

/* Write txn: the map may have been grown by another process. */
static int wr_begin(struct rv_store *st, MDB_txn **txn, struct rv_errbuf *err)
{
    int mrc = mdb_txn_begin(st->env, NULL, 0, txn);
    if (mrc == MDB_MAP_RESIZED) {
        pthread_rwlock_wrlock(&st->resize);
        mdb_env_set_mapsize(st->env, 0);
        pthread_rwlock_unlock(&st->resize);
        mrc = mdb_txn_begin(st->env, NULL, 0, txn);
    }
    return mrc ? map_err(mrc, err, "write txn") : RV_OK;
}

/* Doubles the map. Caller has no txn open. */
static int grow_map(struct rv_store *st, struct rv_errbuf *err)
{
    size_t next = st->map_size * 2;
    int mrc;

    if (st->map_size >= st->opts.map_size_max)
        return rv_err_set(err, RV_EFULL, "store: map full at its maximum size %zu MiB",
                          st->opts.map_size_max / MB);
    if (next > st->opts.map_size_max)
        next = st->opts.map_size_max;
    pthread_rwlock_wrlock(&st->resize);
    mrc = mdb_env_set_mapsize(st->env, next);
    pthread_rwlock_unlock(&st->resize);
    if (mrc)
        return map_err(mrc, err, "grow map");
    rv_log_info("store", "map grown from_mib=%zu to_mib=%zu", st->map_size / MB, next / MB);
    st->map_size = next;
    atomic_fetch_add(&st->st_resizes, 1);
    return RV_OK;
}

/* ------------------------------------------------- in-memory bins */

static uint64_t hash_key(const unsigned char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < SERIES_KEY_LEN; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h;
}

static void bins_clear(struct rv_store *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (struct mbin *b = st->bins[i], *n; b; b = n) {
            n = b->next;
            free(b);
        }
        st->bins[i] = NULL;
    }
    st->nbins = st->ndirty = 0;
}

static int bins_grow(struct rv_store *st)
{
    size_t nb = st->nbuckets ? st->nbuckets * 2 : 4096;
    struct mbin **t = calloc(nb, sizeof(*t));
    if (!t)
        return RV_ENOMEM;
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (struct mbin *b = st->bins[i], *n; b; b = n) {
            n = b->next;
            size_t h = hash_key(b->key) & (nb - 1);
            b->next = t[h];
            t[h] = b;
        }
    }
    free(st->bins);
    st->bins = t;
    st->nbuckets = nb;
    return RV_OK;
}

/* The bin for KEY: from memory, else loaded from `series` in TXN (or new). */
static struct mbin *bin_get(struct rv_store *st, MDB_txn *txn, const unsigned char *key, int *rc)
{
    size_t h;
    struct mbin *b;
    MDB_val k = {SERIES_KEY_LEN, (void *)key}, v;
    int mrc;

    /* grow only while loading (TXN set): the post-commit adds must not fail */
    if (txn && st->nbins * 4 >= st->nbuckets * 3 && (*rc = bins_grow(st)))
        return NULL;
    h = hash_key(key) & (st->nbuckets - 1);
    for (b = st->bins[h]; b; b = b->next)
        if (memcmp(b->key, key, SERIES_KEY_LEN) == 0)
            return b;
    if (!txn) {
        *rc = RV_EINVAL; /* our bug: a post-commit add of a bin not loaded */
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        *rc = RV_ENOMEM;
        return NULL;
    }
    memcpy(b->key, key, SERIES_KEY_LEN);
    mrc = mdb_get(txn, st->db_series, &k, &v);
    if (mrc == 0) {
        if (bin_decode(&b->b, key, &v)) {
            free(b);
            *rc = RV_ECORRUPT;
            return NULL;
        }
    } else if (mrc == MDB_NOTFOUND) {
        bin_from_key(&b->b, key);
    } else {
        free(b);
        *rc = RV_EIO;
        return NULL;
    }
    b->next = st->bins[h];
    st->bins[h] = b;
    st->nbins++;
    return b;
}

static void bin_add(struct rv_bin *b, const struct rv_event *ev, uint16_t src)
{
    int i;
    b->events++;
    if (ev->kind == RV_KIND_PROBE && ev->has_value) {
        if (b->probe_n == 0 || ev->value < b->probe_min)
            b->probe_min = ev->value;
        if (b->probe_n == 0 || ev->value > b->probe_max)
            b->probe_max = ev->value;
        b->probe_sum += ev->value;
        b->probe_n++;
    } else {
        b->count += ev->count;
        b->weight += (double)ev->count * ev->confidence * ev->severity / 3.0;
    }
    for (i = 0; i < b->n_sources; i++)
        if (b->sources[i] == src)
            return;
    if (b->n_sources < RV_STORE_MAX_SOURCES_PER_BIN)
        b->sources[b->n_sources++] = src;
}

/* Adds EV to its three bins (loading them in TXN as needed). */
static int rollup_add(struct rv_store *st, MDB_txn *txn, const struct rv_event *ev, uint16_t src)
{
    for (int r = 0; r < RV_RES_COUNT; r++) {
        unsigned char key[SERIES_KEY_LEN];
        int rc = RV_OK;
        struct mbin *b;
        series_key(key, ev->country, ev->violation, r, rv_bin_start(ev->time_ms, r));
        if (!(b = bin_get(st, txn, key, &rc)))
            return rc;
        bin_add(&b->b, ev, src);
        if (!b->dirty) {
            b->dirty = true;
            st->ndirty++;
        }
    }
    return RV_OK;
}

/* ------------------------------------------------------- sources */

static struct src_ent *src_find(struct rv_store *st, const char *name)
{
    for (struct src_ent *s = st->srcs; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Id of NAME, assigning and writing a new one in TXN if needed. New
 * entries are cached at once; a failed txn clears the cache (see
 * src_reset) so nothing uncommitted survives. */
static int src_id(struct rv_store *st, MDB_txn *txn, const char *name, uint16_t *id,
                  bool *added)
{
    struct src_ent *s = src_find(st, name);
    char mk[8 + RV_SOURCE_MAX];
    MDB_val k, v;
    int mrc;

    if (s) {
        *id = s->id;
        return RV_OK;
    }
    snprintf(mk, sizeof(mk), "src:%s", name);
    k.mv_size = strlen(mk);
    k.mv_data = mk;
    mrc = mdb_get(txn, st->db_meta, &k, &v);
    if (mrc == 0 && v.mv_size == 2) {
        memcpy(id, v.mv_data, 2);
    } else if (mrc == MDB_NOTFOUND) {
        if (st->next_src == UINT16_MAX)
            return RV_ETOOBIG;
        *id = st->next_src++;
        v.mv_size = 2;
        v.mv_data = id;
        if ((mrc = mdb_put(txn, st->db_meta, &k, &v, 0)))
            return mrc;
        *added = true;
    } else {
        return mrc ? mrc : RV_ECORRUPT;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return RV_ENOMEM;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->id = *id;
    s->next = st->srcs;
    st->srcs = s;
    return RV_OK;
}

static void src_reset(struct rv_store *st)
{
    for (struct src_ent *s = st->srcs, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    st->srcs = NULL;
}

/* next_src from meta: the count of src: keys. */
static int src_load_next(struct rv_store *st, MDB_txn *txn)
{
    MDB_cursor *c;
    MDB_val k = {4, "src:"}, v;
    int mrc = mdb_cursor_open(txn, st->db_meta, &c);
    uint16_t max = 0;
    bool any = false;

    if (mrc)
        return mrc;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint16_t id;
        if (k.mv_size < 4 || memcmp(k.mv_data, "src:", 4) != 0)
            break;
        if (v.mv_size == 2) {
            memcpy(&id, v.mv_data, 2);
            if (!any || id > max)
                max = id;
            any = true;
        }
    }
    mdb_cursor_close(c);
    st->next_src = any ? (uint16_t)(max + 1) : 1;
    return 0;
}

/* --------------------------------------------------------- open */

void rv_store_opts_default(struct rv_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->map_size = 256 * MB;
    o->map_size_max = (size_t)1 << 40;
    o->rollup_flush_ms = 1000;
    o->rollup_flush_bins = 65536;
    o->dedup_flush_keys = 524288;
}

static int meta_get_u64(MDB_txn *txn, MDB_dbi db, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int mrc = mdb_get(txn, db, &k, &v);
    if (mrc)
        return mrc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    *out = get_be64(v.mv_data);
    return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi db, const char *name, uint64_t val)
{
    unsigned char b[8];
    MDB_val k = {strlen(name), (void *)name}, v = {8, b};
    be64(b, val);
    return mdb_put(txn, db, &k, &v, 0);
}

static int last_key_u64(MDB_txn *txn, MDB_dbi db, uint64_t *out)
{
    MDB_cursor *c;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, db, &c);
    if (mrc)
        return mrc;
    mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    if (mrc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (mrc)
        return mrc;
    if (k.mv_size != 8)
        return MDB_CORRUPTED;
    *out = get_be64(k.mv_data);
    return 0;
}

static int open_dbs(struct rv_store *st, MDB_txn *txn, unsigned flags)
{
    int mrc;
    if ((mrc = mdb_dbi_open(txn, "events", flags, &st->db_events)) ||
        (mrc = mdb_dbi_open(txn, "log", flags, &st->db_log)) ||
        (mrc = mdb_dbi_open(txn, "series", flags, &st->db_series)) ||
        (mrc = mdb_dbi_open(txn, "alerts", flags, &st->db_alerts)) ||
        (mrc = mdb_dbi_open(txn, "cursors", flags, &st->db_cursors)) ||
        (mrc = mdb_dbi_open(txn, "meta", flags, &st->db_meta)))
        return mrc;
    return 0;
}

static int rebuild_from_log(struct rv_store *st, struct rv_errbuf *err);
static void ddf_wait(struct rv_store *st);
static int flush_ex(struct rv_store *st, bool force_dedup, struct rv_errbuf *err);
static void bloom_open(struct rv_store *st);
static void bloom_maintain(struct rv_store *st, bool wait);

int rv_store_open(const char *dir, const struct rv_store_opts *opts, struct rv_store **out,
                  struct rv_errbuf *err)
{
    struct rv_store *st = calloc(1, sizeof(*st));
    MDB_txn *txn = NULL;
    struct stat sb;
    unsigned envflags = MDB_NOTLS, dbflags = MDB_CREATE;
    uint64_t schema = 0, v;
    int mrc, rc;

    if (!st)
        return rv_err_set(err, RV_ENOMEM, "store: out of memory");
    st->lock_fd = -1;
    pthread_rwlock_init(&st->resize, NULL);
    if (opts)
        st->opts = *opts;
    else
        rv_store_opts_default(&st->opts);
    if (!st->opts.map_size)
        st->opts.map_size = 256 * MB;
    if (!st->opts.map_size_max)
        st->opts.map_size_max = (size_t)1 << 40;
    if (!st->opts.rollup_flush_bins)
        st->opts.rollup_flush_bins = 65536;
    if (!st->opts.dedup_flush_keys)
        st->opts.dedup_flush_keys = 524288;
    if (!st->opts.dedup_filter_max_mib)
        st->opts.dedup_filter_max_mib = 1024;
    snprintf(st->dir, sizeof(st->dir), "%s", dir);

    if (stat(dir, &sb) != 0) {
        if (st->opts.read_only) {
            rc = rv_err_set(err, RV_ENOTFOUND, "store: no store at '%s'", dir);
            goto fail_nenv;
        }
        if (mkdir(dir, 0700) != 0) {
            rc = rv_err_set(err, RV_EIO, "store: cannot create '%s': %s", dir, strerror(errno));
            goto fail_nenv;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        rc = rv_err_set(err, RV_EINVAL, "store: '%s' is not a directory", dir);
        goto fail_nenv;
    }
    if (st->opts.read_only) {
        char p[1100];
        snprintf(p, sizeof(p), "%s/data.mdb", dir);
        if (stat(p, &sb) != 0) {
            rc = rv_err_set(err, RV_ENOTFOUND, "store: no store at '%s'", dir);
            goto fail_nenv;
        }
        envflags |= MDB_RDONLY;
        dbflags = 0;
    }
    if (!st->opts.read_only && !st->opts.meta_only) {
        /* one writing process per data dir: a second daemon would cache its
         * own seqs and both would fail or clash */
        char lp[1100], pid[32] = "";
        ssize_t n;
        snprintf(lp, sizeof(lp), "%s/rightsview.lock", dir);
        st->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lock_fd < 0) {
            rc = rv_err_set(err, RV_EIO, "store: cannot create '%s': %s", lp, strerror(errno));
            goto fail_nenv;
        }
        if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            n = pread(st->lock_fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            rc = rv_err_set(err, RV_EPERM, "store: '%s' is in use by another process (pid %s)",
                            dir, pid[0] ? pid : "unknown");
            goto fail_nenv;
        }
        n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        if (ftruncate(st->lock_fd, 0) != 0 || pwrite(st->lock_fd, pid, (size_t)n, 0) != n) {
            /* the pid is informative only */
        }
    }
    if (st->opts.no_sync)
        envflags |= MDB_NOSYNC;
    if ((mrc = mdb_env_create(&st->env))) {
        rc = map_err(mrc, err, "env create");
        goto fail_nenv;
    }
    mdb_env_set_maxdbs(st->env, 8);
    mdb_env_set_maxreaders(st->env, 254);
    /* an existing file larger than map_size: LMDB keeps the larger size */
    mdb_env_set_mapsize(st->env, st->opts.map_size);
    if ((mrc = mdb_env_open(st->env, dir, envflags, 0600))) {
        rc = mrc == EACCES ? rv_err_set(err, RV_EPERM, "store: '%s': permission denied", dir)
                           : map_err(mrc, err, "open");
        goto fail;
    }
    {
        MDB_envinfo info;
        mdb_env_info(st->env, &info);
        st->map_size = info.me_mapsize;
    }
    if ((mrc = mdb_txn_begin(st->env, NULL, st->opts.read_only ? MDB_RDONLY : 0, &txn))) {
        rc = map_err(mrc, err, "begin");
        goto fail;
    }
    if ((mrc = open_dbs(st, txn, dbflags))) {
        rc = mrc == MDB_NOTFOUND ? rv_err_set(err, RV_ECORRUPT,
                                              "store: '%s' is not a rightsview store", dir)
                                 : map_err(mrc, err, "open databases");
        goto fail;
    }
    mrc = meta_get_u64(txn, st->db_meta, "schema", &schema);
    if (mrc == MDB_NOTFOUND) {
        MDB_stat ls;
        mdb_stat(txn, st->db_log, &ls);
        if (st->opts.read_only || ls.ms_entries > 0) {
            rc = rv_err_set(err, RV_ECORRUPT, "store: '%s' has no schema version", dir);
            goto fail;
        }
        if (getrandom(&st->epoch, sizeof(st->epoch), 0) != sizeof(st->epoch))
            st->epoch = (uint64_t)rv_now_ms() ^ (uint64_t)rv_mono_ns();
        st->epoch &= (1ULL << 53) - 1; /* exact in JSON numbers */
        if ((mrc = meta_put_u64(txn, st->db_meta, "schema", RV_STORE_SCHEMA)) ||
            (mrc = meta_put_u64(txn, st->db_meta, "epoch", st->epoch)) ||
            (mrc = meta_put_u64(txn, st->db_meta, "dedup_seq", 0))) {
            rc = map_err(mrc, err, "write meta");
            goto fail;
        }
        schema = RV_STORE_SCHEMA;
    } else if (mrc) {
        rc = map_err(mrc, err, "read schema");
        goto fail;
    }
    if (schema != RV_STORE_SCHEMA && schema != 1) {
        rc = rv_err_set(err, RV_EVERSION,
                        "store: '%s' has schema version %llu, this build reads version %d", dir,
                        (unsigned long long)schema, RV_STORE_SCHEMA);
        goto fail;
    }
    if ((mrc = meta_get_u64(txn, st->db_meta, "epoch", &st->epoch))) {
        rc = map_err(mrc, err, "read epoch");
        goto fail;
    }
    if ((mrc = last_key_u64(txn, st->db_log, &v))) {
        rc = map_err(mrc, err, "read log");
        goto fail;
    }
    {
        uint64_t floor_seq = 0;
        if (meta_get_u64(txn, st->db_meta, "seq_floor", &floor_seq) == 0 && floor_seq > v)
            v = floor_seq;
    }
    atomic_store(&st->last_seq, v);
    if ((mrc = last_key_u64(txn, st->db_alerts, &v))) {
        rc = map_err(mrc, err, "read alerts");
        goto fail;
    }
    atomic_store(&st->last_alert_seq, v);
    if (meta_get_u64(txn, st->db_meta, "rollup_seq", &st->rollup_seq) != 0)
        st->rollup_seq = 0;
    /* a new store has dedup_seq 0; one written before the dedup checkpoint
     * existed has none, and every key in `events`: record that now, in this
     * txn, or a crash before the first checkpoint would leave the keys of
     * the events accepted meanwhile in no checkpoint and no rebuild */
    if (meta_get_u64(txn, st->db_meta, "dedup_seq", &st->dedup_seq) != 0) {
        st->dedup_seq = atomic_load(&st->last_seq);
        if (!st->opts.read_only && !st->opts.meta_only &&
            (mrc = meta_put_u64(txn, st->db_meta, "dedup_seq", st->dedup_seq))) {
            rc = map_err(mrc, err, "write meta");
            goto fail;
        }
    }
    /* schema 1 (before the dedup checkpoint) becomes 2 at the first open
     * that writes: from then on `events` may lag the log, which a build of
     * schema 1 would not know, so it refuses the store */
    if (schema == 1 && !st->opts.read_only && !st->opts.meta_only) {
        if ((mrc = meta_put_u64(txn, st->db_meta, "schema", RV_STORE_SCHEMA))) {
            rc = map_err(mrc, err, "write meta");
            goto fail;
        }
    }
    if ((mrc = src_load_next(st, txn))) {
        rc = map_err(mrc, err, "read sources");
        goto fail;
    }
    /* commit even a read txn: an aborted txn closes the dbi handles it opened */
    if ((mrc = mdb_txn_commit(txn))) {
        txn = NULL;
        rc = map_err(mrc, err, "create");
        goto fail;
    }
    txn = NULL;
    st->last_flush_ns = rv_mono_ns();
    if (!st->opts.read_only && !st->opts.meta_only) {
        /* both sets sized for a full cycle up front (at most 1M keys,
         * 16 MiB a table): no rehash while the first ones fill */
        size_t keys = st->opts.dedup_flush_keys < ((size_t)1 << 20) ? st->opts.dedup_flush_keys
                                                                    : (size_t)1 << 20;
        if (rv_dedup_reserve(&st->dd, keys) != RV_OK || rv_dedup_reserve(&st->ddf, keys) != RV_OK) {
            rc = rv_err_set(err, RV_ENOMEM, "store: out of memory");
            goto fail;
        }
        if ((rc = rebuild_from_log(st, err)))
            goto fail;
        bloom_open(st);
    }
    *out = st;
    return RV_OK;
fail:
    if (txn)
        mdb_txn_abort(txn);
    ddf_wait(st); /* a checkpoint of the rebuild may have started a sort */
    free(st->ddf_keys);
    bins_clear(st);
    free(st->bins);
    src_reset(st);
    free(st->enc);
    mdb_env_close(st->env);
    rv_dedup_free(&st->dd);
    rv_dedup_free(&st->ddf);
    rv_bloom_free(&st->bloom);
fail_nenv:
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    pthread_rwlock_destroy(&st->resize);
    free(st);
    return rc;
}

void rv_store_close(struct rv_store **stp)
{
    struct rv_store *st = stp ? *stp : NULL;
    int mrc;
    if (!st)
        return;
    st->bloom_retry_n = SIZE_MAX; /* no rebuild for a store being closed */
    if (!st->opts.read_only && !st->opts.meta_only && (st->ndirty || st->dd.n || st->ddf.n)) {
        struct rv_errbuf err;
        if (flush_ex(st, true, &err))
            rv_log_warn("store", "final checkpoint failed reason=\"%s\" (rebuilt at next open)",
                        err.msg);
    }
    bins_clear(st);
    free(st->bins);
    ddf_wait(st);
    bloom_maintain(st, true);
    rv_bloom_free(&st->bloom);
    rv_bloom_free(&st->bloom_next);
    rv_dedup_free(&st->dd);
    rv_dedup_free(&st->ddf);
    free(st->ddf_keys);
    src_reset(st);
    free(st->enc);
    /* what a deferred meta sync left (rv_store_defer_meta_sync) */
    if (!st->opts.read_only && !st->opts.no_sync && (mrc = mdb_env_sync(st->env, 1)))
        rv_log_warn("store", "sync at close failed reason=\"%s\"", mdb_strerror(mrc));
    mdb_env_close(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&st->resize);
    free(st);
    *stp = NULL;
}

/* -------------------------------------------------------- writes */

static int ensure_enc(struct rv_store *st, size_t need)
{
    if (need <= st->enc_cap)
        return RV_OK;
    size_t cap = need < 4096 ? 4096 : need * 2;
    uint8_t *p = realloc(st->enc, cap);
    if (!p)
        return RV_ENOMEM;
    st->enc = p;
    st->enc_cap = cap;
    return RV_OK;
}

/* ----------------------------------------- filter of the keys in `events` */

#define BLOOM_SCAN_PIECE 65536 /* keys a read txn of the filter's scan */

/* Adds every key of `events` to B; ATOMIC when the writer adds to B
 * meanwhile. *N gets the keys seen. The scan is read in pieces, each in a
 * short read txn of its own, resumed after the last key seen (MDB_SET_RANGE):
 * a txn held for the whole scan would hold the map's resize lock as long,
 * stalling the writer's map growth and with it every ack. Nothing deletes
 * from `events`, and a key committed behind the scan after a rebuild began
 * is added by the writer (bloom_note), so the pieces miss nothing. */
static int bloom_scan(struct rv_store *st, struct rv_bloom *b, bool atomic, size_t *n,
                      struct rv_errbuf *err)
{
    unsigned char last[RV_SOURCE_MAX + 1 + RV_ID_MAX + 1];
    size_t last_len = 0;
    bool more = true, first = true;
    int rc = RV_OK;

    *n = 0;
    while (more && rc == RV_OK) {
        MDB_txn *txn;
        MDB_cursor *c;
        MDB_val k = {last_len, last}, v;
        size_t got = 0;
        bool piece_done = false;
        int mrc;

        if ((rc = rd_begin(st, &txn, err)))
            break;
        if ((mrc = mdb_cursor_open(txn, st->db_events, &c))) {
            rd_end(st, txn);
            rc = map_err(mrc, err, "scan events");
            break;
        }
        if (first) {
            mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        } else {
            mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
            if (mrc == 0 && k.mv_size == last_len && memcmp(k.mv_data, last, last_len) == 0)
                mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        first = false;
        /* the blocks are random cache lines: hash a run of keys and prefetch
         * their blocks, then set the bits (3x faster than one at a time) */
        uint64_t hs[32];
        size_t nh = 0;
        while ((mrc == 0 && !piece_done) || nh) {
            if (mrc == 0 && !piece_done) {
                hs[nh] = rv_bloom_hash(k.mv_data, k.mv_size);
                rv_bloom_prefetch(b, hs[nh]);
                nh++;
                got++;
                if (got == BLOOM_SCAN_PIECE && k.mv_size <= sizeof(last)) {
                    /* resumed after this key in a txn of its own */
                    memcpy(last, k.mv_data, k.mv_size);
                    last_len = k.mv_size;
                    piece_done = true;
                } else {
                    mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
                }
                if (mrc == 0 && !piece_done && nh < 32)
                    continue;
            }
            for (size_t i = 0; i < nh; i++) {
                if (atomic)
                    rv_bloom_add_atomic(b, hs[i]);
                else
                    rv_bloom_add(b, hs[i]);
            }
            *n += nh;
            nh = 0;
        }
        mdb_cursor_close(c);
        if (atomic && st->opts.filter_rebuild_hold_ms) {
            struct timespec d = {st->opts.filter_rebuild_hold_ms / 1000,
                                 (long)(st->opts.filter_rebuild_hold_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
        }
        rd_end(st, txn);
        if (piece_done)
            continue;
        more = false;
        if (mrc != MDB_NOTFOUND)
            rc = map_err(mrc, err, "scan events");
    }
    return rc;
}

/* Keys in `events` now (0 when it cannot be read). */
static size_t events_count(struct rv_store *st)
{
    MDB_txn *txn;
    MDB_stat ms;
    struct rv_errbuf err;
    size_t n = 0;

    if (rd_begin(st, &txn, &err))
        return 0;
    if (mdb_stat(txn, st->db_events, &ms) == 0)
        n = ms.ms_entries;
    rd_end(st, txn);
    return n;
}

/* The capacity a filter for N keys is made with: room for two generations
 * of dedup keys and for doubling, so rebuilds are rare; at most what
 * dedup_filter_max_mib holds (past that it stays, its false positives
 * rising: still correct). */
static size_t bloom_cap(const struct rv_store *st, size_t n)
{
    size_t cap = 2 * n + 2 * st->opts.dedup_flush_keys;
    size_t max = rv_bloom_cap_for_bytes((size_t)st->opts.dedup_filter_max_mib << 20);
    return cap < max ? cap : max;
}

/* At open (writing): the filter of the keys already in `events`. Without
 * memory, no filter: every lookup goes to `events`, as before it existed. */
static void bloom_open(struct rv_store *st)
{
    struct rv_errbuf err;
    size_t n;

    if (rv_bloom_init(&st->bloom, bloom_cap(st, events_count(st))) != RV_OK) {
        rv_log_warn("store", "no memory for the dedup filter (every lookup goes to events)");
        return;
    }
    if (bloom_scan(st, &st->bloom, false, &n, &err)) {
        rv_log_warn("store", "dedup filter off reason=\"%s\"", err.msg);
        rv_bloom_free(&st->bloom);
    }
}

static void *bloom_main(void *arg)
{
    struct rv_store *st = arg;
    struct rv_errbuf err;
    size_t n;

    st->bloom_rc = bloom_scan(st, &st->bloom_next, true, &n, &err);
    if (st->bloom_rc)
        rv_log_warn("store", "dedup filter rebuild failed reason=\"%s\"", err.msg);
    return NULL;
}

/* A key about to be written to `events`, by its filter hash H
 * (rv_bloom_hash; writer thread, before the txn commits: an abort leaves a
 * false positive, never a false negative). */
static void bloom_note(struct rv_store *st, uint64_t h)
{
    if (!st->bloom.w)
        return;
    rv_bloom_add(&st->bloom, h);
    if (st->bloom_running)
        rv_bloom_add_atomic(&st->bloom_next, h);
}

/* Writer thread, between txns: swaps in a finished rebuild; starts one when
 * the filter holds more keys than it was made for. The new filter is made
 * here, between txns, so its scan (a read txn begun after this point) sees
 * every key committed before, and bloom_note adds it every key after. */
static void bloom_maintain(struct rv_store *st, bool wait)
{
    if (st->bloom_running) {
        if (wait)
            pthread_join(st->bloom_thr, NULL);
        else if (pthread_tryjoin_np(st->bloom_thr, NULL) != 0)
            return;
        st->bloom_running = false;
        if (st->bloom_rc == RV_OK) {
            rv_bloom_free(&st->bloom);
            st->bloom = st->bloom_next;
            memset(&st->bloom_next, 0, sizeof(st->bloom_next));
        } else {
            rv_bloom_free(&st->bloom_next);
            st->bloom_retry_n = 2 * st->bloom.n;
        }
    }
    if (wait || !st->bloom.w || st->bloom.n <= st->bloom.cap || st->bloom.n <= st->bloom_retry_n)
        return;
    /* sized from the keys really there: bloom.n also counts the keys of
     * aborted txns (a full disk retries the same slice) */
    size_t cap = bloom_cap(st, events_count(st) + st->dd.n + st->ddf.n);
    if (cap <= st->bloom.cap) {
        /* at its memory cap, or n inflated by retries: not now */
        st->bloom_retry_n = st->bloom.n + st->bloom.cap;
        return;
    }
    if (rv_bloom_init(&st->bloom_next, cap) != RV_OK) {
        st->bloom_retry_n = 2 * st->bloom.n;
        return;
    }
    if (pthread_create(&st->bloom_thr, NULL, bloom_main, st) == 0) {
        st->bloom_running = true;
    } else {
        rv_bloom_free(&st->bloom_next);
        st->bloom_retry_n = 2 * st->bloom.n;
    }
}

/* Writes the frozen keys ddf_keys[ddf_next .. END) to `events` in TXN, in
 * key order through one cursor (consecutive keys: few leaf pages). */
/* The filter hash of the Ith frozen key, its filter block prefetched. */
static uint64_t frozen_hash(struct rv_store *st, size_t i)
{
    size_t kl;
    uint64_t sq, h;
    const unsigned char *kp = rv_dedup_rec(&st->ddf, st->ddf_keys[i], &kl, &sq);

    h = rv_bloom_hash(kp, kl);
    rv_bloom_prefetch(&st->bloom, h);
    return h;
}

static int frozen_put(struct rv_store *st, MDB_txn *txn, size_t end)
{
    MDB_cursor *c;
    int mrc;

    if (end <= st->ddf_next)
        return 0;
    if ((mrc = mdb_cursor_open(txn, st->db_events, &c)))
        return mrc;
    /* The keys are visited in key order, their records scattered over the
     * arena and their filter blocks over the filter: each record is
     * prefetched 2 x PF_AHEAD keys ahead, its filter block (which needs the
     * record's bytes for its hash) PF_AHEAD ahead. */
    uint64_t fh[PF_AHEAD];
    for (size_t j = st->ddf_next; j < end && j < st->ddf_next + 2 * PF_AHEAD; j++)
        rv_dedup_prefetch_rec(&st->ddf, st->ddf_keys[j]);
    for (size_t j = st->ddf_next; j < end && j < st->ddf_next + PF_AHEAD; j++)
        fh[j % PF_AHEAD] = frozen_hash(st, j);
    for (size_t i = st->ddf_next; i < end && !mrc; i++) {
        unsigned char sb[8];
        uint64_t sq, h = fh[i % PF_AHEAD];
        size_t kl;
        if (i + 2 * PF_AHEAD < end)
            rv_dedup_prefetch_rec(&st->ddf, st->ddf_keys[i + 2 * PF_AHEAD]);
        if (i + PF_AHEAD < end)
            fh[i % PF_AHEAD] = frozen_hash(st, i + PF_AHEAD);
        const unsigned char *kp = rv_dedup_rec(&st->ddf, st->ddf_keys[i], &kl, &sq);
        MDB_val k = {kl, (void *)kp}, v = {8, sb};
        be64(sb, sq);
        bloom_note(st, h);
        mrc = mdb_cursor_put(c, &k, &v, 0);
    }
    mdb_cursor_close(c);
    return mrc;
}

/* After a commit that wrote the frozen keys up to END. */
static void frozen_done(struct rv_store *st, size_t end)
{
    st->ddf_next = end;
    if (st->ddf.n && end >= st->ddf.n) {
        st->dedup_seq = st->ddf_seq;
        rv_dedup_clear(&st->ddf);
        free(st->ddf_keys);
        st->ddf_keys = NULL;
        st->ddf_next = 0;
    }
}

/* The sort of a frozen set, on its own thread: the frozen set is only read
 * meanwhile (lookups by the writer), and ddf_keys only written by it. */
static void *sort_main(void *arg)
{
    struct rv_store *st = arg;
    rv_dedup_sorted(&st->ddf, st->ddf_keys);
    return NULL;
}

/* Waits for the frozen set's sort (if any). */
static void ddf_wait(struct rv_store *st)
{
    if (st->sort_running) {
        pthread_join(st->sort_thr, NULL);
        st->sort_running = false;
    }
}

/* True when the frozen keys are sorted (joins a finished sort). */
static bool ddf_ready(struct rv_store *st)
{
    if (st->sort_running && pthread_tryjoin_np(st->sort_thr, NULL) == 0)
        st->sort_running = false;
    return !st->sort_running;
}

/* Freezes the active keys to be sorted (on a thread of its own) and then
 * written in slices; the active set starts empty. Only when nothing is
 * frozen. */
static int dedup_freeze(struct rv_store *st)
{
    uint32_t *keys;
    struct rv_dedup tmp;

    if (st->ddf.n || !st->dd.n)
        return RV_OK;
    if (!(keys = malloc(st->dd.n * sizeof(*keys))))
        return RV_ENOMEM;
    tmp = st->ddf; /* empty, its memory reused */
    st->ddf = st->dd;
    st->dd = tmp;
    free(st->ddf_keys);
    st->ddf_keys = keys;
    st->ddf_next = 0;
    st->ddf_seq = atomic_load(&st->last_seq);
    if (pthread_create(&st->sort_thr, NULL, sort_main, st) == 0)
        st->sort_running = true;
    else
        rv_dedup_sorted(&st->ddf, keys); /* no thread: here */
    return RV_OK;
}

/* An accepted event waiting for its rollup after commit, with its three
 * bins (loaded in the txn; nodes are never moved or freed before the
 * post-commit add). */
struct pend {
    const struct rv_event *ev;
    uint16_t src;
    struct mbin *bins[RV_RES_COUNT];
};

/* The dedup hash of EV's key (source NUL id), with the lines its lookups
 * will read prefetched: both tables' first slots and the filter's block. */
static uint64_t key_hash_prefetch(struct rv_store *st, const struct rv_event *ev)
{
    char kbuf[RV_SOURCE_MAX + 1 + RV_ID_MAX + 1];
    size_t sl = strlen(ev->source), il = strlen(ev->id);
    uint64_t h64;
    uint32_t h;

    memcpy(kbuf, ev->source, sl + 1);
    memcpy(kbuf + sl + 1, ev->id, il);
    h64 = rv_dedup_hash64(kbuf, sl + 1 + il);
    h = rv_dedup_fold(h64);
    rv_dedup_prefetch(&st->dd, h);
    rv_dedup_prefetch(&st->ddf, h);
    rv_bloom_prefetch(&st->bloom, rv_bloom_mix(h64));
    return h64;
}

static int do_batch(struct rv_store *st, const struct rv_event *evs, size_t n,
                    const struct rv_cursor_rec *cur, size_t nc, const struct rv_alert_rec *al,
                    size_t na, struct rv_put_result *res, struct pend *pend, size_t *npend,
                    struct rv_errbuf *err)
{
    MDB_txn *txn;
    uint64_t seq = atomic_load(&st->last_seq), aseq = atomic_load(&st->last_alert_seq);
    int64_t now = rv_now_ms();
    size_t np = 0, ndup = 0, nskip = 0, nfp = 0;
    int mrc = 0, rc;
    bool src_added = false;
    uint16_t next_src_save = st->next_src;
    size_t dd_mark = st->dd.len, f_end = st->ddf_next;

    /* The dedup lookups of random keys are cache misses (two tables and
     * the filter): the hashes of the next PF_AHEAD keys are made and their
     * lines prefetched while this one is worked on. */
    uint64_t kring[PF_AHEAD];
    for (size_t j = 0; j < n && j < PF_AHEAD; j++)
        kring[j] = key_hash_prefetch(st, &evs[j]);
    if ((rc = wr_begin(st, &txn, err)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        const struct rv_event *ev = &evs[i];
        char kbuf[RV_SOURCE_MAX + 1 + RV_ID_MAX + 1];
        size_t sl = strlen(ev->source), il = strlen(ev->id);
        unsigned char sb[8];
        MDB_val k = {sl + 1 + il, kbuf}, v = {8, sb};
        uint16_t sid;

        memcpy(kbuf, ev->source, sl + 1);
        memcpy(kbuf + sl + 1, ev->id, il);
        /* dedup: the keys since the checkpoint (this txn's too) in memory,
         * the older ones in `events` */
        uint64_t dseq;
        uint64_t kh64 = kring[i % PF_AHEAD];
        uint32_t kh = rv_dedup_fold(kh64);
        if (i + PF_AHEAD < n)
            kring[i % PF_AHEAD] = key_hash_prefetch(st, &evs[i + PF_AHEAD]);
        if (rv_dedup_find(&st->dd, kbuf, k.mv_size, kh, &dseq) ||
            rv_dedup_find(&st->ddf, kbuf, k.mv_size, kh, &dseq)) {
            res[i].outcome = RV_OUT_DUPLICATE;
            res[i].seq = dseq;
            ndup++;
            continue;
        }
        /* the older keys: the filter rules out nearly every new one */
        if (!rv_bloom_maybe(&st->bloom, rv_bloom_mix(kh64))) {
            nskip++;
        } else {
            mrc = mdb_get(txn, st->db_events, &k, &v);
            if (mrc == 0) {
                res[i].outcome = RV_OUT_DUPLICATE;
                res[i].seq = v.mv_size == 8 ? get_be64(v.mv_data) : 0;
                ndup++;
                continue;
            }
            if (mrc != MDB_NOTFOUND)
                goto mdb_fail;
            if (st->bloom.w)
                nfp++;
        }
        mrc = 0;
        if ((rc = rv_dedup_add(&st->dd, kbuf, k.mv_size, kh, seq + 1)))
            goto fail_rc;
        seq++;
        {
            size_t need = LOG_HDR + rv_event_encoded_size(ev);
            unsigned char kb[8];
            MDB_val lk = {8, kb}, lv;
            if ((rc = ensure_enc(st, need)))
                goto fail_rc;
            memcpy(st->enc, &now, 8);
            rc = rv_event_encode(ev, st->enc + LOG_HDR, st->enc_cap - LOG_HDR);
            if (rc < 0)
                goto fail_rc;
            lv.mv_size = need;
            lv.mv_data = st->enc;
            be64(kb, seq);
            if ((mrc = mdb_put(txn, st->db_log, &lk, &lv, MDB_APPEND)))
                goto mdb_fail;
        }
        if ((mrc = src_id(st, txn, ev->source, &sid, &src_added))) {
            if (mrc < 0) {
                rc = mrc;
                goto fail_rc;
            }
            goto mdb_fail;
        }
        res[i].outcome = RV_OUT_ACCEPTED;
        res[i].seq = seq;
        pend[np].ev = ev;
        pend[np].src = sid;
        np++;
    }
    for (size_t i = 0; i < nc; i++) {
        size_t kl = cur[i].name ? strlen(cur[i].name) : 0;
        MDB_val k = {kl, (void *)cur[i].name}, v = {cur[i].len, (void *)cur[i].val};
        if (kl == 0 || kl > 200) {
            rc = rv_err_set(err, RV_EINVAL, "cursor: name must be 1..200 bytes");
            goto fail_rc;
        }
        if ((mrc = mdb_put(txn, st->db_cursors, &k, &v, 0)))
            goto mdb_fail;
    }
    for (size_t i = 0; i < na; i++) {
        unsigned char kb[8];
        MDB_val k = {8, kb}, v = {al[i].len, (void *)al[i].json};
        if (al[i].seq <= aseq) {
            rc = rv_err_set(err, RV_EINVAL, "alert: seq %llu not above the last stored %llu",
                            (unsigned long long)al[i].seq, (unsigned long long)aseq);
            goto fail_rc;
        }
        aseq = al[i].seq;
        be64(kb, aseq);
        if ((mrc = mdb_put(txn, st->db_alerts, &k, &v, MDB_APPEND)))
            goto mdb_fail;
    }
    /* A slice of the frozen dedup keys rides along (twice as many as the
     * new events, so the frozen set drains before the next one is due):
     * no pause of its own, no extra fsync. */
    if (np && st->ddf.n > st->ddf_next && ddf_ready(st)) {
        size_t k = np * 2 < DD_SLICE_MIN ? DD_SLICE_MIN : np * 2;
        f_end = st->ddf_next + k < st->ddf.n ? st->ddf_next + k : st->ddf.n;
        if ((mrc = frozen_put(st, txn, f_end)))
            goto mdb_fail;
        if (f_end == st->ddf.n && (mrc = meta_put_u64(txn, st->db_meta, "dedup_seq", st->ddf_seq)))
            goto mdb_fail;
    }
    /* Load (not yet change) every bin the accepted events touch, inside
     * this txn, so that after commit the in-memory update cannot fail. */
    for (size_t i = 0; i < np; i++) {
        /* the minute's bin by its key; its hour's and day's through `up`
         * (one hash lookup an event instead of three) */
        const struct rv_event *ev = pend[i].ev;
        unsigned char key[SERIES_KEY_LEN];
        struct mbin *b;
        series_key(key, ev->country, ev->violation, RV_RES_1M,
                   rv_bin_start(ev->time_ms, RV_RES_1M));
        rc = RV_OK;
        if (!(b = bin_get(st, txn, key, &rc)))
            goto fail_rc;
        pend[i].bins[RV_RES_1M] = b;
        for (int r = RV_RES_1M + 1; r < RV_RES_COUNT; r++) {
            if (!b->up) {
                series_key(key, ev->country, ev->violation, r, rv_bin_start(ev->time_ms, r));
                if (!(b->up = bin_get(st, txn, key, &rc)))
                    goto fail_rc;
            }
            b = b->up;
            pend[i].bins[r] = b;
        }
    }
    {
        uint64_t t0 = rv_mono_ns(), dt;
        mrc = mdb_txn_commit(txn);
        txn = NULL;
        dt = rv_mono_ns() - t0;
        if (mrc == MDB_MAP_FULL)
            goto mdb_fail;
        if (mrc) {
            rc = commit_err(st, mrc, err);
            goto fail_rc;
        }
        atomic_store(&st->st_commit_last, dt);
        atomic_fetch_add(&st->st_commit_ns, dt);
    }
    atomic_store(&st->last_seq, seq);
    atomic_store(&st->last_alert_seq, aseq);
    frozen_done(st, f_end);
    atomic_store(&st->st_dd_mem, st->dd.n + st->ddf.n);
    atomic_fetch_add(&st->st_commits, 1);
    atomic_fetch_add(&st->st_accepted, np);
    atomic_fetch_add(&st->st_dup, ndup);
    if (nskip)
        atomic_fetch_add(&st->st_bloom_skips, nskip);
    if (nfp)
        atomic_fetch_add(&st->st_bloom_fp, nfp);
    *npend = np;
    return RV_OK;
mdb_fail:
    rc = map_err(mrc, err, "commit");
fail_rc:
    if (rc == RV_ENOMEM)
        rv_err_set(err, rc, "store: out of memory");
    else if (rc == RV_ETOOBIG && !err->msg[0])
        rv_err_set(err, rc, "store: event too big to encode");
    if (txn)
        mdb_txn_abort(txn);
    rv_dedup_truncate(&st->dd, dd_mark);
    if (src_added) {
        src_reset(st); /* drop uncommitted ids; reloaded from meta on demand */
        st->next_src = next_src_save;
    }
    if (mrc == MDB_MAP_FULL)
        return MDB_MAP_FULL; /* the caller grows the map and retries */
    return rc;
}

int rv_store_put_batch(struct rv_store *st, const struct rv_event *evs, size_t n,
                       const struct rv_cursor_rec *cur, size_t nc, const struct rv_alert_rec *al,
                       size_t na, struct rv_put_result *res, struct rv_errbuf *err)
{
    struct pend *pend = NULL;
    size_t npend = 0;
    int rc;

    rv_err_clear(err);
    if (st->opts.read_only || st->opts.meta_only)
        return rv_err_set(err, RV_EPERM, "store: opened read-only");
    if (n && !(pend = malloc(n * sizeof(*pend))))
        return rv_err_set(err, RV_ENOMEM, "store: out of memory");
    for (;;) {
        rc = do_batch(st, evs, n, cur, nc, al, na, res, pend, &npend, err);
        if (rc != MDB_MAP_FULL)
            break;
        rv_err_clear(err);
        if ((rc = grow_map(st, err)))
            break;
    }
    if (rc == RV_EFULL)
        atomic_fetch_add(&st->st_full, 1);
    bloom_maintain(st, false);
    if (rc == RV_OK) {
        /* Bins were loaded in the txn: these adds cannot fail. */
        for (size_t i = 0; i < npend; i++) {
            for (int r = 0; r < RV_RES_COUNT; r++) {
                struct mbin *b = pend[i].bins[r];
                bin_add(&b->b, pend[i].ev, pend[i].src);
                if (!b->dirty) {
                    b->dirty = true;
                    st->ndirty++;
                }
            }
        }
        if (!st->manual_ckpt && rv_store_checkpoint_due(st)) {
            struct rv_errbuf ferr;
            if (rv_store_flush(st, &ferr))
                rv_log_warn("store", "rollup checkpoint failed reason=\"%s\"", ferr.msg);
        }
    }
    free(pend);
    return rc;
}

static int mbin_cmp(const void *a, const void *b)
{
    return memcmp((*(struct mbin *const *)a)->key, (*(struct mbin *const *)b)->key,
                  SERIES_KEY_LEN);
}

static int do_flush(struct rv_store *st, bool force, struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int mrc, rc;
    uint64_t seq = atomic_load(&st->last_seq);
    struct mbin **dirty = NULL;
    uint32_t *keys = NULL;
    size_t nd = 0;

    /* Write the bins in key order: each leaf page is then visited once, in
     * sequence, through one cursor. */
    if (st->ndirty && !(dirty = malloc(st->ndirty * sizeof(*dirty))))
        return rv_err_set(err, RV_ENOMEM, "store: out of memory");
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct mbin *b = st->bins[i]; b; b = b->next)
            if (b->dirty && nd < st->ndirty)
                dirty[nd++] = b;
    if (nd)
        qsort(dirty, nd, sizeof(*dirty), mbin_cmp);
    size_t f_end = st->ddf_next;
    uint64_t new_dseq = st->dedup_seq;
    if (force)
        ddf_wait(st);
    if (st->ddf.n > st->ddf_next && ddf_ready(st)) {
        f_end = force ? st->ddf.n
                      : (st->ddf_next + DD_SLICE_IDLE < st->ddf.n ? st->ddf_next + DD_SLICE_IDLE
                                                                 : st->ddf.n);
        if (f_end == st->ddf.n)
            new_dseq = st->ddf_seq;
    }
    if (force)
        new_dseq = seq;
    if (force && st->dd.n) {
        if (!(keys = malloc(st->dd.n * sizeof(*keys)))) {
            free(dirty);
            return rv_err_set(err, RV_ENOMEM, "store: out of memory");
        }
        rv_dedup_sorted(&st->dd, keys);
    }
    if ((rc = wr_begin(st, &txn, err))) {
        free(dirty);
        free(keys);
        return rc;
    }
    if ((mrc = mdb_cursor_open(txn, st->db_series, &c)))
        goto fail;
    for (size_t i = 0; i < nd; i++) {
        unsigned char vb[BIN_VAL_MAX];
        MDB_val k = {SERIES_KEY_LEN, dirty[i]->key}, v = {0, vb};
        v.mv_size = bin_encode(&dirty[i]->b, vb);
        if ((mrc = mdb_cursor_put(c, &k, &v, 0)))
            goto fail;
    }
    mdb_cursor_close(c);
    c = NULL;
    if ((mrc = meta_put_u64(txn, st->db_meta, "rollup_seq", seq)))
        goto fail;
    if ((mrc = frozen_put(st, txn, f_end)))
        goto fail;
    {
        /* in key order through one cursor: each leaf page written once */
        if (keys) {
            if ((mrc = mdb_cursor_open(txn, st->db_events, &c)))
                goto fail;
            for (size_t i = 0; i < st->dd.n; i++) {
                unsigned char sb[8];
                uint64_t s;
                size_t kl;
                const unsigned char *kp = rv_dedup_rec(&st->dd, keys[i], &kl, &s);
                MDB_val k = {kl, (void *)kp}, v = {8, sb};
                be64(sb, s);
                bloom_note(st, rv_bloom_hash(kp, kl));
                if ((mrc = mdb_cursor_put(c, &k, &v, 0)))
                    goto fail;
            }
            mdb_cursor_close(c);
            c = NULL;
        }
        if (new_dseq != st->dedup_seq &&
            (mrc = meta_put_u64(txn, st->db_meta, "dedup_seq", new_dseq)))
            goto fail;
    }
    free(dirty);
    free(keys);
    if ((mrc = mdb_txn_commit(txn)))
        return mrc == MDB_MAP_FULL ? MDB_MAP_FULL : commit_err(st, mrc, err);
    st->rollup_seq = seq;
    frozen_done(st, f_end);
    if (force)
        rv_dedup_clear(&st->dd);
    st->dedup_seq = new_dseq;
    atomic_store(&st->st_dd_mem, st->dd.n + st->ddf.n);
    return RV_OK;
fail:
    free(dirty);
    free(keys);
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return mrc == MDB_MAP_FULL ? MDB_MAP_FULL : map_err(mrc, err, "checkpoint");
}

int rv_store_flush(struct rv_store *st, struct rv_errbuf *err)
{
    return flush_ex(st, false, err);
}

bool rv_store_checkpoint_due(struct rv_store *st)
{
    if (st->opts.read_only || st->opts.meta_only)
        return false;
    return st->ndirty >= st->opts.rollup_flush_bins ||
           (st->ddf.n == 0 && st->dd.n >= st->opts.dedup_flush_keys) ||
           (st->opts.rollup_flush_ms &&
            rv_mono_ns() - st->last_flush_ns >= (uint64_t)st->opts.rollup_flush_ms * 1000000u);
}

void rv_store_manual_checkpoints(struct rv_store *st, bool manual)
{
    st->manual_ckpt = manual;
}

void rv_store_defer_meta_sync(struct rv_store *st, bool on)
{
    if (st->opts.no_sync || st->opts.read_only)
        return;
    /* MDB_NOMETASYNC is one of the flags LMDB lets change on an open env */
    mdb_env_set_flags(st->env, MDB_NOMETASYNC, on ? 1 : 0);
}

int rv_store_sync(struct rv_store *st, struct rv_errbuf *err)
{
    int mrc;

    if (st->opts.no_sync || st->opts.read_only)
        return RV_OK;
    /* without MDB_WRITEMAP this is fdatasync() of the data file, which the
     * meta pages are written through under MDB_NOMETASYNC */
    if ((mrc = mdb_env_sync(st->env, 1)))
        return rv_err_set(err, RV_EIO, "store: sync: %s", mdb_strerror(mrc));
    return RV_OK;
}

/* Rollups always. Dedup keys: once dedup_flush_keys have gathered they are
 * frozen (sorted) and written in slices, with the event commits that follow
 * and with idle checkpoints, so no commit waits for all of them (each
 * leaf page of `events` is still written once a generation). FORCE_DEDUP
 * (close, retention) writes every key now. */
static int flush_ex(struct rv_store *st, bool force_dedup, struct rv_errbuf *err)
{
    int rc;
    bool dedup;

    rv_err_clear(err);
    if (st->opts.read_only || st->opts.meta_only)
        return RV_OK;
    st->last_flush_ns = rv_mono_ns();
    if (!force_dedup && st->dd.n >= st->opts.dedup_flush_keys && dedup_freeze(st))
        rv_log_warn("store", "out of memory sorting dedup keys (kept in memory, retried)");
    dedup = (st->ddf.n > st->ddf_next && ddf_ready(st)) ||
            (force_dedup && st->dedup_seq != atomic_load(&st->last_seq));
    if (!dedup && st->ndirty == 0 && st->rollup_seq == atomic_load(&st->last_seq))
        return RV_OK;
    for (;;) {
        rc = do_flush(st, force_dedup, err);
        if (rc != MDB_MAP_FULL)
            break;
        if ((rc = grow_map(st, err)))
            break;
    }
    bloom_maintain(st, false);
    if (rc == RV_OK) {
        /* Every bin now equals its `series` record. Keep them as a cache of
         * clean bins (the active ones are touched again next second), up to
         * a bound; past it, start over and reload on demand. */
        if (st->nbins > BIN_CACHE_MAX) {
            bins_clear(st);
        } else {
            for (size_t i = 0; i < st->nbuckets; i++)
                for (struct mbin *b = st->bins[i]; b; b = b->next)
                    b->dirty = false;
            st->ndirty = 0;
        }
        atomic_fetch_add(&st->st_flushes, 1);
    } else if (rc == RV_EFULL) {
        atomic_fetch_add(&st->st_full, 1);
    }
    return rc;
}

/* Bins and dedup keys from the log records past their checkpoints. */
static int rebuild_from_log(struct rv_store *st, struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    size_t n = 0, nd = 0;
    int mrc, rc = RV_OK;
    uint64_t from = st->rollup_seq < st->dedup_seq ? st->rollup_seq : st->dedup_seq;

    if (from >= atomic_load(&st->last_seq))
        return RV_OK;
    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_log, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "rebuild");
    }
    be64(kb, from + 1);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct rv_event ev;
        uint16_t sid = 0;
        bool added = false;
        uint64_t seq = get_be64(k.mv_data);
        if (v.mv_size < LOG_HDR || rv_event_decode((char *)v.mv_data + LOG_HDR,
                                                   v.mv_size - LOG_HDR, &ev)) {
            rc = rv_err_set(err, RV_ECORRUPT, "store: log record %llu is corrupt",
                            (unsigned long long)get_be64(k.mv_data));
            break;
        }
        /* source ids of committed events are in meta already */
        if ((rc = src_id(st, txn, ev.source, &sid, &added)) || added) {
            rv_event_release(&ev);
            rc = rv_err_set(err, RV_ECORRUPT, "store: source '%s' has no id", ev.source);
            break;
        }
        rc = RV_OK;
        if (seq > st->rollup_seq) {
            rc = rollup_add(st, txn, &ev, sid);
            n++;
        }
        if (rc == RV_OK && seq > st->dedup_seq) {
            char key[RV_SOURCE_MAX + 1 + RV_ID_MAX + 1];
            size_t sl = strlen(ev.source), il = strlen(ev.id);
            memcpy(key, ev.source, sl + 1);
            memcpy(key + sl + 1, ev.id, il);
            rc = rv_dedup_add(&st->dd, key, sl + 1 + il, rv_dedup_hash(key, sl + 1 + il), seq);
            nd++;
        }
        rv_event_release(&ev);
        if (rc) {
            rv_err_set(err, rc, "store: rebuild: %s", rv_strerror(rc));
            break;
        }
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    if (rc)
        return rc;
    rv_log_info("store", "rebuilt from log rollup_events=%zu dedup_keys=%zu from_seq=%llu", n,
                nd, (unsigned long long)from + 1);
    atomic_store(&st->st_dd_mem, st->dd.n);
    return rv_store_flush(st, err);
}

int rv_store_retention(struct rv_store *st, int64_t horizon_ms, int64_t now_ms, size_t *deleted,
                       struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    int64_t cutoff = now_ms - horizon_ms;
    size_t n = 0;
    uint64_t last_del = 0;
    int mrc, rc;

    if (deleted)
        *deleted = 0;
    /* both checkpoints cover what is deleted: it cannot be rebuilt after */
    if ((rc = flush_ex(st, true, err)))
        return rc;
    if ((rc = wr_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_log, &c)))
        goto fail;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int64_t ing;
        uint64_t seq = get_be64(k.mv_data);
        if (v.mv_size < LOG_HDR || seq > st->rollup_seq || seq > st->dedup_seq)
            break;
        memcpy(&ing, v.mv_data, 8);
        if (ing >= cutoff)
            break;
        if ((mrc = mdb_cursor_del(c, 0)))
            break;
        last_del = seq;
        n++;
    }
    mdb_cursor_close(c);
    if (mrc && mrc != MDB_NOTFOUND)
        goto fail;
    if (n && (mrc = meta_put_u64(txn, st->db_meta, "seq_floor", last_del)))
        goto fail;
    if ((mrc = mdb_txn_commit(txn)))
        return map_err(mrc, err, "retention");
    if (deleted)
        *deleted = n;
    return RV_OK;
fail:
    mdb_txn_abort(txn);
    return map_err(mrc, err, "retention");
}

int rv_store_meta_put(struct rv_store *st, const char *name, const void *val, size_t len,
                      struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_val k = {name ? strlen(name) : 0, (void *)name}, v = {len, (void *)val};
    int mrc, rc;

    if (st->opts.read_only)
        return rv_err_set(err, RV_EPERM, "store: opened read-only");
    if (!name || !*name || strlen(name) > 200 || strcmp(name, "schema") == 0 ||
        strcmp(name, "epoch") == 0 || strcmp(name, "rollup_seq") == 0 ||
        strcmp(name, "dedup_seq") == 0 || strcmp(name, "seq_floor") == 0 || strncmp(name, "src:", 4) == 0)
        return rv_err_set(err, RV_EINVAL, "meta: '%.40s' is reserved or invalid", name ? name : "");
    for (;;) {
        if ((rc = wr_begin(st, &txn, err)))
            return rc;
        mrc = val ? mdb_put(txn, st->db_meta, &k, &v, 0) : mdb_del(txn, st->db_meta, &k, NULL);
        if (mrc == MDB_NOTFOUND && !val)
            mrc = 0;
        if (mrc == 0)
            mrc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (mrc != MDB_MAP_FULL)
            break;
        if ((rc = grow_map(st, err)))
            return rc;
    }
    return mrc ? map_err(mrc, err, "meta") : RV_OK;
}

/* --------------------------------------------------------- reads */

int rv_store_read_series(struct rv_store *st, const char *country, int violation, int res,
                         int64_t from_ms, int64_t to_ms, rv_bin_cb cb, void *arg,
                         struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[SERIES_KEY_LEN];
    MDB_val k = {SERIES_KEY_LEN, kb}, v;
    int mrc, rc;

    if (!country || strlen(country) != 2 || violation < 0 || violation >= RV_VIOLATION_COUNT ||
        res < 0 || res >= RV_RES_COUNT)
        return rv_err_set(err, RV_EINVAL, "series: bad country, violation or resolution");
    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_series, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "series");
    }
    series_key(kb, country, violation, res, from_ms < 0 ? 0 : from_ms);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct rv_bin b;
        if (k.mv_size != SERIES_KEY_LEN || memcmp(k.mv_data, kb, 4) != 0)
            break;
        if (bin_decode(&b, k.mv_data, &v)) {
            rc = rv_err_set(err, RV_ECORRUPT, "store: series bin is corrupt");
            break;
        }
        if (b.start_ms >= to_ms)
            break;
        if (cb(arg, &b))
            break;
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return rc;
}

int rv_store_read_overview(struct rv_store *st, int res, rv_bin_cb cb, void *arg,
                           struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[SERIES_KEY_LEN];
    MDB_val k, v;
    int mrc, rc;

    if (res < 0 || res >= RV_RES_COUNT)
        return rv_err_set(err, RV_EINVAL, "res: must be 1m, 1h or 1d");
    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_series, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "overview");
    }
    /* Walk series prefixes: jump to the end of (country, violation, res),
     * step back to its latest bin, then jump to the next prefix. */
    memset(kb, 0, sizeof(kb));
    k.mv_size = SERIES_KEY_LEN;
    k.mv_data = kb;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == 0) {
        unsigned char pre[4], seek[SERIES_KEY_LEN];
        if (k.mv_size != SERIES_KEY_LEN)
            break;
        memcpy(pre, k.mv_data, 4);
        if (pre[3] < res) {
            memcpy(seek, pre, 4);
            seek[3] = (unsigned char)res;
            memset(seek + 4, 0, 8);
        } else if (pre[3] > res) {
            memcpy(seek, pre, 3);
            seek[2]++;
            if (seek[2] == 0) { /* violation wrapped: next country */
                seek[1]++;
            }
            seek[3] = 0;
            memset(seek + 4, 0, 8);
            if (pre[2] == 0xff)
                break;
        } else {
            memcpy(seek, pre, 4);
            memset(seek + 4, 0xff, 8);
            k.mv_size = SERIES_KEY_LEN;
            k.mv_data = seek;
            mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
            if (mrc == 0)
                mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
            else if (mrc == MDB_NOTFOUND)
                mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
            if (mrc)
                break;
            if (k.mv_size == SERIES_KEY_LEN && memcmp(k.mv_data, pre, 4) == 0) {
                struct rv_bin b;
                if (bin_decode(&b, k.mv_data, &v)) {
                    rc = rv_err_set(err, RV_ECORRUPT, "store: series bin is corrupt");
                    break;
                }
                if (cb(arg, &b))
                    break;
            }
            memcpy(seek, pre, 4);
            seek[3]++; /* past this resolution */
            memset(seek + 4, 0, 8);
        }
        k.mv_size = SERIES_KEY_LEN;
        k.mv_data = seek;
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return rc;
}

static int scan_log(struct rv_store *st, uint64_t from_seq, size_t max,
                    const struct rv_event_filter *f, rv_log_cb cb, void *arg,
                    struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    size_t n = 0;
    int mrc, rc;

    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_log, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "log");
    }
    be64(kb, from_seq);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct rv_event ev;
        int64_t ing;
        uint64_t seq = get_be64(k.mv_data);
        int stop;
        if (v.mv_size < LOG_HDR ||
            rv_event_decode((char *)v.mv_data + LOG_HDR, v.mv_size - LOG_HDR, &ev)) {
            rc = rv_err_set(err, RV_ECORRUPT, "store: log record %llu is corrupt",
                            (unsigned long long)seq);
            break;
        }
        memcpy(&ing, v.mv_data, 8);
        if (f && ((f->country && strcmp(f->country, ev.country) != 0) ||
                  (f->violation >= 0 && f->violation != ev.violation) ||
                  (f->source && strcmp(f->source, ev.source) != 0) ||
                  ((f->from_ms || f->to_ms) && (ev.time_ms < f->from_ms || ev.time_ms >= f->to_ms)))) {
            rv_event_release(&ev);
            continue;
        }
        stop = cb(arg, seq, ing, &ev);
        rv_event_release(&ev);
        n++;
        if (stop || (max && n >= max))
            break;
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return rc;
}

int rv_store_read_log(struct rv_store *st, uint64_t from_seq, size_t max, rv_log_cb cb, void *arg,
                      struct rv_errbuf *err)
{
    return scan_log(st, from_seq, max, NULL, cb, arg, err);
}

/* get_be64 in one load (the hot loop of rv_store_read_log_view). */
static inline uint64_t get_be64_fast(const void *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

int rv_store_read_log_view(struct rv_store *st, uint64_t from_seq, size_t max, rv_log_view_cb cb,
                           void *arg, struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    size_t n = 0;
    int mrc, rc;

    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_log, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "log");
    }
    be64(kb, from_seq);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct rv_event_view ev;
        int64_t ing;
        uint64_t seq = get_be64_fast(k.mv_data);
        if (v.mv_size < LOG_HDR ||
            rv_event_decode_view((char *)v.mv_data + LOG_HDR, v.mv_size - LOG_HDR, &ev)) {
            rc = rv_err_set(err, RV_ECORRUPT, "store: log record %llu is corrupt",
                            (unsigned long long)seq);
            break;
        }
        memcpy(&ing, v.mv_data, 8);
        n++;
        if (cb(arg, seq, ing, &ev) || (max && n >= max))
            break;
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return rc;
}

int rv_store_read_events(struct rv_store *st, const struct rv_event_filter *f, rv_log_cb cb,
                         void *arg, struct rv_errbuf *err)
{
    struct rv_event_filter any = {.violation = -1};
    if (!f)
        f = &any;
    if (f->from_ms > f->to_ms && f->to_ms)
        return rv_err_set(err, RV_EINVAL, "from: after to");
    return scan_log(st, f->after_seq + 1, f->limit, f, cb, arg, err);
}

int rv_store_read_alerts(struct rv_store *st, uint64_t since, rv_alert_cb cb, void *arg,
                         struct rv_errbuf *err)
{
    MDB_txn *txn;
    MDB_cursor *c;
    unsigned char kb[8];
    MDB_val k = {8, kb}, v;
    int mrc, rc;

    if ((rc = rd_begin(st, &txn, err)))
        return rc;
    if ((mrc = mdb_cursor_open(txn, st->db_alerts, &c))) {
        rd_end(st, txn);
        return map_err(mrc, err, "alerts");
    }
    be64(kb, since + 1);
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (cb(arg, get_be64(k.mv_data), v.mv_data, v.mv_size))
            break;
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return rc;
}

static int get_kv(struct rv_store *st, MDB_dbi db, const char *name, void *buf, size_t cap,
                  size_t *len)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    int mrc, rc = RV_OK;

    if (rd_begin(st, &txn, NULL))
        return RV_EIO;
    mrc = mdb_get(txn, db, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        rc = RV_ENOTFOUND;
    } else if (mrc) {
        rc = RV_EIO;
    } else {
        *len = v.mv_size;
        if (v.mv_size > cap)
            rc = RV_ETOOBIG;
        else
            memcpy(buf, v.mv_data, v.mv_size);
    }
    rd_end(st, txn);
    return rc;
}

int rv_store_get_cursor(struct rv_store *st, const char *name, void *buf, size_t cap, size_t *len)
{
    return get_kv(st, st->db_cursors, name, buf, cap, len);
}

int rv_store_get_meta(struct rv_store *st, const char *name, void *buf, size_t cap, size_t *len)
{
    return get_kv(st, st->db_meta, name, buf, cap, len);
}

int rv_store_read_meta_prefix(struct rv_store *st, const char *prefix, rv_meta_cb cb, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *c;
    size_t pl = strlen(prefix);
    MDB_val k = {pl, (void *)prefix}, v;
    int mrc;

    if (rd_begin(st, &txn, NULL))
        return RV_EIO;
    if (mdb_cursor_open(txn, st->db_meta, &c)) {
        rd_end(st, txn);
        return RV_EIO;
    }
    if (pl == 0)
        mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    else
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; mrc == 0; mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char name[256];
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0)
            break;
        if (k.mv_size >= sizeof(name))
            continue;
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        if (cb(arg, name, v.mv_data, v.mv_size))
            break;
    }
    mdb_cursor_close(c);
    rd_end(st, txn);
    return RV_OK;
}

struct src_lookup {
    uint16_t id;
    char *buf;
    size_t cap;
    bool found;
};

static int src_lookup_cb(void *arg, const char *name, const void *val, size_t len)
{
    struct src_lookup *l = arg;
    uint16_t id;
    if (len != 2)
        return 0;
    memcpy(&id, val, 2);
    if (id != l->id)
        return 0;
    snprintf(l->buf, l->cap, "%s", name + 4);
    l->found = true;
    return 1;
}

int rv_store_source_name(struct rv_store *st, uint16_t id, char *buf, size_t cap)
{
    struct src_lookup l = {id, buf, cap, false};
    rv_store_read_meta_prefix(st, "src:", src_lookup_cb, &l);
    return l.found ? RV_OK : RV_ENOTFOUND;
}

uint64_t rv_store_last_seq(struct rv_store *st)
{
    return atomic_load(&st->last_seq);
}

uint64_t rv_store_last_alert_seq(struct rv_store *st)
{
    return atomic_load(&st->last_alert_seq);
}

uint64_t rv_store_epoch(struct rv_store *st)
{
    return st->epoch;
}

void rv_store_get_stats(struct rv_store *st, struct rv_store_stats *o)
{
    o->commits = atomic_load(&st->st_commits);
    o->events_accepted = atomic_load(&st->st_accepted);
    o->events_duplicate = atomic_load(&st->st_dup);
    o->commit_ns_total = atomic_load(&st->st_commit_ns);
    o->commit_ns_last = atomic_load(&st->st_commit_last);
    o->map_resizes = atomic_load(&st->st_resizes);
    o->errors_full = atomic_load(&st->st_full);
    o->rollup_flushes = atomic_load(&st->st_flushes);
    o->dedup_keys_memory = atomic_load(&st->st_dd_mem);
    o->dedup_filter_skips = atomic_load(&st->st_bloom_skips);
    o->dedup_filter_false = atomic_load(&st->st_bloom_fp);
    o->map_size = st->map_size;
}

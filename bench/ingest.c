/*
 * bench/ingest: load client for the ingest benchmark of issue 4, and the
 * raw ceilings it is compared with. bench/ingest.sh runs every mode in
 * one run and prints the table; each mode prints one "result ..." line of
 * key=value pairs for it.
 *
 *   bench_ingest partner --endpoint E --server-pub FILE --key FILE [--key FILE...]
 *                [--publishers N] [--batch B] [--window W] [--seconds S]
 *       N publisher threads, each its own DEALER with CURVE (thread i uses
 *       key i mod the number of keys), W batches of B events in flight
 *       each, for S seconds: acknowledged events/s (accepted + duplicates,
 *       counted from the replies, which come after the durable commit).
 *   bench_ingest paced --endpoint E --server-pub FILE --key FILE
 *                [--rate R] [--batch B] [--seconds S] [--trace-slow MS]
 *       one publisher at a steady R events/s (default 1000; a batch of B,
 *       default 10, every B/R s): ack latency per batch, p50/p90/p99/max;
 *       --trace-slow logs each ack slower than MS with its time in the run.
 *   bench_ingest rawzmq [--publishers N] [--batch B] [--window W] [--seconds S]
 *       the ZeroMQ CURVE tcp ceiling: a ROUTER echo thread (own context) in
 *       this process answers every batch at once with a tiny frame; the
 *       same clients send the same payloads.
 *   bench_ingest rawlmdb [--batch B] [--seconds S] [--dir DIR] [--rate R]
 *       the storage ceiling: raw durable mdb_put of the same events
 *       (rv_event_encode, key source\0id, one txn per batch, fsync on
 *       commit) in a fresh environment; events/s and the time of one
 *       batch txn (begin .. durable commit) p50/p99. With --rate, paced
 *       like `paced` (commit latency under the same load).
 *   bench_ingest pgcopy [--publishers N] [--batch B] [--seconds S] -- PSQL-COMMAND...
 *       the same events as COPY rows into table `events` (made by the
 *       script), one COPY statement per batch, autocommit (one commit per
 *       batch), streamed into the stdin of N PSQL-COMMAND children (N
 *       loaders, like N publishers); the time runs until every psql has
 *       exited.
 *
 * Events: ~300 bytes of NDJSON (line_bytes in the result), unique ids (a
 * run tag, then a 64-bit mixed counter: random key order), 3010 series
 * (215 countries x 14 violations), times over the last 5 minutes (inside
 * the aggregator's allowed lateness: the whole pipeline does its work).
 * Exit status 0, 1 when a batch was rejected or a reply missing, 2 on bad
 * usage or setup failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "rv/country.h"
#include "rv/event.h"
#include "rv/ingest.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"

#define MAX_PUBS 64
#define MAX_KEYS 16
#define RING 8192           /* batches in flight per publisher, at most */
#define LINE_MAX_BYTES 512  /* one generated event line */
#define DRAIN_NS 15000000000ULL /* wait for outstanding replies after the end */
#define WARMUP_NS 10000000000ULL

static const char title_text[] = "Incident reported by two sources, pending verification";

struct opts {
    const char *mode;
    const char *endpoint;
    const char *server_pub;
    const char *keys[MAX_KEYS];
    int nkeys;
    int publishers;
    int batch;
    int window;
    double seconds;
    double rate;
    bool rate_set;
    bool batch_set;
    double trace_slow_ms; /* paced: log acks slower than this */
    const char *dir;
    char **cmd; /* pgcopy: argv of psql */
};

/* ------------------------------------------------------------ events */

/* The fields of event K of a run; NDJSON and COPY rows print the same. */
struct gen {
    char id[96];
    const char *country;
    const char *violation;
    char time[32];
    unsigned count;
    unsigned region;
    uint64_t h;
};

/* The generator is on the load client's hot path (it shares the two
 * cores with the daemon and PostgreSQL): the lines are put together with
 * memcpy and hand-made number conversions, not snprintf, which cost ~0.15
 * of a core at 250k events/s; gen_check() compares them with the snprintf
 * forms (the _ref functions) before a run. */
static char *put_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put_mem((p), (lit), sizeof(lit) - 1)

static char *put_str(char *p, const char *s)
{
    return put_mem(p, s, strlen(s));
}

static char *put_dec(char *p, unsigned long long v)
{
    char t[24];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = t[--n];
    return p;
}

static char *put_hex(char *p, unsigned long long v, int width)
{
    static const char hx[] = "0123456789abcdef";
    char t[16];
    int n = 0;
    do {
        t[n++] = hx[v & 15];
        v >>= 4;
    } while (v);
    while (n < width)
        t[n++] = '0';
    while (n)
        *p++ = t[--n];
    return p;
}

/* rv_time_format of NOW_MS - S * 1000 for S in 0..299, kept per thread
 * for the last NOW_MS */
static const char *gen_time(int64_t now_ms, unsigned s)
{
    static _Thread_local int64_t for_ms = INT64_MIN;
    static _Thread_local char tab[300][32];

    if (for_ms != now_ms) {
        for (int i = 0; i < 300; i++)
            rv_time_format(now_ms - (int64_t)i * 1000, tab[i], sizeof(tab[i]));
        for_ms = now_ms;
    }
    return tab[s];
}

static void gen_fields(struct gen *g, const char *tag, uint64_t k, int64_t now_ms)
{
    uint64_t h = (k + 1) * 0x9E3779B97F4A7C15ULL;
    size_t tl = strlen(tag);
    char *p;
    h ^= h >> 31;
    g->h = h;
    /* the multiplication is a bijection: (tag, h) is unique per k */
    if (tl > sizeof(g->id) - 18)
        tl = sizeof(g->id) - 18;
    p = put_mem(g->id, tag, tl);
    *p++ = '-';
    p = put_hex(p, (unsigned long long)((k + 1) * 0x9E3779B97F4A7C15ULL), 16);
    *p = '\0';
    g->country = rv_country_code_at((int)((h >> 8) % 215));
    g->violation = rv_violation_name((int)((h >> 20) % RV_VIOLATION_COUNT));
    snprintf(g->time, sizeof(g->time), "%s", gen_time(now_ms, (unsigned)((h >> 28) % 300)));
    g->count = 1 + (unsigned)((h >> 40) % 5);
    g->region = (unsigned)((h >> 44) % 50);
}

static int gen_ndjson_ref(char *buf, size_t cap, const struct gen *g)
{
    return snprintf(buf, cap,
                    "{\"id\":\"%s\",\"kind\":\"incident\",\"country\":\"%s\",\"violation\":\"%s\","
                    "\"time\":\"%s\",\"count\":%u,\"severity\":3,\"confidence\":0.8,"
                    "\"admin1\":\"Region %u\",\"title\":\"%s\","
                    "\"url\":\"https://example.org/r/%llx\"}\n",
                    g->id, g->country, g->violation, g->time, g->count, g->region, title_text,
                    (unsigned long long)(g->h >> 16));
}

static int gen_copy_row_ref(char *buf, size_t cap, const struct gen *g)
{
    return snprintf(buf, cap,
                    "bench\t%s\tincident\t%s\t%s\t%s\t%u\t3\t0.8\tRegion %u\t%s\t"
                    "https://example.org/r/%llx\n",
                    g->id, g->country, g->violation, g->time, g->count, g->region, title_text,
                    (unsigned long long)(g->h >> 16));
}

/* The same as gen_ndjson_ref. */
static int gen_ndjson(char *buf, size_t cap, const struct gen *g)
{
    char *p = buf;

    if (cap < LINE_MAX_BYTES)
        return gen_ndjson_ref(buf, cap, g);
    p = PUT_LIT(p, "{\"id\":\"");
    p = put_str(p, g->id);
    p = PUT_LIT(p, "\",\"kind\":\"incident\",\"country\":\"");
    p = put_str(p, g->country);
    p = PUT_LIT(p, "\",\"violation\":\"");
    p = put_str(p, g->violation);
    p = PUT_LIT(p, "\",\"time\":\"");
    p = put_str(p, g->time);
    p = PUT_LIT(p, "\",\"count\":");
    p = put_dec(p, g->count);
    p = PUT_LIT(p, ",\"severity\":3,\"confidence\":0.8,\"admin1\":\"Region ");
    p = put_dec(p, g->region);
    p = PUT_LIT(p, "\",\"title\":\"");
    p = put_mem(p, title_text, sizeof(title_text) - 1);
    p = PUT_LIT(p, "\",\"url\":\"https://example.org/r/");
    p = put_hex(p, (unsigned long long)(g->h >> 16), 1);
    p = PUT_LIT(p, "\"}\n");
    *p = '\0';
    return (int)(p - buf);
}

/* The same as gen_copy_row_ref. */
static int gen_copy_row(char *buf, size_t cap, const struct gen *g)
{
    char *p = buf;

    if (cap < LINE_MAX_BYTES)
        return gen_copy_row_ref(buf, cap, g);
    p = PUT_LIT(p, "bench\t");
    p = put_str(p, g->id);
    p = PUT_LIT(p, "\tincident\t");
    p = put_str(p, g->country);
    *p++ = '\t';
    p = put_str(p, g->violation);
    *p++ = '\t';
    p = put_str(p, g->time);
    *p++ = '\t';
    p = put_dec(p, g->count);
    p = PUT_LIT(p, "\t3\t0.8\tRegion ");
    p = put_dec(p, g->region);
    *p++ = '\t';
    p = put_mem(p, title_text, sizeof(title_text) - 1);
    p = PUT_LIT(p, "\thttps://example.org/r/");
    p = put_hex(p, (unsigned long long)(g->h >> 16), 1);
    *p++ = '\n';
    *p = '\0';
    return (int)(p - buf);
}

/* The fast lines are the snprintf ones, byte for byte (checked on 20000
 * events of a few tags before every run). */
static int gen_check(void)
{
    static const char *const tags[] = {"b", "p1a2b3c-77-0", "x0123456789abcdef0123456789"};
    char a[LINE_MAX_BYTES], b[LINE_MAX_BYTES], ref_id[96];
    int64_t now = rv_now_ms();

    for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
        for (uint64_t k = 0; k < 20000; k++) {
            struct gen g;
            gen_fields(&g, tags[t], k * 7919, now);
            snprintf(ref_id, sizeof(ref_id), "%s-%016llx", tags[t],
                     (unsigned long long)((k * 7919 + 1) * 0x9E3779B97F4A7C15ULL));
            {
                char rt[32];
                rv_time_format(now - (int64_t)((g.h >> 28) % 300) * 1000, rt, sizeof(rt));
                if (strcmp(ref_id, g.id) != 0 || strcmp(rt, g.time) != 0)
                    return -1;
            }
            if (gen_ndjson(a, sizeof(a), &g) != gen_ndjson_ref(b, sizeof(b), &g) || strcmp(a, b))
                return -1;
            if (gen_copy_row(a, sizeof(a), &g) != gen_copy_row_ref(b, sizeof(b), &g) ||
                strcmp(a, b))
                return -1;
        }
    }
    return 0;
}

/* Batch of B events K0.. as NDJSON into BUF (CAP >= B * LINE_MAX_BYTES). */
static size_t gen_batch(char *buf, size_t cap, const char *tag, uint64_t k0, int b, int64_t now_ms)
{
    size_t len = 0;
    struct gen g;
    for (int i = 0; i < b; i++) {
        int n;
        gen_fields(&g, tag, k0 + (uint64_t)i, now_ms);
        n = gen_ndjson(buf + len, cap - len, &g);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
    return len;
}

static void run_tag(char *tag, size_t cap, const char *what, int idx)
{
    snprintf(tag, cap, "%s%llx-%d-%d", what, (unsigned long long)(rv_now_ms() & 0xffffffffffULL),
             (int)getpid() & 0xffff, idx);
}

/* Length of a typical NDJSON event line, for the report. */
static int line_bytes(void)
{
    char line[LINE_MAX_BYTES], tag[64];
    struct gen g;
    run_tag(tag, sizeof(tag), "b", 0);
    gen_fields(&g, tag, 12345, rv_now_ms());
    return gen_ndjson(line, sizeof(line), &g);
}

static double secs_since(uint64_t t0)
{
    return (double)(rv_mono_ns() - t0) / 1e9;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile P (0..100) of N sorted values, nearest rank, in ms. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
    size_t r;
    if (!n)
        return 0;
    r = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return (double)v[r - 1] / 1e6;
}

/* ------------------------------------------------------------ publishers */

struct pub {
    struct opts *o;
    int idx;
    void *ctx;
    char server_pub[41];
    char sec[41];
    char pub[41];
    bool curve;
    pthread_barrier_t *start;
    uint64_t deadline; /* set by main before the barrier releases */
    uint64_t t_start;
    bool paced;
    /* results */
    uint64_t acked;
    uint64_t batches;
    uint64_t failures;
    uint64_t t_last;
    uint64_t *lat; /* paced: ns per acked batch */
    size_t nlat, caplat;
    int setup_rc;
};

struct pub_sock {
    void *s;
    uint64_t sent_at[RING];
    bool inflight[RING];
    uint64_t seq;
    unsigned n_inflight;
};

static void *pub_open(struct pub *p)
{
    void *s = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    if (p->curve) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->server_pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, p->pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, p->sec, 40);
    }
    if (zmq_connect(s, p->o->endpoint) != 0) {
        fprintf(stderr, "bench_ingest: connect '%s': %s\n", p->o->endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

static int pub_send(struct pub_sock *ps, const char *payload, size_t len)
{
    char bid[32];
    unsigned slot = (unsigned)(ps->seq % RING);
    int n = snprintf(bid, sizeof(bid), "%llu", (unsigned long long)ps->seq);
    ps->sent_at[slot] = rv_mono_ns();
    if (zmq_send(ps->s, bid, (size_t)n, ZMQ_SNDMORE) < 0 || zmq_send(ps->s, payload, len, 0) < 0)
        return -1;
    ps->inflight[slot] = true;
    ps->n_inflight++;
    ps->seq++;
    return 0;
}

/* Receives one reply (waits at most TIMEOUT_MS). Returns 1 and fills
 * *acked / *lat_ns / *bad, 0 on timeout. */
static int pub_recv(struct pub_sock *ps, int batch, long timeout_ms, uint64_t *acked, uint64_t *lat_ns, bool *bad)
{
    zmq_pollitem_t it = {ps->s, 0, ZMQ_POLLIN, 0};
    char bid[64];
    char body[4096];
    int nb, nbody, more = 0;
    size_t ml = sizeof(more);
    unsigned long long seq;
    char *end;

    if (zmq_poll(&it, 1, timeout_ms) <= 0 || !(it.revents & ZMQ_POLLIN))
        return 0;
    nb = zmq_recv(ps->s, bid, sizeof(bid) - 1, 0);
    if (nb < 0)
        return 0;
    zmq_getsockopt(ps->s, ZMQ_RCVMORE, &more, &ml);
    nbody = more ? zmq_recv(ps->s, body, sizeof(body) - 1, 0) : 0;
    for (;;) { /* discard anything past two frames */
        zmq_getsockopt(ps->s, ZMQ_RCVMORE, &more, &ml);
        if (!more)
            break;
        zmq_recv(ps->s, body + sizeof(body) - 1, 0, 0);
    }
    *acked = 0;
    *lat_ns = 0;
    *bad = true;
    bid[nb < (int)sizeof(bid) - 1 ? nb : (int)sizeof(bid) - 1] = 0;
    errno = 0;
    seq = strtoull(bid, &end, 10);
    if (errno || *end || end == bid)
        return 1;
    {
        unsigned slot = (unsigned)(seq % RING);
        if (ps->inflight[slot]) {
            ps->inflight[slot] = false;
            ps->n_inflight--;
            *lat_ns = rv_mono_ns() - ps->sent_at[slot];
        }
    }
    if (nbody < 0)
        return 1;
    if (nbody > (int)sizeof(body) - 1)
        nbody = (int)sizeof(body) - 1;
    body[nbody] = 0;
    if (nbody == 2 && memcmp(body, "{}", 2) == 0) { /* rawzmq echo: the whole batch */
        *acked = (uint64_t)batch;
        *bad = false;
        return 1;
    }
    {
        cJSON *j = cJSON_ParseWithLength(body, (size_t)nbody);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "accepted");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "duplicates");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rejected");
        if (cJSON_IsNumber(a) && cJSON_IsNumber(d) && cJSON_IsNumber(r)) {
            *acked = (uint64_t)a->valuedouble + (uint64_t)d->valuedouble;
            *bad = r->valuedouble != 0;
        }
        if (*bad)
            fprintf(stderr, "bench_ingest: reply %s: %.300s\n", bid, body);
        cJSON_Delete(j);
    }
    return 1;
}

static void lat_add(struct pub *p, uint64_t ns)
{
    if (p->o->trace_slow_ms > 0 && (double)ns / 1e6 >= p->o->trace_slow_ms)
        fprintf(stderr, "slow ack: %.3f s into the run, %.3f ms\n",
                (double)(rv_mono_ns() - p->t_start) / 1e9, (double)ns / 1e6);
    if (p->nlat == p->caplat) {
        size_t nc = p->caplat ? p->caplat * 2 : 4096;
        uint64_t *n = realloc(p->lat, nc * sizeof(*n));
        if (!n)
            return;
        p->lat = n;
        p->caplat = nc;
    }
    p->lat[p->nlat++] = ns;
}

static void *pub_thread(void *arg)
{
    struct pub *p = arg;
    struct opts *o = p->o;
    struct pub_sock *ps = calloc(1, sizeof(*ps));
    size_t cap = (size_t)o->batch * LINE_MAX_BYTES;
    char *buf = malloc(cap);
    char tag[64];
    uint64_t k = 0, t0, acked, lat;
    int64_t now_ms = rv_now_ms();
    bool bad, warm = false;

    run_tag(tag, sizeof(tag), o->mode[0] == 'r' ? "z" : "b", p->idx);
    p->setup_rc = 2;
    if (!ps || !buf || !(ps->s = pub_open(p)))
        goto wait;
    /* warm-up: one batch of one event, so that the CURVE handshake (and the
     * partner's authentication) is done before the clock starts */
    {
        size_t len = gen_batch(buf, cap, tag, k, 1, now_ms);
        k += 1;
        t0 = rv_mono_ns();
        if (pub_send(ps, buf, len) == 0) {
            while (rv_mono_ns() - t0 < WARMUP_NS)
                if (pub_recv(ps, 1, 100, &acked, &lat, &bad)) {
                    warm = !bad;
                    break;
                }
        }
        if (!warm) {
            fprintf(stderr, "bench_ingest: publisher %d: no good reply to the warm-up batch within "
                            "10 s (server down or key refused?)\n", p->idx);
            goto wait;
        }
    }
    p->setup_rc = 0;
wait:
    pthread_barrier_wait(p->start); /* everybody ready */
    pthread_barrier_wait(p->start); /* main has set the deadline */
    if (p->setup_rc)
        goto out;

    if (!p->paced) {
        while (rv_mono_ns() < p->deadline) {
            while (ps->n_inflight < (unsigned)o->window) {
                size_t len = gen_batch(buf, cap, tag, k, o->batch, now_ms);
                k += (uint64_t)o->batch;
                if (pub_send(ps, buf, len) < 0) {
                    p->failures++;
                    break;
                }
            }
            if (pub_recv(ps, o->batch, 50, &acked, &lat, &bad)) {
                p->acked += acked;
                p->batches++;
                p->failures += bad;
                p->t_last = rv_mono_ns();
            }
        }
    } else {
        uint64_t interval = (uint64_t)((double)o->batch / o->rate * 1e9);
        uint64_t next = rv_mono_ns();
        while (rv_mono_ns() < p->deadline) {
            uint64_t now = rv_mono_ns();
            long wait_ms;
            if (now >= next) {
                size_t len = gen_batch(buf, cap, tag, k, o->batch, now_ms);
                k += (uint64_t)o->batch;
                if (ps->n_inflight >= RING - 1 || pub_send(ps, buf, len) < 0)
                    p->failures++;
                next += interval;
                continue;
            }
            wait_ms = (long)((next - now + 999999) / 1000000);
            if (pub_recv(ps, o->batch, wait_ms, &acked, &lat, &bad)) {
                p->acked += acked;
                p->batches++;
                p->failures += bad;
                p->t_last = rv_mono_ns();
                lat_add(p, lat);
            }
        }
    }
    /* drain what is still in flight: those events were sent in time */
    t0 = rv_mono_ns();
    while (ps->n_inflight && rv_mono_ns() - t0 < DRAIN_NS) {
        if (pub_recv(ps, o->batch, 100, &acked, &lat, &bad)) {
            p->acked += acked;
            p->batches++;
            p->failures += bad;
            p->t_last = rv_mono_ns();
            if (p->paced)
                lat_add(p, lat);
        }
    }
    if (ps->n_inflight) {
        fprintf(stderr, "bench_ingest: publisher %d: %u batches without a reply\n", p->idx,
                ps->n_inflight);
        p->failures += ps->n_inflight;
    }
out:
    if (ps && ps->s)
        zmq_close(ps->s);
    free(ps);
    free(buf);
    return NULL;
}

/* ------------------------------------------------------------ rawzmq echo */

struct echo {
    void *ctx;
    void *sock;
    atomic_bool stop;
};

static void *echo_thread(void *arg)
{
    struct echo *e = arg;
    zmq_msg_t id, bid, body;
    int more;
    size_t ml = sizeof(more);

    while (!atomic_load(&e->stop)) {
        zmq_pollitem_t it = {e->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_init(&id);
        zmq_msg_init(&bid);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, e->sock, 0) < 0 || zmq_msg_recv(&bid, e->sock, 0) < 0)
            goto next;
        for (;;) { /* the payload: received, not looked at */
            zmq_getsockopt(e->sock, ZMQ_RCVMORE, &more, &ml);
            if (!more)
                break;
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            zmq_msg_recv(&body, e->sock, 0);
        }
        zmq_msg_send(&id, e->sock, ZMQ_SNDMORE);
        zmq_msg_send(&bid, e->sock, ZMQ_SNDMORE);
        zmq_send(e->sock, "{}", 2, 0);
    next:
        zmq_msg_close(&id);
        zmq_msg_close(&bid);
        zmq_msg_close(&body);
    }
    return NULL;
}

/* ------------------------------------------------------------ load modes */

static int run_publishers(struct opts *o)
{
    struct pub *p = calloc((size_t)o->publishers, sizeof(*p));
    pthread_t *th = calloc((size_t)o->publishers, sizeof(*th));
    pthread_barrier_t start;
    struct echo echo = {0};
    pthread_t echo_th;
    bool rawzmq = strcmp(o->mode, "rawzmq") == 0, echo_started = false;
    char spub[41] = "", ssec[41] = "", ep[256];
    void *ctx = zmq_ctx_new();
    uint64_t t0, acked = 0, batches = 0, failures = 0, t_last = 0;
    int rc = 2, setup = 0;
    struct rv_errbuf err;

    if (!p || !th || !ctx)
        goto out;
    if (rawzmq) {
        size_t el = sizeof(ep);
        int one = 1;
        zmq_curve_keypair(spub, ssec);
        echo.ctx = zmq_ctx_new();
        echo.sock = zmq_socket(echo.ctx, ZMQ_ROUTER);
        zmq_setsockopt(echo.sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
        zmq_setsockopt(echo.sock, ZMQ_CURVE_SECRETKEY, ssec, 40);
        if (zmq_bind(echo.sock, "tcp://127.0.0.1:0") != 0 ||
            zmq_getsockopt(echo.sock, ZMQ_LAST_ENDPOINT, ep, &el) != 0) {
            fprintf(stderr, "bench_ingest: rawzmq bind: %s\n", zmq_strerror(errno));
            goto out;
        }
        o->endpoint = ep;
        if (pthread_create(&echo_th, NULL, echo_thread, &echo) != 0)
            goto out;
        echo_started = true;
    } else if (rv_key_load(o->server_pub, spub, &err)) {
        fprintf(stderr, "bench_ingest: %s\n", err.msg);
        goto out;
    }
    pthread_barrier_init(&start, NULL, (unsigned)o->publishers + 1);
    for (int i = 0; i < o->publishers; i++) {
        p[i].o = o;
        p[i].idx = i;
        p[i].ctx = ctx;
        p[i].curve = true;
        p[i].start = &start;
        p[i].paced = strcmp(o->mode, "paced") == 0;
        memcpy(p[i].server_pub, spub, sizeof(spub));
        if (rawzmq) {
            zmq_curve_keypair(p[i].pub, p[i].sec);
        } else {
            if (rv_key_load(o->keys[i % o->nkeys], p[i].sec, &err)) {
                fprintf(stderr, "bench_ingest: %s\n", err.msg);
                exit(2);
            }
            if (zmq_curve_public(p[i].pub, p[i].sec) != 0) {
                fprintf(stderr, "bench_ingest: '%s' is not a secret key\n", o->keys[i % o->nkeys]);
                exit(2);
            }
        }
        if (pthread_create(&th[i], NULL, pub_thread, &p[i]) != 0) {
            fprintf(stderr, "bench_ingest: cannot start a thread\n");
            exit(2);
        }
    }
    pthread_barrier_wait(&start);
    t0 = rv_mono_ns();
    for (int i = 0; i < o->publishers; i++)
        p[i].deadline = t0 + (uint64_t)(o->seconds * 1e9);
    for (int i = 0; i < o->publishers; i++)
        p[i].t_start = t0;
    pthread_barrier_wait(&start);
    for (int i = 0; i < o->publishers; i++) {
        pthread_join(th[i], NULL);
        setup |= p[i].setup_rc;
        acked += p[i].acked;
        batches += p[i].batches;
        failures += p[i].failures;
        if (p[i].t_last > t_last)
            t_last = p[i].t_last;
    }
    pthread_barrier_destroy(&start);
    if (setup)
        goto out;
    {
        double secs = t_last > t0 ? (double)(t_last - t0) / 1e9 : secs_since(t0);
        printf("result mode=%s publishers=%d batch=%d window=%d events=%llu batches=%llu "
               "failures=%llu seconds=%.2f ev_s=%.0f line_bytes=%d",
               o->mode, o->publishers, o->batch, o->window, (unsigned long long)acked,
               (unsigned long long)batches, (unsigned long long)failures, secs,
               (double)acked / secs, line_bytes());
    }
    if (p[0].paced) {
        size_t n = p[0].nlat;
        qsort(p[0].lat, n, sizeof(uint64_t), cmp_u64);
        printf(" rate=%.0f lat_n=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f", o->rate, n,
               pct_ms(p[0].lat, n, 50), pct_ms(p[0].lat, n, 90), pct_ms(p[0].lat, n, 99),
               pct_ms(p[0].lat, n, 100));
    }
    printf("\n");
    fflush(stdout);
    rc = failures ? 1 : 0;
out:
    if (echo_started) {
        atomic_store(&echo.stop, true);
        pthread_join(echo_th, NULL);
    }
    if (echo.sock)
        zmq_close(echo.sock);
    if (echo.ctx)
        zmq_ctx_term(echo.ctx);
    if (ctx)
        zmq_ctx_term(ctx);
    if (p)
        for (int i = 0; i < o->publishers; i++)
            free(p[i].lat);
    free(p);
    free(th);
    return rc;
}

#define POOL 4096

static int run_rawlmdb(struct opts *o)
{
    MDB_env *env = NULL;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char *vals = NULL;
    size_t *vlen = NULL, nlat = 0, caplat = 0;
    uint64_t *lat = NULL;
    char tag[64], dirbuf[4096], line[LINE_MAX_BYTES];
    const char *dir = o->dir;
    int64_t now_ms = rv_now_ms();
    uint64_t t0, deadline, k = 0, n = 0;
    int rc = 2, mrc;
    struct rv_errbuf err;

    run_tag(tag, sizeof(tag), "l", 0);
    if (!dir) {
        const char *t = getenv("TMPDIR");
        snprintf(dirbuf, sizeof(dirbuf), "%s/rvbench.XXXXXX", t ? t : "/tmp");
        if (!mkdtemp(dirbuf)) {
            perror("bench_ingest: mkdtemp");
            return 2;
        }
        dir = dirbuf;
    }
    /* the values: POOL events parsed from the very NDJSON lines the
     * publishers send, encoded as the store encodes them */
    vals = malloc((size_t)POOL * 1024);
    vlen = malloc(POOL * sizeof(*vlen));
    if (!vals || !vlen)
        goto out;
    for (int i = 0; i < POOL; i++) {
        struct rv_event ev;
        struct gen g;
        int len, el;
        gen_fields(&g, tag, (uint64_t)i, now_ms);
        len = gen_ndjson(line, sizeof(line), &g);
        if (rv_event_parse(line, (size_t)len - 1, "bench", &ev, NULL, &err)) {
            fprintf(stderr, "bench_ingest: generated event: %s\n", err.msg);
            goto out;
        }
        el = rv_event_encode(&ev, vals + (size_t)i * 1024, 1024);
        rv_event_release(&ev);
        if (el < 0) {
            fprintf(stderr, "bench_ingest: encode failed\n");
            goto out;
        }
        vlen[i] = (size_t)el;
    }
    if ((mrc = mdb_env_create(&env)) || (mrc = mdb_env_set_mapsize(env, 1UL << 34)) ||
        (mrc = mdb_env_set_maxdbs(env, 2)) || (mrc = mdb_env_open(env, dir, 0, 0600))) {
        fprintf(stderr, "bench_ingest: lmdb '%s': %s\n", dir, mdb_strerror(mrc));
        goto out;
    }
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "events", MDB_CREATE, &dbi);
    mdb_txn_commit(txn);
    t0 = rv_mono_ns();
    deadline = t0 + (uint64_t)(o->seconds * 1e9);
    while (rv_mono_ns() < deadline) {
        uint64_t tb = rv_mono_ns();
        if ((mrc = mdb_txn_begin(env, NULL, 0, &txn))) {
            fprintf(stderr, "bench_ingest: txn: %s\n", mdb_strerror(mrc));
            goto out;
        }
        for (int j = 0; j < o->batch; j++, k++) {
            char key[160];
            struct gen g;
            int il;
            MDB_val kv, vv;
            /* the id exactly as the publishers make it */
            il = snprintf(g.id, sizeof(g.id), "%s-%016llx", tag,
                          (unsigned long long)((k + 1) * 0x9E3779B97F4A7C15ULL));
            memcpy(key, "bench", 6);
            memcpy(key + 6, g.id, (size_t)il);
            kv.mv_size = 6 + (size_t)il;
            kv.mv_data = key;
            vv.mv_size = vlen[k % POOL];
            vv.mv_data = vals + (k % POOL) * 1024;
            if ((mrc = mdb_put(txn, dbi, &kv, &vv, 0))) {
                fprintf(stderr, "bench_ingest: put: %s\n", mdb_strerror(mrc));
                mdb_txn_abort(txn);
                goto out;
            }
        }
        if ((mrc = mdb_txn_commit(txn))) {
            fprintf(stderr, "bench_ingest: commit: %s\n", mdb_strerror(mrc));
            goto out;
        }
        n += (uint64_t)o->batch;
        if (nlat == caplat) {
            size_t nc = caplat ? caplat * 2 : 4096;
            uint64_t *nl = realloc(lat, nc * sizeof(*nl));
            if (!nl)
                goto out;
            lat = nl;
            caplat = nc;
        }
        lat[nlat++] = rv_mono_ns() - tb;
        if (o->rate_set) { /* paced: the next batch at its time */
            uint64_t next = t0 + (uint64_t)((double)n / o->rate * 1e9), now = rv_mono_ns();
            if (next > now) {
                struct timespec ts = {(time_t)((next - now) / 1000000000ULL),
                                      (long)((next - now) % 1000000000ULL)};
                nanosleep(&ts, NULL);
            }
        }
    }
    {
        double secs = secs_since(t0);
        qsort(lat, nlat, sizeof(*lat), cmp_u64);
        printf("result mode=rawlmdb batch=%d events=%llu batches=%zu seconds=%.2f ev_s=%.0f "
               "commit_p50_ms=%.3f commit_p99_ms=%.3f value_bytes=%zu\n",
               o->batch, (unsigned long long)n, nlat, secs, (double)n / secs, pct_ms(lat, nlat, 50),
               pct_ms(lat, nlat, 99), vlen[0]);
        fflush(stdout);
    }
    rc = 0;
out:
    if (env)
        mdb_env_close(env);
    if (!o->dir) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/data.mdb", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/lock.mdb", dir);
        unlink(p);
        rmdir(dir);
    }
    free(vals);
    free(vlen);
    free(lat);
    return rc;
}

static int write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

struct loader {
    struct opts *o;
    int idx;
    pthread_barrier_t *start;
    uint64_t t0;     /* set by main between the barriers */
    uint64_t events; /* committed: psql exited 0 */
    uint64_t t_end;
    int rc;
};

/* One psql child fed by one thread: COPY + autocommit per batch until the
 * deadline, then end of input; the events count once psql has exited 0. */
static void *loader_thread(void *arg)
{
    static const char head[] = "COPY events (source, id, kind, country, violation, time, count, "
                               "severity, confidence, admin1, title, url) FROM STDIN;\n";
    static const char setup[] = "SET synchronous_commit TO on;\n";
    struct loader *l = arg;
    struct opts *o = l->o;
    int pfd[2] = {-1, -1}, status = 0;
    pid_t pid = -1;
    size_t cap = (size_t)o->batch * LINE_MAX_BYTES + sizeof(head) + 8;
    char *buf = malloc(cap), tag[64];
    int64_t now_ms = rv_now_ms();
    uint64_t deadline, k = 0, n = 0;

    l->rc = 2;
    run_tag(tag, sizeof(tag), "g", l->idx);
    /* close-on-exec: another loader's psql must not hold this pipe open
     * (dup2 onto stdin clears the flag for the child's own end) */
    if (!buf || pipe2(pfd, O_CLOEXEC) != 0) {
        perror("bench_ingest: pipe");
        goto wait;
    }
    pid = fork();
    if (pid < 0) {
        perror("bench_ingest: fork");
        goto wait;
    }
    if (pid == 0) {
        static const char msg[] = "bench_ingest: cannot run the psql command\n";
        dup2(pfd[0], 0);
        close(pfd[0]);
        close(pfd[1]);
        execvp(o->cmd[0], o->cmd);
        if (write(2, msg, sizeof(msg) - 1) < 0)
            _exit(127);
        _exit(127);
    }
    close(pfd[0]);
    pfd[0] = -1;
    /* connected before the clock starts: psql runs the SET at once */
    if (write_all(pfd[1], setup, sizeof(setup) - 1) < 0)
        goto wait;
    l->rc = 0;
wait:
    pthread_barrier_wait(l->start);
    pthread_barrier_wait(l->start);
    if (l->rc)
        goto out;
    deadline = l->t0 + (uint64_t)(o->seconds * 1e9);
    while (rv_mono_ns() < deadline) {
        size_t len = sizeof(head) - 1;
        struct gen g;
        memcpy(buf, head, len);
        for (int i = 0; i < o->batch; i++, k++) {
            gen_fields(&g, tag, k, now_ms);
            len += (size_t)gen_copy_row(buf + len, cap - len, &g);
        }
        memcpy(buf + len, "\\.\n", 3);
        len += 3;
        if (write_all(pfd[1], buf, len) < 0)
            break;
        n += (uint64_t)o->batch;
    }
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench_ingest: loader %d: psql failed (status %d)\n", l->idx, status);
            l->rc = 2;
        }
    }
    l->t_end = rv_mono_ns();
    l->events = l->rc ? 0 : n;
    free(buf);
    return NULL;
}

static int run_pgcopy(struct opts *o)
{
    struct loader l[MAX_PUBS];
    pthread_t th[MAX_PUBS];
    pthread_barrier_t start;
    uint64_t t0, t_end = 0, n = 0;
    int rc = 0;
    double secs;

    signal(SIGPIPE, SIG_IGN);
    pthread_barrier_init(&start, NULL, (unsigned)o->publishers + 1);
    for (int i = 0; i < o->publishers; i++) {
        memset(&l[i], 0, sizeof(l[i]));
        l[i].o = o;
        l[i].idx = i;
        l[i].start = &start;
        if (pthread_create(&th[i], NULL, loader_thread, &l[i]) != 0) {
            fprintf(stderr, "bench_ingest: cannot start a thread\n");
            exit(2);
        }
    }
    pthread_barrier_wait(&start);
    t0 = rv_mono_ns();
    for (int i = 0; i < o->publishers; i++)
        l[i].t0 = t0;
    pthread_barrier_wait(&start);
    for (int i = 0; i < o->publishers; i++) {
        pthread_join(th[i], NULL);
        rc |= l[i].rc;
        n += l[i].events;
        if (l[i].t_end > t_end)
            t_end = l[i].t_end;
    }
    pthread_barrier_destroy(&start);
    if (rc)
        return 2;
    secs = (double)(t_end - t0) / 1e9;
    printf("result mode=pgcopy loaders=%d batch=%d events=%llu seconds=%.2f ev_s=%.0f\n",
           o->publishers, o->batch, (unsigned long long)n, secs, (double)n / secs);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------ main */

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_ingest partner --endpoint E --server-pub FILE --key FILE [--key FILE...]\n"
            "                    [--publishers N] [--batch B] [--window W] [--seconds S]\n"
            "       bench_ingest paced --endpoint E --server-pub FILE --key FILE [--rate R]\n"
            "                    [--batch B] [--seconds S] [--trace-slow MS]\n"
            "       bench_ingest rawzmq [--publishers N] [--batch B] [--window W] [--seconds S]\n"
            "       bench_ingest rawlmdb [--batch B] [--seconds S] [--dir DIR] [--rate R]\n"
            "       bench_ingest pgcopy [--publishers N] [--batch B] [--seconds S] -- PSQL-COMMAND...\n");
    return 2;
}

static int num(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_ingest: %s: '%s' is not a number in %g..%g\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    double v;

    if (argc < 2)
        return usage();
    if (gen_check() != 0) {
        fprintf(stderr, "bench_ingest: the fast event lines differ from the snprintf ones\n");
        return 1;
    }
    o.mode = argv[1];
    o.publishers = 1;
    o.batch = 100;
    o.window = 4;
    o.seconds = 5;
    o.rate = 1000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            o.cmd = argv + i + 1;
            break;
        }
        if (!val)
            return usage();
        i++;
        if (strcmp(a, "--endpoint") == 0) {
            o.endpoint = val;
        } else if (strcmp(a, "--server-pub") == 0) {
            o.server_pub = val;
        } else if (strcmp(a, "--key") == 0) {
            if (o.nkeys == MAX_KEYS)
                return usage();
            o.keys[o.nkeys++] = val;
        } else if (strcmp(a, "--dir") == 0) {
            o.dir = val;
        } else if (strcmp(a, "--publishers") == 0) {
            if (num(a, val, 1, MAX_PUBS, &v))
                return 2;
            o.publishers = (int)v;
        } else if (strcmp(a, "--batch") == 0) {
            if (num(a, val, 1, 100000, &v))
                return 2;
            o.batch = (int)v;
            o.batch_set = true;
        } else if (strcmp(a, "--window") == 0) {
            if (num(a, val, 1, RING / 2, &v))
                return 2;
            o.window = (int)v;
        } else if (strcmp(a, "--seconds") == 0) {
            if (num(a, val, 0.1, 3600, &v))
                return 2;
            o.seconds = v;
        } else if (strcmp(a, "--trace-slow") == 0) {
            if (num(a, val, 0, 1e6, &v))
                return 2;
            o.trace_slow_ms = v;
        } else if (strcmp(a, "--rate") == 0) {
            if (num(a, val, 1, 1e7, &v))
                return 2;
            o.rate = v;
            o.rate_set = true;
        } else {
            fprintf(stderr, "bench_ingest: unknown option '%s'\n", a);
            return usage();
        }
    }
    if (strcmp(o.mode, "partner") == 0 || strcmp(o.mode, "paced") == 0) {
        if (!o.endpoint || !o.server_pub || !o.nkeys)
            return usage();
        if (strcmp(o.mode, "paced") == 0) {
            o.publishers = 1;
            if (!o.batch_set)
                o.batch = 10;
        }
        return run_publishers(&o);
    }
    if (strcmp(o.mode, "rawzmq") == 0)
        return run_publishers(&o);
    if (strcmp(o.mode, "rawlmdb") == 0)
        return run_rawlmdb(&o);
    if (strcmp(o.mode, "pgcopy") == 0) {
        if (!o.cmd || !o.cmd[0])
            return usage();
        return run_pgcopy(&o);
    }
    return usage();
}

/*
 * test_crash: no acknowledged event is ever lost, not even by kill -9.
 *
 * A child process opens a durable store, runs the group-commit writer
 * with two submitting threads, and after each commit writes the numbers
 * of the acknowledged events to a pipe. The parent kills it with SIGKILL
 * at a random moment, reopens the store and checks that every acked event
 * is there, that nothing is stored twice, and that every rollup equals a
 * recount from the log. Each round re-sends part of the previous one to
 * exercise dedup across crashes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "store_util.h"
#include "rv/timeutil.h"
#include "rv/writer.h"

#define T0 1735689600000LL
#define ROUNDS 24
#define PER_ROUND 1000000ULL

/* ------------------------------------------------------------ child */

struct child {
    struct rv_writer *w;
    int fd;
    uint64_t base;
    int tid;
    pthread_mutex_t *lock;
};

static void *child_thread(void *arg)
{
    struct child *c = arg;
    struct rv_event evs[200];
    struct rv_put_result res[200];
    uint64_t k = c->base + (uint64_t)c->tid * (PER_ROUND / 2);
    unsigned seed = (unsigned)(c->base + (uint64_t)c->tid);

    for (;;) {
        struct rv_write_req req = {0};
        size_t n = 1 + (size_t)(rand_r(&seed) % 200);
        char line[64];
        for (size_t i = 0; i < n; i++) {
            /* one in five re-sends an event of the previous round (its key is
             * in `events`), one in ten one of the last 2000 of this round
             * (in memory, or written by a dedup checkpoint meanwhile) */
            uint64_t start = c->base + (uint64_t)c->tid * (PER_ROUND / 2), kk = k;
            unsigned dice = (unsigned)rand_r(&seed) % 10;
            if (dice < 2 && c->base >= PER_ROUND)
                kk = k - PER_ROUND;
            else if (dice == 2 && k > start + 2000)
                kk = k - 1 - (uint64_t)(rand_r(&seed) % 2000);
            make_event(&evs[i], kk, UINT64_MAX, T0);
            k++;
        }
        req.evs = evs;
        req.n = n;
        req.res = res;
        if (rv_writer_submit_wait(c->w, &req, 0) != RV_OK)
            _exit(3);
        /* acked: durable now. Report every id (accepted or duplicate). */
        pthread_mutex_lock(c->lock);
        for (size_t i = 0; i < n; i++) {
            int len = snprintf(line, sizeof(line), "%s\n", evs[i].id);
            if (write(c->fd, line, (size_t)len) != len)
                _exit(4);
        }
        pthread_mutex_unlock(c->lock);
    }
    return NULL;
}

static int child_main(const char *dir, uint64_t base, int fd)
{
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct rv_writer *w;
    pthread_t th[2];
    struct child c[2];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

    rv_store_opts_default(&o);
    o.rollup_flush_bins = 500 + base / PER_ROUND * 300; /* checkpoints at varied moments */
    o.rollup_flush_ms = 20;
    o.dedup_flush_keys = 700 + base / PER_ROUND * 450; /* dedup checkpoints mid-flight too */
    if (rv_store_open(dir, &o, &st, &err) != RV_OK) {
        fprintf(stderr, "child: %s\n", err.msg);
        return 2;
    }
    if (rv_writer_new(st, NULL, NULL, &w) != RV_OK)
        return 2;
    for (int i = 0; i < 2; i++) {
        c[i] = (struct child){w, fd, base, i, &lock};
        pthread_create(&th[i], NULL, child_thread, &c[i]);
    }
    for (;;)
        pause(); /* until SIGKILL */
}

/* ----------------------------------------------------------- parent */

struct idset {
    char **v;
    size_t n, cap;
};

static void idset_add(struct idset *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = strdup(id);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int log_cb(void *arg, uint64_t seq, int64_t ing, const struct rv_event *ev)
{
    char key[256];
    (void)seq;
    (void)ing;
    snprintf(key, sizeof(key), "%s/%s", ev->source, ev->id);
    idset_add(arg, key);
    return 0;
}

/* Rollup recount (per bin) from the log vs the store. */
struct rb {
    char c[3];
    int v, res;
    int64_t s;
    uint64_t events, count;
};
struct rbs {
    struct rb *v;
    size_t n, cap;
};
static int rb_cmp(const void *a, const void *b)
{
    const struct rb *x = a, *y = b;
    int c = strcmp(x->c, y->c);
    if (c)
        return c;
    if (x->v != y->v)
        return x->v - y->v;
    if (x->res != y->res)
        return x->res - y->res;
    return x->s < y->s ? -1 : x->s > y->s;
}
static int rb_log_cb(void *arg, uint64_t seq, int64_t ing, const struct rv_event *ev)
{
    struct rbs *r = arg;
    (void)seq;
    (void)ing;
    for (int res = 0; res < RV_RES_COUNT; res++) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 4096;
            r->v = realloc(r->v, r->cap * sizeof(*r->v));
        }
        struct rb *b = &r->v[r->n++];
        memcpy(b->c, ev->country, 3);
        b->v = ev->violation;
        b->res = res;
        b->s = rv_bin_start(ev->time_ms, res);
        b->events = 1;
        b->count = (ev->kind == RV_KIND_PROBE && ev->has_value) ? 0 : ev->count;
    }
    return 0;
}
struct bincheck {
    uint64_t events, count;
    int found;
};
static int bincheck_cb(void *arg, const struct rv_bin *b)
{
    struct bincheck *c = arg;
    c->events = b->events;
    c->count = b->count;
    c->found++;
    return 0;
}

static void verify(const char *dir, struct idset *acked, size_t *stored_out)
{
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct idset stored = {0};
    struct rbs r = {0};
    size_t missing = 0, dup = 0, bad_bins = 0;

    rv_store_opts_default(&o);
    CHECK_OK(rv_store_open(dir, &o, &st, &err), &err); /* rebuilds rollups */
    CHECK_OK(rv_store_read_log(st, 1, 0, log_cb, &stored, &err), &err);
    qsort(stored.v, stored.n, sizeof(char *), cmpstr);
    for (size_t i = 1; i < stored.n; i++)
        if (strcmp(stored.v[i - 1], stored.v[i]) == 0)
            dup++;
    for (size_t i = 0; i < acked->n; i++) {
        char key[256];
        const char *kp = key;
        snprintf(key, sizeof(key), "%s/%s", "x", acked->v[i]);
        /* acked ids are reported without source: find by suffix "/id" */
        bool found = false;
        for (int s = 0; s < 5 && !found; s++) {
            snprintf(key, sizeof(key), "%s/%s", ref_sources[s], acked->v[i]);
            found = bsearch(&kp, stored.v, stored.n, sizeof(char *), cmpstr) != NULL;
        }
        if (!found)
            missing++;
    }
    CHECK(missing == 0);
    CHECK(dup == 0);
    /* rollups == recount */
    CHECK_OK(rv_store_read_log(st, 1, 0, rb_log_cb, &r, &err), &err);
    qsort(r.v, r.n, sizeof(*r.v), rb_cmp);
    for (size_t i = 0; i < r.n;) {
        size_t j = i;
        uint64_t ev = 0, cnt = 0;
        struct bincheck bc = {0};
        while (j < r.n && rb_cmp(&r.v[i], &r.v[j]) == 0) {
            ev += r.v[j].events;
            cnt += r.v[j].count;
            j++;
        }
        rv_store_read_series(st, r.v[i].c, r.v[i].v, r.v[i].res, r.v[i].s, r.v[i].s + 1,
                             bincheck_cb, &bc, &err);
        if (bc.found != 1 || bc.events != ev || bc.count != cnt)
            bad_bins++;
        i = j;
    }
    CHECK(bad_bins == 0);
    if (missing || dup || bad_bins)
        fprintf(stderr, "verify: acked=%zu stored=%zu missing=%zu dup=%zu bad_bins=%zu\n",
                acked->n, stored.n, missing, dup, bad_bins);
    *stored_out = stored.n;
    for (size_t i = 0; i < stored.n; i++)
        free(stored.v[i]);
    free(stored.v);
    free(r.v);
    rv_store_close(&st);
}

int main(int argc, char **argv)
{
    char dir[256];
    struct idset acked = {0};
    unsigned seed = (unsigned)time(NULL);
    uint64_t t_start = rv_mono_ns();
    int rounds = 0;

    if (argc == 4 && strcmp(argv[1], "child") == 0)
        return child_main(argv[2], strtoull(argv[3], NULL, 10), 1);

    printf("seed %u\n", seed);
    make_tmpdir(dir, sizeof(dir));
    for (int round = 0; round < ROUNDS; round++) {
        int pfd[2];
        pid_t pid;
        char base[32], buf[65536], partial[256] = "";
        size_t plen = 0, stored = 0;
        uint64_t deadline;
        int status;

        if (rv_mono_ns() - t_start > 150ULL * 1000000000ULL)
            break; /* bounded: at least 20 rounds fit easily */
        CHECK(pipe(pfd) == 0);
        snprintf(base, sizeof(base), "%llu", (unsigned long long)round * PER_ROUND);
        pid = fork();
        if (pid == 0) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            execl("/proc/self/exe", argv[0], "child", dir, base, (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        /* read acks for a random 20..400 ms, then SIGKILL mid-flight */
        deadline = rv_mono_ns() + (uint64_t)(20 + rand_r(&seed) % 380) * 1000000ULL;
        for (;;) {
            struct pollfd p = {pfd[0], POLLIN, 0};
            int64_t left = (int64_t)(deadline - rv_mono_ns()) / 1000000;
            if (left <= 0)
                break;
            if (poll(&p, 1, (int)left) <= 0)
                continue;
            ssize_t r = read(pfd[0], buf, sizeof(buf));
            if (r <= 0)
                break;
            for (ssize_t i = 0; i < r; i++) {
                if (buf[i] == '\n') {
                    partial[plen] = '\0';
                    idset_add(&acked, partial);
                    plen = 0;
                } else if (plen < sizeof(partial) - 1) {
                    partial[plen++] = buf[i];
                }
            }
        }
        kill(pid, SIGKILL);
        /* drain what the child wrote before it died: acked too */
        for (;;) {
            ssize_t r = read(pfd[0], buf, sizeof(buf));
            if (r <= 0)
                break;
            for (ssize_t i = 0; i < r; i++) {
                if (buf[i] == '\n') {
                    partial[plen] = '\0';
                    idset_add(&acked, partial);
                    plen = 0;
                } else if (plen < sizeof(partial) - 1) {
                    partial[plen++] = buf[i];
                }
            }
        }
        close(pfd[0]);
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        verify(dir, &acked, &stored);
        printf("round %d: acked %zu, stored %zu\n", round, acked.n, stored);
        rounds++;
        if (check_failures)
            break;
    }
    CHECK(rounds >= 20);
    CHECK(acked.n > 1000);
    for (size_t i = 0; i < acked.n; i++)
        free(acked.v[i]);
    free(acked.v);
    rm_rf(dir);
    CHECK_DONE();
}

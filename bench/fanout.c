/*
 * fanout: the ws-server's harness and benchmark.
 *
 *   bench_fanout serve --data DIR [--http H:P] [--ring N] [--deflate] [--origin O]
 *                      [--tls-cert F --tls-key F] [--max-msg N] [--web-root D]
 *                      [--ping S --idle S] [--poll-ms N] [--max-conns N]
 *                      [--sub-timeout S] [--max-unauth N] [--token-check S]
 *       runs rv_ws_start in this process with a real store and a PUB socket
 *       bound on RV_EP_UPDATES (standing in for the aggregator), prints
 *       "port N" (or "error MSG" and exits 1), then obeys stdin, one command
 *       a line, answering "ok" or "err MSG":
 *         alert JSON    store the alert (its "seq") durably, then publish it
 *         alertq JSON   store it only (not announced: the server must find it)
 *         cell JSON     publish a cell update
 *         event JSON    store one event (source "test") and checkpoint rollups
 *         quit
 *       Used by tests/e2e_ws.py.
 *   bench_fanout rawlws [--batch]   the raw lws ceiling (see below)
 *   bench_fanout load --port P --clients N [--snapshot 1]   the load client
 *   bench_fanout token ...   is `rvctl token ...` (rv_token_main)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <zmq.h>

#include "rv/country.h"
#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/ws.h"

static int parse_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < 0 || v > 10000000) ? 0 : (int)v;
}

static int pub_send(void *pub, const char *topic, const char *json, size_t len)
{
    if (zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(pub, json, len, 0) < 0 ? -1 : 0;
}

/* PAD bytes of filler so that messages have a realistic size */
static void make_pad(char *buf, size_t n)
{
    memset(buf, 'x', n);
    buf[n] = 0;
}

static int burst_alerts(struct rv_store *st, void *pub, unsigned long cnt, unsigned long pad,
                        struct rv_errbuf *err)
{
    struct rv_alert_rec *al = calloc(cnt ? cnt : 1, sizeof(*al));
    char *txt = calloc(cnt ? cnt : 1, 1024 + pad);
    char *fill = malloc(pad + 1);
    uint64_t seq = rv_store_last_alert_seq(st);
    int rc = RV_ENOMEM;

    if (!al || !txt || !fill)
        goto out;
    make_pad(fill, pad);
    for (unsigned long k = 0; k < cnt; k++) {
        char *t = txt + k * (1024 + pad);
        int n = snprintf(t, 1024 + pad,
                         "{\"seq\":%llu,\"state\":\"opened\",\"country\":\"SY\","
                         "\"violation\":\"killing\",\"admin1\":\"a%llu\",\"level\":\"warning\","
                         "\"score\":3.5,\"opened_at\":\"2024-03-01T10:00:00Z\","
                         "\"updated_at\":\"2024-03-01T10:00:00Z\",\"evidence\":[\"%s\"],"
                         "\"t_ns\":%-20llu}",
                         (unsigned long long)(seq + k + 1), (unsigned long long)((seq + k) % 100),
                         fill, 0ull);
        al[k] = (struct rv_alert_rec){seq + k + 1, t, (size_t)n};
    }
    /* the publish time goes in last, just before the commit */
    uint64_t now = rv_mono_ns();
    for (unsigned long k = 0; k < cnt; k++) {
        char *tn = strstr((char *)al[k].json, "\"t_ns\":") + 7;
        char num[21];
        snprintf(num, sizeof(num), "%-20llu", (unsigned long long)now);
        memcpy(tn, num, 20);
    }
    rc = rv_store_put_batch(st, NULL, 0, NULL, 0, al, cnt, NULL, err);
    for (unsigned long k = 0; rc == RV_OK && k < cnt; k++)
        pub_send(pub, "alert", al[k].json, al[k].len);
out:
    free(al);
    free(txt);
    free(fill);
    return rc;
}

static int serve(int argc, char **argv)
{
    struct rv_ws_opts o;
    struct rv_store_opts so;
    struct rv_store *st = NULL;
    struct rv_ws *ws = NULL;
    struct rv_errbuf err = {0};
    const char *data = NULL;
    void *zctx = NULL, *pub = NULL;
    char line[70000];
    int rc = 1;

    rv_ws_opts_default(&o);
    o.http = "127.0.0.1:0";
    o.web_root = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--deflate") == 0) {
            o.deflate = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: missing value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--http") == 0)
            o.http = v;
        else if (strcmp(a, "--ring") == 0)
            o.alert_ring = strtoul(v, NULL, 10);
        else if (strcmp(a, "--origin") == 0 && o.n_origins < RV_WS_MAX_ORIGINS)
            o.origins[o.n_origins++] = v;
        else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key = v;
        else if (strcmp(a, "--max-msg") == 0)
            o.max_msg = strtoul(v, NULL, 10);
        else if (strcmp(a, "--web-root") == 0)
            o.web_root = v;
        else if (strcmp(a, "--ping") == 0)
            o.ping_s = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--idle") == 0)
            o.idle_s = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--poll-ms") == 0)
            o.poll_ms = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--max-conns") == 0)
            o.max_conns = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--sub-timeout") == 0)
            o.sub_timeout_s = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--max-unauth") == 0)
            o.max_unauth = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--token-check") == 0)
            o.token_check_s = (unsigned)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "%s: unknown option\n", a);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "--data: missing\n");
        return 2;
    }
    rv_store_opts_default(&so);
    so.no_sync = true;
    if (rv_store_open(data, &so, &st, &err)) {
        printf("error %s\n", err.msg);
        return 1;
    }
    zctx = zmq_ctx_new();
    pub = zmq_socket(zctx, ZMQ_PUB);
    int hwm = 1000000;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    if (zmq_bind(pub, RV_EP_UPDATES)) {
        printf("error bind %s\n", zmq_strerror(zmq_errno()));
        goto out;
    }
    if (rv_ws_start(zctx, st, &o, NULL, &ws, &err)) {
        printf("error %s\n", err.msg);
        fflush(stdout);
        goto out;
    }
    printf("port %d\n", rv_ws_port(ws));
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *sp = strchr(line, ' ');
        const char *arg = sp ? sp + 1 : "";
        if (sp)
            *sp = 0;
        if (strcmp(line, "quit") == 0)
            break;
        if (strcmp(line, "alert") == 0 || strcmp(line, "alertq") == 0) {
            cJSON *j = cJSON_Parse(arg);
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "seq");
            struct rv_alert_rec al = {cJSON_IsNumber(s) ? (uint64_t)s->valuedouble : 0, arg,
                                      strlen(arg)};
            cJSON_Delete(j);
            if (rv_store_put_batch(st, NULL, 0, NULL, 0, &al, 1, NULL, &err)) {
                printf("err %s\n", err.msg);
            } else if (strcmp(line, "alert") == 0 && pub_send(pub, "alert", arg, strlen(arg))) {
                printf("err publish\n");
            } else {
                printf("ok\n");
            }
        } else if (strcmp(line, "cell") == 0) {
            printf(pub_send(pub, "cell", arg, strlen(arg)) ? "err publish\n" : "ok\n");
        } else if (strcmp(line, "event") == 0) {
            struct rv_event ev;
            struct rv_put_result res;
            if (rv_event_parse(arg, strlen(arg), "test", &ev, NULL, &err) ||
                rv_store_put_batch(st, &ev, 1, NULL, 0, NULL, 0, &res, &err) ||
                rv_store_flush(st, &err))
                printf("err %s\n", err.msg);
            else
                printf("ok\n");
            rv_event_release(&ev);
        } else if (strcmp(line, "burst") == 0) {
            /* burst N PAD: N alerts in one commit, then published; t_ns = publish time */
            unsigned long cnt = strtoul(arg, NULL, 10), pad = 0;
            const char *p2 = strchr(arg, ' ');
            if (p2)
                pad = strtoul(p2 + 1, NULL, 10);
            if (burst_alerts(st, pub, cnt, pad, &err))
                printf("err %s\n", err.msg);
            else
                printf("ok\n");
        } else if (strcmp(line, "cells") == 0) {
            /* cells N: N updates of distinct cells, t_ns = publish time */
            unsigned long cnt = strtoul(arg, NULL, 10);
            char js[512];
            for (unsigned long k = 0; k < cnt; k++) {
                int jn = snprintf(js, sizeof(js),
                                 "{\"country\":\"%s\",\"violation\":\"%s\",\"res\":\"1h\","
                                 "\"bin\":\"2024-03-01T10:00:00Z\",\"count\":%lu,\"weight\":1.5,"
                                 "\"sources\":1,\"baseline\":0.5,\"score\":2.5,\"level\":\"watch\","
                                 "\"t_ns\":%llu}",
                                 rv_country_code_at((int)(k / RV_VIOLATION_COUNT % 249)),
                                 rv_violation_name((int)(k % RV_VIOLATION_COUNT)), k,
                                 (unsigned long long)rv_mono_ns());
                pub_send(pub, "cell", js, (size_t)jn);
            }
            printf("ok\n");
        } else if (strcmp(line, "gen") == 0) {
            /* gen N CC VIOLATION: N events in one batch */
            char cc[3] = "SY", vn[64] = "killing";
            unsigned long cnt = strtoul(arg, NULL, 10);
            const char *p2 = strchr(arg, ' ');
            if (p2 && sscanf(p2 + 1, "%2s %63s", cc, vn) < 1)
                cnt = 0;
            struct rv_event *evs = calloc(cnt ? cnt : 1, sizeof(*evs));
            struct rv_put_result *res = calloc(cnt ? cnt : 1, sizeof(*res));
            static unsigned long gen_id;
            char js[1024];
            int bad = !evs || !res;
            for (unsigned long k = 0; k < cnt && !bad; k++) {
                snprintf(js, sizeof(js),
                         "{\"id\":\"gen-%lu\",\"kind\":\"incident\",\"country\":\"%s\","
                         "\"violation\":\"%s\",\"time\":\"2024-03-01T10:%02lu:00Z\",\"count\":2,"
                         "\"title\":\"t,with \\\"quote\\\"\",\"attrs\":{\"k\":\"v%lu\"}}",
                         gen_id++, cc, vn, k % 60, k);
                bad = rv_event_parse(js, strlen(js), "test", &evs[k], NULL, &err) != 0;
            }
            if (!bad && cnt)
                bad = rv_store_put_batch(st, evs, cnt, NULL, 0, NULL, 0, res, &err) ||
                      rv_store_flush(st, &err);
            for (unsigned long k = 0; k < cnt && evs; k++)
                rv_event_release(&evs[k]);
            free(evs);
            free(res);
            if (bad)
                printf("err %s\n", err.msg);
            else
                printf("ok\n");
        } else {
            printf("err unknown command\n");
        }
        fflush(stdout);
    }
    rc = 0;
out:
    rv_ws_stop(&ws);
    if (pub)
        zmq_close(pub);
    if (zctx)
        zmq_ctx_term(zctx);
    rv_store_close(&st);
    return rc;
}


/* ------------------------------------------------------------ rawlws: the ceiling */

/* A minimal lws broadcast server with no protocol logic: every message a
 * "burst" command makes goes to every connection, one lws_write per
 * writable callback, each session with its own index (the ring pattern).
 * With --batch, each writable callback sends every pending message that
 * fits in RAW_BATCH bytes in one raw write of complete frames (what the
 * rv server does): the ceiling of that technique. */
#define RAW_MAX (1u << 22)
#define RAW_BATCH 65536

struct raw_srv {
    struct lws_context *ctx;
    pthread_mutex_t lock;
    unsigned char **msgs; /* lock: appended by the stdin thread */
    size_t *lens;
    size_t n;             /* lock */
    size_t pub;           /* service thread: messages announced */
    bool batch;           /* --batch */
    unsigned char bbuf[RAW_BATCH];
    atomic_bool stop;
};

struct raw_sess {
    size_t idx;
};

static struct raw_srv raw; /* bench-only global, one server per process */

static int raw_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct raw_sess *s = user;
    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        pthread_mutex_lock(&raw.lock);
        s->idx = raw.n;
        pthread_mutex_unlock(&raw.lock);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        pthread_mutex_lock(&raw.lock);
        raw.pub = raw.n;
        pthread_mutex_unlock(&raw.lock);
        lws_callback_on_writable_all_protocol(raw.ctx, lws_get_protocol(wsi));
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (raw.batch && s->idx < raw.pub) {
            size_t used = 0;
            pthread_mutex_lock(&raw.lock);
            while (s->idx < raw.pub) {
                size_t ml = raw.lens[s->idx], h = ml < 126 ? 2 : ml < 65536 ? 4 : 10;
                if (h + ml > RAW_BATCH - used)
                    break;
                unsigned char *p = raw.bbuf + used;
                p[0] = 0x81;
                if (h == 2) {
                    p[1] = (unsigned char)ml;
                } else if (h == 4) {
                    p[1] = 126;
                    p[2] = (unsigned char)(ml >> 8);
                    p[3] = (unsigned char)ml;
                } else {
                    p[1] = 127;
                    for (int i = 0; i < 8; i++)
                        p[2 + i] = (unsigned char)((uint64_t)ml >> (56 - 8 * i));
                }
                memcpy(p + h, raw.msgs[s->idx] + LWS_PRE, ml);
                used += h + ml;
                s->idx++;
            }
            pthread_mutex_unlock(&raw.lock);
            if (used && lws_write(wsi, raw.bbuf, used, LWS_WRITE_RAW) < (int)used)
                return -1;
            if (s->idx < raw.pub)
                lws_callback_on_writable(wsi);
        } else if (s->idx < raw.pub) {
            pthread_mutex_lock(&raw.lock);
            unsigned char *m = raw.msgs[s->idx];
            size_t ml = raw.lens[s->idx];
            pthread_mutex_unlock(&raw.lock);
            if (lws_write(wsi, m + LWS_PRE, ml, LWS_WRITE_TEXT) < (int)ml)
                return -1;
            s->idx++;
            if (s->idx < raw.pub)
                lws_callback_on_writable(wsi);
        }
        break;
    default:
        break;
    }
    return 0;
}

static void *raw_stdin(void *arg)
{
    char line[256];
    uint64_t seq = 0;
    (void)arg;
    while (fgets(line, sizeof(line), stdin)) {
        unsigned long cnt = 0, pad = 0;
        if (strncmp(line, "quit", 4) == 0)
            break;
        if (sscanf(line, "burst %lu %lu", &cnt, &pad) < 1) {
            printf("err unknown command\n");
            fflush(stdout);
            continue;
        }
        char *fill = malloc(pad + 1);
        make_pad(fill, pad);
        uint64_t now = rv_mono_ns();
        for (unsigned long k = 0; k < cnt; k++) {
            unsigned char *m = malloc(LWS_PRE + 1024 + pad);
            int n = snprintf((char *)m + LWS_PRE, 1024 + pad,
                             "{\"type\":\"alert\",\"seq\":%llu,\"state\":\"opened\",\"country\":\"SY\","
                             "\"violation\":\"killing\",\"admin1\":\"a%llu\",\"level\":\"warning\","
                             "\"score\":3.5,\"opened_at\":\"2024-03-01T10:00:00Z\","
                             "\"updated_at\":\"2024-03-01T10:00:00Z\",\"evidence\":[\"%s\"],"
                             "\"t_ns\":%-20llu}",
                             (unsigned long long)(seq + 1), (unsigned long long)(seq % 100), fill,
                             (unsigned long long)now);
            seq++;
            pthread_mutex_lock(&raw.lock);
            if (raw.n < RAW_MAX) {
                raw.msgs[raw.n] = m;
                raw.lens[raw.n++] = (size_t)n;
            } else {
                free(m);
            }
            pthread_mutex_unlock(&raw.lock);
        }
        free(fill);
        lws_cancel_service(raw.ctx);
        printf("ok\n");
        fflush(stdout);
    }
    atomic_store(&raw.stop, true);
    lws_cancel_service(raw.ctx);
    return NULL;
}

static int rawlws(bool batch)
{
    static struct lws_protocols protos[] = {
        {"rv.v1", raw_cb, sizeof(struct raw_sess), 4096, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info;
    pthread_t thr;

    raw.batch = batch;
    if (batch)
        protos[0].tx_packet_size = RAW_BATCH; /* one send per batch, not cut at 4096 */

    pthread_mutex_init(&raw.lock, NULL);
    raw.msgs = calloc(RAW_MAX, sizeof(*raw.msgs));
    raw.lens = calloc(RAW_MAX, sizeof(*raw.lens));
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof(info));
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = protos;
    raw.ctx = lws_create_context(&info);
    if (!raw.ctx) {
        printf("error lws\n");
        return 1;
    }
    printf("port %d\n", lws_get_vhost_listen_port(lws_get_vhost_by_name(raw.ctx, "default")));
    fflush(stdout);
    pthread_create(&thr, NULL, raw_stdin, NULL);
    while (!atomic_load(&raw.stop))
        if (lws_service(raw.ctx, 0) < 0)
            break;
    pthread_join(thr, NULL);
    lws_context_destroy(raw.ctx);
    return 0;
}

/* ------------------------------------------------------------ load: the client */

struct lconn {
    int fd;
    bool up, first;
    unsigned char *buf;
    size_t len, cap;
    unsigned long alerts, cells;
};

struct load {
    struct lconn *c;
    int n, ep;
    int up, first, failed;
    bool want_snapshot;
    uint32_t *lat; /* latencies (us) since mark */
    size_t nlat, caplat;
    uint64_t t_first, t_last; /* min t_ns seen, last receipt, since mark */
    unsigned long cells_since;
};

static void send_masked_text(int fd, const char *txt)
{
    size_t n = strlen(txt);
    unsigned char f[14 + 512];
    size_t h = 0;
    f[h++] = 0x81;
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n && h < sizeof(f); i++)
        f[h++] = (unsigned char)txt[i] ^ mask[i % 4];
    if (write(fd, f, h) != (ssize_t)h)
        return;
}

static void send_pong(int fd, const unsigned char *p, size_t n)
{
    unsigned char f[6 + 125];
    size_t h = 0;
    if (n > 125)
        n = 125;
    f[h++] = 0x8a;
    f[h++] = (unsigned char)(0x80 | n);
    memset(f + h, 0, 4); /* zero mask */
    h += 4;
    memcpy(f + h, p, n);
    if (write(fd, f, h + n) != (ssize_t)(h + n))
        return;
}

static void on_text(struct load *L, struct lconn *c, const unsigned char *p, size_t n, uint64_t now)
{
    bool is_alert = n > 16 && memcmp(p, "{\"type\":\"alert\"", 15) == 0;
    bool is_cell = n > 15 && memcmp(p, "{\"type\":\"cell\"", 14) == 0;
    if (!c->first) {
        c->first = true;
        L->first++;
    }
    if (!is_alert && !is_cell)
        return;
    /* t_ns is the last member: look in the tail first */
    size_t tail = n > 48 ? 48 : n;
    const unsigned char *t = memmem(p + n - tail, tail, "\"t_ns\":", 7);
    if (!t)
        t = memmem(p, n, "\"t_ns\":", 7);
    uint64_t tns = t ? strtoull((const char *)t + 7, NULL, 10) : 0;
    if (is_alert)
        c->alerts++;
    else {
        c->cells++;
        L->cells_since++;
    }
    if (tns && (!L->t_first || tns < L->t_first))
        L->t_first = tns;
    L->t_last = now;
    if (tns && L->nlat < L->caplat)
        L->lat[L->nlat++] = (uint32_t)((now - tns) / 1000);
}

static int on_readable(struct load *L, struct lconn *c)
{
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap);
        }
        size_t room = c->cap - c->len;
        ssize_t r = read(c->fd, c->buf + c->len, room);
        if (r == 0)
            return -1;
        if (r < 0)
            return errno == EAGAIN ? 0 : -1;
        c->len += (size_t)r;
        uint64_t now = rv_mono_ns();
        size_t off = 0;
        if (!c->up) {
            unsigned char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!e)
                continue;
            if (c->len < 12 || memcmp(c->buf + 9, "101", 3))
                return -1;
            off = (size_t)(e - c->buf) + 4;
            c->up = true;
            L->up++;
            send_masked_text(c->fd, "{\"type\":\"subscribe\"}");
        }
        for (;;) {
            if (c->len - off < 2)
                break;
            unsigned char *f = c->buf + off;
            int op = f[0] & 15;
            uint64_t pl = f[1] & 127;
            size_t h = 2;
            if (pl == 126) {
                if (c->len - off < 4)
                    break;
                pl = (uint64_t)f[2] << 8 | f[3];
                h = 4;
            } else if (pl == 127) {
                if (c->len - off < 10)
                    break;
                pl = 0;
                for (int i = 0; i < 8; i++)
                    pl = pl << 8 | f[2 + i];
                h = 10;
            }
            if (c->len - off < h + pl)
                break;
            if (op == 1)
                on_text(L, c, f + h, (size_t)pl, now);
            else if (op == 9)
                send_pong(c->fd, f + h, (size_t)pl);
            else if (op == 8)
                return -1;
            off += h + (size_t)pl;
        }
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
        /* a short read emptied the socket (as good as certain): no read
         * just to get EAGAIN; epoll is level-triggered, so any rest wakes
         * it again */
        if ((size_t)r < room && c->up)
            return 0;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void load_pump(struct load *L, int ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(L->ep, evs, 256, ms);
    for (int i = 0; i < n; i++) {
        struct lconn *c = &L->c[evs[i].data.u32];
        if (on_readable(L, c) < 0) {
            epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
        }
    }
}

static int load(int argc, char **argv)
{
    struct load L = {0};
    int port = 0;
    char line[256];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = parse_count(argv[i + 1]);
        else if (strcmp(argv[i], "--clients") == 0)
            L.n = parse_count(argv[i + 1]);
        else if (strcmp(argv[i], "--snapshot") == 0)
            L.want_snapshot = strcmp(argv[i + 1], "1") == 0;
    }
    L.c = calloc((size_t)L.n, sizeof(*L.c));
    L.caplat = 20000000;
    L.lat = malloc(L.caplat * sizeof(*L.lat));
    L.ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < L.n; i++) {
        struct lconn *c = &L.c[i];
        char req[512];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
            fprintf(stderr, "load: connect %d: %s\n", i, strerror(errno));
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
            L.up++; /* counted as done: "ready" reports how many are really up */
            L.first++;
            L.failed++;
            continue;
        }
        int rl = snprintf(req, sizeof(req),
                          "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rv.v1\r\n\r\n",
                          port);
        if (write(c->fd, req, (size_t)rl) != rl)
            return 1;
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(L.ep, EPOLL_CTL_ADD, c->fd, &ev);
        if (i % 64 == 63)
            load_pump(&L, 0);
    }
    uint64_t t0 = rv_mono_ns();
    while ((L.up < L.n || (L.want_snapshot && L.first < L.n)) && rv_mono_ns() - t0 < 60000000000ull)
        load_pump(&L, 50);
    printf("ready %d %d\n", L.up - L.failed, L.first - L.failed);
    fflush(stdout);
    struct pollfd pin = {0, POLLIN, 0};
    for (;;) {
        load_pump(&L, 20);
        if (poll(&pin, 1, 0) <= 0)
            continue;
        if (!fgets(line, sizeof(line), stdin) || strncmp(line, "quit", 4) == 0)
            break;
        unsigned long want = 0, tmo = 0, quiet = 0;
        if (strncmp(line, "mark", 4) == 0) {
            L.nlat = 0;
            L.t_first = L.t_last = 0;
            L.cells_since = 0;
            printf("ok\n");
        } else if (sscanf(line, "wait %lu %lu", &want, &tmo) == 2) {
            uint64_t start = rv_mono_ns();
            for (;;) {
                int done = 0;
                for (int i = 0; i < L.n; i++)
                    done += L.c[i].alerts >= want || L.c[i].fd < 0;
                if (done == L.n || rv_mono_ns() - start > tmo * 1000000ull)
                    break;
                load_pump(&L, 5);
            }
            unsigned long long tot = 0;
            int done = 0;
            for (int i = 0; i < L.n; i++) {
                tot += L.c[i].alerts;
                done += L.c[i].alerts >= want;
            }
            qsort(L.lat, L.nlat, sizeof(*L.lat), cmp_u32);
            printf("got %d %llu %llu %u %u %zu\n", done, tot,
                   (unsigned long long)(L.t_last > L.t_first ? L.t_last - L.t_first : 0),
                   L.nlat ? L.lat[L.nlat / 2] : 0, L.nlat ? L.lat[L.nlat * 99 / 100] : 0, L.nlat);
        } else if (sscanf(line, "waitcells %lu %lu", &quiet, &tmo) == 2) {
            uint64_t start = rv_mono_ns();
            while (rv_mono_ns() - start < tmo * 1000000ull) {
                load_pump(&L, 5);
                if (L.t_last && rv_mono_ns() - L.t_last > quiet * 1000000ull)
                    break;
            }
            qsort(L.lat, L.nlat, sizeof(*L.lat), cmp_u32);
            printf("cells %lu %llu %u %u\n", L.cells_since,
                   (unsigned long long)(L.t_last > L.t_first ? L.t_last - L.t_first : 0),
                   L.nlat ? L.lat[L.nlat / 2] : 0, L.nlat ? L.lat[L.nlat * 99 / 100] : 0);
        } else {
            printf("err unknown command\n");
        }
        fflush(stdout);
    }
    for (int i = 0; i < L.n; i++)
        if (L.c[i].fd >= 0)
            close(L.c[i].fd);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rv_log_set_level(RV_LOG_WARN);
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    /* many connections: raise the descriptor limit as far as allowed */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        struct rlimit want = {65536, 65536};
        if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (argc > 1 && strcmp(argv[1], "rawlws") == 0)
        return rawlws(argc > 2 && strcmp(argv[2], "--batch") == 0);
    if (argc > 1 && strcmp(argv[1], "load") == 0)
        return load(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return rv_token_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: bench_fanout serve --data DIR [options] | rawlws [--batch] | load --port P --clients N [--snapshot 1] | token ...\n");
    return 2;
}

/*
 * gateway: the partner ingest socket. One thread owns the ROUTER; batches
 * are parsed there, handed to the writer, and acked when the writer's
 * done() callback (on the writer thread) has put them on our done list and
 * poked our eventfd. A ZAP thread authenticates CURVE partners.
 *
 * Backpressure: when the writer's queue is full, the gateway stops polling
 * the ROUTER for input; partners then block on their HWM. Nothing taken is
 * dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "rv/batch.h"
#include "rv/ingest.h"
#include "rv/log.h"

#define ZAP_EP "inproc://zeromq.zap.01"
/* A draft option in libzmq 4.3's headers; the library knows it. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif
#define ZAP_DOMAIN "rightsview"
#define ID_MAX 256

struct gw_err {
    size_t line;
    char msg[RV_ERRBUF_SIZE];
};

/* One partner batch in flight. Owned by the gateway thread except while
 * queued in the writer (then the writer reads evs and fills res). */
struct gw_batch {
    struct rv_write_req req;
    struct rv_gateway *gw;
    unsigned char rid[ID_MAX];
    size_t rid_len;
    unsigned char bid[ID_MAX];
    size_t bid_len;
    char source[RV_SOURCE_MAX + 1];
    struct rv_event *evs;
    size_t n, cap;
    size_t *lines; /* payload line of each event */
    struct rv_put_result *res;
    struct gw_err *errs;
    size_t nerr, nerr_cap, rejected;
    struct gw_batch *next; /* done list */
};

struct rv_gateway {
    void *zctx;
    struct rv_writer *w;
    struct rv_gateway_opts o;
    struct rv_metrics *m;
    char endpoint[256];
    char bound[256];
    struct rv_partner *partners;
    size_t npartners;
    char server_secret[41];
    bool curve;
    int efd;                    /* eventfd: writer -> gateway wakeup */
    pthread_t thread, zap_thread;
    bool zap_running;
    _Atomic bool stop;
    pthread_mutex_t lock;       /* guards done */
    struct gw_batch *done;
    /* start handshake */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    int start_rc;               /* -100 while starting */
    struct rv_errbuf start_err;
    rv_metric *m_batches, *m_inflight;
};

void rv_gateway_opts_default(struct rv_gateway_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->endpoint = "tcp://127.0.0.1:7701";
    o->max_msg_bytes = 16u << 20;
    o->max_batch_events = 100000;
    o->max_reply_errors = 1000;
}

/* ------------------------------------------------------ key files */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

int rv_key_load(const char *file, char *z85, struct rv_errbuf *err)
{
    FILE *f = fopen(file, "r");
    char line[128];
    unsigned char raw[32];
    size_t n;

    if (!f)
        return rv_err_set(err, errno == ENOENT ? RV_ENOTFOUND : RV_EIO, "key: cannot open '%s': %s",
                          file, strerror(errno));
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return rv_err_set(err, RV_EINVAL, "key: '%s' is empty", file);
    }
    fclose(f);
    n = strcspn(line, "\r\n \t");
    line[n] = '\0';
    if (n != 40 || !zmq_z85_decode(raw, line))
        return rv_err_set(err, RV_EINVAL, "key: '%s' does not hold a 40-character Z85 key", file);
    memcpy(z85, line, 41);
    return RV_OK;
}

int rv_partners_load(const char *file, struct rv_partner **out, size_t *np, struct rv_errbuf *err)
{
    FILE *f = fopen(file, "r");
    char line[512];
    struct rv_partner *v = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    int rc = RV_OK;

    if (!f)
        return rv_err_set(err, errno == ENOENT ? RV_ENOTFOUND : RV_EIO,
                          "partners: cannot open '%s': %s", file, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        char name[128], key[128], extra[8];
        int k;
        lineno++;
        if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
            continue;
        k = sscanf(line, "%127s %127s %7s", name, key, extra);
        if (k != 2) {
            rc = rv_err_set(err, RV_EINVAL, "partners:%zu: expected 'NAME PUBLIC_KEY_Z85'", lineno);
            goto fail;
        }
        if (!valid_name(name)) {
            rc = rv_err_set(err, RV_EINVAL,
                            "partners:%zu: name '%.40s' must be 1..64 of A-Z a-z 0-9 . _ -", lineno,
                            name);
            goto fail;
        }
        if (n == cap) {
            struct rv_partner *nv;
            cap = cap ? cap * 2 : 16;
            nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                rc = rv_err_set(err, RV_ENOMEM, "partners: out of memory");
                goto fail;
            }
            v = nv;
        }
        if (strlen(key) != 40 || !zmq_z85_decode(v[n].pub, key)) {
            rc = rv_err_set(err, RV_EINVAL, "partners:%zu: '%.48s' is not a Z85 public key", lineno,
                            key);
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i].name, name) == 0 || memcmp(v[i].pub, v[n].pub, 32) == 0) {
                rc = rv_err_set(err, RV_EINVAL, "partners:%zu: duplicate name or key '%s'", lineno,
                                name);
                goto fail;
            }
        }
        snprintf(v[n].name, sizeof(v[n].name), "%.64s", name); /* valid_name: <= 64 */
        memcpy(v[n].pub_z85, key, 41);
        n++;
    }
    fclose(f);
    *out = v;
    *np = n;
    return RV_OK;
fail:
    fclose(f);
    free(v);
    return rc;
}

bool rv_endpoint_is_loopback(const char *ep)
{
    const char *host;
    char h[256];
    size_t n;

    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    host = ep + 6;
    if (host[0] == '[') { /* [::1]:port */
        const char *e = strchr(host, ']');
        if (!e)
            return false;
        n = (size_t)(e - host - 1);
        if (n >= sizeof(h))
            return false;
        memcpy(h, host + 1, n);
        h[n] = '\0';
        return strcmp(h, "::1") == 0;
    }
    n = strcspn(host, ":");
    if (n >= sizeof(h))
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcmp(h, "localhost") == 0)
        return true;
    {
        struct in_addr a;
        if (inet_pton(AF_INET, h, &a) == 1)
            return (ntohl(a.s_addr) >> 24) == 127;
    }
    return false;
}

/* ------------------------------------------------------------ ZAP */

static int send_str(void *s, const char *str, int more)
{
    return zmq_send(s, str, strlen(str), more ? ZMQ_SNDMORE : 0);
}

static void *zap_main(void *arg)
{
    struct rv_gateway *g = arg;
    void *rep = zmq_socket(g->zctx, ZMQ_REP);
    int linger = 0, tmo = 100;

    pthread_setname_np(pthread_self(), "rv-zap"); /* shown by top -H, perf */
    zmq_setsockopt(rep, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(rep, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
    if (zmq_bind(rep, ZAP_EP) != 0) {
        rv_log_error("ingest", "zap bind failed reason=\"%s\"", zmq_strerror(errno));
        zmq_close(rep);
        return NULL;
    }
    /* signal readiness via start_rc handshake done by the caller's poll */
    while (!atomic_load(&g->stop)) {
        zmq_msg_t fr[8];
        int nf = 0, more = 1;
        const char *status = "400", *text = "unknown key", *user = "";
        char req_id[256] = "";
        size_t req_len = 0;

        while (more && nf < 8) {
            zmq_msg_init(&fr[nf]);
            if (zmq_msg_recv(&fr[nf], rep, 0) < 0) {
                zmq_msg_close(&fr[nf]);
                break;
            }
            more = zmq_msg_more(&fr[nf]);
            nf++;
        }
        if (nf == 0)
            continue;
        while (more) { /* drain an over-long request */
            zmq_msg_t x;
            zmq_msg_init(&x);
            if (zmq_msg_recv(&x, rep, 0) < 0) {
                zmq_msg_close(&x);
                break;
            }
            more = zmq_msg_more(&x);
            zmq_msg_close(&x);
        }
        if (nf >= 2) {
            req_len = zmq_msg_size(&fr[1]) < sizeof(req_id) ? zmq_msg_size(&fr[1]) : 0;
            memcpy(req_id, zmq_msg_data(&fr[1]), req_len);
        }
        if (nf >= 7 && zmq_msg_size(&fr[5]) == 5 && memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 &&
            zmq_msg_size(&fr[6]) == 32) {
            for (size_t i = 0; i < g->npartners; i++) {
                if (memcmp(g->partners[i].pub, zmq_msg_data(&fr[6]), 32) == 0) {
                    status = "200";
                    text = "OK";
                    user = g->partners[i].name;
                    break;
                }
            }
            if (status[0] != '2') {
                char z[41];
                zmq_z85_encode(z, zmq_msg_data(&fr[6]), 32);
                rv_log_warn("ingest", "partner refused reason=\"key not in partners file\" key=%s", z);
            }
        } else {
            text = "mechanism not allowed";
        }
        send_str(rep, "1.0", 1);
        zmq_send(rep, req_id, req_len, ZMQ_SNDMORE);
        send_str(rep, status, 1);
        send_str(rep, text, 1);
        send_str(rep, user, 1);
        zmq_send(rep, "", 0, 0);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&fr[i]);
    }
    zmq_close(rep);
    return NULL;
}

/* ------------------------------------------------------ batches */

static void batch_free(struct gw_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        rv_event_release(&b->evs[i]);
    free(b->evs);
    free(b->lines);
    free(b->res);
    free(b->errs);
    free(b);
}

static void count_reason(struct rv_gateway *g, const char *source, const char *field);

/* The metric label for a rejection: the field when it is one of the
 * schema's or a whole-item reason, else "other". A key name taken from the
 * payload (e.g. "kN: duplicate key") must never become a label: a partner
 * could create series without end. */
static const char *reason_label(const char *msg)
{
    static const char *const known[] = {
        "id",     "kind", "country", "violation", "time",  "count", "severity", "confidence",
        "value",  "admin1", "lat",   "lon",       "title", "url",   "attrs",    "json",
        "utf-8",  "event", "batch",  "source",    NULL};
    char field[64];
    rv_err_split(msg, field, sizeof(field));
    if (strncmp(field, "attrs.", 6) == 0)
        return "attrs";
    for (int i = 0; known[i]; i++)
        if (strcmp(field, known[i]) == 0)
            return known[i];
    return "other";
}

static int batch_cb(void *arg, size_t line, struct rv_event *ev, const struct rv_errbuf *err)
{
    struct gw_batch *b = arg;
    if (ev) {
        if (b->n == b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 64;
            struct rv_event *ne = realloc(b->evs, nc * sizeof(*ne));
            size_t *nl;
            if (!ne) {
                rv_event_release(ev);
                return RV_ENOMEM;
            }
            b->evs = ne;
            nl = realloc(b->lines, nc * sizeof(*nl));
            if (!nl) {
                rv_event_release(ev);
                return RV_ENOMEM;
            }
            b->lines = nl;
            b->cap = nc;
        }
        b->evs[b->n] = *ev;
        b->lines[b->n] = line;
        b->n++;
        return 0;
    }
    b->rejected++;
    count_reason(b->gw, b->source, reason_label(err->msg)); /* every one, listed or not */
    if (b->nerr < b->gw->o.max_reply_errors) {
        if (b->nerr == b->nerr_cap) {
            size_t nc = b->nerr_cap ? b->nerr_cap * 2 : 16;
            struct gw_err *ne = realloc(b->errs, nc * sizeof(*ne));
            if (!ne)
                return 0; /* still counted as rejected */
            b->errs = ne;
            b->nerr_cap = nc;
        }
        b->errs[b->nerr].line = line;
        snprintf(b->errs[b->nerr].msg, sizeof(b->errs[0].msg), "%s", err->msg);
        b->nerr++;
    }
    return 0;
}

static void count(struct rv_gateway *g, const char *source, const char *outcome, uint64_t n)
{
    char labels[160];
    if (!g->m || n == 0)
        return;
    snprintf(labels, sizeof(labels), "source=\"%s\",outcome=\"%s\"", source, outcome);
    rv_metric_add(rv_metrics_counter(g->m, "rv_ingest_events_total", labels,
                                     "events received from partners by outcome"),
                  n);
}

static void count_reason(struct rv_gateway *g, const char *source, const char *field)
{
    char labels[200];
    if (!g->m)
        return;
    snprintf(labels, sizeof(labels), "source=\"%s\",reason=\"%s\"", source, field);
    rv_metric_add(rv_metrics_counter(g->m, "rv_ingest_rejected_total", labels,
                                     "events rejected, by source and field"),
                  1);
}

static void send_reply(struct rv_gateway *g, void *router, struct gw_batch *b, int rc)
{
    cJSON *o = cJSON_CreateObject(), *errs;
    size_t acc = 0, dup = 0;
    char *txt;

    if (rc == RV_OK) {
        for (size_t i = 0; i < b->n; i++) {
            if (b->res[i].outcome == RV_OUT_ACCEPTED)
                acc++;
            else
                dup++;
        }
        cJSON_AddNumberToObject(o, "accepted", (double)acc);
        cJSON_AddNumberToObject(o, "duplicates", (double)dup);
        cJSON_AddNumberToObject(o, "rejected", (double)b->rejected);
        errs = cJSON_AddArrayToObject(o, "errors");
        for (size_t i = 0; i < b->nerr; i++) {
            char field[64];
            const char *reason = rv_err_split(b->errs[i].msg, field, sizeof(field));
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "line", (double)b->errs[i].line);
            cJSON_AddStringToObject(e, "field", field);
            cJSON_AddStringToObject(e, "reason", reason);
            cJSON_AddItemToArray(errs, e);
        }
        if (b->rejected > b->nerr)
            cJSON_AddBoolToObject(o, "errors_truncated", 1);
        count(g, b->source, "accepted", acc);
        count(g, b->source, "duplicate", dup);
    } else {
        /* not committed: the partner must retry (same ids, so it is safe) */
        cJSON_AddStringToObject(o, "error", b->req.err.msg[0] ? b->req.err.msg : rv_strerror(rc));
        cJSON_AddBoolToObject(o, "retry", 1);
    }
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt) {
        /* a full or gone peer: ROUTER drops; the partner times out and retries */
        zmq_send(router, b->rid, b->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(router, b->bid, b->bid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(router, txt, strlen(txt), ZMQ_DONTWAIT);
        free(txt);
    }
    rv_log_debug("ingest", "batch acked source=%s accepted=%zu duplicates=%zu rejected=%zu",
                 b->source, acc, dup, b->rejected);
}

static void on_done(struct rv_write_req *req, void *arg)
{
    struct gw_batch *b = arg;
    struct rv_gateway *g = b->gw;
    uint64_t one = 1;
    bool was_empty;
    (void)req;
    pthread_mutex_lock(&g->lock);
    was_empty = g->done == NULL;
    b->next = g->done;
    g->done = b;
    pthread_mutex_unlock(&g->lock);
    /* one wakeup per non-empty list, not per batch: drain_done reads the
     * eventfd before it takes the list, so a batch added after the take
     * finds the list empty and signals again */
    if (was_empty && write(g->efd, &one, sizeof(one)) < 0) {
        /* eventfd counter overflow is impossible at our rates */
    }
}

/* Acks waiting to be sent (gateway thread). */
static bool has_done(struct rv_gateway *g)
{
    pthread_mutex_lock(&g->lock);
    bool any = g->done != NULL;
    pthread_mutex_unlock(&g->lock);
    return any;
}

static void send_error(void *router, zmq_msg_t *rid, const void *bid, size_t bid_len,
                       const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *txt;
    cJSON_AddStringToObject(o, "error", msg);
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    zmq_send(router, zmq_msg_data(rid), zmq_msg_size(rid), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(router, bid, bid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(router, txt ? txt : "{}", txt ? strlen(txt) : 2, ZMQ_DONTWAIT);
    free(txt);
}

/* Reads one multipart message and turns it into a batch. Returns the
 * batch to submit, or NULL (answered or dropped here). */
static struct gw_batch *read_batch(struct rv_gateway *g, void *router)
{
    zmq_msg_t fr[3];
    int nf = 0, more = 1;
    struct gw_batch *b = NULL;
    const char *uid;

    while (more) {
        zmq_msg_t x;
        zmq_msg_t *m = nf < 3 ? &fr[nf] : &x;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (nf >= 3)
            zmq_msg_close(m);
        nf++;
    }
    if (nf == 0)
        return NULL;
    if (nf != 3) {
        if (nf >= 1)
            send_error(router, &fr[0], "", 0,
                       nf < 3 ? "protocol: expected 2 frames [batch-id, payload], got fewer"
                              : "protocol: expected 2 frames [batch-id, payload], got more");
        goto out;
    }
    if (zmq_msg_size(&fr[1]) > ID_MAX) {
        send_error(router, &fr[0], "", 0, "protocol: batch-id longer than 256 bytes");
        goto out;
    }
    b = calloc(1, sizeof(*b));
    if (!b)
        goto out;
    b->gw = g;
    b->rid_len = zmq_msg_size(&fr[0]) < ID_MAX ? zmq_msg_size(&fr[0]) : ID_MAX;
    memcpy(b->rid, zmq_msg_data(&fr[0]), b->rid_len);
    b->bid_len = zmq_msg_size(&fr[1]);
    memcpy(b->bid, zmq_msg_data(&fr[1]), b->bid_len);
    /* the partner's name comes from its key (ZAP User-Id), never from the payload */
    uid = g->curve ? zmq_msg_gets(&fr[2], "User-Id") : NULL;
    if (g->curve && (!uid || !*uid)) {
        send_error(router, &fr[0], b->bid, b->bid_len, "auth: no partner identity");
        batch_free(b);
        b = NULL;
        goto out;
    }
    snprintf(b->source, sizeof(b->source), "%s", uid ? uid : "local");
    {
        struct rv_batch_stats st;
        int rc = rv_batch_parse(zmq_msg_data(&fr[2]), zmq_msg_size(&fr[2]), b->source,
                                g->o.max_batch_events, batch_cb, b, &st);
        if (rc == RV_ENOMEM) {
            send_error(router, &fr[0], b->bid, b->bid_len, "server: out of memory, retry later");
            batch_free(b);
            b = NULL;
            goto out;
        }
        count(g, b->source, "rejected", b->rejected);
        if (st.dropped_fields && g->m) {
            char labels[100];
            snprintf(labels, sizeof(labels), "source=\"%s\"", b->source);
            rv_metric_add(rv_metrics_counter(g->m, "rv_ingest_dropped_fields_total", labels,
                                             "unknown event fields dropped"),
                          st.dropped_fields);
        }
    }
    b->res = calloc(b->n ? b->n : 1, sizeof(*b->res));
    if (!b->res) {
        send_error(router, &fr[0], b->bid, b->bid_len, "server: out of memory, retry later");
        batch_free(b);
        b = NULL;
        goto out;
    }
    b->req.evs = b->evs;
    b->req.n = b->n;
    b->req.res = b->res;
    b->req.done = on_done;
    b->req.arg = b;
    rv_metric_add(g->m_batches, 1);
out:
    for (int i = 0; i < nf && i < 3; i++)
        zmq_msg_close(&fr[i]);
    return b;
}

static size_t drain_done(struct rv_gateway *g, void *router)
{
    struct gw_batch *list;
    uint64_t v;
    size_t n = 0;

    if (read(g->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing pending */
    }
    pthread_mutex_lock(&g->lock);
    list = g->done;
    g->done = NULL;
    pthread_mutex_unlock(&g->lock);
    /* reverse to ack in completion order */
    {
        struct gw_batch *rev = NULL;
        while (list) {
            struct gw_batch *nx = list->next;
            list->next = rev;
            rev = list;
            list = nx;
        }
        list = rev;
    }
    while (list) {
        struct gw_batch *nx = list->next;
        send_reply(g, router, list, list->req.rc);
        batch_free(list);
        list = nx;
        n++;
    }
    return n;
}

static void start_signal(struct rv_gateway *g, int rc)
{
    pthread_mutex_lock(&g->start_lock);
    g->start_rc = rc;
    pthread_cond_signal(&g->start_cond);
    pthread_mutex_unlock(&g->start_lock);
}

static void *gw_main(void *arg)
{
    struct rv_gateway *g = arg;
    void *router = zmq_socket(g->zctx, ZMQ_ROUTER);
    struct gw_batch *pending = NULL; /* taken but the writer queue was full */
    size_t inflight = 0;
    int one = 1, linger = 2000, hwm = 1000;
    int64_t maxmsg = (int64_t)g->o.max_msg_bytes;
    size_t len = sizeof(g->bound);

    pthread_setname_np(pthread_self(), "rv-gateway"); /* shown by top -H, perf */
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    if (g->curve) {
        zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof(one));
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, g->server_secret, 40);
        zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN));
        /* without it a missing ZAP handler silently lets everyone in; our
         * handler is bound before this socket, and this makes sure */
        if (zmq_setsockopt(router, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one)) != 0)
            rv_log_warn("ingest", "ZMQ_ZAP_ENFORCE_DOMAIN not supported reason=\"%s\"",
                        zmq_strerror(errno));
    }
    if (zmq_bind(router, g->endpoint) != 0) {
        rv_err_set(&g->start_err, RV_EIO, "ingest: cannot bind '%s': %s", g->endpoint,
                   zmq_strerror(errno));
        zmq_close(router);
        start_signal(g, RV_EIO);
        return NULL;
    }
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, g->bound, &len);
    rv_log_info("ingest", "listening endpoint=%s mechanism=%s partners=%zu", g->bound,
                g->curve ? "curve" : "null", g->npartners);
    start_signal(g, RV_OK);

    for (;;) {
        zmq_pollitem_t items[2] = {{router, 0, ZMQ_POLLIN, 0}, {NULL, g->efd, ZMQ_POLLIN, 0}};
        bool stopping = atomic_load(&g->stop);
        int timeout = 100;

        if (stopping && !pending && inflight == 0)
            break;
        if (pending || stopping)
            items[0].events = 0; /* backpressure, or no new input while stopping */
        if (pending)
            timeout = 2;
        if (zmq_poll(items, 2, timeout) < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            inflight -= drain_done(g, router);
        if (pending) {
            int rc = rv_writer_submit(g->w, &pending->req);
            if (rc == RV_OK) {
                pending = NULL;
                inflight++;
            } else if (rc != RV_EAGAIN) {
                pending->req.rc = rc;
                rv_err_set(&pending->req.err, rc, "server: shutting down, retry later");
                send_reply(g, router, pending, rc);
                batch_free(pending);
                pending = NULL;
            }
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            /* take up to a handful per wakeup, then look at acks again */
            for (int k = 0; k < 64 && !pending; k++) {
                struct gw_batch *b = read_batch(g, router);
                int rc;
                if (!b) {
                    int ev = 0;
                    size_t el = sizeof(ev);
                    zmq_getsockopt(router, ZMQ_EVENTS, &ev, &el);
                    if (!(ev & ZMQ_POLLIN))
                        break;
                    continue;
                }
                if (b->n == 0) { /* nothing to write: answer now */
                    send_reply(g, router, b, RV_OK);
                    batch_free(b);
                    continue;
                }
                rc = rv_writer_submit(g->w, &b->req);
                if (rc == RV_OK) {
                    inflight++;
                    /* acks first: a partner waiting for one sends nothing
                     * more, and parsing 64 batches takes milliseconds */
                    if (has_done(g))
                        inflight -= drain_done(g, router);
                } else if (rc == RV_EAGAIN) {
                    pending = b;
                } else {
                    rv_err_set(&b->req.err, rc, "server: shutting down, retry later");
                    send_reply(g, router, b, rc);
                    batch_free(b);
                }
            }
        }
        rv_metric_set(g->m_inflight, (int64_t)inflight);
    }
    zmq_close(router);
    return NULL;
}

int rv_gateway_start(void *zctx, struct rv_writer *w, const struct rv_gateway_opts *opts,
                     struct rv_metrics *m, struct rv_gateway **out, struct rv_errbuf *err)
{
    struct rv_gateway *g = calloc(1, sizeof(*g));
    int rc;

    if (!g)
        return rv_err_set(err, RV_ENOMEM, "ingest: out of memory");
    if (opts)
        g->o = *opts;
    else
        rv_gateway_opts_default(&g->o);
    if (!g->o.endpoint || !*g->o.endpoint)
        g->o.endpoint = "tcp://127.0.0.1:7701";
    if (!g->o.max_msg_bytes)
        g->o.max_msg_bytes = 16u << 20;
    if (!g->o.max_batch_events)
        g->o.max_batch_events = 100000;
    if (!g->o.max_reply_errors)
        g->o.max_reply_errors = 1000;
    snprintf(g->endpoint, sizeof(g->endpoint), "%s", g->o.endpoint);
    g->zctx = zctx;
    g->w = w;
    g->m = m;
    g->efd = -1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_mutex_init(&g->start_lock, NULL);
    pthread_cond_init(&g->start_cond, NULL);

    if (g->o.partners_file && *g->o.partners_file) {
        if ((rc = rv_partners_load(g->o.partners_file, &g->partners, &g->npartners, err)))
            goto fail;
        if (!g->o.server_key_file || !*g->o.server_key_file) {
            rc = rv_err_set(err, RV_EINVAL,
                            "ingest: --partners needs --server-key (create one with 'rvctl keygen server')");
            goto fail;
        }
        if ((rc = rv_key_load(g->o.server_key_file, g->server_secret, err)))
            goto fail;
        g->curve = true;
    } else if (!rv_endpoint_is_loopback(g->endpoint)) {
        rc = rv_err_set(err, RV_EPERM,
                        "ingest: refusing to listen on '%s' without --partners: plain "
                        "connections are allowed on loopback only",
                        g->endpoint);
        goto fail;
    }
    g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->efd < 0) {
        rc = rv_err_set(err, RV_EIO, "ingest: eventfd: %s", strerror(errno));
        goto fail;
    }
    g->m_batches = rv_metrics_counter(m, "rv_ingest_batches_total", "", "partner batches received");
    g->m_inflight = rv_metrics_gauge(m, "rv_ingest_batches_inflight", "",
                                     "partner batches waiting for their commit");
    if (g->curve) {
        if (pthread_create(&g->zap_thread, NULL, zap_main, g) != 0) {
            rc = rv_err_set(err, RV_EIO, "ingest: cannot start the ZAP thread");
            goto fail;
        }
        g->zap_running = true;
        /* the ZAP handler must be bound before a partner connects; the bind
         * happens at once in the thread, give it a moment */
        for (int i = 0; i < 100; i++) {
            void *probe = zmq_socket(zctx, ZMQ_REQ);
            int lg = 0, ok;
            zmq_setsockopt(probe, ZMQ_LINGER, &lg, sizeof(lg));
            ok = zmq_connect(probe, ZAP_EP) == 0;
            zmq_close(probe);
            if (ok)
                break;
            usleep(1000);
        }
    }
    g->start_rc = -100;
    if (pthread_create(&g->thread, NULL, gw_main, g) != 0) {
        rc = rv_err_set(err, RV_EIO, "ingest: cannot start the gateway thread");
        goto fail;
    }
    pthread_mutex_lock(&g->start_lock);
    while (g->start_rc == -100)
        pthread_cond_wait(&g->start_cond, &g->start_lock);
    rc = g->start_rc;
    pthread_mutex_unlock(&g->start_lock);
    if (rc) {
        pthread_join(g->thread, NULL);
        if (err)
            *err = g->start_err;
        goto fail;
    }
    *out = g;
    return RV_OK;
fail:
    atomic_store(&g->stop, true);
    if (g->zap_running)
        pthread_join(g->zap_thread, NULL);
    if (g->efd >= 0)
        close(g->efd);
    free(g->partners);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->start_lock);
    pthread_cond_destroy(&g->start_cond);
    free(g);
    return rc;
}

const char *rv_gateway_endpoint(const struct rv_gateway *g)
{
    return g->bound;
}

void rv_gateway_stop(struct rv_gateway **gp)
{
    struct rv_gateway *g = gp ? *gp : NULL;
    if (!g)
        return;
    atomic_store(&g->stop, true);
    pthread_join(g->thread, NULL);
    if (g->zap_running)
        pthread_join(g->zap_thread, NULL);
    close(g->efd);
    free(g->partners);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->start_lock);
    pthread_cond_destroy(&g->start_cond);
    memset(g->server_secret, 0, sizeof(g->server_secret));
    free(g);
    *gp = NULL;
}

/*
 * ws: lifecycle of the libwebsockets server, the hand-over from the
 * aggregator's PUB socket, the alert/cell hub and the rv.v1 protocol
 * (docs/protocol.md).
 *
 * Flow: the SUB thread receives ["alert"|"cell", JSON] and queues it
 * under ws->lock, then lws_cancel_service(). On the lws thread,
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED drains the queue: an alert makes the
 * hub read the store's `alerts` db past the last seq it holds (so the
 * ring is exactly the store's sequence, whatever ZeroMQ dropped), a cell
 * replaces the latest state of its country x violation x resolution and
 * marks it dirty for the sessions that want it. A timer also reads the
 * store every poll_ms, so an alert never announced is still delivered.
 *
 * Each session keeps one cursor: every alert with seq <= cursor was sent
 * or filtered out. On writable it sends, in this order: the snapshot (a
 * fragment), a control message, else the next matching alerts (from the
 * ring, or from the store when the cursor fell behind the ring: "resync")
 * and then the dirty cells (coalesced: the latest state wins). Alerts and
 * cells go several to a write when no extension is active: complete
 * frames back to back in one per-thread buffer of WS_BATCH bytes, written
 * raw. So per-session memory is bounded and a stalled client never delays
 * others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "rv/config.h"
#include "rv/country.h"
#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/timeutil.h"

#include "ws_int.h"

#define MOD "ws"

/* ------------------------------------------------------------ buffers */

void ws_buf_reserve_pre(struct ws_buf *b)
{
    static const char zero[LWS_PRE];
    ws_buf_add(b, zero, LWS_PRE);
}

void ws_buf_add(struct ws_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ws_buf_str(struct ws_buf *b, const char *s)
{
    ws_buf_add(b, s, strlen(s));
}

void ws_buf_printf(struct ws_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        ws_buf_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ws_buf_add(b, big, (size_t)n);
    free(big);
}

void ws_buf_json_str(struct ws_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    ws_buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ws_buf_add(b, run, (size_t)(s - run));
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            esc[2] = 0;
        }
        ws_buf_str(b, esc);
        run = s + 1;
    }
    ws_buf_add(b, run, (size_t)(s - run));
    ws_buf_add(b, "\"", 1);
}

void ws_buf_free(struct ws_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void ws_msg_free(struct ws_msg *m)
{
    free(m->buf);
    m->buf = NULL;
    m->len = 0;
}

int ws_msg_make(struct ws_msg *m, const char *text, size_t len)
{
    m->buf = malloc(LWS_PRE + len + 1);
    if (!m->buf)
        return RV_ENOMEM;
    memcpy(m->buf + LWS_PRE, text, len);
    m->buf[LWS_PRE + len] = 0;
    m->len = len;
    return RV_OK;
}

/* {"type":"T", + the members of the object JSON. */
static int msg_with_type(struct ws_msg *m, const char *type, const char *json, size_t len)
{
    struct ws_buf b = {0};
    size_t i = 0;

    while (i < len && (json[i] == ' ' || json[i] == '\n' || json[i] == '\t' || json[i] == '\r'))
        i++;
    if (i >= len || json[i] != '{')
        return RV_EINVAL;
    i++;
    size_t j = i;
    while (j < len && (json[j] == ' ' || json[j] == '\n' || json[j] == '\t' || json[j] == '\r'))
        j++;
    ws_buf_reserve_pre(&b);
    ws_buf_printf(&b, "{\"type\":\"%s\"", type);
    if (j < len && json[j] != '}')
        ws_buf_add(&b, ",", 1);
    ws_buf_add(&b, json + i, len - i);
    if (b.oom) {
        ws_buf_free(&b);
        return RV_ENOMEM;
    }
    m->buf = (unsigned char *)b.p;
    m->len = b.len - LWS_PRE;
    return RV_OK;
}

/* ------------------------------------------------------------ names */

int ws_country_index(const struct rv_ws *ws, const char *cc)
{
    if (!cc || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' || cc[2])
        return -1;
    return ws->cidx[(cc[0] - 'A') * 26 + (cc[1] - 'A')];
}

int ws_level_from_name(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "watch") == 0)
        return WS_LVL_WATCH;
    if (strcmp(s, "warning") == 0)
        return WS_LVL_WARNING;
    if (strcmp(s, "critical") == 0)
        return WS_LVL_CRITICAL;
    return -1;
}

/* Slot of resolution NAME ("1h", "5m": digits then s/m/h/d), taken when
 * new and FROM_CELL. -1: not a resolution; -2: no slot (every slot is
 * taken by another one, or a subscriber asked for one no cell has: only
 * the aggregator's cells register resolutions). */
static int res_slot(struct rv_ws *ws, const char *name, bool from_cell)
{
    size_t n = name ? strlen(name) : 0, i = 0;

    while (i < n && name[i] >= '0' && name[i] <= '9')
        i++;
    if (i == 0 || i + 1 != n || n >= sizeof(ws->res_names[0]) || !strchr("smhd", name[i]))
        return -1;
    for (int k = 0; k < ws->n_res; k++)
        if (strcmp(ws->res_names[k], name) == 0)
            return k;
    if (!from_cell || ws->n_res >= WS_RES_SLOTS)
        return -2;
    memcpy(ws->res_names[ws->n_res], name, n + 1);
    return ws->n_res++;
}

static int state_from_name(const char *s)
{
    static const char *const names[] = {"opened", "escalated", "deescalated", "resolved"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* ------------------------------------------------------------ options */

void rv_ws_opts_default(struct rv_ws_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->http = "127.0.0.1:8080";
#ifdef RV_WEB_ROOT
    o->web_root = RV_WEB_ROOT;
#else
    o->web_root = "web/dist";
#endif
    o->updates = RV_EP_UPDATES;
    o->deflate = false;
    o->max_conns = 20000;
    o->max_msg = 16384;
    o->alert_ring = 4096;
    o->max_queue = 65536;
    o->ping_s = 30;
    o->idle_s = 75;
    o->sub_burst = 20;
    o->sub_per_s = 2;
    o->poll_ms = 500;
    o->sub_timeout_s = 10;
    o->max_unauth = 0;
    o->token_check_s = 5;
}

static int cfg_str(const cJSON *sec, const char *key, const char **out, struct rv_errbuf *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(sec, key);
    if (!j)
        return RV_OK;
    if (cJSON_IsNull(j)) {
        *out = NULL;
        return RV_OK;
    }
    if (!cJSON_IsString(j))
        return rv_err_set(err, RV_EINVAL, "ws.%s: must be a string", key);
    *out = j->valuestring;
    return RV_OK;
}

static int cfg_uint(const cJSON *sec, const char *key, int64_t min, int64_t max, int64_t cur,
                    int64_t *out, struct rv_errbuf *err)
{
    return rv_cfg_int(sec, "ws", key, cur, min, max, out, err);
}

int rv_ws_opts_from_config(struct rv_ws_opts *o, const cJSON *sec, struct rv_errbuf *err)
{
    static const char *const keys[] = {
        "http",    "web_root",  "tls_cert", "tls_key",   "updates", "origins",
        "deflate", "max_conns", "max_msg",  "alert_ring", "max_queue", "ping_s",
        "idle_s",  "sub_burst", "sub_per_s", "poll_ms",   "sub_timeout_s", "max_unauth",
        "token_check_s", NULL};
    const cJSON *it;
    int64_t v;
    int rc;

    if (!sec)
        return RV_OK;
    if (!cJSON_IsObject(sec))
        return rv_err_set(err, RV_EINVAL, "ws: must be an object");
    cJSON_ArrayForEach(it, sec)
    {
        size_t i;
        for (i = 0; keys[i]; i++)
            if (it->string && strcmp(it->string, keys[i]) == 0)
                break;
        if (!keys[i]) {
            const char *near = rv_cfg_closest(it->string, keys, 0);
            if (near)
                return rv_err_set(err, RV_EINVAL, "ws.%.64s: unknown key (did you mean '%s'?)",
                                  it->string ? it->string : "", near);
            return rv_err_set(err, RV_EINVAL,
                              "ws.%.64s: unknown key (the ws keys: include/rv/ws.h)",
                              it->string ? it->string : "");
        }
    }
    if ((rc = cfg_str(sec, "http", &o->http, err)) || (rc = cfg_str(sec, "web_root", &o->web_root, err)) ||
        (rc = cfg_str(sec, "tls_cert", &o->tls_cert, err)) ||
        (rc = cfg_str(sec, "tls_key", &o->tls_key, err)) ||
        (rc = cfg_str(sec, "updates", &o->updates, err)))
        return rc;
    if (!o->http)
        return rv_err_set(err, RV_EINVAL, "ws.http: must be a string");
    it = cJSON_GetObjectItemCaseSensitive(sec, "origins");
    if (it) {
        const cJSON *e;
        if (!cJSON_IsArray(it))
            return rv_err_set(err, RV_EINVAL, "ws.origins: must be an array of strings");
        if (cJSON_GetArraySize(it) > RV_WS_MAX_ORIGINS)
            return rv_err_set(err, RV_EINVAL, "ws.origins: at most %d entries", RV_WS_MAX_ORIGINS);
        o->n_origins = 0;
        cJSON_ArrayForEach(e, it)
        {
            if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= 256)
                return rv_err_set(err, RV_EINVAL, "ws.origins: must be an array of strings");
            o->origins[o->n_origins++] = e->valuestring;
        }
    }
    bool b = o->deflate;
    if ((rc = rv_cfg_bool(sec, "ws", "deflate", o->deflate, &b, err)))
        return rc;
    o->deflate = b;
#define U(key, min, max, field)                                                                    \
    do {                                                                                           \
        if ((rc = cfg_uint(sec, key, min, max, (int64_t)o->field, &v, err)))                       \
            return rc;                                                                             \
        o->field = (__typeof__(o->field))v;                                                        \
    } while (0)
    U("max_conns", 1, 1000000, max_conns);
    U("max_msg", 256, 1048576, max_msg);
    U("alert_ring", 1, 1000000, alert_ring);
    U("max_queue", 16, 10000000, max_queue);
    U("ping_s", 1, 3600, ping_s);
    U("idle_s", 2, 7200, idle_s);
    U("sub_burst", 1, 100000, sub_burst);
    U("sub_per_s", 1, 100000, sub_per_s);
    U("poll_ms", 10, 60000, poll_ms);
    U("sub_timeout_s", 1, 3600, sub_timeout_s);
    U("max_unauth", 0, 1000000, max_unauth);
    U("token_check_s", 1, 3600, token_check_s);
#undef U
    return RV_OK;
}

/* "HOST:PORT" or "[V6]:PORT" into HOST (no brackets) and *port. */
static int parse_http(const char *s, char *host, size_t cap, int *port, struct rv_errbuf *err)
{
    const char *colon, *h = s;
    size_t hl;

    if (!s || !*s)
        return rv_err_set(err, RV_EINVAL, "http: missing");
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            goto bad;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            goto bad;
        hl = (size_t)(colon - s);
    }
    if (hl >= cap)
        goto bad;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return RV_OK;
bad:
    return rv_err_set(err, RV_EINVAL, "http: '%.200s' is not HOST:PORT", s);
}

static bool host_is_loopback(const char *h)
{
    unsigned char a[16];
    if (strcmp(h, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, h, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return memcmp(a, lo, 16) == 0;
    }
    return false;
}

static int copy_str(char *dst, size_t cap, const char *src, const char *field,
                    struct rv_errbuf *err)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return rv_err_set(err, RV_EINVAL, "%s: longer than %zu bytes", field, cap - 1);
    memcpy(dst, src ? src : "", n + 1);
    return RV_OK;
}

/* ------------------------------------------------------------ hub */

static struct ws_alert *ring_at(struct rv_ws *ws, size_t i)
{
    size_t k = ws->ring_head + i; /* ring_head < ring_cap, i <= ring_n <= ring_cap */
    return &ws->ring[k >= ws->ring_cap ? k - ws->ring_cap : k];
}

/* country|violation|admin1 into KEY (WS_KEY_MAX): admin1 whole up to
 * RV_ADMIN1_MAX bytes; a longer one (not from our aggregator) is cut and
 * followed by a hash of all of it, so two never share a key by accident. */
static void alert_key(char key[WS_KEY_MAX], const char *c, const char *v, const char *ad)
{
    size_t al = ad ? strlen(ad) : 0;

    if (al <= RV_ADMIN1_MAX) {
        snprintf(key, WS_KEY_MAX, "%.2s|%.40s|%s", c ? c : "", v ? v : "", ad ? ad : "");
        return;
    }
    uint64_t hsh = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < al; i++)
        hsh = (hsh ^ (unsigned char)ad[i]) * 1099511628211ull;
    snprintf(key, WS_KEY_MAX, "%.2s|%.40s|%.110s#%016llx", c ? c : "", v ? v : "", ad,
             (unsigned long long)hsh);
}

/* Parses a stored alert into A (wire message included). */
static int alert_parse(struct rv_ws *ws, uint64_t seq, const char *json, size_t len,
                       struct ws_alert *a)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    int rc = RV_EINVAL;

    memset(a, 0, sizeof(*a));
    a->seq = seq;
    a->ci = -1;
    a->viol = -1;
    if (!cJSON_IsObject(o))
        goto out;
    const char *c = jstr(o, "country"), *v = jstr(o, "violation"), *ad = jstr(o, "admin1");
    a->ci = (int16_t)ws_country_index(ws, c);
    a->viol = (int8_t)rv_violation_from_name(v ? v : "");
    int l = ws_level_from_name(jstr(o, "level"));
    a->level = (uint8_t)(l < 0 ? WS_LVL_WATCH : l);
    int s = state_from_name(jstr(o, "state"));
    a->state = (uint8_t)(s < 0 ? WS_ST_OPENED : s);
    alert_key(a->key, c, v, ad);
    rc = msg_with_type(&a->m, "alert", json, len);
out:
    cJSON_Delete(o);
    return rc;
}

static void open_update(struct rv_ws *ws, const struct ws_alert *a)
{
    size_t i;

    for (i = 0; i < ws->open_n; i++)
        if (strcmp(ws->open[i].key, a->key) == 0)
            break;
    if (a->state == WS_ST_RESOLVED) {
        if (i < ws->open_n) {
            ws_msg_free(&ws->open[i].m);
            ws->open[i] = ws->open[--ws->open_n];
        }
        return;
    }
    struct ws_alert copy = *a;
    if (ws_msg_make(&copy.m, (const char *)a->m.buf + LWS_PRE, a->m.len))
        return;
    if (i < ws->open_n) {
        ws_msg_free(&ws->open[i].m);
        ws->open[i] = copy;
        return;
    }
    if (ws->open_n == ws->open_cap) {
        size_t cap = ws->open_cap ? ws->open_cap * 2 : 64;
        struct ws_alert *p = realloc(ws->open, cap * sizeof(*p));
        if (!p) {
            ws_msg_free(&copy.m);
            return;
        }
        ws->open = p;
        ws->open_cap = cap;
    }
    ws->open[ws->open_n++] = copy;
}

/* Appends alert SEQ (> ws->last) to the ring and the open table. */
static void hub_add_alert(struct rv_ws *ws, uint64_t seq, const char *json, size_t len)
{
    struct ws_alert a;

    if (seq <= ws->last)
        return;
    ws->last = seq;
    ws->hub_ver++;
    if (alert_parse(ws, seq, json, len, &a)) {
        atomic_fetch_add(&ws->c_bad_updates, 1);
        rv_log_warn(MOD, "unreadable alert seq=%llu", (unsigned long long)seq);
        ws_msg_free(&a.m);
        /* keep the ring's promise: nothing in (base, last] is missing */
        if (ws->ring_n == 0)
            ws->base = seq;
        else {
            struct ws_alert ph = {.seq = seq, .ci = -2, .viol = -2};
            a = ph;
            goto push;
        }
        return;
    }
    open_update(ws, &a);
push:
    if (ws->ring_n == ws->ring_cap) {
        struct ws_alert *old = ring_at(ws, 0);
        ws->base = old->seq;
        ws_msg_free(&old->m);
        ws->ring_head = (ws->ring_head + 1) % ws->ring_cap;
        ws->ring_n--;
        ws->ring_evicted++;
    }
    *ring_at(ws, ws->ring_n) = a;
    ws->ring_n++;
}

static int pull_cb(void *arg, uint64_t seq, const char *json, size_t len)
{
    hub_add_alert(arg, seq, json, len);
    return 0;
}

/* Reads every alert past ws->last from the store. Returns true if any. */
static bool hub_pull_store(struct rv_ws *ws)
{
    uint64_t before = ws->last;
    struct rv_errbuf err;

    /* no shortcut through rv_store_last_alert_seq: another process (a
     * separate aggregator) may have written; a read txn is cheap */
    if (rv_store_read_alerts(ws->st, ws->last, pull_cb, ws, &err))
        rv_log_warn(MOD, "read alerts failed reason=\"%s\"", err.msg);
    return ws->last != before;
}

static bool cell_match(const struct ws_sess *s, int ci, int viol, int res)
{
    if (!s->subscribed || !s->want_cells)
        return false;
    if (!s->all_countries && !(s->countries[ci / 8] & (1u << (ci % 8))))
        return false;
    if (!(s->viol_mask & (1u << viol)))
        return false;
    return (s->res_mask & (1u << res)) != 0;
}

static void hub_cell(struct rv_ws *ws, const char *json, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    struct ws_msg m = {0};

    if (!cJSON_IsObject(o))
        goto bad;
    int ci = ws_country_index(ws, jstr(o, "country"));
    const char *vn = jstr(o, "violation");
    int viol = rv_violation_from_name(vn ? vn : "");
    const char *rn = jstr(o, "res");
    int res = res_slot(ws, rn ? rn : "1h", true);
    if (ci < 0 || viol < 0 || res < 0)
        goto bad;
    if (msg_with_type(&m, "cell", json, len))
        goto bad;
    size_t idx = ((size_t)ci * RV_VIOLATION_COUNT + (size_t)viol) * WS_RES_SLOTS + (size_t)res;
    ws_msg_free(&ws->cells[idx]);
    ws->cells[idx] = m;
    ws->hub_ver++;
    for (struct ws_sess *s = ws->sessions; s; s = s->next) {
        if (s->snap_pending || !cell_match(s, ci, viol, res))
            continue;
        uint64_t bit = 1ull << (idx % 64);
        if (!(s->dirty[idx / 64] & bit)) {
            s->dirty[idx / 64] |= bit;
            s->n_dirty++;
        }
        lws_callback_on_writable(s->wsi);
    }
    cJSON_Delete(o);
    return;
bad:
    atomic_fetch_add(&ws->c_bad_updates, 1);
    cJSON_Delete(o);
}

static uint64_t json_seq(const char *json, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, "seq");
    uint64_t v = cJSON_IsNumber(j) && j->valuedouble >= 1 ? (uint64_t)j->valuedouble : 0;
    cJSON_Delete(o);
    return v;
}

/* lws thread: takes what the SUB thread queued. */
static void hub_drain(struct rv_ws *ws)
{
    struct ws_item *it, *next;
    bool dropped;

    pthread_mutex_lock(&ws->lock);
    it = ws->q_head;
    ws->q_head = ws->q_tail = NULL;
    ws->q_n = 0;
    dropped = ws->q_dropped_alert;
    ws->q_dropped_alert = false;
    pthread_mutex_unlock(&ws->lock);
    atomic_store(&ws->g_qdepth, 0);

    uint64_t before = ws->last;
    if (dropped)
        hub_pull_store(ws);
    for (; it; it = next) {
        next = it->next;
        if (it->is_cell) {
            hub_cell(ws, it->json, it->len);
        } else {
            uint64_t seq = json_seq(it->json, it->len);
            if (seq > ws->last) {
                hub_pull_store(ws);
                /* not in our store (another host's aggregator): take it as published */
                if (seq > ws->last)
                    hub_add_alert(ws, seq, it->json, it->len);
            }
        }
        free(it->json);
        free(it);
    }
    if (ws->last != before)
        lws_callback_on_writable_all_protocol(ws->ctx, &ws->protocols[1]);
}

static void poll_timer(lws_sorted_usec_list_t *sul)
{
    struct rv_ws *ws = lws_container_of(sul, struct rv_ws, poll_sul);

    if (hub_pull_store(ws))
        lws_callback_on_writable_all_protocol(ws->ctx, &ws->protocols[1]);
    lws_sul_schedule(ws->ctx, 0, &ws->poll_sul, poll_timer,
                     (lws_usec_t)ws->o.poll_ms * LWS_US_PER_MS);
}

/* ------------------------------------------------------------ sessions */

static void send_error(struct rv_ws *ws, struct ws_sess *s, const char *reason);
static void chunk_clear(struct ws_sess *s);

/* Tells S why (an error message) and closes it once that is written; it
 * gets nothing else meanwhile. A client that does not read is dropped
 * after 5 s. */
static void sess_close(struct rv_ws *ws, struct ws_sess *s, const char *reason)
{
    if (s->ctl_n == WS_CTL_MAX) /* room for the reason */
        ws_msg_free(&s->ctl[--s->ctl_n]);
    send_error(ws, s, reason);
    s->closing = true;
    s->subscribed = false;
    s->snap_pending = false;
    s->auth = WS_AUTH_NONE;
    chunk_clear(s);
    memset(s->dirty, 0, sizeof(s->dirty));
    s->n_dirty = 0;
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 5);
    lws_callback_on_writable(s->wsi);
}

/* Once a second: sessions that have not subscribed within sub_timeout_s
 * are closed; every token_check_s the tokens are read again and a session
 * whose token was revoked or changed role, or that was let in by the open
 * mode while tokens now exist, is closed. */
static void sess_timer(lws_sorted_usec_list_t *sul)
{
    struct rv_ws *ws = lws_container_of(sul, struct rv_ws, sess_sul);
    uint64_t now = rv_mono_ns(), limit = (uint64_t)ws->o.sub_timeout_s * 1000000000ull;
    bool recheck = now >= ws->next_tok_check_ns;
    struct ws_tok_set ts = {0};
    char why[96];

    if (recheck) {
        ws->next_tok_check_ns = now + (uint64_t)ws->o.token_check_s * 1000000000ull;
        ws_auth_set_load(ws->st, &ts);
        recheck = !ts.oom;
    }
    for (struct ws_sess *s = ws->sessions, *next; s; s = next) {
        next = s->next;
        if (s->closing)
            continue;
        if (!s->authed) {
            if (now - s->t_open_ns >= limit) {
                snprintf(why, sizeof(why), "subscribe: none accepted within %u s",
                         ws->o.sub_timeout_s);
                sess_close(ws, s, why);
            }
        } else if (recheck && s->auth == WS_AUTH_TOKEN) {
            int role = ws_auth_set_role(&ts, s->auth_hash);
            if (role == WS_ROLE_NONE)
                sess_close(ws, s, "token: revoked");
            else if (role != s->role)
                sess_close(ws, s, "token: role changed, connect again");
        } else if (recheck && s->auth == WS_AUTH_OPEN && ts.n) {
            sess_close(ws, s, "token: access tokens are now required");
        }
    }
    ws_auth_set_free(&ts);
    lws_sul_schedule(ws->ctx, 0, &ws->sess_sul, sess_timer, LWS_US_PER_SEC);
}

static bool alert_match(const struct ws_sess *s, const struct ws_alert *a)
{
    if (a->ci == -2) /* placeholder of an unreadable alert */
        return false;
    if (!s->all_countries && (a->ci < 0 || !(s->countries[a->ci / 8] & (1u << (a->ci % 8)))))
        return false;
    if (s->viol_mask != (1u << RV_VIOLATION_COUNT) - 1 &&
        (a->viol < 0 || !(s->viol_mask & (1u << a->viol))))
        return false;
    if (a->level < s->min_level && a->state != WS_ST_DEESCALATED && a->state != WS_ST_RESOLVED)
        return false;
    return true;
}

static void ctl_push(struct rv_ws *ws, struct ws_sess *s, struct ws_buf *b)
{
    if (b->oom || s->ctl_n == WS_CTL_MAX) {
        if (s->ctl_n == WS_CTL_MAX)
            atomic_fetch_add(&ws->c_errors_dropped, 1);
        ws_buf_free(b);
        return;
    }
    s->ctl[s->ctl_n].buf = (unsigned char *)b->p;
    s->ctl[s->ctl_n].len = b->len - LWS_PRE;
    s->ctl_n++;
    memset(b, 0, sizeof(*b));
    lws_callback_on_writable(s->wsi);
}

static void send_error(struct rv_ws *ws, struct ws_sess *s, const char *reason)
{
    struct ws_buf b = {0};

    atomic_fetch_add(&ws->c_errors_sent, 1);
    ws_buf_reserve_pre(&b);
    ws_buf_str(&b, "{\"type\":\"error\",\"reason\":");
    ws_buf_json_str(&b, reason);
    ws_buf_str(&b, "}");
    ctl_push(ws, s, &b);
}

static void chunk_clear(struct ws_sess *s)
{
    for (size_t i = s->chunk_i; i < s->chunk_n; i++)
        ws_msg_free(&s->chunk[i]);
    free(s->chunk);
    free(s->chunk_seq);
    s->chunk = NULL;
    s->chunk_seq = NULL;
    s->chunk_n = s->chunk_i = 0;
}

static void snap_unref(struct ws_snap **sp)
{
    struct ws_snap *sn = *sp;
    if (sn && --sn->refs == 0) {
        free(sn->body);
        free(sn);
    }
    *sp = NULL;
}

static void sess_free(struct ws_sess *s)
{
    snap_unref(&s->shared);
    ws_msg_free(&s->out);
    ws_msg_free(&s->held);
    for (int i = 0; i < s->ctl_n; i++)
        ws_msg_free(&s->ctl[i]);
    s->ctl_n = 0;
    chunk_clear(s);
    free(s->rx);
    s->rx = NULL;
}

struct fill_ctx {
    struct rv_ws *ws;
    struct ws_sess *s;
    size_t scanned;
};

static int fill_cb(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct fill_ctx *f = arg;
    struct ws_sess *s = f->s;
    struct ws_alert a;

    f->scanned++;
    s->chunk_to = seq;
    if (alert_parse(f->ws, seq, json, len, &a) == RV_OK && alert_match(s, &a)) {
        s->chunk[s->chunk_n] = a.m;
        s->chunk_seq[s->chunk_n] = seq;
        s->chunk_n++;
    } else {
        ws_msg_free(&a.m);
    }
    return s->chunk_n == WS_CHUNK_MAX || f->scanned >= WS_CHUNK_SCAN;
}

/* Reads the next alerts past the cursor from the store into the chunk. */
static int chunk_fill(struct rv_ws *ws, struct ws_sess *s)
{
    struct fill_ctx f = {ws, s, 0};
    struct rv_errbuf err;

    s->chunk = calloc(WS_CHUNK_MAX, sizeof(*s->chunk));
    s->chunk_seq = calloc(WS_CHUNK_MAX, sizeof(*s->chunk_seq));
    if (!s->chunk || !s->chunk_seq) {
        chunk_clear(s);
        return RV_ENOMEM;
    }
    s->chunk_n = s->chunk_i = 0;
    s->chunk_to = s->cursor;
    int rc = rv_store_read_alerts(ws->st, s->cursor, fill_cb, &f, &err);
    if (rc) {
        rv_log_warn(MOD, "catch-up read failed reason=\"%s\"", err.msg);
        chunk_clear(s);
        return rc;
    }
    if (f.scanned == 0) {
        /* the store has nothing past the cursor although the ring starts
         * later: alerts were lost before the server saw them */
        chunk_clear(s);
        s->cursor = ws->base;
        return RV_OK;
    }
    return RV_OK;
}

/* Next alert message for S, or NULL. *owned: the caller frees it after
 * writing (a chunk entry); else it belongs to the ring. */
static struct ws_msg *next_alert(struct rv_ws *ws, struct ws_sess *s, struct ws_msg *owned)
{
    for (int guard = 0; guard < 64; guard++) {
        if (s->chunk) {
            if (s->chunk_i < s->chunk_n) {
                *owned = s->chunk[s->chunk_i];
                s->chunk[s->chunk_i].buf = NULL;
                s->cursor = s->chunk_seq[s->chunk_i];
                s->chunk_i++;
                return owned;
            }
            if (s->chunk_to > s->cursor)
                s->cursor = s->chunk_to;
            chunk_clear(s);
        }
        if (s->cursor >= ws->last)
            return NULL;
        if (s->cursor < ws->base) {
            if (s->live) {
                /* fell out of the ring: say so, then serve from the store */
                struct ws_buf b = {0};
                s->live = false;
                atomic_fetch_add(&ws->c_resyncs, 1);
                rv_log_debug(MOD, "resync from_seq=%llu", (unsigned long long)s->cursor);
                ws_buf_reserve_pre(&b);
                ws_buf_printf(&b, "{\"type\":\"resync\",\"from_seq\":%llu}",
                              (unsigned long long)s->cursor);
                if (b.oom) {
                    ws_buf_free(&b);
                    return NULL;
                }
                owned->buf = (unsigned char *)b.p;
                owned->len = b.len - LWS_PRE;
                return owned;
            }
            if (chunk_fill(ws, s))
                return NULL;
            continue;
        }
        s->live = true;
        /* first ring entry with seq > cursor: where the last call left off,
         * else a binary search */
        size_t lo = 0, hi = ws->ring_n;
        if (s->hint >= ws->ring_evicted && s->hint - ws->ring_evicted <= ws->ring_n) {
            size_t i = (size_t)(s->hint - ws->ring_evicted);
            if ((i == 0 || ring_at(ws, i - 1)->seq <= s->cursor) &&
                (i == ws->ring_n || ring_at(ws, i)->seq > s->cursor))
                lo = hi = i;
        }
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ring_at(ws, mid)->seq <= s->cursor)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i < ws->ring_n; i++) {
            struct ws_alert *a = ring_at(ws, i);
            s->cursor = a->seq;
            s->hint = ws->ring_evicted + i + 1;
            if (alert_match(s, a))
                return &a->m;
        }
        s->cursor = ws->last;
        s->hint = ws->ring_evicted + ws->ring_n;
        return NULL;
    }
    return NULL;
}

static bool sess_has_more(struct rv_ws *ws, const struct ws_sess *s)
{
    if (s->closing)
        return true;
    return s->out.buf || s->held.buf || s->shared || s->ctl_n || s->snap_pending ||
           (s->subscribed && (s->chunk || s->cursor < ws->last || s->n_dirty));
}

/* "alerts":[..],"cells":[..]} of what S's filter matches. */
static void snap_body(struct rv_ws *ws, const struct ws_sess *s, struct ws_buf *b)
{
    bool first = true;

    ws_buf_str(b, "\"alerts\":[");
    for (size_t i = 0; i < ws->open_n; i++) {
        const struct ws_alert *a = &ws->open[i];
        if (!alert_match(s, a) || a->level < s->min_level)
            continue;
        if (!first)
            ws_buf_add(b, ",", 1);
        first = false;
        ws_buf_add(b, (const char *)a->m.buf + LWS_PRE, a->m.len);
    }
    ws_buf_str(b, "],\"cells\":[");
    first = true;
    if (s->want_cells) {
        for (size_t idx = 0; idx < WS_NCELL; idx++) {
            const struct ws_msg *m = &ws->cells[idx];
            if (!m->buf)
                continue;
            int res = (int)(idx % WS_RES_SLOTS), viol = (int)(idx / WS_RES_SLOTS % RV_VIOLATION_COUNT);
            int ci = (int)(idx / WS_RES_SLOTS / RV_VIOLATION_COUNT);
            if (!cell_match(s, ci, viol, res))
                continue;
            if (!first)
                ws_buf_add(b, ",", 1);
            first = false;
            ws_buf_add(b, (const char *)m->buf + LWS_PRE, m->len);
        }
    }
    ws_buf_str(b, "]}");
}

static bool sess_unfiltered(const struct ws_sess *s)
{
    return s->all_countries && s->viol_mask == (1u << RV_VIOLATION_COUNT) - 1 &&
           s->min_level == WS_LVL_WATCH && s->res_mask == (1u << WS_RES_SLOTS) - 1 &&
           s->want_cells;
}

/* The shared unfiltered body for the hub's current version (a new reference). */
static struct ws_snap *snap_shared(struct rv_ws *ws)
{
    if (ws->snap && ws->snap->version == ws->hub_ver) {
        ws->snap->refs++;
        return ws->snap;
    }
    snap_unref(&ws->snap);
    struct ws_snap *sn = calloc(1, sizeof(*sn));
    struct ws_sess *all = calloc(1, sizeof(*all));
    struct ws_buf b = {0};
    if (!sn || !all)
        goto oom;
    all->subscribed = all->want_cells = all->all_countries = true;
    all->viol_mask = (1u << RV_VIOLATION_COUNT) - 1;
    all->res_mask = (1u << WS_RES_SLOTS) - 1;
    snap_body(ws, all, &b);
    if (b.oom)
        goto oom;
    free(all);
    sn->body = b.p;
    sn->len = b.len;
    sn->version = ws->hub_ver;
    sn->refs = 2; /* the hub's and the caller's */
    ws->snap = sn;
    return sn;
oom:
    ws_buf_free(&b);
    free(all);
    free(sn);
    return NULL;
}

static int build_snapshot(struct rv_ws *ws, struct ws_sess *s)
{
    struct ws_buf b = {0};

    hub_pull_store(ws);
    ws_buf_reserve_pre(&b);
    ws_buf_printf(&b,
                  "{\"type\":\"snapshot\",\"alert_seq\":%llu,\"epoch\":\"%llu\",\"reset\":%s,"
                  "\"role\":\"%s\",",
                  (unsigned long long)ws->last, (unsigned long long)ws->epoch,
                  s->reset ? "true" : "false", ws_role_name(s->role));
    snap_unref(&s->shared);
    if (sess_unfiltered(s))
        s->shared = snap_shared(ws);
    if (!s->shared)
        snap_body(ws, s, &b);
    memset(s->dirty, 0, sizeof(s->dirty));
    s->n_dirty = 0;
    if (b.oom) {
        ws_buf_free(&b);
        snap_unref(&s->shared);
        return RV_ENOMEM;
    }
    s->out.buf = (unsigned char *)b.p;
    s->out.len = b.len - LWS_PRE;
    s->out_off = 0;
    s->sh_off = 0;
    s->snap_pending = false;
    /* alerts after the snapshot: past SINCE when given, else past the snapshot */
    s->cursor = ws->last;
    if (s->has_since && s->since <= ws->last)
        s->cursor = s->since;
    s->live = s->cursor >= ws->base;
    chunk_clear(s);
    atomic_fetch_add(&ws->c_snapshots, 1);
    return RV_OK;
}

/* Next dirty cell of S, its bit cleared, scanning from word *FROM; NULL
 * when none is left. */
static struct ws_msg *next_cell(struct rv_ws *ws, struct ws_sess *s, size_t *from)
{
    for (; s->n_dirty && *from < WS_CELL_WORDS; (*from)++) {
        uint64_t *w = &s->dirty[*from];
        while (*w && s->n_dirty) {
            int bit = __builtin_ctzll(*w);
            *w &= ~(1ull << bit);
            s->n_dirty--;
            struct ws_msg *m = &ws->cells[*from * 64 + (size_t)bit];
            if (m->buf)
                return m;
        }
    }
    s->n_dirty = 0; /* no bit left (the count follows the bits) */
    return NULL;
}

/* What one writable callback sent, added to the counters once. */
struct ws_tally {
    unsigned alerts, cells, writes;
};

static void tally_add(struct rv_ws *ws, const struct ws_tally *t)
{
    if (t->alerts)
        atomic_fetch_add_explicit(&ws->c_alerts_sent, t->alerts, memory_order_relaxed);
    if (t->cells)
        atomic_fetch_add_explicit(&ws->c_cells_sent, t->cells, memory_order_relaxed);
    if (t->writes)
        atomic_fetch_add_explicit(&ws->c_msg_writes, t->writes, memory_order_relaxed);
}

/* Next message for S after the control queue: the next matching alert
 * (or a resync), else the next dirty cell (latest state); counted in T.
 * *owned as for next_alert; *cell_word: 0 at the start of a callback. */
static struct ws_msg *next_msg(struct rv_ws *ws, struct ws_sess *s, struct ws_msg *owned,
                               size_t *cell_word, struct ws_tally *t)
{
    struct ws_msg *m = next_alert(ws, s, owned);

    if (m) {
        if (m != owned || strncmp((const char *)m->buf + LWS_PRE, "{\"type\":\"resync\"", 16))
            t->alerts++;
        return m;
    }
    m = next_cell(ws, s, cell_word);
    if (m)
        t->cells++;
    return m;
}

/* Whether S's messages may go out several to a write, as raw bytes of
 * complete frames: only when no extension transforms the payload
 * (permessage-deflate) and the connection has its own socket (not a
 * stream inside HTTP/2). */
static bool sess_batchable(const struct ws_sess *s)
{
    return !s->ext && lws_get_network_wsi(s->wsi) == s->wsi;
}

/* Appends M to the batch (USED bytes so far) as one complete text frame:
 * FIN + opcode, the length in 7, 16 or 64 bits, the payload (a server's
 * frames are not masked). False when it does not fit in what is left. */
static bool batch_add(struct rv_ws *ws, size_t *used, const struct ws_msg *m)
{
    size_t n = m->len, h = n < 126 ? 2 : n < 65536 ? 4 : 10;
    unsigned char *p = ws->batch + *used;

    if (h + n > WS_BATCH - *used)
        return false;
    p[0] = 0x81;
    if (n < 126) {
        p[1] = (unsigned char)n;
    } else if (n < 65536) {
        p[1] = 126;
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
    } else {
        p[1] = 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(p + h, m->buf + LWS_PRE, n);
    *used += h + n;
    return true;
}

/* Writes the batch as raw bytes: lws sends them as they are, and keeps
 * what the socket does not take in its own buffer, sent before anything
 * else on this connection (its pings and closes included). */
static int batch_write(struct rv_ws *ws, struct ws_sess *s, size_t used, struct ws_tally *t)
{
    t->writes++;
    return lws_write(s->wsi, ws->batch, used, LWS_WRITE_RAW) < (int)used ? -1 : 0;
}

static int write_msg(struct lws *wsi, const struct ws_msg *m)
{
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    return n < (int)m->len ? -1 : 0;
}

static int sess_writable(struct rv_ws *ws, struct ws_sess *s)
{
    struct ws_msg owned = {0}, *m;
    size_t cell_word = 0;
    int rc = 0;

    if (s->out.buf) {
        /* our own buffer: lws writes each fragment's header over the bytes
         * before it, already sent */
        size_t rem = s->out.len - s->out_off, n = rem > WS_FRAG ? WS_FRAG : rem;
        int flags = lws_write_ws_flags(LWS_WRITE_TEXT, s->out_off == 0, n == rem && !s->shared);
        int w = lws_write(s->wsi, s->out.buf + LWS_PRE + s->out_off, n, (enum lws_write_protocol)flags);
        if (w < (int)n)
            return -1;
        s->out_off += n;
        if (s->out_off == s->out.len)
            ws_msg_free(&s->out);
        goto more;
    }
    if (s->held.buf) {
        /* already taken from the queue (it did not fit behind a batch): it
         * goes before anything queued after it, alone, as the one write of
         * this callback */
        rc = write_msg(s->wsi, &s->held);
        ws_msg_free(&s->held);
        if (rc)
            return -1;
        goto more;
    }
    if (s->shared) {
        /* a shared body must stay intact: each fragment goes through scratch */
        size_t rem = s->shared->len - s->sh_off, n = rem > WS_FRAG ? WS_FRAG : rem;
        int flags = lws_write_ws_flags(LWS_WRITE_TEXT, 0, n == rem);
        memcpy(ws->scratch + LWS_PRE, s->shared->body + s->sh_off, n);
        int w = lws_write(s->wsi, ws->scratch + LWS_PRE, n, (enum lws_write_protocol)flags);
        if (w < (int)n)
            return -1;
        s->sh_off += n;
        if (s->sh_off == s->shared->len)
            snap_unref(&s->shared);
        goto more;
    }
    if (s->ctl_n) {
        rc = write_msg(s->wsi, &s->ctl[0]);
        ws_msg_free(&s->ctl[0]);
        memmove(&s->ctl[0], &s->ctl[1], (size_t)(s->ctl_n - 1) * sizeof(s->ctl[0]));
        s->ctl_n--;
        if (rc)
            return -1;
        goto more;
    }
    if (s->closing) {
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
        return -1;
    }
    if (!s->subscribed)
        return 0;
    if (s->snap_pending) {
        if (build_snapshot(ws, s))
            return -1;
        return sess_writable(ws, s);
    }
    struct ws_tally t = {0, 0, 0};
    if (!sess_batchable(s)) {
        m = next_msg(ws, s, &owned, &cell_word, &t);
        if (!m)
            return 0;
        t.writes++;
        tally_add(ws, &t);
        rc = write_msg(s->wsi, m);
        ws_msg_free(&owned);
        if (rc)
            return -1;
        goto more;
    }
    /* every queued message that fits in WS_BATCH goes in one write: one
     * send (and a few TCP segments) for many messages, not one each */
    size_t used = 0;
    while ((m = next_msg(ws, s, &owned, &cell_word, &t))) {
        if (batch_add(ws, &used, m)) {
            ws_msg_free(&owned);
            continue;
        }
        /* No room left. One lws_write per writable callback: behind a
         * partial write lws only drains what it kept and reports 0 for a
         * second one. So the batch goes now and this message, already
         * taken from the queue, is held for the next writable; one larger
         * than a whole batch, with nothing before it, goes alone now. */
        if (!used) {
            t.writes++;
            rc = write_msg(s->wsi, m);
        } else if (m == &owned) {
            s->held = owned; /* ours already: moved */
            owned = (struct ws_msg){0};
        } else if ((s->held.buf = malloc(LWS_PRE + m->len))) {
            memcpy(s->held.buf + LWS_PRE, m->buf + LWS_PRE, m->len);
            s->held.len = m->len;
        } else {
            rc = -1; /* out of memory: drop the connection, the client resumes with since */
        }
        ws_msg_free(&owned);
        break;
    }
    if (!rc && used)
        rc = batch_write(ws, s, used, &t);
    tally_add(ws, &t);
    if (rc)
        return -1;
    if (!t.writes) /* nothing was there to send */
        return 0;
more:
    if (sess_has_more(ws, s))
        lws_callback_on_writable(s->wsi);
    return 0;
}

/* ------------------------------------------------------------ client messages */

static bool sub_rate_ok(struct rv_ws *ws, struct ws_sess *s)
{
    uint64_t now = rv_mono_ns();
    double add = (double)(now - s->sub_last_ns) / 1e9 * ws->o.sub_per_s;

    s->sub_last_ns = now;
    s->sub_tokens += add;
    if (s->sub_tokens > ws->o.sub_burst)
        s->sub_tokens = ws->o.sub_burst;
    if (s->sub_tokens < 1)
        return false;
    s->sub_tokens -= 1;
    return true;
}

static int handle_subscribe(struct rv_ws *ws, struct ws_sess *s, const cJSON *o, char *why,
                            size_t wcap)
{
    uint8_t countries[sizeof(s->countries)] = {0};
    bool all_countries = true, want_cells = true, has_since = false, reset = false;
    uint16_t viol_mask = (1u << RV_VIOLATION_COUNT) - 1;
    uint8_t res_mask = (1u << WS_RES_SLOTS) - 1;
    int min_level = WS_LVL_WATCH;
    uint64_t since = 0;
    const cJSON *j, *e;
    const char *token = NULL, *reason = NULL;
    int role;

    if ((j = cJSON_GetObjectItemCaseSensitive(o, "token")) && !cJSON_IsNull(j)) {
        if (!cJSON_IsString(j))
            return snprintf(why, wcap, "token: must be a string"), -1;
        token = j->valuestring;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "countries")) && !cJSON_IsNull(j)) {
        if (!cJSON_IsArray(j))
            return snprintf(why, wcap, "countries: must be an array of country codes"), -1;
        cJSON_ArrayForEach(e, j)
        {
            int ci = cJSON_IsString(e) ? ws_country_index(ws, e->valuestring) : -1;
            if (ci < 0) {
                if (cJSON_IsString(e))
                    snprintf(why, wcap, "countries: '%.8s' is not an ISO 3166-1 alpha-2 code",
                             e->valuestring);
                else
                    snprintf(why, wcap, "countries: must be an array of country codes");
                return -1;
            }
            countries[ci / 8] |= (uint8_t)(1u << (ci % 8));
            all_countries = false;
        }
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "violations")) && !cJSON_IsNull(j)) {
        if (!cJSON_IsArray(j))
            return snprintf(why, wcap, "violations: must be an array of violation codes"), -1;
        uint16_t mask = 0;
        cJSON_ArrayForEach(e, j)
        {
            int v = cJSON_IsString(e) ? rv_violation_from_name(e->valuestring) : -1;
            if (v < 0) {
                if (cJSON_IsString(e))
                    snprintf(why, wcap, "violations: '%.40s' is not a violation code",
                             e->valuestring);
                else
                    snprintf(why, wcap, "violations: must be an array of violation codes");
                return -1;
            }
            mask |= (uint16_t)(1u << v);
        }
        if (mask)
            viol_mask = mask;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "min_level")) && !cJSON_IsNull(j)) {
        min_level = cJSON_IsString(j) ? ws_level_from_name(j->valuestring) : -1;
        if (min_level < 0)
            return snprintf(why, wcap, "min_level: must be watch, warning or critical"), -1;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "since")) && !cJSON_IsNull(j)) {
        if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9007199254740992.0 ||
            (double)(uint64_t)j->valuedouble != j->valuedouble)
            return snprintf(why, wcap, "since: must be a non-negative integer"), -1;
        since = (uint64_t)j->valuedouble;
        has_since = true;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "series")) && !cJSON_IsNull(j)) {
        int r = cJSON_IsString(j) ? res_slot(ws, j->valuestring, false) : -1;
        if (r == -1)
            return snprintf(why, wcap, "series: must be a resolution such as 1m, 5m, 1h or 1d"), -1;
        if (r < 0) {
            char have[WS_RES_SLOTS * 10] = "";
            size_t hl = 0;
            for (int k = 0; k < ws->n_res; k++)
                hl += (size_t)snprintf(have + hl, sizeof(have) - hl, "%s%s", k ? ", " : "",
                                       ws->res_names[k]);
            return snprintf(why, wcap, "series: no cells of resolution '%.8s' here (%s%s)",
                            j->valuestring, ws->n_res ? "have: " : "none yet",
                            have), -1;
        }
        res_mask = (uint8_t)(1u << r);
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "cells")) && !cJSON_IsNull(j)) {
        if (!cJSON_IsBool(j))
            return snprintf(why, wcap, "cells: must be true or false"), -1;
        want_cells = cJSON_IsTrue(j);
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "epoch")) && !cJSON_IsNull(j)) {
        char ep[32];
        if (!cJSON_IsString(j))
            return snprintf(why, wcap, "epoch: must be a string"), -1;
        snprintf(ep, sizeof(ep), "%llu", (unsigned long long)ws->epoch);
        if (strcmp(ep, j->valuestring) != 0 && has_since) {
            /* another store: the client's since means nothing here */
            has_since = false;
            reset = true;
        }
    }
    if (has_since && since > ws->last && since > rv_store_last_alert_seq(ws->st)) {
        has_since = false;
        reset = true;
    }

    /* access: the subscribe's token, else the handshake's */
    unsigned char h[32];
    bool open_mode = false, have_h = token || s->has_tok;
    if (token)
        ws_auth_hash(token, h);
    else if (s->has_tok)
        memcpy(h, s->tok_hash, 32);
    role = ws_auth_role_hash(ws->st, have_h ? h : NULL, s->open, &open_mode, &reason);
    if (role == WS_ROLE_NONE) {
        /* an invalid subscribe changes nothing, but a refused token ends the stream */
        s->subscribed = false;
        s->auth = WS_AUTH_NONE;
        OPENSSL_cleanse(h, sizeof(h));
        return snprintf(why, wcap, "%s", reason ? reason : "token: missing"), -1;
    }

    s->role = role;
    s->auth = open_mode ? WS_AUTH_OPEN : WS_AUTH_TOKEN;
    if (!open_mode)
        memcpy(s->auth_hash, h, 32);
    OPENSSL_cleanse(h, sizeof(h));
    if (!s->authed) {
        s->authed = true;
        ws->n_unauth--;
    }
    memcpy(s->countries, countries, sizeof(countries));
    s->all_countries = all_countries;
    s->viol_mask = viol_mask;
    s->res_mask = res_mask;
    s->min_level = (uint8_t)min_level;
    s->want_cells = want_cells;
    s->since = since;
    s->has_since = has_since;
    s->reset = reset;
    s->subscribed = true;
    s->snap_pending = true;
    chunk_clear(s);
    memset(s->dirty, 0, sizeof(s->dirty));
    s->n_dirty = 0;
    lws_callback_on_writable(s->wsi);
    return 0;
}

static void handle_message(struct rv_ws *ws, struct ws_sess *s, const char *msg, size_t len)
{
    char why[RV_ERRBUF_SIZE];
    size_t bad;
    cJSON *o = NULL;

    atomic_fetch_add(&ws->c_msgs_in, 1);
    if (s->closing) /* told why it ends: nothing it says changes that */
        return;
    if (!rv_utf8_valid(msg, len, &bad)) {
        snprintf(why, sizeof(why), "message: not valid UTF-8 at byte %zu", bad);
        send_error(ws, s, why);
        return;
    }
    o = cJSON_ParseWithLength(msg, len);
    if (!o) {
        send_error(ws, s, "json: not valid JSON");
        return;
    }
    if (!cJSON_IsObject(o)) {
        send_error(ws, s, "json: expected an object");
        goto out;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsString(t)) {
        send_error(ws, s, "type: missing or not a string");
        goto out;
    }
    if (strcmp(t->valuestring, "subscribe") == 0) {
        if (!sub_rate_ok(ws, s)) {
            send_error(ws, s, "subscribe: too many subscribes, slow down");
            goto out;
        }
        if (handle_subscribe(ws, s, o, why, sizeof(why)))
            send_error(ws, s, why);
    } else if (strcmp(t->valuestring, "ping") == 0) {
        struct ws_buf b = {0};
        ws_buf_reserve_pre(&b);
        ws_buf_str(&b, "{\"type\":\"pong\"}");
        ctl_push(ws, s, &b);
    } else {
        snprintf(why, sizeof(why), "type: unknown message type '%.32s'", t->valuestring);
        send_error(ws, s, why);
    }
out:
    cJSON_Delete(o);
}

static void sess_receive(struct rv_ws *ws, struct ws_sess *s, struct lws *wsi, const void *in,
                         size_t len)
{
    if (!s->rx_active) {
        s->rx_active = true;
        s->rx_len = 0;
        s->rx_overflow = false;
        s->rx_binary = lws_frame_is_binary(wsi) != 0;
    }
    if (!s->rx_overflow && !s->rx_binary) {
        if (s->rx_len + len > ws->o.max_msg) {
            s->rx_overflow = true;
        } else {
            if (!s->rx) {
                s->rx = malloc(ws->o.max_msg + 1);
                if (!s->rx) {
                    s->rx_overflow = true;
                    goto tail;
                }
            }
            memcpy(s->rx + s->rx_len, in, len);
            s->rx_len += len;
        }
    }
tail:
    if (!lws_is_final_fragment(wsi))
        return;
    s->rx_active = false;
    if (s->rx_binary) {
        send_error(ws, s, "message: binary frames are not accepted");
    } else if (s->rx_overflow) {
        char why[96];
        snprintf(why, sizeof(why), "message: larger than %zu bytes", ws->o.max_msg);
        send_error(ws, s, why);
    } else {
        handle_message(ws, s, s->rx, s->rx_len);
    }
    /* idle connections hold no receive buffer */
    free(s->rx);
    s->rx = NULL;
    s->rx_len = 0;
}

static int path_is_ws(struct lws *wsi)
{
    char uri[64];
    int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    if (n <= 0)
        return 0;
    return strcmp(uri, "/ws") == 0 || strcmp(uri, "/ws/") == 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct rv_ws *ws = lws_context_user(lws_get_context(wsi));
    struct ws_sess *s = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char tok[256];
        if (!path_is_ws(wsi) || ws_http_origin_ok(ws, wsi)) {
            atomic_fetch_add(&ws->c_rejected, 1);
            return -1;
        }
        if (ws->n_sess >= ws->o.max_conns) {
            atomic_fetch_add(&ws->c_rejected, 1);
            return -1;
        }
        memset(s, 0, sizeof(*s));
        s->open = (uint8_t)ws_http_open(ws, wsi);
        if (ws_http_token(wsi, tok, sizeof(tok))) {
            ws_auth_hash(tok, s->tok_hash);
            s->has_tok = true;
            OPENSSL_cleanse(tok, sizeof(tok));
        }
        /* no token in the store: only a loopback Host on a loopback bind gets in */
        if (s->open != WS_OPEN_OK && !ws_auth_any(ws->st)) {
            atomic_fetch_add(&ws->c_rejected, 1);
            return -1;
        }
        /* connections that have not subscribed yet get at most max_unauth
         * places, unless the handshake carries a valid token */
        if (ws->n_unauth >= ws->max_unauth) {
            const char *why = NULL;
            if (!s->has_tok ||
                ws_auth_role_hash(ws->st, s->tok_hash, s->open, NULL, &why) == WS_ROLE_NONE) {
                atomic_fetch_add(&ws->c_rejected, 1);
                return -1;
            }
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        s->wsi = wsi;
        s->sub_tokens = ws->o.sub_burst;
        s->sub_last_ns = rv_mono_ns();
        s->t_open_ns = s->sub_last_ns;
        ws->n_unauth++;
        s->next = ws->sessions;
        if (ws->sessions)
            ws->sessions->prev = s;
        ws->sessions = s;
        ws->n_sess++;
        atomic_store(&ws->g_conns, (int)ws->n_sess);
        atomic_fetch_add(&ws->c_conns_total, 1);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (!s->wsi)
            return 0;
        if (s->prev)
            s->prev->next = s->next;
        else
            ws->sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        ws->n_sess--;
        if (!s->authed)
            ws->n_unauth--;
        atomic_store(&ws->g_conns, (int)ws->n_sess);
        sess_free(s);
        s->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY:
        /* accepted (lws asks before it applies one): this connection's
         * payloads are transformed, so they go one frame per write */
        s->ext = true;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        sess_receive(ws, s, wsi, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return sess_writable(ws, s);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (ws && ws->ctx)
            hub_drain(ws);
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ threads */

struct sub_start {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc;
};

struct sub_arg {
    struct rv_ws *ws;
    struct sub_start *start;
};

static void queue_item(struct rv_ws *ws, bool is_cell, const void *data, size_t len)
{
    struct ws_item *it = NULL;

    pthread_mutex_lock(&ws->lock);
    if (ws->q_n >= ws->o.max_queue) {
        if (!is_cell)
            ws->q_dropped_alert = true;
        pthread_mutex_unlock(&ws->lock);
        atomic_fetch_add(&ws->c_q_dropped, 1);
        return;
    }
    pthread_mutex_unlock(&ws->lock);
    it = malloc(sizeof(*it));
    char *j = malloc(len + 1);
    if (!it || !j) {
        free(it);
        free(j);
        atomic_fetch_add(&ws->c_q_dropped, 1);
        pthread_mutex_lock(&ws->lock);
        if (!is_cell)
            ws->q_dropped_alert = true;
        pthread_mutex_unlock(&ws->lock);
        return;
    }
    memcpy(j, data, len);
    j[len] = 0;
    it->next = NULL;
    it->is_cell = is_cell;
    it->json = j;
    it->len = len;
    pthread_mutex_lock(&ws->lock);
    if (ws->q_tail)
        ws->q_tail->next = it;
    else
        ws->q_head = it;
    ws->q_tail = it;
    ws->q_n++;
    atomic_store(&ws->g_qdepth, (int)ws->q_n);
    pthread_mutex_unlock(&ws->lock);
}

static void *sub_main(void *arg)
{
    struct sub_arg *sa = arg;
    struct rv_ws *ws = sa->ws;
    struct sub_start *st = sa->start;
    void *sock = zmq_socket(ws->zctx, ZMQ_SUB);
    int rc = RV_EIO, hwm = 1000000, linger = 0;

    if (sock && zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0) == 0 &&
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) == 0 &&
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) == 0 &&
        zmq_connect(sock, ws->updates) == 0)
        rc = RV_OK;
    else
        rv_log_error(MOD, "updates connect failed endpoint=%s reason=\"%s\"", ws->updates,
                     zmq_strerror(zmq_errno()));
    pthread_mutex_lock(&st->lock);
    st->rc = rc;
    st->done = 1;
    pthread_cond_signal(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        if (sock)
            zmq_close(sock);
        return NULL;
    }

    while (!atomic_load(&ws->stop)) {
        zmq_pollitem_t pi = {sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&pi, 1, 100);
        if (n <= 0)
            continue;
        int got = 0;
        for (;;) {
            zmq_msg_t topic, body;
            int more = 0;
            size_t ml = sizeof(more);
            zmq_msg_init(&topic);
            if (zmq_msg_recv(&topic, sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&topic);
                break;
            }
            zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
            if (!more) {
                zmq_msg_close(&topic);
                atomic_fetch_add(&ws->c_bad_updates, 1);
                continue;
            }
            zmq_msg_init(&body);
            zmq_msg_recv(&body, sock, 0);
            zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
            while (more) { /* extra frames: drop them */
                zmq_msg_t x;
                zmq_msg_init(&x);
                zmq_msg_recv(&x, sock, 0);
                zmq_msg_close(&x);
                zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
            }
            size_t tl = zmq_msg_size(&topic);
            const char *tp = zmq_msg_data(&topic);
            if (tl == 5 && memcmp(tp, "alert", 5) == 0)
                queue_item(ws, false, zmq_msg_data(&body), zmq_msg_size(&body));
            else if (tl == 4 && memcmp(tp, "cell", 4) == 0)
                queue_item(ws, true, zmq_msg_data(&body), zmq_msg_size(&body));
            else
                atomic_fetch_add(&ws->c_bad_updates, 1);
            zmq_msg_close(&topic);
            zmq_msg_close(&body);
            if (++got >= 4096)
                break;
        }
        if (got)
            lws_cancel_service(ws->ctx);
    }
    zmq_close(sock);
    return NULL;
}

static void *svc_main(void *arg)
{
    struct rv_ws *ws = arg;

    while (!atomic_load(&ws->stop))
        if (lws_service(ws->ctx, 0) < 0)
            break;
    return NULL;
}

/* ------------------------------------------------------------ start/stop */

static int load_alerts_cb(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct rv_ws *ws = arg;
    struct ws_alert a;

    if (seq > ws->last)
        ws->last = seq;
    if (alert_parse(ws, seq, json, len, &a) == RV_OK)
        open_update(ws, &a);
    ws_msg_free(&a.m);
    return 0;
}

static void lws_log_emit(int level, const char *line)
{
    char buf[512];
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = 0;
    rv_log_write(level == LLL_ERR ? RV_LOG_ERROR : RV_LOG_WARN, "lws", "msg=\"%s\"", buf);
}

static void ws_free(struct rv_ws *ws)
{
    struct ws_item *it, *next;

    if (!ws)
        return;
    for (size_t i = 0; i < ws->ring_n; i++)
        ws_msg_free(&ring_at(ws, i)->m);
    free(ws->ring);
    for (size_t i = 0; i < ws->open_n; i++)
        ws_msg_free(&ws->open[i].m);
    free(ws->open);
    for (size_t i = 0; i < WS_NCELL; i++)
        ws_msg_free(&ws->cells[i]);
    snap_unref(&ws->snap);
    for (it = ws->q_head; it; it = next) {
        next = it->next;
        free(it->json);
        free(it);
    }
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}

int rv_ws_start(void *zctx, struct rv_store *st, const struct rv_ws_opts *o, struct rv_metrics *m,
                struct rv_ws **out, struct rv_errbuf *err)
{
    struct lws_context_creation_info info;
    struct rv_ws *ws = NULL;
    struct stat sb;
    char path[1100];
    int rc;

    *out = NULL;
    if (!zctx || !st || !o)
        return rv_err_set(err, RV_EINVAL, "ws: missing context, store or options");
    ws = calloc(1, sizeof(*ws));
    if (!ws)
        return rv_err_set(err, RV_ENOMEM, "ws: out of memory");
    pthread_mutex_init(&ws->lock, NULL);
    ws->st = st;
    ws->m = m;
    ws->zctx = zctx;
    ws->o = *o;
    ws->o.http = ws->o.web_root = ws->o.tls_cert = ws->o.tls_key = ws->o.updates = NULL;
    if (!ws->o.max_msg || !ws->o.alert_ring || !ws->o.max_queue || !ws->o.max_conns ||
        !ws->o.ping_s || ws->o.idle_s <= ws->o.ping_s || !ws->o.sub_burst || !ws->o.sub_per_s ||
        !ws->o.poll_ms || !ws->o.sub_timeout_s || !ws->o.token_check_s) {
        rc = rv_err_set(err, RV_EINVAL, "ws: limits must be positive and idle_s above ping_s");
        goto fail;
    }
    if ((rc = parse_http(o->http, ws->host, sizeof(ws->host), &ws->port_req, err)) ||
        (rc = copy_str(ws->web_root, sizeof(ws->web_root), o->web_root, "web_root", err)) ||
        (rc = copy_str(ws->tls_cert, sizeof(ws->tls_cert), o->tls_cert, "tls_cert", err)) ||
        (rc = copy_str(ws->tls_key, sizeof(ws->tls_key), o->tls_key, "tls_key", err)) ||
        (rc = copy_str(ws->updates, sizeof(ws->updates), o->updates ? o->updates : RV_EP_UPDATES,
                       "updates", err)))
        goto fail;
    if (o->n_origins > RV_WS_MAX_ORIGINS) {
        rc = rv_err_set(err, RV_EINVAL, "origins: at most %d entries", RV_WS_MAX_ORIGINS);
        goto fail;
    }
    for (size_t i = 0; i < o->n_origins; i++)
        if ((rc = copy_str(ws->origins[i], sizeof(ws->origins[i]), o->origins[i], "origins", err)))
            goto fail;
    ws->n_origins = o->n_origins;
    ws->loopback = host_is_loopback(ws->host);
    ws->max_unauth = ws->o.max_unauth ? ws->o.max_unauth : ws->o.max_conns / 2;
    if (ws->max_unauth == 0)
        ws->max_unauth = 1;
    if (!ws->loopback && !ws_auth_any(st)) {
        rc = rv_err_set(err, RV_EPERM,
                        "http: refusing to listen on %.100s without access tokens (create one "
                        "with rvctl token create)",
                        ws->host[0] ? ws->host : "all interfaces");
        goto fail;
    }
    if (!ws->tls_cert[0] != !ws->tls_key[0]) {
        rc = rv_err_set(err, RV_EINVAL, "%s: needed with %s", ws->tls_cert[0] ? "tls_key" : "tls_cert",
                        ws->tls_cert[0] ? "tls_cert" : "tls_key");
        goto fail;
    }
    if (ws->tls_cert[0] && access(ws->tls_cert, R_OK)) {
        rc = rv_err_set(err, RV_EIO, "tls_cert: cannot read '%.200s'", ws->tls_cert);
        goto fail;
    }
    if (ws->tls_key[0] && access(ws->tls_key, R_OK)) {
        rc = rv_err_set(err, RV_EIO, "tls_key: cannot read '%.200s'", ws->tls_key);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/index.html", ws->web_root);
    ws->web_ok = ws->web_root[0] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);

    /* country table */
    for (size_t i = 0; i < 26 * 26; i++)
        ws->cidx[i] = -1;
    for (int i = 0; i < WS_NCOUNTRY; i++) {
        const char *cc = rv_country_code_at(i);
        if (!cc)
            break;
        memcpy(ws->ccode[i], cc, 3);
        ws->cidx[(cc[0] - 'A') * 26 + (cc[1] - 'A')] = (int16_t)i;
    }

    /* hub: open alerts from the whole history, the ring starts empty */
    ws->ring_cap = ws->o.alert_ring;
    ws->ring = calloc(ws->ring_cap, sizeof(*ws->ring));
    if (!ws->ring) {
        rc = rv_err_set(err, RV_ENOMEM, "ws: out of memory");
        goto fail;
    }
    ws->epoch = rv_store_epoch(st);
    if ((rc = rv_store_read_alerts(st, 0, load_alerts_cb, ws, err)))
        goto fail;
    ws->base = ws->last;

    /* lws */
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
    ws->protocols[0] = (struct lws_protocols){"rv-http", ws_http_callback, ws_http_pss_size, 0,
                                              0, NULL, 0};
    /* tx_packet_size: a batch (or a snapshot fragment) goes to the socket
     * in one send; by default lws would cut it at rx_buffer_size */
    ws->protocols[1] = (struct lws_protocols){WS_PROTO, ws_callback, sizeof(struct ws_sess),
                                              4096, 0, NULL, WS_BATCH};
    int nm = 0;
    static const char *const cb_mounts[] = {"/api", "/metrics", "/healthz"};
    for (int i = 0; i < 3; i++) {
        struct lws_http_mount *mt = &ws->mounts[nm];
        memset(mt, 0, sizeof(*mt));
        mt->mountpoint = cb_mounts[i];
        mt->mountpoint_len = (unsigned char)strlen(cb_mounts[i]);
        mt->origin = "rv-http";
        mt->origin_protocol = LWSMPRO_CALLBACK;
        if (nm)
            ws->mounts[nm - 1].mount_next = mt;
        nm++;
    }
    if (ws->web_ok) {
        struct lws_http_mount *mt = &ws->mounts[nm];
        memset(mt, 0, sizeof(*mt));
        mt->mountpoint = "/";
        mt->mountpoint_len = 1;
        mt->origin = ws->web_root;
        mt->def = "index.html";
        mt->origin_protocol = LWSMPRO_FILE;
        ws->mounts[nm - 1].mount_next = mt;
        nm++;
    }
    if (ws->o.deflate) {
        ws->exts[0] = (struct lws_extension){"permessage-deflate",
                                             lws_extension_callback_pm_deflate,
                                             "permessage-deflate; client_no_context_takeover; "
                                             "client_max_window_bits"};
    }
    ws->retry.secs_since_valid_ping = (uint16_t)ws->o.ping_s;
    ws->retry.secs_since_valid_hangup = (uint16_t)ws->o.idle_s;

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (ws->tls_cert[0])
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = ws;
    info.fd_limit_per_thread = 0;
    info.max_http_header_data = 8192; /* a path up to WS_URI_MAX gets an answer (414 past it) */
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        rc = rv_err_set(err, RV_EIO, "ws: cannot create the lws context");
        goto fail;
    }
    memset(&info, 0, sizeof(info));
    info.vhost_name = "rightsview";
    info.port = ws->port_req;
    info.iface = ws->host[0] && strcmp(ws->host, "0.0.0.0") && strcmp(ws->host, "::")
                     ? (strcmp(ws->host, "localhost") ? ws->host : "127.0.0.1")
                     : NULL;
    {
        /* lws 4.1 with IPv6 built in ignores an IPv4 address as iface and
         * listens on every interface (seen with ss: *:PORT for
         * --http 127.0.0.1:PORT): an IPv4 listener is asked for without
         * IPv6, which then binds that address */
        struct in_addr a4;
        if (info.iface && inet_pton(AF_INET, info.iface, &a4) == 1)
            info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.protocols = ws->protocols;
    info.mounts = ws->mounts;
    info.extensions = ws->o.deflate ? ws->exts : NULL;
    info.retry_and_idle_policy = &ws->retry;
    info.timeout_secs = 20;
    info.keepalive_timeout = 30;
    info.user = ws;
    if (ws->tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = ws->tls_cert;
        info.ssl_private_key_filepath = ws->tls_key;
    }
    ws->vh = lws_create_vhost(ws->ctx, &info);
    if (!ws->vh) {
        rc = rv_err_set(err, RV_EIO, "http: cannot listen on %.200s", o->http);
        goto fail;
    }
    atomic_store(&ws->port, lws_get_vhost_listen_port(ws->vh));
    lws_sul_schedule(ws->ctx, 0, &ws->poll_sul, poll_timer,
                     (lws_usec_t)ws->o.poll_ms * LWS_US_PER_MS);
    ws->next_tok_check_ns = rv_mono_ns() + (uint64_t)ws->o.token_check_s * 1000000000ull;
    lws_sul_schedule(ws->ctx, 0, &ws->sess_sul, sess_timer, LWS_US_PER_SEC);

    /* SUB thread first: its connect result decides the start */
    struct sub_start ss = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct sub_arg sa = {ws, &ss}; /* read by the thread before it signals ss */
    if (pthread_create(&ws->sub_thr, NULL, sub_main, &sa)) {
        rc = rv_err_set(err, RV_EIO, "ws: cannot start thread");
        goto fail;
    }
    ws->sub_started = true;
    pthread_mutex_lock(&ss.lock);
    while (!ss.done)
        pthread_cond_wait(&ss.cond, &ss.lock);
    pthread_mutex_unlock(&ss.lock);
    if (ss.rc) {
        pthread_join(ws->sub_thr, NULL);
        ws->sub_started = false;
        rc = rv_err_set(err, RV_EINVAL, "updates: cannot connect to '%.200s'", ws->updates);
        goto fail;
    }
    if (pthread_create(&ws->svc_thr, NULL, svc_main, ws)) {
        rc = rv_err_set(err, RV_EIO, "ws: cannot start thread");
        goto fail;
    }
    ws->svc_started = true;
    rv_log_info(MOD, "listening http=%s port=%d tls=%s web_root=%s deflate=%s", o->http,
                rv_ws_port(ws), ws->tls_cert[0] ? "on" : "off",
                ws->web_ok ? ws->web_root : "(built-in)", ws->o.deflate ? "on" : "off");
    *out = ws;
    return RV_OK;
fail:
    rv_ws_stop(&ws);
    return rc;
}

int rv_ws_port(const struct rv_ws *ws)
{
    return ws ? atomic_load(&((struct rv_ws *)ws)->port) : -1;
}

void rv_ws_stop(struct rv_ws **wsp)
{
    struct rv_ws *ws = wsp ? *wsp : NULL;

    if (!ws)
        return;
    atomic_store(&ws->stop, true);
    if (ws->sub_started)
        pthread_join(ws->sub_thr, NULL);
    if (ws->svc_started) {
        lws_cancel_service(ws->ctx);
        pthread_join(ws->svc_thr, NULL);
    }
    if (ws->ctx) {
        lws_sul_cancel(&ws->poll_sul);
        lws_sul_cancel(&ws->sess_sul);
        lws_context_destroy(ws->ctx);
    }
    ws_free(ws);
    *wsp = NULL;
}

/*
 * ws_http: the HTTP side of the one lws vhost: /api/v1/... (JSON, NDJSON,
 * CSV), /metrics (Prometheus text), /healthz, the built-in page when the
 * dashboard is missing, and the Origin/token helpers the WebSocket
 * handshake uses.
 *
 * Long answers (events, alerts, series) are streamed: each writable
 * callback reads the next few records from the store in a short read txn
 * (resuming after the last seq or bin sent) and writes them, so no answer
 * is ever built whole in memory. Short ones are built and sent with a
 * content-length (keep-alive).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "rv/country.h"
#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/timeutil.h"

#include "ws_int.h"

#define CHUNK_BYTES 16384
#define EVENTS_SCAN 4096 /* log records read per writable callback */
#define EVENTS_DEFAULT_LIMIT 10000
#define EVENTS_MAX_LIMIT 10000000
#define ALERTS_DEFAULT_LIMIT 1000
#define ALERTS_MAX_LIMIT 1000000
#define SERIES_MAX_LIMIT 1000000

enum rq_kind { RQ_BUF = 0, RQ_EVENTS, RQ_ALERTS, RQ_SERIES };
enum rq_fmt { FMT_JSON = 0, FMT_NDJSON, FMT_CSV };

struct ws_http {
    int kind;
    struct ws_buf body; /* RQ_BUF: the whole body; streams: the current chunk */
    size_t off;         /* sent of body */
    bool done;          /* no more chunks after body */
    bool first;         /* no item written yet */
    bool active;        /* a response of ours is in progress */
    int role;
    int fmt;
    char country[3];
    int violation;
    int res;
    int min_level;
    char source[RV_SOURCE_MAX + 1];
    int64_t from, to;
    uint64_t cursor; /* events/alerts: last seq passed; */
    size_t limit, sent;
};

const size_t ws_http_pss_size = sizeof(struct ws_http);

static const char builtin_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>rightsview</title></head>"
    "<body><h1>rightsview</h1><p>The dashboard is not installed here. The API is at "
    "<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>, live alerts on the WebSocket "
    "<code>/ws</code> (protocol rv.v1).</p></body></html>\n";

/* ------------------------------------------------------------ helpers */

bool ws_http_token(struct lws *wsi, char *buf, size_t cap)
{
    char auth[512];
    int n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);

    if (n > 7 && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        if (*t && strlen(t) < cap) {
            memcpy(buf, t, strlen(t) + 1);
            return true;
        }
    }
    /* returns a pointer into BUF, past "token=" */
    const char *v = lws_get_urlarg_by_name(wsi, "token=", buf, (int)cap);
    if (v && *v) {
        memmove(buf, v, strlen(v) + 1);
        return true;
    }
    return false;
}

bool ws_http_host_loopback(struct lws *wsi)
{
    char host[300], name[300];
    unsigned char a[16];
    int n = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    size_t hl;
    const char *port;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) <= 0)
        return true; /* no Host: not a browser (they always send one) */
    if (n <= 0)
        return false;
    if (host[0] == '[') {
        const char *rb = strchr(host, ']');
        if (!rb)
            return false;
        hl = (size_t)(rb - host - 1);
        memcpy(name, host + 1, hl);
        port = rb + 1;
    } else {
        const char *colon = strchr(host, ':');
        hl = colon ? (size_t)(colon - host) : strlen(host);
        memcpy(name, host, hl);
        port = host + hl;
    }
    name[hl] = 0;
    if (*port) {
        if (*port++ != ':' || !*port || strlen(port) > 5)
            return false;
        for (; *port; port++)
            if (*port < '0' || *port > '9')
                return false;
    }
    if (host[0] == '[')
        return inet_pton(AF_INET6, name, a) == 1 && IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
    if (strcasecmp(name, "localhost") == 0)
        return true;
    return inet_pton(AF_INET, name, a) == 1 && a[0] == 127;
}

int ws_http_open(struct rv_ws *ws, struct lws *wsi)
{
    if (!ws->loopback)
        return WS_OPEN_NOT_LOOPBACK;
    return ws_http_host_loopback(wsi) ? WS_OPEN_OK : WS_OPEN_BAD_HOST;
}

int ws_http_origin_ok(struct rv_ws *ws, struct lws *wsi)
{
    char origin[300], host[300];
    int n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);

    if (n <= 0)
        return 0; /* not a browser */
    if (ws->n_origins) {
        for (size_t i = 0; i < ws->n_origins; i++)
            if (strcmp(origin, ws->origins[i]) == 0)
                return 0;
        return -1;
    }
    /* same origin: the Origin's host[:port] is the Host header */
    const char *p = strstr(origin, "://");
    if (!p)
        return -1;
    p += 3;
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
        return -1;
    return strcasecmp(p, host) == 0 ? 0 : -1;
}

static void count_status(struct rv_ws *ws, unsigned code)
{
    int i = code < 300 ? 0 : code == 400 ? 1 : code == 401 ? 2 : code == 403 ? 3 : code == 404 ? 4 : 5;
    atomic_fetch_add(&ws->c_http[i], 1);
}

static int send_headers(struct lws *wsi, unsigned code, const char *type, lws_filepos_t len)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;

    if (lws_add_http_common_headers(wsi, code, type, len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)"nosniff", 7, &p, end))
        return -1;
    if (code == 401 && lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                                   (const unsigned char *)"Bearer", 6, &p, end))
        return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

/* Starts a whole-body answer (BODY taken over). */
static int reply_buf(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, unsigned code,
                     const char *type, struct ws_buf *body)
{
    h->kind = RQ_BUF;
    h->body = *body;
    memset(body, 0, sizeof(*body));
    h->off = 0;
    h->done = true;
    h->active = true;
    count_status(ws, code);
    if (h->body.oom)
        return -1;
    if (send_headers(wsi, code, type, h->body.len))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* {"error":"MSG","param":"FIELD"} where FIELD is the "field: " of MSG. */
static int reply_error(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, unsigned code,
                       const char *msg)
{
    struct ws_buf b = {0};
    char field[64];

    rv_err_split(msg, field, sizeof(field));
    ws_buf_str(&b, "{\"error\":");
    ws_buf_json_str(&b, msg);
    if (field[0]) {
        ws_buf_str(&b, ",\"param\":");
        ws_buf_json_str(&b, field);
    }
    ws_buf_str(&b, "}\n");
    return reply_buf(ws, wsi, h, code, "application/json", &b);
}

static int reply_text(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, unsigned code,
                      const char *type, const char *text, size_t len)
{
    struct ws_buf b = {0};
    ws_buf_add(&b, text, len);
    return reply_buf(ws, wsi, h, code, type, &b);
}

/* ------------------------------------------------------------ query parameters */

struct qparam {
    const char *name;
    char val[512];
    bool set;
};

/* Reads the query into PS (names NULL-terminated list). Unknown or
 * repeated names are errors. */
static int parse_query(struct lws *wsi, struct qparam *ps, char *why, size_t wcap)
{
    char frag[600];

    for (int i = 0; i < 64; i++) {
        /* a fragment too long to copy must not end the loop unseen */
        if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) >= (int)sizeof(frag) - 1) {
            snprintf(why, wcap, "query: parameter longer than %zu bytes", sizeof(frag) - 2);
            return -1;
        }
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        if (n == 0)
            continue;
        if (n >= (int)sizeof(frag) - 1) {
            snprintf(why, wcap, "query: parameter longer than %zu bytes", sizeof(frag) - 2);
            return -1;
        }
        char *eq = strchr(frag, '=');
        const char *v = eq ? eq + 1 : "";
        if (eq)
            *eq = 0;
        struct qparam *p = ps;
        for (; p->name; p++)
            if (strcmp(p->name, frag) == 0)
                break;
        if (!p->name) {
            snprintf(why, wcap, "%.40s: unknown parameter", frag);
            return -1;
        }
        if (p->set) {
            snprintf(why, wcap, "%s: given more than once", p->name);
            return -1;
        }
        if (strlen(v) >= sizeof(p->val)) {
            snprintf(why, wcap, "%s: too long", p->name);
            return -1;
        }
        memcpy(p->val, v, strlen(v) + 1);
        p->set = true;
    }
    return 0;
}

static struct qparam *qp(struct qparam *ps, const char *name)
{
    for (; ps->name; ps++)
        if (strcmp(ps->name, name) == 0)
            return ps;
    return NULL;
}

static int q_country(struct qparam *ps, char out[3], bool required, char *why, size_t wcap)
{
    struct qparam *p = qp(ps, "country");
    out[0] = 0;
    if (!p->set || !p->val[0]) {
        if (required)
            return snprintf(why, wcap, "country: missing"), -1;
        return 0;
    }
    if (!rv_country_valid(p->val))
        return snprintf(why, wcap, "country: '%.8s' is not an ISO 3166-1 alpha-2 code", p->val), -1;
    memcpy(out, p->val, 3);
    return 0;
}

static int q_violation(struct qparam *ps, int *out, bool required, char *why, size_t wcap)
{
    struct qparam *p = qp(ps, "violation");
    *out = -1;
    if (!p->set || !p->val[0]) {
        if (required)
            return snprintf(why, wcap, "violation: missing"), -1;
        return 0;
    }
    *out = rv_violation_from_name(p->val);
    if (*out < 0)
        return snprintf(why, wcap, "violation: '%.40s' is not a violation code", p->val), -1;
    return 0;
}

static int q_u64(struct qparam *ps, const char *name, uint64_t def, uint64_t max, uint64_t *out,
                 char *why, size_t wcap)
{
    struct qparam *p = qp(ps, name);
    *out = def;
    if (!p->set || !p->val[0])
        return 0;
    char *end;
    if (p->val[0] < '0' || p->val[0] > '9')
        goto bad;
    unsigned long long v = strtoull(p->val, &end, 10);
    if (*end || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    snprintf(why, wcap, "%s: must be an integer 0..%llu", name, (unsigned long long)max);
    return -1;
}

static int q_time(struct qparam *ps, const char *name, int64_t def, int64_t *out, char *why,
                  size_t wcap)
{
    struct qparam *p = qp(ps, name);
    *out = def;
    if (!p->set || !p->val[0])
        return 0;
    const char *s = p->val;
    bool digits = true;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            digits = false;
    if (digits && strlen(s) <= 15) {
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    if (rv_time_parse_rfc3339(s, out) == RV_OK)
        return 0;
    snprintf(why, wcap, "%s: '%.40s' is not an RFC 3339 time or epoch ms", name, s);
    return -1;
}

static int q_res(struct qparam *ps, int *out, char *why, size_t wcap)
{
    struct qparam *p = qp(ps, "res");
    *out = RV_RES_1H;
    if (!p->set || !p->val[0])
        return 0;
    *out = rv_res_from_name(p->val);
    if (*out < 0)
        return snprintf(why, wcap, "res: must be 1m, 1h or 1d"), -1;
    return 0;
}

/* ------------------------------------------------------------ JSON pieces */

static void add_time(struct ws_buf *b, int64_t ms)
{
    char t[32];
    ws_buf_json_str(b, rv_time_format(ms, t, sizeof(t)));
}

static void add_num(struct ws_buf *b, double v)
{
    char t[40];
    if (v != v || v > 1e300 || v < -1e300)
        ws_buf_str(b, "null");
    else {
        snprintf(t, sizeof(t), "%.10g", v);
        ws_buf_str(b, t);
    }
}

static void add_bin(struct rv_ws *ws, struct ws_buf *b, const struct rv_bin *bin, bool with_key)
{
    ws_buf_str(b, "{");
    if (with_key) {
        ws_buf_printf(b, "\"country\":\"%.2s\",\"violation\":", bin->country);
        ws_buf_json_str(b, rv_violation_name(bin->violation) ? rv_violation_name(bin->violation) : "");
        ws_buf_str(b, ",");
    }
    ws_buf_str(b, "\"start\":");
    add_time(b, bin->start_ms);
    ws_buf_printf(b, ",\"events\":%llu,\"count\":%llu,\"weight\":", (unsigned long long)bin->events,
                  (unsigned long long)bin->count);
    add_num(b, bin->weight);
    ws_buf_printf(b, ",\"sources\":%u", (unsigned)bin->n_sources);
    if (bin->probe_n) {
        ws_buf_printf(b, ",\"probe\":{\"n\":%llu,\"min\":", (unsigned long long)bin->probe_n);
        add_num(b, bin->probe_min);
        ws_buf_str(b, ",\"max\":");
        add_num(b, bin->probe_max);
        ws_buf_str(b, ",\"mean\":");
        add_num(b, bin->probe_sum / (double)bin->probe_n);
        ws_buf_str(b, "}");
    }
    ws_buf_str(b, "}");
    (void)ws;
}

/* ------------------------------------------------------------ overview */

struct ov_ctx {
    struct rv_ws *ws;
    struct ws_buf *b;
    bool first;
};

static int ov_cb(void *arg, const struct rv_bin *bin)
{
    struct ov_ctx *c = arg;
    if (!c->first)
        ws_buf_add(c->b, ",", 1);
    c->first = false;
    add_bin(c->ws, c->b, bin, true);
    return c->b->oom;
}

static int api_overview(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, struct qparam *ps)
{
    char why[RV_ERRBUF_SIZE];
    struct rv_errbuf err;
    struct ws_buf b = {0};
    int res;

    if (q_res(ps, &res, why, sizeof(why)))
        return reply_error(ws, wsi, h, 400, why);
    ws_buf_printf(&b, "{\"res\":\"%s\",\"generated_at\":", rv_res_name(res));
    add_time(&b, rv_now_ms());
    ws_buf_printf(&b, ",\"alert_seq\":%llu,\"log_seq\":%llu,\"cells\":[",
                  (unsigned long long)rv_store_last_alert_seq(ws->st),
                  (unsigned long long)rv_store_last_seq(ws->st));
    struct ov_ctx c = {ws, &b, true};
    if (rv_store_read_overview(ws->st, res, ov_cb, &c, &err)) {
        ws_buf_free(&b);
        rv_log_warn("ws", "overview failed reason=\"%s\"", err.msg);
        return reply_error(ws, wsi, h, 500, "store: read failed");
    }
    ws_buf_str(&b, "]}\n");
    return reply_buf(ws, wsi, h, 200, "application/json", &b);
}

/* ------------------------------------------------------------ streams */

static void csv_field(struct ws_buf *b, const char *s, bool text)
{
    bool quote = false;
    if (!s)
        return;
    bool ctl = false;
    for (const char *c = s; *c; c++) {
        if (*c == ',' || *c == '"' || *c == '\n' || *c == '\r' || *c == '\t')
            quote = true;
        else if ((unsigned char)*c < 0x20 || *c == 0x7f)
            ctl = true;
    }
    /* spreadsheets run cells starting with these as formulas (a leading
     * TAB or CR is skipped by some before they look) */
    bool guard = text && (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' ||
                          *s == '\r');
    if (guard)
        quote = true;
    if (!quote && !ctl) {
        ws_buf_str(b, s);
        return;
    }
    if (quote)
        ws_buf_add(b, "\"", 1);
    if (guard)
        ws_buf_add(b, "'", 1);
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        /* text fields keep TAB, CR and LF (quoted); other control characters are dropped */
        if (text && ((u < 0x20 && u != '\t' && u != '\r' && u != '\n') || u == 0x7f))
            continue;
        if (*c == '"')
            ws_buf_add(b, "\"", 1);
        ws_buf_add(b, c, 1);
    }
    if (quote)
        ws_buf_add(b, "\"", 1);
}

struct ev_ctx {
    struct ws_http *h;
    size_t scanned;
    bool stopped;
};

static bool ev_match(const struct ws_http *h, const struct rv_event *ev)
{
    if (h->country[0] && strcmp(h->country, ev->country) != 0)
        return false;
    if (h->violation >= 0 && h->violation != ev->violation)
        return false;
    if (h->source[0] && strcmp(h->source, ev->source) != 0)
        return false;
    if ((h->from || h->to) && (ev->time_ms < h->from || ev->time_ms >= h->to))
        return false;
    return true;
}

static int ev_cb(void *arg, uint64_t seq, int64_t ingest_ms, const struct rv_event *ev)
{
    struct ev_ctx *c = arg;
    struct ws_http *h = c->h;
    struct ws_buf *b = &h->body;

    (void)ingest_ms;
    c->scanned++;
    h->cursor = seq;
    if (!ev_match(h, ev))
        return 0;
    h->sent++;
    if (h->fmt == FMT_CSV) {
        char t[32];
        ws_buf_printf(b, "%llu,", (unsigned long long)seq);
        csv_field(b, ev->source, true);
        ws_buf_add(b, ",", 1);
        csv_field(b, ev->id, true);
        ws_buf_printf(b, ",%s,%s,%s,%s,%u,%u,", rv_kind_name(ev->kind) ? rv_kind_name(ev->kind) : "",
                      ev->country, rv_violation_name(ev->violation) ? rv_violation_name(ev->violation) : "",
                      rv_time_format(ev->time_ms, t, sizeof(t)), ev->count, ev->severity);
        add_num(b, ev->confidence);
        ws_buf_add(b, ",", 1);
        if (ev->has_value)
            add_num(b, ev->value);
        ws_buf_add(b, ",", 1);
        csv_field(b, ev->admin1, true);
        ws_buf_add(b, ",", 1);
        if (ev->has_geo) {
            add_num(b, ev->lat);
            ws_buf_add(b, ",", 1);
            add_num(b, ev->lon);
        } else {
            ws_buf_add(b, ",", 1);
        }
        ws_buf_add(b, ",", 1);
        csv_field(b, ev->title, true);
        ws_buf_add(b, ",", 1);
        csv_field(b, ev->url, true);
        ws_buf_add(b, "\r\n", 2);
    } else {
        cJSON *o = rv_event_to_json(ev, h->role >= WS_ROLE_ANALYST);
        if (!o) {
            b->oom = true;
            return 1;
        }
        cJSON_AddNumberToObject(o, "seq", (double)seq);
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!txt) {
            b->oom = true;
            return 1;
        }
        if (h->fmt == FMT_JSON && !h->first)
            ws_buf_add(b, ",", 1);
        ws_buf_str(b, txt);
        if (h->fmt == FMT_NDJSON)
            ws_buf_add(b, "\n", 1);
        free(txt);
    }
    h->first = false;
    c->stopped = b->oom || b->len >= CHUNK_BYTES || h->sent >= h->limit;
    return c->stopped;
}

struct al_ctx {
    struct rv_ws *ws;
    struct ws_http *h;
    size_t scanned;
};

static int al_cb(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct al_ctx *c = arg;
    struct ws_http *h = c->h;
    cJSON *o;

    c->scanned++;
    h->cursor = seq;
    o = cJSON_ParseWithLength(json, len);
    if (cJSON_IsObject(o)) {
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(o, "country");
        const cJSON *vv = cJSON_GetObjectItemCaseSensitive(o, "violation");
        const cJSON *ll = cJSON_GetObjectItemCaseSensitive(o, "level");
        bool ok = true;
        if (h->country[0] && !(cJSON_IsString(cc) && strcmp(cc->valuestring, h->country) == 0))
            ok = false;
        if (h->violation >= 0 &&
            !(cJSON_IsString(vv) && rv_violation_from_name(vv->valuestring) == h->violation))
            ok = false;
        if (h->min_level > 0 &&
            ws_level_from_name(cJSON_IsString(ll) ? ll->valuestring : NULL) < h->min_level)
            ok = false;
        if (ok) {
            if (!h->first)
                ws_buf_add(&h->body, ",", 1);
            h->first = false;
            ws_buf_add(&h->body, json, len);
            h->sent++;
        }
    }
    cJSON_Delete(o);
    return h->body.oom || h->body.len >= CHUNK_BYTES || h->sent >= h->limit ||
           c->scanned >= 4096;
}

struct se_ctx {
    struct rv_ws *ws;
    struct ws_http *h;
    size_t n;
};

static int se_cb(void *arg, const struct rv_bin *bin)
{
    struct se_ctx *c = arg;
    struct ws_http *h = c->h;

    c->n++;
    h->from = bin->start_ms + 1;
    if (!h->first)
        ws_buf_add(&h->body, ",", 1);
    h->first = false;
    add_bin(c->ws, &h->body, bin, false);
    h->sent++;
    return h->body.oom || h->body.len >= CHUNK_BYTES || h->sent >= h->limit;
}

/* Fills h->body with the next chunk of a stream; sets h->done at the end. */
static int stream_fill(struct rv_ws *ws, struct ws_http *h)
{
    struct rv_errbuf err;
    int rc = RV_OK;

    h->body.len = 0;
    h->off = 0;
    if (h->kind == RQ_EVENTS) {
        /* a bounded slice of the log per writable callback, filtered here,
         * so a rare filter over a long log never stalls the service thread */
        struct ev_ctx c = {h, 0, false};
        if (h->sent < h->limit)
            rc = rv_store_read_log(ws->st, h->cursor + 1, EVENTS_SCAN, ev_cb, &c, &err);
        if ((!c.stopped && c.scanned < EVENTS_SCAN) || h->sent >= h->limit)
            h->done = true;
        if (h->done && h->fmt == FMT_JSON)
            ws_buf_str(&h->body, "]}\n");
    } else if (h->kind == RQ_ALERTS) {
        struct al_ctx c = {ws, h, 0};
        uint64_t before = h->cursor;
        rc = rv_store_read_alerts(ws->st, h->cursor, al_cb, &c, &err);
        bool stopped = h->body.len >= CHUNK_BYTES || c.scanned >= 4096;
        if (h->sent >= h->limit || !stopped || h->cursor == before)
            h->done = true;
        if (h->done)
            ws_buf_str(&h->body, "]}\n");
    } else if (h->kind == RQ_SERIES) {
        struct se_ctx c = {ws, h, 0};
        rc = rv_store_read_series(ws->st, h->country, h->violation, h->res, h->from, h->to, se_cb,
                                  &c, &err);
        if (h->sent >= h->limit || h->body.len < CHUNK_BYTES || h->from >= h->to)
            h->done = true;
        if (h->done)
            ws_buf_str(&h->body, "]}\n");
    }
    if (rc) {
        rv_log_warn("ws", "stream read failed reason=\"%s\"", err.msg);
        return -1;
    }
    return h->body.oom ? -1 : 0;
}

static int start_stream(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, const char *type)
{
    h->active = true;
    h->first = true;
    h->done = false;
    h->off = 0;
    count_status(ws, 200);
    if (send_headers(wsi, 200, type, LWS_ILLEGAL_HTTP_CONTENT_LEN))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int api_events(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, struct qparam *ps)
{
    char why[RV_ERRBUF_SIZE];
    uint64_t limit, after;
    struct qparam *p;

    if (h->role < WS_ROLE_ANALYST) {
        snprintf(why, sizeof(why), "token: role %s may not read events", ws_role_name(h->role));
        return reply_error(ws, wsi, h, 403, why);
    }
    if (q_country(ps, h->country, false, why, sizeof(why)) ||
        q_violation(ps, &h->violation, false, why, sizeof(why)) ||
        q_time(ps, "from", 0, &h->from, why, sizeof(why)) ||
        q_time(ps, "to", 0, &h->to, why, sizeof(why)) ||
        q_u64(ps, "limit", EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT, &limit, why, sizeof(why)) ||
        q_u64(ps, "after", 0, UINT64_MAX / 2, &after, why, sizeof(why)))
        return reply_error(ws, wsi, h, 400, why);
    if (h->from && h->to && h->to <= h->from)
        return reply_error(ws, wsi, h, 400, "to: must be after from");
    if (h->from && !h->to)
        h->to = INT64_MAX;
    p = qp(ps, "source");
    if (p->set && p->val[0]) {
        if (strlen(p->val) > RV_SOURCE_MAX)
            return reply_error(ws, wsi, h, 400, "source: too long");
        memcpy(h->source, p->val, strlen(p->val) + 1);
    }
    p = qp(ps, "format");
    h->fmt = FMT_JSON;
    if (p->set && p->val[0]) {
        if (strcmp(p->val, "json") == 0)
            h->fmt = FMT_JSON;
        else if (strcmp(p->val, "ndjson") == 0)
            h->fmt = FMT_NDJSON;
        else if (strcmp(p->val, "csv") == 0)
            h->fmt = FMT_CSV;
        else
            return reply_error(ws, wsi, h, 400, "format: must be json, ndjson or csv");
    }
    h->kind = RQ_EVENTS;
    h->limit = limit;
    h->cursor = after;
    if (start_stream(ws, wsi, h,
                     h->fmt == FMT_CSV      ? "text/csv; charset=utf-8"
                     : h->fmt == FMT_NDJSON ? "application/x-ndjson"
                                            : "application/json"))
        return -1;
    /* the stream's head goes before the first chunk */
    h->body.len = 0;
    if (h->fmt == FMT_JSON)
        ws_buf_str(&h->body, "{\"events\":[");
    else if (h->fmt == FMT_CSV)
        ws_buf_str(&h->body, "seq,source,id,kind,country,violation,time,count,severity,"
                             "confidence,value,admin1,lat,lon,title,url\r\n");
    return 0;
}

static int api_alerts(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, struct qparam *ps)
{
    char why[RV_ERRBUF_SIZE];
    uint64_t limit, since;
    struct qparam *p;

    if (q_country(ps, h->country, false, why, sizeof(why)) ||
        q_violation(ps, &h->violation, false, why, sizeof(why)) ||
        q_u64(ps, "since", 0, UINT64_MAX / 2, &since, why, sizeof(why)) ||
        q_u64(ps, "limit", ALERTS_DEFAULT_LIMIT, ALERTS_MAX_LIMIT, &limit, why, sizeof(why)))
        return reply_error(ws, wsi, h, 400, why);
    p = qp(ps, "level");
    h->min_level = 0;
    if (p->set && p->val[0]) {
        h->min_level = ws_level_from_name(p->val);
        if (h->min_level < 0)
            return reply_error(ws, wsi, h, 400, "level: must be watch, warning or critical");
    }
    h->kind = RQ_ALERTS;
    h->cursor = since;
    h->limit = limit;
    if (start_stream(ws, wsi, h, "application/json"))
        return -1;
    h->body.len = 0;
    ws_buf_printf(&h->body, "{\"alert_seq\":%llu,\"epoch\":\"%llu\",\"alerts\":[",
                  (unsigned long long)rv_store_last_alert_seq(ws->st),
                  (unsigned long long)rv_store_epoch(ws->st));
    return 0;
}

static int api_series(struct rv_ws *ws, struct lws *wsi, struct ws_http *h, struct qparam *ps)
{
    char why[RV_ERRBUF_SIZE];
    uint64_t limit;

    if (q_country(ps, h->country, true, why, sizeof(why)) ||
        q_violation(ps, &h->violation, true, why, sizeof(why)) ||
        q_res(ps, &h->res, why, sizeof(why)) || q_time(ps, "from", 0, &h->from, why, sizeof(why)) ||
        q_time(ps, "to", INT64_MAX, &h->to, why, sizeof(why)) ||
        q_u64(ps, "limit", 100000, SERIES_MAX_LIMIT, &limit, why, sizeof(why)))
        return reply_error(ws, wsi, h, 400, why);
    if (h->to <= h->from)
        return reply_error(ws, wsi, h, 400, "to: must be after from");
    h->kind = RQ_SERIES;
    h->limit = limit;
    if (start_stream(ws, wsi, h, "application/json"))
        return -1;
    h->body.len = 0;
    ws_buf_printf(&h->body, "{\"country\":\"%s\",\"violation\":\"%s\",\"res\":\"%s\",\"bins\":[",
                  h->country, rv_violation_name(h->violation), rv_res_name(h->res));
    return 0;
}

/* ------------------------------------------------------------ metrics, health */

static bool has_metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{'))
            return true;
    return false;
}

static void metric(struct ws_buf *b, const char *reg, const char *name, const char *type,
                   const char *help, const char *labels, long long v)
{
    if (reg && has_metric(reg, name))
        return;
    if (!labels || !strstr(b->p ? b->p : "", name))
        ws_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    ws_buf_printf(b, "%s%s%s%s %lld\n", name, labels ? "{" : "", labels ? labels : "",
                  labels ? "}" : "", v);
}

static int do_metrics(struct rv_ws *ws, struct lws *wsi, struct ws_http *h)
{
    struct ws_buf b = {0};
    char *reg = NULL;
    size_t rl = 0;
    struct rv_store_stats ss;

    if (ws->m && rv_metrics_render(ws->m, &reg, &rl) == RV_OK)
        ws_buf_add(&b, reg, rl);
    rv_store_get_stats(ws->st, &ss);
#define LL(x) ((long long)(x))
    metric(&b, reg, "rv_ws_connections", "gauge", "WebSocket connections open", NULL,
           atomic_load(&ws->g_conns));
    metric(&b, reg, "rv_ws_connections_total", "counter", "WebSocket connections accepted", NULL,
           LL(atomic_load(&ws->c_conns_total)));
    metric(&b, reg, "rv_ws_rejected_total", "counter",
           "WebSocket handshakes refused (path, origin, connection limit)", NULL,
           LL(atomic_load(&ws->c_rejected)));
    metric(&b, reg, "rv_ws_queue_depth", "gauge", "items waiting between threads",
           "queue=\"updates\"", atomic_load(&ws->g_qdepth));
    metric(&b, reg, "rv_ws_queue_depth", "gauge", "items waiting between threads",
           "queue=\"alert_ring\"", LL(ws->ring_n));
    metric(&b, reg, "rv_ws_updates_dropped_total", "counter",
           "updates dropped at the full queue (alerts are re-read from the store)", NULL,
           LL(atomic_load(&ws->c_q_dropped)));
    metric(&b, reg, "rv_ws_updates_bad_total", "counter", "updates that could not be read", NULL,
           LL(atomic_load(&ws->c_bad_updates)));
    metric(&b, reg, "rv_ws_resyncs_total", "counter",
           "clients that fell behind the alert ring and were resynced from the store", NULL,
           LL(atomic_load(&ws->c_resyncs)));
    metric(&b, reg, "rv_ws_alerts_sent_total", "counter", "alert messages sent", NULL,
           LL(atomic_load(&ws->c_alerts_sent)));
    metric(&b, reg, "rv_ws_cells_sent_total", "counter", "cell messages sent", NULL,
           LL(atomic_load(&ws->c_cells_sent)));
    metric(&b, reg, "rv_ws_message_writes_total", "counter",
           "writes of alert and cell messages to sockets (several messages a write when "
           "batched)", NULL, LL(atomic_load(&ws->c_msg_writes)));
    metric(&b, reg, "rv_ws_snapshots_total", "counter", "snapshots sent", NULL,
           LL(atomic_load(&ws->c_snapshots)));
    metric(&b, reg, "rv_ws_messages_received_total", "counter", "client messages received", NULL,
           LL(atomic_load(&ws->c_msgs_in)));
    metric(&b, reg, "rv_ws_errors_sent_total", "counter", "error messages sent to clients", NULL,
           LL(atomic_load(&ws->c_errors_sent)));
    metric(&b, reg, "rv_ws_errors_dropped_total", "counter",
           "error messages not queued (client not reading)", NULL,
           LL(atomic_load(&ws->c_errors_dropped)));
    static const char *const codes[] = {"code=\"2xx\"", "code=\"400\"", "code=\"401\"",
                                        "code=\"403\"", "code=\"404\"", "code=\"other\""};
    for (int i = 0; i < 6; i++)
        metric(&b, reg, "rv_http_requests_total", "counter", "HTTP API answers by status", codes[i],
               LL(atomic_load(&ws->c_http[i])));
    metric(&b, reg, "rv_ws_alert_seq", "gauge", "last alert seq held by the ws-server", NULL,
           LL(ws->last));
    metric(&b, reg, "rv_store_alert_seq", "gauge", "last alert seq in the store", NULL,
           LL(rv_store_last_alert_seq(ws->st)));
    metric(&b, reg, "rv_store_log_seq", "gauge", "last committed log seq", NULL,
           LL(rv_store_last_seq(ws->st)));
    unsigned char cur[8];
    size_t cl = 0;
    if (rv_store_get_cursor(ws->st, "aggregator", cur, sizeof(cur), &cl) == RV_OK && cl == 8) {
        uint64_t done = rv_get_be64(cur), last = rv_store_last_seq(ws->st);
        metric(&b, reg, "rv_aggregator_seq_lag", "gauge",
               "log seqs committed but not yet aggregated durably", NULL,
               LL(last > done ? last - done : 0));
    }
    metric(&b, reg, "rv_store_commits_total", "counter", "store write transactions committed",
           NULL, LL(ss.commits));
    metric(&b, reg, "rv_store_events_accepted_total", "counter", "events stored", NULL,
           LL(ss.events_accepted));
    metric(&b, reg, "rv_store_events_duplicate_total", "counter", "duplicate events ignored", NULL,
           LL(ss.events_duplicate));
    if (!reg || !has_metric(reg, "rv_store_commit_seconds_total")) {
        ws_buf_printf(&b,
                      "# HELP rv_store_commit_seconds_total time spent committing\n"
                      "# TYPE rv_store_commit_seconds_total counter\n"
                      "rv_store_commit_seconds_total %.9f\n"
                      "# HELP rv_store_commit_seconds_last duration of the last commit\n"
                      "# TYPE rv_store_commit_seconds_last gauge\n"
                      "rv_store_commit_seconds_last %.9f\n",
                      (double)ss.commit_ns_total / 1e9, (double)ss.commit_ns_last / 1e9);
    }
    metric(&b, reg, "rv_store_map_bytes", "gauge", "LMDB map size", NULL, LL(ss.map_size));
    metric(&b, reg, "rv_store_dedup_keys_memory", "gauge",
           "dedup keys held in memory until their checkpoint into the events db", NULL,
           LL(ss.dedup_keys_memory));
    metric(&b, reg, "rv_store_dedup_filter_skips_total", "counter",
           "new keys the filter of the events db ruled out without a lookup", NULL,
           LL(ss.dedup_filter_skips));
    metric(&b, reg, "rv_store_dedup_filter_false_total", "counter",
           "keys the filter let through that the events db did not hold", NULL,
           LL(ss.dedup_filter_false));
#undef LL
    free(reg);
    return reply_buf(ws, wsi, h, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static int do_healthz(struct rv_ws *ws, struct lws *wsi, struct ws_http *h)
{
    struct ws_buf b = {0};
    ws_buf_printf(&b,
                  "{\"status\":\"ok\",\"alert_seq\":%llu,\"log_seq\":%llu,\"epoch\":\"%llu\","
                  "\"connections\":%d}\n",
                  (unsigned long long)rv_store_last_alert_seq(ws->st),
                  (unsigned long long)rv_store_last_seq(ws->st),
                  (unsigned long long)ws->epoch, atomic_load(&ws->g_conns));
    return reply_buf(ws, wsi, h, 200, "application/json", &b);
}

/* ------------------------------------------------------------ dispatch */

static int route(struct rv_ws *ws, struct lws *wsi, struct ws_http *h)
{
    char uri[WS_URI_MAX], why[RV_ERRBUF_SIZE], tok[256];
    struct qparam ps[] = {{"token", "", 0},   {"country", "", 0}, {"violation", "", 0},
                          {"res", "", 0},     {"from", "", 0},    {"to", "", 0},
                          {"since", "", 0},   {"level", "", 0},   {"limit", "", 0},
                          {"format", "", 0},  {"source", "", 0},  {"after", "", 0},
                          {NULL, "", 0}};
    const char *reason = NULL;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) >= (int)sizeof(uri)) {
        snprintf(why, sizeof(why), "path: longer than %d bytes", WS_URI_MAX - 1);
        return reply_error(ws, wsi, h, 414, why);
    }
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0) {
        if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 ||
            lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0 ||
            lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0 ||
            lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI) > 0) {
            /* a body may follow that we will not read: answer and close */
            count_status(ws, 405);
            lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "only GET is served");
            return -1;
        }
        return reply_error(ws, wsi, h, 400, "path: missing");
    }
    if (strcmp(uri, "/healthz") == 0)
        return do_healthz(ws, wsi, h);
    if (strcmp(uri, "/api/v1/openapi.json") == 0)
        return reply_text(ws, wsi, h, 200, "application/json", ws_openapi_json,
                          strlen(ws_openapi_json));
    if (strcmp(uri, "/") == 0 || strcmp(uri, "/index.html") == 0)
        return reply_text(ws, wsi, h, 200, "text/html; charset=utf-8", builtin_page,
                          sizeof(builtin_page) - 1);
    bool is_metrics = strcmp(uri, "/metrics") == 0;
    if (!is_metrics && strcmp(uri, "/api/v1/overview") && strcmp(uri, "/api/v1/series") &&
        strcmp(uri, "/api/v1/alerts") && strcmp(uri, "/api/v1/events")) {
        snprintf(why, sizeof(why), "path: no such endpoint '%.100s'", uri);
        return reply_error(ws, wsi, h, 404, why);
    }

    /* access */
    bool have = ws_http_token(wsi, tok, sizeof(tok));
    h->role = ws_auth_role(ws->st, have ? tok : NULL, ws_http_open(ws, wsi), NULL, &reason);
    if (h->role == WS_ROLE_NONE)
        return reply_error(ws, wsi, h, reason && strncmp(reason, "host:", 5) == 0 ? 403 : 401,
                           reason ? reason : "token: missing");
    if (is_metrics) {
        if (h->role < WS_ROLE_ADMIN)
            return reply_error(ws, wsi, h, 403, "token: metrics need the admin role");
        return do_metrics(ws, wsi, h);
    }
    if (parse_query(wsi, ps, why, sizeof(why)))
        return reply_error(ws, wsi, h, 400, why);

    static const char *const allowed[][10] = {
        {"/api/v1/overview", "res", NULL},
        {"/api/v1/series", "country", "violation", "res", "from", "to", "limit", NULL},
        {"/api/v1/alerts", "since", "country", "violation", "level", "limit", NULL},
        {"/api/v1/events", "country", "violation", "source", "from", "to", "limit", "format",
         "after", NULL},
    };
    for (size_t e = 0; e < sizeof(allowed) / sizeof(allowed[0]); e++) {
        if (strcmp(uri, allowed[e][0]))
            continue;
        for (struct qparam *p = ps; p->name; p++) {
            bool ok = !p->set || strcmp(p->name, "token") == 0;
            for (int k = 1; !ok && allowed[e][k]; k++)
                ok = strcmp(allowed[e][k], p->name) == 0;
            if (!ok) {
                snprintf(why, sizeof(why), "%s: unknown parameter", p->name);
                return reply_error(ws, wsi, h, 400, why);
            }
        }
    }
    if (strcmp(uri, "/api/v1/overview") == 0)
        return api_overview(ws, wsi, h, ps);
    if (strcmp(uri, "/api/v1/series") == 0)
        return api_series(ws, wsi, h, ps);
    if (strcmp(uri, "/api/v1/alerts") == 0)
        return api_alerts(ws, wsi, h, ps);
    return api_events(ws, wsi, h, ps);
}

static int http_writable(struct rv_ws *ws, struct lws *wsi, struct ws_http *h)
{
    if (!h->active)
        return 0;
    if (h->kind != RQ_BUF && h->off >= h->body.len && !h->done) {
        if (stream_fill(ws, h))
            return -1;
    }
    size_t rem = h->body.len - h->off, n = rem > CHUNK_BYTES ? CHUNK_BYTES : rem;
    bool final = h->done && n == rem;
    unsigned char *tmp = malloc(LWS_PRE + n + 1);
    if (!tmp)
        return -1;
    memcpy(tmp + LWS_PRE, h->body.p ? h->body.p + h->off : "", n);
    int w = lws_write(wsi, tmp + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    free(tmp);
    if (w < (int)n)
        return -1;
    h->off += n;
    if (final) {
        ws_buf_free(&h->body);
        h->active = false;
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

int ws_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct rv_ws *ws = lws_context_user(lws_get_context(wsi));
    struct ws_http *h = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!h)
            return -1;
        ws_buf_free(&h->body);
        memset(h, 0, sizeof(*h));
        h->violation = -1;
        if (route(ws, wsi, h))
            return -1;
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!h)
            return 0;
        return http_writable(ws, wsi, h);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (h) {
            ws_buf_free(&h->body);
            h->active = false;
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* a WebSocket without the rv.v1 subprotocol */
        return -1;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/*
 * ws_int: what the files of ws-server/ share (not a public contract).
 *
 * Threads: struct rv_ws is owned by the lws service thread except the
 * fields under `lock` (the hand-over queue from the SUB thread), the
 * atomics (counters read by /metrics and rv_ws_port) and the immutable
 * configuration copied at start.
 */
#ifndef RV_WS_INT_H
#define RV_WS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "rv/metrics.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/ws.h"

#define WS_PROTO "rv.v1"
#define WS_NCOUNTRY 249
#define WS_RES_SLOTS 4          /* distinct cell resolutions ("1h", "5m" ...) told apart */
#define WS_NCELL (WS_NCOUNTRY * RV_VIOLATION_COUNT * WS_RES_SLOTS)
#define WS_CELL_WORDS ((WS_NCELL + 63) / 64)
#define WS_CTL_MAX 4            /* control messages queued per connection */
#define WS_CHUNK_MAX 32         /* alerts read from the store per catch-up step */
#define WS_CHUNK_SCAN 1024      /* alerts scanned per catch-up step */
#define WS_FRAG 16384           /* fragment size for large messages (snapshot) */
#define WS_BATCH 65536          /* bytes of queued messages sent in one write (frames back to back) */
#define WS_KEY_MAX (2 + 1 + 40 + 1 + 128 + 1 + 1) /* cc|violation|admin1 */
#define WS_URI_MAX 1024         /* longest path (without the query) answered; longer: 414 */

enum ws_role { WS_ROLE_NONE = 0, WS_ROLE_VIEWER = 1, WS_ROLE_ANALYST = 2, WS_ROLE_ADMIN = 3 };
enum ws_level { WS_LVL_WATCH = 0, WS_LVL_WARNING = 1, WS_LVL_CRITICAL = 2 };
enum ws_state { WS_ST_OPENED = 0, WS_ST_ESCALATED, WS_ST_DEESCALATED, WS_ST_RESOLVED };
/* May a request have the open (no-token) mode? Only on a loopback bind,
 * and only when its Host names loopback (no DNS rebinding). */
enum ws_open { WS_OPEN_OK = 0, WS_OPEN_NOT_LOOPBACK, WS_OPEN_BAD_HOST };
/* What granted a session its subscription (F12 re-checks). */
enum ws_auth { WS_AUTH_NONE = 0, WS_AUTH_OPEN, WS_AUTH_TOKEN };

/* A message ready for lws_write: LWS_PRE bytes of room, then LEN bytes. */
struct ws_msg {
    unsigned char *buf; /* malloc'd; payload at buf + LWS_PRE */
    size_t len;
};

/* The body of an unfiltered snapshot ("alerts":[..],"cells":[..]}),
 * shared by every session that subscribes with no filter while the hub
 * has not changed: a surge of dashboards costs one copy, not one each
 * (lws thread; refcounted). */
struct ws_snap {
    char *body;
    size_t len;
    uint64_t version; /* rv_ws.hub_ver it was built at */
    unsigned refs;    /* sessions sending it, + 1 while it is rv_ws.snap */
};

/* One alert state change as held in the ring (lws thread). */
struct ws_alert {
    uint64_t seq;
    int16_t ci;     /* country index, -1 unknown */
    int8_t viol;    /* violation, -1 unknown */
    uint8_t level;  /* enum ws_level */
    uint8_t state;  /* enum ws_state */
    char key[WS_KEY_MAX]; /* country|violation|admin1: identity of the alert (admin1 whole,
                             up to RV_ADMIN1_MAX; a longer one ends in a hash of it) */
    struct ws_msg m; /* {"type":"alert",...} */
};

/* An item handed over by the SUB thread (under rv_ws.lock). */
struct ws_item {
    struct ws_item *next;
    bool is_cell;
    char *json;   /* NUL-terminated, owned */
    size_t len;
};

/* Per WebSocket connection (lws per-session data; lws thread). */
struct ws_sess {
    struct ws_sess *prev, *next; /* rv_ws.sessions */
    struct lws *wsi;
    int role;                    /* of the current subscription */
    bool has_tok;                /* the handshake presented a token ... */
    unsigned char tok_hash[32];  /* ... with this SHA-256, checked again on each subscribe */
    uint8_t open;                /* enum ws_open of the handshake */
    uint8_t auth;                /* enum ws_auth of the current subscription */
    bool authed;                 /* has subscribed successfully once (else counted in n_unauth) */
    bool closing;                /* told why; closed once the control queue is written */
    bool ext;                    /* an extension (permessage-deflate) was accepted: no batching */
    unsigned char auth_hash[32]; /* SHA-256 of the token that granted the subscription */
    uint64_t t_open_ns;          /* established at (rv_mono_ns) */
    bool subscribed;
    bool snap_pending;           /* snapshot to send next */
    bool live;                   /* served from the ring (not from the store) */
    bool want_cells;
    bool all_countries;
    bool reset;                  /* since/epoch did not match: told in the snapshot */
    bool rx_active;              /* inside a multi-fragment message */
    bool rx_overflow, rx_binary;
    uint8_t min_level;
    uint8_t res_mask;            /* bit per resolution slot (rv_ws.res_names) */
    uint16_t viol_mask;          /* bit per violation */
    uint64_t since;              /* requested since (snap_pending) */
    bool has_since;
    uint64_t cursor;             /* every alert <= cursor was sent or filtered out */
    uint64_t hint;               /* absolute ring index of the entry after cursor (a guess) */
    uint8_t countries[(WS_NCOUNTRY + 7) / 8];
    struct ws_msg out;           /* large message being sent in fragments */
    struct ws_msg held;          /* taken from the queue but left out of a full batch:
                                    the first thing written at the next writable */
    size_t out_off;
    struct ws_snap *shared;      /* shared snapshot body sent after out (a reference) */
    size_t sh_off;
    struct ws_msg ctl[WS_CTL_MAX]; /* errors, resync, pong */
    int ctl_n;
    struct ws_msg *chunk;        /* alerts read from the store, being sent */
    size_t chunk_n, chunk_i;
    uint64_t *chunk_seq;
    uint64_t chunk_to;           /* last seq the chunk scanned */
    char *rx;                    /* message being received (max_msg) */
    size_t rx_len;
    double sub_tokens;           /* subscribe rate limit bucket */
    uint64_t sub_last_ns;
    unsigned n_dirty;
    uint64_t dirty[WS_CELL_WORDS]; /* cells changed since last sent */
};

/* Per HTTP request (lws per-session data of the http protocol). */
struct ws_http;

struct rv_ws {
    /* immutable after start */
    struct rv_store *st;
    struct rv_metrics *m;
    void *zctx;
    char host[256];
    int port_req;
    char web_root[1024];
    bool web_ok;                 /* web_root has index.html */
    char tls_cert[1024], tls_key[1024];
    char updates[256];
    char origins[RV_WS_MAX_ORIGINS][256];
    size_t n_origins;
    bool loopback;
    struct rv_ws_opts o;         /* numbers; string fields NULL */
    int16_t cidx[26 * 26];       /* two letters -> country index, -1 */
    char ccode[WS_NCOUNTRY][3];
    uint64_t epoch;

    /* lws */
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[3];
    struct lws_http_mount mounts[4];
    struct lws_extension exts[2];
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t poll_sul;
    lws_sorted_usec_list_t sess_sul; /* once a second: subscribe deadline, token re-check */
    uint64_t next_tok_check_ns;
    unsigned max_unauth;         /* sessions not yet subscribed allowed at once */
    atomic_int port;

    /* threads */
    pthread_t svc_thr, sub_thr;
    bool svc_started, sub_started;
    atomic_bool stop;

    /* hand-over from the SUB thread */
    pthread_mutex_t lock;
    struct ws_item *q_head, *q_tail; /* lock */
    size_t q_n;                      /* lock */
    bool q_dropped_alert;            /* lock: an alert was dropped: re-read the store */

    /* lws thread: hub state */
    struct ws_alert *ring;       /* alert_ring entries, oldest at ring_head */
    size_t ring_cap, ring_head, ring_n;
    uint64_t ring_evicted;       /* entries dropped from the ring so far */
    uint64_t base;               /* every alert with seq in (base, last] is in the ring */
    uint64_t last;               /* last alert seq known */
    struct ws_alert *open;       /* open alerts (not resolved), for snapshots */
    size_t open_n, open_cap;
    struct ws_msg cells[WS_NCELL]; /* latest {"type":"cell"} per country x violation x res */
    char res_names[WS_RES_SLOTS][8]; /* resolution of each slot, filled as seen */
    int n_res;
    struct ws_sess *sessions;
    unsigned n_sess;
    unsigned n_unauth;           /* sessions that have not subscribed successfully yet */
    uint64_t hub_ver;            /* bumped by every alert and cell */
    struct ws_snap *snap;        /* the current shared snapshot body, or NULL */
    unsigned char scratch[LWS_PRE + WS_FRAG]; /* fragments of shared bodies are copied here */
    unsigned char batch[WS_BATCH]; /* complete frames of one session, written at once */

    /* counters (any thread) */
    atomic_uint_fast64_t c_conns_total, c_resyncs, c_msgs_in, c_errors_sent, c_errors_dropped,
        c_alerts_sent, c_cells_sent, c_msg_writes, c_snapshots, c_q_dropped, c_http[6], c_rejected,
        c_bad_updates;
    atomic_int g_conns, g_qdepth, g_chunked;
};

/* ---- ws.c */
int ws_country_index(const struct rv_ws *ws, const char *cc);
int ws_level_from_name(const char *s);
void ws_msg_free(struct ws_msg *m);
/* Makes a message of TEXT (LEN bytes). Errors: RV_ENOMEM. */
int ws_msg_make(struct ws_msg *m, const char *text, size_t len);

/* ---- ws_auth.c */
/* True if the store holds any token. */
bool ws_auth_any(struct rv_store *st);
/* Role of TOKEN (SHA-256 looked up in meta, constant-time compare):
 * WS_ROLE_NONE when unknown or revoked. */
int ws_auth_lookup(struct rv_store *st, const char *token);
/* Effective role of a request presenting TOKEN (NULL = none). With no
 * token in the store: admin if OPEN is WS_OPEN_OK (*open_mode set true
 * when OPEN_MODE is not NULL), else NONE with
 *   "token: no access tokens are configured (create one with rvctl token create)"
 *   (WS_OPEN_NOT_LOOPBACK) or
 *   "host: only 127.0.0.1, [::1] or localhost are served without access tokens"
 *   (WS_OPEN_BAD_HOST). *why gets the reason for NONE. */
int ws_auth_role(struct rv_store *st, const char *token, int open, bool *open_mode,
                 const char **why);
/* Same for a token known by its SHA-256 (HASH NULL = none). */
int ws_auth_role_hash(struct rv_store *st, const unsigned char *hash, int open, bool *open_mode,
                      const char **why);

/* Every token's hash and role, read in one transaction (for re-checking
 * live sessions). Free with ws_auth_set_free. */
struct ws_tok_ent {
    unsigned char hash[32];
    int role;
};
struct ws_tok_set {
    struct ws_tok_ent *v;
    size_t n, cap;
    bool oom;
};
void ws_auth_set_load(struct rv_store *st, struct ws_tok_set *ts);
/* Role of HASH in TS (constant-time compare of each), WS_ROLE_NONE if absent. */
int ws_auth_set_role(const struct ws_tok_set *ts, const unsigned char *hash);
void ws_auth_set_free(struct ws_tok_set *ts);
void ws_auth_hash(const char *token, unsigned char hash[32]);
const char *ws_role_name(int role);

/* ---- ws_http.c */
extern const size_t ws_http_pss_size;
int ws_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
/* Origin check for a WebSocket handshake; 0 = allowed. */
int ws_http_origin_ok(struct rv_ws *ws, struct lws *wsi);
/* Whether the request's Host names loopback: 127.x.x.x, [::1] or
 * localhost, with an optional port (a missing Host counts as loopback:
 * browsers always send one). */
bool ws_http_host_loopback(struct lws *wsi);
/* enum ws_open for a request on WS. */
int ws_http_open(struct rv_ws *ws, struct lws *wsi);
/* Copies the token of the request (Bearer header or ?token=) into BUF;
 * returns false when none. */
bool ws_http_token(struct lws *wsi, char *buf, size_t cap);

/* ---- ws_openapi.c */
extern const char ws_openapi_json[];

/* ---- small growing text buffer */
struct ws_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void ws_buf_reserve_pre(struct ws_buf *b); /* starts with LWS_PRE bytes of room */
void ws_buf_add(struct ws_buf *b, const char *s, size_t n);
void ws_buf_str(struct ws_buf *b, const char *s);
void ws_buf_printf(struct ws_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ws_buf_json_str(struct ws_buf *b, const char *s); /* quoted, escaped */
void ws_buf_free(struct ws_buf *b);

#endif

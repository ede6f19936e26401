/*
 * ws: the libwebsockets server. One port, one lws context: the dashboard's
 * static files (a mount of web_root), the JSON HTTP API (/api/v1/...),
 * /metrics, /healthz and the WebSocket protocol rv.v1 on /ws (see
 * docs/protocol.md). All lws_* calls live in ws-server/.
 *
 * Threads: rv_ws_start() creates the lws context on the calling thread,
 * then hands it to its own service thread; a second thread SUBscribes to
 * the aggregator's updates (opts.updates, default RV_EP_UPDATES) and hands
 * them over through a mutex-protected queue and lws_cancel_service().
 * rv_ws_start / rv_ws_stop from one controlling thread; rv_ws_port from
 * any thread.
 *
 * Alerts are read from the store (the published alert is a wake-up and a
 * fallback), so a subscriber never misses one: gaps on the ZeroMQ link
 * and slow consumers are served from the `alerts` db.
 */
#ifndef RV_WS_H
#define RV_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rv/err.h"

struct rv_store;
struct rv_metrics;
struct rv_ws;

#define RV_WS_MAX_ORIGINS 16

/* Options. Strings are borrowed: they must live until rv_ws_start()
 * returns (it copies what it keeps). */
struct rv_ws_opts {
    const char *http;        /* "HOST:PORT" ("[::1]:8080" for IPv6); port 0 = OS-chosen.
                                Default "127.0.0.1:8080" */
    const char *web_root;    /* dashboard directory; missing or empty = built-in page.
                                Default RV_WEB_ROOT */
    const char *tls_cert;    /* PEM certificate; with tls_key turns TLS on. Default NULL */
    const char *tls_key;     /* PEM private key. Default NULL */
    const char *updates;     /* aggregator PUB endpoint to connect to. Default RV_EP_UPDATES */
    const char *origins[RV_WS_MAX_ORIGINS]; /* allowed Origin values ("https://x.org");
                                             none = same host as the request, or no Origin */
    size_t n_origins;
    bool deflate;            /* permessage-deflate (default false: crashes seen in lws 4.1) */
    unsigned max_conns;      /* WebSocket connections (default 20000) */
    size_t max_msg;          /* largest client message, bytes (default 16384) */
    size_t alert_ring;       /* recent alerts kept in memory; a client further behind is
                                resynced from the store (default 4096) */
    size_t max_queue;        /* alerts/cells queued between the SUB and service threads
                                (default 65536); past it they are dropped and re-read */
    unsigned ping_s;         /* ping an idle connection after (default 30) */
    unsigned idle_s;         /* hang up after no valid pong/data for (default 75) */
    unsigned sub_burst;      /* subscribes accepted in a burst per connection (default 20) */
    unsigned sub_per_s;      /* ...refilled at this rate (default 2) */
    unsigned poll_ms;        /* check the store for alerts not announced (default 500) */
    unsigned sub_timeout_s;  /* close a WebSocket not subscribed successfully within (default 10) */
    unsigned max_unauth;     /* WebSockets not yet subscribed held at once; past it a
                                handshake needs a valid token (header or ?token=).
                                0 = max_conns / 2 (default) */
    unsigned token_check_s;  /* re-read the tokens and close sessions whose token was
                                revoked or changed role (default 5) */
};

/* Fills the defaults above. */
void rv_ws_opts_default(struct rv_ws_opts *o);

/* Reads the "ws" config section over O (SECTION may be NULL: O unchanged).
 * Keys: http, web_root, tls_cert, tls_key, updates, origins (array of
 * strings), deflate, max_conns, max_msg, alert_ring, max_queue, ping_s,
 * idle_s, sub_burst, sub_per_s, poll_ms, sub_timeout_s, max_unauth, token_check_s.
 * Strings point into SECTION.
 * Unknown keys are rejected. Errors: RV_EINVAL with "ws.KEY: reason". */
int rv_ws_opts_from_config(struct rv_ws_opts *o, const cJSON *section, struct rv_errbuf *err);

/* Starts the server. ZCTX is the process's zmq context (shared); ST the
 * open store (borrowed; must outlive the server); M may be NULL. Binds
 * before returning, so rv_ws_port() is valid at once. Refuses a
 * non-loopback bind when the store holds no token:
 *   "http: refusing to listen on 0.0.0.0 without access tokens (create one
 *    with rvctl token create)".
 * The open (no-token) mode exists only on a loopback bind and for requests
 * whose Host is 127.x.x.x, [::1] or localhost: if the last token is revoked
 * while a non-loopback server runs, every request is refused (401), never
 * let in.
 * On success *out is yours; stop it with rv_ws_stop().
 * Errors: RV_EINVAL (bad option, message in ERR), RV_EPERM (the refusal
 * above), RV_EIO (bind failed, TLS files unreadable), RV_ENOMEM. */
int rv_ws_start(void *zctx, struct rv_store *st, const struct rv_ws_opts *o, struct rv_metrics *m,
                struct rv_ws **out, struct rv_errbuf *err);

/* The bound TCP port. */
int rv_ws_port(const struct rv_ws *ws);

/* Stops both threads, closes every connection, frees, sets *ws NULL.
 * Accepts NULL and *ws == NULL. */
void rv_ws_stop(struct rv_ws **ws);

/* `rvctl token create|list|revoke`: ARGV[0] is "token".
 *   token create --data DIR --role viewer|analyst|admin [--name NAME]
 *       prints the new token once (43 characters, base64url); only its
 *       SHA-256 is stored (meta "tok:<hex>")
 *   token list --data DIR      one line per token: id role name created
 *   token revoke --data DIR ID  ID is a prefix (>= 8 hex) of the id, or the name
 * Returns the exit code: 0 ok, 1 rejected (no such token), 2 bad usage or
 * the store could not be opened. */
int rv_token_main(int argc, char **argv);

#endif

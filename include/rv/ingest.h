/*
 * ingest: the partner gateway. A ZeroMQ ROUTER bound to the ingest
 * endpoint; partners (DEALER) send [batch-id, payload] where payload is
 * NDJSON or a JSON array of events, and get [batch-id, reply JSON] back
 * only after the batch's transaction is durable (docs/ingest-protocol.md).
 *
 * With a partners file, CURVE is on: a ZAP handler lets in only the listed
 * public keys and names the source after the key's partner. Without one,
 * the NULL mechanism is allowed only on a loopback endpoint and the source
 * is "local".
 *
 * Threads: the gateway runs one thread for the ROUTER and one for ZAP;
 * rv_gateway_start/stop from the owning (main) thread.
 */
#ifndef RV_INGEST_H
#define RV_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "rv/err.h"
#include "rv/metrics.h"
#include "rv/writer.h"

struct rv_gateway;

struct rv_gateway_opts {
    const char *endpoint;        /* default "tcp://127.0.0.1:7701"; "tcp://127.0.0.1:*" picks a port */
    const char *partners_file;   /* NULL/"": NULL mechanism, loopback only */
    const char *server_key_file; /* the server's secret key (rvctl keygen); required with partners */
    size_t max_msg_bytes;        /* ZMQ_MAXMSGSIZE (default 16 MiB) */
    size_t max_batch_events;     /* events in one batch (default 100000) */
    size_t max_reply_errors;     /* errors listed in one reply (default 1000) */
};

void rv_gateway_opts_default(struct rv_gateway_opts *o);

/* A partner from the partners file. */
struct rv_partner {
    char name[65];
    char pub_z85[41];
    unsigned char pub[32];
};

/* Parses a partners file: one "NAME PUBLIC_KEY_Z85" a line, '#' comments
 * and blank lines ignored. *out is malloc'd (free()). Errors: RV_ENOTFOUND,
 * RV_EINVAL with "partners:LINE: reason". */
int rv_partners_load(const char *file, struct rv_partner **out, size_t *n, struct rv_errbuf *err);

/* Reads a key file written by rvctl keygen (Z85 text, 40 chars) into
 * Z85 (41 bytes with NUL). Errors: RV_ENOTFOUND, RV_EINVAL. */
int rv_key_load(const char *file, char *z85, struct rv_errbuf *err);

/* True when ENDPOINT only reaches this host (tcp on 127.0.0.0/8, ::1 or
 * localhost; ipc; inproc). */
bool rv_endpoint_is_loopback(const char *endpoint);

/* Binds and starts. ZCTX is the shared zmq context. Refuses a non-loopback
 * endpoint without partners, and partners without a server key, with a
 * clear message. Errors: RV_EINVAL, RV_EPERM, RV_EIO. */
int rv_gateway_start(void *zctx, struct rv_writer *w, const struct rv_gateway_opts *o,
                     struct rv_metrics *m, struct rv_gateway **out, struct rv_errbuf *err);

/* The endpoint actually bound (resolves a "*" port). */
const char *rv_gateway_endpoint(const struct rv_gateway *g);

/* Stops reading, waits for the batches already taken to commit and acks
 * them, closes, frees. Accepts NULL; sets *g to NULL. */
void rv_gateway_stop(struct rv_gateway **g);

#endif

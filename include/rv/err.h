/*
 * err: error codes and the error buffer every module shares.
 *
 * Functions return RV_OK (0) or a negative enum rv_err; results travel
 * through out-params. Code that reads untrusted input also fills a
 * struct rv_errbuf with a specific message: field first, subject in
 * quotes, lower case, no full stop ("country: 'XX' is not an ISO 3166-1
 * alpha-2 code").
 */
#ifndef RV_ERR_H
#define RV_ERR_H

#include <stddef.h>

enum rv_err {
    RV_OK = 0,
    RV_EINVAL = -1,    /* bad input or argument */
    RV_ENOMEM = -2,    /* allocation failed */
    RV_EIO = -3,       /* I/O or LMDB failure */
    RV_ECORRUPT = -4,  /* stored data is not what we wrote */
    RV_EFULL = -5,     /* disk or map full; nothing written */
    RV_ETOOBIG = -6,   /* past a configured cap */
    RV_ENOTFOUND = -7, /* no such key, file or name */
    RV_EVERSION = -8,  /* data dir of another schema version */
    RV_EAGAIN = -9,    /* queue full or not ready: try again */
    RV_EPERM = -10,    /* not allowed */
    RV_EPROTO = -11,   /* peer broke the protocol */
    RV_ETIMEDOUT = -12 /* a bounded wait ran out */
};

#define RV_ERRBUF_SIZE 256

/* Filled by code that rejects input. msg is always NUL-terminated. */
struct rv_errbuf {
    int code;                 /* the enum rv_err returned with it */
    char msg[RV_ERRBUF_SIZE]; /* "field: reason" */
};

/* Names any return code; never NULL. Thread-safe. */
const char *rv_strerror(int rc);

/* Formats into ERR (may be NULL) and returns CODE, so that callers can
 * write `return rv_err_set(err, RV_EINVAL, "...")`. */
int rv_err_set(struct rv_errbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Empties ERR. Accepts NULL. */
void rv_err_clear(struct rv_errbuf *err);

/* Splits "field: reason" in MSG: copies the field into FIELD (cap FCAP,
 * "" if MSG has no "field: " prefix) and returns a pointer to the reason
 * inside MSG. */
const char *rv_err_split(const char *msg, char *field, size_t fcap);

#endif

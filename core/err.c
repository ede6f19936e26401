/* err: names for return codes and the error buffer helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rv/err.h"

const char *rv_strerror(int rc)
{
    switch (rc) {
    case RV_OK: return "ok";
    case RV_EINVAL: return "invalid input";
    case RV_ENOMEM: return "out of memory";
    case RV_EIO: return "i/o error";
    case RV_ECORRUPT: return "stored data is corrupt";
    case RV_EFULL: return "storage full";
    case RV_ETOOBIG: return "too big";
    case RV_ENOTFOUND: return "not found";
    case RV_EVERSION: return "unsupported schema version";
    case RV_EAGAIN: return "busy, try again";
    case RV_EPERM: return "not allowed";
    case RV_EPROTO: return "protocol error";
    case RV_ETIMEDOUT: return "timed out";
    default: return "unknown error";
    }
}

int rv_err_set(struct rv_errbuf *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void rv_err_clear(struct rv_errbuf *err)
{
    if (!err)
        return;
    err->code = RV_OK;
    err->msg[0] = '\0';
}

const char *rv_err_split(const char *msg, char *field, size_t fcap)
{
    const char *colon = strstr(msg, ": ");
    size_t n;

    if (fcap)
        field[0] = '\0';
    if (!colon)
        return msg;
    n = (size_t)(colon - msg);
    /* a field is one token: letters, digits, '_', '.', '[', ']', '-' */
    for (size_t i = 0; i < n; i++) {
        char c = msg[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '[' || c == ']' || c == '-'))
            return msg;
    }
    if (fcap) {
        if (n >= fcap)
            n = fcap - 1;
        memcpy(field, msg, n);
        field[n] = '\0';
    }
    return colon + 2;
}

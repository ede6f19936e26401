/*
 * log: the one logger (global level, set at start). Writes whole lines
 * to stderr with one fprintf so threads do not interleave within a line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rv/err.h"
#include "rv/log.h"

/* Global: the minimum level, written before threads start. */
static enum rv_log_level g_level = RV_LOG_INFO;

void rv_log_set_level(enum rv_log_level lvl)
{
    g_level = lvl;
}

enum rv_log_level rv_log_get_level(void)
{
    return g_level;
}

int rv_log_parse_level(const char *s, enum rv_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};

    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum rv_log_level)i;
            return RV_OK;
        }
    }
    return RV_EINVAL;
}

void rv_log_write(enum rv_log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (lvl < g_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, names[lvl], module);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

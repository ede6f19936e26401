/*
 * log: the one logger. Lines are "time level module key=value ...".
 * The level is global state (set once at start, read by every thread);
 * rv_log_* check it before formatting. Never log secrets or payloads.
 */
#ifndef RV_LOG_H
#define RV_LOG_H

enum rv_log_level { RV_LOG_DEBUG = 0, RV_LOG_INFO, RV_LOG_WARN, RV_LOG_ERROR, RV_LOG_OFF };

/* Sets the minimum level. Call before starting threads. */
void rv_log_set_level(enum rv_log_level lvl);
enum rv_log_level rv_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns RV_EINVAL on anything else. */
int rv_log_parse_level(const char *s, enum rv_log_level *out);

void rv_log_write(enum rv_log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rv_log_debug(mod, ...)                                                                     \
    do {                                                                                           \
        if (rv_log_get_level() <= RV_LOG_DEBUG)                                                    \
            rv_log_write(RV_LOG_DEBUG, mod, __VA_ARGS__);                                          \
    } while (0)
#define rv_log_info(mod, ...)                                                                      \
    do {                                                                                           \
        if (rv_log_get_level() <= RV_LOG_INFO)                                                     \
            rv_log_write(RV_LOG_INFO, mod, __VA_ARGS__);                                           \
    } while (0)
#define rv_log_warn(mod, ...)                                                                      \
    do {                                                                                           \
        if (rv_log_get_level() <= RV_LOG_WARN)                                                     \
            rv_log_write(RV_LOG_WARN, mod, __VA_ARGS__);                                           \
    } while (0)
#define rv_log_error(mod, ...)                                                                     \
    do {                                                                                           \
        if (rv_log_get_level() <= RV_LOG_ERROR)                                                    \
            rv_log_write(RV_LOG_ERROR, mod, __VA_ARGS__);                                          \
    } while (0)

#endif

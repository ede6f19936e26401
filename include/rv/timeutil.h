/*
 * timeutil: event times. All times are int64 milliseconds since the Unix
 * epoch, UTC. Pure functions; any thread.
 */
#ifndef RV_TIMEUTIL_H
#define RV_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses RFC 3339 ("2024-03-01T10:15:00Z", "2024-03-01T10:15:00.123+02:00",
 * lower-case t/z and a space for T accepted; fractions past ms are
 * truncated). Returns RV_OK or RV_EINVAL; *ms untouched on error. */
int rv_time_parse_rfc3339(const char *s, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" or, when MS has a sub-second part,
 * "YYYY-MM-DDTHH:MM:SS.mmmZ". BUF needs 25 bytes. Returns BUF. */
char *rv_time_format(int64_t ms, char *buf, size_t cap);

/* Days since epoch of a proleptic Gregorian date (no validation). */
int64_t rv_days_from_civil(int64_t y, unsigned m, unsigned d);

/* ms from a civil UTC date-time; RV_EINVAL when a field is out of range
 * (month 1-12, day within the month, hour 0-23, min 0-59, sec 0-60). */
int rv_time_from_civil(int y, int mo, int d, int h, int mi, int s, int64_t *ms);

/* Wall clock now, ms. */
int64_t rv_now_ms(void);
/* Monotonic clock, ns. */
uint64_t rv_mono_ns(void);

#endif

/*
 * metrics: a registry of counters and gauges, rendered as Prometheus text
 * for /metrics. The daemon creates one and hands it to every stage.
 *
 * Threads: rv_metrics_counter()/_gauge() take a lock (call them once and
 * keep the pointer, or per rare event); the returned pointers are stable
 * until rv_metrics_free and are updated with atomic ops from any thread
 * (rv_metric_add / rv_metric_set). rv_metrics_render from any thread.
 */
#ifndef RV_METRICS_H
#define RV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "rv/err.h"

struct rv_metrics;
typedef struct rv_metric rv_metric; /* opaque; one (name, labels) series */

int rv_metrics_new(struct rv_metrics **out);
void rv_metrics_free(struct rv_metrics **m);

/* Finds or creates the series NAME{LABELS}. LABELS is the inside of the
 * braces, already escaped (`source="acme",reason="country"`), or "" for
 * none. HELP is used the first time NAME is seen. Returns NULL on ENOMEM
 * or when M is NULL (then rv_metric_add is a no-op), so stages can run
 * without a registry (tests). */
rv_metric *rv_metrics_counter(struct rv_metrics *m, const char *name, const char *labels,
                              const char *help);
rv_metric *rv_metrics_gauge(struct rv_metrics *m, const char *name, const char *labels,
                            const char *help);

void rv_metric_add(rv_metric *c, uint64_t v);   /* NULL-safe, atomic */
void rv_metric_set(rv_metric *g, int64_t v);    /* NULL-safe, atomic */
int64_t rv_metric_get(const rv_metric *c);     /* 0 for NULL */

/* Prometheus text exposition format 0.0.4; *out is malloc'd, caller frees.
 * Errors: RV_ENOMEM. */
int rv_metrics_render(struct rv_metrics *m, char **out, size_t *len);

#endif

/*
 * metrics: counters and gauges in a linked list under one mutex for
 * registration; values are atomics so hot paths never lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv/metrics.h"

struct rv_metric {
    char *name;
    char *labels;
    char *help;
    int gauge;
    _Atomic int64_t v;
    struct rv_metric *next;
};

struct rv_metrics {
    pthread_mutex_t lock; /* guards list */
    struct rv_metric *list;
};

int rv_metrics_new(struct rv_metrics **out)
{
    struct rv_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return RV_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return RV_OK;
}

void rv_metrics_free(struct rv_metrics **mp)
{
    struct rv_metrics *m = mp ? *mp : NULL;
    if (!m)
        return;
    for (struct rv_metric *c = m->list, *n; c; c = n) {
        n = c->next;
        free(c->name);
        free(c->labels);
        free(c->help);
        free(c);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
    *mp = NULL;
}

static rv_metric *find_or_add(struct rv_metrics *m, const char *name, const char *labels,
                              const char *help, int gauge)
{
    struct rv_metric *c, *last = NULL;

    if (!m)
        return NULL;
    if (!labels)
        labels = "";
    pthread_mutex_lock(&m->lock);
    for (c = m->list; c; c = c->next) {
        if (strcmp(c->name, name) == 0 && strcmp(c->labels, labels) == 0)
            goto out;
        last = c;
    }
    c = calloc(1, sizeof(*c));
    if (c) {
        c->name = strdup(name);
        c->labels = strdup(labels);
        c->help = strdup(help ? help : "");
        c->gauge = gauge;
        if (!c->name || !c->labels || !c->help) {
            free(c->name);
            free(c->labels);
            free(c->help);
            free(c);
            c = NULL;
            goto out;
        }
        /* keep series of one name together: insert after the last of its name */
        struct rv_metric *after = NULL;
        for (struct rv_metric *p = m->list; p; p = p->next)
            if (strcmp(p->name, name) == 0)
                after = p;
        if (after) {
            c->next = after->next;
            after->next = c;
        } else if (last) {
            last->next = c;
        } else {
            m->list = c;
        }
    }
out:
    pthread_mutex_unlock(&m->lock);
    return c;
}

rv_metric *rv_metrics_counter(struct rv_metrics *m, const char *name, const char *labels,
                              const char *help)
{
    return find_or_add(m, name, labels, help, 0);
}

rv_metric *rv_metrics_gauge(struct rv_metrics *m, const char *name, const char *labels,
                            const char *help)
{
    return find_or_add(m, name, labels, help, 1);
}

void rv_metric_add(rv_metric *c, uint64_t v)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, (int64_t)v, memory_order_relaxed);
}

void rv_metric_set(rv_metric *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

int64_t rv_metric_get(const rv_metric *c)
{
    return c ? atomic_load_explicit(&((struct rv_metric *)c)->v, memory_order_relaxed) : 0;
}

int rv_metrics_render(struct rv_metrics *m, char **out, size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    const char *prev = "";

    if (!f)
        return RV_ENOMEM;
    if (m) {
        pthread_mutex_lock(&m->lock);
        for (struct rv_metric *c = m->list; c; c = c->next) {
            if (strcmp(prev, c->name) != 0) {
                fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", c->name, c->help, c->name,
                        c->gauge ? "gauge" : "counter");
                prev = c->name;
            }
            if (c->labels[0])
                fprintf(f, "%s{%s} %lld\n", c->name, c->labels, (long long)rv_metric_get(c));
            else
                fprintf(f, "%s %lld\n", c->name, (long long)rv_metric_get(c));
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return RV_ENOMEM;
    }
    *out = buf;
    *len = sz;
    return RV_OK;
}

/*
 * fanout: the ws-server's harness and benchmark.
 *
 *   bench_fanout serve --data DIR [--http H:P] [--ring N] [--deflate] [--origin O]
 *                      [--tls-cert F --tls-key F] [--max-msg N] [--web-root D]
 *                      [--ping S --idle S] [--poll-ms N]
 *       runs rv_ws_start in this process with a real store and a PUB socket
 *       bound on RV_EP_UPDATES (standing in for the aggregator), prints
 *       "port N" (or "error MSG" and exits 1), then obeys stdin, one command
 *       a line, answering "ok" or "err MSG":
 *         alert JSON    store the alert (its "seq") durably, then publish it
 *         alertq JSON   store it only (not announced: the server must find it)
 *         cell JSON     publish a cell update
 *         event JSON    store one event (source "test") and checkpoint rollups
 *         quit
 *       Used by tests/e2e_ws.py.
 *   bench_fanout token ...   is `rvctl token ...` (rv_token_main)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zmq.h>

#include "rv/event.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/ws.h"

static int pub_send(void *pub, const char *topic, const char *json, size_t len)
{
    if (zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(pub, json, len, 0) < 0 ? -1 : 0;
}

static int serve(int argc, char **argv)
{
    struct rv_ws_opts o;
    struct rv_store_opts so;
    struct rv_store *st = NULL;
    struct rv_ws *ws = NULL;
    struct rv_errbuf err = {0};
    const char *data = NULL;
    void *zctx = NULL, *pub = NULL;
    char line[70000];
    int rc = 1;

    rv_ws_opts_default(&o);
    o.http = "127.0.0.1:0";
    o.web_root = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--deflate") == 0) {
            o.deflate = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "%s: missing value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--http") == 0)
            o.http = v;
        else if (strcmp(a, "--ring") == 0)
            o.alert_ring = strtoul(v, NULL, 10);
        else if (strcmp(a, "--origin") == 0 && o.n_origins < RV_WS_MAX_ORIGINS)
            o.origins[o.n_origins++] = v;
        else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key = v;
        else if (strcmp(a, "--max-msg") == 0)
            o.max_msg = strtoul(v, NULL, 10);
        else if (strcmp(a, "--web-root") == 0)
            o.web_root = v;
        else if (strcmp(a, "--ping") == 0)
            o.ping_s = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--idle") == 0)
            o.idle_s = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--poll-ms") == 0)
            o.poll_ms = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--max-conns") == 0)
            o.max_conns = (unsigned)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "%s: unknown option\n", a);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "--data: missing\n");
        return 2;
    }
    rv_store_opts_default(&so);
    so.no_sync = true;
    if (rv_store_open(data, &so, &st, &err)) {
        printf("error %s\n", err.msg);
        return 1;
    }
    zctx = zmq_ctx_new();
    pub = zmq_socket(zctx, ZMQ_PUB);
    int hwm = 1000000;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    if (zmq_bind(pub, RV_EP_UPDATES)) {
        printf("error bind %s\n", zmq_strerror(zmq_errno()));
        goto out;
    }
    if (rv_ws_start(zctx, st, &o, NULL, &ws, &err)) {
        printf("error %s\n", err.msg);
        fflush(stdout);
        goto out;
    }
    printf("port %d\n", rv_ws_port(ws));
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *sp = strchr(line, ' ');
        const char *arg = sp ? sp + 1 : "";
        if (sp)
            *sp = 0;
        if (strcmp(line, "quit") == 0)
            break;
        if (strcmp(line, "alert") == 0 || strcmp(line, "alertq") == 0) {
            cJSON *j = cJSON_Parse(arg);
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "seq");
            struct rv_alert_rec al = {cJSON_IsNumber(s) ? (uint64_t)s->valuedouble : 0, arg,
                                      strlen(arg)};
            cJSON_Delete(j);
            if (rv_store_put_batch(st, NULL, 0, NULL, 0, &al, 1, NULL, &err)) {
                printf("err %s\n", err.msg);
            } else if (strcmp(line, "alert") == 0 && pub_send(pub, "alert", arg, strlen(arg))) {
                printf("err publish\n");
            } else {
                printf("ok\n");
            }
        } else if (strcmp(line, "cell") == 0) {
            printf(pub_send(pub, "cell", arg, strlen(arg)) ? "err publish\n" : "ok\n");
        } else if (strcmp(line, "event") == 0) {
            struct rv_event ev;
            struct rv_put_result res;
            if (rv_event_parse(arg, strlen(arg), "test", &ev, NULL, &err) ||
                rv_store_put_batch(st, &ev, 1, NULL, 0, NULL, 0, &res, &err) ||
                rv_store_flush(st, &err))
                printf("err %s\n", err.msg);
            else
                printf("ok\n");
            rv_event_release(&ev);
        } else if (strcmp(line, "gen") == 0) {
            /* gen N CC VIOLATION: N events in one batch */
            char cc[3] = "SY", vn[64] = "killing";
            unsigned long cnt = strtoul(arg, NULL, 10);
            const char *p2 = strchr(arg, ' ');
            if (p2 && sscanf(p2 + 1, "%2s %63s", cc, vn) < 1)
                cnt = 0;
            struct rv_event *evs = calloc(cnt ? cnt : 1, sizeof(*evs));
            struct rv_put_result *res = calloc(cnt ? cnt : 1, sizeof(*res));
            static unsigned long gen_id;
            char js[1024];
            int bad = !evs || !res;
            for (unsigned long k = 0; k < cnt && !bad; k++) {
                snprintf(js, sizeof(js),
                         "{\"id\":\"gen-%lu\",\"kind\":\"incident\",\"country\":\"%s\","
                         "\"violation\":\"%s\",\"time\":\"2024-03-01T10:%02lu:00Z\",\"count\":2,"
                         "\"title\":\"t,with \\\"quote\\\"\",\"attrs\":{\"k\":\"v%lu\"}}",
                         gen_id++, cc, vn, k % 60, k);
                bad = rv_event_parse(js, strlen(js), "test", &evs[k], NULL, &err) != 0;
            }
            if (!bad && cnt)
                bad = rv_store_put_batch(st, evs, cnt, NULL, 0, NULL, 0, res, &err) ||
                      rv_store_flush(st, &err);
            for (unsigned long k = 0; k < cnt && evs; k++)
                rv_event_release(&evs[k]);
            free(evs);
            free(res);
            if (bad)
                printf("err %s\n", err.msg);
            else
                printf("ok\n");
        } else {
            printf("err unknown command\n");
        }
        fflush(stdout);
    }
    rc = 0;
out:
    rv_ws_stop(&ws);
    if (pub)
        zmq_close(pub);
    if (zctx)
        zmq_ctx_term(zctx);
    rv_store_close(&st);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    rv_log_set_level(RV_LOG_WARN);
    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return rv_token_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: bench_fanout serve --data DIR [options] | token ...\n");
    return 2;
}

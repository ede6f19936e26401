/*
 * rightsviewd: the daemon. One process runs every stage on its own thread
 * (writer, partner gateway, feeds, demo, aggregator, ws-server), linked by
 * inproc ZeroMQ sockets and the writer's queue. SIGTERM/SIGINT: stop
 * taking input, commit what was accepted, exit 0.
 */
#include <errno.h>
#include <unistd.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "rv/agg.h"
#include "rv/config.h"
#include "rv/demo.h"
#include "rv/event.h"
#include "rv/feeds.h"
#include "rv/ingest.h"
#include "rv/links.h"
#include "rv/log.h"
#include "rv/metrics.h"
#include "rv/store.h"
#include "rv/writer.h"
#include "rv/ws.h"

#define EXIT_USAGE 2

static const char *usage_text =
    "usage: rightsviewd [--config FILE] [--data DIR] [--http HOST:PORT] [--ingest ENDPOINT]\n"
    "                   [--partners FILE] [--server-key FILE] [--feeds FILE] [--demo]\n"
    "                   [--tls-cert FILE --tls-key FILE] [--role ROLE] [--log-level LEVEL]\n"
    "\n"
    "  --config FILE      JSON config; every key has a default, flags override it\n"
    "  --data DIR         LMDB data directory (default ./rv-data)\n"
    "  --http HOST:PORT   dashboard, HTTP API and WebSocket (default 127.0.0.1:8080)\n"
    "  --ingest ENDPOINT  partner ZeroMQ endpoint (default tcp://127.0.0.1:7701)\n"
    "  --partners FILE    one partner a line, \"NAME PUBLIC_KEY_Z85\"; turns CURVE on and\n"
    "                     lets in only those keys; without it plain TCP on loopback only\n"
    "  --server-key FILE  the server's secret key (rvctl keygen server)\n"
    "  --feeds FILE       JSON list of feeds to fetch (see README)\n"
    "  --demo             replay the shipped sample feeds with times shifted to now\n"
    "  --tls-cert FILE    PEM certificate: serve HTTPS and WSS (with --tls-key)\n"
    "  --tls-key FILE     PEM private key\n"
    "  --role ROLE        all (default): every stage in this process\n"
    "  --log-level LEVEL  debug, info (default), warn, error\n"
    "\n"
    "SIGTERM/SIGINT: stop taking input, commit what was accepted, exit 0.\n";

/* The writer thread's PUB socket for committed seq ranges (created, used
 * and closed on the writer thread). */
struct commit_pub {
    void *zctx;
    void *pub;
};

static void pub_start(void *arg)
{
    struct commit_pub *c = arg;
    int linger = 0;
    c->pub = zmq_socket(c->zctx, ZMQ_PUB);
    zmq_setsockopt(c->pub, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_bind(c->pub, RV_EP_COMMITS) != 0)
        rv_log_error("daemon", "bind failed endpoint=%s reason=\"%s\"", RV_EP_COMMITS,
                     zmq_strerror(errno));
}

static void pub_commit(void *arg, uint64_t first, uint64_t last, uint64_t last_alert)
{
    struct commit_pub *c = arg;
    unsigned char m[24];
    rv_put_be64(m, first);
    rv_put_be64(m + 8, last);
    rv_put_be64(m + 16, last_alert);
    zmq_send(c->pub, m, sizeof(m), ZMQ_DONTWAIT);
}

static void pub_stop(void *arg)
{
    struct commit_pub *c = arg;
    zmq_close(c->pub);
    c->pub = NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"data", required_argument, 0, 'd'},
                                         {"http", required_argument, 0, 'H'},
                                         {"ingest", required_argument, 0, 'i'},
                                         {"partners", required_argument, 0, 'p'},
                                         {"server-key", required_argument, 0, 'k'},
                                         {"feeds", required_argument, 0, 'f'},
                                         {"demo", no_argument, 0, 'D'},
                                         {"role", required_argument, 0, 'r'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"tls-cert", required_argument, 0, 'T'},
                                         {"tls-key", required_argument, 0, 'K'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct rv_config cfg;
    struct rv_errbuf err;
    const char *flag_config = NULL;
    struct {
        const char *data, *http, *ingest, *partners, *server_key, *feeds, *role, *log_level;
        const char *tls_cert, *tls_key;
        bool demo;
    } fl = {0};
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_writer *w = NULL;
    struct rv_writer_opts wo;
    struct rv_gateway *gw = NULL;
    struct rv_gateway_opts go;
    struct rv_metrics *m = NULL;
    struct rv_agg *agg = NULL;
    struct rv_ws *ws = NULL;
    struct rv_ws_opts wso;
    struct rv_feeds *feeds = NULL;
    struct rv_feed_cfg *feed_cfg = NULL;
    size_t n_feeds = 0;
    struct rv_demo *demo = NULL;
    cJSON *demo_agg = NULL;
    const cJSON *agg_cfg;
    struct commit_pub cp = {0};
    struct rv_writer_hooks hooks = {pub_start, pub_commit, pub_stop, &cp};
    void *zctx = NULL;
    sigset_t sigs;
    int c, sig, rc = 1;
    enum rv_log_level lvl;

    while ((c = getopt_long(argc, argv, "c:d:H:i:p:k:f:Dr:l:T:K:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': flag_config = optarg; break;
        case 'd': fl.data = optarg; break;
        case 'H': fl.http = optarg; break;
        case 'i': fl.ingest = optarg; break;
        case 'p': fl.partners = optarg; break;
        case 'k': fl.server_key = optarg; break;
        case 'f': fl.feeds = optarg; break;
        case 'D': fl.demo = true; break;
        case 'r': fl.role = optarg; break;
        case 'l': fl.log_level = optarg; break;
        case 'T': fl.tls_cert = optarg; break;
        case 'K': fl.tls_key = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "rightsviewd: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    rv_config_init(&cfg);
    if (flag_config && rv_config_load(&cfg, flag_config, &err) != RV_OK) {
        fprintf(stderr, "rightsviewd: %s\n", err.msg);
        return EXIT_USAGE;
    }
#define OVERRIDE(field, flag)                                                                      \
    if (flag)                                                                                      \
    snprintf(cfg.field, sizeof(cfg.field), "%s", flag)
    OVERRIDE(data_dir, fl.data);
    OVERRIDE(http, fl.http);
    OVERRIDE(ingest, fl.ingest);
    OVERRIDE(partners, fl.partners);
    OVERRIDE(server_key, fl.server_key);
    OVERRIDE(feeds, fl.feeds);
    OVERRIDE(role, fl.role);
    OVERRIDE(log_level, fl.log_level);
    if (fl.demo)
        cfg.demo = true;
    if (rv_log_parse_level(cfg.log_level, &lvl) != RV_OK) {
        fprintf(stderr, "rightsviewd: --log-level: '%s' is not one of debug, info, warn, error\n",
                cfg.log_level);
        return EXIT_USAGE;
    }
    rv_log_set_level(lvl);
    if (strcmp(cfg.role, "all") != 0) {
        fprintf(stderr, "rightsviewd: --role: '%s' is not supported by this build (only 'all')\n",
                cfg.role);
        return EXIT_USAGE;
    }

    /* Signals go to sigwait() in this thread only: block them before any
     * thread starts so every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a full disk: an error, not a kill */
    rv_event_parse_arena_init(); /* before any thread; else rv_event_parse uses malloc */

    if (rv_metrics_new(&m) != RV_OK)
        goto out;
    {
        const cJSON *sec = rv_config_section(&cfg, "store");
        int64_t v;
        static const char *const keys[] = {"map_size_mib", "rollup_flush_ms", "retention_days",
                                           "dedup_flush_keys", "dedup_filter_mib", NULL};
        rv_store_opts_default(&so);
        if (rv_cfg_check_keys(sec, "store", keys, &err))
            goto cfg_err;
        if (rv_cfg_int(sec, "store", "map_size_mib", 256, 1, 1 << 20, &v, &err))
            goto cfg_err;
        so.map_size = (size_t)v << 20;
        if (rv_cfg_int(sec, "store", "rollup_flush_ms", 1000, 10, 60000, &v, &err))
            goto cfg_err;
        so.rollup_flush_ms = (unsigned)v;
        if (rv_cfg_int(sec, "store", "dedup_flush_keys", 524288, 1000, 1 << 24, &v, &err))
            goto cfg_err;
        so.dedup_flush_keys = (size_t)v;
        if (rv_cfg_int(sec, "store", "dedup_filter_mib", 1024, 1, 1 << 16, &v, &err))
            goto cfg_err;
        so.dedup_filter_max_mib = (unsigned)v;
    }
    {
        const cJSON *sec = rv_config_section(&cfg, "writer");
        int64_t v;
        static const char *const keys[] = {"max_events", "queue_events", NULL};
        rv_writer_opts_default(&wo);
        if (rv_cfg_check_keys(sec, "writer", keys, &err))
            goto cfg_err;
        if (rv_cfg_int(sec, "writer", "max_events", 50000, 1, 1000000, &v, &err))
            goto cfg_err;
        wo.max_events = (size_t)v;
        if (rv_cfg_int(sec, "writer", "queue_events", 200000, 1, 100000000, &v, &err))
            goto cfg_err;
        wo.queue_events = (size_t)v;
        if (rv_cfg_int(rv_config_section(&cfg, "store"), "store", "retention_days", 0, 0, 36500,
                       &v, &err))
            goto cfg_err;
        wo.retention_ms = v * 86400000LL;
    }
    rv_ws_opts_default(&wso);
    if (rv_ws_opts_from_config(&wso, rv_config_section(&cfg, "ws"), &err) != RV_OK)
        goto cfg_err;
    wso.http = cfg.http;
    wso.web_root = cfg.web_root;
    if (fl.tls_cert)
        wso.tls_cert = fl.tls_cert;
    if (fl.tls_key)
        wso.tls_key = fl.tls_key;
    if ((wso.tls_cert && wso.tls_cert[0]) != (wso.tls_key && wso.tls_key[0])) {
        fprintf(stderr, "rightsviewd: --tls-cert and --tls-key go together\n");
        rc = EXIT_USAGE;
        goto out;
    }
    /* the files the gateway reads at its start, before anything is made */
    {
        const char *files[][2] = {{"partners", cfg.partners}, {"server_key", cfg.server_key}};
        for (size_t i = 0; i < 2; i++) {
            if (files[i][1][0] && access(files[i][1], R_OK) != 0) {
                fprintf(stderr, "rightsviewd: %s: cannot open '%s': %s\n", files[i][0],
                        files[i][1], strerror(errno));
                rc = EXIT_USAGE;
                goto out;
            }
        }
    }
    rv_gateway_opts_default(&go);
    go.endpoint = cfg.ingest;
    go.partners_file = cfg.partners;
    go.server_key_file = cfg.server_key;
    {
        const cJSON *sec = rv_config_section(&cfg, "ingest");
        static const char *const keys[] = {"endpoint", "max_msg_mib", "max_batch_events", NULL};
        int64_t v;
        if (rv_cfg_check_keys(sec, "ingest", keys, &err))
            goto cfg_err;
        if (rv_cfg_int(sec, "ingest", "max_msg_mib", 16, 1, 1024, &v, &err))
            goto cfg_err;
        go.max_msg_bytes = (size_t)v << 20;
        if (rv_cfg_int(sec, "ingest", "max_batch_events", 100000, 1, 10000000, &v, &err))
            goto cfg_err;
        go.max_batch_events = (size_t)v;
    }
    {
        /* the aggregator's section too: every key of every section is
         * checked before a store is made or a port bound */
        struct rv_agg_params ap;
        if (rv_agg_params_from_json(rv_config_section(&cfg, "aggregator"), &ap, &err) != RV_OK)
            goto cfg_err;
    }
    if (cfg.feeds[0] && rv_feeds_load(cfg.feeds, &feed_cfg, &n_feeds, &err) != RV_OK)
        goto cfg_err;
    if (rv_store_open(cfg.data_dir, &so, &st, &err) != RV_OK) {
        fprintf(stderr, "rightsviewd: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    zctx = zmq_ctx_new();
    cp.zctx = zctx;
    if (rv_writer_new(st, &wo, &hooks, &w) != RV_OK) {
        fprintf(stderr, "rightsviewd: cannot start the writer\n");
        goto out;
    }
    agg_cfg = rv_config_section(&cfg, "aggregator");
    if (cfg.demo && !agg_cfg) {
        /* the demo's recurring 10-minute drops need short bins to alert
         * while a visitor watches (include/rv/demo.h) */
        demo_agg = cJSON_Parse("{\"bin_s\":300,\"allowed_lateness_s\":60}");
        agg_cfg = demo_agg;
    }
    if (rv_agg_start(zctx, st, w, agg_cfg, m, &agg, &err) != RV_OK) {
        fprintf(stderr, "rightsviewd: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    if (rv_ws_start(zctx, st, &wso, m, &ws, &err) != RV_OK) {
        fprintf(stderr, "rightsviewd: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    if (rv_gateway_start(zctx, w, &go, m, &gw, &err) != RV_OK) {
        fprintf(stderr, "rightsviewd: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    if (cfg.feeds[0]) {
        if (rv_feeds_start(st, w, feed_cfg, n_feeds, m, &feeds, &err) != RV_OK) {
            fprintf(stderr, "rightsviewd: %s\n", err.msg);
            rc = EXIT_USAGE;
            goto out;
        }
    }
    if (cfg.demo) {
        char dir[1100];
        snprintf(dir, sizeof(dir), "%s/demo", RV_SOURCE_DIR);
        if (rv_demo_start(w, dir, 1.0, m, &demo, &err) != RV_OK) {
            fprintf(stderr, "rightsviewd: %s\n", err.msg);
            rc = EXIT_USAGE;
            goto out;
        }
    }
    {
        /* the host part of --http, with the port actually bound */
        char host[256];
        size_t hl = strcspn(cfg.http, "]");
        if (cfg.http[0] == '[' && cfg.http[hl] == ']')
            hl++;
        else
            hl = strcspn(cfg.http, ":");
        snprintf(host, sizeof(host), "%.*s", (int)hl, cfg.http);
        printf("rightsviewd: dashboard %s://%s:%d/  data %s  ingest %s\n",
               wso.tls_cert && wso.tls_cert[0] ? "https" : "http", host, rv_ws_port(ws),
               cfg.data_dir, rv_gateway_endpoint(gw));
    }
    fflush(stdout);

    for (;;) {
        if (sigwait(&sigs, &sig) == 0 && (sig == SIGTERM || sig == SIGINT))
            break;
    }
    rv_log_info("daemon", "stopping signal=%d", sig);
    rc = 0;
    goto out;
cfg_err:
    fprintf(stderr, "rightsviewd: %s\n", err.msg);
    rc = EXIT_USAGE;
out:
    /* stop input first, then commit what was accepted, then close; a full
     * disk must not hold the shutdown forever */
    if (w)
        rv_writer_stop_retrying(w);
    rv_gateway_stop(&gw);
    rv_feeds_stop(&feeds);
    rv_demo_stop(&demo);
    rv_agg_stop(&agg); /* before the writer: it writes through it */
    rv_writer_free(&w);
    rv_ws_stop(&ws);
    rv_store_close(&st);
    if (zctx)
        zmq_ctx_term(zctx);
    rv_metrics_free(&m);
    rv_feeds_cfg_free(feed_cfg, n_feeds);
    cJSON_Delete(demo_agg);
    rv_config_release(&cfg);
    if (rc == 0)
        rv_log_info("daemon", "stopped cleanly");
    return rc;
}

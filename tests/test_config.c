/*
 * test_config: the config file (defaults, overrides, exact errors for
 * unknown keys and wrong types), section getters, the metrics registry's
 * Prometheus text, and the error helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rv/config.h"
#include "rv/log.h"
#include "rv/metrics.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof(path), "/tmp/rvcfg.XXXXXX");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        exit(2);
    close(fd);
    return path;
}

static void expect_load_error(const char *text, const char *msg)
{
    struct rv_config c;
    struct rv_errbuf err;
    const char *p = write_tmp(text);
    rv_config_init(&c);
    CHECK(rv_config_load(&c, p, &err) == RV_EINVAL);
    CHECK_STR(err.msg, msg);
    rv_config_release(&c);
    unlink(p);
}

static void test_config(void)
{
    struct rv_config c;
    struct rv_errbuf err;
    const char *p;
    int64_t v;
    double d;
    bool b;
    char s[16];

    rv_config_init(&c);
    CHECK_STR(c.data_dir, "./rv-data");
    CHECK_STR(c.http, "127.0.0.1:8080");
    CHECK_STR(c.ingest, "tcp://127.0.0.1:7701");
    CHECK(!c.demo && c.root == NULL);
    CHECK(rv_config_section(&c, "store") == NULL);

    p = write_tmp("{\"data\":\"/var/lib/rv\",\"demo\":true,\"store\":{\"map_size_mib\":512},"
                  "\"aggregator\":{\"bin_s\":300}}");
    CHECK_OK(rv_config_load(&c, p, &err), &err);
    unlink(p);
    CHECK_STR(c.data_dir, "/var/lib/rv");
    CHECK_STR(c.http, "127.0.0.1:8080"); /* untouched keys keep their default */
    CHECK(c.demo);
    CHECK_OK(rv_cfg_int(rv_config_section(&c, "store"), "store", "map_size_mib", 256, 1, 4096, &v,
                        &err), &err);
    CHECK(v == 512);
    CHECK_OK(rv_cfg_int(rv_config_section(&c, "store"), "store", "rollup_flush_ms", 1000, 10,
                        60000, &v, &err), &err);
    CHECK(v == 1000);
    CHECK(rv_cfg_int(rv_config_section(&c, "aggregator"), "aggregator", "bin_s", 3600, 600, 86400,
                     &v, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "aggregator.bin_s: must be an integer 600..86400");
    CHECK_OK(rv_cfg_double(NULL, "x", "y", 0.5, 0, 1, &d, &err), &err);
    CHECK(d == 0.5);
    CHECK_OK(rv_cfg_bool(NULL, "x", "y", true, &b, &err), &err);
    CHECK(b);
    CHECK_OK(rv_cfg_string(NULL, "x", "y", "abc", s, sizeof(s), &err), &err);
    CHECK_STR(s, "abc");
    rv_config_release(&c);

    expect_load_error("{\"dta\":\"x\"}", "dta: unknown config key");
    expect_load_error("{\"ingest\":{\"endpoint\":5}}",
                      "ingest.endpoint: must be a string shorter than 256 bytes");
    {
        /* ingest as a section: endpoint plus limits */
        struct rv_config c3;
        const char *ip = write_tmp("{\"ingest\":{\"endpoint\":\"tcp://127.0.0.1:9\","
                                   "\"max_msg_mib\":4}}");
        int64_t mib;
        rv_config_init(&c3);
        CHECK_OK(rv_config_load(&c3, ip, &err), &err);
        unlink(ip);
        CHECK_STR(c3.ingest, "tcp://127.0.0.1:9");
        CHECK_OK(rv_cfg_int(rv_config_section(&c3, "ingest"), "ingest", "max_msg_mib", 16, 1, 1024,
                            &mib, &err), &err);
        CHECK(mib == 4);
        rv_config_release(&c3);
    }
    {
        /* ingest as the endpoint alone, as README documents it */
        struct rv_config c4;
        const char *ip = write_tmp("{\"ingest\":\"tcp://127.0.0.1:7\"}");
        rv_config_init(&c4);
        CHECK_OK(rv_config_load(&c4, ip, &err), &err);
        unlink(ip);
        CHECK_STR(c4.ingest, "tcp://127.0.0.1:7");
        CHECK(rv_config_section(&c4, "ingest") == NULL);
        rv_config_release(&c4);
    }
    expect_load_error("{\"ingest\":5}", "ingest: must be a string shorter than 256 bytes");
    {
        /* "did you mean": typos only, not any key */
        static const char *const ks[] = {"map_size_mib", "rollup_flush_ms", "origins", "bin_s",
                                         NULL};
        CHECK_STR(rv_cfg_closest("map_size_mb", ks, 0), "map_size_mib");
        CHECK_STR(rv_cfg_closest("orgins", ks, 0), "origins");
        CHECK_STR(rv_cfg_closest("rollup_flush_ms", ks, 2), "rollup_flush_ms");
        CHECK(rv_cfg_closest("origins", ks, 2) == NULL); /* only the first two */
        CHECK(rv_cfg_closest("bin", ks, 0) == NULL);     /* 2 edits of 3 letters: no */
        CHECK(rv_cfg_closest("colour", ks, 0) == NULL);
        CHECK(rv_cfg_closest(NULL, ks, 0) == NULL);
    }
    expect_load_error("{\"http\":8080}", "http: must be a string shorter than 256 bytes");
    expect_load_error("{\"demo\":\"yes\"}", "demo: must be true or false");
    expect_load_error("{\"store\":[]}", "store: must be an object");
    {
        struct rv_config c2;
        const char *bad = write_tmp("{\"data\": ");
        char want[128];
        rv_config_init(&c2);
        CHECK(rv_config_load(&c2, bad, &err) == RV_EINVAL);
        snprintf(want, sizeof(want), "config: '%s' is not valid JSON near offset 8", bad);
        CHECK_STR(err.msg, want);
        unlink(bad);
        CHECK(rv_config_load(&c2, "/nonexistent.json", &err) == RV_ENOTFOUND);
        CHECK_STR(err.msg, "config: cannot open '/nonexistent.json': No such file or directory");
    }
}

static void test_check_keys(void)
{
    static const char *const keys[] = {"max_events", "queue_events", NULL};
    struct rv_errbuf err;
    cJSON *ok = cJSON_Parse("{\"max_events\":5}"), *bad = cJSON_Parse("{\"max_event\":5}");
    CHECK_OK(rv_cfg_check_keys(ok, "writer", keys, &err), &err);
    CHECK_OK(rv_cfg_check_keys(NULL, "writer", keys, &err), &err);
    CHECK(rv_cfg_check_keys(bad, "writer", keys, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "writer.max_event: unknown key (known: max_events, queue_events)");
    cJSON_Delete(ok);
    cJSON_Delete(bad);
}

static void test_metrics(void)
{
    struct rv_metrics *m;
    rv_metric *a, *b, *g;
    char *text;
    size_t len;

    CHECK_OK(rv_metrics_new(&m), NULL);
    a = rv_metrics_counter(m, "rv_x_total", "source=\"a\"", "x things");
    b = rv_metrics_counter(m, "rv_x_total", "source=\"b\"", "x things");
    g = rv_metrics_gauge(m, "rv_depth", "", "queue depth");
    CHECK(a != b && rv_metrics_counter(m, "rv_x_total", "source=\"a\"", "") == a);
    rv_metric_add(a, 3);
    rv_metric_add(a, 2);
    rv_metric_add(b, 1);
    rv_metric_set(g, 42);
    rv_metric_add(NULL, 1); /* no registry: a no-op */
    CHECK(rv_metric_get(a) == 5);
    CHECK_OK(rv_metrics_render(m, &text, &len), NULL);
    CHECK_STR(text, "# HELP rv_x_total x things\n# TYPE rv_x_total counter\n"
                    "rv_x_total{source=\"a\"} 5\nrv_x_total{source=\"b\"} 1\n"
                    "# HELP rv_depth queue depth\n# TYPE rv_depth gauge\nrv_depth 42\n");
    CHECK(len == strlen(text));
    free(text);
    rv_metrics_free(&m);
    CHECK(m == NULL);
    CHECK(rv_metrics_counter(NULL, "a", "", "") == NULL);
}

static void test_err_log(void)
{
    char field[32];
    enum rv_log_level l;
    CHECK_STR(rv_err_split("country: 'XX' is bad", field, sizeof(field)), "'XX' is bad");
    CHECK_STR(field, "country");
    CHECK_STR(rv_err_split("attrs.k: duplicate key", field, sizeof(field)), "duplicate key");
    CHECK_STR(field, "attrs.k");
    CHECK_STR(rv_err_split("no field here", field, sizeof(field)), "no field here");
    CHECK_STR(field, "");
    CHECK_STR(rv_strerror(RV_EFULL), "storage full");
    CHECK_STR(rv_strerror(-999), "unknown error");
    CHECK(rv_log_parse_level("warn", &l) == RV_OK && l == RV_LOG_WARN);
    CHECK(rv_log_parse_level("verbose", &l) == RV_EINVAL);
}

int main(void)
{
    test_config();
    test_check_keys();
    test_metrics();
    test_err_log();
    CHECK_DONE();
}

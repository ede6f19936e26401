/*
 * test_ws: the ws-server's options and start-up checks, and the in-process
 * path the daemon uses: a real store in a temp dir, one zmq context shared
 * with a PUB socket bound on RV_EP_UPDATES (standing in for the
 * aggregator), rv_ws_start, and plain HTTP/1.1 over a loopback socket.
 * The WebSocket protocol itself is exercised by tests/e2e_ws.py.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "check.h"
#include "store_util.h"

#include "rv/links.h"
#include "rv/log.h"
#include "rv/timeutil.h"
#include "rv/ws.h"

/* GET PATH, whole answer into BUF (connection: close). Returns its length. */
static size_t http_get(int port, const char *path, char *buf, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[512];
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        if (fd >= 0)
            close(fd);
        buf[0] = 0;
        return 0;
    }
    int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        buf[0] = 0;
        return 0;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n + 1 >= cap)
            break;
    }
    close(fd);
    buf[n] = 0;
    return n;
}

static void test_config(void)
{
    struct rv_ws_opts o;
    struct rv_errbuf err = {0};
    cJSON *c;

    rv_ws_opts_default(&o);
    CHECK_STR(o.http, "127.0.0.1:8080");
    CHECK(!o.deflate && o.max_conns == 20000 && o.max_msg == 16384 && o.alert_ring == 4096);
    CHECK(o.sub_timeout_s == 10 && o.max_unauth == 0 && o.token_check_s == 5);
    CHECK_STR(o.updates, RV_EP_UPDATES);
    CHECK_OK(rv_ws_opts_from_config(&o, NULL, &err), &err);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"bogus\":1}", "ws.bogus: unknown key (the ws keys: include/rv/ws.h)"},
        {"{\"orgins\":[]}", "ws.orgins: unknown key (did you mean 'origins'?)"},
        {"{\"max_conns\":0}", "ws.max_conns: must be an integer 1..1000000"},
        {"{\"max_msg\":10}", "ws.max_msg: must be an integer 256..1048576"},
        {"{\"http\":5}", "ws.http: must be a string"},
        {"{\"sub_timeout_s\":0}", "ws.sub_timeout_s: must be an integer 1..3600"},
        {"{\"token_check_s\":0}", "ws.token_check_s: must be an integer 1..3600"},
        {"{\"max_unauth\":-1}", "ws.max_unauth: must be an integer 0..1000000"},
        {"{\"origins\":\"x\"}", "ws.origins: must be an array of strings"},
        {"{\"origins\":[1]}", "ws.origins: must be an array of strings"},
        {"{\"deflate\":\"yes\"}", NULL},
        {"[]", "ws: must be an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = cJSON_Parse(bad[i].json);
        rv_ws_opts_default(&o);
        rv_err_clear(&err);
        CHECK(rv_ws_opts_from_config(&o, c, &err) == RV_EINVAL);
        if (bad[i].msg)
            CHECK_STR(err.msg, bad[i].msg);
        else
            CHECK(strncmp(err.msg, "ws.deflate: ", 12) == 0);
        cJSON_Delete(c);
    }
    c = cJSON_Parse("{\"http\":\"0.0.0.0:9000\",\"deflate\":true,\"origins\":[\"https://a.org\","
                    "\"https://b.org\"],\"alert_ring\":64,\"ping_s\":5,\"idle_s\":12,"
                    "\"tls_cert\":\"c.pem\",\"tls_key\":\"k.pem\",\"sub_timeout_s\":3,"
                    "\"max_unauth\":7,\"token_check_s\":2}");
    rv_ws_opts_default(&o);
    CHECK_OK(rv_ws_opts_from_config(&o, c, &err), &err);
    CHECK_STR(o.http, "0.0.0.0:9000");
    CHECK(o.deflate && o.alert_ring == 64 && o.ping_s == 5 && o.idle_s == 12);
    CHECK(o.sub_timeout_s == 3 && o.max_unauth == 7 && o.token_check_s == 2);
    CHECK(o.n_origins == 2 && strcmp(o.origins[1], "https://b.org") == 0);
    CHECK_STR(o.tls_cert, "c.pem");
    CHECK_STR(o.tls_key, "k.pem");
    CHECK(o.max_conns == 20000); /* untouched keys keep their value */
    cJSON_Delete(c);
}

static void test_start(const char *dir)
{
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_ws_opts o;
    struct rv_ws *ws = NULL, *ws2 = NULL;
    struct rv_errbuf err = {0};
    void *zctx = zmq_ctx_new(), *pub = zmq_socket(zctx, ZMQ_PUB);
    char buf[65536], addr[64];

    rv_store_opts_default(&so);
    so.no_sync = true;
    CHECK_OK(rv_store_open(dir, &so, &st, &err), &err);
    CHECK(zmq_bind(pub, RV_EP_UPDATES) == 0);

    rv_ws_opts_default(&o);
    o.web_root = "";
    o.http = "nonsense";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "http: 'nonsense' is not HOST:PORT");
    o.http = "127.0.0.1:70000";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "http: '127.0.0.1:70000' is not HOST:PORT");
    o.http = "0.0.0.0:0";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EPERM);
    CHECK_STR(err.msg, "http: refusing to listen on 0.0.0.0 without access tokens (create one "
                       "with rvctl token create)");
    o.http = "127.0.0.1:0";
    o.tls_cert = "/nonexistent/cert.pem";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "tls_key: needed with tls_cert");
    o.tls_key = "/nonexistent/key.pem";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EIO);
    CHECK_STR(err.msg, "tls_cert: cannot read '/nonexistent/cert.pem'");
    o.tls_cert = o.tls_key = NULL;
    o.updates = "bogus://x";
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws, &err) == RV_EINVAL);
    CHECK_STR(err.msg, "updates: cannot connect to 'bogus://x'");
    CHECK(ws == NULL);
    o.updates = RV_EP_UPDATES;

    /* a real start; the aggregator's first alert is already stored */
    const char *a1 = "{\"seq\":5,\"state\":\"opened\",\"country\":\"SY\",\"violation\":\"killing\","
                     "\"admin1\":null,\"level\":\"warning\",\"score\":3.2}";
    struct rv_alert_rec al = {5, a1, strlen(a1)};
    CHECK_OK(rv_store_put_batch(st, NULL, 0, NULL, 0, &al, 1, NULL, &err), &err);
    CHECK_OK(rv_ws_start(zctx, st, &o, NULL, &ws, &err), &err);
    int port = rv_ws_port(ws);
    CHECK(port > 0 && port < 65536);

    /* the same port again: a clear error */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    o.http = addr;
    CHECK(rv_ws_start(zctx, st, &o, NULL, &ws2, &err) == RV_EIO);
    snprintf(buf, sizeof(buf), "http: cannot listen on 127.0.0.1:%d", port);
    CHECK_STR(err.msg, buf);

    http_get(port, "/healthz", buf, sizeof(buf));
    CHECK(strstr(buf, "HTTP/1.1 200") == buf);
    CHECK(strstr(buf, "\"alert_seq\":5") != NULL);

    /* an alert stored and published in this process */
    const char *a2 = "{\"seq\":9,\"state\":\"escalated\",\"country\":\"SY\",\"violation\":\"killing\","
                     "\"admin1\":null,\"level\":\"critical\",\"score\":6.1}";
    struct rv_alert_rec al2 = {9, a2, strlen(a2)};
    CHECK_OK(rv_store_put_batch(st, NULL, 0, NULL, 0, &al2, 1, NULL, &err), &err);
    CHECK(zmq_send(pub, "alert", 5, ZMQ_SNDMORE) == 5);
    CHECK(zmq_send(pub, a2, strlen(a2), 0) == (int)strlen(a2));
    /* the server's own view (rv_ws_alert_seq) reaches 9 */
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        http_get(port, "/metrics", buf, sizeof(buf));
        seen = strstr(buf, "\nrv_ws_alert_seq 9\n") != NULL;
        if (!seen)
            usleep(50000);
    }
    CHECK(seen);
    http_get(port, "/api/v1/alerts?since=5", buf, sizeof(buf));
    CHECK(strstr(buf, "\"alerts\":[{\"seq\":9,") != NULL);
    http_get(port, "/api/v1/alerts?since=x", buf, sizeof(buf));
    CHECK(strstr(buf, "HTTP/1.1 400") == buf);
    CHECK(strstr(buf, "{\"error\":\"since: must be an integer 0..9223372036854775807\","
                      "\"param\":\"since\"}") != NULL);
    http_get(port, "/", buf, sizeof(buf));
    CHECK(strstr(buf, "The dashboard is not installed here") != NULL);

    uint64_t t0 = rv_mono_ns();
    rv_ws_stop(&ws);
    CHECK(ws == NULL);
    CHECK(rv_mono_ns() - t0 < 2000000000ull); /* stops promptly */
    rv_ws_stop(&ws); /* NULL is fine */
    zmq_close(pub);
    zmq_ctx_term(zctx);
    rv_store_close(&st);
}

int main(void)
{
    char dir[256];

    rv_log_set_level(RV_LOG_ERROR);
    make_tmpdir(dir, sizeof(dir));
    test_config();
    test_start(dir);
    rm_rf(dir);
    CHECK_DONE();
}

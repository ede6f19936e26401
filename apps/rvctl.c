/*
 * rvctl: the command-line companion of rightsviewd: partner keys,
 * publishing events, reading the store, tokens and backtests.
 * Exit codes: 0 success, 1 ran but something was rejected, 2 bad usage or
 * could not connect / open / authenticate.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "rv/agg.h"
#include "rv/country.h"
#include "rv/event.h"
#include "rv/ingest.h"
#include "rv/log.h"
#include "rv/store.h"
#include "rv/taxonomy.h"
#include "rv/timeutil.h"
#include "rv/ws.h"

#define EXIT_REJECTED 1
#define EXIT_USAGE 2

static const char *usage_text =
    "usage: rvctl COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  keygen NAME            write NAME.key (secret, mode 0600) and NAME.pub (Z85)\n"
    "  publish [--endpoint E] [--server-pub FILE] [--key FILE] [--batch N]\n"
    "          [--timeout S] [--window W] [FILE...]\n"
    "                         publish NDJSON or a JSON array of events (stdin when no\n"
    "                         FILE); prints 'accepted A duplicates D rejected R' then\n"
    "                         'line L: field: reason' per rejection\n"
    "  query --data DIR overview|series|alerts|events [filters]\n"
    "                         JSON to stdout; filters: --country CC --violation V\n"
    "                         --res 1m|1h|1d --from T --to T --since SEQ --limit N\n"
    "                         --source NAME --attrs (events: include attrs)\n"
    "  token create --data DIR --role viewer|analyst|admin [--name NAME]\n"
    "                         print a new bearer token once; only its hash is kept\n"
    "  token list|revoke --data DIR [ID]\n"
    "  backtest --events FILE... [--format F] --episodes FILE [--level L] [--json]\n"
    "                         replay a dataset offline; precision, recall, lead time\n"
    "\n"
    "exit status: 0 ok, 1 some input rejected, 2 bad usage or cannot connect/open\n";

static int usage(FILE *f, int code)
{
    fputs(usage_text, f);
    return code;
}

/* ------------------------------------------------------------ keygen */

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    size_t n = strlen(text);
    if (fd < 0) {
        fprintf(stderr, "rvctl keygen: cannot create '%s': %s\n", path, strerror(errno));
        return -1;
    }
    if (write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
        fprintf(stderr, "rvctl keygen: cannot write '%s': %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    char pub[41], sec[41], path[4096], line[64];

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: rvctl keygen NAME\n  writes NAME.key (secret key, Z85, mode 0600) and "
               "NAME.pub (public key, Z85);\n  refuses to overwrite existing files\n");
        return 0;
    }
    if (argc != 2 || !argv[1][0]) {
        fprintf(stderr, "rvctl keygen: expected one NAME\n");
        return EXIT_USAGE;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "rvctl keygen: libzmq has no CURVE support: %s\n", zmq_strerror(errno));
        return EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "%s.key", argv[1]);
    snprintf(line, sizeof(line), "%s\n", sec);
    if (write_file(path, line, 0600) != 0)
        return EXIT_USAGE;
    snprintf(path, sizeof(path), "%s.pub", argv[1]);
    snprintf(line, sizeof(line), "%s\n", pub);
    if (write_file(path, line, 0644) != 0)
        return EXIT_USAGE;
    printf("%s.key (secret, keep it private)\n%s.pub %s\n", argv[1], argv[1], pub);
    memset(sec, 0, sizeof(sec));
    return 0;
}

/* ----------------------------------------------------------- publish */

struct chunk {
    char *data;
    size_t len;
    size_t first_line; /* file line of the chunk's first line, 1-based */
    int file;          /* index into files */
    int tries;
    uint64_t sent_ns;
    bool acked;
};

struct pub {
    void *sock;
    struct chunk *c;
    size_t n, cap;
    size_t accepted, duplicates, rejected;
    char **msgs;
    size_t nmsg, msg_cap;
};

static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        size_t r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static void add_chunk(struct pub *p, const char *data, size_t len, size_t first_line, int file)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->c = realloc(p->c, p->cap * sizeof(*p->c));
        if (!p->c) {
            fprintf(stderr, "rvctl publish: out of memory\n");
            exit(EXIT_USAGE);
        }
    }
    p->c[p->n] = (struct chunk){.data = malloc(len ? len : 1), .len = len,
                                .first_line = first_line, .file = file};
    memcpy(p->c[p->n].data, data, len);
    p->n++;
}

/* Splits FILE's text into chunks of at most BATCH lines (a JSON array is
 * one chunk: its items are numbered by the server). */
static void split(struct pub *p, const char *buf, size_t len, size_t batch, int file)
{
    size_t i = 0, line = 1, start = 0, start_line = 1, lines = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && buf[i] == '[') {
        add_chunk(p, buf, len, 1, file);
        return;
    }
    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        lines++;
        line++;
        if (lines == batch) {
            add_chunk(p, buf + start, i + 1 - start, start_line, file);
            start = i + 1;
            start_line = line;
            lines = 0;
        }
    }
    if (start < len && strspn(buf + start, " \t\r\n") < len - start)
        add_chunk(p, buf + start, len - start, start_line, file);
}

static int send_chunk(struct pub *p, size_t idx)
{
    char bid[32];
    int n = snprintf(bid, sizeof(bid), "%zu", idx);
    struct chunk *c = &p->c[idx];
    /* never block: a DEALER with no live peer (refused handshake, server
     * down) would wait forever; EAGAIN means "try again later" */
    if (zmq_send(p->sock, bid, (size_t)n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? 1 : -1;
    if (zmq_send(p->sock, c->data, c->len, ZMQ_DONTWAIT) < 0)
        return -1;
    c->tries++;
    c->sent_ns = rv_mono_ns();
    return 0;
}

static void add_msg(struct pub *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_msg(struct pub *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (p->nmsg == p->msg_cap) {
        p->msg_cap = p->msg_cap ? p->msg_cap * 2 : 64;
        p->msgs = realloc(p->msgs, p->msg_cap * sizeof(char *));
    }
    p->msgs[p->nmsg++] = strdup(buf);
}

/* Handles one reply; returns 1 if it acked a chunk, 0 if ignored, -1 on a
 * server error that must stop us. */
static int on_reply(struct pub *p, char **files, int nfiles, char *fatal, size_t fcap)
{
    char bid[64], body[1 << 16];
    int bl, more = 0;
    size_t ml = sizeof(more), idx;
    zmq_msg_t msg;
    cJSON *j;
    char *end;

    bl = zmq_recv(p->sock, bid, sizeof(bid) - 1, 0);
    if (bl < 0)
        return 0;
    bid[bl < (int)sizeof(bid) ? bl : (int)sizeof(bid) - 1] = '\0';
    zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &ml);
    if (!more)
        return 0;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, p->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    j = cJSON_ParseWithLength(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    (void)body;
    idx = strtoull(bid, &end, 10);
    if (!j || *end || idx >= p->n) {
        cJSON_Delete(j);
        return 0;
    }
    if (p->c[idx].acked) { /* a retry answered twice */
        cJSON_Delete(j);
        return 0;
    }
    {
        cJSON *e = cJSON_GetObjectItem(j, "error");
        if (cJSON_IsString(e)) {
            if (cJSON_IsTrue(cJSON_GetObjectItem(j, "retry"))) {
                cJSON_Delete(j);
                return 0; /* resent after the timeout */
            }
            snprintf(fatal, fcap, "server: %s", e->valuestring);
            cJSON_Delete(j);
            return -1;
        }
    }
    p->c[idx].acked = true;
    p->accepted += (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "accepted"));
    p->duplicates += (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "duplicates"));
    p->rejected += (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "rejected"));
    {
        cJSON *errs = cJSON_GetObjectItem(j, "errors"), *e;
        cJSON_ArrayForEach(e, errs)
        {
            size_t line = (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "line"));
            const char *field = cJSON_GetStringValue(cJSON_GetObjectItem(e, "field"));
            const char *reason = cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason"));
            size_t fl = p->c[idx].first_line + (line ? line - 1 : 0);
            if (nfiles > 1)
                add_msg(p, "%s: line %zu: %s%s%s", files[p->c[idx].file], fl, field ? field : "",
                        field && *field ? ": " : "", reason ? reason : "");
            else
                add_msg(p, "line %zu: %s%s%s", fl, field ? field : "", field && *field ? ": " : "",
                        reason ? reason : "");
        }
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, "errors_truncated")))
            add_msg(p, "(more rejections in chunk starting at line %zu not listed)",
                    p->c[idx].first_line);
    }
    cJSON_Delete(j);
    return 1;
}

static int cmd_publish(int argc, char **argv)
{
    static const struct option opts[] = {{"endpoint", required_argument, 0, 'e'},
                                         {"server-pub", required_argument, 0, 's'},
                                         {"key", required_argument, 0, 'k'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"timeout", required_argument, 0, 't'},
                                         {"window", required_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *endpoint = "tcp://127.0.0.1:7701", *server_pub = NULL, *keyfile = NULL;
    long batch = 1000, timeout_s = 10, window = 8;
    struct pub p = {0};
    void *ctx, *mon = NULL;
    int c, rc = 0, linger = 0, nfiles;
    char **files;
    size_t next = 0, acked = 0, inflight = 0;
    char fatal[512] = "";
    bool tty = isatty(2);
    char *endp;

    optind = 1;
    while ((c = getopt_long(argc, argv, "e:s:k:b:t:w:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': endpoint = optarg; break;
        case 's': server_pub = optarg; break;
        case 'k': keyfile = optarg; break;
        case 'b':
            batch = strtol(optarg, &endp, 10);
            if (*endp || batch < 1 || batch > 100000) {
                fprintf(stderr, "rvctl publish: --batch must be an integer 1..100000\n");
                return EXIT_USAGE;
            }
            break;
        case 't':
            timeout_s = strtol(optarg, &endp, 10);
            if (*endp || timeout_s < 1 || timeout_s > 3600) {
                fprintf(stderr, "rvctl publish: --timeout must be seconds 1..3600\n");
                return EXIT_USAGE;
            }
            break;
        case 'w':
            window = strtol(optarg, &endp, 10);
            if (*endp || window < 1 || window > 1000) {
                fprintf(stderr, "rvctl publish: --window must be an integer 1..1000\n");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            printf("usage: rvctl publish [--endpoint E] [--server-pub FILE] [--key FILE] "
                   "[--batch N] [--timeout S] [--window W] [FILE...]\n"
                   "  E defaults to tcp://127.0.0.1:7701; with --server-pub and --key the\n"
                   "  connection uses CURVE (keys from 'rvctl keygen'); FILE is NDJSON or a\n"
                   "  JSON array, stdin when none. Batches of N lines (default 1000), W in\n"
                   "  flight (default 8); an unanswered batch is resent (dedup makes that\n"
                   "  safe) until --timeout seconds (default 10) pass without any reply.\n");
            return 0;
        default: return usage(stderr, EXIT_USAGE);
        }
    }
    if ((server_pub == NULL) != (keyfile == NULL)) {
        fprintf(stderr, "rvctl publish: --server-pub and --key go together\n");
        return EXIT_USAGE;
    }
    files = argv + optind;
    nfiles = argc - optind;
    if (nfiles == 0) {
        char *buf;
        size_t len;
        if (read_all(stdin, &buf, &len)) {
            fprintf(stderr, "rvctl publish: cannot read stdin\n");
            return EXIT_USAGE;
        }
        split(&p, buf, len, (size_t)batch, 0);
        free(buf);
    }
    for (int i = 0; i < nfiles; i++) {
        FILE *f = fopen(files[i], "rb");
        char *buf;
        size_t len;
        if (!f) {
            fprintf(stderr, "rvctl publish: cannot open '%s': %s\n", files[i], strerror(errno));
            return EXIT_USAGE;
        }
        if (read_all(f, &buf, &len)) {
            fclose(f);
            fprintf(stderr, "rvctl publish: cannot read '%s'\n", files[i]);
            return EXIT_USAGE;
        }
        fclose(f);
        split(&p, buf, len, (size_t)batch, i);
        free(buf);
    }

    ctx = zmq_ctx_new();
    p.sock = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(p.sock, ZMQ_LINGER, &linger, sizeof(linger));
    {
        int64_t maxmsg = 64 << 20;
        int hs = (int)timeout_s * 1000;
        zmq_setsockopt(p.sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        zmq_setsockopt(p.sock, ZMQ_HANDSHAKE_IVL, &hs, sizeof(hs));
    }
    if (server_pub) {
        char spub[41], sec[41], pub[41];
        struct rv_errbuf err;
        if (rv_key_load(server_pub, spub, &err) || rv_key_load(keyfile, sec, &err)) {
            fprintf(stderr, "rvctl publish: %s\n", err.msg);
            rc = EXIT_USAGE;
            goto out;
        }
        if (zmq_curve_public(pub, sec) != 0) {
            fprintf(stderr, "rvctl publish: '%s' is not a secret key\n", keyfile);
            rc = EXIT_USAGE;
            goto out;
        }
        zmq_setsockopt(p.sock, ZMQ_CURVE_SERVERKEY, spub, 40);
        zmq_setsockopt(p.sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(p.sock, ZMQ_CURVE_SECRETKEY, sec, 40);
        memset(sec, 0, sizeof(sec));
    }
    /* the monitor tells an authentication refusal apart from silence */
    if (zmq_socket_monitor(p.sock, "inproc://rvctl-mon",
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) ==
        0) {
        mon = zmq_socket(ctx, ZMQ_PAIR);
        zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof(linger));
        if (zmq_connect(mon, "inproc://rvctl-mon") != 0) {
            zmq_close(mon);
            mon = NULL;
        }
    }
    if (zmq_connect(p.sock, endpoint) != 0) {
        fprintf(stderr, "rvctl publish: bad endpoint '%s': %s\n", endpoint, zmq_strerror(errno));
        rc = EXIT_USAGE;
        goto out;
    }
    {
        uint64_t last_progress = rv_mono_ns(), tmo = (uint64_t)timeout_s * 1000000000ULL;
        /* per-batch resend after a quarter of the timeout, give up when no
         * reply at all arrived for the whole timeout */
        uint64_t resend = tmo / 4 > 500000000ULL ? tmo / 4 : 500000000ULL;
        uint64_t last_reply = rv_mono_ns();
        while (acked < p.n) {
            zmq_pollitem_t it = {p.sock, 0, ZMQ_POLLIN, 0};
            uint64_t now;
            while (next < p.n && inflight < (size_t)window) {
                int sr = send_chunk(&p, next);
                if (sr < 0) {
                    snprintf(fatal, sizeof(fatal), "send failed: %s", zmq_strerror(errno));
                    break;
                }
                if (sr > 0)
                    break; /* no peer yet: retry on the next turn */
                next++;
                inflight++;
            }
            if (fatal[0])
                break;
            if (mon) {
                zmq_pollitem_t mi = {mon, 0, ZMQ_POLLIN, 0};
                if (zmq_poll(&mi, 1, 0) > 0) {
                    unsigned char ev[6];
                    char addr[256];
                    uint16_t code;
                    int more = 0;
                    size_t ml = sizeof(more);
                    if (zmq_recv(mon, ev, sizeof(ev), 0) == 6) {
                        memcpy(&code, ev, 2);
                        zmq_getsockopt(mon, ZMQ_RCVMORE, &more, &ml);
                        if (more)
                            zmq_recv(mon, addr, sizeof(addr), 0);
                        if (code == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                            snprintf(fatal, sizeof(fatal),
                                     "authentication failed at %s: this key is not an authorised "
                                     "partner",
                                     endpoint);
                            break;
                        }
                    }
                }
            }
            zmq_poll(&it, 1, 100);
            if (it.revents & ZMQ_POLLIN) {
                int r;
                while ((r = on_reply(&p, files, nfiles, fatal, sizeof(fatal))) != 0 ||
                       (zmq_poll(&it, 1, 0) > 0 && (it.revents & ZMQ_POLLIN))) {
                    if (r < 0)
                        break;
                    if (r > 0) {
                        acked++;
                        inflight--;
                        last_reply = rv_mono_ns();
                    }
                    it.revents = 0;
                    if (zmq_poll(&it, 1, 0) <= 0)
                        break;
                }
                if (fatal[0])
                    break;
            }
            now = rv_mono_ns();
            if (now - last_reply > tmo) {
                snprintf(fatal, sizeof(fatal),
                         "no reply from %s within %lds (server down, wrong server key, or this "
                         "key is not an authorised partner)",
                         endpoint, timeout_s);
                break;
            }
            for (size_t i = 0; i < next; i++) {
                if (!p.c[i].acked && now - p.c[i].sent_ns > resend &&
                    send_chunk(&p, i) != 0) /* same ids: the server dedups */
                    break;
            }
            if (tty && now - last_progress > 200000000ULL) {
                fprintf(stderr, "\rrvctl publish: %zu/%zu batches acknowledged", acked, p.n);
                last_progress = now;
            }
        }
        if (tty && p.n > 1)
            fprintf(stderr, "\r%60s\r", "");
    }
    if (fatal[0]) {
        fprintf(stderr, "rvctl publish: %s\n", fatal);
        if (acked)
            printf("accepted %zu duplicates %zu rejected %zu (incomplete: %zu of %zu batches "
                   "acknowledged)\n",
                   p.accepted, p.duplicates, p.rejected, acked, p.n);
        rc = EXIT_USAGE;
        goto out;
    }
    printf("accepted %zu duplicates %zu rejected %zu\n", p.accepted, p.duplicates, p.rejected);
    for (size_t i = 0; i < p.nmsg; i++)
        printf("%s\n", p.msgs[i]);
    rc = p.rejected ? EXIT_REJECTED : 0;
out:
    zmq_socket_monitor(p.sock, NULL, 0);
    if (mon)
        zmq_close(mon);
    zmq_close(p.sock);
    zmq_ctx_term(ctx);
    for (size_t i = 0; i < p.n; i++)
        free(p.c[i].data);
    free(p.c);
    for (size_t i = 0; i < p.nmsg; i++)
        free(p.msgs[i]);
    free(p.msgs);
    return rc;
}

/* ------------------------------------------------------------- query */

struct qctx {
    FILE *out;
    bool first;
    bool attrs;
    struct rv_store *st;
};

static void print_item(struct qctx *q, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    fprintf(q->out, "%s\n  %s", q->first ? "" : ",", s ? s : "null");
    q->first = false;
    free(s);
    cJSON_Delete(o);
}

static cJSON *bin_json(struct rv_store *st, const struct rv_bin *b)
{
    char t[32];
    cJSON *o = cJSON_CreateObject(), *src = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "country", b->country);
    cJSON_AddStringToObject(o, "violation", rv_violation_name(b->violation));
    cJSON_AddStringToObject(o, "res", rv_res_name(b->res));
    cJSON_AddStringToObject(o, "bin", rv_time_format(b->start_ms, t, sizeof(t)));
    cJSON_AddNumberToObject(o, "events", (double)b->events);
    cJSON_AddNumberToObject(o, "count", (double)b->count);
    cJSON_AddNumberToObject(o, "weight", b->weight);
    cJSON_AddNumberToObject(o, "n_sources", b->n_sources);
    for (int i = 0; i < b->n_sources; i++) {
        char name[RV_SOURCE_MAX + 1];
        if (rv_store_source_name(st, b->sources[i], name, sizeof(name)) == RV_OK)
            cJSON_AddItemToArray(src, cJSON_CreateString(name));
    }
    cJSON_AddItemToObject(o, "sources", src);
    if (b->probe_n) {
        cJSON *p = cJSON_AddObjectToObject(o, "probe");
        cJSON_AddNumberToObject(p, "n", (double)b->probe_n);
        cJSON_AddNumberToObject(p, "min", b->probe_min);
        cJSON_AddNumberToObject(p, "max", b->probe_max);
        cJSON_AddNumberToObject(p, "mean", b->probe_sum / (double)b->probe_n);
    }
    return o;
}

static int q_bin(void *arg, const struct rv_bin *b)
{
    struct qctx *q = arg;
    print_item(q, bin_json(q->st, b));
    return 0;
}

static int q_event(void *arg, uint64_t seq, int64_t ing, const struct rv_event *ev)
{
    struct qctx *q = arg;
    cJSON *o = rv_event_to_json(ev, q->attrs);
    (void)ing;
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    print_item(q, o);
    return 0;
}

static int q_alert(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct qctx *q = arg;
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o)
        o = cJSON_CreateObject();
    if (!cJSON_GetObjectItem(o, "seq"))
        cJSON_AddNumberToObject(o, "seq", (double)seq);
    print_item(q, o);
    return 0;
}

static int parse_time_arg(const char *s, int64_t *ms)
{
    char *end;
    long long v;
    if (rv_time_parse_rfc3339(s, ms) == RV_OK)
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s && !*end && errno == 0) {
        *ms = v;
        return 0;
    }
    return -1; /* not a number, or out of range */
}

static int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},
                                         {"country", required_argument, 0, 'c'},
                                         {"violation", required_argument, 0, 'v'},
                                         {"res", required_argument, 0, 'r'},
                                         {"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"since", required_argument, 0, 's'},
                                         {"limit", required_argument, 0, 'l'},
                                         {"source", required_argument, 0, 'S'},
                                         {"attrs", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *data = "./rv-data", *country = NULL, *what, *source = NULL;
    int violation = -1, res = RV_RES_1H, c, rc;
    int64_t from = 0, to = 0;
    unsigned long long since = 0, limit = 0;
    bool attrs = false;
    struct rv_store *st;
    struct rv_store_opts o;
    struct rv_errbuf err;
    struct qctx q = {stdout, true, false, NULL};
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "d:c:v:r:f:t:s:l:S:ah", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'c':
            country = optarg;
            if (!rv_country_valid(country)) {
                fprintf(stderr, "rvctl query: --country: '%s' is not an ISO 3166-1 alpha-2 code\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'v':
            violation = rv_violation_from_name(optarg);
            if (violation < 0) {
                fprintf(stderr, "rvctl query: --violation: '%s' is not a taxonomy code\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'r':
            res = rv_res_from_name(optarg);
            if (res < 0) {
                fprintf(stderr, "rvctl query: --res: must be 1m, 1h or 1d\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
        case 't':
            if (parse_time_arg(optarg, c == 'f' ? &from : &to)) {
                fprintf(stderr, "rvctl query: --%s: '%s' is not RFC 3339 or epoch ms\n",
                        c == 'f' ? "from" : "to", optarg);
                return EXIT_USAGE;
            }
            break;
        case 's':
        case 'l':
            errno = 0;
            *(c == 's' ? &since : &limit) = strtoull(optarg, &end, 10);
            if (*end || errno || optarg[0] == '-') {
                fprintf(stderr, "rvctl query: --%s: must be a non-negative integer\n",
                        c == 's' ? "since" : "limit");
                return EXIT_USAGE;
            }
            break;
        case 'S': source = optarg; break;
        case 'a': attrs = true; break;
        case 'h':
            printf("usage: rvctl query [--data DIR] overview|series|alerts|events [filters]\n"
                   "  Reads the store in DIR (default ./rv-data) read-only, while the daemon\n"
                   "  runs or not, and prints one JSON object to stdout:\n"
                   "  overview  the latest bin of every country x violation cell (--res)\n"
                   "  series    the bins of one cell: needs --country and --violation;\n"
                   "            --res 1m|1h|1d (default 1h), --from T, --to T\n"
                   "  alerts    every alert change in seq order, after --since SEQ\n"
                   "  events    the events in seq order; filters --country CC\n"
                   "            --violation V --source NAME --from T --to T (event time,\n"
                   "            [from, to)) --since SEQ --limit N; --attrs adds attrs\n"
                   "  T is RFC 3339 (2024-06-08T21:40:00Z) or epoch milliseconds.\n"
                   "  Exit 0 ok, 2 bad usage or the store cannot be read.\n");
            return 0;
        default: return usage(stderr, EXIT_USAGE);
        }
    }
    if (optind != argc - 1)
        return usage(stderr, EXIT_USAGE);
    what = argv[optind];
    if (strcmp(what, "overview") && strcmp(what, "series") && strcmp(what, "alerts") &&
        strcmp(what, "events")) {
        fprintf(stderr, "rvctl query: '%s' is not one of overview, series, alerts, events\n", what);
        return EXIT_USAGE;
    }
    if (strcmp(what, "series") == 0 && (!country || violation < 0)) {
        fprintf(stderr, "rvctl query series: needs --country and --violation\n");
        return EXIT_USAGE;
    }
    rv_store_opts_default(&o);
    o.read_only = true;
    if (rv_store_open(data, &o, &st, &err) != RV_OK) {
        fprintf(stderr, "rvctl query: %s\n", err.msg);
        return EXIT_USAGE;
    }
    q.st = st;
    q.attrs = attrs;
    if (strcmp(what, "overview") == 0) {
        printf("{\"res\":\"%s\",\"last_seq\":%llu,\"cells\":[", rv_res_name(res),
               (unsigned long long)rv_store_last_seq(st));
        rc = rv_store_read_overview(st, res, q_bin, &q, &err);
    } else if (strcmp(what, "series") == 0) {
        printf("{\"country\":\"%s\",\"violation\":\"%s\",\"res\":\"%s\",\"bins\":[", country,
               rv_violation_name(violation), rv_res_name(res));
        rc = rv_store_read_series(st, country, violation, res, from, to ? to : INT64_MAX, q_bin, &q,
                                  &err);
    } else if (strcmp(what, "alerts") == 0) {
        printf("{\"alerts\":[");
        rc = rv_store_read_alerts(st, since, q_alert, &q, &err);
    } else {
        struct rv_event_filter f = {.country = country, .violation = violation, .source = source,
                                    .from_ms = from, .to_ms = to ? to : (from ? INT64_MAX : 0),
                                    .after_seq = since, .limit = limit};
        printf("{\"events\":[");
        rc = rv_store_read_events(st, &f, q_event, &q, &err);
    }
    printf("%s]}\n", q.first ? "" : "\n");
    rv_store_close(&st);
    if (rc) {
        fprintf(stderr, "rvctl query: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    rv_log_set_level(RV_LOG_WARN);
    rv_event_parse_arena_init(); /* else rv_event_parse uses malloc */
    if (argc < 2)
        return usage(stderr, EXIT_USAGE);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout, 0);
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "publish") == 0)
        return cmd_publish(argc - 1, argv + 1);
    if (strcmp(argv[1], "query") == 0)
        return cmd_query(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return rv_token_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "backtest") == 0)
        return rv_backtest_main(argc - 1, argv + 1);
    fprintf(stderr, "rvctl: unknown command '%s'\n", argv[1]);
    return usage(stderr, EXIT_USAGE);
}

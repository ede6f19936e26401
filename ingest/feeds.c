/*
 * feeds: the feed workers (see rv/feeds.h for the contract).
 *
 * One worker thread polls every configured feed when it is due. A poll
 * reads the payload (libcurl for http(s), read() for files), parses it
 * with the format's parser (rv_feed_parser_sorted: a payload's events in
 * event-time order, but ndjson in its own) into chunks of RV_FEEDS_CHUNK
 * events and hands each chunk to the writer with rv_writer_submit_wait;
 * the last chunk of a payload carries the feed's cursor, so the cursor
 * commits in the same transaction as the events it covers. A full chunk
 * is held back until the next event arrives, so the last request is never
 * an empty one unless the payload has no events at all. The sort holds
 * up to sort_max_events events (the whole payload, or one run of a bigger
 * one) until the parse ends or the run is full, so the first chunk leaves
 * then; a payload that needed several runs is logged and counted.
 *
 * Stopping: the stop flag is read between chunks, at every event the sort
 * collects (sink->stop), between files and by curl's progress callback
 * (which aborts a transfer); the idle wait is a timed condvar wait on
 * CLOCK_MONOTONIC.
 *
 * Threads: struct rv_feeds is shared between the controlling thread and
 * the worker; `mu` guards `due`/`stats` of every feed and `poke`; the
 * stop flag is atomic. Everything else belongs to the worker.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "rv/err.h"
#include "rv/event.h"
#include "rv/feed.h"
#include "rv/feeds.h"
#include "rv/log.h"
#include "rv/metrics.h"
#include "rv/store.h"
#include "rv/timeutil.h"
#include "rv/writer.h"
#include "feed_json.h"

#define FEEDS_MOD "feeds"
#define FEEDS_FILE_MAX (1024 * 1024)  /* bytes of a feeds file */
#define FEEDS_CURSOR_MAX 4096         /* bytes of one cursor */
#define FEEDS_HDR_MAX 256             /* bytes of an ETag / Last-Modified kept */
#define FEEDS_SUBMIT_SLICE_MS 500     /* re-check the stop flag while waiting for room */
#define FEEDS_USER_AGENT "rightsview/0.1"

enum feed_kind { FEED_HTTP, FEED_FILE, FEED_DIR_OR_FILE };

/* Cursor fields, parsed from / written as JSON. */
struct feed_cursor {
    bool valid;
    char path[4096];  /* file or dir path, or hex sha256 of the url */
    char file[256];   /* dir: last completed file name */
    bool skipped;     /* local: that payload was skipped (too big, unreadable) */
    bool legacy_url;  /* http: read from an older cursor holding the url itself */
    uint64_t size;
    int64_t mtime_ns;
    char sha[65];     /* hex sha256 of the payload, "" if none */
    char etag[FEEDS_HDR_MAX];
    char lastmod[FEEDS_HDR_MAX];
};

struct feed {
    struct rv_feed_cfg cfg;   /* owned copy */
    rv_feed_parse_fn parse;
    enum feed_kind kind;
    char *path;               /* local path (file:// stripped), NULL for http */
    char cursor_name[8 + RV_FEEDS_NAME_MAX];
    char url_sha[65];         /* http: hex sha256 of the url, what the cursor keeps */
    struct feed_cursor cur;   /* worker */
    uint64_t due_ms;          /* monotonic ms; guarded by mu */
    unsigned fails;           /* worker */
    /* worker: the payload (a hash of its cursor text) whose JSON tree last
     * did not fit in memory, and how many times in a row */
    uint64_t nomem_key;
    unsigned nomem_tries;
    struct rv_feed_stats stats; /* guarded by mu */
    rv_metric *m_acc, *m_dup, *m_rej;
    rv_metric *m_ok, *m_unch, *m_304, *m_inv, *m_err, *m_skip;
    rv_metric *m_sortov;      /* payloads written in several sorted runs */
};

struct rv_feeds {
    struct rv_store *st;
    struct rv_writer *w;
    struct feed *feeds;
    size_t n;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool poke;                /* guarded by mu */
    atomic_bool stop;
    unsigned rnd;             /* worker: jitter seed */
};

/* ================================================================ config */

void rv_feed_cfg_default(struct rv_feed_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->interval_s = 900;
    c->connect_timeout_s = 10;
    c->timeout_s = 300;
    c->stall_s = 60;
    c->max_bytes = 256ull * 1024 * 1024;
    c->max_redirects = 5;
    c->backoff_min_s = 30;
    c->backoff_max_s = 3600;
    c->sort_max_events = RV_FEED_SORT_MAX_DEFAULT;
}

void rv_feeds_cfg_free(struct rv_feed_cfg *feeds, size_t n)
{
    if (!feeds)
        return;
    for (size_t i = 0; i < n; i++) {
        free(feeds[i].name);
        free(feeds[i].format);
        free(feeds[i].url);
    }
    free(feeds);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > RV_FEEDS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* URL for logs and messages: without user:password@ and without its query
 * or fragment (either may hold keys). */
static void url_for_log(const char *url, char *buf, size_t cap)
{
    size_t sl = strcspn(url, ":/?#@"), pre = 0, n;
    const char *rest = url;

    if (sl > 0 && sl <= 16 && strncmp(url + sl, "://", 3) == 0) {
        const char *a = url + sl + 3;
        size_t alen = strcspn(a, "/?#");

        pre = sl + 3;
        rest = a;
        for (size_t k = 0; k < alen; k++)
            if (a[k] == '@')
                rest = a + k + 1;
    }
    n = strcspn(rest, "?#");
    snprintf(buf, cap, "%.*s%.*s%s", (int)pre, url, (int)(n > 200 ? 200 : n), rest,
             rest[n] ? "?..." : "");
}

/* Local path of a file:// URL or a plain path; NULL (ERR set) otherwise. */
static int url_local_path(const char *url, const char **path)
{
    if (has_prefix_ci(url, "http://") || has_prefix_ci(url, "https://")) {
        *path = NULL;
        return RV_OK;
    }
    if (has_prefix_ci(url, "file://")) {
        const char *p = url + 7;
        if (has_prefix_ci(p, "localhost/"))
            p += 9;
        if (*p != '/')
            return RV_EINVAL;
        *path = p;
        return RV_OK;
    }
    if (strstr(url, "://") || !url[0])
        return RV_EINVAL;
    *path = url;
    return RV_OK;
}

/* Reads the integer KEY of OBJ into *v within [lo, hi]. */
static int get_uint(const cJSON *it, const char *where, uint64_t lo, uint64_t hi, uint64_t *v,
                    struct rv_errbuf *err)
{
    double d = it->valuedouble;

    /* range first: casting a negative or huge double is undefined */
    if (!cJSON_IsNumber(it) || !(d >= (double)lo && d <= (double)hi) || d != (double)(uint64_t)d)
        return rv_err_set(err, RV_EINVAL, "%s: must be an integer %" PRIu64 "..%" PRIu64, where,
                          lo, hi);
    *v = (uint64_t)d;
    return RV_OK;
}

static int parse_options(const cJSON *opts, size_t idx, struct rv_feed_cfg *c,
                         struct rv_errbuf *err)
{
    static const struct {
        const char *key;
        uint64_t lo, hi;
    } keys[] = {
        {"connect_timeout_s", 1, 3600}, {"timeout_s", 1, 86400},       {"stall_s", 1, 86400},
        {"max_bytes", 1, 1ull << 40},   {"max_redirects", 0, 50},      {"backoff_min_s", 1, 86400},
        {"backoff_max_s", 1, 604800},   {"sort_max_events", 0, 100000000},
    };
    const cJSON *it;
    char where[96];

    if (!cJSON_IsObject(opts))
        return rv_err_set(err, RV_EINVAL, "feeds[%zu].options: not an object", idx);
    cJSON_ArrayForEach(it, opts)
    {
        size_t k;
        uint64_t v = 0;
        int rc;

        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (strcmp(it->string, keys[k].key) == 0)
                break;
        if (k == sizeof(keys) / sizeof(keys[0]))
            return rv_err_set(err, RV_EINVAL, "feeds[%zu].options.%.40s: unknown option", idx,
                              it->string);
        snprintf(where, sizeof(where), "feeds[%zu].options.%s", idx, keys[k].key);
        rc = get_uint(it, where, keys[k].lo, keys[k].hi, &v, err);
        if (rc != RV_OK)
            return rc;
        switch (k) {
        case 0: c->connect_timeout_s = (unsigned)v; break;
        case 1: c->timeout_s = (unsigned)v; break;
        case 2: c->stall_s = (unsigned)v; break;
        case 3: c->max_bytes = v; break;
        case 4: c->max_redirects = (unsigned)v; break;
        case 5: c->backoff_min_s = (unsigned)v; break;
        case 6: c->backoff_max_s = (unsigned)v; break;
        default: c->sort_max_events = v; break;
        }
    }
    if (c->backoff_max_s < c->backoff_min_s)
        return rv_err_set(err, RV_EINVAL,
                          "feeds[%zu].options.backoff_max_s: less than backoff_min_s", idx);
    return RV_OK;
}

static int parse_entry(const cJSON *e, size_t idx, struct rv_feed_cfg *c, struct rv_errbuf *err)
{
    const cJSON *it;
    bool has_name = false, has_format = false, has_url = false;
    char where[64];

    rv_feed_cfg_default(c);
    if (!cJSON_IsObject(e))
        return rv_err_set(err, RV_EINVAL, "feeds[%zu]: not an object", idx);
    cJSON_ArrayForEach(it, e)
    {
        const char *k = it->string;
        if (strcmp(k, "name") == 0 || strcmp(k, "format") == 0 || strcmp(k, "url") == 0) {
            char **dst = k[0] == 'n' ? &c->name : (k[0] == 'f' ? &c->format : &c->url);
            if (!cJSON_IsString(it))
                return rv_err_set(err, RV_EINVAL, "feeds[%zu].%s: not a string", idx, k);
            if (*dst)
                return rv_err_set(err, RV_EINVAL, "feeds[%zu].%s: given twice", idx, k);
            *dst = strdup(it->valuestring);
            if (!*dst)
                return rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
            has_name |= k[0] == 'n';
            has_format |= k[0] == 'f';
            has_url |= k[0] == 'u';
        } else if (strcmp(k, "interval_s") == 0) {
            uint64_t v = 0;
            int rc;
            snprintf(where, sizeof(where), "feeds[%zu].interval_s", idx);
            rc = get_uint(it, where, 1, 604800, &v, err);
            if (rc != RV_OK)
                return rc;
            c->interval_s = (unsigned)v;
        } else if (strcmp(k, "options") == 0) {
            int rc = parse_options(it, idx, c, err);
            if (rc != RV_OK)
                return rc;
        } else {
            return rv_err_set(err, RV_EINVAL, "feeds[%zu].%.40s: unknown key", idx, k);
        }
    }
    if (!has_name)
        return rv_err_set(err, RV_EINVAL, "feeds[%zu].name: missing", idx);
    if (!name_ok(c->name))
        return rv_err_set(err, RV_EINVAL,
                          "feeds[%zu].name: '%.80s' is not 1..64 of A-Z a-z 0-9 . _ -", idx,
                          c->name);
    if (!has_format)
        return rv_err_set(err, RV_EINVAL, "feeds[%zu].format: missing", idx);
    if (!rv_feed_parser(c->format))
        return rv_err_set(err, RV_EINVAL,
                          "feeds[%zu].format: '%.40s' is not one of ndjson, ooni, ioda, gdelt, "
                          "acled",
                          idx, c->format);
    if (!has_url)
        return rv_err_set(err, RV_EINVAL, "feeds[%zu].url: missing", idx);
    {
        const char *p;
        char u[128];
        if (url_local_path(c->url, &p) != RV_OK) {
            url_for_log(c->url, u, sizeof(u));
            return rv_err_set(err, RV_EINVAL,
                              "feeds[%zu].url: '%s' is not http(s)://, file:///path or a path",
                              idx, u);
        }
    }
    return RV_OK;
}

int rv_feeds_parse(const char *text, size_t len, struct rv_feed_cfg **out, size_t *n,
                   struct rv_errbuf *err)
{
    cJSON *root = NULL;
    struct rv_feed_cfg *arr = NULL;
    const char *end = NULL;
    size_t cnt = 0, i = 0;
    int rc = RV_OK;

    *out = NULL;
    *n = 0;
    rv_err_clear(err);
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0, line = 1;
        for (size_t k = 0; k < off && k < len; k++)
            line += text[k] == '\n';
        rc = rv_err_set(err, RV_EINVAL, "feeds: not valid JSON (line %zu)", line);
        goto fail;
    }
    if (!cJSON_IsArray(root)) {
        rc = rv_err_set(err, RV_EINVAL, "feeds: not a JSON list");
        goto fail;
    }
    cnt = (size_t)cJSON_GetArraySize(root);
    if (cnt) {
        const cJSON *e;
        arr = calloc(cnt, sizeof(*arr));
        if (!arr) {
            rc = rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
            goto fail;
        }
        cJSON_ArrayForEach(e, root)
        {
            rc = parse_entry(e, i, &arr[i], err);
            i++;
            if (rc != RV_OK)
                goto fail;
            for (size_t j = 0; j + 1 < i; j++)
                if (strcmp(arr[j].name, arr[i - 1].name) == 0) {
                    rc = rv_err_set(err, RV_EINVAL,
                                    "feeds[%zu].name: '%s' is already the name of feeds[%zu]",
                                    i - 1, arr[i - 1].name, j);
                    goto fail;
                }
        }
    }
    cJSON_Delete(root);
    *out = arr;
    *n = cnt;
    return RV_OK;
fail:
    rv_feeds_cfg_free(arr, i);
    cJSON_Delete(root);
    return rc;
}

/* Errors of open/read that may pass by themselves (retried); any other
 * (gone, permission, not a file, too big) stays until somebody acts. */
static bool errno_transient(int e)
{
    return e == EINTR || e == EAGAIN || e == EMFILE || e == ENFILE || e == ENOMEM ||
           e == ENOBUFS;
}

/* Reads PATH whole, at most MAX bytes (RV_ETOOBIG past it). On error
 * *PERMANENT (may be NULL) tells whether retrying the same file as it is
 * cannot help (too big, gone, permission, not a regular file). */
static int read_whole(const char *path, uint64_t max, char **buf, size_t *len, bool *permanent,
                      struct rv_errbuf *err)
{
    char *b = NULL;
    size_t cap = 0, n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    bool perm = true;
    struct stat sb;

    *buf = NULL;
    *len = 0;
    if (permanent)
        *permanent = false;
    if (fd < 0) {
        int e = errno;
        if (permanent)
            *permanent = !errno_transient(e);
        return rv_err_set(err, e == ENOENT ? RV_ENOTFOUND : RV_EIO, "file: cannot open '%s': %s",
                          path, strerror(e));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = rv_err_set(err, RV_EIO, "file: '%s' is not a regular file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > max) {
        rc = rv_err_set(err, RV_ETOOBIG, "file: '%s' is %lld bytes, more than max_bytes %" PRIu64,
                        path, (long long)sb.st_size, max);
        goto fail;
    }
    cap = (size_t)sb.st_size + 1;
    b = malloc(cap);
    if (!b) {
        perm = false;
        rc = rv_err_set(err, RV_ENOMEM, "file: out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t r;
        if (n + 1 >= cap) {
            char *nb;
            if (cap > max + 1) {
                rc = rv_err_set(err, RV_ETOOBIG, "file: '%s' grew past max_bytes %" PRIu64, path,
                                max);
                goto fail;
            }
            nb = realloc(b, cap * 2);
            if (!nb) {
                perm = false;
                rc = rv_err_set(err, RV_ENOMEM, "file: out of memory");
                goto fail;
            }
            b = nb;
            cap *= 2;
        }
        r = read(fd, b + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perm = !errno_transient(errno);
            rc = rv_err_set(err, RV_EIO, "file: cannot read '%s': %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        rc = rv_err_set(err, RV_ETOOBIG, "file: '%s' grew past max_bytes %" PRIu64, path, max);
        goto fail;
    }
    b[n] = '\0';
    close(fd);
    *buf = b;
    *len = n;
    return RV_OK;
fail:
    if (permanent)
        *permanent = perm;
    free(b);
    close(fd);
    return rc;
}

int rv_feeds_load(const char *file, struct rv_feed_cfg **out, size_t *n, struct rv_errbuf *err)
{
    char *text;
    size_t len;
    int rc;

    *out = NULL;
    *n = 0;
    rc = read_whole(file, FEEDS_FILE_MAX, &text, &len, NULL, err);
    if (rc != RV_OK) {
        if (rc == RV_ETOOBIG)
            return rv_err_set(err, rc, "feeds: '%s' is larger than %d bytes", file,
                              FEEDS_FILE_MAX);
        return rv_err_set(err, rc, "feeds: cannot read '%s': %s", file,
                          rc == RV_ENOTFOUND ? "no such file" : "not a readable file");
    }
    rc = rv_feeds_parse(text, len, out, n, err);
    free(text);
    return rc;
}

/* ================================================================ cursor */

static void sha256_hex(const void *buf, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";

    out[0] = '\0';
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static void copy_str(char *dst, size_t cap, const cJSON *it)
{
    dst[0] = '\0';
    if (cJSON_IsString(it))
        snprintf(dst, cap, "%s", it->valuestring);
}

static void cursor_parse(const char *text, size_t len, struct feed_cursor *c)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    const cJSON *it;

    memset(c, 0, sizeof(*c));
    if (!cJSON_IsObject(j))
        goto done;
    it = cJSON_GetObjectItemCaseSensitive(j, "v");
    if (!cJSON_IsNumber(it) || it->valuedouble != 1)
        goto done;
    it = cJSON_GetObjectItemCaseSensitive(j, "path");
    if (!it)
        it = cJSON_GetObjectItemCaseSensitive(j, "url_sha256");
    copy_str(c->path, sizeof(c->path), it);
    it = cJSON_GetObjectItemCaseSensitive(j, "url");
    if (!c->path[0] && cJSON_IsString(it)) { /* older cursor: the whole url */
        sha256_hex(it->valuestring, strlen(it->valuestring), c->path);
        c->legacy_url = true;
    }
    c->skipped = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "skipped"));
    copy_str(c->file, sizeof(c->file), cJSON_GetObjectItemCaseSensitive(j, "file"));
    copy_str(c->sha, sizeof(c->sha), cJSON_GetObjectItemCaseSensitive(j, "sha256"));
    copy_str(c->etag, sizeof(c->etag), cJSON_GetObjectItemCaseSensitive(j, "etag"));
    copy_str(c->lastmod, sizeof(c->lastmod), cJSON_GetObjectItemCaseSensitive(j, "last_modified"));
    it = cJSON_GetObjectItemCaseSensitive(j, "size");
    if (cJSON_IsNumber(it) && it->valuedouble >= 0 && it->valuedouble < 1e18)
        c->size = (uint64_t)it->valuedouble;
    it = cJSON_GetObjectItemCaseSensitive(j, "mtime_ns");
    if (cJSON_IsString(it))
        c->mtime_ns = strtoll(it->valuestring, NULL, 10);
    c->valid = true;
done:
    cJSON_Delete(j);
}

/* JSON text of C for feed kind HTTP (hash of the url: a query may hold a
 * key, which has no business in the store) or local (path). Caller frees. */
static char *cursor_text(const struct feed_cursor *c, bool http, bool dir)
{
    cJSON *j = cJSON_CreateObject();
    char mt[32];
    char *s = NULL;

    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "v", 1);
    if (http) {
        cJSON_AddStringToObject(j, "url_sha256", c->path);
        cJSON_AddStringToObject(j, "etag", c->etag);
        cJSON_AddStringToObject(j, "last_modified", c->lastmod);
        cJSON_AddStringToObject(j, "sha256", c->sha);
    } else {
        cJSON_AddStringToObject(j, "path", c->path);
        if (dir)
            cJSON_AddStringToObject(j, "file", c->file);
        cJSON_AddNumberToObject(j, "size", (double)c->size);
        /* ns do not fit a double exactly: a string */
        snprintf(mt, sizeof(mt), "%" PRId64, c->mtime_ns);
        cJSON_AddStringToObject(j, "mtime_ns", mt);
        if (!dir)
            cJSON_AddStringToObject(j, "sha256", c->sha);
        if (c->skipped)
            cJSON_AddTrueToObject(j, "skipped");
    }
    s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* =============================================================== helpers */

static uint64_t mono_ms(void)
{
    return rv_mono_ns() / 1000000u;
}

static bool stopping(const struct rv_feeds *f)
{
    return atomic_load(&((struct rv_feeds *)f)->stop);
}

static void stats_add(struct rv_feeds *f, struct feed *fd, uint64_t *field, uint64_t v)
{
    (void)fd;
    pthread_mutex_lock(&f->mu);
    *field += v;
    pthread_mutex_unlock(&f->mu);
}

/* Payload WHAT cannot be read as it is (REASON): logged, counted. */
static void note_skip(struct rv_feeds *f, struct feed *fd, const char *what, const char *reason)
{
    rv_log_warn(FEEDS_MOD, "skipped feed=%s payload=\"%s\" reason=\"%s\"", fd->cfg.name, what,
                reason);
    rv_metric_add(fd->m_skip, 1);
    pthread_mutex_lock(&f->mu);
    fd->stats.skipped++;
    snprintf(fd->stats.last_skipped, sizeof(fd->stats.last_skipped), "%s", reason);
    pthread_mutex_unlock(&f->mu);
}

/* ============================================================== payloads */

struct sink_ctx {
    struct rv_feeds *f;
    struct feed *fd;
    struct rv_event *chunk; /* RV_FEEDS_CHUNK slots */
    struct rv_put_result *res;
    size_t n;
    size_t rejected, logged;
    size_t sort_runs;       /* runs the sort emitted before the parse ended */
    uint64_t accepted, dup;
    int rc;                 /* first write error, or RV_EAGAIN when stopped */
    struct rv_errbuf err;
};

static void chunk_release(struct sink_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        rv_event_release(&c->chunk[i]);
    c->n = 0;
}

/* Writes the chunk (and CUR when not NULL) in one request and waits for
 * the commit. */
static int chunk_write(struct sink_ctx *c, const struct rv_cursor_rec *cur)
{
    struct rv_write_req req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.evs = c->n ? c->chunk : NULL;
    req.n = c->n;
    req.cur = cur;
    req.nc = cur ? 1 : 0;
    req.res = c->n ? c->res : NULL;
    do {
        if (stopping(c->f)) {
            rc = RV_EAGAIN;
            rv_err_set(&c->err, rc, "feed: stopped");
            goto out;
        }
        rc = rv_writer_submit_wait(c->f->w, &req, FEEDS_SUBMIT_SLICE_MS);
    } while (rc == RV_ETIMEDOUT);
    if (rc != RV_OK) {
        rv_err_set(&c->err, rc, "store: %s", req.err.msg[0] ? req.err.msg : rv_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->res[i].outcome == RV_OUT_DUPLICATE)
            c->dup++;
        else
            c->accepted++;
    }
out:
    chunk_release(c);
    return rc;
}

static int sink_emit(void *arg, struct rv_event *ev)
{
    struct sink_ctx *c = arg;

    if (c->n == RV_FEEDS_CHUNK) {
        int rc = chunk_write(c, NULL);
        if (rc != RV_OK) {
            c->rc = rc;
            rv_event_release(ev);
            return 1;
        }
    }
    if (stopping(c->f)) {
        c->rc = RV_EAGAIN;
        rv_err_set(&c->err, RV_EAGAIN, "feed: stopped");
        rv_event_release(ev);
        return 1;
    }
    c->chunk[c->n] = *ev; /* moves the owned strings */
    rv_event_init(ev);
    /* the feed's name is the source, whatever the parser did */
    snprintf(c->chunk[c->n].source, sizeof(c->chunk[c->n].source), "%s", c->fd->cfg.name);
    c->n++;
    return 0;
}

/* The sort collects without emitting: the stop flag is read here too. */
static int sink_stop(void *arg)
{
    struct sink_ctx *c = arg;

    if (!stopping(c->f))
        return 0;
    c->rc = RV_EAGAIN;
    rv_err_set(&c->err, RV_EAGAIN, "feed: stopped");
    return 1;
}

static void sink_sort_run(void *arg, size_t n)
{
    struct sink_ctx *c = arg;

    (void)n;
    c->sort_runs++;
}

static void sink_reject(void *arg, size_t record, const char *msg)
{
    struct sink_ctx *c = arg;

    c->rejected++;
    if (c->logged < RV_FEEDS_LOG_REJECTS) {
        c->logged++;
        rv_log_warn(FEEDS_MOD, "rejected feed=%s record=%zu reason=\"%s\"", c->fd->cfg.name,
                    record, msg ? msg : "");
    }
}

/* Counts one more time that the payload of cursor text CT had a JSON tree
 * too big for memory: the count of such times in a row (another payload
 * starts again at 1). */
static unsigned nomem_again(struct feed *fd, const char *ct)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)ct; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    if (fd->nomem_key != h) {
        fd->nomem_key = h;
        fd->nomem_tries = 0;
    }
    return ++fd->nomem_tries;
}

/* Parses BUF and writes its events with the cursor CUR_TEXT in the last
 * request. WHAT names the payload in logs. Returns RV_OK, RV_EINVAL (not
 * of the format: cursor written anyway), or a write error (ERR). */
static int process_payload(struct rv_feeds *f, struct feed *fd, const char *buf, size_t len,
                           const char *cur_text, const char *what, struct rv_errbuf *err)
{
    struct sink_ctx c;
    struct rv_feed_sink sink;
    struct rv_cursor_rec cur = {fd->cursor_name, cur_text, strlen(cur_text)};
    struct rv_errbuf perr;
    uint64_t t0 = rv_mono_ns();
    bool tree_oom = false;
    int rc, prc;

    memset(&c, 0, sizeof(c));
    c.f = f;
    c.fd = fd;
    c.chunk = calloc(RV_FEEDS_CHUNK, sizeof(*c.chunk));
    c.res = calloc(RV_FEEDS_CHUNK, sizeof(*c.res));
    if (!c.chunk || !c.res) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
        goto out;
    }
    sink.source = fd->cfg.name;
    sink.emit = sink_emit;
    sink.reject = sink_reject;
    sink.arg = &c;
    sink.stop = sink_stop;
    sink.sort_max = (size_t)fd->cfg.sort_max_events;
    sink.sort_run = sink_sort_run;
    rv_err_clear(&perr);
    (void)rv_feed_json_take_oom();
    prc = fd->parse(buf, len, &sink, &perr);
    tree_oom = prc == RV_ENOMEM && rv_feed_json_take_oom();
    if (c.sort_runs > 0 && c.rc != RV_EAGAIN) {
        /* more events than the sort may hold (or memory ran short): the
         * payload went out in time-ordered runs, not in time order */
        rv_log_warn(FEEDS_MOD,
                    "unsorted feed=%s payload=\"%s\" sort_max_events=%" PRIu64
                    " runs=%zu reason=\"more events than the sort holds: written in "
                    "time-ordered runs, events behind the watermark are late\"",
                    fd->cfg.name, what, fd->cfg.sort_max_events, c.sort_runs + 1);
        rv_metric_add(fd->m_sortov, 1);
        stats_add(f, fd, &fd->stats.sort_overflows, 1);
    }
    if (c.rc != RV_OK) {
        /* a write failed or we are stopping: no cursor, the payload is
         * read again next time and dedup drops what was written */
        chunk_release(&c);
        rc = rv_err_set(err, c.rc, "%s", c.err.msg);
        goto out;
    }
    if (prc == RV_ENOMEM && tree_oom && nomem_again(fd, cur_text) >= RV_FEEDS_NOMEM_TRIES) {
        /* this payload's JSON tree did not fit, RV_FEEDS_NOMEM_TRIES times
         * in a row: it would fill the memory at every try and (in a
         * directory) hold back every later file. Stepped over like a file
         * too big: cursor written (no events were: the tree comes first),
         * logged, counted; read again when it changes. */
        char reason[RV_ERRBUF_SIZE];
        snprintf(reason, sizeof(reason), "%.*s (%u tries)", (int)sizeof(reason) - 24, perr.msg,
                 fd->nomem_tries);
        fd->nomem_tries = 0;
        rc = chunk_write(&c, &cur);
        if (rc != RV_OK) {
            rv_err_set(err, rc, "%s", c.err.msg);
            goto out;
        }
        note_skip(f, fd, what, reason);
        rc = RV_OK;
        goto out;
    }
    if (prc == RV_ENOMEM) {
        /* not the payload's fault (the sort is bounded and makes shorter
         * runs when memory runs short; this is a parser's own allocation,
         * the sort's first block or a JSON tree that did not fit this
         * time): no cursor, the payload is read again after the backoff */
        chunk_release(&c);
        rc = rv_err_set(err, RV_ENOMEM, "%s", perr.msg);
        goto out;
    }
    fd->nomem_tries = 0;
    if (prc != RV_OK && c.n == 0 && c.accepted + c.dup == 0) {
        /* not of the format at all: record the cursor so the same payload
         * is not re-read and re-logged every interval */
        rv_log_warn(FEEDS_MOD, "invalid feed=%s payload=\"%s\" bytes=%zu reason=\"%s\"",
                    fd->cfg.name, what, len, perr.msg);
        rc = chunk_write(&c, &cur);
        if (rc != RV_OK) {
            rv_err_set(err, rc, "%s", c.err.msg);
            goto out;
        }
        stats_add(f, fd, &fd->stats.invalid, 1);
        rv_metric_add(fd->m_inv, 1);
        rc = rv_err_set(err, RV_EINVAL, "%s", perr.msg);
        goto out;
    }
    rc = chunk_write(&c, &cur);
    if (rc != RV_OK) {
        rv_err_set(err, rc, "%s", c.err.msg);
        goto out;
    }
    if (prc != RV_OK)
        rv_log_warn(FEEDS_MOD, "partial feed=%s payload=\"%s\" reason=\"%s\"", fd->cfg.name, what,
                    perr.msg);
    if (c.rejected > c.logged)
        rv_log_warn(FEEDS_MOD, "rejected feed=%s more=%zu (not logged)", fd->cfg.name,
                    c.rejected - c.logged);
    rv_log_info(FEEDS_MOD,
                "payload feed=%s payload=\"%s\" bytes=%zu accepted=%" PRIu64
                " duplicates=%" PRIu64 " rejected=%zu ms=%" PRIu64,
                fd->cfg.name, what, len, c.accepted, c.dup, c.rejected,
                (rv_mono_ns() - t0) / 1000000u);
    pthread_mutex_lock(&f->mu);
    fd->stats.payloads++;
    fd->stats.accepted += c.accepted;
    fd->stats.duplicates += c.dup;
    fd->stats.rejected += c.rejected;
    pthread_mutex_unlock(&f->mu);
    rv_metric_add(fd->m_ok, 1);
    rc = RV_OK;
out:
    /* records are counted even when the payload failed half-way */
    rv_metric_add(fd->m_acc, c.accepted);
    rv_metric_add(fd->m_dup, c.dup);
    rv_metric_add(fd->m_rej, c.rejected);
    if (c.chunk)
        chunk_release(&c);
    free(c.chunk);
    free(c.res);
    return rc;
}

/* Writes only the cursor (nothing else changed). */
static int write_cursor_only(struct rv_feeds *f, struct feed *fd, const char *cur_text,
                             struct rv_errbuf *err)
{
    struct sink_ctx c;
    struct rv_cursor_rec cur = {fd->cursor_name, cur_text, strlen(cur_text)};
    int rc;

    memset(&c, 0, sizeof(c));
    c.f = f;
    c.fd = fd;
    rc = chunk_write(&c, &cur);
    if (rc != RV_OK)
        rv_err_set(err, rc, "%s", c.err.msg);
    return rc;
}

/* ================================================================= files */

static int64_t mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

/* One file as one payload. */
static int poll_file(struct rv_feeds *f, struct feed *fd, const struct stat *sb,
                     struct rv_errbuf *err)
{
    struct feed_cursor nc;
    char *buf = NULL, *ct = NULL;
    size_t len;
    int rc;

    if (fd->cur.valid && strcmp(fd->cur.path, fd->path) == 0 && fd->cur.file[0] == '\0' &&
        fd->cur.size == (uint64_t)sb->st_size && fd->cur.mtime_ns == mtime_ns(sb)) {
        stats_add(f, fd, &fd->stats.unchanged, 1);
        rv_metric_add(fd->m_unch, 1);
        return RV_OK;
    }
    rc = read_whole(fd->path, fd->cfg.max_bytes, &buf, &len, NULL, err);
    if (rc == RV_ETOOBIG) {
        /* not a failure to retry soon: logged and counted every interval
         * until it is cut down (or max_bytes raised) */
        note_skip(f, fd, fd->path, err->msg);
        rv_err_clear(err);
        return RV_OK;
    }
    if (rc != RV_OK)
        return rc;
    memset(&nc, 0, sizeof(nc));
    nc.valid = true;
    snprintf(nc.path, sizeof(nc.path), "%s", fd->path);
    nc.size = (uint64_t)sb->st_size;
    nc.mtime_ns = mtime_ns(sb);
    sha256_hex(buf, len, nc.sha);
    ct = cursor_text(&nc, false, false);
    if (!ct) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
        goto out;
    }
    if (fd->cur.valid && strcmp(fd->cur.path, fd->path) == 0 && nc.sha[0] &&
        strcmp(fd->cur.sha, nc.sha) == 0) {
        /* touched, same content: remember the new mtime only */
        rc = write_cursor_only(f, fd, ct, err);
        if (rc == RV_OK) {
            fd->cur = nc;
            stats_add(f, fd, &fd->stats.unchanged, 1);
            rv_metric_add(fd->m_unch, 1);
        }
        goto out;
    }
    rc = process_payload(f, fd, buf, len, ct, fd->path, err);
    if (rc == RV_OK || rc == RV_EINVAL) {
        fd->cur = nc;
        rc = RV_OK;
    }
out:
    free(ct);
    free(buf);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of the directory after the cursor, in name order. */
static int poll_dir(struct rv_feeds *f, struct feed *fd, struct rv_errbuf *err)
{
    DIR *d = opendir(fd->path);
    struct dirent *de;
    char **names = NULL, *path = NULL, *buf = NULL, *ct = NULL;
    size_t n = 0, cap = 0, done = 0, plen = strlen(fd->path) + 300;
    bool same_dir = fd->cur.valid && strcmp(fd->cur.path, fd->path) == 0;
    char reason[RV_ERRBUF_SIZE];
    int rc = RV_OK;

    if (!d)
        return rv_err_set(err, RV_EIO, "dir: cannot open '%s': %s", fd->path, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(fd->cur.file))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap ? cap * 2 : 64) * sizeof(*nn));
            if (!nn) {
                rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
                goto out;
            }
            names = nn;
            cap = cap ? cap * 2 : 64;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    path = malloc(plen);
    if (!path) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !stopping(f); i++) {
        struct stat sb;
        struct feed_cursor nc;
        size_t len = 0;
        bool perm = false;
        int c = same_dir && fd->cur.file[0] ? strcmp(names[i], fd->cur.file) : 1;

        snprintf(path, plen, "%s/%s", fd->path, names[i]);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (c < 0)
            continue;
        if (c == 0 && fd->cur.size == (uint64_t)sb.st_size && fd->cur.mtime_ns == mtime_ns(&sb))
            continue;
        rc = read_whole(path, fd->cfg.max_bytes, &buf, &len, &perm, err);
        if (rc != RV_OK && !perm)
            goto out; /* may pass: this file again next time */
        memset(&nc, 0, sizeof(nc));
        nc.valid = true;
        snprintf(nc.path, sizeof(nc.path), "%s", fd->path);
        snprintf(nc.file, sizeof(nc.file), "%s", names[i]);
        nc.size = (uint64_t)sb.st_size;
        nc.mtime_ns = mtime_ns(&sb);
        nc.skipped = rc != RV_OK;
        if (nc.skipped)
            snprintf(reason, sizeof(reason), "%s", err->msg);
        ct = cursor_text(&nc, false, true);
        if (!ct) {
            rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
            goto out;
        }
        if (nc.skipped) {
            /* too big, gone or unreadable: step over it, or it blocks every
             * later file; it is read again only if it changes while it is
             * still the cursor's file */
            rc = write_cursor_only(f, fd, ct, err);
            if (rc == RV_OK) {
                note_skip(f, fd, names[i], reason);
                rv_err_clear(err);
            }
        } else {
            rc = process_payload(f, fd, buf, len, ct, names[i], err);
        }
        free(ct);
        ct = NULL;
        free(buf);
        buf = NULL;
        if (rc != RV_OK && rc != RV_EINVAL)
            goto out;
        rc = RV_OK;
        fd->cur = nc;
        same_dir = true;
        done++;
    }
    if (!done && !stopping(f)) {
        stats_add(f, fd, &fd->stats.unchanged, 1);
        rv_metric_add(fd->m_unch, 1);
    }
out:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(path);
    free(buf);
    free(ct);
    return rc;
}

static int poll_local(struct rv_feeds *f, struct feed *fd, struct rv_errbuf *err)
{
    struct stat sb;

    if (stat(fd->path, &sb) != 0)
        return rv_err_set(err, errno == ENOENT ? RV_ENOTFOUND : RV_EIO,
                          "file: cannot stat '%s': %s", fd->path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return poll_dir(f, fd, err);
    if (!S_ISREG(sb.st_mode))
        return rv_err_set(err, RV_EIO, "file: '%s' is neither a file nor a directory", fd->path);
    return poll_file(f, fd, &sb, err);
}

/* ================================================================== http */

struct http_ctx {
    struct rv_feeds *f;
    char *body;
    size_t len, cap;
    uint64_t max;
    bool toobig;
    char etag[FEEDS_HDR_MAX];
    char lastmod[FEEDS_HDR_MAX];
};

static size_t http_write(char *p, size_t sz, size_t nm, void *arg)
{
    struct http_ctx *h = arg;
    size_t n = sz * nm;

    if (h->len + n > h->max) {
        h->toobig = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (h->len + n + 1 > h->cap) {
        size_t nc = h->cap ? h->cap : 65536;
        char *nb;
        while (nc < h->len + n + 1)
            nc *= 2;
        nb = realloc(h->body, nc);
        if (!nb)
            return 0;
        h->body = nb;
        h->cap = nc;
    }
    memcpy(h->body + h->len, p, n);
    h->len += n;
    h->body[h->len] = '\0';
    return n;
}

/* Keeps ETag and Last-Modified of the final response (reset at every
 * status line, so a redirect's headers do not stick). */
static size_t http_header(char *p, size_t sz, size_t nm, void *arg)
{
    struct http_ctx *h = arg;
    size_t n = sz * nm, k;
    char *dst = NULL;
    const char *v;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        h->etag[0] = h->lastmod[0] = '\0';
        return n;
    }
    if (n > 5 && strncasecmp(p, "etag:", 5) == 0) {
        dst = h->etag;
        k = 5;
    } else if (n > 14 && strncasecmp(p, "last-modified:", 14) == 0) {
        dst = h->lastmod;
        k = 14;
    } else {
        return n;
    }
    v = p + k;
    while (v < p + n && (*v == ' ' || *v == '\t'))
        v++;
    k = (size_t)(p + n - v);
    while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' ' || v[k - 1] == '\t'))
        k--;
    if (k < FEEDS_HDR_MAX) {
        memcpy(dst, v, k);
        dst[k] = '\0';
    }
    return n;
}

static int http_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct http_ctx *h = arg;

    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stopping(h->f) ? 1 : 0;
}

static int poll_http(struct rv_feeds *f, struct feed *fd, struct rv_errbuf *err)
{
    struct http_ctx h;
    struct curl_slist *hdrs = NULL;
    char ebuf[CURL_ERROR_SIZE], line[FEEDS_HDR_MAX + 32];
    struct feed_cursor nc;
    CURL *c = NULL;
    CURLcode cc;
    long status = 0;
    bool same = fd->cur.valid && strcmp(fd->cur.path, fd->url_sha) == 0;
    char *ct = NULL;
    int rc;

    memset(&h, 0, sizeof(h));
    h.f = f;
    h.max = fd->cfg.max_bytes;
    ebuf[0] = '\0';
    c = curl_easy_init();
    if (!c)
        return rv_err_set(err, RV_ENOMEM, "http: cannot create a curl handle");
    if (same && fd->cur.etag[0]) {
        snprintf(line, sizeof(line), "If-None-Match: %s", fd->cur.etag);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (same && fd->cur.lastmod[0]) {
        struct curl_slist *t;
        snprintf(line, sizeof(line), "If-Modified-Since: %s", fd->cur.lastmod);
        t = curl_slist_append(hdrs, line);
        if (t)
            hdrs = t;
    }
    curl_easy_setopt(c, CURLOPT_URL, fd->cfg.url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)fd->cfg.max_redirects);
    curl_easy_setopt(c, CURLOPT_USERAGENT, FEEDS_USER_AGENT);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)fd->cfg.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)fd->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)fd->cfg.stall_s);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)fd->cfg.max_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        if (stopping(f))
            rc = rv_err_set(err, RV_EAGAIN, "http: stopped");
        else if (h.toobig || cc == CURLE_FILESIZE_EXCEEDED)
            rc = rv_err_set(err, RV_ETOOBIG, "http: body larger than max_bytes %" PRIu64,
                            fd->cfg.max_bytes);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = rv_err_set(err, RV_ETIMEDOUT, "http: %s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
        else
            rc = rv_err_set(err, RV_EIO, "http: %s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
        goto out;
    }
    if (status == 304) {
        if (fd->cur.legacy_url) {
            /* rewrite an older cursor without the url */
            ct = cursor_text(&fd->cur, true, false);
            rc = ct ? write_cursor_only(f, fd, ct, err)
                    : rv_err_set(err, RV_ENOMEM, "feed: out of memory");
            if (rc != RV_OK)
                goto out;
            fd->cur.legacy_url = false;
        }
        stats_add(f, fd, &fd->stats.not_modified, 1);
        rv_metric_add(fd->m_304, 1);
        rc = RV_OK;
        goto out;
    }
    if (status < 200 || status > 299) {
        rc = rv_err_set(err, RV_EIO, "http: status %ld", status);
        goto out;
    }
    memset(&nc, 0, sizeof(nc));
    nc.valid = true;
    snprintf(nc.path, sizeof(nc.path), "%s", fd->url_sha);
    snprintf(nc.etag, sizeof(nc.etag), "%s", h.etag);
    snprintf(nc.lastmod, sizeof(nc.lastmod), "%s", h.lastmod);
    sha256_hex(h.body ? h.body : "", h.len, nc.sha);
    ct = cursor_text(&nc, true, false);
    if (!ct) {
        rc = rv_err_set(err, RV_ENOMEM, "feed: out of memory");
        goto out;
    }
    if (same && nc.sha[0] && strcmp(nc.sha, fd->cur.sha) == 0) {
        /* same body: keep the new validators, write no events */
        if (strcmp(nc.etag, fd->cur.etag) != 0 || strcmp(nc.lastmod, fd->cur.lastmod) != 0 ||
            fd->cur.legacy_url) {
            rc = write_cursor_only(f, fd, ct, err);
            if (rc != RV_OK)
                goto out;
            fd->cur = nc;
        }
        stats_add(f, fd, &fd->stats.unchanged, 1);
        rv_metric_add(fd->m_unch, 1);
        rc = RV_OK;
        goto out;
    }
    {
        char what[256];
        url_for_log(fd->cfg.url, what, sizeof(what));
        rc = process_payload(f, fd, h.body ? h.body : "", h.len, ct, what, err);
    }
    if (rc == RV_OK || rc == RV_EINVAL) {
        fd->cur = nc;
        rc = RV_OK;
    }
out:
    free(ct);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(h.body);
    return rc;
}

/* ================================================================ worker */

/* Next delay after the FAILS-th failure in a row, ms: backoff_min_s
 * doubling up to backoff_max_s, capped by the interval, with "equal
 * jitter" (half fixed, half random) so feeds do not retry in lockstep;
 * the jittered delay is never under 1 s. */
uint64_t rv_feeds_backoff_ms(const struct rv_feed_cfg *c, unsigned fails, unsigned *seed)
{
    uint64_t d = (uint64_t)c->backoff_min_s * 1000, cap = (uint64_t)c->backoff_max_s * 1000, lo;

    if (cap > (uint64_t)c->interval_s * 1000)
        cap = (uint64_t)c->interval_s * 1000;
    for (unsigned i = 1; i < fails && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (d <= 1000)
        return 1000; /* never a hot loop on a failing feed */
    lo = d / 2 < 1000 ? 1000 : d / 2;
    return lo + (uint64_t)rand_r(seed) % (d - lo + 1);
}

static void poll_one(struct rv_feeds *f, struct feed *fd)
{
    struct rv_errbuf err;
    uint64_t next;
    int rc;

    rv_err_clear(&err);
    rc = fd->kind == FEED_HTTP ? poll_http(f, fd, &err) : poll_local(f, fd, &err);
    if (stopping(f) && rc != RV_OK)
        return; /* interrupted: not a failure of the feed */
    if (rc == RV_OK) {
        if (fd->fails)
            rv_log_info(FEEDS_MOD, "recovered feed=%s after_failures=%u", fd->cfg.name, fd->fails);
        fd->fails = 0;
        next = mono_ms() + (uint64_t)fd->cfg.interval_s * 1000;
    } else {
        char u[256];
        fd->fails++;
        next = rv_feeds_backoff_ms(&fd->cfg, fd->fails, &f->rnd);
        url_for_log(fd->cfg.url, u, sizeof(u));
        rv_log_warn(FEEDS_MOD,
                    "fetch failed feed=%s url=\"%s\" error=\"%s\" code=\"%s\" failures=%u retry_s=%.1f",
                    fd->cfg.name, u, err.msg, rv_strerror(rc), fd->fails, (double)next / 1000.0);
        rv_metric_add(fd->m_err, 1);
        next += mono_ms();
    }
    pthread_mutex_lock(&f->mu);
    fd->stats.polls++;
    if (rc != RV_OK) {
        fd->stats.errors++;
        snprintf(fd->stats.last_error, sizeof(fd->stats.last_error), "%s", err.msg);
    } else {
        fd->stats.last_error[0] = '\0';
    }
    fd->stats.consecutive_failures = fd->fails;
    /* a poll_now during the poll wins */
    if (fd->due_ms != 0)
        fd->due_ms = next;
    pthread_mutex_unlock(&f->mu);
}

static void *feeds_main(void *arg)
{
    struct rv_feeds *f = arg;

    while (!stopping(f)) {
        uint64_t now = mono_ms(), wake = UINT64_MAX;

        for (size_t i = 0; i < f->n && !stopping(f); i++) {
            struct feed *fd = &f->feeds[i];
            bool due;
            pthread_mutex_lock(&f->mu);
            due = fd->due_ms <= now;
            if (due)
                fd->due_ms = 1; /* "polling"; poll_now sets 0 */
            pthread_mutex_unlock(&f->mu);
            if (due)
                poll_one(f, fd);
        }
        pthread_mutex_lock(&f->mu);
        for (size_t i = 0; i < f->n; i++) {
            if (f->feeds[i].due_ms == 0)
                f->feeds[i].due_ms = 1;
            if (f->feeds[i].due_ms < wake)
                wake = f->feeds[i].due_ms;
        }
        now = mono_ms();
        while (!atomic_load(&f->stop) && !f->poke && wake > now) {
            struct timespec ts;
            uint64_t ms = wake - now;
            if (ms > 60000)
                ms = 60000;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(ms / 1000);
            ts.tv_nsec += (long)(ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            now = mono_ms();
        }
        f->poke = false;
        pthread_mutex_unlock(&f->mu);
    }
    return NULL;
}

/* ============================================================ lifecycle */

static void feed_metrics(struct feed *fd, struct rv_metrics *m)
{
    char l[160];
    const char *rh = "Feed records by outcome";
    const char *fh = "Feed polls by outcome";

#define FEED_LBL(o) (snprintf(l, sizeof(l), "feed=\"%s\",outcome=\"%s\"", fd->cfg.name, o), l)
    fd->m_acc = rv_metrics_counter(m, "rv_feed_records_total", FEED_LBL("accepted"), rh);
    fd->m_dup = rv_metrics_counter(m, "rv_feed_records_total", FEED_LBL("duplicate"), rh);
    fd->m_rej = rv_metrics_counter(m, "rv_feed_records_total", FEED_LBL("rejected"), rh);
    fd->m_ok = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("ok"), fh);
    fd->m_unch = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("unchanged"), fh);
    fd->m_304 = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("not_modified"), fh);
    fd->m_inv = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("invalid"), fh);
    fd->m_err = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("error"), fh);
    fd->m_skip = rv_metrics_counter(m, "rv_feed_fetches_total", FEED_LBL("skipped"), fh);
    snprintf(l, sizeof(l), "feed=\"%s\"", fd->cfg.name);
    fd->m_sortov = rv_metrics_counter(m, "rv_feed_sort_overflows_total", l,
                                      "Feed payloads with more events than sort_max_events, "
                                      "written in time-ordered runs");
#undef FEED_LBL
}

static void feeds_free(struct rv_feeds *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->feeds[i].cfg.name);
        free(f->feeds[i].cfg.format);
        free(f->feeds[i].cfg.url);
        free(f->feeds[i].path);
    }
    free(f->feeds);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int rv_feeds_start(struct rv_store *st, struct rv_writer *w, const struct rv_feed_cfg *feeds,
                   size_t n, struct rv_metrics *m, struct rv_feeds **out, struct rv_errbuf *err)
{
    struct rv_feeds *f = NULL;
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    rv_err_clear(err);
    if (!st || !w || (n && !feeds))
        return rv_err_set(err, RV_EINVAL, "feeds: missing store or writer");
    f = calloc(1, sizeof(*f));
    if (!f)
        return rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&f->stop, false);
    f->st = st;
    f->w = w;
    f->rnd = (unsigned)(rv_mono_ns() ^ (uint64_t)getpid());
    f->feeds = calloc(n ? n : 1, sizeof(*f->feeds));
    if (!f->feeds) {
        rc = rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct feed *fd = &f->feeds[i];
        const char *p = NULL;
        char cbuf[FEEDS_CURSOR_MAX];
        size_t clen = 0;

        fd->cfg = feeds[i];
        fd->cfg.name = fd->cfg.format = fd->cfg.url = NULL;
        f->n = i + 1;
        if (!feeds[i].name || !name_ok(feeds[i].name) || !feeds[i].url) {
            rc = rv_err_set(err, RV_EINVAL, "feeds[%zu]: missing or bad name or url", i);
            goto fail;
        }
        /* a payload's events reach the store in event-time order (ndjson:
         * in its own order; sort_max_events 0: every format in its own
         * order), as rvctl backtest loads them */
        fd->parse = feeds[i].sort_max_events ? rv_feed_parser_sorted(feeds[i].format)
                                             : rv_feed_parser(feeds[i].format);
        if (!fd->parse) {
            rc = rv_err_set(err, RV_EINVAL, "feeds[%zu].format: unknown", i);
            goto fail;
        }
        fd->cfg.name = strdup(feeds[i].name);
        fd->cfg.format = strdup(feeds[i].format);
        fd->cfg.url = strdup(feeds[i].url);
        if (!fd->cfg.name || !fd->cfg.format || !fd->cfg.url) {
            rc = rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
            goto fail;
        }
        if (url_local_path(fd->cfg.url, &p) != RV_OK) {
            rc = rv_err_set(err, RV_EINVAL, "feeds[%zu].url: bad url", i);
            goto fail;
        }
        if (p) {
            fd->path = strdup(p);
            if (!fd->path) {
                rc = rv_err_set(err, RV_ENOMEM, "feeds: out of memory");
                goto fail;
            }
            fd->kind = FEED_DIR_OR_FILE;
        } else {
            fd->kind = FEED_HTTP;
            sha256_hex(fd->cfg.url, strlen(fd->cfg.url), fd->url_sha);
        }
        if (fd->cfg.interval_s == 0)
            fd->cfg.interval_s = 900;
        snprintf(fd->cursor_name, sizeof(fd->cursor_name), "feed:%s", fd->cfg.name);
        rc = rv_store_get_cursor(st, fd->cursor_name, cbuf, sizeof(cbuf), &clen);
        if (rc == RV_OK)
            cursor_parse(cbuf, clen, &fd->cur);
        else if (rc != RV_ENOTFOUND)
            rv_log_warn(FEEDS_MOD, "cursor unreadable feed=%s code=%s: starting over",
                        fd->cfg.name, rv_strerror(rc));
        fd->due_ms = 1; /* due at once */
        feed_metrics(fd, m);
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->feeds[j].cfg.name, fd->cfg.name) == 0) {
                rc = rv_err_set(err, RV_EINVAL, "feeds[%zu].name: '%s' is used twice", i,
                                fd->cfg.name);
                goto fail;
            }
    }
    f->n = n;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = rv_err_set(err, RV_EIO, "feeds: curl_global_init failed");
        goto fail;
    }
    if (pthread_create(&f->th, NULL, feeds_main, f) != 0) {
        curl_global_cleanup();
        rc = rv_err_set(err, RV_EIO, "feeds: cannot start the worker thread");
        goto fail;
    }
    f->started = true;
    rv_log_info(FEEDS_MOD, "started feeds=%zu", n);
    *out = f;
    return RV_OK;
fail:
    feeds_free(f);
    return rc;
}

void rv_feeds_poll_now(struct rv_feeds *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n; i++)
        f->feeds[i].due_ms = 0;
    f->poke = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void rv_feeds_stop(struct rv_feeds **fp)
{
    struct rv_feeds *f;

    if (!fp || !*fp)
        return;
    f = *fp;
    *fp = NULL;
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->stop, true);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->started) {
        pthread_join(f->th, NULL);
        curl_global_cleanup();
    }
    feeds_free(f);
}

int rv_feeds_stats(struct rv_feeds *f, const char *name, struct rv_feed_stats *out)
{
    if (!f || !name)
        return RV_EINVAL;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->feeds[i].cfg.name, name) == 0) {
            pthread_mutex_lock(&f->mu);
            *out = f->feeds[i].stats;
            pthread_mutex_unlock(&f->mu);
            return RV_OK;
        }
    return RV_ENOTFOUND;
}

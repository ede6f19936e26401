/*
 * ws_auth: bearer tokens. A token is 32 random bytes (OpenSSL RAND_bytes)
 * shown once as base64url; the store keeps only its SHA-256, as the meta
 * key "tok:<64 hex>" -> {"role","name","created"}. Lookups scan every
 * token and compare hashes with CRYPTO_memcmp, so neither the token nor
 * its hash leaks through timing; tokens are few (tens).
 * Also `rvctl token create|list|revoke` (rv_token_main).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "rv/store.h"
#include "rv/timeutil.h"

#include "ws_int.h"

#define TOK_PREFIX "tok:"

const char *ws_role_name(int role)
{
    switch (role) {
    case WS_ROLE_VIEWER:
        return "viewer";
    case WS_ROLE_ANALYST:
        return "analyst";
    case WS_ROLE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

static int role_from_name(const char *s)
{
    if (!s)
        return WS_ROLE_NONE;
    if (strcmp(s, "viewer") == 0)
        return WS_ROLE_VIEWER;
    if (strcmp(s, "analyst") == 0)
        return WS_ROLE_ANALYST;
    if (strcmp(s, "admin") == 0)
        return WS_ROLE_ADMIN;
    return WS_ROLE_NONE;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool hex_decode32(const char *hex, unsigned char out[32])
{
    for (int i = 0; i < 32; i++) {
        int a = hexval((unsigned char)hex[2 * i]), b = hexval((unsigned char)hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return false;
        out[i] = (unsigned char)(a << 4 | b);
    }
    return hex[64] == 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[in[i] >> 4];
        out[2 * i + 1] = h[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int role_of_value(const void *val, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(val, len);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "role");
    int role = cJSON_IsString(r) ? role_from_name(r->valuestring) : WS_ROLE_NONE;
    cJSON_Delete(o);
    return role;
}

struct scan {
    unsigned char hash[32];
    bool want;  /* compare against hash */
    bool any;   /* at least one token */
    int role;   /* of the matching token */
};

static int scan_cb(void *arg, const char *name, const void *val, size_t len)
{
    struct scan *sc = arg;
    unsigned char h[32];

    if (strncmp(name, TOK_PREFIX, 4) != 0 || !hex_decode32(name + 4, h))
        return 0;
    sc->any = true;
    if (!sc->want)
        return 1;
    if (CRYPTO_memcmp(h, sc->hash, 32) == 0)
        sc->role = role_of_value(val, len);
    return 0;
}

bool ws_auth_any(struct rv_store *st)
{
    struct scan sc = {.want = false};
    rv_store_read_meta_prefix(st, TOK_PREFIX, scan_cb, &sc);
    return sc.any;
}

int ws_auth_lookup(struct rv_store *st, const char *token)
{
    struct scan sc = {.want = true, .role = WS_ROLE_NONE};
    SHA256((const unsigned char *)token, strlen(token), sc.hash);
    rv_store_read_meta_prefix(st, TOK_PREFIX, scan_cb, &sc);
    OPENSSL_cleanse(sc.hash, sizeof(sc.hash));
    return sc.role;
}

void ws_auth_hash(const char *token, unsigned char hash[32])
{
    SHA256((const unsigned char *)token, strlen(token), hash);
}

int ws_auth_role_hash(struct rv_store *st, const unsigned char *hash, int open, bool *open_mode,
                      const char **why)
{
    struct scan sc = {.want = hash != NULL, .role = WS_ROLE_NONE};

    if (open_mode)
        *open_mode = false;
    if (hash)
        memcpy(sc.hash, hash, 32);
    rv_store_read_meta_prefix(st, TOK_PREFIX, scan_cb, &sc);
    OPENSSL_cleanse(sc.hash, sizeof(sc.hash));
    if (!sc.any) {
        /* open mode: no token configured; loopback bind and Host only */
        if (open == WS_OPEN_OK) {
            if (open_mode)
                *open_mode = true;
            return WS_ROLE_ADMIN;
        }
        *why = open == WS_OPEN_BAD_HOST
                   ? "host: only 127.0.0.1, [::1] or localhost are served without access tokens"
                   : "token: no access tokens are configured (create one with rvctl token "
                     "create)";
        return WS_ROLE_NONE;
    }
    if (!hash) {
        *why = "token: missing";
        return WS_ROLE_NONE;
    }
    if (sc.role == WS_ROLE_NONE)
        *why = "token: unknown or revoked";
    return sc.role;
}

int ws_auth_role(struct rv_store *st, const char *token, int open, bool *open_mode,
                 const char **why)
{
    unsigned char h[32];
    int role;

    if (!token)
        return ws_auth_role_hash(st, NULL, open, open_mode, why);
    ws_auth_hash(token, h);
    role = ws_auth_role_hash(st, h, open, open_mode, why);
    OPENSSL_cleanse(h, sizeof(h));
    return role;
}

static int set_cb(void *arg, const char *name, const void *val, size_t len)
{
    struct ws_tok_set *ts = arg;
    unsigned char h[32];

    if (strncmp(name, TOK_PREFIX, 4) != 0 || !hex_decode32(name + 4, h))
        return 0;
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        struct ws_tok_ent *p = realloc(ts->v, cap * sizeof(*p));
        if (!p) {
            ts->oom = true;
            return 1;
        }
        ts->v = p;
        ts->cap = cap;
    }
    memcpy(ts->v[ts->n].hash, h, 32);
    ts->v[ts->n].role = role_of_value(val, len);
    ts->n++;
    return 0;
}

void ws_auth_set_load(struct rv_store *st, struct ws_tok_set *ts)
{
    memset(ts, 0, sizeof(*ts));
    rv_store_read_meta_prefix(st, TOK_PREFIX, set_cb, ts);
}

int ws_auth_set_role(const struct ws_tok_set *ts, const unsigned char *hash)
{
    int role = WS_ROLE_NONE;

    for (size_t i = 0; i < ts->n; i++)
        if (CRYPTO_memcmp(ts->v[i].hash, hash, 32) == 0)
            role = ts->v[i].role;
    return role;
}

void ws_auth_set_free(struct ws_tok_set *ts)
{
    if (ts->v)
        OPENSSL_cleanse(ts->v, ts->cap * sizeof(*ts->v));
    free(ts->v);
    memset(ts, 0, sizeof(*ts));
}

/* ------------------------------------------------------------ rvctl token */

static const char usage[] =
    "usage: rvctl token create --data DIR --role viewer|analyst|admin [--name NAME]\n"
    "       rvctl token list --data DIR\n"
    "       rvctl token revoke --data DIR ID|NAME\n"
    "\n"
    "create  print a new bearer token once; only its SHA-256 is kept in DIR\n"
    "list    one line per token: ID ROLE NAME CREATED (ID is a hash prefix)\n"
    "revoke  delete the token whose ID starts with ID (8 hex or more) or named NAME\n"
    "\n"
    "Roles: viewer sees aggregates and alerts, analyst also events and attrs,\n"
    "admin everything. Exit: 0 ok, 1 no such token, 2 bad usage or no store.\n";

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = t[v >> 6 & 63];
        out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = t[v >> 6 & 63];
    }
    out[o] = 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '@'))
            return false;
    }
    return true;
}

struct tok_ent {
    char hex[65];
    char role[16];
    char name[65];
    char created[32];
};

struct tok_list {
    struct tok_ent *v;
    size_t n, cap;
};

static int list_cb(void *arg, const char *name, const void *val, size_t len)
{
    struct tok_list *l = arg;
    unsigned char h[32];

    if (strncmp(name, TOK_PREFIX, 4) != 0 || !hex_decode32(name + 4, h))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct tok_ent *p = realloc(l->v, cap * sizeof(*p));
        if (!p)
            return 1;
        l->v = p;
        l->cap = cap;
    }
    struct tok_ent *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->hex, name + 4, 65);
    cJSON *o = cJSON_ParseWithLength(val, len);
    const cJSON *j;
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "role")) && cJSON_IsString(j))
        snprintf(e->role, sizeof(e->role), "%s", j->valuestring);
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "name")) && cJSON_IsString(j))
        snprintf(e->name, sizeof(e->name), "%s", j->valuestring);
    if ((j = cJSON_GetObjectItemCaseSensitive(o, "created")) && cJSON_IsString(j))
        snprintf(e->created, sizeof(e->created), "%s", j->valuestring);
    cJSON_Delete(o);
    return 0;
}

int rv_token_main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL, *data = NULL, *role = NULL, *name = NULL,
               *id = NULL;
    struct rv_store *st = NULL;
    struct rv_store_opts so;
    struct rv_errbuf err = {0};
    struct tok_list l = {0};
    int rc = 2;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    if (!cmd || (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "revoke"))) {
        fputs(usage, stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--data") == 0)
            dst = &data;
        else if (strcmp(argv[i], "--role") == 0)
            dst = &role;
        else if (strcmp(argv[i], "--name") == 0)
            dst = &name;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: missing value\n", argv[i]);
                return 2;
            }
            *dst = argv[++i];
        } else if (argv[i][0] != '-' && !id && strcmp(cmd, "revoke") == 0) {
            id = argv[i];
        } else {
            fprintf(stderr, "%.64s: unknown argument\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "--data: missing\n%s", usage);
        return 2;
    }
    if (strcmp(cmd, "create") == 0) {
        if (!role || role_from_name(role) == WS_ROLE_NONE) {
            fprintf(stderr, "--role: '%.32s' is not viewer, analyst or admin\n",
                    role ? role : "");
            return 2;
        }
        if (name && !name_ok(name)) {
            fprintf(stderr, "--name: '%.64s' must be 1-64 of [A-Za-z0-9._@-]\n", name);
            return 2;
        }
    } else if (role || name) {
        fprintf(stderr, "%s: not valid with %s\n", role ? "--role" : "--name", cmd);
        return 2;
    }
    if (strcmp(cmd, "revoke") == 0 && !id) {
        fprintf(stderr, "ID: missing\n%s", usage);
        return 2;
    }

    bool fresh;
    {
        /* a token for a server not started yet is made in a new store; a
         * mistyped DIR would make one nobody reads, so say so */
        char p[1100];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/data.mdb", data);
        fresh = stat(p, &sb) != 0 && errno == ENOENT; /* else rv_store_open says why */
        if (fresh && strcmp(cmd, "revoke") == 0) {
            fprintf(stderr, "data: no store at '%.200s'\n", data);
            return 2;
        }
    }
    rv_store_opts_default(&so);
    so.read_only = strcmp(cmd, "list") == 0;
    so.meta_only = !so.read_only; /* beside a running daemon: touch only meta */
    if (rv_store_open(data, &so, &st, &err)) {
        fprintf(stderr, "data: cannot open store '%.200s': %s\n", data, err.msg);
        return 2;
    }
    if (fresh && strcmp(cmd, "create") == 0)
        fprintf(stderr, "token: no store was in '%.200s': created a new one there\n", data);

    if (strcmp(cmd, "create") == 0) {
        unsigned char raw[32], hash[32];
        char tok[64], hex[65], key[80], ts[32];
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            fprintf(stderr, "token: no randomness available\n");
            goto out;
        }
        b64url(raw, sizeof(raw), tok);
        OPENSSL_cleanse(raw, sizeof(raw));
        SHA256((const unsigned char *)tok, strlen(tok), hash);
        hex_encode(hash, 32, hex);
        snprintf(key, sizeof(key), TOK_PREFIX "%s", hex);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddStringToObject(o, "name", name ? name : "");
        cJSON_AddStringToObject(o, "created", rv_time_format(rv_now_ms() / 1000 * 1000, ts, sizeof(ts)));
        char *val = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!val) {
            fprintf(stderr, "token: out of memory\n");
            goto out;
        }
        int mrc = rv_store_meta_put(st, key, val, strlen(val), &err);
        free(val);
        if (mrc) {
            fprintf(stderr, "token: cannot store: %s\n", err.msg);
            goto out;
        }
        printf("%s\n", tok);
        fflush(stdout);
        OPENSSL_cleanse(tok, sizeof(tok));
        fprintf(stderr, "created token id=%.16s role=%s name=%s (shown once: keep it)\n", hex,
                role, name ? name : "-");
        rc = 0;
        goto out;
    }

    rv_store_read_meta_prefix(st, TOK_PREFIX, list_cb, &l);
    if (strcmp(cmd, "list") == 0) {
        for (size_t i = 0; i < l.n; i++)
            printf("%.16s %s %s %s\n", l.v[i].hex, l.v[i].role[0] ? l.v[i].role : "-",
                   l.v[i].name[0] ? l.v[i].name : "-", l.v[i].created[0] ? l.v[i].created : "-");
        rc = 0;
        goto out;
    }

    /* revoke */
    size_t hits = 0, hit = 0, idl = strlen(id);
    bool hexid = idl >= 8 && idl <= 64;
    for (size_t i = 0; i < idl && hexid; i++)
        hexid = hexval((unsigned char)id[i]) >= 0;
    for (size_t i = 0; i < l.n; i++)
        if ((hexid && strncmp(l.v[i].hex, id, idl) == 0) || strcmp(l.v[i].name, id) == 0) {
            hits++;
            hit = i;
        }
    if (hits == 0) {
        fprintf(stderr, "token: no token '%.64s'\n", id);
        rc = 1;
        goto out;
    }
    if (hits > 1) {
        fprintf(stderr, "token: '%.64s' matches %zu tokens; give more of the id\n", id, hits);
        rc = 1;
        goto out;
    }
    char key[80];
    snprintf(key, sizeof(key), TOK_PREFIX "%s", l.v[hit].hex);
    if (rv_store_meta_put(st, key, NULL, 0, &err)) {
        fprintf(stderr, "token: cannot revoke: %s\n", err.msg);
        goto out;
    }
    printf("revoked %.16s %s %s\n", l.v[hit].hex, l.v[hit].role, l.v[hit].name[0] ? l.v[hit].name : "-");
    if (l.n == 1)
        fprintf(stderr, "token: that was the last token: a server listening beyond loopback now "
                        "refuses every request (401) until one is created; on loopback it is "
                        "open to local clients\n");
    rc = 0;
out:
    free(l.v);
    rv_store_close(&st);
    return rc;
}

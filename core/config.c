/*
 * config: the JSON config file with a default for every key. Top-level
 * scalar keys fill struct rv_config; object-valued keys are stage
 * sections read by the stages themselves.
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv/config.h"

void rv_config_init(struct rv_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->data_dir, sizeof(c->data_dir), "./rv-data");
    snprintf(c->http, sizeof(c->http), "127.0.0.1:8080");
    snprintf(c->ingest, sizeof(c->ingest), "tcp://127.0.0.1:7701");
    snprintf(c->web_root, sizeof(c->web_root), "%s", RV_WEB_ROOT);
    snprintf(c->role, sizeof(c->role), "all");
    snprintf(c->log_level, sizeof(c->log_level), "info");
}

void rv_config_release(struct rv_config *c)
{
    cJSON_Delete(c->root);
    c->root = NULL;
}

static const char *sections[] = {"store", "ingest", "writer", "aggregator", "ws", "feeds_opts", NULL};

static int read_file(const char *file, char **out, size_t *len, struct rv_errbuf *err)
{
    FILE *f = fopen(file, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (!f)
        return rv_err_set(err, errno == ENOENT ? RV_ENOTFOUND : RV_EIO, "config: cannot open '%s': %s",
                          file, strerror(errno));
    for (;;) {
        if (n + 4096 > cap) {
            char *nb;
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 24)) {
                free(buf);
                fclose(f);
                return rv_err_set(err, RV_ETOOBIG, "config: '%s' larger than 16 MiB", file);
            }
            nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return rv_err_set(err, RV_ENOMEM, "config: out of memory");
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return RV_OK;
}

int rv_config_load(struct rv_config *c, const char *file, struct rv_errbuf *err)
{
    char *text = NULL;
    size_t len = 0;
    const char *end = NULL;
    cJSON *root;
    int rc;

    if ((rc = read_file(file, &text, &len, err)))
        return rc;
    root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        rc = rv_err_set(err, RV_EINVAL, "config: '%s' is not valid JSON near offset %zu", file,
                        end ? (size_t)(end - text) : 0);
        free(text);
        return rc;
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return rv_err_set(err, RV_EINVAL, "config: '%s' must hold a JSON object", file);
    }
    static const struct {
        const char *key;
        size_t off, cap;
    } strs[] = {
        {"data", offsetof(struct rv_config, data_dir), sizeof(c->data_dir)},
        {"http", offsetof(struct rv_config, http), sizeof(c->http)},
        {"ingest", offsetof(struct rv_config, ingest), sizeof(c->ingest)},
        {"partners", offsetof(struct rv_config, partners), sizeof(c->partners)},
        {"server_key", offsetof(struct rv_config, server_key), sizeof(c->server_key)},
        {"feeds", offsetof(struct rv_config, feeds), sizeof(c->feeds)},
        {"web_root", offsetof(struct rv_config, web_root), sizeof(c->web_root)},
        {"role", offsetof(struct rv_config, role), sizeof(c->role)},
        {"log_level", offsetof(struct rv_config, log_level), sizeof(c->log_level)},
    };
    for (cJSON *it = root->child; it; it = it->next) {
        bool known = false;
        if (strcmp(it->string, "ingest") == 0 && cJSON_IsObject(it)) {
            /* "ingest" is the endpoint, or a section {"endpoint", limits...} */
            const cJSON *ep = cJSON_GetObjectItemCaseSensitive(it, "endpoint");
            if (ep && (!cJSON_IsString(ep) || strlen(ep->valuestring) >= sizeof(c->ingest))) {
                cJSON_Delete(root);
                return rv_err_set(err, RV_EINVAL, "ingest.endpoint: must be a string shorter than %zu bytes",
                                  sizeof(c->ingest));
            }
            if (ep)
                snprintf(c->ingest, sizeof(c->ingest), "%s", ep->valuestring);
            continue;
        }
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            if (strcmp(it->string, strs[i].key) != 0)
                continue;
            known = true;
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= strs[i].cap) {
                cJSON_Delete(root);
                return rv_err_set(err, RV_EINVAL, "%s: must be a string shorter than %zu bytes",
                                  strs[i].key, strs[i].cap);
            }
            memcpy((char *)c + strs[i].off, it->valuestring, strlen(it->valuestring) + 1);
        }
        if (strcmp(it->string, "demo") == 0) {
            known = true;
            if (!cJSON_IsBool(it)) {
                cJSON_Delete(root);
                return rv_err_set(err, RV_EINVAL, "demo: must be true or false");
            }
            c->demo = cJSON_IsTrue(it);
        }
        for (int i = 0; sections[i]; i++) {
            if (strcmp(it->string, sections[i]) == 0) {
                known = true;
                /* "ingest" may also be the endpoint alone (taken above) */
                bool ep = strcmp(it->string, "ingest") == 0 && cJSON_IsString(it);
                if (!cJSON_IsObject(it) && !ep) {
                    cJSON_Delete(root);
                    return rv_err_set(err, RV_EINVAL, "%s: must be an object", sections[i]);
                }
            }
        }
        if (!known) {
            rc = rv_err_set(err, RV_EINVAL, "%.60s: unknown config key", it->string);
            cJSON_Delete(root);
            return rc;
        }
    }
    cJSON_Delete(c->root);
    c->root = root;
    return RV_OK;
}

const cJSON *rv_config_section(const struct rv_config *c, const char *name)
{
    const cJSON *s = c->root ? cJSON_GetObjectItemCaseSensitive(c->root, name) : NULL;
    return cJSON_IsObject(s) ? s : NULL;
}

static const cJSON *item(const cJSON *obj, const char *key)
{
    return obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

int rv_cfg_int(const cJSON *obj, const char *section, const char *key, int64_t def, int64_t min,
               int64_t max, int64_t *out, struct rv_errbuf *err)
{
    const cJSON *j = item(obj, key);
    if (!j) {
        *out = def;
        return RV_OK;
    }
    if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble ||
        j->valuedouble < (double)min || j->valuedouble > (double)max)
        return rv_err_set(err, RV_EINVAL, "%s.%s: must be an integer %lld..%lld", section, key,
                          (long long)min, (long long)max);
    *out = (int64_t)j->valuedouble;
    return RV_OK;
}

int rv_cfg_double(const cJSON *obj, const char *section, const char *key, double def, double min,
                  double max, double *out, struct rv_errbuf *err)
{
    const cJSON *j = item(obj, key);
    if (!j) {
        *out = def;
        return RV_OK;
    }
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= min && j->valuedouble <= max))
        return rv_err_set(err, RV_EINVAL, "%s.%s: must be a number %g..%g", section, key, min,
                          max);
    *out = j->valuedouble;
    return RV_OK;
}

int rv_cfg_bool(const cJSON *obj, const char *section, const char *key, bool def, bool *out,
                struct rv_errbuf *err)
{
    const cJSON *j = item(obj, key);
    if (!j) {
        *out = def;
        return RV_OK;
    }
    if (!cJSON_IsBool(j))
        return rv_err_set(err, RV_EINVAL, "%s.%s: must be true or false", section, key);
    *out = cJSON_IsTrue(j);
    return RV_OK;
}

int rv_cfg_string(const cJSON *obj, const char *section, const char *key, const char *def,
                  char *out, size_t cap, struct rv_errbuf *err)
{
    const cJSON *j = item(obj, key);
    const char *v = def ? def : "";
    if (j) {
        if (!cJSON_IsString(j))
            return rv_err_set(err, RV_EINVAL, "%s.%s: must be a string", section, key);
        v = j->valuestring;
    }
    if (strlen(v) >= cap)
        return rv_err_set(err, RV_ETOOBIG, "%s.%s: longer than %zu bytes", section, key, cap - 1);
    memcpy(out, v, strlen(v) + 1);
    return RV_OK;
}

/* Levenshtein distance of A and B, both at most 63 bytes (else a big number). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];

    if (la > 63 || lb > 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0], t;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            t = row[j];
            row[j] = best;
            diag = t;
        }
    }
    return row[lb];
}

const char *rv_cfg_closest(const char *key, const char *const *allowed, size_t n)
{
    const char *best = NULL;
    size_t bd = SIZE_MAX, kl = key ? strlen(key) : 0;

    for (size_t i = 0; key && (n ? i < n : allowed[i] != NULL); i++) {
        size_t d = edit_distance(key, allowed[i]);
        if (d < bd) {
            bd = d;
            best = allowed[i];
        }
    }
    return bd <= 2 && bd * 2 < kl ? best : NULL;
}

int rv_cfg_check_keys(const cJSON *obj, const char *section, const char *const *allowed,
                      struct rv_errbuf *err)
{
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next) {
        bool ok = false;
        char known[160] = "";
        size_t n = 0;
        for (int i = 0; allowed[i]; i++) {
            if (strcmp(it->string, allowed[i]) == 0)
                ok = true;
            n += (size_t)snprintf(known + n, n < sizeof(known) ? sizeof(known) - n : 0, "%s%s",
                                  i ? ", " : "", allowed[i]);
            if (n >= sizeof(known))
                n = sizeof(known) - 1;
        }
        if (!ok)
            return rv_err_set(err, RV_EINVAL, "%s.%.40s: unknown key (known: %s)", section,
                              it->string, known);
    }
    return RV_OK;
}

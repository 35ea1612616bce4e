/*
 * fp_fault.c - validation, JSON form and scope matching of faults (see
 * fp_fault.h).  Every key a kind accepts is listed in one table, so the
 * 400 for an unknown key and the "did you mean" hint come from one place.
 */
#define _GNU_SOURCE
#include "fp_fault.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hp_util.h"

/* NULL-terminated, so it doubles as suggest()'s candidate list. */
static const char *const KIND_NAMES[FPF_KIND_COUNT + 1] = {
    "partition", "latency", "bandwidth", "reset", "cut",
    "hold_response", "drop_response", "drop_message", "drop_request", NULL,
};

/* Keys each kind accepts besides "kind" and "scope" (NULL-terminated). */
static const char *const KIND_KEYS[FPF_KIND_COUNT][6] = {
    [FPF_PARTITION] = {NULL},
    [FPF_LATENCY] = {"direction", "ms", "jitter_ms", NULL},
    [FPF_BANDWIDTH] = {"direction", "bytes_per_s", NULL},
    [FPF_RESET] = {NULL},
    [FPF_CUT] = {"direction", "unit", "after_bytes", "count", "how", NULL},
    [FPF_HOLD_RESPONSE] = {"method", "path", "ms", "count", NULL},
    [FPF_DROP_RESPONSE] = {"method", "path", "count", NULL},
    [FPF_DROP_MESSAGE] = {"direction", "message", "count", NULL},
    [FPF_DROP_REQUEST] = {"method", "path", "count", NULL},
};

static const char *const SCOPE_KEYS[] = {"client", "sub", "dev", "conn", NULL};

const char *fpf_kind_name(fpf_kind k)
{
    return (unsigned)k < FPF_KIND_COUNT ? KIND_NAMES[k] : "?";
}

const char *fpf_dir_name(int dir)
{
    return dir == FPF_C2S ? "c2s" : dir == FPF_S2C ? "s2c" : "both";
}

int fpf_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > FPF_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Edit distance, capped: used only to suggest a near-miss key. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    int d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t k = 0; k <= lb; k++)
        d[0][k] = (int)k;
    for (size_t i = 1; i <= la; i++)
        for (size_t k = 1; k <= lb; k++) {
            int c = d[i - 1][k - 1] + (a[i - 1] != b[k - 1]);
            if (d[i - 1][k] + 1 < c)
                c = d[i - 1][k] + 1;
            if (d[i][k - 1] + 1 < c)
                c = d[i][k - 1] + 1;
            d[i][k] = c;
        }
    return d[la][lb];
}

static const char *suggest(const char *key, const char *const *cands)
{
    const char *best = NULL;
    int bd = 3;
    for (size_t i = 0; cands[i]; i++) {
        int dd = distance(key, cands[i]);
        if (dd < bd) {
            bd = dd;
            best = cands[i];
        }
    }
    return best;
}

/* Sets key and the message; returns -1 (the parser's error convention). */
static int fail(char *key, size_t keylen, const char *k, char *err, size_t errlen,
                const char *fmt, ...)
{
    if (key && keylen)
        snprintf(key, keylen, "%s", k);
    va_list ap;
    va_start(ap, fmt);
    hp_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An integer key in [lo, hi]; absent => *v keeps its default unless
 * required. */
static int get_int(const json_t *body, const char *k, int64_t lo, int64_t hi, int required,
                   int64_t *v, char *err, size_t errlen, char *key, size_t keylen)
{
    json_t *x = json_object_get(body, k);
    if (!x) {
        if (required)
            return fail(key, keylen, k, err, errlen, "missing key '%s' (an integer %lld..%lld)",
                        k, (long long)lo, (long long)hi);
        return 0;
    }
    if (!json_is_integer(x))
        return fail(key, keylen, k, err, errlen, "'%s' must be an integer %lld..%lld", k,
                    (long long)lo, (long long)hi);
    json_int_t n = json_integer_value(x);
    if (n < lo || n > hi)
        return fail(key, keylen, k, err, errlen, "'%s' is %lld, out of range %lld..%lld", k,
                    (long long)n, (long long)lo, (long long)hi);
    *v = n;
    return 0;
}

static int get_str(const json_t *body, const char *k, size_t maxlen, int required, char *dst,
                   char *err, size_t errlen, char *key, size_t keylen)
{
    json_t *x = json_object_get(body, k);
    if (!x) {
        if (required)
            return fail(key, keylen, k, err, errlen, "missing key '%s' (a string)", k);
        return 0;
    }
    const char *s = json_string_value(x);
    if (!s)
        return fail(key, keylen, k, err, errlen, "'%s' must be a string", k);
    size_t n = strlen(s);
    if (n < 1 || n > maxlen)
        return fail(key, keylen, k, err, errlen, "'%s' must be 1..%zu characters", k, maxlen);
    memcpy(dst, s, n + 1);
    return 0;
}

static int parse_scope(const json_t *sc, fpf_scope *s, char *err, size_t errlen, char *key,
                       size_t keylen)
{
    if (!json_is_object(sc))
        return fail(key, keylen, "scope", err, errlen,
                    "'scope' must be an object: {\"client\": NAME}, {\"sub\": USER[, \"dev\": "
                    "DEVICE]} or {\"conn\": ID}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sc, k, v) {
        int known = 0;
        for (size_t i = 0; SCOPE_KEYS[i]; i++)
            known |= strcmp(k, SCOPE_KEYS[i]) == 0;
        if (!known) {
            const char *hint = suggest(k, SCOPE_KEYS);
            char full[300];
            snprintf(full, sizeof full, "scope.%s", k);
            return fail(key, keylen, full, err, errlen, "unknown key 'scope.%s'%s%s%s", k,
                        hint ? " (did you mean 'scope." : "", hint ? hint : "",
                        hint ? "'?)" : "");
        }
    }
    int forms = (json_object_get(sc, "client") != NULL) + (json_object_get(sc, "sub") != NULL) +
                (json_object_get(sc, "conn") != NULL);
    if (forms != 1)
        return fail(key, keylen, "scope", err, errlen,
                    "'scope' needs exactly one of 'client', 'sub' (with an optional 'dev') or "
                    "'conn'");
    memset(s, 0, sizeof *s);
    if (json_object_get(sc, "dev") && !json_object_get(sc, "sub"))
        return fail(key, keylen, "scope.dev", err, errlen, "'scope.dev' needs 'scope.sub'");
    if (json_object_get(sc, "client")) {
        s->kind = FPF_SCOPE_CLIENT;
        const char *c = json_string_value(json_object_get(sc, "client"));
        if (!c || !fpf_valid_name(c))
            return fail(key, keylen, "scope.client", err, errlen,
                        "'scope.client' must be a client name: 1..64 of [A-Za-z0-9_.-]");
        snprintf(s->client, sizeof s->client, "%s", c);
    } else if (json_object_get(sc, "sub")) {
        s->kind = FPF_SCOPE_TOKEN;
        if (get_str(sc, "sub", FPF_CLAIM_MAX, 1, s->sub, err, errlen, key, keylen) != 0 ||
            get_str(sc, "dev", FPF_CLAIM_MAX, 0, s->dev, err, errlen, key, keylen) != 0) {
            char inner[64];
            snprintf(inner, sizeof inner, "scope.%s", key);
            snprintf(key, keylen, "%s", inner);
            return -1;
        }
    } else {
        s->kind = FPF_SCOPE_CONN;
        int64_t c = 0;
        if (get_int(sc, "conn", 1, INT64_MAX, 1, &c, err, errlen, key, keylen) != 0) {
            snprintf(key, keylen, "scope.conn");
            return -1;
        }
        s->conn = (uint64_t)c;
    }
    return 0;
}

static int parse_dir(const json_t *body, int def, int *dir, char *err, size_t errlen,
                     char *key, size_t keylen)
{
    json_t *x = json_object_get(body, "direction");
    if (!x) {
        if (def == 0)
            return fail(key, keylen, "direction", err, errlen,
                        "missing key 'direction' (\"c2s\", \"s2c\" or \"both\")");
        *dir = def;
        return 0;
    }
    const char *s = json_string_value(x);
    if (s && strcmp(s, "c2s") == 0)
        *dir = FPF_C2S;
    else if (s && strcmp(s, "s2c") == 0)
        *dir = FPF_S2C;
    else if (s && strcmp(s, "both") == 0)
        *dir = FPF_C2S | FPF_S2C;
    else
        return fail(key, keylen, "direction", err, errlen,
                    "'direction' must be \"c2s\" (client to server), \"s2c\" or \"both\"");
    return 0;
}

int fpf_parse(const json_t *body, int forced_kind, const char *forced_client, fp_fault *out,
              char *err, size_t errlen, char *key, size_t keylen)
{
    if (key && keylen)
        key[0] = '\0';
    if (!json_is_object(body))
        return fail(key, keylen, "", err, errlen, "the body must be a JSON object");
    fp_fault f;
    memset(&f, 0, sizeof f);
    f.count = -1;
    /* kind */
    json_t *jk = json_object_get(body, "kind");
    if (jk) {
        const char *ks = json_string_value(jk);
        int found = -1;
        for (int i = 0; ks && i < FPF_KIND_COUNT; i++)
            if (strcmp(ks, KIND_NAMES[i]) == 0)
                found = i;
        if (found < 0) {
            const char *hint = ks ? suggest(ks, (const char *const *)KIND_NAMES) : NULL;
            return fail(key, keylen, "kind", err, errlen,
                        "'kind' must be one of partition, latency, bandwidth, reset, cut, "
                        "hold_response, drop_response, drop_message, drop_request%s%s%s",
                        hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        }
        if (forced_kind >= 0 && found != forced_kind)
            return fail(key, keylen, "kind", err, errlen, "'kind' must be '%s' on this endpoint",
                        KIND_NAMES[forced_kind]);
        f.kind = (fpf_kind)found;
    } else if (forced_kind >= 0) {
        f.kind = (fpf_kind)forced_kind;
    } else {
        return fail(key, keylen, "kind", err, errlen, "missing key 'kind'");
    }
    /* unknown keys, before anything else, so a typo never arms a default */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "kind") == 0 || strcmp(k, "scope") == 0)
            continue;
        int known = 0;
        for (size_t i = 0; KIND_KEYS[f.kind][i]; i++)
            known |= strcmp(k, KIND_KEYS[f.kind][i]) == 0;
        if (known)
            continue;
        const char *all[] = {"kind", "scope", "direction", "ms", "jitter_ms", "bytes_per_s",
                             "after_bytes", "count", "how", "unit", "method", "path", "message",
                             NULL};
        int elsewhere = 0;
        for (size_t i = 0; all[i]; i++)
            elsewhere |= strcmp(k, all[i]) == 0;
        if (elsewhere)
            return fail(key, keylen, k, err, errlen, "key '%s' does not apply to kind '%s'", k,
                        KIND_NAMES[f.kind]);
        const char *hint = suggest(k, KIND_KEYS[f.kind]);
        if (!hint)
            hint = suggest(k, all);
        return fail(key, keylen, k, err, errlen, "unknown key '%s'%s%s%s", k,
                    hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    }
    /* scope */
    json_t *sc = json_object_get(body, "scope");
    if (forced_client) {
        if (sc)
            return fail(key, keylen, "scope", err, errlen,
                        "'scope' is given by the URL on this endpoint (/clients/{name}/...)");
        f.scope.kind = FPF_SCOPE_CLIENT;
        snprintf(f.scope.client, sizeof f.scope.client, "%s", forced_client);
    } else if (!sc) {
        return fail(key, keylen, "scope", err, errlen,
                    "missing key 'scope': every fault names its client ({\"client\": NAME}, "
                    "{\"sub\": USER[, \"dev\": DEVICE]} or {\"conn\": ID})");
    } else if (parse_scope(sc, &f.scope, err, errlen, key, keylen) != 0) {
        return -1;
    }
    /* per kind */
    int rc = 0;
    switch (f.kind) {
    case FPF_PARTITION:
    case FPF_RESET:
        break;
    case FPF_LATENCY:
        rc = parse_dir(body, FPF_C2S | FPF_S2C, &f.dir, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "ms", 0, FPF_MS_MAX, 1, &f.ms, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "jitter_ms", 0, FPF_MS_MAX, 0, &f.jitter_ms, err, errlen, key,
                         keylen);
        break;
    case FPF_BANDWIDTH:
        rc = parse_dir(body, FPF_C2S | FPF_S2C, &f.dir, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "bytes_per_s", FPF_BPS_MIN, FPF_BPS_MAX, 1, &f.bytes_per_s, err,
                         errlen, key, keylen);
        break;
    case FPF_CUT: {
        f.count = 1;
        f.after_bytes = 1;
        rc = parse_dir(body, FPF_S2C, &f.dir, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "after_bytes", 0, FPF_AFTER_BYTES_MAX, 0, &f.after_bytes, err,
                         errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "count", 1, FPF_COUNT_MAX, 0, &f.count, err, errlen, key, keylen);
        char how[8] = "fin";
        if (!rc)
            rc = get_str(body, "how", 3, 0, how, err, errlen, key, keylen);
        if (!rc && strcmp(how, "fin") != 0 && strcmp(how, "rst") != 0)
            rc = fail(key, keylen, "how", err, errlen, "'how' must be \"fin\" or \"rst\"");
        f.how_rst = strcmp(how, "rst") == 0;
        char unit[8] = "frame";
        if (!rc)
            rc = get_str(body, "unit", 5, 0, unit, err, errlen, key, keylen);
        f.cut_units = strcmp(unit, "frame") == 0  ? FPF_UNIT_FRAME
                      : strcmp(unit, "http") == 0 ? FPF_UNIT_HTTP
                      : strcmp(unit, "any") == 0  ? FPF_UNIT_FRAME | FPF_UNIT_HTTP
                                                  : 0;
        if (!rc && !f.cut_units)
            rc = fail(key, keylen, "unit", err, errlen,
                      "'unit' must be \"frame\" (a WebSocket data frame), \"http\" (an HTTP "
                      "message) or \"any\"");
        break;
    }
    case FPF_HOLD_RESPONSE:
    case FPF_DROP_RESPONSE:
    case FPF_DROP_REQUEST:
        f.count = 1;
        rc = get_str(body, "method", sizeof f.method - 1, 1, f.method, err, errlen, key, keylen);
        if (!rc) {
            int ok = strcmp(f.method, "*") == 0;
            if (!ok) {
                ok = 1;
                for (const char *c = f.method; *c; c++)
                    ok &= (*c >= 'A' && *c <= 'Z');
            }
            if (!ok)
                rc = fail(key, keylen, "method", err, errlen,
                          "'method' must be an upper-case HTTP method (\"PUT\") or \"*\"");
        }
        if (!rc)
            rc = get_str(body, "path", FPF_PATH_MAX, 1, f.path, err, errlen, key, keylen);
        if (!rc && f.path[0] != '/' && strcmp(f.path, "*") != 0)
            rc = fail(key, keylen, "path", err, errlen,
                      "'path' must start with '/' (a pattern: '*' matches any run, e.g. "
                      "\"/api/v0.2/tasks/*\"), or be \"*\"");
        if (!rc && f.kind == FPF_HOLD_RESPONSE)
            rc = get_int(body, "ms", 0, FPF_MS_MAX, 1, &f.ms, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "count", 1, FPF_COUNT_MAX, 0, &f.count, err, errlen, key, keylen);
        break;
    case FPF_DROP_MESSAGE:
        f.count = 1;
        rc = parse_dir(body, 0, &f.dir, err, errlen, key, keylen);
        if (!rc)
            rc = get_str(body, "message", FPF_NAME_MAX, 1, f.message, err, errlen, key, keylen);
        if (!rc)
            rc = get_int(body, "count", 1, FPF_COUNT_MAX, 0, &f.count, err, errlen, key, keylen);
        break;
    default:
        break;
    }
    if (rc)
        return -1;
    f.id = out->id;
    f.next = out->next;
    *out = f;
    return 0;
}

json_t *fpf_scope_json(const fpf_scope *s)
{
    switch (s->kind) {
    case FPF_SCOPE_CLIENT:
        return json_pack("{ss}", "client", s->client);
    case FPF_SCOPE_TOKEN:
        if (s->dev[0])
            return json_pack("{ssss}", "sub", s->sub, "dev", s->dev);
        return json_pack("{ss}", "sub", s->sub);
    default:
        return json_pack("{sI}", "conn", (json_int_t)s->conn);
    }
}

json_t *fpf_to_json(const fp_fault *f)
{
    json_t *o = json_pack("{sIssso}", "id", (json_int_t)f->id, "kind", KIND_NAMES[f->kind],
                          "scope", fpf_scope_json(&f->scope));
    switch (f->kind) {
    case FPF_LATENCY:
        json_object_set_new(o, "direction", json_string(fpf_dir_name(f->dir)));
        json_object_set_new(o, "ms", json_integer(f->ms));
        json_object_set_new(o, "jitter_ms", json_integer(f->jitter_ms));
        break;
    case FPF_BANDWIDTH:
        json_object_set_new(o, "direction", json_string(fpf_dir_name(f->dir)));
        json_object_set_new(o, "bytes_per_s", json_integer(f->bytes_per_s));
        break;
    case FPF_CUT:
        json_object_set_new(o, "direction", json_string(fpf_dir_name(f->dir)));
        json_object_set_new(o, "after_bytes", json_integer(f->after_bytes));
        json_object_set_new(o, "how", json_string(f->how_rst ? "rst" : "fin"));
        json_object_set_new(o, "unit", json_string(f->cut_units == FPF_UNIT_FRAME  ? "frame"
                                                   : f->cut_units == FPF_UNIT_HTTP ? "http"
                                                                                   : "any"));
        break;
    case FPF_HOLD_RESPONSE:
        json_object_set_new(o, "ms", json_integer(f->ms));
        /* fall through */
    case FPF_DROP_RESPONSE:
    case FPF_DROP_REQUEST:
        json_object_set_new(o, "method", json_string(f->method));
        json_object_set_new(o, "path", json_string(f->path));
        break;
    case FPF_DROP_MESSAGE:
        json_object_set_new(o, "direction", json_string(fpf_dir_name(f->dir)));
        json_object_set_new(o, "message", json_string(f->message));
        break;
    default:
        break;
    }
    if (f->count >= 0)
        json_object_set_new(o, "count", json_integer(f->count));
    json_object_set_new(o, "applied", json_integer(f->applied));
    json_object_set_new(o, "created_ms", json_integer(f->created_ms));
    return o;
}

int fpf_scope_match(const fpf_scope *s, const char *client, const char *sub, const char *dev,
                    uint64_t conn)
{
    switch (s->kind) {
    case FPF_SCOPE_CLIENT:
        return client && strcmp(client, s->client) == 0;
    case FPF_SCOPE_TOKEN:
        return sub && strcmp(sub, s->sub) == 0 && (!s->dev[0] || (dev && strcmp(dev, s->dev) == 0));
    default:
        return conn == s->conn;
    }
}

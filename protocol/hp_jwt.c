/*
 * hp_jwt.c - HS256 tokens, on libjwt 1.10.2.
 *
 * libjwt 1.10 has no validation API and jwt_decode() with a NULL/empty key
 * skips the signature check, so this file: (1) checks the token's shape
 * (canonical base64url, a 32-byte signature) and pins the header's "alg"
 * to exactly "HS256" itself, (2) always hands
 * the key to jwt_decode() and pins jwt_get_alg() again, (3) reads the
 * claims from the (now verified) payload with jansson and checks
 * exp/nbf/iat against the caller's clock with no leeway.
 */
#define _GNU_SOURCE
#include "hp_jwt.h"
#include "hp_jload.h"
#include "hp_util.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url s[0..n) into a fresh NUL-terminated buffer;
 * NULL on a bad character or impossible length. */
static char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
    if (n % 4 == 1)
        return NULL;
    char *out = malloc(n * 3 / 4 + 4);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* Canonical form only: the unused low bits of the last char must be 0,
     * so one token has exactly one spelling (no malleable variants). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

/* A base64url segment decoded and parsed as a JSON object, or NULL. */
static json_t *segment_json(const char *s, size_t n)
{
    size_t len;
    char *raw = b64url_decode(s, n, &len);
    if (!raw)
        return NULL;
    json_t *j = hp_json_loadb(raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int refuse(const char **reason, const char *word, char *message, size_t msglen,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int refuse(const char **reason, const char *word, char *message, size_t msglen,
                  const char *fmt, ...)
{
    if (reason)
        *reason = word;
    va_list ap;
    va_start(ap, fmt);
    hp_verrf(message, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies a claim string of 1..cap-1 bytes (no NUL inside); -1 otherwise. */
static int claim_str(const json_t *v, char *dst, size_t cap)
{
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    if (n == 0 || n >= cap || strlen(json_string_value(v)) != n)
        return -1;
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

/* A claim value hp_jwt_verify() accepts: claim_str() into hp_claims. */
static int claim_fits(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < sizeof(((hp_claims *)0)->sub);
}

/* s * 1000 without overflow, saturating. */
static int64_t s_to_ms(int64_t s)
{
    if (s > INT64_MAX / 1000)
        return INT64_MAX;
    if (s < INT64_MIN / 1000)
        return INT64_MIN;
    return s * 1000;
}

/* Everything of hp_jwt_verify() that depends on (secret, token) alone:
 * shape, alg pin, signature, claim types.  0 with *c filled (has_nbf /
 * has_iat: the claim was present), or -1 with the refusal. */
static int verify_static(const char *secret, const char *token, hp_claims *out, int *has_nbf,
                         int *has_iat, const char **reason, char *message, size_t msglen)
{
    /* token and secret are non-empty (hp_jwt_verify_memo checked) */
    /* Shape: three base64url segments. */
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1)
        return refuse(reason, "malformed", message, msglen, "token is not three segments");
    for (const char *p = token; *p; p++)
        if (*p != '.' && b64url_val(*p) < 0)
            return refuse(reason, "malformed", message, msglen,
                          "token has characters outside base64url");

    json_t *hdr = segment_json(token, (size_t)(d1 - token));
    if (!hdr)
        return refuse(reason, "malformed", message, msglen, "token header is not a JSON object");
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    int alg_ok = alg && strcmp(alg, "HS256") == 0;
    char algbuf[32];
    snprintf(algbuf, sizeof algbuf, "%s", alg ? alg : "(none)");
    json_decref(hdr);
    if (!alg_ok)
        /* the algorithm is pinned; none/HS512/RS256 are refused. */
        return refuse(reason, "alg_not_allowed", message, msglen,
                      "algorithm %s is not allowed (HS256 only)", algbuf);

    json_t *claims = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!claims)
        return refuse(reason, "malformed", message, msglen, "token payload is not a JSON object");

    /* An HS256 signature is 32 bytes in canonical base64url (43 chars). */
    size_t siglen = 0;
    char *sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
    int sig_ok = sig != NULL && siglen == 32;
    free(sig);
    if (!sig_ok) {
        json_decref(claims);
        return refuse(reason, "bad_signature", message, msglen, "signature does not verify");
    }

    jwt_t *j = NULL;
    int rc = jwt_decode(&j, token, (const unsigned char *)secret, (int)strlen(secret));
    if (rc != 0 || !j) {
        json_decref(claims);
        if (j)
            jwt_free(j);
        return refuse(reason, "bad_signature", message, msglen, "signature does not verify");
    }
    jwt_alg_t jalg = jwt_get_alg(j);
    jwt_free(j);
    if (jalg != JWT_ALG_HS256) {
        json_decref(claims);
        return refuse(reason, "alg_not_allowed", message, msglen, "algorithm is not HS256");
    }

    hp_claims c;
    memset(&c, 0, sizeof c);
    int r = 0;
    const json_t *v;
    if (claim_str(json_object_get(claims, "sub"), c.sub, sizeof c.sub) != 0)
        r = refuse(reason, "missing_claim", message, msglen,
                   "claim sub must be a non-empty string (< 128 bytes)");
    else if (claim_str(json_object_get(claims, "hh"), c.hh, sizeof c.hh) != 0)
        r = refuse(reason, "missing_claim", message, msglen,
                   "claim hh must be a non-empty string (< 128 bytes)");
    else if (!json_is_integer(v = json_object_get(claims, "exp")))
        r = refuse(reason, "missing_claim", message, msglen,
                   "claim exp must be an integer (seconds)");
    else {
        c.exp = json_integer_value(v);
        if ((v = json_object_get(claims, "dev")) && !json_is_null(v) &&
            claim_str(v, c.dev, sizeof c.dev) != 0)
            r = refuse(reason, "malformed", message, msglen,
                       "claim dev must be a non-empty string (< 128 bytes)");
        else if ((v = json_object_get(claims, "nbf")) && !json_is_integer(v))
            r = refuse(reason, "malformed", message, msglen, "claim nbf must be an integer");
        else if ((v = json_object_get(claims, "iat")) && !json_is_integer(v))
            r = refuse(reason, "malformed", message, msglen, "claim iat must be an integer");
    }
    if (r == 0) {
        c.nbf = json_integer_value(json_object_get(claims, "nbf"));
        c.iat = json_integer_value(json_object_get(claims, "iat"));
        *has_nbf = json_object_get(claims, "nbf") != NULL;
        *has_iat = json_object_get(claims, "iat") != NULL;
        *out = c;
    }
    json_decref(claims);
    return r;
}

/* The checks against the clock, every time (A-2 / §3: no leeway in either
 * direction). */
static int verify_time(const hp_claims *c, int has_nbf, int has_iat, int64_t now_ms,
                       hp_claims *out, const char **reason, char *message, size_t msglen)
{
    if (now_ms >= s_to_ms(c->exp))
        return refuse(reason, "expired", message, msglen, "token expired");
    if (has_nbf && now_ms < s_to_ms(c->nbf))
        return refuse(reason, "not_yet_valid", message, msglen, "token not valid yet (nbf)");
    if (has_iat && s_to_ms(c->iat) > now_ms)
        return refuse(reason, "iat_in_future", message, msglen, "token issued in the future");
    if (out)
        *out = *c;
    if (reason)
        *reason = NULL;
    if (message && msglen)
        message[0] = '\0';
    return 0;
}

int hp_jwt_verify(const char *secret, const char *token, int64_t now_ms, hp_claims *out,
                  const char **reason, char *message, size_t msglen)
{
    return hp_jwt_verify_memo(NULL, secret, token, now_ms, out, reason, message, msglen);
}

/* A memo entry: a (secret, token) pair whose static checks passed; hash
 * is memo_hash(token), compared before the strings. */
typedef struct memo_ent {
    char *secret, *token;
    uint32_t hash;
    hp_claims c;
    int has_nbf, has_iat;
} memo_ent;

/* Direct-mapped: a pair lives in slot hash % cap, and a new pair replaces
 * the one in its slot.  A world's memo has 64 slots (a world uses a few
 * tokens); the process memo 1024 (the suite's worlds mint a few hundred). */
#define MEMO_CAP 64
#define MEMO_PROCESS_CAP 1024

struct hp_jwt_memo {
    memo_ent *e;         /* cap slots; token NULL = empty */
    uint32_t cap;
    int process;         /* the hp_jwt_memo_process() one: locked, never freed */
    pthread_mutex_t lock; /* used only when process */
};

hp_jwt_memo *hp_jwt_memo_new(void)
{
    hp_jwt_memo *m = calloc(1, sizeof *m);
    if (m && !(m->e = calloc(MEMO_CAP, sizeof *m->e))) {
        free(m);
        return NULL;
    }
    if (m)
        m->cap = MEMO_CAP;
    return m;
}

/* The one process memo, made at the first call (pthread_once: hp-harness
 * runs worlds in threads).  It lives until exit, reachable from here. */
static hp_jwt_memo *process_memo;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void process_init(void)
{
    hp_jwt_memo *m = calloc(1, sizeof *m);
    if (m && !(m->e = calloc(MEMO_PROCESS_CAP, sizeof *m->e))) {
        free(m);
        m = NULL;
    }
    if (!m)
        return;
    m->cap = MEMO_PROCESS_CAP;
    m->process = 1;
    pthread_mutex_init(&m->lock, NULL);
    process_memo = m;
}

hp_jwt_memo *hp_jwt_memo_process(void)
{
    pthread_once(&process_once, process_init);
    return process_memo;
}

void hp_jwt_memo_free(hp_jwt_memo *m)
{
    if (!m || m->process)
        return;
    for (uint32_t i = 0; i < m->cap; i++) {
        free(m->e[i].secret);
        free(m->e[i].token);
    }
    free(m->e);
    free(m);
}

/* FNV-1a over the length and the last 16 bytes: those are the HMAC's, so
 * two valid tokens differ there; a forged one only costs a slot. */
static uint32_t memo_hash(const char *token)
{
    size_t n = strlen(token);
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (size_t i = n > 16 ? n - 16 : 0; i < n; i++)
        h = (h ^ (unsigned char)token[i]) * 16777619u;
    return h;
}

/* Looks (secret, token) up: 1 with *c, *has_nbf, *has_iat copied. */
static int memo_find(hp_jwt_memo *m, uint32_t h, const char *secret, const char *token,
                     hp_claims *c, int *has_nbf, int *has_iat)
{
    if (m->process)
        pthread_mutex_lock(&m->lock);
    const memo_ent *e = &m->e[h % m->cap];
    int hit = e->token && e->hash == h && !strcmp(e->token, token) && !strcmp(e->secret, secret);
    if (hit) {
        *c = e->c;
        *has_nbf = e->has_nbf;
        *has_iat = e->has_iat;
    }
    if (m->process)
        pthread_mutex_unlock(&m->lock);
    return hit;
}

/* Remembers a pair whose static checks passed (not when out of memory). */
static void memo_put(hp_jwt_memo *m, uint32_t h, const char *secret, const char *token,
                     const hp_claims *c, int has_nbf, int has_iat)
{
    char *s = strdup(secret), *t = strdup(token);
    if (!s || !t) {
        free(s);
        free(t);
        return;
    }
    if (m->process)
        pthread_mutex_lock(&m->lock);
    memo_ent *e = &m->e[h % m->cap];
    char *olds = e->secret, *oldt = e->token;
    e->secret = s;
    e->token = t;
    e->hash = h;
    e->c = *c;
    e->has_nbf = has_nbf;
    e->has_iat = has_iat;
    if (m->process)
        pthread_mutex_unlock(&m->lock);
    free(olds);
    free(oldt);
}

int hp_jwt_verify_memo(hp_jwt_memo *m, const char *secret, const char *token, int64_t now_ms,
                       hp_claims *out, const char **reason, char *message, size_t msglen)
{
    if (!token || !*token)
        return refuse(reason, "missing", message, msglen, "no token");
    if (!secret || !*secret)
        /* An empty key would make libjwt skip the signature check. */
        return refuse(reason, "bad_signature", message, msglen, "no secret configured");
    hp_claims c;
    int has_nbf = 0, has_iat = 0;
    uint32_t h = m ? memo_hash(token) : 0;
    if (m && memo_find(m, h, secret, token, &c, &has_nbf, &has_iat))
        return verify_time(&c, has_nbf, has_iat, now_ms, out, reason, message, msglen);
    if (verify_static(secret, token, &c, &has_nbf, &has_iat, reason, message, msglen) != 0)
        return -1;
    if (m)
        memo_put(m, h, secret, token, &c, has_nbf, has_iat);
    return verify_time(&c, has_nbf, has_iat, now_ms, out, reason, message, msglen);
}

/*
 * Mints exactly the claims asked for: sub, hh, exp, dev when non-NULL and
 * iat when iat_s != 0 (0 would mean 1970 and is treated as "no iat").
 */
char *hp_jwt_mint(const char *secret, const char *sub, const char *hh, const char *dev,
                  int64_t iat_s, int64_t exp_s)
{
    if (!secret || !*secret || !sub || !hh)
        return NULL;
    /* Never mint what hp_jwt_verify() refuses (claim_str: 1 to 127 bytes;
     * dev absent or likewise): `hp-fake-server token --sub <500 chars>`
     * printed a token the server then refused (issue 11). */
    if (!claim_fits(sub) || !claim_fits(hh) || (dev && !claim_fits(dev)))
        return NULL;
    jwt_t *j = NULL;
    if (jwt_new(&j) != 0 || !j)
        return NULL;
    char *tok = NULL;
    if (jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0 &&
        jwt_add_grant(j, "sub", sub) == 0 && jwt_add_grant(j, "hh", hh) == 0 &&
        (!dev || jwt_add_grant(j, "dev", dev) == 0) &&
        (iat_s == 0 || jwt_add_grant_int(j, "iat", (long)iat_s) == 0) &&
        jwt_add_grant_int(j, "exp", (long)exp_s) == 0)
        tok = jwt_encode_str(j);
    jwt_free(j);
    return tok;
}

/*
 * See hp_jwt.h.  Same decoder as hp_jwt_verify, no signature or claim
 * checks.  The payload is capped (8 KiB) so a garbage token costs nothing;
 * an empty "sub" string is returned as "" (the caller decides).
 */
char *hp_jwt_peek_sub(const char *token)
{
    const char *p = token ? strchr(token, '.') : NULL;
    if (!p)
        return NULL;
    p++;
    const char *e = strchr(p, '.');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || n > 8192)
        return NULL;
    json_t *claims = segment_json(p, n);
    if (!claims)
        return NULL;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    char *r = sub ? strdup(sub) : NULL;
    json_decref(claims);
    return r;
}

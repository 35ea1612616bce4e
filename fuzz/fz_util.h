/*
 * fz_util.h - what the libFuzzer targets share: a record splitter for the
 * script-like inputs of the core targets, a fixed environment (virtual
 * clock, seeded PRNG, a logger that drops records but still formats them),
 * valid tokens minted with a fixed secret, and the oracle's abort.
 *
 * Input format of the "script" targets (fuzz_srv_core, fuzz_cli_core):
 * a sequence of records, each a header line that starts with '@' followed
 * by a body (every byte up to the next "\n@" or the end):
 *
 *     @http PUT /api/v0.2/tasks/t1 auth=A idem=k1
 *     {"title":"x"}
 *     @tick 30000
 *
 * Text before the first '@' is ignored.  Bodies may hold any byte (NUL
 * included): lengths, not terminators, delimit them.  Token placeholders
 * $A (alice@home), $B (bob@home), $C (carol@other) and $X (alice@home,
 * expired) in a header or a body are replaced by real HS256 tokens, since
 * the fuzzer cannot forge signatures.
 *
 * Everything here is for the fuzz targets only (static functions in a
 * header: each target is one translation unit).
 */
#ifndef FZ_UTIL_H
#define FZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"

#define FZ_SECRET "fuzz-secret-0123456789"
/* 2027-01-15T08:00:00Z: the virtual clock's start (tokens are minted for it). */
#define FZ_T0 1800000000000LL

/* An oracle failed: say what and abort, so libFuzzer saves the input. */
#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz oracle failed (%s:%d): ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

typedef struct fz_rec {
    const char *name;   /* after '@', up to a space or the end of the line */
    size_t name_len;
    const char *args;   /* the rest of the header line (no newline) */
    size_t args_len;
    const char *body;   /* after the header's newline, up to the next "\n@" */
    size_t body_len;
} fz_rec;

/* The next record at *pos (advanced past it); 0 when none is left. */
static inline int fz_next(const uint8_t *data, size_t size, size_t *pos, fz_rec *r)
{
    const char *d = (const char *)data;
    size_t i = *pos;
    /* The first record starts at an '@' at the start of the input or of a line. */
    while (i < size && !(d[i] == '@' && (i == 0 || d[i - 1] == '\n')))
        i++;
    if (i >= size)
        return 0;
    i++;
    size_t ns = i;
    while (i < size && d[i] != ' ' && d[i] != '\n')
        i++;
    r->name = d + ns;
    r->name_len = i - ns;
    if (i < size && d[i] == ' ')
        i++;
    size_t as = i;
    while (i < size && d[i] != '\n')
        i++;
    r->args = d + as;
    r->args_len = i - as;
    if (i < size)
        i++; /* the header's newline */
    size_t bs = i;
    if (i < size && d[i] == '@') { /* no body: the next record follows */
        r->body = d + bs;
        r->body_len = 0;
        *pos = i;
        return 1;
    }
    while (i < size && !(d[i] == '\n' && i + 1 < size && d[i + 1] == '@'))
        i++;
    r->body = d + bs;
    r->body_len = i - bs;
    *pos = i < size ? i + 1 : size;
    return 1;
}

static inline int fz_is(const fz_rec *r, const char *name)
{
    return r->name_len == strlen(name) && memcmp(r->name, name, r->name_len) == 0;
}

/* Word number k (0-based, space separated) of the header's args into buf
 * (NUL-terminated, cut to cap-1); "" when absent. */
static inline const char *fz_word(const fz_rec *r, int k, char *buf, size_t cap)
{
    size_t i = 0;
    buf[0] = '\0';
    for (int w = 0; i < r->args_len; w++) {
        while (i < r->args_len && r->args[i] == ' ')
            i++;
        size_t s = i;
        while (i < r->args_len && r->args[i] != ' ')
            i++;
        if (w == k) {
            size_t n = i - s < cap - 1 ? i - s : cap - 1;
            memcpy(buf, r->args + s, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return buf;
}

/* The value of "key=value" among the args, or NULL. */
static inline const char *fz_opt(const fz_rec *r, const char *key, char *buf, size_t cap)
{
    char w[512];
    size_t kl = strlen(key);
    for (int k = 0; k < 16; k++) {
        fz_word(r, k, w, sizeof w);
        if (!w[0])
            break;
        if (strncmp(w, key, kl) == 0 && w[kl] == '=') {
            snprintf(buf, cap, "%s", w + kl + 1);
            return buf;
        }
    }
    return NULL;
}

/* strtoll of word k with a default; never overflows (clamped by strtoll). */
static inline long long fz_num(const fz_rec *r, int k, long long dflt)
{
    char w[64];
    fz_word(r, k, w, sizeof w);
    if (!w[0])
        return dflt;
    return strtoll(w, NULL, 10);
}

/* ---- the environment ---------------------------------------------------- */

typedef struct fz_env {
    int64_t now;
    hp_rng rng;
    hp_logger log;
    hp_env env;
} fz_env;

static inline int64_t fz_clock(void *ud)
{
    return ((fz_env *)ud)->now;
}

/* Formats every record (the formatting code is fuzzed too) and drops it. */
static inline void fz_sink(void *ud, const hp_log_record *rec)
{
    (void)ud;
    volatile size_t n = strlen(rec->msg) + (rec->fields ? strlen(rec->fields) : 0);
    (void)n;
}

static inline void fz_env_init(fz_env *e, const char *actor)
{
    memset(e, 0, sizeof *e);
    e->now = FZ_T0;
    hp_rng_seed(&e->rng, 42);
    e->log.sink = fz_sink;
    e->log.min_level = HP_LOG_DEBUG;
    e->env.now = fz_clock;
    e->env.clock_ud = e;
    e->env.rng = &e->rng;
    e->env.log = &e->log;
    e->env.actor = actor;
}

/* ---- tokens --------------------------------------------------------------- */

static char *fz_tokens[4]; /* $A $B $C $X */

static inline void fz_tokens_init(void)
{
    if (fz_tokens[0])
        return;
    int64_t s = FZ_T0 / 1000;
    fz_tokens[0] = hp_jwt_mint(FZ_SECRET, "alice", "home", "phone", s, s + 365 * 86400);
    fz_tokens[1] = hp_jwt_mint(FZ_SECRET, "bob", "home", "laptop", s, s + 365 * 86400);
    fz_tokens[2] = hp_jwt_mint(FZ_SECRET, "carol", "other", NULL, s, s + 365 * 86400);
    fz_tokens[3] = hp_jwt_mint(FZ_SECRET, "alice", "home", "phone", s - 7200, s - 3600);
}

/* A malloc'd NUL-terminated copy of (p, n) with $A/$B/$C/$X replaced by
 * tokens; *outlen gets the length (embedded NULs kept). */
static inline char *fz_subst(const char *p, size_t n, size_t *outlen)
{
    fz_tokens_init();
    size_t cap = n + 1, len = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '$' && strchr("ABCX", p[i + 1]) && p[i + 1])
            cap += 400;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        const char *t = NULL;
        if (p[i] == '$' && i + 1 < n && p[i + 1]) {
            const char *k = strchr("ABCX", p[i + 1]);
            if (k)
                t = fz_tokens[k - "ABCX"];
        }
        if (t) {
            size_t tl = strlen(t);
            memcpy(out + len, t, tl);
            len += tl;
            i++;
        } else {
            out[len++] = p[i];
        }
    }
    out[len] = '\0';
    if (outlen)
        *outlen = len;
    return out;
}

#endif

/*
 * jd_gen.h - jansson trees for comparing hp_jdump() with json_dumps().
 *
 * Used by tests/protocol/test_hp_jdump.c (bytes from a seeded PRNG) and by
 * fuzz/fuzz_jdump.c (bytes from the fuzzer's input).  A tree is built from
 * a byte source: each choice (type, length, which number, which piece of
 * string) takes one byte, so a fuzzer mutating bytes mutates the tree.  An
 * exhausted input reads as zeros, which build null / empty / short things,
 * so every input builds a finite tree.
 *
 * What it makes: every jansson type; objects with keys that share prefixes,
 * hold NUL, escapes and non-ASCII, and now and then keys that are not
 * UTF-8 (json_object_setn_nocheck); strings likewise (json_stringn_nocheck
 * for the bad ones); integers at the int64 edges; reals from a list of
 * hard cases, from random bits and as mantissa x 10^e over the whole
 * range; empty and deep containers; sometimes large objects and long
 * strings (past hp_jdump's stack buffers).
 *
 * Ownership: jd_gen_value() returns a new reference (never NULL).
 */
#ifndef JD_GEN_H
#define JD_GEN_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

typedef struct jd_src {
    const uint8_t *data; /* fuzz input, or NULL: use the PRNG */
    size_t len, pos;
    uint64_t rng;        /* xorshift64* state (nonzero) */
    unsigned bad_odds;   /* one string or key in this many is not UTF-8 (0: never) */
    unsigned nodes;      /* values made so far: bounds the tree's size */
} jd_src;

static unsigned jd_byte(jd_src *s)
{
    if (s->data)
        return s->pos < s->len ? s->data[s->pos++] : 0;
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (unsigned)((s->rng * 0x2545F4914F6CDD1DULL) >> 56);
}

static uint64_t jd_u64(jd_src *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | jd_byte(s);
    return v;
}

/* Valid pieces of text: plain, escaped, control, and UTF-8 of every
 * length including the edges of each length. */
static const char *const jd_pieces[] = {
    "a", "b", "z", "A", "0", " ", "/", "~", "\x7f", "\"", "\\", "\b", "\f", "\n", "\r", "\t",
    "\x01", "\x1f", "\x0b", "\x1b", "ab", "hello", "\xc2\x80", "\xc3\xa9", "\xdf\xbf",
    "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
    "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "x\ny", "\"\\",
};
#define JD_NPIECES (sizeof jd_pieces / sizeof *jd_pieces)

/* Bytes that make a string invalid UTF-8 for jansson. */
static const char *const jd_bad[] = {
    "\xff", "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
    "\xed\xbf\xbf", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82",
    "\xc3", "\xf0\x9f\x98", "\xc3\x28", "\xe2\x28\xa1",
};
#define JD_NBAD (sizeof jd_bad / sizeof *jd_bad)

/* Fills buf (at least 64 + 4 x max bytes) with pieces; NUL bytes count
 * (the text is buf[0..*n)).  *bad says whether an invalid piece went in. */
static void jd_text(jd_src *s, char *buf, size_t *n, unsigned max, int *bad)
{
    static const char *const prefixes[] = {"", "a", "ab", "a\0", "\xc3\xa9", "type", "\0"};
    static const size_t prefix_len[] = {0, 1, 2, 2, 2, 4, 1};
    unsigned p = jd_byte(s) % 7;
    memcpy(buf, prefixes[p], prefix_len[p]);
    *n = prefix_len[p];
    /* Not on 0, so an exhausted fuzz input makes valid text. */
    *bad = s->bad_odds && jd_byte(s) % s->bad_odds == s->bad_odds - 1;
    unsigned count = max ? jd_byte(s) % (max + 1) : 0;
    unsigned bad_at = *bad ? (count ? jd_byte(s) % (count + 1) : 0) : ~0u;
    for (unsigned i = 0; i <= count; i++) {
        if (i == bad_at) {
            const char *b = jd_bad[jd_byte(s) % JD_NBAD];
            memcpy(buf + *n, b, strlen(b));
            *n += strlen(b);
        }
        if (i == count)
            break;
        unsigned c = jd_byte(s);
        if (c < 8) {
            buf[(*n)++] = '\0';
        } else {
            const char *pc = jd_pieces[c % JD_NPIECES];
            size_t l = strlen(pc);
            memcpy(buf + *n, pc, l);
            *n += l;
        }
    }
}

static json_t *jd_real(jd_src *s)
{
    static const double hard[] = {
        0.0, -0.0, 0.1, -0.1, 0.5, 1.0, -1.0, 1e-7, 1e-5, 1e-4, 1e-3, 1e15, 1e16, 1e17,
        1e300, -1e300, 1e308, 1.7976931348623157e308, 2.2250738585072014e-308, 5e-324,
        9007199254740992.0, 9007199254740993.0, 123456789012345678.0, 3.141592653589793,
        100.0, 1e21, 1e22, 0.3, 2.5e-10, 12345.678,
    };
    unsigned how = jd_byte(s) % 5;
    double d;
    if (how == 0) {
        d = hard[jd_byte(s) % (sizeof hard / sizeof *hard)];
    } else if (how == 1) {
        uint64_t bits = jd_u64(s);
        memcpy(&d, &bits, sizeof d);
        if (!isfinite(d))
            d = (double)(int64_t)bits;
    } else if (how == 2) {
        /* 0.<digits>e<exp>: every magnitude, short and long mantissas. */
        char t[64];
        unsigned long long m = (unsigned long long)(jd_u64(s) >> (jd_byte(s) % 64));
        int e = (int)(jd_byte(s) * 256 + jd_byte(s)) % 640 - 325;
        snprintf(t, sizeof t, "%s0.%llue%d", jd_byte(s) & 1 ? "-" : "", m, e);
        d = strtod(t, NULL);
        if (!isfinite(d))
            d = 1.0;
    } else if (how == 3) {
        /* integer-valued */
        d = (double)(int64_t)jd_u64(s);
        if (jd_byte(s) & 1)
            d = (double)(int32_t)jd_u64(s);
    } else {
        d = (double)(int)(jd_byte(s) - 128) / (double)(1u << (jd_byte(s) % 12));
    }
    json_t *r = json_real(d);
    return r ? r : json_real(0.25);
}

static json_t *jd_integer(jd_src *s)
{
    static const json_int_t edge[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN,
                                      INT64_MAX - 1, INT64_MIN + 1, 4294967296LL, -2147483648LL};
    unsigned how = jd_byte(s) % 3;
    if (how == 0)
        return json_integer(edge[jd_byte(s) % (sizeof edge / sizeof *edge)]);
    if (how == 1)
        return json_integer((json_int_t)jd_u64(s));
    return json_integer((json_int_t)jd_byte(s) - 128);
}

static json_t *jd_gen_value(jd_src *s, unsigned depth);

static json_t *jd_string(jd_src *s)
{
    char buf[64 + 4 * 4000];
    size_t n;
    int bad;
    unsigned max = jd_byte(s) == 255 ? 4000 : 12;
    jd_text(s, buf, &n, max, &bad);
    json_t *v = bad ? json_stringn_nocheck(buf, n) : json_stringn(buf, n);
    return v ? v : json_string("");
}

static json_t *jd_object(jd_src *s, unsigned depth)
{
    json_t *o = json_object();
    unsigned c = jd_byte(s);
    unsigned n = c == 255 ? 30 + jd_byte(s) % 80 : c % 7;
    for (unsigned i = 0; i < n; i++) {
        char buf[64 + 4 * 10];
        size_t kn;
        int bad;
        jd_text(s, buf, &kn, 6, &bad);
        json_t *v = jd_gen_value(s, depth + 1);
        if (bad)
            json_object_setn_new_nocheck(o, buf, kn, v);
        else
            json_object_setn_new(o, buf, kn, v);
    }
    return o;
}

static json_t *jd_array(jd_src *s, unsigned depth)
{
    json_t *a = json_array();
    unsigned c = jd_byte(s);
    unsigned n = c == 255 ? 30 + jd_byte(s) % 100 : c % 6;
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(a, jd_gen_value(s, depth + 1));
    return a;
}

static json_t *jd_gen_value(jd_src *s, unsigned depth)
{
    unsigned t = jd_byte(s) % 16;
    if (++s->nodes > 3000 || depth > 12)
        t = t % 10; /* scalars only */
    switch (t) {
    case 0: return json_null();
    case 1: return json_true();
    case 2: return json_false();
    case 3: case 4: return jd_integer(s);
    case 5: case 6: return jd_real(s);
    case 7: case 8: case 9: return jd_string(s);
    case 10: case 11: case 12: return jd_object(s, depth);
    default: return jd_array(s, depth);
    }
}

#endif

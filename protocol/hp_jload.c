/*
 * hp_jload.c - the fast path of hp_json_loadb() (see hp_jload.h).
 *
 * The rule that keeps it exact: the fast parser only ever says "here is
 * the tree" for inputs it fully understands, and for those it builds what
 * jansson builds (values of the same types, keys in text order).  For
 * everything else it says "not mine" and json_loadb() decides, so errors,
 * error texts and every rare construct stay jansson's.
 */
#include "hp_jload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_MAX_DEPTH 64
#define FAST_MAX_DIGITS 18 /* below 10^18: no overflow of json_int_t */

typedef struct fp {
    const unsigned char *p, *end;
    char *tmp; /* decoded strings with escapes */
    size_t tmpcap;
} fp;

static void ws_run(fp *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
        f->p++;
}

/* Skips whitespace.  Compact text has none: one test, inline, for the
 * usual case (every whitespace byte is below '!'). */
static inline void ws(fp *f)
{
    if (f->p < f->end && *f->p > ' ')
        return;
    ws_run(f);
}

/* Length of a valid UTF-8 sequence at p (its first byte >= 0x80), 0 when
 * it is not one: overlong forms, surrogates and values above U+10FFFF are
 * refused, as jansson refuses them. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

/* The bytes of a string that need a look of their own: '"', '\\', below
 * 0x20, 0x80 and above.  special8() gives the high bit of each such byte
 * among the 8 at p (the usual "has a zero byte" tests on x ^ '"' and
 * x ^ '\\', "has a byte below" on x): it may also mark bytes after a true
 * one, never before, so its lowest bit always marks a true one.  Strings
 * are most of a frame's bytes (46 % of this parser's own instructions
 * went to the byte loop).  The word's first byte must be its lowest: on
 * other machines str() goes byte by byte. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR8 1
#else
#define SWAR8 0
#endif

static inline uint64_t special8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
    return (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((s - ones) & ~s)) & highs;
}

/* A string at f->p (after its opening quote).  On success *s and *len point at
 * its bytes (in the input, or in f->tmp when it had escapes).  -1: not
 * for the fast path. */
static int str(fp *f, const char **s, size_t *len)
{
    const unsigned char *start = f->p;
    for (;;) {
        if (SWAR8 && f->end - f->p >= 8) {
            uint64_t m = special8(f->p);
            if (!m) {
                f->p += 8;
                continue;
            }
            f->p += (unsigned)__builtin_ctzll(m) >> 3; /* the first special byte */
        }
        if (f->p >= f->end)
            return -1;
        unsigned c = *f->p;
        if (c == '"') {
            *s = (const char *)start;
            *len = (size_t)(f->p - start);
            f->p++;
            return 0;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return -1;
        if (c < 0x80) {
            f->p++;
        } else {
            size_t n = utf8_len(f->p, f->end);
            if (!n)
                return -1;
            f->p += n;
        }
    }
    /* escapes: decode into tmp (never longer than the text) */
    size_t have = (size_t)(f->p - start);
    size_t need = (size_t)(f->end - start);
    if (need > f->tmpcap) {
        char *t = realloc(f->tmp, need);
        if (!t)
            return -1;
        f->tmp = t;
        f->tmpcap = need;
    }
    memcpy(f->tmp, start, have);
    size_t o = have;
    for (;;) {
        if (f->p >= f->end)
            return -1;
        unsigned c = *f->p;
        if (c == '"') {
            f->p++;
            *s = f->tmp;
            *len = o;
            return 0;
        }
        if (c == '\\') {
            if (f->end - f->p < 2)
                return -1;
            char d;
            switch (f->p[1]) {
            case '"': d = '"'; break;
            case '\\': d = '\\'; break;
            case '/': d = '/'; break;
            case 'b': d = '\b'; break;
            case 'f': d = '\f'; break;
            case 'n': d = '\n'; break;
            case 'r': d = '\r'; break;
            case 't': d = '\t'; break;
            default: return -1; /* \u and the invalid ones: jansson's */
            }
            f->tmp[o++] = d;
            f->p += 2;
        } else if (c < 0x20) {
            return -1;
        } else if (c < 0x80) {
            f->tmp[o++] = (char)c;
            f->p++;
        } else {
            size_t n = utf8_len(f->p, f->end);
            if (!n)
                return -1;
            memcpy(f->tmp + o, f->p, n);
            o += n;
            f->p += n;
        }
    }
}

static json_t *value(fp *f, int depth);

static json_t *number(fp *f)
{
    const unsigned char *q = f->p;
    int neg = 0;
    if (q < f->end && *q == '-') {
        neg = 1;
        q++;
    }
    const unsigned char *d0 = q;
    json_int_t v = 0;
    while (q < f->end && *q >= '0' && *q <= '9') {
        if (q - d0 == FAST_MAX_DIGITS)
            return NULL; /* a 19th digit could overflow: jansson's */
        v = v * 10 + (*q - '0');
        q++;
    }
    size_t nd = (size_t)(q - d0);
    if (nd == 0 || (nd > 1 && *d0 == '0'))
        return NULL; /* "-", "01": jansson's error */
    if (q < f->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return NULL; /* reals: jansson's strtod */
    f->p = q;
    return json_integer(neg ? -v : v);
}

static int lit(fp *f, const char *w, size_t n)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0)
        return -1;
    f->p += n;
    return 0;
}

/* After a member or element: 1 when a ',' says another follows, 0 when
 * the container's close consumed it, -1 for anything else (jansson's). */
static int next_item(fp *f, char close)
{
    ws(f);
    if (f->p >= f->end)
        return -1;
    if (*f->p == ',') {
        f->p++;
        ws(f);
        return 1;
    }
    if (*f->p == (unsigned char)close) {
        f->p++;
        return 0;
    }
    return -1;
}

static json_t *object(fp *f, int depth)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    f->p++; /* { */
    ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t kl;
        if (f->p >= f->end || *f->p != '"')
            goto fail;
        f->p++;
        if (str(f, &k, &kl))
            goto fail;
        /* a key in tmp is overwritten by the value's strings: copy it
         * (keys with escapes are rare) */
        char kbuf[128];
        char *kheap = NULL;
        if (k == f->tmp) {
            if (kl < sizeof kbuf) {
                memcpy(kbuf, k, kl);
                k = kbuf;
            } else {
                kheap = malloc(kl);
                if (!kheap)
                    goto fail;
                memcpy(kheap, k, kl);
                k = kheap;
            }
        }
        ws(f);
        if (f->p >= f->end || *f->p != ':') {
            free(kheap);
            goto fail;
        }
        f->p++;
        ws(f);
        json_t *v = value(f, depth + 1);
        /* A duplicate key: jansson decides (error, or which value stays).
         * The set replaces a duplicate's value, so the size not growing
         * tells one, without a lookup of every key before its set (the
         * set looks it up anyway). */
        size_t before = json_object_size(o);
        if (!v || json_object_setn_new_nocheck(o, k, kl, v) || json_object_size(o) == before) {
            free(kheap);
            goto fail;
        }
        free(kheap);
        int more = next_item(f, '}');
        if (more < 0)
            goto fail;
        if (!more)
            return o;
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *array(fp *f, int depth)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    f->p++; /* [ */
    ws(f);
    if (f->p < f->end && *f->p == ']') {
        f->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(f, depth + 1);
        if (!v || json_array_append_new(a, v))
            goto fail;
        int more = next_item(f, ']');
        if (more < 0)
            goto fail;
        if (!more)
            return a;
    }
fail:
    json_decref(a);
    return NULL;
}

static json_t *value(fp *f, int depth)
{
    if (depth > FAST_MAX_DEPTH || f->p >= f->end)
        return NULL;
    switch (*f->p) {
    case '{':
        return object(f, depth);
    case '[':
        return array(f, depth);
    case '"': {
        const char *s;
        size_t n;
        f->p++;
        if (str(f, &s, &n))
            return NULL;
        /* checked above: valid UTF-8 and no NUL (only \u0000 could make
         * one, and \u is jansson's) */
        return json_stringn_nocheck(s, n);
    }
    case 't':
        return lit(f, "true", 4) ? NULL : json_true();
    case 'f':
        return lit(f, "false", 5) ? NULL : json_false();
    case 'n':
        return lit(f, "null", 4) ? NULL : json_null();
    default:
        if (*f->p == '-' || (*f->p >= '0' && *f->p <= '9'))
            return number(f);
        return NULL;
    }
}

/* The fast parse of a whole text, or NULL for "not mine". */
static json_t *fast(const char *buf, size_t len, size_t flags)
{
    if ((flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)) || !buf)
        return NULL;
    fp f = {(const unsigned char *)buf, (const unsigned char *)buf + len, NULL, 0};
    ws(&f);
    if (f.p >= f.end)
        return NULL;
    if (!(flags & JSON_DECODE_ANY) && *f.p != '{' && *f.p != '[')
        return NULL;
    json_t *v = value(&f, 1);
    free(f.tmp);
    if (!v)
        return NULL;
    ws(&f);
    if (f.p != f.end) { /* trailing data: jansson's error */
        json_decref(v);
        return NULL;
    }
    return v;
}

/* What jansson leaves in err after a success: no text, no line or column,
 * and the position after the last byte it read (the whole input). */
static void ok_error(json_error_t *err, const char *source, size_t len)
{
    if (!err)
        return;
    err->text[0] = '\0';
    err->line = -1;
    err->column = -1;
    err->position = (int)len;
    snprintf(err->source, sizeof err->source, "%s", source);
}

json_t *hp_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    json_t *v = fast(buf, len, flags);
    if (!v)
        return json_loadb(buf, len, flags, err);
    ok_error(err, "<buffer>", len);
    return v;
}

json_t *hp_json_loads(const char *text, size_t flags, json_error_t *err)
{
    json_t *v = text ? fast(text, strlen(text), flags) : NULL;
    if (!v)
        return json_loads(text, flags, err);
    ok_error(err, "<string>", strlen(text));
    return v;
}

/*
 * hp_jdump.c - compact, key-sorted JSON writer, byte-identical to jansson's
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY).  The contract
 * and the reasons are in hp_jdump.h.
 */
#include "hp_jdump.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys of all the objects on the current path share one scratch array:
 * this many on the stack, the rest on the heap. */
#define JD_STACK_KEYS 48
/* Objects with at most this many keys are sorted by insertion (no call
 * through a comparator pointer); larger ones by qsort(). */
#define JD_INSERTION_MAX 24

typedef struct jd_key {
    const char *k;
    size_t n;
    json_t *v;
} jd_key;

/* The key scratch: a stack of the open objects' keys. */
typedef struct jd_keys {
    jd_key *ks;
    size_t kn;   /* entries in use */
    size_t kcap;
    int heap;    /* ks was malloc'd */
    int sorted;  /* sort each object's keys (else keep the object's order) */
} jd_keys;

/* ---- the output buffer (hp_jw) ---------------------------------------- */

void hp_jw_init(hp_jw *w)
{
    w->p = w->buf;
    w->n = 0;
    w->cap = sizeof w->buf;
    w->heap = 0;
    w->failed = 0;
}

static int grow(hp_jw *b, size_t more)
{
    size_t want = b->n + more;
    if (want < b->n)
        return -1;
    size_t cap = b->cap * 2;
    while (cap < want) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *q;
    if (b->heap) {
        q = realloc(b->p, cap);
        if (!q)
            return -1;
    } else {
        q = malloc(cap);
        if (!q)
            return -1;
        memcpy(q, b->p, b->n);
    }
    b->p = q;
    b->cap = cap;
    b->heap = 1;
    return 0;
}

/* Room for `more` bytes at b->p + b->n; 0, or -1 out of memory. */
static inline int room(hp_jw *b, size_t more)
{
    return b->cap - b->n >= more ? 0 : grow(b, more);
}

static inline int put(hp_jw *b, const char *s, size_t len)
{
    if (room(b, len))
        return -1;
    memcpy(b->p + b->n, s, len);
    b->n += len;
    return 0;
}

static inline int put1(hp_jw *b, char c)
{
    if (room(b, 1))
        return -1;
    b->p[b->n++] = c;
    return 0;
}

/* ---- strings -------------------------------------------------------- */

/* What a byte starts, for the string scan: 0 a character written as it
 * is, 1 one that is escaped (", \ and < 0x20), 2-4 the lead byte of a UTF-8
 * sequence of that length, 5 a byte no valid UTF-8 character starts with
 * (continuation bytes, the overlong leads C0 C1, F5 and above): jansson's
 * utf8_check_first(). */
static const unsigned char byte_class[256] = {
    /* 0x00 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x10 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x20 */ 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    /* 0x60 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x70 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80 */ 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* 0x90 */ 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* 0xA0 */ 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* 0xB0 */ 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* 0xC0 */ 5, 5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xD0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xE0 */ 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* 0xF0 */ 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
};

/* 1 when the k bytes at s (k = 2..4, s[0] a lead of that length) are one
 * valid character: continuation bytes, no overlong form, no UTF-16
 * surrogate, at most U+10FFFF (jansson's utf8_check_full()). */
static int utf8_char_ok(const unsigned char *s, unsigned k)
{
    uint32_t v = s[0] & (k == 2 ? 0x1Fu : k == 3 ? 0x0Fu : 0x07u);
    for (unsigned i = 1; i < k; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (k == 2)
        return v >= 0x80;
    if (k == 3)
        return v >= 0x800 && (v < 0xD800 || v > 0xDFFF);
    return v >= 0x10000 && v <= 0x10FFFF;
}

static const char hex_upper[] = "0123456789ABCDEF";

/* 1 when the 8 bytes at p are all written as they are: none below 0x20,
 * none 0x80 or above, no '"' and no '\\' (the usual "has a zero byte"
 * tests, on x, x ^ '"' and x ^ '\\'; a false alarm can only follow a true
 * one, and either way the caller then looks byte by byte). */
static inline int plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
    uint64_t bad = x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((s - ones) & ~s);
    return (bad & highs) == 0;
}

/*
 * Writes the string s[0..len) quoted.  Returns 0; 1 when s is not valid
 * UTF-8, having written what jansson's dump_string() has written by then:
 * the opening quote and everything up to and including the last escape
 * before the bad byte (jansson flushes plain runs only at an escape or at
 * the end); -1 out of memory.
 */
static int put_str_any(hp_jw *b, const char *str, size_t len)
{
    const unsigned char *p = (const unsigned char *)str, *end = p + len;
    const unsigned char *run = p; /* start of the plain run not yet written */

    if (put1(b, '"'))
        return -1;
    while (p < end) {
        if (end - p >= 8 && plain8(p)) {
            p += 8;
            continue;
        }
        /* A special byte is among the next 8 (or the tail is short): go
         * byte by byte to it. */
        const unsigned char *stop = end - p > 8 ? p + 8 : end;
        while (p < stop && byte_class[*p] == 0)
            p++;
        if (p == stop)
            continue;
        unsigned c = byte_class[*p];
        if (c >= 2) {
            if (c == 5 || (size_t)(end - p) < c || !utf8_char_ok(p, c))
                return 1;
            p += c;
            continue;
        }
        /* An escape: the run before it, then its form. */
        if (room(b, (size_t)(p - run) + 6))
            return -1;
        memcpy(b->p + b->n, run, (size_t)(p - run));
        b->n += (size_t)(p - run);
        char *o = b->p + b->n;
        o[0] = '\\';
        switch (*p) {
        case '"': o[1] = '"'; b->n += 2; break;
        case '\\': o[1] = '\\'; b->n += 2; break;
        case '\b': o[1] = 'b'; b->n += 2; break;
        case '\f': o[1] = 'f'; b->n += 2; break;
        case '\n': o[1] = 'n'; b->n += 2; break;
        case '\r': o[1] = 'r'; b->n += 2; break;
        case '\t': o[1] = 't'; b->n += 2; break;
        default:
            o[1] = 'u';
            o[2] = '0';
            o[3] = '0';
            o[4] = hex_upper[*p >> 4];
            o[5] = hex_upper[*p & 0xF];
            b->n += 6;
            break;
        }
        run = ++p;
    }
    if (room(b, (size_t)(p - run) + 1))
        return -1;
    memcpy(b->p + b->n, run, (size_t)(p - run));
    b->n += (size_t)(p - run);
    b->p[b->n++] = '"';
    return 0;
}

/* JD_PLAIN_MAX: strings up to this long first try the plain path (a
 * longer one with an escape late in it would be scanned twice). */
#define JD_PLAIN_MAX 256

/*
 * put_str_any(), with a shortcut for the usual string: short, and every
 * byte written as it is (no escape, ASCII).  Such a string is checked and
 * copied with one room test (keys and values were 100,000 calls a suite
 * run, most of them a few bytes long); anything else goes to
 * put_str_any(), which writes from the same place, so what the shortcut
 * put past b->n does not count.
 */
static int put_str(hp_jw *b, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len <= JD_PLAIN_MAX && room(b, len + 2) == 0) {
        char *o = b->p + b->n;
        if (len >= 8) {
            /* words, then the last 8 bytes (overlapping) for the tail */
            size_t i = 0;
            for (; i + 8 <= len; i += 8)
                if (!plain8(s + i))
                    return put_str_any(b, str, len);
            if (i < len && !plain8(s + len - 8))
                return put_str_any(b, str, len);
            memcpy(o + 1, s, len);
        } else {
            for (size_t i = 0; i < len; i++) {
                if (byte_class[s[i]])
                    return put_str_any(b, str, len);
                o[1 + i] = (char)s[i];
            }
        }
        o[0] = '"';
        o[len + 1] = '"';
        b->n += len + 2;
        return 0;
    }
    return put_str_any(b, str, len);
}

/* ---- numbers -------------------------------------------------------- */

static int put_int(hp_jw *b, json_int_t i)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *q = e;
    /* Through unsigned so that the most negative value needs no special
     * case. */
    unsigned long long u = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0)
        *--q = '-';
    return put(b, q, (size_t)(e - q));
}

/* jansson's jsonp_dtostr() at precision 0 (its printf build): "%.17g",
 * the locale's decimal point back to '.', ".0" when neither '.' nor 'e'
 * is there, and the exponent without '+' and leading zeros.  json_real()
 * refuses inf and nan, so d is finite. */
static int put_real(hp_jw *b, double d)
{
    char tmp[64];
    int r = snprintf(tmp, sizeof tmp, "%.17g", d);
    if (r < 0 || (size_t)r >= sizeof tmp - 3)
        return -1;
    size_t len = (size_t)r;
    char point = localeconv()->decimal_point[0];
    if (point != '.' && point) {
        char *pos = memchr(tmp, point, len);
        if (pos)
            *pos = '.';
    }
    char *e = memchr(tmp, 'e', len);
    if (!e) {
        if (!memchr(tmp, '.', len)) {
            tmp[len++] = '.';
            tmp[len++] = '0';
        }
        return put(b, tmp, len);
    }
    /* e+17 -> e17, e-07 -> e-7 */
    char *from = e + 1, *to = e + 1;
    if (*from == '-')
        *to++ = *from++;
    else if (*from == '+')
        from++;
    while (*from == '0' && from + 1 < tmp + len)
        from++;
    size_t tail = (size_t)(tmp + len - from);
    memmove(to, from, tail);
    len = (size_t)(to - tmp) + tail;
    return put(b, tmp, len);
}

/* ---- containers ----------------------------------------------------- */

/* jansson's order: bytes compared unsigned, then the shorter first. */
static int key_cmp(const jd_key *a, const jd_key *b)
{
    size_t m = a->n < b->n ? a->n : b->n;
    int r = memcmp(a->k, b->k, m);
    if (r)
        return r;
    return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

static int key_qcmp(const void *a, const void *b)
{
    return key_cmp(a, b);
}

static void sort_keys(jd_key *k, size_t n)
{
    if (n > JD_INSERTION_MAX) {
        qsort(k, n, sizeof *k, key_qcmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        jd_key t = k[i];
        size_t j = i;
        /* Most keys differ in their first byte: test it before memcmp. */
        while (j > 0) {
            const jd_key *q = &k[j - 1];
            unsigned char c0 = q->n ? (unsigned char)q->k[0] : 0;
            unsigned char c1 = t.n ? (unsigned char)t.k[0] : 0;
            int gt = q->n && t.n && c0 != c1 ? c0 > c1 : key_cmp(q, &t) > 0;
            if (!gt)
                break;
            k[j] = *q;
            j--;
        }
        k[j] = t;
    }
}

/* Room for `more` entries on the key scratch; 0 or -1. */
static int keys_room(jd_keys *b, size_t more)
{
    if (b->kcap - b->kn >= more)
        return 0;
    size_t cap = b->kcap * 2;
    while (cap < b->kn + more) {
        if (cap > SIZE_MAX / 2 / sizeof(jd_key))
            return -1;
        cap *= 2;
    }
    jd_key *q;
    if (b->heap) {
        q = realloc(b->ks, cap * sizeof *q);
        if (!q)
            return -1;
    } else {
        q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        memcpy(q, b->ks, b->kn * sizeof *q);
    }
    b->ks = q;
    b->kcap = cap;
    b->heap = 1;
    return 0;
}

static int put_value(hp_jw *b, jd_keys *ks, const json_t *v, unsigned depth,
                     const json_t *mark);

/*
 * Containers detect a cycle without a set of parents: each compares itself
 * with one ancestor, the container at the last depth that was a power of
 * two (Brent's cycle finding).  Without a cycle nothing is ever equal to an
 * ancestor.  With one, the walk never returns from it and follows the same
 * children round and round (the walk from a given container is always the
 * same), so the path becomes periodic and meets its mark within twice its
 * period past the cycle's start: the dump fails, as jansson's does (the
 * whole result is NULL either way, so where it is noticed does not matter).
 */
static inline const json_t *child_mark(const json_t *v, unsigned depth, const json_t *mark)
{
    return (depth & (depth - 1)) == 0 ? v : mark;
}

static int put_array(hp_jw *b, jd_keys *ks, const json_t *a, unsigned depth,
                     const json_t *mark)
{
    if (a == mark)
        return -1;
    size_t n = json_array_size(a);
    if (n == 0)
        return put(b, "[]", 2);
    const json_t *m = child_mark(a, depth, mark);
    if (put1(b, '['))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (i && put1(b, ','))
            return -1;
        if (put_value(b, ks, json_array_get(a, i), depth + 1, m))
            return -1;
    }
    return put1(b, ']');
}

static int put_object(hp_jw *b, jd_keys *ks, const json_t *o, unsigned depth,
                      const json_t *mark)
{
    if (o == mark)
        return -1;
    size_t n = json_object_size(o);
    if (n == 0)
        return put(b, "{}", 2);
    const json_t *m = child_mark(o, depth, mark);
    if (keys_room(ks, n))
        return -1;
    /* This object's keys live at ks[base..base+n) while it is written; its
     * children push theirs above and pop them. */
    size_t base = ks->kn, got = 0;
    for (void *it = json_object_iter((json_t *)o); it && got < n;
         it = json_object_iter_next((json_t *)o, it), got++) {
        jd_key *k = &ks->ks[base + got];
        k->k = json_object_iter_key(it);
        k->n = json_object_iter_key_len(it);
        k->v = json_object_iter_value(it);
    }
    ks->kn = base + got;
    if (ks->sorted)
        sort_keys(ks->ks + base, got);
    int rc = put1(b, '{');
    for (size_t i = 0; i < got && !rc; i++) {
        /* Read through ks->ks each time: a child may move the scratch. */
        const jd_key k = ks->ks[base + i];
        if (i)
            rc = put1(b, ',');
        /* A key that is not UTF-8 leaves a broken key and goes on:
         * jansson ignores dump_string()'s result for keys. */
        if (!rc && put_str(b, k.k, k.n) < 0)
            rc = -1;
        if (!rc)
            rc = put1(b, ':');
        if (!rc)
            rc = put_value(b, ks, k.v, depth + 1, m);
    }
    ks->kn = base;
    return rc ? -1 : put1(b, '}');
}

static int put_value(hp_jw *b, jd_keys *ks, const json_t *v, unsigned depth,
                     const json_t *mark)
{
    if (!v)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(b, ks, v, depth, mark);
    case JSON_ARRAY:
        return put_array(b, ks, v, depth, mark);
    case JSON_STRING:
        return put_str(b, json_string_value(v), json_string_length(v)) ? -1 : 0;
    case JSON_INTEGER:
        return put_int(b, json_integer_value(v));
    case JSON_REAL:
        return put_real(b, json_real_value(v));
    case JSON_TRUE:
        return put(b, "true", 4);
    case JSON_FALSE:
        return put(b, "false", 5);
    case JSON_NULL:
        return put(b, "null", 4);
    }
    return -1;
}

/* ---- the pieces and the entry points -------------------------------- */

void hp_jw_raw(hp_jw *w, const char *s, size_t n)
{
    if (!w->failed && put(w, s, n))
        w->failed = 1;
}

int hp_jw_str(hp_jw *w, const char *s, size_t n)
{
    if (w->failed)
        return -1;
    size_t at = w->n;
    int rc = put_str(w, s, n);
    if (rc == 1)
        w->n = at; /* not UTF-8: take back the partial string */
    else if (rc)
        w->failed = 1;
    return rc;
}

void hp_jw_int(hp_jw *w, json_int_t i)
{
    if (!w->failed && put_int(w, i))
        w->failed = 1;
}

static void jw_value(hp_jw *w, const json_t *v, int sorted)
{
    jd_key keys[JD_STACK_KEYS];
    jd_keys ks = {keys, 0, JD_STACK_KEYS, 0, sorted};
    if (!w->failed && put_value(w, &ks, v, 1, NULL))
        w->failed = 1;
    if (ks.heap)
        free(ks.ks);
}

void hp_jw_value(hp_jw *w, const json_t *v)
{
    jw_value(w, v, 1);
}

char *hp_jw_take(hp_jw *w, size_t *lenp)
{
    char *out = NULL;
    if (!w->failed && !put1(w, '\0')) {
        if (w->heap) {
            /* Give back the doubling's slack: results are often kept. */
            out = realloc(w->p, w->n);
            if (!out)
                out = w->p;
            w->heap = 0;
        } else if ((out = malloc(w->n)) != NULL) {
            memcpy(out, w->p, w->n);
        }
        if (out && lenp)
            *lenp = w->n - 1;
    }
    if (w->heap)
        free(w->p);
    hp_jw_init(w);
    return out;
}

char *hp_jdump_wrap(const char *pre, const json_t *v, const char *post, size_t *lenp)
{
    hp_jw w;
    if (!v)
        return NULL;
    hp_jw_init(&w);
    if (pre)
        hp_jw_raw(&w, pre, strlen(pre));
    hp_jw_value(&w, v);
    if (post)
        hp_jw_raw(&w, post, strlen(post));
    return hp_jw_take(&w, lenp);
}

char *hp_jdump(const json_t *v, size_t *lenp)
{
    return hp_jdump_wrap(NULL, v, NULL, lenp);
}

char *hp_jdump_ordered(const json_t *v, size_t *lenp)
{
    hp_jw w;
    if (!v)
        return NULL;
    hp_jw_init(&w);
    jw_value(&w, v, 0);
    return hp_jw_take(&w, lenp);
}

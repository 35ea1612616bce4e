/*
 * Unit tests for protocol/hp_jload.c: hp_json_loadb() must answer exactly
 * what json_loadb() answers, for every input and flag: the same tree (types,
 * values, key order) or the same failure (NULL and the same error).  The
 * test compares the two on hand-picked edge cases and on 100,000 texts
 * generated from a fixed seed, valid ones and one-byte corruptions of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_jload.h"

/* Strict sameness: type, value, key order (json_equal ignores order). */
static int same(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);
        while (ia && ib) {
            size_t la = json_object_iter_key_len(ia), lb = json_object_iter_key_len(ib);
            if (la != lb || memcmp(json_object_iter_key(ia), json_object_iter_key(ib), la) ||
                !same(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
            ia = json_object_iter_next((json_t *)a, ia);
            ib = json_object_iter_next((json_t *)b, ib);
        }
        return !ia && !ib;
    }
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL:
        return !memcmp(&(double){json_real_value(a)}, &(double){json_real_value(b)},
                       sizeof(double));
    default:
        return 1;
    }
}

static const size_t FLAGS[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY,
                               JSON_REJECT_DUPLICATES | JSON_DECODE_ANY};

/* Both readers on buf with every flag set; fails the test on a difference. */
static void check(const char *buf, size_t len)
{
    for (size_t k = 0; k < sizeof FLAGS / sizeof *FLAGS; k++) {
        json_error_t ea, eb;
        memset(&ea, 0x5a, sizeof ea);
        memset(&eb, 0x5a, sizeof eb);
        json_t *a = hp_json_loadb(buf, len, FLAGS[k], &ea);
        json_t *b = json_loadb(buf, len, FLAGS[k], &eb);
        int ok = (!a && !b) || (a && b && same(a, b));
        ok = ok && !strcmp(ea.text, eb.text) && !strcmp(ea.source, eb.source) &&
             ea.line == eb.line && ea.column == eb.column && ea.position == eb.position;
        if (!ok) {
            print_error("differ (flags %zu) on %zu bytes: %.*s\n fast: %s\n jansson: %s\n",
                        FLAGS[k], len, (int)len, buf, a ? "tree" : ea.text,
                        b ? "tree" : eb.text);
            fail();
        }
        json_decref(a);
        json_decref(b);
    }
}

static void check_s(const char *s)
{
    check(s, strlen(s));
    /* and through the NUL-terminated entry */
    for (size_t k = 0; k < sizeof FLAGS / sizeof *FLAGS; k++) {
        json_error_t ea, eb;
        json_t *a = hp_json_loads(s, FLAGS[k], &ea);
        json_t *b = json_loads(s, FLAGS[k], &eb);
        assert_true((!a && !b && !strcmp(ea.text, eb.text)) || (a && b && same(a, b)));
        assert_string_equal(ea.source, eb.source);
        json_decref(a);
        json_decref(b);
    }
}

static void test_edges(void **st)
{
    (void)st;
    static const char *cases[] = {
        "{}", "[]", " { } ", "{\"a\":1}", "{\"a\":1,\"a\":2}", "{\"b\":1,\"a\":2}",
        "[1,2,3]", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "1", "\"x\"",
        "true", "false", "null", "tru", "nul", "truex", "[true false]", "-", "-0", "0",
        "01", "-01", "1.5", "1e3", "1E3", "-1.0e-3", "123456789012345678",
        "1234567890123456789", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "[\"\\u0041\"]",
        "[\"\\u0000\"]", "{\"\\u0000\":1}", "[\"\\ud83d\\ude00\"]", "[\"\\ud83d\"]",
        "[\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"]", "[\"\\x\"]", "[\"\\", "[\"abc",
        "[\"\x01\"]", "[\"\x7f\"]", "[\"caf\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xc0\x80\"]",
        "[\"\xe0\x80\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]",
        "[\"\xf0\x9f\x98\x80\"]", "[\"\xff\"]", "{\"k\\n\":\"v\\t\"}",
        "{\"k\\n\":1,\"k\\n\":2}", "\xef\xbb\xbf{}", "{} x", "{}\n\t\r ", "[[[[[]]]]]",
        "", " ", "[1 2]", "{\"a\":{\"b\":[1,{\"c\":null}]}}", "[1.0]", "[-0.0]",
        "[1e400]", "{\"a\":\"\\u00e9\",\"b\":2}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_s(cases[i]);
    /* NUL inside the buffer, and deep nesting past the fast path's limit */
    check("[\"a\0b\"]", 7);
    check("{\"a\":1}\0", 8);
    char deep[4200];
    for (int d = 60; d < 2100; d += 7) {
        size_t n = 0;
        for (int i = 0; i < d; i++)
            deep[n++] = '[';
        for (int i = 0; i < d; i++)
            deep[n++] = ']';
        check(deep, n);
    }
}

/* ---- generated texts ---------------------------------------------------- */

static uint64_t rs = 0x243F6A8885A308D3ULL;
static unsigned rnd(unsigned n)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (unsigned)(rs % n);
}

typedef struct { char *b; size_t n, cap; } buf;
static void put(buf *o, const char *s, size_t n)
{
    if (o->n + n + 1 > o->cap) {
        o->cap = (o->n + n + 1) * 2;
        o->b = realloc(o->b, o->cap);
        assert_non_null(o->b);
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
}
static void puts_(buf *o, const char *s) { put(o, s, strlen(s)); }

static void gws(buf *o)
{
    static const char *w[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
    puts_(o, w[rnd(7)]);
}

static void gstr(buf *o)
{
    static const char *pieces[] = {
        "a", "b", "key", "Milk", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b", "\\f",
        "\\r", "\\u0041", "\\u00e9", "\\u0000", "\\ud83d\\ude00", "\xc3\xa9",
        "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xed\xa0\x80", "\x01", "~", "\x7f",
    };
    put(o, "\"", 1);
    int n = (int)rnd(5);
    for (int i = 0; i < n; i++)
        puts_(o, pieces[rnd(rnd(4) ? 13 : sizeof pieces / sizeof *pieces)]);
    put(o, "\"", 1);
}

static void gval(buf *o, int depth)
{
    unsigned k = depth > 5 ? 3 + rnd(6) : rnd(9);
    static const char *nums[] = {"0", "1", "-1", "42", "-0", "1234567890", "00", "1.5",
                                 "-2e10", "123456789012345678", "99999999999999999999",
                                 "1e", "-", "0.1"};
    switch (k) {
    case 0:
    case 1: {
        put(o, "{", 1);
        gws(o);
        int n = (int)rnd(5);
        for (int i = 0; i < n; i++) {
            if (i) {
                put(o, ",", 1);
                gws(o);
            }
            if (rnd(3))
                gstr(o);
            else /* few short keys: duplicates happen */
                puts_(o, rnd(2) ? "\"a\"" : "\"b\"");
            gws(o);
            put(o, ":", 1);
            gws(o);
            gval(o, depth + 1);
            gws(o);
        }
        put(o, "}", 1);
        break;
    }
    case 2: {
        put(o, "[", 1);
        gws(o);
        int n = (int)rnd(5);
        for (int i = 0; i < n; i++) {
            if (i) {
                put(o, ",", 1);
                gws(o);
            }
            gval(o, depth + 1);
            gws(o);
        }
        put(o, "]", 1);
        break;
    }
    case 3:
    case 4:
        gstr(o);
        break;
    case 5:
        puts_(o, nums[rnd(rnd(3) ? 6 : sizeof nums / sizeof *nums)]);
        break;
    case 6:
        puts_(o, "true");
        break;
    case 7:
        puts_(o, "false");
        break;
    default:
        puts_(o, "null");
        break;
    }
}

static void test_generated(void **st)
{
    (void)st;
    buf o = {0};
    static const char junk[] = "{}[]\",:\\ 0-eu\x80\xc3";
    for (int i = 0; i < 100000; i++) {
        o.n = 0;
        gws(&o);
        gval(&o, rnd(4) ? 0 : 1);
        gws(&o);
        if (rnd(3) == 0 && o.n) { /* one byte changed, dropped or added */
            size_t at = rnd((unsigned)o.n);
            switch (rnd(3)) {
            case 0:
                o.b[at] = junk[rnd(sizeof junk - 1)];
                break;
            case 1:
                memmove(o.b + at, o.b + at + 1, o.n - at - 1);
                o.n--;
                break;
            default:
                put(&o, " ", 1);
                memmove(o.b + at + 1, o.b + at, o.n - at - 1);
                o.b[at] = junk[rnd(sizeof junk - 1)];
                break;
            }
        }
        check(o.b, o.n);
    }
    free(o.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

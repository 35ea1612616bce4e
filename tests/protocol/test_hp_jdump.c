/* Unit tests for protocol/hp_jdump.c: the same bytes as jansson's
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) (and without
 * JSON_SORT_KEYS for hp_jdump_ordered), on
 * hand-picked edge cases and on many generated trees (jd_gen.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_jdump.h"
#include "hp_msg.h"
#include "hp_task.h"
#include "jd_gen.h"

#define JANSSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)

/* Compares both writers on v; returns 1 when jansson gave a text, 0 when
 * both gave NULL.  Fails the test on any difference. */
static int same(const json_t *v)
{
    char *want = json_dumps(v, JANSSON_FLAGS);
    size_t len = 12345;
    char *got = hp_jdump(v, &len);
    if (!want) {
        if (got)
            fail_msg("jansson: NULL, hp_jdump: %s", got);
        /* Unsorted fails the same way (a broken key fails neither). */
        want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        got = hp_jdump_ordered(v, NULL);
        if (want || got)
            fail_msg("unsorted: jansson: %s, hp_jdump_ordered: %s", want ? want : "NULL",
                     got ? got : "NULL");
        return 0;
    }
    if (!got)
        fail_msg("jansson: %s, hp_jdump: NULL", want);
    if (strcmp(want, got) != 0)
        fail_msg("jansson: %s\nhp_jdump: %s", want, got);
    assert_int_equal(len, strlen(want));
    char *via = hp_json_dump(v);
    assert_string_equal(via, want);
    free(via);
    free(want);
    free(got);
    /* And unsorted: the object's own key order. */
    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    got = hp_jdump_ordered(v, &len);
    if (!want || !got || strcmp(want, got) != 0)
        fail_msg("unsorted: jansson: %s\nhp_jdump_ordered: %s", want ? want : "NULL",
                 got ? got : "NULL");
    assert_int_equal(len, strlen(want));
    free(want);
    free(got);
    return 1;
}

static void same_text(const char *json)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        fail_msg("bad test JSON %s: %s", json, e.text);
    assert_int_equal(same(v), 1);
    json_decref(v);
}

static void test_scalars(void **st)
{
    (void)st;
    const char *texts[] = {
        "null", "true", "false", "0", "-0", "1", "-1", "9223372036854775807",
        "-9223372036854775808", "\"\"", "\"a\"", "\"\\u0000\"", "\"\\u001f\\u007f\"",
        "\"\\\"\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20ac\\ud83d\\ude00\\uffff\\udbff\\udfff\"",
        "0.0", "-0.0", "0.1", "1e-7", "1e300", "-1e300", "1.5", "100.0", "1e16", "1e17",
        "5e-324", "1.7976931348623157e308", "2.2250738585072014e-308", "1e-5", "1e-4",
        "123456789012345678.0", "0.30000000000000004", "1e21", "1E+2", "12.5e-3",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        same_text(texts[i]);
    /* Reals built in C, not parsed. */
    const double reals[] = {-0.0, 0.1, 1e-7, 1e300, 4.0, -3.0, 1.0 / 3.0, 1e-310, 6.02214076e23};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        json_t *r = json_real(reals[i]);
        assert_int_equal(same(r), 1);
        json_decref(r);
    }
    /* Every byte below 0x20 and each escape, alone and in runs. */
    for (int c = 0; c < 0x80; c++) {
        char s[4] = {'x', (char)c, 'y', 0};
        json_t *v = json_stringn(s, 3);
        assert_int_equal(same(v), 1);
        json_decref(v);
    }
}

static void test_containers(void **st)
{
    (void)st;
    same_text("{}");
    same_text("[]");
    same_text("[[],{},[[]],{\"a\":{}},{\"\":[]}]");
    same_text("{\"b\":1,\"a\":{\"d\":[1,2],\"c\":\"\\u00e9\"},\"\":null,\"B\":true}");
    /* Keys with NUL (the parser refuses them; json_object_setn does not). */
    json_t *nul = json_object();
    const char *const nk[] = {"a\0b", "a", "a\0", "\x01\x1f\"", "\0", "", "\0\0", "b\0\n"};
    const size_t nl[] = {3, 1, 2, 3, 1, 0, 2, 3};
    for (size_t i = 0; i < sizeof nl / sizeof *nl; i++)
        json_object_setn_new(nul, nk[i], nl[i], json_integer((json_int_t)i));
    assert_int_equal(json_object_size(nul), 8);
    assert_int_equal(same(nul), 1);
    json_decref(nul);
    same_text("{\"\\u00e9\":1,\"e\":2,\"\\u00ff\":3,\"\\u0100\":4,\"\\ud83d\\ude00\":5,\"~\":6}");
    same_text("{\"ab\":1,\"a\":2,\"abc\":3,\"b\":4,\"aa\":5}");
    /* Many keys: past the insertion sort and the stack scratch, nested so
     * that the inner objects push their keys on top of the outer's. */
    json_t *o = json_object();
    for (int i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", (i * 7919) % 300);
        json_t *in = json_object();
        for (int j = 0; j < (i % 60); j++) {
            char kk[16];
            snprintf(kk, sizeof kk, "%c%d", 'a' + j % 26, j);
            json_object_set_new(in, kk, json_integer(j));
        }
        json_object_set_new(o, k, in);
    }
    assert_int_equal(same(o), 1);
    json_decref(o);
    /* The same child twice is not a cycle. */
    json_t *child = json_pack("{s:[i,i]}", "x", 1, 2);
    json_t *dag = json_pack("{s:O,s:O,s:[O,O]}", "a", child, "b", child, "c", child, child);
    assert_int_equal(same(dag), 1);
    json_decref(dag);
    json_decref(child);
}

/* Long strings and deep trees: the text leaves the stack buffer. */
static void test_large(void **st)
{
    (void)st;
    size_t n = 100000;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i % 7 == 0 ? '\n' : i % 11 == 0 ? '\0' : 'a' + i % 26);
    json_t *v = json_stringn(s, n);
    assert_int_equal(same(v), 1);
    json_t *a = json_pack("[o,s]", v, "tail");
    assert_int_equal(same(a), 1);
    json_decref(a);
    free(s);

    json_t *deep = json_array();
    json_t *cur = deep;
    for (int i = 0; i < 3000; i++) {
        json_t *next = i % 2 ? json_array() : json_object();
        if (json_is_array(cur))
            json_array_append_new(cur, next);
        else
            json_object_set_new(cur, i % 3 ? "k" : "\xc3\xa9", next);
        cur = next;
    }
    assert_int_equal(same(deep), 1);
    json_decref(deep);
}

/* Strings jansson refuses to write (NULL) and keys it writes broken. */
static void test_invalid_utf8(void **st)
{
    (void)st;
    for (size_t i = 0; i < JD_NBAD; i++) {
        const char *b = jd_bad[i];
        char s[32];
        int n = snprintf(s, sizeof s, "ab\n%s\tc", b);
        json_t *v = json_stringn_nocheck(s, (size_t)n);
        assert_int_equal(same(v), 0);
        json_t *in = json_pack("[i,o]", 1, v);
        assert_int_equal(same(in), 0);
        json_decref(in);
        /* As a key: jansson goes on with the broken key. */
        const char *prefixes[] = {"", "ab", "a\nb", "a\"", "\t"};
        for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++) {
            n = snprintf(s, sizeof s, "%s%s%s", prefixes[p], b, i % 2 ? "x\n" : "");
            json_t *o = json_pack("{s:i,s:[]}", "a", 1, "zz", 2);
            json_object_setn_new_nocheck(o, s, (size_t)n, json_integer(7));
            assert_int_equal(same(o), 1);
            json_decref(o);
        }
    }
}

/* A container that holds itself: jansson returns NULL, and so must we
 * (without looping forever), whatever the cycle's length and where it
 * starts. */
static void test_cycles(void **st)
{
    (void)st;
    for (int lead = 0; lead < 20; lead++) {
        for (int len = 2; len < 40; len += (len < 10 ? 1 : 7)) {
            json_t *root = json_array();
            json_t *cur = root;
            json_t *loop_start = NULL;
            for (int i = 0; i < lead + len; i++) {
                json_t *next = (i + len) % 3 ? json_array() : json_object();
                /* Finished siblings before the way on. */
                json_t *sib = json_pack("{s:[i]}", "s", i);
                if (json_is_array(cur)) {
                    json_array_append_new(cur, sib);
                    json_array_append_new(cur, next);
                } else {
                    json_object_set_new(cur, "a", sib);
                    json_object_set_new(cur, "b", next);
                }
                if (i == lead)
                    loop_start = next;
                cur = next;
            }
            /* Close the loop: the last container holds loop_start. */
            if (json_is_array(cur))
                json_array_append(cur, loop_start);
            else
                json_object_set(cur, "c", loop_start);
            assert_int_equal(same(root), 0);
            /* Break it so the tree can be freed. */
            if (json_is_array(cur))
                json_array_clear(cur);
            else
                json_object_clear(cur);
            assert_int_equal(same(root), 1);
            json_decref(root);
        }
    }
}

static void test_wrap(void **st)
{
    (void)st;
    json_t *v = json_pack("[s,i]", "t\"1", 2);
    size_t len = 0;
    char *s = hp_jdump_wrap("{\"locks\":", v, ",\"type\":\"HEARTBEAT\"}", &len);
    assert_string_equal(s, "{\"locks\":[\"t\\\"1\",2],\"type\":\"HEARTBEAT\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    s = hp_jdump_wrap(NULL, v, NULL, NULL);
    assert_string_equal(s, "[\"t\\\"1\",2]");
    free(s);
    assert_null(hp_jdump_wrap("x", NULL, "y", NULL));
    assert_null(hp_jdump(NULL, NULL));
    assert_null(hp_json_dump(NULL));
    json_decref(v);
}

/* The old way of building a frame: the object, then its dump. */
static char *dump_of(json_t *o)
{
    char *s = o ? json_dumps(o, JANSSON_FLAGS) : NULL;
    json_decref(o);
    return s;
}

static void same_str(char *want, char *got)
{
    if (!want || !got) {
        assert_null(want);
        assert_null(got);
        return;
    }
    if (strcmp(got, want) != 0) {
        size_t i = 0;
        while (got[i] == want[i])
            i++;
        fail_msg("differ at %zu: want ...%.60s\ngot ...%.60s", i, want + (i > 20 ? i - 20 : 0),
                 got + (i > 20 ? i - 20 : 0));
    }
    free(want);
    free(got);
}

static int has_nul_key(const json_t *v)
{
    const char *key;
    size_t klen, i;
    json_t *x;
    if (json_is_object(v)) {
        json_object_keylen_foreach((json_t *)v, key, klen, x) {
            if (strlen(key) != klen || has_nul_key(x))
                return 1;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (has_nul_key(x))
                return 1;
        }
    }
    return 0;
}

/* hp_msg.c's builders write what the dump of their object wrote. */
static void test_msg_builders(void **st)
{
    (void)st;
    const int64_t revs[] = {0, 1, 42, 1000000007, INT64_MAX, -1, INT64_MIN};
    const char *texts[] = {NULL, "", "t1", "TASK_UPDATED", "a\"b\\c\n\x01", "\xc3\xa9\xf0\x9f\x98\x80",
                           "cut \xe2\x82", "bad \xff byte", "\xc0\x80", "x\xed\xa0\x80y"};
    const size_t nt = sizeof texts / sizeof *texts;
    for (size_t i = 0; i < sizeof revs / sizeof *revs; i++) {
        json_int_t r = (json_int_t)revs[i];
        same_str(dump_of(json_pack("{s:s, s:I}", "type", "HELLO", "revision", r)),
                 hp_msg_hello(revs[i]));
        same_str(dump_of(json_pack("{s:s, s:I}", "type", "RESYNC_REQUIRED", "revision", r)),
                 hp_msg_resync(revs[i]));
        same_str(dump_of(json_pack("{s:s, s:I, s:I}", "type", "READY", "revision", r,
                                   "heartbeat_interval_ms", (json_int_t)revs[(i + 3) % 7])),
                 hp_msg_ready(revs[i], revs[(i + 3) % 7]));
    }
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; j < nt; j++) {
            const char *code = texts[i], *msg = texts[j];
            same_str(dump_of(json_pack("{s:o, s:o}", "error", hp_json_text(code ? code : "error"),
                                       "message", hp_json_text(msg))),
                     hp_error_body(code, msg));
        }
    }
    /* Events: every pair of texts, payloads from the generator (some of
     * which jansson refuses to write: the frame is NULL then too). */
    unsigned k = 0;
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; j < nt; j++, k++) {
            jd_src s = {NULL, 0, 0, (k + 1) * 0x9E3779B97F4A7C15ULL, 60, 0};
            json_t *payload = k % 5 == 0 ? NULL : jd_gen_value(&s, 0);
            int64_t rev = revs[k % 7];
            json_t *o = json_pack("{s:o, s:o, s:I}", "event_type", hp_json_text(texts[i]),
                                  "entity_id", hp_json_text(texts[j]), "revision", (json_int_t)rev);
            json_object_set(o, "payload", payload ? payload : json_null());
            same_str(dump_of(o), hp_msg_event(texts[i], texts[j], rev, payload));
            if (!has_nul_key(payload)) {
                /* As the builder was: on a deep copy, which jansson 2.14
                 * makes with keys cut at a NUL (a payload never has one:
                 * the parser refuses them). */
                o = json_pack("{s:o, s:o, s:I}", "event_type", hp_json_text(texts[i]),
                              "entity_id", hp_json_text(texts[j]), "revision", (json_int_t)rev);
                json_object_set_new(o, "payload", payload ? json_deep_copy(payload) : json_null());
                same_str(dump_of(o), hp_msg_event(texts[i], texts[j], rev, payload));
            }
            json_decref(payload);
        }
    }
    /* Heartbeats with lock lists, empty or not. */
    for (unsigned n = 0; n < 40; n++) {
        json_t *locks = json_array();
        for (unsigned i = 0; i < n; i++)
            json_array_append_new(locks, json_string(texts[2 + i % 4]));
        json_t *o = json_pack("{s:s, s:O}", "type", "HEARTBEAT", "locks", locks);
        same_str(dump_of(o), hp_msg_heartbeat(locks));
        json_decref(locks);
    }
}

/* The piecewise writer: pieces, a refused piece failing the whole text, a
 * string that is not UTF-8 leaving nothing behind, and a text larger than
 * the struct's own buffer. */
static void test_jw(void **st)
{
    (void)st;
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_raw(&w, "[", 1);
    assert_int_equal(hp_jw_str(&w, "a\0b", 3), 0);
    hp_jw_raw(&w, ",", 1);
    assert_int_equal(hp_jw_str(&w, "ok\n\xff", 4), 1);
    assert_int_equal(hp_jw_str(&w, "\xc3\xa9", 2), 0);
    hp_jw_raw(&w, ",", 1);
    hp_jw_int(&w, INT64_MIN);
    hp_jw_raw(&w, "]", 1);
    size_t len = 0;
    char *s = hp_jw_take(&w, &len);
    assert_string_equal(s, "[\"a\\u0000b\",\"\xc3\xa9\",-9223372036854775808]");
    assert_int_equal(len, strlen(s));
    free(s);

    hp_jw_init(&w);
    hp_jw_raw(&w, "[", 1);
    hp_jw_value(&w, NULL);
    hp_jw_raw(&w, "]", 1);
    assert_null(hp_jw_take(&w, NULL));

    json_t *bad = json_stringn_nocheck("\xff", 1);
    hp_jw_init(&w);
    for (int i = 0; i < 1000; i++)
        hp_jw_raw(&w, "0123456789", 10);
    hp_jw_value(&w, bad);
    assert_int_equal(hp_jw_str(&w, "x", 1), -1);
    assert_null(hp_jw_take(&w, NULL));
    json_decref(bad);

    hp_jw_init(&w);
    for (int i = 0; i < 1000; i++) {
        hp_jw_raw(&w, i ? "," : "[", 1);
        hp_jw_int(&w, i);
    }
    hp_jw_raw(&w, "]", 1);
    s = hp_jw_take(&w, &len);
    json_t *back = json_loads(s, 0, NULL);
    assert_int_equal(json_array_size(back), 1000);
    assert_int_equal(len, strlen(s));
    assert_int_equal(same(back), 1);
    json_decref(back);
    free(s);
}

/* Generated trees, mostly valid, some with a bad string or key. */
static void test_generated(void **st)
{
    (void)st;
    unsigned texts = 0, nulls = 0;
    for (uint64_t seed = 1; seed <= 20000; seed++) {
        jd_src s = {NULL, 0, 0, seed * 0x9E3779B97F4A7C15ULL, seed % 3 ? 0 : 150, 0};
        json_t *v = jd_gen_value(&s, 0);
        if (same(v))
            texts++;
        else
            nulls++;
        json_decref(v);
    }
    /* The generator must mostly make trees jansson can write. */
    assert_true(texts > 17000);
    assert_true(nulls > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_msg_builders),
        cmocka_unit_test(test_jw),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

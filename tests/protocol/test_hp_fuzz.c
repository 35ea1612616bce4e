/*
 * Deterministic robustness tests for the protocol parsers: seeded random
 * and mutated inputs must never crash, leak (run under ASan) or be
 * accepted when they should not.  Also an oracle check of hp_time_parse
 * against timegm().
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"
#include "hp_msg.h"
#include "hp_policy.h"
#include "hp_task.h"
#include "hp_time.h"

#define ITER 20000

static const char *const seeds[] = {
    "{\"type\":\"HELLO\",\"revision\":42}",
    "{\"type\":\"READY\",\"revision\":7,\"heartbeat_interval_ms\":30000}",
    "{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\",\"t2\"]}",
    "{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\",\"revision\":9,\"payload\":{\"a\":[1,2]}}",
    "2026-11-25T09:00:00.250+03:00",
    "1m30s",
    "token=abc eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln",
};

/* Copies a seed and applies a few random byte edits / truncations. */
static size_t mutate(hp_rng *r, const char *seed, char *buf, size_t cap)
{
    size_t n = strlen(seed);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, seed, n);
    int edits = 1 + (int)(hp_rng_next(r) % 4);
    static const char alphabet[] = "{}[]\":,.-+0123456789TZeEyJ\\ aztrue\xff\x00";
    for (int e = 0; e < edits && n > 0; e++) {
        size_t pos = hp_rng_next(r) % n;
        switch (hp_rng_next(r) % 4) {
        case 0:
            buf[pos] = alphabet[hp_rng_next(r) % (sizeof alphabet - 1)];
            break;
        case 1:
            n = pos; /* truncate */
            break;
        case 2:
            if (n + 1 < cap) { /* insert */
                memmove(buf + pos + 1, buf + pos, n - pos);
                buf[pos] = alphabet[hp_rng_next(r) % (sizeof alphabet - 1)];
                n++;
            }
            break;
        default:
            memmove(buf + pos, buf + pos + 1, n - pos - 1); /* delete */
            n--;
            break;
        }
    }
    buf[n] = '\0';
    return n;
}

static void test_msg_parse_fuzz(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 1);
    char buf[512];
    for (int i = 0; i < ITER; i++) {
        const char *seed = seeds[hp_rng_next(&r) % 4];
        size_t n = mutate(&r, seed, buf, sizeof buf);
        hp_msg m;
        char err[128];
        int rc = hp_msg_parse(buf, n, &m, err, sizeof err);
        if (rc == 0) {
            assert_non_null(m.root);
            if (m.type == HP_MSG_HELLO)
                assert_true(m.revision >= 0);
            if (m.type == HP_MSG_EVENT)
                assert_non_null(m.event_type);
        } else {
            assert_null(m.root);
        }
        hp_msg_clear(&m);
    }
}

static void test_time_parse_fuzz(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 2);
    char buf[128];
    for (int i = 0; i < ITER; i++) {
        mutate(&r, seeds[4], buf, sizeof buf);
        int64_t ms;
        if (hp_time_parse(buf, &ms) == 0) {
            /* Anything accepted has the strict shape. */
            assert_true(strlen(buf) >= 20);
            assert_true(buf[4] == '-' && buf[7] == '-' && (buf[10] == 'T' || buf[10] == 't'));
        }
        mutate(&r, seeds[5], buf, sizeof buf);
        int64_t d;
        if (hp_duration_parse(buf, &d) == 0)
            assert_true(d >= 0);
    }
}

/* Random valid civil times agree with glibc's timegm (UTC, no TZ). */
static void test_time_oracle(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 3);
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int i = 0; i < ITER; i++) {
        int y = 1900 + (int)(hp_rng_next(&r) % 300);
        int mo = 1 + (int)(hp_rng_next(&r) % 12);
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int d = 1 + (int)(hp_rng_next(&r) % (unsigned)(dm[mo - 1] + (mo == 2 && leap)));
        int h = (int)(hp_rng_next(&r) % 24), mi = (int)(hp_rng_next(&r) % 60);
        int se = (int)(hp_rng_next(&r) % 60), ms = (int)(hp_rng_next(&r) % 1000);
        int oh = (int)(hp_rng_next(&r) % 24), om = (int)(hp_rng_next(&r) % 60);
        int sign = hp_rng_next(&r) % 2 ? 1 : -1;
        char s[64];
        snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", y, mo, d, h, mi, se,
                 ms, sign > 0 ? '+' : '-', oh, om);
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                        .tm_min = mi, .tm_sec = se};
        int64_t want = ((int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60)) * 1000 + ms;
        int64_t got;
        if (hp_time_parse(s, &got) != 0)
            fail_msg("valid time %s refused", s);
        if (got != want)
            fail_msg("%s: got %lld want %lld", s, (long long)got, (long long)want);
    }
}

static void test_jwt_fuzz(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 4);
    const char *secret = "fuzz-secret";
    char *tok = hp_jwt_mint(secret, "alice", "h1", "d", 1000, 4000000000LL);
    char buf[512];
    int accepted = 0;
    for (int i = 0; i < ITER; i++) {
        mutate(&r, tok, buf, sizeof buf);
        hp_claims c;
        const char *reason;
        char msg[128];
        if (hp_jwt_verify(secret, buf, 2000000, &c, &reason, msg, sizeof msg) == 0) {
            /* Only the exact original may pass. */
            if (strcmp(buf, tok) != 0)
                fail_msg("mutated token accepted: %s", buf);
            accepted++;
        } else {
            assert_non_null(reason);
        }
    }
    free(tok);
    (void)accepted;
}

static void test_redact_fuzz(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 5);
    char *tok = hp_jwt_mint("s", "alice", "h1", NULL, 0, 4000000000LL);
    const char *sig = strrchr(tok, '.') + 1;
    static const char *const around[] = {" ", "=", "?token=", "&", "\"", "Bearer ", "token=\"",
                                         "x", "{\"token\":\"", "%3D", "\n", ",", "'"};
    size_t na = sizeof around / sizeof around[0];
    for (int i = 0; i < ITER; i++) {
        char in[1024], out[4096];
        snprintf(in, sizeof in, "k=v%s%s%sk2=v", around[hp_rng_next(&r) % na], tok,
                 around[hp_rng_next(&r) % na]);
        hp_log_redact(in, out, sizeof out);
        if (strstr(out, sig))
            fail_msg("signature leaked: in=%s out=%s", in, out);
        /* Random garbage never crashes. */
        char g[256];
        size_t n = hp_rng_next(&r) % (sizeof g - 1);
        for (size_t k = 0; k < n; k++) {
            static const char al[] = "eyJ.=token\"\\ aB_-' Bearer:";
            g[k] = al[hp_rng_next(&r) % (sizeof al - 1)];
        }
        g[n] = '\0';
        hp_log_redact(g, out, 1 + hp_rng_next(&r) % sizeof out);
    }
    free(tok);
}

static void test_task_and_policy_fuzz(void **st)
{
    (void)st;
    hp_rng r;
    hp_rng_seed(&r, 6);
    const char *values[] = {"null", "true", "1", "-1", "0", "1.5", "\"\"", "\"x\"", "[]", "{}",
                            "\"2026-11-25T09:00:00+03:00\"", "\"2026-11-25T09:00:00\"",
                            "\"30s\"", "\"20MiB\"", "[\"title\"]", "[\"1s\",2]", "9999999999999"};
    size_t nv = sizeof values / sizeof values[0];
    for (int i = 0; i < ITER; i++) {
        json_t *task = hp_task_new("t1");
        json_t *in = json_object();
        for (int k = 0; k < 3; k++) {
            const char *f = hp_field_name((int)(hp_rng_next(&r) % HP_F_COUNT));
            json_object_set_new(in, f, json_loads(values[hp_rng_next(&r) % nv], JSON_DECODE_ANY, NULL));
        }
        char err[128];
        json_t *before = json_deep_copy(task);
        if (hp_task_apply_fields(task, in, err, sizeof err) == 0)
            assert_int_equal(hp_task_validate_full(task, err, sizeof err), 0);
        else
            assert_true(json_equal(task, before));
        json_decref(before);
        json_decref(in);
        json_decref(task);

        hp_policy p;
        hp_policy_defaults(&p);
        const char *key = hp_policy_keys[hp_rng_next(&r) % 16];
        json_t *v = json_loads(values[hp_rng_next(&r) % nv], JSON_DECODE_ANY, NULL);
        hp_policy_set(&p, key, v, err, sizeof err);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_parse_fuzz),
        cmocka_unit_test(test_time_parse_fuzz),
        cmocka_unit_test(test_time_oracle),
        cmocka_unit_test(test_jwt_fuzz),
        cmocka_unit_test(test_redact_fuzz),
        cmocka_unit_test(test_task_and_policy_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

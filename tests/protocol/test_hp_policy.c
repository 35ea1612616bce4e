/* Unit tests for protocol/hp_policy.c: defaults, scaling, overrides, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_policy.h"
#include "hp_task.h"

static void test_defaults(void **st)
{
    (void)st;
    hp_policy p;
    memset(&p, 0xab, sizeof p);
    hp_policy_defaults(&p);
    assert_int_equal(p.heartbeat_ms, 30000);
    assert_int_equal(p.heartbeat_misses, 2);
    assert_int_equal(p.hello_timeout_ms, 10000);
    assert_int_equal(p.lock_ttl_ms, 120000);
    assert_int_equal(p.queue_max, 100);
    assert_int_equal(p.n_retry, 5);
    int64_t want[] = {1000, 3000, 9000, 27000, 120000};
    for (int i = 0; i < 5; i++)
        assert_int_equal(p.retry_ms[i], want[i]);
    assert_true(p.retry_jitter == 0.0);
    assert_int_equal(p.sync_failed_after, 5);
    assert_int_equal(p.offline_long_ms, 30 * 60 * 1000);
    assert_int_equal(p.cache_window_ms, 7LL * 24 * 3600 * 1000);
    assert_int_equal(p.cache_cap_bytes, 20 * 1024 * 1024);
    assert_int_equal(p.request_timeout_ms, 10000);
    assert_int_equal(p.max_frame, 65536);
    assert_int_equal(p.max_body, 1048576);
    assert_int_equal(p.mergeable, HP_F_ALL);
    assert_int_equal(p.event_retain, 10000);
    assert_true(p.time_scale == 1.0);
}

static void test_retry_delay(void **st)
{
    (void)st;
    hp_policy p;
    hp_policy_defaults(&p);
    /* 1, 3, 9, 27, 120, 120, ... */
    assert_int_equal(hp_policy_retry_delay(&p, 1), 1000);
    assert_int_equal(hp_policy_retry_delay(&p, 2), 3000);
    assert_int_equal(hp_policy_retry_delay(&p, 3), 9000);
    assert_int_equal(hp_policy_retry_delay(&p, 4), 27000);
    assert_int_equal(hp_policy_retry_delay(&p, 5), 120000);
    assert_int_equal(hp_policy_retry_delay(&p, 6), 120000);
    assert_int_equal(hp_policy_retry_delay(&p, 1000000), 120000);
    assert_int_equal(hp_policy_retry_delay(&p, 0), 1000);
    assert_int_equal(hp_policy_retry_delay(&p, -3), 1000);
    p.n_retry = 0;
    assert_int_equal(hp_policy_retry_delay(&p, 1), 0);
    assert_int_equal(hp_policy_retry_delay(NULL, 1), 0);
}

static void test_scale(void **st)
{
    (void)st;
    hp_policy p;
    hp_policy_defaults(&p);
    hp_policy_scale(&p, 0.01);
    assert_int_equal(p.heartbeat_ms, 300);
    assert_int_equal(p.hello_timeout_ms, 100);
    assert_int_equal(p.lock_ttl_ms, 1200);
    assert_int_equal(p.retry_ms[0], 10);
    assert_int_equal(p.retry_ms[1], 30);
    assert_int_equal(p.retry_ms[4], 1200);
    assert_int_equal(p.offline_long_ms, 18000);
    assert_int_equal(p.cache_window_ms, 6048000);
    assert_int_equal(p.request_timeout_ms, 100);
    assert_true(p.time_scale == 0.01);
    /* Not durations: untouched. */
    assert_int_equal(p.heartbeat_misses, 2);
    assert_int_equal(p.queue_max, 100);
    assert_int_equal(p.cache_cap_bytes, 20 * 1024 * 1024);
    assert_int_equal(p.max_frame, 65536);
    assert_int_equal(p.event_retain, 10000);
    /* Never below 1 ms. */
    hp_policy_scale(&p, 1e-9);
    assert_int_equal(p.heartbeat_ms, 1);
    assert_int_equal(p.retry_ms[0], 1);
    /* Invalid factors are ignored. */
    hp_policy q;
    hp_policy_defaults(&q);
    hp_policy_scale(&q, 0);
    hp_policy_scale(&q, -2);
    hp_policy_scale(&q, 0.0 / 0.0);
    assert_int_equal(q.heartbeat_ms, 30000);
    assert_true(q.time_scale == 1.0);
    hp_policy_scale(&q, 2);
    assert_int_equal(q.heartbeat_ms, 60000);
    assert_true(q.time_scale == 2.0);
}

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, e.text);
    return j;
}

static void set_ok(hp_policy *p, const char *key, const char *val)
{
    char err[200] = "";
    json_t *v = js(val);
    if (hp_policy_set(p, key, v, err, sizeof err) != 0)
        fail_msg("set %s=%s failed: %s", key, val, err);
    json_decref(v);
}

static void set_bad(const char *key, const char *val, const char *want)
{
    hp_policy p, before;
    hp_policy_defaults(&p);
    before = p;
    char err[200] = "";
    json_t *v = js(val);
    if (hp_policy_set(&p, key, v, err, sizeof err) != -1)
        fail_msg("set %s=%s should fail", key, val);
    if (!strstr(err, want))
        fail_msg("set %s=%s: err \"%s\" lacks \"%s\"", key, val, err, want);
    if (!strstr(err, key))
        fail_msg("set %s=%s: err \"%s\" does not name the key", key, val, err);
    assert_memory_equal(&p, &before, sizeof p);
    json_decref(v);
}

/* Issue 11: every policy number has a documented range, named in the
 * refusal.  Before: a huge heartbeat_interval was taken and overflowed the
 * server's deadline arithmetic (now + interval, interval x misses). */
static void test_ranges(void **st)
{
    (void)st;
    hp_policy p;
    hp_policy_defaults(&p);
    set_ok(&p, "heartbeat_interval", "\"366d\"");
    assert_int_equal(p.heartbeat_ms, 366LL * 86400000);
    set_bad("heartbeat_interval", "\"367d\"", "from 1ms to 366d");
    set_bad("heartbeat_interval", "9223372036854775807", "from 1ms to 366d");
    set_bad("hello_timeout", "\"106751991167d\"", "from 1ms to 366d");
    set_bad("idempotency_window", "\"400d\"", "from 1ms to 366d");
    set_bad("retry_delays", "[\"1s\", \"367d\"]", "from 0 to 366d");
    set_ok(&p, "heartbeat_misses", "100");
    set_bad("heartbeat_misses", "101", "from 1 to 100");
    set_ok(&p, "queue_max", "100000");
    set_bad("queue_max", "100001", "from 1 to 100000");
    set_bad("event_retain", "1000000001", "from 0 to 1000000000");
    set_ok(&p, "max_frame", "\"16MiB\"");
    set_bad("max_frame", "\"17MiB\"", "to 16MiB");
    set_ok(&p, "max_body", "\"64MiB\"");
    set_bad("max_body", "67108865", "to 64MiB");
    set_bad("cache_cap", "\"1025GiB\"", "to 1TiB");
    /* Scaling never leaves the range: the worst deadline is still far from
     * overflowing int64 milliseconds. */
    hp_policy_defaults(&p);
    set_ok(&p, "heartbeat_interval", "\"366d\"");
    set_ok(&p, "heartbeat_misses", "100");
    hp_policy_scale(&p, 1000);
    assert_int_equal(p.heartbeat_ms, 366LL * 86400000);
    assert_true(p.heartbeat_ms * p.heartbeat_misses < INT64_MAX / 4);
    /* --time-scale */
    char err[200] = "";
    assert_int_equal(hp_time_scale_check(0.001, err, sizeof err), 0);
    assert_int_equal(hp_time_scale_check(1000, err, sizeof err), 0);
    assert_int_equal(hp_time_scale_check(1e-4, err, sizeof err), -1);
    assert_non_null(strstr(err, "from 0.001 to 1000"));
    assert_int_equal(hp_time_scale_check(1001, err, sizeof err), -1);
    assert_int_equal(hp_time_scale_check(0.0 / 0.0, err, sizeof err), -1);
}

static void test_set_ok(void **st)
{
    (void)st;
    hp_policy p;
    hp_policy_defaults(&p);
    set_ok(&p, "heartbeat_interval", "\"5s\"");
    assert_int_equal(p.heartbeat_ms, 5000);
    set_ok(&p, "heartbeat_interval", "250");
    assert_int_equal(p.heartbeat_ms, 250);
    set_ok(&p, "heartbeat_misses", "3");
    assert_int_equal(p.heartbeat_misses, 3);
    set_ok(&p, "hello_timeout", "\"1m30s\"");
    assert_int_equal(p.hello_timeout_ms, 90000);
    set_ok(&p, "lock_ttl", "\"2m\"");
    assert_int_equal(p.lock_ttl_ms, 120000);
    set_ok(&p, "queue_max", "3");
    assert_int_equal(p.queue_max, 3);
    set_ok(&p, "retry_delays", "[\"1s\", 2000, \"0s\"]");
    assert_int_equal(p.n_retry, 3);
    assert_int_equal(p.retry_ms[0], 1000);
    assert_int_equal(p.retry_ms[1], 2000);
    assert_int_equal(p.retry_ms[2], 0);
    set_ok(&p, "retry_jitter", "0.1");
    assert_true(p.retry_jitter == 0.1);
    set_ok(&p, "retry_jitter", "0");
    assert_true(p.retry_jitter == 0.0);
    set_ok(&p, "sync_failed_after", "2");
    assert_int_equal(p.sync_failed_after, 2);
    set_ok(&p, "offline_long", "\"31m\"");
    assert_int_equal(p.offline_long_ms, 31 * 60000);
    set_ok(&p, "cache_window", "\"7d\"");
    assert_int_equal(p.cache_window_ms, 7LL * 86400000);
    set_ok(&p, "cache_cap", "\"20MiB\"");
    assert_int_equal(p.cache_cap_bytes, 20 * 1048576);
    set_ok(&p, "cache_cap", "4096");
    assert_int_equal(p.cache_cap_bytes, 4096);
    set_ok(&p, "cache_cap", "\"100B\"");
    assert_int_equal(p.cache_cap_bytes, 100);
    set_ok(&p, "cache_cap", "\"2GiB\"");
    assert_int_equal(p.cache_cap_bytes, 2LL << 30);
    set_ok(&p, "request_timeout", "\"500ms\"");
    assert_int_equal(p.request_timeout_ms, 500);
    set_ok(&p, "max_frame", "\"64KiB\"");
    assert_int_equal(p.max_frame, 65536);
    set_ok(&p, "max_body", "\"1MiB\"");
    assert_int_equal(p.max_body, 1048576);
    set_ok(&p, "max_body", "\"512\"");
    assert_int_equal(p.max_body, 512);
    set_ok(&p, "mergeable_fields", "[\"title\", \"done\"]");
    assert_int_equal(p.mergeable, HP_F_TITLE | HP_F_DONE);
    set_ok(&p, "mergeable_fields", "[]");
    assert_int_equal(p.mergeable, 0);
    set_ok(&p, "event_retain", "0");
    assert_int_equal(p.event_retain, 0);
    set_ok(&p, "event_retain", "5");
    assert_int_equal(p.event_retain, 5);
    /* Sixteen retries is the maximum. */
    set_ok(&p, "retry_delays", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]");
    assert_int_equal(p.n_retry, 16);
    assert_int_equal(hp_policy_retry_delay(&p, 99), 16);
}

static void test_set_bad(void **st)
{
    (void)st;
    set_bad("heartbeat_interval", "\"fast\"", "duration");
    set_bad("heartbeat_interval", "0", "from 1ms to 366d");
    set_bad("heartbeat_interval", "-5", "duration");
    set_bad("heartbeat_interval", "\"-5s\"", "duration");
    set_bad("heartbeat_interval", "1.5", "duration");
    set_bad("heartbeat_interval", "true", "duration");
    set_bad("heartbeat_interval", "null", "duration");
    set_bad("hello_timeout", "[]", "duration");
    set_bad("lock_ttl", "\"0s\"", "from 1ms to 366d");
    set_bad("offline_long", "{}", "duration");
    set_bad("cache_window", "\"7 days\"", "duration");
    set_bad("request_timeout", "\"\"", "duration");
    set_bad("heartbeat_misses", "0", "integer");
    set_bad("heartbeat_misses", "\"2\"", "integer");
    set_bad("heartbeat_misses", "2.0", "integer");
    set_bad("queue_max", "0", "integer");
    set_bad("queue_max", "-1", "integer");
    set_bad("queue_max", "99999999999", "integer");
    set_bad("sync_failed_after", "null", "integer");
    set_bad("event_retain", "-1", "integer");
    set_bad("retry_delays", "\"1s\"", "array");
    set_bad("retry_delays", "[]", "array");
    set_bad("retry_delays", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]", "array");
    set_bad("retry_delays", "[\"1s\", \"soon\"]", "retry_delays[1]");
    set_bad("retry_delays", "[\"1s\", -1]", "retry_delays[1]");
    set_bad("retry_jitter", "1", "[0, 1)");
    set_bad("retry_jitter", "-0.1", "[0, 1)");
    set_bad("retry_jitter", "\"10%\"", "number");
    set_bad("cache_cap", "\"20MB\"", "size");
    set_bad("cache_cap", "\"lots\"", "size");
    set_bad("cache_cap", "0", "size");
    set_bad("cache_cap", "-1", "size");
    set_bad("cache_cap", "\"MiB\"", "size");
    set_bad("cache_cap", "\"99999999999999GiB\"", "size");
    set_bad("cache_cap", "1.5", "size");
    set_bad("max_frame", "\"64k\"", "size");
    set_bad("max_body", "true", "size");
    set_bad("mergeable_fields", "\"title\"", "array of field names");
    set_bad("mergeable_fields", "[\"title\", \"id\"]", "mergeable_fields[1]");
    set_bad("mergeable_fields", "[1]", "mergeable_fields[0]");
    set_bad("no_such_key", "1", "unknown policy key");
    set_bad("time_scale", "2", "unknown policy key");

    hp_policy p;
    hp_policy_defaults(&p);
    char err[64];
    assert_int_equal(hp_policy_set(&p, "queue_max", NULL, err, sizeof err), -1);
    assert_int_equal(hp_policy_set(&p, NULL, NULL, err, sizeof err), -1);
    /* A tiny err buffer truncates, never overflows. */
    char tiny[4];
    json_t *v = json_string("x");
    assert_int_equal(hp_policy_set(&p, "queue_max", v, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(hp_policy_set(&p, "queue_max", v, NULL, 0), -1);
    json_decref(v);
}

static void test_keys_and_json(void **st)
{
    (void)st;
    hp_policy p;
    hp_policy_defaults(&p);
    json_t *j = hp_policy_to_json(&p);
    assert_non_null(j);
    /* Every settable key appears in the report, and round-trips. */
    int n = 0;
    for (const char *const *k = hp_policy_keys; *k; k++, n++) {
        json_t *v = json_object_get(j, *k);
        if (!v)
            fail_msg("key %s missing from hp_policy_to_json", *k);
        hp_policy q;
        hp_policy_defaults(&q);
        char err[200];
        if (hp_policy_set(&q, *k, v, err, sizeof err) != 0)
            fail_msg("round trip of %s failed: %s", *k, err);
        assert_memory_equal(&q, &p, sizeof p);
    }
    assert_int_equal(n, 17);
    assert_int_equal(json_integer_value(json_object_get(j, "heartbeat_interval")), 30000);
    assert_int_equal(json_array_size(json_object_get(j, "retry_delays")), 5);
    assert_int_equal(json_array_size(json_object_get(j, "mergeable_fields")), 6);
    assert_true(json_real_value(json_object_get(j, "time_scale")) == 1.0);
    char *s = hp_json_dump(j);
    assert_non_null(strstr(s, "\"cache_cap\":20971520"));
    assert_non_null(strstr(s, "\"retry_delays\":[1000,3000,9000,27000,120000]"));
    free(s);
    json_decref(j);
}

/* --policy: a JSON object of overrides, all or nothing. */
static void test_apply_json(void **st)
{
    (void)st;
    hp_policy p, d;
    hp_policy_defaults(&p);
    hp_policy_defaults(&d);
    char err[200] = "";
    assert_int_equal(hp_policy_apply_json(&p, "{\"queue_max\": 3, \"lock_ttl\": \"10s\", "
                                              "\"cache_cap\": \"2KiB\"}", err, sizeof err), 0);
    assert_int_equal(p.queue_max, 3);
    assert_int_equal(p.lock_ttl_ms, 10000);
    assert_int_equal(p.cache_cap_bytes, 2048);
    assert_int_equal(p.heartbeat_ms, d.heartbeat_ms);
    /* Scaling applies to overrides like to defaults. */
    hp_policy_scale(&p, 0.1);
    assert_int_equal(p.lock_ttl_ms, 1000);

    static const char *const bad[][2] = {
        {"not json", "not JSON"},
        {"[1]", "JSON object"},
        {"{\"queue_max\": 3, \"queue_mx\": 1}", "queue_mx"},
        {"{\"queue_max\": 0}", "queue_max"},
        {"{\"lock_ttl\": \"soon\"}", "lock_ttl"},
        {"{\"queue_max\": 1, \"queue_max\": 2}", "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hp_policy q = d;
        err[0] = '\0';
        assert_int_equal(hp_policy_apply_json(&q, bad[i][0], err, sizeof err), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': error '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        /* all or nothing: a good key before the bad one is not kept */
        assert_int_equal(q.queue_max, d.queue_max);
        assert_int_equal(q.lock_ttl_ms, d.lock_ttl_ms);
    }
    assert_int_equal(hp_policy_apply_json(&p, NULL, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_set_ok),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_set_bad),
        cmocka_unit_test(test_keys_and_json),
        cmocka_unit_test(test_apply_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

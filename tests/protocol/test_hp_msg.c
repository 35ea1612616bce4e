/* Unit tests for protocol/hp_msg.c: WS message codec and error bodies (§3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hp_msg.h"
#include "hp_util.h"

static void parse_ok(const char *text, hp_msg *m)
{
    char err[128] = "";
    if (hp_msg_parse(text, strlen(text), m, err, sizeof err) != 0)
        fail_msg("parse of %s failed: %s", text, err);
}

static void parse_bad(const char *text, const char *want)
{
    hp_msg m;
    char err[128] = "";
    if (hp_msg_parse(text, text ? strlen(text) : 0, &m, err, sizeof err) != -1)
        fail_msg("parse of %s should fail", text);
    if (!strstr(err, want))
        fail_msg("parse of %s: err \"%s\" lacks \"%s\"", text, err, want);
    assert_null(m.root);
    hp_msg_clear(&m); /* safe after failure */
}

static void test_hello(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"type\":\"HELLO\",\"revision\":42}", &m);
    assert_int_equal(m.type, HP_MSG_HELLO);
    assert_int_equal(m.revision, 42);
    hp_msg_clear(&m);
    assert_null(m.root);
    parse_ok("{\"type\":\"HELLO\",\"revision\":0}", &m);
    assert_int_equal(m.revision, 0);
    hp_msg_clear(&m);
    parse_bad("{\"type\":\"HELLO\"}", "revision");
    parse_bad("{\"type\":\"HELLO\",\"revision\":-1}", "revision");
    parse_bad("{\"type\":\"HELLO\",\"revision\":\"5\"}", "revision");
    parse_bad("{\"type\":\"HELLO\",\"revision\":5.0}", "revision");
    parse_bad("{\"type\":\"HELLO\",\"revision\":null}", "revision");
}

static void test_ready_resync(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"type\":\"READY\",\"revision\":7,\"heartbeat_interval_ms\":30000}", &m);
    assert_int_equal(m.type, HP_MSG_READY);
    assert_int_equal(m.revision, 7);
    assert_int_equal(m.heartbeat_ms, 30000);
    hp_msg_clear(&m);
    parse_ok("{\"type\":\"READY\"}", &m);
    assert_int_equal(m.revision, -1);
    assert_int_equal(m.heartbeat_ms, 0);
    hp_msg_clear(&m);
    parse_ok("{\"type\":\"RESYNC_REQUIRED\",\"revision\":3}", &m);
    assert_int_equal(m.type, HP_MSG_RESYNC);
    assert_int_equal(m.revision, 3);
    hp_msg_clear(&m);
    parse_bad("{\"type\":\"READY\",\"revision\":-2}", "revision");
    parse_bad("{\"type\":\"READY\",\"revision\":1,\"heartbeat_interval_ms\":0}", "heartbeat_interval_ms");
    parse_bad("{\"type\":\"READY\",\"revision\":1,\"heartbeat_interval_ms\":\"30s\"}",
              "heartbeat_interval_ms");
    parse_bad("{\"type\":\"RESYNC_REQUIRED\",\"revision\":\"x\"}", "revision");
}

static void test_heartbeat(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"type\":\"HEARTBEAT\"}", &m);
    assert_int_equal(m.type, HP_MSG_HEARTBEAT);
    assert_null(m.locks);
    hp_msg_clear(&m);
    parse_ok("{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\",\"t2\"]}", &m);
    assert_non_null(m.locks);
    assert_int_equal(json_array_size(m.locks), 2);
    assert_string_equal(json_string_value(json_array_get(m.locks, 1)), "t2");
    hp_msg_clear(&m);
    parse_ok("{\"type\":\"HEARTBEAT\",\"locks\":[]}", &m);
    assert_int_equal(json_array_size(m.locks), 0);
    hp_msg_clear(&m);
    parse_bad("{\"type\":\"HEARTBEAT\",\"locks\":\"t1\"}", "locks");
    parse_bad("{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\",5]}", "locks[1]");
    parse_bad("{\"type\":\"HEARTBEAT\",\"locks\":null}", "locks");
}

/* hp_msg_heartbeat() writes what a jansson dump of the object writes, and
 * the parser's shortcut for the two commonest heartbeats gives what the
 * general parse of the same message (spelled with a space, so the shortcut
 * does not apply) gives. */
static void test_heartbeat_fast_paths(void **st)
{
    (void)st;
    const char *lists[] = {NULL, "[]", "[\"t1\"]", "[\"t1\",\"a\\\"b\\\\c\",\"\u00e9\\u0001\"]"};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        json_t *locks = lists[i] ? json_loads(lists[i], 0, NULL) : NULL;
        assert_true(!lists[i] || locks);
        json_t *o = json_pack("{s:s}", "type", "HEARTBEAT");
        if (locks)
            json_object_set(o, "locks", locks);
        char *want = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *got = hp_msg_heartbeat(locks);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(o);
        json_decref(locks);
    }
    const char *pairs[][2] = {
        {"{\"type\":\"HEARTBEAT\"}", "{\"type\": \"HEARTBEAT\"}"},
        {"{\"locks\":[],\"type\":\"HEARTBEAT\"}", "{\"locks\": [],\"type\":\"HEARTBEAT\"}"},
    };
    for (size_t i = 0; i < 2; i++) {
        hp_msg a, b;
        parse_ok(pairs[i][0], &a);
        parse_ok(pairs[i][1], &b);
        assert_int_equal(a.type, b.type);
        assert_int_equal(a.revision, b.revision);
        assert_true(json_equal(a.root, b.root));
        assert_true((a.locks == NULL) == (b.locks == NULL));
        assert_true(!a.locks || json_equal(a.locks, b.locks));
        assert_ptr_equal(a.locks, json_object_get(a.root, "locks"));
        hp_msg_clear(&a);
        hp_msg_clear(&b);
    }
    /* not the exact bytes: the general parser, which still refuses */
    parse_bad("{\"type\":\"HEARTBEAT\"}x", "invalid JSON");
    parse_bad("{\"locks\":[],\"type\":\"HEARTBEAT\",\"locks\":[]}", "invalid JSON");
}

static void test_events(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\",\"revision\":9,"
             "\"payload\":{\"id\":\"t1\",\"title\":\"x\"}}",
             &m);
    assert_int_equal(m.type, HP_MSG_EVENT);
    assert_string_equal(m.event_type, "TASK_UPDATED");
    assert_string_equal(m.entity_id, "t1");
    assert_int_equal(m.revision, 9);
    assert_string_equal(json_string_value(json_object_get(m.payload, "title")), "x");
    hp_msg_clear(&m);
    /* Unknown event types parse (clients ignore them). */
    parse_ok("{\"event_type\":\"SOMETHING_NEW\",\"entity_id\":\"t1\",\"revision\":1}", &m);
    assert_int_equal(m.type, HP_MSG_EVENT);
    assert_string_equal(m.event_type, "SOMETHING_NEW");
    assert_null(m.payload);
    hp_msg_clear(&m);
    parse_ok("{\"event_type\":\"LOCK_REFRESHED\"}", &m);
    assert_null(m.entity_id);
    assert_int_equal(m.revision, -1);
    hp_msg_clear(&m);
    parse_bad("{\"event_type\":5}", "event_type");
    parse_bad("{\"event_type\":\"TASK_UPDATED\",\"entity_id\":7}", "entity_id");
    parse_bad("{\"event_type\":\"TASK_UPDATED\",\"revision\":-1}", "revision");
    parse_bad("{\"event_type\":\"TASK_UPDATED\",\"revision\":\"1\"}", "revision");
}

static void test_unknown_and_bad(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"type\":\"GOODBYE\"}", &m);
    assert_int_equal(m.type, HP_MSG_UNKNOWN);
    hp_msg_clear(&m);
    parse_ok("{}", &m);
    assert_int_equal(m.type, HP_MSG_UNKNOWN);
    hp_msg_clear(&m);
    parse_ok("{\"type\":\"hello\",\"revision\":1}", &m); /* case matters */
    assert_int_equal(m.type, HP_MSG_UNKNOWN);
    hp_msg_clear(&m);
    parse_bad("", "JSON");
    parse_bad("not json", "JSON");
    parse_bad("{\"type\":\"HELLO\",\"revision\":1", "JSON");
    parse_bad("[1,2]", "object");
    parse_bad("\"HELLO\"", "JSON");
    parse_bad("42", "JSON");
    parse_bad("{\"type\":7}", "type");
    parse_bad("{\"type\":\"HELLO\",\"revision\":1,\"revision\":2}", "JSON");
    parse_bad("{\"type\":\"HELLO\",\"revision\":1} trailing", "JSON");
    /* Length is honoured: only the first len bytes are parsed. */
    const char *two = "{\"type\":\"HEARTBEAT\"}{\"type\":\"HELLO\"}";
    char err[64];
    assert_int_equal(hp_msg_parse(two, 20, &m, err, sizeof err), 0);
    assert_int_equal(m.type, HP_MSG_HEARTBEAT);
    hp_msg_clear(&m);
    /* Not NUL-terminated input. */
    char buf[20];
    memcpy(buf, "{\"type\":\"HEARTBEAT\"}", 20);
    assert_int_equal(hp_msg_parse(buf, sizeof buf, &m, err, sizeof err), 0);
    hp_msg_clear(&m);
    assert_int_equal(hp_msg_parse(NULL, 0, &m, err, sizeof err), -1);
    assert_int_equal(hp_msg_parse("x", 1, &m, NULL, 0), -1);
    /* Embedded NUL. */
    assert_int_equal(hp_msg_parse("{\"type\":\"HEA\0RTBEAT\"}", 22, &m, err, sizeof err), -1);
    hp_msg_clear(NULL);
}

static void expect_str(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Issue 11: every number from a peer has a range, named in the error.
 * Before: READY's heartbeat_interval_ms was taken unbounded (the client's
 * now + interval overflowed), revisions up to INT64_MAX. */
static void test_number_ranges(void **st)
{
    (void)st;
    hp_msg m;
    parse_ok("{\"type\":\"HELLO\",\"revision\":9007199254740991}", &m);
    assert_int_equal(m.revision, 9007199254740991LL);
    hp_msg_clear(&m);
    parse_bad("{\"type\":\"HELLO\",\"revision\":9007199254740992}", "from 0 to 9007199254740991");
    parse_bad("{\"type\":\"HELLO\",\"revision\":9223372036854775807}", "from 0 to 9007199254740991");
    parse_bad("{\"type\":\"READY\",\"revision\":9007199254740992}", "from 0 to 9007199254740991");
    parse_bad("{\"type\":\"RESYNC_REQUIRED\",\"revision\":9007199254740992}",
              "from 0 to 9007199254740991");
    parse_bad("{\"event_type\":\"TASK_UPDATED\",\"revision\":9007199254740992}",
              "from 0 to 9007199254740991");
    parse_ok("{\"type\":\"READY\",\"revision\":1,\"heartbeat_interval_ms\":31622400000}", &m);
    assert_int_equal(m.heartbeat_ms, 31622400000LL);
    hp_msg_clear(&m);
    parse_bad("{\"type\":\"READY\",\"revision\":1,\"heartbeat_interval_ms\":31622400001}",
              "from 1 to 31622400000");
    parse_bad("{\"type\":\"READY\",\"revision\":1,\"heartbeat_interval_ms\":9223372036854775807}",
              "from 1 to 31622400000");
}

static void test_builders(void **st)
{
    (void)st;
    expect_str(hp_msg_hello(5), "{\"revision\":5,\"type\":\"HELLO\"}");
    expect_str(hp_msg_ready(12, 30000),
               "{\"heartbeat_interval_ms\":30000,\"revision\":12,\"type\":\"READY\"}");
    expect_str(hp_msg_resync(3), "{\"revision\":3,\"type\":\"RESYNC_REQUIRED\"}");
    expect_str(hp_msg_heartbeat(NULL), "{\"type\":\"HEARTBEAT\"}");
    json_t *locks = json_pack("[s,s]", "t2", "t1");
    expect_str(hp_msg_heartbeat(locks), "{\"locks\":[\"t2\",\"t1\"],\"type\":\"HEARTBEAT\"}");
    assert_int_equal(locks->refcount, 1); /* borrowed, not stolen */
    json_decref(locks);
    json_t *pl = json_pack("{s:s,s:s}", "title", "Milk", "remind_at", "2026-11-25T09:00:00+03:00");
    expect_str(hp_msg_event("REMINDER_DUE", "t1", 8, pl),
               "{\"entity_id\":\"t1\",\"event_type\":\"REMINDER_DUE\",\"payload\":"
               "{\"remind_at\":\"2026-11-25T09:00:00+03:00\",\"title\":\"Milk\"},\"revision\":8}");
    assert_int_equal(pl->refcount, 1);
    json_decref(pl);
    expect_str(hp_msg_event("X", "t1", 1, NULL),
               "{\"entity_id\":\"t1\",\"event_type\":\"X\",\"payload\":null,\"revision\":1}");
    /* Builders round-trip through the parser. */
    char *s = hp_msg_ready(99, 250);
    hp_msg m;
    char err[64];
    assert_int_equal(hp_msg_parse(s, strlen(s), &m, err, sizeof err), 0);
    assert_int_equal(m.type, HP_MSG_READY);
    assert_int_equal(m.revision, 99);
    assert_int_equal(m.heartbeat_ms, 250);
    hp_msg_clear(&m);
    free(s);
}

static void test_error_body(void **st)
{
    (void)st;
    expect_str(hp_error_body("conflict", "base revision 5 is not current (7)"),
               "{\"error\":\"conflict\",\"message\":\"base revision 5 is not current (7)\"}");
    expect_str(hp_error_body("bad_request", "quote \" and \\ and \n"),
               "{\"error\":\"bad_request\",\"message\":\"quote \\\" and \\\\ and \\n\"}");
    expect_str(hp_error_body(NULL, NULL), "{\"error\":\"error\",\"message\":\"\"}");
    /* Invalid UTF-8 never makes the body disappear: bad bytes become '?'. */
    expect_str(hp_error_body("bad_request", "id \xff\xfe bad"),
               "{\"error\":\"bad_request\",\"message\":\"id ?? bad\"}");
    expect_str(hp_msg_event("X", "t\xc3x", 1, NULL),
               "{\"entity_id\":\"t?x\",\"event_type\":\"X\",\"payload\":null,\"revision\":1}");
    /* A character cut at the end (a truncated message) is dropped whole,
     * the rest kept: issue 11, driver error lines lost their message. */
    expect_str(hp_msg_event("X", "t\xc3", 1, NULL),
               "{\"entity_id\":\"t\",\"event_type\":\"X\",\"payload\":null,\"revision\":1}");
    const char *cuts[][2] = {
        {"caf\xc3\xa9 \xe2\x82", "caf\xc3\xa9 "},            /* euro sign cut after 2 of 3 */
        {"x\xf0\x9f\x98", "x"},                              /* emoji cut after 3 of 4 */
        {"\xed\xa0\x80 surrogate", "??? surrogate"},         /* not UTF-8 at all */
        {"\xc0\xaf overlong", "?? overlong"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        json_t *j = hp_json_text(cuts[i][0]);
        assert_non_null(j);
        assert_string_equal(json_string_value(j), cuts[i][1]);
        json_decref(j);
    }
}

static void test_status_codes(void **st)
{
    (void)st;
    assert_string_equal(hp_error_code_for_status(400), "bad_request");
    assert_string_equal(hp_error_code_for_status(401), "unauthorized");
    assert_string_equal(hp_error_code_for_status(404), "not_found");
    assert_string_equal(hp_error_code_for_status(405), "method_not_allowed");
    assert_string_equal(hp_error_code_for_status(409), "conflict");
    assert_string_equal(hp_error_code_for_status(411), "length_required");
    assert_string_equal(hp_error_code_for_status(413), "payload_too_large");
    assert_string_equal(hp_error_code_for_status(423), "locked");
    assert_string_equal(hp_error_code_for_status(500), "internal");
    assert_string_equal(hp_error_code_for_status(503), "internal");
    assert_string_equal(hp_error_code_for_status(418), "error");
    assert_string_equal(hp_error_code_for_status(200), "error");
    assert_string_equal(hp_error_code_for_status(-1), "error");
}

/* hp_errf: the parsers' shared "format into err, return -1". */
static void test_errf(void **st)
{
    (void)st;
    char err[8];
    memset(err, 'x', sizeof err);
    assert_int_equal(hp_errf(err, sizeof err, "bad %s %d", "field", 42), -1);
    assert_string_equal(err, "bad fie"); /* truncated, terminated */
    assert_int_equal(hp_errf(NULL, 16, "x"), -1);
    err[0] = 'k';
    assert_int_equal(hp_errf(err, 0, "x"), -1);
    assert_int_equal(err[0], 'k'); /* errlen 0: untouched */
}

/* hp_parse_decimal: both sides of every bound, and what is not a number. */
static void test_parse_decimal(void **st)
{
    (void)st;
    assert_int_equal(hp_parse_decimal("0", 10), 0);
    assert_int_equal(hp_parse_decimal("10", 10), 10);
    assert_int_equal(hp_parse_decimal("11", 10), -1);
    assert_int_equal(hp_parse_decimal("007", 10), 7);
    assert_int_equal(hp_parse_decimal("999999999999999999", INT64_MAX), 999999999999999999LL);
    assert_int_equal(hp_parse_decimal("1000000000000000000", INT64_MAX), -1); /* 19 digits */
    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1e3", "0x1", "1.0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(hp_parse_decimal(bad[i], INT64_MAX), -1);
    assert_int_equal(hp_parse_decimal(NULL, 10), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_ready_resync),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_heartbeat_fast_paths),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_unknown_and_bad),
        cmocka_unit_test(test_number_ranges),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_errf),
        cmocka_unit_test(test_parse_decimal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

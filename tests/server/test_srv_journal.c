/*
 * test_srv_journal.c - the session journal (fake_server/srv_journal.c),
 * sans-I/O: order with reserved seqs, redaction and truncation of bodies,
 * the bound (oldest dropped, counted), query filters and paging, and
 * WireMock-style verify (count, bounds, order, globs, strict bodies).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "srv_journal.h"

static const srv_jwho WEB = {"home", "alice", "web"};
static const srv_jwho PHONE = {"home", "alice", "phone"};

static json_t *entries(srv_journal *j, uint64_t since, const char *dev, const char *kind,
                       size_t limit, json_t **whole)
{
    json_t *r = srv_journal_query(j, since, dev, kind, limit);
    assert_non_null(r);
    *whole = r;
    return json_object_get(r, "entries");
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void put(srv_journal *j, const char *path, int status, const srv_jwho *w, uint64_t seq)
{
    srv_journal_http(j, 1000, "PUT", path, NULL, NULL, "{}", 2, status, "{}", 2, 0, w, seq);
}

/* A request's entry keeps the seq reserved when it went in, before the
 * frames its handling sent, though it is written after them. */
static void test_reserved_seq_keeps_order(void **state)
{
    (void)state;
    srv_journal *j = srv_journal_new();
    uint64_t s = srv_journal_reserve(j);
    const char *ev = "{\"type\":\"EVENT\",\"event_type\":\"TASK_UPDATED\","
                     "\"entity_id\":\"t1\",\"revision\":3}";
    srv_journal_frame(j, 1001, "ws_out", 7, ev, strlen(ev), &PHONE);
    put(j, "/api/v0.2/tasks/t1", 200, &WEB, s);
    json_t *r, *e = entries(j, 0, NULL, NULL, 100, &r);
    assert_int_equal(json_array_size(e), 2);
    json_t *a = json_array_get(e, 0), *b = json_array_get(e, 1);
    assert_string_equal(sget(a, "kind"), "http");
    assert_int_equal(json_integer_value(json_object_get(a, "seq")), s);
    assert_string_equal(sget(b, "kind"), "ws_out");
    assert_string_equal(sget(b, "event_type"), "TASK_UPDATED");
    assert_string_equal(sget(b, "entity_id"), "t1");
    assert_int_equal(json_integer_value(json_object_get(b, "revision")), 3);
    assert_string_equal(sget(b, "device"), "phone");
    assert_string_equal(sget(a, "household"), "home");
    json_decref(r);
    srv_journal_free(j);
}

/* A broadcast journals the same bytes once per listener: each entry has
 * its own conn and device and the fields of its own bytes, also when the
 * bytes change, come back, or carry a token (redacted every time). */
static void test_same_frame_many_listeners(void **state)
{
    (void)state;
    srv_journal *j = srv_journal_new();
    const char *a = "{\"type\":\"EVENT\",\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\","
                    "\"revision\":3}";
    const char *b = "{\"type\":\"RESYNC_REQUIRED\",\"token\":\"eyJhbGciOiJIUzI1NiJ9.eyJ4Ijo"
                    "xfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ\"}";
    srv_journal_frame(j, 1, "ws_out", 1, a, strlen(a), &PHONE);
    srv_journal_frame(j, 1, "ws_out", 2, a, strlen(a), &WEB);
    srv_journal_frame(j, 2, "ws_out", 1, b, strlen(b), &PHONE);
    srv_journal_frame(j, 2, "ws_out", 2, b, strlen(b), &WEB);
    srv_journal_frame(j, 3, "ws_in", 2, a, strlen(a) - 1, &WEB); /* a prefix: not JSON */
    srv_journal_frame(j, 4, "ws_out", 3, a, strlen(a), &WEB);
    json_t *r, *e = entries(j, 0, NULL, NULL, 100, &r);
    assert_int_equal(json_array_size(e), 6);
    static const int conns[] = {1, 2, 1, 2, 2, 3};
    for (size_t i = 0; i < 6; i++) {
        json_t *x = json_array_get(e, i);
        assert_int_equal(json_integer_value(json_object_get(x, "conn")), conns[i]);
        const char *body = sget(x, "body");
        assert_non_null(body);
        if (i < 2 || i == 5) {
            assert_string_equal(sget(x, "event_type"), "TASK_UPDATED");
            assert_int_equal(json_integer_value(json_object_get(x, "revision")), 3);
            assert_string_equal(body, a);
        } else if (i < 4) {
            assert_string_equal(sget(x, "type"), "RESYNC_REQUIRED");
            assert_null(json_object_get(x, "event_type"));
            assert_null(strstr(body, "eyJ"));
        } else {
            assert_string_equal(sget(x, "kind"), "ws_in");
            assert_null(json_object_get(x, "type"));
            assert_int_equal(strlen(body), strlen(a) - 1);
        }
        assert_string_equal(sget(x, "device"), conns[i] == 1 ? "phone" : "web");
    }
    json_decref(r);
    srv_journal_free(j);
}

/* tokens never reach the journal; bodies are bounded. */
static void test_redacted_and_truncated(void **state)
{
    (void)state;
    srv_journal *j = srv_journal_new();
    const char *tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    char q[300], body[300];
    snprintf(q, sizeof q, "since=0&token=%s", tok);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    srv_journal_http(j, 1, "GET", "/api/v0.2/tasks", q, NULL, body, strlen(body), 200, NULL, 0,
                     0, NULL, 0);
    size_t big = SRV_JOURNAL_BODY_MAX + 100;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 'x', big);
    huge[3] = '\0'; /* NUL bytes become '?': jansson takes valid UTF-8 only */
    srv_journal_http(j, 2, "PUT", "/api/v0.2/tasks/t1", NULL, NULL, huge, big, 413, NULL, 0, 0,
                     NULL, 0);
    free(huge);
    json_t *r, *e = entries(j, 0, NULL, NULL, 100, &r);
    char *dump = json_dumps(e, JSON_COMPACT);
    assert_null(strstr(dump, "eyJ"));
    free(dump);
    json_t *b = json_array_get(e, 1);
    assert_int_equal(strlen(sget(b, "body")), SRV_JOURNAL_BODY_MAX);
    assert_true(json_is_true(json_object_get(b, "body_truncated")));
    assert_int_equal(sget(b, "body")[3], '?');
    assert_null(json_object_get(json_array_get(e, 0), "body_truncated"));
    assert_null(json_object_get(json_array_get(e, 0), "household")); /* nobody known */
    json_decref(r);
    srv_journal_free(j);
}

/* Bounded: past SRV_JOURNAL_MAX the oldest go and are counted. */
static void test_bound_drops_oldest(void **state)
{
    (void)state;
    srv_journal *j = srv_journal_new();
    for (int i = 0; i < SRV_JOURNAL_MAX + 10; i++)
        srv_journal_conn(j, i, "ws_open", (uint64_t)i + 1, 101, NULL, &WEB);
    assert_int_equal(srv_journal_count(j), SRV_JOURNAL_MAX);
    json_t *r, *e = entries(j, 0, NULL, NULL, 1, &r);
    assert_int_equal(json_integer_value(json_object_get(r, "dropped")), 10);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "seq")), 11);
    json_decref(r);
    srv_journal_clear(j);
    assert_int_equal(srv_journal_count(j), 0);
    srv_journal_free(j);
}

/* device, kind ("ws" = every WebSocket kind), limit, and paging with next. */
static void test_query_filters_and_paging(void **state)
{
    (void)state;
    srv_journal *j = srv_journal_new();
    put(j, "/a", 200, &WEB, 0);                                          /* 1 */
    srv_journal_conn(j, 2, "ws_open", 1, 101, NULL, &PHONE);             /* 2 */
    srv_journal_frame(j, 3, "ws_in", 1, "{\"type\":\"HELLO\"}", 16, &PHONE);   /* 3 */
    srv_journal_log(j, 4, "WARNING", "conflict", "entity=task/t1");      /* 4 */
    srv_journal_conn(j, 5, "ws_close", 1, 4008, "heartbeat timeout", &PHONE); /* 5 */
    json_t *r, *e = entries(j, 0, "phone", NULL, 100, &r);
    assert_int_equal(json_array_size(e), 3);
    json_decref(r);
    e = entries(j, 0, NULL, "ws", 100, &r);
    assert_int_equal(json_array_size(e), 3);
    json_decref(r);
    e = entries(j, 0, NULL, "log", 100, &r);
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(sget(json_array_get(e, 0), "fields"), "entity=task/t1");
    json_decref(r);
    e = entries(j, 0, NULL, NULL, 2, &r);
    assert_int_equal(json_array_size(e), 2);
    uint64_t next = (uint64_t)json_integer_value(json_object_get(r, "next"));
    assert_int_equal(next, 2);
    json_decref(r);
    e = entries(j, next, NULL, NULL, 100, &r);
    assert_int_equal(json_array_size(e), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "seq")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 2), "code")), 4008);
    json_decref(r);
    srv_journal_free(j);
}

static json_t *verify(srv_journal *j, const char *body, int want_rc, char *err)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    json_t *res = NULL;
    err[0] = '\0';
    int rc = srv_journal_verify(j, b, &res, err, 300);
    json_decref(b);
    assert_int_equal(rc, want_rc);
    return res;
}

static int ok_of(json_t *res)
{
    int ok = json_is_true(json_object_get(res, "ok"));
    json_decref(res);
    return ok;
}

static void test_verify(void **state)
{
    (void)state;
    char err[300];
    srv_journal *j = srv_journal_new();
    put(j, "/api/v0.2/tasks/t1", 503, &WEB, 0);
    put(j, "/api/v0.2/tasks/t1", 503, &WEB, 0);
    put(j, "/api/v0.2/tasks/t1", 409, &WEB, 0);
    const char *rs = "{\"type\":\"RESYNC_REQUIRED\",\"revision\":2}";
    srv_journal_frame(j, 5, "ws_out", 1, rs, strlen(rs), &PHONE);
    json_t *res = verify(j, "{\"pattern\": {\"kind\": \"http\", \"path\": \"/api/v0.2/tasks/*\","
                            " \"status\": 503}, \"count\": 2}", 0, err);
    assert_int_equal(json_integer_value(json_object_get(res, "matched")), 2);
    assert_int_equal(json_array_size(json_object_get(res, "seqs")), 2);
    assert_true(ok_of(res));
    assert_false(ok_of(verify(j, "{\"pattern\": {\"status\": 503}, \"count\": 1}", 0, err)));
    assert_true(ok_of(verify(j, "{\"pattern\": {\"status\": 503}, \"at_least\": 1, "
                                "\"at_most\": 2}", 0, err)));
    assert_false(ok_of(verify(j, "{\"pattern\": {\"device\": \"tv\"}}", 0, err)));
    assert_true(ok_of(verify(j, "{\"pattern\": {\"body_contains\": \"{}\"}}", 0, err)));
    /* order: each after the previous one's match */
    assert_true(ok_of(verify(j, "{\"sequence\": [{\"status\": 503}, {\"status\": 409}, "
                                "{\"kind\": \"ws_out\", \"type\": \"RESYNC_REQUIRED\"}]}", 0, err)));
    assert_false(ok_of(verify(j, "{\"sequence\": [{\"status\": 409}, {\"status\": 503}]}", 0,
                              err)));
    /* strict bodies: the key is named, with a did-you-mean */
    assert_null(verify(j, "{\"pattern\": {\"stauts\": 409}}", -1, err));
    assert_non_null(strstr(err, "stauts"));
    assert_non_null(strstr(err, "status"));
    assert_null(verify(j, "{\"patern\": {\"status\": 409}}", -1, err));
    assert_non_null(strstr(err, "pattern"));
    assert_null(verify(j, "{\"pattern\": {}}", -1, err));
    assert_null(verify(j, "{\"sequence\": [{\"status\": 409}], \"count\": 1}", -1, err));
    srv_journal_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserved_seq_keeps_order),
        cmocka_unit_test(test_redacted_and_truncated),
        cmocka_unit_test(test_same_frame_many_listeners),
        cmocka_unit_test(test_bound_drops_oldest),
        cmocka_unit_test(test_query_filters_and_paging),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

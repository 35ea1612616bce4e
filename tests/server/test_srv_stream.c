/*
 * test_srv_stream.c - the change stream, server side: WS-1..WS-5, A-1,
 * on the stream, every close code, heartbeat faults.
 */
#include "srv_test_util.h"

static json_t *frame(fx *f, uint64_t conn, size_t i)
{
    json_t *a = fx_frames(f, conn);
    json_t *v = json_incref(json_array_get(a, i));
    json_decref(a);
    return v;
}

static size_t n_frames(fx *f, uint64_t conn)
{
    json_t *a = fx_frames(f, conn);
    size_t n = json_array_size(a);
    json_decref(a);
    return n;
}

/* ---- WS-1 / A-1 -------------------------------------------------------- */

static void test_open_refusals(void **state)
{
    (void)state;
    /* checks: WS-1.3 WS-1.4   */
    fx *f = fx_new();
    char *body = NULL;
    char *tok = fx_token_at(f, "alice", "home", 60);
    char q[2048];
    snprintf(q, sizeof q, "token=%s", tok);

    assert_int_equal(srv_ws_open(f->c, 1, "/api/v0.2/tasks/strea", q, &body), 404);
    assert_non_null(body);
    free(body);
    assert_int_equal(srv_ws_open(f->c, 1, HP_STREAM_PATH, NULL, &body), 401);
    assert_non_null(strstr(body, "\"unauthorized\""));
    free(body);
    assert_int_equal(srv_ws_open(f->c, 1, HP_STREAM_PATH, "x=1&token=", &body), 401);
    free(body);
    assert_int_equal(srv_ws_open(f->c, 1, HP_STREAM_PATH, "token=abc.def.ghi", &body), 401);
    free(body);
    char *other = hp_jwt_mint("nope", "alice", "home", NULL, 0, f->now / 1000 + 60);
    snprintf(q, sizeof q, "token=%s", other);
    free(other);
    assert_int_equal(srv_ws_open(f->c, 1, HP_STREAM_PATH, q, &body), 401);
    free(body);
    char *expired = hp_jwt_mint(FX_SECRET, "alice", "home", NULL, 0, f->now / 1000 - 1);
    snprintf(q, sizeof q, "token=%s", expired);
    free(expired);
    assert_int_equal(srv_ws_open(f->c, 1, HP_STREAM_PATH, q, &body), 401);
    assert_non_null(strstr(body, "xpire"));
    free(body);
    /* none of them registered a connection */
    json_t *st = srv_state(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "connections")), 0);
    json_decref(st);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "token_refused", "where=stream"), 5);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "token_refused", "reason=expired"), 1);

    /* a good token, also among other arguments and percent-encoded */
    snprintf(q, sizeof q, "a=b&token=%s&c", tok);
    assert_int_equal(srv_ws_open(f->c, 7, HP_STREAM_PATH, q, &body), 0);
    assert_null(body);
    /* the same id twice is refused */
    assert_int_equal(srv_ws_open(f->c, 7, HP_STREAM_PATH, q, &body), 400);
    free(body);
    char enc[2048];
    char *dot = strchr(tok, '.');
    snprintf(enc, sizeof enc, "token=%.*s%%2E%s", (int)(dot - tok), tok, dot + 1);
    assert_int_equal(srv_ws_open(f->c, 8, HP_STREAM_PATH, enc, NULL), 0);
    free(tok);
    fx_assert_no_token_logged(f);
    fx_free(f);
}

/* ---- WS-2 -------------------------------------------------------------- */

static void test_hello_ready_empty(void **state)
{
    (void)state;
    /* checks: WS-2.2 */
    fx *f = fx_new();
    assert_int_equal(fx_ws_open(f, 1, "alice", "home"), 0);
    assert_int_equal(n_frames(f, 1), 0);
    fx_hello(f, 1, 0);
    json_t *r = frame(f, 1, 0);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "READY");
    assert_int_equal(json_integer_value(json_object_get(r, "revision")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "heartbeat_interval_ms")), 30000);
    json_decref(r);
    fx_free(f);
}

static void test_ready_announces_scaled_heartbeat(void **state)
{
    (void)state;
    /* checks: WS-4.1 */
    fx *f = fx_new_store(0);
    hp_policy_scale(&f->pol, 0.01);
    fx_start(f);
    fx_ready(f, 1, "alice", "home");
    json_t *r = frame(f, 1, 0);
    assert_int_equal(json_integer_value(json_object_get(r, "heartbeat_interval_ms")), 300);
    json_decref(r);
    fx_free(f);
}

static void test_replay_in_order(void **state)
{
    (void)state;
    /* checks: WS-2.3 WS-2.4 */
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "a", 0, "{\"title\":\"1\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "b", 0, "{\"title\":\"2\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "a", 1, "{\"title\":\"3\"}"), 200);
    assert_int_equal(fx_put_status(f, "eve", "other", "a", 0, "{\"title\":\"x\"}"), 200);
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 1);
    assert_int_equal(n_frames(f, 1), 3);
    json_t *e = frame(f, 1, 0);
    assert_string_equal(json_string_value(json_object_get(e, "event_type")), "TASK_UPDATED");
    assert_string_equal(json_string_value(json_object_get(e, "entity_id")), "b");
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "payload"), "title")), "2");
    json_decref(e);
    e = frame(f, 1, 1);
    assert_string_equal(json_string_value(json_object_get(e, "entity_id")), "a");
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "payload"), "revision")), 3);
    json_decref(e);
    e = frame(f, 1, 2);
    assert_string_equal(json_string_value(json_object_get(e, "type")), "READY");
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 3);
    json_decref(e);
    /* HELLO at the current revision: READY only */
    assert_int_equal(fx_ws_open(f, 2, "bob", "home"), 0);
    fx_hello(f, 2, 3);
    assert_int_equal(n_frames(f, 2), 1);
    assert_int_equal(fx_count_type(f, 2, "READY"), 1);
    fx_free(f);
}

static void test_resync_newer_then_second_hello(void **state)
{
    (void)state;
    /* checks: WS-2.5 WS-2.7 */
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "a", 0, "{}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "b", 0, "{}"), 200);
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 9);
    assert_int_equal(n_frames(f, 1), 1);
    json_t *e = frame(f, 1, 0);
    assert_string_equal(json_string_value(json_object_get(e, "type")), "RESYNC_REQUIRED");
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 2);
    json_decref(e);
    assert_int_equal(fx_close_code(f, 1), 0);
    /* no events while resyncing (the reload covers them) */
    assert_int_equal(fx_put_status(f, "alice", "home", "c", 0, "{}"), 200);
    assert_int_equal(n_frames(f, 1), 1);
    /* the HELLO time-out no longer applies; a heartbeat is welcome */
    fx_advance(f, 20000);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\"}");
    assert_int_equal(fx_close_code(f, 1), 0);
    /* a second HELLO after RESYNC is answered like a first */
    fx_reset(f);
    fx_hello(f, 1, 2);
    assert_int_equal(n_frames(f, 1), 2);
    e = frame(f, 1, 0);
    assert_string_equal(json_string_value(json_object_get(e, "entity_id")), "c");
    json_decref(e);
    assert_int_equal(fx_count_type(f, 1, "READY"), 1);
    /* any other second HELLO is 4002 */
    fx_hello(f, 1, 3);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_PROTOCOL);
    fx_free(f);
}

static void test_resync_older_than_log(void **state)
{
    (void)state;
    /* checks: WS-2.6 */
    fx *f = fx_new_store(0);
    f->pol.event_retain = 2;
    fx_start(f);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(fx_put_status(f, "alice", "home", id, 0, "{}"), 200);
    }
    json_t *st = srv_state(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "events")), 2);
    json_decref(st);
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 2); /* event 3 is gone */
    assert_int_equal(fx_count_type(f, 1, "RESYNC_REQUIRED"), 1);
    fx_reset(f);
    fx_hello(f, 1, 3); /* 4 and 5 are kept */
    assert_int_equal(n_frames(f, 1), 3);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 2);
    assert_int_equal(fx_count_type(f, 1, "READY"), 1);
    /* HELLO 0 is older than the log too */
    assert_int_equal(fx_ws_open(f, 2, "bob", "home"), 0);
    fx_hello(f, 2, 0);
    assert_int_equal(fx_count_type(f, 2, "RESYNC_REQUIRED"), 1);
    fx_free(f);
}

/* ---- close codes -------------------------------------------------------- */

static void test_hello_timeout_4002(void **state)
{
    (void)state;
    /* checks: WS-2.1 */
    fx *f = fx_new();
    assert_int_equal(fx_ws_open(f, 1, "alice", "home"), 0);
    assert_int_equal(srv_next_deadline(f->c), f->now + 10000);
    fx_advance(f, 9999);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_advance(f, 1);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_PROTOCOL);
    json_t *st = srv_state(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "connections")), 0);
    json_decref(st);
    fx_free(f);
}

static void check_first_message_closes(const char *text, int code)
{
    fx *f = fx_new();
    assert_int_equal(fx_ws_open(f, 1, "alice", "home"), 0);
    fx_ws_send(f, 1, text);
    if (fx_close_code(f, 1) != code)
        fail_msg("%s: close %d, want %d", text, fx_close_code(f, 1), code);
    /* after the close, nothing else goes to the connection */
    fx_ws_send(f, 1, "{\"type\":\"HELLO\",\"revision\":0}");
    assert_int_equal(fx_count_type(f, 1, "READY"), 0);
    fx_free(f);
}

static void test_protocol_errors_4002(void **state)
{
    (void)state;
    /* checks: WS-2.8 */
    check_first_message_closes("not json", HP_CLOSE_PROTOCOL);
    check_first_message_closes("[1]", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"HELO\"}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"HEARTBEAT\"}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"HELLO\"}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"HELLO\",\"revision\":-1}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"HELLO\",\"revision\":\"1\"}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"type\":\"READY\",\"revision\":1}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("{\"event_type\":\"TASK_UPDATED\"}", HP_CLOSE_PROTOCOL);
    check_first_message_closes("\xff", HP_CLOSE_PROTOCOL);
    /* after READY too: unknown type, bad JSON, second HELLO */
    const char *after[] = {"{\"type\":\"NOPE\"}", "{", "{\"type\":\"HELLO\",\"revision\":0}",
                           "{\"type\":\"HEARTBEAT\",\"locks\":\"t1\"}"};
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        fx *f = fx_new();
        fx_ready(f, 1, "alice", "home");
        fx_ws_send(f, 1, after[i]);
        if (fx_close_code(f, 1) != HP_CLOSE_PROTOCOL)
            fail_msg("after READY %s: close %d", after[i], fx_close_code(f, 1));
        fx_free(f);
    }
}

static void test_frame_too_big_1009(void **state)
{
    (void)state;
    /* checks: WS-2.10 */
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    /* exactly max_frame is allowed */
    size_t n = f->pol.max_frame;
    char *big = malloc(n + 2);
    memset(big, ' ', n + 1);
    memcpy(big, "{\"type\":\"HEARTBEAT\"}", 20);
    big[n + 1] = 0;
    srv_ws_message(f->c, 1, big, n);
    fx_pump(f);
    assert_int_equal(fx_close_code(f, 1), 0);
    srv_ws_message(f->c, 1, big, n + 1);
    fx_pump(f);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_TOO_BIG);
    free(big);
    /* NULL data and unknown connections are ignored or closed, never a crash */
    assert_int_equal(fx_ws_open(f, 2, "alice", "home"), 0);
    srv_ws_message(f->c, 2, NULL, 0);
    fx_pump(f);
    assert_int_equal(fx_close_code(f, 2), HP_CLOSE_PROTOCOL);
    srv_ws_message(f->c, 99, "{}", 2);
    srv_ws_closed(f->c, 99);
    fx_pump(f);
    fx_free(f);
}

static void test_heartbeats_and_timeout_4008(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_reset(f);
    /* WS-4: a server HEARTBEAT every 30 s; client heartbeats keep it alive */
    for (int i = 0; i < 4; i++) {
        fx_advance(f, 29000);
        fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\",\"locks\":[]}");
        fx_advance(f, 1000);
    }
    assert_int_equal(fx_count_type(f, 1, "HEARTBEAT"), 4);
    assert_int_equal(fx_close_code(f, 1), 0);
    json_t *hb = frame(f, 1, 0);
    assert_null(json_object_get(hb, "locks"));
    json_decref(hb);
    /* WS-5: the 2nd missed heartbeat (due at 60 s of silence) is counted
     * half an interval later: 4008 + WARNING at 75 s, not at 60 s */
    /* checks: WS-5.2 WS-5.4 */
    fx_advance(f, 59000 - 1000);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_advance(f, 15000);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_advance(f, 1000);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_HEARTBEAT);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "heartbeat_timeout", "user=alice"), 1);
    fx_free(f);
}

static void test_any_message_resets_silence(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(fx_ws_open(f, 1, "alice", "home"), 0);
    fx_advance(f, 5000);
    fx_hello(f, 1, 0); /* the HELLO itself counts */
    /* checks: WS-5.3 WS-5.4 */
    fx_advance(f, 74999);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_advance(f, 1);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_HEARTBEAT);
    fx_free(f);
}

static void test_token_expiry_4001(void **state)
{
    (void)state;
    /* checks:  */
    fx *f = fx_new();
    assert_int_equal(fx_ws_open_ttl(f, 1, "alice", "home", 45), 0);
    fx_hello(f, 1, 0);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\"}");
    fx_advance(f, 30000);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\"}");
    fx_advance(f, 14999);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_advance(f, 1);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_AUTH);
    fx_assert_no_token_logged(f);
    fx_free(f);
}

static void test_shutdown_1001(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    assert_int_equal(fx_ws_open(f, 2, "bob", "home"), 0);
    assert_int_equal(fx_ws_open(f, 3, "eve", "other"), 0);
    fx_hello(f, 3, 5); /* resyncing */
    srv_shutdown(f->c);
    fx_pump(f);
    assert_int_equal(fx_close_code(f, 1), HP_CLOSE_GOING_AWAY);
    assert_int_equal(fx_close_code(f, 2), HP_CLOSE_GOING_AWAY);
    assert_int_equal(fx_close_code(f, 3), HP_CLOSE_GOING_AWAY);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    fx_free(f);
}

/* ---- events, A-3 ------------------------------------------------------- */

static void test_broadcast_to_ready_household_only(void **state)
{
    (void)state;
    /* checks: WS-3.1 WS-3.3 WS-3.5 */
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    fx_ready(f, 3, "eve", "other");
    assert_int_equal(fx_ws_open(f, 4, "carol", "home"), 0); /* no HELLO yet */
    fx_reset(f);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0,
                                   "{\"title\":\"Milk\",\"remind_at\":\"2030-01-01T08:00:00+01:00\"}"),
                     200);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1); /* the writer too */
    assert_int_equal(fx_count_type(f, 2, "TASK_UPDATED"), 1);
    assert_int_equal(fx_count_type(f, 3, "TASK_UPDATED"), 0);
    assert_int_equal(n_frames(f, 4), 0);
    json_t *e = frame(f, 2, 0);
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 1);
    /* WS-3: times verbatim in payloads */
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "payload"), "remind_at")),
                        "2030-01-01T08:00:00+01:00");
    json_decref(e);
    /* carol gets it by replay, then READY */
    fx_hello(f, 4, 0);
    assert_int_equal(fx_count_type(f, 4, "TASK_UPDATED"), 1);
    assert_int_equal(fx_count_type(f, 4, "READY"), 1);
    /* a refused write broadcasts nothing */
    fx_reset(f);
    assert_int_equal(fx_put_status(f, "bob", "home", "t1", 0, "{}"), 409);
    assert_int_equal(n_frames(f, 1) + n_frames(f, 2), 0);
    fx_free(f);
}

/* ---- faults ------------------------------------------------------------ */

static void test_drop_heartbeats(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    fx_reset(f);
    srv_fault_drop_heartbeats(f->c, "alice", 2);
    for (int i = 0; i < 3; i++) {
        fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\"}");
        fx_ws_send(f, 2, "{\"type\":\"HEARTBEAT\"}");
        fx_advance(f, 30000);
    }
    assert_int_equal(fx_count_type(f, 1, "HEARTBEAT"), 1); /* third only */
    assert_int_equal(fx_count_type(f, 2, "HEARTBEAT"), 3);
    /* NULL user: every connection; armed with nobody connected it waits */
    srv_fault_drop_heartbeats(f->c, NULL, 1);
    fx_reset(f);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\"}");
    fx_ws_send(f, 2, "{\"type\":\"HEARTBEAT\"}");
    fx_advance(f, 30000);
    assert_int_equal(fx_count_type(f, 1, "HEARTBEAT") + fx_count_type(f, 2, "HEARTBEAT"), 0);
    srv_fault_drop_heartbeats(f->c, "carol", 1);
    fx_ready(f, 3, "carol", "home");
    fx_reset(f);
    fx_advance(f, 30000);
    assert_int_equal(fx_count_type(f, 3, "HEARTBEAT"), 0);
    fx_ws_send(f, 3, "{\"type\":\"HEARTBEAT\"}");
    fx_advance(f, 30000);
    assert_int_equal(fx_count_type(f, 3, "HEARTBEAT"), 1);
    fx_free(f);
}

static void test_state_and_deadline(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    fx_ready(f, 1, "alice", "home");
    assert_int_equal(fx_ws_open(f, 2, "bob", "home"), 0);
    json_t *st = srv_state(f->c);
    json_t *conns = json_object_get(st, "connections");
    assert_int_equal(json_array_size(conns), 2);
    json_t *c0 = json_array_get(conns, 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(c0, "user")), "alice");
    assert_string_equal(json_string_value(json_object_get(c0, "hh")), "home");
    assert_string_equal(json_string_value(json_object_get(c0, "state")), "ready");
    assert_string_equal(json_string_value(json_object_get(json_array_get(conns, 1), "state")),
                        "awaiting_hello");
    json_decref(st);
    /* bob's HELLO timeout is first */
    assert_int_equal(srv_next_deadline(f->c), f->now + 10000);
    srv_ws_closed(f->c, 2);
    assert_int_equal(srv_next_deadline(f->c), f->now + 30000);
    fx_free(f);
}

static void test_fuzz_messages(void **state)
{
    (void)state;
    fx *f = fx_new();
    hp_rng g;
    hp_rng_seed(&g, 11);
    static const char *frags[] = {"{", "}", "[", "]", "\"type\"", ":", ",", "\"HELLO\"",
                                  "\"HEARTBEAT\"", "\"revision\"", "\"locks\"", "0", "-3",
                                  "99999999999999999999", "null", "\"t1\"", "\"event_type\""};
    uint64_t conn = 1;
    assert_int_equal(fx_ws_open(f, conn, "alice", "home"), 0);
    for (int i = 0; i < 5000; i++) {
        char msg[400] = "";
        int nf = (int)(hp_rng_next(&g) % 14);
        for (int k = 0; k < nf; k++)
            strcat(msg, frags[hp_rng_next(&g) % (sizeof frags / sizeof frags[0])]);
        fx_ws_send(f, conn, msg);
        int code = fx_close_code(f, conn);
        if (code) {
            assert_true(code == HP_CLOSE_PROTOCOL || code == HP_CLOSE_TOO_BIG);
            conn++;
            fx_reset(f);
            assert_int_equal(fx_ws_open(f, conn, "alice", "home"), 0);
            if (hp_rng_next(&g) % 2)
                fx_hello(f, conn, 0);
        }
        if (i % 500 == 0) {
            fx_advance(f, 1000);
            fx_reset(f);
        }
    }
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_hello_ready_empty),
        cmocka_unit_test(test_ready_announces_scaled_heartbeat),
        cmocka_unit_test(test_replay_in_order),
        cmocka_unit_test(test_resync_newer_then_second_hello),
        cmocka_unit_test(test_resync_older_than_log),
        cmocka_unit_test(test_hello_timeout_4002),
        cmocka_unit_test(test_protocol_errors_4002),
        cmocka_unit_test(test_frame_too_big_1009),
        cmocka_unit_test(test_heartbeats_and_timeout_4008),
        cmocka_unit_test(test_any_message_resets_silence),
        cmocka_unit_test(test_token_expiry_4001),
        cmocka_unit_test(test_shutdown_1001),
        cmocka_unit_test(test_broadcast_to_ready_household_only),
        cmocka_unit_test(test_drop_heartbeats),
        cmocka_unit_test(test_state_and_deadline),
        cmocka_unit_test(test_fuzz_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_srv_remind.c - R-1: REMINDER_DUE at the remind_at instant, once per
 * value, logged (replayed), past-due fires at once, tombstones never fire,
 * reminders due while no core ran fire at the first tick of a new one.
 */
#include "srv_test_util.h"

/* T0 = 2026-11-25T10:00:00Z; 13:05+03:00 is T0 + 5 min. */
#define AT_5MIN "2026-11-25T13:05:00+03:00"
#define AT_9MIN "2026-11-25T10:09:00Z"

static int reminders(fx *f, uint64_t conn)
{
    return fx_count_type(f, conn, "REMINDER_DUE");
}

static void keepalive(fx *f, int64_t ms, uint64_t conn)
{
    while (ms > 0) {
        int64_t step = ms < 20000 ? ms : 20000;
        fx_ws_send(f, conn, "{\"type\":\"HEARTBEAT\"}");
        fx_advance(f, step);
        ms -= step;
    }
}

static void test_fires_at_instant_once(void **state)
{
    (void)state;
    /* checks:  */
    fx *f = fx_new();
    fx_ready(f, 1, "bob", "home");
    fx_ready(f, 2, "eve", "other");
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0,
                                   "{\"title\":\"Call mum\",\"remind_at\":\"" AT_5MIN "\"}"),
                     200);
    fx_reset(f);
    keepalive(f, 5 * 60000 - 1, 1);
    assert_int_equal(reminders(f, 1), 0);
    fx_ws_send(f, 2, "{\"type\":\"HEARTBEAT\"}");
    fx_advance(f, 1);
    assert_int_equal(reminders(f, 1), 1);
    assert_int_equal(reminders(f, 2), 0); /* */
    json_t *a = fx_frames(f, 1);
    json_t *e = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_object_get(v, "event_type")) e = v;
    assert_string_equal(json_string_value(json_object_get(e, "entity_id")), "t1");
    assert_int_equal(json_integer_value(json_object_get(e, "revision")), 2); /* a new revision */
    json_t *p = json_object_get(e, "payload");
    assert_string_equal(json_string_value(json_object_get(p, "remind_at")), AT_5MIN); /* verbatim */
    assert_string_equal(json_string_value(json_object_get(p, "title")), "Call mum");
    json_decref(a);
    /* once per value: later ticks, a rewrite with the same value, a restart */
    fx_reset(f);
    keepalive(f, 60000, 1);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 1,
                                   "{\"title\":\"Call mum!\",\"remind_at\":\"" AT_5MIN "\"}"),
                     200);
    keepalive(f, 60000, 1);
    assert_int_equal(reminders(f, 1), 0);
    /* a new value fires again at its own instant */
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 3,
                                   "{\"remind_at\":\"" AT_9MIN "\"}"), 200);
    assert_int_equal(srv_next_deadline(f->c) <= FX_T0 + 9 * 60000, 1);
    keepalive(f, FX_T0 + 9 * 60000 - f->now, 1);
    assert_int_equal(reminders(f, 1), 1);
    /* it is in the log: a client that was offline gets it on replay */
    assert_int_equal(fx_ws_open(f, 3, "carol", "home"), 0);
    fx_hello(f, 3, 0);
    assert_int_equal(reminders(f, 3), 2);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", "entity=task/t1"), 2);
    fx_free(f);
}

static void test_past_due_fires_at_once(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new();
    fx_ready(f, 1, "bob", "home");
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0,
                                   "{\"remind_at\":\"2020-01-01T00:00:00-05:00\"}"), 200);
    /* the core wants a tick now */
    assert_true(srv_next_deadline(f->c) <= f->now);
    fx_reset(f);
    fx_advance(f, 0);
    assert_int_equal(reminders(f, 1), 1);
    assert_true(srv_next_deadline(f->c) > f->now);
    fx_free(f);
}

static void test_tombstone_never_fires(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new();
    fx_ready(f, 1, "bob", "home");
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0,
                                   "{\"remind_at\":\"" AT_5MIN "\"}"), 200);
    fx_resp r = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/t1", "base_revision=1",
                        NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    /* deleted past-due too */
    assert_int_equal(fx_put_status(f, "alice", "home", "t2", 0,
                                   "{\"remind_at\":\"2020-01-01T00:00:00Z\"}"), 200);
    srv_free(f->c); /* no tick in between: the value never fired */
    fx_start(f);
    r = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/t2", "base_revision=3", NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    fx_ready(f, 2, "bob", "home");
    fx_reset(f);
    keepalive(f, 10 * 60000, 2);
    assert_int_equal(reminders(f, 2), 0);
    /* removing remind_at also cancels */
    assert_int_equal(fx_put_status(f, "alice", "home", "t3", 0,
                                   "{\"remind_at\":\"2026-11-25T10:20:00Z\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "t3", 5, "{\"remind_at\":null}"), 200);
    keepalive(f, 20 * 60000, 2);
    assert_int_equal(reminders(f, 2), 0);
    fx_free(f);
}

static void test_fires_after_restart(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new_store(1);
    fx_start(f);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0,
                                   "{\"title\":\"Bins\",\"remind_at\":\"" AT_5MIN "\"}"), 200);
    /* the server is down from T0+1min to T0+10min */
    fx_advance(f, 60000);
    srv_free(f->c);
    f->c = NULL;
    f->now += 9 * 60000;
    srv_store_close(f->st);
    char err[200];
    f->st = srv_store_open(f->dbpath, err, sizeof err);
    assert_non_null(f->st);
    fx_start(f);
    assert_true(srv_next_deadline(f->c) <= f->now);
    fx_advance(f, 0);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", "entity=task/t1"), 1);
    /* a client reconnecting with its old revision gets it by replay */
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 1);
    assert_int_equal(reminders(f, 1), 1);
    /* and it never fires again, across another restart */
    fx_reopen(f);
    fx_advance(f, 0);
    fx_advance(f, 60000);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", NULL), 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_at_instant_once),
        cmocka_unit_test(test_past_due_fires_at_once),
        cmocka_unit_test(test_tombstone_never_fires),
        cmocka_unit_test(test_fires_after_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

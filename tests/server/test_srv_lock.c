/*
 * test_srv_lock.c - CF-1 soft-locks: take, refuse (423), refresh by POST
 * and by client heartbeats, release, expire; LOCK_REFRESHED events (not
 * logged, household revision); locks never block writes; A-3.
 */
#include "srv_test_util.h"

#define LOCK "/api/v0.2/tasks/t1/lock"

/* The last LOCK_REFRESHED frame to conn (new reference) or NULL. */
static json_t *last_lock_event(fx *f, uint64_t conn)
{
    json_t *a = fx_frames(f, conn), *found = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *et = json_string_value(json_object_get(v, "event_type"));
        if (et && strcmp(et, "LOCK_REFRESHED") == 0) {
            json_decref(found);
            found = json_incref(v);
        }
    }
    json_decref(a);
    return found;
}

/* Advances ms while conns a and b (0 = none) send plain heartbeats every
 * 20 s, so WS-5 does not close them. */
static void alive(fx *f, int64_t ms, uint64_t a, uint64_t b)
{
    while (ms > 0) {
        int64_t step = ms < 20000 ? ms : 20000;
        if (a)
            fx_ws_send(f, a, "{\"type\":\"HEARTBEAT\"}");
        if (b)
            fx_ws_send(f, b, "{\"type\":\"HEARTBEAT\"}");
        fx_advance(f, step);
        ms -= step;
    }
}

static const char *pl(json_t *ev, const char *k)
{
    return json_string_value(json_object_get(json_object_get(ev, "payload"), k));
}

static void test_lock_lifecycle(void **state)
{
    (void)state;
    /* checks: CF-1.1 CF-1.2 CF-1.6 */
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{}"), 200);
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    fx_reset(f);

    /* take: 200 {holder, expires_at = now + 2 min, UTC Z} */
    fx_resp r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "holder")), "alice");
    assert_string_equal(json_string_value(json_object_get(r.body, "expires_at")),
                        "2026-11-25T10:02:00.000Z");
    fx_resp_free(&r);
    json_t *ev = last_lock_event(f, 2);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "entity_id")), "t1");
    assert_int_equal(json_integer_value(json_object_get(ev, "revision")), 1); /* household's */
    assert_string_equal(pl(ev, "holder"), "alice");
    assert_string_equal(pl(ev, "state"), "held");
    assert_string_equal(pl(ev, "expires_at"), "2026-11-25T10:02:00.000Z");
    json_decref(ev);
    /* not in the log */
    json_t *st = srv_state(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "events")), 1);
    json_t *lk = json_object_get(json_object_get(json_object_get(json_object_get(st, "households"), "home"), "locks"), "t1");
    assert_string_equal(json_string_value(json_object_get(lk, "holder")), "alice");
    json_decref(st);

    /* another user: 423 with holder and expiry */
    fx_advance(f, 10000);
    r = fx_http(f, "bob", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 423);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "locked");
    assert_string_equal(json_string_value(json_object_get(r.body, "holder")), "alice");
    assert_string_equal(json_string_value(json_object_get(r.body, "expires_at")),
                        "2026-11-25T10:02:00.000Z");
    fx_resp_free(&r);
    /* locks never block writes */
    assert_int_equal(fx_put_status(f, "bob", "home", "t1", 1, "{\"title\":\"bob\"}"), 200);
    /* the same user re-locking refreshes */
    fx_reset(f);
    r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "expires_at")),
                        "2026-11-25T10:02:10.000Z");
    fx_resp_free(&r);
    ev = last_lock_event(f, 1);
    assert_int_equal(json_integer_value(json_object_get(ev, "revision")), 2);
    json_decref(ev);
    /* bob cannot release alice's lock */
    r = fx_http(f, "bob", "home", "DELETE", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 423);
    fx_resp_free(&r);
    /* release: 204 + released event; again: 204, no event */
    fx_reset(f);
    r = fx_http(f, "alice", "home", "DELETE", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_null(r.raw);
    fx_resp_free(&r);
    ev = last_lock_event(f, 2);
    assert_string_equal(pl(ev, "state"), "released");
    assert_string_equal(pl(ev, "holder"), "alice");
    json_decref(ev);
    fx_reset(f);
    r = fx_http(f, "alice", "home", "DELETE", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 204);
    fx_resp_free(&r);
    assert_null(last_lock_event(f, 2));
    /* now bob can take it; a lock on a task that does not exist is fine */
    r = fx_http(f, "bob", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    r = fx_http(f, "bob", "home", "POST", "/api/v0.2/tasks/ghost/lock", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    fx_free(f);
}

static void test_lock_expiry_and_heartbeat_refresh(void **state)
{
    (void)state;
    /* checks: CF-1.3 CF-1.5 */
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    fx_reset(f);
    fx_resp r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "POST", "/api/v0.2/tasks/t2/lock", NULL, NULL, NULL);
    fx_resp_free(&r);
    assert_int_equal(srv_next_deadline(f->c), f->now + 30000); /* heartbeat first */
    /* CF-1: the client's heartbeat refreshes the locks it lists (only its
     * own: bob listing t1 does nothing) */
    alive(f, 100000, 1, 2);
    fx_reset(f);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\",\"zz\"]}");
    fx_ws_send(f, 2, "{\"type\":\"HEARTBEAT\",\"locks\":[\"t2\"]}");
    json_t *ev = last_lock_event(f, 2);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "entity_id")), "t1");
    assert_string_equal(pl(ev, "state"), "held");
    assert_string_equal(pl(ev, "expires_at"), "2026-11-25T10:03:40.000Z");
    json_decref(ev);
    assert_int_equal(fx_count_type(f, 2, "LOCK_REFRESHED"), 1);
    /* t2 expires at 10:02:00 exactly; t1 lives on */
    fx_reset(f);
    alive(f, 19999, 1, 2);
    assert_int_equal(fx_count_type(f, 2, "LOCK_REFRESHED"), 0);
    fx_advance(f, 1);
    ev = last_lock_event(f, 2);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "entity_id")), "t2");
    assert_string_equal(pl(ev, "state"), "expired");
    assert_string_equal(pl(ev, "expires_at"), "2026-11-25T10:02:00.000Z");
    json_decref(ev);
    /* bob takes t2 now */
    r = fx_http(f, "bob", "home", "POST", "/api/v0.2/tasks/t2/lock", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    /* t1 expires at 10:03:40 */
    fx_reset(f);
    alive(f, 100000 - 1, 1, 2);
    assert_int_equal(fx_count_type(f, 1, "LOCK_REFRESHED"), 0);
    fx_advance(f, 1);
    ev = last_lock_event(f, 1);
    assert_string_equal(json_string_value(json_object_get(ev, "entity_id")), "t1");
    assert_string_equal(pl(ev, "state"), "expired");
    json_decref(ev);
    json_t *st = srv_state(f->c);
    json_t *locks = json_object_get(json_object_get(json_object_get(st, "households"), "home"), "locks");
    assert_null(json_object_get(locks, "t1"));
    assert_non_null(json_object_get(locks, "t2"));
    json_decref(st);
    fx_free(f);
}

static void test_expired_but_unticked_lock_is_free(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_ready(f, 2, "carol", "home");
    fx_resp r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    fx_resp_free(&r);
    f->now += 120000; /* no tick */
    fx_reset(f);
    r = fx_http(f, "bob", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "holder")), "bob");
    fx_resp_free(&r);
    /* observers saw expired (alice) then held (bob) */
    json_t *a = fx_frames(f, 2);
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(pl(json_array_get(a, 0), "state"), "expired");
    assert_string_equal(pl(json_array_get(a, 1), "holder"), "bob");
    json_decref(a);
    fx_free(f);
}

static void test_lock_isolation(void **state)
{
    (void)state;
    /* checks: CF-1.4 */
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "eve", "other");
    fx_reset(f);
    fx_resp r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(fx_count_type(f, 2, "LOCK_REFRESHED"), 0);
    /* eve's t1 is another task: free */
    r = fx_http(f, "eve", "other", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(fx_count_type(f, 1, "LOCK_REFRESHED"), 1);
    /* eve's heartbeat cannot refresh alice's lock; eve cannot release it */
    fx_reset(f);
    fx_ws_send(f, 2, "{\"type\":\"HEARTBEAT\",\"locks\":[\"t1\"]}");
    assert_int_equal(fx_count_type(f, 1, "LOCK_REFRESHED"), 0);
    r = fx_http(f, "alice", "other", "DELETE", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 423);
    fx_resp_free(&r);
    /* bad ids */
    r = fx_http(f, "alice", "home", "POST", "/api/v0.2/tasks/a b/lock", NULL, NULL, NULL);
    assert_int_equal(r.status, 400);
    fx_resp_free(&r);
    fx_free(f);
}

static void test_locks_lost_on_restart(void **state)
{
    (void)state;
    /* checks: CF-1.8 */
    fx *f = fx_new();
    fx_resp r = fx_http(f, "alice", "home", "POST", LOCK, NULL, NULL, NULL);
    fx_resp_free(&r);
    fx_restart(f);
    r = fx_http(f, "bob", "home", "POST", LOCK, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_lifecycle),
        cmocka_unit_test(test_lock_expiry_and_heartbeat_refresh),
        cmocka_unit_test(test_expired_but_unticked_lock_is_free),
        cmocka_unit_test(test_lock_isolation),
        cmocka_unit_test(test_locks_lost_on_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

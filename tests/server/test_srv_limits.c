/*
 * test_srv_limits.c - the server core's limits (docs/LIMITS.md, "Server
 * transport"): the replay streamed under flow control and its bound
 * (WS-2), connections per user and in total, locks per user and the lock
 * ids read from one HEARTBEAT (CF-1).
 */
#include "srv_test_util.h"

static int count_kind(fx *f, uint64_t conn, hp_out_kind k)
{
    int n = 0;
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == k && f->items[i].id == conn)
            n++;
    return n;
}

static void limits(fx *f, size_t replay_max, size_t chunk, int per_user, int total, int locks,
                   int hb_ids)
{
    srv_limits l;
    srv_limits_defaults(&l);
    l.replay_max_bytes = replay_max;
    if (chunk)
        l.replay_chunk_bytes = chunk;
    if (per_user)
        l.conns_per_user = per_user;
    if (total)
        l.conns_total = total;
    if (locks)
        l.locks_per_user = locks;
    if (hb_ids)
        l.heartbeat_lock_ids = hb_ids;
    srv_set_limits(f->c, &l);
}

/* ---- WS-2: the replay streamed ---------------------------------------- */

static void test_replay_streamed_under_flow_control(void **state)
{
    (void)state;
    /* checks: WS-2.3 */
    fx *f = fx_new();
    limits(f, 0, 1, 0, 0, 0, 0); /* one event per chunk */
    f->manual_pull = 1;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(fx_put_status(f, "alice", "home", id, 0, "{}"), 200);
    }
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_reset(f);
    fx_hello(f, 1, 0);
    /* Only the first chunk, and a request to be called when it has left:
     * a replay is never pushed whole. */
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1);
    assert_int_equal(fx_count_type(f, 1, "READY"), 0);
    assert_int_equal(count_kind(f, 1, HP_OUT_WS_WANT_WRITABLE), 1);
    /* A write during the replay is not broadcast to the replaying
     * connection: the replay reads it from the log (no gap, no duplicate). */
    assert_int_equal(fx_put_status(f, "alice", "home", "late", 0, "{}"), 200);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1);
    for (int guard = 0; guard < 20 && !fx_count_type(f, 1, "READY"); guard++) {
        srv_ws_writable(f->c, 1);
        fx_pump(f);
    }
    json_t *a = fx_frames(f, 1);
    assert_int_equal(json_array_size(a), 7);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(a, i), "revision")),
                         (json_int_t)i + 1);
    json_t *ready = json_array_get(a, 6);
    assert_string_equal(json_string_value(json_object_get(ready, "type")), "READY");
    assert_int_equal(json_integer_value(json_object_get(ready, "revision")), 6);
    json_decref(a);
    /* READY: events flow again; a pull now does nothing. */
    fx_reset(f);
    srv_ws_writable(f->c, 1);
    fx_pump(f);
    assert_int_equal(f->nitems, 0);
    assert_int_equal(fx_put_status(f, "alice", "home", "after", 0, "{}"), 200);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1);
    fx_free(f);
}

static void test_replay_over_bound_is_resync(void **state)
{
    (void)state;
    /* checks: WS-2.6 */
    fx *f = fx_new();
    limits(f, 2000, 0, 0, 0, 0, 0);
    char task[900];
    snprintf(task, sizeof task, "{\"title\":\"t\",\"notes\":\"%0800d\"}", 0);
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(fx_put_status(f, "alice", "home", id, 0, task), 200);
    }
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 0); /* ~2.7 KB of replay > 2000 */
    assert_int_equal(fx_count_type(f, 1, "RESYNC_REQUIRED"), 1);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 0);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "limit_reached", "limit=replay_max_bytes"), 1);
    /* After the reload the client HELLOs with a recent revision: a small
     * replay is served. */
    fx_reset(f);
    fx_hello(f, 1, 2);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1);
    assert_int_equal(fx_count_type(f, 1, "READY"), 1);
    fx_free(f);
}

static void test_log_trimmed_during_replay_is_resync(void **state)
{
    (void)state;
    /* checks: WS-2.6 */
    fx *f = fx_new_store(0);
    f->pol.event_retain = 3;
    fx_start(f);
    limits(f, 0, 1, 0, 0, 0, 0);
    f->manual_pull = 1;
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "a%d", i);
        assert_int_equal(fx_put_status(f, "alice", "home", id, 0, "{}"), 200);
    }
    assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
    fx_hello(f, 1, 0);
    assert_int_equal(fx_count_type(f, 1, "TASK_UPDATED"), 1);
    for (int i = 0; i < 3; i++) { /* revisions 1..3 leave the log */
        char id[8];
        snprintf(id, sizeof id, "b%d", i);
        assert_int_equal(fx_put_status(f, "alice", "home", id, 0, "{}"), 200);
    }
    srv_ws_writable(f->c, 1);
    fx_pump(f);
    assert_int_equal(fx_count_type(f, 1, "RESYNC_REQUIRED"), 1);
    assert_int_equal(fx_count_type(f, 1, "READY"), 0);
    assert_int_equal(fx_close_code(f, 1), 0);
    fx_free(f);
}

/* ---- connections --------------------------------------------------------- */

static void test_connection_limits(void **state)
{
    (void)state;
    fx *f = fx_new();
    limits(f, 0, 0, 2, 3, 0, 0);
    assert_int_equal(fx_ws_open(f, 1, "alice", "home"), 0);
    assert_int_equal(fx_ws_open(f, 2, "alice", "home"), 0);
    char *tok = fx_token_at(f, "alice", "home", 3600);
    char q[2048];
    snprintf(q, sizeof q, "token=%s", tok);
    free(tok);
    char *body = NULL;
    assert_int_equal(srv_ws_open(f->c, 3, HP_STREAM_PATH, q, &body), 429);
    assert_non_null(strstr(body, "too_many_connections"));
    assert_non_null(strstr(body, "limit 2"));
    free(body);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "limit_reached", "limit=conns_per_user"), 1);
    assert_int_equal(fx_ws_open(f, 4, "bob", "home"), 0);
    assert_int_equal(fx_ws_open(f, 5, "carol", "home"), 503);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "limit_reached", "limit=conns_total"), 1);
    /* A closed connection frees its place. */
    srv_ws_closed(f->c, 2);
    assert_int_equal(fx_ws_open(f, 6, "alice", "home"), 0);
    fx_free(f);
}

/* ---- CF-1 ----------------------------------------------------------------- */

static int lock_status(fx *f, const char *user, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v0.2/tasks/%s/lock", id);
    fx_resp r = fx_http(f, user, "home", "POST", path, NULL, NULL, NULL);
    int s = r.status;
    fx_resp_free(&r);
    return s;
}

static void test_heartbeat_with_3000_lock_ids(void **state)
{
    (void)state;
    /* checks: CF-1.3 */
    fx *f = fx_new();
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    assert_int_equal(lock_status(f, "alice", "a"), 200);
    f->now += 1000;
    /* One 26 KB HEARTBEAT naming 3,000 lock ids (the same one, and ids
     * alice does not hold). */
    size_t cap = 3000 * 8 + 64;
    char *hb = malloc(cap);
    size_t o = (size_t)snprintf(hb, cap, "{\"type\":\"HEARTBEAT\",\"locks\":[");
    for (int i = 0; i < 3000; i++)
        o += (size_t)snprintf(hb + o, cap - o, "%s\"%s\"", i ? "," : "", i % 2 ? "a" : "zz");
    snprintf(hb + o, cap - o, "]}");
    fx_reset(f);
    fx_ws_send(f, 1, hb);
    free(hb);
    /* alice holds one lock: one LOCK_REFRESHED per connection, not 1,500. */
    assert_int_equal(fx_count_type(f, 2, "LOCK_REFRESHED"), 1);
    assert_int_equal(fx_count_type(f, 1, "LOCK_REFRESHED"), 1);
    assert_int_equal(fx_close_code(f, 1), 0);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "limit_reached", "limit=heartbeat_lock_ids"), 1);
    fx_free(f);
}

static void test_heartbeat_reads_first_ids_only(void **state)
{
    (void)state;
    fx *f = fx_new();
    limits(f, 0, 0, 0, 0, 0, 2);
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    assert_int_equal(lock_status(f, "alice", "a"), 200);
    assert_int_equal(lock_status(f, "alice", "b"), 200);
    assert_int_equal(lock_status(f, "alice", "c"), 200);
    f->now += 1000;
    fx_reset(f);
    fx_ws_send(f, 1, "{\"type\":\"HEARTBEAT\",\"locks\":[\"a\",\"b\",\"c\"]}");
    assert_int_equal(fx_count_type(f, 2, "LOCK_REFRESHED"), 2);
    fx_free(f);
}

static void test_locks_per_user(void **state)
{
    (void)state;
    fx *f = fx_new();
    limits(f, 0, 0, 0, 0, 2, 0);
    assert_int_equal(lock_status(f, "alice", "a"), 200);
    assert_int_equal(lock_status(f, "alice", "b"), 200);
    fx_resp r = fx_http(f, "alice", "home", "POST", "/api/v0.2/tasks/c/lock", NULL, NULL, NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "too_many_locks");
    fx_resp_free(&r);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "limit_reached", "limit=locks_per_user"), 1);
    /* refreshing a held one is not a new lock; another user is not affected */
    assert_int_equal(lock_status(f, "alice", "a"), 200);
    assert_int_equal(lock_status(f, "bob", "c"), 200);
    /* a released lock frees its place */
    fx_resp d = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/b/lock", NULL, NULL, NULL);
    assert_int_equal(d.status, 204);
    fx_resp_free(&d);
    assert_int_equal(lock_status(f, "alice", "d"), 200);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_streamed_under_flow_control),
        cmocka_unit_test(test_replay_over_bound_is_resync),
        cmocka_unit_test(test_log_trimmed_during_replay_is_resync),
        cmocka_unit_test(test_connection_limits),
        cmocka_unit_test(test_heartbeat_with_3000_lock_ids),
        cmocka_unit_test(test_heartbeat_reads_first_ids_only),
        cmocka_unit_test(test_locks_per_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

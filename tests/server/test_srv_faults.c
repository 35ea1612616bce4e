/*
 * test_srv_faults.c - the admin API's scoped faults (fake_server/srv_faults.c)
 * driven in-process on a core with a fake clock (srv_test_util.h): strict
 * bodies (a refused body arms nothing), scope (household / user / device),
 * counts and the list, expiry on the core's clock, clearing one or all,
 * hold_response, the immediate faults (inject, close_stream), and the
 * fault_applied line naming who it hit.
 */
#include "srv_test_util.h"

static int arm(fx *f, const char *body, json_t **res, char *err)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    json_t *r = NULL;
    err[0] = '\0';
    int rc = srv_faults_arm(f->c, b, &r, err, 600);
    json_decref(b);
    if (res)
        *res = r;
    else
        json_decref(r);
    fx_pump(f);
    return rc;
}

static size_t n_armed(fx *f)
{
    json_t *l = srv_faults_list(f->c);
    size_t n = json_array_size(l);
    json_decref(l);
    return n;
}

static json_int_t left_of_first(fx *f)
{
    json_t *l = srv_faults_list(f->c);
    json_int_t v = json_integer_value(json_object_get(json_array_get(l, 0), "left"));
    json_decref(l);
    return v;
}

/* A refused body (400 naming the key) arms nothing, not even its valid
 * parts. */
static void test_strict_bodies_arm_nothing(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    static const struct {
        const char *body, *named;
    } bad[] = {
        {"{\"fail_requests\": {\"status\": 503, \"path\": \"/x\"}}", "path_prefix"},
        {"{\"fail_requests\": {\"status\": \"503\"}}", "status"},
        {"{\"fail_requests\": {\"status\": 503, \"count\": 100000000}}", "count"},
        {"{\"fail_requests\": {\"status\": 503, \"expires_in\": -1}}", "expires_in"},
        {"{\"drop_heartbeats\": {\"device\": 7}}", "device"},
        {"{\"force_conflict\": {\"id\": \"t1\"}, \"fail_request\": {\"status\": 503}}",
         "fail_requests"},
        {"{\"hold_response\": {\"seconds\": 0}}", "seconds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(arm(f, bad[i].body, NULL, err), -1);
        if (!strstr(err, bad[i].named))
            fail_msg("%s: the error does not name %s: %s", bad[i].body, bad[i].named, err);
        assert_int_equal(n_armed(f), 0);
    }
    fx_free(f);
}

/* fail_requests scoped to a user: others pass; the count runs down in the
 * list; the log line names who it hit. */
static void test_scoped_count_and_who(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    json_t *res = NULL;
    assert_int_equal(arm(f, "{\"fail_requests\": {\"status\": 503, \"count\": 2, "
                            "\"user\": \"bob\", \"method\": \"PUT\"}}", &res, err), 0);
    assert_int_equal(json_array_size(res), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0), "left")), 2);
    json_decref(res);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"a\"}"), 200);
    assert_int_equal(n_armed(f), 1);
    assert_int_equal(fx_put_status(f, "bob", "home", "t2", 0, "{\"title\":\"b\"}"), 503);
    assert_int_equal(left_of_first(f), 1);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "fault_applied",
                                  "kind=fail_requests id=1 left=1 user=bob hh=home dev=dev1"), 1);
    fx_resp r = fx_http(f, "bob", "home", "GET", "/api/v0.2/tasks", "since=0", NULL, NULL);
    assert_int_equal(r.status, 200); /* method GET: not in scope */
    fx_resp_free(&r);
    assert_int_equal(fx_put_status(f, "bob", "home", "t2", 0, "{\"title\":\"b\"}"), 503);
    assert_int_equal(n_armed(f), 0); /* used up: gone */
    assert_int_equal(fx_put_status(f, "bob", "home", "t2", 0, "{\"title\":\"b\"}"), 200);
    fx_assert_no_token_logged(f);
    fx_free(f);
}

/* expires_in runs on the core's clock: the fault is gone, logged. */
static void test_expiry(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    assert_int_equal(arm(f, "{\"force_conflict\": {\"id\": \"t1\", \"expires_in\": 10}}", NULL,
                         err), 0);
    json_t *l = srv_faults_list(f->c);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "expires_in_ms")),
                     10000);
    json_decref(l);
    fx_advance(f, 9999);
    assert_int_equal(n_armed(f), 1);
    fx_advance(f, 2);
    assert_int_equal(n_armed(f), 0);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "fault_expired", "kind=force_conflict"), 1);
    /* expired before use: the write is not forced into a 409 */
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"a\"}"), 200);
    fx_free(f);
}

static void test_clear_one_and_all(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    json_t *res = NULL;
    assert_int_equal(arm(f, "{\"force_conflict\": {\"id\": \"t1\"}, \"drop_heartbeats\": "
                            "{\"count\": 3}, \"refuse_upgrade\": {\"status\": 503}}", &res, err),
                     0);
    assert_int_equal(json_array_size(res), 3);
    json_int_t id = json_integer_value(json_object_get(json_array_get(res, 0), "id"));
    /* the fault's own id (what DELETE takes), the task under "task" */
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "task")), "t1");
    json_decref(res);
    assert_int_equal(srv_faults_clear(f->c, (uint64_t)id), 1);
    assert_int_equal(srv_faults_clear(f->c, (uint64_t)id), 0);
    assert_int_equal(n_armed(f), 2);
    assert_int_equal(srv_faults_clear(f->c, 0), 2);
    assert_int_equal(n_armed(f), 0);
    fx_free(f);
}

/* hold_response: the write is applied and its answer carries hold_ms. */
static void test_hold_response(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    assert_int_equal(arm(f, "{\"hold_response\": {\"seconds\": 12, \"method\": \"PUT\"}}", NULL,
                         err), 0);
    fx_reset(f);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"a\"}"), 200);
    int64_t held = -1;
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE)
            held = f->items[i].hold_ms;
    assert_int_equal(held, 12000);
    assert_int_equal(n_armed(f), 0);
    fx_free(f);
}

/* inject and close_stream act now on the live connections in scope; with
 * none in scope the body is refused (-2) and nothing happens. */
static void test_immediate_faults(void **state)
{
    (void)state;
    fx *f = fx_new();
    char err[600];
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "bob", "home");
    fx_reset(f);
    assert_int_equal(arm(f, "{\"inject\": {\"type\": \"RESYNC_REQUIRED\", \"user\": \"alice\"}}",
                         NULL, err), 0);
    assert_int_equal(fx_count_type(f, 1, "RESYNC_REQUIRED"), 1);
    assert_int_equal(fx_count_type(f, 2, "RESYNC_REQUIRED"), 0);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "fault_applied",
                                  "kind=inject type=RESYNC_REQUIRED conn=1 user=alice hh=home "
                                  "dev=dev1"), 1);
    assert_int_equal(arm(f, "{\"inject\": {\"type\": \"FUTURE_EVENT\", \"user\": \"bob\"}}", NULL,
                         err), 0);
    assert_int_equal(fx_count_type(f, 2, "FUTURE_EVENT"), 1);
    assert_int_equal(arm(f, "{\"close_stream\": {\"code\": 4321, \"user\": \"bob\"}}", NULL, err),
                     0);
    assert_int_equal(fx_close_code(f, 2), 4321);
    assert_int_equal(fx_close_code(f, 1), 0);
    assert_int_equal(arm(f, "{\"close_stream\": {\"code\": 4321, \"user\": \"carol\"}, "
                            "\"force_conflict\": {\"id\": \"t1\"}}", NULL, err), -2);
    assert_int_equal(n_armed(f), 0); /* the force_conflict beside it was not armed */
    assert_int_equal(arm(f, "{\"close_stream\": {\"code\": 1005}}", NULL, err), -1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_bodies_arm_nothing),
        cmocka_unit_test(test_scoped_count_and_who),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_clear_one_and_all),
        cmocka_unit_test(test_hold_response),
        cmocka_unit_test(test_immediate_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

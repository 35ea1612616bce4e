/*
 * test_srv_state.c - srv_state_part() against its definition: for every set
 * of parts and every task filter, what srv_state_part gives equals
 * srv_state() with the parts not asked reset to their defaults (revision 0,
 * tasks {}, locks {}; "connections" and "events" absent), TASKS limited to
 * the one task when a task id is given, and the households in srv_state()'s
 * order (the checker's "first household that has it" reads that order).
 * The simulator's checker reads the server only through srv_state_part, so
 * a part that drifted from srv_state would judge a different server.
 */
#include "srv_test_util.h"

/* srv_state() projected as srv_state_part(parts, tid) must give it. */
static json_t *projected(const json_t *full, unsigned parts, const char *tid)
{
    json_t *want = json_object();
    if (parts & (SRV_STATE_REVISIONS | SRV_STATE_TASKS | SRV_STATE_LOCKS)) {
        json_t *hhs = json_object();
        const char *hh;
        json_t *e;
        json_object_foreach(json_object_get(full, "households"), hh, e) {
            json_t *tasks = json_object();
            if (parts & SRV_STATE_TASKS) {
                json_t *all = json_object_get(e, "tasks");
                if (!tid)
                    json_object_update(tasks, all);
                else if (json_object_get(all, tid))
                    json_object_set(tasks, tid, json_object_get(all, tid));
            }
            json_t *rev = parts & SRV_STATE_REVISIONS ? json_incref(json_object_get(e, "revision"))
                                                      : json_integer(0);
            json_object_set_new(hhs, hh,
                                json_pack("{s:o, s:o, s:o}", "revision", rev,
                                          "tasks", tasks, "locks",
                                          parts & SRV_STATE_LOCKS
                                              ? json_deep_copy(json_object_get(e, "locks"))
                                              : json_object()));
        }
        json_object_set_new(want, "households", hhs);
    }
    if (parts & SRV_STATE_CONNS)
        json_object_set(want, "connections", json_object_get(full, "connections"));
    if (parts & SRV_STATE_EVENTS)
        json_object_set(want, "events", json_object_get(full, "events"));
    return want;
}

/* The households' names in order, comma-separated (malloc'd). */
static char *hh_order(const json_t *state)
{
    char buf[256] = "";
    const char *hh;
    json_t *e;
    json_object_foreach(json_object_get(state, "households"), hh, e) {
        strncat(buf, hh, sizeof buf - strlen(buf) - 2);
        strcat(buf, ",");
    }
    return strdup(buf);
}

static void check_all_parts(fx *f, size_t *checked)
{
    static const char *const tids[] = {NULL, "t1", "t2", "c1", "nope"};
    json_t *full = srv_state(f->c);
    for (unsigned parts = 0; parts <= SRV_STATE_ALL; parts++) {
        for (size_t k = 0; k < sizeof tids / sizeof *tids; k++) {
            json_t *got = srv_state_part(f->c, parts, tids[k]);
            json_t *want = projected(full, parts, tids[k]);
            if (!json_equal(got, want)) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
                fail_msg("parts 0x%x, task %s:\n got  %s\n want %s", parts,
                         tids[k] ? tids[k] : "(all)", g, w);
            }
            char *go = hh_order(got), *wo = hh_order(want);
            assert_string_equal(go, wo);
            free(go);
            free(wo);
            json_decref(got);
            json_decref(want);
            (*checked)++;
        }
    }
    json_decref(full);
}

static void test_part_is_srv_state_projected(void **state)
{
    (void)state;
    size_t checked = 0;
    fx *f = fx_new();
    /* Empty: no household at all. */
    check_all_parts(f, &checked);
    /* Two households, tasks, a deleted task, a lock, live connections. */
    assert_int_equal(fx_put_status(f, "carol", "work", "c1", 0, "{\"title\":\"Report\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"Milk\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "t2", 0, "{\"title\":\"Eggs\"}"), 200);
    assert_int_equal(fx_put_status(f, "bob", "home", "t1", 1, "{\"title\":\"Oat milk\"}"), 200);
    fx_resp r = fx_http(f, "bob", "home", "DELETE", "/api/v0.2/tasks/t2", NULL, NULL, NULL);
    fx_resp_free(&r);
    fx_ready(f, 1, "alice", "home");
    fx_ready(f, 2, "carol", "work");
    r = fx_http(f, "alice", "home", "POST", "/api/v0.2/tasks/t1/lock", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    check_all_parts(f, &checked);
    /* The state must have had something in every part, or a part could
     * be wrong unseen. */
    json_t *full = srv_state(f->c);
    json_t *home = json_object_get(json_object_get(full, "households"), "home");
    assert_true(json_integer_value(json_object_get(home, "revision")) > 0);
    assert_non_null(json_object_get(json_object_get(home, "tasks"), "t1"));
    /* srv_state's documented lock shape: {holder, expires_at}, no more. */
    json_t *lock = json_object_get(json_object_get(home, "locks"), "t1");
    assert_int_equal(json_object_size(lock), 2);
    assert_string_equal(json_string_value(json_object_get(lock, "holder")), "alice");
    assert_non_null(json_string_value(json_object_get(lock, "expires_at")));
    assert_int_equal(json_array_size(json_object_get(full, "connections")), 2);
    assert_true(json_integer_value(json_object_get(full, "events")) > 0);
    assert_int_equal(json_object_size(json_object_get(full, "households")), 2);
    json_decref(full);
    /* Three minutes on (the lock expired, the connections missed their
     * heartbeats): the same again. */
    fx_advance(f, 3 * 60 * 1000);
    check_all_parts(f, &checked);
    assert_int_equal(checked, 3 * 32 * 5);
    assert_null(srv_state_part(NULL, SRV_STATE_ALL, NULL));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_is_srv_state_projected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

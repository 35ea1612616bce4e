/*
 * test_srv_caches.c - what the server keeps in memory instead of asking
 * SQLite again gives the answers the queries gave:
 *   - a memory store's household counters (revision, trimmed) follow every
 *     bump, trim, rollback (whole or to a savepoint) and wipe exactly as a
 *     file store, which always asks the table, reads them;
 *   - the idempotency trim skipped while no record can be out of the
 *     window deletes what it deleted before, also after a rollback brought
 *     trimmed records back and when the clock went backwards;
 *   - the next-reminder cache skipped after a write that adds no reminder
 *     still names the right instant;
 *   - a key never written (srv_keyset.h) is answered "absent" without a
 *     query, and one written, even rolled back, is looked up;
 *   - a lockless client HEARTBEAT answered without the full parse (WS-2,
 *     WS-5) behaves as the same message written another way.
 * Inputs: the core and store through srv_test_util.h.  Outputs: cmocka.
 */
#include "srv_test_util.h"
#include "srv_internal.h"
#include "srv_keyset.h"

/* One household step on st: bump + event append (retain 2) in its own
 * transaction, committed or rolled back. */
static int64_t write_one(srv_store *st, const char *hh, int commit)
{
    assert_int_equal(srv_store_begin(st), 0);
    int64_t rev = srv_store_bump(st, hh);
    assert_true(rev > 0);
    json_t *p = json_pack("{s:I}", "n", (json_int_t)rev);
    assert_int_equal(srv_store_event_append(st, hh, rev, "TASK_UPDATED", "t1", p, NULL, 2), 0);
    json_decref(p);
    if (commit)
        assert_int_equal(srv_store_commit(st), 0);
    else
        srv_store_rollback(st);
    return rev;
}

static void expect_counters(srv_store *st, const char *hh, int64_t rev, int64_t trimmed)
{
    int64_t r = -1, t = -1;
    assert_int_equal(srv_store_household(st, hh, &r, &t), 0);
    assert_int_equal(r, rev);
    assert_int_equal(t, trimmed);
    assert_int_equal(srv_store_revision(st, hh), rev);
    assert_int_equal(srv_store_trimmed(st, hh), trimmed);
}

/* The same steps on a file store and on a memory store read the same. */
static void household_steps(srv_store *st)
{
    expect_counters(st, "home", 0, 0); /* never written: 0 and 0 */
    assert_int_equal(write_one(st, "home", 1), 1);
    assert_int_equal(write_one(st, "home", 1), 2);
    expect_counters(st, "home", 2, 0);
    assert_int_equal(write_one(st, "home", 1), 3); /* retain 2: revision 1 trimmed */
    expect_counters(st, "home", 3, 1);
    assert_int_equal(write_one(st, "home", 0), 4); /* rolled back: 4 again next */
    expect_counters(st, "home", 3, 1);
    assert_int_equal(write_one(st, "home", 1), 4);
    expect_counters(st, "home", 4, 2);
    assert_int_equal(write_one(st, "other", 0), 1); /* a new household, rolled back */
    expect_counters(st, "other", 0, 0);
    /* group commit: a savepoint rolled back undoes only its own bump */
    assert_int_equal(srv_store_begin(st), 0);
    assert_int_equal(srv_store_savepoint(st), 0);
    assert_int_equal(srv_store_bump(st, "home"), 5);
    assert_int_equal(srv_store_release(st), 0);
    assert_int_equal(srv_store_savepoint(st), 0);
    assert_int_equal(srv_store_bump(st, "home"), 6);
    assert_int_equal(srv_store_bump(st, "other"), 1);
    srv_store_rollback_to(st);
    expect_counters(st, "home", 5, 2);
    expect_counters(st, "other", 0, 0);
    assert_int_equal(srv_store_commit(st), 0);
    expect_counters(st, "home", 5, 2);
    /* more households than the cache has slots */
    char hh[32];
    for (int i = 0; i < 20; i++) {
        snprintf(hh, sizeof hh, "hh%02d", i);
        assert_int_equal(write_one(st, hh, 1), 1);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(hh, sizeof hh, "hh%02d", i);
        expect_counters(st, hh, 1, 0);
        assert_int_equal(write_one(st, hh, 1), 2);
    }
    expect_counters(st, "home", 5, 2);
    assert_int_equal(srv_store_wipe(st), 0);
    expect_counters(st, "home", 0, 0);
    assert_int_equal(write_one(st, "home", 1), 1);
    expect_counters(st, "home", 1, 0);
}

static void test_household_counters(void **state)
{
    (void)state;
    fx *mem = fx_new_store(0);
    household_steps(mem->st);
    fx_free(mem);
    fx *file = fx_new_store(1);
    household_steps(file->st);
    fx_free(file);
}

/* A keyed write at `now` trimming records created before trim_before. */
static void idem_put(srv_store *st, const char *key, int64_t now, int64_t trim_before, int commit)
{
    assert_int_equal(srv_store_begin(st), 0);
    assert_int_equal(srv_store_idem_put(st, "home", "alice", key, "PUT /x", "fp", now, trim_before,
                                        200, "{}"),
                     0);
    if (commit)
        assert_int_equal(srv_store_commit(st), 0);
    else
        srv_store_rollback(st);
}

static int live(srv_store *st, const char *key)
{
    srv_idem_rec rec;
    int got = srv_store_idem_get(st, "home", "alice", key, INT64_MIN, &rec);
    free(rec.body);
    free(rec.request);
    return got;
}

static void idem_steps(srv_store *st)
{
    idem_put(st, "k1", 1000, 0, 1);
    idem_put(st, "k2", 1500, 500, 1); /* nothing before 500 */
    assert_int_equal(srv_store_idem_count(st), 2);
    idem_put(st, "k3", 5000, 1200, 1); /* k1 (1000) goes */
    assert_int_equal(srv_store_idem_count(st), 2);
    assert_int_equal(live(st, "k1"), 0);
    /* a trim rolled back: k2 and k3 are back, and the next trim finds them */
    idem_put(st, "k4", 9000, 6000, 0);
    assert_int_equal(srv_store_idem_count(st), 2);
    assert_int_equal(live(st, "k2"), 1);
    idem_put(st, "k5", 9000, 6000, 1);
    assert_int_equal(srv_store_idem_count(st), 1);
    assert_int_equal(live(st, "k5"), 1);
    /* the clock went backwards: a record older than the floor was added */
    idem_put(st, "k6", 100, 0, 1);
    assert_int_equal(srv_store_idem_count(st), 2);
    idem_put(st, "k7", 9100, 500, 1); /* k6 (100) goes, k5 (9000) stays */
    assert_int_equal(srv_store_idem_count(st), 2);
    assert_int_equal(live(st, "k6"), 0);
    /* a rolled-back insert leaves a floor that is still low enough */
    idem_put(st, "k8", 200, 0, 0);
    idem_put(st, "k9", 9200, 9050, 1); /* k5 (9000) goes */
    assert_int_equal(srv_store_idem_count(st), 2);
    assert_int_equal(live(st, "k5"), 0);
    /* a wipe, then the same again */
    assert_int_equal(srv_store_wipe(st), 0);
    assert_int_equal(srv_store_idem_count(st), 0);
    idem_put(st, "k1", 1000, 0, 1);
    idem_put(st, "k2", 3000, 2000, 1);
    assert_int_equal(srv_store_idem_count(st), 1);
}

static void test_idem_trim(void **state)
{
    (void)state;
    fx *mem = fx_new_store(0);
    idem_steps(mem->st);
    fx_free(mem);
    fx *file = fx_new_store(1);
    idem_steps(file->st);
    fx_free(file);
}

/* T0 = 2026-11-25T10:00:00Z */
#define AT_5MIN "2026-11-25T10:05:00Z"
#define AT_9MIN "2026-11-25T10:09:00Z"

static void test_reminder_cache(void **state)
{
    (void)state;
    fx *f = fx_new();
    /* no reminder anywhere: writes without one keep "none" */
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"a\"}"), 200);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    /* one added */
    assert_int_equal(fx_put_status(f, "alice", "home", "t2", 0,
                                   "{\"title\":\"b\",\"remind_at\":\"" AT_9MIN "\"}"),
                     200);
    assert_int_equal(srv_next_deadline(f->c), FX_T0 + 9 * 60000);
    /* an earlier one on another task, then that task deleted */
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 1,
                                   "{\"remind_at\":\"" AT_5MIN "\"}"),
                     200);
    assert_int_equal(srv_next_deadline(f->c), FX_T0 + 5 * 60000);
    fx_resp r = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/t1", "base_revision=3",
                        NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(srv_next_deadline(f->c), FX_T0 + 9 * 60000);
    /* the reminder cleared: none again; a write without one keeps none */
    assert_int_equal(fx_put_status(f, "alice", "home", "t2", 2, "{\"remind_at\":null}"), 200);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    assert_int_equal(fx_put_status(f, "alice", "home", "t3", 0, "{\"title\":\"c\"}"), 200);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    /* fired: none left unfired, later plain writes keep none, a new one counts */
    assert_int_equal(fx_put_status(f, "alice", "home", "t4", 0,
                                   "{\"remind_at\":\"" AT_5MIN "\"}"),
                     200);
    fx_advance(f, 5 * 60000);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", NULL), 1);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    assert_int_equal(fx_put_status(f, "alice", "home", "t5", 0, "{\"title\":\"d\"}"), 200);
    assert_int_equal(srv_next_deadline(f->c), INT64_MAX);
    assert_int_equal(fx_put_status(f, "alice", "home", "t5", 9,
                                   "{\"remind_at\":\"" AT_9MIN "\"}"),
                     200);
    assert_int_equal(srv_next_deadline(f->c), FX_T0 + 9 * 60000);
    fx_free(f);
}

/* The two lockless heartbeat forms and the same message spelled otherwise
 * (full parse) close a connection awaiting HELLO alike, and keep a READY
 * one alive alike. */
static void test_lockless_heartbeat(void **state)
{
    (void)state;
    const char *forms[] = {"{\"type\":\"HEARTBEAT\"}", "{\"locks\":[],\"type\":\"HEARTBEAT\"}",
                           "{\"type\": \"HEARTBEAT\", \"locks\": []}"};
    for (int i = 0; i < 3; i++) {
        fx *f = fx_new();
        assert_int_equal(fx_ws_open(f, 1, "bob", "home"), 0);
        fx_ws_send(f, 1, forms[i]);
        assert_int_equal(fx_close_code(f, 1), HP_CLOSE_PROTOCOL);
        assert_int_equal(fx_log_count(f, HP_LOG_INFO, "ws_close", "HELLO must come first"), 1);
        fx_ready(f, 2, "bob", "home");
        fx_reset(f);
        for (int k = 0; k < 10; k++) {
            fx_ws_send(f, 2, forms[i]);
            fx_advance(f, 30000);
        }
        assert_int_equal(fx_close_code(f, 2), 0);
        assert_true(fx_count_type(f, 2, "HEARTBEAT") >= 9); /* the server's, every 30 s */
        fx_free(f);
    }
}

static void test_keyset(void **state)
{
    (void)state;
    srv_keyset k = {0};
    assert_int_equal(srv_keyset_maybe(&k, srv_keyset_hash("a", "b", NULL)), 0);
    assert_true(srv_keyset_hash("ab", "c", NULL) != srv_keyset_hash("a", "bc", NULL));
    assert_true(srv_keyset_hash("a", "b", NULL) != srv_keyset_hash("a", "b", ""));
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "t%d", i);
        srv_keyset_add(&k, srv_keyset_hash("home", id, NULL));
    }
    int absent = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(srv_keyset_maybe(&k, srv_keyset_hash("home", id, NULL)), 1);
        absent += !srv_keyset_maybe(&k, srv_keyset_hash("other", id, NULL));
    }
    assert_true(absent > 4990);
    srv_keyset_free(&k);
}

/* Tasks and records rolled back, wiped or never written read as absent,
 * written ones as they are, on a memory store as on a file store. */
static void seen_steps(srv_store *st)
{
    json_t *t = hp_task_new("t1");
    json_object_set_new(t, "revision", json_integer(1));
    assert_null(srv_store_task_get(st, "home", "t1"));
    assert_int_equal(srv_store_begin(st), 0);
    assert_int_equal(srv_store_task_put(st, "home", t, NULL), 0);
    srv_store_rollback(st);
    assert_null(srv_store_task_get(st, "home", "t1"));
    assert_int_equal(srv_store_begin(st), 0);
    assert_int_equal(srv_store_task_put(st, "home", t, NULL), 0);
    assert_int_equal(srv_store_commit(st), 0);
    json_t *got = srv_store_task_get(st, "home", "t1");
    assert_non_null(got);
    assert_true(json_equal(got, t));
    json_decref(got);
    assert_null(srv_store_task_get(st, "other", "t1")); /* */
    assert_null(srv_store_task_get(st, "home", "t2"));
    assert_int_equal(live(st, "k1"), 0);
    idem_put(st, "k1", 1000, 0, 0);
    assert_int_equal(live(st, "k1"), 0);
    idem_put(st, "k1", 1000, 0, 1);
    assert_int_equal(live(st, "k1"), 1);
    assert_int_equal(srv_store_wipe(st), 0);
    assert_null(srv_store_task_get(st, "home", "t1"));
    assert_int_equal(live(st, "k1"), 0);
    json_decref(t);
}

static void test_keys_seen(void **state)
{
    (void)state;
    fx *mem = fx_new_store(0);
    seen_steps(mem->st);
    fx_free(mem);
    fx *file = fx_new_store(1);
    seen_steps(file->st);
    fx_free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_household_counters),
        cmocka_unit_test(test_idem_trim),
        cmocka_unit_test(test_reminder_cache),
        cmocka_unit_test(test_lockless_heartbeat),
        cmocka_unit_test(test_keyset),
        cmocka_unit_test(test_keys_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

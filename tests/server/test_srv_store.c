/*
 * test_srv_store.c - persistence: a restart (new core, same store; or the
 * file closed and reopened) keeps tasks, revisions, the event log and
 * idempotency results; the schema is versioned; file stores run in WAL
 * with synchronous=FULL; srv_state() has the documented shape.
 */
#include "srv_test_util.h"
#include <sqlite3.h>
#include "srv_internal.h"

static void test_restart_keeps_everything(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    fx_resp r = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"Milk\"}", "k1");
    assert_int_equal(r.status, 200);
    char *first = strdup(r.raw);
    fx_resp_free(&r);
    assert_int_equal(fx_put_status(f, "alice", "home", "t2", 0, "{\"title\":\"Bread\"}"), 200);
    fx_ready(f, 1, "bob", "home");

    fx_reopen(f); /* connections are gone; the driver would have closed them */
    json_t *st = srv_state(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "connections")), 0);
    json_t *home = json_object_get(json_object_get(st, "households"), "home");
    assert_int_equal(json_integer_value(json_object_get(home, "revision")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(home, "tasks"), "t1"), "title")), "Milk");
    assert_int_equal(json_integer_value(json_object_get(st, "events")), 2);
    json_decref(st);
    /* idempotency survives: the retry of an acknowledged write is not re-applied */
    r = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"Milk\"}", "k1");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.raw, first);
    fx_resp_free(&r);
    free(first);
    /* the counter goes on; replay works from the old log */
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 1, "{\"done\":true}"), 200);
    assert_int_equal(fx_ws_open(f, 2, "bob", "home"), 0);
    fx_hello(f, 2, 0);
    assert_int_equal(fx_count_type(f, 2, "TASK_UPDATED"), 3);
    assert_int_equal(fx_count_type(f, 2, "READY"), 1);
    /* a core restart without closing the store as well */
    fx_restart(f);
    assert_int_equal(fx_put_status(f, "alice", "home", "t3", 0, "{}"), 200);
    fx_resp g = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", NULL, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(g.body, "revision")), 4);
    assert_int_equal(json_array_size(json_object_get(g.body, "tasks")), 3);
    fx_resp_free(&g);
    fx_free(f);
}

static void test_file_pragmas(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{}"), 200);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->dbpath, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode;", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version;", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    /* the event is in the same database as the task (same transaction) */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events;", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    /* a newer schema is refused, not misread */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    srv_store *st2 = srv_store_open(f->dbpath, err, sizeof err);
    assert_null(st2);
    assert_non_null(strstr(err, "schema version 99"));
    fx_free(f);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(srv_store_open("/nonexistent-dir/x/y.db", err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_null(srv_store_open(NULL, err, sizeof err));
    assert_null(srv_store_open("", NULL, 0));
    /* a file that is not a database */
    char path[] = "/tmp/srv_notdb_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello, this is not sqlite at all......................................"
                               "................................................................", 134), 134);
    close(fd);
    err[0] = 0;
    assert_null(srv_store_open(path, err, sizeof err));
    assert_true(strlen(err) > 0);
    unlink(path);
    srv_store_close(NULL);
    srv_free(NULL);
    hp_env env;
    memset(&env, 0, sizeof env);
    assert_null(srv_new(&env, NULL, "s", NULL));
}

static void test_state_shape(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}"), 200);
    assert_int_equal(fx_put_status(f, "eve", "other", "x", 0, "{}"), 200);
    fx_resp r = fx_http(f, "zed", "lockonly", "POST", "/api/v0.2/tasks/q/lock", NULL, NULL, NULL);
    fx_resp_free(&r);
    json_t *st = srv_state(f->c);
    json_t *hhs = json_object_get(st, "households");
    assert_int_equal(json_object_size(hhs), 3);
    json_t *home = json_object_get(hhs, "home");
    assert_int_equal(json_integer_value(json_object_get(home, "revision")), 1);
    assert_true(json_is_object(json_object_get(home, "tasks")));
    assert_true(json_is_object(json_object_get(home, "locks")));
    json_t *lo = json_object_get(hhs, "lockonly");
    assert_int_equal(json_integer_value(json_object_get(lo, "revision")), 0);
    json_t *lk = json_object_get(json_object_get(lo, "locks"), "q");
    assert_string_equal(json_string_value(json_object_get(lk, "holder")), "zed");
    assert_true(json_is_string(json_object_get(lk, "expires_at")));
    assert_true(json_is_array(json_object_get(st, "connections")));
    assert_int_equal(json_integer_value(json_object_get(st, "events")), 2);
    json_decref(st);
    fx_free(f);
}

/* A store that cannot write (another process holds the lock) is the
 * server's problem: 503 "internal" + Retry-After, nothing applied, an ERROR
 * line; the retry with the same key applies once the store is back.  A
 * reminder that cannot be stored is retried a second later (no spinning). */
static void test_store_busy(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    srv_store_busy_timeout(f->st, 10);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{}"), 200);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE;", NULL, NULL, NULL), SQLITE_OK);
    fx_resp r = fx_put(f, "alice", "home", "t2", 0, "{\"remind_at\":\"2020-01-01T00:00:00Z\"}", "k");
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after, 1);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "internal");
    fx_resp_free(&r);
    assert_true(fx_log_count(f, HP_LOG_ERROR, "store_error", NULL) >= 1);
    assert_int_equal(sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
    r = fx_put(f, "alice", "home", "t2", 0, "{\"remind_at\":\"2020-01-01T00:00:00Z\"}", "k");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "revision")), 2);
    fx_resp_free(&r);
    /* the reminder is due now but the store is locked again */
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE;", NULL, NULL, NULL), SQLITE_OK);
    srv_tick(f->c);
    fx_pump(f);
    assert_true(srv_next_deadline(f->c) >= f->now + 1000);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", NULL), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    fx_advance(f, 1000);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "reminder_due", NULL), 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_keeps_everything),
        cmocka_unit_test(test_file_pragmas),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_state_shape),
        cmocka_unit_test(test_store_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
    assert_int_equal(sqlite3_column_int(s, 0), 2);
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

/* Runs sql on a fresh temp file; returns its path (static buffer). */
static const char *temp_db(const char *sql)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/srv_foreign_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    return path;
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Issue 11: --db pointed at another program's SQLite file silently gained
 * the server's tables (and WAL mode).  Now it is refused, byte for byte
 * untouched. */
static void test_foreign_db_refused(void **state)
{
    (void)state;
    const char *p = temp_db("CREATE TABLE contacts(name TEXT); INSERT INTO contacts VALUES('x');");
    char path[64];
    snprintf(path, sizeof path, "%s", p);
    char err[300] = "";
    assert_null(srv_store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "not an hp-fake-server store"));
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM sqlite_master;"), 1);
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM contacts;"), 1);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode;", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "delete");
    sqlite3_finalize(s);
    sqlite3_close(db);
    unlink(path);
    /* another application's id, or our version number without our tables */
    p = temp_db("PRAGMA application_id = 1234;");
    snprintf(path, sizeof path, "%s", p);
    assert_null(srv_store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "another application"));
    unlink(path);
    p = temp_db("CREATE TABLE t(x); PRAGMA user_version = 1;");
    snprintf(path, sizeof path, "%s", p);
    assert_null(srv_store_open(path, err, sizeof err));
    assert_non_null(strstr(err, "not an hp-fake-server store"));
    assert_int_equal(db_int(path, "SELECT COUNT(*) FROM sqlite_master;"), 1);
    unlink(path);
}

/* A version-1 store (before the Idempotency-Key binding) is migrated in
 * place: its records have no fingerprint and are out of every window. */
static void test_migrate_v1(void **state)
{
    (void)state;
    const char *p = temp_db(
        "CREATE TABLE households(hh TEXT PRIMARY KEY, revision INTEGER NOT NULL DEFAULT 0,"
        " trimmed INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE tasks(hh TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,"
        " revision INTEGER NOT NULL, deleted INTEGER NOT NULL, remind_at TEXT, remind_ms INTEGER,"
        " PRIMARY KEY(hh, id));"
        "CREATE TABLE events(hh TEXT NOT NULL, revision INTEGER NOT NULL, event_type TEXT NOT NULL,"
        " entity_id TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY(hh, revision));"
        "CREATE TABLE idempotency(hh TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,"
        " status INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(hh, user, key));"
        "CREATE TABLE reminders_fired(hh TEXT NOT NULL, id TEXT NOT NULL, remind_at TEXT NOT NULL,"
        " PRIMARY KEY(hh, id, remind_at));"
        "INSERT INTO idempotency VALUES('home','alice','old','200','{\"id\":\"t1\"}');"
        "PRAGMA user_version = 1;");
    char path[64];
    snprintf(path, sizeof path, "%s", p);
    char err[300] = "";
    srv_store *st = srv_store_open(path, err, sizeof err);
    if (!st)
        fail_msg("%s", err);
    srv_idem_rec rec;
    assert_int_equal(srv_store_idem_get(st, "home", "alice", "old", 1, &rec), 0);
    assert_int_equal(srv_store_idem_count(st), 1);
    srv_store_close(st);
    assert_int_equal(db_int(path, "PRAGMA user_version;"), 2);
    assert_int_equal(db_int(path, "PRAGMA application_id;"), 0x48505356);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
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
        cmocka_unit_test(test_foreign_db_refused),
        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_state_shape),
        cmocka_unit_test(test_store_busy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

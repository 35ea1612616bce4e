/* Unit tests for protocol/hp_memdb.c: in-memory databases holding a
 * schema, and the pool of emptied ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hp_memdb.h"

static const char SCHEMA[] = "CREATE TABLE t(k INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);"
                             "CREATE INDEX t_v ON t(v);"
                             "PRAGMA user_version = 7;";
static const char *const WIPE[] = {"DELETE FROM t;", "DELETE FROM sqlite_sequence;", NULL};

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Every open is a fresh database with the schema (and its stored pragmas);
 * what one connection writes, another does not see. */
static void test_fresh_and_independent(void **state)
{
    (void)state;
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE(SCHEMA, NULL);
    sqlite3 *a = NULL, *b = NULL;
    hp_stmt_cache *sa = NULL, *sb = NULL;
    assert_int_equal(hp_memdb_open(&tpl, &a, &sa), SQLITE_OK);
    /* the settings hp_memdb.c gives every new connection */
    assert_int_equal(one_int(a, "PRAGMA page_size;"), 1024);
    assert_int_equal(one_int(a, "PRAGMA secure_delete;"), 0);
    assert_int_equal(sqlite3_exec(a, "INSERT INTO t(v) VALUES('x'),('y');", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(hp_memdb_open(&tpl, &b, &sb), SQLITE_OK);
    assert_int_equal(one_int(b, "PRAGMA user_version;"), 7);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 0);
    /* AUTOINCREMENT starts over: the copy is of the empty template */
    assert_int_equal(sqlite3_exec(b, "INSERT INTO t(v) VALUES('z');", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(one_int(b, "SELECT k FROM t WHERE v = 'z';"), 1);
    assert_int_equal(one_int(a, "SELECT COUNT(*) FROM t;"), 2);
    /* a rolled back write leaves nothing (the journal is on), nor a
     * write rolled back to a savepoint */
    assert_int_equal(sqlite3_exec(b, "BEGIN; DELETE FROM t; ROLLBACK;", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 1);
    assert_int_equal(sqlite3_exec(b,
                                  "BEGIN; INSERT INTO t(v) VALUES('w'); SAVEPOINT s; DELETE FROM t;"
                                  " ROLLBACK TO s; RELEASE s; COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 2);
    sqlite3_stmt *jm = NULL;
    assert_int_equal(sqlite3_prepare_v2(b, "PRAGMA journal_mode;", -1, &jm, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(jm), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(jm, 0), "memory");
    sqlite3_finalize(jm);
    hp_memdb_close(&tpl, a, sa); /* no wipe statements: closed */
    hp_memdb_close(&tpl, b, sb);
    assert_int_equal(tpl.npool, 0);
}

/* A closed connection comes back emptied, with its prepared statements,
 * and behaves as a fresh copy (rows gone, AUTOINCREMENT from 1). */
static void test_pool(void **state)
{
    (void)state;
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE(SCHEMA, WIPE);
    sqlite3 *a = NULL, *b = NULL;
    hp_stmt_cache *sa = NULL, *sb = NULL;
    assert_int_equal(hp_memdb_open(&tpl, &a, &sa), SQLITE_OK);
    sqlite3_stmt *ins = hp_stmt_get(sa, a, "INSERT INTO t(v) VALUES(?1);");
    for (int i = 0; i < 3; i++) {
        sqlite3_bind_text(ins, 1, "x", -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    hp_stmt_done(sa, ins);
    hp_memdb_close(&tpl, a, sa);
    assert_int_equal(tpl.npool, 1);
    assert_int_equal(hp_memdb_open(&tpl, &b, &sb), SQLITE_OK);
    assert_ptr_equal(b, a); /* the pooled one */
    assert_ptr_equal(sb, sa);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 0);
    assert_int_equal(one_int(b, "PRAGMA user_version;"), 7);
    ins = hp_stmt_get(sb, b, "INSERT INTO t(v) VALUES(?1);");
    sqlite3_bind_text(ins, 1, "y", -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    hp_stmt_done(sb, ins);
    assert_int_equal(one_int(b, "SELECT k FROM t WHERE v = 'y';"), 1);
    /* In a transaction: not pooled (closed). */
    assert_int_equal(sqlite3_exec(b, "BEGIN;", NULL, NULL, NULL), SQLITE_OK);
    hp_memdb_close(&tpl, b, sb);
    assert_int_equal(tpl.npool, 0);
    /* A statement left running: not pooled either. */
    assert_int_equal(hp_memdb_open(&tpl, &a, &sa), SQLITE_OK);
    sqlite3_stmt *q = hp_stmt_get(sa, a, "SELECT 1 UNION ALL SELECT 2;");
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    sqlite3_stmt *q2 = NULL;
    assert_int_equal(sqlite3_prepare_v2(a, "SELECT 3;", -1, &q2, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q2), SQLITE_ROW); /* not reset: busy */
    hp_memdb_close(&tpl, a, sa);
    assert_int_equal(tpl.npool, 0);
    sqlite3_finalize(q2); /* the handle closes once its last statement goes */
}

/* A schema that does not run: the open reports the error the SQL gives
 * (as running it on a plain connection would). */
static void test_bad_schema(void **state)
{
    (void)state;
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE("CREATE TABLE (;", WIPE);
    sqlite3 *a = NULL;
    hp_stmt_cache *sa = NULL;
    assert_int_not_equal(hp_memdb_open(&tpl, &a, &sa), SQLITE_OK);
    hp_memdb_close(&tpl, a, sa); /* the wipe fails (no table t): closed */
    assert_int_equal(tpl.npool, 0);
}

/* The wipe statements are prepared once per connection and kept by the
 * template while it is out: more connections out than it keeps are
 * closed when given back, the rest pooled (never more than the pool); a
 * wipe that fails, or a template with too many wipe statements, pools
 * nothing.  (ASan: nothing leaks either way.) */
static void test_lent_and_failures(void **state)
{
    (void)state;
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE(SCHEMA, WIPE);
    enum { N = HP_MEMDB_LENT + 3 };
    sqlite3 *db[N];
    hp_stmt_cache *st[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(hp_memdb_open(&tpl, &db[i], &st[i]), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db[i], "INSERT INTO t(v) VALUES('x');", NULL, NULL, NULL),
                         SQLITE_OK);
    }
    assert_int_equal(tpl.nlent, HP_MEMDB_LENT);
    for (int i = N - 1; i >= 0; i--) /* the last three have no wipe kept: closed */
        hp_memdb_close(&tpl, db[i], st[i]);
    assert_int_equal(tpl.nlent, 0);
    assert_int_equal(tpl.npool, HP_MEMDB_POOL);
    for (int i = 0; i < HP_MEMDB_POOL; i++) {
        assert_int_equal(hp_memdb_open(&tpl, &db[i], &st[i]), SQLITE_OK);
        assert_int_equal(one_int(db[i], "SELECT COUNT(*) FROM t;"), 0);
        assert_int_equal(sqlite3_exec(db[i], "INSERT INTO t(v) VALUES('y');", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(one_int(db[i], "SELECT k FROM t WHERE v = 'y';"), 1);
    }
    assert_int_equal(tpl.npool, 0);
    /* A table the wipe empties is gone: its DELETE fails, the connection
     * is closed; the others go back. */
    assert_int_equal(sqlite3_exec(db[0], "DROP TABLE t;", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < HP_MEMDB_POOL; i++)
        hp_memdb_close(&tpl, db[i], st[i]);
    assert_int_equal(tpl.npool, HP_MEMDB_POOL - 1);

    static const char *const MANY[] = {"DELETE FROM t;", "DELETE FROM t;", "DELETE FROM t;",
                                       "DELETE FROM t;", "DELETE FROM t;", "DELETE FROM t;",
                                       "DELETE FROM t;", "DELETE FROM t;", "DELETE FROM t;",
                                       NULL};
    static hp_memdb_template many = HP_MEMDB_TEMPLATE(SCHEMA, MANY);
    sqlite3 *a = NULL;
    hp_stmt_cache *sa = NULL;
    assert_int_equal(hp_memdb_open(&many, &a, &sa), SQLITE_OK);
    assert_int_equal(many.nlent, 0);
    hp_memdb_close(&many, a, sa);
    assert_int_equal(many.npool, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_and_independent),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_bad_schema),
        cmocka_unit_test(test_lent_and_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

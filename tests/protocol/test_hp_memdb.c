/* Unit tests for protocol/hp_memdb.c: in-memory databases cloned from a
 * schema image. */
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
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE(SCHEMA);
    sqlite3 *a = NULL, *b = NULL;
    assert_int_equal(hp_memdb_open(&tpl, &a), SQLITE_OK);
    assert_non_null(tpl.image); /* built by the first open */
    assert_int_equal(sqlite3_exec(a, "INSERT INTO t(v) VALUES('x'),('y');", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(hp_memdb_open(&tpl, &b), SQLITE_OK);
    assert_int_equal(one_int(b, "PRAGMA user_version;"), 7);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 0);
    /* AUTOINCREMENT starts over: the copy is of the empty template */
    assert_int_equal(sqlite3_exec(b, "INSERT INTO t(v) VALUES('z');", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(one_int(b, "SELECT k FROM t WHERE v = 'z';"), 1);
    assert_int_equal(one_int(a, "SELECT COUNT(*) FROM t;"), 2);
    /* a rolled back write leaves nothing (the journal works on a copy) */
    assert_int_equal(sqlite3_exec(b, "BEGIN; DELETE FROM t; ROLLBACK;", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(one_int(b, "SELECT COUNT(*) FROM t;"), 1);
    assert_int_equal(sqlite3_close(a), SQLITE_OK);
    assert_int_equal(sqlite3_close(b), SQLITE_OK);
}

/* A schema that does not run: no image, and the open reports the error
 * the SQL gives (as running it on a plain connection would). */
static void test_bad_schema(void **state)
{
    (void)state;
    static hp_memdb_template tpl = HP_MEMDB_TEMPLATE("CREATE TABLE (;");
    sqlite3 *a = NULL;
    assert_int_not_equal(hp_memdb_open(&tpl, &a), SQLITE_OK);
    assert_null(tpl.image);
    assert_int_equal(tpl.failed, 1);
    sqlite3_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_and_independent),
        cmocka_unit_test(test_bad_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

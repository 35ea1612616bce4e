/* Unit tests for protocol/hp_stmt.c: the prepared statement cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hp_stmt.h"

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(k INTEGER, v TEXT);"
                                      "INSERT INTO t VALUES(1,'a'),(2,'b'),(3,'c');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

static const char *const Q = "SELECT v FROM t WHERE k = ?1;";

/* The same text gives the same statement back, ready and without the last
 * caller's bindings. */
static void test_reused_and_reset(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    hp_stmt_cache *c = hp_stmt_cache_new();
    sqlite3_stmt *a = hp_stmt_get(c, db, Q);
    assert_non_null(a);
    sqlite3_bind_int(a, 1, 2);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW); /* left mid-result on purpose */
    assert_string_equal((const char *)sqlite3_column_text(a, 0), "b");
    hp_stmt_done(c, a);

    /* A copy of the text in another buffer finds it too. */
    char copy[64];
    snprintf(copy, sizeof copy, "%s", Q);
    sqlite3_stmt *b = hp_stmt_get(c, db, copy);
    assert_ptr_equal(a, b);
    assert_int_equal(sqlite3_step(b), SQLITE_DONE); /* ?1 unbound = NULL: no row */
    hp_stmt_done(c, b);
    /* Nothing left running: the connection can write in a transaction. */
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; DELETE FROM t; COMMIT;", NULL, NULL, NULL),
                     SQLITE_OK);
    hp_stmt_cache_free(c);
    assert_int_equal(sqlite3_close(db), SQLITE_OK); /* nothing left unfinalized */
}

/* A statement still in use (a callback running the same query) is never
 * handed out twice: the inner caller gets its own, finalized when done. */
static void test_nested_use_gets_a_private_statement(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    hp_stmt_cache *c = hp_stmt_cache_new();
    sqlite3_stmt *outer = hp_stmt_get(c, db, "SELECT k FROM t ORDER BY k;");
    int rows = 0;
    while (sqlite3_step(outer) == SQLITE_ROW) {
        sqlite3_stmt *inner = hp_stmt_get(c, db, "SELECT k FROM t ORDER BY k;");
        assert_non_null(inner);
        assert_ptr_not_equal(inner, outer);
        assert_int_equal(sqlite3_step(inner), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(inner, 0), 1);
        hp_stmt_done(c, inner);
        rows++;
    }
    assert_int_equal(rows, 3); /* the outer iteration was not disturbed */
    hp_stmt_done(c, outer);
    /* Afterwards the cached one is free again. */
    assert_ptr_equal(hp_stmt_get(c, db, "SELECT k FROM t ORDER BY k;"), outer);
    hp_stmt_done(c, outer);
    hp_stmt_cache_free(c);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_bad_sql_and_no_cache(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    hp_stmt_cache *c = hp_stmt_cache_new();
    assert_null(hp_stmt_get(c, db, "SELEC nonsense"));
    assert_null(hp_stmt_get(c, db, "SELECT x FROM no_such_table"));
    assert_non_null(strstr(sqlite3_errmsg(db), "no_such_table"));
    hp_stmt_done(c, NULL);
    /* Without a cache every get prepares and every done finalizes. */
    sqlite3_stmt *s = hp_stmt_get(NULL, db, Q);
    assert_non_null(s);
    hp_stmt_done(NULL, s);
    hp_stmt_cache_free(c);
    hp_stmt_cache_free(NULL);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* More distinct texts than slots: the rest still work, uncached.  Every
 * text is built in the same buffer, so the pointer a slot remembers is
 * never enough to match it: each query must still get its own statement. */
static void test_more_texts_than_slots(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    hp_stmt_cache *c = hp_stmt_cache_new();
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            char sql[64];
            snprintf(sql, sizeof sql, "SELECT %d + k FROM t WHERE k = 1;", i);
            sqlite3_stmt *s = hp_stmt_get(c, db, sql);
            assert_non_null(s);
            assert_int_equal(sqlite3_step(s), SQLITE_ROW);
            assert_int_equal(sqlite3_column_int(s, 0), i + 1);
            hp_stmt_done(c, s);
        }
    }
    hp_stmt_cache_free(c);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reused_and_reset),
        cmocka_unit_test(test_nested_use_gets_a_private_statement),
        cmocka_unit_test(test_bad_sql_and_no_cache),
        cmocka_unit_test(test_more_texts_than_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

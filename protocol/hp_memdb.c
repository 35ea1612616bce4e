/*
 * hp_memdb.c - in-memory databases holding a schema, and the pool of
 * emptied ones (see hp_memdb.h).
 */
#include "hp_memdb.h"

#include <stdint.h>

/*
 * Settings of a new connection, before its schema (page_size must precede
 * the first table).  Measured with callgrind on the suite bench
 * (bench/README.md):
 * - 1 KiB pages: every page a write changes is first copied whole into the
 *   rollback journal (kept in memory, in 1 KiB chunks), and a store's rows
 *   are small, so a write costs a quarter of the copying it did with the
 *   default 4 KiB pages;
 * - secure_delete off (this SQLite is built with it on): deleted rows need
 *   not be zeroed, nor freed pages journaled and rewritten, in a database
 *   that vanishes with its process;
 * - a plain ":memory:" database rather than a deserialized image (memdb
 *   VFS): there a commit also journals and rewrites page 1 (its change
 *   counter) and copies every changed page into the image.
 * None of these changes what a query returns.
 */
static const char SETUP_SQL[] = "PRAGMA page_size=1024; PRAGMA secure_delete=OFF;";

/* A pooled connection holding more free pages than this (1 KiB each) is
 * closed: one large world must not pin its memory for the rest of a run. */
#define POOL_MAX_FREE_PAGES 1024

int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db, hp_stmt_cache **stmts)
{
    *db = NULL;
    *stmts = NULL;
    pthread_mutex_lock(&tpl->mu);
    if (tpl->npool > 0) {
        hp_memdb_conn c = tpl->pool[--tpl->npool];
        pthread_mutex_unlock(&tpl->mu);
        *db = c.db;
        *stmts = c.stmts;
        return SQLITE_OK;
    }
    pthread_mutex_unlock(&tpl->mu);
    *stmts = hp_stmt_cache_new();
    int rc = sqlite3_open_v2(":memory:", db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, SETUP_SQL, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, tpl->sql, NULL, NULL, NULL);
    return rc;
}

static int run(hp_stmt_cache *stmts, sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = hp_stmt_get(stmts, db, sql);
    int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
    hp_stmt_done(stmts, s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int64_t free_pages(hp_stmt_cache *stmts, sqlite3 *db)
{
    sqlite3_stmt *s = hp_stmt_get(stmts, db, "PRAGMA freelist_count;");
    int64_t n = s && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    hp_stmt_done(stmts, s);
    return n;
}

/* Empties db for its next user; 0 when it can be pooled. */
static int wipe(hp_memdb_template *tpl, sqlite3 *db, hp_stmt_cache *stmts)
{
    if (!tpl->wipe || !stmts || !sqlite3_get_autocommit(db))
        return -1;
    for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s))
        if (sqlite3_stmt_busy(s))
            return -1;
    if (run(stmts, db, "BEGIN;") != 0)
        return -1;
    for (const char *const *w = tpl->wipe; *w; w++) {
        if (run(stmts, db, *w) != 0) {
            run(stmts, db, "ROLLBACK;");
            return -1;
        }
    }
    if (run(stmts, db, "COMMIT;") != 0) {
        run(stmts, db, "ROLLBACK;");
        return -1;
    }
    int64_t fp = free_pages(stmts, db);
    return fp >= 0 && fp <= POOL_MAX_FREE_PAGES ? 0 : -1;
}

void hp_memdb_close(hp_memdb_template *tpl, sqlite3 *db, hp_stmt_cache *stmts)
{
    if (db && wipe(tpl, db, stmts) == 0) {
        pthread_mutex_lock(&tpl->mu);
        if (tpl->npool < HP_MEMDB_POOL) {
            tpl->pool[tpl->npool].db = db;
            tpl->pool[tpl->npool].stmts = stmts;
            tpl->npool++;
            pthread_mutex_unlock(&tpl->mu);
            return;
        }
        pthread_mutex_unlock(&tpl->mu);
    }
    hp_stmt_cache_free(stmts);
    sqlite3_close_v2(db); /* a statement still out (not ours) keeps it until finalized */
}

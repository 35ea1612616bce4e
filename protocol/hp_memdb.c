/*
 * hp_memdb.c - in-memory databases cloned from a schema image, and the
 * pool of emptied ones (see hp_memdb.h).
 */
#include "hp_memdb.h"

#include <stdint.h>
#include <string.h>

/* A pooled connection holding more free pages than this (4 KiB each) is
 * closed: one large world must not pin its memory for the rest of a run. */
#define POOL_MAX_FREE_PAGES 256

/* Build tpl's image once; 0 when it exists afterwards.  Called locked. */
static int build_image(hp_memdb_template *tpl)
{
    if (!tpl->image && !tpl->failed) {
        sqlite3 *db = NULL;
        if (sqlite3_open(":memory:", &db) == SQLITE_OK &&
            sqlite3_exec(db, tpl->sql, NULL, NULL, NULL) == SQLITE_OK) {
            sqlite3_int64 n = 0;
            unsigned char *img = sqlite3_serialize(db, "main", &n, 0);
            if (img) {
                tpl->image = img;
                tpl->len = n;
            }
        }
        sqlite3_close(db);
        if (!tpl->image)
            tpl->failed = 1;
    }
    return tpl->image ? 0 : -1;
}

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
    int have_image = build_image(tpl) == 0;
    pthread_mutex_unlock(&tpl->mu);
    *stmts = hp_stmt_cache_new();
    int rc = sqlite3_open(":memory:", db);
    if (rc != SQLITE_OK)
        return rc;
    if (have_image) {
        /* the image never changes once built: copied without the lock */
        unsigned char *copy = sqlite3_malloc64((sqlite3_uint64)tpl->len);
        if (copy) {
            memcpy(copy, tpl->image, (size_t)tpl->len);
            /* FREEONCLOSE: SQLite owns the copy (freed on failure too) */
            rc = sqlite3_deserialize(*db, "main", copy, tpl->len, tpl->len,
                                     SQLITE_DESERIALIZE_FREEONCLOSE |
                                         SQLITE_DESERIALIZE_RESIZEABLE);
            if (rc == SQLITE_OK)
                return SQLITE_OK;
        }
    }
    /* No image: the schema on this connection, as a plain open would. */
    return sqlite3_exec(*db, tpl->sql, NULL, NULL, NULL);
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

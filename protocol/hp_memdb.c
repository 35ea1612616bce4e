/*
 * hp_memdb.c - in-memory databases holding a schema, and the pool of
 * emptied ones (see hp_memdb.h).
 */
#include "hp_memdb.h"

#include <stdint.h>
#include <string.h>

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

/* Finalizes c's wipe statements. */
static void drop_wipe(hp_memdb_conn *c)
{
    for (int i = 0; i < HP_MEMDB_WIPE_MAX && c->wipe[i]; i++)
        sqlite3_finalize(c->wipe[i]);
    memset(c->wipe, 0, sizeof c->wipe);
}

/*
 * Prepares c's wipe: BEGIN, the template's statements, COMMIT, then the
 * free-page count.  They stay with the connection for its life, outside
 * its statement cache: the wipe runs at every close, and finding each of
 * its statements in the cache (they are its last entries, behind every
 * query of the store) and giving it back cost a fifth of the wipe
 * (callgrind, suite bench).  Nothing kept when one fails or there are too
 * many (the connection is then closed, not pooled).
 */
static void prepare_wipe(hp_memdb_template *tpl, hp_memdb_conn *c)
{
    int n = 0;
    while (tpl->wipe && tpl->wipe[n])
        n++;
    if (!tpl->wipe || n > HP_MEMDB_WIPE_MAX - 4)
        return;
    for (int i = 0; i < n + 3; i++) {
        const char *sql = i == 0       ? "BEGIN;"
                          : i <= n     ? tpl->wipe[i - 1]
                          : i == n + 1 ? "COMMIT;"
                                       : "PRAGMA freelist_count;";
        if (sqlite3_prepare_v2(c->db, sql, -1, &c->wipe[i], NULL) != SQLITE_OK || !c->wipe[i]) {
            drop_wipe(c);
            return;
        }
    }
}

/* Records c as out (under tpl->mu); a full table keeps no wipe for it. */
static void lend(hp_memdb_template *tpl, hp_memdb_conn *c)
{
    if (!c->wipe[0])
        return;
    if (tpl->nlent < HP_MEMDB_LENT)
        tpl->lent[tpl->nlent++] = *c;
    else
        drop_wipe(c);
}

int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db, hp_stmt_cache **stmts)
{
    *db = NULL;
    *stmts = NULL;
    pthread_mutex_lock(&tpl->mu);
    if (tpl->npool > 0) {
        hp_memdb_conn c = tpl->pool[--tpl->npool];
        lend(tpl, &c);
        pthread_mutex_unlock(&tpl->mu);
        *db = c.db;
        *stmts = c.stmts;
        return SQLITE_OK;
    }
    pthread_mutex_unlock(&tpl->mu);
    hp_memdb_conn c;
    memset(&c, 0, sizeof c);
    c.stmts = *stmts = hp_stmt_cache_new();
    int rc = sqlite3_open_v2(":memory:", db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, SETUP_SQL, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, tpl->sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        c.db = *db;
        prepare_wipe(tpl, &c);
        pthread_mutex_lock(&tpl->mu);
        lend(tpl, &c);
        pthread_mutex_unlock(&tpl->mu);
    }
    return rc;
}

/* Runs s to its end and resets it: 0, or -1 on an error. */
static int run(sqlite3_stmt *s)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    return sqlite3_reset(s) == SQLITE_OK && rc == SQLITE_DONE ? 0 : -1;
}

/* Empties c's database for its next user; 0 when it can be pooled.  On a
 * failure the connection is closed (which rolls back what is open). */
static int wipe(hp_memdb_conn *c)
{
    if (!c->wipe[0] || !c->stmts || !sqlite3_get_autocommit(c->db))
        return -1;
    for (sqlite3_stmt *s = sqlite3_next_stmt(c->db, NULL); s; s = sqlite3_next_stmt(c->db, s))
        if (sqlite3_stmt_busy(s))
            return -1;
    int i = 0;
    for (; c->wipe[i + 1]; i++) /* BEGIN ... COMMIT */
        if (run(c->wipe[i]) != 0)
            return -1;
    sqlite3_stmt *fc = c->wipe[i];
    int64_t fp = sqlite3_step(fc) == SQLITE_ROW ? sqlite3_column_int64(fc, 0) : -1;
    sqlite3_reset(fc);
    return fp >= 0 && fp <= POOL_MAX_FREE_PAGES ? 0 : -1;
}

void hp_memdb_close(hp_memdb_template *tpl, sqlite3 *db, hp_stmt_cache *stmts)
{
    hp_memdb_conn c;
    memset(&c, 0, sizeof c);
    c.db = db;
    c.stmts = stmts;
    pthread_mutex_lock(&tpl->mu);
    for (int i = 0; db && i < tpl->nlent; i++) {
        if (tpl->lent[i].db == db) {
            memcpy(c.wipe, tpl->lent[i].wipe, sizeof c.wipe);
            tpl->lent[i] = tpl->lent[--tpl->nlent];
            break;
        }
    }
    pthread_mutex_unlock(&tpl->mu);
    if (db && wipe(&c) == 0) {
        pthread_mutex_lock(&tpl->mu);
        if (tpl->npool < HP_MEMDB_POOL) {
            tpl->pool[tpl->npool++] = c;
            pthread_mutex_unlock(&tpl->mu);
            return;
        }
        pthread_mutex_unlock(&tpl->mu);
    }
    drop_wipe(&c);
    hp_stmt_cache_free(stmts);
    sqlite3_close_v2(db); /* a statement still out (not ours) keeps it until finalized */
}

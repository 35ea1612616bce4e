/*
 * hp_memdb.h - fresh in-memory SQLite databases holding a schema, and a
 * pool of emptied ones with their prepared statements.
 *
 * The simulator opens two ":memory:" stores per world (server and each
 * client).  Opening one means running the whole schema and then preparing
 * every statement the store uses, more than its world's work for a short
 * scenario.  hp_memdb_close() therefore empties a connection (the
 * template's wipe statements: every table the schema made, sqlite_sequence
 * included, so AUTOINCREMENT and rowids start over as in a fresh database)
 * and keeps it, with its prepared statements, for the next hp_memdb_open().
 * Only what is logically visible is the same as a fresh database: the page
 * layout differs, and nothing here reads it.  A connection that is in a
 * transaction, has a statement running or holds many free pages (a large
 * world) is closed instead.  Per-connection settings (busy timeout) are the
 * caller's, as before.
 *
 * A new connection is a plain ":memory:" database (no VFS file behind its
 * pages: a commit writes nothing and a page is never read back) with 1 KiB
 * pages and secure_delete off, set before the schema runs (why: hp_memdb.c).
 * Journal mode stays MEMORY (ROLLBACK and ROLLBACK TO work as on a file)
 * unless the template's schema sets it (the client store's sets OFF).
 *
 * Thread safety: the pool is guarded by the template's mutex (explore runs
 * worlds on several threads); a connection is used by one thread at a time
 * (it is opened with SQLITE_OPEN_NOMUTEX).
 * Ownership: the template is static storage of the caller's module; pooled
 * connections live until the process ends.  The wipe statements of a
 * connection are the template's, kept outside the connection's statement
 * cache (see hp_memdb.c).  An opened connection and its
 * statement cache are the caller's until they are given to
 * hp_memdb_close().
 */
#ifndef HP_MEMDB_H
#define HP_MEMDB_H

#include <pthread.h>
#include <sqlite3.h>
#include "hp_stmt.h"

#define HP_MEMDB_POOL 8
/* Connections out at once whose wipe statements the template keeps (more
 * are closed, not pooled, when given back). */
#define HP_MEMDB_LENT 32
/* BEGIN, up to HP_MEMDB_WIPE_MAX - 4 wipe statements, COMMIT, the
 * free-page count: a template with more wipe statements pools nothing. */
#define HP_MEMDB_WIPE_MAX 12

typedef struct hp_memdb_conn {
    sqlite3 *db;
    hp_stmt_cache *stmts;
    sqlite3_stmt *wipe[HP_MEMDB_WIPE_MAX]; /* prepared once for db; NULL-ended */
} hp_memdb_conn;

typedef struct hp_memdb_template {
    pthread_mutex_t mu;
    const char *sql;                /* the schema, run on every new connection */
    const char *const *wipe;        /* statements that empty every table; NULL: no pool */
    hp_memdb_conn pool[HP_MEMDB_POOL];
    int npool;
    hp_memdb_conn lent[HP_MEMDB_LENT]; /* opened, not yet given back */
    int nlent;
} hp_memdb_template;

#define HP_MEMDB_TEMPLATE(schema_sql, wipe_stmts)                                                \
    {.mu = PTHREAD_MUTEX_INITIALIZER, .sql = (schema_sql), .wipe = (wipe_stmts)}

/* A ":memory:" connection holding tpl's schema and no rows, with a
 * statement cache for it (*stmts; possibly already holding prepared
 * statements).  Returns SQLITE_OK, or an SQLite error code (*db may then be
 * non-NULL: give it to hp_memdb_close()). */
int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db, hp_stmt_cache **stmts);

/* Gives a connection from hp_memdb_open() back: emptied into the pool, or
 * closed (its statements finalized first).  NULL db is accepted. */
void hp_memdb_close(hp_memdb_template *tpl, sqlite3 *db, hp_stmt_cache *stmts);

#endif

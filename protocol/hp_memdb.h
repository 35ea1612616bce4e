/*
 * hp_memdb.h - fresh in-memory SQLite databases from a schema image made
 * once per process, and a pool of emptied ones with their statements.
 *
 * The simulator opens two ":memory:" stores per world (server and each
 * client) and every open used to parse and run the whole schema: about a
 * sixth of a suite run (bench/README.md).  hp_memdb_open() runs the
 * schema's SQL once, into a template database, keeps its serialized image,
 * and gives every later caller a new connection holding a copy of that
 * image (sqlite3_deserialize).  The copy is the same bytes a fresh
 * ":memory:" database reaches after the same SQL, so queries see the same
 * rows in the same order.
 *
 * Even a copy costs SQLite reading the schema back and preparing every
 * statement again on the new connection.  hp_memdb_close() therefore
 * empties a connection (the template's wipe statements: every table the
 * schema made, sqlite_sequence included, so AUTOINCREMENT and rowids start
 * over as in a fresh database) and keeps it, with its prepared statements,
 * for the next hp_memdb_open().  Only what is logically visible is the same
 * as a fresh copy: the page layout differs, and nothing here reads it.  A
 * connection that is in a transaction, has a statement running or holds
 * many free pages (a large world) is closed instead.  Per-connection
 * settings (busy timeout) are the caller's, as before.
 *
 * Thread safety: the image and the pool are guarded by the template's
 * mutex (explore runs worlds on several threads); a connection is used by
 * one thread at a time.
 * Ownership: the template is static storage of the caller's module; the
 * image and pooled connections live until the process ends.  An opened
 * connection and its statement cache are the caller's until they are given
 * to hp_memdb_close().
 */
#ifndef HP_MEMDB_H
#define HP_MEMDB_H

#include <pthread.h>
#include <sqlite3.h>
#include "hp_stmt.h"

#define HP_MEMDB_POOL 8

typedef struct hp_memdb_conn {
    sqlite3 *db;
    hp_stmt_cache *stmts;
} hp_memdb_conn;

typedef struct hp_memdb_template {
    pthread_mutex_t mu;
    const char *sql;                /* the schema, run once into the template */
    const char *const *wipe;        /* statements that empty every table; NULL: no pool */
    unsigned char *image;           /* sqlite3_serialize() of the template; NULL until built */
    sqlite3_int64 len;
    int failed;                     /* building failed: callers fall back to the SQL */
    hp_memdb_conn pool[HP_MEMDB_POOL];
    int npool;
} hp_memdb_template;

#define HP_MEMDB_TEMPLATE(schema_sql, wipe_stmts)                                                \
    {PTHREAD_MUTEX_INITIALIZER, (schema_sql), (wipe_stmts), NULL, 0, 0, {{NULL, NULL}}, 0}

/* A ":memory:" connection holding tpl's schema and no rows, with a
 * statement cache for it (*stmts; possibly already holding prepared
 * statements).  Returns SQLITE_OK, or an SQLite error code (*db may then be
 * non-NULL: give it to hp_memdb_close()).  When the image cannot be built
 * the schema SQL runs on the new connection itself: same result, slower. */
int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db, hp_stmt_cache **stmts);

/* Gives a connection from hp_memdb_open() back: emptied into the pool, or
 * closed (its statements finalized first).  NULL db is accepted. */
void hp_memdb_close(hp_memdb_template *tpl, sqlite3 *db, hp_stmt_cache *stmts);

#endif

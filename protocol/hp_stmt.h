/*
 * hp_stmt.h - a per-connection cache of prepared SQLite statements.
 *
 * Both stores run a handful of fixed SQL texts thousands of times per
 * suite run; parsing them again on every call was the largest single cost
 * of the simulator (hp-bench).  hp_stmt_get() hands out a ready statement
 * for an SQL text, hp_stmt_done() resets it (bindings released) for the
 * next caller.  A statement already handed out and not yet done (a query
 * running a callback that runs the same query) gets a fresh, uncached
 * statement, which hp_stmt_done() finalizes: callers never need to know.
 */
#ifndef HP_STMT_H
#define HP_STMT_H

#include <sqlite3.h>

typedef struct hp_stmt_cache hp_stmt_cache;

/* An empty cache; NULL when out of memory (hp_stmt_get then prepares
 * every time, so a NULL cache still works). */
hp_stmt_cache *hp_stmt_cache_new(void);

/* Finalizes every cached statement; call before sqlite3_close(). */
void hp_stmt_cache_free(hp_stmt_cache *c);

/* A statement for sql, with no bindings; NULL when sql does not prepare
 * (sqlite3_errmsg(db) says why). */
sqlite3_stmt *hp_stmt_get(hp_stmt_cache *c, sqlite3 *db, const char *sql);

/* Gives s back: reset and unbound if cached, finalized otherwise.  NULL is
 * accepted. */
void hp_stmt_done(hp_stmt_cache *c, sqlite3_stmt *s);

#endif

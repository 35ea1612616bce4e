/*
 * hp_stmt.c - the prepared statement cache (see hp_stmt.h).
 *
 * A small array searched linearly: a store has about twenty distinct SQL
 * texts.  Entries are matched on the text itself (sqlite3_sql), so a caller
 * building SQL in a buffer can never be handed another query.  Callers pass
 * string literals, the same pointer every time: the slot remembering that
 * pointer is tried first and its text compared once, instead of comparing
 * the text with every slot's (half the cost of a cached step, measured).
 */
#include "hp_stmt.h"

#include <stdlib.h>
#include <string.h>

#define HP_STMT_SLOTS 48

typedef struct slot {
    sqlite3_stmt *s;
    const char *key; /* the sql pointer last found for s: a hint, never trusted */
    int busy;
} slot;

struct hp_stmt_cache {
    slot v[HP_STMT_SLOTS];
    int n;
};

hp_stmt_cache *hp_stmt_cache_new(void)
{
    return calloc(1, sizeof(hp_stmt_cache));
}

void hp_stmt_cache_free(hp_stmt_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        sqlite3_finalize(c->v[i].s);
    free(c);
}

/* The slot holding sql's text, or -1. */
static int find(hp_stmt_cache *c, const char *sql)
{
    for (int i = 0; i < c->n; i++)
        if (c->v[i].key == sql && strcmp(sqlite3_sql(c->v[i].s), sql) == 0)
            return i;
    for (int i = 0; i < c->n; i++) {
        if (strcmp(sqlite3_sql(c->v[i].s), sql) == 0) {
            c->v[i].key = sql;
            return i;
        }
    }
    return -1;
}

sqlite3_stmt *hp_stmt_get(hp_stmt_cache *c, sqlite3 *db, const char *sql)
{
    int free_slot = 1;
    if (c) {
        int i = find(c, sql);
        if (i >= 0 && !c->v[i].busy) {
            c->v[i].busy = 1;
            return c->v[i].s;
        }
        if (i >= 0)
            free_slot = 0; /* in use by an outer caller: a private copy */
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    if (c && free_slot && s && c->n < HP_STMT_SLOTS) {
        c->v[c->n].s = s;
        c->v[c->n].key = sql;
        c->v[c->n].busy = 1;
        c->n++;
    }
    return s;
}

void hp_stmt_done(hp_stmt_cache *c, sqlite3_stmt *s)
{
    if (!s)
        return;
    if (c) {
        for (int i = 0; i < c->n; i++) {
            if (c->v[i].s == s) {
                sqlite3_reset(s);
                sqlite3_clear_bindings(s);
                c->v[i].busy = 0;
                return;
            }
        }
    }
    sqlite3_finalize(s);
}

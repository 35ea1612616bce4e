/*
 * hp_stmt.c - the prepared statement cache (see hp_stmt.h).
 *
 * A small array searched linearly: a store has about twenty distinct SQL
 * texts, and comparing them costs nothing next to parsing one.  Entries are
 * matched on the text itself (sqlite3_sql), not the pointer, so a caller
 * building SQL in a buffer can never be handed another query.
 */
#include "hp_stmt.h"

#include <stdlib.h>
#include <string.h>

#define HP_STMT_SLOTS 48

typedef struct slot {
    sqlite3_stmt *s;
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

sqlite3_stmt *hp_stmt_get(hp_stmt_cache *c, sqlite3 *db, const char *sql)
{
    int free_slot = 1;
    if (c) {
        for (int i = 0; i < c->n; i++) {
            if (strcmp(sqlite3_sql(c->v[i].s), sql) != 0)
                continue;
            if (c->v[i].busy) {
                free_slot = 0; /* in use by an outer caller: a private copy */
                break;
            }
            c->v[i].busy = 1;
            return c->v[i].s;
        }
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    if (c && free_slot && s && c->n < HP_STMT_SLOTS) {
        c->v[c->n].s = s;
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

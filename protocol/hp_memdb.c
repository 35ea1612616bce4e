/*
 * hp_memdb.c - in-memory databases cloned from a schema image (see
 * hp_memdb.h).
 */
#include "hp_memdb.h"

#include <string.h>

/* Build tpl's image once; 0 when it exists afterwards. */
static int build_image(hp_memdb_template *tpl)
{
    pthread_mutex_lock(&tpl->mu);
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
    int ok = tpl->image != NULL;
    pthread_mutex_unlock(&tpl->mu);
    return ok ? 0 : -1;
}

int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db)
{
    *db = NULL;
    int rc = sqlite3_open(":memory:", db);
    if (rc != SQLITE_OK)
        return rc;
    if (build_image(tpl) == 0) {
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

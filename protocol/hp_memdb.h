/*
 * hp_memdb.h - fresh in-memory SQLite databases from a schema image made
 * once per process.
 *
 * The simulator opens two ":memory:" stores per world (server and each
 * client) and every open used to parse and run the whole schema: about a
 * sixth of a suite run (bench/README.md).  hp_memdb_open() runs the
 * schema's SQL once, into a template database, keeps its serialized image,
 * and gives every later caller a new connection holding a copy of that
 * image (sqlite3_deserialize).  The copy is the same bytes a fresh
 * ":memory:" database reaches after the same SQL, so queries see the same
 * rows in the same order.  Per-connection settings (busy timeout, pragmas
 * that are not stored in the file) are the caller's, as before.
 *
 * Thread safety: the image is built under the template's mutex (explore
 * runs worlds on several threads); once built it is only read.
 * Ownership: the template is static storage of the caller's module; the
 * image lives until the process ends.  The returned connection is the
 * caller's (sqlite3_close).
 */
#ifndef HP_MEMDB_H
#define HP_MEMDB_H

#include <pthread.h>
#include <sqlite3.h>

typedef struct hp_memdb_template {
    pthread_mutex_t mu;
    const char *sql;          /* the schema, run once into the template */
    unsigned char *image;     /* sqlite3_serialize() of the template; NULL until built */
    sqlite3_int64 len;
    int failed;               /* building failed: callers fall back to the SQL */
} hp_memdb_template;

#define HP_MEMDB_TEMPLATE(schema_sql) {PTHREAD_MUTEX_INITIALIZER, (schema_sql), NULL, 0, 0}

/* A new ":memory:" connection holding tpl's schema.  Returns SQLITE_OK and
 * *db, or an SQLite error code (*db may then be non-NULL: close it).  When
 * the image cannot be built the schema SQL runs on the new connection
 * itself, so the result is the same, only slower. */
int hp_memdb_open(hp_memdb_template *tpl, sqlite3 **db);

#endif

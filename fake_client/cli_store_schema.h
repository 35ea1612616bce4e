/*
 * cli_store_schema.h - the device store's schema and the test that a file
 * is one (cli_store.c, cli_store_ident.c).  Internal to fake_client/.
 *
 * Inputs: an open SQLite handle.  Outputs: 0, or -1 with an error text.
 * Ownership: nothing is kept; the handle stays the caller's.
 */
#ifndef CLI_STORE_SCHEMA_H
#define CLI_STORE_SCHEMA_H

#include <stddef.h>
#include <sqlite3.h>

/* PRAGMA application_id of a device store ("HPCL"): issue 11, --db pointed
 * at another program's SQLite file must be refused, not gain our tables. */
#define CLI_APP_ID 0x4850434C

#define TABLES_SQL                                                                         \
    "PRAGMA application_id = 1213219660;" /* CLI_APP_ID */                                 \
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB);"                         \
    "CREATE TABLE IF NOT EXISTS queue(seq INTEGER PRIMARY KEY AUTOINCREMENT,"              \
    " mutation_id TEXT, op TEXT, entity_id TEXT, base_revision INTEGER, base BLOB,"        \
    " snapshot BLOB, attempts INTEGER, sent INTEGER, created_at INTEGER);"                 \
    "CREATE TABLE IF NOT EXISTS quarantine(seq INTEGER PRIMARY KEY AUTOINCREMENT,"         \
    " orig_seq INTEGER, mutation_id TEXT, op TEXT, entity_id TEXT, base_revision INTEGER," \
    " base BLOB, snapshot BLOB, attempts INTEGER, sent INTEGER, created_at INTEGER);"      \
    "CREATE TABLE IF NOT EXISTS dead_letter(seq INTEGER PRIMARY KEY AUTOINCREMENT,"        \
    " mutation_id TEXT, op TEXT, entity_id TEXT, base_revision INTEGER, snapshot BLOB,"    \
    " status INTEGER, reason TEXT, at INTEGER);"                                           \
    "CREATE TABLE IF NOT EXISTS cache(id TEXT PRIMARY KEY, value BLOB, size INTEGER,"      \
    " updated_at INTEGER, used_at INTEGER);"                                               \
    /* C-1 upkeep after every cache write reads the oldest entries (EXPIRED_SQL) */        \
    "CREATE INDEX IF NOT EXISTS cache_updated ON cache(updated_at, id);"

/*
 * 0 when db is empty, or a device store: our application_id, or (a store
 * made before the id was set) id 0 with our tables meta, queue and cache.
 * Otherwise -1 with err: another program's database is refused before
 * anything writes to it (not even journal_mode).  Reads only.
 */
int cli__store_check_ours(sqlite3 *db, const char *path, char *err, size_t errlen);

#endif

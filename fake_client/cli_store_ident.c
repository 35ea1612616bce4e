/*
 * cli_store_ident.c - is this SQLite file a device store (issue 11: --db
 * pointed at another program's file must be refused, not gain our
 * tables)?  See cli_store_schema.h.
 */
#include "cli_store_schema.h"

#include <stdint.h>
#include <stdio.h>

/* The first column of sql's first row, or -1. */
static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
}

int cli__store_check_ours(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int64_t app = one_int(db, "PRAGMA application_id;");
    int64_t objs = one_int(db, "SELECT COUNT(*) FROM sqlite_master;");
    if (app < 0 || objs < 0) {
        snprintf(err, errlen, "%s is not an SQLite database or cannot be read: %s", path,
                 sqlite3_errmsg(db));
        return -1;
    }
    if (app == CLI_APP_ID || (app == 0 && objs == 0))
        return 0;
    if (app == 0 && one_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name IN ('meta', 'queue', 'cache');") == 3)
        return 0;
    if (app != 0)
        snprintf(err, errlen,
                 "%s is an SQLite database of another application (application_id %lld), not "
                 "an hp-fake-client store; refused, left unchanged",
                 path, (long long)app);
    else
        snprintf(err, errlen,
                 "%s is an SQLite database of another program (%lld tables/indexes, not ours), "
                 "not an hp-fake-client store; refused, left unchanged",
                 path, (long long)objs);
    return -1;
}

/*
 * srv_store.c - the server's SQLite store.
 *
 * One database holds every household: their revision counters, the tasks
 * (tombstones included), the event log, idempotency results and the
 * reminders already fired.  A write and its event are one transaction
 * (BEGIN IMMEDIATE .. COMMIT); the core answers only after COMMIT, and a
 * file database runs with journal_mode=WAL + synchronous=FULL, so an
 * acknowledged write survives a crash ("durable before acknowledged").
 *
 * The schema is versioned with PRAGMA user_version: 0 on a file with no
 * tables = new (the schema is created), 1 = the first schema (migrated in
 * place: idempotency records gain their request binding and creation time),
 * SRV_SCHEMA_VERSION = ours.  Anything else - another version, another
 * application_id, or an SQLite file of another program (user_version 0 but
 * tables in it) - is refused with a clear error before anything is written
 * to it (issue 11: --db pointed at another app's database must not gain
 * our tables).
 *
 * A ":memory:" store (the simulator's) is reachable by this connection
 * only, so it also remembers what it wrote instead of reading it back:
 * its households' counters, the oldest idempotency record's creation
 * time (struct srv_store says when each is forgotten) and the keys of the
 * tasks and idempotency records it ever wrote (a key never written is not
 * looked up).
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "srv_keyset.h"
#include "hp_jload.h"
#include "hp_memdb.h"
#include "hp_stmt.h"
#include "hp_time.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRV_SCHEMA_VERSION 2
/* PRAGMA application_id of a server store ("HPSV"): a file with another
 * non-zero id belongs to another program and is refused untouched. */
#define SRV_APP_ID 0x48505356

/* Households' counters as this connection last read or wrote them. */
#define HH_CACHE 8
typedef struct hh_row {
    char hh[128];
    int64_t rev, trimmed;
} hh_row;

struct srv_store {
    sqlite3 *db;
    hp_stmt_cache *stmts; /* every query below is prepared once per store */
    int memory;           /* ":memory:": from and back to the pool (hp_memdb.h) */
    /* Only for a ":memory:" store, which no other connection can reach:
     * every change of its households table is made here, so the counters
     * this connection wrote are what the table holds, open transaction
     * included.  A rollback of any extent, a wipe or a failed statement
     * forgets them all (the next read asks the table again).  A file
     * store always asks the table (another process may write it). */
    hh_row hhc[HH_CACHE];
    int nhhc, hhc_next;
    /* Memory stores too: every idempotency record was created at or after
     * idem_floor (INT64_MAX: none) when idem_floor_known, so a trim to an
     * instant at or before it would delete nothing and is skipped.
     * Records are only added here (created now: the floor follows) and
     * removed here, so it stays true, but for a rollback that brings back
     * what this transaction's trim deleted (idem_trimmed_tx): then it is
     * no longer known, and the next trim runs and reads it again. */
    int64_t idem_floor;
    int idem_floor_known, idem_trimmed_tx;
    /* Memory stores: the keys of every task row and idempotency record
     * ever written (srv_keyset.h), so the lookup of a key never written -
     * a create's task, a new Idempotency-Key - needs no query. */
    srv_keyset tasks_seen, idem_seen;
};

static const char schema_sql[] =
    "CREATE TABLE households("
    "  hh TEXT PRIMARY KEY,"
    "  revision INTEGER NOT NULL DEFAULT 0,"
    "  trimmed INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE tasks("
    "  hh TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,"
    "  revision INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    "  remind_at TEXT, remind_ms INTEGER,"
    "  PRIMARY KEY(hh, id));"
    "CREATE INDEX tasks_rev ON tasks(hh, revision);"
    /* srv_store_reminder_next() after every write reads the first row
     * in (remind_ms, hh, id) order: with all three in the index it needs
     * no sorter (a sorter per call cost more than the rest of the query). */
    "CREATE INDEX tasks_remind ON tasks(remind_ms, hh, id)"
    "  WHERE remind_ms IS NOT NULL AND deleted = 0;"
    "CREATE TABLE events("
    "  hh TEXT NOT NULL, revision INTEGER NOT NULL, event_type TEXT NOT NULL,"
    "  entity_id TEXT NOT NULL, payload TEXT NOT NULL,"
    "  PRIMARY KEY(hh, revision));"
    "CREATE TABLE idempotency("
    "  hh TEXT NOT NULL, user TEXT NOT NULL, key TEXT NOT NULL,"
    "  status INTEGER NOT NULL, body TEXT NOT NULL,"
    "  request TEXT NOT NULL DEFAULT '', fingerprint TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(hh, user, key));"
    "CREATE INDEX idempotency_created ON idempotency(created_ms);"
    "CREATE TABLE reminders_fired("
    "  hh TEXT NOT NULL, id TEXT NOT NULL, remind_at TEXT NOT NULL,"
    "  PRIMARY KEY(hh, id, remind_at));"
    "PRAGMA application_id = 1213223766;" /* SRV_APP_ID */
    "PRAGMA user_version = 2;";

/* ":memory:" stores (the simulator opens one per world) are copies of one
 * image of the schema, built at the first open, and go back to a pool
 * emptied by wipe_sql when closed (hp_memdb.h). */
static const char *const wipe_sql[] = {
    "DELETE FROM households;", "DELETE FROM tasks;", "DELETE FROM events;",
    "DELETE FROM idempotency;", "DELETE FROM reminders_fired;", NULL};
static hp_memdb_template memdb = HP_MEMDB_TEMPLATE(schema_sql, wipe_sql);

/* Version 1 -> 2: records from before the binding have no fingerprint and
 * creation time 0, so they are out of every window: ignored, then trimmed. */
static const char *const migrate_v1_sql =
    "ALTER TABLE idempotency ADD COLUMN request TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE idempotency ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE idempotency ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX idempotency_created ON idempotency(created_ms);"
    "PRAGMA application_id = 1213223766;"
    "PRAGMA user_version = 2;";

/* The tables of every schema version so far: a file claiming a version
 * must have them all, else it is not ours. */
static const char *const our_tables[] = {"households", "tasks", "events", "idempotency",
                                         "reminders_fired"};

/* ---- the household cache (memory stores; see struct srv_store) ---- */

static hh_row *hh_cached(srv_store *st, const char *hh)
{
    for (int i = 0; i < st->nhhc; i++)
        if (strcmp(st->hhc[i].hh, hh) == 0)
            return &st->hhc[i];
    return NULL;
}

/* Records hh's counters as the table holds them now (a full cache reuses
 * its slots in turn). */
static void hh_note(srv_store *st, const char *hh, int64_t rev, int64_t trimmed)
{
    if (!st->memory || !hh || strlen(hh) >= sizeof st->hhc[0].hh)
        return;
    hh_row *r = hh_cached(st, hh);
    if (!r) {
        if (st->nhhc < HH_CACHE) {
            r = &st->hhc[st->nhhc++];
        } else {
            r = &st->hhc[st->hhc_next];
            st->hhc_next = (st->hhc_next + 1) % HH_CACHE;
        }
        memcpy(r->hh, hh, strlen(hh) + 1);
    }
    r->rev = rev;
    r->trimmed = trimmed;
}

/* A rollback (of any extent, also one SQLite did on an error) or a wipe:
 * the cached counters go, and the idempotency floor if this transaction
 * trimmed (what the trim deleted may be back). */
static void forget_cached(srv_store *st)
{
    st->nhhc = 0;
    st->hhc_next = 0;
    if (st->idem_trimmed_tx)
        st->idem_floor_known = 0;
}

static int exec(srv_store *st, const char *sql)
{
    return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* One statement (a transaction's BEGIN, COMMIT, SAVEPOINT...) from the
 * statement cache: every write runs a few, and sqlite3_exec() parsed them
 * again each time. */
static int tx(srv_store *st, const char *sql)
{
    sqlite3_stmt *s = hp_stmt_get(st->stmts, st->db, sql);
    int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
    hp_stmt_done(st->stmts, s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Every row of every table, in one transaction (admin session reset). */
int srv_store_wipe(srv_store *st)
{
    forget_cached(st);
    st->idem_floor_known = 0;
    if (exec(st, "BEGIN IMMEDIATE; DELETE FROM households; DELETE FROM tasks; "
                 "DELETE FROM events; DELETE FROM idempotency; DELETE FROM reminders_fired; "
                 "COMMIT;") != 0) {
        exec(st, "ROLLBACK");
        return -1;
    }
    return 0;
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/*
 * 0 when db is empty (no schema objects, user_version 0) or one of our
 * stores (user_version 1..SRV_SCHEMA_VERSION, application_id ours or 0 as
 * version 1 wrote it, and our tables present); else -1 with err saying
 * what the file is.  Reads only.
 */
static int check_ours(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int64_t ver = pragma_int(db, "PRAGMA user_version;");
    int64_t app = pragma_int(db, "PRAGMA application_id;");
    int64_t objs = pragma_int(db, "SELECT COUNT(*) FROM sqlite_master;");
    if (ver < 0 || app < 0 || objs < 0) {
        if (err && errlen)
            snprintf(err, errlen, "store %s: not an SQLite database or unreadable: %s", path,
                     sqlite3_errmsg(db));
        return -1;
    }
    if (app != 0 && app != SRV_APP_ID) {
        if (err && errlen)
            snprintf(err, errlen,
                     "store %s: an SQLite database of another application (application_id "
                     "%lld), not an hp-fake-server store; refused, left unchanged",
                     path, (long long)app);
        return -1;
    }
    if (ver == 0) {
        if (objs == 0)
            return 0;
        if (err && errlen)
            snprintf(err, errlen,
                     "store %s: an SQLite database with %lld tables/indexes of another "
                     "program, not an hp-fake-server store; refused, left unchanged",
                     path, (long long)objs);
        return -1;
    }
    if (ver > SRV_SCHEMA_VERSION) {
        if (err && errlen)
            snprintf(err, errlen,
                     "store %s: schema version %lld, this server knows 1 to %d (or not a store)",
                     path, (long long)ver, SRV_SCHEMA_VERSION);
        return -1;
    }
    for (size_t i = 0; i < sizeof our_tables / sizeof our_tables[0]; i++) {
        sqlite3_stmt *s = NULL;
        int found = 0;
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1;",
                               -1, &s, NULL) == SQLITE_OK) {
            sqlite3_bind_text(s, 1, our_tables[i], -1, SQLITE_STATIC);
            found = sqlite3_step(s) == SQLITE_ROW;
        }
        sqlite3_finalize(s);
        if (!found) {
            if (err && errlen)
                snprintf(err, errlen,
                         "store %s: user_version %lld but no table \"%s\": not an "
                         "hp-fake-server store; refused, left unchanged",
                         path, (long long)ver, our_tables[i]);
            return -1;
        }
    }
    return 0;
}

/*
 * Opens or creates path.  For a file: WAL + synchronous=FULL (durability
 * before acknowledgement) and a busy timeout so a second reader (an admin's
 * sqlite3 shell) does not make writes fail at once.
 */
srv_store *srv_store_open(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        if (err && errlen)
            snprintf(err, errlen, "store: no path given");
        return NULL;
    }
    srv_store *st = calloc(1, sizeof *st);
    if (!st) {
        if (err && errlen)
            snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    int memory = strcmp(path, ":memory:") == 0;
    if (memory) {
        /* A fresh database already holding the current schema: nothing to
         * identify or migrate. */
        st->memory = 1;
        st->idem_floor = INT64_MAX; /* a new or wiped database: no record */
        st->idem_floor_known = 1;
        if (hp_memdb_open(&memdb, &st->db, &st->stmts) != SQLITE_OK) {
            if (err && errlen)
                snprintf(err, errlen, "store %s: cannot create the schema: %s", path,
                         st->db ? sqlite3_errmsg(st->db) : "cannot open");
            srv_store_close(st);
            return NULL;
        }
        sqlite3_busy_timeout(st->db, 5000);
        return st;
    }
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "store %s: %s", path,
                     st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* Identify the file before anything writes to it: journal_mode=WAL
     * and the schema would both change another program's database. */
    if (check_ours(st->db, path, err, errlen) != 0)
        goto fail;
    if (exec(st, "PRAGMA journal_mode=WAL;") != 0 || exec(st, "PRAGMA synchronous=FULL;") != 0) {
        if (err && errlen)
            snprintf(err, errlen, "store %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    int64_t ver = pragma_int(st->db, "PRAGMA user_version;");
    const char *sql = ver == 0 ? schema_sql : ver == 1 ? migrate_v1_sql : NULL;
    if (sql) {
        if (exec(st, "BEGIN IMMEDIATE;") != 0 || exec(st, sql) != 0 ||
            exec(st, "COMMIT;") != 0) {
            if (err && errlen)
                snprintf(err, errlen, "store %s: cannot %s schema: %s", path,
                         ver == 0 ? "create the" : "migrate the", sqlite3_errmsg(st->db));
            exec(st, "ROLLBACK;");
            goto fail;
        }
    }
    st->stmts = hp_stmt_cache_new();
    return st;
fail:
    sqlite3_close(st->db);
    free(st);
    return NULL;
}

void srv_store_close(srv_store *st)
{
    if (!st)
        return;
    if (st->memory) {
        hp_memdb_close(&memdb, st->db, st->stmts);
    } else {
        hp_stmt_cache_free(st->stmts); /* unfinalized statements would keep the file open */
        sqlite3_close(st->db);
    }
    srv_keyset_free(&st->tasks_seen);
    srv_keyset_free(&st->idem_seen);
    free(st);
}

const char *srv_store_errmsg(srv_store *st)
{
    return st && st->db ? sqlite3_errmsg(st->db) : "no store";
}

void srv_store_busy_timeout(srv_store *st, int ms)
{
    if (st)
        sqlite3_busy_timeout(st->db, ms);
}

int srv_store_begin(srv_store *st)
{
    st->idem_trimmed_tx = 0;
    return tx(st, "BEGIN IMMEDIATE;");
}

int srv_store_commit(srv_store *st)
{
    if (tx(st, "COMMIT;") == 0) {
        st->idem_trimmed_tx = 0;
        return 0;
    }
    forget_cached(st);
    tx(st, "ROLLBACK;");
    return -1;
}

void srv_store_rollback(srv_store *st)
{
    forget_cached(st); /* also when SQLite already rolled back on an error */
    if (!sqlite3_get_autocommit(st->db))
        tx(st, "ROLLBACK;");
}

/* Group commit (srv_group.c): one write inside the group's transaction is
 * a savepoint, so a failing write undoes only itself. */
int srv_store_savepoint(srv_store *st)
{
    return tx(st, "SAVEPOINT w;");
}

int srv_store_release(srv_store *st)
{
    return tx(st, "RELEASE w;");
}

void srv_store_rollback_to(srv_store *st)
{
    forget_cached(st);
    if (!sqlite3_get_autocommit(st->db)) {
        tx(st, "ROLLBACK TO w;");
        tx(st, "RELEASE w;");
    }
}

int srv_store_in_tx(srv_store *st)
{
    return st && st->db && !sqlite3_get_autocommit(st->db);
}

/* A ready statement for sql (cached); give it back with done(). */
static sqlite3_stmt *prep(srv_store *st, const char *sql)
{
    return hp_stmt_get(st->stmts, st->db, sql);
}

static void done(srv_store *st, sqlite3_stmt *s)
{
    hp_stmt_done(st->stmts, s);
}

/* SQLITE_STATIC, not a copy per bind: every function here binds its
 * arguments (alive for the call), steps and gives the statement back with
 * done(), which resets it and clears the bindings, before it returns. */
static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int64_t srv_store_revision(srv_store *st, const char *hh)
{
    int64_t rev, trimmed;
    return srv_store_household(st, hh, &rev, &trimmed) == 0 ? rev : -1;
}

int64_t srv_store_trimmed(srv_store *st, const char *hh)
{
    int64_t rev, trimmed;
    return srv_store_household(st, hh, &rev, &trimmed) == 0 ? trimmed : -1;
}

/* Both counters of hh in one query (a HELLO and a replay chunk read both:
 * two lookups of the same row were two round trips); from the cache of a
 * memory store when it has them.  A household without a row reads 0 and
 * 0, as the row bump would insert holds before its increment. */
int srv_store_household(srv_store *st, const char *hh, int64_t *rev, int64_t *trimmed)
{
    const hh_row *c = st->memory && hh ? hh_cached(st, hh) : NULL;
    if (c) {
        *rev = c->rev;
        *trimmed = c->trimmed;
        return 0;
    }
    sqlite3_stmt *s = prep(st, "SELECT revision, trimmed FROM households WHERE hh = ?1;");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    *rev = *trimmed = 0;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *rev = sqlite3_column_int64(s, 0);
        *trimmed = sqlite3_column_int64(s, 1);
    }
    done(st, s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    hh_note(st, hh, *rev, *trimmed);
    return 0;
}

int64_t srv_store_bump(srv_store *st, const char *hh)
{
    /* Not "RETURNING revision": SQLite runs that through a temporary
     * table, measured at 2.4 times the cost of this and a lookup. */
    /* In a memory store the counters before the increment are known (the
     * cache, else read now): the new revision is their revision + 1, with
     * no lookup after the write. */
    int64_t rev = 0, trimmed = 0;
    if (st->memory && srv_store_household(st, hh, &rev, &trimmed) != 0)
        return -1;
    sqlite3_stmt *s = prep(st, "INSERT INTO households(hh, revision) VALUES(?1, 1) "
                               "ON CONFLICT(hh) DO UPDATE SET revision = revision + 1;");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    int rc = sqlite3_step(s);
    done(st, s);
    if (rc != SQLITE_DONE) {
        forget_cached(st);
        return -1;
    }
    if (!st->memory)
        return srv_store_revision(st, hh);
    hh_note(st, hh, rev + 1, trimmed);
    return rev + 1;
}

json_t *srv_store_task_get(srv_store *st, const char *hh, const char *id)
{
    if (st->memory && hh && id && !srv_keyset_maybe(&st->tasks_seen, srv_keyset_hash(hh, id, NULL)))
        return NULL; /* never written: no row */
    sqlite3_stmt *s = prep(st, "SELECT json FROM tasks WHERE hh = ?1 AND id = ?2;");
    if (!s)
        return NULL;
    bind_text(s, 1, hh);
    bind_text(s, 2, id);
    json_t *t = NULL;
    if (sqlite3_step(s) == SQLITE_ROW)
        t = hp_json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
    done(st, s);
    return t;
}

/* a row is in tasks_remind (a reminder candidate) when its task is
 * not deleted and its remind_at is an instant; *ms gets that instant. */
static int reminds_at(const json_t *task, const char **ra, int64_t *ms)
{
    *ra = json_string_value(json_object_get(task, "remind_at"));
    *ms = 0;
    return *ra && hp_time_parse(*ra, ms) == 0;
}

int srv_store_task_reminds(const json_t *task)
{
    const char *ra;
    int64_t ms;
    return !json_is_true(json_object_get(task, "deleted")) && reminds_at(task, &ra, &ms);
}

/* remind_ms caches the instant of remind_at so the next reminder is
 * one indexed query; remind_at (verbatim) keys the "fired" table. */
int srv_store_task_put(srv_store *st, const char *hh, const json_t *task, const char *text)
{
    char *own = text ? NULL : hp_json_dump(task);
    const char *js = text ? text : own;
    if (!js)
        return -1;
    const char *id = json_string_value(json_object_get(task, "id"));
    int64_t rev = json_integer_value(json_object_get(task, "revision"));
    int deleted = json_is_true(json_object_get(task, "deleted"));
    const char *ra;
    int64_t ra_ms;
    int has_ra = reminds_at(task, &ra, &ra_ms);
    if (st->memory && hh && id)
        srv_keyset_add(&st->tasks_seen, srv_keyset_hash(hh, id, NULL));
    /* An update in place of a known task (its row and primary key entry
     * stay), not REPLACE's delete and insert: the same columns either way. */
    sqlite3_stmt *s = prep(st, "INSERT INTO tasks(hh, id, json, revision, deleted, remind_at, "
                               "remind_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(hh, id) "
                               "DO UPDATE SET json = excluded.json, revision = excluded.revision, "
                               "deleted = excluded.deleted, remind_at = excluded.remind_at, "
                               "remind_ms = excluded.remind_ms;");
    if (!s) {
        free(own);
        return -1;
    }
    bind_text(s, 1, hh);
    bind_text(s, 2, id);
    bind_text(s, 3, js);
    sqlite3_bind_int64(s, 4, rev);
    sqlite3_bind_int(s, 5, deleted);
    bind_text(s, 6, has_ra ? ra : NULL);
    if (has_ra)
        sqlite3_bind_int64(s, 7, ra_ms);
    else
        sqlite3_bind_null(s, 7);
    int rc = sqlite3_step(s);
    done(st, s);
    free(own);
    return rc == SQLITE_DONE ? 0 : -1;
}

json_t *srv_store_tasks_since(srv_store *st, const char *hh, int64_t since)
{
    json_t *arr = json_array();
    sqlite3_stmt *s =
        prep(st, "SELECT json FROM tasks WHERE hh = ?1 AND revision > ?2 ORDER BY revision, id;");
    if (!s || !arr) {
        json_decref(arr);
        done(st, s);
        return NULL;
    }
    bind_text(s, 1, hh);
    sqlite3_bind_int64(s, 2, since);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *t = hp_json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
        if (t)
            json_array_append_new(arr, t);
    }
    done(st, s);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/*
 * WS-2: the log keeps the newest `retain` events of each household; the
 * highest trimmed revision is remembered so a HELLO older than the log is
 * answered RESYNC_REQUIRED instead of a replay with a hole.
 */
int srv_store_event_append(srv_store *st, const char *hh, int64_t rev, const char *type,
                           const char *entity_id, const json_t *payload, const char *text,
                           int retain)
{
    char *own = text ? NULL : hp_json_dump(payload);
    const char *js = text ? text : own;
    if (!js)
        return -1;
    sqlite3_stmt *s = prep(st, "INSERT INTO events(hh, revision, event_type, entity_id, payload) "
                               "VALUES(?1, ?2, ?3, ?4, ?5);");
    if (!s) {
        free(own);
        return -1;
    }
    bind_text(s, 1, hh);
    sqlite3_bind_int64(s, 2, rev);
    bind_text(s, 3, type);
    bind_text(s, 4, entity_id);
    bind_text(s, 5, js);
    int rc = sqlite3_step(s);
    done(st, s);
    free(own);
    if (rc != SQLITE_DONE)
        return -1;
    if (retain > 0 && rev > retain) {
        int64_t cut = rev - retain;
        s = prep(st, "DELETE FROM events WHERE hh = ?1 AND revision <= ?2;");
        if (!s)
            return -1;
        bind_text(s, 1, hh);
        sqlite3_bind_int64(s, 2, cut);
        rc = sqlite3_step(s);
        done(st, s);
        if (rc != SQLITE_DONE)
            return -1;
        s = prep(st, "UPDATE households SET trimmed = MAX(trimmed, ?2) WHERE hh = ?1;");
        if (!s)
            return -1;
        bind_text(s, 1, hh);
        sqlite3_bind_int64(s, 2, cut);
        rc = sqlite3_step(s);
        done(st, s);
        hh_row *c = hh_cached(st, hh);
        if (rc != SQLITE_DONE) {
            forget_cached(st);
            return -1;
        }
        /* as the UPDATE did (no row: nothing changed, nor here) */
        if (c && c->rev > 0 && cut > c->trimmed)
            c->trimmed = cut;
    }
    return 0;
}

/* WS-2: one replay chunk.  The byte budget counts stored payload text, a
 * close enough measure of the frames it becomes. */
int srv_store_events_page(srv_store *st, const char *hh, int64_t since, size_t max_bytes,
                          srv_event_fn fn, void *ud, int *n)
{
    *n = 0;
    sqlite3_stmt *s = prep(st, "SELECT revision, event_type, entity_id, payload FROM events "
                               "WHERE hh = ?1 AND revision > ?2 ORDER BY revision;");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    sqlite3_bind_int64(s, 2, since);
    int rc = SQLITE_DONE;
    size_t bytes = 0;
    while (bytes < max_bytes && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        bytes += (size_t)sqlite3_column_bytes(s, 3);
        fn(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
           (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3));
        ++*n;
    }
    if (bytes >= max_bytes)
        rc = SQLITE_DONE; /* stopped early on purpose */
    done(st, s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* WS-2: the size of a replay, to refuse one over the bound before sending
 * any of it.  length() of a BLOB is its byte count (of TEXT, characters). */
int srv_store_events_size(srv_store *st, const char *hh, int64_t since, int64_t *count,
                          int64_t *bytes)
{
    sqlite3_stmt *s = prep(st, "SELECT COUNT(*), COALESCE(SUM(length(CAST(payload AS BLOB))), 0) "
                               "FROM events WHERE hh = ?1 AND revision > ?2;");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    sqlite3_bind_int64(s, 2, since);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *count = sqlite3_column_int64(s, 0);
        *bytes = sqlite3_column_int64(s, 1);
    }
    done(st, s);
    return rc == SQLITE_ROW ? 0 : -1;
}

int64_t srv_store_event_count(srv_store *st)
{
    return pragma_int(st->db, "SELECT COUNT(*) FROM events;");
}

/* a record older than since_ms is out of the window: not found. */
int srv_store_idem_get(srv_store *st, const char *hh, const char *user, const char *key,
                       int64_t since_ms, srv_idem_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    if (st->memory && hh && user && key &&
        !srv_keyset_maybe(&st->idem_seen, srv_keyset_hash(hh, user, key)))
        return 0; /* never written: no record */
    sqlite3_stmt *s = prep(st, "SELECT status, body, request, fingerprint FROM idempotency "
                               "WHERE hh = ?1 AND user = ?2 AND key = ?3 AND created_ms >= ?4;");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    bind_text(s, 2, user);
    bind_text(s, 3, key);
    sqlite3_bind_int64(s, 4, since_ms);
    int rc = sqlite3_step(s), r = 0;
    if (rc == SQLITE_ROW) {
        rec->status = sqlite3_column_int(s, 0);
        rec->body = strdup((const char *)sqlite3_column_text(s, 1));
        rec->request = strdup((const char *)sqlite3_column_text(s, 2));
        snprintf(rec->fingerprint, sizeof rec->fingerprint, "%s",
                 (const char *)sqlite3_column_text(s, 3));
        r = rec->body && rec->request ? 1 : -1;
        if (r < 0) {
            free(rec->body);
            free(rec->request);
            rec->body = rec->request = NULL;
        }
    } else if (rc != SQLITE_DONE) {
        r = -1;
    }
    done(st, s);
    return r;
}

/* The oldest record's creation time into the floor (a memory store, after
 * a trim); unknown when it cannot be read. */
static void idem_read_floor(srv_store *st)
{
    sqlite3_stmt *s = prep(st, "SELECT MIN(created_ms) FROM idempotency;");
    st->idem_floor_known = 0;
    if (!s)
        return;
    if (sqlite3_step(s) == SQLITE_ROW) {
        st->idem_floor = sqlite3_column_type(s, 0) == SQLITE_NULL ? INT64_MAX
                                                                   : sqlite3_column_int64(s, 0);
        st->idem_floor_known = 1;
    }
    done(st, s);
}

/* Q-3 + LIMITS.md: the table is trimmed by age in the same transaction as
 * the write that adds a record (an indexed range delete), so it holds at
 * most one window of keyed writes. */
int srv_store_idem_put(srv_store *st, const char *hh, const char *user, const char *key,
                       const char *request, const char *fp, int64_t now_ms,
                       int64_t trim_before_ms, int status, const char *body)
{
    sqlite3_stmt *s;
    int rc;
    if (!(st->memory && st->idem_floor_known && trim_before_ms <= st->idem_floor)) {
        st->idem_trimmed_tx = 1;
        s = prep(st, "DELETE FROM idempotency WHERE created_ms < ?1;");
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, trim_before_ms);
        rc = sqlite3_step(s);
        done(st, s);
        if (rc != SQLITE_DONE)
            return -1;
        if (st->memory)
            idem_read_floor(st);
    }
    if (st->memory && hh && user && key)
        srv_keyset_add(&st->idem_seen, srv_keyset_hash(hh, user, key));
    s = prep(st, "INSERT OR REPLACE INTO idempotency(hh, user, key, status, body, request, "
                 "fingerprint, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    bind_text(s, 2, user);
    bind_text(s, 3, key);
    sqlite3_bind_int(s, 4, status);
    bind_text(s, 5, body ? body : "");
    bind_text(s, 6, request ? request : "");
    bind_text(s, 7, fp ? fp : "");
    sqlite3_bind_int64(s, 8, now_ms);
    rc = sqlite3_step(s);
    done(st, s);
    if (rc != SQLITE_DONE)
        return -1;
    if (now_ms < st->idem_floor)
        st->idem_floor = now_ms;
    return 0;
}

int64_t srv_store_idem_count(srv_store *st)
{
    return pragma_int(st->db, "SELECT COUNT(*) FROM idempotency;");
}

/* "once per value of remind_at": a (hh, id, remind_at) row in
 * reminders_fired means that value has fired; tombstones never fire.  Ties
 * on the instant are broken by household and id so runs are deterministic. */
int srv_store_reminder_next(srv_store *st, char *hh, char *id, size_t n, char **remind_at,
                            int64_t *due_ms)
{
    sqlite3_stmt *s = prep(
        st, "SELECT t.hh, t.id, t.remind_at, t.remind_ms FROM tasks t "
            "WHERE t.remind_ms IS NOT NULL AND t.deleted = 0 AND NOT EXISTS ("
            "  SELECT 1 FROM reminders_fired f "
            "  WHERE f.hh = t.hh AND f.id = t.id AND f.remind_at = t.remind_at) "
            "ORDER BY t.remind_ms, t.hh, t.id LIMIT 1;");
    if (!s)
        return -1;
    int rc = sqlite3_step(s), r = 0;
    if (rc == SQLITE_ROW) {
        snprintf(hh, n, "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(id, n, "%s", (const char *)sqlite3_column_text(s, 1));
        if (remind_at)
            *remind_at = strdup((const char *)sqlite3_column_text(s, 2));
        *due_ms = sqlite3_column_int64(s, 3);
        r = 1;
    } else if (rc != SQLITE_DONE) {
        r = -1;
    }
    done(st, s);
    return r;
}

int srv_store_reminder_mark(srv_store *st, const char *hh, const char *id, const char *remind_at)
{
    sqlite3_stmt *s =
        prep(st, "INSERT OR IGNORE INTO reminders_fired(hh, id, remind_at) VALUES(?1, ?2, ?3);");
    if (!s)
        return -1;
    bind_text(s, 1, hh);
    bind_text(s, 2, id);
    bind_text(s, 3, remind_at);
    int rc = sqlite3_step(s);
    done(st, s);
    return rc == SQLITE_DONE ? 0 : -1;
}

json_t *srv_store_households(srv_store *st)
{
    json_t *arr = json_array();
    sqlite3_stmt *s = prep(st, "SELECT hh FROM households ORDER BY hh;");
    if (!s || !arr) {
        done(st, s);
        json_decref(arr);
        return NULL;
    }
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(arr, json_string((const char *)sqlite3_column_text(s, 0)));
    done(st, s);
    return arr;
}

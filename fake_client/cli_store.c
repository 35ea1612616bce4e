/*
 * cli_store.c - the device store: SQLite file with the queue, the
 * dead-letter list, the cache, quarantine and meta (Q-1, C-1..C-4).
 *
 * Every task value is sealed (C-3, cli_crypto.c) with the entity id as
 * associated data, so a value moved to another row fails its tag.  Entity
 * ids, mutation ids, revisions and timestamps are plain columns (they are
 * needed for ordering and eviction and carry no task text).
 */
#include "cli_store.h"
#include "cli_cacheidx.h"
#include "cli_store_schema.h"
#include "hp_jload.h"
#include "cli_internal.h"
#include "cli_keypool.h"
#include "hp_log.h"
#include "hp_memdb.h"
#include "hp_stmt.h"
#include "hp_task.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#define KEYCHECK_AAD "meta:keycheck"
#define KEYCHECK_TEXT "hpsync-keycheck-v1"

struct cli_store {
    sqlite3 *db;
    hp_stmt_cache *stmts; /* every query below is prepared once per store */
    cli_key *key;         /* C-3: owned (cli_key_free); its cipher contexts
                             are kept for the store's life */
    const hp_env *env;
    cli_store_open_info info;
    int memory;           /* ":memory:": from and back to the pool (hp_memdb.h) */
    uint8_t key_bytes[32]; /* memory only: to give the key back (cli_keypool.h) */
    int64_t cache_bytes;  /* SUM(size) of the cache, -1 when unknown: read
                             once, then kept current by every cache write
                             (C-2 reads it after every cache write, the
                             simulator after every step); -1 again after a
                             failed write */
    cli_cacheidx cidx;    /* with cache_bytes >= 0: every cache row's id and
                             size (and revision, once written or read here) */
    int64_t applied;      /* memory only: the applied revision (no meta row) */
};

static const char SCHEMA[] = "PRAGMA journal_mode=WAL;" TABLES_SQL;

/* ":memory:" stores (the simulator opens one per client) come from a pool
 * of connections emptied by WIPE when closed (hp_memdb.h), with no rollback
 * journal: the store never rolls their writes back (one transaction for a
 * store's life, committed at close: cli_store_open), and copying each page
 * a write changes into the journal, to undo a statement that never fails,
 * cost 12.7 M of the suite bench's 777 M Ir.  Queries return the same; only
 * an out-of-memory error in the middle of a write could not be undone. */
static const char MEMORY_SCHEMA[] = "PRAGMA journal_mode=OFF;" TABLES_SQL;
static const char *const WIPE[] = {
    "DELETE FROM meta;", "DELETE FROM queue;", "DELETE FROM quarantine;",
    "DELETE FROM dead_letter;", "DELETE FROM cache;", "DELETE FROM sqlite_sequence;", NULL};
static hp_memdb_template memdb = HP_MEMDB_TEMPLATE(MEMORY_SCHEMA, WIPE);

static int64_t now_ms(const cli_store *st)
{
    return st->env && st->env->now ? hp_env_now(st->env) : 0;
}

static int exec(cli_store *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        hp_log(st->env, HP_LOG_ERROR, "store_error", "sql=\"%.40s\" error=\"%s\"", sql,
               msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* A ready statement for sql (cached); give it back with done(). */
static sqlite3_stmt *prep(cli_store *st, const char *sql)
{
    sqlite3_stmt *s = hp_stmt_get(st->stmts, st->db, sql);
    if (!s)
        hp_log(st->env, HP_LOG_ERROR, "store_error", "error=\"%s\"", sqlite3_errmsg(st->db));
    return s;
}

static void done(cli_store *st, sqlite3_stmt *s)
{
    hp_stmt_done(st->stmts, s);
}

/* Runs a statement that returns no row (cached, unlike exec()). */
static void run_once(cli_store *st, const char *sql)
{
    sqlite3_stmt *s = prep(st, sql);
    if (s)
        sqlite3_step(s);
    done(st, s);
}

/* Cached statements first: sqlite3_close() refuses a handle that has some.
 * A ":memory:" store's transaction is committed first (its pool takes an
 * idle connection only; see cli_store_open). */
static void close_db(cli_store *st)
{
    if (st->memory) {
        if (st->db && !sqlite3_get_autocommit(st->db))
            run_once(st, "COMMIT");
        hp_memdb_close(&memdb, st->db, st->stmts);
    } else {
        hp_stmt_cache_free(st->stmts);
        sqlite3_close(st->db);
    }
    st->stmts = NULL;
    st->db = NULL;
}

/* Seal a JSON value (sorted compact dump) with aad = entity id. */
static int seal_json(cli_store *st, const char *aad, const json_t *v, uint8_t **out, size_t *len)
{
    char *txt = hp_json_dump(v);
    if (!txt)
        return -1;
    int rc = cli_seal(st->key, st->env, aad, txt, strlen(txt), out, len);
    free(txt);
    return rc;
}

/* Open a sealed JSON column; NULL column => *out NULL and 0; bad tag => -1. */
static int open_json_col(cli_store *st, sqlite3_stmt *s, int col, const char *aad, json_t **out)
{
    *out = NULL;
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return 0;
    const uint8_t *b = sqlite3_column_blob(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *pt = NULL;
    size_t ptlen = 0;
    if (cli_open(st->key, aad, b, n, &pt, &ptlen) != 0)
        return -1;
    json_error_t jerr;
    *out = hp_json_loadb(pt, ptlen, 0, &jerr);
    free(pt);
    return *out ? 0 : -1;
}

/* Binds v sealed (NULL v: SQL NULL).  txt non-NULL: hp_json_dump(v),
 * already made by the caller, sealed instead of dumping v again. */
static int bind_sealed_txt(cli_store *st, sqlite3_stmt *s, int idx, const char *aad, const json_t *v,
                           const char *txt)
{
    if (!v)
        return sqlite3_bind_null(s, idx) == SQLITE_OK ? 0 : -1;
    uint8_t *b = NULL;
    size_t n = 0;
    if ((txt ? cli_seal(st->key, st->env, aad, txt, strlen(txt), &b, &n)
             : seal_json(st, aad, v, &b, &n)) != 0)
        return -1;
    return sqlite3_bind_blob(s, idx, b, (int)n, free) == SQLITE_OK ? 0 : -1;
}

static int bind_sealed(cli_store *st, sqlite3_stmt *s, int idx, const char *aad, const json_t *v)
{
    return bind_sealed_txt(st, s, idx, aad, v, NULL);
}

/* C-3: the key-check row decides whether key opens this file. */
static int keycheck(cli_store *st, int *fresh)
{
    *fresh = 0;
    sqlite3_stmt *s = prep(st, "SELECT v FROM meta WHERE k='keycheck'");
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    int result;
    if (rc == SQLITE_ROW) {
        char *pt = NULL;
        result = cli_open(st->key, KEYCHECK_AAD, sqlite3_column_blob(s, 0),
                          (size_t)sqlite3_column_bytes(s, 0), &pt, NULL) == 0 &&
                         strcmp(pt, KEYCHECK_TEXT) == 0
                     ? 1
                     : 0;
        free(pt);
    } else {
        *fresh = 1;
        result = 1;
    }
    done(st, s);
    return result;
}

static int write_keycheck(cli_store *st)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (cli_seal(st->key, st->env, KEYCHECK_AAD, KEYCHECK_TEXT, strlen(KEYCHECK_TEXT), &b, &n))
        return -1;
    sqlite3_stmt *s = prep(st, "INSERT OR REPLACE INTO meta(k,v) VALUES('keycheck',?)");
    if (!s) {
        free(b);
        return -1;
    }
    sqlite3_bind_blob(s, 1, b, (int)n, free);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    return rc;
}

/* Move one queue row (by seq) to quarantine, still sealed. */
static int quarantine_row(cli_store *st, int64_t seq)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO quarantine(orig_seq,mutation_id,op,entity_id,"
                               "base_revision,base,snapshot,attempts,sent,created_at) SELECT seq,"
                               "mutation_id,op,entity_id,base_revision,base,snapshot,attempts,"
                               "sent,created_at FROM queue WHERE seq=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    if (rc == 0)
        rc = cli_store_queue_remove(st, seq);
    return rc;
}

/*
 * C-3: quarantined items that open with the current key go back to the
 * queue's tail in their original order (the right key came back).
 */
static int restore_quarantine(cli_store *st)
{
    sqlite3_stmt *s = prep(st, "SELECT seq,entity_id,snapshot FROM quarantine ORDER BY orig_seq, seq");
    if (!s)
        return 0;
    int64_t *ok_seqs = NULL;
    int n = 0, cap = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *eid = (const char *)sqlite3_column_text(s, 1);
        json_t *v = NULL;
        if (open_json_col(st, s, 2, eid ? eid : "", &v) == 0 && v) {
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                int64_t *ns = realloc(ok_seqs, (size_t)cap * sizeof *ns);
                if (!ns) {
                    json_decref(v);
                    break;
                }
                ok_seqs = ns;
            }
            ok_seqs[n++] = sqlite3_column_int64(s, 0);
        }
        json_decref(v);
    }
    done(st, s);
    for (int i = 0; i < n; i++) {
        sqlite3_stmt *m = prep(st, "INSERT INTO queue(mutation_id,op,entity_id,base_revision,base,"
                                   "snapshot,attempts,sent,created_at) SELECT mutation_id,op,"
                                   "entity_id,base_revision,base,snapshot,attempts,sent,created_at"
                                   " FROM quarantine WHERE seq=?");
        if (!m)
            break;
        sqlite3_bind_int64(m, 1, ok_seqs[i]);
        sqlite3_step(m);
        done(st, m);
        m = prep(st, "DELETE FROM quarantine WHERE seq=?");
        if (!m)
            break;
        sqlite3_bind_int64(m, 1, ok_seqs[i]);
        sqlite3_step(m);
        done(st, m);
    }
    free(ok_seqs);
    return n;
}

/* An open that failed: everything it holds goes (the key wiped). */
static cli_store *open_failed(cli_store *st)
{
    close_db(st);
    cli_key_free(st->key);
    free(st);
    return NULL;
}

/*
 * Open or create the store.  A wrong key (C-3) empties the cache, resets
 * the applied revision to 0 (rebuild from the server), moves queued items
 * sealed to quarantine and re-keys the file; quarantined items that open
 * with this key are restored.  Only I/O errors and a
 * file of another program (check_ours) return NULL.
 */
cli_store *cli_store_open(const char *path, const uint8_t key[32], const hp_env *env,
                          cli_store_open_info *info, char *err, size_t errlen)
{
    int memory = !path || !strcmp(path, ":memory:");
    cli_store *st = calloc(1, sizeof *st);
    if (st) {
        st->cache_bytes = -1;
        st->memory = memory;
        if (memory)
            memcpy(st->key_bytes, key, 32);
    }
    if (st && !(st->key = memory ? cli_keypool_take(key) : cli_key_new(key))) {
        free(st);
        st = NULL;
    }
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->env = env;
    if (!memory)
        st->stmts = hp_stmt_cache_new();
    /* A fresh ":memory:" database comes with the schema (nothing to
     * identify); a file is identified, then given the schema if new. */
    if ((memory ? hp_memdb_open(&memdb, &st->db, &st->stmts) : sqlite3_open(path, &st->db)) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path ? path : ":memory:",
                 st->db ? sqlite3_errmsg(st->db) : "?");
        return open_failed(st);
    }
    sqlite3_busy_timeout(st->db, 5000);
    if (memory) {
        /* hp_memdb_open() gives no row: the path below would find the key
         * check absent and nothing quarantined, and only write the check. */
        /* One transaction for the store's life, committed at close: no
         * other connection sees this database, each statement still sees
         * every earlier write, and beginning and committing one per
         * statement cost 11.4 M of the suite bench's 662 M Ir (callgrind).
         * Should BEGIN fail, or SQLite end the transaction after an error,
         * the store goes on in autocommit mode. */
        run_once(st, "BEGIN");
        st->cache_bytes = 0; /* an empty cache: its index is complete */
        write_keycheck(st);
        if (info)
            *info = st->info;
        return st;
    }
    if (cli__store_check_ours(st->db, path, err, errlen) != 0)
        return open_failed(st);
    if (exec(st, SCHEMA) != 0) {
        snprintf(err, errlen, "cannot create the schema in %s: %s", path ? path : ":memory:",
                 sqlite3_errmsg(st->db));
        return open_failed(st);
    }
    int fresh = 0;
    int ok = keycheck(st, &fresh);
    if (ok < 0) {
        snprintf(err, errlen, "cannot read %s", path ? path : ":memory:");
        return open_failed(st);
    }
    exec(st, "BEGIN");
    if (fresh)
        write_keycheck(st);
    if (!ok) {
        /* C-3: wrong key. */
        st->info.key_mismatch = 1;
        if (exec(st, "INSERT INTO quarantine(orig_seq,mutation_id,op,entity_id,base_revision,"
                     "base,snapshot,attempts,sent,created_at) SELECT seq,mutation_id,op,"
                     "entity_id,base_revision,base,snapshot,attempts,sent,created_at FROM queue"
                     " ORDER BY seq") == 0) {
            st->info.quarantined = sqlite3_changes(st->db);
            exec(st, "DELETE FROM queue");
        }
        exec(st, "DELETE FROM cache");
        exec(st, "INSERT OR REPLACE INTO meta(k,v) VALUES('applied_revision',0)");
        write_keycheck(st);
        hp_log(env, HP_LOG_ERROR, "key_mismatch",
               "detail=\"the key does not open this store; cache cleared, rebuilding from the "
               "server\" quarantined=%d",
               st->info.quarantined);
    }
    st->info.restored = restore_quarantine(st);
    if (st->info.restored > 0)
        hp_log(env, HP_LOG_INFO, "quarantine_restored", "items=%d", st->info.restored);
    exec(st, "COMMIT");
    if (info)
        *info = st->info;
    return st;
}

void cli_store_close(cli_store *st)
{
    if (!st)
        return;
    close_db(st);
    if (st->memory)
        cli_keypool_give(st->key, st->key_bytes); /* kept for the next store (why: there) */
    else
        cli_key_free(st->key); /* wipes the key */
    OPENSSL_cleanse(st->key_bytes, sizeof st->key_bytes);
    cli_cacheidx_free(&st->cidx);
    free(st);
}

cli_store_open_info cli_store_info(const cli_store *st)
{
    cli_store_open_info z = {0, 0, 0};
    return st ? st->info : z;
}

/* ---- meta ----------------------------------------------------------- */

int64_t cli_store_applied_revision(cli_store *st)
{
    if (st->memory)
        return st->applied;
    sqlite3_stmt *s = prep(st, "SELECT v FROM meta WHERE k='applied_revision'");
    int64_t r = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        r = sqlite3_column_int64(s, 0);
    done(st, s);
    return r;
}

int cli_store_set_applied_revision(cli_store *st, int64_t rev)
{
    /* A ":memory:" store's rows are read only through this interface and
     * go at close: its applied revision (written after every event, 4.9 M
     * Ir per suite run as the row's upsert) is the field alone. */
    if (st->memory) {
        st->applied = rev;
        return 0;
    }
    /* An update in place of the one row (REPLACE deleted and inserted it). */
    sqlite3_stmt *s = prep(st, "INSERT INTO meta(k,v) VALUES('applied_revision',?)"
                               " ON CONFLICT(k) DO UPDATE SET v=excluded.v");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, rev);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    return rc;
}

/* ---- queue ------------------------------------------------------------ */

void cli_item_clear(cli_item *it)
{
    if (!it)
        return;
    json_decref(it->base);
    json_decref(it->snapshot);
    memset(it, 0, sizeof *it);
}

int cli_store_queue_push(cli_store *st, cli_item *it)
{
    return cli_store_queue_push_txt(st, it, NULL, NULL);
}

int cli_store_queue_push_txt(cli_store *st, cli_item *it, const char *base_txt,
                             const char *snapshot_txt)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO queue(mutation_id,op,entity_id,base_revision,base,"
                               "snapshot,attempts,sent,created_at) VALUES(?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, it->mutation_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, it->op, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, it->entity_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, it->base_revision);
    int rc = bind_sealed_txt(st, s, 5, it->entity_id, it->base, base_txt);
    rc = rc ? rc : bind_sealed_txt(st, s, 6, it->entity_id, it->snapshot, snapshot_txt);
    sqlite3_bind_int(s, 7, it->attempts);
    sqlite3_bind_int(s, 8, it->sent);
    sqlite3_bind_int64(s, 9, it->created_at);
    if (rc == 0)
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    if (rc == 0)
        it->seq = sqlite3_last_insert_rowid(st->db);
    return rc;
}

int cli_store_queue_update(cli_store *st, const cli_item *it)
{
    return cli_store_queue_update_txt(st, it, NULL, NULL);
}

int cli_store_queue_update_txt(cli_store *st, const cli_item *it, const char *base_txt,
                               const char *snapshot_txt)
{
    sqlite3_stmt *s = prep(st, "UPDATE queue SET mutation_id=?,op=?,base_revision=?,base=?,"
                               "snapshot=?,attempts=?,sent=? WHERE seq=?");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, it->mutation_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, it->op, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, it->base_revision);
    int rc = bind_sealed_txt(st, s, 4, it->entity_id, it->base, base_txt);
    rc = rc ? rc : bind_sealed_txt(st, s, 5, it->entity_id, it->snapshot, snapshot_txt);
    sqlite3_bind_int(s, 6, it->attempts);
    sqlite3_bind_int(s, 7, it->sent);
    sqlite3_bind_int64(s, 8, it->seq);
    if (rc == 0)
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    return rc;
}

int cli_store_queue_remove(cli_store *st, int64_t seq)
{
    sqlite3_stmt *s = prep(st, "DELETE FROM queue WHERE seq=?");
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    return rc;
}

static int count_of(cli_store *st, const char *sql)
{
    sqlite3_stmt *s = prep(st, sql);
    int n = 0;
    if (s && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    done(st, s);
    return n;
}

int cli_store_queue_count(cli_store *st)
{
    return count_of(st, "SELECT COUNT(*) FROM queue");
}

int cli_store_quarantine_count(cli_store *st)
{
    return count_of(st, "SELECT COUNT(*) FROM quarantine");
}

/*
 * the queue in FIFO order.  An item whose sealed values fail their
 * tag (C-3: tampered) is moved to quarantine - kept, never deleted - and
 * logged at WARNING.
 */
int cli_store_queue_load(cli_store *st, cli_item **items, int *n)
{
    *items = NULL;
    *n = 0;
    sqlite3_stmt *s = prep(st, "SELECT seq,mutation_id,op,entity_id,base_revision,base,snapshot,"
                               "attempts,sent,created_at FROM queue ORDER BY seq");
    if (!s)
        return -1;
    int cap = 0;
    int64_t *bad = NULL;
    int nbad = 0, badcap = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        cli_item it;
        memset(&it, 0, sizeof it);
        it.seq = sqlite3_column_int64(s, 0);
        snprintf(it.mutation_id, sizeof it.mutation_id, "%s",
                 (const char *)(sqlite3_column_text(s, 1) ? sqlite3_column_text(s, 1) : (const unsigned char *)""));
        snprintf(it.op, sizeof it.op, "%s",
                 (const char *)(sqlite3_column_text(s, 2) ? sqlite3_column_text(s, 2) : (const unsigned char *)"put"));
        snprintf(it.entity_id, sizeof it.entity_id, "%s",
                 (const char *)(sqlite3_column_text(s, 3) ? sqlite3_column_text(s, 3) : (const unsigned char *)""));
        it.base_revision = sqlite3_column_int64(s, 4);
        it.attempts = sqlite3_column_int(s, 7);
        it.sent = sqlite3_column_int(s, 8);
        it.created_at = sqlite3_column_int64(s, 9);
        if (open_json_col(st, s, 5, it.entity_id, &it.base) != 0 ||
            open_json_col(st, s, 6, it.entity_id, &it.snapshot) != 0 || !it.snapshot) {
            hp_log(st->env, HP_LOG_WARNING, "tampered",
                   "table=queue entity=task/%s mutation_id=%s action=quarantined", it.entity_id,
                   it.mutation_id);
            if (nbad == badcap) {
                badcap = badcap ? badcap * 2 : 8;
                int64_t *nb = realloc(bad, (size_t)badcap * sizeof *nb);
                if (nb)
                    bad = nb;
                else
                    badcap = nbad;
            }
            if (nbad < badcap)
                bad[nbad++] = it.seq;
            cli_item_clear(&it);
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cli_item *ni = realloc(*items, (size_t)cap * sizeof **items);
            if (!ni) {
                cli_item_clear(&it);
                break;
            }
            *items = ni;
        }
        (*items)[(*n)++] = it;
    }
    done(st, s);
    for (int i = 0; i < nbad; i++)
        quarantine_row(st, bad[i]);
    free(bad);
    return 0;
}

int cli_store_dead_push(cli_store *st, const cli_item *it, int status, const char *reason)
{
    sqlite3_stmt *s = prep(st, "INSERT INTO dead_letter(mutation_id,op,entity_id,base_revision,"
                               "snapshot,status,reason,at) VALUES(?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, it->mutation_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, it->op, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, it->entity_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, it->base_revision);
    int rc = bind_sealed(st, s, 5, it->entity_id, it->snapshot);
    sqlite3_bind_int(s, 6, status);
    sqlite3_bind_text(s, 7, reason ? reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 8, now_ms(st));
    if (rc == 0)
        rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    return rc;
}

/* the dead-letter list; a snapshot that no longer opens reads null. */
json_t *cli_store_dead_list(cli_store *st)
{
    json_t *arr = json_array();
    sqlite3_stmt *s = prep(st, "SELECT mutation_id,op,entity_id,status,reason,snapshot FROM "
                               "dead_letter ORDER BY seq");
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        const char *eid = (const char *)sqlite3_column_text(s, 2);
        json_t *snap = NULL;
        if (open_json_col(st, s, 5, eid ? eid : "", &snap) != 0)
            snap = NULL;
        json_t *o = json_pack("{s:s?, s:s?, s:s?, s:i, s:s?, s:o}", "mutation_id",
                              (const char *)sqlite3_column_text(s, 0), "op",
                              (const char *)sqlite3_column_text(s, 1), "entity_id", eid,
                              "status", sqlite3_column_int(s, 3), "reason",
                              (const char *)sqlite3_column_text(s, 4), "snapshot",
                              snap ? snap : json_null());
        if (o)
            json_array_append_new(arr, o);
    }
    done(st, s);
    return arr;
}

/* ---- cache ------------------------------------------------------------ */

/* The cache's total and index are no longer known (a failed write): both
 * are read again from the rows when next needed (cli_store_cache_bytes). */
static void cache_unknown(cli_store *st)
{
    st->cache_bytes = -1;
    cli_cacheidx_clear(&st->cidx);
}

/* The stored size of id's cache entry (0 when absent), from the index. */
static int64_t cache_size_of(const cli_store *st, const char *id)
{
    const cli_cacheent *e = cli_cacheidx_find(&st->cidx, id);
    return e ? e->size : 0;
}

int cli_store_cache_put(cli_store *st, const char *id, const json_t *task)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (seal_json(st, id, task, &b, &n) != 0)
        return -1;
    /* C-2 counts SUM(size): kept current by the difference (the old size
     * from the index) instead of summing the cache again after this write. */
    int64_t old = st->cache_bytes >= 0 ? cache_size_of(st, id) : -1;
    /* An update in place when id is cached (same row and PK entry), not
     * REPLACE's delete and insert: the same columns either way. */
    sqlite3_stmt *s = prep(st, "INSERT INTO cache(id,value,size,updated_at,used_at) VALUES(?,?,?,?,?)"
                               " ON CONFLICT(id) DO UPDATE SET value=excluded.value,"
                               "size=excluded.size,updated_at=excluded.updated_at,"
                               "used_at=excluded.used_at");
    if (!s) {
        free(b);
        cache_unknown(st);
        return -1;
    }
    int64_t t = now_ms(st);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, 2, b, (int)n, free);
    sqlite3_bind_int64(s, 3, (int64_t)n);
    sqlite3_bind_int64(s, 4, t);
    sqlite3_bind_int64(s, 5, t);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    /* The revision as a read of the row would find it (the dump keeps an
     * integer exact; anything else reads 0 both ways). */
    if (rc == 0 && old >= 0 &&
        cli_cacheidx_set(&st->cidx, id, (int64_t)n, 1,
                         json_integer_value(json_object_get(task, "revision"))) == 0)
        st->cache_bytes += (int64_t)n - old;
    else
        cache_unknown(st);
    return rc;
}

int cli_store_cache_revision(cli_store *st, const char *id, int64_t *rev)
{
    *rev = 0;
    if (st->cache_bytes < 0)
        return -1;
    const cli_cacheent *e = cli_cacheidx_find(&st->cidx, id);
    if (!e)
        return 0;
    if (!e->has_rev)
        return -1;
    *rev = e->rev;
    return 1;
}

/* C-3: a value failing its tag is dropped and logged at WARNING. */
json_t *cli_store_cache_get(cli_store *st, const char *id)
{
    sqlite3_stmt *s = prep(st, "SELECT value FROM cache WHERE id=?");
    if (!s)
        return NULL;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    json_t *v = NULL;
    int found = 0, bad = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        found = 1;
        if (open_json_col(st, s, 0, id, &v) != 0 || !v)
            bad = 1;
    }
    done(st, s);
    if (bad) {
        hp_log(st->env, HP_LOG_WARNING, "tampered", "table=cache entity=task/%s action=dropped", id);
        cli_store_cache_remove(st, id);
        return NULL;
    }
    if (found && st->cache_bytes >= 0) {
        /* Learnt for cli_store_cache_revision(). */
        cli_cacheent *e = cli_cacheidx_find(&st->cidx, id);
        if (e) {
            e->rev = json_integer_value(json_object_get(v, "revision"));
            e->has_rev = 1;
        }
    }
    if (found) {
        s = prep(st, "UPDATE cache SET used_at=? WHERE id=?");
        if (s) {
            sqlite3_bind_int64(s, 1, now_ms(st));
            sqlite3_bind_text(s, 2, id, -1, SQLITE_TRANSIENT);
            sqlite3_step(s);
            done(st, s);
        }
    }
    return v;
}

int cli_store_cache_remove(cli_store *st, const char *id)
{
    int64_t old = st->cache_bytes >= 0 ? cache_size_of(st, id) : -1;
    sqlite3_stmt *s = prep(st, "DELETE FROM cache WHERE id=?");
    if (!s) {
        cache_unknown(st);
        return -1;
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    done(st, s);
    if (rc == 0 && old >= 0) {
        cli_cacheidx_del(&st->cidx, id);
        st->cache_bytes -= old;
    } else {
        cache_unknown(st);
    }
    return rc;
}

int cli_store_cache_clear(cli_store *st)
{
    int rc = exec(st, "DELETE FROM cache");
    cache_unknown(st);
    if (rc == 0)
        st->cache_bytes = 0; /* and the index is the empty one */
    return rc;
}

int64_t cli_store_cache_bytes(cli_store *st)
{
    if (st->cache_bytes >= 0)
        return st->cache_bytes; /* summed once, then kept by every write */
    /* SUM(size), with the index of the rows built on the way. */
    sqlite3_stmt *s = prep(st, "SELECT id,size FROM cache");
    int64_t n = 0;
    int rc = SQLITE_ERROR, indexed = 1;
    while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        int64_t size = sqlite3_column_int64(s, 1);
        n += size;
        /* An id the index cannot tell apart or hold: no index, the sum only. */
        if (indexed && (!id || cli_cacheidx_find(&st->cidx, id) ||
                        cli_cacheidx_set(&st->cidx, id, size, 0, 0) != 0))
            indexed = 0;
    }
    done(st, s);
    if (rc == SQLITE_DONE && indexed)
        st->cache_bytes = n;
    else
        cli_cacheidx_clear(&st->cidx);
    return n;
}

/* C-1: the entries updated at or before ?1, oldest first. */
#define EXPIRED_SQL                                                                                \
    "SELECT id,size,updated_at FROM cache WHERE updated_at <= ?1 ORDER BY updated_at, id"

/* Collect ids (and their sizes) in the order of an ORDER BY query. */
typedef struct idrow {
    char id[72];
    int64_t size, t;
} idrow;

/* An id as idrow keeps it (cut to fit, as the snprintf it replaces did). */
static void copy_id(char *dst, size_t dlen, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n > dlen - 1)
        n = dlen - 1;
    memcpy(dst, id ? id : "", n);
    dst[n] = '\0';
}

/* Appends a row of s (id, size, time) to *rows; -1 when out of memory. */
static int append_row(sqlite3_stmt *s, idrow **rows, int *n, int *cap)
{
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 64;
        idrow *nr = realloc(*rows, (size_t)ncap * sizeof **rows);
        if (!nr)
            return -1;
        *rows = nr;
        *cap = ncap;
    }
    copy_id((*rows)[*n].id, sizeof(*rows)[*n].id, (const char *)sqlite3_column_text(s, 0));
    (*rows)[*n].size = sqlite3_column_int64(s, 1);
    (*rows)[*n].t = sqlite3_column_int64(s, 2);
    ++*n;
    return 0;
}

/* The rows of sql (id, size, time), in its order. */
static int load_rows(cli_store *st, const char *sql, idrow **rows)
{
    *rows = NULL;
    sqlite3_stmt *s = prep(st, sql);
    int n = 0, cap = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW)
        if (append_row(s, rows, &n, &cap) != 0)
            break;
    done(st, s);
    return n;
}

/*
 * C-1: the entries out of the window (updated_at <= bound), oldest first,
 * into *rows.  With next non-NULL the scan goes on past them to the first
 * unpinned entry still in the window: *next = its updated_at + window_ms
 * (INT64_MAX when none), what cli_store_cache_next_expiry() would find
 * once the expired unpinned ones are gone; *next = -1 when the scan
 * stopped early (out of memory), to be asked again.
 */
static int load_expired(cli_store *st, int64_t bound, int64_t window_ms, cli_pin_fn pinned,
                        void *ud, idrow **rows, int64_t *next)
{
    *rows = NULL;
    if (next)
        *next = INT64_MAX;
    sqlite3_stmt *s = prep(st, EXPIRED_SQL);
    if (s)
        sqlite3_bind_int64(s, 1, next ? INT64_MAX : bound);
    int n = 0, cap = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(s, 2);
        if (t > bound) {
            if (!next)
                break;
            char id[sizeof(((idrow *)0)->id)];
            copy_id(id, sizeof id, (const char *)sqlite3_column_text(s, 0));
            if (pinned && pinned(ud, id))
                continue;
            *next = t + window_ms;
            break;
        }
        if (append_row(s, rows, &n, &cap) != 0) {
            if (next)
                *next = -1;
            break;
        }
    }
    done(st, s);
    return n;
}

/*
 * C-1 then C-2.  Window: entries with updated_at <= now - window go
 * (pinned kept).  Cap: while the stored bytes exceed cap, the least
 * recently used unpinned entry goes (ties by id, for determinism).
 * With next non-NULL, *next = cli_store_cache_next_expiry() afterwards,
 * mostly from the same scan of the oldest entries (this runs after every
 * cache write: one query fewer each time).
 */
int cli_store_cache_upkeep(cli_store *st, int64_t now_ms_, int64_t window_ms, int64_t cap_bytes,
                           cli_pin_fn pinned, void *ud, int64_t *next)
{
    int removed = 0;
    int64_t next_at = INT64_MAX;
    int rescan = 0; /* a removal failed or C-2 evicted: next_at may be wrong */
    idrow *rows = NULL;
    int n = 0;
    /* Only the rows out of the window are read (this runs after every cache
     * write; reading them all made a large cache quadratic), and with next
     * the few up to the first unpinned one still in it. */
    if (window_ms > 0) {
        n = load_expired(st, now_ms_ - window_ms, window_ms, pinned, ud, &rows,
                         next ? &next_at : NULL);
        rescan = next_at < 0;
    }
    for (int i = 0; i < n; i++) {
        if (window_ms > 0 && rows[i].t <= now_ms_ - window_ms &&
            !(pinned && pinned(ud, rows[i].id))) {
            if (cli_store_cache_remove(st, rows[i].id) != 0)
                rescan = 1;
            removed++;
        }
    }
    free(rows);
    if (cap_bytes > 0) {
        int64_t total = cli_store_cache_bytes(st);
        if (total > cap_bytes) {
            n = load_rows(st, "SELECT id,size,used_at FROM cache ORDER BY used_at, id", &rows);
            for (int i = 0; i < n && total > cap_bytes; i++) {
                if (pinned && pinned(ud, rows[i].id))
                    continue;
                cli_store_cache_remove(st, rows[i].id);
                total -= rows[i].size;
                removed++;
                rescan = 1;
            }
            free(rows);
        }
    }
    if (next)
        *next = rescan ? cli_store_cache_next_expiry(st, window_ms, pinned, ud)
                : window_ms > 0 ? next_at
                                : INT64_MAX;
    return removed;
}

int cli_store_cache_enforce(cli_store *st, int64_t now_ms_, int64_t window_ms, int64_t cap_bytes,
                            cli_pin_fn pinned, void *ud)
{
    return cli_store_cache_upkeep(st, now_ms_, window_ms, cap_bytes, pinned, ud, NULL);
}

int64_t cli_store_cache_next_expiry(cli_store *st, int64_t window_ms, cli_pin_fn pinned, void *ud)
{
    if (window_ms <= 0)
        return INT64_MAX;
    /* The oldest row not pinned: rows are read one by one up to it, not all
     * (this runs after every cache write). */
    sqlite3_stmt *s = prep(st, EXPIRED_SQL);
    int64_t r = INT64_MAX;
    if (s)
        sqlite3_bind_int64(s, 1, INT64_MAX);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        char id[sizeof(((idrow *)0)->id)];
        copy_id(id, sizeof id, (const char *)sqlite3_column_text(s, 0));
        if (pinned && pinned(ud, id))
            continue;
        r = sqlite3_column_int64(s, 2) + window_ms;
        break;
    }
    done(st, s);
    return r;
}

json_t *cli_store_cache_info(cli_store *st)
{
    json_t *ids = json_array();
    idrow *rows = NULL;
    int n = load_rows(st, "SELECT id,size,used_at FROM cache ORDER BY id", &rows);
    int64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        json_array_append_new(ids, json_string(rows[i].id));
        bytes += rows[i].size;
    }
    free(rows);
    return json_pack("{s:i, s:I, s:o}", "entries", n, "bytes", (json_int_t)bytes, "ids", ids);
}

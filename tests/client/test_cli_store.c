/*
 * test_cli_store.c - the device store (Q-1, C-1..C-4) alone and under the
 * core: window, LRU cap, pinning, wrong key with queued items, tampering,
 * restart, no plain task text in the file.
 */
#define _GNU_SOURCE
#include "cli_fx.h"
#include <sqlite3.h>
#include <unistd.h>

static void tmp_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/test_cli_store_%d_%s.db", (int)getpid(), tag);
    char side[300];
    unlink(buf);
    snprintf(side, sizeof side, "%s-wal", buf);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", buf);
    unlink(side);
}

static void rm_path(const char *p)
{
    char side[300];
    unlink(p);
    snprintf(side, sizeof side, "%s-wal", p);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", p);
    unlink(side);
}

/* C-1: entries not updated within the window are purged (pinned kept). */
static void test_window(void **s)
{
    /* checks: C-1.1 C-1.4 */
    (void)s;
    hp_policy p;
    hp_policy_defaults(&p);
    fx *f = fx_new_at(NULL, &p, 1);
    cli_start(f->c);
    fx_drain(f);
    fx_ws_ready(f, 0);
    fx_event(f, "old", "Old", 1);
    fx_event(f, "pin", "Pinned", 2);
    fx_advance(f, 3LL * 24 * 3600 * 1000);
    json_t *nt = fx_task_json("new", "New", 3); /* the stream is long gone: store directly */
    cli_store_cache_put(f->st, "new", nt);
    json_decref(nt);
    /* pin: a queued change that cannot leave (offline) */
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_edit(f, "pin", "title", "Mine");
    fx_advance(f, 4LL * 24 * 3600 * 1000); /* old: exactly 7 d */
    json_t *st = cli_status(f->c);
    json_t *ids = json_object_get(json_object_get(st, "cache"), "ids");
    assert_int_equal(json_array_size(ids), 2);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "new");
    assert_string_equal(json_string_value(json_array_get(ids, 1)), "pin");
    json_decref(st);
    fx_advance(f, 3LL * 24 * 3600 * 1000);
    st = cli_status(f->c);
    ids = json_object_get(json_object_get(st, "cache"), "ids");
    assert_int_equal(json_array_size(ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "pin");
    json_decref(st);
    fx_free(f);
}

/* C-2: LRU eviction over the cap, counted on stored bytes; pinned kept. */
static void test_lru_cap(void **s)
{
    /* checks: C-2.3 C-2.4 */
    (void)s;
    fx *f = fx_new_at(NULL, NULL, 1);
    int64_t one = 0;
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "e%d", i);
        json_t *t = fx_task_json(id, "Some title of a task", 1);
        cli_store_cache_put(f->st, id, t);
        json_decref(t);
        if (i == 0)
            one = cli_store_cache_bytes(f->st);
        f->t += 10;
    }
    assert_true(one > 28); /* sealed: nonce + tag on top of the JSON */
    int64_t total = cli_store_cache_bytes(f->st);
    json_t *g = cli_store_cache_get(f->st, "e0"); /* e0 becomes recent */
    json_decref(g);
    f->t += 10;
    /* cap = 3 entries' worth; pin e1 */
    int removed = cli_store_cache_enforce(f->st, f->t, 0, total - 2 * one, NULL, NULL);
    assert_int_equal(removed, 2);
    json_t *info = cli_store_cache_info(f->st);
    json_t *ids = json_object_get(info, "ids");
    assert_int_equal(json_array_size(ids), 3);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "e0");
    assert_string_equal(json_string_value(json_array_get(ids, 1)), "e3");
    json_decref(info);
    fx_free(f);
}

static int pin_e1(void *ud, const char *id)
{
    (void)ud;
    return strcmp(id, "e1") == 0;
}

static void test_lru_pinned(void **s)
{
    /* checks: C-2.5 */
    (void)s;
    fx *f = fx_new_at(NULL, NULL, 1);
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "e%d", i);
        json_t *t = fx_task_json(id, "T", 1);
        cli_store_cache_put(f->st, id, t);
        json_decref(t);
        f->t += 10;
    }
    cli_store_cache_enforce(f->st, f->t, 0, 1, pin_e1, NULL);
    json_t *info = cli_store_cache_info(f->st);
    assert_int_equal(json_integer_value(json_object_get(info, "entries")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(info, "ids"), 0)), "e1");
    json_decref(info);
    fx_free(f);
}

/* C-3: the wrong key: KEY_MISMATCH + ERROR, cache cleared, applied
 * revision 0, queued items quarantined; the right key brings them back. */
static void test_wrong_key_quarantine(void **s)
{
    /* checks: C-3.2 C-3.4 */
    (void)s;
    char path[256];
    tmp_path(path, sizeof path, "key");
    fx *f = fx_new_at(path, NULL, 1);
    cli_start(f->c);
    fx_drain(f);
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "Cached", 4);
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_edit(f, "t2", "title", "Queued");
    fx_free(f);

    f = fx_new_at(path, NULL, 2); /* wrong key */
    cli_start(f->c);
    fx_drain(f);
    assert_int_equal(fx_count_notify(f, "KEY_MISMATCH"), 1);
    assert_int_equal(json_integer_value(json_object_get(fx_last_notify(f, "KEY_MISMATCH"), "quarantined")), 1);
    assert_true(fx_count_log(f, HP_LOG_ERROR, "key_mismatch") >= 1);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 0);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "cache"), "entries")), 0);
    assert_int_equal(json_integer_value(json_object_get(st, "quarantined")), 1);
    json_decref(st);
    /* the HELLO asks for everything */
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    assert_non_null(strstr(fx_last_sent(f), "\"revision\":0"));
    fx_free(f);

    f = fx_new_at(path, NULL, 1); /* the right key again */
    cli_start(f->c);
    fx_drain(f);
    assert_int_equal(fx_count_notify(f, "KEY_MISMATCH"), 1); /* file was re-keyed */
    assert_int_equal(json_integer_value(json_object_get(fx_last_notify(f, "KEY_MISMATCH"), "restored")), 1);
    st = cli_status(f->c);
    json_t *q = json_object_get(st, "queue");
    assert_int_equal(json_array_size(q), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(q, 0), "snapshot"), "title")),
                        "Queued");
    json_decref(st);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    fx_free(f);
    rm_path(path);
}

static void flip_byte(const char *path, const char *sql_select, const char *sql_update)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql_select, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_bytes(st, 0);
    unsigned char *b = malloc((size_t)n);
    memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    b[n / 2] ^= 0x01;
    assert_int_equal(sqlite3_prepare_v2(db, sql_update, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, b, n, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(b);
}

/* C-3: a tampered value fails its tag: dropped + WARNING, never a crash. */
static void test_tamper(void **s)
{
    /* checks: C-3.5 C-3.6 */
    (void)s;
    char path[256];
    tmp_path(path, sizeof path, "tamper");
    fx *f = fx_new_at(path, NULL, 1);
    json_t *t = fx_task_json("t1", "Cached", 3);
    cli_store_cache_put(f->st, "t1", t);
    json_decref(t);
    t = fx_task_json("t2", "Other", 3);
    cli_store_cache_put(f->st, "t2", t);
    json_decref(t);
    cli_set_online(f->c, 0);
    cli_start(f->c);
    fx_drain(f);
    fx_edit(f, "t3", "title", "Q");
    fx_free(f);
    flip_byte(path, "SELECT value FROM cache WHERE id='t1'", "UPDATE cache SET value=? WHERE id='t1'");
    flip_byte(path, "SELECT snapshot FROM queue", "UPDATE queue SET snapshot=?");
    /* a value moved to another entity's row fails too (entity id as AAD) */
    {
        sqlite3 *db;
        sqlite3_open(path, &db);
        sqlite3_exec(db, "UPDATE cache SET value=(SELECT value FROM cache WHERE id='t1') WHERE id='t2'",
                     NULL, NULL, NULL);
        sqlite3_close(db);
    }
    f = fx_new_at(path, NULL, 1);
    assert_true(fx_count_log(f, HP_LOG_WARNING, "tampered table=queue") == 1);
    assert_null(cli_cached(f->c, "t1"));
    assert_null(cli_cached(f->c, "t2"));
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "tampered table=cache"), 2);
    json_t *info = cli_store_cache_info(f->st);
    assert_int_equal(json_integer_value(json_object_get(info, "entries")), 0);
    json_decref(info);
    assert_int_equal(cli_store_queue_count(f->st), 0);
    assert_int_equal(cli_store_quarantine_count(f->st), 1); /* kept aside, not deleted */
    fx_free(f);
    rm_path(path);
}

/* a restart (free the core, reopen the store) keeps the queue and
 * sends with the same key. */
static void test_restart_keeps_queue(void **s)
{
    /* checks */
    (void)s;
    char path[256];
    tmp_path(path, sizeof path, "restart");
    fx *f = fx_new_at(path, NULL, 1);
    cli_start(f->c);
    fx_drain(f);
    fx_edit(f, "t1", "title", "A");
    fx_edit(f, "t2", "title", "B");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    fx_free(f); /* crash while in flight */
    f = fx_new_at(path, NULL, 1);
    cli_start(f->c);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_string_equal(r->path, "/api/v0.2/tasks/t1");
    assert_string_equal(r->idem_key, key);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 2);
    json_decref(st);
    fx_free(f);
    rm_path(path);
}

static int file_has(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, fp);
    fclose(fp);
    int found = memmem(b, got, needle, strlen(needle)) != NULL;
    free(b);
    return found;
}

/* C-3: no task text in plain text anywhere in the file (or its WAL). */
static void test_no_plaintext(void **s)
{
    /* checks: C-3.1 */
    (void)s;
    char path[256], wal[300];
    tmp_path(path, sizeof path, "plain");
    snprintf(wal, sizeof wal, "%s-wal", path);
    fx *f = fx_new_at(path, NULL, 1);
    cli_start(f->c);
    fx_drain(f);
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "CachedSecretTitle", 1);
    json_t *o = json_pack("{s:s, s:s, s:s}", "title", "QueuedSecretTitle", "notes",
                          "SecretNotesText", "due_at", "2026-11-25T09:00:00+03:00");
    char err[100];
    assert_int_equal(cli_edit(f->c, "t2", o, err, sizeof err), 0);
    json_decref(o);
    fx_drain(f);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    fx_respond(f, r, 400, -1, "{\"error\":\"bad_request\",\"message\":\"x\"}"); /* dead letter */
    fx_edit(f, "t3", "title", "AnotherSecret");
    /* while open (WAL) and after close */
    for (int pass = 0; pass < 2; pass++) {
        const char *words[] = {"CachedSecretTitle", "QueuedSecretTitle", "SecretNotesText",
                               "AnotherSecret", "2026-11-25T09:00:00+03:00"};
        for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
            assert_false(file_has(path, words[i]));
            assert_false(file_has(wal, words[i]));
        }
        if (pass == 0) {
            /* C-4: the time comes back verbatim */
            json_t *st = cli_status(f->c);
            json_t *dl = json_array_get(json_object_get(st, "dead_letter"), 0);
            assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(dl, "snapshot"), "due_at")),
                                "2026-11-25T09:00:00+03:00");
            json_decref(st);
            fx_free(f);
        }
    }
    rm_path(path);
}

static int64_t q_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* Issue 11: --db pointed at another program's SQLite file gained the
 * client's tables (and WAL).  Now it is refused and left unchanged; a
 * store of ours (also one made before the application_id) still opens. */
static void test_foreign_db_refused(void **s)
{
    (void)s;
    char p[256];
    snprintf(p, sizeof p, "/tmp/test_cli_foreign_%d.db", (int)getpid());
    unlink(p);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE photos(x); INSERT INTO photos VALUES(1);",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    uint8_t key[32] = {1};
    char err[300] = "";
    assert_null(cli_store_open(p, key, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "not an hp-fake-client store"));
    assert_int_equal(q_int(p, "SELECT COUNT(*) FROM sqlite_master;"), 1);
    assert_int_equal(q_int(p, "SELECT COUNT(*) FROM photos;"), 1);
    assert_int_equal(q_int(p, "PRAGMA application_id;"), 0);
    unlink(p);
    /* another application's id */
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 77;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(cli_store_open(p, key, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "another application"));
    unlink(p);
    /* ours: a new file gets the id and opens again */
    cli_store *st = cli_store_open(p, key, NULL, NULL, err, sizeof err);
    assert_non_null(st);
    cli_store_close(st);
    assert_int_equal(q_int(p, "PRAGMA application_id;"), 0x4850434C);
    /* a store from before the id (our tables, id 0) still opens */
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 0;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    st = cli_store_open(p, key, NULL, NULL, err, sizeof err);
    assert_non_null(st);
    cli_store_close(st);
    unlink(p);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", p);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", p);
    unlink(side);
}

/* Key files: 32 raw bytes or 64 hex characters. */
static void test_key_load(void **s)
{
    (void)s;
    char p[256];
    snprintf(p, sizeof p, "/tmp/test_cli_key_%d", (int)getpid());
    uint8_t k[32], want[32];
    char err[200];
    FILE *fp = fopen(p, "wb");
    for (int i = 0; i < 32; i++)
        fputc(i, fp), want[i] = (uint8_t)i;
    fclose(fp);
    assert_int_equal(cli_key_load(p, k, err, sizeof err), 0);
    assert_memory_equal(k, want, 32);
    fp = fopen(p, "wb");
    fprintf(fp, "  000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n");
    fclose(fp);
    assert_int_equal(cli_key_load(p, k, err, sizeof err), 0);
    assert_memory_equal(k, want, 32);
    fp = fopen(p, "wb");
    fprintf(fp, "short");
    fclose(fp);
    assert_int_equal(cli_key_load(p, k, err, sizeof err), -1);
    unlink(p);
    assert_int_equal(cli_key_load(p, k, err, sizeof err), -1);
}

/* cli_status_part(): each key alone holds what cli_status() has there, and
 * all of them make cli_status() (same keys, same order), in states where
 * every member has something to show. */
static void check_parts(fx *f)
{
    json_t *all = cli_status(f->c);
    json_t *whole = cli_status_part(f->c, CLI_STATUS_ALL);
    char *a = json_dumps(all, JSON_COMPACT), *b = json_dumps(whole, JSON_COMPACT);
    assert_string_equal(a, b); /* key order too */
    free(a);
    free(b);
    unsigned seen = 0;
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v)
    {
        unsigned bit = cli_status_key(k);
        assert_true(bit != 0 && (seen & bit) == 0);
        seen |= bit;
        json_t *p = cli_status_part(f->c, bit);
        assert_int_equal(json_object_size(p), 1);
        assert_true(json_equal(json_object_get(p, k), v));
        json_decref(p);
    }
    assert_int_equal(seen, CLI_STATUS_ALL);
    json_t *light = cli_status_light(f->c);
    json_object_del(all, "dead_letter");
    json_object_del(all, "cache");
    json_object_del(all, "quarantined");
    assert_true(json_equal(light, all));
    json_decref(light);
    json_decref(all);
    json_decref(whole);
}

static void test_status_parts(void **s)
{
    (void)s;
    assert_int_equal(cli_status_key("bogus"), 0);
    assert_int_equal(cli_status_key(NULL), 0);
    assert_int_equal(cli_status_key("queue"), CLI_STATUS_QUEUE);
    fx *f = fx_new();
    check_parts(f); /* not started */
    cli_start(f->c);
    fx_drain(f);
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "Cached", 1);
    char err[200];
    assert_int_equal(cli_lock(f->c, "t1", err, sizeof err), 0);
    fx_drain(f);
    fx_edit(f, "t2", "title", "B");
    fx_edit(f, "t1", "title", "Mine");
    check_parts(f); /* queue with one in flight, cache, locks */
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    fx_respond(f, r, 503, -1, "{\"error\":\"unavailable\"}");
    check_parts(f); /* retry_attempt, next_retry_at */
    fx_advance(f, 5000);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    fx_respond(f, r, 400, -1, "{\"error\":\"bad_request\",\"message\":\"x\"}");
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    char *t = fx_task("t1", "Theirs", "N2", 4, 0);
    char body[512];
    snprintf(body, sizeof body, "{\"error\":\"conflict\",\"current\":%s}", t);
    free(t);
    fx_respond(f, r, 409, -1, body);
    assert_int_equal(fx_count_notify(f, "CONFLICT"), 1);
    cli_ws_closed(f->c, fx_conn(f), 1006);
    fx_drain(f);
    check_parts(f); /* dead letter, conflict, reconnect scheduled */
    json_t *st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "dead_letter")), 1);
    assert_int_equal(json_array_size(json_object_get(st, "conflicts")), 1);
    assert_true(json_is_integer(json_object_get(st, "next_reconnect_at")));
    json_decref(st);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_lru_cap),
        cmocka_unit_test(test_lru_pinned),
        cmocka_unit_test(test_wrong_key_quarantine),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_restart_keeps_queue),
        cmocka_unit_test(test_no_plaintext),
        cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_foreign_db_refused),
        cmocka_unit_test(test_status_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_srv_group.c - group commit (fake_server/srv_group.c): writes handed
 * over together share one transaction; nothing they push (responses,
 * events, 409s that read the group) leaves before its COMMIT; a lost
 * transaction answers every held request 503 and keeps nothing.
 */
#include "srv_test_util.h"
#include "srv_internal.h" /* srv_store_rollback: a transaction SQLite gave up */
#include <sqlite3.h>

/* Hands a PUT to the core without expecting an answer yet; returns its id. */
static uint64_t put_async(fx *f, const char *user, const char *hh, const char *id, int64_t base,
                          const char *title)
{
    char path[128], body[256], auth[2048];
    snprintf(path, sizeof path, "/api/v0.2/tasks/%s", id);
    snprintf(body, sizeof body, "{\"base_revision\": %lld, \"task\": {\"title\": \"%s\"}}",
             (long long)base, title);
    char *tok = fx_token_at(f, user, hh, 3600);
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    srv_http_req q;
    memset(&q, 0, sizeof q);
    q.id = f->next_req++;
    q.method = "PUT";
    q.path = path;
    q.authorization = auth;
    q.body = body;
    q.body_len = strlen(body);
    q.content_length = (int64_t)q.body_len;
    srv_http(f->c, &q);
    fx_pump(f);
    return q.id;
}

static int status_of(fx *f, uint64_t req)
{
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE && f->items[i].id == req)
            return f->items[i].status;
    return 0;
}

static int count_kind(fx *f, hp_out_kind k)
{
    int n = 0;
    for (int i = 0; i < f->nitems; i++)
        n += f->items[i].kind == k;
    return n;
}

/* The committed revision of hh as another process sees it. */
static int64_t committed_rev(fx *f, const char *hh)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->dbpath, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT revision FROM households WHERE hh = ?1;", -1,
                                        &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, hh, -1, SQLITE_STATIC);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void test_group_holds_until_commit(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    srv_set_group_commit(f->c, 1);
    fx_ready(f, 100, "bob", "home");
    fx_reset(f);
    uint64_t a = put_async(f, "alice", "home", "t1", 0, "one");
    uint64_t b = put_async(f, "carol", "home", "t2", 0, "two");
    uint64_t c = put_async(f, "dave", "home", "t1", 0, "again"); /* 409: reads the group */
    /* Nothing left the core: no answer, no event, not on disk. */
    assert_int_equal(f->nitems, 0);
    assert_int_equal(committed_rev(f, "home"), 0);
    assert_int_equal(srv_flush(f->c), 2);
    fx_pump(f);
    assert_int_equal(committed_rev(f, "home"), 2);
    assert_int_equal(status_of(f, a), 200);
    assert_int_equal(status_of(f, b), 200);
    assert_int_equal(status_of(f, c), 409);
    assert_int_equal(fx_count_type(f, 100, "TASK_UPDATED"), 2);
    /* Outputs keep push order: a's answer before its event before b's. */
    int ia = -1, ie = -1, ib = -1;
    for (int i = 0; i < f->nitems; i++) {
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE && f->items[i].id == a)
            ia = i;
        if (f->items[i].kind == HP_OUT_WS_SEND && ie < 0)
            ie = i;
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE && f->items[i].id == b)
            ib = i;
    }
    assert_true(ia >= 0 && ia < ie && ie < ib);
    uint64_t commits = 0, writes = 0, gmax = 0;
    srv_group_stats(f->c, &commits, &writes, &gmax);
    assert_int_equal(commits, 1);
    assert_int_equal(writes, 2);
    assert_int_equal(gmax, 2);
    /* No group open: a flush is a no-op. */
    assert_int_equal(srv_flush(f->c), 0);
    fx_free(f);
}

static void test_group_survives_reopen(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    srv_set_group_commit(f->c, 1);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        put_async(f, "alice", "home", id, 0, "x");
    }
    assert_int_equal(srv_flush(f->c), 10);
    fx_pump(f);
    assert_int_equal(count_kind(f, HP_OUT_HTTP_RESPONSE), 10);
    fx_reopen(f);
    fx_resp r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", "since=0", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "revision")), 10);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 10);
    fx_resp_free(&r);
    fx_free(f);
}

/* A tick (timers, reminders that write) never runs inside a group: it
 * commits the group first. */
static void test_tick_flushes(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    srv_set_group_commit(f->c, 1);
    uint64_t a = put_async(f, "alice", "home", "t1", 0, "one");
    assert_int_equal(status_of(f, a), 0);
    srv_tick(f->c);
    fx_pump(f);
    assert_int_equal(status_of(f, a), 200);
    assert_int_equal(committed_rev(f, "home"), 1);
    fx_free(f);
}

/* SQLite gave the transaction up (an I/O error rolls back): nothing of the
 * group is kept, every held request is answered 503 with Retry-After, and
 * a listener that would have heard of a lost write is closed 1011. */
static void test_lost_group_answers_503(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    srv_set_group_commit(f->c, 1);
    fx_ready(f, 100, "bob", "home");
    fx_reset(f);
    uint64_t a = put_async(f, "alice", "home", "t1", 0, "one");
    uint64_t b = put_async(f, "carol", "home", "t2", 0, "two");
    srv_store_rollback(f->st);
    assert_int_equal(srv_flush(f->c), -1);
    fx_pump(f);
    assert_int_equal(status_of(f, a), 503);
    assert_int_equal(status_of(f, b), 503);
    for (int i = 0; i < f->nitems; i++)
        if (f->items[i].kind == HP_OUT_HTTP_RESPONSE)
            assert_int_equal(f->items[i].retry_after_s, 1);
    assert_int_equal(fx_count_type(f, 100, "TASK_UPDATED"), 0);
    assert_int_equal(fx_close_code(f, 100), 1011);
    assert_int_equal(fx_log_count(f, HP_LOG_ERROR, "store_error", "op=group_commit"), 1);
    assert_int_equal(committed_rev(f, "home"), 0);
    /* The server goes on: the retry succeeds. */
    fx_reset(f);
    a = put_async(f, "alice", "home", "t1", 0, "one");
    assert_int_equal(srv_flush(f->c), 1);
    fx_pump(f);
    assert_int_equal(status_of(f, a), 200);
    assert_int_equal(committed_rev(f, "home"), 1);
    fx_free(f);
}

/* Off (the default): every write is answered at once, committed alone. */
static void test_off_commits_each_write(void **state)
{
    (void)state;
    fx *f = fx_new_store(1);
    fx_start(f);
    uint64_t a = put_async(f, "alice", "home", "t1", 0, "one");
    assert_int_equal(status_of(f, a), 200);
    assert_int_equal(committed_rev(f, "home"), 1);
    assert_int_equal(srv_flush(f->c), 0);
    uint64_t commits = 0, writes = 0;
    srv_group_stats(f->c, &commits, &writes, NULL);
    assert_int_equal(commits, 1);
    assert_int_equal(writes, 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_holds_until_commit),
        cmocka_unit_test(test_group_survives_reopen),
        cmocka_unit_test(test_tick_flushes),
        cmocka_unit_test(test_lost_group_answers_503),
        cmocka_unit_test(test_off_commits_each_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

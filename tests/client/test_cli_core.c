/*
 * test_cli_core.c - the client core's rules, driven with a fake clock and
 * a scripted server (the test answers the core's requests itself).
 */
#include "cli_fx.h"

/* Started core with the stream ignored (never opened). */
static fx *started(void)
{
    fx *f = fx_new();
    cli_start(f->c);
    fx_drain(f);
    return f;
}

/* exact retry instants 1,3,9,27,120,120 s; SYNC_FAILED on the
 * 5th consecutive failure, exactly once. */
static void test_backoff_instants(void **s)
{
    /* checks:      */
    (void)s;
    fx *f = started();
    int64_t t0 = f->t;
    fx_edit(f, "t1", "title", "Milk");
    int64_t expect[] = {0, 1000, 4000, 13000, 40000, 160000, 280000, 400000};
    const char *key = NULL;
    char key0[64];
    for (int i = 0; i < 8; i++) {
        fx_advance_to(f, t0 + expect[i]);
        hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
        assert_non_null(r);
        assert_int_equal(f->out_t[fx_index(f, r)], t0 + expect[i]);
        if (!key) {
            key = r->idem_key;
            snprintf(key0, sizeof key0, "%s", key);
        }
        assert_string_equal(r->idem_key, key0); /* retries keep the id */
        assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
        if (i < 7)
            fx_fail(f, r);
        assert_int_equal(fx_count_notify(f, "SYNC_FAILED"), i >= 4 && i < 7 ? 1 : (i >= 7 ? 1 : 0));
        if (i == 4) {
            json_t *n = fx_last_notify(f, "SYNC_FAILED");
            assert_int_equal(json_integer_value(json_object_get(n, "attempts")), 5);
        }
        /* nothing earlier than the next instant */
        if (i < 7) {
            fx_advance_to(f, t0 + expect[i + 1] - 1);
            assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
        }
    }
    fx_free(f);
}

/* sync now tries at once and resets the schedule. */
static void test_sync_now_resets(void **s)
{
    /* checks:  */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "Milk");
    for (int i = 0; i < 5; i++) {
        if (i > 0)
            fx_advance_to(f, cli_next_deadline(f->c));
        hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
        assert_non_null(r);
        assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
        fx_fail(f, r);
    }
    assert_int_equal(fx_count_notify(f, "SYNC_FAILED"), 1);
    int64_t t = f->t;
    cli_sync_now(f->c);
    fx_drain(f);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_int_equal(f->out_t[fx_index(f, r)], t);
    fx_fail(f, r);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "retry_attempt")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "next_retry_at")), t + 1000);
    json_decref(st);
    fx_advance_to(f, t + 999);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_advance_to(f, t + 1000);
    assert_non_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_free(f);
}

/* FIFO, one in flight. */
static void test_fifo_one_at_a_time(void **s)
{
    /* checks:  */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    fx_edit(f, "t2", "title", "B");
    fx_edit(f, "t3", "title", "C");
    const char *order[] = {"/api/v0.2/tasks/t1", "/api/v0.2/tasks/t2", "/api/v0.2/tasks/t3"};
    for (int i = 0; i < 3; i++) {
        hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
        assert_non_null(r);
        assert_string_equal(r->path, order[i]);
        assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT")); /* head of line */
        char id[4] = {'t', (char)('1' + i), 0};
        char *task = fx_task(id, "x", "", i + 1, 0);
        fx_respond(f, r, 200, -1, task);
        free(task);
    }
    json_t *st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 0);
    /* REST answers never move the applied revision (WS-2). */
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 0);
    json_decref(st);
    assert_int_equal(fx_count_observe(f, "queue", "op", "acked"), 3);
    fx_free(f);
}

/* a full queue coalesces into a queued, not-in-flight item; refuses
 * anything else with QUEUE_FULL + WARNING; nothing is dropped; the
 * in-flight item counts. */
static void test_coalesce_and_overflow(void **s)
{
    /* checks:     */
    (void)s;
    hp_policy p;
    hp_policy_defaults(&p);
    p.queue_max = 3;
    fx *f = fx_new_at(NULL, &p, 7);
    cli_start(f->c);
    fx_drain(f);
    fx_edit(f, "t1", "title", "A"); /* in flight */
    fx_edit(f, "t2", "title", "B");
    fx_edit(f, "t3", "title", "C");
    hp_out *r1 = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r1);
    json_t *st = cli_status(f->c);
    const char *mid2 = json_string_value(
        json_object_get(json_array_get(json_object_get(st, "queue"), 1), "mutation_id"));
    char m2[64];
    snprintf(m2, sizeof m2, "%s", mid2);
    json_decref(st);
    /* coalesce t2 */
    assert_int_equal(fx_edit_rc(f, "t2", "B2"), 0);
    assert_int_equal(fx_count_observe(f, "queue", "op", "coalesced"), 1);
    /* t1 is only in flight: refused; t4 refused */
    assert_int_equal(fx_edit_rc(f, "t1", "A2"), -1);
    assert_int_equal(fx_edit_rc(f, "t4", "D"), -1);
    assert_int_equal(fx_count_notify(f, "QUEUE_FULL"), 2);
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "queue_full"), 2);
    st = cli_status(f->c);
    json_t *q = json_object_get(st, "queue");
    assert_int_equal(json_array_size(q), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(q, 0), "entity_id")), "t1");
    json_t *i2 = json_array_get(q, 1);
    assert_string_equal(json_string_value(json_object_get(i2, "entity_id")), "t2");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(i2, "snapshot"), "title")), "B2");
    assert_string_equal(json_string_value(json_object_get(i2, "mutation_id")), m2); /* never sent */
    assert_string_equal(json_string_value(json_object_get(json_array_get(q, 2), "entity_id")), "t3");
    json_decref(st);
    /* the head fails: no longer in flight, already sent -> coalescing gives a new id */
    const char *k1 = r1->idem_key;
    fx_fail(f, r1);
    assert_int_equal(fx_edit_rc(f, "t1", "A3"), 0);
    st = cli_status(f->c);
    q = json_object_get(st, "queue");
    assert_string_not_equal(
        json_string_value(json_object_get(json_array_get(q, 0), "mutation_id")), k1);
    json_decref(st);
    fx_advance(f, 1000);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    json_t *b = fx_body(r);
    assert_string_equal(fx_title_in(b), "A3");
    json_decref(b);
    fx_free(f);
}

/* other 4xx -> dead-letter + REJECTED + WARNING, queue goes on. */
static void test_dead_letter(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    fx_edit(f, "t2", "title", "B");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    fx_respond(f, r, 400, -1, "{\"error\":\"bad_request\",\"message\":\"x\"}");
    assert_int_equal(fx_count_notify(f, "REJECTED"), 1);
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "rejected entity=task/t1"), 1);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_string_equal(r->path, "/api/v0.2/tasks/t2");
    json_t *st = cli_status(f->c);
    json_t *dl = json_object_get(st, "dead_letter");
    assert_int_equal(json_array_size(dl), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dl, 0), "entity_id")), "t1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(dl, 0), "status")), 400);
    json_decref(st);
    fx_free(f);
}

/* a server that answers a reused key with the first request's task
 * (200 with task t1 to a PUT of t2) must not make the client cache t1's
 * content under t2's id.  Before: cached, and the item acked. */
static void test_2xx_for_another_task(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t2", "title", "B");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_string_equal(r->path, "/api/v0.2/tasks/t2");
    char *t1 = fx_task("t1", "A", NULL, 1, 0);
    fx_respond(f, r, 200, -1, t1);
    free(t1);
    json_t *cached = cli_cached(f->c, "t2");
    const char *title = json_string_value(json_object_get(cached, "title"));
    /* the optimistic local version may be shown, never task A's content */
    assert_true(!title || strcmp(title, "A") != 0);
    assert_true(!cached || json_integer_value(json_object_get(cached, "revision")) != 1);
    json_decref(cached);
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "wrong_task entity=task/t2"), 1);
    assert_int_equal(fx_count_notify(f, "REJECTED"), 1);
    json_t *st = cli_status(f->c);
    json_t *dl = json_object_get(st, "dead_letter");
    assert_int_equal(json_array_size(dl), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dl, 0), "entity_id")), "t2");
    json_decref(st);
    fx_free(f);
}

/* 401 pauses (not a failure) until a new token; same key. */
static void test_401_pause_resume(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    fx_respond(f, r, 401, -1, "{\"error\":\"unauthorized\",\"message\":\"expired\"}");
    assert_int_equal(fx_count_notify(f, "AUTH_REQUIRED"), 1);
    fx_advance(f, 600000);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    json_t *st = cli_status(f->c);
    assert_string_equal(json_string_value(json_object_get(st, "connection")), "auth_required");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(st, "queue"), 0), "attempts")),
                     0);
    json_decref(st);
    int64_t t = f->t;
    cli_set_token(f->c, TOK_ALICE2);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_int_equal(f->out_t[fx_index(f, r)], t);
    assert_string_equal(r->idem_key, key);
    assert_string_equal(r->auth, TOK_ALICE2);
    fx_free(f);
}

/* 429 waits max(Retry-After, schedule); 503 follows the schedule. */
static void test_429_retry_after(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    int64_t t = f->t;
    fx_respond(f, r, 429, 30, "{\"error\":\"error\",\"message\":\"slow\"}");
    fx_advance_to(f, t + 29999);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_advance_to(f, t + 30000);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    t = f->t;
    fx_respond(f, r, 503, -1, NULL); /* 2nd failure: 3 s */
    fx_advance_to(f, t + 2999);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_advance_to(f, t + 3000);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    t = f->t;
    fx_respond(f, r, 429, 1, NULL); /* Retry-After 1 < schedule 9 s */
    fx_advance_to(f, t + 8999);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_advance_to(f, t + 9000);
    assert_non_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_free(f);
}

/* no answer in request_timeout -> abort + a failure. */
static void test_timeout(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    uint64_t id = r->id;
    int64_t t = f->t;
    fx_advance_to(f, t + 9999);
    assert_int_equal(fx_pending(f, HP_OUT_HTTP_ABORT), 0);
    fx_advance_to(f, t + 10000);
    hp_out *a = fx_take(f, HP_OUT_HTTP_ABORT, NULL);
    assert_non_null(a);
    assert_int_equal(a->id, id);
    /* a late answer is ignored */
    fx_respond(f, r, 200, -1, "{}");
    json_t *st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "retry_attempt")), 1);
    json_decref(st);
    fx_advance_to(f, t + 11000);
    assert_non_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_free(f);
}

/* Going offline aborts without a failure; online resends with the same key. */
static void test_offline_abort(void **s)
{
    /* checks */
    (void)s;
    fx *f = started();
    fx_edit(f, "t1", "title", "A");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    cli_set_online(f->c, 0);
    fx_drain(f);
    assert_non_null(fx_take(f, HP_OUT_HTTP_ABORT, NULL));
    fx_advance(f, 100000);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    cli_set_online(f->c, 1);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_string_equal(r->idem_key, key);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "retry_attempt")), 0);
    json_decref(st);
    fx_free(f);
}

/* Connected fixture with t1 cached at revision 1 (title "T", notes "N"). */
static fx *with_cached_t1(void)
{
    fx *f = started();
    fx_ws_ready(f, 0);
    char *t = fx_task("t1", "T", "N", 1, 0);
    json_error_t je;
    json_t *p = json_loads(t, 0, &je);
    char *m = hp_msg_event("TASK_UPDATED", "t1", 1, p);
    fx_ws_msg(f, m);
    free(m);
    free(t);
    json_decref(p);
    return f;
}

static char *conflict_body(const char *title, const char *notes, int64_t rev, int deleted)
{
    char *t = fx_task("t1", title, notes, rev, deleted);
    size_t n = strlen(t) + 64;
    char *b = malloc(n);
    snprintf(b, n, "{\"error\":\"conflict\",\"current\":%s}", t);
    free(t);
    return b;
}

/* CF-2: only-local + only-remote merge cleanly; retry on the current
 * revision with the same key; CF-4 WARNING. */
static void test_merge_clean(void **s)
{
    /* checks: CF-2.1 CF-2.2 CF-2.4 */
    (void)s;
    fx *f = with_cached_t1();
    fx_edit(f, "t1", "title", "Mine");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    json_t *b = fx_body(r);
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 1);
    json_decref(b);
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    char *cb = conflict_body("T", "Theirs", 3, 0);
    fx_respond(f, r, 409, -1, cb);
    free(cb);
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "conflict entity=task/t1 base=1 current=3 user=alice"), 1);
    assert_int_equal(fx_count_notify(f, "CONFLICT"), 0);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_string_equal(r->idem_key, key);
    b = fx_body(r);
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 3);
    assert_string_equal(fx_title_in(b), "Mine");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "task"), "notes")), "Theirs");
    json_decref(b);
    fx_free(f);
}

/* CF-2: both sides made the same change: no conflict. */
static void test_merge_both_same(void **s)
{
    /* checks: CF-2.3 */
    (void)s;
    fx *f = with_cached_t1();
    fx_edit(f, "t1", "title", "Same");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char *cb = conflict_body("Same", "N", 2, 0);
    fx_respond(f, r, 409, -1, cb);
    free(cb);
    assert_int_equal(fx_count_notify(f, "CONFLICT"), 0);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    json_t *b = fx_body(r);
    assert_string_equal(fx_title_in(b), "Same");
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 2);
    json_decref(b);
    fx_free(f);
}

/* CF-3: both-different -> banner, queue waits; merge = theirs on the
 * conflicting field, ours elsewhere; overwrite = ours everywhere. */
static void both_different(int overwrite)
{
    fx *f = with_cached_t1();
    json_t *o = json_pack("{s:s, s:b}", "title", "Mine", "done", 1);
    char err[200];
    assert_int_equal(cli_edit(f->c, "t1", o, err, sizeof err), 0);
    json_decref(o);
    fx_drain(f);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    char *cb = conflict_body("Theirs", "N2", 4, 0);
    fx_respond(f, r, 409, -1, cb);
    free(cb);
    json_t *n = fx_last_notify(f, "CONFLICT");
    assert_non_null(n);
    assert_string_equal(json_string_value(json_object_get(n, "entity_id")), "t1");
    assert_int_equal(json_array_size(json_object_get(n, "fields")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(n, "fields"), 0)), "title");
    assert_false(json_is_true(json_object_get(n, "edit_vs_delete")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(n, "choices"), 1)), "overwrite");
    fx_advance(f, 300000);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT")); /* the queue waits */
    json_t *st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "conflicts")), 1);
    json_decref(st);
    assert_int_equal(cli_choose(f->c, "t2", "merge", err, sizeof err), -1);
    assert_int_equal(cli_choose(f->c, "t1", "bogus", err, sizeof err), -1);
    assert_int_equal(cli_choose(f->c, "t1", overwrite ? "overwrite" : "merge", err, sizeof err), 0);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    assert_string_equal(r->idem_key, key);
    json_t *b = fx_body(r);
    json_t *task = json_object_get(b, "task");
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 4);
    assert_string_equal(fx_title_in(b), overwrite ? "Mine" : "Theirs");
    assert_true(json_is_true(json_object_get(task, "done")));
    assert_string_equal(json_string_value(json_object_get(task, "notes")), overwrite ? "N" : "N2");
    json_decref(b);
    fx_free(f);
}

static void test_merge_both_different_merge(void **s)
{
    (void)s;
    both_different(0);
}

static void test_merge_both_different_overwrite(void **s)
{
    (void)s;
    both_different(1);
}

/* CF-3: our edit vs their delete. */
static void edit_vs_delete(int overwrite)
{
    fx *f = with_cached_t1();
    fx_edit(f, "t1", "title", "Mine");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char *cb = conflict_body("T", "N", 5, 1);
    fx_respond(f, r, 409, -1, cb);
    free(cb);
    json_t *n = fx_last_notify(f, "CONFLICT");
    assert_non_null(n);
    assert_true(json_is_true(json_object_get(n, "edit_vs_delete")));
    char err[200];
    assert_int_equal(cli_choose(f->c, "t1", overwrite ? "overwrite" : "merge", err, sizeof err), 0);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    json_t *st = cli_status(f->c);
    if (overwrite) {
        assert_non_null(r);
        json_t *b = fx_body(r);
        assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 5);
        assert_string_equal(fx_title_in(b), "Mine");
        json_decref(b);
        assert_int_equal(json_array_size(json_object_get(st, "queue")), 1);
    } else {
        assert_null(r); /* theirs (the delete) stands */
        assert_int_equal(json_array_size(json_object_get(st, "queue")), 0);
        json_t *c = cli_cached(f->c, "t1");
        assert_true(json_is_true(json_object_get(c, "deleted")));
        json_decref(c);
    }
    json_decref(st);
    fx_free(f);
}

static void test_edit_vs_delete_merge(void **s)
{
    (void)s;
    edit_vs_delete(0);
}

static void test_edit_vs_delete_overwrite(void **s)
{
    /* checks: CF-3.6 */
    (void)s;
    edit_vs_delete(1);
}

/* CF-3: our delete vs their edit. */
static void delete_vs_edit(int overwrite)
{
    fx *f = with_cached_t1();
    char err[200];
    assert_int_equal(cli_delete(f->c, "t1", err, sizeof err), 0);
    fx_drain(f);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "DELETE");
    assert_non_null(r);
    assert_string_equal(r->path, "/api/v0.2/tasks/t1?base_revision=1");
    char *cb = conflict_body("Edited", "N", 6, 0);
    fx_respond(f, r, 409, -1, cb);
    free(cb);
    json_t *n = fx_last_notify(f, "CONFLICT");
    assert_true(json_is_true(json_object_get(n, "edit_vs_delete")));
    assert_int_equal(cli_choose(f->c, "t1", overwrite ? "overwrite" : "merge", err, sizeof err), 0);
    fx_drain(f);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "DELETE");
    if (overwrite) {
        assert_non_null(r);
        assert_string_equal(r->path, "/api/v0.2/tasks/t1?base_revision=6");
    } else {
        assert_null(r);
        json_t *c = cli_cached(f->c, "t1");
        assert_string_equal(json_string_value(json_object_get(c, "title")), "Edited");
        json_decref(c);
    }
    fx_free(f);
}

static void test_delete_vs_edit_merge(void **s)
{
    /* checks: CF-3.7 */
    (void)s;
    delete_vs_edit(0);
}

static void test_delete_vs_edit_overwrite(void **s)
{
    /* checks: CF-3.8 */
    (void)s;
    delete_vs_edit(1);
}

/* chaining, rebase on ack and on dead-letter. */
static void test_chaining(void **s)
{
    /* checks:   */
    (void)s;
    fx *f = with_cached_t1();
    fx_edit(f, "t1", "title", "A");
    fx_edit(f, "t1", "notes", "B");
    json_t *st = cli_status(f->c);
    json_t *q = json_object_get(st, "queue");
    assert_int_equal(json_array_size(q), 2);
    json_decref(st);
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    char *res = fx_task("t1", "A", "N", 9, 0);
    fx_respond(f, r, 200, -1, res);
    free(res);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    json_t *b = fx_body(r);
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 9);
    assert_string_equal(fx_title_in(b), "A");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "task"), "notes")), "B");
    json_decref(b);
    assert_int_equal(fx_count_observe(f, "queue", "op", "rebased"), 1);
    fx_respond(f, r, 200, -1, NULL);
    /* dead-letter: the next is rebased on the cached server version (rev 1) */
    fx_free(f);
    f = with_cached_t1();
    fx_edit(f, "t1", "title", "A");
    fx_edit(f, "t1", "notes", "B");
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    fx_respond(f, r, 422, -1, "{\"error\":\"bad_request\",\"message\":\"no\"}");
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    b = fx_body(r);
    assert_int_equal(json_integer_value(json_object_get(b, "base_revision")), 1);
    /* only its own change (notes) is replayed onto the cached version:
     * the rejected title does not go through the later item. */
    assert_string_equal(fx_title_in(b), "T");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "task"), "notes")), "B");
    json_decref(b);
    fx_free(f);
}

static int count_sent(fx *f, const char *needle)
{
    int n = 0;
    for (int i = 0; i < f->nout; i++)
        if (f->out[i].kind == HP_OUT_WS_SEND && strstr(f->out[i].body, needle))
            n++;
    return n;
}

/* Issue 11: a hostile or buggy server's READY with heartbeat_interval_ms
 * near INT64_MAX.  Before: taken as is, now + interval overflowed (UBSan
 * abort; the release build stopped heartbeating).  Now: refused with its
 * range (WARNING bad_message), the policy's interval goes on. */
static void test_ready_huge_heartbeat_refused(void **s)
{
    (void)s;
    fx *f = started();
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    fx_ws_msg(f, "{\"type\":\"READY\",\"revision\":0,"
                 "\"heartbeat_interval_ms\":9223372036854775807}");
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "from 1 to 31622400000"), 1);
    int before = count_sent(f, "HEARTBEAT");
    fx_advance(f, f->pol.heartbeat_ms);
    assert_int_equal(count_sent(f, "HEARTBEAT"), before + 1);
    /* a READY in range is still taken */
    fx_ws_msg(f, "{\"type\":\"READY\",\"revision\":0,\"heartbeat_interval_ms\":31622400000}");
    json_t *st = cli_status(f->c);
    assert_string_equal(json_string_value(json_object_get(st, "connection")), "ready");
    json_decref(st);
    fx_free(f);
}

/* WS-4 / WS-5 / WS-2: heartbeats carry locks; 2 silent intervals close
 * and reconnect (1 s later), HELLO with the last applied revision. */
static void test_missed_heartbeats_reconnect(void **s)
{
    (void)s;
    fx *f = started();
    int64_t t0 = f->t;
    char err[100];
    assert_int_equal(cli_lock(f->c, "t7", err, sizeof err), 0);
    fx_drain(f);
    hp_out *lk = fx_take(f, HP_OUT_HTTP_REQUEST, "POST");
    assert_non_null(lk);
    assert_string_equal(lk->path, "/api/v0.2/tasks/t7/lock");
    fx_respond(f, lk, 200, -1, "{\"holder\":\"alice\",\"expires_at\":\"x\"}");
    fx_ws_ready(f, 3);
    fx_event(f, "t1", "A", 4);
    fx_event(f, "t2", "B", 5);
    fx_advance_to(f, t0 + 30000);
    assert_int_equal(count_sent(f, "\"locks\":[\"t7\"]"), 1);
    assert_int_equal(count_sent(f, "HEARTBEAT"), 1);
    fx_advance_to(f, t0 + 59999);
    assert_int_equal(fx_pending(f, HP_OUT_WS_CLOSE), 0);
    fx_advance_to(f, t0 + 60000);
    hp_out *cl = fx_take(f, HP_OUT_WS_CLOSE, NULL);
    assert_non_null(cl);
    assert_int_equal(cl->code, 4008);
    int before = 0;
    for (int i = 0; i < f->nout; i++)
        before += f->out[i].kind == HP_OUT_WS_CONNECT;
    fx_advance_to(f, t0 + 60999);
    int mid = 0;
    for (int i = 0; i < f->nout; i++)
        mid += f->out[i].kind == HP_OUT_WS_CONNECT;
    assert_int_equal(mid, before);
    fx_advance_to(f, t0 + 61000);
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    assert_int_not_equal(fx_conn(f), cl->id);
    const char *h = fx_last_sent(f);
    assert_non_null(strstr(h, "HELLO"));
    assert_non_null(strstr(h, "\"revision\":5"));
    fx_free(f);
}

/* WS-6: refused connects back off 1,3,9,27,120,120 s; READY resets. */
static void test_reconnect_backoff(void **s)
{
    /* checks: WS-6.2 WS-6.4 */
    (void)s;
    fx *f = started();
    int64_t t0 = f->t;
    int64_t expect[] = {0, 1000, 4000, 13000, 40000, 160000, 280000};
    for (int i = 0; i < 7; i++) {
        fx_advance_to(f, t0 + expect[i]);
        hp_out *c = fx_take(f, HP_OUT_WS_CONNECT, NULL);
        assert_non_null(c);
        assert_int_equal(f->out_t[fx_index(f, c)], t0 + expect[i]);
        assert_null(fx_take(f, HP_OUT_WS_CONNECT, NULL));
        if (i < 6) {
            cli_ws_refused(f->c, c->id, 0);
            fx_drain(f);
        }
    }
    fx_ws_ready(f, 0);
    cli_ws_closed(f->c, fx_conn(f), 1001);
    fx_drain(f);
    int64_t t = f->t;
    fx_advance_to(f, t + 999);
    assert_null(fx_take(f, HP_OUT_WS_CONNECT, NULL));
    fx_advance_to(f, t + 1000);
    assert_non_null(fx_take(f, HP_OUT_WS_CONNECT, NULL));
    fx_free(f);
}

/* 401 upgrade and 4001 close stop reconnecting until a new token. */
static void test_ws_auth(void **s)
{
    /* checks: WS-6.8 */
    (void)s;
    fx *f = started();
    hp_out *c = fx_take(f, HP_OUT_WS_CONNECT, NULL);
    cli_ws_refused(f->c, c->id, 401);
    fx_drain(f);
    assert_int_equal(fx_count_notify(f, "AUTH_REQUIRED"), 1);
    fx_advance(f, 1000000);
    assert_null(fx_take(f, HP_OUT_WS_CONNECT, NULL));
    cli_set_token(f->c, TOK_ALICE2);
    fx_drain(f);
    c = fx_take(f, HP_OUT_WS_CONNECT, NULL);
    assert_non_null(c);
    assert_non_null(strstr(c->path, "/api/v0.2/tasks/stream?token="));
    fx_ws_ready(f, 0);
    cli_ws_closed(f->c, c->id, 4001);
    fx_drain(f);
    assert_int_equal(fx_count_notify(f, "AUTH_REQUIRED"), 2);
    fx_advance(f, 1000000);
    assert_null(fx_take(f, HP_OUT_WS_CONNECT, NULL));
    fx_free(f);
}

/* WS-2: RESYNC_REQUIRED -> GET ?since=0, cache replaced, HELLO again. */
static void test_resync(void **s)
{
    (void)s;
    fx *f = with_cached_t1();
    cli_ws_closed(f->c, fx_conn(f), 1001);
    fx_drain(f);
    fx_advance(f, 1000);
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    fx_ws_msg(f, "{\"type\":\"RESYNC_REQUIRED\",\"revision\":10}");
    hp_out *g = fx_take(f, HP_OUT_HTTP_REQUEST, "GET");
    assert_non_null(g);
    assert_string_equal(g->path, "/api/v0.2/tasks?since=0");
    char *t2 = fx_task("t2", "Two", "", 10, 0);
    char body[1024];
    snprintf(body, sizeof body, "{\"revision\":10,\"tasks\":[%s]}", t2);
    free(t2);
    fx_respond(f, g, 200, -1, body);
    json_t *c1 = cli_cached(f->c, "t1");
    assert_null(c1);
    json_t *c2 = cli_cached(f->c, "t2");
    assert_non_null(c2);
    json_decref(c2);
    const char *h = fx_last_sent(f);
    assert_non_null(strstr(h, "HELLO"));
    assert_non_null(strstr(h, "\"revision\":10"));
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 10);
    json_decref(st);
    fx_free(f);
}

/* WS-2 / WS-3: duplicates and unknown event types are ignored. */
static void test_duplicates_ignored(void **s)
{
    (void)s;
    fx *f = started();
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "A", 3);
    fx_event(f, "t1", "B", 3);
    fx_event(f, "t1", "C", 2);
    fx_ws_msg(f, "{\"event_type\":\"SOMETHING_NEW\",\"entity_id\":\"t1\",\"revision\":9,\"payload\":{}}");
    fx_ws_msg(f, "not json at all");
    assert_int_equal(fx_count_observe(f, "event", NULL, NULL), 1);
    json_t *c = cli_cached(f->c, "t1");
    assert_string_equal(json_string_value(json_object_get(c, "title")), "A");
    json_decref(c);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 3);
    json_decref(st);
    fx_free(f);
}

/* N-1: OFFLINE_LONG once per offline period. */
static void test_offline_long(void **s)
{
    (void)s;
    fx *f = started();
    fx_ws_ready(f, 0);
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_advance(f, 29 * 60000);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 0);
    fx_advance(f, 2 * 60000);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    fx_advance(f, 120 * 60000);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    cli_set_online(f->c, 1);
    fx_drain(f);
    fx_ws_ready(f, 0);
    fx_advance(f, 10000);
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_advance(f, 31 * 60000);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 2);
    fx_free(f);
}


/* WS-2 / WS-3: REMINDER_DUE moves the applied revision, LOCK_REFRESHED
 * does not (and is reported even at the current revision). */
static void test_event_kinds(void **s)
{
    (void)s;
    fx *f = started();
    fx_ws_ready(f, 2);
    fx_ws_msg(f, "{\"event_type\":\"REMINDER_DUE\",\"entity_id\":\"t1\",\"revision\":3,"
                 "\"payload\":{\"remind_at\":\"2026-11-25T09:00:00+03:00\",\"title\":\"x\"}}");
    fx_ws_msg(f, "{\"event_type\":\"LOCK_REFRESHED\",\"entity_id\":\"t1\",\"revision\":3,"
                 "\"payload\":{\"holder\":\"bob\",\"expires_at\":\"x\",\"state\":\"held\"}}");
    fx_ws_msg(f, "{\"event_type\":\"LOCK_REFRESHED\",\"entity_id\":\"t1\",\"revision\":7,"
                 "\"payload\":{\"holder\":\"bob\",\"expires_at\":\"x\",\"state\":\"released\"}}");
    assert_int_equal(fx_count_observe(f, "event", "event_type", "REMINDER_DUE"), 1);
    assert_int_equal(fx_count_observe(f, "event", "event_type", "LOCK_REFRESHED"), 2);
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 3);
    json_decref(st);
    fx_free(f);
}

/* Bad input never crashes: wrong ids and fields, garbage frames and
 * bodies, answers to unknown requests, choices without a conflict. */
static void test_bad_input(void **s)
{
    (void)s;
    fx *f = started();
    char err[200];
    json_t *o = json_pack("{s:i}", "title", 5);
    assert_int_equal(cli_edit(f->c, "t1", o, err, sizeof err), -1);
    json_decref(o);
    o = json_pack("{s:s}", "due_at", "2026-11-25T09:00:00");
    assert_int_equal(cli_edit(f->c, "t1", o, err, sizeof err), -1);
    assert_int_equal(cli_edit(f->c, "bad id!", o, err, sizeof err), -1);
    assert_int_equal(cli_edit(f->c, NULL, o, err, sizeof err), -1);
    json_decref(o);
    assert_int_equal(cli_edit(f->c, "t1", NULL, err, sizeof err), -1);
    assert_int_equal(cli_delete(f->c, "nothing", err, sizeof err), -1);
    assert_int_equal(cli_choose(f->c, "t1", "merge", err, sizeof err), -1);
    assert_int_equal(cli_choose(f->c, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(cli_lock(f->c, "", err, sizeof err), -1);
    cli_set_token(f->c, NULL);
    cli_set_token(f->c, "not-a-jwt");
    fx_drain(f);
    fx_ws_ready(f, 0);
    const char *frames[] = {"", "{}", "[1]", "null", "{\"type\":\"READY\",\"revision\":\"x\"}",
                            "{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\",\"revision\":5,\"payload\":{\"id\":\"t1\"}}",
                            "{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"../x\",\"revision\":6,\"payload\":null}",
                            "{\"event_type\":5}", "\xff\xfe"};
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++)
        fx_ws_msg(f, frames[i]);
    cli_ws_message(f->c, 999, "{}", 2); /* unknown connection */
    json_t *st = cli_status(f->c);
    assert_int_equal(json_integer_value(json_object_get(st, "applied_revision")), 0);
    json_decref(st);
    assert_true(fx_count_log(f, HP_LOG_WARNING, "bad_event") >= 1);
    cli_http_response(f->c, 12345, 200, -1, "x", 1);
    cli_http_failed(f->c, 12345, NULL);
    fx_edit(f, "t1", "title", "A");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    fx_respond(f, r, 409, -1, "garbage");
    fx_advance(f, 1000);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    fx_respond(f, r, 409, -1, "{\"error\":\"conflict\",\"current\":{\"id\":5}}");
    fx_advance(f, 3000);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    fx_respond(f, r, 200, -1, "not json"); /* acknowledged all the same */
    st = cli_status(f->c);
    assert_int_equal(json_array_size(json_object_get(st, "queue")), 0);
    json_decref(st);
    cli_ws_closed(f->c, 999, 0);
    cli_ws_refused(f->c, 999, 0);
    cli_ws_opened(f->c, 999);
    fx_drain(f);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_instants),
        cmocka_unit_test(test_sync_now_resets),
        cmocka_unit_test(test_fifo_one_at_a_time),
        cmocka_unit_test(test_coalesce_and_overflow),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_2xx_for_another_task),
        cmocka_unit_test(test_ready_huge_heartbeat_refused),
        cmocka_unit_test(test_401_pause_resume),
        cmocka_unit_test(test_429_retry_after),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_offline_abort),
        cmocka_unit_test(test_merge_clean),
        cmocka_unit_test(test_merge_both_same),
        cmocka_unit_test(test_merge_both_different_merge),
        cmocka_unit_test(test_merge_both_different_overwrite),
        cmocka_unit_test(test_edit_vs_delete_merge),
        cmocka_unit_test(test_edit_vs_delete_overwrite),
        cmocka_unit_test(test_delete_vs_edit_merge),
        cmocka_unit_test(test_delete_vs_edit_overwrite),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_missed_heartbeats_reconnect),
        cmocka_unit_test(test_reconnect_backoff),
        cmocka_unit_test(test_ws_auth),
        cmocka_unit_test(test_resync),
        cmocka_unit_test(test_duplicates_ignored),
        cmocka_unit_test(test_offline_long),
        cmocka_unit_test(test_event_kinds),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

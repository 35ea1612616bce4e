/*
 * test_cli_bounds.c - boundary tests of the client core's rules that the
 * first test file does not pin down: Q-4 jitter (bounds, variation,
 * determinism), a failed reload after RESYNC_REQUIRED, N-1 at the
 * offline_long boundary ("more than") and its period, Q-2 at the default cap of 100, WS-5 watchdog
 * reset by any message and following READY's interval, WS-6 after a 4001,
 * C-1 at exactly the window.  Fake clock throughout, no sleeps.
 */
#include "cli_fx.h"

#define DAY_MS (24LL * 3600 * 1000)

static fx *started_with(const hp_policy *p, uint64_t seed)
{
    fx *f = fx_new_at(NULL, p, 7);
    hp_rng_seed(&f->rng, seed);
    cli_start(f->c);
    fx_drain(f);
    return f;
}

static int64_t status_int(fx *f, const char *key)
{
    json_t *st = cli_status(f->c);
    json_t *v = json_object_get(st, key);
    int64_t r = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(st);
    return r;
}

static const char *status_conn(fx *f, char *buf, size_t n)
{
    json_t *st = cli_status(f->c);
    snprintf(buf, n, "%s", json_string_value(json_object_get(st, "connection")));
    json_decref(st);
    return buf;
}

static int count_kind(fx *f, hp_out_kind k)
{
    int n = 0;
    for (int i = 0; i < f->nout; i++)
        n += f->out[i].kind == k;
    return n;
}

/* ---- Q-4 jitter -------------------------------------------------------- */

#define NJ 8

/* Fail the head NJ times with retry_jitter 0.1 and the PRNG seeded with
 * seed; delays[i] is the wait chosen after failure i+1.  Each retry must be
 * sent exactly at next_retry_at, never a millisecond before. */
static void jitter_run(uint64_t seed, int64_t delays[NJ])
{
    hp_policy p;
    hp_policy_defaults(&p);
    p.retry_jitter = 0.1;
    fx *f = started_with(&p, seed);
    fx_edit(f, "t1", "title", "Milk");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    for (int i = 0; i < NJ; i++) {
        int64_t tf = f->t;
        fx_fail(f, r);
        int64_t next = status_int(f, "next_retry_at");
        assert_true(next >= tf);
        delays[i] = next - tf;
        fx_advance_to(f, next - 1);
        assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
        fx_advance_to(f, next);
        r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
        assert_non_null(r);
        assert_int_equal(f->out_t[fx_index(f, r)], next);
    }
    fx_free(f);
}

/* with jitter 0.1 every delay lies within +/-10% of 1,3,9,27,120,120..
 * s, they are not all the nominal values, and one seed gives one schedule
 * (the core draws from env->rng only). */
static void test_jitter(void **s)
{
    (void)s;
    const int64_t nominal[NJ] = {1000, 3000, 9000, 27000, 120000, 120000, 120000, 120000};
    int64_t a[NJ], b[NJ], c[NJ];
    jitter_run(42, a);
    jitter_run(42, b);
    jitter_run(4242, c);
    int off_nominal = 0, differs = 0;
    for (int i = 0; i < NJ; i++) {
        int64_t lo = nominal[i] - nominal[i] / 10, hi = nominal[i] + nominal[i] / 10;
        assert_in_range(a[i], lo, hi);
        assert_in_range(c[i], lo, hi);
        assert_int_equal(a[i], b[i]); /* determinism */
        off_nominal += a[i] != nominal[i];
        differs += a[i] != c[i];
    }
    assert_true(off_nominal >= NJ / 2); /* jitter is really applied */
    assert_true(differs >= 1);          /* and comes from the seed */
}

/* ---- WS-2: a failed reload after RESYNC_REQUIRED ----------------------- */

/* Play the server until the core asks GET ?since=0 or limit ms pass: open
 * every connect, answer every HELLO below rev_now with RESYNC_REQUIRED.
 * Returns the GET or NULL. */
static hp_out *serve_until_reload(fx *f, int64_t rev_now, int64_t limit)
{
    int64_t end = f->t + limit;
    int seen_sends = count_kind(f, HP_OUT_WS_SEND);
    for (int guard = 0; guard < 10000; guard++) {
        hp_out *g = fx_take(f, HP_OUT_HTTP_REQUEST, "GET");
        if (g)
            return g;
        hp_out *cn = fx_take(f, HP_OUT_WS_CONNECT, NULL);
        if (cn) {
            cli_ws_opened(f->c, cn->id);
            fx_drain(f);
            continue;
        }
        int sends = count_kind(f, HP_OUT_WS_SEND);
        if (sends != seen_sends) {
            seen_sends = sends;
            const char *h = fx_last_sent(f);
            if (h && strstr(h, "HELLO")) {
                json_error_t je;
                json_t *hj = json_loads(h, 0, &je);
                int64_t rv = (int64_t)json_integer_value(json_object_get(hj, "revision"));
                json_decref(hj);
                if (rv < rev_now) {
                    char m[128];
                    snprintf(m, sizeof m, "{\"type\":\"RESYNC_REQUIRED\",\"revision\":%lld}",
                             (long long)rev_now);
                    fx_ws_msg(f, m);
                    continue;
                }
            }
        }
        int64_t d = cli_next_deadline(f->c);
        if (d == INT64_MAX || d > end)
            return NULL;
        fx_advance_to(f, d > f->t ? d : f->t);
    }
    fail_msg("serve_until_reload: no progress");
    return NULL;
}

static void queue_ids(fx *f, char ids[2][64])
{
    json_t *st = cli_status(f->c);
    json_t *q = json_object_get(st, "queue");
    assert_int_equal(json_array_size(q), 2);
    for (int i = 0; i < 2; i++)
        snprintf(ids[i], 64, "%s",
                 json_string_value(json_object_get(json_array_get(q, (size_t)i), "mutation_id")));
    json_decref(st);
}

/* WS-2: the GET ?since=0 answered 503, then failing on the network: the
 * client keeps its queue and cache, closes and tries again (a new HELLO
 * with the old revision, so a new RESYNC and a new GET), and is ready once
 * a reload succeeds.  The queue's fate is independent of the stream. */
static void test_reload_failure_retries(void **s)
{
    (void)s;
    fx *f = started_with(NULL, 42);
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "One", 1);
    /* two queued edits whose PUTs go unanswered (they time out and retry) */
    fx_edit(f, "t2", "title", "A");
    fx_edit(f, "t3", "title", "B");
    char ids0[2][64], ids[2][64];
    queue_ids(f, ids0);

    cli_ws_closed(f->c, fx_conn(f), 1001);
    fx_drain(f);
    hp_out *g = serve_until_reload(f, 10, 200000);
    assert_non_null(g);
    assert_string_equal(g->path, "/api/v0.2/tasks?since=0");
    int closes = count_kind(f, HP_OUT_WS_CLOSE);
    fx_respond(f, g, 503, -1, "{\"error\":\"internal\",\"message\":\"down\"}");
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "reload_failed"), 1);
    queue_ids(f, ids);
    assert_string_equal(ids[0], ids0[0]);
    assert_string_equal(ids[1], ids0[1]);
    json_t *c1 = cli_cached(f->c, "t1"); /* nothing cleared before a good reload */
    assert_non_null(c1);
    json_decref(c1);
    assert_int_equal(status_int(f, "applied_revision"), 1);
    char cs[32];
    assert_string_not_equal(status_conn(f, cs, sizeof cs), "ready");
    /* the core's way to retry: close our side, reconnect with backoff */
    assert_int_equal(count_kind(f, HP_OUT_WS_CLOSE), closes + 1);
    assert_int_equal(fx_pending(f, HP_OUT_WS_CONNECT), 0); /* not at once */

    g = serve_until_reload(f, 10, 200000);
    assert_non_null(g); /* retried */
    assert_string_equal(g->path, "/api/v0.2/tasks?since=0");
    fx_fail(f, g); /* network error this time */
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "reload_failed"), 2);
    queue_ids(f, ids);
    assert_string_equal(ids[0], ids0[0]);
    assert_string_equal(ids[1], ids0[1]);

    g = serve_until_reload(f, 10, 200000);
    assert_non_null(g);
    char *t5 = fx_task("t5", "Five", "", 10, 0);
    char body[1024];
    snprintf(body, sizeof body, "{\"revision\":10,\"tasks\":[%s]}", t5);
    free(t5);
    fx_respond(f, g, 200, -1, body);
    const char *h = fx_last_sent(f);
    assert_non_null(h);
    assert_non_null(strstr(h, "HELLO"));
    assert_non_null(strstr(h, "\"revision\":10"));
    char *rd = hp_msg_ready(10, f->pol.heartbeat_ms);
    fx_ws_msg(f, rd);
    free(rd);
    assert_string_equal(status_conn(f, cs, sizeof cs), "ready");
    assert_int_equal(status_int(f, "applied_revision"), 10);
    queue_ids(f, ids); /* the queue survived all of it, same mutation ids */
    assert_string_equal(ids[0], ids0[0]);
    assert_string_equal(ids[1], ids0[1]);
    json_t *c5 = cli_cached(f->c, "t5");
    assert_non_null(c5);
    json_decref(c5);
    fx_free(f);
}

/* ---- N-1 --------------------------------------------------------------- */

/* N-1: "offline for MORE than 30 minutes" (SPEC section 4): nothing at
 * exactly offline_long, OFFLINE_LONG 1 ms later (the core's deadline is
 * offline_since + offline_long + 1, so the tick lands there). */
static void test_offline_long_boundary(void **s)
{
    /* checks: N-1.1 */
    (void)s;
    fx *f = started_with(NULL, 42);
    fx_ws_ready(f, 0);
    cli_set_online(f->c, 0);
    fx_drain(f);
    int64_t t0 = f->t;
    fx_advance_to(f, t0 + f->pol.offline_long_ms);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 0);
    fx_advance_to(f, t0 + f->pol.offline_long_ms + 1);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    json_t *n = fx_last_notify(f, "OFFLINE_LONG");
    assert_int_equal(json_integer_value(json_object_get(n, "offline_ms")),
                     f->pol.offline_long_ms + 1);
    fx_free(f);
}

/* N-1: a period is time without a live READY connection, whatever the
 * cause: a lost stream that never comes back counts; going online without
 * a READY does not end the period (no second notification); a READY does
 * (the next period notifies again). */
static void test_offline_period(void **s)
{
    /* checks: N-1.3 N-1.6 */
    (void)s;
    fx *f = started_with(NULL, 42);
    fx_ws_ready(f, 0);
    int64_t t0 = f->t;
    /* the stream dies; every reconnect is refused; the user stays "online" */
    cli_ws_closed(f->c, fx_conn(f), 1001);
    fx_drain(f);
    while (f->t < t0 + f->pol.offline_long_ms) {
        int64_t d = cli_next_deadline(f->c);
        if (d > t0 + f->pol.offline_long_ms)
            d = t0 + f->pol.offline_long_ms;
        fx_advance_to(f, d);
        hp_out *cn;
        while ((cn = fx_take(f, HP_OUT_WS_CONNECT, NULL)) != NULL) {
            cli_ws_refused(f->c, cn->id, 0);
            fx_drain(f);
        }
    }
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 0);
    fx_advance_to(f, t0 + f->pol.offline_long_ms + 1);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    /* offline, online with the stream opened but no READY, offline again */
    cli_set_online(f->c, 0);
    fx_drain(f);
    cli_set_online(f->c, 1);
    fx_drain(f);
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_advance(f, 2 * f->pol.offline_long_ms);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    /* a READY ends the period */
    cli_set_online(f->c, 1);
    fx_drain(f);
    fx_ws_ready(f, 0);
    cli_set_online(f->c, 0);
    fx_drain(f);
    int64_t t1 = f->t;
    fx_advance_to(f, t1 + f->pol.offline_long_ms);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 1);
    fx_advance_to(f, t1 + f->pol.offline_long_ms + 1);
    assert_int_equal(fx_count_notify(f, "OFFLINE_LONG"), 2);
    fx_free(f);
}

/* ---- at the default cap -------------------------------------- */

/* with the default queue_max of 100 the 100th item is accepted (the
 * in-flight head counts), the 101st new entity is refused with QUEUE_FULL,
 * an edit to a queued, not in flight entity still coalesces. */
static void test_queue_max_default(void **s)
{
    /* checks */
    (void)s;
    fx *f = started_with(NULL, 42);
    assert_int_equal(f->pol.queue_max, 100);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "e%d", i);
        assert_int_equal(fx_edit_rc(f, id, "x"), 0);
    }
    assert_non_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT")); /* e0 in flight */
    assert_int_equal(fx_count_notify(f, "QUEUE_FULL"), 0);
    assert_int_equal(fx_count_observe(f, "queue", "op", "enqueued"), 100);
    assert_int_equal(fx_count_observe(f, "queue", "op", "coalesced"), 0);
    assert_int_equal(fx_edit_rc(f, "e100", "x"), -1);
    assert_int_equal(fx_count_notify(f, "QUEUE_FULL"), 1);
    assert_int_equal(fx_edit_rc(f, "e50", "y"), 0);
    assert_int_equal(fx_count_observe(f, "queue", "op", "coalesced"), 1);
    json_t *st = cli_status(f->c);
    json_t *q = json_object_get(st, "queue");
    assert_int_equal(json_array_size(q), 100);
    assert_string_equal(json_string_value(json_object_get(json_array_get(q, 99), "entity_id")), "e99");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(q, 50), "snapshot"), "title")),
                        "y");
    json_decref(st);
    fx_free(f);
}

/* ---- WS-5 watchdog ------------------------------------------------------ */

/* WS-5: any server message restarts the 2-interval watchdog, and the
 * interval is the one READY announced (here 10 s, not the policy's 30). */
static void test_watchdog_follows_ready(void **s)
{
    (void)s;
    fx *f = started_with(NULL, 42);
    cli_ws_opened(f->c, fx_conn(f));
    fx_drain(f);
    char *rd = hp_msg_ready(0, 10000);
    fx_ws_msg(f, rd);
    free(rd);
    int64_t t0 = f->t;
    fx_advance_to(f, t0 + 15000);
    fx_ws_msg(f, "{\"type\":\"HEARTBEAT\"}");
    fx_advance_to(f, t0 + 15000 + 19999);
    assert_int_equal(fx_pending(f, HP_OUT_WS_CLOSE), 0);
    fx_advance_to(f, t0 + 15000 + 20000);
    hp_out *cl = fx_take(f, HP_OUT_WS_CLOSE, NULL);
    assert_non_null(cl);
    assert_int_equal(f->out_t[fx_index(f, cl)], t0 + 35000);
    fx_free(f);
}

/* ---- WS-6 / A-2 after 4001 ---------------------------------------------- */

/* A 4001 close stops reconnecting (no backoff attempt, however long); the
 * new token connects at once, with that token, and HELLOs with the last
 * applied revision. */
static void test_4001_waits_for_token(void **s)
{
    /* checks: WS-6.8 */
    (void)s;
    fx *f = started_with(NULL, 42);
    fx_ws_ready(f, 0);
    fx_event(f, "t1", "A", 7);
    int connects = count_kind(f, HP_OUT_WS_CONNECT);
    cli_ws_closed(f->c, fx_conn(f), HP_CLOSE_AUTH);
    fx_drain(f);
    assert_int_equal(fx_count_notify(f, "AUTH_REQUIRED"), 1);
    fx_advance(f, 600000); /* well past 1+3+9+27+120+120... */
    assert_int_equal(count_kind(f, HP_OUT_WS_CONNECT), connects);
    int64_t t = f->t;
    cli_set_token(f->c, TOK_ALICE2);
    fx_drain(f);
    hp_out *cn = NULL;
    for (int i = f->nout - 1; i >= 0; i--)
        if (f->out[i].kind == HP_OUT_WS_CONNECT) {
            cn = &f->out[i];
            break;
        }
    assert_int_equal(count_kind(f, HP_OUT_WS_CONNECT), connects + 1);
    assert_int_equal(f->out_t[fx_index(f, cn)], t);
    assert_non_null(strstr(cn->path, TOK_ALICE2));
    cli_ws_opened(f->c, cn->id);
    fx_drain(f);
    assert_non_null(strstr(fx_last_sent(f), "\"revision\":7"));
    fx_free(f);
}

/* ---- C-1 ---------------------------------------------------------------- */

/* C-1: an entry last updated at t is kept at t + 7 d - 1 ms even when the
 * window is enforced then (an event applied runs the upkeep), and purged
 * at t + 7 d (the core's timer fires exactly then). */
static void test_cache_window_boundary(void **s)
{
    /* checks: C-1.1 C-1.2 */
    (void)s;
    fx *f = started_with(NULL, 42);
    fx_ws_ready(f, 0);
    fx_event(f, "old", "Old", 1);
    int64_t t0 = f->t;
    cli_set_online(f->c, 0);
    fx_drain(f);
    fx_advance_to(f, t0 + 7 * DAY_MS - 1);
    /* make the core enforce the window now: back online, a new event */
    cli_set_online(f->c, 1);
    fx_drain(f);
    fx_ws_ready(f, 1);
    fx_event(f, "new", "New", 2);
    json_t *c = cli_cached(f->c, "old");
    assert_non_null(c);
    json_decref(c);
    fx_advance_to(f, t0 + 7 * DAY_MS);
    assert_null(cli_cached(f->c, "old"));
    fx_free(f);
}

/* ---- what ends a streak ------------------------------------- */

/* a 409 answer resets the retry count: after 3 failures and a 409
 * (clean merge, retried at once with the same key), the next failure waits
 * 1 s, not the 4th delay (27 s). */
static void test_409_resets_retry_count(void **s)
{
    /* checks */
    (void)s;
    fx *f = started_with(NULL, 1);
    fx_edit(f, "t1", "title", "Mine");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r);
    char key[64];
    snprintf(key, sizeof key, "%s", r->idem_key);
    for (int i = 0; i < 3; i++) {
        fx_fail(f, r);
        fx_advance_to(f, status_int(f, "next_retry_at"));
        r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
        assert_non_null(r);
    }
    assert_int_equal(status_int(f, "retry_attempt"), 3);
    /* their version changed only the notes: a clean merge */
    char *t = fx_task("t1", "", "theirs", 4, 0);
    size_t n = strlen(t) + 64;
    char *b = malloc(n);
    snprintf(b, n, "{\"error\":\"conflict\",\"current\":%s}", t);
    free(t);
    fx_respond(f, r, 409, -1, b);
    free(b);
    r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    assert_non_null(r); /* retried at once */
    assert_string_equal(r->idem_key, key);
    assert_int_equal(status_int(f, "retry_attempt"), 0);
    int64_t tf = f->t;
    fx_fail(f, r);
    assert_int_equal(status_int(f, "retry_attempt"), 1);
    assert_int_equal(status_int(f, "next_retry_at"), tf + 1000);
    fx_advance_to(f, tf + 999);
    assert_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_advance_to(f, tf + 1000);
    assert_non_null(fx_take(f, HP_OUT_HTTP_REQUEST, "PUT"));
    fx_free(f);
}

/* SYNC_FAILED names the entity, counts the attempts and offers
 * "sync_now"; one WARNING sync_failed; after a 6th and 7th failure still
 * one of each. */
static void test_sync_failed_content(void **s)
{
    /* checks:  */
    (void)s;
    fx *f = started_with(NULL, 1);
    fx_edit(f, "t1", "title", "Milk");
    hp_out *r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    for (int i = 0; i < 7; i++) {
        assert_non_null(r);
        fx_fail(f, r);
        assert_int_equal(fx_count_notify(f, "SYNC_FAILED"), i >= 4 ? 1 : 0);
        fx_advance_to(f, status_int(f, "next_retry_at"));
        r = fx_take(f, HP_OUT_HTTP_REQUEST, "PUT");
    }
    json_t *nt = fx_last_notify(f, "SYNC_FAILED");
    assert_non_null(nt);
    assert_string_equal(json_string_value(json_object_get(nt, "entity_id")), "t1");
    assert_int_equal(json_integer_value(json_object_get(nt, "attempts")), 5);
    json_t *acts = json_object_get(nt, "actions");
    assert_int_equal(json_array_size(acts), 1);
    assert_string_equal(json_string_value(json_array_get(acts, 0)), "sync_now");
    assert_int_equal(fx_count_log(f, HP_LOG_WARNING, "sync_failed entity=task/t1"), 1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_reload_failure_retries),
        cmocka_unit_test(test_offline_long_boundary),
        cmocka_unit_test(test_offline_period),
        cmocka_unit_test(test_queue_max_default),
        cmocka_unit_test(test_watchdog_follows_ready),
        cmocka_unit_test(test_4001_waits_for_token),
        cmocka_unit_test(test_cache_window_boundary),
        cmocka_unit_test(test_409_resets_retry_count),
        cmocka_unit_test(test_sync_failed_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

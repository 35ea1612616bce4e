/*
 * test_srv_rest.c - the REST half of the server core: SPEC §3 answers,
 * A-1 (tokens), A-3 (households), CF-4 (server WARNING per 409),
 * idempotency, bad input, faults.
 */
#include "srv_test_util.h"
#include "srv_internal.h" /* srv_store_idem_count */

#define T1 "/api/v0.2/tasks/t1"

static int64_t revision_of(const fx_resp *r)
{
    return json_integer_value(json_object_get(r->body, "revision"));
}

static int64_t hh_revision(fx *f, const char *user, const char *hh)
{
    fx_resp r = fx_http(f, user, hh, "GET", "/api/v0.2/tasks", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    int64_t v = revision_of(&r);
    fx_resp_free(&r);
    return v;
}

/* ---- A-1 -------------------------------------------------------------- */

static void test_auth_refusals(void **state)
{
    (void)state;
    /* checks:     */
    fx *f = fx_new();
    /* no header */
    fx_resp r = fx_http_raw(f, "GET", "/api/v0.2/tasks", NULL, NULL, NULL, NULL, -1);
    assert_int_equal(r.status, 401);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "unauthorized");
    fx_resp_free(&r);
    /* not Bearer */
    r = fx_http_raw(f, "GET", "/api/v0.2/tasks", NULL, "Basic YWxpY2U6eA==", NULL, NULL, -1);
    assert_int_equal(r.status, 401);
    fx_resp_free(&r);
    /* another secret */
    char *bad = hp_jwt_mint("other-secret", "alice", "home", NULL, f->now / 1000, f->now / 1000 + 60);
    char auth[2048];
    snprintf(auth, sizeof auth, "Bearer %s", bad);
    r = fx_http_raw(f, "GET", "/api/v0.2/tasks", NULL, auth, NULL, NULL, -1);
    assert_int_equal(r.status, 401);
    fx_resp_free(&r);
    free(bad);
    /* expired: exp == now is expired (no leeway) */
    char *exp = hp_jwt_mint(FX_SECRET, "alice", "home", NULL, f->now / 1000 - 60, f->now / 1000);
    snprintf(auth, sizeof auth, "Bearer %s", exp);
    r = fx_http_raw(f, "PUT", T1, NULL, auth, NULL, "{\"base_revision\":0,\"task\":{}}", 29);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(json_string_value(json_object_get(r.body, "message")), "xpire"));
    fx_resp_free(&r);
    free(exp);
    /* iat in the future */
    char *fut = hp_jwt_mint(FX_SECRET, "alice", "home", NULL, f->now / 1000 + 60, f->now / 1000 + 600);
    snprintf(auth, sizeof auth, "Bearer %s", fut);
    r = fx_http_raw(f, "GET", "/api/v0.2/tasks", NULL, auth, NULL, NULL, -1);
    assert_int_equal(r.status, 401);
    fx_resp_free(&r);
    free(fut);
    /* nothing was applied, each refusal logged with its reason, no token logged */
    assert_int_equal(hh_revision(f, "alice", "home"), 0);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "token_refused", NULL), 5);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "token_refused", "reason=expired"), 1);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "token_refused", "reason=missing"), 1);
    fx_assert_no_token_logged(f);
    fx_free(f);
}

/* ---- create / read / update / delete ------------------------------------ */

static void test_put_create_and_server_fields(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_resp r = fx_put(f, "alice", "home", "t1", 0,
                       "{\"title\":\"Milk\",\"revision\":99,\"updated_by\":\"mallory\","
                       "\"deleted\":true,\"colour\":\"red\",\"due_at\":\"2026-11-25T09:00:00+03:00\"}",
                       NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "id")), "t1");
    assert_string_equal(json_string_value(json_object_get(r.body, "title")), "Milk");
    assert_int_equal(revision_of(&r), 1);
    assert_string_equal(json_string_value(json_object_get(r.body, "updated_by")), "alice");
    assert_true(json_is_false(json_object_get(r.body, "deleted")));
    assert_null(json_object_get(r.body, "colour"));
    /* C-4 / WS-3: times verbatim, offset kept */
    assert_string_equal(json_string_value(json_object_get(r.body, "due_at")),
                        "2026-11-25T09:00:00+03:00");
    fx_resp_free(&r);

    r = fx_http(f, "alice", "home", "GET", T1, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "title")), "Milk");
    fx_resp_free(&r);

    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks/nope", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "not_found");
    fx_resp_free(&r);

    /* update with the right base: revision moves, untouched fields kept */
    r = fx_put(f, "bob", "home", "t1", 1, "{\"done\":true}", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(revision_of(&r), 2);
    assert_string_equal(json_string_value(json_object_get(r.body, "title")), "Milk");
    assert_true(json_is_true(json_object_get(r.body, "done")));
    assert_string_equal(json_string_value(json_object_get(r.body, "updated_by")), "bob");
    fx_resp_free(&r);
    fx_free(f);
}

static void test_list_since(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "a", 0, "{\"title\":\"A\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "b", 0, "{\"title\":\"B\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "a", 1, "{\"title\":\"A2\"}"), 200);
    fx_resp r = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/b", "base_revision=2",
                        NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);

    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", "since=0", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(revision_of(&r), 4);
    json_t *tasks = json_object_get(r.body, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    /* ascending revision; the tombstone is included */
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "id")), "a");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 1), "id")), "b");
    assert_true(json_is_true(json_object_get(json_array_get(tasks, 1), "deleted")));
    fx_resp_free(&r);

    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", "since=3", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 1);
    assert_int_equal(revision_of(&r), 4);
    fx_resp_free(&r);

    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", "since=4", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 0);
    fx_resp_free(&r);

    /* no since = since 0 */
    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 2);
    fx_resp_free(&r);

    const char *bad[] = {"since=-1", "since=abc", "since=", "since=1x", "since=99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", bad[i], NULL, NULL);
        assert_int_equal(r.status, 400);
        fx_resp_free(&r);
    }
    fx_free(f);
}

static void test_conflicts_and_cf4_warning(void **state)
{
    (void)state;
    /* checks: CF-4.1 */
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}"), 200);
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 1, "{\"title\":\"B\"}"), 200);

    /* stale base */
    fx_resp r = fx_put(f, "bob", "home", "t1", 1, "{\"title\":\"C\"}", NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "conflict");
    json_t *cur = json_object_get(r.body, "current");
    assert_non_null(cur);
    assert_int_equal(json_integer_value(json_object_get(cur, "revision")), 2);
    assert_string_equal(json_string_value(json_object_get(cur, "title")), "B");
    fx_resp_free(&r);
    /* CF-4: exact message and fields */
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict",
                                  "entity=task/t1 base=1 current=2 user=bob"), 1);

    /* B = 0 on an existing task */
    r = fx_put(f, "bob", "home", "t1", 0, "{\"title\":\"C\"}", NULL);
    assert_int_equal(r.status, 409);
    fx_resp_free(&r);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict",
                                  "entity=task/t1 base=0 current=2 user=bob"), 1);
    /* B newer than current is a conflict as well */
    r = fx_put(f, "bob", "home", "t1", 7, "{\"title\":\"C\"}", NULL);
    assert_int_equal(r.status, 409);
    fx_resp_free(&r);

    /* B > 0 on an unknown id */
    r = fx_put(f, "bob", "home", "t9", 3, "{\"title\":\"C\"}", NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);

    /* nothing applied by the refusals */
    assert_int_equal(hh_revision(f, "alice", "home"), 2);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict", NULL), 3);
    fx_free(f);
}

static void test_delete(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}"), 200);
    fx_resp r = fx_http(f, "alice", "home", "DELETE", T1, NULL, NULL, NULL);
    assert_int_equal(r.status, 400); /* base_revision is required */
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=x", NULL, NULL);
    assert_int_equal(r.status, 400);
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "DELETE", "/api/v0.2/tasks/zz", "base_revision=1", NULL, NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    r = fx_http(f, "bob", "home", "DELETE", T1, "base_revision=0", NULL, NULL);
    assert_int_equal(r.status, 409);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.body, "current"), "revision")), 1);
    fx_resp_free(&r);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict", "entity=task/t1 base=0 current=1 user=bob"), 1);

    r = fx_http(f, "bob", "home", "DELETE", T1, "base_revision=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "deleted")));
    assert_int_equal(revision_of(&r), 2);
    assert_string_equal(json_string_value(json_object_get(r.body, "title")), "A");
    fx_resp_free(&r);

    /* the tombstone is readable and blocks a create */
    r = fx_http(f, "alice", "home", "GET", T1, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.body, "deleted")));
    fx_resp_free(&r);
    r = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"again\"}", NULL);
    assert_int_equal(r.status, 409);
    fx_resp_free(&r);
    /* deleting the tombstone again at its revision: same answer, no new revision */
    r = fx_http(f, "bob", "home", "DELETE", T1, "base_revision=2", NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(hh_revision(f, "alice", "home"), 2);
    /* a PUT at the tombstone's revision brings it back ("overwrite") */
    r = fx_put(f, "alice", "home", "t1", 2, "{\"title\":\"back\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.body, "deleted")));
    assert_int_equal(revision_of(&r), 3);
    fx_resp_free(&r);
    fx_free(f);
}

/* ---- bad input --------------------------------------------------------- */

static void test_bad_bodies(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}"), 200);
    const char *bodies[] = {
        "",                                                   /* empty */
        "{",                                                  /* malformed */
        "[1,2]",                                              /* not an object */
        "null",
        "{\"task\":{}}",                                      /* no base_revision */
        "{\"base_revision\":\"1\",\"task\":{}}",              /* wrong type */
        "{\"base_revision\":-1,\"task\":{}}",
        "{\"base_revision\":1.5,\"task\":{}}",
        "{\"base_revision\":1}",                              /* no task */
        "{\"base_revision\":1,\"task\":[]}",
        "{\"base_revision\":1,\"task\":{\"title\":5}}",
        "{\"base_revision\":1,\"task\":{\"done\":\"yes\"}}",
        "{\"base_revision\":1,\"task\":{\"assignee\":7}}",
        "{\"base_revision\":1,\"task\":{\"due_at\":\"2026-11-25T09:00:00\"}}",  /* no offset */
        "{\"base_revision\":1,\"task\":{\"remind_at\":\"tomorrow\"}}",
        "{\"base_revision\":1,\"task\":{\"id\":\"t2\"}}",     /* id mismatch */
        "{\"base_revision\":1,\"task\":{\"id\":3}}",
        "{\"base_revision\":1,\"base_revision\":1,\"task\":{}}", /* duplicate key */
        "\xff\xfe{}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        fx_resp r = fx_http(f, "alice", "home", "PUT", T1, NULL, NULL, bodies[i]);
        if (r.status != 400)
            fail_msg("body %zu (%s): status %d", i, bodies[i], r.status);
        assert_string_equal(json_string_value(json_object_get(r.body, "error")), "bad_request");
        fx_resp_free(&r);
    }
    /* 411: PUT without Content-Length */
    char *tok = fx_token_at(f, "alice", "home", 60);
    char auth[2048];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    fx_resp r = fx_http_raw(f, "PUT", T1, NULL, auth, NULL, "{\"base_revision\":1,\"task\":{}}", -1);
    assert_int_equal(r.status, 411);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "length_required");
    fx_resp_free(&r);
    /* 413: announced length over max_body (the driver passes a truncated body) */
    r = fx_http_raw(f, "PUT", T1, NULL, auth, NULL, "{\"base_revision\":1",
                    (int64_t)f->pol.max_body + 1);
    assert_int_equal(r.status, 413);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")), "payload_too_large");
    fx_resp_free(&r);
    /* any method: a body over max_body is 413 */
    r = fx_http_raw(f, "POST", "/api/v0.2/tasks/t1/lock", NULL, auth, NULL, "x",
                    (int64_t)f->pol.max_body + 1);
    assert_int_equal(r.status, 413);
    fx_resp_free(&r);
    r = fx_http_raw(f, "GET", "/api/v0.2/tasks", NULL, auth, NULL, "x", (int64_t)f->pol.max_body + 1);
    assert_int_equal(r.status, 413);
    fx_resp_free(&r);
    /* exactly max_body is fine as far as size goes (then it is not JSON) */
    char *big = malloc(f->pol.max_body + 1);
    memset(big, ' ', f->pol.max_body);
    memcpy(big, "{\"base_revision\":1,\"task\":{\"title\":\"big\"}}", 42);
    big[f->pol.max_body] = 0;
    r = fx_http_raw(f, "PUT", T1, NULL, auth, NULL, big, (int64_t)f->pol.max_body);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    free(big);
    /* a bad Idempotency-Key */
    r = fx_http_raw(f, "PUT", T1, NULL, auth, "has space", "{\"base_revision\":2,\"task\":{}}", 29);
    assert_int_equal(r.status, 400);
    fx_resp_free(&r);
    /* only the one good write applied */
    assert_int_equal(hh_revision(f, "alice", "home"), 2);
    fx_free(f);
}

static void test_routes(void **state)
{
    (void)state;
    fx *f = fx_new();
    struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/", 404},
        {"GET", "/api/v0.2/other", 404},
        {"GET", "/api/v0.2/tasksX", 404},
        {"GET", "/api/v0.2/tasks/", 404},
        {"GET", "/api/v0.2/tasks/t1/", 404},
        {"GET", "/api/v0.2/tasks/t1/foo", 404},
        {"GET", "/api/v0.2/tasks//lock", 404},
        {"POST", "/api/v0.2/tasks", 405},
        {"PUT", "/api/v0.2/tasks", 405},
        {"DELETE", "/api/v0.2/tasks", 405},
        {"POST", "/api/v0.2/tasks/t1", 405},
        {"PATCH", "/api/v0.2/tasks/t1", 405},
        {"GET", "/api/v0.2/tasks/t1/lock", 405},
        {"PUT", "/api/v0.2/tasks/t1/lock", 405},
        {"", "/api/v0.2/tasks/t1", 405},
        {"GET", "/api/v0.2/tasks/bad%20id", 400},
        {"GET", "/api/v0.2/tasks/a.b", 400},
        {"GET", "/api/v0.2/tasks/"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 400}, /* 65 */
        {"POST", "/api/v0.2/tasks/a!/lock", 400},
        {"GET", "/api/v0.2/tasks/stream", 400},
        {"PUT", "/api/v0.2/tasks/stream", 400},
        {"GET", "/api/v0.2/tasks/"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 404}, /* 64: valid */
        {"OPTIONS", "/api/v0.2/tasks/t1", 204},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_resp r = fx_http(f, "alice", "home", cases[i].method, cases[i].path, NULL, NULL,
                            strcmp(cases[i].method, "PUT") == 0 ? "{\"base_revision\":0,\"task\":{}}" : NULL);
        if (r.status != cases[i].status)
            fail_msg("%s %s: %d, want %d", cases[i].method, cases[i].path, r.status,
                     cases[i].status);
        if (r.status == 405)
            assert_string_equal(json_string_value(json_object_get(r.body, "error")),
                                "method_not_allowed");
        fx_resp_free(&r);
    }
    /* NULL method/path from a sloppy driver */
    fx_resp r = fx_http(f, "alice", "home", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    srv_http(f->c, NULL);
    srv_http(NULL, NULL);
    assert_int_equal(hh_revision(f, "alice", "home"), 0);
    fx_free(f);
}

/* ---- idempotency ------------------------------------------------------- */

static void test_idempotency(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_resp a = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}", "m-1");
    assert_int_equal(a.status, 200);
    /* the same request again: first result, nothing applied */
    fx_resp b = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}", "m-1");
    assert_int_equal(b.status, 200);
    assert_string_equal(a.raw, b.raw);
    fx_resp_free(&b);
    /* ... also re-serialized in another key order and spacing (fingerprint
     * of the canonical JSON) */
    b = fx_http(f, "alice", "home", "PUT", T1, NULL, "m-1",
                "{ \"task\": {\"title\": \"A\"},  \"base_revision\": 0 }");
    assert_int_equal(b.status, 200);
    assert_string_equal(a.raw, b.raw);
    fx_resp_free(&b);
    /* the same key with another body is refused, not answered with A */
    b = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"B\"}", "m-1");
    assert_int_equal(b.status, 422);
    assert_string_equal(json_string_value(json_object_get(b.body, "error")),
                        "idempotency_key_reused");
    fx_resp_free(&b);
    b = fx_http(f, "alice", "home", "PUT", T1, NULL, "m-1", "garbage");
    assert_int_equal(b.status, 422);
    fx_resp_free(&b);
    fx_resp_free(&a);
    assert_int_equal(hh_revision(f, "alice", "home"), 1);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict", NULL), 0);

    /* keys are per user: bob's m-1 is his own (here a 409: t1 exists) */
    fx_resp c = fx_put(f, "bob", "home", "t1", 0, "{\"title\":\"C\"}", "m-1");
    assert_int_equal(c.status, 409);
    fx_resp_free(&c);

    /* a retry after a 409 is answered afresh (only 2xx are stored) */
    c = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"D\"}", "m-2");
    assert_int_equal(c.status, 409);
    fx_resp_free(&c);
    c = fx_put(f, "alice", "home", "t1", 1, "{\"title\":\"D\"}", "m-2");
    assert_int_equal(c.status, 200);
    assert_int_equal(revision_of(&c), 2);
    fx_resp_free(&c);
    c = fx_put(f, "alice", "home", "t1", 1, "{\"title\":\"D\"}", "m-2");
    assert_int_equal(c.status, 200);
    assert_int_equal(revision_of(&c), 2);
    fx_resp_free(&c);

    /* DELETE keyed too */
    c = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=2", "m-3", NULL);
    assert_int_equal(c.status, 200);
    fx_resp_free(&c);
    c = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=2", "m-3", NULL);
    assert_int_equal(c.status, 200);
    assert_int_equal(revision_of(&c), 3);
    fx_resp_free(&c);
    assert_int_equal(hh_revision(f, "alice", "home"), 3);
    /* an injected failure is not stored either */
    srv_fault_fail_requests(f->c, "PUT", NULL, 1, 503, 2);
    c = fx_put(f, "alice", "home", "t5", 0, "{}", "m-4");
    assert_int_equal(c.status, 503);
    fx_resp_free(&c);
    c = fx_put(f, "alice", "home", "t5", 0, "{}", "m-4");
    assert_int_equal(c.status, 200);
    fx_resp_free(&c);
    fx_free(f);
}

/* Q-3 (IETF Idempotency-Key draft): a key is bound to method, path and
 * body.  Before: a PUT to t2 with t1's key answered 200 with t1 and never
 * created t2; a DELETE with a PUT's key answered 200 and deleted nothing. */
static void test_idempotency_key_bound_to_request(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new();
    fx_resp a = fx_put(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}", "k-a");
    assert_int_equal(a.status, 200);
    fx_resp_free(&a);
    /* PUT to another task with the same key and body: 422, t2 not created */
    fx_resp r = fx_put(f, "alice", "home", "t2", 0, "{\"title\":\"A\"}", "k-a");
    assert_int_equal(r.status, 422);
    assert_string_equal(json_string_value(json_object_get(r.body, "error")),
                        "idempotency_key_reused");
    assert_non_null(strstr(json_string_value(json_object_get(r.body, "message")),
                           "PUT /api/v0.2/tasks/t1"));
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks/t2", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    /* DELETE with the PUT's key: 422, t1 not deleted */
    r = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=1", "k-a", NULL);
    assert_int_equal(r.status, 422);
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "GET", T1, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_false(json_is_true(json_object_get(r.body, "deleted")));
    fx_resp_free(&r);
    /* a keyed DELETE is bound to its query too */
    r = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=1", "k-d", NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=2", "k-d", NULL);
    assert_int_equal(r.status, 422);
    fx_resp_free(&r);
    assert_int_equal(hh_revision(f, "alice", "home"), 2);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "idempotency_key_reused", NULL), 3);
    /* nothing was broadcast or stored for the refused ones: one event per write */
    fx_free(f);
}

/* Q-3 + LIMITS.md: records live idempotency_window (24 h), then are
 * trimmed; before, the table grew forever. */
static void test_idempotency_window_trims(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new_store(0);
    f->pol.idempotency_window_ms = 60000;
    fx_start(f);
    for (int i = 0; i < 5; i++) {
        char id[16], key[16];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(key, sizeof key, "k%d", i);
        fx_resp r = fx_put(f, "alice", "home", id, 0, "{}", key);
        assert_int_equal(r.status, 200);
        fx_resp_free(&r);
    }
    assert_int_equal(srv_store_idem_count(f->st), 5);
    /* within the window: a retry is replayed */
    f->now += 59999;
    fx_resp r = fx_put(f, "alice", "home", "t0", 0, "{}", "k0");
    assert_int_equal(r.status, 200);
    assert_int_equal(revision_of(&r), 1);
    fx_resp_free(&r);
    /* past it: the record is gone, the key is new (t0 exists: 409, as a
     * late retry of a create must be) */
    f->now += 2;
    r = fx_put(f, "alice", "home", "t0", 0, "{}", "k0");
    assert_int_equal(r.status, 409);
    fx_resp_free(&r);
    /* the next keyed write trims every expired record */
    r = fx_put(f, "alice", "home", "t9", 0, "{}", "k9");
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(srv_store_idem_count(f->st), 1);
    fx_free(f);
}

/* ---- A-3 ---------------------------------------------------------------- */

static void test_household_isolation(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new();
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"secret\"}"), 200);
    fx_resp r = fx_http(f, "eve", "other", "GET", T1, NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    r = fx_http(f, "eve", "other", "GET", "/api/v0.2/tasks", "since=0", NULL, NULL);
    assert_int_equal(revision_of(&r), 0);
    assert_int_equal(json_array_size(json_object_get(r.body, "tasks")), 0);
    fx_resp_free(&r);
    r = fx_put(f, "eve", "other", "t1", 1, "{\"title\":\"x\"}", NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    r = fx_http(f, "eve", "other", "DELETE", T1, "base_revision=1", NULL, NULL);
    assert_int_equal(r.status, 404);
    fx_resp_free(&r);
    /* the same id in another household is another task with its own counter */
    r = fx_put(f, "eve", "other", "t1", 0, "{\"title\":\"mine\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(revision_of(&r), 1);
    fx_resp_free(&r);
    /* the same idempotency key in another household is another key */
    r = fx_put(f, "alice", "home", "t2", 0, "{}", "k");
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    r = fx_put(f, "alice", "other", "t2", 0, "{}", "k");
    assert_int_equal(r.status, 200);
    assert_int_equal(revision_of(&r), 2);
    fx_resp_free(&r);
    r = fx_http(f, "alice", "home", "GET", T1, NULL, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(r.body, "title")), "secret");
    fx_resp_free(&r);
    fx_free(f);
}

/* ---- faults ------------------------------------------------------------ */

static void test_fault_fail_requests(void **state)
{
    (void)state;
    fx *f = fx_new();
    srv_fault_fail_requests(f->c, "PUT", "/api/v0.2/tasks/", 2, 503, 5);
    /* GET does not match */
    fx_resp r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        r = fx_put(f, "alice", "home", "t1", 0, "{}", "k1");
        assert_int_equal(r.status, 503);
        assert_int_equal(r.retry_after, 5);
        fx_resp_free(&r);
    }
    assert_int_equal(hh_revision(f, "alice", "home"), 0);
    r = fx_put(f, "alice", "home", "t1", 0, "{}", "k1");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.retry_after, -1);
    fx_resp_free(&r);
    /* any method, 429 without Retry-After, even before auth */
    srv_fault_fail_requests(f->c, NULL, NULL, 1, 429, -1);
    r = fx_http_raw(f, "GET", "/x", NULL, NULL, NULL, NULL, -1);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.retry_after, -1);
    fx_resp_free(&r);
    /* ignored nonsense */
    srv_fault_fail_requests(f->c, NULL, NULL, 0, 503, 1);
    srv_fault_fail_requests(f->c, NULL, NULL, 1, 42, 1);
    r = fx_http(f, "alice", "home", "GET", "/api/v0.2/tasks", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    fx_free(f);
}

static void test_fault_force_conflict(void **state)
{
    (void)state;
    fx *f = fx_new();
    srv_fault_force_conflict(f->c, "t1");
    /* the task does not exist yet: the fault waits for a write to an
     * existing version */
    assert_int_equal(fx_put_status(f, "alice", "home", "t1", 0, "{\"title\":\"A\"}"), 200);
    fx_resp r = fx_put(f, "alice", "home", "t1", 1, "{\"title\":\"B\"}", "k");
    assert_int_equal(r.status, 409);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.body, "current"), "revision")), 1);
    fx_resp_free(&r);
    assert_int_equal(fx_log_count(f, HP_LOG_WARNING, "conflict", "entity=task/t1 base=1 current=1 user=alice"), 1);
    /* used up: the retry with the same key applies */
    r = fx_put(f, "alice", "home", "t1", 1, "{\"title\":\"B\"}", "k");
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    /* on DELETE too */
    srv_fault_force_conflict(f->c, "t1");
    r = fx_http(f, "alice", "home", "DELETE", T1, "base_revision=2", NULL, NULL);
    assert_int_equal(r.status, 409);
    fx_resp_free(&r);
    fx_free(f);
}

/* ---- logging ----------------------------------------------------------- */

static void test_request_log(void **state)
{
    (void)state;
    /* checks */
    fx *f = fx_new();
    char *tok = fx_token_at(f, "alice", "home", 60);
    char q[2048], auth[2048];
    snprintf(q, sizeof q, "since=0&token=%s", tok);
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    fx_resp r = fx_http_raw(f, "GET", "/api/v0.2/tasks", q, auth, NULL, NULL, -1);
    assert_int_equal(r.status, 200);
    fx_resp_free(&r);
    assert_int_equal(fx_log_count(f, HP_LOG_INFO, "request",
                                  "method=GET path=/api/v0.2/tasks status=200 user=alice"), 1);
    assert_int_equal(fx_log_count(f, -1, NULL, "since="), 0);
    fx_assert_no_token_logged(f);
    fx_free(f);
}

/* ---- never a 5xx for bad input ------------------------------------------ */

static void rnd_text(hp_rng *g, char *buf, size_t cap, const char *alphabet)
{
    size_t n = (size_t)(hp_rng_next(g) % (cap - 1));
    size_t al = alphabet ? strlen(alphabet) : 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet ? alphabet[hp_rng_next(g) % al] : (char)(1 + hp_rng_next(g) % 255);
    buf[n] = 0;
}

static void test_fuzz_requests(void **state)
{
    (void)state;
    fx *f = fx_new();
    hp_rng g;
    hp_rng_seed(&g, 7);
    static const char *methods[] = {"GET", "PUT", "DELETE", "POST", "PATCH", "get", ""};
    static const char *paths[] = {"/api/v0.2/tasks", "/api/v0.2/tasks/t1", "/api/v0.2/tasks/t1/lock",
                                  "/api/v0.2/tasks/stream", "/api/v0.2/tasks/%00", "/"};
    static const char *frags[] = {"{", "}", "[", "]", "\"base_revision\"", "\"task\"", ":", ",",
                                  "0", "1", "-1", "null", "true", "\"title\"", "\"x\"",
                                  "\"remind_at\"", "\"2026-11-25T10:00:00Z\"", "1e400", "\"\\u0000\""};
    char *tok = fx_token_at(f, "alice", "home", 3600);
    char auth[2048];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    for (int i = 0; i < 3000; i++) {
        char body[512] = "", query[64];
        int nf = (int)(hp_rng_next(&g) % 12);
        for (int k = 0; k < nf; k++)
            strcat(body, frags[hp_rng_next(&g) % (sizeof frags / sizeof frags[0])]);
        if (hp_rng_next(&g) % 4 == 0)
            rnd_text(&g, body, sizeof body, NULL);
        rnd_text(&g, query, sizeof query, "base_revision=since&0123456789-x%");
        const char *m = methods[hp_rng_next(&g) % (sizeof methods / sizeof methods[0])];
        const char *p = paths[hp_rng_next(&g) % (sizeof paths / sizeof paths[0])];
        fx_resp r = fx_http_raw(f, m, p, query, auth, hp_rng_next(&g) % 2 ? "k" : NULL, body,
                                (int64_t)strlen(body));
        if (r.status >= 500)
            fail_msg("%s %s?%s body=%s -> %d", m, p, query, body, r.status);
        fx_resp_free(&r);
        fx_reset(f);
    }
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_refusals),
        cmocka_unit_test(test_put_create_and_server_fields),
        cmocka_unit_test(test_list_since),
        cmocka_unit_test(test_conflicts_and_cf4_warning),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_idempotency_key_bound_to_request),
        cmocka_unit_test(test_idempotency_window_trims),
        cmocka_unit_test(test_household_isolation),
        cmocka_unit_test(test_fault_fail_requests),
        cmocka_unit_test(test_fault_force_conflict),
        cmocka_unit_test(test_request_log),
        cmocka_unit_test(test_fuzz_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

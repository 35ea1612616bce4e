/*
 * test_srv_session.c - the session registry (fake_server/srv_session.c),
 * in-process with a fake clock: strict creation (ids, keys, ranges, the
 * 64 cap, taken ids), isolation (a token of one session is refused in
 * another; data and journals apart), reset (empty world, same secret),
 * restart (faults kept, counted), delete (default refused, on_retire).
 */
#include "srv_test_util.h"
#include "srv_journal.h"
#include "srv_session.h"

typedef struct world {
    fx *f;                    /* clock, env and the default store */
    srv_sessions *reg;
    int retired;
} world;

static void on_retire(void *ud, srv_session *s)
{
    (void)s;
    world *w = ud;
    w->retired++;
    /* a driver drains the outbox here (the 1001 closes) */
    hp_out it;
    while (hp_outbox_pop(srv_outbox(s->core), &it))
        hp_out_clear(&it);
}

static world *w_new(void)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->f = fx_new_store(0);
    /* WARNING: the sessions' sinks write to stderr; keep the run quiet */
    w->reg = srv_sessions_new(&w->f->env, HP_LOG_WARNING, &w->f->pol, 1.0, FX_SECRET, w->f->st);
    assert_non_null(w->reg);
    w->reg->on_retire = on_retire;
    w->reg->retire_ud = w;
    return w;
}

static void w_free(world *w)
{
    srv_sessions_free(w->reg);
    fx_free(w->f);
    free(w);
}

static srv_session *create(world *w, const char *body, int want_status, char *err)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    int st = 0;
    err[0] = '\0';
    srv_session *s = srv_session_create(w->reg, b, &st, err, 300);
    json_decref(b);
    if (want_status == 0)
        assert_non_null(s);
    else {
        assert_null(s);
        assert_int_equal(st, want_status);
    }
    return s;
}

/* One request on s's core with a token signed by secret; the status. */
static int req(srv_session *s, const char *secret, const char *method, const char *path,
               const char *body, int64_t now)
{
    char *tok = hp_jwt_mint(secret, "alice", "home", "web", now / 1000, now / 1000 + 3600);
    assert_non_null(tok);
    char auth[2048];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    free(tok);
    srv_http_req q;
    memset(&q, 0, sizeof q);
    q.id = 1;
    q.method = method;
    q.path = path;
    q.query = !strcmp(method, "GET") ? "since=0" : NULL;
    q.authorization = auth;
    q.body = body;
    q.body_len = body ? strlen(body) : 0;
    q.content_length = body ? (int64_t)strlen(body) : -1;
    srv_http(s->core, &q);
    srv_flush(s->core);
    int status = 0;
    hp_out it;
    while (hp_outbox_pop(srv_outbox(s->core), &it)) {
        if (it.kind == HP_OUT_HTTP_RESPONSE)
            status = it.status;
        hp_out_clear(&it);
    }
    return status;
}

#define PUT_BODY "{\"base_revision\": 0, \"task\": {\"title\": \"x\"}}"

static void test_create_is_strict(void **state)
{
    (void)state;
    world *w = w_new();
    char err[300];
    srv_session *a = create(w, "{}", 0, err);
    assert_true(srv_session_id_valid(a->id));
    assert_false(a->is_default);
    assert_non_null(create(w, "{\"id\": \"team-a\", \"time_scale\": 0.5, "
                              "\"policy\": {\"lock_ttl\": \"10s\"}}", 0, err));
    srv_session *t = srv_session_find(w->reg, "team-a");
    assert_non_null(t);
    assert_int_equal(t->pol.lock_ttl_ms, 5000); /* overrides first, then the scale */
    create(w, "{\"id\": \"team-a\"}", 409, err);
    create(w, "{\"id\": \"Team_A\"}", 400, err);
    create(w, "{\"id\": \"default\"}", 409, err);
    create(w, "{\"time_scale\": 0}", 400, err);
    create(w, "{\"time_scale\": \"fast\"}", 400, err);
    create(w, "{\"policy\": {\"lock_tl\": \"10s\"}}", 400, err);
    create(w, "{\"jwt_secert\": \"x\"}", 400, err);
    assert_non_null(strstr(err, "jwt_secret")); /* did you mean */
    assert_int_equal(w->reg->n, 3);
    assert_false(srv_session_id_valid(""));
    assert_false(srv_session_id_valid("a234567890123456789012345678901234"));
    while (w->reg->n < SRV_SESSIONS_MAX)
        create(w, "{}", 0, err);
    create(w, "{}", 429, err);
    w_free(w);
}

/* Sessions share nothing: data, tokens (each its own secret), journals. */
static void test_isolation(void **state)
{
    (void)state;
    world *w = w_new();
    char err[300];
    srv_session *a = create(w, "{\"id\": \"a\"}", 0, err);
    srv_session *b = create(w, "{\"id\": \"b\"}", 0, err);
    assert_string_not_equal(a->secret, b->secret);
    int64_t now = w->f->now;
    assert_int_equal(req(a, a->secret, "PUT", "/api/v0.2/tasks/t1", PUT_BODY, now), 200);
    assert_int_equal(req(b, a->secret, "GET", "/api/v0.2/tasks", NULL, now), 401);
    srv_session *d = srv_session_default(w->reg);
    assert_int_equal(req(d, a->secret, "GET", "/api/v0.2/tasks", NULL, now), 401);
    assert_int_equal(req(b, b->secret, "PUT", "/api/v0.2/tasks/t1", PUT_BODY, now), 200);
    json_t *ja = srv_session_json(a), *jb = srv_session_json(b), *jd = srv_session_json(d);
    assert_int_equal(json_array_size(json_object_get(ja, "households")), 1);
    assert_int_equal(json_array_size(json_object_get(jd, "households")), 0);
    json_decref(ja);
    json_decref(jb);
    json_decref(jd);
    /* WARNING lines (token_refused) go to their own session's journal */
    json_t *q = srv_journal_query(b->journal, 0, NULL, "log", 100);
    assert_int_equal(json_array_size(json_object_get(q, "entries")), 1);
    json_decref(q);
    q = srv_journal_query(a->journal, 0, NULL, "log", 100);
    assert_int_equal(json_array_size(json_object_get(q, "entries")), 0);
    json_decref(q);
    w_free(w);
}

static void test_reset_restart_delete(void **state)
{
    (void)state;
    world *w = w_new();
    char err[300];
    srv_session *a = create(w, "{\"id\": \"a\", \"jwt_secret\": \"a-secret-0123456789\"}", 0,
                            err);
    int64_t now = w->f->now;
    assert_int_equal(req(a, "a-secret-0123456789", "PUT", "/api/v0.2/tasks/t1", PUT_BODY, now),
                     200);
    json_t *fb = json_loads("{\"force_conflict\": {\"id\": \"t9\"}}", 0, NULL), *res = NULL;
    assert_int_equal(srv_faults_arm(a->core, fb, &res, err, sizeof err), 0);
    json_decref(res);
    json_decref(fb);
    /* restart: a new core, same data, faults kept, counted */
    int retired = w->retired;
    assert_int_equal(srv_session_restart(a), 0);
    assert_int_equal(w->retired, retired + 1);
    assert_int_equal(a->restarts, 1);
    json_t *l = srv_faults_list(a->core);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    assert_int_equal(req(a, "a-secret-0123456789", "PUT", "/api/v0.2/tasks/t1", PUT_BODY, now),
                     409); /* the task is still there at revision 1 */
    /* reset: an empty world (households, faults, journal), same secret */
    assert_int_equal(srv_session_reset(a), 0);
    assert_string_equal(a->secret, "a-secret-0123456789");
    l = srv_faults_list(a->core);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    assert_int_equal(srv_journal_count(a->journal), 0);
    assert_int_equal(req(a, "a-secret-0123456789", "PUT", "/api/v0.2/tasks/t1", PUT_BODY, now),
                     200);
    /* delete: the default one is refused; another goes with its data */
    assert_int_equal(srv_session_delete(w->reg, "default"), -1);
    assert_int_equal(srv_session_delete(w->reg, "nope"), -1);
    retired = w->retired;
    assert_int_equal(srv_session_delete(w->reg, "a"), 0);
    assert_int_equal(w->retired, retired + 1);
    assert_null(srv_session_find(w->reg, "a"));
    assert_int_equal(w->reg->n, 1);
    a = create(w, "{\"id\": \"a\"}", 0, err); /* the id is free again: an empty world */
    json_t *j = srv_session_json(a);
    assert_int_equal(json_array_size(json_object_get(j, "households")), 0);
    json_decref(j);
    w_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_is_strict),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_reset_restart_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

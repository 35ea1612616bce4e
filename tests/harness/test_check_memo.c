/*
 * test_check_memo.c - the poll memo of `requests` counts (scn_expect.c):
 * a wait_until's quiet verdict (scn_expect_holds) resumes where the last
 * poll stopped, and must never be stale.  Each case changes the journal
 * between two polls the way the simulator does (a record appended, an
 * answer's status set later, a record of another client) and checks the
 * polled verdict against the full evaluation of the same expectation
 * (scn_expect_actor, which never uses the memo), poll after poll.
 *
 * Also the log matcher's plain patterns (chk_history.c, ere_glob): words
 * with no ERE special character, joined by ".*", are decided by memmem
 * instead of regcomp/regexec, and must count exactly what regexec counts.
 *
 * Deterministic: no clock, records injected into a world (seed 1).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <regex.h>

#include "scn_internal.h"
#include "scn_run.h"
#include "hx_test_load.h"
#include "chk_history.h"

typedef struct memo_world {
    scn_scenario *s;
    json_t *trace;
    sim_world *w;
} memo_world;

static void world_open(memo_world *v)
{
    v->s = hx_test_load("m.yaml", "id: t/m\nname: m\nrules: [Q-1]\n"
                                  "clients: {alice: {}, bob: {}}\n"
                                  "steps: [{wait: 1s}]\n");
    v->trace = json_array();
    char err[128];
    v->w = sim_new(v->s, 1, v->trace, err, sizeof err);
    assert_non_null(v->w);
}

static void world_close(memo_world *v)
{
    sim_free(v->w);
    json_decref(v->trace);
    scn_free(v->s);
    scn_expect_cleanup(); /* the end of a run, as scn_run() ends one */
}

/* A journal record as sim_loop.c makes one: unanswered (status null). */
static json_t *add_req(sim_world *w, const char *from, const char *method, const char *path)
{
    json_t *j = sim_record(w, w->journal);
    json_object_set_new(j, "from", json_string(from));
    json_object_set_new(j, "method", json_string(method));
    json_object_set_new(j, "path", json_string(path));
    json_object_set_new(j, "query", json_null());
    json_object_set_new(j, "idem_key", json_null());
    json_object_set_new(j, "status", json_null());
    json_object_set_new(j, "response", json_null());
    return j;
}

/* Its answer, as sim_drain.c sets it later. */
static void answer(json_t *j, int status)
{
    json_object_set_new(j, "status", json_integer(status));
    json_object_set_new(j, "response", json_object());
}

/* The expectations polled: `actor: {requests: <form>}` each. */
static const char *const FORMS[][2] = {
    {"server", "{requests: {method: PUT, status: 200, at_least: 2}}"},
    {"server", "{requests: {method: PUT, status: 200, count: 1}}"},
    {"server", "{requests: {method: PUT, count: 2}}"},
    {"server", "{requests: {method: PUT, at_most: 1}}"},
    {"server", "{requests: 'PUT /api/v0.2/tasks/t1 409'}"},
    {"alice", "{requests: {method: PUT, status: 200, count: 1}}"},
    {"bob", "{requests: {method: DELETE, at_least: 1}}"},
    {"server", "{requests: {method: PUT, path: '/api/v0.2/tasks/t*', status: 200, count: 2}}"},
};
#define NFORMS (sizeof FORMS / sizeof FORMS[0])

typedef struct polled {
    scn_node *n[NFORMS];
} polled;

static void forms_parse(polled *p)
{
    for (size_t i = 0; i < NFORMS; i++) {
        scn_diags d = {0};
        const char *t = FORMS[i][1];
        assert_int_equal(scn_yaml_parse("f.yaml", t, strlen(t), &p->n[i], &d), 0);
        scn_diags_free(&d);
    }
}

static void forms_free(polled *p)
{
    for (size_t i = 0; i < NFORMS; i++)
        scn_node_free(p->n[i]);
}

/* Every form polled twice (a poll that changes nothing, then a repeat)
 * equals its full evaluation; returns the verdicts as bits. */
static unsigned poll_all(sim_world *w, const polled *p)
{
    scn_window win = {0, INT64_MIN};
    unsigned bits = 0;
    for (size_t i = 0; i < NFORMS; i++) {
        scn_outcome o = {0};
        int full = scn_expect_actor(w, FORMS[i][0], p->n[i], &win, NULL, NULL, &o);
        scn_outcome_clear(&o);
        int q1 = scn_expect_holds(w, FORMS[i][0], p->n[i], &win);
        int q2 = scn_expect_holds(w, FORMS[i][0], p->n[i], &win);
        if (q1 != full || q2 != full)
            fail_msg("form %zu (%s: %s): polled %d then %d, full evaluation %d", i, FORMS[i][0],
                     FORMS[i][1], q1, q2, full);
        bits |= (unsigned)full << i;
    }
    return bits;
}

/* A change between polls is seen: appended records, answers set later,
 * a matching record that stops matching once answered, other clients. */
static void test_change_between_polls_is_seen(void **st)
{
    (void)st;
    memo_world v;
    polled p;
    world_open(&v);
    forms_parse(&p);
    unsigned b0 = poll_all(v.w, &p);
    assert_int_equal(b0 & 1u, 0);          /* no PUT 200 yet */
    assert_int_equal(b0 & (1u << 3), 1u << 3); /* at most one PUT */
    json_t *a = add_req(v.w, "alice", "PUT", "/api/v0.2/tasks/t1");
    unsigned b1 = poll_all(v.w, &p);
    assert_int_equal(b1 & (1u << 1), 0); /* unanswered: no status 200 */
    answer(a, 200);                      /* the answer arrives between polls */
    unsigned b2 = poll_all(v.w, &p);
    assert_int_equal(b2 & (1u << 1), 1u << 1);
    assert_int_equal(b2 & (1u << 5), 1u << 5); /* alice's own */
    json_t *b = add_req(v.w, "bob", "PUT", "/api/v0.2/tasks/t2");
    unsigned b3 = poll_all(v.w, &p);
    assert_int_equal(b3 & (1u << 2), 1u << 2); /* two PUTs, one unanswered */
    assert_int_equal(b3 & (1u << 3), 0);       /* more than one PUT */
    answer(b, 200);
    unsigned b4 = poll_all(v.w, &p);
    assert_int_equal(b4 & 1u, 1u);             /* two PUT 200 */
    assert_int_equal(b4 & (1u << 1), 0);       /* no longer exactly one */
    assert_int_equal(b4 & (1u << 5), 1u << 5); /* bob's does not count for alice */
    assert_int_equal(b4 & (1u << 7), 1u << 7);
    json_t *c = add_req(v.w, "alice", "PUT", "/api/v0.2/tasks/t1");
    assert_int_equal(poll_all(v.w, &p) & (1u << 4), 0);
    answer(c, 409);
    assert_int_equal(poll_all(v.w, &p) & (1u << 4), 1u << 4);
    assert_int_equal(poll_all(v.w, &p) & (1u << 6), 0);
    add_req(v.w, "alice", "DELETE", "/api/v0.2/tasks/t3"); /* alice's, not bob's */
    assert_int_equal(poll_all(v.w, &p) & (1u << 6), 0);
    add_req(v.w, "bob", "DELETE", "/api/v0.2/tasks/t3"); /* never answered */
    assert_int_equal(poll_all(v.w, &p) & (1u << 6), 1u << 6);
    for (int i = 0; i < 40; i++) { /* many unanswered between answered ones */
        json_t *r = add_req(v.w, i % 2 ? "alice" : "bob", "PUT", "/api/v0.2/tasks/t9");
        poll_all(v.w, &p);
        if (i % 3)
            answer(r, i % 5 ? 200 : 409);
        poll_all(v.w, &p);
    }
    forms_free(&p);
    world_close(&v);
}

/* A new run starts from nothing: the memo of the last world's polls is
 * not read for the next world's, even with the same expectation nodes. */
static void test_new_world_starts_over(void **st)
{
    (void)st;
    polled p;
    forms_parse(&p);
    memo_world v;
    world_open(&v);
    answer(add_req(v.w, "alice", "PUT", "/api/v0.2/tasks/t1"), 200);
    answer(add_req(v.w, "alice", "PUT", "/api/v0.2/tasks/t2"), 200);
    assert_int_equal(poll_all(v.w, &p) & 1u, 1u);
    world_close(&v);
    world_open(&v); /* perhaps at the same address: an empty journal */
    assert_int_equal(poll_all(v.w, &p) & 1u, 0);
    answer(add_req(v.w, "alice", "PUT", "/api/v0.2/tasks/t1"), 200);
    assert_int_equal(poll_all(v.w, &p) & 1u, 0);
    world_close(&v);
    forms_free(&p);
}

/* chk_log with a plain pattern counts what regexec counts, on records
 * where the words sit in msg, in fields, across the space between them,
 * in order, out of order, overlapping, or nowhere. */
static void test_plain_pattern_counts_as_regexec(void **st)
{
    (void)st;
    static const char *const msgs[][2] = {
        {"conflict", "entity=task/t1 base=1 current=2 user=alice"},
        {"conflict", "entity=task/t10 base=1 current=3 user=bob"},
        {"auth", "reason=\"unknown message type\" code=4002"},
        {"stream", "user=bob hello=3 replayed=0"},
        {"x", ""},
        {"", "caf\xc3\xa9 =/-,"},
    };
    static const char *const pats[] = {"entity=task/t1",   "base=1 current=2", "conflict entity",
                                       "user=bob hello=3 ", "reason=\"unknown", "t1",
                                       "x ",               "caf\xc3\xa9",       "=/-,",
                                       "absent",           "entity=task/t1.*user=alice",
                                       "conflict.*base=1.*current=3", ".*", "a.*", ".*user=bob",
                                       "t1.*t1",           "t1.*t10",       "user=.*=",
                                       "hello=3.*hello=3", "x.*x"};
    chk_logs logs = {0};
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        chk_logrec r = {.t = (double)i, .n = i + 1, .level = 1, .actor = "server",
                        .msg = msgs[i][0], .fields = msgs[i][1], .line = "line"};
        chk_logs_add(&logs, &r);
    }
    for (size_t p = 0; p < sizeof pats / sizeof pats[0]; p++) {
        regex_t re;
        assert_int_equal(regcomp(&re, pats[p], REG_EXTENDED | REG_NOSUB), 0);
        long want = 0;
        for (size_t i = 0; i < logs.n; i++) {
            char *subj = scn_asprintf("%s %s", logs.v[i].msg, logs.v[i].fields);
            want += regexec(&re, subj, 0, NULL, 0) == 0;
            free(subj);
        }
        regfree(&re);
        for (long d = 0; d < 2; d++) {
            char *y = scn_asprintf("{pattern: '%s', count: %ld}", pats[p], want + d);
            scn_node *m = NULL;
            scn_diags dg = {0};
            assert_int_equal(scn_yaml_parse("p.yaml", y, strlen(y), &m, &dg), 0);
            scn_diags_free(&dg);
            scn_outcome o = {0};
            int ok = chk_log(&logs, NULL, m, NULL, &o);
            if (ok != (d == 0))
                fail_msg("pattern '%s': regexec counts %ld, chk_log %s count %ld", pats[p], want,
                         ok ? "accepts" : "refuses", want + d);
            scn_outcome_clear(&o);
            scn_node_free(m);
            free(y);
        }
    }
    chk_logs_free(&logs);
    scn_expect_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_between_polls_is_seen),
        cmocka_unit_test(test_new_world_starts_over),
        cmocka_unit_test(test_plain_pattern_counts_as_regexec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

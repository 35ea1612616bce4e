/*
 * test_checker_sim.c - the checker's rejection power where it needs a
 * world: the state expectations (scn_expect_state.c), marks and the
 * verdict of a scenario (scn_run.c), and the invariants
 * (chk_invariants.c) at their exact boundaries.  Each case is a scenario
 * or an injected record the checker must FAIL on, next to the nearest one
 * it must PASS, so a weakened comparison (a late reconnect accepted, one
 * connection too many, a mark ignored, a repeated revision, a token's
 * signature alone in a log line...) is caught even though the reference
 * programs never produce such input.  The mutants they kill are
 * tests/mutation/catalogue/checker.txt.
 *
 * Deterministic: simulated time only (seed 1), no wall-clock assertion.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scn_internal.h"
#include "scn_run.h"
#include "hx_test_load.h"
#include "hp_alloc.h"


/* Runs a scenario of the header below plus `steps`; 1 when it passed.
 * On FAIL, each NULL-terminated word must be in the failure text. */
static const char HEAD[] = "id: t/c\nname: c\nrules: [WS-6]\nheal: false\n"
                           "clients: {alice: {}}\nsteps:\n"
                           "  - alice: connect\n"
                           "  - wait_until: {alice: {connection: ready}, timeout: 1m}\n";

static int run_steps(const char *steps, char **failure)
{
    char *text = scn_asprintf("%s%s", HEAD, steps);
    scn_scenario *s = hx_test_load("c.yaml", text);
    scn_run_opts o = {.seed = 1, .mode = "sim"};
    scn_result r;
    if (scn_run(s, &o, &r))
        fail_msg("runtime error: %s", r.failure ? r.failure : "?");
    int ok = r.passed;
    if (failure)
        *failure = ok ? NULL : strdup(r.failure ? r.failure : "");
    scn_result_clear(&r);
    scn_free(s);
    free(text);
    return ok;
}

static void must_fail(const char *steps, ...)
{
    char *why = NULL;
    if (run_steps(steps, &why))
        fail_msg("this must fail and passed:\n%s", steps);
    va_list ap;
    va_start(ap, steps);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        if (!strstr(why, w)) {
            print_error("failure: %s\n", why);
            fail_msg("the failure does not say '%s'", w);
        }
    va_end(ap);
    free(why);
}

static void must_pass(const char *steps)
{
    char *why = NULL;
    if (!run_steps(steps, &why)) {
        print_error("failure: %s\n", why);
        free(why);
        fail_msg("this must pass and failed:\n%s", steps);
    }
}

/* ---- state expectations -------------------------------------------------- */

/* The server down: attempts after 1, 3, 9 s (WS-6).  A delay later than
 * wanted by more than the tolerance fails, as an earlier one does. */
static void test_reconnect_delays_both_bounds(void **st)
{
    (void)st;
    static const char down[] = "  - mark: down\n  - server: crash\n  - wait: 20s\n";
    char *s;
    must_pass((s = scn_asprintf("%s  - expect: {since: down, alice: {reconnect_delays: [1s, 3s, "
                                "9s]}}\n", down)));
    free(s);
    must_fail((s = scn_asprintf("%s  - expect: {since: down, alice: {reconnect_delays: [500ms, "
                                "3s]}}\n", down)),
              "alice.reconnect_delays", "tolerance 100ms", NULL);
    free(s);
    must_fail((s = scn_asprintf("%s  - expect: {since: down, alice: {reconnect_delays: [1s, "
                                "3s, 5s]}}\n", down)),
              "alice.reconnect_delays", NULL);
    free(s);
    must_fail((s = scn_asprintf("%s  - expect: {since: down, alice: {reconnect_delays: [1s, "
                                "5s]}}\n", down)),
              "alice.reconnect_delays", NULL);
    free(s);
    must_fail((s = scn_asprintf("%s  - expect: {since: down, alice: {reconnect_delays: {delays: "
                                "[1s, 2s], tolerance: 500ms}}}\n", down)),
              "tolerance 500ms", NULL);
    free(s);
}

static void test_connections_exact(void **st)
{
    (void)st;
    must_pass("  - expect: {server: {connections: 1}}\n");
    must_fail("  - expect: {server: {connections: 0}}\n", "server.connections", "0 connections",
              NULL);
    must_fail("  - expect: {server: {connections: {user: alice, count: 0}}}\n",
              "0 connections of alice", NULL);
    must_fail("  - expect: {server: {connections: 2}}\n", "2 connections", NULL);
}

/* Every failed assertion of a block fails the scenario, also one after a
 * passing one, and the first failure is the one reported. */
static void test_failure_in_a_block_fails_the_scenario(void **st)
{
    (void)st;
    must_fail("  - expect: {alice: {connection: ready, queue: 3}}\n", "alice.queue",
              "length 3", NULL);
    must_fail("  - expect: {alice: {queue: 3, connection: ready}}\n", "alice.queue", NULL);
    must_fail("  - expect: {alice: {connection: ready}, server: {connections: 5}}\n",
              "server.connections", NULL);
    must_fail("  - expect_log: {actor: server, message: heartbeat_timeout}\n",
              "server.log", NULL);
    must_pass("  - expect: {alice: {connection: ready, queue: 0}}\n");
}

/* since: a mark bounds the window: READY came before it. */
static void test_mark_bounds_the_window(void **st)
{
    (void)st;
    static const char m[] = "  - wait: 1s\n  - mark: m\n  - wait: 1s\n";
    char *s;
    must_pass((s = scn_asprintf("%s  - expect: {since: m, alice: {frames: {type: READY, count: "
                                "0}}}\n", m)));
    free(s);
    must_fail((s = scn_asprintf("%s  - expect: {since: m, alice: {frames: {type: READY}}}\n", m)),
              "alice.frames", "at least 1", NULL);
    free(s);
    must_fail((s = scn_asprintf("%s  - expect_log: {actor: server, since: m, message: "
                                "ws_open}\n", m)),
              "server.log", NULL);
    free(s);
    must_pass("  - expect: {alice: {frames: {type: READY, count: 1}}}\n");
}

/* ---- invariants at their boundaries --------------------------------------- */

typedef struct inv_world {
    scn_scenario *s;
    json_t *trace;
    sim_world *w;
} inv_world;

static void inv_open(inv_world *v)
{
    v->s = hx_test_load("v.yaml", "id: t/v\nname: v\nrules: [Q-1]\n"
                          "clients: {alice: {}}\n"
                          "steps: [{wait: 1s}]\n");
    v->trace = json_array();
    char err[128];
    v->w = sim_new(v->s, 1, v->trace, err, sizeof err);
    assert_non_null(v->w);
}

static void inv_close(inv_world *v)
{
    sim_free(v->w);
    json_decref(v->trace);
    scn_free(v->s);
}

/* The verdict of one invariant; its detail in *why (malloc'd) on FAIL. */
static int inv_passed(sim_world *w, int healed, const char *name, char **detail)
{
    scn_result r = {0};
    r.checks = json_array();
    free(chk_invariants(w, &r, healed));
    int passed = -1;
    size_t i;
    json_t *c;
    json_array_foreach(r.checks, i, c)
    {
        if (!strcmp(json_string_value(json_object_get(c, "name")), name)) {
            passed = json_is_true(json_object_get(c, "passed"));
            if (detail)
                *detail = strdup(json_string_value(json_object_get(c, "detail")));
        }
    }
    json_decref(r.checks);
    if (passed < 0)
        fail_msg("no check %s", name);
    return passed;
}

static void add_event(sim_world *w, const char *id, long rev)
{
    json_t *a = sim_record(w, w->cl[0].events);
    json_object_set_new(a, "event_type", json_string("TASK_UPDATED"));
    json_object_set_new(a, "entity_id", json_string(id));
    json_object_set_new(a, "revision", json_integer(rev));
}

static void test_entity_order_repeated_revision(void **st)
{
    (void)st;
    inv_world v;
    inv_open(&v);
    add_event(v.w, "t3", 4);
    add_event(v.w, "t3", 5);
    assert_true(inv_passed(v.w, 1, "invariant:entity_order", NULL));
    add_event(v.w, "t3", 5); /* the same revision applied twice */
    char *d = NULL;
    assert_false(inv_passed(v.w, 1, "invariant:entity_order", &d));
    assert_non_null(strstr(d, "t3"));
    free(d);
    inv_close(&v);
}

static void add_log(sim_world *w, const char *actor, int level, const char *msg, const char *line)
{
    sim_log_record(w, actor, level, msg, "", line);
}

static void test_token_signature_alone(void **st)
{
    (void)st;
    inv_world v;
    inv_open(&v);
    const char *tok = json_string_value(json_array_get(v.w->tokens, 0));
    assert_non_null(tok);
    const char *sig = strrchr(tok, '.');
    assert_non_null(sig);
    assert_true(strlen(sig) > 9);
    char *line = scn_asprintf("INFO alice auth sig=%s", sig + 1);
    add_log(v.w, "alice", 1, "auth", "INFO alice auth ok");
    assert_true(inv_passed(v.w, 1, "invariant:no_token_in_logs", NULL));
    add_log(v.w, "alice", 1, "auth", line); /* the signature, not the whole token */
    char *d = NULL;
    assert_false(inv_passed(v.w, 1, "invariant:no_token_in_logs", &d));
    assert_non_null(strstr(d, "a token appears in a alice log record"));
    free(d);
    free(line);
    inv_close(&v);
}

static void test_conflicts_logged_at_warning(void **st)
{
    (void)st;
    inv_world v;
    inv_open(&v);
    json_t *j = sim_record(v.w, v.w->journal);
    json_object_set_new(j, "from", json_string("alice"));
    json_object_set_new(j, "method", json_string("PUT"));
    json_object_set_new(j, "path", json_string("/api/v0.2/tasks/t1"));
    json_object_set_new(j, "status", json_integer(409));
    /* both sides logged it, but at INFO: not the WARNING CF-4 wants */
    add_log(v.w, "server", 1, "conflict", "INFO conflict entity=task/t1");
    v.w->cl[0].conflicts_received = 1;
    add_log(v.w, "alice", 1, "conflict", "INFO conflict entity=task/t1");
    char *d = NULL;
    assert_false(inv_passed(v.w, 1, "invariant:conflicts_logged", &d));
    assert_non_null(strstr(d, "the server sent 1 409s but logged 0 WARNING"));
    free(d);
    add_log(v.w, "server", 2, "conflict", "WARNING conflict entity=task/t1");
    assert_false(inv_passed(v.w, 1, "invariant:conflicts_logged", &d)); /* alice: still INFO */
    assert_non_null(strstr(d, "alice received 1 409s but logged 0 WARNING"));
    free(d);
    add_log(v.w, "alice", 2, "conflict", "WARNING conflict entity=task/t1");
    assert_true(inv_passed(v.w, 1, "invariant:conflicts_logged", NULL));
    inv_close(&v);
}

static void test_queue_bound_exact_and_unhealed(void **st)
{
    (void)st;
    inv_world v;
    inv_open(&v);
    v.w->cl[0].max_queue = v.w->policy.queue_max;
    assert_true(inv_passed(v.w, 1, "invariant:queue_bounded", NULL));
    v.w->cl[0].max_queue = v.w->policy.queue_max + 1;
    assert_false(inv_passed(v.w, 1, "invariant:queue_bounded", NULL));
    /* heal: false skips edits_kept only: the bounds still hold */
    char *d = NULL;
    assert_false(inv_passed(v.w, 0, "invariant:queue_bounded", &d));
    assert_non_null(strstr(d, "queue reached"));
    free(d);
    assert_true(inv_passed(v.w, 0, "invariant:edits_kept", &d));
    assert_non_null(strstr(d, "skipped (heal: false)"));
    free(d);
    inv_close(&v);
}

int main(void)
{
    /* The simulator's allocator, as in hp-harness (hp_alloc.h). */
    hp_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconnect_delays_both_bounds),
        cmocka_unit_test(test_connections_exact),
        cmocka_unit_test(test_failure_in_a_block_fails_the_scenario),
        cmocka_unit_test(test_mark_bounds_the_window),
        cmocka_unit_test(test_entity_order_repeated_revision),
        cmocka_unit_test(test_token_signature_alone),
        cmocka_unit_test(test_conflicts_logged_at_warning),
        cmocka_unit_test(test_queue_bound_exact_and_unhealed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

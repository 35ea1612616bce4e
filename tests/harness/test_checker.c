/*
 * test_checker.c - the checker's rejection power: the matcher of history,
 * log, count and list expectations (harness/check/chk_history.c, shared by
 * sim and real mode) and the JSON subset (scn_expect.c), fed known-bad
 * records.  The reference programs are correct, so the scenario suite
 * cannot show a checker that got weaker (a count read as "at least", an
 * `exactly` list read as a prefix, a window bound dropped...); these cases
 * can.  Each asserts the FAIL and the words of its message, and most pair
 * it with the nearest input that must PASS, so a checker that fails
 * everything does not pass either.  The mutants they kill are
 * tests/mutation/catalogue/checker.txt.
 *
 * Inputs: expectation nodes parsed from YAML text, records from JSON text
 * in the shape chk_history.h documents.  No world, no clock.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <ftw.h>
#include <sys/stat.h>

#include "chk_history.h"
#include "hp_jdump.h"
#include "scn_expect_int.h"
#include "scn_internal.h"

/* ---- helpers ------------------------------------------------------------- */

static scn_node *yaml(const char *text)
{
    scn_diags d = {0};
    scn_node *n = NULL;
    if (scn_yaml_parse("t.yaml", text, strlen(text), &n, &d) || !n) {
        scn_diags_print(&d, stderr);
        fail_msg("bad YAML in the test: %s", text);
    }
    scn_diags_free(&d);
    return n;
}

static json_t *recs(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad JSON in the test (%s): %s", e.text, text);
    return j;
}

/* The verdict of a history expectation; on FAIL, "expected ... got ..."
 * in msg (malloc'd, or NULL on PASS). */
static int hist(hist_kind k, const char *records, const char *expect, const chk_window *win,
                const chk_opts *opts, char **msg)
{
    json_t *r = recs(records);
    scn_node *n = yaml(expect);
    scn_outcome o = {0};
    chk_history(k, r, n, win, opts, &o);
    int ok = o.ok;
    if (msg)
        *msg = ok ? NULL
                  : scn_asprintf("expected %s, got %s", o.expected ? o.expected : "?",
                                 o.actual ? o.actual : "?");
    scn_outcome_clear(&o);
    scn_node_free(n);
    json_decref(r);
    return ok;
}

/* A FAIL whose message contains every one of the NULL-terminated words. */
static void fails_with(hist_kind k, const char *records, const char *expect,
                       const chk_window *win, const chk_opts *opts, ...)
{
    char *msg = NULL;
    if (hist(k, records, expect, win, opts, &msg))
        fail_msg("'%s' passed on %s; it must fail", expect, records);
    va_list ap;
    va_start(ap, opts);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        if (!strstr(msg, w)) {
            print_error("message: %s\n", msg);
            fail_msg("the failure of '%s' does not say '%s'", expect, w);
        }
    va_end(ap);
    free(msg);
}

static void passes(hist_kind k, const char *records, const char *expect, const chk_window *win,
                   const chk_opts *opts)
{
    char *msg = NULL;
    if (!hist(k, records, expect, win, opts, &msg)) {
        print_error("%s\n", msg);
        free(msg);
        fail_msg("'%s' failed on %s; it must pass", expect, records);
    }
}

static const char TWO_UPDATES[] =
    "[{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\",\"revision\":3},"
    " {\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\",\"revision\":4}]";

/* ---- quantities ------------------------------------------------------------ */

static void test_count_is_exact(void **st)
{
    (void)st;
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, count: 1}", NULL, NULL,
               "exactly 1 matching", "2 matching", NULL);
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, count: 3}", NULL, NULL,
               "exactly 3", NULL);
    passes(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, count: 2}", NULL, NULL);
    /* count: 0, the negative form, fails on one record */
    fails_with(H_RECEIVED, TWO_UPDATES, "{entity_id: t1, revision: 4, count: 0}", NULL, NULL,
               "exactly 0", "1 matching", NULL);
    passes(H_RECEIVED, TWO_UPDATES, "{entity_id: t1, revision: 5, count: 0}", NULL, NULL);
}

static void test_at_least_at_most_bounds(void **st)
{
    (void)st;
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, at_most: 1}", NULL, NULL,
               "at most 1", "2 matching", NULL);
    passes(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, at_most: 2}", NULL, NULL);
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, at_least: 3}", NULL, NULL,
               "at least 3", NULL);
    passes(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, at_least: 2}", NULL, NULL);
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_UPDATED, at_least: 3, at_most: 5}",
               NULL, NULL, "at least 3 and at most 5", NULL);
}

static void test_default_quantity_is_at_least_one(void **st)
{
    (void)st;
    /* a mapping and a word without a quantity: at least one match */
    fails_with(H_RECEIVED, TWO_UPDATES, "{event_type: TASK_DELETED}", NULL, NULL,
               "at least 1 matching", "0 matching", NULL);
    fails_with(H_RECEIVED, TWO_UPDATES, "TASK_UPDATED t9", NULL, NULL, "at least 1", NULL);
    fails_with(H_RECEIVED, "[]", "TASK_UPDATED", NULL, NULL, "at least 1", NULL);
    passes(H_RECEIVED, TWO_UPDATES, "TASK_UPDATED t1", NULL, NULL);
}

static void count_of(const char *val, long n, int want_ok, const char *words)
{
    scn_node *v = yaml(val);
    scn_outcome o = {0};
    chk_count(v, n, "connect attempts", &o);
    if (o.ok != want_ok)
        fail_msg("chk_count(%s, %ld): %s, expected %s", val, n, o.ok ? "PASS" : "FAIL",
                 want_ok ? "PASS" : "FAIL");
    if (!o.ok && words && !strstr(o.expected, words))
        fail_msg("chk_count(%s, %ld) expected '%s', not '%s'", val, n, o.expected, words);
    scn_outcome_clear(&o);
    scn_node_free(v);
}

static void test_chk_count(void **st)
{
    (void)st;
    count_of("3", 4, 0, "exactly 3 connect attempts");
    count_of("3", 2, 0, "exactly 3");
    count_of("3", 3, 1, NULL);
    count_of("0", 1, 0, "exactly 0");
    count_of("{count: 3}", 4, 0, "exactly 3");
    count_of("{at_most: 2}", 3, 0, "at most 2");
    count_of("{at_least: 2}", 1, 0, "at least 2");
    count_of("{at_least: 2}", 2, 1, NULL);
}

/* ---- sequences --------------------------------------------------------------- */

static const char FRAMES[] = "[{\"from\":\"server\",\"type\":\"READY\"},"
                             " {\"from\":\"server\",\"type\":\"HEARTBEAT\"},"
                             " {\"from\":\"server\",\"type\":\"TASK_UPDATED\"}]";

static void test_exactly_is_the_whole_window(void **st)
{
    (void)st;
    fails_with(H_FRAMES, FRAMES, "{exactly: [READY, HEARTBEAT]}", NULL, NULL,
               "exactly", "1 more than expected", NULL);
    fails_with(H_FRAMES, FRAMES, "{exactly: [HEARTBEAT, TASK_UPDATED]}", NULL, NULL,
               "no match for item 1", NULL);
    fails_with(H_FRAMES, FRAMES, "{exactly: [READY, TASK_UPDATED]}", NULL, NULL,
               "no match for item 2", NULL);
    fails_with(H_FRAMES, "[]", "{exactly: [READY]}", NULL, NULL, "no match for item 1", NULL);
    passes(H_FRAMES, FRAMES, "{exactly: [READY, HEARTBEAT, TASK_UPDATED]}", NULL, NULL);
    passes(H_FRAMES, "[]", "{exactly: []}", NULL, NULL);
}

static void test_in_order_list(void **st)
{
    (void)st;
    /* order counts */
    fails_with(H_FRAMES, FRAMES, "[TASK_UPDATED, READY]", NULL, NULL, "in order",
               "no match for item 2", NULL);
    /* one record cannot match two items */
    fails_with(H_FRAMES, FRAMES, "[HEARTBEAT, HEARTBEAT]", NULL, NULL, "no match for item 2",
               NULL);
    fails_with(H_RECEIVED, TWO_UPDATES,
               "[{entity_id: t1, revision: 4}, {entity_id: t1, revision: 3}]", NULL, NULL,
               "no match for item 2", NULL);
    /* others may come between */
    passes(H_FRAMES, FRAMES, "[READY, TASK_UPDATED]", NULL, NULL);
    passes(H_RECEIVED, TWO_UPDATES, "[TASK_UPDATED t1, TASK_UPDATED t1]", NULL, NULL);
}

/* ---- the window ---------------------------------------------------------------- */

static void test_window_bounds(void **st)
{
    (void)st;
    const char *r = "[{\"type\":\"OFFLINE_LONG\",\"n\":3,\"t\":1000},"
                    " {\"type\":\"OFFLINE_LONG\",\"n\":8,\"t\":5000},"
                    " {\"type\":\"OFFLINE_LONG\",\"n\":9,\"t\":9000}]";
    chk_window by_t = {{"n", "t"}, {0, 5000}}; /* within: from t = 5000 on */
    fails_with(H_NOTIFIED, r, "{type: OFFLINE_LONG, at_least: 3}", &by_t, NULL, "at least 3",
               NULL);
    fails_with(H_NOTIFIED, r, "{type: OFFLINE_LONG, count: 1}", &by_t, NULL, "exactly 1", NULL);
    passes(H_NOTIFIED, r, "{type: OFFLINE_LONG, count: 2}", &by_t, NULL);
    chk_window by_n = {{"n", "t"}, {9, 0}}; /* since: a mark at n = 9 */
    fails_with(H_NOTIFIED, r, "{type: OFFLINE_LONG, count: 2}", &by_n, NULL, "exactly 2",
               NULL);
    passes(H_NOTIFIED, r, "{type: OFFLINE_LONG, count: 1}", &by_n, NULL);
    chk_window t_only = {{NULL, "t"}, {0, 9001}}; /* the second key alone */
    fails_with(H_NOTIFIED, r, "OFFLINE_LONG", &t_only, NULL, "at least 1", NULL);
    passes(H_NOTIFIED, r, "{type: OFFLINE_LONG, count: 3}", NULL, NULL);
}

/* ---- fields of a record pattern ---------------------------------------------- */

static void test_word_forms_use_every_word(void **st)
{
    (void)st;
    const char *req = "[{\"method\":\"PUT\",\"path\":\"/api/v0.2/tasks/t1\",\"status\":200,"
                      "\"from\":\"alice\"}]";
    fails_with(H_REQUESTS, req, "PUT /api/v0.2/tasks/t1 409", NULL, NULL,
               "PUT /api/v0.2/tasks/t1 200 (alice)", NULL);
    passes(H_REQUESTS, req, "PUT /api/v0.2/tasks/t1 200", NULL, NULL);
    fails_with(H_REQUESTS, req, "PUT /api/v0.2/tasks/t2", NULL, NULL, "at least 1", NULL);
    fails_with(H_RECEIVED, TWO_UPDATES, "TASK_UPDATED t2", NULL, NULL, "TASK_UPDATED t1 r3",
               NULL);
    fails_with(H_NOTIFIED, "[{\"type\":\"CONFLICT\",\"entity_id\":\"t1\"}]", "CONFLICT t2", NULL,
               NULL, "at least 1", NULL);
    fails_with(H_CLOSED, "[{\"code\":4008,\"by\":\"server\"}]", "4001", NULL, NULL,
               "4008 by server", NULL);
}

static void test_path_query(void **st)
{
    (void)st;
    const char *noq = "[{\"method\":\"GET\",\"path\":\"/api/v0.2/tasks\",\"query\":\"\","
                      "\"status\":200,\"from\":\"alice\"}]";
    const char *q5 = "[{\"method\":\"GET\",\"path\":\"/api/v0.2/tasks\",\"query\":\"since=5\","
                     "\"status\":200,\"from\":\"alice\"}]";
    const char *pat = "{method: GET, path: \"/api/v0.2/tasks?since=0\"}";
    /* a source that records queries: a request without one, or with
     * another, does not match */
    fails_with(H_REQUESTS, noq, pat, NULL, NULL, "at least 1", NULL);
    fails_with(H_REQUESTS, q5, pat, NULL, NULL, "at least 1", NULL);
    passes(H_REQUESTS, q5, "{method: GET, path: \"/api/v0.2/tasks?since=*\"}", NULL, NULL);
    /* a source without queries (A-4, CHK_NO_QUERY): only the path is checked */
    chk_opts nq = {CHK_NO_QUERY, NULL, NULL};
    passes(H_REQUESTS, noq, pat, NULL, &nq);
    fails_with(H_REQUESTS, q5, pat, NULL, &nq, "at least 1", NULL);
}

static void test_idem_key_forms(void **st)
{
    (void)st;
    const char *keyed = "[{\"method\":\"PUT\",\"path\":\"/p\",\"status\":200,\"idem_key\":\"k1\"}]";
    const char *bare = "[{\"method\":\"PUT\",\"path\":\"/p\",\"status\":200}]";
    fails_with(H_REQUESTS, keyed, "{method: PUT, idem_key: false}", NULL, NULL, "at least 1",
               NULL);
    fails_with(H_REQUESTS, bare, "{method: PUT, idem_key: true}", NULL, NULL, "at least 1",
               NULL);
    passes(H_REQUESTS, bare, "{method: PUT, idem_key: false}", NULL, NULL);
    passes(H_REQUESTS, keyed, "{method: PUT, idem_key: true}", NULL, NULL);
    fails_with(H_REQUESTS, keyed, "{method: PUT, idem_key: k2}", NULL, NULL, "at least 1",
               NULL);
}

static void test_same_idem_key(void **st)
{
    (void)st;
    const char *one_bare = "[{\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k1\"},"
                           " {\"method\":\"PUT\",\"path\":\"/p\"}]";
    fails_with(H_REQUESTS, one_bare, "{method: PUT, count: 2, same_idem_key: true}", NULL, NULL,
               "sharing one Idempotency-Key", "a request without Idempotency-Key", NULL);
    const char *bare_first = "[{\"method\":\"PUT\",\"path\":\"/p\"},"
                             " {\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k1\"}]";
    fails_with(H_REQUESTS, bare_first, "{method: PUT, count: 2, same_idem_key: true}", NULL,
               NULL, "a request without Idempotency-Key", NULL);
    const char *two = "[{\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k1\"},"
                      " {\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k2\"}]";
    fails_with(H_REQUESTS, two, "{method: PUT, count: 2, same_idem_key: true}", NULL, NULL,
               "different Idempotency-Keys", NULL);
    const char *same = "[{\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k1\"},"
                       " {\"method\":\"PUT\",\"path\":\"/p\",\"idem_key\":\"k1\"}]";
    passes(H_REQUESTS, same, "{method: PUT, count: 2, same_idem_key: true}", NULL, NULL);
}

static void test_conflict_fields_as_set(void **st)
{
    (void)st;
    const char *n = "[{\"type\":\"CONFLICT\",\"entity_id\":\"t1\",\"fields\":[\"title\",\"notes\"]}]";
    fails_with(H_NOTIFIED, n, "{type: CONFLICT, fields: [title]}", NULL, NULL, "at least 1",
               NULL);
    fails_with(H_NOTIFIED, n, "{type: CONFLICT, fields: [title, notes, due_at]}", NULL, NULL,
               "at least 1", NULL);
    fails_with(H_NOTIFIED, n, "{type: CONFLICT, fields: [title, due_at]}", NULL, NULL,
               "at least 1", NULL);
    passes(H_NOTIFIED, n, "{type: CONFLICT, fields: [notes, title]}", NULL, NULL);
}

static void test_lost_frames(void **st)
{
    (void)st;
    const char *lost = "[{\"from\":\"server\",\"type\":\"HEARTBEAT\",\"_trace\":{\"lost\":true}}]";
    const char *lost_real = "[{\"from\":\"server\",\"type\":\"HEARTBEAT\",\"lost\":true}]";
    const char *kept = "[{\"from\":\"server\",\"type\":\"HEARTBEAT\"}]";
    fails_with(H_FRAMES, lost, "{type: HEARTBEAT, lost: false}", NULL, NULL, "(lost)", NULL);
    fails_with(H_FRAMES, lost_real, "{type: HEARTBEAT, lost: false}", NULL, NULL, "(lost)",
               NULL);
    fails_with(H_FRAMES, kept, "{type: HEARTBEAT, lost: true}", NULL, NULL, "at least 1", NULL);
    passes(H_FRAMES, kept, "{type: HEARTBEAT, lost: false}", NULL, NULL);
    passes(H_FRAMES, lost, "{type: HEARTBEAT, lost: true}", NULL, NULL);
}

static void test_json_subset(void **st)
{
    (void)st;
    json_t *a = recs("[1]"), *b = recs("[1, 2]"), *nul = json_null(), *s = json_string("x");
    json_t *o = recs("{\"a\":1}"), *o2 = recs("{\"a\":1,\"b\":2}");
    assert_false(scn_json_subset(a, b)); /* arrays: same length */
    assert_false(scn_json_subset(b, a));
    assert_true(scn_json_subset(a, a));
    assert_false(scn_json_subset(nul, s)); /* null wants null or nothing */
    assert_true(scn_json_subset(nul, NULL));
    assert_true(scn_json_subset(nul, nul));
    assert_true(scn_json_subset(o, o2)); /* objects: a subset */
    assert_false(scn_json_subset(o2, o));
    json_decref(a);
    json_decref(b);
    json_decref(s);
    json_decref(o);
    json_decref(o2);
    /* through the matcher: a payload list, a null field */
    const char *r = "[{\"event_type\":\"TASK_UPDATED\",\"entity_id\":\"t1\","
                    "\"payload\":{\"tags\":[\"a\",\"b\"],\"due_at\":\"2026-12-07T10:00:00+01:00\"}}]";
    fails_with(H_RECEIVED, r, "{entity_id: t1, payload: {tags: [a]}}", NULL, NULL,
               "at least 1", NULL);
    fails_with(H_RECEIVED, r, "{entity_id: t1, payload: {due_at: null}}", NULL, NULL,
               "at least 1", NULL);
    passes(H_RECEIVED, r, "{entity_id: t1, payload: {tags: [a, b], notes: null}}", NULL, NULL);
}

/* ---- logs -------------------------------------------------------------------- */

/* Log records are C records (chk_rec.h), the same for both modes. */
static chk_logrec LOGS[] = {
    {.actor = "server", .level = 1, .msg = "conflict", .fields = "entity=task/t1",
     .line = "INFO conflict entity=task/t1"},
    {.actor = "server", .level = 2, .msg = "conflict_resolved", .fields = "",
     .line = "WARNING conflict_resolved"},
    {.actor = "alice", .level = 2, .msg = "queue_full", .fields = "", .line = "WARNING queue_full"},
};

static int log_ok(const char *actor, const char *expect, char **msg)
{
    chk_logs r = {LOGS, sizeof LOGS / sizeof *LOGS, 0};
    scn_node *n = yaml(expect);
    scn_outcome o = {0};
    int ok = chk_log(&r, actor, n, NULL, &o);
    assert_int_equal(ok, o.ok);
    if (msg)
        *msg = ok ? NULL : scn_asprintf("expected %s, got %s", o.expected, o.actual);
    scn_outcome_clear(&o);
    scn_node_free(n);
    return ok;
}

static void log_fails(const char *actor, const char *expect, const char *words)
{
    char *msg = NULL;
    if (log_ok(actor, expect, &msg))
        fail_msg("log '%s' (actor %s) passed; it must fail", expect, actor ? actor : "-");
    if (words && !strstr(msg, words))
        fail_msg("log failure '%s' does not say '%s'", msg, words);
    free(msg);
}

static void log_passes(const char *actor, const char *expect)
{
    char *msg = NULL;
    if (!log_ok(actor, expect, &msg)) {
        print_error("%s\n", msg);
        free(msg);
        fail_msg("log '%s' failed; it must pass", expect);
    }
}

static void test_log_level_is_a_minimum(void **st)
{
    (void)st;
    /* the conflict record is INFO: not at WARNING or above */
    log_fails(NULL, "{actor: server, level: WARNING, message: conflict}",
              "at least 1 log records matching");
    log_passes(NULL, "{actor: server, level: INFO, message: conflict}");
    log_passes(NULL, "{actor: server, level: DEBUG, message: conflict}");
    log_fails(NULL, "{actor: server, level: ERROR, count: 1}", "exactly 1");
    log_passes(NULL, "{actor: server, level: WARNING, count: 1}");
    log_fails(NULL, "{level: WARNING, count: 0}", "2: ");
}

static void test_log_message_and_actor(void **st)
{
    (void)st;
    /* message is the record's name exactly */
    log_passes(NULL, "{actor: server, message: conflict, count: 1}");
    log_passes(NULL, "{actor: server, message: conflict_resolved, count: 1}");
    log_fails(NULL, "{actor: server, message: conf}", "at least 1");
    /* the actor of the enclosing block (alice.log) keeps alice's records */
    log_fails("alice", "{message: conflict}", "\"actor\":\"alice\"");
    log_fails("alice", "{level: WARNING, count: 2}", "exactly 2");
    log_passes("alice", "{level: WARNING, count: 1}");
    log_passes("server", "{message: conflict}");
    log_fails(NULL, "{actor: alice, message: conflict_resolved}", "at least 1");
    /* a pattern reads msg and fields */
    log_passes(NULL, "{actor: server, pattern: \"entity=task/t1\", count: 1}");
    log_fails(NULL, "{actor: server, pattern: \"entity=task/t2\"}", "at least 1");
}

/* A log window: since a mark (n, found by a binary search: n never
 * decreases) and within (t), each alone and both. */
static long log_hits(const chk_window *win)
{
    static chk_logrec v[] = {
        {.t = 1000, .n = 2, .actor = "server", .msg = "a", .fields = "", .line = "a"},
        {.t = 2000, .n = 5, .actor = "server", .msg = "a", .fields = "", .line = "a"},
        {.t = 3000, .n = 5, .actor = "server", .msg = "a", .fields = "", .line = "a"},
        {.t = 2500, .n = 9, .actor = "server", .msg = "a", .fields = "", .line = "a"},
    };
    chk_logs r = {v, sizeof v / sizeof *v, 0};
    for (long want = 0; want <= 4; want++) {
        char q[64];
        snprintf(q, sizeof q, "{message: a, count: %ld}", want);
        scn_node *n = yaml(q);
        scn_outcome o = {0};
        int ok = chk_log(&r, NULL, n, win, &o);
        scn_outcome_clear(&o);
        scn_node_free(n);
        if (ok)
            return want;
    }
    return -1;
}

static void test_log_window(void **st)
{
    (void)st;
    chk_window by_n = {{"n", NULL}, {5, 0}};
    assert_int_equal(log_hits(&by_n), 3);
    chk_window by_n2 = {{"n", NULL}, {6, 0}};
    assert_int_equal(log_hits(&by_n2), 1);
    chk_window by_t = {{NULL, "t"}, {0, 2500}};
    assert_int_equal(log_hits(&by_t), 2);
    chk_window both = {{"n", "t"}, {3, 2600}};
    assert_int_equal(log_hits(&both), 1);
    chk_window other = {{"seq", NULL}, {1, 0}}; /* a key log records lack reads 0 */
    assert_int_equal(log_hits(&other), 0);
    assert_int_equal(log_hits(NULL), 4);
}

/* ---- list forms -------------------------------------------------------------- */

static void list_fails(const char *want, const char *items, const char *words)
{
    json_t *w = recs(want), *it = recs(items);
    scn_outcome o = {0};
    chk_list_form(w, it, "entity_id", &o);
    if (o.ok)
        fail_msg("list form %s passed on %s; it must fail", want, items);
    if (words && !strstr(o.expected, words))
        fail_msg("list failure expected '%s' does not say '%s'", o.expected, words);
    scn_outcome_clear(&o);
    json_decref(w);
    json_decref(it);
}

static void list_passes(const char *want, const char *items)
{
    json_t *w = recs(want), *it = recs(items);
    scn_outcome o = {0};
    chk_list_form(w, it, "entity_id", &o);
    if (!o.ok)
        fail_msg("list form %s failed on %s: expected %s, got %s", want, items, o.expected,
                 o.actual);
    scn_outcome_clear(&o);
    json_decref(w);
    json_decref(it);
}

static void test_list_forms(void **st)
{
    (void)st;
    const char *q = "[{\"entity_id\":\"t2\",\"op\":\"put\"},{\"entity_id\":\"t1\",\"op\":\"put\"}]";
    list_fails("3", q, "length 3");
    list_fails("1", q, "length 1");
    list_passes("2", q);
    list_fails("[\"t1\",\"t2\"]", q, "[\"t1\",\"t2\"]");
    list_fails("[\"t2\"]", q, NULL);
    list_passes("[\"t2\",\"t1\"]", q);
    list_fails("{\"entities\":[\"t1\",\"t2\"]}", q, "entities");
    list_fails("{\"entities\":[\"t2\",\"t3\"]}", q, "entities");
    list_passes("{\"entities\":[\"t2\",\"t1\"]}", q);
    list_fails("{\"length\":1}", q, "length 1");
    list_fails("{\"items\":[{\"op\":\"delete\"},{\"op\":\"put\"}]}", q, "items");
    list_passes("{\"length\":2,\"items\":[{\"op\":\"put\"},{\"entity_id\":\"t1\"}]}", q);
}

/* ---- the text of a node (scn_node_text) --------------------------------- */

/* scn_node_text writes the node's text straight from the node; its
 * definition is the JSON tree dumped as jansson does (hp_jdump_ordered of
 * scn_node_json, "?" when there is none).  The trace and the reports hold
 * it, so the two must agree byte for byte. */
static size_t same_text(const scn_node *n)
{
    json_t *j = scn_node_json(n);
    char *want = hp_jdump_ordered(j, NULL), *got = scn_node_text(n);
    json_decref(j);
    if (!want)
        want = strdup("?");
    if (strcmp(want, got))
        fail_msg("node at line %d: scn_node_text %s, the tree's text %s", n ? n->line : 0, got,
                 want);
    free(want);
    free(got);
    size_t k = 1;
    for (size_t i = 0; n && i < n->n; i++) {
        if (n->keys)
            k += same_text(n->keys[i]);
        k += same_text(n->items[i]);
    }
    return k;
}

static size_t nodes_checked;

static int text_of_file(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    size_t l = strlen(path);
    if (type != FTW_F || l < 5 || strcmp(path + l - 5, ".yaml"))
        return 0;
    scn_scenario *s = NULL;
    scn_diags d = {0};
    if (scn_load_file(path, &s, &d) == 0) {
        nodes_checked += same_text(s->root);
        scn_free(s);
    }
    scn_diags_free(&d);
    return 0;
}

static void test_node_text_as_jansson(void **state)
{
    (void)state;
    scn_node *n = yaml(
        "plain: [alice, PUT /api/v0.2/tasks/q1, '{i}', 'q{i}', a/b, 'x: y', -, +, ., e, 1.2.3]\n"
        "typed: [~, null, Null, NULL, '', true, True, FALSE, no, 42, -7, 0, 007, +5,\n"
        "        9223372036854775807, 9223372036854775808, -9223372036854775808,\n"
        "        1.5, -2e3, 1E2, .5, 5., 1e400, inf, nan, 0x1f]\n"
        "quoted: ['true', \"42\", 'null', '1.5', \"\"]\n"
        "escapes: [\"q\\\"uote\", 'back\\slash', \"\\t\\n\\r\\b\\f\", \"\\x01\\x1f\\x7f\\e\",\n"
        "          \"caf\\u00e9 \\u2713 \\U0001F600\", '  spaced  ']\n"
        "empty: [{}, [], {a: }, [[]]]\n"
        "\"key \\\"quoted\\\"\\n\": {nested: {deep: [1, {x: y}]}}\n"
        "'42': number key\n");
    nodes_checked += same_text(n);
    same_text(NULL);
    scn_node_free(n);
    /* Where only the tree knows the text: a map whose keys repeat (the
     * loader refuses it, so it is built here) and a string that is not
     * UTF-8 (libyaml refuses it). */
    scn_node k1 = {.kind = SCN_SCALAR, .str = "a"}, v1 = {.kind = SCN_SCALAR, .str = "1", .plain = 1};
    scn_node k2 = {.kind = SCN_SCALAR, .str = "b"}, v2 = {.kind = SCN_SCALAR, .str = "x"};
    scn_node *keys[] = {&k1, &k2, &k1}, *items[] = {&v1, &v2, &v2};
    scn_node dup = {.kind = SCN_MAP, .n = 3, .keys = keys, .items = items};
    same_text(&dup);
    char *t = scn_node_text(&dup);
    assert_string_equal(t, "{\"a\":\"x\",\"b\":\"x\"}");
    free(t);
    scn_node bad = {.kind = SCN_SCALAR, .str = "caf\xe9"}, *bads[] = {&v1, &bad};
    scn_node seq = {.kind = SCN_SEQ, .n = 2, .items = bads};
    same_text(&seq);
    t = scn_node_text(&seq);
    assert_string_equal(t, "[1,null]");
    free(t);
    /* Every node of every scenario of the suite. */
    assert_int_equal(nftw(HX_SOURCE_DIR "/scenarios", text_of_file, 16, FTW_PHYS), 0);
    assert_true(nodes_checked > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_is_exact),
        cmocka_unit_test(test_at_least_at_most_bounds),
        cmocka_unit_test(test_default_quantity_is_at_least_one),
        cmocka_unit_test(test_chk_count),
        cmocka_unit_test(test_exactly_is_the_whole_window),
        cmocka_unit_test(test_in_order_list),
        cmocka_unit_test(test_window_bounds),
        cmocka_unit_test(test_word_forms_use_every_word),
        cmocka_unit_test(test_path_query),
        cmocka_unit_test(test_idem_key_forms),
        cmocka_unit_test(test_same_idem_key),
        cmocka_unit_test(test_conflict_fields_as_set),
        cmocka_unit_test(test_lost_frames),
        cmocka_unit_test(test_json_subset),
        cmocka_unit_test(test_log_level_is_a_minimum),
        cmocka_unit_test(test_log_message_and_actor),
        cmocka_unit_test(test_log_window),
        cmocka_unit_test(test_list_forms),
        cmocka_unit_test(test_node_text_as_jansson),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    scn_expect_cleanup();
    return rc;
}

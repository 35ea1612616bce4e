/*
 * test_scn_lang.c - the scenario language added for issue 12 and the
 * loader's cost (issue 11): messages (indentation hint, glued keywords,
 * declared clients, rule ids), duplicate keys in linear time, and
 * vars / for_each / include expansion with their errors.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "scn_internal.h"
#include "real.h"
#include "real_world.h"

/* All diagnostics of loading text as `file`, one per line ("" when it
 * loads); *out gets the scenario when it loads and out is not NULL. */
static char *load_diags(const char *file, const char *text, scn_scenario **out)
{
    scn_diags d = {0};
    scn_scenario *s = NULL;
    int rc = scn_load_string(file, text, strlen(text), &s, &d);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    scn_diags_print(&d, m);
    fclose(m);
    assert_int_equal(rc == 0, d.n == 0);
    if (out)
        *out = s;
    else
        scn_free(s);
    scn_diags_free(&d);
    return buf;
}

static void want(const char *file, const char *text, const char *needle)
{
    char *got = load_diags(file, text, NULL);
    if (!strstr(got, needle))
        fail_msg("want '%s' in:\n%s", needle, got);
    free(got);
}

#define HEAD "id: t/x\nname: x\nrules: [Q-1]\nclients: {alice: {}, bob: {}}\n"

/* ---- messages (issue 12) --------------------------------------------------- */

static void test_messages(void **st)
{
    (void)st;
    /* libyaml's "did not find expected key": where the mapping is, which
     * column this line is at. */
    want("x.yaml", HEAD "steps:\n  - alice: connect\n steps2: 1\n",
         "x.yaml:7:2: YAML syntax error: did not find expected key while parsing a block "
         "mapping (check the indentation: the mapping starting at line 1 has its items at "
         "column 1; this line is indented to column 2");
    want("x.yaml", HEAD "steps:\n  - alice: connect\n   - wait: 1s\n",
         "x.yaml:7:4: YAML syntax error: did not find expected '-' indicator while parsing a "
         "block collection (check the indentation: the list starting at line 6 has its items "
         "at column 3");
    /* A keyword with a word glued on. */
    want("x.yaml", HEAD "steps:\n  - expect: {alice: {queue_length: 0}}\n",
         "x.yaml:6:22: unknown client expectation 'queue_length' (did you mean 'queue'?)");
    /* An unknown client lists the declared ones, with or without a
     * suggestion. */
    want("x.yaml", HEAD "steps:\n  - carol: connect\n",
         "x.yaml:6:5: unknown client or step 'carol' (declared clients: alice, bob; declare it "
         "under 'clients:')");
    want("x.yaml", HEAD "steps:\n  - alcie: connect\n",
         "x.yaml:6:5: unknown client or step 'alcie' (did you mean 'alice'? declared clients: "
         "alice, bob)");
    want("x.yaml", HEAD "steps:\n  - expect: {carol: {online: true}}\n",
         "x.yaml:6:14: unknown actor 'carol' (declared clients: alice, bob;");
    /* R-2 is no typo of Q-2: no suggestion, the known ids instead; a
     * spelling of an existing id is still suggested. */
    char *got = load_diags("r.yaml", "id: t/x\nname: x\nrules: [R-2, q2]\nclients: {alice: {}}\n"
                                     "steps: [{wait: 1s}]\n",
                           NULL);
    assert_non_null(strstr(got, "r.yaml:3:9: unknown rule 'R-2' (known: WS-1..WS-6"));
    assert_null(strstr(got, "'R-2' (did you mean"));
    assert_non_null(strstr(got, "r.yaml:3:14: unknown rule 'q2' (did you mean 'Q-2'?"));
    free(got);
}

/* ---- duplicate keys in linear time (issue 11) ------------------------------ */

static char *many_keys(size_t n, int dup)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    fputs(HEAD "steps: [{wait: 1s}]\nx:\n", m);
    for (size_t i = 0; i < n; i++)
        fprintf(m, "  key%zu: %zu\n", i, i);
    if (dup)
        fputs("  key7: again\n", m);
    fclose(m);
    return buf;
}

static void test_linear_keys(void **st)
{
    (void)st;
    /* 40,000 keys in one mapping (the case): duplicate detection
     * makes O(n) comparisons, not n^2/2 = 800 million.  The bound is on
     * comparisons, not time (a loaded machine must not fail it). */
    const size_t n = 40000;
    char *text = many_keys(n, 1);
    size_t before = scn_yaml_key_compares();
    scn_node *root = NULL;
    scn_diags d = {0};
    assert_int_equal(scn_yaml_parse("big.yaml", text, strlen(text), &root, &d), -1);
    size_t cmp = scn_yaml_key_compares() - before;
    assert_true(cmp < 4 * n);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].msg, "duplicate key 'key7' (first at line 14)");
    assert_int_equal(d.v[0].line, 40007);
    scn_diags_free(&d);
    free(text);
    /* And the whole loader on it: one diagnostic for the unknown key. */
    text = many_keys(n, 0);
    char *got = load_diags("big.yaml", text, NULL);
    assert_non_null(strstr(got, "big.yaml:6:1: unknown key 'x'"));
    free(got);
    free(text);
}

/* ---- vars, for_each, include (issue 12) ----------------------------------- */

static char tmpdir[64];

static void put(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    char *sl = strrchr(path, '/');
    *sl = '\0';
    mkdir(path, 0700);
    *sl = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads tmpdir/name; "" and *out when it loads, else the diagnostics
 * with tmpdir cut from the file names. */
static char *load_file(const char *name, scn_scenario **out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    scn_diags d = {0};
    scn_scenario *s = NULL;
    int rc = scn_load_file(path, &s, &d);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (size_t i = 0; i < d.n; i++) {
        const char *f = d.v[i].file;
        if (!strncmp(f, tmpdir, strlen(tmpdir)))
            f += strlen(tmpdir) + 1;
        fprintf(m, "%s:%d:%d: %s\n", f, d.v[i].line, d.v[i].col, d.v[i].msg);
    }
    fclose(m);
    assert_int_equal(rc == 0, d.n == 0);
    if (out)
        *out = s;
    else
        scn_free(s);
    scn_diags_free(&d);
    return buf;
}

static int setup_tmp(void **st)
{
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/scnlang.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The text of a node as JSON (compact). */
static char *js(const scn_node *n)
{
    return scn_node_text(n);
}

static void test_expansion(void **st)
{
    (void)st;
    scn_scenario *s = NULL;
    char *got = load_diags("e.yaml",
                           HEAD "vars: {n: 3, who: [alice, bob], t: Milk, later: \"{t} x{n}\"}\n"
                                "steps:\n"
                                "  - for_each: {i: \"1..{n}\"}\n"
                                "    do:\n"
                                "      - alice: {edit: {id: \"q{i}\", title: \"{t} {i}\"}}\n"
                                "  - for_each: {w: \"{who}\"}\n"
                                "    do: {\"{w}\": {edit: {id: \"x-{w}\", title: \"{later}\"}}}\n"
                                "  - {repeat: 2, alice: {edit: {id: \"r{i}\"}}}\n"
                                "  - expect:\n"
                                "      alice: {queue: \"{n}\"}\n"
                                "      server:\n"
                                "        requests:\n"
                                "          - for_each: {i: [1, 3], m: [PUT]}\n"
                                "            do: \"{m} /api/v0.2/tasks/q{i}\"\n",
                           &s);
    assert_string_equal(got, "");
    free(got);
    assert_non_null(s);
    assert_int_equal(s->steps->n, 7);
    char *t = js(s->steps->items[0]);
    assert_string_equal(t, "{\"alice\":{\"edit\":{\"id\":\"q1\",\"title\":\"Milk 1\"}}}");
    free(t);
    t = js(s->steps->items[2]);
    assert_string_equal(t, "{\"alice\":{\"edit\":{\"id\":\"q3\",\"title\":\"Milk 3\"}}}");
    free(t);
    /* A variable in a key; a var built from earlier vars. */
    t = js(s->steps->items[4]);
    assert_string_equal(t, "{\"bob\":{\"edit\":{\"id\":\"x-bob\",\"title\":\"Milk x3\"}}}");
    free(t);
    /* {i} of a repeat is left for the run. */
    t = js(s->steps->items[5]);
    assert_non_null(strstr(t, "r{i}"));
    free(t);
    /* "{n}" alone keeps the value's type: an integer; lists expand in
     * expectations too, nested variables in order. */
    const scn_node *ex = scn_map_get(s->steps->items[6], "expect");
    const scn_node *q = scn_map_get(scn_map_get(ex, "alice"), "queue");
    int64_t v;
    assert_int_equal(scn_get_int(q, &v), 0);
    assert_int_equal(v, 3);
    t = js(scn_map_get(scn_map_get(ex, "server"), "requests"));
    assert_string_equal(t, "[\"PUT /api/v0.2/tasks/q1\",\"PUT /api/v0.2/tasks/q3\"]");
    free(t);
    /* Positions: expanded steps keep their template's line. */
    assert_int_equal(s->steps->items[1]->line, 9);
    assert_int_equal(s->steps->items[3]->line, 11);
    scn_free(s);
}

static void test_expansion_errors(void **st)
{
    (void)st;
    /* Every problem, at its line and column, once (not once per value). */
    char *got = load_diags("e.yaml",
                           HEAD "vars: {n: 3, i: 2, 9x: 1}\n"
                                "steps:\n"
                                "  - for_each: {i: \"1..{nn}\"}\n"
                                "    do: [{alice: {edit: {id: \"q{j}\"}}}]\n"
                                "  - for_each: {k: 5..1}\n"
                                "    do: []\n"
                                "  - for_each: {k: soon}\n"
                                "    do: []\n"
                                "  - for_each: {k: [1, 2]}\n"
                                "    doo: [{alice: {edit: {id: \"q{k}\"}}}]\n"
                                "  - for_each: {k: [1, 2]}\n"
                                "    do: [{alice: {edit: {id: \"q{k}\", title: \"{n}{j}\"}}}]\n",
                           NULL);
    const char *const want_lines[] = {
        "e.yaml:5:14: 'i' is the repeat counter ({i} in a repeat step): choose another name",
        "e.yaml:5:20: variable name '9x' must be a letter or _ then letters, digits, _",
        "e.yaml:7:19: unknown variable '{nn}' (did you mean '{n}'?)",
        "e.yaml:9:19: for_each k: range 5..1 must go up, at most 100000 values",
        "e.yaml:11:19: for_each k: expected a range such as 1..100 or a list, got value 'soon'",
        "e.yaml:13:5: for_each needs 'do:'",
        "e.yaml:14:5: unknown key 'doo' beside for_each (did you mean 'do'?)",
        "e.yaml:16:45: unknown variable '{j}'",
        NULL};
    for (size_t i = 0; want_lines[i]; i++)
        if (!strstr(got, want_lines[i]))
            fail_msg("want '%s' in:\n%s", want_lines[i], got);
    /* An unknown variable in a range is one problem, not two. */
    assert_null(strstr(got, "got string '1..{nn}'"));
    /* once each, though the body ran for two values */
    const char *p = strstr(got, "e.yaml:16:45:");
    assert_null(strstr(p + 1, "e.yaml:16:45:"));
    free(got);
}

static void test_include(void **st)
{
    (void)st;
    put("fixtures/ready.yaml", "description: connect\n"
                               "vars: {who: [alice], delay: 1s}\n"
                               "steps:\n"
                               "  - for_each: {c: \"{who}\"}\n"
                               "    do: [{\"{c}\": connect}]\n"
                               "  - wait: \"{delay}\"\n");
    put("sc/ok.yaml", HEAD "steps:\n"
                           "  - include: {file: ../fixtures/ready.yaml, vars: {who: [alice, bob]}}\n"
                           "  - include: ../fixtures/ready.yaml\n"
                           "  - expect: {alice: {online: true}}\n");
    scn_scenario *s = NULL;
    char *got = load_file("sc/ok.yaml", &s);
    assert_string_equal(got, "");
    free(got);
    assert_int_equal(s->steps->n, 6);
    char *t = js(s->steps->items[1]);
    assert_string_equal(t, "{\"bob\":\"connect\"}");
    free(t);
    t = js(s->steps->items[2]);
    assert_string_equal(t, "{\"wait\":\"1s\"}");
    free(t);
    /* At run time an included step points at its include step (line 6). */
    assert_int_equal(s->steps->items[1]->line, 6);
    assert_int_equal(s->steps->items[4]->line, 7);
    assert_non_null(strstr(s->steps->items[1]->src, "fixtures/ready.yaml"));
    assert_int_equal(s->steps->items[1]->src_line, 5);
    scn_free(s);

    /* Errors inside an included file name that file and its line. */
    put("fixtures/bad.yaml", "- alice: conect\n"
                             "- wait: \"{dleay}\"\n");
    put("fixtures/bad2.yaml", "- carol: connect\n"
                              "- wait: 30\n");
    put("sc/bad.yaml", HEAD "vars: {delay: 1s}\n"
                            "steps:\n"
                            "  - include: ../fixtures/bad.yaml\n"
                            "  - include: ../fixtures/missing.yaml\n"
                            "  - include: bad.yaml\n"
                            "  - {include: ../fixtures/ready.yaml, wait: 1s}\n"
                            "  - include: {flie: x.yaml}\n");
    got = load_file("sc/bad.yaml", NULL);
    const char *const want1[] = {
        "sc/../fixtures/bad.yaml:2:9: unknown variable '{dleay}' (did you mean '{delay}'?)",
        "sc/bad.yaml:8:14: include '",
        "missing.yaml': No such file or directory",
        "sc/bad.yaml:9:14: include '",
        "bad.yaml' makes a cycle",
        "sc/bad.yaml:10:39: 'include' is an item of its own",
        "sc/bad.yaml:11:15: unknown include key 'flie' (did you mean 'file'?)",
        NULL};
    for (size_t i = 0; want1[i]; i++)
        if (!strstr(got, want1[i]))
            fail_msg("want '%s' in:\n%s", want1[i], got);
    free(got);
    /* Validation errors too: at the included file's line and column. */
    put("sc/bad2.yaml", HEAD "steps:\n"
                             "  - include: ../fixtures/bad2.yaml\n");
    got = load_file("sc/bad2.yaml", NULL);
    const char *const want2[] = {
        "sc/../fixtures/bad2.yaml:1:3: unknown client or step 'carol' (declared clients: alice, "
        "bob;",
        "sc/../fixtures/bad2.yaml:2:9: bad duration '30' for wait",
        NULL};
    for (size_t i = 0; want2[i]; i++)
        if (!strstr(got, want2[i]))
            fail_msg("want '%s' in:\n%s", want2[i], got);
    free(got);
}

/* ---- lint --mode real (issue 12 point 4) ------------------------------------ */

static char *real_lint_of(const char *text, const scn_run_opts *o, char **skip)
{
    scn_scenario *s = NULL;
    char *got = load_diags("r.yaml", text, &s);
    assert_string_equal(got, "");
    free(got);
    scn_diags d = {0};
    int n = scn_real_lint(s, o, &d);
    assert_int_equal((size_t)n, d.n);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    scn_diags_print(&d, m);
    fclose(m);
    scn_diags_free(&d);
    if (skip)
        *skip = scn_real_unsupported(s, o);
    scn_free(s);
    return buf;
}

static void test_real_lint(void **st)
{
    (void)st;
    const char *text = "id: t/r\nname: r\nrules: [WS-5]\ntags: [sim-only]\n"  /* 1-4 */
                       "policy: {heartbeat_interval: 10s, queue_max: 5}\n"        /* 5 */
                       "clients: {alice: {}, bob: {}}\n"                          /* 6 */
                       "steps:\n"                                                 /* 7 */
                       "  - {alice: connect, bob: connect}\n"                     /* 8 */
                       "  - wait: 5s\n"                                           /* 9 */
                       "  - server: {fail_requests: {count: 1, status: 503, retry_after: 2s}}\n"
                       "  - alice: {latency: 300ms}\n"                            /* 11 */
                       "  - wait: 2m\n"                                           /* 12 */
                       "  - expect: {alice: {closed: {code: 4008, by: server}, queue: 0}}\n"
                       "  - expect: {server: {log: {message: heartbeat_timeout}, connections: 1}}\n"
                       "  - expect_log: {actor: alice, level: WARNING, count: 0}\n";
    /* Our own server and client, the proxy: what differs anyway. */
    scn_run_opts own = {0};
    char *skip = NULL;
    char *got = real_lint_of(text, &own, &skip);
    const char *const want_own[] = {
        "r.yaml:1:1: real mode: invariants edits_kept and entity_order (unobservable)",
        "r.yaml:4:7: real mode: the sim-only tag (skipped)",
        "r.yaml:9:11: real mode: short waits stretched - wait: 5s is 50 ms of real time at time "
        "scale 0.01 (behaves differently): a wait shorter than 100 ms",
        "r.yaml:10:53: real mode: fail_requests.retry_after (skipped): Retry-After is whole "
        "seconds",
        "r.yaml:13:43: real mode: closed.by (behaves differently): `by` comes from the wire",
        "r.yaml:15:48: real mode: negative expectations (behaves differently)",
        NULL};
    for (size_t i = 0; want_own[i]; i++)
        if (!strstr(got, want_own[i]))
            fail_msg("want '%s' in:\n%s", want_own[i], got);
    /* Not for our own server: its log, connections, policy, latency. */
    assert_null(strstr(got, "server log"));
    assert_null(strstr(got, "server state"));
    assert_null(strstr(got, "latency and link"));
    assert_null(strstr(got, "wait: 2m"));
    free(got);
    /* The skip decision is the same walk: its skipped entries only. */
    assert_non_null(skip);
    assert_non_null(strstr(skip, "the sim-only tag"));
    assert_non_null(strstr(skip, "fail_requests.retry_after (Retry-After is whole seconds"));
    assert_null(strstr(skip, "closed.by"));
    free(skip);

    /* A foreign server over https (no proxy) and a foreign client. */
    scn_run_opts foreign = {0};
    foreign.server_url = "https://staging.example:443";
    foreign.client_cmd = "app --url {url}";
    foreign.time_scale = 0.05;
    got = real_lint_of(text, &foreign, &skip);
    const char *const want_foreign[] = {
        "r.yaml:5:10: real mode: server policy overrides on a foreign server - "
        "heartbeat_interval (skipped)",
        "r.yaml:10:13: real mode: server actions on a foreign server - fail_requests (skipped)",
        "r.yaml:11:12: real mode: latency and link faults without the proxy - latency (skipped)",
        "r.yaml:13:56: real mode: a foreign client's state - alice.queue (unobservable)",
        "r.yaml:14:23: real mode: server log on a foreign server - server.log (unobservable)",
        "r.yaml:14:58: real mode: server state on a foreign server - server.connections "
        "(unobservable)",
        "r.yaml:15:17: real mode: a foreign client's log - alice (unobservable)",
        NULL};
    for (size_t i = 0; want_foreign[i]; i++)
        if (!strstr(got, want_foreign[i]))
            fail_msg("want '%s' in:\n%s", want_foreign[i], got);
    /* queue_max is the client's: a foreign server does not apply it. */
    assert_null(strstr(got, "- queue_max"));
    /* At time scale 0.05 a 5 s wait is 250 ms: not stretched. */
    assert_null(strstr(got, "wait: 5s"));
    free(got);
    free(skip);
}

/* docs/REAL_MODE.md names every entry of the table. */
static void test_real_doc(void **st)
{
    (void)st;
    FILE *f = fopen(HX_SOURCE_DIR "/docs/REAL_MODE.md", "r");
    assert_non_null(f);
    char *doc = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    assert_true(n > 0);
    for (int i = 0; i < RL_DIFF_COUNT; i++) {
        char q[160];
        snprintf(q, sizeof q, "| %s |", rl_diffs[i].name);
        if (!strstr(doc, q))
            fail_msg("docs/REAL_MODE.md has no row '%s'", q);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_linear_keys),
        cmocka_unit_test(test_expansion),
        cmocka_unit_test(test_expansion_errors),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_real_lint),
        cmocka_unit_test(test_real_doc),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}

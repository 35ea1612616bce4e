/*
 * test_oblig.c - the obligations tracer (rpt_oblig.c) and the rule coverage
 * table (rpt_rules.c) on small hand-made trees and results:
 *   - markers on assertion steps and in test functions are found and cited;
 *   - an obligation without a check, a marker naming an unknown obligation,
 *     a marker outside an assertion step and a stale "checked by" cell are
 *     problems; --update fixes the cells and nothing else;
 *   - verdicts of a run reach the checks (passed, failed, not run);
 *   - the rule table counts passed / failed / unobservable / not run, by
 *     the markers of a step or else the scenario's rules, and
 *     --require-rules names the required rules left unchecked.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rpt.h"

static char root[256];

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A doc with one obligation per rule: WS-1.1 and WS-1.2 for WS-1, X.1 for
 * every other rule (so only the WS-1 rows matter to the tests). */
static void write_doc(const char *ws1_cells)
{
    char doc[1 << 15];
    size_t o = (size_t)snprintf(doc, sizeof doc, "# Policy\n\n## Obligations\n\n"
                                                  "<!-- obligations:begin -->\n");
    for (const char *const *r = rpt_rule_ids; *r; r++) {
        o += (size_t)snprintf(doc + o, sizeof doc - o,
                              "\n### %s\n\n| id | obligation | checked by |\n|---|---|---|\n", *r);
        if (!strcmp(*r, "WS-1"))
            o += (size_t)snprintf(doc + o, sizeof doc - o, "%s", ws1_cells);
        else
            o += (size_t)snprintf(doc + o, sizeof doc - o,
                                  "| %s.1 | something | `tests/t/test_x.c:test_all` |\n", *r);
    }
    snprintf(doc + o, sizeof doc - o, "\n<!-- obligations:end -->\n\n## After\n");
    put("docs/SYNC_POLICY.md", doc);
    /* A test function that checks every X.1 obligation. */
    char t[1 << 14];
    o = (size_t)snprintf(t, sizeof t, "static void test_all(void **state)\n{\n    /* checks:");
    for (const char *const *r = rpt_rule_ids; *r; r++)
        if (strcmp(*r, "WS-1"))
            o += (size_t)snprintf(t + o, sizeof t - o, " %s.1", *r);
    snprintf(t + o, sizeof t - o, " */\n}\n");
    put("tests/t/test_x.c", t);
}

static const char *scenario =
    "id: a/b\n"                                            /* 1 */
    "rules: [WS-1, Q-2]\n"                                  /* 2 */
    "steps:\n"                                             /* 3 */
    "  - alice: connect\n"                                 /* 4 */
    "  - expect:   # checks: WS-1.1\n"                      /* 5 */
    "      alice: {connection: ready}\n"                   /* 6 */
    "  - wait: 1s\n"                                       /* 7 */
    "  - expect: {alice: {queue: 0}}\n";                   /* 8 */

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/hx-oblig-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static int has_problem(json_t *scan, const char *needle)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(scan, "problems"), i, p)
        if (strstr(json_string_value(p), needle))
            return 1;
    return 0;
}

static void test_missing_and_stale(void **state)
{
    (void)state;
    write_doc("| WS-1.1 | the first | |\n| WS-1.2 | the second | |\n");
    put("scenarios/a/b.yaml", scenario);
    char err[256];
    json_t *scan = rpt_oblig_scan(root, err, sizeof err);
    assert_non_null(scan);
    /* WS-1.2 has no check; WS-1.1's cell is empty, so stale. */
    assert_true(has_problem(scan, "WS-1.2 has no check"));
    assert_true(has_problem(scan, "the 'checked by' cell of WS-1.1 is out of date"));
    assert_int_equal(json_array_size(json_object_get(scan, "problems")), 2);
    /* --update writes the cell from the marker, the rest of the doc stays. */
    assert_int_equal(rpt_oblig_update(root, scan, err, sizeof err), 0);
    json_decref(scan);
    const char *doc = slurp("docs/SYNC_POLICY.md");
    assert_non_null(strstr(doc, "| WS-1.1 | the first | `scenarios/a/b.yaml:5` |"));
    assert_non_null(strstr(doc, "## After\n"));
    scan = rpt_oblig_scan(root, err, sizeof err);
    assert_int_equal(json_array_size(json_object_get(scan, "problems")), 1); /* WS-1.2 */
    json_decref(scan);
}

static void test_bad_markers(void **state)
{
    (void)state;
    write_doc("| WS-1.1 | the first | `scenarios/a/b.yaml:5` |\n");
    put("scenarios/a/b.yaml",
        "id: a/b\nrules: [WS-1]\nsteps:\n"
        "  - alice: connect   # checks: WS-1.1\n"     /* not an assertion */
        "  - expect: {alice: {queue: 0}}   # checks: WS-1.7\n" /* unknown */
        "  - expect: {alice: {queue: 0}}   # checks: WS-1.1\n");
    char err[256];
    json_t *scan = rpt_oblig_scan(root, err, sizeof err);
    assert_true(has_problem(scan, "scenarios/a/b.yaml:4: a checks: marker must stand on or inside"));
    assert_true(has_problem(scan, "scenarios/a/b.yaml:5: checks: names unknown obligation WS-1.7"));
    /* The good marker is at line 6, the cell says 5: stale. */
    assert_true(has_problem(scan, "out of date"));
    json_decref(scan);
}

/* A result whose trace holds steps at lines 4, 5, 7, 8 with asserts. */
static void make_result(scn_result *r, int line8_passed)
{
    memset(r, 0, sizeof *r);
    char p[512];
    snprintf(p, sizeof p, "%s/scenarios/a/b.yaml", root);
    r->id = strdup("a/b");
    r->file = strdup(p);
    r->rules = json_pack("[s,s]", "WS-1", "Q-2");
    r->tags = json_array();
    r->checks = json_array();
    r->passed = line8_passed;
    r->failure_step = line8_passed ? -1 : 3;
    r->trace = json_pack(
        "[{s:s,s:i},{s:s,s:i},{s:s,s:b},{s:s,s:i},{s:s,s:i},{s:s,s:b},{s:s,s:b,s:s}]", "type",
        "step", "line", 4, "type", "step", "line", 5, "type", "assert", "passed", 1, "type",
        "step", "line", 7, "type", "step", "line", 8, "type", "assert", "passed", line8_passed,
        "type", "assert", "passed", 0, "verdict", "unobservable");
}

static void free_result(scn_result *r)
{
    free(r->id);
    free(r->file);
    json_decref(r->rules);
    json_decref(r->tags);
    json_decref(r->checks);
    json_decref(r->trace);
}

static void test_verdicts_and_rules(void **state)
{
    (void)state;
    write_doc("| WS-1.1 | the first | `scenarios/a/b.yaml:5` |\n");
    put("scenarios/a/b.yaml", scenario);
    scn_result r;
    make_result(&r, 0);
    rpt_run run = {&r, NULL, 1, {1, "real", "x", 0, 0}, NULL, NULL};
    char err[256];
    json_t *scan = rpt_oblig_scan(root, err, sizeof err);
    assert_int_equal(json_array_size(json_object_get(scan, "problems")), 0);
    rpt_oblig_verdicts(scan, root, &run);
    json_t *c = json_array_get(
        json_object_get(json_array_get(json_object_get(scan, "obligations"), 0), "checks"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "verdict")), "passed");
    json_decref(scan);

    /* Rules: the step at line 5 counts for WS-1 only (its marker); the step
     * at line 8 (no marker) for WS-1 and Q-2: one failed, one unobservable. */
    json_t *req = json_pack("[s,s]", "WS-1", "A-4");
    json_t *t = rpt_rules_build(&run, req);
    json_t *ws1 = json_object_get(t, "WS-1"), *q2 = json_object_get(t, "Q-2");
    assert_int_equal(json_integer_value(json_object_get(ws1, "passed")), 1);
    assert_int_equal(json_integer_value(json_object_get(ws1, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(ws1, "unobservable")), 1);
    assert_int_equal(json_integer_value(json_object_get(q2, "passed")), 0);
    assert_int_equal(json_integer_value(json_object_get(q2, "failed")), 1);
    json_t *un = rpt_rules_unchecked(t);
    assert_int_equal(json_array_size(un), 1); /* required, nothing passed */
    assert_string_equal(json_string_value(json_array_get(un, 0)), "A-4");
    size_t total, checked = rpt_rules_checked(t, &total);
    assert_int_equal(checked, 1);
    assert_int_equal(total, 27);
    /* The summary line names it. */
    run.rules = t;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rpt_term_summary(f, &run);
    fclose(f);
    assert_string_equal(buf, "0 passed, 1 failed, 0 partial, 0 skipped, rules: 1 of 27 checked; "
                             "required but unchecked: A-4\n");
    free(buf);
    json_decref(un);
    json_decref(t);
    json_decref(req);

    /* A skipped scenario: its rules are "not run", nothing passed. */
    r.skipped = 1;
    r.passed = 0;
    t = rpt_rules_build(&run, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "WS-1"), "not_run")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "WS-1"), "passed")), 0);
    json_decref(t);
    free_result(&r);
}

static void test_parse_required(void **state)
{
    (void)state;
    json_t *l = NULL;
    char err[256];
    assert_int_equal(rpt_rules_parse("server", &l, err, sizeof err), 0);
    assert_true(json_array_size(l) >= 10);
    json_decref(l);
    assert_int_equal(rpt_rules_parse("WS-4,Q-7", &l, err, sizeof err), 0);
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    assert_int_equal(rpt_rules_parse("none", &l, err, sizeof err), 0);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    assert_int_equal(rpt_rules_parse("WS-4,QQ-1", &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown rule 'QQ-1'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdicts_and_rules, setup, teardown),
        cmocka_unit_test(test_parse_required),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

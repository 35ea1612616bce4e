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
#include <cmocka.h>

#include "scn_internal.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_linear_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

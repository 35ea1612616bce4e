/*
 * test_hx_cli.c - hp-harness's command line, run as a real process
 * (hx-fake: hx_main.c with the fake engine) in a scratch directory: exit
 * codes, the summary line, discovery order, filters, --jobs ordering,
 * determinism of the JSON report, default report paths, lint and list.
 */
#define _GNU_SOURCE
#include "hx_cli_util.h"


#define A_PASS "{\"id\": \"queue/a\", \"name\": \"A\", \"rules\": [\"Q-1\", \"Q-2\"], " \
               "\"tags\": [\"queue\"], \"trace\": 30}\n"
#define B_FAIL "{\"id\": \"queue/b\", \"name\": \"B\", \"rules\": [\"Q-4\"], \"tags\": " \
               "[\"queue\", \"retry\"], \"outcome\": \"fail\", \"line\": 14, \"failure\": " \
               "\"expected <queue> & \\\"0\\\", got 'two'\"}\n"
#define C_PASS "{\"id\": \"conflicts/c\", \"name\": \"C\", \"rules\": [\"CF-2\"], " \
               "\"tags\": [\"conflict\"]}\n"

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/hx-cli-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    write_file("scenarios/queue/a.yaml", A_PASS);
    write_file("scenarios/queue/b.yml", B_FAIL);
    write_file("scenarios/conflicts/c.yaml", C_PASS);
    write_file("scenarios/notes.txt", "not a scenario");
    write_file("scenarios/.hidden.yaml", "{ broken");
    write_file("good/one.yaml", C_PASS);
    write_file("good/two.yaml", A_PASS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(g_out);
    free(g_err);
    g_out = g_err = NULL;
    return 0;
}

/* ---- run -------------------------------------------------------------- */

static void test_run_default(void **state)
{
    (void)state;
    assert_int_equal(hx("run", NULL), 1);
    assert_string_equal(last_line(), "2 passed, 1 failed");
    /* Sorted discovery: conflicts/ before queue/, a.yaml before b.yml. */
    long c = pos("PASS  conflicts/c"), a = pos("PASS  queue/a"), b = pos("FAIL  queue/b");
    assert_true(c >= 0 && a > c && b > a);
    /* The failure, indented, with file:line. */
    assert_true(pos("\n      scenarios/queue/b.yml:14: expected <queue> & \"0\", got 'two'\n") >
                b);
    /* Default reports, announced before the summary line. */
    assert_true(rel_exists("reports/junit.xml"));
    assert_true(rel_exists("reports/report.json"));
    assert_true(rel_exists("reports/report.html"));
    /* One line for the three of them. */
    assert_true(pos("\nreports: reports/ (junit.xml, report.json, report.html)\n") >= 0);
    assert_null(strstr(g_out, "report: "));
    assert_null(strstr(g_out, "notes.txt"));
    char *j = rel_slurp("reports/junit.xml");
    assert_non_null(strstr(j, "expected &lt;queue&gt; &amp; &quot;0&quot;, got &apos;two&apos;"));
    free(j);
}

static void test_run_all_pass_and_explicit_paths(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "good", "--json", "out/r.json", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "2 passed, 0 failed");
    assert_true(rel_exists("out/r.json"));
    assert_false(rel_exists("reports"));
    /* Paths as given on the command line. */
    char *j = rel_slurp("out/r.json");
    assert_non_null(strstr(j, "\"file\":\"good/one.yaml\""));
    assert_null(strstr(j, g_dir));
    free(j);
    /* A single file, and --reports-dir. */
    assert_int_equal(hx("run", "scenarios/queue/b.yml", "--reports-dir", "rd", NULL), 1);
    assert_string_equal(last_line(), "0 passed, 1 failed");
    assert_true(rel_exists("rd/junit.xml") && rel_exists("rd/report.html"));
}

static void test_filters(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "--filter", "queue/a", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "1 passed, 0 failed");
    assert_int_equal(hx("run", "--filter", "queue/*", "--no-reports", NULL), 1);
    assert_string_equal(last_line(), "1 passed, 1 failed");
    /* Same option repeated: any; kinds combined: all. */
    assert_int_equal(hx("run", "--filter", "*/c", "--filter", "*/a", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "2 passed, 0 failed");
    assert_int_equal(hx("run", "--tag", "conflict", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "1 passed, 0 failed");
    assert_true(pos("conflicts/c") >= 0 && pos("queue/") < 0);
    assert_int_equal(hx("run", "--rule", "Q-2", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "1 passed, 0 failed");
    assert_true(pos("queue/a") >= 0);
    assert_int_equal(hx("run", "--tag", "queue", "--rule", "Q-4", "--no-reports", NULL), 1);
    assert_string_equal(last_line(), "0 passed, 1 failed");
    /* Nothing selected is an error, not a silent green. */
    assert_int_equal(hx("run", "--tag", "queue", "--rule", "CF-2", "--no-reports", NULL), 2);
    assert_non_null(strstr(g_err, "no scenario selected"));
    assert_int_equal(hx("run", "--rule", "Q-99", "--no-reports", NULL), 2);
    assert_non_null(strstr(g_err, "Q-99"));
}

/* The first scenarios are the slowest: with --jobs they finish last, yet
 * the output and the JSON keep the suite order. */
static void test_jobs_order_and_determinism(void **state)
{
    (void)state;
    char name[64], body[256];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "many/s%d.yaml", i);
        snprintf(body, sizeof body,
                 "{\"id\": \"many/s%d\", \"delay_ms\": %d, \"trace\": 200%s}\n", i,
                 (8 - i) * 15, i == 5 ? ", \"outcome\": \"fail\"" : "");
        write_file(name, body);
    }
    assert_int_equal(hx("run", "many", "--seed", "7", "--jobs", "1", "--no-reports", "--json",
                        "j1.json", "--no-wall-times", NULL), 1);
    char *out1 = strdup(g_out);
    assert_int_equal(hx("run", "many", "--seed", "7", "--jobs", "4", "--no-reports", "--json",
                        "j4.json", "--no-wall-times", NULL), 1);
    assert_string_equal(last_line(), "7 passed, 1 failed");
    long prev = -1;
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, " many/s%d ", i);
        long p = pos(name);
        assert_true(p > prev);
        prev = p;
    }
    assert_non_null(strstr(g_out, "jobs 4"));
    char *j1 = rel_slurp("j1.json"), *j4 = rel_slurp("j4.json");
    assert_non_null(j1);
    assert_string_equal(j1, j4);
    /* Same seed again (jobs 0: one per CPU): same bytes; other seed: other trace. */
    assert_int_equal(hx("run", "many", "--seed", "7", "--jobs", "0", "--no-reports", "--json",
                        "j0.json", "--no-wall-times", NULL), 1);
    char *j0 = rel_slurp("j0.json");
    assert_string_equal(j1, j0);
    assert_int_equal(hx("run", "many", "--seed", "8", "--no-reports", "--json", "j8.json",
                        "--no-wall-times", NULL),
                     1);
    char *j8 = rel_slurp("j8.json");
    assert_string_not_equal(j1, j8);
    /* The HTML report is deterministic too. */
    assert_int_equal(hx("run", "many", "--seed", "7", "--jobs", "3", "--no-reports", "--html",
                        "h1.html", "--no-wall-times", NULL), 1);
    assert_int_equal(hx("run", "many", "--seed", "7", "--no-reports", "--html", "h2.html",
                        "--no-wall-times", NULL),
                     1);
    char *h1 = rel_slurp("h1.html"), *h2 = rel_slurp("h2.html");
    assert_string_equal(h1, h2);
    assert_null(strstr(h1, "http://"));
    assert_null(strstr(h1, "https://"));
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "\"id\":\"many\\/s%d\"", i);
        assert_non_null(strstr(h1, name));
    }
    free(h1);
    free(h2);
    free(j0);
    free(j8);
    free(j1);
    free(j4);
    free(out1);
}

static void test_runtime_error(void **state)
{
    (void)state;
    write_file("err/x.yaml", "{\"id\": \"err/x\", \"outcome\": \"error\", \"failure\": \"boom\"}");
    write_file("err/y.yaml", A_PASS);
    assert_int_equal(hx("run", "err", "--no-reports", "--junit", "e.xml", NULL), 3);
    assert_string_equal(last_line(), "1 passed, 1 failed");
    assert_true(pos("ERROR err/x") >= 0);
    char *j = rel_slurp("e.xml");
    assert_non_null(strstr(j, "<error message=\"boom\""));
    free(j);
    /* A report that cannot be written is a runtime error too. */
    write_file("blocker", "x");
    assert_int_equal(hx("run", "good", "--no-reports", "--json", "blocker/r.json", NULL), 3);
    assert_non_null(strstr(g_err, "blocker"));
}

static void test_mode(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "good", "--mode", "sim", "--no-reports", NULL), 0);
    assert_int_equal(hx("run", "good", "--mode", "real", "--no-reports", NULL), 2);
    assert_non_null(strstr(g_err, "not implemented"));
    assert_int_equal(hx("run", "good", "--mode", "fast", NULL), 2);
}

static void test_usage_errors(void **state)
{
    (void)state;
    assert_int_equal(hx(NULL), 2);
    assert_int_equal(hx("frobnicate", NULL), 2);
    assert_non_null(strstr(g_err, "unknown command"));
    assert_int_equal(hx("run", "--bogus", NULL), 2);
    assert_non_null(strstr(g_err, "--bogus"));
    assert_int_equal(hx("run", "--seed", "abc", NULL), 2);
    assert_int_equal(hx("run", "--seed", "-1", NULL), 2);
    assert_int_equal(hx("run", "--seed", "99999999999999999999", NULL), 2);
    assert_int_equal(hx("run", "--jobs", "x", NULL), 2);
    assert_int_equal(hx("run", "--jobs", "100000", NULL), 2);
    assert_int_equal(hx("run", "--seed", NULL), 2);
    assert_non_null(strstr(g_err, "needs a value"));
    assert_int_equal(hx("run", "--filter", "", NULL), 2);
    assert_int_equal(hx("lint", "--seed", "3", NULL), 2);
    assert_int_equal(hx("run", "no/such/dir", NULL), 2);
    assert_non_null(strstr(g_err, "no/such/dir"));
    assert_int_equal(hx("--help", NULL), 0);
    assert_non_null(strstr(g_out, "usage: hp-harness run"));
    assert_int_equal(hx("run", "--help", NULL), 0);
    assert_int_equal(hx("--version", NULL), 0);
    assert_non_null(strstr(g_out, "hp-harness 0."));
}

/* ---- lint / list / validation ---------------------------------------- */

static void test_lint(void **state)
{
    (void)state;
    assert_int_equal(hx("lint", "good", NULL), 0);
    assert_string_equal(last_line(), "2 files OK");
    /* A symlink back to a directory being visited is not followed again. */
    char link[256];
    snprintf(link, sizeof link, "%s/good/self", g_dir);
    assert_int_equal(symlink(".", link), 0);
    assert_int_equal(hx("lint", "good", NULL), 0);
    assert_string_equal(last_line(), "2 files OK");
    assert_int_equal(hx("lint", NULL), 0);      /* default scenarios/ */
    assert_string_equal(last_line(), "3 files OK");
    write_file("bad/x.yaml", "{\"id\": \"bad/x\", \"diags\": [[3, 5, \"unknown key 'stpes' "
                             "(did you mean 'steps'?)\"], [9, 1, \"unknown client 'carol'\"]]}");
    write_file("bad/y.yaml", "{\"id\": \"bad/y\",\n  \"rules\": [1,]}\n");
    write_file("bad/z.yaml", A_PASS);
    assert_int_equal(hx("lint", "bad", NULL), 2);
    assert_non_null(strstr(g_err, "bad/x.yaml:3:5: unknown key 'stpes' (did you mean 'steps'?)"));
    assert_non_null(strstr(g_err, "bad/x.yaml:9:1: unknown client 'carol'"));
    assert_non_null(strstr(g_err, "bad/y.yaml:2:"));
    /* Invalid files stop a run before anything runs. */
    assert_int_equal(hx("run", "bad", "--no-reports", NULL), 2);
    assert_null(strstr(g_out, "PASS"));
    assert_int_equal(hx("list", "bad", NULL), 2);
    /* Empty directory. */
    write_file("empty/readme.md", "nothing");
    assert_int_equal(hx("lint", "empty", NULL), 2);
}

static void test_duplicate_ids(void **state)
{
    (void)state;
    write_file("dup/one.yaml", A_PASS);
    write_file("dup/two.yaml", "{\"name\": \"x\",\n\"id\": \"queue/a\"}\n");
    assert_int_equal(hx("lint", "dup", NULL), 2);
    assert_non_null(strstr(g_err, "dup/two.yaml:2:7: duplicate scenario id 'queue/a' (already "
                                  "used by dup/one.yaml)"));
    assert_int_equal(hx("run", "dup", "--no-reports", NULL), 2);
    /* The same file given twice is one scenario, not a duplicate. */
    assert_int_equal(hx("lint", "good", "good/one.yaml", NULL), 0);
    assert_string_equal(last_line(), "2 files OK");
}

static void test_list(void **state)
{
    (void)state;
    assert_int_equal(hx("list", NULL), 0);
    assert_non_null(strstr(g_out, "conflicts/c  rules: CF-2  tags: conflict\n"));
    assert_non_null(strstr(g_out, "queue/b      rules: Q-4  tags: queue,retry\n"));
    assert_int_equal(hx("list", "--tag", "retry", "--json", NULL), 0);
    json_error_t je;
    json_t *arr = json_loads(g_out, 0, &je);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "id")),
                        "queue/b");
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_all_pass_and_explicit_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_order_and_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

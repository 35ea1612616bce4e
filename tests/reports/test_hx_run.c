/*
 * test_hx_run.c - what `hp-harness run` explains and how it scales out,
 * against the fake engine (hx-fake): every failed assertion and the
 * timeline under a failure, colour (TTY, NO_COLOR, --color), -v,
 * -x/--fail-fast, per-step virtual and wall times in JSON and HTML,
 * --trace compact|full, the single "reports:" line, --shard K/N (with and
 * without --shard-durations) and merge-reports (counts, rule table, exit
 * status, overlapping shards refused).
 */
#define _GNU_SOURCE
#include "hx_cli_util.h"

#include <pty.h>
#include <errno.h>

/* A failing scenario with two more failed assertions and a long trace. */
#define F_MULTI "{\"id\": \"q/multi\", \"rules\": [\"Q-4\"], \"outcome\": \"fail\", \"line\": 14," \
                " \"failure\": \"alice.queue: expected 0, got 2\", \"trace\": 90," \
                " \"more\": [[20, \"expected t2, got nothing\"], [31, \"expected 3, got 1\"]]}\n"
#define P_ONE "{\"id\": \"q/one\", \"rules\": [\"Q-1\"], \"trace\": 60}\n"

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/hx-run-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    write_file("s/a-multi.yaml", F_MULTI);
    write_file("s/b-one.yaml", P_ONE);
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

/* hx-fake with stdout on a pseudo-terminal (NO_COLOR set to no_color, or
 * unset when NULL); its output in g_out.  Returns the exit code. */
static int hx_tty(const char *no_color, const char *a1, const char *a2, const char *a3)
{
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(g_dir) != 0)
            _exit(126);
        if (no_color)
            setenv("NO_COLOR", no_color, 1);
        else
            unsetenv("NO_COLOR");
        execl(HX_FAKE_BIN, HX_FAKE_BIN, a1, a2, a3, (char *)NULL);
        _exit(127);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = read(master, buf + n, 4096);
        if (k > 0)
            n += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else
            break; /* EIO: the child closed the terminal */
    }
    buf[n] = '\0';
    close(master);
    int st;
    waitpid(pid, &st, 0);
    free(g_out);
    g_out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the terminal ------------------------------------------------------- */

static void test_every_failure_and_timeline(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "s", "--no-reports", NULL), 1);
    /* the first failure under the line, then all three */
    long first = pos("      s/a-multi.yaml:14: alice.queue: expected 0, got 2\n");
    long all = pos("      3 failed assertions:\n");
    assert_true(first >= 0 && all > first);
    assert_true(pos("      s/a-multi.yaml:20 more: expected t2, got nothing\n") > all);
    assert_true(pos("      s/a-multi.yaml:31 more: expected 3, got 1\n") > all);
    /* the timeline: a header and records in lanes, heartbeats left out */
    long tl = pos("      timeline: the last ");
    assert_true(tl > all);
    assert_true(pos("PUT /api/v0.2/tasks/t1 key=m-1 -> ") > tl);
    assert_true(pos(" WARNING ") > tl);
    assert_true(pos(" notify ") > tl);
    assert_true(pos(" step    line ") > tl);
    /* a passed scenario gets no timeline without -v, and no colour off a TTY */
    assert_int_equal(pos("timeline: 0"), -1);
    long one = pos("PASS  q/one");
    assert_true(one > tl);
    assert_null(strstr(g_out + one, "timeline"));
    assert_null(strchr(g_out, '\033'));
    /* --timeline N bounds the records shown */
    assert_int_equal(hx("run", "s", "--no-reports", "--timeline", "3", NULL), 1);
    assert_true(pos("timeline: the last 3 of ") >= 0);
    assert_int_equal(hx("run", "s", "--no-reports", "--timeline", "0", NULL), 2);
}

static void test_verbose(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "s/b-one.yaml", "--no-reports", "-v", NULL), 0);
    assert_true(pos("PASS  q/one") >= 0);
    assert_true(pos("      timeline: ") > pos("PASS  q/one"));
    assert_true(pos("PUT /api/v0.2/tasks/t1") >= 0);
    assert_int_equal(hx("run", "s/b-one.yaml", "--no-reports", "--verbose", NULL), 0);
    assert_true(pos("      timeline: ") >= 0);
}

static void test_color(void **state)
{
    (void)state;
    /* forced on: escapes even in a file */
    assert_int_equal(hx("run", "s", "--no-reports", "--color", "always", NULL), 1);
    assert_non_null(strstr(g_out, "\033[1;31mFAIL"));
    assert_int_equal(hx("run", "s", "--no-reports", "--color", "sometimes", NULL), 2);
    /* a TTY: colour by default, none with NO_COLOR or --color never */
    assert_int_equal(hx_tty(NULL, "run", "s", "--no-reports"), 1);
    assert_non_null(strstr(g_out, "\033[1;31mFAIL"));
    assert_int_equal(hx_tty("1", "run", "s", "--no-reports"), 1);
    assert_non_null(strstr(g_out, "FAIL"));
    assert_null(strchr(g_out, '\033'));
    assert_int_equal(hx_tty(NULL, "run", "s", "--color=never"), 1);
    assert_null(strchr(g_out, '\033'));
    /* an empty NO_COLOR does not count (no-color.org) */
    assert_int_equal(hx_tty("", "run", "s", "--no-reports"), 1);
    assert_non_null(strchr(g_out, '\033'));
}

static void test_fail_fast(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char name[64], body[160];
        snprintf(name, sizeof name, "ff/s%d.yaml", i);
        snprintf(body, sizeof body, "{\"id\": \"ff/s%d\", \"delay_ms\": %d%s}\n", i, 5 * (5 - i),
                 i == 1 ? ", \"outcome\": \"fail\"" : "");
        write_file(name, body);
    }
    const char *jobs[] = {"1", "4"};
    for (int j = 0; j < 2; j++) {
        assert_int_equal(hx("run", "ff", "-x", "--jobs", jobs[j], "--no-reports", "--json",
                            "ff.json", NULL), 1);
        assert_string_equal(last_line(), "1 passed, 1 failed");
        assert_true(pos("stopped at the first failure (--fail-fast): 3 scenarios not run\n") >= 0);
        assert_int_equal(pos("ff/s2"), -1);
        char *j = rel_slurp("ff.json");
        json_t *doc = json_loads(j, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(doc, "scenarios")), 2);
        json_decref(doc);
        free(j);
    }
    /* without -x everything runs */
    assert_int_equal(hx("run", "ff", "--no-reports", NULL), 1);
    assert_string_equal(last_line(), "4 passed, 1 failed");
    assert_int_equal(hx("run", "ff", "--fail-fast", "--filter", "ff/s0", "--no-reports", NULL),
                     0);
}

/* ---- reports ------------------------------------------------------------ */

static json_t *load_rel(const char *rel)
{
    char *t = rel_slurp(rel);
    assert_non_null(t);
    json_error_t je;
    json_t *doc = json_loads(t, 0, &je);
    if (!doc)
        fail_msg("%s: %s", rel, je.text);
    free(t);
    return doc;
}

static json_t *scenario(json_t *doc, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(doc, "scenarios"), i, s) {
        if (!strcmp(json_string_value(json_object_get(s, "id")), id))
            return s;
    }
    fail_msg("no scenario %s", id);
    return NULL;
}

static void test_step_times_and_trace_modes(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "s", "--no-reports", "--json", "c.json", "--html", "c.html",
                        NULL), 1);
    json_t *doc = load_rel("c.json");
    assert_string_equal(json_string_value(json_object_get(doc, "trace")), "compact");
    json_t *one = scenario(doc, "q/one");
    assert_true(json_is_number(json_object_get(one, "wall_ms")));
    size_t i, steps = 0;
    json_t *e;
    json_array_foreach(json_object_get(one, "trace"), i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        /* compact, passed: steps, notifications and warnings only */
        assert_true(!strcmp(type, "step") || !strcmp(type, "notify") || !strcmp(type, "log"));
        if (strcmp(type, "step"))
            continue;
        steps++;
        /* the fake engine spends 0.25 ms x (step number) on each step */
        assert_true(json_is_integer(json_object_get(e, "sim_ms")));
        assert_true(json_number_value(json_object_get(e, "wall_ms")) == 0.25 * (double)steps);
    }
    assert_int_equal(steps, 9); /* 60 records, every 7th a step */
    assert_true(json_integer_value(json_object_get(one, "trace_omitted")) > 0);
    /* the failed scenario keeps its requests and frames */
    json_t *multi = scenario(doc, "q/multi");
    int http = 0;
    json_array_foreach(json_object_get(multi, "trace"), i, e) http +=
        !strcmp(json_string_value(json_object_get(e, "type")), "http");
    assert_true(http > 0);
    json_decref(doc);
    char *h = rel_slurp("c.html");
    assert_non_null(strstr(h, "\"wall_ms\":0.25"));
    assert_non_null(strstr(h, "step times"));
    free(h);

    /* --trace full keeps every record; --no-wall-times drops wall_ms */
    assert_int_equal(hx("run", "s", "--no-reports", "--json", "f.json", "--trace", "full",
                        "--no-wall-times", NULL), 1);
    doc = load_rel("f.json");
    assert_string_equal(json_string_value(json_object_get(doc, "trace")), "full");
    one = scenario(doc, "q/one");
    assert_int_equal(json_array_size(json_object_get(one, "trace")), 60);
    assert_null(json_object_get(one, "trace_omitted"));
    assert_null(json_object_get(one, "wall_ms"));
    char *f = rel_slurp("f.json");
    assert_null(strstr(f, "wall_ms"));
    free(f);
    json_decref(doc);
    assert_int_equal(hx("run", "s", "--trace", "most", NULL), 2);
}

static void test_one_reports_line(void **state)
{
    (void)state;
    assert_int_equal(hx("run", "s", "--reports-dir", "out/r", NULL), 1);
    assert_true(pos("\nreports: out/r/ (junit.xml, report.json, report.html)\n") >= 0);
    assert_true(rel_exists("out/r/report.html"));
    assert_int_equal(hx("run", "s", "--no-reports", "--json", "x.json", "--junit", "y/j.xml",
                        NULL), 1);
    assert_true(pos("\nreports: y/j.xml, x.json\n") >= 0);
    /* JUnit's failure body explains as the terminal does */
    char *j = rel_slurp("y/j.xml");
    assert_non_null(strstr(j, "3 failed assertions:"));
    assert_non_null(strstr(j, "timeline: the last "));
    assert_null(strchr(j, '\033'));
    free(j);
    assert_int_equal(hx("run", "s", "--no-reports", NULL), 1);
    assert_int_equal(pos("reports:"), -1);
}

/* ---- sharding ----------------------------------------------------------- */

static void write_suite(int n)
{
    for (int i = 0; i < n; i++) {
        char name[64], body[200];
        snprintf(name, sizeof name, "suite/g%d/s%02d.yaml", i % 3, i);
        snprintf(body, sizeof body, "{\"id\": \"g%d/s%02d\", \"rules\": [\"%s\"], \"trace\": 15%s}\n",
                 i % 3, i, i % 2 ? "Q-1" : "WS-1", i == 4 ? ", \"outcome\": \"fail\"" : "");
        write_file(name, body);
    }
}

static void test_shard_split(void **state)
{
    (void)state;
    write_suite(10);
    json_t *seen = json_object();
    for (int k = 1; k <= 3; k++) {
        char spec[16], out[32];
        snprintf(spec, sizeof spec, "%d/3", k);
        snprintf(out, sizeof out, "sh%d.json", k);
        int rc = hx("run", "suite", "--shard", spec, "--no-reports", "--json", out, NULL);
        assert_true(rc == 0 || rc == 1);
        char want[64];
        snprintf(want, sizeof want, "shard %d/3: %d of 10 scenarios\n", k, k == 1 ? 4 : 3);
        assert_true(pos(want) >= 0);
        json_t *doc = load_rel(out);
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(doc, "scenarios"), i, s) {
            const char *id = json_string_value(json_object_get(s, "id"));
            assert_null(json_object_get(seen, id)); /* in exactly one shard */
            json_object_set_new(seen, id, json_integer(k));
        }
        json_decref(doc);
    }
    assert_int_equal(json_object_size(seen), 10);
    /* the same split again (deterministic) */
    assert_true(hx("run", "suite", "--shard", "2/3", "--no-reports", NULL) <= 1);
    char *again = strdup(g_out);
    assert_true(hx("run", "suite", "--shard", "2/3", "--no-reports", "--jobs", "3", NULL) <= 1);
    /* same scenarios in the same order, whatever the wall times */
    for (const char *p = again; (p = strstr(p, "  (sim")); p++) {
        const char *l = p;
        while (l > again && l[-1] != '\n')
            l--;
        char id[64];
        snprintf(id, sizeof id, "%.*s", (int)(p - l), l);
        assert_true(pos(id) >= 0);
    }
    free(again);
    json_decref(seen);
    /* more shards than scenarios: an empty shard passes */
    assert_int_equal(hx("run", "suite", "--filter", "g0/s00", "--shard", "2/2", "--no-reports",
                        NULL), 0);
    assert_string_equal(last_line(), "0 passed, 0 failed");
    const char *bad[] = {"0/3", "4/3", "3", "1/0", "a/b", "1/3x", "1/1001"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(hx("run", "suite", "--shard", bad[i], NULL), 2);
        assert_non_null(strstr(g_err, "--shard wants K/N"));
    }
}

static void test_shard_durations(void **state)
{
    (void)state;
    write_suite(6);
    /* s00 is as long as all the others together: alone on one shard */
    write_file("dur.json",
               "{\"scenarios\": [{\"id\": \"g0/s00\", \"wall_ms\": 500},"
               " {\"id\": \"g1/s01\", \"wall_ms\": 100}, {\"id\": \"g2/s02\", \"wall_ms\": 100},"
               " {\"id\": \"g0/s03\", \"wall_ms\": 100}, {\"id\": \"g1/s04\", \"wall_ms\": 100},"
               " {\"id\": \"gone\", \"wall_ms\": 9}]}");
    /* g2/s05 is unknown: it counts as the mean of the known (151.5) */
    assert_true(hx("run", "suite", "--shard", "1/2", "--shard-durations", "dur.json",
                   "--no-reports", NULL) <= 1);
    assert_true(pos("shard 1/2: 1 of 6 scenarios\n") >= 0);
    assert_true(pos("g0/s00") >= 0);
    assert_true(hx("run", "suite", "--shard", "2/2", "--shard-durations", "dur.json",
                   "--no-reports", NULL) <= 1);
    assert_true(pos("shard 2/2: 5 of 6 scenarios\n") >= 0);
    assert_int_equal(pos("g0/s00"), -1);
    write_file("bad.json", "{\"scenarios\": 3}");
    assert_int_equal(hx("run", "suite", "--shard", "1/2", "--shard-durations", "bad.json", NULL),
                     2);
    assert_non_null(strstr(g_err, "not an hp-harness JSON report"));
    assert_int_equal(hx("run", "suite", "--shard", "1/2", "--shard-durations", "none.json",
                        NULL), 2);
}

static void test_merge_reports(void **state)
{
    (void)state;
    write_suite(10);
    /* the unsharded run, for comparison */
    assert_int_equal(hx("run", "suite", "--no-reports", "--json", "all.json", "--no-wall-times",
                        "--require-rules", "WS-1", NULL), 1);
    const char *whole = strdup(last_line());
    int shard_rc[4] = {0};
    for (int k = 1; k <= 3; k++) {
        char spec[16], out[32];
        snprintf(spec, sizeof spec, "%d/3", k);
        snprintf(out, sizeof out, "m%d.json", k);
        shard_rc[k] = hx("run", "suite", "--shard", spec, "--no-reports", "--json", out,
                         "--no-wall-times", "--require-rules", "WS-1", NULL);
        assert_true(shard_rc[k] <= 1);
    }
    assert_int_equal(hx("merge-reports", "m3.json", "m1.json", "m2.json", "--reports-dir",
                        "merged", NULL), 1);
    assert_string_equal(last_line(), whole);
    assert_true(pos("FAIL  g1/s04") >= 0);
    assert_true(pos("reports: merged/ (junit.xml, report.json, report.html)\n") >= 0);
    /* the merged JSON is the unsharded one: order, counts, rule table */
    json_t *a = load_rel("all.json"), *m = load_rel("merged/report.json");
    assert_true(json_equal(json_object_get(a, "summary"), json_object_get(m, "summary")));
    assert_true(json_equal(json_object_get(a, "index"), json_object_get(m, "index")));
    assert_true(json_equal(json_object_get(a, "rules"), json_object_get(m, "rules")));
    assert_true(json_equal(json_object_get(a, "scenarios"), json_object_get(m, "scenarios")));
    json_decref(a);
    json_decref(m);
    /* JUnit: the same counts as the unsharded run's (time aside) */
    assert_int_equal(hx("run", "suite", "--no-reports", "--junit", "all.xml",
                        "--require-rules", "WS-1", NULL), 1);
    char *j = rel_slurp("merged/junit.xml"), *ja = rel_slurp("all.xml");
    char *c1 = strstr(j, " tests=\""), *c2 = strstr(ja, " tests=\"");
    assert_non_null(c1);
    assert_non_null(c2);
    *strstr(c1, " time=") = '\0';
    *strstr(c2, " time=") = '\0';
    assert_string_equal(c1, c2);
    free(j);
    free(ja);
    /* A shard does not fail on a required rule another shard checks:
     * merge-reports judges them on the whole. */
    assert_int_equal(shard_rc[1], 0);
    assert_int_equal(shard_rc[2], 0);
    assert_int_equal(shard_rc[3], 1); /* g1/s04 fails */
    assert_int_equal(hx("merge-reports", "m1.json", "m2.json", "--no-reports", NULL), 1);
    assert_non_null(strstr(last_line(), "required but unchecked: WS-1"));
    /* without a required rule, passing shards merge to exit 0 */
    assert_int_equal(hx("run", "suite", "--shard", "1/3", "--no-reports", "--json", "p1.json",
                        NULL), 0);
    assert_int_equal(hx("merge-reports", "p1.json", "--no-reports", NULL), 0);
    assert_string_equal(last_line(), "4 passed, 0 failed");
    /* overlapping shards, mixed seeds, bad input: refused */
    assert_int_equal(hx("merge-reports", "m1.json", "m1.json", "--no-reports", NULL), 2);
    assert_non_null(strstr(g_err, "more than one report"));
    assert_true(hx("run", "suite", "--shard", "1/3", "--seed", "9", "--no-reports", "--json",
                   "s9.json", NULL) <= 1);
    assert_int_equal(hx("merge-reports", "m2.json", "s9.json", "--no-reports", NULL), 2);
    assert_non_null(strstr(g_err, "seed"));
    write_file("junk.json", "[1, 2");
    assert_int_equal(hx("merge-reports", "junk.json", NULL), 2);
    assert_int_equal(hx("merge-reports", NULL), 2);
    assert_int_equal(hx("merge-reports", "m1.json", "--bogus", NULL), 2);
    free((char *)whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_failure_and_timeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verbose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_color, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_times_and_trace_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_reports_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shard_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_reports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

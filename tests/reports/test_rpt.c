/*
 * test_rpt.c - the report writers on hand-made results: XML escaping and
 * JUnit well-formedness, JSON determinism and shape, the HTML page's
 * self-containment and its embedded data, the terminal lines.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpt.h"

#define NASTY "expected <title> & \"Milk\" 'x', got ]]> </script><!-- \x01 \xff"
/* What JSON keeps of it: the invalid UTF-8 byte becomes '?'. */
#define NASTY_JSON "expected <title> & \"Milk\" 'x', got ]]> </script><!-- \x01 ?"

/* ---- helpers ---------------------------------------------------------- */

static char *capture(rpt_writer w, const rpt_run *run)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(w(f, run), 0);
    fclose(f);
    return buf;
}

static void make(scn_result *r, const char *id, int passed, double wall)
{
    memset(r, 0, sizeof *r);
    r->id = strdup(id);
    r->name = strdup("Name with <b>tags</b> & \"quotes\"");
    if (asprintf(&r->file, "scenarios/%s.yaml", id) < 0)
        r->file = NULL;
    r->rules = json_pack("[s,s]", "Q-1", "CF-2");
    r->tags = json_pack("[s]", "queue");
    r->passed = passed;
    r->failure_step = -1;
    if (!passed) {
        r->failure = strdup(NASTY);
        if (asprintf(&r->failure_loc, "%s:12", r->file) < 0)
            r->failure_loc = NULL;
        r->failure_step = 1;
    }
    r->sim_ms = 1865000;
    r->messages = 3;
    r->wall_ms = wall;
    r->checks = json_pack("[{s:s,s:b,s:s}]", "name", "invariants", "passed", passed, "detail",
                          passed ? "" : "expected 0, got 2");
    r->trace = json_pack(
        "[{s:i,s:s,s:s,s:i,s:i,s:s},"
        " {s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s},"
        " {s:i,s:s,s:s,s:s,s:s,s:s},"
        " {s:i,s:s,s:s,s:s,s:s}]",
        "t", 0, "actor", "harness", "type", "step", "index", 0, "line", 9, "text",
        "alice: {edit: {title: '</script><script>alert(1)</script>'}}",
        "t", 1000, "actor", "alice", "type", "http", "from", "alice", "to", "server", "method",
        "PUT", "path", "/api/v0.2/tasks/t1", "status", 409, "idem_key", "m-1",
        "t", 2000, "actor", "server", "type", "ws", "from", "server", "to", "alice", "data",
        "{\"type\":\"HEARTBEAT\",\"note\":\"see http://example.invalid/\"}",
        "t", 3000, "actor", "server", "type", "log", "level", "WARNING", "line",
        "WARNING fake_server conflict entity=task/t1 <!-- https://x.invalid");
}

typedef struct fixture {
    scn_result r[3];
    int errors[3];
    rpt_run run;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    make(&fx->r[0], "queue/fifo", 1, 1.5);
    make(&fx->r[1], "conflicts/banner-merge", 0, 2.25);
    make(&fx->r[2], "top-level", 0, 0.5);
    fx->errors[2] = 1;
    fx->run = (rpt_run){fx->r, fx->errors, 3, {42, "sim", HX_VERSION, 0, 0}, NULL, NULL};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < 3; i++)
        scn_result_clear(&fx->r[i]);
    free(fx);
    return 0;
}

/* ---- a small XML well-formedness checker ------------------------------ */

static int valid_ref(const char **pp)
{
    const char *p = *pp;    /* at '&' */
    static const char *const names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(p, names[i], strlen(names[i])) == 0) {
            *pp = p + strlen(names[i]);
            return 1;
        }
    if (p[1] == '#') {
        const char *q = p + 2;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q > p + 2 && *q == ';') {
            *pp = q + 1;
            return 1;
        }
    }
    return 0;
}

/* Checks tags nest, attribute values are quoted and hold no '<' or raw
 * quote, every '&' is a known reference, no control characters, one root.
 * Returns the number of elements named `count_name`, or -1. */
static int xml_check(const char *x, const char *count_name, const char **why)
{
    char stack[32][64];
    int depth = 0, roots = 0, counted = 0;
    const char *p = x;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p)
            return *why = "unterminated declaration", -1;
        p += 2;
    }
    while (*p) {
        if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r')
            return *why = "control character", -1;
        if (*p == '&') {
            if (!valid_ref(&p))
                return *why = "bad reference in text", -1;
            continue;
        }
        if (*p == '>')
            return *why = "raw '>' in text (allowed, but we escape it)", -1;
        if (*p != '<') {
            if (depth == 0 && *p != '\n' && *p != ' ')
                return *why = "text outside the root", -1;
            p++;
            continue;
        }
        p++;
        if (*p == '/') {
            p++;
            size_t n = strcspn(p, ">");
            if (depth == 0 || strlen(stack[depth - 1]) != n ||
                strncmp(stack[depth - 1], p, n) != 0)
                return *why = "mismatched end tag", -1;
            depth--;
            p += n + 1;
            continue;
        }
        size_t n = strcspn(p, " />");
        if (n == 0 || n >= 64 || depth >= 32)
            return *why = "bad tag name", -1;
        if (depth == 0 && ++roots > 1)
            return *why = "two roots", -1;
        memcpy(stack[depth], p, n);
        stack[depth][n] = '\0';
        if (strcmp(stack[depth], count_name) == 0)
            counted++;
        p += n;
        for (;;) {
            while (*p == ' ')
                p++;
            if (*p == '/' && p[1] == '>') {
                p += 2;
                break;
            }
            if (*p == '>') {
                p++;
                depth++;
                break;
            }
            size_t an = strcspn(p, "=> ");
            if (an == 0 || p[an] != '=' || p[an + 1] != '"')
                return *why = "attribute without a quoted value", -1;
            p += an + 2;
            while (*p != '"') {
                if (!*p || *p == '<' || (unsigned char)*p < 0x20)
                    return *why = "bad character in attribute value", -1;
                if (*p == '&') {
                    if (!valid_ref(&p))
                        return *why = "bad reference in attribute", -1;
                } else {
                    p++;
                }
            }
            p++;
        }
    }
    if (depth != 0 || roots != 1)
        return *why = "unclosed elements", -1;
    return counted;
}

/* ---- tests ------------------------------------------------------------ */

static void test_xml_escape(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rpt_xml_escape(f, "a<b>&\"c\" 'd'\ne\x01\xff\xc3\xa9");
    fclose(f);
    assert_string_equal(buf, "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;&#10;e??\xc3\xa9");
    free(buf);
}

static void test_classname(void **state)
{
    (void)state;
    char b[64];
    rpt_junit_classname("queue/fifo", b, sizeof b);
    assert_string_equal(b, "queue");
    rpt_junit_classname("a/b/c", b, sizeof b);
    assert_string_equal(b, "a/b");
    rpt_junit_classname("plain", b, sizeof b);
    assert_string_equal(b, "scenarios");
    rpt_junit_classname("long/x", b, 3);
    assert_string_equal(b, "lo");
}

static void test_junit(void **state)
{
    fixture *fx = *state;
    char *x = capture(rpt_junit_write, &fx->run);
    const char *why = NULL;
    int cases = xml_check(x, "testcase", &why);
    if (cases < 0)
        fail_msg("JUnit not well-formed: %s\n%s", why, x);
    assert_int_equal(cases, 3);
    assert_non_null(strstr(x, "tests=\"3\" failures=\"1\" errors=\"1\""));
    assert_non_null(strstr(x, "classname=\"conflicts\" name=\"conflicts/banner-merge\""));
    assert_non_null(strstr(x, "classname=\"scenarios\" name=\"top-level\""));
    /* The assertion text with its file:line, escaped, in message= and body. */
    assert_non_null(strstr(x, "<failure message=\"scenarios/conflicts/banner-merge.yaml:12: "
                              "expected &lt;title&gt; &amp; &quot;Milk&quot; &apos;x&apos;"));
    assert_non_null(strstr(x, "<error message=\"scenarios/top-level.yaml:12:"));
    assert_non_null(strstr(x, "time=\"0.002\""));
    assert_null(strstr(x, "]]>"));
    free(x);
}

static void test_json_deterministic(void **state)
{
    fixture *fx = *state;
    fx->run.meta.no_wall = 1;   /* --no-wall-times: same seed, same bytes */
    char *a = capture(rpt_json_write, &fx->run);
    fx->r[0].wall_ms = 999.0;    /* wall time must not matter */
    fx->r[1].wall_ms = 0.001;
    char *b = capture(rpt_json_write, &fx->run);
    assert_string_equal(a, b);
    assert_null(strstr(a, "wall"));
    free(b);

    json_error_t je;
    json_t *doc = json_loads(a, 0, &je);
    assert_non_null(doc);
    /* Keys are sorted: re-dumping with sorted keys gives the same bytes. */
    char *again = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n = strlen(again);
    assert_int_equal(strlen(a), n + 1);
    assert_memory_equal(a, again, n);
    free(again);

    assert_string_equal(json_string_value(json_object_get(doc, "version")), HX_VERSION);
    assert_int_equal(json_integer_value(json_object_get(doc, "seed")), 42);
    json_t *sum = json_object_get(doc, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "passed")), 1);
    assert_int_equal(json_integer_value(json_object_get(sum, "failed")), 2);
    assert_int_equal(json_integer_value(json_object_get(sum, "errors")), 1);
    json_t *index = json_object_get(doc, "index");
    assert_int_equal(json_array_size(index), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(index, 1), "file")),
                        "scenarios/conflicts/banner-merge.yaml");
    json_t *s1 = json_array_get(json_object_get(doc, "scenarios"), 1);
    assert_string_equal(json_string_value(json_object_get(s1, "failure")), NASTY_JSON);
    assert_string_equal(json_string_value(json_object_get(s1, "failure_loc")),
                        "scenarios/conflicts/banner-merge.yaml:12");
    assert_int_equal(json_integer_value(json_object_get(s1, "sim_ms")), 1865000);
    assert_int_equal(json_array_size(json_object_get(s1, "trace")), 4);
    json_t *s0 = json_array_get(json_object_get(doc, "scenarios"), 0);
    assert_true(json_is_null(json_object_get(s0, "failure")));
    assert_true(json_is_true(json_object_get(json_array_get(json_object_get(doc, "scenarios"), 2),
                                             "error")));
    json_decref(doc);
    free(a);
}

/* The data block of the page, unescaped by jansson, must be the JSON
 * report itself: every scenario embedded, strings intact. */
static void test_html(void **state)
{
    fixture *fx = *state;
    fx->run.meta.no_wall = 1;
    char *h = capture(rpt_html_write, &fx->run);
    assert_null(strstr(h, "http://"));
    assert_null(strstr(h, "https://"));
    assert_null(strstr(h, "<!--"));
    assert_null(strstr(h, "<link"));
    assert_null(strstr(h, " src="));
    assert_null(strstr(h, "@import"));
    /* url() only for in-page references (SVG markers). */
    for (const char *p = h; (p = strstr(p, "url(")); p++)
        assert_int_equal(p[4], '#');
    /* Exactly two script elements: the data and the code. */
    int ends = 0;
    for (const char *p = h; (p = strcasestr(p, "</script")); p++)
        ends++;
    assert_int_equal(ends, 2);
    const char *open = "<script type=\"application/json\" id=\"hx-data\">";
    char *start = strstr(h, open);
    assert_non_null(start);
    start += strlen(open);
    char *end = strstr(start, "</script>");
    assert_non_null(end);
    *end = '\0';
    json_error_t je;
    json_t *doc = json_loads(start, 0, &je);
    if (!doc)
        fail_msg("embedded JSON does not parse: %s", je.text);
    json_t *want = rpt_json_build(&fx->run);
    assert_true(json_equal(doc, want));
    json_decref(want);
    json_decref(doc);
    *end = '<';
    /* Deterministic too. */
    fx->r[0].wall_ms = 12345;
    char *h2 = capture(rpt_html_write, &fx->run);
    assert_string_equal(h, h2);
    free(h2);
    free(h);
}

static void test_term(void **state)
{
    fixture *fx = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (size_t i = 0; i < fx->run.n; i++)
        rpt_term_line(f, &fx->r[i], fx->errors[i]);
    rpt_term_summary(f, &fx->run);
    fclose(f);
    assert_non_null(strstr(buf, "PASS  queue/fifo  (sim 31m05.000s, wall 1.50 ms)\n"));
    assert_non_null(strstr(buf, "FAIL  conflicts/banner-merge"));
    assert_non_null(strstr(buf, "\n      scenarios/conflicts/banner-merge.yaml:12: expected"));
    assert_non_null(strstr(buf, "ERROR top-level"));
    size_t n = strlen(buf);
    const char *last = "1 passed, 2 failed\n";
    assert_true(n > strlen(last));
    assert_string_equal(buf + n - strlen(last), last);
    assert_int_equal(buf[n - strlen(last) - 1], '\n');
    free(buf);
}

static void test_write_file(void **state)
{
    fixture *fx = *state;
    char dir[] = "/tmp/rpt-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/a/b/report.json", dir);
    assert_int_equal(rpt_write_file(path, rpt_json_write, &fx->run, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fclose(f);
    /* A directory where the file should be: an error, not a crash. */
    snprintf(path, sizeof path, "%s/a", dir);
    assert_int_equal(rpt_write_file(path, rpt_json_write, &fx->run, err, sizeof err), -1);
    assert_non_null(strstr(err, "a"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* --require-rules (SPEC §7): a required rule counts as checked only with a
 * PASSING observable check; a rule whose checks were all unobservable, or
 * failed, or whose scenario was skipped, stays unchecked and fails the run. */
static void rules_case(const char *verdict, int passed, int skipped, int want_unchecked)
{
    scn_result r;
    memset(&r, 0, sizeof r);
    r.rules = json_pack("[s]", "WS-3");
    r.passed = skipped ? 0 : 1;
    r.skipped = skipped;
    r.failure_step = -1;
    r.trace = json_pack("[{s:s,s:i},{s:s,s:s,s:b,s:i}]", "type", "step", "line", 9, "type",
                        "assert", "verdict", verdict, "passed", passed, "line", 10);
    r.checks = json_array();
    rpt_run run = {&r, NULL, 1, {1, "real", "t", 0, 0}, NULL, NULL};
    json_t *req = json_pack("[s]", "WS-3");
    json_t *table = rpt_rules_build(&run, req);
    json_t *un = rpt_rules_unchecked(table);
    size_t total = 0;
    size_t checked = rpt_rules_checked(table, &total);
    if ((json_array_size(un) == 1) != want_unchecked)
        fail_msg("verdict %s (passed %d, skipped %d): WS-3 %s", verdict, passed, skipped,
                 want_unchecked ? "counted as checked" : "left unchecked");
    assert_int_equal(checked, want_unchecked ? 0 : 1);
    assert_int_equal(total, 27);
    json_decref(un);
    json_decref(table);
    json_decref(req);
    json_decref(r.rules);
    json_decref(r.trace);
    json_decref(r.checks);
}

static void test_rules_required_unchecked(void **state)
{
    (void)state;
    rules_case("unobservable", 0, 0, 1);
    rules_case("failed", 0, 0, 1);
    rules_case("passed", 1, 1, 1); /* a skipped scenario's checks do not count */
    rules_case("passed", 1, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_escape),
        cmocka_unit_test(test_classname),
        cmocka_unit_test_setup_teardown(test_junit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file, setup, teardown),
        cmocka_unit_test(test_rules_required_unchecked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

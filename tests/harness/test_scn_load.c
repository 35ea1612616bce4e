/*
 * test_scn_load.c - the scenario language: YAML positions, validation
 * messages (golden file:line:col strings), durations, suggestions, the
 * schema staying in sync with the validator, and every suite file loading.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "scn_internal.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* All diagnostics of loading text as `file`, one per line. */
static char *diags_of(const char *file, const char *text)
{
    scn_diags d = {0};
    scn_scenario *s = NULL;
    int rc = scn_load_string(file, text, strlen(text), &s, &d);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    scn_diags_print(&d, m);
    fclose(m);
    if (rc == 0) {
        assert_int_equal(d.n, 0);
        scn_free(s);
    } else {
        assert_true(d.n > 0);
        assert_null(s);
    }
    scn_diags_free(&d);
    return out;
}

static const char *MINIMAL = "id: t/x\n"
                             "name: x\n"
                             "rules: [Q-1]\n"
                             "clients: {alice: {}}\n"
                             "steps:\n"
                             "  - alice: connect\n";

/* ---- YAML positions ----------------------------------------------------- */

static void test_yaml_positions(void **st)
{
    (void)st;
    const char *text = "a: 1\n"
                       "b:\n"
                       "  - x\n"
                       "  - {k: \"v\", n: 3}\n";
    scn_diags d = {0};
    scn_node *root = NULL;
    assert_int_equal(scn_yaml_parse("p.yaml", text, strlen(text), &root, &d), 0);
    assert_int_equal(root->kind, SCN_MAP);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->col, 1);
    const scn_node *a = scn_map_get(root, "a");
    assert_int_equal(a->line, 1);
    assert_int_equal(a->col, 4);
    assert_int_equal(scn_map_key(root, "b")->line, 2);
    const scn_node *b = scn_map_get(root, "b");
    assert_int_equal(b->kind, SCN_SEQ);
    assert_int_equal(b->items[0]->line, 3);
    assert_int_equal(b->items[0]->col, 5);
    const scn_node *m = b->items[1];
    assert_int_equal(m->line, 4);
    assert_int_equal(m->col, 5);
    const scn_node *v = scn_map_get(m, "v") ? NULL : scn_map_get(m, "k");
    assert_non_null(v);
    assert_string_equal(v->str, "v");
    assert_false(v->plain);
    assert_int_equal(v->col, 9);
    assert_int_equal(scn_map_key(m, "n")->col, 14);
    json_t *j = scn_node_json(m);
    assert_true(json_is_integer(json_object_get(j, "n")));
    assert_true(json_is_string(json_object_get(j, "k")));
    json_decref(j);
    scn_node_free(root);
    scn_diags_free(&d);
}

static void test_yaml_errors(void **st)
{
    (void)st;
    char *out = diags_of("e.yaml", "a: [1, 2\nb: 3\n");
    assert_non_null(strstr(out, "e.yaml:"));
    assert_non_null(strstr(out, "YAML syntax error"));
    free(out);
    out = diags_of("e.yaml", "id: a/b\nid: a/c\n");
    assert_non_null(strstr(out, "e.yaml:2:1: duplicate key 'id' (first at line 1)"));
    free(out);
    out = diags_of("e.yaml", "");
    assert_non_null(strstr(out, "empty file"));
    free(out);
    out = diags_of("e.yaml", "- just\n- a list\n");
    assert_non_null(strstr(out, "e.yaml:1:1: a scenario must be a mapping"));
    free(out);
    /* An alias bomb is refused, not expanded. */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    out = diags_of("bomb.yaml", bomb);
    assert_non_null(strstr(out, "too large"));
    free(out);
}

/* ---- durations and suggestions ----------------------------------------- */

static int64_t dur(const char *s)
{
    scn_node n = {0};
    n.kind = SCN_SCALAR;
    n.str = (char *)s;
    n.plain = 1;
    int64_t ms = -7;
    if (scn_duration(&n, &ms))
        return -1;
    return ms;
}

static void test_durations(void **st)
{
    (void)st;
    assert_int_equal(dur("250ms"), 250);
    assert_int_equal(dur("30s"), 30000);
    assert_int_equal(dur("31m"), 31 * 60000);
    assert_int_equal(dur("2h"), 7200000);
    assert_int_equal(dur("7d"), 7LL * 86400000);
    assert_int_equal(dur("1m30s"), 90000);
    assert_int_equal(dur("30"), -1);     /* the unit is required */
    assert_int_equal(dur("5 min"), -1);
    assert_int_equal(dur(""), -1);
    assert_int_equal(dur("-1s"), -1);
    assert_int_equal(dur("1x"), -1);
}

static void test_suggest(void **st)
{
    (void)st;
    assert_string_equal(scn_suggest("edt", scn_client_actions), "edit");
    assert_string_equal(scn_suggest("ofline", scn_client_actions), "offline");
    assert_string_equal(scn_suggest("titel", scn_edit_fields), "title");
    assert_string_equal(scn_suggest("recieved", scn_client_asserts), "received");
    /* Rule ids: only the same id spelt differently (issue 12: R-2 -> Q-2). */
    assert_null(scn_suggest_rule("Q-8", scn_rule_ids));
    assert_null(scn_suggest_rule("R-2", scn_rule_ids));
    assert_string_equal(scn_suggest_rule("q2", scn_rule_ids), "Q-2");
    assert_string_equal(scn_suggest_rule("CF-03", scn_rule_ids), "CF-3");
    /* A keyword with a word glued on (issue 12: queue_length). */
    assert_string_equal(scn_suggest("queue_length", scn_client_asserts), "queue");
    assert_string_equal(scn_suggest("cache_size", scn_client_asserts), "cache");
    assert_null(scn_suggest("banana", scn_client_actions));
    assert_int_equal(scn_edit_distance("abc", "acb"), 1);
    assert_int_equal(scn_edit_distance("", "abc"), 3);
}

/* ---- golden messages ----------------------------------------------------- */

static const char *const GOLDEN[] = {
    "typos.yaml:1:5: id 'queue/Bad id' must look like 'area/name' (one '/'; lower case letters, digits, _ -)",
    "typos.yaml:3:9: unknown rule 'Q-8' (known: WS-1..WS-6, Q-1..Q-7, C-1..C-4, CF-1..CF-4, N-1, R-1, A-1..A-4)",
    "typos.yaml:3:20: unknown rule 'q-1' (did you mean 'Q-1'? known: WS-1..WS-6, Q-1..Q-7, C-1..C-4, CF-1..CF-4, N-1, R-1, A-1..A-4)",
    "typos.yaml:4:1: unknown key 'tagz' (did you mean 'tags'?)",
    "typos.yaml:5:10: unknown policy key 'queue_maxx' (did you mean 'queue_max'?)",
    "typos.yaml:7:24: unknown client key 'houshold' (did you mean 'household'?)",
    "typos.yaml:7:47: unknown token 'expird' (did you mean 'expired'?)",
    "typos.yaml:10:22: unknown client or step 'carol' (did you mean 'carl'? declared clients: alice, carl)",
    "typos.yaml:11:13: unknown action 'edt' for client 'alice' (did you mean 'edit'?)",
    "typos.yaml:12:24: id 'bad id' is not a valid task id (1-64 of A-Z a-z 0-9 _ -)",
    "typos.yaml:12:34: unknown task field 'titel' (did you mean 'title'?)",
    "typos.yaml:12:50: done must be true or false, got value 'maybe'",
    "typos.yaml:12:65: due_at '2026-11-25T10:00:00' must be an RFC 3339 time with offset, e.g. 2026-11-25T10:00:00+03:00",
    "typos.yaml:13:11: bad duration '5 min' for wait (use e.g. 250ms, 30s, 31m, 2h, 7d, 1m30s)",
    "typos.yaml:14:11: bad duration '30' for wait (use e.g. 250ms, 30s, 31m, 2h, 7d, 1m30s)",
    "typos.yaml:15:29: queue must be an integer >= 0, got value 'two'",
    "typos.yaml:15:34: unknown client expectation 'notifed' (did you mean 'notified'?)",
    "typos.yaml:15:87: count must be an integer >= 0, got value 'two'",
    "typos.yaml:16:21: unknown mark 'nowhere' (define it first with a step '- mark: nowhere')",
    "typos.yaml:16:49: unknown event type 'TASK_UPDATD' (did you mean 'TASK_UPDATED'?)",
    "typos.yaml:17:5: 'offline' needs an actor: write e.g. '- alice: offline'",
    "typos.yaml:18:26: unknown from 'srv' (did you mean 'server'?)",
    "typos.yaml:18:40: unknown message 'HEARTBET' (did you mean 'HEARTBEAT'?)",
    "typos.yaml:19:5: a step does one thing: 'wait' cannot be combined with actions",
    "typos.yaml:20:40: unknown level 'WARN' (did you mean 'WARNING'?)",
    "typos.yaml:20:46: unknown log key 'cnt' (did you mean 'count'?)",
    "typos.yaml:21:29: fail_requests needs 'status' (e.g. 503)",
    "typos.yaml:22:22: 'since' belongs at the expect level, next to the actors: '- expect: {since: ..., alice: {...}}'",
    "typos.yaml:22:49: unknown task field 'titl' (did you mean 'title'?)",
    "typos.yaml:22:84: unknown task field 'titl' (did you mean 'title'?)",
    "typos.yaml:23:41: unknown log record 'conflct' (did you mean 'conflict'?)",
    "typos.yaml:24:38: unknown log record 'nosuchrecord' (see docs/LOG_RECORDS.md for the names; use 'pattern' to search the fields)",
    "typos.yaml:24:52: 'within' belongs at the expect level, next to the actors: '- expect: {within: ..., alice: {...}}'",
    NULL,
};

static void test_golden_typos(void **st)
{
    (void)st;
    char *text = slurp(HX_TEST_DATA "/typos.yaml");
    assert_non_null(text);
    char *out = diags_of("typos.yaml", text);
    for (size_t i = 0; GOLDEN[i]; i++) {
        char line[512];
        snprintf(line, sizeof line, "%s\n", GOLDEN[i]);
        if (!strstr(out, line))
            fail_msg("missing diagnostic:\n  %s\ngot:\n%s", GOLDEN[i], out);
    }
    free(out);
    free(text);
}

static void test_messages(void **st)
{
    (void)st;
    struct {
        const char *yaml_steps; /* appended to a valid header */
        const char *want;
    } cases[] = {
        {"  - alice: {edit: {title: x}}\n", "x.yaml:6:19: edit needs an 'id' (the task to create or change)"},
        {"  - bob: connect\n", "x.yaml:6:5: unknown client or step 'bob' (declared clients: alice; declare it under 'clients:')"},
        {"  - expect: {bob: {queue: 0}}\n", "x.yaml:6:14: unknown actor 'bob' (declared clients: alice; declare it under 'clients:')"},
        {"  - expect: {alice: {task: {id: t1}}}\n",
         "x.yaml:6:22: 'task' is a server expectation: write it under 'server:'"},
        {"  - expect: {server: {queue: 0}}\n",
         "x.yaml:6:23: 'queue' is a client expectation: write it under a client's name"},
        {"  - alice: {connect: now}\n", "x.yaml:6:22: 'connect' takes no argument: write 'alice: connect'"},
        {"  - alice: {drop: {message: HEARTBEAT}}\n", "x.yaml:6:19: drop needs 'from: server' or 'from: client'"},
        {"  - server: {fail_requests: {count: 0, status: 503}}\n",
         "x.yaml:6:37: count must be an integer from 1 to 1000000, got value '0'"},
        {"  - server: {fail_requests: {count: 1, status: 503, retry_after: soon}}\n",
         "x.yaml:6:66: bad duration 'soon' for retry_after"},
        {"  - {repeat: 3}\n", "x.yaml:6:14: 'repeat' repeats the actions of its step"},
        {"  - mark: a\n  - mark: a\n", "x.yaml:7:11: mark 'a' is already defined"},
        {"  - mark: back\n  - expect: {since: bak, alice: {queue: 0}}\n",
         "x.yaml:7:21: unknown mark 'bak' (did you mean 'back'?)"},
        {"  - expect: {since: a, within: 1s, alice: {queue: 0}}\n", "x.yaml:6:21: unknown mark 'a' (define it first with a step '- mark: a')"},
        {"  - expect: {alice: {received: {exactly: [TASK_UPDATED], count: 1}}}\n",
         "x.yaml:6:32: 'exactly' stands alone in its mapping"},
        {"  - expect: {alice: {requests: {from: zed}}}\n", "x.yaml:6:39: unknown client 'zed' (declared clients: alice; declare it under 'clients:')"},
        {"  - expect: {alice: {reconnect_delays: [1s, 3]}}\n",
         "x.yaml:6:45: bad duration '3' for a reconnect delay"},
        {"  - expect: {alice: {connection: redy}}\n",
         "x.yaml:6:34: unknown connection state 'redy' (did you mean 'ready'?)"},
        {"  - expect_log: {actor: server, level: WARNING, count: -1}\n",
         "x.yaml:6:56: count must be an integer >= 0, got value '-1'"},
        {"  - alice: {choose: {id: t1, choice: mine}}\n", "x.yaml:6:38: unknown choice 'mine' (expected one of: merge, overwrite)"},
        {"  - alice: {restart: {key: wrong}}\n", "x.yaml:6:28: unknown key 'wrong' (expected one of: other, original)"},
        {"  - alice: [offline, {edit: {id: t1}}, {lokc: t1}]\n",
         "x.yaml:6:41: unknown action 'lokc' for client 'alice' (did you mean 'lock'?)"},
        {"  - {alice: offline, edit: {id: t1}}\n", "x.yaml:6:22: 'edit' needs an actor"},
        {"  - {expect: {alice: {queue: 0}}, wait: 1s}\n", "x.yaml:6:35: a step does one thing: 'expect' and 'wait' go in separate steps"},
        /* Windows and timeouts sit beside the actors, not inside them. */
        {"  - mark: m\n  - expect: {server: {since: m, task: {id: t1}}}\n",
         "x.yaml:7:23: 'since' belongs at the expect level, next to the actors"},
        {"  - wait_until: {alice: {connection: ready, timeout: 1m}}\n",
         "x.yaml:6:45: 'timeout' belongs at the wait_until level, next to the actors"},
        {"  - expect: {alice: {log: {actor: alice, message: conflict}}}\n",
         "x.yaml:6:28: 'actor' is only for expect_log"},
        /* Task subsets: known fields only; household only on the server. */
        {"  - expect: {alice: {cached: [{id: t1, done: true}, {id: t2, household: home}]}}\n",
         "x.yaml:6:62: 'household' is only for the server's 'task:'"},
        {"  - expect: {server: {task: [{id: t1, household: home, revison: 2}]}}\n",
         "x.yaml:6:56: unknown task field 'revison' (did you mean 'revision'?)"},
        {"  - expect: {alice: {cached: {title: x}}}\n", "x.yaml:6:30: cached needs the task 'id'"},
        /* send_frame: a string, or exactly one of text / size. */
        {"  - alice: {send_frame: {size: 47}}\n",
         "x.yaml:6:32: size must be an integer from 48 to 1000000, got value '47'"},
        {"  - alice: {send_frame: {text: x, size: 64}}\n",
         "x.yaml:6:25: send_frame needs exactly one of 'text' (the frame) or 'size'"},
        {"  - alice: {send_frame: [x]}\n",
         "x.yaml:6:25: send_frame must be a string (the frame) or a mapping"},
        {"  - alice: {send_frame: {txet: x}}\n",
         "x.yaml:6:26: unknown key of send_frame 'txet' (did you mean 'text'?)"},
        {"  - alice: send_frame\n", "'send_frame' needs an argument"},
        /* Log record names are the code's. */
        {"  - expect_log: {message: Conflict}\n",
         "x.yaml:6:27: unknown log record 'Conflict' (did you mean 'conflict'?)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        if (asprintf(&text, "id: t/x\nname: x\nrules: [Q-1]\nclients: {alice: {}}\nsteps:\n%s",
                     cases[i].yaml_steps) < 0)
            abort();
        char *out = diags_of("x.yaml", text);
        if (!strstr(out, cases[i].want))
            fail_msg("case %zu: want '%s' in:\n%s", i, cases[i].want, out);
        free(out);
        free(text);
    }
    /* Issue 11: policy numbers have ranges; the loader says which (before:
     * a 400-day heartbeat_interval was accepted and overflowed the
     * server's deadlines). */
    {
        const char *pol[][2] = {
            {"{heartbeat_interval: 400d}", "policy heartbeat_interval: expected a duration"},
            {"{heartbeat_interval: 400d}", "from 1ms to 366d"},
            {"{heartbeat_misses: 1000}", "from 1 to 100"},
            {"{max_body: 1GiB}", "to 64MiB"},
        };
        /* ... and so have the steps' durations (before: `wait: 106751991167d`
         * overflowed the simulator's clock, UBSan). */
        char *wout = diags_of("w.yaml", "id: t/x\nname: x\nrules: [Q-1]\nclients: {alice: {}}\n"
                                        "steps:\n  - wait: 106751991167d\n");
        if (!strstr(wout, "w.yaml:6:11: duration '106751991167d' for wait out of range (from 0 to 366d)"))
            fail_msg("wait range: got\n%s", wout);
        free(wout);
        for (size_t i = 0; i < sizeof pol / sizeof pol[0]; i++) {
            char *text = NULL;
            if (asprintf(&text, "id: t/x\nname: x\nrules: [Q-1]\npolicy: %s\n"
                                "clients: {alice: {}}\nsteps: [{alice: connect}]\n", pol[i][0]) < 0)
                abort();
            char *out = diags_of("p.yaml", text);
            if (!strstr(out, pol[i][1]) || !strstr(out, "p.yaml:4:"))
                fail_msg("policy %s: want '%s' at line 4 in:\n%s", pol[i][0], pol[i][1], out);
            free(out);
            free(text);
        }
    }
    /* Ids: exactly one '/', [a-z0-9_-] on both sides. */
    const char *bad_ids[] = {"a/b/c", "a.b/c", "a/", "/a", "ab", "A/b"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        char *text = NULL;
        if (asprintf(&text, "id: \"%s\"\nname: x\nrules: [Q-1]\nclients: {alice: {}}\n"
                            "steps: [{alice: connect}]\n", bad_ids[i]) < 0)
            abort();
        char *out = diags_of("i.yaml", text);
        char want[128];
        snprintf(want, sizeof want, "i.yaml:1:5: id '%s' must look like 'area/name'", bad_ids[i]);
        if (!strstr(out, want))
            fail_msg("id '%s': want '%s' in:\n%s", bad_ids[i], want, out);
        free(out);
        free(text);
    }
    /* A duplicate key is reported alone: the tree is not validated (the
     * documented behaviour, SCENARIOS.md §10). */
    char *dup = diags_of("d.yaml", "id: t/x\nname: x\nrules: [Q-8]\nclients: {alice: {}}\n"
                                   "steps:\n  - {alice: connect, alice: offline}\n");
    assert_non_null(strstr(dup, "d.yaml:6:22: duplicate key 'alice' (first at line 6)"));
    assert_null(strstr(dup, "Q-8"));
    free(dup);
    /* Top-level problems. */
    char *out = diags_of("y.yaml", "name: x\nrules: []\nclients: {server: {}}\nsteps: []\n");
    assert_non_null(strstr(out, "y.yaml:1:1: missing 'id'"));
    assert_non_null(strstr(out, "y.yaml:2:8: rules: name at least one rule"));
    assert_non_null(strstr(out, "y.yaml:3:11: 'server' cannot be a client name"));
    assert_non_null(strstr(out, "y.yaml:4:8: steps: a scenario needs at least one step"));
    free(out);
    out = diags_of("z.yaml", "id: t/x\nname: x\nrules: [Q-1]\nclients: {a: {}}\n"
                             "policy: {queue_max: -3, retry_delays: 5s}\n"
                             "start: 2026-11-25T09:00:00\nheal: maybe\n"
                             "invariants: {edit_kept: false}\nsteps: [{a: connect}]\n");
    assert_non_null(strstr(out, "z.yaml:5:21: policy queue_max:"));
    assert_non_null(strstr(out, "z.yaml:5:39: policy retry_delays:"));
    assert_non_null(strstr(out, "z.yaml:6:8: start '2026-11-25T09:00:00' must be an RFC 3339"));
    assert_non_null(strstr(out, "z.yaml:7:7: heal must be true or false"));
    assert_non_null(strstr(out, "z.yaml:8:14: unknown invariant 'edit_kept' (did you mean 'edits_kept'?)"));
    free(out);
}

static void test_valid(void **st)
{
    (void)st;
    char *out = diags_of("m.yaml", MINIMAL);
    assert_string_equal(out, "");
    free(out);
    scn_diags d = {0};
    scn_scenario *s = NULL;
    assert_int_equal(scn_load_string("m.yaml", MINIMAL, strlen(MINIMAL), &s, &d), 0);
    assert_string_equal(scn_id(s), "t/x");
    assert_string_equal(scn_name(s), "x");
    assert_string_equal(scn_file(s), "m.yaml");
    assert_int_equal(json_array_size(scn_rules(s)), 1);
    assert_int_equal(json_array_size(scn_tags(s)), 0);
    assert_int_equal(s->nclients, 1);
    assert_string_equal(s->clients[0].user, "alice");
    assert_string_equal(s->clients[0].household, "home");
    assert_int_equal(s->start_ms, 1795597200000LL);
    assert_int_equal(s->latency_ms, 20);
    assert_int_equal(s->heal, 1);
    scn_free(s);
    scn_diags_free(&d);
    /* The SPEC §5 example. */
    assert_int_equal(scn_load_file(HX_SOURCE_DIR "/scenarios/queue/fifo-replay-after-offline.yaml",
                                   &s, &d), 0);
    assert_string_equal(scn_id(s), "queue/fifo-replay-after-offline");
    scn_free(s);
    scn_diags_free(&d);
    /* Rule ids: the 27 of SPEC §4. */
    size_t n = 0;
    while (scn_rule_ids[n])
        n++;
    assert_int_equal(n, 27);
}

/* Every file of the suite validates. */
static int check_dir(const char *dir, int *count, char **problems)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb))
            continue;
        if (S_ISDIR(sb.st_mode)) {
            check_dir(path, count, problems);
            continue;
        }
        size_t l = strlen(path);
        if (l < 5 || (strcmp(path + l - 5, ".yaml") && strcmp(path + l - 4, ".yml")))
            continue;
        scn_diags d = {0};
        scn_scenario *s = NULL;
        (*count)++;
        if (scn_load_file(path, &s, &d)) {
            char *out = NULL;
            size_t len = 0;
            FILE *m = open_memstream(&out, &len);
            scn_diags_print(&d, m);
            fclose(m);
            char *acc = NULL;
            if (asprintf(&acc, "%s%s", *problems ? *problems : "", out) < 0)
                abort();
            free(*problems);
            free(out);
            *problems = acc;
        }
        scn_free(s);
        scn_diags_free(&d);
    }
    closedir(dp);
    return 0;
}

static void test_suite_valid(void **st)
{
    (void)st;
    int count = 0;
    char *problems = NULL;
    check_dir(HX_SOURCE_DIR "/scenarios", &count, &problems);
    if (problems)
        fail_msg("invalid suite files:\n%s", problems);
    assert_true(count >= 1);
}

/* docs/scenario.schema.json names every keyword the validator knows. */
static void test_schema_in_sync(void **st)
{
    (void)st;
    char *schema = slurp(HX_SOURCE_DIR "/docs/scenario.schema.json");
    assert_non_null(schema);
    json_error_t je;
    json_t *j = json_loads(schema, 0, &je);
    if (!j)
        fail_msg("schema is not JSON: %s line %d", je.text, je.line);
    json_decref(j);
    const char *const *tables[] = {scn_top_keys,       scn_client_keys,   scn_step_keys,
                                   scn_client_actions, scn_server_actions, scn_client_asserts,
                                   scn_server_asserts, scn_log_keys,      scn_edit_fields,
                                   scn_drop_messages,  scn_conn_states,   scn_invariant_names,
                                   scn_rule_ids,       hp_policy_keys,    scn_log_messages,
                                   scn_task_fields};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; tables[t][i]; i++) {
            char q[128];
            snprintf(q, sizeof q, "\"%s\"", tables[t][i]);
            if (!strstr(schema, q))
                fail_msg("docs/scenario.schema.json does not mention %s", q);
        }
    }
    free(schema);
    /* And docs/SCENARIOS.md documents every action and expectation. */
    char *doc = slurp(HX_SOURCE_DIR "/docs/SCENARIOS.md");
    assert_non_null(doc);
    const char *const *dtables[] = {scn_client_actions, scn_server_actions, scn_client_asserts,
                                    scn_server_asserts, scn_step_keys, scn_top_keys,
                                    scn_client_keys, scn_invariant_names};
    for (size_t t = 0; t < sizeof dtables / sizeof dtables[0]; t++) {
        for (size_t i = 0; dtables[t][i]; i++) {
            char q[128];
            snprintf(q, sizeof q, "`%s", dtables[t][i]);
            if (!strstr(doc, q))
                fail_msg("docs/SCENARIOS.md does not document %s", dtables[t][i]);
        }
    }
    free(doc);
}

/* ---- log record names --------------------------------------------------- */

/* Appends to *names (a "\n"-separated list) the record names of every
 * hp_log() call in text: the string literals of the call's third argument
 * (a "a" : "b" choice yields both). */
static void log_names_of(const char *text, char **names)
{
    for (const char *p = strstr(text, "hp_log("); p; p = strstr(p + 1, "hp_log(")) {
        if (p > text && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue; /* hp_log_redact( etc. do not match "hp_log(" anyway */
        const char *q = p + 7;
        int depth = 0, arg = 0, in_str = 0;
        for (; *q && arg <= 2; q++) {
            if (in_str) {
                if (*q == '\\' && q[1])
                    q++;
                else if (*q == '"')
                    in_str = 0;
                continue;
            }
            if (*q == '"') {
                in_str = 1;
                if (arg == 2) {
                    const char *e = strchr(q + 1, '"');
                    if (!e)
                        break;
                    char *acc = NULL;
                    if (asprintf(&acc, "%s%.*s\n", *names ? *names : "", (int)(e - q - 1), q + 1) < 0)
                        abort();
                    free(*names);
                    *names = acc;
                    q = e;
                    in_str = 0;
                }
                continue;
            }
            if (*q == '(')
                depth++;
            else if (*q == ')' && depth-- == 0)
                break;
            else if (*q == ',' && depth == 0)
                arg++;
        }
    }
}

static void log_names_in_dir(const char *dir, const char *prefix, char **names)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) || l < 3 || strcmp(e->d_name + l - 2, ".c"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = slurp(path);
        if (text)
            log_names_of(text, names);
        free(text);
    }
    closedir(dp);
}

/* scn_log_messages (what lint accepts in `message:`), the hp_log() calls of
 * the server and the client, and docs/LOG_RECORDS.md name the same records. */
static void test_log_records(void **st)
{
    (void)st;
    char *names = NULL;
    log_names_in_dir(HX_SOURCE_DIR "/fake_server", "srv_", &names);
    log_names_in_dir(HX_SOURCE_DIR "/fake_client", "cli_", &names);
    assert_non_null(names);
    /* Every name in the code is known to lint. */
    for (char *save = NULL, *n = strtok_r(names, "\n", &save); n; n = strtok_r(NULL, "\n", &save)) {
        int found = 0;
        for (size_t i = 0; scn_log_messages[i]; i++)
            found |= !strcmp(n, scn_log_messages[i]);
        if (!found)
            fail_msg("log record '%s' is emitted by the code but missing from "
                     "scn_log_messages (harness/scn_load.c) and docs/LOG_RECORDS.md", n);
    }
    free(names);
    /* Every known name is still emitted, and documented. */
    names = NULL;
    log_names_in_dir(HX_SOURCE_DIR "/fake_server", "srv_", &names);
    log_names_in_dir(HX_SOURCE_DIR "/fake_client", "cli_", &names);
    char *doc = slurp(HX_SOURCE_DIR "/docs/LOG_RECORDS.md");
    assert_non_null(doc);
    for (size_t i = 0; scn_log_messages[i]; i++) {
        char q[96];
        snprintf(q, sizeof q, "\n%s\n", scn_log_messages[i]);
        char *wrapped = NULL;
        if (asprintf(&wrapped, "\n%s", names) < 0)
            abort();
        if (!strstr(wrapped, q))
            fail_msg("scn_log_messages names '%s' but no hp_log() call emits it",
                     scn_log_messages[i]);
        free(wrapped);
        snprintf(q, sizeof q, "| `%s` |", scn_log_messages[i]);
        if (!strstr(doc, q))
            fail_msg("docs/LOG_RECORDS.md has no table row for '%s'", scn_log_messages[i]);
    }
    free(doc);
    free(names);
    /* The parser itself: a choice yields both names. */
    char *t = NULL;
    log_names_of("hp_log(e, L, k ? \"a_b\" : \"c\", \"x=%d\", f(1, 2));", &t);
    assert_string_equal(t, "a_b\nc\n");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_positions), cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_durations),      cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_golden_typos),   cmocka_unit_test(test_messages),
        cmocka_unit_test(test_valid),          cmocka_unit_test(test_suite_valid),
        cmocka_unit_test(test_schema_in_sync), cmocka_unit_test(test_log_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

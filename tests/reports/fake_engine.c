/*
 * fake_engine.c - a stand-in for the scenario engine, implementing harness.h
 * with canned behaviour, so the front end (hx_main.c) and the report writers
 * can be tested without the simulator.  Linked only into the tests of
 * tests/reports, never into hp-harness.
 *
 * A fake "scenario file" is a JSON document (JSON is YAML, so the front
 * end's *.yaml discovery applies unchanged):
 *   {"id": "queue/a", "name": "...", "rules": ["Q-1"], "tags": ["queue"],
 *    "outcome": "pass" | "fail" | "error",   (default "pass")
 *    "failure": "text of the failing assertion",
 *    "line": 12,             (failure line, default 7)
 *    "trace": 40,            (number of synthetic trace entries, default 20)
 *    "delay_ms": 30,         (wall time spent in scn_run: --jobs ordering)
 *    "more": [[20, "expected a, got b"]],  (further failed assertions)
 *    "diags": [[3, 5, "unknown key 'stpes' (did you mean 'steps'?)"]]}
 * A file that is not JSON gets jansson's error as a diagnostic with its
 * line and column; "diags" makes the load fail with exactly those.
 *
 * scn_run() derives a trace from the seed and the id (same seed, same
 * trace), with every entry type of harness.h and awkward characters in it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

struct scn_scenario {
    json_t *doc;
    char *file;
};

const char *const scn_rule_ids[] = {"WS-1", "WS-2", "WS-3", "WS-4", "WS-5", "WS-6", "Q-1",
                                    "Q-2",  "Q-3",  "Q-4",  "Q-5",  "Q-6",  "Q-7",  "C-1",
                                    "C-2",  "C-3",  "C-4",  "CF-1", "CF-2", "CF-3", "CF-4",
                                    "N-1",  "R-1",  "A-1",  "A-2",  "A-3",  "A-4",  NULL};

void scn_diags_add(scn_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = realloc(d->v, d->cap * sizeof *d->v);
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    d->v[d->n].file = strdup(file ? file : "");
    d->v[d->n].line = line;
    d->v[d->n].col = col;
    d->v[d->n].msg = msg ? msg : strdup("?");
    d->n++;
}

void scn_diags_free(scn_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

void scn_diags_print(const scn_diags *d, void *f)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf((FILE *)f, "%s:%d:%d: %s\n", d->v[i].file, d->v[i].line, d->v[i].col,
                d->v[i].msg);
}

int scn_load_file(const char *path, scn_scenario **out, scn_diags *diags)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        scn_diags_add(diags, path, je.line, je.column, "%s", je.text);
        return -1;
    }
    json_t *dg = json_object_get(doc, "diags");
    int bad = 0;
    size_t i;
    json_t *v;
    json_array_foreach(dg, i, v) {
        scn_diags_add(diags, path, (int)json_integer_value(json_array_get(v, 0)),
                      (int)json_integer_value(json_array_get(v, 1)), "%s",
                      json_string_value(json_array_get(v, 2)));
        bad = 1;
    }
    if (!json_is_string(json_object_get(doc, "id"))) {
        scn_diags_add(diags, path, 1, 1, "missing key 'id'");
        bad = 1;
    }
    if (bad) {
        json_decref(doc);
        return -1;
    }
    /* Normalised here, not lazily: scn_rules() runs on several threads. */
    if (!json_is_array(json_object_get(doc, "rules")))
        json_object_set_new(doc, "rules", json_array());
    if (!json_is_array(json_object_get(doc, "tags")))
        json_object_set_new(doc, "tags", json_array());
    scn_scenario *s = calloc(1, sizeof *s);
    s->doc = doc;
    s->file = strdup(path);
    *out = s;
    return 0;
}

void scn_free(scn_scenario *s)
{
    if (!s)
        return;
    json_decref(s->doc);
    free(s->file);
    free(s);
}

static const char *str_field(const scn_scenario *s, const char *k, const char *dflt)
{
    const char *v = json_string_value(json_object_get(s->doc, k));
    return v ? v : dflt;
}

const char *scn_id(const scn_scenario *s) { return str_field(s, "id", ""); }
const char *scn_name(const scn_scenario *s) { return str_field(s, "name", ""); }
const char *scn_file(const scn_scenario *s) { return s->file; }

static json_t *arr_field(const scn_scenario *s, const char *k)
{
    return json_object_get(s->doc, k);
}
json_t *scn_rules(const scn_scenario *s) { return arr_field(s, "rules"); }
json_t *scn_tags(const scn_scenario *s) { return arr_field(s, "tags"); }

/* xorshift64*: enough for varied canned traces. */
static uint64_t next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

int scn_run(const scn_scenario *s, const scn_run_opts *opts, scn_result *r)
{
    memset(r, 0, sizeof *r);
    const char *id = scn_id(s);
    r->id = strdup(id);
    r->name = strdup(scn_name(s));
    r->file = strdup(s->file);
    r->rules = json_deep_copy(scn_rules(s));
    r->tags = json_deep_copy(scn_tags(s));
    r->trace = json_array();
    r->checks = json_array();
    r->failure_step = -1;

    json_int_t delay = json_integer_value(json_object_get(s->doc, "delay_ms"));
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }

    uint64_t x = opts->seed * 0x9E3779B97F4A7C15ULL + 1;
    for (const char *p = id; *p; p++)
        x = (x ^ (unsigned char)*p) * 0x100000001B3ULL;
    if (!x)
        x = 1;
    json_t *tv = json_object_get(s->doc, "trace");
    json_int_t n = json_is_integer(tv) ? json_integer_value(tv) : 20;
    const char *actors[] = {"alice", "bob"};
    int64_t t = 0;
    int step = 0;
    for (json_int_t i = 0; i < n; i++) {
        t += (int64_t)(next(&x) % 2000);
        if (next(&x) % 50 == 0)
            t += 31 * 60 * 1000;
        const char *a = actors[next(&x) % 2];
        json_t *e;
        switch (i % 7) {
        case 0:
            e = json_pack("{s:I,s:s,s:s,s:i,s:i,s:s}", "t", (json_int_t)t, "actor", "harness",
                          "type", "step", "index", step, "line", 10 + step,
                          "text", "alice: {edit: {id: t1, title: \"<b>&</b>\"}}");
            step++;
            scn_step_wall(r, 0.25 * step); /* canned wall time per step */
            break;
        case 1:
            e = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:o,s:o}", "t", (json_int_t)t,
                          "actor", a, "type", "http", "from", a, "to", "server", "method", "PUT",
                          "path", "/api/v0.2/tasks/t1", "status", (i % 3) ? 200 : 409,
                          "idem_key", "m-1", "request", json_pack("{s:i}", "base_revision", 3),
                          "response", json_pack("{s:s}", "error", "conflict"));
            if (i % 11 == 1)
                json_object_set_new(e, "lost", json_string("offline"));
            r->messages++;
            break;
        case 2:
            e = json_pack("{s:I,s:s,s:s,s:s,s:s,s:o}", "t", (json_int_t)t, "actor", "server",
                          "type", "ws", "from", "server", "to", a, "data",
                          json_pack("{s:s,s:s,s:i}", "event_type", "TASK_UPDATED", "entity_id",
                                    "t1", "revision", (int)i));
            json_object_set_new(e, "arrive", json_integer(t + 20));
            r->messages++;
            break;
        case 3:
            e = json_pack("{s:I,s:s,s:s,s:s,s:s}", "t", (json_int_t)t, "actor", "server", "type",
                          "log", "level", (i % 2) ? "WARNING" : "INFO", "line",
                          "WARNING fake_server conflict entity=task/t1 </script><!-- 'q' \"dq\"");
            break;
        case 4:
            e = json_pack("{s:I,s:s,s:s,s:s}", "t", (json_int_t)t, "actor", a, "type", "notify",
                          "info", "CONFLICT t1 http://example.invalid/x");
            break;
        case 5:
            if (i % 2)
                e = json_pack("{s:I,s:s,s:s,s:s}", "t", (json_int_t)t, "actor", a, "type",
                              "event", "info", "TASK_UPDATED t1 r5");
            else
                e = json_pack("{s:I,s:s,s:s,s:{s:s,s:i}}", "t", (json_int_t)t, "actor", a,
                              "type", "observe", "info", "kind", "queue", "length", 2);
            break;
        default:
            e = json_pack("{s:I,s:s,s:s,s:s,s:s,s:i}", "t", (json_int_t)t, "actor", a, "type",
                          "ws", "from", a, "to", "server", "close", 4008);
            r->messages++;
            break;
        }
        json_array_append_new(r->trace, e);
    }
    r->sim_ms = t;

    const char *outcome = str_field(s, "outcome", "pass");
    json_int_t line = json_integer_value(json_object_get(s->doc, "line"));
    if (line <= 0)
        line = 7;
    if (strcmp(outcome, "error") == 0) {
        r->passed = 0;
        r->failure = strdup(str_field(s, "failure", "simulated runtime error"));
        return -1;
    }
    if (strcmp(outcome, "fail") == 0) {
        const char *text = str_field(s, "failure", "expected queue 0, got 2");
        r->passed = 0;
        r->failure = strdup(text);
        if (asprintf(&r->failure_loc, "%s:%d", s->file, (int)line) < 0)
            r->failure_loc = NULL;
        r->failure_step = step > 0 ? step - 1 : 0;
        json_array_append_new(r->trace,
                              json_pack("{s:I,s:s,s:s,s:I,s:b,s:s,s:s,s:s}", "t", (json_int_t)t,
                                        "actor", "harness", "type", "assert", "line", line,
                                        "passed", 0, "text", text, "expected", "0", "actual",
                                        "2"));
        json_array_append_new(r->checks, json_pack("{s:s,s:b,s:s}", "name", "expect", "passed",
                                                   0, "detail", text));
        /* "more": [[line, "text"], ...]: later failed assertions (the
         * engine goes on after a failed expectation). */
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(s->doc, "more"), k, m) {
            char name[256];
            snprintf(name, sizeof name, "%s:%d more", s->file,
                     (int)json_integer_value(json_array_get(m, 0)));
            json_array_append_new(r->checks,
                                  json_pack("{s:s,s:b,s:s}", "name", name, "passed", 0, "detail",
                                            json_string_value(json_array_get(m, 1))));
        }
    } else {
        r->passed = 1;
        json_array_append_new(r->checks, json_pack("{s:s,s:b,s:s}", "name", "invariants",
                                                   "passed", 1, "detail", ""));
    }
    return 0;
}

void scn_result_clear(scn_result *r)
{
    free(r->id);
    free(r->name);
    free(r->file);
    free(r->failure);
    free(r->failure_loc);
    json_decref(r->rules);
    json_decref(r->tags);
    json_decref(r->trace);
    json_decref(r->checks);
    free(r->step_wall_ms);
    memset(r, 0, sizeof *r);
}

/* `hp-harness explore` needs the real simulator: not in the fake engine. */
int exp_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}

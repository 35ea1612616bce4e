/*
 * rpt_rules.c - rule coverage of a run: for every rule of the policy, how
 * many checks passed, failed, were unobservable against the target, or
 * were not run (their scenario was skipped), and whether the rule counts
 * as checked (at least one passing observable check).
 *
 * Input: the results of a run (rpt.h, read only) and the scenario files
 * they name (read again for their "checks:" markers).  A check is one
 * "assert" entry of a result's trace.  It counts for the rules of the
 * obligations its step's markers name ("# checks: Q-5.1" counts for Q-5);
 * a step without markers counts for every rule its scenario names.
 * Output: a new JSON object (rpt_rules_build) the report writers render;
 * rpt_rules_unchecked() lists the required rules with no passing check,
 * which --require-rules turns into a failed run (SPEC §7).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpt.h"

const char *const rpt_rule_ids[] = {
    "WS-1", "WS-2", "WS-3", "WS-4", "WS-5", "WS-6", "Q-1",  "Q-2",  "Q-3",  "Q-4",
    "Q-5",  "Q-6",  "Q-7",  "C-1",  "C-2",  "C-3",  "C-4",  "CF-1", "CF-2", "CF-3",
    "CF-4", "N-1",  "R-1",  "A-1",  "A-2",  "A-3",  "A-4",  NULL};

/* The rules with a server side that the wire shows (SPEC §7, issue 8):
 * CF-4 and A-4 are about the server's own log, which a foreign server
 * does not show; WS-6 is the client's reconnect schedule. */
const char *const rpt_server_rules[] = {"WS-1", "WS-2", "WS-3", "WS-4", "WS-5", "Q-3",  "Q-7",
                                        "CF-1", "CF-2", "R-1",  "A-1",  "A-2",  "A-3",  NULL};
/* The client rules a foreign client shows through the wire (our server,
 * the fault proxy) and the level-1 observables of docs/CLIENT_DRIVER.md.
 * C-1..C-4 need level 2 (`cached`); CF-4 and A-4 are the client's log. */
const char *const rpt_client_rules[] = {"WS-2", "WS-4", "WS-5", "WS-6", "Q-1",  "Q-2",  "Q-3",
                                        "Q-4",  "Q-5",  "Q-6",  "Q-7",  "CF-1", "CF-2", "CF-3",
                                        "N-1",  "A-2",  NULL};

static void bump(json_t *table, const char *rule, const char *what)
{
    json_t *row = json_object_get(table, rule);
    if (!row)
        return; /* not a policy rule: nothing to count */
    json_object_set_new(row, what, json_integer(json_integer_value(json_object_get(row, what)) + 1));
}

static int has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    return 0;
}

json_t *rpt_rules_build(const rpt_run *run, json_t *required)
{
    json_t *table = json_object();
    for (const char *const *r = rpt_rule_ids; *r; r++)
        json_object_set_new(table, *r, json_pack("{s:i,s:i,s:i,s:i,s:b}", "passed", 0, "failed",
                                                 0, "unobservable", 0, "not_run", 0, "required",
                                                 0));
    size_t ri;
    json_t *rq;
    json_array_foreach(required, ri, rq)
        if (json_is_string(rq) && json_object_get(table, json_string_value(rq)))
            json_object_set_new(json_object_get(table, json_string_value(rq)), "required",
                                json_true());
    for (size_t i = 0; i < run->n; i++) {
        const scn_result *res = &run->results[i];
        int err = run->errors && run->errors[i];
        size_t k;
        json_t *rule;
        if (err || (res->skipped && !res->passed)) {
            json_array_foreach(res->rules, k, rule)
                bump(table, json_string_value(rule), err ? "failed" : "not_run");
            continue;
        }
        json_t *marks = res->file ? rpt_oblig_markers(res->file) : NULL;
        json_t *step_rules = NULL;
        json_t *e;
        json_array_foreach(res->trace, k, e) {
            const char *type = json_string_value(json_object_get(e, "type"));
            if (!type)
                continue;
            if (!strcmp(type, "step")) {
                char key[24];
                snprintf(key, sizeof key, "%d", (int)json_integer_value(json_object_get(e, "line")));
                step_rules = marks ? json_object_get(marks, key) : NULL;
                continue;
            }
            if (strcmp(type, "assert"))
                continue;
            const char *v = json_string_value(json_object_get(e, "verdict"));
            const char *what = v && !strcmp(v, "unobservable") ? "unobservable"
                               : json_is_true(json_object_get(e, "passed")) ? "passed"
                                                                            : "failed";
            json_t *rules = step_rules && json_array_size(step_rules) ? step_rules : res->rules;
            size_t q;
            json_array_foreach(rules, q, rule) bump(table, json_string_value(rule), what);
        }
        /* An invariant that failed (no assertion line) fails the scenario's rules. */
        if (!res->passed && res->failure_step < 0)
            json_array_foreach(res->rules, k, rule) bump(table, json_string_value(rule), "failed");
        json_decref(marks);
    }
    return table;
}

json_t *rpt_rules_unchecked(json_t *table)
{
    json_t *out = json_array();
    for (const char *const *r = rpt_rule_ids; *r; r++) {
        json_t *row = json_object_get(table, *r);
        if (json_is_true(json_object_get(row, "required")) &&
            json_integer_value(json_object_get(row, "passed")) == 0)
            json_array_append_new(out, json_string(*r));
    }
    return out;
}

size_t rpt_rules_checked(json_t *table, size_t *total)
{
    size_t n = 0, t = 0;
    for (const char *const *r = rpt_rule_ids; *r; r++) {
        json_t *row = json_object_get(table, *r);
        t++;
        n += json_integer_value(json_object_get(row, "passed")) > 0;
    }
    if (total)
        *total = t;
    return n;
}

void rpt_rules_print(FILE *f, json_t *table)
{
    fputs("rule   passed failed unobservable not-run\n", f);
    for (const char *const *r = rpt_rule_ids; *r; r++) {
        json_t *row = json_object_get(table, *r);
        long long p = json_integer_value(json_object_get(row, "passed")),
                  fl = json_integer_value(json_object_get(row, "failed")),
                  u = json_integer_value(json_object_get(row, "unobservable")),
                  nr = json_integer_value(json_object_get(row, "not_run"));
        int req = json_is_true(json_object_get(row, "required"));
        fprintf(f, "%-6s %6lld %6lld %12lld %7lld%s\n", *r, p, fl, u, nr,
                p == 0 ? (req ? "  UNCHECKED (required)" : "  unchecked") : "");
    }
}

int rpt_rules_parse(const char *spec, json_t **out, char *err, size_t errlen)
{
    json_t *list = json_array();
    if (!strcmp(spec, "none")) {
        *out = list;
        return 0;
    }
    if (!strcmp(spec, "all") || !strcmp(spec, "server") || !strcmp(spec, "client")) {
        const char *const *src = !strcmp(spec, "all")      ? rpt_rule_ids
                                 : !strcmp(spec, "server") ? rpt_server_rules
                                                           : rpt_client_rules;
        for (const char *const *r = src; *r; r++)
            json_array_append_new(list, json_string(*r));
        *out = list;
        return 0;
    }
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int known = 0;
        for (const char *const *r = rpt_rule_ids; *r; r++)
            known |= !strcmp(*r, tok);
        if (!known) {
            snprintf(err, errlen, "--require-rules: unknown rule '%s' (all, server, client, "
                                  "none, or a list such as WS-4,Q-7)", tok);
            free(copy);
            json_decref(list);
            return -1;
        }
        if (!has(list, tok))
            json_array_append_new(list, json_string(tok));
    }
    free(copy);
    if (json_array_size(list) == 0) {
        snprintf(err, errlen, "--require-rules: empty list");
        json_decref(list);
        return -1;
    }
    *out = list;
    return 0;
}

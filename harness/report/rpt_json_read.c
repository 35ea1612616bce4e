/*
 * rpt_json_read.c - a JSON report read back into results (rpt.h:
 * rpt_json_results), so `hp-harness merge-reports` can write the JUnit,
 * JSON and HTML reports of several --shard runs with the same writers as
 * `run`.
 *
 * Input: a parsed JSON report (rpt_json_build()'s shape), borrowed.
 * Output: new results owned by the caller; what the report left out (the
 * records a compact trace omitted, per-step wall times under
 * --no-wall-times) stays left out.  A report that is not of this shape
 * gets an error naming what is wrong, never a partial result.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpt.h"

static char *dup_str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? strdup(v) : NULL;
}

static json_t *copy_arr(json_t *o, const char *k)
{
    json_t *a = json_object_get(o, k);
    return json_is_array(a) ? json_deep_copy(a) : json_array();
}

long rpt_json_results(json_t *report, scn_result **results, int **errors, char *err,
                      size_t errlen)
{
    *results = NULL;
    *errors = NULL;
    json_t *scns = json_object_get(report, "scenarios");
    if (!json_is_object(report) || !json_is_array(scns)) {
        snprintf(err, errlen, "not an hp-harness JSON report (no \"scenarios\" array)");
        return -1;
    }
    size_t n = json_array_size(scns);
    scn_result *res = calloc(n ? n : 1, sizeof *res);
    int *errs = calloc(n ? n : 1, sizeof *errs);
    if (!res || !errs) {
        free(res);
        free(errs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(scns, i);
        if (!json_is_object(s) || !json_is_string(json_object_get(s, "id"))) {
            snprintf(err, errlen, "scenario %zu of the report has no \"id\"", i + 1);
            for (size_t j = 0; j < i; j++)
                scn_result_clear(&res[j]);
            free(res);
            free(errs);
            return -1;
        }
        scn_result *r = &res[i];
        r->id = dup_str(s, "id");
        r->name = dup_str(s, "name");
        r->file = dup_str(s, "file");
        r->rules = copy_arr(s, "rules");
        r->tags = copy_arr(s, "tags");
        errs[i] = json_is_true(json_object_get(s, "error"));
        r->skipped = json_is_true(json_object_get(s, "skipped"));
        r->partial = json_is_true(json_object_get(s, "partial"));
        /* "passed" is false for an error too: the flag array tells them apart */
        r->passed = json_is_true(json_object_get(s, "passed")) || (r->partial && !errs[i]);
        r->failure = dup_str(s, "failure");
        r->failure_loc = dup_str(s, "failure_loc");
        json_t *fs = json_object_get(s, "failure_step");
        r->failure_step = json_is_integer(fs) ? (int)json_integer_value(fs) : -1;
        r->sim_ms = json_integer_value(json_object_get(s, "sim_ms"));
        r->messages = (uint64_t)json_integer_value(json_object_get(s, "messages"));
        r->wall_ms = json_number_value(json_object_get(s, "wall_ms"));
        r->checks = copy_arr(s, "checks");
        r->trace = copy_arr(s, "trace");
        r->trace_omitted = (uint64_t)json_integer_value(json_object_get(s, "trace_omitted"));
        /* Per-step wall times live in the trace's step records: give them
         * back in order so the merged report keeps them. */
        size_t k;
        json_t *e;
        json_array_foreach(r->trace, k, e) {
            const char *type = json_string_value(json_object_get(e, "type"));
            json_t *w = json_object_get(e, "wall_ms");
            if (type && !strcmp(type, "step") && json_is_number(w))
                scn_step_wall(r, json_number_value(w));
        }
    }
    *results = res;
    *errors = errs;
    return (long)n;
}

/*
 * rpt_json.c - the JSON report: an index, and per scenario its checks and
 * its trace (compact by default, full with --trace full), with per-step
 * virtual and wall time.
 *
 * Determinism is the point of this file: paths exactly as the results carry
 * them (as given on the command line), keys sorted on output, wall-clock
 * values only under "wall_ms" keys and none with --no-wall-times, so the
 * same seed gives the same bytes (the suite checks it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpt.h"

/* A JSON string of s; bytes that are not valid UTF-8 (jansson refuses
 * them) become '?', so a strange failure text never loses the report. */
static json_t *str_or_null(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    char *copy = strdup(s);
    if (!copy)
        return json_null();
    for (unsigned char *p = (unsigned char *)copy; *p;) {
        size_t n = rpt_utf8_len(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
    v = json_string(copy);
    free(copy);
    return v ? v : json_null();
}

/* A borrowed array from the result, or a new empty one when missing (so a
 * consumer can always iterate). */
static json_t *arr_or_empty(json_t *a)
{
    return json_is_array(a) ? json_incref(a) : json_array();
}

/* Reports stay readable: a string in a trace longer than RPT_TRACE_STR_MAX
 * bytes (a 60 KB note carried by every event of a 20 MiB cache scenario
 * made a 130 MB report) is cut at a UTF-8 boundary and says how long it
 * was.  Deterministic, like the rest of the report. */
#define RPT_TRACE_STR_MAX 2048

static json_t *trimmed(json_t *j, size_t max)
{
    if (json_is_string(j)) {
        size_t n = json_string_length(j);
        /* The slack fits the "... (N bytes)" tail, so a string cut once is
         * never cut again (merge-reports writes what it read). */
        if (n <= max + 24)
            return json_incref(j);
        const char *v = json_string_value(j);
        size_t cut = max;
        while (cut > 0 && ((unsigned char)v[cut] & 0xC0) == 0x80)
            cut--;
        char tail[64];
        snprintf(tail, sizeof tail, "... (%zu bytes)", n);
        char *buf = malloc(cut + sizeof tail);
        if (!buf)
            return json_incref(j);
        memcpy(buf, v, cut);
        strcpy(buf + cut, tail);
        json_t *out = json_string(buf);
        free(buf);
        return out ? out : json_incref(j);
    }
    if (json_is_array(j)) {
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) json_array_append_new(out, trimmed(v, max));
        return out;
    }
    if (json_is_object(j)) {
        json_t *out = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) json_object_set_new(out, k, trimmed(v, max));
        return out;
    }
    return json_incref(j);
}

/* Wall ms to the microsecond: the digits below are noise, and 17 of them
 * per step would be a fifth of a compact report. */
static json_t *wall_value(double ms)
{
    return json_real(ms > 0 ? (double)(long long)(ms * 1000.0 + 0.5) / 1000.0 : 0.0);
}

static int is_type(const json_t *e, const char *type)
{
    const char *t = json_string_value(json_object_get(e, "type"));
    return t && !strcmp(t, type);
}

/*
 * The trace as the report keeps it (rpt_meta.trace_full), every "step"
 * record with its virtual duration ("sim_ms": to the next step, the last
 * one to the end of the run) and, unless no_wall, its wall time (the j-th
 * step record has r->step_wall_ms[j]: the engines time every step they
 * record, in order).  *omitted: records left out.
 */
static json_t *report_trace(const scn_result *r, int failed, const rpt_meta *m, size_t *omitted)
{
    json_t *out = json_array();
    size_t n = json_array_size(r->trace), first_fail = n, i;
    json_t *e;
    for (i = 0; i < n && first_fail == n; i++) {
        e = json_array_get(r->trace, i);
        if (is_type(e, "assert") && json_is_false(json_object_get(e, "passed")))
            first_fail = i;
    }
    size_t tail = first_fail > RPT_TAIL_RECORDS ? first_fail - RPT_TAIL_RECORDS : 0;
    size_t step_j = 0;
    *omitted = (size_t)r->trace_omitted;
    json_array_foreach(r->trace, i, e) {
        int step = is_type(e, "step");
        int keep = m->trace_full || step;
        if (!keep && failed) {
            keep = rpt_record_notable(e) || (i >= tail && i <= first_fail);
        } else if (!keep) {
            const char *lvl = json_string_value(json_object_get(e, "level"));
            keep = is_type(e, "notify") ||
                   (is_type(e, "log") && lvl && strcmp(lvl, "INFO") && strcmp(lvl, "DEBUG"));
        }
        if (!keep) {
            (*omitted)++;
            if (step)
                step_j++;
            continue;
        }
        /* A passed scenario's steps are an index of its timings: their
         * first words are enough (the file has the rest). */
        json_t *c = trimmed(e, m->trace_full ? RPT_TRACE_STR_MAX
                               : failed      ? RPT_COMPACT_STR_MAX
                                             : RPT_COMPACT_STEP_MAX);
        if (step) {
            if (c == e) { /* shared with the result: never modify it */
                json_decref(c);
                c = json_deep_copy(e);
            }
            json_int_t t0 = json_integer_value(json_object_get(e, "t")), t1 = r->sim_ms;
            for (size_t k = i + 1; k < n; k++)
                if (is_type(json_array_get(r->trace, k), "step")) {
                    t1 = json_integer_value(json_object_get(json_array_get(r->trace, k), "t"));
                    break;
                }
            json_object_set_new(c, "sim_ms", json_integer(t1 > t0 ? t1 - t0 : 0));
            if (!m->no_wall && step_j < r->step_wall_n)
                json_object_set_new(c, "wall_ms", wall_value(r->step_wall_ms[step_j]));
            step_j++;
        }
        json_array_append_new(out, c);
    }
    return out;
}

static json_t *scenario_json(const scn_result *r, int err, const rpt_meta *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", str_or_null(r->id));
    json_object_set_new(o, "name", str_or_null(r->name));
    json_object_set_new(o, "file", str_or_null(r->file));
    json_object_set_new(o, "rules", arr_or_empty(r->rules));
    json_object_set_new(o, "tags", arr_or_empty(r->tags));
    json_object_set_new(o, "passed", json_boolean(r->passed && !err));
    json_object_set_new(o, "error", json_boolean(err));
    if (r->skipped && !err)
        json_object_set_new(o, "skipped", json_true()); /* --mode real: failure = the reason */
    if (r->partial && r->passed && !err) /* some checks unobservable (SPEC §7) */
        json_object_set_new(o, "partial", json_true());
    json_object_set_new(o, "failure", r->passed && !err ? json_null() : str_or_null(r->failure));
    json_object_set_new(o, "failure_loc",
                        r->passed && !err ? json_null() : str_or_null(r->failure_loc));
    json_object_set_new(o, "failure_step",
                        r->passed && !err ? json_null() : json_integer(r->failure_step));
    json_object_set_new(o, "sim_ms", json_integer(r->sim_ms));
    json_object_set_new(o, "messages", json_integer((json_int_t)r->messages));
    json_object_set_new(o, "checks", arr_or_empty(r->checks));
    if (!m->no_wall)
        json_object_set_new(o, "wall_ms", wall_value(r->wall_ms));
    size_t omitted = 0;
    json_object_set_new(o, "trace", json_is_array(r->trace)
                                        ? report_trace(r, !(r->passed && !err), m, &omitted)
                                        : json_array());
    if (omitted)
        json_object_set_new(o, "trace_omitted", json_integer((json_int_t)omitted));
    return o;
}

json_t *rpt_json_build(const rpt_run *run)
{
    json_t *root = json_object();
    json_t *index = json_array(), *scns = json_array();
    size_t passed = 0, errors = 0, skipped = 0, partial = 0;
    for (size_t i = 0; i < run->n; i++) {
        const scn_result *r = &run->results[i];
        int err = run->errors && run->errors[i];
        int ok = r->passed && !err;
        passed += ok && !r->partial;
        partial += ok && r->partial;
        skipped += !ok && !err && r->skipped;
        errors += err != 0;
        json_t *ix = json_object();
        json_object_set_new(ix, "id", str_or_null(r->id));
        json_object_set_new(ix, "file", str_or_null(r->file));
        json_object_set_new(ix, "passed", json_boolean(ok));
        json_array_append_new(index, ix);
        json_array_append_new(scns, scenario_json(r, err, &run->meta));
    }
    json_object_set_new(root, "version",
                        json_string(run->meta.version ? run->meta.version : HX_VERSION));
    json_object_set_new(root, "seed", json_integer((json_int_t)run->meta.seed));
    json_object_set_new(root, "mode", json_string(run->meta.mode ? run->meta.mode : "sim"));
    json_object_set_new(root, "trace", json_string(run->meta.trace_full ? "full" : "compact"));
    json_object_set_new(root, "summary",
                        json_pack("{s:I,s:I,s:I,s:I}", "passed", (json_int_t)passed, "failed",
                                  (json_int_t)(run->n - passed - partial - skipped), "errors",
                                  (json_int_t)errors, "total", (json_int_t)run->n));
    if (skipped)
        json_object_set_new(json_object_get(root, "summary"), "skipped",
                            json_integer((json_int_t)skipped));
    if (partial)
        json_object_set_new(json_object_get(root, "summary"), "partial",
                            json_integer((json_int_t)partial));
    if (run->rules) /* rule coverage: rule -> checks passed/failed/unobservable/not run */
        json_object_set_new(root, "rules", json_deep_copy(run->rules));
    if (run->obligations) { /* the obligations table with this run's verdicts */
        json_t *ob = json_object();
        json_object_set(ob, "obligations", json_object_get(run->obligations, "obligations"));
        json_object_set(ob, "problems", json_object_get(run->obligations, "problems"));
        json_object_set_new(root, "obligations", ob);
    }
    json_object_set_new(root, "index", index);
    json_object_set_new(root, "scenarios", scns);
    return root;
}

int rpt_json_write(FILE *f, const rpt_run *run)
{
    json_t *root = rpt_json_build(run);
    int rc = json_dumpf(root, f, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (rc == 0 && fputc('\n', f) == EOF)
        rc = -1;
    return rc == 0 && !ferror(f) ? 0 : -1;
}

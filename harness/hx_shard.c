/*
 * hx_shard.c - scaling the suite out the way CI does (issue 13 §6):
 *   hp-harness run --shard K/N [--shard-durations REPORT.json]
 *   hp-harness merge-reports SHARD.json... [--junit F] [--json F] [--html F]
 *                            [--reports-dir DIR] [--no-reports]
 *
 * Sharding is a pure function of the selected scenarios (in suite order),
 * N, and the durations file: every job of a CI matrix computes the same
 * split on its own, each scenario lands in exactly one shard, and the
 * union of the shards is the unsharded run.  Without durations the split
 * is round-robin in suite order (scenario i goes to shard i mod N + 1).
 * With durations (the scenarios' "wall_ms" in a previous JSON report) it
 * is the longest-processing-time rule: longest first onto the shard with
 * the least total so far (ties: the lower shard, ids in byte order); a
 * scenario the report does not know counts as the mean of the known ones.
 *
 * merge-reports reads the shards' JSON reports (they hold everything the
 * other formats need), refuses an id that appears twice or reports of
 * different seeds or modes, orders the scenarios by file then id (the
 * suite's discovery order), sums the shards' rule tables (a rule required
 * by any shard stays required; compact traces keep no passed assertion, so
 * the table cannot be rebuilt from them) and takes each obligation check's
 * verdict from the shard that ran it, and writes the three reports with the
 * same writers as `run`.  Exit status as `run`'s:
 * 0 all passed, 1 a failure (or an unchecked required rule, or nothing but
 * skips), 2 usage or unreadable input, 3 a shard had a runtime error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rpt.h"
#include "hx_int.h"

#define HX_MAX_SHARDS 1000

int hx_shard_parse(const char *s, int *k, int *n)
{
    char *end;
    errno = 0;
    if (!s || *s < '0' || *s > '9')
        return -1;
    long a = strtol(s, &end, 10);
    if (errno || *end != '/' || end[1] < '0' || end[1] > '9')
        return -1;
    long b = strtol(end + 1, &end, 10);
    if (errno || *end || a < 1 || b < 1 || a > b || b > HX_MAX_SHARDS)
        return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

typedef struct shard_item {
    size_t index;           /* in suite order */
    const char *id;
    double ms;
} shard_item;

static int by_duration(const void *a, const void *b)
{
    const shard_item *x = a, *y = b;
    if (x->ms != y->ms)
        return x->ms > y->ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

int hx_shard_select(hx_suite *su, int k, int n, const char *durations)
{
    size_t total = su->n;
    int *shard_of = calloc(total ? total : 1, sizeof *shard_of);
    if (!shard_of) {
        fputs("hp-harness: out of memory\n", stderr);
        return HX_RUNTIME;
    }
    if (!durations) {
        for (size_t i = 0; i < total; i++)
            shard_of[i] = (int)(i % (size_t)n) + 1;
    } else {
        json_error_t je;
        json_t *rep = json_load_file(durations, 0, &je);
        json_t *scns = json_object_get(rep, "scenarios");
        if (!rep || !json_is_array(scns)) {
            fprintf(stderr, "hp-harness: --shard-durations %s: %s\n", durations,
                    rep ? "not an hp-harness JSON report (no \"scenarios\" array)" : je.text);
            json_decref(rep);
            free(shard_of);
            return HX_INVALID;
        }
        json_t *known = json_object(); /* id -> wall ms */
        double sum = 0;
        size_t nk = 0, i;
        json_t *s;
        json_array_foreach(scns, i, s) {
            const char *id = json_string_value(json_object_get(s, "id"));
            json_t *w = json_object_get(s, "wall_ms");
            if (id && json_is_number(w) && json_number_value(w) >= 0) {
                json_object_set_new(known, id, json_real(json_number_value(w)));
                sum += json_number_value(w);
                nk++;
            }
        }
        if (nk == 0)
            fprintf(stderr, "hp-harness: --shard-durations %s has no wall times (written with "
                            "--no-wall-times?): every scenario counts the same\n", durations);
        double mean = nk ? sum / (double)nk : 1.0;
        shard_item *it = calloc(total ? total : 1, sizeof *it);
        double *load = calloc((size_t)n, sizeof *load);
        if (!it || !load) {
            fputs("hp-harness: out of memory\n", stderr);
            free(it);
            free(load);
            free(shard_of);
            json_decref(known);
            json_decref(rep);
            return HX_RUNTIME;
        }
        for (i = 0; i < total; i++) {
            it[i].index = i;
            it[i].id = scn_id(su->s[i]);
            json_t *w = json_object_get(known, it[i].id);
            it[i].ms = w ? json_real_value(w) : mean;
        }
        qsort(it, total, sizeof *it, by_duration);
        for (i = 0; i < total; i++) {
            int best = 0;
            for (int j = 1; j < n; j++)
                if (load[j] < load[best])
                    best = j;
            load[best] += it[i].ms;
            shard_of[it[i].index] = best + 1;
        }
        free(it);
        free(load);
        json_decref(known);
        json_decref(rep);
    }
    size_t m = 0;
    for (size_t i = 0; i < total; i++) {
        if (shard_of[i] == k)
            su->s[m++] = su->s[i];
        else
            scn_free(su->s[i]);
    }
    su->n = m;
    free(shard_of);
    return 0;
}

/* ---- merge-reports ------------------------------------------------------ */

typedef struct merged {
    scn_result *res;
    int *errors;
    size_t n, cap;
} merged;

static int cmp_result(const void *a, const void *b)
{
    const scn_result *x = a, *y = b;
    int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
    return c ? c : strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

static void merge_usage(FILE *f)
{
    fputs("usage: hp-harness merge-reports SHARD.json... [--junit FILE] [--json FILE]\n"
          "                                [--html FILE] [--reports-dir DIR] [--no-reports]\n"
          "Merges the JSON reports of `hp-harness run --shard K/N` jobs into one run's\n"
          "reports (JUnit, JSON, HTML; default under reports/), prints the failures and the\n"
          "summary line, and exits as `run` would have: 0 all passed, 1 a failure, 2 usage\n"
          "or unreadable input, 3 a runtime error in a shard.\n",
          f);
}

/* Adds a shard's rule table to *sum: counts add up, "required" if any
 * shard requires the rule. */
static void merge_rules(json_t **sum, json_t *shard)
{
    if (!json_is_object(shard))
        return;
    if (!*sum) {
        *sum = json_deep_copy(shard);
        return;
    }
    const char *k;
    json_t *row;
    json_object_foreach(shard, k, row) {
        json_t *into = json_object_get(*sum, k);
        if (!into) {
            json_object_set_new(*sum, k, json_deep_copy(row));
            continue;
        }
        const char *f;
        json_t *v;
        json_object_foreach(row, f, v) {
            if (json_is_integer(v))
                json_object_set_new(into, f, json_integer(json_integer_value(json_object_get(into, f)) +
                                                          json_integer_value(v)));
            else if (json_is_true(v))
                json_object_set_new(into, f, json_true());
        }
    }
}

/* Merges a shard's obligations table ({"obligations","problems"}) into
 * *acc: a check's verdict is the one of the shard that ran its scenario
 * (every other shard says "not run"). */
static void merge_obligations(json_t **acc, json_t *shard)
{
    if (!json_is_object(shard))
        return;
    if (!*acc) {
        *acc = json_deep_copy(shard);
        return;
    }
    json_t *mine = json_object_get(*acc, "obligations"), *theirs = json_object_get(shard, "obligations");
    if (json_array_size(mine) != json_array_size(theirs))
        return; /* another checkout: keep the first */
    for (size_t i = 0; i < json_array_size(mine); i++) {
        json_t *mc = json_object_get(json_array_get(mine, i), "checks");
        json_t *tc = json_object_get(json_array_get(theirs, i), "checks");
        for (size_t j = 0; j < json_array_size(mc) && j < json_array_size(tc); j++) {
            json_t *m = json_array_get(mc, j);
            const char *mv = json_string_value(json_object_get(m, "verdict"));
            const char *tv = json_string_value(json_object_get(json_array_get(tc, j), "verdict"));
            if (tv && strcmp(tv, "not run") && (!mv || !strcmp(mv, "not run")))
                json_object_set_new(m, "verdict", json_string(tv));
        }
    }
}

int cmd_merge_reports(int argc, char **argv)
{
    const char *junit = NULL, *json = NULL, *html = NULL, *dir = NULL;
    int no_reports = 0;
    strv inputs = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--junit")         ? &junit
                            : !strcmp(a, "--json")        ? &json
                            : !strcmp(a, "--html")        ? &html
                            : !strcmp(a, "--reports-dir") ? &dir
                                                          : NULL;
        if (slot) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                strv_free(&inputs);
                return usage_error("merge-reports: %s needs a path", a);
            }
            *slot = argv[++i];
        } else if (!strcmp(a, "--no-reports")) {
            no_reports = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            merge_usage(stdout);
            strv_free(&inputs);
            return HX_OK;
        } else if (a[0] == '-' && a[1]) {
            strv_free(&inputs);
            return usage_error("merge-reports: unknown option '%s'", a);
        } else if (strv_push(&inputs, a) != 0) {
            strv_free(&inputs);
            return HX_RUNTIME;
        }
    }
    if (inputs.n == 0) {
        merge_usage(stderr);
        return HX_INVALID;
    }
    merged mg = {0};
    json_t *required = json_array();
    json_t *rules = NULL, *obligations = NULL; /* the shards' tables, merged */
    json_int_t seed = -1;
    char mode[16] = "", version[32] = "";
    int trace_full = 0, no_wall = 0, rc = HX_OK;
    for (size_t f = 0; f < inputs.n && rc == HX_OK; f++) {
        json_error_t je;
        json_t *rep = json_load_file(inputs.v[f], 0, &je);
        char err[256];
        scn_result *res = NULL;
        int *errs = NULL;
        long got = rep ? rpt_json_results(rep, &res, &errs, err, sizeof err) : -1;
        if (got < 0) {
            fprintf(stderr, "hp-harness: merge-reports: %s: %s\n", inputs.v[f],
                    rep ? err : je.text);
            json_decref(rep);
            rc = HX_INVALID;
            break;
        }
        const char *m = json_string_value(json_object_get(rep, "mode"));
        json_int_t sd = json_integer_value(json_object_get(rep, "seed"));
        if (f == 0) {
            seed = sd;
            snprintf(mode, sizeof mode, "%s", m ? m : "sim");
            snprintf(version, sizeof version, "%s",
                     json_string_value(json_object_get(rep, "version"))
                         ? json_string_value(json_object_get(rep, "version"))
                         : HX_VERSION);
        } else if (sd != seed || strcmp(mode, m ? m : "sim")) {
            fprintf(stderr, "hp-harness: merge-reports: %s: seed %" JSON_INTEGER_FORMAT
                            ", mode %s; %s has seed %" JSON_INTEGER_FORMAT ", mode %s (shards "
                            "of one run share both)\n",
                    inputs.v[f], sd, m ? m : "sim", inputs.v[0], seed, mode);
            rc = HX_INVALID;
        }
        const char *tr = json_string_value(json_object_get(rep, "trace"));
        trace_full |= tr && !strcmp(tr, "full");
        no_wall |= json_array_size(json_object_get(rep, "scenarios")) > 0 &&
                   !json_object_get(json_array_get(json_object_get(rep, "scenarios"), 0),
                                    "wall_ms");
        const char *k;
        json_t *row;
        json_object_foreach(json_object_get(rep, "rules"), k, row) {
            int have = 0;
            size_t q;
            json_t *v;
            json_array_foreach(required, q, v) have |= !strcmp(json_string_value(v), k);
            if (json_is_true(json_object_get(row, "required")) && !have)
                json_array_append_new(required, json_string(k));
        }
        merge_rules(&rules, json_object_get(rep, "rules"));
        merge_obligations(&obligations, json_object_get(rep, "obligations"));
        json_decref(rep);
        for (long i = 0; i < got; i++) {
            int dup = 0;
            for (size_t j = 0; j < mg.n && !dup; j++)
                dup = !strcmp(mg.res[j].id, res[i].id);
            if (dup && rc == HX_OK) {
                fprintf(stderr, "hp-harness: merge-reports: scenario '%s' is in more than one "
                                "report (%s and an earlier one): shards must not overlap\n",
                        res[i].id, inputs.v[f]);
                rc = HX_INVALID;
            }
            if (mg.n == mg.cap) {
                size_t cap = mg.cap ? mg.cap * 2 : 64;
                scn_result *nr = realloc(mg.res, cap * sizeof *nr);
                int *ne = nr ? realloc(mg.errors, cap * sizeof *ne) : NULL;
                if (nr)
                    mg.res = nr;
                if (!nr || !ne) {
                    fputs("hp-harness: out of memory\n", stderr);
                    rc = HX_RUNTIME;
                    scn_result_clear(&res[i]);
                    continue;
                }
                mg.errors = ne;
                mg.cap = cap;
            }
            mg.res[mg.n] = res[i];
            mg.errors[mg.n] = errs[i];
            mg.n++;
        }
        free(res);
        free(errs);
    }
    strv_free(&inputs);
    if (rc == HX_OK) {
        /* Sort results and their error flags together. */
        typedef struct pair {
            scn_result r;
            int err;
        } pair;
        pair *pv = calloc(mg.n ? mg.n : 1, sizeof *pv);
        if (pv) {
            for (size_t i = 0; i < mg.n; i++) {
                pv[i].r = mg.res[i];
                pv[i].err = mg.errors[i];
            }
            qsort(pv, mg.n, sizeof *pv, cmp_result); /* r is the first member */
            for (size_t i = 0; i < mg.n; i++) {
                mg.res[i] = pv[i].r;
                mg.errors[i] = pv[i].err;
            }
            free(pv);
        }
        rpt_run run = {mg.res, mg.errors, mg.n,
                       {(uint64_t)(seed < 0 ? 0 : seed), mode, version, trace_full, no_wall},
                       NULL, NULL};
        /* Compact traces keep no passed assertion: the tables are the
         * shards' own, summed (each scenario ran in one shard). */
        run.rules = rules ? json_incref(rules) : rpt_rules_build(&run, required);
        run.obligations = json_incref(obligations);
        printf("merged %zu scenario%s from the shards' reports\n", mg.n, mg.n == 1 ? "" : "s");
        for (size_t i = 0; i < mg.n; i++)
            if (mg.errors[i] || (!mg.res[i].passed && !mg.res[i].skipped))
                rpt_term_line(stdout, &mg.res[i], mg.errors[i]);
        int wrc = hx_write_reports(junit, json, html, dir, no_reports, &run);
        size_t passed = rpt_count_passed(&run), partial = rpt_count_partial(&run),
               skipped = rpt_count_skipped(&run);
        json_t *unchecked = rpt_rules_unchecked(run.rules);
        if (json_array_size(required) || strcmp(mode, "real") == 0)
            rpt_rules_print(stdout, run.rules);
        rpt_term_summary(stdout, &run);
        int any_error = 0;
        for (size_t i = 0; i < mg.n; i++)
            any_error |= mg.errors[i];
        rc = any_error || wrc ? HX_RUNTIME
             : mg.n && passed + partial == 0 ? HX_FAILED
             : passed + partial + skipped == mg.n && json_array_size(unchecked) == 0 ? HX_OK
                                                                                     : HX_FAILED;
        json_decref(unchecked);
        json_decref(run.rules);
        json_decref(run.obligations);
    }
    for (size_t i = 0; i < mg.n; i++)
        scn_result_clear(&mg.res[i]);
    free(mg.res);
    free(mg.errors);
    json_decref(required);
    json_decref(rules);
    json_decref(obligations);
    return rc;
}

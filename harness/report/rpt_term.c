/*
 * rpt_term.c - the terminal report: one line per scenario and the summary
 * line CI parses.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rpt.h"

/* Virtual time for humans: "950ms", "12.000s", "31m05.000s", "2h00m00.000s". */
static void fmt_sim(char *buf, size_t len, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, frac = ms % 1000;
    if (ms < 1000)
        snprintf(buf, len, "%" PRId64 "ms", ms);
    else if (h > 0)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m%02" PRId64 ".%03" PRId64 "s", h, m, s, frac);
    else if (m > 0)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 ".%03" PRId64 "s", m, s, frac);
    else
        snprintf(buf, len, "%" PRId64 ".%03" PRId64 "s", s, frac);
}

/*
 * Prints one scenario.  A failure is printed under the line, indented, as
 * "file:line: text"; a multi-line failure keeps the indentation on every
 * line so the block stays readable in a CI log.
 */
void rpt_term_line(FILE *f, const scn_result *r, int error)
{
    rpt_term_line_c(f, r, error, NULL);
}

void rpt_term_line_c(FILE *f, const scn_result *r, int error, const rpt_term_opts *o)
{
    char sim[48];
    fmt_sim(sim, sizeof sim, r->sim_ms);
    const char *status = error       ? "ERROR"
                         : r->passed ? (r->partial ? "PART " : "PASS ")
                         : r->skipped ? "SKIP "
                                      : "FAIL ";
    const char *c = !(o && o->color) ? ""
                    : error || (!r->passed && !r->skipped) ? "\033[1;31m"
                    : r->passed && !r->partial             ? "\033[32m"
                                                           : "\033[33m";
    fprintf(f, "%s%s%s %s  (sim %s, wall %.2f ms)\n", c, status, *c ? "\033[0m" : "",
            r->id ? r->id : "?", sim, r->wall_ms);
    if (r->passed && !error) {
        if (r->partial) /* which assertions this target could not show */
            rpt_term_unobservable(f, r);
        return;
    }
    const char *text = r->failure ? r->failure : "failed (no detail given)";
    fputs("      ", f);
    if (r->failure_loc && *r->failure_loc)
        fprintf(f, "%s: ", r->failure_loc);
    for (const char *p = text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n' && p[1])
            fputs("      ", f);
    }
    if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
        fputc('\n', f);
}

/* "      unobservable: file:line alice.frames (why)" for each such check. */
void rpt_term_unobservable(FILE *f, const scn_result *r)
{
    size_t i, shown = 0;
    json_t *c;
    json_array_foreach(r->checks, i, c) {
        const char *v = json_string_value(json_object_get(c, "verdict"));
        if (!v || strcmp(v, "unobservable"))
            continue;
        if (shown++ == 8) {
            fputs("      unobservable: ...\n", f);
            break;
        }
        fprintf(f, "      unobservable: %s (%s)\n", json_string_value(json_object_get(c, "name")),
                json_string_value(json_object_get(c, "detail")));
    }
}

size_t rpt_count_passed(const rpt_run *run)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        if (run->results[i].passed && !run->results[i].partial && !(run->errors && run->errors[i]))
            n++;
    return n;
}

size_t rpt_count_partial(const rpt_run *run)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        if (run->results[i].passed && run->results[i].partial && !(run->errors && run->errors[i]))
            n++;
    return n;
}

size_t rpt_count_skipped(const rpt_run *run)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n; i++)
        if (run->results[i].skipped && !run->results[i].passed && !(run->errors && run->errors[i]))
            n++;
    return n;
}

/* "N passed, N failed" (CI parses this prefix); ", N partial, N skipped"
 * in real mode or whenever there are any; ", rules: X of Y checked" when
 * the run has a rule table and is in real mode or requires rules, then the
 * required rules left unchecked (which fail the run). */
void rpt_term_summary(FILE *f, const rpt_run *run)
{
    size_t passed = rpt_count_passed(run), skipped = rpt_count_skipped(run),
           partial = rpt_count_partial(run);
    int real = run->meta.mode && strcmp(run->meta.mode, "real") == 0;
    fprintf(f, "%zu passed, %zu failed", passed, run->n - passed - skipped - partial);
    if (real || partial)
        fprintf(f, ", %zu partial", partial);
    if (real || skipped)
        fprintf(f, ", %zu skipped", skipped);
    if (run->rules) {
        int any_required = 0;
        const char *k;
        json_t *row;
        json_object_foreach(run->rules, k, row) any_required |=
            json_is_true(json_object_get(row, "required"));
        if (real || any_required) {
            size_t total, checked = rpt_rules_checked(run->rules, &total);
            fprintf(f, ", rules: %zu of %zu checked", checked, total);
            json_t *un = rpt_rules_unchecked(run->rules);
            size_t i;
            json_t *r;
            json_array_foreach(un, i, r)
                fprintf(f, "%s%s", i ? ", " : "; required but unchecked: ", json_string_value(r));
            json_decref(un);
        }
    }
    fputc('\n', f);
}

/*
 * rpt.h - the report writers of hp-harness: terminal lines, JUnit XML, JSON
 * and the self-contained HTML report.
 *
 * They see only what harness.h exposes (scn_result), so they can be tested
 * against a fake engine and never depend on the simulator's internals.
 * Every writer takes the results in the order the scenarios were selected
 * (the order is the caller's business: hx_main.c keeps it stable whatever
 * --jobs is).  None of them owns or modifies the results.
 *
 * Determinism: the JSON and HTML reports contain no path other than the
 * ones the results carry (the paths as given on the command line), keys are
 * sorted, and their only wall-clock values are the "wall_ms" keys (per
 * scenario and per step), left out with rpt_meta.no_wall (--no-wall-times):
 * then the same scenarios with the same seed give byte-identical files.
 */
#ifndef RPT_H
#define RPT_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "harness.h"

#ifdef HP_VERSION
#define HX_VERSION HP_VERSION /* CMake's project() version */
#else
#define HX_VERSION "unknown"
#endif

/* What a report says about the run as a whole. */
typedef struct rpt_meta {
    uint64_t seed;
    const char *mode;       /* "sim" */
    const char *version;    /* HX_VERSION */
    /* How much of each trace the JSON and HTML reports keep (--trace):
     * 0 compact (default): a passed scenario keeps its steps, notifications
     * and WARNING/ERROR logs (strings cut at RPT_COMPACT_STEP_MAX bytes); a
     * failed one every notable record (rpt_record_notable()) and the last
     * RPT_TAIL_RECORDS records before its first failure (strings cut at
     * RPT_COMPACT_STR_MAX bytes).
     * 1 full: every record (strings cut at 2048 bytes). */
    int trace_full;
    /* 1 (--no-wall-times): no wall-clock value in JSON/HTML, so the same
     * seed gives the same bytes; 0: per-scenario and per-step wall_ms. */
    int no_wall;
} rpt_meta;

#define RPT_TAIL_RECORDS 200
#define RPT_COMPACT_STR_MAX 240
#define RPT_COMPACT_STEP_MAX 48     /* a passed scenario's step texts */

/* A result that could not run (scn_run returned -1) is reported as failed;
 * the writers tell it apart with this flag array (may be NULL: none). */
typedef struct rpt_run {
    const scn_result *results;
    const int *errors;      /* errors[i] != 0: runtime error, not assertion */
    size_t n;
    rpt_meta meta;
    /* Optional (NULL: left out of the reports), borrowed: */
    json_t *rules;          /* rpt_rules_build() */
    json_t *obligations;    /* rpt_oblig_scan() with rpt_oblig_verdicts() */
} rpt_run;

/* ---- terminal (rpt_term.c, rpt_explain.c) ---------------------------- */

/* How the terminal explains (hx_run.c fills it from -v, --timeline,
 * --color, NO_COLOR and isatty). */
typedef struct rpt_term_opts {
    int color;      /* ANSI colours */
    int verbose;    /* -v: the full timeline of passed scenarios too */
    int timeline;   /* notable records shown before a failure; 0 = 20 */
} rpt_term_opts;

/* rpt_term_line() with colours when o->color (o may be NULL). */
void rpt_term_line_c(FILE *f, const scn_result *r, int error, const rpt_term_opts *o);
/* Under a failed scenario's line: every failed assertion (when there is
 * more than the one rpt_term_line() shows), then a compact timeline of the
 * last notable records before the first failure (rpt_record_notable()),
 * one line each: virtual time, actor, lane, summary.  With o->verbose a
 * passed scenario gets its full timeline too; otherwise nothing. */
void rpt_term_explain(FILE *f, const scn_result *r, int error, const rpt_term_opts *o);
/* 1 for the records a compact timeline or report keeps: steps, requests,
 * frames other than heartbeats, WebSocket connects/closes/losses,
 * notifications, WARNING/ERROR/STDERR logs, failed assertions. */
int rpt_record_notable(const json_t *e);
/* Virtual ms as "m:ss.mmm" (or "h:mm:ss.mmm"). */
void rpt_fmt_vtime(char *buf, size_t len, int64_t ms);

/* "PASS  id  sim 1m05.000s  wall 0.42 ms" and, when failed, the failure
 * indented on the next line as "file:line: text". */
void rpt_term_line(FILE *f, const scn_result *r, int error);
/* Exactly "N passed, N failed\n": CI parses it as the last stdout line. */
void rpt_term_summary(FILE *f, const rpt_run *run);
size_t rpt_count_passed(const rpt_run *run);   /* passed, partial ones not included */
size_t rpt_count_partial(const rpt_run *run);  /* passed, some checks unobservable */
void rpt_term_unobservable(FILE *f, const scn_result *r);
/* Scenarios skipped (--mode real: scn_result.skipped), not errors. */
size_t rpt_count_skipped(const rpt_run *run);

/* ---- JUnit XML (rpt_junit.c) ----------------------------------------- */

/* Writes the text escaped for XML character data and attribute values
 * (& < > " ' and line breaks as character references; control characters
 * that XML 1.0 forbids and invalid UTF-8 bytes become '?'). */
void rpt_xml_escape(FILE *f, const char *s);
/* Length (1..4) of the valid UTF-8 sequence at s, 0 when s[0] starts none
 * (overlong forms, surrogates, U+FFFE/FFFF included). */
size_t rpt_utf8_len(const unsigned char *s);
/* The JUnit classname of an id: its folder ("queue/fifo" -> "queue"),
 * "scenarios" when the id has no folder.  Writes into buf (always
 * terminated). */
void rpt_junit_classname(const char *id, char *buf, size_t len);
/* Returns 0, or -1 when writing failed. */
int rpt_junit_write(FILE *f, const rpt_run *run);

/* ---- JSON (rpt_json.c) ----------------------------------------------- */

/* The whole report as a new reference:
 *   {"version","seed","mode","trace":"compact"|"full",
 *    "summary":{passed,failed,errors,total},
 *    "index":[{id,file,passed}],
 *    "scenarios":[{id,name,file,rules,tags,passed,error,failure,failure_loc,
 *                  failure_step,sim_ms,wall_ms,messages,checks,trace,
 *                  trace_omitted}]}
 * Every "step" record of a trace carries "sim_ms" (virtual time to the
 * next step or the end) and "wall_ms" (scn_result.step_wall_ms).  wall_ms
 * keys are left out with meta.no_wall. */
json_t *rpt_json_build(const rpt_run *run);
/* The inverse, for merge-reports: the results of a JSON report (the
 * trace as the report kept it).  Fills *results (calloc'ed, free each with
 * scn_result_clear()) and *errors; returns how many, or -1 with err. */
long rpt_json_results(json_t *report, scn_result **results, int **errors, char *err,
                      size_t errlen);
/* rpt_json_build() dumped with sorted keys, compact (no indentation: a
 * quarter of the size; `jq .` shows it indented), a
 * final newline.  Returns 0, or -1 when writing failed. */
int rpt_json_write(FILE *f, const rpt_run *run);

/* ---- HTML (rpt_html.c) ----------------------------------------------- */

/* One self-contained page (inline CSS and JS, no URL of any kind) with the
 * report data embedded as JSON in <script type="application/json">.  In
 * that block every '<' is written as \u003c (so neither "</script>" nor
 * "<!--" can end or confuse it) and "//" as "\/\/" (so no string in the
 * data reads as a URL).  Returns 0, or -1 when writing failed. */
int rpt_html_write(FILE *f, const rpt_run *run);

/* ---- obligations (rpt_oblig.c) ---------------------------------------- */

/* The obligations table of root (a checkout: docs/SYNC_POLICY.md, the
 * "checks:" markers under scenarios/ and tests/).  A new object:
 *   {"doc", "markers": N, "problems": ["file:line: message", ...],
 *    "obligations": [{"id","rule","text","cell" (as in the doc),
 *                     "want_cell" (from the markers),"doc_line",
 *                     "checks": [{"kind":"scenario","file","line","step_line"} |
 *                                {"kind":"test","file","function","line"}]}]}
 * NULL with err when the doc cannot be read.  An empty "problems" means
 * every rule has obligations, every obligation a check, and every cell is
 * up to date. */
json_t *rpt_oblig_scan(const char *root, char *err, size_t errlen);
/* Rewrites the doc's "checked by" cells from scan (atomically). 0 or -1. */
int rpt_oblig_update(const char *root, json_t *scan, char *err, size_t errlen);
/* Sets "verdict" on every check of scan from the run: passed, failed,
 * unobservable, partial, not run (scenario checks), test (unit and
 * black-box tests are CTest's business). */
void rpt_oblig_verdicts(json_t *scan, const char *root, const rpt_run *run);
/* The table (verbose) and the problems, then one count line. */
void rpt_oblig_print(FILE *f, json_t *scan, int verbose);
/* The checkout holding docs/SYNC_POLICY.md at or above `from`. 0 or -1. */
int rpt_oblig_find_root(const char *from, char *out, size_t len);
/* Step items of a scenario's text: first lines (1-based) and first keys
 * of the top-level steps: sequence; returns how many (at most max). */
int rpt_oblig_step_starts(const char *text, int *starts, char (*keys)[32], int max);

/* Per step of a scenario file: {"<step line>": [rules its checks: markers
 * name]}; NULL when the file cannot be read. */
json_t *rpt_oblig_markers(const char *path);

/* ---- rule coverage (rpt_rules.c) ------------------------------------- */

extern const char *const rpt_rule_ids[];     /* every rule, in policy order */
extern const char *const rpt_server_rules[]; /* --require-rules server (default with --server) */
extern const char *const rpt_client_rules[]; /* --require-rules client (default with --client-cmd) */
/* {"WS-1": {"passed","failed","unobservable","not_run","required"}, ...}:
 * what the run's checks say of each rule (required: a JSON array of rule
 * ids, may be NULL).  New reference. */
json_t *rpt_rules_build(const rpt_run *run, json_t *required);
/* The required rules with no passing check (new array). */
json_t *rpt_rules_unchecked(json_t *table);
/* Rules with at least one passing check; *total = every rule. */
size_t rpt_rules_checked(json_t *table, size_t *total);
void rpt_rules_print(FILE *f, json_t *table);
/* "all", "server", "client", "none" or "WS-4,Q-7" -> *out (new array).
 * 0, or -1 with err. */
int rpt_rules_parse(const char *spec, json_t **out, char *err, size_t errlen);

/* ---- files ----------------------------------------------------------- */

typedef int (*rpt_writer)(FILE *f, const rpt_run *run);

/* Creates the parent directories of path, writes to "path.tmp.PID" and renames
 * it over path, so a reader never sees half a report.  Returns 0, or -1
 * with a message in err. */
int rpt_write_file(const char *path, rpt_writer w, const rpt_run *run, char *err, size_t errlen);

#endif

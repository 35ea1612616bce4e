/*
 * hx_int.h - what the parts of the hp-harness front end share: hx_main.c
 * (command line, discovery, lint, list, trace), hx_run.c (run: the worker
 * pool, terminal output, reports) and hx_shard.c (--shard, merge-reports).
 *
 * Ownership: an hx_opts borrows argv's strings (and owns secret_buf and
 * its string lists); an hx_suite owns its scenarios (suite_free()).
 */
#ifndef HX_INT_H
#define HX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* SPEC §5 exit codes. */
enum { HX_OK = 0, HX_FAILED = 1, HX_INVALID = 2, HX_RUNTIME = 3 };

#define HX_MAX_JOBS 256

/* ---- growable string list ------------------------------------------- */

typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

int strv_push(strv *s, const char *x);      /* 0, or -1 out of memory */
void strv_free(strv *s);
int strv_has(const strv *s, const char *x);

/* ---- options ---------------------------------------------------------- */

typedef struct hx_opts {
    const char *cmd;            /* "run", "lint", "list" */
    strv paths;
    const char *mode;
    strv globs, tags, rules;    /* same kind: any matches (OR); kinds: AND */
    uint64_t seed;
    int jobs;
    const char *junit, *json, *html;
    const char *reports_dir;
    int no_reports;
    int list_json;
    /* --mode real (real.h) */
    const char *server_url, *jwt_secret, *jwt_secret_file, *bin_dir, *ca_file;
    double time_scale, max_wall_s;
    char *secret_buf;           /* read from --jwt-secret-file */
    const char *require_rules;  /* all|server|client|none|LIST; NULL: by target */
    const char *server_reset, *token_cmd, *client_cmd;
    int no_proxy;
    /* the terminal and the reports (hx_run.c, docs/REPORTS.md) */
    int verbose;                /* -v: full timelines of passed scenarios too */
    int fail_fast;              /* -x: stop after the first failed scenario */
    int color;                  /* --color: 0 auto (a TTY, NO_COLOR unset), 1 always, 2 never */
    int timeline;               /* --timeline N: records before a failure (0: 20) */
    int trace_full;             /* --trace full */
    int no_wall;                /* --no-wall-times */
    /* --shard K/N (hx_shard.c): 0/0 = no sharding */
    int shard_k, shard_n;
    const char *shard_durations; /* a previous JSON report */
} hx_opts;

/* ---- the suite -------------------------------------------------------- */

typedef struct hx_suite {
    scn_scenario **s;
    size_t n;
    size_t files;
} hx_suite;

/* "hp-harness: MESSAGE" (fmt with one %s) and the --help hint on stderr;
 * returns HX_INVALID. */
int usage_error(const char *fmt, const char *arg);
char *join_path(const char *dir, const char *name);     /* malloc'ed */
void suite_free(hx_suite *su);
/* Loads and validates every file under paths (all problems printed):
 * 0, HX_INVALID or HX_RUNTIME. */
int load_all(const strv *paths, hx_suite *su);
int selected(const hx_opts *o, const scn_scenario *s);  /* the filters */
int check_rule_filters(const hx_opts *o);               /* 0 or HX_INVALID */

/* hx_run.c */
int cmd_run(hx_opts *o);

/* hx_shard.c */
/* Keeps in su (in suite order) the scenarios of shard k of n (1 <= k <= n):
 * round-robin in suite order, or, with durations (a previous JSON report's
 * path, NULL for none), longest first onto the least loaded shard.  Every
 * shard computes the same split from the same inputs.  0, or HX_INVALID
 * with a message on stderr. */
int hx_shard_select(hx_suite *su, int k, int n, const char *durations);
/* "K/N" -> 1 <= k <= n <= 1000.  0 or -1. */
int hx_shard_parse(const char *s, int *k, int *n);
/* hp-harness merge-reports (argv after the command word). */
int cmd_merge_reports(int argc, char **argv);
/* The reports of run: --junit/--json/--html or their defaults under
 * --reports-dir, then ONE line "reports: ..." naming them.  0 or
 * HX_RUNTIME. */
struct rpt_run;
int hx_write_reports(const char *junit, const char *json, const char *html, const char *dir,
                     int no_reports, const struct rpt_run *run);

#endif

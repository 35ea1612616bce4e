/*
 * hx_run.c - `hp-harness run`: the selected scenarios on a pool of --jobs
 * workers, one terminal line each in suite order, then the reports and the
 * summary line (SPEC §5, §6).  Options are parsed by hx_main.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "real.h"
#if defined(__has_include)
#if __has_include("cli_core.h")
#define HX_HAVE_REAL 1
#endif
#endif
#ifndef HX_HAVE_REAL
#define HX_HAVE_REAL 0
#endif
#include "rpt.h"
#include "hx_int.h"

/* The pool of --jobs workers.  Results land at their scenario's index and
 * the main thread prints them in index order, so the output (terminal and
 * reports) is the same whatever order the runs finish in. */
typedef struct hx_pool {
    scn_scenario **s;
    scn_result *res;
    int *errors;
    unsigned char *done;
    size_t n;
    size_t next;                /* next index to take (atomic) */
    scn_run_opts opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} hx_pool;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Runs scenario i and fills what the engine left empty, so the reports can
 * rely on id, file, rules and tags being there even after a runtime
 * error. */
static void run_one(hx_pool *p, size_t i)
{
    scn_result *r = &p->res[i];
    const scn_scenario *s = p->s[i];
    memset(r, 0, sizeof *r);
    r->failure_step = -1;
    double t0 = now_ms();
#if HX_HAVE_REAL
    int rc = strcmp(p->opts.mode, "real") == 0 ? scn_run_real(s, &p->opts, r)
                                                : scn_run(s, &p->opts, r);
#else
    int rc = scn_run(s, &p->opts, r);
#endif
    double wall = now_ms() - t0;
    if (r->wall_ms <= 0)
        r->wall_ms = wall;
    if (!r->id)
        r->id = dup_or_null(scn_id(s));
    if (!r->name)
        r->name = dup_or_null(scn_name(s));
    if (!r->file)
        r->file = dup_or_null(scn_file(s));
    if (!r->rules)
        r->rules = json_deep_copy(scn_rules(s));
    if (!r->tags)
        r->tags = json_deep_copy(scn_tags(s));
    if (rc != 0) {
        p->errors[i] = 1;
        r->passed = 0;
        if (!r->failure)
            r->failure = strdup("runtime error");
    } else if (r->skipped) {
        r->passed = 0;
        if (!r->failure)
            r->failure = strdup("skipped");
    } else if (!r->passed && !r->failure) {
        r->failure = strdup("failed (the engine gave no detail)");
    }
}

static void *worker(void *arg)
{
    hx_pool *p = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n)
            break;
        run_one(p, i);
        pthread_mutex_lock(&p->mu);
        p->done[i] = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static int jobs_default(int jobs)
{
    if (jobs > 0)
        return jobs;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > HX_MAX_JOBS ? HX_MAX_JOBS : n) : 1;
}

typedef struct report_spec {
    const char *path;           /* explicit, or NULL */
    const char *dflt;           /* file name under --reports-dir */
    rpt_writer write;
} report_spec;

/* Writes every requested report, then one line naming them:
 * "reports: DIR/ (junit.xml, report.json, report.html)" when they share a
 * directory, else "reports: A, B, C".  Returns 0 or HX_RUNTIME. */
int hx_write_reports(const char *junit, const char *json, const char *html, const char *dir,
                     int no_reports, const rpt_run *run)
{
    report_spec specs[] = {{junit, "junit.xml", rpt_junit_write},
                           {json, "report.json", rpt_json_write},
                           {html, "report.html", rpt_html_write}};
    if (!dir)
        dir = "reports";
    int rc = 0;
    char *done[3];
    size_t nd = 0;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char *path = NULL;
        if (specs[i].path)
            path = strdup(specs[i].path);
        else if (!no_reports)
            path = join_path(dir, specs[i].dflt);
        else
            continue;
        char err[512];
        if (!path) {
            fputs("hp-harness: out of memory\n", stderr);
            rc = HX_RUNTIME;
        } else if (rpt_write_file(path, specs[i].write, run, err, sizeof err) != 0) {
            fprintf(stderr, "hp-harness: %s\n", err);
            rc = HX_RUNTIME;
            free(path);
        } else {
            done[nd++] = path;
        }
    }
    if (nd) {
        /* the common directory (up to and with the last '/'), if any */
        const char *slash = strrchr(done[0], '/');
        size_t dl = slash ? (size_t)(slash - done[0]) + 1 : 0;
        int same = dl > 0;
        for (size_t i = 1; i < nd && same; i++)
            same = strlen(done[i]) > dl && !strncmp(done[i], done[0], dl) &&
                   !strchr(done[i] + dl, '/');
        fputs("reports: ", stdout);
        if (same && nd > 1) {
            printf("%.*s (", (int)dl, done[0]);
            for (size_t i = 0; i < nd; i++)
                printf("%s%s", i ? ", " : "", done[i] + dl);
            fputs(")\n", stdout);
        } else {
            for (size_t i = 0; i < nd; i++)
                printf("%s%s", i ? ", " : "", done[i]);
            fputc('\n', stdout);
        }
    }
    for (size_t i = 0; i < nd; i++)
        free(done[i]);
    return rc;
}

int cmd_run(hx_opts *o)
{
    int real = strcmp(o->mode, "real") == 0;
    if (real && !HX_HAVE_REAL) {
        fputs("hp-harness: --mode real is not implemented in this build (no real-mode "
              "engine linked)\n", stderr);
        return HX_INVALID;
    }
    if (!real && (o->server_url || o->jwt_secret || o->jwt_secret_file || o->bin_dir ||
                  o->time_scale > 0 || o->max_wall_s > 0 || o->ca_file || o->server_reset ||
                  o->token_cmd || o->client_cmd || o->no_proxy))
        return usage_error("%s", "--server, --jwt-secret(-file), --ca-file, --time-scale, "
                                 "--bin-dir, --max-wall, --server-reset, --token-cmd, "
                                 "--client-cmd and --no-proxy need --mode real");
    /* SPEC §7: against a foreign target the rules it must show default to
     * required, so a mostly unobservable run cannot exit 0. */
    const char *req_spec = o->require_rules ? o->require_rules
                           : o->server_url && o->client_cmd ? "all"
                           : o->server_url                  ? "server"
                           : o->client_cmd                  ? "client"
                                                            : "none";
    json_t *required = NULL;
    {
        char err[256];
        if (rpt_rules_parse(req_spec, &required, err, sizeof err) != 0)
            return usage_error("%s", err);
        json_decref(required); /* parsed again once the run is done */
        required = NULL;
    }
    if (o->jwt_secret && o->jwt_secret_file)
        return usage_error("%s", "give --jwt-secret or --jwt-secret-file, not both");
    if (o->ca_file && (!o->server_url || strncmp(o->server_url, "https://", 8)))
        return usage_error("%s", "--ca-file is for an https:// --server");
    if (o->ca_file && access(o->ca_file, R_OK) != 0) {
        fprintf(stderr, "hp-harness: cannot read --ca-file %s: %s\n", o->ca_file,
                strerror(errno));
        return HX_INVALID;
    }
    if (o->jwt_secret_file) {
        FILE *f = fopen(o->jwt_secret_file, "rb");
        char buf[4097];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        if (!f) {
            fprintf(stderr, "hp-harness: cannot read --jwt-secret-file %s: %s\n",
                    o->jwt_secret_file, strerror(errno));
            return HX_INVALID;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            n--;
        buf[n] = '\0';
        o->secret_buf = strdup(buf);
        o->jwt_secret = o->secret_buf;
    }
    if (o->server_url && !o->token_cmd && (!o->jwt_secret || !*o->jwt_secret)) {
        return usage_error("%s", "--server needs --jwt-secret S, --jwt-secret-file F or "
                                 "--token-cmd T (the harness mints the clients' tokens)");
    }
    int rc = check_rule_filters(o);
    if (rc != 0)
        return rc;
    hx_suite su = {0};
    rc = load_all(&o->paths, &su);
    if (rc != 0) {
        suite_free(&su);
        return rc;
    }
    /* Keep only the selected scenarios, in suite order. */
    size_t n = 0;
    for (size_t i = 0; i < su.n; i++) {
        if (selected(o, su.s[i]))
            su.s[n++] = su.s[i];
        else
            scn_free(su.s[i]);
    }
    su.n = n;
    size_t selected_n = n;
    if (n > 0 && o->shard_n > 0) {
        rc = hx_shard_select(&su, o->shard_k, o->shard_n, o->shard_durations);
        if (rc != 0) {
            suite_free(&su);
            return rc;
        }
        n = su.n;
        printf("shard %d/%d: %zu of %zu scenarios\n", o->shard_k, o->shard_n, n, selected_n);
    }
    if (n == 0 && o->shard_n > 0 && selected_n > 0) {
        /* More shards than scenarios: this one has nothing to do, which is
         * not an error in a CI matrix.  Empty reports keep merge-reports
         * simple. */
        rpt_run run = {NULL, NULL, 0, {o->seed, o->mode, HX_VERSION, o->trace_full, o->no_wall},
                       NULL, NULL};
        int wrc = hx_write_reports(o->junit, o->json, o->html, o->reports_dir, o->no_reports,
                                   &run);
        rpt_term_summary(stdout, &run);
        suite_free(&su);
        return wrc ? wrc : HX_OK;
    }
    if (n == 0) {
        fprintf(stderr, "hp-harness: no scenario selected (%zu file%s read%s)\n", su.files,
                su.files == 1 ? "" : "s",
                o->globs.n || o->tags.n || o->rules.n ? ", none matches the filters" : "");
        suite_free(&su);
        return HX_INVALID;
    }

    hx_pool p = {0};
    p.s = su.s;
    p.n = n;
    p.opts.seed = o->seed;
    p.opts.mode = o->mode;
    p.opts.server_url = o->server_url;
    p.opts.jwt_secret = o->jwt_secret;
    p.opts.time_scale = o->time_scale;
    p.opts.bin_dir = o->bin_dir;
    p.opts.ca_file = o->ca_file;
    p.opts.max_wall_s = o->max_wall_s;
    p.opts.server_reset = o->server_reset;
    p.opts.token_cmd = o->token_cmd;
    p.opts.client_cmd = o->client_cmd;
    p.opts.no_proxy = o->no_proxy;
    p.res = calloc(n, sizeof *p.res);
    p.errors = calloc(n, sizeof *p.errors);
    p.done = calloc(n, 1);
    int jobs = jobs_default(o->jobs);
    if ((size_t)jobs > n)
        jobs = (int)n;
    pthread_t *th = calloc((size_t)jobs, sizeof *th);
    if (!p.res || !p.errors || !p.done || !th) {
        fputs("hp-harness: out of memory\n", stderr);
        free(p.res);
        free(p.errors);
        free(p.done);
        free(th);
        suite_free(&su);
        return HX_RUNTIME;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    /* jansson seeds its hash function lazily; do it before any thread. */
    json_object_seed(0);

    printf("running %zu scenario%s (seed %" PRIu64 ", jobs %d, mode %s)\n", n,
           n == 1 ? "" : "s", o->seed, jobs, o->mode);
    fflush(stdout);
    rpt_term_opts topts = {0, o->verbose, o->timeline};
    {
        /* https://no-color.org: a set, non-empty NO_COLOR turns colour off */
        const char *nc = getenv("NO_COLOR");
        topts.color = o->color == 1 || (o->color == 0 && isatty(STDOUT_FILENO) && !(nc && *nc));
    }
    int started = 0;
    for (int i = 0; i < jobs; i++) {
        if (pthread_create(&th[i], NULL, worker, &p) != 0)
            break;
        started++;
    }
    if (started == 0)
        worker(&p);    /* no thread at all: run here, same results */
    size_t shown = n;  /* -x: the scenarios reported (up to the first failure) */
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&p.mu);
        while (!p.done[i])
            pthread_cond_wait(&p.cv, &p.mu);
        pthread_mutex_unlock(&p.mu);
        rpt_term_line_c(stdout, &p.res[i], p.errors[i], &topts);
        rpt_term_explain(stdout, &p.res[i], p.errors[i], &topts);
        fflush(stdout);
        if (o->fail_fast && (p.errors[i] || (!p.res[i].passed && !p.res[i].skipped))) {
            /* Workers take no new scenario; the ones running finish and are
             * dropped, so the output does not depend on --jobs. */
            __atomic_store_n(&p.next, n, __ATOMIC_RELAXED);
            shown = i + 1;
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (shown < n) {
        printf("stopped at the first failure (--fail-fast): %zu scenario%s not run\n",
               n - shown, n - shown == 1 ? "" : "s");
        for (size_t i = shown; i < n; i++)
            if (p.done[i])
                scn_result_clear(&p.res[i]);
        n = shown;
    }

    rpt_run run = {p.res, p.errors, n,
                   {o->seed, o->mode, HX_VERSION, o->trace_full, o->no_wall}, NULL, NULL};
    /* Rule coverage and the obligations table (when the scenarios live in a
     * checkout with docs/SYNC_POLICY.md): both in every report. */
    {
        char err[256];
        rpt_rules_parse(req_spec, &required, err, sizeof err); /* validated above */
    }
    run.rules = rpt_rules_build(&run, required);
    char root[PATH_MAX], oerr[PATH_MAX + 64];
    if (rpt_oblig_find_root(o->paths.v[0], root, sizeof root) == 0 &&
        (run.obligations = rpt_oblig_scan(root, oerr, sizeof oerr)))
        rpt_oblig_verdicts(run.obligations, root, &run);
    int wrc = hx_write_reports(o->junit, o->json, o->html, o->reports_dir, o->no_reports, &run);
    size_t passed = rpt_count_passed(&run), skipped = rpt_count_skipped(&run),
           partial = rpt_count_partial(&run);
    json_t *unchecked = rpt_rules_unchecked(run.rules);
    if (real || json_array_size(required))
        rpt_rules_print(stdout, run.rules);
    int any_error = 0;
    for (size_t i = 0; i < n; i++)
        any_error |= p.errors[i];
    if (passed + partial == 0 && skipped == n)
        printf("nothing was checked: every scenario was skipped (exit 1)\n");
    rpt_term_summary(stdout, &run);
    fflush(stdout);

    for (size_t i = 0; i < n; i++)
        scn_result_clear(&p.res[i]);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(p.res);
    free(p.errors);
    free(p.done);
    free(th);
    suite_free(&su);
    /* A shard holds only part of the suite: the rules it must show are
     * judged on the whole, by merge-reports. */
    int all_checked = json_array_size(unchecked) == 0 || o->shard_n > 0;
    if (json_array_size(unchecked) && o->shard_n > 0)
        printf("(--shard: required rules are judged on the merged reports by merge-reports)\n");
    json_decref(unchecked);
    json_decref(required);
    json_decref(run.rules);
    json_decref(run.obligations);
    if (any_error || wrc != 0)
        return HX_RUNTIME;
    /* SPEC §7: a run that checked little never exits 0: a required rule
     * left unchecked fails it, and so does a run where every scenario was
     * skipped (a skip is not a pass). */
    if (passed + partial == 0)
        return HX_FAILED;
    return passed + partial + skipped == n && all_checked ? HX_OK : HX_FAILED;
}

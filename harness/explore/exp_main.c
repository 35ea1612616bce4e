/*
 * exp_main.c - the `hp-harness explore` command line (explore.h).
 *
 *   hp-harness explore [--budget 60s] [--schedules N] [--clients 3] [--steps 100]
 *                      [--seed 1] [--jobs 1] [--out explore-out] [--property YAML]
 *                      [--shrink-runs 3000] [--no-shrink] [-v]
 *
 * Schedules 0, 1, 2, ... of --seed run on --jobs threads until the budget
 * (wall time) or --schedules is spent, or one fails.  The failing schedule
 * with the lowest number is shrunk, written to --out as a scenario, and run
 * once more from its text to show it fails the same way.
 * Exit: 0 nothing failed, 1 a failure was found (and written), 2 usage,
 * 3 internal error (a generated schedule did not load, the written file did
 * not reproduce, the output could not be written).
 */
#define _GNU_SOURCE
#include "explore.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#include "scn_internal.h"

typedef struct opts {
    double budget_ms;
    uint64_t max_schedules;     /* 0 = no limit */
    int clients, steps, jobs, shrink_runs, shrink, verbose;
    uint64_t seed;
    const char *out, *property;
} opts;

typedef struct shared {
    const opts *o;
    double deadline;
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t done, messages;
    pthread_mutex_t mu;
    uint64_t fail_index;        /* UINT64_MAX = none */
    exp_outcome fail;
    int internal;               /* a generated schedule did not load */
    char *internal_msg;
} shared;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
    fputs("usage: hp-harness explore [options]   random schedules in the simulator, shrunk on failure\n"
          "  --budget DUR       wall time to explore (default 60s; e.g. 10s, 2m)\n"
          "  --schedules N      stop after N schedules (default: no limit, the budget decides)\n"
          "  --clients N        clients per schedule, 1..8 (default 3)\n"
          "  --steps N          random steps per schedule, 1..10000 (default 100)\n"
          "  --seed S           the seed of schedule numbering (default 1)\n"
          "  --jobs N           threads, 1..64 (default 1)\n"
          "  --out DIR          where a shrunk failing scenario is written (default explore-out)\n"
          "  --property YAML    an expectation that must hold after every schedule, e.g.\n"
          "                     '{server: {requests: {status: 409, count: 0}}}'\n"
          "  --shrink-runs N    most runs the shrinker may use (default 3000)\n"
          "  --no-shrink        write the failing schedule as found\n"
          "  -v                 progress of the shrinker on stderr\n"
          "exit status: 0 nothing failed, 1 a failure was found and written, 2 usage,\n"
          "             3 internal error\n"
          "docs/SCENARIOS.md, chapter \"explore\", has the details.\n",
          f);
}

static int parse_dur(const char *s, double *ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    if (!strcmp(end, "ms"))
        *ms = v;
    else if (!strcmp(end, "s") || !*end)
        *ms = v * 1000;
    else if (!strcmp(end, "m"))
        *ms = v * 60000;
    else if (!strcmp(end, "h"))
        *ms = v * 3600000;
    else
        return -1;
    return *ms <= 7 * 24 * 3600e3 ? 0 : -1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void *worker(void *ud)
{
    shared *sh = ud;
    const opts *o = sh->o;
    for (;;) {
        uint64_t i = atomic_fetch_add(&sh->next, 1);
        if ((o->max_schedules && i >= o->max_schedules) || now_ms() >= sh->deadline)
            break;
        pthread_mutex_lock(&sh->mu);
        int stop = sh->internal || sh->fail_index < i;
        pthread_mutex_unlock(&sh->mu);
        if (stop)
            break;
        exp_sched s;
        exp_generate(&s, o->seed, i, o->clients, o->steps);
        exp_outcome out;
        int rc = exp_run_once(&s, o->property, &out);
        atomic_fetch_add(&sh->done, 1);
        atomic_fetch_add(&sh->messages, out.messages);
        pthread_mutex_lock(&sh->mu);
        if (rc != 0) {
            if (!sh->internal) {
                sh->internal = 1;
                sh->internal_msg = scn_asprintf("schedule %" PRIu64 ": %s", i, out.message);
            }
        } else if (out.failed && i < sh->fail_index) {
            exp_outcome_clear(&sh->fail);
            sh->fail = out;
            memset(&out, 0, sizeof out);
            sh->fail_index = i;
        }
        pthread_mutex_unlock(&sh->mu);
        exp_outcome_clear(&out);
        exp_sched_free(&s);
    }
    return NULL;
}

/* Run the written text as `hp-harness run` would; the failure's signature
 * and message, or NULL when it passed. */
static int verify(const char *path, const char *text, char **msg)
{
    scn_scenario *sc = NULL;
    scn_diags d = {0};
    *msg = NULL;
    if (scn_load_string(path, text, strlen(text), &sc, &d) != 0) {
        *msg = scn_asprintf("does not load: %s", d.n ? d.v[0].msg : "?");
        scn_diags_free(&d);
        return -1;
    }
    scn_run_opts ro = {0};
    ro.seed = 1;
    ro.mode = "sim";
    scn_result r;
    int rc = scn_run(sc, &ro, &r);
    int failed = rc != 0 || !r.passed;
    if (failed)
        *msg = scn_asprintf("%s: %s", r.failure_loc ? r.failure_loc : path,
                            r.failure ? r.failure : "?");
    scn_result_clear(&r);
    scn_free(sc);
    return failed;
}

int exp_main(int argc, char **argv)
{
    opts o = {60000, 0, 3, 100, 1, 3000, 1, 0, 1, "explore-out", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        int takes = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v")) {
            o.verbose = 1;
            takes = 0;
        } else if (!strcmp(a, "--no-shrink")) {
            o.shrink = 0;
            takes = 0;
        } else if (!v) {
            fprintf(stderr, "hp-harness explore: %s needs a value (or unknown option)\n", a);
            return 2;
        } else if (!strcmp(a, "--budget")) {
            if (parse_dur(v, &o.budget_ms)) {
                fprintf(stderr, "hp-harness explore: --budget wants a duration up to 7d such as "
                                "60s or 2m, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--schedules")) {
            if (parse_int(v, 1, 100000000, &n))
                goto bad;
            o.max_schedules = (uint64_t)n;
        } else if (!strcmp(a, "--clients")) {
            if (parse_int(v, 1, EXP_MAX_CLIENTS, &n))
                goto bad;
            o.clients = (int)n;
        } else if (!strcmp(a, "--steps")) {
            if (parse_int(v, 1, EXP_MAX_STEPS, &n))
                goto bad;
            o.steps = (int)n;
        } else if (!strcmp(a, "--jobs")) {
            if (parse_int(v, 1, 64, &n))
                goto bad;
            o.jobs = (int)n;
        } else if (!strcmp(a, "--shrink-runs")) {
            if (parse_int(v, 0, 1000000, &n))
                goto bad;
            o.shrink_runs = (int)n;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                goto bad;
            o.seed = s;
        } else if (!strcmp(a, "--out")) {
            o.out = v;
        } else if (!strcmp(a, "--property")) {
            o.property = v;
        } else {
            fprintf(stderr, "hp-harness explore: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        i += takes;
        continue;
    bad:
        fprintf(stderr, "hp-harness explore: bad value '%s' for %s (see --help for the ranges)\n", v,
                a);
        return 2;
    }

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.o = &o;
    sh.fail_index = UINT64_MAX;
    pthread_mutex_init(&sh.mu, NULL);
    double t0 = now_ms();
    sh.deadline = t0 + o.budget_ms;
    printf("explore: seed %" PRIu64 ", %d clients, %d steps, %d job%s, budget %.0f s%s\n", o.seed,
           o.clients, o.steps, o.jobs, o.jobs == 1 ? "" : "s", o.budget_ms / 1000,
           o.property ? ", with a property" : "");
    fflush(stdout);
    pthread_t th[64];
    for (int j = 0; j < o.jobs; j++)
        pthread_create(&th[j], NULL, worker, &sh);
    for (int j = 0; j < o.jobs; j++)
        pthread_join(th[j], NULL);
    double el = now_ms() - t0;
    uint64_t done = atomic_load(&sh.done);
    printf("explore: %" PRIu64 " schedules in %.1f s: %.1f schedules/s, %.0f simulated messages/s\n",
           done, el / 1000, el > 0 ? done / (el / 1000) : 0.0,
           el > 0 ? (double)atomic_load(&sh.messages) / (el / 1000) : 0.0);
    if (sh.internal) {
        fprintf(stderr, "hp-harness explore: internal error: %s\n", sh.internal_msg);
        free(sh.internal_msg);
        return 3;
    }
    if (sh.fail_index == UINT64_MAX) {
        printf("explore: no failure\n");
        return 0;
    }
    printf("explore: schedule %" PRIu64 " failed: %s\n  %s\n", sh.fail_index, sh.fail.signature,
           sh.fail.message);
    exp_sched s;
    exp_generate(&s, o.seed, sh.fail_index, o.clients, o.steps);
    int runs = 0;
    if (o.shrink) {
        double s0 = now_ms();
        runs = exp_shrink(&s, o.property, sh.fail.signature, o.shrink_runs, o.verbose);
        printf("explore: shrunk %zu -> %zu steps, %d clients, in %d runs (%.1f s)\n", s.orig_n,
               s.n, s.nclients, runs, (now_ms() - s0) / 1000);
    }
    /* The final run: its failure (and, for convergence, its expectation). */
    exp_outcome fin;
    exp_run_once(&s, o.property, &fin);
    if (fin.failed != 1) {
        fprintf(stderr, "hp-harness explore: internal error: the shrunk schedule passes\n");
        return 3;
    }
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "hp-harness explore: cannot create %s: %s\n", o.out, strerror(errno));
        return 3;
    }
    for (char *p = fin.message; p && *p; p++)
        if (*p == '\n')
            *p = ' '; /* one comment line */
    char *path = scn_asprintf("%s/explore-%" PRIu64 "-%" PRIu64 ".yaml", o.out, o.seed,
                              sh.fail_index);
    char *header = scn_asprintf(
        "# Found by: hp-harness explore --seed %" PRIu64 " --clients %d --steps %d%s\n"
        "#   (schedule %" PRIu64 " of seed %" PRIu64 "), shrunk from %zu to %zu steps in %d runs.\n"
        "# Failure (%s):\n#   %s\n"
        "# Reproduce: hp-harness run THIS_FILE   (seed 1, the default)\n",
        o.seed, o.clients, o.steps, o.property ? " --property ..." : "", sh.fail_index, o.seed,
        s.orig_n, s.n, runs, fin.signature, fin.message);
    char *prop = o.property ? scn_asprintf("  # the property\n  - expect: %s\n", o.property) : NULL;
    char *extra = scn_asprintf("%s%s", fin.expect_yaml ? fin.expect_yaml : "", prop ? prop : "");
    char *text = exp_render(&s, header, extra);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "hp-harness explore: cannot write %s: %s\n", path, strerror(errno));
        return 3;
    }
    printf("explore: wrote %s\n", path);
    char *why = NULL;
    int v = verify(path, text, &why);
    int rc = 1;
    if (v == 1) {
        printf("explore: verified: hp-harness run %s fails:\n  %s\n", path, why);
    } else {
        fprintf(stderr, "hp-harness explore: internal error: %s %s\n", path,
                v == 0 ? "passes when run from the file" : why);
        rc = 3;
    }
    free(why);
    free(text);
    free(extra);
    free(prop);
    free(header);
    free(path);
    exp_outcome_clear(&fin);
    exp_outcome_clear(&sh.fail);
    exp_sched_free(&s);
    return rc;
}

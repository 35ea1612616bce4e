/*
 * hp_bench.c - how fast the simulator runs the suite.
 *
 *   hp-bench [--runs N] [--seed S] [--skip ID]... [PATH...]   (default: 5 runs of scenarios/)
 *   hp-bench --explore N [--clients C] [--steps K] [--seed S]
 *
 * Loads every scenario once, then runs the whole suite N times on one
 * thread and prints the wall time per run and the simulated messages per
 * second (scn_result.messages over wall time), how much virtual time one
 * wall second covers, the slowest scenarios (median of their runs) and the
 * process's peak resident memory.  --skip leaves a scenario out by id (e.g.
 * the 20 MiB cache scenario, whose megabyte payloads swamp the per-message
 * figure).  --explore runs N schedules of `hp-harness explore` (schedule
 * 0..N-1 of the seed, default 3 clients and 100 steps) on one thread and
 * prints schedules per second.  Figures, not assertions: it always
 * exits 0 once the suite ran (failed scenarios included), 2 on bad input.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#ifndef HP_BENCH_NO_EXPLORE /* the fake engine of tests/reports has no explore */
#include "explore.h"
#include "hp_alloc.h"      /* nor protocol/ */
#endif

typedef struct list {
    char **v;
    size_t n, cap;
} list;

static void push(list *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) {
            perror("hp-bench");
            exit(3);
        }
    }
    l->v[l->n++] = s;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_yaml(const char *n)
{
    size_t k = strlen(n);
    return (k > 5 && !strcmp(n + k - 5, ".yaml")) || (k > 4 && !strcmp(n + k - 4, ".yml"));
}

/* The same discovery as hp-harness: recursive, sorted, hidden entries skipped. */
static void scan(const char *path, list *out, int depth)
{
    struct stat st;
    if (depth > 32 || stat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        if (depth == 0 || is_yaml(path))
            push(out, strdup(path));
        return;
    }
    DIR *d = opendir(path);
    if (!d)
        return;
    list names = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            push(&names, strdup(e->d_name));
    closedir(d);
    if (names.n)
        qsort(names.v, names.n, sizeof *names.v, cmp);
    size_t len = strlen(path);
    for (size_t i = 0; i < names.n; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s%s%s", path, len && path[len - 1] == '/' ? "" : "/", names.v[i]) > 0) {
            scan(p, out, depth + 1);
            free(p);
        }
        free(names.v[i]);
    }
    free(names.v);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#ifndef HP_BENCH_NO_EXPLORE
/* N explore schedules on this thread: what `hp-harness explore` does per
 * schedule (render, load, run, probe), without the shrinking. */
static int bench_explore(int n, uint64_t seed, int clients, int steps)
{
    printf("hp-bench: explore, %d schedules of seed %" PRIu64 ", %d clients, %d steps\n", n, seed,
           clients, steps);
    uint64_t messages = 0;
    int failed = 0;
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        exp_sched s;
        exp_generate(&s, seed, (uint64_t)i, clients, steps);
        exp_outcome o;
        if (exp_run_once(&s, NULL, &o) != 0 || o.failed)
            failed++;
        messages += o.messages;
        exp_outcome_clear(&o);
        exp_sched_free(&s);
    }
    double el = now_ms() - t0;
    printf("wall %.1f ms: %.1f schedules/s, %.2f ms per schedule, %" PRIu64
           " simulated messages (%.0f per second)\n",
           el, n / (el / 1000), el / n, messages, (double)messages / (el / 1000));
    if (failed)
        printf("note: %d schedule%s failed (figures still valid)\n", failed, failed == 1 ? "" : "s");
    return 0;
}
#else
#define EXP_MAX_CLIENTS 8
#define EXP_MAX_STEPS 10000
static int bench_explore(int n, uint64_t seed, int clients, int steps)
{
    (void)n, (void)seed, (void)clients, (void)steps;
    fprintf(stderr, "hp-bench: built without explore\n");
    return 2;
}
#endif

int main(int argc, char **argv)
{
#ifndef HP_BENCH_NO_EXPLORE
    /* Before any thread or SQLite call (hp_alloc.h). */
    if (hp_alloc_install() < 0)
        return 2;
#endif
    int runs = 5;
    uint64_t seed = 1;
    list paths = {0}, files = {0}, skips = {0};
    int explore_n = 0, clients = 3, steps = 100, each = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--each")) {
            each = 1;
        } else if (!strcmp(argv[i], "--skip") && i + 1 < argc) {
            push(&skips, strdup(argv[++i]));
        } else if (!strcmp(argv[i], "--explore") && i + 1 < argc) {
            explore_n = atoi(argv[++i]);
            if (explore_n < 1 || explore_n > 1000000) {
                fprintf(stderr, "hp-bench: --explore wants 1..1000000\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
            clients = atoi(argv[++i]);
            if (clients < 1 || clients > EXP_MAX_CLIENTS) {
                fprintf(stderr, "hp-bench: --clients wants 1..%d\n", EXP_MAX_CLIENTS);
                return 2;
            }
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            steps = atoi(argv[++i]);
            if (steps < 1 || steps > EXP_MAX_STEPS) {
                fprintf(stderr, "hp-bench: --steps wants 1..%d\n", EXP_MAX_STEPS);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: hp-bench [--runs N] [--seed S] [--skip ID]... [--each] [PATH...]\n"
                            "       hp-bench --explore N [--clients C] [--steps K] [--seed S]\n");
            return 2;
        } else {
            push(&paths, strdup(argv[i]));
        }
    }
    if (runs < 1 || runs > 100000) {
        fprintf(stderr, "hp-bench: --runs wants 1..100000\n");
        return 2;
    }
    if (explore_n)
        return bench_explore(explore_n, seed, clients, steps);
    if (paths.n == 0)
        push(&paths, strdup("scenarios/"));
    for (size_t i = 0; i < paths.n; i++)
        scan(paths.v[i], &files, 0);

    scn_scenario **s = calloc(files.n ? files.n : 1, sizeof *s);
    size_t n = 0;
    scn_diags diags = {0};
    for (size_t i = 0; i < files.n; i++)
        if (scn_load_file(files.v[i], &s[n], &diags) == 0) {
            int skip = 0;
            for (size_t k = 0; k < skips.n; k++)
                skip |= !strcmp(scn_id(s[n]), skips.v[k]);
            if (skip)
                scn_free(s[n]);
            else
                n++;
        }
    if (diags.n || n == 0) {
        scn_diags_print(&diags, stderr);
        fprintf(stderr, "hp-bench: %s\n", n ? "invalid scenarios (run hp-harness lint)"
                                             : "no scenario found");
        return 2;
    }

    printf("hp-bench: %zu scenarios, %d runs, seed %" PRIu64 "%s\n", n, runs, seed,
           skips.n ? " (some skipped with --skip)" : "");
    double *wall = calloc((size_t)runs, sizeof *wall);
    /* per[i * runs + r]: scenario i's wall time in run r */
    double *per = calloc(n * (size_t)runs, sizeof *per);
    if (!wall || !per) {
        perror("hp-bench");
        return 3;
    }
    uint64_t messages = 0;
    int64_t sim = 0;
    size_t failed = 0;
    scn_run_opts opts = {.seed = seed, .mode = "sim"};
    for (int r = 0; r < runs; r++) {
        uint64_t m = 0;
        int64_t t = 0;
        size_t f = 0;
        double t0 = now_ms();
        for (size_t i = 0; i < n; i++) {
            scn_result res;
            memset(&res, 0, sizeof res);
            double ts = now_ms();
            if (scn_run(s[i], &opts, &res) != 0 || !res.passed)
                f++;
            per[i * (size_t)runs + (size_t)r] = now_ms() - ts;
            m += res.messages;
            t += res.sim_ms;
            if (each && r == runs - 1)
                printf("scenario %-48s %8.3f ms %6" PRIu64 " messages\n", scn_id(s[i]),
                       per[i * (size_t)runs + (size_t)r], res.messages);
            scn_result_clear(&res);
        }
        wall[r] = now_ms() - t0;
        printf("run %d: wall %.3f ms, %" PRIu64 " simulated messages, %.1f s virtual time%s\n",
               r + 1, wall[r], m, (double)t / 1000.0, f ? " (some scenarios failed)" : "");
        messages = m;
        sim = t;
        failed = f;
    }
    qsort(wall, (size_t)runs, sizeof *wall, cmp_d);
    double med = wall[runs / 2];
    printf("wall per suite run: min %.3f ms, median %.3f ms, max %.3f ms\n", wall[0], med,
           wall[runs - 1]);
    if (med > 0) {
        printf("simulated messages per second: %.0f  (%" PRIu64 " per run / median wall)\n",
               (double)messages / (med / 1000.0), messages);
        printf("virtual time per wall second: %.0f s  (%.1f s virtual per run)\n",
               ((double)sim / 1000.0) / (med / 1000.0), (double)sim / 1000.0);
    }
    /* The slowest scenarios, by the median of their own runs: where a
     * speed-up would show. */
    size_t top[3] = {0};
    double topv[3] = {-1, -1, -1};
    for (size_t i = 0; i < n; i++) {
        qsort(per + i * (size_t)runs, (size_t)runs, sizeof *per, cmp_d);
        double v = per[i * (size_t)runs + (size_t)runs / 2];
        for (int k = 0; k < 3; k++) {
            if (v > topv[k]) {
                for (int j = 2; j > k; j--) {
                    topv[j] = topv[j - 1];
                    top[j] = top[j - 1];
                }
                topv[k] = v;
                top[k] = i;
                break;
            }
        }
    }
    for (int k = 0; k < 3 && topv[k] >= 0; k++)
        printf("slowest %d: %s  %.3f ms (median)\n", k + 1, scn_id(s[top[k]]), topv[k]);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        printf("peak resident memory: %.1f MiB (all scenarios loaded, %d runs)\n",
               (double)ru.ru_maxrss / 1024.0, runs);
    if (failed)
        printf("note: %zu scenario%s failed in the last run (figures still valid)\n", failed,
               failed == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        scn_free(s[i]);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    for (size_t i = 0; i < paths.n; i++)
        free(paths.v[i]);
    scn_diags_free(&diags);
    free(files.v);
    for (size_t i = 0; i < skips.n; i++)
        free(skips.v[i]);
    free(skips.v);
    free(paths.v);
    free(s);
    free(wall);
    free(per);
    return 0;
}

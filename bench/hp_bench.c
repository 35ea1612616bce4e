/*
 * hp_bench.c - how fast the simulator runs the suite.
 *
 *   hp-bench [--runs N] [--seed S] [PATH...]      (default: 5 runs of scenarios/)
 *
 * Loads every scenario once, then runs the whole suite N times on one
 * thread and prints the wall time per run and the simulated messages per
 * second (scn_result.messages over wall time), how much virtual time one
 * wall second covers, the slowest scenarios (median of their runs) and the
 * process's peak resident memory.  Figures, not assertions: it always
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

int main(int argc, char **argv)
{
    int runs = 5;
    uint64_t seed = 1;
    list paths = {0}, files = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: hp-bench [--runs N] [--seed S] [PATH...]\n");
            return 2;
        } else {
            push(&paths, strdup(argv[i]));
        }
    }
    if (runs < 1 || runs > 100000) {
        fprintf(stderr, "hp-bench: --runs wants 1..100000\n");
        return 2;
    }
    if (paths.n == 0)
        push(&paths, strdup("scenarios/"));
    for (size_t i = 0; i < paths.n; i++)
        scan(paths.v[i], &files, 0);

    scn_scenario **s = calloc(files.n ? files.n : 1, sizeof *s);
    size_t n = 0;
    scn_diags diags = {0};
    for (size_t i = 0; i < files.n; i++)
        if (scn_load_file(files.v[i], &s[n], &diags) == 0)
            n++;
    if (diags.n || n == 0) {
        scn_diags_print(&diags, stderr);
        fprintf(stderr, "hp-bench: %s\n", n ? "invalid scenarios (run hp-harness lint)"
                                             : "no scenario found");
        return 2;
    }

    printf("hp-bench: %zu scenarios, %d runs, seed %" PRIu64 "\n", n, runs, seed);
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
    free(paths.v);
    free(s);
    free(wall);
    free(per);
    return 0;
}

/*
 * hx_main.c - the hp-harness program: command line, scenario discovery,
 * filters, parallel runs (--jobs) and the reports.  SPEC §5 (exit codes)
 * and §6 (command line).
 *
 *   hp-harness run [PATH...] [--mode sim|real] [--filter GLOB] [--tag T] [--rule R]
 *                  [--seed N] [--jobs N] [--junit FILE] [--json FILE] [--html FILE]
 *                  [--reports-dir DIR] [--no-reports] [--trace compact|full] [--no-wall-times]
 *                  [-v] [-x] [--timeline N] [--color WHEN] [--shard K/N [--shard-durations F]]
 *                  --mode real: [--server URL (--jwt-secret S | --jwt-secret-file F)]
 *                               [--time-scale F] [--bin-dir DIR] [--max-wall S]
 *                               (real.h, docs/REAL_MODE.md)
 *   hp-harness lint [PATH...]
 *   hp-harness list [PATH...] [filters] [--json]
 *   hp-harness merge-reports SHARD.json... [--junit F] [--json F] [--html F]  (hx_shard.c)
 *
 * It knows the engine only through harness.h and the reports only through
 * rpt.h, so tests/reports links it against a fake engine.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "harness.h"
#include "real.h"

/* Real mode lives in the engine library (real_*.c).  hp-harness is built
 * with the cores' include directories; the front-end tests link this file
 * against a fake engine without them, and there --mode real says it is not
 * built in (the linker would otherwise miss scn_run_real). */
#if defined(__has_include)
#if __has_include("cli_core.h")
#define HX_HAVE_REAL 1
#endif
#endif
#ifndef HX_HAVE_REAL
#define HX_HAVE_REAL 0
#endif
/* The simulator's block cache (protocol/hp_alloc.h); the fake-engine
 * build has no protocol/ and keeps the system allocator. */
#if defined(__has_include)
#if __has_include("hp_alloc.h")
#include "hp_alloc.h"
#define HX_HAVE_ALLOC 1
#endif
#endif
#include "rpt.h"
#include "hx_int.h"

#define HX_MAX_DEPTH 32     /* directory recursion: guards symlink loops */

/* ---- growable string list ------------------------------------------- */


int strv_push(strv *s, const char *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(x)))
        return -1;
    s->n++;
    return 0;
}

void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

int strv_has(const strv *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return 1;
    return 0;
}

/* ---- options ---------------------------------------------------------- */


static void usage(FILE *f)
{
    fputs("usage: hp-harness run [PATH...] [options]   run scenarios (default PATH: scenarios/)\n"
          "       hp-harness lint [PATH...] [--mode real [target options]]\n"
          "                                             validate only; --mode real also warns,\n"
          "                                             per line, what real mode does differently\n"
          "       hp-harness list [PATH...] [--json]    ids, rules and tags\n"
          "       hp-harness trace [--update] [--json]  obligations -> checks (docs/SYNC_POLICY.md)\n"
          "       hp-harness explore [options]          random schedules, shrunk on failure (explore --help)\n"
          "       hp-harness merge-reports SHARD.json... [--junit F] [--json F] [--html F]\n"
          "                  [--reports-dir DIR] [--no-reports]  one report from --shard runs\n"
          "       hp-harness --help | --version\n"
          "\n"
          "PATH is a scenario file or a directory searched recursively for *.yaml and *.yml\n"
          "(sorted by name).\n"
          "\n"
          "selection (run, list; repeat an option to accept any of its values, different\n"
          "options must all match):\n"
          "  --filter GLOB      scenario id matches the shell glob (e.g. 'queue/*')\n"
          "  --tag T            scenario has tag T\n"
          "  --rule R           scenario covers rule R (e.g. Q-4)\n"
          "run options:\n"
          "  --mode sim|real    sim (default): the deterministic simulator; real: the real\n"
          "                     hp-fake-server / hp-fake-client programs (docs/REAL_MODE.md)\n"
          "real mode:\n"
          "  --server URL       run against this server (http[s]://HOST:PORT) instead of\n"
          "                     starting our own hp-fake-server on a free loopback port\n"
          "  --ca-file PEM      with an https:// --server: trust these CAs (default: the\n"
          "                     system's); certificate and host name are always checked\n"
          "  --jwt-secret S     HS256 secret to mint tokens (required with --server)\n"
          "  --jwt-secret-file F  the same, read from F\n"
          "  --time-scale F     wall seconds per scenario second (default 0.01: 31m = 18.6 s)\n"
          "  --bin-dir DIR      build dir holding fake_server/ and fake_client/ (default:\n"
          "                     next to hp-harness)\n"
          "  --max-wall S       skip scenarios whose waits take over S real seconds (120)\n"
          "  --seed N           PRNG seed, 0..9223372036854775807 (default 1); same seed, same JSON\n"
          "  --jobs N           run N scenarios in parallel (0: one per CPU; default 1);\n"
          "                     output order does not depend on it\n"
          "  --junit FILE       JUnit XML report     (default reports/junit.xml)\n"
          "  --json FILE        JSON report          (default reports/report.json)\n"
          "  --html FILE        HTML report          (default reports/report.html)\n"
          "  --reports-dir DIR  directory of the default report paths (default reports)\n"
          "  --no-reports       write only the reports named by --junit/--json/--html\n"
          "  --trace compact|full  how much of each trace JSON/HTML keep (default compact:\n"
          "                     a passed scenario's steps, notifications and warnings; a\n"
          "                     failed one's requests and frames too, and the last records\n"
          "                     before its failure; full: every record)\n"
          "  --no-wall-times    no wall-clock value in JSON/HTML (same seed, same bytes)\n"
          "terminal (run):\n"
          "  -v, --verbose      the timeline of passed scenarios too\n"
          "  -x, --fail-fast    stop after the first failed scenario (the rest: not run)\n"
          "  --timeline N       records shown before a failure (default 20)\n"
          "  --color WHEN       auto (default: on a TTY unless NO_COLOR is set), always, never\n"
          "sharding (run, for a CI matrix):\n"
          "  --shard K/N        run only shard K of N (1 <= K <= N): a deterministic split\n"
          "  --shard-durations REPORT  balance the shards by the wall times of a previous\n"
          "                     JSON report (longest first onto the least loaded shard)\n"
          "\n"
          "rule coverage (run):\n"
          "  --require-rules R  all, server, client, none or a list (WS-4,Q-7): a rule\n"
          "                     without one passing observable check fails the run\n"
          "                     (default: server with --server, client with --client-cmd,\n"
          "                     else none)\n"
          "foreign targets (--mode real):\n"
          "  --server-reset CMD run CMD (sh -c) before each scenario, e.g. to wipe a\n"
          "                     staging server; a non-zero exit is a runtime error\n"
          "  --token-cmd T      mint tokens with this command instead of HS256 from the\n"
          "                     secret: {sub} {hh} {dev} {ttl_s} are replaced; the token\n"
          "                     is its first line of output\n"
          "  --no-proxy         no hp-fault-proxy between clients and server: link faults\n"
          "                     are skipped and `offline` is the app's own close (the\n"
          "                     server sees its FIN); default: the proxy plays them\n"
          "  --client-cmd T     start T (sh -c) instead of hp-fake-client for every\n"
          "                     scenario client: {server} {token} {token_file} {db}\n"
          "                     {key_file} {name} {time_scale} {policy}\n"
          "                     (docs/CLIENT_DRIVER.md, the contract)\n"
          "exit status: 0 all passed, 1 a scenario failed, 2 invalid scenario or usage,\n"
          "3 runtime error.  The last line of `run` is \"N passed, N failed\" (real mode:\n"
          "\"N passed, N failed, N skipped\"; a skipped scenario is not a failure).\n",
          f);
}

int usage_error(const char *fmt, const char *arg)
{
    fputs("hp-harness: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'hp-harness --help'.\n", stderr);
    return HX_INVALID;
}

/* Strict unsigned decimal: no sign, no spaces, no trailing garbage. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

enum { OPT_FILTER = 256, OPT_TAG, OPT_RULE, OPT_MODE, OPT_SEED, OPT_JOBS, OPT_JUNIT, OPT_JSON,
       OPT_HTML, OPT_RDIR, OPT_NOREP, OPT_HELP, OPT_VERSION, OPT_SERVER, OPT_SECRET,
       OPT_SECRET_FILE, OPT_SCALE, OPT_BINDIR, OPT_MAXWALL, OPT_CAFILE, OPT_REQUIRE,
       OPT_RESET, OPT_TOKENCMD, OPT_CLIENTCMD, OPT_NOPROXY, OPT_VERBOSE, OPT_FAILFAST,
       OPT_COLOR, OPT_TIMELINE, OPT_TRACE, OPT_NOWALL, OPT_SHARD, OPT_SHARD_DUR };

/* Parses argv after the command word.  Returns -1 when parsing went well
 * (go on), else the exit code to return (help printed: 0; error: 2). */
static int parse_opts(int argc, char **argv, hx_opts *o)
{
    struct option longs[] = {
        {"filter", required_argument, NULL, OPT_FILTER},
        {"tag", required_argument, NULL, OPT_TAG},
        {"rule", required_argument, NULL, OPT_RULE},
        {"mode", required_argument, NULL, OPT_MODE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"jobs", required_argument, NULL, OPT_JOBS},
        {"junit", required_argument, NULL, OPT_JUNIT},
        {"json", required_argument, NULL, OPT_JSON},
        {"html", required_argument, NULL, OPT_HTML},
        {"reports-dir", required_argument, NULL, OPT_RDIR},
        {"no-reports", no_argument, NULL, OPT_NOREP},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"server", required_argument, NULL, OPT_SERVER},
        {"jwt-secret", required_argument, NULL, OPT_SECRET},
        {"jwt-secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"time-scale", required_argument, NULL, OPT_SCALE},
        {"bin-dir", required_argument, NULL, OPT_BINDIR},
        {"max-wall", required_argument, NULL, OPT_MAXWALL},
        {"ca-file", required_argument, NULL, OPT_CAFILE},
        {"require-rules", required_argument, NULL, OPT_REQUIRE},
        {"server-reset", required_argument, NULL, OPT_RESET},
        {"token-cmd", required_argument, NULL, OPT_TOKENCMD},
        {"client-cmd", required_argument, NULL, OPT_CLIENTCMD},
        {"no-proxy", no_argument, NULL, OPT_NOPROXY},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"fail-fast", no_argument, NULL, OPT_FAILFAST},
        {"color", required_argument, NULL, OPT_COLOR},
        {"timeline", required_argument, NULL, OPT_TIMELINE},
        {"trace", required_argument, NULL, OPT_TRACE},
        {"no-wall-times", no_argument, NULL, OPT_NOWALL},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"shard-durations", required_argument, NULL, OPT_SHARD_DUR},
        {NULL, 0, NULL, 0}};
    int is_run = strcmp(o->cmd, "run") == 0, is_list = strcmp(o->cmd, "list") == 0;
    /* lint --mode real takes the real-mode target options (real_lint.c). */
    int is_lint = strcmp(o->cmd, "lint") == 0;
    /* run --json FILE writes the report; list --json is a switch (the list
     * as JSON on stdout). */
    for (struct option *l = longs; l->name; l++)
        if (l->val == OPT_JSON && !is_run)
            l->has_arg = no_argument;
    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hj:vx", longs, NULL);
        if (c == -1)
            break;
        const char *name = NULL;    /* an option this command does not take */
        switch (c) {
        case OPT_FILTER:
        case OPT_TAG:
        case OPT_RULE:
            if (!is_run && !is_list) {
                name = c == OPT_FILTER ? "--filter" : c == OPT_TAG ? "--tag" : "--rule";
                break;
            }
            if (!*optarg)
                return usage_error("empty value for %s", argv[optind - 1]);
            if (strv_push(c == OPT_FILTER ? &o->globs : c == OPT_TAG ? &o->tags : &o->rules,
                          optarg) != 0)
                return usage_error("%s", "out of memory");
            break;
        case OPT_MODE:
            if (!is_run && !is_lint) {
                name = "--mode";
                break;
            }
            if (strcmp(optarg, "sim") != 0 && strcmp(optarg, "real") != 0)
                return usage_error("--mode must be sim or real, not '%s'", optarg);
            o->mode = optarg;
            break;
        case OPT_SEED: {
            uint64_t v;
            if (!is_run) {
                name = "--seed";
                break;
            }
            if (parse_u64(optarg, INT64_MAX, &v) != 0)
                return usage_error("--seed wants an integer 0..9223372036854775807, not '%s'",
                                   optarg);
            o->seed = v;
            break;
        }
        case 'j':
        case OPT_JOBS: {
            uint64_t v;
            if (!is_run) {
                name = "--jobs";
                break;
            }
            if (parse_u64(optarg, HX_MAX_JOBS, &v) != 0)
                return usage_error("--jobs wants an integer 0..256, not '%s'", optarg);
            o->jobs = (int)v;
            break;
        }
        case OPT_JSON:
            /* run: --json FILE (the report); list: --json (machine-readable list). */
            if (is_list) {
                o->list_json = 1;
                break;
            }
            if (!is_run) {
                name = "--json";
                break;
            }
            if (!*optarg)
                return usage_error("empty path for %s", "--json");
            o->json = optarg;
            break;
        case OPT_JUNIT:
        case OPT_HTML:
        case OPT_RDIR:
            if (!is_run) {
                name = c == OPT_JUNIT ? "--junit" : c == OPT_HTML ? "--html" : "--reports-dir";
                break;
            }
            if (!*optarg)
                return usage_error("empty path for %s", argv[optind - 1]);
            if (c == OPT_JUNIT)
                o->junit = optarg;
            else if (c == OPT_HTML)
                o->html = optarg;
            else
                o->reports_dir = optarg;
            break;
        case OPT_NOPROXY:
            if (!is_run && !is_lint) {
                name = "--no-proxy";
                break;
            }
            o->no_proxy = 1;
            break;
        case OPT_NOREP:
            if (!is_run) {
                name = "--no-reports";
                break;
            }
            o->no_reports = 1;
            break;
        case OPT_SERVER:
        case OPT_SECRET:
        case OPT_SECRET_FILE:
        case OPT_SCALE:
        case OPT_BINDIR:
        case OPT_MAXWALL:
        case OPT_CAFILE:
        case OPT_REQUIRE:
        case OPT_RESET:
        case OPT_TOKENCMD:
        case OPT_CLIENTCMD:
            if (!is_run && !is_lint) {
                name = argv[optind - 1];
                break;
            }
            if (!*optarg)
                return usage_error("empty value for %s", argv[optind - 1]);
            if (c == OPT_SERVER) {
                size_t skip = !strncmp(optarg, "http://", 7)    ? 7
                              : !strncmp(optarg, "https://", 8) ? 8
                                                                : 0;
                const char *colon = skip ? strchr(optarg + skip, ':') : NULL;
                if (!colon || colon == optarg + skip || atoi(colon + 1) <= 0 ||
                    atoi(colon + 1) > 65535)
                    return usage_error("--server wants http://HOST:PORT or https://HOST:PORT, not '%s'", optarg);
                o->server_url = optarg;
            } else if (c == OPT_SECRET) {
                o->jwt_secret = optarg;
            } else if (c == OPT_SECRET_FILE) {
                o->jwt_secret_file = optarg;
            } else if (c == OPT_BINDIR) {
                o->bin_dir = optarg;
            } else if (c == OPT_CAFILE) {
                o->ca_file = optarg;
            } else if (c == OPT_REQUIRE) {
                o->require_rules = optarg;
            } else if (c == OPT_RESET) {
                o->server_reset = optarg;
            } else if (c == OPT_TOKENCMD) {
                o->token_cmd = optarg;
            } else if (c == OPT_CLIENTCMD) {
                o->client_cmd = optarg;
            } else {
                char *end = NULL;
                errno = 0;
                double f = strtod(optarg, &end);
                if (errno || *end || !(f > 0) || f > 1e6 ||
                    /* HP_TIME_SCALE_MIN..MAX (hp_policy.h; the front end
                     * is also linked without protocol/ by tests/reports) */
                    (c == OPT_SCALE && (f < 0.001 || f > 1000.0)))
                    return usage_error(c == OPT_SCALE
                                           ? "--time-scale wants a number from 0.001 to 1000 "
                                             "(e.g. 0.01), not '%s'"
                                           : "--max-wall wants seconds > 0 (e.g. 120), not '%s'",
                                       optarg);
                if (c == OPT_SCALE)
                    o->time_scale = f;
                else
                    o->max_wall_s = f;
            }
            break;
        case 'v':
        case OPT_VERBOSE:
        case 'x':
        case OPT_FAILFAST:
        case OPT_NOWALL:
            if (!is_run) {
                name = c == OPT_NOWALL ? "--no-wall-times" : argv[optind - 1];
                break;
            }
            if (c == 'v' || c == OPT_VERBOSE)
                o->verbose = 1;
            else if (c == OPT_NOWALL)
                o->no_wall = 1;
            else
                o->fail_fast = 1;
            break;
        case OPT_COLOR:
        case OPT_TIMELINE:
        case OPT_TRACE:
        case OPT_SHARD:
        case OPT_SHARD_DUR: {
            uint64_t v;
            if (!is_run) {
                name = argv[optind - 1];
                break;
            }
            if (c == OPT_COLOR) {
                if (!strcmp(optarg, "auto"))
                    o->color = 0;
                else if (!strcmp(optarg, "always"))
                    o->color = 1;
                else if (!strcmp(optarg, "never"))
                    o->color = 2;
                else
                    return usage_error("--color wants auto, always or never, not '%s'", optarg);
            } else if (c == OPT_TIMELINE) {
                if (parse_u64(optarg, 100000, &v) != 0 || v == 0)
                    return usage_error("--timeline wants a number of records 1..100000, not '%s'",
                                       optarg);
                o->timeline = (int)v;
            } else if (c == OPT_TRACE) {
                if (strcmp(optarg, "compact") && strcmp(optarg, "full"))
                    return usage_error("--trace wants compact or full, not '%s'", optarg);
                o->trace_full = !strcmp(optarg, "full");
            } else if (c == OPT_SHARD) {
                if (hx_shard_parse(optarg, &o->shard_k, &o->shard_n) != 0)
                    return usage_error("--shard wants K/N with 1 <= K <= N <= 1000 (e.g. 2/4), "
                                       "not '%s'", optarg);
            } else {
                if (!*optarg)
                    return usage_error("empty path for %s", "--shard-durations");
                o->shard_durations = optarg;
            }
            break;
        }
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return HX_OK;
        case OPT_VERSION:
            printf("hp-harness %s\n", HX_VERSION);
            return HX_OK;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (name) {
            fprintf(stderr, "hp-harness: %s does not take %s\n", o->cmd, name);
            fputs("Try 'hp-harness --help'.\n", stderr);
            return HX_INVALID;
        }
    }
    for (int i = optind; i < argc; i++)
        if (strv_push(&o->paths, argv[i]) != 0)
            return usage_error("%s", "out of memory");
    return -1;
}

/* ---- discovery -------------------------------------------------------- */

static int has_yaml_ext(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    char *p = NULL;
    int slash = n > 0 && dir[n - 1] == '/';
    if (asprintf(&p, "%s%s%s", dir, slash ? "" : "/", name) < 0)
        return NULL;
    return p;
}

/* The directories being visited, outermost first: a symlink back to one
 * of them is a loop and is skipped. */
typedef struct dir_chain {
    dev_t dev[HX_MAX_DEPTH + 2];
    ino_t ino[HX_MAX_DEPTH + 2];
} dir_chain;

/*
 * Adds the *.yaml / *.yml files under dir to out, visiting entries in
 * byte order of their names (directories among them), so the suite's order
 * never depends on the file system.  Hidden entries (".git", editor
 * swap files) are skipped, and so is a symlink to a directory being
 * visited.  Returns 0, or -1 with a message on stderr.
 */
static int collect_dir(const char *dir, int depth, dir_chain *chain, strv *out)
{
    struct stat self;
    if (stat(dir, &self) == 0) {
        for (int i = 0; i < depth; i++)
            if (chain->dev[i] == self.st_dev && chain->ino[i] == self.st_ino)
                return 0;
        if (depth <= HX_MAX_DEPTH) {
            chain->dev[depth] = self.st_dev;
            chain->ino[depth] = self.st_ino;
        }
    }
    if (depth > HX_MAX_DEPTH) {
        fprintf(stderr, "hp-harness: %s: directories nested too deep (a symlink loop?)\n", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "hp-harness: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    strv names = {0};
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strv_push(&names, e->d_name) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (names.n)
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        char *p = join_path(dir, names.v[i]);
        struct stat st;
        if (!p) {
            rc = -1;
        } else if (stat(p, &st) != 0) {
            /* A dangling symlink is not a scenario: skip it quietly. */
        } else if (S_ISDIR(st.st_mode)) {
            rc = collect_dir(p, depth + 1, chain, out);
        } else if (S_ISREG(st.st_mode) && has_yaml_ext(names.v[i]) && !strv_has(out, p)) {
            rc = strv_push(out, p);
        }
        free(p);
    }
    strv_free(&names);
    return rc;
}

/* Files named on the command line are taken whatever their extension, in
 * the order given; a path given twice is loaded once. */
static int collect(const strv *paths, strv *out)
{
    for (size_t i = 0; i < paths->n; i++) {
        const char *p = paths->v[i];
        struct stat st;
        if (stat(p, &st) != 0) {
            fprintf(stderr, "hp-harness: %s: %s\n", p, strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            dir_chain chain;
            if (collect_dir(p, 0, &chain, out) != 0)
                return -1;
        } else if (!strv_has(out, p) && strv_push(out, p) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- loading and validation ------------------------------------------ */


void suite_free(hx_suite *su)
{
    for (size_t i = 0; i < su->n; i++)
        scn_free(su->s[i]);
    free(su->s);
    memset(su, 0, sizeof *su);
}

/* Line and column of the "id:" key's value in a scenario file, for the
 * duplicate-id diagnostic (harness.h does not expose positions).  Looks for
 * a top-level "id:" line; 1:1 when there is none. */
static void find_id_pos(const char *file, int *line, int *col)
{
    *line = 1;
    *col = 1;
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    char buf[1024];
    int ln = 0;
    while (fgets(buf, sizeof buf, f)) {
        ln++;
        const char *p = buf;
        if (*p == '"')
            p++;
        if (strncmp(p, "id", 2) != 0)
            continue;
        p += 2;
        if (*p == '"')
            p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        *line = ln;
        *col = (int)(p - buf) + 1;
        break;
    }
    fclose(f);
}

/*
 * Loads and validates every file.  Every problem of every file is reported
 * before anything runs, and ids must be unique across files (reports, the
 * filters and JUnit all key on them).  Returns 0 or HX_INVALID / HX_RUNTIME
 * with the diagnostics printed on stderr.
 */
int load_all(const strv *paths, hx_suite *su)
{
    strv files = {0};
    if (collect(paths, &files) != 0) {
        strv_free(&files);
        return HX_INVALID;
    }
    su->files = files.n;
    su->s = calloc(files.n ? files.n : 1, sizeof *su->s);
    if (!su->s) {
        strv_free(&files);
        return HX_RUNTIME;
    }
    scn_diags diags = {0};
    size_t bad_files = 0; /* scenario files with a problem (an included file is not one) */
    for (size_t i = 0; i < files.n; i++) {
        scn_scenario *s = NULL;
        size_t before = diags.n;
        if (scn_load_file(files.v[i], &s, &diags) != 0 || !s) {
            bad_files += diags.n > before;
            continue;
        }
        const char *id = scn_id(s);
        for (size_t j = 0; j < su->n; j++) {
            if (strcmp(scn_id(su->s[j]), id) == 0) {
                int line, col;
                find_id_pos(files.v[i], &line, &col);
                scn_diags_add(&diags, files.v[i], line, col,
                              "duplicate scenario id '%s' (already used by %s)", id,
                              scn_file(su->s[j]));
                bad_files++;
                break;
            }
        }
        su->s[su->n++] = s;
    }
    if (diags.n) {
        scn_diags_print(&diags, stderr);
        fprintf(stderr, "hp-harness: %zu problem%s in %zu of %zu file%s\n",
                diags.n, diags.n == 1 ? "" : "s", bad_files, files.n, files.n == 1 ? "" : "s");
        scn_diags_free(&diags);
        strv_free(&files);
        return HX_INVALID;
    }
    strv_free(&files);
    return 0;
}

/* ---- selection -------------------------------------------------------- */

static int json_has_string(json_t *arr, const char *x)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), x) == 0)
            return 1;
    }
    return 0;
}

/* Repeating one kind of filter widens it (any value), combining kinds
 * narrows (all kinds must match). */
int selected(const hx_opts *o, const scn_scenario *s)
{
    if (o->globs.n) {
        int ok = 0;
        for (size_t i = 0; i < o->globs.n && !ok; i++)
            ok = fnmatch(o->globs.v[i], scn_id(s), 0) == 0;
        if (!ok)
            return 0;
    }
    if (o->tags.n) {
        int ok = 0;
        for (size_t i = 0; i < o->tags.n && !ok; i++)
            ok = json_has_string(scn_tags(s), o->tags.v[i]);
        if (!ok)
            return 0;
    }
    if (o->rules.n) {
        int ok = 0;
        for (size_t i = 0; i < o->rules.n && !ok; i++)
            ok = json_has_string(scn_rules(s), o->rules.v[i]);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Unknown rule ids in --rule are almost always typos: say so. */
int check_rule_filters(const hx_opts *o)
{
    for (size_t i = 0; i < o->rules.n; i++) {
        int known = 0;
        for (const char *const *r = scn_rule_ids; *r && !known; r++)
            known = strcmp(*r, o->rules.v[i]) == 0;
        if (!known)
            return usage_error("--rule '%s' is not a rule id of the policy (e.g. Q-4, WS-5)",
                               o->rules.v[i]);
    }
    return 0;
}

/* ---- commands --------------------------------------------------------- */

static int cmd_lint(hx_opts *o)
{
    hx_suite su = {0};
    int rc = load_all(&o->paths, &su);
    if (rc == 0) {
        if (su.files == 0) {
            fputs("hp-harness: no scenario files (*.yaml, *.yml) found\n", stderr);
            rc = HX_INVALID;
        } else {
            printf("%zu file%s OK\n", su.files, su.files == 1 ? "" : "s");
        }
    }
#if HX_HAVE_REAL
    /* --mode real: warnings, per line, for what real mode skips, cannot
     * observe or does differently with this target (they do not fail lint). */
    if (rc == 0 && o->mode && strcmp(o->mode, "real") == 0) {
        scn_run_opts ro = {0};
        ro.server_url = o->server_url;
        ro.time_scale = o->time_scale;
        ro.max_wall_s = o->max_wall_s;
        ro.token_cmd = o->token_cmd;
        ro.client_cmd = o->client_cmd;
        ro.no_proxy = o->no_proxy;
        scn_diags w = {0};
        size_t nw = 0;
        for (size_t i = 0; i < su.n; i++)
            nw += (size_t)scn_real_lint(su.s[i], &ro, &w);
        scn_diags_print(&w, stdout);
        scn_diags_free(&w);
        printf("%zu real-mode warning%s\n", nw, nw == 1 ? "" : "s");
    }
#endif
    suite_free(&su);
    return rc;
}

static void print_joined(json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        printf("%s%s", i ? "," : "", json_is_string(v) ? json_string_value(v) : "?");
    }
    if (json_array_size(arr) == 0)
        fputs("-", stdout);
}

static int cmd_list(hx_opts *o)
{
    hx_suite su = {0};
    int rc = check_rule_filters(o);
    if (rc == 0)
        rc = load_all(&o->paths, &su);
    if (rc != 0) {
        suite_free(&su);
        return rc;
    }
    json_t *arr = o->list_json ? json_array() : NULL;
    size_t width = 0;
    for (size_t i = 0; i < su.n; i++)
        if (selected(o, su.s[i]) && strlen(scn_id(su.s[i])) > width)
            width = strlen(scn_id(su.s[i]));
    for (size_t i = 0; i < su.n; i++) {
        scn_scenario *s = su.s[i];
        if (!selected(o, s))
            continue;
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:O,s:O}", "id", scn_id(s), "name", scn_name(s),
                               "file", scn_file(s), "rules", scn_rules(s), "tags", scn_tags(s)));
            continue;
        }
        printf("%-*s  rules: ", (int)width, scn_id(s));
        print_joined(scn_rules(s));
        fputs("  tags: ", stdout);
        print_joined(scn_tags(s));
        fputc('\n', stdout);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(arr);
    }
    suite_free(&su);
    return HX_OK;
}


/*
 * hp-harness trace [--root DIR] [--update] [--json] [--quiet]: the
 * obligations table of docs/SYNC_POLICY.md traced to its checks
 * (rpt_oblig.c).  Exit 0 when every obligation has a check and the doc is
 * up to date, 1 otherwise, 2 on usage errors.
 */
static int cmd_trace(int argc, char **argv)
{
    const char *root = NULL;
    int update = 0, as_json = 0, quiet = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--root") && i + 1 < argc)
            root = argv[++i];
        else if (!strcmp(argv[i], "--update"))
            update = 1;
        else if (!strcmp(argv[i], "--json"))
            as_json = 1;
        else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
            quiet = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: hp-harness trace [--root DIR] [--update] [--json] [--quiet]\n"
                 "The obligations of docs/SYNC_POLICY.md and the checks that name them\n"
                 "(\"checks: Q-5.1\" markers in scenarios/ and tests/).  --update rewrites the\n"
                 "doc's 'checked by' cells.  --root: the checkout (default: the one holding\n"
                 "the current directory).  Exit 0 when every obligation has a check and the\n"
                 "doc is up to date, 1 otherwise.");
            return HX_OK;
        } else
            return usage_error("trace: unknown argument '%s' (--root DIR, --update, --json, "
                               "--quiet)", argv[i]);
    }
    char dir[PATH_MAX], err[PATH_MAX + 128];
    if (rpt_oblig_find_root(root ? root : ".", dir, sizeof dir) != 0) {
        fprintf(stderr, "hp-harness: trace: no docs/SYNC_POLICY.md at or above %s\n",
                root ? root : "the current directory");
        return HX_INVALID;
    }
    json_t *scan = rpt_oblig_scan(dir, err, sizeof err);
    if (!scan) {
        fprintf(stderr, "hp-harness: trace: %s\n", err);
        return HX_RUNTIME;
    }
    if (update) {
        if (rpt_oblig_update(dir, scan, err, sizeof err) != 0) {
            fprintf(stderr, "hp-harness: trace: %s\n", err);
            json_decref(scan);
            return HX_RUNTIME;
        }
        json_decref(scan);
        scan = rpt_oblig_scan(dir, err, sizeof err);
        if (!scan) {
            fprintf(stderr, "hp-harness: trace: %s\n", err);
            return HX_RUNTIME;
        }
    }
    if (as_json) {
        json_dumpf(scan, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
        putchar('\n');
    } else {
        rpt_oblig_print(stdout, scan, !quiet);
    }
    int rc = json_array_size(json_object_get(scan, "problems")) ? HX_FAILED : HX_OK;
    json_decref(scan);
    return rc;
}

int main(int argc, char **argv)
{
    /* Real mode writes to the clients' stdin pipes and to sockets (plain or
     * TLS): a peer that is gone must be an EPIPE error the run reports, not
     * a SIGPIPE that kills the harness silently.  Children get SIG_DFL back
     * before exec (real_proc.c). */
    signal(SIGPIPE, SIG_IGN);
#ifdef HX_HAVE_ALLOC
    /* Before any thread or SQLite call (hp_alloc.h). */
    if (hp_alloc_install() < 0)
        return HX_INVALID;
#endif
    if (argc < 2) {
        usage(stderr);
        return HX_INVALID;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return HX_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("hp-harness %s\n", HX_VERSION);
        return HX_OK;
    }
    if (strcmp(cmd, "trace") == 0)
        return cmd_trace(argc, argv);
    if (strcmp(cmd, "explore") == 0)
        return exp_main(argc - 1, argv + 1); /* harness/explore/ */
    if (strcmp(cmd, "merge-reports") == 0)
        return cmd_merge_reports(argc - 1, argv + 1);
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "lint") != 0 && strcmp(cmd, "list") != 0)
        return usage_error("unknown command '%s' (run, lint, list, trace, explore or "
                           "merge-reports)", cmd);

    hx_opts o = {0};
    o.cmd = cmd;
    o.mode = "sim";
    o.seed = 1;
    o.jobs = 1;
    int rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc < 0) {
        if (o.paths.n == 0)
            strv_push(&o.paths, "scenarios/");
        if (strcmp(cmd, "run") == 0)
            rc = cmd_run(&o);
        else if (strcmp(cmd, "lint") == 0)
            rc = cmd_lint(&o);
        else
            rc = cmd_list(&o);
    }
    strv_free(&o.paths);
    strv_free(&o.globs);
    strv_free(&o.tags);
    strv_free(&o.rules);
    free(o.secret_buf);
    return rc;
}

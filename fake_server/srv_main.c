/*
 * srv_main.c - the hp-fake-server program: command line, signals, wiring.
 *
 *   hp-fake-server [--listen 127.0.0.1:8080] [--db FILE]
 *                  (--jwt-secret S | --jwt-secret-file F)
 *                  [--time-scale F] [--log-level LEVEL] [--admin] [--policy JSON]
 *                  [--group-commit on|off]
 *                  [--admin-listen HOST:PORT] [--admin-token T | --admin-token-file F]
 *                  [--fault-proxy HOST:PORT]
 *                  [limit flags: docs/LIMITS.md, "Server transport"]
 *   hp-fake-server token --sub U --hh H [--dev D] [--ttl 1h]
 *                  (--jwt-secret S | --jwt-secret-file F)
 *
 * Exit codes: 0 clean stop (SIGTERM / SIGINT) or token printed, 2 usage
 * error (unknown flag, bad value, missing secret), 3 runtime error (the
 * store cannot be opened, the port cannot be bound).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netdb.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_log.h"
#include "hp_policy.h"
#include "hp_time.h"
#include "srv_core.h"
#include "srv_lws.h"

#define EXIT_USAGE 2
/* token --ttl: at most HP_DURATION_MAX_MS like every duration (issue 11). */
#define HP_TOKEN_TTL_MAX_MS HP_DURATION_MAX_MS
#define EXIT_RUNTIME 3
#define DEFAULT_DB "hp-fake-server.db"
#ifndef HP_VERSION
#define HP_VERSION "unknown" /* CMake defines it from project() */
#endif

static const char USAGE[] =
    "usage: hp-fake-server [--listen HOST:PORT] [--db FILE]\n"
    "                      (--jwt-secret S | --jwt-secret-file F)\n"
    "                      [--time-scale F] [--log-level LEVEL] [--admin]\n"
    "                      [--policy JSON] [--group-commit on|off]\n"
    "                      [--admin-listen HOST:PORT]\n"
    "                      [--admin-token T | --admin-token-file F]\n"
    "                      [--fault-proxy HOST:PORT]\n"
    "       hp-fake-server token --sub USER --hh HOUSEHOLD [--dev DEVICE] [--ttl 1h]\n"
    "                      (--jwt-secret S | --jwt-secret-file F)\n"
    "\n"
    "The HomePlanner sync v0.2 reference server: REST under /api/v0.2/tasks and\n"
    "the change stream at ws://HOST:PORT/api/v0.2/tasks/stream?token=JWT.\n"
    "\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; HOST\n"
    "                         is a numeric address, '*' or empty for all; port 0\n"
    "                         picks a free port, shown in the 'listening' line)\n"
    "  --db FILE              SQLite store (default ./" DEFAULT_DB "; ':memory:'\n"
    "                         keeps nothing across restarts)\n"
    "  --jwt-secret S         HS256 shared secret for tokens\n"
    "  --jwt-secret-file F    read the secret from F (trailing newline ignored)\n"
    "  --time-scale F         multiply every policy duration by F > 0 (heartbeat,\n"
    "                         lock TTL, HELLO timeout...; READY announces the\n"
    "                         scaled heartbeat_interval_ms). Default 1\n"
    "  --policy JSON          overrides of the seed policy, as in a scenario's\n"
    "                         policy: e.g. '{\"lock_ttl\": \"10s\", \"event_retain\": 50}'\n"
    "                         (keys: docs/SCENARIOS.md); scaled by --time-scale\n"
    "  --group-commit on|off  on (default): writes arriving together share one\n"
    "                         SQLite transaction and one fsync, each answered\n"
    "                         after that COMMIT; off: one COMMIT per write\n"
    "  --log-level LEVEL      debug, info (default), warning or error; logs are\n"
    "                         one line each on stderr, tokens redacted\n"
    "  --admin                serve the admin API (/_hp/...: sessions, faults, journal,\n"
    "                         verify, state, the page at /_hp/) on the --listen\n"
    "                         address.  Off by default (/_hp/... answers 404)\n"
    "  --admin-listen HOST:PORT  serve the admin API on this separate address\n"
    "                         instead (then /_hp/... is 404 on --listen); PORT\n"
    "                         alone means 127.0.0.1:PORT\n"
    "  --admin-token T        require 'Authorization: Bearer T' on every admin\n"
    "                         request.  Without a token the admin API must be on\n"
    "                         a loopback address: the server refuses to start\n"
    "                         otherwise (exit 2)\n"
    "  --admin-token-file F   read the admin token from F\n"
    "                         (endpoints and fault bodies: docs/ADMIN_API.md)\n"
    "  --fault-proxy HOST:PORT  relay /_hp/proxy/... (same admin auth) to the control\n"
    "                         API of hp-fault-proxy at HOST:PORT (its --control;\n"
    "                         PORT 1-65535, HOST resolved once at start; needs\n"
    "                         --admin or --admin-listen)\n"
    "\n"
    "Limits (docs/LIMITS.md; SIZE is bytes or e.g. 64KiB, 8MiB, 1GiB):\n"
    "  --max-replay SIZE            a HELLO whose replay is larger is answered\n"
    "                               RESYNC_REQUIRED (default 256MiB; 0 = no bound)\n"
    "  --max-output-per-conn SIZE   output queued for one WebSocket before it is\n"
    "                               closed 1008 (default 8MiB)\n"
    "  --max-output-per-user SIZE   ... over one user's WebSockets (default 32MiB)\n"
    "  --max-output SIZE            ... over every WebSocket (default 256MiB)\n"
    "  --max-conns-per-user N       WebSockets per user, else upgrade 429 (default 32)\n"
    "  --max-conns N                WebSockets in all, else upgrade 503 (default 10000);\n"
    "                               RLIMIT_NOFILE is raised to its hard limit at start,\n"
    "                               a nofile_low WARNING says when that is below N + 64\n"
    "  --max-locks-per-user N       soft-locks one user holds, else 429 (default 256)\n"
    "  --max-heartbeat-locks N      lock ids read from one HEARTBEAT (default 256)\n"
    "  --http-timeout SECS          close a socket without a complete request head,\n"
    "                               or idle on keep-alive, after SECS (default 10)\n"
    "  --keep-alive                 keep HTTP connections open between requests;\n"
    "                               without it every answer closes, so each request\n"
    "                               is read strictly by the front door (LIMITS.md)\n"
    "  --ws-sndbuf SIZE             kernel send buffer of a WebSocket (SO_SNDBUF,\n"
    "                               default 256KiB)\n"
    "  -h, --help             this text\n"
    "  --version              print the version and exit\n"
    "\n"
    "token: print a development token (HS256; iat = now, exp = now + ttl).\n"
    "  --sub USER  --hh HOUSEHOLD  [--dev DEVICE]  [--ttl DURATION: 30s, 15m, 1h, 7d]\n"
    "\n"
    "Exit: 0 clean stop (SIGTERM/SIGINT closes every WebSocket with 1001) or token\n"
    "printed; 2 usage error; 3 runtime error (store, listen address).\n"
    "\n"
    "Example:\n"
    "  hp-fake-server --jwt-secret dev-secret &\n"
    "  TOKEN=$(hp-fake-server token --sub alice --hh home --jwt-secret dev-secret)\n"
    "  curl -X PUT -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n"
    "       -d '{\"base_revision\":0,\"task\":{\"title\":\"Milk\"}}' \\\n"
    "       http://127.0.0.1:8080/api/v0.2/tasks/t1\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("hp-fake-server: ", stderr);
    fprintf(stderr, fmt, arg ? arg : "");
    fputs("\n(see hp-fake-server --help)\n", stderr);
    return EXIT_USAGE;
}

/* Reads a secret file: the whole file minus trailing CR/LF/space.  NULL on
 * error (message printed). */
static char *read_secret_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hp-fake-server: cannot read --jwt-secret-file %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    char *buf = malloc(4097);
    size_t n = buf ? fread(buf, 1, 4096, f) : 0;
    int more = buf && fgetc(f) != EOF;
    fclose(f);
    if (!buf)
        return NULL;
    if (more) {
        fprintf(stderr, "hp-fake-server: --jwt-secret-file %s is over 4096 bytes\n", path);
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    return buf;
}

/*
 * Flag reader: accepts "--flag value" and "--flag=value".  Returns 1 and
 * sets *val when argv[*i] is flag (advancing *i past the value), 0 when it
 * is another flag, -1 when the value is missing.
 */
static int flag_value(int argc, char **argv, int *i, const char *flag, const char **val)
{
    const char *a = argv[*i];
    size_t fl = strlen(flag);
    if (strncmp(a, flag, fl) != 0)
        return 0;
    if (a[fl] == '=') {
        *val = a + fl + 1;
        return 1;
    }
    if (a[fl] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

/* Secret from --jwt-secret or --jwt-secret-file (exactly one).  Returns a
 * malloc'd secret or NULL with *rc set. */
static char *pick_secret(const char *s, const char *file, int *rc)
{
    if (s && file) {
        *rc = usage_error("give --jwt-secret or --jwt-secret-file, not both%s", "");
        return NULL;
    }
    if (!s && !file) {
        *rc = usage_error("a secret is required: --jwt-secret S or --jwt-secret-file F%s", "");
        return NULL;
    }
    char *sec = s ? strdup(s) : read_secret_file(file);
    if (!sec) {
        *rc = EXIT_USAGE;
        return NULL;
    }
    if (!*sec) {
        free(sec);
        *rc = usage_error("the JWT secret is empty%s", "");
        return NULL;
    }
    return sec;
}

/* ---- token ------------------------------------------------------------------ */

static int token_main(int argc, char **argv)
{
    const char *sub = NULL, *hh = NULL, *dev = NULL, *ttl = "1h", *secret = NULL,
               *secret_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
#define FLAG(name, var)                                                  \
    if ((r = flag_value(argc, argv, &i, name, &v)) != 0) {               \
        if (r < 0)                                                       \
            return usage_error("%s needs a value", name);                \
        var = v;                                                         \
        continue;                                                        \
    }
        FLAG("--sub", sub)
        FLAG("--hh", hh)
        FLAG("--dev", dev)
        FLAG("--ttl", ttl)
        FLAG("--jwt-secret-file", secret_file)
        FLAG("--jwt-secret", secret)
#undef FLAG
        return usage_error("token: unknown argument %s", argv[i]);
    }
    if (!sub || !*sub)
        return usage_error("token: --sub USER is required%s", "");
    if (!hh || !*hh)
        return usage_error("token: --hh HOUSEHOLD is required%s", "");
    int64_t ttl_ms;
    if (hp_duration_parse(ttl, &ttl_ms) != 0 || ttl_ms < 0)
        return usage_error("token: bad --ttl %s (e.g. 30s, 15m, 1h, 7d)", ttl);
    if (ttl_ms < 1000 || ttl_ms > HP_TOKEN_TTL_MAX_MS)
        return usage_error("token: --ttl %s out of range (from 1s to 366d)", ttl);
    /* A-1 / issue 11: claims the server refuses (hp_jwt_verify keeps 1 to
     * 127 bytes in hp_claims) are a usage error, named, not a token. */
    const size_t claim_max = sizeof(((hp_claims *)0)->sub) - 1;
    const char *claim_bad = strlen(sub) > claim_max                ? "--sub"
                            : strlen(hh) > claim_max               ? "--hh"
                            : dev && *dev && strlen(dev) > claim_max ? "--dev"
                                                                     : NULL;
    if (claim_bad)
        return usage_error("token: %s is over 127 bytes: the server would refuse the token "
                           "(claims are 1 to 127 bytes)",
                           claim_bad);
    int rc = 0;
    char *sec = pick_secret(secret, secret_file, &rc);
    if (!sec)
        return rc;
    int64_t now_s = hp_wall_clock(NULL) / 1000;
    char *tok = hp_jwt_mint(sec, sub, hh, dev && *dev ? dev : NULL, now_s, now_s + ttl_ms / 1000);
    if (!tok) {
        free(sec);
        fputs("hp-fake-server: token: minting failed\n", stderr);
        return EXIT_RUNTIME;
    }
    /* Issue 11: never print a token the server would refuse (a 500-byte
     * sub, a bad claim): check it with the server's own verifier, so
     * the two cannot drift apart. */
    hp_claims cl;
    const char *reason = NULL;
    char why[256] = "";
    int bad = hp_jwt_verify(sec, tok, now_s * 1000, &cl, &reason, why, sizeof why);
    free(sec);
    if (bad) {
        free(tok);
        return usage_error("token: the server would refuse this token: %s", why);
    }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

/* ---- server ------------------------------------------------------------------ */

/* Descriptors beyond the stream connections: the listener, the store (db,
 * WAL, shm), HTTP clients, lws's own. */
#define NOFILE_SPARE 64

/* The soft RLIMIT_NOFILE (often 1024) caps live connections long before
 * memory does: raise it to the hard limit, and say so at WARNING when even
 * the hard limit is below what --max-conns allows (+ NOFILE_SPARE).  Runs
 * before the lws context is made: lws sizes its descriptor table from it. */
static void raise_nofile(const hp_env *env, int max_conns)
{
    long long wanted = (long long)max_conns + NOFILE_SPARE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    long long cur = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && (long long)rl.rlim_cur < wanted)
        hp_log(env, HP_LOG_WARNING, "nofile_low",
               "nofile=%lld wanted=%lld max_conns=%d hint=\"at most about %lld connections; "
               "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-conns\"",
               cur, wanted, max_conns, cur > NOFILE_SPARE ? cur - NOFILE_SPARE : 0);
    else
        hp_log(env, HP_LOG_INFO, "nofile", "nofile=%lld was=%lld", cur,
               before == RLIM_INFINITY ? -1LL : (long long)before);
}

/* A size: digits with an optional B, KiB, MiB, GiB or TiB.  0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t n = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned dg = (unsigned)(*s++ - '0');
        if (n > (UINT64_MAX - dg) / 10)
            return -1;
        n = n * 10 + dg;
    }
    static const char *const units[] = {"", "B", "KiB", "MiB", "GiB", "TiB"};
    static const unsigned shifts[] = {0, 0, 10, 20, 30, 40};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(s, units[i]) == 0) {
            if (n > (UINT64_MAX >> shifts[i]))
                return -1;
            *out = n << shifts[i];
            return 0;
        }
    }
    return -1;
}

/* The limit flags: name, size or count, range, and where the value goes. */
typedef struct limit_flag {
    const char *name;
    int is_size;
    uint64_t min, max;
    size_t *size_out;
    int *int_out;
    const char *val;      /* as given, NULL when absent */
} limit_flag;

static int apply_limit(limit_flag *f)
{
    uint64_t v = 0;
    if (f->is_size) {
        if (parse_size(f->val, &v) != 0 || (v != 0 && v < f->min) || v > f->max ||
            (v == 0 && f->min > 0)) {
            char m[200];
            snprintf(m, sizeof m, "bad %s %%s (a size from %llu to %llu bytes, e.g. 8MiB)",
                     f->name, (unsigned long long)f->min, (unsigned long long)f->max);
            return usage_error(m, f->val);
        }
        *f->size_out = (size_t)v;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long n = strtoll(f->val, &end, 10);
    if (errno || end == f->val || *end || n < (long long)f->min || n > (long long)f->max) {
        char m[200];
        snprintf(m, sizeof m, "bad %s %%s (an integer from %llu to %llu)", f->name,
                 (unsigned long long)f->min, (unsigned long long)f->max);
        return usage_error(m, f->val);
    }
    *f->int_out = (int)n;
    return 0;
}

static volatile sig_atomic_t g_stop;

/* 127.0.0.0/8 or ::1 (host as parse_listen leaves it; "" = every interface). */
static int is_loopback(const char *host)
{
    return !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    srv_lws_wake();
}

/* "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT".  host gets "" for all
 * interfaces.  0 or -1. */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        if ((size_t)(rb - s - 1) >= hostlen)
            return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            host[0] = '\0';
            colon = s - 1; /* "PORT" alone */
        } else {
            if ((size_t)(colon - s) >= hostlen)
                return -1;
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
        }
    }
    const char *ps = colon + 1;
    char *end = NULL;
    errno = 0;
    long p = strtol(ps, &end, 10);
    if (!*ps || errno || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    if (!strcmp(host, "*") || !strcmp(host, "0.0.0.0"))
        host[0] = '\0';
    else if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    return 0;
}

/* --fault-proxy HOST:PORT ("[v6]:PORT"): HOST resolved now (a name too),
 * written numeric into addr.  0, -1 bad syntax, -2 does not resolve. */
static int parse_fault_proxy(const char *s, char *addr, size_t alen, int *port)
{
    char host[256];
    int p = 0;
    if (parse_listen(s, host, sizeof host, &p) != 0 || !strchr(s, ':') || !host[0] || p < 1)
        return -1;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return -2;
    int ok = 0;
    if (res->ai_family == AF_INET)
        ok = inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr,
                       (socklen_t)alen) != NULL;
    else if (res->ai_family == AF_INET6)
        ok = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, addr,
                       (socklen_t)alen) != NULL;
    freeaddrinfo(res);
    *port = p;
    return ok ? 0 : -2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--version")) {
            printf("hp-fake-server %s\n", HP_VERSION);
            return 0;
        }
    if (argc > 1 && !strcmp(argv[1], "token"))
        return token_main(argc - 1, argv + 1);

    const char *listen = "127.0.0.1:8080", *db = DEFAULT_DB, *secret = NULL,
               *secret_file = NULL, *scale_s = NULL, *level_s = "info", *policy_s = NULL,
               *group_s = "on";
    int admin = 0, keep_alive = 0;
    const char *admin_listen = NULL, *admin_token_s = NULL, *admin_token_file = NULL;
    const char *fault_proxy = NULL;
    srv_limits lim;
    srv_limits_defaults(&lim);
    srv_lws_limits tlim;
    srv_lws_limits_defaults(&tlim);
    limit_flag lflags[] = {
        /* 0 = no bound; else at least one chunk's worth */
        {"--max-replay", 1, 0, (uint64_t)1 << 40, &lim.replay_max_bytes, NULL, NULL},
        {"--max-output-per-conn", 1, 64 << 10, (uint64_t)1 << 36, &tlim.out_conn, NULL, NULL},
        {"--max-output-per-user", 1, 64 << 10, (uint64_t)1 << 36, &tlim.out_user, NULL, NULL},
        {"--max-output", 1, 64 << 10, (uint64_t)1 << 36, &tlim.out_total, NULL, NULL},
        {"--max-conns-per-user", 0, 1, 1000000, NULL, &lim.conns_per_user, NULL},
        {"--max-conns", 0, 1, 1000000, NULL, &lim.conns_total, NULL},
        {"--max-locks-per-user", 0, 1, 1000000, NULL, &lim.locks_per_user, NULL},
        {"--max-heartbeat-locks", 0, 1, 1000000, NULL, &lim.heartbeat_lock_ids, NULL},
        {"--http-timeout", 0, 1, 3600, NULL, &tlim.http_timeout_s, NULL},
        {"--ws-sndbuf", 1, 4 << 10, 64 << 20, &tlim.ws_sndbuf, NULL, NULL},
    };
    const size_t n_lflags = sizeof lflags / sizeof *lflags;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--admin")) {
            admin = 1;
            continue;
        }
        if (!strcmp(argv[i], "--keep-alive")) {
            keep_alive = 1;
            continue;
        }
#define FLAG(name, var)                                                  \
    if ((r = flag_value(argc, argv, &i, name, &v)) != 0) {               \
        if (r < 0)                                                       \
            return usage_error("%s needs a value", name);                \
        var = v;                                                         \
        continue;                                                        \
    }
        FLAG("--listen", listen)
        FLAG("--db", db)
        FLAG("--jwt-secret-file", secret_file)
        FLAG("--jwt-secret", secret)
        FLAG("--time-scale", scale_s)
        FLAG("--log-level", level_s)
        FLAG("--policy", policy_s)
        FLAG("--group-commit", group_s)
        FLAG("--admin-listen", admin_listen)
        FLAG("--admin-token-file", admin_token_file)
        FLAG("--admin-token", admin_token_s)
        FLAG("--fault-proxy", fault_proxy)
#undef FLAG
        int matched = 0;
        for (size_t k = 0; k < n_lflags && !matched; k++) {
            if ((r = flag_value(argc, argv, &i, lflags[k].name, &v)) != 0) {
                if (r < 0)
                    return usage_error("%s needs a value", lflags[k].name);
                lflags[k].val = v;
                matched = 1;
            }
        }
        if (matched)
            continue;
        return usage_error("unknown argument %s", argv[i]);
    }

    char host[128];
    int port = 0;
    if (parse_listen(listen, host, sizeof host, &port) != 0)
        return usage_error("bad --listen %s (expected HOST:PORT, e.g. 127.0.0.1:8080)", listen);
    double scale = 1.0;
    if (scale_s) {
        char *end = NULL;
        errno = 0;
        scale = strtod(scale_s, &end);
        if (errno || end == scale_s || *end || hp_time_scale_check(scale, NULL, 0) != 0)
            return usage_error("bad --time-scale %s (a number from 0.001 to 1000, e.g. 0.1)",
                               scale_s);
    }
    for (size_t k = 0; k < n_lflags; k++) {
        int lr;
        if (lflags[k].val && (lr = apply_limit(&lflags[k])) != 0)
            return lr;
    }
    hp_log_level level;
    if (hp_log_level_parse(level_s, &level) != 0)
        return usage_error("bad --log-level %s (debug, info, warning, error)", level_s);
    if (!*db)
        return usage_error("--db needs a file name%s", "");
    if (strcmp(group_s, "on") != 0 && strcmp(group_s, "off") != 0)
        return usage_error("bad --group-commit %s (on or off)", group_s);
    char ahost[128] = "";
    int aport = 0;
    if (admin_listen) {
        if (parse_listen(admin_listen, ahost, sizeof ahost, &aport) != 0)
            return usage_error("bad --admin-listen %s (expected HOST:PORT, e.g. 127.0.0.1:8081)",
                               admin_listen);
        if (!strchr(admin_listen, ':'))
            strcpy(ahost, "127.0.0.1"); /* "PORT" alone: loopback, not every interface */
    }
    char fp_host[INET6_ADDRSTRLEN] = "";
    int fp_port = 0;
    if (fault_proxy) {
        if (!admin && !admin_listen)
            return usage_error("--fault-proxy needs --admin or --admin-listen (it is reached "
                               "through /_hp/proxy/...)%s", "");
        int fr = parse_fault_proxy(fault_proxy, fp_host, sizeof fp_host, &fp_port);
        if (fr == -1)
            return usage_error("bad --fault-proxy %s (expected HOST:PORT of hp-fault-proxy's "
                               "--control, PORT 1-65535, e.g. 127.0.0.1:9001)", fault_proxy);
        if (fr == -2) {
            fprintf(stderr, "hp-fake-server: --fault-proxy %s: the host does not resolve\n",
                    fault_proxy);
            return EXIT_RUNTIME;
        }
    }
    if (admin_token_s && admin_token_file)
        return usage_error("give --admin-token or --admin-token-file, not both%s", "");
    char *atok = NULL;
    if (admin_token_s || admin_token_file) {
        atok = admin_token_s ? strdup(admin_token_s) : read_secret_file(admin_token_file);
        if (!atok)
            return EXIT_USAGE;
        if (!*atok || strlen(atok) > 512) {
            free(atok);
            return usage_error("the admin token must be 1-512 bytes%s", "");
        }
        if (!admin && !admin_listen) {
            free(atok);
            return usage_error("--admin-token needs --admin or --admin-listen%s", "");
        }
    }
    /* An admin API without a token arms faults and reads every household:
     * only a loopback address may serve it. */
    const char *admin_addr = admin_listen ? ahost : host;
    if ((admin || admin_listen) && !atok && !is_loopback(admin_addr)) {
        return usage_error("the admin API would listen on a non-loopback address (%s): give "
                           "--admin-token, or --admin-listen 127.0.0.1:PORT",
                           admin_addr[0] ? admin_addr : "every interface");
    }
    int rc = 0;
    char *sec = pick_secret(secret, secret_file, &rc);
    if (!sec) {
        free(atok);
        return rc;
    }

    hp_logger logger = {hp_log_stderr_sink, NULL, level};
    hp_rng rng;
    hp_rng_seed(&rng, (uint64_t)hp_wall_clock(NULL) ^ ((uint64_t)getpid() << 32));
    hp_env env = {hp_wall_clock, NULL, &rng, &logger, "fake_server"};

    hp_policy pol;
    hp_policy_defaults(&pol);
    char perr[256];
    /* Overrides first, then the scale: a "lock_ttl": "10s" override is
     * scaled like the default 2 min would be. */
    if (policy_s && hp_policy_apply_json(&pol, policy_s, perr, sizeof perr) != 0) {
        free(sec);
        free(atok);
        return usage_error("bad --policy: %s", perr);
    }
    hp_policy shown = pol; /* each session scales its own copy */
    if (scale != 1.0)
        hp_policy_scale(&shown, scale);

    char err[256] = "";
    srv_store *st = srv_store_open(db, err, sizeof err);
    if (!st) {
        hp_log(&env, HP_LOG_ERROR, "store_open_failed", "db=%s error=\"%s\"", db, err);
        free(sec);
        free(atok);
        return EXIT_RUNTIME;
    }
    /* The default session: --db, --jwt-secret, --policy, --time-scale. */
    srv_sessions *reg = srv_sessions_new(&env, level, &pol, scale, sec, st);
    free(sec); /* the session keeps its own copy */
    if (reg)
        srv_sessions_set_limits(reg, &lim);
    if (!reg) {
        hp_log(&env, HP_LOG_ERROR, "core_failed", "db=%s", db);
        srv_store_close(st);
        free(atok);
        return EXIT_RUNTIME;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    hp_log(&env, HP_LOG_INFO, "starting", "db=%s time_scale=%g heartbeat_ms=%lld", db, scale,
           (long long)shown.heartbeat_ms);
    raise_nofile(&env, lim.conns_total);
    srv_lws_opts opts = {host[0] ? host : NULL, port, admin || admin_listen != NULL, listen,
                         strcmp(group_s, "on") == 0, tlim,
                         admin_listen && ahost[0] ? ahost : NULL, aport, admin_listen, atok,
                         fault_proxy, fault_proxy ? fp_host : NULL, fp_port, keep_alive};
    int r = srv_lws_run(reg, &env, &opts, &g_stop);
    srv_sessions_free(reg);
    srv_store_close(st);
    free(atok);
    return r == 0 ? 0 : EXIT_RUNTIME;
}

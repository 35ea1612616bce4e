/*
 * hp_load.c - hp-load: a load generator for hp-fake-server (and the bare
 * broadcast floor, hp_floor.c), one process, one thread, epoll.  This file:
 * options, the phases, the figures; the sockets and the loop are
 * hp_load_loop.c, what the connections say hp_load_proto.c (shared:
 * hp_load_int.h).
 *
 *   hp-load --target 127.0.0.1:8080 --secret S [--conns N] [--households H]
 *           [--writers W] [--rounds R] [--duration SECS] [--server-pid PID]
 *           [--label NAME] [--parallel N] [--json FILE] [--settle SECS]
 *
 * Inputs: a running server (it is not started here: bench/load.sh starts
 * hp-fake-server and hp-floor side by side), the JWT secret to mint tokens
 * with (HS256, like `hp-fake-server token`), the figures below as flags.
 * Outputs: a readable table and, as the last line on stdout, one JSON
 * object with every figure (also appended to --json FILE).
 *
 * Phases of one run:
 *   1. connect: N stream connections, user u<i> in household h<i % H>,
 *      at most --parallel handshakes in flight; each does the upgrade
 *      (?token=JWT&hh=h<k>: the floor reads hh from the query, the real
 *      server ignores it), sends HELLO 0 and waits for READY; then it
 *      sends {"type":"HEARTBEAT","locks":[]} at the interval READY
 *      announced, like a real client.  Figures: setup rate (READY per
 *      second over the phase), setup latency.
 *   2. idle: --settle seconds; the server's RSS minus its RSS before phase
 *      1, divided by N, is the RSS per idle stream connection.
 *   3. fan-out: --rounds sequential PUTs by one writer, round r to
 *      household r % H; a round ends when every READY listener of that
 *      household has the event (or after 10 s).  Fan-out latency of one
 *      listener = time its frame is read minus time the PUT was sent (the
 *      send time travels in the task's title, so no bookkeeping is
 *      needed).  Also reported: from the writer's 200 to each frame read
 *      after it; the server sends the events in the same service round as
 *      the 200, so many frames come BEFORE it (frames_before_200).
 *   4. writes: W writers (one keep-alive HTTP connection each, household
 *      w % H, a new task id per PUT, base_revision 0) in a closed loop for
 *      --duration seconds: durable PUT/s, PUT latency, 409 and error
 *      counts; the listeners keep receiving (fan-out under load).
 * Server CPU (utime+stime from /proc/PID/stat) and RSS (VmRSS) when
 * --server-pid is given; hp-load's own CPU share from getrusage, so a run
 * shows whether the generator or the server was the bottleneck.
 *
 * Ranges: --conns 0..50000, --households 1..conns (>= 1), --writers
 * 0..1024, --rounds 0..100000, --duration 0..3600 s, --parallel 1..4096.
 * Exit: 0 run done, 2 usage error, 3 cannot reach the target / no
 * connection became READY when some were asked for.
 */
#define _GNU_SOURCE
#include "hp_load_int.h"

load_run L;

/* ---- clock ------------------------------------------------------------- */

int64_t ld_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die_usage(const char *fmt, const char *a)
{
    fprintf(stderr, "hp-load: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n(see hp-load --help)\n");
    exit(2);
}

static int connect_done(void)
{
    return L.next_to_connect >= L.conns && L.inflight_connects == 0;
}

/* Frames that beat their 200 are in the slot too. */
static int round_done(void)
{
    if (!L.round_200)
        return 0;
    rev_slot *s = ld_slot(L.round_hh, L.round_rev);
    return s->rev == L.round_rev && s->got >= L.round_need;
}

static int writers_idle(void)
{
    for (int w = 0; w < L.writers; w++)
        if (L.c[L.conns + w].state == S_WAIT)
            return 0;
    return 1;
}

/* ---- /proc ------------------------------------------------------------- */

static long proc_rss_kib(int pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* utime + stime of pid in seconds, -1 when unknown. */
static double proc_cpu_s(int pid)
{
    char p[64], buf[2048];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')');
    if (!q)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- main ---------------------------------------------------------------- */

static const char USAGE[] =
    "usage: hp-load --target HOST:PORT --secret S [--conns N] [--households H]\n"
    "               [--writers W] [--rounds R] [--duration SECS] [--server-pid PID]\n"
    "               [--label NAME] [--parallel N] [--settle SECS] [--json FILE]\n"
    "\n"
    "Load generator for hp-fake-server (or bench's hp-floor): N stream\n"
    "connections (HELLO, heartbeats), R fan-out rounds by one writer, then W\n"
    "writers in a closed loop for SECS seconds.  Prints a table and one JSON line.\n"
    "\n"
    "  --target HOST:PORT  the server (numeric IPv4)\n"
    "  --secret S          the server's JWT secret (tokens are minted here)\n"
    "  --conns N           stream connections, 0..50000 (default 1000)\n"
    "  --households H      households the connections and writers spread over,\n"
    "                      1..N (default 1: every listener hears every write)\n"
    "  --writers W         concurrent writers in the write phase, 0..1024 (default 1)\n"
    "  --rounds R          fan-out rounds (one PUT each, sequential), default 20\n"
    "  --duration SECS     length of the write phase, 0..3600 (default 5)\n"
    "  --server-pid PID    read the server's RSS and CPU from /proc/PID\n"
    "  --settle SECS       idle time before the RSS is read (default 1)\n"
    "  --parallel N        handshakes in flight at once, 1..4096 (default 256)\n"
    "  --label NAME        name of the run in the table and the JSON\n"
    "  --json FILE         also append the JSON line to FILE\n"
    "\n"
    "Exit: 0 done; 2 usage; 3 the target refused everything.\n";

static double num(const char *name, const char *v, double lo, double hi)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (!*v || *end || d < lo || d > hi) {
        char m[200];
        snprintf(m, sizeof m, "bad %s %%s (%g..%g)", name, lo, hi);
        die_usage(m, v);
    }
    return d;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void print_hist(FILE *o, const char *name, const lh_hist *h, double div, const char *unit)
{
    fprintf(o, "  %-22s n=%-8llu p50=%-9.2f p99=%-9.2f p999=%-9.2f max=%-9.2f %s\n", name,
            (unsigned long long)h->n, lh_pct(h, 50) / div, lh_pct(h, 99) / div,
            lh_pct(h, 99.9) / div, (double)h->max / div, unit);
}

static void json_hist(FILE *o, const char *name, const lh_hist *h)
{
    fprintf(o, ",\"%s\":{\"n\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}",
            name, (unsigned long long)h->n, lh_pct(h, 50) / 1000.0, lh_pct(h, 99) / 1000.0,
            lh_pct(h, 99.9) / 1000.0, (double)h->max / 1000.0);
}

int main(int argc, char **argv)
{
    L.conns = 1000;
    L.households = 1;
    L.writers = 1;
    L.rounds = 20;
    L.duration_s = 5;
    L.settle_s = 1;
    L.parallel = 256;
    L.label = "run";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            die_usage("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--target"))
            L.target_text = v;
        else if (!strcmp(a, "--secret"))
            L.secret = v;
        else if (!strcmp(a, "--conns"))
            L.conns = (int)num(a, v, 0, MAX_CONNS);
        else if (!strcmp(a, "--households"))
            L.households = (int)num(a, v, 1, MAX_CONNS);
        else if (!strcmp(a, "--writers"))
            L.writers = (int)num(a, v, 0, MAX_WRITERS);
        else if (!strcmp(a, "--rounds"))
            L.rounds = (int)num(a, v, 0, 100000);
        else if (!strcmp(a, "--duration"))
            L.duration_s = num(a, v, 0, 3600);
        else if (!strcmp(a, "--settle"))
            L.settle_s = num(a, v, 0, 3600);
        else if (!strcmp(a, "--parallel"))
            L.parallel = (int)num(a, v, 1, 4096);
        else if (!strcmp(a, "--server-pid"))
            L.server_pid = (int)num(a, v, 1, 1 << 30);
        else if (!strcmp(a, "--label"))
            L.label = v;
        else if (!strcmp(a, "--json"))
            L.json_path = v;
        else
            die_usage("unknown argument %s", a);
    }
    if (!L.target_text || !L.secret)
        die_usage("--target and --secret are required%s", "");
    {
        char host[64];
        int port = 0;
        const char *colon = strrchr(L.target_text, ':');
        if (!colon || (size_t)(colon - L.target_text) >= sizeof host)
            die_usage("bad --target %s (HOST:PORT)", L.target_text);
        memcpy(host, L.target_text, (size_t)(colon - L.target_text));
        host[colon - L.target_text] = 0;
        port = atoi(colon + 1);
        L.target.sin_family = AF_INET;
        L.target.sin_port = htons((uint16_t)port);
        if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &L.target.sin_addr) != 1)
            die_usage("bad --target %s (numeric IPv4 HOST:PORT)", L.target_text);
    }
    if (L.households > (L.conns > 0 ? L.conns : 1) && L.households > L.writers)
        die_usage("--households %s is more than --conns and --writers", argv[0]);
    raise_nofile();
    L.ep = epoll_create1(EPOLL_CLOEXEC);
    L.c = calloc((size_t)L.conns + (size_t)L.writers + 1, sizeof *L.c);
    L.hh_ready = calloc((size_t)L.households, sizeof *L.hh_ready);
    L.ring = calloc((size_t)L.households * RING, sizeof *L.ring);
    L.hbq = calloc((size_t)L.conns + 1, sizeof *L.hbq);
    L.hb_due = calloc((size_t)L.conns + 1, sizeof *L.hb_due);
    L.tokens_w = calloc((size_t)L.writers + 1, sizeof *L.tokens_w);
    if (!L.c || !L.hh_ready || !L.ring || !L.hbq || !L.hb_due || !L.tokens_w) {
        fprintf(stderr, "hp-load: out of memory\n");
        return 3;
    }
    for (int i = 0; i < L.conns + L.writers; i++)
        L.c[i].fd = -1;

    double cpu0 = L.server_pid ? proc_cpu_s(L.server_pid) : -1, self0 = self_cpu_s();
    long rss0 = L.server_pid ? proc_rss_kib(L.server_pid) : -1;

    /* 1. connect */
    L.phase = 1;
    int64_t t1 = ld_now_us();
    ld_run_until(connect_done, t1 + 300 * 1000000LL);
    int64_t t1e = ld_now_us();
    double setup_s = (double)(t1e - t1) / 1e6;
    L.phase = 2;
    if (L.conns > 0 && L.ready == 0) {
        fprintf(stderr, "hp-load: no stream connection became READY (%d failed)\n", L.failed);
        return 3;
    }
    /* 2. idle */
    ld_run_until(NULL, ld_now_us() + (int64_t)(L.settle_s * 1e6));
    long rss_idle = L.server_pid ? proc_rss_kib(L.server_pid) : -1;
    double cpu1 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;

    /* writers' connections (blocking connect, then non-blocking) */
    for (int w = 0; w < L.writers; w++) {
        lconn *k = &L.c[L.conns + w];
        k->kind = K_WRITER;
        k->idx = w;
        k->hh = w % L.households;
        char sub[32], hh[32];
        snprintf(sub, sizeof sub, "w%d", w);
        snprintf(hh, sizeof hh, "h%d", k->hh);
        int64_t nows = time(NULL);
        L.tokens_w[w] = hp_jwt_mint(L.secret, sub, hh, "load", nows - 5, nows + 86400);
        k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (k->fd < 0 || connect(k->fd, (struct sockaddr *)&L.target, sizeof L.target) != 0) {
            fprintf(stderr, "hp-load: writer %d cannot connect: %s\n", w, strerror(errno));
            return 3;
        }
        int one = 1;
        setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ld_set_nonblock(k->fd);
        k->state = S_IDLE;
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)(L.conns + w)};
        epoll_ctl(L.ep, EPOLL_CTL_ADD, k->fd, &e);
    }

    /* 3. fan-out rounds */
    L.phase = 3;
    int64_t t3 = ld_now_us();
    int rounds_done = 0, rounds_timeout = 0;
    for (int r = 0; r < L.rounds && L.writers > 0; r++) {
        int hh = r % L.households;
        lconn *k = &L.c[L.conns + (hh % L.writers)];
        if (k->state != S_IDLE)
            break;
        /* the writer of this round writes to household hh */
        k->hh = hh;
        char sub[32], hhs[32];
        snprintf(sub, sizeof sub, "w%d", k->idx);
        snprintf(hhs, sizeof hhs, "h%d", hh);
        free(L.tokens_w[k->idx]);
        int64_t nows = time(NULL);
        L.tokens_w[k->idx] = hp_jwt_mint(L.secret, sub, hhs, "load", nows - 5, nows + 86400);
        L.round_hh = hh;
        L.round_rev = 0;
        L.round_200 = 0;
        L.round_need = L.hh_ready[hh];
        ld_writer_send(k);
        ld_run_until(round_done, ld_now_us() + 10 * 1000000LL);
        if (round_done())
            rounds_done++;
        else
            rounds_timeout++;
        ld_run_until(writers_idle, ld_now_us() + 10 * 1000000LL);
    }
    int64_t t3e = ld_now_us();
    double cpu3 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;
    for (int w = 0; w < L.writers; w++) { /* back to their own household */
        lconn *k = &L.c[L.conns + w];
        k->hh = w % L.households;
        char sub[32], hhs[32];
        snprintf(sub, sizeof sub, "w%d", w);
        snprintf(hhs, sizeof hhs, "h%d", k->hh);
        free(L.tokens_w[w]);
        int64_t nows = time(NULL);
        L.tokens_w[w] = hp_jwt_mint(L.secret, sub, hhs, "load", nows - 5, nows + 86400);
    }

    /* 4. writes */
    L.phase = 4;
    int64_t ok3 = L.puts_ok, e3 = L.puts_err, c3 = L.puts_409;
    lh_hist put_fan = L.put_lat; /* fan-out rounds' PUTs, kept apart */
    lh_reset(&L.put_lat);
    int64_t t4 = ld_now_us();
    L.end4 = t4 + (int64_t)(L.duration_s * 1e6);
    int64_t end4 = L.end4;
    double self4 = self_cpu_s();
    if (L.writers > 0 && L.duration_s > 0) {
        for (int w = 0; w < L.writers; w++)
            if (L.c[L.conns + w].state == S_IDLE)
                ld_writer_send(&L.c[L.conns + w]);
        ld_run_until(NULL, end4);
        ld_run_until(writers_idle, ld_now_us() + 10 * 1000000LL);
    }
    int64_t t4e = ld_now_us();
    double cpu4 = L.server_pid ? proc_cpu_s(L.server_pid) : -1;
    double self_end = self_cpu_s();
    long rss_end = L.server_pid ? proc_rss_kib(L.server_pid) : -1;
    int64_t ok4 = L.puts_ok - ok3;
    double w_s = (double)(end4 - t4) / 1e6;
    double put_s = w_s > 0 ? (double)ok4 / w_s : 0;
    double wall = (double)(t4e - t1) / 1e6;
    double srv_cpu = cpu4 >= 0 && cpu0 >= 0 ? cpu4 - cpu0 : -1;
    double rss_per_conn = (rss_idle >= 0 && rss0 >= 0 && L.ready > 0)
                              ? (double)(rss_idle - rss0) * 1024.0 / L.ready
                              : -1;
    int alive = 0;
    for (int i = 0; i < L.conns; i++)
        alive += L.c[i].state == S_READY;

    FILE *o = stdout;
    fprintf(o, "hp-load %s: target %s, %d conns over %d households, %d writers\n", L.label,
            L.target_text, L.conns, L.households, L.writers);
    fprintf(o, "  connect: %d READY, %d failed in %.2f s = %.0f conn/s; %d still open at the end\n",
            L.ready, L.failed, setup_s, setup_s > 0 ? L.ready / setup_s : 0, alive);
    print_hist(o, "setup latency", &L.setup, 1000, "ms");
    if (L.server_pid)
        fprintf(o, "  server RSS: %ld KiB before, %ld KiB idle with %d streams (%.2f KiB/conn), "
                   "%ld KiB at the end\n",
                rss0, rss_idle, L.ready, rss_per_conn / 1024, rss_end);
    fprintf(o, "  fan-out rounds: %d done, %d timed out (%.2f s)\n", rounds_done, rounds_timeout,
            (double)(t3e - t3) / 1e6);
    print_hist(o, "fan-out (rounds)", &L.fanout, 1000, "ms");
    print_hist(o, "  after the 200", &L.after200, 1000, "ms");
    print_hist(o, "PUT latency (rounds)", &put_fan, 1000, "ms");
    fprintf(o, "  writes: %lld ok in %.2f s = %.0f PUT/s; 409: %lld, errors: %lld\n",
            (long long)ok4, w_s, put_s, (long long)(L.puts_409 - c3),
            (long long)(L.puts_err - e3));
    print_hist(o, "PUT latency (load)", &L.put_lat, 1000, "ms");
    print_hist(o, "fan-out (under load)", &L.fanout_load, 1000, "ms");
    print_hist(o, "  after the 200", &L.after200_load, 1000, "ms");
    fprintf(o, "  frames read %lld (events %lld, %lld before their 200), closes %lld\n",
            (long long)L.frames, (long long)L.events, (long long)L.frames_before_200,
            (long long)L.closes_seen);
    if (L.server_pid)
        fprintf(o, "  server CPU: %.2f s over %.2f s = %.0f%% (connect+idle %.2f s, rounds %.2f s, "
                   "writes %.2f s)\n",
                srv_cpu, wall, srv_cpu / wall * 100, cpu1 - cpu0, cpu3 - cpu1, cpu4 - cpu3);
    fprintf(o, "  hp-load CPU: %.2f s over %.2f s = %.0f%% (write phase %.0f%%)\n",
            self_end - self0, wall, (self_end - self0) / wall * 100,
            (double)(t4e - t4) > 0 ? (self_end - self4) / ((double)(t4e - t4) / 1e6) * 100 : 0);

    char *js = NULL;
    size_t jl = 0;
    FILE *j = open_memstream(&js, &jl);
    fprintf(j, "{\"label\":\"%s\",\"target\":\"%s\",\"conns\":%d,\"households\":%d,\"writers\":%d,"
               "\"ready\":%d,\"failed\":%d,\"open_at_end\":%d,\"setup_s\":%.3f,\"setup_rate\":%.1f",
            L.label, L.target_text, L.conns, L.households, L.writers, L.ready, L.failed, alive,
            setup_s, setup_s > 0 ? L.ready / setup_s : 0);
    json_hist(j, "setup", &L.setup);
    fprintf(j, ",\"rounds\":%d,\"rounds_timeout\":%d", rounds_done, rounds_timeout);
    json_hist(j, "fanout", &L.fanout);
    json_hist(j, "fanout_after_200", &L.after200);
    json_hist(j, "put_rounds", &put_fan);
    fprintf(j, ",\"put_ok\":%lld,\"put_s\":%.3f,\"puts_per_s\":%.1f,\"put_409\":%lld,"
               "\"put_errors\":%lld",
            (long long)ok4, w_s, put_s, (long long)(L.puts_409 - c3),
            (long long)(L.puts_err - e3));
    json_hist(j, "put", &L.put_lat);
    json_hist(j, "fanout_load", &L.fanout_load);
    json_hist(j, "fanout_load_after_200", &L.after200_load);
    fprintf(j, ",\"frames\":%lld,\"events\":%lld,\"frames_before_200\":%lld,\"closes\":%lld",
            (long long)L.frames, (long long)L.events, (long long)L.frames_before_200,
            (long long)L.closes_seen);
    fprintf(j, ",\"server_rss_kib\":{\"before\":%ld,\"idle\":%ld,\"end\":%ld},"
               "\"rss_per_conn_kib\":%.3f",
            rss0, rss_idle, rss_end, rss_per_conn >= 0 ? rss_per_conn / 1024 : -1);
    fprintf(j, ",\"server_cpu_s\":{\"connect\":%.2f,\"rounds\":%.2f,\"writes\":%.2f,\"total\":%.2f}",
            cpu1 - cpu0, cpu3 - cpu1, cpu4 - cpu3, srv_cpu);
    fprintf(j, ",\"wall_s\":%.3f,\"load_cpu_s\":%.2f,\"load_cpu_share\":%.3f}", wall,
            self_end - self0, (self_end - self0) / wall);
    fclose(j);
    printf("%s\n", js);
    if (L.json_path) {
        FILE *jf = fopen(L.json_path, "a");
        if (jf) {
            fprintf(jf, "%s\n", js);
            fclose(jf);
        }
    }
    free(js);
    for (int i = 0; i < L.conns + L.writers; i++)
        ld_conn_dead(&L.c[i]);
    for (int w = 0; w < L.writers; w++)
        free(L.tokens_w[w]);
    free(L.tokens_w);
    free(L.c);
    free(L.hh_ready);
    free(L.ring);
    free(L.hbq);
    free(L.hb_due);
    close(L.ep);
    return 0;
}

/*
 * real_run.c - scn_run_real(): a scenario against the real programs (the
 * lines they write become records in real_records.c).
 *
 * One hp-fake-server (ours, unless opts->server_url) and one hp-fake-client
 * process per scenario client.  Every line the programs write is captured
 * with its wall instant (ms since the scenario started): client stdout
 * (driver observables), client and server stderr (log lines).  Expectations
 * are evaluated on those records and on `status` answers / server state.
 *
 * Timing: virtual durations are multiplied by the time scale F.  Because
 * real processes need real time to react, an `expect` holds when it becomes
 * true within a slack (opts->slack_ms, default 3 s); histories only grow,
 * so a history expectation that held stays true.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_time.h"
#include "real.h"
#include "real_int.h"
#include "scn_internal.h"
#include "scn_run.h"

#include "real_world.h"

double rl_wt(rl_world *w) { return rl_now_ms() - w->t0; }


/* Reads everything available for up to ms (at least one poll). */
void rl_pump(rl_world *w, double ms)
{
    double end = rl_now_ms() + ms;
    do {
        struct pollfd pf[2 * RL_MAX_CLIENTS + 2];
        void *who[2 * RL_MAX_CLIENTS + 2];
        int kind[2 * RL_MAX_CLIENTS + 2];
        int n = 0;
        if (w->srv.err >= 0) {
            pf[n] = (struct pollfd){w->srv.err, POLLIN, 0};
            who[n] = NULL;
            kind[n++] = 0;
        }
        if (w->proxy.err >= 0) {
            pf[n] = (struct pollfd){w->proxy.err, POLLIN, 0};
            who[n] = NULL;
            kind[n++] = 3;
        }
        for (size_t i = 0; i < w->nc; i++) {
            if (w->c[i].p.out >= 0) {
                pf[n] = (struct pollfd){w->c[i].p.out, POLLIN, 0};
                who[n] = &w->c[i];
                kind[n++] = 1;
            }
            if (w->c[i].p.err >= 0) {
                pf[n] = (struct pollfd){w->c[i].p.err, POLLIN, 0};
                who[n] = &w->c[i];
                kind[n++] = 2;
            }
        }
        double left = end - rl_now_ms();
        if (n == 0) {
            rl_sleep_ms(left > 0 ? left : 0);
            return;
        }
        int r = poll(pf, (nfds_t)n, left > 0 ? (int)left + 1 : 0);
        if (r < 0 && errno != EINTR)
            return;
        for (int i = 0; r > 0 && i < n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (kind[i] == 3) {
                if (rl_read_lines(w->proxy.err, &w->proxy.ebuf, &w->proxy.elen, rl_on_proxy_err, w)) {
                    close(w->proxy.err);
                    w->proxy.err = -1;
                }
                continue;
            }
            if (kind[i] == 0) {
                if (rl_read_lines(w->srv.err, &w->srv.ebuf, &w->srv.elen, rl_on_server_err, w)) {
                    close(w->srv.err);
                    w->srv.err = -1;
                }
                continue;
            }
            rl_client *c = who[i];
            rl_cb cb = {w, c};
            if (kind[i] == 1 && rl_read_lines(c->p.out, &c->p.obuf, &c->p.olen, rl_on_client_out, &cb)) {
                close(c->p.out);
                c->p.out = -1;
            }
            if (kind[i] == 2 && rl_read_lines(c->p.err, &c->p.ebuf, &c->p.elen, rl_on_client_err, &cb)) {
                close(c->p.err);
                c->p.err = -1;
            }
        }
    } while (rl_now_ms() < end);
}

/* ---- processes ------------------------------------------------------------ */

int rl_fail(rl_world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(w->runtime_error);
    w->runtime_error = NULL;
    if (vasprintf(&w->runtime_error, fmt, ap) < 0)
        w->runtime_error = NULL;
    va_end(ap);
    return -1;
}

int rl_server_start(rl_world *w)
{
    char listen[64], db[600], sec[600], scale[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", w->port);
    snprintf(db, sizeof db, "%s/server.db", w->dir);
    snprintf(sec, sizeof sec, "%s/secret", w->dir);
    snprintf(scale, sizeof scale, "%g", w->F);
    char *argv[] = {w->bin_server, "--listen", listen, "--db", db, "--jwt-secret-file", sec,
                    "--time-scale", scale, "--admin", w->policy ? "--policy" : NULL, w->policy,
                    NULL};
    for (int attempt = 0; attempt < 50; attempt++) {
        int want_port = w->port;
        if (w->srv.ebuf || w->srv.err >= 0)
            rl_proc_close_fds(&w->srv);
        if (rl_proc_start(&w->srv, argv, 0) != 0)
            return rl_fail(w, "cannot start %s: %s", w->bin_server, strerror(errno));
        /* Ready = our own "listening" line (port 0 first: the kernel picks). */
        size_t nlogs = json_array_size(w->srv_logs);
        double end = rl_now_ms() + 15000;
        int ready = 0;
        while (rl_now_ms() < end && w->srv.err >= 0 && !ready) {
            rl_pump(w, 20);
            for (size_t i = nlogs; i < json_array_size(w->srv_logs); i++) {
                const char *m = json_string_value(json_object_get(json_array_get(w->srv_logs, i), "message"));
                if (!strcmp(m, "listening"))
                    ready = 1;
            }
        }
        if (ready && w->port) {
            w->srv_running = 1;
            snprintf(w->url, sizeof w->url, "http://127.0.0.1:%d", w->port);
            return 0;
        }
        rl_proc_stop(&w->srv, SIGKILL, 1000);
        if (!want_port)
            return rl_fail(w, "hp-fake-server did not start (no 'listening' line)");
        rl_sleep_ms(100); /* the port may still be held: try again */
    }
    return rl_fail(w, "hp-fake-server could not listen on port %d again", w->port);
}

void rl_server_stop(rl_world *w, int sig)
{
    if (!w->srv_running)
        return;
    rl_proc_stop(&w->srv, sig, 5000);
    rl_pump(w, 0);
    w->srv_running = 0;
}

/* Tokens: real_token.c. */

/* Starts a scenario client: hp-fake-client, or the foreign client of
 * --client-cmd (its template filled, run by sh -c; docs/CLIENT_DRIVER.md,
 * "The minimal contract").  deferred: our client opens its store and takes
 * commands but connects only at the `start` command (a scenario's edits
 * before `connect`); a foreign client has no such mode and simply starts. */
int rl_client_start(rl_world *w, rl_client *c, int deferred)
{
    char scale[32];
    snprintf(scale, sizeof scale, "%g", w->F);
    if (!c->token && c->spec->token != SCN_TOKEN_NONE)
        c->token = rl_mint_for_client(w, c->spec, c->spec->token_ttl_ms);
    char *argv[26];
    char *shell_cmd = NULL;
    int n = 0;
    c->unstarted = 0;
    /* A-4 / issue 11: the token goes to the program in a file only we can
     * read (--token-file, {token_file}), not on its command line, where
     * every local user sees it (ps). */
    char token_file[sizeof c->db + 8] = "";
    if (c->token) {
        snprintf(token_file, sizeof token_file, "%s.token", c->db);
        int fd = open(token_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t len = strlen(c->token);
        int ok = fd >= 0 && write(fd, c->token, len) == (ssize_t)len;
        if (fd >= 0 && close(fd) != 0)
            ok = 0;
        if (!ok)
            return rl_fail(w, "cannot write %s: %s", token_file, strerror(errno));
    }
    if (w->o->client_cmd) {
        const char *vars[] = {"server", c->url, "token", c->token ? c->token : "", "token_file",
                              token_file, "db", c->db,
                              "key_file", c->other_key ? c->key_other : c->key, "name",
                              c->spec->name, "time_scale", scale, "policy",
                              w->policy ? w->policy : "{}", "online",
                              c->offline ? "no" : "yes", NULL};
        shell_cmd = rl_template(w->o->client_cmd, vars);
        if (!shell_cmd)
            return rl_fail(w, "out of memory");
        argv[n++] = "/bin/sh";
        argv[n++] = "-c";
        argv[n++] = shell_cmd;
        argv[n] = NULL;
    } else {
        argv[n++] = w->bin_client;
        argv[n++] = "--server";
        argv[n++] = c->url;
        argv[n++] = "--db";
        argv[n++] = c->db;
        argv[n++] = "--key-file";
        argv[n++] = c->other_key ? c->key_other : c->key;
        argv[n++] = "--time-scale";
        argv[n++] = scale;
        argv[n++] = "--name";
        argv[n++] = c->spec->name;
        argv[n++] = "--frames";      /* the `frames` expectation */
        argv[n++] = "--http-bodies"; /* requests with body / response (SPEC §7: the wire) */
        if (deferred) {
            argv[n++] = "--no-start";
            c->unstarted = 1;
        }
        if (c->token) {
            argv[n++] = "--token-file";
            argv[n++] = token_file;
        }
        if (w->o->ca_file) {
            argv[n++] = "--ca-file";
            argv[n++] = (char *)w->o->ca_file;
        }
        if (w->policy) {
            argv[n++] = "--policy";
            argv[n++] = w->policy;
        }
        argv[n] = NULL;
    }
    rl_proc_close_fds(&c->p);
    rl_ws6_reset(w, c);
    int rc = rl_proc_start(&c->p, argv, 1);
    free(shell_cmd);
    if (rc != 0)
        return rl_fail(w, "cannot start %s: %s", w->o->client_cmd ? "--client-cmd" : w->bin_client,
                       strerror(errno));
    c->running = 1;
    return 0;
}

void rl_client_kill(rl_world *w, rl_client *c, int sig)
{
    if (!c->running)
        return;
    rl_proc_stop(&c->p, sig, 5000);
    rl_pump(w, 0);
    c->running = 0;
    json_array_clear(c->answers);
}

/* Sends one command; *ans gets its answer line (new reference) when ans is
 * not NULL.  -1 (runtime error) when the client does not answer in 15 s. */
int rl_client_cmd(rl_world *w, rl_client *c, json_t *cmd, json_t **ans)
{
    if (ans)
        *ans = NULL;
    if (!c->running || c->p.in < 0) {
        json_decref(cmd);
        return rl_fail(w, "client %s is not running (connect it first)", c->spec->name);
    }
    char *line = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (!line)
        return rl_fail(w, "out of memory");
    size_t l = strlen(line);
    char *nl = realloc(line, l + 2);
    if (!nl) {
        free(line);
        return rl_fail(w, "out of memory");
    }
    nl[l] = '\n';
    nl[l + 1] = '\0';
    int rc = rl_write_all(c->p.in, nl, l + 1);
    free(nl);
    if (rc != 0)
        return rl_fail(w, "client %s: cannot write its stdin (did it exit?)", c->spec->name);
    double end = rl_now_ms() + 15000;
    while (json_array_size(c->answers) == 0) {
        if (rl_now_ms() > end || c->p.out < 0)
            return rl_fail(w, "client %s did not answer a command", c->spec->name);
        rl_pump(w, 10);
    }
    if (ans)
        *ans = json_incref(json_array_get(c->answers, 0));
    json_array_remove(c->answers, 0);
    return 0;
}

/* Actions: real_actions.c. */

/* ---- the run -------------------------------------------------------------- */

static void set_failure(scn_result *r, rl_world *w, int step, const scn_node *at, const char *msg)
{
    free(r->failure);
    free(r->failure_loc);
    r->failure = strdup(msg);
    r->failure_loc = NULL;
    if (asprintf(&r->failure_loc, "%s:%d", w->s->file, at ? at->line : 0) < 0)
        r->failure_loc = NULL;
    r->failure_step = step;
    r->passed = 0;
}

/* Finds the programs: under --bin-dir, else next to hp-harness (a build
 * tree: EXE_DIR/../fake_server/..., or an install dir: EXE_DIR/...). */
static int find_bins(rl_world *w)
{
    char bases[2][PATH_MAX - 64];
    int nb = 0;
    if (w->o->bin_dir) {
        snprintf(bases[nb++], sizeof bases[0], "%s", w->o->bin_dir);
    } else {
        char exe[PATH_MAX - 128];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 4);
        if (n <= 0)
            return rl_fail(w, "cannot find hp-harness's own path (use --bin-dir)");
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(bases[nb++], sizeof bases[0], "%s/..", exe);
        snprintf(bases[nb++], sizeof bases[0], "%s", exe);
    }
    const char *srv[] = {"%s/fake_server/hp-fake-server", "%s/hp-fake-server"};
    const char *cli[] = {"%s/fake_client/hp-fake-client", "%s/hp-fake-client"};
    const char *prx[] = {"%s/fault_proxy/hp-fault-proxy", "%s/hp-fault-proxy"};
    w->bin_server[0] = w->bin_client[0] = w->bin_proxy[0] = '\0';
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < 2; i++) {
            char p[PATH_MAX + 64];
            snprintf(p, sizeof p, srv[i], bases[b]);
            if (!w->bin_server[0] && access(p, X_OK) == 0)
                snprintf(w->bin_server, sizeof w->bin_server, "%s", p);
            snprintf(p, sizeof p, cli[i], bases[b]);
            if (!w->bin_client[0] && access(p, X_OK) == 0)
                snprintf(w->bin_client, sizeof w->bin_client, "%s", p);
            snprintf(p, sizeof p, prx[i], bases[b]);
            if (!w->bin_proxy[0] && access(p, X_OK) == 0)
                snprintf(w->bin_proxy, sizeof w->bin_proxy, "%s", p);
        }
    }
    if (!w->bin_client[0] || (w->own && !w->bin_server[0]))
        return rl_fail(w, "hp-fake-client%s not found under %s (use --bin-dir)",
                       w->own ? "/hp-fake-server" : "", bases[0]);
    if (!w->bin_proxy[0] && !w->o->no_proxy && (!w->o->server_url ||
                                                 !strncmp(w->o->server_url, "http://", 7)))
        return rl_fail(w, "hp-fault-proxy not found under %s (build it, or run with --no-proxy)",
                       bases[0]);
    return 0;
}

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(data, f);
    return fclose(f);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(b, 1, nbytes, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = got; i < nbytes; i++)
        b[i] = (unsigned char)(rand() ^ (int)i);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static int setup(rl_world *w)
{
    snprintf(w->dir, sizeof w->dir, "%s/hp-real-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(w->dir))
        return rl_fail(w, "mkdtemp: %s", strerror(errno));
    if (find_bins(w) != 0)
        return -1;
    if (w->own) {
        random_hex(w->secret, 32);
        w->secret_used = w->secret;
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/secret", w->dir);
        if (write_file(p, w->secret) != 0)
            return rl_fail(w, "cannot write %s", p);
    } else {
        w->secret_used = w->o->jwt_secret;
        if (!w->o->token_cmd && (!w->secret_used || !*w->secret_used))
            return rl_fail(w, "--server needs --jwt-secret, --jwt-secret-file or --token-cmd "
                              "to mint tokens");
        /* --server-reset: a team that wants a clean server between scenarios
         * (fresh names below make it optional, not required). */
        if (w->o->server_reset) {
            int st = rl_run_shell(w->o->server_reset, NULL, 0);
            if (st != 0)
                return rl_fail(w, "--server-reset command failed (exit %d): %s", st,
                               w->o->server_reset);
        }
        snprintf(w->url, sizeof w->url, "%s", w->o->server_url);
        char *body = NULL;
        int st = rl_http(w->url, "GET", "/api/v0.2/tasks?since=0", NULL, NULL, 10000, &body);
        free(body);
        if (st == RL_HTTP_TLS_FAILED)
            return rl_fail(w, "TLS with %s failed: certificate not trusted or not for this "
                              "host (give its CA with --ca-file)", w->url);
        if (st < 0)
            return rl_fail(w, "cannot reach the server %s (no HTTP answer)", w->url);
        char hex[9];
        random_hex(hex, 4);
        snprintf(w->hh_suffix, sizeof w->hh_suffix, "-r%s", hex);
        /* Shown in the reports: which households this run used there. */
        rl_trace_add(w, "harness", "observe",
                  json_pack("{s:{s:s,s:s}}", "info", "kind", "run_prefix", "household_suffix",
                            w->hh_suffix));
    }
    if (w->s->nclients > RL_MAX_CLIENTS)
        return rl_fail(w, "at most %d clients in real mode", RL_MAX_CLIENTS);
    w->nc = w->s->nclients;
    for (size_t i = 0; i < w->nc; i++) {
        rl_client *c = &w->c[i];
        c->spec = &w->s->clients[i];
        c->p.in = c->p.out = c->p.err = -1;
        c->p.pid = -1;
        c->events = json_array();
        c->notes = json_array();
        c->closed = json_array();
        c->attempts = json_array();
        c->frames = json_array();
        c->http = json_array();
        c->logs = json_array();
        c->answers = json_array();
        c->wire_frames = json_array();
        c->wire_http = json_array();
        c->conn_hist = json_array();
        c->wire_ws6 = json_array();
        c->wire_streams = json_object();
        c->wire_closes = json_array();
        snprintf(c->db, sizeof c->db, "%s/c%zu.db", w->dir, i);
        snprintf(c->key, sizeof c->key, "%s/c%zu.key", w->dir, i);
        snprintf(c->key_other, sizeof c->key_other, "%s/c%zu.other.key", w->dir, i);
        char hex[65];
        random_hex(hex, 32);
        if (write_file(c->key, hex) != 0)
            return rl_fail(w, "cannot write %s", c->key);
        random_hex(hex, 32);
        if (write_file(c->key_other, hex) != 0)
            return rl_fail(w, "cannot write %s", c->key_other);
    }
    if (w->own && rl_server_start(w) != 0)
        return -1;
    /* The network between clients and server (real_proxy.c). */
    w->proxy_pending = json_array();
    if (rl_proxy_wanted(w) && rl_proxy_start(w) != 0)
        return -1;
    for (size_t i = 0; i < w->nc; i++) {
        rl_client *c = &w->c[i];
        snprintf(c->url, sizeof c->url, "%s", w->url);
        if (w->proxy_running && rl_proxy_add_client(w, c) != 0)
            return -1;
    }
    return 0;
}

static void rm_tree(const char *dir)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
    rl_proc p;
    if (rl_proc_start(&p, argv, 0) == 0) {
        rl_proc_stop(&p, 0, 10000);
        rl_proc_close_fds(&p);
    }
}

static void teardown(rl_world *w)
{
    for (size_t i = 0; i < w->nc; i++) {
        rl_client *c = &w->c[i];
        rl_client_kill(w, c, SIGTERM);
        rl_proc_close_fds(&c->p);
        json_decref(c->events);
        json_decref(c->notes);
        json_decref(c->closed);
        json_decref(c->attempts);
        json_decref(c->frames);
        json_decref(c->http);
        json_decref(c->logs);
        json_decref(c->answers);
        json_decref(c->wire_frames);
        json_decref(c->wire_http);
        json_decref(c->conn_hist);
        json_decref(c->wire_ws6);
        json_decref(c->wire_streams);
        json_decref(c->wire_closes);
        free(c->token);
    }
    rl_proxy_stop(w);
    json_decref(w->proxy_pending);
    rl_server_stop(w, SIGTERM);
    rl_proc_close_fds(&w->srv);
    if (w->dir[0] && getenv("HP_REAL_KEEP") == NULL)
        rm_tree(w->dir);
}

/* Invariants: real_check.c. */

/* Runs one step's actions (possibly repeated). */
static int do_actions(rl_world *w, const scn_node *st, long rep)
{
    for (long i = rep > 0 ? 1 : -1; rep > 0 ? i <= rep : i == -1; i++) {
        for (size_t j = 0; j < st->n; j++) {
            const char *k = st->keys[j]->str;
            if (!strcmp(k, "repeat") || !strcmp(k, "note"))
                continue;
            json_t *v = scn_node_json_i(st->items[j], i);
            json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
            size_t q;
            json_t *a;
            int rc = 0;
            json_array_foreach(list, q, a) {
                if (!strcmp(k, "server"))
                    rc = rl_server_action(w, a);
                else {
                    rl_client *c = rl_client_by_name(w, k);
                    rc = c ? rl_client_action(w, c, a) : rl_fail(w, "unknown actor %s", k);
                }
                if (rc)
                    break;
            }
            json_decref(list);
            json_decref(v);
            if (rc)
                return -1;
        }
    }
    return 0;
}

int scn_run_real(const scn_scenario *s, const scn_run_opts *opts, scn_result *r)
{
    r->id = strdup(s->id);
    r->name = strdup(s->name);
    r->file = strdup(s->file);
    r->rules = json_deep_copy(s->rules);
    r->tags = json_deep_copy(s->tags);
    r->trace = json_array();
    r->checks = json_array();
    r->failure_step = -1;
    rl_tls_set_ca_file(opts ? opts->ca_file : NULL);
    char *why = scn_real_unsupported(s, opts);
    if (why) {
        r->skipped = 1;
        r->passed = 0;
        r->failure = why;
        return 0;
    }
    rl_world *w = calloc(1, sizeof *w);
    if (!w) {
        r->failure = strdup("out of memory");
        return -1;
    }
    w->s = s;
    w->o = opts;
    w->F = opts->time_scale > 0 ? opts->time_scale : SCN_REAL_DEFAULT_SCALE;
    w->slack = opts->slack_ms > 0 ? opts->slack_ms : 3000;
    w->settle = opts->settle_ms > 0 ? opts->settle_ms : 100;
    w->own = !opts->server_url;
    w->srv.in = w->srv.out = w->srv.err = -1;
    w->srv.pid = -1;
    /* Before anything can pump: a zeroed rl_proc would be read as fd 0. */
    w->proxy.in = w->proxy.out = w->proxy.err = -1;
    w->proxy.pid = -1;
    w->srv_logs = json_array();
    w->srv_requests = json_array();
    w->marks = json_object();
    w->mark_seqs = json_object();
    w->times = json_object();
    w->tokens = json_array();
    w->trace = r->trace;
    /* The scenario's overrides go to both programs (each core uses its
     * own keys); they scale them by --time-scale like the defaults. */
    if (s->policy_json && json_object_size(s->policy_json) > 0)
        w->policy = json_dumps(s->policy_json, JSON_COMPACT | JSON_SORT_KEYS);
    w->t0 = rl_now_ms();
    int rc = 0;
    if (setup(w) != 0) {
        rc = -1;
        goto done;
    }
    r->passed = 1;
    w->anchor_t = rl_now_ms();
    w->anchor_v = 0;
    /* After a failed expectation the steps go on (every failure becomes a
     * check; the first is the scenario's); a failed action stops them. */
    double step_t0 = 0;
    for (size_t i = 0; i < s->steps->n; i++) {
        const scn_node *st = s->steps->items[i];
        if (i > 0)
            scn_step_wall(r, rl_now_ms() - step_t0);
        step_t0 = rl_now_ms();
        char *txt = scn_node_text(st);
        rl_trace_add(w, "harness", "step", json_pack("{s:i,s:i,s:s}", "index", (int)i, "line",
                                                  st->line, "text", txt ? txt : ""));
        free(txt);
        const scn_node *v;
        if ((v = scn_map_get(st, "wait"))) {
            int64_t ms = 0;
            scn_duration(v, &ms);
            w->vnow += ms;
            double target = w->anchor_t + (double)(w->vnow - w->anchor_v) * w->F;
            if ((double)ms * w->F < w->settle) {
                /* Shorter than real propagation under load: let at least
                 * `settle` pass, then take the schedule from here. */
                double floor_end = rl_now_ms() + w->settle;
                rl_pump(w, (target > floor_end ? target : floor_end) - rl_now_ms());
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            } else if (target > rl_now_ms()) {
                rl_pump(w, target - rl_now_ms());
                double late = rl_now_ms() - target; /* how late this machine wakes us */
                if (late > w->jitter_ms)
                    w->jitter_ms = late;
            } else { /* behind schedule: start again from here */
                rl_pump(w, 0);
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            }
        } else if ((v = scn_map_get(st, "mark"))) {
            json_object_set_new(w->marks, scn_str(v) ? scn_str(v) : "", json_real(rl_wt(w)));
            /* The journal's clock is whole epoch ms: a request 0.3 ms after
             * the mark could read as before it.  Its sequence cannot. */
            if (w->proxy_running) {
                rl_proxy_sync(w);
                json_object_set_new(w->mark_seqs, scn_str(v) ? scn_str(v) : "",
                                    json_integer(w->proxy_seq));
            }
        } else if ((v = scn_map_get(st, "expect")) || (v = scn_map_get(st, "expect_log")) ||
                   (v = scn_map_get(st, "wait_until"))) {
            int is_log = scn_map_get(st, "expect_log") != NULL;
            int until = scn_map_get(st, "wait_until") != NULL;
            double budget = w->slack;
            int64_t to = 5 * 60000; /* wait_until's timeout, virtual ms */
            if (until) {
                const scn_node *tn = scn_map_get(v, "timeout");
                if (tn)
                    scn_duration(tn, &to);
                budget += (double)to * w->F * 1.5;
            }
            double start = rl_now_ms(), end = start + budget;
            rl_item items[RL_MAX_ITEMS];
            rl_out outs[RL_MAX_ITEMS];
            int ni = rl_items(w, v, is_log, items, RL_MAX_ITEMS);
            memset(outs, 0, sizeof outs);
            int ok, polled = 0;
            for (;;) {
                /* Every observable assertion of the step must hold at once;
                 * real processes need real time, so poll within the slack. */
                ok = 1;
                rl_proxy_sync(w); /* what crossed the wire so far */
                for (int k = 0; k < ni; k++)
                    if (!items[k].why) {
                        items[k].ok = rl_eval_item(w, v, &items[k], &outs[k]);
                        ok &= items[k].ok;
                    }
                if (ok || rl_now_ms() > end || w->runtime_error)
                    break;
                rl_pump(w, 25);
                polled = 1;
            }
            if (until)
                w->vnow += (int64_t)((rl_now_ms() - start) / w->F);
            if (polled || until) { /* real time the scenario did not plan for */
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            }
            if (w->runtime_error) {
                for (int k = 0; k < ni; k++)
                    rl_out_clear(&outs[k]);
                rc = -1;
                break;
            }
            for (int k = 0; k < ni; k++) {
                rl_item *x = &items[k];
                rl_out *o = &outs[k];
                char text[160];
                snprintf(text, sizeof text, "%s.%s", x->actor ? x->actor : "all", x->key);
                int line = o->at ? o->at->line : x->node ? x->node->line : st->line;
                json_t *a = json_pack("{s:i,s:b,s:s,s:s}", "line", line, "passed",
                                      !x->why && x->ok, "text", text, "verdict",
                                      x->why ? "unobservable" : x->ok ? "passed" : "failed");
                if (x->why) {
                    json_object_set_new(a, "reason", json_string(x->why));
                    r->partial = 1;
                } else if (!x->ok) {
                    json_object_set_new(a, "expected",
                                        json_string(o->expected ? o->expected : ""));
                    json_object_set_new(a, "actual", json_string(o->actual ? o->actual : ""));
                }
                rl_trace_add(w, "harness", "assert", a);
                char name[320];
                snprintf(name, sizeof name, "%s:%d %s", s->file, line, text);
                /* a failed check says what it expected and got, as in sim */
                char *det = NULL;
                if (!x->why && !x->ok &&
                    asprintf(&det, "expected %s, got %s", o->expected ? o->expected : "?",
                             o->actual ? o->actual : "?") < 0)
                    det = NULL;
                json_t *chk = json_pack("{s:s,s:b,s:s,s:s}", "name", name, "passed",
                                        !x->why && x->ok, "verdict",
                                        x->why ? "unobservable" : x->ok ? "passed" : "failed",
                                        "detail", x->why ? x->why : det ? det : "");
                free(det);
                json_array_append_new(r->checks, chk);
                if (!x->why && !x->ok && r->passed) {
                    /* The simulator's words for the same failure. */
                    char *msg = NULL, within[64] = "";
                    if (until) {
                        char td[32];
                        hp_duration_format(to, td, sizeof td);
                        snprintf(within, sizeof within, " not true within %s:", td);
                    }
                    if (asprintf(&msg, "%s:%s expected %s, got %s", text, within,
                                 o->expected ? o->expected : "?",
                                 o->actual ? o->actual : "?") < 0)
                        msg = NULL;
                    set_failure(r, w, (int)i, o->at ? o->at : x->node ? x->node : st,
                                msg ? msg : "expectation failed");
                    free(msg);
                }
                rl_out_clear(o);
            }
        } else {
            const scn_node *rep = scn_map_get(st, "repeat");
            int64_t n = 0;
            if (rep)
                scn_get_int(rep, &n);
            if (do_actions(w, st, rep ? (long)n : 0) != 0) {
                if (r->passed) /* after a failed expectation that failure stands */
                    rc = -1;
                break;
            }
            rl_pump(w, 0);
            /* Starting or stopping a program takes real time that is no
             * part of the scenario: the schedule starts again after it. */
            if (w->slow_action) {
                w->slow_action = 0;
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            }
        }
    }
    if (step_t0 > 0)
        scn_step_wall(r, rl_now_ms() - step_t0);
    if (rc == 0) {
        rl_pump(w, 50);
        rl_proxy_sync(w);
        char *inv = rl_invariants(w, r);
        if (inv && r->passed) {
            set_failure(r, w, -1, NULL, inv);
            free(r->failure_loc);
            r->failure_loc = strdup(s->file);
        }
        free(inv);
    }
done:
    if (rc != 0) {
        r->passed = 0;
        free(r->failure);
        r->failure = strdup(w->runtime_error ? w->runtime_error : "runtime error");
    }
    r->sim_ms = w->vnow;
    teardown(w);
    free(w->runtime_error);
    json_decref(w->srv_logs);
    json_decref(w->srv_requests);
    json_decref(w->marks);
    json_decref(w->mark_seqs);
    json_decref(w->times);
    json_decref(w->tokens);
    free(w->policy);
    free(w);
    /* The failure texts of polls (chk_jtxt's ring) are per thread: a
     * --jobs worker that ends with them held leaks them (LeakSanitizer saw
     * 96 bytes in 8 strings after harness_real_suite).  The simulator
     * frees them at the end of each run the same way. */
    scn_expect_cleanup();
    return rc;
}

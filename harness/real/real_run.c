/*
 * real_run.c - scn_run_real(): a scenario against the real programs.
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

/* ---- unsupported keys (skip) ------------------------------------------ */

typedef struct rl_skip {
    json_t *why; /* array of strings */
} rl_skip;

static void skip_add(rl_skip *k, const scn_node *at, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t i;
    json_t *v;
    json_array_foreach(k->why, i, v) {
        if (!strncmp(json_string_value(v), buf, strlen(buf)))
            return; /* once per key */
    }
    char *s = NULL;
    if (asprintf(&s, "%s (line %d)", buf, at ? at->line : 0) >= 0) {
        json_array_append_new(k->why, json_string(s));
        free(s);
    }
}

static void scan_action(rl_skip *k, const scn_node *a, int server, int own, int proxy,
                        int foreign_client)
{
    const char *name = NULL;
    const scn_node *arg = NULL;
    if (a->kind == SCN_SCALAR)
        name = a->str;
    else if (a->kind == SCN_MAP && a->n == 1) {
        name = a->keys[0]->str;
        arg = a->items[0];
    }
    if (!name)
        return;
    if (server) {
        if (!own)
            skip_add(k, a, "server: %s on a foreign server", name);
        else if (!strcmp(name, "fail_requests") && scn_map_get(arg, "retry_after"))
            skip_add(k, a, "fail_requests.retry_after (Retry-After is whole seconds on the "
                           "wire: it cannot be time-scaled)");
        return;
    }
    if (!proxy && (!strcmp(name, "latency") || !strcmp(name, "link")))
        skip_add(k, a, "client %s (a network fault needs hp-fault-proxy: not with --no-proxy "
                       "or an https:// server)", name);
    if (!strcmp(name, "drop") && foreign_client) {
        const char *msg = scn_str(scn_map_get(arg, "message"));
        if (msg && !strcmp(msg, "request"))
            skip_add(k, a, "drop of a request before it reaches the proxy: only our own "
                           "client's socket layer can lose it");
    }
}

char *scn_real_unsupported(const scn_scenario *s, const scn_run_opts *o)
{
    rl_skip k = {json_array()};
    int own = !(o && o->server_url);
    int proxy = !(o && o->no_proxy) && !(o && o->server_url &&
                                         strncmp(o->server_url, "http://", 7));
    int foreign_client = o && o->client_cmd;
    /* Policy overrides reach our programs through --policy.  A foreign
     * server runs its own policy: overrides of keys the server applies
     * cannot be honoured there (client-side keys still can). */
    if (!own) {
        static const char *const server_keys[] = {"heartbeat_interval", "heartbeat_misses",
                                                  "hello_timeout", "lock_ttl", "max_frame",
                                                  "max_body", "event_retain", NULL};
        char keys[256] = "";
        const char *key;
        json_t *v;
        json_object_foreach(s->policy_json, key, v) {
            for (const char *const *q = server_keys; *q; q++)
                if (!strcmp(*q, key)) {
                    size_t l = strlen(keys);
                    snprintf(keys + l, sizeof keys - l, "%s%s", l ? ", " : "", key);
                }
        }
        if (keys[0])
            skip_add(&k, scn_map_get(s->root, "policy"),
                     "policy overrides of the server (%s) on a foreign server", keys);
    }
    /* An author's mark: the scenario asserts on instants finer than
     * real-world jitter (an exact boundary, a crash between two packets). */
    size_t ti;
    json_t *tag;
    json_array_foreach(s->tags, ti, tag)
        if (json_is_string(tag) && !strcmp(json_string_value(tag), "sim-only"))
            skip_add(&k, scn_map_get(s->root, "tags"),
                     "tagged sim-only (it asserts on instants finer than real-time jitter)");
    /* token_ttl runs: tokens are minted on a whole-second boundary of the
     * scaled schedule (mint_for_client), except through --token-cmd. */
    for (size_t i = 0; o && o->token_cmd && i < s->nclients; i++)
        if (s->clients[i].token_ttl_ms != RL_DEFAULT_TTL_MS)
            skip_add(&k, scn_map_get(s->root, "clients"),
                     "token_ttl with --token-cmd (the command's exp is whole seconds, not "
                     "aligned to the scaled schedule)");
    int64_t waited = 0;
    for (size_t i = 0; s->steps && i < s->steps->n; i++) {
        const scn_node *st = s->steps->items[i];
        if (st->kind != SCN_MAP)
            continue;
        int64_t ms;
        if (scn_map_get(st, "wait") && scn_duration(scn_map_get(st, "wait"), &ms) == 0)
            waited += ms;
        for (size_t j = 0; j < st->n; j++) {
            const char *key = st->keys[j]->str;
            const scn_node *v = st->items[j];
            /* Expectations never skip a scenario: an assertion this target
             * cannot show is `unobservable` on its own (real_expect.c). */
            if (!strcmp(key, "server") || scn_client_index(s, key) >= 0) {
                int server = !strcmp(key, "server");
                if (v->kind == SCN_SEQ)
                    for (size_t m = 0; m < v->n; m++)
                        scan_action(&k, v->items[m], server, own, proxy, foreign_client);
                else
                    scan_action(&k, v, server, own, proxy, foreign_client);
            }
        }
    }
    double F = o && o->time_scale > 0 ? o->time_scale : SCN_REAL_DEFAULT_SCALE;
    double max_s = o && o->max_wall_s > 0 ? o->max_wall_s : 120;
    if ((double)waited * F / 1000.0 > max_s)
        skip_add(&k, s->steps, "waits of %.0f virtual s = %.0f s of real time at time scale %g "
                 "(limit %.0f s: lower --time-scale or raise --max-wall)",
                 (double)waited / 1000.0, (double)waited * F / 1000.0, F, max_s);
    char *out = NULL;
    if (json_array_size(k.why)) {
        size_t len = 0;
        size_t i;
        json_t *v;
        json_array_foreach(k.why, i, v) len += strlen(json_string_value(v)) + 2;
        out = malloc(len + 64);
        if (out) {
            strcpy(out, "real mode cannot run: ");
            json_array_foreach(k.why, i, v) {
                if (i)
                    strcat(out, "; ");
                strcat(out, json_string_value(v));
            }
        }
    }
    json_decref(k.why);
    return out;
}

/* ---- records and line handlers ----------------------------------------- */

static void trace_add(rl_world *w, const char *actor, const char *type, json_t *extra)
{
    json_t *e = json_pack("{s:I,s:s,s:s}", "t", (json_int_t)(rl_wt(w) / w->F), "actor", actor,
                          "type", type);
    if (extra) {
        json_object_update(e, extra);
        json_decref(extra);
    }
    json_array_append_new(w->trace, e);
}

/* "TIME LEVEL ACTOR MESSAGE fields..." -> a record, NULL when not that form. */
static json_t *parse_log(rl_world *w, const char *line)
{
    char tm[64], lvl[16], actor[128], msg[128];
    int off = 0;
    if (sscanf(line, "%63s %15s %127s %127s%n", tm, lvl, actor, msg, &off) != 4)
        return NULL;
    const char *fields = line + off;
    while (*fields == ' ')
        fields++;
    char *text = NULL;
    if (asprintf(&text, "%s %s", msg, fields) < 0)
        return NULL;
    json_t *r = json_pack("{s:f,s:s,s:s,s:s,s:s,s:s}", "t", rl_wt(w), "level", lvl, "actor", actor,
                          "message", msg, "text", text, "line", line);
    free(text);
    return r;
}

/* key=value from a log line's fields ("" when absent). */
static void log_field(const char *text, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    size_t kl = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p++) {
        if ((p == text || p[-1] == ' ') && p[kl] == '=') {
            p += kl + 1;
            size_t n = strcspn(p, " ");
            if (n >= len)
                n = len - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
}

static const char *client_name_of_user(rl_world *w, const char *user)
{
    for (size_t i = 0; i < w->nc; i++)
        if (!strcmp(w->c[i].spec->user, user))
            return w->c[i].spec->name;
    return user;
}

static void on_server_err(void *ud, const char *line)
{
    rl_world *w = ud;
    json_t *r = parse_log(w, line);
    if (!r)
        return;
    const char *msg = json_string_value(json_object_get(r, "message"));
    const char *text = json_string_value(json_object_get(r, "text"));
    if (!strcmp(msg, "listening") && !w->port) {
        char url[200];
        log_field(text, "url", url, sizeof url);
        const char *c = strrchr(url, ':');
        if (c)
            w->port = atoi(c + 1);
    }
    if (!strcmp(msg, "request")) {
        char m[16], path[256], st[16], user[128], idem[256];
        log_field(text, "method", m, sizeof m);
        log_field(text, "path", path, sizeof path);
        log_field(text, "status", st, sizeof st);
        log_field(text, "user", user, sizeof user);
        log_field(text, "idem", idem, sizeof idem);
        json_t *rec = json_pack("{s:f,s:s,s:s,s:i,s:s}", "t", rl_wt(w), "method", m, "path", path,
                                "status", atoi(st), "from", client_name_of_user(w, user));
        if (idem[0])
            json_object_set_new(rec, "idem_key", json_string(idem));
        json_array_append_new(w->srv_requests, rec);
    }
    trace_add(w, "server", "log", json_pack("{s:O,s:s}", "level", json_object_get(r, "level"), "line", line));
    json_array_append_new(w->srv_logs, r);
}

typedef struct rl_cb {
    rl_world *w;
    rl_client *c;
} rl_cb;

static void on_client_err(void *ud, const char *line)
{
    rl_cb *cb = ud;
    json_t *r = parse_log(cb->w, line);
    if (!r)
        return;
    trace_add(cb->w, cb->c->spec->name, "log",
              json_pack("{s:O,s:s}", "level", json_object_get(r, "level"), "line", line));
    json_array_append_new(cb->c->logs, r);
}

static void on_client_out(void *ud, const char *line)
{
    rl_cb *cb = ud;
    rl_client *c = cb->c;
    rl_world *w = cb->w;
    json_t *o = json_loads(line, 0, NULL);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return;
    }
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!kind)
        kind = "";
    json_object_set_new(o, "t", json_real(rl_wt(w)));
    if (!strcmp(kind, "ok") || !strcmp(kind, "error") || !strcmp(kind, "status") ||
        !strcmp(kind, "cached")) {
        json_array_append(c->answers, o);
    } else if (!strcmp(kind, "frame")) {
        json_array_append(c->frames, o);
        trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "event")) {
        json_array_append(c->events, o);
        trace_add(w, c->spec->name, "event", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "notification")) {
        json_array_append(c->notes, o);
        trace_add(w, c->spec->name, "notify", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "queue")) {
        int len = (int)json_integer_value(json_object_get(o, "length"));
        if (len > c->max_queue)
            c->max_queue = len;
        trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "http")) {
        json_object_set_new(o, "from", json_string(c->spec->name));
        json_array_append(c->http, o);
        trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    } else if (!strcmp(kind, "connection")) {
        const char *state = json_string_value(json_object_get(o, "state"));
        c->ready = state && !strcmp(state, "ready");
        snprintf(c->state, sizeof c->state, "%s", state ? state : "");
        if (state && !strcmp(state, "connecting")) { /* WS-6: the core's every attempt */
            json_array_append_new(c->attempts, json_pack("{s:f,s:s}", "t", rl_wt(w), "state", state));
            json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind",
                                                          "attempt"));
        }
        if (state && !strcmp(state, "closed"))
            json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind",
                                                          "loss"));
        if (state && !strcmp(state, "closed")) {
            int code = (int)json_integer_value(json_object_get(o, "code"));
            /* `by` is inferred: 0 = network, 1000 = the app (offline);
             * 4008 may be either side's watchdog, so it carries no `by`. */
            json_t *rec = json_pack("{s:f,s:i}", "t", rl_wt(w), "code", code);
            if (code == 0)
                json_object_set_new(rec, "by", json_string("network"));
            else if (code == 1000)
                json_object_set_new(rec, "by", json_string("client"));
            else if (code != 4008)
                json_object_set_new(rec, "by", json_string("server"));
            json_array_append_new(c->closed, rec);
        }
        trace_add(w, c->spec->name, "observe", json_pack("{s:O}", "info", o));
    }
    json_decref(o);
}

/* Reads everything available for up to ms (at least one poll). */
/* hp-fault-proxy's log lines (warnings only) go to the trace. */
static void on_proxy_err(void *ud, const char *line)
{
    rl_world *w = ud;
    trace_add(w, "fault_proxy", "log", json_pack("{s:s,s:s}", "level", "WARNING", "line", line));
}

static void pump(rl_world *w, double ms)
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
                if (rl_read_lines(w->proxy.err, &w->proxy.ebuf, &w->proxy.elen, on_proxy_err, w)) {
                    close(w->proxy.err);
                    w->proxy.err = -1;
                }
                continue;
            }
            if (kind[i] == 0) {
                if (rl_read_lines(w->srv.err, &w->srv.ebuf, &w->srv.elen, on_server_err, w)) {
                    close(w->srv.err);
                    w->srv.err = -1;
                }
                continue;
            }
            rl_client *c = who[i];
            rl_cb cb = {w, c};
            if (kind[i] == 1 && rl_read_lines(c->p.out, &c->p.obuf, &c->p.olen, on_client_out, &cb)) {
                close(c->p.out);
                c->p.out = -1;
            }
            if (kind[i] == 2 && rl_read_lines(c->p.err, &c->p.ebuf, &c->p.elen, on_client_err, &cb)) {
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

static int server_start(rl_world *w)
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
            pump(w, 20);
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

static void server_stop(rl_world *w, int sig)
{
    if (!w->srv_running)
        return;
    rl_proc_stop(&w->srv, sig, 5000);
    pump(w, 0);
    w->srv_running = 0;
}

/* Runs cmd with sh -c; its first output line into out (when out).  The
 * exit status, or -1 when it could not run. */
static int run_shell(const char *cmd, char *out, size_t outlen)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    if (out) {
        size_t l = strcspn(buf, "\r\n");
        snprintf(out, outlen, "%.*s", (int)l, buf);
    }
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Single-quotes s for sh (' becomes '\''). */
static void shell_quote(const char *s, char *out, size_t len)
{
    size_t o = 0;
    if (o + 1 < len)
        out[o++] = '\'';
    for (; *s && o + 5 < len; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    if (o + 1 < len)
        out[o++] = '\'';
    out[o] = '\0';
}

/* Fills a command template: each {name} of vars[] (name, value pairs, NULL
 * ended) becomes the shell-quoted value.  malloc'd. */
char *rl_template(const char *tpl, const char *const *vars)
{
    size_t cap = strlen(tpl) * 2 + 256, o = 0;
    char *out = malloc(cap);
    for (const char *p = tpl; out && *p;) {
        const char *val = NULL;
        size_t skip = 0;
        if (*p == '{')
            for (const char *const *v = vars; v[0]; v += 2) {
                size_t l = strlen(v[0]);
                if (!strncmp(p + 1, v[0], l) && p[1 + l] == '}') {
                    val = v[1] ? v[1] : "";
                    skip = l + 2;
                    break;
                }
            }
        char q[8192];
        const char *add = p;
        size_t addlen = 1;
        if (val) {
            shell_quote(val, q, sizeof q);
            add = q;
            addlen = strlen(q);
        }
        if (o + addlen + 1 > cap) {
            cap = (o + addlen + 1) * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        memcpy(out + o, add, addlen);
        o += addlen;
        p += val ? skip : 1;
    }
    if (out)
        out[o] = '\0';
    return out;
}

/* --token-cmd: a token from the team's own minting command ({sub} {hh}
 * {dev} {ttl_s}; ttl_s < 0 asks for an expired one).  A bad signature is
 * made from a good token by changing its signature. */
static char *mint_by_command(rl_world *w, const scn_client_spec *sp, int64_t ttl_s)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    const char *vars[] = {"sub", sp->user, "hh", sp->household, "dev",
                          sp->device ? sp->device : "", "ttl_s", ttl, NULL};
    char *cmd = rl_template(w->o->token_cmd, vars);
    char tok[4096] = "";
    int st = cmd ? run_shell(cmd, tok, sizeof tok) : -1;
    free(cmd);
    if (st != 0 || !tok[0])
        return NULL;
    char *sig = strrchr(tok, '.');
    if (sp->token == SCN_TOKEN_BAD_SIGNATURE && sig && sig[1])
        sig[1] = sig[1] == 'A' ? 'B' : 'A'; /* the first 6 bits: never padding */
    return strdup(tok);
}

/* A token for a scenario client whose lifetime the scenario chose:
 * JWT `exp` is whole seconds on the wall clock, so the harness first waits
 * (at most 1 s, reading the programs meanwhile) until now + ttl x F falls
 * on a whole second, and mints exp exactly there.  The scenario's virtual
 * expiry and the server's are then the same instant, give or take the
 * milliseconds of starting the app.  Other tokens (30 days) need no care. */
static char *mint_for_client(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms)
{
    if (ttl_ms >= RL_DEFAULT_TTL_MS || sp->token != SCN_TOKEN_VALID || w->o->token_cmd)
        return rl_mint(w, sp, ttl_ms);
    double wall_ttl_s = (double)ttl_ms * w->F / 1000.0;
    double now_s = (double)hp_wall_clock(NULL) / 1000.0;
    double frac = now_s + wall_ttl_s - floor(now_s + wall_ttl_s);
    if (frac > 0.002)
        pump(w, (1.0 - frac) * 1000.0);
    now_s = (double)hp_wall_clock(NULL) / 1000.0;
    int64_t exp = (int64_t)llround(now_s + wall_ttl_s);
    char hh[300];
    snprintf(hh, sizeof hh, "%s%s", sp->household, w->hh_suffix);
    char *t = hp_jwt_mint(w->secret_used, sp->user, hh, sp->device, (int64_t)floor(now_s), exp);
    if (t)
        json_array_append_new(w->tokens, json_string(t));
    /* The schedule starts again here: the token's clock is now the scenario's. */
    w->slow_action = 1;
    return t;
}

char *rl_mint(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms)
{
    int64_t now = hp_wall_clock(NULL) / 1000;
    char *t, hh[300];
    /* On a foreign server every run gets its own households, so scenarios
     * (and runs) never see each other's tasks. */
    snprintf(hh, sizeof hh, "%s%s", sp->household, w->hh_suffix);
    scn_client_spec v = *sp;
    v.household = hh;
    sp = &v;
    if (w->o->token_cmd)
        t = mint_by_command(w, sp, sp->token == SCN_TOKEN_EXPIRED ? -1 : ttl_ms / 1000);
    else if (sp->token == SCN_TOKEN_EXPIRED)
        t = hp_jwt_mint(w->secret_used, sp->user, sp->household, sp->device, now - 3600, now - 1);
    else if (sp->token == SCN_TOKEN_BAD_SIGNATURE)
        t = hp_jwt_mint("not-the-secret-of-this-server", sp->user, sp->household, sp->device, now,
                        now + ttl_ms / 1000);
    else
        t = hp_jwt_mint(w->secret_used, sp->user, sp->household, sp->device, now,
                        now + ttl_ms / 1000);
    if (t)
        json_array_append_new(w->tokens, json_string(t));
    return t;
}

/* Starts a scenario client: hp-fake-client, or the foreign client of
 * --client-cmd (its template filled, run by sh -c; docs/CLIENT_DRIVER.md,
 * "The minimal contract").  deferred: our client opens its store and takes
 * commands but connects only at the `start` command (a scenario's edits
 * before `connect`); a foreign client has no such mode and simply starts. */
static int client_start(rl_world *w, rl_client *c, int deferred)
{
    char scale[32];
    snprintf(scale, sizeof scale, "%g", w->F);
    if (!c->token && c->spec->token != SCN_TOKEN_NONE)
        c->token = mint_for_client(w, c->spec, c->spec->token_ttl_ms);
    char *argv[26];
    char *shell_cmd = NULL;
    int n = 0;
    c->unstarted = 0;
    if (w->o->client_cmd) {
        const char *vars[] = {"server", c->url, "token", c->token ? c->token : "", "db", c->db,
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
            argv[n++] = "--token";
            argv[n++] = c->token;
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
    json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind", "reset"));
    int rc = rl_proc_start(&c->p, argv, 1);
    free(shell_cmd);
    if (rc != 0)
        return rl_fail(w, "cannot start %s: %s", w->o->client_cmd ? "--client-cmd" : w->bin_client,
                       strerror(errno));
    c->running = 1;
    return 0;
}

static void client_kill(rl_world *w, rl_client *c, int sig)
{
    if (!c->running)
        return;
    rl_proc_stop(&c->p, sig, 5000);
    pump(w, 0);
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
        pump(w, 10);
    }
    if (ans)
        *ans = json_incref(json_array_get(c->answers, 0));
    json_array_remove(c->answers, 0);
    return 0;
}

/* ---- actions -------------------------------------------------------------- */

static int64_t dur_ms(json_t *v, int64_t dflt)
{
    if (!json_is_string(v))
        return dflt;
    int64_t ms;
    return hp_duration_parse(json_string_value(v), &ms) == 0 ? ms : dflt;
}

/*
 * After a start: wait until the app reports where its first connect went
 * (ready, closed/refused, a notification such as AUTH_REQUIRED or
 * KEY_MISMATCH), or it is offline, at most 15 s.  In the simulator a
 * connect is one round trip; a real start takes a process launch, which
 * must not eat the scenario's next `wait`.
 */
static void client_settle(rl_world *w, rl_client *c, size_t notes0, size_t closed0)
{
    double end = rl_now_ms() + 15000;
    while (rl_now_ms() < end && c->running && c->p.out >= 0 && !c->offline) {
        if (c->ready || json_array_size(c->notes) > notes0 || json_array_size(c->closed) > closed0)
            return;
        pump(w, 5);
    }
}

/* An action as JSON: "word" or {"word": arg}.  The name, or NULL. */
static const char *action_of(json_t *a, json_t **arg)
{
    *arg = NULL;
    if (json_is_string(a))
        return json_string_value(a);
    if (json_is_object(a) && json_object_size(a) == 1) {
        void *it = json_object_iter(a);
        *arg = json_object_iter_value(it);
        return json_object_iter_key(it);
    }
    return NULL;
}

/*
 * R-1 in real mode.  A scenario's remind_at is an instant on its virtual
 * clock (which starts at the scenario's `start`), but a real server fires
 * reminders on the wall clock.  So a remind_at is sent as the wall instant
 * that stands where the virtual one stands on the schedule: now + (remind_at
 * - virtual now) x F, with the written UTC offset kept and milliseconds
 * added.  The first translation of a value is kept, so every later use of
 * the same text (another edit, an expectation) means the same instant.
 * Text that does not parse is sent as written (the server refuses it, as
 * in simulation).
 */
static const char *real_time_of(rl_world *w, const char *orig)
{
    json_t *done_ = json_object_get(w->times, orig);
    if (done_)
        return json_string_value(done_);
    int64_t r;
    if (hp_time_parse(orig, &r) != 0)
        return orig;
    int64_t wall = hp_wall_clock(NULL) + (int64_t)((double)(r - (w->s->start_ms + w->vnow)) * w->F);
    /* The written offset: "Z" or the last six characters "+HH:MM". */
    size_t n = strlen(orig);
    const char *off = (orig[n - 1] == 'Z' || orig[n - 1] == 'z') ? "Z" : orig + n - 6;
    int64_t off_ms = 0;
    if (off[0] == '+' || off[0] == '-')
        off_ms = (off[0] == '-' ? -1 : 1) *
                 ((int64_t)atoi(off + 1) * 3600000 + (int64_t)atoi(off + 4) * 60000);
    char buf[40];
    hp_time_format_utc(wall + off_ms, buf, sizeof buf); /* local digits, then the offset */
    snprintf(buf + strlen(buf) - 1, sizeof buf - (strlen(buf) - 1), "%s", off);
    json_object_set_new(w->times, orig, json_string(buf));
    trace_add(w, "harness", "observe",
              json_pack("{s:{s:s,s:s,s:s}}", "info", "kind", "remind_at", "written", orig, "sent",
                        buf));
    return json_string_value(json_object_get(w->times, orig));
}

/* Expectations name remind_at as written: compare with what was sent. */
void rl_xlate_times(rl_world *w, json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
            rl_xlate_times(w, x);
        return;
    }
    json_object_foreach(v, k, x) {
        json_t *sent;
        if (!strcmp(k, "remind_at") && json_is_string(x) &&
            (sent = json_object_get(w->times, json_string_value(x))))
            json_object_set(v, k, sent);
        else
            rl_xlate_times(w, x);
    }
}

/* A test fault or probe (send_frame, drop) as a driver command: unlike a
 * user action, a refusal stops the scenario with a runtime error. */
static int fault_cmd(rl_world *w, rl_client *c, json_t *cmd, const char *name)
{
    json_t *ans = NULL;
    if (rl_client_cmd(w, c, cmd, &ans) != 0)
        return -1;
    const char *kind = json_string_value(json_object_get(ans, "kind"));
    int rc = 0;
    if (kind && !strcmp(kind, "error"))
        rc = rl_fail(w, "%s: %s: %s", c->spec->name, name,
                     json_string_value(json_object_get(ans, "message")));
    json_decref(ans);
    return rc;
}

static int client_action(rl_world *w, rl_client *c, json_t *a)
{
    json_t *arg;
    const char *name = action_of(a, &arg);
    if (!name)
        return rl_fail(w, "malformed action for %s", c->spec->name);
    if (!strcmp(name, "connect") || !strcmp(name, "crash") || !strcmp(name, "restart"))
        w->slow_action = 1;
    size_t notes0 = json_array_size(c->notes), closed0 = json_array_size(c->closed);
    if (!strcmp(name, "connect")) {
        if (c->running && c->unstarted) { /* edits came first: now it connects */
            c->unstarted = 0;
            json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind",
                                                          "reset"));
            if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "start"), NULL) != 0)
                return -1;
            client_settle(w, c, notes0, closed0);
            return 0;
        }
        if (c->running && !w->o->client_cmd)
            return rl_fail(w, "connect: %s is already running", c->spec->name);
        c->ready = 0;
        if (!c->running && client_start(w, c, 0) != 0)
            return -1;
        client_settle(w, c, notes0, closed0);
        return 0;
    }
    /* An action before `connect`: the app is open but not connected yet. */
    if (!c->running && strcmp(name, "crash") && strcmp(name, "restart")) {
        w->slow_action = 1;
        if (client_start(w, c, 1) != 0)
            return -1;
    }
    if (!strcmp(name, "crash")) {
        client_kill(w, c, SIGKILL);
        return 0;
    }
    if (!strcmp(name, "restart")) {
        const char *key = json_string_value(json_object_get(arg, "key"));
        client_kill(w, c, SIGKILL);
        if (key)
            c->other_key = !strcmp(key, "other");
        c->ready = 0;
        /* The device's network switch survives the app: an offline device
         * restarts offline (our client: told before it may connect). */
        if (client_start(w, c, c->offline && !w->o->client_cmd) != 0)
            return -1;
        if (c->offline) {
            if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "offline"), NULL) != 0)
                return -1;
            if (c->unstarted) {
                c->unstarted = 0;
                return rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "start"), NULL);
            }
            return 0;
        }
        client_settle(w, c, notes0, closed0);
        return 0;
    }
    json_t *cmd = NULL;
    if (!strcmp(name, "link") && w->proxy_running) {
        /* A silent link the app does not know of: only the network changes. */
        const char *v = json_string_value(arg);
        return rl_proxy_partition(w, c, !(v && !strcmp(v, "up")));
    }
    if (!strcmp(name, "latency") && w->proxy_running) {
        int64_t ms = dur_ms(arg, 0);
        return rl_proxy_fault(w, c, json_pack("{s:s,s:s,s:I}", "kind", "latency", "direction",
                                              "both", "ms", (json_int_t)((double)ms * w->F)));
    }
    if (!strcmp(name, "offline") || !strcmp(name, "online") || !strcmp(name, "sync_now")) {
        if (!strcmp(name, "offline"))
            c->offline = 1;
        if (!strcmp(name, "online"))
            c->offline = 0;
        /* SPEC §3: offline is a lost network.  The proxy blackholes the
         * client first, so the close the app then makes never reaches the
         * server (no FIN crosses a lost network: the server finds out by
         * heartbeat timeout); online heals it before the app reconnects. */
        if (w->proxy_running && strcmp(name, "sync_now") &&
            rl_proxy_partition(w, c, !strcmp(name, "offline")) != 0)
            return -1;
        /* WS-6: a connect after online (or offline) is immediate, not a retry. */
        if (strcmp(name, "sync_now"))
            json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind",
                                                          "reset"));
        cmd = json_pack("{s:s}", "cmd", name);
    } else if (!strcmp(name, "edit")) {
        json_t *fields = json_deep_copy(arg);
        json_t *id = json_incref(json_object_get(fields, "id"));
        json_object_del(fields, "id");
        json_t *ra = json_object_get(fields, "remind_at");
        if (json_is_string(ra))
            json_object_set_new(fields, "remind_at",
                                json_string(real_time_of(w, json_string_value(ra))));
        cmd = json_pack("{s:s,s:o,s:o}", "cmd", "edit", "id", id ? id : json_null(), "fields",
                        fields ? fields : json_object());
    } else if (!strcmp(name, "delete") || !strcmp(name, "lock") || !strcmp(name, "unlock")) {
        cmd = json_pack("{s:s,s:O}", "cmd", name, "id", arg ? arg : json_null());
    } else if (!strcmp(name, "choose")) {
        cmd = json_pack("{s:s,s:O,s:O}", "cmd", "choose", "id",
                        json_object_get(arg, "id") ? json_object_get(arg, "id") : json_null(),
                        "choice",
                        json_object_get(arg, "choice") ? json_object_get(arg, "choice") : json_null());
    } else if (!strcmp(name, "new_token")) {
        scn_client_spec sp = *c->spec;
        sp.token = SCN_TOKEN_VALID;
        free(c->token);
        c->token = mint_for_client(w, &sp, dur_ms(json_object_get(arg, "ttl"), sp.token_ttl_ms));
        if (!c->token)
            return rl_fail(w, "cannot rl_mint a token");
        cmd = json_pack("{s:s,s:s}", "cmd", "token", "token", c->token);
        json_array_append_new(c->conn_hist, json_pack("{s:f,s:s}", "t", rl_wt(w), "kind",
                                                      "reset"));
    } else if (!strcmp(name, "send_frame")) {
        size_t n = 0;
        char *text = scn_frame_text(arg, &n);
        if (!text)
            return rl_fail(w, "send_frame: malformed frame");
        cmd = json_pack("{s:s,s:s%}", "cmd", "send_frame", "text", text, n);
        free(text);
        /* As in simulation, a frame with no stream to carry it is an error. */
        return fault_cmd(w, c, cmd, name);
    } else if (!strcmp(name, "drop")) {
        json_t *count = json_object_get(arg, "count");
        const char *from = json_string_value(json_object_get(arg, "from"));
        const char *msg = json_string_value(json_object_get(arg, "message"));
        /* The link's loss, played by the proxy for any client; a request
         * lost before the server (the proxy forwards what it reads) is the
         * one loss our client's socket layer still plays (driver drop). */
        if (w->proxy_running && from && msg && strcmp(msg, "request")) {
            json_t *f;
            if (!strcmp(msg, "response"))
                f = json_pack("{s:s,s:s,s:s}", "kind", "drop_response", "method", "*", "path",
                              "*");
            else
                f = json_pack("{s:s,s:s,s:s}", "kind", "drop_message", "direction",
                              !strcmp(from, "server") ? "s2c" : "c2s", "message", msg);
            json_object_set_new(f, "count", count ? json_incref(count) : json_integer(1));
            return rl_proxy_fault(w, c, f);
        }
        cmd = json_pack("{s:s,s:O,s:O,s:o}", "cmd", "drop", "from",
                        json_object_get(arg, "from") ? json_object_get(arg, "from") : json_null(),
                        "message",
                        json_object_get(arg, "message") ? json_object_get(arg, "message")
                                                        : json_null(),
                        "count", count ? json_incref(count) : json_integer(1));
        return fault_cmd(w, c, cmd, name);
    } else {
        return rl_fail(w, "action '%s' is not supported in real mode", name);
    }
    json_t *ans = NULL;
    if (rl_client_cmd(w, c, cmd, &ans) != 0)
        return -1;
    json_decref(ans); /* refused actions are asserted on, not fatal (SCENARIOS §4) */
    return 0;
}

static int server_action(rl_world *w, json_t *a)
{
    json_t *arg;
    const char *name = action_of(a, &arg);
    if (!name)
        return rl_fail(w, "malformed server action");
    if (!strcmp(name, "restart") || !strcmp(name, "crash") || !strcmp(name, "start"))
        w->slow_action = 1;
    if (!strcmp(name, "restart")) {
        server_stop(w, SIGTERM);
        return server_start(w);
    }
    if (!strcmp(name, "crash")) {
        server_stop(w, SIGKILL);
        return 0;
    }
    if (!strcmp(name, "start"))
        return w->srv_running ? 0 : server_start(w);
    json_t *body = NULL;
    if (!strcmp(name, "fail_requests")) {
        json_t *f = json_object();
        json_t *count = json_object_get(arg, "count");
        json_object_set_new(f, "count", count ? json_incref(count) : json_integer(1));
        json_object_set(f, "status", json_object_get(arg, "status"));
        if (json_object_get(arg, "method"))
            json_object_set(f, "method", json_object_get(arg, "method"));
        if (json_object_get(arg, "path"))
            json_object_set(f, "path_prefix", json_object_get(arg, "path"));
        if (json_object_get(arg, "retry_after"))
            json_object_set_new(f, "retry_after",
                                json_integer(dur_ms(json_object_get(arg, "retry_after"), 0) / 1000));
        body = json_pack("{s:o}", "fail_requests", f);
    } else if (!strcmp(name, "force_conflict")) {
        body = json_pack("{s:{s:O}}", "force_conflict", "id", arg);
    } else {
        return rl_fail(w, "server action '%s' is not supported in real mode", name);
    }
    char *s = json_dumps(body, JSON_COMPACT), *resp = NULL;
    json_decref(body);
    int st = s ? rl_http(w->url, "POST", "/_hp/faults", NULL, s, 10000, &resp) : -1;
    free(s);
    free(resp);
    return st == 200 ? 0 : rl_fail(w, "POST /_hp/faults answered %d", st);
}

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
            int st = run_shell(w->o->server_reset, NULL, 0);
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
        trace_add(w, "harness", "observe",
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
    if (w->own && server_start(w) != 0)
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
        client_kill(w, c, SIGTERM);
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
        json_decref(c->wire_closes);
        free(c->token);
    }
    rl_proxy_stop(w);
    json_decref(w->proxy_pending);
    server_stop(w, SIGTERM);
    rl_proc_close_fds(&w->srv);
    if (w->dir[0] && getenv("HP_REAL_KEEP") == NULL)
        rm_tree(w->dir);
}

/* Invariants observable in real mode (SCENARIOS §8): queue_bounded,
 * no_token_in_logs, conflicts_logged (client side).  Returns the first
 * failure (malloc'd) or NULL. */
static char *real_invariants(rl_world *w, scn_result *r)
{
    char *first = NULL;
    hp_policy d;
    hp_policy_defaults(&d);
    unsigned off = w->s->invariants_off;
#define CHECK(bit, name, ok, ...)                                                        \
    do {                                                                                 \
        if (off & (bit))                                                                 \
            break;                                                                       \
        char *det = NULL;                                                                \
        if (asprintf(&det, __VA_ARGS__) < 0)                                             \
            det = NULL;                                                                  \
        json_array_append_new(r->checks, json_pack("{s:s,s:b,s:s}", "name", name,        \
                                                   "passed", (ok), "detail", det ? det : "")); \
        if (!(ok) && !first && det)                                                      \
            first = strdup(det);                                                         \
        free(det);                                                                       \
    } while (0)
    for (size_t i = 0; i < w->nc; i++) {
        rl_client *c = &w->c[i];
        CHECK(SCN_INV_QUEUE_BOUNDED, "queue_bounded", c->max_queue <= d.queue_max,
              "invariant queue_bounded: %s's queue reached %d (max %d)", c->spec->name,
              c->max_queue, d.queue_max);
        size_t n409 = 0, warn = 0, j;
        json_t *e;
        json_array_foreach(c->http, j, e) n409 += json_integer_value(json_object_get(e, "status")) == 409;
        json_array_foreach(c->logs, j, e) {
            warn += rl_level_rank(json_string_value(json_object_get(e, "level"))) >= 3 &&
                    !strcmp(json_string_value(json_object_get(e, "message")), "conflict");
        }
        CHECK(SCN_INV_CONFLICTS_LOGGED, "conflicts_logged", warn >= n409,
              "invariant conflicts_logged: %s received %zu 409s but logged %zu WARNING conflict lines",
              c->spec->name, n409, warn);
    }
    /* no minted token (nor its signature) in any captured line. */
    const char *leak = NULL;
    json_t *all = json_array();
    json_array_extend(all, w->srv_logs);
    for (size_t i = 0; i < w->nc; i++)
        json_array_extend(all, w->c[i].logs);
    size_t i, j;
    json_t *t, *e;
    json_array_foreach(w->tokens, i, t) {
        const char *tok = json_string_value(t);
        if (!tok)
            continue;
        const char *sig = strrchr(tok, '.');
        json_array_foreach(all, j, e) {
            const char *line = json_string_value(json_object_get(e, "line"));
            if (strstr(line, tok) || (sig && strlen(sig) > 8 && strstr(line, sig + 1)))
                leak = line;
        }
    }
    json_decref(all);
    CHECK(SCN_INV_NO_TOKEN_IN_LOGS, "no_token_in_logs", leak == NULL,
          "invariant no_token_in_logs: a token appears in: %.200s", leak ? leak : "");
    /* Latency (issue 14): a server that stalls before READY or before an
     * answer must fail, not pass by chance.  The bound follows the time
     * scale (the policy's 10 s request timeout, scaled) with a floor for
     * a loaded machine; the largest latency seen is reported either way. */
    if (!w->o->client_cmd || w->proxy_running) {
        double bound = 10000.0 * w->F;
        if (bound < RL_LATENCY_FLOOR_MS)
            bound = RL_LATENCY_FLOOR_MS;
        double worst_ready = 0, worst_http = 0;
        const char *who_ready = "", *who_http = "";
        for (size_t ci = 0; ci < w->nc; ci++) {
            rl_client *c = &w->c[ci];
            double hello = -1;
            json_array_foreach(w->proxy_running ? c->wire_frames : c->frames, j, e) {
                const char *from = json_string_value(json_object_get(e, "from"));
                const char *type = json_string_value(json_object_get(e, "type"));
                double t = json_number_value(json_object_get(e, "t"));
                if (json_is_true(json_object_get(e, "lost")) || !from || !type)
                    continue;
                if (!strcmp(from, "client") && !strcmp(type, "HELLO"))
                    hello = t;
                else if (hello >= 0 && !strcmp(from, "server") &&
                         (!strcmp(type, "READY") || !strcmp(type, "RESYNC_REQUIRED"))) {
                    if (t - hello > worst_ready) {
                        worst_ready = t - hello;
                        who_ready = c->spec->name;
                    }
                    hello = -1;
                }
            }
            json_array_foreach(w->proxy_running ? c->wire_http : c->http, j, e) {
                double ms = json_number_value(json_object_get(e, "elapsed_ms"));
                if (json_is_true(json_object_get(e, "reply_lost")))
                    continue; /* a dropped response: no answer to time */
                if (json_integer_value(json_object_get(e, "status")) > 0 && ms > worst_http) {
                    worst_http = ms;
                    who_http = c->spec->name;
                }
            }
        }
        CHECK(0, "latency_hello_ready", worst_ready <= bound,
              "HELLO -> READY within %.0f ms: worst %.0f ms%s%s", bound, worst_ready,
              *who_ready ? " for " : "", who_ready);
        CHECK(0, "latency_request_response", worst_http <= bound,
              "request -> response within %.0f ms: worst %.0f ms%s%s", bound, worst_http,
              *who_http ? " for " : "", who_http);
    }
#undef CHECK
    /* What this machine showed of itself: timing tolerances derive from it. */
    {
        char det[160];
        snprintf(det, sizeof det, "time scale %g; the worst lateness of a wait was %.0f ms "
                                  "(reconnect_delays tolerate %.0f ms + 3 x that, wall)",
                 w->F, w->jitter_ms, RL_TIMING_FLOOR_MS);
        json_array_append_new(r->checks, json_pack("{s:s,s:b,s:s,s:s}", "name", "timing",
                                                   "passed", 1, "verdict", "info", "detail", det));
    }
    /* Not judged in real mode: said so, never counted as passed. */
    json_array_append_new(r->checks,
                          json_pack("{s:s,s:b,s:s,s:s}", "name", "edits_kept", "passed", 0,
                                    "verdict", "unobservable", "detail",
                                    "not checked in real mode (no healing, no omniscient journal)"));
    json_array_append_new(r->checks,
                          json_pack("{s:s,s:b,s:s,s:s}", "name", "entity_order", "passed", 0,
                                    "verdict", "unobservable", "detail",
                                    "not checked in real mode"));
    return first;
}

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
                    rc = server_action(w, a);
                else {
                    rl_client *c = rl_client_by_name(w, k);
                    rc = c ? client_action(w, c, a) : rl_fail(w, "unknown actor %s", k);
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
    for (size_t i = 0; i < s->steps->n && r->passed; i++) {
        const scn_node *st = s->steps->items[i];
        char *txt = scn_node_text(st);
        trace_add(w, "harness", "step", json_pack("{s:i,s:i,s:s}", "index", (int)i, "line",
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
                pump(w, (target > floor_end ? target : floor_end) - rl_now_ms());
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            } else if (target > rl_now_ms()) {
                pump(w, target - rl_now_ms());
                double late = rl_now_ms() - target; /* how late this machine wakes us */
                if (late > w->jitter_ms)
                    w->jitter_ms = late;
            } else { /* behind schedule: start again from here */
                pump(w, 0);
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
            if (until) {
                int64_t to = 5 * 60000;
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
                pump(w, 25);
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
                snprintf(text, sizeof text, "%s.%s", x->actor ? x->actor : "every actor", x->key);
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
                trace_add(w, "harness", "assert", a);
                char name[320];
                snprintf(name, sizeof name, "%s:%d %s", s->file, line, text);
                json_t *chk = json_pack("{s:s,s:b,s:s,s:s}", "name", name, "passed",
                                        !x->why && x->ok, "verdict",
                                        x->why ? "unobservable" : x->ok ? "passed" : "failed",
                                        "detail", x->why ? x->why : "");
                json_array_append_new(r->checks, chk);
                if (!x->why && !x->ok && r->passed) {
                    char *msg = NULL;
                    if (asprintf(&msg, "%s%s: expected %s, got %s",
                                 until ? "wait_until timed out: " : "", text,
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
                rc = -1;
                break;
            }
            pump(w, 0);
            /* Starting or stopping a program takes real time that is no
             * part of the scenario: the schedule starts again after it. */
            if (w->slow_action) {
                w->slow_action = 0;
                w->anchor_t = rl_now_ms();
                w->anchor_v = w->vnow;
            }
        }
    }
    if (rc == 0) {
        pump(w, 50);
        rl_proxy_sync(w);
        char *inv = real_invariants(w, r);
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
    return rc;
}

/*
 * real_expect.c - expectations in real mode, evaluated on what the real
 * programs wrote (real_world.h): client observables and log lines, our
 * server's request log and /_hp/state, what hp-fault-proxy saw on the
 * wire, or, against a foreign server, what the harness itself reads
 * through the REST API (GET ?since=0).
 *
 * History, log, count and list expectations go to the simulator's matcher
 * (chk_history.h): this file only picks the records an assertion reads,
 * maps them into the matcher's record shape at one point (as_requests,
 * add_logs) and passes what differs in real mode as data (the window in
 * wall ms or journal sequence numbers, CHK_NO_QUERY for our server's
 * request log, remind_at translated to the wall clock).
 *
 * Inputs: the world (read only; `status` / `cached` are asked of a client
 * through rl_client_cmd) and an assertion's node.  Outputs: an rl_out per
 * assertion, its strings malloc'd and owned by it (rl_out_clear).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "real_world.h"
#include "scn_run.h"
#include "chk_history.h"
#include "hp_log.h"

/* ---- expectations --------------------------------------------------------- */


void rl_out_clear(rl_out *o)
{
    free(o->text);
    free(o->expected);
    free(o->actual);
    memset(o, 0, sizeof *o);
}

static int out_fail(rl_out *o, const scn_node *at, const char *text, json_t *exp, json_t *act)
{
    rl_out_clear(o);
    o->ok = 0;
    o->at = at;
    o->text = strdup(text);
    o->expected = exp ? chk_dump(exp) : strdup("?");
    o->actual = chk_dump(act); /* as in sim: sorted keys, "(nothing)" */
    return 0;
}

/* out_fail() with a message for the actual value (the caller has no
 * record to show). */
static int out_fail_msg(rl_out *o, const scn_node *at, const char *text, json_t *exp,
                        const char *msg)
{
    json_t *act = json_string(msg);
    int r = out_fail(o, at, text, exp, act);
    json_decref(act);
    return r;
}

/* A state expectation on a client whose app is not running: the
 * simulator's words. */
static int app_down(rl_out *o, const scn_node *at, const char *text, const char *name)
{
    rl_out_clear(o);
    o->at = at;
    o->text = strdup(text);
    o->expected = scn_asprintf("%s's app running", name);
    o->actual = scn_asprintf("%s has crashed (use '%s: restart')", name, name);
    return 0;
}

int rl_level_rank(const char *l)
{
    if (!l)
        return 0;
    if (!strcasecmp(l, "DEBUG"))
        return 1;
    if (!strcasecmp(l, "INFO"))
        return 2;
    if (!strcasecmp(l, "WARNING"))
        return 3;
    if (!strcasecmp(l, "ERROR"))
        return 4;
    return 0;
}

/* ---- what the programs wrote, in the matcher's shape ----------------------
 * The one point where real records become chk_history.h's shape (the
 * producers, real_records.c and real_proxy.c, keep what the programs said):
 * a request's "path?query" split in two; a log line's level as
 * hp_log_level (-1: a level our programs do not write), its message as msg,
 * the text after it as fields, and as actor the scenario actor whose
 * output it was. */

static json_t *as_requests(const json_t *recs)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(recs, i, e) {
        const char *p = json_string_value(json_object_get(e, "path"));
        const char *q = p ? strchr(p, '?') : NULL;
        if (!q) {
            json_array_append(out, e);
            continue;
        }
        json_t *r = json_copy(e);
        json_object_set_new(r, "path", json_stringn(p, (size_t)(q - p)));
        json_object_set_new(r, "query", json_string(q + 1));
        json_array_append_new(out, r);
    }
    return out;
}

/* Appends recs (log lines of actor) to out as the matcher's records
 * (chk_rec.h); their strings are borrowed from recs, which outlive out. */
static void add_logs(chk_logs *out, const json_t *recs, const char *actor)
{
    size_t i;
    json_t *e;
    json_array_foreach(recs, i, e) {
        hp_log_level l;
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *text = json_string_value(json_object_get(e, "text"));
        const char *line = json_string_value(json_object_get(e, "line"));
        size_t ml = msg ? strlen(msg) : 0;
        chk_logrec r = {
            .t = json_number_value(json_object_get(e, "t")),
            .n = 0,
            .level = !hp_log_level_parse(json_string_value(json_object_get(e, "level")), &l)
                         ? (int)l
                         : -1,
            .actor = actor,
            .msg = msg ? msg : "",
            .fields = text && strlen(text) > ml ? text + ml + 1 : "",
            .line = line ? line : "",
        };
        chk_logs_add(out, &r);
    }
}

/* The window of an expectation: from (wall ms, -1: all), or exact in
 * journal sequence numbers for what the proxy saw when a `since: mark`
 * gave one (w->from_seq). */
static chk_window window_of(rl_world *w, double from, int wire)
{
    chk_window cw = {{"t", NULL}, {from, 0}};
    if (wire && w->from_seq >= 0) {
        cw.key[0] = "seq";
        cw.min[0] = (double)w->from_seq + 1;
    }
    return cw;
}

/* Expectation values name times as written; the programs saw them on the
 * wall clock. */
static void xlate(void *ud, json_t *want)
{
    rl_xlate_times(ud, want);
}

/* The matcher's outcome into o, with the assertion's node and text. */
static int from_chk(rl_out *o, scn_outcome *c, const scn_node *at, const char *text)
{
    rl_out_clear(o);
    o->ok = c->ok;
    if (!c->ok) {
        o->at = c->at ? c->at : at;
        o->text = strdup(text);
        o->expected = c->expected;
        o->actual = c->actual;
        c->expected = c->actual = NULL;
    }
    scn_outcome_clear(c);
    return o->ok;
}

/* A history expectation vn of kind k on recs (not yet windowed). */
static int hist(rl_world *w, rl_out *o, const scn_node *vn, const char *text, hist_kind k,
                const json_t *recs, const chk_window *win, unsigned flags)
{
    chk_opts opts = {flags, xlate, w};
    scn_outcome c = {0};
    json_t *mine = k == H_REQUESTS ? as_requests(recs) : json_incref((json_t *)recs);
    chk_history(k, mine, vn, win, &opts, &c);
    json_decref(mine);
    return from_chk(o, &c, vn, text);
}

/* A `log:` value (one mapping, or a list: each holds) on logs. */
static int logs_expect(rl_out *o, const scn_node *vn, const char *text, const chk_logs *logs,
                       const char *actor, const chk_window *win)
{
    scn_outcome c = {0};
    c.ok = 1;
    if (vn->kind == SCN_SEQ) {
        for (size_t i = 0; i < vn->n && c.ok; i++)
            chk_log(logs, actor, vn->items[i], win, &c);
    } else {
        chk_log(logs, actor, vn, win, &c);
    }
    return from_chk(o, &c, vn, text);
}

/* queue / dead_letter / conflicts forms (chk_list_form). */
static int list_expect(rl_out *o, const scn_node *at, const char *text, json_t *exp, json_t *items)
{
    scn_outcome c = {0};
    chk_list_form(exp, items, "entity_id", &c);
    return from_chk(o, &c, at, text);
}

static json_t *server_state(rl_world *w)
{
    char *body = NULL;
    int st = w->own ? rl_http(w->url, "GET", "/_hp/state", NULL, NULL, 10000, &body) : -1;
    json_t *r = st == 200 && body ? json_loads(body, 0, NULL) : NULL;
    if (!w->own) {
        /* A foreign server: the tasks of each household a client belongs to. */
        r = json_pack("{s:{},s:[]}", "households", "connections");
        for (size_t i = 0; i < w->nc; i++) {
            const scn_client_spec *sp = w->c[i].spec;
            if (json_object_get(json_object_get(r, "households"), sp->household))
                continue;
            scn_client_spec v = *sp;
            v.token = SCN_TOKEN_VALID;
            char *tok = rl_mint(w, &v, 3600 * 1000);
            char *b = NULL;
            int s2 = rl_http(w->url, "GET", "/api/v0.2/tasks?since=0", tok, NULL, 10000, &b);
            free(tok);
            json_t *j = s2 == 200 && b ? json_loads(b, 0, NULL) : NULL;
            free(b);
            rl_unsuffix(w, j);
            if (!j)
                continue;
            json_t *tasks = json_object();
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(j, "tasks"), k, t) {
                json_object_set(tasks, json_string_value(json_object_get(t, "id")), t);
            }
            json_object_set_new(json_object_get(r, "households"), sp->household,
                                json_pack("{s:O,s:o,s:{}}", "revision",
                                          json_object_get(j, "revision"), "tasks", tasks, "locks"));
            json_decref(j);
        }
    }
    free(body);
    return r;
}

static json_t *find_task(json_t *state, const char *id, const char *hh)
{
    const char *k;
    json_t *h;
    json_object_foreach(json_object_get(state, "households"), k, h) {
        if (hh && strcmp(hh, k))
            continue;
        json_t *t = json_object_get(json_object_get(h, "tasks"), id);
        if (t)
            return t;
    }
    return NULL;
}

/* server.requests is read from what our clients sent and got (their `http`
 * lines, taken with --http-bodies) against a foreign server, whose own
 * journal we never see, and whenever bodies are asked for (our server's
 * request log has none).  Otherwise from our server's request log, which
 * also holds requests of no scenario client. */
static int wire_requests(rl_world *w, const scn_node *v)
{
    return !w->own || rl_wants_bodies(v) || (w->proxy_running && w->o->client_cmd);
}

/* Every scenario client's HTTP exchanges that reached the server (a
 * request the network lost never did), in wall-time order. */
static json_t *clients_requests(rl_world *w)
{
    json_t *all = json_array();
    for (size_t i = 0; i < w->nc; i++) {
        size_t k;
        json_t *e;
        json_array_foreach(w->proxy_running ? w->c[i].wire_http : w->c[i].http, k, e) {
            if (json_is_true(json_object_get(e, "never_sent")))
                continue;
            /* Journal records by sequence (exact), the clients' own by time. */
            const char *key = w->proxy_running ? "seq" : "t";
            size_t at = json_array_size(all);
            double t = json_number_value(json_object_get(e, key));
            while (at > 0 && json_number_value(json_object_get(json_array_get(all, at - 1), key)) > t)
                at--;
            json_array_insert(all, at, e);
        }
    }
    return all;
}

static int eval_server(rl_world *w, const scn_node *asserts, size_t i0, size_t i1, double from,
                       rl_out *o)
{
    json_t *state = NULL;
    int ok = 1;
    for (size_t i = i0; ok && i < i1; i++) {
        const char *k = asserts->keys[i]->str;
        const scn_node *vn = asserts->items[i];
        json_t *v = scn_node_json(vn);
        rl_xlate_times(w, v);
        char text[64];
        snprintf(text, sizeof text, "server.%s", k);
        if (!strcmp(k, "log")) {
            chk_logs logs = {0};
            add_logs(&logs, w->srv_logs, "server");
            chk_window win = window_of(w, from, 0);
            ok = logs_expect(o, vn, text, &logs, "server", &win);
            chk_logs_free(&logs);
        } else if (!strcmp(k, "requests")) {
            /* Our server's request log has no queries. */
            int wire = wire_requests(w, vn);
            json_t *src = wire ? clients_requests(w) : json_incref(w->srv_requests);
            chk_window win = window_of(w, from, wire && w->proxy_running);
            ok = hist(w, o, vn, text, H_REQUESTS, src, &win, wire ? 0 : CHK_NO_QUERY);
            json_decref(src);
        } else {
            if (!state)
                state = server_state(w);
            if (!state) {
                ok = out_fail_msg(o, vn, text, v, "no server state (server down?)");
            } else if (!strcmp(k, "task")) {
                json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
                size_t j;
                json_t *t;
                json_array_foreach(list, j, t) {
                    json_t *sel = json_deep_copy(t);
                    const char *hh = json_string_value(json_object_get(t, "household"));
                    json_t *act = find_task(state, json_string_value(json_object_get(t, "id")), hh);
                    json_object_del(sel, "household");
                    if (!act || !scn_json_subset(sel, act)) {
                        ok = out_fail(o, vn, text, t, act);
                        json_decref(sel);
                        break;
                    }
                    json_decref(sel);
                }
                json_decref(list);
            } else if (!strcmp(k, "no_task")) {
                json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
                size_t j;
                json_t *t;
                json_array_foreach(list, j, t) {
                    json_t *act = find_task(state, json_string_value(t), NULL);
                    if (act) {
                        ok = out_fail(o, vn, text, v, act);
                        break;
                    }
                }
                json_decref(list);
            } else if (!strcmp(k, "revision")) {
                json_t *act = json_object();
                const char *hk;
                json_t *h;
                json_object_foreach(json_object_get(state, "households"), hk, h) {
                    json_object_set(act, hk, json_object_get(h, "revision"));
                }
                if (json_is_integer(v)) {
                    json_t *one = NULL;
                    json_object_foreach(act, hk, h) one = h;
                    ok = json_object_size(act) == 1 && json_integer_value(one) == json_integer_value(v);
                } else {
                    ok = scn_json_subset(v, act);
                }
                if (!ok)
                    out_fail(o, vn, text, v, act);
                json_decref(act);
            } else if (!strcmp(k, "connections")) {
                json_t *conns = json_object_get(state, "connections");
                size_t n = 0, j;
                json_t *c;
                const char *user = json_string_value(json_object_get(v, "user"));
                json_array_foreach(conns, j, c) {
                    if (!user || !strcmp(user, json_string_value(json_object_get(c, "user"))))
                        n++;
                }
                json_t *want = json_is_integer(v) ? v : json_object_get(v, "count");
                ok = want && (json_int_t)n == json_integer_value(want);
                if (!ok)
                    out_fail(o, vn, text, v, conns);
            } else if (!strcmp(k, "state")) {
                ok = scn_json_subset(v, state);
                if (!ok)
                    out_fail(o, vn, text, v, state);
            } else if (!strcmp(k, "lock")) {
                const char *id = json_string_value(json_object_get(v, "id"));
                const char *want_hh = json_string_value(json_object_get(v, "household"));
                json_t *lk = NULL;
                const char *hk;
                json_t *h;
                json_object_foreach(json_object_get(state, "households"), hk, h) {
                    if (!lk && id && (!want_hh || !strcmp(want_hh, hk)))
                        lk = json_object_get(json_object_get(h, "locks"), id);
                }
                json_t *held = json_object_get(v, "held");
                if (held && json_is_false(held))
                    ok = lk == NULL;
                else if (!lk)
                    ok = 0;
                else {
                    json_t *sel = json_deep_copy(v);
                    json_object_del(sel, "id");
                    json_object_del(sel, "held");
                    json_object_del(sel, "household");
                    ok = scn_json_subset(sel, lk);
                    json_decref(sel);
                }
                if (!ok)
                    out_fail(o, vn, text, v, lk);
            } else {
                ok = out_fail_msg(o, vn, text, v, "not supported in real mode");
            }
        }
        json_decref(v);
    }
    json_decref(state);
    return ok;
}

/* WS-6: one loss, attempt or reset of a client's stream, in order. */
typedef struct ws6_ev {
    double t;
    long long seq; /* the journal's order (wire records and resets), or -1 */
    char kind;     /* 'l' loss, 'a' attempt, 'r' reset */
} ws6_ev;

static int ws6_cmp(const void *a, const void *b)
{
    const ws6_ev *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    /* A reset carries the last seq read before it: what has that seq
     * happened before the reset. */
    return (x->kind == 'r') - (y->kind == 'r');
}

/* The events of c's stream from the window on, in order (*n of them; free()
 * the array).  With the proxy they are what crossed the wire (its journal,
 * real_proxy.c: SPEC §7, a verdict rests on our side's record, not on the
 * client's account) plus the harness's own resets; without it, the
 * client's `connection` lines. */
static ws6_ev *ws6_events(rl_world *w, rl_client *c, double from, size_t *n)
{
    size_t cap = json_array_size(c->conn_hist) + json_array_size(c->wire_ws6) + 1, k = 0, i;
    ws6_ev *v = calloc(cap, sizeof *v);
    json_t *e;
    int wire = w->proxy_running;
    if (!v) {
        *n = 0;
        return NULL;
    }
    json_array_foreach(c->conn_hist, i, e) {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        double t = json_number_value(json_object_get(e, "t"));
        int reset = kind && !strcmp(kind, "reset");
        if (t < from || !kind || (wire && !reset))
            continue;
        json_t *sq = json_object_get(e, "seq");
        v[k++] = (ws6_ev){t, sq ? (long long)json_integer_value(sq) : -1, reset ? 'r' : kind[0]};
    }
    if (wire) {
        json_array_foreach(c->wire_ws6, i, e) {
            double t = json_number_value(json_object_get(e, "t"));
            long long seq = (long long)json_integer_value(json_object_get(e, "seq"));
            if (w->from_seq >= 0 ? seq <= w->from_seq : t < from)
                continue;
            v[k++] = (ws6_ev){t, seq, json_string_value(json_object_get(e, "kind"))[0]};
        }
        qsort(v, k, sizeof *v, ws6_cmp);
    }
    *n = k;
    return v;
}

/* The CPU wait (ms) of the client and the harness's reader as sampled at
 * the first `connection` line read at or after t (rl_wait_cpu_ms), or -1. */
static double cpu_wait_at(rl_client *c, double t)
{
    size_t i;
    json_t *e;
    json_array_foreach(c->conn_hist, i, e) {
        json_t *cw = json_object_get(e, "cpu_wait");
        if (cw && json_number_value(json_object_get(e, "t")) >= t)
            return json_number_value(cw);
    }
    return -1;
}

/* WS-6 on real sockets: the delay before each connect attempt that follows
 * a lost connection (an attempt after a reset - start, online, offline, a
 * new token - is immediate and not counted), in virtual ms (wall / F).
 * The tolerance is the scenario's, but never under what this machine can
 * show: RL_TIMING_FLOOR_MS plus 3 x the lateness measured in this run, in
 * wall time, reported with the result. */
static int reconnect_delays(rl_world *w, rl_client *c, const scn_node *val, double from,
                            const char *text, rl_out *o)
{
    const scn_node *list = val->kind == SCN_MAP ? scn_map_get(val, "delays") : val;
    int64_t tol = 100;
    if (val->kind == SCN_MAP && scn_map_get(val, "tolerance"))
        scn_duration(scn_map_get(val, "tolerance"), &tol);
    double floor_v = (RL_TIMING_FLOOR_MS + 3 * w->jitter_ms) / w->F;
    double tolv = (double)tol > floor_v ? (double)tol : floor_v;
    json_t *have = json_array();
    /* waited[j]: wall ms the client and the harness's reader spent
     * runnable without a CPU between the loss and the attempt of delay j
     * (schedstat, rl_wait_cpu_ms, sampled as the client's `connection`
     * lines are read): a timer fires that much late on a loaded machine
     * whatever the client does, so it is allowed on top of the tolerance,
     * late side only, and reported.  A client without such lines is
     * allowed nothing. */
    double waited[64] = {0}, loss = -1, most_waited = 0;
    size_t n = 0;
    ws6_ev *ev = ws6_events(w, c, from, &n);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].kind == 'l') {
            loss = ev[i].t;
        } else if (ev[i].kind == 'r') {
            loss = -1;
        } else if (ev[i].kind == 'a') {
            if (loss >= 0) {
                size_t j = json_array_size(have);
                double w0 = cpu_wait_at(c, loss), w1 = cpu_wait_at(c, ev[i].t);
                if (j < sizeof waited / sizeof *waited && w0 >= 0 && w1 > w0)
                    waited[j] = w1 - w0;
                json_array_append_new(have,
                                      json_integer((json_int_t)((ev[i].t - loss) / w->F + 0.5)));
            }
            loss = -1;
        }
    }
    free(ev);
    int ok = list && json_array_size(have) >= list->n;
    for (size_t j = 0; ok && j < list->n; j++) {
        int64_t want = 0;
        scn_duration(list->items[j], &want);
        double got = (double)json_integer_value(json_array_get(have, j));
        double wj = j < sizeof waited / sizeof *waited ? waited[j] : 0;
        if (wj > most_waited)
            most_waited = wj;
        if (got < (double)want - tolv || got > (double)want + tolv + wj / w->F)
            ok = 0;
    }
    if (!ok) {
        char *want = scn_node_text(list);
        char buf[300];
        snprintf(buf, sizeof buf, "%s (tolerance %.0f ms virtual = %.0f ms wall at F = %g, "
                                  "measured jitter %.0f ms, up to %.0f ms wall more where the "
                                  "client waited for a CPU; %s)", want ? want : "?", tolv,
                 tolv * w->F, w->F, w->jitter_ms, most_waited,
                 w->proxy_running ? "losses and attempts as the wire shows them"
                                  : "from the client's connection lines");
        free(want);
        json_t *exp = json_string(buf);
        out_fail(o, val, text, exp, have);
        json_decref(exp);
    }
    json_decref(have);
    return ok;
}

/* The history kind of an expectation key; 0 when it is none. */
static int hist_kind_of(const char *k, hist_kind *hk)
{
    static const struct {
        const char *key;
        hist_kind kind;
    } keys[] = {{"received", H_RECEIVED}, {"notified", H_NOTIFIED}, {"requests", H_REQUESTS},
                {"closed", H_CLOSED},     {"frames", H_FRAMES}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(k, keys[i].key)) {
            *hk = keys[i].kind;
            return 1;
        }
    *hk = H_RECEIVED;
    return 0;
}

/* The client's closes, `by` filled in from the wire where the client's own
 * line could not tell (a 4008): a new array. */
static json_t *closes_with_wire(rl_client *c)
{
    json_t *e = json_copy(c->closed), *x;
    size_t q;
    json_array_foreach(e, q, x) {
        /* code 0 "by network" may be a refused upgrade (the app's
         * line cannot tell); a 4008 has no `by` (either watchdog). */
        int refused = json_integer_value(json_object_get(x, "code")) == 0;
        if (json_object_get(x, "by") && !refused)
            continue;
        /* The first close frame of that code around the app's line:
         * the initiator's (the other side echoes it, RFC 6455). */
        double t = json_number_value(json_object_get(x, "t"));
        json_t *hit = NULL;
        size_t r;
        json_t *wc;
        json_array_foreach(c->wire_closes, r, wc) {
            double tw = json_number_value(json_object_get(wc, "t"));
            int same = refused ? json_is_true(json_object_get(wc, "refused"))
                               : json_equal(json_object_get(wc, "code"),
                                            json_object_get(x, "code"));
            if (same && tw > t - 2000 && tw < t + 500) {
                hit = wc;
                break;
            }
        }
        if (hit) {
            json_t *y = json_deep_copy(x);
            json_object_set(y, "by", json_object_get(hit, "by"));
            json_object_set(y, "code", json_object_get(hit, "code"));
            json_array_set_new(e, q, y);
        }
    }
    return e;
}

static int eval_client(rl_world *w, rl_client *c, const scn_node *asserts, size_t i0, size_t i1,
                       double from, rl_out *o)
{
    json_t *st = NULL;
    int ok = 1;
    for (size_t i = i0; ok && i < i1; i++) {
        const char *k = asserts->keys[i]->str;
        const scn_node *vn = asserts->items[i];
        json_t *v = scn_node_json(vn);
        rl_xlate_times(w, v);
        char text[160];
        snprintf(text, sizeof text, "%s.%s", c->spec->name, k);
        hist_kind hk;
        int is_hist = hist_kind_of(k, &hk);
        if (w->proxy_running && (hk == H_REQUESTS || hk == H_FRAMES) && is_hist) {
            /* What crossed the wire, from the proxy's journal (SPEC §7). */
            chk_window win = window_of(w, from, 1);
            ok = hist(w, o, vn, text, hk, hk == H_FRAMES ? c->wire_frames : c->wire_http, &win,
                      0);
            json_decref(v);
            continue;
        }
        /* A foreign client (--client-cmd): its requests are judged from
         * what our server logged of them (SPEC §7: our side of the wire),
         * its connection from its own level-1 `connection` lines. */
        if (w->o->client_cmd && !strcmp(k, "requests")) {
            json_t *mine = json_array(), *e;
            size_t q;
            json_array_foreach(w->srv_requests, q, e)
                if (!strcmp(json_string_value(json_object_get(e, "from")) ?: "", c->spec->name))
                    json_array_append(mine, e);
            chk_window win = window_of(w, from, 0);
            ok = hist(w, o, vn, text, H_REQUESTS, mine, &win, CHK_NO_QUERY); /* */
            json_decref(mine);
            json_decref(v);
            continue;
        }
        if (w->o->client_cmd && !strcmp(k, "connection")) {
            json_t *act = json_string(c->state[0] ? c->state : "idle");
            ok = json_equal(v, act);
            if (!ok)
                out_fail(o, vn, text, v, act);
            json_decref(act);
            json_decref(v);
            continue;
        }
        if (!strcmp(k, "reconnect_delays")) {
            ok = reconnect_delays(w, c, vn, from, text, o);
            json_decref(v);
            continue;
        }
        chk_window win = window_of(w, from, 0);
        if (!strcmp(k, "log")) {
            chk_logs logs = {0};
            add_logs(&logs, c->logs, c->spec->name);
            ok = logs_expect(o, vn, text, &logs, c->spec->name, &win);
            chk_logs_free(&logs);
        } else if (!strcmp(k, "connect_attempts")) {
            /* WS-6: with the proxy, the upgrades that crossed the wire. */
            long n = 0;
            size_t q;
            json_t *e;
            chk_window ww = window_of(w, from, 1);
            if (w->proxy_running) {
                json_array_foreach(c->wire_ws6, q, e) {
                    const char *kd = json_string_value(json_object_get(e, "kind"));
                    n += kd && !strcmp(kd, "attempt") && chk_in_window(e, &ww);
                }
            } else {
                json_array_foreach(c->attempts, q, e) n += chk_in_window(e, &win);
            }
            scn_outcome co = {0};
            chk_count(vn, n, "connect attempts", &co);
            ok = from_chk(o, &co, vn, text);
        } else if (is_hist) {
            json_t *hs = hk == H_RECEIVED   ? json_incref(c->events)
                         : hk == H_NOTIFIED ? json_incref(c->notes)
                         : hk == H_REQUESTS ? json_incref(c->http)
                         : hk == H_FRAMES   ? json_incref(c->frames)
                         : w->proxy_running ? closes_with_wire(c)
                                            : json_incref(c->closed);
            ok = hist(w, o, vn, text, hk, hs, &win, 0);
            json_decref(hs);
        } else if (!strcmp(k, "cached")) {
            json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
            size_t j;
            json_t *t;
            json_array_foreach(list, j, t) {
                json_t *ans = NULL;
                if (!c->running) {
                    ok = app_down(o, vn, text, c->spec->name);
                    break;
                }
                if (rl_client_cmd(w, c, json_pack("{s:s,s:O}", "cmd", "cached", "id",
                                               json_object_get(t, "id")), &ans) != 0) {
                    ok = out_fail_msg(o, vn, text, t, "no answer");
                    break;
                }
                json_t *task = json_object_get(ans, "task");
                if (!task || !scn_json_subset(t, task)) {
                    ok = out_fail(o, vn, text, t, task);
                    json_decref(ans);
                    break;
                }
                json_decref(ans);
            }
            json_decref(list);
        } else {
            if (!st) {
                if (!c->running) {
                    ok = app_down(o, vn, text, c->spec->name);
                    json_decref(v);
                    break;
                }
                if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "status"), &st) != 0) {
                    ok = out_fail_msg(o, vn, text, v, "no status answer");
                    json_decref(v);
                    break;
                }
            }
            if (!strcmp(k, "queue") || !strcmp(k, "dead_letter")) {
                ok = list_expect(o, vn, text, v, json_object_get(st, k));
            } else if (!strcmp(k, "conflicts")) {
                ok = list_expect(o, vn, text, v, json_object_get(st, "conflicts"));
            } else if (!strcmp(k, "connection") || !strcmp(k, "online") ||
                       !strcmp(k, "applied_revision") || !strcmp(k, "locks")) {
                json_t *act = json_object_get(st, k);
                ok = act && json_equal(v, act);
                if (!ok && json_is_number(v) && json_is_number(act))
                    ok = json_number_value(v) == json_number_value(act);
                if (!ok)
                    out_fail(o, vn, text, v, act);
            } else if (!strcmp(k, "status")) {
                ok = scn_json_subset(v, st);
                if (!ok)
                    out_fail(o, vn, text, v, st);
            } else if (!strcmp(k, "cache")) {
                json_t *cache = json_object_get(st, "cache"), *ids = json_object_get(cache, "ids");
                json_int_t entries = json_integer_value(json_object_get(cache, "entries")),
                           bytes = json_integer_value(json_object_get(cache, "bytes"));
                const char *ck;
                json_t *cv;
                json_object_foreach(v, ck, cv) {
                    if (!strcmp(ck, "entries"))
                        ok &= json_integer_value(cv) == entries;
                    else if (!strcmp(ck, "bytes"))
                        ok &= json_integer_value(cv) == bytes;
                    else if (!strcmp(ck, "max_bytes"))
                        ok &= bytes <= json_integer_value(cv);
                    else if (!strcmp(ck, "min_bytes"))
                        ok &= bytes >= json_integer_value(cv);
                    else if (!strcmp(ck, "ids"))
                        ok &= json_equal(cv, ids);
                    else if (!strcmp(ck, "contains") || !strcmp(ck, "missing")) {
                        size_t j;
                        json_t *id;
                        json_array_foreach(cv, j, id) {
                            int has = 0;
                            size_t q;
                            json_t *x;
                            json_array_foreach(ids, q, x) has |= json_equal(x, id);
                            ok &= !strcmp(ck, "contains") ? has : !has;
                        }
                    } else
                        ok = 0;
                }
                if (!ok)
                    out_fail(o, vn, text, v, cache);
            } else {
                ok = out_fail_msg(o, vn, text, v, "not supported in real mode");
            }
        }
        json_decref(v);
    }
    json_decref(st);
    return ok;
}

rl_client *rl_client_by_name(rl_world *w, const char *n)
{
    for (size_t i = 0; i < w->nc; i++)
        if (!strcmp(w->c[i].spec->name, n))
            return &w->c[i];
    return NULL;
}

/* Window start (wall ms) of an expect mapping: since MARK / within D. */
static double window_from(rl_world *w, const scn_node *e)
{
    const char *since = scn_str(scn_map_get(e, "since"));
    if (since) {
        json_t *m = json_object_get(w->marks, since);
        return m ? json_number_value(m) : 0;
    }
    const scn_node *within = scn_map_get(e, "within");
    int64_t ms;
    if (within && scn_duration(within, &ms) == 0)
        return rl_wt(w) - (double)ms * w->F - w->slack;
    return -1;
}

static int eval_log_item(rl_world *w, const scn_node *it, double from, rl_out *o)
{
    const char *actor = scn_str(scn_map_get(it, "actor"));
    const scn_node *since = scn_map_get(it, "since");
    if (since || scn_map_get(it, "within"))
        from = window_from(w, it);
    chk_logs all = {0};
    add_logs(&all, w->srv_logs, "server");
    for (size_t i = 0; i < w->nc; i++)
        add_logs(&all, w->c[i].logs, w->c[i].spec->name);
    chk_window win = window_of(w, from, 0);
    char text[160];
    snprintf(text, sizeof text, "%s.log", actor ? actor : "all");
    int ok = logs_expect(o, it, text, &all, NULL, &win);
    chk_logs_free(&all);
    return ok;
}

/* ---- per assertion ---------------------------------------------------------- */

const char *rl_unobservable(rl_world *w, const char *actor, const char *key, const scn_node *v)
{
    /* The reasons live in one table (real_lint.c), shared with lint. */
    int id = rl_unobservable_for(w->own, w->o->client_cmd != NULL, w->proxy_running, actor, key,
                                 v);
    return id >= 0 ? rl_diffs[id].why : NULL;
}

int rl_items(rl_world *w, const scn_node *e, int is_log, rl_item *items, int max)
{
    int n = 0;
    if (is_log) {
        for (size_t m = 0; m < (e->kind == SCN_SEQ ? e->n : 1) && n < max; m++) {
            const scn_node *it = e->kind == SCN_SEQ ? e->items[m] : e;
            const char *actor = scn_str(scn_map_get(it, "actor"));
            rl_item *x = &items[n++];
            memset(x, 0, sizeof *x);
            x->log = it;
            x->actor = actor;
            x->key = "log";
            x->node = it;
            x->why = rl_unobservable(w, actor, "log", it);
        }
        return n;
    }
    for (size_t i = 0; i < e->n; i++) {
        const char *k = e->keys[i]->str;
        const scn_node *v = e->items[i];
        if (!strcmp(k, "since") || !strcmp(k, "within") || !strcmp(k, "timeout"))
            continue;
        if (v->kind != SCN_MAP)
            continue;
        for (size_t j = 0; j < v->n && n < max; j++) {
            rl_item *x = &items[n++];
            memset(x, 0, sizeof *x);
            x->actor = k;
            x->map = v;
            x->index = j;
            x->key = v->keys[j]->str;
            x->node = v->items[j];
            x->why = rl_unobservable(w, k, x->key, x->node);
        }
    }
    return n;
}

int rl_eval_item(rl_world *w, const scn_node *e, rl_item *x, rl_out *o)
{
    rl_out_clear(o);
    o->ok = 1;
    const char *since = x->log ? NULL : scn_str(scn_map_get(e, "since"));
    json_t *ms = since ? json_object_get(w->mark_seqs, since) : NULL;
    w->from_seq = ms ? (long long)json_integer_value(ms) : -1;
    if (x->log)
        return eval_log_item(w, x->log, -1, o);
    double from = window_from(w, e);
    if (!strcmp(x->actor, "server"))
        return eval_server(w, x->map, x->index, x->index + 1, from, o);
    rl_client *c = rl_client_by_name(w, x->actor);
    return c ? eval_client(w, c, x->map, x->index, x->index + 1, from, o) : 1;
}

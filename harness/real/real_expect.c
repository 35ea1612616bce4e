/*
 * real_expect.c - expectations in real mode, evaluated on what the real
 * programs wrote (real_world.h): client observables and log lines, our
 * server's request log and /_hp/state, or, against a foreign server, what
 * the harness itself reads through the REST API (GET ?since=0).
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "real_world.h"
#include "scn_run.h"

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
    o->expected = exp ? json_dumps(exp, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("?");
    o->actual = act ? json_dumps(act, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("nothing");
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

/* Entry e matches selector sel (count keys ignored). */
static int sel_match(json_t *sel, json_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach(sel, k, v) {
        if (!strcmp(k, "count") || !strcmp(k, "at_least") || !strcmp(k, "at_most") ||
            !strcmp(k, "actor") || !strcmp(k, "since") || !strcmp(k, "within") ||
            !strcmp(k, "same_idem_key"))
            continue;
        json_t *a = json_object_get(e, k);
        if (!strcmp(k, "idem_key") && json_is_boolean(v)) {
            /* true: the request had an Idempotency-Key; false: none */
            if (json_is_true(v) != json_is_string(a))
                return 0;
        } else if (!strcmp(k, "level")) {
            if (rl_level_rank(json_string_value(a)) < rl_level_rank(json_string_value(v)))
                return 0;
        } else if (!strcmp(k, "pattern")) {
            regex_t re;
            if (!json_is_string(v) || regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB))
                return 0;
            const char *text = json_string_value(json_object_get(e, "text"));
            int m = text && regexec(&re, text, 0, NULL, 0) == 0;
            regfree(&re);
            if (!m)
                return 0;
        } else if (!strcmp(k, "path") && json_is_string(v) && json_is_string(a)) {
            const char *pat = json_string_value(v), *act = json_string_value(a);
            char buf[512], pbuf[512];
            if (strchr(pat, '?') && !strchr(act, '?')) {
                /* hp-fake-server's request log omits the query: only
                 * the path part can be checked in real mode. */
                size_t n = strcspn(pat, "?");
                snprintf(pbuf, sizeof pbuf, "%.*s", (int)n, pat);
                pat = pbuf;
            } else if (!strchr(pat, '?')) {
                size_t n = strcspn(act, "?");
                snprintf(buf, sizeof buf, "%.*s", (int)n, act);
                act = buf;
            }
            if (fnmatch(pat, act, 0) != 0)
                return 0;
        } else if (!a || !scn_json_subset(v, a)) {
            return 0;
        }
    }
    return 1;
}

/* Word forms: "TASK_UPDATED t1", "CONFLICT t1", "PUT /path 409". */
static json_t *word_sel(const char *what, const char *word)
{
    char a[128] = "", b[512] = "", c[32] = "";
    int n = sscanf(word, "%127s %511s %31s", a, b, c);
    json_t *s = json_object();
    if (!strcmp(what, "received")) {
        json_object_set_new(s, "event_type", json_string(a));
        if (n >= 2)
            json_object_set_new(s, "entity_id", json_string(b));
    } else if (!strcmp(what, "notified")) {
        json_object_set_new(s, "type", json_string(a));
        if (n >= 2)
            json_object_set_new(s, "entity_id", json_string(b));
    } else if (!strcmp(what, "frames")) {
        json_object_set_new(s, "type", json_string(a));
    } else if (!strcmp(what, "requests")) {
        json_object_set_new(s, "method", json_string(a));
        if (n >= 2)
            json_object_set_new(s, "path", json_string(b));
        if (n >= 3)
            json_object_set_new(s, "status", json_integer(atoi(c)));
    } else {
        json_object_set_new(s, "message", json_string(a));
    }
    return s;
}

static json_t *as_sel(const char *what, json_t *x)
{
    return json_is_string(x) ? word_sel(what, json_string_value(x)) : json_incref(x);
}

/* Compact view of entries for "got ..." (drops bulky keys). */
static json_t *summary(json_t *entries)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (i >= 20) {
            json_array_append_new(out, json_string("..."));
            break;
        }
        const char *line = json_string_value(json_object_get(e, "line"));
        if (line) {
            json_array_append_new(out, json_string(line));
            continue;
        }
        json_t *c = json_deep_copy(e);
        json_object_del(c, "t");
        json_object_del(c, "kind");
        json_object_del(c, "payload");
        json_array_append_new(out, c);
    }
    return out;
}

/* A history expectation (SCENARIOS §7.1) on entries already windowed. */
static int hist(rl_out *o, const scn_node *at, const char *text, const char *what, json_t *spec,
                json_t *entries)
{
    int ok = 0;
    if (json_is_array(spec) || (json_is_object(spec) && json_object_get(spec, "exactly"))) {
        int exact = !json_is_array(spec);
        json_t *list = exact ? json_object_get(spec, "exactly") : spec;
        size_t j = 0, i;
        json_t *e;
        if (exact) {
            ok = json_array_size(list) == json_array_size(entries);
            for (i = 0; ok && i < json_array_size(list); i++) {
                json_t *s = as_sel(what, json_array_get(list, i));
                ok = sel_match(s, json_array_get(entries, i));
                json_decref(s);
            }
        } else {
            json_array_foreach(entries, i, e) {
                if (j >= json_array_size(list))
                    break;
                json_t *s = as_sel(what, json_array_get(list, j));
                if (sel_match(s, e))
                    j++;
                json_decref(s);
            }
            ok = j == json_array_size(list);
        }
    } else {
        json_t *s = as_sel(what, spec);
        size_t n = 0, i;
        json_t *e;
        const char *key1 = NULL;
        int same_key = 1; /* same_idem_key: every match carries one shared key */
        json_array_foreach(entries, i, e) {
            if (!sel_match(s, e))
                continue;
            n++;
            const char *key = json_string_value(json_object_get(e, "idem_key"));
            if (!key || (key1 && strcmp(key, key1)))
                same_key = 0;
            if (!key1)
                key1 = key;
        }
        json_t *cnt = json_object_get(s, "count"), *lo = json_object_get(s, "at_least"),
               *hi = json_object_get(s, "at_most");
        if (cnt)
            ok = (json_int_t)n == json_integer_value(cnt);
        else if (lo || hi)
            ok = (!lo || (json_int_t)n >= json_integer_value(lo)) &&
                 (!hi || (json_int_t)n <= json_integer_value(hi));
        else
            ok = n >= 1;
        if (ok && json_is_true(json_object_get(s, "same_idem_key")))
            ok = same_key;
        json_decref(s);
        if (!ok) {
            json_t *act = summary(entries);
            char buf[64];
            snprintf(buf, sizeof buf, "%zu matching", n);
            json_array_insert_new(act, 0, json_string(buf));
            out_fail(o, at, text, spec, act);
            json_decref(act);
            return 0;
        }
        return 1;
    }
    if (!ok) {
        json_t *act = summary(entries);
        out_fail(o, at, text, spec, act);
        json_decref(act);
    }
    return ok;
}

/* Entries with "t" >= from (wall ms). */
static json_t *windowed(json_t *entries, double from)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (json_number_value(json_object_get(e, "t")) >= from)
            json_array_append(out, e);
    }
    return out;
}

/* Records from the proxy's journal: a `since: mark` window is exact in
 * journal sequence numbers (w->from_seq); otherwise by time. */
static json_t *windowed_wire(rl_world *w, json_t *entries, double from)
{
    if (w->from_seq < 0)
        return windowed(entries, from);
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (json_integer_value(json_object_get(e, "seq")) > w->from_seq)
            json_array_append(out, e);
    }
    return out;
}

static json_t *ids_of(json_t *items, const char *key)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e) json_array_append(out, json_object_get(e, key));
    return out;
}

/* queue / dead_letter forms: number, list of ids, {length, entities, items}. */
static int list_expect(rl_out *o, const scn_node *at, const char *text, json_t *exp, json_t *items)
{
    json_t *ids = ids_of(items, "entity_id");
    int ok = 1;
    if (json_is_integer(exp))
        ok = json_integer_value(exp) == (json_int_t)json_array_size(items);
    else if (json_is_array(exp))
        ok = json_equal(exp, ids);
    else if (json_is_object(exp)) {
        json_t *len = json_object_get(exp, "length"), *ent = json_object_get(exp, "entities"),
               *it = json_object_get(exp, "items");
        if (len && json_integer_value(len) != (json_int_t)json_array_size(items))
            ok = 0;
        if (ent && !json_equal(ent, ids))
            ok = 0;
        if (it && !scn_json_subset(it, items))
            ok = 0;
    } else
        ok = 0;
    if (!ok)
        out_fail(o, at, text, exp, items);
    json_decref(ids);
    return ok;
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
        if (!strcmp(k, "requests") || !strcmp(k, "log")) {
            json_t *src = !strcmp(k, "log") ? json_incref(w->srv_logs)
                          : wire_requests(w, vn)  ? clients_requests(w)
                                                  : json_incref(w->srv_requests);
            json_t *e = src != w->srv_logs && src != w->srv_requests && w->proxy_running
                            ? windowed_wire(w, src, from)
                            : windowed(src, from);
            ok = hist(o, vn, text, k, v, e);
            json_decref(e);
            json_decref(src);
        } else {
            if (!state)
                state = server_state(w);
            if (!state) {
                ok = out_fail(o, vn, text, v, json_string("no server state (server down?)"));
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
                ok = out_fail(o, vn, text, v, json_string("not supported in real mode"));
            }
        }
        json_decref(v);
    }
    json_decref(state);
    return ok;
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
    double loss = -1;
    size_t i;
    json_t *e;
    json_array_foreach(c->conn_hist, i, e) {
        double t = json_number_value(json_object_get(e, "t"));
        if (t < from)
            continue;
        const char *k = json_string_value(json_object_get(e, "kind"));
        if (!strcmp(k, "loss"))
            loss = t;
        else if (!strcmp(k, "reset"))
            loss = -1;
        else if (!strcmp(k, "attempt")) {
            if (loss >= 0)
                json_array_append_new(have, json_integer((json_int_t)((t - loss) / w->F + 0.5)));
            loss = -1;
        }
    }
    int ok = list && json_array_size(have) >= list->n;
    for (size_t j = 0; ok && j < list->n; j++) {
        int64_t want = 0;
        scn_duration(list->items[j], &want);
        double got = (double)json_integer_value(json_array_get(have, j));
        if (got < (double)want - tolv || got > (double)want + tolv)
            ok = 0;
    }
    if (!ok) {
        char *want = scn_node_text(list);
        char buf[160];
        snprintf(buf, sizeof buf, "%s (tolerance %.0f ms virtual = %.0f ms wall at F = %g, "
                                  "measured jitter %.0f ms)", want ? want : "?", tolv,
                 tolv * w->F, w->F, w->jitter_ms);
        free(want);
        json_t *exp = json_string(buf);
        out_fail(o, val, text, exp, have);
        json_decref(exp);
    }
    json_decref(have);
    return ok;
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
        /* A foreign client (--client-cmd): its requests are judged from
         * what our server logged of them (SPEC §7: our side of the wire),
         * its connection from its own level-1 `connection` lines. */
        if (w->proxy_running && (!strcmp(k, "requests") || !strcmp(k, "frames"))) {
            /* What crossed the wire, from the proxy's journal (SPEC §7). */
            json_t *win = windowed_wire(w, !strcmp(k, "frames") ? c->wire_frames : c->wire_http,
                                        from);
            ok = hist(o, vn, text, k, v, win);
            json_decref(win);
            json_decref(v);
            continue;
        }
        if (w->o->client_cmd && !strcmp(k, "requests")) {
            json_t *mine = json_array(), *e;
            size_t q;
            json_array_foreach(w->srv_requests, q, e)
                if (!strcmp(json_string_value(json_object_get(e, "from")) ?: "", c->spec->name))
                    json_array_append(mine, e);
            json_t *win = windowed(mine, from);
            ok = hist(o, vn, text, k, v, win);
            json_decref(win);
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
        json_t *hs = !strcmp(k, "received")   ? c->events
                     : !strcmp(k, "notified") ? c->notes
                     : !strcmp(k, "requests") ? c->http
                     : !strcmp(k, "closed")   ? c->closed
                     : !strcmp(k, "log")      ? c->logs
                     : !strcmp(k, "connect_attempts") ? c->attempts
                     : !strcmp(k, "frames")   ? c->frames
                                              : NULL;
        if (hs == c->attempts && json_is_integer(v)) { /* N: exactly N */
            json_t *spec = json_pack("{s:O}", "count", v);
            json_decref(v);
            v = spec;
        }
        if (hs == c->closed && w->proxy_running) {
            /* The wire says who sent the close frame: fill in `by` where
             * the client's own line could not tell (a 4008). */
            json_t *e = windowed(hs, from), *x;
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
            ok = hist(o, vn, text, k, v, e);
            json_decref(e);
        } else if (hs) {
            json_t *e = windowed(hs, from);
            ok = hist(o, vn, text, k, v, e);
            json_decref(e);
        } else if (!strcmp(k, "cached")) {
            json_t *list = json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
            size_t j;
            json_t *t;
            json_array_foreach(list, j, t) {
                json_t *ans = NULL;
                if (!c->running) {
                    ok = out_fail(o, vn, text, t, json_string("the app is not running"));
                    break;
                }
                if (rl_client_cmd(w, c, json_pack("{s:s,s:O}", "cmd", "cached", "id",
                                               json_object_get(t, "id")), &ans) != 0) {
                    ok = out_fail(o, vn, text, t, json_string("no answer"));
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
                    ok = out_fail(o, vn, text, v, json_string("the app is not running"));
                    json_decref(v);
                    break;
                }
                if (rl_client_cmd(w, c, json_pack("{s:s}", "cmd", "status"), &st) != 0) {
                    ok = out_fail(o, vn, text, v, json_string("no status answer"));
                    json_decref(v);
                    break;
                }
            }
            if (!strcmp(k, "queue") || !strcmp(k, "dead_letter")) {
                ok = list_expect(o, vn, text, v, json_object_get(st, k));
            } else if (!strcmp(k, "conflicts")) {
                json_t *cf = json_object_get(st, "conflicts"), *ids = ids_of(cf, "entity_id");
                ok = json_is_integer(v) ? json_integer_value(v) == (json_int_t)json_array_size(cf)
                                        : json_equal(v, ids);
                if (!ok)
                    out_fail(o, vn, text, v, ids);
                json_decref(ids);
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
                ok = out_fail(o, vn, text, v, json_string("not supported in real mode"));
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
    json_t *all = json_array();
    if (!actor || !strcmp(actor, "server"))
        json_array_extend(all, w->srv_logs);
    for (size_t i = 0; i < w->nc; i++)
        if (!actor || !strcmp(actor, w->c[i].spec->name))
            json_array_extend(all, w->c[i].logs);
    json_t *e = windowed(all, from);
    json_t *spec = scn_node_json(it);
    char text[160];
    snprintf(text, sizeof text, "%s.log", actor ? actor : "every actor");
    int ok = hist(o, it, text, "log", spec, e);
    json_decref(spec);
    json_decref(e);
    json_decref(all);
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

/*
 * scn_expect_state.c - state expectations: what a client's status
 * (cli_status) or the server's state (srv_state) holds at the current
 * instant, and the dispatch of an actor's assertions (scn_expect_actor).
 * A client's history keys (received, notified, ...) go to the history
 * evaluator of scn_expect.c (scn__eval_history).
 *
 * Inputs: the world (sim_world) and an actor's assertion mapping.
 * Outputs: a scn_outcome per assertion (strings malloc'd, owned by the
 * outcome), given to the callback or, for the first failure, to *fail.
 */
#define _GNU_SOURCE
#include "scn_run.h"
#include "scn_expect_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_time.h"

/* ---- client state ---------------------------------------------------------- */

static void fail_at(scn_outcome *o, char *expected, char *actual)
{
    o->ok = 0;
    o->expected = expected;
    o->actual = actual;
}

/* queue / dead_letter forms on the item array `items` (chk_list_form,
 * shared with real mode). */
static void eval_list_form(const scn_node *val, json_t *items, const char *idkey, scn_outcome *o)
{
    json_t *want = scn_node_json(val);
    chk_list_form(want, items, idkey, o);
    json_decref(want);
}

static json_t *sorted_copy(const json_t *a)
{
    /* Insertion sort of strings: small lists. */
    size_t n = json_array_size(a);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s)
            continue;
        size_t j = 0;
        while (j < json_array_size(out) && strcmp(json_string_value(json_array_get(out, j)), s) < 0)
            j++;
        json_array_insert_new(out, j, json_string(s));
    }
    return out;
}

static int contains_str(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    }
    return 0;
}

/* 1 when a connection-state record falls in the window (n since the
 * mark, t within). */
static int conn_in_window(const sim_conn_rec *r, const scn_window *win)
{
    return r->n >= win->n_min && r->t >= win->t_min;
}

/* Reconnect delays: attempt time minus the loss before it, for each
 * attempt that directly follows a loss (an `online`, a new token or the
 * first connect reset the chain: those connects are immediate). */
static json_t *reconnect_delays(sim_world *w, int ci, const scn_window *win)
{
    json_t *out = json_array();
    int64_t loss_t = -1;
    const sim_client *c = &w->cl[ci];
    for (size_t i = 0; i < c->nconn; i++) {
        const sim_conn_rec *r = &c->conn[i];
        if (!conn_in_window(r, win))
            continue;
        const char *k = r->kind;
        int64_t t = r->t;
        if (!strcmp(k, "loss"))
            loss_t = t;
        else if (!strcmp(k, "reset"))
            loss_t = -1;
        else if (!strcmp(k, "attempt")) {
            if (loss_t >= 0)
                json_array_append_new(out, json_integer(t - loss_t));
            loss_t = -1;
        }
    }
    return out;
}

static char *durations_text(const json_t *a)
{
    char buf[2048];
    size_t len = 0;
    buf[len++] = '[';
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        char d[32];
        hp_duration_format(json_integer_value(v), d, sizeof d);
        if (i == SUMMARY_MAX) {
            len += (size_t)snprintf(buf + len, sizeof buf - len - 2, ", ... %zu more",
                                    json_array_size(a) - i);
            break;
        }
        len += (size_t)snprintf(buf + len, sizeof buf - len - 2, "%s%s", i ? ", " : "", d);
    }
    snprintf(buf + len, sizeof buf - len, "]");
    return strdup(buf);
}

static void eval_client(sim_world *w, int ci, const char *key, const scn_node *val,
                        const scn_window *win, scn_outcome *o)
{
    sim_client *c = &w->cl[ci];
    const char *name = c->spec->name;
    o->ok = 1;
    if (!strcmp(key, "received"))
        return scn__eval_history(w, name, H_RECEIVED, val, win, o);
    if (!strcmp(key, "notified"))
        return scn__eval_history(w, name, H_NOTIFIED, val, win, o);
    if (!strcmp(key, "requests"))
        return scn__eval_history(w, name, H_REQUESTS, val, win, o);
    if (!strcmp(key, "closed"))
        return scn__eval_history(w, name, H_CLOSED, val, win, o);
    if (!strcmp(key, "frames"))
        return scn__eval_history(w, name, H_FRAMES, val, win, o);
    if (!strcmp(key, "log")) {
        if (val->kind == SCN_SEQ) {
            for (size_t i = 0; i < val->n && o->ok; i++)
                scn_expect_log(w, name, val->items[i], win, o);
            return;
        }
        scn_expect_log(w, name, val, win, o);
        return;
    }
    if (!strcmp(key, "reconnect_delays")) {
        const scn_node *list = val->kind == SCN_MAP ? scn_map_get(val, "delays") : val;
        int64_t tol = 100;
        if (val->kind == SCN_MAP && scn_map_get(val, "tolerance"))
            scn_duration(scn_map_get(val, "tolerance"), &tol);
        json_t *have = reconnect_delays(w, ci, win);
        int ok = json_array_size(have) >= list->n;
        for (size_t i = 0; ok && i < list->n; i++) {
            int64_t want = 0;
            scn_duration(list->items[i], &want);
            int64_t got = json_integer_value(json_array_get(have, i));
            if (got < want - tol || got > want + tol)
                ok = 0;
        }
        if (!ok) {
            char td[32];
            hp_duration_format(tol, td, sizeof td);
            char *want = scn_node_text(list);
            fail_at(o, scn_asprintf("%s (tolerance %s)", want, td), durations_text(have));
            free(want);
        }
        json_decref(have);
        return;
    }
    if (!strcmp(key, "connect_attempts")) {
        long n = 0;
        for (size_t i = 0; i < c->nconn; i++)
            if (conn_in_window(&c->conn[i], win) && !strcmp(c->conn[i].kind, "attempt"))
                n++;
        chk_count(val, n, "connect attempts", o);
        return;
    }
    /* State expectations need a running app. */
    if (!c->core) {
        fail_at(o, scn_asprintf("%s's app running", name),
                scn_asprintf("%s has crashed (use '%s: restart')", name, name));
        return;
    }
    /* Only what the key reads: the store's parts cost SQLite queries, and a
     * wait_until evaluates this after every simulated event. */
    unsigned parts = !strcmp(key, "status") ? CLI_STATUS_ALL : cli_status_key(key);
    json_t *st = parts ? cli_status_part(c->core, parts) : NULL;
    if (!strcmp(key, "connection") || !strcmp(key, "online") ||
        !strcmp(key, "applied_revision")) {
        json_t *want = scn_node_json(val);
        json_t *have = json_object_get(st, key);
        if (!scn_json_subset(want, have))
            fail_at(o, chk_dump(want), chk_dump(have));
        json_decref(want);
    } else if (!strcmp(key, "queue")) {
        eval_list_form(val, json_object_get(st, "queue"), "entity_id", o);
    } else if (!strcmp(key, "dead_letter")) {
        eval_list_form(val, json_object_get(st, "dead_letter"), "entity_id", o);
    } else if (!strcmp(key, "conflicts")) {
        eval_list_form(val, json_object_get(st, "conflicts"), "entity_id", o);
    } else if (!strcmp(key, "locks")) {
        json_t *want = scn_node_json(val);
        json_t *have = json_object_get(st, "locks");
        json_t *hs = sorted_copy(have), *ws = sorted_copy(want);
        if (!json_equal(hs, ws))
            fail_at(o, chk_dump(want), chk_dump(have));
        json_decref(hs);
        json_decref(ws);
        json_decref(want);
    } else if (!strcmp(key, "cache")) {
        json_t *cache = json_object_get(st, "cache");
        json_t *ids = json_object_get(cache, "ids");
        for (size_t i = 0; i < val->n && o->ok; i++) {
            const char *ck = val->keys[i]->str;
            const scn_node *x = val->items[i];
            int64_t v = 0;
            scn_get_int(x, &v);
            json_int_t entries = json_integer_value(json_object_get(cache, "entries"));
            json_int_t bytes = json_integer_value(json_object_get(cache, "bytes"));
            o->at = val->keys[i];
            if (!strcmp(ck, "entries") && entries != v)
                fail_at(o, scn_asprintf("%lld entries", (long long)v),
                        scn_asprintf("%lld entries %s", (long long)entries, chk_jtxt(ids)));
            else if (!strcmp(ck, "bytes") && bytes != v)
                fail_at(o, scn_asprintf("%lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "max_bytes") && bytes > v)
                fail_at(o, scn_asprintf("at most %lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "min_bytes") && bytes < v)
                fail_at(o, scn_asprintf("at least %lld bytes", (long long)v),
                        scn_asprintf("%lld bytes", (long long)bytes));
            else if (!strcmp(ck, "ids")) {
                json_t *want = scn_node_json(x), *ws = sorted_copy(want), *hs = sorted_copy(ids);
                if (!json_equal(ws, hs))
                    fail_at(o, scn_asprintf("ids %s", chk_jtxt(ws)), chk_dump(hs));
                json_decref(want);
                json_decref(ws);
                json_decref(hs);
            } else if (!strcmp(ck, "contains") || !strcmp(ck, "missing")) {
                int want_in = !strcmp(ck, "contains");
                for (size_t j = 0; j < x->n && o->ok; j++) {
                    const char *id = scn_str(x->items[j]);
                    if (id && contains_str(ids, id) != want_in)
                        fail_at(o, scn_asprintf("%s %s in the cache", id,
                                             want_in ? "present" : "absent"),
                                scn_asprintf("cache ids %s", chk_jtxt(ids)));
                }
            }
        }
        if (o->ok)
            o->at = NULL;
    } else if (!strcmp(key, "cached")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            const char *id = scn_str(scn_map_get(one, "id"));
            json_t *want = scn_node_json(one);
            json_t *have = id ? cli_cached(c->core, id) : NULL;
            if (!have || !scn_json_subset(want, have))
                fail_at(o, chk_dump(want),
                        have ? chk_dump(have) : scn_asprintf("%s not cached", id));
            json_decref(want);
            json_decref(have);
        }
    } else if (!strcmp(key, "status")) {
        json_t *want = scn_node_json(val);
        /* The whole status object on failure (as the server's `state`):
         * the key the writer guessed may sit elsewhere in it. */
        if (!scn_json_subset(want, st))
            fail_at(o, chk_dump(want), chk_dump(st));
        json_decref(want);
    }
    json_decref(st);
}

/* ---- server state ---------------------------------------------------------- */

static json_t *find_task(json_t *state, const char *hh, const char *id, const char **hh_out)
{
    json_t *hhs = json_object_get(state, "households");
    const char *k;
    json_t *v;
    json_object_foreach(hhs, k, v)
    {
        if (hh && strcmp(hh, k))
            continue;
        json_t *t = json_object_get(json_object_get(v, "tasks"), id);
        if (t) {
            if (hh_out)
                *hh_out = k;
            return t;
        }
    }
    return NULL;
}

static void eval_server(sim_world *w, const char *key, const scn_node *val,
                        const scn_window *win, scn_outcome *o)
{
    o->ok = 1;
    if (!strcmp(key, "requests"))
        return scn__eval_history(w, "server", H_REQUESTS, val, win, o);
    if (!strcmp(key, "log")) {
        if (val->kind == SCN_SEQ) {
            for (size_t i = 0; i < val->n && o->ok; i++)
                scn_expect_log(w, "server", val->items[i], win, o);
            return;
        }
        scn_expect_log(w, "server", val, win, o);
        return;
    }
    if (!w->srv) {
        fail_at(o, strdup("the server running"), strdup("the server has crashed ('server: start')"));
        return;
    }
    /* Only the part of srv_state() the key reads (a wait_until evaluates
     * this after every simulated event, and the whole state parses every
     * task): task and no_task read one task per item, the others their
     * part; "state" compares and prints the whole.  srv_state() flushes
     * the write group first: so does every path here, even one that
     * reads nothing. */
    srv_flush(w->srv);
    unsigned parts = !strcmp(key, "revision")      ? SRV_STATE_REVISIONS
                     : !strcmp(key, "lock")        ? SRV_STATE_LOCKS
                     : !strcmp(key, "connections") ? SRV_STATE_CONNS
                     : !strcmp(key, "state")       ? SRV_STATE_ALL
                                                   : 0;
    json_t *st = parts ? srv_state_part(w->srv, parts, NULL) : NULL;
    if (!strcmp(key, "task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            json_t *want = scn_node_json(one);
            const char *hh = json_string_value(json_object_get(want, "household"));
            char *hhc = hh ? strdup(hh) : NULL;
            json_object_del(want, "household");
            const char *id = json_string_value(json_object_get(want, "id"));
            json_t *ts = id ? srv_state_part(w->srv, SRV_STATE_TASKS, id) : NULL;
            json_t *have = id ? find_task(ts, hhc, id, NULL) : NULL;
            if (!have || !scn_json_subset(want, have))
                fail_at(o, chk_dump(want),
                        have ? chk_dump(have) : scn_asprintf("no task %s", id ? id : "?"));
            json_decref(ts);
            free(hhc);
            json_decref(want);
        }
    } else if (!strcmp(key, "no_task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1) && o->ok; i++) {
            const char *id = scn_str(val->kind == SCN_SEQ ? val->items[i] : val);
            json_t *ts = id ? srv_state_part(w->srv, SRV_STATE_TASKS, id) : NULL;
            json_t *have = id ? find_task(ts, NULL, id, NULL) : NULL;
            if (have)
                fail_at(o, scn_asprintf("no task %s", id), chk_dump(have));
            json_decref(ts);
        }
    } else if (!strcmp(key, "revision")) {
        json_t *hhs = json_object_get(st, "households");
        json_t *have = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(hhs, k, v)
        {
            json_object_set(have, k, json_object_get(v, "revision"));
        }
        int64_t x;
        if (val->kind == SCN_SCALAR && !scn_get_int(val, &x)) {
            if (json_object_size(have) != 1) {
                fail_at(o, scn_asprintf("revision %lld of the only household", (long long)x),
                        scn_asprintf("%zu households %s: write revision: {household: n}",
                                  json_object_size(have), chk_dump(have)));
            } else {
                json_object_foreach(have, k, v)
                {
                    if (json_integer_value(v) != x)
                        fail_at(o, scn_asprintf("revision %lld", (long long)x),
                                scn_asprintf("revision %lld", (long long)json_integer_value(v)));
                }
            }
        } else {
            json_t *want = scn_node_json(val);
            if (!scn_json_subset(want, have))
                fail_at(o, chk_dump(want), chk_dump(have));
            json_decref(want);
        }
        json_decref(have);
    } else if (!strcmp(key, "lock")) {
        const char *id = scn_str(scn_map_get(val, "id"));
        const char *hh = scn_str(scn_map_get(val, "household"));
        int held = 1;
        if (scn_map_get(val, "held"))
            scn_get_bool(scn_map_get(val, "held"), &held);
        json_t *lock = NULL;
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(st, "households"), k, v)
        {
            if (hh && strcmp(hh, k))
                continue;
            json_t *l = json_object_get(json_object_get(v, "locks"), id ? id : "");
            if (l && !lock)
                lock = l;
        }
        const char *holder = scn_str(scn_map_get(val, "holder"));
        if (!held && lock)
            fail_at(o, scn_asprintf("no lock on %s", id), chk_dump(lock));
        else if (held && !lock)
            fail_at(o, scn_asprintf("a lock on %s%s%s", id, holder ? " held by " : "",
                                 holder ? holder : ""),
                    scn_asprintf("no lock on %s", id));
        else if (held && holder && strcmp(scn__jstr(lock, "holder"), holder))
            fail_at(o, scn_asprintf("lock on %s held by %s", id, holder), chk_dump(lock));
    } else if (!strcmp(key, "connections")) {
        json_t *conns = json_object_get(st, "connections");
        const char *user = val->kind == SCN_MAP ? scn_str(scn_map_get(val, "user")) : NULL;
        int64_t want = 0;
        scn_get_int(val->kind == SCN_MAP ? scn_map_get(val, "count") : val, &want);
        long n = 0;
        size_t i;
        json_t *v;
        json_array_foreach(conns, i, v)
        {
            if (!user || !strcmp(scn__jstr(v, "user"), user))
                n++;
        }
        if (n != want)
            fail_at(o, scn_asprintf("%lld connections%s%s", (long long)want, user ? " of " : "",
                                 user ? user : ""),
                    scn_asprintf("%ld: %s", n, chk_jtxt(conns)));
    } else if (!strcmp(key, "state")) {
        json_t *want = scn_node_json(val);
        if (!scn_json_subset(want, st))
            fail_at(o, chk_dump(want), chk_dump(st));
        json_decref(want);
    }
    json_decref(st);
}

/* One assertion (key i of asserts) of actor ci (-1: the server). */
static void eval_one(sim_world *w, int ci, const scn_node *asserts, size_t i,
                     const scn_window *win, scn_outcome *o)
{
    const char *key = asserts->keys[i]->str;
    if (ci >= 0)
        eval_client(w, ci, key, asserts->items[i], win, o);
    else
        eval_server(w, key, asserts->items[i], win, o);
}

int scn_expect_holds(sim_world *w, const char *actor, const scn_node *asserts,
                     const scn_window *win)
{
    int ci = strcmp(actor, "server") ? scn_client_index(w->s, actor) : -1;
    for (size_t i = 0; i < asserts->n; i++) {
        scn_outcome o = {.quiet = 1};
        eval_one(w, ci, asserts, i, win, &o);
        int ok = o.ok;
        scn_outcome_clear(&o); /* a quiet outcome may still carry texts */
        if (!ok)
            return 0;
    }
    return 1;
}

/* "actor.key", malloc'd: what scn_asprintf("%s.%s") made, without its
 * format parsing, once per assertion of every expect step. */
static char *actor_dot_key(const char *actor, const char *key)
{
    size_t la = strlen(actor), lk = strlen(key);
    char *s = malloc(la + lk + 2);
    if (!s)
        abort(); /* as scn_asprintf */
    memcpy(s, actor, la);
    s[la] = '.';
    memcpy(s + la + 1, key, lk + 1);
    return s;
}

int scn_expect_actor(sim_world *w, const char *actor, const scn_node *asserts,
                     const scn_window *win, scn_each_fn each, void *ud, scn_outcome *fail)
{
    int ci = strcmp(actor, "server") ? scn_client_index(w->s, actor) : -1;
    int failed = 0;
    for (size_t i = 0; i < asserts->n; i++) {
        scn_outcome o = {0};
        const char *key = asserts->keys[i]->str;
        eval_one(w, ci, asserts, i, win, &o);
        if (!o.at)
            o.at = asserts->keys[i];
        o.text = actor_dot_key(actor, key);
        if (o.ok && !o.expected)
            o.expected = scn_node_text(asserts->items[i]);
        if (each)
            each(ud, &o);
        if (!o.ok && !failed) {
            *fail = o;
            failed = 1;
            /* With a callback every assertion is reported (each failure a
             * check); without one (wait_until polling) the first decides. */
            if (!each)
                return 0;
            continue;
        }
        scn_outcome_clear(&o);
    }
    return !failed;
}
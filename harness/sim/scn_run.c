/*
 * scn_run.c - running a validated scenario in the simulator.
 *
 * Steps are interpreted from the node tree scn_load.c validated, in order:
 * actions call the cores (through sim_*), waits run the event loop,
 * expectations are evaluated at the current instant; the first failure is
 * the scenario's ("expected X, got Y" and the file:line of the failing
 * expectation), later expectations still run so every failure is a check.  After the steps the world is healed and the
 * invariants are checked (chk_invariants.c).
 *
 * Nothing here reads the wall clock except wall_ms (which reports leave out
 * of JSON), so the same seed gives the same trace byte for byte.
 */
#define _GNU_SOURCE
#include "scn_run.h"
#include "sim_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hp_time.h"

#define HEAL_MAX_MS (30LL * 60 * 1000)
#define WAIT_UNTIL_DEFAULT_MS (5LL * 60 * 1000)

typedef struct run_ctx {
    const scn_scenario *s;
    sim_world *w;
    scn_result *r;
    json_t *marks;          /* name -> n */
    int step;               /* current step index */
} run_ctx;

/* Records the first failure of the scenario. */
static void fail(run_ctx *x, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void fail(run_ctx *x, int line, const char *fmt, ...)
{
    scn_result *r = x->r;
    if (!r->passed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = scn_vasprintf(fmt, ap);
    va_end(ap);
    r->passed = 0;
    r->failure = msg;
    r->failure_loc = scn_asprintf("%s:%d", x->s->file, line);
    r->failure_step = x->step;
}

static void add_check(scn_result *r, const char *name, int passed, const char *detail)
{
    json_t *c = json_object();
    SIM_SET(c, "name", sim_text(name));
    SIM_SET(c, "passed", json_boolean(passed));
    SIM_SET(c, "detail", sim_text(detail ? detail : ""));
    json_array_append_new(r->checks, c);
}

/* Appends n bytes of s at *o in out (cap bytes), as far as cap - 1 allows. */
static void put_cut(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (n > cap - 1 - *o)
        n = cap - 1 - *o;
    memcpy(out + *o, s, n);
    *o += n;
}

/* out = "file:line text", cut to cap - 1 bytes as snprintf("%s:%d %s")
 * cuts it: by copies, as every expectation of a run names its check
 * (snprintf was ~1,200 instructions of each). */
static void check_name(char *out, size_t cap, const char *file, int line, const char *text)
{
    char num[16], *e = num + sizeof num, *q = e;
    unsigned u = line < 0 ? 0u - (unsigned)line : (unsigned)line;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (line < 0)
        *--q = '-';
    size_t o = 0;
    put_cut(out, cap, &o, file, strlen(file));
    put_cut(out, cap, &o, ":", 1);
    put_cut(out, cap, &o, q, (size_t)(e - q));
    put_cut(out, cap, &o, " ", 1);
    put_cut(out, cap, &o, text, strlen(text));
    out[o] = '\0';
}

/* Every evaluated expectation goes to the trace and to the checks. */
static void record_outcome(void *ud, const scn_outcome *o)
{
    run_ctx *x = ud;
    json_t *t = sim_trace_k(x->w, sim_k_j(x->w, SIM_K_HARNESS), SIM_K_ASSERT);
    SIM_SET(t, "line", json_integer(o->at ? o->at->line : 0));
    SIM_SET(t, "passed", json_boolean(o->ok));
    SIM_SET(t, "text", sim_text(o->text ? o->text : ""));
    SIM_SET(t, "expected", sim_text(o->expected ? o->expected : ""));
    SIM_SET(t, "actual", o->ok ? json_null() : sim_text(o->actual ? o->actual : ""));
    char name[256];
    check_name(name, sizeof name, x->s->file, o->at ? o->at->line : 0, o->text ? o->text : "");
    char *detail = o->ok ? NULL
                         : scn_asprintf("expected %s, got %s", o->expected ? o->expected : "?",
                                     o->actual ? o->actual : "?");
    add_check(x->r, name, o->ok, detail);
    free(detail);
}

static void fail_outcome(run_ctx *x, const scn_outcome *o)
{
    fail(x, o->at ? o->at->line : 0, "%s: expected %s, got %s", o->text ? o->text : "?",
         o->expected ? o->expected : "?", o->actual ? o->actual : "?");
}

/* ---- windows ------------------------------------------------------------ */

static void window_of(run_ctx *x, const scn_node *m, scn_window *win)
{
    win->n_min = 0;
    win->t_min = INT64_MIN;
    const char *since = scn_str(scn_map_get(m, "since"));
    if (since) {
        json_t *n = json_object_get(x->marks, since);
        win->n_min = (uint64_t)json_integer_value(n);
    }
    int64_t d;
    if (scn_map_get(m, "within") && !scn_duration(scn_map_get(m, "within"), &d))
        win->t_min = x->w->now - d;
}

static int is_actor_key(const char *k)
{
    return strcmp(k, "since") && strcmp(k, "within") && strcmp(k, "timeout");
}

/* ---- expectations ------------------------------------------------------- */

static int do_expect(run_ctx *x, const scn_node *m)
{
    scn_window win;
    window_of(x, m, &win);
    int rc = 0;
    for (size_t i = 0; i < m->n; i++) { /* every actor: each failure is a check */
        if (!is_actor_key(m->keys[i]->str))
            continue;
        scn_outcome o = {0};
        if (!scn_expect_actor(x->w, m->keys[i]->str, m->items[i], &win, record_outcome, x, &o)) {
            fail_outcome(x, &o);
            scn_outcome_clear(&o);
            rc = -1;
        }
    }
    return rc;
}

static int do_expect_log(run_ctx *x, const scn_node *m)
{
    if (m->kind == SCN_SEQ) {
        int rc = 0;
        for (size_t i = 0; i < m->n; i++)
            if (do_expect_log(x, m->items[i]))
                rc = -1;
        return rc;
    }
    scn_window win;
    window_of(x, m, &win);
    scn_outcome o = {0};
    scn_expect_log(x->w, NULL, m, &win, &o);
    const char *actor = scn_str(scn_map_get(m, "actor"));
    o.text = scn_asprintf("%s.log", actor ? actor : "all");
    if (!o.at)
        o.at = m;
    if (o.ok && !o.expected)
        o.expected = scn_node_text(m);
    record_outcome(x, &o);
    int rc = 0;
    if (!o.ok) {
        fail_outcome(x, &o);
        rc = -1;
    }
    scn_outcome_clear(&o);
    return rc;
}

typedef struct until_ctx {
    run_ctx *x;
    const scn_node *m;
} until_ctx;

static int until_holds(void *ud)
{
    until_ctx *u = ud;
    scn_window win = {0, INT64_MIN};
    for (size_t i = 0; i < u->m->n; i++) {
        if (!is_actor_key(u->m->keys[i]->str))
            continue;
        /* The verdict alone: the texts of a failure are made once, when
         * the wait times out (do_wait_until). */
        if (!scn_expect_holds(u->x->w, u->m->keys[i]->str, u->m->items[i], &win))
            return 0;
    }
    return 1;
}

static int do_wait_until(run_ctx *x, const scn_node *m)
{
    int64_t timeout = WAIT_UNTIL_DEFAULT_MS;
    if (scn_map_get(m, "timeout"))
        scn_duration(scn_map_get(m, "timeout"), &timeout);
    until_ctx u = {x, m};
    int rc = sim_run(x->w, x->w->now + timeout, until_holds, &u);
    if (rc < 0)
        return -2;
    if (rc == 1)
        return 0;
    /* Timed out: report the first expectation that does not hold. */
    scn_window win = {0, INT64_MIN};
    char td[32];
    hp_duration_format(timeout, td, sizeof td);
    for (size_t i = 0; i < m->n; i++) {
        if (!is_actor_key(m->keys[i]->str))
            continue;
        scn_outcome o = {0};
        if (!scn_expect_actor(x->w, m->keys[i]->str, m->items[i], &win, NULL, NULL, &o)) {
            record_outcome(x, &o);
            fail(x, o.at ? o.at->line : m->line, "%s: not true within %s: expected %s, got %s",
                 o.text, td, o.expected ? o.expected : "?", o.actual ? o.actual : "?");
            scn_outcome_clear(&o);
            return -1;
        }
    }
    fail(x, m->line, "wait_until: not true within %s", td);
    return -1;
}

/* ---- actions ------------------------------------------------------------ */

char *scn_frame_text(const json_t *arg, size_t *len)
{
    const json_t *t = json_is_object(arg) ? json_object_get(arg, "text") : arg;
    const json_t *z = json_is_object(arg) ? json_object_get(arg, "size") : NULL;
    char *out = NULL;
    if (json_is_string(t)) {
        *len = json_string_length(t);
        out = malloc(*len + 1);
        if (out)
            memcpy(out, json_string_value(t), *len + 1);
    } else if (json_is_number(t) || json_is_boolean(t)) {
        /* a plain scalar such as 42 or true, typed by the YAML loader */
        out = json_dumps(t, JSON_ENCODE_ANY);
        *len = out ? strlen(out) : 0;
    } else if (json_is_integer(z)) {
        /* A well-formed HEARTBEAT of exactly n bytes: what reaches the
         * server's size check (1009 above max_frame) and nothing else. */
        static const char head[] = "{\"type\":\"HEARTBEAT\",\"locks\":[],\"pad\":\"";
        json_int_t n = json_integer_value(z);
        size_t h = sizeof head - 1;
        if (n < SCN_FRAME_MIN || n > SCN_FRAME_MAX)
            return NULL;
        out = malloc((size_t)n + 1);
        if (!out)
            return NULL;
        memcpy(out, head, h);
        memset(out + h, 'x', (size_t)n - h - 2);
        memcpy(out + n - 2, "\"}", 3);
        *len = (size_t)n;
    }
    return out;
}

static int client_action(run_ctx *x, int ci, const char *act, const scn_node *arg, long rep,
                         const scn_node *at)
{
    sim_world *w = x->w;
    sim_client *c = &w->cl[ci];
    const char *name = c->spec->name;
    char err[256] = "";
    int64_t d;
    if (!strcmp(act, "connect")) {
        if (sim_client_connect(w, ci, err, sizeof err)) {
            fail(x, at->line, "%s: connect: %s", name, err);
            return -1;
        }
        return 0;
    }
    if (!strcmp(act, "offline") || !strcmp(act, "online")) {
        sim_client_set_online(w, ci, !strcmp(act, "online"));
        return 0;
    }
    if (!strcmp(act, "link")) {
        sim_client_set_link(w, ci, !strcmp(scn_str(arg), "up"));
        return 0;
    }
    if (!strcmp(act, "latency")) {
        scn_duration(arg, &d);
        c->latency_ms = d;
        return 0;
    }
    if (!strcmp(act, "drop")) {
        if (c->ndrops == SIM_MAX_DROPS) {
            /* Reuse a used-up rule. */
            int k = 0;
            while (k < c->ndrops && c->drops[k].remaining > 0)
                k++;
            if (k == c->ndrops) {
                fail(x, at->line, "%s: too many drop rules at once", name);
                return -1;
            }
            c->drops[k] = c->drops[--c->ndrops];
        }
        sim_drop *dr = &c->drops[c->ndrops++];
        dr->from_server = !strcmp(scn_str(scn_map_get(arg, "from")), "server");
        const char *m = scn_str(scn_map_get(arg, "message"));
        snprintf(dr->message, sizeof dr->message, "%s", m ? m : "any");
        int64_t n = 1;
        if (scn_map_get(arg, "count"))
            scn_get_int(scn_map_get(arg, "count"), &n);
        dr->remaining = (int)n;
        return 0;
    }
    if (!strcmp(act, "crash")) {
        sim_client_crash(w, ci);
        return 0;
    }
    if (!strcmp(act, "restart")) {
        int other = -1;
        const char *k = arg ? scn_str(scn_map_get(arg, "key")) : NULL;
        if (k)
            other = !strcmp(k, "other");
        if (sim_client_restart(w, ci, other, err, sizeof err)) {
            fail(x, at->line, "%s: restart: %s", name, err);
            return -2;
        }
        return 0;
    }
    if (!strcmp(act, "new_token")) {
        int64_t ttl = c->spec->token_ttl_ms;
        if (arg && scn_map_get(arg, "ttl"))
            scn_duration(scn_map_get(arg, "ttl"), &ttl);
        sim_client_new_token(w, ci, ttl);
        return 0;
    }
    if (!c->core) {
        fail(x, at->line, "%s: '%s' while the app is crashed (use '%s: restart')", name, act,
             name);
        return -1;
    }
    if (!strcmp(act, "send_frame")) {
        json_t *j = scn_node_json_i(arg, rep);
        size_t n = 0;
        char *text = scn_frame_text(j, &n);
        json_decref(j);
        if (!text) {
            fail(x, at->line, "%s: send_frame: out of memory", name);
            return -1;
        }
        int rc = sim_client_send_frame(w, ci, text, n, err, sizeof err);
        if (rc) {
            fail(x, at->line, "%s: send_frame: %s", name, err);
            return -1;
        }
        return 0;
    }
    if (!strcmp(act, "send_request")) {
        json_t *j = scn_node_json_i(arg, rep);
        int rc = sim_client_send_request(w, ci, j, err, sizeof err);
        json_decref(j);
        if (rc) {
            fail(x, at->line, "%s: send_request: %s", name, err);
            return -1;
        }
        return 0;
    }
    if (!strcmp(act, "sync_now")) {
        cli_sync_now(c->core);
        sim_drain(w);
        return 0;
    }
    if (!strcmp(act, "edit") || !strcmp(act, "delete")) {
        json_t *fields = !strcmp(act, "edit") ? scn_node_json_i(arg, rep) : NULL;
        json_t *idj = fields ? json_incref(json_object_get(fields, "id")) : scn_node_json_i(arg, rep);
        const char *id = json_string_value(idj);
        if (fields)
            json_object_del(fields, "id");
        int rc = fields ? cli_edit(c->core, id, fields, err, sizeof err)
                        : cli_delete(c->core, id, err, sizeof err);
        json_t *e = sim_record(w, w->edits);
        SIM_SET(e, "client", sim_text(name));
        SIM_SET(e, "op", sim_text(fields ? "put" : "delete"));
        SIM_SET(e, "entity_id", sim_text(id));
        SIM_SET(e, "fields", fields ? json_incref(fields) : json_null());
        SIM_SET(e, "accepted", json_boolean(rc == 0));
        SIM_SET(e, "line", json_integer(at->line)); /* invariants name the step */
        SIM_SET(e, "step", json_integer(x->step));
        if (rc) {
            /* a refusal is the app's answer, not a scenario error. */
            json_t *t = sim_trace_k(w, sim_k_j(w, SIM_K_HARNESS), SIM_K_STEP);
            SIM_SET(t, "index", json_integer(x->step));
            SIM_SET(t, "line", json_integer(at->line));
            char *txt = scn_asprintf("%s: %s %s refused: %s", name, act, id, err);
            SIM_SET(t, "text", sim_text(txt));
            free(txt);
        }
        json_decref(fields);
        json_decref(idj);
        sim_drain(w);
        return 0;
    }
    if (!strcmp(act, "lock") || !strcmp(act, "unlock")) {
        json_t *idj = scn_node_json_i(arg, rep);
        int rc = !strcmp(act, "lock") ? cli_lock(c->core, json_string_value(idj), err, sizeof err)
                                      : cli_unlock(c->core, json_string_value(idj), err,
                                                   sizeof err);
        json_decref(idj);
        sim_drain(w);
        if (rc) {
            json_t *t = sim_trace_k(w, sim_k_j(w, SIM_K_HARNESS), SIM_K_STEP);
            SIM_SET(t, "index", json_integer(x->step));
            SIM_SET(t, "line", json_integer(at->line));
            char *txt = scn_asprintf("%s: %s refused: %s", name, act, err);
            SIM_SET(t, "text", sim_text(txt));
            free(txt);
        }
        return 0;
    }
    if (!strcmp(act, "choose")) {
        json_t *j = scn_node_json_i(arg, rep);
        int rc = cli_choose(c->core, json_string_value(json_object_get(j, "id")),
                            json_string_value(json_object_get(j, "choice")), err, sizeof err);
        json_decref(j);
        sim_drain(w);
        if (rc) {
            fail(x, at->line, "%s: choose: %s", name, err);
            return -1;
        }
        return 0;
    }
    fail(x, at->line, "%s: unknown action '%s'", name, act);
    return -1;
}

static int server_action(run_ctx *x, const char *act, const scn_node *arg, const scn_node *at)
{
    sim_world *w = x->w;
    if (!strcmp(act, "restart")) {
        sim_server_restart(w);
        return w->error ? -2 : 0;
    }
    if (!strcmp(act, "crash")) {
        sim_server_crash(w);
        return 0;
    }
    if (!strcmp(act, "start")) {
        sim_server_start(w);
        return w->error ? -2 : 0;
    }
    if (!w->srv) {
        fail(x, at->line, "server: '%s' while the server is down (use 'server: start')", act);
        return -1;
    }
    if (!strcmp(act, "force_conflict")) {
        srv_fault_force_conflict(w->srv, scn_str(arg));
        return 0;
    }
    if (!strcmp(act, "fail_requests")) {
        int64_t count = 1, status = 503, ra = -1;
        scn_get_int(scn_map_get(arg, "count"), &count);
        scn_get_int(scn_map_get(arg, "status"), &status);
        if (scn_map_get(arg, "retry_after")) {
            scn_duration(scn_map_get(arg, "retry_after"), &ra);
            ra = (ra + 999) / 1000;
        }
        srv_fault_fail_requests(w->srv, scn_str(scn_map_get(arg, "method")),
                                scn_str(scn_map_get(arg, "path")), (int)count, (int)status,
                                (int)ra);
        return 0;
    }
    fail(x, at->line, "server: unknown action '%s'", act);
    return -1;
}

/* One actor's value: a word, a one-key mapping, or a list of them. */
static int run_actions(run_ctx *x, const char *actor, const scn_node *val, long rep)
{
    if (val->kind == SCN_SEQ) {
        for (size_t i = 0; i < val->n; i++) {
            int rc = run_actions(x, actor, val->items[i], rep);
            if (rc)
                return rc;
        }
        return 0;
    }
    const char *act;
    const scn_node *arg = NULL, *at = val;
    if (val->kind == SCN_SCALAR) {
        act = val->str;
    } else {
        act = val->keys[0]->str;
        arg = scn_is_null(val->items[0]) ? NULL : val->items[0];
        at = val->keys[0];
    }
    if (!strcmp(actor, "server"))
        return server_action(x, act, arg, at);
    return client_action(x, scn_client_index(x->s, actor), act, arg, rep, at);
}

/* ---- steps ---------------------------------------------------------------- */

static int run_step(run_ctx *x, const scn_node *st)
{
    json_t *t = sim_trace_k(x->w, sim_k_j(x->w, SIM_K_HARNESS), SIM_K_STEP);
    SIM_SET(t, "index", json_integer(x->step));
    SIM_SET(t, "line", json_integer(st->line));
    char *txt = scn_node_text(st);
    SIM_SET(t, "text", sim_text(txt));
    free(txt);

    const scn_node *n;
    int64_t d;
    if ((n = scn_map_get(st, "wait"))) {
        scn_duration(n, &d);
        return sim_run(x->w, x->w->now + d, NULL, NULL) < 0 ? -2 : 0;
    }
    if ((n = scn_map_get(st, "wait_until")))
        return do_wait_until(x, n);
    if ((n = scn_map_get(st, "expect")))
        return do_expect(x, n);
    if ((n = scn_map_get(st, "expect_log")))
        return do_expect_log(x, n);
    if ((n = scn_map_get(st, "mark"))) {
        json_object_set_new(x->marks, scn_str(n), json_integer((json_int_t)x->w->nrec));
        return 0;
    }
    int64_t reps = 1;
    if ((n = scn_map_get(st, "repeat")))
        scn_get_int(n, &reps);
    for (int64_t i = 1; i <= reps; i++) {
        for (size_t k = 0; k < st->n; k++) {
            const char *key = st->keys[k]->str;
            if (!strcmp(key, "repeat") || !strcmp(key, "note"))
                continue;
            int rc = run_actions(x, key, st->items[k], n ? (long)i : -1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- healing ----------------------------------------------------------- */

static int quiet(void *ud)
{
    sim_world *w = ud;
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        if (!c->core)
            continue;
        json_t *st = cli_status_part(c->core, CLI_STATUS_CONFLICTS);
        size_t q = (size_t)cli_queue_length(c->core);
        size_t cf = json_array_size(json_object_get(st, "conflicts"));
        json_decref(st);
        if (q > 0 && cf == 0)
            return 0;
    }
    return 1;
}

/* Brings the world back to health (docs/SCENARIOS.md §8) and lets it run
 * until every queue is empty or waits for a conflict choice. */
static int heal(run_ctx *x)
{
    sim_world *w = x->w;
    json_t *t = sim_trace_k(w, sim_k_j(w, SIM_K_HARNESS), SIM_K_STEP);
    SIM_SET(t, "index", json_integer(-1));
    SIM_SET(t, "line", json_integer(0));
    SIM_SET(t, "text", json_string("heal"));
    if (!w->srv_up)
        sim_server_start(w);
    for (size_t i = 0; i < w->ncl; i++) {
        sim_client *c = &w->cl[i];
        char err[256];
        c->ndrops = 0;
        c->latency_ms = c->spec->latency_ms >= 0 ? c->spec->latency_ms : x->s->latency_ms;
        sim_client_set_link(w, (int)i, 1);
        if (!c->core || c->key_other)
            if (sim_client_restart(w, (int)i, 0, err, sizeof err))
                return -2;
        if (!c->online)
            sim_client_set_online(w, (int)i, 1);
        json_t *st = cli_status_part(c->core, CLI_STATUS_CONNECTION);
        const char *conn = json_string_value(json_object_get(st, "connection"));
        int need_token = !c->token || (conn && !strcmp(conn, "auth_required"));
        json_decref(st);
        if (need_token)
            sim_client_new_token(w, (int)i, c->spec->token_ttl_ms);
        if (!c->started && sim_client_connect(w, (int)i, err, sizeof err))
            return -2;
    }
    int rc = sim_run(w, w->now + HEAL_MAX_MS, quiet, w);
    if (rc < 0)
        return -2;
    /* Let acknowledgements and events settle. */
    if (sim_run(w, w->now + 5000, NULL, NULL) < 0)
        return -2;
    return 0;
}

/* ---- entry --------------------------------------------------------------- */

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int scn_run(const scn_scenario *s, const scn_run_opts *opts, scn_result *r)
{
    double w0 = wall_ms();
    memset(r, 0, sizeof *r);
    r->id = strdup(s->id);
    r->name = strdup(s->name);
    r->file = strdup(s->file);
    r->rules = json_deep_copy(s->rules);
    r->tags = json_deep_copy(s->tags);
    r->passed = 1;
    r->failure_step = -1;
    r->trace = json_array();
    r->checks = json_array();
    if (opts && opts->mode && strcmp(opts->mode, "sim")) {
        r->passed = 0;
        r->failure = scn_asprintf("mode '%s' is not run by the scenario engine", opts->mode);
        return -1;
    }
    char err[256] = "";
    sim_world *w = sim_new(s, opts ? opts->seed : 1, r->trace, err, sizeof err);
    if (!w) {
        r->passed = 0;
        r->failure = scn_asprintf("cannot build the simulation: %s", err);
        return -1;
    }
    run_ctx x = {s, w, r, json_object(), 0};
    int runtime = 0;
    for (size_t i = 0; s->steps && i < s->steps->n; i++) {
        x.step = (int)i;
        double ws = wall_ms();
        const scn_node *st = s->steps->items[i];
        int rc = run_step(&x, st);
        sim_sample(w);
        scn_step_wall(r, wall_ms() - ws);
        if (rc == -2 || w->error) {
            runtime = 1;
            break;
        }
        /* A failed expectation does not stop the scenario: the later ones
         * are evaluated too, so a report shows every failed assertion (the
         * first stays r->failure).  A failed action does stop it. */
        if (rc && !scn_map_get(st, "expect") && !scn_map_get(st, "expect_log") &&
            !scn_map_get(st, "wait_until"))
            break;
    }
    if (!runtime && r->passed && opts && opts->after_steps)
        opts->after_steps(w, opts->after_steps_ud);
    int healed = 0;
    if (!runtime && r->passed && s->heal) {
        double ws = wall_ms();
        int rc = heal(&x);
        scn_step_wall(r, wall_ms() - ws);
        if (rc || w->error)
            runtime = 1;
        else
            healed = 1;
        sim_sample(w);
    }
    if (!runtime && r->passed) {
        char *why = chk_invariants(w, r, healed);
        if (why) {
            int line = chk_failed_line(r, &x.step); /* the step its evidence points at */
            fail(&x, line ? line : s->root->line, "%s", why);
            free(why);
        }
    }
    if (runtime) {
        r->passed = 0;
        free(r->failure);
        r->failure = scn_asprintf("runtime error: %s", w->error ? w->error : "simulation failed");
        if (!r->failure_loc && s->steps && x.step >= 0 && (size_t)x.step < s->steps->n)
            r->failure_loc = scn_asprintf("%s:%d", s->file, s->steps->items[x.step]->line);
    }
    r->sim_ms = w->now - s->start_ms;
    r->messages = w->messages;
    json_decref(x.marks);
    sim_free(w);
    scn_expect_cleanup();
    r->wall_ms = wall_ms() - w0;
    return runtime ? -1 : 0;
}

void scn_result_clear(scn_result *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    free(r->file);
    json_decref(r->rules);
    json_decref(r->tags);
    free(r->failure);
    free(r->failure_loc);
    json_decref(r->trace);
    json_decref(r->checks);
    free(r->step_wall_ms);
    memset(r, 0, sizeof *r);
}

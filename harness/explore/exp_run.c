/*
 * exp_run.c - one schedule through the engine, and what explore checks
 * beyond the scenario's own result (explore.h).
 *
 * The schedule is rendered to scenario text and loaded with
 * scn_load_string(), so a run is exactly what `hp-harness run` does with
 * the written file (seed 1, sim mode).  The probe runs after the steps
 * (the epilogue has healed the world by then) and reads the world only.
 */
#define _GNU_SOURCE
#include "explore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "scn_run.h"

void exp_outcome_clear(exp_outcome *o)
{
    free(o->signature);
    free(o->message);
    free(o->expect_yaml);
    memset(o, 0, sizeof *o);
}

typedef struct probe_ctx {
    char *signature, *message;
    char *expect;        /* "  - expect:\n      bob: {...}\n" */
} probe_ctx;

static int in_list(const json_t *items, const char *key, const char *id)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *v = json_string_value(key ? json_object_get(it, key) : it);
        if (v && !strcmp(v, id))
            return 1;
    }
    return 0;
}

static int pending(const json_t *st, const char *id)
{
    return in_list(json_object_get(st, "queue"), "entity_id", id) ||
           in_list(json_object_get(st, "dead_letter"), "entity_id", id) ||
           in_list(json_object_get(st, "conflicts"), "entity_id", id);
}

/* A server frame about entity id that client c lost on the way (a drop
 * rule, a silent link failure).  The connection may live on, and the
 * simulator models no TCP retransmission: the client applies the next
 * event and its applied revision passes the hole, so no replay repairs it
 * (the policy has no gap detection).  Explore does not count such an
 * entity as a convergence failure (docs/SCENARIOS.md, "explore"). */
static int lost_frame(const sim_client *c, const char *id)
{
    for (size_t i = 0; i < c->nframes; i++) {
        const sim_frame_rec *f = &c->frames[i];
        if (f->from_server && f->entity && !strcmp(f->entity, id) &&
            (f->lost || json_object_get(f->tr, "lost")))
            return 1;
    }
    return 0;
}

static char *dumps(const json_t *j)
{
    /* not compact: ", " and ": " keep it a valid YAML flow mapping */
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_ENCODE_ANY);
    return s ? s : strdup("?");
}

/* Convergence: every running client's cache equals the server's tasks of
 * its household, outside what the client still has pending. */
static void check_converge(sim_world *w, probe_ctx *p)
{
    json_t *state = srv_state(w->srv);
    json_t *tasks = json_object_get(json_object_get(json_object_get(state, "households"), "home"),
                                    "tasks");
    for (size_t ci = 0; ci < w->ncl && !p->signature; ci++) {
        sim_client *c = &w->cl[ci];
        if (!c->core)
            continue;
        json_t *st = cli_status_part(c->core, CLI_STATUS_QUEUE | CLI_STATUS_DEAD_LETTER |
                                                  CLI_STATUS_CONFLICTS | CLI_STATUS_CACHE);
        json_t *want = json_array(), *contains = json_array(), *missing = json_array();
        char *first = NULL;
        const char *id;
        json_t *task;
        /* object order is insertion order in jansson: sort the ids */
        json_t *ids = json_array();
        json_object_foreach(tasks, id, task) json_array_append_new(ids, json_string(id));
        size_t nid = json_array_size(ids);
        for (size_t a = 1; a < nid; a++)
            for (size_t b = a; b > 0 && strcmp(json_string_value(json_array_get(ids, b - 1)),
                                               json_string_value(json_array_get(ids, b))) > 0;
                 b--) {
                json_t *x = json_incref(json_array_get(ids, b - 1));
                json_array_set(ids, b - 1, json_array_get(ids, b));
                json_array_set_new(ids, b, x);
            }
        for (size_t k = 0; k < nid; k++) {
            id = json_string_value(json_array_get(ids, k));
            task = json_object_get(tasks, id);
            if (pending(st, id) || lost_frame(c, id))
                continue;
            json_t *have = cli_cached(c->core, id);
            if (!have) {
                json_array_append_new(contains, json_string(id));
                if (!first)
                    first = scn_asprintf("%s's cache has no %s (the server has revision %lld)",
                                         c->spec->name, id,
                                         (long long)json_integer_value(
                                             json_object_get(task, "revision")));
                continue;
            }
            if (!json_equal(have, task)) {
                json_t *diff = json_object();
                json_object_set_new(diff, "id", json_string(id));
                const char *k2;
                json_t *v;
                json_object_foreach(task, k2, v)
                {
                    if (!json_equal(v, json_object_get(have, k2)))
                        json_object_set(diff, k2, v);
                }
                if (!first) {
                    char *ws = dumps(diff), *hs = dumps(have);
                    first = scn_asprintf("%s's cache differs from the server for %s: server %s, "
                                         "cache %s",
                                         c->spec->name, id, ws, hs);
                    free(ws);
                    free(hs);
                }
                json_array_append_new(want, diff);
            }
            json_decref(have);
        }
        json_t *cids = json_object_get(json_object_get(st, "cache"), "ids");
        size_t k;
        json_t *cid;
        json_array_foreach(cids, k, cid)
        {
            const char *s = json_string_value(cid);
            if (s && !json_object_get(tasks, s) && !pending(st, s) && !lost_frame(c, s)) {
                json_array_append_new(missing, json_string(s));
                if (!first)
                    first = scn_asprintf("%s's cache holds %s, which the server does not have",
                                         c->spec->name, s);
            }
        }
        if (first) {
            p->signature = scn_asprintf("converge %s", c->spec->name);
            p->message = first;
            char *cached = json_array_size(want) ? dumps(want) : NULL;
            char *cont = json_array_size(contains) ? dumps(contains) : NULL;
            char *miss = json_array_size(missing) ? dumps(missing) : NULL;
            char *cache = NULL;
            if (cont || miss)
                cache = scn_asprintf("cache: {%s%s%s%s%s}", cont ? "contains: " : "",
                                     cont ? cont : "", cont && miss ? ", " : "",
                                     miss ? "missing: " : "", miss ? miss : "");
            p->expect = scn_asprintf("  # convergence: %s should have the server's values\n"
                                     "  - expect:\n      %s: {%s%s%s%s}\n",
                                     c->spec->name, c->spec->name, cached ? "cached: " : "",
                                     cached ? cached : "", cached && cache ? ", " : "",
                                     cache ? cache : "");
            free(cached);
            free(cont);
            free(miss);
            free(cache);
        }
        json_decref(ids);
        json_decref(want);
        json_decref(contains);
        json_decref(missing);
        json_decref(st);
    }
    json_decref(state);
}

/* No write applied twice: the 2xx answers to one Idempotency-Key all name
 * the same revision (a replay answers the stored first result, Q-3). */
static void check_applied_once(sim_world *w, probe_ctx *p)
{
    json_t *seen = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(w->journal, i, r)
    {
        const char *key = json_string_value(json_object_get(r, "idem_key"));
        json_int_t status = json_integer_value(json_object_get(r, "status"));
        if (!key || status < 200 || status > 299)
            continue;
        json_t *rev = json_object_get(json_object_get(r, "response"), "revision");
        if (!json_is_integer(rev))
            continue;
        json_t *prev = json_object_get(seen, key);
        if (prev && !json_equal(prev, rev)) {
            p->signature = strdup("applied twice");
            p->message = scn_asprintf("the write with Idempotency-Key %s (%s %s from %s) was "
                                      "applied twice: revisions %lld and %lld",
                                      key, json_string_value(json_object_get(r, "method")),
                                      json_string_value(json_object_get(r, "path")),
                                      json_string_value(json_object_get(r, "from")),
                                      (long long)json_integer_value(prev),
                                      (long long)json_integer_value(rev));
            break;
        }
        if (!prev)
            json_object_set(seen, key, rev);
    }
    json_decref(seen);
}

static void probe(struct sim_world *w, void *ud)
{
    probe_ctx *p = ud;
    if (!w->srv)
        return;
    check_applied_once(w, p);
    if (!p->signature)
        check_converge(w, p);
}

static double wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* The signature of an engine failure: what kind of thing failed. */
static char *signature_of(const scn_result *r, int property_line)
{
    const char *f = r->failure ? r->failure : "";
    if (!strncmp(f, "runtime error", 13))
        return strdup("runtime error");
    if (!strncmp(f, "invariant ", 10)) {
        const char *end = strchr(f + 10, ':');
        return strndup(f, end ? (size_t)(end - f) : strlen(f));
    }
    const char *colon = r->failure_loc ? strrchr(r->failure_loc, ':') : NULL;
    if (property_line > 0 && colon && atoi(colon + 1) == property_line)
        return strdup("property");
    const char *end = strchr(f, ':');
    return scn_asprintf("step %.*s", (int)(end ? end - f : (long)strlen(f)), f);
}

static int line_of(const char *text, const char *at)
{
    int line = 1;
    for (const char *p = text; p < at; p++)
        if (*p == '\n')
            line++;
    return line;
}

int exp_run_once(const exp_sched *s, const char *property, exp_outcome *out)
{
    memset(out, 0, sizeof *out);
    double t0 = wall_ms();
    char *extra = property ? scn_asprintf("  # the property\n  - expect: %s\n", property) : NULL;
    char *text = exp_render(s, NULL, extra);
    free(extra);
    int pline = 0;
    if (property) {
        const char *at = strstr(text, "  # the property\n");
        pline = at ? line_of(text, at) + 1 : 0;
    }
    scn_scenario *sc = NULL;
    scn_diags d = {0};
    if (scn_load_string("explore.yaml", text, strlen(text), &sc, &d) != 0) {
        out->failed = -1;
        out->message = scn_asprintf("generated scenario does not load: %s:%d:%d: %s",
                                    d.n ? d.v[0].file : "?", d.n ? d.v[0].line : 0,
                                    d.n ? d.v[0].col : 0, d.n ? d.v[0].msg : "?");
        scn_diags_free(&d);
        free(text);
        return -1;
    }
    probe_ctx p = {0};
    scn_run_opts o = {0};
    o.seed = 1;
    o.mode = "sim";
    o.after_steps = probe;
    o.after_steps_ud = &p;
    scn_result r;
    int rc = scn_run(sc, &o, &r);
    out->messages = r.messages;
    if (p.signature) {
        out->failed = 1;
        out->signature = p.signature;
        out->message = p.message;
        out->expect_yaml = p.expect;
    } else if (rc != 0 || !r.passed) {
        out->failed = 1;
        out->signature = signature_of(&r, pline);
        out->message = scn_asprintf("%s%s%s", r.failure_loc ? r.failure_loc : "",
                                    r.failure_loc ? ": " : "", r.failure ? r.failure : "?");
        free(p.message);
        free(p.expect);
    }
    scn_result_clear(&r);
    scn_free(sc);
    free(text);
    out->wall_ms = wall_ms() - t0;
    return 0;
}

/*
 * real_lint.c - what behaves differently, or cannot be seen, in real mode:
 * ONE table (rl_diffs) of those differences with their reasons, used by
 *   - the skip decision before a real run (real_skip.c),
 *   - the per-assertion `unobservable` verdicts (real_expect.c, through
 *     rl_unobservable_for below),
 *   - `hp-harness lint --mode real` (scn_real_lint below): a warning per
 *     line of a scenario, with the reason, before anything runs,
 * and documented in docs/REAL_MODE.md ("What differs in real mode": a
 * test checks that every entry's name is there).
 *
 * Inputs: a validated scenario and the real-mode options (the target:
 * own or foreign server, foreign client, proxy, time scale, --max-wall).
 * Output: warnings as diagnostics "file:line:col: real mode: ...".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "real.h"
#include "real_world.h"

const rl_diff rl_diffs[RL_DIFF_COUNT] = {
    [RL_D_SERVER_ACTION_FOREIGN] = {"server actions on a foreign server", "skipped",
                                    "the harness neither runs nor controls a foreign server "
                                    "(restart, crash, faults, forced conflicts)"},
    [RL_D_RETRY_AFTER] = {"fail_requests.retry_after", "skipped",
                          "Retry-After is whole seconds on the wire: it cannot be time-scaled"},
    [RL_D_NET_NO_PROXY] = {"latency and link faults without the proxy", "skipped",
                           "a network fault needs hp-fault-proxy: not with --no-proxy or an "
                           "https:// server"},
    [RL_D_DROP_REQUEST] = {"drop of a request with a foreign client", "skipped",
                           "only our own client's socket layer can lose a request before it "
                           "reaches the proxy"},
    [RL_D_POLICY_FOREIGN] = {"server policy overrides on a foreign server", "skipped",
                             "a foreign server runs its own policy"},
    [RL_D_SIM_ONLY] = {"the sim-only tag", "skipped",
                       "the scenario asserts on instants finer than real-time jitter"},
    [RL_D_TOKEN_TTL_CMD] = {"token_ttl with --token-cmd", "skipped",
                            "the command's exp is whole seconds, not aligned to the scaled "
                            "schedule"},
    [RL_D_MAX_WALL] = {"waits longer than --max-wall", "skipped",
                       "the waits take too long in real time at this time scale: lower "
                       "--time-scale or raise --max-wall"},
    [RL_D_WAIT_STRETCHED] = {"short waits stretched", "behaves differently",
                             "a wait shorter than 100 ms of real time is stretched to 100 ms (a "
                             "network hop takes tens of milliseconds on a loaded machine): "
                             "what the simulator shows after it may already be later"},
    [RL_D_CLOSED_BY] = {"closed.by", "behaves differently",
                        "`by` comes from the wire: who sent the first close frame (a 4008 may "
                        "be either side's watchdog, both fire within the same heartbeat), and a "
                        "refused upgrade gives its HTTP status instead of the app's code 0"},
    [RL_D_COUNT_ZERO] = {"negative expectations", "behaves differently",
                         "an expectation holds when it becomes true within 3 s, but `count: 0` "
                         "and `at_most` are evaluated at once: what is still in flight is not "
                         "seen yet"},
    [RL_D_SERVER_LOG_FOREIGN] = {"server log on a foreign server", "unobservable",
                                 "the server's log lines are not on the wire (foreign server)"},
    [RL_D_SERVER_STATE_FOREIGN] = {"server state on a foreign server", "unobservable",
                                   "the server's internal state (connections, locks, /_hp/state) "
                                   "is not on the wire (foreign server)"},
    [RL_D_BODIES_FOREIGN_CLIENT] = {"request bodies of a foreign client", "unobservable",
                                    "request and response bodies: our server does not log them, "
                                    "and a foreign client's own http lines are not evidence "
                                    "(SPEC §7)"},
    [RL_D_FRAMES_NO_PROXY] = {"frames of a foreign client without the proxy", "unobservable",
                              "frames of a foreign client need the fault proxy's journal (not "
                              "its own frame lines): not with --no-proxy or an https:// server"},
    [RL_D_REQUESTS_NEITHER] = {"requests between a foreign client and a foreign server",
                               "unobservable",
                               "a foreign client's requests against a foreign server: neither "
                               "side is ours"},
    [RL_D_FOREIGN_LOG] = {"a foreign client's log", "unobservable",
                          "a foreign client's own log is its account of itself, not evidence"},
    [RL_D_FOREIGN_LEVEL2] = {"a foreign client's state", "unobservable",
                             "a foreign client's state (queue, cache, status...) is its own "
                             "account (level 2 of the contract), not evidence"},
    [RL_D_INVARIANTS] = {"invariants edits_kept and entity_order", "unobservable",
                         "they need the simulator's healing phase and its complete journal"},
    [RL_D_SEND_REQUEST] = {"send_request", "skipped",
                           "a raw request is a simulator probe: the client driver has no such "
                           "command"},
};

/* Does a requests selector ask for what only the wire shows (bodies)? */
int rl_wants_bodies(const scn_node *v)
{
    if (!v)
        return 0;
    if (v->kind == SCN_SEQ) {
        for (size_t i = 0; i < v->n; i++)
            if (rl_wants_bodies(v->items[i]))
                return 1;
        return 0;
    }
    if (v->kind != SCN_MAP)
        return 0;
    if (scn_map_get(v, "exactly"))
        return rl_wants_bodies(scn_map_get(v, "exactly"));
    return scn_map_get(v, "body") || scn_map_get(v, "response");
}

int rl_unobservable_for(int own, int foreign_client, int proxy, const char *actor,
                        const char *key, const scn_node *v)
{
    int server = !actor || !strcmp(actor, "server");
    if (server && !strcmp(key, "requests") && foreign_client && !proxy && rl_wants_bodies(v))
        return RL_D_BODIES_FOREIGN_CLIENT;
    if (server && !own) {
        if (!strcmp(key, "log"))
            return RL_D_SERVER_LOG_FOREIGN;
        if (!strcmp(key, "state") || !strcmp(key, "connections") || !strcmp(key, "lock"))
            return RL_D_SERVER_STATE_FOREIGN;
    }
    if (!server && foreign_client) {
        /* SPEC §7: a verdict about a foreign client never rests on its own
         * account of itself.  Level 1 (notification, connection, event) is
         * what the contract asks it to show; everything else it could only
         * claim. */
        static const char *const level1[] = {"received", "notified", "closed", "connection",
                                             "connect_attempts", "reconnect_delays", "requests",
                                             "frames", NULL};
        int ok1 = 0;
        for (const char *const *l = level1; *l; l++)
            ok1 |= !strcmp(*l, key);
        if (!strcmp(key, "frames") && !proxy)
            return RL_D_FRAMES_NO_PROXY;
        if (!strcmp(key, "requests") && !own && !proxy)
            return RL_D_REQUESTS_NEITHER;
        if (!strcmp(key, "log"))
            return RL_D_FOREIGN_LOG;
        if (!ok1)
            return RL_D_FOREIGN_LEVEL2;
    }
    return -1;
}

/* ---- the linter ------------------------------------------------------------- */

typedef struct lctx {
    const scn_scenario *s;
    rl_diff_fn fn;
    void *ud;
    int own, foreign_client, proxy, token_cmd;
    double F;
    int n;
} lctx;

static void warn(lctx *x, const scn_node *at, rl_diff_id id, const char *detail)
{
    x->fn(x->ud, id, at, detail);
    x->n++;
}

/* `by` anywhere in a closed: expectation (a mapping, a list of them, exactly). */
static const scn_node *find_key(const scn_node *n, const char *key)
{
    if (!n || n->kind == SCN_SCALAR)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == SCN_MAP && !strcmp(n->keys[i]->str, key))
            return n->keys[i];
        const scn_node *k = find_key(n->items[i], key);
        if (k)
            return k;
    }
    return NULL;
}

/* count: 0 or at_most anywhere in an expectation value. */
static const scn_node *find_negative(const scn_node *n)
{
    if (!n || n->kind == SCN_SCALAR)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == SCN_MAP) {
            const char *k = n->keys[i]->str;
            const char *v = scn_str(n->items[i]);
            if (!strcmp(k, "at_most") || (!strcmp(k, "count") && v && !strcmp(v, "0")))
                return n->keys[i];
        }
        const scn_node *k = find_negative(n->items[i]);
        if (k)
            return k;
    }
    return NULL;
}

static void lint_assert(lctx *x, const char *actor, const scn_node *k, const scn_node *v,
                        int is_expect)
{
    int u = rl_unobservable_for(x->own, x->foreign_client, x->proxy, actor, k->str, v);
    if (u >= 0) {
        char det[96];
        snprintf(det, sizeof det, "%s.%s", actor ? actor : "log", k->str);
        warn(x, k, (rl_diff_id)u, det);
        return;
    }
    const scn_node *by;
    if (!strcmp(k->str, "closed") && (by = find_key(v, "by")))
        warn(x, by, RL_D_CLOSED_BY, NULL);
    const scn_node *neg;
    if (is_expect && (neg = find_negative(v)))
        warn(x, neg, RL_D_COUNT_ZERO, NULL);
}

static void lint_expect(lctx *x, const scn_node *e, int is_expect)
{
    for (size_t i = 0; e && e->kind == SCN_MAP && i < e->n; i++) {
        const char *actor = e->keys[i]->str;
        const scn_node *v = e->items[i];
        if (v->kind != SCN_MAP)
            continue; /* since, within, timeout */
        for (size_t j = 0; j < v->n; j++)
            lint_assert(x, actor, v->keys[j], v->items[j], is_expect);
    }
}

static void lint_log_items(lctx *x, const scn_node *e)
{
    size_t n = e->kind == SCN_SEQ ? e->n : 1;
    for (size_t m = 0; m < n; m++) {
        const scn_node *it = e->kind == SCN_SEQ ? e->items[m] : e;
        const char *actor = scn_str(scn_map_get(it, "actor"));
        int u = rl_unobservable_for(x->own, x->foreign_client, x->proxy, actor, "log", it);
        if (u >= 0)
            warn(x, it, (rl_diff_id)u, actor ? actor : "every actor");
        const scn_node *neg = find_negative(it);
        if (neg)
            warn(x, neg, RL_D_COUNT_ZERO, NULL);
    }
}

static void lint_action(lctx *x, const scn_node *a, int server)
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
        if (!x->own)
            warn(x, a, RL_D_SERVER_ACTION_FOREIGN, name);
        else if (!strcmp(name, "fail_requests") && scn_map_get(arg, "retry_after"))
            warn(x, scn_map_key(arg, "retry_after"), RL_D_RETRY_AFTER, NULL);
        return;
    }
    if (!x->proxy && (!strcmp(name, "latency") || !strcmp(name, "link")))
        warn(x, a, RL_D_NET_NO_PROXY, name);
    if (!strcmp(name, "send_request"))
        warn(x, a, RL_D_SEND_REQUEST, NULL);
    if (!strcmp(name, "drop") && x->foreign_client) {
        const char *msg = scn_str(scn_map_get(arg, "message"));
        if (msg && !strcmp(msg, "request"))
            warn(x, a, RL_D_DROP_REQUEST, NULL);
    }
}

int rl_diff_walk(const scn_scenario *s, const scn_run_opts *o, rl_diff_fn fn, void *ud)
{
    lctx x = {0};
    x.s = s;
    x.fn = fn;
    x.ud = ud;
    x.own = !(o && o->server_url);
    x.proxy = !(o && o->no_proxy) && !(o && o->server_url && strncmp(o->server_url, "http://", 7));
    x.foreign_client = o && o->client_cmd;
    x.token_cmd = o && o->token_cmd;
    x.F = o && o->time_scale > 0 ? o->time_scale : SCN_REAL_DEFAULT_SCALE;
    double settle_ms = o && o->settle_ms > 0 ? o->settle_ms : 100;
    double max_s = o && o->max_wall_s > 0 ? o->max_wall_s : 120;
    const scn_node *root = s->root;

    size_t ti;
    json_t *tag;
    json_array_foreach(s->tags, ti, tag)
        if (json_is_string(tag) && !strcmp(json_string_value(tag), "sim-only"))
            warn(&x, scn_map_get(root, "tags"), RL_D_SIM_ONLY, NULL);
    if (!x.own) {
        const scn_node *p = scn_map_get(root, "policy");
        for (size_t i = 0; p && p->kind == SCN_MAP && i < p->n; i++)
            for (const char *const *q = rl_server_policy_keys; *q; q++)
                if (!strcmp(*q, p->keys[i]->str))
                    warn(&x, p->keys[i], RL_D_POLICY_FOREIGN, p->keys[i]->str);
    }
    if (x.token_cmd) {
        const scn_node *cl = scn_map_get(root, "clients");
        for (size_t i = 0; cl && cl->kind == SCN_MAP && i < cl->n; i++)
            if (scn_map_get(cl->items[i], "token_ttl"))
                warn(&x, scn_map_key(cl->items[i], "token_ttl"), RL_D_TOKEN_TTL_CMD,
                     cl->keys[i]->str);
    }
    unsigned inv = s->invariants_off;
    if (!(inv & SCN_INV_EDITS_KEPT) || !(inv & SCN_INV_ENTITY_ORDER)) {
        const scn_node *at = scn_map_get(root, "invariants");
        warn(&x, at ? at : root, RL_D_INVARIANTS, NULL);
    }
    int64_t waited = 0;
    for (size_t i = 0; s->steps && i < s->steps->n; i++) {
        const scn_node *st = s->steps->items[i];
        if (st->kind != SCN_MAP)
            continue;
        for (size_t j = 0; j < st->n; j++) {
            const char *key = st->keys[j]->str;
            const scn_node *v = st->items[j];
            int64_t ms;
            if (!strcmp(key, "wait") && scn_duration(v, &ms) == 0) {
                waited += ms;
                if ((double)ms * x.F < settle_ms) {
                    char det[96];
                    snprintf(det, sizeof det, "wait: %s is %.0f ms of real time at time scale %g",
                             v->str, (double)ms * x.F, x.F);
                    warn(&x, v, RL_D_WAIT_STRETCHED, det);
                }
            } else if (!strcmp(key, "expect") || !strcmp(key, "wait_until")) {
                lint_expect(&x, v, !strcmp(key, "expect"));
            } else if (!strcmp(key, "expect_log")) {
                lint_log_items(&x, v);
            } else if (!strcmp(key, "server") || scn_client_index(s, key) >= 0) {
                int server = !strcmp(key, "server");
                if (v->kind == SCN_SEQ)
                    for (size_t m = 0; m < v->n; m++)
                        lint_action(&x, v->items[m], server);
                else
                    lint_action(&x, v, server);
            }
        }
    }
    if ((double)waited * x.F / 1000.0 > max_s) {
        char det[160];
        snprintf(det, sizeof det, "%.0f virtual s = %.0f s of real time (limit %.0f s)",
                 (double)waited / 1000.0, (double)waited * x.F / 1000.0, max_s);
        warn(&x, s->steps ? s->steps : root, RL_D_MAX_WALL, det);
    }
    return x.n;
}

typedef struct lint_ud {
    const scn_scenario *s;
    scn_diags *d;
} lint_ud;

static void lint_one(void *ud, rl_diff_id id, const scn_node *at, const char *detail)
{
    lint_ud *u = ud;
    int line, col;
    const char *f = scn_node_where(at, u->s->file, &line, &col);
    scn_diags_add(u->d, f, line > 0 ? line : 1, col > 0 ? col : 1,
                  "real mode: %s%s%s (%s): %s", rl_diffs[id].name, detail ? " - " : "",
                  detail ? detail : "", rl_diffs[id].effect, rl_diffs[id].why);
}

int scn_real_lint(const scn_scenario *s, const scn_run_opts *o, scn_diags *warnings)
{
    lint_ud u = {s, warnings};
    size_t first = warnings ? warnings->n : 0;
    int n = rl_diff_walk(s, o, lint_one, &u);
    scn_diags_sort_unique(warnings, first); /* file order */
    return warnings ? (int)(warnings->n - first) : n;
}

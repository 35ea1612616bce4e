/*
 * real_skip.c - what real mode cannot play (scn_real_unsupported, real.h):
 * the actions a target cannot take (a server fault on a foreign server, a
 * Retry-After that cannot be scaled, a link fault without the proxy...).
 * Such a scenario is SKIPPED with every reason and its line; assertions
 * never skip a scenario (they are unobservable on their own: real_expect.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_policy.h"
#include "hp_time.h"
#include "real.h"
#include "real_world.h"

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
                                                  "max_body", "event_retain",
                                                  "idempotency_window", NULL};
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

/*
 * real_check.c - the invariants of a real-mode run (SCENARIOS §8 as far as
 * real programs show them): queue_bounded, conflicts_logged, no token in
 * any log line, the latency bounds (HELLO -> READY, request -> response),
 * the timing measured; edits_kept and entity_order are reported
 * unobservable.  Reads the world's records; appends to the result's checks.
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

/* Invariants observable in real mode (SCENARIOS §8): queue_bounded,
 * no_token_in_logs, conflicts_logged (client side).  Returns the first
 * failure (malloc'd) or NULL. */
char *rl_invariants(rl_world *w, scn_result *r)
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
                                    rl_diffs[RL_D_INVARIANTS].why));
    json_array_append_new(r->checks,
                          json_pack("{s:s,s:b,s:s,s:s}", "name", "entity_order", "passed", 0,
                                    "verdict", "unobservable", "detail",
                                    rl_diffs[RL_D_INVARIANTS].why));
    return first;
}

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

const char *const rl_server_policy_keys[] = {"heartbeat_interval", "heartbeat_misses",
                                             "hello_timeout", "lock_ttl", "max_frame",
                                             "max_body", "event_retain", "idempotency_window",
                                             NULL};

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

/* Only what cannot be played skips a scenario: unobservable assertions
 * get their own verdict (real_expect.c) and differences are run as they
 * are (lint --mode real warns about them). */
static void skip_one(void *ud, rl_diff_id id, const scn_node *at, const char *detail)
{
    if (strcmp(rl_diffs[id].effect, "skipped"))
        return;
    skip_add(ud, at, "%s%s%s (%s)", rl_diffs[id].name, detail ? ": " : "", detail ? detail : "",
             rl_diffs[id].why);
}

char *scn_real_unsupported(const scn_scenario *s, const scn_run_opts *o)
{
    rl_skip k = {json_array()};
    /* The conditions and their reasons: one walk, one table (real_lint.c). */
    rl_diff_walk(s, o, skip_one, &k);
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

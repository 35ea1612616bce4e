/*
 * cli_cache.c - cache upkeep for the client core (cli_core_int.h).
 *
 * Inputs: the core's cache writes (events, REST answers, the reload) and
 * the C-1 timer.  Outputs: evictions in the store (C-1 window, C-2 cap;
 * ids with a queued item are pinned), c->cache_check_at re-armed.
 * Ownership: the versions live in the store (cli_store.h); what it returns
 * is a new reference for the caller.
 */
#include "cli_core_int.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pinned_cb(void *ud, const char *id)
{
    return cli__q_last_of((const cli_core *)ud, id) >= 0;
}

/* C-1 / C-2: enforce the window and the cap, then re-arm the C-1 timer at
 * the next unpinned entry's expiry (found by the same scan). */
void cli__cache_upkeep(cli_core *c)
{
    int64_t next = INT64_MAX;
    int n = cli_store_cache_upkeep(c->st, cli__now(c), c->pol.cache_window_ms, c->pol.cache_cap_bytes,
                                   pinned_cb, c, &next);
    if (n > 0)
        hp_log(c->env, HP_LOG_INFO, "cache_evicted", "entries=%d", n);
    c->cache_check_at = next;
}

/*
 * WS-2 (decided: the applied state never moves back with a REST response):
 * a version from a REST answer (an idempotent replay of an older first
 * result, a 409's "current") does not replace a cached version with a
 * higher revision, which an event already brought and no later event would
 * repair.  1 when stored.
 */
int cli__cache_put_server(cli_core *c, const char *id, const json_t *task)
{
    int64_t rev = json_integer_value(json_object_get(task, "revision"));
    /* The cached revision as the store already knows it, when it does and
     * the write goes ahead: reading the row (open, parse) would change
     * nothing the write does not set again (its used_at). */
    int64_t orev;
    int known = cli_store_cache_revision(c->st, id, &orev);
    if (known < 0 || (known == 1 && orev > rev)) {
        json_t *old = cli_store_cache_get(c->st, id); /* C-2: a read marks it used */
        orev = old ? json_integer_value(json_object_get(old, "revision")) : -1;
        json_decref(old);
    } else if (known == 0) {
        orev = -1;
    }
    if (orev > rev)
        return 0;
    cli_store_cache_put(c->st, id, task);
    return 1;
}

json_t *cli_cached(cli_core *c, const char *id)
{
    if (!id)
        return NULL;
    return cli_store_cache_get(c->st, id);
}

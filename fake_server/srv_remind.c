/*
 * srv_remind.c - R-1: REMINDER_DUE at a task's remind_at instant.
 *
 * The store answers "which unfired reminder is next" (tasks not deleted,
 * remind_at set, no reminders_fired row for that exact remind_at value).
 * Firing is one transaction: new household revision, REMINDER_DUE appended
 * to the log (so an offline client gets it on replay), the value marked
 * fired.  Nothing about reminders lives in memory except a cache of the
 * next instant, so a reminder that fell due while the server was down
 * fires at the first tick of the new core, and a value never fires twice,
 * restarts included.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fires one reminder; 0 on success, -1 on a store error (logged; the
 * reminder stays unfired and is retried at the next tick). */
static int fire(srv_core *c, const char *hh, const char *id, const char *remind_at)
{
    srv_store *st = c->st;
    if (srv_store_begin(st) != 0)
        goto fail;
    json_t *task = srv_store_task_get(st, hh, id);
    const char *title = task ? json_string_value(json_object_get(task, "title")) : NULL;
    json_t *payload = json_pack("{s:s, s:s}", "remind_at", remind_at, "title", title ? title : "");
    json_decref(task);
    int64_t rev = srv_store_bump(st, hh);
    if (!payload || rev < 0 ||
        srv_store_event_append(st, hh, rev, "REMINDER_DUE", id, payload, NULL,
                               c->pol.event_retain) != 0 ||
        srv_store_reminder_mark(st, hh, id, remind_at) != 0 || srv_store_commit(st) != 0) {
        json_decref(payload);
        srv_store_rollback(st);
        goto fail;
    }
    /* Pushed only after COMMIT: durable before anyone hears of it. */
    srv_broadcast_event(c, hh, "REMINDER_DUE", id, rev, payload);
    json_decref(payload);
    hp_log(&c->env, HP_LOG_INFO, "reminder_due", "entity=task/%s hh=%s revision=%lld", id, hh,
           (long long)rev);
    return 0;
fail:
    hp_log(&c->env, HP_LOG_ERROR, "store_error", "op=reminder entity=task/%s error=\"%s\"", id,
           srv_store_errmsg(st));
    return -1;
}

/* fire every reminder whose instant is <= now, earliest first. */
void srv_remind_tick(srv_core *c)
{
    int64_t now = srv_now(c);
    /* next_reminder_ms is refreshed after every write (srv_rest.c,
     * srv_group.c) and at start: when it lies ahead nothing is due, and the
     * two queries below are skipped (they ran on every heartbeat tick). */
    if (c->next_reminder_ms > now)
        return;
    char hh[SRV_NAME_MAX], id[SRV_NAME_MAX];
    int failed = 0;
    for (int guard = 0; guard < 100000; guard++) {
        int64_t due = 0;
        char *ra = NULL;
        int r = srv_store_reminder_next(c->st, hh, id, sizeof hh, &ra, &due);
        if (r != 1 || due > now || !ra) {
            free(ra);
            failed = r < 0 || (r == 1 && !ra);
            break;
        }
        failed = fire(c, hh, id, ra) != 0;
        free(ra);
        if (failed)
            break;
    }
    srv_refresh_reminder(c);
    /* A failing store must not make the driver spin: try again in 1 s. */
    if (failed && c->next_reminder_ms <= now)
        c->next_reminder_ms = now + 1000;
}

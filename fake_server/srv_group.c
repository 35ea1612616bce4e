/*
 * srv_group.c - group commit: writes that arrive together share one
 * SQLite transaction and one fsync.
 *
 * Why: with journal_mode=WAL + synchronous=FULL every COMMIT waits for an
 * fsync of the WAL; a write that commits alone pays a whole fsync, so
 * durable PUT/s is bounded by the disk's fsync rate whatever the CPU can do.
 *
 * How (srv_set_group_commit(c, 1), used by the libwebsockets adapter):
 *   - the first write of a group opens the transaction (BEGIN IMMEDIATE);
 *     each write is a SAVEPOINT inside it, so one failing write (503) undoes
 *     only itself and the others go on;
 *   - while the group is open, EVERY output the core pushes (responses,
 *     events, HELLO replays, closes) goes to c->held in push order, not to
 *     the outbox: a 409's "current", a GET or a replay may have read a write
 *     of the group that is not durable yet;
 *   - srv_flush() (the driver calls it once per loop iteration, after every
 *     input that arrived together was handed over) COMMITs once, then moves
 *     the held items to the outbox in order.  "Durable before acknowledged"
 *     and "events after commit" hold for the group as they did for one write.
 *   - a failed COMMIT keeps nothing of the group: every held response
 *     becomes 503 "internal" (Retry-After 1, Q-7: the client retries with
 *     its Idempotency-Key), every held frame is dropped and its connection
 *     closed 1011 so the client resynchronises with HELLO.
 * Off (the default, and the simulator's), each write commits alone before
 * its response, exactly as before; the outputs are the same either way, only
 * when they leave differs.
 *
 * srv_tick(), srv_state(), srv_shutdown() and srv_free() flush first, so
 * timers (reminders write to the store) never run inside a group.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_msg.h"

#include <stdlib.h>
#include <string.h>

void srv_set_group_commit(srv_core *c, int on)
{
    if (!c)
        return;
    if (!on)
        srv_flush(c);
    c->group_on = on ? 1 : 0;
}

hp_outbox *srv_box(srv_core *c)
{
    return c->group_open ? &c->held : &c->out;
}

int srv_tx_begin(srv_core *c)
{
    if (!c->group_on) {
        if (srv_store_begin(c->st) != 0)
            return -1;
        c->in_write = 1;
        return 0;
    }
    if (!c->group_open) {
        if (srv_store_begin(c->st) != 0)
            return -1;
        c->group_open = 1;
        c->group_size = 0;
    }
    if (srv_store_savepoint(c->st) != 0)
        return -1;
    c->in_write = 1;
    return 0;
}

int srv_tx_commit(srv_core *c)
{
    c->in_write = 0;
    if (!c->group_on) {
        if (srv_store_commit(c->st) != 0) /* rolls back itself */
            return -1;
        c->group_commits++;
        c->group_writes++;
        if (c->group_max < 1)
            c->group_max = 1;
        return 0;
    }
    if (srv_store_release(c->st) != 0) {
        srv_store_rollback_to(c->st);
        return -1;
    }
    c->group_size++;
    return 0;
}

void srv_tx_abort(srv_core *c)
{
    if (!c->in_write)
        return;
    c->in_write = 0;
    if (c->group_on)
        srv_store_rollback_to(c->st);
    else
        srv_store_rollback(c->st);
}

/* The group's COMMIT failed: answer every held request 503 and replace
 * every held frame by a 1011 close of its connection (once). */
static void release_failed(srv_core *c)
{
    hp_out it;
    while (hp_outbox_pop(&c->held, &it)) {
        if (it.kind == HP_OUT_HTTP_RESPONSE) {
            uint64_t id = it.id;
            hp_out_clear(&it);
            srv_push_response(c, id, 503,
                              hp_error_body("internal", "storage unavailable, retry later"), 1);
            continue;
        }
        if (it.kind == HP_OUT_WS_SEND) {
            srv_conn *k = srv_conn_find(c, it.id);
            if (k)
                srv_push_close(c, k, 1011, "store error");
            hp_out_clear(&it);
            continue;
        }
        hp_outbox_push(&c->out, &it);
    }
}

int srv_flush(srv_core *c)
{
    if (!c || !c->group_open)
        return 0;
    c->group_open = 0; /* from here on pushes go to the outbox */
    c->in_write = 0;
    uint64_t n = c->group_size;
    c->group_size = 0;
    /* A statement error may have ended the transaction already (SQLite
     * rolls back on some I/O errors): then nothing of the group is kept. */
    int ok = srv_store_in_tx(c->st) && srv_store_commit(c->st) == 0;
    if (!ok) {
        hp_log(&c->env, HP_LOG_ERROR, "store_error", "op=group_commit writes=%llu error=\"%s\"",
               (unsigned long long)n, srv_store_errmsg(c->st));
        srv_store_rollback(c->st);
        release_failed(c);
        srv_refresh_reminder(c);
        return -1;
    }
    if (n) {
        c->group_commits++;
        c->group_writes += n;
        if (n > c->group_max)
            c->group_max = n;
    }
    hp_out it;
    while (hp_outbox_pop(&c->held, &it))
        hp_outbox_push(&c->out, &it);
    return (int)n;
}

void srv_group_stats(const srv_core *c, uint64_t *commits, uint64_t *writes, uint64_t *max)
{
    if (commits)
        *commits = c ? c->group_commits : 0;
    if (writes)
        *writes = c ? c->group_writes : 0;
    if (max)
        *max = c ? c->group_max : 0;
}

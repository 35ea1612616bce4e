/*
 * cli_conflict.c - soft-locks (CF-1) and conflicts (CF-2..CF-4): part of
 * the client core (cli_core_int.h).
 *
 * Inputs: cli_lock / cli_unlock, READY (cli__relock_all, from
 * cli_stream.c), a 409 on the head item (cli__head_conflict, from
 * cli_queue.c) and the user's choice (cli_choose).  Outputs: lock
 * requests (POST / DELETE .../lock, best effort), the head retried on the
 * current revision with the same mutation id, or the CONFLICT banner and a
 * waiting queue; the CF-4 WARNING log.  Ownership: c->locks / c->unlocks are arrays of id strings
 * owned by the core; a pending conflict's current version is held by the
 * head item (conflict_current).
 */
#include "cli_core_int.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- CF-1 soft-locks ---------------------------------------------------- */

/* Index of id in a JSON array of strings, or -1. */
static int id_index(const json_t *arr, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), id) == 0) return (int)i;
    return -1;
}

static int lock_index(const cli_core *c, const char *id)
{
    return id_index(c->locks, id);
}

/*
 * CF-1: start editing.  The id joins the heartbeat's "locks" (which
 * refreshes the lock) and one best-effort POST /lock goes out when
 * connected to the network; lock requests are not queue items: no retry,
 * a failure is only logged (the next heartbeat refreshes anyway).
 */
int cli_lock(cli_core *c, const char *id, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return cli__fail(err, errlen, "invalid task id");
    if (lock_index(c, id) < 0)
        json_array_append_new(c->locks, json_string(id));
    int u = id_index(c->unlocks, id);
    if (u >= 0)
        json_array_remove(c->unlocks, (size_t)u); /* editing again: no release due */
    if (!cli__paused(c)) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", id);
        cli__send_http(c, REQ_LOCK, "POST", path, NULL, NULL, id);
    }
    return 0;
}

/*
 * CF-1: the soft-lock exists while the user edits.  On every READY the ids
 * still being edited are POSTed again: a lock taken while offline was never
 * sent, and a restarted server (or one that let the lock expire while the
 * link was down) has forgotten it; heartbeats only refresh a lock the
 * server already holds.  Releases done while offline (save/cancel) are
 * DELETEd then.  Best effort, like cli_lock.
 */
void cli__relock_all(cli_core *c)
{
    size_t i;
    json_t *v;
    if (cli__paused(c))
        return;
    json_array_foreach(c->locks, i, v) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", json_string_value(v));
        cli__send_http(c, REQ_LOCK, "POST", path, NULL, NULL, json_string_value(v));
    }
    /* CF-1: releases done while offline reach the server now. */
    json_array_foreach(c->unlocks, i, v) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", json_string_value(v));
        cli__send_http(c, REQ_UNLOCK, "DELETE", path, NULL, NULL, json_string_value(v));
    }
    json_array_clear(c->unlocks);
}

/* CF-1: save or cancel releases the lock (best effort, like cli_lock). */
int cli_unlock(cli_core *c, const char *id, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return cli__fail(err, errlen, "invalid task id");
    int i = lock_index(c, id);
    if (i >= 0)
        json_array_remove(c->locks, (size_t)i);
    if (!cli__paused(c)) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", id);
        cli__send_http(c, REQ_UNLOCK, "DELETE", path, NULL, NULL, id);
    } else if (i >= 0 && id_index(c->unlocks, id) < 0) {
        /* CF-1: released on save/cancel: the DELETE goes at the next READY. */
        json_array_append_new(c->unlocks, json_string(id));
    }
    return 0;
}

/* ---- CF-2 / CF-3: conflicts --------------------------------------------- */

/* Retry the head now with base = current (CF-2 / CF-3), same mutation id. */
static void retry_on_current(cli_core *c, json_t *snapshot, const char *op)
{
    qitem *h = &c->q[0];
    json_t *cur = h->conflict_current;
    h->conflict_current = NULL;
    json_decref(h->it.snapshot);
    h->it.snapshot = snapshot;
    cli__copy(h->it.op, sizeof h->it.op, op);
    json_decref(h->it.base);
    h->it.base = cur;
    h->it.base_revision = json_integer_value(json_object_get(cur, "revision"));
    h->next_at = cli__now(c);
    cli_store_queue_update(c->st, &h->it);
    cli__observe_queue(c, "rebased", &h->it);
    cli__pump(c);
}

/* The head is settled without sending (edit-vs-delete resolved in favour
 * of theirs): the server version stands. */
static void head_resolved(cli_core *c)
{
    qitem *h = &c->q[0];
    json_t *cur = json_incref(h->conflict_current);
    cli_item copy = h->it;
    char id[72];
    cli__copy(id, sizeof id, h->it.entity_id);
    cli_store_queue_remove(c->st, h->it.seq);
    cli__observe(c, cli__queue_info("resolved", copy.entity_id, copy.mutation_id, c->qn - 1));
    cli__q_remove_at(c, 0);
    cli__reset_streak(c, NULL);
    cli__rebase_next(c, 0, id, cur);
    json_decref(cur);
    cli__pump(c);
}

/*
 * CF-3: the user's choice for the conflict pending on id.  "merge": the
 * three-way result with their values on the conflicting fields; for edit
 * vs delete, theirs wins (their delete stands / their edit survives our
 * delete) and the item is settled without a request.  "overwrite": our
 * snapshot (or our delete) everywhere.  Both retry on the current
 * revision with the same mutation id.
 */
int cli_choose(cli_core *c, const char *id, const char *choice, char *err, size_t errlen)
{
    if (!id || c->qn == 0 || !c->q[0].conflict_current || strcmp(c->q[0].it.entity_id, id) != 0)
        return cli__fail(err, errlen, "no conflict pending on that id");
    if (!choice || (strcmp(choice, "merge") != 0 && strcmp(choice, "overwrite") != 0))
        return cli__fail(err, errlen, "choice must be \"merge\" or \"overwrite\"");
    qitem *h = &c->q[0];
    hp_log(c->env, HP_LOG_INFO, "conflict_choice", "entity=task/%s choice=%s", id, choice);
    int is_delete = strcmp(h->it.op, "delete") == 0;
    if (strcmp(choice, "overwrite") == 0) {
        json_t *snap = hp_task_copy(h->it.snapshot);
        retry_on_current(c, snap, is_delete ? "delete" : "put");
        return 0;
    }
    if (h->edit_vs_delete) {
        head_resolved(c);
        return 0;
    }
    unsigned conf = 0;
    json_t *m = cli_merge3(h->it.base, h->it.snapshot, h->conflict_current, c->pol.mergeable, &conf);
    retry_on_current(c, m, "put");
    return 0;
}

/* 1 when no editable field of cur differs from base. */
static int unchanged_since_base(const json_t *base, const json_t *cur)
{
    for (int i = 0; i < HP_F_COUNT; i++)
        if (!hp_task_field_equal(base, cur, 1u << i))
            return 0;
    return 1;
}

/* CF-2 / CF-3 / CF-4: a 409 on the head item. */
void cli__head_conflict(cli_core *c, json_t *bodyj)
{
    qitem *h = &c->q[0];
    json_t *cur = json_object_get(bodyj, "current");
    char err[160];
    int64_t crev = json_integer_value(json_object_get(cur, "revision"));
    /* CF-4: every 409 received, at WARNING. */
    hp_log(c->env, HP_LOG_WARNING, "conflict", "entity=task/%s base=%lld current=%lld user=%s",
           h->it.entity_id, (long long)h->it.base_revision, (long long)crev, cli__user_of(c));
    cli__reset_streak(c, h);
    if (!cur || hp_task_validate_full(cur, err, sizeof err) != 0) {
        /* No usable current version: fetch nothing, treat as a failure. */
        hp_log(c->env, HP_LOG_WARNING, "bad_conflict_body", "entity=task/%s", h->it.entity_id);
        cli__head_failed(c, 0, "bad_409");
        return;
    }
    if (cli__cache_put_server(c, h->it.entity_id, cur)) /* WS-2: keep the newest */
        cli__cache_upkeep(c);
    int we_delete = strcmp(h->it.op, "delete") == 0;
    int they_deleted = json_is_true(json_object_get(cur, "deleted"));
    if (we_delete && they_deleted) {
        h->conflict_current = json_incref(cur);
        head_resolved(c); /* both deleted: nothing left to say */
        return;
    }
    if (we_delete && !they_deleted && h->it.base && unchanged_since_base(h->it.base, cur)) {
        /* CF-3: "edit meets delete" needs an edit.  Their version only moved
         * the revision (a forced 409, a race with no field change): our
         * delete stands and is retried on the current revision, same id. */
        h->conflict_current = json_incref(cur);
        retry_on_current(c, hp_task_copy(h->it.snapshot), "delete");
        return;
    }
    unsigned conf = 0;
    json_t *m = cli_merge3(h->it.base, h->it.snapshot, cur, c->pol.mergeable, &conf);
    int evd = we_delete != they_deleted;
    if (!conf && !evd) {
        /* CF-2: clean merge, retry at once on the current revision, same id. */
        h->conflict_current = json_incref(cur);
        retry_on_current(c, m, "put");
        return;
    }
    json_decref(m);
    h->conflict_current = json_incref(cur);
    h->conflict_fields = conf;
    h->edit_vs_delete = evd;
    json_t *fields = json_array();
    for (int i = 0; i < HP_F_COUNT; i++)
        if (conf & (1u << i))
            json_array_append_new(fields, json_string(hp_field_name(i)));
    /* CF-3: the banner; the queue waits for the choice. */
    cli__notify(c, json_pack("{s:s, s:s, s:[s,s], s:o, s:b}", "type", "CONFLICT", "entity_id",
                             h->it.entity_id, "choices", "merge", "overwrite", "fields", fields,
                             "edit_vs_delete", evd));
}

/*
 * cli_queue.c - the client core's queue (Q-1..Q-7): part of cli_core
 * (cli_core_int.h).
 *
 * Inputs: user edits and deletes (cli_edit / cli_delete), HTTP results
 * (cli_http_response / cli_http_failed, dispatched here by request kind:
 * the head's answer, the reload's, a lock's) and the head's failures
 * (cli__head_failed, cli__request_failed).  Outputs: one request at a
 * time for the head (cli__pump, via cli__send_http), queue observables,
 * SYNC_FAILED / QUEUE_FULL / REJECTED notifications, the queue and
 * dead-letter rows in the store (persisted before anything is said).
 * Ownership: queue items (qitem) belong to c->q; an item's snapshot and
 * base are its own (json references).
 */
#include "cli_core_int.h"
#include "hp_jload.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- queue basics ------------------------------------------------------ */

void cli__qitem_free(qitem *q)
{
    cli_item_clear(&q->it);
    json_decref(q->conflict_current);
    q->conflict_current = NULL;
}

void cli__q_remove_at(cli_core *c, int i)
{
    cli__qitem_free(&c->q[i]);
    memmove(&c->q[i], &c->q[i + 1], (size_t)(c->qn - i - 1) * sizeof *c->q);
    c->qn--;
}

int cli__q_append(cli_core *c, const qitem *qi)
{
    if (c->qn == c->qcap) {
        int nc = c->qcap ? c->qcap * 2 : 16;
        qitem *nq = realloc(c->q, (size_t)nc * sizeof *nq);
        if (!nq)
            return -1;
        c->q = nq;
        c->qcap = nc;
    }
    c->q[c->qn++] = *qi;
    return 0;
}

/* Last queued item of an entity, or -1. */
int cli__q_last_of(const cli_core *c, const char *id)
{
    for (int i = c->qn - 1; i >= 0; i--)
        if (strcmp(c->q[i].it.entity_id, id) == 0)
            return i;
    return -1;
}

int cli__paused(const cli_core *c)
{
    return !c->started || !c->online || c->auth_required || !c->token;
}

/* Decimal text of v at p (no NUL); returns the length.  By hand: the
 * request path and body are made once per send. */
static size_t put_int(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    size_t k = 0;
    if (v < 0)
        p[k++] = '-';
    while (n > 0)
        p[k++] = tmp[--n];
    return k;
}

/* The PUT body {"base_revision":N,"task":SNAPSHOT}: the bytes
 * hp_json_dump() gives for that object (compact, keys sorted, and
 * "base_revision" < "task"), with the snapshot's dump (task, from
 * hp_json_dump) put in instead of wrapping it in a new object first.
 * NULL when the snapshot is missing or cannot be dumped (task NULL), as
 * before.  Caller frees. */
static char *put_body(int64_t base_revision, const char *task)
{
    if (!task)
        return NULL;
    static const char k1[] = "{\"base_revision\":", k2[] = ",\"task\":";
    size_t tn = strlen(task);
    char *b = malloc(sizeof k1 + 24 + sizeof k2 + tn + 2);
    if (!b)
        return NULL;
    size_t n = 0;
    memcpy(b, k1, sizeof k1 - 1);
    n += sizeof k1 - 1;
    n += put_int(b + n, base_revision);
    memcpy(b + n, k2, sizeof k2 - 1);
    n += sizeof k2 - 1;
    memcpy(b + n, task, tn);
    n += tn;
    b[n++] = '}';
    b[n] = '\0';
    return b;
}

/* send the head item when it is due: FIFO, one in flight.  fresh:
 * an item just stored by enqueue() with base_txt / snap_txt, the dumps of
 * its base and snapshot it made (either may be NULL): used when fresh is
 * the head, instead of dumping them again (cli_store_queue_push_txt). */
static void pump_txt(cli_core *c, const cli_item *fresh, const char *base_txt,
                     const char *snap_txt)
{
    if (cli__paused(c) || c->qn == 0)
        return;
    qitem *h = &c->q[0];
    if (h->req_id || h->conflict_current || cli__now(c) < h->next_at)
        return;
    if (&h->it != fresh)
        base_txt = snap_txt = NULL;
    /* HP_API_PREFIX "/<id>" (+ "?base_revision=<n>" for a delete); the id
     * is at most 71 bytes (entity_id[72]), so 256 always holds it. */
    char path[256];
    static const char prefix[] = HP_API_PREFIX "/", qbase[] = "?base_revision=";
    size_t idn = strlen(h->it.entity_id), pn = 0;
    memcpy(path, prefix, sizeof prefix - 1);
    pn += sizeof prefix - 1;
    memcpy(path + pn, h->it.entity_id, idn);
    pn += idn;
    char *body = NULL, *task = NULL;
    const char *method;
    if (strcmp(h->it.op, "delete") == 0) {
        method = "DELETE";
        memcpy(path + pn, qbase, sizeof qbase - 1);
        pn += sizeof qbase - 1;
        pn += put_int(path + pn, h->it.base_revision);
    } else {
        method = "PUT";
        /* Dumped once: for the body and, on a first send, the store. */
        task = snap_txt || !h->it.snapshot ? NULL : hp_json_dump(h->it.snapshot);
        body = put_body(h->it.base_revision, snap_txt ? snap_txt : task);
    }
    path[pn] = '\0';
    if (!h->it.sent) {
        h->it.sent = 1;
        cli_store_queue_update_txt(c->st, &h->it, base_txt, snap_txt ? snap_txt : task);
    }
    free(task);
    h->req_id = cli__send_http(c, REQ_QUEUE, method, path, h->it.mutation_id, body, h->it.entity_id);
    hp_log(c->env, HP_LOG_DEBUG, "send", "method=%s entity=task/%s base=%lld mutation_id=%s",
           method, h->it.entity_id, (long long)h->it.base_revision, h->it.mutation_id);
}

void cli__pump(cli_core *c)
{
    pump_txt(c, NULL, NULL, NULL);
}

/* a streak ends (ack, dead-letter, 409 answer, sync now). */
void cli__reset_streak(cli_core *c, qitem *h)
{
    if (h) {
        h->it.attempts = 0;
        cli_store_queue_update(c->st, &h->it);
    }
    c->sync_failed_sent = 0;
}

/* Q-4 delay before retry number n (1-based) with jitter from env->rng. */
int64_t cli__retry_delay(cli_core *c, int n)
{
    int64_t d = hp_policy_retry_delay(&c->pol, n);
    if (c->pol.retry_jitter > 0) {
        double u = hp_rng_unit(c->env->rng) * 2.0 - 1.0; /* [-1, 1) */
        d += (int64_t)((double)d * c->pol.retry_jitter * u);
        if (d < 0)
            d = 0;
    }
    return d;
}

/* the head failed retryably (network, timeout, 5xx, 429). */
void cli__head_failed(cli_core *c, int retry_after_s, const char *why)
{
    if (c->qn == 0)
        return;
    qitem *h = &c->q[0];
    h->req_id = 0;
    h->it.attempts++;
    cli_store_queue_update(c->st, &h->it);
    int64_t d = cli__retry_delay(c, h->it.attempts);
    if (retry_after_s > 7 * 86400) /* a number from outside: at most 7 days (LIMITS.md) */
        retry_after_s = 7 * 86400;
    if (retry_after_s > 0 && (int64_t)retry_after_s * 1000 > d)
        d = (int64_t)retry_after_s * 1000; /* honour Retry-After */
    h->next_at = cli__now(c) + d;
    hp_log(c->env, HP_LOG_INFO, "retry", "entity=task/%s mutation_id=%s attempts=%d reason=%s "
           "delay_ms=%lld", h->it.entity_id, h->it.mutation_id, h->it.attempts, why, (long long)d);
    if (h->it.attempts >= c->pol.sync_failed_after && !c->sync_failed_sent) {
        /* once per streak, offering manual sync. */
        c->sync_failed_sent = 1;
        hp_log(c->env, HP_LOG_WARNING, "sync_failed", "entity=task/%s attempts=%d",
               h->it.entity_id, h->it.attempts);
        cli__notify(c, json_pack("{s:s, s:s, s:i, s:[s]}", "type", "SYNC_FAILED", "entity_id",
                                 h->it.entity_id, "attempts", h->it.attempts, "actions", "sync_now"));
    }
}

/*
 * Q-3 chaining: the next item of the same entity after index i (if any) is
 * rebased: onto `task` (the acknowledged result, or the cached server
 * version after a dead-letter; NULL = nothing known, base revision 0).
 * Rebasing replays the item's own changes (its snapshot against the base
 * it was edited from, the earlier item's snapshot) onto `task`: fields the
 * item did not change take `task`'s values, so a change of theirs that
 * the earlier item merged after a 409 is not overwritten by the stale
 * copy in the later snapshot, and the changes of a dead-lettered earlier
 * item are not sent through the later one.  A field both changed keeps
 * the item's value (the user's latest edit).  Nothing known (NULL): the
 * snapshot stays as it is.
 */
void cli__rebase_next(cli_core *c, int from, const char *id, const json_t *task)
{
    for (int j = from; j < c->qn; j++) {
        if (strcmp(c->q[j].it.entity_id, id) != 0)
            continue;
        cli_item *n = &c->q[j].it;
        if (task && n->snapshot) {
            unsigned both = 0;
            json_t *m = cli_merge3(n->base, n->snapshot, task, HP_F_ALL, &both);
            for (int k = 0; k < HP_F_COUNT; k++) {
                const char *name = hp_field_name(k);
                json_t *v = json_object_get(n->snapshot, name);
                if (both & (1u << k))
                    json_object_set(m, name, v ? v : json_null());
            }
            json_t *del = json_object_get(n->snapshot, "deleted");
            json_object_set(m, "deleted", del ? del : json_false());
            json_decref(n->snapshot);
            n->snapshot = m;
        }
        json_decref(n->base);
        n->base = task ? hp_task_copy(task) : NULL;
        n->base_revision = task ? json_integer_value(json_object_get(task, "revision")) : 0;
        cli_store_queue_update(c->st, n);
        cli__observe_queue(c, "rebased", n);
        return;
    }
}

/* ---- user actions ------------------------------------------------------ */

void cli__copy(char *dst, size_t n, const char *src)
{
    if (n == 0)
        return;
    size_t k = src ? strlen(src) : 0;
    if (k > n - 1)
        k = n - 1;
    if (k)
        memcpy(dst, src, k);
    dst[k] = '\0';
}

int cli__fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* The task as this device sees it: the last queued snapshot, else the
 * cached server version, else NULL.  New reference.  *cached: the cached
 * version read for it (new reference; NULL when the view is a queued
 * snapshot or nothing is cached): enqueue()'s base, which used to be read
 * from the store a second time in the same call. */
static json_t *local_view(cli_core *c, const char *id, json_t **cached)
{
    *cached = NULL;
    int i = cli__q_last_of(c, id);
    if (i >= 0)
        return hp_task_copy(c->q[i].it.snapshot);
    *cached = cli_store_cache_get(c->st, id);
    return hp_task_copy(*cached);
}

/*
 * queue a new snapshot of id.  Chained onto an earlier
 * item of the same entity (its snapshot is our base); otherwise based on
 * the cached server version.  Full queue: coalesce into the entity's last
 * item when it is not in flight (a new id when it was already sent), else
 * refuse with QUEUE_FULL.  Takes snap and cached: local_view()'s cached
 * version, the base when id has no queued item (NULL when it has one:
 * local_view read the queue then, so chaining and coalescing drop nothing).
 */
static int enqueue(cli_core *c, const char *id, const char *op, json_t *snap, json_t *cached,
                   char *err, size_t errlen)
{
    int last = cli__q_last_of(c, id);
    if (c->qn >= c->pol.queue_max) {
        if (last >= 0 && !c->q[last].req_id) {
            /* coalesce in place. */
            cli_item *it = &c->q[last].it;
            json_decref(it->snapshot);
            it->snapshot = snap;
            cli__copy(it->op, sizeof it->op, op);
            if (it->sent) {
                cli__new_mutation_id(c, it->mutation_id, sizeof it->mutation_id);
                it->sent = 0;
            }
            cli_store_queue_update(c->st, it);
            cli__observe_queue(c, "coalesced", it);
            cli__pump(c);
            return 0;
        }
        json_decref(snap);
        json_decref(cached);
        hp_log(c->env, HP_LOG_WARNING, "queue_full", "entity=task/%s length=%d max=%d", id, c->qn,
               c->pol.queue_max);
        cli__notify(c, json_pack("{s:s, s:s, s:i}", "type", "QUEUE_FULL", "entity_id", id, "length",
                                 c->qn));
        cli__observe(c, cli__queue_info("refused", id, "", c->qn));
        return cli__fail(err, errlen, "queue full");
    }
    qitem qi;
    memset(&qi, 0, sizeof qi);
    cli__new_mutation_id(c, qi.it.mutation_id, sizeof qi.it.mutation_id);
    cli__copy(qi.it.op, sizeof qi.it.op, op);
    cli__copy(qi.it.entity_id, sizeof qi.it.entity_id, id);
    if (last >= 0) {
        /* Q-3 chaining: based on the earlier item's snapshot. */
        qi.it.base = hp_task_copy(c->q[last].it.snapshot);
        qi.it.base_revision = c->q[last].it.base_revision;
    } else {
        qi.it.base = cached; /* the cached server version (C-4), read once by local_view */
        qi.it.base_revision =
            qi.it.base ? json_integer_value(json_object_get(qi.it.base, "revision")) : 0;
    }
    qi.it.snapshot = snap;
    qi.it.created_at = cli__now(c);
    qi.next_at = cli__now(c);
    /* Dumped once for the store and, when it is sent at once, the body and
     * the first-send update (pump_txt); NULL: each dumps it itself. */
    char *base_txt = qi.it.base ? hp_json_dump(qi.it.base) : NULL;
    char *snap_txt = hp_json_dump(snap);
    if (cli_store_queue_push_txt(c->st, &qi.it, base_txt, snap_txt) != 0 ||
        cli__q_append(c, &qi) != 0) {
        free(base_txt);
        free(snap_txt);
        cli_item_clear(&qi.it);
        return cli__fail(err, errlen, "cannot store the edit");
    }
    cli__observe_queue(c, "enqueued", &c->q[c->qn - 1].it);
    pump_txt(c, &c->q[c->qn - 1].it, base_txt, snap_txt);
    free(base_txt);
    free(snap_txt);
    return 0;
}

int cli_edit(cli_core *c, const char *id, const json_t *fields, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return cli__fail(err, errlen, "invalid task id");
    if (!json_is_object(fields))
        return cli__fail(err, errlen, "fields must be an object");
    json_t *cached;
    json_t *snap = local_view(c, id, &cached);
    if (!snap)
        snap = hp_task_new(id);
    if (hp_task_apply_fields(snap, fields, err, errlen) != 0) {
        json_decref(snap);
        json_decref(cached);
        return -1;
    }
    json_object_set_new(snap, "deleted", json_false());
    return enqueue(c, id, "put", snap, cached, err, errlen);
}

int cli_delete(cli_core *c, const char *id, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return cli__fail(err, errlen, "invalid task id");
    json_t *cached;
    json_t *snap = local_view(c, id, &cached);
    if (!snap)
        return cli__fail(err, errlen, "unknown task");
    json_object_set_new(snap, "deleted", json_true());
    return enqueue(c, id, "delete", snap, cached, err, errlen);
}

/* ---- HTTP results ---------------------------------------------------- */

json_t *cli__parse_body(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    json_error_t jerr;
    return hp_json_loadb(body, len, 0, &jerr);
}

/* stale_token: the request went out with a token older than the one held
 * now (A-2: its 401 is no reason to ask for another). */
static void head_answer(cli_core *c, int status, int retry_after_s, const char *body, size_t len,
                        int stale_token)
{
    qitem *h = &c->q[0];
    h->req_id = 0;
    cli__observe(c, cli__request_result_info(h->it.mutation_id, status, NULL));
    json_t *bj = cli__parse_body(body, len);
    const char *wrong_task = NULL;
    if (status >= 200 && status < 300) {
        /* a 2xx naming another task is not this item's result (a
         * server that answers a reused key with the first request's task):
         * never cached under our id; the item is dead-lettered below. */
        json_t *res = bj;
        if (json_is_object(res) && json_is_object(json_object_get(res, "task")))
            res = json_object_get(res, "task");
        const char *rid = json_string_value(json_object_get(res, "id"));
        if (json_is_object(res) && rid && strcmp(rid, h->it.entity_id) != 0)
            wrong_task = rid;
    }
    if (status >= 200 && status < 300 && !wrong_task) {
        /* Acknowledged: the result is the new server version. */
        json_t *res = bj;
        if (json_is_object(res) && json_is_object(json_object_get(res, "task")))
            res = json_object_get(res, "task");
        char err[160];
        int valid = res && hp_task_validate_full(res, err, sizeof err) == 0;
        char id[72];
        cli__copy(id, sizeof id, h->it.entity_id);
        if (valid)
            cli__cache_put_server(c, id, res); /* WS-2: never back to an older version */
        cli_store_queue_remove(c->st, h->it.seq);
        cli_item copy = h->it;
        h->it.base = NULL;
        h->it.snapshot = NULL;
        cli__q_remove_at(c, 0);
        cli__observe_queue(c, "acked", &copy);
        cli_item_clear(&copy);
        c->sync_failed_sent = 0;
        /* rebase the next item of this entity onto the result. */
        if (valid) {
            cli__rebase_next(c, 0, id, res);
        } else {
            json_t *cached = cli_store_cache_get(c->st, id);
            cli__rebase_next(c, 0, id, cached);
            json_decref(cached);
        }
        cli__cache_upkeep(c);
        json_decref(bj);
        cli__pump(c);
        return;
    }
    if (status == 409) {
        cli__head_conflict(c, bj);
        json_decref(bj);
        return;
    }
    if (status == 401 && stale_token) {
        /* refused for the old token; a newer one is already here:
         * not a failure, resent at once with the same key. */
        json_decref(bj);
        h->next_at = cli__now(c);
        cli__pump(c);
        return;
    }
    if (status == 401) {
        /* not a failure; same key once a token arrives. */
        json_decref(bj);
        h->next_at = cli__now(c);
        cli__auth_required(c, "http_401");
        return;
    }
    if (status == 429 || status >= 500 || status <= 0) {
        json_decref(bj);
        char why[16];
        snprintf(why, sizeof why, "http_%d", status);
        cli__head_failed(c, status == 429 ? retry_after_s : 0, why);
        return;
    }
    /* any other status (4xx, or unexpected) => dead-letter, queue goes on. */
    const char *code = wrong_task ? "wrong_task" : json_string_value(json_object_get(bj, "error"));
    char reason[128];
    if (wrong_task) {
        hp_log(c->env, HP_LOG_WARNING, "wrong_task", "entity=task/%s answered=task/%.64s status=%d",
               h->it.entity_id, hp_task_id_valid(wrong_task) ? wrong_task : "?", status);
        snprintf(reason, sizeof reason, "%d wrong_task: the answer is another task", status);
    } else {
        snprintf(reason, sizeof reason, "%d %s", status,
                 code ? code : hp_error_code_for_status(status));
    }
    hp_log(c->env, HP_LOG_WARNING, "rejected", "entity=task/%s mutation_id=%s status=%d error=%s",
           h->it.entity_id, h->it.mutation_id, status, code ? code : "-");
    cli_store_dead_push(c->st, &h->it, status, reason);
    cli_store_queue_remove(c->st, h->it.seq);
    char id[72];
    cli__copy(id, sizeof id, h->it.entity_id);
    cli_item copy = h->it;
    h->it.base = NULL;
    h->it.snapshot = NULL;
    cli__q_remove_at(c, 0);
    cli__observe_queue(c, "dead_letter", &copy);
    cli__notify(c, json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "REJECTED", "entity_id", id,
                             "mutation_id", copy.mutation_id, "status", status, "error",
                             code ? code : hp_error_code_for_status(status)));
    cli_item_clear(&copy);
    cli__reset_streak(c, NULL);
    json_t *cached = cli_store_cache_get(c->st, id);
    cli__rebase_next(c, 0, id, cached); /* onto the cached server version */
    json_decref(cached);
    json_decref(bj);
    cli__pump(c);
}

/* ---- HTTP results: dispatch by request kind ----------------------------- */

void cli_http_response(cli_core *c, uint64_t req_id, int status, int retry_after_s,
                       const char *body, size_t len)
{
    pending_req *r = cli__req_find(c, req_id);
    if (!r)
        return; /* aborted or timed out already */
    req_kind kind = r->kind;
    int stale_token = r->token_gen != c->token_gen;
    char eid[72];
    cli__copy(eid, sizeof eid, r->entity_id);
    cli__req_drop(c, req_id);
    switch (kind) {
    case REQ_QUEUE:
        if (c->qn > 0 && c->q[0].req_id == req_id)
            head_answer(c, status, retry_after_s, body, len, stale_token);
        break;
    case REQ_RELOAD:
        cli__reload_answer(c, status, body, len);
        break;
    case REQ_LOCK:
    case REQ_UNLOCK:
        hp_log(c->env, status >= 200 && status < 300 ? HP_LOG_DEBUG : HP_LOG_INFO,
               kind == REQ_LOCK ? "lock_result" : "unlock_result", "entity=task/%s status=%d",
               eid, status);
        cli__observe(c, json_pack("{s:s, s:s, s:s, s:i}", "kind", "lock", "op",
                                  kind == REQ_LOCK ? "lock" : "unlock", "entity_id", eid, "status",
                                  status));
        if (status == 401 && !stale_token) /* not for an older token */
            cli__auth_required(c, "http_401");
        break;
    }
}

void cli__request_failed(cli_core *c, uint64_t req_id, const char *why)
{
    pending_req *r = cli__req_find(c, req_id);
    if (!r)
        return;
    req_kind kind = r->kind;
    cli__req_drop(c, req_id);
    if (kind == REQ_QUEUE) {
        if (c->qn > 0 && c->q[0].req_id == req_id) {
            cli__observe(c, cli__request_result_info(c->q[0].it.mutation_id, 0, why));
            cli__head_failed(c, 0, why);
        }
    } else if (kind == REQ_RELOAD) {
        cli__reload_answer(c, 0, NULL, 0);
    } else {
        hp_log(c->env, HP_LOG_INFO, "lock_failed", "reason=%s", why);
    }
}

void cli_http_failed(cli_core *c, uint64_t req_id, const char *reason)
{
    cli__request_failed(c, req_id, reason ? reason : "network");
}

/*
 * cli_core.c - the reference client's policy as a sans-I/O state machine.
 *
 * One file holds the connection (WS-2..WS-6, N-1, A-2), the queue
 * (Q-1..Q-7, CF-1..CF-4) and cache upkeep (C-1, C-2).  The store
 * (cli_store.c) does persistence and sealing (C-3); cli_merge.c the
 * three-way merge.  Time only comes from env->now, randomness from
 * env->rng; everything the world must do goes to the outbox.
 */
#include "cli_core.h"
#include "cli_internal.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEVER INT64_MAX

typedef enum { CONN_IDLE, CONN_CONNECTING, CONN_OPEN, CONN_READY } conn_state;

typedef enum { REQ_QUEUE, REQ_RELOAD, REQ_LOCK, REQ_UNLOCK } req_kind;

/* An HTTP request awaiting its answer (request timeout: Q-7). */
typedef struct pending_req {
    uint64_t id;
    req_kind kind;
    int64_t sent_at;
    unsigned token_gen;       /* the token generation it was sent with */
    char entity_id[72];
} pending_req;

/* A queued item plus what only lives in memory. */
typedef struct qitem {
    cli_item it;
    uint64_t req_id;          /* in flight when != 0 (only ever the head) */
    int64_t next_at;          /* earliest next attempt */
    json_t *conflict_current; /* CF-3: pending choice when != NULL */
    unsigned conflict_fields;
    int edit_vs_delete;
} qitem;

struct cli_core {
    const hp_env *env;
    hp_policy pol;
    cli_store *st;
    char *token;
    char *user;
    hp_outbox ob;

    int started;
    int online;               /* the device's network switch */
    int auth_required;        /* paused until cli_set_token */
    int64_t applied;          /* WS-2: last applied revision (persisted) */

    /* connection */
    conn_state cs;
    uint64_t conn_id, next_conn_id;
    unsigned token_gen;       /* +1 per cli_set_token */
    unsigned conn_token_gen;  /* the generation the current connection used */
    int64_t last_rx;          /* WS-5 watchdog */
    int64_t hb_ms;            /* WS-4: READY's interval or the policy's */
    int64_t next_hb;
    int backoff;              /* WS-6: reconnect attempts since the last READY */
    int64_t reconnect_at;
    int reload_pending;       /* RESYNC: GET ?since=0 in flight */

    /* N-1 */
    int64_t offline_since;    /* -1 while a READY connection is live */
    int offline_long_sent;

    /* queue */
    qitem *q;
    int qn, qcap;
    int sync_failed_sent;     /* once per failure streak */

    /* requests */
    pending_req *reqs;
    int nreq, reqcap;
    uint64_t next_req_id;

    /* CF-1: ids being edited */
    json_t *locks;
    json_t *unlocks;          /* CF-1: released while offline, DELETE on READY */

    int64_t cache_check_at;   /* C-1 timer */
};

/* ---- small helpers ---------------------------------------------------- */

static int64_t now(const cli_core *c)
{
    return hp_env_now(c->env);
}

static const char *user_of(const cli_core *c)
{
    return c->user ? c->user : "unknown";
}

static void notify(cli_core *c, json_t *info)
{
    hp_out o = hp_out_make(HP_OUT_NOTIFY, 0);
    o.info = info;
    hp_outbox_push(&c->ob, &o);
}

static void observe(cli_core *c, json_t *info)
{
    hp_out o = hp_out_make(HP_OUT_OBSERVE, 0);
    o.info = info;
    hp_outbox_push(&c->ob, &o);
}

static void observe_queue(cli_core *c, const char *op, const cli_item *it)
{
    observe(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "kind", "queue", "op", op, "entity_id",
                         it->entity_id, "mutation_id", it->mutation_id, "length", c->qn));
}

static void observe_conn(cli_core *c, const char *state, int code, int64_t rev)
{
    json_t *o = json_pack("{s:s, s:s}", "kind", "connection", "state", state);
    if (code >= 0)
        json_object_set_new(o, "code", json_integer(code));
    if (rev >= 0)
        json_object_set_new(o, "revision", json_integer(rev));
    observe(c, o);
}

/* a mutation id (Idempotency-Key) of 32 hex chars from env->rng. */
static void new_mutation_id(cli_core *c, char *out, size_t n)
{
    uint64_t a = hp_rng_next(c->env->rng), b = hp_rng_next(c->env->rng);
    snprintf(out, n, "m-%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static void set_applied(cli_core *c, int64_t rev)
{
    c->applied = rev;
    cli_store_set_applied_revision(c->st, rev);
}

/* ---- requests --------------------------------------------------------- */

static pending_req *req_find(cli_core *c, uint64_t id)
{
    for (int i = 0; i < c->nreq; i++)
        if (c->reqs[i].id == id)
            return &c->reqs[i];
    return NULL;
}

static void req_drop(cli_core *c, uint64_t id)
{
    for (int i = 0; i < c->nreq; i++)
        if (c->reqs[i].id == id) {
            c->reqs[i] = c->reqs[--c->nreq];
            return;
        }
}

/* Push an HTTP request and remember it for the request timeout. */
static uint64_t send_http(cli_core *c, req_kind kind, const char *method, const char *path,
                          const char *idem, char *body, const char *entity)
{
    uint64_t id = ++c->next_req_id;
    hp_out o = hp_out_make(HP_OUT_HTTP_REQUEST, id);
    o.method = hp_strdup(method);
    o.path = hp_strdup(path);
    o.auth = hp_strdup(c->token);
    o.idem_key = hp_strdup(idem);
    o.body = body;
    o.body_len = body ? strlen(body) : 0;
    hp_outbox_push(&c->ob, &o);
    if (c->nreq == c->reqcap) {
        int nc = c->reqcap ? c->reqcap * 2 : 8;
        pending_req *nr = realloc(c->reqs, (size_t)nc * sizeof *nr);
        if (!nr)
            return id;
        c->reqs = nr;
        c->reqcap = nc;
    }
    pending_req *r = &c->reqs[c->nreq++];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->kind = kind;
    r->sent_at = now(c);
    r->token_gen = c->token_gen;
    snprintf(r->entity_id, sizeof r->entity_id, "%s", entity ? entity : "");
    return id;
}

static void abort_http(cli_core *c, uint64_t id)
{
    hp_out o = hp_out_make(HP_OUT_HTTP_ABORT, id);
    hp_outbox_push(&c->ob, &o);
    req_drop(c, id);
}

/* ---- queue basics ------------------------------------------------------ */

static void qitem_free(qitem *q)
{
    cli_item_clear(&q->it);
    json_decref(q->conflict_current);
    q->conflict_current = NULL;
}

static void q_remove_at(cli_core *c, int i)
{
    qitem_free(&c->q[i]);
    memmove(&c->q[i], &c->q[i + 1], (size_t)(c->qn - i - 1) * sizeof *c->q);
    c->qn--;
}

static int q_append(cli_core *c, const qitem *qi)
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
static int q_last_of(const cli_core *c, const char *id)
{
    for (int i = c->qn - 1; i >= 0; i--)
        if (strcmp(c->q[i].it.entity_id, id) == 0)
            return i;
    return -1;
}

static int pinned_cb(void *ud, const char *id)
{
    return q_last_of((const cli_core *)ud, id) >= 0;
}

/* C-1 / C-2: enforce the window and the cap, then re-arm the C-1 timer. */
static void cache_upkeep(cli_core *c)
{
    int n = cli_store_cache_enforce(c->st, now(c), c->pol.cache_window_ms, c->pol.cache_cap_bytes,
                                    pinned_cb, c);
    if (n > 0)
        hp_log(c->env, HP_LOG_INFO, "cache_evicted", "entries=%d", n);
    c->cache_check_at = cli_store_cache_next_expiry(c->st, c->pol.cache_window_ms, pinned_cb, c);
}

/*
 * WS-2 (decided: the applied state never moves back with a REST response):
 * a version from a REST answer (an idempotent replay of an older first
 * result, a 409's "current") does not replace a cached version with a
 * higher revision, which an event already brought and no later event would
 * repair.  1 when stored.
 */
static int cache_put_server(cli_core *c, const char *id, const json_t *task)
{
    json_t *old = cli_store_cache_get(c->st, id);
    int64_t orev = old ? json_integer_value(json_object_get(old, "revision")) : -1;
    json_decref(old);
    if (orev > json_integer_value(json_object_get(task, "revision")))
        return 0;
    cli_store_cache_put(c->st, id, task);
    return 1;
}

static int paused(const cli_core *c)
{
    return !c->started || !c->online || c->auth_required || !c->token;
}

/* send the head item when it is due: FIFO, one in flight. */
static void pump(cli_core *c)
{
    if (paused(c) || c->qn == 0)
        return;
    qitem *h = &c->q[0];
    if (h->req_id || h->conflict_current || now(c) < h->next_at)
        return;
    char path[256];
    char *body = NULL;
    const char *method;
    if (strcmp(h->it.op, "delete") == 0) {
        method = "DELETE";
        snprintf(path, sizeof path, HP_API_PREFIX "/%s?base_revision=%lld", h->it.entity_id,
                 (long long)h->it.base_revision);
    } else {
        method = "PUT";
        snprintf(path, sizeof path, HP_API_PREFIX "/%s", h->it.entity_id);
        json_t *b = json_pack("{s:I, s:O}", "base_revision", (json_int_t)h->it.base_revision,
                              "task", h->it.snapshot);
        body = hp_json_dump(b);
        json_decref(b);
    }
    if (!h->it.sent) {
        h->it.sent = 1;
        cli_store_queue_update(c->st, &h->it);
    }
    h->req_id = send_http(c, REQ_QUEUE, method, path, h->it.mutation_id, body, h->it.entity_id);
    hp_log(c->env, HP_LOG_DEBUG, "send", "method=%s entity=task/%s base=%lld mutation_id=%s",
           method, h->it.entity_id, (long long)h->it.base_revision, h->it.mutation_id);
}

/* a streak ends (ack, dead-letter, 409 answer, sync now). */
static void reset_streak(cli_core *c, qitem *h)
{
    if (h) {
        h->it.attempts = 0;
        cli_store_queue_update(c->st, &h->it);
    }
    c->sync_failed_sent = 0;
}

/* Q-4 delay before retry number n (1-based) with jitter from env->rng. */
static int64_t retry_delay(cli_core *c, int n)
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
static void head_failed(cli_core *c, int retry_after_s, const char *why)
{
    if (c->qn == 0)
        return;
    qitem *h = &c->q[0];
    h->req_id = 0;
    h->it.attempts++;
    cli_store_queue_update(c->st, &h->it);
    int64_t d = retry_delay(c, h->it.attempts);
    if (retry_after_s > 7 * 86400) /* a number from outside: at most 7 days (LIMITS.md) */
        retry_after_s = 7 * 86400;
    if (retry_after_s > 0 && (int64_t)retry_after_s * 1000 > d)
        d = (int64_t)retry_after_s * 1000; /* honour Retry-After */
    h->next_at = now(c) + d;
    hp_log(c->env, HP_LOG_INFO, "retry", "entity=task/%s mutation_id=%s attempts=%d reason=%s "
           "delay_ms=%lld", h->it.entity_id, h->it.mutation_id, h->it.attempts, why, (long long)d);
    if (h->it.attempts >= c->pol.sync_failed_after && !c->sync_failed_sent) {
        /* once per streak, offering manual sync. */
        c->sync_failed_sent = 1;
        hp_log(c->env, HP_LOG_WARNING, "sync_failed", "entity=task/%s attempts=%d",
               h->it.entity_id, h->it.attempts);
        notify(c, json_pack("{s:s, s:s, s:i, s:[s]}", "type", "SYNC_FAILED", "entity_id",
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
static void rebase_next(cli_core *c, int from, const char *id, const json_t *task)
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
        observe_queue(c, "rebased", n);
        return;
    }
}

/* stop, say AUTH_REQUIRED once, wait for cli_set_token. */
static void auth_required(cli_core *c, const char *why)
{
    c->reconnect_at = NEVER;
    if (c->auth_required)
        return;
    c->auth_required = 1;
    hp_log(c->env, HP_LOG_WARNING, "auth_required", "reason=%s", why);
    notify(c, json_pack("{s:s, s:s}", "type", "AUTH_REQUIRED", "reason", why));
    /* The driver contract's level-1 `connection` line: a harness judging
     * this program as a foreign client reads its state from these lines. */
    observe_conn(c, "auth_required", -1, -1);
}

/* ---- connection ------------------------------------------------------- */

static void offline_begin(cli_core *c)
{
    if (c->offline_since < 0) {
        c->offline_since = now(c);
        c->offline_long_sent = 0;
    }
}

/* WS-6: open the stream now (if allowed). */
static void ws_connect(cli_core *c)
{
    c->reconnect_at = NEVER;
    if (paused(c) || c->cs != CONN_IDLE)
        return;
    c->conn_id = ++c->next_conn_id;
    c->cs = CONN_CONNECTING;
    c->conn_token_gen = c->token_gen;
    size_t n = strlen(HP_STREAM_PATH) + strlen(c->token) + 16;
    char *path = malloc(n);
    if (!path)
        return;
    snprintf(path, n, "%s?token=%s", HP_STREAM_PATH, c->token);
    hp_out o = hp_out_make(HP_OUT_WS_CONNECT, c->conn_id);
    o.path = path;
    hp_outbox_push(&c->ob, &o);
    observe_conn(c, "connecting", -1, -1);
}

/* WS-6: the next reconnect after a lost connection: 1, 3, 9, 27, 120, 120 s. */
static void schedule_reconnect(cli_core *c)
{
    if (paused(c))
        return;
    c->backoff++;
    int64_t d = retry_delay(c, c->backoff);
    c->reconnect_at = now(c) + d;
    hp_log(c->env, HP_LOG_INFO, "reconnect_scheduled", "attempt=%d delay_ms=%lld", c->backoff,
           (long long)d);
}

static void ws_send(cli_core *c, char *text)
{
    if (!text)
        return;
    hp_out o = hp_out_make(HP_OUT_WS_SEND, c->conn_id);
    o.body = text;
    o.body_len = strlen(text);
    hp_outbox_push(&c->ob, &o);
}

/* Close our side; the connection is forgotten at once (later callbacks
 * with its id are ignored). */
static void ws_close(cli_core *c, int code, const char *reason)
{
    if (c->cs == CONN_IDLE)
        return;
    hp_out o = hp_out_make(HP_OUT_WS_CLOSE, c->conn_id);
    o.code = code;
    o.body = hp_strdup(reason);
    o.body_len = reason ? strlen(reason) : 0;
    hp_outbox_push(&c->ob, &o);
    c->cs = CONN_IDLE;
    c->conn_id = 0;
    offline_begin(c);
    observe_conn(c, "closed", code, -1);
}

static void send_heartbeat(cli_core *c)
{
    /* WS-4 / CF-1: the ids being edited refresh their soft-locks. */
    ws_send(c, hp_msg_heartbeat(c->locks));
    c->next_hb = now(c) + c->hb_ms;
}

/* ---- lifecycle ------------------------------------------------------- */

cli_core *cli_new(const hp_env *env, const hp_policy *policy, cli_store *st, const char *token)
{
    cli_core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->env = env;
    if (policy)
        c->pol = *policy;
    else
        hp_policy_defaults(&c->pol);
    c->st = st;
    c->token = hp_strdup(token);
    c->user = cli_token_sub(token);
    hp_outbox_init(&c->ob);
    c->online = 1;
    c->applied = cli_store_applied_revision(st);
    c->hb_ms = c->pol.heartbeat_ms > 0 ? c->pol.heartbeat_ms : 30000;
    c->reconnect_at = NEVER;
    c->offline_since = -1;
    c->cache_check_at = NEVER;
    c->locks = json_array();
    c->unlocks = json_array();
    /* the queue survives restarts. */
    cli_item *items = NULL;
    int n = 0;
    cli_store_queue_load(st, &items, &n);
    for (int i = 0; i < n; i++) {
        qitem qi;
        memset(&qi, 0, sizeof qi);
        qi.it = items[i];
        if (q_append(c, &qi) != 0)
            cli_item_clear(&items[i]);
    }
    free(items);
    /* once per streak, also across a restart.  The head's failure
     * count is persisted; a head already past the threshold had its
     * SYNC_FAILED raised before the restart (the count is stored before the
     * notification is made), so the streak's notification is not repeated. */
    if (c->qn > 0 && c->q[0].it.attempts >= c->pol.sync_failed_after)
        c->sync_failed_sent = 1;
    return c;
}

void cli_free(cli_core *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->qn; i++)
        qitem_free(&c->q[i]);
    free(c->q);
    free(c->reqs);
    free(c->token);
    free(c->user);
    json_decref(c->locks);
    json_decref(c->unlocks);
    hp_outbox_free(&c->ob);
    free(c);
}

/* Begin: C-3 key news, the immediate first connect (WS-6), the flush. */
void cli_start(cli_core *c)
{
    if (c->started)
        return;
    c->started = 1;
    offline_begin(c); /* N-1: no READY connection yet */
    cli_store_open_info inf = cli_store_info(c->st);
    if (inf.key_mismatch)
        notify(c, json_pack("{s:s, s:i, s:i}", "type", "KEY_MISMATCH", "quarantined",
                            inf.quarantined, "restored", inf.restored));
    else if (inf.restored > 0)
        notify(c, json_pack("{s:s, s:i, s:i}", "type", "QUARANTINE_RESTORED", "quarantined",
                            inf.quarantined, "restored", inf.restored));
    if (!c->token) {
        auth_required(c, "no_token");
        return;
    }
    cache_upkeep(c);
    ws_connect(c);
    pump(c);
}

/* ---- user actions ------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* The task as this device sees it: the last queued snapshot, else the
 * cached server version, else NULL.  New reference. */
static json_t *local_view(cli_core *c, const char *id)
{
    int i = q_last_of(c, id);
    if (i >= 0)
        return hp_task_copy(c->q[i].it.snapshot);
    return cli_store_cache_get(c->st, id);
}

/*
 * queue a new snapshot of id.  Chained onto an earlier
 * item of the same entity (its snapshot is our base); otherwise based on
 * the cached server version.  Full queue: coalesce into the entity's last
 * item when it is not in flight (a new id when it was already sent), else
 * refuse with QUEUE_FULL.  Takes snap.
 */
static int enqueue(cli_core *c, const char *id, const char *op, json_t *snap, char *err,
                   size_t errlen)
{
    int last = q_last_of(c, id);
    if (c->qn >= c->pol.queue_max) {
        if (last >= 0 && !c->q[last].req_id) {
            /* coalesce in place. */
            cli_item *it = &c->q[last].it;
            json_decref(it->snapshot);
            it->snapshot = snap;
            snprintf(it->op, sizeof it->op, "%s", op);
            if (it->sent) {
                new_mutation_id(c, it->mutation_id, sizeof it->mutation_id);
                it->sent = 0;
            }
            cli_store_queue_update(c->st, it);
            observe_queue(c, "coalesced", it);
            pump(c);
            return 0;
        }
        json_decref(snap);
        hp_log(c->env, HP_LOG_WARNING, "queue_full", "entity=task/%s length=%d max=%d", id, c->qn,
               c->pol.queue_max);
        notify(c, json_pack("{s:s, s:s, s:i}", "type", "QUEUE_FULL", "entity_id", id, "length",
                            c->qn));
        observe(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "kind", "queue", "op", "refused",
                             "entity_id", id, "mutation_id", "", "length", c->qn));
        return fail(err, errlen, "queue full");
    }
    qitem qi;
    memset(&qi, 0, sizeof qi);
    new_mutation_id(c, qi.it.mutation_id, sizeof qi.it.mutation_id);
    snprintf(qi.it.op, sizeof qi.it.op, "%s", op);
    snprintf(qi.it.entity_id, sizeof qi.it.entity_id, "%s", id);
    if (last >= 0) {
        /* Q-3 chaining: based on the earlier item's snapshot. */
        qi.it.base = hp_task_copy(c->q[last].it.snapshot);
        qi.it.base_revision = c->q[last].it.base_revision;
    } else {
        qi.it.base = cli_store_cache_get(c->st, id);
        qi.it.base_revision =
            qi.it.base ? json_integer_value(json_object_get(qi.it.base, "revision")) : 0;
    }
    qi.it.snapshot = snap;
    qi.it.created_at = now(c);
    qi.next_at = now(c);
    if (cli_store_queue_push(c->st, &qi.it) != 0 || q_append(c, &qi) != 0) {
        cli_item_clear(&qi.it);
        return fail(err, errlen, "cannot store the edit");
    }
    observe_queue(c, "enqueued", &c->q[c->qn - 1].it);
    pump(c);
    return 0;
}

int cli_edit(cli_core *c, const char *id, const json_t *fields, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return fail(err, errlen, "invalid task id");
    if (!json_is_object(fields))
        return fail(err, errlen, "fields must be an object");
    json_t *snap = local_view(c, id);
    if (!snap)
        snap = hp_task_new(id);
    if (hp_task_apply_fields(snap, fields, err, errlen) != 0) {
        json_decref(snap);
        return -1;
    }
    json_object_set_new(snap, "deleted", json_false());
    return enqueue(c, id, "put", snap, err, errlen);
}

int cli_delete(cli_core *c, const char *id, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return fail(err, errlen, "invalid task id");
    json_t *snap = local_view(c, id);
    if (!snap)
        return fail(err, errlen, "unknown task");
    json_object_set_new(snap, "deleted", json_true());
    return enqueue(c, id, "delete", snap, err, errlen);
}

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
        return fail(err, errlen, "invalid task id");
    if (lock_index(c, id) < 0)
        json_array_append_new(c->locks, json_string(id));
    int u = id_index(c->unlocks, id);
    if (u >= 0)
        json_array_remove(c->unlocks, (size_t)u); /* editing again: no release due */
    if (!paused(c)) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", id);
        send_http(c, REQ_LOCK, "POST", path, NULL, NULL, id);
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
static void relock_all(cli_core *c)
{
    size_t i;
    json_t *v;
    if (paused(c))
        return;
    json_array_foreach(c->locks, i, v) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", json_string_value(v));
        send_http(c, REQ_LOCK, "POST", path, NULL, NULL, json_string_value(v));
    }
    /* CF-1: releases done while offline reach the server now. */
    json_array_foreach(c->unlocks, i, v) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", json_string_value(v));
        send_http(c, REQ_UNLOCK, "DELETE", path, NULL, NULL, json_string_value(v));
    }
    json_array_clear(c->unlocks);
}

/* CF-1: save or cancel releases the lock (best effort, like cli_lock). */
int cli_unlock(cli_core *c, const char *id, char *err, size_t errlen)
{
    if (!id || !hp_task_id_valid(id))
        return fail(err, errlen, "invalid task id");
    int i = lock_index(c, id);
    if (i >= 0)
        json_array_remove(c->locks, (size_t)i);
    if (!paused(c)) {
        char path[160];
        snprintf(path, sizeof path, HP_API_PREFIX "/%s/lock", id);
        send_http(c, REQ_UNLOCK, "DELETE", path, NULL, NULL, id);
    } else if (i >= 0 && id_index(c->unlocks, id) < 0) {
        /* CF-1: released on save/cancel: the DELETE goes at the next READY. */
        json_array_append_new(c->unlocks, json_string(id));
    }
    return 0;
}

/* Abort every request in flight: not failures; the head is resent later
 * with the same key. */
static void abort_all(cli_core *c)
{
    while (c->nreq > 0)
        abort_http(c, c->reqs[0].id);
    if (c->qn > 0)
        c->q[0].req_id = 0;
    c->reload_pending = 0;
}

void cli_set_online(cli_core *c, int online)
{
    online = online ? 1 : 0;
    if (online == c->online)
        return;
    c->online = online;
    if (!online) {
        hp_log(c->env, HP_LOG_INFO, "offline", NULL);
        abort_all(c);
        ws_close(c, 1000, "offline");
        offline_begin(c);
        c->reconnect_at = NEVER;
        return;
    }
    hp_log(c->env, HP_LOG_INFO, "online", NULL);
    /* WS-6: immediate connect after "online"; the queue goes at once. */
    c->backoff = 0;
    if (c->qn > 0)
        c->q[0].next_at = now(c);
    ws_connect(c);
    pump(c);
}

void cli_sync_now(cli_core *c)
{
    /* try at once, reset the schedule. */
    if (c->qn > 0) {
        reset_streak(c, &c->q[0]);
        c->q[0].next_at = now(c);
    } else {
        c->sync_failed_sent = 0;
    }
    if (c->cs == CONN_IDLE && c->reconnect_at != NEVER) {
        c->backoff = 0;
        ws_connect(c);
    }
    pump(c);
}

/* Retry the head now with base = current (CF-2 / CF-3), same mutation id. */
static void retry_on_current(cli_core *c, json_t *snapshot, const char *op)
{
    qitem *h = &c->q[0];
    json_t *cur = h->conflict_current;
    h->conflict_current = NULL;
    json_decref(h->it.snapshot);
    h->it.snapshot = snapshot;
    snprintf(h->it.op, sizeof h->it.op, "%s", op);
    json_decref(h->it.base);
    h->it.base = cur;
    h->it.base_revision = json_integer_value(json_object_get(cur, "revision"));
    h->next_at = now(c);
    cli_store_queue_update(c->st, &h->it);
    observe_queue(c, "rebased", &h->it);
    pump(c);
}

/* The head is settled without sending (edit-vs-delete resolved in favour
 * of theirs): the server version stands. */
static void head_resolved(cli_core *c)
{
    qitem *h = &c->q[0];
    json_t *cur = json_incref(h->conflict_current);
    cli_item copy = h->it;
    char id[72];
    snprintf(id, sizeof id, "%s", h->it.entity_id);
    cli_store_queue_remove(c->st, h->it.seq);
    observe(c, json_pack("{s:s, s:s, s:s, s:s, s:i}", "kind", "queue", "op", "resolved",
                         "entity_id", copy.entity_id, "mutation_id", copy.mutation_id, "length",
                         c->qn - 1));
    q_remove_at(c, 0);
    reset_streak(c, NULL);
    rebase_next(c, 0, id, cur);
    json_decref(cur);
    pump(c);
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
        return fail(err, errlen, "no conflict pending on that id");
    if (!choice || (strcmp(choice, "merge") != 0 && strcmp(choice, "overwrite") != 0))
        return fail(err, errlen, "choice must be \"merge\" or \"overwrite\"");
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

void cli_set_token(cli_core *c, const char *token)
{
    if (!token || !*token)
        return;
    free(c->token);
    c->token = hp_strdup(token);
    free(c->user);
    c->user = cli_token_sub(token);
    c->auth_required = 0;
    c->token_gen++;
    hp_log(c->env, HP_LOG_INFO, "token_set", "user=%s", user_of(c));
    /* A-2 / WS-6: resume at once: immediate connect, the queue with the same key. */
    c->backoff = 0;
    if (c->qn > 0 && !c->q[0].req_id)
        c->q[0].next_at = now(c);
    if (c->started) {
        ws_connect(c);
        pump(c);
        cache_upkeep(c);
    }
}

/* ---- HTTP results ---------------------------------------------------- */

static json_t *parse_body(const char *body, size_t len)
{
    if (!body || len == 0)
        return NULL;
    json_error_t jerr;
    return json_loadb(body, len, 0, &jerr);
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
static void head_conflict(cli_core *c, json_t *bodyj)
{
    qitem *h = &c->q[0];
    json_t *cur = json_object_get(bodyj, "current");
    char err[160];
    int64_t crev = json_integer_value(json_object_get(cur, "revision"));
    /* CF-4: every 409 received, at WARNING. */
    hp_log(c->env, HP_LOG_WARNING, "conflict", "entity=task/%s base=%lld current=%lld user=%s",
           h->it.entity_id, (long long)h->it.base_revision, (long long)crev, user_of(c));
    reset_streak(c, h);
    if (!cur || hp_task_validate_full(cur, err, sizeof err) != 0) {
        /* No usable current version: fetch nothing, treat as a failure. */
        hp_log(c->env, HP_LOG_WARNING, "bad_conflict_body", "entity=task/%s", h->it.entity_id);
        head_failed(c, 0, "bad_409");
        return;
    }
    if (cache_put_server(c, h->it.entity_id, cur)) /* WS-2: keep the newest */
        cache_upkeep(c);
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
    notify(c, json_pack("{s:s, s:s, s:[s,s], s:o, s:b}", "type", "CONFLICT", "entity_id",
                        h->it.entity_id, "choices", "merge", "overwrite", "fields", fields,
                        "edit_vs_delete", evd));
}

/* stale_token: the request went out with a token older than the one held
 * now (A-2: its 401 is no reason to ask for another). */
static void head_answer(cli_core *c, int status, int retry_after_s, const char *body, size_t len,
                        int stale_token)
{
    qitem *h = &c->q[0];
    h->req_id = 0;
    observe(c, json_pack("{s:s, s:s, s:i}", "kind", "request_result", "mutation_id",
                         h->it.mutation_id, "status", status));
    json_t *bj = parse_body(body, len);
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
        snprintf(id, sizeof id, "%s", h->it.entity_id);
        if (valid)
            cache_put_server(c, id, res); /* WS-2: never back to an older version */
        cli_store_queue_remove(c->st, h->it.seq);
        cli_item copy = h->it;
        h->it.base = NULL;
        h->it.snapshot = NULL;
        q_remove_at(c, 0);
        observe_queue(c, "acked", &copy);
        cli_item_clear(&copy);
        c->sync_failed_sent = 0;
        /* rebase the next item of this entity onto the result. */
        if (valid) {
            rebase_next(c, 0, id, res);
        } else {
            json_t *cached = cli_store_cache_get(c->st, id);
            rebase_next(c, 0, id, cached);
            json_decref(cached);
        }
        cache_upkeep(c);
        json_decref(bj);
        pump(c);
        return;
    }
    if (status == 409) {
        head_conflict(c, bj);
        json_decref(bj);
        return;
    }
    if (status == 401 && stale_token) {
        /* refused for the old token; a newer one is already here:
         * not a failure, resent at once with the same key. */
        json_decref(bj);
        h->next_at = now(c);
        pump(c);
        return;
    }
    if (status == 401) {
        /* not a failure; same key once a token arrives. */
        json_decref(bj);
        h->next_at = now(c);
        auth_required(c, "http_401");
        return;
    }
    if (status == 429 || status >= 500 || status <= 0) {
        json_decref(bj);
        char why[16];
        snprintf(why, sizeof why, "http_%d", status);
        head_failed(c, status == 429 ? retry_after_s : 0, why);
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
    snprintf(id, sizeof id, "%s", h->it.entity_id);
    cli_item copy = h->it;
    h->it.base = NULL;
    h->it.snapshot = NULL;
    q_remove_at(c, 0);
    observe_queue(c, "dead_letter", &copy);
    notify(c, json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "REJECTED", "entity_id", id,
                        "mutation_id", copy.mutation_id, "status", status, "error",
                        code ? code : hp_error_code_for_status(status)));
    cli_item_clear(&copy);
    reset_streak(c, NULL);
    json_t *cached = cli_store_cache_get(c->st, id);
    rebase_next(c, 0, id, cached); /* onto the cached server version */
    json_decref(cached);
    json_decref(bj);
    pump(c);
}

/* WS-2: the reload after RESYNC_REQUIRED. */
static void reload_answer(cli_core *c, int status, const char *body, size_t len)
{
    c->reload_pending = 0;
    json_t *bj = status == 200 ? parse_body(body, len) : NULL;
    json_t *tasks = json_object_get(bj, "tasks");
    json_t *rev = json_object_get(bj, "revision");
    /* Issue 11: the revision is a number from outside: 0..HP_REVISION_MAX. */
    if (!json_is_array(tasks) || !json_is_integer(rev) || json_integer_value(rev) < 0 ||
        json_integer_value(rev) > HP_REVISION_MAX) {
        json_decref(bj);
        if (status == 401)
            auth_required(c, "http_401");
        hp_log(c->env, HP_LOG_WARNING, "reload_failed", "status=%d", status);
        if (c->cs != CONN_IDLE) {
            ws_close(c, 1000, "reload failed");
            schedule_reconnect(c);
        }
        return;
    }
    cli_store_cache_clear(c->st);
    size_t i;
    json_t *t;
    char err[160];
    json_array_foreach(tasks, i, t)
    {
        const char *id = json_string_value(json_object_get(t, "id"));
        if (id && hp_task_validate_full(t, err, sizeof err) == 0)
            cli_store_cache_put(c->st, id, t);
    }
    set_applied(c, json_integer_value(rev));
    hp_log(c->env, HP_LOG_INFO, "reloaded", "revision=%lld tasks=%zu", (long long)c->applied,
           json_array_size(tasks));
    json_decref(bj);
    cache_upkeep(c);
    if (c->cs == CONN_OPEN)
        ws_send(c, hp_msg_hello(c->applied));
}

void cli_http_response(cli_core *c, uint64_t req_id, int status, int retry_after_s,
                       const char *body, size_t len)
{
    pending_req *r = req_find(c, req_id);
    if (!r)
        return; /* aborted or timed out already */
    req_kind kind = r->kind;
    int stale_token = r->token_gen != c->token_gen;
    char eid[72];
    snprintf(eid, sizeof eid, "%s", r->entity_id);
    req_drop(c, req_id);
    switch (kind) {
    case REQ_QUEUE:
        if (c->qn > 0 && c->q[0].req_id == req_id)
            head_answer(c, status, retry_after_s, body, len, stale_token);
        break;
    case REQ_RELOAD:
        reload_answer(c, status, body, len);
        break;
    case REQ_LOCK:
    case REQ_UNLOCK:
        hp_log(c->env, status >= 200 && status < 300 ? HP_LOG_DEBUG : HP_LOG_INFO,
               kind == REQ_LOCK ? "lock_result" : "unlock_result", "entity=task/%s status=%d",
               eid, status);
        observe(c, json_pack("{s:s, s:s, s:s, s:i}", "kind", "lock", "op",
                             kind == REQ_LOCK ? "lock" : "unlock", "entity_id", eid, "status",
                             status));
        if (status == 401 && !stale_token) /* not for an older token */
            auth_required(c, "http_401");
        break;
    }
}

static void request_failed(cli_core *c, uint64_t req_id, const char *why)
{
    pending_req *r = req_find(c, req_id);
    if (!r)
        return;
    req_kind kind = r->kind;
    req_drop(c, req_id);
    if (kind == REQ_QUEUE) {
        if (c->qn > 0 && c->q[0].req_id == req_id) {
            observe(c, json_pack("{s:s, s:s, s:i, s:s}", "kind", "request_result", "mutation_id",
                                 c->q[0].it.mutation_id, "status", 0, "error", why));
            head_failed(c, 0, why);
        }
    } else if (kind == REQ_RELOAD) {
        reload_answer(c, 0, NULL, 0);
    } else {
        hp_log(c->env, HP_LOG_INFO, "lock_failed", "reason=%s", why);
    }
}

void cli_http_failed(cli_core *c, uint64_t req_id, const char *reason)
{
    request_failed(c, req_id, reason ? reason : "network");
}

/* ---- WebSocket --------------------------------------------------------- */

void cli_ws_opened(cli_core *c, uint64_t conn_id)
{
    if (conn_id != c->conn_id || c->cs != CONN_CONNECTING)
        return;
    c->cs = CONN_OPEN;
    c->last_rx = now(c);
    /* WS-2: HELLO with the last applied revision. */
    ws_send(c, hp_msg_hello(c->applied));
    observe_conn(c, "open", -1, -1); /* contract level 1: socket up, HELLO sent */
    c->next_hb = now(c) + c->hb_ms;
    hp_log(c->env, HP_LOG_INFO, "ws_open", "revision=%lld", (long long)c->applied);
}

void cli_ws_refused(cli_core *c, uint64_t conn_id, int http_status)
{
    if (conn_id != c->conn_id || c->cs == CONN_IDLE)
        return;
    c->cs = CONN_IDLE;
    c->conn_id = 0;
    observe_conn(c, "closed", 0, -1);
    hp_log(c->env, HP_LOG_INFO, "ws_refused", "status=%d", http_status);
    if (http_status == 401 && c->conn_token_gen != c->token_gen) {
        /* A-2 / WS-6: refused for a token older than the one now held: the
         * new token is already here, so connect with it at once. */
        c->backoff = 0;
        ws_connect(c);
        return;
    }
    if (http_status == 401) {
        auth_required(c, "upgrade_401");
        return;
    }
    schedule_reconnect(c);
}

void cli_ws_closed(cli_core *c, uint64_t conn_id, int code)
{
    if (conn_id != c->conn_id || c->cs == CONN_IDLE)
        return;
    c->cs = CONN_IDLE;
    c->conn_id = 0;
    offline_begin(c);
    observe_conn(c, "closed", code, -1);
    hp_log(c->env, HP_LOG_INFO, "ws_closed", "code=%d", code);
    if (code == HP_CLOSE_AUTH && c->conn_token_gen != c->token_gen) {
        /* A-2 / WS-6: the connection's (old) token expired, but a new token
         * arrived meanwhile: "until a new token" is already over, so
         * reconnect at once with it instead of asking again. */
        c->backoff = 0;
        ws_connect(c);
        return;
    }
    if (code == HP_CLOSE_AUTH) {
        auth_required(c, "close_4001"); /* */
        return;
    }
    schedule_reconnect(c);
}

/* WS-2 / WS-3: apply one event, or ignore a duplicate or unknown type. */
static void apply_event(cli_core *c, hp_msg *m)
{
    const char *et = m->event_type ? m->event_type : "";
    const char *eid = m->entity_id ? m->entity_id : "";
    int is_task = strcmp(et, "TASK_UPDATED") == 0;
    int is_rem = strcmp(et, "REMINDER_DUE") == 0;
    int is_lock = strcmp(et, "LOCK_REFRESHED") == 0;
    if (!is_task && !is_rem && !is_lock)
        return; /* WS-3: unknown event types are ignored */
    if (is_lock) {
        /* Not in the log: carries the current revision, never moves ours. */
        observe(c, json_pack("{s:s, s:s, s:s, s:I, s:O}", "kind", "event", "event_type", et,
                             "entity_id", eid, "revision", (json_int_t)m->revision, "payload",
                             m->payload ? m->payload : json_null()));
        return;
    }
    if (m->revision <= c->applied)
        return; /* WS-2: a duplicate */
    if (is_task) {
        char err[160];
        if (!m->payload || hp_task_validate_full(m->payload, err, sizeof err) != 0 ||
            !hp_task_id_valid(eid)) {
            hp_log(c->env, HP_LOG_WARNING, "bad_event", "entity=task/%s revision=%lld error=\"%s\"",
                   hp_task_id_valid(eid) ? eid : "?", (long long)m->revision,
                   m->payload ? err : "no payload");
            return;
        }
        /* C-4: stored verbatim. */
        cli_store_cache_put(c->st, eid, m->payload);
    }
    set_applied(c, m->revision);
    observe(c, json_pack("{s:s, s:s, s:s, s:I, s:O}", "kind", "event", "event_type", et,
                         "entity_id", eid, "revision", (json_int_t)m->revision, "payload",
                         m->payload ? m->payload : json_null()));
    if (is_task)
        cache_upkeep(c);
}

void cli_ws_message(cli_core *c, uint64_t conn_id, const char *data, size_t len)
{
    if (conn_id != c->conn_id || (c->cs != CONN_OPEN && c->cs != CONN_READY))
        return;
    c->last_rx = now(c); /* WS-5: any message resets the watchdog */
    hp_msg m;
    char err[160];
    if (hp_msg_parse(data, len, &m, err, sizeof err) != 0) {
        hp_log(c->env, HP_LOG_WARNING, "bad_message", "error=\"%s\"", err);
        return;
    }
    switch (m.type) {
    case HP_MSG_READY:
        if (m.revision > c->applied)
            set_applied(c, m.revision);
        if (m.heartbeat_ms > 0 && m.heartbeat_ms != c->hb_ms) {
            c->hb_ms = m.heartbeat_ms;
            c->next_hb = now(c) + c->hb_ms;
        }
        c->cs = CONN_READY;
        c->backoff = 0; /* WS-6: READY resets the schedule */
        c->offline_since = -1;
        c->offline_long_sent = 0;
        observe_conn(c, "ready", -1, m.revision);
        hp_log(c->env, HP_LOG_INFO, "ws_ready", "revision=%lld", (long long)m.revision);
        relock_all(c); /* CF-1: re-take the locks of ids still being edited */
        break;
    case HP_MSG_RESYNC:
        /* WS-2: reload with GET ?since=0, then HELLO again. */
        observe_conn(c, "resync", -1, m.revision);
        hp_log(c->env, HP_LOG_INFO, "resync_required", "revision=%lld applied=%lld",
               (long long)m.revision, (long long)c->applied);
        if (!c->reload_pending) {
            c->reload_pending = 1;
            send_http(c, REQ_RELOAD, "GET", HP_API_PREFIX "?since=0", NULL, NULL, NULL);
        }
        break;
    case HP_MSG_EVENT:
        apply_event(c, &m);
        break;
    default:
        break; /* HEARTBEAT and unknown types: only the watchdog */
    }
    hp_msg_clear(&m);
}

/* ---- time -------------------------------------------------------------- */

void cli_tick(cli_core *c)
{
    int64_t t = now(c);
    /* request timeout => abort and count a failure. */
    for (int i = 0; i < c->nreq;) {
        pending_req *r = &c->reqs[i];
        if (t - r->sent_at >= c->pol.request_timeout_ms) {
            uint64_t id = r->id;
            hp_out o = hp_out_make(HP_OUT_HTTP_ABORT, id);
            hp_outbox_push(&c->ob, &o);
            hp_log(c->env, HP_LOG_INFO, "request_timeout", "entity=task/%s", r->entity_id);
            request_failed(c, id, "timeout");
            i = 0;
            continue;
        }
        i++;
    }
    /* WS-5: watchdog. */
    if ((c->cs == CONN_OPEN || c->cs == CONN_READY) &&
        t - c->last_rx >= c->hb_ms * (c->pol.heartbeat_misses > 0 ? c->pol.heartbeat_misses : 2)) {
        hp_log(c->env, HP_LOG_WARNING, "heartbeat_timeout", "silence_ms=%lld",
               (long long)(t - c->last_rx));
        ws_close(c, HP_CLOSE_HEARTBEAT, "heartbeat timeout");
        schedule_reconnect(c);
    }
    /* WS-4: our heartbeat. */
    if ((c->cs == CONN_OPEN || c->cs == CONN_READY) && t >= c->next_hb)
        send_heartbeat(c);
    /* WS-6: reconnect. */
    if (c->reconnect_at != NEVER && t >= c->reconnect_at)
        ws_connect(c);
    /* N-1: once per offline period, when offline for MORE than offline_long
     * (strictly: not yet at exactly 30:00.000). */
    if (c->started && c->offline_since >= 0 && !c->offline_long_sent &&
        t - c->offline_since > c->pol.offline_long_ms) {
        c->offline_long_sent = 1;
        hp_log(c->env, HP_LOG_INFO, "offline_long", "since_ms=%lld",
               (long long)(t - c->offline_since));
        notify(c, json_pack("{s:s, s:I}", "type", "OFFLINE_LONG", "offline_ms",
                            (json_int_t)(t - c->offline_since)));
    }
    /* C-1 timer. */
    if (c->cache_check_at != NEVER && t >= c->cache_check_at)
        cache_upkeep(c);
    pump(c);
}

int64_t cli_next_deadline(const cli_core *c)
{
    int64_t d = NEVER;
#define MIN_AT(x)                                                                                  \
    do {                                                                                           \
        int64_t v_ = (x);                                                                          \
        if (v_ < d)                                                                                \
            d = v_;                                                                                \
    } while (0)
    for (int i = 0; i < c->nreq; i++)
        MIN_AT(c->reqs[i].sent_at + c->pol.request_timeout_ms);
    if (c->cs == CONN_OPEN || c->cs == CONN_READY) {
        MIN_AT(c->last_rx +
               c->hb_ms * (c->pol.heartbeat_misses > 0 ? c->pol.heartbeat_misses : 2));
        MIN_AT(c->next_hb);
    }
    MIN_AT(c->reconnect_at);
    if (c->started && c->offline_since >= 0 && !c->offline_long_sent)
        MIN_AT(c->offline_since + c->pol.offline_long_ms + 1); /* N-1: "more than" */
    MIN_AT(c->cache_check_at);
    if (!paused(c) && c->qn > 0 && !c->q[0].req_id && !c->q[0].conflict_current)
        MIN_AT(c->q[0].next_at);
#undef MIN_AT
    return d; /* INT64_MAX when nothing is due, as srv_next_deadline() */
}

hp_outbox *cli_outbox(cli_core *c)
{
    return &c->ob;
}

/* ---- inspection ------------------------------------------------------- */

json_t *cli_status(cli_core *c)
{
    static const char *names[] = {"idle", "connecting", "open", "ready"};
    const char *conn = c->auth_required ? "auth_required" : names[c->cs];
    json_t *q = json_array(), *conflicts = json_array();
    for (int i = 0; i < c->qn; i++) {
        cli_item *it = &c->q[i].it;
        json_array_append_new(
            q, json_pack("{s:s, s:s, s:s, s:I, s:i, s:O, s:b, s:b}", "mutation_id",
                         it->mutation_id, "op", it->op, "entity_id", it->entity_id,
                         "base_revision", (json_int_t)it->base_revision, "attempts", it->attempts,
                         "snapshot", it->snapshot ? it->snapshot : json_null(), "in_flight",
                         c->q[i].req_id != 0, "sent", it->sent));
        if (c->q[i].conflict_current) {
            json_t *f = json_array();
            for (int k = 0; k < HP_F_COUNT; k++)
                if (c->q[i].conflict_fields & (1u << k))
                    json_array_append_new(f, json_string(hp_field_name(k)));
            json_array_append_new(conflicts, json_pack("{s:s, s:o, s:b}", "entity_id",
                                                       it->entity_id, "fields", f,
                                                       "edit_vs_delete", c->q[i].edit_vs_delete));
        }
    }
    json_t *next_retry = json_null();
    int attempt = 0;
    if (c->qn > 0) {
        attempt = c->q[0].it.attempts;
        if (attempt > 0 && !c->q[0].req_id)
            next_retry = json_integer(c->q[0].next_at);
    }
    return json_pack("{s:b, s:s, s:I, s:o, s:o, s:o, s:o, s:O, s:i, s:o, s:i, s:o, s:o}",
                     "online", c->online, "connection", conn, "applied_revision",
                     (json_int_t)c->applied, "queue", q, "dead_letter",
                     cli_store_dead_list(c->st), "conflicts", conflicts, "cache",
                     cli_store_cache_info(c->st), "locks", c->locks, "retry_attempt", attempt,
                     "next_retry_at", next_retry, "reconnect_attempt", c->backoff,
                     "next_reconnect_at",
                     c->reconnect_at == NEVER ? json_null() : json_integer(c->reconnect_at),
                     "quarantined", json_integer(cli_store_quarantine_count(c->st)));
}

int cli_queue_length(const cli_core *c)
{
    return c->qn;
}

json_t *cli_cached(cli_core *c, const char *id)
{
    if (!id)
        return NULL;
    return cli_store_cache_get(c->st, id);
}

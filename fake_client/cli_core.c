/*
 * cli_core.c - the reference client's policy as a sans-I/O state machine:
 * the owner of struct cli_core (cli_core_int.h) and its stages.
 *
 * This file: lifecycle (cli_new / cli_free / cli_start), the small helpers
 * every stage uses (clock, notify / observe), the request table and its
 * timeout, online / offline, sync now, a new token,
 * cli_tick / cli_next_deadline and cli_status.
 * The queue is cli_queue.c, conflicts and locks cli_conflict.c, the stream
 * cli_stream.c, cache upkeep cli_cache.c.  The store (cli_store.c) does
 * persistence and sealing (C-3); cli_merge.c the three-way merge.
 *
 * Inputs: the calls of cli_core.h; time only from env->now, randomness
 * only from env->rng.  Outputs: everything the world must do goes to the
 * outbox (cli_outbox()).  Ownership: as cli_core_int.h.
 */
#include "cli_core_int.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------- */

int64_t cli__now(const cli_core *c)
{
    return hp_env_now(c->env);
}

const char *cli__user_of(const cli_core *c)
{
    return c->user ? c->user : "unknown";
}

void cli__notify(cli_core *c, json_t *info)
{
    hp_out o = hp_out_make(HP_OUT_NOTIFY, 0);
    o.info = info;
    hp_outbox_push(&c->ob, &o);
}

void cli__observe(cli_core *c, json_t *info)
{
    hp_out o = hp_out_make(HP_OUT_OBSERVE, 0);
    o.info = info;
    hp_outbox_push(&c->ob, &o);
}

/* Set a fixed (ASCII) key; takes v.  For the per-message objects below,
 * built key by key instead of with json_pack(), whose format parsing cost
 * more than the object itself. */
static inline void put(json_t *o, const char *key, json_t *v)
{
    json_object_set_new_nocheck(o, key, v);
}

json_t *cli__queue_info(const char *op, const char *entity_id, const char *mutation_id,
                        int length)
{
    json_t *o = json_object();
    put(o, "kind", json_string_nocheck("queue"));
    put(o, "op", json_string(op));
    put(o, "entity_id", json_string(entity_id));
    put(o, "mutation_id", json_string(mutation_id));
    put(o, "length", json_integer(length));
    return o;
}

json_t *cli__request_result_info(const char *mutation_id, int status, const char *error)
{
    json_t *o = json_object();
    put(o, "kind", json_string_nocheck("request_result"));
    put(o, "mutation_id", json_string(mutation_id));
    put(o, "status", json_integer(status));
    if (error)
        put(o, "error", json_string(error));
    return o;
}

void cli__observe_queue(cli_core *c, const char *op, const cli_item *it)
{
    cli__observe(c, cli__queue_info(op, it->entity_id, it->mutation_id, c->qn));
}

void cli__observe_conn(cli_core *c, const char *state, int code, int64_t rev)
{
    json_t *o = json_object();
    put(o, "kind", json_string_nocheck("connection"));
    put(o, "state", json_string(state));
    if (code >= 0)
        put(o, "code", json_integer(code));
    if (rev >= 0)
        put(o, "revision", json_integer(rev));
    cli__observe(c, o);
}

/* a mutation id (Idempotency-Key) of 32 hex chars from env->rng. */
void cli__new_mutation_id(cli_core *c, char *out, size_t n)
{
    uint64_t a = hp_rng_next(c->env->rng), b = hp_rng_next(c->env->rng);
    /* "m-" and both words as 16 lower-case hex digits each (was
     * "m-%016llx%016llx"; written by hand, once per edit). */
    static const char hex[] = "0123456789abcdef";
    char buf[35];
    buf[0] = 'm';
    buf[1] = '-';
    for (int i = 0; i < 16; i++) {
        buf[2 + i] = hex[(a >> (60 - 4 * i)) & 15];
        buf[18 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    buf[34] = '\0';
    if (n == 0)
        return;
    size_t k = n - 1 < sizeof buf - 1 ? n - 1 : sizeof buf - 1; /* snprintf's truncation */
    memcpy(out, buf, k);
    out[k] = '\0';
}

void cli__set_applied(cli_core *c, int64_t rev)
{
    c->applied = rev;
    cli_store_set_applied_revision(c->st, rev);
}

/* ---- requests --------------------------------------------------------- */

pending_req *cli__req_find(cli_core *c, uint64_t id)
{
    for (int i = 0; i < c->nreq; i++)
        if (c->reqs[i].id == id)
            return &c->reqs[i];
    return NULL;
}

void cli__req_drop(cli_core *c, uint64_t id)
{
    for (int i = 0; i < c->nreq; i++)
        if (c->reqs[i].id == id) {
            c->reqs[i] = c->reqs[--c->nreq];
            return;
        }
}

/* Push an HTTP request and remember it for the request timeout. */
uint64_t cli__send_http(cli_core *c, req_kind kind, const char *method, const char *path,
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
    r->sent_at = cli__now(c);
    r->token_gen = c->token_gen;
    cli__copy(r->entity_id, sizeof r->entity_id, entity ? entity : "");
    return id;
}

static void abort_http(cli_core *c, uint64_t id)
{
    hp_out o = hp_out_make(HP_OUT_HTTP_ABORT, id);
    hp_outbox_push(&c->ob, &o);
    cli__req_drop(c, id);
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
        if (cli__q_append(c, &qi) != 0)
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
        cli__qitem_free(&c->q[i]);
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
    cli__offline_begin(c); /* N-1: no READY connection yet */
    cli_store_open_info inf = cli_store_info(c->st);
    if (inf.key_mismatch)
        cli__notify(c, json_pack("{s:s, s:i, s:i}", "type", "KEY_MISMATCH", "quarantined",
                                 inf.quarantined, "restored", inf.restored));
    else if (inf.restored > 0)
        cli__notify(c, json_pack("{s:s, s:i, s:i}", "type", "QUARANTINE_RESTORED", "quarantined",
                                 inf.quarantined, "restored", inf.restored));
    if (!c->token) {
        cli__auth_required(c, "no_token");
        return;
    }
    cli__cache_upkeep(c);
    cli__ws_connect(c);
    cli__pump(c);
}

/* ---- online / offline, sync now, token -------------------------------- */

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
        cli__ws_close(c, 1000, "offline");
        cli__offline_begin(c);
        c->reconnect_at = NEVER;
        return;
    }
    hp_log(c->env, HP_LOG_INFO, "online", NULL);
    /* WS-6: immediate connect after "online"; the queue goes at once. */
    c->backoff = 0;
    if (c->qn > 0)
        c->q[0].next_at = cli__now(c);
    cli__ws_connect(c);
    cli__pump(c);
}

void cli_sync_now(cli_core *c)
{
    /* try at once, reset the schedule. */
    if (c->qn > 0) {
        cli__reset_streak(c, &c->q[0]);
        c->q[0].next_at = cli__now(c);
    } else {
        c->sync_failed_sent = 0;
    }
    if (c->cs == CONN_IDLE && c->reconnect_at != NEVER) {
        c->backoff = 0;
        cli__ws_connect(c);
    }
    cli__pump(c);
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
    hp_log(c->env, HP_LOG_INFO, "token_set", "user=%s", cli__user_of(c));
    /* A-2 / WS-6: resume at once: immediate connect, the queue with the same key. */
    c->backoff = 0;
    if (c->qn > 0 && !c->q[0].req_id)
        c->q[0].next_at = cli__now(c);
    if (c->started) {
        cli__ws_connect(c);
        cli__pump(c);
        cli__cache_upkeep(c);
    }
}

/* ---- time -------------------------------------------------------------- */

void cli_tick(cli_core *c)
{
    int64_t t = cli__now(c);
    /* request timeout => abort and count a failure. */
    for (int i = 0; i < c->nreq;) {
        pending_req *r = &c->reqs[i];
        if (t - r->sent_at >= c->pol.request_timeout_ms) {
            uint64_t id = r->id;
            hp_out o = hp_out_make(HP_OUT_HTTP_ABORT, id);
            hp_outbox_push(&c->ob, &o);
            hp_log(c->env, HP_LOG_INFO, "request_timeout", "entity=task/%s", r->entity_id);
            cli__request_failed(c, id, "timeout");
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
        cli__ws_close(c, HP_CLOSE_HEARTBEAT, "heartbeat timeout");
        cli__schedule_reconnect(c);
    }
    /* WS-4: our heartbeat. */
    if ((c->cs == CONN_OPEN || c->cs == CONN_READY) && t >= c->next_hb)
        cli__send_heartbeat(c);
    /* WS-6: reconnect. */
    if (c->reconnect_at != NEVER && t >= c->reconnect_at)
        cli__ws_connect(c);
    /* N-1: once per offline period, when offline for MORE than offline_long
     * (strictly: not yet at exactly 30:00.000). */
    if (c->started && c->offline_since >= 0 && !c->offline_long_sent &&
        t - c->offline_since > c->pol.offline_long_ms) {
        c->offline_long_sent = 1;
        hp_log(c->env, HP_LOG_INFO, "offline_long", "since_ms=%lld",
               (long long)(t - c->offline_since));
        cli__notify(c, json_pack("{s:s, s:I}", "type", "OFFLINE_LONG", "offline_ms",
                                 (json_int_t)(t - c->offline_since)));
    }
    /* C-1 timer. */
    if (c->cache_check_at != NEVER && t >= c->cache_check_at)
        cli__cache_upkeep(c);
    cli__pump(c);
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
    if (!cli__paused(c) && c->qn > 0 && !c->q[0].req_id && !c->q[0].conflict_current)
        MIN_AT(c->q[0].next_at);
#undef MIN_AT
    return d; /* INT64_MAX when nothing is due, as srv_next_deadline() */
}

hp_outbox *cli_outbox(cli_core *c)
{
    return &c->ob;
}

/* ---- inspection ------------------------------------------------------- */

/* cli_status()'s keys, in its order, index = bit number of CLI_STATUS_. */
static const char *const status_keys[] = {
    "online",        "connection",    "applied_revision", "queue",
    "dead_letter",   "conflicts",     "cache",            "locks",
    "retry_attempt", "next_retry_at", "reconnect_attempt", "next_reconnect_at",
    "quarantined",
};

unsigned cli_status_key(const char *key)
{
    if (!key)
        return 0;
    for (unsigned k = 0; k < sizeof status_keys / sizeof *status_keys; k++)
        if (strcmp(key, status_keys[k]) == 0)
            return 1u << k;
    return 0;
}

/* The "queue" member: every queued item (in flight or not). */
static json_t *status_queue(const cli_core *c)
{
    json_t *q = json_array();
    for (int i = 0; i < c->qn; i++) {
        const cli_item *it = &c->q[i].it;
        json_t *e = json_object();
        put(e, "mutation_id", json_string(it->mutation_id));
        put(e, "op", json_string(it->op));
        put(e, "entity_id", json_string(it->entity_id));
        put(e, "base_revision", json_integer(it->base_revision));
        put(e, "attempts", json_integer(it->attempts));
        put(e, "snapshot", it->snapshot ? json_incref(it->snapshot) : json_null());
        put(e, "in_flight", json_boolean(c->q[i].req_id != 0));
        put(e, "sent", json_boolean(it->sent));
        json_array_append_new(q, e);
    }
    return q;
}

/* The "conflicts" member: the CF-3 banners waiting for a choice. */
static json_t *status_conflicts(const cli_core *c)
{
    json_t *conflicts = json_array();
    for (int i = 0; i < c->qn; i++) {
        if (!c->q[i].conflict_current)
            continue;
        json_t *f = json_array();
        for (int k = 0; k < HP_F_COUNT; k++)
            if (c->q[i].conflict_fields & (1u << k))
                json_array_append_new(f, json_string(hp_field_name(k)));
        json_array_append_new(conflicts, json_pack("{s:s, s:o, s:b}", "entity_id",
                                                   c->q[i].it.entity_id, "fields", f,
                                                   "edit_vs_delete", c->q[i].edit_vs_delete));
    }
    return conflicts;
}

/* The value of member number k (bit 1u << k) of the status object: a new
 * reference. */
static json_t *status_member(cli_core *c, unsigned k)
{
    static const char *names[] = {"idle", "connecting", "open", "ready"};
    switch (1u << k) {
    case CLI_STATUS_ONLINE:
        return json_boolean(c->online);
    case CLI_STATUS_CONNECTION:
        return json_string(c->auth_required ? "auth_required" : names[c->cs]);
    case CLI_STATUS_APPLIED_REVISION:
        return json_integer(c->applied);
    case CLI_STATUS_QUEUE:
        return status_queue(c);
    case CLI_STATUS_DEAD_LETTER:
        return cli_store_dead_list(c->st);
    case CLI_STATUS_CONFLICTS:
        return status_conflicts(c);
    case CLI_STATUS_CACHE:
        return cli_store_cache_info(c->st);
    case CLI_STATUS_LOCKS:
        return json_incref(c->locks);
    case CLI_STATUS_RETRY_ATTEMPT:
        return json_integer(c->qn > 0 ? c->q[0].it.attempts : 0);
    case CLI_STATUS_NEXT_RETRY_AT:
        /* when the head waits for its next attempt. */
        return c->qn > 0 && c->q[0].it.attempts > 0 && !c->q[0].req_id
                   ? json_integer(c->q[0].next_at)
                   : json_null();
    case CLI_STATUS_RECONNECT_ATTEMPT:
        return json_integer(c->backoff);
    case CLI_STATUS_NEXT_RECONNECT_AT:
        return c->reconnect_at == NEVER ? json_null() : json_integer(c->reconnect_at);
    case CLI_STATUS_QUARANTINED:
        return json_integer(cli_store_quarantine_count(c->st));
    }
    return json_null();
}

json_t *cli_status_part(cli_core *c, unsigned parts)
{
    json_t *s = json_object();
    for (unsigned k = 0; k < sizeof status_keys / sizeof *status_keys; k++)
        if (parts & (1u << k))
            put(s, status_keys[k], status_member(c, k));
    return s;
}

json_t *cli_status(cli_core *c)
{
    return cli_status_part(c, CLI_STATUS_ALL);
}

json_t *cli_status_light(cli_core *c)
{
    return cli_status_part(c, CLI_STATUS_ALL & ~(unsigned)(CLI_STATUS_DEAD_LETTER |
                                                           CLI_STATUS_CACHE |
                                                           CLI_STATUS_QUARANTINED));
}

int cli_queue_length(const cli_core *c)
{
    return c->qn;
}

/*
 * srv_core.c - the server core handle: lifecycle, outbox helpers,
 * broadcast, the timer loop (srv_tick / srv_next_deadline), faults and
 * introspection.  REST lives in srv_rest.c, the stream in srv_stream.c,
 * locks in srv_lock.c, reminders in srv_remind.c, SQLite in srv_store.c.
 */
#define _GNU_SOURCE
#include "srv_internal.h"
#include "hp_jdump.h"
#include "hp_jload.h"
#include "hp_msg.h"
#include "hp_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void srv_limits_defaults(srv_limits *l)
{
    memset(l, 0, sizeof *l);
    l->replay_max_bytes = (size_t)256 << 20;
    l->replay_chunk_bytes = (size_t)256 << 10;
    l->conns_per_user = 32;
    l->conns_total = 10000;
    l->locks_per_user = 256;
    l->heartbeat_lock_ids = 256;
}

void srv_set_limits(srv_core *c, const srv_limits *l)
{
    if (!c || !l)
        return;
    srv_limits d;
    srv_limits_defaults(&d);
    /* replay_max_bytes 0 means "no bound" and is kept as given. */
    c->lim.replay_max_bytes = l->replay_max_bytes;
    c->lim.replay_chunk_bytes = l->replay_chunk_bytes ? l->replay_chunk_bytes : d.replay_chunk_bytes;
    c->lim.conns_per_user = l->conns_per_user > 0 ? l->conns_per_user : d.conns_per_user;
    c->lim.conns_total = l->conns_total > 0 ? l->conns_total : d.conns_total;
    c->lim.locks_per_user = l->locks_per_user > 0 ? l->locks_per_user : d.locks_per_user;
    c->lim.heartbeat_lock_ids = l->heartbeat_lock_ids > 0 ? l->heartbeat_lock_ids
                                                          : d.heartbeat_lock_ids;
}

srv_core *srv_new(const hp_env *env, const hp_policy *policy, const char *jwt_secret,
                  srv_store *st)
{
    if (!env || !st)
        return NULL;
    srv_core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->env = *env;
    if (policy)
        c->pol = *policy;
    else
        hp_policy_defaults(&c->pol);
    /* Zero or negative durations would make every deadline "now" and spin
     * the driver: keep them at least 1 ms. */
    if (c->pol.heartbeat_ms < 1)
        c->pol.heartbeat_ms = 1;
    if (c->pol.hello_timeout_ms < 1)
        c->pol.hello_timeout_ms = 1;
    if (c->pol.lock_ttl_ms < 1)
        c->pol.lock_ttl_ms = 1;
    if (c->pol.heartbeat_misses < 1)
        c->pol.heartbeat_misses = 1;
    /* Issue 11: a policy built without hp_policy_set() (a driver, a fuzz
     * target) still cannot overflow now + duration or duration x misses. */
    int64_t *durs[] = {&c->pol.heartbeat_ms, &c->pol.hello_timeout_ms, &c->pol.lock_ttl_ms,
                       &c->pol.idempotency_window_ms};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++)
        if (*durs[i] > HP_DURATION_MAX_MS)
            *durs[i] = HP_DURATION_MAX_MS;
    if (c->pol.idempotency_window_ms < 1)
        c->pol.idempotency_window_ms = 1;
    if (c->pol.heartbeat_misses > HP_HEARTBEAT_MISSES_MAX)
        c->pol.heartbeat_misses = HP_HEARTBEAT_MISSES_MAX;
    srv_limits_defaults(&c->lim);
    c->secret = strdup(jwt_secret ? jwt_secret : "");
    c->st = st;
    hp_outbox_init(&c->out);
    hp_outbox_init(&c->held);
    if (!c->secret) {
        free(c);
        return NULL;
    }
    /* reminders that fell due while no core ran are due now; the
     * first srv_tick() fires them. */
    srv_refresh_reminder(c);
    return c;
}

void srv_free(srv_core *c)
{
    if (!c)
        return;
    srv_flush(c);
    hp_outbox_free(&c->held);
    srv_conn_free_all(c);
    srv_lock_free_all(c);
    for (srv_fail_fault *f = c->fails, *n; f; f = n) {
        n = f->next;
        free(f->method);
        free(f->prefix);
        free(f);
    }
    for (srv_hb_fault *f = c->hb_faults, *n; f; f = n) {
        n = f->next;
        free(f->user);
        free(f);
    }
    for (srv_name *f = c->force_409, *n; f; f = n) {
        n = f->next;
        free(f->name);
        free(f);
    }
    srv_faults_free(c);
    srv_idem_free(c);
    hp_outbox_free(&c->out);
    free(c->secret);
    free(c);
}

int srv_identify(srv_core *c, const char *authorization, int bare, hp_claims *out)
{
    if (!c || !authorization)
        return -1;
    const char *t = authorization;
    if (!bare) {
        while (*t == ' ')
            t++;
        if (strncasecmp(t, "Bearer ", 7) != 0)
            return -1;
        t += 7;
        while (*t == ' ')
            t++;
    }
    return hp_jwt_verify_memo(c->jwt_memo, c->secret, t, srv_now(c), out, NULL, NULL, 0);
}

void srv_set_jwt_memo(srv_core *c, hp_jwt_memo *memo)
{
    if (c)
        c->jwt_memo = memo;
}

hp_outbox *srv_outbox(srv_core *c)
{
    return c ? &c->out : NULL;
}

int64_t srv_now(const srv_core *c)
{
    return hp_env_now(&c->env);
}

/* ---- outbox helpers --------------------------------------------------- */

/* Takes ownership of body.  A NULL body (allocation failure) still yields
 * a response so the driver never waits for an answer that will not come. */
void srv_push_response(srv_core *c, uint64_t id, int status, char *body, int retry_after_s)
{
    srv_push_response_held(c, id, status, body, retry_after_s, 0);
}

void srv_push_response_held(srv_core *c, uint64_t id, int status, char *body, int retry_after_s,
                            int64_t hold_ms)
{
    hp_out o = hp_out_make(HP_OUT_HTTP_RESPONSE, id);
    o.hold_ms = hold_ms;
    o.status = status;
    o.body = body;
    o.body_len = body ? strlen(body) : 0;
    o.retry_after_s = retry_after_s;
    hp_outbox_push(srv_box(c), &o);
}

void srv_push_send(srv_core *c, uint64_t conn_id, char *frame)
{
    if (!frame)
        return;
    hp_out o = hp_out_make(HP_OUT_WS_SEND, conn_id);
    o.body = frame;
    o.body_len = strlen(frame);
    hp_outbox_push(srv_box(c), &o);
}

/* The connection stays known (state CLOSING, no timers, no events) until
 * the driver reports srv_ws_closed(). */
void srv_push_close(srv_core *c, srv_conn *conn, int code, const char *reason)
{
    if (conn->state == SRV_CONN_CLOSING)
        return;
    conn->state = SRV_CONN_CLOSING;
    srv_conn_closing(c, conn); /* no timers, no longer counted in the limits */
    hp_out o = hp_out_make(HP_OUT_WS_CLOSE, conn->id);
    o.code = code;
    o.body = hp_strdup(reason ? reason : "");
    o.body_len = o.body ? strlen(o.body) : 0;
    hp_outbox_push(srv_box(c), &o);
    /* INFO: a close is normal life (token expiry, shutdown, a client's
     * bug).  The WARNINGs are the rule events: heartbeat_timeout (WS-5),
     * token_refused, conflict (CF-4). */
    hp_log(&c->env, HP_LOG_INFO, "ws_close",
           "conn=%llu user=%s code=%d reason=\"%s\" hh=%s dev=%s", (unsigned long long)conn->id,
           conn->user, code, reason ? reason : "", conn->hh, srv_dash(conn->dev));
}

/*
 * WS-3: one frame per READY connection of hh (A-3: never another
 * household).  A connection still awaiting HELLO or resyncing gets
 * nothing: its replay reads the log, which already has this event; lock
 * events are not logged and are simply missed (the lock is in the next
 * LOCK_REFRESHED or expires).  A replay streamed chunk by chunk is
 * REPLAYING meanwhile and reads what was written from the log.  A-3 is the
 * index walked: only hh's own connections, in open order (srv_conns.c), so
 * a write costs its household's listeners, not every connection.
 */
/* hp_msg_event()'s frame with the payload's text spliced in as it is:
 * that text is hp_json_dump() of the payload, which is what hp_msg_event()
 * writes for it, so the event log's text (replay) and a write's dump
 * (broadcast) need no tree.  type and entity_id that are not UTF-8 (which
 * hp_msg_event() repairs) take hp_msg_event() itself. */
char *srv_event_frame(const char *type, const char *entity_id, int64_t rev, const char *payload)
{
    const char *id = entity_id ? entity_id : "", *ty = type ? type : "";
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_raw(&w, "{\"entity_id\":", 13);
    int bad = hp_jw_str(&w, id, strlen(id)) == 1;
    hp_jw_raw(&w, ",\"event_type\":", 14);
    bad = bad || hp_jw_str(&w, ty, strlen(ty)) == 1;
    if (bad || !payload) {
        free(hp_jw_take(&w, NULL));
        json_t *p = payload ? hp_json_loads(payload, JSON_DECODE_ANY, NULL) : NULL;
        char *f = hp_msg_event(type, entity_id, rev, p);
        json_decref(p);
        return f;
    }
    hp_jw_raw(&w, ",\"payload\":", 11);
    hp_jw_raw(&w, payload, strlen(payload));
    hp_jw_raw(&w, ",\"revision\":", 12);
    hp_jw_int(&w, (json_int_t)rev);
    hp_jw_raw(&w, "}", 1);
    return hp_jw_take(&w, NULL);
}

/* One frame made at the first READY connection of hh (none: no frame),
 * a copy pushed to each. */
static void broadcast(srv_core *c, const char *hh, const char *type, const char *entity_id,
                      int64_t rev, const json_t *payload, const char *text)
{
    char *frame = NULL;
    for (srv_conn *k = srv_conn_hh_first(c, hh); k; k = k->hh_next) {
        if (k->state != SRV_CONN_READY)
            continue;
        if (!frame)
            frame = text ? srv_event_frame(type, entity_id, rev, text)
                         : hp_msg_event(type, entity_id, rev, payload);
        if (frame)
            srv_push_send(c, k->id, strdup(frame));
    }
    free(frame);
}

void srv_broadcast_event(srv_core *c, const char *hh, const char *type, const char *entity_id,
                         int64_t rev, const json_t *payload)
{
    broadcast(c, hh, type, entity_id, rev, payload, NULL);
}

void srv_broadcast_event_text(srv_core *c, const char *hh, const char *type,
                              const char *entity_id, int64_t rev, const char *text)
{
    broadcast(c, hh, type, entity_id, rev, NULL, text);
}

/* hp_error_body() plus extra fields (the 409's "current", the 423's
 * holder): every error body still starts from the one maker. */
char *srv_error_body(const char *code, const char *message, const json_t *extra)
{
    char *base = hp_error_body(code, message);
    if (!extra || !base)
        return base;
    json_t *o = json_loads(base, 0, NULL);
    if (!o)
        return base;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)extra, k, v) {
        if (strcmp(k, "error") != 0 && strcmp(k, "message") != 0)
            json_object_set(o, k, v);
    }
    char *s = hp_json_dump(o);
    json_decref(o);
    if (!s)
        return base;
    free(base);
    return s;
}

/* ---- timers ----------------------------------------------------------- */

void srv_refresh_reminder(srv_core *c)
{
    char hh[SRV_NAME_MAX], id[SRV_NAME_MAX];
    int64_t due = 0;
    int r = srv_store_reminder_next(c->st, hh, id, sizeof hh, NULL, &due);
    c->next_reminder_ms = r == 1 ? due : INT64_MAX;
    c->reminders_none = r == 0; /* not after an error: that is not known */
}

/*
 * Order within one tick is fixed so a simulation is reproducible:
 * reminders, lock expiry (CF-1), then per connection in open order:
 * token expiry, HELLO timeout (WS-2), heartbeat timeout (WS-5),
 * heartbeat due (WS-4).
 */
void srv_tick(srv_core *c)
{
    if (!c)
        return;
    srv_flush(c); /* timers never run inside a group (reminders write) */
    srv_remind_tick(c);
    srv_lock_expire(c);
    srv_stream_tick(c);
}

int64_t srv_next_deadline(const srv_core *c)
{
    if (!c)
        return INT64_MAX;
    int64_t d = c->next_reminder_ms;
    int64_t l = srv_lock_next_deadline(c);
    int64_t s = srv_stream_next_deadline(c);
    if (l < d)
        d = l;
    if (s < d)
        d = s;
    return d;
}

/* ---- faults ----------------------------------------------------------- */

/* Applied to the user's open connections now; when none is open the
 * fault waits for the user's next connection (a scenario may script it
 * before the client connects). */
void srv_fault_drop_heartbeats(srv_core *c, const char *user, int n)
{
    if (!c || n <= 0)
        return;
    int applied = 0;
    for (srv_conn *k = c->conns; k; k = k->next) {
        if (k->state == SRV_CONN_CLOSING || (user && strcmp(user, k->user) != 0))
            continue;
        k->drop_hb += n;
        applied = 1;
    }
    if (applied)
        return;
    srv_hb_fault *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->user = hp_strdup(user);
    f->n = n;
    srv_hb_fault **pp = &c->hb_faults;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    hp_log(&c->env, HP_LOG_INFO, "fault_armed", "kind=drop_heartbeats user=%s n=%d",
           user ? user : "*", n);
}

void srv_fault_fail_requests(srv_core *c, const char *method, const char *path_prefix, int n,
                             int status, int retry_after_s)
{
    if (!c || n <= 0 || status < 100 || status > 599)
        return;
    srv_fail_fault *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->method = hp_strdup(method);
    f->prefix = hp_strdup(path_prefix);
    f->left = n;
    f->status = status;
    f->retry_after_s = retry_after_s;
    srv_fail_fault **pp = &c->fails;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    hp_log(&c->env, HP_LOG_INFO, "fault_armed",
           "kind=fail_requests method=%s path=%s n=%d status=%d", method ? method : "*",
           path_prefix ? path_prefix : "*", n, status);
}

void srv_fault_force_conflict(srv_core *c, const char *task_id)
{
    if (!c || !task_id)
        return;
    srv_name *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->name = strdup(task_id);
    if (!f->name) {
        free(f);
        return;
    }
    f->next = c->force_409;
    c->force_409 = f;
    hp_log(&c->env, HP_LOG_INFO, "fault_armed", "kind=force_conflict entity=task/%s", task_id);
}

/* ---- introspection ---------------------------------------------------- */

static json_t *hh_entry(json_t *hhs, const char *hh)
{
    json_t *e = json_object_get(hhs, hh);
    if (!e) {
        e = json_pack("{s:I, s:{}, s:{}}", "revision", (json_int_t)0, "tasks", "locks");
        json_object_set_new(hhs, hh, e);
    }
    return e;
}

/* One task of household hh as the tasks_since(0) listing has it: the
 * listing keeps only revision > 0, the revision column being the JSON's. */
static json_t *one_task(srv_core *c, const char *hh, const char *id)
{
    json_t *t = srv_store_task_get(c->st, hh, id);
    if (t && json_integer_value(json_object_get(t, "revision")) <= 0) {
        json_decref(t);
        t = NULL;
    }
    return t;
}

json_t *srv_state_part(srv_core *c, unsigned parts, const char *task_id)
{
    if (!c)
        return NULL;
    srv_flush(c);
    json_t *root = json_object();
    if (parts & (SRV_STATE_REVISIONS | SRV_STATE_TASKS | SRV_STATE_LOCKS)) {
        /* Every household, in the order of the whole state (the store's,
         * then those with only locks), whichever parts are filled: the
         * checker's "first household that has it" depends on it. */
        json_t *hhs = json_object();
        json_t *list = srv_store_households(c->st);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) {
            const char *hh = json_string_value(v);
            json_t *e = hh_entry(hhs, hh);
            if (parts & SRV_STATE_REVISIONS)
                json_object_set_new(e, "revision", json_integer(srv_store_revision(c->st, hh)));
            if (!(parts & SRV_STATE_TASKS))
                continue;
            json_t *tobj = json_object_get(e, "tasks");
            if (task_id) {
                json_t *t = one_task(c, hh, task_id);
                if (t)
                    json_object_set_new(tobj, task_id, t);
                continue;
            }
            json_t *tasks = srv_store_tasks_since(c->st, hh, 0);
            size_t j;
            json_t *t;
            json_array_foreach(tasks, j, t) {
                json_object_set(tobj, json_string_value(json_object_get(t, "id")), t);
            }
            json_decref(tasks);
        }
        json_decref(list);
        for (srv_lock *l = c->locks; l; l = l->next) {
            json_t *e = hh_entry(hhs, l->hh);
            if (!(parts & SRV_STATE_LOCKS))
                continue;
            json_t *lj = srv_lock_json(l);
            json_object_del(lj, "state");
            json_object_set_new(json_object_get(e, "locks"), l->id, lj);
        }
        json_object_set_new(root, "households", hhs);
    }
    if (parts & SRV_STATE_CONNS) {
        json_t *conns = json_array();
        static const char *const names[] = {"awaiting_hello", "resync", "replaying", "ready",
                                            "closing"};
        for (srv_conn *k = c->conns; k; k = k->next)
            json_array_append_new(conns,
                                  json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)k->id,
                                            "user", k->user, "hh", k->hh, "state",
                                            names[k->state]));
        json_object_set_new(root, "connections", conns);
    }
    if (parts & SRV_STATE_EVENTS)
        json_object_set_new(root, "events", json_integer(srv_store_event_count(c->st)));
    return root;
}

json_t *srv_state(srv_core *c)
{
    return srv_state_part(c, SRV_STATE_ALL, NULL);
}

/*
 * cli_stream.c - the client core's WebSocket stream: part of cli_core
 * (cli_core_int.h).
 *
 * Inputs: cli_ws_opened / cli_ws_refused / cli_ws_message / cli_ws_closed
 * from the driver, the reload's answer after RESYNC_REQUIRED
 * (cli__reload_answer), and the timers cli_tick fires (heartbeat,
 * reconnect).
 * Outputs: connect / send / close items, "connection" and "event"
 * observables, AUTH_REQUIRED, the applied revision and cached
 * versions in the store (WS-2, C-4).  Ownership: the connection is named
 * by c->conn_id only; frames pushed are the outbox's.
 */
#include "cli_core_int.h"
#include "hp_msg.h"
#include "hp_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* stop, say AUTH_REQUIRED once, wait for cli_set_token. */
void cli__auth_required(cli_core *c, const char *why)
{
    c->reconnect_at = NEVER;
    if (c->auth_required)
        return;
    c->auth_required = 1;
    hp_log(c->env, HP_LOG_WARNING, "auth_required", "reason=%s", why);
    cli__notify(c, json_pack("{s:s, s:s}", "type", "AUTH_REQUIRED", "reason", why));
    /* The driver contract's level-1 `connection` line: a harness judging
     * this program as a foreign client reads its state from these lines. */
    cli__observe_conn(c, "auth_required", -1, -1);
}

/* ---- connection ------------------------------------------------------- */

void cli__offline_begin(cli_core *c)
{
    if (c->offline_since < 0) {
        c->offline_since = cli__now(c);
        c->offline_long_sent = 0;
    }
}

/* WS-6: open the stream now (if allowed). */
void cli__ws_connect(cli_core *c)
{
    c->reconnect_at = NEVER;
    if (cli__paused(c) || c->cs != CONN_IDLE)
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
    cli__observe_conn(c, "connecting", -1, -1);
}

/* WS-6: the next reconnect after a lost connection: 1, 3, 9, 27, 120, 120 s. */
void cli__schedule_reconnect(cli_core *c)
{
    if (cli__paused(c))
        return;
    c->backoff++;
    int64_t d = cli__retry_delay(c, c->backoff);
    c->reconnect_at = cli__now(c) + d;
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
void cli__ws_close(cli_core *c, int code, const char *reason)
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
    cli__offline_begin(c);
    cli__observe_conn(c, "closed", code, -1);
}

void cli__send_heartbeat(cli_core *c)
{
    /* WS-4 / CF-1: the ids being edited refresh their soft-locks. */
    ws_send(c, hp_msg_heartbeat(c->locks));
    c->next_hb = cli__now(c) + c->hb_ms;
}

/* WS-2: the reload after RESYNC_REQUIRED. */
void cli__reload_answer(cli_core *c, int status, const char *body, size_t len)
{
    c->reload_pending = 0;
    json_t *bj = status == 200 ? cli__parse_body(body, len) : NULL;
    json_t *tasks = json_object_get(bj, "tasks");
    json_t *rev = json_object_get(bj, "revision");
    /* Issue 11: the revision is a number from outside: 0..HP_REVISION_MAX. */
    if (!json_is_array(tasks) || !json_is_integer(rev) || json_integer_value(rev) < 0 ||
        json_integer_value(rev) > HP_REVISION_MAX) {
        json_decref(bj);
        if (status == 401)
            cli__auth_required(c, "http_401");
        hp_log(c->env, HP_LOG_WARNING, "reload_failed", "status=%d", status);
        if (c->cs != CONN_IDLE) {
            cli__ws_close(c, 1000, "reload failed");
            cli__schedule_reconnect(c);
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
    cli__set_applied(c, json_integer_value(rev));
    hp_log(c->env, HP_LOG_INFO, "reloaded", "revision=%lld tasks=%zu", (long long)c->applied,
           json_array_size(tasks));
    json_decref(bj);
    cli__cache_upkeep(c);
    if (c->cs == CONN_OPEN)
        ws_send(c, hp_msg_hello(c->applied));
}

/* ---- WebSocket --------------------------------------------------------- */

void cli_ws_opened(cli_core *c, uint64_t conn_id)
{
    if (conn_id != c->conn_id || c->cs != CONN_CONNECTING)
        return;
    c->cs = CONN_OPEN;
    c->last_rx = cli__now(c);
    /* WS-2: HELLO with the last applied revision. */
    ws_send(c, hp_msg_hello(c->applied));
    cli__observe_conn(c, "open", -1, -1); /* contract level 1: socket up, HELLO sent */
    c->next_hb = cli__now(c) + c->hb_ms;
    hp_log(c->env, HP_LOG_INFO, "ws_open", "revision=%lld", (long long)c->applied);
}

void cli_ws_refused(cli_core *c, uint64_t conn_id, int http_status)
{
    if (conn_id != c->conn_id || c->cs == CONN_IDLE)
        return;
    c->cs = CONN_IDLE;
    c->conn_id = 0;
    cli__observe_conn(c, "closed", 0, -1);
    hp_log(c->env, HP_LOG_INFO, "ws_refused", "status=%d", http_status);
    if (http_status == 401 && c->conn_token_gen != c->token_gen) {
        /* A-2 / WS-6: refused for a token older than the one now held: the
         * new token is already here, so connect with it at once. */
        c->backoff = 0;
        cli__ws_connect(c);
        return;
    }
    if (http_status == 401) {
        cli__auth_required(c, "upgrade_401");
        return;
    }
    cli__schedule_reconnect(c);
}

void cli_ws_closed(cli_core *c, uint64_t conn_id, int code)
{
    if (conn_id != c->conn_id || c->cs == CONN_IDLE)
        return;
    c->cs = CONN_IDLE;
    c->conn_id = 0;
    cli__offline_begin(c);
    cli__observe_conn(c, "closed", code, -1);
    hp_log(c->env, HP_LOG_INFO, "ws_closed", "code=%d", code);
    if (code == HP_CLOSE_AUTH && c->conn_token_gen != c->token_gen) {
        /* A-2 / WS-6: the connection's (old) token expired, but a new token
         * arrived meanwhile: "until a new token" is already over, so
         * reconnect at once with it instead of asking again. */
        c->backoff = 0;
        cli__ws_connect(c);
        return;
    }
    if (code == HP_CLOSE_AUTH) {
        cli__auth_required(c, "close_4001"); /* */
        return;
    }
    cli__schedule_reconnect(c);
}

/* The "event" observable {kind, event_type, entity_id, revision, payload}
 * (payload shared, not copied): a new object.  Built key by key, not with
 * json_pack(), once per event applied. */
static json_t *event_info(const char *et, const char *eid, const hp_msg *m)
{
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "kind", json_string_nocheck("event"));
    json_object_set_new_nocheck(o, "event_type", json_string(et));
    json_object_set_new_nocheck(o, "entity_id", json_string(eid));
    json_object_set_new_nocheck(o, "revision", json_integer(m->revision));
    json_object_set_new_nocheck(o, "payload", m->payload ? json_incref(m->payload) : json_null());
    return o;
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
        cli__observe(c, event_info(et, eid, m));
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
    cli__set_applied(c, m->revision);
    cli__observe(c, event_info(et, eid, m));
    if (is_task)
        cli__cache_upkeep(c);
}

void cli_ws_message(cli_core *c, uint64_t conn_id, const char *data, size_t len)
{
    if (conn_id != c->conn_id || (c->cs != CONN_OPEN && c->cs != CONN_READY))
        return;
    c->last_rx = cli__now(c); /* WS-5: any message resets the watchdog */
    hp_msg m;
    char err[160];
    if (hp_msg_parse(data, len, &m, err, sizeof err) != 0) {
        hp_log(c->env, HP_LOG_WARNING, "bad_message", "error=\"%s\"", err);
        return;
    }
    switch (m.type) {
    case HP_MSG_READY:
        if (m.revision > c->applied)
            cli__set_applied(c, m.revision);
        if (m.heartbeat_ms > 0 && m.heartbeat_ms != c->hb_ms) {
            c->hb_ms = m.heartbeat_ms;
            c->next_hb = cli__now(c) + c->hb_ms;
        }
        c->cs = CONN_READY;
        c->backoff = 0; /* WS-6: READY resets the schedule */
        c->offline_since = -1;
        c->offline_long_sent = 0;
        cli__observe_conn(c, "ready", -1, m.revision);
        hp_log(c->env, HP_LOG_INFO, "ws_ready", "revision=%lld", (long long)m.revision);
        cli__relock_all(c); /* CF-1: re-take the locks of ids still being edited */
        break;
    case HP_MSG_RESYNC:
        /* WS-2: reload with GET ?since=0, then HELLO again. */
        cli__observe_conn(c, "resync", -1, m.revision);
        hp_log(c->env, HP_LOG_INFO, "resync_required", "revision=%lld applied=%lld",
               (long long)m.revision, (long long)c->applied);
        if (!c->reload_pending) {
            c->reload_pending = 1;
            cli__send_http(c, REQ_RELOAD, "GET", HP_API_PREFIX "?since=0", NULL, NULL, NULL);
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

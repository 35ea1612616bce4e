/*
 * scn_load.c - validation of a scenario file and the scenario object.
 *
 * Everything a scenario can say is checked here, before anything runs, so
 * that QA get every problem at once as "file:line:col: message" with a
 * "did you mean" when a word is close to a known one.  The run (scn_run.c)
 * then interprets the same node tree and may assume it is well formed.
 *
 * The keyword tables below are the language: docs/SCENARIOS.md documents
 * them and docs/scenario.schema.json mirrors them (a unit test checks that
 * every keyword here appears in the schema).
 */
#define _GNU_SOURCE
#include "scn_valid.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_task.h"
#include "hp_time.h"

/* ---- the language's keywords ---------------------------------------- */

const char *const scn_rule_ids[] = {
    "WS-1", "WS-2", "WS-3", "WS-4", "WS-5", "WS-6",
    "Q-1", "Q-2", "Q-3", "Q-4", "Q-5", "Q-6", "Q-7",
    "C-1", "C-2", "C-3", "C-4",
    "CF-1", "CF-2", "CF-3", "CF-4",
    "N-1", "R-1",
    "A-1", "A-2", "A-3", "A-4",
    NULL,
};

const char *const scn_top_keys[] = {"id",      "name",  "description", "rules",
                                    "tags",    "policy", "start",      "network",
                                    "clients", "heal",  "invariants",  "vars",
                                    "steps",   NULL};
const char *const scn_client_keys[] = {"user", "household", "device", "token", "token_ttl",
                                       "latency", NULL};
const char *const scn_step_keys[] = {"wait", "wait_until", "expect", "expect_log",
                                     "mark", "repeat",     "note",   NULL};
const char *const scn_client_actions[] = {
    "connect", "offline",   "online",   "edit",  "delete",  "lock",    "unlock", "sync_now",
    "choose",  "new_token", "crash",    "restart", "latency", "drop",  "link",
    "send_frame", "send_request", NULL};
const char *const scn_server_actions[] = {"restart", "crash", "start", "fail_requests",
                                          "force_conflict", NULL};
const char *const scn_client_asserts[] = {
    "received", "notified", "requests", "closed", "frames",  "log",         "reconnect_delays",
    "connect_attempts", "connection", "online", "applied_revision", "queue", "dead_letter",
    "conflicts", "cache", "cached", "locks", "status", NULL};
const char *const scn_server_asserts[] = {"requests", "log",  "task",        "no_task", "revision",
                                          "lock",     "connections", "state", NULL};
const char *const scn_log_keys[] = {"actor", "level", "message", "pattern", "count",
                                    "at_least", "at_most", "since", "within", NULL};
const char *const scn_edit_fields[] = {"id", "title", "notes", "done", "assignee",
                                       "due_at", "remind_at", NULL};
/* The fields of a task as the server stores it and the app caches it (the
 * edit fields plus the server's own); `task:` also takes `household`. */
const char *const scn_task_fields[] = {"id", "title", "notes", "done", "assignee", "due_at",
                                       "remind_at", "revision", "updated_by", "deleted", NULL};
/* Every log record name the server and the client can emit: the first
 * argument after the level of each hp_log() call in fake_server/srv_*.c and
 * fake_client/cli_*.c (program-only records included: real mode sees
 * them).  docs/LOG_RECORDS.md documents each one; test_scn_load checks
 * that this list, the code and that document name the same records. */
const char *const scn_log_messages[] = {
    /* server */
    "request", "conflict", "idempotent_replay", "token_refused", "fault_armed",
    "fault_applied", "store_error", "ws_open", "ws_refused", "ready", "resync_required",
    "ws_close", "ws_closed", "heartbeat_timeout", "heartbeat_dropped", "lock", "reminder_due",
    "starting", "listening", "stopping", "stopped", "listen_failed", "store_open_failed",
    "idempotency_key_reused",
    "core_failed", "limit_reached", "http_refused", "lws_orphan_response", "lws",
    "commit_stats", "nofile_low", "nofile",
    "admin_listening", "fault_expired", "fault_cleared", "session_created", "session_deleted",
    "session_reset", "session_restarted", "proxy_relay", "ws_protocol_error",
    /* client (names shared with the server are listed once, above) */
    "send", "retry", "sync_failed", "auth_required", "reconnect_scheduled", "queue_full",
    "offline", "online", "offline_long", "conflict_choice", "token_set", "bad_conflict_body",
    "rejected", "wrong_task", "reload_failed", "reloaded", "lock_result", "unlock_result", "lock_failed",
    "ws_ready", "bad_event", "bad_message", "request_timeout", "cache_evicted", "key_mismatch",
    "quarantine_restored", "tampered", "client_started", "client_stopped",
    "client_start_failed", "event_loop_failed", "http_failed", "ws_send_dropped",
    "ws_connect_error", "stdin_unavailable", "send_frame", "fault_drop",
    NULL};
const char *const scn_drop_messages[] = {"HELLO", "READY", "HEARTBEAT", "RESYNC_REQUIRED",
                                         "TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED",
                                         "request", "response", "any", NULL};
const char *const scn_conn_states[] = {"idle", "connecting", "open", "ready", "auth_required",
                                       NULL};
const char *const scn_invariant_names[] = {"edits_kept",    "entity_order",  "conflicts_logged",
                                           "queue_bounded", "cache_bounded", "no_token_in_logs",
                                           NULL};

const char *const sv_token_kinds[] = {"valid", "none", "expired", "bad_signature", NULL};
const char *const sv_reserved_names[] = {"server", "harness", "wait", "wait_until", "expect",
                                             "expect_log", "mark", "repeat", "note", "since",
                                             "within", "timeout", "all", NULL};
const char *const sv_event_types[] = {"TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED", NULL};
const char *const sv_notify_types[] = {"SYNC_FAILED", "QUEUE_FULL", "OFFLINE_LONG", "CONFLICT",
                                           "REJECTED", "AUTH_REQUIRED", "KEY_MISMATCH", NULL};
const char *const sv_frame_types[] = {"HELLO", "READY", "HEARTBEAT", "RESYNC_REQUIRED",
                                          "TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED", NULL};
const char *const sv_http_methods[] = {"GET", "PUT", "DELETE", "POST", "PATCH", "HEAD", NULL};
const char *const sv_levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", NULL};
const char *const sv_quant_keys[] = {"count", "at_least", "at_most", NULL};
const char *const sv_m_received[] = {"event_type", "entity_id", "revision", "payload", NULL};
const char *const sv_m_notified[] = {"type", "entity_id", "fields", "edit_vs_delete",
                                         "choices", NULL};
const char *const sv_m_requests[] = {"method", "path", "status", "from", "idem_key", "body",
                                         "response", NULL};
const char *const sv_m_closed[] = {"code", "by", NULL};
const char *const sv_m_frames[] = {"from", "type", "entity_id", "revision", "lost", NULL};
const char *const sv_queue_keys[] = {"length", "entities", "items", NULL};
const char *const sv_queue_item_keys[] = {"entity_id", "op", "base_revision", "attempts",
                                              "snapshot", "mutation_id", "status", "reason", NULL};
const char *const sv_cache_keys[] = {"entries", "ids", "contains", "missing",
                                         "bytes", "max_bytes", "min_bytes", NULL};
const char *const sv_lock_keys[] = {"id", "holder", "household", "held", NULL};
const char *const sv_conn_keys[] = {"user", "count", NULL};
const char *const sv_fail_keys[] = {"count", "status", "method", "path", "retry_after", NULL};
const char *const sv_drop_keys[] = {"from", "message", "count", NULL};
const char *const sv_choose_keys[] = {"id", "choice", NULL};
const char *const sv_restart_keys[] = {"key", NULL};
const char *const sv_send_frame_keys[] = {"text", "size", NULL};
const char *const sv_send_request_keys[] = {"method", "path", "idem_key", "body", NULL};
const char *const sv_token_keys[] = {"ttl", NULL};
const char *const sv_reconnect_keys[] = {"delays", "tolerance", NULL};
const char *const sv_expect_extra[] = {"since", "within", NULL};
const char *const sv_until_extra[] = {"timeout", NULL};
const char *const sv_network_keys[] = {"latency", NULL};

/* ---- actions -------------------------------------------------------- */

static void v_edit(vctx *v, const scn_node *a)
{
    if (sv_need_map(v, a, "edit"))
        return;
    sv_check_keys(v, a, "task field", scn_edit_fields);
    const scn_node *id = scn_map_get(a, "id");
    if (!id)
        sv_verr(v, a, "edit needs an 'id' (the task to create or change)");
    else
        sv_need_task_id(v, id, "id");
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->keys[i]->str;
        const scn_node *val = a->items[i];
        if (!strcmp(k, "title") || !strcmp(k, "notes"))
            sv_need_str(v, val, k);
        else if (!strcmp(k, "assignee") && !scn_is_null(val))
            sv_need_str(v, val, k);
        else if (!strcmp(k, "done"))
            sv_need_bool(v, val, k, NULL);
        else if (!strcmp(k, "due_at") || !strcmp(k, "remind_at"))
            sv_need_time(v, val, k);
    }
}

static void v_client_action(vctx *v, const scn_node *name, const char *act, const scn_node *arg,
                            const scn_node *at)
{
    int client = scn_client_index(v->s, name->str);
    if (!sv_in_list(act, scn_client_actions)) {
        const char *sug = scn_suggest(act, scn_client_actions);
        if (sug) {
            sv_verr(v, at, "unknown action '%s' for client '%s' (did you mean '%s'?)", act,
                 name->str, sug);
        } else {
            char all[512];
            sv_join(scn_client_actions, all, sizeof all);
            sv_verr(v, at, "unknown action '%s' for client '%s' (expected one of: %s)", act,
                 name->str, all);
        }
        return;
    }
    static const char *const no_arg[] = {"connect", "offline", "online", "sync_now", "crash", NULL};
    static const char *const need_arg[] = {"edit", "delete", "lock", "unlock", "choose",
                                           "latency", "drop", "link", "send_frame",
                                           "send_request", NULL};
    if (sv_in_list(act, no_arg) && arg) {
        sv_verr(v, arg, "'%s' takes no argument: write '%s: %s'", act, name->str, act);
        return;
    }
    if (sv_in_list(act, need_arg) && !arg) {
        sv_verr(v, at, "'%s' needs an argument, e.g. '%s: {%s: ...}'", act, name->str, act);
        return;
    }
    if (!strcmp(act, "edit")) {
        v_edit(v, arg);
    } else if (!strcmp(act, "delete") || !strcmp(act, "lock") || !strcmp(act, "unlock")) {
        sv_need_task_id(v, arg, act);
    } else if (!strcmp(act, "choose")) {
        if (sv_need_map(v, arg, "choose"))
            return;
        sv_check_keys(v, arg, "key of choose", sv_choose_keys);
        const scn_node *id = scn_map_get(arg, "id"), *ch = scn_map_get(arg, "choice");
        if (!id)
            sv_verr(v, arg, "choose needs 'id'");
        else
            sv_need_task_id(v, id, "id");
        static const char *const choices[] = {"merge", "overwrite", NULL};
        if (!ch)
            sv_verr(v, arg, "choose needs 'choice' (merge or overwrite)");
        else
            sv_need_word(v, ch, "choice", choices);
    } else if (!strcmp(act, "new_token") && arg) {
        if (sv_need_map(v, arg, "new_token"))
            return;
        sv_check_keys(v, arg, "key of new_token", sv_token_keys);
        if (scn_map_get(arg, "ttl"))
            sv_need_duration(v, scn_map_get(arg, "ttl"), "ttl", NULL);
    } else if (!strcmp(act, "restart") && arg) {
        if (sv_need_map(v, arg, "restart"))
            return;
        sv_check_keys(v, arg, "key of restart", sv_restart_keys);
        static const char *const keys[] = {"other", "original", NULL};
        if (scn_map_get(arg, "key")) {
            sv_need_word(v, scn_map_get(arg, "key"), "key", keys);
            if (client >= 0)
                v->s->clients[client].needs_file_store = 1;
        }
    } else if (!strcmp(act, "latency")) {
        sv_need_duration(v, arg, "latency", NULL);
    } else if (!strcmp(act, "drop")) {
        if (sv_need_map(v, arg, "drop"))
            return;
        sv_check_keys(v, arg, "key of drop", sv_drop_keys);
        static const char *const froms[] = {"server", "client", NULL};
        const scn_node *from = scn_map_get(arg, "from");
        if (!from)
            sv_verr(v, arg, "drop needs 'from: server' or 'from: client'");
        else
            sv_need_word(v, from, "from", froms);
        if (scn_map_get(arg, "message"))
            sv_need_word(v, scn_map_get(arg, "message"), "message", scn_drop_messages);
        if (scn_map_get(arg, "count"))
            sv_need_int(v, scn_map_get(arg, "count"), "count", 1, 1000000, NULL);
    } else if (!strcmp(act, "link")) {
        static const char *const ud[] = {"up", "down", NULL};
        sv_need_word(v, arg, "link", ud);
    } else if (!strcmp(act, "send_request")) {
        /* A raw request with the client's token (Q-3 probes: a reused
         * Idempotency-Key); its answer goes to `requests`, not the app. */
        if (sv_need_map(v, arg, "send_request"))
            return;
        sv_check_keys(v, arg, "key of send_request", sv_send_request_keys);
        static const char *const methods[] = {"GET", "PUT", "DELETE", "POST", NULL};
        const scn_node *m = scn_map_get(arg, "method"), *pa = scn_map_get(arg, "path");
        if (!m || !pa)
            sv_verr(v, arg, "send_request needs 'method' and 'path'");
        if (m)
            sv_need_word(v, m, "method", methods);
        if (pa && !sv_need_str(v, pa, "path") && pa->str[0] != '/')
            sv_verr(v, pa, "send_request path must start with '/'");
        if (scn_map_get(arg, "idem_key"))
            sv_need_str(v, scn_map_get(arg, "idem_key"), "idem_key");
    } else if (!strcmp(act, "send_frame")) {
        /* A raw text frame for the server's protocol checks: a string, or
         * {text: ...}, or {size: N} (a valid HEARTBEAT padded to N bytes). */
        if (arg->kind == SCN_SCALAR) {
            sv_need_str(v, arg, "send_frame");
            return;
        }
        if (arg->kind != SCN_MAP) {
            sv_type_err(v, arg, "send_frame", "a string (the frame) or a mapping {text: ...} / "
                                           "{size: N}");
            return;
        }
        if (sv_check_keys(v, arg, "key of send_frame", sv_send_frame_keys))
            return;
        const scn_node *t = scn_map_get(arg, "text"), *z = scn_map_get(arg, "size");
        if (!!t == !!z)
            sv_verr(v, arg, "send_frame needs exactly one of 'text' (the frame) or 'size' (bytes "
                         "of a padded HEARTBEAT)");
        else if (t)
            sv_need_str(v, t, "text");
        else
            sv_need_int(v, z, "size", SCN_FRAME_MIN, SCN_FRAME_MAX, NULL);
    }
}

static void v_server_action(vctx *v, const char *act, const scn_node *arg, const scn_node *at)
{
    if (!sv_in_list(act, scn_server_actions)) {
        sv_unknown(v, at, "server action", act, scn_server_actions);
        return;
    }
    if ((!strcmp(act, "restart") || !strcmp(act, "crash") || !strcmp(act, "start")) && arg) {
        sv_verr(v, arg, "'%s' takes no argument: write 'server: %s'", act, act);
        return;
    }
    if ((!strcmp(act, "fail_requests") || !strcmp(act, "force_conflict")) && !arg) {
        sv_verr(v, at, "'%s' needs an argument", act);
        return;
    }
    if (!strcmp(act, "force_conflict")) {
        sv_need_task_id(v, arg, "force_conflict");
    } else if (!strcmp(act, "fail_requests")) {
        if (sv_need_map(v, arg, "fail_requests"))
            return;
        sv_check_keys(v, arg, "key of fail_requests", sv_fail_keys);
        const scn_node *c = scn_map_get(arg, "count"), *st = scn_map_get(arg, "status");
        if (!c)
            sv_verr(v, arg, "fail_requests needs 'count'");
        else
            sv_need_int(v, c, "count", 1, 1000000, NULL);
        if (!st)
            sv_verr(v, arg, "fail_requests needs 'status' (e.g. 503)");
        else
            sv_need_int(v, st, "status", 100, 599, NULL);
        if (scn_map_get(arg, "method"))
            sv_need_word(v, scn_map_get(arg, "method"), "method", sv_http_methods);
        const scn_node *p = scn_map_get(arg, "path");
        if (p && !sv_need_str(v, p, "path") && p->str[0] != '/')
            sv_verr(v, p, "path must start with '/', e.g. /api/v0.2/tasks/t1");
        if (scn_map_get(arg, "retry_after"))
            sv_need_duration(v, scn_map_get(arg, "retry_after"), "retry_after", NULL);
    }
}

/* An actor's value: one action word, a one-key mapping, or a list of them. */
static void v_actions(vctx *v, const scn_node *name, const scn_node *val, int is_server)
{
    if (val->kind == SCN_SEQ) {
        if (val->n == 0)
            sv_verr(v, val, "empty list of actions");
        for (size_t i = 0; i < val->n; i++) {
            if (val->items[i]->kind == SCN_SEQ) {
                sv_type_err(v, val->items[i], "an action", "a word or a one-key mapping");
                continue;
            }
            v_actions(v, name, val->items[i], is_server);
        }
        return;
    }
    if (val->kind == SCN_SCALAR) {
        if (scn_is_null(val)) {
            sv_verr(v, val, "missing action for '%s'", name->str);
            return;
        }
        if (is_server)
            v_server_action(v, val->str, NULL, val);
        else
            v_client_action(v, name, val->str, NULL, val);
        return;
    }
    if (val->n != 1) {
        sv_verr(v, val, "one action per mapping: write a list, e.g. '%s: [offline, {edit: ...}]'",
             name->str);
        return;
    }
    const scn_node *arg = scn_is_null(val->items[0]) ? NULL : val->items[0];
    if (is_server)
        v_server_action(v, val->keys[0]->str, arg, val->keys[0]);
    else
        v_client_action(v, name, val->keys[0]->str, arg, val->keys[0]);
}

/* ---- steps ------------------------------------------------------------ */

static void v_step(vctx *v, const scn_node *st)
{
    if (st->kind != SCN_MAP) {
        if (st->kind == SCN_SCALAR && sv_in_list(st->str, scn_client_actions))
            sv_verr(v, st, "'%s' needs an actor: write e.g. '- alice: %s'", st->str, st->str);
        else
            sv_type_err(v, st, "a step", "a mapping such as 'alice: connect' or 'wait: 5s'");
        return;
    }
    if (st->n == 0) {
        sv_verr(v, st, "empty step");
        return;
    }
    const char *alone = NULL;
    int actors = 0, has_repeat = 0;
    const scn_node *rep = scn_map_get(st, "repeat");
    v->in_repeat = rep != NULL;
    for (size_t i = 0; i < st->n; i++) {
        const scn_node *k = st->keys[i];
        const scn_node *x = st->items[i];
        const char *key = k->str;
        if (!strcmp(key, "note")) {
            sv_need_str(v, x, "note");
        } else if (!strcmp(key, "repeat")) {
            has_repeat = 1;
            sv_need_int(v, x, "repeat", 1, 100000, NULL);
        } else if (!strcmp(key, "wait") || !strcmp(key, "wait_until") ||
                   !strcmp(key, "expect") || !strcmp(key, "expect_log") ||
                   !strcmp(key, "mark")) {
            if (alone) {
                sv_verr(v, k, "a step does one thing: '%s' and '%s' go in separate steps", alone,
                     key);
                continue;
            }
            alone = key;
            if (!strcmp(key, "wait"))
                sv_need_duration(v, x, "wait", NULL);
            else if (!strcmp(key, "wait_until"))
                v_expect(v, x, "wait_until", sv_until_extra);
            else if (!strcmp(key, "expect"))
                v_expect(v, x, "expect", sv_expect_extra);
            else if (!strcmp(key, "expect_log"))
                v_log(v, x, 1);
            else if (!strcmp(key, "mark")) {
                if (!sv_need_str(v, x, "mark")) {
                    if (sv_in_list(x->str, v->marks)) {
                        sv_verr(v, x, "mark '%s' is already defined", x->str);
                    } else {
                        const char **m = realloc(v->marks, (v->nmarks + 2) * sizeof *m);
                        if (!m)
                            abort();
                        v->marks = m;
                        v->marks[v->nmarks++] = x->str;
                        v->marks[v->nmarks] = NULL;
                    }
                }
            }
        } else if (!strcmp(key, "server")) {
            actors++;
            v_actions(v, k, x, 1);
        } else if (scn_client_index(v->s, key) >= 0) {
            actors++;
            v_actions(v, k, x, 0);
        } else if (sv_in_list(key, scn_client_actions) || sv_in_list(key, scn_server_actions)) {
            sv_verr(v, k, "'%s' needs an actor: write e.g. '- alice: {%s: ...}' or '- server: ...'",
                 key, key);
        } else {
            const char **c = calloc(v->s->nclients + 10, sizeof *c);
            if (!c)
                abort();
            size_t n = 0;
            for (size_t j = 0; scn_step_keys[j]; j++)
                c[n++] = scn_step_keys[j];
            c[n++] = "server";
            for (size_t j = 0; j < v->s->nclients; j++)
                c[n++] = v->s->clients[j].name;
            sv_unknown_client(v, k, "client or step", key, c);
            free(c);
        }
    }
    if (alone && (actors || has_repeat))
        sv_verr(v, st, "a step does one thing: '%s' cannot be combined with actions", alone);
    if (has_repeat && !actors)
        sv_verr(v, rep, "'repeat' repeats the actions of its step: add e.g. 'alice: {edit: ...}'");
    v->in_repeat = 0;
}

/* ---- top level -------------------------------------------------------- */

static void v_id(vctx *v, const scn_node *n)
{
    if (sv_need_str(v, n, "id"))
        return;
    /* "area/name": exactly one '/', both parts non-empty, [a-z0-9_-]
     * (ids name report files and are matched by --filter globs). */
    const char *s = n->str;
    int slash = 0, ok = *s != '/' && *s;
    for (const char *p = s; *p; p++) {
        if (*p == '/') {
            slash++;
            if (p[1] == '\0')
                ok = 0;
        } else if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
                     *p == '-')) {
            ok = 0;
        }
    }
    if (!ok || slash != 1)
        sv_verr(v, n, "id '%s' must look like 'area/name' (one '/'; lower case letters, "
                   "digits, _ -)", s);
}

static void v_clients(vctx *v, const scn_node *cl)
{
    if (sv_need_map(v, cl, "clients"))
        return;
    if (cl->n == 0)
        sv_verr(v, cl, "clients: declare at least one client, e.g. 'alice: {user: alice, household: home}'");
    v->s->clients = calloc(cl->n ? cl->n : 1, sizeof *v->s->clients);
    if (!v->s->clients)
        abort();
    for (size_t i = 0; i < cl->n; i++) {
        const scn_node *k = cl->keys[i];
        const scn_node *x = cl->items[i];
        int ok = k->str[0] != '\0' && strlen(k->str) <= 32;
        for (const char *p = k->str; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                ok = 0;
        if (!ok)
            sv_verr(v, k, "client name '%s' must be 1-32 of letters, digits, _ -", k->str);
        else if (sv_in_list(k->str, sv_reserved_names) || sv_in_list(k->str, scn_step_keys))
            sv_verr(v, k, "'%s' cannot be a client name (it is a keyword)", k->str);
        scn_client_spec *c = &v->s->clients[v->s->nclients++];
        c->name = strdup(k->str);
        c->token = SCN_TOKEN_VALID;
        c->token_ttl_ms = 30LL * 86400000;
        c->latency_ms = -1;
        const char *user = k->str, *hh = "home", *dev = k->str;
        if (!scn_is_null(x) && !sv_need_map(v, x, "a client")) {
            sv_check_keys(v, x, "client key", scn_client_keys);
            const scn_node *u = scn_map_get(x, "user"), *h = scn_map_get(x, "household"),
                           *d = scn_map_get(x, "device"), *t = scn_map_get(x, "token");
            if (u && !sv_need_str(v, u, "user"))
                user = u->str;
            if (h && !sv_need_str(v, h, "household"))
                hh = h->str;
            if (d && !sv_need_str(v, d, "device"))
                dev = d->str;
            if (t && !sv_need_word(v, t, "token", sv_token_kinds)) {
                for (int j = 0; sv_token_kinds[j]; j++)
                    if (!strcmp(t->str, sv_token_kinds[j]))
                        c->token = (scn_token_kind)j;
            }
            if (scn_map_get(x, "token_ttl"))
                sv_need_duration(v, scn_map_get(x, "token_ttl"), "token_ttl", &c->token_ttl_ms);
            if (scn_map_get(x, "latency"))
                sv_need_duration(v, scn_map_get(x, "latency"), "latency", &c->latency_ms);
        }
        c->user = strdup(user);
        c->household = strdup(hh);
        c->device = strdup(dev);
        if (!c->name || !c->user || !c->household || !c->device)
            abort();
    }
}

int scn_client_index(const scn_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->nclients; i++)
        if (!strcmp(s->clients[i].name, name))
            return (int)i;
    return -1;
}

/* The rule ids as ranges ("WS-1..WS-6, Q-1..Q-7, ..., N-1, R-1"), built from
 * scn_rule_ids so the message cannot drift from the table.  Relies on the
 * table listing each family's numbers consecutively from 1. */
static void rule_ranges(char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; scn_rule_ids[i] && o + 1 < len;) {
        const char *first = scn_rule_ids[i];
        const char *dash = strchr(first, '-');
        size_t plen = dash ? (size_t)(dash - first) + 1 : strlen(first);
        size_t j = i;
        while (scn_rule_ids[j + 1] && !strncmp(scn_rule_ids[j + 1], first, plen))
            j++;
        if (j == i)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", first);
        else
            o += (size_t)snprintf(buf + o, len - o, "%s%s..%s", i ? ", " : "", first,
                                  scn_rule_ids[j]);
        i = j + 1;
    }
}

static json_t *str_array(vctx *v, const scn_node *n, const char *what, int rules)
{
    json_t *a = json_array();
    if (!n)
        return a;
    if (n->kind != SCN_SEQ) {
        sv_type_err(v, n, what, "a list, e.g. [Q-1, Q-2]");
        return a;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (sv_need_str(v, n->items[i], what))
            continue;
        const char *w = n->items[i]->str;
        if (rules && !sv_in_list(w, scn_rule_ids)) {
            char known[256];
            rule_ranges(known, sizeof known);
            const char *sug = scn_suggest_rule(w, scn_rule_ids);
            if (sug)
                sv_verr(v, n->items[i], "unknown rule '%s' (did you mean '%s'? known: %s)", w, sug,
                     known);
            else
                sv_verr(v, n->items[i], "unknown rule '%s' (known: %s)", w, known);
            continue;
        }
        json_array_append_new(a, json_string(w));
    }
    return a;
}

void scn_free(scn_scenario *s)
{
    if (!s)
        return;
    free(s->file);
    free(s->id);
    free(s->name);
    free(s->description);
    json_decref(s->rules);
    json_decref(s->tags);
    json_decref(s->policy_json);
    for (size_t i = 0; i < s->nclients; i++) {
        free(s->clients[i].name);
        free(s->clients[i].user);
        free(s->clients[i].household);
        free(s->clients[i].device);
    }
    free(s->clients);
    scn_node_free(s->root);
    free(s);
}

/* Validate a parsed tree.  Takes ownership of root. */
static int scn_validate(const char *file, scn_node *root, scn_scenario **out, scn_diags *d)
{
    scn_scenario *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->file = strdup(file);
    s->root = root;
    s->heal = 1;
    s->latency_ms = 20;
    hp_policy_defaults(&s->policy);
    s->policy_json = json_object();
    vctx v = {file, d, s, 0, NULL, 0, 0};
    size_t first_diag = d ? d->n : 0;
    v.marks = calloc(1, sizeof *v.marks);
    if (!v.marks)
        abort();

    if (root->kind != SCN_MAP) {
        sv_type_err(&v, root, "a scenario", "a mapping with id, name, rules, clients, steps");
        goto done;
    }
    sv_check_keys(&v, root, "key", scn_top_keys);
    static const char *const required[] = {"id", "name", "rules", "clients", "steps", NULL};
    for (size_t i = 0; required[i]; i++)
        if (!scn_map_get(root, required[i]))
            sv_verr(&v, root, "missing '%s'", required[i]);

    const scn_node *n;
    if ((n = scn_map_get(root, "id"))) {
        v_id(&v, n);
        s->id = strdup(scn_str(n) ? scn_str(n) : "");
    }
    if ((n = scn_map_get(root, "name")) && !sv_need_str(&v, n, "name"))
        s->name = strdup(n->str);
    if ((n = scn_map_get(root, "description")) && !sv_need_str(&v, n, "description"))
        s->description = strdup(n->str);
    s->rules = str_array(&v, scn_map_get(root, "rules"), "rules", 1);
    if ((n = scn_map_get(root, "rules")) && n->kind == SCN_SEQ && n->n == 0)
        sv_verr(&v, n, "rules: name at least one rule this scenario covers");
    s->tags = str_array(&v, scn_map_get(root, "tags"), "tags", 0);
    if ((n = scn_map_get(root, "policy")) && !scn_is_null(n) && !sv_need_map(&v, n, "policy")) {
        for (size_t i = 0; i < n->n; i++) {
            const char *k = n->keys[i]->str;
            if (!sv_in_list(k, hp_policy_keys)) {
                sv_unknown(&v, n->keys[i], "policy key", k, hp_policy_keys);
                continue;
            }
            json_t *j = scn_node_json(n->items[i]);
            char err[256] = "";
            if (hp_policy_set(&s->policy, k, j, err, sizeof err))
                sv_verr(&v, n->items[i], "policy %s", err[0] ? err : "bad value"); /* err names the key */
            json_object_set_new(s->policy_json, k, j);
        }
    }
    s->start_ms = 1795597200000LL; /* 2026-11-25T09:00:00Z */
    if ((n = scn_map_get(root, "start")) && !sv_need_str(&v, n, "start")) {
        if (hp_time_parse(n->str, &s->start_ms))
            sv_verr(&v, n, "start '%s' must be an RFC 3339 time with offset, e.g. "
                        "2026-11-25T09:00:00Z", n->str);
    }
    if ((n = scn_map_get(root, "network")) && !sv_need_map(&v, n, "network")) {
        sv_check_keys(&v, n, "network key", sv_network_keys);
        if (scn_map_get(n, "latency"))
            sv_need_duration(&v, scn_map_get(n, "latency"), "latency", &s->latency_ms);
    }
    if ((n = scn_map_get(root, "heal")))
        sv_need_bool(&v, n, "heal", &s->heal);
    if ((n = scn_map_get(root, "invariants")) && !sv_need_map(&v, n, "invariants")) {
        for (size_t i = 0; i < n->n; i++) {
            const char *k = n->keys[i]->str;
            int on = 1;
            if (!sv_in_list(k, scn_invariant_names)) {
                sv_unknown(&v, n->keys[i], "invariant", k, scn_invariant_names);
                continue;
            }
            if (sv_need_bool(&v, n->items[i], k, &on))
                continue;
            for (int b = 0; scn_invariant_names[b]; b++)
                if (!strcmp(k, scn_invariant_names[b]) && !on)
                    s->invariants_off |= 1u << b;
        }
    }
    if ((n = scn_map_get(root, "clients")))
        v_clients(&v, n);
    if ((n = scn_map_get(root, "steps"))) {
        if (n->kind != SCN_SEQ) {
            sv_type_err(&v, n, "steps", "a list of steps");
        } else {
            if (n->n == 0)
                sv_verr(&v, n, "steps: a scenario needs at least one step");
            s->steps = n;
            for (size_t i = 0; i < n->n; i++)
                v_step(&v, n->items[i]);
        }
    }
done:
    free(v.marks);
    scn_diags_sort_unique(d, first_diag);
    if (v.errors) {
        scn_free(s);
        return -1;
    }
    if (!s->description)
        s->description = strdup("");
    *out = s;
    return 0;
}

int scn_load_string(const char *file, const char *text, size_t len, scn_scenario **out,
                    scn_diags *diags)
{
    *out = NULL;
    scn_node *root = NULL;
    if (scn_yaml_parse(file, text, len, &root, diags))
        return -1;
    if (scn_expand(file, &root, diags)) {
        scn_node_free(root);
        return -1;
    }
    return scn_validate(file, root, out, diags);
}

int scn_load_file(const char *path, scn_scenario **out, scn_diags *diags)
{
    *out = NULL;
    scn_node *root = NULL;
    if (scn_yaml_load_file(path, &root, diags))
        return -1;
    if (scn_expand(path, &root, diags)) {
        scn_node_free(root);
        return -1;
    }
    return scn_validate(path, root, out, diags);
}

const char *scn_id(const scn_scenario *s) { return s->id; }
const char *scn_name(const scn_scenario *s) { return s->name; }
const char *scn_file(const scn_scenario *s) { return s->file; }
json_t *scn_rules(const scn_scenario *s) { return s->rules; }
json_t *scn_tags(const scn_scenario *s) { return s->tags; }

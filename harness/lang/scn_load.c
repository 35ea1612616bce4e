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
#include "scn_internal.h"

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
    "session_reset", "session_restarted",
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

static const char *const token_kinds[] = {"valid", "none", "expired", "bad_signature", NULL};
static const char *const reserved_names[] = {"server", "harness", "wait", "wait_until", "expect",
                                             "expect_log", "mark", "repeat", "note", "since",
                                             "within", "timeout", "all", NULL};
static const char *const event_types[] = {"TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED", NULL};
static const char *const notify_types[] = {"SYNC_FAILED", "QUEUE_FULL", "OFFLINE_LONG", "CONFLICT",
                                           "REJECTED", "AUTH_REQUIRED", "KEY_MISMATCH", NULL};
static const char *const frame_types[] = {"HELLO", "READY", "HEARTBEAT", "RESYNC_REQUIRED",
                                          "TASK_UPDATED", "REMINDER_DUE", "LOCK_REFRESHED", NULL};
static const char *const http_methods[] = {"GET", "PUT", "DELETE", "POST", "PATCH", "HEAD", NULL};
static const char *const levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", NULL};
static const char *const quant_keys[] = {"count", "at_least", "at_most", NULL};
static const char *const m_received[] = {"event_type", "entity_id", "revision", "payload", NULL};
static const char *const m_notified[] = {"type", "entity_id", "fields", "edit_vs_delete",
                                         "choices", NULL};
static const char *const m_requests[] = {"method", "path", "status", "from", "idem_key", "body",
                                         "response", NULL};
static const char *const m_closed[] = {"code", "by", NULL};
static const char *const m_frames[] = {"from", "type", "entity_id", "revision", "lost", NULL};
static const char *const queue_keys[] = {"length", "entities", "items", NULL};
static const char *const queue_item_keys[] = {"entity_id", "op", "base_revision", "attempts",
                                              "snapshot", "mutation_id", "status", "reason", NULL};
static const char *const cache_keys[] = {"entries", "ids", "contains", "missing",
                                         "bytes", "max_bytes", "min_bytes", NULL};
static const char *const lock_keys[] = {"id", "holder", "household", "held", NULL};
static const char *const conn_keys[] = {"user", "count", NULL};
static const char *const fail_keys[] = {"count", "status", "method", "path", "retry_after", NULL};
static const char *const drop_keys[] = {"from", "message", "count", NULL};
static const char *const choose_keys[] = {"id", "choice", NULL};
static const char *const restart_keys[] = {"key", NULL};
static const char *const send_frame_keys[] = {"text", "size", NULL};
static const char *const send_request_keys[] = {"method", "path", "idem_key", "body", NULL};
static const char *const token_keys[] = {"ttl", NULL};
static const char *const reconnect_keys[] = {"delays", "tolerance", NULL};
static const char *const expect_extra[] = {"since", "within", NULL};
static const char *const until_extra[] = {"timeout", NULL};
static const char *const network_keys[] = {"latency", NULL};

/* ---- validation context ----------------------------------------------- */

typedef struct vctx {
    const char *file;
    scn_diags *d;
    scn_scenario *s;
    int errors;
    const char **marks;     /* marks defined by earlier steps */
    size_t nmarks;
    int in_repeat;          /* "{i}" allowed in ids */
} vctx;

static void verr(vctx *v, const scn_node *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void verr(vctx *v, const scn_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = scn_vasprintf(fmt, ap);
    va_end(ap);
    int line, col;
    const char *f = scn_node_where(at, v->file, &line, &col);
    scn_diags_add(v->d, f, line, col, "%s", msg);
    free(msg);
    v->errors++;
}

static int in_list(const char *w, const char *const *list)
{
    for (size_t i = 0; w && list[i]; i++)
        if (!strcmp(w, list[i]))
            return 1;
    return 0;
}

/* "a, b, c" into buf. */
static void join(const char *const *list, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", list[i]);
}

/* Reports an unknown word with a suggestion or the list of known ones. */
static void unknown(vctx *v, const scn_node *at, const char *what, const char *word,
                    const char *const *cands)
{
    const char *sug = scn_suggest(word, cands);
    if (sug) {
        verr(v, at, "unknown %s '%s' (did you mean '%s'?)", what, word, sug);
    } else {
        char all[1024];
        join(cands, all, sizeof all);
        verr(v, at, "unknown %s '%s' (expected one of: %s)", what, word, all);
    }
}

/* A `since:` that names no earlier mark. */
static void unknown_mark(vctx *v, const scn_node *x)
{
    if (v->nmarks == 0)
        verr(v, x, "unknown mark '%s' (define it first with a step '- mark: %s')", x->str,
             x->str);
    else
        unknown(v, x, "mark", x->str, v->marks);
}

static void type_err(vctx *v, const scn_node *n, const char *what, const char *expected)
{
    char got[128];
    scn_node_describe(n, got, sizeof got);
    verr(v, n, "%s must be %s, got %s", what, expected, got);
}

/* Checks that every key of map m is in allowed; returns 0 when all are. */
static int check_keys(vctx *v, const scn_node *m, const char *what, const char *const *allowed)
{
    int bad = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!in_list(m->keys[i]->str, allowed)) {
            unknown(v, m->keys[i], what, m->keys[i]->str, allowed);
            bad = 1;
        }
    return bad ? -1 : 0;
}

static int need_map(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_MAP) {
        type_err(v, n, what, "a mapping");
        return -1;
    }
    return 0;
}

static int need_str(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_SCALAR || scn_is_null(n)) {
        type_err(v, n, what, "a string");
        return -1;
    }
    return 0;
}

static int need_int(vctx *v, const scn_node *n, const char *what, int64_t min, int64_t max,
                    int64_t *out)
{
    int64_t x;
    if (scn_get_int(n, &x) || x < min || x > max) {
        char exp[96];
        if (max == INT64_MAX)
            snprintf(exp, sizeof exp, "an integer >= %lld", (long long)min);
        else
            snprintf(exp, sizeof exp, "an integer from %lld to %lld", (long long)min,
                     (long long)max);
        type_err(v, n, what, exp);
        return -1;
    }
    if (out)
        *out = x;
    return 0;
}

static int need_bool(vctx *v, const scn_node *n, const char *what, int *out)
{
    int b;
    if (scn_get_bool(n, &b)) {
        type_err(v, n, what, "true or false");
        return -1;
    }
    if (out)
        *out = b;
    return 0;
}

static int need_duration(vctx *v, const scn_node *n, const char *what, int64_t *out)
{
    int64_t ms;
    if (!n || n->kind != SCN_SCALAR) {
        type_err(v, n, what, "a duration such as 30s");
        return -1;
    }
    if (scn_duration(n, &ms)) {
        verr(v, n, "bad duration '%s' for %s (use e.g. 250ms, 30s, 31m, 2h, 7d, 1m30s)", n->str,
             what);
        return -1;
    }
    if (out)
        *out = ms;
    return 0;
}

static int need_word(vctx *v, const scn_node *n, const char *what, const char *const *allowed)
{
    if (need_str(v, n, what))
        return -1;
    if (!in_list(n->str, allowed)) {
        unknown(v, n, what, n->str, allowed);
        return -1;
    }
    return 0;
}

/* A task id, possibly with "{i}" inside a repeat step. */
static int need_task_id(vctx *v, const scn_node *n, const char *what)
{
    if (need_str(v, n, what))
        return -1;
    const char *id = n->str;
    char buf[128];
    if (v->in_repeat && strstr(id, "{i}")) {
        json_t *j = scn_node_json_i(n, 1);
        snprintf(buf, sizeof buf, "%s", json_is_string(j) ? json_string_value(j) : "");
        json_decref(j);
        id = buf;
    }
    if (!hp_task_id_valid(id)) {
        verr(v, n, "%s '%s' is not a valid task id (1-64 of A-Z a-z 0-9 _ -)", what, n->str);
        return -1;
    }
    return 0;
}

static int need_task_ids(vctx *v, const scn_node *n, const char *what)
{
    if (n && n->kind == SCN_SEQ) {
        int rc = 0;
        for (size_t i = 0; i < n->n; i++)
            rc |= need_task_id(v, n->items[i], what);
        return rc;
    }
    return need_task_id(v, n, what);
}

/* "alice, bob" (the declared clients, in order) into buf; "none" when
 * the scenario declares none. */
static void client_names(const vctx *v, char *buf, size_t len)
{
    size_t o = 0;
    snprintf(buf, len, "none");
    for (size_t i = 0; i < v->s->nclients && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", v->s->clients[i].name);
}

/* An unknown client name: the closest declared one if any, and always
 * the declared clients (the usual mistake is a client not declared at
 * all, which no suggestion fixes). */
static void unknown_client(vctx *v, const scn_node *at, const char *what, const char *word,
                           const char *const *cands)
{
    char names[512];
    client_names(v, names, sizeof names);
    const char *sug = scn_suggest(word, cands);
    if (sug)
        verr(v, at, "unknown %s '%s' (did you mean '%s'? declared clients: %s)", what, word, sug,
             names);
    else
        verr(v, at, "unknown %s '%s' (declared clients: %s; declare it under 'clients:')", what,
             word, names);
}

static int need_client(vctx *v, const scn_node *n, const char *what)
{
    if (need_str(v, n, what))
        return -1;
    if (scn_client_index(v->s, n->str) < 0) {
        const char **names = calloc(v->s->nclients + 1, sizeof *names);
        if (!names)
            abort();
        for (size_t i = 0; i < v->s->nclients; i++)
            names[i] = v->s->clients[i].name;
        unknown_client(v, n, "client", n->str, names);
        free(names);
        return -1;
    }
    return 0;
}

static int need_time(vctx *v, const scn_node *n, const char *what)
{
    int64_t ms;
    if (scn_is_null(n))
        return 0;
    if (need_str(v, n, what))
        return -1;
    if (hp_time_parse(n->str, &ms)) {
        verr(v, n, "%s '%s' must be an RFC 3339 time with offset, e.g. "
                   "2026-11-25T10:00:00+03:00", what, n->str);
        return -1;
    }
    return 0;
}

static int need_str_list(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_SEQ) {
        type_err(v, n, what, "a list");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->n; i++)
        rc |= need_str(v, n->items[i], what);
    return rc;
}

/* ---- actions -------------------------------------------------------- */

static void v_edit(vctx *v, const scn_node *a)
{
    if (need_map(v, a, "edit"))
        return;
    check_keys(v, a, "task field", scn_edit_fields);
    const scn_node *id = scn_map_get(a, "id");
    if (!id)
        verr(v, a, "edit needs an 'id' (the task to create or change)");
    else
        need_task_id(v, id, "id");
    for (size_t i = 0; i < a->n; i++) {
        const char *k = a->keys[i]->str;
        const scn_node *val = a->items[i];
        if (!strcmp(k, "title") || !strcmp(k, "notes"))
            need_str(v, val, k);
        else if (!strcmp(k, "assignee") && !scn_is_null(val))
            need_str(v, val, k);
        else if (!strcmp(k, "done"))
            need_bool(v, val, k, NULL);
        else if (!strcmp(k, "due_at") || !strcmp(k, "remind_at"))
            need_time(v, val, k);
    }
}

static void v_client_action(vctx *v, const scn_node *name, const char *act, const scn_node *arg,
                            const scn_node *at)
{
    int client = scn_client_index(v->s, name->str);
    if (!in_list(act, scn_client_actions)) {
        const char *sug = scn_suggest(act, scn_client_actions);
        if (sug) {
            verr(v, at, "unknown action '%s' for client '%s' (did you mean '%s'?)", act,
                 name->str, sug);
        } else {
            char all[512];
            join(scn_client_actions, all, sizeof all);
            verr(v, at, "unknown action '%s' for client '%s' (expected one of: %s)", act,
                 name->str, all);
        }
        return;
    }
    static const char *const no_arg[] = {"connect", "offline", "online", "sync_now", "crash", NULL};
    static const char *const need_arg[] = {"edit", "delete", "lock", "unlock", "choose",
                                           "latency", "drop", "link", "send_frame",
                                           "send_request", NULL};
    if (in_list(act, no_arg) && arg) {
        verr(v, arg, "'%s' takes no argument: write '%s: %s'", act, name->str, act);
        return;
    }
    if (in_list(act, need_arg) && !arg) {
        verr(v, at, "'%s' needs an argument, e.g. '%s: {%s: ...}'", act, name->str, act);
        return;
    }
    if (!strcmp(act, "edit")) {
        v_edit(v, arg);
    } else if (!strcmp(act, "delete") || !strcmp(act, "lock") || !strcmp(act, "unlock")) {
        need_task_id(v, arg, act);
    } else if (!strcmp(act, "choose")) {
        if (need_map(v, arg, "choose"))
            return;
        check_keys(v, arg, "key of choose", choose_keys);
        const scn_node *id = scn_map_get(arg, "id"), *ch = scn_map_get(arg, "choice");
        if (!id)
            verr(v, arg, "choose needs 'id'");
        else
            need_task_id(v, id, "id");
        static const char *const choices[] = {"merge", "overwrite", NULL};
        if (!ch)
            verr(v, arg, "choose needs 'choice' (merge or overwrite)");
        else
            need_word(v, ch, "choice", choices);
    } else if (!strcmp(act, "new_token") && arg) {
        if (need_map(v, arg, "new_token"))
            return;
        check_keys(v, arg, "key of new_token", token_keys);
        if (scn_map_get(arg, "ttl"))
            need_duration(v, scn_map_get(arg, "ttl"), "ttl", NULL);
    } else if (!strcmp(act, "restart") && arg) {
        if (need_map(v, arg, "restart"))
            return;
        check_keys(v, arg, "key of restart", restart_keys);
        static const char *const keys[] = {"other", "original", NULL};
        if (scn_map_get(arg, "key")) {
            need_word(v, scn_map_get(arg, "key"), "key", keys);
            if (client >= 0)
                v->s->clients[client].needs_file_store = 1;
        }
    } else if (!strcmp(act, "latency")) {
        need_duration(v, arg, "latency", NULL);
    } else if (!strcmp(act, "drop")) {
        if (need_map(v, arg, "drop"))
            return;
        check_keys(v, arg, "key of drop", drop_keys);
        static const char *const froms[] = {"server", "client", NULL};
        const scn_node *from = scn_map_get(arg, "from");
        if (!from)
            verr(v, arg, "drop needs 'from: server' or 'from: client'");
        else
            need_word(v, from, "from", froms);
        if (scn_map_get(arg, "message"))
            need_word(v, scn_map_get(arg, "message"), "message", scn_drop_messages);
        if (scn_map_get(arg, "count"))
            need_int(v, scn_map_get(arg, "count"), "count", 1, 1000000, NULL);
    } else if (!strcmp(act, "link")) {
        static const char *const ud[] = {"up", "down", NULL};
        need_word(v, arg, "link", ud);
    } else if (!strcmp(act, "send_request")) {
        /* A raw request with the client's token (Q-3 probes: a reused
         * Idempotency-Key); its answer goes to `requests`, not the app. */
        if (need_map(v, arg, "send_request"))
            return;
        check_keys(v, arg, "key of send_request", send_request_keys);
        static const char *const methods[] = {"GET", "PUT", "DELETE", "POST", NULL};
        const scn_node *m = scn_map_get(arg, "method"), *pa = scn_map_get(arg, "path");
        if (!m || !pa)
            verr(v, arg, "send_request needs 'method' and 'path'");
        if (m)
            need_word(v, m, "method", methods);
        if (pa && !need_str(v, pa, "path") && pa->str[0] != '/')
            verr(v, pa, "send_request path must start with '/'");
        if (scn_map_get(arg, "idem_key"))
            need_str(v, scn_map_get(arg, "idem_key"), "idem_key");
    } else if (!strcmp(act, "send_frame")) {
        /* A raw text frame for the server's protocol checks: a string, or
         * {text: ...}, or {size: N} (a valid HEARTBEAT padded to N bytes). */
        if (arg->kind == SCN_SCALAR) {
            need_str(v, arg, "send_frame");
            return;
        }
        if (arg->kind != SCN_MAP) {
            type_err(v, arg, "send_frame", "a string (the frame) or a mapping {text: ...} / "
                                           "{size: N}");
            return;
        }
        if (check_keys(v, arg, "key of send_frame", send_frame_keys))
            return;
        const scn_node *t = scn_map_get(arg, "text"), *z = scn_map_get(arg, "size");
        if (!!t == !!z)
            verr(v, arg, "send_frame needs exactly one of 'text' (the frame) or 'size' (bytes "
                         "of a padded HEARTBEAT)");
        else if (t)
            need_str(v, t, "text");
        else
            need_int(v, z, "size", SCN_FRAME_MIN, SCN_FRAME_MAX, NULL);
    }
}

static void v_server_action(vctx *v, const char *act, const scn_node *arg, const scn_node *at)
{
    if (!in_list(act, scn_server_actions)) {
        unknown(v, at, "server action", act, scn_server_actions);
        return;
    }
    if ((!strcmp(act, "restart") || !strcmp(act, "crash") || !strcmp(act, "start")) && arg) {
        verr(v, arg, "'%s' takes no argument: write 'server: %s'", act, act);
        return;
    }
    if ((!strcmp(act, "fail_requests") || !strcmp(act, "force_conflict")) && !arg) {
        verr(v, at, "'%s' needs an argument", act);
        return;
    }
    if (!strcmp(act, "force_conflict")) {
        need_task_id(v, arg, "force_conflict");
    } else if (!strcmp(act, "fail_requests")) {
        if (need_map(v, arg, "fail_requests"))
            return;
        check_keys(v, arg, "key of fail_requests", fail_keys);
        const scn_node *c = scn_map_get(arg, "count"), *st = scn_map_get(arg, "status");
        if (!c)
            verr(v, arg, "fail_requests needs 'count'");
        else
            need_int(v, c, "count", 1, 1000000, NULL);
        if (!st)
            verr(v, arg, "fail_requests needs 'status' (e.g. 503)");
        else
            need_int(v, st, "status", 100, 599, NULL);
        if (scn_map_get(arg, "method"))
            need_word(v, scn_map_get(arg, "method"), "method", http_methods);
        const scn_node *p = scn_map_get(arg, "path");
        if (p && !need_str(v, p, "path") && p->str[0] != '/')
            verr(v, p, "path must start with '/', e.g. /api/v0.2/tasks/t1");
        if (scn_map_get(arg, "retry_after"))
            need_duration(v, scn_map_get(arg, "retry_after"), "retry_after", NULL);
    }
}

/* An actor's value: one action word, a one-key mapping, or a list of them. */
static void v_actions(vctx *v, const scn_node *name, const scn_node *val, int is_server)
{
    if (val->kind == SCN_SEQ) {
        if (val->n == 0)
            verr(v, val, "empty list of actions");
        for (size_t i = 0; i < val->n; i++) {
            if (val->items[i]->kind == SCN_SEQ) {
                type_err(v, val->items[i], "an action", "a word or a one-key mapping");
                continue;
            }
            v_actions(v, name, val->items[i], is_server);
        }
        return;
    }
    if (val->kind == SCN_SCALAR) {
        if (scn_is_null(val)) {
            verr(v, val, "missing action for '%s'", name->str);
            return;
        }
        if (is_server)
            v_server_action(v, val->str, NULL, val);
        else
            v_client_action(v, name, val->str, NULL, val);
        return;
    }
    if (val->n != 1) {
        verr(v, val, "one action per mapping: write a list, e.g. '%s: [offline, {edit: ...}]'",
             name->str);
        return;
    }
    const scn_node *arg = scn_is_null(val->items[0]) ? NULL : val->items[0];
    if (is_server)
        v_server_action(v, val->keys[0]->str, arg, val->keys[0]);
    else
        v_client_action(v, name, val->keys[0]->str, arg, val->keys[0]);
}

/* ---- expectations --------------------------------------------------- */

static int v_quantifier(vctx *v, const scn_node *m)
{
    int n = 0;
    for (size_t i = 0; quant_keys[i]; i++) {
        const scn_node *q = scn_map_get(m, quant_keys[i]);
        if (q) {
            n++;
            need_int(v, q, quant_keys[i], 0, INT64_MAX, NULL);
        }
    }
    if (scn_map_get(m, "count") && n > 1)
        verr(v, scn_map_key(m, "count"), "use 'count' alone or 'at_least'/'at_most'");
    return n;
}

/* A word form of a history entry ("TASK_UPDATED t1", "PUT /path 409"). */
static void v_history_word(vctx *v, const char *key, const scn_node *n)
{
    if (need_str(v, n, key))
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", n->str);
    char *sp = strchr(buf, ' ');
    if (sp)
        *sp = '\0';
    const char *rest = sp ? sp + 1 : NULL;
    if (!strcmp(key, "received")) {
        if (!in_list(buf, event_types))
            unknown(v, n, "event type", buf, event_types);
    } else if (!strcmp(key, "notified")) {
        if (!in_list(buf, notify_types))
            unknown(v, n, "notification", buf, notify_types);
    } else if (!strcmp(key, "frames")) {
        if (!in_list(buf, frame_types))
            unknown(v, n, "message type", buf, frame_types);
    } else if (!strcmp(key, "requests")) {
        if (!in_list(buf, http_methods))
            unknown(v, n, "HTTP method", buf, http_methods);
        else if (!rest || rest[0] != '/')
            verr(v, n, "a request is written 'METHOD /path' or 'METHOD /path STATUS', "
                       "e.g. 'PUT /api/v0.2/tasks/t1 200'");
    } else if (!strcmp(key, "closed")) {
        int64_t x;
        if (scn_get_int(n, &x))
            type_err(v, n, "closed", "a close code (e.g. 4008) or a mapping {code, by}");
    }
}

static void v_matcher(vctx *v, const char *key, const scn_node *m, const char *const *mkeys,
                      int allow_quant)
{
    const char *extra_req[] = {"count", "at_least", "at_most", "same_idem_key", NULL};
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i]->str;
        const scn_node *val = m->items[i];
        if (in_list(k, mkeys)) {
            if (!strcmp(k, "from") && !strcmp(key, "requests"))
                need_client(v, val, "from");
            else if (!strcmp(k, "from") && !strcmp(key, "frames")) {
                static const char *const f[] = {"server", "client", NULL};
                need_word(v, val, "from", f);
            } else if (!strcmp(k, "by")) {
                static const char *const f[] = {"server", "client", "network", NULL};
                need_word(v, val, "by", f);
            } else if (!strcmp(k, "event_type")) {
                need_word(v, val, "event_type", event_types);
            } else if (!strcmp(k, "type") && !strcmp(key, "notified")) {
                need_word(v, val, "type", notify_types);
            } else if (!strcmp(k, "type") && !strcmp(key, "frames")) {
                need_word(v, val, "type", frame_types);
            } else if (!strcmp(k, "method")) {
                need_word(v, val, "method", http_methods);
            } else if (!strcmp(k, "status") || !strcmp(k, "code") || !strcmp(k, "revision")) {
                need_int(v, val, k, 0, INT64_MAX, NULL);
            } else if (!strcmp(k, "lost") || !strcmp(k, "edit_vs_delete")) {
                need_bool(v, val, k, NULL);
            } else if (!strcmp(k, "payload") || !strcmp(k, "body") || !strcmp(k, "response")) {
                if (val->kind == SCN_SEQ)
                    type_err(v, val, k, "a mapping or a value");
            } else if (!strcmp(k, "fields") || !strcmp(k, "choices")) {
                need_str_list(v, val, k);
            } else if (!strcmp(k, "path")) {
                if (!need_str(v, val, k) && val->str[0] != '/')
                    verr(v, val, "path must start with '/', e.g. /api/v0.2/tasks/t1");
            } else if (!strcmp(k, "idem_key")) {
                if (val->kind != SCN_SCALAR)
                    type_err(v, val, k, "true, false or a key");
            } else if (!strcmp(k, "entity_id")) {
                need_str(v, val, k);
            }
            continue;
        }
        if (allow_quant && in_list(k, extra_req)) {
            if (!strcmp(k, "same_idem_key")) {
                if (strcmp(key, "requests"))
                    unknown(v, m->keys[i], "key", k, mkeys);
                else
                    need_bool(v, val, k, NULL);
            }
            continue; /* quantifiers checked by v_quantifier */
        }
        const char **all = calloc(16, sizeof *all);
        if (!all)
            abort();
        size_t n = 0;
        for (size_t j = 0; mkeys[j] && n < 10; j++)
            all[n++] = mkeys[j];
        if (allow_quant) {
            all[n++] = "count";
            all[n++] = "at_least";
            all[n++] = "at_most";
            if (!strcmp(key, "requests"))
                all[n++] = "same_idem_key";
        }
        char what[64];
        snprintf(what, sizeof what, "key in '%s'", key);
        unknown(v, m->keys[i], what, k, all);
        free(all);
    }
    if (allow_quant)
        v_quantifier(v, m);
}

static void v_history(vctx *v, const char *key, const scn_node *val, const char *const *mkeys)
{
    if (val->kind == SCN_SCALAR) {
        v_history_word(v, key, val);
        return;
    }
    if (val->kind == SCN_SEQ) {
        for (size_t i = 0; i < val->n; i++) {
            const scn_node *it = val->items[i];
            if (it->kind == SCN_MAP)
                v_matcher(v, key, it, mkeys, 0);
            else if (it->kind == SCN_SCALAR)
                v_history_word(v, key, it);
            else
                type_err(v, it, key, "a word or a mapping");
        }
        return;
    }
    const scn_node *ex = scn_map_get(val, "exactly");
    if (ex) {
        if (val->n != 1)
            verr(v, val, "'exactly' stands alone in its mapping");
        if (ex->kind != SCN_SEQ) {
            type_err(v, ex, "exactly", "a list");
            return;
        }
        for (size_t i = 0; i < ex->n; i++) {
            if (ex->items[i]->kind == SCN_MAP)
                v_matcher(v, key, ex->items[i], mkeys, 0);
            else if (ex->items[i]->kind == SCN_SCALAR)
                v_history_word(v, key, ex->items[i]);
            else
                type_err(v, ex->items[i], key, "a word or a mapping");
        }
        return;
    }
    v_matcher(v, key, val, mkeys, 1);
}

/* `since:`/`within:` written inside an actor's block (or a log mapping
 * under it): the window is one per expect step, beside the actors. */
static void misplaced_window(vctx *v, const scn_node *k)
{
    if (!strcmp(k->str, "timeout"))
        verr(v, k, "'timeout' belongs at the wait_until level, next to the actors: "
                   "'- wait_until: {timeout: 2m, alice: {...}}'");
    else
        verr(v, k, "'%s' belongs at the expect level, next to the actors: "
                   "'- expect: {%s: ..., alice: {...}}'", k->str, k->str);
}

/* task: / cached: - a subset of a task: known field names only, so that a
 * typo fails lint instead of an expectation at run time. */
static void v_task_subset(vctx *v, const scn_node *one, const char *what, int server)
{
    for (size_t i = 0; i < one->n; i++) {
        const char *k = one->keys[i]->str;
        if (in_list(k, scn_task_fields) || (server && !strcmp(k, "household")))
            continue;
        if (!server && !strcmp(k, "household"))
            verr(v, one->keys[i], "'household' is only for the server's 'task:' (an app "
                                  "caches its own household only)");
        else
            unknown(v, one->keys[i], what, k, scn_task_fields);
    }
    const scn_node *id = scn_map_get(one, "id");
    if (!id)
        verr(v, one, "%s needs the task 'id'", server ? "task" : "cached");
    else
        need_task_id(v, id, "id");
}

static void v_log(vctx *v, const scn_node *val, int top)
{
    if (val->kind == SCN_SEQ) {
        for (size_t i = 0; i < val->n; i++)
            v_log(v, val->items[i], top);
        return;
    }
    if (need_map(v, val, "a log expectation"))
        return;
    static const char *const inner[] = {"level", "message", "pattern", "count", "at_least",
                                        "at_most", NULL};
    if (top) {
        check_keys(v, val, "log key", scn_log_keys);
    } else {
        for (size_t i = 0; i < val->n; i++) {
            const scn_node *k = val->keys[i];
            if (in_list(k->str, inner))
                continue;
            if (!strcmp(k->str, "since") || !strcmp(k->str, "within"))
                misplaced_window(v, k);
            else if (!strcmp(k->str, "actor"))
                verr(v, k, "'actor' is only for expect_log: under an actor's name the "
                           "records are already that actor's");
            else
                unknown(v, k, "log key", k->str, inner);
        }
    }
    for (size_t i = 0; i < val->n; i++) {
        const char *k = val->keys[i]->str;
        const scn_node *x = val->items[i];
        if (!strcmp(k, "actor")) {
            if (!need_str(v, x, "actor") && strcmp(x->str, "server") &&
                scn_client_index(v->s, x->str) < 0)
                need_client(v, x, "actor");
        } else if (!strcmp(k, "level")) {
            need_word(v, x, "level", levels);
        } else if (!strcmp(k, "message")) {
            /* A record name that no actor emits can never match: say so
             * now rather than as a count mismatch at run time. */
            if (!need_str(v, x, k) && !in_list(x->str, scn_log_messages)) {
                const char *sug = scn_suggest(x->str, scn_log_messages);
                if (sug)
                    verr(v, x, "unknown log record '%s' (did you mean '%s'?)", x->str, sug);
                else
                    verr(v, x, "unknown log record '%s' (see docs/LOG_RECORDS.md for the "
                               "names; use 'pattern' to search the fields)", x->str);
            }
        } else if (!strcmp(k, "pattern")) {
            need_str(v, x, k);
        } else if (!strcmp(k, "within")) {
            need_duration(v, x, "within", NULL);
        } else if (!strcmp(k, "since")) {
            if (!need_str(v, x, "since") && !in_list(x->str, v->marks))
                unknown_mark(v, x);
        }
    }
    v_quantifier(v, val);
}

static void v_count_or_quant(vctx *v, const scn_node *val, const char *what)
{
    if (val->kind == SCN_MAP) {
        check_keys(v, val, "key", quant_keys);
        if (v_quantifier(v, val) == 0)
            verr(v, val, "%s needs count, at_least or at_most", what);
        return;
    }
    need_int(v, val, what, 0, INT64_MAX, NULL);
}

static void v_list_form(vctx *v, const char *what, const scn_node *val)
{
    /* queue / dead_letter: a length, a list of ids, or a mapping. */
    if (val->kind == SCN_SEQ) {
        need_task_ids(v, val, what);
        return;
    }
    if (val->kind == SCN_SCALAR) {
        need_int(v, val, what, 0, INT64_MAX, NULL);
        return;
    }
    check_keys(v, val, "key", queue_keys);
    if (scn_map_get(val, "length"))
        need_int(v, scn_map_get(val, "length"), "length", 0, INT64_MAX, NULL);
    if (scn_map_get(val, "entities")) {
        const scn_node *e = scn_map_get(val, "entities");
        if (e->kind != SCN_SEQ)
            type_err(v, e, "entities", "a list of task ids");
        else
            need_task_ids(v, e, "entities");
    }
    const scn_node *items = scn_map_get(val, "items");
    if (items) {
        if (items->kind != SCN_SEQ) {
            type_err(v, items, "items", "a list of mappings");
            return;
        }
        for (size_t i = 0; i < items->n; i++)
            if (!need_map(v, items->items[i], "an item"))
                check_keys(v, items->items[i], "item key", queue_item_keys);
    }
}

static void v_client_assert(vctx *v, const char *client, const scn_node *k, const scn_node *val)
{
    const char *key = k->str;
    (void)client;
    if (!strcmp(key, "since") || !strcmp(key, "within") ||
        !strcmp(key, "timeout")) {
        misplaced_window(v, k);
        return;
    }
    if (!in_list(key, scn_client_asserts)) {
        if (in_list(key, scn_server_asserts))
            verr(v, k, "'%s' is a server expectation: write it under 'server:'", key);
        else
            unknown(v, k, "client expectation", key, scn_client_asserts);
        return;
    }
    if (!strcmp(key, "received"))
        v_history(v, key, val, m_received);
    else if (!strcmp(key, "notified"))
        v_history(v, key, val, m_notified);
    else if (!strcmp(key, "requests"))
        v_history(v, key, val, m_requests);
    else if (!strcmp(key, "closed"))
        v_history(v, key, val, m_closed);
    else if (!strcmp(key, "frames"))
        v_history(v, key, val, m_frames);
    else if (!strcmp(key, "log"))
        v_log(v, val, 0);
    else if (!strcmp(key, "reconnect_delays")) {
        const scn_node *list = val;
        if (val->kind == SCN_MAP) {
            check_keys(v, val, "key of reconnect_delays", reconnect_keys);
            list = scn_map_get(val, "delays");
            if (scn_map_get(val, "tolerance"))
                need_duration(v, scn_map_get(val, "tolerance"), "tolerance", NULL);
            if (!list) {
                verr(v, val, "reconnect_delays needs 'delays'");
                return;
            }
        }
        if (list->kind != SCN_SEQ) {
            type_err(v, list, "reconnect_delays", "a list of durations");
            return;
        }
        for (size_t i = 0; i < list->n; i++)
            need_duration(v, list->items[i], "a reconnect delay", NULL);
    } else if (!strcmp(key, "connect_attempts"))
        v_count_or_quant(v, val, key);
    else if (!strcmp(key, "connection"))
        need_word(v, val, "connection state", scn_conn_states);
    else if (!strcmp(key, "online"))
        need_bool(v, val, key, NULL);
    else if (!strcmp(key, "applied_revision"))
        need_int(v, val, key, 0, INT64_MAX, NULL);
    else if (!strcmp(key, "queue") || !strcmp(key, "dead_letter"))
        v_list_form(v, key, val);
    else if (!strcmp(key, "conflicts")) {
        if (val->kind == SCN_SEQ)
            need_task_ids(v, val, key);
        else
            need_int(v, val, key, 0, INT64_MAX, NULL);
    } else if (!strcmp(key, "locks")) {
        if (val->kind != SCN_SEQ)
            type_err(v, val, key, "a list of task ids");
        else
            need_task_ids(v, val, key);
    } else if (!strcmp(key, "cache")) {
        if (need_map(v, val, key))
            return;
        check_keys(v, val, "key of cache", cache_keys);
        for (size_t i = 0; i < val->n; i++) {
            const char *ck = val->keys[i]->str;
            const scn_node *x = val->items[i];
            if (!strcmp(ck, "ids") || !strcmp(ck, "contains") || !strcmp(ck, "missing")) {
                if (x->kind != SCN_SEQ)
                    type_err(v, x, ck, "a list of task ids");
                else
                    need_task_ids(v, x, ck);
            } else if (in_list(ck, cache_keys)) {
                need_int(v, x, ck, 0, INT64_MAX, NULL);
            }
        }
    } else if (!strcmp(key, "cached")) {
        const scn_node *one = val;
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1); i++) {
            one = val->kind == SCN_SEQ ? val->items[i] : val;
            if (need_map(v, one, "cached"))
                continue;
            v_task_subset(v, one, "task field", 0);
        }
    } else if (!strcmp(key, "status")) {
        need_map(v, val, key);
    }
}

static void v_server_assert(vctx *v, const scn_node *k, const scn_node *val)
{
    const char *key = k->str;
    if (!strcmp(key, "since") || !strcmp(key, "within") ||
        !strcmp(key, "timeout")) {
        misplaced_window(v, k);
        return;
    }
    if (!in_list(key, scn_server_asserts)) {
        if (in_list(key, scn_client_asserts))
            verr(v, k, "'%s' is a client expectation: write it under a client's name", key);
        else
            unknown(v, k, "server expectation", key, scn_server_asserts);
        return;
    }
    if (!strcmp(key, "requests"))
        v_history(v, key, val, m_requests);
    else if (!strcmp(key, "log"))
        v_log(v, val, 0);
    else if (!strcmp(key, "task")) {
        for (size_t i = 0; i < (val->kind == SCN_SEQ ? val->n : 1); i++) {
            const scn_node *one = val->kind == SCN_SEQ ? val->items[i] : val;
            if (need_map(v, one, "task"))
                continue;
            v_task_subset(v, one, "task field", 1);
        }
    } else if (!strcmp(key, "no_task"))
        need_task_ids(v, val, key);
    else if (!strcmp(key, "revision")) {
        if (val->kind == SCN_MAP) {
            for (size_t i = 0; i < val->n; i++)
                need_int(v, val->items[i], "revision", 0, INT64_MAX, NULL);
        } else {
            need_int(v, val, key, 0, INT64_MAX, NULL);
        }
    } else if (!strcmp(key, "lock")) {
        if (need_map(v, val, key))
            return;
        check_keys(v, val, "key of lock", lock_keys);
        if (!scn_map_get(val, "id"))
            verr(v, val, "lock needs the task 'id'");
        if (scn_map_get(val, "holder"))
            need_str(v, scn_map_get(val, "holder"), "holder");
        if (scn_map_get(val, "held"))
            need_bool(v, scn_map_get(val, "held"), "held", NULL);
    } else if (!strcmp(key, "connections")) {
        if (val->kind == SCN_MAP) {
            check_keys(v, val, "key of connections", conn_keys);
            if (scn_map_get(val, "count"))
                need_int(v, scn_map_get(val, "count"), "count", 0, INT64_MAX, NULL);
        } else {
            need_int(v, val, key, 0, INT64_MAX, NULL);
        }
    } else if (!strcmp(key, "state")) {
        need_map(v, val, key);
    }
}

/* expect / wait_until body: actor -> expectations, plus extra keys. */
static void v_expect(vctx *v, const scn_node *val, const char *what, const char *const *extra)
{
    if (need_map(v, val, what))
        return;
    int actors = 0;
    for (size_t i = 0; i < val->n; i++) {
        const scn_node *k = val->keys[i];
        const scn_node *x = val->items[i];
        if (in_list(k->str, extra)) {
            if (!strcmp(k->str, "within") || !strcmp(k->str, "timeout"))
                need_duration(v, x, k->str, NULL);
            else if (!strcmp(k->str, "since") && !need_str(v, x, "since") &&
                     !in_list(x->str, v->marks))
                unknown_mark(v, x);
            continue;
        }
        actors++;
        if (!strcmp(k->str, "server")) {
            if (need_map(v, x, "server expectations"))
                continue;
            for (size_t j = 0; j < x->n; j++)
                v_server_assert(v, x->keys[j], x->items[j]);
        } else if (scn_client_index(v->s, k->str) >= 0) {
            if (need_map(v, x, "client expectations"))
                continue;
            for (size_t j = 0; j < x->n; j++)
                v_client_assert(v, k->str, x->keys[j], x->items[j]);
        } else {
            const char **c = calloc(v->s->nclients + 8, sizeof *c);
            if (!c)
                abort();
            size_t n = 0;
            c[n++] = "server";
            for (size_t j = 0; j < v->s->nclients; j++)
                c[n++] = v->s->clients[j].name;
            for (size_t j = 0; extra[j]; j++)
                c[n++] = extra[j];
            unknown_client(v, k, "actor", k->str, c);
            free(c);
        }
    }
    if (scn_map_get(val, "since") && scn_map_get(val, "within"))
        verr(v, scn_map_key(val, "within"), "use 'since' or 'within', not both");
    if (actors == 0)
        verr(v, val, "%s names no actor (server or a client)", what);
}

/* ---- steps ------------------------------------------------------------ */

static void v_step(vctx *v, const scn_node *st)
{
    if (st->kind != SCN_MAP) {
        if (st->kind == SCN_SCALAR && in_list(st->str, scn_client_actions))
            verr(v, st, "'%s' needs an actor: write e.g. '- alice: %s'", st->str, st->str);
        else
            type_err(v, st, "a step", "a mapping such as 'alice: connect' or 'wait: 5s'");
        return;
    }
    if (st->n == 0) {
        verr(v, st, "empty step");
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
            need_str(v, x, "note");
        } else if (!strcmp(key, "repeat")) {
            has_repeat = 1;
            need_int(v, x, "repeat", 1, 100000, NULL);
        } else if (!strcmp(key, "wait") || !strcmp(key, "wait_until") ||
                   !strcmp(key, "expect") || !strcmp(key, "expect_log") ||
                   !strcmp(key, "mark")) {
            if (alone) {
                verr(v, k, "a step does one thing: '%s' and '%s' go in separate steps", alone,
                     key);
                continue;
            }
            alone = key;
            if (!strcmp(key, "wait"))
                need_duration(v, x, "wait", NULL);
            else if (!strcmp(key, "wait_until"))
                v_expect(v, x, "wait_until", until_extra);
            else if (!strcmp(key, "expect"))
                v_expect(v, x, "expect", expect_extra);
            else if (!strcmp(key, "expect_log"))
                v_log(v, x, 1);
            else if (!strcmp(key, "mark")) {
                if (!need_str(v, x, "mark")) {
                    if (in_list(x->str, v->marks)) {
                        verr(v, x, "mark '%s' is already defined", x->str);
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
        } else if (in_list(key, scn_client_actions) || in_list(key, scn_server_actions)) {
            verr(v, k, "'%s' needs an actor: write e.g. '- alice: {%s: ...}' or '- server: ...'",
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
            unknown_client(v, k, "client or step", key, c);
            free(c);
        }
    }
    if (alone && (actors || has_repeat))
        verr(v, st, "a step does one thing: '%s' cannot be combined with actions", alone);
    if (has_repeat && !actors)
        verr(v, rep, "'repeat' repeats the actions of its step: add e.g. 'alice: {edit: ...}'");
    v->in_repeat = 0;
}

/* ---- top level -------------------------------------------------------- */

static void v_id(vctx *v, const scn_node *n)
{
    if (need_str(v, n, "id"))
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
        verr(v, n, "id '%s' must look like 'area/name' (one '/'; lower case letters, "
                   "digits, _ -)", s);
}

static void v_clients(vctx *v, const scn_node *cl)
{
    if (need_map(v, cl, "clients"))
        return;
    if (cl->n == 0)
        verr(v, cl, "clients: declare at least one client, e.g. 'alice: {user: alice, household: home}'");
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
            verr(v, k, "client name '%s' must be 1-32 of letters, digits, _ -", k->str);
        else if (in_list(k->str, reserved_names) || in_list(k->str, scn_step_keys))
            verr(v, k, "'%s' cannot be a client name (it is a keyword)", k->str);
        scn_client_spec *c = &v->s->clients[v->s->nclients++];
        c->name = strdup(k->str);
        c->token = SCN_TOKEN_VALID;
        c->token_ttl_ms = 30LL * 86400000;
        c->latency_ms = -1;
        const char *user = k->str, *hh = "home", *dev = k->str;
        if (!scn_is_null(x) && !need_map(v, x, "a client")) {
            check_keys(v, x, "client key", scn_client_keys);
            const scn_node *u = scn_map_get(x, "user"), *h = scn_map_get(x, "household"),
                           *d = scn_map_get(x, "device"), *t = scn_map_get(x, "token");
            if (u && !need_str(v, u, "user"))
                user = u->str;
            if (h && !need_str(v, h, "household"))
                hh = h->str;
            if (d && !need_str(v, d, "device"))
                dev = d->str;
            if (t && !need_word(v, t, "token", token_kinds)) {
                for (int j = 0; token_kinds[j]; j++)
                    if (!strcmp(t->str, token_kinds[j]))
                        c->token = (scn_token_kind)j;
            }
            if (scn_map_get(x, "token_ttl"))
                need_duration(v, scn_map_get(x, "token_ttl"), "token_ttl", &c->token_ttl_ms);
            if (scn_map_get(x, "latency"))
                need_duration(v, scn_map_get(x, "latency"), "latency", &c->latency_ms);
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
        type_err(v, n, what, "a list, e.g. [Q-1, Q-2]");
        return a;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (need_str(v, n->items[i], what))
            continue;
        const char *w = n->items[i]->str;
        if (rules && !in_list(w, scn_rule_ids)) {
            char known[256];
            rule_ranges(known, sizeof known);
            const char *sug = scn_suggest_rule(w, scn_rule_ids);
            if (sug)
                verr(v, n->items[i], "unknown rule '%s' (did you mean '%s'? known: %s)", w, sug,
                     known);
            else
                verr(v, n->items[i], "unknown rule '%s' (known: %s)", w, known);
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
        type_err(&v, root, "a scenario", "a mapping with id, name, rules, clients, steps");
        goto done;
    }
    check_keys(&v, root, "key", scn_top_keys);
    static const char *const required[] = {"id", "name", "rules", "clients", "steps", NULL};
    for (size_t i = 0; required[i]; i++)
        if (!scn_map_get(root, required[i]))
            verr(&v, root, "missing '%s'", required[i]);

    const scn_node *n;
    if ((n = scn_map_get(root, "id"))) {
        v_id(&v, n);
        s->id = strdup(scn_str(n) ? scn_str(n) : "");
    }
    if ((n = scn_map_get(root, "name")) && !need_str(&v, n, "name"))
        s->name = strdup(n->str);
    if ((n = scn_map_get(root, "description")) && !need_str(&v, n, "description"))
        s->description = strdup(n->str);
    s->rules = str_array(&v, scn_map_get(root, "rules"), "rules", 1);
    if ((n = scn_map_get(root, "rules")) && n->kind == SCN_SEQ && n->n == 0)
        verr(&v, n, "rules: name at least one rule this scenario covers");
    s->tags = str_array(&v, scn_map_get(root, "tags"), "tags", 0);
    if ((n = scn_map_get(root, "policy")) && !scn_is_null(n) && !need_map(&v, n, "policy")) {
        for (size_t i = 0; i < n->n; i++) {
            const char *k = n->keys[i]->str;
            if (!in_list(k, hp_policy_keys)) {
                unknown(&v, n->keys[i], "policy key", k, hp_policy_keys);
                continue;
            }
            json_t *j = scn_node_json(n->items[i]);
            char err[256] = "";
            if (hp_policy_set(&s->policy, k, j, err, sizeof err))
                verr(&v, n->items[i], "policy %s", err[0] ? err : "bad value"); /* err names the key */
            json_object_set_new(s->policy_json, k, j);
        }
    }
    s->start_ms = 1795597200000LL; /* 2026-11-25T09:00:00Z */
    if ((n = scn_map_get(root, "start")) && !need_str(&v, n, "start")) {
        if (hp_time_parse(n->str, &s->start_ms))
            verr(&v, n, "start '%s' must be an RFC 3339 time with offset, e.g. "
                        "2026-11-25T09:00:00Z", n->str);
    }
    if ((n = scn_map_get(root, "network")) && !need_map(&v, n, "network")) {
        check_keys(&v, n, "network key", network_keys);
        if (scn_map_get(n, "latency"))
            need_duration(&v, scn_map_get(n, "latency"), "latency", &s->latency_ms);
    }
    if ((n = scn_map_get(root, "heal")))
        need_bool(&v, n, "heal", &s->heal);
    if ((n = scn_map_get(root, "invariants")) && !need_map(&v, n, "invariants")) {
        for (size_t i = 0; i < n->n; i++) {
            const char *k = n->keys[i]->str;
            int on = 1;
            if (!in_list(k, scn_invariant_names)) {
                unknown(&v, n->keys[i], "invariant", k, scn_invariant_names);
                continue;
            }
            if (need_bool(&v, n->items[i], k, &on))
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
            type_err(&v, n, "steps", "a list of steps");
        } else {
            if (n->n == 0)
                verr(&v, n, "steps: a scenario needs at least one step");
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

/*
 * cli_core.h - the reference client's policy, sans-I/O.
 *
 * Inputs are calls: user actions (edit, delete, lock, unlock, offline /
 * online, sync now, a conflict choice, a new token), network results (HTTP
 * response or failure, WebSocket opened / refused / message / closed) and
 * cli_tick().  Outputs are outbox items (hp_outbox.h): HTTP requests,
 * connects, frames, closes, aborts, user notifications (HP_OUT_NOTIFY) and
 * observables (HP_OUT_OBSERVE: events applied, queue changes, connection
 * state).  cli_next_deadline() says when the core wants its next tick.
 *
 * The core owns every client rule (WS-2..WS-6 client parts, Q-1..Q-7,
 * C-1..C-4, CF-1..CF-4 client parts, N-1, A-2): the request timeout, the
 * retry schedule and the watchdog are core timers, not driver features.
 *
 * Notification info objects: {"type": "SYNC_FAILED" | "QUEUE_FULL" |
 *   "OFFLINE_LONG" | "CONFLICT" | "REJECTED" | "AUTH_REQUIRED" |
 *   "KEY_MISMATCH", "entity_id"?, ...}; CONFLICT carries "choices":
 *   ["merge","overwrite"], "fields": [conflicting field names],
 *   "edit_vs_delete": bool.
 * Observe info objects: {"kind": "event", "event_type", "entity_id",
 *   "revision", "payload"} for every event applied;
 *   {"kind": "queue", "op": "enqueued"|"coalesced"|"acked"|"dead_letter"|
 *   "rebased"|"refused", "entity_id", "mutation_id", "length"};
 *   {"kind": "connection", "state": "connecting"|"ready"|"closed"|"resync",
 *   "code"?, "revision"?};
 *   {"kind": "request_result", "mutation_id", "status"}.
 * Additions (backwards compatible): queue op "resolved" (an edit-vs-delete
 *   settled in favour of theirs, no request sent); {"kind": "lock", "op":
 *   "lock"|"unlock", "entity_id", "status"} for each lock request's answer;
 *   request_result carries "status": 0 and "error" when no answer came;
 *   notification "QUARANTINE_RESTORED" {quarantined, restored} at start;
 *   KEY_MISMATCH carries {quarantined, restored}; SYNC_FAILED carries
 *   {entity_id, attempts, actions: ["sync_now"]}; REJECTED carries
 *   {entity_id, mutation_id, status, error}.
 */
#ifndef CLI_CORE_H
#define CLI_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "hp_env.h"
#include "hp_outbox.h"
#include "hp_policy.h"
#include "cli_store.h"

typedef struct cli_core cli_core;

/* A new core over store st (borrowed).  token may be NULL (then the first
 * thing the client says is AUTH_REQUIRED).  The user name for logs is read
 * from the token's "sub" claim without verifying it (the client has no
 * secret).  Nothing happens until cli_start(). */
cli_core *cli_new(const hp_env *env, const hp_policy *policy, cli_store *st, const char *token);
void cli_free(cli_core *c);

/* Begin: connect at once (WS-6: the first connect is immediate) and start
 * flushing the queue loaded from the store. */
void cli_start(cli_core *c);

/* ---- user actions: 0, or -1 with a human message in err -------------- */

/* Create or change fields of a task (partial object).  Refused with
 * QUEUE_FULL when the queue is full and the edit cannot coalesce. */
int cli_edit(cli_core *c, const char *id, const json_t *fields, char *err, size_t errlen);
int cli_delete(cli_core *c, const char *id, char *err, size_t errlen);
/* Start / stop editing: soft-lock (CF-1). */
int cli_lock(cli_core *c, const char *id, char *err, size_t errlen);
int cli_unlock(cli_core *c, const char *id, char *err, size_t errlen);
/* The device goes offline (close socket, abort requests) or online. */
void cli_set_online(cli_core *c, int online);
/* try at once and reset the schedule. */
void cli_sync_now(cli_core *c);
/* CF-3: "merge" or "overwrite" for the conflict pending on id. */
int cli_choose(cli_core *c, const char *id, const char *choice, char *err, size_t errlen);
/* a new token resumes the paused queue and reconnects. */
void cli_set_token(cli_core *c, const char *token);

/* ---- network results ------------------------------------------------- */

void cli_http_response(cli_core *c, uint64_t req_id, int status, int retry_after_s,
                       const char *body, size_t len);
/* No answer: reason "network" (connection failed or lost). */
void cli_http_failed(cli_core *c, uint64_t req_id, const char *reason);
void cli_ws_opened(cli_core *c, uint64_t conn_id);
/* Upgrade refused with an HTTP status (401 => AUTH_REQUIRED), or 0 when the
 * connection could not be made at all. */
void cli_ws_refused(cli_core *c, uint64_t conn_id, int http_status);
void cli_ws_message(cli_core *c, uint64_t conn_id, const char *data, size_t len);
/* code: the close code received, or 0 when the link died without one. */
void cli_ws_closed(cli_core *c, uint64_t conn_id, int code);

void cli_tick(cli_core *c);
/* Epoch ms of the next wanted tick, INT64_MAX when none (as the server). */
int64_t cli_next_deadline(const cli_core *c);
hp_outbox *cli_outbox(cli_core *c);

/* {"online","connection": "idle"|"connecting"|"open"|"ready"|"auth_required",
 *  "applied_revision", "queue": [{"mutation_id","op","entity_id",
 *  "base_revision","attempts","snapshot"}], "dead_letter": [...],
 *  "conflicts": [{"entity_id","fields","edit_vs_delete"}],
 *  "cache": {"entries","bytes","ids"}, "locks": [...], "retry_attempt",
 *  "next_retry_at"}.  Also (additions): queue items carry "in_flight" and
 *  "sent"; "reconnect_attempt", "next_reconnect_at", "quarantined".
 *  next_retry_at is epoch ms or null.  New reference. */
json_t *cli_status(cli_core *c);

/* cli_status() without what it reads from the store ("dead_letter",
 * "cache", "quarantined"): for a check that runs after every simulated
 * event (a scenario's wait_until) and needs none of them.  New reference. */
json_t *cli_status_light(cli_core *c);

/* Only some members of cli_status(): parts is an OR of the bits below, one
 * per key.  The object holds the keys asked, in cli_status()'s order, each
 * with what cli_status() has there; nothing is built (and, for
 * CLI_STATUS_DEAD_LETTER, _CACHE and _QUARANTINED, no store query made) for
 * a key not asked.  For checks that read one key of the status after
 * simulated events.  New reference. */
enum {
    CLI_STATUS_ONLINE = 1u << 0,
    CLI_STATUS_CONNECTION = 1u << 1,
    CLI_STATUS_APPLIED_REVISION = 1u << 2,
    CLI_STATUS_QUEUE = 1u << 3,
    CLI_STATUS_DEAD_LETTER = 1u << 4,     /* store */
    CLI_STATUS_CONFLICTS = 1u << 5,
    CLI_STATUS_CACHE = 1u << 6,           /* store */
    CLI_STATUS_LOCKS = 1u << 7,
    CLI_STATUS_RETRY_ATTEMPT = 1u << 8,
    CLI_STATUS_NEXT_RETRY_AT = 1u << 9,
    CLI_STATUS_RECONNECT_ATTEMPT = 1u << 10,
    CLI_STATUS_NEXT_RECONNECT_AT = 1u << 11,
    CLI_STATUS_QUARANTINED = 1u << 12,    /* store */
    CLI_STATUS_ALL = 0x1fffu,
};
json_t *cli_status_part(cli_core *c, unsigned parts);

/* The CLI_STATUS_ bit of a cli_status() key ("queue" -> CLI_STATUS_QUEUE),
 * 0 when key is not one (or NULL). */
unsigned cli_status_key(const char *key);

/* The queue's length now (what cli_status()'s "queue" array counts),
 * without building the status object: the simulator samples it after
 * every step. */
int cli_queue_length(const cli_core *c);

/* JSON of a cached task (new reference) or NULL. */
json_t *cli_cached(cli_core *c, const char *id);

#endif

/*
 * srv_core.h - the reference server's policy, sans-I/O.
 *
 * The core never touches sockets, threads, the wall clock or rand(): inputs
 * are calls (an HTTP request, a WebSocket opened / message / closed,
 * srv_tick()), outputs are items in its outbox (hp_outbox.h) that the driver
 * pops and carries out: HTTP responses, frames to send, connections to
 * close with a code.  srv_next_deadline() says when the core next wants a
 * srv_tick().  Log records go through env->log.
 *
 * Two drivers exist: the simulator (harness/) and the libwebsockets adapter
 * (fake_server/srv_lws.c).  Neither decides policy.
 *
 * Storage is a separate handle (srv_store) so that a "restart" frees the
 * core and builds a new one over the same store.
 */
#ifndef SRV_CORE_H
#define SRV_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "hp_env.h"
#include "hp_jwt.h"
#include "hp_outbox.h"
#include "hp_policy.h"

typedef struct srv_store srv_store;
typedef struct srv_core srv_core;

/* Open (creating the schema if needed) an SQLite store; path may be
 * ":memory:".  Returns NULL and writes err on failure. */
srv_store *srv_store_open(const char *path, char *err, size_t errlen);
void srv_store_close(srv_store *st);

/* A new core over st (borrowed; must outlive the core).  env, policy and
 * secret are copied or borrowed as documented: env and its logger/rng are
 * borrowed, policy is copied, secret is copied.  Reminders that fell due
 * while no core ran fire at the first srv_tick(). */
srv_core *srv_new(const hp_env *env, const hp_policy *policy, const char *jwt_secret,
                  srv_store *st);
void srv_free(srv_core *c);

/* ---- limits (docs/LIMITS.md, "Server transport") --------------------- */

/* Bounds that protect the server from a large household or a hostile
 * peer.  Not policy rules: a peer that hits one gets a clear refusal and
 * the server logs it.  Both drivers use the same values (the simulator
 * keeps the defaults). */
typedef struct srv_limits {
    size_t replay_max_bytes;   /* WS-2: a replay larger than this (frame bytes)
                                  is answered RESYNC_REQUIRED; 0 = no bound.
                                  Default 256 MiB (--max-replay) */
    size_t replay_chunk_bytes; /* replay pushed per pull (srv_ws_writable);
                                  default 256 KiB */
    int conns_per_user;        /* open WebSockets per user (sub), default 32
                                  (--max-conns-per-user); over: upgrade 429 */
    int conns_total;           /* open WebSockets in all, default 10000
                                  (--max-conns); over: upgrade 503 */
    int locks_per_user;        /* CF-1 locks one user holds at once, default
                                  256 (--max-locks-per-user); over: 429 */
    int heartbeat_lock_ids;    /* CF-1 ids read from one HEARTBEAT's "locks",
                                  default 256 (--max-heartbeat-locks); the
                                  rest are ignored (logged) */
} srv_limits;

void srv_limits_defaults(srv_limits *l);

/* SIMULATOR ONLY: token checks go through memo (borrowed, must outlive the
 * core; NULL: none, the default).  Same answers as without it (hp_jwt.h:
 * expiry is checked against the core's clock every time); never set by the
 * real server's adapter, because a memo lookup is a timing side channel. */
void srv_set_jwt_memo(srv_core *c, hp_jwt_memo *memo);
/* Replace the core's limits (copied).  Zero fields take the default. */
void srv_set_limits(srv_core *c, const srv_limits *l);

/* ---- inputs ---------------------------------------------------------- */

typedef struct srv_http_req {
    uint64_t id;                /* echoed as the response item's id */
    const char *method;         /* "GET", "PUT", "DELETE", "POST", ... */
    const char *path;           /* without the query, e.g. "/api/v0.2/tasks/t1" */
    const char *query;          /* without '?', NULL when none */
    const char *authorization;  /* whole header value, NULL when absent */
    const char *idem_key;       /* Idempotency-Key, NULL when absent */
    const char *body;           /* may be NULL when body_len is 0 */
    size_t body_len;
    int64_t content_length;     /* -1 when the header was absent */
} srv_http_req;

/* Handle one request; exactly one HP_OUT_HTTP_RESPONSE with req->id is
 * pushed (status, JSON body, retry_after_s).  A body larger than
 * policy.max_body may be passed truncated with content_length telling the
 * real size: the answer is 413. */
void srv_http(srv_core *c, const srv_http_req *req);

/* An upgrade request on the stream endpoint (WS-1).  `path` is the request
 * path without query (the core checks it), `query` the raw query string.
 * Returns 0 when accepted (conn_id is registered and the HELLO timer runs),
 * else the HTTP status to refuse with (401 bad/missing/expired token, 404
 * wrong path), and *refusal_body gets a malloc'd JSON error body. */
int srv_ws_open(srv_core *c, uint64_t conn_id, const char *path, const char *query,
                char **refusal_body);

/* One complete text message.  len > policy.max_frame means the message was
 * too big (data may be truncated): the core closes with 1009. */
void srv_ws_message(srv_core *c, uint64_t conn_id, const char *data, size_t len);

/*
 * Flow control (WS-2 replay).  A replay is streamed, never pushed whole: on
 * HELLO the core pushes the first replay_chunk_bytes and, when more remains,
 * an HP_OUT_WS_WANT_WRITABLE item for the connection.  The driver then calls
 * srv_ws_writable() once that connection's output has drained (the
 * simulator, which has no socket buffers, calls it at once); the core
 * pushes the next chunk (and another WANT_WRITABLE), or READY when the
 * replay has caught up with the log.  Events written meanwhile are in the
 * log and reach the connection through the replay, so the READY revision
 * is still exactly the last replayed one.  A call for a connection that is
 * not replaying does nothing.
 */
void srv_ws_writable(srv_core *c, uint64_t conn_id);

/* The user (token sub) of an open connection, NULL when unknown.  Borrowed:
 * valid until srv_ws_closed(conn_id).  The adapter accounts output per
 * user with it. */
const char *srv_ws_user(srv_core *c, uint64_t conn_id);

/* The connection is gone (peer close, network loss, after our close). */
void srv_ws_closed(srv_core *c, uint64_t conn_id);

/* Run every timer due at env now: heartbeats, timeouts, lock expiry, token
 * expiry on live connections, reminders. */
void srv_tick(srv_core *c);

/* Epoch ms of the next wanted tick, INT64_MAX when none. */
int64_t srv_next_deadline(const srv_core *c);

/* ---- group commit (srv_group.c) -------------------------------------- */

/* On: a write (PUT/DELETE) does not commit alone; it joins the open group's
 * transaction, and every output pushed while a group is open (its response,
 * its events, any other answer or frame, which may have read a write not yet
 * durable) is held back.  srv_flush() commits the group with one COMMIT (one
 * fsync of the WAL) and then moves the held items, in order, to the outbox.
 * The driver calls srv_flush() once per loop iteration, after handing over
 * every input that arrived together.  srv_tick(), srv_state(),
 * srv_shutdown() and srv_free() flush first.  Off (the default, the
 * simulator's): each write commits alone before its response is pushed. */
void srv_set_group_commit(srv_core *c, int on);

/* Commit the open group: the number of writes it held (0: no group open),
 * or -1 when the COMMIT failed: nothing of the group is kept, every held
 * HTTP response becomes 503 "internal" with Retry-After 1, held frames are
 * dropped and their connections closed 1011 (clients resync with HELLO). */
int srv_flush(srv_core *c);

/* Since srv_new: COMMITs that carried writes, writes committed, largest
 * group.  Without group commit every write is its own commit. */
void srv_group_stats(const srv_core *c, uint64_t *commits, uint64_t *writes, uint64_t *max);

/* Close every WebSocket with 1001 (graceful stop). */
void srv_shutdown(srv_core *c);

hp_outbox *srv_outbox(srv_core *c);

/* ---- faults (scripted by the harness, or the admin endpoint) --------- */

/* Drop the next n heartbeats the server would send to connections of user
 * (NULL: every connection). */
void srv_fault_drop_heartbeats(srv_core *c, const char *user, int n);

/* Answer the next n requests whose method matches (NULL: any) and whose path
 * starts with path_prefix (NULL: any) with status, without applying them;
 * retry_after_s >= 0 adds Retry-After. */
void srv_fault_fail_requests(srv_core *c, const char *method, const char *path_prefix, int n,
                             int status, int retry_after_s);

/* The next write (PUT/DELETE) to task_id in any household answers 409 with
 * the current task, as if another device had won the race. */
void srv_fault_force_conflict(srv_core *c, const char *task_id);

/* ---- admin-API faults (srv_faults.c) ----------------------------------
 * Scoped (household / user / device), counted, optionally expiring, and
 * listable.  Body: {"fail_requests" | "force_conflict" | "drop_heartbeats"
 * | "refuse_upgrade" | "hold_response" | "inject" | "close_stream": {...}}
 * (keys and ranges: docs/ADMIN_API.md).  Checked completely first: on
 * error nothing is armed, -1 (bad body: 400) or -2 (an immediate fault
 * matches no live connection: 404), err says why naming the key.  On
 * success *result is a new array describing each armed fault (id, kind,
 * scope, left) or immediate action (kind, applied).
 * A "hold_response" fault shows up as hold_ms on the HTTP response item. */
int srv_faults_arm(srv_core *c, const json_t *body, json_t **result, char *err, size_t errlen);
/* Armed faults with what is left of their counts (new array). */
json_t *srv_faults_list(srv_core *c);
/* Clear the fault with id, or every one when id is 0; returns how many. */
int srv_faults_clear(srv_core *c, uint64_t id);
/* Hand every armed fault of `from` to `to` (a restarted session keeps its
 * faults). */
void srv_faults_move(srv_core *from, srv_core *to);
/* Closest of cands to word, for "did you mean" (NULL when none is near). */
const char *srv_did_you_mean(const char *word, const char *const *cands, size_t n);

/* Verify an "Authorization: Bearer ..." value (or a bare token when
 * bare is 1) with the core's secret at its clock: 0 and *out filled, or
 * -1.  For the driver's journal and log fields, never for a decision. */
struct hp_claims;
int srv_identify(srv_core *c, const char *authorization, int bare, struct hp_claims *out);

/* ---- introspection (harness assertions, admin endpoint) -------------- */

/* {"households": {hh: {"revision": n, "tasks": {id: task}, "locks": {id:
 * {"holder","expires_at"}}}}, "connections": [{"id","user","hh","state"}],
 * "events": n}.  New reference. */
json_t *srv_state(srv_core *c);

/* Parts of srv_state() for a reader that needs only some (the simulator's
 * checker polls after every event; the whole state costs a parse of every
 * task).  "households" is there, with every household and the default
 * entry shape, when REVISIONS, TASKS or LOCKS is asked; a part not asked
 * keeps its default (revision 0, tasks {}, locks {}) or is absent
 * ("connections", "events").  task_id (may be NULL: every task) limits
 * TASKS to that task in each household.  A part asked holds what
 * srv_state() has there.  New reference (NULL when c is NULL). */
enum {
    SRV_STATE_REVISIONS = 1u << 0,
    SRV_STATE_TASKS = 1u << 1,
    SRV_STATE_LOCKS = 1u << 2,
    SRV_STATE_CONNS = 1u << 3,
    SRV_STATE_EVENTS = 1u << 4,
    SRV_STATE_ALL = 0x1fu,
};
json_t *srv_state_part(srv_core *c, unsigned parts, const char *task_id);

#endif

/*
 * cli_core_int.h - what the client core's files share (not a contract;
 * cli_core.h is).
 *
 * The core is one state machine (struct cli_core below) split by stage; the
 * files see each other's state directly, as the single file did:
 *   cli_core.c      owner: lifecycle (cli_new/free/start), small helpers
 *                   (clock, notify/observe), the request table (Q-7
 *                   timeout), online/offline, sync now, the token,
 *                   cli_tick / cli_next_deadline, status.
 *   cli_queue.c     the queue (Q-1..Q-7): append/remove, the pump (one in
 *                   flight), retry schedule, chaining/rebase, user
 *                   edits (enqueue, coalesce Q-6), the head's HTTP answer,
 *                   and the dispatch of every HTTP result by request kind.
 *   cli_conflict.c  CF-1 soft-locks (lock/unlock/relock on READY) and
 *                   CF-2..CF-4: a 409 on the head, merge, the banner and
 *                   the user's choice.
 *   cli_stream.c    the WebSocket stream: connect / reconnect (WS-6),
 *                   heartbeat (WS-4), READY/RESYNC/events (WS-2, WS-3),
 *                   close codes, the reload after RESYNC_REQUIRED.
 *   cli_cache.c     cache upkeep (C-1, C-2) and the WS-2 rule for versions
 *                   that come with REST answers.
 *
 * Inputs: the public calls of cli_core.h, each implemented in one of the
 * files above.  Outputs: items pushed to c->ob (hp_outbox.h); persistence
 * through c->st (cli_store.h).  Ownership: the cli_core owns its queue
 * items (qitem: snapshot, base, conflict_current), the request table, the
 * token/user strings and the lock arrays; c->env and c->st are borrowed.
 * The functions below are internal to hp_client_core: prefix cli__ (STYLE:
 * internal module__verb), so that no short name (now, fail, pump, ...)
 * leaves the library.
 */
#ifndef CLI_CORE_INT_H
#define CLI_CORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cli_core.h"
#include "cli_internal.h"

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

/* ---- cli_core.c ---------------------------------------------------------- */

int64_t cli__now(const cli_core *c);
/* The token's "sub" for logs, "unknown" when none. */
const char *cli__user_of(const cli_core *c);
/* Push an HP_OUT_NOTIFY / HP_OUT_OBSERVE item; takes info. */
void cli__notify(cli_core *c, json_t *info);
void cli__observe(cli_core *c, json_t *info);
void cli__observe_queue(cli_core *c, const char *op, const cli_item *it);
/* The "queue" observable {kind, op, entity_id, mutation_id, length}: a new
 * object (caller owns it). */
json_t *cli__queue_info(const char *op, const char *entity_id, const char *mutation_id,
                        int length);
/* The "request_result" observable {kind, mutation_id, status[, error]}
 * (error NULL: left out): a new object. */
json_t *cli__request_result_info(const char *mutation_id, int status, const char *error);
/* code / rev < 0: left out of the observable. */
void cli__observe_conn(cli_core *c, const char *state, int code, int64_t rev);
/* a mutation id (Idempotency-Key) of 32 hex chars from env->rng. */
void cli__new_mutation_id(cli_core *c, char *out, size_t n);
/* WS-2: the last applied revision, persisted. */
void cli__set_applied(cli_core *c, int64_t rev);
/* Push an HTTP request and remember it for the request timeout.
 * Takes body (malloc'd or NULL); the other strings are copied.  Returns
 * the request id. */
uint64_t cli__send_http(cli_core *c, req_kind kind, const char *method, const char *path,
                        const char *idem, char *body, const char *entity);
/* The pending request with that id, or NULL (answered, aborted, timed out). */
pending_req *cli__req_find(cli_core *c, uint64_t id);
void cli__req_drop(cli_core *c, uint64_t id);

/* ---- cli_queue.c --------------------------------------------------------- */

void cli__qitem_free(qitem *q);
void cli__q_remove_at(cli_core *c, int i);
/* Copies *qi (taking what it points to); 0, or -1 when out of memory. */
int cli__q_append(cli_core *c, const qitem *qi);
/* Last queued item of an entity, or -1. */
int cli__q_last_of(const cli_core *c, const char *id);
/* Not started, offline, waiting for a token or without one. */
int cli__paused(const cli_core *c);
/* send the head item when it is due: FIFO, one in flight. */
void cli__pump(cli_core *c);
/* a streak ends (ack, dead-letter, 409 answer, sync now); h may be NULL. */
void cli__reset_streak(cli_core *c, qitem *h);
/* Q-4 delay before retry number n (1-based) with jitter from env->rng
 * (also WS-6's reconnect schedule). */
int64_t cli__retry_delay(cli_core *c, int n);
/* the head failed retryably (network, timeout, 5xx, 429). */
void cli__head_failed(cli_core *c, int retry_after_s, const char *why);
/* rebase the next item of id at or after index from onto task
 * (borrowed, may be NULL). */
void cli__rebase_next(cli_core *c, int from, const char *id, const json_t *task);
/* Copy msg into err; returns -1. */
int cli__fail(char *err, size_t errlen, const char *msg);
/* Copy src (NULL: "") into dst[n], cut to n - 1 bytes and NUL-terminated:
 * what snprintf(dst, n, "%s", src) did, without the format machinery (ids
 * and op names are copied several times per message). */
void cli__copy(char *dst, size_t n, const char *src);
/* A body as JSON (new reference) or NULL. */
json_t *cli__parse_body(const char *body, size_t len);
/* A request got no answer (network, timeout): the head counts a failure,
 * a reload fails, a lock request is only logged. */
void cli__request_failed(cli_core *c, uint64_t req_id, const char *why);

/* ---- cli_conflict.c ------------------------------------------------------ */

/* CF-1: on READY, POST the locks held and DELETE those released offline. */
void cli__relock_all(cli_core *c);
/* CF-2 / CF-3 / CF-4: a 409 on the head item (bodyj borrowed). */
void cli__head_conflict(cli_core *c, json_t *bodyj);

/* ---- cli_stream.c -------------------------------------------------------- */

/* stop, say AUTH_REQUIRED once, wait for cli_set_token. */
void cli__auth_required(cli_core *c, const char *why);
/* N-1: an offline period starts (unless one is running). */
void cli__offline_begin(cli_core *c);
/* WS-6: open the stream now (if allowed). */
void cli__ws_connect(cli_core *c);
/* WS-6: arm the next reconnect of the schedule. */
void cli__schedule_reconnect(cli_core *c);
/* Close our side; the connection is forgotten at once. */
void cli__ws_close(cli_core *c, int code, const char *reason);
/* WS-4: send a heartbeat (with the CF-1 locks) and re-arm its timer. */
void cli__send_heartbeat(cli_core *c);
/* WS-2: the answer (or failure: status 0) of the reload after RESYNC. */
void cli__reload_answer(cli_core *c, int status, const char *body, size_t len);

/* ---- cli_cache.c --------------------------------------------------------- */

/* C-1 / C-2: enforce the window and the cap, then re-arm the C-1 timer. */
void cli__cache_upkeep(cli_core *c);
/* WS-2: store a version from a REST answer unless a newer one is cached;
 * 1 when stored. */
int cli__cache_put_server(cli_core *c, const char *id, const json_t *task);

#endif

/*
 * srv_internal.h - what the server core's files share (not a contract).
 *
 * Files by role:
 *   srv_store.c   SQLite: schema, transactions, tasks, event log,
 *                 idempotency results, fired reminders.
 *   srv_core.c    the core handle, outbox helpers, broadcast, srv_tick()
 *                 and srv_next_deadline(), faults, srv_state().
 *   srv_rest.c    srv_http(): routing, auth, every REST answer (409s, 423s).
 *   srv_stream.c  srv_ws_*(): upgrade, HELLO/replay/READY, heartbeats,
 *                 close codes, the per-connection deadline heap.
 *   srv_conns.c   the connection table: open order, ids, households, users.
 *   srv_heap.c    the binary min-heap of timers (srv_heap.h).
 *   srv_idem.c    Q-3 Idempotency-Key: fingerprint, replay, 422, storage.
 *   srv_lock.c    CF-1 soft-locks (memory only; lost on restart).
 *   srv_remind.c  R-1 reminders.
 *   srv_group.c   group commit: a write's transaction, srv_flush().
 *   srv_faults.c  scoped faults of the admin API (srv_faults_arm & co).
 */
#ifndef SRV_INTERNAL_H
#define SRV_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <jansson.h>
#include "srv_core.h"
#include "hp_jwt.h"
#include "hp_task.h"
#include "srv_heap.h"

#define SRV_NAME_MAX 128

/* ---- store (srv_store.c) -------------------------------------------- */

/* Every function returns 0 on success, -1 on an SQLite error (the message
 * is in srv_store_errmsg()), unless documented otherwise. */
int srv_store_begin(srv_store *st);    /* BEGIN IMMEDIATE */
int srv_store_commit(srv_store *st);
void srv_store_rollback(srv_store *st);
const char *srv_store_errmsg(srv_store *st);
/* Group commit: SAVEPOINT w / RELEASE w / ROLLBACK TO w + RELEASE w (a no-op
 * when the transaction is already gone); in_tx: 1 inside a transaction. */
int srv_store_savepoint(srv_store *st);
int srv_store_release(srv_store *st);
void srv_store_rollback_to(srv_store *st);
int srv_store_in_tx(srv_store *st);
/* How long a write waits for another process' lock (default 5000 ms). */
void srv_store_busy_timeout(srv_store *st, int ms);

/* Current revision of hh (0 for a household never written). */
int64_t srv_store_revision(srv_store *st, const char *hh);
/* Highest revision whose event was trimmed from the log (0 = none). */
int64_t srv_store_trimmed(srv_store *st, const char *hh);
/* Both of the above in one query: 0 with *rev and *trimmed (0 and 0 for a
 * household never written), or -1. */
int srv_store_household(srv_store *st, const char *hh, int64_t *rev, int64_t *trimmed);
/* Next revision of hh: increments the household counter (inside a
 * transaction) and returns the new value, or -1. */
int64_t srv_store_bump(srv_store *st, const char *hh);

/* The stored task (new reference, tombstones included) or NULL. */
json_t *srv_store_task_get(srv_store *st, const char *hh, const char *id);
/* Insert or replace; revision/deleted/remind_at are read from task.  text:
 * hp_json_dump(task) when the caller has it (stored as it is), or NULL. */
int srv_store_task_put(srv_store *st, const char *hh, const json_t *task, const char *text);
/* 1 when task, stored, would be a reminder candidate (not deleted,
 * remind_at an instant), fired or not; else 0. */
int srv_store_task_reminds(const json_t *task);
/* Tasks with revision > since, ascending revision, as a new array. */
json_t *srv_store_tasks_since(srv_store *st, const char *hh, int64_t since);

/* Append one event; then keep only the newest `retain` events of hh.
 * text: hp_json_dump(payload) when the caller has it, or NULL. */
int srv_store_event_append(srv_store *st, const char *hh, int64_t rev, const char *type,
                           const char *entity_id, const json_t *payload, const char *text,
                           int retain);
/* Calls fn for each event of hh with revision > since, ascending, and stops
 * after the event that brings the payload bytes read to max_bytes or more (at
 * least one event when any is left): one replay chunk (WS-2).  *n gets the
 * number of events read.  payload is the stored text (hp_json_dump() of
 * the payload, borrowed for the call). */
typedef void (*srv_event_fn)(void *ud, int64_t rev, const char *type, const char *entity_id,
                             const char *payload);
int srv_store_events_page(srv_store *st, const char *hh, int64_t since, size_t max_bytes,
                          srv_event_fn fn, void *ud, int *n);
/* Number and payload bytes of hh's events with revision > since (the size
 * of a replay, WS-2).  0 or -1. */
int srv_store_events_size(srv_store *st, const char *hh, int64_t since, int64_t *count,
                          int64_t *bytes);
int64_t srv_store_event_count(srv_store *st);

/* Idempotency records (2xx only, Q-3).  A record binds the key to its
 * request: `request` ("PUT /api/v0.2/tasks/t1", for messages) and `fp` (the
 * fingerprint of method, path, query and body, srv_idem.c).
 * get: only a record created at or after since_ms counts; 1 found (rec
 * filled, rec->body and rec->request malloc'd), 0 not found, -1 error.
 * put: insert or replace, created at now_ms; then trims every record of any
 * household created before trim_before_ms (the window, LIMITS.md). */
typedef struct srv_idem_rec {
    int status;
    char *body;
    char *request;
    char fingerprint[65];
} srv_idem_rec;
int srv_store_idem_get(srv_store *st, const char *hh, const char *user, const char *key,
                       int64_t since_ms, srv_idem_rec *rec);
int srv_store_idem_put(srv_store *st, const char *hh, const char *user, const char *key,
                       const char *request, const char *fp, int64_t now_ms,
                       int64_t trim_before_ms, int status, const char *body);
/* Records in the table, live or not (tests, LIMITS.md). */
int64_t srv_store_idem_count(srv_store *st);

/* the earliest unfired reminder over every household: 1 found (hh,
 * id copied, *remind_at malloc'd (may be NULL), *due_ms set), 0 none, -1 error. */
int srv_store_reminder_next(srv_store *st, char *hh, char *id, size_t n, char **remind_at,
                            int64_t *due_ms);
int srv_store_reminder_mark(srv_store *st, const char *hh, const char *id,
                            const char *remind_at);

/* Delete every row (a session reset); 0 or -1. */
int srv_store_wipe(srv_store *st);

/* Households in the store (new array of strings). */
json_t *srv_store_households(srv_store *st);

/* ---- core ------------------------------------------------------------ */

typedef enum srv_conn_state {
    SRV_CONN_AWAIT_HELLO = 0,   /* opened; HELLO timer runs (WS-2) */
    SRV_CONN_RESYNC,            /* RESYNC_REQUIRED sent; a HELLO is welcome again */
    SRV_CONN_REPLAYING,         /* HELLO accepted; replay streamed by
                                   srv_ws_writable(), READY at its end */
    SRV_CONN_READY,             /* READY sent; events flow */
    SRV_CONN_CLOSING            /* close pushed; waiting for srv_ws_closed() */
} srv_conn_state;

typedef struct srv_conn {
    uint64_t id;
    const char *user;         /* the token's sub and hh claims: the names of */
    const char *hh;           /* user_ent and hh_ent (shared, not copied per
                                 connection: 10,000 streams, issue 13) */
    char dev[SRV_NAME_MAX];   /* the token's dev claim, "" when absent */
    int64_t token_exp_ms;     /* */
    int64_t hello_deadline;   /* WS-2, only in AWAIT_HELLO */
    int64_t last_rx_ms;       /* WS-5: any client message */
    int64_t next_hb_ms;       /* WS-4: next server heartbeat */
    int drop_hb;              /* fault: server heartbeats still to drop */
    int64_t replay_pos;       /* WS-2, only in REPLAYING: last revision sent */
    int64_t replay_from;      /* WS-2: the HELLO's revision (for the log line) */
    int replay_n;             /* events replayed so far */
    srv_conn_state state;
    int counted;              /* counted in n_live and its user's live (not CLOSING) */
    uint64_t seq;             /* open order: due connections are handled in it */
    srv_heap_node timer;      /* in c->timers at its earliest deadline unless
                                 CLOSING (srv_stream.c keeps the key exact) */
    /* srv_conns.c's indexes */
    struct srv_conn *prev, *next;       /* c->conns, open order */
    struct srv_conn *id_next;           /* c->by_id bucket */
    struct srv_conn *hh_prev, *hh_next; /* its household's, open order */
    struct srv_named *hh_ent, *user_ent;
} srv_conn;

/* An entry of a name-keyed index (household or user), srv_conns.c. */
typedef struct srv_named {
    struct srv_named *next;   /* bucket chain */
    int refs;                 /* connections naming it; freed at 0 */
    int live;                 /* users: those not CLOSING */
    srv_conn *head, *tail;    /* households: its connections, open order */
    char name[];
} srv_named;

typedef struct srv_names {
    srv_named **b;
    size_t nb, n;             /* buckets (power of two), entries */
} srv_names;

typedef struct srv_lock {
    char hh[SRV_NAME_MAX];
    char id[HP_TASK_ID_MAX + 1];
    char holder[SRV_NAME_MAX];
    char dev[SRV_NAME_MAX];   /* the holder's device that took or refreshed it last */
    int64_t expires_ms;
    struct srv_lock *next;
} srv_lock;

typedef struct srv_fail_fault {
    char *method;             /* NULL: any */
    char *prefix;             /* NULL: any */
    int left;
    int status;
    int retry_after_s;
    struct srv_fail_fault *next;
} srv_fail_fault;

typedef struct srv_hb_fault {  /* heartbeats to drop for a user not yet connected */
    char *user;               /* NULL: every connection */
    int n;
    struct srv_hb_fault *next;
} srv_hb_fault;

/* Admin-API faults (srv_faults.c): scoped, counted, may expire. */
enum {
    SRV_AF_FAIL = 1,          /* answer with status, apply nothing */
    SRV_AF_CONFLICT,          /* next write to task answers 409 */
    SRV_AF_DROP_HB,           /* server heartbeat not sent */
    SRV_AF_REFUSE,            /* upgrade refused with status */
    SRV_AF_HOLD               /* response held hold_ms by the driver */
};

typedef struct srv_afault {
    uint64_t id;
    int kind;
    char *hh, *user, *dev;    /* scope; NULL: any */
    char *method, *prefix;    /* request filters; NULL: any */
    char *task;               /* force_conflict */
    int left;                 /* uses left (>= 1 while listed) */
    int status;
    int retry_after_s;        /* -1: none */
    int64_t hold_ms;
    int64_t armed_ms, expires_ms; /* INT64_MAX: never expires */
    struct srv_afault *next;
} srv_afault;

/* Who a request or connection is (from its verified token). */
typedef struct srv_who {
    const char *hh, *user, *dev;
} srv_who;

/* Log lines about a request or a connection end with "hh=H dev=D" (and
 * "user=U" where the line has none earlier), "-" when unknown
 * (docs/LOG_RECORDS.md); a created session's sink appends session=ID. */
static inline const char *srv_dash(const char *s)
{
    return s && *s ? s : "-";
}

typedef struct srv_name {
    char *name;
    struct srv_name *next;
} srv_name;

struct srv_core {
    hp_env env;               /* copied struct; logger/rng/clock borrowed */
    hp_policy pol;
    char *secret;
    hp_jwt_memo *jwt_memo;    /* simulator only (srv_set_jwt_memo); NULL */
    srv_store *st;
    hp_outbox out;
    srv_conn *conns;          /* open order (srv_conns.c keeps every index) */
    srv_conn *conns_tail;
    srv_conn **by_id;         /* hash of conns by id, by_id_n buckets */
    size_t by_id_n;
    srv_names hhs, users;     /* per household / per user */
    int n_live;               /* conns not CLOSING (conns_total limit) */
    uint64_t next_seq;
    srv_heap timers;          /* one node per live conn: its earliest deadline */
    srv_conn **due;           /* srv_stream_tick's batch, due_cap >= timers.cap */
    size_t due_cap;
    srv_lock *locks;          /* acquisition order */
    srv_fail_fault *fails;    /* scripted failures, oldest first */
    srv_hb_fault *hb_faults;
    srv_name *force_409;      /* task ids whose next write answers 409 */
    srv_limits lim;           /* docs/LIMITS.md */
    int n_conns;              /* entries in conns (CLOSING included) */
    int64_t next_reminder_ms; /* cache of the store's next unfired reminder */
    int reminders_none;       /* its last lookup found no unfired reminder */
    /* Group commit (srv_group.c): when on, writes join one open
     * transaction and everything pushed meanwhile waits in `held` until
     * srv_flush() has committed it. */
    int group_on;
    int group_open;           /* BEGIN done, COMMIT not yet */
    int in_write;             /* a write's savepoint is open */
    hp_outbox held;
    uint64_t group_commits, group_writes, group_max;
    uint64_t group_size;      /* writes in the open group */
    srv_afault *afaults;      /* admin-API faults, arming order */
    uint64_t next_fault_id;
    /* srv_idem.c: SHA-256 fetched once and one digest context, reused by
     * every fingerprint (made at the first; freed by srv_free). */
    struct evp_md_st *sha256;
    struct evp_md_ctx_st *sha_ctx;
};

/* srv_core.c helpers */
int64_t srv_now(const srv_core *c);
void srv_push_response(srv_core *c, uint64_t id, int status, char *body, int retry_after_s);
/* The same, held hold_ms by the driver before it is written. */
void srv_push_response_held(srv_core *c, uint64_t id, int status, char *body, int retry_after_s,
                            int64_t hold_ms);
void srv_push_send(srv_core *c, uint64_t conn_id, char *frame);
void srv_push_close(srv_core *c, srv_conn *conn, int code, const char *reason);
/* Send an event (already stored or lock-only) to hh's READY connections. */
void srv_broadcast_event(srv_core *c, const char *hh, const char *type, const char *entity_id,
                         int64_t rev, const json_t *payload);
/* The same with the payload as its hp_json_dump() text (borrowed). */
void srv_broadcast_event_text(srv_core *c, const char *hh, const char *type,
                              const char *entity_id, int64_t rev, const char *text);
/* hp_msg_event(type, entity_id, rev, payload) from the text of payload
 * (hp_json_dump(), borrowed): a new frame, or NULL out of memory. */
char *srv_event_frame(const char *type, const char *entity_id, int64_t rev, const char *payload);
/* Error body with extra fields merged in (extra borrowed, may be NULL). */
char *srv_error_body(const char *code, const char *message, const json_t *extra);
void srv_refresh_reminder(srv_core *c);

/* srv_group.c: a write's transaction, group commit or not.  begin: 0 or
 * -1 (store error); commit: 0, or -1 after rolling the write back; abort
 * undoes the current write only (no-op outside a write). */
int srv_tx_begin(srv_core *c);
int srv_tx_commit(srv_core *c);
void srv_tx_abort(srv_core *c);
/* Where pushes go: the held box while a group is open. */
hp_outbox *srv_box(srv_core *c);

/* srv_idem.c: the Idempotency-Key of one request. */
#define SRV_IDEM_KEY_MAX 200
typedef struct srv_idem {
    const char *key;          /* borrowed from the request; NULL: nothing to store */
    char fp[65];              /* request fingerprint, hex SHA-256 */
    char request[224];        /* "METHOD path" for the 422 message */
} srv_idem;
/* Looks the request's key up.  0: go on (out->key set when the result must
 * be stored); 1: answer now with *status and (*body malloc'd, may be NULL:
 * then msg is the error message); -1: store trouble (*status 503, msg).
 * parsed: q's body as parsed with JSON_REJECT_DUPLICATES when that
 * succeeded (borrowed), else NULL (then the body is parsed here). */
int srv_idem_check(srv_core *c, const srv_http_req *q, const json_t *parsed, const char *method,
                   const char *path, const hp_claims *cl, srv_idem *out, int *status, char **body,
                   char *msg, size_t msglen);
/* Stores a 2xx result for out->key in the open transaction (0 when no key). */
int srv_idem_store(srv_core *c, const srv_idem *id, const hp_claims *cl, int status,
                   const char *body);
/* Frees c's digest (srv_free). */
void srv_idem_free(srv_core *c);

/* srv_lock.c (CF-1) */
/* Take or refresh; 0 ok (*out set), 1 held by another user (*out = theirs),
 * 2 the user holds locks_per_user locks already (*out NULL), -1 no memory. */
int srv_lock_take(srv_core *c, const char *hh, const char *id, const char *user,
                  const char *dev, srv_lock **out);
/* Release hh/id if user holds it; 1 released, 0 nothing to do, -1 other holder.
 * dev (the acting device, "" or NULL when none) is for the log line. */
int srv_lock_release(srv_core *c, const char *hh, const char *id, const char *user,
                     const char *dev);
void srv_lock_refresh_list(srv_core *c, const char *hh, const char *user, const char *dev,
                           const json_t *ids);
void srv_lock_expire(srv_core *c);
int64_t srv_lock_next_deadline(const srv_core *c);
void srv_lock_free_all(srv_core *c);
json_t *srv_lock_json(const srv_lock *l);

/* srv_remind.c */
void srv_remind_tick(srv_core *c);

/* srv_faults.c */
/* First live fault of kind matching who (NULL: only unscoped faults;
 * scoped_only: only scoped ones) and the filters; NULL when none. */
srv_afault *srv_fault_match(srv_core *c, int kind, const srv_who *who, int scoped_only,
                            const char *method, const char *path, const char *task);
/* One use of f (freed when none is left); what and who (NULL: before the
 * token was checked) go to the log line. */
void srv_fault_use(srv_core *c, srv_afault *f, const char *what, const srv_who *who);
void srv_faults_free(srv_core *c);
json_t *srv_afault_json(const srv_core *c, const srv_afault *f);

/* srv_conns.c: the connection table.  add: links k (id and state set by
 * the caller; k owned by the table until remove) into every index under
 * user and hh (copied once per name; k->user and k->hh then point at the
 * copies) and reserves its timer slot; 0, or -1 when out of memory
 * (nothing changed).  closing: k turned CLOSING (out of the heap and the counts;
 * idempotent).  remove: unlinks k (the caller frees it).  find: by id, O(1).
 * table_free: frees every record and index. */
int srv_conn_add(srv_core *c, srv_conn *k, const char *user, const char *hh);
void srv_conn_closing(srv_core *c, srv_conn *k);
void srv_conn_remove(srv_core *c, srv_conn *k);
srv_conn *srv_conn_find(const srv_core *c, uint64_t id);
void srv_conn_table_free(srv_core *c);
/* Connections of user not CLOSING (any household). */
int srv_conn_user_live(const srv_core *c, const char *user);
/* hh's first connection in open order (then ->hh_next), NULL when none. */
srv_conn *srv_conn_hh_first(const srv_core *c, const char *hh);

/* srv_stream.c */
void srv_stream_tick(srv_core *c);
int64_t srv_stream_next_deadline(const srv_core *c);
/* k's deadlines or state changed: its heap entry follows (removed when
 * CLOSING).  Every change of state, last_rx_ms or next_hb_ms outside
 * srv_stream.c calls it. */
void srv_conn_rearm(srv_core *c, srv_conn *k);
void srv_conn_free_all(srv_core *c);
/* Percent-decoded value of name in a raw query string (malloc'd), "" for a
 * bare name, NULL when absent. */
char *srv_query_get(const char *query, const char *name);

#endif

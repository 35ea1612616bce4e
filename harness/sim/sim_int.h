/*
 * sim_int.h - what the simulator's files share (internal to harness/sim/;
 * sim.h is the contract the rest of the harness uses).
 *
 * The world (sim_world, sim.h) is split by stage:
 *   sim_world.c   creating and freeing a world, minting tokens, the log sink,
 *                 history and trace records
 *   sim_net.c     the event heap, links (latency, FIFO, drop rules), the
 *                 connection and pending-request tables
 *   sim_frame.c   a frame's kind and entity id for drop rules and histories
 *   sim_drain.c   the cores' outboxes turned into events on the links and
 *                 into trace / history records
 *   sim_loop.c    delivering events to the cores; the loop (sim_run)
 *   sim_action.c  the scenario's actions (connect, offline, crash, ...)
 *
 * Ownership: an event (sim_ev) owns its data (malloc'd) and one reference to
 * its trace entry; sim_ev_clear() releases both.  The heap owns the events
 * pushed into it (copied in, copied out by sim_heap_pop()).  Trace entries
 * and history records belong to the arrays they were appended to; the
 * functions below that return them hand back borrowed pointers.
 */
#ifndef SIM_INT_H
#define SIM_INT_H

#include "sim.h"

enum ev_kind {
    EV_SRV_HTTP = 1,
    EV_CLI_HTTP_RESP,
    EV_CLI_HTTP_FAIL,
    EV_SRV_WS_OPEN,
    EV_CLI_WS_OPENED,
    EV_CLI_WS_REFUSED,
    EV_CLI_CONNECT_TIMEOUT,
    EV_SRV_WS_MSG,
    EV_CLI_WS_MSG,
    EV_SRV_WS_CLOSED,
    EV_CLI_WS_CLOSED
};

struct sim_ev {
    int64_t t;
    uint64_t seq;
    int kind;
    int ci;
    unsigned gen;       /* client generation (client-bound) or server generation */
    unsigned epoch;     /* link epoch at send; UINT32_MAX = not over the link */
    uint64_t id;        /* pending index / conn index */
    int status, code, retry_after;
    char *data;
    size_t len;
    json_t *tr;         /* trace entry to mark lost (own reference) */
    int reply;          /* the answer to tr's request: "reply_*" keys */
};

#define LOCAL_EPOCH 0xFFFFFFFFu

/* ---- sim_net.c -------------------------------------------------------- */

/* The heap ordered by (t, seq): push copies *e in (and stamps seq), pop
 * copies the earliest out; the caller then owns it. */
void sim_heap_push(sim_world *w, sim_ev *e);
void sim_heap_pop(sim_world *w, sim_ev *out);
/* Frees e's data and drops its trace reference. */
void sim_ev_clear(sim_ev *e);
int sim_link_usable(const sim_client *c);
/* Schedule e over client ci's link in direction up (client->server) or
 * down; kind is the message's kind for drop rules.  Returns 0 when
 * scheduled, -1 when lost now (e is cleared, its trace entry marked). */
int sim_send_link(sim_world *w, int ci, int up, sim_ev *e, const char *kind);
/* sim_drain.c: trace the pending request pi of client ci and send it. */
void sim_http_out(sim_world *w, int ci, uint64_t pi, const char *path);
/* Schedule e at time t, not over a link (never lost). */
void sim_schedule_local(sim_world *w, int64_t t, sim_ev *e);
/* Connection / pending tables: entries live in w's arrays, which may move
 * on the next _new: keep indexes, not pointers, across calls. */
sim_conn *sim_conn_new(sim_world *w, int ci, uint64_t cli_id);
sim_conn *sim_conn_by_cli(sim_world *w, int ci, uint64_t cli_id);
uint64_t sim_conn_index(sim_world *w, sim_conn *k);
sim_pending *sim_pend_new(sim_world *w);
/* An HTTP body as JSON (null when empty, a string when not JSON); new
 * reference. */
json_t *sim_body_json(const char *body, size_t len);

/* ---- sim_frame.c ------------------------------------------------------ */

/* A frame's "type" (or "event_type") into kind ("?" when unknown) and its
 * "entity_id" into entity (may be NULL), by a full parse. */
void sim_frame_kind(const char *data, size_t len, char *kind, size_t klen, char *entity,
                    size_t elen);
/* The same by a scan of the top-level keys; -1 when the scan cannot
 * decide (the caller then uses sim_frame_kind). */
int sim_frame_scan(const char *data, size_t len, char *kind, size_t klen, char *entity,
                   size_t elen);
/* 1 when data is certainly a JSON object that json_loadb() accepts and
 * that holds only objects, arrays and ASCII strings without escapes (then
 * sim_frame_scan() answers as sim_frame_kind() would); 0 when it cannot
 * tell. */
int sim_frame_plain(const char *data, size_t len);

/* ---- sim_world.c ------------------------------------------------------ */

const char *sim_actor_of(sim_world *w, int ci);
/* The texts every trace entry repeats, made once per world by sim_new
 * (w->jk): looking them up by sim_str() per entry cost ~5 M instructions
 * a suite run.  The names are those of sim_k_text in sim_world.c. */
typedef enum sim_k {
    SIM_K_WS, SIM_K_HTTP, SIM_K_LOG, SIM_K_NOTIFY, SIM_K_EVENT, SIM_K_OBSERVE, SIM_K_STEP,
    SIM_K_ASSERT, SIM_K_SERVER, SIM_K_HARNESS, SIM_K_DEBUG, SIM_K_INFO, SIM_K_WARNING,
    SIM_K_ERROR, SIM_K_N
} sim_k;
/* A new reference to text k (NULL only if the world could not make it). */
static inline json_t *sim_k_j(sim_world *w, sim_k k)
{
    return json_incref(w->jk[k]);
}
/* A new reference to the name of actor ci: client ci's, "server" for -1. */
static inline json_t *sim_name(sim_world *w, int ci)
{
    return json_incref(ci < 0 ? w->jk[SIM_K_SERVER] : w->cl[ci].jname);
}
/* sim_trace() with the actor's name (a new reference, taken over) and the
 * type as sim_k. */
json_t *sim_trace_k(sim_world *w, json_t *actor, sim_k type);
/* json_string(s) for the texts that repeat in every record (actor names,
 * record types, frame kinds, log levels and messages): one value per world
 * and text, shared by reference (the harness never changes a string value
 * in place), so a record costs no allocation for them.  A new reference;
 * NULL when s is not UTF-8, as json_string(). */
json_t *sim_str(sim_world *w, const char *s);
/* json_string(s), with no UTF-8 check for ASCII text (the check costs
 * more than the copy); NULL for NULL or bad UTF-8, as json_string(). */
json_t *sim_text(const char *s);
/* Opens client c's store (its file or ":memory:", its key or the other
 * one) into c->store; 0, or -1 with err. */
int sim_open_store(sim_world *w, sim_client *c, char *err, size_t errlen);
/* Sets w->error once (the first error wins). */
void sim_set_error(sim_world *w, const char *fmt, const char *a);
/* History records of client ci: connection states and frames (tr: the
 * frame's trace entry, referenced by the record; lost: whether tr has
 * "lost" now; data: tr's "data" text or NULL, given by the caller, who
 * has both at hand). */
void sim_conn_record(sim_world *w, int ci, const char *kind, int code, const char *by);
void sim_frame_record(sim_world *w, int ci, int from_server, const char *kind,
                      const char *entity, json_t *tr, int lost, const char *data);

/* ---- sim_drain.c / sim_loop.c ----------------------------------------- */

void sim_drain_server(sim_world *w);
/* Hands one event to its receiver (or marks it lost); e stays the
 * caller's. */
void sim_deliver(sim_world *w, sim_ev *e);

#endif

/*
 * sim.h - the discrete-event world the scenario engine drives (internal).
 *
 * One server core and N client cores, a virtual clock in epoch ms, and a
 * simulated network: one link per client with its own latency, online /
 * link state and drop rules.  Everything that crosses a link is an event
 * ordered by (time, sequence number); core timers are ticks at the cores'
 * next deadlines.  Same scenario + same seed => same trace, byte for byte.
 *
 * Histories (what expectations look at) are JSON arrays of records that
 * carry "t" (virtual ms) and "n" (a global record counter, for marks);
 * the log history is C records with the same t and n (chk_rec.h).
 */
#ifndef SIM_H
#define SIM_H

#include <stdint.h>
#include <jansson.h>
#include "scn_internal.h"
#include "hp_env.h"
#include "hp_log.h"
#include "srv_core.h"
#include "cli_core.h"
#include "cli_store.h"
#include "chk_rec.h"

/* json_object_set_new_nocheck / json_object_set_nocheck for a literal ASCII
 * key, its length known at compile time: a simulated suite run sets some
 * 120,000 keys, and strlen (or the checked variants' UTF-8 scan) of a
 * literal was ~30 instructions a key.  Same object, same key order. */
#define SIM_SET(o, k, v) json_object_setn_new_nocheck((o), "" k "", sizeof(k) - 1, (v))
#define SIM_SET_REF(o, k, v) json_object_setn_nocheck((o), "" k "", sizeof(k) - 1, (v))

#define SIM_MAX_DROPS 32
#define SIM_CONNECT_TIMEOUT_MS 10000
#define SIM_SECRET "hx-sim-secret-7f3a9c1e5b2d4068"

typedef struct sim_drop {
    int from_server;            /* 1: server -> client, 0: client -> server */
    char message[24];           /* HEARTBEAT, TASK_UPDATED, request, response, any ... */
    int remaining;
} sim_drop;

/* A record of a client's `frames` history: what sim_frame_record() was
 * given, as C; its JSON form (the matcher's shape, chk_history.h) is made
 * only when something reads it (sim_frames_json). */
typedef struct sim_frame_rec {
    int64_t t;                  /* virtual epoch ms */
    uint64_t n;                 /* the world's record counter */
    const char *kind;           /* the frame's type ("?" unknown): the world's arena */
    const char *entity;         /* its entity_id: the arena; NULL or "" when none */
    json_t *tr;                 /* its trace entry (own reference): "lost" may come later */
    long long revision;         /* when has_revision */
    unsigned char from_server, lost, has_revision, raw;
} sim_frame_rec;

/* A record of a client's connection states: kind "attempt" | "loss" |
 * "reset" | "ready" (static text); a loss has code and by ("client",
 * "server", "network": static text), others by NULL. */
typedef struct sim_conn_rec {
    int64_t t;
    uint64_t n;
    const char *kind, *by;
    int code;
} sim_conn_rec;

typedef struct sim_client {
    const scn_client_spec *spec;
    int idx;
    hp_env env;
    hp_rng rng;
    cli_store *store;
    char *store_path;           /* NULL: ":memory:" */
    uint8_t key[32], other_key[32];
    int key_other;              /* store opened with the wrong key */
    cli_core *core;
    int started;                /* `connect` happened (restart connects again) */
    int running;                /* core alive (not crashed) */
    unsigned gen;               /* core generation: events for a dead core are dropped */
    char *token;                /* current token (NULL: none) */
    /* link */
    int online, link_up;
    unsigned epoch;             /* bumped whenever the link becomes unusable */
    int64_t latency_ms;
    int64_t last_up_t, last_down_t; /* FIFO per direction */
    sim_drop drops[SIM_MAX_DROPS];
    int ndrops;
    /* histories */
    json_t *events, *notes, *closes, *queue_obs;
    sim_frame_rec *frames;      /* C records (sim_frame_rec) */
    size_t nframes, capframes;
    json_t *frames_j;           /* JSON of frames[0 .. its size) (sim_frames_json) */
    sim_conn_rec *conn;
    size_t nconn, capconn;
    int max_queue;              /* largest queue length observed */
    int64_t max_cache_bytes;
    int conflicts_received;     /* 409 responses delivered to the app */
    json_t *jname;              /* sim_str(spec->name), own reference (sim_name) */
} sim_client;

typedef struct sim_conn {
    int ci;
    uint64_t cli_id;
    unsigned cli_gen, srv_gen;
    int cli_state;              /* 0 connecting, 1 open, 2 closed */
    int srv_open;
} sim_conn;

typedef struct sim_pending {
    int ci;
    uint64_t cli_id;
    unsigned gen;
    int aborted, answered;
    int raw;                    /* send_request: answered to the scenario, not the app */
    char *method, *path, *query, *auth, *idem_key, *body;
    size_t body_len;
    json_t *journal;            /* borrowed from w->journal once handled */
    json_t *trace;              /* borrowed from the trace */
} sim_pending;

typedef struct sim_ev sim_ev;

typedef struct sim_world {
    const scn_scenario *s;
    hp_policy policy;
    int64_t now;
    uint64_t seq, nrec;
    sim_ev *heap;
    size_t nheap, capheap;
    hp_logger logger;
    /* server */
    hp_env senv;
    hp_rng srng;
    srv_store *sstore;
    srv_core *srv;
    hp_jwt_memo *jwt_memo;  /* verified tokens: the simulator's server only */
    int srv_up;
    unsigned srv_gen;
    /* clients */
    sim_client *cl;
    size_t ncl;
    sim_conn *conns;
    size_t nconns, capconns;
    sim_pending *pend;
    size_t npend, cappend;
    /* records */
    json_t *trace;              /* borrowed: the result's trace */
    json_t *journal;            /* server HTTP journal */
    chk_logs logs;              /* every log record (C records, chk_rec.h) */
    struct sim_arena *arena;    /* the log records' strings (sim_world.c) */
    json_t *edits;              /* user edits accepted or refused */
    json_t *tokens;             /* every token minted (A-4 check) */
    uint64_t messages;
    int same_instant;           /* loop guard */
    char *error;                /* runtime error (malloc'd) */
    json_t *strs[128];          /* sim_str(): one string value per text */
    struct {                    /* sim_str()'s memo by address (borrowed) */
        const char *p, *text;
        json_t *v;
    } str_memo[32];
    json_t *t_trace, *t_rec;    /* the instant's "t" values (sim_world.c) */
    json_t *jk[14];             /* sim_str() of the SIM_K_* texts (sim_int.h), own references */
} sim_world;

sim_world *sim_new(const scn_scenario *s, uint64_t seed, json_t *trace, char *err, size_t errlen);
void sim_free(sim_world *w);

/* Runs the world until virtual time `until`.  When cond is given it is
 * checked whenever time is about to advance; returns 1 as soon as it holds
 * (time stays at that instant), 0 when `until` is reached, -1 on a runtime
 * error (w->error). */
int sim_run(sim_world *w, int64_t until, int (*cond)(void *ud), void *ud);

/* A trace entry with "t" and "actor", type set; appended, borrowed back. */
json_t *sim_trace(sim_world *w, const char *actor, const char *type);
/* A history record {"t","n"} appended to arr, borrowed back. */
json_t *sim_record(sim_world *w, json_t *arr);

/* A log record {t, n, actor, level, msg, fields, line} appended to the
 * log history (the log sink's; tests inject records with it).  The
 * strings are copied; text that is not UTF-8 reads "" (as a JSON record's
 * absent key did). */
void sim_log_record(sim_world *w, const char *actor, int level, const char *msg,
                    const char *fields, const char *line);

/* Client ci's `frames` history in the matcher's shape (chk_history.h):
 * {t, n, from, type, entity_id, lost, revision, _trace, raw}, made from
 * the C records not made yet; borrowed (the world keeps it). */
json_t *sim_frames_json(sim_world *w, int ci);

/* ---- actions (scn_run.c calls these; 0 or -1 with err) ---------------- */
int sim_client_connect(sim_world *w, int ci, char *err, size_t errlen);
void sim_client_set_online(sim_world *w, int ci, int online);
void sim_client_set_link(sim_world *w, int ci, int up);
void sim_client_crash(sim_world *w, int ci);
int sim_client_restart(sim_world *w, int ci, int key_other, char *err, size_t errlen);
void sim_client_new_token(sim_world *w, int ci, int64_t ttl_ms);
/* Put a raw text frame on client ci's open stream, as if its app had sent
 * it (takes text, malloc'd).  -1 with err when the client has no open
 * stream. */
int sim_client_send_frame(sim_world *w, int ci, char *text, size_t len, char *err, size_t errlen);
/* send_request: one raw HTTP request on ci's link with ci's token, behind
 * the app's back (req: {method, path (query after '?'), idem_key, body});
 * the answer is recorded (requests) and never reaches the app. */
int sim_client_send_request(sim_world *w, int ci, const json_t *req, char *err, size_t errlen);
void sim_server_crash(sim_world *w);
void sim_server_start(sim_world *w);
void sim_server_restart(sim_world *w);
void sim_drain(sim_world *w);
/* Mint a token for client ci per kind; malloc'd or NULL (kind none). */
char *sim_mint(sim_world *w, int ci, scn_token_kind kind, int64_t ttl_ms);
/* Sample queue / cache sizes for the bound invariants. */
void sim_sample(sim_world *w);

#endif

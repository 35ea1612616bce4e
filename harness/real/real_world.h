/*
 * real_world.h - the state of one real-mode run, shared by its parts:
 *
 *   real_run.c     the owner: processes, actions, the step loop, invariants
 *   real_expect.c  expectations evaluated on the records the programs wrote
 *
 * Ownership: real_run.c allocates the world and every JSON array in it and
 * frees them at the end of the run; real_expect.c only reads them (and
 * asks a client for `status` / `cached` through rl_client_cmd).
 */
#ifndef HARNESS_REAL_WORLD_H
#define HARNESS_REAL_WORLD_H

#include <limits.h>
#include <jansson.h>

#include "harness.h"
#include "real_int.h"
#include "scn_internal.h"

#define RL_MAX_CLIENTS 32
#define RL_MAX_ITEMS 64 /* assertions in one step */
/* Least bound of the latency checks (HELLO -> READY, request -> response):
 * 10 s x time scale, but never under this on a loaded 2-core machine. */
#define RL_LATENCY_FLOOR_MS 1500.0
/* Least wall tolerance of reconnect_delays in real mode: process wake-ups
 * and pipes on a loaded machine; 3 x the jitter measured in the run is
 * added. */
#define RL_TIMING_FLOOR_MS 60.0
#define RL_DEFAULT_TTL_MS (30LL * 24 * 3600 * 1000)

typedef struct rl_client {
    const scn_client_spec *spec;
    char db[PATH_MAX], key[PATH_MAX], key_other[PATH_MAX];
    int other_key;
    rl_proc p;
    int running, offline;
    json_t *events, *notes, *closed, *http, *logs, *answers;
    json_t *attempts;          /* one {t} per connect attempt ("connecting" line) */
    json_t *frames;            /* --frames lines: every WebSocket message on its link */
    int max_queue;
    int ready;                 /* the last connection line was "ready" */
    char state[24];            /* the last `connection` line's state ("" before any) */
    char url[300];             /* where it connects: its proxy port, or the server */
    json_t *wire_frames;       /* from the proxy's journal: what crossed the wire */
    json_t *wire_http;         /* request/response pairs from the journal */
    json_t *wire_closes;       /* close frames seen by the proxy: {t, code, by} */
    json_t *conn_hist;         /* WS-6: {t, kind: loss|attempt|reset} (reconnect_delays);
                                  with the proxy, resets carry the journal's seq then */
    json_t *wire_ws6;          /* WS-6 from the journal: {t, seq, kind: attempt|loss} per
                                  stream connection (real_proxy.c) */
    json_t *wire_streams;      /* conn id -> 1 (stream open) | 2 (its loss recorded) */
    int unstarted;             /* running with --no-start: `connect` sends `start` */
    char *token;
} rl_client;

typedef struct rl_world {
    const scn_scenario *s;
    const scn_run_opts *o;
    double F, slack, settle, t0;
    int64_t vnow;
    /* Schedule anchor: virtual instant anchor_v happened at wall anchor_t.
     * Waits sleep until anchor_t + (vnow - anchor_v) * F, so the time the
     * harness spends on commands does not stretch the scenario. */
    double anchor_t;
    int64_t anchor_v;
    int slow_action;           /* a process started/stopped in this step */
    char dir[512], bin_server[PATH_MAX + 64], bin_client[PATH_MAX + 64];
    char url[256];
    char secret[80];
    const char *secret_used;
    char hh_suffix[24];        /* foreign server: households made unique per run */
    int own, port;
    rl_proc srv;
    int srv_running;
    json_t *srv_logs, *srv_requests, *marks, *tokens, *trace;
    json_t *times;             /* remind_at as written -> as sent (wall clock) */
    size_t nc;
    rl_client c[RL_MAX_CLIENTS];
    char *runtime_error;
    char *policy;              /* --policy JSON for both programs; NULL: seed */
    /* hp-fault-proxy (real_proxy.c): between every client and the server */
    char bin_proxy[PATH_MAX + 64];
    rl_proc proxy;
    int proxy_running;
    char proxy_ctl[96];        /* http://127.0.0.1:PORT of its control API */
    double epoch_off;          /* epoch ms - rl_now_ms(): the journal's clock */
    long long proxy_seq;       /* last journal entry read */
    json_t *proxy_pending;     /* requests waiting for their response */
    json_t *mark_seqs;         /* mark -> the proxy's last journal seq at that instant */
    long long from_seq;        /* the window of the expectation being evaluated, in
                                * journal seqs (-1: none): exact where wall ms are not */
    double jitter_ms;          /* the worst lateness of a wait seen in this run (timing
                                * tolerances grow with it, and it is reported) */
} rl_world;

/* The outcome of one expectation (strings malloc'd; rl_out_clear frees). */
typedef struct rl_out {
    int ok;
    const scn_node *at;
    char *text, *expected, *actual;
} rl_out;

/* Wall ms since the scenario started. */
double rl_wt(rl_world *w);
/* Sends one driver command to a client and waits for its answer (*ans, new
 * reference).  0, or -1 when the client did not answer. */
int rl_client_cmd(rl_world *w, rl_client *c, json_t *cmd, json_t **ans);
/* A token for the client spec, valid ttl_ms from now (malloc'd). */
char *rl_mint(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms);
/* remind_at values as written -> as sent on the wall clock, in place. */
void rl_xlate_times(rl_world *w, json_t *v);
/* A command template filled: each {name} of vars (name, value, ..., NULL)
 * becomes the shell-quoted value (malloc'd, NULL on out of memory). */
char *rl_template(const char *tpl, const char *const *vars);

void rl_out_clear(rl_out *o);
int rl_level_rank(const char *level);
rl_client *rl_client_by_name(rl_world *w, const char *name);
/* One assertion of a step: an actor's key in an expect / wait_until
 * mapping, or one expect_log item.  Verdicts are per assertion (SPEC §7):
 * an assertion this target cannot show is `unobservable` (why says why),
 * never evaluated, and every other assertion of the step still counts. */
typedef struct rl_item {
    const char *actor;          /* "server", a client, or NULL (log: every actor) */
    const char *key;            /* "received", "requests", ... or "log" */
    const scn_node *map;        /* the actor's mapping (expect), NULL for a log item */
    size_t index;               /* the key's index in map */
    const scn_node *log;        /* expect_log item, NULL otherwise */
    const scn_node *node;       /* the value (line numbers) */
    const char *why;            /* non-NULL: unobservable, and why */
    int ok;                     /* last evaluation */
} rl_item;

/* The assertions of the expect / wait_until mapping (or expect_log value)
 * e into items (at most max); returns how many. */
int rl_items(rl_world *w, const scn_node *e, int is_log, rl_item *items, int max);
/* Evaluates one observable assertion now: 1 when it holds, else 0 with o
 * describing the failure. */
int rl_eval_item(rl_world *w, const scn_node *e, rl_item *x, rl_out *o);
/* Why an assertion cannot be observed against this target, or NULL. */
const char *rl_unobservable(rl_world *w, const char *actor, const char *key, const scn_node *v);

/* ---- what differs in real mode: ONE table (real_lint.c) -------------------
 * Used by the skip decision (real_skip.c), the unobservable verdicts
 * (rl_unobservable), `hp-harness lint --mode real` (scn_real_lint) and
 * documented in docs/REAL_MODE.md (a test checks each name is there). */
typedef enum rl_diff_id {
    RL_D_SERVER_ACTION_FOREIGN, RL_D_RETRY_AFTER, RL_D_NET_NO_PROXY, RL_D_DROP_REQUEST,
    RL_D_POLICY_FOREIGN, RL_D_SIM_ONLY, RL_D_TOKEN_TTL_CMD, RL_D_MAX_WALL,
    RL_D_WAIT_STRETCHED, RL_D_CLOSED_BY, RL_D_COUNT_ZERO,
    RL_D_SERVER_LOG_FOREIGN, RL_D_SERVER_STATE_FOREIGN, RL_D_BODIES_FOREIGN_CLIENT,
    RL_D_FRAMES_NO_PROXY, RL_D_REQUESTS_NEITHER, RL_D_FOREIGN_LOG, RL_D_FOREIGN_LEVEL2,
    RL_D_INVARIANTS, RL_D_SEND_REQUEST,
    RL_DIFF_COUNT
} rl_diff_id;
typedef struct rl_diff {
    const char *name;   /* what, as docs/REAL_MODE.md names it */
    const char *effect; /* "skipped", "unobservable" or "behaves differently" */
    const char *why;
} rl_diff;
extern const rl_diff rl_diffs[RL_DIFF_COUNT];
/* Policy keys a server applies: a foreign server runs its own (real_skip.c). */
extern const char *const rl_server_policy_keys[];
/* The rl_diff_id of an assertion this target cannot show, or -1. */
int rl_unobservable_for(int own, int foreign_client, int proxy, const char *actor,
                        const char *key, const scn_node *v);
/* A requests selector that asks for bodies (only the wire shows them). */
int rl_wants_bodies(const scn_node *v);
/* Calls fn for every place of s that differs in real mode with options o
 * (at: the node; detail: e.g. the action's name, or NULL); returns the
 * count.  The one walk behind scn_real_lint and scn_real_unsupported. */
typedef void (*rl_diff_fn)(void *ud, rl_diff_id id, const scn_node *at, const char *detail);
int rl_diff_walk(const scn_scenario *s, const scn_run_opts *o, rl_diff_fn fn, void *ud);

/* real_run.c: a runtime error (the run stops; w->runtime_error says why). -1. */
int rl_fail(rl_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* real_run.c: read the programs' output for ms (0: what is there now). */
void rl_pump(rl_world *w, double ms);
/* real_run.c: one trace entry (extra is taken). */
void rl_trace_add(rl_world *w, const char *actor, const char *type, json_t *extra);

/* real_records.c: line handlers for rl_read_lines() (ud: the world, or an
 * rl_cb for a client's lines). */
typedef struct rl_cb {
    rl_world *w;
    rl_client *c;
} rl_cb;
void rl_on_server_err(void *ud, const char *line);
void rl_on_client_err(void *ud, const char *line);
void rl_on_client_out(void *ud, const char *line);
/* WS-6: c's connection starts afresh (start, online, offline, a new
 * token): its next attempt is immediate, not a retry.  Recorded before the
 * command that causes it; with the proxy, with the journal's seq as of now,
 * so the wire's attempts order against it exactly (the journal's clock is
 * whole ms). */
void rl_ws6_reset(rl_world *w, rl_client *c);
void rl_on_proxy_err(void *ud, const char *line);
/* real_token.c: a token for a scenario client whose lifetime the scenario
 * chose, minted on a whole second of the scaled schedule. */
char *rl_mint_for_client(rl_world *w, const scn_client_spec *sp, int64_t ttl_ms);
/* real_token.c: sh -c cmd; its first output line into out (when out). The
 * exit status, or -1 when it could not run. */
int rl_run_shell(const char *cmd, char *out, size_t outlen);
/* real_token.c: a foreign server's fresh names read back as the scenario's
 * (the run's suffix removed from every string of v, in place). */
void rl_unsuffix(rl_world *w, json_t *v);
/* real_check.c: the run's invariants into r->checks; the first failure
 * (malloc'd) or NULL. */
char *rl_invariants(rl_world *w, scn_result *r);

/* real_run.c: the programs' processes. */
int rl_client_start(rl_world *w, rl_client *c, int deferred);
void rl_client_kill(rl_world *w, rl_client *c, int sig);
int rl_server_start(rl_world *w);
void rl_server_stop(rl_world *w, int sig);
/* real_actions.c: one client / server action (a JSON action); 0 or -1 with
 * a runtime error. */
int rl_client_action(rl_world *w, rl_client *c, json_t *a);
int rl_server_action(rl_world *w, json_t *a);

/* real_proxy.c (see its opening comment). */
int rl_proxy_wanted(rl_world *w);
int rl_proxy_start(rl_world *w);
int rl_proxy_add_client(rl_world *w, rl_client *c);
int rl_proxy_partition(rl_world *w, rl_client *c, int on);
int rl_proxy_fault(rl_world *w, rl_client *c, json_t *fault); /* takes fault */
void rl_proxy_sync(rl_world *w);
void rl_proxy_stop(rl_world *w);

#endif

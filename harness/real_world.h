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

void rl_out_clear(rl_out *o);
int rl_level_rank(const char *level);
rl_client *rl_client_by_name(rl_world *w, const char *name);
/* One evaluation of an expect / wait_until / expect_log mapping: 1 when it
 * holds, else 0 with o describing the first failure. */
int rl_eval_expect(rl_world *w, const scn_node *e, int is_log, rl_out *o);

#endif

/*
 * explore.h - `hp-harness explore`: random schedules, run in the
 * simulator, checked, and the failing ones shrunk to a readable scenario.
 *
 * A schedule is a list of steps for N clients (alice, bob, carol, ...),
 * generated from a 64-bit seed: edits of random fields, deletes, locks,
 * offline/online, link faults, drops, latency, token expiry, client and
 * server crashes and restarts, forced 409s, failed requests, and waits
 * across every policy timer.  The generator tracks the world's state so a
 * schedule is always a valid scenario (no edit while the app is crashed, no
 * second connect).  To a schedule the renderer adds a healing epilogue
 * (everything back up, a fresh token, 10 virtual minutes) and renders it
 * as scenario YAML (docs/SCENARIOS.md); the engine runs that text exactly
 * as `hp-harness run` would, with seed 1.
 *
 * Checked on every run (exp_run.c):
 *   - the scenario's own result: the engine's invariants (edits_kept,
 *     entity_order, conflicts_logged, queue/cache bounds, no token in a log)
 *     and any step error or runtime error of the simulator;
 *   - after the epilogue (scn_run_opts.after_steps): convergence (every
 *     running client's cache equals the server's tasks, except the entities
 *     it still has pending: queued, dead-lettered or waiting for a conflict
 *     choice) and no write applied twice (two 2xx answers to one
 *     Idempotency-Key that name different revisions);
 *   - the user's --property, an expectation appended as the last step.
 * A failure has a signature (e.g. "invariant conflicts_logged",
 * "converge bob", "property"); the shrinker keeps a candidate only when it
 * fails with the same signature.
 *
 * Shrinking (exp_shrink.c): delta debugging over the steps (chunks, then
 * single steps), then shorter waits (the policy timers first), merged
 * waits, fewer edit fields, fewer clients.  The result is written as a
 * scenario whose comment header carries the seed, the schedule number, the
 * original length and the failure; for a convergence failure the last step
 * is an `expect` of the cached values the client should have had (the
 * server's), so `hp-harness run FILE` fails the same way.  The file is run
 * once more through the engine before exp_main() reports success.
 *
 * Ownership: exp_sched values own their steps (exp_sched_free); rendered
 * text is malloc'd.  Runs share nothing (threads with --jobs).
 */
#ifndef EXPLORE_H
#define EXPLORE_H

#include <stddef.h>
#include <stdint.h>

#define EXP_MAX_CLIENTS 8
#define EXP_MAX_STEPS 10000
#define EXP_IDS 4                /* task ids t1..t4: few, so writes collide */

typedef enum exp_op {
    EXP_WAIT = 0,
    /* client actions */
    EXP_CONNECT, EXP_EDIT, EXP_DELETE, EXP_LOCK, EXP_UNLOCK, EXP_SYNC_NOW, EXP_OFFLINE,
    EXP_ONLINE, EXP_LINK_DOWN, EXP_LINK_UP, EXP_LATENCY, EXP_DROP, EXP_CRASH, EXP_RESTART,
    EXP_NEW_TOKEN,
    /* server actions */
    EXP_SRV_CRASH, EXP_SRV_START, EXP_SRV_RESTART, EXP_SRV_FORCE_CONFLICT, EXP_SRV_FAIL
} exp_op;

#define EXP_F_TITLE 1u
#define EXP_F_NOTES 2u
#define EXP_F_DONE 4u
#define EXP_F_ASSIGNEE 8u
#define EXP_F_DUE 16u
#define EXP_F_REMIND 32u

typedef struct exp_step {
    exp_op op;
    int ci;              /* client index; -1 for server actions and waits */
    int id;              /* task t<id> (edit, delete, lock, unlock, force_conflict) */
    unsigned fields;     /* EXP_F_* of an edit */
    int val;             /* value number of an edit (unique per schedule) */
    int64_t ms;          /* wait, latency, token ttl */
    int from_server;     /* drop direction */
    int msg;             /* drop message index, fail status index */
    int count;           /* drop / fail count */
} exp_step;

typedef struct exp_sched {
    uint64_t seed;       /* the run's --seed */
    uint64_t index;      /* schedule number under that seed */
    int nclients;
    exp_step *v;
    size_t n;
    size_t orig_n;       /* steps before shrinking */
} exp_sched;

/* Generate schedule `index` of `seed`: nsteps steps for nclients (1..8). */
void exp_generate(exp_sched *s, uint64_t seed, uint64_t index, int nclients, int nsteps);
void exp_sched_free(exp_sched *s);
int exp_sched_copy(exp_sched *dst, const exp_sched *src);
/* 1 when every step is possible in order (shrinking removes steps). */
int exp_valid(const exp_sched *s);

/* What the after_steps probe found (exp_run.c); strings malloc'd. */
typedef struct exp_outcome {
    int failed;
    char *signature;     /* "invariant edits_kept", "converge bob", ... */
    char *message;       /* the whole failure text */
    char *expect_yaml;   /* convergence: the `expect` step that shows it */
    double wall_ms;
    uint64_t messages;
} exp_outcome;
void exp_outcome_clear(exp_outcome *o);

const char *exp_client_name(int ci);
/* A duration in the language's units (250ms, 30s, 31m, 2m1s). */
void exp_duration(int64_t ms, char *out, size_t len);

/* Render as scenario YAML.  header: comment lines (may be NULL); extra:
 * steps appended after the epilogue (each "  - ..." line, may be NULL). */
char *exp_render(const exp_sched *s, const char *header, const char *extra);

/* Run once (text rendered with the probe expectation `property`, may be
 * NULL) and fill out.  Returns 0, or -1 when the text did not load (a bug
 * of the generator: out->message says why). */
int exp_run_once(const exp_sched *s, const char *property, exp_outcome *out);

/* Shrink a failing schedule in place, keeping signature `sig`; at most
 * max_runs runs.  Returns the number of runs made. */
int exp_shrink(exp_sched *s, const char *property, const char *sig, int max_runs, int verbose);

/* The subcommand, exp_main(), is declared in harness.h. */

#endif

/*
 * scn_run.h - shared between the step runner (scn_run.c), the expectation
 * evaluator (scn_expect*.c) and the invariant checks (chk_invariants.c).
 */
#ifndef SCN_RUN_H
#define SCN_RUN_H

#include "sim.h"

typedef struct scn_window {
    uint64_t n_min;   /* records with "n" >= n_min */
    int64_t t_min;    /* and "t" >= t_min (epoch ms) */
} scn_window;

/* The outcome of one expectation; strings malloc'd (NULL when passed). */
typedef struct scn_outcome {
    int ok;
    /* In (set by the caller): only ok is wanted, the failure texts may be
     * left NULL.  A wait_until polls its expectation at every instant and
     * only its last, failing evaluation is shown. */
    int quiet;
    const scn_node *at;     /* the node that failed (line for messages) */
    char *text;             /* what was checked, e.g. "alice.queue" */
    char *expected, *actual;
} scn_outcome;

void scn_outcome_clear(scn_outcome *o);

/* Evaluates the expectations of one actor (the mapping `asserts`) in
 * order; stops at the first failure.  Each evaluated expectation is passed
 * to `each` (may be NULL) for recording.  Returns 1 when all hold. */
typedef void (*scn_each_fn)(void *ud, const scn_outcome *o);
int scn_expect_actor(sim_world *w, const char *actor, const scn_node *asserts,
                     const scn_window *win, scn_each_fn each, void *ud, scn_outcome *fail);
/* The verdict alone of scn_expect_actor (no callback, no texts): 1 when
 * every expectation of `asserts` holds.  For polling (wait_until). */
int scn_expect_holds(sim_world *w, const char *actor, const scn_node *asserts,
                     const scn_window *win);

/* One log expectation (expect_log item, or a `log:` value with actor). */
int scn_expect_log(sim_world *w, const char *actor, const scn_node *m, const scn_window *win,
                   scn_outcome *out);

/* Frees the per-thread strings of failure messages (end of a run). */
void scn_expect_cleanup(void);

/* JSON subset match: every key of `exp` matches in `act` recursively;
 * arrays match element-wise with equal length; numbers by value. */
int scn_json_subset(const json_t *exp, const json_t *act);

/* Invariants after the run: appends to r->checks, returns the first
 * failure message (malloc'd) or NULL. */
char *chk_invariants(sim_world *w, scn_result *r, int healed);
/* The line of the step the first failed invariant points at (0: none),
 * its 0-based index in *step (-1: none). */
int chk_failed_line(const scn_result *r, int *step);

#endif

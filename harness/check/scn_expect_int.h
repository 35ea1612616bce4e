/*
 * scn_expect_int.h - what the expectation evaluator's two files share
 * (not a contract; scn_run.h is).
 *
 *   scn_expect.c        common helpers, the JSON subset, which records a
 *                       history (received, notified, requests, closed,
 *                       frames) or log expectation reads.
 *   chk_history.c       the matcher of both modes (chk_history.h).
 *   scn_expect_state.c  client and server state, scn_expect_actor().
 */
#ifndef SCN_EXPECT_INT_H
#define SCN_EXPECT_INT_H

#include <stddef.h>
#include <jansson.h>
#include "scn_run.h"
#include "chk_history.h"

/* Longest list a failure message shows before "... N more". */
#define SUMMARY_MAX 15

/* The string member k of o, "" when absent (borrowed). */
const char *scn__jstr(const json_t *o, const char *k);
/* A history expectation (val) on actor's history of kind k in the window. */
void scn__eval_history(sim_world *w, const char *actor, hist_kind k, const scn_node *val,
                       const scn_window *win, scn_outcome *o);

/* Drops the memos of quiet polls (scn_expect.c); scn_expect_cleanup()
 * calls it at the end of each run. */
void scn__memo_free(void);

#endif

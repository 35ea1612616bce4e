/*
 * chk_history.h - the one matcher of history and log expectations, for
 * the simulator (scn_expect*.c) and real mode (real_expect.c) alike.
 *
 * The language (docs/SCENARIOS.md §7.1): a word or a mapping means "count
 * the matching records" (default: at least one; count / at_least /
 * at_most), a list means "these, in order, others may come between",
 * {exactly: [...]} means "the whole history of the window, in order".
 * Failures say what was expected and what was there, in one text for both
 * modes.
 *
 * The matcher knows no world.  Each mode selects an actor's records and
 * hands them over in ONE shape (below); real mode maps what its programs
 * wrote into it at one point (real_expect.c).  Keys beyond these may be
 * present: a mapping expectation is a JSON subset of the record.
 *
 *   received  {event_type, entity_id, revision, payload, ...}
 *   notified  {type, entity_id, fields: [..], ...}  (fields: as a set)
 *   requests  {method, path (without the query), query ("" or absent),
 *              status (integer; absent or 0: no answer), from, idem_key}
 *   closed    {code, by: client|server|network (may be absent)}
 *   frames    {from: client|server, type, lost: true | _trace: {lost}}
 *   log       {actor, level (hp_log_level; -1: a level no program of ours
 *              writes), msg, fields (the text after msg), line}: C records
 *              (chk_logrec, chk_rec.h), built by both modes
 *
 * Every record may carry the window's keys (sim: n and t; real: t in wall
 * ms, or seq for what hp-fault-proxy saw).
 *
 * Where real mode differs, the difference is data in chk_opts, not a
 * second matcher: a source that does not record the query (our server's
 * request log, A-4) and expectation values that need translating to what
 * the real programs saw (remind_at on the wall clock, R-1).
 *
 * Ownership: records, nodes and windows are borrowed; the outcome's
 * strings are malloc'd and owned by the outcome (scn_outcome_clear).
 */
#ifndef CHK_HISTORY_H
#define CHK_HISTORY_H

#include <stddef.h>
#include <jansson.h>
#include "scn_run.h"
#include "chk_rec.h"

typedef enum hist_kind { H_RECEIVED, H_NOTIFIED, H_REQUESTS, H_CLOSED, H_FRAMES } hist_kind;

/* A record is in the window when, for each key set, its number there is
 * >= min (a missing key reads 0).  NULL window: every record. */
typedef struct chk_window {
    const char *key[2]; /* NULL: unused */
    double min[2];
} chk_window;

/* The request source does not record the query: a path pattern's
 * "?query" part is checked only against records that carry one. */
#define CHK_NO_QUERY 1u
/* Only the verdict is wanted (a poll): the outcome's failure texts are
 * left NULL, which spares summarizing the records at every poll. */
#define CHK_QUIET 2u

typedef struct chk_opts {
    unsigned flags; /* CHK_* */
    /* Applied to each expectation value (a JSON copy) before matching;
     * NULL: none. */
    void (*xlate)(void *ud, json_t *want);
    void *ud;
} chk_opts;

/* Compact, sorted JSON of j ("(nothing)" for NULL), malloc'd: how every
 * failure text of both modes shows a value. */
char *chk_dump(const json_t *j);
/* As chk_dump, in a per-thread ring of 8 (valid until 8 more calls; freed
 * by scn_expect_cleanup()): for use inside a format. */
const char *chk_jtxt(const json_t *j);

/* 1 when rec falls in win (NULL: always). */
int chk_in_window(const json_t *rec, const chk_window *win);

/* 1 when n matches the quantity of m (count / at_least / at_most; none:
 * at least 1); desc gets the wanted quantity in words (NULL: not made). */
int chk_quantity_ok(const scn_node *m, long n, char *desc, size_t dlen);

/* One expectation item compiled (its JSON and each key's comparison
 * decided once): what chk_history matches each record against, for
 * callers that match the same item again and again (a poll's memo,
 * scn_expect.c).  chk_matcher_new(k, item, opts): item is a word or a
 * mapping (its quantity keys are left out); opts may be NULL; owned by
 * the caller (chk_matcher_free).  chk_matcher_match: 1 when record rec
 * matches (flags: CHK_NO_QUERY or 0). */
typedef struct chk_matcher chk_matcher;
chk_matcher *chk_matcher_new(hist_kind k, const scn_node *item, const chk_opts *opts);
int chk_matcher_match(const chk_matcher *m, const json_t *rec, unsigned flags);
void chk_matcher_free(chk_matcher *m);

/* A history expectation val on recs (one actor's history of kind k) in
 * win; opts may be NULL.  o->ok and, on failure, o->expected / actual. */
void chk_history(hist_kind k, const json_t *recs, const scn_node *val, const chk_window *win,
                 const chk_opts *opts, scn_outcome *o);

/* One log expectation m (a mapping: actor, level, message, pattern and a
 * quantity) on log records recs (chk_rec.h) in win; actor (when m has
 * none; NULL: every actor) keeps the records of that actor.  Returns
 * o->ok. */
int chk_log(const chk_logs *recs, const char *actor, const scn_node *m, const chk_window *win,
            scn_outcome *o);

/* A count expectation: val is N (exactly N) or a quantity mapping; n is
 * what there was, what names it ("connect attempts"). */
void chk_count(const scn_node *val, long n, const char *what, scn_outcome *o);

/* queue / dead_letter / conflicts forms on the item array items: a number
 * (the length), a list of ids (idkey of each item, in order) or
 * {length, entities, items (JSON subset)}; want is that value as JSON. */
void chk_list_form(const json_t *want, const json_t *items, const char *idkey, scn_outcome *o);

#endif

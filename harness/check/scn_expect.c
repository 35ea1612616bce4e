/*
 * scn_expect.c - the simulator's side of history and log expectations:
 * which records of the world an expectation reads (the matching itself is
 * chk_history.c, shared with real mode), and the helpers the evaluator's
 * files share (scn_expect_int.h): outcomes, the JSON subset.
 * The client and server state expectations are scn_expect_state.c.
 *
 * Inputs: the world's recorded histories (sim_world) and a scenario's
 * expectation nodes.  Outputs: a scn_outcome per check; its strings are
 * malloc'd and owned by the outcome (scn_outcome_clear).
 */
#define _GNU_SOURCE
#include "scn_run.h"
#include "scn_expect_int.h"
#include "chk_history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scn_outcome_clear(scn_outcome *o)
{
    free(o->text);
    free(o->expected);
    free(o->actual);
    memset(o, 0, sizeof *o);
}

/* ---- JSON subset --------------------------------------------------------- */

int scn_json_subset(const json_t *exp, const json_t *act)
{
    if (json_is_null(exp))
        return !act || json_is_null(act);
    if (!act)
        return 0;
    if (json_is_object(exp)) {
        if (!json_is_object(act))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)exp, k, v)
        {
            if (!scn_json_subset(v, json_object_get(act, k)))
                return 0;
        }
        return 1;
    }
    if (json_is_array(exp)) {
        if (!json_is_array(act) || json_array_size(exp) != json_array_size(act))
            return 0;
        for (size_t i = 0; i < json_array_size(exp); i++)
            if (!scn_json_subset(json_array_get(exp, i), json_array_get(act, i)))
                return 0;
        return 1;
    }
    if (json_is_number(exp) && json_is_number(act))
        return json_number_value(exp) == json_number_value(act);
    return json_equal((json_t *)exp, (json_t *)act);
}

/* ---- histories ------------------------------------------------------------ */

/* A sim window as the matcher's (n: the world's event counter, t: virtual
 * epoch ms).  A bound every record meets (n >= 0, t >= INT64_MIN: no
 * `since`, no `within`) is left unset, so the matcher need not look. */
static chk_window chk_win(const scn_window *win)
{
    chk_window cw = {{win->n_min ? "n" : NULL, win->t_min != INT64_MIN ? "t" : NULL},
                     {(double)win->n_min, (double)win->t_min}};
    return cw;
}

/* The history records of an actor (all of them: the matcher windows them);
 * a new array. */
static json_t *history(sim_world *w, const char *actor, hist_kind k)
{
    json_t *src = NULL;
    int ci = strcmp(actor, "server") ? scn_client_index(w->s, actor) : -1;
    switch (k) {
    case H_RECEIVED:
        src = ci >= 0 ? w->cl[ci].events : NULL;
        break;
    case H_NOTIFIED:
        src = ci >= 0 ? w->cl[ci].notes : NULL;
        break;
    case H_REQUESTS:
        src = w->journal;
        break;
    case H_CLOSED:
        src = ci >= 0 ? w->cl[ci].closes : NULL;
        break;
    case H_FRAMES: /* C records: their JSON form made now */
        src = ci >= 0 ? sim_frames_json(w, ci) : NULL;
        break;
    }
    if (k != H_REQUESTS || ci < 0)
        return src ? json_incref(src) : json_array();
    /* A client's requests: the journal's records it sent. */
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(src, i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "from")), actor))
            json_array_append(out, r);
    }
    return out;
}

const char *scn__jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* ---- polls: a count of requests resumed where the last poll stopped ------ */

/*
 * A wait_until on `requests` (e.g. {method: PUT, status: 200, at_least:
 * 100}) is polled at every simulated instant, and matching the whole
 * journal each time made a queue of n writes cost n^2.  A memo per
 * (world, journal, expectation node, actor) keeps how far the journal was
 * read and how many records there matched, and the next poll reads only
 * what came since.
 *
 * Never stale: a journal record changes after it is appended only when
 * its answer arrives (sim_drain.c sets "status" and "response" together;
 * "from", method, path, query, idem_key and body are set when it is
 * made), so a record is counted for good only once its status is an
 * integer; an unanswered one is kept in `open` and matched again at every
 * poll.  The journal only grows within a world: a shorter one, another
 * world or journal, or a smaller record counter is another run and the
 * entry starts over; scn_expect_cleanup() (the end of each run) drops
 * every entry, so a later world at the same address never meets one.
 *
 * Only the verdict of a count form is memoized (a word, or a mapping with
 * no `exactly` and no `same_idem_key`) over an unset window: exactly what
 * chk_history decides for a quiet poll, with the same matcher.
 */
typedef struct req_memo {
    const sim_world *w;     /* NULL: a free entry */
    const json_t *journal;
    uint64_t nrec;          /* w->nrec at the last poll */
    const scn_node *val;
    char *actor;            /* "server" or a client's name (owned) */
    chk_matcher *m;         /* val compiled once (owned) */
    size_t scanned;         /* journal records read */
    long hits;              /* answered records among them that match */
    size_t *open;           /* indices of the unanswered ones among them */
    size_t nopen, capopen;
} req_memo;

#define REQ_MEMOS 8
static __thread req_memo memos[REQ_MEMOS];
static __thread unsigned memo_next;

static void memo_drop(req_memo *e)
{
    free(e->actor);
    if (e->m)
        chk_matcher_free(e->m);
    free(e->open);
    memset(e, 0, sizeof *e);
}

void scn__memo_free(void)
{
    for (unsigned i = 0; i < REQ_MEMOS; i++)
        memo_drop(&memos[i]);
    memo_next = 0;
}

/* 1 when a quiet evaluation of val can use the memo. */
static int memo_fits(hist_kind k, const scn_node *val, const scn_window *win)
{
    if (k != H_REQUESTS || win->n_min || win->t_min != INT64_MIN)
        return 0;
    if (val->kind == SCN_SCALAR)
        return 1;
    return val->kind == SCN_MAP && !scn_map_get(val, "exactly") &&
           !scn_map_get(val, "same_idem_key");
}

static req_memo *memo_of(sim_world *w, const char *actor, hist_kind k, const scn_node *val)
{
    size_t n = json_array_size(w->journal);
    for (unsigned i = 0; i < REQ_MEMOS; i++) {
        req_memo *e = &memos[i];
        if (e->w != w || e->val != val || strcmp(e->actor, actor))
            continue;
        if (e->journal == w->journal && e->scanned <= n && e->nrec <= w->nrec)
            return e;
        memo_drop(e); /* another run's: start over */
        break;
    }
    req_memo *e = NULL;
    for (unsigned i = 0; i < REQ_MEMOS && !e; i++)
        if (!memos[i].w)
            e = &memos[i];
    if (!e) {
        e = &memos[memo_next++ % REQ_MEMOS];
        memo_drop(e);
    }
    e->w = w;
    e->journal = w->journal;
    e->val = val;
    e->actor = strdup(actor);
    e->m = chk_matcher_new(k, val, NULL);
    if (!e->actor)
        abort();
    return e;
}

/* The record answered: its match can no longer change (see above). */
static int answered(const json_t *r)
{
    return json_is_integer(json_object_get(r, "status"));
}

/* The quiet verdict of a count form on the requests of actor. */
static int memo_count_ok(sim_world *w, const char *actor, hist_kind k, const scn_node *val)
{
    req_memo *e = memo_of(w, actor, k, val);
    int all = !strcmp(actor, "server");
    long pending = 0; /* unanswered records that match now */
    size_t keep = 0;
    for (size_t j = 0; j < e->nopen; j++) { /* the actor's: filtered when read */
        const json_t *r = json_array_get(w->journal, e->open[j]);
        int hit = chk_matcher_match(e->m, r, 0);
        if (answered(r))
            e->hits += hit;
        else {
            e->open[keep++] = e->open[j];
            pending += hit;
        }
    }
    e->nopen = keep;
    size_t n = json_array_size(w->journal);
    for (size_t i = e->scanned; i < n; i++) {
        const json_t *r = json_array_get(w->journal, i);
        if (!all && strcmp(scn__jstr(r, "from"), actor))
            continue; /* set when it was made: never the actor's */
        int hit = chk_matcher_match(e->m, r, 0);
        if (answered(r)) {
            e->hits += hit;
            continue;
        }
        if (e->nopen == e->capopen) {
            e->capopen = e->capopen ? e->capopen * 2 : 16;
            e->open = realloc(e->open, e->capopen * sizeof *e->open);
            if (!e->open)
                abort();
        }
        e->open[e->nopen++] = i;
        pending += hit;
    }
    e->scanned = n;
    e->nrec = w->nrec;
    long nh = e->hits + pending;
    /* chk_history's verdict of a count form (quiet: no words) */
    return val->kind == SCN_MAP ? chk_quantity_ok(val, nh, NULL, 0) : nh >= 1;
}

void scn__eval_history(sim_world *w, const char *actor, hist_kind k, const scn_node *val,
                       const scn_window *win, scn_outcome *o)
{
    if (o->quiet && memo_fits(k, val, win)) {
        o->ok = memo_count_ok(w, actor, k, val);
        return;
    }
    json_t *recs = history(w, actor, k);
    chk_window cw = chk_win(win);
    chk_opts quiet = {CHK_QUIET, NULL, NULL};
    chk_history(k, recs, val, &cw, o->quiet ? &quiet : NULL, o);
    json_decref(recs);
}

/* ---- logs ------------------------------------------------------------------ */

int scn_expect_log(sim_world *w, const char *actor, const scn_node *m, const scn_window *win,
                   scn_outcome *o)
{
    chk_window cw = chk_win(win);
    return chk_log(&w->logs, actor, m, &cw, o);
}

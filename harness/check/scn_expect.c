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

void scn__eval_history(sim_world *w, const char *actor, hist_kind k, const scn_node *val,
                       const scn_window *win, scn_outcome *o)
{
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

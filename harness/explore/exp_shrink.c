/*
 * exp_shrink.c - delta debugging of a failing schedule (explore.h).
 *
 * A candidate counts only when it is a valid schedule (exp_valid) and fails
 * with the same signature; "converge X" matches any client, since removing
 * a client renames the others.  Passes, repeated until none changes
 * anything (or the run budget is spent):
 *   1. ddmin over the steps: remove chunks of n (n = 2, 4, ...), back to
 *      coarser chunks after each success, down to single steps;
 *   2. waits: the shortest wait of the timer table that still fails;
 *      two adjacent waits merged into one;
 *   3. edits: fewer fields;
 *   4. clients: drop one (its steps go, later names move down);
 *   5. cosmetics: edit values renumbered 1, 2, ... in order.
 */
#define _GNU_SOURCE
#include "explore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sctx {
    const char *property, *sig;
    int runs, max_runs, verbose;
} sctx;

static int sig_match(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    if (!strncmp(a, "converge ", 9) && !strncmp(b, "converge ", 9))
        return 1;
    return !strcmp(a, b);
}

static int still_fails(sctx *x, const exp_sched *cand)
{
    if (x->runs >= x->max_runs || !exp_valid(cand))
        return 0;
    x->runs++;
    exp_outcome o;
    if (exp_run_once(cand, x->property, &o) != 0) {
        exp_outcome_clear(&o);
        return 0;
    }
    int ok = o.failed == 1 && sig_match(o.signature, x->sig);
    exp_outcome_clear(&o);
    return ok;
}

/* s without steps [from, from + len). */
static int without(exp_sched *dst, const exp_sched *s, size_t from, size_t len)
{
    if (exp_sched_copy(dst, s))
        return -1;
    size_t end = from + len > s->n ? s->n : from + len;
    memmove(dst->v + from, dst->v + end, (s->n - end) * sizeof *dst->v);
    dst->n = s->n - (end - from);
    return 0;
}

static void adopt(exp_sched *s, exp_sched *cand)
{
    free(s->v);
    s->v = cand->v;
    s->n = cand->n;
    s->nclients = cand->nclients;
    cand->v = NULL;
}

static int ddmin(sctx *x, exp_sched *s)
{
    int changed = 0;
    size_t parts = 2;
    while (s->n > 0 && x->runs < x->max_runs) {
        size_t chunk = (s->n + parts - 1) / parts;
        int removed = 0;
        for (size_t start = 0; start < s->n && x->runs < x->max_runs;) {
            exp_sched c;
            if (without(&c, s, start, chunk))
                return changed;
            if (still_fails(x, &c)) {
                adopt(s, &c);
                removed = changed = 1;
            } else {
                exp_sched_free(&c);
                start += chunk;
            }
        }
        if (removed) {
            parts = parts > 2 ? parts - 1 : 2;
            continue;
        }
        if (chunk <= 1)
            break;
        parts = parts * 2 > s->n ? s->n : parts * 2;
    }
    return changed;
}

static const int64_t short_waits[] = {20,    40,    100,   500,    1000,   2000,   3000,
                                      5000,  9000,  10000, 11000,  27000,  30000,  31000,
                                      60000, 61000, 90000, 120000, 121000, 300000, 600000,
                                      1860000};

static int shorter_waits(sctx *x, exp_sched *s)
{
    int changed = 0;
    for (size_t i = 0; i < s->n && x->runs < x->max_runs; i++) {
        if (s->v[i].op != EXP_WAIT)
            continue;
        int64_t cur = s->v[i].ms;
        for (size_t k = 0; k < sizeof short_waits / sizeof *short_waits; k++) {
            if (short_waits[k] >= cur)
                break;
            s->v[i].ms = short_waits[k];
            if (still_fails(x, s)) {
                changed = 1;
                cur = short_waits[k];
                break;
            }
            s->v[i].ms = cur;
        }
    }
    /* adjacent waits become one */
    for (size_t i = 0; i + 1 < s->n && x->runs < x->max_runs;) {
        if (s->v[i].op == EXP_WAIT && s->v[i + 1].op == EXP_WAIT) {
            exp_sched c;
            if (without(&c, s, i + 1, 1))
                return changed;
            c.v[i].ms = s->v[i].ms + s->v[i + 1].ms;
            if (still_fails(x, &c)) {
                adopt(s, &c);
                changed = 1;
                continue;
            }
            exp_sched_free(&c);
        }
        i++;
    }
    return changed;
}

static int fewer_fields(sctx *x, exp_sched *s)
{
    int changed = 0;
    for (size_t i = 0; i < s->n && x->runs < x->max_runs; i++) {
        if (s->v[i].op != EXP_EDIT)
            continue;
        for (unsigned b = 1; b <= EXP_F_REMIND && x->runs < x->max_runs; b <<= 1) {
            unsigned f = s->v[i].fields;
            if (!(f & b) || f == b)
                continue;
            s->v[i].fields = f & ~b;
            if (still_fails(x, s)) {
                changed = 1;
                continue;
            }
            s->v[i].fields = f;
        }
        /* the title alone reads best */
        unsigned f = s->v[i].fields;
        if (f != EXP_F_TITLE) {
            s->v[i].fields = EXP_F_TITLE;
            if (still_fails(x, s))
                changed = 1;
            else
                s->v[i].fields = f;
        }
    }
    return changed;
}

static int fewer_clients(sctx *x, exp_sched *s)
{
    int changed = 0;
    for (int c = s->nclients - 1; c >= 0 && s->nclients > 1 && x->runs < x->max_runs; c--) {
        exp_sched cand;
        if (exp_sched_copy(&cand, s))
            return changed;
        size_t k = 0;
        for (size_t i = 0; i < s->n; i++) {
            exp_step st = s->v[i];
            if (st.ci == c)
                continue;
            if (st.ci > c)
                st.ci--;
            cand.v[k++] = st;
        }
        cand.n = k;
        cand.nclients = s->nclients - 1;
        if (still_fails(x, &cand)) {
            adopt(s, &cand);
            changed = 1;
        } else {
            exp_sched_free(&cand);
        }
    }
    return changed;
}

static void renumber(sctx *x, exp_sched *s)
{
    exp_sched c;
    if (exp_sched_copy(&c, s))
        return;
    int v = 0, same = 1;
    for (size_t i = 0; i < c.n; i++)
        if (c.v[i].op == EXP_EDIT) {
            if (c.v[i].val != v + 1)
                same = 0;
            c.v[i].val = ++v;
        }
    if (!same && still_fails(x, &c))
        adopt(s, &c);
    else
        exp_sched_free(&c);
}

int exp_shrink(exp_sched *s, const char *property, const char *sig, int max_runs, int verbose)
{
    sctx x = {property, sig, 0, max_runs, verbose};
    for (int round = 0; round < 4 && x.runs < x.max_runs; round++) {
        int changed = ddmin(&x, s);
        if (verbose)
            fprintf(stderr, "explore: shrink round %d: %zu steps after ddmin (%d runs)\n",
                    round + 1, s->n, x.runs);
        changed |= shorter_waits(&x, s);
        changed |= fewer_fields(&x, s);
        changed |= fewer_clients(&x, s);
        if (!changed)
            break;
    }
    renumber(&x, s);
    return x.runs;
}

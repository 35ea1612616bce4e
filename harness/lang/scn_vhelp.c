/*
 * scn_vhelp.c - the validator's context and its checks of single values
 * (need_map, need_int, need_duration, need_task_id, need_client...), with
 * "did you mean" for unknown words.  Split out of scn_load.c.
 */
#define _GNU_SOURCE
#include "scn_valid.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hp_policy.h"
#include "hp_task.h"
#include "hp_time.h"

/* ---- validation context ----------------------------------------------- */


void sv_verr(vctx *v, const scn_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = scn_vasprintf(fmt, ap);
    va_end(ap);
    int line, col;
    const char *f = scn_node_where(at, v->file, &line, &col);
    scn_diags_add(v->d, f, line, col, "%s", msg);
    free(msg);
    v->errors++;
}

int sv_in_list(const char *w, const char *const *list)
{
    for (size_t i = 0; w && list[i]; i++)
        if (!strcmp(w, list[i]))
            return 1;
    return 0;
}

/* "a, b, c" into buf. */
void sv_join(const char *const *list, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", list[i]);
}

/* Reports an unknown word with a suggestion or the list of known ones. */
void sv_unknown(vctx *v, const scn_node *at, const char *what, const char *word,
                    const char *const *cands)
{
    const char *sug = scn_suggest(word, cands);
    if (sug) {
        sv_verr(v, at, "unknown %s '%s' (did you mean '%s'?)", what, word, sug);
    } else {
        char all[1024];
        sv_join(cands, all, sizeof all);
        sv_verr(v, at, "unknown %s '%s' (expected one of: %s)", what, word, all);
    }
}

/* A `since:` that names no earlier mark. */
void sv_unknown_mark(vctx *v, const scn_node *x)
{
    if (v->nmarks == 0)
        sv_verr(v, x, "unknown mark '%s' (define it first with a step '- mark: %s')", x->str,
             x->str);
    else
        sv_unknown(v, x, "mark", x->str, v->marks);
}

void sv_type_err(vctx *v, const scn_node *n, const char *what, const char *expected)
{
    char got[128];
    scn_node_describe(n, got, sizeof got);
    sv_verr(v, n, "%s must be %s, got %s", what, expected, got);
}

/* Checks that every key of map m is in allowed; returns 0 when all are. */
int sv_check_keys(vctx *v, const scn_node *m, const char *what, const char *const *allowed)
{
    int bad = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!sv_in_list(m->keys[i]->str, allowed)) {
            sv_unknown(v, m->keys[i], what, m->keys[i]->str, allowed);
            bad = 1;
        }
    return bad ? -1 : 0;
}

int sv_need_map(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_MAP) {
        sv_type_err(v, n, what, "a mapping");
        return -1;
    }
    return 0;
}

int sv_need_str(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_SCALAR || scn_is_null(n)) {
        sv_type_err(v, n, what, "a string");
        return -1;
    }
    return 0;
}

int sv_need_int(vctx *v, const scn_node *n, const char *what, int64_t min, int64_t max,
                    int64_t *out)
{
    int64_t x;
    if (scn_get_int(n, &x) || x < min || x > max) {
        char exp[96];
        if (max == INT64_MAX)
            snprintf(exp, sizeof exp, "an integer >= %lld", (long long)min);
        else
            snprintf(exp, sizeof exp, "an integer from %lld to %lld", (long long)min,
                     (long long)max);
        sv_type_err(v, n, what, exp);
        return -1;
    }
    if (out)
        *out = x;
    return 0;
}

int sv_need_bool(vctx *v, const scn_node *n, const char *what, int *out)
{
    int b;
    if (scn_get_bool(n, &b)) {
        sv_type_err(v, n, what, "true or false");
        return -1;
    }
    if (out)
        *out = b;
    return 0;
}

int sv_need_duration(vctx *v, const scn_node *n, const char *what, int64_t *out)
{
    int64_t ms;
    if (!n || n->kind != SCN_SCALAR) {
        sv_type_err(v, n, what, "a duration such as 30s");
        return -1;
    }
    if (scn_duration(n, &ms)) {
        sv_verr(v, n, "bad duration '%s' for %s (use e.g. 250ms, 30s, 31m, 2h, 7d, 1m30s)", n->str,
             what);
        return -1;
    }
    /* Issue 11: every number from outside has a range; an unbounded wait
     * overflowed the simulator's clock (now + wait). */
    if (ms > HP_DURATION_MAX_MS) {
        sv_verr(v, n, "duration '%s' for %s out of range (from 0 to %s)", n->str, what,
                HP_DURATION_MAX_TEXT);
        return -1;
    }
    if (out)
        *out = ms;
    return 0;
}

int sv_need_word(vctx *v, const scn_node *n, const char *what, const char *const *allowed)
{
    if (sv_need_str(v, n, what))
        return -1;
    if (!sv_in_list(n->str, allowed)) {
        sv_unknown(v, n, what, n->str, allowed);
        return -1;
    }
    return 0;
}

/* A task id, possibly with "{i}" inside a repeat step. */
int sv_need_task_id(vctx *v, const scn_node *n, const char *what)
{
    if (sv_need_str(v, n, what))
        return -1;
    const char *id = n->str;
    char buf[128];
    if (v->in_repeat && strstr(id, "{i}")) {
        json_t *j = scn_node_json_i(n, 1);
        snprintf(buf, sizeof buf, "%s", json_is_string(j) ? json_string_value(j) : "");
        json_decref(j);
        id = buf;
    }
    if (!hp_task_id_valid(id)) {
        sv_verr(v, n, "%s '%s' is not a valid task id (1-64 of A-Z a-z 0-9 _ -)", what, n->str);
        return -1;
    }
    return 0;
}

int sv_need_task_ids(vctx *v, const scn_node *n, const char *what)
{
    if (n && n->kind == SCN_SEQ) {
        int rc = 0;
        for (size_t i = 0; i < n->n; i++)
            rc |= sv_need_task_id(v, n->items[i], what);
        return rc;
    }
    return sv_need_task_id(v, n, what);
}

/* "alice, bob" (the declared clients, in order) into buf; "none" when
 * the scenario declares none. */
void sv_client_names(const vctx *v, char *buf, size_t len)
{
    size_t o = 0;
    snprintf(buf, len, "none");
    for (size_t i = 0; i < v->s->nclients && o + 1 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", v->s->clients[i].name);
}

/* An unknown client name: the closest declared one if any, and always
 * the declared clients (the usual mistake is a client not declared at
 * all, which no suggestion fixes). */
void sv_unknown_client(vctx *v, const scn_node *at, const char *what, const char *word,
                           const char *const *cands)
{
    char names[512];
    sv_client_names(v, names, sizeof names);
    const char *sug = scn_suggest(word, cands);
    if (sug)
        sv_verr(v, at, "unknown %s '%s' (did you mean '%s'? declared clients: %s)", what, word, sug,
             names);
    else
        sv_verr(v, at, "unknown %s '%s' (declared clients: %s; declare it under 'clients:')", what,
             word, names);
}

int sv_need_client(vctx *v, const scn_node *n, const char *what)
{
    if (sv_need_str(v, n, what))
        return -1;
    if (scn_client_index(v->s, n->str) < 0) {
        const char **names = calloc(v->s->nclients + 1, sizeof *names);
        if (!names)
            abort();
        for (size_t i = 0; i < v->s->nclients; i++)
            names[i] = v->s->clients[i].name;
        sv_unknown_client(v, n, "client", n->str, names);
        free(names);
        return -1;
    }
    return 0;
}

int sv_need_time(vctx *v, const scn_node *n, const char *what)
{
    int64_t ms;
    if (scn_is_null(n))
        return 0;
    if (sv_need_str(v, n, what))
        return -1;
    if (hp_time_parse(n->str, &ms)) {
        sv_verr(v, n, "%s '%s' must be an RFC 3339 time with offset, e.g. "
                   "2026-11-25T10:00:00+03:00", what, n->str);
        return -1;
    }
    return 0;
}

int sv_need_str_list(vctx *v, const scn_node *n, const char *what)
{
    if (!n || n->kind != SCN_SEQ) {
        sv_type_err(v, n, what, "a list");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->n; i++)
        rc |= sv_need_str(v, n->items[i], what);
    return rc;
}


/*
 * scn_diag.c - "file:line:col: message" diagnostics and the "did you mean"
 * suggestions that make them useful to QA.
 */
#define _GNU_SOURCE
#include "scn_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "hp_time.h"

/* printf into a new string for the engine's messages (expected/actual
 * texts, invariant details).  Out of memory is not recoverable here: abort
 * rather than make every caller check for NULL. */
char *scn_vasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    return s;
}

char *scn_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = scn_vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void scn_diags_add(scn_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (!d)
        return;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        scn_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            abort();
        d->v = v;
        d->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = scn_vasprintf(fmt, ap);
    va_end(ap);
    scn_diag *g = &d->v[d->n++];
    g->file = strdup(file ? file : "?");
    if (!g->file)
        abort();
    g->line = line;
    g->col = col;
    g->msg = msg;
}

static int diag_cmp(const void *a, const void *b)
{
    const scn_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return strcmp(x->msg, y->msg);
}

void scn_diags_sort_unique(scn_diags *d, size_t first)
{
    if (!d || d->n <= first + 1)
        return;
    qsort(d->v + first, d->n - first, sizeof *d->v, diag_cmp);
    /* A for_each repeats its body's mistakes once per value: say it once. */
    size_t o = first + 1;
    for (size_t i = first + 1; i < d->n; i++) {
        if (!diag_cmp(&d->v[i], &d->v[o - 1])) {
            free(d->v[i].file);
            free(d->v[i].msg);
        } else {
            d->v[o++] = d->v[i];
        }
    }
    d->n = o;
}

void scn_diags_free(scn_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

void scn_diags_print(const scn_diags *d, void *fp)
{
    FILE *f = fp;
    for (size_t i = 0; d && i < d->n; i++) {
        const scn_diag *g = &d->v[i];
        if (g->line > 0)
            fprintf(f, "%s:%d:%d: %s\n", g->file, g->line, g->col > 0 ? g->col : 1, g->msg);
        else
            fprintf(f, "%s: %s\n", g->file, g->msg);
    }
}

/* Edit distance with adjacent transpositions counted as one edit (optimal
 * string alignment), case-insensitive: QA type "titel" for "title" and
 * "Edit" for "edit". */
size_t scn_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1 / 2;
    size_t m[65][65];
    for (size_t i = 0; i <= la; i++)
        m[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        m[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = m[i - 1][j - 1] + (ca != cb);
            if (m[i - 1][j] + 1 < best)
                best = m[i - 1][j] + 1;
            if (m[i][j - 1] + 1 < best)
                best = m[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && m[i - 2][j - 2] + 1 < best)
                best = m[i - 2][j - 2] + 1;
            m[i][j] = best;
        }
    }
    return m[la][lb];
}

/* 1 when every letter of w appears in c in order ("cnt" in "count"). */
static int is_abbrev(const char *w, const char *c)
{
    if (tolower((unsigned char)*w) != tolower((unsigned char)*c))
        return 0;
    for (; *w; w++) {
        while (*c && tolower((unsigned char)*c) != tolower((unsigned char)*w))
            c++;
        if (!*c)
            return 0;
        c++;
    }
    return 1;
}

const char *scn_suggest(const char *word, const char *const *cands)
{
    if (!word || !cands)
        return NULL;
    const char *best = NULL;
    size_t bestd = (size_t)-1;
    size_t wl = strlen(word);
    size_t limit = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
    for (size_t i = 0; cands[i]; i++) {
        size_t dd = scn_edit_distance(word, cands[i]);
        /* An abbreviation ("recv", "cnt") is worth suggesting too. */
        if (dd > limit && !(wl >= 3 && is_abbrev(word, cands[i])))
            continue;
        if (dd < bestd) {
            bestd = dd;
            best = cands[i];
        }
    }
    if (best)
        return best;
    /* A keyword with a word glued on ("queue_length", "cache_bytes",
     * "server_log"): the candidate that is a whole '_'-separated part of
     * it, the longest one when several are. */
    size_t bestl = 0;
    for (size_t i = 0; cands[i]; i++) {
        size_t cl = strlen(cands[i]);
        if (cl < 3 || cl >= wl)
            continue;
        int head = !strncasecmp(word, cands[i], cl) && word[cl] == '_';
        int tail = !strcasecmp(word + wl - cl, cands[i]) && word[wl - cl - 1] == '_';
        if ((head || tail) && cl > bestl) {
            bestl = cl;
            best = cands[i];
        }
    }
    return best;
}

/* "Q-2", "q2", "q-02", "Q 2" -> "Q2" (upper case, letters and digits,
 * no leading zeros in the number). */
static void rule_norm(const char *w, char *out, size_t len)
{
    size_t o = 0;
    int lead = 1;
    for (const char *p = w; *p && o + 1 < len; p++) {
        if (isalpha((unsigned char)*p)) {
            out[o++] = (char)toupper((unsigned char)*p);
            lead = 1;
        } else if (isdigit((unsigned char)*p)) {
            if (*p == '0' && lead && isdigit((unsigned char)p[1]))
                continue;
            out[o++] = *p;
            lead = 0;
        }
    }
    out[o] = '\0';
}

const char *scn_suggest_rule(const char *word, const char *const *ids)
{
    /* Rule ids are short and dense (Q-2, R-1, CF-2): one edit turns any
     * into another, so edit distance would send "R-2" to "Q-2".  Only the
     * same id written differently is a suggestion. */
    char a[32], b[32];
    rule_norm(word ? word : "", a, sizeof a);
    for (size_t i = 0; a[0] && ids && ids[i]; i++) {
        rule_norm(ids[i], b, sizeof b);
        if (!strcmp(a, b))
            return ids[i];
    }
    return NULL;
}

int scn_duration(const scn_node *n, int64_t *ms)
{
    const char *s = scn_str(n);
    if (!s || !*s)
        return -1;
    int has_unit = 0;
    for (const char *p = s; *p; p++)
        if (isalpha((unsigned char)*p))
            has_unit = 1;
    if (!has_unit)
        return -1;
    return hp_duration_parse(s, ms);
}
